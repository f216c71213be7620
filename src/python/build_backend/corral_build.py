"""corral_build: the PEP 517 build backend of corral's Python package.

It needs only the standard library (no setuptools, no wheel, nothing from a
package index), plus CMake and a C compiler for libcorral:

  build_wheel   configure and build libcorral (the repository's root
                CMakeLists.txt, or csrc/ inside an sdist) in a temporary
                directory, copy libcorral.so into the package, bundle the
                shared libraries it needs besides glibc (libcgroup,
                libseccomp) in corral/.libs/ (found there through its RUNPATH
                $ORIGIN/.libs), and tag the wheel
                py3-none-manylinux_2_<N>_<arch>, N being the newest glibc
                symbol version those files use (objdump -T), or this
                machine's glibc without objdump.
  build_sdist   the Python sources plus every C source CMake needs, in csrc/.

Environment: CORRAL_BUILD_JOBS (default: CPUs), CORRAL_CMAKE (default cmake).
"""
import base64
import csv
import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

NAME = "corral"
VERSION = "0.1.0"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # src/python
# What an sdist carries of the C tree, relative to the repository's root.
C_TREE = ["CMakeLists.txt", "include", "src/lib", "src/cli", "src/cmake", "src/man",
          "src/completion", "LICENSE"]

METADATA = f"""Metadata-Version: 2.1
Name: {NAME}
Version: {VERSION}
Summary: multiprocessing.Pool, concurrent.futures and joblib over per-task cgroups: every worker death named, never a hang
Requires-Python: >=3.11
Classifier: Operating System :: POSIX :: Linux
Classifier: Programming Language :: Python :: 3
Classifier: Typing :: Typed
Provides-Extra: joblib
Requires-Dist: joblib ; extra == "joblib"
"""


def _c_root():
    for cand in (os.path.join(HERE, "csrc"), os.path.dirname(os.path.dirname(HERE))):
        if os.path.exists(os.path.join(cand, "CMakeLists.txt")) and \
                os.path.exists(os.path.join(cand, "include", "corral.h")):
            return cand
    raise RuntimeError("corral_build: the C sources of libcorral are not here (expected the "
                       "repository's root two levels up, or csrc/ in an sdist)")


def _run(cmd, **kw):
    print("corral_build:", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)


def _build_lib(tmp):
    root = _c_root()
    cmake = os.environ.get("CORRAL_CMAKE", "cmake")
    if shutil.which(cmake) is None:
        raise RuntimeError("corral_build: cmake not found (apt-get install cmake, or "
                           "scripts/install-deps.sh build)")
    bdir = os.path.join(tmp, "build")
    _run([cmake, "-S", root, "-B", bdir, "-DCORRAL_TESTS=OFF", "-DCORRAL_WERROR=OFF",
          "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DCMAKE_BUILD_RPATH=$ORIGIN/.libs",
          "-DCMAKE_SKIP_INSTALL_RPATH=ON"], stdout=sys.stderr)
    jobs = os.environ.get("CORRAL_BUILD_JOBS") or str(os.cpu_count() or 1)
    _run([cmake, "--build", bdir, "--target", "corral_shared", "-j", jobs], stdout=sys.stderr)
    lib = os.path.join(bdir, "libcorral.so")
    return os.path.realpath(lib)


def _needed_libs(lib):
    """Shared libraries lib needs that are not glibc's, as (soname, path)."""
    glibc = re.compile(r"^(libc|libm|libpthread|libdl|librt|ld-linux.*|linux-vdso)\.so")
    out = subprocess.run(["ldd", lib], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m and not glibc.match(m.group(1)):
            if m.group(2) == "not":
                raise RuntimeError(f"corral_build: {lib} needs {m.group(1)}, not found")
            libs.append((m.group(1), os.path.realpath(m.group(2))))
    return libs


def _glibc_tag(files):
    arch = platform.machine()
    newest = None
    if shutil.which("objdump"):
        for f in files:
            out = subprocess.run(["objdump", "-T", f], stdout=subprocess.PIPE,
                                 text=True).stdout
            for v in re.findall(r"GLIBC_(\d+)\.(\d+)", out):
                v = (int(v[0]), int(v[1]))
                newest = v if newest is None or v > newest else newest
    if newest is None:
        ver = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]  # "glibc 2.36"
        newest = tuple(int(x) for x in ver.split(".")[:2])
    # manylinux_2_17 is the oldest the format knows; older symbols are older glibcs.
    newest = max(newest, (2, 17))
    return f"py3-none-manylinux_{newest[0]}_{newest[1]}_{arch}"


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [path, f"sha256={digest}", str(len(data))]


def _py_files():
    pkg = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py") or name == "py.typed":
            yield os.path.join(pkg, name), f"{NAME}/{name}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def _dist_info():
    return f"{NAME}-{VERSION}.dist-info"


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, _dist_info())
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w") as f:
        f.write(METADATA)
    return _dist_info()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with tempfile.TemporaryDirectory(prefix="corral-build-") as tmp:
        lib = _build_lib(tmp)
        extra = _needed_libs(lib)
        tag = _glibc_tag([lib] + [p for _, p in extra])
        files = [(src, arc) for src, arc in _py_files()]
        files.append((lib, f"{NAME}/libcorral.so"))
        for soname, path in extra:
            files.append((path, f"{NAME}/.libs/{soname}"))
        name = f"{NAME}-{VERSION}-{tag}.whl"
        out = os.path.join(wheel_directory, name)
        records = []
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for src, arc in files:
                with open(src, "rb") as f:
                    data = f.read()
                info = zipfile.ZipInfo(arc, date_time=(2026, 1, 1, 0, 0, 0))
                info.external_attr = (0o755 if arc.endswith(".so") or ".so." in arc
                                      else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data)
                records.append(_record_line(arc, data))
            di = _dist_info()
            meta = {
                f"{di}/METADATA": METADATA,
                f"{di}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: corral_build {VERSION}\n"
                                f"Root-Is-Purelib: false\nTag: {tag}\n"),
                f"{di}/top_level.txt": f"{NAME}\n",
            }
            for arc, text in meta.items():
                data = text.encode()
                z.writestr(arc, data)
                records.append(_record_line(arc, data))
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            for r in records:
                w.writerow(r)
            w.writerow([f"{di}/RECORD", "", ""])
            z.writestr(f"{di}/RECORD", buf.getvalue())
        return name


def build_sdist(sdist_directory, config_settings=None):
    root = _c_root()
    base = f"{NAME}-{VERSION}"
    name = f"{base}.tar.gz"
    out = os.path.join(sdist_directory, name)

    def clean(ti):
        if "__pycache__" in ti.name or ti.name.endswith(".pyc"):
            return None
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as t:
        for rel in ("pyproject.toml", "build_backend", NAME):
            t.add(os.path.join(HERE, rel), f"{base}/{rel}", filter=clean)
        for rel in C_TREE:
            p = os.path.join(root, rel)
            if os.path.exists(p):
                t.add(p, f"{base}/csrc/{rel}", filter=clean)
        pkg_info = METADATA.encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(pkg_info)
        ti.mode = 0o644
        t.addfile(ti, io.BytesIO(pkg_info))
    return name
