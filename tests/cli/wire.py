"""wire - the test side of corral's head <-> worker protocol (src/lib/wire.h),
written again from the specification in that header, not from wire.c, so
that the tests cross-check the C codec.

  frame   "CRL" | version u8 (1) | type u8 | payload length u32 BE | payload | "\\n"
  field   tag u8 | length u32 BE | value

Used by tests/cli/test_cli_worker.py (over a pipe) and tests/slurm/ (over
srun's stdio). Messages are dicts: {"type": "RESULT", "id": 3, ...}; a
repeated field (RUN's argv) is a list.
"""
import os
import select
import struct
import time

MAGIC = b"CRL"
VERSION = 1
HEADER = 9
MAX_PAYLOAD = 4 << 20

TYPES = {1: "HELLO", 2: "CONFIG", 3: "READY", 4: "RUN", 5: "STARTED", 6: "OUTPUT",
         7: "RESULT", 8: "KILL", 9: "QUIT", 10: "HEARTBEAT", 11: "ERROR"}
TYPE_IDS = {v: k for k, v in TYPES.items()}

# (tag, name, kind); kinds: bool u8 u32 i32 u64 f64 str bytes strv
FIELDS = {
    "HELLO": [(1, "proto_min", "u32"), (2, "proto_max", "u32"), (3, "version", "str"),
              (4, "node", "str"), (5, "cpus", "u32"), (6, "cpus_affinity", "u32"),
              (7, "memory_total", "u64"), (8, "cgroup_mode", "u8"), (9, "provider", "str"),
              (10, "memory_limits", "bool"), (11, "kernel", "str"), (12, "pid", "i32")],
    "CONFIG": [(1, "proto", "u32"), (2, "jobs", "u32"), (3, "memory_max", "u64"),
               (4, "swap_max", "u64"), (5, "pids_max", "u64"), (6, "cpus", "f64"),
               (7, "timeout_ns", "u64"), (8, "kill_grace_ns", "u64"), (9, "oom_group", "bool"),
               (10, "allow_subprocess_oom", "bool"), (11, "seccomp", "u8"),
               (12, "seccomp_profile", "bytes"), (13, "allow_ptrace", "bool"),
               (14, "no_new_privs", "bool"), (15, "no_network", "bool"), (16, "user", "str"),
               (17, "core_dumps", "bool"), (18, "cgroup_ns", "bool"), (19, "capture_max", "u64"),
               (20, "heartbeat_ms", "u32"), (21, "heartbeat_misses", "u32")],
    "READY": [(1, "jobs", "u32"), (2, "memory_limits", "bool"), (3, "notice", "str")],
    "RUN": [(1, "id", "u64"), (2, "seq", "u64"), (3, "attempt", "u32"), (4, "memory_max", "u64"),
            (5, "argv", "strv")],
    "STARTED": [(1, "id", "u64"), (2, "pid", "i32"), (3, "start_time", "f64")],
    "OUTPUT": [(1, "id", "u64"), (2, "stream", "u8"), (3, "offset", "u64"), (4, "data", "bytes")],
    "RESULT": [(1, "id", "u64"), (2, "outcome", "u8"), (3, "exit_code", "i32"), (4, "signal", "i32"),
               (5, "status", "i32"), (6, "pid", "i32"), (7, "oom_kills", "u64"),
               (8, "own_limit_hit", "bool"), (9, "memory_max", "u64"), (10, "memory_peak", "u64"),
               (11, "pids_limit_hit", "bool"), (12, "seccomp_kill", "bool"),
               (13, "spawn_errno", "i32"), (14, "spawn_step", "str"), (15, "start_time", "f64"),
               (16, "wall_s", "f64"), (17, "user_s", "f64"), (18, "sys_s", "f64"),
               (19, "out_len", "u64"), (20, "out_lost", "u64"), (21, "err_len", "u64"),
               (22, "err_lost", "u64"), (23, "node", "str"), (24, "sentence", "str")],
    "KILL": [(1, "id", "u64"), (2, "reason", "u8")],
    "QUIT": [],
    "HEARTBEAT": [(1, "seq", "u64"), (2, "mono_ns", "u64")],
    "ERROR": [(1, "code", "i32"), (2, "message", "str")],
}

OUTCOMES = ("ok", "exit", "oom", "oom_outside", "subprocess_oom", "timeout", "signal",
            "spawn_error", "cancelled", "aborted")
UNLIMITED = (1 << 64) - 1

_PACK = {"u8": ">B", "bool": ">B", "u32": ">I", "i32": ">i", "u64": ">Q", "f64": ">d"}


class ProtocolError(Exception):
    pass


def encode(msg, extra_fields=()):
    """A frame for msg (a dict with "type"). extra_fields: (tag, bytes) pairs
    appended as they are (to send fields the worker does not know)."""
    t = msg["type"]
    out = bytearray()
    for tag, name, kind in FIELDS[t]:
        if name not in msg:
            continue
        v = msg[name]
        values = v if kind == "strv" else [v]
        for x in values:
            if kind in _PACK:
                b = struct.pack(_PACK[kind], int(x) if kind != "f64" else float(x))
            elif kind in ("str", "strv"):
                b = x.encode("utf-8", "surrogateescape") if isinstance(x, str) else bytes(x)
            else:
                b = bytes(x)
            out += struct.pack(">BI", tag, len(b)) + b
    for tag, b in extra_fields:
        out += struct.pack(">BI", tag, len(b)) + b
    return MAGIC + bytes([VERSION, TYPE_IDS[t]]) + struct.pack(">I", len(out)) + bytes(out) + b"\n"


def decode(frame):
    """One whole frame -> dict. Strings come back as bytes."""
    if frame[:3] != MAGIC or frame[3] != VERSION:
        raise ProtocolError("bad header %r" % frame[:9])
    t = TYPES.get(frame[4])
    if t is None:
        raise ProtocolError("unknown type %d" % frame[4])
    (plen,) = struct.unpack(">I", frame[5:9])
    if len(frame) != HEADER + plen + 1 or frame[-1:] != b"\n":
        raise ProtocolError("frame length or terminator wrong")
    byname = {tag: (name, kind) for tag, name, kind in FIELDS[t]}
    msg = {"type": t}
    p = HEADER
    end = HEADER + plen
    while p < end:
        tag, n = struct.unpack(">BI", frame[p:p + 5])
        p += 5
        val = frame[p:p + n]
        if len(val) != n or p + n > end:
            raise ProtocolError("field %d overruns the payload" % tag)
        p += n
        if tag not in byname:
            continue
        name, kind = byname[tag]
        if kind in _PACK:
            (x,) = struct.unpack(_PACK[kind], val)
            msg[name] = bool(x) if kind == "bool" else x
        elif kind == "strv":
            msg.setdefault(name, []).append(bytes(val))
        else:
            msg[name] = bytes(val)
    return msg


class Reader:
    """Frames out of a byte stream, however it was cut."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data

    def next(self):
        if len(self.buf) < HEADER:
            if self.buf[:3] and MAGIC[:len(self.buf[:3])] != bytes(self.buf[:3]):
                raise ProtocolError("garbage: %r" % bytes(self.buf[:40]))
            return None
        if self.buf[:3] != MAGIC:
            raise ProtocolError("garbage: %r" % bytes(self.buf[:40]))
        (plen,) = struct.unpack(">I", self.buf[5:9])
        if plen > MAX_PAYLOAD:
            raise ProtocolError("payload %d too large" % plen)
        total = HEADER + plen + 1
        if len(self.buf) < total:
            return None
        frame = bytes(self.buf[:total])
        del self.buf[:total]
        return decode(frame)


class Channel:
    """The head's side of one worker: write frames to wfd, read from rfd.
    Answers nothing by itself; heartbeats go out from pump() when asked."""

    def __init__(self, rfd, wfd):
        self.rfd = rfd
        self.wfd = wfd
        self.reader = Reader()
        self.eof = False
        self.hb_seq = 0
        self.next_hb = 0.0  # when recv() sends the next heartbeat
        self.log = []  # (monotonic time, msg) of everything received

    def send(self, msg, extra_fields=()):
        self.send_raw(encode(msg, extra_fields))

    def send_raw(self, data):
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.wfd, view)
            except BlockingIOError:
                select.select([], [self.wfd], [], 1.0)
                continue
            view = view[n:]

    def heartbeat(self):
        self.hb_seq += 1
        self.send({"type": "HEARTBEAT", "seq": self.hb_seq, "mono_ns": time.monotonic_ns()})

    def recv(self, timeout, heartbeat_every=None):
        """The next message (dict), or None at EOF; raises TimeoutError.
        With heartbeat_every (seconds), sends heartbeats while it waits."""
        end = time.monotonic() + timeout
        while True:
            m = self.reader.next()
            if m is not None:
                self.log.append((time.monotonic(), m))
                return m
            if self.eof:
                if self.reader.buf:
                    raise ProtocolError("EOF inside a frame: %r" % bytes(self.reader.buf[:40]))
                return None
            now = time.monotonic()
            if now >= end:
                raise TimeoutError("nothing from the worker within %gs" % timeout)
            wait = end - now
            if heartbeat_every:
                # The schedule outlives the call: a worker that talks more
                # often than we beat must still hear from us.
                if now >= self.next_hb:
                    self.heartbeat()
                    self.next_hb = now + heartbeat_every
                wait = min(wait, max(0.0, self.next_hb - now))
            r, _, _ = select.select([self.rfd], [], [], wait)
            if r:
                data = os.read(self.rfd, 1 << 20)
                if not data:
                    self.eof = True
                else:
                    self.reader.feed(data)

    def until_eof(self, timeout):
        """Read to EOF; returns the messages other than heartbeats."""
        end = time.monotonic() + timeout
        got = []
        while True:
            m = self.recv(max(0.0, end - time.monotonic()))
            if m is None:
                return got
            if m["type"] != "HEARTBEAT":
                got.append(m)

    def expect(self, types, timeout, heartbeat_every=None, skip=("HEARTBEAT",)):
        """The next message of one of types, skipping heartbeats."""
        if isinstance(types, str):
            types = (types,)
        while True:
            m = self.recv(timeout, heartbeat_every)
            if m is None:
                raise EOFError("EOF while waiting for %s" % (types,))
            if m["type"] in skip and m["type"] not in types:
                continue
            if m["type"] not in types:
                raise ProtocolError("expected %s, got %r" % (types, m))
            return m


def collect_attempt(ch, att_id, timeout, heartbeat_every=None, others=None):
    """Read until the RESULT of att_id: returns (started, stdout, stderr, result).
    Messages of other attempts go to others (a dict id -> list) if given."""
    started = None
    out = {1: bytearray(), 2: bytearray()}
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise TimeoutError("no RESULT for attempt %d" % att_id)
        m = ch.recv(left, heartbeat_every)
        if m is None:
            raise EOFError("EOF before the RESULT of attempt %d" % att_id)
        if m["type"] == "HEARTBEAT":
            continue
        if m.get("id") != att_id:
            if others is not None:
                others.setdefault(m.get("id"), []).append(m)
                continue
            raise ProtocolError("message of another attempt: %r" % m)
        if m["type"] == "STARTED":
            assert started is None, "two STARTED"
            started = m
        elif m["type"] == "OUTPUT":
            buf = out[m["stream"]]
            assert m["offset"] == len(buf), (m["offset"], len(buf))
            buf += m["data"]
        elif m["type"] == "RESULT":
            assert m["out_len"] == len(out[1]), (m["out_len"], len(out[1]))
            assert m["err_len"] == len(out[2]), (m["err_len"], len(out[2]))
            return started, bytes(out[1]), bytes(out[2]), m
        else:
            raise ProtocolError("unexpected %r" % m)


def config(**kw):
    """A CONFIG with the defaults of `corral run` (sandbox off unless asked)."""
    c = {"type": "CONFIG", "proto": 1, "jobs": 4, "memory_max": UNLIMITED, "swap_max": 0,
         "pids_max": 4096, "cpus": 0.0, "timeout_ns": UNLIMITED, "kill_grace_ns": 0,
         "oom_group": True, "allow_subprocess_oom": False, "seccomp": 0, "allow_ptrace": False,
         "no_new_privs": False, "no_network": False, "user": "", "core_dumps": False,
         "cgroup_ns": False, "capture_max": 0, "heartbeat_ms": 200, "heartbeat_misses": 10}
    c.update(kw)
    return c
