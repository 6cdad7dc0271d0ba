//! `GET /metrics`: the controller's Prometheus metrics. What the cluster holds is read at
//! each scrape under the read locks, with LINSTOR's metric names and labels where LINSTOR has
//! them (`linstor_node_state`, `linstor_volume_state`, `linstor_storage_pool_capacity_*`,
//! ...), so that dashboards made for LINSTOR keep working; what LINSTOR lacks is added
//! (counts by state, DRBD replication states, out-of-sync bytes) beside what the controller
//! measures as it runs (REST calls, commits, satellite round trips).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use strata_api::convert;
use strata_model::error::code;
use strata_model::plan::Op;
use strata_model::{ApiError, ConnectionStatus, ObjKind};

use super::{error, AppState};

type Labels = Vec<(&'static str, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// The property that turns `/metrics` off on plain HTTP when HTTPS serves it.
pub const DISABLE_HTTP_METRICS: &str = "REST/disable-http-metrics";

/// Gauges of one scrape, registered as they are filled.
struct Scrape {
    registry: Registry,
}

impl Scrape {
    fn gauge(&mut self, name: &str, help: &str, fill: impl FnOnce(&Gauges)) {
        let family = Gauges::default();
        fill(&family);
        self.registry.register(name, help, family);
    }

    fn gauge_unit(&mut self, name: &str, help: &str, unit: Unit, fill: impl FnOnce(&Gauges)) {
        let family = Gauges::default();
        fill(&family);
        self.registry.register_with_unit(name, help, unit, family);
    }
}

fn set(family: &Gauges, labels: Labels, value: f64) {
    family.get_or_create(&labels).set(value);
}

/// LINSTOR's number for a connection status (its order in LINSTOR's constants).
fn status_number(s: ConnectionStatus) -> f64 {
    use ConnectionStatus::*;
    match s {
        Offline => 0.0,
        Connected => 1.0,
        Online => 2.0,
        VersionMismatch => 3.0,
        FullSyncFailed => 4.0,
        AuthenticationError => 5.0,
        Unknown => 6.0,
        HostnameMismatch => 7.0,
        OtherController => 8.0,
        Authenticated => 9.0,
        NoStltConn => 10.0,
    }
}

/// LINSTOR's number for a volume's disk state.
fn disk_state_number(state: Option<&str>) -> f64 {
    match state {
        Some("UpToDate") => 1.0,
        Some("Created") => 2.0,
        Some("Attached") => 3.0,
        Some("Diskless") => 4.0,
        Some("Inconsistent") => 5.0,
        Some("Failed") => 6.0,
        Some("To: Creating") => 7.0,
        Some("To: Attachable") => 8.0,
        Some("To: Attaching") => 9.0,
        Some("Diskless(Detached)") => 90.0,
        _ => -1.0,
    }
}

pub async fn scrape(
    State(core): State<AppState>,
    conn: Option<Extension<strata_net::ConnInfo>>,
    headers: HeaderMap,
) -> Response {
    let plain = !conn.is_some_and(|c| c.tls);
    let disabled = core
        .cluster()
        .ctrl_props
        .get(DISABLE_HTTP_METRICS)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if plain && disabled && core.settings.https.is_some() {
        let mut refused = error(
            Op::None,
            ApiError::new(
                code::FAIL_INVLD_REQUEST,
                ObjKind::CtrlConf,
                "The metrics are served over HTTPS only",
            )
            .cause(format!("{DISABLE_HTTP_METRICS} is true"))
            .correction("Scrape /metrics on the HTTPS port"),
        );
        *refused.status_mut() = StatusCode::NOT_FOUND;
        return refused;
    }
    let started = Instant::now();
    let scrapes = core.metrics.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
    let mut s = Scrape {
        registry: Registry::with_prefix("linstor"),
    };
    core.metrics.register(&mut s.registry);
    s.gauge("info", "The controller's version", |f| {
        set(
            f,
            vec![("version", env!("CARGO_PKG_VERSION").to_string())],
            1.0,
        )
    });
    nodes(&core, &mut s);
    resources(&core, &mut s);
    drbd(&core, &mut s);
    pools(&core, &mut s);
    reports(&core, &mut s);
    s.gauge(
        "scrape_requests_count",
        "Scrapes of /metrics since the controller started",
        |f| set(f, vec![], scrapes as f64),
    );
    s.gauge_unit(
        "scrape_duration",
        "Time taken to gather this scrape's metrics",
        Unit::Seconds,
        |f| set(f, vec![], started.elapsed().as_secs_f64()),
    );
    strata_net::metrics::exposition(&s.registry, headers.get(header::ACCEPT))
}

fn nodes(core: &AppState, s: &mut Scrape) {
    let cluster = core.cluster();
    let observed = core.observed();
    let mut by_state: BTreeMap<String, f64> = [ConnectionStatus::Online, ConnectionStatus::Offline]
        .iter()
        .map(|st| (st.to_string(), 0.0))
        .collect();
    s.gauge(
        "node_state",
        "Connection status of each node: 0=OFFLINE, 1=CONNECTED, 2=ONLINE, 3=VERSION_MISMATCH, \
         4=FULL_SYNC_FAILED, 5=AUTHENTICATION_ERROR, 6=UNKNOWN, 7=HOSTNAME_MISMATCH, \
         8=OTHER_CONTROLLER, 9=AUTHENTICATED, 10=NO_STLT_CONN",
        |f| {
            for n in cluster.nodes.values() {
                let status = observed.status(&n.name);
                *by_state.entry(status.to_string()).or_default() += 1.0;
                let mut labels: Labels = vec![
                    ("node", n.name.to_string()),
                    ("nodetype", n.node_type.to_string()),
                ];
                if let Some(nif) = n.net_interfaces.iter().find(|i| i.is_active) {
                    labels.push(("address", nif.address.clone()));
                    if let Some(port) = nif.satellite_port {
                        labels.push(("port", port.to_string()));
                    }
                    if let Some(enc) = nif.encryption {
                        labels.push(("encryption", enc.to_string()));
                    }
                }
                set(f, labels, status_number(status));
            }
        },
    );
    s.gauge("nodes", "Nodes by connection status", |f| {
        for (state, n) in by_state {
            set(f, vec![("state", state)], n);
        }
    });
}

fn resources(core: &AppState, s: &mut Scrape) {
    let cluster = core.cluster();
    let observed = core.observed();
    s.gauge("resource_definition_count", "Resource definitions", |f| {
        set(f, vec![], cluster.rsc_dfns.len() as f64)
    });
    s.gauge(
        "resource_definition_resource_count",
        "Resources of each resource definition",
        |f| {
            for rd in cluster.rsc_dfns.values() {
                let labels = vec![
                    ("name", rd.name.to_string()),
                    ("resource_group", rd.resource_group.to_string()),
                ];
                set(f, labels, cluster.resources_of(&rd.name).count() as f64);
            }
        },
    );
    s.gauge_unit(
        "volume_definition_size",
        "Size of each volume definition",
        Unit::Bytes,
        |f| {
            for rd in cluster.rsc_dfns.values() {
                for (nr, vd) in rd.volume_definitions.iter() {
                    let labels = vec![
                        ("name", rd.name.to_string()),
                        ("volume_number", nr.to_string()),
                        ("resource_group", rd.resource_group.to_string()),
                    ];
                    set(f, labels, (vd.size_kib * 1024) as f64);
                }
            }
        },
    );
    let in_use = Gauges::default();
    let by_state = Gauges::default();
    let volume_state = Gauges::default();
    let allocated = Gauges::default();
    let mut counts: BTreeMap<&str, f64> = [("InUse", 0.0), ("Unused", 0.0), ("Unknown", 0.0)]
        .into_iter()
        .collect();
    for rd in cluster.rsc_dfns.values() {
        for r in cluster.resources_of(&rd.name) {
            let (state, seen) = observed.joined(r);
            let view = convert::resource_with_volumes(r, rd, state, seen, &|pool| {
                cluster.stor_pool(&r.node, pool).map(|sp| sp.kind)
            });
            let used = view.resource.state.as_ref().and_then(|s| s.in_use);
            let (value, name) = match used {
                Some(true) => (1.0, "InUse"),
                Some(false) => (0.0, "Unused"),
                None => (-1.0, "Unknown"),
            };
            *counts.entry(name).or_default() += 1.0;
            let labels = vec![("name", r.name.to_string()), ("node", r.node.to_string())];
            set(&in_use, labels, value);
            for v in &view.volumes {
                let labels = vec![
                    ("resource", r.name.to_string()),
                    ("node", r.node.to_string()),
                    ("volume", v.volume_number.to_string()),
                    ("device_path", v.device_path.clone().unwrap_or_default()),
                    (
                        "storage_pool",
                        v.storage_pool_name
                            .clone()
                            .unwrap_or_else(|| "_unknown".into()),
                    ),
                ];
                let disk = v.state.as_ref().and_then(|s| s.disk_state.as_deref());
                set(&volume_state, labels.clone(), disk_state_number(disk));
                let bytes = v.allocated_size_kib.map_or(f64::NAN, |k| (k * 1024) as f64);
                set(&allocated, labels, bytes);
            }
        }
    }
    for (name, n) in counts {
        set(&by_state, vec![("state", name.to_string())], n);
    }
    s.registry.register(
        "resource_state",
        "Whether each resource is in use (DRBD Primary): -1=unknown, 0=secondary, 1=primary",
        in_use,
    );
    s.registry.register(
        "resources",
        "Resources by state: InUse, Unused, Unknown (node offline or not reporting)",
        by_state,
    );
    s.registry.register(
        "volume_state",
        "Disk state of each volume: 1=UpToDate, 2=Created, 3=Attached, 4=Diskless, \
         5=Inconsistent, 6=Failed, 7=To: Creating, 8=To: Attachable, 9=To: Attaching, \
         90=Diskless(Detached), -1=DUnknown",
        volume_state,
    );
    s.registry.register_with_unit(
        "volume_allocated_size",
        "Space each volume takes in its pool",
        Unit::Bytes,
        allocated,
    );
}

/// What DRBD reports on the online nodes: volumes by disk state, peer volumes by replication
/// state, and the data out of sync towards each peer.
fn drbd(core: &AppState, s: &mut Scrape) {
    let observed = core.observed();
    let mut disks: BTreeMap<String, f64> = BTreeMap::new();
    let mut replication: BTreeMap<String, f64> = BTreeMap::new();
    let out_of_sync = Gauges::default();
    for (node, n) in &observed.nodes {
        if n.status != Some(ConnectionStatus::Online) {
            continue;
        }
        let Some(report) = n.drbd.as_ref() else {
            continue;
        };
        for rsc in &report.resources {
            for (nr, v) in &rsc.volumes {
                let disk = v
                    .disk_state
                    .as_ref()
                    .map_or("Unknown".to_string(), |d| d.to_string());
                *disks.entry(disk).or_default() += 1.0;
                for (peer, p) in &v.peers {
                    *replication.entry(p.replication.to_string()).or_default() += 1.0;
                    if let Some(kib) = p.out_of_sync_kib {
                        let labels = vec![
                            ("resource", rsc.name.clone()),
                            ("node", node.to_string()),
                            ("volume", nr.to_string()),
                            ("peer", peer.clone()),
                        ];
                        set(&out_of_sync, labels, (kib * 1024) as f64);
                    }
                }
            }
        }
    }
    s.gauge(
        "drbd_volumes",
        "Local DRBD volumes on the online nodes, by disk state",
        |f| {
            for (state, n) in disks {
                set(f, vec![("disk_state", state)], n);
            }
        },
    );
    s.gauge(
        "drbd_peer_volumes",
        "DRBD volumes as replicated to each peer, by replication state",
        |f| {
            for (state, n) in replication {
                set(f, vec![("replication_state", state)], n);
            }
        },
    );
    s.registry.register_with_unit(
        "volume_out_of_sync",
        "Data of each DRBD volume not yet in sync with each peer",
        Unit::Bytes,
        out_of_sync,
    );
}

fn pools(core: &AppState, s: &mut Scrape) {
    let pools: Vec<_> = {
        let cluster = core.cluster();
        cluster
            .stor_pools
            .values()
            .flat_map(|p| p.values())
            .cloned()
            .collect()
    };
    let views: Vec<_> = pools
        .iter()
        .map(|sp| super::nodes::pool_view(core, sp))
        .collect();
    let labels = |v: &strata_api::types::StoragePool| -> Labels {
        let backing = v
            .props
            .iter()
            .find(|(k, _)| k.starts_with("StorDriver/") && !k.ends_with("Internal"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        vec![
            ("storage_pool", v.storage_pool_name.clone()),
            ("node", v.node_name.clone().unwrap_or_default()),
            ("driver", v.provider_kind.clone()),
            ("backing_pool", backing),
        ]
    };
    let bytes = |v: &strata_api::types::StoragePool, kib: Option<i64>| -> f64 {
        if v.provider_kind == "DISKLESS" {
            0.0
        } else {
            kib.map_or(f64::NAN, |k| (k * 1024) as f64)
        }
    };
    type Field = fn(&strata_api::types::StoragePool) -> Option<i64>;
    let capacities: [(&str, &str, Field); 2] = [
        (
            "storage_pool_capacity_free",
            "Free space of each storage pool",
            |v| v.free_capacity,
        ),
        (
            "storage_pool_capacity_total",
            "Capacity of each storage pool",
            |v| v.total_capacity,
        ),
    ];
    for (name, help, field) in capacities {
        s.gauge_unit(name, help, Unit::Bytes, |f| {
            for v in &views {
                set(f, labels(v), bytes(v, field(v)));
            }
        });
    }
    s.gauge(
        "storage_pool_error_count",
        "Errors each storage pool reports",
        |f| {
            for v in &views {
                let errors = v.reports.iter().filter(|r| r.is_error()).count();
                set(f, labels(v), errors as f64);
            }
        },
    );
}

fn reports(core: &AppState, s: &mut Scrape) {
    let counts = core.reports.counts();
    s.gauge(
        "error_reports_count",
        "Error reports kept, in all and by node and module",
        |f| {
            set(f, vec![], counts.values().sum::<u64>() as f64);
            for ((node, module), n) in counts {
                set(f, vec![("hostname", node), ("module", module)], n as f64);
            }
        },
    );
}
