//! Scenario tests of the planners against a small cluster.

use super::node::{create_node, NodeCreate};
use super::pool::{create_stor_pool, StorPoolCreate, STOR_POOL_NAME_KEY};
use super::rd::{create_rd, create_vd, delete_rd, delete_vd, modify_vd};
use super::rg::{create_rg, create_vg, delete_rg, delete_vg, max_volume_sizes, spawn};
use super::rsc::{autoplace, create_resources, delete_resource, finish_deletions, make_available};
use super::testenv::{commit, TestEnv, TestObserved};
use super::*;
use crate::cluster::Cluster;
use crate::kinds::{LayerKind, ProviderKind};
use crate::name::ResourceGroupName;
use crate::objects::{ResourceGroup, SelectFilter, DEFAULT_RSC_GRP};
use crate::observed::{Capabilities, PoolState};
use crate::props::Props;

const GIB: u64 = 1 << 20; // in KiB

struct World {
    c: Cluster,
    env: TestEnv,
    obs: TestObserved,
}

impl World {
    /// Nodes with a FILE_THIN pool `pool1` each, all online, with the given free space (GiB)
    /// and DRBD support.
    fn new(free_gib: &[u64], drbd: bool) -> World {
        let mut w = World {
            c: Cluster::default(),
            env: TestEnv(0),
            obs: TestObserved::default(),
        };
        w.c.apply(Change::PutRscGrp(ResourceGroup {
            name: ResourceGroupName::new(DEFAULT_RSC_GRP).unwrap(),
            description: String::new(),
            props: Props::new(),
            select_filter: SelectFilter::default(),
            peer_slots: None,
            volume_groups: Default::default(),
            uuid: "rg".into(),
        }));
        for (i, free) in free_gib.iter().enumerate() {
            let name = format!("node{i}");
            w.add_node(&name, *free, drbd);
        }
        w
    }

    fn add_node(&mut self, name: &str, free_gib: u64, drbd: bool) {
        let p = create_node(
            &self.c,
            &mut self.env,
            &NodeCreate {
                name: name.into(),
                net_interfaces: vec![NetIfCreate {
                    name: "default".into(),
                    address: format!("10.0.0.{}", self.c.nodes.len() + 1),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .unwrap();
        commit(&mut self.c, &p);
        let n = NodeName::new(name).unwrap();
        let mut caps = Capabilities {
            providers: vec![
                ProviderKind::Diskless,
                ProviderKind::File,
                ProviderKind::FileThin,
            ],
            layers: vec![LayerKind::Storage],
            ..Default::default()
        };
        if drbd {
            caps.layers.push(LayerKind::Drbd);
        } else {
            caps.unsupported_layers.insert(
                LayerKind::Drbd,
                vec!["DRBD kernel module not loaded".into()],
            );
        }
        self.obs.online.insert(n.clone(), caps);
        let p = create_stor_pool(
            &self.c,
            &mut self.env,
            &self.obs,
            name,
            &StorPoolCreate {
                name: "pool1".into(),
                provider_kind: "FILE".into(),
                props: [(STOR_POOL_NAME_KEY.to_string(), "/srv/pool".to_string())].into(),
                ..Default::default()
            },
        )
        .unwrap();
        commit(&mut self.c, &p);
        self.obs.pools.insert(
            (n, StorPoolName::new("pool1").unwrap()),
            PoolState {
                free_capacity_kib: free_gib * GIB,
                total_capacity_kib: 100 * GIB,
                ..Default::default()
            },
        );
    }

    fn apply(&mut self, plan: PlanResult) -> Plan {
        let plan = plan.unwrap();
        commit(&mut self.c, &plan);
        plan
    }

    fn rd_with_volume(&mut self, name: &str, size_kib: i64) {
        let p = create_rd(
            &self.c,
            &mut self.env,
            &RscDfnCreate {
                name: Some(name.into()),
                ..Default::default()
            },
        );
        self.apply(p);
        let p = create_vd(
            &self.c,
            &mut self.env,
            &self.obs,
            name,
            &VlmDfnCreate {
                size_kib,
                ..Default::default()
            },
        );
        self.apply(p);
    }

    fn nodes_of(&self, rsc: &str) -> Vec<String> {
        self.c
            .resources_of(&ResourceName::new(rsc).unwrap())
            .filter(|r| !r.is_tiebreaker())
            .map(|r| r.node.to_string())
            .collect()
    }
}

fn place(count: u32) -> AutoplaceRequest {
    AutoplaceRequest {
        filter: SelectFilter {
            place_count: Some(count),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn autoplace_prefers_most_free_space() {
    let mut w = World::new(&[10, 50, 30], true);
    w.rd_with_volume("res1", GIB as i64);
    let p = autoplace(&w.c, &mut w.env, &w.obs, "res1", &place(2));
    let plan = w.apply(p);
    assert_eq!(w.nodes_of("res1"), vec!["node1", "node2"]);
    let rd = w.c.rsc_dfns.values().next().unwrap();
    assert_eq!(rd.layer_stack, vec![LayerKind::Drbd, LayerKind::Storage]);
    assert_eq!(
        plan.replies
            .iter()
            .filter(|r| r.object == ObjKind::Rsc && r.message.starts_with("New resource"))
            .count(),
        2
    );
    // Placing again with the same count has nothing to do.
    let again = autoplace(&w.c, &mut w.env, &w.obs, "res1", &place(2)).unwrap();
    assert!(again.changes.is_empty());
    assert_eq!(again.replies[0].severity, Severity::Info);
}

#[test]
fn autoplace_skips_full_and_offline_nodes_and_explains() {
    let mut w = World::new(&[1, 50, 30], true);
    w.obs.online.remove(&NodeName::new("node2").unwrap());
    w.rd_with_volume("big", 2 * GIB as i64);
    let err = autoplace(&w.c, &mut w.env, &w.obs, "big", &place(2)).unwrap_err();
    assert_eq!(err.code, code::FAIL_NOT_ENOUGH_NODES);
    let details = err.details.unwrap();
    assert!(
        details.contains("node 'node2': node is offline"),
        "{details}"
    );
    assert!(details.contains("node0"), "{details}");
    assert!(w.nodes_of("big").is_empty());
}

#[test]
fn without_drbd_only_one_diskful_copy() {
    let mut w = World::new(&[10, 20], false);
    w.rd_with_volume("r1", GIB as i64);
    let err = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(2)).unwrap_err();
    assert_eq!(err.code, code::FAIL_INVLD_LAYER_STACK);
    assert!(err.cause.unwrap().contains("DRBD kernel module not loaded"));
    // One replica works and gets the storage layer alone.
    let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(1));
    w.apply(p);
    assert_eq!(w.nodes_of("r1"), vec!["node1"]);
    assert_eq!(
        w.c.rsc_dfns.values().next().unwrap().layer_stack,
        vec![LayerKind::Storage]
    );
    // A second diskful copy by hand is refused too.
    let err = create_resources(
        &w.c,
        &mut w.env,
        &w.obs,
        "r1",
        &[RscCreate {
            node: "node0".into(),
            props: [("StorPoolName".to_string(), "pool1".to_string())].into(),
            ..Default::default()
        }],
    )
    .unwrap_err();
    assert_eq!(err.code, code::FAIL_INVLD_LAYER_STACK);
    // ... and so is make-available, which would need a second copy.
    let err = make_available(&w.c, &mut w.env, &w.obs, "r1", "node0", false, &[]).unwrap_err();
    assert_eq!(err.code, code::FAIL_INVLD_LAYER_STACK);
}

#[test]
fn a_chosen_layer_list_without_drbd_gives_independent_volumes() {
    // The guide's local-volume example: rd create --layer-list storage, then a resource on
    // each of two nodes.
    let mut w = World::new(&[10, 20], false);
    let p = create_rd(
        &w.c,
        &mut w.env,
        &RscDfnCreate {
            name: Some("LocalData".into()),
            layer_stack: vec!["storage".into()],
            ..Default::default()
        },
    );
    w.apply(p);
    let p = create_vd(
        &w.c,
        &mut w.env,
        &w.obs,
        "LocalData",
        &VlmDfnCreate {
            size_kib: 150 * 1024,
            ..Default::default()
        },
    );
    w.apply(p);
    let on = |node: &str| RscCreate {
        node: node.into(),
        props: [("StorPoolName".to_string(), "pool1".to_string())].into(),
        ..Default::default()
    };
    let p = create_resources(
        &w.c,
        &mut w.env,
        &w.obs,
        "LocalData",
        &[on("node0"), on("node1")],
    );
    let plan = w.apply(p);
    let mut nodes = w.nodes_of("LocalData");
    nodes.sort();
    assert_eq!(nodes, vec!["node0", "node1"]);
    let warning = plan
        .replies
        .iter()
        .find(|r| r.severity == Severity::Warning)
        .expect("a warning about independent volumes");
    assert!(warning.message.contains("independent"), "{warning:?}");
    assert_eq!(warning.code, code::WARN_INVLD_CONF);

    // Chosen on the request of an autoplace: the same.
    w.rd_with_volume("r2", GIB as i64);
    let mut req = place(2);
    req.layer_list = vec!["storage".into()];
    let p = autoplace(&w.c, &mut w.env, &w.obs, "r2", &req);
    let plan = w.apply(p);
    assert_eq!(w.nodes_of("r2").len(), 2);
    assert!(plan.replies.iter().any(|r| r.severity == Severity::Warning));
    // Chosen by nobody: the user expected replication, and is refused (see
    // without_drbd_only_one_diskful_copy).
}

#[test]
fn equal_nodes_share_the_replicas() {
    // Identical nodes whose reports do not move (thin pools, or reports lagging behind):
    // replicas spread instead of piling up on the first nodes by name.
    let mut w = World::new(&[50, 50, 50, 50], true);
    for i in 0..8 {
        let name = format!("r{i}");
        w.rd_with_volume(&name, GIB as i64);
        let p = autoplace(&w.c, &mut w.env, &w.obs, &name, &place(2));
        w.apply(p);
    }
    for n in 0..4 {
        let node = NodeName::new(&format!("node{n}")).unwrap();
        let count = w.c.resources_on(&node).filter(|r| !r.is_diskless()).count();
        assert_eq!(count, 4, "node{n} holds {count} of 16 replicas");
    }
}

#[test]
fn promised_space_counts_until_the_node_reports() {
    // node1 has the most free space by its last report, but volumes placed since then
    // took more than the difference.
    let mut w = World::new(&[30, 40, 20], true);
    w.obs.promised.insert(
        (
            NodeName::new("node1").unwrap(),
            StorPoolName::new("pool1").unwrap(),
        ),
        25 * GIB,
    );
    w.rd_with_volume("r1", GIB as i64);
    let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(2));
    w.apply(p);
    let mut nodes = w.nodes_of("r1");
    nodes.sort();
    assert_eq!(nodes, vec!["node0", "node2"]);
}

#[test]
fn nodes_without_a_free_port_are_no_candidates() {
    // node0 has the most room but only two DRBD ports: after two replicas it is skipped,
    // and every placement still succeeds on the others.
    let mut w = World::new(&[90, 10, 10, 10], true);
    let node0 = NodeName::new("node0").unwrap();
    let mut n = w.c.nodes[&node0].clone();
    n.props
        .insert(drbd::PROP_PORT_RANGE.into(), "7000-7001".into());
    w.c.apply(Change::PutNode(n));
    for i in 0..6 {
        let name = format!("r{i}");
        w.rd_with_volume(&name, GIB as i64);
        let p = autoplace(&w.c, &mut w.env, &w.obs, &name, &place(3));
        w.apply(p);
        assert_eq!(w.nodes_of(&name).len(), 3, "{name}");
    }
    let on_node0 =
        w.c.resources_on(&node0)
            .filter(|r| !r.is_diskless())
            .count();
    assert_eq!(on_node0, 2);
    // With too few ports left anywhere, the refusal names the ports.
    for other in ["node1", "node2", "node3"] {
        let name = NodeName::new(other).unwrap();
        let mut o = w.c.nodes[&name].clone();
        o.props
            .insert(drbd::PROP_PORT_RANGE.into(), "7000-7005".into());
        w.c.apply(Change::PutNode(o));
    }
    w.rd_with_volume("full", GIB as i64);
    let err = autoplace(&w.c, &mut w.env, &w.obs, "full", &place(3)).unwrap_err();
    assert_eq!(err.code, code::FAIL_NOT_ENOUGH_NODES);
    let details = err.details.unwrap();
    assert!(
        details.contains("no free DRBD port from 7000 to 7001"),
        "{details}"
    );
}

#[test]
fn placement_rules() {
    let mut w = World::new(&[], true);
    // Tie-breakers would sit on the spare nodes; these rules are about diskful replicas.
    w.c.ctrl_props
        .insert(super::drbd::PROP_AUTO_TIEBREAKER.into(), "false".into());
    for (name, site, free) in [
        ("a1", "a", 90),
        ("a2", "a", 80),
        ("b1", "b", 70),
        ("b2", "b", 10),
    ] {
        w.add_node(name, free, true);
        let n = NodeName::new(name).unwrap();
        let mut node = w.c.nodes[&n].clone();
        node.props.insert("Aux/site".into(), site.into());
        w.c.apply(Change::PutNode(node));
    }
    w.rd_with_volume("diff", GIB as i64);
    let mut req = place(2);
    req.filter.replicas_on_different = vec!["site".into()];
    let p = autoplace(&w.c, &mut w.env, &w.obs, "diff", &req);
    w.apply(p);
    assert_eq!(w.nodes_of("diff"), vec!["a1", "b1"]);

    w.rd_with_volume("same", GIB as i64);
    let mut req = place(2);
    req.filter.replicas_on_same = vec!["Aux/site=b".into()];
    let p = autoplace(&w.c, &mut w.env, &w.obs, "same", &req);
    w.apply(p);
    assert_eq!(w.nodes_of("same"), vec!["b1", "b2"]);

    w.rd_with_volume("avoid", GIB as i64);
    let mut req = place(1);
    req.filter.not_place_with_rsc = vec!["diff".into(), "same".into()];
    let p = autoplace(&w.c, &mut w.env, &w.obs, "avoid", &req);
    w.apply(p);
    assert_eq!(w.nodes_of("avoid"), vec!["a2"]);

    w.rd_with_volume("listed", GIB as i64);
    let mut req = place(1);
    req.filter.node_name_list = vec!["b2".into()];
    req.diskless_on_remaining = Some(true);
    let p = autoplace(&w.c, &mut w.env, &w.obs, "listed", &req);
    w.apply(p);
    let rscs: Vec<_> =
        w.c.resources_of(&ResourceName::new("listed").unwrap())
            .map(|r| (r.node.to_string(), r.is_diskless()))
            .collect();
    assert_eq!(
        rscs,
        vec![
            ("a1".into(), true),
            ("a2".into(), true),
            ("b1".into(), true),
            ("b2".into(), false)
        ]
    );
}

#[test]
fn explicit_create_checks_pool_and_space() {
    let mut w = World::new(&[1, 20], true);
    w.rd_with_volume("rr", 2 * GIB as i64);
    let req = |node: &str, pool: &str| RscCreate {
        node: node.into(),
        props: [("StorPoolName".to_string(), pool.to_string())].into(),
        ..Default::default()
    };
    let e = create_resources(&w.c, &mut w.env, &w.obs, "rr", &[req("node0", "pool1")]).unwrap_err();
    assert_eq!(e.code, code::FAIL_NOT_ENOUGH_FREE_SPACE);
    let e =
        create_resources(&w.c, &mut w.env, &w.obs, "rr", &[req("node1", "nopool")]).unwrap_err();
    assert_eq!(e.code, code::FAIL_NOT_FOUND_STOR_POOL);
    let e = create_resources(
        &w.c,
        &mut w.env,
        &w.obs,
        "rr",
        &[RscCreate {
            node: "node1".into(),
            ..Default::default()
        }],
    )
    .unwrap_err();
    assert_eq!(e.code, code::FAIL_NOT_FOUND_DFLT_STOR_POOL);
    let e = create_resources(&w.c, &mut w.env, &w.obs, "rr", &[req("ghost", "pool1")]).unwrap_err();
    assert_eq!(e.code, code::FAIL_NOT_FOUND_NODE);
    let e =
        create_resources(&w.c, &mut w.env, &w.obs, "nope", &[req("node1", "pool1")]).unwrap_err();
    assert_eq!(e.code, code::FAIL_NOT_FOUND_RSC_DFN);
    assert!(w.nodes_of("rr").is_empty());

    let p = create_resources(
        &w.c,
        &mut w.env,
        &w.obs,
        "rr",
        &[
            req("node1", "pool1"),
            RscCreate {
                node: "node0".into(),
                flags: vec!["DRBD_DISKLESS".into()],
                ..Default::default()
            },
        ],
    );
    w.apply(p);
    assert_eq!(w.nodes_of("rr"), vec!["node0", "node1"]);
    let e = create_resources(&w.c, &mut w.env, &w.obs, "rr", &[req("node1", "pool1")]).unwrap_err();
    assert_eq!(e.code, code::FAIL_EXISTS_RSC);
}

#[test]
fn spawn_is_all_or_nothing() {
    let mut w = World::new(&[10], false);
    let p = create_rg(
        &w.c,
        &mut w.env,
        &RscGrpCreate {
            name: "my_ssd_group".into(),
            select_filter: SelectFilter {
                place_count: Some(1),
                storage_pool_list: vec!["pool1".into()],
                ..Default::default()
            },
            ..Default::default()
        },
    );
    w.apply(p);
    // Without a volume group the sizes do not match.
    let req = Spawn {
        rsc_name: Some("my_ssd_res".into()),
        volume_sizes: vec![2 * GIB as i64],
        ..Default::default()
    };
    let e = spawn(&w.c, &mut w.env, &w.obs, "my_ssd_group", &req).unwrap_err();
    assert_eq!(e.code, code::FAIL_INVLD_VLM_SIZES);
    let partial = Spawn {
        partial: true,
        ..req.clone()
    };
    let e = spawn(&w.c, &mut w.env, &w.obs, "my_ssd_group", &partial).unwrap_err();
    assert_eq!(e.code, code::FAIL_INVLD_VLM_SIZES);
    let p = create_vg(&w.c, &mut w.env, "my_ssd_group", &VlmGrpCreate::default());
    w.apply(p);
    let p = create_vg(&w.c, &mut w.env, "my_ssd_group", &VlmGrpCreate::default());
    w.apply(p);
    // Fewer sizes than groups: the count is wrong (a partial spawn would take it).
    let e = spawn(&w.c, &mut w.env, &w.obs, "my_ssd_group", &req).unwrap_err();
    assert_eq!(e.code, code::FAIL_INVLD_VLM_COUNT);
    let p = delete_vg(&w.c, "my_ssd_group", 1);
    w.apply(p);
    let p = spawn(&w.c, &mut w.env, &w.obs, "my_ssd_group", &req);
    let plan = w.apply(p);
    assert_eq!(w.nodes_of("my_ssd_res"), vec!["node0"]);
    let rd = &w.c.rsc_dfns[&ResourceName::new("my_ssd_res").unwrap()];
    assert_eq!(rd.volume_definitions[&0].size_kib, 2 * GIB);
    assert_eq!(rd.layer_stack, vec![LayerKind::Storage]);
    assert!(plan.replies.iter().any(|r| r.object == ObjKind::Rsc));

    // A spawn whose placement fails creates no definition either.
    let big = Spawn {
        rsc_name: Some("too_big".into()),
        volume_sizes: vec![500 * GIB as i64],
        ..Default::default()
    };
    let e = spawn(&w.c, &mut w.env, &w.obs, "my_ssd_group", &big).unwrap_err();
    assert_eq!(e.code, code::FAIL_NOT_ENOUGH_NODES);
    assert!(!w
        .c
        .rsc_dfns
        .contains_key(&ResourceName::new("too_big").unwrap()));

    // Definitions only.
    let defs = Spawn {
        rsc_name: Some("defs".into()),
        volume_sizes: vec![GIB as i64],
        definitions_only: true,
        ..Default::default()
    };
    let p = spawn(&w.c, &mut w.env, &w.obs, "my_ssd_group", &defs);
    w.apply(p);
    assert!(w.nodes_of("defs").is_empty());
    assert_eq!(
        delete_rg(&w.c, "my_ssd_group").unwrap_err().code,
        code::FAIL_IN_USE
    );
}

#[test]
fn external_names_generate_valid_names() {
    let mut w = World::new(&[], false);
    let p = create_rd(
        &w.c,
        &mut w.env,
        &RscDfnCreate {
            external_name: Some("hlres".into()),
            ..Default::default()
        },
    );
    let plan = w.apply(p);
    assert_eq!(plan.replies[0].obj_refs["RscDfn"], "hlres");
    let p = create_rd(
        &w.c,
        &mut w.env,
        &RscDfnCreate {
            external_name: Some("my volume/01 (ünïcode)".into()),
            ..Default::default()
        },
    );
    let plan = w.apply(p);
    let generated = plan.replies[0].obj_refs["RscDfn"].clone();
    assert!(ResourceName::new(&generated).is_ok(), "{generated}");
    assert_eq!(generated, "my_volume_01___n_code_");
    let p = create_rd(
        &w.c,
        &mut w.env,
        &RscDfnCreate {
            external_name: Some("123".into()),
            ..Default::default()
        },
    );
    let plan = w.apply(p);
    assert_eq!(plan.replies[0].obj_refs["RscDfn"], "rsc_123");
    // The same external name twice is refused.
    let e = create_rd(
        &w.c,
        &mut w.env,
        &RscDfnCreate {
            external_name: Some("123".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code, code::FAIL_EXISTS_EXT_NAME);
}

#[test]
fn deletion_waits_for_the_node() {
    let mut w = World::new(&[10], false);
    w.rd_with_volume("gone", GIB as i64);
    let p = autoplace(&w.c, &mut w.env, &w.obs, "gone", &place(1));
    w.apply(p);
    let node = NodeName::new("node0").unwrap();
    let p = delete_rd(&w.c, &w.obs, "gone");
    w.apply(p);
    let name = ResourceName::new("gone").unwrap();
    assert!(w.c.rsc_dfns[&name].is_deleting());
    assert!(w.c.resource(&name, &node).unwrap().is_deleting());
    let marked = w.c.generation;
    // A report from before the deletion changes nothing.
    let plan = finish_deletions(&w.c, &node, marked - 1, &|_| None);
    assert!(plan.changes.is_empty());
    // The node still has it.
    let plan = finish_deletions(&w.c, &node, marked, &|_| Some(vec![0]));
    assert!(plan.changes.is_empty());
    let plan = finish_deletions(&w.c, &node, marked, &|_| None);
    commit(&mut w.c, &plan);
    assert!(!w.c.rsc_dfns.contains_key(&name));
    assert!(w.c.resource(&name, &node).is_none());
    assert!(w.c.resources_on(&node).next().is_none());
}

#[test]
fn volume_definition_delete_and_resize() {
    let mut w = World::new(&[10], false);
    w.rd_with_volume("vd", GIB as i64);
    let p = create_vd(
        &w.c,
        &mut w.env,
        &w.obs,
        "vd",
        &VlmDfnCreate {
            size_kib: GIB as i64,
            volume_number: Some(5),
            ..Default::default()
        },
    );
    w.apply(p);
    let p = autoplace(&w.c, &mut w.env, &w.obs, "vd", &place(1));
    w.apply(p);
    let name = ResourceName::new("vd").unwrap();
    let node = NodeName::new("node0").unwrap();
    assert_eq!(w.c.resource(&name, &node).unwrap().volumes.len(), 2);
    // Growing is fine, shrinking a deployed volume is not.
    let grow = VlmDfnModify {
        size_kib: Some(2 * GIB as i64),
        ..Default::default()
    };
    let p = modify_vd(&w.c, &w.obs, "vd", 0, &grow);
    w.apply(p);
    let shrink = VlmDfnModify {
        size_kib: Some(GIB as i64),
        ..Default::default()
    };
    let e = modify_vd(&w.c, &w.obs, "vd", 0, &shrink).unwrap_err();
    assert_eq!(e.code, code::FAIL_INVLD_VLM_SIZE);
    assert!(e.correction.unwrap().contains("--allow-shrink"));
    // Asked for explicitly, a volume without DRBD shrinks (with a warning).
    let shrink = VlmDfnModify {
        allow_shrink: true,
        ..shrink
    };
    let p = modify_vd(&w.c, &w.obs, "vd", 0, &shrink);
    assert!(p.as_ref().unwrap().replies[0]
        .message
        .contains("shrinks from"));
    w.apply(p);
    assert_eq!(w.c.rsc_dfns[&name].volume_definitions[&0].size_kib, GIB);
    let too_big = VlmDfnModify {
        size_kib: Some(50 * GIB as i64),
        ..Default::default()
    };
    assert_eq!(
        modify_vd(&w.c, &w.obs, "vd", 0, &too_big).unwrap_err().code,
        code::FAIL_NOT_ENOUGH_FREE_SPACE
    );
    // Deleting volume 5 waits for the node, then removes it from the resource too.
    let p = delete_vd(&w.c, "vd", 5);
    w.apply(p);
    let gen = w.c.generation;
    let plan = finish_deletions(&w.c, &node, gen, &|_| Some(vec![0]));
    commit(&mut w.c, &plan);
    assert_eq!(w.c.rsc_dfns[&name].volume_definitions.len(), 1);
    assert_eq!(w.c.resource(&name, &node).unwrap().volumes.len(), 1);
    // A single resource delete waits too.
    let p = delete_resource(&w.c, &mut w.env, &w.obs, "vd", "node0", false);
    w.apply(p);
    let gen = w.c.generation;
    let plan = finish_deletions(&w.c, &node, gen, &|_| None);
    commit(&mut w.c, &plan);
    assert!(w.c.resource(&name, &node).is_none());
    assert!(w.c.rsc_dfns.contains_key(&name), "only the resource goes");
}

#[test]
fn max_volume_size_query() {
    let w = World::new(&[10, 50, 30], false);
    let filter = SelectFilter {
        place_count: Some(2),
        ..Default::default()
    };
    let c = max_volume_sizes(&w.c, &w.obs, &filter);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].storage_pool, "pool1");
    assert_eq!(c[0].max_volume_size_kib, 30 * GIB);
    assert_eq!(c[0].node_names, vec!["node1", "node2"]);
    assert!(!c[0].all_thin);
}

mod drbd_numbers {
    use super::*;
    use crate::flags::Flag;
    use crate::plan::drbd;
    use std::collections::BTreeSet;

    fn rsc<'a>(w: &'a World, name: &str, node: &str) -> &'a crate::objects::Resource {
        w.c.resource(
            &ResourceName::new(name).unwrap(),
            &NodeName::new(node).unwrap(),
        )
        .unwrap()
    }

    fn live<'a>(w: &'a World, name: &str) -> Vec<&'a crate::objects::Resource> {
        w.c.resources_of(&ResourceName::new(name).unwrap())
            .filter(|r| !r.is_deleting())
            .collect()
    }

    #[test]
    fn three_replicas_get_ids_ports_minors_secret_and_quorum() {
        let mut w = World::new(&[10, 10, 10], true);
        w.rd_with_volume("r1", GIB as i64);
        w.rd_with_volume("r2", GIB as i64);
        let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(3));
        w.apply(p);
        let p = autoplace(&w.c, &mut w.env, &w.obs, "r2", &place(3));
        w.apply(p);
        let mut ids: Vec<u32> = live(&w, "r1").iter().map(|r| r.node_id.unwrap()).collect();
        ids.sort();
        assert_eq!(ids, vec![0, 1, 2]);
        for n in ["node0", "node1", "node2"] {
            assert_eq!(rsc(&w, "r1", n).tcp_port, Some(7000));
            assert_eq!(
                rsc(&w, "r2", n).tcp_port,
                Some(7001),
                "next free port on {n}"
            );
            assert_eq!(rsc(&w, "r1", n).peer_slots, Some(drbd::DEFAULT_PEER_SLOTS));
        }
        let r1 = &w.c.rsc_dfns[&ResourceName::new("r1").unwrap()];
        let r2 = &w.c.rsc_dfns[&ResourceName::new("r2").unwrap()];
        assert_eq!(
            r1.volume_definitions.values().next().unwrap().minor,
            Some(1000)
        );
        assert_eq!(
            r2.volume_definitions.values().next().unwrap().minor,
            Some(1001)
        );
        assert_eq!(r1.drbd_secret.as_ref().unwrap().len(), 20);
        assert_ne!(r1.drbd_secret, r2.drbd_secret);
        // Three diskful replicas: quorum by majority, and no tie-breaker.
        assert!(!live(&w, "r1").iter().any(|r| r.is_tiebreaker()));
        assert_eq!(
            drbd::auto_quorum(&w.c, r1, &live(&w, "r1")),
            Some(("majority".into(), "io-error".into()))
        );
    }

    #[test]
    fn two_replicas_get_a_tiebreaker_that_follows_the_count() {
        let mut w = World::new(&[10, 10, 10, 10], true);
        w.rd_with_volume("r1", GIB as i64);
        let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(2));
        let plan = w.apply(p);
        let rs = live(&w, "r1");
        assert_eq!(rs.len(), 3, "two diskful and a tie-breaker");
        let tb: Vec<_> = rs.iter().filter(|r| r.is_tiebreaker()).collect();
        assert_eq!(tb.len(), 1);
        assert!(tb[0].flags.has(Flag::DrbdDiskless));
        assert!(tb[0].node_id.is_some() && tb[0].tcp_port.is_some());
        assert!(plan
            .replies
            .iter()
            .any(|r| r.message.contains("Tie breaker resource 'r1' created")));
        let rd = &w.c.rsc_dfns[&ResourceName::new("r1").unwrap()];
        assert_eq!(
            drbd::auto_quorum(&w.c, rd, &rs),
            Some(("majority".into(), "io-error".into()))
        );
        let tb_node = tb[0].node.to_string();
        // A third diskful replica makes the tie-breaker unnecessary.
        let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(3));
        w.apply(p);
        assert!(rsc(&w, "r1", &tb_node).is_deleting() || tb_node_took_replica(&w, &tb_node));
        assert_eq!(
            live(&w, "r1").iter().filter(|r| !r.is_diskless()).count(),
            3
        );
        assert!(!live(&w, "r1").iter().any(|r| r.is_tiebreaker()));
    }

    #[test]
    fn a_diskless_resource_takes_the_tiebreaker_over() {
        let mut w = World::new(&[10, 10, 10], true);
        w.rd_with_volume("r1", GIB as i64);
        let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(2));
        w.apply(p);
        let tb = live(&w, "r1")
            .into_iter()
            .find(|r| r.is_tiebreaker())
            .expect("a tie-breaker")
            .clone();
        let req = |flags: &[&str]| RscCreate {
            node: tb.node.to_string(),
            props: Default::default(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            layer_list: Vec::new(),
            drbd_node_id: None,
        };
        // A diskful replica there is refused, saying why and what to do (plans never change
        // the cluster they read).
        let e = create_resources(&w.c, &mut w.env, &w.obs, "r1", &[req(&[])]).unwrap_err();
        assert_eq!(e.code, code::FAIL_EXISTS_RSC);
        assert!(e.message.contains("tie-breaker"), "{}", e.message);
        assert!(e.correction.as_deref().unwrap_or("").contains("diskless"));
        // A diskless one takes it over: same node id and port, no longer a tie-breaker, and
        // no new tie-breaker elsewhere.
        let p = create_resources(&w.c, &mut w.env, &w.obs, "r1", &[req(&["DRBD_DISKLESS"])]);
        let plan = w.apply(p);
        assert!(plan
            .replies
            .iter()
            .any(|r| r.code == code::INFO_TIE_BREAKER_TAKEOVER));
        let now = rsc(&w, "r1", tb.node.as_str());
        assert!(!now.is_tiebreaker() && now.is_diskless() && !now.is_deleting());
        assert_eq!((now.node_id, now.tcp_port), (tb.node_id, tb.tcp_port));
        assert_eq!(live(&w, "r1").len(), 3);
        assert!(!live(&w, "r1").iter().any(|r| r.is_tiebreaker()));
        // Asked again: now it simply exists.
        let e = create_resources(&w.c, &mut w.env, &w.obs, "r1", &[req(&["DRBD_DISKLESS"])])
            .unwrap_err();
        assert!(e.message.contains("already exists"), "{}", e.message);
    }

    fn tb_node_took_replica(w: &World, node: &str) -> bool {
        !rsc(w, "r1", node).is_diskless()
    }

    #[test]
    fn deleting_down_to_two_adds_a_tiebreaker_and_to_one_drops_it() {
        let mut w = World::new(&[10, 10, 10, 10], true);
        w.rd_with_volume("r1", GIB as i64);
        let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(3));
        w.apply(p);
        let diskful: Vec<String> = live(&w, "r1").iter().map(|r| r.node.to_string()).collect();
        let p = delete_resource(&w.c, &mut w.env, &w.obs, "r1", &diskful[0], false);
        w.apply(p);
        let rs = live(&w, "r1");
        assert_eq!(rs.iter().filter(|r| !r.is_diskless()).count(), 2);
        assert_eq!(rs.iter().filter(|r| r.is_tiebreaker()).count(), 1);
        // The tie-breaker does not reuse the node id of the one being deleted.
        let ids: BTreeSet<u32> =
            w.c.resources_of(&ResourceName::new("r1").unwrap())
                .map(|r| r.node_id.unwrap())
                .collect();
        assert_eq!(ids.len(), 4);
        // keep_tiebreaker keeps it when going down to one.
        let p = delete_resource(&w.c, &mut w.env, &w.obs, "r1", &diskful[1], true);
        w.apply(p);
        assert_eq!(
            live(&w, "r1").iter().filter(|r| r.is_tiebreaker()).count(),
            1
        );
        // Without it, the tie-breaker goes with the replica count.
        let mut w2 = World::new(&[10, 10, 10], true);
        w2.rd_with_volume("r1", GIB as i64);
        let p = autoplace(&w2.c, &mut w2.env, &w2.obs, "r1", &place(2));
        w2.apply(p);
        let d: Vec<String> = live(&w2, "r1")
            .iter()
            .filter(|r| !r.is_diskless())
            .map(|r| r.node.to_string())
            .collect();
        let p = delete_resource(&w2.c, &mut w2.env, &w2.obs, "r1", &d[0], false);
        w2.apply(p);
        assert!(live(&w2, "r1").iter().all(|r| !r.is_tiebreaker()));
        assert_eq!(live(&w2, "r1").len(), 1);
    }

    #[test]
    fn auto_tiebreaker_and_quorum_can_be_switched_off() {
        let mut w = World::new(&[10, 10, 10], true);
        w.c.ctrl_props
            .insert(drbd::PROP_AUTO_TIEBREAKER.into(), "false".into());
        w.c.ctrl_props
            .insert(drbd::PROP_AUTO_QUORUM.into(), "disabled".into());
        w.rd_with_volume("r1", GIB as i64);
        let p = autoplace(&w.c, &mut w.env, &w.obs, "r1", &place(2));
        w.apply(p);
        assert_eq!(live(&w, "r1").len(), 2);
        let rd = &w.c.rsc_dfns[&ResourceName::new("r1").unwrap()];
        assert_eq!(drbd::auto_quorum(&w.c, rd, &live(&w, "r1")), None);
    }

    #[test]
    fn explicit_port_node_id_and_their_clashes() {
        let mut w = World::new(&[10, 10, 10], true);
        let p = create_rd(
            &w.c,
            &mut w.env,
            &RscDfnCreate {
                name: Some("legacy".into()),
                drbd_port: Some(15500),
                ..Default::default()
            },
        );
        w.apply(p);
        let p = create_vd(
            &w.c,
            &mut w.env,
            &w.obs,
            "legacy",
            &VlmDfnCreate {
                size_kib: GIB as i64,
                minor: Some(9100),
                ..Default::default()
            },
        );
        w.apply(p);
        let req = |node: &str, id: Option<i64>| RscCreate {
            node: node.into(),
            drbd_node_id: id,
            props: [("StorPoolName".to_string(), "pool1".to_string())].into(),
            ..Default::default()
        };
        let p = create_resources(&w.c, &mut w.env, &w.obs, "legacy", &[req("node0", Some(4))]);
        w.apply(p);
        let r = rsc(&w, "legacy", "node0");
        assert_eq!((r.node_id, r.tcp_port), (Some(4), Some(15500)));
        let rd = &w.c.rsc_dfns[&ResourceName::new("legacy").unwrap()];
        assert_eq!(
            rd.volume_definitions.values().next().unwrap().minor,
            Some(9100)
        );
        // Node id 4 is taken: refused (a refused plan changes nothing).
        let err = create_resources(&w.c, &mut w.env, &w.obs, "legacy", &[req("node1", Some(4))])
            .unwrap_err();
        assert_eq!(err.code, code::FAIL_INVLD_NODE_ID);
        assert!(err.message.contains("node 'node0'"), "{}", err.message);
        let err = create_resources(
            &w.c,
            &mut w.env,
            &w.obs,
            "legacy",
            &[req("node1", Some(32))],
        )
        .unwrap_err();
        assert_eq!(err.code, code::FAIL_INVLD_NODE_ID);
        assert!(w
            .c
            .resource(
                &ResourceName::new("legacy").unwrap(),
                &NodeName::new("node1").unwrap()
            )
            .is_none());
        // Port 15500 belongs to 'legacy': another definition cannot have it.
        let err = create_rd(
            &w.c,
            &mut w.env,
            &RscDfnCreate {
                name: Some("other".into()),
                drbd_port: Some(15500),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.code, code::FAIL_INVLD_RSC_PORT);
        // ...and automatic ports avoid it.
        w.rd_with_volume("auto", GIB as i64);
        let p = autoplace(&w.c, &mut w.env, &w.obs, "auto", &place(3));
        w.apply(p);
        assert_eq!(rsc(&w, "auto", "node0").tcp_port, Some(7000));
        // Minor 9100 is taken.
        let err = create_vd(
            &w.c,
            &mut w.env,
            &w.obs,
            "auto",
            &VlmDfnCreate {
                size_kib: GIB as i64,
                minor: Some(9100),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.code, code::FAIL_INVLD_MINOR_NR);
        // A volume added to a deployed DRBD definition gets the next free minor.
        let p = create_vd(
            &w.c,
            &mut w.env,
            &w.obs,
            "auto",
            &VlmDfnCreate {
                size_kib: GIB as i64,
                ..Default::default()
            },
        );
        w.apply(p);
        let minors: Vec<Option<u32>> = w.c.rsc_dfns[&ResourceName::new("auto").unwrap()]
            .volume_definitions
            .values()
            .map(|v| v.minor)
            .collect();
        assert_eq!(minors, vec![Some(1000), Some(1001)]);
    }

    #[test]
    fn too_few_peer_slots_too_many_nodes_and_exhausted_ports_are_refused() {
        let mut w = World::new(&[10, 10, 10], true);
        let p = create_rd(
            &w.c,
            &mut w.env,
            &RscDfnCreate {
                name: Some("tight".into()),
                drbd_peer_slots: Some(1),
                ..Default::default()
            },
        );
        w.apply(p);
        let p = create_vd(
            &w.c,
            &mut w.env,
            &w.obs,
            "tight",
            &VlmDfnCreate {
                size_kib: GIB as i64,
                ..Default::default()
            },
        );
        w.apply(p);
        let err = autoplace(&w.c, &mut w.env, &w.obs, "tight", &place(3)).unwrap_err();
        assert_eq!(err.code, code::FAIL_INSUFFICIENT_PEER_SLOTS);
        assert!(err.message.contains("2 peers"), "{}", err.message);
        assert!(err.correction.unwrap().contains("--peer-slots"));
        assert_eq!(live(&w, "tight").len(), 0);

        // One port per node.
        w.c.ctrl_props
            .insert(drbd::PROP_PORT_RANGE.into(), "7000-7000".into());
        w.rd_with_volume("ra", GIB as i64);
        w.rd_with_volume("rb", GIB as i64);
        let p = autoplace(&w.c, &mut w.env, &w.obs, "ra", &place(3));
        w.apply(p);
        // The autoplacer does not pick nodes without a free port...
        let err = autoplace(&w.c, &mut w.env, &w.obs, "rb", &place(3)).unwrap_err();
        assert_eq!(err.code, code::FAIL_NOT_ENOUGH_NODES);
        let details = err.details.unwrap();
        assert!(
            details.contains("no free DRBD port from 7000 to 7000"),
            "{details}"
        );
        // ... and a resource asked for on such a node by name is refused with the reason.
        let err = create_resources(
            &w.c,
            &mut w.env,
            &w.obs,
            "rb",
            &[RscCreate {
                node: "node0".into(),
                props: [("StorPoolName".to_string(), "pool1".to_string())].into(),
                ..Default::default()
            }],
        )
        .unwrap_err();
        assert_eq!(err.code, code::FAIL_POOL_EXHAUSTED_TCP_PORT);
        assert!(err.correction.unwrap().contains(drbd::PROP_PORT_RANGE));

        // 33 nodes cannot share one DRBD resource.
        let mut big = World::new(&[10; 33], true);
        big.c
            .ctrl_props
            .insert(drbd::PROP_PEER_SLOTS.into(), "31".into());
        big.rd_with_volume("wide", GIB as i64);
        let err = autoplace(&big.c, &mut big.env, &big.obs, "wide", &place(33)).unwrap_err();
        assert_eq!(err.code, code::FAIL_INSUFFICIENT_PEER_SLOTS);
        assert!(err.message.contains("at most 32"), "{}", err.message);
    }
}

mod drbd84;
mod rconn;
mod safety;
mod snapshot;

/// A toggle-disk migration is indexed on its node until it is finished (the check after each
/// DRBD report looks only at the index), and finishing it deletes the source replica.
#[test]
fn a_migration_is_indexed_until_it_finishes() {
    use super::rsc::{finish_migration, toggle_disk, ToggleDisk};
    let mut w = World::new(&[10, 10, 10], true);
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
    let p = create_resources(
        &w.c,
        &mut w.env,
        &w.obs,
        "r1",
        &[RscCreate {
            node: "node2".into(),
            flags: vec!["DRBD_DISKLESS".into()],
            ..Default::default()
        }],
    );
    w.apply(p);
    let (r1, n0, n2) = (
        ResourceName::new("r1").unwrap(),
        NodeName::new("node0").unwrap(),
        NodeName::new("node2").unwrap(),
    );
    assert_eq!(w.c.migrations_on(&n2).count(), 0);
    let req = ToggleDisk {
        diskful: true,
        storage_pool: Some("pool1".into()),
        migrate_from: Some("node0".into()),
    };
    let p = toggle_disk(&w.c, &mut w.env, &w.obs, "r1", "node2", &req);
    w.apply(p);
    let on: Vec<&str> = w.c.migrations_on(&n2).map(|r| r.name.as_str()).collect();
    assert_eq!(on, ["r1"]);
    assert_eq!(w.c.migrations_on(&n0).count(), 0);
    let p = finish_migration(&w.c, &mut w.env, &w.obs, &r1, &n2, &n0);
    w.apply(p);
    assert_eq!(w.c.migrations_on(&n2).count(), 0);
    assert!(w.c.resource(&r1, &n0).unwrap().is_deleting());
}
