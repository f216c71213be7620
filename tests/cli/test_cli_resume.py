"""CLI tests: --resume and --resume-failed with --joblog (issue 18).

A batch SIGKILLed half-way, then resumed, runs every task exactly once
overall (each task appends its number to a file when it ends) and ends with
the verdict an uninterrupted run has; an earlier run's failure halts the
resumed batch where an uninterrupted ordered run would have; a torn last
joblog line loses no finished task; GNU parallel reads corral's joblog (when
it is installed; the rest needs only corral).
"""
import json
import os
import shutil
import signal
import subprocess
import unittest

from clitest import (PAYLOAD, CliTest, corral, leftover_cgroups, read_joblog, scaled, setUpModule,
                     spawn, wait_until)

assert setUpModule

# A task: $0 = its directory, $1 = its number, $2 = what it does:
#   ok          end at once
#   hold        wait for $0/gate first
#   hold2       wait for $0/gate2 (never created: it ends only when killed)
#   fail:N      exit N (0 once $0/fixed exists)
#   holdfail:N  wait for the gate, then exit N if $0/fail-now exists
# It appends its number to $0/ran as it ends (not when killed).
TASK = r'''
d=$0; seq=$1; what=$2
case $what in
hold2) while :; do "$P" sleep 0.05; done ;;
hold*) while [ ! -e "$d/gate" ]; do "$P" sleep 0.02; done ;;
esac
echo "$seq" >> "$d/ran"
case $what in
fail:*) [ -e "$d/fixed" ] || exit "${what#fail:}" ;;
holdfail:*) [ -e "$d/fail-now" ] && exit "${what#holdfail:}" ;;
esac
exit 0
'''


class Resume(CliTest):
    def setUp(self):
        super().setUp()
        self.env = dict(os.environ, P=PAYLOAD)

    def args(self, d, *opts):
        return ["run", *opts, "--joblog", os.path.join(d, "joblog"), "--report",
                os.path.join(d, "report.jsonl"), "sh", "-c", TASK, d, "{#}", "{}"]

    def ran(self, d):
        try:
            with open(os.path.join(d, "ran")) as f:
                return sorted(int(x) for x in f.read().split())
        except FileNotFoundError:
            return []

    def joblog_rows(self, d):
        p = os.path.join(d, "joblog")
        if not os.path.exists(p):
            return 0
        with open(p, "rb") as f:
            return max(f.read().count(b"\n") - 1, 0)

    def report_size(self, d):
        return os.path.getsize(os.path.join(d, "report.jsonl"))

    def reports(self, d, since=0):
        """The report file's runs from byte since on: [(records, summary)],
        one per run that ended (a killed run writes no summary)."""
        runs, recs = [], []
        with open(os.path.join(d, "report.jsonl"), "rb") as f:
            f.seek(since)
            for line in f:
                o = json.loads(line)
                if "summary" in o:
                    runs.append((recs, o["summary"]))
                    recs = []
                else:
                    recs.append(o)
        if recs:
            runs.append((recs, None))
        return runs

    def killed_half_way(self, d, items, opts, done_rows):
        """Start the batch, wait until the joblog has done_rows lines (the
        tasks before the held ones), SIGKILL corral, wait until its tasks
        and cgroups are gone."""
        os.makedirs(d, exist_ok=True)
        p = spawn(self.args(d, *opts) + [":::"] + items, stdin=subprocess.DEVNULL,
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env)
        try:
            self.assertTrue(wait_until(lambda: self.joblog_rows(d) >= done_rows, scaled(30)),
                            "the joblog never had %d lines" % done_rows)
        finally:
            os.kill(p.pid, signal.SIGKILL)
            p.communicate(timeout=scaled(10))
        # The watchdog kills the running tasks and removes their cgroups.
        self.assertTrue(wait_until(lambda: not leftover_cgroups([p.pid]), scaled(20)),
                        "the killed batch left cgroups")
        return p

    def uninterrupted(self, d, items, opts):
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, "gate"), "w").close()
        r = corral(*self.args(d, *opts), ":::", *items, env=self.env)
        return r, self.reports(d)[-1][1]

    def test_kill_then_resume_halt_never(self):
        # Task 5 fails before the kill; 9..20 wait for the gate and are
        # killed (running) or never started.
        items = ["ok"] * 4 + ["fail:7"] + ["ok"] * 3 + ["hold"] * 12
        d = self.path("a")
        self.killed_half_way(d, items, ["-j3", "--halt", "never"], 8)
        self.assertEqual(self.ran(d), list(range(1, 9)))
        open(os.path.join(d, "gate"), "w").close()
        first = self.read(os.path.join(d, "report.jsonl"))
        r = corral(*self.args(d, "-j3", "--halt", "never", "--resume"), ":::", *items,
                   env=self.env)
        self.assertEqual(r.rc, 7, r)
        self.assertEqual(self.ran(d), list(range(1, 21)), "each task exactly once")
        self.assertTrue(self.read(os.path.join(d, "report.jsonl")).startswith(first),
                        "the report is appended to")
        runs = self.reports(d, len(first))
        self.assertEqual(len(runs), 1)
        recs, summ = runs[-1]
        # Records for the re-run tasks only, with their own numbers.
        self.assertEqual(sorted(x["seq"] for x in recs), list(range(9, 21)))
        for x in recs:
            self.assertTrue(x["sentence"].startswith("task %d " % x["seq"]), x)
        want, wsum = self.uninterrupted(self.path("ref"), items, ["-j3", "--halt", "never"])
        self.assertEqual(want.rc, 7)
        self.assertEqual((summ["verdict_seq"], summ["verdict"], summ["exit_code"]),
                         (wsum["verdict_seq"], wsum["verdict"], wsum["exit_code"]))
        self.assertEqual(summ["verdict_seq"], 5)
        self.assertIn("task 5 failed in an earlier run", r.err_lines[0])
        self.assertIn("8 done in an earlier run", r.err_lines[-1])
        rows = read_joblog(self, os.path.join(d, "joblog"))
        self.assertEqual(sorted(x["seq"] for x in rows), list(range(1, 21)))

        # --resume-failed: task 5 runs again (and now succeeds); nothing else.
        open(os.path.join(d, "fixed"), "w").close()
        r = corral(*self.args(d, "-j3", "--halt", "never", "--resume-failed"), ":::", *items,
                   env=self.env)
        self.assertEqual((r.rc, r.err), (0, b""), r)
        self.assertEqual(self.ran(d), sorted(list(range(1, 21)) + [5]))
        rows = read_joblog(self, os.path.join(d, "joblog"))
        self.assertEqual((rows[-1]["seq"], rows[-1]["exitval"]), (5, 0))
        self.assertEqual(len(rows), 21)
        # ... and then everything is done.
        r = corral(*self.args(d, "-j3", "--resume"), ":::", *items, env=self.env)
        self.assertEqual((r.rc, r.err), (0, b""), r)
        self.assertEqual(len(self.ran(d)), 21)

    def test_kill_then_resume_ordered(self):
        # The failure (task 8) comes after the kill: the resumed batch halts
        # there as the uninterrupted one does; 9..12 never end by themselves.
        items = ["ok"] * 4 + ["hold"] * 3 + ["holdfail:9"] + ["hold2"] * 4
        d = self.path("b")
        self.killed_half_way(d, items, ["-j2"], 4)
        open(os.path.join(d, "gate"), "w").close()
        open(os.path.join(d, "fail-now"), "w").close()
        r = corral(*self.args(d, "-j2", "--resume"), ":::", *items, env=self.env)
        self.assertEqual(r.rc, 9, r)
        self.assertEqual(self.ran(d), list(range(1, 9)))
        summ = self.reports(d)[-1][1]
        ref = self.path("ref")
        os.makedirs(ref)
        open(os.path.join(ref, "fail-now"), "w").close()
        want, wsum = self.uninterrupted(ref, items, ["-j2"])
        self.assertEqual(want.rc, 9)
        self.assertEqual(self.ran(ref), list(range(1, 9)))
        self.assertEqual((summ["verdict_seq"], summ["verdict"], summ["exit_code"], summ["sentence"]),
                         (wsum["verdict_seq"], wsum["verdict"], wsum["exit_code"],
                          wsum["sentence"]))
        # The joblog has no line for the tasks the halt aborted or cancelled.
        rows = read_joblog(self, os.path.join(d, "joblog"))
        self.assertEqual(sorted(x["seq"] for x in rows), list(range(1, 9)))
        # Resumed again: task 8's failure halts before anything runs.
        r = corral(*self.args(d, "-j2", "--resume"), ":::", *items, env=self.env)
        self.assertEqual(r.rc, 9, r)
        self.assertEqual(self.ran(d), list(range(1, 9)))
        self.assertEqual(r.err_lines[0], "corral: task 8 failed in an earlier run: the joblog "
                         "records exit value 9")

    def test_old_failure_halts_the_resumed_batch(self):
        # Task 3 failed and task 2 still ran when corral was killed: the
        # resumed batch runs task 2 and nothing after 3 (ordered halt).
        items = ["ok", "holdfail:4", "fail:5", "hold2", "hold2", "ok"]
        for name, fail2, code, verdict in (("c", False, 5, 3), ("c2", True, 4, 2)):
            d = self.path(name)
            self.killed_half_way(d, items, ["-j3"], 2)
            self.assertEqual(self.ran(d), [1, 3])
            open(os.path.join(d, "gate"), "w").close()
            if fail2:
                open(os.path.join(d, "fail-now"), "w").close()
            since = self.report_size(d)
            r = corral(*self.args(d, "-j3", "--resume"), ":::", *items, env=self.env)
            self.assertEqual(r.rc, code, r)
            self.assertEqual(self.ran(d), [1, 2, 3])
            recs, summ = self.reports(d, since)[-1]
            self.assertEqual([x["seq"] for x in recs], [2])
            self.assertEqual((summ["verdict_seq"], summ["exit_code"]), (verdict, code))
            ref = self.path(name + "-ref")
            os.makedirs(ref)
            if fail2:
                open(os.path.join(ref, "fail-now"), "w").close()
            want, wsum = self.uninterrupted(ref, items, ["-j3"])
            self.assertEqual((want.rc, wsum["verdict_seq"]), (code, verdict))
            # (Uninterrupted, task 3 runs beside task 2: when 2 fails first,
            # 3 is aborted or has ended, whichever came first.)
            self.assertIn(self.ran(ref), ([1, 2], [1, 2, 3]) if fail2 else ([1, 2, 3],))
        # --halt now: the earlier failure ends the batch; nothing runs.
        d = self.path("now")
        os.makedirs(d)
        r = corral(*self.args(d, "-j1"), ":::", "ok", "fail:6", "ok", env=self.env)
        self.assertEqual((r.rc, self.ran(d)), (6, [1, 2]))
        r = corral(*self.args(d, "-j1", "--halt", "now", "--resume"), ":::", "ok", "fail:6",
                   "ok", env=self.env)
        self.assertEqual((r.rc, self.ran(d)), (6, [1, 2]))

    def test_torn_last_line(self):
        d = self.path("t")
        os.makedirs(d)
        items = ["ok"] * 5
        r = corral(*self.args(d, "-j1"), ":::", *items, env=self.env)
        self.assertEqual(r.rc, 0, r)
        jl = os.path.join(d, "joblog")
        with open(jl, "rb") as f:
            full = f.read()
        lines = full.split(b"\n")[:-1]
        # 1. Only the newline is missing: task 5 counts, the newline is added.
        with open(jl, "wb") as f:
            f.write(full[:-1])
        r = corral(*self.args(d, "-j1", "--resume"), ":::", *items, env=self.env)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(b"completed it", r.err)
        self.assertEqual(self.ran(d), [1, 2, 3, 4, 5])
        self.assertEqual(self.read(jl), full)
        # 2. Cut inside the command: exit value and signal are there: counts.
        cut = b"\n".join(lines[:-1]) + b"\n" + lines[-1][:lines[-1].rindex(b"\t") + 4]
        with open(jl, "wb") as f:
            f.write(cut)
        r = corral(*self.args(d, "-j1", "--resume"), ":::", *items, env=self.env)
        self.assertEqual((r.rc, self.ran(d)), (0, [1, 2, 3, 4, 5]), r)
        self.assertEqual(self.read(jl), cut + b"\n")
        # 3. Cut before the exit value: the line tells nothing, it is cut off
        # and task 5 runs again (it had not been recorded as ended).
        cols = lines[-1].split(b"\t")
        torn = b"\t".join(cols[:6]) + b"\t"
        with open(jl, "wb") as f:
            f.write(b"\n".join(lines[:-1]) + b"\n" + torn)
        r = corral(*self.args(d, "-j1", "--resume"), ":::", *items, env=self.env)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(b"dropped an incomplete last line", r.err)
        self.assertEqual(self.ran(d), [1, 2, 3, 4, 5, 5])
        rows = read_joblog(self, jl)
        self.assertEqual([x["seq"] for x in rows], [1, 2, 3, 4, 5])
        # 4. A torn header: as if there were no joblog.
        with open(jl, "wb") as f:
            f.write(b"Seq\tHo")
        r = corral(*self.args(d, "-j1", "--resume"), ":::", "ok", env=self.env)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(read_joblog(self, jl)), 1)
        # GNU parallel reads the repaired joblogs too.
        if shutil.which("parallel"):
            g = subprocess.run(["parallel", "--will-cite", "--resume-failed", "--dry-run",
                                "--joblog", jl, "-j1", "echo", ":::", "a", "b", "c"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, HOME=self.tmp))
            self.assertEqual((g.returncode, g.stdout), (0, b"echo b\necho c\n"), g.stderr)

    def test_bad_joblogs(self):
        d = self.path("bad")
        os.makedirs(d)
        jl = os.path.join(d, "joblog")
        for data, needle in ((b"not a joblog\n1\t:\t1\n", "not a joblog"),
                             (b"Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal"
                              b"\tCommand\n1\t:\t1.0\t0.5\t0\t0\tx\t0\tcmd\n", "line 2"),
                             (b"garbage without a newline", "not a joblog")):
            with open(jl, "wb") as f:
                f.write(data)
            r = corral(*self.args(d, "--resume"), ":::", "ok", env=self.env)
            self.assertOneErrorLine(r, needle, jl)
            self.assertEqual(self.read(jl), data, "a bad joblog is left as it is")
        self.assertEqual(self.ran(d), [])
        r = corral("run", "--resume", "echo", ":::", "x")
        self.assertOneErrorLine(r, "--resume", "--joblog")

    def test_keep_order_and_dry_run(self):
        d = self.path("k")
        os.makedirs(d)
        jl = os.path.join(d, "joblog")
        r = corral("run", "-k", "-j1", "--joblog", jl, "sh", "-c", 'echo "$0"; [ "$0" != c ]',
                   ":::", "a", "b", "c", "d", "e")
        self.assertEqual((r.rc, r.out), (1, b"a\nb\nc\n"), r)
        # --resume-failed with -k: the tasks that run print in their order.
        r = corral("run", "-k", "-j3", "--resume-failed", "--halt", "never", "--joblog", jl,
                   "sh", "-c", 'echo "$0"', ":::", "a", "b", "c", "d", "e")
        self.assertEqual((r.rc, r.out), (0, b"c\nd\ne\n"), r)
        # --dry-run --resume prints what would run, and changes no file.
        before = self.read(jl)
        r = corral("run", "--dry-run", "--resume", "--joblog", jl, "echo", ":::", "a", "b", "c",
                   "d", "e", "f", "g")
        self.assertEqual((r.rc, r.out), (0, b"echo f\necho g\n"), r)
        self.assertEqual(self.read(jl), before)

    def test_gnu_parallel_reads_corrals_joblog(self):
        if not shutil.which("parallel"):
            if os.environ.get("CORRAL_NO_SKIP") == "1":
                self.fail("GNU parallel is not installed (scripts/install-deps.sh test)")
            self.skipTest("GNU parallel is not installed")
        jl = self.path("joblog")
        # ok, exit 3, SIGKILL, OOM-killed then ok on its retry, a subprocess
        # OOM under a main process that exited 0, ok.
        cmds = ["true", "exit 3", "kill -9 $$", "%s alloc 48" % PAYLOAD,
                "%s alloc 200 & wait; exit 0" % PAYLOAD, "true"]
        r = corral("run", "-m", "32M", "--retries", "1", "--halt", "never", "--joblog", jl,
                   input=("\n".join(cmds) + "\n").encode())
        self.assertNotEqual(r.rc, 0, r)
        rows = read_joblog(self, jl)
        self.assertEqual(len(rows), 6)
        failed = sorted(x["seq"] for x in rows if x["exitval"] or x["signal"])
        self.assertEqual(failed, [2, 3, 5])
        g = subprocess.run(["parallel", "--will-cite", "--resume-failed", "--dry-run", "--joblog",
                            jl, "-j1", "echo", ":::", "1", "2", "3", "4", "5", "6", "7"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=dict(os.environ, HOME=self.tmp))
        self.assertEqual((g.returncode, g.stdout), (0, b"echo 2\necho 3\necho 5\necho 7\n"),
                         g.stderr)


if __name__ == "__main__":
    unittest.main()
