"""CLI tests: input, replacement strings, output, --report, --joblog,
--results, help, version and `corral check` (see clitest.py for the rules)."""
import hashlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import time
import unittest

from clitest import (PAYLOAD, CliTest, JOBLOG_HEADER, corral, finals_by_seq,
                     pattern, read_joblog, scaled, setUpModule, spawn, sh_quote)
import clitest

assert setUpModule  # the module-level skip check (exit 77)


class HelpVersionCheck(CliTest):
    RUN_OPTIONS = ["-j, --jobs", "-m, --memory", "--swap", "--pids", "--cpus", "-t, --timeout",
                   "--kill-after", "--halt", "--retries", "--retry-on", "--memory-growth",
                   "--memory-ceiling", "--memory-budget", "--report", "--joblog", "--results",
                   "-k, --keep-order", "--ungroup", "--progress", "--seccomp", "--allow-ptrace",
                   "--core-dumps", "--user", "--no-network", "--no-sandbox", "--cgroup-parent",
                   "--oom-group", "--no-oom-group", "--allow-subprocess-oom", "--no-cgroups",
                   "-a, --arg-file", "-0, --null", "-q, --quiet", "--tmpdir", "--help",
                   "--version", "--link", "-C, --colsep", "-N N", "-L, --max-lines", "--trim",
                   "--dry-run", "--line-buffer", "--tag", "--tagstring", "--resume",
                   "--resume-failed", "GNU parallel's options"]
    EXEC_ONLY_ABSENT = ["--jobs", "--halt", "--results", "--keep-order", "--ungroup",
                        "--progress", "--memory-budget", "--arg-file", "--link", "--colsep",
                        "--dry-run", "--tag", "--resume", "--line-buffer"]

    def test_help(self):
        r = corral("--help")
        self.assertEqual((r.rc, r.err), (0, b""))
        self.assertIn(b"usage: corral run", r.out)
        r = corral("run", "--help")
        self.assertEqual((r.rc, r.err), (0, b""))
        text = r.out.decode()
        self.assertTrue(text.startswith("usage: corral run [OPTIONS]"), text)
        for opt in self.RUN_OPTIONS:
            self.assertIn(opt, text)
        r = corral("exec", "--help")
        self.assertEqual((r.rc, r.err), (0, b""))
        text = r.out.decode()
        self.assertTrue(text.startswith("usage: corral exec [OPTIONS] -- COMMAND"), text)
        for opt in ("-m, --memory", "-t, --timeout", "--retries", "--report", "--seccomp",
                    "--user", "--no-network", "--cgroup-parent", "--help"):
            self.assertIn(opt, text)
        for opt in self.EXEC_ONLY_ABSENT:
            self.assertNotIn(opt, text)
        # --help wins over everything after it and starts nothing.
        marker = self.path("marker")
        r = corral("run", "--help", "touch", marker, input=b"x\n")
        self.assertEqual(r.rc, 0)
        self.assertFalse(os.path.exists(marker))

    def test_version(self):
        with open(os.path.join(clitest.SRC, "include", "corral.h")) as f:
            ver = re.search(r'#define CORRAL_VERSION_STRING "([^"]+)"', f.read()).group(1)
        want = ("corral %s (libcorral %s)\n" % (ver, ver)).encode()
        for args in (["--version"], ["run", "--version"], ["exec", "--version"]):
            r = corral(*args)
            self.assertEqual((r.rc, r.out, r.err), (0, want, b""), args)

    def _expected_mode(self):
        memory_v1 = cgroup2 = False
        with open("/proc/self/mountinfo") as f:
            for line in f:
                post = line.split(" - ", 1)[1].split()
                fstype, opts = post[0], post[2].split(",")
                if fstype == "cgroup" and "memory" in opts:
                    memory_v1 = True
                if fstype == "cgroup2":
                    cgroup2 = True
        if memory_v1:
            return "hybrid" if cgroup2 else "v1"
        return "v2"

    def test_check(self):
        r = corral("check")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(b"cgroup mode", r.out)
        self.assertIn(b"=> corral can run tasks with memory limits here", r.out)
        r = corral("check", "--json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.count(b"\n"), 1)
        j = json.loads(r.out)
        self.assertEqual(j["mode"], self._expected_mode())
        self.assertIs(j["memory_limits"], True)
        self.assertIs(j["controllers"]["memory"], True)
        self.assertIs(j["base"]["exists"], True)
        # Where the task cgroups come from: the first rung that works.
        prov = j["provider"]
        self.assertIs(prov["limits"], True)
        self.assertEqual(prov["name"], prov["steps"][-1]["name"])
        self.assertIs(prov["steps"][-1]["used"], True)
        self.assertTrue(all(not s["used"] for s in prov["steps"][:-1]), prov)
        self.assertIn(b"where task cgroups come from", corral("check").out)
        if prov["name"] == "own":
            self.assertIs(j["base"]["writable"], True)
        self.assertIsInstance(j["features"], dict)
        self.assertIsInstance(j["advice"], list)
        cg = clitest.own_cgroups()
        self.assertEqual(j["base"]["path"], cg[""] if j["mode"] == "v2" else cg["memory"])
        r = corral("check", "--bogus")
        self.assertEqual(r.rc, 125)


class Input(CliTest):
    def test_replacement_strings(self):
        r = corral("run", "-k", "-j", "2", "--report", self.path("report.jsonl"), "echo",
                   "x{}y", "{#}", "{}{}", ":::", "A", "B", "C")
        self.assertEqual((r.rc, r.err), (0, b""), r)
        self.assertEqual(r.out, b"xAy 1 AA\nxBy 2 BB\nxCy 3 CC\n")
        recs, summ = self.report()
        f = finals_by_seq(recs)
        self.assertEqual(f[2]["command"], ["echo", "xBy", "2", "BB"])
        self.assertEqual(summ["outcomes"]["ok"], 3)
        # {#} alone still counts as a replacement: no line is appended.
        r = corral("run", "-k", "echo", "n{#}", ":::", "A", "B")
        self.assertEqual(r.out, b"n1\nn2\n")

    def test_line_appended_without_braces(self):
        r = corral("run", "-k", "--report", self.path("report.jsonl"), "printf", "[%s]\\n", "pre",
                   ":::", "A B", "C")
        self.assertEqual((r.rc, r.out), (0, b"[pre]\n[A B]\n[pre]\n[C]\n"), r)
        recs, _ = self.report()
        self.assertEqual(finals_by_seq(recs)[1]["command"], ["printf", "[%s]\\n", "pre", "A B"])

    def test_shell_mode(self):
        lines = "echo one; echo err1 >&2\necho two | tr a-z A-Z\nexit 0\n"
        r = corral("run", "-k", "-j", "3", "--report", self.path("report.jsonl"),
                   input=lines.encode())
        self.assertEqual((r.rc, r.out, r.err), (0, b"one\nTWO\n", b"err1\n"), r)
        recs, summ = self.report()
        f = finals_by_seq(recs)
        self.assertEqual(f[1]["command"], ["/bin/sh", "-c", "echo one; echo err1 >&2"])
        self.assertEqual(f[2]["command"], ["/bin/sh", "-c", "echo two | tr a-z A-Z"])
        self.assertEqual((f[1]["stdout_bytes"], f[1]["stderr_bytes"]), (4, 5))
        self.assertEqual(summ["tasks"], 3)
        # A failing line: its own exit code is the verdict.
        r = corral("run", "-q", "-k", input=b"true\nexit 7\ntrue\n")
        self.assertEqual((r.rc, r.err), (7, b""))

    def test_arg_files_and_stdin(self):
        a = self.write("a.txt", "a1\na2\n")
        b = self.write("b.txt", "b1\nb2")  # no final newline
        # Several sources: every combination, the first changing slowest
        # (GNU parallel's rule; they are not read one after the other).
        r = corral("run", "-k", "-a", a, "-a", b, "echo", input=b"not read\n")
        self.assertEqual((r.rc, r.out), (0, b"a1 b1\na1 b2\na2 b1\na2 b2\n"), r)
        r = corral("run", "-k", "--arg-file", b, "-a", "-", "echo", input=b"s1\ns2\n")
        self.assertEqual((r.rc, r.out), (0, b"b1 s1\nb1 s2\nb2 s1\nb2 s2\n"), r)
        r = corral("run", "-k", "-a", a, "echo", input=b"not read\n")
        self.assertEqual((r.rc, r.out), (0, b"a1\na2\n"), r)
        r = corral("run", "-k", "echo", "got", input=b"x\n\ny\r\n")
        # Empty lines are items; a CR is kept.
        self.assertEqual((r.rc, r.out), (0, b"got x\ngot \ngot y\r\n"), r)

    def test_streaming_input(self):
        # Each task starts when its line arrives, not when stdin ends.
        p = spawn(["run", "--report", self.path("report.jsonl"), "-t", "%.1fs" % scaled(1),
                   "sh", "-c", 'echo "got $1"; [ "$1" != slow ] || exec "$0" sleep 30', PAYLOAD],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for word in (b"one", b"two"):
                p.stdin.write(word + b"\n")
                p.stdin.flush()
                ready, _, _ = select.select([p.stdout], [], [], scaled(10))
                self.assertTrue(ready, word)
                self.assertEqual(p.stdout.readline(), b"got " + word + b"\n")
            # While we hold stdin open, a running task still times out.
            p.stdin.write(b"slow\n")
            p.stdin.flush()
            self.assertTrue(clitest.wait_until(
                lambda: b'"outcome":"timeout"' in self.read("report.jsonl"), scaled(10)))
        finally:
            out, err = p.communicate(timeout=scaled(20))  # closes stdin
        self.assertEqual(p.returncode, 124, err)
        self.assertEqual(out, b"got slow\n")
        # Interrupted while it waits for input.
        p = spawn(["run", "echo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
        try:
            p.stdin.write(b"a\n")
            p.stdin.flush()
            self.assertEqual(p.stdout.readline(), b"a\n")
            os.kill(p.pid, signal.SIGINT)
            out, err = p.communicate(timeout=scaled(10))
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 130, err)
        # ... and before the first item arrived.
        p = spawn(["run", "echo"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
        time.sleep(scaled(0.1))
        os.kill(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=scaled(10))
        self.assertEqual((p.returncode, out), (143, b""))

    def test_null_separated_arbitrary_bytes(self):
        items = [b"plain", b"two words", b"line1\nline2\n", b"quotes ' \" ` $HOME \\ *",
                 b"\xff\xfe invalid \xc3( utf-8 \x80", b"tab\there", b"", b"  lead and trail  ",
                 "unicode \u00e9\u20ac\U0001f600".encode(), bytes(range(1, 32)) + b"\x7f"]
        data = b"\0".join(items)  # no NUL after the last item: still an item
        res = self.path("res")
        r = corral("run", "-0", "-j", "4", "--results", res, "--report", self.path("report.jsonl"),
                   "--joblog", self.path("joblog"), "sh", "-c", 'printf "%s" "$1"', "sh", input=data)
        self.assertEqual(r.rc, 0, r)
        recs, summ = self.report()
        self.assertEqual(summ["tasks"], len(items))
        f = finals_by_seq(recs)
        for i, item in enumerate(items, 1):
            self.assertEqual(self.read(os.path.join(res, str(i), "stdout")), item, i)
            cmd = f[i]["command"]
            self.assertEqual(cmd[:4], ["sh", "-c", 'printf "%s" "$1"', "sh"])
            self.assertEqual(cmd[4].encode("utf-8", "surrogateescape"), item, i)
            self.assertEqual(f[i]["stdout_bytes"], len(item))
        rows = read_joblog(self, self.path("joblog"))
        self.assertEqual(len(rows), len(items))
        by = {row["seq"]: row for row in rows}
        self.assertEqual(by[3]["command"], 'sh -c printf "%s" "$1" sh line1\\nline2\\n')
        self.assertEqual(by[6]["command"], 'sh -c printf "%s" "$1" sh tab\\there')
        # --null as the long spelling, with a trailing NUL.
        r = corral("run", "--null", "-k", "printf", "<%s>", input=b"a\nb\0c\0")
        self.assertEqual(r.out, b"<a\nb><c>")

    def test_nul_in_newline_input_is_an_error(self):
        marker = self.path("m")
        r = corral("run", "-j", "1", "sh", "-c", "touch %s-$1" % sh_quote(marker), "sh",
                   input=b"ok\nbad\0byte\nlater\n")
        self.assertEqual(r.rc, 125, r)
        self.assertIn("NUL", r.err_lines[0])
        self.assertFalse(os.path.exists(marker + "-later"))


class Output(CliTest):
    def _alphabets(self, n):
        abc = "abcdefghijklmnopqrstuvwxyz"
        return [abc[k:] + abc[:k] for k in range(n)]

    def test_grouped_output_is_never_interleaved(self):
        size = 200 * 1024
        alph = self._alphabets(20)
        base = pattern(size)
        expect = {a: base.translate(bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", a.encode()))
                  for a in alph}
        script = '"$0" write %d | tr a-z "$1"' % size
        r = corral("run", "-j", "8", "sh", "-c", script, PAYLOAD, ":::", *alph)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(r.out), 20 * size)
        chunks = [r.out[i:i + size] for i in range(0, len(r.out), size)]
        seen = []
        for c in chunks:
            match = [a for a, e in expect.items() if e == c]
            self.assertEqual(len(match), 1, "a chunk is not one task's whole output")
            seen.append(match[0])
        self.assertEqual(sorted(seen), sorted(alph))

        # -k: the same, in input order, though later tasks finish first.
        script = 'set -- $1; "$P" sleep "$2"; "$P" write %d | tr a-z "$1"' % size
        args = ["%s %.3f" % (a, scaled(0.02) * (8 - i % 8)) for i, a in enumerate(alph)]
        r = corral("run", "-k", "-j", "8", "sh", "-c", script, "sh", ":::", *args,
                   env=dict(os.environ, P=PAYLOAD))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, b"".join(expect[a] for a in alph))

    def test_keep_order(self):
        lines = ["%s sleep %.2f; echo %d" % (PAYLOAD, scaled(0.1) * (4 - i), i) for i in range(4)]
        r = corral("run", "--keep-order", "-j", "4", input="\n".join(lines).encode())
        self.assertEqual((r.rc, r.out), (0, b"0\n1\n2\n3\n"), r)
        r = corral("run", "-j", "4", input="\n".join(lines).encode())
        self.assertEqual(r.rc, 0)
        # Completion order (the last one first) without -k.
        self.assertEqual(sorted(r.out.split()), [b"0", b"1", b"2", b"3"])
        self.assertNotEqual(r.out, b"0\n1\n2\n3\n")

    def test_100mb_output_byte_exact_small_rss(self):
        n = 104857600
        h = hashlib.sha256()
        block = pattern(65536)
        for _ in range(n // 65536):
            h.update(block)
        want = h.hexdigest()
        rep = self.path("report.jsonl")
        # corral ... | sha256sum: coreutils hashes faster than python does
        # under the VM's emulation. Meanwhile we sample corral's own peak RSS
        # (VmHWM: the ru_maxrss of a child of ours would include the python
        # process it was forked from).
        t0 = time.monotonic()
        p = spawn(["run", "--report", rep, PAYLOAD, "write", ":::", str(n)],
                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        hasher = subprocess.Popen(["sha256sum"], stdin=p.stdout, stdout=subprocess.PIPE)
        p.stdout.close()
        hwm = 0
        while p.poll() is None:
            hwm = max(hwm, clitest.vm_hwm_kib(p.pid))
            time.sleep(0.02 * clitest.SCALE)
        elapsed = time.monotonic() - t0
        err = p.stderr.read()
        p.stderr.close()
        got = hasher.communicate(timeout=scaled(60))[0].split()[0].decode()
        self.assertEqual((p.returncode, err), (0, b""))
        self.assertEqual(got, want)
        recs, _ = self.report()
        self.assertEqual(recs[0]["stdout_bytes"], n)
        rss_mib = hwm / 1024.0
        self.assertGreater(rss_mib, 0)
        self.assertLess(rss_mib, 32, "corral's peak RSS")
        print("\n  100 MB through corral run: %.2fs (%.0f MB/s), corral peak RSS %.1f MiB"
              % (elapsed, n / 1e6 / elapsed, rss_mib), flush=True)

    def test_stdout_closed(self):
        # `corral run ... | head -c 10`: corral stops the batch and exits 141.
        r_fd, w_fd = os.pipe()
        p = spawn(["run", "-j", "1", "--report", self.path("report.jsonl"), PAYLOAD, "write",
                   ":::", "100000", "100000", "100000"], stdin=subprocess.DEVNULL, stdout=w_fd,
                  stderr=subprocess.PIPE)
        os.close(w_fd)
        self.assertEqual(os.read(r_fd, 10), b"abcdefghij")
        os.close(r_fd)
        err = p.communicate(timeout=scaled(20))[1]
        self.assertEqual(p.returncode, 141, err)
        recs, summ = self.report()
        self.assertEqual(summ["exit_code"], 141)
        self.assertLess(summ["outcomes"]["ok"], 3)

    def test_ungroup(self):
        # The first line arrives while the task still runs.
        p = spawn(["run", "--ungroup", "sh", "-c", 'echo first; "$0" sleep 30; echo never',
                   PAYLOAD, ":::", "x"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
        try:
            ready, _, _ = select.select([p.stdout], [], [], scaled(10))
            self.assertTrue(ready)
            self.assertEqual(p.stdout.readline(), b"first\n")
            self.assertIsNone(p.poll())
        finally:
            p.terminate()
            out, err = p.communicate(timeout=scaled(10))
        self.assertEqual(p.returncode, 143)
        self.assertEqual(out, b"")
        # Without --ungroup the same output comes whole at the end.
        r = corral("run", "--ungroup", "-j", "2", "sh", "-c", "echo $1; echo e$1 >&2", "sh",
                   ":::", "1", "2")
        self.assertEqual(sorted(r.out.split()), [b"1", b"2"])
        self.assertEqual(sorted(r.err.split()), [b"e1", b"e2"])

    def test_progress(self):
        # stderr not a terminal: nothing.
        r = corral("run", "--progress", "-j", "2", "true", ":::", "a", "b", "c")
        self.assertEqual((r.rc, r.out, r.err), (0, b"", b""))
        # stderr a terminal: a status line, cleared at the end.
        master, slave = pty.openpty()
        try:
            p = spawn(["run", "--progress", "-j", "1", PAYLOAD, "sleep", ":::", "0.3", "0.3"],
                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
            os.close(slave)
            slave = None
            out = p.communicate(timeout=scaled(30))[0]
            tty = b""
            while True:
                r_, _, _ = select.select([master], [], [], 0.5)
                if not r_:
                    break
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                tty += chunk
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        self.assertEqual((p.returncode, out), (0, b""))
        self.assertIn(b"[corral] ", tty)
        self.assertIn(b"running", tty)
        self.assertTrue(tty.endswith(b"\r\x1b[K"), tty[-40:])

    def test_quiet(self):
        r = corral("run", "-j", "1", "sh", "-c", "echo out; exit $1", "sh", ":::", "0", "3")
        self.assertEqual((r.rc, r.out), (3, b"out\nout\n"))
        self.assertEqual(r.err_lines, ["corral: task 2 failed: it exited with status 3",
                                       "corral: 2 tasks: 1 ok, 1 exit"])
        r = corral("run", "-q", "-j", "1", "sh", "-c", "echo out; exit $1", "sh", ":::", "0", "3")
        self.assertEqual((r.rc, r.out, r.err), (3, b"out\nout\n", b""))
        r = corral("exec", "--quiet", "-m", "16M", "--", PAYLOAD, "alloc", "64")
        self.assertEqual((r.rc, r.err), (137, b""))
        r = corral("exec", "-m", "16M", "--", PAYLOAD, "alloc", "64")
        self.assertEqual(r.rc, 137)
        self.assertEqual(len(r.err_lines), 1)
        self.assertIn("OOM-killed", r.err_lines[0])

    def test_results_dir(self):
        res = self.path("deep", "results")  # created with its parents
        rep = self.path("report.jsonl")
        r = corral("run", "-j", "1", "--results", res, "--report", rep, "sh", "-c",
                   'echo "out $1"; echo "err $1" >&2; exit $1', "sh", ":::", "0", "4", "0")
        self.assertEqual(r.rc, 4, r)
        recs, summ = self.report()
        f = finals_by_seq(recs)
        self.assertEqual(sorted(os.listdir(res)), ["1", "2"])  # 3 was cancelled
        for seq, code in ((1, 0), (2, 4)):
            d = os.path.join(res, str(seq))
            self.assertEqual(sorted(os.listdir(d)), ["outcome", "stderr", "stdout"])
            self.assertEqual(self.read(os.path.join(d, "stdout")), b"out %d\n" % code)
            self.assertEqual(self.read(os.path.join(d, "stderr")), b"err %d\n" % code)
            outcome = self.read(os.path.join(d, "outcome"))
            self.assertTrue(outcome.endswith(b"\n") and outcome.count(b"\n") == 1)
            rec = json.loads(outcome)
            clitest.check_record(self, rec)
            self.assertEqual(rec, f[seq])
        self.assertEqual(f[3]["outcome"], "cancelled")
        self.assertEqual(summ["outcomes"]["cancelled"], 1)

    @clitest.needs_root("mounts a small tmpfs")
    def test_no_space_for_output(self):
        # The spill directory fills up: what fits is delivered, the rest is
        # dropped (the task is not killed by SIGPIPE) and the record and a
        # warning say how much was lost.
        td = self.path("small")
        os.mkdir(td)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", td], check=True)
        try:
            rep = self.path("r.jsonl")
            r = corral("run", "--tmpdir", td, "--report", rep, PAYLOAD, "write", ":::", "5000000")
        finally:
            subprocess.run(["umount", td], check=False)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, pattern(len(r.out)))
        recs = [json.loads(l) for l in open(rep) if l.startswith('{"seq"')]
        clitest.check_record(self, recs[0])
        self.assertEqual(recs[0]["outcome"], "ok")
        self.assertEqual(recs[0]["stdout_bytes"], len(r.out))
        self.assertGreater(recs[0]["stdout_lost_bytes"], 0)
        self.assertEqual(recs[0]["stdout_bytes"] + recs[0]["stdout_lost_bytes"], 5000000)
        self.assertIn(b"were lost: No space left on device", r.err)

    def test_tmpdir(self):
        td = self.path("spill")
        os.mkdir(td)
        go = self.path("go")
        # The task writes more than fits in memory (16 KiB), then waits.
        script = '"$0" write 100000; while [ ! -e "$1" ]; do "$0" sleep 0.02; done'
        p = spawn(["run", "--tmpdir", td, "sh", "-c", script, PAYLOAD, ":::", go],
                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        hidden = []
        try:
            def spilled():
                out = []
                try:
                    for fd in os.listdir("/proc/%d/fd" % p.pid):
                        try:
                            out.append(os.readlink("/proc/%d/fd/%s" % (p.pid, fd)))
                        except OSError:
                            pass
                except PermissionError:
                    # corral is not dumpable (the sandbox's promise): its
                    # /proc/PID/fd is root's to read, not its user's.
                    hidden.append(True)
                    return True
                except OSError:
                    pass
                return [l for l in out if l.startswith(td + "/")]
            links = clitest.wait_until(spilled, scaled(10))
        finally:
            open(go, "w").close()
            out, err = p.communicate(timeout=scaled(30))
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, pattern(100000))
        self.assertEqual(os.listdir(td), [])
        if hidden:
            self.skipTest("corral's fds are root's to read (it is not dumpable): the "
                          "spill file in --tmpdir is checked in the lanes that run as root")
        self.assertTrue(links, "no spill file of corral in --tmpdir")
        self.assertTrue(all(l.endswith("(deleted)") for l in links), links)


class ReportFormat(CliTest):
    def test_report_and_joblog(self):
        rep, log = self.path("report.jsonl"), self.path("joblog")
        p = PAYLOAD
        lines = ["echo out; echo errr >&2",
                 "exec %s exit 3" % p,
                 "exec %s alloc 200" % p,
                 "exec %s signal 11" % p]
        r = corral("run", "-j", "2", "-m", "64M", "--halt", "never", "--report", rep,
                   "--joblog", log, input=("\n".join(lines) + "\n").encode())
        self.assertEqual(r.rc, 3, r)
        recs, summ = self.report()
        self.assertEqual(len(recs), 4)
        f = finals_by_seq(recs)
        for seq in (1, 2, 3, 4):
            rec = f[seq]
            self.assertEqual((rec["attempt"], rec["final"]), (1, True))
            self.assertEqual(rec["command"], ["/bin/sh", "-c", lines[seq - 1]])
            self.assertEqual(rec["memory_max"], 64 << 20)
            self.assertIsInstance(rec["pid"], int)
            self.assertFalse(rec["pids_limit_hit"])
            self.assertFalse(rec["seccomp_kill"])
            self.assertGreaterEqual(rec["wall_time"], 0)
        one = f[1]
        self.assertEqual((one["outcome"], one["status"], one["exit_code"], one["signal"]),
                         ("ok", 0, 0, None))
        self.assertEqual((one["stdout_bytes"], one["stderr_bytes"]), (4, 5))
        self.assertEqual((one["oom_kills"], one["own_limit_hit"]), (0, False))
        self.assertEqual(one["sentence"], "task 1 succeeded")
        two = f[2]
        self.assertEqual((two["outcome"], two["status"], two["exit_code"], two["signal"]),
                         ("exit", 3, 3, None))
        self.assertEqual(two["sentence"], "task 2 failed: it exited with status 3")
        three = f[3]
        self.assertEqual((three["outcome"], three["status"], three["exit_code"], three["signal"]),
                         ("oom", 137, None, 9))
        self.assertGreaterEqual(three["oom_kills"], 1)
        self.assertIs(three["own_limit_hit"], True)
        self.assertLessEqual(three["memory_peak"], 64 << 20)
        self.assertGreater(three["memory_peak"], 56 << 20)
        self.assertGreater(three["system_time"] + three["user_time"], 0)
        self.assertTrue(three["sentence"].startswith(
            "task 3 was OOM-killed: it exceeded its memory limit (memory.max 64.0 MiB"), three)
        four = f[4]
        self.assertEqual((four["outcome"], four["status"], four["exit_code"], four["signal"]),
                         ("signal", 139, None, 11))
        self.assertEqual(four["sentence"], "task 4 was killed by signal 11 (SIGSEGV)")
        prov = summ.pop("provider")
        self.assertEqual((prov["name"], prov["limits"]), (clitest.PROVIDER, True))
        self.assertEqual(summ, {
            "schema_version": 1, "tasks": 4, "attempts": 4,
            "outcomes": {"ok": 1, "exit": 1, "oom": 1, "oom_outside": 0, "subprocess_oom": 0,
                         "timeout": 0, "signal": 1, "spawn_error": 0, "cancelled": 0,
                         "aborted": 0, "lost": 0},
            "verdict_seq": 2, "verdict": "exit", "exit_code": 3, "aborted": False,
            "signal": None, "sentence": "task 2 failed: it exited with status 3"})
        self.assertEqual(r.err_lines, ["errr", "corral: task 2 failed: it exited with status 3",
                                       "corral: 4 tasks: 1 ok, 1 exit, 1 oom, 1 signal"])

        rows = read_joblog(self, log)
        self.assertEqual(sorted(row["seq"] for row in rows), [1, 2, 3, 4])
        by = {row["seq"]: row for row in rows}
        # Exitval is the exit code corral gives the task (137 for an OOM
        # kill, 128+s for signal s): a failed task never shows 0.
        self.assertEqual([(by[s]["exitval"], by[s]["signal"]) for s in (1, 2, 3, 4)],
                         [(0, 0), (3, 0), (137, 9), (139, 11)])
        self.assertEqual(by[1]["receive"], 4)
        self.assertEqual(by[2]["command"], "/bin/sh -c " + lines[1])
        for s in (1, 2, 3, 4):
            self.assertAlmostEqual(by[s]["start"], f[s]["start_time"], delta=0.0015)
            self.assertAlmostEqual(by[s]["runtime"], f[s]["wall_time"], delta=0.0015)

    def test_report_spawn_errors_and_retries(self):
        noexec = self.write("noexec.sh", "#!/bin/sh\nexit 0\n")
        os.chmod(noexec, 0o644)
        rep, log = self.path("report.jsonl"), self.path("joblog")
        r = corral("run", "-k", "-j", "1", "--halt", "never", "--report", rep, "--joblog", log,
                   "{}", ":::", "/nonexistent/cmd", noexec)
        self.assertEqual(r.rc, 127, r)
        recs, summ = self.report()
        f = finals_by_seq(recs)
        self.assertEqual((f[1]["outcome"], f[1]["status"]), ("spawn_error", 127))
        self.assertEqual(f[1]["spawn_error"],
                         {"step": "exec", "errno": 2, "message": "No such file or directory"})
        self.assertEqual((f[2]["outcome"], f[2]["status"]), ("spawn_error", 126))
        self.assertEqual(f[2]["spawn_error"],
                         {"step": "exec", "errno": 13, "message": "Permission denied"})
        self.assertEqual((summ["verdict_seq"], summ["exit_code"]), (1, 127))
        rows = read_joblog(self, log)
        self.assertEqual([(row["seq"], row["exitval"]) for row in rows], [(1, 127), (2, 126)])

        # One record per attempt in the report; one line per task in the
        # joblog, for its final attempt (GNU parallel's rule, which --resume
        # relies on: a line means the task ended).
        r = corral("run", "-m", "32M", "--retries", "2", "--report", rep, "--joblog", log,
                   PAYLOAD, "alloc", ":::", "48")
        self.assertEqual(r.rc, 0, r)
        recs, summ = self.report()
        self.assertEqual([(x["attempt"], x["final"], x["outcome"]) for x in recs],
                         [(1, False, "oom"), (2, True, "ok")])
        self.assertEqual((summ["tasks"], summ["attempts"]), (1, 2))
        self.assertEqual(recs[1]["sentence"], "task 1 succeeded [attempt 2]")
        rows = read_joblog(self, log)
        self.assertEqual([(row["seq"], row["exitval"], row["signal"]) for row in rows],
                         [(1, 0, 0)])
        self.assertAlmostEqual(rows[0]["start"], recs[1]["start_time"], delta=0.0015)


if __name__ == "__main__":
    unittest.main()
