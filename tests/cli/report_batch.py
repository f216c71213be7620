"""report_batch - the batch of the `corral report` tests (tests/cli/test_report.py
and the browser check, tests/browser/test_report_html.py), and an independent
reading of its report to compare `corral report` with.

The batch: N shell-mode lines (`/bin/sh -c LINE`), two command groups told
apart by the payload's hold time, under -m 32M with OOM retries (x2 growth):

    PAYLOAD alloc <4..44 MiB> 10     group "light": about a third OOM-killed at 32M
    PAYLOAD alloc <16..88 MiB> 20    group "heavy": most killed at 32M, some at 64M

The payload runs under sh, so an OOM kill is a subprocess_oom at the task's
own limit (own_limit_hit) and the retry doubles the limit like an oom.
"""
import json
import random

HOLDS = {"light": 10, "heavy": 20}
RANGES = {"light": (4, 44), "heavy": (16, 88)}
FIRST_LIMIT = "32M"


def lines(payload, n, seed=7):
    """[(group, line)] of the batch, in input order."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        g = "light" if i % 2 else "heavy"
        lo, hi = RANGES[g]
        out.append((g, "%s alloc %d %d" % (payload, rnd.randint(lo, hi), HOLDS[g])))
    return out


def group_name(payload, g):
    """The group name `corral report` should find."""
    return "%s alloc {} %d" % (payload, HOLDS[g])


def run_args(report, jobs=4, retries=3):
    return ["run", "-j%d" % jobs, "-m", FIRST_LIMIT, "--retries", str(retries), "--halt", "never",
            "--report", report]


def load(path):
    """(records, summary) of a report file."""
    recs, summary = [], None
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            if "summary" in o:
                summary = o["summary"]
            else:
                recs.append(o)
    return recs, summary


def own_oom(r):
    return r["outcome"] == "oom" or (r["outcome"] == "subprocess_oom" and r["own_limit_hit"])


def group_of(r):
    """The group of a record of this batch, from its command line (None:
    not a line of the batch)."""
    words = r["command"][2].split()
    if len(words) != 4 or words[1] != "alloc":
        return None
    return {h: g for g, h in HOLDS.items()}.get(int(words[3]))


def expected(recs):
    """What `corral report` must say, computed here independently:
    {"all": {...}, "light": {...}, "heavy": {...}}."""
    out = {}
    for key in ("all", "light", "heavy"):
        rs = [r for r in recs if key == "all" or group_of(r) == key]
        ran = [r for r in rs if r["attempt"] > 0]
        finals = [r for r in rs if r["final"]]
        lim = [r for r in ran if r["memory_max"] is not None]
        e = {
            "tasks": len(finals),
            "attempts": len(ran),
            "retried": sum(1 for r in ran if not r["final"]),
            "oom_attempts": sum(1 for r in ran if own_oom(r)),
            "peak_max": max((r["memory_peak"] or 0) for r in ran) if ran else 0,
            "peak_need": max([r["memory_peak"] or 0 for r in ran if not own_oom(r)] or [0]),
            "oom_limit_max": max([r["memory_max"] for r in ran if own_oom(r)] or [0]),
            "memory_time": sum(r["memory_max"] * r["wall_time"] for r in lim),
            "memory_time_retried": sum(r["memory_max"] * r["wall_time"] for r in lim
                                       if not r["final"]),
            "wall_time_final": sum(r["wall_time"] for r in finals if r["attempt"] > 0),
            "outcomes": {},
            "attempt_outcomes": {},
        }
        for r in finals:
            e["outcomes"][r["outcome"]] = e["outcomes"].get(r["outcome"], 0) + 1
        for r in ran:
            e["attempt_outcomes"][r["outcome"]] = e["attempt_outcomes"].get(r["outcome"], 0) + 1
        out[key] = e
    return out


def ladder(recs):
    """{(attempt, limit): {outcome: n}} over the attempts that ran."""
    out = {}
    for r in recs:
        if r["attempt"] > 0:
            c = out.setdefault((r["attempt"], r["memory_max"]), {})
            c[r["outcome"]] = c.get(r["outcome"], 0) + 1
    return out
