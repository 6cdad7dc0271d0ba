#!/usr/bin/env bash
# boot.sh -- boot one vmlab VM with its serial console on this terminal (or on pipes).
#
# usage: boot.sh [options]
#   --name NAME         guest host name (vm.hostname), also selects the MAC addresses (default: vmlab)
#   --addr IP/LEN       address of the data NIC eth0 inside the guest (vm.addr), e.g. 10.99.0.1/24
#   --listen PORT       data link: listen on 127.0.0.1:PORT for the other VM (start this one first)
#   --connect PORT      data link: connect to the VM listening on 127.0.0.1:PORT
#   --fwd HOSTPORT      forward 127.0.0.1:HOSTPORT on the host to guest port 3366 (user NIC eth1)
#   --fwd-rest HOSTPORT forward 127.0.0.1:HOSTPORT on the host to guest port 3370 (a controller)
#   --disk PATH[:SIZE]  virtio disk /dev/vda; a missing PATH is created sparse (raw) with SIZE (default 1G)
#   --mem MB            memory (default 1024)
#   --extra CPIO.GZ     append this gzip'ed newc cpio to the initramfs (repeatable); its files
#                       overlay the image, e.g. etc/vmlab.d/50-start plus a binary
#   --batch             console for programs: no echo, no prompts (vm.batch=1)
#   --verbose           show kernel boot messages (no "quiet")
#   --compat            boot the bzImage (vmlinuz) and initramfs.cpio.gz instead of the faster
#                       uncompressed pair (vmlinux with PVH entry, initramfs.cpio)
#   --append ARGS       more kernel command line (e.g. vm.mgmt=dhcp)
#   --dir DIR           image directory (default ${STRATA_VMLAB_DIR:-/var/cache/strata-vmlab})
#
# Leave qemu with Ctrl-A x (or `poweroff -f` in the guest). boot.sh execs qemu, so its PID is
# qemu's PID: a program that started it stops the VM by killing that PID.
set -euo pipefail

die() { echo "boot.sh: $*" >&2; exit 2; }

NAME=vmlab ADDR='' LISTEN='' CONNECT='' FWD='' FWD_REST='' DISK='' MEM=1024 BATCH=0 QUIET=quiet APPEND='' COMPAT=0
DIR="${STRATA_VMLAB_DIR:-/var/cache/strata-vmlab}"
EXTRAS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --addr) ADDR="$2"; shift 2 ;;
    --listen) LISTEN="$2"; shift 2 ;;
    --connect) CONNECT="$2"; shift 2 ;;
    --fwd) FWD="$2"; shift 2 ;;
    --fwd-rest) FWD_REST="$2"; shift 2 ;;
    --disk) DISK="$2"; shift 2 ;;
    --mem) MEM="$2"; shift 2 ;;
    --extra) EXTRAS+=("$2"); shift 2 ;;
    --batch) BATCH=1; shift ;;
    --verbose) QUIET=; shift ;;
    --compat) COMPAT=1; shift ;;
    --append) APPEND="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[ -f "$DIR/env.sh" ] || die "$DIR/env.sh missing: run tests/vmlab/build-image.sh first"
# shellcheck disable=SC1091
. "$DIR/env.sh"
[ -z "$LISTEN" ] || [ -z "$CONNECT" ] || die "--listen and --connect exclude each other"
if [ "$COMPAT" = 1 ]; then KERNEL="$KERNEL_BZIMAGE" INITRD="$INITRD_GZ"; fi
[ -f "$KERNEL" ] && [ -f "$INITRD" ] || die "$KERNEL or $INITRD missing: run tests/vmlab/build-image.sh"
case "$NAME" in *[!A-Za-z0-9-]*|"") die "--name must be letters, digits and '-'" ;; esac

# Two VMs on one link need different MACs (qemu's default is the same for every instance).
h=$(printf '%s' "$NAME" | cksum | cut -d' ' -f1)
MACTAIL=$(printf '%02x:%02x' $(( (h >> 8) & 255 )) $(( h & 255 )))

# The initramfs: the image, optionally followed by extra archives. The kernel unpacks
# concatenated (separately compressed) cpio archives in order; later files replace earlier ones.
# The concatenation lives in a deleted temporary file that qemu reads through an inherited fd.
INITRD_ARG="$INITRD"
if [ ${#EXTRAS[@]} -gt 0 ]; then
  tmp="$(mktemp "${TMPDIR:-/tmp}/vmlab-initrd.XXXXXX")"
  cat "$INITRD" "${EXTRAS[@]}" >"$tmp" || { rm -f "$tmp"; die "cannot concatenate the initramfs"; }
  exec 7<"$tmp"
  rm -f "$tmp"
  INITRD_ARG=/proc/self/fd/7
fi

ARGS=(
  -accel tcg                # software emulation; the host's KVM (kvm_pvm) hangs before the kernel runs
  -machine pc               # i440fx: simpler and slightly faster to boot than q35
  -cpu max                  # every feature TCG can emulate (SSE4.2 for crc32c-intel, ...)
  -smp 1                    # one vCPU: two VMs and a build fit on two host cores
  -m "$MEM"                 # memory in MiB
  -nographic                # no display; serial console and qemu monitor multiplexed on stdio
  -vga none                 # no graphics card at all
  -no-reboot                # a guest reboot (or a panic, with panic=-1) ends qemu instead of rebooting
  -L /usr/share/seabios -L /usr/share/qemu   # firmware search path (bios, option ROMs, keymaps)
  -kernel "$KERNEL"         # direct kernel boot, no boot loader (an ELF vmlinux enters via PVH)
  -initrd "$INITRD_ARG"
  -device virtio-rng-pci    # entropy from the host
)
# Data NIC (eth0, PCI slot 3, probed first): an L2 link to the other VM over a TCP socket on
# loopback. romfile= : no iPXE option ROM (not needed for direct kernel boot, saves time).
if [ -n "$LISTEN$CONNECT" ]; then
  if [ -n "$LISTEN" ]; then sock="listen=127.0.0.1:$LISTEN"; else sock="connect=127.0.0.1:$CONNECT"; fi
  ARGS+=(-netdev "socket,id=data,$sock"
         -device "virtio-net-pci,netdev=data,mac=52:54:00:99:$MACTAIL,romfile=,addr=0x3")
fi
# Management NIC (eth1, slot 4): qemu's user-mode network (slirp; guest 10.0.2.15, host seen
# as 10.0.2.2); optionally the host's 127.0.0.1:FWD reaches guest port 3366 (the satellite's).
user="user,id=mgmt"
[ -z "$FWD" ] || user="$user,hostfwd=tcp:127.0.0.1:$FWD-:3366"
# ... and 127.0.0.1:FWD_REST the guest's port 3370 (a controller's REST API there).
[ -z "$FWD_REST" ] || user="$user,hostfwd=tcp:127.0.0.1:$FWD_REST-:3370"
ARGS+=(-netdev "$user" -device "virtio-net-pci,netdev=mgmt,mac=52:54:00:02:$MACTAIL,romfile=,addr=0x4")
# Disk (/dev/vda, slot 5). cache=unsafe: host flushes are skipped; the disk is scratch space.
if [ -n "$DISK" ]; then
  path="${DISK%%:*}" size=1G
  [ "$path" = "$DISK" ] || size="${DISK#*:}"
  [ -e "$path" ] || truncate -s "$size" "$path" || die "cannot create $path"
  ARGS+=(-drive "file=$path,if=none,id=disk0,format=raw,cache=unsafe"
         -device "virtio-blk-pci,drive=disk0,serial=vmlab-$NAME,addr=0x5")
fi
if [ -n "$LISTEN$CONNECT" ] && [ -z "$ADDR" ]; then
  echo "boot.sh: note: data link without --addr; eth0 stays unconfigured" >&2
fi
# Kernel command line: console on the first serial port; panic=-1 reboots at once on a panic,
# which -no-reboot turns into qemu exiting; mitigations=off saves time under emulation.
CMDLINE="console=ttyS0 panic=-1 mitigations=off $QUIET vm.hostname=$NAME"
[ -z "$ADDR" ] || CMDLINE="$CMDLINE vm.addr=$ADDR"
[ "$BATCH" = 0 ] || CMDLINE="$CMDLINE vm.batch=1"
[ -z "$APPEND" ] || CMDLINE="$CMDLINE $APPEND"
ARGS+=(-append "$CMDLINE")

exec "$QEMU" "${ARGS[@]}"
