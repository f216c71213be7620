#!/bin/bash
# scripts/systemd-vm.sh - run a command in a throw-away qemu VM (TCG) whose PID 1
# is the host's systemd on a pure cgroup v2 hierarchy, as root or as an
# unprivileged user with a logind session and a running user manager.
#
#   scripts/systemd-vm.sh [-u] [--prep FILE] [--rw DIR]... [--] COMMAND [ARG...]
#
# COMMAND runs from a system service (vm-cmd.service) as root, or with -u as
# the user "tester" (uid 1001) in a real login session (runuser -l ->
# pam_systemd -> session-N.scope; user@1001.service running;
# XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS set), so that the user
# manager can give it delegated scopes. --prep FILE: a bash script run as root
# (in the caller's cwd) before COMMAND, e.g. to make a build dir writable for
# tester. The cwd must be reachable by uid 1001 with -u: its ancestors get
# o+x in the VM (metadata only, in the RAM overlay).
#
# The host's / is the VM's root: a read-only virtio-9p lower layer under a RAM
# overlay (writes vanish), except --rw DIRs (shared read-write at the same
# path). stdout/stderr are streamed back byte-exact; the exit status is
# COMMAND's; 125 means the VM failed (no boot, timeout, no status) and the
# guest console is printed.
#
# Kernel: the one scripts/vm-test.sh caches (scripts/vm-test.sh --kernel-dir
# fetches it once). Host packages: those of vm-test.sh, plus systemd, dbus,
# dbus-user-session and libpam-systemd (they only run in the VM).
#
# Environment: VM_MEM (MiB, 1536), VM_CPUS (2), VM_TIMEOUT (s, 3600),
# VM_BOOT_TIMEOUT (s, 120), VM_DELEGATE ("cpu cpuset io memory pids": a
# user@.service drop-in; unset: Debian 12 delegates pids memory cpu),
# VM_DEBUG=1 (systemd status on the console, the journal after the run),
# CORRAL_VM_BUSYBOX (a static busybox; default /bin/busybox).
#
# Adapted from ../shared/systemd-vm/systemd-vm-run (facts in its README).
set -euo pipefail

prog=systemd-vm
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
QEMU=qemu-system-x86_64

msg() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	msg "$@"
	exit 125
}

user=0
prep=
rw=()
while [ $# -gt 0 ]; do
	case $1 in
	-u | --user) user=1 && shift ;;
	--prep) prep=$2 && shift 2 ;;
	--rw) rw+=("$2") && shift 2 ;;
	-h | --help)
		sed -n '2,30p' "$0"
		exit 0
		;;
	--) shift && break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || die "usage: scripts/systemd-vm.sh [-u] [--prep FILE] [--rw DIR]... [--] COMMAND [ARG...]"
mem=${VM_MEM:-1536}
cpus=${VM_CPUS:-2}
timeout=${VM_TIMEOUT:-3600}
boot_timeout=${VM_BOOT_TIMEOUT:-120}
for b in /lib/systemd/systemd /usr/bin/dbus-daemon /lib/x86_64-linux-gnu/security/pam_systemd.so; do
	[ -e "$b" ] || die "$b is missing (Debian packages systemd dbus dbus-user-session libpam-systemd)"
done
command -v "$QEMU" > /dev/null || die "$QEMU not found (Debian package qemu-system-x86)"
busybox=${CORRAL_VM_BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || die "no static busybox at $busybox (Debian package busybox-static)"
kdir=$("$here/vm-test.sh" --kernel-dir) || die "no kernel (scripts/vm-test.sh --kernel-dir failed)"
kernel=$kdir/vmlinux
[ -s "$kernel" ] || die "no vmlinux in $kdir"

T=
tpid=
fwd=()
stop_qemu() {
	local qpid
	[ -n "$tpid" ] || return 0
	kill -TERM "$tpid" 2> /dev/null || :
	for _ in $(seq 50); do
		kill -0 "$tpid" 2> /dev/null || break
		sleep 0.1
	done
	if kill -0 "$tpid" 2> /dev/null; then
		qpid=$(cat "$T/qemu.pid" 2> /dev/null) || qpid=
		kill -KILL "$tpid" ${qpid:+"$qpid"} 2> /dev/null || :
	fi
	wait "$tpid" 2> /dev/null || :
	tpid=
}
finish_forwarders() { # unblock a cat still in open() (qemu never opened the FIFO)
	local p alive n=0
	while :; do
		alive=
		for p in ${fwd[@]+"${fwd[@]}"}; do kill -0 "$p" 2> /dev/null && alive=1; done
		[ -n "$alive" ] || break
		: 7<> "$T/out" 8<> "$T/err"
		n=$((n + 1))
		[ $n -lt 200 ] || {
			kill ${fwd[@]+"${fwd[@]}"} 2> /dev/null
			break
		}
		sleep 0.02
	done
	for p in ${fwd[@]+"${fwd[@]}"}; do wait "$p" 2> /dev/null || :; done
	fwd=()
}
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
	set +e
	trap - INT TERM HUP
	stop_qemu
	if [ -n "$T" ]; then
		[ ${#fwd[@]} = 0 ] || finish_forwarders
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

T=$(mktemp -d "${TMPDIR:-/tmp}/corral-systemd-vm.XXXXXX")

# ---- initramfs: static busybox, /init, the modules in dependency order
I=$T/initramfs
mkdir -p "$I/bin" "$I/lib/modules" "$I/proc" "$I/sys" "$I/dev"
cp "$busybox" "$I/bin/busybox"
ln -s busybox "$I/bin/sh"
declare -A seen=()
order=()
add_mod() {
	local m=$1 d deps
	[ -z "${seen[$m]-}" ] || return 0
	seen[$m]=1
	if [ ! -f "$kdir/modules/$m.ko" ]; then
		# Built into the kernel (vm-test.sh cached only the loadable ones).
		return 0
	fi
	deps=$(tr '\0' '\n' < "$kdir/modules/$m.ko" | sed -n 's/^depends=//p' | head -n1)
	for d in ${deps//,/ }; do add_mod "$d"; done
	cp "$kdir/modules/$m.ko" "$I/lib/modules/"
	order+=("$m")
}
for m in virtio_pci 9pnet_virtio 9p overlay virtio_console; do add_mod "$m"; done
printf '%s\n' ${order[@]+"${order[@]}"} > "$I/modules"
cat > "$I/init" << 'EOF'
#!/bin/sh
# initramfs /init: host / (9p, ro) + tmpfs overlay -> /newroot, then switch_root to systemd
export PATH=/bin
/bin/busybox --install -s /bin
fail() { echo "init: FATAL: $*"; sync; poweroff -f; }
mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs dev /dev || fail "mounts"
for m in $(cat /modules); do insmod "/lib/modules/$m.ko" || fail "insmod $m"; done
o9p=trans=virtio,version=9p2000.L,msize=512000
mkdir -p /vmrun /lower /upper /newroot
mount -t 9p -o $o9p vmrun /vmrun || fail "mount vmrun"
: > /vmrun/booted
mount -t 9p -o $o9p,ro,cache=loose hostroot /lower || fail "mount hostroot"
mount -t tmpfs -o mode=755 tmpfs /upper && mkdir /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot ||
	fail "overlay mount"
R=/newroot
cp -a /vmrun/root/. $R/ || fail "copy the systemd configuration"
rm -f $R/.dockerenv # else systemd detects "virtualization docker" (container mode)
if [ -f /vmrun/user ]; then # user "tester" (1001), lingering: logind starts user@1001 at boot
	grep -q '^tester:' $R/etc/passwd || {
		echo 'tester:x:1001:1001:vm test user:/home/tester:/bin/bash' >> $R/etc/passwd
		echo 'tester:x:1001:' >> $R/etc/group
		echo 'tester:!:20000:0:99999:7:::' >> $R/etc/shadow
	}
	echo 'tester:100000:65536' >> $R/etc/subuid
	echo 'tester:100000:65536' >> $R/etc/subgid
	mkdir -p $R/home/tester $R/var/lib/systemd/linger && chown 1001:1001 $R/home/tester
	: > $R/var/lib/systemd/linger/tester
fi
[ -f /vmrun/rw ] && while read -r tag path; do
	mkdir -p "$R$path" && mount -t 9p -o $o9p,cache=mmap "$tag" "$R$path" || fail "mount rw $path"
done < /vmrun/rw
# /run is ours (systemd leaves an existing mount alone), so the share survives
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs $R/run && mkdir -p $R/run/vm-run
mount --move /vmrun $R/run/vm-run || fail "move vmrun"
for i in $(seq 1000); do [ -e /dev/vport*p2 ] && break; sleep 0.01; done
for p in /sys/class/virtio-ports/*; do ln -s "${p##*/}" "/dev/vm-$(cat "$p"/name)"; done
mount --move /dev $R/dev
umount /sys /proc
exec switch_root $R /lib/systemd/systemd
EOF
chmod 0755 "$I/init"
(cd "$I" && find . | "$busybox" cpio -o -H newc -R 0:0 2> /dev/null) > "$T/initrd" ||
	die "building the initramfs failed"

# ---- the share: command, wrapper, systemd configuration for the overlay
S=$T/share
mkdir -p "$S" && chmod 1777 "$S"
{
	printf 'umask %s\n' "$(umask)"
	for v in $(compgen -e); do
		case $v in
		PWD | OLDPWD | SHLVL | _ | SHELLOPTS | BASHOPTS | HOME | USER | LOGNAME | SHELL | MAIL | TERM | \
			XDG_* | DBUS_* | INVOCATION_ID | JOURNAL_STREAM | NOTIFY_SOCKET) ;;
		*) declare -p "$v" ;;
		esac
	done
	printf 'cd -- %q || { echo "systemd-vm: cannot cd to %q as $(id -un)" >&2; exit 125; }\n' "$PWD" "$PWD"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} > "$S/cmd"
if [ -n "$prep" ]; then
	{
		printf 'cd -- %q || exit 125\n' "$PWD"
		cat -- "$prep"
	} > "$S/prep" || die "cannot read --prep $prep"
fi
[ "$user" = 1 ] && : > "$S/user"
printf '%s\n' "$PWD" > "$S/cwd"
cat > "$S/wrap" << 'EOF'
#!/bin/bash
# ExecStart of vm-cmd.service: the command as root, or as tester in a login
# session. The wrapper's own messages go to the journal, the command's to the ports.
exec < /dev/null
rc=125
run() {
	if [ -e /run/vm-run/prep ]; then
		/bin/bash /run/vm-run/prep > /dev/vm-out 2> /dev/vm-err || {
			echo "systemd-vm: the --prep script failed" > /dev/vm-err
			return 125
		}
	fi
	if [ -e /run/vm-run/user ]; then
		# The cwd and its ancestors must be enterable by tester.
		d=$(cat /run/vm-run/cwd)
		while [ -n "$d" ] && [ "$d" != / ]; do chmod o+x "$d" 2> /dev/null; d=${d%/*}; done
		systemctl start user@1001.service 2> /dev/vm-err
		# -l: the PAM stack runuser-l includes pam_systemd: a logind session,
		# XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS
		runuser -l tester -c 'exec /bin/bash /run/vm-run/cmd' > /dev/vm-out 2> /dev/vm-err
	else
		/bin/bash /run/vm-run/cmd > /dev/vm-out 2> /dev/vm-err
	fi
}
run
echo $? > /run/vm-run/rc
if [ -e /run/vm-run/debug ]; then
	{ systemctl --failed --no-legend; journalctl -b --no-pager -o short-monotonic; } > /run/vm-run/journal 2>&1
fi
sync
systemctl poweroff -ff > /dev/null 2>&1
EOF
[ -n "${VM_DEBUG-}" ] && : > "$S/debug"
E=$S/root/etc/systemd
mkdir -p "$E/system" "$E/system-generators" "$E/journald.conf.d" "$E/user" "$E/user-generators"
cat > "$E/system/vm.target" << 'EOF'
[Unit]
Description=systemd-vm target
Requires=basic.target
Wants=dbus.socket systemd-logind.service systemd-user-sessions.service vm-cmd.service
After=basic.target
AllowIsolate=yes
EOF
cat > "$E/system/vm-cmd.service" << 'EOF'
[Unit]
Description=systemd-vm command
After=basic.target dbus.socket systemd-logind.service systemd-user-sessions.service
FailureAction=poweroff-force
[Service]
Type=oneshot
ExecStart=/bin/bash /run/vm-run/wrap
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
EOF
ln -s vm.target "$E/system/default.target"
if [ -n "${VM_DELEGATE-}" ]; then
	mkdir -p "$E/system/user@.service.d"
	printf '[Service]\nDelegate=%s\n' "$VM_DELEGATE" > "$E/system/user@.service.d/zz-vm-delegate.conf"
fi
printf '[Journal]\nStorage=volatile\nForwardToConsole=no\n' > "$E/journald.conf.d/vm.conf"
# Units that are useless (or hang or fail) here: no udev, no modules in
# /lib/modules, no disks; systemd-tmpfiles-setup would empty /tmp (10 s).
for u in getty.target serial-getty@ttyS0.service timers.target systemd-tmpfiles-clean.timer \
	kmod-static-nodes.service proc-sys-fs-binfmt_misc.automount sys-fs-fuse-connections.mount \
	sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
	systemd-ask-password-console.path systemd-ask-password-wall.path systemd-binfmt.service \
	systemd-firstboot.service systemd-journal-flush.service systemd-machine-id-commit.service \
	systemd-modules-load.service systemd-pcrphase-sysinit.service systemd-pcrphase.service \
	systemd-random-seed.service systemd-repart.service systemd-sysusers.service \
	systemd-update-utmp.service systemd-update-utmp-runlevel.service systemd-remount-fs.service \
	systemd-pstore.service systemd-timesyncd.service systemd-journald-audit.socket \
	systemd-initctl.socket modprobe@drm.service modprobe@configfs.service \
	modprobe@fuse.service modprobe@dm_mod.service modprobe@loop.service modprobe@efi_pstore.service \
	ldconfig.service systemd-hwdb-update.service systemd-journal-catalog-update.service \
	systemd-update-done.service systemd-fsck-root.service e2scrub_reap.service \
	systemd-tmpfiles-setup.service podman.socket podman-auto-update.timer podman-restart.service \
	podman-clean-transient.service postgresql.service sysstat.service cron.service ssh.service \
	remote-fs.target swap.target cryptsetup.target integritysetup.target veritysetup.target; do
	ln -sf /dev/null "$E/system/$u"
done
for u in dirmngr.socket gpg-agent.socket gpg-agent-browser.socket gpg-agent-extra.socket \
	gpg-agent-ssh.socket pk-debconf-helper.socket podman.socket podman-restart.service; do
	ln -sf /dev/null "$E/user/$u"
done
ln -sf /dev/null "$E/user-generators/systemd-xdg-autostart-generator"
for g in /lib/systemd/system-generators/*; do
	case ${g##*/} in systemd-debug-generator | systemd-run-generator) continue ;; esac
	ln -sf /dev/null "$E/system-generators/${g##*/}"
done

qesc() { printf '%s' "${1//,/,,}"; }
virtfs=(-virtfs "local,path=$(qesc "$S"),mount_tag=vmrun,security_model=none")
i=0
for d in ${rw[@]+"${rw[@]}"}; do
	r=$(realpath -e -- "$d") || die "--rw $d: no such directory"
	printf 'rw%d %s\n' "$i" "$r" >> "$S/rw"
	virtfs+=(-virtfs "local,path=$(qesc "$r"),mount_tag=rw$i,security_model=none,multidevs=remap")
	i=$((i + 1))
done

mkfifo "$T/out" "$T/err"
cat -- "$T/out" &
fwd+=($!)
cat -- "$T/err" >&2 &
fwd+=($!)
append="console=ttyS0 panic=-1 oops=panic systemd.unified_cgroup_hierarchy=1"
if [ -n "${VM_DEBUG-}" ]; then append+=" systemd.show_status=1"; else append+=" quiet systemd.show_status=0"; fi
timeout --foreground -k 10 "$timeout" "$QEMU" -accel tcg -cpu max -m "$mem" -smp "$cpus" \
	-nodefaults -no-user-config -display none -no-reboot -pidfile "$T/qemu.pid" \
	-kernel "$kernel" -initrd "$T/initrd" -append "$append" \
	-serial "file:$T/console" -device virtio-serial-pci \
	-chardev "file,id=out,path=$(qesc "$T/out")" -device virtserialport,chardev=out,name=out \
	-chardev "file,id=err,path=$(qesc "$T/err")" -device virtserialport,chardev=err,name=err \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	"${virtfs[@]}" < /dev/null &
tpid=$!
start=$SECONDS
why=
while [ ! -e "$S/booted" ]; do
	kill -0 "$tpid" 2> /dev/null || break
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
if [ -n "${VM_DEBUG-}" ]; then
	cat "$T/console" >&2
	[ -f "$S/journal" ] && cat "$S/journal" >&2
fi
rc=$(cat "$S/rc" 2> /dev/null) || rc=
if [[ $rc =~ ^[0-9]+$ ]]; then
	exit "$rc"
fi
if [ -z "$why" ]; then
	why="no exit status from the VM (qemu exited with $qrc)"
	[ "$qrc" != 124 ] || why="timed out after $timeout s (VM_TIMEOUT)"
fi
msg "VM FAILED: $why; guest console follows"
cat "$T/console" >&2 2> /dev/null || :
exit 125
