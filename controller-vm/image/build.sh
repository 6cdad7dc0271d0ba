#!/usr/bin/env bash
# Builds the controller-VM appliance: a bootable disk image (raw and qcow2) made offline
# from Debian packages only (debootstrap and apt against the configured mirror) with systemd,
# a Debian kernel pruned to what a VM needs, extlinux, a serial console, our
# linstor-controller and linstor CLI (the packages of scripts/build-debs.sh), and a
# first-boot step that takes the network and controller settings from the kernel command
# line or from a small configuration disk (see controller-vm/README.md).
#
#   controller-vm/image/build.sh [--debug] [--host] [OUTDIR]   (default OUTDIR: target/controller-vm)
#
# Makes OUTDIR/strata-controller-vm.raw (2 GiB, sparse) and .qcow2 (compressed); rebuilt only
# when the packages or this directory change. Needs root (loop devices, mounts, chroot).
#
# --host makes strata-host-vm instead: a hypervisor host's system built the same way, with
# the satellite, DRBD's tools and module, the ordering daemon (strata-vmorder), and the
# controller and client (a stand-in "controller VM" runs the controller on the host itself).
# The tests boot two of them to restart a whole cluster with real systemd units and D-Bus.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
HERE="$ROOT/controller-vm/image"

debug=()
variant=appliance
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) debug=(--debug); shift ;;
        --host) variant=host; shift ;;
        *) break ;;
    esac
done
OUT="${1:-$ROOT/target/controller-vm}"
SUITE="${STRATA_DEBIAN_SUITE:-bookworm}"
MIRROR="${STRATA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SIZE_MIB=2048
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
if [ "$variant" = host ]; then
    NAME=strata-host-vm
    DEBS=(controller client satellite vmorder)
    # The ordering daemon speaks to systemd over the system bus.
    EXTRA=(dbus)
    MODULES=("$HERE/kernel-modules" "$HERE/host-kernel-modules")
    UNITS=(linstor-satellite.service)
else
    NAME=strata-controller-vm
    DEBS=(controller client)
    EXTRA=()
    MODULES=("$HERE/kernel-modules")
    UNITS=(linstor-controller.service var-lib-linstor.mount)
fi

[ "$(id -u)" -eq 0 ] || { echo "run as root (loop devices, mounts, chroot)" >&2; exit 1; }
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v extlinux >/dev/null || need+=(extlinux)
[ -e /usr/lib/syslinux/mbr/mbr.bin ] || need+=(syslinux-common)
command -v sfdisk >/dev/null || need+=(fdisk)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v zerofree >/dev/null || need+=(zerofree)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
mkdir -p "$OUT"

debs=()
for d in "${DEBS[@]}"; do debs+=("target/debian/strata-${d}_$VERSION-1_amd64.deb"); done
if [ ! -e "${debs[-1]}" ] || [ ${#debug[@]} -eq 0 ]; then
    scripts/build-debs.sh "${debug[@]}" >"$OUT/build-debs.log" 2>&1 \
        || { tail -n 30 "$OUT/build-debs.log" >&2; exit 1; }
fi
stamp="$(cat "${debs[@]}" "$HERE"/* | sha256sum | cut -d' ' -f1)"
if [ -s "$OUT/$NAME.qcow2" ] && [ "$(cat "$OUT/$NAME.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "== $NAME: up to date"
    exit 0
fi

work="$(mktemp -d /var/tmp/strata-appliance.XXXXXX)"
mnt="$work/mnt"
loop=""
cleanup() {
    for m in dev/pts dev proc sys ""; do
        mountpoint -q "$mnt/$m" 2>/dev/null && umount "$mnt/$m"
    done
    [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "== disk: $SIZE_MIB MiB, one bootable ext4 partition"
raw="$work/$NAME.raw"
truncate -s "${SIZE_MIB}M" "$raw"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$raw"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
# The partition through a loop device of its own (offset and size), so that no partition
# device nodes are needed on the host.
loop="$(losetup --find --show --offset $((2048 * 512)) --sizelimit $(((SIZE_MIB * 2048 - 2048) * 512)) "$raw")"
part="$loop"
mkfs.ext4 -q -L strata-root "$part"
mkdir -p "$mnt"
mount "$part" "$mnt"

echo "== debootstrap $SUITE (minbase, systemd) from $MIRROR"
debootstrap --variant=minbase --include=systemd-sysv,udev,kmod,e2fsprogs,iproute2 \
    "$SUITE" "$mnt" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
    || { tail -n 30 "$OUT/debootstrap.log" >&2; exit 1; }

mount -t proc proc "$mnt/proc"
mount -t sysfs sysfs "$mnt/sys"
mount --bind /dev "$mnt/dev"
cp /etc/resolv.conf "$mnt/etc/resolv.conf"
mkdir -p "$mnt/tmp/debs"
cp "${debs[@]}" "$mnt/tmp/debs/"

echo "== kernel, initramfs tools and our packages"
# The initramfs holds only what boots a VM from a virtio disk.
mkdir -p "$mnt/etc/initramfs-tools/conf.d"
cp "$HERE/initramfs-modules" "$mnt/etc/initramfs-tools/modules"
printf 'MODULES=list\nCOMPRESS=zstd\n' >"$mnt/etc/initramfs-tools/conf.d/appliance.conf"
chroot "$mnt" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends linux-image-amd64 initramfs-tools zstd \
        systemd-timesyncd ${EXTRA[*]} /tmp/debs/*.deb" >"$OUT/apt.log" 2>&1 \
    || { tail -n 30 "$OUT/apt.log" >&2; exit 1; }

echo "== pruning the kernel's modules to a VM's"
kver="$(ls "$mnt/lib/modules" | head -n 1)"
keep="$work/keep"
# The modules named, and what they depend on.
while read -r m; do
    [ -n "$m" ] && [ "${m#\#}" = "$m" ] || continue
    chroot "$mnt" modprobe -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'
done < <(cat "${MODULES[@]}") | sort -u >"$keep"
find "$mnt/lib/modules/$kver/kernel" -name '*.ko*' | while read -r f; do
    grep -qxF "${f#"$mnt"}" "$keep" || rm -f "$f"
done
find "$mnt/lib/modules/$kver/kernel" -type d -empty -delete
rm -rf "$mnt/lib/firmware"/*
chroot "$mnt" depmod "$kver"
chroot "$mnt" update-initramfs -u -k "$kver" >>"$OUT/apt.log" 2>&1

echo "== the appliance's settings"
install -m 0755 "$HERE/strata-appliance-setup" "$mnt/usr/sbin/strata-appliance-setup"
install -m 0644 "$HERE/strata-appliance-setup.service" "$mnt/etc/systemd/system/"
if [ "$variant" = appliance ]; then
    install -m 0644 "$HERE/var-lib-linstor.mount" "$mnt/etc/systemd/system/"
    mkdir -p "$mnt/etc/systemd/system/linstor-controller.service.d"
    install -m 0644 "$HERE/controller-dropin.conf" \
        "$mnt/etc/systemd/system/linstor-controller.service.d/appliance.conf"
else
    # drbdadm asks about usage counting on a terminal unless told not to.
    sed -i 's/usage-count [a-z]*;/usage-count no;/' "$mnt/etc/drbd.d/global_common.conf"
fi
echo "$NAME" >"$mnt/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$mnt/etc/hosts"
echo "$variant" >"$mnt/etc/strata-image-variant"
printf 'LABEL=strata-root / ext4 defaults,noatime 0 1\n' >"$mnt/etc/fstab"
chroot "$mnt" systemctl enable systemd-networkd.service strata-appliance-setup.service \
    "${UNITS[@]}" >/dev/null 2>&1
# No password: the console logs root in (the appliance has no other account; the host
# that runs it owns it). SSH is not installed.
chroot "$mnt" passwd -d root >/dev/null
mkdir -p "$mnt/etc/systemd/system/serial-getty@ttyS0.service.d"
printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %%I $TERM\n' \
    >"$mnt/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
echo "$VERSION" >"$mnt/etc/strata-appliance-version"

echo "== bootloader (extlinux, serial console)"
mkdir -p "$mnt/boot/extlinux"
cat >"$mnt/boot/extlinux/extlinux.conf" <<EOF
SERIAL 0 115200
DEFAULT appliance
TIMEOUT 1
LABEL appliance
    LINUX /boot/vmlinuz-$kver
    INITRD /boot/initrd.img-$kver
    APPEND root=LABEL=strata-root ro console=tty0 console=ttyS0,115200 quiet
EOF
extlinux --install "$mnt/boot/extlinux" >/dev/null 2>&1

echo "== cleaning up"
rm -rf "$mnt/tmp/debs" "$mnt"/var/lib/apt/lists/* "$mnt"/var/cache/apt/*.bin \
    "$mnt"/var/cache/apt/archives/*.deb "$mnt"/usr/share/doc/* "$mnt"/usr/share/locale/* \
    "$mnt"/usr/share/info/* "$mnt"/usr/share/man/*
: >"$mnt/etc/resolv.conf"
: >"$mnt/etc/machine-id"
used="$(df -m --output=used "$mnt" | tail -n 1 | tr -d ' ')"
sync
umount "$mnt/dev" "$mnt/sys" "$mnt/proc" "$mnt"
# Freed blocks (the downloaded packages, the pruned modules) are zeroed, then made holes of
# the raw file: the qcow2 holds only what is in use.
zerofree "$loop"
losetup -d "$loop"
loop=""
fallocate --dig-holes "$raw"

mv "$raw" "$OUT/$NAME.raw"
qemu-img convert -c -O qcow2 "$OUT/$NAME.raw" "$OUT/$NAME.qcow2"
echo "$stamp" >"$OUT/$NAME.stamp"
echo "== $OUT/$NAME.raw ($SIZE_MIB MiB disk, ${used} MiB used) and $NAME.qcow2 ($(du -m "$OUT/$NAME.qcow2" | cut -f1) MiB)"
