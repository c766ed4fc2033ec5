#!/usr/bin/env bash
# The VM test stage (`make test-vm`, and .ci/run after `make test`): boots a Debian 12
# guest (kernel 6.1, cgroup v2, systemd 252, Landlock ABI 2) built by build-rootfs.sh,
# with this checkout shared over virtio-9p at the same path, and runs
# scripts/vm/guest-run.sh in it under real systemd. The guest's output comes back on
# the serial console; its exit status through a results directory shared the same way.
# Needs root (9p passthrough, the rootfs build) and the checkout's .venv (make setup).
# LEEWARD_VM_TIMEOUT: minutes before a hung guest is killed (default 30).
# LEEWARD_VM_PYTEST: what pytest runs in the guest instead of DEFAULT_TESTS.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
log() { echo "leeward-vm: $*"; }
DEFAULT_TESTS="tests/vm tests/unit/limits tests/integration/limits tests/integration/test_limits.py
    tests/integration/test_operations_doctor.py tests/escapes tests/compat"
# Known to fail in the guest, tracked in issue 18 item 4 (it expects limits == "cgroup1",
# the dev VM's); printed on every run. Remove it when its fix lands.
if [ "$(id -u)" -ne 0 ]; then
    log "needs root (to build the guest and share the checkout with 9p passthrough)" >&2
    exit 1
fi
[ -x "$repo/.venv/bin/python" ] || { log "no $repo/.venv: run make setup first" >&2; exit 1; }

missing=()
for p in qemu-system-x86 mmdebstrap e2fsprogs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

t0=$(date +%s)
cache=$(bash "$repo/scripts/vm/build-rootfs.sh" | tail -n1)
t_built=$(date +%s)
log "guest image $cache ready in $((t_built - t0))s"

# KVM when it works, else TCG (slower, same result). /dev/kvm can be there and still
# hang every guest (nested under another hypervisor, e.g. this CI VM's): the probe
# boots the guest kernel without a root, which must reach its "no root" panic.
# TCG emulates a Nehalem (x86-64-v2, numpy's baseline) rather than `max`: with QEMU
# 7.2's AVX emulation numpy's linalg SIGSEGVs (outside any sandbox too) and the pandas
# compat job's pivot comes out different. LEEWARD_VM_TCG_CPU overrides it.
accel=(-accel tcg,thread=multi -cpu "${LEEWARD_VM_TCG_CPU:-Nehalem}")
if [ -w /dev/kvm ] && timeout 20 qemu-system-x86_64 -accel kvm -cpu host -machine q35 -m 512 -nodefaults \
        -no-reboot -display none -serial stdio -kernel "$cache/vmlinuz" -append "console=ttyS0 panic=-1" \
        2>/dev/null | grep -q "Unable to mount root"; then
    accel=(-accel kvm -cpu host)
fi
log "accelerator: ${accel[*]}"

out=$(mktemp -d /tmp/leeward-vm-out.XXXXXX)
# What the guest runs (one pytest argument a line): under TCG the guest is several
# times slower than the host, so by default the part of the suite that differs
# there: limits and cgroups, the units, the escape probes, doctor, compat.
if [ -n "${LEEWARD_VM_PYTEST:-}" ]; then
    printf '%s\n' $LEEWARD_VM_PYTEST > "$out/pytest-args"
else
    printf '%s\n' $DEFAULT_TESTS > "$out/pytest-args"
fi
console="$out/console.log"
: > "$console"
timeout_min=${LEEWARD_VM_TIMEOUT:-30}
# -snapshot: the cached disk is never written; each run boots the same pristine guest.
timeout --kill-after=10 "${timeout_min}m" qemu-system-x86_64 "${accel[@]}" \
    -machine q35 -m 4096 -smp 2 -nodefaults -no-reboot -display none \
    -chardev file,id=console,path="$console" -serial chardev:console \
    -kernel "$cache/vmlinuz" -initrd "$cache/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet loglevel=3 systemd.show_status=error panic=-1 leeward_vm.src=$repo" \
    -drive file="$cache/disk.raw",format=raw,if=virtio,snapshot=on \
    -device virtio-rng-pci -nic none \
    -virtfs local,path="$repo",mount_tag=src,security_model=passthrough,id=src \
    -virtfs local,path="$out",mount_tag=out,security_model=passthrough,id=out &
qemu=$!
trap 'kill "$qemu" 2>/dev/null || true' EXIT
tail -n +1 -f --pid="$qemu" "$console" &
# The guest powers itself off once it wrote its status; should that hang, the status
# is all we need.
while kill -0 "$qemu" 2>/dev/null && [ ! -e "$out/status" ]; do
    sleep 2
done
t_done=$(date +%s)
for _ in $(seq 15); do kill -0 "$qemu" 2>/dev/null || break; sleep 1; done
kill "$qemu" 2>/dev/null || true
wait "$qemu" 2>/dev/null || true

status=$(cat "$out/status" 2>/dev/null || echo "none")
started=$(cat "$out/started" 2>/dev/null || echo "")
if [ -n "$started" ]; then
    log "durations: image $((t_built - t0))s, boot $((started - t_built))s, guest stage $((t_done - started))s"
fi
log "results in $out"
if [ "$status" != "0" ]; then
    log "FAILED (guest status: $status; 'none' means the guest never finished, see $console)" >&2
    exit 1
fi
log "passed"
