//! `resource-definition clone`: a new definition with the data of an existing one at one
//! moment. The controller takes a snapshot of the source first (so every replica's copy is
//! of the same moment, with DRBD I/O suspended while it is taken), then this plan creates
//! the clone from it in one transaction: definition, volume definitions, and a resource on
//! every node that holds a copy, each volume made from that copy by the provider (a thin
//! snapshot, a reflink copy, a ZFS clone).

use super::rd::{build_rd, created_rd_reply, rd_of, refuse_if_deleting, RscDfnCreate};
use super::snapshot::{restore_resources, restore_volume_definitions};
use super::{Env, Observed, Plan, PlanResult};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::name::ResourceName;
use crate::objects::ResourceDefinition;
use crate::props::{PropsChange, PropsOwner};

/// What the clone request asks for.
#[derive(Debug, Clone, Default)]
pub struct CloneRequest {
    pub name: Option<String>,
    pub external_name: Option<String>,
    /// Group of the clone; default: the source's.
    pub resource_group: Option<String>,
    /// Changes to the properties copied from the source.
    pub props: PropsChange,
}

/// The snapshot a clone is made from (named after the clone, within the name limit).
pub fn snapshot_name(clone: &ResourceName) -> String {
    let mut name = format!("CF_{clone}");
    name.truncate(48);
    name
}

/// The clone's definition as it would be created now: the request checked against the
/// cluster (source present and not being deleted, name free), nothing changed.
pub fn check(
    cluster: &Cluster,
    env: &mut dyn Env,
    src: &str,
    req: &CloneRequest,
) -> Result<ResourceDefinition, ApiError> {
    let source = rd_of(cluster, src)?;
    refuse_if_deleting(source)?;
    if !cluster
        .resources_of(&source.name)
        .any(|r| !r.is_deleting() && !r.is_diskless())
    {
        return Err(ApiError::new(
            code::FAIL_NOT_FOUND_RSC,
            ObjKind::RscDfn,
            format!("Resource definition '{src}' has no replica with data to clone"),
        )
        .correction("Create a resource of it first"));
    }
    let props = req
        .props
        .apply(PropsOwner::ResourceDefinition, &source.props)
        .map_err(|e| super::prop_error(ObjKind::RscDfn, e))?;
    let mut rd = build_rd(
        cluster,
        env,
        &RscDfnCreate {
            name: req.name.clone(),
            external_name: req.external_name.clone(),
            props,
            resource_group: Some(
                req.resource_group
                    .clone()
                    .filter(|g| !g.is_empty())
                    .unwrap_or_else(|| source.resource_group.to_string()),
            ),
            ..Default::default()
        },
    )?;
    rd.layer_stack = source.layer_stack.clone();
    rd.drbd_peer_slots = source.drbd_peer_slots;
    rd.drbd_transport = source.drbd_transport.clone();
    Ok(rd)
}

/// Creates the clone of `src` from its snapshot `snap`: definition, volume definitions and
/// resources, all or nothing.
pub fn create(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    src: &str,
    snap: &str,
    req: &CloneRequest,
) -> PlanResult {
    let rd = check(cluster, env, src, req)?;
    let dst = rd.name.to_string();
    let mut plan = Plan::new();
    plan.reply(created_rd_reply(&rd));
    let mut work = cluster.clone();
    let step = |work: &mut Cluster, plan: &mut Plan, p: Plan| {
        for c in &p.changes {
            work.apply(c.clone());
        }
        plan.extend(p);
    };
    let first = Plan {
        changes: vec![Change::PutRscDfn(rd)],
        replies: Vec::new(),
    };
    step(&mut work, &mut plan, first);
    let vds = restore_volume_definitions(&work, env, observed, src, snap, &dst)?;
    step(&mut work, &mut plan, vds);
    let rscs = restore_resources(&work, env, observed, src, snap, &dst, &[])?;
    step(&mut work, &mut plan, rscs);
    Ok(plan)
}
