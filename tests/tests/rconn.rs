//! Resource connections end to end: a DRBD option set on the connection between two nodes
//! reaches the `.res` files of exactly those two nodes, for that connection only, as the real
//! drbdadm reads them; bad requests are refused with LINSTOR's codes and change nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use strata_client::{ClientError, Method};
use strata_tests::{ok_replies, ApiCallRc, TestCluster};

const MIB: u64 = 1024; // KiB
const RSC: &str = "rconn";
const CONNS: &str = "/v1/resource-definitions/rconn/resource-connections";

/// The `connection { ... }` blocks of a dump: their two hosts and their text with blanks
/// collapsed.
fn connections(dump: &str) -> Vec<(BTreeSet<String>, String)> {
    let mut out = Vec::new();
    let mut rest = dump;
    while let Some(start) = rest.find("connection {") {
        let block = &rest[start..];
        let mut depth = 0;
        let mut end = block.len();
        for (i, ch) in block.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        let text = block[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let hosts = block[..end]
            .lines()
            .filter_map(|l| l.trim().strip_prefix("host "))
            .map(|h| h.trim_end_matches(';').trim_matches('"').to_string())
            .collect();
        out.push((hosts, text));
        rest = &block[end..];
    }
    out
}

fn res_file(c: &TestCluster, i: usize) -> String {
    std::fs::read_to_string(c.satellites[i].state_dir.join(format!("drbd.d/{RSC}.res")))
        .unwrap_or_default()
}

fn put(
    c: &TestCluster,
    node_a: &str,
    node_b: &str,
    body: Value,
) -> Result<Vec<ApiCallRc>, ClientError> {
    let client = c.client();
    c.block(client.write(
        Method::PUT,
        &format!("{CONNS}/{node_a}/{node_b}"),
        Some(&body),
    ))
}

fn list(c: &TestCluster) -> Value {
    let client = c.client();
    c.block(client.get::<Value>(CONNS)).expect("list")
}

/// The one error reply of a refused request, after checking its HTTP status and code.
fn refused(result: Result<Vec<ApiCallRc>, ClientError>, status: u16, code: u64) -> ApiCallRc {
    match result {
        Err(ClientError::Api { status: s, replies }) => {
            assert_eq!(s, status, "{replies:#?}");
            let err = replies
                .iter()
                .find(|r| r.is_error())
                .unwrap_or_else(|| panic!("no error reply: {replies:#?}"))
                .clone();
            assert_eq!(err.code(), code, "{err:#?}");
            assert!(err.ret_code < 0);
            err
        }
        other => panic!("the request should have failed: {other:?}"),
    }
}

#[test]
fn connection_options_reach_both_nodes_for_that_connection_only() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start_drbd_dry_run(4);
    c.register_all();
    let client = c.client();
    c.create_group_on("rg3", 3, &["node1", "node2", "node3"]);
    c.spawn("rg3", RSC, 32 * MIB);
    assert!(
        c.wait_until(Duration::from_secs(20), || (0..3)
            .all(|i| res_file(&c, i).matches("node-id").count() == 3)),
        "not every node has the three hosts"
    );
    assert_eq!(list(&c), json!([]));

    // Set on the pair named backwards: it is one unordered pair.
    ok_replies(put(
        &c,
        "node2",
        "node1",
        json!({"override_props": {"DrbdOptions/Net/protocol": "A"}}),
    ));
    let want = json!({
        "node_a": "node1",
        "node_b": "node2",
        "props": {"DrbdOptions/Net/protocol": "A"},
        "flags": []
    });
    assert_eq!(list(&c), json!([want.clone()]));
    for (a, b) in [("node1", "node2"), ("node2", "NODE1")] {
        let one = c
            .block(client.get::<Value>(&format!("{CONNS}/{a}/{b}")))
            .unwrap();
        assert_eq!(one, want, "GET {a}/{b}");
    }

    // Both ends get it, in that connection only; the third node sees no change.
    assert!(
        c.wait_until(Duration::from_secs(20), || (0..2)
            .all(|i| res_file(&c, i).contains("protocol \"A\";"))),
        "the connection's option did not reach node1 and node2"
    );
    for i in 0..2 {
        let d = c.satellites[i].drbdadm_dump(RSC);
        let conns = connections(&d);
        assert_eq!(conns.len(), 3, "every pair of hosts: {d}");
        for (hosts, text) in &conns {
            let pair: BTreeSet<String> = ["node1".to_string(), "node2".to_string()].into();
            if *hosts == pair {
                assert!(text.contains("protocol A;"), "{text}");
            } else {
                assert!(!text.contains("protocol"), "{text}");
            }
        }
    }
    let node3 = c.satellites[2].drbdadm_dump(RSC);
    assert!(!node3.contains("protocol"), "{node3}");
    assert!(!res_file(&c, 2).contains("protocol"));

    // Bad requests: a clear error, and nothing changes.
    let files: Vec<String> = (0..3).map(|i| res_file(&c, i)).collect();
    let good = json!({"override_props": {"DrbdOptions/Net/protocol": "B"}});
    let err = refused(put(&c, "node1", "ghost", good.clone()), 404, 300);
    assert!(err.message.contains("ghost"), "{err:#?}");
    let err = refused(put(&c, "node1", "node4", good.clone()), 404, 302);
    assert!(
        err.message.contains("node4") && err.message.contains(RSC),
        "{err:#?}"
    );
    let err = refused(put(&c, "node1", "node1", good.clone()), 400, 234);
    assert!(err.message.contains("node1"), "{err:#?}");
    assert!(err.correction.is_some(), "{err:#?}");
    refused(put(&c, "node2", "Node2", good.clone()), 400, 234);
    refused(
        put(
            &c,
            "node1",
            "node2",
            json!({"override_props": {"DrbdOptions/Resource/quorum": "off"}}),
        ),
        400,
        213,
    );
    let err = refused(
        c.block(client.write(
            Method::PUT,
            "/v1/resource-definitions/nope/resource-connections/node1/node2",
            Some(&good),
        )),
        404,
        301,
    );
    assert!(err.message.contains("nope"), "{err:#?}");
    // An unknown pair is not found, as a list of ApiCallRc.
    match c.block(client.get::<Value>(&format!("{CONNS}/node1/node3"))) {
        Err(ClientError::Api { status, replies }) => {
            assert_eq!(status, 404);
            assert_eq!(replies.len(), 1, "{replies:#?}");
            assert!(replies[0].is_error());
            assert_eq!(replies[0].code(), 307);
        }
        other => panic!("GET of an unknown connection: {other:?}"),
    }
    assert_eq!(list(&c), json!([want]));
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<String> = (0..3).map(|i| res_file(&c, i)).collect();
    assert_eq!(files, after, "a refused request changed a node's file");

    // Deleting the option takes it out of both nodes' files again.
    ok_replies(put(
        &c,
        "node1",
        "node2",
        json!({"delete_props": ["DrbdOptions/Net/protocol"]}),
    ));
    assert_eq!(
        list(&c),
        json!([{"node_a": "node1", "node_b": "node2", "props": {}, "flags": []}])
    );
    assert!(
        c.wait_until(Duration::from_secs(20), || (0..2)
            .all(|i| !res_file(&c, i).contains("protocol"))),
        "the deleted option is still in a node's file"
    );
    for i in 0..2 {
        assert!(!c.satellites[i].drbdadm_dump(RSC).contains("protocol"));
    }
}
