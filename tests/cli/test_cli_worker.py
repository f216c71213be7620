"""`corral worker` driven over a pipe by a test head that speaks the protocol
through wire.py, an independent implementation of src/lib/wire.h.

Real tasks on this host's cgroups: an OOM at the task's own limit, a KILL of
one attempt, a head that falls silent (no heartbeats: the worker must leave
and leave nothing), EOF, SIGTERM, output with every byte value and of
several MiB read slowly, protocol errors, and QUIT.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import clitest
from clitest import setUpModule  # noqa: F401  (skips without root/cgroups)
import wire

OK, EXIT, OOM, TIMEOUT, SPAWN_ERROR, CANCELLED, ABORTED = 0, 1, 2, 5, 7, 8, 9


class Worker:
    """One `corral worker` on pipes, and the test head's channel to it."""

    def __init__(self, args=(), env=None):
        self.p = clitest.spawn(["worker"] + list(args), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        os.set_blocking(self.p.stdin.fileno(), False)
        self.ch = wire.Channel(self.p.stdout.fileno(), self.p.stdin.fileno())
        self.hello = None
        self.hb = 0.1

    def start(self, hb=0.1, **config):
        self.hello = self.ch.expect("HELLO", clitest.scaled(10))
        self.hb = hb
        # The head's silence bound, stretched where everything is slower (TCG).
        config.setdefault("heartbeat_misses", int(10 * clitest.SCALE))
        c = wire.config(**config)
        self.ch.send(c)
        ready = self.ch.expect(("READY", "ERROR"), clitest.scaled(20), hb)
        assert ready["type"] == "READY", ready
        return ready

    def run(self, att_id, argv, seq=None, memory_max=0, attempt=1):
        self.ch.send({"type": "RUN", "id": att_id, "seq": seq or att_id, "attempt": attempt,
                      "memory_max": memory_max, "argv": list(argv)})

    def collect(self, att_id, timeout=30, others=None):
        return wire.collect_attempt(self.ch, att_id, clitest.scaled(timeout), self.hb, others)

    def wait(self, timeout=20):
        try:
            rc = self.p.wait(clitest.scaled(timeout))
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("the worker did not exit within %gs" % timeout)
        self.err = self.p.stderr.read()
        return rc

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except OSError:
                pass


class WorkerTest(unittest.TestCase):
    def setUp(self):
        self.workers = []
        self.tmp = tempfile.mkdtemp(prefix="corral-worker-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def tearDown(self):
        for w in self.workers:
            w.close()
        pids = [w.p.pid for w in self.workers]
        # (systemd removes a worker's emptied scope a moment after it exits)
        clitest.wait_until(lambda: not clitest.leftover_cgroups(pids), clitest.scaled(2))
        self.assertEqual(clitest.leftover_cgroups(pids), [], "batch cgroups left behind")

    def worker(self, *args, **kw):
        w = Worker(args, **kw)
        self.workers.append(w)
        return w

    def assert_gone(self, pid, timeout=5):
        self.assertTrue(clitest.wait_until(lambda: not clitest.pid_alive(pid), clitest.scaled(timeout)),
                        "pid %d is still alive" % pid)

    # ------------------------------------------------------------ handshake

    def test_hello_and_config(self):
        w = self.worker()
        ready = w.start(jobs=3)
        h = w.hello
        self.assertEqual((h["proto_min"], h["proto_max"]), (1, 1))
        self.assertEqual(h["pid"], w.p.pid)
        self.assertEqual(h["node"], os.uname().nodename.encode())
        self.assertEqual(h["kernel"], os.uname().release.encode())
        version = subprocess.run([clitest.BIN, "--version"], stdout=subprocess.PIPE).stdout
        self.assertIn(b" " + h["version"] + b" ", version)
        self.assertEqual(h["cpus_affinity"], len(os.sched_getaffinity(0)))
        self.assertGreaterEqual(h["cpus"], 1)
        self.assertGreater(h["memory_total"], 1 << 20)
        self.assertEqual(h["cgroup_mode"], {"v1": 1, "hybrid": 2, "v2": 3}[clitest.MODE])
        self.assertTrue(h["memory_limits"])
        self.assertEqual(h["provider"], clitest.PROVIDER.encode())
        self.assertEqual(ready["jobs"], 3)
        self.assertTrue(ready["memory_limits"])
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.ch.until_eof(clitest.scaled(10)), [])
        self.assertEqual(w.wait(), 0)
        self.assertEqual(w.err, b"")

    def test_slurm_node_name_and_cpus(self):
        env = dict(os.environ, SLURMD_NODENAME="node7", SLURM_CPUS_ON_NODE="1")
        w = self.worker(env=env)
        w.start()
        self.assertEqual(w.hello["node"], b"node7")
        self.assertEqual(w.hello["cpus"], 1)
        w.run(1, ["true"])
        _, _, _, res = w.collect(1)
        self.assertEqual(res["node"], b"node7")
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    # ------------------------------------------------------------ round trips

    def test_round_trip_with_oom(self):
        """An ok task, an exit, an OOM at its own limit, a missing command."""
        w = self.worker()
        w.start(memory_max=256 << 20)
        w.run(11, [clitest.PAYLOAD, "write", "1000"], seq=1)
        w.run(12, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], seq=2)
        w.run(13, [clitest.PAYLOAD, "alloc", "300"], seq=3, memory_max=48 << 20, attempt=2)
        w.run(14, ["corral-no-such-command-x"], seq=4)
        others = {}
        st, out, err, r = w.collect(11, others=others)  # the others: kept in order
        self.assertEqual(r["outcome"], OK)
        self.assertEqual(out, clitest.pattern(1000))
        self.assertEqual(st["pid"], r["pid"])
        self.assertGreater(r["start_time"], 1e9)
        self.assertEqual(r["sentence"], b"task 1 succeeded")
        results = {11: r}
        got = dict(others)
        for att, msgs in others.items():
            for m in msgs:
                if m["type"] == "RESULT":
                    results[att] = m
        end = time.monotonic() + clitest.scaled(60)
        while len(results) < 4 and time.monotonic() < end:
            m = w.ch.recv(clitest.scaled(30), 0.1)
            self.assertIsNotNone(m)
            if m["type"] != "HEARTBEAT":
                got.setdefault(m["id"], []).append(m)
                if m["type"] == "RESULT":
                    results[m["id"]] = m
        r12 = results[12]
        self.assertEqual((r12["outcome"], r12["exit_code"], r12["status"]), (EXIT, 3, 3))
        chunks = {1: b"", 2: b""}
        for m in got[12]:
            if m["type"] == "OUTPUT":
                chunks[m["stream"]] += m["data"]
        self.assertEqual(chunks, {1: b"out\n", 2: b"err\n"})
        self.assertEqual((r12["out_len"], r12["err_len"]), (4, 4))
        r13 = results[13]
        self.assertEqual(r13["outcome"], OOM, r13)
        self.assertTrue(r13["own_limit_hit"])
        self.assertEqual((r13["status"], r13["signal"]), (137, 9))
        self.assertGreaterEqual(r13["oom_kills"], 1)
        self.assertEqual(r13["memory_max"], 48 << 20)
        self.assertEqual(r13["node"], os.uname().nodename.encode())
        self.assertTrue(r13["sentence"].startswith(b"task 3 was OOM-killed"), r13["sentence"])
        self.assertTrue(r13["sentence"].endswith(b"[attempt 2]"), r13["sentence"])
        self.assertEqual([m["type"] for m in got[13]], ["STARTED", "RESULT"])
        r14 = results[14]
        self.assertEqual((r14["outcome"], r14["status"]), (SPAWN_ERROR, 127))
        self.assertEqual(r14["spawn_step"], b"exec")
        self.assertEqual(r14["memory_max"], 256 << 20)
        self.assertEqual([m["type"] for m in got[14]], ["RESULT"])  # no process, no STARTED
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    def test_jobs_and_many_attempts(self):
        """More RUNs than slots: they queue in the worker, all come back once."""
        w = self.worker()
        w.start(jobs=2)
        ids = list(range(100, 112))
        for i in ids:
            w.run(i, ["/bin/sh", "-c", "echo %d" % i])
        seen = {}
        end = time.monotonic() + clitest.scaled(60)
        while len(seen) < len(ids):
            self.assertLess(time.monotonic(), end, "results missing: %r" % sorted(seen))
            m = w.ch.recv(clitest.scaled(30), 0.1)
            self.assertIsNotNone(m)
            if m["type"] == "OUTPUT":
                self.assertEqual(m["data"], b"%d\n" % m["id"])
            if m["type"] == "RESULT":
                self.assertNotIn(m["id"], seen)
                self.assertEqual(m["outcome"], OK)
                seen[m["id"]] = m
        self.assertEqual(sorted(seen), ids)
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    def test_submit_refused_is_a_spawn_error(self):
        w = self.worker("--no-cgroups")
        ready = w.start()
        self.assertFalse(ready["memory_limits"])
        self.assertEqual(w.hello["provider"], b"off")
        w.run(1, ["true"], memory_max=64 << 20)  # a limit without cgroups
        st, _, _, r = w.collect(1)
        self.assertIsNone(st)
        self.assertEqual((r["outcome"], r["spawn_step"]), (SPAWN_ERROR, b"submit"))
        self.assertEqual(r["spawn_errno"], 22)  # EINVAL
        w.run(2, ["true"])
        self.assertEqual(w.collect(2)[3]["outcome"], OK)
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    def test_seccomp_profile_text(self):
        """CONFIG carries the profile's text, not a path."""
        w = self.worker()
        w.start(seccomp=2, no_new_privs=True,
                seccomp_profile=b"# from the head\naction errno EACCES\n[deny]\nswapoff\n")
        w.run(1, [clitest.PAYLOAD, "syscall", "swapoff"])
        _, out, _, r = w.collect(1)
        self.assertEqual(out.strip(), b"EACCES")
        w.run(2, [clitest.PAYLOAD, "syscall", "getpid"])
        self.assertEqual(w.collect(2)[1].strip(), b"ok")
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    def test_bad_seccomp_profile_is_an_error(self):
        w = self.worker()
        w.ch.expect("HELLO", clitest.scaled(10))
        w.ch.send(wire.config(seccomp=2, seccomp_profile=b"[deny]\nno_such_call_x\n"))
        m = w.ch.expect("ERROR", clitest.scaled(10), 0.1)
        self.assertIn(b"no_such_call_x", m["message"])
        self.assertEqual(w.wait(), 125)

    # ------------------------------------------------------------ output

    def test_binary_output_every_byte(self):
        data = bytes(range(256)) * 1300 + b"\n\n\x00CRL\x01"  # > 300 KiB: spills, many chunks
        path = os.path.join(self.tmp, "bytes")
        with open(path, "wb") as f:
            f.write(data)
        w = self.worker()
        w.start()
        w.run(1, ["cat", path])
        w.run(2, ["/bin/sh", "-c", "cat \"$0\" >&2", path])
        w.run(3, ["/bin/sh", "-c", "printf 'no newline at the end'"])
        others = {}
        _, out, err, r = w.collect(1, others=others)
        self.assertEqual(out, data)
        self.assertEqual(err, b"")
        self.assertEqual((r["out_len"], r["out_lost"]), (len(data), 0))
        rest = {}
        for m in others.get(2, []) + others.get(3, []):
            rest.setdefault(m["id"], []).append(m)
        end = time.monotonic() + clitest.scaled(60)
        for att in (2, 3):
            while not any(m["type"] == "RESULT" for m in rest.get(att, [])):
                self.assertLess(time.monotonic(), end, "no RESULT of attempt %d" % att)
                m = w.ch.recv(clitest.scaled(30), 0.1)
                if m["type"] != "HEARTBEAT":
                    rest.setdefault(m["id"], []).append(m)
        err2 = b"".join(m["data"] for m in rest[2] if m["type"] == "OUTPUT" and m["stream"] == 2)
        self.assertEqual(err2, data)
        out3 = b"".join(m["data"] for m in rest[3] if m["type"] == "OUTPUT")
        self.assertEqual(out3, b"no newline at the end")
        chunks = [m for m in rest[2] if m["type"] == "OUTPUT"]
        self.assertTrue(all(len(m["data"]) <= 65536 for m in chunks))
        self.assertGreater(len(chunks), 4)
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    def test_big_output_slow_head(self):
        """8 MiB of output while the head does not read for a while: the
        worker stays responsive (a KILL sent meanwhile acts at once) and
        every byte arrives, in order."""
        n = 8 << 20
        w = self.worker()
        w.start(hb=0.1, heartbeat_ms=200, heartbeat_misses=int(100 * clitest.SCALE))
        w.run(1, [clitest.PAYLOAD, "write", str(n)])
        w.run(2, [clitest.PAYLOAD, "sleep", "30"])
        # Read only the first frames (STARTED), then stop reading for 2 s
        # while sending heartbeats and a KILL for attempt 2.
        time.sleep(clitest.scaled(1.0))
        t_kill = time.time()
        w.ch.send({"type": "KILL", "id": 2, "reason": 1})
        end = time.monotonic() + clitest.scaled(2.0)
        while time.monotonic() < end:
            w.ch.heartbeat()
            time.sleep(0.1)
        others = {}
        _, out, _, r = w.collect(1, others=others, timeout=120)
        self.assertEqual(r["outcome"], OK)
        self.assertEqual(len(out), n)
        self.assertEqual(out, clitest.pattern(n))
        res2 = [m for m in others.get(2, []) if m["type"] == "RESULT"]
        if not res2:
            res2 = [w.collect(2)[3]]
        r2 = res2[0]
        self.assertEqual(r2["outcome"], ABORTED)
        # The kill happened when it was sent, not when the head read again.
        self.assertLess(r2["start_time"] + r2["wall_s"], t_kill + clitest.scaled(1.0))
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    # ------------------------------------------------------------ ending attempts

    def test_kill_abort_and_timeout(self):
        w = self.worker()
        w.start()
        w.run(1, [clitest.PAYLOAD, "sleep", "60"])
        w.run(2, [clitest.PAYLOAD, "sleep", "60"])
        w.run(3, [clitest.PAYLOAD, "sleep", "0.5"])
        started = {}
        while len(started) < 3:
            m = w.ch.expect("STARTED", clitest.scaled(10), 0.1)
            started[m["id"]] = m["pid"]
        w.ch.send({"type": "KILL", "id": 1, "reason": 1})
        w.ch.send({"type": "KILL", "id": 2, "reason": 2})
        w.ch.send({"type": "KILL", "id": 99, "reason": 1})  # not running: ignored
        results = {}
        end = time.monotonic() + clitest.scaled(30)
        while len(results) < 3:
            self.assertLess(time.monotonic(), end, "results missing: %r" % sorted(results))
            m = w.ch.recv(clitest.scaled(20), 0.1)
            if m["type"] == "RESULT":
                results[m["id"]] = m
        self.assertEqual((results[1]["outcome"], results[1]["status"]), (ABORTED, -1))
        self.assertEqual((results[2]["outcome"], results[2]["status"]), (TIMEOUT, 124))
        self.assertEqual(results[3]["outcome"], OK)
        for i in (1, 2):
            self.assertEqual(results[i]["pid"], started[i])
            self.assert_gone(started[i])
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    def test_kill_queued_attempt(self):
        """With every slot taken, a KILLed attempt that waits in the worker's
        queue ends cancelled, without ever starting."""
        w = self.worker()
        w.start(jobs=1)
        w.run(1, [clitest.PAYLOAD, "sleep", "60"])
        w.run(2, ["true"])
        pid = w.ch.expect("STARTED", clitest.scaled(10), 0.1)["pid"]
        w.ch.send({"type": "KILL", "id": 2, "reason": 1})
        st, out, err, r = w.collect(2)
        self.assertIsNone(st)
        self.assertEqual((r["outcome"], r["pid"], r["status"]), (CANCELLED, 0, -1))
        self.assertTrue(clitest.pid_alive(pid))  # the other one runs on
        w.ch.send({"type": "KILL", "id": 1, "reason": 1})
        self.assertEqual(w.collect(1)[3]["outcome"], ABORTED)
        self.assert_gone(pid)
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    def test_quit_kills_what_runs(self):
        w = self.worker()
        w.start()
        w.run(1, [clitest.PAYLOAD, "sleep", "60"])
        pid = w.ch.expect("STARTED", clitest.scaled(10), 0.1)["pid"]
        w.ch.send({"type": "QUIT"})
        r = w.ch.expect("RESULT", clitest.scaled(10), 0.1)
        self.assertEqual(r["outcome"], ABORTED)
        self.assertEqual(w.ch.until_eof(clitest.scaled(10)), [])
        self.assertEqual(w.wait(), 0)
        self.assert_gone(pid)

    # ------------------------------------------------------------ losing the head

    def _running_task(self, **config):
        w = self.worker()
        w.start(**config)
        w.run(1, [clitest.PAYLOAD, "sleep", "60"])
        pid = w.ch.expect("STARTED", clitest.scaled(10), 0.1)["pid"]
        return w, pid

    def test_heartbeat_loss(self):
        """The head falls silent: the worker leaves within the bound, kills
        its task and removes its cgroups; it heartbeats meanwhile."""
        w, pid = self._running_task(heartbeat_ms=100, heartbeat_misses=5)
        t0 = time.monotonic()
        beats = []
        while True:  # read, but send nothing
            m = w.ch.recv(clitest.scaled(20))
            if m is None:
                break
            self.assertEqual(m["type"], "HEARTBEAT")
            beats.append(time.monotonic())
        elapsed = time.monotonic() - t0
        self.assertEqual(w.wait(), 125)
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, clitest.scaled(3.0))
        self.assertIn(b"the head is lost: nothing came from it", w.err)
        self.assertGreaterEqual(len(beats), 3)
        self.assert_gone(pid)

    def test_head_not_reading_is_lost(self):
        """A head that sends heartbeats but never reads: once our frames sit
        untaken for the bound, the worker gives up on it too."""
        w = self.worker()
        w.start(heartbeat_ms=100, heartbeat_misses=10)
        w.run(1, [clitest.PAYLOAD, "write", str(16 << 20)])
        t0 = time.monotonic()
        while w.p.poll() is None and time.monotonic() - t0 < clitest.scaled(20):
            try:
                w.ch.heartbeat()
            except BrokenPipeError:
                break
            time.sleep(0.05)
        self.assertEqual(w.wait(), 125)
        self.assertIn(b"took none of our", w.err)

    def test_eof(self):
        w, pid = self._running_task()
        w.p.stdin.close()
        self.assertEqual(w.wait(), 0)
        self.assert_gone(pid)

    def test_eof_inside_a_frame(self):
        w, pid = self._running_task()
        w.ch.send_raw(wire.encode({"type": "HEARTBEAT", "seq": 1, "mono_ns": 0})[:7])
        w.p.stdin.close()
        self.assertEqual(w.wait(), 125)
        self.assertIn(b"closed inside a frame", w.err)
        self.assert_gone(pid)

    def test_sigterm(self):
        w, pid = self._running_task()
        w.p.send_signal(signal.SIGTERM)
        self.assertEqual(w.wait(), 128 + signal.SIGTERM)
        self.assert_gone(pid)

    # ------------------------------------------------------------ the protocol

    def test_garbage_is_refused(self):
        w, pid = self._running_task()
        w.ch.send_raw(b"GET / HTTP/1.0\r\n\r\n")
        m = w.ch.expect("ERROR", clitest.scaled(10), skip=("HEARTBEAT", "OUTPUT", "RESULT"))
        self.assertEqual(m["code"], 71)  # EPROTO
        self.assertIn(b"not a corral frame", m["message"])
        self.assertEqual(w.wait(), 125)
        self.assert_gone(pid)

    def test_unknown_type_is_refused(self):
        w = self.worker()
        w.start()
        frame = bytearray(wire.encode({"type": "QUIT"}))
        frame[4] = 77
        w.ch.send_raw(bytes(frame))
        m = w.ch.expect("ERROR", clitest.scaled(10))
        self.assertIn(b"unknown message type 77", m["message"])
        self.assertEqual(w.wait(), 125)

    def test_oversized_frame_is_refused_at_its_header(self):
        w = self.worker()
        w.start()
        w.ch.send_raw(b"CRL\x01\x04\x7f\xff\xff\xff")  # claims 2 GiB, sends nothing more
        m = w.ch.expect("ERROR", clitest.scaled(10))
        self.assertIn(b"exceeds", m["message"])
        self.assertEqual(w.wait(), 125)

    def test_unknown_fields_are_skipped(self):
        """A newer head's extra fields are ignored, in any position."""
        w = self.worker()
        w.ch.expect("HELLO", clitest.scaled(10))
        w.ch.send(wire.config(), extra_fields=[(200, b"future"), (99, b"")])
        w.ch.expect("READY", clitest.scaled(10), 0.1)
        w.ch.send({"type": "RUN", "id": 5, "seq": 5, "attempt": 1, "argv": ["echo", "a b"]},
                  extra_fields=[(250, b"\n" * 3000)])
        _, out, _, r = w.collect(5)
        self.assertEqual(out, b"a b\n")
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    def test_run_before_config_and_duplicate_id(self):
        w = self.worker()
        w.ch.expect("HELLO", clitest.scaled(10))
        w.ch.send({"type": "RUN", "id": 1, "argv": ["true"]})
        m = w.ch.expect("ERROR", clitest.scaled(10))
        self.assertIn(b"RUN before CONFIG", m["message"])
        self.assertEqual(w.wait(), 125)
        w2, pid = self._running_task()
        w2.run(1, ["true"])
        m = w2.ch.expect("ERROR", clitest.scaled(10), skip=("HEARTBEAT",))
        self.assertIn(b"still running", m["message"])
        self.assertEqual(w2.wait(), 125)
        self.assert_gone(pid)

    def test_protocol_version_mismatch(self):
        w = self.worker()
        w.ch.expect("HELLO", clitest.scaled(10))
        w.ch.send(wire.config(proto=2))
        m = w.ch.expect("ERROR", clitest.scaled(10))
        self.assertIn(b"protocol 2", m["message"])
        self.assertEqual(w.wait(), 125)

    def test_frames_cut_in_1024_byte_pieces(self):
        """What slurmstepd does to a long line: the worker reassembles."""
        w = self.worker()
        w.ch.expect("HELLO", clitest.scaled(10))
        data = wire.encode(wire.config()) + wire.encode(
            {"type": "RUN", "id": 1, "seq": 1, "attempt": 1, "argv": ["echo"] + ["x" * 700] * 6})
        for i in range(0, len(data), 1024):
            w.ch.send_raw(data[i:i + 1024])
            time.sleep(0.01)
        w.ch.expect("READY", clitest.scaled(10), 0.1)
        _, out, _, _ = w.collect(1)
        self.assertEqual(out, b" ".join([b"x" * 700] * 6) + b"\n")
        w.ch.send({"type": "QUIT"})
        self.assertEqual(w.wait(), 0)

    def test_worker_usage(self):
        r = clitest.corral("worker", "--bogus")
        self.assertEqual(r.rc, 125)
        self.assertIn(b"unknown option '--bogus'", r.err)
        self.assertEqual(r.out, b"")
        r = clitest.corral("worker", "--help")
        self.assertEqual((r.rc, r.out), (0, b""))  # stdout belongs to the protocol
        self.assertIn(b"usage: corral worker", r.err)


if __name__ == "__main__":
    unittest.main()
