"""corral.Pool: multiprocessing.Pool's API over libcorral, with persistent
workers that each live in a cgroup of their own.

How it works (see the package docstring for the user's view):

- One libcorral executor per pool. Each *worker* is one function task of it
  (``_worker.py``): forked, in its own cgroup with the pool's memory limit,
  watched through a pidfd. Its stdin is a socketpair with the pool; units of
  work go down, results come back up, one unit at a time. A unit is a task
  (apply, submit) or a chunk of items of one call.
- The pool always knows which unit each worker holds, and a few words of
  memory shared with every worker (``_worker.SLOT_*``) say which item of the
  unit runs. When libcorral reports a worker's end (OOM kill, signal, exit,
  with the cause from kernel facts), that item fails with the cause; items of
  the unit that had not started go to another worker; the worker is replaced.
- A dispatcher thread per pool moves the work: it waits (poll) on the
  executor's fd, the workers' sockets and a wake-up pipe, hands units to idle
  workers, collects results, enforces per-task timeouts, and runs callbacks.
  It never forks. Workers are forked only by threads that call into the pool
  (the constructor, apply_async, map, get, wait, join, ...), with the pool's
  lock held and the dispatcher parked (in poll, or waiting for the lock; never
  inside a callback), so no lock of the pool is held at a fork. A worker that
  dies while no thread is inside the pool is replaced at the next call; the
  other workers go on meanwhile.
- Registry: what a worker was forked with is its own copy of the caller's
  memory. Functions and items registered in ``_worker.REGISTRY`` before a
  worker's fork are sent to it by key, never pickled; anything newer is
  pickled. A function that cannot be pickled (a lambda, a closure) runs on
  workers forked after it was registered: the pool forks them. maxtasksperchild=1
  forks each worker with its unit already in its memory, as corral.Pool always
  did: a fresh fork per task that sees the caller's state at that time.
- Verdicts, as libcorral's (design §1.3): a call's failure is the failure of
  its lowest failing index (halt "ordered"): units after it are cancelled or
  aborted (their workers killed), units before it run to their end. The call's
  result is decided as soon as that holds, without waiting for the aborted
  workers to be reaped.
"""
import bisect
import collections
import ctypes
import itertools
import mmap
import os
import pickle
import reprlib
import select
import signal
import sys
import threading
import time
import traceback
import warnings
import weakref
from typing import (Any, Callable, Generic, Iterable, List, Mapping, Optional, Sequence, Tuple,
                    TypeVar, Union)

from . import _lib as L
from . import _worker as W
from ._errors import (Aborted, Cancelled, Exited, ForkWarning, Killed, OOMKilled, OOMOutside,
                      RemoteTraceback, ResultError, ResultLost, SpawnError, SubprocessOOM,
                      TaskFailed, TimedOut, TimeoutError)

__all__ = ["Pool", "AsyncResult", "ApplyResult", "MapResult", "IMapIterator",
           "TaskRecord", "check"]

T = TypeVar("T")
Size = Union[int, str, None]
Duration = Union[int, float, str, None]

_FN = L.FN_T(W._worker_entry)
_FN_ADDR = ctypes.cast(_FN, ctypes.c_void_p).value
_HOOKS = L.fork_hook_addresses()
_KEYS = itertools.count(1)
_UNIT_IDS = itertools.count(1)
_EPOCH = [1]                 # registry epoch: bumped after each fork
_DISPATCHERS = set()         # idents of the dispatcher threads of live pools
_HDR = W.HDR
# A worker whose last unit took less than PIPELINE_WALL seconds holds up to
# PIPELINE units: it starts the next one without waiting for this thread.
PIPELINE = 2
PIPELINE_WALL = 0.05
# A worker lacking while no calling thread is in the pool is started as a
# fresh interpreter after this long (a thread that comes forks it faster).
SPAWN_GRACE = 0.05
# The peak of a unit that ran less than this is not measured (memory_peak
# None): a call into the cgroup costs more than such a task, and it cannot
# have touched more than a few MiB (page faults alone cost ~0.25 us a page).
PEAK_MIN_WALL = 0.001
_UNIT_ID = W.UNIT_ID


# ---------------------------------------------------------------- records


class TaskRecord:
    """What is known about one task (the final attempt)."""

    __slots__ = ("index", "item", "seq", "attempt", "final", "outcome", "pid", "exit_code",
                 "signal", "status", "memory_limit", "memory_peak", "memory_peak_scope",
                 "oom_kills", "own_limit_hit", "pids_limit_hit", "wall_time", "user_time",
                 "sys_time", "start_time", "end_time", "sentence", "spawn_step",
                 "spawn_errno", "worker_tasks")

    index: Optional[int]
    item: Optional[str]
    outcome: str
    pid: Optional[int]
    memory_limit: Optional[int]
    memory_peak: Optional[int]
    wall_time: float
    sentence: str

    def __init__(self, **kw: Any) -> None:
        for k in self.__slots__:
            setattr(self, k, kw.get(k))
        if self.wall_time is None:
            self.wall_time = 0.0

    def __getstate__(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, st):
        for k in self.__slots__:
            setattr(self, k, st.get(k))

    def __repr__(self) -> str:
        return (f"TaskRecord(index={self.index}, outcome={self.outcome!r}, "
                f"attempt={self.attempt}, pid={self.pid}, exit_code={self.exit_code}, "
                f"signal={self.signal}, memory_limit={self.memory_limit}, "
                f"memory_peak={self.memory_peak}, wall_time={self.wall_time:.3f})")


_OUTCOME_EXC = {
    "oom": OOMKilled, "oom_outside": OOMOutside, "subprocess_oom": SubprocessOOM,
    "timeout": TimedOut, "signal": Killed, "exit": Exited, "ok": Exited,
    "spawn_error": SpawnError, "cancelled": Cancelled, "aborted": Aborted,
}

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlevel = 2
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 4


def _fname(func):
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or \
        type(func).__name__


def _call_repr(func, item, mode):
    """A short repr of one call: "hog(256)", "pow(2, 3)"."""
    try:
        if mode == "apply" and not item[0] and not item[1] and \
                type(func).__repr__ is not object.__repr__ and not callable(
                    getattr(func, "__code__", None)) and hasattr(func, "__dict__"):
            return _short.repr(func) if len(repr(func)) > 80 else repr(func)
        if mode == "apply":
            args, kwds = item
            parts = [_short.repr(a) for a in args] + \
                [f"{k}={_short.repr(v)}" for k, v in kwds.items()]
        elif mode == "star":
            parts = [_short.repr(a) for a in item]
        else:
            parts = [_short.repr(item)]
        s = f"{_fname(func)}({', '.join(parts)})"
        return s if len(s) <= 80 else s[:77] + "..."
    except Exception:
        return f"{_fname(func)}(...)"


def _signame(sig):
    try:
        return signal.Signals(sig).name
    except (ValueError, TypeError):
        return f"signal {sig}"


# ---------------------------------------------------------------- jobs and units


class _Unit:
    """A unit of work: items [start, start+count) of one job, on one worker."""

    __slots__ = ("id", "job", "start", "count", "items", "attempt", "memory", "epoch", "key",
                 "received", "worker", "abandoned", "dispatched_at", "deadline", "lost_before")

    def __init__(self, job, start, items, attempt=1, memory=None):
        self.id = next(_UNIT_IDS)
        self.job = job
        self.start = start
        self.count = len(items)
        self.items = items
        self.attempt = attempt
        self.memory = memory            # a grown limit: needs a worker of its own
        self.epoch = _EPOCH[0]
        self.key = None                 # registry key, while registered
        self.received = 0               # items whose results arrived
        self.worker = None
        self.abandoned = False          # the job gave it up (halt): drop what comes
        self.dispatched_at = 0.0
        self.deadline = None
        self.lost_before = 0            # workers that died holding it before it started


class _Job:
    """One call: apply_async/submit (one item) or a map-like call (many)."""

    def __init__(self, core, kind, func, mode, items=None, iterator=None, chunksize=1,
                 halt="never", callback=None, error_callback=None, star=False, future=None):
        self.core = core
        self.id = next(_KEYS)
        self.kind = kind                # "apply" | "map"
        self.mode = mode                # "list" | "ordered" | "unordered" | "apply"
        self.func = func
        self.star = star
        self.items = items              # list (known input) or None
        self.iterator = iterator        # lazy input, read by calling threads only
        self.buffer = collections.deque()   # items read from iterator, not yet cut
        self.exhausted = iterator is None
        self.input_error = None
        self.n = len(items) if items is not None else 0   # items known so far
        self.chunksize = max(1, int(chunksize or 1))
        self.halt = halt
        self.callback = callback
        self.error_callback = error_callback
        self.future = future
        self.next_pos = 0               # next item position to cut into a unit
        self.cut_limit = None           # no unit starts at or beyond (halt)
        self.epoch = _EPOCH[0]
        self.key = ("j", self.id)
        W.REGISTRY[self.key] = self
        self.func_bytes = None          # pickled func; False: cannot be pickled
        self.needs_fresh = False        # units only on workers forked after epoch
        self.units = set()              # units queued or running
        self.resolved = {}              # start -> end of resolved ranges
        self.prefix = 0                 # positions [0, prefix) are resolved
        self.values = None              # list mode: list of n; else dict pos -> value
        self.arrivals = collections.deque()
        self.failures = {}              # pos -> exception (real failures)
        self.first_failure = None       # halt "now": the first one observed
        self.consequences = {}          # pos -> Cancelled/Aborted/ResultLost
        self.metas = []                 # (start, count, meta) of received results
        self.aborted = []               # (start, end) of items killed by a halt
        self.records_fail = {}          # pos -> TaskRecord of failures/consequences
        self.attempts = {}              # pos -> attempt of a retried item
        self.finished = False
        self.verdict = None
        self.value = None
        self.callbacks_due = False
        if mode == "list":
            self.values = [None] * self.n
        elif mode in ("ordered", "apply"):
            self.values = {}

    # -- input
    def call_mode(self):
        return "apply" if self.kind == "apply" else ("star" if self.star else "item")

    def item(self, pos):
        """The item at pos, if still at hand (for messages)."""
        if self.items is not None and pos < len(self.items):
            return self.items[pos]
        for u in self.units:
            if u.start <= pos < u.start + u.count:
                return u.items[pos - u.start]
        return None

    def describe(self, pos):
        it = self.item(pos)
        if it is None:
            return _fname(self.func) + "(...)"
        return _call_repr(self.func, it, self.call_mode())

    def top_up(self, want):
        """Read up to `want` items from a lazy input (calling thread only)."""
        while not self.exhausted and len(self.buffer) < want:
            try:
                x = next(self.iterator)
            except StopIteration:
                self.exhausted = True
                break
            except Exception as e:  # the caller's iterable raised
                self.exhausted = True
                self.input_error = e
                break
            self.buffer.append(x)
            self.n += 1

    def has_work(self):
        if self.finished:
            return False
        limit = self.cut_limit
        if limit is not None and self.next_pos >= limit:
            return False
        if self.items is not None:
            return self.next_pos < self.n
        return bool(self.buffer)

    def cut(self):
        """The next unit of this job (no user code runs here)."""
        start = self.next_pos
        size = self.chunksize
        if self.cut_limit is not None:
            size = min(size, self.cut_limit - start)
        if self.items is not None:
            items = self.items[start:start + size]
        else:
            items = [self.buffer.popleft() for _ in range(min(size, len(self.buffer)))]
        self.next_pos = start + len(items)
        u = _Unit(self, start, items)
        self.units.add(u)
        return u

    def all_cut(self):
        if self.cut_limit is not None and self.next_pos >= self.cut_limit:
            return True
        if self.items is not None:
            return self.next_pos >= self.n
        return self.exhausted and not self.buffer

    # -- resolution
    def _resolve(self, start, end):
        if end <= start:
            return
        self.resolved[start] = end
        while self.prefix in self.resolved:
            self.prefix = self.resolved.pop(self.prefix)

    def put_values(self, start, values, meta):
        n = len(values)
        if self.mode == "list":
            self.values[start:start + n] = values
        elif self.mode == "unordered":
            self.arrivals.extend(values)
        else:
            vals = self.values
            for i, v in enumerate(values):
                vals[start + i] = v
        self.metas.append((start, n, meta))
        self._resolve(start, start + n)
        if self.mode != "list":
            self.core.need_notify = True

    def put_failure(self, pos, exc, rec):
        if isinstance(exc, (Cancelled, Aborted, ResultLost)):
            self.consequences[pos] = exc
        else:
            self.failures[pos] = exc
            if self.first_failure is None:
                self.first_failure = pos
            if self.mode == "unordered":
                self.arrivals.append(_Raise(exc, pos))
        self.records_fail[pos] = rec
        self._resolve(pos, pos + 1)
        self.core.need_notify = True
        if pos not in self.consequences:
            self.core._halt(self, pos)

    def check_finished(self):
        if self.finished:
            return
        done = False
        if self.failures and self.halt == "now":
            done = True
        elif self.failures and self.halt == "ordered":
            k = min(self.failures)
            done = self.prefix >= k
        if not done:
            end = self.n if self.cut_limit is None else min(self.n, self.cut_limit)
            done = self.all_cut() and not self.units and self.prefix >= end
        if not done and self.core._state == _TERMINATE:
            done = True
        if done:
            self.finish()

    def finish(self):
        if self.finished:
            return
        self.finished = True
        W.REGISTRY.pop(self.key, None)
        verdict = None
        if self.input_error is not None and not self.failures:
            verdict = self.input_error
        elif self.failures:
            k = self.first_failure if self.halt == "now" else min(self.failures)
            verdict = self.failures[k]
        elif self.consequences:
            verdict = self.consequences[min(self.consequences)]
        elif self.kind == "map" and self.mode == "list" and self.prefix < self.n:
            verdict = Aborted("the pool was terminated before the call completed")
        elif self.kind == "apply" and self.prefix < 1:
            verdict = Aborted("the pool was terminated before the task completed")
        self.verdict = verdict
        if verdict is None:
            if self.mode == "list":
                self.value = self.values
                self.values = None
            elif self.mode == "apply":
                self.value = self.values.get(0)
        # Units still queued are dropped; running ones are killed by _halt.
        for u in list(self.units):
            if u.worker is None:
                self.units.discard(u)
                self.core._unregister(u)
        self.callbacks_due = (self.callback is not None or self.error_callback is not None
                              or self.future is not None)
        self.core._finished_jobs.append(self)
        self.core.need_notify = True

    def terminate(self):
        """The pool is terminated: settle this job now."""
        if self.finished:
            return
        for u in list(self.units):
            for p in range(u.start + u.received, u.start + u.count):
                if p not in self.failures and p not in self.consequences:
                    self.consequences[p] = Aborted(
                        f"index {p} ({self.describe(p)}) was killed: the pool was terminated",
                        index=p)
        self.finish()

    def record(self, pos):
        rec = self.records_fail.get(pos)
        if rec is not None:
            return rec
        if len(self.metas) != getattr(self, "_meta_n", -1):
            self.metas.sort(key=lambda m: m[0])
            self._meta_starts = [m[0] for m in self.metas]
            self._meta_n = len(self.metas)
        k = bisect.bisect_right(self._meta_starts, pos) - 1
        if k >= 0:
            start, n, meta = self.metas[k]
            if start <= pos < start + n:
                (pid, limit, peak, scope, wall, user, sys_, t0, attempt, tasks) = meta
                return TaskRecord(index=pos, outcome="ok", attempt=self.attempts.get(pos, attempt),
                                  final=True, pid=pid, status=0, exit_code=0,
                                  memory_limit=limit, memory_peak=peak, memory_peak_scope=scope,
                                  oom_kills=0, own_limit_hit=False, pids_limit_hit=False,
                                  wall_time=wall, user_time=user, sys_time=sys_,
                                  start_time=t0, worker_tasks=tasks,
                                  sentence=f"index {pos} succeeded")
        for start, end in self.aborted:
            if start <= pos < end:
                return TaskRecord(index=pos, outcome="aborted", final=True,
                                  sentence=f"index {pos} was killed: the call halted")
        if pos < self.next_pos or self.cut_limit is not None:
            return TaskRecord(index=pos, outcome="cancelled", attempt=0, final=True,
                              sentence=f"index {pos} was cancelled: the call halted")
        return None


class _Raise:
    """An arrival of imap_unordered that is an exception."""
    __slots__ = ("exc", "pos")

    def __init__(self, exc, pos):
        self.exc = exc
        self.pos = pos


# ---------------------------------------------------------------- workers


class _Worker:
    """The pool's view of one worker process."""

    __slots__ = ("seq", "fd", "slot", "epoch", "memory", "dedicated", "state", "units",
                 "inbuf", "outbuf", "given", "maxtasks", "kill_reason", "kill_at", "eof",
                 "registered", "tasks_done", "pollmask", "last_wall", "spawned", "hello")

    def __init__(self, seq, fd, slot, epoch, memory, dedicated, maxtasks):
        self.seq = seq
        self.fd = fd
        self.slot = slot
        self.epoch = epoch
        self.memory = memory
        self.dedicated = dedicated
        self.state = "idle"           # idle | busy | quitting | dead
        self.units = collections.deque()  # sent, in order; the first runs (or is next)
        self.last_wall = 1.0          # seconds its last unit took (unknown: long)
        self.spawned = False          # exec'd (knows nothing by key), not forked
        self.hello = False            # an exec'd worker said it is ready
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.given = 0
        self.maxtasks = maxtasks
        self.kill_reason = None       # "timeout" | "abort" | "terminate"
        self.kill_at = None           # SIGKILL after the grace
        self.eof = False
        self.registered = False
        self.tasks_done = 0
        self.pollmask = 0

    @property
    def unit(self):
        """The unit it runs (or will run next), None when idle."""
        return self.units[0] if self.units else None


# ---------------------------------------------------------------- the core

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


def _flush_std():
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:
                f.flush()
        except Exception:
            pass


class _Core:
    """Everything of a pool but its public face; the dispatcher thread holds a
    reference to this, not to the Pool, so that a dropped Pool is collected
    (and terminated by its finalizer)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.processes = cfg["processes"]
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._state = _RUN
        self.pid = os.getpid()
        self.jobs = collections.deque()      # jobs with input not yet cut, call order
        self.ready = collections.deque()     # units to run first (re-queued, retries)
        self.workers = {}                    # seq -> _Worker
        self.by_fd = {}
        self.nslots = self.processes * 4 + 16
        # The slots live in a memfd: forked workers share the mapping, and
        # exec'd ones (see _spawn_exec) map the same file, passed over their
        # socket.
        self.shm_size = W.SLOT_BYTES * self.nslots
        self.memfd = os.memfd_create("corral-pool-slots", os.MFD_CLOEXEC)
        os.ftruncate(self.memfd, self.shm_size)
        self.shm = mmap.mmap(self.memfd, self.shm_size)
        self.slots = memoryview(self.shm).cast("Q")
        self.free_slots = list(range(self.nslots - 1, -1, -1))
        self.user_code = False               # the dispatcher runs a callback
        self.forking = 0
        self._finished_jobs = []
        self.ex = None
        self.stopping = False
        self.thread = None
        self.peak_resettable = None          # False on v2 before Linux 6.12
        self.deaths = 0
        self._reporting = None               # the unit whose result is being taken
        self.need_notify = False             # something a waiting caller may want
        self.draining = False                # join(): the workers are told to quit
        self.waiters = 0                     # calling threads inside wait_for
        self.spawn_broken = False            # exec'd workers do not start here
        self.need_since = None               # since when workers are lacking
        self._init_bytes = None              # pickled (initializer, initargs)
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake_r, self.wake_w = r, w
        self.poller = select.poll()
        self.poller.register(r, select.POLLIN)
        self._new_executor()

    # -- libcorral
    def _new_executor(self):
        cfg = self.cfg
        o = L.Options()
        L.lib.corral_options_init(ctypes.byref(o))
        o.jobs = 1 << 20           # admission is the pool's: nothing ever queues in libcorral
        o.memory_max = cfg["memory"]
        o.pids_max = cfg["pids"]
        o.cpus = cfg["cpus"]
        o.timeout_ns = L.UNLIMITED  # per task, enforced here: a worker lives longer
        o.halt = L.HALTS["never"]
        o.retries = 0
        o.oom_group = cfg["oom_group"]
        o.allow_subprocess_oom = False
        o.cgroup_parent = cfg["cgroup_parent"]
        o.capture_max = 4096
        o.fn_result_max = 4096
        o.before_fork, o.after_fork_parent, o.after_fork_child = _HOOKS
        ptr = ctypes.c_void_p()
        err = L.Error()
        rc = L.lib.corral_executor_new(ctypes.byref(o), ctypes.byref(ptr), ctypes.byref(err))
        if rc < 0:
            err.raise_("corral: cannot start the pool's executor", rc)
        self.ex = ptr
        self.ex_fd = L.lib.corral_fd(ptr)
        self.poller.register(self.ex_fd, select.POLLIN)

    def _free_executor(self):
        if self.ex:
            p, self.ex = self.ex, None
            try:
                self.poller.unregister(self.ex_fd)
            except (KeyError, ValueError):
                pass
            L.lib.corral_executor_free(p)

    # -- registry
    def _unregister(self, u):
        if u.key is not None:
            W.REGISTRY.pop(u.key, None)
            u.key = None

    # -- forking (calling threads only)
    def _fork_safe_here(self):
        return threading.get_ident() not in _DISPATCHERS and not W.IN_WORKER

    def _plan_forks(self):
        """What to fork now: a list of (birth unit or None, memory, dedicated)."""
        if self._state == _TERMINATE or self.stopping or not self.ex or self.draining:
            return []
        live = [w for w in self.workers.values() if w.state in ("idle", "busy")]
        n_live = len(live)
        cap = self.processes
        plans = []
        budget = self.cfg["memory_budget"]
        # Every worker that still exists counts against the budget, a retiring
        # one too: its memory is not given back before it has exited.
        used = sum(w.memory for w in self.workers.values()
                   if w.memory != L.UNLIMITED) if budget else 0

        def fits(mem):
            if not budget:
                return True
            return mem == L.UNLIMITED or used + mem <= budget

        # Units that need a worker of their own: a grown limit, or a job whose
        # function cannot be pickled (forked after it was registered).
        mtpc1 = self.cfg["maxtasks"] == 1
        for u in list(self.ready):
            if n_live + len(plans) >= cap:
                break
            if u.memory is not None or mtpc1 or (u.job.needs_fresh and
                                                not self._any_can_take(u)):
                mem = u.memory if u.memory is not None else self.cfg["memory"]
                if not fits(mem):
                    break
                self.ready.remove(u)
                plans.append((u, mem, u.memory is not None))
                if mem != L.UNLIMITED:
                    used += mem
        while n_live + len(plans) < cap:
            if not fits(self.cfg["memory"]):
                break
            u = self._next_unit_for(None)
            if u is None:
                if mtpc1 or self._state != _RUN:
                    break  # no idle replacements once the pool is closed
                # An idle replacement (persistent workers, as multiprocessing).
                plans.append((None, self.cfg["memory"], False))
                used += self.cfg["memory"] if self.cfg["memory"] != L.UNLIMITED else 0
                continue
            mem = u.memory or self.cfg["memory"]
            if not fits(mem):
                self.ready.appendleft(u)  # waits for room (see _retire_for_fresh)
                break
            plans.append((u, mem, u.memory is not None))
            used += mem if mem != L.UNLIMITED else 0
        return plans

    def _any_can_take(self, u):
        return any(w.state in ("idle", "busy") and self._can_run(w, u)
                   for w in self.workers.values())

    def _fork_now(self, most=None):
        """Fork the workers the pool lacks (at most `most` of them). Calling
        thread, lock held. Returns True when it forked."""
        if not self._fork_safe_here():
            return False
        plans = self._plan_forks()
        if not plans:
            return False
        if most is not None and len(plans) > most:
            for birth, _, _ in plans[most:]:
                if birth is not None:
                    self.ready.appendleft(birth)  # planned later again
            plans = plans[:most]
        self.forking += 1
        try:
            while self.user_code:
                self.cond.wait()
            if self._state == _TERMINATE or not self.ex:
                return False
            self._warn_threads()
            _flush_std()
            for birth, mem, dedicated in plans:
                self._spawn(birth, mem, dedicated)
        finally:
            self.forking -= 1
        self._wake()
        return True

    def _warn_threads(self):
        n = _os_thread_count() - len(_DISPATCHERS)
        for _ in range(10):
            if n <= 1:
                return
            time.sleep(0.001)
            n = _os_thread_count() - len(_DISPATCHERS)
        names = [t.name for t in threading.enumerate()
                 if t is not threading.current_thread() and t.ident not in _DISPATCHERS]
        warnings.warn(
            f"corral.Pool: this process (pid={os.getpid()}) is multi-threaded "
            f"({n} threads{': ' + ', '.join(names) if names else ''}); forking a "
            f"worker may deadlock in the child if another thread holds a lock "
            f"(logging, I/O buffers, C libraries). Start the pool before starting "
            f"threads, or make sure they hold no locks at fork time.",
            ForkWarning, stacklevel=_user_stacklevel())

    def _spawn(self, birth, mem, dedicated):
        if not self.free_slots:
            return
        slot = self.free_slots.pop()
        base = slot * W.SLOT_WORDS
        for i in range(W.SLOT_WORDS):
            self.slots[base + i] = 0
        a, b = __import__("socket").socketpair()
        pfd, cfd = a.detach(), b.detach()
        maxtasks = 1 if dedicated else self.cfg["maxtasks"]
        birth_msg = None
        if birth is not None:
            birth_msg = self._unit_message(None, birth)
        spec = W.Spec(slot, self.shm, self.cfg["initializer"], self.cfg["initargs"],
                      maxtasks, birth_msg, self.cfg["result_max"])
        key = next(_KEYS)
        W._SPECS[key] = spec
        # Whatever was registered before this point is in the child's memory.
        epoch = _EPOCH[0]
        _EPOCH[0] += 1
        t = L.Task()
        L.lib.corral_task_init(ctypes.byref(t))
        t.fn = _FN_ADDR
        t.fn_arg = key
        t.stdin_fd = cfd
        t.stdout_fd = self.cfg["stdout"]
        t.stderr_fd = self.cfg["stderr"]
        t.memory_max = mem if mem != self.cfg["memory"] else 0
        err = L.Error()
        try:
            seq = L.lib.corral_submit(self.ex, ctypes.byref(t), ctypes.byref(err))
            if seq < 0:
                os.close(pfd)
                self.free_slots.append(slot)
                if birth is not None:
                    self.ready.appendleft(birth)
                err.raise_("corral: cannot start a worker", seq)
            w = _Worker(seq, pfd, slot, epoch, mem, dedicated, maxtasks)
            self.workers[seq] = w
            self.by_fd[pfd] = w
            os.set_blocking(pfd, False)
            if birth is not None:
                self._assign(w, birth, sent=True)
            # Start it now, from this thread: libcorral forks in corral_next.
            self._pump_executor()
        finally:
            W._SPECS.pop(key, None)
            os.close(cfd)

    # -- dispatching (dispatcher or calling thread, lock held)
    def _can_run(self, w, u):
        if u.memory is not None and u.memory != w.memory:
            return False
        if self.cfg["maxtasks"] == 1 and not w.dedicated and not w.spawned:
            return False  # each worker is forked with its unit (fresh fork per task)
        job = u.job
        if job.needs_fresh and (w.spawned or w.epoch < job.epoch):
            return False
        return True

    def _next_unit_for(self, w):
        """The next unit that worker w (None: a new worker) may run, taken
        out of the queues; None when there is none."""
        for u in self.ready:
            if u.job.finished or u.abandoned:
                continue
            if w is None or self._can_run(w, u):
                self.ready.remove(u)
                return u
        while self.jobs:
            job = self.jobs[0]
            if job.finished or (job.all_cut() and job.exhausted):
                self.jobs.popleft()
                continue
            break
        for job in self.jobs:
            if not job.has_work():
                continue
            if w is not None and job.needs_fresh and (w.spawned or w.epoch < job.epoch):
                continue
            if w is not None and self.cfg["maxtasks"] == 1 and not w.dedicated and \
                    not w.spawned:
                continue
            if job.future is not None and job.next_pos == 0 and \
                    not job.future.set_running_or_notify_cancel():
                job.future = None  # cancelled before it started
                job.cut_limit = 0
                job.finish()
                continue
            return job.cut()
        return None

    def _unit_message(self, w, u):
        """The T message of unit u for worker w (None: a worker forked now)."""
        job = u.job
        flags = 0
        if job.kind == "apply":
            flags |= W.F_APPLY
        if job.star:
            flags |= W.F_STAR
        if job.halt != "never":
            flags |= W.F_STOP_ON_ERROR
        if self.cfg["timeout"] is not None:
            flags |= W.F_TIMED
        known = w is None or (not w.spawned and w.epoch >= job.epoch)
        if known:
            fpart = ("K", job.key)
        else:
            if job.func_bytes is None:
                try:
                    job.func_bytes = pickle.dumps(job.func, pickle.HIGHEST_PROTOCOL)
                except Exception:
                    job.func_bytes = False
            if job.func_bytes is False:
                return None
            fpart = ("F", job.id, job.func_bytes)
        if w is None:
            u.key = ("u", u.id)
            W.REGISTRY[u.key] = u
            ipart = ("U", u.key)
        elif job.items is not None and known:
            ipart = ("K", job.key, u.start, u.start + u.count)
        else:
            ipart = ("L", u.items)
        try:
            body = pickle.dumps((flags, fpart, ipart), pickle.HIGHEST_PROTOCOL)
        except Exception:
            return None
        return _UNIT_ID.pack(u.id) + body

    def _assign(self, w, u, sent=False):
        u.worker = w
        w.units.append(u)
        w.state = "busy"
        w.given += 1
        u.dispatched_at = time.monotonic()
        if self.cfg["timeout"] is not None:
            u.deadline = u.dispatched_at + self.cfg["timeout"]
        if not sent:
            msg = self._unit_message(w, u)
            if msg is None:
                return False
            w.outbuf += _HDR.pack(len(msg), ord("T")) + msg
            self._flush_out(w)
        return True

    def _dispatch(self):
        ws = list(self.workers.values())
        # Idle workers first, one unit each; then a worker whose last unit was
        # short gets the next one already (the round trip through this thread
        # would otherwise leave it waiting); the shared slot says which runs.
        for w in [w for w in ws if w.state == "idle"] + \
                [w for w in ws if w.state == "busy" and len(w.units) < PIPELINE and
                 w.last_wall < PIPELINE_WALL and not w.kill_reason]:
            if w.maxtasks and w.given >= w.maxtasks:
                if not w.units:
                    w.state = "quitting"
                continue
            while True:
                u = self._next_unit_for(w)
                if u is None:
                    break
                if u.job.finished or u.abandoned:
                    u.job.units.discard(u)
                    continue
                if self._assign(w, u):
                    break
                # Cannot be sent to this worker (its function or items do
                # not pickle): it runs on a worker forked after it.
                u.worker = None
                w.units.pop()
                w.state = "busy" if w.units else "idle"
                w.given -= 1
                u.job.needs_fresh = True
                self.ready.appendleft(u)
                break
        self._retire_for_fresh()

    def _retire_for_fresh(self):
        """Work that only workers forked after it may run (a function that
        cannot be pickled) waits while idle workers cannot take it: ask those
        to quit, so that the calling thread forks fresh ones. The same for a
        retry with a grown limit that the memory budget has no room for."""
        budget = self.cfg["memory_budget"]
        grown = [u for u in self.ready if u.memory is not None and not u.abandoned]
        if budget and grown:
            used = sum(w.memory for w in self.workers.values() if w.memory != L.UNLIMITED)
            need = grown[0].memory
            for w in list(self.workers.values()):
                if used + need <= budget:
                    break
                if w.state == "idle" and not (w.dedicated and w.memory == need):
                    self._quit(w)
                    used -= w.memory if w.memory != L.UNLIMITED else 0
        fresh = [j for j in self.jobs if j.needs_fresh and j.has_work()] + \
            [u.job for u in self.ready if u.job.needs_fresh]
        if not fresh:
            return
        newest = max(j.epoch for j in fresh)
        for w in list(self.workers.values()):
            if w.state == "idle" and w.epoch < newest and not w.dedicated:
                self._quit(w)

    def _quit(self, w):
        w.state = "quitting"
        w.outbuf += _HDR.pack(0, ord("Q"))
        self._flush_out(w)

    def _flush_out(self, w):
        while w.outbuf:
            try:
                n = os.write(w.fd, w.outbuf)
            except BlockingIOError:
                break
            except OSError:
                w.outbuf.clear()  # the worker is gone: libcorral will tell
                break
            del w.outbuf[:n]
        self._poll_mask(w)

    def _poll_mask(self, w):
        if w.fd < 0:
            return
        mask = (0 if w.eof else select.POLLIN) | (select.POLLOUT if w.outbuf else 0)
        if mask != w.pollmask or not w.registered:
            if threading.get_ident() in _DISPATCHERS or self.thread is None:
                if mask:
                    self.poller.register(w.fd, mask)
                    w.registered = True
                elif w.registered:
                    self.poller.unregister(w.fd)
                    w.registered = False
                w.pollmask = mask
            else:
                self._wake()

    def _wake(self):
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass

    # -- events
    def _pump_executor(self):
        """Collect every result libcorral has ready (never blocks)."""
        if not self.ex:
            return
        r = L.Result()
        err = L.Error()
        while self.ex:
            rc = L.lib.corral_next(self.ex, ctypes.byref(r), 0, ctypes.byref(err))
            if rc == 1:
                try:
                    self._worker_ended(r)
                finally:
                    L.lib.corral_result_release(ctypes.byref(r))
                continue
            if rc == 0 or rc == -L.ECHILD:
                return
            err.raise_("corral: the event loop failed", rc)

    def _read(self, w):
        while True:
            try:
                chunk = os.read(w.fd, 1 << 20)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                w.eof = True
                self._poll_mask(w)
                break
            w.inbuf += chunk
            if len(chunk) < (1 << 20):
                break
        buf = w.inbuf
        off = 0
        while len(buf) - off >= _HDR.size:
            n, kind = _HDR.unpack_from(buf, off)
            if len(buf) - off - _HDR.size < n:
                break
            body = bytes(buf[off + _HDR.size:off + _HDR.size + n])
            off += _HDR.size + n
            self._on_message(w, kind, body)
        if off:
            del buf[:off]

    def _on_message(self, w, kind, body):
        if kind == ord("H"):
            w.hello = True
            return
        if kind == ord("L"):
            uid, why = pickle.loads(body)
            u = w.unit
            if u is not None and u.id == uid:
                w.units.popleft()
                w.state = "busy" if w.units else "idle"
                u.worker = None
                job = u.job
                job.needs_fresh = True
                job.epoch = max(job.epoch, w.epoch + 1)
                if not u.abandoned and not job.finished:
                    self.ready.appendleft(u)
                    self._retire_for_fresh()
            return
        (uid, pos, count, final, values, errors, wall, user, sys_, sub_oom) = pickle.loads(body)
        u = w.unit
        if u is None or u.id != uid:
            return
        job = u.job
        self._reporting = u
        try:
            self._take_results(w, u, job, pos, count, final, values, errors, wall, user, sys_,
                               sub_oom)
        finally:
            self._reporting = None

    def _take_results(self, w, u, job, pos, count, final, values, errors, wall, user, sys_,
                      sub_oom):
        peak = None
        scope = "task"
        if final:
            w.tasks_done += 1
            peak = self._task_peak(w, wall)
            if self.peak_resettable is False:
                scope = "worker"
        pid = self.slots[w.slot * W.SLOT_WORDS + W.S_PID] or None
        meta = (pid, None if w.memory == L.UNLIMITED else w.memory, peak, scope, wall, user,
                sys_, time.time() - wall, u.attempt, w.tasks_done)
        start = u.start + pos
        u.received = pos + count
        if not u.abandoned and not job.finished:
            if errors or sub_oom:
                for i in range(count):
                    p = start + i
                    if i in errors:
                        exc = self._decode_exception(errors[i], job, p, pid)
                        rec = self._ok_record(job, p, meta, "exit")
                        rec.exit_code = None
                        rec.sentence = f"index {p} ({job.describe(p)}) raised {type(exc).__name__}"
                        job.put_failure(p, exc, rec)
                    elif sub_oom and i == count - 1:
                        rec = self._ok_record(job, p, meta, "subprocess_oom")
                        rec.oom_kills = sub_oom
                        rec.sentence = (f"index {p} ({job.describe(p)}): a process it started "
                                        f"was OOM-killed, its result may be incomplete")
                        if self.cfg["allow_subprocess_oom"]:
                            job.put_values(p, [values[i]], meta)
                        else:
                            exc = SubprocessOOM(rec.sentence, rec, index=p)
                            exc.value = values[i]
                            job.put_failure(p, exc, rec)
                    else:
                        job.put_values(p, [values[i]], meta)
            else:
                job.put_values(start, values, meta)
        if final:
            w.units.popleft()
            w.last_wall = wall
            if w.units:
                w.state = "busy"
            elif w.maxtasks and w.given >= w.maxtasks:
                w.state = "quitting"   # it exits by itself: a calling thread forks the next
                self.need_notify = True
            else:
                w.state = "idle"
            job.units.discard(u)
            self._unregister(u)
            if u.received < u.count and not u.abandoned and not job.finished:
                rest = u.items[u.received:]
                if job.cut_limit is None or u.start + u.received < job.cut_limit:
                    nu = _Unit(job, u.start + u.received, rest, u.attempt)
                    job.units.add(nu)
                    self.ready.appendleft(nu)
        job.check_finished()

    def _ok_record(self, job, p, meta, outcome):
        (pid, limit, peak, scope, wall, user, sys_, t0, attempt, tasks) = meta
        return TaskRecord(index=p, item=job.describe(p), outcome=outcome,
                          attempt=job.attempts.get(p, attempt), final=True, pid=pid,
                          status=0, exit_code=0, memory_limit=limit, memory_peak=peak,
                          memory_peak_scope=scope, oom_kills=0, own_limit_hit=False,
                          pids_limit_hit=False, wall_time=wall, user_time=user, sys_time=sys_,
                          start_time=t0, worker_tasks=tasks)

    def _decode_exception(self, err, job, p, pid):
        tb, body = err
        try:
            exc = pickle.loads(body)
        except BaseException as e:
            exc = ResultError(f"index {p} ({job.describe(p)}) raised an exception that "
                              f"could not be unpickled ({type(e).__name__}: {e})", index=p)
        if not isinstance(exc, BaseException):
            exc = ResultError(f"index {p}: the task sent a malformed exception: {exc!r}",
                              index=p)
        exc.__cause__ = RemoteTraceback(tb)
        try:
            exc.add_note(f"corral: raised in index {p} ({job.describe(p)}), pid {pid}")
        except Exception:
            pass
        if isinstance(exc, TaskFailed) and exc.index is None:
            exc.index = p
        return exc

    def _task_peak(self, w, wall):
        if wall < PEAK_MIN_WALL:
            return None
        cur = ctypes.c_uint64()
        peak = ctypes.c_uint64()
        rc = L.lib.corral_task_memory(self.ex, w.seq, ctypes.byref(cur), ctypes.byref(peak),
                                      True)
        if rc < 0:
            return None
        if rc == 1:
            self.peak_resettable = False
        elif self.peak_resettable is None:
            self.peak_resettable = True
        return peak.value or None

    def _worker_ended(self, r):
        """libcorral's final result for a worker: fail the item it held."""
        w = self.workers.pop(r.seq, None)
        if w is None:
            return
        self.deaths += 1
        self.need_notify = True  # a calling thread forks its replacement
        if w.spawned and not w.hello:
            # An exec'd worker died before it was ready (cannot import corral
            # there? a broken environment?): do not try again and again.
            self.spawn_broken = True
        # Results it sent before it died are in its socket: take them first.
        if w.fd >= 0:
            try:
                self._read(w)
            except Exception:
                pass
            if w.registered:
                try:
                    self.poller.unregister(w.fd)
                except (KeyError, ValueError):
                    pass
            self.by_fd.pop(w.fd, None)
            os.close(w.fd)
            w.fd = -1
        w.state = "dead"
        base = w.slot * W.SLOT_WORDS
        s_unit, s_pos = self.slots[base + W.S_UNIT], self.slots[base + W.S_POS]
        self.free_slots.append(w.slot)
        held = list(w.units)
        w.units.clear()
        if not held:
            return
        # Units behind the running one never started: they run elsewhere.
        u = held[0]
        for v in held[1:]:
            v.worker = None
            if v.id == s_unit:
                u = v  # (cannot happen: units run in order) be exact anyway
                continue
            if not v.abandoned and not v.job.finished:
                self.ready.appendleft(v)
            else:
                v.job.units.discard(v)
                self._unregister(v)
        job = u.job
        job.units.discard(u)
        self._unregister(u)
        if u.abandoned or job.finished:
            return
        self._reporting = u
        try:
            self._held_unit_died(r, w, u, job, s_unit, s_pos)
        finally:
            self._reporting = None

    def _held_unit_died(self, r, w, u, job, s_unit, s_pos):
        if s_unit != u.id:
            # It died before it took the unit: nothing of it ran. Run it
            # elsewhere, unless that happened before: a unit whose message
            # kills a worker while it is read (too big for the limit) would
            # otherwise go round forever. Then its first item is the culprit.
            u.lost_before += 1
            if u.lost_before < 2:
                u.worker = None
                self.ready.appendleft(u)
                return
            s_pos = 0
        pos = min(s_pos, u.count - 1)
        culprit = u.start + pos
        rec = self._death_record(r, w, job, culprit, u)
        exc = self._death_exception(rec, w, job, culprit)
        # Items before the culprit had finished, but their results died with
        # the worker (results of a chunk are sent at its end, or every 20 ms).
        for p in range(u.start + u.received, culprit):
            lost = ResultLost(
                f"index {p} ({job.describe(p)}) finished, but its result was lost: the "
                f"worker (pid {rec.pid}) died while it ran index {culprit} of the same "
                f"chunk", index=p)
            lost.__cause__ = exc
            job.put_failure(p, lost, TaskRecord(index=p, item=job.describe(p), outcome="lost",
                                                 pid=rec.pid, sentence=str(lost)))
        rest = u.items[pos + 1:]
        if rest and not job.finished and (job.cut_limit is None or culprit + 1 < job.cut_limit):
            nu = _Unit(job, culprit + 1, rest, u.attempt)
            job.units.add(nu)
            self.ready.appendleft(nu)
        if not job.finished and self._retry(job, u, pos, rec):
            job.check_finished()
            return
        if job.finished:
            return
        job.put_failure(culprit, exc, rec)
        job.check_finished()

    def _retry(self, job, u, pos, rec):
        cfg = self.cfg
        if isinstance(rec, TaskRecord) and rec.outcome in ("aborted", "cancelled"):
            return False
        attempt = job.attempts.get(u.start + pos, u.attempt)
        if attempt > cfg["retries"]:
            return False
        bits = {"oom": 1, "oom_outside": 1, "subprocess_oom": 1, "timeout": 2, "signal": 4,
                "exit": 8}.get(rec.outcome, 0)
        if not (cfg["retry_on"] & bits):
            return False
        mem = u.memory
        if bits == 1 and rec.own_limit_hit or rec.outcome == "oom":
            cur = u.memory if u.memory is not None else cfg["memory"]
            if cur != L.UNLIMITED:
                cap = min(cfg["memory_ceiling"], cfg["memory_budget"] or L.UNLIMITED)
                g = int(-(-cur * cfg["memory_growth"] // 1))
                mem = min(g, cap)
        p = u.start + pos
        nu = _Unit(job, p, [u.items[pos]], attempt + 1, mem)
        job.attempts[p] = attempt + 1
        job.units.add(nu)
        self.ready.appendleft(nu)
        return True

    def _death_record(self, r, w, job, p, u):
        outcome = L.OUTCOMES[r.outcome] if 0 <= r.outcome < len(L.OUTCOMES) else "?"
        sig = r.signal or None
        if w.kill_reason == "timeout" and outcome in ("signal", "ok", "exit", "aborted"):
            outcome = "timeout"
        elif w.kill_reason in ("abort", "terminate") and outcome == "signal":
            outcome = "aborted"
        rec = TaskRecord(
            index=p, item=job.describe(p), seq=r.seq,
            attempt=job.attempts.get(p, u.attempt), final=True, outcome=outcome,
            pid=r.pid or None, exit_code=r.exit_code if r.exit_code >= 0 else None,
            signal=sig, status=r.status,
            memory_limit=None if r.memory_max == L.UNLIMITED else r.memory_max,
            memory_peak=r.memory_peak or None,
            memory_peak_scope="task" if self.peak_resettable is not False else "worker",
            oom_kills=r.oom_kills, own_limit_hit=bool(r.own_limit_hit),
            pids_limit_hit=bool(r.pids_limit_hit),
            wall_time=time.monotonic() - u.dispatched_at if u.dispatched_at else r.wall_s,
            user_time=r.user_s, sys_time=r.sys_s, start_time=r.start_time,
            end_time=r.start_time + r.wall_s,  # when its worker was reaped (wall clock)
            spawn_step=r.spawn_step.decode() if r.spawn_step else None,
            spawn_errno=r.spawn_errno or None, worker_tasks=w.tasks_done)
        rec.sentence = self._sentence(r, rec, w)
        return rec

    def _sentence(self, r, rec, w):
        s = r.sentence.decode("utf-8", "replace")
        head = f"index {rec.index} ({rec.item})"
        prefix = f"task {r.seq}"
        rest = s[len(prefix):] if s.startswith(prefix) else ": " + s
        if rec.outcome == "timeout":
            rest = (f" timed out after {rec.wall_time:.2f} s (timeout "
                    f"{self.cfg['timeout']:g} s) and was killed")
        elif rec.outcome == "aborted":
            rest = " was killed: its call halted at another failure" \
                if w.kill_reason == "abort" else " was killed: the pool was terminated"
        elif rec.outcome in ("ok", "exit") and rec.exit_code is not None:
            rest = f" ended its process (exit code {rec.exit_code}) without returning a value"
        elif rec.outcome == "signal" and rec.signal:
            rest = f" was killed by {_signame(rec.signal)}"
        if w.tasks_done and rec.outcome in ("oom", "oom_outside"):
            rest += f" (its worker, pid {rec.pid}, had run {w.tasks_done} earlier task(s))"
        elif rec.attempt and rec.attempt > 1 and "[attempt" not in rest:
            rest += f" [attempt {rec.attempt}]"
        return head + rest

    def _death_exception(self, rec, w, job, p):
        cls = _OUTCOME_EXC.get(rec.outcome, TaskFailed)
        return cls(rec.sentence, rec, index=p)

    def _halt(self, job, k):
        """A real failure at position k of job: apply its halt policy: units
        after it (every unit, for "now") are dropped, and their workers
        killed if they run; units before it run on."""
        if job.halt == "never":
            return
        if job.halt == "now":
            limit = 0
        else:
            if job.cut_limit is not None and job.cut_limit <= k + 1:
                return
            limit = k + 1
        job.cut_limit = limit if job.cut_limit is None else min(job.cut_limit, limit)
        for u in list(job.units):
            if u is self._reporting or u.start <= k < u.start + u.count:
                continue  # the failing unit: it stopped at the failure
            if job.halt == "now" or u.start > k:
                u.abandoned = True
                job.units.discard(u)
                self._unregister(u)
                if u.worker is not None and u.worker.state == "busy" and u.worker.unit is u:
                    self._kill(u.worker, "abort")
                    job.aborted.append((u.start + u.received, u.start + u.count))
                elif u.worker is not None:
                    pass  # queued behind another unit on its worker: its results are dropped
                if u in self.ready:
                    self.ready.remove(u)

    def _kill(self, w, reason, sig=signal.SIGKILL):
        if w.kill_reason is None or reason == "terminate":
            w.kill_reason = reason
        if self.ex:
            L.lib.corral_signal(self.ex, w.seq, sig)

    def _check_deadlines(self, now):
        """Kill workers whose item ran past the timeout. -> next deadline."""
        timeout = self.cfg["timeout"]
        if timeout is None:
            return None
        nxt = None
        grace = self.cfg["kill_grace"]
        for w in list(self.workers.values()):
            if w.kill_at is not None:
                if now >= w.kill_at:
                    w.kill_at = None
                    self._kill(w, "timeout")
                else:
                    nxt = w.kill_at if nxt is None else min(nxt, w.kill_at)
                continue
            u = w.unit
            if u is None or w.state != "busy" or w.kill_reason:
                continue
            base = w.slot * W.SLOT_WORDS
            start = u.dispatched_at
            if self.slots[base + W.S_UNIT] == u.id and self.slots[base + W.S_START]:
                started = self.slots[base + W.S_START] / 1e9
                start = max(start, started)
            deadline = start + timeout
            if now >= deadline:
                if grace:
                    self._kill(w, "timeout", signal.SIGTERM)
                    w.kill_at = now + grace
                    nxt = w.kill_at if nxt is None else min(nxt, w.kill_at)
                else:
                    self._kill(w, "timeout")
            else:
                nxt = deadline if nxt is None else min(nxt, deadline)
        return nxt

    # -- the dispatcher thread
    def start(self):
        self.thread = threading.Thread(target=self._run, name="corral-pool-dispatcher",
                                       daemon=True)
        self.thread.start()
        with self.lock:
            while self.thread.ident not in _DISPATCHERS and self.thread.is_alive():
                self.cond.wait(0.01)

    def _run(self):
        _DISPATCHERS.add(threading.get_ident())
        try:
            with self.lock:
                self.cond.notify_all()
            self._loop()
        except BaseException:
            # Never die silently: fail everything, kill everything.
            try:
                sys.stderr.write("corral.Pool: internal error in the dispatcher:\n")
                traceback.print_exc()
            except Exception:
                pass
            with self.lock:
                self._terminate_locked()
        finally:
            _DISPATCHERS.discard(threading.get_ident())
            with self.lock:
                self.cond.notify_all()

    def _loop(self):
        timeout_ms = None
        while True:
            events = self.poller.poll(timeout_ms)
            callbacks = []
            with self.lock:
                if self.stopping:
                    return
                for fd, ev in events:
                    if fd == self.wake_r:
                        try:
                            while os.read(self.wake_r, 4096):
                                pass
                        except BlockingIOError:
                            pass
                    elif fd == self.ex_fd:
                        self._pump_executor()
                    else:
                        w = self.by_fd.get(fd)
                        if w is None:
                            try:
                                self.poller.unregister(fd)
                            except (KeyError, ValueError):
                                pass
                            continue
                        if ev & select.POLLOUT:
                            self._flush_out(w)
                        if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                            self._read(w)
                for w in list(self.workers.values()):
                    if w.fd >= 0 and (not w.registered or w.pollmask !=
                                      ((0 if w.eof else select.POLLIN) |
                                       (select.POLLOUT if w.outbuf else 0))):
                        self._poll_mask(w)
                self._dispatch()
                now = time.monotonic()
                nxt = self._check_deadlines(now)
                spawn_at = self._maybe_spawn(now)
                if spawn_at is not None:
                    nxt = spawn_at if nxt is None else min(nxt, spawn_at)
                if self._finished_jobs and not self.forking:
                    callbacks = [j for j in self._finished_jobs if j.callbacks_due]
                    self._finished_jobs = []
                    self.user_code = bool(callbacks)
                if self.need_notify or self.forking:
                    self.need_notify = False
                    self.cond.notify_all()
                timeout_ms = None if nxt is None else max(0, int((nxt - now) * 1000) + 1)
            if callbacks:
                try:
                    _run_callbacks(callbacks)
                finally:
                    with self.lock:
                        self.user_code = False
                        self.cond.notify_all()
                timeout_ms = 0

    # -- exec'd workers (the dispatcher thread)
    def _maybe_spawn(self, now):
        """No calling thread is in the pool to fork, the pool lacks workers and
        has work a new worker could take: start one as a fresh interpreter (a
        command task: clone and exec, no Python code runs in between, so this
        thread may). Returns when to look again, or None."""
        if self.spawn_broken or self._state != _RUN or self.stopping or self.draining or \
                not self.ex:
            self.need_since = None
            return None
        live = [w for w in self.workers.values() if w.state in ("idle", "busy")]
        want = None
        if len(live) < self.processes:
            for u in self.ready:
                if not u.job.needs_fresh and not u.abandoned:
                    want = u.memory if u.memory is not None else self.cfg["memory"]
                    break
            else:
                if any(j.has_work() and not j.needs_fresh for j in self.jobs):
                    want = self.cfg["memory"]
        budget = self.cfg["memory_budget"]
        if want is not None and budget and want != L.UNLIMITED and \
                sum(w.memory for w in self.workers.values() if w.memory != L.UNLIMITED) + \
                want > budget:
            want = None
        if want is None or self.waiters or self.forking:
            self.need_since = None
            return None
        if self.need_since is None:
            self.need_since = now
        at = self.need_since + SPAWN_GRACE
        if now < at:
            return at  # a calling thread may come and fork (much faster)
        self.need_since = None
        self._spawn_exec(want)
        return None

    def _spawn_exec(self, mem):
        import socket
        if self._init_bytes is None:
            try:
                self._init_bytes = pickle.dumps((self.cfg["initializer"], self.cfg["initargs"]),
                                                pickle.HIGHEST_PROTOCOL)
            except Exception:
                self._init_bytes = False
        if self._init_bytes is False or not self.free_slots:
            self.spawn_broken = True
            return
        slot = self.free_slots.pop()
        base = slot * W.SLOT_WORDS
        for i in range(W.SLOT_WORDS):
            self.slots[base + i] = 0
        a, b = socket.socketpair()
        dedicated = mem != self.cfg["memory"]
        maxtasks = 1 if dedicated else self.cfg["maxtasks"]
        spec = {"slot": slot, "shm_size": self.shm_size, "init": self._init_bytes,
                "maxtasks": maxtasks, "result_max": self.cfg["result_max"],
                "sys_path": [p for p in sys.path if isinstance(p, str)]}
        body = pickle.dumps(spec, pickle.HIGHEST_PROTOCOL)
        try:
            socket.send_fds(a, [_HDR.pack(len(body), ord("S")) + body], [self.memfd])
        except OSError:
            a.close()
            b.close()
            self.free_slots.append(slot)
            self.spawn_broken = True
            return
        pfd, cfd = a.detach(), b.detach()
        argv = (ctypes.c_char_p * 4)(sys.executable.encode(), b"-c", W.SPAWN_CODE.encode(),
                                     None)
        t = L.Task()
        L.lib.corral_task_init(ctypes.byref(t))
        t.argv = ctypes.cast(argv, ctypes.POINTER(ctypes.c_char_p))
        t.stdin_fd = cfd
        t.stdout_fd = self.cfg["stdout"]
        t.stderr_fd = self.cfg["stderr"]
        t.memory_max = mem if mem != self.cfg["memory"] else 0
        err = L.Error()
        try:
            seq = L.lib.corral_submit(self.ex, ctypes.byref(t), ctypes.byref(err))
            if seq < 0:
                os.close(pfd)
                self.free_slots.append(slot)
                self.spawn_broken = True
                return
            w = _Worker(seq, pfd, slot, 0, mem, dedicated, maxtasks)
            w.spawned = True
            self.workers[seq] = w
            self.by_fd[pfd] = w
            os.set_blocking(pfd, False)
            self._poll_mask(w)
            self._pump_executor()  # starts it (clone + exec)
        finally:
            os.close(cfd)

    # -- waiting (calling threads)
    def wait_for(self, pred, timeout):
        """Wait until pred() (lock held) or timeout s. Forks what the pool lacks
        on the way; Ctrl-C or an error terminates the pool."""
        if threading.get_ident() in _DISPATCHERS:
            if pred():
                return True
            raise RuntimeError("corral.Pool: results cannot be waited for inside a callback "
                               "(it runs in the pool's dispatcher thread)")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with self.lock:
                self.waiters += 1
                try:
                    return self._wait_locked(pred, deadline)
                finally:
                    self.waiters -= 1
        except BaseException:
            self.terminate()
            raise

    def _wait_locked(self, pred, deadline):
        while True:
            # What the caller waits for first: a verdict decided by a worker's
            # death returns at once; the replacement is forked on the way in
            # (or by the next call), not before the caller hears of it.
            self._pump_if_no_dispatcher()
            if pred():
                return True
            if self._fork_now(most=1):
                # One fork at a time, the lock released in between: the
                # dispatcher takes what happened meanwhile (a death that
                # decides pred) without waiting for every fork.
                self.cond.wait(0.001)
                continue
            if self._state == _TERMINATE and not self.thread_alive():
                return pred()
            if deadline is None:
                self.cond.wait(0.5 if self._state == _TERMINATE else None)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)

    def thread_alive(self):
        return self.thread is not None and self.thread.is_alive()

    def _pump_if_no_dispatcher(self):
        if self.thread is None or not self.thread.is_alive():
            if self.ex:
                self._pump_executor()

    # -- submission (calling threads)
    def submit_job(self, job):
        with self.lock:
            self.jobs.append(job)
            # One fork now (the job's first unit may go with it); waiting
            # callers fork the rest, one at a time, the lock released between.
            self._fork_now(most=1)
            self._wake()

    # -- shutdown
    def terminate(self):
        with self.lock:
            if self._state == _TERMINATE and not self.ex and not self.thread_alive():
                return
            self._terminate_locked()
        t = self.thread
        if t is not None and t is not threading.current_thread():
            t.join(10)
        with self.lock:
            self._final_cleanup()

    def _terminate_locked(self):
        self._state = _TERMINATE
        self.stopping = True
        for w in list(self.workers.values()):
            self._kill(w, "terminate")
        for job in list(self.jobs) + [u.job for u in self.ready] + \
                [u.job for w in self.workers.values() for u in w.units]:
            job.terminate()
        self.jobs.clear()
        self.ready.clear()
        self._wake()
        self.cond.notify_all()

    def _final_cleanup(self):
        if self.ex:
            self._pump_executor()
            self._free_executor()
        for w in list(self.workers.values()):
            for u in w.units:
                if not u.job.finished:
                    u.job.terminate()
            if w.fd >= 0:
                os.close(w.fd)
                w.fd = -1
        self.workers.clear()
        self.by_fd.clear()
        if self.memfd >= 0:
            os.close(self.memfd)
            self.memfd = -1
        if self.wake_r >= 0:
            os.close(self.wake_r)
            os.close(self.wake_w)
            self.wake_r = self.wake_w = -1
        jobs, self._finished_jobs = self._finished_jobs, []
        self.cond.notify_all()
        if jobs and threading.get_ident() not in _DISPATCHERS:
            self.lock.release()
            try:
                _run_callbacks(jobs)
            finally:
                self.lock.acquire()

    def close_and_drain(self):
        """join() after close(): wait for every job, then let the workers quit."""
        for job in list(self.jobs):
            if not job.exhausted and job.iterator is not None:
                job.top_up(float("inf"))  # as multiprocessing reads all input

        def idle():
            return all(j.finished or (j.all_cut() and not j.units) for j in self.jobs) and \
                not self.ready and all(w.unit is None for w in self.workers.values())
        self.wait_for(idle, None)
        with self.lock:
            self.draining = True
            for w in list(self.workers.values()):
                if w.state in ("idle", "busy"):
                    self._quit(w)
            self._wake()
        self.wait_for(lambda: not self.workers, 10)
        self.terminate()


def _run_callbacks(jobs):
    for job in jobs:
        if not job.callbacks_due:
            continue
        job.callbacks_due = False
        fut = job.future
        if fut is not None:
            try:
                if job.verdict is not None:
                    fut.set_exception(job.verdict)
                else:
                    fut.set_result(job.value)
            except Exception:
                pass  # cancelled meanwhile
            continue
        try:
            if job.verdict is None and job.callback is not None and \
                    job.mode in ("list", "apply"):
                job.callback(job.value)
            elif job.verdict is not None and job.error_callback is not None:
                job.error_callback(job.verdict)
        except Exception:
            sys.stderr.write("corral.Pool: exception in a result callback:\n")
            traceback.print_exc()


def _finalize(core):
    try:
        core.terminate()
    except Exception:
        pass


# ---------------------------------------------------------------- results


class ApplyResult(Generic[T]):
    """What apply_async()/map_async() return: multiprocessing's AsyncResult API.

    get() and wait() also fork the workers the pool lacks (a worker that died
    is replaced by the next thread that calls into the pool)."""

    def __init__(self, pool: "Pool", job: _Job) -> None:
        self._pool = pool
        self._job = job

    def ready(self) -> bool:
        core = self._pool._core
        with core.lock:
            core._fork_now()
        return self._job.finished

    def wait(self, timeout: Optional[float] = None) -> None:
        if not self._job.finished:
            self._pool._core.wait_for(lambda: self._job.finished, timeout)

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._job.verdict is None

    def get(self, timeout: Optional[float] = None) -> T:
        self.wait(timeout)
        if not self._job.finished:
            raise TimeoutError(f"the result was not ready within {timeout} s")
        if self._job.verdict is not None:
            raise self._job.verdict
        return self._job.value

    @property
    def records(self) -> Any:
        """TaskRecord of each task's final attempt (a list for map jobs, in
        input order, None where a task never produced a record)."""
        j = self._job
        with self._pool._core.lock:
            if j.kind == "apply":
                return j.record(0)
            return [j.record(i) for i in range(j.n)]

    def __repr__(self) -> str:
        state = "ready" if self._job.finished else "pending"
        return f"<corral.{type(self).__name__} {state}>"


AsyncResult = ApplyResult


class MapResult(ApplyResult[List[T]]):
    pass


class IMapIterator(Generic[T]):
    """Iterator of imap() (input order) and imap_unordered() (completion order).

    ``next(timeout)`` is supported as in multiprocessing. Once a failure was
    raised under halt "ordered" or "now", the iterator is finished (like a
    generator that raised)."""

    def __init__(self, pool: "Pool", job: _Job) -> None:
        self._pool = pool
        self._job = job
        self._pos = 0
        self._done = False

    def __iter__(self) -> "IMapIterator[T]":
        return self

    def _cancel_rest(self):
        """Start no more of this call's items (concurrent.futures' map, left
        early): queued ones are dropped, running ones finish."""
        job = self._job
        core = self._pool._core
        with core.lock:
            if job.finished:
                return
            job.exhausted = True
            job.buffer.clear()
            job.cut_limit = job.next_pos
            for u in list(job.units):
                if u.worker is None:
                    job.units.discard(u)
                    core._unregister(u)
                    if u in core.ready:
                        core.ready.remove(u)
            job.check_finished()

    def __next__(self) -> T:
        return self.next()

    def __del__(self):
        # Abandoned (e.g. a `break` out of the loop): start no more of its
        # tasks; the running ones finish.
        job = getattr(self, "_job", None)
        if job is not None and not job.finished:
            job.exhausted = True
            job.buffer.clear()
            if job.items is None:
                job.iterator = None

    def _top_up(self):
        job = self._job
        if job.exhausted:
            return
        core = self._pool._core
        want = max(4 * core.processes * job.chunksize, 32)
        job.top_up(want)
        with core.lock:
            core._wake()

    def next(self, timeout: Optional[float] = None) -> T:
        if self._done:
            raise StopIteration
        self._top_up()
        if self._job.mode == "unordered":
            return self._next_unordered(timeout)
        return self._next_ordered(timeout)

    def _wait(self, pred, timeout):
        job = self._job
        core = self._pool._core
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = 0.05 if not job.exhausted else left
            if step is not None and left is not None:
                step = min(step, left)
            if core.wait_for(pred, step):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self._top_up()

    def _next_ordered(self, timeout):
        job = self._job
        i = self._pos

        def ready():
            return (i in job.values or i in job.failures or i in job.consequences
                    or job.finished or (job.exhausted and i >= job.n and not job.buffer
                                        and not job.units and job.all_cut()))

        if not self._wait(ready, timeout):
            raise TimeoutError(f"no result within {timeout} s")
        with self._pool._core.lock:
            if i in job.values:
                self._pos += 1
                return job.values.pop(i)
            if i in job.failures and job.halt != "now":
                self._pos += 1
                if job.halt != "never":
                    self._done = True  # ordered: every lower index succeeded
                raise job.failures[i]
            if job.halt == "never" and i in job.consequences:
                self._pos += 1
                raise job.consequences[i]
        if i in job.failures or i in job.consequences:
            # halt "now" (or terminate): the verdict may be another task's
            self._pool._core.wait_for(lambda: job.finished, None)
            self._done = True
            if job.verdict is not None:
                raise job.verdict
        if i >= job.n and job.exhausted:
            self._pool._core.wait_for(lambda: job.finished or not job.units, None)
            self._done = True
            if job.input_error is not None:
                raise job.input_error
            raise StopIteration
        self._done = True
        if job.verdict is not None:
            raise job.verdict
        raise StopIteration

    def _next_unordered(self, timeout):
        job = self._job
        core = self._pool._core
        while True:
            if not self._wait(lambda: bool(job.arrivals) or job.finished, timeout):
                raise TimeoutError(f"no result within {timeout} s")
            with core.lock:
                while job.arrivals:
                    v = job.arrivals.popleft()
                    if not isinstance(v, _Raise):
                        return v
                    if job.halt == "never":
                        raise v.exc
                if job.finished:
                    self._done = True
                    if job.verdict is not None:
                        raise job.verdict
                    raise StopIteration


# ---------------------------------------------------------------- the pool


class Pool:
    """A drop-in for multiprocessing.Pool whose workers each run in their own
    cgroup, and whose every task failure names the task and its cause. See
    the package docstring."""

    def __init__(self, processes: Optional[int] = None,
                 initializer: Optional[Callable[..., Any]] = None, initargs: Sequence[Any] = (),
                 maxtasksperchild: Optional[int] = None, context: Any = None, *,
                 memory: Size = None, timeout: Duration = None, retries: int = 0,
                 retry_on: Union[str, Sequence[str]] = "oom", memory_growth: float = 2.0,
                 memory_ceiling: Size = None, memory_budget: Size = None,
                 halt: str = "ordered", cpus: Optional[float] = None,
                 pids: Optional[int] = 4096, result_max: Size = "64M",
                 cgroup_parent: Optional[str] = None, oom_group: bool = True,
                 allow_subprocess_oom: bool = False, kill_grace: Duration = None) -> None:
        if W.IN_WORKER:
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
        mem = L.parse_size(memory, "memory")
        timeout_ns = L.parse_duration(timeout, "timeout")
        grace_ns = 0 if kill_grace is None else L.parse_duration(kill_grace, "kill_grace")
        result_max_b = L.parse_size(result_max, "result_max")
        if result_max_b == L.UNLIMITED:
            result_max_b = (1 << 63) - 1
        if not isinstance(retries, int) or retries < 0:
            raise ValueError("retries must be an int >= 0")
        ro = ctypes.c_uint()
        if isinstance(retry_on, (list, tuple, set, frozenset)):
            retry_on = ",".join(retry_on) or "none"
        if L.lib.corral_parse_retry_on(str(retry_on).encode(), ctypes.byref(ro)) < 0:
            raise ValueError(f"invalid retry_on {retry_on!r}: a list of oom, timeout, "
                             f"signal, exit (or 'all', 'none')")
        if not memory_growth >= 1.0:
            raise ValueError("memory_growth must be >= 1")
        budget = L.parse_size(memory_budget, "memory_budget")
        # None: libcorral's provider chain decides (README, "Where corral gets
        # its cgroups"); a second executor of this process goes next to the
        # first one's batch by itself (hierarchy.c, supervisor_home).
        self._processes = processes
        self._halt_name = halt
        cfg = {
            "processes": processes, "initializer": initializer, "initargs": tuple(initargs),
            "maxtasks": maxtasksperchild or 0, "memory": mem,
            "memory_ceiling": L.parse_size(memory_ceiling, "memory_ceiling"),
            "memory_budget": None if budget == L.UNLIMITED else budget,
            "timeout": None if timeout_ns == L.UNLIMITED else timeout_ns / 1e9,
            "kill_grace": grace_ns / 1e9 if grace_ns else 0.0,
            "retries": retries, "retry_on": ro.value, "memory_growth": float(memory_growth),
            "cpus": float(cpus) if cpus else 0.0,
            "pids": L.UNLIMITED if pids is None else int(pids),
            "result_max": result_max_b,
            "cgroup_parent": cgroup_parent.encode() if cgroup_parent else None,
            "oom_group": bool(oom_group), "allow_subprocess_oom": bool(allow_subprocess_oom),
            "stdout": _valid_fd(1), "stderr": _valid_fd(2),
        }
        if cfg["memory_budget"] is not None and mem != L.UNLIMITED and mem > cfg["memory_budget"]:
            raise ValueError("memory exceeds memory_budget: no worker could ever start")
        self._state = _RUN
        self._pid = os.getpid()
        self._core = _Core(cfg)
        self._finalizer = weakref.finalize(self, _finalize, self._core)
        try:
            with self._core.lock:
                self._core._fork_now()
            self._core.start()
        except BaseException:
            self._core.terminate()
            raise

    # -- guards
    def _check_running(self) -> None:
        self._check_usable()
        if self._state != _RUN:
            raise ValueError("Pool not running")

    def _check_usable(self) -> None:
        if W.IN_WORKER or os.getpid() != self._pid:
            raise RuntimeError("a corral.Pool cannot be used from its own tasks or from "
                               "a forked child")

    # -- public API (multiprocessing.Pool's)
    def apply(self, func: Callable[..., T], args: Sequence[Any] = (),
              kwds: Mapping[str, Any] = {}) -> T:
        """func(*args, **kwds) in a worker; returns its result."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func: Callable[..., T], args: Sequence[Any] = (),
                    kwds: Mapping[str, Any] = {},
                    callback: Optional[Callable[[T], Any]] = None,
                    error_callback: Optional[Callable[[BaseException], Any]] = None
                    ) -> "ApplyResult[T]":
        self._check_running()
        job = _Job(self._core, "apply", func, "apply", items=[(tuple(args), dict(kwds))],
                   callback=callback, error_callback=error_callback)
        self._core.submit_job(job)
        return ApplyResult(self, job)

    def _submit_future(self, func, args, kwds, future):
        self._check_running()
        job = _Job(self._core, "apply", func, "apply", items=[(tuple(args), dict(kwds))],
                   future=future)
        self._core.submit_job(job)
        return job

    def map(self, func: Callable[[Any], T], iterable: Iterable[Any],
            chunksize: Optional[int] = None) -> List[T]:
        """[func(x) for x in iterable], over the workers."""
        return self._map_async(func, iterable, False, chunksize, None, None).get()

    def map_async(self, func: Callable[[Any], T], iterable: Iterable[Any],
                  chunksize: Optional[int] = None,
                  callback: Optional[Callable[[List[T]], Any]] = None,
                  error_callback: Optional[Callable[[BaseException], Any]] = None
                  ) -> "MapResult[T]":
        return self._map_async(func, iterable, False, chunksize, callback, error_callback)

    def starmap(self, func: Callable[..., T], iterable: Iterable[Iterable[Any]],
                chunksize: Optional[int] = None) -> List[T]:
        """[func(*args) for args in iterable]."""
        return self._map_async(func, iterable, True, chunksize, None, None).get()

    def starmap_async(self, func: Callable[..., T], iterable: Iterable[Iterable[Any]],
                      chunksize: Optional[int] = None,
                      callback: Optional[Callable[[List[T]], Any]] = None,
                      error_callback: Optional[Callable[[BaseException], Any]] = None
                      ) -> "MapResult[T]":
        return self._map_async(func, iterable, True, chunksize, callback, error_callback)

    def imap(self, func: Callable[[Any], T], iterable: Iterable[Any],
             chunksize: int = 1) -> "IMapIterator[T]":
        """Results in input order, as they become available."""
        return self._imap(func, iterable, "ordered", chunksize)

    def imap_unordered(self, func: Callable[[Any], T], iterable: Iterable[Any],
                       chunksize: int = 1) -> "IMapIterator[T]":
        """Results in completion order."""
        return self._imap(func, iterable, "unordered", chunksize)

    def _map_async(self, func, iterable, star, chunksize, callback, error_callback):
        self._check_running()
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)  # as multiprocessing does for map()
        items = iterable if isinstance(iterable, list) else list(iterable)
        if star:
            items = [tuple(a) for a in items]
        if chunksize is None:
            chunksize, extra = divmod(len(items), self._processes * 4)
            if extra or not chunksize:
                chunksize += 1
        if chunksize < 1:
            raise ValueError(f"chunksize must be >= 1, not {chunksize}")
        job = _Job(self._core, "map", func, "list", items=items, chunksize=chunksize,
                   halt=self._halt_name, callback=callback, error_callback=error_callback,
                   star=star)
        if not items:
            with self._core.lock:
                job.finish()
            self._core._wake()
            return MapResult(self, job)
        self._core.submit_job(job)
        return MapResult(self, job)

    def _map_iter(self, func, items, chunksize):
        """concurrent.futures' map: every call known, results in order, each
        failure raised in place (halt "never")."""
        self._check_running()
        job = _Job(self._core, "map", func, "ordered", items=items, chunksize=chunksize,
                   halt="never", star=True)
        if items:
            self._core.submit_job(job)
        else:
            with self._core.lock:
                job.finish()
        return IMapIterator(self, job)

    def _cancel_pending(self):
        """shutdown(cancel_futures=True): calls not started are cancelled."""
        core = self._core
        with core.lock:
            for job in list(core.jobs):
                if job.finished:
                    continue
                if job.future is not None:
                    if job.next_pos == 0 and job.future.cancel():
                        job.future = None
                        job.cut_limit = 0
                        job.finish()
                    continue
                job.cut_limit = job.next_pos
                for u in list(job.units):
                    if u.worker is None:
                        job.units.discard(u)
                        core._unregister(u)
                        if u in core.ready:
                            core.ready.remove(u)
                job.check_finished()
            core._wake()

    def _imap(self, func, iterable, mode, chunksize, star=False, halt=None):
        self._check_running()
        if chunksize is None or chunksize < 1:
            raise ValueError(f"chunksize must be >= 1, not {chunksize}")
        it = iter(iterable)
        if star:
            it = (tuple(a) for a in it)
        job = _Job(self._core, "map", func, mode, iterator=it, chunksize=chunksize,
                   halt=halt or self._halt_name, star=star)
        job.top_up(max(4 * self._processes * chunksize, 32))
        self._core.submit_job(job)
        return IMapIterator(self, job)

    def close(self) -> None:
        """No more tasks; join() then waits for the submitted ones."""
        self._check_usable()
        if self._state == _RUN:
            self._state = _CLOSE
            self._core._state = _CLOSE

    def terminate(self) -> None:
        """Kill every worker, fail the pending tasks, remove every cgroup."""
        if W.IN_WORKER or os.getpid() != self._pid:
            return
        self._state = _TERMINATE
        self._core.terminate()

    def join(self) -> None:
        """Wait until every submitted task has finished (after close/terminate)."""
        self._check_usable()
        if self._state == _RUN:
            raise ValueError("Pool is still running")
        if self._state == _CLOSE:
            self._core.close_and_drain()
        else:
            self._core.terminate()

    def __enter__(self) -> "Pool":
        self._check_running()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.terminate()

    def __repr__(self) -> str:
        return (f"<corral.Pool state={self._state} processes={self._processes} "
                f"workers={len(self._core.workers)}>")

    def __reduce__(self):
        raise NotImplementedError("pool objects cannot be passed between processes "
                                  "or pickled")


def check(json: bool = False) -> Tuple[bool, str]:
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
