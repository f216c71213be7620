#!/usr/bin/env python3
"""hygiene.py - resource hygiene of the `corral` command (issue "Reliability",
part 3). Python 3 standard library; run as root. The `valgrind` lane of
scripts/test.sh runs it.

1. valgrind memcheck (--leak-check=full --errors-for-leak-kinds=definite,
   indirect --track-fds=yes --trace-children=no) on build/corral over
   representative batches: ok, failing (ordered halt: cancelled/aborted),
   own OOM, subprocess OOM, retries with memory growth, timeouts, -k with
   output that spills to temp files, --results/--report/--joblog, stdin
   input, daemons and fork bombs to clean up, spawn errors, `corral exec`,
   SIGTERM and SIGPIPE mid-batch, and bad inputs (usage errors). Every
   process valgrind follows (corral and its watchdog, which is a fork that
   never execs) must report 0 errors, 0 bytes definitely/indirectly lost,
   and - for runs that end normally - no fd open at exit but 0, 1, 2.

   Debian 12's valgrind (3.19) does not know pidfd_open(2),
   pidfd_send_signal(2) nor seccomp(2). The first two are provided by
   tests/helpers/valgrind_shim.c (LD_PRELOAD; the pidfd comes from a helper
   thread of this script, outside valgrind, over SCM_RIGHTS). seccomp cannot
   be: the batches run with --no-sandbox (the sandbox code is covered by the
   sanitize lane and the integration tests).

2. fds: (a) no fd but 0, 1, 2 reaches a task (corral-payload fds), for run
   and exec, with and without the sandbox, with --report/--joblog/--results
   open, -k, --ungroup, input on stdin, -j 8, and an fd corral itself
   inherited without CLOEXEC; (b) corral's own fd count is flat over a long
   batch (--fd-tasks, default 5000, of mixed tasks: ok, failing, OOM,
   subprocess OOM, output spilled to temp files): the most fds it holds in
   the last fifth of the batch is not above the most in the first fifth,
   fds on cgroupfs aside: those of the task cgroups it keeps for reuse grow
   with its pool up to a bound (3 x jobs cgroups, 11 fds each), which they
   must never pass.

Prints what it checked and exits 1 on any failure.
"""
import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

FAILS = []


def log(*a):
    print(*a, flush=True)


def fail(msg):
    FAILS.append(msg)
    log("  FAIL: " + msg)


# ---------------------------------------------------------------- pidfd helper

def pidfd_server(path):
    """Serve pidfd_open(pid) to the shim in corral (under valgrind)."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(64)

    def loop():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                try:
                    data = c.recv(4)
                    if len(data) != 4:
                        continue
                    (pid,) = struct.unpack("i", data)
                    try:
                        fd = os.pidfd_open(pid)
                    except OSError as e:
                        c.sendall(struct.pack("i", e.errno))
                        continue
                    try:
                        socket.send_fds(c, [struct.pack("i", 0)], [fd])
                    finally:
                        os.close(fd)
                except OSError:
                    pass

    threading.Thread(target=loop, daemon=True).start()
    return srv


# ---------------------------------------------------------------- valgrind

def parse_vg_log(path):
    """(errors, definitely lost, indirectly lost, open fds at exit or None,
    fd lines)."""
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    errors = int(m.group(1)) if m else None
    d = re.search(r"definitely lost: ([\d,]+) bytes", text)
    i = re.search(r"indirectly lost: ([\d,]+) bytes", text)
    definite = int(d.group(1).replace(",", "")) if d else 0
    indirect = int(i.group(1).replace(",", "")) if i else 0
    fds = re.search(r"FILE DESCRIPTORS: (\d+) open(?: \((\d+) std\))? at exit", text)
    open_fds = int(fds.group(1)) if fds else None
    fd_lines = re.findall(r"Open (?:file descriptor|AF_UNIX socket) (\d+): ?(.*)", text)
    return errors, definite, indirect, open_fds, fd_lines, text


def valgrind_runs(a, work):
    P = a.payload
    shim = os.path.join(work, "valgrind_shim.so")
    src = os.path.join(a.src, "tests", "helpers", "valgrind_shim.c")
    subprocess.run(["gcc", "-O1", "-g", "-shared", "-fPIC", "-Wall", "-Werror", "-o", shim, src,
                    "-ldl"], check=True)
    sock = os.path.join(work, "pidfd.sock")
    pidfd_server(sock)
    vg = ["valgrind", "--error-exitcode=99", "--leak-check=full",
          "--errors-for-leak-kinds=definite,indirect", "--track-fds=yes",
          "--trace-children=no", "--child-silent-after-fork=no"]
    d = os.path.join(work, "vg")
    os.makedirs(d)
    env = dict(os.environ, LD_PRELOAD=shim, CORRAL_VG_PIDFD_SOCK=sock)
    rd = os.path.join(d, "results")
    daemon_pf = os.path.join(d, "daemon.pid")
    many = " ".join(["x"] * 40)
    R = [a.bin, "run", "--no-sandbox"]
    # (name, argv, stdin bytes or None, expected exit code, ends normally?, signal after s)
    cases = [
        ("ok", R + ["-j2", "-m", "64M", "--", P, "exit", ":::", "0", "0", "0"], None, 0, True),
        ("failing, ordered halt", R + ["-j3", "-m", "64M", "--", "sh", "-c",
                                        "exec %s sleep-exit {}" % P, ":::", "0.3 0", "0 3",
                                        "2 0", "5 0", "0.1 0"], None, 3, True),
        ("own OOM and subprocess OOM", R + ["-j2", "-m", "32M", "--halt", "never", "--"]
         + ["sh", "-c", "exec %s {}" % P, ":::", "alloc 100", "child-alloc 100", "exit 0"],
         None, 137, True),
        ("retries with memory growth", R + ["-m", "32M", "--retries", "2", "--memory-growth",
                                             "3", "--", P, "alloc", ":::", "60"], None, 0, True),
        ("timeout, kill-after", R + ["-t", "0.5s", "--kill-after", "0.2s", "--", "sh", "-c",
                                     "trap '' TERM; exec %s sleep 5" % P, ":::", "x"],
         None, 124, True),
        ("-k, spilled output, report, joblog, results",
         R + ["-k", "-j4", "--report", os.path.join(d, "r.jsonl"), "--joblog",
              os.path.join(d, "joblog"), "--results", rd, "--", P, "write", ":::",
              "100", "300000", "20", "70000", "0"], None, 0, True),
        ("stdin input, shell lines", R + ["-j2"],
         b"echo one\nexit 4\n%s write 50000 2\n" % P.encode(), 4, True),
        ("daemons and a fork bomb to clean up", R + ["-j2", "--pids", "16", "--", "sh", "-c",
                                                     "exec %s {}" % P, ":::",
                                                     "daemon %s 600" % daemon_pf,
                                                     "forkbomb 40"], None, 0, True),
        ("spawn errors", R + ["--halt", "never", "--", "{}", ":::", "/nonexistent/x", "/etc/hostname",
                              "/bin/true"], None, 127, True),
        ("exec", [a.bin, "exec", "--no-sandbox", "-m", "64M", "--", P, "exit", "3"], None, 3,
         True),
        ("exec, command not found", [a.bin, "exec", "--no-sandbox", "--", "/nonexistent/x"],
         None, 127, False),
        ("SIGTERM mid-batch", R + ["-j2", "--", P, "sleep", ":::"] + ["30"] * 6, None, 143,
         True, 2.5),
        ("stdout closed (SIGPIPE)", R + ["-j2", "--", P, "write", ":::"] + ["200000"] * 20,
         None, None, True, "pipe"),
        ("many tasks", R + ["-j8", "--", P, "exit", ":::"] + many.split(), None, 0, True),
        ("usage: unknown option", [a.bin, "run", "--bogus", "true"], None, 125, False),
        ("usage: bad size", [a.bin, "run", "-m", "12Q", "true", ":::", "x"], None, 125, False),
        ("usage: no input", [a.bin, "run", "true"], b"", 125, False),
        ("usage: command not found", [a.bin, "run", "/nonexistent/x", ":::", "a"], None, 125,
         False),
        ("usage: NUL in input", [a.bin, "run", "--no-sandbox", "echo"], b"a\nb\0c\n", 125,
         False),
        ("usage: bad --results", [a.bin, "run", "--results", "/proc/x/y", "true", ":::", "a"],
         None, 125, False),
        ("usage: bad halt", [a.bin, "run", "--halt", "sometimes", "true", ":::", "a"], None,
         125, False),
    ]
    n_proc = 0
    for case in cases:
        name, argv, stdin, want_rc, normal = case[:5]
        extra = case[5] if len(case) > 5 else None
        logdir = os.path.join(d, "logs-%d" % len(os.listdir(d)))
        os.makedirs(logdir)
        cmd = vg + ["--log-file=%s/vg.%%p" % logdir] + argv
        t0 = time.monotonic()
        if extra == "pipe":
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env)
            p.stdout.read(10)
            p.stdout.close()
            _, err = p.communicate(timeout=300)
            rc = p.returncode
            want_rc = 141  # 128 + SIGPIPE: the batch ended because stdout went away
        else:
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None
                                 else subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, env=env)
            if isinstance(extra, float):
                time.sleep(extra)
                p.send_signal(15)
            _, err = p.communicate(stdin, timeout=300)
            rc = p.returncode
        el = time.monotonic() - t0
        problems = []
        if rc == 99:
            problems.append("valgrind reported errors")
        elif want_rc is not None and rc != want_rc:
            problems.append("exit %s, expected %s (stderr: %s)" %
                            (rc, want_rc, err.decode(errors="replace").strip()[-300:]))
        logs = sorted(os.listdir(logdir))
        for lf in logs:
            errors, definite, indirect, open_fds, fd_lines, text = parse_vg_log(
                os.path.join(logdir, lf))
            if errors is None:
                continue  # a task child that exec'd: valgrind let it go
            n_proc += 1
            who = "watchdog" if "corral-watchdog" in text or lf != "vg.%d" % p.pid else "corral"
            if errors:
                problems.append("%s: %d errors (%s)" % (who, errors, os.path.join(logdir, lf)))
            if definite or indirect:
                problems.append("%s: %d bytes definitely, %d indirectly lost (%s)" %
                                (who, definite, indirect, os.path.join(logdir, lf)))
            if normal and who == "corral" and open_fds is not None:
                # (valgrind 3.19 lists its own --log-file as inherited)
                extra_fds = [(fd, what) for fd, what in fd_lines
                             if int(fd) > 2 and not what.startswith(logdir)]
                if extra_fds:
                    problems.append("corral: fds open at exit: %s" % extra_fds)
            if "unhandled amd64-linux syscall" in text:
                sysc = sorted(set(re.findall(r"unhandled amd64-linux syscall: (\d+)", text)))
                problems.append("%s: valgrind does not know syscalls %s" % (who, sysc))
        status = "ok" if not problems else "FAILED"
        log("  valgrind %-45s exit %4s  %5.1fs  %d process log(s)  %s" %
            (name, rc, el, len(logs), status))
        for pr in problems:
            fail("valgrind %s: %s" % (name, pr))
    log("  valgrind: %d runs, %d valgrind process logs checked" % (len(cases), n_proc))
    # The daemon must be gone (the cleanup ran under valgrind too).
    try:
        with open(daemon_pf) as f:
            pid = int(f.read())
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state not in ("Z", "X"):
            fail("valgrind: the daemon %d outlived its batch" % pid)
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------- fds reaching tasks

def fds_in_tasks(a, work):
    P = a.payload
    d = os.path.join(work, "fds")
    os.makedirs(d)
    rep, jl, rd = os.path.join(d, "r"), os.path.join(d, "j"), os.path.join(d, "res")
    R = [a.bin, "run"]
    leak_r, leak_w = os.pipe()  # inherited by corral without CLOEXEC
    os.set_inheritable(leak_r, True)
    os.set_inheritable(leak_w, True)
    cases = [
        ("run", R + ["--", P, "fds", ":::", "a"], None, 1),
        ("run -j8, 24 tasks", R + ["-j8", "--", P, "fds", ":::"] + ["a"] * 24, None, 24),
        ("run --no-sandbox", R + ["--no-sandbox", "--", P, "fds", ":::", "a", "b"], None, 2),
        ("run --report --joblog --results -k", R + ["-k", "-j4", "--report", rep, "--joblog", jl,
                                                     "--results", rd, "--", P, "fds", ":::"]
         + ["a"] * 8, None, 8),
        ("run --ungroup", R + ["--ungroup", "-j2", "--", P, "fds", ":::", "a", "b"], None, 2),
        ("run, input on stdin", R + ["-j2", "--", P, "fds"], b"a\nb\nc\n", 3),
        ("run, shell lines", R + ["-j2"], b"%s fds\n%s fds\n" % (P.encode(), P.encode()), 2),
        ("run --retries (second attempt)", R + ["-m", "32M", "--retries", "1", "--memory-growth",
                                                "8", "--", "sh", "-c",
                                                "%s fds; exec %s alloc 100" % (P, P), ":::", "a"],
         None, 1),
        ("exec", [a.bin, "exec", "--", P, "fds"], None, 1),
        ("exec --no-sandbox", [a.bin, "exec", "--no-sandbox", "--", P, "fds"], None, 1),
    ]
    for name, argv, stdin, n in cases:
        p = subprocess.run(argv, input=stdin if stdin is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(leak_r, leak_w),
                           timeout=120)
        out = p.stdout.decode(errors="replace")
        if "--ungroup" in argv:
            fds = sorted(int(x) for x in out.split())
            ok = fds == sorted([0, 1, 2] * n)
        else:
            want = "0\n1\n2\n" * n
            if "--retries" in argv:
                want = "0\n1\n2\n"  # only the final attempt's output is printed
            ok = out == want
        log("  fds in tasks: %-36s exit %3d  %s" % (name, p.returncode, "ok" if ok else "FAILED"))
        if not ok:
            fail("fds in tasks (%s): a task saw fds %r (corral got fds %d, %d open without "
                 "CLOEXEC); stderr %s" % (name, out[:200], leak_r, leak_w,
                                          p.stderr.decode(errors="replace")[-300:]))
    os.close(leak_r)
    os.close(leak_w)


# ---------------------------------------------------------------- corral's own fds

def cgroup_mounts():
    """Mount points of cgroupfs (v1 and v2), from our mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] and right.split()[0] in ("cgroup", "cgroup2"):
                out.append(left.split()[4])
    return out


def count_fds(pid, cg_roots=()):
    """(fds on cgroupfs, all other fds) that pid holds, or None."""
    cg = other = 0
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return None
    for name in names:
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        if any(target == r or target.startswith(r + "/") for r in cg_roots):
            cg += 1
        else:
            other += 1
    return cg, other


def fd_flat(a, work):
    P = a.payload
    n = a.fd_tasks
    d = os.path.join(work, "flat")
    os.makedirs(d)
    mix = ["exit 0"] * 6 + ["exit 1", "alloc 100", "child-alloc 100", "write 40000",
                            "write 20000 2", "sleep-exit 0.01 0", "signal 11"]
    lines = "".join("exec %s %s\n" % (P, mix[i % len(mix)]) for i in range(n))
    report = os.path.join(d, "report")
    t0 = time.monotonic()
    p = subprocess.Popen([a.bin, "run", "-j8", "-m", "32M", "--halt", "never", "--report", report],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    threading.Thread(target=lambda: (p.stdin.write(lines.encode()), p.stdin.close()),
                     daemon=True).start()
    roots = cgroup_mounts()
    samples = []  # (records so far, fds on cgroupfs, other fds)
    while p.poll() is None:
        c = count_fds(p.pid, roots)
        try:
            with open(report, "rb") as f:
                done = f.read().count(b"\n")
        except OSError:
            done = 0
        if c is not None:
            samples.append((done, c[0], c[1]))
        time.sleep(0.02)
    el = time.monotonic() - t0
    early = [o for k, _, o in samples if k <= n // 5]
    late = [o for k, _, o in samples if k >= n - n // 5 and k < n]
    cg_max = max((c for _, c, _ in samples), default=0)
    # Task cgroups corral keeps (running and recycled: at most 3 x jobs on
    # v1) hold up to 11 fds each (2 dirs, 2 cgroup.procs, 7 counter files),
    # the batch 2 more: a bound, reached whenever the pool grows, not a
    # steady count. Any other fd must stay flat.
    cg_bound = 3 * 8 * 11 + 2
    log("  corral's fds over a %d-task batch (-j8, mixed tasks, %.0fs, exit %d): %d samples; "
        "non-cgroupfs fds: first fifth min/max %s/%s, last fifth min/max %s/%s; "
        "cgroupfs fds at most %d (bound %d)" %
        (n, el, p.returncode, len(samples), min(early, default=None), max(early, default=None),
         min(late, default=None), max(late, default=None), cg_max, cg_bound))
    if p.returncode not in (1, 137, 139):
        fail("fd batch: corral exited %d" % p.returncode)
    if cg_max > cg_bound:
        fail("fd batch: corral held %d fds on cgroupfs, more than its task cgroups can (%d): a leak" %
             (cg_max, cg_bound))
    if not early or not late:
        fail("fd batch: too few samples (%d early, %d late)" % (len(early), len(late)))
    elif max(late) > max(early) + 16:
        # How many fds corral holds at a given moment depends on the tasks in
        # flight (pipes, pidfds, spilled output files: a few each, -j8 and a
        # window of pending tasks), so the maxima of two samplings differ by
        # a few either way. A leak of even one fd per task would add ~1000
        # over the 4000 tasks between the fifths: the slack cannot hide it.
        fail("fd batch: corral holds more fds late in the batch (%d) than early (%d): a leak" %
             (max(late), max(early)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.dirname(here)
    build = os.path.join(src, "build")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corral", dest="bin",
                    default=os.environ.get("CORRAL_BIN", os.path.join(build, "corral")))
    ap.add_argument("--payload", default=os.environ.get(
        "CORRAL_PAYLOAD", os.path.join(build, "tests", "corral-payload")))
    ap.add_argument("--fd-tasks", type=int, default=5000)
    ap.add_argument("--skip-valgrind", action="store_true")
    a = ap.parse_args()
    a.src = src
    if os.geteuid() != 0:
        sys.exit("hygiene: needs root")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="corral-hygiene-") as work:
        os.chmod(work, 0o755)
        if not a.skip_valgrind:
            log("valgrind memcheck on %s:" % a.bin)
            valgrind_runs(a, work)
        log("fds:")
        fds_in_tasks(a, work)
        fd_flat(a, work)
    log("")
    log("hygiene: %d failure(s) in %.0fs" % (len(FAILS), time.monotonic() - t0))
    for f in FAILS:
        log("  " + f)
    log("%d passed, %d failed" % (0 if FAILS else 1, 1 if FAILS else 0))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
