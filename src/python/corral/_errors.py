"""Exceptions of corral.Pool."""
import builtins
import multiprocessing
from typing import Any, Optional

__all__ = ["TaskFailed", "OOMKilled", "OOMOutside", "SubprocessOOM", "TimedOut",
           "Killed", "Exited", "SpawnError", "Cancelled", "Aborted", "ResultError", "ResultLost",
           "MaybeEncodingError", "RemoteTraceback", "TimeoutError", "ForkWarning"]


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a task, as text.

    Attached as ``__cause__`` of the re-raised exception, exactly as
    multiprocessing.pool does with its own RemoteTraceback."""

    def __init__(self, tb):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return self.tb


class TimeoutError(multiprocessing.TimeoutError, builtins.TimeoutError):
    """AsyncResult.get(timeout) expired (the task itself goes on running).

    A subclass of both multiprocessing.TimeoutError and the builtin
    TimeoutError, so existing ``except`` clauses keep working."""


class ForkWarning(DeprecationWarning):
    """A task is forked while other threads run in this process.

    The same situation CPython 3.12 reports for os.fork() with a
    DeprecationWarning: a lock held by another thread at fork time stays locked
    forever in the child (logging handlers, C libraries, ...)."""


class MaybeEncodingError(Exception):
    """A task's result (or exception) could not be pickled in the child."""

    def __init__(self, exc, value):
        self.exc = repr(exc)
        self.value = repr(value)
        super().__init__(self.exc, self.value)

    def __str__(self):
        return f"Error sending result: '{self.value}'. Reason: '{self.exc}'"


class TaskFailed(Exception):
    """A task did not return a value (besides raising a Python exception).

    Attributes (None when not applicable):
      index        position of the task in its call's input, from 0 (0 for
                   apply(), apply_async() and submit(): the call's only task)
      item         a short repr of the call: "hog(256)"
      outcome      corral's outcome name: "oom", "oom_outside", "subprocess_oom",
                   "timeout", "signal", "exit", "spawn_error", "cancelled",
                   "aborted", "lost"
      sentence     the one-line explanation, which says "index N (call)" too
      pid, exit_code, signal, attempts
      memory_limit bytes of memory.max the last attempt ran with (None: none)
      memory_peak  bytes, peak memory use of the task's cgroup (None: unknown)
      oom_kills    processes of the task that the OOM killer killed
      wall_time    seconds the last attempt ran
      record       the full TaskRecord of the last attempt
    """

    outcome: Optional[str] = None
    index: Optional[int]
    item: Optional[str]
    sentence: Optional[str]
    pid: Optional[int]
    exit_code: Optional[int]
    signal: Optional[int]
    attempts: Optional[int]
    memory_limit: Optional[int]
    memory_peak: Optional[int]
    oom_kills: Optional[int]
    wall_time: Optional[float]
    record: Any

    def __init__(self, message: str, record: Any = None, index: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.record = record
        self.index = index if index is not None else (record.index if record else None)
        r = record
        self.item = r.item if r else None
        self.sentence = r.sentence if r else None
        self.pid = r.pid if r else None
        self.exit_code = r.exit_code if r else None
        self.signal = r.signal if r else None
        self.attempts = r.attempt if r else None
        self.memory_limit = r.memory_limit if r else None
        self.memory_peak = r.memory_peak if r else None
        self.oom_kills = r.oom_kills if r else None
        self.wall_time = r.wall_time if r else None
        if r is not None and self.outcome is None:
            self.outcome = r.outcome

    def __reduce__(self):
        return (_rebuild_task_failed, (type(self), self.message, self.record, self.index))

    def __str__(self):
        return self.message


def _rebuild_task_failed(cls, message, record, index):
    return cls(message, record, index)


class OOMKilled(TaskFailed):
    """The task was OOM-killed at its own memory limit (memory.max).

    ``own_limit`` is True. Retrying with more memory (retries=, memory_growth=)
    helps."""
    outcome = "oom"
    own_limit = True


class OOMOutside(OOMKilled):
    """The task was OOM-killed although its own limit did not fire: an ancestor
    cgroup's limit or the whole host ran out of memory. A subclass of
    OOMKilled (``except OOMKilled`` catches both) with ``own_limit`` False: a
    bigger limit for the task does not help, less parallelism might."""
    outcome = "oom_outside"
    own_limit = False


class SubprocessOOM(TaskFailed):
    """A process the task started was OOM-killed while the task went on: what
    the task returned may be incomplete. ``value`` holds what it returned, if
    it returned at all."""
    outcome = "subprocess_oom"
    value: Any = None


class TimedOut(TaskFailed):
    """corral killed the task at the pool's per-task ``timeout``."""
    outcome = "timeout"


class Killed(TaskFailed):
    """The task was killed by a signal (``signal``) that was neither an OOM kill
    nor corral's timeout: os.kill() by itself or by someone else, a crash
    (SIGSEGV, SIGABRT), ..."""
    outcome = "signal"


class Exited(TaskFailed):
    """The task's process exited (``exit_code``) without returning a value:
    sys.exit(), os._exit(), a C library calling exit()."""
    outcome = "exit"


class SpawnError(TaskFailed):
    """The task's process could not be started (``record.spawn_step``)."""
    outcome = "spawn_error"


class Cancelled(TaskFailed):
    """The task never started: its batch halted (or the pool was terminated)."""
    outcome = "cancelled"


class Aborted(TaskFailed):
    """The task was killed because its batch halted or the pool was terminated."""
    outcome = "aborted"


class ResultLost(TaskFailed):
    """The task finished, but its result was lost with its worker: the worker
    died (OOM kill, signal, ...) while it ran a later item of the same chunk,
    before the chunk's results were sent (every 20 ms, and at the chunk's end).
    ``__cause__`` is the failure of the item that was running. Not a verdict
    of its own: a call raises the failure that caused it."""
    outcome = "lost"


class ResultError(TaskFailed):
    """The task's result could not be received: it exceeded the pool's
    ``result_max``, or it could not be unpickled in the parent."""
    outcome = "result"
