#!/bin/bash
# scripts/vm-test.sh - run a command inside a throw-away qemu VM whose kernel
# has a pure cgroup v2 hierarchy (the host may be hybrid: memory on cgroup v1).
#
#   scripts/vm-test.sh [--rw DIR]... [--mem MiB] [--cpus N] [--timeout SEC] [--no-nsdelegate]
#                      [--] COMMAND [ARG...]
#   scripts/vm-test.sh --fetch-kernel
#   scripts/vm-test.sh --check
#   scripts/vm-test.sh --kernel-dir     (fetch if needed; print the cache entry)
#
# COMMAND runs as root in the VM's root cgroup, in the caller's cwd, with the
# caller's exported environment and umask, stdin /dev/null. The host's / is
# visible read-only (virtio-9p) under a RAM overlay, so writes are discarded at
# exit, except in the --rw directories, which are shared read-write at the same
# path. stdout/stderr are streamed back byte-exact (virtio-serial port -> FIFO ->
# cat). The exit status is COMMAND's; 125 means the VM itself failed (no boot,
# timeout, no exit status), and the guest console is then printed on stderr.
#
# Inside: cgroup2 at /sys/fs/cgroup (nsdelegate,memory_recursiveprot; without
# nsdelegate with --no-nsdelegate or VM_NSDELEGATE=0), every
# controller enabled in the root's cgroup.subtree_control, cgroup v1 disabled
# (cgroup_no_v1=all), no swap, fresh /proc /sys /dev /dev/pts /dev/shm /run,
# /tmp writable (overlay), lo up and no other network.
#
# Kernel: Debian's generic amd64 flavour (the cloud flavour has no 9p), the
# version linux-image-amd64 currently depends on, resolved with apt-cache at run
# time; VM_KERNEL names another meta-package of the archive instead (e.g.
# linux-image-6.12-amd64, Debian 12's 6.12 from bookworm-security, for what
# needs a newer kernel than bookworm's 6.1). Its -unsigned package is downloaded once with apt-get download into the
# cache, the XZ bzImage is decompressed into an ELF vmlinux (booted through its
# PVH entry: saves ~3 s of in-guest decompression under TCG), and the modules
# needed are kept. Cache: ${CORRAL_VM_CACHE:-${XDG_CACHE_HOME:-~/.cache}/corral-vm}/<kver>/.
#
# Only TCG is used (-accel tcg -cpu max): /dev/kvm on the development machine is
# a software nested-virtualisation module that crashes guests.
#
# Environment: VM_MEM (MiB, 1024), VM_CPUS (2), VM_TIMEOUT (s, 1800, whole run),
# VM_BOOT_TIMEOUT (s, 120, until the guest's init is up), VM_KERNEL (the kernel's
# meta-package, linux-image-amd64), VM_DEBUG=1 (full
# kernel log, and print the guest console after every run), VM_APPEND (extra
# kernel command line), VM_NSDELEGATE (1; 0 = --no-nsdelegate), VM_TCG_THREAD
# (multi; single = every vCPU on one host thread: slower where guest CPUs work
# in parallel, but a vCPU cannot run code another one just rewrote, which a
# 6.12 guest's jump-label patching did under multi-threaded TCG: "Oops: int3"),
# CORRAL_VM_CACHE, CORRAL_VM_BUSYBOX (a static busybox; default /bin/busybox).
#
# Host packages: qemu-system-x86 busybox-static xz-utils zstd (plus apt, dpkg and
# coreutils/util-linux/grep/sed, which every Debian system has).
set -euo pipefail

prog=vm-test
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
home=~
CACHE=${CORRAL_VM_CACHE:-${XDG_CACHE_HOME:-$home/.cache}/corral-vm}
# Modules the guest needs; their dependencies are added from each .ko's depends=.
WANT_MODULES="virtio_pci 9pnet_virtio 9p overlay virtio_console"
QEMU=qemu-system-x86_64
# The Debian meta-package whose kernel boots (its dependency names the version).
META=${VM_KERNEL:-linux-image-amd64}
case $META in linux-image-*-amd64 | linux-image-amd64) ;; *)
	printf 'vm-test: VM_KERNEL=%s is not a Debian amd64 kernel meta-package (linux-image-amd64, linux-image-6.12-amd64)\n' "$META" >&2
	exit 125 ;;
esac
RESOLVED=resolved
[ "$META" = linux-image-amd64 ] || RESOLVED=resolved-$META

msg() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	msg "$@"
	exit 125
}

usage() {
	cat <<EOF
usage: scripts/vm-test.sh [--rw DIR]... [--mem MiB] [--cpus N] [--timeout SEC] [--no-nsdelegate]
                          [--] COMMAND [ARG...]
       scripts/vm-test.sh --fetch-kernel | --check | --help

Runs COMMAND as root inside a throw-away qemu VM (TCG) with a pure cgroup v2
hierarchy. Host / is read-only under a RAM overlay; --rw DIR is shared
read-write. Exit status is COMMAND's, 125 if the VM itself failed.

  --rw DIR       share DIR read-write at the same path (repeatable)
  --mem MiB      guest RAM (VM_MEM, default 1024)
  --cpus N       vCPUs (VM_CPUS, default 2)
  --timeout SEC  limit for the whole run (VM_TIMEOUT, default 1800)
  --no-nsdelegate  mount cgroup2 without nsdelegate (VM_NSDELEGATE=0)
  --fetch-kernel download/refresh the cached Debian kernel, then exit
  --check        say whether the VM lane can run here; exit 0 (yes) or 1 (no)

Environment: VM_MEM VM_CPUS VM_TIMEOUT VM_BOOT_TIMEOUT VM_KERNEL VM_DEBUG=1 VM_APPEND VM_NSDELEGATE VM_TCG_THREAD
CORRAL_VM_CACHE (default \${XDG_CACHE_HOME:-~/.cache}/corral-vm) CORRAL_VM_BUSYBOX
EOF
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }

# ---------------------------------------------------------------- host checks

# True if $1 is an ELF executable without a PT_INTERP program header, i.e. runs
# in an initramfs that contains nothing else (busybox-static, not busybox).
is_static_elf() {
	local f=$1 phoff phentsize phnum t
	[ -f "$f" ] && [ "$(od -An -tx1 -N5 "$f" | tr -d ' \n')" = 7f454c4602 ] || return 1
	phoff=$(od -An -tu8 -j32 -N8 "$f")
	phentsize=$(od -An -tu2 -j54 -N2 "$f")
	phnum=$(od -An -tu2 -j56 -N2 "$f")
	for t in $(od -v -An -tu4 -w"$((phentsize))" -j"$((phoff))" -N"$((phnum * phentsize))" "$f" |
		awk '{ print $1 }'); do
		[ "$t" != 3 ] || return 1 # PT_INTERP
	done
}

find_busybox() {
	local b
	for b in ${CORRAL_VM_BUSYBOX:-/bin/busybox /usr/bin/busybox "$(command -v busybox || :)"}; do
		if is_static_elf "$b"; then
			printf '%s\n' "$b"
			return 0
		fi
	done
	return 1
}

# ------------------------------------------------------------------- kernel

# Prints the Debian kernel version $META currently depends on
# (e.g. 6.1.0-56-amd64), from the local apt lists. apt-cache takes ~0.7 s when
# apt's binary cache is disabled (Docker-style images), so the answer is kept
# in the cache, keyed by the size and mtime of the lists it came from.
resolve_kver() {
	local lists stamp kver
	eval "$(apt-config shell lists Dir::State::lists/d 2>/dev/null)" || :
	lists=${lists:-/var/lib/apt/lists/}
	stamp=$(stat -c '%n %s %Y' "$lists"*_Packages* 2>/dev/null | cksum) || return 1
	if [ -r "$CACHE/$RESOLVED" ] && [ "$(sed -n 1p "$CACHE/$RESOLVED")" = "$stamp" ]; then
		sed -n 2p "$CACHE/$RESOLVED"
		return 0
	fi
	kver=$(apt-cache depends "$META" 2>/dev/null |
		sed -n 's/^ *|\{0,1\}Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' |
		sort -V | tail -n1) || :
	[ -n "$kver" ] || return 1
	if mkdir -p "$CACHE" 2>/dev/null &&
		printf '%s\n%s\n' "$stamp" "$kver" 2>/dev/null > "$CACHE/$RESOLVED.$$"; then
		mv -f "$CACHE/$RESOLVED.$$" "$CACHE/$RESOLVED"
	fi
	printf '%s\n' "$kver"
}

# Cache entry $CACHE/<kver>/: vmlinux, modules/*.ko, modules.builtin, and "ok",
# written last: line 1 is WANT_MODULES (a changed list means a refetch), line 2
# "<size> <sha256>" of vmlinux.
kernel_complete() {
	[ -f "$CACHE/$1/ok" ] && [ "$(sed -n 1p "$CACHE/$1/ok")" = "$WANT_MODULES" ]
}

# kernel_intact KVER [verify]: vmlinux still has the size (with verify: the
# checksum) recorded when it was extracted.
kernel_intact() {
	local size sum
	read -r size sum < <(sed -n 2p "$CACHE/$1/ok") || return 1
	[ "$(stat -c %s "$CACHE/$1/vmlinux" 2>/dev/null)" = "$size" ] || return 1
	[ "${2-}" != verify ] || [ "$(sha256sum < "$CACHE/$1/vmlinux" | cut -d' ' -f1)" = "$sum" ]
}

newest_cached_kver() {
	local d k best=
	# Another meta-package's kernels are not this one's fallback.
	local series=
	[ "$META" = linux-image-amd64 ] || series=${META#linux-image-}
	series=${series%-amd64}
	for d in "$CACHE"/*/ok; do
		[ -f "$d" ] || continue
		k=${d%/ok}
		k=${k##*/}
		kernel_complete "$k" || continue
		case $k in "$series"*) ;; *) continue ;; esac
		best=$(printf '%s\n%s\n' "$best" "$k" | sort -V | tail -n1)
	done
	[ -n "$best" ] && printf '%s\n' "$best"
}

# Name of a module as used in depends= (file names may use '-').
mod_name() {
	local n=${1##*/}
	n=${n%%.ko*}
	printf '%s\n' "${n//-/_}"
}

# depends= of a (decompressed) .ko, comma-separated names; empty if none. The
# .modinfo section is a sequence of NUL-terminated "key=value" strings, so
# splitting the file at NULs finds it without binutils' strings.
mod_depends() {
	local d
	d=$(tr '\0' '\n' < "$1" | sed -n 's/^depends=//p')
	printf '%s\n' "${d%%$'\n'*}"
}

# mod_order DIR BUILTIN-FILE MODULE...: prints "name path" lines for MODULE...
# and everything they depend on, dependencies first. DIR is searched
# recursively for NAME.ko (also with '-' for '_'). A module that is missing but
# listed in BUILTIN-FILE (modules.builtin) is built in and skipped.
mod_order() {
	local dir=$1 builtin=$2 f
	shift 2
	declare -A path=() state=()
	while IFS= read -r f; do
		path[$(mod_name "$f")]=$f
	done < <(find "$dir" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
	_mod_visit() {
		local m=$1 d
		case ${state[$m]-} in
		finished) return 0 ;;
		visiting) die "module dependency cycle at $m" ;;
		esac
		if [ -z "${path[$m]-}" ]; then
			if [ -f "$builtin" ] && grep -q "/${m}\.ko\$\|/${m//_/-}\.ko\$" "$builtin"; then
				state[$m]=finished
				return 0
			fi
			die "kernel module $m.ko not found in $dir"
		fi
		state[$m]=visiting
		local deps
		deps=$(mod_depends_any "${path[$m]}")
		for d in ${deps//,/ }; do _mod_visit "$d"; done
		state[$m]=finished
		printf '%s %s\n' "$m" "${path[$m]}"
	}
	for f in "$@"; do _mod_visit "$f"; done
}

# Decompress a possibly compressed module to stdout.
mod_cat() {
	case $1 in
	*.ko.xz) xz -dc -- "$1" ;;
	*.ko.zst) zstd -dcq -- "$1" ;;
	*.ko.gz) gzip -dc -- "$1" ;;
	*) cat -- "$1" ;;
	esac
}

mod_depends_any() {
	case $1 in
	*.ko) mod_depends "$1" ;;
	*)
		local t
		t=$(mktemp)
		mod_cat "$1" > "$t" && mod_depends "$t"
		rm -f "$t"
		;;
	esac
}

# The kernel's bzImage carries an XZ stream; the ELF vmlinux inside it is what
# qemu boots directly (PVH entry, CONFIG_PVH=y), like the kernel's
# scripts/extract-vmlinux: try each XZ magic, keep the first that yields ELF.
extract_vmlinux() {
	local bz=$1 out=$2 off
	for off in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | cut -d: -f1 | head -n 4); do
		tail -c +"$((off + 1))" "$bz" | xz -dcq > "$out" 2>/dev/null || :
		[ "$(od -An -tx1 -N4 "$out" | tr -d ' \n')" = 7f454c46 ] && return 0
	done
	# Debian's 6.12 compresses its bzImage with zstd.
	if command -v zstd > /dev/null; then
		for off in $(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$bz" | cut -d: -f1 | head -n 4); do
			tail -c +"$((off + 1))" "$bz" | zstd -dcq > "$out" 2>/dev/null || :
			[ "$(od -An -tx1 -N4 "$out" | tr -d ' \n')" = 7f454c46 ] && return 0
		done
	fi
	rm -f "$out"
	return 1
}

# fetch_kernel KVER [verbose]: download linux-image-<kver>-unsigned and build
# the cache entry for it (nothing to do if it is there and intact). Only ever
# run as an asynchronous subshell (run_fetch): it sets its own traps, so that
# the ~430 MB unpack directory goes away on every exit path, and exits.
# (Not a "( )" function: "f &" would then fork twice, and a signal to $! would
# kill only the outer copy.) Serialised with flock: parallel first runs fetch
# once. The long steps run through bg, so that a signal is acted on at once.
fetch_kernel() {
	kver=$1
	pkg="linux-image-$1-unsigned"
	tmp="" child=""
	# bg runs each step in a process group of its own (setsid), so that this
	# kills dpkg-deb's and apt's helper processes too, before the rm.
	trap 'if [ -n "$child" ]; then
			kill -TERM -- "-$child" || kill -TERM "$child"
			for _ in $(seq 100); do kill -0 -- "-$child" || kill -0 "$child" || break; sleep 0.05; done
		fi 2>/dev/null
		[ -z "$tmp" ] || rm -rf "$tmp"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	bg() {
		local rc=0
		setsid "$@" &
		child=$!
		wait "$child" || rc=$?
		child=
		return "$rc"
	}
	mkdir -p "$CACHE" || die "cannot create the cache directory $CACHE"
	exec 9> "$CACHE/.lock"
	flock 9
	if kernel_complete "$kver" && kernel_intact "$kver" verify; then
		[ "${2-}" != verbose ] || msg "kernel $kver already cached in $CACHE/$kver"
		exit 0
	fi
	rm -rf "$CACHE"/.fetch.* # left by a fetch that was SIGKILLed (we hold the lock)
	command -v apt-get > /dev/null || die "apt-get not found: cannot download $pkg"
	command -v dpkg-deb > /dev/null || die "dpkg-deb not found: cannot unpack $pkg"
	command -v xz > /dev/null || die "xz not found (Debian package xz-utils): cannot unpack the kernel"
	case $kver in 6.1.*) ;; *) command -v zstd > /dev/null ||
		die "zstd not found (Debian package zstd): cannot unpack the kernel $kver" ;; esac
	msg "fetching the Debian kernel $pkg into $CACHE/$kver (one-time, ~70 MB download)"
	tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX") || die "cannot write to $CACHE"
	cd "$tmp" || die "cannot cd to $tmp"
	# apt drops privileges to _apt for downloads, which cannot write under
	# /root; as root, download without that sandbox instead of warning about it.
	aptopt=(-q)
	[ "$(id -u)" != 0 ] || aptopt+=(-o APT::Sandbox::User=root)
	if ! bg apt-get "${aptopt[@]}" download "$pkg" >&2; then
		# Stale lists: the mirror may have dropped that build already.
		[ "$(id -u)" = 0 ] || die "apt-get download $pkg failed"
		msg "download failed; running apt-get update and retrying"
		bg apt-get -q update >&2 || :
		bg apt-get "${aptopt[@]}" download "$pkg" >&2 || die "apt-get download $pkg failed"
	fi
	x=$tmp/x
	bg dpkg-deb -x "$tmp"/*.deb "$x" || die "dpkg-deb -x of $pkg failed"
	rm -f "$tmp"/*.deb
	moddir=
	for d in "$x/lib/modules/$kver" "$x/usr/lib/modules/$kver"; do
		[ -d "$d" ] && moddir=$d && break
	done
	bz=$x/boot/vmlinuz-$kver
	if [ -z "$moddir" ] || [ ! -f "$bz" ]; then
		die "unexpected layout of $pkg (no boot/vmlinuz-$kver or lib/modules/$kver)"
	fi
	mkdir -p "$tmp/k/modules" || die "cannot write to $tmp"
	extract_vmlinux "$bz" "$tmp/k/vmlinux" ||
		die "cannot extract an ELF vmlinux from the XZ bzImage of $pkg"
	cp "$moddir/modules.builtin" "$tmp/k/" 2>/dev/null || : > "$tmp/k/modules.builtin"
	# shellcheck disable=SC2086 # word splitting of the module list is intended
	(mod_order "$moddir" "$tmp/k/modules.builtin" $WANT_MODULES > "$tmp/order") ||
		die "cannot collect the modules $WANT_MODULES from $pkg"
	while read -r n m; do
		mod_cat "$m" > "$tmp/k/modules/$n.ko" || die "cannot copy $m"
	done < "$tmp/order"
	printf '%s\n%s %s\n' "$WANT_MODULES" "$(stat -c %s "$tmp/k/vmlinux")" \
		"$(sha256sum < "$tmp/k/vmlinux" | cut -d' ' -f1)" > "$tmp/k/ok" ||
		die "cannot write to $tmp"
	# (set -e does not apply in here when the caller tests our status.)
	rm -rf "${CACHE:?}/$kver"
	mv "$tmp/k" "$CACHE/$kver" || die "cannot move the kernel into $CACHE/$kver"
	# Drop the older kernels of its series (6.1.x, 6.12.x): the current one is
	# what every run with this meta-package uses; another series (VM_KERNEL)
	# stays.
	local series
	series=$(printf '%s\n' "$kver" | cut -d. -f1-2)
	for d in "$CACHE"/*/ok; do
		[ -f "$d" ] || continue
		d=${d%/ok}
		case ${d##*/} in "$kver") ;; "$series".*) rm -rf "$d" ;; esac
	done
	msg "kernel $kver cached in $CACHE/$kver"
}

# fetch_kernel in the background: our own signal traps then run at once (not
# after it finished), and cleanup passes the signal on to it.
fetch_pid=
run_fetch() {
	local rc=0
	fetch_kernel "$@" &
	fetch_pid=$!
	wait "$fetch_pid" || rc=$?
	fetch_pid=
	return "$rc"
}

# Sets KVER to the kernel to boot, fetching it if needed. With $1 = force,
# (--fetch-kernel) always resolves afresh, running apt-get update if apt
# cannot resolve linux-image-amd64.
ensure_kernel() {
	local mode=${1-}
	KVER=$(resolve_kver) || KVER=
	if [ -z "$KVER" ]; then
		if [ "$mode" != force ] && KVER=$(newest_cached_kver); then
			return 0 # no apt lists (or no apt): use what we have, quietly
		fi
		if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
			msg "apt-cache cannot resolve $META; running apt-get update"
			apt-get -q update >&2 || :
			rm -f "$CACHE/$RESOLVED"
			KVER=$(resolve_kver) || KVER=
		fi
		[ -n "$KVER" ] || die "cannot resolve the Debian kernel (apt-cache depends $META gives no linux-image-*-amd64; run apt-get update as root)"
	fi
	# A complete entry whose vmlinux changed since is not refetched behind the
	# user's back (a disk or cache problem should be seen): --fetch-kernel repairs.
	kernel_complete "$KVER" && [ "$mode" != force ] && return 0
	if [ "$mode" = force ]; then
		run_fetch "$KVER" verbose || exit 125
		return 0
	fi
	# A failed download of a newer build (offline, mirror trouble) falls back to
	# the newest kernel already cached, loudly.
	local old
	run_fetch "$KVER" && return 0
	old=$(newest_cached_kver) || exit 125
	msg "WARNING: could not fetch kernel $KVER; using the cached $old"
	KVER=$old
}

# ------------------------------------------------------------------- --check

check() {
	local ok=0 b v k
	if command -v "$QEMU" > /dev/null; then
		v=$("$QEMU" --version 2>/dev/null | head -n1) || v="(cannot run)"
		echo "qemu:    $(command -v "$QEMU"): $v"
	else
		echo "qemu:    MISSING ($QEMU; Debian package qemu-system-x86)"
		ok=1
	fi
	if b=$(find_busybox); then
		echo "busybox: $b (static)"
	else
		echo "busybox: MISSING (a static busybox; Debian package busybox-static)"
		ok=1
	fi
	if k=$(resolve_kver); then
		if kernel_complete "$k"; then
			echo "kernel:  $k, cached in $CACHE/$k"
		elif command -v apt-get > /dev/null && command -v dpkg-deb > /dev/null &&
			command -v xz > /dev/null; then
			echo "kernel:  $k, not cached, fetchable (linux-image-$k-unsigned, first run downloads it)"
		else
			echo "kernel:  $k, not cached, NOT fetchable (needs apt-get, dpkg-deb, xz)"
			ok=1
		fi
	elif k=$(newest_cached_kver); then
		echo "kernel:  $k, cached in $CACHE/$k (apt cannot resolve $META here)"
	elif [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null && command -v xz > /dev/null; then
		echo "kernel:  not cached; fetchable after apt-get update (done automatically)"
	else
		echo "kernel:  not cached and NOT fetchable (no apt lists, not root or no apt-get/xz)"
		ok=1
	fi
	if [ $ok = 0 ]; then
		echo "vm lane: available (a VM that then fails to boot is a failure, exit 125)"
	else
		echo "vm lane: NOT available"
	fi
	return $ok
}

# ------------------------------------------------- state and cleanup, all modes

T= # per-run temp dir
tpid= # the timeout(1) process that runs qemu
fwd=() # the two output forwarders

# Ends qemu: TERM to timeout(1), which passes it on to qemu and exits when qemu
# has; after 5 s KILL to both (qemu's pid from its -pidfile). Polled with
# kill -0, as "wait" may return at once when called from a signal trap.
stop_qemu() {
	local i qpid
	[ -n "$tpid" ] || return 0
	kill -TERM "$tpid" 2>/dev/null || :
	for i in $(seq 50); do
		kill -0 "$tpid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$tpid" 2>/dev/null; then
		qpid=$(cat "$T/qemu.pid" 2>/dev/null) || qpid=
		kill -KILL "$tpid" ${qpid:+"$qpid"} 2>/dev/null || :
	fi
	wait "$tpid" 2>/dev/null || :
	tpid=
}

# Lets the forwarders finish: once qemu is gone, opening a FIFO read-write (never
# blocks) and closing it again releases a cat still blocked in open() (qemu
# never opened the FIFO, e.g. it failed early) and leaves it at EOF. Repeated,
# because a forwarder may not even have reached its open() yet.
finish_forwarders() {
	local tries=${1:-0} n=0 p alive
	while :; do
		alive=
		for p in ${fwd[@]+"${fwd[@]}"}; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ -n "$alive" ] || break
		: 7<> "$T/out" 8<> "$T/err"
		n=$((n + 1))
		if [ "$tries" -gt 0 ] && [ $n -ge "$tries" ]; then
			kill -TERM ${fwd[@]+"${fwd[@]}"} 2>/dev/null || :
			break
		fi
		sleep 0.02
	done
	for p in ${fwd[@]+"${fwd[@]}"}; do wait "$p" 2>/dev/null || :; done
	fwd=()
}

# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
	set +e
	trap - INT TERM HUP
	if [ -n "$fetch_pid" ]; then
		# Polled: after a trapped signal interrupted "wait", bash's next wait
		# in the trap returns at once.
		kill -TERM "$fetch_pid" 2>/dev/null
		for _ in $(seq 200); do
			kill -0 "$fetch_pid" 2>/dev/null || break
			sleep 0.05
		done
	fi
	stop_qemu
	if [ -n "$T" ]; then
		[ ${#fwd[@]} = 0 ] || finish_forwarders 50
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- arguments

mem=${VM_MEM:-1024}
cpus=${VM_CPUS:-2}
timeout=${VM_TIMEOUT:-1800}
boot_timeout=${VM_BOOT_TIMEOUT:-120}
nsdelegate=${VM_NSDELEGATE:-1}
tcg_thread=${VM_TCG_THREAD:-multi}
rw=()
while [ $# -gt 0 ]; do
	case $1 in
	--rw | --mem | --cpus | --timeout)
		[ $# -ge 2 ] || die "$1 needs an argument (see --help)"
		case $1 in
		--rw) rw+=("$2") ;;
		--mem) mem=$2 ;;
		--cpus) cpus=$2 ;;
		--timeout) timeout=$2 ;;
		esac
		shift 2
		;;
	--rw=*) rw+=("${1#*=}") && shift ;;
	--mem=*) mem=${1#*=} && shift ;;
	--cpus=*) cpus=${1#*=} && shift ;;
	--timeout=*) timeout=${1#*=} && shift ;;
	--no-nsdelegate) nsdelegate=0 && shift ;;
	--fetch-kernel)
		[ $# = 1 ] || die "--fetch-kernel takes no other arguments"
		ensure_kernel force
		exit 0
		;;
	--check)
		[ $# = 1 ] || die "--check takes no other arguments"
		check && exit 0 || exit 1
		;;
	--kernel-dir)
		# For scripts/systemd-vm.sh, which boots the same cached kernel.
		[ $# = 1 ] || die "--kernel-dir takes no other arguments"
		ensure_kernel
		printf '%s\n' "$CACHE/$KVER"
		exit 0
		;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		break
		;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || {
	usage >&2
	exit 125
}
is_uint "$mem" || die "bad memory size '$mem' (MiB)"
is_uint "$cpus" || die "bad vCPU count '$cpus'"
is_uint "$timeout" || die "bad timeout '$timeout' (seconds)"
is_uint "$boot_timeout" || die "bad VM_BOOT_TIMEOUT '$boot_timeout' (seconds)"
case $nsdelegate in 0 | 1) ;; *) die "bad VM_NSDELEGATE '$nsdelegate' (0 or 1)" ;; esac
case $tcg_thread in single | multi) ;; *) die "bad VM_TCG_THREAD '$tcg_thread' (single or multi)" ;; esac

# ---------------------------------------------------------------------- run

command -v "$QEMU" > /dev/null || die "$QEMU not found (Debian package qemu-system-x86)"
busybox=$(find_busybox) || die "no static busybox found (Debian package busybox-static)"
[ -f "$here/vm-init" ] || die "missing $here/vm-init"
ensure_kernel
kdir=$CACHE/$KVER
kernel=$kdir/vmlinux
if ! kernel_intact "$KVER" || [ "$(od -An -tx1 -N4 "$kernel" | tr -d ' \n')" != 7f454c46 ]; then
	die "the cached kernel $kernel is corrupt (not the ELF file extracted at fetch time); run scripts/vm-test.sh --fetch-kernel to repair it"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/corral-vm.XXXXXX") || die "mktemp failed"

# initramfs: static busybox, init, the modules and their load order (plain cpio)
I=$T/initramfs
mkdir -p "$I/bin" "$I/lib/modules" "$I/proc" "$I/sys" "$I/dev"
cp "$busybox" "$I/bin/busybox"
ln -s busybox "$I/bin/sh"
cp "$here/vm-init" "$I/init"
chmod 0755 "$I/init"
# The load order is computed here, every run, from the cached modules'
# depends=: it changes between kernel builds (6.1.0-50 had virtio before
# virtio_ring, in 6.1.0-56 virtio depends on virtio_ring).
order=$(
	# shellcheck disable=SC2086 # word splitting of the module list is intended
	mod_order "$kdir/modules" "$kdir/modules.builtin" $WANT_MODULES
) || exit 125
: > "$I/modules"
while read -r n m; do
	[ -n "$n" ] || continue # everything built in
	cp "$m" "$I/lib/modules/$n.ko"
	printf '%s\n' "$n" >> "$I/modules"
done <<< "$order"
(cd "$I" && find . | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) > "$T/initrd" ||
	die "building the initramfs failed"

# The command, run by the host's /bin/bash inside the VM: umask, exported
# variables and functions, cwd, then exec.
mkdir "$T/share"
{
	printf 'umask %s\n' "$(umask)"
	for v in $(compgen -e); do
		case $v in
		PWD | OLDPWD | SHLVL | _ | SHELLOPTS | BASHOPTS) ;;
		*) declare -p "$v" ;;
		esac
	done
	declare -fx
	printf 'cd -- %q || exit 125\n' "$PWD"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} > "$T/share/cmd"

# qemu option values are comma-separated lists: a literal ',' is written ',,'.
qesc() { printf '%s' "${1//,/,,}"; }

virtfs=(-virtfs "local,path=$(qesc "$T/share"),mount_tag=vmrun,security_model=none")
i=0
for d in ${rw[@]+"${rw[@]}"}; do
	r=$(realpath -e -- "$d" 2>/dev/null) || die "--rw $d: no such directory"
	[ -d "$r" ] || die "--rw $d: not a directory"
	[ "$r" != / ] || die "--rw /: sharing the whole root read-write is not supported"
	case $r in *$'\n'*) die "--rw $d: newline in path" ;; esac
	printf 'rw%d %s\n' "$i" "$r" >> "$T/share/rw"
	virtfs+=(-virtfs "local,path=$(qesc "$r"),mount_tag=rw$i,security_model=none,multidevs=remap")
	i=$((i + 1))
done

# The guest's stdout/stderr ports are qemu file chardevs on FIFOs, copied by cat
# to our own stdout/stderr: streaming, byte-exact, and without qemu re-opening
# /dev/stdout (a different file offset: clobbers a regular-file stdout).
# If our reader goes away (EPIPE, e.g. "| head"), keep draining: a full FIFO
# would otherwise block the guest's writes until the timeout.
forward() {
	local c=
	trap '[ -z "$c" ] || kill "$c" 2>/dev/null; exit 143' TERM
	cat -- "$1" &
	c=$!
	wait "$c" && return 0
	cat -- "$1" > /dev/null &
	c=$!
	wait "$c"
}
mkfifo "$T/out" "$T/err"
forward "$T/out" &
fwd+=($!)
forward "$T/err" >&2 &
fwd+=($!)

append="console=ttyS0 panic=-1 oops=panic cgroup_no_v1=all psi=1"
[ "${VM_DEBUG-}" = 1 ] || append+=" quiet"
# vm-init reads it (a dotted name: the kernel neither parses it nor hands it to init).
[ "$nsdelegate" = 1 ] || append+=" corral_vm.nsdelegate=0"
append+=${VM_APPEND:+ $VM_APPEND}
# --foreground keeps qemu in our process group, so that whatever kills the
# caller's whole group (a CI job's kill -9) takes qemu along.
timeout --foreground -k 10 "$timeout" "$QEMU" \
	-accel tcg,thread="$tcg_thread" -cpu max -m "$mem" -smp "$cpus" \
	-nodefaults -no-user-config -display none -no-reboot -pidfile "$T/qemu.pid" \
	-kernel "$kernel" -initrd "$T/initrd" -append "$append" \
	-serial "file:$T/console" \
	-device virtio-serial-pci \
	-chardev "file,id=out,path=$(qesc "$T/out")" -device virtserialport,chardev=out,name=out \
	-chardev "file,id=err,path=$(qesc "$T/err")" -device virtserialport,chardev=err,name=err \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	"${virtfs[@]}" < /dev/null &
tpid=$!

# Boot watchdog: the guest's init creates share/booted once its kernel, modules
# and 9p work. A kernel that hangs early is caught here, not after VM_TIMEOUT.
start=$SECONDS
why=
while [ ! -e "$T/share/booted" ]; do
	kill -0 "$tpid" 2>/dev/null || break
	if [ $((SECONDS - start)) -ge "$boot_timeout" ]; then
		why="the guest did not boot within $boot_timeout s (VM_BOOT_TIMEOUT)"
		stop_qemu
		break
	fi
	sleep 0.05
done
qrc=0
if [ -n "$tpid" ]; then
	wait "$tpid" || qrc=$?
	tpid=
fi
finish_forwarders

[ "${VM_DEBUG-}" != 1 ] || {
	echo "----- $prog: guest console -----"
	cat "$T/console" 2>/dev/null
	echo "----- end of guest console -----"
} >&2

rc=$(cat "$T/share/rc" 2>/dev/null) || rc=
if [[ $rc =~ ^[0-9]+$ ]] && [ "$rc" -le 255 ]; then
	[ "$qrc" = 0 ] || msg "warning: qemu exited with status $qrc after the command finished"
	exit "$rc"
fi

if [ -z "$why" ]; then
	case $qrc in
	0) why="the guest powered off without reporting an exit status" ;;
	124) why="timed out after $timeout s (--timeout / VM_TIMEOUT)" ;;
	*) why="qemu exited with status $qrc" ;;
	esac
	if [ -e "$T/share/booted" ]; then
		[ "$qrc" != 124 ] || why+="; the guest had booted, so COMMAND was still running"
	else
		why+=" before the guest's init was up"
	fi
fi
msg "VM FAILED: $why"
[ -e "$T/share/booted" ] ||
	msg "kernel: $kernel (if it is broken: run scripts/vm-test.sh --fetch-kernel, or delete $kdir)"
if [ "${VM_DEBUG-}" != 1 ]; then
	{
		echo "----- $prog: guest console -----"
		if [ -s "$T/console" ]; then cat "$T/console"; else echo "(empty)"; fi
		echo "----- end of guest console -----"
	} >&2
fi
exit 125
