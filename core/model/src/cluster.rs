//! The whole desired state in memory, and the unit of change the store persists.
//!
//! The controller answers every read from a `Cluster`. A mutation is planned against it
//! (without touching it), the resulting `Change`s are committed to the database in one
//! transaction, and only then applied here, so memory never holds what the disk does not.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::name::{NodeName, ResourceGroupName, ResourceName, SnapshotName, StorPoolName};
use crate::objects::{
    Node, Resource, ResourceConnection, ResourceDefinition, ResourceGroup, SnapshotDefinition,
    StorPool, StorPoolDefinition,
};
use crate::props::Props;
use crate::security::SecurityRecord;

/// One persisted modification. `Put*` inserts or replaces the whole object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    CtrlProps(Props),
    PutNode(Node),
    DelNode(NodeName),
    PutStorPoolDfn(StorPoolDefinition),
    DelStorPoolDfn(StorPoolName),
    PutStorPool(StorPool),
    DelStorPool(NodeName, StorPoolName),
    PutRscGrp(ResourceGroup),
    DelRscGrp(ResourceGroupName),
    PutRscDfn(ResourceDefinition),
    DelRscDfn(ResourceName),
    PutRsc(Resource),
    DelRsc(ResourceName, NodeName),
    PutRscConn(ResourceConnection),
    /// The connection of a definition between two nodes, in either order.
    DelRscConn(ResourceName, NodeName, NodeName),
    PutSnapshot(SnapshotDefinition),
    DelSnapshot(ResourceName, SnapshotName),
    /// A token, node certificate or revocation (see [`crate::security`]).
    PutSecurity(SecurityRecord),
    /// Drops the security record of this key.
    DelSecurity(String),
}

/// How a change is keyed in the store: object class and a unique key within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClass {
    Ctrl,
    Node,
    StorPoolDfn,
    StorPool,
    RscGrp,
    RscDfn,
    Rsc,
    RscConn,
    Snapshot,
    Security,
}

impl ObjectClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectClass::Ctrl => "ctrl",
            ObjectClass::Node => "node",
            ObjectClass::StorPoolDfn => "spd",
            ObjectClass::StorPool => "sp",
            ObjectClass::RscGrp => "rg",
            ObjectClass::RscDfn => "rd",
            ObjectClass::Rsc => "rsc",
            ObjectClass::RscConn => "rconn",
            ObjectClass::Snapshot => "snap",
            ObjectClass::Security => "sec",
        }
    }
}

fn pair_key(a: &str, b: &str) -> String {
    // Names cannot contain ':' so the pair key is unambiguous.
    format!("{a}:{b}")
}

fn rsc_conn_key(rsc: &ResourceName, a: &NodeName, b: &NodeName) -> String {
    let (a, b) = ResourceConnection::ordered(a.clone(), b.clone());
    format!("{}:{}:{}", rsc.key(), a.key(), b.key())
}

impl Change {
    /// The object class and the case-folded key the change applies to.
    pub fn store_key(&self) -> (ObjectClass, String) {
        match self {
            Change::CtrlProps(_) => (ObjectClass::Ctrl, "props".into()),
            Change::PutNode(n) => (ObjectClass::Node, n.name.key().into()),
            Change::DelNode(n) => (ObjectClass::Node, n.key().into()),
            Change::PutStorPoolDfn(s) => (ObjectClass::StorPoolDfn, s.name.key().into()),
            Change::DelStorPoolDfn(s) => (ObjectClass::StorPoolDfn, s.key().into()),
            Change::PutStorPool(p) => (ObjectClass::StorPool, pair_key(p.node.key(), p.name.key())),
            Change::DelStorPool(n, s) => (ObjectClass::StorPool, pair_key(n.key(), s.key())),
            Change::PutRscGrp(g) => (ObjectClass::RscGrp, g.name.key().into()),
            Change::DelRscGrp(g) => (ObjectClass::RscGrp, g.key().into()),
            Change::PutRscDfn(d) => (ObjectClass::RscDfn, d.name.key().into()),
            Change::DelRscDfn(d) => (ObjectClass::RscDfn, d.key().into()),
            Change::PutRsc(r) => (ObjectClass::Rsc, pair_key(r.name.key(), r.node.key())),
            Change::DelRsc(r, n) => (ObjectClass::Rsc, pair_key(r.key(), n.key())),
            Change::PutRscConn(c) => (
                ObjectClass::RscConn,
                rsc_conn_key(&c.name, &c.node_a, &c.node_b),
            ),
            Change::DelRscConn(r, a, b) => (ObjectClass::RscConn, rsc_conn_key(r, a, b)),
            Change::PutSnapshot(d) => (
                ObjectClass::Snapshot,
                pair_key(d.rsc_name.key(), d.name.key()),
            ),
            Change::DelSnapshot(r, n) => (ObjectClass::Snapshot, pair_key(r.key(), n.key())),
            Change::PutSecurity(r) => (ObjectClass::Security, r.key()),
            Change::DelSecurity(k) => (ObjectClass::Security, k.clone()),
        }
    }

    /// The object as JSON for `Put*` and controller props, `None` for deletions.
    pub fn payload(&self) -> Option<serde_json::Value> {
        let v = match self {
            Change::CtrlProps(p) => serde_json::to_value(p),
            Change::PutNode(o) => serde_json::to_value(o),
            Change::PutStorPoolDfn(o) => serde_json::to_value(o),
            Change::PutStorPool(o) => serde_json::to_value(o),
            Change::PutRscGrp(o) => serde_json::to_value(o),
            Change::PutRscDfn(o) => serde_json::to_value(o),
            Change::PutRsc(o) => serde_json::to_value(o),
            Change::PutRscConn(o) => serde_json::to_value(o),
            Change::PutSnapshot(o) => serde_json::to_value(o),
            Change::PutSecurity(o) => serde_json::to_value(o),
            _ => return None,
        };
        Some(v.expect("model objects always serialize"))
    }

    /// Rebuilds a `Put*` change from a stored row.
    pub fn from_row(class: ObjectClass, data: &str) -> Result<Change, serde_json::Error> {
        Ok(match class {
            ObjectClass::Ctrl => Change::CtrlProps(serde_json::from_str(data)?),
            ObjectClass::Node => Change::PutNode(serde_json::from_str(data)?),
            ObjectClass::StorPoolDfn => Change::PutStorPoolDfn(serde_json::from_str(data)?),
            ObjectClass::StorPool => Change::PutStorPool(serde_json::from_str(data)?),
            ObjectClass::RscGrp => Change::PutRscGrp(serde_json::from_str(data)?),
            ObjectClass::RscDfn => Change::PutRscDfn(serde_json::from_str(data)?),
            ObjectClass::Rsc => Change::PutRsc(serde_json::from_str(data)?),
            ObjectClass::RscConn => Change::PutRscConn(serde_json::from_str(data)?),
            ObjectClass::Snapshot => Change::PutSnapshot(serde_json::from_str(data)?),
            ObjectClass::Security => Change::PutSecurity(serde_json::from_str(data)?),
        })
    }
}

/// The cluster's desired state.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Bumped with every committed transaction; satellites refuse older configurations.
    pub generation: u64,
    pub ctrl_props: Props,
    pub nodes: BTreeMap<NodeName, Node>,
    pub stor_pool_dfns: BTreeMap<StorPoolName, StorPoolDefinition>,
    pub stor_pools: BTreeMap<NodeName, BTreeMap<StorPoolName, StorPool>>,
    pub rsc_grps: BTreeMap<ResourceGroupName, ResourceGroup>,
    pub rsc_dfns: BTreeMap<ResourceName, ResourceDefinition>,
    /// Resources by definition, then node; the same objects as `node_rscs` holds.
    rscs: BTreeMap<ResourceName, BTreeMap<NodeName, Arc<Resource>>>,
    /// Index: the resources of each node.
    node_rscs: BTreeMap<NodeName, BTreeMap<ResourceName, Arc<Resource>>>,
    /// Index: definitions with anything waiting to be deleted (the definition, a volume
    /// definition or a resource), so that finishing deletions looks only at those.
    deleting: BTreeSet<ResourceName>,
    /// Index: (node, resource) of the resources with a toggle-disk migration under way, so
    /// that the check after each DRBD report of a node looks only at those.
    migrating: BTreeSet<(NodeName, ResourceName)>,
    /// Resource connections by definition, then by their (ordered) pair of nodes.
    rsc_conns: BTreeMap<ResourceName, BTreeMap<(NodeName, NodeName), ResourceConnection>>,
    /// Index: external name -> resource definition.
    pub ext_names: BTreeMap<String, ResourceName>,
    /// Snapshots by definition, then name.
    pub snapshots: BTreeMap<ResourceName, BTreeMap<SnapshotName, SnapshotDefinition>>,
    /// Index: the DRBD ports in use on each node, with how many resources hold each.
    node_ports: BTreeMap<NodeName, Counts<u16>>,
    /// Index: the DRBD minors of every volume definition.
    minors: Counts<u32>,
    /// Index: the ports definitions asked for explicitly (`--port`).
    rd_ports: Counts<u16>,
    /// API tokens, join tokens, node certificates and revocations, by their key.
    pub security: BTreeMap<String, SecurityRecord>,
}

/// A multiset: how many objects hold each number.
#[derive(Debug, Clone)]
pub struct Counts<T: Ord>(BTreeMap<T, u32>);

impl<T: Ord> Default for Counts<T> {
    fn default() -> Self {
        Counts(BTreeMap::new())
    }
}

impl<T: Ord + Copy> Counts<T> {
    fn add(&mut self, v: T) {
        *self.0.entry(v).or_default() += 1;
    }

    fn remove(&mut self, v: T) {
        if let Some(n) = self.0.get_mut(&v) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(&v);
            }
        }
    }

    pub fn contains(&self, v: &T) -> bool {
        self.0.contains_key(v)
    }

    /// The numbers held within `lo..=hi`, in order.
    pub fn range(&self, lo: T, hi: T) -> impl Iterator<Item = T> + '_ {
        self.0.range(lo..=hi).map(|(k, _)| *k)
    }
}

impl Cluster {
    fn index_rsc(&mut self, r: &Resource, add: bool) {
        if let Some(p) = r.tcp_port {
            let ports = self.node_ports.entry(r.node.clone()).or_default();
            if add {
                ports.add(p);
            } else {
                ports.remove(p);
            }
        }
    }

    fn index_rd(&mut self, d: &ResourceDefinition, add: bool) {
        for m in d.volume_definitions.values().filter_map(|v| v.minor) {
            if add {
                self.minors.add(m);
            } else {
                self.minors.remove(m);
            }
        }
        if let Some(p) = d.drbd_port {
            if add {
                self.rd_ports.add(p);
            } else {
                self.rd_ports.remove(p);
            }
        }
    }

    /// The DRBD ports in use on `node`.
    pub fn ports_on(&self, node: &NodeName) -> Option<&Counts<u16>> {
        self.node_ports.get(node)
    }

    /// The DRBD minors of every volume definition.
    pub fn used_minors(&self) -> &Counts<u32> {
        &self.minors
    }

    /// The ports definitions asked for explicitly.
    pub fn rd_ports(&self) -> &Counts<u16> {
        &self.rd_ports
    }

    /// Applies one committed change to the state and its indexes.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::CtrlProps(p) => self.ctrl_props = p,
            Change::PutNode(n) => {
                self.nodes.insert(n.name.clone(), n);
            }
            Change::DelNode(n) => self.del_node(n),
            Change::PutStorPoolDfn(s) => {
                self.stor_pool_dfns.insert(s.name.clone(), s);
            }
            Change::DelStorPoolDfn(s) => {
                self.stor_pool_dfns.remove(&s);
            }
            Change::PutStorPool(p) => {
                self.stor_pools
                    .entry(p.node.clone())
                    .or_default()
                    .insert(p.name.clone(), p);
            }
            Change::DelStorPool(n, s) => self.del_stor_pool(n, s),
            Change::PutRscGrp(g) => {
                self.rsc_grps.insert(g.name.clone(), g);
            }
            Change::DelRscGrp(g) => {
                self.rsc_grps.remove(&g);
            }
            Change::PutRscDfn(d) => self.put_rsc_dfn(d),
            Change::DelRscDfn(d) => self.del_rsc_dfn(d),
            Change::PutRsc(r) => self.put_rsc(r),
            Change::DelRsc(r, n) => self.del_rsc(r, n),
            Change::PutRscConn(c) => self.put_rsc_conn(c),
            Change::DelRscConn(r, a, b) => self.del_rsc_conn(r, a, b),
            Change::PutSnapshot(d) => {
                self.snapshots
                    .entry(d.rsc_name.clone())
                    .or_default()
                    .insert(d.name.clone(), d);
            }
            Change::DelSnapshot(r, n) => self.del_snapshot(r, n),
            Change::PutSecurity(r) => {
                self.security.insert(r.key(), r);
            }
            Change::DelSecurity(k) => {
                self.security.remove(&k);
            }
        }
    }

    /// Drops a node with its pools, and its entries in the per-node indexes.
    fn del_node(&mut self, n: NodeName) {
        self.nodes.remove(&n);
        self.stor_pools.remove(&n);
        self.node_rscs.remove(&n);
        self.node_ports.remove(&n);
        self.migrating.retain(|(node, _)| node != &n);
    }

    /// Drops a storage pool, and the node's pool map with its last pool.
    fn del_stor_pool(&mut self, n: NodeName, s: StorPoolName) {
        if let Some(pools) = self.stor_pools.get_mut(&n) {
            pools.remove(&s);
            if pools.is_empty() {
                self.stor_pools.remove(&n);
            }
        }
    }

    /// Puts a definition, moving its external name, minors and port in the indexes from the
    /// old version to the new one.
    fn put_rsc_dfn(&mut self, d: ResourceDefinition) {
        if let Some(old) = self.rsc_dfns.remove(&d.name) {
            if let Some(ext) = &old.external_name {
                self.ext_names.remove(ext);
            }
            self.index_rd(&old, false);
        }
        if let Some(ext) = &d.external_name {
            self.ext_names.insert(ext.clone(), d.name.clone());
        }
        self.index_rd(&d, true);
        let name = d.name.clone();
        self.rsc_dfns.insert(d.name.clone(), d);
        self.refresh_deleting(&name);
    }

    /// Drops a definition with its resources and connections, and everything the indexes
    /// hold of them.
    fn del_rsc_dfn(&mut self, d: ResourceName) {
        if let Some(old) = self.rsc_dfns.remove(&d) {
            if let Some(ext) = &old.external_name {
                self.ext_names.remove(ext);
            }
            self.index_rd(&old, false);
        }
        if let Some(rscs) = self.rscs.remove(&d) {
            for (node, r) in &rscs {
                if let Some(set) = self.node_rscs.get_mut(node) {
                    set.remove(&d);
                }
                self.index_rsc(r, false);
                self.migrating.remove(&(node.clone(), d.clone()));
            }
        }
        self.deleting.remove(&d);
        self.rsc_conns.remove(&d);
    }

    /// Puts a resource into both resource maps, and moves its port and migration in the
    /// indexes from the old version to the new one.
    fn put_rsc(&mut self, r: Resource) {
        let r = Arc::new(r);
        let name = r.name.clone();
        let key = (r.node.clone(), r.name.clone());
        if r.migrate_from.is_some() {
            self.migrating.insert(key);
        } else {
            self.migrating.remove(&key);
        }
        let old = self
            .node_rscs
            .entry(r.node.clone())
            .or_default()
            .insert(r.name.clone(), r.clone());
        if let Some(old) = old {
            self.index_rsc(&old, false);
        }
        self.index_rsc(&r, true);
        self.rscs
            .entry(r.name.clone())
            .or_default()
            .insert(r.node.clone(), r);
        self.refresh_deleting(&name);
    }

    /// Drops a resource from both resource maps and the indexes.
    fn del_rsc(&mut self, r: ResourceName, n: NodeName) {
        if let Some(by_node) = self.rscs.get_mut(&r) {
            by_node.remove(&n);
            if by_node.is_empty() {
                self.rscs.remove(&r);
            }
        }
        if let Some(old) = self.node_rscs.get_mut(&n).and_then(|set| set.remove(&r)) {
            self.index_rsc(&old, false);
        }
        self.migrating.remove(&(n, r.clone()));
        self.refresh_deleting(&r);
    }

    /// Puts a connection under its ordered pair of nodes.
    fn put_rsc_conn(&mut self, mut c: ResourceConnection) {
        let (a, b) = ResourceConnection::ordered(c.node_a, c.node_b);
        c.node_a = a.clone();
        c.node_b = b.clone();
        self.rsc_conns
            .entry(c.name.clone())
            .or_default()
            .insert((a, b), c);
    }

    /// Drops a connection, and the definition's connection map with its last connection.
    fn del_rsc_conn(&mut self, r: ResourceName, a: NodeName, b: NodeName) {
        if let Some(conns) = self.rsc_conns.get_mut(&r) {
            conns.remove(&ResourceConnection::ordered(a, b));
            if conns.is_empty() {
                self.rsc_conns.remove(&r);
            }
        }
    }

    /// Drops a snapshot, and the definition's snapshot map with its last snapshot.
    fn del_snapshot(&mut self, r: ResourceName, n: SnapshotName) {
        if let Some(snaps) = self.snapshots.get_mut(&r) {
            snaps.remove(&n);
            if snaps.is_empty() {
                self.snapshots.remove(&r);
            }
        }
    }

    fn refresh_deleting(&mut self, name: &ResourceName) {
        let pending = self.rsc_dfns.get(name).is_some_and(|d| {
            d.is_deleting() || d.volume_definitions.values().any(|v| v.is_deleting())
        }) || self.resources_of(name).any(|r| r.is_deleting());
        if pending {
            self.deleting.insert(name.clone());
        } else {
            self.deleting.remove(name);
        }
    }

    /// The snapshots of a definition, by name.
    pub fn snapshots_of<'a>(
        &'a self,
        rsc: &ResourceName,
    ) -> impl Iterator<Item = &'a SnapshotDefinition> + 'a {
        self.snapshots.get(rsc).into_iter().flat_map(|m| m.values())
    }

    pub fn snapshot(&self, rsc: &ResourceName, name: &SnapshotName) -> Option<&SnapshotDefinition> {
        self.snapshots.get(rsc)?.get(name)
    }

    /// The resources on `node` with a toggle-disk migration under way.
    pub fn migrations_on<'a>(
        &'a self,
        node: &'a NodeName,
    ) -> impl Iterator<Item = &'a Resource> + 'a {
        self.migrating
            .iter()
            .filter(move |(n, _)| n == node)
            .filter_map(move |(n, r)| self.resource(r, n))
    }

    /// Definitions with something waiting to be deleted.
    pub fn pending_deletions(&self) -> impl Iterator<Item = &ResourceName> {
        self.deleting.iter()
    }

    /// The definition named `name` in any case, found without building a name: cheap
    /// enough for every resource of every report.
    pub fn rsc_dfn_named(&self, name: &str) -> Option<&ResourceDefinition> {
        let mut buf = [0u8; 64];
        let folded = buf.get_mut(..name.len())?;
        folded.copy_from_slice(name.as_bytes());
        folded.make_ascii_uppercase();
        self.rsc_dfns.get(std::str::from_utf8(folded).ok()?)
    }

    pub fn resources_of<'a>(
        &'a self,
        rsc: &ResourceName,
    ) -> impl Iterator<Item = &'a Resource> + 'a {
        self.rscs
            .get(rsc)
            .into_iter()
            .flat_map(|m| m.values().map(|r| r.as_ref()))
    }

    pub fn resource(&self, rsc: &ResourceName, node: &NodeName) -> Option<&Resource> {
        self.rscs
            .get(rsc)
            .and_then(|m| m.get(node))
            .map(|r| r.as_ref())
    }

    /// The resource connections of a definition, in node order.
    pub fn connections_of<'a>(
        &'a self,
        rsc: &ResourceName,
    ) -> impl Iterator<Item = &'a ResourceConnection> + 'a {
        self.rsc_conns.get(rsc).into_iter().flat_map(|m| m.values())
    }

    /// The connection of a definition between two nodes, given in either order.
    pub fn connection(
        &self,
        rsc: &ResourceName,
        a: &NodeName,
        b: &NodeName,
    ) -> Option<&ResourceConnection> {
        self.rsc_conns
            .get(rsc)?
            .get(&ResourceConnection::ordered(a.clone(), b.clone()))
    }

    pub fn resources_on<'a>(&'a self, node: &NodeName) -> impl Iterator<Item = &'a Resource> + 'a {
        self.node_rscs
            .get(node)
            .into_iter()
            .flat_map(|m| m.values().map(|r| r.as_ref()))
    }

    /// Number of resources on a node, without walking them.
    pub fn resource_count_on(&self, node: &NodeName) -> usize {
        self.node_rscs.get(node).map(|m| m.len()).unwrap_or(0)
    }

    pub fn stor_pool(&self, node: &NodeName, pool: &StorPoolName) -> Option<&StorPool> {
        self.stor_pools.get(node).and_then(|m| m.get(pool))
    }

    pub fn pools_on<'a>(&'a self, node: &NodeName) -> impl Iterator<Item = &'a StorPool> + 'a {
        self.stor_pools
            .get(node)
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Every (node, volume) that uses storage pool `pool` on `node`.
    pub fn volumes_in_pool<'a>(
        &'a self,
        node: &'a NodeName,
        pool: &'a StorPoolName,
    ) -> impl Iterator<Item = (&'a Resource, u32)> + 'a {
        self.resources_on(node).flat_map(move |r| {
            r.volumes
                .values()
                .filter(move |v| &v.storage_pool == pool)
                .map(move |v| (r, v.number))
        })
    }

    /// The property value that applies to a resource's volume, looking from the most specific
    /// object to the most general: volume, resource, volume definition, resource definition,
    /// volume group, resource group, node, controller.
    pub fn effective_prop(
        &self,
        key: &str,
        rsc: Option<&Resource>,
        rd: Option<&ResourceDefinition>,
        vlm_nr: Option<u32>,
        node: Option<&NodeName>,
    ) -> Option<String> {
        if let (Some(r), Some(nr)) = (rsc, vlm_nr) {
            if let Some(v) = r.volumes.get(&nr).and_then(|v| v.props.get(key)) {
                return Some(v.clone());
            }
        }
        if let Some(v) = rsc.and_then(|r| r.props.get(key)) {
            return Some(v.clone());
        }
        if let (Some(d), Some(nr)) = (rd, vlm_nr) {
            if let Some(v) = d.volume_definitions.get(&nr).and_then(|v| v.props.get(key)) {
                return Some(v.clone());
            }
        }
        if let Some(v) = rd.and_then(|d| d.props.get(key)) {
            return Some(v.clone());
        }
        if let Some(g) = rd.and_then(|d| self.rsc_grps.get(&d.resource_group)) {
            if let Some(nr) = vlm_nr {
                if let Some(v) = g.volume_groups.get(&nr).and_then(|v| v.props.get(key)) {
                    return Some(v.clone());
                }
            }
            if let Some(v) = g.props.get(key) {
                return Some(v.clone());
            }
        }
        if let Some(v) = node
            .and_then(|n| self.nodes.get(n))
            .and_then(|n| n.props.get(key))
        {
            return Some(v.clone());
        }
        self.ctrl_props.get(key).cloned()
    }
}

#[cfg(test)]
mod name_lookup_tests {
    use super::*;

    #[test]
    fn a_definition_is_found_by_its_name_in_any_case() {
        let mut c = Cluster::default();
        let rd: ResourceDefinition = serde_json::from_value(serde_json::json!({
            "name": "Data_01", "layer_stack": ["DRBD", "STORAGE"], "props": {}, "flags": [],
            "resource_group": "DfltRscGrp", "uuid": "u1", "volume_definitions": {}
        }))
        .expect("definition");
        c.apply(Change::PutRscDfn(rd));
        for name in ["Data_01", "DATA_01", "data_01"] {
            assert_eq!(
                c.rsc_dfn_named(name).map(|d| d.name.as_str()),
                Some("Data_01"),
                "{name}"
            );
        }
        assert!(c.rsc_dfn_named("Data_02").is_none());
        assert!(c.rsc_dfn_named("").is_none());
        assert!(c.rsc_dfn_named(&"x".repeat(100)).is_none());
    }
}
