#!/bin/bash
# tests/vm/asan-v2.sh BUILD_DIR - the sanitizer build (-DCORRAL_SANITIZE=ON)
# on pure cgroup v2, as root: the spawner's v2 path (children born in their
# task cgroups by clone3 CLONE_INTO_CGROUP, under ASan a fork-style child
# without CLONE_VM) that the sanitize lane's host, on cgroup v1, never takes.
# Run in the VM (scripts/vm-test.sh; the sanitize lane of scripts/test.sh).
#
#  1. 200 tasks at -j 2 under the default sandbox: every one ran, in a cgroup
#     namespace rooted at its task cgroup, and corral exited 0 with no
#     sanitizer report;
#  2. the spawner did clone its children with CLONE_INTO_CGROUP (strace -f),
#     so 1 tested that path, not the cgroup.procs fallback;
#  3. a task's clone3 gets ENOSYS (the children's own filter), an OOM at the
#     task's limit is "oom", and the verdict is the first failing task.
# Prints one line per check; exits 1 if any failed, 77 if it cannot run.
set -uo pipefail
build=$(cd "${1:?usage: asan-v2.sh BUILD_DIR}" && pwd)
corral=$build/corral
payload=$build/tests/corral-payload
[ "$(id -u)" = 0 ] || { echo "SKIPPED: needs root"; exit 77; }
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || { echo "SKIPPED: needs cgroup v2"; exit 77; }
[ -x "$corral" ] && [ -x "$payload" ] || { echo "SKIPPED: no corral or payload in $build"; exit 77; }
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:disable_coredump=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

failed=0
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failed=1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. Many tasks through the spawners.
seq 200 | "$corral" run -j 2 -m 64M "$payload" cgroup > "$tmp/out" 2> "$tmp/err"
rc=$?
cgs=$(grep -c '^0::/' "$tmp/out")
if [ $rc = 0 ] && [ "$cgs" = 200 ] && ! grep -q Sanitizer "$tmp/err"; then
	pass "200 tasks at -j 2: exit 0, 200 task cgroup lines, no sanitizer report"
else
	fail "200 tasks at -j 2: exit $rc, $cgs task cgroup lines; stderr: $(head -c 600 "$tmp/err")"
fi
# Each task saw itself at the root of a cgroup namespace (its task cgroup).
if grep -vqx '0::/' "$tmp/out"; then
	fail "a task saw its cgroup as $(grep -vx '0::/' "$tmp/out" | head -1), not 0::/"
else
	pass "every task saw 0::/ (a cgroup namespace rooted at its task cgroup)"
fi

# 2. The path taken: clone3 with CLONE_INTO_CGROUP, answered by a pid.
if command -v strace > /dev/null; then
	# LeakSanitizer cannot stop the world under a tracer: leaks are
	# checked in 1 and 3. One file per process (-ff): at -j 1 a warm
	# child's clone3 is still pending (CLONE_VFORK) while others run, and
	# a shared file would split its line ("<unfinished ...>").
	seq 3 | ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		strace -ff -qq -e trace=clone3 -o "$tmp/strace" "$corral" run -j 1 -m 64M true 2> "$tmp/err"
	rc=$?
	cat "$tmp"/strace.* > "$tmp/strace"
	into=$(grep 'CLONE_INTO_CGROUP' "$tmp/strace" | grep -cE '= [0-9]+$')
	if [ $rc = 0 ] && [ "$into" -ge 3 ]; then
		pass "the spawner cloned $into children into their cgroups (clone3 CLONE_INTO_CGROUP)"
	else
		fail "clone3 CLONE_INTO_CGROUP answered by a pid $into times for 3 tasks (exit $rc): \
$(grep clone3 "$tmp/strace" | tail -3 | tr '\n' ' ')"
	fi
else
	echo "SKIPPED: strace is not installed: the clone3 path is not checked"
fi

# 3. What a task sees, and the outcomes.
out=$("$corral" run -m 64M "$payload" syscall clone3 ::: x 2> "$tmp/err")
if [ "$out" = ENOSYS ] && ! grep -q Sanitizer "$tmp/err"; then
	pass "a task's clone3 gets ENOSYS"
else
	fail "a task's clone3 gave '$out'; stderr: $(head -c 600 "$tmp/err")"
fi
printf "exec $payload %s\n" "exit 0" "alloc 200" "exit 3" "exit 0" |
	"$corral" run -j 2 -m 64M --report "$tmp/r.jsonl" > /dev/null 2> "$tmp/err"
rc=$?
oom=$(grep -c '"seq":2,.*"outcome":"oom"' "$tmp/r.jsonl")
verdict=$(grep -o '"verdict_seq":[0-9]*' "$tmp/r.jsonl")
if [ "$oom" -ge 1 ] && [ "$verdict" = '"verdict_seq":2' ] && [ $rc != 0 ] &&
	! grep -q Sanitizer "$tmp/err"; then
	pass "an allocation past -m 64M is oom, and the verdict is task 2 (exit $rc)"
else
	fail "oom records $oom, $verdict, exit $rc; stderr: $(head -c 600 "$tmp/err")"
fi
exit $failed
