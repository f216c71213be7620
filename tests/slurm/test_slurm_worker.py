"""`corral worker` on a real multi-node Slurm (scripts/slurm-cluster.sh), one
`srun --nodes=1 --ntasks=1 --nodelist=NODE --overlap corral worker` per node,
the protocol carried on srun's stdin/stdout, driven by the test head of
tests/cli/wire.py.

Needs SLURM_CONF pointing at a running cluster of >= 3 nodes (the `slurm`
lane of scripts/test.sh starts one); otherwise SKIPPED (exit 77), or a
failure with CORRAL_NO_SKIP=1.

Besides checking, it measures what a head sees when a worker dies and when a
node's slurmd dies mid-task (EOF? when? srun's exit code?): lines starting
with "FACT:" on stdout (run ctest with -V to see them).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
import clitest  # noqa: E402
import wire  # noqa: E402

SLURM_CONF = os.environ.get("SLURM_CONF", "")
CLUSTER = os.path.join(clitest.SRC, "scripts", "slurm-cluster.sh")
OK, OOM, ABORTED = 0, 2, 9


def cluster(*args, check=True):
    d = os.path.dirname(SLURM_CONF)
    p = subprocess.run([CLUSTER] + list(args) + ["--dir", d], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if check and p.returncode != 0:
        raise AssertionError("slurm-cluster.sh %s: %s" % (" ".join(args), p.stdout.decode()))
    return p.stdout.decode()


def cluster_beating(args, channels):
    """cluster(*args), heartbeating the given channels meanwhile (kill-node
    may take seconds: the workers must not take the head for lost)."""
    d = os.path.dirname(SLURM_CONF)
    p = subprocess.Popen([CLUSTER] + list(args) + ["--dir", d], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    while p.poll() is None:
        for ch in channels:
            try:
                ch.heartbeat()
            except OSError:
                pass
        time.sleep(0.1)
    out = p.stdout.read().decode()
    p.stdout.close()
    if p.returncode != 0:
        raise AssertionError("slurm-cluster.sh %s: %s" % (" ".join(args), out))
    print(out.strip(), flush=True)
    return out


def slurmd_timeout():
    with open(SLURM_CONF) as f:
        m = re.search(r"^SlurmdTimeout=(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 300


def setUpModule():
    clitest.setUpModule()  # root, a usable memory cgroup
    reason = None
    if not SLURM_CONF or not os.path.isfile(SLURM_CONF):
        reason = ("SLURM_CONF is not set to a cluster's slurm.conf: start one with "
                  "scripts/slurm-cluster.sh start and export SLURM_CONF (the slurm lane does)")
    elif subprocess.run([CLUSTER, "status", "--dir", os.path.dirname(SLURM_CONF)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        reason = "the cluster of %s is not up (scripts/slurm-cluster.sh status)" % SLURM_CONF
    if reason:
        if os.environ.get("CORRAL_NO_SKIP") == "1":
            raise RuntimeError("CORRAL_NO_SKIP=1 but: " + reason)
        print("SKIPPED: " + reason, flush=True)
        sys.exit(77)


def fact(msg):
    print("FACT: " + msg, flush=True)


class SrunWorker:
    """One worker behind its own srun, and the head's channel to it."""

    def __init__(self, job, node):
        self.node = node
        self.t_start = time.monotonic()
        self.p = subprocess.Popen(
            ["srun", "--jobid", job, "--nodes=1", "--ntasks=1", "--nodelist=" + node, "--overlap",
             clitest.BIN, "worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.set_blocking(self.p.stdin.fileno(), False)
        self.ch = wire.Channel(self.p.stdout.fileno(), self.p.stdin.fileno())

    def start(self, **config):
        self.hello = self.ch.expect("HELLO", clitest.scaled(30))
        self.t_hello = time.monotonic() - self.t_start
        self.ch.send(wire.config(**config))
        ready = self.ch.expect("READY", clitest.scaled(30), 0.1)
        self.t_ready = time.monotonic() - self.t_start
        return ready

    def close(self):
        """End it the way a head should: QUIT and EOF, then SIGTERM to srun
        (forwarded to the step); never SIGKILL first: Slurm then SIGKILLs
        the whole step at once, corral's watchdog included (test_5)."""
        if self.p.poll() is None:
            try:
                self.ch.send({"type": "QUIT"})
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(clitest.scaled(15))
            except subprocess.TimeoutExpired:
                self.p.terminate()
                try:
                    self.p.wait(clitest.scaled(15))
                except subprocess.TimeoutExpired:
                    self.p.kill()
        self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except OSError:
                pass


class SlurmWorkerTest(unittest.TestCase):
    def setUp(self):
        self.workers = []
        self.killed_nodes = []
        out = subprocess.run(
            ["salloc", "-N3", "--exclusive", "--no-kill", "--no-shell", "--immediate=60",
             "-J", "corral-test"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=120).stdout.decode()
        m = re.search(r"Granted job allocation (\d+)", out)
        self.assertIsNotNone(m, "salloc: " + out)
        self.job = m.group(1)
        self.tmp = tempfile.mkdtemp(prefix="corral-slurm-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def tearDown(self):
        for w in self.workers:
            w.close()
        subprocess.run(["scancel", self.job])
        for n in self.killed_nodes:
            cluster("restart-node", n)
        pids = [w.hello["pid"] for w in self.workers if getattr(w, "hello", None)]
        self.assertTrue(clitest.wait_until(lambda: not any(clitest.pid_alive(p) for p in pids), 30),
                        "a worker outlived the test")
        self.assertEqual(clitest.leftover_cgroups(pids), [], "batch cgroups left behind")

    def worker(self, node):
        w = SrunWorker(self.job, node)
        self.workers.append(w)
        return w

    def assert_gone(self, pid, timeout=10):
        self.assertTrue(clitest.wait_until(lambda: not clitest.pid_alive(pid), clitest.scaled(timeout)),
                        "pid %d is still alive" % pid)

    def test_1_every_node(self):
        """A worker on each node: HELLO names the node, and a binary output
        and an OOM come back byte-exact and attributed, over srun's stdio."""
        data = bytes(range(256)) * 1200 + b"\n" * 3000 + bytes(range(256))
        path = os.path.join(self.tmp, "bytes")
        with open(path, "wb") as f:
            f.write(data)
        nodes = ["node1", "node2", "node3"]
        ws = [self.worker(n) for n in nodes]  # all three sruns at once
        for w in ws:
            w.start(jobs=2)
            self.assertEqual(w.hello["node"], w.node.encode())
            self.assertEqual(w.hello["cpus"], 2)  # SLURM_CPUS_ON_NODE of the exclusive job
        fact("3 workers: HELLO after %s s, READY after %s s (from srun start)" % (
            [round(w.t_hello, 3) for w in ws], [round(w.t_ready, 3) for w in ws]))
        for k, w in enumerate(ws):
            w.ch.send({"type": "RUN", "id": 10 + k, "seq": 1, "attempt": 1, "argv": ["cat", path]})
            w.ch.send({"type": "RUN", "id": 20 + k, "seq": 2, "attempt": 1,
                       "memory_max": 48 << 20, "argv": [clitest.PAYLOAD, "alloc", "300"]})
        for k, w in enumerate(ws):
            others = {}
            st, out, err, r = wire.collect_attempt(w.ch, 10 + k, clitest.scaled(60), 0.1, others)
            self.assertEqual(r["outcome"], OK)
            self.assertEqual(out, data)
            self.assertEqual(r["node"], w.node.encode())
            res = [m for m in others.get(20 + k, []) if m["type"] == "RESULT"]
            res = res[0] if res else wire.collect_attempt(w.ch, 20 + k, clitest.scaled(60), 0.1)[3]
            self.assertEqual(res["outcome"], OOM, res)
            self.assertTrue(res["own_limit_hit"])
            self.assertEqual(res["node"], w.node.encode())
            self.assertTrue(res["sentence"].startswith(b"task 2 was OOM-killed"))
        # A round trip of a small task through srun, to put a number on it.
        w = ws[0]
        times = []
        for i in range(20):
            t0 = time.monotonic()
            w.ch.send({"type": "RUN", "id": 100 + i, "seq": 3, "attempt": 1, "argv": ["true"]})
            wire.collect_attempt(w.ch, 100 + i, clitest.scaled(30), 0.1)
            times.append(time.monotonic() - t0)
        times.sort()
        fact("RUN -> RESULT of `true` through srun: median %.1f ms, max %.1f ms (20 runs)" % (
            times[10] * 1e3, times[-1] * 1e3))
        for w in ws:
            w.ch.send({"type": "QUIT"})
        for w in ws:
            self.assertEqual(w.ch.until_eof(clitest.scaled(30)), [])
            self.assertEqual(w.p.wait(clitest.scaled(30)), 0)

    def _running(self, node, **config):
        w = self.worker(node)
        w.start(**config)
        w.ch.send({"type": "RUN", "id": 1, "seq": 1, "attempt": 1,
                   "argv": [clitest.PAYLOAD, "sleep", "600"]})
        st = w.ch.expect("STARTED", clitest.scaled(30), 0.1)
        return w, st["pid"]

    def _watch(self, w, bound, also=()):
        """Keep heartbeating to w (and the channels in also) until EOF on
        w's srun stdout or bound seconds; returns (EOF time or None, last
        worker frame time)."""
        t0 = time.monotonic()
        last = None
        eof = None
        next_hb = 0.0
        while time.monotonic() - t0 < bound:
            if time.monotonic() >= next_hb:
                next_hb = time.monotonic() + 0.2
                for ch in (w.ch,) + tuple(also):
                    try:
                        ch.heartbeat()
                    except OSError:
                        pass  # that srun is gone: its EOF tells
            try:
                m = w.ch.recv(0.1)
            except TimeoutError:
                continue
            if m is None:
                eof = time.monotonic() - t0
                break
            last = time.monotonic() - t0
        return eof, last

    def test_2_worker_killed(self):
        """SIGKILL to the worker: what srun says, and nothing is left."""
        w, task = self._running("node1")
        t0 = time.monotonic()
        os.kill(w.hello["pid"], signal.SIGKILL)
        eof, _ = self._watch(w, 60)
        rc = w.p.wait(clitest.scaled(30))
        t_rc = time.monotonic() - t0
        err = w.p.stderr.read().decode(errors="replace").strip().replace("\n", " | ")
        fact("worker SIGKILLed mid-task: EOF on srun's stdout after %s s; srun exit %d after "
             "%.3f s; srun stderr: %s" % ("%.3f" % eof if eof is not None else "never", rc, t_rc,
                                          err))
        self.assertIsNotNone(eof)
        self.assertNotEqual(rc, 0)
        self.assert_gone(task)
        self.assert_swept("node1", w.hello["pid"], "worker SIGKILLed")

    def assert_swept(self, node, pid, what):
        """Batch cgroups of the dead worker pid: record whether any were
        left, and check that the next worker on that node sweeps them."""
        left = clitest.leftover_cgroups([pid])
        fact("%s: batch cgroups of the dead worker left: %d" % (what, len(left)))
        if left:
            w2 = self.worker(node)
            w2.start()
            self.assertEqual(clitest.leftover_cgroups([pid]), [],
                             "the next worker on %s did not sweep them" % node)

    def test_3_slurmd_killed(self):
        """SIGKILL to the node's slurmd alone: its step runs on, the channel
        keeps working until Slurm declares the node down."""
        bound = 3 * slurmd_timeout() + 60
        w, task = self._running("node2", heartbeat_ms=250, heartbeat_misses=int(8 * clitest.SCALE))
        t0 = time.monotonic()
        cluster_beating(["kill-node", "node2", "--slurmd-only"], [w.ch])
        self.killed_nodes.append("node2")
        # The channel still works: a task runs to its end after the kill.
        w.ch.send({"type": "RUN", "id": 2, "seq": 2, "attempt": 1, "argv": ["echo", "alive"]})
        _, out, _, r = wire.collect_attempt(w.ch, 2, clitest.scaled(30), 0.2)
        self.assertEqual((r["outcome"], out), (OK, b"alive\n"))
        t_run = time.monotonic() - t0
        eof, last = self._watch(w, bound)
        rc = w.p.wait(clitest.scaled(60))
        t_rc = time.monotonic() - t0
        err = w.p.stderr.read().decode(errors="replace").strip().replace("\n", " | ")
        fact("slurmd SIGKILLed mid-task (SlurmdTimeout=%d): a RUN after the kill completed "
             "(%.3f s); worker frames kept coming until %s s; EOF after %s s; srun exit %d "
             "after %.3f s; srun stderr: %s" % (
                 slurmd_timeout(), t_run, "%.3f" % last if last is not None else "-",
                 "%.3f" % eof if eof is not None else "never (bound %d s)" % bound, rc, t_rc, err))
        self.assertIsNotNone(eof, "no EOF within %d s" % bound)
        # The orphaned worker hears no more heartbeats: it leaves within its
        # bound (2 s) and kills its task.
        self.assert_gone(w.hello["pid"], 30)
        self.assert_gone(task)

    def test_4_node_killed(self):
        """The whole node at once (slurmd, slurmstepd, the worker)."""
        bound = 3 * slurmd_timeout() + 60
        other = self.worker("node1")  # same allocation (--no-kill), another node
        other.start(heartbeat_ms=250, heartbeat_misses=int(40 * clitest.SCALE))
        others = [other.ch]
        w, task = self._running("node3", heartbeat_ms=250, heartbeat_misses=int(8 * clitest.SCALE))
        t0 = time.monotonic()
        cluster_beating(["kill-node", "node3"], [w.ch, other.ch])
        self.killed_nodes.append("node3")
        eof, last = self._watch(w, bound, also=others)
        # The allocation lives on (--no-kill): node1's worker still works
        # once node3 is declared down.
        other.ch.send({"type": "RUN", "id": 9, "seq": 9, "attempt": 1, "argv": ["echo", "on"]})
        _, out, _, r = wire.collect_attempt(other.ch, 9, clitest.scaled(30), 0.2)
        self.assertEqual((r["outcome"], out, r["node"]), (OK, b"on\n", b"node1"))
        fact("with --no-kill, a worker on another node of the job still ran a task after "
             "node3 was declared down")
        rc = w.p.wait(clitest.scaled(60))
        t_rc = time.monotonic() - t0
        err = w.p.stderr.read().decode(errors="replace").strip().replace("\n", " | ")
        fact("node killed mid-task (slurmd + slurmstepd + worker, SlurmdTimeout=%d): last "
             "worker frame at %s s; EOF after %s s; srun exit %d after %.3f s; srun stderr: %s" % (
                 slurmd_timeout(), "%.3f" % last if last is not None else "-",
                 "%.3f" % eof if eof is not None else "never (bound %d s)" % bound, rc, t_rc, err))
        self.assertIsNotNone(eof, "no EOF within %d s" % bound)
        self.assert_gone(task)

    def test_5_srun_killed(self):
        """SIGKILL to a worker's srun (what a head must never do): Slurm
        cancels the step and SIGKILLs all of it at once, corral's watchdog
        included, so nothing removes the worker's batch cgroup then; the
        next corral on that node sweeps it (stale batch of a dead owner)."""
        w, task = self._running("node1")
        pid = w.hello["pid"]
        t0 = time.monotonic()
        w.p.kill()
        w.p.wait()
        gone = clitest.wait_until(lambda: not clitest.pid_alive(pid), clitest.scaled(30))
        fact("srun SIGKILLed mid-task: the worker was gone after %.3f s (its stderr is lost "
             "with srun; strace showed SIGKILL, no SIGTERM first)" % (time.monotonic() - t0))
        self.assertTrue(gone)
        self.assert_gone(task)
        self.assert_swept("node1", pid, "srun SIGKILLed")


if __name__ == "__main__":
    unittest.main()
