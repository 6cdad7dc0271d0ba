//! The controller's state in etcd (Debian's etcd-server, three members of the test's own on
//! loopback): the store's commits, big commits through a journal and their recovery after a
//! stop half-way, fencing of a controller whose lease expired, a member lost, moving a
//! cluster in and out.

use std::time::Duration;

use strata_model::cluster::Change;
use strata_model::objects::Node;
use strata_model::{NodeName, NodeType};
use strata_store::{EtcdConfig, EtcdStore, LeaderInfo, Persistence, SqliteStore, StoreError};
use strata_tests::etcd::{self, EtcdCluster};

fn node(name: &str, value: &str) -> Node {
    Node {
        name: NodeName::new(name).unwrap(),
        node_type: NodeType::Satellite,
        props: [("Aux/v".to_string(), value.to_string())].into(),
        flags: Default::default(),
        net_interfaces: vec![],
        uuid: format!("uuid-{name}"),
    }
}

fn config(c: &EtcdCluster, prefix: &str, ops: usize) -> EtcdConfig {
    let mut cfg = EtcdConfig::from_url(&c.url()).expect("an etcd URL");
    cfg.prefix = prefix.to_string();
    cfg.ops_per_txn = ops;
    cfg
}

fn nodes_of(s: &dyn Persistence) -> Vec<(String, String)> {
    let c = s.load().expect("load");
    c.nodes
        .values()
        .map(|n| (n.name.to_string(), n.props["Aux/v"].clone()))
        .collect()
}

fn me(name: &str) -> LeaderInfo {
    LeaderInfo {
        name: name.into(),
        url: format!("http://{name}:3370"),
    }
}

#[test]
fn etcd_store_commits_journals_fences_and_moves() {
    strata_exec::needs!(etcd::available());
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = EtcdCluster::start(dir.path(), 3);

    // Small commits: one transaction each, read back by another store at one revision.
    let a = EtcdStore::open(config(&cluster, "/t1/", 16)).unwrap();
    a.commit(1, &[Change::PutNode(node("alpha", "1"))]).unwrap();
    a.commit(
        2,
        &[
            Change::PutNode(node("beta", "1")),
            Change::PutNode(node("alpha", "2")),
            // The same key twice in one commit: the last one counts.
            Change::PutNode(node("beta", "2")),
        ],
    )
    .unwrap();
    let b = EtcdStore::open(config(&cluster, "/t1/", 16)).unwrap();
    assert_eq!(
        nodes_of(&b),
        vec![("alpha".into(), "2".into()), ("beta".into(), "2".into())]
    );
    assert_eq!(b.generation().unwrap(), 2);

    // A commit of more operations than one transaction may carry: through the journal.
    let many: Vec<Change> = (0..100)
        .map(|i| Change::PutNode(node(&format!("n{i:03}"), "j")))
        .collect();
    a.commit(3, &many).unwrap();
    let loaded = b.load().unwrap();
    assert_eq!((loaded.generation, loaded.nodes.len()), (3, 102));

    // A big commit whose writer stops once its journal is durable: whole for a reader,
    // and copied into the objects by the next leader.
    let dels: Vec<Change> = (0..100)
        .map(|i| Change::DelNode(NodeName::new(&format!("n{i:03}")).unwrap()))
        .chain([Change::PutNode(node("gamma", "3"))])
        .collect();
    a.stop_after_next_journal();
    a.commit(4, &dels).unwrap();
    drop(a);
    let c = EtcdStore::open(config(&cluster, "/t1/", 16)).unwrap();
    let want = vec![
        ("alpha".to_string(), "2".to_string()),
        ("beta".into(), "2".into()),
        ("gamma".into(), "3".into()),
    ];
    assert_eq!(nodes_of(&c), want);
    assert_eq!(c.generation().unwrap(), 4);
    c.recover().unwrap();
    assert_eq!(nodes_of(&c), want);
    let (_, rows) = c.rows().unwrap();
    assert_eq!(rows.len(), 3, "the journal was copied, no object left over");

    // Leadership: one store leads; the other learns who.
    let lease_c = c.grant(Duration::from_secs(2)).unwrap();
    assert_eq!(c.try_lead(lease_c, &me("ctl-c")).unwrap(), None);
    assert!(c.leads());
    // B's lease outlives what follows (C's runs out below).
    let lease_b = b.grant(Duration::from_secs(30)).unwrap();
    assert_eq!(
        b.try_lead(lease_b, &me("ctl-b")).unwrap(),
        Some(me("ctl-c"))
    );
    assert_eq!(b.leader().unwrap(), Some(me("ctl-c")));
    c.commit(5, &[Change::PutNode(node("delta", "5"))]).unwrap();
    assert!(c.keep_alive(lease_c).unwrap() > 0);

    // C's lease runs out (it stopped renewing it): B takes over; C's writes fail and
    // change nothing.
    let start = std::time::Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the lease did not expire"
        );
        let _ = b.keep_alive(lease_b);
        if b.try_lead(lease_b, &me("ctl-b")).unwrap().is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        c.keep_alive(lease_c).unwrap(),
        0,
        "an expired lease has no time left"
    );
    let e = c
        .commit(6, &[Change::PutNode(node("delta", "stale"))])
        .unwrap_err();
    assert!(matches!(e, StoreError::NotLeader), "{e}");
    let e = c.commit(6, &many).unwrap_err();
    assert!(matches!(e, StoreError::NotLeader), "{e}");
    b.commit(6, &[Change::PutNode(node("epsilon", "6"))])
        .unwrap();
    let names: Vec<String> = nodes_of(&b)
        .into_iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    assert_eq!(
        names,
        ["alpha=2", "beta=2", "delta=5", "epsilon=6", "gamma=3"]
    );

    // A member is lost: the store goes on through the others.
    cluster.kill_member(0);
    b.commit(7, &[Change::PutNode(node("zeta", "7"))]).unwrap();
    assert_eq!(b.load().unwrap().nodes.len(), 6);
    assert!(b.keep_alive(lease_b).unwrap() > 0);
    cluster.start_member(0);
    b.revoke(lease_b).unwrap();
    assert_eq!(
        b.leader().unwrap(),
        None,
        "a revoked lease takes the leader key along"
    );

    // Shared files: the first one kept wins.
    assert_eq!(b.shared_file("pki/ca.crt").unwrap(), None);
    assert_eq!(b.share_file("pki/ca.crt", b"one").unwrap(), b"one");
    assert_eq!(c.share_file("pki/ca.crt", b"two").unwrap(), b"one");

    // Moving a cluster out to the embedded database and back in, whole.
    let file = dir.path().join("out.sqlite");
    let sqlite = SqliteStore::open(&file).unwrap();
    assert_eq!(strata_store::copy(&b, &sqlite).unwrap(), 6);
    let fresh = EtcdStore::open(config(&cluster, "/t2/", 16)).unwrap();
    sqlite
        .commit(8, &[Change::PutNode(node("eta", "8"))])
        .unwrap();
    assert_eq!(strata_store::copy(&sqlite, &fresh).unwrap(), 7);
    assert_eq!(fresh.generation().unwrap(), 8);
    assert_eq!(nodes_of(&fresh), nodes_of(&sqlite));
    let e = strata_store::copy(&sqlite, &fresh).unwrap_err();
    assert!(matches!(e, StoreError::NotEmpty(7)), "{e}");

    // A prefix holding another program's keys, and a layout newer than this build, are
    // refused before anything is written.
    let http = reqwest::blocking::Client::new();
    let put = |k: &str, v: &str| {
        use base64::Engine;
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let url = format!(
            "http://127.0.0.1:{}/v3/kv/put",
            cluster.members[1].client_port
        );
        let r = http
            .post(url)
            .body(format!(r#"{{"key":"{}","value":"{}"}}"#, b(k), b(v)))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    };
    put("/foreign/x", "1");
    let e = EtcdStore::open(config(&cluster, "/foreign/", 16))
        .err()
        .unwrap();
    assert!(e.to_string().contains("did not write"), "{e}");
    put("/t2/meta/schema_version", "99");
    let e = EtcdStore::open(config(&cluster, "/t2/", 16)).err().unwrap();
    assert!(matches!(e, StoreError::TooNew { found: 99 }), "{e}");
    let mut bad = config(&cluster, "t3", 16);
    let e = EtcdStore::open(bad.clone()).err().unwrap();
    assert!(e.to_string().contains("must start and end with '/'"), "{e}");
    bad.prefix = "/t3/".into();
    bad.ops_per_txn = 2;
    let e = EtcdStore::open(bad).err().unwrap();
    assert!(e.to_string().contains("too small"), "{e}");
}

// ----- two controllers on etcd -----

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use strata_client::Client;
use strata_tests::{bin, controller_leads, http_head, workload, TestCluster, CONTROLLER_DB};

/// The head of the answer to a GET of `path` on 127.0.0.1:`port` (lower case).
fn head_of(port: u16, path: &str) -> String {
    http_head(port, path).unwrap_or_else(|| "no answer".into())
}

fn body_of(port: u16, path: &str) -> serde_json::Value {
    reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn a_standby_controller_takes_over_when_the_leader_is_killed() {
    strata_tests::needs_cluster!(etcd::available());
    let mut c = TestCluster::start_on_etcd(2, 3, "[controller]\nname = \"ctl-a\"\n");
    c.register_all();
    c.create_group("rg1", 1);

    // The second controller, with its own data directory and name.
    let (mut b, b_port, bdir) = c.spawn_another_controller("b", "[controller]\nname = \"ctl-b\"\n");
    assert!(
        b.log_text()
            .contains("controller 'ctl-a' at http://127.0.0.1:"),
        "{}",
        b.log_text()
    );

    // The standby forwards every call to the leader: the same answers, marked.
    assert!(head_of(b_port, "/v1/nodes").contains("x-linstor-forwarded-by: ctl-b"));
    assert!(!head_of(c.port, "/v1/nodes").contains("x-linstor-forwarded-by"));
    assert_eq!(body_of(b_port, "/v1/nodes"), body_of(c.port, "/v1/nodes"));
    let b_addr = format!("127.0.0.1:{b_port}");
    let out = std::process::Command::new(bin("linstor"))
        .args(["--controllers", &b_addr, "--no-color"])
        .args(["resource-group", "create", "rg-via-b"])
        .env_remove("LS_CONTROLLERS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", strata_tests::output_text(&out));
    assert!(c
        .linstor_ok(&["resource-group", "list"])
        .contains("rg-via-b"));

    // Clients that know both controllers mutate while the leader is killed.
    let client = Client::new(
        &[c.controller_addr(), b_addr.clone()],
        Duration::from_secs(60),
    )
    .unwrap();
    let plans = workload::plans(4, 12);
    let start = Instant::now();
    let finished = Arc::new(AtomicUsize::new(0));
    let work = {
        let client = client.clone();
        let finished = finished.clone();
        std::thread::spawn(move || workload::run(&client, plans, finished))
    };
    // Killed with a quarter of the mutations done.
    while finished.load(Ordering::SeqCst) < 36 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the mutations do not progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    c.kill_controller();
    let killed = Instant::now();
    let before = finished.load(Ordering::SeqCst);
    assert!(
        before < 100,
        "{before} of 144 mutations were done before the kill"
    );
    // The standby leads once it answers itself.
    while !controller_leads(b_port) {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the standby did not take over:\n{}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = killed.elapsed();
    eprintln!(
        "the standby took over {} ms after the leader was killed",
        took.as_millis()
    );
    assert!(b
        .log_text()
        .contains("this controller leads the cluster now"));
    let results = work.join().unwrap();

    // What every acknowledged mutation implies holds on the new leader.
    let want = workload::expected(&results);
    assert!(
        want.acked > 100,
        "only {} of 144 mutations were acknowledged",
        want.acked
    );
    let client = Client::new(std::slice::from_ref(&b_addr), Duration::from_secs(60)).unwrap();
    workload::check(&c, &client, &want);
    // The satellites follow the new leader: every volume has its device.
    assert!(
        c.wait_until(Duration::from_secs(60), || {
            c.block(client.resources(&[], &[], &[], &[]))
                .unwrap()
                .iter()
                .all(|r| r.volumes.iter().all(|v| v.device_path.is_some()))
        }),
        "satellites did not converge on the new leader"
    );
    let nodes = c.block(client.nodes(&[], &[])).unwrap();
    assert!(
        nodes
            .iter()
            .all(|n| n.connection_status.as_deref() == Some("ONLINE")),
        "{nodes:?}"
    );
    // Both controllers hold the one cluster CA (kept in etcd).
    let ca = |d: &std::path::Path| std::fs::read(d.join("controller/pki/ca.crt")).unwrap();
    assert_eq!(ca(c.dir.path()), ca(&bdir));

    // The old leader comes back as a standby of the new one.
    c.controller = TestCluster::spawn_controller(c.dir.path(), c.port);
    let start = Instant::now();
    while !head_of(c.port, "/v1/nodes").contains("x-linstor-forwarded-by: ctl-a") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the old leader does not forward:\n{}",
            c.controller.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(body_of(c.port, "/v1/nodes"), body_of(b_port, "/v1/nodes"));
    // A leader stopped on purpose gives its lease up: the standby leads at once.
    b.stop();
    let stopped = Instant::now();
    while !controller_leads(c.port) {
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "the standby did not take over a stopped leader:\n{}",
            c.controller.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "the standby took over {} ms after the leader stopped",
        stopped.elapsed().as_millis()
    );
}

#[test]
fn controller_reaches_etcd_over_tls_with_a_client_certificate() {
    strata_tests::needs_cluster!(
        etcd::available(),
        strata_tests::needs::tool("openssl", "openssl")
    );
    let mut c = TestCluster::start_on_etcd_tls(1);
    c.register_all();
    c.create_group("rg1", 1);
    c.spawn("rg1", "tls-vol", 4096);
    c.kill_controller();
    c.start_controller();
    assert!(c
        .linstor_ok(&["resource-definition", "list"])
        .contains("tls-vol"));
    assert!(c.wait_until(Duration::from_secs(30), || c.device_of("tls-vol").is_some()));

    // Without the client certificate, or without TLS, the controller does not start and
    // says why.
    let url = c.etcd.as_ref().unwrap().url();
    let certs = c.etcd.as_ref().unwrap().tls.clone().unwrap();
    for (what, toml) in [
        (
            "no client certificate",
            format!("[db]\nca_certificate = \"{}\"\n", certs.ca.display()),
        ),
        ("plain HTTP", String::new()),
    ] {
        let dir = c.dir.path().join(what.replace(' ', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("linstor.toml"), toml).unwrap();
        let out = std::process::Command::new(bin("linstor-controller"))
            .arg("--config")
            .arg(dir.join("linstor.toml"))
            .arg("--data-dir")
            .arg(&dir)
            .args(["--db", &url, "--port", "0", "--listen-addr", "127.0.0.1"])
            .output()
            .unwrap();
        let text = strata_tests::output_text(&out);
        assert!(!out.status.success(), "{what}: {text}");
        assert!(
            text.contains("cannot open database etcd://"),
            "{what}: {text}"
        );
    }
}

#[test]
fn export_db_moves_a_cluster_from_sqlite_to_etcd_and_back() {
    strata_tests::needs_cluster!(etcd::available());
    let mut c = TestCluster::start(2);
    c.register_all();
    c.create_group("rg1", 1);
    c.spawn("rg1", "moved1", 4096);
    c.spawn("rg1", "moved2", 4096);
    let reported = c.wait_until(Duration::from_secs(30), || {
        c.linstor_ok(&["storage-pool", "list"])
            .matches("iB |")
            .count()
            >= 4
    });
    assert!(reported, "{}", c.linstor_ok(&["storage-pool", "list"]));
    let made = c.listing();

    // Out of the embedded database, into etcd.
    let export = c.dir.path().join("export.json");
    let sqlite = format!(
        "sqlite:{}",
        c.dir.path().join("controller/linstor.sqlite").display()
    );
    let (ok, out) = c.controller_command(&sqlite, &["export-db", export.to_str().unwrap()]);
    assert!(ok && out.contains("exported"), "{out}");
    c.kill_controller();
    let etcd = EtcdCluster::start(c.dir.path(), 1);
    let (ok, out) = c.controller_command(&etcd.url(), &["import-db", export.to_str().unwrap()]);
    assert!(ok && out.contains("imported"), "{out}");
    let (ok, out) = c.controller_command(&etcd.url(), &["import-db", export.to_str().unwrap()]);
    assert!(!ok && out.contains("holds a cluster already"), "{out}");

    // A controller on another machine (a data directory of its own, no copy of the old
    // one): the cluster's CA came along in etcd, so the satellites accept it.
    std::fs::write(c.dir.path().join(CONTROLLER_DB), etcd.url()).unwrap();
    let (mut other, port, dir) = c.spawn_another_controller("elsewhere", "");
    let old_ca = std::fs::read(c.dir.path().join("controller/pki/ca.crt")).unwrap();
    assert_eq!(
        std::fs::read(dir.join("controller/pki/ca.crt")).unwrap(),
        old_ca
    );
    let at = |args: &[&str]| -> String {
        let out = std::process::Command::new(bin("linstor"))
            .args(["--controllers", &format!("127.0.0.1:{port}"), "--no-color"])
            .args(args)
            .env_remove("LS_CONTROLLERS")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", strata_tests::output_text(&out));
        strata_tests::output_text(&out)
    };
    let online = c.wait_until(Duration::from_secs(30), || {
        at(&["node", "list"]).matches("Online").count() == 2
    });
    assert!(online, "{}", at(&["node", "list"]));
    assert_eq!(at(&["resource-definition", "list"]), made[3]);
    // A change on etcd, then back into a new embedded database.
    at(&["resource-definition", "delete", "moved2"]);
    let gone = c.wait_until(Duration::from_secs(30), || {
        !at(&["resource-definition", "list"]).contains("moved2")
    });
    assert!(gone);
    let back = c.dir.path().join("back.json");
    let (ok, out) = c.controller_command(&etcd.url(), &["export-db", back.to_str().unwrap()]);
    assert!(ok, "{out}");
    other.kill9();
    let fresh = c.dir.path().join("controller/fresh.sqlite");
    let fresh_url = format!("sqlite:{}", fresh.display());
    let (ok, out) = c.controller_command(&fresh_url, &["import-db", back.to_str().unwrap()]);
    assert!(ok, "{out}");
    std::fs::write(c.dir.path().join(CONTROLLER_DB), &fresh_url).unwrap();
    c.start_controller();
    let listed = c.wait_until(Duration::from_secs(30), || {
        let rds = c.linstor_ok(&["resource-definition", "list"]);
        rds.contains("moved1") && !rds.contains("moved2")
    });
    assert!(listed, "{}", c.linstor_ok(&["resource-definition", "list"]));
    assert_eq!(c.linstor_ok(&["node", "list"]).matches("Online").count(), 2);
}
