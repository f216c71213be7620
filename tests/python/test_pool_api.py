"""corral.Pool: multiprocessing.Pool's API, results, order, exceptions."""
import multiprocessing
import os
import pickle
import sys
import threading
import time
import unittest
import warnings

import corral_test_support as sup

sup.require_host()

import corral  # noqa: E402
from corral import _lib  # noqa: E402


def square(x):
    return x * x


def getpid_of(_):
    return os.getpid()


def fail_on(bad):
    def f(x):
        if x in bad:
            raise ValueError(f"bad item {x}")
        return x
    return f


COUNTER = 0


def bump_counter(_):
    global COUNTER
    COUNTER += 1
    return COUNTER


class Unpicklable:
    def __reduce__(self):
        raise TypeError("I will not be pickled")


class NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


class PoolApiTest(unittest.TestCase):
    def setUp(self):
        self.pool = corral.Pool(2)

    def tearDown(self):
        self.pool.terminate()
        self.assertEqual(sup.own_batch_cgroups(), [], "batch cgroups left behind")

    def test_layout_checked_at_import(self):
        for name, mirror in _lib._MIRRORS.items():
            self.assertEqual(_lib.lib.corral_struct_size(name.encode()),
                             __import__("ctypes").sizeof(mirror), name)

    def test_map_order_and_lambdas(self):
        self.assertEqual(self.pool.map(square, range(10)), [x * x for x in range(10)])
        k = 7
        self.assertEqual(self.pool.map(lambda x: x + k, [1, 2, 3]), [8, 9, 10])
        # results come back in input order even when completion order differs
        self.assertEqual(self.pool.map(lambda x: (time.sleep(0.05 * (4 - x)), x)[1],
                                       range(5)), list(range(5)))
        self.assertEqual(self.pool.map(square, []), [])
        self.assertEqual(self.pool.map(square, (i for i in range(3))), [0, 1, 4])

    def test_workers_persist_unless_maxtasksperchild(self):
        pids = self.pool.map(getpid_of, range(40), chunksize=1)
        self.assertLessEqual(len(set(pids)), 2)  # two persistent workers
        self.assertNotIn(os.getpid(), pids)
        with corral.Pool(2, maxtasksperchild=1) as p:  # a fresh fork per task
            pids = p.map(getpid_of, range(6), chunksize=1)
            self.assertEqual(len(set(pids)), 6)
        with corral.Pool(1, maxtasksperchild=3) as p:
            pids = p.map(getpid_of, range(9), chunksize=1)
            self.assertEqual(len(set(pids)), 3)
            self.assertEqual([pids.count(x) for x in dict.fromkeys(pids)], [3, 3, 3])
        # chunksize: one chunk runs on one worker
        pids = self.pool.map(getpid_of, range(8), chunksize=4)
        self.assertEqual(len(set(pids[:4])), 1)
        self.assertEqual(len(set(pids[4:])), 1)

    def test_starmap(self):
        self.assertEqual(self.pool.starmap(pow, [(2, 3), (3, 2), (10, 0)]), [8, 9, 1])
        self.assertEqual(self.pool.starmap_async(pow, [(2, 5)]).get(10), [32])

    def test_imap_and_unordered(self):
        slow_first = lambda x: (time.sleep(2 if x == 0 else 0), x)[1]  # noqa: E731
        self.assertEqual(list(self.pool.imap(slow_first, range(6))), list(range(6)))
        got = list(self.pool.imap_unordered(slow_first, range(6)))
        self.assertEqual(sorted(got), list(range(6)))
        self.assertEqual(got[-1], 0, "imap_unordered should yield in completion order")
        it = self.pool.imap(lambda x: (time.sleep(2), x)[1], [1])
        with self.assertRaises(multiprocessing.TimeoutError):
            it.next(timeout=0.2)
        self.assertEqual(it.next(timeout=10), 1)
        with self.assertRaises(StopIteration):
            next(it)

    def test_imap_is_lazy(self):
        consumed = []

        def gen():
            for i in range(100):
                consumed.append(i)
                yield i
        it = self.pool.imap(square, gen())
        self.assertEqual(next(it), 0)
        self.assertLess(len(consumed), 100)
        self.assertEqual(sum(1 for _ in it), 99)

    def test_abandoned_imap_starts_no_more_tasks(self):
        consumed = []

        def endless():
            i = 0
            while True:
                consumed.append(i)
                yield i
                i += 1
        for v in self.pool.imap(square, endless()):
            if v >= 4:
                break
        n = len(consumed)
        import gc
        gc.collect()
        self.assertEqual(self.pool.map(square, [7]), [49])  # drives the pool
        self.assertLessEqual(len(consumed), n + 1)
        self.pool.close()
        self.pool.join()  # terminates: the endless job is stopped

    def test_apply_and_apply_async(self):
        self.assertEqual(self.pool.apply(divmod, (17, 5)), (3, 2))
        self.assertEqual(self.pool.apply(dict, (), {"a": 1}), {"a": 1})
        got = []
        rs = [self.pool.apply_async(square, (i,), callback=got.append) for i in range(5)]
        self.assertEqual([r.get(timeout=20) for r in rs], [0, 1, 4, 9, 16])
        self.assertEqual(sorted(got), [0, 1, 4, 9, 16])
        self.assertTrue(all(r.ready() and r.successful() for r in rs))
        slow = self.pool.apply_async(time.sleep, (1.5,))
        self.assertFalse(slow.ready())
        with self.assertRaises(ValueError):
            slow.successful()
        t = time.monotonic()
        with self.assertRaises(corral.TimeoutError):
            slow.get(timeout=0.2)
        self.assertLess(time.monotonic() - t, 1.0)
        slow.wait()
        self.assertTrue(slow.successful())
        rec = slow.records
        self.assertEqual(rec.outcome, "ok")
        self.assertGreaterEqual(rec.wall_time, 1.4)

    def test_map_async_callbacks(self):
        ok, errs = [], []
        r = self.pool.map_async(square, range(4), callback=ok.append,
                                error_callback=errs.append)
        self.assertEqual(r.get(20), [0, 1, 4, 9])
        self.assertEqual(ok, [[0, 1, 4, 9]])
        r = self.pool.map_async(fail_on({2}), range(4), callback=ok.append,
                                error_callback=errs.append)
        r.wait(20)
        self.assertTrue(r.ready())
        self.assertFalse(r.successful())
        self.assertEqual(len(errs), 1)
        self.assertIsInstance(errs[0], ValueError)
        self.assertEqual([rec.outcome for rec in r.records][:3], ["ok", "ok", "exit"])

    def test_exception_with_remote_traceback(self):
        def inner():
            raise KeyError("deep")

        def task(x):
            if x == 1:
                inner()
            return x
        with self.assertRaises(KeyError) as cm:
            self.pool.map(task, range(3))
        cause = cm.exception.__cause__
        self.assertIsInstance(cause, corral.RemoteTraceback)
        self.assertIn("in inner", str(cause))
        self.assertIn("KeyError: 'deep'", str(cause))
        self.assertTrue(any("index 1 (" in n for n in cm.exception.__notes__),
                        cm.exception.__notes__)
        with self.assertRaises(ZeroDivisionError) as cm:
            self.pool.apply(lambda: 1 / 0)
        self.assertIn("ZeroDivisionError", str(cm.exception.__cause__))

    def test_exception_that_does_not_unpickle(self):
        def task(x):
            raise NeedsTwoArgs(1, 2)
        with self.assertRaises(corral.ResultError) as cm:
            self.pool.apply(task, (0,))
        self.assertIn("NeedsTwoArgs", str(cm.exception.__cause__))

    def test_unpicklable_result(self):
        with self.assertRaises(corral.MaybeEncodingError) as cm:
            self.pool.apply(Unpicklable)
        self.assertIn("I will not be pickled", str(cm.exception))

    def test_sys_exit_and_os_exit(self):
        with self.assertRaises(corral.Exited) as cm:
            self.pool.apply(sys.exit, (3,))
        self.assertEqual(cm.exception.exit_code, 3)
        with self.assertRaises(corral.Exited) as cm:
            self.pool.apply(os._exit, (0,))
        self.assertEqual(cm.exception.exit_code, 0)

    def test_big_results(self):
        big = self.pool.apply(lambda: b"x" * (20 << 20))  # spills past the inline buffer
        self.assertEqual(len(big), 20 << 20)
        with corral.Pool(1, result_max="1M") as p:
            with self.assertRaises(corral.ResultError) as cm:
                p.apply(lambda: b"y" * (4 << 20))
            self.assertIn("result_max", str(cm.exception))
            self.assertEqual(p.apply(len, (b"z" * 1000,)), 1000)

    def test_initializer_runs_once_per_worker(self):
        state = {"n": 0}

        def init(v):
            state["n"] += v
        with corral.Pool(2, initializer=init, initargs=(5,)) as p:
            got = p.map(lambda _: (state["n"], os.getpid()), range(20), chunksize=1)
            self.assertEqual({n for n, _ in got}, {5})  # once per worker, not per task
        self.assertEqual(state["n"], 0)

        def bad_init():
            raise KeyError("init failed")
        with corral.Pool(1, initializer=bad_init) as p:
            with self.assertRaises(KeyError) as cm:
                p.apply(square, (2,))
            self.assertTrue(any("initializer" in n for n in cm.exception.__notes__))
            with self.assertRaises(KeyError):  # a new worker, the same failure: no hang
                p.apply(square, (3,))

    def test_state_with_fresh_forks_and_persistent_workers(self):
        # maxtasksperchild=1: each task is a fork of the caller when it starts
        # (it sees the caller's state then); nothing a task does is seen later.
        box = [1]
        with corral.Pool(1, maxtasksperchild=1) as p:
            self.assertEqual(p.apply(lambda: box[0]), 1)
            box[0] = 2
            self.assertEqual(p.apply(lambda: box.append(3) or box), [2, 3])
            self.assertEqual(p.apply(lambda: box), [2])
        self.assertEqual(box, [2])
        # persistent workers: a picklable function is sent by reference and
        # runs in the worker's copy of the module, as with multiprocessing.
        global COUNTER
        COUNTER = 10
        with corral.Pool(1) as p:
            COUNTER = 20  # after the fork: not seen by the worker
            self.assertEqual(p.map(bump_counter, range(3), chunksize=1), [11, 12, 13])

    def test_close_join_terminate(self):
        p = corral.Pool(2)
        rs = [p.apply_async(time.sleep, (0.2,)) for _ in range(4)]
        p.close()
        with self.assertRaises(ValueError):
            p.apply(square, (1,))
        t = time.monotonic()
        p.join()
        self.assertTrue(all(r.ready() and r.successful() for r in rs))
        self.assertGreater(time.monotonic() - t, 0.3)  # 4 x 0.2 s over 2 slots
        p = corral.Pool(2)
        with self.assertRaises(ValueError):
            p.join()  # still running
        r = p.map_async(time.sleep, [30, 30, 30])
        sleeper = p.apply_async(time.sleep, (30,))
        t = time.monotonic()
        p.terminate()
        p.join()
        self.assertLess(time.monotonic() - t, 5)
        with self.assertRaises((corral.Aborted, corral.Cancelled)):
            r.get(1)
        with self.assertRaises((corral.Aborted, corral.Cancelled)):
            sleeper.get(1)
        with self.assertRaises(ValueError):
            p.map(square, [1])

    def test_context_manager_terminates(self):
        with corral.Pool(2) as p:
            r = p.apply_async(time.sleep, (30,))
        with self.assertRaises(corral.Aborted):
            r.get(1)

    def test_pool_not_usable_in_task(self):
        with self.assertRaises(RuntimeError):
            self.pool.apply(lambda: self.pool.map(square, [1]))
        with self.assertRaises(NotImplementedError):
            pickle.dumps(self.pool)

    def test_files_of_the_parent_are_closed_in_tasks(self):
        with open(__file__, "rb") as f:
            fd = os.dup2(f.fileno(), 200)  # above the fds the task itself holds
            try:
                with self.assertRaises(OSError):
                    self.pool.apply(os.fstat, (fd,))
            finally:
                os.close(fd)

    def test_fork_warning_with_threads(self):
        stop = threading.Event()
        t = threading.Thread(target=stop.wait, name="sleeper")
        t.start()
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                with corral.Pool(1) as p:  # forks its worker now
                    self.assertEqual(p.map(square, [3]), [9])
            fw = [x for x in w if issubclass(x.category, corral.ForkWarning)]
            self.assertEqual(len(fw), 1, [str(x.message) for x in w])
            self.assertIn("multi-threaded", str(fw[0].message))
            self.assertIn("sleeper", str(fw[0].message))
            self.assertEqual(fw[0].filename, __file__)
            self.assertTrue(issubclass(corral.ForkWarning, DeprecationWarning))
        finally:
            stop.set()
            t.join()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            self.pool.map(square, [3])
        self.assertFalse([x for x in w if issubclass(x.category, corral.ForkWarning)])

    def test_at_fork_hooks_run(self):
        marks = []
        os.register_at_fork(before=lambda: marks.append("before"),
                            after_in_parent=lambda: marks.append("parent"),
                            after_in_child=lambda: marks.append("child"))
        seen_in_child = self.pool.apply(lambda: list(marks))
        self.assertIn("child", seen_in_child)
        self.assertIn("before", marks)
        self.assertIn("parent", marks)
        self.assertNotIn("child", marks)

    def test_sizes_and_durations(self):
        for bad in ({"memory": "lots"}, {"timeout": "soon"}, {"halt": "sometimes"},
                    {"memory": -1}, {"retry_on": "bugs"}):
            with self.assertRaises((ValueError, TypeError)):
                corral.Pool(1, **bad)
        with corral.Pool(1, memory=64 << 20, timeout=30) as p:
            self.assertEqual(p.apply(square, (4,)), 16)
            r = p.apply_async(square, (5,))
            r.get(10)
            self.assertEqual(r.records.memory_limit, 64 << 20)

    def test_print_from_task_reaches_stdout(self):
        import subprocess
        code = ("import corral\n"
                "print('before', flush=False)\n"
                "with corral.Pool(1) as p:\n"
                "    p.map(print, ['from-task'])\n"
                "print('after')\n")
        out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             env=sup.child_env(), timeout=60).stdout.decode()
        self.assertEqual(out.split(), ["before", "from-task", "after"])


if __name__ == "__main__":
    unittest.main()
