"""corral.Pool's persistent workers: a worker that dies (SIGKILL, SIGTERM,
OOM kill, os._exit, timeout) fails exactly the task it held, within 0.2 s of
its death, names the task and the cause, keeps every other result, is
replaced, and the pool goes on. Chunks say which items were done. Work
advances while the caller sleeps, and per-task peaks are measured."""
import os
import signal
import time
import unittest

import corral_test_support as sup

sup.require_host()

import corral  # noqa: E402

MiB = 1 << 20
# Seconds from a worker's death to the caller's exception: 0.2 on a host;
# scaled under qemu TCG (the VM lane), where everything is ~10x slower.
BOUND = 0.2 * sup.time_scale()


def die(how):
    """Kill the calling worker; returns the monotonic time of the death."""
    t = time.monotonic()
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    elif how == "exit":
        os._exit(3)
    elif how == "oom":
        b = bytearray(256 * MiB)  # every page touched: killed at the 64 MiB limit
        del b
    time.sleep(5)
    return t


def task(arg):
    i, victim, how, stamp = arg
    if i == victim:
        with open(stamp, "w") as f:
            f.write(repr(time.monotonic()))
        die(how)
    time.sleep(0.02)
    return i * i


def sleep_then(x):
    time.sleep(x)
    return x


def started_at(x):
    t = time.monotonic()
    time.sleep(x)
    return t


def hog_briefly(mib):
    b = bytearray(mib * MiB)
    time.sleep(0.01)
    del b
    return mib


EXPECT = {"sigkill": (corral.Killed, "SIGKILL"), "sigterm": (corral.Killed, "SIGTERM"),
          "exit": (corral.Exited, "exit code 3"), "oom": (corral.OOMKilled, "OOM-killed")}


class WorkerDeathTest(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(sup.own_batch_cgroups(), [], "batch cgroups left behind")

    def stamp(self):
        return os.path.join(os.environ.get("TMPDIR", "/tmp"), f"corral-death-{os.getpid()}")

    def test_each_death_fails_exactly_its_task(self):
        stamp = self.stamp()
        with corral.Pool(2, memory="64M") as p:
            for how, (cls, words) in EXPECT.items():
                with self.subTest(how=how):
                    rs = [p.apply_async(task, ((i, 3, how, stamp),)) for i in range(8)]
                    with self.assertRaises(cls) as cm:
                        rs[3].get(30)
                    raised, raised_wall = time.monotonic(), time.time()
                    with open(stamp) as f:
                        died = float(f.read())
                    e = cm.exception
                    if how == "oom":
                        # The stamp was taken before the allocation: the
                        # death is when the kernel ended the worker, its reap.
                        died, raised = e.record.end_time, raised_wall
                    self.assertEqual(e.index, 0)  # apply_async: the call's only task
                    self.assertIn(words, str(e))
                    self.assertIn("task((3, 3,", str(e))
                    self.assertLess(raised - died, BOUND,
                                    f"{how}: {raised - died:.3f} s from death to exception")
                    print(f"\n    [measured] worker {how}: exception {raised - died:.3f} s "
                          f"after the death: {e}")
                    others = [r.get(30) for i, r in enumerate(rs) if i != 3]
                    self.assertEqual(others, [i * i for i in range(8) if i != 3])
                    # the pool goes on, with its two workers
                    self.assertEqual(p.map(abs, [-1, -2]), [1, 2])
                    # the dead worker is replaced by the next call into the pool
                    deadline = time.monotonic() + 5 * sup.time_scale()
                    while len(p._core.workers) != 2 and time.monotonic() < deadline:
                        p.map(abs, [1])
                        time.sleep(0.01)
                    self.assertEqual(len(p._core.workers), 2)
        os.unlink(stamp)

    def test_map_death_is_the_verdict_at_once(self):
        # Index 0 dies; the others sleep for 10 s. The ordered verdict is
        # decided at the death: map raises without waiting for the workers
        # killed by the halt to be reaped.
        stamp = self.stamp()
        with corral.Pool(4, memory="64M") as p:
            for how in ("sigkill", "oom"):
                t0 = time.monotonic()
                with self.assertRaises(EXPECT[how][0]) as cm:
                    p.map(task_or_sleep, [(i, how, stamp) for i in range(8)], chunksize=1)
                raised, raised_wall = time.monotonic(), time.time()
                self.assertLess(raised - t0, 3)
                with open(stamp) as f:
                    died = float(f.read())
                if how == "oom":
                    died, raised = cm.exception.record.end_time, raised_wall
                self.assertEqual(cm.exception.index, 0)
                self.assertLess(raised - died, BOUND)
                print(f"\n    [measured] map, index 0 {how}: raised {raised - died:.3f} s after "
                      f"the death")
            self.assertEqual(p.map(abs, [-5]), [5])
        os.unlink(stamp)

    def test_chunk_says_which_items_were_done(self):
        stamp = self.stamp()
        with corral.Pool(2, halt="never") as p:
            items = [(i, 70, "sigkill", stamp) for i in range(100)]
            r = p.map_async(task_fast, items, chunksize=50)
            with self.assertRaises(corral.Killed) as cm:
                r.get(60)
            e = cm.exception
            self.assertEqual(e.index, 70)
            recs = r.records
            self.assertEqual({x.outcome for x in recs[:50]}, {"ok"})
            self.assertEqual(recs[70].outcome, "signal")
            self.assertEqual({x.outcome for x in recs[71:]}, {"ok"})  # re-run elsewhere
            done = recs[50:70]
            self.assertTrue(all(x.outcome in ("ok", "lost") for x in done), done)
            lost = [x.index for x in done if x.outcome == "lost"]
            print(f"\n    [measured] chunk 50-99, index 70 SIGKILLed: {len(lost)} finished "
                  f"items' results lost with the worker, 29 re-run elsewhere")
            it = p.imap(task_fast, items, chunksize=50)
            got = {}
            while True:
                try:
                    v = next(it)
                    got[len(got)] = v
                except corral.ResultLost as x:
                    self.assertIsInstance(x.__cause__, corral.Killed)
                    got[len(got)] = "lost"
                except corral.Killed as x:
                    self.assertEqual(x.index, 70)
                    got[len(got)] = "killed"
                except StopIteration:
                    break
            self.assertEqual(len(got), 100)
            self.assertEqual(got[70], "killed")
            self.assertEqual([got[i] for i in range(71, 100)], [i * i for i in range(71, 100)])
        with corral.Pool(2) as p:  # halt "ordered": the verdict is the killed item
            with self.assertRaises(corral.Killed) as cm:
                p.map(task_fast, [(i, 70, "sigkill", stamp) for i in range(100)], chunksize=50)
            self.assertEqual(cm.exception.index, 70)
        os.unlink(stamp)

    def test_timeout_with_kill_grace(self):
        # SIGTERM at the timeout, SIGKILL after the grace: a task that ignores
        # SIGTERM still ends, as TimedOut, and the pool goes on.
        with corral.Pool(1, timeout=0.3, kill_grace=0.3) as p:
            t = time.monotonic()
            with self.assertRaises(corral.TimedOut) as cm:
                p.apply(ignore_term_and_sleep, (10,))
            self.assertLess(time.monotonic() - t, 5)
            self.assertGreaterEqual(cm.exception.wall_time, 0.55)
            self.assertEqual(p.apply(abs, (-2,)), 2)

    def test_timeout_is_per_task_not_per_worker(self):
        with corral.Pool(1, timeout=0.5, halt="never") as p:
            # ten tasks of 0.2 s on one worker: 2 s of its life, none times out
            self.assertEqual(p.map(sleep_then, [0.2] * 10, chunksize=1), [0.2] * 10)
            r = p.map_async(sleep_then, [0.1, 3, 0.1], chunksize=1)
            with self.assertRaises(corral.TimedOut) as cm:
                r.get(30)
            e = cm.exception
            self.assertEqual(e.index, 1)
            self.assertGreaterEqual(e.wall_time, 0.45)
            self.assertLess(e.wall_time, 1.5)
            self.assertIn("timed out", str(e))
            self.assertEqual([x.outcome for x in r.records], ["ok", "timeout", "ok"])
            # inside a chunk, the timeout is the item's
            self.assertEqual(p.map(sleep_then, [0.2] * 5, chunksize=5), [0.2] * 5)

    def test_retry_grows_the_limit_in_a_fresh_worker(self):
        with corral.Pool(2, memory="32M", retries=1) as p:
            r = p.map_async(hog_briefly, [1, 48, 2], chunksize=1)
            self.assertEqual(r.get(60), [1, 48, 2])
            recs = r.records
            self.assertEqual([x.attempt for x in recs], [1, 2, 1])
            self.assertEqual(recs[1].memory_limit, 64 * MiB)
            self.assertEqual(recs[0].memory_limit, 32 * MiB)
            self.assertNotIn(recs[1].pid, (recs[0].pid, recs[2].pid))

    def test_memory_budget_bounds_the_workers(self):
        with corral.Pool(4, memory="32M", memory_budget="64M", retries=1) as p:
            r = p.map_async(hog_briefly, [1, 48, 2, 1], chunksize=1)
            most = 0
            while not r.ready():
                most = max(most, len(p._core.workers))
                time.sleep(0.005)
            self.assertEqual(r.get(60), [1, 48, 2, 1])  # the retry at 64M waited for room
            self.assertLessEqual(most, 2)
            self.assertEqual(r.records[1].memory_limit, 64 * MiB)

    def test_per_task_peak(self):
        with corral.Pool(1, memory="256M") as p:
            r = p.map_async(hog_briefly, [64, 1, 64, 1], chunksize=1)
            r.get(60)
            recs = r.records
            mode = sup.own_memory_cgroup()[0]
            print(f"\n    [measured] per-task peaks ({mode}): " +
                  ", ".join(f"{(x.memory_peak or 0) / MiB:.1f} MiB ({x.memory_peak_scope})"
                            for x in recs))
            self.assertGreaterEqual(recs[0].memory_peak, 64 * MiB)
            if recs[1].memory_peak_scope == "task":
                self.assertLess(recs[1].memory_peak, 48 * MiB)  # reset between tasks
            else:
                self.assertEqual(mode, "v2")  # Linux < 6.12 cannot reset memory.peak
                self.assertGreaterEqual(recs[1].memory_peak, 64 * MiB)


def ignore_term_and_sleep(x):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(x)


def task_or_sleep(arg):
    i, how, stamp = arg
    if i == 0:
        time.sleep(0.05)
        with open(stamp, "w") as f:
            f.write(repr(time.monotonic()))
        die(how)
    time.sleep(10)
    return i


def task_fast(arg):
    i, victim, how, stamp = arg
    if i == victim:
        with open(stamp, "w") as f:
            f.write(repr(time.monotonic()))
        die(how)
    return i * i


class BackgroundTest(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(sup.own_batch_cgroups(), [], "batch cgroups left behind")

    def test_ten_apply_async_start_while_the_caller_sleeps(self):
        with corral.Pool(2) as p:
            t0 = time.monotonic()
            rs = [p.apply_async(started_at, (0.1,)) for _ in range(10)]
            time.sleep(1.2 * sup.time_scale())  # (TCG: 10x, the VM's host is shared too)
            woke = time.monotonic()
            starts = [r.get(10) for r in rs]
            self.assertTrue(all(s < woke for s in starts),
                            [round(s - t0, 2) for s in starts])
            print(f"\n    [measured] 10 apply_async on 2 workers: all started while the "
                  f"caller slept, the last {max(starts) - t0:.2f} s after the first call")
        # callbacks run meanwhile too (in the pool's thread, as multiprocessing)
        with corral.Pool(2) as p:
            got = []
            for i in range(6):
                p.apply_async(abs, (-i,), callback=got.append)
            deadline = time.monotonic() + 10
            while len(got) < 6 and time.monotonic() < deadline:
                time.sleep(0.01)  # never calls into the pool
            self.assertEqual(sorted(got), list(range(6)))

    def test_nothing_outlives_an_unclosed_pool(self):
        # The interpreter exits with a pool that was never closed, and another
        # one whose worker was SIGKILLed by the script (then replaced by an
        # exec'd interpreter while the script slept): nothing remains.
        import subprocess
        import sys
        script = (
            "import os, signal, sys, time, corral\n"
            "p = corral.Pool(2)\n"
            "q = corral.Pool(1)\n"
            "print(p.apply(os.getpid), q.apply(os.getpid), flush=True)\n"
            "w = q.apply(os.getpid)\n"
            "os.kill(w, signal.SIGKILL)\n"
            "r = q.apply_async(os.getpid)\n"
            "time.sleep(1)\n"
            "print(r.get(30), flush=True)\n")
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=sup.child_env())
        stdout, stderr = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, stderr.decode())
        self.assertEqual(sup.own_batch_cgroups(proc.pid), [])
        pids = [int(x) for x in stdout.split()]
        self.assertEqual(len(pids), 3)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{x}") for x in pids):
            time.sleep(0.05)
        for x in pids:
            self.assertFalse(os.path.exists(f"/proc/{x}"), f"worker {x} outlived the pool")


if __name__ == "__main__":
    unittest.main()
