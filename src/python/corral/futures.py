"""corral.futures.ProcessPoolExecutor: a concurrent.futures.Executor over
corral.Pool's workers.

    from corral.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(4, memory="2G", timeout="10m") as ex:
        fut = ex.submit(work, 1)
        print(fut.result())
        for r in ex.map(work, range(100), chunksize=10):
            ...

Differences from concurrent.futures.ProcessPoolExecutor:
- A task whose worker dies (OOM kill, signal, os._exit, timeout) fails only
  its own future, with corral's exception (corral.OOMKilled, corral.Killed,
  corral.TimedOut, ...), which names the task and the cause. The other
  futures are kept and the executor stays usable: there is no
  BrokenProcessPool.
- Every worker runs in its own cgroup, with corral.Pool's keyword options
  (memory=, timeout=, retries=, ...).
- Workers are forked (fork only); mp_context is accepted and ignored.
"""
import concurrent.futures as _cf
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

from . import _pool as P

__all__ = ["ProcessPoolExecutor"]

T = TypeVar("T")


class _Future(_cf.Future):
    """A Future whose result() and exception() also drive the pool: a worker
    that died is replaced by the thread that waits (see corral.Pool)."""

    def __init__(self, pool):
        super().__init__()
        self._corral_pool = pool

    def _drive(self, timeout):
        core = self._corral_pool._core
        if not core.thread_alive() and core._state == P._TERMINATE:
            return
        try:
            core.wait_for(self.done, timeout)
        except RuntimeError:
            pass  # inside a callback (the pool's thread): plain waiting

    def result(self, timeout=None):
        self._drive(timeout)
        return super().result(timeout=0 if self.done() else timeout)

    def exception(self, timeout=None):
        self._drive(timeout)
        return super().exception(timeout=0 if self.done() else timeout)


class ProcessPoolExecutor(_cf.Executor):
    """concurrent.futures.ProcessPoolExecutor's API over corral.Pool.

    ProcessPoolExecutor(max_workers=None, mp_context=None, initializer=None,
                        initargs=(), *, max_tasks_per_child=None, **options)

    options are corral.Pool's keyword options (memory, timeout, retries,
    retry_on, memory_growth, memory_ceiling, cpus, pids, result_max,
    cgroup_parent, oom_group, allow_subprocess_oom, kill_grace)."""

    def __init__(self, max_workers: Optional[int] = None, mp_context: Any = None,
                 initializer: Optional[Callable[..., Any]] = None, initargs: tuple = (), *,
                 max_tasks_per_child: Optional[int] = None, **options: Any) -> None:
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        options.pop("halt", None)
        self._pool = P.Pool(max_workers, initializer, initargs, max_tasks_per_child,
                            halt="never", **options)
        self._lock = threading.Lock()
        self._shutdown = False
        self._jobs = []

    @property
    def _max_workers(self) -> int:
        return self._pool._processes

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> "_cf.Future[T]":
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            f = _Future(self._pool)
            job = self._pool._submit_future(fn, args, kwargs, f)
            self._jobs = [j for j in self._jobs if not j.finished]
            self._jobs.append(job)
            return f

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any],
            timeout: Optional[float] = None, chunksize: int = 1) -> Iterator[T]:
        """Results in order. Every call is submitted at once; an exception is
        raised when its result is reached; timeout (seconds) counts from this
        call. Leaving the iterator early cancels the calls not yet started."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            it = self._pool._map_iter(fn, list(zip(*iterables)), chunksize)
            self._jobs.append(it._job)
        end = None if timeout is None else time.monotonic() + timeout
        return _results(it, end)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                self._pool._cancel_pending()
        if self._pool._state == P._RUN:
            self._pool.close()
        if wait:
            self._pool.join()


def _results(it, end):
    try:
        while True:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise _cf.TimeoutError()
            try:
                yield it.next(left)
            except StopIteration:
                return
            except P.TimeoutError:
                raise _cf.TimeoutError() from None
    finally:
        it._cancel_rest()
