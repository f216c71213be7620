#!/usr/bin/env bash
# scripts/soak.sh - randomized soak of the corral command (scripts/soak.py).
#
#   scripts/soak.sh [--tasks N] [--kill-corral N] [--seed S] [--vm] [soak.py options]
#
# Runs N tasks in random batches whose outcomes the harness induces and
# predicts (exit codes, crashes, own and subprocess OOMs, external kills,
# timeouts, fork bombs, daemons, early-closed stdout, megabytes of output,
# spawn errors; random -j, --halt, retries), then SIGKILLs corral in
# --kill-corral batches and checks that the watchdog (or the next start)
# leaves nothing behind. Prints the figures: tasks run, confusion matrix
# (induced x observed), mismatches, hangs, leaked processes and cgroups.
# Exit status 0 only when all of them are 0.
#
# Defaults: the long run, --tasks 10000 --kill-corral 200 (30 with --vm). The
# CI lane (scripts/test.sh --lane soak) runs --tasks 1000 --kill-corral 30.
#
#   --vm        run the same inside the pure cgroup v2 qemu VM
#               (scripts/vm-test.sh; TCG, so time bounds are scaled x8)
#   --seed S    replay a run (each batch also logs its own seed)
#
# Builds build/ first when build/corral or the payload is missing. Needs root.
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

tasks=10000
kill_corral=
vm=0
pass=()
while [ $# -gt 0 ]; do
	case $1 in
	--tasks) tasks=$2; shift 2 ;;
	--kill-corral) kill_corral=$2; shift 2 ;;
	--vm) vm=1; shift ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) pass+=("$1"); shift ;;
	esac
done

if [ ! -x build/corral ] || [ ! -x build/tests/corral-payload ]; then
	scripts/install-deps.sh build
	cmake -S . -B build -DCORRAL_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	make -C build -j"$(nproc)" >/dev/null
fi
export CORRAL_BIN=${CORRAL_BIN:-$root/build/corral}
export CORRAL_PAYLOAD=${CORRAL_PAYLOAD:-$root/build/tests/corral-payload}

# TCG is ~10x slower: fewer SIGKILLs of corral by default in the VM.
[ -n "$kill_corral" ] || { [ $vm -eq 1 ] && kill_corral=30 || kill_corral=200; }

if [ $vm -eq 0 ]; then
	exec python3 scripts/soak.py --tasks "$tasks" --kill-corral "$kill_corral" "${pass[@]}"
fi
# In the VM: host / is read-only, /tmp is writable (RAM); TCG is ~10x slower,
# so give it memory and time. The figures come back on stdout.
exec scripts/vm-test.sh --mem 3072 --timeout "${SOAK_VM_TIMEOUT:-7200}" -- \
	python3 scripts/soak.py --tasks "$tasks" --kill-corral "$kill_corral" --workdir /tmp "${pass[@]}"
