//! Deleting resources: marking them, and finishing the deletion once their node confirms it.

use std::collections::BTreeSet;

use super::shared::mark_deleting;
use super::tiebreaker::rebalance_tiebreaker;
use crate::cluster::{Change, Cluster};
use crate::error::{code, ObjKind};
use crate::name::{NodeName, ResourceName};
use crate::objects::{Resource, ResourceDefinition};
use crate::plan::{parse_node_name, Env, Observed, Op, Plan, PlanResult, Reply};

/// Marks a resource for deletion; with DRBD, the tie-breaker follows the new replica count
/// unless `keep_tiebreaker`.
pub fn delete_resource(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
    node: &str,
    keep_tiebreaker: bool,
) -> PlanResult {
    let rsc_name = crate::plan::parse_rsc_name(rsc)?;
    let node_name = parse_node_name(node)?;
    let Some(r) = cluster.resource(&rsc_name, &node_name) else {
        return Ok(Plan::only(
            Reply::warning(
                Op::Delete,
                ObjKind::Rsc,
                code::WARN_NOT_FOUND,
                format!("Resource '{rsc}' not found on node '{node}'; nothing to delete."),
            )
            .with_ref("RscDfn", rsc)
            .with_ref("Node", node),
        ));
    };
    let mut plan = Plan::new();
    if !r.is_deleting() {
        let rd = cluster.rsc_dfns.get(&r.name);
        if let Some(rd) = rd {
            crate::plan::safety::check_resource_removal(cluster, observed, rd, r)?;
        }
        plan.change(Change::PutRsc(mark_deleting(cluster, r)));
        if let Some(rd) = rd {
            rebalance_tiebreaker(&mut plan, cluster, env, observed, rd, &[r], keep_tiebreaker)?;
        }
    }
    plan.reply(
        Reply::deleted(
            ObjKind::Rsc,
            format!(
                "Resource '{}' on node '{}' marked for deletion.",
                r.name, r.node
            ),
        )
        .with_rsc_refs(r),
    );
    Ok(plan)
}

/// Finishes deletions on `node` once it has applied configuration `applied` and no longer
/// has the objects. `present` tells which volumes of a resource the node still holds
/// (`None`: the node does not have the resource at all).
pub fn finish_deletions(
    cluster: &Cluster,
    node: &NodeName,
    applied: u64,
    present: &dyn Fn(&ResourceName) -> Option<Vec<u32>>,
) -> Plan {
    let mut plan = Plan::new();
    let mut touched_rds: BTreeSet<ResourceName> = BTreeSet::new();
    let pending: Vec<&Resource> = cluster
        .pending_deletions()
        .filter_map(|name| cluster.resource(name, node))
        .collect();
    for r in pending {
        let Some(rd) = cluster.rsc_dfns.get(&r.name) else {
            continue;
        };
        let held = present(&r.name);
        let touched = if r.is_deleting() {
            finish_resource(&mut plan, cluster, r, applied, held.is_none())
        } else {
            finish_volumes(&mut plan, rd, r, applied, held.as_deref())
        };
        if touched {
            touched_rds.insert(r.name.clone());
        }
    }
    // Definitions whose last resource or volume just went.
    for name in touched_rds {
        finish_definition(&mut plan, cluster, &name);
    }
    plan
}

/// Deletes the resource `r` (marked for deletion) and its connections once its node has
/// applied the deletion and no longer has it; whether it did.
fn finish_resource(
    plan: &mut Plan,
    cluster: &Cluster,
    r: &Resource,
    applied: u64,
    gone_from_node: bool,
) -> bool {
    if !(r.delete_generation.is_some_and(|g| g <= applied) && gone_from_node) {
        return false;
    }
    plan.changes.extend(crate::plan::rconn::drop_connections(
        cluster,
        &r.name,
        Some(&r.node),
    ));
    plan.change(Change::DelRsc(r.name.clone(), r.node.clone()));
    plan.reply(Reply::deleted(
        ObjKind::Rsc,
        format!("Resource '{}' on node '{}' deleted.", r.name, r.node),
    ));
    true
}

/// Drops from `r` the volumes whose definitions are being deleted, once the node has applied
/// that and no longer holds them (`held`); whether any went.
fn finish_volumes(
    plan: &mut Plan,
    rd: &ResourceDefinition,
    r: &Resource,
    applied: u64,
    held: Option<&[u32]>,
) -> bool {
    let gone: Vec<u32> = r
        .volumes
        .keys()
        .filter(|nr| {
            rd.volume_definitions.get(nr).is_some_and(|vd| {
                vd.is_deleting()
                    && vd.delete_generation.is_some_and(|g| g <= applied)
                    && !held.is_some_and(|h| h.contains(nr))
            })
        })
        .copied()
        .collect();
    if gone.is_empty() {
        return false;
    }
    let mut u = r.clone();
    for nr in &gone {
        u.volumes.remove(nr);
    }
    plan.change(Change::PutRsc(u));
    true
}

/// Deletes definition `name` when it is being deleted and `plan` removes its last resource;
/// otherwise drops its deleting volume definitions that no resource has any more.
fn finish_definition(plan: &mut Plan, cluster: &Cluster, name: &ResourceName) {
    let Some(rd) = cluster.rsc_dfns.get(name) else {
        return;
    };
    let remaining: Vec<&Resource> = cluster
        .resources_of(name)
        .filter(|r| {
            !plan
                .changes
                .iter()
                .any(|c| matches!(c, Change::DelRsc(rn, nn) if rn == &r.name && nn == &r.node))
        })
        .collect();
    if rd.is_deleting() && remaining.is_empty() {
        plan.change(Change::DelRscDfn(name.clone()));
        plan.reply(Reply::deleted(
            ObjKind::RscDfn,
            format!("Resource definition '{}' deleted.", rd.name),
        ));
        return;
    }
    let volumes_left = |nr: u32| {
        remaining.iter().any(|r| {
            let updated = plan.changes.iter().rev().find_map(|c| match c {
                Change::PutRsc(u) if u.name == r.name && u.node == r.node => Some(u),
                _ => None,
            });
            updated.unwrap_or(r).volumes.contains_key(&nr)
        })
    };
    let finished: Vec<u32> = rd
        .volume_definitions
        .values()
        .filter(|vd| vd.is_deleting() && !volumes_left(vd.number))
        .map(|vd| vd.number)
        .collect();
    if !finished.is_empty() {
        let mut u = rd.clone();
        for nr in finished {
            u.volume_definitions.remove(&nr);
            plan.reply(Reply::deleted(
                ObjKind::VlmDfn,
                format!("Volume definition {nr} of resource '{}' deleted.", rd.name),
            ));
        }
        plan.change(Change::PutRscDfn(u));
    }
}
