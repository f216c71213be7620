"""CLI tests: bad input. Each is corral's own error: exit 125, exactly one
line on stderr that names the bad value, and no task started (the marker
file the task would create does not exist; no batch cgroup is left)."""
import os
import unittest

from clitest import CliTest, corral, setUpModule

assert setUpModule


class BadInput(CliTest):
    def setUp(self):
        super().setUp()
        self.marker = self.path("marker")
        # The task: create the marker.
        self.task = ["sh", "-c", ': > "$0"', self.marker]

    def bad(self, args, needles, input=None, cmd=None, tail=(":::", "x")):
        cmd = self.task if cmd is None else cmd
        r = corral(*args, *cmd, *tail, input=input)
        self.assertOneErrorLine(r, *needles)
        self.assertFalse(os.path.exists(self.marker), "a task ran: %r" % (args,))
        return r

    def test_unknown_option(self):
        self.bad(["run", "--bogus"], ["unknown option '--bogus'"])
        self.bad(["run", "--bogus=3"], ["'--bogus'"])
        self.bad(["run", "-Z"], ["'-Z'"])
        self.bad(["run", "-kZ"], ["'-Z'"])
        self.bad(["run", "--keep-order=yes"], ["'--keep-order'", "yes"])
        self.bad(["run", "--no"], ["ambiguous", "'--no'"])
        self.bad(["exec", "--bogus", "--"], ["'--bogus'"], tail=())
        r = corral("run", "-m")
        self.assertOneErrorLine(r, "'-m'", "needs a value")
        r = corral("exec", "--timeout")
        self.assertOneErrorLine(r, "'--timeout'", "needs a value")

    def test_bad_sizes(self):
        self.bad(["run", "-m", "12QB"], ["--memory", "'12QB'"])
        self.bad(["run", "-m", "-1"], ["--memory", "'-1'"])
        self.bad(["run", "--memory", "0"], ["--memory", "'0'"])
        self.bad(["run", "-m", "99999999999T"], ["'99999999999T'"])
        self.bad(["exec", "-m", "12QB", "--"], ["'12QB'"], tail=())
        self.bad(["run", "--swap", "1Q"], ["--swap", "'1Q'"])
        self.bad(["run", "-m", "64M", "--memory-ceiling", "lots"], ["--memory-ceiling", "'lots'"])
        self.bad(["run", "-m", "64M", "--memory-budget", "1X"], ["--memory-budget", "'1X'"])
        self.bad(["run", "-m", "200M", "--memory-budget", "100M"], ["200.0 MiB", "100.0 MiB"])
        self.bad(["run", "--memory-budget", "1G"], ["--memory-budget", "-m"])
        self.bad(["run", "--memory-ceiling", "1G"], ["--memory-ceiling", "-m"])
        self.bad(["run", "--no-cgroups", "-m", "64M"], ["--memory", "--no-cgroups"])

    def test_bad_durations_and_numbers(self):
        self.bad(["run", "-t", "5x"], ["--timeout", "'5x'"])
        self.bad(["run", "--timeout", "-3s"], ["'-3s'"])
        self.bad(["run", "--kill-after", "soon"], ["--kill-after", "'soon'"])
        self.bad(["exec", "-t", "1h30x", "--"], ["'1h30x'"], tail=())
        self.bad(["run", "-j", "0"], ["--jobs", "'0'"])
        self.bad(["run", "-j", "abc"], ["--jobs", "'abc'"])
        self.bad(["run", "--jobs", "-2"], ["--jobs", "'-2'"])
        self.bad(["run", "--pids", "0"], ["--pids", "'0'"])
        self.bad(["run", "--cpus", "0"], ["--cpus", "'0'"])
        self.bad(["run", "--cpus", "many"], ["--cpus", "'many'"])
        self.bad(["run", "--retries", "-1"], ["--retries", "'-1'"])
        self.bad(["run", "--retry-on", "bogus"], ["--retry-on", "'bogus'"])
        self.bad(["run", "--memory-growth", "0.5"], ["--memory-growth", "'0.5'"])
        self.bad(["run", "--halt", "sometimes"], ["--halt", "'sometimes'"])

    def test_bad_input_sources(self):
        self.bad(["run", "-a", "/nonexistent/corral-input.txt"],
                 ["/nonexistent/corral-input.txt"], tail=())
        self.bad(["run", "-a", self.tmp], [self.tmp, "directory"], tail=())
        # An unreadable second file: not even the first file's tasks run.
        good = self.write("good.txt", "a\nb\n")
        self.bad(["run", "-a", good, "-a", "/nonexistent/second.txt"], ["/nonexistent/second.txt"],
                 tail=())
        # Empty input.
        self.bad(["run"], ["no input", "stdin"], input=b"", tail=())
        empty = self.write("empty.txt", "")
        self.bad(["run", "-a", empty], ["no input", "-a"], tail=())
        self.bad(["run"], [":::"], tail=(":::",))
        self.bad(["run", "--ungroup", "-k"], ["--ungroup", "--keep-order"])
        self.bad(["exec", "-a", good, "--"], ["-a"], tail=())
        self.bad(["exec", "--"], ["::: is an input of `corral run`"], tail=(":::", "x"))
        self.bad(["exec", "--results", self.path("res"), "--"], ["--results"], tail=())
        r = corral("exec")
        self.assertOneErrorLine(r, "exec needs a command")

    def test_bad_gnu_parallel_options(self):
        self.bad(["run", "--colsep", "(?i)x"], ["--colsep", "'(?i)x'", "(?...)"])
        self.bad(["run", "--colsep", "\\p{L}"], ["--colsep", "\\p"])
        self.bad(["run", "--colsep", "a*?"], ["--colsep", "lazy"])
        self.bad(["run", "--colsep", "[ab"], ["--colsep", "'[ab'"])
        self.bad(["run", "--trim", "both"], ["--trim", "'both'"])
        self.bad(["run", "-N", "-1"], ["-N", "'-1'"])
        self.bad(["run", "-L", "0"], ["--max-lines", "'0'"])
        self.bad(["run", "--resume-failed"], ["--resume-failed", "--joblog"])
        self.bad(["run", "--line-buffer", "-k"], ["--line-buffer", "--keep-order"])
        self.bad(["run", "--line-buffer", "--ungroup"], ["--line-buffer", "--ungroup"])
        self.bad(["run", "--tag", "--ungroup"], ["--tag", "--ungroup"])
        self.bad(["run"], [":::+", "--link"], tail=(":::", "a", ":::+", "b"))
        self.bad(["run"], ["::::", "file"], tail=("::::",))
        self.bad(["run"], ["{= perl expression =}"], cmd=["echo", "{= s/a/b/ =}"])
        self.bad(["run", "--tagstring", "{= 1 =}"], ["--tagstring", "perl"])
        self.bad(["exec", "--dry-run", "--"], ["--dry-run", "corral run"], tail=())
        self.bad(["exec", "--resume", "--"], ["--resume", "corral run"], tail=())

    def test_missing_command(self):
        r = corral("run", "corral-no-such-command-xyz", ":::", "x")
        self.assertOneErrorLine(r, "'corral-no-such-command-xyz'", "not found")
        r = corral("run", "/nonexistent/corral-cmd", input=b"x\n")
        self.assertOneErrorLine(r, "'/nonexistent/corral-cmd'")
        noexec = self.write("noexec.sh", "#!/bin/sh\n: > %s\n" % self.marker)
        os.chmod(noexec, 0o644)
        r = corral("run", noexec, ":::", "x")
        self.assertOneErrorLine(r, noexec, "not executable")
        self.assertFalse(os.path.exists(self.marker))
        # exec: like a shell, 127 (the task's own spawn_error).
        r = corral("exec", "--", "corral-no-such-command-xyz")
        self.assertEqual(r.rc, 127)
        self.assertIn(b"corral-no-such-command-xyz", r.err)

    def test_unwritable_outputs(self):
        self.bad(["run", "--results", "/proc/corral-test/results"], ["/proc/corral-test/results"])
        self.bad(["run", "--report", "/proc/corral-test/report.jsonl"],
                 ["--report", "/proc/corral-test/report.jsonl"])
        self.bad(["run", "--report", self.tmp], ["--report", self.tmp])
        self.bad(["run", "--joblog", "/nonexistent/dir/joblog"], ["--joblog", "/nonexistent/dir/joblog"])
        self.bad(["exec", "--report", "/proc/corral-test/r", "--"], ["/proc/corral-test/r"], tail=())
        self.bad(["run", "--tmpdir", "/nonexistent/tmp"], ["--tmpdir", "/nonexistent/tmp"])
        self.bad(["run", "--tmpdir", self.write("afile", "")], ["--tmpdir", "not a directory"])

    def test_bad_environment_options(self):
        self.bad(["run", "--user", "corral-no-such-user"], ["corral-no-such-user"])
        self.bad(["run", "--seccomp", "/nonexistent/x.profile"], ["/nonexistent/x.profile"])
        self.bad(["run", "--cgroup-parent", "/corral-nonexistent-parent"],
                 ["/corral-nonexistent-parent"])
        self.bad(["run", "--cgroup-parent", "relative/path"], ["relative/path"])


if __name__ == "__main__":
    unittest.main()
