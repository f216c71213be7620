"""CLI tests: the warm child (attempt_local.c). With fewer slots than CPUs,
on v2, the next task's child is made ahead and waits at a gate before its
exec while the task before it runs. Nothing of it may show: a task that
must not run never execs, a task's start time and timeout begin when it is
let go, it holds no extra fd, and a task that kills it does not fail the
next one. On v1 no warm child is made (the tests say so, and check the
same behaviour)."""
import os
import subprocess
import time
import unittest

from clitest import (CliTest, corral, finals_by_seq, scaled, setUpModule, spawn, wait_until)
import clitest

assert setUpModule


def warm_expected():
    """Where corral surely makes warm children at -j 1: v2 (children born in
    their cgroups), 2 CPUs or more, the default sandbox (a spawner), as root
    (unprivileged, the provider may leave no cgroup to be born in)."""
    return clitest.V2 and len(os.sched_getaffinity(0)) >= 2 and os.geteuid() == 0


def waiting_children(corral_pid, name):
    """pids of corral's children named corral-spawner (a spawner's child
    before its exec keeps that name) whose cgroup is the task cgroup
    `name` (a warm child's: t<seq>-a<attempt>-w<n>)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
            with open("/proc/%s/cgroup" % p) as f:
                cg = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if comm == "corral-spawner" and ppid == corral_pid and \
                any(("/" + name) in line for line in cg.splitlines()):
            out.append(int(p))
    return out


class WarmChild(CliTest):
    def start(self, args, batch, env=None):
        """corral in the background, its input given, output to files."""
        with open(self.path("out"), "wb") as out, open(self.path("err"), "wb") as err:
            p = spawn(args, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env)
        p.stdin.write(batch.encode())
        p.stdin.close()
        return p

    def test_a_task_that_must_not_run_never_execs(self):
        # Task 1 fails while task 2's warm child waits: task 2 never runs.
        d = self.path("marks")
        os.mkdir(d)
        batch = ("sh -c 'touch %s/1; sleep %.2f; exit 3'\n" % (d, scaled(1.5)) +
                 "sh -c 'touch %s/2'\n" % d +
                 "sh -c 'touch %s/3'\n" % d)
        p = self.start(["run", "-j", "1", "--report", self.path("report.jsonl")], batch)
        self.assertTrue(wait_until(lambda: os.path.exists(d + "/1"), scaled(5)))
        found = wait_until(lambda: waiting_children(p.pid, "t2-a1-w"), scaled(1))
        if warm_expected():
            self.assertTrue(found, "no warm child for task 2 while task 1 ran")
        elif not clitest.V2 or len(os.sched_getaffinity(0)) < 2:
            self.assertFalse(found, "a warm child where none is made (v1, or 1 CPU)")
            print("note: no warm child here (v1 or 1 CPU): behaviour checked without it")
        else:
            print("note: a warm child %s (not root: not asserted)" %
                  ("was made" if found else "was not seen"))
        self.assertEqual(p.wait(scaled(30)), 3)
        self.assertEqual(sorted(os.listdir(d)), ["1"])
        f = finals_by_seq(self.report()[0])
        self.assertEqual([f[i]["outcome"] for i in (1, 2, 3)], ["exit", "cancelled", "cancelled"])
        self.assertEqual([f[i]["attempt"] for i in (2, 3)], [0, 0])
        # Nothing of it is left: no child of corral's, no cgroup (tearDown).
        self.assertEqual(waiting_children(p.pid, "t2-a1-w"), [])

    def test_start_time_and_timeout_begin_when_it_goes(self):
        # The timeout would cut task 2 short if it counted from the time
        # its child was made (while task 1 ran).
        t1, t2, limit = scaled(1.2), scaled(0.8), scaled(1.6)
        r = corral("run", "-j", "1", "-t", "%.2fs" % limit, "--report",
                   self.path("report.jsonl"), "sleep", ":::", "%.2f" % t1, "%.2f" % t2)
        self.assertEqual(r.rc, 0, r)
        f = finals_by_seq(self.report()[0])
        self.assertEqual([f[1]["outcome"], f[2]["outcome"]], ["ok", "ok"])
        end1 = f[1]["start_time"] + f[1]["wall_time"]
        self.assertGreaterEqual(f[2]["start_time"], end1 - 0.05)
        self.assertLess(f[2]["wall_time"], t2 + scaled(0.5))

    def test_it_holds_no_extra_fd(self):
        # The gate is CLOEXEC: a task has 0, 1, 2 and nothing of corral's
        # (ls -l lists its own fds: beyond 0-2 only its directory's).
        r = corral("run", "-j", "1", "--keep-order", "sh", "-c",
                   'sleep %.2f; exec ls -l /proc/self/fd' % scaled(0.3), ":::", "1", "2", "3")
        self.assertEqual(r.rc, 0, r)
        fds = [line.split()[-3:] for line in r.out.decode().splitlines() if "->" in line]
        self.assertEqual(len(fds), 3 * 4, r.out)
        for fd, _, target in fds:
            self.assertTrue(fd in ("0", "1", "2") or target.startswith("/proc/"), (fd, target))

    def test_a_task_that_kills_it_does_not_fail_the_next(self):
        # Task 1 (root, in the batch's PID namespace) SIGKILLs every pid it
        # can name but its own, its shell's and the namespace's init (which
        # ignores it), task 2's warm child among them, then exits at once:
        # task 2 and those after it run.
        # Only inside a PID namespace of the batch's (as root): elsewhere
        # the loop would reach the user's own processes.
        probe = corral("run", "-j", "1", "sh", "-c", "echo $$", ":::", "1")
        if probe.rc != 0 or int(probe.out.split()[0]) > 10:
            self.skipTest("tasks do not run in a PID namespace of the batch's here")
        kill = ("sleep %.2f; for p in $(seq 2 200); do [ $p = $$ ] || [ $p = $PPID ] || "
                "kill -9 $p 2>/dev/null; done; exit 0" % scaled(0.5))
        batch = "sh -c '%s'\necho two\necho three\necho four\n" % kill
        r = corral("run", "-j", "1", "--keep-order", "--report", self.path("report.jsonl"),
                   input=batch.encode())
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, b"two\nthree\nfour\n")
        f = finals_by_seq(self.report()[0])
        self.assertEqual([f[i]["outcome"] for i in (1, 2, 3, 4)], ["ok"] * 4)
        self.assertEqual([f[i]["attempt"] for i in (1, 2, 3, 4)], [1] * 4)

    def test_off_by_environment(self):
        d = self.path("marks")
        os.mkdir(d)
        batch = "sh -c 'touch %s/1; sleep %.2f'\ntrue\n" % (d, scaled(1.0))
        env = dict(os.environ, CORRAL_WARM="0")
        p = self.start(["run", "-j", "1"], batch, env=env)
        self.assertTrue(wait_until(lambda: os.path.exists(d + "/1"), scaled(5)))
        time.sleep(scaled(0.3))
        self.assertEqual(waiting_children(p.pid, "t2-a1-w"), [])
        self.assertEqual(p.wait(scaled(30)), 0)


if __name__ == "__main__":
    unittest.main()
