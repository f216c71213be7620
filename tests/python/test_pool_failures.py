"""corral.Pool: tasks that die, exact attribution, the ordered verdict,
retries with memory growth, and nothing left behind."""
import os
import signal
import tempfile
import time
import unittest

import corral_test_support as sup

sup.require_host()

import corral  # noqa: E402

MiB = 1 << 20


def hog(mb):
    b = bytearray(mb * MiB)  # zero-filled: every page is touched
    return len(b)


def selfkill(sig):
    os.kill(os.getpid(), sig)
    time.sleep(5)
    return "survived"


class FailureTest(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(sup.own_batch_cgroups(), [], "batch cgroups left behind")

    def test_oom_killed_with_index_and_limit(self):
        with corral.Pool(2, memory="32M") as p:
            t = time.monotonic()
            with self.assertRaises(corral.OOMKilled) as cm:
                p.map(lambda i: hog(256) if i == 1 else i, range(4))
            self.assertLess(time.monotonic() - t, 30)
            e = cm.exception
            self.assertIs(type(e), corral.OOMKilled)
            self.assertTrue(e.own_limit)
            self.assertEqual(e.index, 1)
            self.assertEqual(e.outcome, "oom")
            self.assertEqual(e.memory_limit, 32 * MiB)
            self.assertGreaterEqual(e.memory_peak or 0, 30 * MiB)
            self.assertEqual(e.signal, signal.SIGKILL)
            self.assertIn("index 1 (", str(e))
            self.assertIn(") was OOM-killed", str(e))
            self.assertEqual(e.item, e.record.item)
            self.assertIn("memory.max 32.0 MiB", str(e))
            self.assertIsInstance(e, corral.TaskFailed)
            # apply: the same, without an index
            with self.assertRaises(corral.OOMKilled) as cm:
                p.apply(hog, (256,))
            self.assertEqual(cm.exception.index, 0)
            self.assertTrue(str(cm.exception).startswith("index 0 (hog(256)) was OOM-killed"),
                            str(cm.exception))
            # and the pool is still usable
            self.assertEqual(p.apply(hog, (1,)), MiB)

    def test_sigterm_and_sigkill_self(self):
        with corral.Pool(2) as p:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                t = time.monotonic()
                with self.assertRaises(corral.Killed) as cm:
                    p.map(lambda i: selfkill(sig) if i == 2 else i, range(5))
                self.assertLess(time.monotonic() - t, 4)
                self.assertEqual(cm.exception.index, 2)
                self.assertEqual(cm.exception.signal, sig)
                self.assertEqual(cm.exception.outcome, "signal")
                self.assertIn(f"SIG{signal.Signals(sig).name[3:]}", str(cm.exception))
            with self.assertRaises(corral.Killed) as cm:
                p.apply(os.abort)
            self.assertEqual(cm.exception.signal, signal.SIGABRT)

    def test_timeout(self):
        with corral.Pool(2, timeout=0.5) as p:
            t = time.monotonic()
            with self.assertRaises(corral.TimedOut) as cm:
                p.map(lambda i: time.sleep(30 if i == 1 else 0), range(3))
            self.assertLess(time.monotonic() - t, 10)
            e = cm.exception
            self.assertEqual(e.index, 1)
            self.assertEqual(e.outcome, "timeout")
            self.assertGreaterEqual(e.wall_time, 0.45)
            self.assertIn("timed out", str(e))
        with corral.Pool(1, timeout="300ms") as p:
            with self.assertRaises(corral.TimedOut):
                p.apply(time.sleep, (10,))

    def test_retries_with_memory_growth(self):
        # 48 MiB does not fit in 32M; the retry runs with 64M and succeeds.
        with corral.Pool(2, memory="32M", retries=2, memory_growth=2.0) as p:
            r = p.map_async(hog, [1, 48, 2])
            self.assertEqual(r.get(60), [MiB, 48 * MiB, 2 * MiB])
            recs = r.records
            self.assertEqual([x.attempt for x in recs], [1, 2, 1])
            self.assertEqual(recs[1].memory_limit, 64 * MiB)
            self.assertEqual(recs[0].memory_limit, 32 * MiB)
        # Without retries the same task is OOM-killed.
        with corral.Pool(1, memory="32M") as p:
            with self.assertRaises(corral.OOMKilled):
                p.apply(hog, (48,))
        # memory_ceiling caps the growth: 40M is still too small.
        with corral.Pool(1, memory="32M", retries=3, memory_ceiling="40M") as p:
            with self.assertRaises(corral.OOMKilled) as cm:
                p.apply(hog, (48,))
            self.assertEqual(cm.exception.attempts, 4)
            self.assertEqual(cm.exception.memory_limit, 40 * MiB)

    def test_ordered_verdict_is_the_lowest_failing_index(self):
        # Index 5 fails at once, index 2 fails late, index 3 is killed (not an
        # exception): whatever the parallelism and timing, map() raises index 2.
        def task(i):
            if i == 2:
                time.sleep(0.4)
                raise ValueError("two")
            if i == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            if i == 5:
                raise KeyError("five")
            time.sleep(0.05)
            return i
        for procs in (1, 2, 4):
            for _ in range(2):
                with corral.Pool(procs) as p:
                    r = p.map_async(task, range(8))
                    with self.assertRaises(ValueError, msg=f"processes={procs}") as cm:
                        r.get(60)
                    self.assertIn("two", str(cm.exception))
                    recs = r.records
                    self.assertEqual([x.outcome for x in recs[:3]], ["ok", "ok", "exit"])
                    # nothing after the verdict ran to completion or failed as verdict
                    for x in recs[3:]:
                        self.assertTrue(x is None or x.outcome in
                                        ("cancelled", "aborted", "ok", "signal", "exit"), x)
                    # imap: raises at index 2, after yielding 0 and 1
                    got = []
                    with self.assertRaises(ValueError):
                        for v in p.imap(task, range(8)):
                            got.append(v)
                    self.assertEqual(got, [0, 1])
                    got = []
                    with self.assertRaises(ValueError):
                        for v in p.imap_unordered(task, range(8)):
                            got.append(v)
                    self.assertTrue({0, 1} <= set(got), got)

    def test_ordered_verdict_with_a_kill(self):
        # The lowest failing index is a SIGKILL: it wins over later exceptions.
        def task(i):
            if i == 1:
                time.sleep(0.3)
                os.kill(os.getpid(), signal.SIGKILL)
            if i >= 2:
                raise RuntimeError(i)
            return i
        for procs in (1, 2, 4):
            with corral.Pool(procs) as p:
                with self.assertRaises(corral.Killed) as cm:
                    p.map(task, range(6))
                self.assertEqual(cm.exception.index, 1)

    def test_halt_never_and_now(self):
        def task(i):
            if i in (1, 3):
                raise ValueError(i)
            time.sleep(0.2)
            return i
        with corral.Pool(2, halt="never") as p:
            r = p.map_async(task, range(6))
            with self.assertRaises(ValueError) as cm:
                r.get(60)
            self.assertEqual(cm.exception.args, (1,))
            self.assertEqual([x.outcome for x in r.records],
                             ["ok", "exit", "ok", "exit", "ok", "ok"])
            # imap with halt never raises each failure and goes on
            out = []
            it = p.imap(task, range(5))
            while True:
                try:
                    out.append(next(it))
                except ValueError as e:
                    out.append(("err", e.args[0]))
                except StopIteration:
                    break
            self.assertEqual(out, [0, ("err", 1), 2, ("err", 3), 4])
        # halt now: task 0 fails only once task 1 runs (a file task 1 makes),
        # so the halt always finds a task to abort whatever the timing of
        # the second worker's start (it was a race: task 0 could fail before
        # task 1 was handed out, and then every other task was "cancelled").
        with tempfile.TemporaryDirectory() as d:
            started = os.path.join(d, "started")

            def now_task(i):
                if i == 0:
                    deadline = time.monotonic() + 20
                    while not os.path.exists(started) and time.monotonic() < deadline:
                        time.sleep(0.01)
                    raise ValueError(i)
                open(started, "w").close()
                time.sleep(30)
            with corral.Pool(2, halt="now") as p:
                t = time.monotonic()
                r = p.map_async(now_task, range(4))
                with self.assertRaises(ValueError):
                    r.get(60)
                self.assertLess(time.monotonic() - t, 25)
                outcomes = [x.outcome if x else None for x in r.records]
                self.assertEqual(outcomes[0], "exit")
                self.assertEqual(outcomes[1], "aborted", outcomes)

    def test_subprocess_oom(self):
        import subprocess
        import sys
        code = "bytearray(256 << 20)"

        def task():
            subprocess.run([sys.executable, "-c", code])
            return "done"
        # oom_group=False: on cgroup v2, memory.oom.group=1 (the default) makes
        # the OOM killer take the whole task, leader included: OOMKilled.
        with corral.Pool(1, memory="64M", oom_group=False) as p:
            with self.assertRaises(corral.SubprocessOOM) as cm:
                p.apply(task)
            self.assertEqual(cm.exception.value, "done")
            self.assertGreaterEqual(cm.exception.oom_kills, 1)
        with corral.Pool(1, memory="64M") as p:
            with self.assertRaises((corral.SubprocessOOM, corral.OOMKilled)) as cm:
                p.apply(task)
            if sup.own_memory_cgroup()[0] == "v2":
                self.assertIsInstance(cm.exception, corral.OOMKilled)

    def test_no_process_left_after_terminate(self):
        with corral.Pool(3) as p:
            r = p.map_async(lambda i: time.sleep(60), range(3))
            deadline = time.monotonic() + 10
            def busy():
                with p._core.lock:  # the pool's thread changes the workers
                    return sum(1 for w in p._core.workers.values() if w.units)
            while busy() < 3 and time.monotonic() < deadline:
                r.ready()
            time.sleep(0.3)
            pids = [int(k) for k in os.listdir("/proc") if k.isdigit() and _is_task(int(k))]
            self.assertEqual(len(pids), 3, [(k, _comm(k)) for k in pids])
        for pid in pids:
            self.assertFalse(os.path.exists(f"/proc/{pid}"), f"task {pid} still alive")


def _is_task(pid):
    """pid runs in a task cgroup (t<seq>-a<n>) of one of our batches."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            text = f.read()
    except OSError:
        return False
    prefix = f"corral-{os.getpid()}-"
    for line in text.splitlines():
        parts = line.split(":", 2)[2].split("/")
        if len(parts) >= 2 and parts[-2].startswith(prefix) and parts[-1].startswith("t"):
            return True
    return False


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return int(s[s.rindex(")") + 2:].split()[1])
    except (OSError, ValueError):
        return -1


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


if __name__ == "__main__":
    unittest.main()
