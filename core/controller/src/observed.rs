//! What the satellites reported, kept in memory only and rebuilt after every start.

use std::collections::HashMap;

use strata_agent_api::Report;
use strata_model::kinds::ConnectionStatus;
use strata_model::observed::{Capabilities, PoolState, ResourceState};
use strata_model::plan::Observed;
use strata_model::{NodeName, StorPoolName};

#[derive(Debug, Clone, Default)]
pub struct NodeObserved {
    pub status: Option<ConnectionStatus>,
    pub caps: Option<Capabilities>,
    pub applied_generation: u64,
    pub last_error: Option<String>,
    pub errors: Vec<String>,
    pub pools: HashMap<String, PoolState>,
    /// Keyed by the upper-case resource name.
    pub resources: HashMap<String, ResourceState>,
}

#[derive(Debug, Default)]
pub struct ObservedState {
    pub nodes: HashMap<NodeName, NodeObserved>,
}

impl ObservedState {
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

    pub fn apply_report(&mut self, node: &NodeName, report: &Report) {
        let n = self.node_mut(node);
        n.applied_generation = report.applied_generation;
        n.errors = report.errors.clone();
        n.pools = report
            .pools
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
            .collect();
        n.resources = report
            .resources
            .iter()
            .map(|r| (r.name.to_ascii_uppercase(), r.clone()))
            .collect();
    }

    pub fn resource(&self, node: &NodeName, rsc: &str) -> Option<&ResourceState> {
        self.nodes
            .get(node)
            .and_then(|n| n.resources.get(&rsc.to_ascii_uppercase()))
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
        self.nodes.get(node).and_then(|n| n.pools.get(pool.key()))
    }
}
