//! The autoplacer: picks nodes and storage pools for new replicas.
//!
//! Candidates are the storage pools of online nodes that pass every filter; each node offers
//! its best pool (the one with the most space left after placement, LINSTOR's default
//! `MaxFreeSpace` strategy). A bounded depth-first search in score order then picks replicas
//! that satisfy the same / different / at-most-x-per-value rules, so the first complete
//! placement found is also the one with the most free space.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use regex::Regex;

use super::Observed;
use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::flags::Flag;
use crate::kinds::{LayerKind, ProviderKind};
use crate::name::{NodeName, ResourceName, StorPoolName};
use crate::objects::{Node, Resource, SelectFilter, StorPool};

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

/// Picks `req.count` nodes, each with its storage pool, for new diskful replicas, or says
/// why there are not enough.
pub fn autoplace(
    cluster: &Cluster,
    observed: &dyn Observed,
    req: &PlacementRequest<'_>,
) -> Result<Vec<Placement>, ApiError> {
    if req.count == 0 {
        return Ok(Vec::new());
    }
    let screen = Screen::new(cluster, observed, req)?;
    let (mut candidates, rejected) = screen.candidates();
    rank(&mut candidates);
    let rules = Rules::new(cluster, req);
    let search = Search::new(cluster, observed, req, &candidates, &rules);
    match search.run() {
        Some(chosen) => Ok(chosen
            .into_iter()
            .map(|i| Placement {
                node: candidates[i].node.clone(),
                pool: candidates[i].pool.name.clone(),
            })
            .collect()),
        None => Err(search.not_enough_nodes(rejected)),
    }
}

/// Whether the placed replicas use DRBD.
fn uses_drbd(req: &PlacementRequest<'_>) -> bool {
    req.layers.contains(&LayerKind::Drbd)
}

/// The DRBD major version `node` runs, when the replicas use DRBD.
fn drbd_major(observed: &dyn Observed, uses_drbd: bool, node: &NodeName) -> Option<u32> {
    uses_drbd
        .then(|| super::drbd84::version(observed, node).map(|(m, _)| m))
        .flatten()
}

/// A property of a node.
fn node_prop(cluster: &Cluster, node: &NodeName, key: &str) -> Option<String> {
    cluster
        .nodes
        .get(node)
        .and_then(|n| n.props.get(key).cloned())
}

/// The request's filter, ready to screen nodes and their pools.
struct Screen<'a> {
    cluster: &'a Cluster,
    observed: &'a dyn Observed,
    req: &'a PlacementRequest<'a>,
    not_with_regex: Option<Regex>,
    /// The node list, upper case.
    node_list: Vec<String>,
    /// The storage pool list, upper case.
    pool_list: Vec<String>,
}

impl<'a> Screen<'a> {
    fn new(
        cluster: &'a Cluster,
        observed: &'a dyn Observed,
        req: &'a PlacementRequest<'a>,
    ) -> Result<Self, ApiError> {
        let filter = req.filter;
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
        let upper = |list: &[String]| -> Vec<String> {
            list.iter().map(|n| n.to_ascii_uppercase()).collect()
        };
        Ok(Screen {
            cluster,
            observed,
            req,
            not_with_regex,
            node_list: upper(&filter.node_name_list),
            pool_list: upper(&filter.storage_pool_list),
        })
    }

    /// Every node's best pool that passes the filter, and why each node that was looked at
    /// failed (by node name).
    fn candidates(&self) -> (Vec<Candidate<'a>>, BTreeMap<String, String>) {
        let mut rejected: BTreeMap<String, String> = BTreeMap::new();
        let mut candidates: Vec<Candidate<'a>> = Vec::new();
        for (name, node) in &self.cluster.nodes {
            if !self.considers(name, node) {
                continue;
            }
            let found = match self.node_rejection(name, node) {
                Some(why) => Err(why),
                None => self.best_pool(name),
            };
            match found {
                Ok(c) => candidates.push(c),
                Err(why) => {
                    rejected.insert(name.to_string(), why);
                }
            }
        }
        (candidates, rejected)
    }

    /// Whether a node is looked at at all: it is in the node list (if there is one), can
    /// hold storage, and does not have the resource yet.
    fn considers(&self, name: &NodeName, node: &Node) -> bool {
        if !self.node_list.is_empty() && !self.node_list.contains(&name.key().to_string()) {
            return false;
        }
        if !node.node_type.hosts_storage() {
            return false;
        }
        !self.req.existing.iter().any(|r| &r.node == name)
    }

    /// Why a node cannot take a replica whatever its pools: it is evicted or excluded, it is
    /// offline, it holds a resource it must not share, it lacks a layer, or it runs DRBD 8.4
    /// where more than two nodes would replicate.
    fn node_rejection(&self, name: &NodeName, node: &Node) -> Option<String> {
        let (req, observed) = (self.req, self.observed);
        if node.flags.has(Flag::Evicted) || node.flags.has(Flag::Delete) {
            return Some("node is evicted or being deleted".into());
        }
        if node
            .props
            .get("AutoplaceTarget")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        {
            return Some("node has AutoplaceTarget=false".into());
        }
        if !observed.is_online(name) {
            return Some("node is offline".into());
        }
        if let Some(r) = self.shunned_resource(name) {
            return Some(format!("node has resource '{}' it must not share", r.name));
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
            return Some(format!("node does not support {missing}: {reason}"));
        }
        let drbd8 = uses_drbd(req)
            .then(|| super::drbd84::drbd8_version(observed, name))
            .flatten();
        if let Some(version) =
            drbd8.filter(|_| req.existing.len() + req.count > super::drbd84::MAX_NODES)
        {
            return Some(format!(
                "node runs DRBD {version}, which replicates between two nodes only"
            ));
        }
        None
    }

    /// A resource on the node that the filter says the new one must not share a node with.
    fn shunned_resource(&self, name: &NodeName) -> Option<&'a Resource> {
        let filter = self.req.filter;
        let avoid = !filter.not_place_with_rsc.is_empty() || self.not_with_regex.is_some();
        avoid
            .then(|| {
                self.cluster.resources_on(name).find(|r| {
                    filter
                        .not_place_with_rsc
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(r.name.as_str()))
                        || self
                            .not_with_regex
                            .as_ref()
                            .is_some_and(|re| re.is_match(r.name.as_str()))
                })
            })
            .flatten()
    }

    /// The node's pool with the most room left among those the filter allows, or why none
    /// fits.
    fn best_pool(&self, name: &'a NodeName) -> Result<Candidate<'a>, String> {
        let (cluster, filter) = (self.cluster, self.req.filter);
        let mut best: Option<Candidate<'a>> = None;
        let mut pool_reasons = Vec::new();
        for pool in cluster.pools_on(name) {
            if pool.kind == ProviderKind::Diskless {
                continue;
            }
            if !self.pool_list.is_empty() && !self.pool_list.contains(&pool.name.key().to_string())
            {
                continue;
            }
            if !filter.provider_list.is_empty() && !filter.provider_list.contains(&pool.kind) {
                continue;
            }
            match pool_room(
                cluster,
                self.observed,
                pool,
                self.req.size_kib,
                filter.overprovision,
            ) {
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
            Some(c) => Ok(c),
            None if pool_reasons.is_empty() => Err("no matching storage pool".into()),
            None => Err(pool_reasons.join("; ")),
        }
    }
}

/// Orders the candidates most room first, where "about the same room" (same band of
/// TIE_SHARE of the best) goes to the node with fewer resources: identical nodes, thin pools
/// and reports that lag behind placements would otherwise send every replica to the same
/// few nodes.
fn rank(candidates: &mut [Candidate<'_>]) {
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
}

/// The filter's rules on node properties (`replicas_on_same`, `replicas_on_different`,
/// `x_replicas_on_different`), with the values that `key=value` or the existing replicas pin.
struct Rules {
    same: Vec<(String, Option<String>)>,
    different: Vec<String>,
    at_most: Vec<(String, u32)>,
    /// Values pinned by `key=value`, or by replicas that already exist.
    pinned: Vec<(String, Option<String>)>,
    /// Same-value keys not pinned: the first replica chosen sets their value.
    free_same: Vec<String>,
}

impl Rules {
    fn new(cluster: &Cluster, req: &PlacementRequest<'_>) -> Rules {
        let filter = req.filter;
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
        let first_diskful = req.existing.iter().find(|r| !r.is_diskless());
        let mut pinned: Vec<(String, Option<String>)> = Vec::new();
        for (key, value) in &same {
            let from_existing = first_diskful.map(|r| node_prop(cluster, &r.node, key));
            let v = match (value, from_existing) {
                (Some(v), _) => Some(Some(v.clone())),
                (None, Some(existing)) => Some(existing),
                (None, None) => None,
            };
            if let Some(v) = v {
                pinned.push((key.clone(), v));
            }
        }
        let free_same: Vec<String> = same
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !pinned.iter().any(|(pk, _)| pk == *k))
            .cloned()
            .collect();
        Rules {
            same,
            different,
            at_most,
            pinned,
            free_same,
        }
    }

    /// Whether the filter has any rule on node properties.
    fn any(&self) -> bool {
        !(self.same.is_empty() && self.different.is_empty() && self.at_most.is_empty())
    }
}

/// How many candidate checks the search makes before it gives up.
const SEARCH_BUDGET: usize = 20_000;

/// The search for candidates that fit together: the same DRBD major, a free DRBD port on
/// each, and every rule kept.
struct Search<'a> {
    cluster: &'a Cluster,
    observed: &'a dyn Observed,
    req: &'a PlacementRequest<'a>,
    candidates: &'a [Candidate<'a>],
    rules: &'a Rules,
    /// Whether the replicas use DRBD (asked for every candidate the search looks at).
    uses_drbd: bool,
    /// The nodes of the existing diskful replicas.
    diskful_existing: Vec<&'a NodeName>,
    /// The DRBD major the existing replicas run, which new ones must run too.
    existing_major: Option<u32>,
    /// Whether each candidate can give the resource a DRBD port; asked lazily, in the order
    /// the search looks at candidates.
    port_ok: Vec<OnceCell<bool>>,
}

impl<'a> Search<'a> {
    fn new(
        cluster: &'a Cluster,
        observed: &'a dyn Observed,
        req: &'a PlacementRequest<'a>,
        candidates: &'a [Candidate<'a>],
        rules: &'a Rules,
    ) -> Search<'a> {
        let uses_drbd = uses_drbd(req);
        let existing_major = req
            .existing
            .iter()
            .find_map(|r| drbd_major(observed, uses_drbd, &r.node));
        Search {
            cluster,
            observed,
            req,
            candidates,
            rules,
            uses_drbd,
            diskful_existing: req
                .existing
                .iter()
                .filter(|r| !r.is_diskless())
                .map(|r| &r.node)
                .collect(),
            existing_major,
            port_ok: candidates.iter().map(|_| OnceCell::new()).collect(),
        }
    }

    /// The DRBD major version a node runs, when the replicas use DRBD. DRBD 8.4 and 9 nodes
    /// do not share a resource: every replica runs the DRBD major of the existing ones, or
    /// of the first one chosen.
    fn drbd_major(&self, node: &NodeName) -> Option<u32> {
        drbd_major(self.observed, self.uses_drbd, node)
    }

    /// Whether candidate `i` can give the resource a DRBD port (always, without DRBD).
    fn has_port(&self, i: usize) -> bool {
        !self.uses_drbd
            || *self.port_ok[i].get_or_init(|| {
                super::drbd::node_has_port(
                    self.cluster,
                    self.candidates[i].node,
                    self.req.drbd_port,
                )
            })
    }

    fn prop_of(&self, node: &NodeName, key: &str) -> Option<String> {
        node_prop(self.cluster, node, key)
    }

    /// The node of candidate `i`.
    fn node(&self, i: usize) -> &'a NodeName {
        self.candidates[i].node
    }

    /// The first `req.count` candidates, in rank order, that fit together; `None` if there
    /// are none within the search budget.
    fn run(&self) -> Option<Vec<usize>> {
        let mut budget = SEARCH_BUDGET;
        let mut chosen: Vec<usize> = Vec::new();
        let fits = |chosen: &[usize], cand: usize| self.fits(chosen, cand);
        search(
            0,
            &mut chosen,
            self.req.count,
            self.candidates.len(),
            &mut budget,
            &fits,
        )
        .then_some(chosen)
    }

    /// Whether candidate `cand` can join the `chosen` ones.
    fn fits(&self, chosen: &[usize], cand: usize) -> bool {
        if !self.has_port(cand) {
            return false;
        }
        let node = self.node(cand);
        let major = self.drbd_major(node);
        let first_major = chosen.first().and_then(|c| self.drbd_major(self.node(*c)));
        if self
            .existing_major
            .or(first_major)
            .is_some_and(|m| Some(m) != major)
        {
            return false;
        }
        self.keeps_same(chosen, node)
            && self.keeps_different(chosen, node)
            && self.keeps_at_most(chosen, node)
    }

    /// Whether `node` has the pinned values, and the values of the first chosen node for the
    /// keys that are not pinned.
    fn keeps_same(&self, chosen: &[usize], node: &NodeName) -> bool {
        for (key, value) in &self.rules.pinned {
            if &self.prop_of(node, key) != value {
                return false;
            }
        }
        if let Some(first) = chosen.first() {
            for key in &self.rules.free_same {
                if self.prop_of(node, key) != self.prop_of(self.node(*first), key) {
                    return false;
                }
            }
        }
        true
    }

    /// Whether `node` differs from every existing and chosen replica in the different-value
    /// keys.
    fn keeps_different(&self, chosen: &[usize], node: &NodeName) -> bool {
        for key in &self.rules.different {
            let v = self.prop_of(node, key);
            let clash = self
                .diskful_existing
                .iter()
                .any(|n| self.prop_of(n, key) == v)
                || chosen.iter().any(|c| self.prop_of(self.node(*c), key) == v);
            if clash {
                return false;
            }
        }
        true
    }

    /// Whether `node` keeps the count of replicas per value under each at-most limit.
    fn keeps_at_most(&self, chosen: &[usize], node: &NodeName) -> bool {
        for (key, max) in &self.rules.at_most {
            let v = self.prop_of(node, key);
            let used = self
                .diskful_existing
                .iter()
                .filter(|n| self.prop_of(n, key) == v)
                .count()
                + chosen
                    .iter()
                    .filter(|c| self.prop_of(self.node(**c), key) == v)
                    .count();
            if used as u32 >= *max {
                return false;
            }
        }
        true
    }

    /// The error when no placement was found: why each node was rejected (a candidate
    /// without a free DRBD port included), and which nodes would have been usable.
    fn not_enough_nodes(&self, mut rejected: BTreeMap<String, String>) -> ApiError {
        let req = self.req;
        let no_port: Vec<usize> = (0..self.candidates.len())
            .filter(|i| !self.has_port(*i))
            .collect();
        for i in &no_port {
            let node = self.node(*i);
            let why = match req.drbd_port {
                Some(p) => format!("DRBD port {p} of the definition is in use there"),
                None => {
                    let (lo, hi) = super::drbd::port_range(self.cluster, node);
                    format!("no free DRBD port from {lo} to {hi}")
                }
            };
            rejected.insert(node.to_string(), why);
        }
        let candidates: Vec<&Candidate<'_>> = self
            .candidates
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
        ApiError::new(
            code::FAIL_NOT_ENOUGH_NODES,
            ObjKind::Rsc,
            format!(
                "Not enough available nodes to place resource '{}': {} replica(s) needed, {} node(s) qualify{}",
                req.rsc,
                req.count,
                candidates.len(),
                if self.rules.any() { " under the placement rules" } else { "" }
            ),
        )
        .details(details.join("\n"))
        .correction(
            "Add storage pools with enough free space on more nodes, bring offline nodes back, or relax the placement filter (place count, storage pool, node list)",
        )
    }
}

/// Depth-first search from candidate `start` for `count` candidates in all, extending
/// `chosen`; each candidate looked at costs one of `budget`.
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
