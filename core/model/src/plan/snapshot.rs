//! Snapshots of resource definitions: taking one on the definition's diskful nodes (in steps,
//! see [`SnapshotState`]), deleting it, and restoring it into another definition (volume
//! definitions first, then resources on nodes that hold the snapshot).

use super::common::{rd_of, refuse_if_deleting};
use super::rsc::create::{create_resources, RscCreate};
use super::{parse_node_name, parse_snapshot_name, Env, Observed, Op, Plan, PlanResult, Reply};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::ProviderKind;
use crate::name::{NodeName, ResourceName, SnapshotName};
use crate::objects::{
    Resource, ResourceDefinition, RestoreSource, Rollback, SnapshotDefinition, SnapshotOnNode,
    SnapshotState, SnapshotVolumeDefinition, SnapshotVolumeOnNode,
};
use crate::props::Props;

/// Storage pool kinds whose provider takes snapshots.
pub const SNAPSHOT_KINDS: &[ProviderKind] = &[
    ProviderKind::LvmThin,
    ProviderKind::FileThin,
    ProviderKind::Zfs,
    ProviderKind::ZfsThin,
];

#[derive(Debug, Clone, Default)]
pub struct SnapshotCreate {
    pub name: String,
    /// Nodes to take it on; empty: every diskful node of the definition.
    pub nodes: Vec<String>,
}

fn snapshot_ref(reply: Reply, rsc: &ResourceName, snap: &SnapshotName) -> Reply {
    reply
        .with_ref("RscDfn", rsc.as_str())
        .with_ref("Snapshot", snap.as_str())
}

fn not_found(rsc: &str, snap: &str) -> ApiError {
    ApiError::new(
        code::FAIL_NOT_FOUND_SNAPSHOT_DFN,
        ObjKind::Snapshot,
        format!("Snapshot '{snap}' of resource definition '{rsc}' not found"),
    )
    .correction("List the snapshots with 'linstor snapshot list'")
}

/// The snapshot `snap` of `rsc`, which must exist.
pub fn snapshot_of<'a>(
    cluster: &'a Cluster,
    rsc: &str,
    snap: &str,
) -> Result<&'a SnapshotDefinition, ApiError> {
    let rd = rd_of(cluster, rsc)?;
    let name = parse_snapshot_name(snap)?;
    cluster
        .snapshot(&rd.name, &name)
        .ok_or_else(|| not_found(rsc, snap))
}

/// Plans a new snapshot in its first state: DRBD I/O suspended on every involved node (or,
/// without DRBD, taking at once). Every involved node must be online and keep the volumes
/// in pools that take snapshots.
pub fn create(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
    req: &SnapshotCreate,
) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    refuse_if_deleting(rd)?;
    let name = parse_snapshot_name(&req.name)?;
    refuse_taken_or_busy(cluster, rd, &name)?;
    let volumes = snapshot_volumes(rd)?;
    let chosen = snapshot_resources(cluster, rd, req)?;
    let mut nodes = Vec::new();
    for r in chosen {
        nodes.push(snapshot_on_node(cluster, env, observed, r, &volumes)?);
    }
    let drbd = rd.layer_stack.contains(&crate::kinds::LayerKind::Drbd);
    let snap = SnapshotDefinition {
        rsc_name: rd.name.clone(),
        name: name.clone(),
        uuid: env.uuid(),
        state: if drbd {
            SnapshotState::Suspending
        } else {
            SnapshotState::Taking
        },
        delete_generation: None,
        volumes,
        nodes,
        props: Props::new(),
        layer_stack: rd.layer_stack.clone(),
        rollback: None,
    };
    let mut plan = Plan::new();
    plan.change(Change::PutSnapshot(snap));
    Ok(plan)
}

/// Refuses a snapshot name the definition already has, and a new snapshot while another
/// one is being taken.
fn refuse_taken_or_busy(
    cluster: &Cluster,
    rd: &ResourceDefinition,
    name: &SnapshotName,
) -> Result<(), ApiError> {
    if cluster.snapshot(&rd.name, name).is_some() {
        return Err(ApiError::new(
            code::FAIL_EXISTS_SNAPSHOT_DFN,
            ObjKind::Snapshot,
            format!(
                "Snapshot '{name}' of resource definition '{}' already exists",
                rd.name
            ),
        )
        .correction("Choose another snapshot name, or delete the existing snapshot first"));
    }
    if let Some(busy) = cluster
        .snapshots_of(&rd.name)
        .find(|s| matches!(s.state, SnapshotState::Suspending | SnapshotState::Taking))
    {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::Snapshot,
            format!(
                "Snapshot '{}' of resource definition '{}' is being taken right now",
                busy.name, rd.name
            ),
        )
        .correction("Retry when it is done"));
    }
    Ok(())
}

/// The volumes the snapshot covers: every volume definition not being deleted (at least one).
fn snapshot_volumes(rd: &ResourceDefinition) -> Result<Vec<SnapshotVolumeDefinition>, ApiError> {
    let volumes: Vec<SnapshotVolumeDefinition> = rd
        .volume_definitions
        .values()
        .filter(|v| !v.is_deleting())
        .map(|v| SnapshotVolumeDefinition {
            number: v.number,
            size_kib: v.size_kib,
        })
        .collect();
    if volumes.is_empty() {
        return Err(ApiError::new(
            code::FAIL_NOT_FOUND_VLM_DFN,
            ObjKind::Snapshot,
            format!(
                "Resource definition '{}' has no volumes to take a snapshot of",
                rd.name
            ),
        ));
    }
    Ok(volumes)
}

/// The diskful resources to take the snapshot on: those on the nodes the request names, or
/// every one (at least one).
fn snapshot_resources<'a>(
    cluster: &'a Cluster,
    rd: &ResourceDefinition,
    req: &SnapshotCreate,
) -> Result<Vec<&'a Resource>, ApiError> {
    let diskful: Vec<_> = cluster
        .resources_of(&rd.name)
        .filter(|r| !r.is_deleting() && !r.is_diskless())
        .collect();
    let chosen: Vec<_> = if req.nodes.is_empty() {
        diskful
    } else {
        let mut out = Vec::new();
        for n in &req.nodes {
            let node = parse_node_name(n)?;
            let Some(r) = diskful.iter().find(|r| r.node == node) else {
                return Err(ApiError::new(
                    code::FAIL_NOT_FOUND_RSC,
                    ObjKind::Snapshot,
                    format!(
                        "Resource definition '{}' has no diskful resource on node '{n}'",
                        rd.name
                    ),
                )
                .correction("Name nodes that hold the resource's data ('linstor resource list')"));
            };
            if !out.iter().any(|x: &&Resource| x.node == node) {
                out.push(*r);
            }
        }
        out
    };
    if chosen.is_empty() {
        return Err(ApiError::new(
            code::FAIL_NOT_FOUND_RSC,
            ObjKind::Snapshot,
            format!(
                "Resource definition '{}' has no diskful resource to take a snapshot on",
                rd.name
            ),
        ));
    }
    Ok(chosen)
}

/// The copy of the snapshot on the node of `r`: the node must be online and keep each of
/// the `volumes` in a pool that takes snapshots.
fn snapshot_on_node(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    r: &Resource,
    volumes: &[SnapshotVolumeDefinition],
) -> Result<SnapshotOnNode, ApiError> {
    if !observed.is_online(&r.node) {
        return Err(ApiError::new(
            code::FAIL_NOT_CONNECTED,
            ObjKind::Snapshot,
            format!(
                "Node '{}' is not connected; a snapshot needs every node it is taken on",
                r.node
            ),
        )
        .correction("Start the node's satellite, or name only connected nodes with --nodes"));
    }
    let mut vols = Vec::new();
    for v in volumes {
        let Some(vol) = r.volumes.get(&v.number) else {
            continue;
        };
        let kind = cluster
            .stor_pools
            .get(&r.node)
            .and_then(|p| p.get(&vol.storage_pool))
            .map(|p| p.kind);
        if !kind.is_some_and(|k| SNAPSHOT_KINDS.contains(&k)) {
            let kind = kind
                .map(|k| k.to_string())
                .unwrap_or_else(|| "unknown".into());
            return Err(ApiError::new(
                code::FAIL_SNAPSHOTS_NOT_SUPPORTED,
                ObjKind::Snapshot,
                format!(
                    "Storage pool '{}' on node '{}' ({kind}) cannot take snapshots",
                    vol.storage_pool, r.node
                ),
            )
            .correction(
                "Snapshots need a pool of kind LVM_THIN, FILE_THIN, ZFS or ZFS_THIN; keep the resource in such a pool",
            ));
        }
        vols.push(SnapshotVolumeOnNode {
            number: v.number,
            storage_pool: vol.storage_pool.clone(),
        });
    }
    Ok(SnapshotOnNode {
        node: r.node.clone(),
        volumes: vols,
        create_timestamp: env.now_ms(),
    })
}

/// Moves a snapshot to its next state (the controller's steps of taking it).
pub fn advance(cluster: &Cluster, rsc: &str, snap: &str, to: SnapshotState) -> PlanResult {
    let s = snapshot_of(cluster, rsc, snap)?;
    let mut plan = Plan::new();
    if s.state != to {
        let mut u = s.clone();
        u.state = to;
        plan.change(Change::PutSnapshot(u));
    }
    if to == SnapshotState::Successful {
        plan.reply(snapshot_ref(
            Reply::created(
                ObjKind::Snapshot,
                format!(
                    "Snapshot '{}' of resource '{}' taken on {}.",
                    s.name,
                    s.rsc_name,
                    s.nodes
                        .iter()
                        .map(|n| format!("'{}'", n.node))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            &s.rsc_name,
            &s.name,
        ));
    }
    Ok(plan)
}

/// Starts deleting a snapshot: its nodes drop their copies (and resume I/O if it was being
/// taken); it goes once they have all applied that. An unknown snapshot is a warning.
pub fn delete(cluster: &Cluster, rsc: &str, snap: &str) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    let name = parse_snapshot_name(snap)?;
    let Some(s) = cluster.snapshot(&rd.name, &name) else {
        return Ok(Plan::only(snapshot_ref(
            Reply::warning(
                Op::Delete,
                ObjKind::Snapshot,
                code::WARN_NOT_FOUND,
                format!("Snapshot '{snap}' of resource definition '{rsc}' not found; nothing to delete."),
            ),
            &rd.name,
            &name,
        )));
    };
    let mut plan = Plan::new();
    if s.state != SnapshotState::Deleting {
        let mut u = s.clone();
        u.state = SnapshotState::Deleting;
        u.delete_generation = Some(cluster.generation + 1);
        if u.nodes.is_empty() {
            plan.change(Change::DelSnapshot(s.rsc_name.clone(), s.name.clone()));
        } else {
            plan.change(Change::PutSnapshot(u));
        }
    }
    Ok(plan)
}

/// Deletes the copies of a snapshot on `nodes` only (all of it when that leaves none, or
/// when `nodes` is empty). The nodes drop copies no longer asked for; an offline node drops
/// them when it returns.
pub fn delete_on(cluster: &Cluster, rsc: &str, snap: &str, nodes: &[String]) -> PlanResult {
    if nodes.is_empty() {
        return delete(cluster, rsc, snap);
    }
    let rd = rd_of(cluster, rsc)?;
    let name = parse_snapshot_name(snap)?;
    let Some(s) = cluster.snapshot(&rd.name, &name) else {
        return delete(cluster, rsc, snap);
    };
    let mut names = Vec::new();
    for n in nodes {
        let node = parse_node_name(n)?;
        if s.on(&node).is_none() {
            let held: Vec<&str> = s.nodes.iter().map(|x| x.node.as_str()).collect();
            return Err(ApiError::new(
                code::FAIL_NOT_FOUND_SNAPSHOT,
                ObjKind::Snapshot,
                format!("Snapshot '{snap}' of resource '{rsc}' has no copy on node '{n}'"),
            )
            .cause(format!("Its copies are on: {}", held.join(", ")))
            .correction("Name nodes that hold a copy, or none to delete the whole snapshot"));
        }
        names.push(node);
    }
    if s.state == SnapshotState::Deleting {
        return delete(cluster, rsc, snap);
    }
    if s.state != SnapshotState::Successful || s.rollback.is_some() {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::Snapshot,
            format!("Snapshot '{snap}' of resource '{rsc}' is being taken or rolled back"),
        )
        .correction("Wait until that has finished, then delete again"));
    }
    let mut u = s.clone();
    u.nodes.retain(|n| !names.contains(&n.node));
    if u.nodes.is_empty() {
        return delete(cluster, rsc, snap);
    }
    let left: Vec<&str> = u.nodes.iter().map(|n| n.node.as_str()).collect();
    let gone: Vec<&str> = names.iter().map(NodeName::as_str).collect();
    let mut plan = Plan::new();
    plan.reply(snapshot_ref(
        Reply::deleted(
            ObjKind::Snapshot,
            format!(
                "Snapshot '{snap}' of resource '{rsc}' deleted on {}; it stays on {}",
                gone.join(", "),
                left.join(", ")
            ),
        ),
        &rd.name,
        &name,
    ));
    plan.change(Change::PutSnapshot(u));
    Ok(plan)
}

/// Drops the copies of deleting snapshots that `node` no longer holds (it applied a
/// configuration at least as new as the deletion and does not report them), and the
/// snapshots left without copies.
pub fn finish_deletions(
    cluster: &Cluster,
    node: &NodeName,
    applied_generation: u64,
    holds: &dyn Fn(&ResourceName, &SnapshotName) -> bool,
) -> Plan {
    let mut plan = Plan::new();
    for s in cluster.snapshots.values().flat_map(|m| m.values()) {
        let due = s.state == SnapshotState::Deleting
            && s.delete_generation.is_some_and(|g| applied_generation >= g)
            && s.on(node).is_some()
            && !holds(&s.rsc_name, &s.name);
        if !due {
            continue;
        }
        let mut u = s.clone();
        u.nodes.retain(|n| &n.node != node);
        plan.change(if u.nodes.is_empty() {
            Change::DelSnapshot(s.rsc_name.clone(), s.name.clone())
        } else {
            Change::PutSnapshot(u)
        });
    }
    plan
}

/// Whether deleting snapshots wait for `node`.
pub fn deletions_pending_on(cluster: &Cluster, node: &NodeName) -> bool {
    cluster
        .snapshots
        .values()
        .flat_map(|m| m.values())
        .any(|s| s.state == SnapshotState::Deleting && s.on(node).is_some())
}

/// The snapshot, which must have been taken (not being taken or deleted).
fn successful<'a>(
    cluster: &'a Cluster,
    rsc: &str,
    snap: &str,
) -> Result<&'a SnapshotDefinition, ApiError> {
    let s = snapshot_of(cluster, rsc, snap)?;
    if s.state != SnapshotState::Successful {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::Snapshot,
            format!(
                "Snapshot '{}' of resource definition '{}' is {}",
                s.name,
                s.rsc_name,
                match s.state {
                    SnapshotState::Deleting => "being deleted",
                    _ => "not taken yet",
                }
            ),
        ));
    }
    Ok(s)
}

/// `snapshot volume-definition restore`: gives the empty definition `to` the volume
/// definitions (numbers and sizes) the snapshot was taken with.
pub fn restore_volume_definitions(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
    snap: &str,
    to: &str,
) -> PlanResult {
    let s = successful(cluster, rsc, snap)?;
    let target = rd_of(cluster, to)?;
    refuse_if_deleting(target)?;
    if !target.volume_definitions.is_empty() || cluster.resources_of(&target.name).next().is_some()
    {
        return Err(ApiError::new(
            code::FAIL_EXISTS_VLM_DFN,
            ObjKind::Snapshot,
            format!(
                "Resource definition '{}' already has volumes or resources; a snapshot is restored into an empty one",
                target.name
            ),
        )
        .correction("Create a new resource definition ('linstor resource-definition create') and restore into it"));
    }
    let mut plan = Plan::new();
    let mut work = cluster.clone();
    for v in &s.volumes {
        let req = super::rd::VlmDfnCreate {
            volume_number: Some(v.number as i64),
            size_kib: v.size_kib as i64,
            ..Default::default()
        };
        let p = super::rd::create_vd(&work, env, observed, target.name.as_str(), &req)?;
        for c in &p.changes {
            work.apply(c.clone());
        }
        plan.extend(p);
    }
    Ok(plan)
}

/// `snapshot resource restore`: creates the resources of `to` (which has the snapshot's
/// volume definitions, see [`restore_volume_definitions`]) on `nodes` (default: every node
/// of the snapshot), each volume made from that node's copy of the snapshot.
pub fn restore_resources(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
    snap: &str,
    to: &str,
    nodes: &[String],
) -> PlanResult {
    let s = successful(cluster, rsc, snap)?;
    let target = rd_of(cluster, to)?;
    if target.name == s.rsc_name {
        return Err(ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::Snapshot,
            "A snapshot is restored into another resource definition, not its own",
        )
        .correction("Create a new resource definition and restore into it"));
    }
    if let Some(r) = cluster.resources_of(&target.name).next() {
        return Err(ApiError::new(
            code::FAIL_EXISTS_RSC,
            ObjKind::Snapshot,
            format!(
                "Resource '{}' already exists on node '{}'; a snapshot is restored only into a definition without resources",
                target.name, r.node
            ),
        ));
    }
    for v in &s.volumes {
        match target.volume_definitions.get(&v.number) {
            Some(vd) if vd.size_kib >= v.size_kib => {}
            _ => {
                return Err(ApiError::new(
                    code::FAIL_NOT_FOUND_VLM_DFN,
                    ObjKind::Snapshot,
                    format!(
                        "Resource definition '{}' lacks volume {} of at least {} KiB that the snapshot has",
                        target.name, v.number, v.size_kib
                    ),
                )
                .correction(format!(
                    "Run 'linstor snapshot volume-definition restore --from-resource {} --from-snapshot {} --to-resource {}' first",
                    s.rsc_name, s.name, target.name
                )));
            }
        }
    }
    let chosen: Vec<&SnapshotOnNode> = if nodes.is_empty() {
        s.nodes.iter().collect()
    } else {
        let mut out = Vec::new();
        for n in nodes {
            let node = parse_node_name(n)?;
            let on = s.on(&node).ok_or_else(|| {
                ApiError::new(
                    code::FAIL_NOT_FOUND_SNAPSHOT,
                    ObjKind::Snapshot,
                    format!("Snapshot '{}' has no copy on node '{n}'", s.name),
                )
                .correction("Restore on nodes that hold the snapshot ('linstor snapshot list')")
            })?;
            out.push(on);
        }
        out
    };
    let reqs: Vec<RscCreate> = chosen
        .iter()
        .map(|on| {
            let mut props = Props::new();
            if let Some(v) = on.volumes.first() {
                props.insert("StorPoolName".into(), v.storage_pool.to_string());
            }
            RscCreate {
                node: on.node.to_string(),
                props,
                ..Default::default()
            }
        })
        .collect();
    let mut plan = create_resources(cluster, env, observed, target.name.as_str(), &reqs)?;
    let source = RestoreSource {
        rsc_name: s.rsc_name.clone(),
        snapshot: s.name.clone(),
    };
    for c in plan.changes.iter_mut() {
        if let Change::PutRsc(r) = c {
            if r.name == target.name && chosen.iter().any(|on| on.node == r.node) {
                r.restored_from = Some(source.clone());
            }
        }
    }
    Ok(plan)
}

/// Starts rolling the definition's resources back to snapshot `snap` (first step: DRBD down
/// everywhere). Every diskful resource must have a copy of the snapshot and its node must be
/// online; nothing may use the resource.
pub fn rollback(cluster: &Cluster, observed: &dyn Observed, rsc: &str, snap: &str) -> PlanResult {
    let s = successful(cluster, rsc, snap)?;
    let rd = rd_of(cluster, rsc)?;
    refuse_if_deleting(rd)?;
    if cluster.snapshots_of(&rd.name).any(|x| x.rollback.is_some()) {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::Snapshot,
            format!("A rollback of '{}' is running", rd.name),
        )
        .correction("Retry when it is done"));
    }
    let rscs: Vec<_> = cluster
        .resources_of(&rd.name)
        .filter(|r| !r.is_deleting())
        .collect();
    if rscs.is_empty() {
        return Err(ApiError::new(
            code::FAIL_NOT_FOUND_RSC,
            ObjKind::Snapshot,
            format!(
                "Resource definition '{}' has no resources to roll back",
                rd.name
            ),
        )
        .correction(
            "Restore the snapshot into a resource instead ('linstor snapshot resource restore')",
        ));
    }
    for r in &rscs {
        if crate::plan::safety::seen_in_use(observed, &r.node, &rd.name) {
            return Err(ApiError::new(
                code::FAIL_IN_USE,
                ObjKind::Snapshot,
                format!(
                    "Resource '{}' is in use on node '{}'; a rollback needs it unused everywhere",
                    rd.name, r.node
                ),
            )
            .correction("Stop what uses it (unmount, stop the VM or container), then retry"));
        }
        if !r.is_diskless() && s.on(&r.node).is_none() {
            return Err(ApiError::new(
                code::FAIL_NOT_FOUND_SNAPSHOT,
                ObjKind::Snapshot,
                format!(
                    "Resource '{}' on node '{}' has no copy of snapshot '{}'",
                    rd.name, r.node, s.name
                ),
            )
            .correction("Delete that replica first, or restore the snapshot into a new resource"));
        }
        if !observed.is_online(&r.node) {
            return Err(ApiError::new(
                code::FAIL_NOT_CONNECTED,
                ObjKind::Snapshot,
                format!(
                    "Node '{}' is not connected; a rollback needs every node of the resource",
                    r.node
                ),
            )
            .correction("Start the node's satellite, then retry"));
        }
    }
    let mut u = s.clone();
    u.rollback = Some(Rollback {
        id: cluster.generation + 1,
        down_only: true,
    });
    let mut plan = Plan::new();
    plan.change(Change::PutSnapshot(u));
    Ok(plan)
}

/// The next step of a running rollback: from DRBD down everywhere to rolling back, or (after
/// that, or to give up) to done.
pub fn rollback_step(cluster: &Cluster, rsc: &str, snap: &str, finish: bool) -> PlanResult {
    let s = snapshot_of(cluster, rsc, snap)?;
    let mut u = s.clone();
    u.rollback = match (s.rollback, finish) {
        (Some(r), false) => Some(Rollback {
            down_only: false,
            ..r
        }),
        _ => None,
    };
    let mut plan = Plan::new();
    if u != *s {
        plan.change(Change::PutSnapshot(u));
    }
    if finish {
        plan.reply(snapshot_ref(
            Reply::modified(
                ObjKind::Snapshot,
                format!(
                    "Resource '{}' rolled back to snapshot '{}'.",
                    s.rsc_name, s.name
                ),
            ),
            &s.rsc_name,
            &s.name,
        ));
    }
    Ok(plan)
}
