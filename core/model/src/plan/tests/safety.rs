//! Deleting replicas against what DRBD reports: the only up-to-date copy stays until another
//! replica has the data, and a resource in use stays where it is used.

use super::*;
use crate::drbd_state::{DiskState, ReplicationState, Role};
use crate::observed::{DrbdObserved, DrbdVolumeObserved, PeerReplication};

fn rsc(name: &str) -> ResourceName {
    ResourceName::new(name).unwrap()
}

fn node(name: &str) -> NodeName {
    NodeName::new(name).unwrap()
}

fn create_on(w: &mut World, name: &str, on: &str) {
    let p = create_resources(
        &w.c,
        &mut w.env,
        &w.obs,
        name,
        &[RscCreate {
            node: on.into(),
            props: [("StorPoolName".to_string(), "pool1".to_string())].into(),
            ..Default::default()
        }],
    );
    w.apply(p);
}

/// Tells the planner what DRBD says of volume 0 of `name` on `on`: its disk state and, when
/// it receives a resync from `source`, how far it got.
fn observe(w: &mut World, name: &str, on: &str, disk: DiskState, receiving: Option<(&str, f64)>) {
    let mut vol = DrbdVolumeObserved {
        disk_state: Some(disk),
        ..Default::default()
    };
    if let Some((source, done)) = receiving {
        vol.peers.insert(
            source.into(),
            PeerReplication {
                replication: ReplicationState::SyncTarget,
                peer_disk: Some(DiskState::UpToDate),
                done: Some(done),
                out_of_sync_kib: None,
            },
        );
    }
    let d = DrbdObserved {
        name: name.into(),
        role: Some(Role::Secondary),
        volumes: [(0, vol)].into(),
        ..Default::default()
    };
    w.obs.drbd.insert((node(on), rsc(name)), d);
}

fn set_role(w: &mut World, name: &str, on: &str, role: Role) {
    let d = w.obs.drbd.get_mut(&(node(on), rsc(name))).unwrap();
    d.role = Some(role);
}

fn is_deleting(w: &World, name: &str, on: &str) -> bool {
    w.c.resource(&rsc(name), &node(on)).unwrap().is_deleting()
}

/// `r1` lives on node0 only; a new replica on node1 receives the data.
fn moving() -> World {
    let mut w = World::new(&[10, 10, 10], true);
    w.rd_with_volume("r1", GIB as i64);
    create_on(&mut w, "r1", "node0");
    create_on(&mut w, "r1", "node1");
    observe(&mut w, "r1", "node0", DiskState::UpToDate, None);
    observe(
        &mut w,
        "r1",
        "node1",
        DiskState::Inconsistent,
        Some(("node0", 45.12)),
    );
    w
}

#[test]
fn the_only_up_to_date_copy_stays_until_the_new_replica_has_synced() {
    let mut w = moving();
    let err = delete_resource(&w.c, &mut w.env, &w.obs, "r1", "node0", false).unwrap_err();
    assert_eq!(err.code, code::FAIL_NOT_ALL_UPTODATE);
    assert!(
        err.message
            .contains("'r1' on node 'node0' holds the only up-to-date copy of volume 0"),
        "{}",
        err.message
    );
    let cause = err.cause.clone().unwrap();
    assert!(
        cause.contains("volume 0 on 'node1': SyncTarget(45.12%)"),
        "{cause}"
    );
    assert!(
        err.correction.as_deref().unwrap().contains("wait-sync r1"),
        "{:?}",
        err.correction
    );

    // The replica being filled can go: the source keeps the data.
    let p = delete_resource(&w.c, &mut w.env, &w.obs, "r1", "node1", false);
    assert!(p.is_ok(), "{:?}", p.err());

    // Once the new replica is UpToDate, the old one can go.
    observe(&mut w, "r1", "node1", DiskState::UpToDate, None);
    let p = delete_resource(&w.c, &mut w.env, &w.obs, "r1", "node0", false);
    w.apply(p);
    assert!(is_deleting(&w, "r1", "node0"));
    assert!(!is_deleting(&w, "r1", "node1"));
}

#[test]
fn an_unreported_peer_does_not_count_as_a_copy() {
    let mut w = moving();
    w.obs.drbd.remove(&(node("node1"), rsc("r1")));
    w.obs.online.remove(&node("node1"));
    let err = delete_resource(&w.c, &mut w.env, &w.obs, "r1", "node0", false).unwrap_err();
    assert_eq!(err.code, code::FAIL_NOT_ALL_UPTODATE);
    assert!(
        err.cause
            .as_deref()
            .unwrap()
            .contains("volume 0 on 'node1': unknown, the node is offline"),
        "{:?}",
        err.cause
    );
}

#[test]
fn a_replica_whose_state_is_unknown_can_be_deleted() {
    // A dead node's replica must be removable: nothing says it holds the only copy.
    let mut w = moving();
    w.obs.drbd.remove(&(node("node0"), rsc("r1")));
    let p = delete_resource(&w.c, &mut w.env, &w.obs, "r1", "node0", false);
    w.apply(p);
    assert!(is_deleting(&w, "r1", "node0"));
}

#[test]
fn the_last_diskful_replica_can_be_deleted() {
    let mut w = World::new(&[10, 10], true);
    w.rd_with_volume("r1", GIB as i64);
    create_on(&mut w, "r1", "node0");
    observe(&mut w, "r1", "node0", DiskState::UpToDate, None);
    let p = delete_resource(&w.c, &mut w.env, &w.obs, "r1", "node0", false);
    w.apply(p);
    assert!(is_deleting(&w, "r1", "node0"));
}

#[test]
fn a_resource_in_use_is_not_taken_away() {
    let mut w = moving();
    observe(&mut w, "r1", "node1", DiskState::UpToDate, None);
    set_role(&mut w, "r1", "node1", Role::Primary);
    let err = delete_resource(&w.c, &mut w.env, &w.obs, "r1", "node1", false).unwrap_err();
    assert_eq!(err.code, code::FAIL_IN_USE);
    assert!(
        err.message
            .contains("Resource 'r1' is in use on node 'node1' (DRBD Primary)"),
        "{}",
        err.message
    );
    let err = delete_rd(&w.c, &w.obs, "r1").unwrap_err();
    assert_eq!(err.code, code::FAIL_IN_USE);
    assert!(
        err.message
            .contains("resource definition 'r1' cannot be deleted now"),
        "{}",
        err.message
    );

    // The replica that is not in use can go, and everything once nothing uses it.
    let p = delete_resource(&w.c, &mut w.env, &w.obs, "r1", "node0", false);
    assert!(p.is_ok(), "{:?}", p.err());
    set_role(&mut w, "r1", "node1", Role::Secondary);
    let p = delete_rd(&w.c, &w.obs, "r1");
    w.apply(p);
    assert!(w.c.rsc_dfns[&rsc("r1")].is_deleting());
}
