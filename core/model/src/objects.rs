//! The cluster's desired state: what users asked for. Every type here is persisted by the
//! store and rebuilt from it at start-up; nothing here is observed from a node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::flags::{Flag, Flags};
use crate::kinds::{EncryptionType, LayerKind, NodeType, ProviderKind};
use crate::name::{
    NetIfName, NodeName, ResourceGroupName, ResourceName, SnapshotName, StorPoolName,
};
use crate::props::Props;
use crate::vecmap::VecMap;

/// The storage pool a resource uses when nothing names one.
pub const DEFAULT_STOR_POOL: &str = "DfltStorPool";
/// The diskless pool every node gets.
pub const DEFAULT_DISKLESS_STOR_POOL: &str = "DfltDisklessStorPool";
/// The resource group of resource definitions created without one.
pub const DEFAULT_RSC_GRP: &str = "DfltRscGrp";
/// Name of a node's first network interface.
pub const DEFAULT_NETIF: &str = "default";
/// Default satellite port (plain).
pub const DEFAULT_SATELLITE_PORT: u16 = 3366;
/// Highest DRBD volume number; 65535 is reserved by the DRBD protocol.
pub const MAX_VOLUME_NUMBER: u32 = 65534;

pub type VolumeNumber = u32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetInterface {
    pub name: NetIfName,
    pub address: String,
    pub satellite_port: Option<u16>,
    pub encryption: Option<EncryptionType>,
    pub is_active: bool,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: NodeName,
    pub node_type: NodeType,
    pub props: Props,
    pub flags: Flags,
    /// In creation order; the active one carries the satellite connection.
    pub net_interfaces: Vec<NetInterface>,
    pub uuid: String,
}

impl Node {
    /// The interface the controller uses to reach the satellite.
    pub fn satellite_interface(&self) -> Option<&NetInterface> {
        self.net_interfaces
            .iter()
            .find(|n| n.is_active && n.satellite_port.is_some())
            .or_else(|| {
                self.net_interfaces
                    .iter()
                    .find(|n| n.satellite_port.is_some())
            })
    }

    pub fn net_interface(&self, name: &NetIfName) -> Option<&NetInterface> {
        self.net_interfaces.iter().find(|n| &n.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorPoolDefinition {
    pub name: StorPoolName,
    pub props: Props,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorPool {
    pub node: NodeName,
    pub name: StorPoolName,
    pub kind: ProviderKind,
    pub props: Props,
    pub free_space_mgr_name: Option<String>,
    pub external_locking: bool,
    pub uuid: String,
}

impl StorPool {
    /// What the backing pool is called on the node (volume group, zpool, directory).
    pub fn backing_pool(&self) -> Option<String> {
        match self.kind {
            ProviderKind::LvmThin => {
                let vg = self.props.get("StorDriver/LvmVg")?;
                let thin = self.props.get("StorDriver/ThinPool")?;
                Some(format!("{vg}/{thin}"))
            }
            k => k
                .pool_name_key()
                .and_then(|key| self.props.get(key).cloned()),
        }
    }
}

/// The placement rules of resource groups and of autoplace requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_place_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_name_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_pool_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage_pool_diskless_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_place_with_rsc: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_place_with_rsc_regex: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas_on_same: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas_on_different: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub x_replicas_on_different_map: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layer_stack: Vec<LayerKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_list: Vec<ProviderKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diskless_on_remaining: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diskless_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overprovision: Option<f64>,
}

impl SelectFilter {
    /// This filter with every unset field taken from `base` (request over group).
    pub fn over(&self, base: &SelectFilter) -> SelectFilter {
        fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            a.clone().or_else(|| b.clone())
        }
        fn pick_vec<T: Clone>(a: &[T], b: &[T]) -> Vec<T> {
            if a.is_empty() {
                b.to_vec()
            } else {
                a.to_vec()
            }
        }
        SelectFilter {
            place_count: pick(&self.place_count, &base.place_count),
            additional_place_count: pick(
                &self.additional_place_count,
                &base.additional_place_count,
            ),
            node_name_list: pick_vec(&self.node_name_list, &base.node_name_list),
            storage_pool_list: pick_vec(&self.storage_pool_list, &base.storage_pool_list),
            storage_pool_diskless_list: pick_vec(
                &self.storage_pool_diskless_list,
                &base.storage_pool_diskless_list,
            ),
            not_place_with_rsc: pick_vec(&self.not_place_with_rsc, &base.not_place_with_rsc),
            not_place_with_rsc_regex: pick(
                &self.not_place_with_rsc_regex,
                &base.not_place_with_rsc_regex,
            ),
            replicas_on_same: pick_vec(&self.replicas_on_same, &base.replicas_on_same),
            replicas_on_different: pick_vec(
                &self.replicas_on_different,
                &base.replicas_on_different,
            ),
            x_replicas_on_different_map: if self.x_replicas_on_different_map.is_empty() {
                base.x_replicas_on_different_map.clone()
            } else {
                self.x_replicas_on_different_map.clone()
            },
            layer_stack: pick_vec(&self.layer_stack, &base.layer_stack),
            provider_list: pick_vec(&self.provider_list, &base.provider_list),
            diskless_on_remaining: pick(&self.diskless_on_remaining, &base.diskless_on_remaining),
            diskless_type: pick(&self.diskless_type, &base.diskless_type),
            overprovision: pick(&self.overprovision, &base.overprovision),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeGroup {
    pub number: VolumeNumber,
    pub props: Props,
    pub flags: Flags,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroup {
    pub name: ResourceGroupName,
    pub description: String,
    pub props: Props,
    pub select_filter: SelectFilter,
    pub peer_slots: Option<u32>,
    pub volume_groups: VecMap<VolumeNumber, VolumeGroup>,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeDefinition {
    pub number: VolumeNumber,
    pub size_kib: u64,
    pub props: Props,
    pub flags: Flags,
    /// DRBD minor number, when one was asked for or allocated.
    pub minor: Option<u32>,
    #[serde(default)]
    pub delete_generation: Option<u64>,
    pub uuid: String,
}

impl VolumeDefinition {
    pub fn is_deleting(&self) -> bool {
        self.flags.has(Flag::Delete)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceDefinition {
    pub name: ResourceName,
    pub external_name: Option<String>,
    pub props: Props,
    pub flags: Flags,
    /// Empty until the first resource fixes it (or the user names one).
    pub layer_stack: Vec<LayerKind>,
    /// The user chose the layer list (on the definition, its group or a resource request),
    /// rather than the first placement: without DRBD, several diskful resources are then
    /// what was asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub layers_chosen: bool,
    pub resource_group: ResourceGroupName,
    pub volume_definitions: VecMap<VolumeNumber, VolumeDefinition>,
    /// DRBD settings asked for at creation; used by the DRBD layer.
    pub drbd_port: Option<u16>,
    pub drbd_secret: Option<String>,
    pub drbd_peer_slots: Option<u32>,
    pub drbd_transport: Option<String>,
    /// Generation at which deletion was requested; the definition goes once every node has
    /// applied a configuration at least that new without it.
    #[serde(default)]
    pub delete_generation: Option<u64>,
    pub uuid: String,
}

impl ResourceDefinition {
    pub fn is_deleting(&self) -> bool {
        self.flags.has(Flag::Delete)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub number: VolumeNumber,
    pub storage_pool: StorPoolName,
    pub props: Props,
    pub flags: Flags,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub name: ResourceName,
    pub node: NodeName,
    pub props: Props,
    pub flags: Flags,
    pub volumes: VecMap<VolumeNumber, Volume>,
    /// DRBD node id, when the DRBD layer is used.
    pub node_id: Option<u32>,
    /// DRBD TCP port of this resource on its node.
    #[serde(default)]
    pub tcp_port: Option<u16>,
    /// DRBD peer slots its metadata was created with (fixed for its lifetime).
    #[serde(default)]
    pub peer_slots: Option<u32>,
    pub create_timestamp: i64,
    #[serde(default)]
    pub delete_generation: Option<u64>,
    pub uuid: String,
    /// The snapshot its volumes were created from, for a restored resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<RestoreSource>,
    /// `toggle-disk --migrate-from`: the node whose resource is deleted once this one's new
    /// disk is up to date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_from: Option<NodeName>,
    /// The definition whose resource on the same node its volumes were copied from (a
    /// clone from pools without snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloned_from: Option<ResourceName>,
}

impl Resource {
    pub fn is_diskless(&self) -> bool {
        self.flags.has(Flag::Diskless) || self.flags.has(Flag::DrbdDiskless)
    }

    pub fn is_deleting(&self) -> bool {
        self.flags.has(Flag::Delete)
    }

    pub fn is_tiebreaker(&self) -> bool {
        self.flags.has(Flag::TieBreaker)
    }
}

/// What is set on the connection between the resources of one definition on two nodes:
/// DRBD options for that pair only. The pair is unordered and kept in name order
/// (`node_a` < `node_b`, compared case-insensitively), so each pair has one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceConnection {
    pub name: ResourceName,
    pub node_a: NodeName,
    pub node_b: NodeName,
    pub props: Props,
    pub flags: Flags,
    pub uuid: String,
}

impl ResourceConnection {
    /// Two nodes in the order a connection keeps them.
    pub fn ordered(a: NodeName, b: NodeName) -> (NodeName, NodeName) {
        if b < a {
            (b, a)
        } else {
            (a, b)
        }
    }

    /// Whether `node` is one end of the connection.
    pub fn joins(&self, node: &NodeName) -> bool {
        &self.node_a == node || &self.node_b == node
    }
}

/// Where a snapshot stands. Taking one is three steps, each a committed change the
/// involved nodes apply: I/O suspended on every node (DRBD only), the snapshots taken, I/O
/// resumed; so that the copies on all nodes are of the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotState {
    /// DRBD I/O is being suspended on the involved nodes.
    Suspending,
    /// The nodes take their snapshots (DRBD I/O stays suspended).
    Taking,
    /// Taken everywhere; I/O runs again.
    Successful,
    /// Being removed from the nodes.
    Deleting,
}

/// A volume of a snapshot on one node: where the copy lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotVolumeOnNode {
    pub number: VolumeNumber,
    pub storage_pool: StorPoolName,
}

/// A snapshot's copies on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotOnNode {
    pub node: NodeName,
    pub volumes: Vec<SnapshotVolumeOnNode>,
    pub create_timestamp: i64,
}

/// A volume definition as it was when the snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotVolumeDefinition {
    pub number: VolumeNumber,
    pub size_kib: u64,
}

/// A snapshot of a resource definition, with its copies on some of the definition's nodes.
/// It outlives the resources it was taken of and keeps the definition from being deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDefinition {
    pub rsc_name: ResourceName,
    pub name: SnapshotName,
    pub uuid: String,
    pub state: SnapshotState,
    /// Generation of the change that started its deletion.
    #[serde(default)]
    pub delete_generation: Option<u64>,
    pub volumes: Vec<SnapshotVolumeDefinition>,
    pub nodes: Vec<SnapshotOnNode>,
    pub props: Props,
    /// The definition's layers when it was taken.
    pub layer_stack: Vec<LayerKind>,
    /// A rollback of the definition's resources to this snapshot, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
}

/// A rollback in two steps, so that no node comes back before all went down (a node back
/// early would be resynced from one not rolled back yet): first DRBD goes down on every node,
/// then every node takes its volumes back to the snapshot and brings DRBD up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// Identifies this rollback (the generation that started it).
    pub id: u64,
    /// Still in the first step.
    pub down_only: bool,
}

impl SnapshotDefinition {
    pub fn on(&self, node: &NodeName) -> Option<&SnapshotOnNode> {
        self.nodes.iter().find(|n| &n.node == node)
    }

    /// Whether DRBD I/O of the resource on the involved nodes should be suspended now.
    pub fn suspends_io(&self) -> bool {
        matches!(
            self.state,
            SnapshotState::Suspending | SnapshotState::Taking
        ) && self.layer_stack.contains(&LayerKind::Drbd)
    }
}

/// The snapshot a new resource's volumes are restored from (on the same node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSource {
    pub rsc_name: ResourceName,
    pub snapshot: SnapshotName,
}

/// Name of the backing volume of a resource's volume: `<resource>_<5-digit volume number>`.
pub fn backing_volume_name(rsc: &ResourceName, vlm: VolumeNumber) -> String {
    format!("{}_{:05}", rsc.as_str(), vlm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_names() {
        let r = ResourceName::new("my_ssd_res").unwrap();
        assert_eq!(backing_volume_name(&r, 0), "my_ssd_res_00000");
        assert_eq!(backing_volume_name(&r, 12), "my_ssd_res_00012");
    }

    /// Flags are stored as the sorted list of their names, as when they were strings.
    #[test]
    fn flags_are_stored_as_their_names() {
        let text = r#"{"name":"r1","node":"n1","props":{},"flags":["DELETE","DRBD_DISKLESS","RESIZE","TIE_BREAKER"],"volumes":{},"node_id":null,"tcp_port":null,"peer_slots":null,"create_timestamp":0,"delete_generation":null,"uuid":"u"}"#;
        let mut r: Resource = serde_json::from_str(text).unwrap();
        assert!(r.is_deleting() && r.is_diskless() && r.is_tiebreaker());
        assert_eq!(serde_json::to_string(&r).unwrap(), text);
        r.flags.remove(Flag::Delete);
        r.flags.insert(Flag::Diskless);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["flags"],
            serde_json::json!(["DISKLESS", "DRBD_DISKLESS", "RESIZE", "TIE_BREAKER"])
        );
    }

    #[test]
    fn filter_overlay() {
        let group = SelectFilter {
            place_count: Some(2),
            storage_pool_list: vec!["pool1".into()],
            ..Default::default()
        };
        let req = SelectFilter {
            place_count: Some(3),
            ..Default::default()
        };
        let eff = req.over(&group);
        assert_eq!(eff.place_count, Some(3));
        assert_eq!(eff.storage_pool_list, vec!["pool1".to_string()]);
    }
}
