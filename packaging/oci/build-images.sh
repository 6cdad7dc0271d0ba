#!/usr/bin/env bash
# Builds the OCI images of the suite from Debian packages only: a root file system made by
# debootstrap from the configured Debian mirror, our packages (target/debian/, built by
# scripts/build-debs.sh) installed into it with apt, then `docker import` with the image's
# entry point, ports and volumes. No registry is used.
#
#   packaging/oci/build-images.sh [--debug] [--no-import] [--tag TAG]
#
# Makes target/oci/<image>.tar (the root file system) and target/oci/<image>.changes (one
# Dockerfile instruction per line, for `docker import --change`), then imports them into the
# docker of DOCKER_HOST as strata/<image>:TAG (default: the version) unless --no-import:
#
#   linstor-controller   ENTRYPOINT linstor-controller; EXPOSE 3370 3371; VOLUME /var/lib/linstor
#   linstor-satellite    ENTRYPOINT linstor-satellite; EXPOSE 3366; VOLUME /var/lib/linstor-satellite
#                        (with drbd-utils, lvm2, thin-provisioning-tools, e2fsprogs, xfsprogs, kmod)
#   linstor-client       ENTRYPOINT linstor (no command: the interactive mode)
#
# The root file systems are rebuilt only when the packages changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

debug=()
import=1
tag=""
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) debug=(--debug) ;;
        --no-import) import=0 ;;
        --tag) tag="$2"; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }

SUITE="${STRATA_DEBIAN_SUITE:-bookworm}"
MIRROR="${STRATA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
OUT="$ROOT/target/oci"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
tag="${tag:-$VERSION}"
mkdir -p "$OUT"

if [ ! -e target/debian/strata-controller_"$VERSION"-1_amd64.deb ] || [ ${#debug[@]} -eq 0 ]; then
    scripts/build-debs.sh "${debug[@]}" >"$OUT/build-debs.log" 2>&1 \
        || { tail -n 30 "$OUT/build-debs.log" >&2; exit 1; }
fi
debs_sum="$(cat target/debian/strata-{controller,satellite,client}_"$VERSION"-1_amd64.deb | sha256sum | cut -d' ' -f1)"

# image name, our packages, Debian packages, Dockerfile instructions
images=(
    "linstor-controller|strata-controller|-|ENTRYPOINT [\"/usr/bin/linstor-controller\"]
EXPOSE 3370 3371
VOLUME [\"/var/lib/linstor\"]"
    "linstor-satellite|strata-satellite|lvm2 thin-provisioning-tools e2fsprogs xfsprogs kmod|ENTRYPOINT [\"/usr/bin/linstor-satellite\"]
EXPOSE 3366
VOLUME [\"/var/lib/linstor-satellite\"]"
    "linstor-client|strata-client|-|ENTRYPOINT [\"/usr/bin/linstor\"]"
)

# The minimal Debian system every image starts from, made once per mirror and suite.
base="$OUT/base-$SUITE.tar"
if [ ! -s "$base" ]; then
    echo "== debootstrap $SUITE (minbase) from $MIRROR"
    tmp="$(mktemp -d /var/tmp/strata-oci-base.XXXXXX)"
    debootstrap --variant=minbase "$SUITE" "$tmp/root" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
        || { tail -n 30 "$OUT/debootstrap.log" >&2; rm -rf "$tmp"; exit 1; }
    tar -C "$tmp/root" -cf "$base.part" .
    mv "$base.part" "$base"
    rm -rf "$tmp"
fi

build_root() {
    local name="$1" ours="$2" extra="$3"
    local tmp root
    tmp="$(mktemp -d /var/tmp/strata-oci-"$name".XXXXXX)"
    root="$tmp/root"
    mkdir -p "$root"
    tar -C "$root" -xf "$base"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mkdir -p "$root/tmp/debs"
    cp target/debian/"$ours"_"$VERSION"-1_amd64.deb "$root/tmp/debs/"
    mount -t proc proc "$root/proc"
    local pkgs="/tmp/debs/${ours}_$VERSION-1_amd64.deb"
    [ "$extra" = "-" ] || pkgs="$pkgs $extra"
    if ! chroot "$root" /bin/sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs" \
        >"$OUT/$name.apt.log" 2>&1; then
        umount "$root/proc"
        tail -n 30 "$OUT/$name.apt.log" >&2
        rm -rf "$tmp"
        return 1
    fi
    umount "$root/proc"
    # What an image does not need: package lists, caches, documentation, translations.
    rm -rf "$root"/tmp/debs "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/usr/share/doc/* "$root"/usr/share/locale/* "$root"/usr/share/info/*
    : >"$root/etc/resolv.conf"
    tar -C "$root" -cf "$OUT/$name.tar.part" .
    mv "$OUT/$name.tar.part" "$OUT/$name.tar"
    rm -rf "$tmp"
}

for spec in "${images[@]}"; do
    IFS='|' read -r name ours extra changes <<<"$spec"
    # `read` takes one line: the instructions are the lines after the first.
    changes="$(printf '%s\n' "$spec" | sed -n '1s/^[^|]*|[^|]*|[^|]*|//p; 2,$p')"
    stamp="$OUT/$name.debs"
    if [ -s "$OUT/$name.tar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$debs_sum" ]; then
        echo "== $name: up to date"
    else
        echo "== $name: building the root file system"
        build_root "$name" "$ours" "$extra"
        echo "$debs_sum" >"$stamp"
    fi
    printf '%s\nLABEL org.opencontainers.image.version=%s\n' "$changes" "$VERSION" >"$OUT/$name.changes"
    if [ "$import" = 1 ]; then
        args=()
        while IFS= read -r line; do [ -n "$line" ] && args+=(--change "$line"); done <"$OUT/$name.changes"
        docker import "${args[@]}" "$OUT/$name.tar" "strata/$name:$tag" >/dev/null
        echo "== strata/$name:$tag imported ($(du -h "$OUT/$name.tar" | cut -f1) uncompressed)"
    fi
done
