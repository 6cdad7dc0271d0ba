//! The DRBD layer across nodes, on a machine without the DRBD kernel module: satellites run
//! drbdadm as a dry run (`-d`), each in a network namespace with its own address as on
//! separate hosts, and write real `.res` files that the real drbdadm must accept.

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
    c.create_group_on("rg3", 3, &["node1", "node2", "node3"]);
    c.spawn("rg3", "rep", 32 * MIB);
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
    let dumps: Vec<String> = (0..4)
        .map(|i| c.satellites[i].drbdadm_dump("rep"))
        .collect();
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
    let my_netns = std::fs::read_link("/proc/self/ns/net").unwrap();
    for s in &c.satellites {
        let me = first.iter().find(|(h, _, _)| h == &s.name).unwrap();
        assert!(me.2.contains(&s.addr), "{} has address {}", s.name, me.2);
        // Each satellite lives in a network namespace of its own.
        let pid = s.proc.pid().unwrap();
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
        assert_ne!(
            ns, my_netns,
            "{} runs in the test's network namespace",
            s.name
        );
        assert!(s.addr.starts_with("10.231."), "{}", s.addr);
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

/// The node id the controller gave resource `rsc` on `node`.
fn node_id(c: &TestCluster, rsc: &str, node: &str) -> u32 {
    let rs = c
        .block(
            c.client()
                .resources(&[node.into()], &[rsc.into()], &[], &[]),
        )
        .unwrap();
    let drbd = rs[0].resource.layer_object.as_ref().unwrap().drbd.as_ref();
    drbd.unwrap().node_id.unwrap() as u32
}

/// Reads server-sent events from `path` of the controller until `want` appears in them.
fn read_events_until(
    addr: String,
    path: &str,
    want: &'static str,
) -> std::thread::JoinHandle<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(want) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    })
}

#[test]
fn drbd_state_reaches_the_api_the_cli_and_the_event_stream() {
    let c = TestCluster::start_drbd_dry_run(2);
    c.register_all();
    c.create_group("rg2", 2);
    c.spawn("rg2", "sync1", 32 * MIB);
    let client = c.client();
    let (id1, id2) = (node_id(&c, "sync1", "node1"), node_id(&c, "sync1", "node2"));
    // DRBD is followed but has not brought the resource up yet: its state is unknown.
    let table = String::from_utf8(c.linstor(&["resource", "list"]).stdout).unwrap();
    assert!(
        table
            .lines()
            .filter(|l| l.contains("sync1") && l.contains("Unknown"))
            .count()
            == 2,
        "{table}"
    );

    // Both nodes come up and connect; both disks are new (Inconsistent).
    let newborn = |peer: u32, peer_name: &str| {
        vec![
            "exists resource name:sync1 role:Secondary suspended:no may_promote:no promotion_score:0".to_string(),
            format!("exists connection name:sync1 peer-node-id:{peer} conn-name:{peer_name} connection:Connected role:Secondary"),
            "exists device name:sync1 volume:0 minor:1000 disk:Inconsistent client:no quorum:yes open:no".to_string(),
            format!("exists peer-device name:sync1 peer-node-id:{peer} conn-name:{peer_name} volume:0 replication:Established peer-disk:Inconsistent peer-client:no"),
            "exists -".to_string(),
        ]
    };
    let as_str = |v: &[String]| {
        v.iter()
            .map(String::as_str)
            .collect::<Vec<&str>>()
            .join("\n")
    };
    c.satellites[0].drbd_events(&[&as_str(&newborn(id2, "node2"))]);
    c.satellites[1].drbd_events(&[&as_str(&newborn(id1, "node1"))]);
    // The node with the lower node id declares the new thin volumes in sync (drbdadm runs as a
    // dry run here), once; the other does nothing.
    let (first, other) = if id1 < id2 { (0, 1) } else { (1, 0) };
    assert!(
        c.wait_until(Duration::from_secs(20), || c.satellites[first]
            .proc
            .log_text()
            .contains("initial state of new resource set")),
        "no initial sync step on the first node:\n{}",
        c.satellites[first].proc.log_text()
    );
    assert!(!c.satellites[other]
        .proc
        .log_text()
        .contains("initial state of new resource set"));

    // Say instead node1 receives a resync from node2.
    c.satellites[0].drbd_events(&[&format!(
        "change peer-device name:sync1 peer-node-id:{id2} conn-name:node2 volume:0 replication:SyncTarget done:45.12"
    )]);
    c.satellites[1].drbd_events(&[
        "change device name:sync1 volume:0 disk:UpToDate",
        &format!("change peer-device name:sync1 peer-node-id:{id1} conn-name:node1 volume:0 replication:SyncSource peer-disk:Inconsistent done:45.12"),
        "change resource name:sync1 may_promote:yes promotion_score:10101",
    ]);
    let syncing = || {
        let rs = c
            .block(client.resources(&["node1".into()], &["sync1".into()], &[], &[]))
            .unwrap();
        let st = rs[0].volumes[0].state.clone().unwrap_or_default();
        st.replication_states.get("node2").is_some_and(|r| {
            r.replication_state.as_deref() == Some("SyncTarget") && r.done_percentage == Some(45.12)
        }) && st.disk_state.as_deref() == Some("Inconsistent")
    };
    assert!(
        c.wait_until(Duration::from_secs(10), syncing),
        "no SyncTarget in the view"
    );
    let rs = c
        .block(client.resources(&["node2".into()], &["sync1".into()], &[], &[]))
        .unwrap();
    let d = rs[0]
        .resource
        .layer_object
        .as_ref()
        .unwrap()
        .drbd
        .clone()
        .unwrap();
    assert!(d.connections["node1"].connected, "{:?}", d.connections);
    assert_eq!(d.connections["node1"].message.as_deref(), Some("Connected"));
    assert_eq!(d.may_promote, Some(true));
    assert_eq!(d.promotion_score, Some(10101));
    assert_eq!(rs[0].resource.state.as_ref().unwrap().in_use, Some(false));
    let table = String::from_utf8(c.linstor(&["resource", "list"]).stdout).unwrap();
    let row = |node: &str| {
        table
            .lines()
            .find(|l| l.contains("sync1") && l.contains(node))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("node1").contains("SyncTarget(45.12%)"), "{table}");
    assert!(row("node2").contains("UpToDate"), "{table}");
    assert!(
        row("node1").contains("Unused") && row("node1").contains("Ok"),
        "{table}"
    );

    // wait-sync waits for the end of the resync; the event stream tells who may promote.
    let events = read_events_until(
        c.controller_addr(),
        "/v1/events/drbd/promotion",
        "\"node1\"",
    );
    let waiter = Command::new(strata_tests::bin("linstor"))
        .args(["--controllers", &c.controller_addr(), "--no-color"])
        .args([
            "resource-definition",
            "wait-sync",
            "--wait-timeout",
            "30",
            "sync1",
        ])
        .env_remove("LS_CONTROLLERS")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    c.satellites[0].drbd_events(&[
        "change device name:sync1 volume:0 disk:UpToDate",
        &format!("change peer-device name:sync1 peer-node-id:{id2} conn-name:node2 volume:0 replication:Established peer-disk:UpToDate"),
        "change resource name:sync1 may_promote:yes promotion_score:10101",
    ]);
    c.satellites[1].drbd_events(&[&format!(
        "change peer-device name:sync1 peer-node-id:{id1} conn-name:node1 volume:0 replication:Established peer-disk:UpToDate"
    )]);
    let out = waiter.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("is in sync on 2 node(s)"), "{text}");
    let seen = events.join().unwrap();
    assert!(seen.contains("event: may-promote-change"), "{seen}");
    assert!(
        seen.contains(r#"{"resource_name":"sync1","node_name":"node1","may_promote":true}"#),
        "{seen}"
    );
    let table = String::from_utf8(c.linstor(&["resource", "list"]).stdout).unwrap();
    assert_eq!(
        table
            .lines()
            .filter(|l| l.contains("sync1") && l.contains("UpToDate"))
            .count(),
        2,
        "{table}"
    );

    // A node whose DRBD goes away mid-way (the module unloaded, drbdsetup gone): wait-sync
    // does not pretend, it times out with what is wrong.
    c.satellites[1].drbd_events(&["destroy resource name:sync1"]);
    assert!(c.wait_until(Duration::from_secs(10), || {
        let t = String::from_utf8(c.linstor(&["resource", "list"]).stdout).unwrap();
        t.lines()
            .any(|l| l.contains("sync1") && l.contains("node2") && l.contains("Unknown"))
    }));
    let out = c.linstor(&["rd", "wait-sync", "--wait-timeout", "1", "sync1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not in sync") && err.contains("node2"),
        "{err}"
    );
    let unknown = c.linstor(&["rd", "wait-sync", "nope"]);
    assert!(!unknown.status.success());
}

/// The state column of `rsc` on `node` in `linstor resource list`.
fn listed_state(c: &TestCluster, rsc: &str, node: &str) -> String {
    let table = String::from_utf8(c.linstor(&["resource", "list"]).stdout).unwrap();
    table
        .lines()
        .find(|l| l.contains(rsc) && l.contains(node))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_replica_moves_without_losing_the_only_up_to_date_copy() {
    let c = TestCluster::start_drbd_dry_run(2);
    c.register_all();
    c.create_group_on("rg1", 1, &["node1"]);
    c.spawn("rg1", "move1", 32 * MIB);
    c.satellites[0].drbd_events(&[
        "exists resource name:move1 role:Secondary suspended:no may_promote:yes promotion_score:10100",
        "exists device name:move1 volume:0 minor:1000 disk:UpToDate client:no quorum:yes open:no",
        "exists -",
    ]);
    c.satellites[1].drbd_events(&["exists -"]);
    assert!(c.wait_until(Duration::from_secs(10), || listed_state(
        &c, "move1", "node1"
    )
    .contains("UpToDate")));

    // The new replica on node2 receives the data from node1.
    let out = c.linstor(&[
        "resource",
        "create",
        "node2",
        "move1",
        "--storage-pool",
        "pool_file",
    ]);
    assert!(out.status.success(), "{out:?}");
    let (id1, id2) = (node_id(&c, "move1", "node1"), node_id(&c, "move1", "node2"));
    c.satellites[0].drbd_events(&[
        &format!("create connection name:move1 peer-node-id:{id2} conn-name:node2 connection:Connected role:Secondary"),
        &format!("create peer-device name:move1 peer-node-id:{id2} conn-name:node2 volume:0 replication:SyncSource peer-disk:Inconsistent done:12.50"),
    ]);
    c.satellites[1].drbd_events(&[
        "create resource name:move1 role:Secondary suspended:no may_promote:no promotion_score:0",
        &format!("create connection name:move1 peer-node-id:{id1} conn-name:node1 connection:Connected role:Secondary"),
        "create device name:move1 volume:0 minor:1000 disk:Inconsistent client:no quorum:yes open:no",
        &format!("create peer-device name:move1 peer-node-id:{id1} conn-name:node1 volume:0 replication:SyncTarget peer-disk:UpToDate done:12.50"),
    ]);
    assert!(
        c.wait_until(Duration::from_secs(10), || listed_state(
            &c, "move1", "node2"
        )
        .contains("SyncTarget(12.50%)")),
        "{}",
        listed_state(&c, "move1", "node2")
    );

    // Deleting the old replica now would leave only a half-filled copy: refused, with what to do.
    let out = c.linstor(&["resource", "delete", "node1", "move1"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("holds the only up-to-date copy of volume 0"),
        "{text}"
    );
    assert!(
        text.contains("volume 0 on 'node2': SyncTarget(12.50%)"),
        "{text}"
    );
    assert!(
        text.contains("linstor resource-definition wait-sync move1"),
        "{text}"
    );
    let row = listed_state(&c, "move1", "node1");
    assert!(
        row.contains("UpToDate") && !row.contains("DELETING"),
        "{row}"
    );

    // Once the new replica has the data, the old one goes.
    c.satellites[1].drbd_events(&[
        "change device name:move1 volume:0 disk:UpToDate",
        &format!("change peer-device name:move1 peer-node-id:{id1} conn-name:node1 volume:0 replication:Established peer-disk:UpToDate"),
    ]);
    c.satellites[0].drbd_events(&[&format!(
        "change peer-device name:move1 peer-node-id:{id2} conn-name:node2 volume:0 replication:Established peer-disk:UpToDate"
    )]);
    let out = c.linstor(&["rd", "wait-sync", "--wait-timeout", "20", "move1"]);
    assert!(out.status.success(), "{out:?}");
    let out = c.linstor(&["resource", "delete", "node1", "move1"]);
    assert!(out.status.success(), "{out:?}");
    assert!(c.wait_until(Duration::from_secs(20), || {
        let rs = c
            .block(c.client().resources(&[], &["move1".into()], &[], &[]))
            .unwrap();
        rs.len() == 1 && rs[0].resource.node_name == "node2"
    }));
}
