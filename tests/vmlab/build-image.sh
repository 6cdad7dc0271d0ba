#!/usr/bin/env bash
# build-image.sh [OUTDIR] -- prepare everything the VM test tier needs.
#
# Result (in OUTDIR, default ${STRATA_VMLAB_DIR:-/var/cache/strata-vmlab}):
#   qemu/                 qemu-system-x86 7.2 unpacked from the Debian packages
#   vmlinuz               the Debian 6.1 kernel (the one linux-image-amd64 depends on)
#   vmlinux               the same kernel uncompressed (ELF with a PVH entry): qemu starts it
#                         directly, skipping ~3 s of XZ self-decompression under emulation
#   kernel/               the unpacked kernel package (modules, depmod'ed)
#   initramfs.cpio.gz     busybox + lvm2 + thin tools + drbd-utils + kmod + e2fsprogs,
#                         (initramfs.cpio: the same archive uncompressed; boots ~1.5 s faster)
#                         their shared libraries, the kernel modules, tests/vmlab/init as /init
#   VERSIONS              versions of everything above (for test data headers)
#   env.sh                shell variables: QEMU, QEMU_MODULE_DIR, KERNEL, INITRD, ...
#   stamps/               one stamp per step; a step re-runs only when its key changes
#
# Every step is cached: a second run with everything in place finishes in well under 2 s.
# Any failure stops the script with a non-zero status and a message saying which step failed.
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-${STRATA_VMLAB_DIR:-/var/cache/strata-vmlab}}"
ARCH_TRIPLET=x86_64-linux-gnu

say()  { printf 'vmlab-build: %s\n' "$*"; }
die()  { printf 'vmlab-build: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'echo "vmlab-build: command failed (status $?): $BASH_COMMAND" >&2' ERR
trap 'rc=$?; [ $rc -eq 0 ] || printf "vmlab-build: FAILED (exit %s) in step \"%s\"\n" "$rc" "${STEP:-setup}" >&2' EXIT

[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get, dpkg-deb, device files in the image)"
mkdir -p "$OUT/stamps" || die "cannot create $OUT"
OUT="$(cd "$OUT" && pwd)"

# stamp_ok NAME KEY: true when step NAME already ran with the same KEY.
stamp_ok()  { [ -f "$OUT/stamps/$1" ] && [ "$(cat "$OUT/stamps/$1")" = "$2" ]; }
stamp_set() { printf '%s' "$2" >"$OUT/stamps/$1"; }

# ---------------------------------------------------------------------------
# Step 1: host packages.
# qemu runtime libraries and firmware (qemu-system-x86 itself is NOT installed: it
# conflicts with the preinstalled qemu-utils 10; see step 2), and the tools copied
# into the image.
# ---------------------------------------------------------------------------
STEP=host-packages
HOST_PKGS=(
  # firmware and data for qemu 7.2
  seabios ipxe-qemu qemu-system-data
  # shared libraries qemu-system-x86 7.2 links against
  libaio1 libbpf1 libcapstone4 libfdt1 libfuse3-3 libglib2.0-0 libgmp10 libgnutls30
  libibverbs1 libjpeg62-turbo libnuma1 libpixman-1-0 libpmem1 libpng16-16 librdmacm1
  libsasl2-2 libseccomp2 libslirp0 libudev1 liburing2 libvdeplug2 libcap-ng0
  # what goes into the image
  busybox-static lvm2 dmsetup thin-provisioning-tools drbd-utils kmod e2fsprogs
  util-linux mount
  # the HA overlay (ha.cpio.gz): corosync, pacemaker and the resource agents
  corosync pacemaker pacemaker-cli-utils resource-agents psmisc
  # building the image
  cpio gzip xz-utils
)
host_key="$(printf '%s ' "${HOST_PKGS[@]}")"
if stamp_ok host-packages "$host_key" && dpkg-query -W -f '${Status}\n' "${HOST_PKGS[@]}" 2>/dev/null | grep -qv 'install ok installed' ; then
  rm -f "$OUT/stamps/host-packages"   # something was removed since the stamp was written
fi
if stamp_ok host-packages "$host_key"; then
  say "host packages: present (cached)"
else
  missing=()
  for p in "${HOST_PKGS[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "host packages: installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; then
      say "host packages: install failed; running apt-get update once and retrying"
      apt-get update || die "apt-get update failed"
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
    fi
  else
    say "host packages: all installed"
  fi
  stamp_set host-packages "$host_key"
fi

# apt_download DIR PKG...: fetch .deb files into DIR (apt-get download, no install).
apt_download() {
  local dir="$1"; shift
  mkdir -p "$dir"
  # The sandbox user _apt cannot write into root-owned directories; download as root.
  if ! (cd "$dir" && apt-get -q -o APT::Sandbox::User=root download "$@"); then
    say "apt-get download $* failed; running apt-get update once and retrying"
    apt-get update || die "apt-get update failed"
    (cd "$dir" && apt-get -q -o APT::Sandbox::User=root download "$@") || die "apt-get download $* failed"
  fi
}

# ---------------------------------------------------------------------------
# Which versions to fetch. apt-cache takes over a second per call here, so the answers are
# cached until the package lists change (their directory's mtime is the key).
# ---------------------------------------------------------------------------
STEP=resolve
apt_key="lists=$(stat -c %Y /var/lib/apt/lists)"
if [ -f "$OUT/stamps/resolved" ] && [ "$(head -n1 "$OUT/stamps/resolved")" = "# $apt_key" ]; then
  # shellcheck disable=SC1091
  . "$OUT/stamps/resolved"
else
  say "resolving package versions with apt-cache"
  candidate() { apt-cache policy "$1" | awk '/Candidate:/ {print $2}'; }
  QEMU_VER="$(candidate qemu-system-x86)"
  BB_VER="$(candidate busybox)"
  KPKG="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
  [ -n "$KPKG" ] || die "cannot find the kernel package linux-image-amd64 depends on"
  KPKG_VER="$(candidate "$KPKG")"
  for v in "$QEMU_VER" "$BB_VER" "$KPKG_VER"; do
    [ -n "$v" ] && [ "$v" != "(none)" ] || die "apt-cache has no candidate for qemu-system-x86, busybox or $KPKG"
  done
  printf '# %s\nQEMU_VER=%q\nBB_VER=%q\nKPKG=%q\nKPKG_VER=%q\n' "$apt_key" "$QEMU_VER" "$BB_VER" "$KPKG" "$KPKG_VER" \
    >"$OUT/stamps/resolved"
fi
KVER="${KPKG#linux-image-}"

# ---------------------------------------------------------------------------
# Step 2: qemu-system-x86 7.2, downloaded and unpacked (never installed).
# ---------------------------------------------------------------------------
STEP=qemu
if stamp_ok qemu "$QEMU_VER" && [ -x "$OUT/qemu/usr/bin/qemu-system-x86_64" ]; then
  say "qemu $QEMU_VER: present (cached)"
else
  say "qemu $QEMU_VER: downloading qemu-system-x86 and qemu-system-common"
  rm -rf "$OUT/qemu" "$OUT/debs/qemu"
  apt_download "$OUT/debs/qemu" "qemu-system-x86=$QEMU_VER" "qemu-system-common=$QEMU_VER"
  for deb in "$OUT"/debs/qemu/*.deb; do
    say "qemu: unpacking $(basename "$deb")"
    dpkg-deb -x "$deb" "$OUT/qemu" || die "dpkg-deb -x $deb failed"
  done
  missing_libs="$(ldd "$OUT/qemu/usr/bin/qemu-system-x86_64" | grep 'not found' || true)"
  [ -z "$missing_libs" ] || die "qemu-system-x86_64 misses libraries: $missing_libs"
  QEMU_MODULE_DIR="$OUT/qemu/usr/lib/$ARCH_TRIPLET/qemu" "$OUT/qemu/usr/bin/qemu-system-x86_64" --version \
    || die "unpacked qemu does not run"
  rm -rf "$OUT/debs/qemu"
  stamp_set qemu "$QEMU_VER"
fi

# ---------------------------------------------------------------------------
# Step 3: the kernel linux-image-amd64 depends on, unpacked and depmod'ed.
# ---------------------------------------------------------------------------
STEP=kernel
if stamp_ok kernel "$KPKG=$KPKG_VER" && [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/vmlinux" ] \
   && [ -f "$OUT/kernel/lib/modules/$KVER/modules.dep" ]; then
  say "kernel $KPKG $KPKG_VER: present (cached)"
else
  say "kernel: downloading $KPKG $KPKG_VER (about 70 MB)"
  rm -rf "$OUT/kernel" "$OUT/debs/kernel"
  apt_download "$OUT/debs/kernel" "$KPKG=$KPKG_VER"
  say "kernel: unpacking"
  dpkg-deb -x "$OUT"/debs/kernel/*.deb "$OUT/kernel" || die "dpkg-deb -x of the kernel failed"
  # Debian's usrmerge layout: the package may ship lib/modules or usr/lib/modules.
  if [ ! -d "$OUT/kernel/lib/modules/$KVER" ] && [ -d "$OUT/kernel/usr/lib/modules/$KVER" ]; then
    mkdir -p "$OUT/kernel/lib/modules" && ln -s "../../usr/lib/modules/$KVER" "$OUT/kernel/lib/modules/$KVER"
  fi
  [ -d "$OUT/kernel/lib/modules/$KVER" ] || die "kernel package has no lib/modules/$KVER"
  say "kernel: depmod $KVER"
  depmod -b "$OUT/kernel" "$KVER" || die "depmod failed"
  cp "$OUT/kernel/boot/vmlinuz-$KVER" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
  # The bzImage carries the kernel as an XZ stream (CONFIG_KERNEL_XZ); unpacked, it is an ELF
  # with a PVH entry note (CONFIG_PVH), which qemu -kernel boots without the decompressor.
  say "kernel: extracting the uncompressed vmlinux (PVH boot)"
  xz_at="$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$OUT/vmlinuz" | cut -d: -f1 || true)"
  [ -n "$xz_at" ] || die "no XZ stream in vmlinuz (kernel compression changed?)"
  tail -c +$((xz_at + 1)) "$OUT/vmlinuz" >"$OUT/vmlinux.xz.tmp"
  # --single-stream: the bzImage has more bytes after the stream
  xz -dc --single-stream "$OUT/vmlinux.xz.tmp" >"$OUT/vmlinux.tmp" || die "cannot decompress the kernel in vmlinuz"
  rm -f "$OUT/vmlinux.xz.tmp"
  [ "$(head -c4 "$OUT/vmlinux.tmp" | od -An -c | tr -d ' ')" = '177ELF' ] || die "extracted vmlinux is no ELF file"
  mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
  rm -rf "$OUT/debs/kernel"
  stamp_set kernel "$KPKG=$KPKG_VER"
fi

# ---------------------------------------------------------------------------
# Step 4: the busybox for the image.
# Debian's busybox-static is built with FEATURE_SH_STANDALONE/PREFER_APPLETS: its shell runs
# its own applets even when PATH has the real program, so in the guest shell `modprobe`,
# `losetup`, `blockdev`, `mke2fs`, `blkid`, ... would silently be busybox's versions. The
# binary of Debian's `busybox` package (same upstream version, dynamically linked against libc)
# honours PATH. It conflicts with busybox-static on the host, so it is only downloaded and unpacked.
# ---------------------------------------------------------------------------
STEP=busybox
BUSYBOX="$OUT/busybox/bin/busybox"
if stamp_ok busybox "$BB_VER" && [ -x "$BUSYBOX" ]; then
  say "busybox $BB_VER: present (cached)"
else
  say "busybox $BB_VER: downloading (dynamic build, PATH-honouring shell)"
  rm -rf "$OUT/busybox" "$OUT/debs/busybox"
  apt_download "$OUT/debs/busybox" "busybox=$BB_VER"
  dpkg-deb -x "$OUT"/debs/busybox/*.deb "$OUT/busybox" || die "dpkg-deb -x of busybox failed"
  [ -x "$BUSYBOX" ] || die "busybox package has no bin/busybox"
  rm -rf "$OUT/debs/busybox"
  stamp_set busybox "$BB_VER"
fi
rmdir "$OUT/debs" 2>/dev/null || true

# ---------------------------------------------------------------------------
# Step 5: the initramfs.
# ---------------------------------------------------------------------------
STEP=initramfs
# Modules the guest loads at boot (init) or on demand; their dependency closure is copied.
MODULES=(virtio_pci virtio_blk virtio_net virtio_console virtio-rng
         dm-mod dm-thin-pool dm-snapshot dm-bufio dm-cache dm-cache-smq dm-writecache
         drbd ext4 loop crc32c_generic crc32c-intel libcrc32c)
# Programs copied from the host (with symlinks as the host has them), overriding busybox.
PROGRAMS=(
  /usr/sbin/lvm /usr/sbin/dmsetup /usr/sbin/pdata_tools
  /usr/sbin/drbdadm /usr/sbin/drbdsetup /usr/sbin/drbdmeta
  /usr/lib/drbd/drbdadm-84 /usr/lib/drbd/drbdsetup-84
  /usr/bin/kmod
  /usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/resize2fs /usr/sbin/tune2fs /usr/sbin/dumpe2fs
  /usr/sbin/losetup /usr/sbin/blockdev /usr/sbin/wipefs /usr/sbin/blkid /usr/bin/lsblk
)
# Symlinks NAME -> TARGET created in the image (the host has them as symlinks or hard links).
LVM_NAMES="lvchange lvconvert lvcreate lvdisplay lvextend lvmconfig lvmdiskscan lvreduce lvremove
  lvrename lvresize lvs lvscan pvchange pvck pvcreate pvdisplay pvmove pvremove pvresize pvs pvscan
  vgcfgbackup vgcfgrestore vgchange vgck vgconvert vgcreate vgdisplay vgexport vgextend vgimport
  vgimportclone vgmerge vgmknodes vgreduce vgremove vgrename vgs vgscan vgsplit"
PDATA_NAMES="cache_check cache_dump cache_metadata_size cache_repair cache_restore cache_writeback
  era_check era_dump era_invalidate era_restore thin_check thin_delta thin_dump thin_ls
  thin_metadata_size thin_repair thin_restore thin_rmap thin_trim"
KMOD_NAMES="depmod insmod lsmod modinfo modprobe rmmod"
E2FS_NAMES="mkfs.ext2 mkfs.ext3 mkfs.ext4 fsck.ext2 fsck.ext3 fsck.ext4"
# Libraries a dynamically linked project binary (the satellite) needs besides what the tools pull
# in: the host's glibc pieces and libgcc_s; /bin/bash's closure as well (bash itself is not copied).
EXTRA_LIBS=(libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1
            libresolv.so.2 libutil.so.1 libnss_files.so.2 libnss_dns.so.2)
EXTRA_ELF=(/bin/bash)

for p in "${PROGRAMS[@]}" "${EXTRA_ELF[@]}" "$HERE/init"; do
  [ -e "$p" ] || die "missing on the host: $p"
done
pkgvers="$(dpkg-query -W -f '${Package}=${Version} ' busybox-static lvm2 dmsetup thin-provisioning-tools \
  drbd-utils kmod e2fsprogs util-linux mount libc6 libgcc-s1)"
self_sum="$(cat "$0" "$HERE/init" | sha256sum | cut -c1-16)"
initrd_key="$KVER busybox=$BB_VER $pkgvers $self_sum"
if stamp_ok initramfs "$initrd_key" && [ -s "$OUT/initramfs.cpio.gz" ] && [ -s "$OUT/initramfs.cpio" ]; then
  say "initramfs: present (cached)"
else
  t0=$(date +%s.%N)
  R="$OUT/rootfs"
  say "initramfs: staging in $R"
  rm -rf "$R"
  mkdir -p "$R"/usr/{bin,sbin,lib/$ARCH_TRIPLET,lib64,lib/drbd,share/udhcpc}
  chmod 755 "$R"   # the archive's "." entry sets the mode of the guest's / (the kernel's default is 1777)
  # usrmerge layout like the host, so host paths (/lib/..., /sbin/...) are valid in the guest.
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done
  mkdir -p "$R"/{dev,proc,sys,run,tmp,root,mnt,etc/lvm,etc/drbd.d,etc/vmlab.d,var/lib/drbd,var/log}
  chmod 1777 "$R/tmp"
  # The kernel opens /dev/console before /init runs (devtmpfs is mounted only by /init).
  mknod -m 600 "$R/dev/console" c 5 1
  mknod -m 666 "$R/dev/null" c 1 3
  ln -s ../run "$R/var/run"
  ln -s ../run/lock "$R/var/lock"

  # busybox first: an applet link for every applet, then real tools replace some of them.
  cp "$BUSYBOX" "$R/usr/bin/busybox"
  n=0
  while read -r path; do
    [ -n "$path" ] || continue
    case "$path" in linuxrc|*/busybox) continue ;; esac
    [ -e "$R/$path" ] || [ -L "$R/$path" ] || { ln -s /usr/bin/busybox "$R/$path"; n=$((n+1)); }
  done < <("$BUSYBOX" --list-full)
  say "initramfs: busybox with $n applet links"

  # copy_prog HOSTPATH: copy a binary to the same path in the image (replacing applet links).
  copy_prog() {
    local src="$1" dst="$R$1"
    mkdir -p "$(dirname "$dst")"
    rm -f "$dst"
    cp -L "$src" "$dst"
  }
  for p in "${PROGRAMS[@]}"; do copy_prog "$p"; done
  link_all() { # TARGET NAMES...
    local tgt="$1" dir name; shift
    dir="$(dirname "$tgt")"
    for name in "$@"; do rm -f "$R$dir/$name"; ln -s "$(basename "$tgt")" "$R$dir/$name"; done
  }
  # shellcheck disable=SC2086
  link_all /usr/sbin/lvm $LVM_NAMES
  # shellcheck disable=SC2086
  link_all /usr/sbin/pdata_tools $PDATA_NAMES
  # shellcheck disable=SC2086
  link_all /usr/sbin/mke2fs $E2FS_NAMES
  for name in $KMOD_NAMES; do rm -f "$R/usr/sbin/$name"; ln -s /usr/bin/kmod "$R/usr/sbin/$name"; done
  # drbdadm (9.x) runs drbdadm-84 from /lib/drbd when /proc/drbd reports 8.4; keep both names valid.
  cp /etc/mke2fs.conf "$R/etc/mke2fs.conf"

  # Shared libraries: the ldd closure of every dynamically linked file, plus EXTRA_LIBS.
  libs_file="$(mktemp)"
  while IFS= read -r -d '' f; do
    if [ -f "$f" ] && [ ! -L "$f" ] && head -c4 "$f" | grep -q 'ELF'; then
      ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^[ \t]*\/[^ ]+ \(/ {print $1}' >>"$libs_file" || true
      if ldd "$f" 2>/dev/null | grep -q 'not found'; then die "$f: $(ldd "$f" | grep 'not found')"; fi
    fi
  done < <(find "$R/usr/bin" "$R/usr/sbin" "$R/usr/lib/drbd" -type f -print0)
  for e in "${EXTRA_ELF[@]}"; do
    ldd "$e" | awk '/=> \// {print $3} /^[ \t]*\/[^ ]+ \(/ {print $1}' >>"$libs_file"
  done
  for l in "${EXTRA_LIBS[@]}"; do
    [ -e "/lib/$ARCH_TRIPLET/$l" ] && echo "/lib/$ARCH_TRIPLET/$l" >>"$libs_file"
  done
  nlibs=0
  while read -r lib; do
    [ -e "$lib" ] || die "library $lib listed by ldd does not exist"
    dst="$R$lib"
    mkdir -p "$(dirname "$dst")"
    [ -e "$dst" ] || { cp -L "$lib" "$dst"; nlibs=$((nlibs+1)); }
  done < <(sort -u "$libs_file")
  rm -f "$libs_file"
  [ -e "$R/lib64/ld-linux-x86-64.so.2" ] || die "the dynamic loader did not make it into the image"
  say "initramfs: $nlibs shared libraries"

  # Kernel modules: the closure of MODULES, then depmod on the image.
  KSRC="$OUT/kernel/lib/modules/$KVER"
  KDST="$R/usr/lib/modules/$KVER"
  mkdir -p "$KDST"
  for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ -f "$KSRC/$f" ] && cp "$KSRC/$f" "$KDST/$f"
  done
  mods_file="$(mktemp)"
  for m in "${MODULES[@]}"; do
    modprobe -d "$OUT/kernel" -S "$KVER" --show-depends "$m" >>"$mods_file" \
      || die "modprobe --show-depends $m failed (module not in $KPKG?)"
  done
  nmods=0
  while read -r kind path _; do
    [ "$kind" = insmod ] || continue
    rel="${path#*/lib/modules/"$KVER"/}"
    mkdir -p "$(dirname "$KDST/$rel")"
    [ -e "$KDST/$rel" ] || { cp "$path" "$KDST/$rel"; nmods=$((nmods+1)); }
  done < <(sort -u "$mods_file")
  rm -f "$mods_file"
  depmod -b "$R" "$KVER" || die "depmod on the image failed"
  [ -s "$KDST/modules.dep" ] || die "modules.dep missing in the image"
  say "initramfs: $nmods kernel modules for $KVER"

  # Configuration files.
  cat >"$R/etc/lvm/lvm.conf" <<'EOF'
# lvm.conf for the vmlab guest: no udev, no daemons.
devices {
    # There is no udev database: scan /dev directly.
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    use_devicesfile = 0
    # LVM below DRBD, as DRBD's guide configures it: LVM never opens DRBD devices (a scan
    # that holds one open for a moment makes a demotion fail with "held open by someone").
    global_filter = [ "r|^/dev/drbd|" ]
}
activation {
    # Without these, lvcreate waits for udev and then fails ("device not cleared").
    udev_sync = 0
    udev_rules = 0
    verify_udev_operations = 0
    # No dmeventd in the guest.
    monitoring = 0
}
global {
    use_lvmpolld = 0
    thin_check_executable = "/usr/sbin/thin_check"
    thin_dump_executable = "/usr/sbin/thin_dump"
    thin_repair_executable = "/usr/sbin/thin_repair"
    cache_check_executable = "/usr/sbin/cache_check"
    cache_dump_executable = "/usr/sbin/cache_dump"
    cache_repair_executable = "/usr/sbin/cache_repair"
}
EOF
  cat >"$R/etc/drbd.conf" <<'EOF'
# DRBD configuration of the vmlab guest: global options plus one file per resource.
include "drbd.d/global_common.conf";
include "drbd.d/*.res";
EOF
  cat >"$R/etc/drbd.d/global_common.conf" <<'EOF'
# Without "usage-count no" drbdadm create-md stops at an interactive survey prompt.
global {
    usage-count no;
}
common {
}
EOF
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\ndisk:x:6:\n' >"$R/etc/group"
  printf 'vmlab\n' >"$R/etc/hostname"
  printf '127.0.0.1\tlocalhost\n' >"$R/etc/hosts"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$R/etc/nsswitch.conf"
  printf '/bin/sh\n' >"$R/etc/shells"
  ln -s /proc/self/mounts "$R/etc/mtab"
  # udhcpc calls this script with $1 = deconfig|bound|renew and the lease in variables.
  cat >"$R/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# Minimal udhcpc hook: apply the lease to the interface, the default route and resolv.conf.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done ;;
esac
exit 0
EOF
  chmod 755 "$R/usr/share/udhcpc/default.script"
  install -m 755 "$HERE/init" "$R/init"

  {
    echo "kernel $KVER ($KPKG $KPKG_VER)"
    echo "qemu $QEMU_VER"
    echo "busybox $BB_VER (binary of Debian's busybox package)"
    for p in lvm2 thin-provisioning-tools drbd-utils kmod e2fsprogs libc6; do
      dpkg-query -W -f '${Package} ${Version}\n' "$p"
    done
  } >"$R/etc/vmlab-versions"

  # Sanity: run the copied tools through the image's loader and libraries (chroot on the host).
  for t in "lvm version" "drbdadm --version" "modprobe --version" "mke2fs -V" "thin_check -V" \
           "losetup --version" "blockdev --help" "sh -c true"; do
    env -i PATH=/usr/sbin:/usr/bin chroot "$R" /bin/sh -c "$t" >/dev/null 2>&1 \
      || die "in the image, '$t' does not run (chroot test)"
  done
  out="$(env -i PATH=/usr/sbin:/usr/bin chroot "$R" /bin/sh -c '/usr/lib/drbd/drbdsetup-84 2>&1; type modprobe')" || true
  case "$out" in *"USAGE: drbdsetup-84"*) ;; *) die "in the image, drbdsetup-84 does not run: $out" ;; esac
  case "$out" in *"modprobe is /usr/sbin/modprobe"*) ;; *) die "in the image, the shell does not find kmod's modprobe: $out" ;; esac

  say "initramfs: packing (cpio newc, gzip)"
  (cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet --reproducible) \
    >"$OUT/initramfs.cpio.tmp" || die "cpio failed"
  gzip -n -6 <"$OUT/initramfs.cpio.tmp" >"$OUT/initramfs.cpio.gz.tmp" || die "gzip failed"
  mv "$OUT/initramfs.cpio.tmp" "$OUT/initramfs.cpio"
  mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
  cp "$R/etc/vmlab-versions" "$OUT/VERSIONS"
  t1=$(date +%s.%N)
  say "initramfs: $(du -h "$OUT/initramfs.cpio.gz" | cut -f1) written in $(awk "BEGIN{printf \"%.1f\", $t1-$t0}") s"
  stamp_set initramfs "$initrd_key"
fi

# ---------------------------------------------------------------------------
# Step: the HA overlay, ha.cpio.gz, laid over the image by the tests that need it (the
# Pacemaker test): corosync, pacemaker's daemons and tools, the OCF resource agents
# (heartbeat's, pacemaker's and LINBIT's drbd agent from drbd-utils), their libraries,
# pacemaker's schemas, the hacluster user and haclient group, and their directories.
# ---------------------------------------------------------------------------
STEP=ha-overlay
HA_PROGRAMS=(
  /usr/sbin/corosync /usr/sbin/corosync-cfgtool /usr/sbin/corosync-quorumtool
  /usr/sbin/corosync-cmapctl /usr/sbin/pacemakerd
  /usr/lib/pacemaker/pacemaker-attrd /usr/lib/pacemaker/pacemaker-based
  /usr/lib/pacemaker/pacemaker-controld /usr/lib/pacemaker/pacemaker-execd
  /usr/lib/pacemaker/pacemaker-fenced /usr/lib/pacemaker/pacemaker-schedulerd
  /usr/sbin/crm_mon /usr/sbin/crm_resource /usr/sbin/crm_attribute /usr/sbin/crm_node
  /usr/sbin/cibadmin /usr/sbin/crm_verify /usr/sbin/attrd_updater /usr/sbin/crm_failcount
  /usr/sbin/crm_standby /usr/sbin/crm_error /usr/sbin/stonith_admin /usr/sbin/crm_master
  /usr/sbin/crm_simulate
  # the Filesystem agent kills a mount's users with psmisc's fuser (busybox has none here)
  # and checks with util-linux's fsck; LINBIT's drbd agent is a bash script
  /usr/bin/fuser /usr/sbin/fsck /usr/bin/bash
)
ha_pkgs="$(dpkg-query -W -f '${Package}=${Version} ' corosync pacemaker pacemaker-cli-utils resource-agents drbd-utils psmisc)"
ha_key="$ha_pkgs $self_sum"
if stamp_ok ha-overlay "$ha_key" && [ -s "$OUT/ha.cpio.gz" ]; then
  say "HA overlay: present (cached)"
else
  H="$OUT/ha-root"
  rm -rf "$H"
  mkdir -p "$H"
  for p in "${HA_PROGRAMS[@]}"; do
    [ -e "$p" ] || die "missing on the host: $p (packages corosync pacemaker pacemaker-cli-utils)"
    mkdir -p "$H$(dirname "$p")"
    cp -L "$p" "$H$p"
  done
  mkdir -p "$H/usr/share" "$H/usr/lib"
  cp -a /usr/share/pacemaker "$H/usr/share/"
  cp -a /usr/lib/ocf "$H/usr/lib/"
  libs_file="$(mktemp)"
  while IFS= read -r -d '' f; do
    if [ -f "$f" ] && head -c4 "$f" | grep -q 'ELF'; then
      ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^[ \t]*\/[^ ]+ \(/ {print $1}' >>"$libs_file" || true
      if ldd "$f" 2>/dev/null | grep -q 'not found'; then die "$f: $(ldd "$f" | grep 'not found')"; fi
    fi
  done < <(find "$H" -type f -print0)
  while read -r lib; do
    # What the base image has already stays out of the overlay. The image's /lib is a link
    # to /usr/lib: an overlay entry "lib" would replace that link with a directory.
    [ -e "$OUT/rootfs$lib" ] && continue
    dst="$H/usr${lib#/usr}"
    mkdir -p "$(dirname "$dst")"
    [ -e "$dst" ] || cp -L "$lib" "$dst"
  done < <(sort -u "$libs_file")
  for top in lib lib64 bin sbin; do
    [ ! -e "$H/$top" ] || die "the HA overlay has a top-level $top: it would replace the image's link"
  done
  rm -f "$libs_file"
  # The daemons' user and group, with the host's numbers (the files above belong to them).
  hc_uid="$(id -u hacluster)"; hc_gid="$(getent group haclient | cut -d: -f3)"
  mkdir -p "$H/etc"
  cp "$OUT/rootfs/etc/passwd" "$H/etc/passwd"
  cp "$OUT/rootfs/etc/group" "$H/etc/group"
  echo "hacluster:x:$hc_uid:$hc_gid::/var/lib/pacemaker:/bin/false" >>"$H/etc/passwd"
  echo "haclient:x:$hc_gid:hacluster" >>"$H/etc/group"
  mkdir -p "$H/var/lib/pacemaker/cib" "$H/var/lib/pacemaker/pengine" \
           "$H/var/lib/pacemaker/blackbox" "$H/var/lib/pacemaker/cores" \
           "$H/var/log/pacemaker" "$H/var/lib/corosync" "$H/etc/corosync" "$H/var/log/cluster"
  chown -R "$hc_uid:$hc_gid" "$H/var/lib/pacemaker" "$H/var/log/pacemaker"
  chmod 750 "$H/var/lib/pacemaker/cib"
  say "HA overlay: packing"
  (cd "$H" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet --reproducible) \
    | gzip -n -6 >"$OUT/ha.cpio.gz.tmp" || die "packing the HA overlay failed"
  mv "$OUT/ha.cpio.gz.tmp" "$OUT/ha.cpio.gz"
  say "HA overlay: $(du -h "$OUT/ha.cpio.gz" | cut -f1)"
  stamp_set ha-overlay "$ha_key"
fi

STEP="env"
cat >"$OUT/env.sh.tmp" <<EOF
# Generated by tests/vmlab/build-image.sh: source this to run the vmlab qemu.
VMLAB_DIR='$OUT'
QEMU='$OUT/qemu/usr/bin/qemu-system-x86_64'
QEMU_MODULE_DIR='$OUT/qemu/usr/lib/$ARCH_TRIPLET/qemu'
# boot.sh uses the fast pair (uncompressed kernel with PVH entry, uncompressed initramfs);
# boot.sh --compat the classic pair (bzImage, gzip'ed initramfs).
KERNEL='$OUT/vmlinux'
INITRD='$OUT/initramfs.cpio'
KERNEL_BZIMAGE='$OUT/vmlinuz'
INITRD_GZ='$OUT/initramfs.cpio.gz'
KVER='$KVER'
export QEMU_MODULE_DIR
EOF
if ! cmp -s "$OUT/env.sh.tmp" "$OUT/env.sh" 2>/dev/null; then mv "$OUT/env.sh.tmp" "$OUT/env.sh"; else rm -f "$OUT/env.sh.tmp"; fi
say "ready: $OUT (kernel $KVER, qemu $QEMU_VER)"
