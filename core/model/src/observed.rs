//! What nodes report about themselves. Never persisted by the controller: it is rebuilt from
//! the satellites' answers after every start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    /// `UpToDate`, `Diskless`, `Failed`, or a DRBD disk state.
    pub disk_state: String,
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
    /// `Primary`, `Secondary` or `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_promote: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_score: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<bool>,
    /// Why I/O is suspended (`user`, `no-data`, `fencing`, `quorum`); empty when it is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspended: Vec<String>,
    /// Peer node name -> connection state (`Connected`, `Connecting`, `StandAlone`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connections: BTreeMap<String, String>,
    /// Local volumes by number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<u32, DrbdVolumeObserved>,
}

/// One local DRBD volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrbdVolumeObserved {
    /// `UpToDate`, `Inconsistent`, `Diskless`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_state: Option<String>,
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
    /// `Established`, `SyncSource`, `SyncTarget`, `Off`, ...
    pub replication: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_disk: Option<String>,
    /// Resync progress in percent while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<f64>,
}

/// Replication states in which the data of a volume is being brought up to date.
pub fn is_resync_state(state: &str) -> bool {
    matches!(
        state,
        "StartingSyncS"
            | "StartingSyncT"
            | "WFBitMapS"
            | "WFBitMapT"
            | "WFSyncUUID"
            | "SyncSource"
            | "SyncTarget"
            | "PausedSyncS"
            | "PausedSyncT"
    )
}

impl DrbdVolumeObserved {
    pub fn is_up_to_date(&self) -> bool {
        self.disk_state.as_deref() == Some("UpToDate")
    }

    /// The state as people read it: `SyncTarget(45.12%)` while receiving a resync, the disk
    /// state otherwise.
    pub fn summary(&self) -> String {
        let receiving = self
            .peers
            .values()
            .find(|p| matches!(p.replication.as_str(), "SyncTarget" | "PausedSyncT"));
        match (receiving, self.disk_state.as_deref()) {
            (Some(p), _) => match p.done {
                Some(done) => format!("{}({done:.2}%)", p.replication),
                None => p.replication.clone(),
            },
            (None, Some(d)) => d.to_string(),
            (None, None) => "Unknown".to_string(),
        }
    }
}

impl DrbdObserved {
    /// The resource is in use here (DRBD Primary).
    pub fn in_use(&self) -> Option<bool> {
        self.role.as_deref().map(|r| r == "Primary")
    }

    /// Every local volume is UpToDate (or intentionally diskless) and no resync runs towards
    /// any peer.
    pub fn is_synced(&self) -> bool {
        !self.volumes.is_empty()
            && self.volumes.values().all(|v| {
                let disk_ok = match v.disk_state.as_deref() {
                    Some("UpToDate") => true,
                    Some("Diskless") => v.client,
                    _ => false,
                };
                disk_ok && v.peers.values().all(|p| !is_resync_state(&p.replication))
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
