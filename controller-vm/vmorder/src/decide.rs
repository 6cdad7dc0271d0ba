//! What a host does, decided from what DRBD and the hypervisor show: pure functions, no I/O.
//!
//! The controller VM: the promotion of its resources to DRBD Primary is the lock. Only one
//! host can be Primary (DRBD refuses a second one, and with quorum a host cut off from the
//! others); every host tries the resources in the same order, so two hosts never each hold
//! a part. The host holding them starts the VM; the others stand by while a peer is Primary
//! and try again the moment that changes.
//!
//! A guest: it starts at once when every one of its resources is already up here in DRBD (its
//! storage needs no controller); otherwise it waits for the controller, which makes its
//! volumes available here. Either way it starts only on volumes that are UpToDate here, or
//! diskless with an UpToDate peer.

use std::time::Duration;

use strata_drbd::events::{ConnectionState, DiskState, ResourceState, Role};

/// What the controller VM's host should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The VM runs here: nothing to do.
    Running,
    /// Every resource is Primary here: start the VM.
    Start,
    /// Try to become Primary on every resource, in order (`force` only for a host that
    /// promotes alone, its disks Consistent, after `promote_alone_after`).
    Promote { force: bool },
    /// Another host holds the lock.
    Standby { holder: String },
    /// Nothing can be done yet, for this reason.
    Wait { why: String },
}

/// What is known of the controller VM on this host.
#[derive(Debug, Clone, Copy)]
pub struct ControllerView<'a> {
    /// Each resource with its DRBD state here (`None`: DRBD does not know it here).
    pub resources: &'a [(String, Option<ResourceState>)],
    /// Whether the hypervisor runs the VM on this host.
    pub running_here: bool,
    /// Whether the resources are replicated by DRBD at all.
    pub drbd: bool,
    /// How long the daemon has been waiting.
    pub waited: Duration,
    pub promote_alone_after: Option<Duration>,
    /// Whether this host saw a peer of the resources connected since the daemon started.
    /// Without that, a host that just booted cannot tell a peer still booting from a dead
    /// one: promoting then could start the VM on two hosts that never spoke (DRBD without
    /// quorum lets each promote alone).
    pub seen_connected: bool,
}

impl ControllerView<'_> {
    /// `promote_alone_after` is set and has passed.
    fn alone_time_passed(&self) -> bool {
        self.promote_alone_after.is_some_and(|a| self.waited >= a)
    }
}

pub fn controller_action(v: &ControllerView<'_>) -> Action {
    if v.running_here {
        return Action::Running;
    }
    if !v.drbd {
        return Action::Start;
    }
    let mut states = Vec::with_capacity(v.resources.len());
    for (name, state) in v.resources {
        match state {
            Some(s) => states.push((name.as_str(), s)),
            None => {
                return Action::Wait {
                    why: format!(
                        "the resource {name} is not up in DRBD on this host: the satellite brings it up from its record (is linstor-satellite running, and does this host hold a replica of {name}?)"
                    ),
                }
            }
        }
    }
    if states.iter().all(|(_, s)| s.role == Some(Role::Primary)) {
        return Action::Start;
    }
    // A peer holding any of them holds the lock.
    for (name, s) in &states {
        if let Some(holder) = primary_peer(s) {
            return Action::Standby {
                holder: format!("{holder} (Primary on {name})"),
            };
        }
    }
    let mut alone = false;
    for (name, s) in &states {
        if s.role == Some(Role::Primary) {
            continue;
        }
        for d in s.devices.values() {
            match &d.disk {
                Some(DiskState::UpToDate) => {}
                Some(DiskState::Consistent) if may_promote_alone(v, s) => alone = true,
                Some(DiskState::Diskless) | None if d.client == Some(true) => {
                    return Action::Wait {
                        why: format!(
                            "this host has no disk of {name} (a diskless client): the controller VM runs only where its disks are"
                        ),
                    }
                }
                other => {
                    let disk = other.as_ref().map(|d| d.as_str()).unwrap_or("unknown");
                    return Action::Wait {
                        why: format!(
                            "the disk of {name} (volume {}) is {disk} here: waiting until it is UpToDate (its peers connect and settle which data is newest)",
                            d.volume
                        ),
                    };
                }
            }
        }
        if s.devices.is_empty() {
            return Action::Wait {
                why: format!("{name} has no volume up in DRBD on this host yet"),
            };
        }
    }
    if !alone && !v.seen_connected {
        // A StandAlone connection does not try to reach its peer: nobody to wait for.
        let has_peers = states.iter().any(|(_, s)| {
            s.connections
                .values()
                .any(|c| c.connection != Some(ConnectionState::StandAlone))
        });
        if has_peers && !any_connected(v.resources) && !v.alone_time_passed() {
            return Action::Wait {
                why: "no peer has connected since this host started: waiting for the other hosts (a host that never spoke to them must not start the VM; promote_alone_after allows it after a time)".into(),
            };
        }
    }
    Action::Promote { force: alone }
}

/// Whether any of the resources has a connected peer now.
pub fn any_connected(resources: &[(String, Option<ResourceState>)]) -> bool {
    resources
        .iter()
        .filter_map(|(_, s)| s.as_ref())
        .any(ResourceState::has_connected_peer)
}

/// A host may promote with Consistent disks only once it waited `promote_alone_after` and no
/// peer is connected.
fn may_promote_alone(v: &ControllerView<'_>, s: &ResourceState) -> bool {
    v.alone_time_passed() && !s.has_connected_peer()
}

/// The name of a connected peer that is Primary.
fn primary_peer(s: &ResourceState) -> Option<String> {
    s.connections
        .values()
        .find(|c| c.peer_role == Some(Role::Primary))
        .map(|c| {
            c.conn_name
                .clone()
                .unwrap_or_else(|| format!("peer {}", c.peer_node_id))
        })
}

/// When a guest starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestPlan {
    /// Every one of its resources is up here: no controller needed.
    AtOnce,
    /// Some resource is not here: its start waits for the controller.
    AfterController,
}

impl GuestPlan {
    /// The plan's name in the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            GuestPlan::AtOnce => "at-once",
            GuestPlan::AfterController => "after-controller",
        }
    }
}

pub fn guest_plan(resources: &[(String, Option<ResourceState>)]) -> GuestPlan {
    if resources.iter().all(|(_, s)| s.is_some()) {
        GuestPlan::AtOnce
    } else {
        GuestPlan::AfterController
    }
}

/// Whether a guest may start on `s`: every volume UpToDate here, or diskless here with a
/// connected peer whose disk is UpToDate. `Err` says what it waits for.
pub fn usable(name: &str, s: Option<&ResourceState>) -> Result<(), String> {
    let Some(s) = s else {
        return Err(format!("{name} is not up in DRBD on this host"));
    };
    if s.devices.is_empty() {
        return Err(format!("{name} has no volume up in DRBD on this host"));
    }
    for d in s.devices.values() {
        match &d.disk {
            Some(DiskState::UpToDate) => {}
            Some(DiskState::Diskless) => {
                let served = s.connections.values().any(|c| {
                    c.is_connected()
                        && c.peer_devices
                            .get(&d.volume)
                            .and_then(|p| p.peer_disk.as_ref())
                            == Some(&DiskState::UpToDate)
                });
                if !served {
                    return Err(format!(
                        "{name} volume {} is diskless here and no connected peer has it UpToDate",
                        d.volume
                    ));
                }
            }
            other => {
                let disk = other.as_ref().map(|d| d.as_str()).unwrap_or("unknown");
                return Err(format!(
                    "{name} volume {} is {disk} here, not UpToDate",
                    d.volume
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_drbd::events::State;

    /// The state of one resource from `drbdsetup events2` lines.
    fn state(lines: &str) -> ResourceState {
        let mut s = State::new();
        let mut name = String::new();
        for l in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
            s.apply_line(l);
            if let Some(n) = l.split_whitespace().find_map(|w| w.strip_prefix("name:")) {
                name = n.to_string();
            }
        }
        s.resource(&name).cloned().expect("a resource")
    }

    fn secondary(disk: &str, peer: Option<(&str, &str)>) -> ResourceState {
        let mut lines = format!(
            "exists resource name:ctrl role:Secondary suspended:no\n\
             exists device name:ctrl volume:0 minor:1000 disk:{disk} client:no\n"
        );
        if let Some((conn, role)) = peer {
            lines += &format!(
                "exists connection name:ctrl peer-node-id:1 conn-name:beta connection:{conn} role:{role}\n\
                 exists peer-device name:ctrl peer-node-id:1 conn-name:beta volume:0 replication:Established peer-disk:UpToDate\n"
            );
        }
        state(&lines)
    }

    fn view(resources: &[(String, Option<ResourceState>)]) -> ControllerView<'_> {
        ControllerView {
            resources,
            running_here: false,
            drbd: true,
            waited: Duration::ZERO,
            promote_alone_after: None,
            seen_connected: true,
        }
    }

    fn one(s: Option<ResourceState>) -> Vec<(String, Option<ResourceState>)> {
        vec![("ctrl".to_string(), s)]
    }

    #[test]
    fn an_uptodate_host_with_a_secondary_peer_promotes() {
        let r = one(Some(secondary(
            "UpToDate",
            Some(("Connected", "Secondary")),
        )));
        assert_eq!(
            controller_action(&view(&r)),
            Action::Promote { force: false }
        );
    }

    #[test]
    fn a_primary_peer_holds_the_lock() {
        let r = one(Some(secondary("UpToDate", Some(("Connected", "Primary")))));
        assert_eq!(
            controller_action(&view(&r)),
            Action::Standby {
                holder: "beta (Primary on ctrl)".into()
            }
        );
    }

    #[test]
    fn the_peer_gone_the_standby_promotes() {
        // What the standby sees once the host running the VM died: the connection is lost
        // and with it the peer's role.
        let r = one(Some(secondary("UpToDate", Some(("Connecting", "Unknown")))));
        assert_eq!(
            controller_action(&view(&r)),
            Action::Promote { force: false }
        );
    }

    #[test]
    fn a_host_that_never_saw_its_peers_does_not_promote_alone() {
        // Both hosts just booted; DRBD shows the disk UpToDate but the peer never connected:
        // it may be booting too, and may promote as well.
        let r = one(Some(secondary("UpToDate", Some(("Connecting", "Unknown")))));
        let mut v = view(&r);
        v.seen_connected = false;
        let Action::Wait { why } = controller_action(&v) else {
            panic!()
        };
        assert!(why.contains("no peer has connected"), "{why}");
        assert!(!any_connected(&r));
        // Once connected (or having been), it promotes; also after promote_alone_after.
        let c = one(Some(secondary(
            "UpToDate",
            Some(("Connected", "Secondary")),
        )));
        assert!(any_connected(&c));
        let mut v = view(&c);
        v.seen_connected = false;
        assert_eq!(controller_action(&v), Action::Promote { force: false });
        let mut v = view(&r);
        v.seen_connected = false;
        v.promote_alone_after = Some(Duration::from_secs(5));
        v.waited = Duration::from_secs(5);
        assert_eq!(controller_action(&v), Action::Promote { force: false });
        // A resource without peers has nobody to wait for, nor one whose only connection
        // does not try (DRBD 8.4 shows a lone resource StandAlone).
        let lonely = one(Some(secondary("UpToDate", None)));
        let mut v = view(&lonely);
        v.seen_connected = false;
        assert_eq!(controller_action(&v), Action::Promote { force: false });
        let standalone = one(Some(secondary("UpToDate", Some(("StandAlone", "Unknown")))));
        let mut v = view(&standalone);
        v.seen_connected = false;
        assert_eq!(controller_action(&v), Action::Promote { force: false });
    }

    #[test]
    fn primary_everywhere_starts_and_running_stays() {
        let mut s = secondary("UpToDate", Some(("Connected", "Secondary")));
        s.role = Some(Role::Primary);
        let r = one(Some(s));
        assert_eq!(controller_action(&view(&r)), Action::Start);
        let mut v = view(&r);
        v.running_here = true;
        assert_eq!(controller_action(&v), Action::Running);
    }

    #[test]
    fn resources_in_order_partly_held_here_go_on_promoting() {
        let mut first = secondary("UpToDate", Some(("Connected", "Secondary")));
        first.role = Some(Role::Primary);
        let second = secondary("UpToDate", Some(("Connected", "Secondary")));
        let r = vec![
            ("a".to_string(), Some(first)),
            ("b".to_string(), Some(second)),
        ];
        assert_eq!(
            controller_action(&view(&r)),
            Action::Promote { force: false }
        );
    }

    #[test]
    fn waits_for_drbd_and_for_uptodate_disks() {
        let r = one(None);
        let Action::Wait { why } = controller_action(&view(&r)) else {
            panic!()
        };
        assert!(why.contains("not up in DRBD"), "{why}");
        // After a power cut, 8.4 shows Consistent until the peers connected.
        let r = one(Some(secondary(
            "Consistent",
            Some(("Connecting", "Unknown")),
        )));
        let Action::Wait { why } = controller_action(&view(&r)) else {
            panic!()
        };
        assert!(why.contains("Consistent"), "{why}");
        let r = one(Some(secondary(
            "Inconsistent",
            Some(("Connected", "Secondary")),
        )));
        assert!(matches!(controller_action(&view(&r)), Action::Wait { .. }));
        let r = one(Some(secondary(
            "Diskless",
            Some(("Connected", "Secondary")),
        )));
        assert!(matches!(controller_action(&view(&r)), Action::Wait { .. }));
    }

    #[test]
    fn promoting_alone_only_when_set_waited_and_unconnected() {
        let r = one(Some(secondary(
            "Consistent",
            Some(("Connecting", "Unknown")),
        )));
        let mut v = view(&r);
        v.promote_alone_after = Some(Duration::from_secs(60));
        v.waited = Duration::from_secs(59);
        assert!(matches!(controller_action(&v), Action::Wait { .. }));
        v.waited = Duration::from_secs(60);
        assert_eq!(controller_action(&v), Action::Promote { force: true });
        // Connected but still Consistent: the handshake decides, never force.
        let r = one(Some(secondary(
            "Consistent",
            Some(("Connected", "Secondary")),
        )));
        let mut v = view(&r);
        v.promote_alone_after = Some(Duration::ZERO);
        assert!(matches!(controller_action(&v), Action::Wait { .. }));
        // Outdated data is never promoted.
        let r = one(Some(secondary("Outdated", None)));
        let mut v = view(&r);
        v.promote_alone_after = Some(Duration::ZERO);
        assert!(matches!(controller_action(&v), Action::Wait { .. }));
    }

    #[test]
    fn without_drbd_the_vm_just_starts() {
        let r = one(None);
        let mut v = view(&r);
        v.drbd = false;
        assert_eq!(controller_action(&v), Action::Start);
        v.running_here = true;
        assert_eq!(controller_action(&v), Action::Running);
    }

    #[test]
    fn guests_with_everything_here_start_at_once() {
        let here = Some(secondary("UpToDate", None));
        assert_eq!(
            guest_plan(&[("a".into(), here.clone()), ("b".into(), here.clone())]),
            GuestPlan::AtOnce
        );
        assert_eq!(
            guest_plan(&[("a".into(), here), ("b".into(), None)]),
            GuestPlan::AfterController
        );
        assert_eq!(guest_plan(&[]), GuestPlan::AtOnce);
    }

    #[test]
    fn usable_means_uptodate_here_or_served_by_a_peer() {
        assert!(usable("a", Some(&secondary("UpToDate", None))).is_ok());
        let e = usable("a", Some(&secondary("Inconsistent", None))).unwrap_err();
        assert!(e.contains("Inconsistent"), "{e}");
        assert!(usable("a", None).is_err());
        let served = secondary("Diskless", Some(("Connected", "Secondary")));
        assert!(usable("a", Some(&served)).is_ok());
        let unserved = secondary("Diskless", Some(("Connecting", "Unknown")));
        assert!(usable("a", Some(&unserved)).is_err());
    }
}
