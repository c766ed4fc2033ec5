#!/usr/bin/env bash
# Builds the Debian 12 guest of the VM test stage (see run.sh) from Debian's packages
# and caches it outside the repo, keyed by a hash of this recipe: a second run with the
# same recipe reuses it. Prints the cache directory holding rootfs.tar, disk.raw
# (ext4 of the same tree, booted read-only with -snapshot), vmlinuz and initrd.img.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_base=${LEEWARD_VM_CACHE:-/var/cache/leeward-vm}

# What the suite needs in the guest. Python packages come from the host's .venv,
# shared with the checkout: the guest's python3.11 is the same Debian build.
packages=(
    linux-image-amd64 systemd systemd-sysv dbus libpam-systemd udev kmod
    python3 python3-venv libpython3.11 libseccomp2 libcap2
    gcc libc6-dev pkg-config python3-dev libseccomp-dev libcap-dev
    uidmap procps iproute2 util-linux passwd
)
key=$( { cat "$0" "$here/guest-boot.sh"; } | sha256sum | cut -c1-16)
cache="$cache_base/$key"
if [ -f "$cache/done" ]; then
    echo "$cache"
    exit 0
fi
mkdir -p "$cache_base"
work=$(mktemp -d "$cache_base/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

include=$(IFS=,; echo "${packages[*]}")
# --customize-hook runs with the tree at $1, after every package is installed.
mmdebstrap --variant=minbase --include="$include" \
    --customize-hook='echo leeward-vm > "$1/etc/hostname"' \
    --customize-hook='printf "/dev/vda / ext4 rw,relatime 0 1\n" > "$1/etc/fstab"' \
    --customize-hook='chroot "$1" passwd -d root' \
    --customize-hook='chroot "$1" useradd --create-home --shell /bin/bash --uid 1000 lw' \
    --customize-hook='mkdir -p "$1/var/lib/systemd/linger" && touch "$1/var/lib/systemd/linger/lw"' \
    --customize-hook="install -m 0755 '$here/guest-boot.sh' \"\$1/usr/local/sbin/leeward-vm-boot\"" \
    --customize-hook='cat > "$1/etc/systemd/system/leeward-vm.service" <<UNIT
[Unit]
Description=leeward VM test stage
After=multi-user.target systemd-logind.service user@1000.service
Wants=user@1000.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/leeward-vm-boot
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
Delegate=yes
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT' \
    --customize-hook='chroot "$1" systemctl enable leeward-vm.service' \
    --customize-hook='chroot "$1" systemctl mask serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer' \
    --customize-hook='cp "$1"/boot/vmlinuz-* '"'$work/vmlinuz'"' && cp "$1"/boot/initrd.img-* '"'$work/initrd.img'"' && chmod 0644 '"'$work'"'/*' \
    bookworm "$work/rootfs.tar" http://deb.debian.org/debian

tree="$work/tree"
mkdir "$tree"
tar -C "$tree" -xf "$work/rootfs.tar"
mkfs.ext4 -q -L leeward-vm -d "$tree" "$work/disk.raw" 4G
rm -rf "$tree"
touch "$work/done"
rm -rf "$cache"
mv "$work" "$cache"
trap - EXIT
# Images of older recipes: nothing boots them again (a build.* of a concurrent run is
# left alone).
for old in "$cache_base"/*; do
    case "$(basename "$old")" in
        "$key" | build.*) ;;
        *) [ -f "$old/done" ] && rm -rf "$old" ;;
    esac
done
echo "$cache"
