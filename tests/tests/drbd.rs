//! The DRBD layer across nodes, on a machine without the DRBD kernel module: satellites run
//! drbdadm as a dry run (`-d`), each on its own loopback address as on separate hosts, and
//! write real `.res` files that the real drbdadm must accept.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use strata_client::Method;
use strata_tests::{ok_replies, TestCluster};

const MIB: u64 = 1024; // KiB

fn drbdadm_available() -> bool {
    Command::new("drbdadm").arg("--version").output().is_ok()
}

/// `drbdadm dump` of resource `rsc` as node `node` sees it, through the real parser.
fn dump(c: &TestCluster, i: usize, rsc: &str) -> String {
    let s = &c.satellites[i];
    let out = Command::new("drbdadm")
        .env("__DRBD_NODE__", &s.name)
        .arg("-c")
        .arg(s.state_dir.join("drbd.conf"))
        .arg("dump")
        .arg(rsc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "drbdadm refused the configuration of {}: {}",
        s.name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (host, node id, address) triples of a dump, in order.
fn hosts(dump: &str) -> BTreeSet<(String, u32, String)> {
    let mut out = BTreeSet::new();
    let mut host: Option<String> = None;
    let mut id: Option<u32> = None;
    for line in dump.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("on ") {
            host = Some(
                rest.trim_end_matches(['{', ' '])
                    .trim_matches('"')
                    .to_string(),
            );
        } else if let Some(rest) = line.strip_prefix("node-id") {
            id = rest.trim().trim_end_matches(';').trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("address") {
            let addr = rest.trim().trim_end_matches(';').to_string();
            out.insert((host.clone().unwrap(), id.unwrap(), addr));
        }
    }
    out
}

#[test]
fn three_replicas_and_a_diskless_client_agree_on_every_node() {
    assert!(
        drbdadm_available(),
        "drbd-utils are needed (scripts/test-all.sh installs them)"
    );
    let c = TestCluster::start_drbd_dry_run(4);
    c.register_all();
    let client = c.client();
    ok_replies(c.block(client.write(
        Method::POST,
        "/v1/resource-groups",
        Some(&json!({"name": "rg3", "select_filter": {"place_count": 3, "storage_pool_list": ["pool_file"], "node_name_list": ["node1", "node2", "node3"]}})),
    )));
    ok_replies(c.block(client.write(
        Method::POST,
        "/v1/resource-groups/rg3/volume-groups",
        Some(&json!({})),
    )));
    ok_replies(c.block(client.write(
        Method::POST,
        "/v1/resource-groups/rg3/spawn",
        Some(&json!({"resource_definition_name": "rep", "volume_sizes": [32 * MIB]})),
    )));
    ok_replies(c.block(client.write(
        Method::POST,
        "/v1/resource-definitions/rep/resources",
        Some(&json!([{"resource": {"node_name": "node4", "flags": ["DRBD_DISKLESS"]}}])),
    )));
    // Every node converges on the same four hosts.
    let res_file = |i: usize| c.satellites[i].state_dir.join("drbd.d/rep.res");
    assert!(
        c.wait_until(Duration::from_secs(20), || (0..4).all(|i| {
            std::fs::read_to_string(res_file(i))
                .map(|t| t.matches("node-id").count() == 4)
                .unwrap_or(false)
        })),
        "not every node has the four hosts in rep.res"
    );
    let dumps: Vec<String> = (0..4).map(|i| dump(&c, i, "rep")).collect();
    let first = hosts(&dumps[0]);
    assert_eq!(first.len(), 4, "{}", dumps[0]);
    let ids: BTreeSet<u32> = first.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(ids.len(), 4, "node ids are unique: {first:?}");
    for (i, d) in dumps.iter().enumerate() {
        assert_eq!(hosts(d), first, "node{} sees other hosts", i + 1);
        assert!(d.contains("quorum") && d.contains("majority"), "{d}");
        assert!(d.contains("shared-secret"), "{d}");
        assert!(d.contains("minor 1000"), "{d}");
    }
    for s in &c.satellites {
        let me = first.iter().find(|(h, _, _)| h == &s.name).unwrap();
        assert!(me.2.contains(&s.addr), "{} has address {}", s.name, me.2);
    }
    // The diskless client has no disk; the others have their backing device.
    let node4 = std::fs::read_to_string(res_file(3)).unwrap();
    assert!(node4.contains("disk none"), "{node4}");
    // The API shows the DRBD layer with the same numbers.
    let rs = c
        .block(client.resources(&[], &["rep".into()], &[], &[]))
        .unwrap();
    assert_eq!(rs.len(), 4);
    for r in &rs {
        let drbd = r
            .resource
            .layer_object
            .as_ref()
            .unwrap()
            .drbd
            .as_ref()
            .unwrap();
        let id = drbd.node_id.unwrap() as u32;
        assert!(first.iter().any(|(h, i, a)| h == &r.resource.node_name
            && *i == id
            && a.ends_with(&format!(":{}", drbd.tcp_ports[0]))));
        assert_eq!(r.volumes[0].device_path.as_deref(), Some("/dev/drbd1000"));
    }
    // Deleting the definition removes the .res files everywhere.
    ok_replies(c.block(client.write::<()>(Method::DELETE, "/v1/resource-definitions/rep", None)));
    assert!(c.wait_until(Duration::from_secs(20), || (0..4)
        .all(|i| !res_file(i).exists())));
}
