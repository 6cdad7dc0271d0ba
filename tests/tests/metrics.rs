//! Prometheus metrics of the controller (`GET /metrics`) and of the satellites
//! (`--metrics-port`), parsed by Prometheus' own Python client as a cluster works: nodes by
//! state, resources and volumes, pools' capacity, DRBD replication and out-of-sync bytes,
//! REST calls, commits, satellite round trips; on the satellite, reconcile passes and tool
//! runs. And the request id of a REST call, in the controller's answer and in the log lines
//! it causes on the satellites.

use std::time::Duration;

use strata_tests::{Scrape, TestCluster};

const MIB: u64 = 1024;

fn controller(c: &TestCluster) -> Scrape {
    Scrape::get(&format!("{}/metrics", c.url()), false)
}

fn node_id(c: &TestCluster, rsc: &str, node: &str) -> u32 {
    c.drbd_node_id(rsc, node)
}

/// Waits until a scrape of the controller satisfies `cond`; answers the last scrape.
fn scrape_until(c: &TestCluster, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    let mut last = controller(c);
    let ok = c.wait_until(Duration::from_secs(20), || {
        last = controller(c);
        cond(&last)
    });
    assert!(ok, "{what}; last scrape:\n{:#?}", last.samples);
    last
}

#[test]
fn metrics_follow_the_cluster_and_request_ids_reach_the_satellites() {
    strata_tests::needs_cluster!(strata_tests::python_modules(&["prometheus_client"]));
    let mut c = TestCluster::start_drbd_dry_run(2);
    c.register_all();
    let first = scrape_until(&c, "two nodes online, pools reported", |m| {
        m.value("linstor_nodes", &[("state", "ONLINE")]) == Some(2.0)
            && m.value(
                "linstor_storage_pool_capacity_total_bytes",
                &[("node", "node1")],
            )
            .is_some_and(|v| v > 0.0)
    });
    assert_eq!(
        first.value("linstor_node_state", &[("node", "node2")]),
        Some(2.0)
    );
    assert_eq!(
        first.value("linstor_resource_definition_count", &[]),
        Some(0.0)
    );
    assert!(first.value("linstor_info", &[]) == Some(1.0));
    let commits_before = first.sum("linstor_database_commit_duration_seconds_count", &[]);
    assert!(commits_before > 0.0, "node creation committed");

    // A spawn with an id of the caller's: echoed, and named by the satellites' log lines.
    c.create_group("rg2", 2);
    let resp = c.block(async {
        reqwest::Client::new()
            .post(format!("{}/v1/resource-groups/rg2/spawn", c.url()))
            .header("X-Request-ID", "metrics-test-spawn")
            .json(&serde_json::json!({
                "resource_definition_name": "m1",
                "volume_sizes": [32 * MIB],
            }))
            .send()
            .await
            .unwrap()
    });
    assert!(resp.status().is_success(), "{:?}", resp.status());
    assert_eq!(resp.headers()["x-request-id"], "metrics-test-spawn");
    for s in &c.satellites {
        let log = s.proc.log_text();
        assert!(
            log.lines()
                .any(|l| l.contains("request{request_id=metrics-test-spawn}")
                    && l.contains("volume created")),
            "{}: no log line with the request id:\n{log}",
            s.name
        );
    }
    // An id the controller made itself comes back too.
    let resp = c.block(async {
        reqwest::Client::new()
            .get(format!("{}/v1/nodes", c.url()))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(resp.headers()["x-request-id"].len(), 16);

    let m = scrape_until(&c, "the spawned resource counted", |m| {
        m.value("linstor_resource_definition_count", &[]) == Some(1.0)
    });
    assert_eq!(
        m.value("linstor_volume_definition_size_bytes", &[("name", "m1")]),
        Some((32 * MIB * 1024) as f64)
    );
    assert_eq!(
        m.value(
            "linstor_resource_definition_resource_count",
            &[("name", "m1"), ("resource_group", "rg2")]
        ),
        Some(2.0)
    );
    assert!(
        m.value(
            "linstor_http_requests_total",
            &[
                ("method", "POST"),
                ("path", "/v1/resource-groups/{rg}/spawn"),
                ("status", "201")
            ]
        ) >= Some(1.0),
        "{:#?}",
        m.samples
    );
    assert!(m.sum("linstor_database_commit_duration_seconds_count", &[]) > commits_before);
    assert!(
        m.value(
            "linstor_satellite_round_trip_seconds_count",
            &[("node", "node1")]
        ) > Some(0.0)
    );

    // DRBD: node1 receives a resync from node2, 4 MiB still out of sync.
    let (id1, id2) = (node_id(&c, "m1", "node1"), node_id(&c, "m1", "node2"));
    c.satellites[0].drbd_events(&[
        "exists resource name:m1 role:Secondary suspended:no may_promote:no promotion_score:0",
        &format!("exists connection name:m1 peer-node-id:{id2} conn-name:node2 connection:Connected role:Secondary"),
        "exists device name:m1 volume:0 minor:1000 disk:Inconsistent client:no quorum:yes open:no",
        &format!("exists peer-device name:m1 peer-node-id:{id2} conn-name:node2 volume:0 replication:SyncTarget peer-disk:UpToDate peer-client:no out-of-sync:4096 done:87.50"),
        "exists -",
    ]);
    c.satellites[1].drbd_events(&[
        "exists resource name:m1 role:Primary suspended:no may_promote:no promotion_score:10101",
        &format!("exists connection name:m1 peer-node-id:{id1} conn-name:node1 connection:Connected role:Secondary"),
        "exists device name:m1 volume:0 minor:1000 disk:UpToDate client:no quorum:yes open:yes",
        &format!("exists peer-device name:m1 peer-node-id:{id1} conn-name:node1 volume:0 replication:SyncSource peer-disk:Inconsistent peer-client:no out-of-sync:4096 done:87.50"),
        "exists -",
    ]);
    let m = scrape_until(&c, "the resync seen", |m| {
        m.value(
            "linstor_drbd_peer_volumes",
            &[("replication_state", "SyncTarget")],
        ) == Some(1.0)
            && m.value(
                "linstor_resource_state",
                &[("name", "m1"), ("node", "node2")],
            ) == Some(1.0)
    });
    assert_eq!(
        m.value(
            "linstor_volume_out_of_sync_bytes",
            &[("resource", "m1"), ("node", "node1"), ("peer", "node2")]
        ),
        Some(4096.0 * 1024.0)
    );
    assert_eq!(
        m.value(
            "linstor_volume_state",
            &[("resource", "m1"), ("node", "node1")]
        ),
        Some(5.0),
        "Inconsistent is 5"
    );
    assert_eq!(
        m.value("linstor_drbd_volumes", &[("disk_state", "Inconsistent")]),
        Some(1.0)
    );
    assert_eq!(
        m.value("linstor_resources", &[("state", "InUse")]),
        Some(1.0)
    );

    // The resync ends.
    c.satellites[0].drbd_events(&[
        "change device name:m1 volume:0 disk:UpToDate",
        &format!("change peer-device name:m1 peer-node-id:{id2} conn-name:node2 volume:0 replication:Established out-of-sync:0"),
    ]);
    let m = scrape_until(&c, "the resync over", |m| {
        m.value(
            "linstor_volume_state",
            &[("resource", "m1"), ("node", "node1")],
        ) == Some(1.0)
    });
    assert_eq!(
        m.value(
            "linstor_volume_out_of_sync_bytes",
            &[("resource", "m1"), ("node", "node1"), ("peer", "node2")]
        ),
        Some(0.0)
    );
    assert_eq!(
        m.value("linstor_drbd_volumes", &[("disk_state", "UpToDate")]),
        Some(2.0)
    );

    // The satellite's own metrics.
    let s = &c.satellites[0];
    let sm = Scrape::get(
        &format!("http://{}:{}/metrics", s.addr, s.metrics_port),
        false,
    );
    assert!(sm.sum("strata_satellite_reconcile_duration_seconds_count", &[]) >= 1.0);
    assert!(
        sm.sum("strata_satellite_tool_run_duration_seconds_count", &[]) >= 1.0,
        "{:#?}",
        sm.samples
    );
    assert!(
        sm.sum(
            "strata_satellite_http_requests_total",
            &[("method", "PUT"), ("status", "200")]
        ) >= 1.0
    );
    // The sample dashboard asks for nothing the two do not serve.
    dashboard_names_are_served(&[&m, &sm]);
    // OpenMetrics, parsed strictly, from both.
    Scrape::get(&format!("{}/metrics", c.url()), true);
    Scrape::get(
        &format!("http://{}:{}/metrics", s.addr, s.metrics_port),
        true,
    );

    // A node goes offline.
    c.stop_satellite(1);
    let m = scrape_until(&c, "node2 offline", |m| {
        m.value("linstor_nodes", &[("state", "OFFLINE")]) == Some(1.0)
    });
    assert_eq!(
        m.value("linstor_node_state", &[("node", "node2")]),
        Some(0.0)
    );
    assert!(m.value("linstor_scrape_requests_count", &[]) > Some(3.0));
}

/// Every metric the Grafana dashboard in docs/ queries is one the scrapes hold.
fn dashboard_names_are_served(scrapes: &[&Scrape]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/grafana/strata-dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("dashboard JSON");
    let name = regex::Regex::new(r"\b(linstor|strata_satellite)_[a-z_]+").unwrap();
    let mut asked = 0;
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for m in name.find_iter(expr) {
                asked += 1;
                assert!(
                    scrapes.iter().any(|s| s.has(m.as_str())),
                    "the dashboard's panel {:?} asks for {}, which is not served",
                    panel["title"],
                    m.as_str()
                );
            }
        }
    }
    assert!(asked >= 16, "{asked}");
}

#[test]
fn json_logs_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = strata_tests::free_port();
    let log = dir.path().join("controller.log");
    std::fs::write(dir.path().join("linstor.toml"), "").unwrap();
    let mut child = std::process::Command::new(strata_tests::bin("linstor-controller"))
        .args(["--log-format", "json", "--listen-addr", "127.0.0.1"])
        .arg("--port")
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(dir.path().join("linstor.toml"))
        .env("RUST_LOG", "debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the controller starts");
    let served = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        strata_tests::http_status(port, "/v1/controller/version") == Some(200)
    });
    let status = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/nodes/nosuchnode"))
        .header("X-Request-ID", "json-logs-1")
        .send()
        .map(|r| r.status().as_u16());
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(served, "the controller did not serve:\n{text}");
    assert_eq!(status.ok(), Some(404), "an unknown node");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["timestamp"].is_string()));
    let of_request: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["request_id"] == "json-logs-1"))
        })
        .collect();
    assert!(
        of_request
            .iter()
            .any(|l| l["fields"]["uri"].as_str() == Some("/v1/nodes/nosuchnode")),
        "no line of the request names its id:\n{text}"
    );
}
