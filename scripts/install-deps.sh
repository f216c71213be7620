#!/usr/bin/env bash
# install-deps.sh [build|test|bench|slurm|browser|all] - install the Debian 12
# packages corral needs, only those missing. Idempotent and quiet when everything is
# there.
#   build    compiler, CMake, pkg-config, libcgroup, libseccomp, cmocka, python3,
#            libsystemd (sd-bus: optional for corral, used when present); npm (and
#            so nodejs) when there is no npm command: `npm ci` fetches the chart
#            library of `corral report --html` at build time
#   test     build + clang-format, clang (libFuzzer), valgrind, qemu + busybox
#            (the pure cgroup v2 VM lane), systemd + dbus + logind's PAM module +
#            podman/crun (they run only inside the systemd VM lane), GNU parallel
#            (the CLI tests compare corral's expansion with its own),
#            python3-jsonschema (the report schema), GNU time (peak RSS),
#            shellcheck-free
#   bench    build + GNU parallel, hyperfine
#   slurm    build + Slurm 22.05 and munge for scripts/slurm-cluster.sh (the
#            packaged daemons are not started: policy-rc.d below)
#   browser  build + chromium (the `report` lane: the HTML report in a browser)
#   all      everything
set -euo pipefail
what=${1:-build}

build=(gcc libc6-dev make cmake pkg-config libcgroup-dev libseccomp-dev libcmocka-dev python3
       libsystemd-dev)
test=(clang-format clang libclang-rt-14-dev valgrind qemu-system-x86 busybox-static xz-utils zstd
      binutils procps iproute2 util-linux parallel
      systemd dbus dbus-user-session libpam-systemd podman crun)
bench=(parallel hyperfine bc time)
slurm=(slurmctld slurmd slurm-client munge)
# the Python package: pip into fresh venvs, joblib's backend under scikit-learn
test+=(python3-venv python3-joblib python3-sklearn)
# the Python table: joblib vendors loky; pebble
bench+=(python3-joblib python3-pebble)
browser=(chromium)
# npm from Debian only when none is there (a nodejs from elsewhere may bundle it).
command -v npm >/dev/null 2>&1 || build+=(npm)
test+=(python3-jsonschema time)

case $what in
	build) want=("${build[@]}") ;;
	test) want=("${build[@]}" "${test[@]}") ;;
	bench) want=("${build[@]}" "${bench[@]}") ;;
	slurm) want=("${build[@]}" "${slurm[@]}") ;;
	browser) want=("${build[@]}" "${browser[@]}") ;;
	all) want=("${build[@]}" "${test[@]}" "${bench[@]}" "${slurm[@]}" "${browser[@]}") ;;
	*) echo "usage: $0 [build|test|bench|slurm|browser|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$s" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages with daemons (slurmctld, slurmd, munge) must not start them: the
# tests run their own (scripts/slurm-cluster.sh). A policy-rc.d that says 101
# keeps invoke-rc.d from starting anything for the duration of the install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
