"""corral.futures.ProcessPoolExecutor: a real concurrent.futures.Executor. A
task whose worker dies fails only its own future, with corral's exception;
the executor stays usable (where ProcessPoolExecutor breaks every future)."""
import concurrent.futures as cf
import os
import signal
import time
import unittest

import corral_test_support as sup

sup.require_host()

import corral  # noqa: E402
from corral.futures import ProcessPoolExecutor  # noqa: E402

MiB = 1 << 20


def square(x):
    return x * x


def maybe_die(x):
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    if x == 5:
        bytearray(256 * MiB)
    if x == 7:
        raise ValueError("seven")
    return x


class FuturesTest(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(sup.own_batch_cgroups(), [], "batch cgroups left behind")

    def test_is_an_executor(self):
        self.assertTrue(issubclass(ProcessPoolExecutor, cf.Executor))
        with ProcessPoolExecutor(2) as ex:
            self.assertEqual(ex.submit(pow, 2, 10).result(10), 1024)
            self.assertEqual(ex.submit(dict, a=1).result(10), {"a": 1})
            self.assertEqual(list(ex.map(square, range(10))), [x * x for x in range(10)])
            self.assertEqual(list(ex.map(square, range(10), chunksize=4)),
                             [x * x for x in range(10)])
            self.assertEqual(list(ex.map(pow, [2, 3], [5, 2])), [32, 9])
            fs = [ex.submit(time.sleep, 0.2) for _ in range(4)]
            done, _ = cf.wait(fs, timeout=10)
            self.assertEqual(len(done), 4)
            got = []
            f = ex.submit(square, 4)
            f.add_done_callback(lambda fut: got.append(fut.result()))
            f.result(10)
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(got, [16])
        with self.assertRaises(RuntimeError):
            ex.submit(square, 1)

    def test_failure_fails_only_its_future(self):
        with ProcessPoolExecutor(2, memory="64M") as ex:
            fs = {x: ex.submit(maybe_die, x) for x in range(9)}
            for x, f in fs.items():
                if x == 3:
                    self.assertIsInstance(f.exception(30), corral.Killed)
                elif x == 5:
                    e = f.exception(30)
                    self.assertIsInstance(e, corral.OOMKilled)
                    self.assertIn("maybe_die(5)", str(e))
                elif x == 7:
                    self.assertIsInstance(f.exception(30), ValueError)
                else:
                    self.assertEqual(f.result(30), x)
            # still usable
            self.assertEqual(ex.submit(square, 9).result(10), 81)
            # map raises at the failing call, after the earlier results
            out = []
            with self.assertRaises(corral.Killed):
                for v in ex.map(maybe_die, range(6)):
                    out.append(v)
            self.assertEqual(out, [0, 1, 2])
            self.assertEqual(ex.submit(square, 3).result(10), 9)

    def test_map_timeout_and_shutdown(self):
        ex = ProcessPoolExecutor(1)
        it = ex.map(time.sleep, [0.1, 5, 5], timeout=0.5)
        t = time.monotonic()
        with self.assertRaises(cf.TimeoutError):
            list(it)
        self.assertLess(time.monotonic() - t, 3)
        fs = [ex.submit(time.sleep, 0.3) for _ in range(5)]
        time.sleep(0.1)
        ex.shutdown(wait=True, cancel_futures=True)
        self.assertTrue(any(f.cancelled() for f in fs))
        self.assertTrue(all(f.done() for f in fs))
        for f in fs:
            if not f.cancelled():
                self.assertIsNone(f.result())

    def test_as_completed_survives_every_worker_dying(self):
        # Both workers die; the queued calls still run (the waiting thread
        # forks the replacements) and as_completed does not hang.
        with ProcessPoolExecutor(2) as ex:
            fs = [ex.submit(maybe_die, 3), ex.submit(maybe_die, 3)] + \
                [ex.submit(square, i) for i in range(4)]
            res = []
            for f in cf.as_completed(fs, timeout=30):
                res.append(f.exception() is None)
            self.assertEqual(sorted(res), [False, False, True, True, True, True])

    def test_wait_without_calling_into_the_pool(self):
        # concurrent.futures.wait() never calls into the pool: when both
        # workers die, the pool's thread starts replacements as fresh
        # interpreters (it never forks), and the queued calls complete.
        with ProcessPoolExecutor(2) as ex:
            fs = [ex.submit(maybe_die, 3), ex.submit(maybe_die, 3)] + \
                [ex.submit(square, i) for i in range(6)]
            t = time.monotonic()
            done, not_done = cf.wait(fs, timeout=30 * sup.time_scale())
            self.assertEqual(len(not_done), 0)
            self.assertEqual([f.exception() is None for f in fs], [False] * 2 + [True] * 6)
            self.assertEqual([f.result() for f in fs[2:]], [i * i for i in range(6)])
            print(f"\n    [measured] both workers SIGKILLed, no thread in the pool: the queued "
                  f"calls done {time.monotonic() - t:.2f} s later (exec'd replacements)")


if __name__ == "__main__":
    unittest.main()
