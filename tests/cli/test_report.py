"""CLI tests of `corral report FILE.jsonl` (see clitest.py for the rules):
the summary against the records, the command groups, --suggest verified by
re-running a real batch with the limits it recommends, bad input, bounded
memory, the HTML file, and the JSON Schema of report lines.

The browser check of the HTML page is tests/browser/test_report_html.py."""
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import unittest

import clitest
import report_batch as rb
from clitest import BIN, PAYLOAD, CliTest, check_schema, corral, scaled, setUpModule

assert setUpModule  # the module-level skip check (exit 77)

OUTCOMES = clitest.OUTCOMES


DEFAULT = object()


def fake(seq, attempt=1, final=True, outcome="ok", command=DEFAULT, memory_max=32 << 20,
         memory_peak=16 << 20, wall=0.5, start=1.8e9, **extra):
    """An attempt record shaped like corral's (every required field)."""
    status = {"ok": 0, "exit": 1, "oom": 137, "subprocess_oom": 137, "oom_outside": 137,
              "timeout": 124, "signal": 139, "spawn_error": 127}.get(outcome)
    r = {"seq": seq, "attempt": attempt, "final": final, "outcome": outcome, "status": status,
         "exit_code": 0 if outcome == "ok" else None, "signal": None,
         "pid": 1000 + seq if attempt else None,
         "command": ["tool", str(seq)] if command is DEFAULT else command,
         "memory_max": memory_max, "memory_peak": memory_peak,
         "oom_kills": 1 if "oom" in outcome else 0, "own_limit_hit": outcome == "oom",
         "pids_limit_hit": False, "seccomp_kill": False, "start_time": start + seq,
         "wall_time": wall, "user_time": wall / 2, "system_time": 0.01, "stdout_bytes": 0,
         "stderr_bytes": 0, "stdout_lost_bytes": 0, "stderr_lost_bytes": 0,
         "sentence": "task %d %s" % (seq, outcome)}
    if outcome == "spawn_error":
        r["spawn_error"] = {"step": "exec", "errno": 2, "message": "No such file or directory"}
    r.update(extra)
    return r


def fake_summary(tasks, attempts, **extra):
    s = {"schema_version": 1, "tasks": tasks, "attempts": attempts,
         "outcomes": {o: 0 for o in OUTCOMES}, "verdict_seq": None, "verdict": None,
         "exit_code": 0, "aborted": False, "signal": None, "sentence": ""}
    s["outcomes"]["ok"] = tasks
    s.update(extra)
    return {"summary": s}


def is_asan(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


GNU_TIME = "/usr/bin/time"  # Debian's "time" (scripts/install-deps.sh test)


def maxrss_kib(args, timeout=300):
    """(exit status, peak RSS in KiB, stderr) of one run of args, measured by
    GNU time: its wait4() sees the process from its exec on. (wait4() here
    would not: a child forked from python counts python's pages until it
    execs.) RSS is None when GNU time is missing and CORRAL_NO_SKIP is not set."""
    if not os.access(GNU_TIME, os.X_OK):
        if os.environ.get("CORRAL_NO_SKIP") == "1":
            raise AssertionError("%s is missing: apt-get install time" % GNU_TIME)
        p = subprocess.run(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=timeout)
        return p.returncode, None, p.stderr
    fd, out = tempfile.mkstemp()
    os.close(fd)
    try:
        p = subprocess.run([GNU_TIME, "-q", "-f", "%x %M", "-o", out] + list(args),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
        with open(out) as f:
            rc, kib = f.read().split()[-2:]
        return int(rc), int(kib), p.stderr
    finally:
        os.unlink(out)


class ReportTest(CliTest):
    def report(self, *args, **kw):
        return corral("report", *args, **kw)

    def report_json(self, path, *args):
        r = self.report(path, "--json", *args)
        self.assertEqual((r.rc, r.err), (0, b""), r)
        return json.loads(r.out)

    def write_jsonl(self, name, objs, schema=True):
        if schema:
            check_schema(self, objs, name)
        return self.write(name, "".join(json.dumps(o) + "\n" for o in objs))

    def assert_stats(self, got, want, where):
        for k, v in want.items():
            if k in ("outcomes", "attempt_outcomes"):
                self.assertEqual({o: n for o, n in got[k].items() if n}, v, "%s %s" % (where, k))
            elif isinstance(v, float):
                self.assertTrue(math.isclose(got[k], v, rel_tol=1e-6, abs_tol=1e-6),
                                "%s %s: %r, expected %r" % (where, k, got[k], v))
            elif k in ("peak_need", "oom_limit_max") and v == 0:
                self.assertIn(got[k], (0, None), "%s %s" % (where, k))
            else:
                self.assertEqual(got[k], v, "%s %s" % (where, k))


class Summary(ReportTest):
    def test_summary_matches_the_records(self):
        """A real batch with OOM retries and a failing task: every figure of
        --json equals the records', and the text says the same."""
        lines = rb.lines(PAYLOAD, 60, seed=3)
        text = "".join(l + "\n" for _, l in lines) + "%s exit 3\n" % PAYLOAD
        rep = self.path("r.jsonl")
        r = corral(*rb.run_args(rep), input=text.encode(), timeout=scaled(120))
        self.assertEqual(r.rc, 3, r)
        recs, summary = clitest.read_report(self, rep)
        j = self.report_json(rep)
        exp = rb.expected(recs)
        self.assert_stats(j["all"], exp["all"], "all")
        names = {g["command"]: g for g in j["groups"]}
        want_names = {rb.group_name(PAYLOAD, "light"), rb.group_name(PAYLOAD, "heavy"),
                      "%s exit 3" % PAYLOAD}
        self.assertEqual(set(names), want_names)
        alloc = [r for r in recs if " alloc " in r["command"][2]]
        exp = rb.expected(alloc)
        for g in ("light", "heavy"):
            self.assert_stats(names[rb.group_name(PAYLOAD, g)], exp[g], g)
        self.assertEqual(names["%s exit 3" % PAYLOAD]["outcomes"]["exit"], 1)
        self.assertEqual(j["summary"]["schema_version"], summary["schema_version"])
        self.assertEqual(j["summary"]["verdict_seq"], 61)
        self.assertEqual(j["summary"]["sentence"], summary["sentence"])
        # the slowest and the biggest attempts, ties by file order
        ran = [(i, r) for i, r in enumerate(recs) if r["attempt"] > 0]
        slow = sorted(ran, key=lambda x: (-x[1]["wall_time"], x[0]))[:5]
        self.assertEqual([(e["seq"], e["attempt"]) for e in j["slowest"]],
                         [(r["seq"], r["attempt"]) for _, r in slow])
        big = sorted(ran, key=lambda x: (-x[1]["memory_peak"], x[0]))[:5]
        self.assertEqual([e["memory_peak"] for e in j["biggest"]],
                         [r["memory_peak"] for _, r in big])
        # the text
        t = self.report(rep, "--top", "3")
        self.assertEqual((t.rc, t.err), (0, b""), t)
        out = t.out.decode()
        a = rb.expected(recs)["all"]
        self.assertIn("%d tasks, %d attempts (%d retried)" % (a["tasks"], a["attempts"],
                                                              a["retried"]), out)
        self.assertIn(summary["sentence"], out)
        for n in want_names:
            self.assertIn(n, out)
        self.assertEqual(len(re.findall(r"^ +\S+ s +task \d+ attempt", out, re.M)), 3, out)
        self.assertIn("(--suggest:", out)

    def test_command_groups(self):
        """The grouping rule on commands of known shapes."""
        objs, seq = [], 0

        def add(cmd, n=1):
            nonlocal seq
            seq += 1
            objs.append(fake(seq, command=cmd))
        for s in range(1, 11):
            add(["/bin/sh", "-c", "python3 align.py s%d.fq" % s])
            add(["/bin/sh", "-c", "python3 count.py s%d.fq" % s])
        for s in range(1, 13):
            add(["/usr/bin/bwa", "mem", "ref.fa", "data/sample_%03d.fq" % s])
        add(["tool", "10", "100"])
        add(["tool", "20", "200"])
        add(["tool", "30", "300"])
        for s in range(1, 6):
            add(["echo", "hello world", "x%d" % s])
        seq += 1
        objs.append(fake(seq, command=None))
        objs.append(fake_summary(seq, seq))
        p = self.write_jsonl("g.jsonl", objs)
        j = self.report_json(p)
        got = {g["command"]: g["tasks"] for g in j["groups"]}
        self.assertEqual(got, {"python3 align.py s{}.fq": 10, "python3 count.py s{}.fq": 10,
                               "/usr/bin/bwa mem ref.fa data/sample_{}.fq": 12,
                               "tool {} {}": 3, "echo 'hello world' x{}": 5,
                               "(no command)": 1})
        shell = {g["command"]: g["shell"] for g in j["groups"]}
        self.assertTrue(shell["python3 align.py s{}.fq"])
        self.assertFalse(shell["tool {} {}"])


    def test_tables_overflow_into_other(self):
        """Past 256 shapes the records go to one "other" group, and it is said."""
        objs = [fake(i, command=["tool%d" % i, "x"]) for i in range(1, 301)]
        p = self.write_jsonl("shapes.jsonl", objs + [fake_summary(300, 300)])
        j = self.report_json(p)
        self.assertEqual((len(j["groups"]), j["shape_overflow"]), (257, 44))
        self.assertTrue(j["groups"][-1]["other"])
        self.assertEqual(j["groups"][-1]["tasks"], 44)
        self.assertEqual(sum(g["tasks"] for g in j["groups"]), 300)
        r = self.report(p)
        self.assertIn(b'more than 256 command shapes: 44 records are in the "other" group', r.out)


class Suggest(ReportTest):
    def test_suggested_limits_avoid_the_oom_retries(self):
        """The 1000-task batch with OOM kills and retries; --suggest's limit
        per group, re-run group by group, gives no OOM kill and no retry."""
        n = max(100, int(1000 / clitest.SCALE))
        lines = rb.lines(PAYLOAD, n)
        rep = self.path("r.jsonl")
        t0 = time.monotonic()
        r = corral(*rb.run_args(rep), input="".join(l + "\n" for _, l in lines).encode(),
                   stdout=subprocess.DEVNULL, timeout=scaled(600))
        self.assertEqual(r.rc, 0, r)
        t1 = time.monotonic()
        recs, _ = clitest.read_report(self, rep)
        exp = rb.expected(recs)
        self.assertGreater(exp["all"]["oom_attempts"], n // 10, "the batch must have OOM kills")
        self.assertGreater(exp["all"]["retried"], n // 10)
        j = self.report_json(rep, "--suggest")
        text = self.report(rep, "--suggest").out.decode()
        groups = {g["command"]: g for g in j["groups"]}
        lines_of = {g: [l for gg, l in lines if gg == g] for g in rb.HOLDS}
        sys.stderr.write("\n  batch of %d tasks: %d attempts, %d OOM kills, %d retried (%.0f s)\n"
                         % (n, exp["all"]["attempts"], exp["all"]["oom_attempts"],
                            exp["all"]["retried"], t1 - t0))
        for g in ("light", "heavy"):
            grp = groups[rb.group_name(PAYLOAD, g)]
            s = grp["suggest"]
            self.assertIsNotNone(s)
            self.assertFalse(s["lower_bound"])
            self.assertEqual(s["need"], max(exp[g]["peak_need"], exp[g]["oom_limit_max"]))
            self.assertGreaterEqual(s["memory"], 1.2 * s["need"])
            self.assertLessEqual(s["memory"], 1.2 * 1.1 * s["need"] + (1 << 20))
            self.assertRegex(text, r"-m %s +needs" % re.escape(s["text"]))
            self.assertTrue(math.isclose(s["memory_time"], s["memory"] * exp[g]["wall_time_final"],
                                         rel_tol=1e-6))
            self.assertTrue(math.isclose(s["saves"], exp[g]["memory_time"] - s["memory_time"],
                                         rel_tol=1e-6, abs_tol=1))
            # the re-run, with the same options but the suggested limit
            rep2 = self.path("rerun-%s.jsonl" % g)
            args = rb.run_args(rep2)
            args[args.index("-m") + 1] = s["text"]
            t2 = time.monotonic()
            r2 = corral(*args, input="".join(l + "\n" for l in lines_of[g]).encode(),
                        stdout=subprocess.DEVNULL, timeout=scaled(600))
            self.assertEqual(r2.rc, 0, r2)
            recs2, summary2 = clitest.read_report(self, rep2)
            ooms = [x for x in recs2 if "oom" in x["outcome"]]
            self.assertEqual(ooms, [], "OOM kills with the suggested limit %s" % s["text"])
            self.assertEqual(summary2["attempts"], len(lines_of[g]), "retries happened")
            self.assertEqual(summary2["outcomes"]["ok"], len(lines_of[g]))
            mt2 = sum(x["memory_max"] * x["wall_time"] for x in recs2)
            sys.stderr.write(
                "  group %s: suggested -m %s (need %.1f MiB); first run %d attempts, %d OOM "
                "kills, %.2f GiB*s; re-run %d attempts, 0 OOM kills, %.2f GiB*s (%.0f s)\n"
                % (g, s["text"], s["need"] / 2**20, exp[g]["attempts"], exp[g]["oom_attempts"],
                   exp[g]["memory_time"] / 2**30, summary2["attempts"], mt2 / 2**30,
                   time.monotonic() - t2))


class BadInput(ReportTest):
    def good(self):
        return [fake(1), fake(2, outcome="oom", final=False, memory_peak=32 << 20),
                fake(2, attempt=2, memory_max=64 << 20, memory_peak=40 << 20),
                fake_summary(2, 3)]

    def assert_error(self, res, *needles):
        self.assertOneErrorLine(res, *needles)

    def test_garbage_and_wrong_types(self):
        objs = self.good()
        text = json.dumps(objs[0]) + "\n{not json\n" + json.dumps(objs[1]) + "\n"
        p = self.write("bad.jsonl", text)
        self.assert_error(self.report(p), "bad.jsonl:2: not a JSON line")
        p = self.write("t.jsonl", json.dumps(dict(objs[0], seq="1")) + "\n")
        self.assert_error(self.report(p), "t.jsonl:1:", '"seq" is not a whole number')
        p = self.write("t.jsonl", json.dumps(dict(objs[0], wall_time=-1)) + "\n")
        self.assert_error(self.report(p), '"wall_time" is out of range')
        p = self.write("t.jsonl", json.dumps(dict(objs[0], command=[1, 2])) + "\n")
        self.assert_error(self.report(p), '"command" holds')
        p = self.write("t.jsonl", '{"foo": 1}\n')
        self.assert_error(self.report(p), "t.jsonl:1: neither an attempt record")
        p = self.write("t.jsonl", "[1,2]\n")
        self.assert_error(self.report(p), "not a JSON object")
        p = self.write("t.jsonl", "[" * 100 + "]" * 100 + "\n")
        self.assert_error(self.report(p), "nested too deeply")
        rnd = random.Random(5)
        for i in range(20):
            blob = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 3000)))
            p = self.write("rnd.jsonl", blob)
            r = self.report(p)
            self.assertIn(r.rc, (0, 125), (blob[:80], r))
            if r.rc == 125:
                self.assertEqual(len(r.err_lines), 1, r)

    def test_torn_last_line(self):
        objs = self.good()
        whole = "".join(json.dumps(o) + "\n" for o in objs[:3])
        p = self.write("torn.jsonl", whole + json.dumps(objs[3])[:25])
        r = self.report(p)
        self.assertEqual((r.rc, r.err), (0, b""), r)
        self.assertIn(b"the last line is torn (25 bytes, no newline): left out", r.out)
        self.assertIn(b"no summary line", r.out)
        j = self.report_json(p)
        self.assertTrue(j["torn_last_line"])
        self.assertEqual((j["all"]["tasks"], j["all"]["attempts"]), (2, 3))
        # a last line without its newline that is whole counts
        p = self.write("nonl.jsonl", whole + json.dumps(objs[3]))
        j = self.report_json(p)
        self.assertFalse(j["torn_last_line"])
        self.assertEqual(j["summary"]["tasks"], 2)

    def test_long_lines_are_refused_in_bounded_memory(self):
        p = self.write("long.jsonl", json.dumps(fake(1, sentence="x" * 5000)) + "\n")
        self.assert_error(self.report(p, "--max-line", "1K"),
                          "long.jsonl:1: a line longer than 1.0 KiB (--max-line)")
        self.assertEqual(self.report(p, "--max-line", "8K").rc, 0)
        # 40 MiB without a newline: refused at the default 16 MiB, read no further
        p = self.path("huge.jsonl")
        with open(p, "wb") as f:
            f.write(b'{"seq":1,"sentence":"' + b"y" * (40 << 20))
        rc, kib, err = maxrss_kib([BIN, "report", p])
        self.assertEqual(rc, 125, err)
        self.assertIn(b"a line longer than 16.0 MiB", err)
        if kib is not None and not is_asan(BIN):
            self.assertLess(kib, 24 * 1024, "peak RSS %d KiB" % kib)

    def test_files_and_options(self):
        p = self.write_jsonl("ok.jsonl", self.good())
        self.assert_error(self.report(self.path("nope.jsonl")), "cannot open", "nope.jsonl")
        with open(p, "rb") as f:
            r = self.report("/proc/self/fd/0", stdin=subprocess.PIPE, input=f.read())
        self.assert_error(r, "give a file, not a pipe")
        self.assert_error(self.report(), "report needs a FILE")
        self.assert_error(self.report(p, p), "report takes one FILE")
        self.assert_error(self.report(p, "--headroom", "0.5"), "--headroom", "0.5")
        self.assert_error(self.report(p, "--headroom", "x"), "--headroom")
        self.assert_error(self.report(p, "--top", "51"), "--top", "51")
        self.assert_error(self.report(p, "--max-line", "10"), "--max-line")
        self.assert_error(self.report(p, "--bogus"), "unknown option '--bogus'")
        self.assert_error(self.report(p, "-x"), "unknown option '-x'")
        self.assert_error(self.report(p, "--html"), "option '--html' needs a value")
        self.assert_error(self.report(p, "--html", self.path("no", "such", "dir.html")),
                          "cannot write --html file")
        r = self.report("--help")
        self.assertEqual((r.rc, r.err), (0, b""))
        self.assertIn(b"usage: corral report [OPTIONS] FILE.jsonl", r.out)
        for opt in (b"--suggest", b"--headroom", b"--html", b"--json", b"--top", b"--max-line"):
            self.assertIn(opt, r.out)
        r = corral("--help")
        self.assertIn(b"corral report", r.out)
        # an empty file is a report of nothing
        e = self.write("empty.jsonl", "")
        r = self.report(e)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(b"0 tasks, 0 attempts", r.out)


class Memory(ReportTest):
    def synth(self, name, n, timeline_every=0):
        """A report of n tasks written straight from Python (fast), every
        fifth one OOM-killed once at 32M then ok at 64M."""
        p = self.path(name)
        rnd = random.Random(n)
        attempts = 0
        with open(p, "w") as f:
            for seq in range(1, n + 1):
                mib = rnd.randint(4, 60)
                cmd = ["/bin/sh", "-c", "tool-%d run in%d.dat" % (seq % 7, seq)]
                extra = {}
                if timeline_every and seq % timeline_every == 0:
                    k = 3000
                    extra["memory_timeline"] = {
                        "t": [i * 0.01 for i in range(k)],
                        "current": [int(mib * 2**20 * min(1, i / (k / 2))) for i in range(k)],
                        "peak_index": k // 2}
                if mib > 32:
                    f.write(json.dumps(fake(seq, final=False, outcome="oom", command=cmd,
                                            memory_peak=32 << 20, **extra)) + "\n")
                    f.write(json.dumps(fake(seq, attempt=2, command=cmd, memory_max=64 << 20,
                                            memory_peak=mib << 20)) + "\n")
                    attempts += 2
                else:
                    f.write(json.dumps(fake(seq, command=cmd, memory_peak=mib << 20,
                                            **extra)) + "\n")
                    attempts += 1
            f.write(json.dumps(fake_summary(n, attempts)) + "\n")
        return p, attempts

    def test_bounded_memory(self):
        """Peak RSS does not grow with the number of records (10x more
        records: the same memory within a little), and the HTML page of
        either is about as big."""
        # 20k and 200k tasks (a tenth of it in the TCG VM, where python is slow)
        n = 20000 if clitest.SCALE == 1 else 2000
        small, _ = self.synth("small.jsonl", n, timeline_every=n // 20)
        big, attempts = self.synth("big.jsonl", 10 * n, timeline_every=n // 20)
        out = {}
        for name, p in (("small", small), ("big", big)):
            html = self.path(name + ".html")
            rc, kib, err = maxrss_kib([BIN, "report", p, "--html", html, "--suggest"])
            self.assertEqual(rc, 0, err)
            out[name] = (kib, os.path.getsize(html))
        sys.stderr.write("\n  corral report --html: %d tasks %s KiB RSS, page %d KiB; "
                         "%d tasks %s KiB RSS, page %d KiB\n"
                         % (n, out["small"][0], out["small"][1] >> 10, 10 * n, out["big"][0],
                            out["big"][1] >> 10))
        if out["big"][0] is not None and not is_asan(BIN):
            self.assertLess(out["big"][0], out["small"][0] + 1024)
            self.assertLess(out["big"][0], 16 * 1024)
        self.assertLess(out["big"][1], out["small"][1] * 1.5)
        j = self.report_json(big, "--suggest")
        self.assertEqual(j["all"]["attempts"], attempts)
        self.assertEqual(j["points"]["mode"], "sliced" if attempts > 5000 else "all")
        self.assertLessEqual(len(j["points"]["seq"]), 3 * j["points"]["slices"])
        self.assertEqual(len(j["groups"]), 7)
        for t in j["timelines"]:
            self.assertLessEqual(len(t["t"]), 1000)
            self.assertEqual(t["points"], 3000)
            self.assertEqual(t["t"], sorted(t["t"]))
            self.assertEqual(t["t"][0], 0.0)
            self.assertAlmostEqual(t["t"][-1], 29.99)
            self.assertEqual(t["current"][t["peak_index"]], max(t["current"]))
        self.assertGreater(len(j["timelines"]), 0)


class Html(ReportTest):
    def test_html_is_one_self_contained_file(self):
        objs = [fake(1, command=["evil", "</script><script>alert(1)</script>", "<b>x</b>"]),
                fake(2, command=["evil", "</script><script>alert(2)</script>", "&amp;"]),
                fake_summary(2, 2, sentence="</script><img src=x onerror=alert(3)>")]
        p = self.write_jsonl("x.jsonl", objs)
        html = self.path("x.html")
        r = self.report(p, "--html", html)
        self.assertEqual((r.rc, r.err), (0, b""), r)
        self.assertIn(("wrote " + html).encode(), r.out)
        with open(html, encoding="utf-8") as f:
            page = f.read()
        self.assertNotIn("<script>alert", page)
        self.assertNotIn("<img src=x", page)
        self.assertEqual(page.count("</script>"), 3)  # ECharts, the data, the page's script
        # nothing to load: no src/href attribute, no url(), and a CSP that forbids it
        self.assertIsNone(re.search(r"""\s(src|href)\s*=\s*["']?[a-z]""", page.split("<script>")[0]))
        self.assertIn("default-src 'none'", page)
        data = re.search(r'<script type="application/json" id="corral-data">(.*?)</script>',
                         page, re.S).group(1)
        self.assertEqual(json.loads(data), self.report_json(p))


class Schema(ReportTest):
    def test_schema_version_and_optional_fields(self):
        with open(os.path.join(clitest.SRC, "src", "lib", "report.schema.json")) as f:
            schema = json.load(f)
        with open(os.path.join(clitest.SRC, "include", "corral.h")) as f:
            ver = int(re.search(r"#define CORRAL_REPORT_SCHEMA_VERSION (\d+)", f.read()).group(1))
        self.assertEqual(schema["x-corral-schema-version"], ver)
        rep = self.path("r.jsonl")
        r = corral("run", "-m", "64M", "--report", rep, PAYLOAD, "exit", ":::", "0")
        self.assertEqual(r.rc, 0, r)
        _, summary = clitest.read_report(self, rep)
        self.assertEqual(summary["schema_version"], ver)

        # every optional field the executor may add validates, and is read
        victims = [{"pid": 4242, "comm": "python3", "total_vm": 900 << 20, "anon_rss": 480 << 20,
                    "file_rss": 4 << 20, "shmem_rss": 0, "oom_score_adj": 0}]
        k = 5000
        tl = {"t": [i * 0.002 for i in range(k)],
              "current": [(i * 7919) % (400 << 20) for i in range(k)]}
        tl["peak_index"] = max(range(k), key=lambda i: (tl["current"][i], -i))
        full = fake(1, final=False, outcome="oom", memory_max=512 << 20, memory_peak=512 << 20,
                    command=["python3", "-c", "x"], oom_victims=victims,
                    oom_memcg="/corral-1-ab/t1-a1", memory_stall_some=0.25,
                    memory_stall_full=0.125, memory_timeline=tl, host="node-7")
        ok = fake(1, attempt=2, memory_max=1 << 30, memory_peak=600 << 20,
                  command=["python3", "-c", "x"], host="node-8")
        prov = {"name": "own", "limits": True, "cgroup": "/corral-1-ab", "unit": None,
                "platform": "cgroup v2", "warning": None,
                "steps": [{"name": "own", "used": True, "why": "writable"}]}
        objs = [full, ok, fake_summary(1, 2, provider=prov, workers=2, workers_lost=0)]
        p = self.write_jsonl("opt.jsonl", objs)
        html = self.path("opt.html")
        r = self.report(p, "--html", html)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(b"OOM victims: 1 process: python3 x1 (up to 480.0 MiB resident)", r.out)
        self.assertIn(b"hosts: 2: node-7 (1), node-8 (1)", r.out)
        j = self.report_json(p)
        self.assertEqual(j["summary"]["provider"], "own")
        self.assertEqual(j["oom_victim_comms"],
                         [{"comm": "python3", "count": 1, "anon_rss_max": 480 << 20}])
        self.assertEqual(j["all"]["oom_victims"], 1)
        self.assertEqual(j["all"]["stall_attempts"], 1)
        self.assertEqual(len(j["timelines"]), 1)
        t = j["timelines"][0]
        self.assertEqual((t["seq"], t["why"], t["points"]), (1, "oom", k))
        self.assertLessEqual(len(t["t"]), 1000)
        self.assertEqual(t["current"][t["peak_index"]], max(tl["current"]))
        self.assertEqual(t["t"][0], tl["t"][0])
        self.assertAlmostEqual(t["t"][-1], tl["t"][-1])
        self.assertEqual(t["oom_victims"], victims)
        self.assertEqual(t["oom_memcg"], "/corral-1-ab/t1-a1")
        self.assertEqual(j["hosts"], {"node-7": 1, "node-8": 1})

        # and what the schema refuses
        v = clitest.schema_validator()
        bad = [dict(ok, extra_field=1), dict(ok, memory_peak=-1), dict(ok, outcome="nope"),
               {k2: v2 for k2, v2 in ok.items() if k2 != "sentence"},
               dict(fake(3, outcome="spawn_error"), spawn_error=None),
               dict(ok, spawn_error={"step": "exec", "errno": 2, "message": "x"}),
               dict(ok, memory_timeline={"t": [0.0]}),
               dict(ok, oom_victims=[{"pid": 1}]),
               dict(ok, memory_stall_some=-0.5),
               {"summary": dict(fake_summary(1, 1)["summary"], schema_version=0)},
               {"summary": {k2: v2 for k2, v2 in fake_summary(1, 1)["summary"].items()
                            if k2 != "schema_version"}}]
        for b in bad:
            self.assertTrue(list(v.iter_errors(b)), "the schema accepts %r" % b)


if __name__ == "__main__":
    unittest.main()
