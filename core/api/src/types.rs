//! Request and response bodies of the LINSTOR REST API v1, field for field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lenient;
use crate::rc::ApiCallRc;

pub type Props = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerVersion {
    pub version: String,
    pub git_hash: String,
    pub build_time: String,
    pub rest_api_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetInterface {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub address: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub satellite_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satellite_encryption_type: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub is_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub node_type: String,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub props: Props,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub net_interfaces: Vec<NetInterface>,
    /// Create only (an extension of ours): the one-time token the node's satellite joins
    /// the cluster with; the controller makes one when it is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default)]
    pub storage_providers: Vec<String>,
    #[serde(default)]
    pub resource_layers: Vec<String>,
    #[serde(default)]
    pub unsupported_providers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub unsupported_layers: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction_timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_variant: Option<String>,
}

/// Modification of properties, as every `*Modify` body carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PropsModify {
    #[serde(default, skip_serializing_if = "Props::is_empty")]
    pub override_props: Props,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub delete_props: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub delete_namespaces: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeModify {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
    #[serde(flatten)]
    pub props: PropsModify,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoragePoolDefinition {
    #[serde(default)]
    pub storage_pool_name: String,
    #[serde(default)]
    pub props: Props,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoragePool {
    #[serde(default)]
    pub storage_pool_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    #[serde(default)]
    pub provider_kind: String,
    #[serde(default)]
    pub props: Props,
    #[serde(default)]
    pub static_traits: Props,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_space_mgr_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default)]
    pub reports: Vec<ApiCallRc>,
    #[serde(default)]
    pub supports_snapshots: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_space: Option<String>,
    #[serde(default)]
    pub external_locking: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrbdResourceDefinitionLayer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name_suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_slots: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub al_stripes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub al_stripe_size_kib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceDefinitionLayer {
    #[serde(rename = "type")]
    pub layer_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DrbdResourceDefinitionLayer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceDefinition {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
    #[serde(default)]
    pub props: Props,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub flags: Vec<String>,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub layer_data: Vec<ResourceDefinitionLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_definitions: Option<Vec<VolumeDefinition>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceDefinitionCreate {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub drbd_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd_secret: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub drbd_peer_slots: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd_transport_type: Option<String>,
    #[serde(default)]
    pub resource_definition: ResourceDefinition,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceDefinitionModify {
    #[serde(flatten)]
    pub props: PropsModify,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub drbd_port: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub drbd_peer_slots: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_stack: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrbdVolumeDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name_suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_number: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor_number: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeDefinitionLayer {
    #[serde(rename = "type")]
    pub layer_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DrbdVolumeDefinition>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeDefinition {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub volume_number: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub size_kib: Option<i64>,
    #[serde(default)]
    pub props: Props,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub flags: Vec<String>,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub layer_data: Vec<VolumeDefinitionLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeDefinitionCreate {
    #[serde(default)]
    pub volume_definition: VolumeDefinition,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub drbd_minor_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeDefinitionModify {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub size_kib: Option<i64>,
    #[serde(flatten)]
    pub props: PropsModify,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub flags: Vec<String>,
    /// This suite's extension: allows the size to go down (`vd set-size --allow-shrink`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_shrink: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageVolume {
    #[serde(default)]
    pub volume_number: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_size_kib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usable_size_kib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageResource {
    #[serde(default)]
    pub storage_volumes: Vec<StorageVolume>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrbdConnection {
    #[serde(default)]
    pub connected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrbdVolume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd_volume_definition: Option<DrbdVolumeDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing_device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_disk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_size_kib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usable_size_kib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_meta_stor_pool: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrbdResource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd_resource_definition: Option<DrbdResourceDefinitionLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp_ports: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_slots: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub al_stripes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub al_size: Option<i64>,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub drbd_volumes: Vec<DrbdVolume>,
    #[serde(default)]
    pub connections: BTreeMap<String, DrbdConnection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_score: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_promote: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceLayer {
    #[serde(default)]
    pub children: Vec<ResourceLayer>,
    #[serde(default)]
    pub resource_name_suffix: String,
    #[serde(rename = "type")]
    pub layer_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd: Option<DrbdResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageResource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_use: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub node_name: String,
    #[serde(default)]
    pub props: Props,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_object: Option<ResourceLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ResourceState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_timestamp: Option<i64>,
}

/// The per-layer data of a volume; which shape it has depends on the layer type.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeLayerData {
    Drbd(DrbdVolume),
    Storage(StorageVolume),
    Other(serde_json::Value),
}

impl VolumeLayerData {
    pub fn drbd(&self) -> Option<&DrbdVolume> {
        match self {
            VolumeLayerData::Drbd(d) => Some(d),
            _ => None,
        }
    }
}

impl Serialize for VolumeLayerData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            VolumeLayerData::Drbd(d) => d.serialize(s),
            VolumeLayerData::Storage(v) => v.serialize(s),
            VolumeLayerData::Other(v) => v.serialize(s),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VolumeLayer {
    #[serde(rename = "type")]
    pub layer_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<VolumeLayerData>,
}

impl<'de> Deserialize<'de> for VolumeLayer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            layer_type: String,
            #[serde(default)]
            data: Option<serde_json::Value>,
        }
        let raw = Raw::deserialize(d)?;
        let data = match raw.data {
            None => None,
            Some(v) => Some(match raw.layer_type.as_str() {
                "DRBD" => VolumeLayerData::Drbd(
                    serde_json::from_value(v).map_err(serde::de::Error::custom)?,
                ),
                "STORAGE" => VolumeLayerData::Storage(
                    serde_json::from_value(v).map_err(serde::de::Error::custom)?,
                ),
                _ => VolumeLayerData::Other(v),
            }),
        };
        Ok(VolumeLayer {
            layer_type: raw.layer_type,
            data,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicationState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_percentage: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_state: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replication_states: BTreeMap<String, ReplicationState>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub volume_number: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_pool_name: Option<String>,
    #[serde(default)]
    pub provider_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_size_kib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usable_size_kib: Option<i64>,
    #[serde(default)]
    pub props: Props,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<VolumeState>,
    #[serde(default)]
    pub layer_data_list: Vec<VolumeLayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default)]
    pub reports: Vec<ApiCallRc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceWithVolumes {
    #[serde(flatten)]
    pub resource: Resource,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceCreate {
    #[serde(default)]
    pub resource: Resource,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub layer_list: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub drbd_node_id: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub drbd_tcp_port_count: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub drbd_tcp_ports: Vec<i64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub snap_names: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub copy_all_snaps: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub drbd_client: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceMakeAvailable {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub layer_list: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub diskful: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceModify {
    #[serde(flatten)]
    pub props: PropsModify,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd_tiebreaker: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drbd_client: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeModify {
    #[serde(flatten)]
    pub props: PropsModify,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoSelectFilter {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub place_count: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub additional_place_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name_list: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_pool_list: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_pool_diskless_list: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_place_with_rsc: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_place_with_rsc_regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_on_same: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_on_different: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_replicas_on_different_map: Option<BTreeMap<String, i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_stack: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_list: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub diskless_on_remaining: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diskless_type: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_f64"
    )]
    pub overprovision: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub port_count: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoPlaceRequest {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_bool"
    )]
    pub diskless_on_remaining: Option<bool>,
    #[serde(default)]
    pub select_filter: AutoSelectFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_list: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroup {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub props: Props,
    #[serde(default)]
    pub select_filter: AutoSelectFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub peer_slots: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroupModify {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub props: PropsModify,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_filter: Option<AutoSelectFilter>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub peer_slots: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroupSpawn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_definition_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_definition_external_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub volume_sizes: Vec<i64>,
    #[serde(default)]
    pub select_filter: AutoSelectFilter,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub partial: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub definitions_only: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub peer_slots: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub volume_passphrases: Vec<String>,
    #[serde(default, skip_serializing_if = "Props::is_empty")]
    pub resource_definition_props: Props,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeGroup {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub volume_number: Option<i64>,
    #[serde(default)]
    pub props: Props,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeGroupModify {
    #[serde(flatten)]
    pub props: PropsModify,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub storage_pool: String,
    pub max_volume_size_kib: i64,
    pub node_names: Vec<String>,
    pub all_thin: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaxVolumeSizes {
    pub candidates: Vec<Candidate>,
    pub default_max_oversubscription_ratio: f64,
}

/// `POST .../query-size-info` and `.../query-all-size-info`: a filter laid over the group's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuerySizeInfoRequest {
    #[serde(default)]
    pub select_filter: Option<AutoSelectFilter>,
    /// Reports are always the last ones received; accepted for compatibility.
    #[serde(default)]
    pub ignore_cache_older_than_sec: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuerySizeInfoSpawnResult {
    pub node_name: String,
    pub stor_pool_name: String,
    pub stor_pool_oversubscription_ratio: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuerySizeInfoSpaceInfo {
    pub max_vlm_size_in_kib: i64,
    pub available_size_in_kib: i64,
    pub capacity_in_kib: i64,
    pub default_max_oversubscription_ratio: f64,
    pub next_spawn_result: Vec<QuerySizeInfoSpawnResult>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuerySizeInfoResponse {
    pub space_info: QuerySizeInfoSpaceInfo,
    #[serde(default)]
    pub reports: Vec<crate::ApiCallRc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryAllSizeInfoResponse {
    pub result: std::collections::BTreeMap<String, QuerySizeInfoResponse>,
    #[serde(default)]
    pub reports: Vec<crate::ApiCallRc>,
}

/// The connection between the resources of one definition on two nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceConnection {
    #[serde(default)]
    pub node_a: String,
    #[serde(default)]
    pub node_b: String,
    #[serde(default)]
    pub props: Props,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub flags: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub port: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub drbd_proxy_port_a: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub drbd_proxy_port_b: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceConnectionModify {
    #[serde(flatten)]
    pub props: PropsModify,
}

/// A snapshot of a resource definition (also the body of `POST .../snapshots`: `name` and
/// optionally `nodes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub resource_name: String,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub props: Props,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub flags: Vec<String>,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub volume_definitions: Vec<SnapshotVolumeDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub snapshots: Vec<SnapshotNode>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotVolumeDefinition {
    #[serde(default, deserialize_with = "lenient::i64")]
    pub volume_number: i64,
    #[serde(default, deserialize_with = "lenient::i64")]
    pub size_kib: i64,
}

/// A snapshot's copy on one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotNode {
    #[serde(default)]
    pub snapshot_name: String,
    #[serde(default)]
    pub node_name: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub create_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub flags: Vec<String>,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub snapshot_volumes: Vec<SnapshotVolumeNode>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotVolumeNode {
    #[serde(default, deserialize_with = "lenient::i64")]
    pub vlm_nr: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Body of the snapshot restore calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRestore {
    #[serde(default)]
    pub to_resource: String,
    #[serde(default, deserialize_with = "lenient::null_vec")]
    pub nodes: Vec<String>,
}

/// Body of `PUT .../resources/{node}/toggle-disk`: which way, and optionally the pool of the
/// new disk and the node to delete once it is in sync.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToggleDiskRequest {
    /// `INTO_DRBD_DISKFUL`, `INTO_DRBD_DISKLESS` or `INTO_DRBD_CLIENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_from: Option<String>,
}

/// Body of `POST /v1/resource-definitions/{rsc}/clone`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceDefinitionCloneRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_group: Option<String>,
}

/// Body of `POST .../snapshot-rollback/{snap}`; empty unless a ZFS strategy is chosen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRollback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zfs_rollback_strategy: Option<String>,
}

/// Body of `POST /v1/resource-groups/{rg}/adjust` and `.../adjustall`; empty unless a filter
/// is laid over the groups'.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroupAdjust {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_filter: Option<AutoSelectFilter>,
}

/// Body of `PATCH /v1/error-reports`: the reports to delete. Times are milliseconds since the
/// epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorReportDelete {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub nodes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient::null_vec"
    )]
    pub ids: Vec<String>,
}

/// The bodies clients send: the `linstor` command line, as python-linstor (the upstream
/// client) sends them, and the Docker volume plugin. A field left unset stays off the wire;
/// the full types above are also the controller's answers, so they send every field, empty or
/// not (`"name": ""`, `"flags": []`, `"props": {}`), and LINSTOR reads an absent name as one
/// to derive from `external_name` but an empty one as a bad name. Where python-linstor always
/// sends a field and the plugin never does, the field says both: the `flags` of a new volume
/// definition are `Some` for an empty list sent, `diskless_on_remaining` of an auto-place is
/// `Some(None)` for `null` sent.
pub mod request {
    use serde::{Deserialize, Deserializer, Serialize};

    use super::{AutoSelectFilter, Props, ResourceDefinitionLayer};

    fn is_false(b: &bool) -> bool {
        !*b
    }

    /// Reads a field that is there, `null` included, as `Some`; with `#[serde(default)]` an
    /// absent one is `None`.
    fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }

    /// Body of `POST /v1/nodes`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Node {
        pub name: String,
        #[serde(rename = "type")]
        pub node_type: String,
        #[serde(default, skip_serializing_if = "Props::is_empty")]
        pub props: Props,
        #[serde(default)]
        pub net_interfaces: Vec<super::NetInterface>,
        /// The satellite's one-time join token (an extension of ours).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub join_token: Option<String>,
    }

    /// Body of `PUT /v1/nodes/{node}/net-interfaces/{netif}`: the address only when it changes.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct NetInterface {
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub satellite_port: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub satellite_encryption_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub is_active: Option<bool>,
    }

    /// Body of `POST /v1/nodes/{node}/storage-pools`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct StoragePool {
        pub storage_pool_name: String,
        pub provider_kind: String,
        #[serde(default, skip_serializing_if = "Props::is_empty")]
        pub props: Props,
        /// The shared space of the pool, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub free_space_mgr_name: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        pub external_locking: bool,
    }

    /// Body of `POST /v1/storage-pool-definitions`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct StoragePoolDefinition {
        pub storage_pool_name: String,
    }

    /// The definition of `POST /v1/resource-definitions`: `name` or `external_name`, and the
    /// layer stack (`{"type": "drbd"}`, ...) when one is chosen.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ResourceDefinition {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub external_name: Option<String>,
        #[serde(default, skip_serializing_if = "Props::is_empty")]
        pub props: Props,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub layer_data: Vec<ResourceDefinitionLayer>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resource_group_name: Option<String>,
    }

    /// Body of `POST /v1/resource-definitions`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ResourceDefinitionCreate {
        pub resource_definition: ResourceDefinition,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub drbd_port: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub drbd_peer_slots: Option<i64>,
    }

    /// The volume definition of `POST .../volume-definitions`, numbered by the controller
    /// unless `volume_number` is given. python-linstor always sends `flags`, an empty list
    /// included: `Some`; `None` leaves it off.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct VolumeDefinition {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub volume_number: Option<i64>,
        pub size_kib: i64,
        #[serde(default, skip_serializing_if = "Props::is_empty")]
        pub props: Props,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub flags: Option<Vec<String>>,
    }

    /// Body of `POST .../volume-definitions`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct VolumeDefinitionCreate {
        pub volume_definition: VolumeDefinition,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub drbd_minor_number: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub passphrase: Option<String>,
    }

    /// A resource of `POST .../resources`: the node, properties such as `StorPoolName`, and
    /// flags such as `DRBD_DISKLESS`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Resource {
        pub node_name: String,
        #[serde(default, skip_serializing_if = "Props::is_empty")]
        pub props: Props,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub flags: Vec<String>,
    }

    /// One element of the list `POST .../resources` takes.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ResourceCreate {
        pub resource: Resource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub drbd_node_id: Option<i64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub layer_list: Vec<String>,
    }

    /// Body of `POST .../autoplace`. python-linstor always sends `diskless_on_remaining`,
    /// `null` when it is left open: `Some(None)`; `None` leaves it off.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct AutoPlaceRequest {
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        pub diskless_on_remaining: Option<Option<bool>>,
        #[serde(default)]
        pub select_filter: AutoSelectFilter,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub layer_list: Vec<String>,
    }

    /// Body of `POST /v1/resource-groups`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct ResourceGroup {
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        #[serde(default)]
        pub select_filter: AutoSelectFilter,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub peer_slots: Option<i64>,
    }

    /// Body of `POST /v1/resource-groups/{rg}/volume-groups`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct VolumeGroup {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub volume_number: Option<i64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub flags: Vec<String>,
    }

    /// Body of `POST .../snapshots` (without `resource_name`: the path names it), and one
    /// snapshot of `POST /v1/actions/snapshot/multi`. No nodes: every diskful node.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct Snapshot {
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resource_name: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub nodes: Vec<String>,
    }

    /// Body of `POST /v1/actions/snapshot/multi`.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct CreateMultiSnapshotRequest {
        pub snapshots: Vec<Snapshot>,
    }

    /// Body of the snapshot restore calls; no nodes: every node that holds the snapshot.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct SnapshotRestore {
        pub to_resource: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub nodes: Vec<String>,
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn unset_fields_stay_off_the_wire() {
            let rd = ResourceDefinitionCreate {
                resource_definition: ResourceDefinition {
                    external_name: Some("my.vol".into()),
                    props: [("Aux/a".to_string(), "1".to_string())].into(),
                    ..Default::default()
                },
                ..Default::default()
            };
            assert_eq!(
                serde_json::to_string(&rd).unwrap(),
                r#"{"resource_definition":{"external_name":"my.vol","props":{"Aux/a":"1"}}}"#
            );
            let r = ResourceCreate {
                resource: Resource {
                    node_name: "alpha".into(),
                    ..Default::default()
                },
                ..Default::default()
            };
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                r#"{"resource":{"node_name":"alpha"}}"#
            );
            let sp = StoragePool {
                storage_pool_name: "dl".into(),
                provider_kind: "DISKLESS".into(),
                ..Default::default()
            };
            assert_eq!(
                serde_json::to_string(&sp).unwrap(),
                r#"{"storage_pool_name":"dl","provider_kind":"DISKLESS"}"#
            );
            let back: AutoPlaceRequest =
                serde_json::from_str(r#"{"select_filter":{"place_count":"2"}}"#).unwrap();
            assert_eq!(back.select_filter.place_count, Some(2));
        }

        #[test]
        fn what_python_linstor_always_sends_is_there_when_set() {
            let mut vd = VolumeDefinitionCreate {
                volume_definition: VolumeDefinition {
                    size_kib: 1024,
                    ..Default::default()
                },
                ..Default::default()
            };
            assert_eq!(
                serde_json::to_string(&vd).unwrap(),
                r#"{"volume_definition":{"size_kib":1024}}"#
            );
            vd.volume_definition.flags = Some(Vec::new());
            assert_eq!(
                serde_json::to_string(&vd).unwrap(),
                r#"{"volume_definition":{"size_kib":1024,"flags":[]}}"#
            );
            let mut a = AutoPlaceRequest::default();
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                r#"{"select_filter":{}}"#
            );
            a.diskless_on_remaining = Some(None);
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                r#"{"diskless_on_remaining":null,"select_filter":{}}"#
            );
            for (text, want) in [
                (r#"{"select_filter":{}}"#, None),
                (r#"{"diskless_on_remaining":null}"#, Some(None)),
                (r#"{"diskless_on_remaining":true}"#, Some(Some(true))),
            ] {
                let back: AutoPlaceRequest = serde_json::from_str(text).unwrap();
                assert_eq!(back.diskless_on_remaining, want, "{text}");
            }
        }
    }
}
