//! The desired state of one node, as its satellite receives it.

use std::collections::{BTreeMap, BTreeSet};

use strata_agent_api::{
    InitialSync, NodeConfig, NodeConfigDelta, PoolConfig, ResourceConfig, SnapshotConfig,
    SnapshotVolumeConfig, VolumeConfig, VolumeRestore,
};
use strata_drbd::config as drbd;
use strata_model::kinds::LayerKind;
use strata_model::objects::{
    backing_volume_name, Node, Resource, ResourceDefinition, SnapshotState,
};
use strata_model::plan::drbd as rules;
use strata_model::{Cluster, NodeName, ResourceName};

/// The address DRBD uses on `node`: the interface named by its `PrefNic` property, else the
/// one the satellite is reached on, else the first.
fn drbd_address(node: &Node) -> Option<String> {
    let pref = node.props.get("PrefNic");
    node.net_interfaces
        .iter()
        .find(|n| pref.is_some_and(|p| n.name.as_str() == p.as_str()))
        .or_else(|| node.satellite_interface())
        .or_else(|| node.net_interfaces.first())
        .map(|n| n.address.clone())
}

/// `DrbdOptions/...` properties in effect for resource `r`: controller, then resource group,
/// then definition, then resource, each overriding the one before.
fn drbd_props<'a>(
    cluster: &'a Cluster,
    rd: &'a ResourceDefinition,
    r: &'a Resource,
) -> BTreeMap<&'a str, &'a str> {
    let mut merged = BTreeMap::new();
    let rg = cluster.rsc_grps.get(&rd.resource_group).map(|g| &g.props);
    for props in [
        Some(&cluster.ctrl_props),
        rg,
        Some(&rd.props),
        Some(&r.props),
    ]
    .into_iter()
    .flatten()
    {
        for (k, v) in props.iter() {
            if k.starts_with("DrbdOptions/") {
                merged.insert(k.as_str(), v.as_str());
            }
        }
    }
    merged
}

/// The DRBD resource `r` belongs to, as its node sees it.
fn drbd_resource(cluster: &Cluster, rd: &ResourceDefinition, r: &Resource) -> drbd::Resource {
    let live: Vec<&Resource> = cluster
        .resources_of(&rd.name)
        .filter(|p| !p.is_deleting())
        .collect();
    let hosts: Vec<drbd::Host> = live
        .iter()
        .filter_map(|p| {
            Some(drbd::Host {
                name: p.node.to_string(),
                node_id: p.node_id?,
                address: drbd_address(cluster.nodes.get(&p.node)?)?,
                port: p.tcp_port?,
                diskless: p.is_diskless(),
            })
        })
        .collect();
    let volumes = rd
        .volume_definitions
        .values()
        .filter(|vd| !vd.is_deleting())
        .filter_map(|vd| {
            Some(drbd::Volume {
                number: vd.number,
                minor: vd.minor?,
            })
        })
        .collect();
    let mut options = drbd::Options::from_properties(drbd_props(cluster, rd, r));
    if let Some((quorum, on_loss)) = rules::auto_quorum(cluster, rd, &live) {
        if options.get("Resource", "quorum").is_none() {
            options.set("Resource", "quorum", &quorum);
            if options.get("Resource", "on-no-quorum").is_none() {
                options.set("Resource", "on-no-quorum", &on_loss);
            }
        }
    }
    drbd::Resource {
        name: rd.name.to_string(),
        peer_slots: r.peer_slots.unwrap_or(rules::DEFAULT_PEER_SLOTS),
        al_stripes: rules::DEFAULT_AL_STRIPES,
        al_stripe_size_kib: rules::DEFAULT_AL_STRIPE_SIZE_KIB,
        secret: rd.drbd_secret.clone(),
        transport: rd.drbd_transport.clone(),
        options,
        volumes,
        connections: connections(cluster, rd, r, &hosts),
        hosts,
    }
}

/// The overrides on the connections of `r`'s node: net and peer-device options set on its
/// resource connections, with peers among `hosts` (a peer being deleted is not).
fn connections(
    cluster: &Cluster,
    rd: &ResourceDefinition,
    r: &Resource,
    hosts: &[drbd::Host],
) -> Vec<drbd::Connection> {
    let host = |n: &NodeName| {
        hosts
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(n.as_str()))
            .map(|h| h.name.clone())
    };
    cluster
        .connections_of(&rd.name)
        .filter(|c| c.joins(&r.node))
        .filter_map(|c| {
            let hosts = [host(&c.node_a)?, host(&c.node_b)?];
            let mut options = drbd::Options::from_properties(
                c.props.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let net = options.sections.remove("Net").unwrap_or_default();
            let peer_device = options.sections.remove("PeerDevice").unwrap_or_default();
            (!net.is_empty() || !peer_device.is_empty()).then_some(drbd::Connection {
                hosts,
                net,
                peer_device,
            })
        })
        .collect()
}

/// Whether `r` is the one resource that starts the data of its (new) DRBD resource, and how:
/// the diskful resource with the lowest node id does it; without copying when every diskful
/// backing volume reads zeroes when new, unless `DrbdOptions/ForceInitialSync` says otherwise.
/// The satellite acts only while every disk is still `Inconsistent`, so once the resource has
/// data this changes nothing.
fn initial_sync(cluster: &Cluster, rd: &ResourceDefinition, r: &Resource) -> Option<InitialSync> {
    if r.is_diskless() {
        return None;
    }
    // Restored from copies of one moment, the replicas hold the same data.
    let restored = r.restored_from.is_some() || r.cloned_from.is_some();
    let diskful: Vec<&Resource> = cluster
        .resources_of(&rd.name)
        .filter(|p| !p.is_deleting() && !p.is_diskless() && p.node_id.is_some())
        .collect();
    let first = diskful.iter().min_by_key(|p| p.node_id)?;
    if first.node != r.node {
        return None;
    }
    // Adopted volumes bring their own data and DRBD metadata: nothing is forced on them.
    if rd
        .volume_definitions
        .values()
        .any(|vd| vd.props.contains_key(OVERRIDE_VLM_ID))
    {
        return None;
    }
    let force = drbd_props(cluster, rd, r)
        .get("DrbdOptions/ForceInitialSync")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let zeroed = diskful.iter().all(|p| {
        p.volumes.values().all(|v| {
            cluster
                .stor_pool(&p.node, &v.storage_pool)
                .is_some_and(|sp| sp.kind.new_volumes_read_zeroes())
        })
    });
    Some(if (zeroed || restored) && !force {
        InitialSync::Skip
    } else {
        InitialSync::Full
    })
}

/// The configuration of resource `r` on its node, or `None` when the node should not have
/// it (it, or its definition, is being deleted).
fn resource_config(cluster: &Cluster, r: &Resource) -> Option<ResourceConfig> {
    if !r.flags.is_empty() && r.is_deleting() {
        return None;
    }
    let rd = cluster.rsc_dfns.get(&r.name)?;
    if !rd.flags.is_empty() && rd.is_deleting() {
        return None;
    }
    let drbd = rd
        .layer_stack
        .contains(&LayerKind::Drbd)
        .then(|| drbd_resource(cluster, rd, r));
    let volumes = r
        .volumes
        .values()
        .filter_map(|v| {
            let vd = rd.volume_definitions.get(&v.number)?;
            if vd.is_deleting() {
                return None;
            }
            let backing_name = backing_name_of(cluster, &r.name, v.number)?;
            let adopt = vd.props.contains_key(OVERRIDE_VLM_ID);
            // With DRBD, the backing volume holds the metadata too; AllowLargerVolumeSize
            // asks for the net size only (an adopted volume brings its own room).
            let size_kib = match &drbd {
                Some(d)
                    if vd.props.get("AllowLargerVolumeSize").map(String::as_str)
                        != Some("true") =>
                {
                    strata_drbd::meta::gross_kib(
                        vd.size_kib,
                        d.peer_slots,
                        d.al_stripes,
                        d.al_stripe_size_kib,
                    )
                }
                _ => vd.size_kib,
            };
            let restore_from = r.restored_from.as_ref().and_then(|src| {
                Some(VolumeRestore {
                    volume: backing_name_of(cluster, &src.rsc_name, v.number)?,
                    snapshot: src.snapshot.to_string(),
                })
            });
            // Copied from the source's volume on this node, in the same pool.
            let copy_from = r.cloned_from.as_ref().and_then(|src| {
                let sv = cluster.resource(src, &r.node)?.volumes.get(&v.number)?;
                (sv.storage_pool == v.storage_pool)
                    .then(|| backing_name_of(cluster, src, v.number))?
            });
            Some(VolumeConfig {
                number: v.number,
                size_kib,
                pool: v.storage_pool.to_string(),
                backing_name,
                restore_from,
                adopt,
                copy_from,
                net_kib: drbd.as_ref().map(|_| vd.size_kib),
            })
        })
        .collect();
    let initial_sync = drbd.as_ref().and_then(|_| initial_sync(cluster, rd, r));
    Some(ResourceConfig {
        name: r.name.to_string(),
        layers: rd.layer_stack.clone(),
        diskless: r.is_diskless(),
        volumes,
        drbd,
        initial_sync,
    })
}

fn pool_configs(cluster: &Cluster, node: &NodeName) -> Vec<PoolConfig> {
    cluster
        .pools_on(node)
        .map(|sp| PoolConfig {
            name: sp.name.to_string(),
            kind: sp.kind,
            props: sp.props.clone(),
        })
        .collect()
}

/// Everything `node` should have at the cluster's current generation. Objects being deleted
/// are left out, so that the satellite removes them.
pub fn build(cluster: &Cluster, cluster_id: &str, node: &NodeName) -> NodeConfig {
    NodeConfig {
        generation: cluster.generation,
        cluster_id: cluster_id.to_string(),
        node_name: node.to_string(),
        pools: pool_configs(cluster, node),
        resources: cluster
            .resources_on(node)
            .filter_map(|r| resource_config(cluster, r))
            .collect(),
        snapshots: snapshots(cluster, node),
    }
}

/// What a node's next configuration must carry beyond the one it holds: the resources whose
/// configuration may have changed, whether its snapshots did, or everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    pub full: bool,
    pub resources: BTreeSet<ResourceName>,
    pub snapshots: bool,
}

impl Dirty {
    pub fn merge(&mut self, other: Dirty) {
        self.full |= other.full;
        self.snapshots |= other.snapshots;
        self.resources.extend(other.resources);
    }
}

/// The configuration of `node` at the cluster's current generation as the changes to the one
/// it holds at `base`, given what changed since (`dirty`, which must not be `full`).
pub fn delta(
    cluster: &Cluster,
    cluster_id: &str,
    node: &NodeName,
    base: u64,
    dirty: &Dirty,
) -> NodeConfigDelta {
    let mut upsert = Vec::new();
    let mut remove = Vec::new();
    for name in &dirty.resources {
        match cluster
            .resource(name, node)
            .and_then(|r| resource_config(cluster, r))
        {
            Some(rc) => upsert.push(rc),
            None => remove.push(name.to_string()),
        }
    }
    NodeConfigDelta {
        generation: cluster.generation,
        base,
        cluster_id: cluster_id.to_string(),
        node_name: node.to_string(),
        pools: pool_configs(cluster, node),
        upsert,
        remove,
        snapshots: dirty.snapshots.then(|| snapshots(cluster, node)),
    }
}

/// Names the backing volume of a volume definition: the administrator's existing volume.
const OVERRIDE_VLM_ID: &str = "OverrideVlmId";

/// Name of the backing volume of volume `number` of `rsc` (OverrideVlmId, which can only be
/// set on volume definitions, or `<resource>_<nnnnn>`); `None` without the definition.
fn backing_name_of(cluster: &Cluster, rsc: &ResourceName, number: u32) -> Option<String> {
    let vd = cluster.rsc_dfns.get(rsc)?.volume_definitions.get(&number)?;
    Some(
        vd.props
            .get(OVERRIDE_VLM_ID)
            .cloned()
            .unwrap_or_else(|| backing_volume_name(rsc, number)),
    )
}

/// The snapshots `node` should hold or take; those being deleted are left out.
fn snapshots(cluster: &Cluster, node: &NodeName) -> Vec<SnapshotConfig> {
    cluster
        .snapshots
        .values()
        .flat_map(|m| m.values())
        .filter(|s| s.state != SnapshotState::Deleting)
        .filter_map(|s| {
            let on = s.on(node)?;
            let volumes = on
                .volumes
                .iter()
                .filter_map(|v| {
                    Some(SnapshotVolumeConfig {
                        number: v.number,
                        pool: v.storage_pool.to_string(),
                        backing_name: backing_name_of(cluster, &s.rsc_name, v.number)?,
                    })
                })
                .collect();
            Some(SnapshotConfig {
                resource: s.rsc_name.to_string(),
                name: s.name.to_string(),
                volumes,
                suspend_io: s.suspends_io()
                    && cluster
                        .resource(&s.rsc_name, node)
                        .is_some_and(|r| !r.is_deleting()),
                take: s.state == SnapshotState::Taking,
                rollback: s.rollback.map(|r| strata_agent_api::RollbackConfig {
                    id: r.id,
                    down_only: r.down_only,
                }),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::flags::Flag;
    use strata_model::kinds::{NodeType, ProviderKind};
    use strata_model::objects::{
        NetInterface, ResourceConnection, ResourceGroup, StorPool, Volume, VolumeDefinition,
        DEFAULT_RSC_GRP,
    };
    use strata_model::{Change, NetIfName, ResourceGroupName, ResourceName, StorPoolName};

    fn name(n: &str) -> NodeName {
        NodeName::new(n).unwrap()
    }

    /// `r1` with DRBD on node1..node3 (node ids 0..2).
    fn cluster() -> Cluster {
        let mut c = Cluster::default();
        let rg = ResourceGroupName::new(DEFAULT_RSC_GRP).unwrap();
        c.apply(Change::PutRscGrp(ResourceGroup {
            name: rg.clone(),
            description: String::new(),
            props: Default::default(),
            select_filter: Default::default(),
            peer_slots: None,
            volume_groups: Default::default(),
            uuid: "rg".into(),
        }));
        let pool = StorPoolName::new("pool1").unwrap();
        let rsc = ResourceName::new("r1").unwrap();
        let mut rd = strata_model::objects::ResourceDefinition {
            name: rsc.clone(),
            external_name: None,
            props: Default::default(),
            flags: Default::default(),
            layer_stack: vec![LayerKind::Drbd, LayerKind::Storage],
            layers_chosen: false,
            resource_group: rg,
            volume_definitions: Default::default(),
            drbd_port: None,
            drbd_secret: Some("secret".into()),
            drbd_peer_slots: None,
            drbd_transport: None,
            delete_generation: None,
            uuid: "rd".into(),
        };
        rd.volume_definitions.insert(
            0,
            VolumeDefinition {
                number: 0,
                size_kib: 1 << 20,
                props: Default::default(),
                flags: Default::default(),
                minor: Some(1000),
                delete_generation: None,
                uuid: "vd".into(),
            },
        );
        c.apply(Change::PutRscDfn(rd));
        for i in 0..3u32 {
            let node = name(&format!("node{}", i + 1));
            c.apply(Change::PutNode(Node {
                name: node.clone(),
                node_type: NodeType::Satellite,
                props: Default::default(),
                flags: Default::default(),
                net_interfaces: vec![NetInterface {
                    name: NetIfName::new("default").unwrap(),
                    address: format!("10.0.0.{}", i + 1),
                    satellite_port: Some(3366),
                    encryption: None,
                    is_active: true,
                    uuid: format!("nif{i}"),
                }],
                uuid: format!("n{i}"),
            }));
            c.apply(Change::PutStorPool(StorPool {
                node: node.clone(),
                name: pool.clone(),
                kind: ProviderKind::FileThin,
                props: Default::default(),
                free_space_mgr_name: None,
                external_locking: false,
                uuid: format!("sp{i}"),
            }));
            let mut r = Resource {
                name: rsc.clone(),
                node,
                props: Default::default(),
                flags: Default::default(),
                volumes: Default::default(),
                node_id: Some(i),
                tcp_port: Some(7000),
                peer_slots: Some(7),
                create_timestamp: 0,
                delete_generation: None,
                uuid: format!("r{i}"),
                restored_from: None,
                migrate_from: None,
                cloned_from: None,
            };
            r.volumes.insert(
                0,
                Volume {
                    number: 0,
                    storage_pool: pool.clone(),
                    props: Default::default(),
                    flags: Default::default(),
                    uuid: format!("v{i}"),
                },
            );
            c.apply(Change::PutRsc(r));
        }
        c
    }

    fn drbd_of(c: &Cluster, node: &str) -> drbd::Resource {
        let cfg = build(c, "cluster", &name(node));
        cfg.resources[0].drbd.clone().unwrap()
    }

    #[test]
    fn connection_options_reach_both_ends_only() {
        let mut c = cluster();
        assert!(drbd_of(&c, "node1").connections.is_empty());
        c.apply(Change::PutRscConn(ResourceConnection {
            name: ResourceName::new("r1").unwrap(),
            node_a: name("node1"),
            node_b: name("node3"),
            props: [
                ("DrbdOptions/Net/protocol", "A"),
                ("DrbdOptions/PeerDevice/c-max-rate", "300M"),
                ("Aux/why", "wan link"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            flags: Default::default(),
            uuid: "c".into(),
        }));
        for node in ["node1", "node3"] {
            let conns = drbd_of(&c, node).connections;
            assert_eq!(conns.len(), 1, "{node}");
            assert_eq!(conns[0].hosts, ["node1".to_string(), "node3".to_string()]);
            assert_eq!(conns[0].net["protocol"], "A");
            assert_eq!(conns[0].peer_device["c-max-rate"], "300M");
            assert_eq!(conns[0].net.len() + conns[0].peer_device.len(), 2);
        }
        assert!(drbd_of(&c, "node2").connections.is_empty());
        // A peer on its way out is no host any more, and no connection either.
        let mut gone = c
            .resource(&ResourceName::new("r1").unwrap(), &name("node3"))
            .unwrap()
            .clone();
        gone.flags.insert(Flag::Delete);
        c.apply(Change::PutRsc(gone));
        let d = drbd_of(&c, "node1");
        assert_eq!(d.hosts.len(), 2);
        assert!(d.connections.is_empty());
    }
}
