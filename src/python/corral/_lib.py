"""ctypes mirror of include/corral.h and the loading of libcorral.

Everything here is a thin, literal transcription of the C API. The library is
loaded with ctypes.PyDLL: calls keep the GIL held. That matters for the calls
that fork (corral_next() starts queued function tasks with fork()): the fork
hooks PyOS_BeforeFork / PyOS_AfterFork_Parent / PyOS_AfterFork_Child must be
called by the thread that holds the GIL, and the child must inherit a thread
state that owns it. Waiting is never done inside the library: the caller
polls corral_fd() with select.poll(), which releases the GIL.
"""
import ctypes
import ctypes.util
import os

__all__ = ["lib", "CorralError", "Options", "Task", "Result", "Summary", "Error", "Provider",
           "ProviderStep", "CGROUPS",
           "Output", "Sandbox", "FN_T", "UNLIMITED", "OUTCOMES", "parse_size",
           "parse_duration", "format_size", "fork_hook_addresses"]

UNLIMITED = 2**64 - 1

FD_CAPTURE = -2
FD_NULL = -1

# corral_outcome_t, in enum order
OUTCOMES = ("ok", "exit", "oom", "oom_outside", "subprocess_oom", "timeout",
            "signal", "spawn_error", "cancelled", "aborted", "lost")
OUTCOME_COUNT = len(OUTCOMES)

HALTS = {"ordered": 0, "now": 1, "never": 2}

ECHILD = 10


class CorralError(OSError):
    """libcorral reported an error (environment, cgroups, usage)."""


class Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 512)]

    def raise_(self, what, rc=None):
        code = self.code or (-rc if rc and rc < 0 else 0)
        msg = self.msg.decode("utf-8", "replace") or os.strerror(code)
        raise CorralError(code, f"{what}: {msg}")


class Sandbox(ctypes.Structure):
    _fields_ = [
        ("seccomp", ctypes.c_int),
        ("seccomp_file", ctypes.c_char_p),
        ("allow_ptrace", ctypes.c_bool),
        ("no_new_privs", ctypes.c_bool),
        ("cgroup_ns", ctypes.c_bool),
        ("no_network", ctypes.c_bool),
        ("user", ctypes.c_char_p),
        ("core_dumps", ctypes.c_bool),
        ("allow_io_uring", ctypes.c_bool),
        ("pid_ns", ctypes.c_bool),
    ]


class Options(ctypes.Structure):
    _fields_ = [
        ("jobs", ctypes.c_uint),
        ("memory_max", ctypes.c_uint64),
        ("swap_max", ctypes.c_uint64),
        ("pids_max", ctypes.c_uint64),
        ("cpus", ctypes.c_double),
        ("timeout_ns", ctypes.c_uint64),
        ("kill_grace_ns", ctypes.c_uint64),
        ("halt", ctypes.c_int),
        ("retries", ctypes.c_uint),
        ("retry_on", ctypes.c_uint),
        ("memory_growth", ctypes.c_double),
        ("memory_ceiling", ctypes.c_uint64),
        ("memory_budget", ctypes.c_uint64),
        ("oom_group", ctypes.c_bool),
        ("allow_subprocess_oom", ctypes.c_bool),
        ("foreground", ctypes.c_bool),
        ("no_cgroups", ctypes.c_bool),
        ("cgroup_parent", ctypes.c_char_p),
        ("cgroupfs", ctypes.c_char_p),
        ("capture_max", ctypes.c_size_t),
        ("fn_result_max", ctypes.c_size_t),
        ("tmpdir", ctypes.c_char_p),
        ("sandbox", Sandbox),
        ("before_fork", ctypes.c_void_p),
        ("after_fork_parent", ctypes.c_void_p),
        ("after_fork_child", ctypes.c_void_p),
        ("timeline", ctypes.c_bool),
        ("cgroups", ctypes.c_int),
        ("no_local", ctypes.c_bool),
        ("lost_retries", ctypes.c_uint),
        ("worker_timeout_ns", ctypes.c_uint64),
    ]


# int (*corral_fn_t)(void *arg, int out_fd)
FN_T = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)


class Task(ctypes.Structure):
    _fields_ = [
        ("argv", ctypes.POINTER(ctypes.c_char_p)),
        ("envp", ctypes.POINTER(ctypes.c_char_p)),
        ("cwd", ctypes.c_char_p),
        ("stdin_fd", ctypes.c_int),
        ("stdout_fd", ctypes.c_int),
        ("stderr_fd", ctypes.c_int),
        ("fn", ctypes.c_void_p),
        ("fn_arg", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
        ("memory_max", ctypes.c_uint64),
        ("seq", ctypes.c_uint64),
    ]


class Output(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("data_len", ctypes.c_size_t),
        ("fd", ctypes.c_int),
        ("len", ctypes.c_uint64),
        ("lost", ctypes.c_uint64),
    ]

    def read(self):
        """All the bytes of this output (inline or from its spill file)."""
        if self.fd < 0:
            if not self.data or not self.data_len:
                return b""
            return ctypes.string_at(self.data, self.data_len)
        chunks, off, left = [], 0, self.len
        while left > 0:
            b = os.pread(self.fd, min(left, 1 << 24), off)
            if not b:
                break
            chunks.append(b)
            off += len(b)
            left -= len(b)
        return b"".join(chunks)


class Result(ctypes.Structure):
    _fields_ = [
        ("seq", ctypes.c_uint64),
        ("attempt", ctypes.c_uint),
        ("final", ctypes.c_bool),
        ("outcome", ctypes.c_int),
        ("exit_code", ctypes.c_int),
        ("signal", ctypes.c_int),
        ("status", ctypes.c_int),
        ("pid", ctypes.c_int),
        ("oom_kills", ctypes.c_uint64),
        ("own_limit_hit", ctypes.c_bool),
        ("memory_max", ctypes.c_uint64),
        ("memory_peak", ctypes.c_uint64),
        ("pids_limit_hit", ctypes.c_bool),
        ("seccomp_kill", ctypes.c_bool),
        ("spawn_errno", ctypes.c_int),
        ("spawn_step", ctypes.c_char_p),
        ("command", ctypes.c_char * 256),
        ("start_time", ctypes.c_double),
        ("wall_s", ctypes.c_double),
        ("user_s", ctypes.c_double),
        ("sys_s", ctypes.c_double),
        ("data", ctypes.c_void_p),
        ("out", Output),
        ("err", Output),
        ("fn_result", Output),
        ("sentence", ctypes.c_char * 320),
        ("priv_", ctypes.c_void_p),
        ("memory_stall_some", ctypes.c_double),
        ("memory_stall_full", ctypes.c_double),
        ("oom_victims", ctypes.c_void_p),
        ("n_oom_victims", ctypes.c_uint),
        ("oom_memcg", ctypes.c_char * 256),
        ("timeline", ctypes.c_void_p),
        ("n_timeline", ctypes.c_uint),
        ("timeline_peak", ctypes.c_uint),
        ("host", ctypes.c_char * 64),
    ]


# corral_cgroups_t, in enum order
CGROUPS = ("auto", "own", "systemd", "slurm", "observe", "off")
PROVIDER_STEPS = 6


class ProviderStep(ctypes.Structure):
    _fields_ = [("provider", ctypes.c_int), ("code", ctypes.c_int), ("why", ctypes.c_char * 256)]


class Provider(ctypes.Structure):
    """corral_provider_t: where the task cgroups came from."""
    _fields_ = [
        ("used", ctypes.c_int),
        ("limits", ctypes.c_bool),
        ("cgroup", ctypes.c_char * 512),
        ("unit", ctypes.c_char * 128),
        ("platform", ctypes.c_char * 64),
        ("found", ctypes.c_char * 512),
        ("warning", ctypes.c_char * 320),
        ("fixes", ctypes.c_char * 1024),
        ("n_steps", ctypes.c_uint),
        ("steps", ProviderStep * PROVIDER_STEPS),
    ]

    def text(self, verbose=False):
        n = lib.corral_provider_text(ctypes.byref(self), verbose, None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        lib.corral_provider_text(ctypes.byref(self), verbose, buf, n + 1)
        return buf.value.decode("utf-8", "replace")


class Summary(ctypes.Structure):
    _fields_ = [
        ("tasks", ctypes.c_uint64),
        ("attempts", ctypes.c_uint64),
        ("count", ctypes.c_uint64 * OUTCOME_COUNT),
        ("verdict_seq", ctypes.c_uint64),
        ("verdict", ctypes.c_int),
        ("exit_code", ctypes.c_int),
        ("aborted", ctypes.c_bool),
        ("sentence", ctypes.c_char * 320),
        ("provider", Provider),
        ("workers", ctypes.c_uint),
        ("workers_lost", ctypes.c_uint),
    ]


_MIRRORS = {"options": Options, "task": Task, "result": Result, "summary": Summary,
            "error": Error, "output": Output, "sandbox": Sandbox,
            "provider": Provider}


def _find_library():
    env = os.environ.get("CORRAL_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "libcorral.so"),
                 os.path.join(here, "libcorral.so.0")):
        if os.path.exists(cand):
            return cand
    found = ctypes.util.find_library("corral")
    return found or "libcorral.so.0"


def _load():
    path = _find_library()
    try:
        lib = ctypes.PyDLL(path)
    except OSError as e:
        raise ImportError(
            f"corral: cannot load libcorral ({path}): {e}. Build it (cmake && make) "
            f"and set CORRAL_LIB=/path/to/libcorral.so, or install it where the "
            f"dynamic linker finds it.") from e

    def fn(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)
        return f

    P = ctypes.POINTER
    fn("corral_version", ctypes.c_char_p)
    fn("corral_struct_size", ctypes.c_size_t, ctypes.c_char_p)
    fn("corral_parse_size", ctypes.c_int, ctypes.c_char_p, P(ctypes.c_uint64))
    fn("corral_parse_duration", ctypes.c_int, ctypes.c_char_p, P(ctypes.c_uint64))
    fn("corral_format_size", ctypes.c_char_p, ctypes.c_uint64, ctypes.c_char_p,
       ctypes.c_size_t)
    fn("corral_parse_retry_on", ctypes.c_int, ctypes.c_char_p, P(ctypes.c_uint))
    fn("corral_options_init", None, P(Options))
    fn("corral_task_init", None, P(Task))
    fn("corral_result_release", None, P(Result))
    fn("corral_executor_new", ctypes.c_int, P(Options), P(ctypes.c_void_p), P(Error))
    fn("corral_submit", ctypes.c_int64, ctypes.c_void_p, P(Task), P(Error))
    fn("corral_close", None, ctypes.c_void_p)
    fn("corral_next", ctypes.c_int, ctypes.c_void_p, P(Result), ctypes.c_int, P(Error))
    fn("corral_fd", ctypes.c_int, ctypes.c_void_p)
    fn("corral_pending", ctypes.c_uint64, ctypes.c_void_p)
    fn("corral_running", ctypes.c_uint, ctypes.c_void_p)
    fn("corral_abort", None, ctypes.c_void_p)
    fn("corral_halted", ctypes.c_bool, ctypes.c_void_p)
    fn("corral_summary", None, ctypes.c_void_p, P(Summary))
    fn("corral_executor_free", None, ctypes.c_void_p)
    fn("corral_check", ctypes.c_int, P(Options), ctypes.c_bool, ctypes.c_int, P(Error))
    fn("corral_parse_cgroups", ctypes.c_int, ctypes.c_char_p, P(ctypes.c_int))
    fn("corral_provider_plan", ctypes.c_int, P(Options), ctypes.c_void_p, P(Error))
    fn("corral_provider_text", ctypes.c_int, ctypes.c_void_p, ctypes.c_bool, ctypes.c_char_p,
       ctypes.c_size_t)
    fn("corral_signal", ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int)
    fn("corral_task_memory", ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64,
       P(ctypes.c_uint64), P(ctypes.c_uint64), ctypes.c_bool)
    return lib, path


lib, lib_path = _load()


def _check_layout():
    bad = []
    for name, mirror in _MIRRORS.items():
        size = lib.corral_struct_size(name.encode())
        if size != ctypes.sizeof(mirror):
            bad.append(f"{name}: library {size} bytes, binding {ctypes.sizeof(mirror)}")
    if bad:
        version = lib.corral_version().decode()
        raise ImportError(
            f"corral: the Python binding does not match libcorral {version} at "
            f"{lib_path} (struct sizes differ: {'; '.join(bad)}). Use the corral "
            f"package from the same source tree as the library.")


_check_layout()

version = lib.corral_version().decode()


def parse_size(value, what="size"):
    """int bytes, None (unlimited) or a string such as "512M", "1.5G", "max"."""
    if value is None:
        return UNLIMITED
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int or a string like '512M', not bool")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{what} must be positive, got {value}")
        return value
    if isinstance(value, str):
        out = ctypes.c_uint64()
        if lib.corral_parse_size(value.encode(), ctypes.byref(out)) < 0:
            raise ValueError(f"invalid {what} {value!r} (examples: 512M, 1.5G, 2048, max)")
        return out.value
    raise TypeError(f"{what} must be an int (bytes) or a string like '512M', "
                    f"not {type(value).__name__}")


def parse_duration(value, what="duration"):
    """seconds (int/float), None (unlimited) or a string such as "30s", "5m"; -> ns."""
    if value is None:
        return UNLIMITED
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number of seconds or a string like '30s'")
    if isinstance(value, (int, float)):
        if not value > 0:
            raise ValueError(f"{what} must be positive, got {value}")
        return max(1, int(value * 1e9))
    if isinstance(value, str):
        out = ctypes.c_uint64()
        if lib.corral_parse_duration(value.encode(), ctypes.byref(out)) < 0:
            raise ValueError(f"invalid {what} {value!r} (examples: 30, 1.5s, 250ms, 5m)")
        return out.value
    raise TypeError(f"{what} must be a number of seconds or a string like '30s', "
                    f"not {type(value).__name__}")


def format_size(n):
    buf = ctypes.create_string_buffer(32)
    return lib.corral_format_size(n, buf, 32).decode()


def fork_hook_addresses():
    """Addresses of PyOS_BeforeFork, PyOS_AfterFork_Parent, PyOS_AfterFork_Child."""
    api = ctypes.pythonapi
    return tuple(ctypes.cast(getattr(api, n), ctypes.c_void_p).value
                 for n in ("PyOS_BeforeFork", "PyOS_AfterFork_Parent",
                           "PyOS_AfterFork_Child"))
