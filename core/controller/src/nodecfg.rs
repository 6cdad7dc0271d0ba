//! The desired state of one node, as its satellite receives it.

use strata_agent_api::{NodeConfig, PoolConfig, ResourceConfig, VolumeConfig};
use strata_model::objects::backing_volume_name;
use strata_model::{Cluster, NodeName};

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
                Some(VolumeConfig {
                    number: v.number,
                    size_kib: vd.size_kib,
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
