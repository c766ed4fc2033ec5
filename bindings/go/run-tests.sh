#!/usr/bin/env bash
# Runs the Go binding's tests against this checkout's libleeward.so:
# pkg-config finds leeward.pc in build/lib/pkgconfig, the loader finds the
# library in build/lib. Extra arguments go to `go test` (e.g. -v, -run Timeout).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
lib="$repo/build/lib"
if [ ! -f "$lib/libleeward.so" ] || [ ! -f "$lib/pkgconfig/leeward.pc" ]; then
    echo "run-tests.sh: $lib/libleeward.so or its leeward.pc is missing;" \
         "build it with: $repo/.venv/bin/python $repo/libleeward/build_ffi.py" >&2
    exit 1
fi
export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CGO_ENABLED=1
cd "$here"
exec go test "$@" ./...
