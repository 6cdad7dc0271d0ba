//! What the satellites reported, kept in memory only and rebuilt after every start.
//!
//! A node's state is the merge of its reports: a whole report (a poll, a whole
//! configuration) replaces it, a partial one (the answer to a delta) replaces only the
//! resources it names, so that it costs what it changed.

use std::collections::HashMap;
use std::sync::Arc;

use strata_agent_api::{Report, SnapshotReport};
use strata_model::kinds::ConnectionStatus;
use strata_model::observed::{Capabilities, DrbdObserved, DrbdReport, PoolState, ResourceState};
use strata_model::plan::Observed;
use strata_model::{NodeName, ResourceName, StorPoolName};

#[derive(Debug, Clone, Default)]
pub struct NodeObserved {
    pub status: Option<ConnectionStatus>,
    pub caps: Option<Capabilities>,
    pub last_error: Option<String>,
    applied_generation: u64,
    errors: Vec<String>,
    snapshots: Vec<SnapshotReport>,
    /// Upper-case pool name -> pool state.
    pools: HashMap<String, PoolState>,
    /// Resource name (as the configuration and the reports spell it) -> state.
    resources: HashMap<String, ResourceState>,
    /// What DRBD says on the node (its event watcher's latest state), when it has the layer.
    pub drbd: Option<Arc<DrbdReport>>,
    /// Resource name -> position in `drbd.resources`.
    drbd_index: HashMap<String, usize>,
    /// Space promised to new volumes on thick pools that no report accounts for yet:
    /// (generation that placed them, upper-case pool name, KiB).
    promised: Vec<(u64, String, u64)>,
}

impl NodeObserved {
    pub fn applied_generation(&self) -> u64 {
        self.applied_generation
    }

    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// What the node holds of snapshot `name` of `rsc`.
    pub fn snapshot(&self, rsc: &str, name: &str) -> Option<&SnapshotReport> {
        self.snapshots
            .iter()
            .find(|s| s.resource.eq_ignore_ascii_case(rsc) && s.name.eq_ignore_ascii_case(name))
    }

    pub fn pool(&self, key: &str) -> Option<&PoolState> {
        self.pools.get(key)
    }

    /// Reports echo the names of the configuration, which are the controller's own.
    pub fn resource(&self, name: &str) -> Option<&ResourceState> {
        self.resources.get(name)
    }

    /// What DRBD says of resource `name` on this node.
    pub fn drbd(&self, name: &str) -> Option<&DrbdObserved> {
        let d = self.drbd.as_ref()?;
        match self.drbd_index.get(name) {
            Some(i) => d.resources.get(*i),
            None => d.resource(name),
        }
    }

    /// Takes `report` unless what is held is newer; answers the resources whose `may_promote`
    /// changed (with the new value), in the order of the report.
    fn set_drbd(&mut self, report: Arc<DrbdReport>) -> Vec<(String, bool)> {
        if let Some(old) = &self.drbd {
            if !report.supersedes(old) {
                return Vec::new();
            }
        }
        let mut changed = Vec::new();
        for r in &report.resources {
            let Some(now) = r.may_promote else { continue };
            if self.drbd(&r.name).and_then(|o| o.may_promote) != Some(now) {
                changed.push((r.name.clone(), now));
            }
        }
        self.drbd_index = report
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        self.drbd = Some(report);
        changed
    }
}

#[derive(Debug, Default)]
pub struct ObservedState {
    pub nodes: HashMap<NodeName, NodeObserved>,
}

impl ObservedState {
    /// What `r`'s node reported of it, and what DRBD says of it there (one look-up of the
    /// node).
    pub fn joined(
        &self,
        r: &strata_model::objects::Resource,
    ) -> (Option<&ResourceState>, strata_api::convert::DrbdSeen<'_>) {
        use strata_api::convert::DrbdSeen;
        let Some(n) = self
            .nodes
            .get(&r.node)
            .filter(|n| n.status == Some(ConnectionStatus::Online))
        else {
            return (None, DrbdSeen::NotWatched);
        };
        let seen = match n.drbd {
            Some(_) => match n.drbd(r.name.as_str()) {
                Some(d) => DrbdSeen::Seen(d),
                None => DrbdSeen::Missing,
            },
            None => DrbdSeen::NotWatched,
        };
        (n.resource(r.name.as_str()), seen)
    }

    /// DRBD's state of `rsc` on `node` while the node is online and its watcher follows DRBD
    /// without error; with `whole`, only once the watcher has read DRBD's complete state.
    fn drbd_seen(&self, node: &NodeName, rsc: &str, whole: bool) -> Option<&DrbdObserved> {
        if !self.is_online(node) {
            return None;
        }
        let n = self.nodes.get(node)?;
        let d = n.drbd.as_ref()?;
        if d.error.is_some() || (whole && !d.complete) {
            return None;
        }
        n.drbd(rsc)
    }

    pub fn status(&self, node: &NodeName) -> ConnectionStatus {
        self.nodes
            .get(node)
            .and_then(|n| n.status)
            .unwrap_or(ConnectionStatus::Offline)
    }

    pub fn node_mut(&mut self, node: &NodeName) -> &mut NodeObserved {
        self.nodes.entry(node.clone()).or_default()
    }

    pub fn set_online(&mut self, node: &NodeName, caps: Capabilities) {
        let n = self.node_mut(node);
        n.status = Some(ConnectionStatus::Online);
        n.caps = Some(caps);
        n.last_error = None;
    }

    pub fn set_status(&mut self, node: &NodeName, status: ConnectionStatus, why: Option<String>) {
        let n = self.node_mut(node);
        n.status = Some(status);
        n.last_error = why;
    }

    /// Takes a node's report; answers the resources whose `may_promote` changed.
    pub fn apply_report(&mut self, node: &NodeName, report: Arc<Report>) -> Vec<(String, bool)> {
        let n = self.node_mut(node);
        let changed = match &report.drbd {
            Some(d) => n.set_drbd(Arc::new(d.clone())),
            None => Vec::new(),
        };
        n.pools = report
            .pools
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
            .collect();
        if report.partial {
            for r in &report.resources {
                n.resources.insert(r.name.clone(), r.clone());
            }
            for g in &report.gone {
                n.resources.remove(g);
            }
        } else {
            n.resources = report
                .resources
                .iter()
                .map(|r| (r.name.clone(), r.clone()))
                .collect();
        }
        n.errors = report.errors.clone();
        n.snapshots = report.snapshots.clone();
        n.applied_generation = report.applied_generation;
        // A report of generation g shows the space taken by every placement up to g.
        n.promised
            .retain(|(generation, _, _)| *generation > report.applied_generation);
        changed
    }

    /// Remembers that generation `generation` placed `kib` of new volumes in `pool` on `node`.
    pub fn promise(&mut self, node: &NodeName, generation: u64, pool: &StorPoolName, kib: u64) {
        let n = self.node_mut(node);
        if generation > n.applied_generation {
            n.promised.push((generation, pool.key().to_string(), kib));
        }
    }

    /// Takes a node's DRBD state; answers the resources whose `may_promote` changed.
    pub fn apply_drbd(&mut self, node: &NodeName, report: Arc<DrbdReport>) -> Vec<(String, bool)> {
        self.node_mut(node).set_drbd(report)
    }

    /// What DRBD says of resource `rsc` on `node`.
    pub fn drbd(&self, node: &NodeName, rsc: &str) -> Option<&DrbdObserved> {
        self.nodes.get(node).and_then(|n| n.drbd(rsc))
    }

    pub fn resource(&self, node: &NodeName, rsc: &str) -> Option<&ResourceState> {
        self.nodes.get(node).and_then(|n| n.resource(rsc))
    }

    pub fn forget(&mut self, node: &NodeName) {
        self.nodes.remove(node);
    }
}

impl Observed for ObservedState {
    fn is_online(&self, node: &NodeName) -> bool {
        self.status(node) == ConnectionStatus::Online
    }

    fn capabilities(&self, node: &NodeName) -> Option<&Capabilities> {
        self.nodes.get(node).and_then(|n| n.caps.as_ref())
    }

    fn pool_state(&self, node: &NodeName, pool: &StorPoolName) -> Option<&PoolState> {
        if !self.is_online(node) {
            return None;
        }
        self.nodes.get(node).and_then(|n| n.pool(pool.key()))
    }

    fn drbd_state(&self, node: &NodeName, rsc: &ResourceName) -> Option<&DrbdObserved> {
        self.drbd_seen(node, rsc.as_str(), true)
    }

    fn in_use(&self, node: &NodeName, rsc: &ResourceName) -> Option<bool> {
        if !self.is_online(node) {
            return None;
        }
        let reported = self.resource(node, rsc.as_str()).and_then(|r| r.in_use);
        // A Primary in DRBD's latest state is use seen, even while the watcher is still
        // reading its initial dump (which `drbd_state` waits for: what is missing from a
        // partial dump proves nothing, but what is in it was seen).
        let primary = self
            .drbd_seen(node, rsc.as_str(), false)
            .and_then(|d| d.in_use());
        // Some(true) over Some(false) over None.
        reported.max(primary)
    }

    fn promised_kib(&self, node: &NodeName, pool: &StorPoolName) -> u64 {
        self.nodes.get(node).map_or(0, |n| {
            n.promised
                .iter()
                .filter(|(_, p, _)| p == pool.key())
                .map(|(_, _, kib)| kib)
                .sum()
        })
    }
}
