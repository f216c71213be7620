"""`corral run --slurm` (the head) on a real multi-node Slurm
(scripts/slurm-cluster.sh), run as users run it: inside an allocation,
`salloc -N3 --exclusive --no-kill --immediate=60 corral run --slurm ...`, and
once through a real `sbatch` script.

What it shows (design §10, issue 14):
  a  tasks spread over all three nodes, each record's host is the node the task
     ran on (the task prints $SLURMD_NODENAME), in the report and the joblog;
     once through sbatch
  b  an OOM on a node is attributed there: outcome oom, own_limit_hit, host,
     the sentence "(on nodeK)"
  c  SIGKILL to one node's `corral worker` mid-batch: its running tasks end
     `lost` (non-final records, that node's host), run again elsewhere and
     succeed; exit 0, no hang, nothing left. When they cannot run again (the
     only node, or --lost-retries 0): final lost, verdict lost, exit 255
  d  a node killed whole mid-batch (slurmd, step daemons, worker, tasks): lost
     by heartbeat silence within --worker-timeout, retried elsewhere, the batch
     over long before Slurm declares the node down; its slurmd alone killed:
     the worker and its channel live on (srun talks to the step daemon), so its
     tasks are lost only when Slurm declares the node down and srun exits;
     retried elsewhere, no hang
  e  SIGINT / SIGTERM to the head mid-batch: exit 130 / 143, every record
     written, nothing left on any node (no worker, task, step, srun or batch
     cgroup); the head SIGKILLed: its workers see EOF and clean up by
     themselves within a bound
  f  20 randomized batches (seeded; CORRAL_TEST_SEED=N repeats them): the
     verdict of `corral run --slurm` equals single-node `corral run`'s on the
     same input
  g  bad usage: one-line errors, exit 125
  h  (expected to fail until fixed) a slow reader of the head's stdout: the
     head blocks in write() and stops heartbeating; after --worker-timeout
     every worker gives up on it, and the batch ends lost

"Nothing left" is checked while the allocation still lives (the head runs
under a small shell that holds the allocation until the test releases it):
once salloc ends, Slurm would clean up for corral and hide a leak.

Needs SLURM_CONF pointing at a running cluster of 3 nodes (the `slurm` lane of
scripts/test.sh starts one); otherwise SKIPPED (exit 77), or a failure with
CORRAL_NO_SKIP=1. Lines starting with "FACT:" are measurements (ctest -V).
"""
import glob
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
sys.path.insert(0, HERE)
import clitest  # noqa: E402
import test_slurm_worker as tsw  # noqa: E402  (its cluster helpers, not its tests)

SLURM_CONF = tsw.SLURM_CONF
NODES = ("node1", "node2", "node3")
SALLOC = ["salloc", "-N3", "--exclusive", "--no-kill", "--immediate=60"]
# The head under a shell that keeps the allocation until the test releases it
# (opens the fifo): "nothing left" is then corral's doing, not Slurm's.
HOLD = '"$0" "$@"; echo $? > "$CORRAL_HEAD_RC"; read x < "$CORRAL_HEAD_HOLD"'


def setUpModule():
    tsw.setUpModule()  # root, a memory cgroup, a running cluster (else 77)


def fact(msg):
    print("FACT: " + msg, flush=True)


def clean_env(**extra):
    """Our environment without an allocation of its own (the test may itself
    run inside one)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SALLOC_", "SBATCH_", "SRUN_"))}
    env["SLURM_CONF"] = SLURM_CONF
    env.update(extra)
    return env


# ---------------------------------------------------------------- processes

BIN_REAL = os.path.realpath(clitest.BIN) if clitest.BIN else ""


def _read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def ptable():
    """{pid: (ppid, comm, argv, env)} of every process of this cluster (its
    environment names our SLURM_CONF: the daemons, sallocs, sruns, step
    daemons, workers and their tasks), read from /proc."""
    out = {}
    want = b"SLURM_CONF=" + SLURM_CONF.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        raw = _read("/proc/%s/environ" % d, "rb")
        if raw is None or want not in raw.split(b"\0"):
            continue
        stat = _read("/proc/%s/stat" % d)
        argv = _read("/proc/%s/cmdline" % d, "rb")
        if stat is None or argv is None:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):
            continue
        env = dict(x.split(b"=", 1) for x in raw.split(b"\0") if b"=" in x)
        out[int(d)] = (int(fields[1]), comm, argv.split(b"\0")[:-1], env)
    return out


def job_env(p, job):
    return p[3].get(b"SLURM_JOB_ID") == str(job).encode()


def workers(job, table=None):
    """{node: pid} of the job's `corral worker` processes, found by their
    environment (SLURM_JOB_ID, SLURMD_NODENAME) and their parent chain: the
    child of a step daemon of this job ("slurmstepd: [JOB.STEP]"), running
    our corral; never by a name alone."""
    t = table if table is not None else ptable()
    out = {}
    for pid, p in t.items():
        if not job_env(p, job) or len(p[2]) < 2 or p[2][1] != b"worker":
            continue
        parent = t.get(p[0])
        if not parent or parent[1] != "slurmstepd" or not parent[2] or \
                not parent[2][0].startswith(b"slurmstepd: [%d." % int(job)):
            continue
        if os.path.realpath("/proc/%d/exe" % pid) != BIN_REAL:
            continue
        node = p[3].get(b"SLURMD_NODENAME", b"").decode()
        out[node] = pid
    return out


def leftovers(job, keep=()):
    """What of job still runs: processes with its SLURM_JOB_ID (sruns,
    workers, tasks) and its step daemons, but the pids in keep (the holding
    shell)."""
    t = ptable()
    left = []
    for pid, p in t.items():
        if pid in keep:
            continue
        if job_env(p, job) or (p[1] == "slurmstepd" and p[2] and
                               p[2][0].startswith(b"slurmstepd: [%d." % int(job))):
            left.append((pid, p[1], b" ".join(p[2][:4]).decode(errors="replace")))
    return left


def cgroup_dirs(pid):
    """The cgroup directories where pid's batch cgroups would be (its own
    memory and pids cgroups on v1, its cgroup on v2)."""
    dirs = []
    for line in (_read("/proc/%d/cgroup" % pid) or "").splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            if c in ("memory", "pids") and not clitest.V2:
                dirs.append(os.path.normpath("/sys/fs/cgroup/%s%s" % (c, path)))
            elif c == "" and clitest.V2:
                dirs.append(os.path.normpath("/sys/fs/cgroup" + path))
    return dirs


def cgroups_left(pids, dirs):
    """Batch cgroups (corral-PID-*) of the given worker pids: where clitest
    looks, and in the given directories (the workers' own cgroups)."""
    prefixes = tuple("corral-%d-" % p for p in pids)
    found = set(clitest.leftover_cgroups(pids))
    for d in set(dirs):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        found.update(os.path.join(d, n) for n in names if n.startswith(prefixes))
    return sorted(found)


def slurmd_batch_cgroups():
    """Batch cgroups (corral-PID-*) in the cgroups of our cluster's slurmds, where
    a worker's step daemon and the worker live (no cgroup plugin here): for a
    head whose workers ended before a look at the process table found them."""
    conf = os.environ.get("SLURM_CONF", "")
    found = []
    for f in glob.glob(os.path.join(os.path.dirname(conf), "slurmd.*.pid")):
        try:
            pid = int(_read(f) or "0")
        except ValueError:
            continue
        for d in cgroup_dirs(pid) if pid > 0 else []:
            try:
                found.extend(os.path.join(d, n) for n in os.listdir(d)
                             if re.match(r"corral-[0-9]+-", n))
            except OSError:
                pass
    return sorted(set(found))


def node_state(node):
    p = subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%T"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=clean_env())
    return p.stdout.decode().strip()


# ---------------------------------------------------------------- a head

class Head:
    """`corral run --slurm ARGS` inside `salloc`, commands on stdin, held:
    after the head exits, the allocation lives until release()."""

    seq = 0

    def __init__(self, tc, args, lines, slurm=True, salloc=SALLOC, stdout_pipe=False):
        Head.seq += 1
        self.tc = tc
        self.dir = tempfile.mkdtemp(prefix="head%d-" % Head.seq, dir=tc.tmp)
        self.report = os.path.join(self.dir, "report.jsonl")
        self.rcfile = os.path.join(self.dir, "rc")
        self.fifo = os.path.join(self.dir, "hold")
        os.mkfifo(self.fifo)
        cmds = os.path.join(self.dir, "cmds")
        with open(cmds, "w") as f:
            f.write("".join(l + "\n" for l in lines))
        self.out_path = os.path.join(self.dir, "stdout")
        self.err_path = os.path.join(self.dir, "stderr")
        argv = list(salloc) + ["-J", "corral-head-test", "sh", "-c", HOLD, clitest.BIN, "run"]
        argv += (["--slurm"] if slurm else []) + ["--report", self.report] + list(args)
        self.t0 = time.monotonic()
        with open(cmds, "rb") as i, open(self.out_path, "wb") as o, \
                open(self.err_path, "wb") as e:
            self.p = subprocess.Popen(argv, stdin=i, stdout=subprocess.PIPE if stdout_pipe else o,
                                      stderr=e, env=clean_env(CORRAL_HEAD_RC=self.rcfile,
                                                              CORRAL_HEAD_HOLD=self.fifo))
        self.rc = None
        self.t_end = None
        self._pid = self._job = self._shell = None
        self.released = False
        tc.addCleanup(self.close)

    def _children(self, pid):
        return [q for q, p in ptable().items() if p[0] == pid]

    def shell(self):
        """The holding shell (salloc's child)."""
        if self._shell is None:
            self._shell = clitest.wait_until(lambda: (self._children(self.p.pid) or [None])[0],
                                             clitest.scaled(90), 0.05)
            if self._shell is None:
                self.tc.fail("salloc started no command within 90 s: %s" % self.stderr())
        return self._shell

    def pid(self):
        """The head: the holding shell's child running our corral."""
        if self._pid is None:
            sh = self.shell()

            def find():
                for q in self._children(sh):
                    if os.path.realpath("/proc/%d/exe" % q) == BIN_REAL:
                        return q
                return None
            self._pid = clitest.wait_until(find, clitest.scaled(30), 0.02)
            self.tc.assertIsNotNone(self._pid, "no head under salloc: %s" % self.stderr())
        return self._pid

    def job(self):
        if self._job is None:
            env = dict(x.split(b"=", 1) for x in
                       (_read("/proc/%d/environ" % self.pid(), "rb") or b"").split(b"\0")
                       if b"=" in x)
            self._job = int(env[b"SLURM_JOB_ID"])
        return self._job

    def workers(self, n=3, timeout=30):
        """{node: pid} once n workers run."""
        w = clitest.wait_until(lambda: (lambda d: d if len(d) >= n else None)(
            workers(self.job())), clitest.scaled(timeout), 0.05)
        self.tc.assertIsNotNone(w, "%d workers did not start: %s" % (n, self.stderr()))
        return w

    def wait(self, timeout=120):
        """The head's exit status (the holding shell writes it)."""
        def done():
            s = _read(self.rcfile)
            if s and s.endswith("\n"):
                return s
            if self.p.poll() is not None:
                return "salloc ended"
            return None
        s = clitest.wait_until(done, clitest.scaled(timeout), 0.02)
        self.t_end = time.monotonic()
        if s is None:
            self.tc.fail("the head did not end within %d s; stderr: %s" % (timeout,
                                                                             self.stderr()))
        if s == "salloc ended":
            self.tc.fail("salloc ended (%d) before the head did: %s" % (self.p.returncode,
                                                                        self.stderr()))
        self.rc = int(s)
        return self.rc

    def release(self):
        """Let the holding shell and salloc end; the allocation goes."""
        if self.released:
            return
        self.released = True
        def opened():
            # Only once the shell reads the fifo (it may be about to).
            try:
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
                return True
            except OSError:
                return self.p.poll() is not None
        if self.rc is not None:
            clitest.wait_until(opened, clitest.scaled(10), 0.01)
        else:
            opened()  # the head did not end: salloc is told below
        try:
            self.p.wait(clitest.scaled(30))
        except subprocess.TimeoutExpired:
            if self._job:
                subprocess.run(["scancel", str(self._job)], env=clean_env())
            self.p.terminate()
            try:
                self.p.wait(clitest.scaled(30))
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def close(self):
        if self.p.poll() is None and self.rc is None and self._pid:
            try:
                os.kill(self._pid, signal.SIGTERM)  # a failed test: end the head first
            except OSError:
                pass
            clitest.wait_until(lambda: _read(self.rcfile), clitest.scaled(30))
        self.release()

    def stdout(self):
        return _read(self.out_path, "rb") or b""

    def stderr(self):
        return (_read(self.err_path, "rb") or b"").decode(errors="replace")

    def corral_err(self):
        """corral's stderr lines (salloc's own are dropped)."""
        return [l for l in self.stderr().splitlines() if not l.startswith("salloc: ")]

    def records(self, complete=True):
        return clitest.read_report(self.tc, self.report, complete)


class HeadTest(clitest.CliTest):
    def setUp(self):
        super().setUp()
        self.restart = []
        self.addCleanup(self._restart_nodes)

    def _restart_nodes(self):
        for n in self.restart:
            tsw.cluster("restart-node", n)

    def head(self, args, lines, **kw):
        return Head(self, args, lines, **kw)

    def assert_nothing_left(self, h, worker_pids, dirs, bound=10, what=""):
        """Within bound seconds of the head's end: no process of the job but
        the holding shell, no step daemon, no batch cgroup of its workers."""
        keep = {h.shell()}
        left = clitest.wait_until(lambda: not leftovers(h.job(), keep), clitest.scaled(bound),
                                  0.05)
        self.assertTrue(left, "%sleft on the nodes %d s after the head: %r" % (
            what, bound, leftovers(h.job(), keep)))
        cg = clitest.wait_until(lambda: not cgroups_left(worker_pids, dirs), clitest.scaled(5))
        self.assertTrue(cg, "batch cgroups left: %r" % cgroups_left(worker_pids, dirs))

    def finish(self, h, timeout=120):
        """Wait for the head; check that nothing is left while the allocation
        lives; let it go. Returns (rc, records, summary)."""
        ws = {}
        dirs = []
        done = threading.Event()

        def snap():
            # Worker pids while they run, for the cgroup check.
            while not done.is_set():
                for n, p in workers(h.job()).items():
                    if p not in ws.values():
                        ws[n] = p
                        dirs.extend(cgroup_dirs(p))
                done.wait(0.05)
        try:
            h.job()
            t = threading.Thread(target=snap)
            t.start()
            try:
                rc = h.wait(timeout)
            finally:
                done.set()
                t.join()
            self.assert_nothing_left(h, list(ws.values()), dirs)
            if not ws:
                # A batch of a few `echo`s can end before one look at the
                # process table finds its workers: their cgroups are looked
                # for in the slurmds' cgroups instead.
                left = clitest.wait_until(lambda: not slurmd_batch_cgroups(), clitest.scaled(5))
                self.assertTrue(left, "batch cgroups left: %r" % slurmd_batch_cgroups())
        finally:
            # Whatever failed, the allocation goes: a held one would keep
            # every later head of the test waiting for nodes.
            h.release()
        records, summary = h.records()
        if not ws:
            self.assertGreater(summary["workers"], 0, "no worker ran: %s" % h.stderr())
        return rc, records, summary


def hang_on(node, marks, seconds=300):
    """A shell line: on node, mark the start and hang (a task that ends only
    when lost); elsewhere a short sleep. It prints its seq and node."""
    def line(seq):
        return ('case $SLURMD_NODENAME in %s) touch %s/%d.$SLURMD_NODENAME; sleep %d;; '
                '*) sleep 0.3;; esac; echo %d $SLURMD_NODENAME' % (node, marks, seq, seconds, seq))
    return line


def marks_of(marks, node):
    return [f for f in os.listdir(marks) if f.endswith("." + node)]


class A_Spread(HeadTest):
    def check_spread(self, records, out, n):
        """Every task ran once, ok, on the node it printed; all three nodes
        had tasks."""
        printed = {}
        for l in out.decode().splitlines():
            seq, node = l.split()
            printed[int(seq)] = node
        self.assertEqual(sorted(printed), list(range(1, n + 1)))
        for r in records:
            self.assertEqual(r["outcome"], "ok", r)
            self.assertEqual(r["host"], printed[r["seq"]], r)
            self.assertTrue(r["sentence"].endswith("(on %s)" % r["host"]), r["sentence"])
        self.assertEqual({r["host"] for r in records}, set(NODES))

    def test_a1_spread_salloc(self):
        """12 tasks on 3 nodes of 2 CPUs, from salloc: all nodes get tasks;
        each record's host, and the joblog's Host column, is the node the
        task says it ran on."""
        lines = ["sleep 0.4; echo %d $SLURMD_NODENAME" % i for i in range(1, 13)]
        joblog = self.path("joblog")
        h = self.head(["--joblog", joblog], lines)
        rc, records, summary = self.finish(h)
        self.assertEqual(rc, 0, h.stderr())
        self.assertEqual(len(records), 12)
        self.check_spread(records, h.stdout(), 12)
        self.assertEqual((summary["workers"], summary["workers_lost"]), (3, 0))
        with open(joblog) as f:
            rows = [l.split("\t") for l in f.read().splitlines()]
        self.assertEqual(rows[0][1], "Host")
        hosts = {r["seq"]: r["host"] for r in records}
        self.assertEqual({int(r[0]): r[1] for r in rows[1:]}, hosts)
        fact("12 tasks of 0.4 s on 3 nodes x 2 slots through salloc: %.2f s, per node %s" % (
            h.t_end - h.t0, {n: sum(1 for r in records if r["host"] == n) for n in NODES}))

    def test_a2_sbatch(self):
        """A real sbatch script: the head runs in the batch step on the first
        node, its workers on all three; an OOM among the tasks is attributed
        to its node; the job ends and leaves nothing."""
        d = tempfile.mkdtemp(prefix="sbatch-", dir=self.tmp)
        lines = ["sleep 0.3; echo %d $SLURMD_NODENAME" % i for i in range(1, 10)]
        lines.append("echo 10 $SLURMD_NODENAME; exec %s alloc 300" % clitest.PAYLOAD)
        with open(os.path.join(d, "cmds"), "w") as f:
            f.write("\n".join(lines) + "\n")
        script = os.path.join(d, "job.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n"
                    "#SBATCH --nodes=3 --exclusive --no-kill --job-name=corral-head-sbatch\n"
                    "#SBATCH --output=%s/out --error=%s/err\n"
                    "%s run --slurm -m 64M --report %s/report.jsonl < %s/cmds\n"
                    "echo $? > %s/rc.tmp && mv %s/rc.tmp %s/rc\n"
                    % (d, d, clitest.BIN, d, d, d, d, d))
        p = subprocess.run(["sbatch", "--parsable", script], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=clean_env())
        self.assertEqual(p.returncode, 0, p.stdout)
        job = int(p.stdout.decode().strip().split(";")[0])
        self.addCleanup(subprocess.run, ["scancel", str(job)], env=clean_env())
        t0 = time.monotonic()

        def over():
            q = subprocess.run(["squeue", "-h", "-j", str(job), "-o", "%T"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env=clean_env()).stdout.decode().strip()
            return q == "" and os.path.exists(os.path.join(d, "rc"))
        self.assertTrue(clitest.wait_until(over, clitest.scaled(120), 0.2),
                        "sbatch job %d did not end within 120 s: %s" % (
                            job, _read(os.path.join(d, "err"))))
        fact("sbatch job of 10 tasks: submitted to done in %.2f s" % (time.monotonic() - t0))
        rc = int(_read(os.path.join(d, "rc")))
        records, summary = clitest.read_report(self, os.path.join(d, "report.jsonl"))
        finals = clitest.finals_by_seq(records)
        oom = finals[10]
        self.assertEqual(oom["outcome"], "oom", oom)
        self.assertTrue(oom["own_limit_hit"])
        self.assertIn(oom["host"], NODES)
        self.assertIn("10 %s\n" % oom["host"], _read(os.path.join(d, "out")))
        self.assertTrue(oom["sentence"].endswith("(on %s)" % oom["host"]), oom["sentence"])
        self.assertEqual((rc, summary["verdict_seq"], summary["verdict"]),
                         (summary["exit_code"], 10, "oom"))
        self.assertNotEqual(rc, 0)
        out = b"".join(l + b"\n" for l in (_read(os.path.join(d, "out"), "rb") or b"")
                       .splitlines() if not l.startswith(b"10 "))
        self.check_spread([r for r in records if r["seq"] != 10], out, 9)
        # The batch step lives on node1: its head's workers ran everywhere.
        self.assertEqual(summary["workers"], 3)
        err = _read(os.path.join(d, "err"))
        self.assertIn(oom["sentence"], err)
        left = clitest.wait_until(lambda: not leftovers(job), clitest.scaled(30), 0.1)
        self.assertTrue(left, "left of sbatch job %d: %r" % (job, leftovers(job)))


class B_Oom(HeadTest):
    def test_b_oom_attributed(self):
        """6 tasks over 64M, one slot per node: each is OOM-killed at its own
        limit on the node it printed, and says so with that host."""
        lines = ["echo %d $SLURMD_NODENAME; exec %s alloc 300" % (i, clitest.PAYLOAD)
                 for i in range(1, 7)]
        h = self.head(["-j", "1", "-m", "64M", "--halt", "never"], lines)
        rc, records, summary = self.finish(h)
        printed = dict(l.split() for l in h.stdout().decode().splitlines())
        self.assertEqual(len(records), 6)
        for r in records:
            self.assertEqual(r["outcome"], "oom", r)
            self.assertTrue(r["own_limit_hit"], r)
            self.assertEqual(r["memory_max"], 64 << 20)
            self.assertGreaterEqual(r["oom_kills"], 1)
            self.assertEqual(r["host"], printed[str(r["seq"])], r)
            self.assertTrue(r["sentence"].startswith("task %d was OOM-killed" % r["seq"]),
                            r["sentence"])
            self.assertTrue(r["sentence"].endswith("(on %s)" % r["host"]), r["sentence"])
        self.assertGreaterEqual(len({r["host"] for r in records}), 2)
        self.assertEqual((summary["verdict_seq"], summary["verdict"]), (1, "oom"))
        self.assertEqual(rc, summary["exit_code"])
        self.assertNotEqual(rc, 0)
        first = [r for r in records if r["seq"] == 1][0]
        self.assertIn("corral: " + first["sentence"], h.corral_err())


class C_WorkerKilled(HeadTest):
    def test_c_worker_killed(self):
        """SIGKILL to node2's worker while it runs two tasks that would hang:
        both end lost there (non-final), run again elsewhere and succeed."""
        marks = tempfile.mkdtemp(prefix="marks-", dir=self.tmp)
        line = hang_on("node2", marks)
        h = self.head(["-j", "2", "--joblog", self.path("joblog")],
                      [line(i) for i in range(1, 13)])
        ws = h.workers()
        dirs = [d for p in ws.values() for d in cgroup_dirs(p)]
        self.assertTrue(clitest.wait_until(lambda: len(marks_of(marks, "node2")) == 2,
                                           clitest.scaled(30)), h.stderr())
        t_kill = time.monotonic()
        os.kill(ws["node2"], signal.SIGKILL)
        rc = h.wait(60)
        fact("worker of node2 SIGKILLed with 2 tasks on it: the head ended %.2f s later" % (
            h.t_end - t_kill))
        self.assertEqual(rc, 0, h.stderr())
        self.assert_nothing_left(h, list(ws.values()), dirs)
        h.release()
        records, summary = h.records()
        lost = [r for r in records if r["outcome"] == "lost"]
        hung = sorted(int(f.split(".")[0]) for f in marks_of(marks, "node2"))
        self.assertEqual(sorted(r["seq"] for r in lost), hung)
        for r in lost:
            self.assertFalse(r["final"], r)
            self.assertEqual((r["host"], r["attempt"], r["status"]), ("node2", 1, 255))
            self.assertEqual(r["sentence"], "task %d was lost: the worker running it on node2 "
                             "was lost, so how it ended is unknown" % r["seq"])
        finals = clitest.finals_by_seq(records)
        self.assertEqual(len(finals), 12)
        for seq in hung:
            self.assertEqual((finals[seq]["outcome"], finals[seq]["attempt"]), ("ok", 2))
            self.assertIn(finals[seq]["host"], ("node1", "node3"))
        self.assertTrue(all(r["outcome"] == "ok" for r in finals.values()))
        self.assertEqual((summary["workers"], summary["workers_lost"], summary["attempts"]),
                         (3, 1, 14))
        self.assertTrue(any(l.startswith("corral: worker node2 lost: ") for l in h.corral_err()),
                        h.stderr())
        with open(self.path("joblog")) as f:
            rows = [l.split("\t") for l in f.read().splitlines()[1:]]
        # One line per task, when its final attempt ended: where it ran last.
        self.assertEqual({int(r[0]): (r[1], r[6]) for r in rows},
                         {s: (r["host"], "0") for s, r in finals.items()})


    def _kill_final(self, args, node, n_nodes):
        """SIGKILL to node's worker when its lost tasks cannot run again:
        they end lost (final), the verdict is the lowest of them, exit 255,
        and what comes after it is cancelled or aborted; nothing left."""
        marks = tempfile.mkdtemp(prefix="marks-", dir=self.tmp)
        h = self.head(["-j", "2"] + args, [hang_on(node, marks)(i) for i in range(1, 9)])
        ws = h.workers(n_nodes)
        dirs = [d for p in ws.values() for d in cgroup_dirs(p)]
        self.assertTrue(clitest.wait_until(lambda: len(marks_of(marks, node)) == 2,
                                           clitest.scaled(30)), h.stderr())
        os.kill(ws[node], signal.SIGKILL)
        rc = h.wait(60)
        self.assertEqual(rc, 255, h.stderr())
        self.assert_nothing_left(h, list(ws.values()), dirs)
        h.release()
        records, summary = h.records()
        hung = sorted(int(f.split(".")[0]) for f in marks_of(marks, node))
        finals = clitest.finals_by_seq(records)
        for s in hung:
            self.assertEqual((finals[s]["outcome"], finals[s]["host"], finals[s]["status"]),
                             ("lost", node, 255))
        self.assertEqual((summary["verdict_seq"], summary["verdict"], summary["exit_code"]),
                         (hung[0], "lost", 255))
        self.assertEqual(summary["sentence"], finals[hung[0]]["sentence"])
        for s, r in finals.items():
            if s < hung[0]:
                self.assertEqual(r["outcome"], "ok", r)
            elif s not in hung:
                self.assertIn(r["outcome"], ("ok", "cancelled", "aborted"), r)
        self.assertEqual((summary["workers"], summary["workers_lost"]), (n_nodes, 1))
        self.assertIn("corral: " + finals[hung[0]]["sentence"], h.corral_err())
        return summary

    def test_c2_no_node_left(self):
        """The only node's worker lost: no site is left, the batch aborts."""
        summary = self._kill_final(["--nodes", "node2"], "node2", 1)
        self.assertTrue(summary["aborted"])

    def test_c3_lost_retries_0(self):
        """--lost-retries 0: a task lost with its node is final at once."""
        self._kill_final(["--lost-retries", "0"], "node1", 3)


class D_NodeKilled(HeadTest):
    def test_d1_node_killed(self):
        """node3 killed whole (slurmd, its step daemons, the worker and its
        tasks) with --worker-timeout 3s: its tasks are lost by silence
        within the bound and run elsewhere; the batch is over before Slurm
        declares the node down."""
        marks = tempfile.mkdtemp(prefix="marks-", dir=self.tmp)
        line = hang_on("node3", marks)
        h = self.head(["-j", "2", "--worker-timeout", "3s"], [line(i) for i in range(1, 13)])
        ws = h.workers()
        dirs = [d for p in ws.values() for d in cgroup_dirs(p)]
        self.assertTrue(clitest.wait_until(lambda: len(marks_of(marks, "node3")) == 2,
                                           clitest.scaled(30)), h.stderr())
        # When the worker dies (kill-node first looks for the node's
        # processes, then kills them all at once).
        died = []
        dead = ws["node3"]

        def watch():
            while clitest.pid_alive(dead) and time.monotonic() - t_kill < 60:
                time.sleep(0.005)
            died.append(time.time())
        t_kill = time.monotonic()
        watcher = threading.Thread(target=watch)
        watcher.start()
        self.restart.append("node3")
        tsw.cluster("kill-node", "node3")
        t_killed = time.monotonic()
        watcher.join()
        rc = h.wait(60)
        t_wall = time.time()
        state = node_state("node3")
        fact("node3 killed whole (kill-node took %.2f s), --worker-timeout 3s, SlurmdTimeout=%d:"
             " the head ended %.2f s after the kill; node3 then '%s'" % (
                 t_killed - t_kill, tsw.slurmd_timeout(), h.t_end - t_kill, state))
        self.assertEqual(rc, 0, h.stderr())
        self.assertNotIn("down", state)
        # Lost within the bound, then one short retry and the shutdown.
        self.assertLess(h.t_end - t_killed, clitest.scaled(3 + 15))
        self.assert_nothing_left(h, [p for n, p in ws.items() if n != "node3"], dirs)
        h.release()
        records, summary = h.records()
        fact("node killed whole: the last task ended %.2f s before the head exited (its lost "
             "srun waited for)" % (t_wall - max(r["start_time"] + r["wall_time"]
                                               for r in records)))
        hung = sorted(int(f.split(".")[0]) for f in marks_of(marks, "node3"))
        lost = [r for r in records if r["outcome"] == "lost"]
        self.assertEqual(sorted(r["seq"] for r in lost), hung)
        self.assertTrue(all(r["host"] == "node3" and not r["final"] for r in lost), lost)
        # Declared lost within --worker-timeout of the kill (and not before
        # the worker fell silent: the bound is from its last frame).
        t_lost = max(r["start_time"] + r["wall_time"] for r in lost) - died[0]
        fact("node killed whole: its tasks were declared lost %.2f s after its worker died" %
             t_lost)
        self.assertLess(t_lost, 3 + clitest.scaled(2))
        self.assertGreater(t_lost, 2.5)
        finals = clitest.finals_by_seq(records)
        self.assertTrue(all(r["outcome"] == "ok" for r in finals.values()))
        self.assertTrue(all(finals[s]["host"] in ("node1", "node2") for s in hung))
        self.assertEqual(summary["workers_lost"], 1)
        why = [l for l in h.corral_err() if l.startswith("corral: worker node3 lost: ")]
        self.assertTrue(why and "nothing came from it for" in why[0], h.stderr())
        # The dead node's worker left its batch cgroups (no one could remove
        # them); the next worker there sweeps them.
        left = cgroups_left([dead], dirs)
        fact("node killed whole: batch cgroups of its dead worker left: %d" % len(left))
        tsw.cluster("restart-node", "node3")
        self.restart.remove("node3")
        if left:
            h2 = self.head(["--nodes", "node3"], ["true"])
            rc2, _, _ = self.finish(h2)
            self.assertEqual(rc2, 0, h2.stderr())
            self.assertEqual(cgroups_left([dead], dirs), [],
                             "the next worker on node3 did not sweep them")

    def test_d2_slurmd_killed(self):
        """node2's slurmd alone killed: its step daemon, worker and tasks run
        on and the channel keeps working (srun talks to the step daemon), so
        nothing is lost until Slurm declares the node down; then srun exits,
        the tasks there are lost and run elsewhere; no hang. The orphaned
        worker, hearing no head, kills its tasks and leaves."""
        marks = tempfile.mkdtemp(prefix="marks-", dir=self.tmp)
        line = hang_on("node2", marks)
        h = self.head(["-j", "2", "--worker-timeout", "3s"], [line(i) for i in range(1, 10)])
        ws = h.workers()
        dirs = [d for p in ws.values() for d in cgroup_dirs(p)]
        self.assertTrue(clitest.wait_until(lambda: len(marks_of(marks, "node2")) == 2,
                                           clitest.scaled(30)), h.stderr())
        t_kill = time.monotonic()
        self.restart.append("node2")
        tsw.cluster("kill-node", "node2", "--slurmd-only")
        bound = 3 * tsw.slurmd_timeout() + 60
        rc = h.wait(bound)
        fact("slurmd of node2 killed, --worker-timeout 3s, SlurmdTimeout=%d: the head ended "
             "%.2f s after the kill (node2 then '%s')" % (
                 tsw.slurmd_timeout(), h.t_end - t_kill, node_state("node2")))
        self.assertEqual(rc, 0, h.stderr())
        # The orphaned worker leaves within its heartbeat bound (3 s).
        self.assert_nothing_left(h, list(ws.values()), dirs, bound=15)
        h.release()
        records, summary = h.records()
        hung = sorted(int(f.split(".")[0]) for f in marks_of(marks, "node2"))
        lost = [r for r in records if r["outcome"] == "lost"]
        self.assertEqual(sorted(r["seq"] for r in lost), hung)
        self.assertTrue(all(r["host"] == "node2" and not r["final"] for r in lost), lost)
        finals = clitest.finals_by_seq(records)
        self.assertTrue(all(r["outcome"] == "ok" for r in finals.values()))
        self.assertEqual(summary["workers_lost"], 1)
        # Not by silence (the worker kept talking through its step daemon):
        # srun ended when Slurm declared the node down.
        why = [l for l in h.corral_err() if l.startswith("corral: worker node2 lost: ")]
        self.assertTrue(why, h.stderr())
        fact("slurmd killed: " + why[0])
        self.assertIn("its channel closed", why[0])
        self.assertNotIn("nothing came from it", why[0])


class E_Signals(HeadTest):
    def _interrupt(self, sig, want_rc):
        marks = tempfile.mkdtemp(prefix="marks-", dir=self.tmp)
        lines = ["touch %s/%d.$SLURMD_NODENAME; sleep 300" % (marks, i) for i in range(1, 13)]
        h = self.head(["-j", "2", "--joblog", self.path("joblog")], lines)
        ws = h.workers()
        dirs = [d for p in ws.values() for d in cgroup_dirs(p)]
        self.assertTrue(clitest.wait_until(lambda: len(os.listdir(marks)) == 6,
                                           clitest.scaled(30)), h.stderr())
        self.assert_seen(h, ws, dirs)
        t0 = time.monotonic()
        os.kill(h.pid(), sig)
        rc = h.wait(60)
        fact("%s to the head with 6 tasks on 3 nodes: it exited %d after %.2f s" % (
            signal.Signals(sig).name, rc, h.t_end - t0))
        self.assertEqual(rc, want_rc, h.stderr())
        self.assert_nothing_left(h, list(ws.values()), dirs, what=signal.Signals(sig).name + ": ")
        h.release()
        records, summary = h.records()
        finals = clitest.finals_by_seq(records)
        self.assertEqual(sorted(finals), list(range(1, 13)))
        started = {int(f.split(".")[0]): f.split(".")[1] for f in os.listdir(marks)}
        for seq, r in finals.items():
            if seq in started:
                self.assertEqual((r["outcome"], r["host"]), ("aborted", started[seq]), r)
            else:
                self.assertEqual(r["outcome"], "cancelled", r)
        self.assertTrue(summary["aborted"])
        self.assertEqual(summary["signal"], sig)
        self.assertEqual(summary["workers_lost"], 0)
        with open(self.path("joblog")) as f:  # no line for an aborted task
            self.assertEqual(f.read().splitlines(), [clitest.JOBLOG_HEADER])

    def assert_seen(self, h, ws, dirs):
        """The checks of "nothing left" see what runs: the three workers,
        their sruns and step daemons, six tasks, the batch cgroups."""
        def sleeps(left):
            return sum(1 for _, c, a in left if c == "sleep" and a == "sleep 300")
        # A task's shell marks its start just before its sleep starts.
        left = clitest.wait_until(lambda: (lambda l: l if sleeps(l) == 6 else None)(
            leftovers(h.job(), {h.shell()})), clitest.scaled(10), 0.02)
        self.assertIsNotNone(left, leftovers(h.job(), {h.shell()}))
        pids = {p for p, _, _ in left}
        self.assertTrue(set(ws.values()) <= pids, (ws, left))
        self.assertGreaterEqual(sum(1 for _, c, _ in left if c == "srun"), 3, left)
        self.assertEqual(sum(1 for _, c, _ in left if c == "slurmstepd"), 3, left)
        self.assertGreaterEqual(len(cgroups_left(list(ws.values()), dirs)), 3)

    def test_e1_sigint(self):
        """SIGINT to the head mid-batch: exit 130, every record written, and
        nothing left on any node."""
        self._interrupt(signal.SIGINT, 130)

    def test_e2_sigterm(self):
        self._interrupt(signal.SIGTERM, 143)

    def test_e3_sigkill(self):
        """The head SIGKILLed: its sruns see EOF on their stdin and pass it
        on; each worker kills its tasks, removes its cgroups and exits."""
        marks = tempfile.mkdtemp(prefix="marks-", dir=self.tmp)
        lines = ["touch %s/%d; sleep 300" % (marks, i) for i in range(1, 13)]
        h = self.head(["-j", "2", "--worker-timeout", "3s"], lines)
        ws = h.workers()
        dirs = [d for p in ws.values() for d in cgroup_dirs(p)]
        self.assertTrue(clitest.wait_until(lambda: len(os.listdir(marks)) == 6,
                                           clitest.scaled(30)), h.stderr())
        self.assert_seen(h, ws, dirs)
        t0 = time.monotonic()
        os.kill(h.pid(), signal.SIGKILL)
        self.assertEqual(h.wait(30), 128 + signal.SIGKILL)
        keep = {h.shell()}
        gone = clitest.wait_until(lambda: not leftovers(h.job(), keep), clitest.scaled(20), 0.05)
        fact("head SIGKILLed: everything of the job gone from the nodes after %.2f s" % (
            time.monotonic() - t0))
        self.assertTrue(gone, "left 20 s after the head was SIGKILLed: %r" % leftovers(
            h.job(), keep))
        self.assertTrue(clitest.wait_until(lambda: not cgroups_left(list(ws.values()), dirs),
                                           clitest.scaled(5)),
                        "batch cgroups left: %r" % cgroups_left(list(ws.values()), dirs))
        h.release()


class F_Randomized(HeadTest):
    KINDS = ("ok", "ok", "ok", "exit", "oom", "oom_then_ok", "subprocess_oom", "sleep")

    def task(self, rng, kind, seq):
        p = clitest.PAYLOAD
        if kind == "ok":
            return "echo %d" % seq
        if kind == "sleep":
            return "sleep 0.%d; echo %d" % (rng.randint(1, 3), seq)
        if kind == "exit":
            return "sleep 0.0%d; exit %d" % (rng.randint(0, 9), rng.randint(1, 9))
        if kind == "oom":
            return "exec %s alloc 300" % p  # over 64M, and over 128M after a retry
        if kind == "hang":
            return "exec sleep 10"  # past -t 1s
        if kind == "oom_then_ok":
            return "exec %s alloc 90" % p  # over 64M, under 128M after a retry
        return "%s alloc 300; exit 0" % p  # the shell's child is OOM-killed

    def test_f_same_verdict(self):
        """20 randomized batches (oks, exits, OOMs at the task's own limit,
        subprocess OOMs, sleeps; -j 1..3; --halt ordered or never; some with
        --retries and memory growth): `corral run --slurm` on 3 nodes gives
        the verdict of single-node `corral run` on the same input - exit
        code, verdict task and outcome, and every task's final outcome and
        attempt up to the halt point."""
        base = int(os.environ.get("CORRAL_TEST_SEED") or random.SystemRandom().randrange(1 << 30))
        t0 = time.monotonic()
        verdicts = {}
        for i in range(20):
            seed = base + i
            rng = random.Random(seed)
            n = rng.randint(4, 14)
            timeout = rng.random() < 0.25
            choices = self.KINDS + (("hang",) if timeout else ())
            kinds = [rng.choice(choices) for _ in range(n)]
            if rng.random() < 0.25:
                kinds = [k if k not in ("exit", "oom", "subprocess_oom") else "ok" for k in kinds]
            lines = [self.task(rng, k, s) for s, k in enumerate(kinds, 1)]
            opts = ["-j", str(rng.randint(1, 3)), "-m", "64M",
                    "--halt", rng.choice(("ordered", "ordered", "ordered", "never"))]
            if timeout:
                opts += ["-t", "1s"]
            if rng.random() < 0.4:
                opts += ["--retries", str(rng.randint(1, 2))]
            msg = "seed %d (CORRAL_TEST_SEED=%d repeats this run), batch %d: %s\n%s" % (
                seed, base, i, " ".join(opts), "\n".join(lines))
            with self.subTest(seed=seed):
                local = clitest.corral("run", "--report", self.path("local.jsonl"), *opts,
                                       input="".join(l + "\n" for l in lines).encode(),
                                       timeout=clitest.scaled(120))
                lrec, lsum = clitest.read_report(self, self.path("local.jsonl"))
                h = self.head(opts, lines)
                rc, srec, ssum = self.finish(h)
                self.compare(msg, local.rc, lrec, lsum, rc, srec, ssum, opts)
                verdicts[lsum["verdict"] or "none"] = verdicts.get(lsum["verdict"] or "none", 0) + 1
        fact("20 randomized batches, single node and --slurm each: %.1f s (seeds %d..%d), "
             "verdicts %s" % (time.monotonic() - t0, base, base + 19, verdicts))

    def compare(self, msg, lrc, lrec, lsum, src, srec, ssum, opts):
        self.assertEqual(src, lrc, msg)
        for k in ("exit_code", "verdict_seq", "verdict", "tasks"):
            self.assertEqual(ssum[k], lsum[k], "%s: %s\n%s" % (k, msg, ssum))
        lf, sf = clitest.finals_by_seq(lrec), clitest.finals_by_seq(srec)
        upto = lsum["verdict_seq"] if "ordered" in opts and lsum["verdict_seq"] else lsum["tasks"]
        for seq in range(1, upto + 1):
            self.assertEqual((sf[seq]["outcome"], sf[seq]["attempt"]),
                             (lf[seq]["outcome"], lf[seq]["attempt"]),
                             "task %d: %s\nlocal %r\nslurm %r" % (seq, msg, lf[seq], sf[seq]))
            self.assertIn(sf[seq]["host"], NODES)
        self.assertEqual(ssum["workers_lost"], 0, msg)


class H_SlowReader(HeadTest):
    def test_h_slow_stdout(self):
        """Whoever reads the head's stdout may be slow (a pager, a full pipe,
        a stalled file system): on one machine corral just waits. The head
        must too, and keep its workers: it may not stop heartbeating while a
        write to its stdout blocks (it did, for longer than --worker-timeout,
        and every worker gave up on the head; now a thread of its own writes
        task output, src/cli/output.c)."""
        n = 8
        h = self.head(["--worker-timeout", "2s"],
                      ["%s write 1000000" % clitest.PAYLOAD] * n, stdout_pipe=True)
        h.pid()
        time.sleep(clitest.scaled(6))  # nobody reads: the pipe fills, the head blocks
        got = []
        reader = threading.Thread(target=lambda: got.append(h.p.stdout.read()))
        reader.start()  # until EOF: when salloc and the holding shell end too
        rc = h.wait(60)
        h.release()
        reader.join(clitest.scaled(30))
        h.p.stdout.close()
        data = got[0] if got else b""
        records, summary = h.records()
        self.assertEqual((rc, summary["workers_lost"]), (0, 0), h.stderr())
        self.assertEqual(data, clitest.pattern(1000000) * n)


class G_Usage(HeadTest):
    def test_g_bad_usage(self):
        """One line naming the problem, exit 125, nothing run."""
        env = clean_env()
        r = clitest.corral("run", "--slurm", "true", ":::", "x", env=env)
        self.assertOneErrorLine(r, "--slurm", "SLURM_JOB_ID")
        r = clitest.corral("run", "--workers", "ssh somewhere corral worker", "--nodes", "a",
                           "true", ":::", "x", env=env)
        self.assertOneErrorLine(r, "--workers", "{node}")
        r = clitest.corral("run", "--slurm", "--line-buffer", "true", ":::", "x", env=env)
        self.assertOneErrorLine(r, "--line-buffer", "--slurm")
        r = clitest.corral("run", "--slurm", "--workers", "x {node}", "--nodes", "a", "true",
                           ":::", "x", env=env)
        self.assertOneErrorLine(r, "--slurm", "--workers")
        r = clitest.corral("run", "--nodes", "node1", "true", ":::", "x", env=env)
        self.assertOneErrorLine(r, "--nodes")
        # Inside an allocation: a node that is not in it.
        for nodes in ("node9", "node1,node4"):
            p = subprocess.run(SALLOC + ["-Q", clitest.BIN, "run", "--slurm", "--nodes", nodes,
                                         "true", ":::", "x"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               timeout=clitest.scaled(120))
            self.assertOneErrorLine(clitest.Result(p.returncode, p.stdout, p.stderr, 0, 0),
                                    "node%s" % nodes[-1], "not in this allocation")


if __name__ == "__main__":
    unittest.main()
