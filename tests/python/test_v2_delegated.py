"""cgroup v2 with the Python process in a non-root cgroup (a delegated scope, as
`systemd-run --scope -p Delegate=yes python3 ...` gives): libcorral must move
the process into <batch>/supervisor (no-internal-process rule). A pool with
several batches alive at once, ending in any order, must still leave nothing
behind and put the process back where it was. Runs only on pure cgroup v2
(the VM lane); skipped elsewhere."""
import os
import subprocess
import sys
import time
import unittest

import corral_test_support as sup

sup.require_host()

SCRIPT = r"""
import os, sys, time, corral
cg = sys.argv[1]
with open(os.path.join(cg, "cgroup.procs"), "w") as f:
    f.write("0")
p = corral.Pool(2, memory="64M")
slow = p.apply_async(time.sleep, (1.0,))
it = p.imap(lambda x: x, range(5))
assert next(it) == 0                      # this batch stays open ...
m = p.map_async(lambda x: x * 2, range(4))
assert m.get(60) == [0, 2, 4, 6]          # ... while this one ends first
assert list(it) == [1, 2, 3, 4]
slow.get(60)
assert p.map(lambda x: x, range(3)) == [0, 1, 2]
q = corral.Pool(1)                        # a second pool at the same time
assert q.apply(abs, (-3,)) == 3
q.terminate()
r = p.map_async(time.sleep, [30, 30])
p.terminate()
print(open("/proc/self/cgroup").read().strip(), flush=True)
"""


def pure_v2():
    with open("/proc/self/cgroup") as f:
        lines = f.read().split()
    return len(lines) == 1 and lines[0].startswith("0::") and \
        os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@unittest.skipUnless(pure_v2(), "needs a pure cgroup v2 host (the VM lane)")
class DelegatedV2Test(unittest.TestCase):
    def test_batches_in_any_order_leave_nothing(self):
        with open("/proc/self/cgroup") as f:
            own = f.read().strip()[3:]
        parent = os.path.join(sup.CGROUPFS, own.lstrip("/"))
        with open(os.path.join(parent, "cgroup.subtree_control")) as f:
            if "memory" not in f.read().split():
                self.skipTest(f"memory is not enabled below {own}")
        name = f"pooltest-{os.getpid()}"
        cg = os.path.join(parent, name)
        os.mkdir(cg)
        try:
            p = subprocess.run([sys.executable, "-c", SCRIPT, cg], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=sup.child_env(), timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            where = p.stdout.decode().strip()
            self.assertEqual(where, "0::" + os.path.join(own, name).replace("//", "/"))
            left = []
            for root, dirs, _ in os.walk(cg):
                left += [os.path.join(root, d) for d in dirs]
            self.assertEqual(left, [], "cgroups left behind")
        finally:
            deadline = time.monotonic() + 10
            while os.path.exists(cg) and time.monotonic() < deadline:
                for root, dirs, _ in os.walk(cg, topdown=False):
                    for d in dirs:
                        try:
                            os.rmdir(os.path.join(root, d))
                        except OSError:
                            pass
                try:
                    os.rmdir(cg)
                except OSError:
                    time.sleep(0.1)


if __name__ == "__main__":
    unittest.main()
