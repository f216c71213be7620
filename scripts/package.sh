#!/usr/bin/env bash
# scripts/package.sh [--test] - build the Debian package of corral with CPack:
# build-pkg/corral_<version>_<arch>.deb, holding the corral command,
# libcorral (shared and static), corral.h, pkg-config and CMake files, the man
# pages corral(1), corral-*(1), libcorral(3), and bash and zsh completion
# (prefix /usr).
#
# --test: install it with dpkg -i on a clean Debian 12 (the qemu VM of
# scripts/vm-test.sh: the host's root read-only under a RAM overlay, pure
# cgroup v2, where corral is not installed), then run `corral check`, a demo
# batch (one task OOM-killed at 64M, the batch's verdict; then the same with a
# retry at a grown limit), `man corral` and the bash completion.
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
test=0
[ "${1:-}" = --test ] && test=1
scripts/install-deps.sh build >/dev/null
cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORRAL_TESTS=OFF \
	-DCORRAL_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build build-pkg -j"$(nproc)" >/dev/null
(cd build-pkg && cpack -G DEB >/dev/null)
deb=$(ls build-pkg/corral_*.deb)
echo "package.sh: $deb"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Architecture\|Depends\):/  \1:/p'
[ $test -eq 1 ] || exit 0

scripts/vm-test.sh -- bash -c '
set -e
deb=$1
test ! -e /usr/bin/corral || { echo "corral is already installed here: not a clean system" >&2; exit 1; }
dpkg -i "$deb" >/dev/null
echo "== dpkg -i done: $(dpkg-query -W -f="\${Package} \${Version}" corral)"
corral --version
corral check
echo "== demo: task 2 needs 200 MiB under -m 64M"
set +e
corral run -j 2 -m 64M --report /tmp/r1.jsonl python3 -c "import sys; b = bytearray(int(sys.argv[1]) << 20); print(\"item\", sys.argv[1], \"done\")" ::: 1 200 3
echo "exit status: $? (137: the OOM kill of task 2 is the verdict)"
corral run -j 2 -m 64M --retries 1 --memory-growth 4 python3 -c "import sys; b = bytearray(int(sys.argv[1]) << 20); print(\"item\", sys.argv[1], \"done\")" ::: 1 200 3
echo "exit status: $? (0: task 2 retried at 256 MiB)"
set -e
man -w corral corral-run libcorral
MANWIDTH=80 man corral 2>/dev/null | head -5
test -f /usr/share/bash-completion/completions/corral
test -f /usr/share/zsh/vendor-completions/_corral
pkg-config --modversion corral
echo "== the package works on a clean system"
' _ "$root/$deb"
