//! The desired state of one node, as its satellite receives it.

use std::collections::BTreeMap;

use strata_agent_api::{NodeConfig, PoolConfig, ResourceConfig, VolumeConfig};
use strata_drbd::config as drbd;
use strata_model::kinds::LayerKind;
use strata_model::objects::{backing_volume_name, Node, Resource, ResourceDefinition};
use strata_model::plan::drbd as rules;
use strata_model::{Cluster, NodeName};

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
    let hosts = live
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
        hosts,
        connections: Vec::new(),
    }
}

/// Everything `node` should have at the cluster's current generation. Objects being deleted
/// are left out, so that the satellite removes them.
pub fn build(cluster: &Cluster, cluster_id: &str, node: &NodeName) -> NodeConfig {
    let pools = cluster
        .pools_on(node)
        .map(|sp| PoolConfig {
            name: sp.name.to_string(),
            kind: sp.kind,
            props: sp.props.clone(),
        })
        .collect();
    let mut resources = Vec::new();
    for r in cluster.resources_on(node) {
        if !r.flags.is_empty() && r.is_deleting() {
            continue;
        }
        let Some(rd) = cluster.rsc_dfns.get(&r.name) else {
            continue;
        };
        if !rd.flags.is_empty() && rd.is_deleting() {
            continue;
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
                // OverrideVlmId can only be set on volume definitions.
                let backing_name = vd
                    .props
                    .get("OverrideVlmId")
                    .cloned()
                    .unwrap_or_else(|| backing_volume_name(&r.name, v.number));
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
                Some(VolumeConfig {
                    number: v.number,
                    size_kib,
                    pool: v.storage_pool.to_string(),
                    backing_name,
                })
            })
            .collect();
        resources.push(ResourceConfig {
            name: r.name.to_string(),
            layers: rd.layer_stack.clone(),
            diskless: r.is_diskless(),
            volumes,
            drbd,
        });
    }
    NodeConfig {
        generation: cluster.generation,
        cluster_id: cluster_id.to_string(),
        node_name: node.to_string(),
        pools,
        resources,
    }
}
