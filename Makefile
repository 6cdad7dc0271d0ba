# Shortcuts for the scripts in scripts/.
.PHONY: all deb deb-debug images quickstart test

all:
	cargo build --workspace --release --bins

# The Debian packages, one per role, into target/debian/ (needs cargo-deb; installed if missing).
deb:
	scripts/build-debs.sh

deb-debug:
	scripts/build-debs.sh --debug

# The OCI images (controller, satellite, client) from the packages, imported into docker.
images: deb
	packaging/oci/build-images.sh

quickstart:
	scripts/quickstart.sh

test:
	scripts/test-all.sh
