//! The `/v1/view/*` overviews, answered from memory.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use strata_api::convert;
use strata_api::types::ResourceWithVolumes;
use strata_model::objects::{Resource, ResourceDefinition};
use strata_model::props::matches_filter;
use strata_model::Cluster;

use super::nodes::pool_view;
use axum::http::StatusCode;

use super::{json_body, ok, wanted, AppState, Query};

/// What is known of `r`'s DRBD state on its node.
fn drbd_seen<'a>(
    observed: &'a crate::observed::ObservedState,
    r: &Resource,
    online: bool,
) -> convert::DrbdSeen<'a> {
    if !online {
        return convert::DrbdSeen::NotWatched;
    }
    match observed.nodes.get(&r.node) {
        Some(n) if n.drbd.is_some() => match n.drbd(r.name.as_str()) {
            Some(d) => convert::DrbdSeen::Seen(d),
            None => convert::DrbdSeen::Missing,
        },
        _ => convert::DrbdSeen::NotWatched,
    }
}

/// One resource joined with its node's report.
pub fn resource_view(
    core: &AppState,
    r: &Resource,
    rd: &ResourceDefinition,
) -> ResourceWithVolumes {
    let cluster = core.cluster.read().unwrap_or_else(|e| e.into_inner());
    let observed = core.observed.read().unwrap_or_else(|e| e.into_inner());
    let online = observed.status(&r.node) == strata_model::ConnectionStatus::Online;
    let state = if online {
        observed.resource(&r.node, r.name.as_str())
    } else {
        None
    };
    convert::resource_with_volumes(r, rd, state, drbd_seen(&observed, r, online), &|pool| {
        cluster.stor_pool(&r.node, pool).map(|sp| sp.kind)
    })
}

pub async fn resources(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let nodes = q.names("nodes");
    let rscs = q.names("resources");
    let pools = q.names("storage_pools");
    let props = q.values("props");
    let cluster = core.cluster.read().unwrap_or_else(|e| e.into_inner());
    let observed = core.observed.read().unwrap_or_else(|e| e.into_inner());
    let (offset, limit) = q.window();
    let expect = if rscs.is_empty() {
        cluster.rsc_dfns.len() * 3
    } else {
        rscs.len() * 3
    };
    let mut seen = 0usize;
    // With a resource filter only those definitions are visited, so a filtered list stays a
    // lookup however many resources exist.
    let names: Vec<&ResourceDefinition> = if rscs.is_empty() {
        cluster.rsc_dfns.values().collect()
    } else {
        rscs.iter()
            .filter_map(|n| strata_model::ResourceName::new(n).ok())
            .filter_map(|n| cluster.rsc_dfns.get(&n))
            .collect()
    };
    let mut items: Vec<(&ResourceDefinition, &Resource)> =
        Vec::with_capacity(expect.min(limit.unwrap_or(usize::MAX)));
    'all: for rd in names {
        for r in cluster.resources_of(&rd.name) {
            if !wanted(&nodes, r.node.key()) || !matches_filter(&r.props, &props) {
                continue;
            }
            if !pools.is_empty()
                && !r
                    .volumes
                    .values()
                    .any(|v| wanted(&pools, v.storage_pool.key()))
            {
                continue;
            }
            seen += 1;
            if seen <= offset {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                break 'all;
            }
            items.push((rd, r));
        }
    }
    // Each resource is serialised straight into the answer (a listing of every resource holds
    // one wire object at a time, not all of them); a large listing is cut in parts that the
    // cores serialise side by side.
    let (cl, obs): (&Cluster, &crate::observed::ObservedState) = (&cluster, &observed);
    let parts: Vec<Vec<u8>> = if items.len() < PARALLEL_FROM {
        vec![serialize_part(cl, obs, &items)]
    } else {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let per = items.len().div_ceil(threads);
        tokio::task::block_in_place(|| {
            std::thread::scope(|s| {
                let handles: Vec<_> = items
                    .chunks(per)
                    .map(|chunk| s.spawn(move || serialize_part(cl, obs, chunk)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("serialising a listing does not panic"))
                    .collect()
            })
        })
    };
    drop(observed);
    drop(cluster);
    // The parts go out as they are, between the brackets: no copy of the whole listing.
    let mut chunks: Vec<axum::body::Bytes> = Vec::with_capacity(parts.len() * 2 + 1);
    chunks.push(axum::body::Bytes::from_static(b"["));
    for (i, p) in parts.into_iter().filter(|p| !p.is_empty()).enumerate() {
        if i > 0 {
            chunks.push(axum::body::Bytes::from_static(b","));
        }
        chunks.push(p.into());
    }
    chunks.push(axum::body::Bytes::from_static(b"]"));
    let body = axum::body::Body::from_stream(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
    ));
    json_body(StatusCode::OK, body)
}

/// Listings from this many resources on are serialised on several cores.
const PARALLEL_FROM: usize = 2000;

/// The resources of `items`, joined with their nodes' reports, as comma-separated JSON.
fn serialize_part(
    cluster: &Cluster,
    observed: &crate::observed::ObservedState,
    items: &[(&ResourceDefinition, &Resource)],
) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (rd, r)) in items.iter().enumerate() {
        let online = observed.status(&r.node) == strata_model::ConnectionStatus::Online;
        let state = if online {
            observed.resource(&r.node, r.name.as_str())
        } else {
            None
        };
        let seen = drbd_seen(observed, r, online);
        let view = convert::resource_with_volumes(r, rd, state, seen, &|pool| {
            cluster.stor_pool(&r.node, pool).map(|sp| sp.kind)
        });
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &view).expect("views always serialize");
        if i == 0 {
            // Sized once from the first resource (with room for longer names), instead of
            // doubling through copies of a buffer of many MiB.
            out.reserve((out.len() + out.len() / 8 + 16) * items.len());
        }
    }
    out
}

pub async fn storage_pools(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let nodes = q.names("nodes");
    let pools = q.names("storage_pools");
    let props = q.values("props");
    let list: Vec<_> = {
        let cluster = core.cluster.read().unwrap_or_else(|e| e.into_inner());
        cluster
            .stor_pools
            .iter()
            .filter(|(n, _)| wanted(&nodes, n.key()))
            .flat_map(|(_, p)| p.values())
            .filter(|sp| wanted(&pools, sp.name.key()) && matches_filter(&sp.props, &props))
            .cloned()
            .collect()
    };
    ok(&q.page(
        list.iter()
            .map(|sp| pool_view(&core, sp))
            .collect::<Vec<_>>(),
    ))
}
