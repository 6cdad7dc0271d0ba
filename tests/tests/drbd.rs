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
    strata_tests::needs_cluster!(strata_tests::needs::tool("drbdadm", "drbd-utils"));
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
    c.drbd_node_id(rsc, node)
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
    strata_tests::needs_cluster!();
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
    // node2's own report (the promotion score) comes apart from node1's.
    let promotable = || {
        let rs = c
            .block(client.resources(&["node2".into()], &["sync1".into()], &[], &[]))
            .unwrap();
        rs[0]
            .resource
            .layer_object
            .as_ref()
            .and_then(|l| l.drbd.as_ref())
            .is_some_and(|d| d.promotion_score == Some(10101))
    };
    assert!(
        c.wait_until(Duration::from_secs(10), promotable),
        "node2's promotion score did not reach the view"
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
    strata_tests::needs_cluster!();
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

/// The first and last MiB of an image: the data at its start, DRBD's internal metadata at
/// its end.
fn ends_of(path: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).expect("image");
    let mut head = vec![0u8; 1 << 20];
    f.read_exact(&mut head).expect("head");
    let mut tail = vec![0u8; 1 << 20];
    f.seek(SeekFrom::End(-(1 << 20))).expect("seek");
    f.read_exact(&mut tail).expect("tail");
    (head, tail)
}

/// An image with data at its start and DRBD 9 metadata for 4 peers at its end, as an
/// administrator's hand-made DRBD resource leaves its backing device.
fn hand_made_drbd_disk(path: &std::path::Path, size_kib: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).expect("pool dir");
    let f = std::fs::File::create(path).expect("image");
    f.set_len(size_kib * 1024).expect("size");
    std::fs::write(
        path.with_extension("data"),
        b"the administrator's data\n".repeat(1000),
    )
    .expect("data");
    let data = std::fs::read(path.with_extension("data")).unwrap();
    {
        use std::os::unix::fs::FileExt;
        f.write_all_at(&data, 0).expect("write data");
    }
    let dev = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(path)
        .output()
        .expect("losetup");
    assert!(dev.status.success(), "{dev:?}");
    let dev = String::from_utf8_lossy(&dev.stdout).trim().to_string();
    let md = Command::new("drbdmeta")
        .args(["--force", "9100", "v09", &dev, "internal", "create-md", "4"])
        .output()
        .expect("drbdmeta");
    let _ = Command::new("losetup").args(["-d", &dev]).output();
    assert!(md.status.success(), "{md:?}");
}

/// Adopting a DRBD resource made by hand, with the commands of the usual migration guide
/// verbatim, while the satellites are stopped (`--async`): each node takes over the image
/// named by OverrideVlmId as it is (no new metadata, no resize, data untouched) and runs it
/// with the port, minor and node ids given.
#[test]
fn a_drbd_resource_made_by_hand_is_adopted_verbatim() {
    strata_tests::needs_cluster!(strata_tests::needs::tool("drbdadm", "drbd-utils"));
    let mut c = TestCluster::start_drbd_dry_run(0);
    c.add_satellite("eagle");
    c.add_satellite("hawk");
    c.register_all();
    const NET_KIB: u64 = 1_371_956;
    const GROSS_KIB: u64 = NET_KIB + 2048;
    let fats: Vec<std::path::PathBuf> = c
        .satellites
        .iter()
        .map(|s| s.pool_dir.with_file_name(format!("{}-fat", s.name)))
        .collect();
    let fat = |i: usize| fats[i].clone();
    let mut before = Vec::new();
    for i in 0..2 {
        let dir = fat(i);
        let out = c.linstor(&[
            "storage-pool",
            "create",
            "file",
            &c.satellites[i].name,
            "fatpool",
            &dir.display().to_string(),
        ]);
        assert!(out.status.success(), "{out:?}");
        let image = dir.join("legacy.img");
        hand_made_drbd_disk(&image, GROSS_KIB);
        before.push(ends_of(&image));
        // One more image, too small for what its volume definition will ask.
        hand_made_drbd_disk(&dir.join("small.img"), 4096);
    }
    c.stop_satellite(0);
    c.stop_satellite(1);

    for args in [
        &["resource-definition", "create", "legacy", "-p", "15500"][..],
        &[
            "resource-definition",
            "set-property",
            "legacy",
            "PeerSlotsNewResource",
            "4",
        ],
        &[
            "volume-definition",
            "create",
            "legacy",
            "-n",
            "10",
            "-m",
            "9100",
            "1371956KiB",
        ],
        &[
            "volume-definition",
            "set-property",
            "legacy",
            "10",
            "OverrideVlmId",
            "legacy",
        ],
        &[
            "volume-definition",
            "set-property",
            "legacy",
            "10",
            "AllowLargerVolumeSize",
            "true",
        ],
    ] {
        c.linstor_ok(args);
    }
    let text = c.linstor_ok(&[
        "resource",
        "create",
        "--async",
        "--node-id",
        "4",
        "-s",
        "fatpool",
        "eagle",
        "legacy",
    ]);
    assert!(
        text.contains("eagle"),
        "the answer says the node is offline: {text}"
    );
    c.linstor_ok(&[
        "resource",
        "create",
        "--async",
        "--node-id",
        "1",
        "-s",
        "fatpool",
        "hawk",
        "legacy",
    ]);
    c.start_satellite(0);
    c.start_satellite(1);

    let res_file = |i: usize| c.satellites[i].state_dir.join("drbd.d/legacy.res");
    assert!(
        c.wait_until(Duration::from_secs(20), || (0..2)
            .all(|i| res_file(i).exists())),
        "{}",
        c.satellites[0].proc.log_text()
    );
    for (i, before) in before.iter().enumerate() {
        let dump = c.satellites[i].drbdadm_dump("legacy");
        let ids: BTreeSet<(String, u32)> =
            hosts(&dump).into_iter().map(|(h, id, _)| (h, id)).collect();
        assert_eq!(
            ids,
            BTreeSet::from([("eagle".to_string(), 4), ("hawk".to_string(), 1)]),
            "{dump}"
        );
        assert!(dump.contains(":15500;"), "port: {dump}");
        assert!(
            dump.contains("volume 10 {") && dump.contains("minor 9100;"),
            "{dump}"
        );
        let image = fat(i).join("legacy.img");
        assert_eq!(
            std::fs::metadata(&image).unwrap().len(),
            GROSS_KIB * 1024,
            "not resized"
        );
        assert!(
            ends_of(&image) == *before,
            "data and metadata are untouched"
        );
        let log = c.satellites[i].proc.log_text();
        assert!(
            log.contains("DRBD metadata found on the backing device; kept"),
            "{log}"
        );
        assert!(!log.contains("creating DRBD metadata"), "{log}");
    }
    let volumes = c.linstor_ok(&["volume", "list", "-r", "legacy"]);
    assert!(volumes.contains("/dev/drbd9100"), "{volumes}");
    assert!(!volumes.contains("rror"), "{volumes}");

    // An image smaller than its volume definition needs is refused and left alone.
    for args in [
        &["resource-definition", "create", "small"][..],
        &["volume-definition", "create", "small", "64M"],
        &[
            "volume-definition",
            "set-property",
            "small",
            "0",
            "OverrideVlmId",
            "small",
        ],
    ] {
        c.linstor_ok(args);
    }
    let small = fat(0).join("small.img");
    let small_before = ends_of(&small);
    let (_, text) = c.linstor_fails(&["resource", "create", "-s", "fatpool", "eagle", "small"]);
    assert!(
        text.contains("cannot adopt volume 'small'")
            && text.contains("exists with 4096 KiB, less than the"),
        "{text}"
    );
    assert_eq!(std::fs::metadata(&small).unwrap().len(), 4096 * 1024);
    assert!(ends_of(&small) == small_before);
    assert!(
        !fat(0).join(".strata/small.owner").exists(),
        "not taken over"
    );
}

/// `resource toggle-disk`: a diskless resource gets a disk (its backing volume is created
/// and DRBD attaches it, to be filled from the peers), and a replica gives its disk up once
/// another holds the data; what would lose data or cannot be done is refused.
#[test]
fn toggle_disk_gives_and_takes_disks() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start_drbd_dry_run(3);
    c.register_all();
    c.create_group_on("rgt", 2, &["node1", "node2"]);
    c.spawn("rgt", "tog", 16 * MIB);
    c.linstor_ok(&["resource", "create", "--drbd-diskless", "node3", "tog"]);
    let image = |i: usize| c.satellites[i].pool_dir.join("tog_00000.img");
    let res = |i: usize| {
        std::fs::read_to_string(c.satellites[i].state_dir.join("drbd.d/tog.res"))
            .unwrap_or_default()
    };
    assert!(
        c.wait_until(Duration::from_secs(20), || res(2).contains("disk none")),
        "{}",
        res(2)
    );
    assert!(!image(2).exists());
    let up_to_date = |i: usize| {
        c.satellites[i].drbd_events(&[
            "exists resource name:tog role:Secondary suspended:no may_promote:yes promotion_score:10100",
            "exists device name:tog volume:0 minor:1000 disk:UpToDate client:no quorum:yes open:no",
            "exists -",
        ]);
    };
    up_to_date(0);
    up_to_date(1);
    c.satellites[2].drbd_events(&["exists -"]);

    // Diskless -> diskful on node3: a disk in pool_file, attached in the configuration.
    let text = c.linstor_ok(&["resource", "toggle-disk", "-s", "pool_file", "node3", "tog"]);
    assert!(
        text.contains("gets a disk in storage pool 'pool_file'"),
        "{text}"
    );
    assert!(
        c.wait_until(Duration::from_secs(20), || image(2).exists()
            && !res(2).contains("disk none")),
        "{}",
        res(2)
    );
    let rows = c.linstor_ok(&["resource", "list-volumes", "-r", "tog", "-n", "node3"]);
    assert!(rows.contains("pool_file"), "{rows}");
    // Asking again changes nothing.
    let text = c.linstor_ok(&["resource", "toggle-disk", "-s", "pool_file", "node3", "tog"]);
    assert!(text.contains("already has a disk"), "{text}");

    // Diskful -> diskless on node1 while node2 is up to date: the disk goes.
    let text = c.linstor_ok(&["resource", "toggle-disk", "--diskless", "node1", "tog"]);
    assert!(text.contains("is now diskless"), "{text}");
    assert!(
        c.wait_until(Duration::from_secs(20), || !image(0).exists()
            && res(0).contains("disk none")),
        "{}",
        res(0)
    );
    // node2 now holds the only up-to-date copy (node3 is still Inconsistent): refused, kept.
    c.satellites[2].drbd_events(&[
        "create resource name:tog role:Secondary suspended:no may_promote:no promotion_score:0",
        "create device name:tog volume:0 minor:1000 disk:Inconsistent client:no quorum:yes open:no",
    ]);
    assert!(
        c.wait_until(Duration::from_secs(10), || listed_state(&c, "tog", "node3")
            .contains("Inconsistent"))
    );
    let (_, text) = c.linstor_fails(&["resource", "toggle-disk", "--diskless", "node2", "tog"]);
    assert!(
        text.contains("holds the only up-to-date copy of volume 0"),
        "{text}"
    );
    assert!(text.contains("cannot be made diskless"), "{text}");
    assert!(image(1).exists());

    // Bad requests change nothing.
    let (code, body) = c
        .block(c.client().raw(
            strata_client::Method::PUT,
            "/v1/resource-definitions/tog/resources/node1/toggle-disk/sideways",
            None,
        ))
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        code.as_u16() >= 400 && body.contains("Unknown toggle-disk target 'sideways'"),
        "{body}"
    );
    let (_, text) = c.linstor_fails(&["resource", "toggle-disk", "-s", "nopool", "node1", "tog"]);
    assert!(
        text.contains("Storage pool 'nopool' not found on node 'node1'"),
        "{text}"
    );
    let (_, text) = c.linstor_fails(&[
        "resource",
        "toggle-disk",
        "-s",
        "DfltDisklessStorPool",
        "node1",
        "tog",
    ]);
    assert!(text.contains("is DISKLESS"), "{text}");
    let (_, text) = c.linstor_fails(&["resource", "toggle-disk", "node1", "nosuch"]);
    assert!(text.contains("nosuch"), "{text}");
    assert!(res(0).contains("disk none") && !image(0).exists());

    // Migrating the disk of node2 to node1: node1 gets a disk, and node2's replica goes
    // once node1's copy is up to date.
    c.satellites[0].drbd_events(&["change device name:tog volume:0 disk:Diskless"]);
    let (_, text) = c.linstor_fails(&[
        "resource",
        "toggle-disk",
        "--migrate-from",
        "node9",
        "-s",
        "pool_file",
        "node1",
        "tog",
    ]);
    assert!(
        text.contains("no replica with a disk on node 'node9'"),
        "{text}"
    );
    c.linstor_ok(&[
        "resource",
        "toggle-disk",
        "--migrate-from",
        "node2",
        "-s",
        "pool_file",
        "node1",
        "tog",
    ]);
    assert!(c.wait_until(Duration::from_secs(20), || image(0).exists()));
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        image(1).exists(),
        "node2 keeps its replica while node1 is not up to date"
    );
    c.satellites[0].drbd_events(&["change device name:tog volume:0 disk:UpToDate"]);
    assert!(
        c.wait_until(Duration::from_secs(20), || !image(1).exists()
            && !c
                .linstor_ok(&["resource", "list", "-r", "tog"])
                .contains("node2")),
        "{}",
        c.linstor_ok(&["resource", "list", "-r", "tog"])
    );
    // A DRBD volume does not shrink, even when asked explicitly.
    let (_, text) = c.linstor_fails(&[
        "volume-definition",
        "set-size",
        "tog",
        "0",
        "8M",
        "--allow-shrink",
    ]);
    assert!(text.contains("DRBD keeps its metadata"), "{text}");
}

/// Nodes holding a diskful, not deleted, replica of `rsc`.
fn diskful_nodes(c: &TestCluster, rsc: &str) -> BTreeSet<String> {
    let rs = c
        .block(c.client().resources(&[], &[rsc.into()], &[], &[]))
        .unwrap();
    rs.iter()
        .filter(|r| {
            let flags = &r.resource.flags;
            !flags
                .iter()
                .any(|f| f == "DRBD_DISKLESS" || f == "DISKLESS" || f == "DELETE")
        })
        .map(|r| r.resource.node_name.clone())
        .collect()
}

/// `resource-group adjust` brings every definition of the group to the group's place count:
/// missing replicas are placed, surplus ones deleted (never the only up-to-date copy).
#[test]
fn adjust_follows_the_groups_place_count() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start_drbd_dry_run(3);
    c.register_all();
    c.create_group_on("rga", 1, &[]);
    c.spawn("rga", "adj", 16 * MIB);
    assert_eq!(diskful_nodes(&c, "adj").len(), 1);
    let (_, text) = c.linstor_fails(&["resource-group", "adjust", "nosuchgroup"]);
    assert!(text.contains("nosuchgroup"), "{text}");

    c.linstor_ok(&["resource-group", "modify", "rga", "--place-count", "3"]);
    let text = c.linstor_ok(&["resource-group", "adjust", "rga"]);
    assert!(text.contains("adj"), "{text}");
    assert_eq!(diskful_nodes(&c, "adj").len(), 3, "{text}");
    // Adjusted, a second run changes nothing.
    let text = c.linstor_ok(&["resource-group", "adjust", "rga"]);
    assert!(text.contains("as its group asks"), "{text}");

    // Down to one: only node1 reports its copy up to date, so the replicas that go are
    // chosen to keep it.
    c.satellites[0].drbd_events(&[
        "exists resource name:adj role:Secondary suspended:no may_promote:yes promotion_score:10100",
        "exists device name:adj volume:0 minor:1000 disk:UpToDate client:no quorum:yes open:no",
        "exists -",
    ]);
    for s in &c.satellites[1..] {
        s.drbd_events(&[
            "exists resource name:adj role:Secondary suspended:no may_promote:no promotion_score:0",
            "exists device name:adj volume:0 minor:1000 disk:Inconsistent client:no quorum:yes open:no",
            "exists -",
        ]);
    }
    assert!(
        c.wait_until(Duration::from_secs(10), || listed_state(&c, "adj", "node1")
            .contains("UpToDate"))
    );
    c.linstor_ok(&["resource-group", "modify", "rga", "--place-count", "1"]);
    let text = c.linstor_ok(&["resource-group", "adjust"]);
    assert!(text.contains("beyond the place count 1"), "{text}");
    let left = diskful_nodes(&c, "adj");
    assert_eq!(left, BTreeSet::from(["node1".to_string()]), "{text}");
    assert!(
        c.wait_until(Duration::from_secs(20), || !c.satellites[1]
            .pool_dir
            .join("adj_00000.img")
            .exists()
            && !c.satellites[2].pool_dir.join("adj_00000.img").exists()),
        "surplus disks are removed"
    );
}

/// Deleting a definition whose node is offline: the online nodes clean up at once, the
/// definition stays (DELETING) until the offline node returns and cleans up too, or until
/// it is declared lost.
#[test]
fn deletion_waits_for_an_offline_node_or_its_loss() {
    strata_tests::needs_cluster!();
    let mut c = TestCluster::start_drbd_dry_run(2);
    c.register_all();
    c.create_group_on("rgl", 2, &["node1", "node2"]);
    c.spawn("rgl", "gone1", 16 * MIB);
    c.spawn("rgl", "gone2", 16 * MIB);
    let dirs: Vec<std::path::PathBuf> = c.satellites.iter().map(|s| s.pool_dir.clone()).collect();
    let image = |i: usize, rsc: &str| dirs[i].join(format!("{rsc}_00000.img"));
    assert!(image(0, "gone1").exists() && image(1, "gone1").exists());
    let listed =
        |c: &TestCluster, rsc: &str| c.linstor_ok(&["resource-definition", "list"]).contains(rsc);

    c.stop_satellite(1);
    let text = c.linstor_ok(&["resource-definition", "delete", "gone1"]);
    assert!(
        text.contains("node2"),
        "the answer names the offline node: {text}"
    );
    assert!(c.wait_until(Duration::from_secs(10), || !image(0, "gone1").exists()));
    assert!(listed(&c, "gone1"), "kept until node2 has cleaned up");
    c.start_satellite(1);
    assert!(
        c.wait_until(Duration::from_secs(20), || !listed(&c, "gone1")
            && !image(1, "gone1").exists()),
        "finished when node2 returned"
    );

    c.stop_satellite(1);
    c.linstor_ok(&["resource-definition", "delete", "gone2"]);
    assert!(c.wait_until(Duration::from_secs(10), || !image(0, "gone2").exists()));
    assert!(listed(&c, "gone2"));
    c.linstor_ok(&["node", "lost", "node2"]);
    assert!(!listed(&c, "gone2"), "the lost node's part is given up");
    assert!(!c.linstor_ok(&["node", "list"]).contains("node2"));
}

/// Cloning a DRBD resource from thick pools: each node copies its own replica into the
/// clone's new volume; refused while the source is in use (DRBD Primary somewhere) or not up
/// to date everywhere.
#[test]
fn a_clone_from_thick_pools_is_copied_on_every_node() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start_drbd_dry_run(2);
    c.register_all();
    let fat: Vec<std::path::PathBuf> = c
        .satellites
        .iter()
        .map(|s| s.pool_dir.with_file_name(format!("{}-thick", s.name)))
        .collect();
    for (s, dir) in c.satellites.iter().zip(&fat) {
        c.linstor_ok(&[
            "storage-pool",
            "create",
            "file",
            &s.name,
            "thick",
            &dir.display().to_string(),
        ]);
    }
    c.linstor_ok(&["resource-definition", "create", "src"]);
    c.linstor_ok(&["volume-definition", "create", "src", "8M"]);
    c.linstor_ok(&["resource", "create", "node1", "node2", "src", "-s", "thick"]);
    // Each replica gets its own recognisable content (the dry run replicates nothing).
    for (i, dir) in fat.iter().enumerate() {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("src_00000.img"))
            .unwrap();
        f.write_all_at(format!("replica on node{}", i + 1).as_bytes(), 0)
            .unwrap();
    }
    let state = |role: &str, disk: &str| {
        [
            format!("exists resource name:src role:{role} suspended:no may_promote:no promotion_score:10100"),
            format!("exists device name:src volume:0 minor:1000 disk:{disk} client:no quorum:yes open:no"),
            "exists -".to_string(),
        ]
    };
    let events = |i: usize, lines: [String; 3]| {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        c.satellites[i].drbd_events(&refs);
    };
    events(0, state("Primary", "UpToDate"));
    events(1, state("Secondary", "Inconsistent"));
    assert!(
        c.wait_until(Duration::from_secs(10), || listed_state(&c, "src", "node2")
            .contains("Inconsistent"))
    );
    let (_, text) = c.linstor_fails(&["resource-definition", "clone", "src", "dst"]);
    assert!(text.contains("in use on node 'node1'"), "{text}");
    c.satellites[0].drbd_events(&["change resource name:src role:Secondary"]);
    assert!(c.wait_until(Duration::from_secs(10), || c
        .linstor_fails(&["resource-definition", "clone", "src", "dst"])
        .1
        .contains("not known to be up to date")));
    c.satellites[1].drbd_events(&["change device name:src volume:0 disk:UpToDate"]);
    assert!(
        c.wait_until(Duration::from_secs(10), || listed_state(&c, "src", "node2")
            .contains("UpToDate"))
    );

    let text = c.linstor_ok(&["resource-definition", "clone", "src", "dst"]);
    assert!(text.contains("dst"), "{text}");
    for (i, dir) in fat.iter().enumerate() {
        let head = |name: &str| {
            let mut b = vec![0u8; 16];
            use std::os::unix::fs::FileExt;
            std::fs::File::open(dir.join(name))
                .unwrap()
                .read_exact_at(&mut b, 0)
                .unwrap();
            b
        };
        assert_eq!(
            head("dst_00000.img"),
            format!("replica on node{}", i + 1).as_bytes()
        );
        assert!(!dir.join("dst_00000.clone.img").exists());
        assert!(c.satellites[i].state_dir.join("drbd.d/dst.res").exists());
    }
    let status = c.block(c.client().raw(
        strata_client::Method::GET,
        "/v1/resource-definitions/src/clone/dst",
        None,
    ));
    let (code, body) = status.unwrap();
    assert_eq!(code.as_u16(), 200);
    assert!(String::from_utf8_lossy(&body).contains("COMPLETE"));
}

#[test]
fn wait_sync_shows_a_progress_bar_on_a_terminal() {
    strata_tests::needs_cluster!(strata_tests::python_modules(&["pty"]));
    let c = TestCluster::start_drbd_dry_run(2);
    c.register_all();
    c.create_group("rg2", 2);
    c.spawn("rg2", "bar1", 32 * MIB);
    let (id1, id2) = (node_id(&c, "bar1", "node1"), node_id(&c, "bar1", "node2"));
    c.satellites[0].drbd_events(&[
        "exists resource name:bar1 role:Secondary suspended:no may_promote:yes promotion_score:10100",
        &format!("exists connection name:bar1 peer-node-id:{id2} conn-name:node2 connection:Connected role:Secondary"),
        "exists device name:bar1 volume:0 minor:1000 disk:UpToDate client:no quorum:yes open:no",
        &format!("exists peer-device name:bar1 peer-node-id:{id2} conn-name:node2 volume:0 replication:SyncSource peer-disk:Inconsistent done:25.00"),
        "exists -",
    ]);
    c.satellites[1].drbd_events(&[
        "exists resource name:bar1 role:Secondary suspended:no may_promote:no promotion_score:0",
        &format!("exists connection name:bar1 peer-node-id:{id1} conn-name:node1 connection:Connected role:Secondary"),
        "exists device name:bar1 volume:0 minor:1000 disk:Inconsistent client:no quorum:yes open:no",
        &format!("exists peer-device name:bar1 peer-node-id:{id1} conn-name:node1 volume:0 replication:SyncTarget peer-disk:UpToDate done:25.00"),
        "exists -",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wait-sync.txt");
    let argv: Vec<String> = vec![
        strata_tests::bin("linstor").display().to_string(),
        "--controllers".into(),
        c.controller_addr(),
        "resource-definition".into(),
        "wait-sync".into(),
        "bar1".into(),
    ];
    let env = [
        ("HOME", dir.path().display().to_string()),
        ("TERM", "xterm".to_string()),
    ];
    let mut p = strata_tests::spawn_on_pty(&argv, &env, &[], &out, Duration::from_secs(60));
    let shown = |what: &str| {
        c.wait_until(Duration::from_secs(20), || {
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .contains(what)
        })
    };
    let text = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(shown(" 25%"), "no bar at 25%:\n{}", text());
    assert!(text().contains("ETA"), "{}", text());
    c.satellites[1].drbd_events(&[&format!(
        "change peer-device name:bar1 peer-node-id:{id1} conn-name:node1 volume:0 done:75.00"
    )]);
    assert!(shown(" 75%"), "the bar did not move:\n{}", text());
    c.satellites[1].drbd_events(&[
        "change device name:bar1 volume:0 disk:UpToDate",
        &format!("change peer-device name:bar1 peer-node-id:{id1} conn-name:node1 volume:0 replication:Established peer-disk:UpToDate"),
    ]);
    c.satellites[0].drbd_events(&[&format!(
        "change peer-device name:bar1 peer-node-id:{id2} conn-name:node2 volume:0 replication:Established peer-disk:UpToDate"
    )]);
    assert!(p.wait().unwrap().success());
    let t = text();
    assert!(t.contains("is in sync on 2 node(s)"), "{t}");
    assert!(t.contains("[exit 0"), "{t}");
}
