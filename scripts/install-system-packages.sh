#!/usr/bin/env bash
# Installs the Debian packages leeward needs (gcc and curl: the argv tests build a C
# program and try curl in a sandbox), only those missing, so `make setup`
# works on a fresh machine and is a no-op afterwards.
set -euo pipefail
packages=(python3-dev python3-venv libseccomp2 libseccomp-dev libcap-dev bubblewrap pkg-config valgrind uidmap gcc curl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "leeward setup: missing Debian packages: ${missing[*]} (re-run as root or install them)" >&2
    exit 1
fi
echo "leeward setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
