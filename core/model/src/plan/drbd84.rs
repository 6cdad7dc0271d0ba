//! What nodes with DRBD 8.4 can host. Every mainstream kernel ships the in-tree DRBD 8.4
//! module, so such nodes are worth supporting; but 8.4 replicates between exactly two hosts
//! and knows no node ids, tie-breakers or quorum. A resource on 8.4 nodes therefore has at
//! most two nodes (two diskful, or one diskful and one diskless), gets no automatic
//! tie-breaker, and may not ask for quorum. DRBD 9 and 8.4 nodes do not share a resource:
//! each satellite renders the configuration of its own DRBD version.

use super::Observed;
use crate::cluster::Cluster;
use crate::error::{code, ApiError, ObjKind};
use crate::name::NodeName;
use crate::objects::{Resource, ResourceDefinition};

/// Hosts a DRBD 8.4 resource can have.
pub const MAX_NODES: usize = 2;
/// Peers the metadata of a DRBD 8.4 volume (format v08) has room for; its size is that of
/// DRBD 9 metadata with one peer slot (checked with drbdmeta's `dump-md` for v08).
pub const PEER_SLOTS: u32 = 1;
/// The DRBD option that switches quorum on.
pub const PROP_QUORUM: &str = "DrbdOptions/Resource/quorum";

/// The DRBD major and version `node` runs, when it reported one.
pub fn version<'a>(observed: &'a dyn Observed, node: &NodeName) -> Option<(u32, &'a str)> {
    let caps = observed.capabilities(node)?;
    Some((caps.drbd_major()?, caps.drbd_version.as_deref()?))
}

/// The DRBD version of `node` when it is an 8.x one.
pub fn drbd8_version<'a>(observed: &'a dyn Observed, node: &NodeName) -> Option<&'a str> {
    version(observed, node).and_then(|(major, v)| (major < 9).then_some(v))
}

/// Whether `node` runs DRBD 8 (false when it runs 9 or has not said).
pub fn is_drbd8(observed: &dyn Observed, node: &NodeName) -> bool {
    drbd8_version(observed, node).is_some()
}

/// Whether a resource with `live` resources (every one it will have) is on DRBD 8.4 nodes.
pub fn any_drbd8(observed: &dyn Observed, live: &[&Resource]) -> bool {
    live.iter().any(|r| is_drbd8(observed, &r.node))
}

fn limit_error(message: String) -> ApiError {
    ApiError::new(
        code::FAIL_STLT_DOES_NOT_SUPPORT_LAYER,
        ObjKind::Rsc,
        message,
    )
}

/// Checks that the resources `live` (every one `rd` will have, tie-breaker not counted as
/// it is never added for 8.4) are something their DRBD versions can run together; answers
/// whether they are on DRBD 8.4 nodes.
pub fn check(
    cluster: &Cluster,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    live: &[&Resource],
) -> Result<bool, ApiError> {
    let known: Vec<(&Resource, u32, &str)> = live
        .iter()
        .filter_map(|r| version(observed, &r.node).map(|(m, v)| (*r, m, v)))
        .collect();
    let Some((old, _, old_version)) = known.iter().find(|(_, m, _)| *m < 9) else {
        return Ok(false);
    };
    if let Some((new, _, new_version)) = known.iter().find(|(_, m, _)| *m >= 9) {
        return Err(limit_error(format!(
            "Resource '{}' cannot span node '{}' (DRBD {old_version}) and node '{}' (DRBD {new_version})",
            rd.name, old.node, new.node
        ))
        .cause("Each node writes the configuration of its own DRBD version; DRBD 8.4 and DRBD 9 nodes do not share a resource")
        .correction("Place the resource on nodes of one DRBD version (linstor node info shows each node's DRBD version), or load DRBD 9 on the DRBD 8.4 nodes"));
    }
    if live.len() > MAX_NODES {
        let names: Vec<&str> = live.iter().map(|r| r.node.as_str()).collect();
        return Err(limit_error(format!(
            "Resource '{}' would have {} nodes ({}), but node '{}' runs DRBD {old_version}, which replicates between two nodes only",
            rd.name,
            live.len(),
            names.join(", "),
            old.node
        ))
        .cause("DRBD 8.4 has no node ids, tie-breakers or quorum: a resource has two diskful nodes, or one diskful and one diskless")
        .correction("Keep resources on DRBD 8.4 nodes to two nodes, or load DRBD 9 on the nodes (e.g. from drbd-dkms) for a third replica"));
    }
    if let Some(q) = cluster
        .effective_prop(PROP_QUORUM, None, Some(rd), None, None)
        .filter(|q| q != "off")
    {
        return Err(limit_error(format!(
            "Resource '{}' asks for DRBD quorum ({PROP_QUORUM}={q}), but node '{}' runs DRBD {old_version}, which has no quorum",
            rd.name, old.node
        ))
        .correction(format!(
            "Unset {PROP_QUORUM} where it is set (controller, resource group or 'linstor resource-definition drbd-options --unset-quorum {}'), or use DRBD 9 nodes",
            rd.name
        )));
    }
    Ok(true)
}
