//! Between the domain model and the wire: objects out, requests in.

use std::collections::BTreeMap;

use strata_model::drbd_state::ConnectionState;
use strata_model::flags::Flags;
use strata_model::kinds::{ConnectionStatus, LayerKind, ProviderKind};
use strata_model::objects as m;
use strata_model::observed::{
    Capabilities, DrbdObserved, PoolState, ResourceState as ObservedRsc, VolumeState as ObservedVlm,
};
use strata_model::plan::rg::SelectFilterPatch;
use strata_model::plan::Reply;
use strata_model::{ApiError, ObjKind, PropsChange, StorPoolName};

use crate::rc::ApiCallRc;
use crate::types::*;

/// The names of an object's flags, in the order they are shown.
pub fn flag_names(flags: &Flags) -> Vec<String> {
    flags.names().map(str::to_string).collect()
}

pub fn props_change(m: &PropsModify) -> PropsChange {
    PropsChange {
        set: m.override_props.clone(),
        delete: m.delete_props.clone(),
        delete_namespaces: m.delete_namespaces.clone(),
    }
}

pub fn node(n: &m::Node, status: ConnectionStatus, caps: Option<&Capabilities>) -> Node {
    let (providers, layers, un_p, un_l, os) = match caps {
        Some(c) => (
            c.providers.iter().map(|p| p.to_string()).collect(),
            c.layers.iter().map(|l| l.to_string()).collect(),
            c.unsupported_providers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            c.unsupported_layers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            c.os_variant.clone(),
        ),
        None => Default::default(),
    };
    Node {
        name: n.name.to_string(),
        node_type: n.node_type.to_string(),
        flags: flag_names(&n.flags),
        props: n.props.clone(),
        net_interfaces: n.net_interfaces.iter().map(net_interface).collect(),
        join_token: None,
        connection_status: Some(status.to_string()),
        uuid: Some(n.uuid.clone()),
        storage_providers: providers,
        resource_layers: layers,
        unsupported_providers: un_p,
        unsupported_layers: un_l,
        eviction_timestamp: None,
        platform: caps.map(|_| "LINUX".to_string()),
        os_variant: os,
    }
}

pub fn net_interface(n: &m::NetInterface) -> NetInterface {
    NetInterface {
        name: n.name.to_string(),
        address: n.address.clone(),
        satellite_port: n.satellite_port.map(i64::from),
        satellite_encryption_type: n.encryption.map(|e| e.to_string()),
        is_active: Some(n.is_active),
        uuid: Some(n.uuid.clone()),
    }
}

pub fn stor_pool_dfn(d: &m::StorPoolDefinition) -> StoragePoolDefinition {
    StoragePoolDefinition {
        storage_pool_name: d.name.to_string(),
        props: d.props.clone(),
        uuid: Some(d.uuid.clone()),
    }
}

pub fn stor_pool(sp: &m::StorPool, state: Option<&PoolState>) -> StoragePool {
    let mut traits = BTreeMap::new();
    let thin = sp.kind.is_thin();
    if sp.kind != ProviderKind::Diskless {
        traits.insert(
            "Provisioning".to_string(),
            if thin { "Thin" } else { "Fat" }.to_string(),
        );
    }
    let supports_snapshots = state.is_some_and(|s| s.supports_snapshots);
    traits.insert(
        "SupportsSnapshots".to_string(),
        if supports_snapshots { "true" } else { "false" }.to_string(),
    );
    let (free, total) = match (sp.kind, state) {
        (ProviderKind::Diskless, _) => (Some(i64::MAX), Some(i64::MAX)),
        (_, Some(s)) => (
            Some(s.free_capacity_kib as i64),
            Some(s.total_capacity_kib as i64),
        ),
        (_, None) => (None, None),
    };
    let reports = state
        .map(|s| {
            s.errors
                .iter()
                .map(|e| {
                    ApiCallRc::from(&Reply::from_error(
                        strata_model::plan::Op::None,
                        ApiError::new(
                            strata_model::error::code::FAIL_STOR_POOL_CONFIGURATION_ERROR,
                            ObjKind::StorPool,
                            e.clone(),
                        ),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    StoragePool {
        storage_pool_name: sp.name.to_string(),
        node_name: Some(sp.node.to_string()),
        provider_kind: sp.kind.to_string(),
        props: sp.props.clone(),
        static_traits: traits,
        free_capacity: free,
        total_capacity: total,
        free_space_mgr_name: Some(
            sp.free_space_mgr_name
                .clone()
                .unwrap_or_else(|| format!("{}:{}", sp.node, sp.name)),
        ),
        uuid: Some(sp.uuid.clone()),
        reports,
        supports_snapshots,
        shared_space: sp.free_space_mgr_name.clone(),
        external_locking: sp.external_locking,
    }
}

fn drbd_rd_layer(rd: &m::ResourceDefinition) -> DrbdResourceDefinitionLayer {
    DrbdResourceDefinitionLayer {
        resource_name_suffix: Some(String::new()),
        peer_slots: rd.drbd_peer_slots.map(|p| p as i32),
        al_stripes: Some(1),
        al_stripe_size_kib: Some(32),
        port: rd.drbd_port.map(i32::from),
        transport_type: rd.drbd_transport.clone(),
        secret: rd.drbd_secret.clone(),
        down: Some(false),
    }
}

pub fn volume_definition(vd: &m::VolumeDefinition, layers: &[LayerKind]) -> VolumeDefinition {
    VolumeDefinition {
        volume_number: Some(vd.number as i64),
        size_kib: Some(vd.size_kib as i64),
        props: vd.props.clone(),
        flags: flag_names(&vd.flags),
        layer_data: layers
            .iter()
            .map(|l| VolumeDefinitionLayer {
                layer_type: l.to_string(),
                data: (*l == LayerKind::Drbd).then(|| DrbdVolumeDefinition {
                    resource_name_suffix: Some(String::new()),
                    volume_number: Some(vd.number as i32),
                    minor_number: vd.minor.map(|m| m as i32),
                }),
            })
            .collect(),
        uuid: Some(vd.uuid.clone()),
    }
}

pub fn resource_definition(rd: &m::ResourceDefinition, with_vds: bool) -> ResourceDefinition {
    ResourceDefinition {
        name: rd.name.to_string(),
        external_name: rd.external_name.clone(),
        props: rd.props.clone(),
        flags: flag_names(&rd.flags),
        layer_data: rd
            .layer_stack
            .iter()
            .map(|l| ResourceDefinitionLayer {
                layer_type: l.to_string(),
                data: (*l == LayerKind::Drbd).then(|| drbd_rd_layer(rd)),
            })
            .collect(),
        uuid: Some(rd.uuid.clone()),
        resource_group_name: Some(rd.resource_group.to_string()),
        volume_definitions: with_vds.then(|| {
            rd.volume_definitions
                .values()
                .map(|vd| volume_definition(vd, &rd.layer_stack))
                .collect()
        }),
    }
}

pub fn select_filter(f: &m::SelectFilter) -> AutoSelectFilter {
    fn opt_vec(v: &[String]) -> Option<Vec<String>> {
        (!v.is_empty()).then(|| v.to_vec())
    }
    AutoSelectFilter {
        place_count: f.place_count.map(i64::from),
        additional_place_count: f.additional_place_count.map(i64::from),
        node_name_list: opt_vec(&f.node_name_list),
        // LINSTOR fills the single pool only when the list has exactly one.
        storage_pool: match f.storage_pool_list.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        },
        storage_pool_list: opt_vec(&f.storage_pool_list),
        storage_pool_diskless_list: opt_vec(&f.storage_pool_diskless_list),
        not_place_with_rsc: opt_vec(&f.not_place_with_rsc),
        not_place_with_rsc_regex: f.not_place_with_rsc_regex.clone(),
        replicas_on_same: opt_vec(&f.replicas_on_same),
        replicas_on_different: opt_vec(&f.replicas_on_different),
        x_replicas_on_different_map: (!f.x_replicas_on_different_map.is_empty()).then(|| {
            f.x_replicas_on_different_map
                .iter()
                .map(|(k, v)| (k.clone(), i64::from(*v)))
                .collect()
        }),
        layer_stack: (!f.layer_stack.is_empty())
            .then(|| f.layer_stack.iter().map(|l| l.to_string()).collect()),
        provider_list: (!f.provider_list.is_empty())
            .then(|| f.provider_list.iter().map(|p| p.to_string()).collect()),
        diskless_on_remaining: f.diskless_on_remaining,
        diskless_type: f.diskless_type.clone(),
        overprovision: f.overprovision,
        port_count: None,
    }
}

fn invalid(msg: String) -> ApiError {
    ApiError::new(
        strata_model::error::code::FAIL_INVLD_REQUEST,
        ObjKind::RscGrp,
        msg,
    )
}

fn count(v: Option<i64>, what: &str) -> Result<Option<u32>, ApiError> {
    match v {
        None => Ok(None),
        Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(ApiError::new(
            strata_model::error::code::FAIL_INVLD_PLACE_COUNT,
            ObjKind::RscGrp,
            format!("Invalid {what} {n}"),
        )
        .correction(format!("Give a {what} of 1 or more"))),
    }
}

fn layers(v: &Option<Vec<String>>) -> Result<Option<Vec<LayerKind>>, ApiError> {
    v.as_ref()
        .map(|items| strata_model::plan::parse_layer_stack(items, ObjKind::RscGrp))
        .transpose()
}

fn providers(v: &Option<Vec<String>>) -> Result<Option<Vec<ProviderKind>>, ApiError> {
    v.as_ref()
        .map(|items| {
            items
                .iter()
                .map(|p| {
                    p.parse::<ProviderKind>()
                        .map_err(|e| invalid(format!("Unknown provider '{p}': {e}")))
                })
                .collect()
        })
        .transpose()
}

fn x_map(v: &Option<BTreeMap<String, i64>>) -> Result<Option<BTreeMap<String, u32>>, ApiError> {
    v.as_ref()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    u32::try_from(*v)
                        .map(|n| (k.clone(), n))
                        .map_err(|_| invalid(format!("Invalid count {v} for '{k}'")))
                })
                .collect()
        })
        .transpose()
}

/// The storage pool list, folding in the single `storage_pool` older clients send.
fn pool_list(f: &AutoSelectFilter) -> Option<Vec<String>> {
    match (&f.storage_pool_list, &f.storage_pool) {
        (Some(list), _) if !list.is_empty() => Some(list.clone()),
        (_, Some(one)) if !one.is_empty() => Some(vec![one.clone()]),
        (Some(list), _) => Some(list.clone()),
        _ => None,
    }
}

pub fn select_filter_patch(f: &AutoSelectFilter) -> Result<SelectFilterPatch, ApiError> {
    Ok(SelectFilterPatch {
        place_count: count(f.place_count, "place count")?,
        additional_place_count: count(f.additional_place_count, "additional place count")?,
        node_name_list: f.node_name_list.clone(),
        storage_pool_list: pool_list(f),
        storage_pool_diskless_list: f.storage_pool_diskless_list.clone(),
        not_place_with_rsc: f.not_place_with_rsc.clone(),
        not_place_with_rsc_regex: f.not_place_with_rsc_regex.clone(),
        replicas_on_same: f.replicas_on_same.clone(),
        replicas_on_different: f.replicas_on_different.clone(),
        x_replicas_on_different_map: x_map(&f.x_replicas_on_different_map)?,
        layer_stack: layers(&f.layer_stack)?,
        provider_list: providers(&f.provider_list)?,
        diskless_on_remaining: f.diskless_on_remaining,
        diskless_type: f.diskless_type.clone(),
        overprovision: f.overprovision,
    })
}

pub fn select_filter_in(f: &AutoSelectFilter) -> Result<m::SelectFilter, ApiError> {
    Ok(select_filter_patch(f)?.apply(&m::SelectFilter::default()))
}

pub fn resource_group(rg: &m::ResourceGroup) -> ResourceGroup {
    ResourceGroup {
        name: rg.name.to_string(),
        description: rg.description.clone(),
        props: rg.props.clone(),
        select_filter: select_filter(&rg.select_filter),
        uuid: Some(rg.uuid.clone()),
        peer_slots: rg.peer_slots.map(i64::from),
    }
}

pub fn volume_group(vg: &m::VolumeGroup) -> VolumeGroup {
    VolumeGroup {
        volume_number: Some(vg.number as i64),
        props: vg.props.clone(),
        uuid: Some(vg.uuid.clone()),
        flags: flag_names(&vg.flags),
    }
}

/// What is known of a resource's DRBD state on its node.
#[derive(Debug, Clone, Copy)]
pub enum DrbdSeen<'a> {
    /// The node does not follow DRBD events (no DRBD layer, or offline): states come from the
    /// storage below.
    NotWatched,
    /// DRBD is followed but does not know the resource (not up yet).
    Missing,
    Seen(&'a DrbdObserved),
}

impl<'a> DrbdSeen<'a> {
    /// Whether DRBD's own state stands for a resource of `rd` (it has the DRBD layer and its
    /// node follows DRBD), and what DRBD says of it.
    pub fn standing_for(self, rd: &m::ResourceDefinition) -> (bool, Option<&'a DrbdObserved>) {
        let drbd = rd.layer_stack.contains(&LayerKind::Drbd);
        let watched = drbd && !matches!(self, DrbdSeen::NotWatched);
        let seen = match self {
            DrbdSeen::Seen(d) if drbd => Some(d),
            _ => None,
        };
        (watched, seen)
    }
}

fn replication_states(
    v: &strata_model::observed::DrbdVolumeObserved,
) -> BTreeMap<String, ReplicationState> {
    v.peers
        .iter()
        .map(|(peer, p)| {
            (
                peer.clone(),
                ReplicationState {
                    replication_state: Some(p.replication.to_string()),
                    done_percentage: p.done,
                },
            )
        })
        .collect()
}

/// A resource with its volumes as `/v1/view/resources` shows it, joined with what its node
/// reported.
pub fn resource_with_volumes(
    r: &m::Resource,
    rd: &m::ResourceDefinition,
    observed: Option<&ObservedRsc>,
    seen: DrbdSeen<'_>,
    pool_kind: &dyn Fn(&StorPoolName) -> Option<ProviderKind>,
) -> ResourceWithVolumes {
    let (watched, drbd_obs) = seen.standing_for(rd);
    let joined = Joined {
        r,
        rd,
        drbd: rd.layer_stack.contains(&LayerKind::Drbd),
        watched,
        drbd_obs,
    };
    let mut volumes = Vec::new();
    let mut storage_volumes = Vec::new();
    let mut drbd_volumes = Vec::new();
    for v in r.volumes.values() {
        let obs = observed.and_then(|o| o.volumes.iter().find(|x| x.volume_number == v.number));
        let kind = pool_kind(&v.storage_pool).unwrap_or(ProviderKind::Diskless);
        let parts = joined.volume(v, obs, kind);
        volumes.push(parts.volume);
        storage_volumes.push(parts.storage);
        drbd_volumes.extend(parts.drbd);
    }
    ResourceWithVolumes {
        resource: Resource {
            name: r.name.to_string(),
            node_name: r.node.to_string(),
            props: r.props.clone(),
            flags: flag_names(&r.flags),
            layer_object: Some(joined.layer_object(storage_volumes, drbd_volumes)),
            state: joined.state(observed),
            uuid: Some(r.uuid.clone()),
            create_timestamp: Some(r.create_timestamp),
        },
        volumes,
        shared_name: None,
    }
}

/// A resource and what DRBD says of it, as [`resource_with_volumes`] joins them.
struct Joined<'a> {
    r: &'a m::Resource,
    rd: &'a m::ResourceDefinition,
    /// The definition has the DRBD layer.
    drbd: bool,
    /// DRBD's own state stands for the resource (see [`DrbdSeen::standing_for`]).
    watched: bool,
    drbd_obs: Option<&'a DrbdObserved>,
}

/// One volume as the resource lists it, and as its storage and DRBD layers show it.
struct VolumeParts {
    volume: Volume,
    storage: StorageVolume,
    drbd: Option<DrbdVolume>,
}

impl Joined<'_> {
    /// Volume `v`, joined with what its node reported of it (`obs`) and with DRBD's state.
    fn volume(&self, v: &m::Volume, obs: Option<&ObservedVlm>, kind: ProviderKind) -> VolumeParts {
        let device = obs.and_then(|o| o.device_path.clone());
        let allocated = obs.and_then(|o| o.allocated_kib).map(|k| k as i64);
        let usable = obs.and_then(|o| o.usable_kib).map(|k| k as i64);
        let storage_state = obs
            .map(|o| o.disk_state.to_string())
            .filter(|s| !s.is_empty());
        // With DRBD followed, the volume's state is DRBD's.
        let drbd_vlm = self.drbd_obs.and_then(|d| d.volumes.get(&v.number));
        let disk_state = if self.watched {
            drbd_vlm.and_then(|dv| dv.disk_state.as_ref().map(|d| d.to_string()))
        } else {
            storage_state.clone()
        };
        let storage = StorageVolume {
            volume_number: v.number as i32,
            device_path: if self.r.is_diskless() {
                None
            } else {
                device.clone()
            },
            allocated_size_kib: allocated,
            usable_size_kib: usable,
            disk_state: storage_state,
        };
        let drbd = self.drbd.then(|| DrbdVolume {
            drbd_volume_definition: Some(DrbdVolumeDefinition {
                resource_name_suffix: Some(String::new()),
                volume_number: Some(v.number as i32),
                minor_number: self
                    .rd
                    .volume_definitions
                    .get(&v.number)
                    .and_then(|vd| vd.minor)
                    .map(|m| m as i32),
            }),
            device_path: device.clone(),
            backing_device: obs.and_then(|o| o.backing_path.clone()),
            meta_disk: Some("internal".into()),
            allocated_size_kib: allocated,
            usable_size_kib: usable,
            disk_state: disk_state.clone(),
            ext_meta_stor_pool: None,
        });
        let reports = obs
            .and_then(|o| o.error.as_deref())
            .map(|e| vec![volume_error_report(e)])
            .unwrap_or_default();
        let volume = Volume {
            volume_number: v.number as i32,
            storage_pool_name: Some(v.storage_pool.to_string()),
            provider_kind: kind.to_string(),
            device_path: device,
            allocated_size_kib: allocated,
            usable_size_kib: usable,
            props: v.props.clone(),
            flags: flag_names(&v.flags),
            state: (obs.is_some() || drbd_vlm.is_some()).then(|| VolumeState {
                disk_state,
                replication_states: drbd_vlm.map(replication_states).unwrap_or_default(),
            }),
            layer_data_list: volume_layers(&storage, drbd.as_ref()),
            uuid: Some(v.uuid.clone()),
            reports,
        };
        VolumeParts {
            volume,
            storage,
            drbd,
        }
    }

    /// The resource's layer tree: DRBD over storage, or storage alone.
    fn layer_object(
        &self,
        storage_volumes: Vec<StorageVolume>,
        drbd_volumes: Vec<DrbdVolume>,
    ) -> ResourceLayer {
        let storage_layer = ResourceLayer {
            children: Vec::new(),
            resource_name_suffix: String::new(),
            layer_type: LayerKind::Storage.to_string(),
            drbd: None,
            storage: Some(StorageResource { storage_volumes }),
        };
        if !self.drbd {
            return storage_layer;
        }
        ResourceLayer {
            children: vec![storage_layer],
            resource_name_suffix: String::new(),
            layer_type: LayerKind::Drbd.to_string(),
            drbd: Some(self.drbd_resource(drbd_volumes)),
            storage: None,
        }
    }

    /// The DRBD layer of the resource, with what DRBD says of its connections and promotion.
    fn drbd_resource(&self, drbd_volumes: Vec<DrbdVolume>) -> DrbdResource {
        let (r, rd, drbd_obs) = (self.r, self.rd, self.drbd_obs);
        DrbdResource {
            drbd_resource_definition: Some(drbd_rd_layer(rd)),
            node_id: r.node_id.map(|n| n as i32),
            tcp_ports: r.tcp_port.map(i32::from).into_iter().collect(),
            peer_slots: r.peer_slots.or(rd.drbd_peer_slots).map(|p| p as i32),
            al_stripes: Some(1),
            al_size: Some(32),
            flags: Vec::new(),
            drbd_volumes,
            connections: drbd_obs.map(drbd_connections).unwrap_or_default(),
            promotion_score: drbd_obs
                .and_then(|d| d.promotion_score)
                .map(|p| p.min(i32::MAX as u64) as i32),
            may_promote: drbd_obs.and_then(|d| d.may_promote),
        }
    }

    /// Whether the resource is in use: DRBD's word when DRBD stands for it, else the node's.
    fn state(&self, observed: Option<&ObservedRsc>) -> Option<ResourceState> {
        if self.watched {
            self.drbd_obs
                .map(|d| ResourceState { in_use: d.in_use() })
                .or_else(|| observed.map(|_| ResourceState { in_use: None }))
        } else {
            observed.map(|o| ResourceState { in_use: o.in_use })
        }
    }
}

/// A volume's layers, top-most first: DRBD (when it has that layer), then storage.
fn volume_layers(storage: &StorageVolume, drbd: Option<&DrbdVolume>) -> Vec<VolumeLayer> {
    let drbd = drbd.map(|dv| VolumeLayer {
        layer_type: LayerKind::Drbd.to_string(),
        data: Some(VolumeLayerData::Drbd(dv.clone())),
    });
    let storage = VolumeLayer {
        layer_type: LayerKind::Storage.to_string(),
        data: Some(VolumeLayerData::Storage(storage.clone())),
    };
    drbd.into_iter().chain([storage]).collect()
}

/// DRBD's connections of a resource to its peers.
fn drbd_connections(d: &DrbdObserved) -> BTreeMap<String, DrbdConnection> {
    d.connections
        .iter()
        .map(|(peer, state)| {
            (
                peer.clone(),
                DrbdConnection {
                    connected: *state == ConnectionState::Connected,
                    message: Some(state.to_string()),
                },
            )
        })
        .collect()
}

/// The report a volume shows for the error its node met making it.
pub fn volume_error_report(error: &str) -> ApiCallRc {
    ApiCallRc::from(&Reply::from_error(
        strata_model::plan::Op::None,
        ApiError::new(
            strata_model::error::code::FAIL_UNKNOWN_ERROR,
            ObjKind::Vlm,
            error,
        ),
    ))
}

/// LINSTOR's flags for a snapshot's state: `SUCCESSFUL` once taken, `DELETE` while being
/// removed, none while being taken.
fn snapshot_flags(state: m::SnapshotState) -> Vec<String> {
    match state {
        m::SnapshotState::Successful => vec!["SUCCESSFUL".into()],
        m::SnapshotState::Deleting => vec!["DELETE".into()],
        m::SnapshotState::Suspending | m::SnapshotState::Taking => Vec::new(),
    }
}

pub fn snapshot(s: &m::SnapshotDefinition) -> Snapshot {
    let flags = snapshot_flags(s.state);
    Snapshot {
        name: s.name.to_string(),
        resource_name: s.rsc_name.to_string(),
        nodes: s.nodes.iter().map(|n| n.node.to_string()).collect(),
        props: s.props.clone(),
        flags: flags.clone(),
        volume_definitions: s
            .volumes
            .iter()
            .map(|v| SnapshotVolumeDefinition {
                volume_number: v.number as i64,
                size_kib: v.size_kib as i64,
            })
            .collect(),
        uuid: Some(s.uuid.clone()),
        snapshots: s
            .nodes
            .iter()
            .map(|n| SnapshotNode {
                snapshot_name: s.name.to_string(),
                node_name: n.node.to_string(),
                create_timestamp: Some(n.create_timestamp),
                flags: flags.clone(),
                snapshot_volumes: n
                    .volumes
                    .iter()
                    .map(|v| SnapshotVolumeNode {
                        vlm_nr: v.number as i64,
                        state: None,
                    })
                    .collect(),
            })
            .collect(),
    }
}
