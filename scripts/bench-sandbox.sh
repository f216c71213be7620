#!/bin/bash
# scripts/bench-sandbox.sh - the per-task cost of the sandbox: N trivial tasks
# (`true`) run by `corral run -j JOBS`, with and without the sandbox, in
# interleaved rounds (so that a busy machine hurts every mode alike). Prints,
# per mode, the median over the rounds of the wall time and of the CPU time
# (corral, its tasks and its watchdog: user + system) per task, and the ratio
# to --no-sandbox. Only ratios taken on the same machine mean anything (in the
# qemu VM, TCG makes everything ~10x slower).
#
#   scripts/bench-sandbox.sh [-n N] [-r ROUNDS] [-j JOBS] [-c CORRAL] [-v] [-- MODE...]
#
# -v prints every run (round, mode, wall s, CPU s) on stderr as it ends.
#
# MODE is a quoted set of corral options; default: "--no-sandbox" "" (the
# default sandbox) "--no-network". Needs root (the sandbox's namespaces).
set -euo pipefail

n=2000 rounds=3 jobs=2 verbose=0
corral=${CORRAL_BIN:-$(dirname "$0")/../build/corral}
while getopts "n:r:j:c:v" o; do
	case $o in
	n) n=$OPTARG ;;
	r) rounds=$OPTARG ;;
	j) jobs=$OPTARG ;;
	c) corral=$OPTARG ;;
	v) verbose=1 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
	set -- "--no-sandbox" "" "--no-network"
fi
[ -x "$corral" ] || {
	echo "bench-sandbox: no corral binary at $corral (-c PATH)" >&2
	exit 2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seq "$n" >"$tmp/input"

for ((r = 1; r <= rounds; r++)); do
	i=0
	for mode in "$@"; do
		i=$((i + 1))
		# shellcheck disable=SC2086 # MODE is a list of options
		/usr/bin/time -f "%e %U %S" -o "$tmp/t" "$corral" run -q -j "$jobs" -a "$tmp/input" $mode true
		read -r e u s <"$tmp/t"
		echo "$e $(echo "$u + $s" | bc)" >>"$tmp/m$i"
		if [ $verbose = 1 ]; then
			echo "round $r [${mode:-default sandbox}]: $e s wall, $(tail -n1 "$tmp/m$i" | cut -d' ' -f2) s CPU" >&2
		fi
	done
done

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
printf '%-22s %14s %14s %8s %8s\n' "mode (N=$n, -j $jobs)" "wall us/task" "cpu us/task" "wall x" "cpu x"
i=0
for mode in "$@"; do
	i=$((i + 1))
	w=$(cut -d' ' -f1 "$tmp/m$i" | median)
	c=$(cut -d' ' -f2 "$tmp/m$i" | median)
	if [ $i -eq 1 ]; then
		w1=$w c1=$c
	fi
	printf '%-22s %14.0f %14.0f %8.2f %8.2f\n' "${mode:-(default sandbox)}" \
		"$(echo "$w * 1000000 / $n" | bc -l)" "$(echo "$c * 1000000 / $n" | bc -l)" \
		"$(echo "$w / $w1" | bc -l)" "$(echo "$c / $c1" | bc -l)"
done
