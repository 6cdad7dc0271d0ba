//! The autoplacer: picks nodes and storage pools for new replicas.
//!
//! Candidates are the storage pools of online nodes that pass every filter; each node offers
//! its best pool (the one with the most space left after placement, LINSTOR's default
//! `MaxFreeSpace` strategy). A bounded depth-first search in score order then picks replicas
//! that satisfy the same / different / at-most-x-per-value rules, so the first complete
//! placement found is also the one with the most free space.

use std::collections::BTreeMap;

use regex::Regex;

use super::Observed;
use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::{LayerKind, ProviderKind};
use crate::name::{NodeName, ResourceName, StorPoolName};
use crate::objects::{flag, Resource, SelectFilter, StorPool};

/// Default `MaxOversubscriptionRatio` for thin pools.
pub const DEFAULT_OVERSUBSCRIPTION: f64 = 20.0;

#[derive(Debug)]
pub struct PlacementRequest<'a> {
    pub rsc: &'a ResourceName,
    /// The effective filter (request over resource group).
    pub filter: &'a SelectFilter,
    /// How many new diskful replicas to place.
    pub count: usize,
    /// Space every replica needs in its pool: the sum of the volume sizes, in KiB.
    pub size_kib: u64,
    /// The resources the definition already has (not being deleted).
    pub existing: &'a [&'a Resource],
    /// Layers every chosen node must support (beyond the storage provider).
    pub layers: &'a [LayerKind],
    /// The DRBD port the definition asked for, which every chosen node must have free.
    pub drbd_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: NodeName,
    pub pool: StorPoolName,
}

struct Candidate<'a> {
    node: &'a NodeName,
    pool: &'a StorPool,
    score: f64,
    /// Resources the node already holds: among nodes with about the same room, the one
    /// with fewer goes first, so that equal nodes share the load.
    load: usize,
}

/// Scores within this share of the best one count as equal, and the less loaded node wins.
const TIE_SHARE: f64 = 0.05;

/// Normalises a `replicas_on_*` entry: bare keys live in the `Aux/` namespace, and
/// `key=value` pins the value.
fn parse_rule(entry: &str) -> (String, Option<String>) {
    let (key, value) = match entry.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
        None => (entry.trim(), None),
    };
    let key = if key.contains('/') {
        key.to_string()
    } else {
        format!("Aux/{key}")
    };
    (key, value)
}

/// How much a pool can still take for one more volume of `size_kib`, or why it cannot.
pub fn pool_room(
    cluster: &Cluster,
    observed: &dyn Observed,
    pool: &StorPool,
    size_kib: u64,
    overprovision: Option<f64>,
) -> Result<f64, String> {
    let Some(state) = observed.pool_state(&pool.node, &pool.name) else {
        return Err(format!(
            "pool '{}' has not reported its capacity yet",
            pool.name
        ));
    };
    if let Some(e) = state.errors.first() {
        return Err(format!("pool '{}' reports an error: {e}", pool.name));
    }
    // A thick pool's report lags behind placements just made: their space is taken already.
    // Thin pools allocate as data is written, so a new volume takes nothing yet.
    let promised = if pool.kind.is_thin() {
        0
    } else {
        observed.promised_kib(&pool.node, &pool.name)
    };
    let free = state.free_capacity_kib.saturating_sub(promised) as f64;
    if pool.kind.is_thin() {
        let ratio = overprovision
            .or_else(|| {
                pool.props
                    .get("MaxOversubscriptionRatio")
                    .or_else(|| {
                        cluster
                            .stor_pool_dfns
                            .get(&pool.name)
                            .and_then(|d| d.props.get("MaxOversubscriptionRatio"))
                    })
                    .or_else(|| cluster.ctrl_props.get("MaxOversubscriptionRatio"))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(DEFAULT_OVERSUBSCRIPTION);
        let room = free * ratio;
        if room < size_kib as f64 {
            return Err(format!(
                "thin pool '{}' has {} KiB free (x{ratio} oversubscription), {size_kib} KiB needed",
                pool.name, state.free_capacity_kib
            ));
        }
        Ok(room - size_kib as f64)
    } else {
        if free < size_kib as f64 {
            return Err(format!(
                "pool '{}' has {} KiB free{}, {size_kib} KiB needed",
                pool.name,
                free as u64,
                if promised > 0 {
                    format!(" ({promised} KiB of it promised to volumes being created)")
                } else {
                    String::new()
                }
            ));
        }
        Ok(free - size_kib as f64)
    }
}

pub fn autoplace(
    cluster: &Cluster,
    observed: &dyn Observed,
    req: &PlacementRequest<'_>,
) -> Result<Vec<Placement>, ApiError> {
    let filter = req.filter;
    if req.count == 0 {
        return Ok(Vec::new());
    }
    let not_with_regex = match &filter.not_place_with_rsc_regex {
        Some(re) if !re.is_empty() => Some(Regex::new(re).map_err(|e| {
            ApiError::new(
                code::FAIL_INVLD_REQUEST,
                ObjKind::Rsc,
                format!("Invalid regular expression '{re}'"),
            )
            .cause(e.to_string())
        })?),
        _ => None,
    };
    let node_list: Vec<String> = filter
        .node_name_list
        .iter()
        .map(|n| n.to_ascii_uppercase())
        .collect();
    let pool_list: Vec<String> = filter
        .storage_pool_list
        .iter()
        .map(|n| n.to_ascii_uppercase())
        .collect();
    let has_rsc = |node: &NodeName| req.existing.iter().any(|r| &r.node == node);

    let uses_drbd = req.layers.contains(&LayerKind::Drbd);
    // DRBD 8.4 and 9 nodes do not share a resource: every replica runs the DRBD major of
    // the existing ones, or of the first one chosen.
    let drbd_major = |node: &NodeName| -> Option<u32> {
        uses_drbd
            .then(|| super::drbd84::version(observed, node).map(|(m, _)| m))
            .flatten()
    };
    let existing_major = req.existing.iter().find_map(|r| drbd_major(&r.node));
    let mut rejected: BTreeMap<String, String> = BTreeMap::new();
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    for (name, node) in &cluster.nodes {
        let reject = |why: String, rejected: &mut BTreeMap<String, String>| {
            rejected.insert(name.to_string(), why);
        };
        if !node_list.is_empty() && !node_list.contains(&name.key().to_string()) {
            continue;
        }
        if !node.node_type.hosts_storage() {
            continue;
        }
        if has_rsc(name) {
            continue;
        }
        if node.flags.contains(flag::EVICTED) || node.flags.contains(flag::DELETE) {
            reject("node is evicted or being deleted".into(), &mut rejected);
            continue;
        }
        if node
            .props
            .get("AutoplaceTarget")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        {
            reject("node has AutoplaceTarget=false".into(), &mut rejected);
            continue;
        }
        if !observed.is_online(name) {
            reject("node is offline".into(), &mut rejected);
            continue;
        }
        let avoid = !filter.not_place_with_rsc.is_empty() || not_with_regex.is_some();
        let blocked = avoid
            .then(|| {
                cluster.resources_on(name).find(|r| {
                    filter
                        .not_place_with_rsc
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(r.name.as_str()))
                        || not_with_regex
                            .as_ref()
                            .is_some_and(|re| re.is_match(r.name.as_str()))
                })
            })
            .flatten();
        if let Some(r) = blocked {
            reject(
                format!("node has resource '{}' it must not share", r.name),
                &mut rejected,
            );
            continue;
        }
        if let Some(missing) = req.layers.iter().find(|l| {
            **l != LayerKind::Storage
                && !observed
                    .capabilities(name)
                    .is_some_and(|c| c.supports_layer(**l))
        }) {
            let reason = observed
                .capabilities(name)
                .map(|c| c.layer_reason(*missing))
                .unwrap_or_default();
            reject(
                format!("node does not support {missing}: {reason}"),
                &mut rejected,
            );
            continue;
        }
        let drbd8 = uses_drbd
            .then(|| super::drbd84::drbd8_version(observed, name))
            .flatten();
        if let Some(version) =
            drbd8.filter(|_| req.existing.len() + req.count > super::drbd84::MAX_NODES)
        {
            reject(
                format!("node runs DRBD {version}, which replicates between two nodes only"),
                &mut rejected,
            );
            continue;
        }
        let mut best: Option<Candidate<'_>> = None;
        let mut pool_reasons = Vec::new();
        for pool in cluster.pools_on(name) {
            if pool.kind == ProviderKind::Diskless {
                continue;
            }
            if !pool_list.is_empty() && !pool_list.contains(&pool.name.key().to_string()) {
                continue;
            }
            if !filter.provider_list.is_empty() && !filter.provider_list.contains(&pool.kind) {
                continue;
            }
            match pool_room(cluster, observed, pool, req.size_kib, filter.overprovision) {
                Ok(room) => {
                    if best.as_ref().is_none_or(|b| room > b.score) {
                        best = Some(Candidate {
                            node: name,
                            pool,
                            score: room,
                            load: cluster.resource_count_on(name),
                        });
                    }
                }
                Err(why) => pool_reasons.push(why),
            }
        }
        match best {
            Some(c) => candidates.push(c),
            None if pool_reasons.is_empty() => {
                reject("no matching storage pool".into(), &mut rejected)
            }
            None => reject(pool_reasons.join("; "), &mut rejected),
        }
    }
    // Most room first, where "about the same room" (same band of TIE_SHARE of the best)
    // goes to the node with fewer resources: identical nodes, thin pools and reports that
    // lag behind placements would otherwise send every replica to the same few nodes.
    let best_score = candidates.iter().map(|c| c.score).fold(0.0, f64::max);
    let band_width = (best_score * TIE_SHARE).max(1.0);
    let band = |c: &Candidate<'_>| (c.score / band_width).floor() as i64;
    candidates.sort_by(|a, b| {
        band(b)
            .cmp(&band(a))
            .then_with(|| a.load.cmp(&b.load))
            .then_with(|| {
                b.score
                    .partial_cmp(&a.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then_with(|| a.node.cmp(b.node))
    });
    // A node that cannot give the resource a DRBD port is no candidate; asked lazily, in
    // the order the search looks at candidates.
    let port_ok: Vec<std::cell::OnceCell<bool>> = candidates
        .iter()
        .map(|_| std::cell::OnceCell::new())
        .collect();
    let has_port = |i: usize| -> bool {
        !uses_drbd
            || *port_ok[i].get_or_init(|| {
                super::drbd::node_has_port(cluster, candidates[i].node, req.drbd_port)
            })
    };

    let same: Vec<(String, Option<String>)> = filter
        .replicas_on_same
        .iter()
        .map(|e| parse_rule(e))
        .collect();
    let different: Vec<String> = filter
        .replicas_on_different
        .iter()
        .map(|e| parse_rule(e).0)
        .collect();
    let at_most: Vec<(String, u32)> = filter
        .x_replicas_on_different_map
        .iter()
        .map(|(k, v)| (parse_rule(k).0, *v))
        .collect();

    let prop_of = |node: &NodeName, key: &str| -> Option<String> {
        cluster
            .nodes
            .get(node)
            .and_then(|n| n.props.get(key).cloned())
    };
    let diskful_existing: Vec<&NodeName> = req
        .existing
        .iter()
        .filter(|r| !r.is_diskless())
        .map(|r| &r.node)
        .collect();

    // Values pinned by `key=value`, or by replicas that already exist.
    let mut pinned: Vec<(String, Option<String>)> = Vec::new();
    for (key, value) in &same {
        let from_existing = diskful_existing.first().map(|n| prop_of(n, key));
        let v = match (value, from_existing) {
            (Some(v), _) => Some(Some(v.clone())),
            (None, Some(existing)) => Some(existing),
            (None, None) => None,
        };
        if let Some(v) = v {
            pinned.push((key.clone(), v));
        }
    }
    let free_same: Vec<&String> = same
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !pinned.iter().any(|(pk, _)| pk == *k))
        .collect();

    let fits = |chosen: &[usize], cand: usize| -> bool {
        if !has_port(cand) {
            return false;
        }
        let node = candidates[cand].node;
        let major = drbd_major(node);
        let first_major = chosen.first().and_then(|c| drbd_major(candidates[*c].node));
        if existing_major
            .or(first_major)
            .is_some_and(|m| Some(m) != major)
        {
            return false;
        }
        for (key, value) in &pinned {
            if &prop_of(node, key) != value {
                return false;
            }
        }
        if let Some(first) = chosen.first() {
            for key in &free_same {
                if prop_of(node, key) != prop_of(candidates[*first].node, key) {
                    return false;
                }
            }
        }
        for key in &different {
            let v = prop_of(node, key);
            let clash = diskful_existing.iter().any(|n| prop_of(n, key) == v)
                || chosen
                    .iter()
                    .any(|c| prop_of(candidates[*c].node, key) == v);
            if clash {
                return false;
            }
        }
        for (key, max) in &at_most {
            let v = prop_of(node, key);
            let used = diskful_existing
                .iter()
                .filter(|n| prop_of(n, key) == v)
                .count()
                + chosen
                    .iter()
                    .filter(|c| prop_of(candidates[**c].node, key) == v)
                    .count();
            if used as u32 >= *max {
                return false;
            }
        }
        true
    };

    let mut budget = 20_000usize;
    let mut chosen: Vec<usize> = Vec::new();
    fn search(
        start: usize,
        chosen: &mut Vec<usize>,
        count: usize,
        total: usize,
        budget: &mut usize,
        fits: &dyn Fn(&[usize], usize) -> bool,
    ) -> bool {
        if chosen.len() == count {
            return true;
        }
        for i in start..total {
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            if total - i < count - chosen.len() {
                return false;
            }
            if fits(chosen, i) {
                chosen.push(i);
                if search(i + 1, chosen, count, total, budget, fits) {
                    return true;
                }
                chosen.pop();
            }
        }
        false
    }
    let found = search(
        0,
        &mut chosen,
        req.count,
        candidates.len(),
        &mut budget,
        &fits,
    );
    if !found {
        let no_port: Vec<usize> = (0..candidates.len()).filter(|i| !has_port(*i)).collect();
        for i in &no_port {
            let node = candidates[*i].node;
            let why = match req.drbd_port {
                Some(p) => format!("DRBD port {p} of the definition is in use there"),
                None => {
                    let (lo, hi) = super::drbd::port_range(cluster, node);
                    format!("no free DRBD port from {lo} to {hi}")
                }
            };
            rejected.insert(node.to_string(), why);
        }
        let candidates: Vec<&Candidate<'_>> = candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| !no_port.contains(i))
            .map(|(_, c)| c)
            .collect();
        let mut details: Vec<String> = rejected
            .iter()
            .map(|(n, why)| format!("node '{n}': {why}"))
            .collect();
        if !candidates.is_empty() {
            details.push(format!(
                "usable nodes: {}",
                candidates
                    .iter()
                    .map(|c| format!("{} ({})", c.node, c.pool.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let rules = !(same.is_empty() && different.is_empty() && at_most.is_empty());
        return Err(ApiError::new(
            code::FAIL_NOT_ENOUGH_NODES,
            ObjKind::Rsc,
            format!(
                "Not enough available nodes to place resource '{}': {} replica(s) needed, {} node(s) qualify{}",
                req.rsc,
                req.count,
                candidates.len(),
                if rules { " under the placement rules" } else { "" }
            ),
        )
        .details(details.join("\n"))
        .correction(
            "Add storage pools with enough free space on more nodes, bring offline nodes back, or relax the placement filter (place count, storage pool, node list)",
        ));
    }
    Ok(chosen
        .into_iter()
        .map(|i| Placement {
            node: candidates[i].node.clone(),
            pool: candidates[i].pool.name.clone(),
        })
        .collect())
}
