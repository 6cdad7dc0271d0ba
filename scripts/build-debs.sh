#!/usr/bin/env bash
# Builds the Debian packages of the suite, one per role, into target/debian/:
#   strata-controller  strata-satellite  strata-client
#   strata-docker-volume  strata-proxmox  strata-opennebula  strata-cinder  strata-vmorder
# with their systemd units, default settings under /etc/linstor (conffiles), manual pages and
# shell completions (generated from the programs' own command trees).
#
#   scripts/build-debs.sh            release build (what `make deb` runs)
#   scripts/build-debs.sh --debug    package the debug build (quicker; the tests use it)
#
# Needs cargo-deb (installed with `cargo install cargo-deb` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
bin=target/release
fast=()
if [ "${1:-}" = "--debug" ]; then
    profile=dev
    bin=target/debug
    fast=(--fast)
fi
packages=(strata-controller strata-satellite strata-cli strata-docker-volume strata-proxmox
    strata-opennebula strata-cinder strata-vmorder)

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version >/dev/null 2>&1; then
    echo "== installing cargo-deb $CARGO_DEB_VERSION"
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
fi

# strata-vmorder links libvirt's C library.
if ! pkg-config --exists libvirt 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvirt-dev pkg-config
fi

echo "== building the programs ($profile)"
cargo build --workspace --bins --quiet --profile "$profile"

echo "== manual pages and shell completions"
gen=target/packaging
rm -rf "$gen"
mkdir -p "$gen/man" "$gen/completions"
"$bin/linstor" --generate-man "$gen/man" >/dev/null
"$bin/linstor-controller" --generate-man "$gen/man" >/dev/null
"$bin/linstor-satellite" --generate-man "$gen/man" >/dev/null
"$bin/strata-vmorder" --generate-man "$gen/man" >/dev/null
gzip -9n "$gen"/man/*
"$bin/linstor" --generate-completion bash >"$gen/completions/linstor.bash"
"$bin/linstor" --generate-completion zsh >"$gen/completions/_linstor"
"$bin/linstor" --generate-completion fish >"$gen/completions/linstor.fish"

echo "== packages"
mkdir -p target/debian
for p in "${packages[@]}"; do
    cargo deb --quiet --no-build --profile "$profile" "${fast[@]}" -p "$p" -o target/debian/
done
ls -l target/debian/*.deb
