//! Which storage pool a resource's volumes go to, and whether that pool has room for them.

use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::ProviderKind;
use crate::name::{NodeName, StorPoolName};
use crate::objects::{
    Resource, ResourceDefinition, StorPool, DEFAULT_DISKLESS_STOR_POOL, DEFAULT_STOR_POOL,
};
use crate::plan::autoplace::pool_room;
use crate::plan::{parse_pool_name, Observed};
use crate::props::Props;

/// The storage pool a resource on `node` uses when the request names none: the
/// `StorPoolName` property from the most specific object that has it, the resource group's
/// single storage pool, or the default pool.
pub fn resolve_pool(
    cluster: &Cluster,
    rd: &ResourceDefinition,
    rsc_props: &Props,
    node: &NodeName,
    diskless: bool,
) -> Result<StorPoolName, ApiError> {
    if diskless {
        let name = rsc_props
            .get("StorPoolName")
            .cloned()
            .unwrap_or_else(|| DEFAULT_DISKLESS_STOR_POOL.to_string());
        return parse_pool_name(&name);
    }
    let from_props = rsc_props
        .get("StorPoolName")
        .cloned()
        .or_else(|| cluster.effective_prop("StorPoolName", None, Some(rd), None, Some(node)));
    if let Some(name) = from_props {
        return parse_pool_name(&name);
    }
    if let Some(rg) = cluster.rsc_grps.get(&rd.resource_group) {
        if let [only] = rg.select_filter.storage_pool_list.as_slice() {
            return parse_pool_name(only);
        }
    }
    parse_pool_name(DEFAULT_STOR_POOL)
}

pub(crate) fn pool_for(
    cluster: &Cluster,
    rd: &ResourceDefinition,
    r: &Resource,
    node: &NodeName,
) -> Result<StorPoolName, ApiError> {
    resolve_pool(cluster, rd, &r.props, node, r.is_diskless())
}

/// Refuses a pool that is known to be too small; a pool whose node has not reported is given
/// the benefit of the doubt (its node is offline and the answer says so).
pub fn check_room(
    cluster: &Cluster,
    observed: &dyn Observed,
    sp: &StorPool,
    size_kib: u64,
) -> Result<(), ApiError> {
    if sp.kind == ProviderKind::Diskless || observed.pool_state(&sp.node, &sp.name).is_none() {
        return Ok(());
    }
    pool_room(cluster, observed, sp, size_kib, None)
        .map(|_| ())
        .map_err(|why| {
            ApiError::new(
                code::FAIL_NOT_ENOUGH_FREE_SPACE,
                ObjKind::Rsc,
                format!(
                    "Storage pool '{}' on node '{}' cannot hold {size_kib} KiB",
                    sp.name, sp.node
                ),
            )
            .cause(why)
            .correction("Free space in the pool, add capacity, or use another storage pool")
        })
}

pub(super) fn total_size(rd: &ResourceDefinition) -> u64 {
    rd.volume_definitions
        .values()
        .filter(|v| !v.is_deleting())
        .map(|v| v.size_kib)
        .sum()
}
