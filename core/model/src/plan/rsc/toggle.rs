//! `resource toggle-disk`: giving a diskless resource a disk or taking its disk away, and the
//! migration (`--migrate-from`) that deletes the old replica once the new disk is up to date.

use super::delete::delete_resource;
use super::layers::layers_str;
use super::pools::{check_room, resolve_pool, total_size};
use super::shared::{live_resources, rsc_of, tb_pool};
use super::tiebreaker::TieBreakerCheck;
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::flags::Flag;
use crate::kinds::{LayerKind, ProviderKind};
use crate::name::{NodeName, ResourceName, StorPoolName};
use crate::objects::{Resource, ResourceDefinition, StorPool};
use crate::plan::common::{rd_of, refuse_if_deleting};
use crate::plan::{parse_node_name, parse_pool_name, Env, Observed, Op, Plan, PlanResult, Reply};

/// `resource toggle-disk`: give a diskless resource a disk, or take its disk away.
#[derive(Debug, Clone, Default)]
pub struct ToggleDisk {
    pub diskful: bool,
    /// The pool to toggle into (a DISKLESS one to become diskless).
    pub storage_pool: Option<String>,
    /// Delete the resource on this node once the new disk is up to date.
    pub migrate_from: Option<String>,
}

/// Turns the diskless resource of `rsc` on `node` into a diskful one (DRBD then fills the new
/// disk from its peers) or the other way round (refused while it holds the only up-to-date
/// copy). Needs the DRBD layer; the tie-breaker follows the new replica count.
pub fn toggle_disk(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
    node: &str,
    req: &ToggleDisk,
) -> PlanResult {
    let r = rsc_of(cluster, rsc, node)?;
    let rd = rd_of(cluster, rsc)?;
    refuse_if_deleting(rd)?;
    refuse_toggle(rd, r)?;
    if req.diskful != r.is_diskless() {
        return Ok(Plan::only(nothing_to_toggle(r, req.diskful)));
    }
    let (pool, sp) = target_pool(cluster, rd, r, req)?;
    let mut u = r.clone();
    if let Some(from) = migration_source(cluster, rd, r, req)? {
        u.migrate_from = Some(from);
    }
    if req.diskful {
        check_room(cluster, observed, sp, total_size(rd))?;
        u.flags.remove(Flag::Diskless);
        u.flags.remove(Flag::DrbdDiskless);
        u.flags.remove(Flag::TieBreaker);
    } else {
        refuse_removing_last_disk(cluster, observed, rd, r)?;
        u.flags.insert(Flag::DrbdDiskless);
    }
    u.props.insert("StorPoolName".into(), pool.to_string());
    for v in u.volumes.values_mut() {
        v.storage_pool = pool.clone();
    }
    let mut plan = Plan::new();
    let live: Vec<&Resource> = live_resources(cluster, &rd.name)
        .into_iter()
        .map(|o| if o.node == u.node { &u } else { o })
        .collect();
    TieBreakerCheck {
        cluster,
        observed,
        rd,
        live: &live,
        keep: false,
    }
    .make_move(&mut plan, env)?;
    plan.change(Change::PutRsc(u.clone()));
    plan.reply(toggled_reply(r, &pool, req.diskful));
    Ok(plan)
}

/// Refuses to toggle a resource that is being deleted, or one whose definition lacks the
/// DRBD layer (without it a resource cannot be diskless).
fn refuse_toggle(rd: &ResourceDefinition, r: &Resource) -> Result<(), ApiError> {
    if r.is_deleting() {
        return Err(ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::Rsc,
            format!(
                "Resource '{}' on node '{}' is being deleted",
                r.name, r.node
            ),
        ));
    }
    if !rd.layer_stack.contains(&LayerKind::Drbd) {
        return Err(ApiError::new(
            code::FAIL_INVLD_LAYER_STACK,
            ObjKind::Rsc,
            format!(
                "Resource '{}' has no DRBD layer (layers '{}'): without it a resource cannot be diskless",
                r.name,
                layers_str(&rd.layer_stack)
            ),
        )
        .correction("Toggle only resources of definitions with the DRBD layer; otherwise create or delete the resource"));
    }
    Ok(())
}

/// The answer when the resource already is what the request asks it to become.
fn nothing_to_toggle(r: &Resource, diskful: bool) -> Reply {
    let what = if diskful { "has a disk" } else { "is diskless" };
    Reply::warning(
        Op::Modify,
        ObjKind::Rsc,
        code::WARN_NO_EFFECT,
        format!(
            "Resource '{}' already {what} on node '{}'; nothing to do.",
            r.name, r.node
        ),
    )
    .with_rsc_refs(r)
}

/// The storage pool the resource toggles into: the one the request names, else the pool a
/// diskful resource would get, else the default diskless pool. It must exist on the node and
/// be DISKLESS exactly when the resource becomes diskless.
fn target_pool<'a>(
    cluster: &'a Cluster,
    rd: &ResourceDefinition,
    r: &Resource,
    req: &ToggleDisk,
) -> Result<(StorPoolName, &'a StorPool), ApiError> {
    let pool = match &req.storage_pool {
        Some(p) => parse_pool_name(p)?,
        None if req.diskful => {
            // The resource's own StorPoolName names its diskless pool now.
            let mut props = r.props.clone();
            props.remove("StorPoolName");
            resolve_pool(cluster, rd, &props, &r.node, false)?
        }
        None => tb_pool(),
    };
    let Some(sp) = cluster.stor_pool(&r.node, &pool) else {
        return Err(ApiError::new(
            code::FAIL_NOT_FOUND_STOR_POOL,
            ObjKind::Rsc,
            format!("Storage pool '{pool}' not found on node '{}'", r.node),
        )
        .correction(if req.diskful {
            "Name an existing storage pool of that node with --storage-pool"
        } else {
            "Create the diskless pool on that node first, or name one with --storage-pool"
        }));
    };
    let diskless_pool = sp.kind == ProviderKind::Diskless;
    if req.diskful == diskless_pool {
        return Err(ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::Rsc,
            if req.diskful {
                format!("Storage pool '{pool}' is DISKLESS; a disk needs a pool with storage")
            } else {
                format!(
                    "A diskless resource needs a DISKLESS storage pool, '{pool}' is {}",
                    sp.kind
                )
            },
        ));
    }
    Ok((pool, sp))
}

/// The node named by `--migrate-from`, if any: it must hold a diskful replica other than
/// `r`, and the toggle must be into a disk.
fn migration_source(
    cluster: &Cluster,
    rd: &ResourceDefinition,
    r: &Resource,
    req: &ToggleDisk,
) -> Result<Option<NodeName>, ApiError> {
    let Some(from) = &req.migrate_from else {
        return Ok(None);
    };
    let from = parse_node_name(from)?;
    let source = cluster
        .resource(&rd.name, &from)
        .filter(|s| !s.is_deleting() && !s.is_diskless() && s.node != r.node);
    if !req.diskful || source.is_none() {
        return Err(ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::Rsc,
            format!(
                "Resource '{}' has no replica with a disk on node '{from}' to migrate from",
                r.name
            ),
        )
        .correction("Name another node holding a diskful replica, and toggle into a disk"));
    }
    Ok(Some(from))
}

/// Refuses to take the disk of `r` while it holds the only up-to-date copy, or when it is
/// the only replica with a disk.
fn refuse_removing_last_disk(
    cluster: &Cluster,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    r: &Resource,
) -> Result<(), ApiError> {
    crate::plan::safety::check_not_only_copy(cluster, observed, rd, r, "made diskless", &[])?;
    let others = cluster
        .resources_of(&rd.name)
        .any(|o| o.node != r.node && !o.is_deleting() && !o.is_diskless());
    if !others {
        return Err(ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::Rsc,
            format!(
                "Resource '{}' on node '{}' is the only replica with a disk; without it there would be no data",
                r.name, r.node
            ),
        )
        .correction("Create a replica on another node and wait for it to sync first ('linstor resource-definition wait-sync')"));
    }
    Ok(())
}

/// What the toggle of `r` into `pool` does, in words.
fn toggled_reply(r: &Resource, pool: &StorPoolName, diskful: bool) -> Reply {
    Reply::modified(
        ObjKind::Rsc,
        if diskful {
            format!(
                "Resource '{}' on node '{}' gets a disk in storage pool '{pool}'; DRBD fills it from its peers.",
                r.name, r.node
            )
        } else {
            format!(
                "Resource '{}' on node '{}' is now diskless; its disk is removed.",
                r.name, r.node
            )
        },
    )
    .with_rsc_refs(r)
}

/// The migrations (`toggle-disk --migrate-from`) on `node` whose new disks are up to date:
/// (resource, node to delete it on).
pub fn migrations_due(
    cluster: &Cluster,
    observed: &dyn Observed,
    node: &NodeName,
) -> Vec<(ResourceName, NodeName)> {
    cluster
        .migrations_on(node)
        .filter(|r| !r.is_deleting())
        .filter_map(|r| {
            let from = r.migrate_from.clone()?;
            let d = observed.drbd_state(node, &r.name)?;
            let done = r
                .volumes
                .keys()
                .all(|n| d.volumes.get(n).is_some_and(|v| v.is_up_to_date()));
            done.then(|| (r.name.clone(), from))
        })
        .collect()
}

/// Finishes the migration to `node`: the resource on `from` is deleted (with the usual
/// checks) and the migration forgotten.
pub fn finish_migration(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &ResourceName,
    node: &NodeName,
    from: &NodeName,
) -> PlanResult {
    let Some(r) = cluster
        .resource(rsc, node)
        .filter(|r| r.migrate_from.as_ref() == Some(from))
    else {
        return Ok(Plan::new());
    };
    let mut plan = if cluster
        .resource(rsc, from)
        .is_some_and(|s| !s.is_deleting())
    {
        delete_resource(cluster, env, observed, rsc.as_str(), from.as_str(), false)?
    } else {
        Plan::new()
    };
    let mut u = r.clone();
    u.migrate_from = None;
    plan.change(Change::PutRsc(u));
    Ok(plan)
}
