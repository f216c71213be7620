#!/usr/bin/python3
"""bench_fork_vs_exec.py - what does one task cost, and should a task be a
fork() of the parent or a fresh interpreter?

    CORRAL_LIB=... PYTHONPATH=src/python bench_fork_vs_exec.py [N] [PROCESSES]

Runs N trivial tasks (x -> x * x) on PROCESSES slots, each way:
  mp.Pool            multiprocessing.Pool, persistent workers (the baseline)
  os.fork            a bare os.fork() per task, result through a pipe, no cgroup
  corral.Pool        fork per task, each in its own cgroup, watched by pidfd
  corral+exec        libcorral command tasks: a fresh `python3 -c` per task, in
                     its own cgroup; the function pickled by reference (pow:
                     a fresh interpreter can only import it), the argument and
                     the result pickled (what a "spawn" mode would do)
  subprocess         a fresh `python3 -c` per task, no cgroup (floor of exec)
then repeats corral.Pool and corral+exec with a parent holding 1 GiB of heap
(fork copies page tables: the cost grows with the parent's size).
Prints one line per way: tasks/s and ms per task (wall / N * PROCESSES), the
best of BENCH_REPEAT (3) runs.
"""
import ctypes
import multiprocessing
import os
import pickle
import subprocess
import sys
import time

import corral
from corral import _lib as L

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
P = int(sys.argv[2]) if len(sys.argv) > 2 else 2
CHILD = ("import pickle,sys;f,a=pickle.loads(bytes.fromhex(sys.argv[1]));"
         "sys.stdout.buffer.write(pickle.dumps(f(*a)))")


def sq(x):
    return x * x


REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))


def best(fn):
    return min(fn() for _ in range(REPEAT))


def line(name, secs, extra=""):
    print(f"{name:<28} {N / secs:8.0f} tasks/s  {secs / N * P * 1000:7.2f} ms/task "
          f"(slot time){extra}", flush=True)


def bench_mp():
    with multiprocessing.get_context("fork").Pool(P) as p:
        p.map(sq, range(P))  # workers up
        t = time.perf_counter()
        r = p.map(sq, range(N), chunksize=1)
        secs = time.perf_counter() - t
    assert r == [x * x for x in range(N)]
    return secs


def bench_fork():
    t = time.perf_counter()
    running, out = {}, {}
    todo = list(range(N))
    while todo or running:
        while todo and len(running) < P:
            x = todo.pop()
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                os.write(w, pickle.dumps(sq(x)))
                os._exit(0)
            os.close(w)
            running[pid] = (x, r)
        pid, _ = os.wait()
        x, r = running.pop(pid)
        out[x] = pickle.loads(os.read(r, 1 << 16))
        os.close(r)
    secs = time.perf_counter() - t
    assert out == {x: x * x for x in range(N)}
    return secs


def bench_corral():
    with corral.Pool(P) as p:
        t = time.perf_counter()
        r = p.map(sq, range(N))
        secs = time.perf_counter() - t
    assert r == [x * x for x in range(N)]
    return secs


def bench_corral_exec():
    o = L.Options()
    L.lib.corral_options_init(ctypes.byref(o))
    o.jobs = P
    ex = ctypes.c_void_p()
    err = L.Error()
    assert L.lib.corral_executor_new(ctypes.byref(o), ctypes.byref(ex), ctypes.byref(err)) == 0
    keep = []
    t = time.perf_counter()
    for x in range(N):
        argv = (ctypes.c_char_p * 5)(sys.executable.encode(), b"-c", CHILD.encode(),
                                     pickle.dumps((pow, (x, 2))).hex().encode(), None)
        keep.append(argv)
        task = L.Task()
        L.lib.corral_task_init(ctypes.byref(task))
        task.argv = ctypes.cast(argv, ctypes.POINTER(ctypes.c_char_p))
        task.stdout_fd = L.FD_CAPTURE
        task.data = x + 1
        assert L.lib.corral_submit(ex, ctypes.byref(task), ctypes.byref(err)) > 0
    L.lib.corral_close(ex)
    out = {}
    r = L.Result()
    while True:
        rc = L.lib.corral_next(ex, ctypes.byref(r), -1, ctypes.byref(err))
        if rc != 1:
            break
        out[r.data - 1] = pickle.loads(r.out.read())
        L.lib.corral_result_release(ctypes.byref(r))
    secs = time.perf_counter() - t
    L.lib.corral_executor_free(ex)
    assert out == {x: x * x for x in range(N)}, len(out)
    return secs


def bench_subprocess():
    t = time.perf_counter()
    procs, out, todo = [], {}, list(range(N))
    while todo or procs:
        while todo and len(procs) < P:
            x = todo.pop()
            procs.append((x, subprocess.Popen(
                [sys.executable, "-c", CHILD, pickle.dumps((pow, (x, 2))).hex()],
                stdout=subprocess.PIPE)))
        x, p = procs.pop(0)
        out[x] = pickle.loads(p.communicate()[0])
    secs = time.perf_counter() - t
    assert out == {x: x * x for x in range(N)}
    return secs


def main():
    print(f"{N} tasks, {P} at a time, Python {sys.version.split()[0]}, "
          f"libcorral {corral.lib_version}, {os.cpu_count()} CPUs")
    line("mp.Pool (persistent)", best(bench_mp))
    line("os.fork per task", best(bench_fork))
    line("corral.Pool (fork+cgroup)", best(bench_corral))
    line("corral+exec (python -c)", best(bench_corral_exec))
    line("subprocess (python -c)", best(bench_subprocess))
    ballast = bytearray(1 << 30)  # 1 GiB, touched
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    extra = "  [parent holds 1 GiB]"
    line("os.fork per task", best(bench_fork), extra)
    line("corral.Pool (fork+cgroup)", best(bench_corral), extra)
    line("corral+exec (python -c)", best(bench_corral_exec), extra)
    del ballast


if __name__ == "__main__":
    main()
