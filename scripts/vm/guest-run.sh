#!/bin/bash
# The VM stage inside the guest (run by the image's leeward-vm.service, as root, under
# systemd): the pytest selection in $out/pytest-args (written by run.sh) with the cgroup
# v2 backend in force, then the check that nothing cgroup v2 or systemd skipped.
set -uo pipefail
src=$1 out=$2
date +%s > "$out/started"
cd "$src" || exit 1
echo "leeward-vm: guest Linux $(uname -r), $(systemctl --version | head -n1)," \
    "cgroup v2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
mapfile -t tests < "$out/pytest-args"
# pytest runs as the daemon does: alone in a delegated cgroup (a scope with
# Delegate=yes), moved into its `daemon` leaf; every daemon the suite starts inherits
# the leaf, and so finds the delegated root above it (limits/cgroup2.py).
systemd-run --scope --quiet -p Delegate=yes --unit=leeward-suite -- bash -c '
    cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
    mkdir "$cg/daemon" && echo $$ > "$cg/daemon/cgroup.procs" || exit 1
    exec "$@"' leaf .venv/bin/python -m pytest -p no:cacheprovider -q -rs -o console_output_style=classic \
    --junitxml="$out/junit.xml" "${tests[@]}"
status=$?
.venv/bin/python scripts/vm/check-junit.py "$out/junit.xml" || status=1
exit "$status"
