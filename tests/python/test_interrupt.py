"""Ctrl-C during Pool.map: KeyboardInterrupt in the parent, every task killed,
every cgroup removed, quickly. Runs the pool in a child process (its own
session, like a shell job) and sends it SIGINT."""
import os
import signal
import subprocess
import sys
import time
import unittest

import corral_test_support as sup

sup.require_host()

SCRIPT = r"""
import os, signal, sys, time, corral
# A harness that started us in the background (sh's `cmd &`) passed SIGINT
# ignored, and Python then never raises KeyboardInterrupt: what a terminal's
# foreground job has is the default.
signal.signal(signal.SIGINT, signal.default_int_handler)
def task(i):
    time.sleep(60)
with corral.Pool(3, memory="64M") as p:
    print("started", flush=True)
    try:
        p.map(task, range(6))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        raise
"""


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        if int(s[s.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


class InterruptTest(unittest.TestCase):
    def run_and_interrupt(self, whole_group):
        p = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=sup.child_env(),
                             start_new_session=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), b"started")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                kids = children(p.pid)
                if len(kids) >= 4:  # 3 tasks + the watchdog
                    break
                time.sleep(0.05)
            time.sleep(0.3)
            kids = children(p.pid)
            self.assertGreaterEqual(len(kids), 4, kids)
            t = time.monotonic()
            if whole_group:
                os.killpg(p.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            else:
                os.kill(p.pid, signal.SIGINT)
            out, err = p.communicate(timeout=30)
            secs = time.monotonic() - t
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"interrupted", out)
        self.assertIn(b"KeyboardInterrupt", err)
        self.assertLess(secs, 5, "abort took too long")
        for k in kids:
            self.assertFalse(os.path.exists(f"/proc/{k}"), f"process {k} survived")
        self.assertEqual(sup.own_batch_cgroups(p.pid), [])
        print(f"\n    [measured] Ctrl-C during map: the script exited {secs:.2f} s after "
              f"SIGINT, {len(kids)} processes gone, no cgroup left", file=sys.stderr)

    def test_sigint_to_the_process(self):
        self.run_and_interrupt(False)

    def test_sigint_to_the_process_group(self):
        self.run_and_interrupt(True)


if __name__ == "__main__":
    unittest.main()
