"""corral: multiprocessing.Pool's API, concurrent.futures and joblib, over
workers that each run in a cgroup of their own: a worker that dies (OOM kill,
signal, os._exit, timeout) fails exactly the task it held, with the cause
named from kernel facts, and nothing ever hangs.

    import corral

    def work(n):
        return sum(range(n))

    with corral.Pool(4, memory="512M", timeout="10m") as pool:
        print(pool.map(work, [10, 20, 30]))              # [45, 190, 435]
        try:
            pool.map(lambda mib: len(bytearray(mib << 20)), [100, 4096, 200])
        except corral.OOMKilled as e:
            print(e.index, e.memory_limit)               # 1 536870912
            print(e)  # index 1 (<lambda>(4096)) was OOM-killed: it exceeded
                      # its memory limit (memory.max 512.0 MiB, peak 512.0 MiB)

    from corral.futures import ProcessPoolExecutor      # concurrent.futures
    with joblib.parallel_backend("corral", n_jobs=4, memory="2G"): ...   # joblib

How it works
------------
Each worker is a fork of the calling process (a libcorral function task) in
its own cgroup with the pool's memory limit, watched through a pidfd. Work
goes to it over a socketpair, one unit (a task, or a chunk of a map) at a
time; the pool always knows which unit a worker holds, and a word of memory
shared with the worker says which item of a chunk runs. When a worker ends,
libcorral says why (exit status, the cgroup's OOM counters, who killed it):
that item fails with corral's exception, the rest of its chunk runs on
another worker, the worker is replaced. A dispatcher thread moves the work in
the background and never forks; workers are forked by the threads that call
into the pool (or, when none is inside it, started as fresh interpreters).
A map's failure is the failure of its lowest failing index, whatever the
timing (halt "ordered").

Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None,
     context=None, *, memory=None, timeout=None, retries=0, retry_on="oom",
     memory_growth=2.0, memory_ceiling=None, memory_budget=None,
     halt="ordered", cpus=None, pids=4096, result_max="64M",
     cgroup_parent=None, oom_group=True, allow_subprocess_oom=False,
     kill_grace=None)

  processes        workers (default os.cpu_count())
  maxtasksperchild None: persistent workers (as multiprocessing); 1: a fresh
                   fork of the caller per task, which sees the caller's state
                   at that time; N: a worker is replaced after N units
  memory           memory.max of each worker: int bytes or "512M", "1.5G"
  timeout          per task (per item of a chunk), not per worker: seconds or
                   "30s", "5m"; -> TimedOut, the worker is killed and replaced
  retries          extra attempts of a failed task, for the outcomes in
                   retry_on ("oom", "timeout", "signal", "exit", "all");
                   an OOM retry runs in a fresh worker with the limit
                   multiplied by memory_growth, capped by memory_ceiling
  memory_budget    the workers' limits never sum above this
  halt             "ordered" (default): a map's verdict is its lowest failing
                   index; the items after it are cancelled or killed, those
                   before it run to their end. "now": stop at the first
                   failure observed. "never": run everything.
  cpus, pids       cpu.max quota and pids.max of each worker
  result_max       the largest pickled result of one unit
  kill_grace       at timeout: SIGTERM first, SIGKILL after this grace
  oom_group        (cgroup v2) an OOM kill takes the whole worker
  allow_subprocess_oom   a task whose subprocess was OOM-killed but that
                   returned counts as a success
  cgroup_parent    create the cgroups below this cgroup

The methods are multiprocessing.Pool's: apply, apply_async, map, map_async,
starmap, starmap_async, imap, imap_unordered (each with chunksize), close,
terminate, join, and the context manager (whose exit terminates).
apply_async/map_async return objects with get(timeout), wait(timeout),
ready(), successful() and ``records`` (a TaskRecord per task: outcome, pid,
exit code, signal, memory limit and per-task peak, wall time, attempts,
sentence).

Exceptions
----------
A task that raises: the same exception in the caller, with the remote
traceback in ``__cause__`` (corral.RemoteTraceback) and a note naming the
index, the call and the pid. Otherwise a subclass of corral.TaskFailed, with
.index (Python's numbering, from 0; 0 for apply/submit), .item (a short repr
of the call), .outcome, .pid, .exit_code, .signal, .memory_limit,
.memory_peak, .oom_kills, .attempts, .wall_time, .sentence, .record:

  OOMKilled       OOM-killed at its own memory limit (own_limit True)
  OOMOutside      OOM-killed below its own limit: an ancestor cgroup or the
                  host ran out (a subclass of OOMKilled, own_limit False)
  SubprocessOOM   a process the task started was OOM-killed; .value holds
                  what the task returned
  TimedOut        killed at the pool's timeout
  Killed          killed by a signal (.signal)
  Exited          the process exited without returning (sys.exit, os._exit)
  SpawnError      the worker could not be started
  Cancelled, Aborted   not started / killed because the call halted or the
                  pool was terminated
  ResultLost      the task finished but its result died with its worker (a
                  later item of the same chunk killed it); never a verdict
  ResultError     the result exceeded result_max or could not be unpickled
  MaybeEncodingError   the result could not be pickled (as multiprocessing)

See the README (section "Python") for the differences from multiprocessing
and the measurements. Needs Linux, and root or a delegated cgroup;
``corral.check()`` says what the host offers. Installed with
``pip install ./src/python`` (libcorral inside); CORRAL_LIB overrides the
library.
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
