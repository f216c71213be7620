"""Shared set-up of the python lane: skip (exit 77) unless this host can run
tasks with memory limits, and helpers to check that nothing is left behind.

Environment (set by ctest): CORRAL_LIB, PYTHONPATH=<repo>/src/python,
CORRAL_BIN (optional: `corral check` decides), CORRAL_PAYLOAD (unused here).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CGROUPFS = "/sys/fs/cgroup"


def time_scale():
    """How much slower than a normal host we are: the VM lane runs qemu TCG
    (the same convention as tests/cli/clitest.py)."""
    env = os.environ.get("CORRAL_TEST_TIME_SCALE")
    if env:
        return float(env)
    try:
        with open("/proc/cpuinfo") as f:
            if "QEMU TCG" in f.read():
                return 10.0
    except OSError:
        pass
    return 1.0


def skip(why):
    print(f"SKIPPED: {why}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(77)


def require_host():
    """Exit 77 unless corral can limit memory here (root, a delegated cgroup,
    or a systemd user manager that gives corral a delegated scope)."""
    if os.environ.get("CORRAL_TEST_HOST_CHECKED") == "tree":
        # A worker of the pool under test that imports the test module (an
        # exec'd interpreter unpickling test_x.fn): the test process checked
        # already. Checking again here would ask `corral check` from inside
        # a task's cgroup, which is not the question.
        return
    if sys.platform != "linux":
        skip("corral needs Linux")
    try:
        import corral  # noqa: F401
    except ImportError as e:
        if os.environ.get("CORRAL_EXPECT_INSTALLED"):
            raise
        skip(f"cannot import corral: {e}")
    if os.environ.get("CORRAL_EXPECT_INSTALLED"):
        # scripts/pip-test.sh: the suite must run against the installed
        # package, never the source tree.
        src = os.path.join(os.path.dirname(os.path.dirname(HERE)), "src")
        where = os.path.dirname(os.path.abspath(corral.__file__))
        if where.startswith(src) or os.environ.get("CORRAL_LIB") or \
                corral._lib.lib_path != os.path.join(where, "libcorral.so"):
            print(f"corral_test_support: expected the installed package, got {where} "
                  f"({corral._lib.lib_path})", file=sys.stderr)
            sys.exit(1)
    binpath = os.environ.get("CORRAL_BIN")
    if binpath and os.access(binpath, os.X_OK):
        p = subprocess.run([binpath, "check"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        if p.returncode != 0:
            skip(f"`corral check` says memory limits are not possible here "
                 f"(exit {p.returncode}): {p.stdout.decode(errors='replace').strip()}")
    else:
        ok, text = corral.check()
        if not ok:
            skip(f"corral.check(): memory limits are not possible here: {text.strip()}")
    os.environ["CORRAL_TEST_HOST_CHECKED"] = "tree"


def own_batch_cgroups(pid=None):
    """Batch cgroups of process pid (default: this one) that still exist. The
    systemd provider's scope (corral-<pid>-<nonce>.scope) is not one: it holds
    the process itself for as long as it lives."""
    prefix = f"corral-{pid or os.getpid()}-"
    found = []
    for root, dirs, _ in os.walk(CGROUPFS):
        for d in dirs:
            if d.startswith(prefix) and not d.endswith(".scope"):
                found.append(os.path.join(root, d))
        # Do not descend into other programs' deep trees needlessly.
        dirs[:] = [d for d in dirs if not d.startswith("corral-") or d.startswith(prefix)]
    return found


def child_env():
    env = dict(os.environ)
    if env.get("CORRAL_EXPECT_INSTALLED"):
        return env  # children import the installed package too
    src = os.path.join(os.path.dirname(os.path.dirname(HERE)), "src", "python")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def own_memory_cgroup():
    """(mode, directory of this process's memory cgroup) or (None, None)."""
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    for line in lines:
        hid, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(","):
            return "v1", os.path.join(CGROUPFS, "memory", path.lstrip("/"))
    for line in lines:
        hid, ctrls, path = line.split(":", 2)
        if hid == "0" and os.path.exists(os.path.join(CGROUPFS, "cgroup.controllers")):
            return "v2", os.path.join(CGROUPFS, path.lstrip("/"))
    return None, None
