"""corral: multiprocessing.Pool's API, but every task runs in its own forked
process and its own cgroup, and nothing ever hangs.

    import corral

    def work(n):
        return sum(range(n))

    with corral.Pool(4, memory="512M", timeout="10m") as pool:
        print(pool.map(work, [10, 20, 30]))              # [45, 190, 435]
        try:                                             # lambdas work: fork
            pool.map(lambda mib: len(bytearray(mib << 20)), [100, 4096, 200])
        except corral.OOMKilled as e:
            print(e.index, e.memory_limit)               # 1 536870912
            print(e)  # task 1 was OOM-killed: it exceeded its memory limit
                      # (memory.max 512.0 MiB, peak 512.0 MiB)

Switching from multiprocessing is a one-line change for the common cases:
``from corral import Pool`` instead of ``from multiprocessing import Pool``.

How it works
------------
Each task is one fork() of the calling process, born into (v2) or moved into
(v1) a cgroup of its own with the pool's memory limit, watched through a
pidfd by libcorral (loaded with ctypes). Only results travel back, pickled,
through a pipe; the function and its arguments are inherited by fork, so
lambdas, closures, local functions and unpicklable arguments work. Every task
ends with exactly one outcome, named from kernel facts (exit status, the
task cgroup's OOM counters, who killed it), and a map() raises the failure of
the lowest failing index whatever the timing (halt "ordered").

Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None,
     context=None, *, memory=None, timeout=None, retries=0, retry_on="oom",
     memory_growth=2.0, memory_ceiling=None, memory_budget=None,
     halt="ordered", cpus=None, pids=4096, result_max="64M",
     cgroup_parent=None, oom_group=True, allow_subprocess_oom=False,
     kill_grace=None)

  processes      tasks running at once (default os.cpu_count())
  memory         memory.max of each task: int bytes or "512M", "1.5G" (None: no limit)
  timeout        per attempt: seconds or "30s", "5m" (None: none); -> TimedOut
  retries        extra attempts of a failed task, for the outcomes in retry_on
                 ("oom", "timeout", "signal", "exit", "all"; default "oom")
  memory_growth  the memory limit is multiplied by this on each OOM retry,
                 capped by memory_ceiling
  memory_budget  do not start a task while the running tasks' limits would
                 exceed this sum
  halt           "ordered" (default): a map()'s verdict is the failure of its
                 lowest failing index; tasks after it are cancelled or killed,
                 tasks before it run to their end. "now": stop the map at the
                 first failure observed (fastest, not deterministic). "never":
                 run everything, raise the lowest failing index at the end.
  cpus           cpu.max quota per task (1.5 = 150%)
  pids           pids.max per task (None: none)
  result_max     the largest pickled result a task may send back
  kill_grace     at timeout: SIGTERM first, SIGKILL after this grace
  oom_group      (cgroup v2) memory.oom.group=1: an OOM kill takes the whole
                 task, so a subprocess's OOM becomes the task's OOMKilled. False
                 lets the task outlive it and report SubprocessOOM (cgroup v1
                 has no oom.group: always the latter)
  allow_subprocess_oom   a subprocess OOM kill with the task returning normally
                 counts as success
  cgroup_parent  create the cgroups below this cgroup (as /proc/self/cgroup
                 shows it) instead of below our own

The methods are multiprocessing.Pool's: apply, apply_async, map, map_async,
starmap, starmap_async, imap, imap_unordered, close, terminate, join, and the
context manager (whose exit calls terminate(), as multiprocessing's does).
apply_async/map_async return objects with get(timeout), wait(timeout), ready()
and successful(), plus ``records``: a TaskRecord per task (outcome, pid, exit
code, signal, memory limit and peak, wall time, attempts, sentence).

Exceptions
----------
A task that raises: the same exception is raised in the caller, with the
remote traceback as text in its ``__cause__`` (corral.RemoteTraceback, as
multiprocessing.pool does) and a note naming the task index and pid. A task
that did not get to raise is reported by a subclass of corral.TaskFailed,
which carries .index, .outcome, .pid, .exit_code, .signal, .memory_limit,
.memory_peak, .oom_kills, .attempts, .wall_time, .sentence and .record:

  OOMKilled       OOM-killed at its own memory limit (own_limit True)
  OOMOutside      OOM-killed below its own limit: an ancestor cgroup or the host
                  ran out. A subclass of OOMKilled (own_limit False): one
                  ``except OOMKilled`` catches every OOM kill, and the flag tells
                  whether a bigger limit would help.
  SubprocessOOM   a process the task started was OOM-killed; the task's own
                  return value, if any, is in .value (with oom_group=False or
                  on cgroup v1; see oom_group)
  TimedOut        killed at the pool's timeout
  Killed          killed by a signal (.signal): os.kill(), SIGSEGV, SIGABRT, ...
  Exited          the process exited without returning: sys.exit(n), os._exit(n)
  SpawnError      the process could not be started
  Cancelled, Aborted   not started / killed because the batch halted or the pool
                  was terminated (never the verdict of a map unless terminated)
  ResultError     the result exceeded result_max or could not be unpickled
  MaybeEncodingError   the result could not be pickled (as multiprocessing)

corral.TimeoutError (get(timeout) expired) subclasses multiprocessing's
TimeoutError and the builtin one.

Differences from multiprocessing.Pool
-------------------------------------
- Every task is a fresh fork() of the parent at the time the task starts (as
  multiprocessing with maxtasksperchild=1, but forked from the parent, not
  from a worker). Module state changed by a task never leaks into the next
  one; state changed in the parent after the Pool was created IS seen by
  later tasks. maxtasksperchild is accepted and ignored (it is always 1).
- The initializer runs before every task, in the task's process.
- Only the fork start method exists: context is accepted and ignored, and the
  function and arguments are never pickled (lambdas work; results and
  exceptions must pickle).
- A task's process keeps only fds 0, 1, 2 (stdin is /dev/null, stdout and
  stderr are the parent's): files and sockets the parent opened are CLOSED in
  the task (EBADF). Open what a task needs inside the task.
- Signals are reset to their defaults in the task, then SIGPIPE and SIGXFSZ
  are ignored again as Python does at startup. Tasks run in their own process
  group: Ctrl-C on the terminal reaches only the parent, which then kills
  every task, removes every cgroup and raises KeyboardInterrupt; the pool is
  terminated.
- No background threads: work advances while the caller is inside a Pool
  method (get, wait, ready, map, imap's next, join, ...). Tasks already
  started keep running meanwhile; apply_async()/map_async() start tasks
  immediately up to ``processes``; the rest start when you next call into the
  pool. Callbacks run in the thread that called into the pool, not in a
  result-handler thread.
- A map whose task fails raises the failure of the lowest failing index
  (multiprocessing waits for every task, then raises the first failure that
  *arrived*); with halt="ordered" the tasks after it are cancelled (never
  started) or killed, the tasks before it run to their end.
  imap raises at that index and is finished afterwards; imap_unordered yields
  every success as it arrives and raises the verdict when the batch is done.
  With halt="never" imap and imap_unordered raise each failure and continue,
  as multiprocessing does.
- A killed or OOM-killed task raises (OOMKilled, Killed, ...) instead of
  hanging the pool forever (see the README, "Why multiprocessing.Pool hangs").
- chunksize is accepted and ignored: every item is its own task. The per-task
  fork costs about 1-2 ms; for very cheap functions, batch items yourself.
- imap/imap_unordered consume their input lazily (multiprocessing reads all
  of it in a thread), and an iterator that is dropped before its end starts
  no more tasks; map/starmap turn a non-sequence into a list, as
  multiprocessing does.
- Forking while other threads run may deadlock the child (a lock held by a
  thread that does not exist in the child): corral warns with
  corral.ForkWarning, a DeprecationWarning, as CPython 3.12 does for
  os.fork(). Threads of C libraries (OpenBLAS, ...) count too.
  ``warnings.simplefilter("error", corral.ForkWarning)`` makes it an error.
- A Pool cannot be pickled, nor used from its own tasks or a forked child,
  and no Pool can be created inside a task.
- Needs Linux, root or a delegated cgroup, and libcorral (CORRAL_LIB=path, or
  found by the dynamic linker). ``corral.check()`` says what the host offers.
"""
from ._errors import (Aborted, Cancelled, Exited, ForkWarning, Killed, MaybeEncodingError,
                      OOMKilled, OOMOutside, RemoteTraceback, ResultError, ResultLost,
                      SpawnError, SubprocessOOM, TaskFailed, TimedOut, TimeoutError)
from ._lib import CorralError, version as lib_version
from ._pool import (ApplyResult, AsyncResult, IMapIterator, MapResult, Pool, TaskRecord,
                    check)

from . import _joblib

__version__ = "0.1.0"

_joblib.install()  # joblib's "corral" backend, registered when joblib is imported

__all__ = ["Pool", "ApplyResult", "AsyncResult", "MapResult", "IMapIterator", "TaskRecord",
           "check", "CorralError", "TaskFailed", "OOMKilled", "OOMOutside", "SubprocessOOM",
           "TimedOut", "Killed", "Exited", "SpawnError", "Cancelled", "Aborted",
           "ResultError", "ResultLost", "MaybeEncodingError", "RemoteTraceback", "TimeoutError",
           "ForkWarning", "lib_version"]
