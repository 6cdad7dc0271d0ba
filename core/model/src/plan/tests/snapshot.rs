//! Snapshots: where they can be taken, their steps, deletion, and restoring them.

use super::*;
use crate::objects::SnapshotState;
use crate::plan::snapshot::{self as snap, SnapshotCreate};

fn node(name: &str) -> NodeName {
    NodeName::new(name).unwrap()
}

/// Two DRBD nodes with `r1` (1 GiB) on both, in pools of `kind`.
fn world(kind: ProviderKind) -> World {
    let mut w = World::new(&[10, 10], true);
    for n in ["node0", "node1"] {
        let mut sp = w.c.stor_pools[&node(n)][&StorPoolName::new("pool1").unwrap()].clone();
        sp.kind = kind;
        w.c.apply(Change::PutStorPool(sp));
    }
    w.rd_with_volume("r1", GIB as i64);
    let reqs: Vec<RscCreate> = ["node0", "node1"]
        .iter()
        .map(|n| RscCreate {
            node: n.to_string(),
            props: [("StorPoolName".to_string(), "pool1".to_string())].into(),
            ..Default::default()
        })
        .collect();
    let p = create_resources(&w.c, &mut w.env, &w.obs, "r1", &reqs);
    w.apply(p);
    w
}

fn take(w: &mut World, name: &str, nodes: &[&str]) -> PlanResult {
    snap::create(
        &w.c,
        &mut w.env,
        &w.obs,
        "r1",
        &SnapshotCreate {
            name: name.into(),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
        },
    )
}

fn code_of(r: PlanResult) -> u64 {
    r.expect_err("must be refused").code
}

#[test]
fn snapshots_need_pools_that_take_them() {
    let mut w = world(ProviderKind::File);
    let e = take(&mut w, "s1", &[]).unwrap_err();
    assert_eq!(e.code, code::FAIL_SNAPSHOTS_NOT_SUPPORTED);
    assert!(e.message.contains("(FILE)"), "{}", e.message);
    assert!(w.c.snapshots.is_empty());
}

#[test]
fn taking_goes_through_its_steps_on_every_diskful_node() {
    let mut w = world(ProviderKind::LvmThin);
    let p = take(&mut w, "s1", &[]);
    w.apply(p);
    let s = w.c.snapshot(
        &ResourceName::new("r1").unwrap(),
        &SnapshotName::new("s1").unwrap(),
    );
    let s = s.expect("created").clone();
    assert_eq!(s.state, SnapshotState::Suspending);
    assert!(s.suspends_io());
    let nodes: Vec<String> = s.nodes.iter().map(|n| n.node.to_string()).collect();
    assert_eq!(nodes, ["node0", "node1"]);
    assert_eq!(s.volumes.len(), 1);
    // Bad requests: the same name, one while another is being taken, a node without the
    // resource's data, an offline node.
    assert_eq!(
        code_of(take(&mut w, "s1", &[])),
        code::FAIL_EXISTS_SNAPSHOT_DFN
    );
    assert_eq!(code_of(take(&mut w, "s2", &[])), code::FAIL_IN_USE);
    let p = snap::advance(&w.c, "r1", "s1", SnapshotState::Taking);
    w.apply(p);
    let p = snap::advance(&w.c, "r1", "s1", SnapshotState::Successful);
    let replies = w.apply(p).replies;
    assert!(
        replies[0].message.contains("taken on 'node0', 'node1'"),
        "{replies:?}"
    );
    assert_eq!(
        code_of(take(&mut w, "s2", &["node7"])),
        code::FAIL_NOT_FOUND_RSC
    );
    w.obs.online.remove(&node("node1"));
    assert_eq!(code_of(take(&mut w, "s2", &[])), code::FAIL_NOT_CONNECTED);
    let p = take(&mut w, "s2", &["node0"]);
    w.apply(p);
    let s2 = w.c.snapshot(
        &ResourceName::new("r1").unwrap(),
        &SnapshotName::new("s2").unwrap(),
    );
    assert_eq!(s2.unwrap().nodes.len(), 1);
}

#[test]
fn a_definition_with_snapshots_stays_until_they_are_deleted() {
    let mut w = world(ProviderKind::LvmThin);
    let p = take(&mut w, "s1", &[]);
    w.apply(p);
    let p = snap::advance(&w.c, "r1", "s1", SnapshotState::Successful);
    w.apply(p);
    let e = delete_rd(&w.c, &w.obs, "r1").unwrap_err();
    assert_eq!(e.code, code::FAIL_EXISTS_SNAPSHOT_DFN);
    assert!(e.message.contains("'s1'"), "{}", e.message);
    // Deleting: each node's copy goes once it applied the deletion and no longer holds it.
    let p = snap::delete(&w.c, "r1", "s1");
    w.apply(p);
    let r1 = ResourceName::new("r1").unwrap();
    let s1 = SnapshotName::new("s1").unwrap();
    assert_eq!(
        w.c.snapshot(&r1, &s1).unwrap().state,
        SnapshotState::Deleting
    );
    let gen = w.c.generation;
    let holds = |_: &ResourceName, _: &SnapshotName| false;
    let still = |_: &ResourceName, _: &SnapshotName| true;
    assert!(
        snap::finish_deletions(&w.c, &node("node0"), gen - 1, &holds)
            .changes
            .is_empty()
    );
    assert!(snap::finish_deletions(&w.c, &node("node0"), gen, &still)
        .changes
        .is_empty());
    let p = snap::finish_deletions(&w.c, &node("node0"), gen, &holds);
    commit(&mut w.c, &p);
    assert_eq!(w.c.snapshot(&r1, &s1).unwrap().nodes.len(), 1);
    let p = snap::finish_deletions(&w.c, &node("node1"), gen, &holds);
    commit(&mut w.c, &p);
    assert!(w.c.snapshot(&r1, &s1).is_none());
    assert!(delete_rd(&w.c, &w.obs, "r1").is_ok());
    // Unknown snapshots: deleting is a warning, restoring an error.
    let p = snap::delete(&w.c, "r1", "nope").unwrap();
    assert!(p.changes.is_empty() && p.replies[0].message.contains("not found"));
}

/// `snapshot delete --nodes`: the copies on the nodes named go, the snapshot stays on the
/// others; naming a node without a copy is refused; the last copies take the snapshot along.
#[test]
fn deleting_on_some_nodes_keeps_the_other_copies() {
    let mut w = world(ProviderKind::LvmThin);
    let p = take(&mut w, "s1", &[]);
    w.apply(p);
    let r1 = ResourceName::new("r1").unwrap();
    let s1 = SnapshotName::new("s1").unwrap();
    // Not yet taken: refused.
    let e = snap::delete_on(&w.c, "r1", "s1", &["node0".into()]).unwrap_err();
    assert_eq!(e.code, code::FAIL_IN_USE);
    let p = snap::advance(&w.c, "r1", "s1", SnapshotState::Successful);
    w.apply(p);
    let e = snap::delete_on(&w.c, "r1", "s1", &["node7".into()]).unwrap_err();
    assert!(
        e.message.contains("no copy on node 'node7'"),
        "{}",
        e.message
    );
    let p = snap::delete_on(&w.c, "r1", "s1", &["node0".into()]).unwrap();
    assert!(
        p.replies[0].message.contains("stays on node1"),
        "{}",
        p.replies[0].message
    );
    commit(&mut w.c, &p);
    let s = w.c.snapshot(&r1, &s1).unwrap();
    assert_eq!(s.state, SnapshotState::Successful);
    let nodes: Vec<&str> = s.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(nodes, ["node1"]);
    let p = snap::delete_on(&w.c, "r1", "s1", &["node1".into()]).unwrap();
    commit(&mut w.c, &p);
    assert_eq!(
        w.c.snapshot(&r1, &s1).unwrap().state,
        SnapshotState::Deleting
    );
}

/// A node declared lost takes its snapshot copies along; the last copy, the snapshot.
#[test]
fn a_lost_node_drops_its_snapshot_copies() {
    let mut w = world(ProviderKind::LvmThin);
    let p = take(&mut w, "s1", &[]);
    w.apply(p);
    let p = snap::advance(&w.c, "r1", "s1", SnapshotState::Successful);
    w.apply(p);
    let r1 = ResourceName::new("r1").unwrap();
    let s1 = SnapshotName::new("s1").unwrap();
    let p = crate::plan::node::lose_node(&w.c, "node0", 0);
    w.apply(p);
    let nodes: Vec<String> =
        w.c.snapshot(&r1, &s1)
            .unwrap()
            .nodes
            .iter()
            .map(|n| n.node.to_string())
            .collect();
    assert_eq!(nodes, ["node1"]);
    let p = crate::plan::node::lose_node(&w.c, "node1", 0);
    w.apply(p);
    assert!(w.c.snapshot(&r1, &s1).is_none());
}

#[test]
fn restoring_makes_resources_from_the_copies() {
    let mut w = world(ProviderKind::LvmThin);
    let p = take(&mut w, "s1", &[]);
    w.apply(p);
    // Not taken yet: nothing to restore.
    let p = create_rd(
        &w.c,
        &mut w.env,
        &RscDfnCreate {
            name: Some("r2".into()),
            ..Default::default()
        },
    );
    w.apply(p);
    let e =
        snap::restore_volume_definitions(&w.c, &mut w.env, &w.obs, "r1", "s1", "r2").unwrap_err();
    assert!(e.message.contains("not taken yet"), "{}", e.message);
    let p = snap::advance(&w.c, "r1", "s1", SnapshotState::Successful);
    w.apply(p);
    // Resources first: refused, saying what to run.
    let e = snap::restore_resources(&w.c, &mut w.env, &w.obs, "r1", "s1", "r2", &[]).unwrap_err();
    assert!(
        e.correction
            .as_deref()
            .unwrap_or("")
            .contains("volume-definition restore"),
        "{e:?}"
    );
    let e = snap::restore_resources(&w.c, &mut w.env, &w.obs, "r1", "nope", "r2", &[]).unwrap_err();
    assert_eq!(e.code, code::FAIL_NOT_FOUND_SNAPSHOT_DFN);
    let p = snap::restore_volume_definitions(&w.c, &mut w.env, &w.obs, "r1", "s1", "r2");
    w.apply(p);
    let r2 = ResourceName::new("r2").unwrap();
    assert_eq!(w.c.rsc_dfns[&r2].volume_definitions[&0].size_kib, GIB);
    // Into a definition that has volumes already: refused.
    let e =
        snap::restore_volume_definitions(&w.c, &mut w.env, &w.obs, "r1", "s1", "r2").unwrap_err();
    assert_eq!(e.code, code::FAIL_EXISTS_VLM_DFN);
    let e = snap::restore_resources(
        &w.c,
        &mut w.env,
        &w.obs,
        "r1",
        "s1",
        "r2",
        &["node9".into()],
    )
    .unwrap_err();
    assert_eq!(e.code, code::FAIL_NOT_FOUND_SNAPSHOT);
    let p = snap::restore_resources(&w.c, &mut w.env, &w.obs, "r1", "s1", "r2", &[]);
    w.apply(p);
    let restored: Vec<_> = w.c.resources_of(&r2).collect();
    assert_eq!(restored.len(), 2);
    for r in restored {
        let src = r.restored_from.as_ref().expect("restored");
        assert_eq!((src.rsc_name.as_str(), src.snapshot.as_str()), ("r1", "s1"));
        assert_eq!(r.volumes[&0].storage_pool.as_str(), "pool1");
    }
    // Once more into the same definition: it has resources now.
    let e = snap::restore_resources(&w.c, &mut w.env, &w.obs, "r1", "s1", "r2", &[]).unwrap_err();
    assert_eq!(e.code, code::FAIL_EXISTS_RSC);
}
