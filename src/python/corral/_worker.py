"""The worker side of corral.Pool: what runs in a worker process.

A worker is one libcorral function task: libcorral forks it from the thread
that called into the pool, into a cgroup of its own with the pool's memory
limit, and calls ``_worker_entry(key, out_fd)`` in the child through a ctypes
callback. ``key`` names the worker's ``_Spec`` in ``_SPECS``, a dict the child
inherited by fork. The child keeps fds 0, 1 and 2 only: fd 0 is the worker's
end of a socketpair with the pool (tasks in, results out, both directions on
one socket so that the task's stdout and stderr stay the caller's), stdout and
stderr are the caller's.

Protocol (little-endian; every message is a 5-byte header, length of the rest
and a type byte, then a pickle):
  pool -> worker   T  a unit of work: (unit_id, flags, fpart, ipart)
                   Q  quit: return from the loop (the process exits 0)
  worker -> pool   R  results of a unit (final), P the same, partial
                   L  the unit could not be loaded here (unknown function)

A unit is one task (apply, submit) or a chunk of items of one call. While it
runs, the worker keeps its place in ``slot``, a few words of memory shared
with the pool (an anonymous MAP_SHARED mapping made before any fork): the
unit's id, the position of the item it runs, when that item started, its pid.
The pool reads them when the worker dies, so it knows exactly which item the
worker held even inside a chunk, without a message per item.

Nothing here runs in the pool's own process.
"""
import os
import pickle
import signal
import struct
import sys
import time
import traceback

HDR = struct.Struct("<IB")
UNIT_ID = struct.Struct("<Q")
# Shared slot of one worker: unit id, item position, item start (ns), pid,
# items finished in the unit (their results reached the pool or not).
SLOT_WORDS = 5
SLOT_BYTES = SLOT_WORDS * 8
S_UNIT, S_POS, S_START, S_PID, S_DONE = range(SLOT_WORDS)

# Unit flags.
F_STOP_ON_ERROR = 1   # halt "ordered"/"now": the rest of a chunk after a failure is not run
F_STAR = 2            # starmap: func(*item)
F_APPLY = 4           # one item: (args, kwds)
F_TIMED = 8           # keep each item's start time in the slot (timeouts)

# What a worker inherits and looks up by key (see _pool.py, "Registry").
_SPECS = {}
REGISTRY = {}
IN_WORKER = False
PARTIAL_FLUSH_S = 0.02


class Spec:
    """What a new worker needs, registered before its fork."""

    __slots__ = ("slot", "shm", "initializer", "initargs", "maxtasks", "birth", "result_max")

    def __init__(self, slot, shm, initializer, initargs, maxtasks, birth, result_max):
        self.slot = slot
        self.shm = shm
        self.initializer = initializer
        self.initargs = initargs
        self.maxtasks = maxtasks
        self.birth = birth          # a unit message to run first, or None
        self.result_max = result_max


def _format_tb(exc):
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return '\n"""\n%s"""' % tb


def encode_exception(exc):
    """(traceback text, pickled exception) of an exception raised by a task."""
    from ._errors import MaybeEncodingError
    if not isinstance(exc, Exception):
        # KeyboardInterrupt, GeneratorExit, ... raised inside the task: not
        # re-raised as such in the caller.
        tb = _format_tb(exc)
        wrapped = RuntimeError(f"the task raised {type(exc).__name__}: {exc}")
        exc = wrapped
    else:
        tb = _format_tb(exc)
    try:
        body = pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        body = pickle.dumps(MaybeEncodingError(e, exc), pickle.HIGHEST_PROTOCOL)
    return (tb, body)


def _flush_std():
    for f in (sys.stdout, sys.stderr):
        try:
            if f is not None:
                f.flush()
        except Exception:
            pass


class _Conn:
    """Blocking framed messages over the worker's socket."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()

    def send(self, kind, obj):
        body = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        data = HDR.pack(len(body), kind) + body
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def recv(self):
        """(kind, body bytes) or None at EOF."""
        while True:
            if len(self.buf) >= HDR.size:
                n, kind = HDR.unpack_from(self.buf)
                if len(self.buf) >= HDR.size + n:
                    body = bytes(self.buf[HDR.size:HDR.size + n])
                    del self.buf[:HDR.size + n]
                    return kind, body
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return None
            self.buf += chunk


def _oom_counter():
    """(fd, key) of this process's cgroup OOM-kill counter, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        hid, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(","):
            p = os.path.join("/sys/fs/cgroup/memory", path.lstrip("/"), "memory.oom_control")
            break
    else:
        p = None
        for line in lines:
            hid, ctrls, path = line.split(":", 2)
            if hid == "0":
                p = os.path.join("/sys/fs/cgroup", path.lstrip("/"), "memory.events.local")
    if p is None:
        return None
    try:
        return os.open(p, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _read_oom_kills(fd):
    try:
        text = os.pread(fd, 4096, 0).decode()
    except OSError:
        return 0
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == "oom_kill":
            return int(v)
    return 0


class _Worker:
    def __init__(self, spec, fd):
        self.spec = spec
        self.conn = _Conn(fd)
        self.slot = memoryview(spec.shm)[spec.slot * SLOT_BYTES:
                                         (spec.slot + 1) * SLOT_BYTES].cast("Q")
        self.funcs = {}             # job id -> function (unpickled once)
        self.init_error = None
        self.oom_fd = _oom_counter()
        self.oom_seen = _read_oom_kills(self.oom_fd) if self.oom_fd is not None else 0

    def load(self, body):
        """-> (unit_id, flags, func, items) or raises. The unit's id comes
        first, unpickled: the slot names the unit before anything of it is
        loaded, so a death while loading is attributed to it."""
        (unit_id,) = UNIT_ID.unpack_from(body)
        slot = self.slot
        slot[S_POS] = 0
        slot[S_DONE] = 0
        slot[S_UNIT] = unit_id
        flags, fpart, ipart = pickle.loads(memoryview(body)[UNIT_ID.size:])
        return unit_id, flags, self._func(fpart), self._items(ipart)

    def _func(self, fpart):
        if fpart[0] == "K":
            return REGISTRY[fpart[1]].func
        _, job_id, data = fpart
        f = self.funcs.get(job_id)
        if f is None:
            if len(self.funcs) > 64:
                self.funcs.clear()
            f = self.funcs[job_id] = pickle.loads(data)
        return f

    @staticmethod
    def _items(ipart):
        if ipart[0] == "K":
            job = REGISTRY[ipart[1]]
            return job.items[ipart[2]:ipart[3]]
        if ipart[0] == "U":
            return REGISTRY[ipart[1]].items
        return ipart[1]

    def run(self):
        if self.spec.initializer is not None:
            try:
                self.spec.initializer(*self.spec.initargs)
            except BaseException as e:
                self.init_error = e
        done = 0
        birth = self.spec.birth
        while True:
            if birth is not None:
                body, birth = birth, None
            else:
                msg = self.conn.recv()
                if msg is None or msg[0] == ord("Q"):
                    return 0
                kind, body = msg
                if kind != ord("T"):
                    continue
            try:
                unit_id, flags, func, items = self.load(body)
            except BaseException as e:
                uid = UNIT_ID.unpack_from(body)[0] if len(body) >= UNIT_ID.size else 0
                self.conn.send(ord("L"), (uid, f"{type(e).__name__}: {e}"))
                self.slot[S_UNIT] = 0
                continue
            if self.init_error is not None:
                e = self.init_error
                try:
                    e.add_note("corral: raised by the pool's initializer in this worker "
                               f"(pid {os.getpid()})")
                except Exception:
                    pass
                self.conn.send(ord("R"), (unit_id, 0, 1, True, [None], {0: encode_exception(e)},
                                          0.0, 0.0, 0.0, False))
                return 1
            self.run_unit(unit_id, flags, func, items)
            self.slot[S_UNIT] = 0
            done += 1
            if self.spec.maxtasks and done >= self.spec.maxtasks:
                return 0

    def run_unit(self, unit_id, flags, func, items):
        """Run the items of one unit in order and send their results. The
        slot says which item runs (a store per item, no system call); items
        run in blocks of BLOCK, between which results older than
        PARTIAL_FLUSH_S are sent, so that a worker that dies in a long chunk
        loses at most that much of what it finished."""
        slot = self.slot
        stop = flags & F_STOP_ON_ERROR
        mode = 2 if flags & F_APPLY else (1 if flags & F_STAR else 0)
        timed = bool(flags & F_TIMED)
        values = []
        errors = {}
        sent = 0                    # items whose results were sent (partial flushes)
        t0 = time.monotonic()
        last_flush = t0
        c0 = os.times()
        oom_before = self.oom_seen
        n = len(items)
        j = 0
        while j < n:
            end = min(n, j + BLOCK)
            try:
                _run_block(func, items, j, end, values, slot, mode, timed)
                j = end
            except SystemExit as e:
                # The task ends its process, as it would without a pool: what
                # the earlier items returned is sent first.
                del values[slot[S_POS] - sent:]
                if values or errors:
                    self.send_results(unit_id, sent, len(values), False, values, errors, t0, c0,
                                      0)
                _exit_with(e)
            except BaseException as e:
                j = slot[S_POS]
                del values[j - sent:]
                values.append(None)
                errors[j - sent] = encode_exception(e)
                j += 1
                if stop:
                    break
                continue
            if j < n:
                now = time.monotonic()
                if now - last_flush > PARTIAL_FLUSH_S:
                    self.send_results(unit_id, sent, len(values), False, values, errors, t0, c0,
                                      0)
                    sent += len(values)
                    values, errors = [], {}
                    last_flush = now
        _flush_std()
        # A process this unit started was OOM-killed while the worker lived
        # on (cgroup v1, or oom_group=False): the unit's last item carries it.
        sub_oom = 0
        if self.oom_fd is not None:
            k = _read_oom_kills(self.oom_fd)
            if k > oom_before:
                self.oom_seen = k
                sub_oom = k - oom_before if values else 0
        self.send_results(unit_id, sent, len(values), True, values, errors, t0, c0, sub_oom)

    def send_results(self, unit_id, pos, count, final, values, errors, t0, c0, sub_oom):
        c1 = os.times()
        msg = (unit_id, pos, count, final, values, errors, time.monotonic() - t0,
               c1.user - c0.user, c1.system - c0.system, sub_oom)
        try:
            body = pickle.dumps(msg, pickle.HIGHEST_PROTOCOL)
        except Exception:
            from ._errors import MaybeEncodingError
            values = list(values)
            for i, v in enumerate(values):
                try:
                    pickle.dumps(v, pickle.HIGHEST_PROTOCOL)
                except Exception as e:
                    values[i] = None
                    errors[i] = encode_exception(MaybeEncodingError(e, v))
            msg = msg[:4] + (values, errors) + msg[6:]
            body = pickle.dumps(msg, pickle.HIGHEST_PROTOCOL)
        if len(body) > self.spec.result_max:
            from ._errors import ResultError
            values = [None] * len(values)
            errs = {}
            for i in range(len(values)):
                errs[i] = encode_exception(ResultError(
                    f"its result exceeded result_max ({len(body)} bytes pickled for "
                    f"{len(values)} item(s), result_max {self.spec.result_max})"))
            msg = msg[:4] + (values, errs) + msg[6:]
            body = pickle.dumps(msg, pickle.HIGHEST_PROTOCOL)
        data = HDR.pack(len(body), ord("R" if final else "P")) + body
        view = memoryview(data)
        fd = self.conn.fd
        while view:
            n = os.write(fd, view)
            view = view[n:]


BLOCK = 256


def _run_block(func, items, j, end, values, slot, mode, timed, P=S_POS, T=S_START):
    """items[j:end] -> values, the slot naming each item before it runs.
    Raises what an item raises (the slot then names that item). The loops
    are written out per mode: this is the per-item cost of exact attribution
    (a store into shared memory, ~50 ns), against list(map(func, items))."""
    append = values.append
    if timed:
        mono = time.monotonic_ns
        for i in range(j, end):
            slot[P] = i
            slot[T] = mono()
            x = items[i]
            append(func(*x[0], **x[1]) if mode == 2 else func(*x) if mode == 1 else func(x))
    elif mode == 0:
        for i in range(j, end):
            slot[P] = i
            append(func(items[i]))
    elif mode == 1:
        for i in range(j, end):
            slot[P] = i
            append(func(*items[i]))
    else:
        for i in range(j, end):
            slot[P] = i
            x = items[i]
            append(func(*x[0], **x[1]))


def _exit_with(e):
    _flush_std()
    c = e.code
    if c is None:
        os._exit(0)
    if isinstance(c, int):
        os._exit(c & 0xFF)
    try:
        print(c, file=sys.stderr)
    except Exception:
        pass
    _flush_std()
    os._exit(1)


def _setup_child():
    global IN_WORKER
    IN_WORKER = True
    from . import _errors  # noqa: F401 (imported now, not while a task holds memory)
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
    # fd 0 is the socket to the pool: keep it above the low fds, give the
    # task /dev/null as its stdin (as a task had before).
    fd = os.dup(0)
    os.set_inheritable(fd, False)
    null = os.open(os.devnull, os.O_RDONLY)
    if null != 0:
        os.dup2(null, 0)
        os.close(null)
    return fd


def _worker_entry(arg, out_fd):
    # Runs in the forked child; must never let an exception escape (ctypes
    # would print it and return 0, i.e. "success").
    try:
        spec = _SPECS.get(arg or 0)
        fd = _setup_child()
        if spec is None:
            return 70
        shm = spec.shm
        slot = memoryview(shm)[spec.slot * SLOT_BYTES:(spec.slot + 1) * SLOT_BYTES].cast("Q")
        slot[S_PID] = os.getpid()
        code = _Worker(spec, fd).run()
        _flush_std()
        return code
    except BaseException:
        try:
            os.write(2, ("corral: internal error in a worker process:\n" +
                         traceback.format_exc()).encode("utf-8", "replace"))
        except BaseException:
            pass
        return 70


# ---------------------------------------------------------------- spawned workers

SPAWN_CODE = "from corral._worker import spawn_main; spawn_main()"


def spawn_main():
    """A worker started as a fresh interpreter (a libcorral command task:
    clone and exec, safe from any thread of the pool), when a worker must be
    replaced while no thread of the caller is inside the pool to fork one.
    Its first message (S) carries the memfd of the shared slots and the
    pickled spec; then it is a worker like any other, except that it knows
    nothing by key: every unit comes pickled."""
    import socket
    global IN_WORKER
    fd = _setup_child()
    sock = socket.socket(fileno=os.dup(fd))
    buf = bytearray()
    memfd = None
    while True:
        data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 1)
        if fds:
            memfd = fds[0]
        if not data:
            os._exit(70)
        buf += data
        if len(buf) >= HDR.size:
            n, kind = HDR.unpack_from(buf)
            if len(buf) >= HDR.size + n:
                break
    sock.detach()
    n, kind = HDR.unpack_from(buf)
    if kind != ord("S") or memfd is None:
        os._exit(70)
    spec_d = pickle.loads(bytes(buf[HDR.size:HDR.size + n]))
    rest = buf[HDR.size + n:]
    for p in reversed(spec_d["sys_path"]):
        if p not in sys.path:
            sys.path.insert(0, p)
    import mmap
    shm = mmap.mmap(memfd, spec_d["shm_size"])
    os.close(memfd)
    init, initargs = pickle.loads(spec_d["init"])
    spec = Spec(spec_d["slot"], shm, init, initargs, spec_d["maxtasks"], None,
                spec_d["result_max"])
    slot = memoryview(shm)[spec.slot * SLOT_BYTES:(spec.slot + 1) * SLOT_BYTES].cast("Q")
    slot[S_PID] = os.getpid()
    w = _Worker(spec, fd)
    w.conn.buf += rest
    w.conn.send(ord("H"), os.getpid())
    code = w.run()
    _flush_std()
    os._exit(code)
