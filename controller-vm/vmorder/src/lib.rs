//! `strata-vmorder`: start-up ordering on a hypervisor host whose cluster's controller runs in a
//! VM on the cluster's own storage. See `docs/controller-vm.md`.
//!
//! - `config`: `/etc/linstor/vmorder.toml`.
//! - `decide`: what to do, from what DRBD and the hypervisor show (pure).
//! - `drbd`: this host's DRBD state (`drbdsetup events2`), promotion and demotion.
//! - `hypervisor`: libvirt (the `virt` crate), Proxmox (`qm`), or commands.
//! - `systemd`: the guests' transient units and their jobs, over D-Bus (zbus).
//! - `daemon`: `run`, the election thread and the queueing of the guests.
//! - `guest`: `start-guest` and `wait-health`, run by the units.
//! - `state`: the status file behind `strata-vmorder status`.

pub mod config;
pub mod daemon;
pub mod decide;
pub mod drbd;
pub mod guest;
pub mod hypervisor;
pub mod state;
pub mod systemd;
