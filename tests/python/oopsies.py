#!/usr/bin/python3
"""oopsies.py - the reproducer: task 2 of a Pool.map dies abruptly.

    oopsies.py mp|corral sigterm|sigkill|oom|sigterm-handler [PROCESSES]

Runs map(task, range(8)) on multiprocessing.Pool ("mp") or corral.Pool
("corral"); the pools differ by one import. Task 2 kills itself with SIGTERM,
SIGKILL, or allocates 256 MiB under a 64 MiB memory limit (oom). With
"sigterm-handler", the workers first install a SIGTERM handler that raises
(the usual multiprocessing workaround; no help against SIGKILL or OOM).

Prints one JSON line as soon as map() returns: {"pool", "how", "result",
"seconds"} on success, or {"pool", "how", "error", "index", "signal",
"memory_limit", "message", "notes", "seconds"} when it raised; then, once the
pool is shut down (the with block's terminate()), {"shutdown_seconds"}.
multiprocessing.Pool prints nothing: map() hangs (run it with a timeout).

For the mp "oom" case, $OOPSIES_MEMCG must name a memory cgroup directory
with a 64 MiB limit that task 2 moves itself into (multiprocessing has no
per-task limits); the test creates it.
"""
import json
import os
import signal
import sys
import time

POOL = sys.argv[1]
HOW = sys.argv[2]
PROCESSES = int(sys.argv[3]) if len(sys.argv) > 3 else 4


def _raise_on_term(signum, frame):
    raise RuntimeError(f"worker got signal {signum}")


def init():
    if HOW == "sigterm-handler":
        signal.signal(signal.SIGTERM, _raise_on_term)


def task(i):
    if i == 2:
        if HOW in ("sigterm", "sigterm-handler"):
            os.kill(os.getpid(), signal.SIGTERM)
        elif HOW == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif HOW == "oom":
            memcg = os.environ.get("OOPSIES_MEMCG")
            if POOL == "mp" and memcg:
                with open(os.path.join(memcg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            b = bytearray(256 << 20)  # zero-filled: every page is touched
            del b
        time.sleep(1)
    time.sleep(0.1)
    return i * i


def main():
    if POOL == "mp":
        from multiprocessing import Pool
        kw = {}
    else:
        from corral import Pool
        kw = {"memory": "64M"}
    out = {"pool": POOL, "how": HOW}
    with Pool(PROCESSES, initializer=init, **kw) as pool:
        t0 = time.monotonic()
        try:
            out["result"] = pool.map(task, range(8))
        except Exception as e:
            out.update(error=type(e).__name__, index=getattr(e, "index", None),
                       signal=getattr(e, "signal", None),
                       memory_limit=getattr(e, "memory_limit", None), message=str(e),
                       notes=getattr(e, "__notes__", []))
        out["seconds"] = round(time.monotonic() - t0, 3)
        # Printed before the pool's shutdown (the with block's terminate()).
        print(json.dumps(out), flush=True)
        t1 = time.monotonic()
    print(json.dumps({"shutdown_seconds": round(time.monotonic() - t1, 3)}), flush=True)


if __name__ == "__main__":
    main()
