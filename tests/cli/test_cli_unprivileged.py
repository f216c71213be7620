"""CLI tests: corral run by an unprivileged user (uid 65534) on this host,
started by a root test: without anything delegated it runs without per-task
limits and says so in one block; --no-cgroups runs quietly; with a memory
cgroup delegated by chown, as Slurm's cgroup/v1 plugin does for a job's step,
--cgroup-parent gives per-task limits, and inside a Slurm-like step directory
the slurm rung finds the step's cgroup by itself. (cgroup v1 memory: the
host lane; on v2 the systemd lane runs the whole suite unprivileged.)"""
import os
import shutil
import time
import unittest

from clitest import (PAYLOAD, CliTest, corral, scaled, setUpModule, wait_until)
import clitest

assert setUpModule

P = PAYLOAD
NOBODY = 65534


def as_nobody(enter=None):
    """preexec_fn: (optionally join a cgroup as root,) then become nobody."""
    def f():
        if enter:
            with open(enter, "w") as fh:
                fh.write("0")
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    return f


def rmtree_cgroups(path):
    deadline = time.monotonic() + scaled(10)
    while os.path.exists(path):
        for root, dirs, _ in os.walk(path, topdown=False):
            for d in dirs:
                try:
                    os.rmdir(os.path.join(root, d))
                except OSError:
                    pass
        try:
            os.rmdir(path)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@unittest.skipUnless(clitest.ROOT, "needs root (to drop to uid 65534 and delegate a cgroup)")
class Unprivileged(CliTest):
    def setUp(self):
        super().setUp()
        if clitest.V2:
            self.skipTest("cgroup v1 memory only (on v2 the systemd lane runs the suite as a "
                          "user)")
        os.chmod(self.tmp, 0o777)
        self.env = dict(os.environ)
        for v in ("SLURM_JOB_ID", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"):
            self.env.pop(v, None)
        self.cleanup_dirs = []

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            for d in self.cleanup_dirs:
                rmtree_cgroups(d)

    def nobody(self, *args, enter=None, env=None):
        return corral(*args, preexec_fn=as_nobody(enter), env=env or self.env, cwd=self.tmp)

    def assertOneBlock(self, err, *needles):
        lines = err.decode().splitlines()
        self.assertTrue(lines and lines[0].startswith("corral: "), err)
        block = [lines[0]] + [l for l in lines[1:] if l.startswith("  ")]
        text = "\n".join(block)
        for n in needles:
            self.assertIn(n, text)
        return block

    def test_block_and_no_cgroups(self):
        r = self.nobody("run", "sh", "-c", "exec %s {}" % P, ":::", "exit 0", "exit 3")
        self.assertEqual(r.rc, 3, r)
        block = self.assertOneBlock(r.err, "per-task limits OFF", "found:", "tried: own:",
                                    "for per-task limits:", "cgroup v1")
        # One block, then the verdict: nothing else.
        self.assertEqual(len(r.err_lines), len(block) + 2, r)
        r = self.nobody("run", "--no-cgroups", "sh", "-c", "exec %s {}" % P, ":::", "exit 0",
                        "sleep 0.1")
        self.assertEqual((r.rc, r.err), (0, b""), r)
        # A memory limit: no provider gives one; the story once, then the error.
        r = self.nobody("run", "-m", "64M", "true", ":::", "x")
        self.assertEqual(r.rc, 125, r)
        self.assertOneBlock(r.err, "no provider of per-task cgroups works here", "tried: own:")
        self.assertIn("--memory needs per-task cgroups", r.err_lines[-1])
        r = self.nobody("check")
        self.assertEqual(r.rc, 1, r)
        self.assertIn(b"only WITHOUT memory limits", r.out)

    def delegated(self, *rel):
        """A memory cgroup below ours chowned to nobody as Slurm's cgroup/v1
        plugin does (the directory and its files), with root-owned parents."""
        base = clitest.own_memory_dir()
        top = os.path.join(base, "clitest-deleg-%d" % os.getpid())
        path = os.path.join(top, *rel)
        os.makedirs(path)
        self.cleanup_dirs.append(top)
        for n in [""] + os.listdir(path):
            os.chown(os.path.join(path, n), NOBODY, NOBODY)
        return top, path

    def test_chown_delegated_cgroup_parent(self):
        top, path = self.delegated("step_0")
        cgpath = clitest.own_cgroups()["memory"].rstrip("/") + path[len(clitest.own_memory_dir()):]
        rep = self.path("r.jsonl")
        r = self.nobody("run", "-v", "-m", "64M", "--halt", "never", "--cgroup-parent", cgpath,
                        "--report", rep, "sh", "-c", "exec %s {}" % P, ":::", "exit 0",
                        "alloc 200", "exit 0")
        self.assertEqual(r.rc, 137, r)
        self.assertIn("cgroups from own", r.err_lines[0])
        recs, summary = self.report("r.jsonl")
        self.assertEqual((summary["provider"]["name"], summary["provider"]["limits"]),
                         ("own", True))
        f = {x["seq"]: x for x in recs if x["final"]}
        self.assertEqual([f[i]["outcome"] for i in (1, 2, 3)], ["ok", "oom", "ok"])
        self.assertEqual(f[2]["memory_max"], 64 << 20)
        self.assertEqual([x for x in os.listdir(path) if x.startswith("corral-")], [])

    def test_slurm_step_cgroup(self):
        # corral in .../job_9/step_0/task_0 (root-owned), step_0 chowned: the
        # own rung fails, the slurm rung takes the step's cgroup.
        top, step = self.delegated("job_9", "step_0")
        task = os.path.join(step, "task_0")
        os.mkdir(task)
        env = dict(self.env, SLURM_JOB_ID="9")
        rep = self.path("r.jsonl")
        r = self.nobody("run", "-v", "-m", "64M", "--halt", "never", "--report", rep, "sh", "-c",
                        "exec %s {}" % P, ":::", "exit 0", "alloc 200",
                        enter=os.path.join(task, "cgroup.procs"), env=env)
        self.assertEqual(r.rc, 137, r)
        text = "\n".join(r.err_lines)
        self.assertIn("cgroups from slurm", text)
        self.assertIn("systemd: skipped inside Slurm job 9", text)
        recs, summary = self.report("r.jsonl")
        self.assertEqual(summary["provider"]["name"], "slurm")
        f = {x["seq"]: x for x in recs if x["final"]}
        self.assertEqual([f[i]["outcome"] for i in (1, 2)], ["ok", "oom"])
        self.assertTrue(wait_until(lambda: not [x for x in os.listdir(step)
                                                if x.startswith("corral-")], scaled(3)))


if __name__ == "__main__":
    unittest.main()
