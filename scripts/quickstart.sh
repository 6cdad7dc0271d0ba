#!/usr/bin/env bash
# Builds the suite and brings up a working cluster on this machine: a controller with its
# embedded database, two satellites on 127.0.0.1 with FILE_THIN pools, and a 2 GiB volume
# spawned from a resource group, formatted, mounted and written to.
#
#   scripts/quickstart.sh          start (again) and show the volume
#   scripts/quickstart.sh stop     stop the cluster and detach its volumes
#
# Everything lives under $QUICKSTART_DIR (default /var/lib/strata-quickstart). With the
# Debian packages installed (scripts/build-debs.sh), QUICKSTART_BIN=/usr/bin runs the
# installed programs instead of building. QUICKSTART_PORT (3370) and QUICKSTART_SAT_PORT
# (3366; beta takes the next one) choose the ports.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DIR="${QUICKSTART_DIR:-/var/lib/strata-quickstart}"
CTRL_PORT="${QUICKSTART_PORT:-3370}"
BIN="${QUICKSTART_BIN:-$ROOT/target/debug}"
SAT_PORT="${QUICKSTART_SAT_PORT:-3366}"
SAT_PORT_B=$((SAT_PORT + 1))
export LS_CONTROLLERS="127.0.0.1:$CTRL_PORT"

if [ "$(id -u)" -ne 0 ]; then
    echo "The satellites attach loop devices and need root: run it as root." >&2
    exit 1
fi

stop_pid() {
    local f="$DIR/$1.pid"
    if [ -f "$f" ]; then
        local pid
        pid="$(cat "$f")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$f"
    fi
}

stop_all() {
    mountpoint -q "$DIR/mnt" 2>/dev/null && umount "$DIR/mnt"
    stop_pid controller
    stop_pid satellite-alpha
    stop_pid satellite-beta
    # Detach the loop devices of this cluster's pools, and only those.
    losetup --list --noheadings --raw --output NAME,BACK-FILE 2>/dev/null |
        while read -r dev file; do
            case "$file" in "$DIR"/*) losetup --detach "$dev" ;; esac
        done
}

if [ "${1:-}" = "stop" ]; then
    stop_all
    echo "quickstart cluster stopped (data kept in $DIR)"
    exit 0
fi

for tool in losetup mkfs.ext4; do
    if ! command -v "$tool" >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux e2fsprogs
        break
    fi
done
[ -e /dev/loop-control ] || modprobe loop

if [ -z "${QUICKSTART_BIN:-}" ]; then
    # The controller-VM ordering daemon links libvirt's C library.
    if ! pkg-config --exists libvirt 2>/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvirt-dev pkg-config
    fi
    echo "== building"
    cargo build --workspace --bins --quiet
fi

stop_all
mkdir -p "$DIR/controller" "$DIR/alpha" "$DIR/beta" "$DIR/mnt"

start() {
    local name="$1"; shift
    "$@" >>"$DIR/$name.log" 2>&1 &
    echo $! >"$DIR/$name.pid"
}
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1; see the logs in $DIR" >&2
    exit 1
}

echo "== starting controller (port $CTRL_PORT) and satellites alpha ($SAT_PORT) and beta ($SAT_PORT_B)"
touch "$DIR/linstor.toml" "$DIR/linstor_satellite.toml"
start controller "$BIN/linstor-controller" --config "$DIR/linstor.toml" --listen-addr 127.0.0.1 \
    --port "$CTRL_PORT" --data-dir "$DIR/controller"
start satellite-alpha "$BIN/linstor-satellite" --config "$DIR/linstor_satellite.toml" \
    --listen-addr 127.0.0.1 --port "$SAT_PORT" --state-dir "$DIR/alpha/state"
start satellite-beta "$BIN/linstor-satellite" --config "$DIR/linstor_satellite.toml" \
    --listen-addr 127.0.0.1 --port "$SAT_PORT_B" --state-dir "$DIR/beta/state"
wait_port "$CTRL_PORT"; wait_port "$SAT_PORT"; wait_port "$SAT_PORT_B"

linstor() { "$BIN/linstor" "$@"; }
run() { echo "\$ linstor $*"; linstor "$@"; }

# Each satellite made a one-time join token at its first start; the controller joins it
# with that token over TLS (node create --join-token), and from then on both sides accept
# only each other's certificates.
token() { cat "$DIR/$1/state/tls/join-token"; }
if ! linstor -m node list | grep -q '"alpha"'; then
    run node create alpha 127.0.0.1 --node-type combined --satellite-port "$SAT_PORT" \
        --join-token "$(token alpha)"
    run node create beta 127.0.0.1 --satellite-port "$SAT_PORT_B" --join-token "$(token beta)"
    run storage-pool create filethin alpha pool_file "$DIR/alpha/pool"
    run storage-pool create filethin beta pool_file "$DIR/beta/pool"
    run resource-group create my_ssd_group --storage-pool pool_file --place-count 1
    run volume-group create my_ssd_group
    run resource-group spawn-resources my_ssd_group my_ssd_res 2G
fi
# A cluster made before the satellites spoke TLS: join them now.
for n in alpha beta; do
    if [ ! -e "$DIR/$n/state/tls/node.crt" ]; then
        run node join-token "$n" --token "$(token "$n")"
    fi
done
for _ in $(seq 100); do
    linstor -m node list | grep -q '"OFFLINE"' || break
    sleep 0.1
done
run node list
run storage-pool list
run resource list
run volume list

dev="$(linstor -m volume list -r my_ssd_res | grep -o '"device_path": *"[^"]*"' | head -n 1 |
    sed 's/.*: *"\(.*\)"/\1/')"
[ -n "$dev" ] || { echo "the volume of my_ssd_res has no device; see the logs in $DIR" >&2; exit 1; }
echo "== using $dev"
blkid "$dev" >/dev/null 2>&1 || mkfs.ext4 -q "$dev"
mount "$dev" "$DIR/mnt"
date >"$DIR/mnt/hello.txt"
sync
echo "== written and read back from $DIR/mnt/hello.txt: $(cat "$DIR/mnt/hello.txt")"
echo
echo "The cluster keeps running. Try: LS_CONTROLLERS=$LS_CONTROLLERS $BIN/linstor resource list"
echo "Stop it with: $0 stop"
