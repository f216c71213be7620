#!/usr/bin/env bash
# scripts/make-sdist.sh [DIR] - the source distribution of the Python package
# (default DIR: build/dist): src/python's sources plus every C source that
# CMake needs to build libcorral (in csrc/), made by the package's own build
# backend (src/python/build_backend/corral_build.py, standard library only).
# `pip install corral-0.1.0.tar.gz` then builds it like a clone does.
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/build/dist}
mkdir -p "$out"
python3 - "$root/src/python/build_backend" "$out" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import corral_build
print(f"{sys.argv[2]}/{corral_build.build_sdist(sys.argv[2])}")
PY
