//! What nodes report about themselves. Never persisted by the controller: it is rebuilt from
//! the satellites' answers after every start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::drbd_state::{ConnectionState, DiskState, ReplicationState, Role};
use crate::kinds::{LayerKind, ProviderKind};

/// What a satellite can do, as it detected on its host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub providers: Vec<ProviderKind>,
    pub layers: Vec<LayerKind>,
    /// Unsupported providers with the reasons found (missing tool, missing module, ...).
    pub unsupported_providers: BTreeMap<ProviderKind, Vec<String>>,
    pub unsupported_layers: BTreeMap<LayerKind, Vec<String>>,
    /// e.g. "9.2.12" when a DRBD kernel module is loaded.
    pub drbd_version: Option<String>,
    pub drbd_utils_version: Option<String>,
    pub os_variant: Option<String>,
}

impl Capabilities {
    pub fn supports_provider(&self, kind: ProviderKind) -> bool {
        self.providers.contains(&kind)
    }

    pub fn supports_layer(&self, layer: LayerKind) -> bool {
        self.layers.contains(&layer)
    }

    /// Why a provider cannot be used, for error messages.
    pub fn provider_reason(&self, kind: ProviderKind) -> String {
        self.unsupported_providers
            .get(&kind)
            .map(|r| r.join("; "))
            .unwrap_or_else(|| "not reported as supported by the satellite".into())
    }

    /// The major version of the loaded DRBD module (8 or 9), when one is loaded.
    pub fn drbd_major(&self) -> Option<u32> {
        self.drbd_version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.trim().parse().ok())
    }

    pub fn layer_reason(&self, layer: LayerKind) -> String {
        self.unsupported_layers
            .get(&layer)
            .map(|r| r.join("; "))
            .unwrap_or_else(|| "not reported as supported by the satellite".into())
    }
}

/// Capacity and health of one storage pool on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolState {
    pub free_capacity_kib: u64,
    pub total_capacity_kib: u64,
    pub supports_snapshots: bool,
    /// Problems the satellite found with the pool; empty when healthy.
    pub errors: Vec<String>,
}

/// What a node observed of one volume of one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeState {
    pub volume_number: u32,
    /// The block device users open, e.g. `/dev/loop3`.
    pub device_path: Option<String>,
    /// The backing object, e.g. the image file or logical volume.
    pub backing_path: Option<String>,
    pub allocated_kib: Option<u64>,
    pub usable_kib: Option<u64>,
    /// `UpToDate`, `Diskless` or `Failed` as the storage below sees it; empty (the default)
    /// when nothing was said.
    pub disk_state: DiskState,
    pub error: Option<String>,
}

/// What a node observed of one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    pub name: String,
    pub volumes: Vec<VolumeState>,
    pub in_use: Option<bool>,
    /// Set when the node could not make the resource as asked.
    pub error: Option<String>,
}

impl ResourceState {
    pub fn is_ready(&self) -> bool {
        self.error.is_none() && self.volumes.iter().all(|v| v.error.is_none())
    }

    pub fn first_error(&self) -> Option<String> {
        self.error
            .clone()
            .or_else(|| self.volumes.iter().find_map(|v| v.error.clone()))
    }
}

/// What DRBD reports of one resource on one node (from its `drbdsetup events2` stream).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrbdObserved {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_promote: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_score: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<bool>,
    /// Why I/O is suspended (`user`, `no-data`, `fencing`, `quorum`); empty when it is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspended: Vec<String>,
    /// Peer node name -> connection state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connections: BTreeMap<String, ConnectionState>,
    /// Local volumes by number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<u32, DrbdVolumeObserved>,
}

/// One local DRBD volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrbdVolumeObserved {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_state: Option<DiskState>,
    /// Intentionally diskless (a DRBD client).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client: bool,
    /// Opened on this node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
    /// Peer node name -> replication towards it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peers: BTreeMap<String, PeerReplication>,
}

/// One volume as replicated to one peer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerReplication {
    pub replication: ReplicationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_disk: Option<DiskState>,
    /// Resync progress in percent while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<f64>,
    /// Data not in sync with the peer, as DRBD counts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_sync_kib: Option<u64>,
}

/// Whether the replication state named `state` brings the data of a volume up to date (see
/// [`ReplicationState::is_resync`]), for those that hold the name as text.
pub fn is_resync_state(state: &str) -> bool {
    ReplicationState::parse(state).is_resync()
}

impl DrbdVolumeObserved {
    pub fn is_up_to_date(&self) -> bool {
        self.disk_state == Some(DiskState::UpToDate)
    }

    /// The state as people read it: `SyncTarget(45.12%)` while receiving a resync, the disk
    /// state otherwise.
    pub fn summary(&self) -> String {
        let receiving = self.peers.values().find(|p| {
            matches!(
                p.replication,
                ReplicationState::SyncTarget | ReplicationState::PausedSyncT
            )
        });
        match (receiving, &self.disk_state) {
            (Some(p), _) => match p.done {
                Some(done) => format!("{}({done:.2}%)", p.replication),
                None => p.replication.to_string(),
            },
            (None, Some(d)) => d.to_string(),
            (None, None) => "Unknown".to_string(),
        }
    }
}

impl DrbdObserved {
    /// The resource is in use here (DRBD Primary).
    pub fn in_use(&self) -> Option<bool> {
        self.role.as_ref().map(|r| *r == Role::Primary)
    }

    /// Every local volume is UpToDate (or intentionally diskless) and no resync runs towards
    /// any peer.
    pub fn is_synced(&self) -> bool {
        !self.volumes.is_empty()
            && self.volumes.values().all(|v| {
                let disk_ok = match v.disk_state {
                    Some(DiskState::UpToDate) => true,
                    Some(DiskState::Diskless) => v.client,
                    _ => false,
                };
                disk_ok && v.peers.values().all(|p| !p.replication.is_resync())
            })
    }
}

/// The DRBD state of every DRBD resource of a node, as its satellite last saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrbdReport {
    /// Identifies the satellite's watcher: a new one (after a restart) starts counting again.
    pub epoch: u64,
    /// Grows with every change the watcher saw.
    pub seq: u64,
    /// The watcher has seen DRBD's complete state (the initial dump of the event stream).
    pub complete: bool,
    /// Why the watcher cannot see DRBD's state, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub resources: Vec<DrbdObserved>,
}

impl DrbdReport {
    /// Whether `self` is newer than `other` (another watcher, or later in the same one).
    pub fn supersedes(&self, other: &DrbdReport) -> bool {
        self.epoch != other.epoch || self.seq >= other.seq
    }

    pub fn resource(&self, name: &str) -> Option<&DrbdObserved> {
        self.resources
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The states are written as DRBD names them, as when they were held as text.
    #[test]
    fn drbd_states_serialise_as_their_names() {
        let text = r#"{"name":"r0","role":"Primary","connections":{"beta":"Connected","gamma":"SomethingNew"},"volumes":{"0":{"disk_state":"UpToDate","peers":{"beta":{"replication":"SyncSource","peer_disk":"Inconsistent","done":45.12}}},"1":{"disk_state":""}}}"#;
        let d: DrbdObserved = serde_json::from_str(text).unwrap();
        assert_eq!(d.role, Some(Role::Primary));
        assert_eq!(d.connections["beta"], ConnectionState::Connected);
        assert_eq!(
            d.connections["gamma"],
            ConnectionState::Other("SomethingNew".into())
        );
        let v = &d.volumes[&0];
        assert_eq!(v.disk_state, Some(DiskState::UpToDate));
        assert_eq!(v.peers["beta"].replication, ReplicationState::SyncSource);
        assert_eq!(v.peers["beta"].peer_disk, Some(DiskState::Inconsistent));
        assert_eq!(serde_json::to_string(&d).unwrap(), text);

        let vol = r#"{"volume_number":0,"device_path":null,"backing_path":null,"allocated_kib":null,"usable_kib":null,"disk_state":"","error":null}"#;
        assert_eq!(serde_json::to_string(&VolumeState::default()).unwrap(), vol);
        let back: VolumeState = serde_json::from_str(vol).unwrap();
        assert_eq!(back, VolumeState::default());
    }

    #[test]
    fn summary_and_sync() {
        let mut d = DrbdObserved {
            role: Some(Role::Secondary),
            ..Default::default()
        };
        let mut v = DrbdVolumeObserved {
            disk_state: Some(DiskState::Inconsistent),
            ..Default::default()
        };
        v.peers.insert(
            "alpha".into(),
            PeerReplication {
                replication: ReplicationState::SyncTarget,
                peer_disk: Some(DiskState::UpToDate),
                done: Some(45.123),
                out_of_sync_kib: None,
            },
        );
        assert_eq!(v.summary(), "SyncTarget(45.12%)");
        d.volumes.insert(0, v.clone());
        assert!(!d.is_synced());
        assert_eq!(d.in_use(), Some(false));
        v.disk_state = Some(DiskState::UpToDate);
        v.peers.get_mut("alpha").unwrap().replication = ReplicationState::Established;
        assert_eq!(v.summary(), "UpToDate");
        d.volumes.insert(0, v);
        assert!(d.is_synced());
        assert!(is_resync_state("PausedSyncT"));
        assert!(!is_resync_state("Established"));
    }
}
