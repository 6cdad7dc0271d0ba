//! Everything a satellite needs to drive DRBD 9, as pure and tested code.
//!
//! - [`config`]: the data a satellite receives for one DRBD resource ([`config::Resource`]) and
//!   what only the local node knows ([`config::Local`]).
//! - [`res`]: renders a resource into a DRBD 9 `.res` file that `drbdadm` 9.22 accepts, refusing
//!   names and values that would break the file's syntax.
//! - [`meta`]: the size of DRBD 9 internal metadata, and from it the usable size of a backing
//!   device and the backing size a wanted usable size needs.
//! - [`adm`]: the `drbdadm`/`drbdmeta`/`drbdsetup` command sequences, through
//!   `strata_exec::CommandRunner`, with typed errors.
//! - [`events`]: parsing of `drbdsetup events2` lines and the state they add up to.
//! - [`version`]: what the host can do (kernel module and utils versions), as pure parsers plus
//!   one detection function.
//!
//! Facts measured on this project's machines (drbd-utils 9.22.0, no DRBD kernel module):
//!
//! - `drbdadm` picks the `on <host>` section by `uname -n`; the environment variable
//!   `__DRBD_NODE__` overrides that name (it prints "PRETENDING that I am >>name<<" on stderr).
//!   Our runners clear the environment, so production code never sets it; tests use it to check
//!   configurations written for other nodes.
//! - `drbdadm -c FILE dump RES` parses and prints a resource (without the override, for a
//!   resource with no `on` section for this host it answers "'RES' not defined in your config
//!   (for this host)", exit status 1); `sh-nop` parses every resource without caring which host
//!   this is. Both work without the kernel module.
//! - drbdadm runs `drbdsetup`/`drbdmeta` from the directory it was started from: started by
//!   absolute path (as our runners do), its dry run prints `/usr/sbin/drbdsetup …`.
//! - `drbdadm -d` (dry run) prints the `drbdsetup`/`drbdmeta` commands of `create-md`, `up`,
//!   `adjust`, `down`, `primary`, `secondary`, `resize`, `wipe-md`, `new-current-uuid` on stdout
//!   without the module; `adjust` then shows the whole `up` sequence since the kernel knows
//!   nothing. Without `-d`, `up` first refuses an `address` not configured on this host (exit
//!   status 10, "IP … not found on this host"). Then whatever reaches the kernel fails with
//!   "Failed to modprobe drbd" on stderr: `drbdsetup` itself and `drbdadm status`/`primary`
//!   exit with 20, `drbdadm up`/`adjust` with 1 ("Command 'drbdsetup new-resource …' terminated
//!   with exit code 20"), and `drbdadm down` succeeds (there is nothing to take down).
//! - `drbdmeta` works on loop devices without the module (`create-md`, `dump-md`, `dstate`,
//!   `wipe-md`); see [`meta`] and [`adm::has_metadata`]. `create-md` also records the backing
//!   device of the minor in `/var/lib/drbd/drbd-minor-N.lkbd`.

pub mod adm;
pub mod config;
pub mod events;
pub mod meta;
pub mod res;
pub mod version;

#[cfg(test)]
pub(crate) mod testutil;
