#!/bin/bash
# Installed in the guest image as /usr/local/sbin/leeward-vm-boot and run once at
# boot by leeward-vm.service: mounts the host's checkout (9p tag "src") at the path
# it has on the host (so the host's .venv, which names absolute paths, works), and the
# results directory (tag "out"), then runs the checkout's scripts/vm/guest-run.sh.
# Its exit status goes to out/status; no status file means the guest never finished.
set -u
src=$(sed -n 's/.*leeward_vm\.src=\([^ ]*\).*/\1/p' /proc/cmdline)
out=/run/leeward-vm-out
mkdir -p "$src" "$out"
opts=trans=virtio,version=9p2000.L,msize=524288
# The 9p transport can still be probing when this unit starts on a slow or loaded
# host ("special device src does not exist"): load it and wait for both tags.
modprobe -q 9pnet_virtio 2>/dev/null
modprobe -q 9p 2>/dev/null
for _ in $(seq 1 120); do
    tags=$(cat /sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag 2>/dev/null | tr '\0' '\n')
    grep -qx src <<<"$tags" && grep -qx out <<<"$tags" && break
    sleep 0.5
done
mount -t 9p -o "$opts,cache=loose" src "$src" && mount -t 9p -o "$opts" out "$out" || {
    echo "leeward-vm: cannot mount the 9p shares"; exit 1; }
bash "$src/scripts/vm/guest-run.sh" "$src" "$out" 2>&1 | tee "$out/guest.log"
status=${PIPESTATUS[0]}
echo "$status" > "$out/status"
sync
# Power off now: the results are on the host, and nothing in the guest is worth an
# orderly shutdown (which under systemd 252 can wait on the 9p mounts).
echo 1 > /proc/sys/kernel/sysrq
echo o > /proc/sysrq-trigger
