"""clitest - shared helpers of the CLI tests (tests/cli/test_*.py).

The tests drive the built `corral` binary ($CORRAL_BIN) with the workloads of
`corral-payload` ($CORRAL_PAYLOAD) and /bin/sh; never python3 inside a task
(python starts in seconds in the TCG VM).

They need per-task memory cgroups (`corral check` exit 0: root, a delegated
cgroup, or an unprivileged user whose systemd user manager gives corral a
delegated scope): otherwise every test module's setUpModule() prints
"SKIPPED: <why>" and exits 77 (ctest's skip code), unless CORRAL_NO_SKIP=1,
which makes it a failure instead. Tests that need root themselves (--user,
the namespaces of the default sandbox, private parent cgroups) are skipped
with that reason when not root (the unprivileged systemd lane).

Every corral started through this module is remembered; CliTest.tearDown()
checks that none of them left a batch cgroup (corral-<pid>-*) behind.
"""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("CORRAL_BIN", "")
PAYLOAD = os.environ.get("CORRAL_PAYLOAD", "")
SRC = os.environ.get("CORRAL_SRC", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

OUTCOMES = ("ok", "exit", "oom", "oom_outside", "subprocess_oom", "timeout", "signal",
            "spawn_error", "cancelled", "aborted", "lost")
FAILURES = set(OUTCOMES) - {"ok", "cancelled", "aborted"}

CGROOT = "/sys/fs/cgroup"


def _time_scale():
    """How much slower than a normal host we are: the VM lane runs qemu TCG."""
    env = os.environ.get("CORRAL_TEST_TIME_SCALE")
    if env:
        return float(env)
    try:
        with open("/proc/cpuinfo") as f:
            if "QEMU TCG" in f.read():
                return 10.0
    except OSError:
        pass
    return 1.0


SCALE = _time_scale()


def scaled(seconds):
    return seconds * SCALE


# ---------------------------------------------------------------- the host

CHECK = None  # corral check --json, parsed
MODE = None   # "v2", "hybrid", "v1"
V2 = False
PROVIDER = None  # where corral gets its task cgroups here: "own", "systemd", ...
ROOT = os.geteuid() == 0


def needs_root(why):
    """Skip a test (or class) unless we are root."""
    return unittest.skipUnless(ROOT, "needs root: " + why)
_SKIP_REASON = None
_checked = False


def _skip_reason():
    if not BIN or not os.access(BIN, os.X_OK):
        return "CORRAL_BIN is not set or not executable (%r)" % BIN
    if not PAYLOAD or not os.access(PAYLOAD, os.X_OK):
        return "CORRAL_PAYLOAD is not set or not executable (%r)" % PAYLOAD
    p = subprocess.run([BIN, "check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        lines = [l.strip() for l in p.stdout.decode(errors="replace").splitlines() if l.strip()]
        return "`corral check` exited %d: %s" % (p.returncode, lines[-1] if lines else "")
    return None


def setUpModule():
    """Every test module: `from clitest import setUpModule`."""
    global CHECK, MODE, V2, PROVIDER, _SKIP_REASON, _checked
    if not _checked:
        _checked = True
        _SKIP_REASON = _skip_reason()
        if _SKIP_REASON is None:
            CHECK = json.loads(subprocess.run([BIN, "check", "--json"], stdout=subprocess.PIPE,
                                              check=True).stdout)
            MODE = CHECK["mode"]
            V2 = MODE == "v2"
            PROVIDER = CHECK["provider"]["name"]
    if _SKIP_REASON is not None:
        if os.environ.get("CORRAL_NO_SKIP") == "1":
            raise RuntimeError("CORRAL_NO_SKIP=1 but the tests cannot run: " + _SKIP_REASON)
        print("SKIPPED: " + _SKIP_REASON, flush=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # SystemExit is not an Exception: it ends the unittest run with 77.
        sys.exit(77)


def own_cgroups():
    """{controller-or-'': path} of this process, from /proc/self/cgroup."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if ctrls == "":
                out[""] = path
            for c in ctrls.split(","):
                if c:
                    out[c] = path
    return out


def own_memory_dir():
    """The directory of our own memory cgroup (v1) or own cgroup (v2)."""
    cg = own_cgroups()
    if V2:
        return os.path.normpath(CGROOT + cg[""])
    return os.path.normpath(CGROOT + "/memory" + cg["memory"])


def cgroup_search_dirs():
    """Where batch cgroups of our corrals may appear."""
    cg = own_cgroups()
    dirs = [own_memory_dir()]
    if not V2:
        if "pids" in cg:
            dirs.append(os.path.normpath(CGROOT + "/pids" + cg["pids"]))
        dirs.append(CGROOT + "/pids")
    else:
        dirs.append(CGROOT)
    out = []
    for d in dirs:
        if d not in out and os.path.isdir(d):
            out.append(d)
    return out


def leftover_cgroups(pids, scopes=True):
    """Batch cgroups named after any of pids, below our cgroups (and the
    private clitest-* parents the tests create there); on v2 anywhere, and
    the transient scopes corral-<pid>-*.scope of the systemd provider too.
    scopes=False: not those scopes but what is in them. corral removes its
    batch cgroups before it exits; a scope is its user manager's, removed
    once the manager has seen it empty, a little later: check such a scope
    with wait_until()."""
    prefixes = tuple("corral-%d-" % p for p in pids)
    found = []
    if V2:
        for root, dirs, _ in os.walk(CGROOT):
            keep = []
            for d in dirs:
                if not d.startswith(prefixes):
                    keep.append(d)
                elif not scopes and d.endswith(".scope"):
                    keep.append(d)
                else:
                    found.append(os.path.join(root, d))
            dirs[:] = keep
        return found
    todo = [(d, 0) for d in cgroup_search_dirs()]
    while todo:
        d, depth = todo.pop()
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            path = os.path.join(d, n)
            if n.startswith(prefixes):
                found.append(path)
            elif n.startswith("clitest-") and depth < 2 and os.path.isdir(path):
                todo.append((path, depth + 1))
    return found


def _status(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
    except OSError:
        return None


def host_pid(ns_pid, ancestor, timeout=5.0):
    """Our pid of the process that calls itself ns_pid (what a task prints as
    its getpid()): as root, corral's tasks live in a PID namespace of their
    own, where pids are small numbers. Found among the descendants of
    ancestor (the corral process); ns_pid itself when there is no namespace."""
    deadline = time.monotonic() + timeout
    while True:
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            st = _status(int(d))
            if not st or "NSpid" not in st:
                continue
            ids = [int(x) for x in st["NSpid"].split()]
            if ids[-1] != ns_pid:
                continue
            p, hops = int(d), 0
            while p > 1 and hops < 64:
                s2 = _status(p)
                if not s2:
                    break
                p, hops = int(s2["PPid"]), hops + 1
                if p == ancestor:
                    return int(d)
        if time.monotonic() > deadline:
            raise AssertionError("no process calls itself %d below pid %d" % (ns_pid, ancestor))
        time.sleep(0.01)


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def vm_hwm_kib(pid):
    """Peak RSS (KiB) of pid's current memory map, 0 if gone. Unlike the
    ru_maxrss of a child of ours, it does not include the memory of the
    python process it was forked from (which counts until its exec)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_until(pred, timeout, step=0.02):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return pred()
        time.sleep(step)


# ---------------------------------------------------------------- running corral

STARTED = []  # pids of every corral started by the tests


class Result:
    def __init__(self, rc, out, err, pid, elapsed, maxrss_kib=None):
        self.rc = rc
        self.out = out
        self.err = err
        self.pid = pid
        self.elapsed = elapsed
        self.maxrss_kib = maxrss_kib

    @property
    def err_lines(self):
        return self.err.decode(errors="replace").splitlines()

    def __repr__(self):
        return "Result(rc=%r, out=%r, err=%r)" % (self.rc, self.out[:400], self.err[:800])


def spawn(args, **kw):
    """Popen [BIN] + args; remembers the pid."""
    p = subprocess.Popen([BIN] + list(args), **kw)
    STARTED.append(p.pid)
    return p


def corral(*args, input=None, stdin=None, timeout=None, env=None, cwd=None,
           stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=None):
    """Run corral to its end; returns a Result (rc, out, err bytes)."""
    if timeout is None:
        timeout = scaled(60)
    if input is not None:
        stdin = subprocess.PIPE
    elif stdin is None:
        stdin = subprocess.DEVNULL
    t0 = time.monotonic()
    p = spawn(args, stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd,
              preexec_fn=preexec_fn)
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("corral %r did not end within %gs; stderr: %r" % (args, timeout, err))
    return Result(p.returncode, out or b"", err or b"", p.pid, time.monotonic() - t0)


# ---------------------------------------------------------------- the report

RECORD_KEYS = {
    "seq": int, "attempt": int, "final": bool, "outcome": str, "status": (int, type(None)),
    "exit_code": (int, type(None)), "signal": (int, type(None)), "pid": (int, type(None)),
    "command": (list, type(None)), "memory_max": (int, type(None)),
    "memory_peak": (int, type(None)), "oom_kills": int, "own_limit_hit": bool,
    "pids_limit_hit": bool, "seccomp_kill": bool, "start_time": (int, float),
    "wall_time": (int, float), "user_time": (int, float), "system_time": (int, float),
    "stdout_bytes": int, "stderr_bytes": int, "stdout_lost_bytes": int,
    "stderr_lost_bytes": int, "sentence": str,
}
# Keys a record has only when they are known (design §11; --timeline).
OPTIONAL_RECORD_KEYS = {
    "oom_victims": list, "oom_memcg": str, "memory_stall_some": (int, float),
    "memory_stall_full": (int, float), "memory_timeline": dict, "host": str,
}
# Keys a summary has only with workers (corral run --slurm / --workers).
OPTIONAL_SUMMARY_KEYS = {"workers": int, "workers_lost": int}
SUMMARY_KEYS = {
    "schema_version": int, "tasks": int, "attempts": int, "outcomes": dict,
    "verdict_seq": (int, type(None)), "verdict": (str, type(None)), "exit_code": int,
    "aborted": bool, "signal": (int, type(None)), "sentence": str, "provider": dict,
}


def _istype(v, t):
    # bool is an int in Python: keep them apart.
    ts = t if isinstance(t, tuple) else (t,)
    if isinstance(v, bool):
        return bool in ts
    return isinstance(v, ts)


def check_record(tc, rec):
    """The documented keys and types of one attempt record."""
    keys = set(RECORD_KEYS)
    if rec.get("outcome") == "spawn_error":
        keys.add("spawn_error")
    keys |= set(rec) & set(OPTIONAL_RECORD_KEYS)
    tc.assertEqual(set(rec), keys, rec)
    for k, t in RECORD_KEYS.items():
        tc.assertTrue(_istype(rec[k], t), "record key %s=%r is not %r" % (k, rec[k], t))
    for k, t in OPTIONAL_RECORD_KEYS.items():
        if k in rec:
            tc.assertTrue(_istype(rec[k], t), "record key %s=%r is not %r" % (k, rec[k], t))
    for v in rec.get("oom_victims", []):
        tc.assertGreater(v["pid"], 0)
        tc.assertIsInstance(v["comm"], str)
    if "memory_timeline" in rec:
        tl = rec["memory_timeline"]
        tc.assertEqual(len(tl["t"]), len(tl["current"]))
        tc.assertTrue(all(a < b for a, b in zip(tl["t"], tl["t"][1:])), tl["t"])
        tc.assertEqual(tl["current"][tl["peak_index"]], max(tl["current"]))
    tc.assertIn(rec["outcome"], OUTCOMES)
    tc.assertGreaterEqual(rec["seq"], 1)
    if rec["command"] is not None:
        for a in rec["command"]:
            tc.assertIsInstance(a, str)
    for k in ("memory_max", "memory_peak", "oom_kills", "stdout_bytes", "stderr_bytes"):
        if rec[k] is not None:
            tc.assertGreaterEqual(rec[k], 0)
    for k in ("wall_time", "user_time", "system_time"):
        tc.assertGreaterEqual(rec[k], 0)
    tc.assertGreater(rec["start_time"], 1e9)  # seconds since the epoch
    if rec["outcome"] == "cancelled":
        tc.assertEqual(rec["attempt"], 0)
        tc.assertIsNone(rec["pid"])
        tc.assertIsNone(rec["status"])
    else:
        tc.assertGreaterEqual(rec["attempt"], 1)
    if rec["outcome"] in ("cancelled", "aborted"):
        tc.assertIsNone(rec["status"])
    if rec["outcome"] == "spawn_error":
        se = rec["spawn_error"]
        tc.assertEqual(set(se), {"step", "errno", "message"})
        tc.assertIsInstance(se["step"], str)
        tc.assertIsInstance(se["errno"], int)
        tc.assertIsInstance(se["message"], str)
    tc.assertTrue(rec["sentence"].startswith("task %d " % rec["seq"]), rec["sentence"])


_SCHEMA_VALIDATOR = None


def schema_validator():
    """The JSON Schema of report lines (src/lib/report.schema.json), checked
    with Debian's python3-jsonschema (scripts/install-deps.sh test)."""
    global _SCHEMA_VALIDATOR
    if _SCHEMA_VALIDATOR is None:
        import jsonschema  # python3-jsonschema
        with open(os.path.join(SRC, "src", "lib", "report.schema.json")) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        _SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(schema)
    return _SCHEMA_VALIDATOR


def check_schema(tc, objs, where="report"):
    """Every line of a report validates against the schema."""
    v = schema_validator()
    for i, o in enumerate(objs):
        errs = sorted(v.iter_errors(o), key=lambda e: list(e.path))
        if errs:
            tc.fail("%s line %d does not follow src/lib/report.schema.json: %s at %s\n%r"
                    % (where, i + 1, errs[0].message, "/".join(map(str, errs[0].path)), o))


def read_report(tc, path, complete=True):
    """Parse a --report file: (records, summary). Checks every line against
    the schema, every record's keys and types and that the summary agrees
    with the final records."""
    with open(path, "rb") as f:
        data = f.read()
    tc.assertTrue(data == b"" or data.endswith(b"\n"), "report does not end with a newline")
    lines = data.split(b"\n")[:-1]
    objs = [json.loads(l) for l in lines]
    check_schema(tc, objs, path)
    if not complete:
        return objs, None
    tc.assertTrue(objs and "summary" in objs[-1], "no summary line at the end: %r" % data[-500:])
    tc.assertEqual(set(objs[-1]), {"summary"})
    summary = objs[-1]["summary"]
    records = objs[:-1]
    for r in records:
        tc.assertNotIn("summary", r)
        check_record(tc, r)
    tc.assertEqual(set(summary), set(SUMMARY_KEYS) | (set(summary) & set(OPTIONAL_SUMMARY_KEYS)),
                   summary)
    for k, t in list(SUMMARY_KEYS.items()) + list(OPTIONAL_SUMMARY_KEYS.items()):
        if k in summary:
            tc.assertTrue(_istype(summary[k], t),
                          "summary key %s=%r is not %r" % (k, summary[k], t))
    tc.assertEqual(set(summary["outcomes"]), set(OUTCOMES))
    finals = [r for r in records if r["final"]]
    tc.assertEqual(len(finals), summary["tasks"], "one final record per task")
    tc.assertEqual(sorted(r["seq"] for r in finals), list(range(1, summary["tasks"] + 1)))
    for o in OUTCOMES:
        tc.assertEqual(summary["outcomes"][o], sum(1 for r in finals if r["outcome"] == o),
                       "summary count of %s" % o)
    tc.assertEqual(summary["attempts"], sum(1 for r in records if r["attempt"] > 0))
    if summary["verdict_seq"] is None:
        tc.assertIsNone(summary["verdict"])
    else:
        v = [r for r in finals if r["seq"] == summary["verdict_seq"]][0]
        tc.assertEqual(summary["verdict"], v["outcome"])
        tc.assertIn(v["outcome"], FAILURES)
    return records, summary


def finals_by_seq(records):
    return {r["seq"]: r for r in records if r["final"]}


JOBLOG_HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"


def read_joblog(tc, path, hosts=False):
    """Parse a --joblog file into a list of dicts (one per task line). The
    Host column is ":" (this machine) unless hosts (workers: the node)."""
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "surrogateescape")
    tc.assertTrue(data.endswith("\n"))
    lines = data.split("\n")[:-1]
    tc.assertEqual(lines[0], JOBLOG_HEADER)
    rows = []
    for l in lines[1:]:
        f = l.split("\t")
        tc.assertEqual(len(f), 9, l)
        if not hosts:
            tc.assertEqual(f[1], ":")
        tc.assertEqual(f[4], "0")
        rows.append({"seq": int(f[0]), "host": f[1], "start": float(f[2]), "runtime": float(f[3]),
                     "send": int(f[4]), "receive": int(f[5]), "exitval": int(f[6]),
                     "signal": int(f[7]), "command": f[8]})
    return rows


# ---------------------------------------------------------------- helpers

def pattern(n):
    """The first n bytes of corral-payload's `write` pattern: byte k is
    'a' + (k % 65536) % 26."""
    block = bytes(ord("a") + i % 26 for i in range(65536))
    return (block * (n // 65536 + 1))[:n]


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


# A shell snippet that sets $d to the task's own memory cgroup directory
# (needs --no-sandbox: inside the cgroup namespace the path is "/").
def own_cg_dir_snippet():
    if V2:
        return "d=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)"
    return "d=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)"


class PrivateParent:
    """A private cgroup beneath our own memory cgroup (v1, plus nothing in
    pids: corral then uses its own pids cgroup) or our own cgroup (v2, with
    memory and pids enabled for its children). Removed on close()."""

    def __init__(self, memory_limit=None):
        cg = own_cgroups()
        self.name = "clitest-%d-%d" % (os.getpid(), int(time.monotonic() * 1000) % 100000)
        base = own_memory_dir()
        self.path = (cg[""] if V2 else cg["memory"]).rstrip("/") + "/" + self.name
        self.dir = os.path.join(base, self.name)
        if not os.access(base, os.W_OK):
            raise unittest.SkipTest("needs a writable cgroup of its own for a private parent "
                                    "(root, or a delegated cgroup); %s is not" % base)
        os.mkdir(self.dir)
        try:
            if V2:
                with open(os.path.join(self.dir, "cgroup.controllers")) as f:
                    ctrls = f.read().split()
                want = " ".join("+" + c for c in ("memory", "pids", "cpu") if c in ctrls)
                with open(os.path.join(self.dir, "cgroup.subtree_control"), "w") as f:
                    f.write(want)
            if memory_limit is not None:
                fn = "memory.max" if V2 else "memory.limit_in_bytes"
                with open(os.path.join(self.dir, fn), "w") as f:
                    f.write(str(memory_limit))
        except BaseException:
            self.close()
            raise

    def close(self):
        for _ in range(100):
            try:
                os.rmdir(self.dir)
                return
            except FileNotFoundError:
                return
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                time.sleep(0.05)
        os.rmdir(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class CliTest(unittest.TestCase):
    """Base class: a temp dir per test, and a check that no corral started
    during the test left a cgroup behind."""

    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="corral-cli-")
        self._started_before = len(STARTED)
        self._t0 = time.monotonic()

    def tearDown(self):
        if os.environ.get("CORRAL_TEST_TIMES") == "1":
            sys.stderr.write("[%.2fs] " % (time.monotonic() - self._t0))
        pids = STARTED[self._started_before:]
        try:
            left = wait_until(lambda: not leftover_cgroups(pids), scaled(2))
            if not left:
                self.fail("cgroups left behind: %r" % leftover_cgroups(pids))
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def write(self, name, data):
        p = self.path(name)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return p

    def read(self, name):
        with open(name if os.path.isabs(name) else self.path(name), "rb") as f:
            return f.read()

    def report(self, name="report.jsonl", complete=True):
        return read_report(self, self.path(name), complete)

    def assertOneErrorLine(self, res, *needles):
        """corral's own error: exit 125, exactly one stderr line naming the
        bad value, nothing on stdout."""
        self.assertEqual(res.rc, 125, res)
        lines = res.err_lines
        self.assertEqual(len(lines), 1, res)
        self.assertTrue(lines[0].startswith("corral: "), res)
        for n in needles:
            self.assertIn(n, lines[0])
        self.assertEqual(res.out, b"")
