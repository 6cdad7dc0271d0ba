//! Placing resources by the rules of a resource group: autoplace, bringing a definition to
//! its place count, and making a resource available on one node.

use super::commit::commit_resources;
use super::create::{create_resources, RscCreate};
use super::layers::{choose_layers, drbd_support, no_replication_error};
use super::pools::total_size;
use super::shared::{live_resources, mark_deleting, new_resource};
use super::tiebreaker::rebalance_tiebreaker;
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::flags::{Flag, Flags};
use crate::kinds::{LayerKind, ProviderKind};
use crate::name::{NodeName, StorPoolName};
use crate::objects::{Resource, ResourceDefinition, SelectFilter, DEFAULT_DISKLESS_STOR_POOL};
use crate::plan::autoplace::{autoplace as place, Placement, PlacementRequest};
use crate::plan::common::{rd_of, refuse_if_deleting};
use crate::plan::{
    parse_layer_stack, parse_node_name, parse_pool_name, Env, Observed, Op, Plan, PlanResult, Reply,
};
use crate::props::Props;

/// Default number of diskful replicas autoplace aims for.
pub const DEFAULT_PLACE_COUNT: u32 = 2;

#[derive(Debug, Clone, Default)]
pub struct AutoplaceRequest {
    pub filter: SelectFilter,
    pub diskless_on_remaining: Option<bool>,
    pub layer_list: Vec<String>,
}

pub fn autoplace(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
    req: &AutoplaceRequest,
) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    autoplace_rd(cluster, env, observed, rd, req)
}

/// Brings the diskful replica count of `rsc` to its resource group's place count: the
/// auto-placer adds what is missing; surplus replicas are deleted, never one in use or one
/// holding the only up-to-date copy of a volume (the answer says which could not go).
pub fn adjust_rd(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    refuse_if_deleting(rd)?;
    let place = cluster
        .rsc_grps
        .get(&rd.resource_group)
        .and_then(|g| g.select_filter.place_count)
        .unwrap_or(DEFAULT_PLACE_COUNT) as usize;
    let live = live_resources(cluster, &rd.name);
    let diskful: Vec<&Resource> = live.iter().copied().filter(|r| !r.is_diskless()).collect();
    if diskful.len() < place {
        return autoplace_rd(cluster, env, observed, rd, &AutoplaceRequest::default());
    }
    let mut plan = Plan::new();
    if diskful.len() == place {
        plan.reply(
            Reply::info(
                Op::Modify,
                ObjKind::RscDfn,
                code::WARN_RSC_ALREADY_DEPLOYED,
                format!(
                    "Resource '{}' has {place} diskful replica(s), as its group asks.",
                    rd.name
                ),
            )
            .with_ref("RscDfn", rd.name.as_str()),
        );
        return Ok(plan);
    }
    let (gone, kept) = surplus_replicas(cluster, observed, rd, &diskful, place);
    delete_surplus(&mut plan, cluster, &gone, place);
    if gone.len() + place < diskful.len() {
        plan.reply(
            Reply::warning(
                Op::Delete,
                ObjKind::Rsc,
                code::WARN_NO_EFFECT,
                format!(
                    "Resource '{}' keeps {} diskful replica(s), more than the place count {place}",
                    rd.name,
                    diskful.len() - gone.len()
                ),
            )
            .with_cause(kept.join("; "))
            .with_ref("RscDfn", rd.name.as_str()),
        );
    }
    rebalance_tiebreaker(&mut plan, cluster, env, observed, rd, &gone, false)?;
    Ok(plan)
}

/// Which of the `diskful` replicas beyond the place count go, newest first, and why each of
/// the others that were looked at has to stay.
fn surplus_replicas<'a>(
    cluster: &Cluster,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    diskful: &[&'a Resource],
    place: usize,
) -> (Vec<&'a Resource>, Vec<String>) {
    // The newest replicas go first.
    let mut candidates = diskful.to_vec();
    candidates.sort_by_key(|r| std::cmp::Reverse((r.create_timestamp, r.node.clone())));
    let mut gone: Vec<&Resource> = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    for r in candidates {
        if gone.len() + place == diskful.len() {
            break;
        }
        // Checked against what stays: the replicas already chosen count as gone.
        let leaving: Vec<&NodeName> = gone.iter().map(|g| &g.node).collect();
        let check = crate::plan::safety::refuse_if_in_use(observed, r, "it is not deleted")
            .and_then(|()| {
                crate::plan::safety::check_not_only_copy(
                    cluster, observed, rd, r, "deleted", &leaving,
                )
            });
        match check {
            Ok(()) => gone.push(r),
            Err(e) => kept.push(format!("'{}': {}", r.node, e.message)),
        }
    }
    (gone, kept)
}

/// Marks the surplus replicas `gone` for deletion and says so.
fn delete_surplus(plan: &mut Plan, cluster: &Cluster, gone: &[&Resource], place: usize) {
    for r in gone {
        plan.change(Change::PutRsc(mark_deleting(cluster, r)));
        plan.reply(
            Reply::deleted(
                ObjKind::Rsc,
                format!(
                    "Resource '{}' on node '{}' is beyond the place count {place} and is deleted.",
                    r.name, r.node
                ),
            )
            .with_rsc_refs(r),
        );
    }
}

/// Autoplace for a definition that may not be committed yet (spawn creates and places in one
/// transaction).
pub fn autoplace_rd(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    req: &AutoplaceRequest,
) -> PlanResult {
    refuse_if_deleting(rd)?;
    let group_filter = cluster
        .rsc_grps
        .get(&rd.resource_group)
        .map(|g| g.select_filter.clone())
        .unwrap_or_default();
    let filter = req.filter.over(&group_filter);
    let existing = live_resources(cluster, &rd.name);
    let diskful_existing = existing.iter().filter(|r| !r.is_diskless()).count();
    let count = replicas_to_place(&filter, diskful_existing)?;
    if count == 0 {
        return Ok(Plan::only(nothing_to_place(rd, diskful_existing)));
    }
    let requested = requested_layers(req, &filter)?;
    let total = diskful_existing + count;
    let required_layers = required_layers(cluster, observed, rd, &requested, total)?;
    let placements = place(
        cluster,
        observed,
        &PlacementRequest {
            rsc: &rd.name,
            filter: &filter,
            count,
            size_kib: total_size(rd),
            existing: &existing,
            layers: &required_layers,
            drbd_port: rd.drbd_port,
        },
    )?;
    let mut new = placed_resources(env, rd, &placements);
    let nodes: Vec<&NodeName> = existing
        .iter()
        .map(|r| &r.node)
        .chain(new.iter().map(|(r, _)| &r.node))
        .collect();
    let layers = choose_layers(observed, rd, &requested, &nodes, total)?;
    let diskless_wanted = req
        .diskless_on_remaining
        .or(filter.diskless_on_remaining)
        .unwrap_or(false);
    let mut plan = Plan::new();
    if diskless_wanted {
        if layers.stack.contains(&LayerKind::Drbd) {
            let diskless = diskless_on_remaining(cluster, env, observed, rd, &filter, &nodes)?;
            new.extend(diskless);
        } else {
            plan.reply(Reply::info(
                Op::Create,
                ObjKind::Rsc,
                code::WARN_NO_EFFECT,
                "Diskless resources on the remaining nodes need the DRBD layer; none were created.",
            ));
        }
    }
    commit_resources(
        &mut plan,
        cluster,
        env,
        observed,
        rd,
        layers,
        &existing,
        new,
        Vec::new(),
    )?;
    Ok(plan)
}

/// The answer when the definition has the replicas it asks for.
fn nothing_to_place(rd: &ResourceDefinition, diskful_existing: usize) -> Reply {
    Reply::info(
        Op::Create,
        ObjKind::Rsc,
        code::WARN_RSC_ALREADY_DEPLOYED,
        format!(
            "Resource '{}' already has {diskful_existing} diskful replica(s); nothing to place.",
            rd.name
        ),
    )
    .with_ref("RscDfn", rd.name.as_str())
}

/// The layer list of the request, else of the filter; it must be one this controller builds.
fn requested_layers(
    req: &AutoplaceRequest,
    filter: &SelectFilter,
) -> Result<Vec<LayerKind>, ApiError> {
    let requested = if req.layer_list.is_empty() {
        filter.layer_stack.clone()
    } else {
        parse_layer_stack(&req.layer_list, ObjKind::Rsc)?
    };
    crate::plan::check_layer_stack(&requested, ObjKind::Rsc)?;
    Ok(requested)
}

/// How many diskful replicas to add: the filter's additional count, or what the place count
/// asks beyond the `diskful_existing` ones.
fn replicas_to_place(filter: &SelectFilter, diskful_existing: usize) -> Result<usize, ApiError> {
    match filter.additional_place_count {
        Some(extra) => Ok(extra as usize),
        None => {
            let place = filter.place_count.unwrap_or(DEFAULT_PLACE_COUNT);
            if place == 0 {
                return Err(ApiError::new(
                    code::FAIL_INVLD_PLACE_COUNT,
                    ObjKind::Rsc,
                    "A place count of 0 places nothing",
                )
                .correction("Give a place count of 1 or more"));
            }
            Ok((place as usize).saturating_sub(diskful_existing))
        }
    }
}

/// The layers every chosen node must support for `total` diskful replicas: DRBD when the
/// stack has it or has to replicate. Refuses several copies under a stack without DRBD that
/// the user did not choose, and replication when no node supports DRBD.
fn required_layers(
    cluster: &Cluster,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    requested: &[LayerKind],
    total: usize,
) -> Result<Vec<LayerKind>, ApiError> {
    let fixed = if !rd.layer_stack.is_empty() {
        rd.layer_stack.clone()
    } else {
        requested.to_vec()
    };
    // More than one copy can only be a replica with DRBD: require it while placing, unless
    // the user chose a layer list without it (then independent volumes are what they want).
    let needs_drbd = fixed.contains(&LayerKind::Drbd) || (fixed.is_empty() && total > 1);
    let chosen = rd.layers_chosen || !requested.is_empty();
    if !fixed.contains(&LayerKind::Drbd) && !fixed.is_empty() && total > 1 && !chosen {
        return Err(no_replication_error(rd, total, Vec::new()));
    }
    if needs_drbd && fixed.is_empty() {
        let any_drbd = cluster
            .nodes
            .keys()
            .any(|n| drbd_support(observed, n).is_ok());
        if !any_drbd {
            let why: Vec<String> = cluster
                .nodes
                .iter()
                .filter(|(_, n)| n.node_type.hosts_storage())
                .filter_map(|(name, _)| {
                    drbd_support(observed, name)
                        .err()
                        .map(|w| format!("node '{name}': {w}"))
                })
                .collect();
            return Err(no_replication_error(rd, total, why));
        }
    }
    Ok(if needs_drbd {
        vec![LayerKind::Drbd]
    } else {
        Vec::new()
    })
}

/// The new diskful resources of the auto-placer's `placements`.
fn placed_resources(
    env: &mut dyn Env,
    rd: &ResourceDefinition,
    placements: &[Placement],
) -> Vec<(Resource, StorPoolName)> {
    let mut new: Vec<(Resource, StorPoolName)> = Vec::new();
    for p in placements {
        let props: Props = [("StorPoolName".to_string(), p.pool.to_string())].into();
        new.push((
            new_resource(env, rd, &p.node, &p.pool, props, Flags::new()),
            p.pool.clone(),
        ));
    }
    new
}

/// Diskless resources on every node not in `taken` that can hold one: it has the filter's
/// diskless pool (the default one if the filter names none) as a DISKLESS pool and supports
/// DRBD.
fn diskless_on_remaining(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    filter: &SelectFilter,
    taken: &[&NodeName],
) -> Result<Vec<(Resource, StorPoolName)>, ApiError> {
    let pool = filter
        .storage_pool_diskless_list
        .first()
        .cloned()
        .unwrap_or_else(|| DEFAULT_DISKLESS_STOR_POOL.to_string());
    let pool = &parse_pool_name(&pool)?;
    let mut new = Vec::new();
    for (name, node) in &cluster.nodes {
        let pool_ok = cluster
            .stor_pool(name, pool)
            .is_some_and(|sp| sp.kind == ProviderKind::Diskless);
        if taken.contains(&name) || !node.node_type.hosts_storage() || !pool_ok {
            continue;
        }
        if drbd_support(observed, name).is_err() {
            continue;
        }
        let props: Props = [("StorPoolName".to_string(), pool.to_string())].into();
        let flags = Flags::from([Flag::DrbdDiskless]);
        new.push((
            new_resource(env, rd, name, pool, props, flags),
            pool.clone(),
        ));
    }
    Ok(new)
}

pub fn make_available(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
    node: &str,
    diskful: bool,
    layer_list: &[String],
) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    refuse_if_deleting(rd)?;
    let node_name = parse_node_name(node)?;
    if !cluster.nodes.contains_key(&node_name) {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_NODE,
            ObjKind::Node,
            "node",
            node,
        ));
    }
    if let Some(r) = cluster.resource(&rd.name, &node_name) {
        if r.is_deleting() {
            return Err(ApiError::new(
                code::FAIL_EXISTS_RSC,
                ObjKind::Rsc,
                format!("Resource '{}' on node '{node}' is being deleted", rd.name),
            ));
        }
        if diskful && r.is_diskless() {
            return Err(ApiError::new(
                code::FAIL_INVLD_REQUEST,
                ObjKind::Rsc,
                format!("Resource '{}' is diskless on node '{node}'", rd.name),
            )
            .correction("Give it a disk with 'linstor resource toggle-disk'"));
        }
        return Ok(Plan::only(
            Reply::info(
                Op::Create,
                ObjKind::Rsc,
                code::INFO_RSC_ALREADY_EXISTS,
                format!(
                    "Resource '{}' is already available on node '{node}'.",
                    rd.name
                ),
            )
            .with_ref("RscDfn", rd.name.as_str())
            .with_ref("Node", node),
        ));
    }
    let existing = live_resources(cluster, &rd.name);
    let any_diskful = existing.iter().any(|r| !r.is_diskless());
    let drbd_possible = rd.layer_stack.contains(&LayerKind::Drbd)
        || (rd.layer_stack.is_empty() && drbd_support(observed, &node_name).is_ok());
    if !diskful && any_diskful && drbd_possible {
        let req = RscCreate {
            node: node.to_string(),
            flags: vec![Flag::DrbdDiskless.to_string()],
            layer_list: layer_list.to_vec(),
            ..Default::default()
        };
        return create_resources(cluster, env, observed, rsc, &[req]);
    }
    let req = AutoplaceRequest {
        filter: SelectFilter {
            additional_place_count: Some(1),
            node_name_list: vec![node.to_string()],
            ..Default::default()
        },
        diskless_on_remaining: Some(false),
        layer_list: layer_list.to_vec(),
    };
    autoplace_rd(cluster, env, observed, rd, &req)
}
