#!/usr/bin/env bash
# scripts/pip-test.sh - the Python package as users get it: built by pip from
# this tree (or a wheel given), installed into fresh venvs, and the Python
# suite run against the INSTALLED package (not src/python, no CORRAL_LIB).
#
#   scripts/pip-test.sh [--wheel FILE] [--out DIR] [--quick]
#
# Without --wheel: `pip wheel --no-deps ./src/python` builds the wheel once
# (libcorral compiled by CMake inside; no package index is needed: the build
# backend, src/python/build_backend/corral_build.py, requires nothing). Then:
#   1. a plain venv (python3 -m venv): pip install the wheel, import corral,
#      corral.check(), a pool run, with no environment variable set;
#   2. a venv with the system's site packages (Debian's joblib, scikit-learn,
#      numpy for the joblib tests): pip install the wheel, run every
#      tests/python/test_*.py with it (--quick: the pool tests only).
# --out DIR keeps the wheel there (the VM lane installs the host's wheel: a
# wheel built once installs on another machine with the same glibc).
# Uses Debian's python3 (/usr/bin/python3) and python3-venv.
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
py=/usr/bin/python3
wheel="" out="" quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--wheel) wheel=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	-h | --help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "pip-test: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/corral-pip.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset PYTHONPATH CORRAL_LIB

if [ -z "$wheel" ]; then
	"$py" -m venv "$tmp/build-venv"
	# A fresh clone's tree is read-only in the VM: copy what pip builds from.
	"$tmp/build-venv/bin/pip" wheel --no-deps --no-index -w "$tmp/wheels" "$root/src/python"
	wheel=$(ls "$tmp"/wheels/corral-*.whl)
	if [ -n "$out" ]; then mkdir -p "$out" && cp "$wheel" "$out/"; fi
fi
echo "pip-test: wheel $(basename "$wheel")"

"$py" -m venv "$tmp/plain"
"$tmp/plain/bin/pip" install --no-index "$wheel"
(cd "$tmp" && "$tmp/plain/bin/python" - <<'PY'
import os, corral
here = os.path.dirname(corral.__file__)
assert here.startswith(os.environ.get("TMPDIR", "/tmp")), here
assert corral._lib.lib_path == os.path.join(here, "libcorral.so"), corral._lib.lib_path
ok, text = corral.check()
print("pip-test: plain venv: import corral from", here, "- corral.check():", ok)
if ok and os.geteuid() == 0:
    with corral.Pool(2, memory="64M") as p:
        assert p.map(abs, range(-5, 0)) == [5, 4, 3, 2, 1]
    print("pip-test: plain venv: a pool ran")
PY
)

"$py" -m venv --system-site-packages "$tmp/full"
"$tmp/full/bin/pip" install --no-index "$wheel"
tests=$(cd "$root/tests/python" && ls test_*.py)
[ $quick -eq 1 ] && tests="test_pool_api.py test_pool_workers.py test_futures.py"
failed=0
for t in $tests; do
	rc=0
	(cd "$root/tests/python" && CORRAL_EXPECT_INSTALLED=1 PYTHONDONTWRITEBYTECODE=1 \
		"$tmp/full/bin/python" -m unittest "${t%.py}") >"$tmp/log" 2>&1 || rc=$?
	if [ $rc -eq 0 ]; then
		echo "pip-test: ${t%.py} ok ($(grep -E '^Ran ' "$tmp/log"))"
	elif [ $rc -eq 77 ]; then
		echo "pip-test: ${t%.py} SKIPPED: $(grep SKIPPED "$tmp/log" | head -1)"
		[ -n "${CORRAL_NO_SKIP:-}" ] && failed=1
	else
		echo "pip-test: ${t%.py} FAILED (exit $rc):"
		tail -n 30 "$tmp/log" | sed 's/^/   | /'
		failed=1
	fi
done
[ $failed -eq 0 ] && echo "pip-test: the installed package passed" || exit 1
