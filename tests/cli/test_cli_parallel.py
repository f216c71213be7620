"""CLI tests: GNU parallel's idioms (issue 18) checked against GNU parallel
itself (Debian's `parallel`, installed by scripts/install-deps.sh test).

corral runs commands without a shell, so its argv is what GNU parallel gives
the shell with -q: `corral run --dry-run ARGS` must print what
`parallel -q --dry-run ARGS` prints, byte for byte, and a real run must hand
each task the same words. The corpus mixes replacement strings, input sources
(stdin, -0, :::, ::::, -a, --link, combinations), --colsep, -N, -L, --trim,
--tag/--tagstring and items with spaces, quotes, tabs, CR, braces, dots and
slashes, empty items and bytes that are not UTF-8. Without GNU parallel the
module prints SKIPPED and exits 77 (with CORRAL_NO_SKIP=1 it fails instead).

GNU parallel's answers are kept in <build>/tests/gnu-parallel-cache, keyed by
its own script, the arguments and the input: the VM lane (where perl takes
~15 s to start GNU parallel under TCG) reads what the host lane, which runs
first, computed, and computes what is missing. CORRAL_GNU_PARALLEL_CACHE sets
another directory, "off" none.
"""
import hashlib
import pickle
import os
import select
import shutil
import subprocess
import sys
import time
import unittest

from clitest import PAYLOAD, CliTest, corral, scaled, spawn
import clitest

PARALLEL = shutil.which("parallel")


def setUpModule():
    clitest.setUpModule()
    if PARALLEL is None:
        why = "GNU parallel is not installed (scripts/install-deps.sh test installs it)"
        if os.environ.get("CORRAL_NO_SKIP") == "1":
            raise RuntimeError("CORRAL_NO_SKIP=1 but " + why)
        print("SKIPPED: " + why, flush=True)
        sys.exit(77)


# Items: spaces, quotes, shell specials, empty, blanks around, tab, CR, braces,
# paths with dots and slashes, a leading dash, UTF-8 and bytes that are not,
# and 0xAF (GNU parallel's own escape byte, \257).
ITEMS = [b"plain", b"two words", b"it's", b'say "hi"', b"a$b`c`\\d*?[x]", b"",
         b"  lead and trail  ", b"tab\there", b"cr\r", b"{}", b"{1}x{.}", b"a.b/c.d/e.f",
         b"dir/", b"/", b"//a", b".hidden", b"dir/.hidden", b"a.b.c", b"/x/y.z/", b"-n",
         "\u00e9t\u00e9 \u20ac".encode(), b"\xff\xfe \xc3(", b"\xaf<x\xaf>", b"%s%d",
         b"~user", b"#!", b"x=1", b"+.-_/"]
# Items with newlines: only through -0 (a ::: word with a newline is one item
# for corral, two for GNU parallel: a documented difference).
NL_ITEMS = [b"line1\nline2", b"a.b\n", b"x/y\nz.w", b"a\n.b", b"\n", b"dir/\nx.y"]

# Each word is expanded on its own, so one template holds them all (GNU
# parallel starts slowly: fewer runs of it keep the VM lane short).
TEMPLATES = [
    [],  # the item appended
    ["{}", "x{}y", "{}{}", "[{}]", "{.}", "{/}", "{//}", "{/.}", "{#}", "{%}", "{1#}", "{0}",
     "{-0}", "{00}", "{1}", "{-1}", "{1.}", "{1/}", "{1//}", "{1/.}", "{2}", "{-2.}", "{1 .}",
     "a b{}", "pre\tfix{}post", "{}\tz", "{{}}", "{", "}", "{x}", "{1x}", "{-}", "{/x}", "{.}}",
     "", "{}", ""],
]


def _cache_dir():
    d = os.environ.get("CORRAL_GNU_PARALLEL_CACHE")
    if d == "off":
        return None
    return d or os.path.join(os.path.dirname(os.path.abspath(clitest.BIN)), "tests",
                             "gnu-parallel-cache")


_SCRIPT_SUM = None


def gnu(args, input=None, env_home=None, quote=True, check=True, cwd=None):
    """GNU parallel's stdout, stderr and exit status for args and input
    (with -j1, and -q unless quote=False), from the cache when it has them."""
    global _SCRIPT_SUM
    cmd = ["--will-cite", "-j1"] + (["-q"] if quote else []) + list(args)
    if _SCRIPT_SUM is None:
        with open(PARALLEL, "rb") as f:
            _SCRIPT_SUM = hashlib.sha256(f.read()).hexdigest()
    key = hashlib.sha256(repr((_SCRIPT_SUM, cmd, input)).encode()).hexdigest()
    cache = _cache_dir()
    path = os.path.join(cache, key) if cache else None
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            p = pickle.load(f)
    else:
        env = dict(os.environ, PARALLEL_SHELL="/bin/sh",
                   HOME=env_home or os.environ.get("HOME", "/"))
        p = subprocess.run([PARALLEL] + cmd, input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, cwd=cwd, timeout=scaled(120))
        p = subprocess.CompletedProcess(p.args, p.returncode, p.stdout, p.stderr)
        if path:
            try:
                os.makedirs(cache, exist_ok=True)
                with open(path + ".tmp", "wb") as f:
                    pickle.dump(p, f)
                os.rename(path + ".tmp", path)
            except OSError:
                pass  # a read-only build tree: no cache
    if check and p.returncode != 0:
        raise AssertionError("GNU parallel %r failed (%d): %r" % (args, p.returncode, p.stderr))
    return p


class DryRun(CliTest):
    """`corral run --dry-run` == `parallel -q --dry-run`, byte for byte."""

    def same(self, args, input=None, quote=True):
        # In the test's directory: file names are the same from run to run.
        g = gnu(["--dry-run"] + list(args), input=input, env_home=self.tmp, quote=quote,
                cwd=self.tmp)
        c = corral("run", "-j1", "--dry-run", *args, input=input, cwd=self.tmp)
        self.assertEqual((c.rc, c.err), (0, b""), (args, c))
        if c.out != g.stdout:
            gl, cl = g.stdout.split(b"\n"), c.out.split(b"\n")
            for i, (a, b) in enumerate(zip(gl, cl)):
                if a != b:
                    self.fail("%r: line %d differs:\n GNU parallel: %r\n corral:       %r"
                              % (args, i + 1, a, b))
            self.fail("%r: %d lines from GNU parallel, %d from corral" % (args, len(gl), len(cl)))
        return c.out

    def test_templates_on_stdin(self):
        data = b"\n".join(ITEMS) + b"\n"
        for t in TEMPLATES:
            self.same(["echo"] + t, input=data)
            self.same(["-N2", "echo"] + t, input=data)  # context replace

    def test_templates_nul_separated(self):
        data = b"\0".join(ITEMS + NL_ITEMS)
        for t in TEMPLATES:
            self.same(["-0", "echo"] + t, input=data)

    def test_templates_on_args(self):
        words = [w.decode("utf-8", "surrogateescape") for w in ITEMS]
        for t in TEMPLATES:
            self.same(["echo"] + t + [":::"] + words)

    def test_sources(self):
        self.write("a", b"a1\na 2\n\na.4/x\n")
        self.write("b", b"b1\nb2")  # no newline at the end
        self.write("empty", b"")
        a, b, empty = "a", "b", "empty"  # relative to the test's directory
        cases = [
            ["echo", "{}", ":::", "x", "y", ":::", "1", "2", "3"],
            ["echo", "{2}-{1}", "{}", ":::", "x", "y", "::::", a, b],
            ["echo", "x{}y", ":::", "p q", "r", ":::", "1 2", "3"],
            ["-a", a, "-a", b, "echo", "{1/}", "{2.}", "{-1}"],
            ["-a", a, "echo", ":::", "s", "t"],
            ["--link", "echo", "{}", ":::", "a", "b", "c", ":::", "1", "2"],
            ["--link", "-a", a, "-a", b, "echo", "{2}", "{1}"],
            ["--link", "echo", ":::", "a", "b", ":::", "1", "2", "3", ":::", "x"],
            ["echo", ":::", "a", "b", "::::", empty],
            ["echo", "{1}{2}{3}", ":::", "a", "b", ":::", ":::", "z"],
            ["-N2", "echo", "{}x", "{1}-{2}-{3}", "[{}]", ":::", "a", "b", "c"],
            ["-N3", "echo", "{}", "{4}", "{-1}", ":::", "a", "b", ":::", "1", "2"],
            ["-N0", "echo", "run", "{#}", ":::", "a", "b", "c"],
            ["-N2", "sh", "-c", "echo {}x; ls", "{2}", ":::", "a", "b", "c"],
            ["-L", "2", "echo", "{}", "a{}b", ":::", "a ", "b", "c", "d\t", "e"],
            ["--max-lines", "3", "echo", ":::", "a", "b", "c", "d"],
            ["--link", "-N2", "echo", ":::", "a", "b", "c", ":::", "1", "2"],
        ]
        for args in cases:
            self.same(args)
        self.same(["echo", "{}", "::::", "-", ":::", "x", "y"], input=b"in1\nin2\n")

    def test_colsep_and_trim(self):
        data = (b"a,b,,c\n,x,\n\n  sp , ace  \none\nt\tab\tx\n"
                b"a;b,c\nm  n\to\n.x.y.\n\xffa,\xfe\n")
        for sep in [",", "\\t", "\\s+", " +", "[,;]", "x*", "\\|", "\\x2c", "\\.", ".", "[.]",
                    ";|,", "\\d", "[[:space:]]+", "[\\t,]", "a{1,2}", "{"]:
            self.same(["--colsep", sep, "echo", "{}", "{1}", "{2}", "{3}", "{-1}", "{4}", "x{1}y",
                       "{2.}"], input=data)
        for trim in ("n", "l", "r", "lr", "rl"):
            self.same(["--trim", trim, "echo", "[{}]", "{.}"], input=b"  a.b  \n\tx\t\n")
            self.same(["--trim", trim, "--colsep", ",", "echo", "{1}", "[{2}]"],
                      input=b" a , b \n")
        self.same(["--colsep", ",", "-N2", "echo", "{}", "{3}", "{4}x"],
                  input=b"a,b\nc,d\ne,f\n")
        self.same(["-C", ",", "echo", "{2}", ":::", "a,b", "c,d", ":::", "x,y"])

    def test_tag_and_tagstring(self):
        data = b"a b\nc.d/e\n"
        self.same(["--tag", "echo", "{}"], input=data)
        self.same(["--tag", "echo", ":::", "a b", "c", ":::", "1"])
        self.same(["--tag", "--colsep", ",", "echo", "{2}"], input=b" a , b \n")
        self.same(["--tag", "-N2", "echo"], input=b"a\nb\nc\n")
        for ts in ["{}", "x{}y", "{.}|{/}|{#}|{%}", "{1}:{2}", "\\t[{}]\\n", "lit",
                   "\\101\\0618", "a b{}c"]:
            self.same(["--tagstring", ts, "echo", "{}"], input=data)
            self.same(["--tagstring", ts, "-N2", "echo", ":::", "p", "q", "r"])

    def test_shell_mode(self):
        # No command: every line is shell code, printed as it is.
        lines = [b"echo a | tr a b", b"ls 'x y' \"$HOME\"", b"", b"  exit 3  ", b"\xff\xfe"]
        self.same([], input=b"\n".join(lines) + b"\n", quote=False)
        self.same(["-N2"], input=b"echo a\necho b\necho c\n", quote=False)

    def test_dry_run_runs_nothing(self):
        marker = self.path("marker")
        r = corral("run", "--dry-run", "touch", marker + "{}", ":::", "1", "2")
        self.assertEqual((r.rc, r.err), (0, b""), r)
        self.assertEqual(r.out.decode().splitlines(),
                         ["touch %s1" % marker, "touch %s2" % marker])
        self.assertEqual(os.listdir(self.tmp), [])
        # ... needs no cgroups, writes no joblog or report.
        r = corral("run", "--dry-run", "--no-cgroups", "--joblog", self.path("jl"), "--report",
                   self.path("rep"), "echo", ":::", "a")
        self.assertEqual((r.rc, r.out), (0, b"echo a\n"), r)
        self.assertEqual(os.listdir(self.tmp), [])


class RealRun(CliTest):
    """A real run hands every task the words GNU parallel -q gives it."""

    def same_run(self, args, input=None, stderr_too=False):
        pre = ["-k"]
        g = gnu(pre + list(args), input=input, env_home=self.tmp, cwd=self.tmp)
        c = corral("run", "-j2", *pre, *args, input=input, cwd=self.tmp)
        self.assertEqual(c.rc, 0, c)
        self.assertEqual(c.out, g.stdout, args)
        if stderr_too:
            self.assertEqual(sorted(c.err.splitlines()), sorted(g.stderr.splitlines()), args)

    def test_argv_reaches_the_task(self):
        data = b"\n".join(ITEMS) + b"\n"
        self.same_run(["printf", "<%s>", "{}", "{.}", "{/}", "{//}", "{/.}", "x{}y", "\n"],
                      input=data)
        self.same_run(["-0", "printf", "<%s>", "{}", "{/}", "\n"], input=b"\0".join(NL_ITEMS))
        self.same_run(["printf", "<%s>", "x{}y", "{2}", "\n", ":::", "a b", "c", ":::", "1", "2"])
        self.same_run(["--colsep", "\\t", "printf", "<%s>", "{2}", "{1}", "\n"],
                      input=b" a \t b\tc\n")
        self.same_run(["-N2", "printf", "<%s>", "{}x", "\n", ":::", "a", "b", "c"])

    def test_tag_output(self):
        script = 'printf "out1\\nout2 %s\\n" "$1"; printf "err %s\\n" "$1" >&2; printf "no-nl"'
        self.same_run(["--tag", "sh", "-c", script, "sh", ":::", "a b", "c"], stderr_too=True)
        self.same_run(["--tagstring", "{#}:{.}", "sh", "-c", script, "sh", ":::", "x.y", "z"],
                      stderr_too=True)


class SlotsAndLineBuffer(CliTest):
    def test_slots_are_unique_among_running_tasks(self):
        # A task holds the directory of its slot while it runs: two running
        # tasks with one slot would collide and fail.
        held = self.path("held")
        os.mkdir(held)
        log = self.path("slots")
        script = ('mkdir "$0/$1" || exit 99; echo "$1" >> "$0.log"; "$2" sleep %.3f; '
                  'rmdir "$0/$1"' % scaled(0.05))
        r = corral("run", "-j3", "sh", "-c", script, held, "{%}", PAYLOAD, ":::",
                   *[str(i) for i in range(15)])
        self.assertEqual((r.rc, r.err), (0, b""), r)
        os.rename(held + ".log", log)
        slots = [int(x) for x in self.read(log).split()]
        self.assertEqual(len(slots), 15)
        self.assertEqual(set(slots), {1, 2, 3})
        # -j1: always slot 1, as GNU parallel.
        r = corral("run", "-k", "-j1", "echo", "{%}", "{#}", ":::", "a", "b", "c")
        self.assertEqual(r.out, b"1 1\n1 2\n1 3\n")

    def test_line_buffer(self):
        go = self.path("go")
        # Line 1 arrives while the task waits; a line written in two pieces
        # comes out whole; stderr too; the last line has no newline.
        script = ('echo "first $1"; printf "par" >&2; while [ ! -e "$0" ]; do "$2" sleep 0.02; '
                  'done; printf "tial\\n" >&2; printf "last"')
        p = spawn(["run", "--line-buffer", "--tag", "sh", "-c", script, go, "{}", PAYLOAD,
                   ":::", "A"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
        try:
            ready, _, _ = select.select([p.stdout], [], [], scaled(10))
            self.assertTrue(ready)
            self.assertEqual(p.stdout.readline(), b"A\tfirst A\n")
            self.assertIsNone(p.poll())
            ready, _, _ = select.select([p.stderr], [], [], scaled(0.3))
            self.assertFalse(ready, "an unfinished line was printed")
        finally:
            open(go, "w").close()
            out, err = p.communicate(timeout=scaled(20))
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, b"A\tlast")
        self.assertEqual(err, b"A\tpartial\n")
        # Lines of parallel tasks interleave but stay whole.
        script = 'i=0; while [ $i -lt 200 ]; do echo "$1 line $i ................"; i=$((i+1)); done'
        r = corral("run", "--line-buffer", "-j4", "sh", "-c", script, "sh", ":::", "a", "b", "c",
                   "d")
        self.assertEqual(r.rc, 0, r)
        lines = r.out.split(b"\n")
        self.assertEqual(lines[-1], b"")
        for t in b"abcd":
            mine = [l for l in lines if l[:1] == bytes([t])]
            self.assertEqual(mine, [b"%c line %d ................" % (t, i) for i in range(200)])


if __name__ == "__main__":
    unittest.main()
