#!/usr/bin/env bash
# scripts/demo.sh - the seed story with corral, on any Debian 12 host with
# cgroups (v1 memory or pure v2): installs what is missing, builds, then runs a
# batch of three tasks where task 2 needs far more memory than its 64 MiB limit.
#
#  1. default ordered halt: task 2 is OOM-killed; the batch fails
#     deterministically, attributed to task 2, exit status 137;
#  2. --retries 1 --memory-growth 4: task 2 is retried with 256 MiB and the
#     batch succeeds.
# The JSON records of both runs are printed.
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh build
if [ ! -x build/corral ] || [ -n "$(find src include CMakeLists.txt -newer build/corral 2>/dev/null | head -n1)" ]; then
	cmake -S . -B build >/dev/null
	make -C build -j"$(nproc)" corral >/dev/null
fi
corral=build/corral
out=$(mktemp -d "${TMPDIR:-/tmp}/corral-demo.XXXXXX")
trap 'rm -rf "$out"' EXIT

echo "### corral check"
$corral check || true
echo
echo "### 1. corral run -m 64M -j 3 --report run1.jsonl -- scripts/demo-task.sh ::: 1 2 3"
set +e
$corral run -m 64M -j 3 --report "$out/run1.jsonl" -- scripts/demo-task.sh ::: 1 2 3
rc=$?
set -e
echo "### exit status: $rc (137 = task 2 was OOM-killed)"
echo "### records:"
cat "$out/run1.jsonl"
echo
echo "### 2. the same with --retries 1 --memory-growth 4"
set +e
$corral run -m 64M -j 3 --retries 1 --memory-growth 4 --report "$out/run2.jsonl" -- \
	scripts/demo-task.sh ::: 1 2 3
rc2=$?
set -e
echo "### exit status: $rc2"
echo "### records:"
cat "$out/run2.jsonl"
[ "$rc" -eq 137 ] && [ "$rc2" -eq 0 ] || { echo "demo: unexpected exit statuses $rc / $rc2" >&2; exit 1; }
echo
echo "demo: OK - task 2 was attributed and the retry with more memory succeeded"
