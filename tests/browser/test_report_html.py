"""The browser check of `corral report --html` (lane `report`).

A real 1000-task batch with OOM kills and retries runs on this host's cgroups
(tests/cli/report_batch.py); its HTML page is opened in Debian's headless
chromium (tests/browser/cdp.py), in a network namespace of its own, and:

  - it loads with no request but its own file, no exception, no console error
    (a Content-Security-Policy violation would be one);
  - every chart is drawn: a visible canvas with painted pixels;
  - the numbers it shows equal the records': the cards, the outcome bars,
    every point of peak vs limit (one per attempt), the retry ladder, the
    command groups' table;
  - a screenshot of the whole page is saved as a CI artifact:
    $CORRAL_ARTIFACTS/report.png (build/artifacts/).

Records carry memory timelines and OOM victims only when the executor
records them; when these are absent, the same records with synthetic
timelines and victims (valid under the schema) make a second page, checked
the same way plus its timeline chart (the limit line, the kill marked):
report-timeline.png.

Needs root (the batch's cgroups, the network namespace) and chromium
(scripts/install-deps.sh browser); prints SKIPPED and exits 77 without them,
unless CORRAL_NO_SKIP=1.
"""
import json
import math
import os
import random
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))

import cdp  # noqa: E402
import clitest  # noqa: E402
import report_batch as rb  # noqa: E402
from clitest import PAYLOAD, CliTest, check_schema, corral, scaled  # noqa: E402

ARTIFACTS = os.environ.get("CORRAL_ARTIFACTS") or os.path.join(clitest.SRC, "build", "artifacts")
TASKS = 1000
MiB = 1 << 20


def setUpModule():
    if not os.access(cdp.CHROMIUM, os.X_OK):
        why = "%s is missing (scripts/install-deps.sh browser)" % cdp.CHROMIUM
        if os.environ.get("CORRAL_NO_SKIP") == "1":
            raise RuntimeError("CORRAL_NO_SKIP=1 but " + why)
        print("SKIPPED: " + why, flush=True)
        sys.exit(77)
    clitest.setUpModule()


# What the page tells, gathered in the page (a string: JSON).
PROBE = r"""
(function () {
  var R = window.corralReport, out = {charts: {}, cards: {}};
  for (var name in R.charts) {
    var c = R.charts[name], dom = c.getDom(), cs = [];
    dom.querySelectorAll('canvas').forEach(function (cv) {
      var d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data, n = 0;
      for (var i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      cs.push({w: cv.width, h: cv.height, painted: n});
    });
    out.charts[name] = {shown: dom.offsetWidth > 0 && dom.offsetHeight > 0, canvases: cs};
  }
  document.querySelectorAll('.card').forEach(function (c) {
    out.cards[c.dataset.key] = {value: c.dataset.value, shown: c.querySelector('b').textContent};
  });
  var o = R.charts.outcomes.getOption();
  out.outcomes = {cats: o.xAxis[0].data, series: o.series.map(function (s) {
    return s.data.map(function (d) { return typeof d === 'object' ? d.value : d; }); })};
  var p = R.charts.peaks.getOption();
  out.peaks = p.series.map(function (s) {
    return {name: s.name, data: s.data.map(function (d) { return [d[0], d[2], d[1], d[4]]; })}; });
  var l = R.charts.ladder.getOption();
  out.ladder = {cats: l.xAxis[0].data, series: l.series.map(function (s) {
    return {name: s.name, data: s.data}; })};
  out.groups = Array.prototype.map.call(document.querySelectorAll('#groups-body tr'), function (tr) {
    return Array.prototype.map.call(tr.children, function (td) { return td.textContent; }); });
  out.sentence = document.getElementById('sentence').textContent;
  out.timelineNote = document.getElementById('timeline-note').textContent;
  out.victims = document.getElementById('timeline-victims').textContent;
  if (R.charts.timeline) {
    var t = R.charts.timeline.getOption().series[0];
    out.timeline = {n: t.data.length, limit: t.markLine && t.markLine.data[0].yAxis,
                    marks: t.markPoint.data.map(function (m) { return m.name; }),
                    title: R.charts.timeline.getOption().title[0].text};
  }
  out.slowest = document.querySelectorAll('#slowest-body tr').length;
  return JSON.stringify(out);
})()
"""


def size_text(b):
    """The page's size format (page.js size())."""
    if b < 1024:
        return "%d B" % b
    v, units = b / 1024, ["KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while v >= 1023.95 and i < len(units) - 1:
        v /= 1024
        i += 1
    return "%.1f %s" % (v, units[i])


def with_timelines(recs, seed=11):
    """The records with what the executor may add: a memory timeline per
    attempt (up to its peak; an OOM kill ends at the limit), OOM victims,
    memory stall times, and the host (three nodes)."""
    rnd = random.Random(seed)
    out = []
    for r in recs:
        r = dict(r)
        r["host"] = "node-%d" % (r["seq"] % 3 + 1)
        if r["attempt"] > 0:
            k = 60
            top = r["memory_max"] if rb.own_oom(r) else r["memory_peak"]
            wall = max(r["wall_time"], 0.001)
            t = [wall * i / (k - 1) for i in range(k)]
            base = 2 * MiB
            cur = [int(base + (top - base) * min(1.0, (i / (k * 0.7)) ** 1.5)) for i in range(k)]
            if not rb.own_oom(r):
                cur[-8:] = [int(c * 0.4) for c in cur[-8:]]
            r["memory_timeline"] = {"t": t, "current": cur,
                                    "peak_index": max(range(k), key=lambda i: (cur[i], -i))}
            r["memory_stall_some"] = round(wall * rnd.uniform(0.0, 0.3), 6)
            r["memory_stall_full"] = round(r["memory_stall_some"] * 0.5, 6)
            if rb.own_oom(r):
                r["oom_victims"] = [{"pid": r["pid"] + 1, "comm": "corral-payload",
                                     "total_vm": r["memory_max"] + 12 * MiB,
                                     "anon_rss": r["memory_max"] - 3 * MiB,
                                     "file_rss": 1 * MiB, "shmem_rss": 0, "oom_score_adj": 0}]
                r["oom_memcg"] = "/corral-test/t%d-a%d" % (r["seq"], r["attempt"])
        out.append(r)
    return out


class ReportInBrowser(CliTest):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)

    def page(self, html, shot):
        """Open html in chromium; (probe dict, page) after the checks every
        page must pass; saves the screenshot."""
        with cdp.Chromium(width=1400, height=1000) as b:
            t0 = time.monotonic()
            page = b.open("file://" + html)
            page.wait_for("document.body && document.body.dataset.ready === '1'")
            load = time.monotonic() - t0
            got = json.loads(page.evaluate(PROBE))
            h = page.screenshot(os.path.join(ARTIFACTS, shot))
            b.pump(0.3)
            page._collect()
            self.assertEqual(page.exceptions, [])
            self.assertEqual([c for c in page.console if c[0] in ("error", "warning")], [])
            self.assertEqual(page.requests, ["file://" + html],
                             "the page asked for something else than itself")
        sys.stderr.write("\n  %s: loaded and drawn in %.1f s; screenshot %s (1400x%d)\n"
                         % (os.path.basename(html), load, os.path.join(ARTIFACTS, shot), h))
        for name, c in got["charts"].items():
            if name == "timeline" and not c["shown"]:
                continue
            self.assertTrue(c["shown"], name)
            self.assertTrue(c["canvases"], "%s has no canvas" % name)
            self.assertGreater(c["canvases"][0]["w"] * c["canvases"][0]["h"], 100 * 100, name)
            self.assertGreater(sum(x["painted"] for x in c["canvases"]), 2000,
                               "%s: nothing drawn" % name)
        return got

    def check_numbers(self, got, recs, summary):
        """Every number the page shows equals the records'."""
        exp = rb.expected(recs)
        a = exp["all"]
        cards = got["cards"]
        for k in ("tasks", "attempts", "retried", "oom_attempts", "peak_max"):
            self.assertEqual(int(cards[k]["value"]), a[k], k)
        for k in ("tasks", "attempts", "retried", "oom_attempts"):
            self.assertEqual(cards[k]["shown"], str(a[k]), k)
        self.assertEqual(cards["peak_max"]["shown"], size_text(a["peak_max"]))
        self.assertEqual(int(cards["failed"]["value"]), a["tasks"] - a["outcomes"].get("ok", 0))
        for k in ("memory_time", "memory_time_retried"):
            self.assertTrue(math.isclose(float(cards[k]["value"]), a[k], rel_tol=1e-9), k)
        self.assertEqual(got["sentence"], summary["sentence"] or "No task failed.")
        # outcome bars: tasks by final outcome, then every attempt
        cats = got["outcomes"]["cats"]
        self.assertEqual(dict(zip(cats, got["outcomes"]["series"][0])),
                         {o: a["outcomes"].get(o, 0) for o in cats})
        self.assertEqual(dict(zip(cats, got["outcomes"]["series"][1])),
                         {o: a["attempt_outcomes"].get(o, 0) for o in cats})
        self.assertEqual(set(cats), set(a["outcomes"]) | set(a["attempt_outcomes"]))
        # peak vs limit: one point per attempt (fewer than the page's budget)
        ran = [r for r in recs if r["attempt"] > 0]
        peaks = sorted((d[0], d[1], round(d[2] * MiB), d[3]) for s in got["peaks"]
                       if s["name"] != "limit" for d in s["data"])
        self.assertEqual(peaks, sorted((r["seq"], r["attempt"], r["memory_peak"], r["memory_max"])
                                       for r in ran))
        limits = sorted((d[0], d[1], round(d[2] * MiB)) for s in got["peaks"]
                        if s["name"] == "limit" for d in s["data"])
        self.assertEqual(limits, sorted((r["seq"], r["attempt"], r["memory_max"]) for r in ran))
        # the retry ladder
        lad = {}
        for i, cat in enumerate(got["ladder"]["cats"]):
            att, lim = cat.split("\n")
            for s in got["ladder"]["series"]:
                if s["data"][i]:
                    lad.setdefault((int(att.split()[1]), lim), {})[s["name"]] = s["data"][i]
        self.assertEqual(lad, {(att, size_text(lim)): n
                               for (att, lim), n in rb.ladder(recs).items()})
        self.assertGreater(len(lad), 2, "a ladder of more than one rung")
        # the command groups' table
        rows = {row[1]: row for row in got["groups"]}
        self.assertEqual(set(rows), {rb.group_name(PAYLOAD, g) for g in rb.HOLDS})
        for g in rb.HOLDS:
            row = rows[rb.group_name(PAYLOAD, g)]
            self.assertEqual([int(x) for x in row[2:5]],
                             [exp[g]["tasks"], exp[g]["attempts"], exp[g]["oom_attempts"]], g)
            self.assertEqual(row[5], size_text(exp[g]["peak_max"]))
        self.assertEqual(got["slowest"], 5)

    def test_html_report_of_a_1000_task_batch(self):
        n = TASKS
        lines = rb.lines(PAYLOAD, n)
        rep = self.path("report.jsonl")
        t0 = time.monotonic()
        r = corral(*rb.run_args(rep), input="".join(l + "\n" for _, l in lines).encode(),
                   stdout=subprocess.DEVNULL, timeout=scaled(900))
        self.assertEqual(r.rc, 0, r)
        recs, summary = clitest.read_report(self, rep)
        a = rb.expected(recs)["all"]
        sys.stderr.write("\n  batch: %d tasks, %d attempts, %d OOM kills, %d retried (%.0f s)\n"
                         % (a["tasks"], a["attempts"], a["oom_attempts"], a["retried"],
                            time.monotonic() - t0))
        self.assertGreater(a["oom_attempts"], n // 10)

        html = self.path("report.html")
        r = corral("report", rep, "--html", html, "--suggest")
        self.assertEqual(r.rc, 0, r)
        got = self.page(html, "report.png")
        self.check_numbers(got, recs, summary)
        has_timelines = any("memory_timeline" in x for x in recs)
        if has_timelines:
            self.assertIn("timeline", got)

        if not has_timelines:
            # the same batch with what the executor will add
            recs2 = with_timelines(recs)
            objs = recs2 + [{"summary": summary}]
            check_schema(self, objs, "synthetic timelines")
            rep2 = self.write("report-timeline.jsonl",
                              "".join(json.dumps(o) + "\n" for o in objs))
            html2 = self.path("report-timeline.html")
            r = corral("report", rep2, "--html", html2)
            self.assertEqual(r.rc, 0, r)
            got = self.page(html2, "report-timeline.png")
            self.check_numbers(got, recs2, summary)
            self.assertEqual(int(got["cards"]["hosts"]["value"]), 3)
        else:
            recs2 = recs
        t = got["timeline"]
        data = json.loads(corral("report", rep2 if not has_timelines else rep, "--json").out)
        first = data["timelines"][0]
        self.assertEqual(first["why"], "oom")
        self.assertEqual(t["n"], len(first["t"]))
        self.assertEqual(t["limit"], first["memory_max"] / MiB)
        self.assertIn("OOM kill", t["marks"])
        self.assertIn("peak", t["marks"])
        self.assertEqual(t["title"], "task %d attempt %d (%s)" % (first["seq"], first["attempt"],
                                                                  first["outcome"]))
        if first.get("oom_victims"):
            v = first["oom_victims"][0]
            self.assertIn("killed: %s (pid %d, anon-rss %s" % (v["comm"], v["pid"],
                                                               size_text(v["anon_rss"])),
                          got["victims"])


if __name__ == "__main__":
    unittest.main()
