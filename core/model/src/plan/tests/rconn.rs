//! Resource connections: created on first use, checked ends and keys, gone with their
//! resources.

use super::*;
use crate::cluster::ObjectClass;
use crate::plan::rconn::{modify_rsc_conn, rsc_conn_of};
use crate::props::PropsChange;

fn set(key: &str, value: &str) -> PropsChange {
    PropsChange {
        set: [(key.to_string(), value.to_string())].into(),
        ..Default::default()
    }
}

/// Three nodes with a three-replica DRBD resource `r1`.
fn three_replicas() -> World {
    let mut w = World::new(&[10, 10, 10], true);
    w.rd_with_volume("r1", GIB as i64);
    let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(3));
    w.apply(p);
    w
}

fn rsc(name: &str) -> ResourceName {
    ResourceName::new(name).unwrap()
}

fn node(name: &str) -> NodeName {
    NodeName::new(name).unwrap()
}

#[test]
fn first_set_creates_the_connection_in_node_order() {
    let mut w = three_replicas();
    let p = modify_rsc_conn(
        &w.c,
        &mut w.env,
        "R1",
        "NODE2",
        "node0",
        &set("DrbdOptions/Net/protocol", "A"),
    );
    let plan = w.apply(p);
    assert_eq!(plan.replies.len(), 1);
    let reply = &plan.replies[0];
    assert_eq!(
        (reply.severity, reply.op, reply.object),
        (Severity::Success, Op::Modify, ObjKind::RscConn)
    );
    assert_eq!(reply.obj_refs["FirstNode"], "node0");
    assert_eq!(reply.obj_refs["SecondNode"], "node2");
    assert_eq!(reply.obj_refs["RscDfn"], "r1");

    let conns: Vec<_> = w.c.connections_of(&rsc("r1")).collect();
    assert_eq!(conns.len(), 1);
    let c = conns[0];
    // The names as the resources spell them, in order, whatever the request said.
    assert_eq!((c.node_a.as_str(), c.node_b.as_str()), ("node0", "node2"));
    assert_eq!(c.props["DrbdOptions/Net/protocol"], "A");
    let uuid = c.uuid.clone();
    // Found in either order, by any spelling.
    assert_eq!(
        rsc_conn_of(&w.c, "r1", "Node2", "node0").unwrap().uuid,
        uuid
    );
    assert!(w
        .c
        .connection(&rsc("r1"), &node("node0"), &node("node2"))
        .is_some());

    // A second change modifies the same object.
    let change = PropsChange {
        set: [(
            "DrbdOptions/PeerDevice/c-max-rate".to_string(),
            "300M".to_string(),
        )]
        .into(),
        delete: vec!["DrbdOptions/Net/protocol".into()],
        ..Default::default()
    };
    let p = modify_rsc_conn(&w.c, &mut w.env, "r1", "node0", "node2", &change);
    w.apply(p);
    let c = rsc_conn_of(&w.c, "r1", "node0", "node2").unwrap();
    assert_eq!(c.uuid, uuid);
    assert_eq!(c.props.len(), 1);
    assert_eq!(c.props["DrbdOptions/PeerDevice/c-max-rate"], "300M");
    // Changing nothing persists nothing, but still answers.
    let again = modify_rsc_conn(&w.c, &mut w.env, "r1", "node2", "node0", &change).unwrap();
    assert!(again.changes.is_empty());
    assert_eq!(again.replies.len(), 1);
    // The other pairs have no object.
    let err = rsc_conn_of(&w.c, "r1", "node0", "node1").unwrap_err();
    assert_eq!(err.code, code::FAIL_NOT_FOUND_RSC_CONN);
    assert!(err.is_not_found());
}

#[test]
fn bad_requests_change_nothing() {
    let mut w = World::new(&[10, 10, 10, 10], true);
    w.c.ctrl_props.insert(
        super::super::drbd::PROP_AUTO_TIEBREAKER.into(),
        "false".into(),
    );
    w.rd_with_volume("r1", GIB as i64);
    let mut req = place(2);
    req.filter.node_name_list = vec!["node0".into(), "node1".into()];
    let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &req);
    w.apply(p);
    let generation = w.c.generation;
    let good = set("DrbdOptions/Net/protocol", "A");
    let cases: Vec<(&str, &str, &str, PropsChange, u64)> = vec![
        (
            "nope",
            "node0",
            "node1",
            good.clone(),
            code::FAIL_NOT_FOUND_RSC_DFN,
        ),
        (
            "r1",
            "ghost",
            "node1",
            good.clone(),
            code::FAIL_NOT_FOUND_NODE,
        ),
        (
            "r1",
            "node0",
            "ghost",
            good.clone(),
            code::FAIL_NOT_FOUND_NODE,
        ),
        (
            "r1",
            "node0",
            "node3",
            good.clone(),
            code::FAIL_NOT_FOUND_RSC,
        ),
        (
            "r1",
            "node0",
            "node0",
            good.clone(),
            code::FAIL_INVLD_REQUEST,
        ),
        (
            "r1",
            "node0",
            "NODE0",
            good.clone(),
            code::FAIL_INVLD_REQUEST,
        ),
        (
            "r1",
            "no de",
            "node1",
            good.clone(),
            code::FAIL_INVLD_NODE_NAME,
        ),
        (
            "r1",
            "node0",
            "node1",
            set("DrbdOptions/Resource/quorum", "off"),
            code::FAIL_INVLD_PROP,
        ),
        (
            "r1",
            "node0",
            "node1",
            set("DrbdOptions/auto-quorum", "disabled"),
            code::FAIL_INVLD_PROP,
        ),
        (
            "r1",
            "node0",
            "node1",
            set("StorPoolName", "pool1"),
            code::FAIL_INVLD_PROP,
        ),
        (
            "r1",
            "node0",
            "node1",
            set("Internal/x", "1"),
            code::FAIL_INVLD_PROP,
        ),
        (
            "r1",
            "node0",
            "node1",
            set("Bogus", "1"),
            code::FAIL_INVLD_PROP,
        ),
        (
            "r1",
            "node0",
            "node1",
            set("DrbdOptions/Net/protocol", ""),
            code::FAIL_INVLD_PROP,
        ),
    ];
    for (r, a, b, change, want) in cases {
        let err = modify_rsc_conn(&w.c, &mut w.env, r, a, b, &change).unwrap_err();
        assert_eq!(err.code, want, "{r} {a} {b} {change:?}: {err:?}");
        assert!(err.correction.is_some() || err.is_not_found(), "{err:?}");
    }
    let err = modify_rsc_conn(&w.c, &mut w.env, "r1", "node0", "node3", &good).unwrap_err();
    assert!(
        err.message.contains("node3") && err.message.contains("r1"),
        "{err:?}"
    );
    assert_eq!(w.c.connections_of(&rsc("r1")).count(), 0);
    assert_eq!(w.c.generation, generation);
    // User data is fine on a connection.
    let p = modify_rsc_conn(
        &w.c,
        &mut w.env,
        "r1",
        "node1",
        "node0",
        &set("Aux/why", "wan"),
    );
    w.apply(p);
    assert_eq!(w.c.connections_of(&rsc("r1")).count(), 1);
}

#[test]
fn connections_go_with_their_resources_and_definition() {
    let mut w = three_replicas();
    for (a, b) in [("node0", "node1"), ("node1", "node2"), ("node0", "node2")] {
        let p = modify_rsc_conn(
            &w.c,
            &mut w.env,
            "r1",
            a,
            b,
            &set("DrbdOptions/Net/protocol", "B"),
        );
        w.apply(p);
    }
    assert_eq!(w.c.connections_of(&rsc("r1")).count(), 3);

    // Marking node0's resource for deletion keeps its connections until it is gone.
    let p = delete_resource(&w.c, &mut w.env, &w.obs, "r1", "node0", false);
    w.apply(p);
    assert_eq!(w.c.connections_of(&rsc("r1")).count(), 3);
    let err = modify_rsc_conn(
        &w.c,
        &mut w.env,
        "r1",
        "node0",
        "node1",
        &set("DrbdOptions/Net/protocol", "A"),
    )
    .unwrap_err();
    assert_eq!(err.code, code::FAIL_IN_USE);
    let gen = w.c.generation;
    let plan = finish_deletions(&w.c, &node("node0"), gen, &|_| None);
    let dropped: Vec<_> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::DelRscConn(r, a, b) => Some((r.to_string(), a.to_string(), b.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        dropped,
        vec![
            ("r1".into(), "node0".into(), "node1".into()),
            ("r1".into(), "node0".into(), "node2".into()),
        ]
    );
    commit(&mut w.c, &plan);
    let left: Vec<_> =
        w.c.connections_of(&rsc("r1"))
            .map(|c| (c.node_a.to_string(), c.node_b.to_string()))
            .collect();
    assert_eq!(left, vec![("node1".to_string(), "node2".to_string())]);

    // Deleting the definition drops the rest once the nodes confirm.
    let p = delete_rd(&w.c, &w.obs, "r1");
    w.apply(p);
    let gen = w.c.generation;
    for n in ["node1", "node2"] {
        let plan = finish_deletions(&w.c, &node(n), gen, &|_| None);
        commit(&mut w.c, &plan);
    }
    assert!(!w.c.rsc_dfns.contains_key(&rsc("r1")));
    assert_eq!(w.c.connections_of(&rsc("r1")).count(), 0);
}

#[test]
fn store_keys_ignore_order_and_case() {
    let w = {
        let mut w = three_replicas();
        let p = modify_rsc_conn(&w.c, &mut w.env, "r1", "node1", "node0", &set("Aux/a", "1"));
        w.apply(p);
        w
    };
    let c = w.c.connections_of(&rsc("r1")).next().unwrap().clone();
    let put = Change::PutRscConn(c.clone());
    let del = Change::DelRscConn(rsc("R1"), node("NODE1"), node("node0"));
    assert_eq!(put.store_key(), del.store_key());
    assert_eq!(put.store_key().0.as_str(), "rconn");
    let row = put.payload().unwrap().to_string();
    assert_eq!(Change::from_row(ObjectClass::RscConn, &row).unwrap(), put);
    assert!(del.payload().is_none());
}
