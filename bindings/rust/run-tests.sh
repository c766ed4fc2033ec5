#!/usr/bin/env bash
# Runs the Rust binding's clippy check and tests (unit, against a daemon, and the docs'
# examples) on this checkout's libleeward.so, with a daemon of its own: the examples
# connect to $LEEWARD_SOCKET as a user's program would. Extra arguments go to
# `cargo test` (e.g. -- --nocapture).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
lib="$repo/build/lib"
python="$repo/.venv/bin/python"
if [ ! -f "$lib/libleeward.so" ] || [ ! -f "$lib/pkgconfig/leeward.pc" ] || [ ! -x "$python" ]; then
    echo "run-tests.sh: $lib/libleeward.so, its leeward.pc or $python is missing; run \`make setup\` at $repo" >&2
    exit 1
fi
export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

dir="$(mktemp -d /tmp/leeward-rust-test.XXXXXX)"  # mode 0700, as the daemon wants its socket's
allowed="$dir/allowed"
mkdir "$allowed"
chmod 777 "$allowed"  # a root daemon runs each sandbox as an otherwise unused uid
# This checkout's daemon (not whatever the venv's editable install points at); sessions
# for the tests and doctests that run at once.
PYTHONPATH="$repo/daemon:$repo" "$python" -m leeward_daemon --socket "$dir/s.sock" --workers 2 \
    --allow-path "$allowed" --metrics-port 0 --set max_sessions=8 --set max_sessions_per_uid=8 \
    >"$dir/daemon.log" 2>&1 &
daemon=$!
stop() {
    kill -TERM "$daemon" 2>/dev/null && wait "$daemon" || true
    rm -rf "$dir"
}
trap stop EXIT
ready="import sys; from libleeward.client import Connection; Connection(sys.argv[1], timeout=5).ping()"
for _ in $(seq 900); do  # bound on waiting for readiness (90 s), not a speed assertion
    if ! kill -0 "$daemon" 2>/dev/null; then
        echo "run-tests.sh: the test daemon exited:" >&2; cat "$dir/daemon.log" >&2; exit 1
    fi
    [ -S "$dir/s.sock" ] && PYTHONPATH="$repo" "$python" -c "$ready" "$dir/s.sock" 2>/dev/null && up=1 && break
    sleep 0.1
done
if [ -z "${up:-}" ]; then
    echo "run-tests.sh: the test daemon did not answer:" >&2; cat "$dir/daemon.log" >&2; exit 1
fi
export LEEWARD_SOCKET="$dir/s.sock" LEEWARD_TEST_ALLOWED_DIR="$allowed"
cd "$here"
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked "$@"
