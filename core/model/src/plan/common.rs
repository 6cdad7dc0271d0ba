//! What several planners ask of a resource definition: the definition a request names, and the
//! refusals that the planners of definitions, resources, connections and snapshots share; also
//! the node a request puts storage on, and the entry a request names by volume number. It sits
//! below all of them, so that they can use it without importing each other.

use super::{parse_node_name, parse_rsc_name};
use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::name::{NodeName, ResourceName};
use crate::objects::{Node, ResourceDefinition, VolumeNumber};
use crate::vecmap::VecMap;

/// The resource definition a request names, which must exist.
pub fn rd_of<'a>(cluster: &'a Cluster, rsc: &str) -> Result<&'a ResourceDefinition, ApiError> {
    let name = parse_rsc_name(rsc)?;
    cluster.rsc_dfns.get(&name).ok_or_else(|| {
        ApiError::not_found(
            code::FAIL_NOT_FOUND_RSC_DFN,
            ObjKind::RscDfn,
            "resource definition",
            rsc,
        )
    })
}

/// Refuses to add to a definition that is being deleted.
pub(crate) fn refuse_if_deleting(rd: &ResourceDefinition) -> Result<(), ApiError> {
    if rd.is_deleting() {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::RscDfn,
            format!("Resource definition '{}' is being deleted", rd.name),
        )
        .correction("Wait until the deletion has finished, then create it again"));
    }
    Ok(())
}

/// Refuses to delete a definition that still has snapshots.
pub fn refuse_rd_delete_with_snapshots(
    cluster: &Cluster,
    rsc: &ResourceName,
) -> Result<(), ApiError> {
    let names: Vec<String> = cluster
        .snapshots_of(rsc)
        .map(|s| format!("'{}'", s.name))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        code::FAIL_EXISTS_SNAPSHOT_DFN,
        ObjKind::RscDfn,
        format!(
            "Resource definition '{rsc}' still has snapshots: {}",
            names.join(", ")
        ),
    )
    .correction(format!(
        "Delete them first ('linstor snapshot delete {rsc} NAME')"
    )))
}

/// The node a request names to put storage on (`object`s such as resources or storage
/// pools), by the name as the request writes it: it must exist and be of a type that can
/// `hold`, e.g. "hold resources".
pub(crate) fn storage_node<'a>(
    cluster: &'a Cluster,
    node: &str,
    object: ObjKind,
    hold: &str,
) -> Result<(NodeName, &'a Node), ApiError> {
    let name = parse_node_name(node)?;
    let Some(n) = cluster.nodes.get(&name) else {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_NODE,
            ObjKind::Node,
            "node",
            node,
        ));
    };
    if !n.node_type.hosts_storage() {
        return Err(ApiError::new(
            code::FAIL_INVLD_NODE_TYPE,
            object,
            format!(
                "Node '{}' is a {} node and cannot {hold}",
                n.name, n.node_type
            ),
        ));
    }
    Ok((name, n))
}

/// The entry of `map` that a request's volume number `nr` names; none for a number no volume
/// can have.
pub(crate) fn by_volume_number<V>(map: &VecMap<VolumeNumber, V>, nr: i64) -> Option<&V> {
    u32::try_from(nr).ok().and_then(|n| map.get(&n))
}
