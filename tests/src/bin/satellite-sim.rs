//! `satellite-sim`: stands in for many satellites in benchmarks. Every listening port is one
//! node that speaks the agent API and answers at once: it accepts any configuration, reports
//! every volume as up to date on a made-up device, and offers large thin pools. It never runs
//! a command and touches no storage.
//!
//! Usage: satellite-sim <first port> <count> [free GiB per pool]
//!
//! `PUT /sim/stall` with `true` makes a node hold every configuration without answering (a
//! hung node, for tests), `false` lets it answer again; `GET /sim/stats` counts the whole
//! configurations and the deltas it took.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use strata_agent_api::{
    AgentError, Hello, NodeConfig, NodeConfigDelta, PoolConfig, PoolProbe, Report, ResourceConfig,
    AGENT_API_VERSION,
};
use strata_model::drbd_state::DiskState;
use strata_model::kinds::{LayerKind, ProviderKind};
use strata_model::observed::{Capabilities, PoolState, ResourceState, VolumeState};

#[derive(Default)]
struct Node {
    config: Option<NodeConfig>,
    report: Report,
}

impl Node {
    /// Takes a whole configuration (its resources kept in name order, for deltas).
    fn take(&mut self, mut cfg: NodeConfig, free_kib: u64) {
        cfg.resources.sort_by(|a, b| a.name.cmp(&b.name));
        self.report = report_for(&cfg, free_kib);
        self.config = Some(cfg);
    }
}

#[derive(Clone)]
struct Sim {
    node: Arc<Mutex<Node>>,
    free_kib: u64,
    /// While set, configurations are held without an answer (a node that hangs).
    stalled: Arc<std::sync::atomic::AtomicBool>,
    /// Whole configurations and deltas taken, for `GET /sim/stats`.
    fulls: Arc<std::sync::atomic::AtomicU64>,
    deltas: Arc<std::sync::atomic::AtomicU64>,
}

fn capabilities() -> Capabilities {
    Capabilities {
        providers: vec![
            ProviderKind::Diskless,
            ProviderKind::File,
            ProviderKind::FileThin,
            ProviderKind::Lvm,
            ProviderKind::LvmThin,
        ],
        layers: vec![LayerKind::Drbd, LayerKind::Storage],
        os_variant: Some("simulated".into()),
        ..Default::default()
    }
}

fn pool_state(free_kib: u64) -> PoolState {
    PoolState {
        free_capacity_kib: free_kib,
        total_capacity_kib: free_kib,
        supports_snapshots: true,
        errors: Vec::new(),
    }
}

fn resource_state(r: &ResourceConfig) -> ResourceState {
    ResourceState {
        name: r.name.clone(),
        volumes: r
            .volumes
            .iter()
            .map(|v| VolumeState {
                volume_number: v.number,
                device_path: (!r.diskless).then(|| format!("/dev/sim/{}", v.backing_name)),
                backing_path: None,
                allocated_kib: Some(0),
                usable_kib: Some(v.size_kib),
                disk_state: if r.diskless {
                    DiskState::Diskless
                } else {
                    DiskState::UpToDate
                },
                error: None,
            })
            .collect(),
        in_use: Some(false),
        error: None,
    }
}

fn report_for(cfg: &NodeConfig, free_kib: u64) -> Report {
    Report {
        node_name: Some(cfg.node_name.clone()),
        applied_generation: cfg.generation,
        pools: cfg
            .pools
            .iter()
            .map(|p| (p.name.clone(), pool_state(free_kib)))
            .collect::<BTreeMap<_, _>>(),
        resources: cfg.resources.iter().map(resource_state).collect(),
        errors: Vec::new(),
        drbd: None,
        partial: false,
        gone: Vec::new(),
        // A simulated node holds every snapshot it is asked for.
        snapshots: cfg
            .snapshots
            .iter()
            .map(|s| strata_agent_api::SnapshotReport {
                resource: s.resource.clone(),
                name: s.name.clone(),
                volumes: s.volumes.iter().map(|v| v.number).collect(),
                suspended: s.suspend_io,
                error: None,
                rollback_down: s.rollback.filter(|r| r.down_only).map(|r| r.id),
                rollback_done: s.rollback.filter(|r| !r.down_only).map(|r| r.id),
            })
            .collect(),
    }
}

async fn hello(State(s): State<Sim>) -> Json<Hello> {
    let node = s.node.lock().unwrap();
    Json(Hello {
        agent_api: AGENT_API_VERSION,
        version: "sim".into(),
        node_name: node.config.as_ref().map(|c| c.node_name.clone()),
        cluster_id: node.config.as_ref().map(|c| c.cluster_id.clone()),
        applied_generation: node.report.applied_generation,
        capabilities: capabilities(),
    })
}

async fn config(State(s): State<Sim>, Json(cfg): Json<NodeConfig>) -> Json<Report> {
    // The controller gives up after its time-out and drops the request, which ends this.
    while s.stalled.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut node = s.node.lock().unwrap();
    if cfg.generation >= node.report.applied_generation {
        node.take(cfg, s.free_kib);
        s.fulls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Json(node.report.clone())
}

/// A delta costs what it changes: the held configuration and report are patched in place
/// (the simulated node keeps its resources in name order), and the answer names only the
/// delta's resources.
async fn config_delta(State(s): State<Sim>, Json(delta): Json<NodeConfigDelta>) -> Response {
    while s.stalled.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut node = s.node.lock().unwrap();
    let node = &mut *node;
    let Some(cfg) = node.config.as_mut().filter(|c| c.generation == delta.base) else {
        let msg = AgentError {
            message: format!(
                "the delta is based on {}, this node holds another",
                delta.base
            ),
        };
        return (StatusCode::CONFLICT, Json(msg)).into_response();
    };
    s.deltas.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cfg.generation = delta.generation;
    cfg.pools = delta.pools.clone();
    if let Some(snaps) = &delta.snapshots {
        cfg.snapshots = snaps.clone();
    }
    let mut changed = Vec::new();
    for name in &delta.remove {
        if let Ok(i) = cfg
            .resources
            .binary_search_by(|r| r.name.as_str().cmp(name))
        {
            cfg.resources.remove(i);
            node.report.resources.remove(i);
        }
    }
    for r in &delta.upsert {
        let state = resource_state(r);
        match cfg.resources.binary_search_by(|c| c.name.cmp(&r.name)) {
            Ok(i) => {
                cfg.resources[i] = r.clone();
                node.report.resources[i] = state.clone();
            }
            Err(i) => {
                cfg.resources.insert(i, r.clone());
                node.report.resources.insert(i, state.clone());
            }
        }
        changed.push(state);
    }
    // Pools and snapshots only: the node's resources are not copied.
    let full = report_for(
        &NodeConfig {
            generation: cfg.generation,
            cluster_id: String::new(),
            node_name: cfg.node_name.clone(),
            pools: cfg.pools.clone(),
            resources: Vec::new(),
            snapshots: cfg.snapshots.clone(),
        },
        s.free_kib,
    );
    node.report.applied_generation = delta.generation;
    node.report.pools = full.pools.clone();
    node.report.snapshots = full.snapshots.clone();
    Json(Report {
        resources: changed,
        gone: delta.remove.clone(),
        partial: true,
        ..full
    })
    .into_response()
}

/// How many whole configurations and deltas this node took.
async fn stats(State(s): State<Sim>) -> Json<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    Json(serde_json::json!({
        "full": s.fulls.load(Relaxed),
        "delta": s.deltas.load(Relaxed),
    }))
}

async fn stall(State(s): State<Sim>, Json(on): Json<bool>) -> Json<bool> {
    s.stalled.store(on, std::sync::atomic::Ordering::Relaxed);
    Json(on)
}

async fn report(State(s): State<Sim>) -> Json<Report> {
    Json(s.node.lock().unwrap().report.clone())
}

async fn probe(State(s): State<Sim>, Json(_): Json<PoolConfig>) -> Json<PoolProbe> {
    Json(PoolProbe {
        ok: true,
        error: None,
        state: Some(pool_state(s.free_kib)),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        anyhow::bail!("usage: satellite-sim <first port> <count> [free GiB per pool]");
    }
    let first: u16 = args[1].parse()?;
    let count: u16 = args[2].parse()?;
    let free_gib: u64 = args
        .get(3)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10 * 1024);
    let mut tasks = Vec::new();
    for i in 0..count {
        let port = first + i;
        let sim = Sim {
            node: Arc::new(Mutex::new(Node::default())),
            free_kib: free_gib * 1024 * 1024,
            stalled: Default::default(),
            fulls: Default::default(),
            deltas: Default::default(),
        };
        let app = Router::new()
            .route(strata_agent_api::PATH_HELLO, get(hello))
            .route(strata_agent_api::PATH_CONFIG, put(config))
            .route(strata_agent_api::PATH_CONFIG_DELTA, put(config_delta))
            .route(strata_agent_api::PATH_REPORT, get(report))
            .route(strata_agent_api::PATH_POOL_PROBE, post(probe))
            .route("/sim/stall", put(stall))
            .route("/sim/stats", get(stats))
            .with_state(sim);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        tasks.push(tokio::spawn(
            async move { axum::serve(listener, app).await },
        ));
    }
    println!(
        "simulating {count} satellites on 127.0.0.1:{first}..{}",
        first + count - 1
    );
    for t in tasks {
        t.await??;
    }
    Ok(())
}
