"""The seed's reproducer, oopsies.py, on both pools.

multiprocessing.Pool.map hangs forever when a worker is killed (SIGTERM,
SIGKILL, OOM kill): each case runs in its own session with a bounded timeout,
and the test asserts that it DID time out (then kills the whole session).
corral.Pool fails fast and deterministically with the right exception and
index. The measured times are printed on stderr (they are quoted in
README.md, "Why multiprocessing.Pool hangs").
"""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

import corral_test_support as sup

sup.require_host()

OOPSIES = os.path.join(sup.HERE, "oopsies.py")
MP_TIMEOUT = float(os.environ.get("OOPSIES_MP_TIMEOUT", "8"))
MiB = 1 << 20


def run_oopsies(pool, how, timeout, env_extra=None):
    """-> (timed_out, seconds, parsed JSON line or None, stderr text)."""
    env = sup.child_env()
    env.update(env_extra or {})
    t = time.monotonic()
    p = subprocess.Popen([sys.executable, OOPSIES, pool, how], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        if p.poll() is None or timed_out:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the pool's workers too
            except ProcessLookupError:
                pass
            out, err = p.communicate()
    secs = time.monotonic() - t
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    data = next((x for x in lines if "pool" in x), None)
    shutdown = next((x["shutdown_seconds"] for x in lines if "shutdown_seconds" in x), None)
    if data is not None:
        data["shutdown_seconds"] = shutdown
    return timed_out, secs, data, err.decode(errors="replace")


def report(msg):
    print(f"\n    [measured] {msg}", file=sys.stderr, flush=True)


class MemoryCgroup:
    """A 64 MiB memory cgroup for the multiprocessing OOM case (it has no
    per-task limit of its own): task 2 moves itself into it."""

    def __init__(self):
        mode, own = sup.own_memory_cgroup()
        if mode is None:
            raise unittest.SkipTest("no memory cgroup found")
        self.path = os.path.join(own, f"oopsies-{os.getpid()}")
        if mode == "v2":
            try:
                with open(os.path.join(own, "cgroup.subtree_control"), "w") as f:
                    f.write("+memory")
            except OSError as e:
                raise unittest.SkipTest(f"cannot enable memory below {own}: {e}")
        try:
            os.mkdir(self.path)
        except PermissionError as e:
            raise unittest.SkipTest(f"needs a writable cgroup of its own (root): {e}")
        limit = "memory.max" if mode == "v2" else "memory.limit_in_bytes"
        with open(os.path.join(self.path, limit), "w") as f:
            f.write(str(64 * MiB))
        if mode == "v2" and os.path.exists(os.path.join(self.path, "memory.swap.max")):
            with open(os.path.join(self.path, "memory.swap.max"), "w") as f:
                f.write("0")

    def remove(self):
        deadline = time.monotonic() + 10
        while True:
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                with open(os.path.join(self.path, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                time.sleep(0.05)


class ReproducerTest(unittest.TestCase):
    def assert_mp_hangs(self, how, env_extra=None):
        timed_out, secs, data, err = run_oopsies("mp", how, MP_TIMEOUT, env_extra)
        self.assertTrue(timed_out, f"multiprocessing.Pool did not hang on {how}: {data} {err}")
        self.assertIsNone(data)
        report(f"multiprocessing.Pool, task 2 {how}: map() still blocked after "
               f"{secs:.1f} s (bounded timeout), killed")

    def assert_corral_fails_fast(self, how, exc, sig=None, limit=None):
        timed_out, secs, data, err = run_oopsies("corral", how, 60)
        self.assertFalse(timed_out, err)
        self.assertIsNotNone(data, err)
        self.assertEqual(data["error"], exc, data)
        self.assertEqual(data["index"], 2, data)
        if sig:
            self.assertEqual(data["signal"], sig, data)
        if limit:
            self.assertEqual(data["memory_limit"], limit, data)
        self.assertLess(data["seconds"], 5, data)
        report(f"corral.Pool, task 2 {how}: {exc} (index {data['index']}) raised "
               f"{data['seconds']:.2f} s after map() started ({secs:.2f} s for the whole "
               f"script): {data['message']}")

    def test_mp_hangs_on_sigterm(self):
        self.assert_mp_hangs("sigterm")

    def test_mp_hangs_on_sigkill(self):
        self.assert_mp_hangs("sigkill")

    def test_mp_hangs_on_oom_kill(self):
        cg = MemoryCgroup()
        try:
            self.assert_mp_hangs("oom", {"OOPSIES_MEMCG": cg.path})
        finally:
            cg.remove()

    def test_mp_sigterm_handler_trick(self):
        # A SIGTERM handler that raises turns the signal into an exception that
        # the worker loop reports: no hang. (SIGKILL cannot be handled.)
        # Pool.terminate() (the with block's exit) stops workers with SIGTERM
        # too, which the handler turns into exceptions inside the workers: the
        # shutdown may then hang. Only map() itself is asserted here.
        timed_out, secs, data, err = run_oopsies("mp", "sigterm-handler", 30)
        self.assertIsNotNone(data, f"map() did not return: {err}")
        self.assertEqual(data["error"], "RuntimeError", data)
        shut = ("then the pool's shutdown hung (killed at the bound)" if timed_out
                else f"shutdown took {data['shutdown_seconds']:.2f} s")
        report(f"multiprocessing.Pool with a raising SIGTERM handler: RuntimeError after "
               f"{data['seconds']:.2f} s (no index: {data['message']!r}); {shut}")

    def test_corral_sigterm(self):
        self.assert_corral_fails_fast("sigterm", "Killed", sig=signal.SIGTERM)

    def test_corral_sigkill(self):
        self.assert_corral_fails_fast("sigkill", "Killed", sig=signal.SIGKILL)

    def test_corral_oom(self):
        self.assert_corral_fails_fast("oom", "OOMKilled", limit=64 * MiB)

    def test_corral_sigterm_handler_case(self):
        # The worker-side handler also works under corral (it raises in the task).
        timed_out, secs, data, err = run_oopsies("corral", "sigterm-handler", 60)
        self.assertEqual(data["error"], "RuntimeError", data)
        self.assertIn("corral: raised in index 2 (task(2))", " ".join(data["notes"]), data)
        report(f"corral.Pool with a raising SIGTERM handler: RuntimeError after "
               f"{data['seconds']:.2f} s, note {data['notes']}")


if __name__ == "__main__":
    unittest.main()
