#!/bin/bash
# tests/vm/containers.sh BUILD_DIR - corral inside real containers, and under
# a simulated Kubernetes parent cgroup. Run as root in the systemd VM
# (scripts/systemd-vm.sh; the systemd lane of scripts/test.sh): pure cgroup v2,
# systemd as PID 1, Debian's podman with crun. No registry is reachable: the
# container's root is a directory made here from the host's files (corral, the
# payload, their libraries, a static busybox), run with `podman run --rootfs`.
#
#  0. root on the systemd host, not alone in its cgroup (this script's
#     service): a transient scope from PID 1, gone when corral exits;
#  1. default podman settings: /sys/fs/cgroup is read-only in the container,
#     so corral runs in observe mode (and says so in one block); a task
#     OOM-killed by the container's own memory limit (--memory 192m) is
#     oom_outside, and the sentence names that limit;
#  2. podman --systemd=always (a writable cgroupfs): per-task limits as on a
#     host: -m 64M, a task that wants 200 MiB is oom at its own limit;
#  3. a simulated Kubernetes parent: a cgroup with memory.oom.group=1 and a
#     limit, corral in it as an unprivileged user: observe mode and the
#     warning that an OOM kill there takes corral too.
# Prints one line per check; exits 1 if any failed, 77 if it cannot run.
set -uo pipefail
build=$(cd "${1:?usage: containers.sh BUILD_DIR}" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIPPED: needs root"; exit 77; }
command -v podman > /dev/null || { echo "SKIPPED: podman is not installed"; exit 77; }
[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] || { echo "SKIPPED: needs cgroup v2"; exit 77; }

failed=0
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	failed=1
}
check() { # DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

work=$(mktemp -d /tmp/corral-containers.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
out=$work/out
mkdir -p "$root"/{bin,tmp,proc,sys,dev,run,etc,out} "$out"
chmod 1777 "$root/tmp" "$out"
cp /bin/busybox "$root/bin/busybox"
for t in sh cat grep sleep kill echo id; do ln -s busybox "$root/bin/$t"; done
cp "$build/corral" "$root/bin/corral"
payload=$build/tests/corral-payload
[ -x "$payload" ] || payload=$build/corral-payload
cp "$payload" "$root/bin/payload"
# Their libraries, at the same paths.
for lib in $(ldd "$build/corral" "$payload" | grep -o '/[^ ]*\.so[^ ]*' | sort -u); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"

# Storage of our own (nothing to pull; the host's may hold another driver's).
pod=(podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs --runtime crun
	--events-backend file --cgroup-manager systemd)
# A container of ours: no network, the rootfs above, the output dir at /out.
run_ctr() { # PODMAN-RUN-OPTIONS... -- COMMAND...
	local opts=()
	while [ "$1" != -- ]; do opts+=("$1") && shift; done
	shift
	"${pod[@]}" run --rm --network none --rootfs -v "$out:/out" "${opts[@]}" "$root" "$@"
}
record() { # REPORT SEQ KEY: the value of KEY in the final record of SEQ
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("final") and r.get("seq") == int(sys.argv[2]):
        print(r[sys.argv[3]])' "$@"
}
summary() { # REPORT KEY.SUBKEY
	python3 -c 'import json,sys
s = [json.loads(l) for l in open(sys.argv[1])][-1]["summary"]
for k in sys.argv[2].split("."):
    s = s[k]
print(s)' "$@"
}

echo "== podman $("${pod[@]}" --version | cut -d' ' -f3), crun $(crun --version | head -n1 | cut -d' ' -f3)"

# 0. Root on a systemd host, sharing its cgroup with this script: own cannot
# enable memory there, so PID 1 gives corral a scope.
"$build/corral" run -v -m 64M --halt never --report "$out/r0.jsonl" sh -c "exec $payload {}" \
	::: 'exit 0' 'alloc 200' > "$out/stdout0" 2> "$out/stderr0"
rc=$?
sed 's/^/    | /' "$out/stderr0"
check "root on a systemd host: corral exits 137" [ "$rc" = 137 ]
check "root on a systemd host: cgroups from a scope of PID 1" \
	grep -q 'cgroups from systemd.*from the system manager\|from the system manager' "$out/stderr0"
check "root on a systemd host: task 2 oom at its own limit" [ "$(record "$out/r0.jsonl" 2 outcome)" = oom ]
unit=$(summary "$out/r0.jsonl" provider.unit)
gone() { ! systemctl list-units --all --no-legend --plain "$unit" | grep -q .; }
for _ in $(seq 100); do gone && break; sleep 0.1; done
check "root on a systemd host: the scope $unit is gone after corral exits" gone

# 1. Default settings: read-only cgroupfs -> observe mode.
rm -f "$out"/*
run_ctr --memory 192m --memory-swap 192m -- /bin/corral run -j 2 --halt never \
	--report /out/r1.jsonl sh -c 'exec /bin/payload {}' ::: 'exit 0' 'alloc 400' \
	> "$out/stdout1" 2> "$out/stderr1"
rc=$?
sed 's/^/    | /' "$out/stderr1"
check "default podman: corral exits 137 (the OOM-killed task is the verdict)" [ "$rc" = 137 ]
check "default podman: provider observe" [ "$(summary "$out/r1.jsonl" provider.name)" = observe ]
check "default podman: one block says per-task limits are OFF, with the podman fix" \
	grep -q 'per-task limits OFF' "$out/stderr1"
check "default podman: ... and names podman --systemd=always" grep -q 'podman run --systemd=always' "$out/stderr1"
check "default podman: task 1 ok" [ "$(record "$out/r1.jsonl" 1 outcome)" = ok ]
check "default podman: task 2 oom_outside" [ "$(record "$out/r1.jsonl" 2 outcome)" = oom_outside ]
s2=$(record "$out/r1.jsonl" 2 sentence)
echo "    sentence: $s2"
check "default podman: the sentence names the container's limit (memory.max 192.0 MiB)" \
	grep -q 'memory.max 192.0 MiB of /' <<< "$s2"

# 2. --systemd=always: a writable cgroupfs -> per-task limits.
rm -f "$out"/*
run_ctr --systemd=always --memory 512m -- /bin/corral run -v -m 64M -j 2 --halt never \
	--report /out/r2.jsonl sh -c 'exec /bin/payload {}' ::: 'exit 0' 'alloc 200' \
	> "$out/stdout2" 2> "$out/stderr2"
rc=$?
sed 's/^/    | /' "$out/stderr2"
check "podman --systemd=always: corral exits 137" [ "$rc" = 137 ]
check "podman --systemd=always: provider own (a writable cgroupfs)" \
	[ "$(summary "$out/r2.jsonl" provider.name)" = own ]
check "podman --systemd=always: task 1 ok" [ "$(record "$out/r2.jsonl" 1 outcome)" = ok ]
check "podman --systemd=always: task 2 oom at its own 64M" [ "$(record "$out/r2.jsonl" 2 outcome)" = oom ]
check "podman --systemd=always: memory_max recorded" \
	[ "$(record "$out/r2.jsonl" 2 memory_max)" = $((64 << 20)) ]

# 3. A simulated Kubernetes parent: memory.oom.group=1, a limit, corral as
# an unprivileged user in it (not delegated: observe), no user manager.
k8s=/sys/fs/cgroup/corral-k8s-sim-$$
mkdir "$k8s"
echo 1 > "$k8s/memory.oom.group"
echo $((256 << 20)) > "$k8s/memory.max"
bash -c 'echo $$ > "$1/cgroup.procs" && exec setpriv --reuid 1001 --regid 1001 --clear-groups \
	env -u XDG_RUNTIME_DIR -u DBUS_SESSION_BUS_ADDRESS KUBERNETES_SERVICE_HOST=10.0.0.1 \
	"$2" run true ::: x' _ "$k8s" "$build/corral" > "$out/stdout3" 2> "$out/stderr3"
rc=$?
sed 's/^/    | /' "$out/stderr3"
check "k8s parent: corral runs (observe mode)" [ "$rc" = 0 ]
check "k8s parent: the block says observe mode" grep -q 'observe mode' "$out/stderr3"
check "k8s parent: the warning names memory.oom.group=1" grep -q 'memory.oom.group=1' "$out/stderr3"
check "k8s parent: the fixes are Kubernetes' (containerd cgroup_writable)" \
	grep -q 'cgroup_writable' "$out/stderr3"
rmdir "$k8s"

if [ $failed = 0 ]; then echo "containers: all checks passed"; else echo "containers: FAILED"; fi
exit $failed
