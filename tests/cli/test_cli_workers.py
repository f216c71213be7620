"""The head of a batch over several nodes without Slurm: `corral run --workers
CMD --nodes LIST`, each "node" a `corral worker` on this host behind a small
launcher script whose behaviour the test picks per node (a normal worker, one
SIGKILLed mid-task, one that stops answering, one that speaks garbage, one
that cannot start). The same head and policy as `--slurm` (tests/slurm has
those on a real cluster); here in the host and VM lanes, in seconds.

Checks: tasks spread over the nodes and records carry the node; an OOM comes
back attributed with its node; a lost worker (killed, silent, garbage) ends
its attempts as `lost`, they run again elsewhere and the batch ends well;
--lost-retries 0 makes a lost task final (exit 255); no worker left aborts
the batch with the reason; SIGINT to the head leaves no worker, task or
cgroup; the verdict equals single-node corral's over randomized batches; bad
usage is one line, exit 125.
"""
import os
import random
import signal
import subprocess
import time
import unittest

import clitest
from clitest import setUpModule  # noqa: F401  (skips without root/cgroups)

LAUNCHER = r"""#!/bin/sh
# launcher NODE: what the file modes/NODE says (default: a normal worker).
node=$1
dir=$(dirname "$0")
mode=ok
[ -f "$dir/modes/$node" ] && mode=$(cat "$dir/modes/$node")
echo $$ > "$dir/launcher.$node"
export SLURMD_NODENAME=$node   # the node name the worker announces
case $mode in
ok)
	echo $$ > "$dir/pid.$node"
	exec "$CORRAL_BIN" worker ;;
kill-busy*|stop-busy*)
	# When the worker runs a task (a child that is neither its spawner nor
	# its watchdog), wait the delay, then kill or stop it: a loss while an
	# attempt is in flight, however slow the machine.
	exec 3<&0
	"$CORRAL_BIN" worker <&3 3<&- &
	w=$!
	echo $w > "$dir/pid.$node"
	busy=
	while [ -z "$busy" ]; do
		kill -0 $w 2>/dev/null || exit 1
		for c in $(cat /proc/$w/task/*/children 2>/dev/null); do
			case $(cat /proc/$c/comm 2>/dev/null) in
			corral-spawner | corral-watchdog | '') ;;
			*) busy=$c ;;
			esac
		done
		[ -n "$busy" ] || sleep 0.02
	done
	sleep ${mode#* }
	case $mode in
	kill-busy*) kill -KILL $w; wait $w; exit 137 ;;
	*) kill -STOP $w; exec sleep 1000 ;;
	esac ;;
garbage)
	printf 'garbage, not a frame\n'
	exec sleep 1000 ;;
fail)
	echo "no corral here" >&2
	exit 3 ;;
esac
"""


class WorkersTest(clitest.CliTest):
    def setUp(self):
        super().setUp()
        self.launcher = self.write("launcher", LAUNCHER)
        os.chmod(self.launcher, 0o755)
        os.mkdir(self.path("modes"))
        self.env = dict(os.environ, CORRAL_BIN=clitest.BIN)

    def tearDown(self):
        self.end_workers()
        super().tearDown()

    def end_workers(self):
        """Whatever a test left (a stopped worker): ended by pid, ours."""
        for name in os.listdir(self.tmp):
            if name.startswith(("pid.", "launcher.")):
                pid = int(self.read(name) or b"0")
                if pid > 0 and clitest.pid_alive(pid):
                    for s in (signal.SIGCONT, signal.SIGKILL):
                        try:
                            os.kill(pid, s)
                        except ProcessLookupError:
                            pass

    def mode(self, node, what):
        self.write(os.path.join("modes", node), what)

    def worker_pids(self, nodes):
        out = []
        for n in nodes:
            p = self.path("pid." + n)
            if os.path.exists(p):
                out.append(int(self.read(p)))
        return out

    def run_head(self, *args, nodes="a,b", timeout=60, **kw):
        return clitest.corral("run", "--workers", self.launcher + " {node}", "--nodes", nodes,
                              *args, env=self.env, timeout=clitest.scaled(timeout), **kw)

    def assert_launchers_gone(self, nodes):
        """The head ends a lost worker's command, not only the /bin/sh -c
        it started it with (dash forks the command: the head's signal to the
        shell alone left the launcher's `exec sleep 1000` running)."""
        pids = [int(self.read(n)) for n in ("launcher." + x for x in nodes)
                if os.path.exists(self.path(n))]
        self.assertEqual(len(pids), len(nodes), "no launcher pid recorded")
        self.assert_pids_gone(pids, "a launcher")

    def assert_pids_gone(self, pids, what):
        self.assertTrue(clitest.wait_until(lambda: not any(clitest.pid_alive(p) for p in pids),
                                           clitest.scaled(10)),
                        "%s outlived the head: %r" % (what, pids))

    def assert_workers_gone(self, nodes):
        pids = self.worker_pids(nodes)
        self.assertTrue(pids, "no worker pid recorded")
        self.assert_pids_gone(pids, "a worker")
        self.assertTrue(clitest.wait_until(lambda: not clitest.leftover_cgroups(pids),
                                           clitest.scaled(5)),
                        "batch cgroups of the workers left: %r" % clitest.leftover_cgroups(pids))

    # ------------------------------------------------------------ the good path

    def test_spread_records_and_joblog(self):
        rep, log = self.path("r.jsonl"), self.path("j.log")
        r = self.run_head("-j", "2", "--report", rep, "--joblog", log, clitest.PAYLOAD,
                          "sleep-exit", "0.2", "0", ":::", *[str(i) for i in range(8)],
                          nodes="a,b")
        self.assertEqual(r.rc, 0, r)
        recs, summ = clitest.read_report(self, rep)
        self.assertEqual(sorted({x["host"] for x in recs}), ["a", "b"])
        self.assertEqual((summ["workers"], summ["workers_lost"]), (2, 0))
        for x in recs:
            self.assertTrue(x["sentence"].endswith("(on %s)" % x["host"]), x)
        rows = clitest.read_joblog(self, log, hosts=True)
        self.assertEqual(sorted({row["host"] for row in rows}), ["a", "b"])
        self.assert_workers_gone(["a", "b"])

    def test_oom_attributed_with_its_node(self):
        rep = self.path("r.jsonl")
        r = self.run_head("-m", "48M", "--report", rep, clitest.PAYLOAD, "alloc", ":::", "8",
                          "300", "8", nodes="n1")
        self.assertEqual(r.rc, 137, r)
        recs, summ = clitest.read_report(self, rep)
        two = clitest.finals_by_seq(recs)[2]
        self.assertEqual((two["outcome"], two["own_limit_hit"], two["host"]), ("oom", True, "n1"))
        self.assertEqual(two["memory_max"], 48 << 20)
        self.assertGreater(two["memory_peak"], 40 << 20)
        self.assertIn("(on n1)", two["sentence"])
        self.assertEqual(summ["verdict_seq"], 2)
        self.assertIn("task 2 was OOM-killed: it exceeded its memory limit", r.err.decode())

    # ------------------------------------------------------------ losses

    def test_worker_killed_its_task_runs_elsewhere(self):
        self.mode("b", "kill-busy 0.1")
        rep = self.path("r.jsonl")
        r = self.run_head("-j", "1", "--report", rep, clitest.PAYLOAD, "sleep", ":::",
                          *["%g" % clitest.scaled(0.5)] * 4)
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.err.decode(), r"corral: worker b lost: its channel closed")
        recs, summ = clitest.read_report(self, rep)
        lost = [x for x in recs if x["outcome"] == "lost"]
        self.assertEqual(len(lost), 1, recs)
        self.assertEqual((lost[0]["final"], lost[0]["host"], lost[0]["status"]), (False, "b", 255))
        self.assertIn("was lost: the worker running it on b was lost", lost[0]["sentence"])
        again = [x for x in recs if x["seq"] == lost[0]["seq"] and x["final"]]
        self.assertEqual((again[0]["outcome"], again[0]["host"], again[0]["attempt"]),
                         ("ok", "a", 2))
        self.assertEqual((summ["workers"], summ["workers_lost"], summ["outcomes"]["ok"]),
                         (2, 1, 4))
        self.assert_workers_gone(["a", "b"])
        self.assert_launchers_gone(["a", "b"])

    def test_silent_worker_is_lost_by_its_timeout(self):
        self.mode("b", "stop-busy 0.1")
        rep = self.path("r.jsonl")
        t0 = time.monotonic()
        r = self.run_head("-j", "1", "--worker-timeout", "%gs" % clitest.scaled(1.5),
                          "--report", rep, clitest.PAYLOAD, "sleep", ":::",
                          *["%g" % clitest.scaled(0.5)] * 4)
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.err.decode(), r"worker b lost: nothing came from it for \d")
        recs, _ = clitest.read_report(self, rep)
        self.assertEqual(sorted(x["host"] for x in recs if x["final"]), ["a"] * 4)
        self.assertLess(time.monotonic() - t0, clitest.scaled(20))
        self.assert_launchers_gone(["a", "b"])

    def test_garbage_worker_is_lost(self):
        self.mode("b", "garbage")
        rep = self.path("r.jsonl")
        r = self.run_head("--report", rep, "true", ":::", "1", "2", "3")
        self.assertEqual(r.rc, 0, r)
        self.assertRegex(r.err.decode(), r"worker b lost: it broke the protocol: .*not a corral frame")
        _, summ = clitest.read_report(self, rep)
        self.assertEqual((summ["workers_lost"], summ["outcomes"]["ok"]), (1, 3))
        self.assert_launchers_gone(["a", "b"])

    def test_no_worker_left(self):
        self.mode("a", "fail")
        self.mode("b", "fail")
        rep = self.path("r.jsonl")
        r = self.run_head("--report", rep, "true", ":::", "1", "2")
        self.assertEqual(r.rc, 125, r)
        err = r.err.decode()
        self.assertIn("corral: no worker is left: the last one,", err)
        self.assertIn("it said: no corral here", err)
        self.assertIn("exited with status 3", err)
        recs, summ = clitest.read_report(self, rep)
        self.assertEqual(summ["outcomes"]["cancelled"], 2)
        self.assertTrue(summ["aborted"])
        self.assertEqual(summ["workers_lost"], 2)

    def test_lost_final_without_lost_retries(self):
        self.mode("a", "kill-busy 0.1")
        rep = self.path("r.jsonl")
        r = self.run_head("--lost-retries", "0", "--report", rep, clitest.PAYLOAD, "sleep",
                          ":::", "30", nodes="a")
        self.assertEqual(r.rc, 255, r)
        recs, summ = clitest.read_report(self, rep)
        self.assertEqual([(x["outcome"], x["final"]) for x in recs], [("lost", True)])
        self.assertEqual((summ["verdict_seq"], summ["verdict"]), (1, "lost"))
        self.assertIn("task 1 was lost", r.err.decode())

    # ------------------------------------------------------------ the head's end

    def test_sigint_leaves_nothing(self):
        marks = self.path("marks")
        os.mkdir(marks)
        p = clitest.spawn(["run", "--workers", self.launcher + " {node}", "--nodes", "a,b",
                           "-j", "2", "--report", self.path("r.jsonl"), "sh", "-c",
                           "touch %s/$0.$$; exec sleep 60" % marks, ":::", "1", "2", "3", "4",
                           "5"],
                          env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertTrue(clitest.wait_until(lambda: len(os.listdir(marks)) >= 4,
                                           clitest.scaled(20)), "the tasks did not start")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=clitest.scaled(30))
        self.assertEqual(p.returncode, 130, err)
        recs, summ = clitest.read_report(self, self.path("r.jsonl"))
        self.assertEqual(summ["outcomes"]["aborted"], 4, recs)
        self.assertEqual(summ["outcomes"]["cancelled"], 1)
        self.assertEqual(sorted(x["host"] for x in recs if x["outcome"] == "aborted"),
                         ["a", "a", "b", "b"])
        self.assert_workers_gone(["a", "b"])

    def test_head_sigkilled_workers_clean_up(self):
        marks = self.path("marks")
        os.mkdir(marks)
        p = clitest.spawn(["run", "--workers", self.launcher + " {node}", "--nodes", "a",
                           "-j", "2", "sh", "-c", "touch %s/$0; exec sleep 60" % marks, ":::",
                           "1", "2"], env=self.env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
        self.assertTrue(clitest.wait_until(lambda: len(os.listdir(marks)) >= 2,
                                           clitest.scaled(20)))
        p.kill()
        p.wait()
        # The channel closed: the worker kills its tasks and leaves.
        self.assert_workers_gone(["a"])

    def test_slow_reader_loses_no_worker(self):
        """A reader of the head's stdout that stops reading (a pager) for
        several worker timeouts: the head keeps heartbeating (its output
        thread blocks, not its loop); no worker is lost and every byte comes."""
        p = clitest.spawn(["run", "--workers", self.launcher + " {node}", "--nodes", "a,b",
                           "-j", "2", "--worker-timeout", "%gs" % clitest.scaled(1),
                           "--report", self.path("r.jsonl"), clitest.PAYLOAD, "write",
                           ":::", *["100000"] * 8],
                          env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(clitest.scaled(4))  # nobody reads: the pipe is full long before
        out, err = p.communicate(timeout=clitest.scaled(60))
        self.assertEqual(p.returncode, 0, err)
        self.assertNotIn(b"lost", err)
        self.assertEqual(len(out), 8 * 100000)
        self.assertEqual(out, clitest.pattern(100000) * 8)
        _, summ = clitest.read_report(self, self.path("r.jsonl"))
        self.assertEqual(summ["workers_lost"], 0)

    # ------------------------------------------------------------ one machine's verdict

    def test_verdict_equals_single_node(self):
        seed = int(os.environ.get("CORRAL_TEST_SEED", "0")) or random.randrange(1 << 30)
        rnd = random.Random(seed)
        for batch in range(6):
            items = []
            for _ in range(rnd.randrange(4, 12)):
                k = rnd.random()
                if k < 0.6:
                    items.append("sleep-exit %.2f 0" % rnd.choice((0, 0.05, 0.2)))
                elif k < 0.8:
                    items.append("sleep-exit %.2f %d" % (rnd.choice((0, 0.1)), rnd.randrange(1, 4)))
                else:
                    items.append("alloc 200")
            halt = rnd.choice(("ordered", "never"))
            args = ["-m", "48M", "--halt", halt, "--report"]
            one = clitest.corral("run", "-j", "3", *args, self.path("one.jsonl"), "sh", "-c",
                                 clitest.PAYLOAD + " $0", ":::", *items,
                                 timeout=clitest.scaled(60))
            many = self.run_head("-j", "1", *args, self.path("many.jsonl"), "sh", "-c",
                                 clitest.PAYLOAD + " $0", ":::", *items, nodes="a,b,c")
            what = "seed %d batch %d (%s, --halt %s)" % (seed, batch, items, halt)
            self.assertEqual(one.rc, many.rc, what)
            r1, s1 = clitest.read_report(self, self.path("one.jsonl"))
            r2, s2 = clitest.read_report(self, self.path("many.jsonl"))
            self.assertEqual((s1["verdict_seq"], s1["verdict"]), (s2["verdict_seq"], s2["verdict"]),
                             what)
            f1, f2 = clitest.finals_by_seq(r1), clitest.finals_by_seq(r2)
            upto = s1["verdict_seq"] or len(items)
            for seq in range(1, upto + 1):
                self.assertEqual(f1[seq]["outcome"], f2[seq]["outcome"], "%s task %d" % (what, seq))

    # ------------------------------------------------------------ usage

    def test_bad_usage(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        self.assertOneErrorLine(clitest.corral("run", "--slurm", "true", ":::", "1", env=env),
                                "SLURM_JOB_ID is not set")
        self.assertOneErrorLine(clitest.corral("run", "--workers", "ssh x corral worker",
                                               "--nodes", "a", "true", ":::", "1"), "{node}")
        self.assertOneErrorLine(clitest.corral("run", "--workers", "ssh {node} corral worker",
                                               "true", ":::", "1"), "--nodes")
        self.assertOneErrorLine(clitest.corral("run", "--nodes", "a", "true", ":::", "1"),
                                "--nodes goes with --slurm or --workers")
        self.assertOneErrorLine(clitest.corral("run", "--workers", "w {node}", "--nodes", "a;b",
                                               "true", ":::", "1"), "invalid node name 'a;b'")
        self.assertOneErrorLine(clitest.corral("run", "--workers", "w {node}", "--nodes", "a,a",
                                               "true", ":::", "1"), "appears twice")
        self.assertOneErrorLine(clitest.corral("run", "--workers", "w {node}", "--nodes", "n[3-1]",
                                               "true", ":::", "1"), "invalid range")
        self.assertOneErrorLine(clitest.corral("run", "--workers", "w {node}", "--nodes", "a",
                                               "--line-buffer", "true", ":::", "1"),
                                "--line-buffer")
        self.assertOneErrorLine(clitest.corral("run", "--workers", "w {node}", "--nodes", "a",
                                               "echo", "{%}", ":::", "1"), "{%}")
        self.assertOneErrorLine(clitest.corral("exec", "--slurm", "--", "true"), "--slurm")

    def test_node_ranges(self):
        rep = self.path("r.jsonl")
        r = self.run_head("--report", rep, "-j", "1", clitest.PAYLOAD, "sleep-exit", "0.3", "0",
                          ":::", *["x"] * 6, nodes="n[08-10]")
        self.assertEqual(r.rc, 0, r)
        recs, summ = clitest.read_report(self, rep)
        self.assertEqual(summ["workers"], 3)
        self.assertEqual(sorted({x["host"] for x in recs}), ["n08", "n09", "n10"])


if __name__ == "__main__":
    unittest.main()
