"""CLI tests: exit codes (design §4) of `corral exec` and `corral run`, the
batch verdict and halt policies, retries, -j and --memory-budget admission,
timeouts."""
import os
import re
import signal
import subprocess
import unittest

from clitest import (PAYLOAD, CliTest, PrivateParent, corral, finals_by_seq, host_pid, scaled,
                     setUpModule, spawn)
import clitest

assert setUpModule

P = PAYLOAD


def intervals(records):
    return sorted((r["start_time"], r["start_time"] + r["wall_time"]) for r in records
                  if r["attempt"] > 0)


def max_concurrency(records, slack=0.02):
    """Most attempts running at one instant (intervals shrunk by slack at both
    ends: the start and the end of one attempt come from different clocks)."""
    events = []
    for s, e in intervals(records):
        if e - s > 2 * slack:
            events.append((s + slack, 1))
            events.append((e - slack, -1))
    best = cur = 0
    for _, d in sorted(events):
        cur += d
        best = max(best, cur)
    return best


class ExecExitCodes(CliTest):
    def exec_(self, *args, **kw):
        rep = self.path("report.jsonl")
        r = corral("exec", "--report", rep, *args, **kw)
        recs, summ = self.report()
        self.assertEqual(summ["tasks"], 1)
        return r, finals_by_seq(recs)[1], summ

    def test_ok_and_exit_k(self):
        for k in (0, 1, 3, 42, 255):
            r, rec, summ = self.exec_("--", P, "exit", str(k))
            self.assertEqual(r.rc, k)
            self.assertEqual(rec["outcome"], "ok" if k == 0 else "exit")
            self.assertEqual((rec["status"], rec["exit_code"]), (k, k))
            self.assertEqual(summ["exit_code"], k)
            self.assertEqual(r.err, b"")  # exec: a plain exit is not commented
        # stdin, stdout and stderr pass straight through.
        r = corral("exec", "--", "sh", "-c", "cat; echo e >&2", input=b"hello\n")
        self.assertEqual((r.rc, r.out, r.err), (0, b"hello\n", b"e\n"))

    def test_oom(self):
        r, rec, summ = self.exec_("-m", "32M", "--", P, "alloc", "100")
        self.assertEqual(r.rc, 137)
        self.assertEqual((rec["outcome"], rec["signal"], rec["own_limit_hit"]), ("oom", 9, True))
        self.assertEqual(rec["memory_max"], 32 << 20)

    def test_oom_outside(self):
        with PrivateParent(memory_limit=48 << 20) as pp:
            r, rec, summ = self.exec_("--cgroup-parent", pp.path, "-m", "256M", "--", P, "alloc",
                                      "100")
        self.assertEqual(r.rc, 137, r)
        self.assertEqual((rec["outcome"], rec["signal"], rec["own_limit_hit"]),
                         ("oom_outside", 9, False))
        self.assertGreaterEqual(rec["oom_kills"], 1)
        self.assertTrue(rec["sentence"].startswith(
            "task 1 was OOM-killed below its own limit (memory.max 256.0 MiB"), rec["sentence"])
        if "oom_memcg" in rec:
            # /dev/kmsg was readable: the kernel named the cgroup whose limit
            # fired, our private parent.
            self.assertTrue(rec["oom_memcg"].endswith(pp.path), (rec["oom_memcg"], pp.path))
            self.assertIn("an ancestor cgroup's limit fired (%s)" % rec["oom_memcg"],
                          rec["sentence"])
            self.assertEqual(rec["oom_victims"][0]["pid"], rec["pid"])
        else:
            self.assertIn("an ancestor cgroup's limit or the host ran out of memory",
                          rec["sentence"])
        self.assertEqual(r.err_lines, ["corral: " + rec["sentence"]])

    def test_subprocess_oom(self):
        # On v2 memory.oom.group would take the leader too: turn it off.
        r, rec, summ = self.exec_("-m", "32M", "--no-oom-group", "--", P, "child-alloc", "100")
        self.assertEqual(r.rc, 137, r)
        self.assertEqual(r.out, b"child killed\n")
        self.assertEqual((rec["outcome"], rec["exit_code"], rec["status"]),
                         ("subprocess_oom", 0, 137))
        self.assertGreaterEqual(rec["oom_kills"], 1)

    def test_timeout(self):
        r, rec, summ = self.exec_("-t", "300ms", "--", P, "sleep", "30")
        self.assertEqual(r.rc, 124)
        self.assertEqual((rec["outcome"], rec["status"], rec["signal"]), ("timeout", 124, 9))
        self.assertLess(r.elapsed, scaled(10))
        # 0 disables the timeout, as with timeout(1).
        r = corral("exec", "--timeout", "0", "--", P, "sleep", "0.2")
        self.assertEqual(r.rc, 0)

    def test_external_signal(self):
        rep = self.path("report.jsonl")
        p = spawn(["exec", "--report", rep, "--", P, "pid"], stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pid = host_pid(int(p.stdout.readline()), p.pid)
        os.kill(pid, signal.SIGUSR1)
        out, err = p.communicate(timeout=scaled(20))
        self.assertEqual(p.returncode, 128 + signal.SIGUSR1, err)
        recs, _ = self.report()
        self.assertEqual((recs[0]["outcome"], recs[0]["signal"], recs[0]["pid"]),
                         ("signal", signal.SIGUSR1, pid))
        self.assertEqual(err.decode().splitlines(),
                         ["corral: task 1 was killed by signal 10 (SIGUSR1)"])

    def test_sigsegv(self):
        r, rec, summ = self.exec_("--", P, "signal", "11")
        self.assertEqual(r.rc, 139)
        self.assertEqual((rec["outcome"], rec["signal"], rec["status"]), ("signal", 11, 139))

    def test_missing_and_not_executable(self):
        r, rec, _ = self.exec_("--", "/nonexistent/corral-cmd")
        self.assertEqual(r.rc, 127)
        self.assertEqual((rec["outcome"], rec["spawn_error"]["errno"]), ("spawn_error", 2))
        r = corral("exec", "--", "corral-no-such-command-xyz")
        self.assertEqual(r.rc, 127)
        self.assertIn("corral-no-such-command-xyz", r.err.decode())
        noexec = self.write("noexec.sh", "#!/bin/sh\nexit 0\n")
        os.chmod(noexec, 0o644)
        r, rec, _ = self.exec_("--", noexec)
        self.assertEqual(r.rc, 126)
        self.assertEqual((rec["outcome"], rec["spawn_error"]["errno"]), ("spawn_error", 13))


class RunExitCodes(CliTest):
    """`corral run`: the verdict task's code, with ok tasks around it."""

    def run_(self, middle, *opts):
        lines = ["true", middle, "%s sleep %.2f" % (P, scaled(0.2))]
        rep = self.path("report.jsonl")
        r = corral("run", "-j", "2", "--report", rep, *opts, input=("\n".join(lines) + "\n").encode())
        recs, summ = self.report()
        f = finals_by_seq(recs)
        self.assertEqual(f[1]["outcome"], "ok")
        if summ["verdict_seq"] is not None:
            self.assertEqual(summ["verdict_seq"], 2)
        self.assertEqual(summ["exit_code"], r.rc)
        return r, f[2]

    def test_codes(self):
        cases = [
            ("exec %s exit 0" % P, (), 0, "ok"),
            ("exec %s exit 5" % P, (), 5, "exit"),
            ("exec %s alloc 100" % P, ("-m", "32M"), 137, "oom"),
            ("exec %s child-alloc 100" % P, ("-m", "32M", "--no-oom-group"), 137,
             "subprocess_oom"),
            ("exec %s sleep 30" % P, ("-t", "%.1fs" % scaled(0.5)), 124, "timeout"),
            ("exec %s signal 11" % P, (), 139, "signal"),
            ("kill -USR2 $$", (), 128 + signal.SIGUSR2, "signal"),
        ]
        for line, opts, code, outcome in cases:
            with self.subTest(line=line):
                r, rec = self.run_(line, *opts)
                self.assertEqual(r.rc, code, r)
                self.assertEqual(rec["outcome"], outcome)

    def test_oom_outside(self):
        with PrivateParent(memory_limit=48 << 20) as pp:
            r, rec = self.run_("exec %s alloc 100" % P, "--cgroup-parent", pp.path, "-m", "256M")
        self.assertEqual((r.rc, rec["outcome"]), (137, "oom_outside"))

    def test_spawn_errors(self):
        noexec = self.write("noexec.sh", "#!/bin/sh\n")
        os.chmod(noexec, 0o600)
        for item, code in (("/nonexistent/cmd", 127), (noexec, 126)):
            r = corral("run", "-j", "2", "{}", ":::", "true", item, "true")
            self.assertEqual(r.rc, code, r)

    def test_external_kill(self):
        p = spawn(["run", "--ungroup", P, "pid", ":::", "x"], stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pid = host_pid(int(p.stdout.readline()), p.pid)
        os.kill(pid, signal.SIGUSR1)
        out, err = p.communicate(timeout=scaled(20))
        self.assertEqual(p.returncode, 138, err)


class Verdict(CliTest):
    def test_lowest_failure_wins_for_any_j(self):
        # Task 5 fails last (it sleeps first), 7 and 9 fail at once.
        lines = []
        for seq in range(1, 13):
            if seq == 5:
                lines.append("%s sleep-exit %.2f 5" % (P, scaled(0.15)))
            elif seq in (7, 9):
                lines.append("exec %s exit %d" % (P, seq))
            else:
                lines.append("exec %s sleep %.3f" % (P, scaled(0.01) * (seq % 3)))
        data = ("\n".join(lines) + "\n").encode()
        reps = 2 if clitest.SCALE > 1 else 3
        for j in (1, 2, 8):
            for rep in range(reps):
                with self.subTest(j=j, rep=rep):
                    r = corral("run", "-j", str(j), "--report", self.path("report.jsonl"),
                               input=data)
                    self.assertEqual(r.rc, 5, r)
                    recs, summ = self.report()
                    self.assertEqual((summ["verdict_seq"], summ["verdict"], summ["exit_code"]),
                                     (5, "exit", 5))
                    self.assertEqual(summ["tasks"], 12)
                    f = finals_by_seq(recs)
                    for seq in range(1, 5):
                        self.assertEqual(f[seq]["outcome"], "ok")
                    self.assertEqual(f[5]["status"], 5)
                    for seq in range(6, 13):
                        self.assertIn(f[seq]["outcome"], ("ok", "exit", "cancelled", "aborted"))
                    if j == 1:
                        self.assertEqual(summ["outcomes"]["cancelled"], 7)
                    self.assertEqual(r.err_lines[0], "corral: task 5 failed: it exited with status 5")

    def _halt_batch(self):
        s = clitest.SCALE
        return ("\n".join([
            "%s sleep-exit %.2f 0" % (P, 1.0 * s),  # 1: ok, slow
            "%s sleep-exit %.2f 3" % (P, 0.5 * s),  # 2: fails second
            "exec %s exit 5" % P,                   # 3: fails first
            "exec %s sleep 30" % P,                 # 4: running when it halts
            "true", "true", "true", "true",         # 5-8: queued (-j 4)
        ]) + "\n").encode()

    def test_halt_ordered(self):
        r = corral("run", "-j", "4", "--halt", "ordered", "--report", self.path("report.jsonl"),
                   input=self._halt_batch())
        self.assertEqual(r.rc, 3, r)
        recs, summ = self.report()
        f = finals_by_seq(recs)
        self.assertEqual([f[i]["outcome"] for i in range(1, 9)],
                         ["ok", "exit", "exit", "aborted"] + ["cancelled"] * 4)
        self.assertEqual((summ["verdict_seq"], summ["exit_code"]), (2, 3))
        self.assertEqual(summ["outcomes"]["cancelled"], 4)
        self.assertEqual(summ["outcomes"]["aborted"], 1)
        self.assertLess(f[4]["wall_time"], scaled(5))
        self.assertEqual(r.err_lines, ["corral: task 2 failed: it exited with status 3",
                                       "corral: 8 tasks: 1 ok, 2 exit, 4 cancelled, 1 aborted"])

    def test_halt_now(self):
        r = corral("run", "-j", "4", "--halt", "now", "--report", self.path("report.jsonl"),
                   input=self._halt_batch())
        self.assertEqual(r.rc, 5, r)
        recs, summ = self.report()
        f = finals_by_seq(recs)
        self.assertEqual([f[i]["outcome"] for i in range(1, 9)],
                         ["aborted", "aborted", "exit", "aborted"] + ["cancelled"] * 4)
        self.assertEqual((summ["verdict_seq"], summ["exit_code"]), (3, 5))
        self.assertEqual((summ["outcomes"]["aborted"], summ["outcomes"]["cancelled"]), (3, 4))
        # Task 1 (1 s) was killed, not waited for.
        self.assertLess(f[1]["wall_time"], scaled(1.0))

    def test_halt_never(self):
        r = corral("run", "-j", "4", "--halt", "never", "-t", "%.1fs" % scaled(1.5), "--report",
                   self.path("report.jsonl"), input=self._halt_batch())
        self.assertEqual(r.rc, 3, r)
        recs, summ = self.report()
        f = finals_by_seq(recs)
        self.assertEqual([f[i]["outcome"] for i in range(1, 9)],
                         ["ok", "exit", "exit", "timeout"] + ["ok"] * 4)
        self.assertEqual((summ["verdict_seq"], summ["exit_code"]), (2, 3))
        self.assertEqual((summ["outcomes"]["aborted"], summ["outcomes"]["cancelled"]), (0, 0))


class RetriesAndAdmission(CliTest):
    def test_oom_retry_grows_memory(self):
        r = corral("run", "-m", "32M", "--retries", "3", "--report", self.path("report.jsonl"),
                   P, "alloc", ":::", "48")
        self.assertEqual(r.rc, 0, r)
        recs, _ = self.report()
        self.assertEqual([(x["attempt"], x["outcome"], x["memory_max"]) for x in recs],
                         [(1, "oom", 32 << 20), (2, "ok", 64 << 20)])
        # --memory-growth 1.5: 32M -> 48M -> 72M.
        r = corral("run", "-m", "32M", "--retries", "3", "--memory-growth", "1.5", "--report",
                   self.path("report.jsonl"), P, "alloc", ":::", "56")
        self.assertEqual(r.rc, 0, r)
        recs, _ = self.report()
        self.assertEqual([(x["attempt"], x["outcome"], x["memory_max"]) for x in recs],
                         [(1, "oom", 32 << 20), (2, "oom", 48 << 20), (3, "ok", 72 << 20)])

    def test_memory_ceiling(self):
        # 32M x4 = 128M, capped at 100M: enough for 60 MiB.
        r = corral("run", "-m", "32M", "--retries", "2", "--memory-growth", "4",
                   "--memory-ceiling", "100M", "--report", self.path("report.jsonl"), P, "alloc",
                   ":::", "60")
        self.assertEqual(r.rc, 0, r)
        recs, _ = self.report()
        self.assertEqual([(x["attempt"], x["outcome"], x["memory_max"]) for x in recs],
                         [(1, "oom", 32 << 20), (2, "ok", 100 << 20)])
        # Never above the ceiling: the last attempt still fails.
        r = corral("run", "-m", "32M", "--retries", "2", "--memory-ceiling", "40M", "--report",
                   self.path("report.jsonl"), P, "alloc", ":::", "60")
        self.assertEqual(r.rc, 137, r)
        recs, summ = self.report()
        self.assertEqual([(x["attempt"], x["outcome"], x["memory_max"]) for x in recs],
                         [(1, "oom", 32 << 20), (2, "oom", 40 << 20), (3, "oom", 40 << 20)])
        self.assertEqual(summ["attempts"], 3)

    def test_retry_on(self):
        m = self.path("marker")
        # Fails with 4 the first time, succeeds after.
        script = 'if [ -e "$1" ]; then exit 0; fi; : > "$1"; exit 4'
        r = corral("run", "--retries", "2", "--report", self.path("report.jsonl"), "sh", "-c",
                   script, "sh", ":::", m)
        self.assertEqual(r.rc, 4, r)  # default --retry-on oom: no retry
        recs, _ = self.report()
        self.assertEqual(len(recs), 1)
        os.unlink(m)
        r = corral("run", "--retries", "2", "--retry-on", "exit", "--report",
                   self.path("report.jsonl"), "sh", "-c", script, "sh", ":::", m)
        self.assertEqual(r.rc, 0, r)
        recs, _ = self.report()
        self.assertEqual([(x["attempt"], x["outcome"], x["final"]) for x in recs],
                         [(1, "exit", False), (2, "ok", True)])
        os.unlink(m)
        script = 'if [ -e "$1" ]; then exit 0; fi; : > "$1"; exec "$0" sleep 30'
        r = corral("run", "-t", "%.1fs" % scaled(1), "--retries", "1", "--retry-on", "oom,timeout",
                   "--report",
                   self.path("report.jsonl"), "sh", "-c", script, P, ":::", m)
        self.assertEqual(r.rc, 0, r)
        recs, _ = self.report()
        self.assertEqual([(x["attempt"], x["outcome"]) for x in recs], [(1, "timeout"), (2, "ok")])

    def test_jobs(self):
        d = "%.2f" % scaled(0.25)
        for opt, j, n in (("-j", 1, 2), ("-j", 3, 4), ("--jobs", 2, 3)):
            r = corral("run", opt, str(j), "--report", self.path("report.jsonl"), P, "sleep",
                       ":::", *[d] * n)
            self.assertEqual(r.rc, 0, r)
            recs, _ = self.report()
            self.assertEqual(max_concurrency(recs), j, intervals(recs))

    def test_memory_budget(self):
        d = "%.2f" % scaled(0.3)
        r = corral("run", "-j", "4", "-m", "64M", "--memory-budget", "100M", "--report",
                   self.path("report.jsonl"), P, "sleep", ":::", d, d, d)
        self.assertEqual(r.rc, 0, r)
        recs, _ = self.report()
        iv = intervals(recs)
        self.assertEqual(len(iv), 3)
        for (s1, e1), (s2, e2) in zip(iv, iv[1:]):
            self.assertGreaterEqual(s2, e1 - 0.005, iv)
        self.assertEqual(max_concurrency(recs), 1)
        # A budget that fits two: two at once.
        r = corral("run", "-j", "4", "-m", "64M", "--memory-budget", "128M", "--report",
                   self.path("report.jsonl"), P, "sleep", ":::", d, d, d)
        recs, _ = self.report()
        self.assertEqual(max_concurrency(recs), 2, intervals(recs))


class Timeouts(CliTest):
    def test_run_timeout(self):
        t = "%.1fs" % scaled(0.5)
        r = corral("run", "-j", "2", "--timeout", t, "--report", self.path("report.jsonl"),
                   P, "sleep", ":::", "0.01", "30")
        self.assertEqual(r.rc, 124, r)
        recs, summ = self.report()
        f = finals_by_seq(recs)
        self.assertEqual((f[1]["outcome"], f[2]["outcome"]), ("ok", "timeout"))
        m = re.match(r"task 2 timed out: corral killed it after (\d+\.\d)s$", f[2]["sentence"])
        self.assertTrue(m, f[2]["sentence"])
        self.assertAlmostEqual(float(m.group(1)), float(t[:-1]), delta=0.1 * clitest.SCALE)
        self.assertGreaterEqual(f[2]["wall_time"], float(t[:-1]) - 0.01)
        self.assertLess(f[2]["wall_time"], scaled(3))
        # (ms scaled: under the VM's TCG, starting `true` can take 250 ms.)
        for t in ("1m", "1h30m", "%dms" % (250 * clitest.SCALE), "2"):
            r = corral("run", "-t", t, "true", ":::", "x")
            self.assertEqual(r.rc, 0, t)

    def test_kill_after(self):
        t = "%.1fs" % scaled(0.5)
        trap = 'trap "echo term; exit 0" TERM; echo ready; "$0" sleep 30 & wait'
        # --kill-after: SIGTERM first; the task cleans up and exits 0, and
        # still timed out.
        r = corral("exec", "-t", t, "--kill-after", "%ds" % scaled(20), "--report",
                   self.path("report.jsonl"), "--", "sh", "-c", trap, P)
        self.assertEqual(r.rc, 124, r)
        self.assertEqual(r.out, b"ready\nterm\n")
        self.assertLess(r.elapsed, scaled(10))
        recs, _ = self.report()
        self.assertEqual((recs[0]["outcome"], recs[0]["status"]), ("timeout", 124))
        # Without it: SIGKILL at once, the trap never runs.
        r = corral("exec", "-t", t, "--", "sh", "-c", trap, P)
        self.assertEqual((r.rc, r.out), (124, b"ready\n"), r)
        # A task that ignores SIGTERM is killed when the grace ends.
        t, grace = scaled(0.2), scaled(0.3)
        r = corral("run", "-t", "%.1fs" % t, "--kill-after", "%.1fs" % grace, "--report",
                   self.path("report.jsonl"), "sh", "-c", "trap '' TERM; \"$0\" sleep 30", P,
                   ":::", "x")
        self.assertEqual(r.rc, 124, r)
        recs, _ = self.report()
        self.assertEqual(recs[0]["outcome"], "timeout")
        self.assertGreaterEqual(recs[0]["wall_time"], t + grace - 0.01)
        self.assertLess(recs[0]["wall_time"], t + grace + scaled(2))


if __name__ == "__main__":
    unittest.main()
