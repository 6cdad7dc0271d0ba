//! Scale: simulated satellites, thousands of resources spawned through the REST API, then the
//! latency of the listings users run, the controller's memory, its database and a cold start.

use std::time::{Duration, Instant};

use serde_json::json;
use strata_client::{Client, Method};
use strata_tests::sim::SimCluster;
use strata_tests::TestCluster;

use crate::stats::{ms, percentiles, print, Row};

fn rss_mib(pid: i32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("linstor.sqlite")
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn get(client: &Client, path: &str) -> (Duration, usize) {
    let t = Instant::now();
    let (status, body) = client.raw(Method::GET, path, None).await.expect("request");
    assert!(status.is_success(), "{path}: {status}");
    (t.elapsed(), body.len())
}

/// Time until the last byte of the answer to `GET path` has arrived, read part by part as
/// it comes (as a client that parses a stream reads it, without first copying the whole
/// answer into one buffer), and its size.
async fn get_all(http: &reqwest::Client, base: &str, path: &str) -> (Duration, usize) {
    let t = Instant::now();
    let mut resp = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("request");
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    let mut bytes = 0;
    while let Some(part) = resp.chunk().await.expect("answer") {
        bytes += part.len();
    }
    (t.elapsed(), bytes)
}

/// What a size of the scale run must reach.
struct Targets {
    filtered_p99: Duration,
    full: Duration,
    cold_start: Duration,
    rss_mib: f64,
    /// Spawns per second with the cluster full, and the largest slow-down from the first
    /// tenth of the run to the last.
    spawn_rate: Option<f64>,
    slowdown: Option<f64>,
}

/// The sizes: the default 30,000 resources on 100 nodes, `--size=100k` for 100,000 on 1,000.
fn size(quick: bool, preset: Option<&str>) -> anyhow::Result<(u16, usize, Targets)> {
    let ms = Duration::from_millis;
    let default = Targets {
        filtered_p99: ms(5),
        full: ms(1000),
        cold_start: ms(2000),
        rss_mib: 150.0,
        spawn_rate: Some(300.0),
        slowdown: Some(1.5),
    };
    Ok(match (quick, preset) {
        // Too short a run for spawn rates to mean anything.
        (true, _) => (
            10,
            300,
            Targets {
                spawn_rate: None,
                slowdown: None,
                ..default
            },
        ),
        (false, None | Some("30k")) => (100, 10_000, default),
        (false, Some("100k")) => (
            1000,
            33_334,
            Targets {
                filtered_p99: ms(2),
                cold_start: ms(1000),
                rss_mib: 400.0,
                spawn_rate: None,
                slowdown: None,
                ..default
            },
        ),
        (_, Some(other)) => anyhow::bail!("unknown size '{other}': use --size=30k or --size=100k"),
    })
}

pub fn run(quick: bool, preset: Option<&str>) -> anyhow::Result<()> {
    let replicas = 3usize;
    let (mut nodes, mut rds, targets) = size(quick, preset)?;
    // Other sizes for profiling: BENCH_NODES, BENCH_RDS.
    if let Some(n) = std::env::var("BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        nodes = n;
    }
    if let Some(n) = std::env::var("BENCH_RDS").ok().and_then(|v| v.parse().ok()) {
        rds = n;
    }
    println!("\nscale: {nodes} simulated nodes, {rds} resource definitions x {replicas} replicas");
    let s = SimCluster::start(nodes, "");
    s.create_group("rg1", replicas);
    let SimCluster { mut c, mut sim, .. } = s;
    let client = c.client();

    // Spawn with 8 concurrent clients.
    let started = Instant::now();
    let spawned: Vec<(Duration, Instant)> = c.block(async {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let cl = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = w;
                while i < rds {
                    let t = Instant::now();
                    let r = cl
                        .write(
                            Method::POST,
                            "/v1/resource-groups/rg1/spawn",
                            Some(&json!({"resource_definition_name": format!("rsc{i:05}"), "volume_sizes": [1048576]})),
                        )
                        .await;
                    assert!(r.is_ok(), "spawn {i}: {r:?}");
                    lat.push((t.elapsed(), Instant::now()));
                    if i % 1000 == 999 {
                        eprintln!("  {} definitions spawned", i + 1);
                    }
                    i += 8;
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("spawn task"));
        }
        all
    });
    let spawn_secs = started.elapsed().as_secs_f64();
    let pid = c.controller.pid().expect("controller pid");
    let rss_spawned = rss_mib(pid);
    // Throughput while the cluster was still small (the first tenth of the spawns) and once
    // it was nearly full (the last tenth).
    let mut done: Vec<Instant> = spawned.iter().map(|(_, at)| *at).collect();
    done.sort();
    let tenth = (done.len() / 10).max(1);
    let rate = |from: Instant, to: Instant| tenth as f64 / (to - from).as_secs_f64().max(1e-9);
    let early_rate = rate(started, done[tenth - 1]);
    let late_rate = rate(done[done.len() - tenth - 1], done[done.len() - 1]);
    let slowdown = early_rate / late_rate;
    let (spawn_p50, spawn_p99) = percentiles(spawned.iter().map(|(d, _)| *d).collect());

    let (filtered, nodes_lat, full, full_bytes, count) = c.block(async {
        let mut filtered = Vec::new();
        for i in 0..500 {
            let path = format!("/v1/view/resources?resources=rsc{:05}", (i * 7919) % rds);
            filtered.push(get(&client, &path).await.0);
        }
        let mut nodes_lat = Vec::new();
        for _ in 0..200 {
            nodes_lat.push(get(&client, "/v1/nodes").await.0);
        }
        let mut full = Vec::new();
        let mut bytes = 0;
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{}", c.port);
        for _ in 0..if quick { 5 } else { 10 } {
            let (d, b) = get_all(&http, &base, "/v1/view/resources").await;
            full.push(d);
            bytes = b;
        }
        let all = client.resources(&[], &[], &[], &[]).await.expect("list");
        (filtered, nodes_lat, full, bytes, all.len())
    });
    assert_eq!(count, rds * replicas, "every spawned replica is listed");
    let rss = rss_mib(pid);
    std::thread::sleep(Duration::from_secs(10));
    let rss_idle = rss_mib(pid);
    let db = dir_size(&c.dir.path().join("controller")) as f64 / (1024.0 * 1024.0);

    // Cold start: stop, start, time until a listing answers with everything loaded.
    c.controller.stop();
    let probe = format!("/v1/view/resources?resources=rsc{:05}", rds - 1);
    let t = Instant::now();
    c.controller = TestCluster::spawn_controller(c.dir.path(), c.port);
    let loaded = c.block(async {
        loop {
            if let Ok((status, body)) = client.raw(Method::GET, &probe, None).await {
                if status.is_success() {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    if v.as_array().map(|a| a.len()) == Some(replicas) {
                        return t.elapsed();
                    }
                }
            }
            if t.elapsed() > Duration::from_secs(120) {
                panic!("controller did not come back");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let rss_after = rss_mib(c.controller.pid().expect("pid"));
    std::thread::sleep(Duration::from_secs(10));
    let rss_after_idle = rss_mib(c.controller.pid().expect("pid"));
    sim.stop();

    let mem_target = format!("< {:.0} MiB", targets.rss_mib);
    let (f50, f99) = percentiles(filtered);
    let (n50, n99) = percentiles(nodes_lat);
    let (u50, u99) = percentiles(full);
    print(
        &format!("scale ({} resources)", rds * replicas),
        &[
            Row::new(
                "spawn throughput (8 clients), whole run",
                format!("{:.0} rd/s", rds as f64 / spawn_secs),
                "",
                None,
            ),
            Row::new(
                &format!(
                    "spawn throughput, first {tenth} (up to {} resources)",
                    tenth * replicas
                ),
                format!("{early_rate:.0} rd/s"),
                "",
                None,
            ),
            Row::new(
                &format!(
                    "spawn throughput, last {tenth} (up to {} resources)",
                    rds * replicas
                ),
                format!("{late_rate:.0} rd/s"),
                &targets
                    .spawn_rate
                    .map(|t| format!(">= {t:.0} rd/s"))
                    .unwrap_or_default(),
                targets.spawn_rate.map(|t| late_rate >= t),
            ),
            Row::new(
                "spawn slow-down, first tenth / last tenth",
                format!("{slowdown:.2}x"),
                &targets
                    .slowdown
                    .map(|t| format!("<= {t:.1}x"))
                    .unwrap_or_default(),
                targets.slowdown.map(|t| slowdown <= t),
            ),
            Row::new(
                "spawn latency p50 / p99",
                format!("{} / {}", ms(spawn_p50), ms(spawn_p99)),
                "",
                None,
            ),
            Row::new("GET /v1/view/resources?resources=X p50", ms(f50), "", None),
            Row::new(
                "GET /v1/view/resources?resources=X p99",
                ms(f99),
                &format!("< {}", ms(targets.filtered_p99)),
                Some(f99 < targets.filtered_p99),
            ),
            Row::new("GET /v1/view/resources (all) p50", ms(u50), "", None),
            Row::new(
                "GET /v1/view/resources (all) p99",
                format!("{} ({:.1} MiB)", ms(u99), full_bytes as f64 / 1048576.0),
                &format!("< {}", ms(targets.full)),
                Some(u99 < targets.full),
            ),
            Row::new(
                "GET /v1/nodes p50 / p99",
                format!("{} / {}", ms(n50), ms(n99)),
                "",
                None,
            ),
            Row::new(
                "controller memory after spawning",
                format!("{rss_spawned:.1} MiB"),
                &mem_target,
                Some(rss_spawned < targets.rss_mib),
            ),
            Row::new(
                "controller memory after the listings",
                format!("{rss:.1} MiB"),
                &mem_target,
                Some(rss < targets.rss_mib),
            ),
            Row::new(
                "controller memory 10 s later",
                format!("{rss_idle:.1} MiB"),
                &mem_target,
                Some(rss_idle < targets.rss_mib),
            ),
            Row::new(
                "controller memory after cold start",
                format!("{rss_after:.1} MiB"),
                &mem_target,
                Some(rss_after < targets.rss_mib),
            ),
            Row::new(
                "controller memory after cold start, nodes reported",
                format!("{rss_after_idle:.1} MiB"),
                &mem_target,
                Some(rss_after_idle < targets.rss_mib),
            ),
            Row::new("database size", format!("{db:.1} MiB"), "", None),
            Row::new(
                "cold start until everything answers",
                ms(loaded),
                &format!("< {}", ms(targets.cold_start)),
                Some(loaded < targets.cold_start),
            ),
        ],
    );
    Ok(())
}
