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
