#!/usr/bin/python3
"""scripts/bench_python.py [--quick] - Python pools side by side (part 7 of
scripts/bench.sh): tiny tasks (x*x over 20 000 items) and 10 ms tasks (200),
2 workers, each pool in a fresh process, the pools' runs interleaved round by
round (median of the rounds), pool start-up and one warm-up call excluded.

Pools: multiprocessing.Pool (map's default chunksize), ProcessPoolExecutor,
loky (joblib's vendored copy), pebble (Debian's python3-pebble), corral.Pool
with persistent workers (map's default chunksize, like multiprocessing; and
chunksize=1), corral.Pool(maxtasksperchild=1) (a fork per task: measured on
fewer items, reported as a rate), corral.futures.ProcessPoolExecutor.
Ratios are throughput relative to multiprocessing.Pool (its time / this time).
Environment: CORRAL_LIB / PYTHONPATH as for the tests (default: the installed
package or src/python with build-bench/libcorral.so).
"""
import json
import statistics
import subprocess
import sys

QUICK = "--quick" in sys.argv
ROUNDS = 1 if QUICK else 3
N_TINY = 20000
N_SLOW = 60 if QUICK else 200
N_FORK = 300 if QUICK else 1000   # maxtasksperchild=1: a fork per task
J = 2

CHILD = r'''
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
kind, n, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def tiny(x):
    return x * x
def slow(x):
    time.sleep(0.01)
    return x
f = tiny if what == "tiny" else slow
items = list(range(n))
J = %d
if kind.startswith("corral"):
    import corral
    from corral.futures import ProcessPoolExecutor as CPPE
if kind == "mp":
    import multiprocessing as mp
    pool = mp.Pool(J); run = lambda: pool.map(f, items); close = pool.terminate
elif kind == "ppe":
    import concurrent.futures as cf
    pool = cf.ProcessPoolExecutor(J); run = lambda: list(pool.map(f, items))
    close = pool.shutdown
elif kind == "loky":
    from joblib.externals.loky import get_reusable_executor
    pool = get_reusable_executor(J); run = lambda: list(pool.map(f, items))
    close = lambda: pool.shutdown(wait=True)
elif kind == "pebble":
    import pebble
    pool = pebble.ProcessPool(J); run = lambda: list(pool.map(f, items).result())
    close = lambda: (pool.close(), pool.join())
elif kind == "corral":
    pool = corral.Pool(J); run = lambda: pool.map(f, items); close = pool.terminate
elif kind == "corral-cs1":
    pool = corral.Pool(J); run = lambda: pool.map(f, items, chunksize=1)
    close = pool.terminate
elif kind == "corral-mtpc1":
    pool = corral.Pool(J, maxtasksperchild=1); run = lambda: pool.map(f, items, chunksize=1)
    close = pool.terminate
elif kind == "corral-futures":
    pool = CPPE(J); run = lambda: list(pool.map(f, items)); close = pool.shutdown
items_warm, items = items, items[:min(len(items), 200)]
run()  # warm-up: workers up, code paths hot
items = items_warm
t = time.perf_counter()
out = run()
dt = time.perf_counter() - t
assert len(out) == n
close()
print(json.dumps({"seconds": dt}))
''' % J

POOLS = [
    ("mp", "multiprocessing.Pool (map default chunksize)"),
    ("ppe", "concurrent.futures.ProcessPoolExecutor"),
    ("loky", "loky (joblib.externals.loky)"),
    ("pebble", "pebble.ProcessPool"),
    ("corral", "corral.Pool persistent (map default chunksize)"),
    ("corral-cs1", "corral.Pool persistent, chunksize=1"),
    ("corral-mtpc1", "corral.Pool maxtasksperchild=1 (fork per task)"),
    ("corral-futures", "corral.futures.ProcessPoolExecutor"),
]


def available(kind):
    mod = {"loky": "joblib.externals.loky", "pebble": "pebble"}.get(kind)
    if kind.startswith("corral"):
        mod = "corral"
    if mod is None:
        return True
    p = subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True)
    return p.returncode == 0


def run(kind, n, what):
    p = subprocess.run([sys.executable, "-c", CHILD, kind, str(n), what], capture_output=True,
                       text=True, timeout=600)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])["seconds"]


def main():
    pools = [(k, label) for k, label in POOLS if available(k)]
    missing = [label for k, label in POOLS if (k, label) not in pools]
    times = {(k, w): [] for k, _ in pools for w in ("tiny", "slow")}
    for _ in range(ROUNDS):
        for what in ("tiny", "slow"):
            for k, _ in pools:
                n = N_TINY if what == "tiny" else N_SLOW
                if k == "corral-mtpc1" and what == "tiny":
                    n = N_FORK
                t = run(k, n, what)
                if t is not None:
                    times[(k, what)].append(t / n)  # seconds per task
    med = {key: statistics.median(v) if v else None for key, v in times.items()}
    print(f"### 7. Python pools, {J} workers: x*x over {N_TINY} items, and {N_SLOW} tasks of "
          f"10 ms (median of {ROUNDS} interleaved rounds; maxtasksperchild=1 on {N_FORK} "
          f"tiny items)")
    print()
    print("| pool | tiny: tasks/s | vs mp.Pool | 10 ms: s per 100 tasks | vs mp.Pool |")
    print("|---|---:|---:|---:|---:|")
    base_t, base_s = med.get(("mp", "tiny")), med.get(("mp", "slow"))
    for k, label in pools:
        t, s = med[(k, "tiny")], med[(k, "slow")]
        ct = f"{1 / t:,.0f}" if t else "failed"
        rt = f"{base_t / t:.2f}x" if t and base_t else "-"
        cs = f"{s * 100:.3f}" if s else "failed"
        rs = f"{base_s / s:.2f}x" if s and base_s else "-"
        print(f"| {label} | {ct} | {rt} | {cs} | {rs} |")
    if missing:
        print(f"\n(not installed, left out: {', '.join(missing)})")
    load = open("/proc/loadavg").read().split()[:3]
    print(f"\nload average during the run: {' '.join(load)} (the machine is shared: compare "
          f"ratios of one run, not absolute figures across runs)")


if __name__ == "__main__":
    main()
