"""corral.Pool: multiprocessing.Pool's API over libcorral, one forked process
and one cgroup per task.

How it works (see the package docstring for the user's view):

- Every map()-like call is one corral *batch*: its own executor (own batch
  cgroup, own watchdog process, halt policy of the pool). apply()/apply_async()
  tasks share one executor with halt "never" (they are independent), created
  when the first one is submitted and freed when none is outstanding.
- Admission is done here, across the pool's executors: at most ``processes``
  tasks are submitted and not yet finished at any time, first come first
  served in the order the calls were made. libcorral's own queue therefore
  stays (nearly) empty, which keeps the halt semantics of each batch exact: a
  task that was never submitted can simply be dropped when its batch halts.
- A task is a ctypes callback ``_child_entry(key, out_fd)`` that libcorral
  calls in the forked child; ``key`` indexes ``_TASKS``, a dict the child
  inherited by fork. The child writes one framed, pickled record to out_fd:
  ``R`` + value, or ``E`` + traceback text + exception.
- No background thread: work advances inside Pool methods (``_drive``), which
  wait with select.poll() on the executors' fds (the GIL is released, signals
  are handled: Ctrl-C raises KeyboardInterrupt there, and the pool is then
  terminated) and call corral_next(ex, &r, 0) through ctypes.PyDLL, with the
  GIL held, because that call forks.
"""
import collections
import ctypes
import itertools
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import traceback
import warnings
import weakref

from . import _lib as L
from ._errors import (Aborted, Cancelled, Exited, ForkWarning, Killed, MaybeEncodingError,
                      OOMKilled, OOMOutside, RemoteTraceback, ResultError, SpawnError,
                      SubprocessOOM, TaskFailed, TimedOut, TimeoutError)

__all__ = ["Pool", "AsyncResult", "ApplyResult", "MapResult", "IMapIterator",
           "TaskRecord", "check"]

# ---------------------------------------------------------------- child side

# key -> (func, args, kwds, initializer, initargs); inherited by the children.
_TASKS = {}
_KEYS = itertools.count(1)
_IN_CHILD = False

_HDR = struct.Struct("<Q")
_TBLEN = struct.Struct("<I")


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _flush_std():
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:
                f.flush()
        except Exception:
            pass


def _format_remote_tb(exc):
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return '\n"""\n%s"""' % tb


def _encode_exception(exc):
    if not isinstance(exc, Exception):
        # KeyboardInterrupt, GeneratorExit, ... raised inside the task: do not
        # re-raise those as such in the parent.
        wrapped = RuntimeError(f"the task raised {type(exc).__name__}: {exc}")
        wrapped.__cause__ = exc
        tb = _format_remote_tb(exc)
        exc = wrapped
    else:
        tb = _format_remote_tb(exc)
    tbb = tb.encode("utf-8", "replace")
    try:
        body = pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        body = pickle.dumps(MaybeEncodingError(e, exc), pickle.HIGHEST_PROTOCOL)
    return b"E" + _TBLEN.pack(len(tbb)) + tbb + body


def _child_run(key, out_fd):
    global _IN_CHILD
    _IN_CHILD = True
    # libcorral reset every signal to SIG_DFL; give back what the interpreter
    # sets up at startup (SIGPIPE and SIGXFSZ ignored: errors instead of
    # deaths) and tell the signal module about SIGINT's real disposition.
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if hasattr(signal, "SIGXFSZ"):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except (ValueError, OSError):
        pass
    entry = _TASKS.get(key)
    code, payload = 1, None
    if entry is None:
        payload = _encode_exception(RuntimeError(f"corral: unknown task key {key}"))
    else:
        func, args, kwds, initializer, initargs = entry
        try:
            if initializer is not None:
                initializer(*initargs)
            value = func(*args, **kwds)
        except SystemExit as e:
            c = e.code
            if c is None:
                code = 0
            elif isinstance(c, int):
                code = c & 0xFF
            else:
                try:
                    print(c, file=sys.stderr)
                except Exception:
                    pass
                code = 1
        except BaseException as e:
            payload = _encode_exception(e)
        else:
            try:
                payload = b"R" + pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
                code = 0
            except Exception as e:
                payload = _encode_exception(MaybeEncodingError(e, value))
    _flush_std()
    if payload is not None:
        try:
            _write_all(out_fd, _HDR.pack(len(payload)) + payload)
        except OSError:
            code = code or 1  # the parent stopped reading: result_max exceeded
    return code


def _child_entry(arg, out_fd):
    # Runs in the forked child; must never let an exception escape (ctypes
    # would print it and return 0, i.e. "success").
    try:
        return _child_run(arg or 0, out_fd)
    except BaseException:
        try:
            os.write(2, ("corral: internal error in a task process:\n" +
                         traceback.format_exc()).encode("utf-8", "replace"))
        except BaseException:
            pass
        return 70


_FN = L.FN_T(_child_entry)
_FN_ADDR = ctypes.cast(_FN, ctypes.c_void_p).value
_HOOKS = L.fork_hook_addresses()

# ---------------------------------------------------------------- records


class TaskRecord:
    """What libcorral knows about one attempt of a task."""

    __slots__ = ("index", "seq", "attempt", "final", "outcome", "pid", "exit_code",
                 "signal", "status", "memory_limit", "memory_peak", "oom_kills",
                 "own_limit_hit", "pids_limit_hit", "wall_time", "user_time", "sys_time",
                 "start_time", "sentence", "spawn_step", "spawn_errno")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    @classmethod
    def from_result(cls, r, index):
        return cls(
            index=index, seq=r.seq, attempt=r.attempt, final=bool(r.final),
            outcome=L.OUTCOMES[r.outcome] if 0 <= r.outcome < len(L.OUTCOMES) else "?",
            pid=r.pid or None,
            exit_code=r.exit_code if r.exit_code >= 0 else None,
            signal=r.signal or None, status=r.status,
            memory_limit=None if r.memory_max == L.UNLIMITED else r.memory_max,
            memory_peak=r.memory_peak or None, oom_kills=r.oom_kills,
            own_limit_hit=bool(r.own_limit_hit), pids_limit_hit=bool(r.pids_limit_hit),
            wall_time=r.wall_s, user_time=r.user_s, sys_time=r.sys_s,
            start_time=r.start_time,
            sentence=r.sentence.decode("utf-8", "replace"),
            spawn_step=r.spawn_step.decode() if r.spawn_step else None,
            spawn_errno=r.spawn_errno or None)

    def __getstate__(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, st):
        for k in self.__slots__:
            setattr(self, k, st.get(k))

    def __repr__(self):
        return (f"TaskRecord(index={self.index}, outcome={self.outcome!r}, "
                f"attempt={self.attempt}, pid={self.pid}, exit_code={self.exit_code}, "
                f"signal={self.signal}, memory_limit={self.memory_limit}, "
                f"memory_peak={self.memory_peak}, wall_time={self.wall_time:.3f})")


_OUTCOME_EXC = {
    "oom": OOMKilled, "oom_outside": OOMOutside, "subprocess_oom": SubprocessOOM,
    "timeout": TimedOut, "signal": Killed, "exit": Exited, "spawn_error": SpawnError,
    "cancelled": Cancelled, "aborted": Aborted,
}


def _message(rec, job):
    s = rec.sentence or f"task {rec.seq} ended: {rec.outcome}"
    prefix = f"task {rec.seq}"
    rest = s[len(prefix):] if s.startswith(prefix) else ": " + s
    if job.kind == "apply":
        return "task" + rest
    return f"task {rec.index}" + rest


def _parse_payload(data):
    """-> None (nothing written), ("R", value), ("E", exc), or ("X", why)."""
    if not data:
        return None
    if len(data) < _HDR.size:
        return ("X", "its result was cut short")
    (n,) = _HDR.unpack_from(data)
    body = data[_HDR.size:]
    if len(body) != n:
        return ("X", "its result was cut short")
    tag = body[:1]
    if tag == b"R":
        try:
            return ("R", pickle.loads(body[1:]))
        except BaseException as e:
            return ("X", f"its result could not be unpickled: {type(e).__name__}: {e}")
    if tag == b"E":
        (tl,) = _TBLEN.unpack_from(body, 1)
        tb = body[1 + _TBLEN.size:1 + _TBLEN.size + tl].decode("utf-8", "replace")
        try:
            exc = pickle.loads(body[1 + _TBLEN.size + tl:])
        except BaseException as e:
            exc = ResultError(f"the task raised an exception that could not be unpickled "
                              f"({type(e).__name__}: {e})")
        if not isinstance(exc, BaseException):
            exc = ResultError(f"the task sent a malformed exception: {exc!r}")
        exc.__cause__ = RemoteTraceback(tb)
        return ("E", exc)
    return ("X", "its result was malformed")


# ---------------------------------------------------------------- executors


class _Executor:
    """One libcorral executor (one batch)."""

    def __init__(self, pool, halt):
        o = pool._options(halt)
        ptr = ctypes.c_void_p()
        err = L.Error()
        rc = L.lib.corral_executor_new(ctypes.byref(o), ctypes.byref(ptr), ctypes.byref(err))
        if rc < 0:
            err.raise_("corral: cannot start a batch", rc)
        self.ptr = ptr
        self.fd = L.lib.corral_fd(ptr)
        self.closed = False
        self.aborted = False
        self.outstanding = 0
        self.jobs = set()

    def submit(self, key, stdout_fd, stderr_fd):
        t = L.Task()
        L.lib.corral_task_init(ctypes.byref(t))
        t.fn = _FN_ADDR
        t.fn_arg = key
        t.data = key
        t.stdin_fd = L.FD_NULL
        t.stdout_fd = stdout_fd
        t.stderr_fd = stderr_fd
        err = L.Error()
        seq = L.lib.corral_submit(self.ptr, ctypes.byref(t), ctypes.byref(err))
        if seq < 0:
            err.raise_("corral: cannot submit a task", seq)
        self.outstanding += 1
        return seq

    def close(self):
        if not self.closed:
            L.lib.corral_close(self.ptr)
            self.closed = True

    def abort(self):
        if not self.aborted and self.ptr:
            L.lib.corral_abort(self.ptr)
            self.aborted = True

    def halted(self):
        return bool(L.lib.corral_halted(self.ptr))

    def summary(self):
        s = L.Summary()
        L.lib.corral_summary(self.ptr, ctypes.byref(s))
        return s

    def free(self):
        if self.ptr:
            p, self.ptr = self.ptr, None
            L.lib.corral_executor_free(p)


def _free_all(executors):
    # weakref.finalize callback: the Pool object is gone (or the interpreter
    # exits) without terminate(): kill and clean up what is left.
    for ex in reversed(executors):
        try:
            ex.abort()
            ex.free()
        except Exception:
            pass
    executors.clear()


# ---------------------------------------------------------------- jobs


class _Job:
    """One call: apply_async (one task), or a map-like call (one batch)."""

    def __init__(self, pool, kind, items, mode, callback=None, error_callback=None):
        self.pool = pool
        self.kind = kind            # "apply" | "map"
        self.mode = mode            # "list" | "ordered" | "unordered" | "apply"
        self.items = items          # iterator of (func, args, kwds)
        self.exhausted = False
        self.stopped = False        # no more submissions (halted / terminated)
        self.next_index = 0
        self.outstanding = 0
        self.exe = None
        self.values = {}
        self.failures = {}          # index -> exception (real failures)
        self.consequences = {}      # index -> Cancelled/Aborted exception
        self.records = {}
        self.arrivals = collections.deque()
        self.seq_index = {}
        self.halt_policy = pool._halt_name if kind == "map" else "never"
        self.finished = False
        self.verdict = None
        self.value = None
        self.callback = callback
        self.error_callback = error_callback
        self.warned_threads = False
        self.input_error = None

    # -- submission side
    def wants_more(self):
        return not self.finished and not self.stopped and not self.exhausted

    def take(self):
        """Next (index, func, args, kwds) or None when the input is exhausted."""
        try:
            func, args, kwds = next(self.items)
        except StopIteration:
            self.exhausted = True
            return None
        except Exception as e:  # the caller's iterable raised
            self.exhausted = True
            self.input_error = e
            return None
        i = self.next_index
        self.next_index += 1
        return i, func, args, kwds

    def stop(self):
        self.stopped = True

    # -- results
    def deliver(self, index, ok, value, rec):
        self.records[index] = rec
        if rec is not None and rec.seq is not None:
            self.seq_index[rec.seq] = index
        if ok:
            if self.mode != "unordered":
                self.values[index] = value
        elif isinstance(value, (Cancelled, Aborted)):
            self.consequences[index] = value
        else:
            self.failures[index] = value
            if self.halt_policy != "never":
                self.stopped = True
                # A failure libcorral did not see (the process exited 0 but
                # sent no usable result): halt the batch ourselves for "now".
                if self.halt_policy == "now" and rec is not None and rec.outcome == "ok" \
                        and self.exe is not None:
                    self.exe.abort()
        if self.mode == "unordered":
            self.arrivals.append((index, ok, value))
        if self.kind == "apply":
            self.finish(None)

    def all_done(self):
        return (self.exhausted or self.stopped) and self.outstanding == 0

    def finish(self, summary):
        if self.finished:
            return
        self.finished = True
        verdict = None
        if self.input_error is not None and not self.failures:
            verdict = self.input_error
        elif self.failures:
            idx = None
            if self.halt_policy == "now" and summary is not None and summary.verdict_seq:
                idx = self.seq_index.get(summary.verdict_seq)
            if idx not in self.failures:
                idx = min(self.failures)
            verdict = self.failures[idx]
        elif self.consequences:
            verdict = self.consequences[min(self.consequences)]
        elif self.kind == "map" and self.mode == "list" and len(self.values) != self.next_index:
            verdict = Aborted("the pool was terminated before the job completed")
        self.verdict = verdict
        if verdict is None:
            if self.mode == "list":
                self.value = [self.values[i] for i in range(self.next_index)]
                self.values = {}
            elif self.mode == "apply":
                self.value = self.values.get(0)
        if verdict is None and self.callback is not None and self.mode in ("list", "apply"):
            self.pool._call_back(self.callback, self.value)
        elif verdict is not None and self.error_callback is not None:
            self.pool._call_back(self.error_callback, verdict)

    def terminate(self):
        """The pool is terminated: settle this job now."""
        self.stopped = True
        if not self.finished:
            if self.kind == "apply" and not self.values and not self.failures:
                self.consequences[0] = Aborted("the pool was terminated before the task "
                                               "completed")
            self.finish(None)


# ---------------------------------------------------------------- results


class ApplyResult:
    """What apply_async()/map_async() return: multiprocessing's AsyncResult API.

    get(), wait() and ready() also make the pool's work progress (there are no
    background threads); callbacks run in the thread that calls them."""

    def __init__(self, pool, job):
        self._pool = pool
        self._job = job

    def ready(self):
        if not self._job.finished:
            self._pool._drive(lambda: self._job.finished, 0)
        return self._job.finished

    def wait(self, timeout=None):
        if not self._job.finished:
            self._pool._drive(lambda: self._job.finished, timeout)

    def successful(self):
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._job.verdict is None

    def get(self, timeout=None):
        self.wait(timeout)
        if not self._job.finished:
            raise TimeoutError(f"the result was not ready within {timeout} s")
        if self._job.verdict is not None:
            raise self._job.verdict
        return self._job.value

    @property
    def records(self):
        """TaskRecord of each task's final attempt (a list for map jobs, in
        input order, None where a task never produced a record)."""
        j = self._job
        if j.kind == "apply":
            return j.records.get(0)
        return [j.records.get(i) for i in range(j.next_index)]

    def __repr__(self):
        state = "ready" if self._job.finished else "pending"
        return f"<corral.{type(self).__name__} {state}>"


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    pass


class IMapIterator:
    """Iterator of imap() (input order) and imap_unordered() (completion order).

    ``next(timeout)`` is supported as in multiprocessing. Once a failure was
    raised under halt "ordered" or "now", the iterator is finished (like a
    generator that raised)."""

    def __init__(self, pool, job):
        self._pool = pool
        self._job = job
        self._pos = 0
        self._done = False

    def __iter__(self):
        return self

    def __next__(self):
        return self.next()

    def __del__(self):
        # Abandoned (e.g. a `break` out of the loop): start no more of its
        # tasks; the running ones finish and are collected by later calls.
        job = getattr(self, "_job", None)
        if job is not None and not job.finished:
            job.stopped = True

    def next(self, timeout=None):
        if self._done:
            raise StopIteration
        if self._job.mode == "unordered":
            return self._next_unordered(timeout)
        return self._next_ordered(timeout)

    def _next_ordered(self, timeout):
        job = self._job

        def ready():
            i = self._pos
            return (i in job.values or i in job.failures or i in job.consequences
                    or job.finished)

        if not self._pool._drive(ready, timeout):
            raise TimeoutError(f"no result within {timeout} s")
        i = self._pos
        if i in job.values:
            self._pos += 1
            job.records.pop(i, None)
            return job.values.pop(i)
        if i in job.failures and job.halt_policy != "now":
            self._pos += 1
            if job.halt_policy != "never":
                self._done = True  # ordered: every lower index succeeded
            raise job.failures[i]
        if i in job.failures or i in job.consequences:
            # halt "now" (or terminate): the verdict may be another task's
            if not job.finished:
                self._pool._drive(lambda: job.finished, None)
            self._done = True
            if job.verdict is not None:
                raise job.verdict
        if job.finished and i >= job.next_index:
            self._done = True
            if job.verdict is not None and not job.failures and not job.consequences:
                raise job.verdict  # the input iterable raised
            raise StopIteration
        self._done = True
        if job.verdict is not None:
            raise job.verdict
        raise StopIteration

    def _next_unordered(self, timeout):
        job = self._job
        while True:
            if not self._pool._drive(lambda: bool(job.arrivals) or job.finished, timeout):
                raise TimeoutError(f"no result within {timeout} s")
            while job.arrivals:
                index, ok, value = job.arrivals.popleft()
                if ok:
                    return value
                if job.halt_policy == "never" and not isinstance(value, (Cancelled, Aborted)):
                    raise value
            if job.finished:
                self._done = True
                if job.verdict is not None:
                    raise job.verdict
                raise StopIteration


# ---------------------------------------------------------------- the pool

_RUN, _CLOSE, _TERMINATE = "RUN", "CLOSE", "TERMINATE"


def _os_thread_count():
    try:
        with open("/proc/self/stat", "rb") as f:
            st = f.read()
        return int(st[st.rindex(b")") + 2:].split()[17])
    except (OSError, ValueError, IndexError):
        return threading.active_count()


def _user_stacklevel():
    """stacklevel for warnings.warn that points at the caller of corral."""
    here = os.path.dirname(os.path.abspath(__file__))
    level, f = 1, sys._getframe(1)
    while f is not None and os.path.dirname(os.path.abspath(f.f_code.co_filename)) == here:
        f = f.f_back
        level += 1
    return level


def _valid_fd(fd):
    try:
        os.fstat(fd)
        return fd
    except OSError:
        return L.FD_NULL


class Pool:
    """A drop-in for multiprocessing.Pool whose every task runs in its own
    forked process and cgroup. See the package docstring."""

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None,
                 context=None, *, memory=None, timeout=None, retries=0, retry_on="oom",
                 memory_growth=2.0, memory_ceiling=None, memory_budget=None,
                 halt="ordered", cpus=None, pids=4096, result_max="64M",
                 cgroup_parent=None, oom_group=True, allow_subprocess_oom=False,
                 kill_grace=None):
        if _IN_CHILD:
            raise RuntimeError("corral.Pool cannot be created inside a corral task")
        if processes is None:
            processes = os.cpu_count() or 1
        if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (not isinstance(maxtasksperchild, int)
                                             or maxtasksperchild <= 0):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if halt not in L.HALTS:
            raise ValueError(f"halt must be one of {', '.join(L.HALTS)}, not {halt!r}")
        self._processes = processes
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._halt_name = halt
        self._memory = L.parse_size(memory, "memory")
        self._memory_ceiling = L.parse_size(memory_ceiling, "memory_ceiling")
        self._memory_budget = L.parse_size(memory_budget, "memory_budget")
        self._timeout_ns = L.parse_duration(timeout, "timeout")
        self._kill_grace_ns = 0 if kill_grace is None else L.parse_duration(kill_grace,
                                                                             "kill_grace")
        self._result_max = L.parse_size(result_max, "result_max")
        if self._result_max == L.UNLIMITED:
            self._result_max = (1 << 63) - 1
        if not isinstance(retries, int) or retries < 0:
            raise ValueError("retries must be an int >= 0")
        self._retries = retries
        ro = ctypes.c_uint()
        if isinstance(retry_on, (list, tuple, set, frozenset)):
            retry_on = ",".join(retry_on) or "none"
        if L.lib.corral_parse_retry_on(str(retry_on).encode(), ctypes.byref(ro)) < 0:
            raise ValueError(f"invalid retry_on {retry_on!r}: a list of oom, timeout, "
                             f"signal, exit (or 'all', 'none')")
        self._retry_on = ro.value
        if not memory_growth >= 1.0:
            raise ValueError("memory_growth must be >= 1")
        self._memory_growth = float(memory_growth)
        self._cpus = float(cpus) if cpus else 0.0
        self._pids = L.UNLIMITED if pids is None else int(pids)
        # None: libcorral's provider chain decides (README, "Where corral gets
        # its cgroups"); a second executor of this process goes next to the
        # first one's batch by itself (hierarchy.c, supervisor_home).
        self._cgroup_parent = cgroup_parent.encode() if cgroup_parent else None
        self._oom_group = bool(oom_group)
        self._allow_subprocess_oom = bool(allow_subprocess_oom)
        self._state = _RUN
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._jobs = []                 # unfinished jobs, in call order
        self._executors = []            # live _Executor objects
        self._apply_exe = None
        self._keys = {}                 # key -> (job, index, exe)
        self._inflight = 0
        self._stdout = _valid_fd(1)
        self._stderr = _valid_fd(2)
        self._finalizer = weakref.finalize(self, _free_all, self._executors)
        # The apply() executor lives as long as the pool, and is created now:
        # this fails at once, not at the first task, if the host cannot do it.
        # On cgroup v2 it also pins where we live: when our own cgroup is not
        # the root, libcorral moves us into <its batch>/supervisor (the
        # no-internal-process rule); every later batch is created next to it
        # under the same cgroup_parent (no supervisor of its own), so batches
        # may end in any order and each one's teardown is complete. This one
        # is freed last (join() after close(), terminate(), or the GC).
        self._apply_exe = _Executor(self, "never")
        self._executors.append(self._apply_exe)

    # -- options
    def _options(self, halt):
        o = L.Options()
        L.lib.corral_options_init(ctypes.byref(o))
        o.jobs = self._processes
        o.memory_max = self._memory
        o.pids_max = self._pids
        o.cpus = self._cpus
        o.timeout_ns = self._timeout_ns
        o.kill_grace_ns = self._kill_grace_ns
        o.halt = L.HALTS[halt]
        o.retries = self._retries
        o.retry_on = self._retry_on
        o.memory_growth = self._memory_growth
        o.memory_ceiling = self._memory_ceiling
        o.memory_budget = self._memory_budget
        o.oom_group = self._oom_group
        o.allow_subprocess_oom = self._allow_subprocess_oom
        o.cgroup_parent = self._cgroup_parent
        o.capture_max = 4 << 20
        o.fn_result_max = self._result_max
        o.before_fork, o.after_fork_parent, o.after_fork_child = _HOOKS
        return o

    # -- guards
    def _check_running(self):
        if _IN_CHILD or os.getpid() != self._pid:
            raise RuntimeError("a corral.Pool cannot be used from its own tasks or from "
                               "a forked child")
        if self._state != _RUN:
            raise ValueError("Pool not running")

    def _check_usable(self):
        if _IN_CHILD or os.getpid() != self._pid:
            raise RuntimeError("a corral.Pool cannot be used from its own tasks or from "
                               "a forked child")

    # -- public API (multiprocessing.Pool's)
    def apply(self, func, args=(), kwds={}):
        """func(*args, **kwds) in a new process; returns its result."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        with self._lock:
            self._check_running()
            job = _Job(self, "apply", iter([(func, tuple(args), dict(kwds))]), "apply",
                       callback, error_callback)
            self._jobs.append(job)
            self._drive(lambda: True, 0)  # start it now if a slot is free
            return ApplyResult(self, job)

    def map(self, func, iterable, chunksize=None):
        """[func(x) for x in iterable], each call in its own process."""
        return self._map_async(func, iterable, False, None, None).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, False, callback, error_callback)

    def starmap(self, func, iterable, chunksize=None):
        """[func(*args) for args in iterable]."""
        return self._map_async(func, iterable, True, None, None).get()

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        return self._map_async(func, iterable, True, callback, error_callback)

    def imap(self, func, iterable, chunksize=1):
        """Results in input order, as they become available."""
        return self._imap(func, iterable, "ordered")

    def imap_unordered(self, func, iterable, chunksize=1):
        """Results in completion order."""
        return self._imap(func, iterable, "unordered")

    def _items(self, func, iterable, star):
        if star:
            return ((func, tuple(a), {}) for a in iterable)
        return ((func, (a,), {}) for a in iterable)

    def _map_async(self, func, iterable, star, callback, error_callback):
        with self._lock:
            self._check_running()
            if not hasattr(iterable, "__len__"):
                iterable = list(iterable)  # as multiprocessing does for map()
            job = _Job(self, "map", self._items(func, iterable, star), "list", callback,
                       error_callback)
            self._jobs.append(job)
            self._drive(lambda: True, 0)
            return MapResult(self, job)

    def _imap(self, func, iterable, mode):
        with self._lock:
            self._check_running()
            job = _Job(self, "map", self._items(func, iterable, False), mode)
            self._jobs.append(job)
            self._drive(lambda: True, 0)
            return IMapIterator(self, job)

    def close(self):
        """No more tasks; join() then waits for the submitted ones."""
        with self._lock:
            self._check_usable()
            if self._state == _RUN:
                self._state = _CLOSE

    def terminate(self):
        """Kill every running task, cancel the queued ones, free everything."""
        with self._lock:
            if _IN_CHILD or os.getpid() != self._pid:
                return
            self._terminate_locked()

    def join(self):
        """Wait until every submitted task has finished (after close/terminate)."""
        with self._lock:
            self._check_usable()
            if self._state == _RUN:
                raise ValueError("Pool is still running")
            self._drive(lambda: not self._jobs, None)
            if self._state == _CLOSE:
                self._terminate_locked()  # nothing runs: just frees the executors
                self._state = _CLOSE

    def __enter__(self):
        with self._lock:
            self._check_running()
        return self

    def __exit__(self, *exc):
        self.terminate()

    def __repr__(self):
        return (f"<corral.Pool state={self._state} processes={self._processes} "
                f"inflight={self._inflight}>")

    def __reduce__(self):
        raise NotImplementedError("pool objects cannot be passed between processes "
                                  "or pickled")

    # -- machinery
    def _call_back(self, cb, value):
        try:
            cb(value)
        except Exception:
            sys.stderr.write("corral.Pool: exception in a result callback:\n")
            traceback.print_exc()

    def _terminate_locked(self):
        if self._state == _TERMINATE and not self._executors:
            return
        self._state = _TERMINATE
        for ex in list(self._executors):
            ex.abort()
        # Collect what the aborts produced (bounded: the tasks are SIGKILLed).
        deadline = time.monotonic() + 10
        try:
            while self._executors and time.monotonic() < deadline:
                self._step(submit=False)
                if not self._executors:
                    break
                if not any(ex.outstanding for ex in self._executors):
                    break
                self._wait(0.05)
        finally:
            # The pool's first executor (apply) last: see __init__.
            for ex in reversed(self._executors):
                ex.free()
            self._executors.clear()
            self._apply_exe = None
            for key, (job, index, exe) in list(self._keys.items()):
                _TASKS.pop(key, None)
            self._keys.clear()
            self._inflight = 0
            for job in self._jobs:
                job.outstanding = 0
                job.terminate()
            self._jobs = []

    def _executor_for(self, job):
        if job.exe is not None:
            return job.exe
        if job.kind == "apply":
            if self._apply_exe is None:
                self._apply_exe = _Executor(self, "never")
                self._executors.append(self._apply_exe)
            job.exe = self._apply_exe
        else:
            job.exe = _Executor(self, job.halt_policy)
            self._executors.append(job.exe)
        job.exe.jobs.add(job)
        return job.exe

    def _warn_threads(self, job):
        if job.warned_threads:
            return
        job.warned_threads = True
        n = _os_thread_count()
        # A thread just joined may still be counted for a few microseconds:
        # pthread_join() returns when the thread clears its tid, before the
        # kernel releases it. Look again briefly before warning.
        for _ in range(10):
            if n <= 1:
                break
            time.sleep(0.001)
            n = _os_thread_count()
        if n > 1:
            names = [t.name for t in threading.enumerate()
                     if t is not threading.current_thread()]
            warnings.warn(
                f"corral.Pool: this process (pid={os.getpid()}) is multi-threaded "
                f"({n} threads{': ' + ', '.join(names) if names else ''}); forking a "
                f"task may deadlock in the child if another thread holds a lock "
                f"(logging, I/O buffers, C libraries). Start the pool's work before "
                f"starting threads, or make sure they hold no locks at fork time.",
                ForkWarning, stacklevel=_user_stacklevel())

    def _fill(self):
        """Submit tasks while the pool has free slots. Returns True if any."""
        any_ = False
        for job in list(self._jobs):
            if self._inflight >= self._processes:
                break
            if job.kind == "map" and job.exe is not None and job.halt_policy != "never" \
                    and job.exe.halted():
                job.stop()
            while self._inflight < self._processes and job.wants_more():
                item = job.take()
                if item is None:
                    break
                index, func, args, kwds = item
                exe = self._executor_for(job)
                self._warn_threads(job)
                key = next(_KEYS)
                _TASKS[key] = (func, args, kwds, self._initializer, self._initargs)
                try:
                    exe.submit(key, self._stdout, self._stderr)
                except BaseException:
                    _TASKS.pop(key, None)
                    raise
                self._keys[key] = (job, index, exe)
                job.outstanding += 1
                self._inflight += 1
                any_ = True
            if job.kind == "map" and job.exe is not None and not job.wants_more():
                job.exe.close()
            if job.kind == "map" and job.exe is None and not job.wants_more() \
                    and job.outstanding == 0:
                job.finish(None)  # empty input (or it raised at once)
        self._jobs = [j for j in self._jobs if not j.finished]
        return any_

    def _handle(self, exe, r):
        key = r.data or 0
        entry = self._keys.get(key)
        if entry is None:  # not ours (cannot happen): drop it
            L.lib.corral_result_release(ctypes.byref(r))
            return
        job, index, _ = entry
        rec = TaskRecord.from_result(r, None if job.kind == "apply" else index)
        if not r.final:
            L.lib.corral_result_release(ctypes.byref(r))
            return
        try:
            payload = r.fn_result.read()
        except OSError:
            payload = b""
        finally:
            L.lib.corral_result_release(ctypes.byref(r))
        del self._keys[key]
        _TASKS.pop(key, None)
        self._inflight -= 1
        exe.outstanding -= 1
        job.outstanding -= 1
        ok, value = self._decode(rec, payload, job)
        job.deliver(index, ok, value, rec)
        if job.kind == "map" and job.halt_policy != "never" and not ok \
                and not isinstance(value, (Cancelled, Aborted)):
            job.stop()
            exe.close()

    def _decode(self, rec, payload, job):
        out = rec.outcome
        msg = _message(rec, job)
        parsed = _parse_payload(payload) if out in ("ok", "exit", "subprocess_oom") else None
        if out == "ok":
            if parsed is None:
                return False, Exited(f"{msg}, but it sent no result (os._exit(0)? "
                                     f"sys.exit(0)?)", rec)
            kind, v = parsed
            if kind == "R":
                return True, v
            if kind == "E":
                return False, self._annotate(v, rec, job)
            return False, ResultError(f"{msg}, but {v}", rec)
        if out == "exit":
            if parsed is not None and parsed[0] == "E":
                return False, self._annotate(parsed[1], rec, job)
            if parsed is not None and parsed[0] == "X":
                why = parsed[1]
                if "cut short" in why and "exceeded" in (rec.sentence or ""):
                    why = f"its result exceeded result_max ({L.format_size(self._result_max)})"
                return False, ResultError(f"{msg.split(':')[0]}: {why}", rec)
            return False, Exited(msg, rec)
        cls = _OUTCOME_EXC.get(out, TaskFailed)
        exc = cls(msg, rec)
        if out == "subprocess_oom" and parsed is not None:
            if parsed[0] == "R":
                exc.value = parsed[1]
            elif parsed[0] == "E":
                exc.__cause__ = parsed[1]
        return False, exc

    @staticmethod
    def _annotate(exc, rec, job):
        where = "the task" if job.kind == "apply" else f"task {rec.index}"
        try:
            exc.add_note(f"corral: raised in {where} (pid {rec.pid})")
        except Exception:
            pass
        return exc

    def _step(self, submit=True):
        """Submit and collect without waiting. Returns True on any progress."""
        progress = False
        while True:
            moved = False
            if submit and self._state != _TERMINATE and self._fill():
                moved = True
            _flush_std()  # corral_next() may fork: no duplicated buffers
            r = L.Result()
            err = L.Error()
            for ex in list(self._executors):
                while ex.ptr:
                    rc = L.lib.corral_next(ex.ptr, ctypes.byref(r), 0, ctypes.byref(err))
                    if rc == 1:
                        self._handle(ex, r)
                        moved = True
                        continue
                    if rc == 0:
                        break
                    if rc == -L.ECHILD:
                        self._executor_done(ex)
                        moved = True
                        break
                    err.raise_("corral: the event loop failed", rc)
            if not moved:
                return progress
            progress = True

    def _executor_done(self, ex):
        s = ex.summary()
        for job in list(ex.jobs):
            if job.kind == "map":
                job.finish(s)
        ex.free()
        if ex in self._executors:
            self._executors.remove(ex)
        if ex is self._apply_exe:
            self._apply_exe = None
        self._jobs = [j for j in self._jobs if not j.finished]

    def _wait(self, timeout):
        """Wait (GIL released) until an executor has work, or timeout (s)."""
        fds = [ex.fd for ex in self._executors if ex.ptr]
        if not fds:
            if timeout:
                time.sleep(min(timeout, 0.05))
            return
        p = select.poll()
        for fd in fds:
            p.register(fd, select.POLLIN)
        p.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))

    def _drive(self, pred, timeout):
        """Make progress until pred() is true (True) or timeout s passed (False)."""
        with self._lock:
            self._check_usable()
            deadline = None if timeout is None else time.monotonic() + timeout
            try:
                while True:
                    self._step(submit=self._state != _TERMINATE)
                    if pred():
                        return True
                    if not any(ex.outstanding for ex in self._executors):
                        if not any(j.wants_more() for j in self._jobs):
                            # Nothing runs and nothing can start: pred() can
                            # never become true (a bug, or a terminated pool).
                            for j in self._jobs:
                                j.terminate()
                            self._jobs = []
                            return pred()
                    if deadline is None:
                        self._wait(None)
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return False
                        self._wait(left)
            except BaseException:
                # Ctrl-C (KeyboardInterrupt) or an internal error while waiting:
                # never leave tasks behind.
                self._terminate_locked()
                raise


def check(json=False):
    """What this host offers (libcorral's corral_check): (ok, report text).

    ok is True when tasks can run with memory limits here."""
    import tempfile
    o = L.Options()
    L.lib.corral_options_init(ctypes.byref(o))
    err = L.Error()
    with tempfile.TemporaryFile() as f:
        rc = L.lib.corral_check(ctypes.byref(o), bool(json), f.fileno(), ctypes.byref(err))
        f.seek(0)
        text = f.read().decode("utf-8", "replace")
    if rc < 0:
        err.raise_("corral: host check failed", rc)
    return rc == 0, text
