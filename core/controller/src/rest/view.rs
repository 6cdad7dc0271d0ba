//! The `/v1/view/*` overviews, answered from memory.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use futures_util::StreamExt;
use strata_api::convert;
use strata_api::types::ResourceWithVolumes;
use strata_model::objects::{Resource, ResourceDefinition};
use strata_model::props::matches_filter;
use strata_model::Cluster;

use super::nodes::pool_view;
use axum::http::StatusCode;

use super::{json_body, ok, wanted, AppState, Query};

/// One resource joined with its node's report.
pub fn resource_view(
    core: &AppState,
    r: &Resource,
    rd: &ResourceDefinition,
) -> ResourceWithVolumes {
    let cluster = core.cluster();
    let observed = core.observed();
    let (state, seen) = observed.joined(r);
    convert::resource_with_volumes(r, rd, state, seen, &|pool| {
        cluster.stor_pool(&r.node, pool).map(|sp| sp.kind)
    })
}

pub async fn resources(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let given = q.names("resources");
    let (offset, limit) = q.window();
    let mut lister = Lister {
        core: core.clone(),
        names: if given.is_empty() {
            Names::All { after: None }
        } else {
            Names::Given {
                names: given
                    .iter()
                    .filter_map(|n| strata_model::ResourceName::new(n).ok())
                    .collect(),
                pos: 0,
            }
        },
        nodes: q.names("nodes"),
        pools: q.names("storage_pools"),
        props: q.values("props"),
        skip: offset,
        left: limit,
        any: false,
        done: false,
    };
    // A small listing is answered at once; a large one goes out in parts while the next
    // parts are serialised, so the answer never sits whole in memory and the locks are
    // held for one part at a time, not for the whole listing.
    let first = lister.next_part();
    if lister.done {
        return json_body(StatusCode::OK, axum::body::Body::from(first));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(PARTS_AHEAD);
    tokio::task::spawn_blocking(move || {
        while !lister.done {
            let part = lister.next_part();
            // The client went away: stop serialising.
            if tx.blocking_send(part).is_err() {
                break;
            }
        }
    });
    let rest =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|p| (p, rx)) });
    let parts = futures_util::stream::once(async move { first })
        .chain(rest)
        .map(|p| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(p)));
    json_body(StatusCode::OK, axum::body::Body::from_stream(parts))
}

/// How many serialised parts of a listing may wait for the socket.
const PARTS_AHEAD: usize = 4;

/// A part of a listing is cut after the definition that brings it to this size (small in
/// debug builds, so that the tests' listings come in many parts).
const PART_BYTES: usize = if cfg!(debug_assertions) {
    8 * 1024
} else {
    256 * 1024
};

/// Which definitions a listing visits.
enum Names {
    /// Every definition, in name order, after the last one already listed.
    All {
        after: Option<strata_model::ResourceName>,
    },
    /// Those the request named, in its order; only these are looked up, so a filtered
    /// listing stays a lookup however many resources exist.
    Given {
        names: Vec<strata_model::ResourceName>,
        pos: usize,
    },
}

/// A `/v1/view/resources` listing under way: where it stands and what it keeps.
struct Lister {
    core: AppState,
    names: Names,
    nodes: Vec<String>,
    pools: Vec<String>,
    props: Vec<String>,
    /// Matching resources still to skip (`offset`), and still to list (`limit`).
    skip: usize,
    left: Option<usize>,
    /// Whether a resource was written yet (for the commas).
    any: bool,
    done: bool,
}

impl Lister {
    /// Serialises the next part: whole definitions' resources until the part reaches
    /// [`PART_BYTES`], each joined with its node's report under one hold of the locks.
    /// The first part opens the JSON array and the last one closes it.
    fn next_part(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PART_BYTES + PART_BYTES / 4);
        let cluster = self.core.cluster();
        let observed = self.core.observed();
        // The definitions from where the last part stopped, and how many of them this part
        // took (one walk of the map per part, not one search per definition).
        let defs: Box<dyn Iterator<Item = Option<&ResourceDefinition>> + '_> = match &self.names {
            Names::All { after: None } => Box::new(cluster.rsc_dfns.values().map(Some)),
            Names::All { after: Some(a) } => Box::new(
                cluster
                    .rsc_dfns
                    .range::<strata_model::ResourceName, _>((
                        std::ops::Bound::Excluded(a),
                        std::ops::Bound::Unbounded,
                    ))
                    .map(|(_, rd)| Some(rd)),
            ),
            // An unknown name is skipped (`None`) but counts as visited.
            Names::Given { names, pos } => {
                Box::new(names[*pos..].iter().map(|n| cluster.rsc_dfns.get(n)))
            }
        };
        let mut taken = 0;
        let mut last = None;
        let mut full = false;
        for rd in defs {
            if out.len() >= PART_BYTES {
                full = true;
                break;
            }
            if self.left == Some(0) {
                break;
            }
            taken += 1;
            let Some(rd) = rd else { continue };
            last = Some(rd);
            for r in cluster.resources_of(&rd.name) {
                if !self.wants(r) {
                    continue;
                }
                if self.skip > 0 {
                    self.skip -= 1;
                    continue;
                }
                if self.left == Some(0) {
                    break;
                }
                if let Some(l) = &mut self.left {
                    *l -= 1;
                }
                out.push(if self.any { b',' } else { b'[' });
                self.any = true;
                write_resource(&mut out, &cluster, &observed, rd, r);
            }
        }
        match &mut self.names {
            Names::Given { pos, .. } => *pos += taken,
            Names::All { after } => {
                if let Some(rd) = last {
                    *after = Some(rd.name.clone());
                }
            }
        }
        if full {
            return out;
        }
        if !self.any {
            out.push(b'[');
        }
        out.push(b']');
        self.done = true;
        out
    }

    /// Whether `r` passes the listing's node, storage pool and property filters.
    fn wants(&self, r: &Resource) -> bool {
        wanted(&self.nodes, r.node.key())
            && matches_filter(&r.props, &self.props)
            && (self.pools.is_empty()
                || r.volumes
                    .values()
                    .any(|v| wanted(&self.pools, v.storage_pool.key())))
    }
}

/// Writes `r` joined with its node's report, as the JSON object of a listing.
fn write_resource(
    out: &mut Vec<u8>,
    cluster: &Cluster,
    observed: &crate::observed::ObservedState,
    rd: &ResourceDefinition,
    r: &Resource,
) {
    let (state, seen) = observed.joined(r);
    let pools = cluster.stor_pools.get(&r.node);
    strata_api::view::write_resource(out, r, rd, state, seen, &|pool| {
        pools.and_then(|p| p.get(pool)).map(|sp| sp.kind)
    });
}

pub async fn storage_pools(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let nodes = q.names("nodes");
    let pools = q.names("storage_pools");
    let props = q.values("props");
    let list: Vec<_> = {
        let cluster = core.cluster();
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
