//! What several planners ask of a resource definition: the definition a request names, and the
//! refusals that the planners of definitions, resources, connections and snapshots share; also
//! the entry a request names by volume number. It sits below all of them, so that they can use
//! it without importing each other.

use super::parse_rsc_name;
use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::name::ResourceName;
use crate::objects::{ResourceDefinition, VolumeNumber};
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

/// The entry of `map` that a request's volume number `nr` names; none for a number no volume
/// can have.
pub(crate) fn by_volume_number<V>(map: &VecMap<VolumeNumber, V>, nr: i64) -> Option<&V> {
    u32::try_from(nr).ok().and_then(|n| map.get(&n))
}
