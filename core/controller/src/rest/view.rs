//! The `/v1/view/*` overviews, answered from memory.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use strata_api::convert;
use strata_api::types::ResourceWithVolumes;
use strata_model::objects::{Resource, ResourceDefinition};
use strata_model::props::matches_filter;

use super::nodes::pool_view;
use axum::http::StatusCode;

use super::{json_bytes, ok, wanted, AppState, Query};

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
    // Each resource is serialised straight into the answer, so a listing of every resource
    // holds one wire object at a time, not all of them.
    // About 1.5 KiB of JSON per resource: sized once instead of doubling through copies.
    let expect = if rscs.is_empty() {
        cluster.rsc_dfns.len() * 3
    } else {
        rscs.len() * 3
    };
    let mut out: Vec<u8> =
        Vec::with_capacity(4096 + expect.min(limit.unwrap_or(usize::MAX)) * 1536);
    out.push(b'[');
    let mut seen = 0usize;
    let mut written = 0usize;
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
            if limit.is_some_and(|l| written >= l) {
                break 'all;
            }
            let online = observed.status(&r.node) == strata_model::ConnectionStatus::Online;
            let state = if online {
                observed.resource(&r.node, r.name.as_str())
            } else {
                None
            };
            let seen = drbd_seen(&observed, r, online);
            let view = convert::resource_with_volumes(r, rd, state, seen, &|pool| {
                cluster.stor_pool(&r.node, pool).map(|sp| sp.kind)
            });
            if written > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, &view).expect("views always serialize");
            written += 1;
        }
    }
    out.push(b']');
    json_bytes(StatusCode::OK, out)
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
