//! The link between the controller and its satellites: mutual TLS from the first start,
//! a one-time join, nobody but the cluster's controller configures a satellite, certificates
//! are renewed without a break, and a revoked certificate is refused.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use strata_client::Method;
use strata_tests::{bin, ok_replies, Proc, TestCluster};
use strata_tls::verify::{self, Credentials};
use strata_tls::{ClusterCa, Identity};

/// The node list as JSON.
fn nodes(c: &TestCluster) -> Vec<Value> {
    let v: Value = c.block(c.client().get("/v1/nodes")).expect("node list");
    v.as_array().cloned().unwrap_or_default()
}

fn node<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("node {name} in {list:?}"))
}

fn online(c: &TestCluster, name: &str) -> bool {
    node(&nodes(c), name)["connection_status"] == "ONLINE"
}

fn credentials(ca: &ClusterCa, id: Identity) -> Credentials {
    let (chain, key) = ca.credentials(&id, Duration::from_secs(3600)).unwrap();
    Credentials { chain, key }
}

/// A client that shows `creds` and accepts whatever the server shows.
fn client_with(creds: &Credentials) -> reqwest::Client {
    let seen = Arc::new(Mutex::new(None));
    reqwest::Client::builder()
        .use_preconfigured_tls(verify::controller_to_joining(creds, seen).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A whole node configuration as a controller would send it (it deletes every volume the
/// node holds: what an attacker would send).
fn hostile_config(node: &str) -> Value {
    json!({
        "cluster_id": "intruder",
        "node_name": node,
        "generation": 1_000_000,
        "pools": [],
        "resources": []
    })
}

async fn put_config(
    http: &reqwest::Client,
    scheme: &str,
    addr: &str,
    node: &str,
) -> Result<u16, String> {
    http.put(format!("{scheme}://{addr}/v1/config"))
        .json(&hostile_config(node))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

fn pki(c: &TestCluster) -> ClusterCa {
    ClusterCa::load_or_create(&c.dir.path().join("controller").join("pki"), "unused")
        .expect("the controller's CA")
}

#[test]
fn satellites_join_over_tls_and_admit_only_their_controller() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(2);
    c.register_all();
    assert!(c.wait_until(Duration::from_secs(20), || online(&c, "node1")
        && online(&c, "node2")));
    let list = nodes(&c);
    for n in ["node1", "node2"] {
        assert_eq!(
            node(&list, n)["net_interfaces"][0]["satellite_encryption_type"],
            "SSL"
        );
    }
    // The join token is used up: the satellite made itself a new one, and the controller
    // holds none (it is no longer in its database).
    let s = &c.satellites[0];
    assert!(s.state_dir.join("tls/node.crt").exists());
    assert!(s.state_dir.join("tls/cluster-ca.crt").exists());
    let addr = format!("{}:{}", s.addr, s.port);

    // A volume on the TLS link: the link works for real changes.
    c.create_group("rg", 1);
    c.spawn("rg", "tlsvol", 8 * 1024);
    assert!(c.device_of("tlsvol").is_some());

    let ca = pki(&c);
    let other = ClusterCa::generate("someone else").unwrap();
    c.block(async {
        // Plain HTTP: no answer a client can use.
        let plain = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let r = put_config(&plain, "http", &addr, "node1").await;
        assert!(r.is_err() || r == Ok(400), "plain HTTP got {r:?}");
        // TLS without a client certificate: refused in the handshake.
        let anonymous = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let r = put_config(&anonymous, "https", &addr, "node1").await;
        assert!(r.is_err(), "no certificate got {r:?}");
        // A second controller with a CA of its own: refused.
        let r = put_config(
            &client_with(&credentials(&other, Identity::Controller)),
            "https",
            &addr,
            "node1",
        )
        .await;
        assert!(r.is_err(), "another cluster's controller got {r:?}");
        // A node's certificate of this very cluster cannot act as the controller.
        let r = put_config(
            &client_with(&credentials(&ca, Identity::Node("node2".into()))),
            "https",
            &addr,
            "node1",
        )
        .await;
        assert!(r.is_err(), "a node certificate got {r:?}");
        // The cluster's controller identity is admitted (the positive control), and even
        // then the satellite takes no configuration of another node than the one it joined as.
        let real = client_with(&credentials(&ca, Identity::Controller));
        let hello = real
            .get(format!("https://{addr}/v1/hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(hello.status(), 200);
        assert_eq!(
            put_config(&real, "https", &addr, "node2").await,
            Ok(403),
            "node1's satellite took node2's configuration"
        );
    });
    // Nothing changed on the node.
    assert!(c.device_of("tlsvol").is_some());
    assert!(online(&c, "node1"));
}

/// Creates node `name` at `addr:port` through the REST API, with the communication type and
/// join token given (`None`: left out); answers the replies.
fn create_node(
    c: &TestCluster,
    name: &str,
    addr: &str,
    port: u16,
    com: Option<&str>,
    token: Option<&str>,
) -> Vec<strata_api::rc::ApiCallRc> {
    let mut nif = json!({"name": "default", "address": addr, "satellite_port": port});
    if let Some(t) = com {
        nif["satellite_encryption_type"] = json!(t);
    }
    let mut body = json!({"name": name, "type": "SATELLITE", "net_interfaces": [nif]});
    if let Some(t) = token {
        body["join_token"] = json!(t);
    }
    ok_replies(c.block(c.client().write(Method::POST, "/v1/nodes", Some(&body))))
}

#[test]
fn a_satellite_without_the_token_is_not_joined() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(1);
    let s = &c.satellites[0];
    create_node(
        &c,
        "node1",
        &s.addr,
        s.port,
        None,
        Some("0123456789abcdef0123456789abcdef"),
    );
    std::thread::sleep(Duration::from_secs(2));
    let list = nodes(&c);
    let n = node(&list, "node1");
    assert_ne!(n["connection_status"], "ONLINE", "{n}");
    assert!(!s.state_dir.join("tls/node.crt").exists());
    // Given the right token, it joins.
    let token = s.join_token();
    let out = c.linstor_ok(&["node", "join-token", "node1", "--token", &token]);
    assert!(
        !out.contains(&token),
        "a token the client gave is not repeated: {out}"
    );
    assert!(c.wait_until(Duration::from_secs(20), || online(&c, "node1")));
    // Joined: the satellite made itself a new token for a later join, and the controller's
    // own one is printed when none is given.
    assert_ne!(s.join_token(), token);
    let out = c.linstor_ok(&["node", "join-token", "node1"]);
    assert!(out.contains("one-time token"), "{out}");
    // A pending join does not cut a joined node off.
    std::thread::sleep(Duration::from_secs(2));
    assert!(online(&c, "node1"));
    let (_, out) = c.linstor_fails(&["node", "join-token", "ghost"]);
    assert!(out.contains("ghost"), "{out}");
}

#[test]
fn the_controller_prints_a_token_for_clients_that_give_none() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(1);
    let s = &c.satellites[0];
    // As python-linstor and the upstream client send it: PLAIN, no token.
    let replies = create_node(&c, "node1", &s.addr, s.port, Some("PLAIN"), None);
    let token = replies
        .iter()
        .find_map(|r| r.obj_refs.get("JoinToken").cloned())
        .unwrap_or_else(|| panic!("no token in {replies:?}"));
    assert!(replies.iter().any(|r| r.message.contains(&token)));
    // The administrator gives it to the satellite.
    std::fs::write(s.state_dir.join("tls/join-token"), &token).unwrap();
    assert!(c.wait_until(Duration::from_secs(20), || online(&c, "node1")));
    assert_eq!(
        node(&nodes(&c), "node1")["net_interfaces"][0]["satellite_encryption_type"],
        "SSL",
        "joined over TLS, so no longer PLAIN"
    );
}

/// Starts a satellite in plain mode at a port of its own.
fn plain_satellite(dir: &Path, name: &str) -> (Proc, u16) {
    let port = strata_tests::free_port();
    let conf = dir.join(format!("{name}.toml"));
    std::fs::write(&conf, "[netcom]\ntype = \"plain\"\n").unwrap();
    let state = dir.join(format!("{name}-state"));
    std::fs::create_dir_all(&state).unwrap();
    let proc = Proc::spawn(
        std::process::Command::new(bin("linstor-satellite"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--listen-addr")
            .arg("127.0.0.1")
            .arg("--state-dir")
            .arg(&state)
            .arg("--config")
            .arg(&conf),
        &dir.join(format!("{name}.log")),
    );
    (proc, port)
}

#[test]
fn plain_mode_only_where_both_sides_ask_for_it() {
    strata_tests::needs_cluster!();
    let c = TestCluster::start(0);
    // Plain on purpose: this test is about plain mode.
    let (mut proc, port) = plain_satellite(c.dir.path(), "plain1");
    std::thread::sleep(Duration::from_millis(500));
    // A node created PLAIN reaches a plain satellite, and says so.
    create_node(&c, "plain1", "127.0.0.1", port, Some("PLAIN"), None);
    assert!(c.wait_until(Duration::from_secs(20), || online(&c, "plain1")));
    assert_eq!(
        node(&nodes(&c), "plain1")["net_interfaces"][0]["satellite_encryption_type"],
        "PLAIN"
    );
    let out = c.linstor_ok(&["node", "list"]);
    assert!(out.contains("(PLAIN)"), "{out}");
    // A node created SSL (the default) never falls back to plain.
    ok_replies(
        c.block(
            c.client()
                .write(Method::DELETE, "/v1/nodes/plain1", None::<&Value>),
        ),
    );
    create_node(&c, "plain1", "127.0.0.1", port, None, None);
    std::thread::sleep(Duration::from_secs(3));
    let list = nodes(&c);
    assert_ne!(node(&list, "plain1")["connection_status"], "ONLINE");
    proc.stop();
}

#[test]
fn certificates_are_renewed_without_a_break_and_a_revoked_one_is_refused() {
    strata_tests::needs_cluster!();
    let mut c = TestCluster::start_configured(
        1,
        "[controller]\nnode_cert_validity_secs = 30\npoll_interval_secs = 1\n",
    );
    c.register_all();
    assert!(c.wait_until(Duration::from_secs(20), || online(&c, "node1")));
    let tls = c.satellites[0].state_dir.join("tls");
    let first = std::fs::read_to_string(tls.join("node.crt")).unwrap();
    let first_key = std::fs::read_to_string(tls.join("node.key")).unwrap();
    // A third of 30 s left: renewed after about 20 s, while the node stays online.
    let renewed = c.wait_until(Duration::from_secs(40), || {
        std::fs::read_to_string(tls.join("node.crt")).unwrap() != first
    });
    assert!(renewed, "the certificate was not renewed");
    assert!(online(&c, "node1"), "renewal broke the link");
    // The link keeps working on the renewed certificate.
    c.create_group("rg", 1);
    c.spawn("rg", "afterrenew", 8 * 1024);
    assert!(c.device_of("afterrenew").is_some());
    c.linstor_ok(&["resource-definition", "delete", "afterrenew"]);

    // Someone who kept the old certificate and key poses as the node: refused, it was
    // revoked when the new one was issued.
    c.stop_satellite(0);
    std::fs::write(tls.join("node.crt"), &first).unwrap();
    std::fs::write(tls.join("node.key"), &first_key).unwrap();
    c.start_satellite(0);
    std::thread::sleep(Duration::from_secs(4));
    let list = nodes(&c);
    let n = node(&list, "node1");
    assert_ne!(
        n["connection_status"],
        "ONLINE",
        "a revoked certificate was accepted: {n}\n{}",
        c.controller.log_text()
    );
    let log = c.controller.log_text();
    assert!(
        log.contains("revoked"),
        "the controller does not say why:\n{log}"
    );
}

/// A whole configuration of node1 as a controller of another cluster would send it, taken
/// apart by the generator.
fn mangled_config() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let valid = serde_json::to_vec(&hostile_config("node1")).unwrap();
    let len = valid.len();
    let v1 = valid.clone();
    let v2 = valid.clone();
    let v3 = valid.clone();
    prop_oneof![
        (0..len).prop_map(move |n| v1[..n].to_vec()),
        prop::collection::vec((0..len, any::<u8>()), 1..6).prop_map(move |edits| {
            let mut b = v2.clone();
            for (i, x) in edits {
                b[i] = x;
            }
            b
        }),
        (0..len, "[ -~]{0,16}").prop_map(move |(i, piece)| {
            let mut b = v3[..i].to_vec();
            b.extend_from_slice(piece.as_bytes());
            b.extend_from_slice(&v3[i..]);
            b
        }),
        Just(valid),
    ]
}

#[test]
fn mangled_agent_bodies_are_refused_and_change_nothing() {
    use proptest::prelude::*;
    strata_tests::needs_cluster!();
    let c = TestCluster::start(1);
    c.register_all();
    assert!(c.wait_until(Duration::from_secs(20), || online(&c, "node1")));
    c.create_group("rg", 1);
    c.spawn("rg", "keep", 8 * 1024);
    let device = c.device_of("keep").expect("a device");
    let s = &c.satellites[0];
    let addr = format!("{}:{}", s.addr, s.port);
    // Even with the controller's own identity (the worst case): a body that is not a
    // configuration of this cluster's node is refused, never applied, and never a 5xx.
    let http = client_with(&credentials(&pki(&c), Identity::Controller));
    let config = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        path in prop::sample::select(&["/v1/config", "/v1/config/delta", "/v1/join", "/v1/tls/certificate", "/v1/pools/probe"][..]),
        body in mangled_config(),
    )| {
        let status = c.block(async {
            let req = if path == "/v1/join" || path == "/v1/pools/probe" {
                http.post(format!("https://{addr}{path}"))
            } else {
                http.put(format!("https://{addr}{path}"))
            };
            req.header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        let status = status.map_err(|e| TestCaseError::fail(format!("{path}: no answer: {e}")))?;
        prop_assert!(
            (400..500).contains(&status),
            "{path} answered {status} to {}",
            String::from_utf8_lossy(&body)
        );
    });
    // The node still holds its volume, and the controller still reaches it.
    assert_eq!(c.device_of("keep").as_deref(), Some(device.as_str()));
    assert!(online(&c, "node1"));
    c.linstor_ok(&["resource-definition", "delete", "keep"]);
}

#[test]
fn idle_connections_do_not_keep_the_controller_from_a_satellite() {
    strata_tests::needs_cluster!();
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        hard.min(8192),
        hard,
    )
    .unwrap();
    let c = TestCluster::start(1);
    c.register_all();
    assert!(c.wait_until(Duration::from_secs(20), || online(&c, "node1")));
    c.create_group("rg", 1);
    let started = std::time::Instant::now();
    c.spawn("rg", "before", 4 * 1024);
    let baseline = started.elapsed();
    let s = &c.satellites[0];
    // 500 connections that never send a byte, 500 stalled in their TLS ClientHello.
    let mut idle = Vec::new();
    for i in 0..1000 {
        let mut t = std::net::TcpStream::connect((s.addr.as_str(), s.port)).unwrap();
        if i % 2 == 1 {
            use std::io::Write;
            t.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        }
        idle.push(t);
    }
    let started = std::time::Instant::now();
    c.spawn("rg", "beside", 4 * 1024);
    let loaded = started.elapsed();
    eprintln!("spawn: {baseline:?} alone, {loaded:?} beside 1,000 idle connections");
    assert!(c.device_of("beside").is_some());
    assert!(
        loaded < baseline * 5 + Duration::from_secs(2),
        "a change took {loaded:?} beside idle connections (alone {baseline:?})"
    );
    drop(idle);
}
