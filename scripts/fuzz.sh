#!/usr/bin/env bash
# scripts/fuzz.sh - run every libFuzzer harness of tests/fuzz for a while.
#
#   scripts/fuzz.sh [--update-corpus] [--only NAME]... BUILD_DIR [SECONDS]
#
# BUILD_DIR is a build with -DCORRAL_FUZZ=ON (CC=clang); SECONDS (default 10)
# is the time per harness (-max_total_time). Each harness fuzzes a copy of
# its seed corpus tests/fuzz/corpus/NAME/ in a temp dir, so the repository is
# never written to; with --update-corpus the new inputs are merged back
# (-merge=1: only those that add coverage) into tests/fuzz/corpus/NAME/.
# tests/fuzz/NAME.dict is used as a dictionary when it exists.
#
# Prints executions and crashes per harness in a table. Exits 1 when any
# harness crashed, leaked, timed out or ran out of memory, and prints the
# reproducer (kept in BUILD_DIR/fuzz-artifacts/) and the command to replay it.
# Logs: BUILD_DIR/fuzz-logs/NAME.log. Environment: FUZZ_TIMEOUT (seconds per
# input, default 10), FUZZ_RSS_MB (default 2048).
set -uo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)

usage() { sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }
update=0
only=()
while [ $# -gt 0 ]; do
	case $1 in
	--update-corpus) update=1; shift ;;
	--only) only+=("$2"); shift 2 ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "fuzz.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || { usage >&2; exit 2; }
build=$(cd -- "$1" 2>/dev/null && pwd) || { echo "fuzz.sh: no build dir '$1'" >&2; exit 2; }
seconds=${2:-10}
case $seconds in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number" >&2; exit 2 ;; esac

shopt -s nullglob
harnesses=()
for bin in "$build"/tests/fuzz/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	name=${bin##*/fuzz_}
	if [ ${#only[@]} -gt 0 ]; then
		keep=0
		for o in "${only[@]}"; do [ "$o" = "$name" ] && keep=1; done
		[ $keep -eq 1 ] || continue
	fi
	harnesses+=("$name")
done
if [ ${#harnesses[@]} -eq 0 ]; then
	echo "fuzz.sh: no harnesses in $build/tests/fuzz (configure with -DCORRAL_FUZZ=ON)" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/corral-fuzz.XXXXXX") || exit 1
child=
cleanup() {
	[ -n "$child" ] && kill "$child" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

artifacts=$build/fuzz-artifacts
logs=$build/fuzz-logs
mkdir -p "$artifacts" "$logs"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rows=()
failures=()
for name in "${harnesses[@]}"; do
	bin=$build/tests/fuzz/fuzz_$name
	seeds=$root/tests/fuzz/corpus/$name
	corpus=$tmp/corpus/$name
	mkdir -p "$corpus" "$artifacts/$name"
	[ -d "$seeds" ] && cp -R "$seeds"/. "$corpus"/
	nseeds=$(find "$corpus" -type f | wc -l)
	dict=()
	[ -f "$root/tests/fuzz/$name.dict" ] && dict=(-dict="$root/tests/fuzz/$name.dict")
	log=$logs/$name.log
	before=$(find "$artifacts/$name" -type f | wc -l)

	printf 'fuzz %-12s %4ss, %3d seeds ... ' "$name" "$seconds" "$nseeds"
	# -timeout: one input; -max_total_time: the whole run.
	"$bin" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" \
		-rss_limit_mb="${FUZZ_RSS_MB:-2048}" -print_final_stats=1 \
		-artifact_prefix="$artifacts/$name/" "${dict[@]}" "$corpus" >"$log" 2>&1 &
	child=$!
	{ wait "$child"; } 2>/dev/null # no "Aborted" job notice: the log has it
	rc=$?
	child=

	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
	[ -n "$execs" ] || execs=0
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
	ncorpus=$(find "$corpus" -type f | wc -l)
	after=$(find "$artifacts/$name" -type f | wc -l)
	crashes=$((after - before))
	# The artifact this run wrote (libFuzzer names it in the log).
	repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	if [ $rc -ne 0 ] && [ $crashes -eq 0 ]; then
		crashes=1 # died without an artifact (e.g. killed)
	fi
	if [ $rc -eq 0 ] && [ $crashes -eq 0 ]; then
		status=ok
		echo "ok"
	else
		kind=$(grep -oE '(ERROR|WARNING): (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)[^(]*' "$log" | head -n 1)
		[ -n "$kind" ] || kind=$(grep -m1 -E 'check failed|runtime error' "$log")
		status=FAILED
		echo "FAILED (exit $rc)"
		failures+=("$name|$rc|${repro:-?}|$kind")
	fi
	rows+=("$(printf '%-12s %-7s %12s %8s %8s %8s' "$name" "$status" "$execs" "$crashes" "${cov:-?}" "$ncorpus")")

	if [ $update -eq 1 ] && [ $rc -eq 0 ]; then
		mkdir -p "$seeds"
		"$bin" -merge=1 "${dict[@]}" "$seeds" "$corpus" >>"$log" 2>&1 ||
			echo "fuzz.sh: merging the corpus of $name failed (see $log)" >&2
	fi
done

echo
printf '%-12s %-7s %12s %8s %8s %8s\n' harness status executions crashes coverage corpus
printf '%s\n' "${rows[@]}"

if [ ${#failures[@]} -gt 0 ]; then
	echo
	for f in "${failures[@]}"; do
		IFS='|' read -r name rc repro kind <<<"$f"
		echo "FAILED: fuzz_$name (exit $rc): $kind"
		echo "  reproducer: $repro"
		echo "  replay:     $build/tests/fuzz/fuzz_$name $repro"
		echo "  log:        $logs/$name.log"
		grep -m 12 -E 'check failed|^  |ERROR:|SUMMARY:|runtime error|#[0-9]+ 0x' "$logs/$name.log" |
			head -n 16 | sed 's/^/  | /'
	done
	exit 1
fi
exit 0
