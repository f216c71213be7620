#!/usr/bin/python3
"""scripts/compare_pools.py - what each Python pool does when one
of its workers dies; prints a Markdown table (the one in README.md). Run as
root (the OOM case needs a memory cgroup).

Eight tasks are submitted to a pool of 2 workers (apply_async / submit); task
3 kills its worker: SIGKILL, SIGTERM, an OOM kill (it allocates 256 MiB under
a 64 MiB limit: corral's own memory=; for the others, the task moves itself
into a 64 MiB memory cgroup this script creates, as the kernel would treat a
container's limit), or os._exit(3). Then every result is collected, each with
the time left of a 10 s budget, and the same pool is asked for one more map.
Each pool and scenario runs in a fresh process, killed (with its process
group) if it outlives 30 s.

Columns:
  hang            a result (or the shutdown) was still blocked at the budget
  names the task  the failure is raised for task 3 alone, or its message names it
  names the cause the message says OOM for the OOM kill, the signal for the
                  kills, the exit code for os._exit
  others kept     the 7 other results were delivered
  usable after    the same pool ran another map correctly
Pools: multiprocessing.Pool, concurrent.futures.ProcessPoolExecutor, loky
(joblib's vendored copy), pebble, corral.Pool, corral.futures.ProcessPoolExecutor.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

MiB = 1 << 20
POOLS = ["mp", "ppe", "loky", "pebble", "corral", "corral-futures"]
LABEL = {"mp": "multiprocessing.Pool", "ppe": "ProcessPoolExecutor", "loky": "loky",
         "pebble": "pebble", "corral": "corral.Pool",
         "corral-futures": "corral.futures.ProcessPoolExecutor"}
SCENARIOS = ["sigkill", "sigterm", "oom", "exit"]

CHILD = r'''
import json, os, signal, sys, time, warnings
warnings.simplefilter("ignore")
kind, how, memcg = sys.argv[1], sys.argv[2], sys.argv[3]
BUDGET = 10.0

def task(i):
    if i == 3:
        if how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        elif how == "exit":
            os._exit(3)
        elif how == "oom":
            if memcg != "-":
                with open(os.path.join(memcg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            b = bytearray(256 << 20)
            del b
        time.sleep(2)
    time.sleep(0.2)
    return i * i

def square(x):
    return x * x

out = {"results": {}, "errors": {}, "hang": False}
t0 = time.monotonic()
if kind == "mp":
    import multiprocessing as mp
    pool = mp.Pool(2)
    rs = [pool.apply_async(task, (i,)) for i in range(8)]
    get = lambda r, t: r.get(t)
    again = lambda: pool.map(square, range(4))
elif kind in ("ppe", "loky", "pebble", "corral-futures"):
    if kind == "ppe":
        import concurrent.futures as cf
        pool = cf.ProcessPoolExecutor(2)
    elif kind == "loky":
        from joblib.externals.loky import get_reusable_executor
        pool = get_reusable_executor(2)
    elif kind == "corral-futures":
        from corral.futures import ProcessPoolExecutor
        pool = ProcessPoolExecutor(2, memory="64M")
    if kind == "pebble":
        import pebble
        pool = pebble.ProcessPool(2)
        rs = [pool.schedule(task, (i,)) for i in range(8)]
        again = lambda: list(pool.map(square, range(4)).result(timeout=BUDGET))
    else:
        rs = [pool.submit(task, i) for i in range(8)]
        again = lambda: list(pool.map(square, range(4), timeout=BUDGET))
    get = lambda r, t: r.result(timeout=t)
else:
    import corral
    pool = corral.Pool(2, memory="64M")
    rs = [pool.apply_async(task, (i,)) for i in range(8)]
    get = lambda r, t: r.get(t)
    again = lambda: pool.map(square, range(4))
for i, r in enumerate(rs):
    left = BUDGET - (time.monotonic() - t0)
    try:
        out["results"][i] = get(r, max(0.01, left))
    except BaseException as e:
        if "Timeout" in type(e).__name__ and time.monotonic() - t0 >= BUDGET - 0.05:
            out["hang"] = True
            out["errors"][i] = "hang"
            continue
        extra = "".join(f" ({a}={getattr(e, a)!r})" for a in ("exitcode", "pid")
                        if getattr(e, a, None) is not None)
        out["errors"][i] = f"{type(e).__name__}: {e}{extra}"
        if i == 3:
            out["seconds"] = round(time.monotonic() - t0, 3)
out["collected"] = round(time.monotonic() - t0, 3)
print(json.dumps(out), flush=True)
import threading
def again_thread():
    try:
        out2 = again()
        print(json.dumps({"again": out2 == [0, 1, 4, 9]}), flush=True)
    except BaseException as e:
        print(json.dumps({"again": False, "again_error": f"{type(e).__name__}: {e}"[:200]}),
              flush=True)
th = threading.Thread(target=again_thread, daemon=True)
th.start()
th.join(BUDGET)
if th.is_alive():
    print(json.dumps({"again": False, "again_error": "blocked"}), flush=True)
os._exit(0)  # the shutdown of a broken pool may hang too: not measured here
'''


class MemCg:
    """A 64 MiB memory cgroup below our own, for the peers' OOM case."""

    def __init__(self):
        self.path = None
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        v1 = [ln.split(":", 2)[2] for ln in lines if "memory" in ln.split(":", 2)[1].split(",")]
        if v1:
            base, limit = os.path.join("/sys/fs/cgroup/memory", v1[0].lstrip("/")), \
                "memory.limit_in_bytes"
        else:
            own = [ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")][0]
            base, limit = os.path.join("/sys/fs/cgroup", own.lstrip("/")), "memory.max"
        path = os.path.join(base, f"compare-pools-{os.getpid()}")
        try:
            os.mkdir(path)
            with open(os.path.join(path, limit), "w") as f:
                f.write(str(64 * MiB))
            for name in ("memory.swap.max", "memory.memsw.limit_in_bytes"):
                p = os.path.join(path, name)
                if os.path.exists(p):
                    try:
                        with open(p, "w") as f:
                            f.write("0" if name.endswith("swap.max") else str(64 * MiB))
                    except OSError:
                        pass
            self.path = path
        except OSError as e:
            print(f"compare_pools: no memory cgroup for the OOM case ({e})", file=sys.stderr)

    def remove(self):
        if not self.path:
            return
        for _ in range(100):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                with open(os.path.join(self.path, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                time.sleep(0.05)


def available(kind):
    mod = {"loky": "joblib.externals.loky", "pebble": "pebble", "corral": "corral",
           "corral-futures": "corral.futures"}.get(kind)
    if mod is None:
        return True
    return subprocess.run([sys.executable, "-c", f"import {mod}"],
                          capture_output=True).returncode == 0


def one(kind, how, memcg):
    p = subprocess.Popen([sys.executable, "-c", CHILD, kind, how, memcg or "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    if not lines:
        return {"hang": True, "err": err[-300:]}
    res = lines[0]
    res["again"] = lines[1]["again"] if len(lines) > 1 else False
    return res


CAUSE = {"sigkill": ("SIGKILL", "-9", "signal 9"), "sigterm": ("SIGTERM", "-15", "signal 15"),
         "oom": ("OOM", "out of memory", "memory limit"), "exit": ("exit code 3", "exitcode 3",
                                                               "code=3", "exit status 3",
                                                               "exit(3)")}


def judge(how, r):
    if r.get("hang") and not r.get("results"):
        return ["yes", "-", "-", "-", "-", ""]
    errs = {int(k): v for k, v in r.get("errors", {}).items()}
    results = {int(k): v for k, v in r.get("results", {}).items()}
    e3 = errs.get(3, "")
    named_task = 3 in errs and e3 != "hang" and \
        (all(i in results for i in range(8) if i != 3) or
         re.search(r"task\(3\)|task 3\b|index 3\b", e3) is not None)
    named_cause = any(c.lower() in e3.lower() for c in CAUSE[how])
    others = sum(1 for i in range(8) if i != 3 and i in results)
    return ["yes" if r.get("hang") else "no", "yes" if named_task else "no",
            "yes" if named_cause else "no", f"{others}/7",
            "yes" if r.get("again") else "no", _shorten(e3)]


def _shorten(msg):
    msg = " ".join(msg.split())
    return msg if len(msg) <= 120 else msg[:70] + " … " + msg[-45:]


def main():
    if os.geteuid() != 0:
        print("compare_pools: run as root (the OOM case needs a memory cgroup)", file=sys.stderr)
    pools = [k for k in POOLS if available(k)]
    memcg = MemCg()
    rows = []
    try:
        for how in SCENARIOS:
            for kind in pools:
                t = time.monotonic()
                r = one(kind, how, memcg.path if kind not in ("corral", "corral-futures")
                        else None)
                j = judge(how, r)
                rows.append([how, LABEL[kind]] + j + [f"{time.monotonic() - t:.1f}"])
                print(f"compare_pools: {how:8} {LABEL[kind]:36} hang={j[0]} task={j[1]} "
                      f"cause={j[2]} kept={j[3]} usable={j[4]}", file=sys.stderr, flush=True)
    finally:
        memcg.remove()
    print("| worker of task 3 … | pool | hang | names the task | names the cause | "
          "others kept | usable after | what task 3 raised |")
    print("|---|---|---|---|---|---|---|---|")
    for how, label, hang, task, cause, kept, usable, msg, _ in rows:
        what = {"sigkill": "SIGKILL", "sigterm": "SIGTERM", "oom": "OOM kill (64 MiB)",
                "exit": "os._exit(3)"}[how]
        msg = msg.replace("|", "\\|").replace("\n", " ")
        print(f"| {what} | {label} | {hang} | {task} | {cause} | {kept} | {usable} | "
              f"{msg or '(nothing: blocked)'} |")
    missing = [LABEL[k] for k in POOLS if k not in pools]
    if missing:
        print(f"\n(not installed: {', '.join(missing)})")


if __name__ == "__main__":
    main()
