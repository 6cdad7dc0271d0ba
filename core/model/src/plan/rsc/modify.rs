//! Properties of a resource and of its volumes.

use super::shared::rsc_of;
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::plan::common::by_volume_number;
use crate::plan::{prop_error, Plan, PlanResult, Reply};
use crate::props::{PropsChange, PropsOwner};

pub fn modify_resource(
    cluster: &Cluster,
    rsc: &str,
    node: &str,
    change: &PropsChange,
) -> PlanResult {
    let r = rsc_of(cluster, rsc, node)?;
    let mut u = r.clone();
    u.props = change
        .apply(PropsOwner::Resource, &r.props)
        .map_err(|e| prop_error(ObjKind::Rsc, e))?;
    let mut plan = Plan::new();
    plan.change(Change::PutRsc(u));
    for r in crate::plan::drbd_option_replies(ObjKind::Rsc, change) {
        plan.reply(r);
    }
    plan.reply(Reply::modified(
        ObjKind::Rsc,
        format!("Resource '{}' on node '{}' modified.", r.name, r.node),
    ));
    Ok(plan)
}

pub fn modify_volume(
    cluster: &Cluster,
    rsc: &str,
    node: &str,
    nr: i64,
    change: &PropsChange,
) -> PlanResult {
    let r = rsc_of(cluster, rsc, node)?;
    let Some(v) = by_volume_number(&r.volumes, nr) else {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_VLM,
            ObjKind::Vlm,
            "volume",
            &format!("{nr}' of resource '{rsc}' on node '{node}"),
        ));
    };
    let mut u = r.clone();
    let mut uv = v.clone();
    uv.props = change
        .apply(PropsOwner::Volume, &v.props)
        .map_err(|e| prop_error(ObjKind::Vlm, e))?;
    u.volumes.insert(uv.number, uv);
    let mut plan = Plan::new();
    plan.change(Change::PutRsc(u));
    plan.reply(Reply::modified(
        ObjKind::Vlm,
        format!(
            "Volume {nr} of resource '{}' on node '{}' modified.",
            r.name, r.node
        ),
    ));
    Ok(plan)
}
