//! Resources on DRBD 8.4 nodes: two nodes at most, no tie-breaker, no quorum, no mixing with
//! DRBD 9 nodes.

use super::*;
use crate::objects::{Resource, DEFAULT_DISKLESS_STOR_POOL};

fn rsc(name: &str) -> ResourceName {
    ResourceName::new(name).unwrap()
}

fn node(name: &str) -> NodeName {
    NodeName::new(name).unwrap()
}

/// Nodes with the given DRBD module versions and free GiB.
fn world(nodes: &[(&str, u64)]) -> World {
    let free: Vec<u64> = nodes.iter().map(|(_, f)| *f).collect();
    let mut w = World::new(&free, true);
    for (i, (version, _)) in nodes.iter().enumerate() {
        let caps = w.obs.online.get_mut(&node(&format!("node{i}"))).unwrap();
        caps.drbd_version = Some(version.to_string());
    }
    w.rd_with_volume("r1", GIB as i64);
    w
}

fn create(w: &mut World, on: &str, diskless: bool) -> PlanResult {
    let (pool, flags) = if diskless {
        (
            DEFAULT_DISKLESS_STOR_POOL,
            vec!["DRBD_DISKLESS".to_string()],
        )
    } else {
        ("pool1", vec![])
    };
    create_resources(
        &w.c,
        &mut w.env,
        &w.obs,
        "r1",
        &[RscCreate {
            node: on.into(),
            props: [("StorPoolName".to_string(), pool.to_string())].into(),
            flags,
            ..Default::default()
        }],
    )
}

fn live(w: &World) -> Vec<&Resource> {
    w.c.resources_of(&rsc("r1"))
        .filter(|r| !r.is_deleting())
        .collect()
}

#[test]
fn two_replicas_on_drbd84_get_no_tiebreaker_and_no_third_node() {
    let mut w = world(&[("8.4.11", 10), ("8.4.11", 10), ("8.4.11", 10)]);
    let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(2));
    w.apply(p);
    let rs = live(&w);
    assert_eq!(rs.len(), 2, "two diskful, no tie-breaker");
    assert!(rs.iter().all(|r| !r.is_diskless()));
    assert!(
        rs.iter().all(|r| r.peer_slots == Some(1)),
        "v08 metadata: one peer"
    );
    let third = rs_missing(&w);

    // A third node, diskful or diskless, is refused with the reason.
    for diskless in [false, true] {
        let err = create(&mut w, &third, diskless).unwrap_err();
        assert_eq!(err.code, code::FAIL_STLT_DOES_NOT_SUPPORT_LAYER);
        assert!(
            err.message.contains("would have 3 nodes")
                && err.message.contains("DRBD 8.4.11")
                && err.message.contains("two nodes only"),
            "{}",
            err.message
        );
        assert!(err.correction.as_deref().unwrap().contains("DRBD 9"));
    }
    assert_eq!(live(&w).len(), 2);
}

/// The node of the three that has no resource of r1.
fn rs_missing(w: &World) -> String {
    let used: Vec<String> = live(w).iter().map(|r| r.node.to_string()).collect();
    (0..3)
        .map(|i| format!("node{i}"))
        .find(|n| !used.contains(n))
        .unwrap()
}

#[test]
fn autoplace_of_three_replicas_skips_drbd84_nodes_and_says_why() {
    let mut w = world(&[("8.4.11", 10), ("8.4.11", 10), ("8.4.11", 10)]);
    let err = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(3)).unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("two nodes only"), "{text}");
    assert!(live(&w).is_empty());
}

#[test]
fn one_diskful_and_one_diskless_is_fine() {
    let mut w = world(&[("8.4.11", 10), ("8.4.11", 10)]);
    let p = create(&mut w, "node0", false);
    w.apply(p);
    let p = create(&mut w, "node1", true);
    w.apply(p);
    let rs = live(&w);
    assert_eq!(rs.len(), 2);
    assert_eq!(rs.iter().filter(|r| r.is_diskless()).count(), 1);
}

#[test]
fn drbd84_and_drbd9_nodes_do_not_share_a_resource() {
    // node2 (8.4) has the most space, but the replicas stay on DRBD 9 nodes, and so does the
    // tie-breaker.
    let mut w = world(&[("9.2.8", 10), ("9.2.8", 9), ("8.4.11", 50), ("9.2.8", 8)]);
    let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(2));
    w.apply(p);
    let mut nodes: Vec<(String, bool)> = live(&w)
        .iter()
        .map(|r| (r.node.to_string(), r.is_tiebreaker()))
        .collect();
    nodes.sort();
    assert_eq!(
        nodes,
        vec![
            ("node0".to_string(), false),
            ("node1".to_string(), false),
            ("node3".to_string(), true)
        ]
    );
    let err = create(&mut w, "node2", true).unwrap_err();
    assert_eq!(err.code, code::FAIL_STLT_DOES_NOT_SUPPORT_LAYER);
    assert!(
        err.message.contains("cannot span") && err.message.contains("DRBD 8.4.11"),
        "{}",
        err.message
    );

    // The other way round: a resource on the 8.4 node takes no DRBD 9 peer.
    let mut w = world(&[("9.2.8", 10), ("8.4.11", 10)]);
    let p = create(&mut w, "node1", false);
    w.apply(p);
    let err = create(&mut w, "node0", false).unwrap_err();
    assert!(err.message.contains("cannot span"), "{}", err.message);
}

#[test]
fn quorum_is_refused_on_drbd84() {
    let mut w = world(&[("8.4.11", 10), ("8.4.11", 10)]);
    let mut rd = w.c.rsc_dfns[&rsc("r1")].clone();
    rd.props
        .insert(crate::plan::drbd84::PROP_QUORUM.into(), "majority".into());
    w.c.apply(Change::PutRscDfn(rd));
    let err = create(&mut w, "node0", false).unwrap_err();
    assert_eq!(err.code, code::FAIL_STLT_DOES_NOT_SUPPORT_LAYER);
    assert!(
        err.message.contains("quorum") && err.message.contains("majority"),
        "{}",
        err.message
    );
    assert!(err
        .correction
        .as_deref()
        .unwrap()
        .contains("--unset-quorum r1"));
}

#[test]
fn quorum_set_on_a_definition_living_on_drbd84_is_refused_at_once() {
    let mut w = world(&[("8.4.11", 10), ("8.4.11", 10)]);
    let p = create(&mut w, "node0", false);
    w.apply(p);
    let set = |value: &str| crate::plan::rd::RscDfnModify {
        props: crate::props::PropsChange {
            set: [(
                crate::plan::drbd84::PROP_QUORUM.to_string(),
                value.to_string(),
            )]
            .into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = crate::plan::rd::modify_rd(&w.c, &w.obs, "r1", &set("majority")).unwrap_err();
    assert_eq!(err.code, code::FAIL_STLT_DOES_NOT_SUPPORT_LAYER);
    assert!(err.message.contains("node0"), "{}", err.message);
    assert!(!w.c.rsc_dfns[&rsc("r1")]
        .props
        .contains_key(crate::plan::drbd84::PROP_QUORUM));
    // Switching it off is fine, and so is quorum on DRBD 9 nodes.
    assert!(crate::plan::rd::modify_rd(&w.c, &w.obs, "r1", &set("off")).is_ok());
    let mut w9 = world(&[("9.2.12", 10), ("9.2.12", 10)]);
    let p = create(&mut w9, "node0", false);
    w9.apply(p);
    assert!(crate::plan::rd::modify_rd(&w9.c, &w9.obs, "r1", &set("majority")).is_ok());
}
