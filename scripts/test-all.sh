#!/usr/bin/env bash
# Sets up what the tests need on a fresh machine (as root) and runs every test tier:
# formatting, lints, unit tests, cluster tests on loop devices, the CLI, python-linstor, the
# Docker volume plugin against a real dockerd, the Proxmox and OpenNebula drivers through those
# platforms' own code, and the virtual-machine tier.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "The cluster tests use loop devices and need root: run it as root." >&2
    exit 1
fi

need_apt=()
command -v losetup >/dev/null || need_apt+=(util-linux)
command -v mkfs.ext4 >/dev/null || need_apt+=(e2fsprogs)
command -v mkfs.xfs >/dev/null || need_apt+=(xfsprogs)
command -v fio >/dev/null || need_apt+=(fio)
command -v drbdadm >/dev/null || need_apt+=(drbd-utils)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v tail >/dev/null || need_apt+=(coreutils)
# OpenNebula's driver processes (tests/harness/opennebula/) are Ruby; blkid checks file systems.
command -v ruby >/dev/null || need_apt+=(ruby)
command -v blkid >/dev/null || need_apt+=(util-linux)
# The system datastore's context CD is OpenNebula's own ssh driver's: xorriso makes it.
command -v xorriso >/dev/null || need_apt+=(xorriso)
# The Cinder driver's image copies go through qemu-img; the PostgreSQL server runs as its
# user through setpriv.
command -v qemu-img >/dev/null || need_apt+=(qemu-utils)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
# The packages are installed into a fresh Debian root made by debootstrap.
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
# The controller-VM appliance image: a partitioned disk with extlinux, zeroed free space,
# and a vfat configuration disk in its test.
command -v extlinux >/dev/null || need_apt+=(extlinux)
[ -e /usr/lib/syslinux/mbr/mbr.bin ] || need_apt+=(syslinux-common)
command -v sfdisk >/dev/null || need_apt+=(fdisk)
command -v zerofree >/dev/null || need_apt+=(zerofree)
command -v mkfs.vfat >/dev/null || need_apt+=(dosfstools)
command -v mcopy >/dev/null || need_apt+=(mtools)
# strata-vmorder links libvirt's C library (the virt crate finds it with pkg-config).
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
pkg-config --exists libvirt 2>/dev/null || need_apt+=(libvirt-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# The controller VM under libvirt: Debian's libvirtd and QEMU (the test starts libvirtd when
# none runs). Debian's qemu-system-x86 replaces a newer qemu-utils where one was installed:
# qemu-img then comes back from Debian too.
need_libvirt=()
command -v libvirtd >/dev/null || need_libvirt+=(libvirt-daemon-system libvirt-daemon-driver-qemu)
command -v virsh >/dev/null || need_libvirt+=(libvirt-clients)
[ -x /usr/bin/qemu-system-x86_64 ] || need_libvirt+=(qemu-system-x86)
if [ ${#need_libvirt[@]} -gt 0 ]; then
    echo "== installing ${need_libvirt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_libvirt[@]}"
    command -v qemu-img >/dev/null \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-utils
fi

# The Docker volume plugin is tested against a real dockerd; its containers run busybox.
need_docker=()
command -v dockerd >/dev/null || need_docker+=(docker.io)
[ -x /bin/busybox ] || need_docker+=(busybox-static)
if [ ${#need_docker[@]} -gt 0 ]; then
    echo "== installing ${need_docker[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_docker[@]}"
fi

# The Proxmox plugin is tested through the real Proxmox storage layer (tests/harness/pve/),
# which needs these Perl modules from Debian.
if ! tests/harness/pve/run-pve.sh --check-deps >/dev/null 2>&1; then
    echo "== installing the Perl modules of the Proxmox storage layer"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjson-perl libclone-perl \
        libencode-locale-perl libfile-chdir-perl libposix-strptime-perl libfilesys-df-perl \
        libtimedate-perl libdevel-cycle-perl libhttp-message-perl liblinux-inotify2-perl \
        libxml-libxml-perl libstring-shellquote-perl libnet-ip-perl libnetaddr-ip-perl \
        libnet-dbus-perl libanyevent-perl liburi-perl libwww-perl libio-socket-ssl-perl \
        libnet-ssleay-perl libyaml-libyaml-perl librrds-perl
fi

# The Cinder driver is tested through Cinder's own volume manager and test base: Debian's
# python3-cinder (Cinder 21) with the test libraries its test base imports.
if ! /usr/bin/python3 -c 'import cinder.tests.unit.test, cinder.volume.manager' >/dev/null 2>&1; then
    echo "== installing python3-cinder"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3-cinder python3-fixtures python3-testtools python3-oslotest
fi
# os-brick reads the system's UUID with dmidecode when it describes this host.
command -v dmidecode >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dmidecode

# The controller is tested on PostgreSQL too (Debian's server, run by the tests).
[ -d /usr/lib/postgresql ] && id -u postgres >/dev/null 2>&1 \
    || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
# ... and on etcd (Debian's etcd-server; the tests run their own members on loopback).
command -v etcd >/dev/null \
    || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server; }

# Loop devices are created on demand through /dev/loop-control.
[ -e /dev/loop-control ] || modprobe loop

venv="target/python-linstor-venv"
# python-linstor is a client under test; prometheus_client parses the /metrics answers and
# sseclient-py reads the event streams in the tests.
if [ ! -x "$venv/bin/python" ] \
    || ! "$venv/bin/python" -c 'import linstor, prometheus_client, sseclient' 2>/dev/null; then
    echo "== installing python-linstor 1.29.1, prometheus-client, sseclient-py into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check python-linstor==1.29.1 \
        prometheus-client==0.21.1 sseclient-py==1.8.0
fi
export STRATA_PYTHON="$PWD/$venv/bin/python"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== build"
cargo build --workspace --bins --quiet
echo "== Debian packages (scripts/build-debs.sh --debug; the packages test installs them)"
scripts/build-debs.sh --debug >target/build-debs.log 2>&1 \
    || { tail -n 40 target/build-debs.log >&2; echo "building the packages failed" >&2; exit 1; }
# The VM tier (device-mapper and DRBD live only in guests): qemu, a Debian kernel and an
# initramfs from Debian packages, cached under STRATA_VMLAB_DIR.
echo "== VM image (tests/vmlab/build-image.sh, cached)"
tests/vmlab/build-image.sh "${STRATA_VMLAB_DIR:-/var/cache/strata-vmlab}" >target/vmlab-build.log 2>&1 \
    || { tail -n 40 target/vmlab-build.log >&2; echo "building the VM image failed" >&2; exit 1; }
echo "== tests"
# Everything a test needs is installed above: a test that would skip for a missing need
# (root, loop devices, drbd-utils, dockerd, the VM image, python-linstor) fails here instead.
export STRATA_TESTS_REQUIRE_ALL=1
cargo test --workspace --quiet
echo "== the cluster tests again, with the controller's state in PostgreSQL"
STRATA_TEST_DB=postgresql cargo test -p strata-tests --quiet --test cluster --test crash \
    --test snapshot --test drbd --test bad_input --test cli --test rconn --test error_reports \
    --test python_linstor --test security
echo "== the cluster tests again, with the controller's state in etcd"
STRATA_TEST_DB=etcd cargo test -p strata-tests --quiet --test cluster --test crash \
    --test snapshot --test drbd --test bad_input --test cli --test rconn --test error_reports \
    --test python_linstor --test security
echo "== benchmark smoke run (debug build, small scale; figures are not meaningful here)"
target/debug/bench --quick
echo "== all tests passed"
