"""CLI tests: SIGINT/SIGTERM/SIGHUP to `corral run` (abort, 128+s, records
kept, nothing left), SIGKILL of corral (the watchdog), and `corral exec`
forwarding the first signal to its task."""
import os
import signal
import subprocess
import time
import unittest

from clitest import (PAYLOAD, CliTest, corral, finals_by_seq, host_pid, leftover_cgroups,
                     pid_alive, read_report, scaled, setUpModule, spawn, wait_until)
import clitest

assert setUpModule

P = PAYLOAD


def children_of(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


class Batch:
    """corral run -j 3 --ungroup over: 1 exits at once, 2-4 are process trees
    that print their pids and sleep forever, 5 waits in the queue."""

    def __init__(self, tc):
        self.tc = tc
        self.report = tc.path("report.jsonl")
        lines = ["exec %s exit 0" % P] + ["exec %s pid-tree 1" % P] * 3 + ["true"]
        self.proc = spawn(["run", "-j", "3", "--ungroup", "--report", self.report],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.proc.stdin.write(("\n".join(lines) + "\n").encode())
        self.proc.stdin.close()
        # 3 trees x (1 child + the leader).
        self.pids = [host_pid(int(self.proc.stdout.readline()), self.proc.pid)
                     for _ in range(6)]
        # Task 1 has its record.
        tc.assertTrue(wait_until(lambda: b'"seq":1,' in tc.read(self.report), scaled(10)))

    def close(self):
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


class Signals(CliTest):
    def test_sigint_sigterm_sighup_abort_run(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with self.subTest(sig=sig.name):
                b = Batch(self)
                try:
                    for pid in b.pids:
                        self.assertTrue(pid_alive(pid))
                    os.kill(b.proc.pid, sig)
                    b.proc.wait(timeout=scaled(10))
                    err = b.proc.stderr.read().decode()
                    self.assertEqual(b.proc.returncode, 128 + sig, err)
                    self.assertEqual(err.splitlines(), [
                        "corral: interrupted by signal %d (%s): the batch was aborted"
                        % (sig, sig.name),
                        "corral: 5 tasks: 1 ok, 1 cancelled, 3 aborted"])
                    # Every task process is gone, and every cgroup: the
                    # batch's at once, a transient scope (the systemd
                    # provider) once its manager has seen it empty.
                    self.assertEqual([p for p in b.pids if pid_alive(p)], [])
                    self.assertEqual(leftover_cgroups([b.proc.pid], scopes=False), [])
                    self.assertTrue(wait_until(lambda: not leftover_cgroups([b.proc.pid]),
                                               scaled(3)), leftover_cgroups([b.proc.pid]))
                    recs, summ = read_report(self, b.report)
                    f = finals_by_seq(recs)
                    self.assertEqual([f[i]["outcome"] for i in range(1, 6)],
                                     ["ok", "aborted", "aborted", "aborted", "cancelled"])
                    self.assertEqual(f[1]["status"], 0)
                    for i in (2, 3, 4):
                        self.assertIn(f[i]["pid"], b.pids)
                    self.assertEqual((summ["signal"], summ["aborted"], summ["exit_code"],
                                      summ["verdict_seq"]), (sig, True, 128 + sig, None))
                finally:
                    b.close()

    def test_sigkill_of_corral_watchdog_cleans_up(self):
        b = Batch(self)
        try:
            kids = children_of(b.proc.pid)  # the watchdog, and the task leaders
            self.assertGreaterEqual(len(kids), 4)
            os.kill(b.proc.pid, signal.SIGKILL)
            b.proc.wait(timeout=scaled(5))
            everything = set(b.pids) | set(kids)

            def running(p):
                # As root the watchdog is the init of the batch's PID
                # namespace: once it has exited, the kernel holds it in
                # zap_pid_ns_processes until the batch's last zombies are
                # reaped by corral's own parent (the task leaders were
                # corral's children). It does nothing any more by then.
                if not pid_alive(p):
                    return False
                try:
                    with open("/proc/%d/wchan" % p) as f:
                        return f.read() != "zap_pid_ns_processes"
                except OSError:
                    return False

            t0 = time.monotonic()
            gone = wait_until(lambda: not [p for p in everything if running(p)]
                              and not leftover_cgroups([b.proc.pid]), scaled(1.0))
            took = time.monotonic() - t0
            self.assertTrue(gone, "after %.1fs: processes %r, cgroups %r" % (
                took, [p for p in everything if running(p)], leftover_cgroups([b.proc.pid])))
            print("\n  SIGKILL of corral: tasks and cgroups gone after %.2fs" % took, flush=True)
            self.assertTrue(wait_until(lambda: not [p for p in everything if pid_alive(p)],
                                       scaled(10.0)))
            # The records written before the kill are whole lines.
            recs, _ = read_report(self, b.report, complete=False)
            self.assertEqual(recs[0]["seq"], 1)
        finally:
            b.close()

    def test_exec_forwards_first_signal(self):
        # The task traps TERM, cleans up and exits 7: corral exec's status is 7.
        script = 'trap "echo term; exit 7" TERM; echo ready; "$0" sleep 30 & wait'
        p = spawn(["exec", "--report", self.path("report.jsonl"), "--", "sh", "-c", script, P],
                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.stdout.readline(), b"ready\n")
        os.kill(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=scaled(10))
        self.assertEqual((p.returncode, out), (7, b"term\n"), err)
        recs, summ = self.report()
        self.assertEqual((recs[0]["outcome"], recs[0]["exit_code"]), ("exit", 7))

        # A task that survives the first signal is killed by the second.
        script = ('trap "echo term" TERM INT; echo ready; '
                  'while :; do "$0" sleep 30 & wait $!; done')
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig=sig.name):
                p = spawn(["exec", "--report", self.path("report.jsonl"), "--", "sh", "-c", script,
                           P], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
                self.assertEqual(p.stdout.readline(), b"ready\n")
                os.kill(p.pid, sig)
                self.assertEqual(p.stdout.readline(), b"term\n")
                leader = [x for x in children_of(p.pid)]
                os.kill(p.pid, sig)
                out, err = p.communicate(timeout=scaled(10))
                self.assertEqual(p.returncode, 128 + sig, err)
                recs, summ = self.report()
                self.assertEqual(recs[0]["outcome"], "aborted")
                self.assertEqual(summ["exit_code"], 128 + sig)
                self.assertEqual([x for x in leader if pid_alive(x)], [])


if __name__ == "__main__":
    unittest.main()
