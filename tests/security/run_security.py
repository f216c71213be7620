#!/usr/bin/env python3
"""run_security.py - the escape suite of issue 12: every probe of corral-probe
(tests/security/probe.c) run as a corral task with the default sandbox,
through `corral run` and `corral exec`, as root and as `--user nobody`, and a
table probe x mode -> BLOCKED / ESCAPED / N/A / ERROR.

    tests/security/run_security.py [--only P1,P2] [--modes run-root,...]
                                   [--expect blocked|escape] [--json FILE] [-v]

Exit status: 0 when every probe is BLOCKED or N/A; 1 when one ESCAPED or
ERRORed; 77 (SKIPPED) without root or a usable corral (a failure under
CORRAL_NO_SKIP=1). With --expect escape (or CORRAL_SECURITY_EXPECT=escape)
an ESCAPED does not fail the run: the table records what today's code lets
through; an ERROR still fails.

Set-up, all of it removed on every path:
  - a private parent cgroup beneath our own (v1: in the memory hierarchy and
    at the same path in the pids hierarchy; v2: with +memory +pids for its
    children) and its leaf <parent>/target (unlimited: where clone3 and the
    cgroup moves aim); corral gets --cgroup-parent. The probes write only
    inside it.
  - a temp dir (mode 0755) with a copy of corral-probe that `nobody` can run,
    and per probe a state dir (1777) for hand-shakes.
  - tiocsti: corral runs on a pty we own (its session's controlling terminal,
    raw mode); after the run the slave's input queue must not hold the
    probe's marker.
  - mount-propagation: a shared tmpfs of ours (corral's template namespace
    is made from the namespace we run in); once the task runs, we mount a
    cgroupfs below it (with the options the hierarchy already has: a cgroup2
    mount with other options would change nsdelegate for the whole host).
  - spawn-race-j2/-j4: the probe is task 1 of `corral run -j 2` (-j 4) with
    8000 (VM: 3000) `noop` siblings, racing them for up to 8 s (VM: 10 s;
    --race-seconds); once it printed its verdict corral gets SIGTERM.
  - warm-child: the probe is task 1 of `corral run -j 1` with a `noop` task
    after it, whose child corral makes ahead on v2 (it waits before its exec
    while the probe runs); N/A where none is made (v1, one CPU).
  - kill-corral: the probe starts a daemon, then kills corral's watchdog and
    corral; 2 s after corral ended, the daemon or a batch cgroup still there
    is ESCAPED. The daemon is found by its environment (the probe's state
    dir), not by the pid it wrote: that is its pid in the batch's PID
    namespace. We kill exactly the probes found so and every process left in
    our private parent, and remove it.

Environment: CORRAL_BIN, CORRAL_PROBE (ctest sets them), CORRAL_NO_SKIP,
CORRAL_SECURITY_EXPECT, CORRAL_TEST_TIME_SCALE (else 10 under qemu TCG).
"""
import argparse
import errno
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
CGROOT = "/sys/fs/cgroup"
MODES = ("run-root", "run-nobody", "exec-root", "exec-nobody")
TAGS = ("BLOCKED", "ESCAPED", "N/A", "ERROR")
STI_MARKER = b"#corral-tiocsti#"
SOCKET_PROFILE = "# run_security.py: the README's example, socket denied\n" \
                 "default allow\naction errno EPERM\n[deny]\nsocket\n"


def time_scale():
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


SCALE = time_scale()


def log(msg):
    sys.stderr.write("run_security: %s\n" % msg)
    sys.stderr.flush()


def skip(why):
    if os.environ.get("CORRAL_NO_SKIP") == "1":
        log("CORRAL_NO_SKIP=1 but the suite cannot run: " + why)
        sys.exit(1)
    print("SKIPPED: " + why, flush=True)
    sys.exit(77)


# ---------------------------------------------------------------- probes

class Probe:
    """name: the row; cmd: corral-probe's subcommand; kind: how it is run."""

    def __init__(self, name, cmd=None, kind="plain", modes=MODES, jobs=1, siblings=()):
        self.name = name
        self.cmd = cmd or name
        self.kind = kind
        self.modes = modes
        self.jobs = jobs
        self.siblings = siblings  # tasks after the probe (subcommands)


RUN_ONLY = ("run-root", "run-nobody")
PROBES = [
    Probe("spawn-race-j2", "spawn-race", "race", RUN_ONLY, jobs=2),
    Probe("spawn-race-j4", "spawn-race", "race", RUN_ONLY, jobs=4),
    Probe("open-tree-attr"),
    Probe("clone3-cgroup"),
    Probe("tiocsti", kind="pty"),
    Probe("tioclinux"),
    Probe("mount-propagation", kind="propagation"),
    Probe("io-uring"),
    Probe("io-uring-socket", kind="profile"),
    Probe("userfaultfd"),
    Probe("kill-corral", kind="kill"),
    Probe("user-env"),
    Probe("proc-corral"),
    Probe("proc-watchdog"),
    Probe("proc-spawner", jobs=2),
    Probe("warm-child", modes=RUN_ONLY, siblings=("noop",)),
    Probe("old-mount"),
    Probe("new-mount"),
    Probe("userns-mount"),
    Probe("cgroup-move"),
    Probe("limit-raise"),
    Probe("setns"),
    Probe("unknown-syscalls"),
]


class Cell:
    def __init__(self, tag, msg, secs=0.0, detail=""):
        self.tag = tag
        self.msg = msg
        self.secs = secs
        self.detail = detail


def parse_verdict(text):
    """The probe's last verdict line in text: (tag, message) or None."""
    found = None
    for line in text.replace("\r", "").splitlines():
        for t in TAGS:
            if line.startswith(t + ": "):
                found = (t, line[len(t) + 2:])
    return found


# ---------------------------------------------------------------- the host

def own_cgroups():
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


def mount_super_options(mountpoint):
    """The super options of the mount at mountpoint (/proc/self/mountinfo)."""
    opts = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            a, b = line.split(" - ", 1)
            if a.split()[4] == mountpoint:
                opts = b.split()[2]
    return opts


class Host:
    def __init__(self):
        self.v2 = not os.path.isdir(CGROOT + "/memory") or \
            not os.path.exists(CGROOT + "/memory/cgroup.procs")
        opts = mount_super_options(CGROOT) if self.v2 else None
        self.nsdelegate = bool(opts and "nsdelegate" in opts.split(","))
        self.mode = "v2" if self.v2 else "v1"
        self.kernel = os.uname().release
        self.pidns = os.readlink("/proc/self/ns/pid")

    def describe(self):
        s = "%s, kernel %s" % ("pure cgroup v2" if self.v2 else "cgroup v1 memory (hybrid)",
                               self.kernel)
        if self.v2:
            s += ", cgroup2 %s nsdelegate" % ("with" if self.nsdelegate else "without")
        return s


def cg_join(base, name):
    """A cgroup path as /proc/self/cgroup writes them (normpath keeps "//")."""
    return "/" + "/".join(p for p in (base.strip("/"), name) if p)


class PrivateParent:
    """A cgroup of ours for corral's --cgroup-parent (see the module doc)."""

    def __init__(self, host):
        cg = own_cgroups()
        self.host = host
        self.name = "corral-sectest-%d" % os.getpid()
        self.made = []  # directories we created, in creation order
        if host.v2:
            self.path = cg_join(cg[""], self.name)
            self.roots = [CGROOT]
        else:
            self.path = cg_join(cg["memory"], self.name)
            self.roots = [CGROOT + "/memory"]
            if os.path.isdir(CGROOT + "/pids") and "pids" in cg:
                self.roots.append(CGROOT + "/pids")
        try:
            for root in self.roots:
                self._mkdirs(root, self.path)
                if host.v2:
                    d = root + self.path
                    with open(d + "/cgroup.controllers") as f:
                        have = f.read().split()
                    want = " ".join("+" + c for c in ("memory", "pids") if c in have)
                    with open(d + "/cgroup.subtree_control", "w") as f:
                        f.write(want)
                self._mkdirs(root, self.path + "/target")
        except BaseException:
            self.close()
            raise

    def _mkdirs(self, root, path):
        cur = root
        for part in path.strip("/").split("/"):
            cur = cur + "/" + part
            try:
                os.mkdir(cur)
                self.made.append(cur)
            except FileExistsError:
                pass

    def dirs(self):
        return [r + self.path for r in self.roots]

    def batch_dirs(self, corral_pid=None):
        """Batch cgroups under the parent (of corral_pid, or any)."""
        pre = "corral-%d-" % corral_pid if corral_pid else "corral-"
        out = []
        for d in self.dirs():
            try:
                out += [os.path.join(d, n) for n in os.listdir(d) if n.startswith(pre)]
            except OSError:
                pass
        return out

    def empty_tree(self, top, keep=("target",), timeout=10.0):
        """Kill every process in the cgroups below top (ours: only our corrals
        and probes put them there) and remove those cgroups, deepest first;
        top and its children named in keep stay (emptied)."""
        end = time.monotonic() + timeout
        for n in keep:
            kill_cgroup(os.path.join(top, n))
        for dirpath, dirnames, _ in os.walk(top, topdown=False):
            for n in dirnames:
                d = os.path.join(dirpath, n)
                if dirpath == top and n in keep:
                    continue
                while True:
                    try:
                        os.rmdir(d)
                        break
                    except FileNotFoundError:
                        break
                    except OSError as e:
                        if e.errno != errno.EBUSY or time.monotonic() > end:
                            raise
                    kill_cgroup(d)
                    time.sleep(0.05)

    def close(self):
        errs = []
        for d in self.dirs():
            if os.path.isdir(d):
                try:
                    self.empty_tree(d, keep=())
                except OSError as e:
                    errs.append("%s: %s" % (d, e))
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                errs.append("%s: %s" % (d, e))
        self.made = []
        if errs:
            log("could not remove: " + "; ".join(errs))


def cgroup_pids(d):
    try:
        with open(d + "/cgroup.procs") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def kill_cgroup(d):
    for pid in cgroup_pids(d):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _proc_strings(pid, name):
    """/proc/PID/NAME split at NULs ([] when gone or unreadable)."""
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def cmdline(pid):
    return _proc_strings(pid, "cmdline")


def environ(pid):
    return _proc_strings(pid, "environ")


def probes_of(state):
    """The corral-probe processes (ours: their environment names state) that
    are alive, by their pids here. The pids a probe writes are those of the
    batch's PID namespace, which mean nothing (or another process) here."""
    tag = b"CORRAL_PROBE_STATE=" + state.encode()
    out = []
    for n in os.listdir("/proc"):
        if not n.isdigit():
            continue
        pid = int(n)
        argv = cmdline(pid)
        if argv and argv[0].endswith(b"corral-probe") and tag in environ(pid) and \
                pid_alive(pid):
            out.append(pid)
    return out


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


# ---------------------------------------------------------------- the suite

class Suite:
    def __init__(self, args):
        self.args = args
        self.bin = args.corral
        self.host = Host()
        self.tmp = tempfile.mkdtemp(prefix="corral-sec-")
        os.chmod(self.tmp, 0o755)
        self.probe = os.path.join(self.tmp, "corral-probe")
        shutil.copy2(args.probe, self.probe)
        os.chmod(self.probe, 0o755)
        self.profile = os.path.join(self.tmp, "socket.profile")
        with open(self.profile, "w") as f:
            f.write(SOCKET_PROFILE)
        self.parent = None
        self.baseline = subprocess.run([self.probe, "syscall-baseline"], check=True,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       text=True).stdout.split()
        # The highest syscall number corral's filters judge (newer ones must
        # get ENOSYS from the filter); 0 when corral check does not say.
        self.judged_max = 0
        try:
            chk = json.loads(subprocess.run([self.bin, "check", "--json"], stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL).stdout)
            self.judged_max = int(chk.get("sandbox", {}).get("seccomp_judged_max", 0))
        except (ValueError, TypeError):
            pass
        self.results = {}
        self.race_stats = []
        self.seq = 0

    def close(self):
        if self.parent:
            self.parent.close()
            self.parent = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -------------------------------------------------------- running corral

    def state_dir(self):
        self.seq += 1
        d = os.path.join(self.tmp, "s%d" % self.seq)
        os.mkdir(d)
        os.chmod(d, 0o1777)
        return d

    def env(self, state, extra=None):
        e = dict(os.environ)
        # A root login's environment: --user tasks must not inherit it.
        e.update(HOME="/root", USER="root", LOGNAME="root")
        e.update(CORRAL_PROBE_PARENT=self.parent.path, CORRAL_PROBE_STATE=state,
                 CORRAL_PROBE_PIDNS=self.host.pidns,
                 CORRAL_PROBE_SYSCALLS=" ".join(self.baseline),
                 CORRAL_PROBE_JUDGED_MAX=str(self.judged_max))
        e.pop("CORRAL_PROBE_TTY", None)
        e.pop("CORRAL_PROBE_MOUNT", None)
        if extra:
            e.update(extra)
        return e

    def argv(self, probe, mode, state, jobs=1, extra_opts=(), input_file=None):
        """sh records its own pid, which corral keeps at exec, so that the
        probe knows corral's pid exactly. With input_file, `run` reads its
        lines (each appended to corral-probe as the subcommand)."""
        verb, who = mode.split("-")
        opts = ["-m", "256M", "--cgroup-parent", self.parent.path] + list(extra_opts)
        if who == "nobody":
            opts += ["--user", "nobody"]
        if verb == "run" and input_file:
            # No --results: thousands of tasks would leave thousands of dirs.
            cmd = [self.bin, "run", "-j", str(jobs)] + opts + ["-a", input_file, "--", self.probe]
        elif verb == "run":
            cmd = [self.bin, "run", "-j", str(jobs), "--results", state + "/results"] + opts
            cmd += ["--", self.probe, "{}", ":::", probe.cmd] + list(probe.siblings)
        else:
            cmd = [self.bin, "exec"] + opts + ["--", self.probe, probe.cmd]
        return ["sh", "-c", 'export CORRAL_PROBE_CORRAL_PID=$$; exec "$@"', "sh"] + cmd

    def verdict_of(self, mode, state, rc, out, err, secs):
        """The probe's verdict: from --results (run) or corral's stdout (exec)."""
        text = out
        code = rc
        if mode.startswith("run-"):
            try:
                with open(state + "/results/1/stdout", errors="replace") as f:
                    text = f.read()
                with open(state + "/results/1/outcome") as f:
                    rec = json.load(f)
                code = rec.get("exit_code")
                if rec.get("outcome") == "spawn_error":
                    return Cell("ERROR", "spawn error: %s" % rec.get("sentence"), secs, err)
            except (OSError, ValueError):
                pass
        v = parse_verdict(text)
        if v is None:
            last = (err.strip().splitlines() or [""])[-1]
            return Cell("ERROR", "no verdict (corral exit %s): %s" % (rc, last), secs,
                        out + err)
        tag, msg = v
        want = {"BLOCKED": 0, "ESCAPED": 1, "ERROR": 2, "N/A": 77}[tag]
        if code is not None and code != want and tag != "ESCAPED":
            return Cell("ERROR", "%s but exit %s: %s" % (tag, code, msg), secs, out + err)
        return Cell(tag, msg, secs, out + err)

    def run_plain(self, probe, mode, extra_env=None, extra_opts=(), timeout=60):
        state = self.state_dir()
        argv = self.argv(probe, mode, state, 1, extra_opts)
        t0 = time.monotonic()
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env(state, extra_env),
                           timeout=timeout * SCALE, errors="replace")
        cell = self.verdict_of(mode, state, p.returncode, p.stdout, p.stderr,
                               time.monotonic() - t0)
        self.check_left(cell)
        return cell

    def check_left(self, cell):
        """No batch cgroup may outlive its corral: the watchdog or corral
        removes them (kill-corral judges this itself)."""
        end = time.monotonic() + 2 * SCALE
        while self.parent.batch_dirs() and time.monotonic() < end:
            time.sleep(0.05)
        left = self.parent.batch_dirs()
        if left:
            for d in self.parent.dirs():
                self.parent.empty_tree(d)
            if cell.tag != "ESCAPED":
                cell.tag = "ERROR"
                cell.msg = "batch cgroups left behind: %s (%s)" % (left, cell.msg)

    # -------------------------------------------------------- the probes

    def run_probe(self, probe, mode):
        kind = probe.kind
        if kind == "plain":
            return self.run_plain(probe, mode)
        if kind == "profile":
            return self.run_plain(probe, mode, extra_opts=["--seccomp", self.profile])
        if kind == "race":
            return self.run_race(probe, mode)
        if kind == "pty":
            return self.run_pty(probe, mode)
        if kind == "propagation":
            return self.run_propagation(probe, mode)
        if kind == "kill":
            return self.run_kill(probe, mode)
        raise ValueError(kind)

    def run_race(self, probe, mode):
        """Task 1 races thousands of `noop` siblings; corral prints its output
        (the only output of the batch) when it ends. The rest of the batch is
        of no use then: corral gets SIGTERM (it kills its tasks and removes
        its cgroups)."""
        vm = SCALE > 1
        n = self.args.race_siblings or (3000 if vm else 8000)
        secs = self.args.race_seconds or (10 if vm else 8)
        state = self.state_dir()
        input_file = state + "/input"
        with open(input_file, "w") as f:
            f.write("spawn-race\n" + "noop\n" * n)
        argv = self.argv(probe, mode, state, probe.jobs, (), input_file)
        env = self.env(state, {"CORRAL_PROBE_RACE_SECONDS": str(secs),
                               "CORRAL_PROBE_RACE_MIN": "10" if vm else "50"})
        t0 = time.monotonic()
        with open(state + "/stderr", "w+") as errf:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=errf, env=env)
            out = b""
            end = t0 + secs + 60 * SCALE
            while time.monotonic() < end:
                r, _, _ = select.select([p.stdout], [], [], 0.05)
                chunk = os.read(p.stdout.fileno(), 65536) if r else b""
                out += chunk
                if parse_verdict(out.decode(errors="replace")) or (r and not chunk):
                    break
            if p.poll() is None:
                p.terminate()
            try:
                rest, _ = p.communicate(timeout=60 * SCALE)
            except subprocess.TimeoutExpired:
                p.kill()
                rest, _ = p.communicate()
            errf.seek(0)
            err = errf.read()
        out = (out + rest).decode(errors="replace")
        cell = self.verdict_of("race", state, None, out, err, time.monotonic() - t0)
        self.check_left(cell)
        self.race_stats.append((probe.name, mode, cell.tag, cell.secs, cell.msg))
        return cell

    def run_pty(self, probe, mode):
        state = self.state_dir()
        argv = self.argv(probe, mode, state)
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            attrs = termios.tcgetattr(slave)
            attrs[3] &= ~termios.ECHO
            termios.tcsetattr(slave, termios.TCSANOW, attrs)

            def ctty():
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)

            t0 = time.monotonic()
            p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                 start_new_session=True, preexec_fn=ctty,
                                 env=self.env(state, {"CORRAL_PROBE_TTY": "1"}))
            out = b""
            end = time.monotonic() + 60 * SCALE
            while True:
                r, _, _ = select.select([master], [], [], 0.05)
                if r:
                    try:
                        out += os.read(master, 65536)
                    except OSError:
                        pass
                if p.poll() is not None and not r:
                    break
                if time.monotonic() > end:
                    p.kill()
                    p.wait()
                    break
            os.set_blocking(slave, False)
            try:
                queued = os.read(slave, 65536)
            except BlockingIOError:
                queued = b""
            text = out.decode(errors="replace")
            cell = self.verdict_of(mode, state, p.returncode, text, text,
                                   time.monotonic() - t0)
            if STI_MARKER[:1] in queued:
                cell.detail += "\ninput queue: %r" % queued
                if cell.tag != "ESCAPED":
                    cell.msg = "the terminal's input queue holds %r (probe: %s %s)" % (
                        queued, cell.tag, cell.msg)
                    cell.tag = "ESCAPED"
                else:
                    cell.msg += "; the driver found %r in the terminal's input queue" % queued
            elif cell.tag == "ESCAPED":
                cell.msg += " (but the driver's input queue is empty)"
        finally:
            os.close(master)
            os.close(slave)
        self.check_left(cell)
        return cell

    def run_propagation(self, probe, mode):
        state = self.state_dir()
        top = os.path.join(self.tmp, "prop%d" % self.seq)
        cg = os.path.join(top, "cg")
        os.mkdir(top)
        mounted = []

        def sh(*cmd):
            subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        try:
            # A shared mount of ours: corral's template namespace receives
            # what is mounted below it later (as a slave today).
            sh("mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "corral-sectest", top)
            mounted.append(top)
            sh("mount", "--make-shared", top)
            os.mkdir(cg)
            argv = self.argv(probe, mode, state)
            t0 = time.monotonic()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, errors="replace",
                                 env=self.env(state, {"CORRAL_PROBE_MOUNT": cg}))
            ready = os.path.join(state, "prop.ready")
            end = time.monotonic() + 30 * SCALE
            while not os.path.exists(ready) and p.poll() is None and time.monotonic() < end:
                time.sleep(0.01)
            if os.path.exists(ready):
                if self.host.v2:
                    opts = [o for o in mount_super_options(CGROOT).split(",")
                            if o not in ("rw", "ro", "seclabel")]
                    cmd = ["mount", "-t", "cgroup2"] + (["-o", ",".join(opts)] if opts else [])
                else:
                    opts = [o for o in mount_super_options(CGROOT + "/memory").split(",")
                            if o not in ("rw", "ro")]
                    cmd = ["mount", "-t", "cgroup", "-o", ",".join(opts)]
                try:
                    sh(*(cmd + ["corral-sectest", cg]))
                    mounted.append(cg)
                    with open(os.path.join(state, "prop.mounted"), "w"):
                        pass
                except subprocess.CalledProcessError as e:
                    p.terminate()
                    p.communicate(timeout=30 * SCALE)
                    return Cell("ERROR", "could not mount a cgroupfs at %s: %s" % (
                        cg, e.stdout.decode(errors="replace").strip()))
            try:
                out, err = p.communicate(timeout=60 * SCALE)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                raise
            cell = self.verdict_of(mode, state, p.returncode, out, err, time.monotonic() - t0)
        finally:
            for m in reversed(mounted):
                subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            shutil.rmtree(top, ignore_errors=True)
        self.check_left(cell)
        return cell

    def run_kill(self, probe, mode):
        state = self.state_dir()
        argv = self.argv(probe, mode, state)
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, errors="replace", env=self.env(state))
        try:
            out, err = p.communicate(timeout=60 * SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        time.sleep(2 * min(SCALE, 2))
        daemon = None
        try:
            with open(os.path.join(state, "daemon.pid")) as f:
                daemon = int(f.read())
        except (OSError, ValueError):
            pass
        try:
            with open(os.path.join(state, "kill.log")) as f:
                klog = f.read().strip().replace("\n", "; ")
        except OSError:
            klog = ""
        alive = probes_of(state)
        left = self.parent.batch_dirs(p.pid)
        cell = self.verdict_of(mode, state, p.returncode, out, err, time.monotonic() - t0)
        if alive or left:
            what = []
            if alive:
                what.append("daemon %s (the batch's pid) alive as pid %s" % (
                    daemon, ",".join(map(str, alive))))
            if left:
                what.append("%d batch cgroup(s) left" % len(left))
            cell = Cell("ESCAPED", "2 s after corral ended (%s): %s [%s]" % (
                "killed" if p.returncode == -signal.SIGKILL else "exit %s" % p.returncode,
                ", ".join(what), klog), cell.secs, cell.detail)
        elif daemon is None:
            cell = Cell("ERROR", "the probe started no daemon (%s)" % cell.msg, cell.secs,
                        cell.detail)
        elif cell.tag == "ESCAPED":
            # The kills went through, but nothing outlived corral.
            cell = Cell("BLOCKED", "kills went through [%s], but nothing outlived corral" %
                        klog, cell.secs, cell.detail)
        # Clean up exactly what this probe left: its daemon, then whatever is
        # in our private parent's batch cgroups.
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for d in left:
            kill_cgroup(d)
        for d in self.parent.dirs():
            self.parent.empty_tree(d)
        if not self.parent.batch_dirs():
            return cell
        cell.tag, cell.msg = "ERROR", "could not clean up: %s" % self.parent.batch_dirs()
        return cell

    # -------------------------------------------------------- the table

    def run(self):
        self.parent = PrivateParent(self.host)
        probes = [p for p in PROBES if not self.args.only or p.name in self.args.only
                  or p.cmd in self.args.only]
        modes = self.args.modes or MODES
        t_all = time.monotonic()
        for probe in probes:
            for mode in modes:
                if mode not in probe.modes:
                    continue
                try:
                    cell = self.run_probe(probe, mode)
                except subprocess.TimeoutExpired as e:
                    cell = Cell("ERROR", "timed out: %s" % e)
                log("%-18s %-12s %-8s %5.1fs  %s" % (probe.name, mode, cell.tag, cell.secs,
                                                      cell.msg))
                if self.args.verbose and cell.detail:
                    sys.stderr.write("".join("    | %s\n" % l
                                             for l in cell.detail.rstrip().splitlines()))
                self.results[(probe.name, mode)] = cell
        self.elapsed = time.monotonic() - t_all
        return probes, modes

    def table(self, probes, modes):
        w = max(len(p.name) for p in probes)
        lines = ["escape suite on %s (%s), %.0f s:" % (os.uname().nodename, self.host.describe(),
                                                      self.elapsed),
                 "  %-*s  %s" % (w, "probe", "  ".join("%-11s" % m for m in modes))]
        for p in probes:
            cells = []
            for m in modes:
                c = self.results.get((p.name, m))
                cells.append("%-11s" % (c.tag if c else "-"))
            lines.append("  %-*s  %s" % (w, p.name, "  ".join(cells)))
        return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corral", default=os.environ.get("CORRAL_BIN", SRC + "/build/corral"))
    ap.add_argument("--probe", default=os.environ.get("CORRAL_PROBE",
                                                      SRC + "/build/tests/corral-probe"))
    ap.add_argument("--only", type=lambda s: s.split(","), help="probes, comma-separated")
    ap.add_argument("--modes", type=lambda s: s.split(","), help="of " + ",".join(MODES))
    ap.add_argument("--expect", choices=("blocked", "escape"),
                    default=os.environ.get("CORRAL_SECURITY_EXPECT") or "blocked",
                    help="escape: print the table, fail only on ERROR")
    ap.add_argument("--race-siblings", type=int, help="noop tasks beside the spawn race")
    ap.add_argument("--race-seconds", type=float, help="the spawn race's budget")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("-v", "--verbose", action="store_true", help="every probe's output")
    args = ap.parse_args()
    for m in args.modes or ():
        if m not in MODES:
            ap.error("unknown mode %s" % m)

    if os.geteuid() != 0:
        skip("the escape suite needs root (cgroups, --user, mounts)")
    for what, path in (("corral", args.corral), ("corral-probe", args.probe)):
        if not os.access(path, os.X_OK):
            skip("%s not found at %s (build it, or pass --%s)" % (what, path,
                                                                  what.split("-")[-1]))
    c = subprocess.run([args.corral, "check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if c.returncode != 0:
        skip("`corral check` failed: %s" % c.stdout.decode(errors="replace").strip()[-300:])

    suite = Suite(args)
    try:
        probes, modes = suite.run()
    finally:
        t1 = time.monotonic()
        suite.close()
        log("clean-up %.1f s" % (time.monotonic() - t1))
    print(suite.table(probes, modes))
    for p, m, tag, secs, msg in suite.race_stats:
        print("  %s %s: %s in %.1f s: %s" % (p, m, tag, secs, msg))
    bad = [(k, c) for k, c in suite.results.items()
           if c.tag == "ERROR" or (c.tag == "ESCAPED" and args.expect == "blocked")]
    for (p, m), c in sorted(suite.results.items()):
        if c.tag in ("ESCAPED", "ERROR"):
            print("  %s %s %s: %s" % (c.tag, p, m, c.msg))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"host": suite.host.describe(), "kernel": suite.host.kernel,
                       "mode": suite.host.mode, "nsdelegate": suite.host.nsdelegate,
                       "seconds": suite.elapsed,
                       "results": [{"probe": p, "mode": m, "verdict": c.tag, "message": c.msg,
                                    "seconds": round(c.secs, 2)}
                                   for (p, m), c in suite.results.items()]}, f, indent=1)
    if bad:
        print("RESULT: FAILED (%d of %d: %s)" % (
            len(bad), len(suite.results),
            "ESCAPED or ERROR" if args.expect == "blocked" else "ERROR"))
        return 1
    print("RESULT: ok (%s)" % ("every probe BLOCKED or N/A" if args.expect == "blocked"
                               else "--expect escape: ESCAPED recorded, no ERROR"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
