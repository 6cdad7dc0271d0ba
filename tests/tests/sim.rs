//! Placement and dispatch on a controller with simulated satellites.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_client::{ClientError, Method};
use strata_tests::sim::SimCluster;

const WARN_NOT_CONNECTED: u64 = 1002;
const WARN_STLT_NOT_UPDATED: u64 = 1003;

fn spawn(s: &SimCluster, rg: &str, rsc: &str) -> Result<Vec<strata_tests::ApiCallRc>, ClientError> {
    let client = s.c.client();
    s.c.block(client.write(
        Method::POST,
        &format!("/v1/resource-groups/{rg}/spawn"),
        Some(&json!({"resource_definition_name": rsc, "volume_sizes": [1024]})),
    ))
}

/// Diskful replicas per node.
fn replicas_per_node(s: &SimCluster) -> BTreeMap<String, usize> {
    let client = s.c.client();
    let all =
        s.c.block(client.resources(&[], &[], &[], &[]))
            .expect("resource list");
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for r in all {
        let diskless = r
            .resource
            .flags
            .iter()
            .any(|f| f.contains("DISKLESS") || f == "TIE_BREAKER");
        if !diskless {
            *per.entry(r.resource.node_name.clone()).or_default() += 1;
        }
    }
    per
}

#[test]
fn more_definitions_than_a_node_has_ports_all_succeed_and_spread() {
    let s = SimCluster::start(4, "");
    let client = s.c.client();
    // Ten DRBD ports per node: 40 replicas fit in the cluster, 10 on any one node.
    s.c.block(client.write(
        Method::POST,
        "/v1/controller/properties",
        Some(&json!({"override_props": {
            "TcpPortAutoRange": "7000-7009",
            "DrbdOptions/auto-add-quorum-tiebreaker": "false"
        }})),
    ))
    .expect("port range");
    s.create_group("pairs", 2);
    for i in 0..20 {
        let r = spawn(&s, "pairs", &format!("r{i:02}"));
        assert!(r.is_ok(), "spawn {i}: {r:?}");
    }
    let per = replicas_per_node(&s);
    assert_eq!(per.len(), 4, "{per:?}");
    assert!(per.values().all(|n| *n == 10), "{per:?}");
    // The cluster is full now: the refusal says why, and nothing is left behind.
    match spawn(&s, "pairs", "r20") {
        Err(ClientError::Api { replies, .. }) => {
            let text = format!("{replies:?}");
            assert!(
                text.contains("no free DRBD port from 7000 to 7009"),
                "{text}"
            );
        }
        other => panic!("spawn into a full cluster: {other:?}"),
    }
    let rds =
        s.c.block(client.raw(Method::GET, "/v1/resource-definitions", None))
            .unwrap();
    let rds: serde_json::Value = serde_json::from_slice(&rds.1).unwrap();
    assert_eq!(rds.as_array().unwrap().len(), 20, "{rds}");
}

#[test]
fn equal_nodes_share_replicas_under_concurrent_spawns() {
    let s = SimCluster::start(6, "");
    s.create_group("triples", 3);
    let client = s.c.client();
    // Six clients at once, so that placements run ahead of the nodes' reports.
    s.c.block(async {
        let mut tasks = Vec::new();
        for w in 0..6 {
            let cl = client.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let r = cl
                        .write(
                            Method::POST,
                            "/v1/resource-groups/triples/spawn",
                            Some(&json!({"resource_definition_name": format!("c{w}x{i}"), "volume_sizes": [1024]})),
                        )
                        .await;
                    assert!(r.is_ok(), "{r:?}");
                }
            }));
        }
        for t in tasks {
            t.await.expect("spawner");
        }
    });
    let per = replicas_per_node(&s);
    // 180 replicas on 6 equal nodes: 30 each, give or take a few for concurrent choices.
    assert_eq!(per.values().sum::<usize>(), 180);
    for (node, n) in &per {
        assert!((25..=35).contains(n), "{node} holds {n}: {per:?}");
    }
    listing_pages_add_up_to_the_whole(&s, 180);
}

/// The names and nodes of a `/v1/view/resources` answer.
fn listed(s: &SimCluster, query: &str) -> Vec<(String, String)> {
    let client = s.c.client();
    let (status, body) =
        s.c.block(client.raw(Method::GET, &format!("/v1/view/resources{query}"), None))
            .expect("listing");
    assert!(status.is_success(), "{query}: {status}");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("the listing is JSON");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().expect("name").to_string(),
                r["node_name"].as_str().expect("node").to_string(),
            )
        })
        .collect()
}

/// A listing larger than one part of the streamed answer (180 resources are several parts)
/// is one JSON array, in definition order, and its pages fit together exactly.
fn listing_pages_add_up_to_the_whole(s: &SimCluster, total: usize) {
    let all = listed(s, "");
    assert_eq!(all.len(), total);
    let distinct: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), total, "a resource is listed twice");
    let names: Vec<&String> = all.iter().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_ascii_uppercase());
    assert_eq!(names, sorted, "definitions are listed in name order");
    let mut paged = Vec::new();
    for offset in (0..total + 50).step_by(47) {
        paged.extend(listed(s, &format!("?offset={offset}&limit=47")));
    }
    assert_eq!(paged, all);
    // A node filter keeps that node's resources only, in the same order.
    let node = &all[0].1;
    let mine: Vec<_> = all.iter().filter(|(_, n)| n == node).cloned().collect();
    assert_eq!(listed(s, &format!("?nodes={node}")), mine);
    // Named definitions come in the order asked, unknown ones are skipped.
    let (a, b) = (&all[total - 1].0, &all[0].0);
    let asked = listed(s, &format!("?resources={a},nosuchrsc,{b}"));
    assert_eq!(asked.len(), 6, "{asked:?}");
    assert!(asked[..3].iter().all(|(n, _)| n == a) && asked[3..].iter().all(|(n, _)| n == b));
    assert!(listed(s, "?resources=nosuchrsc").is_empty());
}

#[test]
fn nodes_that_do_not_answer_cost_one_time_out_together() {
    let s = SimCluster::start(4, "[controller]\nsatellite_timeout_secs = 3\n");
    s.create_group("fours", 4);
    for i in 0..4 {
        s.stall(i, true);
    }
    let started = Instant::now();
    let replies = spawn(&s, "fours", "slow").expect("the change is recorded");
    let took = started.elapsed();
    for i in 0..4 {
        s.stall(i, false);
    }
    // Each node either timed out on this wait or its link gave up on it first: both are
    // "recorded, applied when the node answers".
    for i in 0..4 {
        let node = SimCluster::node_name(i);
        let warned = replies.iter().any(|r| {
            r.is_warning()
                && [WARN_STLT_NOT_UPDATED, WARN_NOT_CONNECTED].contains(&r.code())
                && r.message.contains(&format!("'{node}'"))
        });
        assert!(warned, "no warning for {node}: {replies:#?}");
    }
    // One time-out (3 s) for all four, not four in a row (12 s).
    assert!(
        took < Duration::from_secs(8),
        "the answer took {took:?} for four silent nodes with a 3 s time-out"
    );
}

#[test]
fn changes_reach_nodes_as_deltas() {
    let s = SimCluster::start(3, "");
    s.create_group("trio", 3);
    s.wait_reported();
    let before: Vec<(u64, u64)> = (0..3).map(|i| s.push_counts(i)).collect();
    for i in 0..30 {
        let r = spawn(&s, "trio", &format!("d{i:02}"));
        assert!(r.is_ok(), "spawn {i}: {r:?}");
    }
    for i in 0..3u16 {
        let (full, delta) = s.push_counts(i);
        let (full0, delta0) = before[i as usize];
        // Every spawn reached every node, each as the changes only.
        assert_eq!(
            full,
            full0,
            "node {i} got whole configurations again: {}",
            s.c.controller.log_text()
        );
        assert!(
            delta - delta0 >= 30,
            "node {i}: {} deltas for 30 spawns",
            delta - delta0
        );
    }
    // A controller restart cannot know what the nodes hold: one whole configuration each,
    // then deltas again; nothing is lost on the way.
    let mut s = s;
    s.c.kill_controller();
    s.c.start_controller();
    s.wait_reported();
    let r = spawn(&s, "trio", "after");
    assert!(r.is_ok(), "{r:?}");
    let per = replicas_per_node(&s);
    assert_eq!(per.values().sum::<usize>(), 31 * 3, "{per:?}");
    for i in 0..3u16 {
        let (full, _) = s.push_counts(i);
        assert_eq!(full, before[i as usize].0 + 1, "node {i}");
    }
}
