#!/usr/bin/env python3
"""soak.py - randomized soak of the `corral` command (issue "Reliability",
parts 1 and 2). Python 3 standard library only; run as root. Usually started
through scripts/soak.sh.

Soak (--tasks N): random batches of tasks whose end the harness induces
itself: exit codes, crashes, OOM at the task's own limit (with and without
output before it), a subprocess OOM-killed while the leader lives, SIGKILL /
SIGTERM sent by the harness at random moments (and racing with a normal
exit), timeouts (with and without a SIGTERM-ignoring task under
--kill-after), fork bombs under --pids, double-forked daemons, stdout closed
early, megabytes of output, commands that cannot be executed. Every batch
gets a random -j, --halt, --retries/--retry-on/--memory-growth, -k, and
(v2) --no-oom-group. For each batch the harness predicts, from what it
induced, every task's outcome per attempt (retries and memory growth
included) and checks:
  - every task's final outcome, status, attempts, memory limit per attempt,
    pid, oom/pids facts (confusion matrix: induced x observed);
  - the verdict (seq, exit code) against the sequential expectation for
    ordered/never, and against the observed failures for now;
  - that no process of the batch survives corral (every process started
    under a batch carries SOAK_TAG=<batch tag> in its environment: tasks,
    their children, daemons; the watchdog too) and that no batch cgroup
    (corral-<pid>-*) is left in our memory cgroup, the v1 pids hierarchy
    or the cgroup2 root;
  - that every finished task's output (byte-exact, in --results and in
    corral's own stdout, in input order with -k) and report/joblog record
    is there.
A watchdog timeout around each corral run counts hangs.

Kill-corral (--kill-corral N): batches of sleeping, forking and daemonizing
tasks (and OOM-retrying ones); corral is SIGKILLed at a random point (while
it spawns, while tasks end and are cleaned up, mid-retry, while it tears
down at the end). Then no task
process, no watchdog and no batch cgroup may remain 1 s later. Every few
iterations the watchdog is SIGKILLed as well (nothing cleans up): the next
corral start must remove the stale batch (cgroups and processes in them).
After every iteration corral is started again and must leave nothing stale.

Prints the figures and exits 1 if any mismatch, hang or leak was seen.
"""
import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

MiB = 1 << 20
# As root, corral's default sandbox runs a batch's tasks in a PID namespace.
PIDNS = os.geteuid() == 0
OUTCOMES = ("ok", "exit", "oom", "oom_outside", "subprocess_oom", "timeout", "signal",
            "spawn_error", "cancelled", "aborted", "lost")
HALTED = ("cancelled", "aborted")
RETRY_CLASS = {"oom": "oom", "oom_outside": "oom", "subprocess_oom": "oom",
               "timeout": "timeout", "signal": "signal", "exit": "exit"}
CGROOT = "/sys/fs/cgroup"

_block = bytes(ord("a") + i % 26 for i in range(65536))
_pattern_cache = b""


def pattern(n):
    """corral-payload's `write` pattern: byte k is 'a' + (k % 65536) % 26."""
    global _pattern_cache
    if len(_pattern_cache) < n:
        _pattern_cache = _block * (n // 65536 + 1)
    return _pattern_cache[:n]


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- the host

class Host:
    def __init__(self, args):
        self.bin = args.corral
        self.payload = args.payload
        p = subprocess.run([self.bin, "check", "--json"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            sys.exit("soak: `corral check` says corral cannot run here (exit %d): %s"
                     % (p.returncode, p.stderr.decode(errors="replace").strip()))
        self.check = json.loads(p.stdout)
        self.mode = self.check["mode"]
        self.v2 = self.mode == "v2"
        self.scale = args.scale or self._scale()
        cg = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in (ctrls.split(",") if ctrls else [""]):
                    cg[c] = path
        dirs = []
        if self.v2:
            dirs += [os.path.normpath(CGROOT + cg[""]), CGROOT]
        else:
            dirs.append(os.path.normpath(CGROOT + "/memory" + cg.get("memory", "/")))
            if "pids" in cg:
                dirs.append(os.path.normpath(CGROOT + "/pids" + cg["pids"]))
            dirs.append(CGROOT + "/pids")
        self.cg_dirs = []
        for d in dirs:
            if d not in self.cg_dirs and os.path.isdir(d):
                self.cg_dirs.append(d)

    @staticmethod
    def _scale():
        env = os.environ.get("CORRAL_TEST_TIME_SCALE")
        if env:
            return float(env)
        try:
            with open("/proc/cpuinfo") as f:
                if "QEMU TCG" in f.read():
                    return 8.0
        except OSError:
            pass
        return 1.0

    def batch_cgroups(self, corral_pid):
        """Batch cgroups named after corral_pid (corral-<pid>-...)."""
        prefix = "corral-%d-" % corral_pid
        found = []
        for d in self.cg_dirs:
            try:
                names = os.listdir(d)
            except OSError:
                continue
            found += [os.path.join(d, n) for n in names if n.startswith(prefix)]
        return found


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def has_tag(pid, tagb):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return tagb in f.read()
    except OSError:
        return False


def tag_bytes(tag):
    return b"SOAK_TAG=" + tag.encode() + b"\0"


def exited_init(pid):
    """An init of a PID namespace (corral's watchdog, as root) that has exited
    and waits in the kernel for the namespace's last zombies to be reaped by
    their parent's reaper (the task leaders were corral's children): it runs
    no code any more."""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read() == "zap_pid_ns_processes"
    except OSError:
        return False


def tagged_procs(tag, exited_inits=False):
    """Live (non-zombie) processes carrying SOAK_TAG=tag in their environment
    (and, with exited_inits, PID namespace inits that have exited)."""
    tagb = tag_bytes(tag)
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me or not has_tag(pid, tagb):
            continue
        st = proc_state(pid)
        if st is not None and st not in ("Z", "X") and (exited_inits or not exited_init(pid)):
            out.append(pid)
    return out


def ns_resolve(nspid, tagb):
    """Our pid of the tagged process that calls itself nspid: as root, corral
    runs the tasks of a batch in a PID namespace of their own, and what a task
    writes as $$ is its pid there. None when it is gone (or not found)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                ns = [l for l in f.read().splitlines() if l.startswith("NSpid:")]
        except OSError:
            continue
        if ns and int(ns[0].split()[-1]) == nspid and has_tag(int(name), tagb):
            return int(name)
    return None


def describe(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open("/proc/%d/stat" % pid, "rb") as f:
            st = f.read().rsplit(b")", 1)[1].split()
        return "pid %d state %s ppid %s: %s" % (pid, st[0].decode(), st[1].decode(), cmd[:120])
    except OSError:
        return "pid %d (gone)" % pid


def signal_tagged(pid, tagb, sig):
    """Send sig to pid only if it is ours (carries the tag): through a pidfd
    opened before the check, so a recycled pid is never signalled."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if not has_tag(pid, tagb):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def kill_tagged(tag):
    tagb = tag_bytes(tag)
    for pid in tagged_procs(tag):
        signal_tagged(pid, tagb, signal.SIGKILL)


def remove_cgroup_tree(path):
    """Kill what is in a cgroup tree corral created (and left) and remove it."""
    for _ in range(50):
        for root, dirs, _files in os.walk(path, topdown=False):
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                pids = []
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)  # in our own batch cgroup: ours
                except OSError:
                    pass
            try:
                os.rmdir(root)
            except OSError:
                pass
        if not os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- tasks

class Batch:
    pass


class Task:
    """One task: what the harness induces, and what it therefore expects."""

    def __init__(self, seq, kind, **kw):
        self.seq = seq
        self.kind = kind
        self.__dict__.update(kw)
        self.header = b"task %d\n" % seq

    # -- the script
    def script(self, b):
        P = b.host.payload
        pids = "%s/%d.pids" % (b.side, self.seq)
        pre = ["#!/bin/sh", "echo 'task %d'" % self.seq, "echo $$ >> %s" % pids]
        k = self.kind
        if k == "ok":
            body = ["exec %s sleep-exit %.3f 0" % (P, self.dur)]
        elif k == "exit":
            body = ["exec %s sleep-exit %.3f %d" % (P, self.dur, self.code)]
        elif k == "crash":
            body = ["exec %s signal %d" % (P, self.sig)]
        elif k == "alloc":
            if self.write:
                body = ["exec %s write-alloc %d %d" % (P, self.write, self.mib)]
            else:
                body = ["exec %s alloc %d 50" % (P, self.mib)]
        elif k == "suboom":
            body = ["exec %s child-alloc %d" % (P, self.mib)]
        elif k in ("kill", "race"):
            body = ["exec %s sleep-exit %.3f 0" % (P, self.dur)]
        elif k == "timeout":
            body = (["trap '' TERM"] if self.ignore_term else []) + ["exec %s sleep 600" % P]
        elif k == "forkbomb":
            body = ["exec %s forkbomb %d" % (P, self.n)]
        elif k == "daemon":
            body = ["%s daemon %s/%d.daemon 600" % (P, b.side, self.seq), "exit %d" % self.code]
        elif k == "closeout":
            body = ["%s write %d" % (P, self.write), "exec >&-",
                    "exec %s sleep-exit 0.05 %d" % (P, self.code)]
        elif k == "bigout":
            body = ["exec %s write %d %d" % (P, self.write, self.fd)]
        else:
            raise ValueError(k)
        return "\n".join(pre + body) + "\n"

    # -- the model
    def attempt_outcomes(self, b, limit):
        """The possible (outcome, status) of one attempt run with memory limit
        `limit` (bytes or None), as a set; more than one = not certain."""
        k = self.kind
        if k == "ok":
            return {("ok", 0)}
        if k == "exit":
            return {("exit", self.code)}
        if k == "crash":
            return {("signal", 128 + self.sig)}
        if k in ("alloc", "suboom"):
            need = self.mib * MiB
            if limit is None or need + 24 * MiB <= limit:
                return {("ok", 0)}
            assert need >= limit + 8 * MiB, "ambiguous allocation generated"
            if k == "alloc":
                return {("oom", 137)}
            if b.host.v2 and b.oom_group:
                return {("oom", 137)}  # memory.oom.group: the leader goes too
            return {("ok", 0)} if b.allow_suboom else {("subprocess_oom", 137)}
        if k == "kill":
            return {("signal", 128 + self.sig)}
        if k == "race":
            return {("ok", 0), ("signal", 128 + self.sig)}
        if k == "timeout":
            return {("timeout", 124)}
        if k == "forkbomb":
            return {("ok", 0)}
        if k in ("daemon", "closeout"):
            return {("exit", self.code)} if self.code else {("ok", 0)}
        if k == "bigout":
            return {("ok", 0)}
        if k == "spawn":
            return {("spawn_error", 127 if self.missing else 126)}
        raise ValueError(k)

    def oom_at(self, b, limit):
        return (self.kind in ("alloc", "suboom") and limit is not None
                and self.mib * MiB >= limit + 8 * MiB)

    def simulate(self, b):
        """Run the model through the retries: self.limits (per attempt),
        self.final (set), self.any (every attempt's possibilities),
        self.n_attempts (None = not certain)."""
        limit = b.mem
        self.limits, self.any, self.n_attempts = [], set(), 0
        certain = True
        while True:
            self.limits.append(limit)
            outs = self.attempt_outcomes(b, limit)
            self.any |= outs
            self.n_attempts += 1
            retried = {o for o in outs
                       if RETRY_CLASS.get(o[0]) in b.retry_on and self.n_attempts <= b.retries}
            if not retried:
                self.final = outs
                break
            if retried != outs:  # some possibilities retry, others end here
                certain = False
                self.final = set(outs)
                # follow the retrying branch for the rest (same outcomes each time)
            if self.oom_at(b, limit):
                limit = grow(limit, b)
        if not certain:
            self.final |= self.any
            self.n_attempts = None

    def label(self):
        """The confusion matrix row: what was induced -> the expected final outcome."""
        k = self.kind
        if k == "crash":
            name = "raise " + signal.Signals(self.sig).name
        elif k == "alloc":
            name = "own OOM" + (" after output" if self.write else "")
        elif k == "suboom":
            name = "subprocess OOM"
        elif k == "kill":
            name = "external " + signal.Signals(self.sig).name
        elif k == "race":
            name = "external kill vs exit"
        elif k == "timeout":
            name = "timeout, TERM ignored" if self.ignore_term else "timeout"
        elif k == "spawn":
            name = "command not found" if self.missing else "command not executable"
        else:
            name = {"ok": "exit 0", "exit": "exit k", "forkbomb": "fork bomb at --pids",
                    "daemon": "double-fork daemon", "closeout": "stdout closed early",
                    "bigout": "MBs of output"}[k]
        if k in ("alloc", "suboom"):
            ooms = [self.oom_at(Batch_of[self], l) for l in self.limits]
            if not any(ooms):
                name = "fits in its limit" if k == "alloc" else "subprocess fits"
            elif len(ooms) > 1:
                name += ", retried"
        fin = "|".join(sorted(o for o, _ in self.final))
        return "%s -> %s" % (name, fin)

    def expected_stdout(self, outcome, attempt):
        """(the full output of the final attempt, exact?); not exact: the
        output must be a prefix of it (the task was cut short)."""
        k = self.kind
        h = self.header
        exact = outcome != "aborted"
        if k == "spawn":
            return b"", True
        if k == "alloc" and self.write:
            return h + pattern(self.write), exact
        if k == "suboom":
            limit = self.limits[min(attempt, len(self.limits)) - 1]
            line = b"child killed\n" if self.oom_at(Batch_of[self], limit) else b"child exited\n"
            return h + line, exact and outcome in ("ok", "subprocess_oom")
        if k == "closeout":
            return h + pattern(self.write), exact
        if k == "bigout":
            return h + (pattern(self.write) if self.fd == 1 else b""), exact
        return h, exact


Batch_of = {}  # task -> batch (for the model helpers)


def grow(limit, b):
    g = limit * b.growth
    cap = b.ceiling if b.ceiling is not None else float("inf")
    if g >= cap:
        return cap
    return int(-(-limit * b.growth // 1))


# ---------------------------------------------------------------- batch generation

KINDS_ALL = ["ok", "exit", "crash", "alloc", "suboom", "kill", "race", "timeout", "forkbomb",
             "daemon", "closeout", "bigout", "spawn"]
WEIGHTS = {"ok": 10, "exit": 9, "crash": 6, "alloc": 10, "suboom": 7, "kill": 7, "race": 4,
           "timeout": 4, "forkbomb": 3, "daemon": 6, "closeout": 4, "bigout": 4, "spawn": 3}


def choose_mib(rng, b):
    """An allocation that is, at every attempt's limit, clearly above it (OOM)
    or clearly below it (fits): never within the band where it depends."""
    limits = [b.mem]
    for _ in range(b.retries):
        limits.append(grow(limits[-1], b))
    for _ in range(200):
        mib = rng.randint(4, max(8, int(b.mem * 4 / MiB)))
        ok = True
        for l in limits:
            need = mib * MiB
            if not (need + 24 * MiB <= l or need >= l + 8 * MiB):
                ok = False
        if ok:
            return mib
    return int(limits[-1] * 2 / MiB) + 16


def make_batch(host, args, rng, bno, ntasks, root):
    b = Batch()
    b.host = host
    b.no = bno
    b.seed = None
    b.dir = os.path.join(root, "b%05d" % bno)
    b.side = os.path.join(b.dir, "side")
    b.tdir = os.path.join(b.dir, "t")
    b.results = os.path.join(b.dir, "results")
    b.report = os.path.join(b.dir, "report.jsonl")
    b.joblog = os.path.join(b.dir, "joblog") if rng.random() < 0.5 else None
    b.tag = "soak%dx%dy" % (os.getpid(), bno)
    vm = host.scale > 1
    b.jobs = rng.choice([1, 2, 3, 4, 6, 8] if not vm else [1, 2, 3, 4])
    b.halt = rng.choice(["ordered", "ordered", "never", "never", "now"])
    b.retries = rng.choice([0, 0, 1, 2])
    b.retry_on = set(rng.sample(["oom", "timeout", "signal", "exit"], rng.randint(1, 3))) \
        if rng.random() < 0.5 else {"oom"}
    b.mem = rng.choice([32, 48, 64] if not vm else [16, 32]) * MiB
    b.growth = rng.choice([1.5, 2, 3])
    b.ceiling = b.mem * rng.choice([2, 4]) if rng.random() < 0.3 else None
    b.pids = rng.choice([None, 24, 48])
    b.timeout = rng.choice([None, 2.5]) if rng.random() < 0.7 else None
    b.kill_after = rng.choice([None, 0.5]) if b.timeout else None
    b.keep_order = rng.random() < 0.4
    b.allow_suboom = rng.random() < 0.2
    b.oom_group = (rng.random() < 0.6) if host.v2 else True
    b.stdin = rng.random() < 0.3
    if b.timeout:
        b.timeout *= host.scale
    if b.kill_after:
        b.kill_after *= host.scale
    kinds = [k for k in KINDS_ALL
             if not (k == "timeout" and not b.timeout) and not (k == "forkbomb" and not b.pids)]
    weights = [WEIGHTS[k] for k in kinds]
    # Under ordered/now the first failure stops the batch: keep failures
    # rare enough there that most tasks run.
    keep_fail = 1.0 if b.halt == "never" else rng.choice([0.0, 0.03, 0.1])
    b.tasks = []
    for seq in range(1, ntasks + 1):
        for _ in range(20):
            t = new_task(rng, b, seq, kinds, weights, vm)
            if {o for o, _ in t.final} == {"ok"} or rng.random() < keep_fail:
                break
        b.tasks.append(t)
    return b


def new_task(rng, b, seq, kinds, weights, vm):
    if True:
        k = rng.choices(kinds, weights)[0]
        t = Task(seq, k)
        if k == "ok":
            t.dur = rng.choice([0, 0.01, 0.05, 0.2])
        elif k == "exit":
            t.code = rng.choice([1, 2, 3, 42, 100, 124, 126, 127, 137, 255])
            t.dur = rng.choice([0, 0.01, 0.1])
        elif k == "crash":
            t.sig = rng.choice([signal.SIGSEGV, signal.SIGABRT, signal.SIGFPE, signal.SIGUSR1])
        elif k == "alloc":
            t.mib = choose_mib(rng, b)
            t.write = rng.choice([0, 0, 1000, 70000, 1 << 20])
        elif k == "suboom":
            t.mib = choose_mib(rng, b)
        elif k == "kill":
            t.sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
            t.dur = 600
            t.delay = rng.uniform(0, 0.3)
        elif k == "race":
            t.sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
            t.dur = rng.uniform(0.02, 0.2)
            t.delay = rng.uniform(0, 2 * t.dur)
        elif k == "timeout":
            t.ignore_term = bool(b.kill_after) and rng.random() < 0.5
        elif k == "forkbomb":
            t.n = b.pids + rng.randint(5, 60)
        elif k in ("daemon", "closeout"):
            t.code = rng.choice([0, 0, 0, 3])
            t.write = rng.choice([10, 5000, 300000])
        elif k == "bigout":
            t.write = rng.choice([100000, 1 << 20, 3 << 20] if not vm else [100000, 1 << 20])
            t.fd = rng.choice([1, 1, 2])
        elif k == "spawn":
            t.missing = rng.random() < 0.5
        Batch_of[t] = b
        t.simulate(b)
        return t


def corral_argv(b):
    a = [b.host.bin, "run", "-j", str(b.jobs), "--halt", b.halt, "-m", str(b.mem),
         "--results", b.results, "--report", b.report]
    if b.retries:
        a += ["--retries", str(b.retries), "--retry-on", ",".join(sorted(b.retry_on)),
              "--memory-growth", str(b.growth)]
    elif b.retry_on != {"oom"}:
        a += ["--retry-on", ",".join(sorted(b.retry_on))]
    if b.ceiling:
        a += ["--memory-ceiling", str(b.ceiling)]
    if b.pids:
        a += ["--pids", str(b.pids)]
    if b.timeout:
        a += ["--timeout", "%gs" % b.timeout]
    if b.kill_after:
        a += ["--kill-after", "%gs" % b.kill_after]
    if b.keep_order:
        a.append("-k")
    if b.allow_suboom:
        a.append("--allow-subprocess-oom")
    if b.host.v2 and not b.oom_group:
        a.append("--no-oom-group")
    if b.joblog:
        a += ["--joblog", b.joblog]
    if not b.stdin:
        a += ["-a", os.path.join(b.dir, "lines")]
    a += ["--", "{}"]
    return a


def write_batch(b):
    os.makedirs(b.side)
    os.makedirs(b.tdir)
    lines = []
    for t in b.tasks:
        path = os.path.join(b.tdir, str(t.seq))
        lines.append(path)
        if t.kind == "spawn":
            if not t.missing:
                with open(path, "w") as f:
                    f.write("#!/bin/sh\necho should not run\n")
                os.chmod(path, 0o644)
            continue
        with open(path, "w") as f:
            f.write(t.script(b))
        os.chmod(path, 0o755)
    with open(os.path.join(b.dir, "lines"), "w") as f:
        f.write("\n".join(lines) + "\n")


# ---------------------------------------------------------------- running one batch

class Stats:
    def __init__(self):
        self.batches = self.tasks = self.attempts = 0
        self.mismatch = collections.Counter()  # kind of check -> count
        self.problems = collections.Counter()
        self.mismatch_tasks = 0
        self.hangs = 0
        self.leaked_procs = 0
        self.leaked_cgroups = 0
        self.ambiguous = 0
        self.unread = 0
        self.kills_sent = 0
        self.daemons = 0
        self.matrix = collections.defaultdict(collections.Counter)
        self.details = []
        self.kc = collections.Counter()
        self.kc_clean_ms = []

    def bad(self, what, msg):
        """what: outcome, verdict, output, record (mismatches); leak, hang,
        kill-corral (other failures)."""
        if what in ("outcome", "verdict", "output", "record"):
            self.mismatch[what] += 1
        else:
            self.problems[what] += 1
        if len(self.details) < 200:
            self.details.append("%s: %s" % (what, msg))
        log("  %s %s: %s" % ("MISMATCH" if what in self.mismatch else "PROBLEM", what, msg))

    def total(self):
        return sum(self.mismatch.values()) + sum(self.problems.values())


def read_pid_lines(path):
    try:
        with open(path) as f:
            data = f.read()
    except OSError:
        return []
    return [int(x) for x in data.split("\n")[:-1] if x.strip().isdigit()]


def run_batch(b, st, args):
    write_batch(b)
    env = dict(os.environ, SOAK_TAG=b.tag)
    argv = corral_argv(b)
    with open(os.path.join(b.dir, "cmd"), "w") as f:
        f.write(" ".join(argv) + "\n")
    est = 0.0
    for t in b.tasks:
        per = b.timeout + (b.kill_after or 0) if t.kind == "timeout" else 1.0
        est += per * (b.retries + 1)
    budget = (60 + 2 * est) * b.host.scale
    tagb = tag_bytes(b.tag)
    watch = {t.seq: t for t in b.tasks if t.kind in ("kill", "race")}
    seen = collections.defaultdict(int)  # seq -> pid lines handled
    pending = []  # (due, seq, attempt, pid, sig)
    b.kills = collections.defaultdict(list)  # seq -> [(attempt, pid, wall time, delivered)]
    out = open(os.path.join(b.dir, "stdout"), "wb")
    err = open(os.path.join(b.dir, "stderr"), "wb")
    stdin = open(os.path.join(b.dir, "lines"), "rb") if b.stdin else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, env=env)
    if b.stdin:
        stdin.close()
    hung = False
    while True:
        rc = p.poll()
        if rc is not None:
            break
        now = time.monotonic()
        if now - t0 > budget:
            hung = True
            log("  HANG: batch %d still running after %.0fs; SIGKILL corral %d" %
                (b.no, budget, p.pid))
            for pid in tagged_procs(b.tag):
                log("    " + describe(pid))
            p.kill()
            p.wait()
            break
        for seq, t in watch.items():
            pids = read_pid_lines("%s/%d.pids" % (b.side, seq))
            while seen[seq] < len(pids):
                seen[seq] += 1
                pending.append((now + t.delay * b.host.scale, seq, seen[seq], pids[seen[seq] - 1],
                                t.sig))
        rest = []
        for item in pending:
            due, seq, att, pid, sig = item
            if now >= due:
                host = ns_resolve(pid, tagb)
                ok = host is not None and signal_tagged(host, tagb, sig)
                b.kills[seq].append((att, host, time.time(), ok))
                st.kills_sent += ok
            else:
                rest.append(item)
        pending = rest
        time.sleep(0.005)
    out.close()
    err.close()
    b.rc = p.returncode
    b.elapsed = time.monotonic() - t0
    b.corral_pid = p.pid
    if hung:
        st.hangs += 1
        time.sleep(1.5 * b.host.scale)  # the watchdog's turn
    leak_check(b, st, "batch %d" % b.no)
    if not hung:
        check_batch(b, st)
    else:
        st.bad("hang", "batch %d (%s), kept %s" % (b.no, " ".join(argv), b.dir))


def leak_check(b, st, what):
    procs = tagged_procs(b.tag)
    if procs:
        st.leaked_procs += len(procs)
        st.bad("leak", "%s: %d processes outlived corral %d" % (what, len(procs), b.corral_pid))
        for pid in procs[:10]:
            log("    " + describe(pid))
        kill_tagged(b.tag)
    for t in b.tasks:
        if t.kind == "daemon":
            for pid in read_pid_lines("%s/%d.daemon" % (b.side, t.seq)):
                st.daemons += 1
                s = proc_state(pid)
                if s not in (None, "Z", "X") and has_tag(pid, tag_bytes(b.tag)):
                    st.bad("leak", "%s: daemon %d of task %d is alive" % (what, pid, t.seq))
    cgs = b.host.batch_cgroups(b.corral_pid)
    if cgs:
        st.leaked_cgroups += len(cgs)
        st.bad("leak", "%s: cgroups left: %s" % (what, cgs))
        for c in cgs:
            remove_cgroup_tree(c)


# ---------------------------------------------------------------- checking one batch

def read_report(path):
    recs, summary = [], None
    with open(path, "rb") as f:
        data = f.read()
    for line in data.split(b"\n"):
        if not line:
            continue
        o = json.loads(line)
        if "summary" in o:
            summary = o["summary"]
        else:
            recs.append(o)
    return recs, summary, data.endswith(b"\n") or not data


def check_batch(b, st):
    st.batches += 1
    st.tasks += len(b.tasks)
    n_bad_before = st.total()
    where = "batch %d" % b.no
    try:
        recs, summary, nl = read_report(b.report)
    except (OSError, ValueError) as e:
        st.bad("record", "%s: unreadable report: %s" % (where, e))
        return
    st.attempts += sum(1 for r in recs if r["attempt"] > 0)
    if not nl or summary is None:
        st.bad("record", "%s: report has no summary line or no final newline" % where)
        return
    by_seq = collections.defaultdict(list)
    for r in recs:
        by_seq[r["seq"]].append(r)
    finals = {}
    for seq, rs in by_seq.items():
        f = [r for r in rs if r["final"]]
        if len(f) != 1:
            st.bad("record", "%s task %d: %d final records" % (where, seq, len(f)))
            continue
        finals[seq] = f[0]
        if f[0] is not rs[-1]:
            st.bad("record", "%s task %d: the final record is not the last" % (where, seq))
        atts = [r["attempt"] for r in rs]
        if f[0]["outcome"] == "cancelled":
            if atts[-1] != 0 or any(a == 0 for a in atts[:-1]):
                st.bad("record", "%s task %d: cancelled with attempts %s" % (where, seq, atts))
        elif atts != list(range(1, len(atts) + 1)):
            st.bad("record", "%s task %d: attempts %s" % (where, seq, atts))
    # After an ordered/now halt corral stops reading its input: the items it
    # never read have no record (and the summary counts the tasks it read).
    n_read = summary.get("tasks")
    v = summary.get("verdict_seq") or 0
    if n_read != len(b.tasks) and not (b.halt != "never" and v and isinstance(n_read, int)
                                       and v <= n_read < len(b.tasks)):
        st.bad("record", "%s: summary says %s tasks, %d in the input" % (where, n_read,
                                                                       len(b.tasks)))
    missing = [t.seq for t in b.tasks if t.seq not in finals]
    if missing and missing != list(range(n_read + 1, len(b.tasks) + 1)):
        st.bad("record", "%s: no final record for tasks %s (%s read)" % (where, missing[:20],
                                                                        n_read))
    st.unread += len(missing)
    for o in OUTCOMES:
        n = sum(1 for r in finals.values() if r["outcome"] == o)
        if summary["outcomes"].get(o) != n:
            st.bad("record", "%s: summary counts %s %s, records %d" %
                   (where, summary["outcomes"].get(o), o, n))

    # ---- the verdict
    failed = sorted(s for s, r in finals.items() if r["outcome"] not in ("ok",) + HALTED)
    if summary.get("exit_code") != b.rc:
        st.bad("verdict", "%s: summary exit_code %s, corral exited %s" %
               (where, summary.get("exit_code"), b.rc))
    if b.halt in ("ordered", "never"):
        if v != (failed[0] if failed else 0):
            st.bad("verdict", "%s (%s): verdict %d, lowest failure %s" %
                   (where, b.halt, v, failed[:1]))
        certain_fail = [t.seq for t in b.tasks if all(o not in ("ok",) for o, _ in t.final)]
        if certain_fail and (v == 0 or v > certain_fail[0]):
            st.bad("verdict", "%s (%s): verdict %d, but task %d fails whatever happens" %
                   (where, b.halt, v, certain_fail[0]))
    else:
        if failed and v not in failed:
            st.bad("verdict", "%s (now): verdict %d is not one of the failures %s" %
                   (where, v, failed[:10]))
        if not failed and v:
            st.bad("verdict", "%s (now): verdict %d without a failure" % (where, v))
    exp_rc = finals[v]["status"] if v and v in finals else 0
    if b.rc != exp_rc:
        st.bad("verdict", "%s: corral exited %d, verdict task %d has status %s" %
               (where, b.rc, v, exp_rc))

    # ---- every task
    stdout_parts = {}
    for t in b.tasks:
        r = finals.get(t.seq)
        if r is None:
            continue
        bad = check_task(b, t, r, by_seq[t.seq], v, st)
        o = r["outcome"]
        st.matrix[t.label()][o] += 1
        if bad:
            st.mismatch_tasks += 1
        if o != "cancelled":
            stdout_parts[t.seq] = read_file(os.path.join(b.results, str(t.seq), "stdout"))

    # ---- corral's own stdout: every task's output whole, in input order with -k
    try:
        with open(os.path.join(b.dir, "stdout"), "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    check_stdout_stream(b, data, stdout_parts, st)

    # ---- joblog
    if b.joblog:
        try:
            with open(b.joblog, "rb") as f:
                rows = f.read().split(b"\n")[1:-1]
            # One line per task that ended (its final attempt; none for a
            # cancelled or aborted task: GNU parallel's rule).
            n_att = sum(1 for r in recs if r["final"] and r["outcome"] not in
                        ("cancelled", "aborted"))
            if len(rows) != n_att:
                st.bad("record", "%s: joblog has %d rows, %d tasks ended" %
                       (where, len(rows), n_att))
        except OSError as e:
            st.bad("record", "%s: joblog: %s" % (where, e))
    if st.total() == n_bad_before and not args_keep:
        shutil.rmtree(b.dir, ignore_errors=True)
    else:
        log("  kept %s" % b.dir)


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def check_stdout_stream(b, data, parts, st):
    where = "batch %d" % b.no
    if b.keep_order:
        want = b"".join(parts[s] or b"" for s in sorted(parts))
        if data != want:
            st.bad("output", "%s: -k stdout (%d bytes) is not the tasks' outputs in order "
                   "(%d bytes)" % (where, len(data), len(want)))
        return
    pos, used = 0, set()
    header = re.compile(rb"task (\d+)\n")
    while pos < len(data):
        m = header.match(data, pos)
        s = int(m.group(1)) if m else None
        part = parts.get(s) if s else None
        if not m or s in used or part is None or data[pos:pos + len(part)] != part:
            st.bad("output", "%s: corral's stdout at byte %d is not a whole task output "
                   "(%r)" % (where, pos, data[pos:pos + 40]))
            return
        used.add(s)
        pos += len(part)
    left = [s for s, p in parts.items() if p and s not in used]
    if left:
        st.bad("output", "%s: outputs of tasks %s missing from corral's stdout" %
               (where, left[:10]))


def brief(rs):
    """The facts of a task's records that explain an outcome, one attempt each."""
    keys = ("attempt", "outcome", "status", "oom_kills", "own_limit_hit", "pids_limit_hit",
            "memory_max", "memory_peak")
    return "; ".join(" ".join("%s=%s" % (k, x.get(k)) for k in keys) for x in rs)


def check_task(b, t, r, rs, v, st):
    """Check one task's records and output; returns True if anything was wrong."""
    where = "batch %d%s task %d (%s)" % (b.no, "" if b.seed is None else " seed %d" % b.seed,
                                         t.seq, t.label())
    o, status = r["outcome"], r["status"]
    nbad = sum(st.mismatch.values())
    beyond = (b.halt == "ordered" and v and t.seq > v) or b.halt == "now"
    allowed = set(t.final)
    if beyond:
        allowed |= t.any | {("cancelled", None), ("aborted", None)}
        if t.kind == "suboom" and ("oom", 137) not in allowed and any(
                t.oom_at(b, l) for l in t.limits):
            # corral killed the leader (halt) after the subprocess was OOM-killed:
            # the earlier OOM kill wins (outcome.c), and with the leader SIGKILLed
            # that reads as the task's own OOM.
            allowed.add(("oom", 137))
            if o == "oom":
                st.ambiguous += 1
    # A kill sent after the timeout may have lost the race to it.
    if t.kind in ("kill", "race") and b.timeout:
        for att, pid, when, ok in b.kills.get(t.seq, []):
            rec = next((x for x in rs if x["attempt"] == att), None)
            if rec and when >= rec["start_time"] + b.timeout - 0.5 * b.host.scale:
                allowed.add(("timeout", 124))
                st.ambiguous += 1
    if t.kind == "race":
        st.ambiguous += 1
    if (o, status) not in allowed:
        st.bad("outcome", "%s: %s/%s, expected one of %s; sentence: %s" %
               (where, o, status, sorted(allowed, key=str), r["sentence"]))
    # attempts and limits
    ran = [x for x in rs if x["attempt"] > 0]
    if not beyond and t.n_attempts is not None and o not in HALTED and \
            len(ran) != t.n_attempts:
        st.bad("outcome", "%s: %d attempts, expected %d" % (where, len(ran), t.n_attempts))
    if t.n_attempts is not None and len(ran) > t.n_attempts:
        st.bad("outcome", "%s: %d attempts, at most %d expected" % (where, len(ran), t.n_attempts))
    pid_lines = read_pid_lines("%s/%d.pids" % (b.side, t.seq))
    # What a task said is its pid in the batch's PID namespace (as root): it
    # can be checked against the record only where the harness resolved it
    # while the task lived (the tasks it killed).
    resolved = {att: pid for att, pid, _, ok in b.kills.get(t.seq, []) if ok}
    for i, x in enumerate(ran):
        if i < len(t.limits) and x["memory_max"] != t.limits[i]:
            st.bad("record", "%s attempt %d: memory_max %s, expected %s" %
                   (where, x["attempt"], x["memory_max"], t.limits[i]))
        if x["outcome"] in ("oom", "subprocess_oom") and x["oom_kills"] < 1:
            st.bad("record", "%s attempt %d: %s with oom_kills 0" % (where, x["attempt"],
                                                                    x["outcome"]))
        if x["outcome"] in ("signal", "exit", "timeout") and x["oom_kills"]:
            st.bad("record", "%s attempt %d: %s with oom_kills %d" %
                   (where, x["attempt"], x["outcome"], x["oom_kills"]))
        said = resolved.get(i + 1) if PIDNS else (pid_lines[i] if i < len(pid_lines) else None)
        if t.kind != "spawn" and said is not None and x["pid"] != said:
            st.bad("record", "%s attempt %d: pid %s, the task said %d" %
                   (where, x["attempt"], x["pid"], said))
    if t.kind == "forkbomb" and o == "ok" and not r["pids_limit_hit"]:
        st.bad("record", "%s: fork bomb under --pids %d without pids_limit_hit" % (where, b.pids))
    if o in ("oom", "subprocess_oom") and not r["own_limit_hit"]:
        st.bad("record", "%s: %s without own_limit_hit" % (where, o))
    # output
    rdir = os.path.join(b.results, str(t.seq))
    if o == "cancelled":
        if os.path.exists(rdir):
            st.bad("output", "%s: cancelled but has %s" % (where, rdir))
        return sum(st.mismatch.values()) != nbad
    out = read_file(os.path.join(rdir, "stdout"))
    errb = read_file(os.path.join(rdir, "stderr"))
    oc = read_file(os.path.join(rdir, "outcome"))
    if out is None or errb is None or oc is None:
        st.bad("output", "%s: --results files missing in %s" % (where, rdir))
        return True
    try:
        ocj = json.loads(oc)
        if (ocj["outcome"], ocj["attempt"], ocj["status"]) != (o, r["attempt"], status):
            st.bad("record", "%s: results outcome file %s differs from the report" % (where, oc))
    except (ValueError, KeyError):
        st.bad("record", "%s: bad results outcome file %r" % (where, oc[:200]))
    if r["stdout_bytes"] != len(out) or r["stderr_bytes"] != len(errb):
        st.bad("output", "%s: record says %d/%d bytes, results have %d/%d" %
               (where, r["stdout_bytes"], r["stderr_bytes"], len(out), len(errb)))
    want, exact = t.expected_stdout(o, max(r["attempt"], 1))
    if t.kind == "forkbomb":
        m = re.fullmatch(rb"task \d+\nfailed (\d+)\n", out)
        if o == "ok" and (not m or not (t.n - b.pids + 1 <= int(m.group(1)) <= t.n)):
            st.bad("output", "%s: fork bomb of %d under --pids %d printed %r" %
                   (where, t.n, b.pids, out[:80]))
        elif not out.startswith(t.header[:len(out)]):
            st.bad("output", "%s: stdout %r" % (where, out[:80]))
    elif exact:
        if out != want:
            st.bad("output", "%s: stdout %d bytes %r, expected %d bytes %r; record: %s" %
                   (where, len(out), out[:60], len(want), want[:60], brief(rs)))
    elif not want.startswith(out):
        st.bad("output", "%s: stdout %d bytes %r is not a prefix of the expected %r" %
               (where, len(out), out[:60], want[:60]))
    want_err = pattern(t.write) if t.kind == "bigout" and t.fd == 2 else b""
    if o in HALTED or o in ("signal", "timeout"):
        if not want_err.startswith(errb):
            st.bad("output", "%s: stderr %d bytes is not a prefix of the expected" %
                   (where, len(errb)))
    elif errb != want_err:
        st.bad("output", "%s: stderr %d bytes %r, expected %d bytes" %
               (where, len(errb), errb[:80], len(want_err)))
    return sum(st.mismatch.values()) != nbad


# ---------------------------------------------------------------- kill corral

def kill_corral(host, args, rng, i, root, st):
    d = os.path.join(root, "k%04d" % i)
    side = os.path.join(d, "side")
    os.makedirs(side)
    P = host.payload
    scenario = rng.choice(args.kill_scenarios.split(","))
    tag = "soak%dk%dy" % (os.getpid(), i)
    n = rng.randint(150, 300) if scenario == "cleanup" else rng.randint(8, 40)
    lines = []
    for s in range(1, n + 1):
        if scenario in ("cleanup", "end"):
            kind = rng.choice(["short", "short", "daemon-exit", "tree-exit"])
        elif scenario == "retry":
            kind = rng.choice(["oom", "oom", "sleep", "daemon"])
        else:
            kind = rng.choice(["sleep", "tree", "daemon", "forkbomb", "short", "oom"])
        sh = {
            "sleep": "exec %s sleep 600" % P,
            "short": "exec %s sleep-exit 0.01 0" % P,
            "tree": "exec %s pid-tree 3" % P,
            "tree-exit": "%s pid-tree 2 & sleep 0.05; exit 0" % P,
            "daemon": "%s daemon %s/%d.daemon 600; exec %s sleep 600" % (P, side, s, P),
            "daemon-exit": "%s daemon %s/%d.daemon 600; exit 0" % (P, side, s),
            "forkbomb": "exec %s forkbomb 20" % P,
            "oom": "exec %s alloc 400" % P,
        }[kind]
        lines.append("echo $$ >> %s/%d.pids; %s" % (side, s, sh))
    argv = [host.bin, "run", "-j", str(rng.choice([2, 4, 8])), "-m", "32M", "--halt", "never",
            "--retries", "6", "--memory-growth", "1.3", "--report", os.path.join(d, "report")]
    env = dict(os.environ, SOAK_TAG=tag)
    delay = {"spawn": rng.uniform(0, 0.05), "steady": rng.uniform(0.1, 1.0),
             "cleanup": rng.uniform(0.05, 0.6), "retry": rng.uniform(0.05, 0.8),
             "stale": rng.uniform(0.2, 0.8), "end": 0}[scenario] * host.scale
    with open(os.path.join(d, "lines"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if scenario == "end":
        # While corral tears down at the end: time the same batch once, then
        # kill the second run near that time.
        with open(os.path.join(d, "lines"), "rb") as stdin:
            t0 = time.monotonic()
            subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=dict(os.environ, SOAK_TAG=tag + "p"),
                           timeout=120 * host.scale)
            delay = (time.monotonic() - t0) * rng.uniform(0.85, 1.02)
        if tagged_procs(tag + "p"):
            st.bad("leak", "iteration %d (end): the unkilled run left processes" % i)
            kill_tagged(tag + "p")
    with open(os.path.join(d, "lines"), "rb") as stdin:
        p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
    time.sleep(delay)
    wd = None
    if scenario == "stale":
        # Take the watchdog first: then nothing cleans up but the next start.
        for pid in tagged_procs(tag):
            try:
                with open("/proc/%d/comm" % pid) as f:
                    comm = f.read().strip()
                with open("/proc/%d/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if comm == "corral-watchdog" and ppid == p.pid:
                wd = pid
                signal_tagged(pid, tag_bytes(tag), signal.SIGKILL)
    p.kill()
    t_kill = time.monotonic()
    p.wait()
    st.kc["runs"] += 1
    st.kc["scenario " + scenario] += 1
    if p.returncode != -signal.SIGKILL:
        st.kc["ended before the kill"] += 1
    if scenario == "stale" and wd is None:
        st.kc["stale: no watchdog yet"] += 1

    def state():
        return tagged_procs(tag), host.batch_cgroups(p.pid)

    if scenario == "stale" and wd is not None:
        time.sleep(1.0 * host.scale)
        procs, cgs = state()
        if cgs:
            st.kc["stale: batch left as expected"] += 1
            st.kc["stale: processes left"] += len(procs)
        # The next start must sweep it (its owner is gone).
        rc, t2 = run_small(host, root, "%s-next" % tag, i)
        procs2, cgs2 = state()
        if procs2 or cgs2:
            st.kc["stale: NOT removed by the next start"] += 1
            st.bad("kill-corral", "iteration %d (stale): after the next start: %d processes, "
                   "cgroups %s" % (i, len(procs2), cgs2))
            for pid in procs2[:10]:
                log("    " + describe(pid))
            st.leaked_procs += len(procs2)
            st.leaked_cgroups += len(cgs2)
            kill_tagged(tag)
            for c in cgs2:
                remove_cgroup_tree(c)
        elif cgs or procs:
            st.kc["stale: removed by the next start"] += 1
        shutil.rmtree(d, ignore_errors=True)
        return
    # The watchdog must clean up within 1 s.
    clean_at = None
    limit = 1.0 * host.scale
    while True:
        procs, cgs = state()
        el = time.monotonic() - t_kill
        if not procs and not cgs:
            clean_at = el
            break
        if el > 10 * host.scale:
            break
        time.sleep(0.01)
    if clean_at is not None:
        st.kc_clean_ms.append(clean_at * 1000)
    if clean_at is None or clean_at > limit:
        late = clean_at is not None
        # An empty batch cgroup killed between its mkdir and the watchdog's
        # start is left for the next start's sweep (design section 3).
        empty_only = not procs and all(not any(e.is_dir() for e in os.scandir(c))
                                       for c in cgs if os.path.isdir(c))
        if not late:
            rc, t2 = run_small(host, root, "%s-next" % tag, i)
            procs2, cgs2 = state()
            if not procs2 and not cgs2 and empty_only:
                # (spawn: killed between the batch's mkdir and the watchdog's start)
                st.kc["%s: empty batch left, swept by the next start" % scenario] += 1
                shutil.rmtree(d, ignore_errors=True)
                return
        what = "late (clean after %.2fs)" % clean_at if late else "NOT clean after 10 s"
        st.kc["late" if late else "leaked"] += 1
        st.bad("kill-corral", "iteration %d (%s, killed %.3fs in): %s: %d processes, cgroups %s" %
               (i, scenario, delay, what, len(procs), cgs))
        for pid in procs[:10]:
            log("    " + describe(pid))
        if not late:
            st.leaked_procs += len(procs)
            st.leaked_cgroups += len(cgs)
            kill_tagged(tag)
            for c in host.batch_cgroups(p.pid):
                remove_cgroup_tree(c)
    else:
        st.kc["clean within %g s" % limit] += 1
        # Start again: nothing stale may be there, nor left by this one.
        rc, t2 = run_small(host, root, "%s-next" % tag, i)
        procs2, cgs2 = state()
        if rc != 0 or procs2 or cgs2:
            st.bad("kill-corral", "iteration %d: the next corral exited %s; %d processes, "
                   "cgroups %s" % (i, rc, len(procs2), cgs2))
    shutil.rmtree(d, ignore_errors=True)


def run_small(host, root, tag, i):
    """A short batch after a killed corral: its start sweeps stale batches."""
    env = dict(os.environ, SOAK_TAG=tag)
    t0 = time.monotonic()
    p = subprocess.run([host.bin, "run", "-m", "32M", "-q", "--", host.payload, "exit", ":::",
                        "0", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                       timeout=60 * host.scale)
    left = tagged_procs(tag)
    if left:
        kill_tagged(tag)
    return (p.returncode if not left else -1), time.monotonic() - t0


# ---------------------------------------------------------------- main

args_keep = False


def print_figures(host, st, args, elapsed):
    log("")
    log("corral soak: %s host (cgroup %s), seed %d, %.0f s" %
        ("VM" if host.scale > 1 else "this", host.mode, args.seed, elapsed))
    if args.tasks:
        log("  tasks run        %d in %d batches (%d attempts)" % (st.tasks, st.batches,
                                                                 st.attempts))
        log("  external kills   %d delivered; %d outcomes accepted as either (races)" %
            (st.kills_sent, st.ambiguous))
        log("  daemons tracked  %d" % st.daemons)
        log("  not read         %d (input after an ordered/now halt: no task, no record)"
            % st.unread)
        cols = [o for o in OUTCOMES if any(st.matrix[r][o] for r in st.matrix)]
        w = max([len(r) for r in st.matrix] + [10])
        log("")
        log("  confusion matrix: induced cause -> expected final outcome (rows) x observed (columns)")
        cw = [max(len(c), 5) + 1 for c in cols]
        log("  " + " " * w + "".join(c.rjust(n) for c, n in zip(cols, cw)))
        for r in sorted(st.matrix):
            log("  " + r.ljust(w) + "".join(str(st.matrix[r][c] or ".").rjust(n)
                                            for c, n in zip(cols, cw)))
        log("")
    if args.kill_corral:
        log("  kill-corral      %d runs: %s" % (st.kc["runs"], ", ".join(
            "%s %d" % (k, v) for k, v in sorted(st.kc.items()) if k != "runs")))
        if st.kc_clean_ms:
            ms = sorted(st.kc_clean_ms)
            log("                   time to clean after the SIGKILL: median %.0f ms, max %.0f ms"
                % (ms[len(ms) // 2], ms[-1]))
    nm = sum(st.mismatch.values())
    log("  mismatches       %d %s" % (nm, dict(st.mismatch) if nm else ""))
    log("  tasks mismatched %d" % st.mismatch_tasks)
    log("  hangs            %d" % st.hangs)
    log("  leaked processes %d" % st.leaked_procs)
    log("  leaked cgroups   %d" % st.leaked_cgroups)
    if st.details:
        log("")
        log("  first mismatches:")
        for d in st.details[:30]:
            log("    " + d)
    if st.problems:
        log("  other problems   %s" % dict(st.problems))
    ok = st.total() == 0 and st.hangs == 0 and st.leaked_procs == 0 and st.leaked_cgroups == 0
    if not ok:
        log("  replay           scripts/soak.sh --seed %d (same --tasks/--kill-corral)" % args.seed)
    log("RESULT: %s" % ("PASS" if ok else "FAIL"))
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump({"mode": host.mode, "seed": args.seed, "tasks": st.tasks,
                       "batches": st.batches, "attempts": st.attempts,
                       "mismatches": nm, "mismatch_kinds": dict(st.mismatch),
                       "hangs": st.hangs, "leaked_processes": st.leaked_procs,
                       "leaked_cgroups": st.leaked_cgroups, "kill_corral": dict(st.kc),
                       "matrix": {r: dict(c) for r, c in st.matrix.items()},
                       "elapsed": elapsed}, f, indent=1)
    return ok


def main():
    global args_keep
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.path.join(os.path.dirname(here), "build")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=300, help="tasks in all (0: no soak)")
    ap.add_argument("--kill-corral", type=int, default=0, metavar="N",
                    help="SIGKILL corral in N batches")
    ap.add_argument("--kill-scenarios", default="spawn,steady,cleanup,retry,stale,end",
                    help="where --kill-corral kills corral (default: all of them)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=0, help="tasks per batch (default random)")
    ap.add_argument("--corral", default=os.environ.get("CORRAL_BIN", os.path.join(build, "corral")))
    ap.add_argument("--payload", default=os.environ.get(
        "CORRAL_PAYLOAD", os.path.join(build, "tests", "corral-payload")))
    ap.add_argument("--scale", type=float, default=0, help="time scale (default: 1, 8 under TCG)")
    ap.add_argument("--workdir", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--keep", action="store_true", help="keep every batch directory")
    ap.add_argument("--summary", help="write the figures as JSON to this file")
    ap.add_argument("--max-seconds", type=float, default=0,
                    help="stop starting batches after this long")
    args = ap.parse_args()
    args_keep = args.keep
    if os.geteuid() != 0:
        sys.exit("soak: needs root (task cgroups)")
    for f in (args.corral, args.payload):
        if not os.access(f, os.X_OK):
            sys.exit("soak: %s is not executable (build first, or set CORRAL_BIN/CORRAL_PAYLOAD)"
                     % f)
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    host = Host(args)
    rng = random.Random(args.seed)
    root = os.path.join(args.workdir, "corral-soak-%d" % os.getpid())
    os.makedirs(root)
    log("soak: corral %s, payload %s, cgroup mode %s, time scale %g, seed %d, work dir %s" %
        (args.corral, args.payload, host.mode, host.scale, args.seed, root))
    st = Stats()
    t0 = time.monotonic()
    bno = 0
    done = 0
    try:
        while done < args.tasks:
            if args.max_seconds and time.monotonic() - t0 > args.max_seconds:
                log("soak: --max-seconds reached")
                break
            bno += 1
            n = args.batch_size or rng.randint(4, 40 if host.scale == 1 else 16)
            n = min(n, args.tasks - done)
            bseed = rng.getrandbits(32)
            b = make_batch(host, args, random.Random(bseed), bno, n, root)
            b.seed = bseed
            run_batch(b, st, args)
            done += n
            log("batch %4d seed %10d: %2d tasks -j%d %-7s retries %d%s: exit %3s in %5.1fs "
                "(total %d tasks, %d mismatches)" %
                (bno, bseed, n, b.jobs, b.halt, b.retries, " -k" if b.keep_order else "",
                 b.rc, b.elapsed, done, sum(st.mismatch.values())))
        for i in range(1, args.kill_corral + 1):
            kill_corral(host, args, rng, i, root, st)
            if i % 10 == 0 or i == args.kill_corral:
                log("kill-corral %d/%d: %s" % (i, args.kill_corral, dict(st.kc)))
    finally:
        if not args.keep and not st.details:
            shutil.rmtree(root, ignore_errors=True)
    ok = print_figures(host, st, args, time.monotonic() - t0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
