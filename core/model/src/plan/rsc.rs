//! Resources: explicit creation, autoplace, make-available, modification, deletion, and the
//! finishing of deletions once nodes confirm them.

use std::collections::BTreeSet;

use super::autoplace::{autoplace as place, pool_room, PlacementRequest};
use super::drbd;
use super::rd::{rd_of, refuse_if_deleting};
use super::{
    parse_layer_stack, parse_node_name, parse_pool_name, prop_error, Env, Observed, Op, Plan,
    PlanResult, Reply,
};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::{LayerKind, ProviderKind};
use crate::name::{NodeName, ResourceName, StorPoolName};
use crate::objects::{
    flag, Resource, ResourceDefinition, SelectFilter, StorPool, Volume, DEFAULT_DISKLESS_STOR_POOL,
    DEFAULT_STOR_POOL,
};
use crate::props::{Props, PropsChange, PropsOwner};

/// Default number of diskful replicas autoplace aims for.
pub const DEFAULT_PLACE_COUNT: u32 = 2;

#[derive(Debug, Clone, Default)]
pub struct RscCreate {
    pub node: String,
    pub props: Props,
    pub flags: Vec<String>,
    pub layer_list: Vec<String>,
    pub drbd_node_id: Option<i64>,
}

/// `resource toggle-disk`: give a diskless resource a disk, or take its disk away.
#[derive(Debug, Clone, Default)]
pub struct ToggleDisk {
    pub diskful: bool,
    /// The pool to toggle into (a DISKLESS one to become diskless).
    pub storage_pool: Option<String>,
    /// Delete the resource on this node once the new disk is up to date.
    pub migrate_from: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AutoplaceRequest {
    pub filter: SelectFilter,
    pub diskless_on_remaining: Option<bool>,
    pub layer_list: Vec<String>,
}

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

fn total_size(rd: &ResourceDefinition) -> u64 {
    rd.volume_definitions
        .values()
        .filter(|v| !v.is_deleting())
        .map(|v| v.size_kib)
        .sum()
}

/// Whether `node` can run DRBD, from what it reported last (also while it is offline: what
/// it reported when it was last connected still holds).
fn drbd_support(observed: &dyn Observed, node: &NodeName) -> Result<(), String> {
    match observed.capabilities(node) {
        Some(c) if c.supports_layer(LayerKind::Drbd) => Ok(()),
        Some(c) => Err(c.layer_reason(LayerKind::Drbd)),
        None if !observed.is_online(node) => {
            Err("the node is offline, so its DRBD support is unknown".into())
        }
        None => Err("the node has not reported its capabilities".into()),
    }
}

/// Why `node` cannot run DRBD, when it is known to lack it; a node that has never reported
/// (offline since the controller started) is not known to lack it.
fn drbd_lacking(observed: &dyn Observed, node: &NodeName) -> Option<String> {
    observed
        .capabilities(node)
        .filter(|c| !c.supports_layer(LayerKind::Drbd))
        .map(|c| c.layer_reason(LayerKind::Drbd))
}

fn no_replication_error(rd: &ResourceDefinition, diskful: usize, why: Vec<String>) -> ApiError {
    ApiError::new(
        code::FAIL_INVLD_LAYER_STACK,
        ObjKind::Rsc,
        format!(
            "Resource '{}' would get {diskful} diskful copies without the DRBD layer",
            rd.name
        ),
    )
    .cause(if why.is_empty() {
        format!(
            "The layer list of '{}' is '{}': without DRBD, copies on several nodes would be independent, unreplicated volumes",
            rd.name,
            layers_str(&rd.layer_stack)
        )
    } else {
        format!("DRBD is not available: {}", why.join("; "))
    })
    .correction("Install DRBD on the nodes to replicate, or place a single diskful replica (place count 1)")
}

fn layers_str(layers: &[LayerKind]) -> String {
    layers
        .iter()
        .map(|l| l.as_str().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// Fixes the layer stack for a resource definition and checks that the nodes involved can
/// build it. Without a stack on the definition or in the request, DRBD is used when every
/// node supports it, STORAGE alone otherwise.
fn choose_layers(
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    requested: &[LayerKind],
    nodes: &[&NodeName],
    diskful: usize,
) -> Result<Layers, ApiError> {
    if !rd.layer_stack.is_empty() && !requested.is_empty() && requested != rd.layer_stack.as_slice()
    {
        return Err(ApiError::new(
            code::FAIL_INVLD_LAYER_STACK,
            ObjKind::Rsc,
            format!(
                "Resource '{}' uses the layers '{}', the request asks for '{}'",
                rd.name,
                layers_str(&rd.layer_stack),
                layers_str(requested)
            ),
        ));
    }
    let fixed = if !rd.layer_stack.is_empty() {
        Some(rd.layer_stack.clone())
    } else if !requested.is_empty() {
        Some(requested.to_vec())
    } else {
        None
    };
    let chosen = rd.layers_chosen || !requested.is_empty();
    // A node that never reported (offline) does not decide against DRBD: it reports a
    // missing DRBD itself when it connects.
    let missing: Vec<String> = nodes
        .iter()
        .filter_map(|n| drbd_lacking(observed, n).map(|why| format!("node '{n}': {why}")))
        .collect();
    let layers = match fixed {
        Some(l) => l,
        None if missing.is_empty() && !nodes.is_empty() => {
            vec![LayerKind::Drbd, LayerKind::Storage]
        }
        None => vec![LayerKind::Storage],
    };
    if layers.contains(&LayerKind::Drbd) {
        if !missing.is_empty() {
            return Err(ApiError::new(
                code::FAIL_STLT_DOES_NOT_SUPPORT_LAYER,
                ObjKind::Rsc,
                format!("Resource '{}' needs DRBD on every node it is placed on", rd.name),
            )
            .cause(missing.join("; "))
            .correction("Install DRBD on those nodes, or use the layer list 'storage' for a single local copy"));
        }
    } else if diskful > 1 && !chosen {
        return Err(no_replication_error(
            rd,
            diskful,
            if rd.layer_stack.is_empty() && requested.is_empty() {
                missing
            } else {
                Vec::new()
            },
        ));
    }
    Ok(Layers {
        stack: layers,
        chosen,
    })
}

/// The layer stack of a definition's resources, and whether the user chose it.
struct Layers {
    stack: Vec<LayerKind>,
    chosen: bool,
}

/// Said when the user's own layer list gives several diskful resources without DRBD.
fn unreplicated_warning(rd: &ResourceDefinition, diskful: usize, layers: &[LayerKind]) -> Reply {
    Reply::warning(
        Op::Create,
        ObjKind::Rsc,
        code::WARN_INVLD_CONF,
        format!(
            "Resource '{}' has {diskful} diskful resources with the layer list '{}': they are independent, unreplicated volumes",
            rd.name,
            layers_str(layers)
        ),
    )
    .with_cause("Without the DRBD layer nothing copies data between the nodes")
    .with_correction("Use a layer list with DRBD (e.g. 'drbd,storage') for replicated volumes")
    .with_ref("RscDfn", rd.name.as_str())
}

fn new_resource(
    env: &mut dyn Env,
    rd: &ResourceDefinition,
    node: &NodeName,
    pool: &StorPoolName,
    props: Props,
    flags: BTreeSet<String>,
) -> Resource {
    let volumes = rd
        .volume_definitions
        .values()
        .filter(|v| !v.is_deleting())
        .map(|v| {
            (
                v.number,
                Volume {
                    number: v.number,
                    storage_pool: pool.clone(),
                    props: Props::new(),
                    flags: Default::default(),
                    uuid: env.uuid(),
                },
            )
        })
        .collect();
    Resource {
        name: rd.name.clone(),
        node: node.clone(),
        props,
        flags,
        volumes,
        node_id: None,
        tcp_port: None,
        peer_slots: None,
        create_timestamp: env.now_ms(),
        delete_generation: None,
        uuid: env.uuid(),
        restored_from: None,
        migrate_from: None,
        cloned_from: None,
    }
}

fn created_reply(r: &Resource, pool: &StorPoolName) -> Reply {
    Reply::created(
        ObjKind::Rsc,
        format!(
            "New resource '{}' on node '{}' registered (storage pool '{pool}').",
            r.name, r.node
        ),
    )
    .with_ref("RscDfn", r.name.as_str())
    .with_ref("Node", r.node.as_str())
}

fn live_resources<'a>(cluster: &'a Cluster, rd: &ResourceName) -> Vec<&'a Resource> {
    cluster
        .resources_of(rd)
        .filter(|r| !r.is_deleting())
        .collect()
}

/// Appends the resources (and the definition, when its layer stack or DRBD numbers change)
/// to `plan`. With DRBD, the new resources get their node ids, ports and peer slots, the
/// volume definitions their minors, the definition its secret, and a tie-breaker is added
/// or dropped as the replica count asks.
#[allow(clippy::too_many_arguments)]
fn commit_resources(
    plan: &mut Plan,
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    layers: Layers,
    existing: &[&Resource],
    mut new: Vec<(Resource, StorPoolName)>,
    requested_ids: Vec<Option<i64>>,
) -> Result<(), ApiError> {
    let mut u = rd.clone();
    u.layer_stack = layers.stack;
    u.layers_chosen |= layers.chosen;
    let diskful = existing.iter().filter(|r| !r.is_diskless()).count()
        + new.iter().filter(|(r, _)| !r.is_diskless()).count();
    if !u.layer_stack.contains(&LayerKind::Drbd) && diskful > 1 {
        plan.reply(unreplicated_warning(rd, diskful, &u.layer_stack));
    }
    if u.layer_stack.contains(&LayerKind::Drbd) {
        if u.drbd_secret.is_none() {
            u.drbd_secret = Some(drbd::secret_from(&env.uuid()));
        }
        let mut used = BTreeSet::new();
        for vd in u.volume_definitions.values_mut() {
            if vd.minor.is_none() && !vd.is_deleting() {
                let m = drbd::free_minor(cluster, &used)?;
                used.insert(m);
                vd.minor = Some(m);
            }
        }
        let mut ids = requested_ids;
        ids.resize(new.len(), None);
        let mut live: Vec<&Resource> = existing.to_vec();
        live.extend(new.iter().map(|(r, _)| r));
        let counted: Vec<&Resource> = live
            .iter()
            .copied()
            .filter(|r| !r.is_tiebreaker())
            .collect();
        let on_drbd8 = super::drbd84::check(cluster, observed, &u, &counted)?;
        match tiebreaker_move(cluster, env, observed, &u, &live, false) {
            Some(TieBreakerMove::Add(tb)) => {
                plan.reply(tiebreaker_reply(&tb));
                new.push((tb, tb_pool()));
                ids.push(None);
            }
            Some(TieBreakerMove::Drop(tb)) => drop_tiebreaker(plan, cluster, &tb),
            None => {}
        }
        let mut rscs: Vec<Resource> = new.iter().map(|(r, _)| r.clone()).collect();
        drbd::assign_resources(cluster, &u, existing, &mut rscs, &ids)?;
        for ((r, _), mut assigned) in new.iter_mut().zip(rscs) {
            if on_drbd8 {
                // DRBD 8.4 metadata (v08) has room for exactly one peer.
                assigned.peer_slots = Some(super::drbd84::PEER_SLOTS);
            }
            *r = assigned;
        }
    }
    if u != *rd {
        plan.change(Change::PutRscDfn(u));
    }
    for (r, pool) in new {
        if !r.is_tiebreaker() {
            plan.reply(created_reply(&r, &pool));
        }
        plan.change(Change::PutRsc(r));
    }
    Ok(())
}

fn tb_pool() -> StorPoolName {
    StorPoolName::new(DEFAULT_DISKLESS_STOR_POOL).expect("the default diskless pool name is valid")
}

fn mark_deleting(cluster: &Cluster, r: &Resource) -> Resource {
    let mut u = r.clone();
    u.flags.insert(flag::DELETE.into());
    u.delete_generation = Some(cluster.generation + 1);
    u
}

fn tiebreaker_reply(tb: &Resource) -> Reply {
    Reply::info(
        Op::Create,
        ObjKind::Rsc,
        code::INFO_TIE_BREAKER_CREATED,
        format!(
            "Tie breaker resource '{}' created on node '{}'",
            tb.name, tb.node
        ),
    )
    .with_ref("RscDfn", tb.name.as_str())
    .with_ref("Node", tb.node.as_str())
}

/// A diskless tie-breaker for `rd` on a node that can take it, if any.
fn new_tiebreaker(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    live: &[&Resource],
) -> Option<Resource> {
    let pool = tb_pool();
    let node = drbd::tiebreaker_node(cluster, rd, live, &pool, &|n| {
        drbd_support(observed, n).is_ok() && !super::drbd84::is_drbd8(observed, n)
    })?;
    let props: Props = [("StorPoolName".to_string(), pool.to_string())].into();
    let flags: BTreeSet<String> = [
        flag::DRBD_DISKLESS.to_string(),
        flag::TIE_BREAKER.to_string(),
    ]
    .into();
    Some(new_resource(env, rd, &node, &pool, props, flags))
}

/// What the tie-breaker of a DRBD definition should do.
enum TieBreakerMove {
    Add(Resource),
    Drop(Resource),
}

/// Whether a definition with `live` resources needs a tie-breaker added (on a node that can
/// take one) or its tie-breaker dropped; `keep` keeps an existing one.
fn tiebreaker_move(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    live: &[&Resource],
    keep: bool,
) -> Option<TieBreakerMove> {
    // DRBD 8.4 knows no tie-breaker (nor a third node).
    let wants = drbd::auto_tiebreaker_enabled(cluster, rd)
        && drbd::wants_tiebreaker(live)
        && !super::drbd84::any_drbd8(observed, live);
    match live.iter().find(|r| r.is_tiebreaker()) {
        Some(tb) if !wants && !keep => Some(TieBreakerMove::Drop((*tb).clone())),
        None if wants => new_tiebreaker(cluster, env, observed, rd, live).map(TieBreakerMove::Add),
        _ => None,
    }
}

fn drop_tiebreaker(plan: &mut Plan, cluster: &Cluster, tb: &Resource) {
    plan.change(Change::PutRsc(mark_deleting(cluster, tb)));
    plan.reply(
        Reply::info(
            Op::Delete,
            ObjKind::Rsc,
            code::INFO_TIE_BREAKER_DELETING,
            format!(
                "Tie breaker resource '{}' on node '{}' is no longer needed and is deleted",
                tb.name, tb.node
            ),
        )
        .with_ref("RscDfn", tb.name.as_str()),
    );
}

/// After `gone` stop counting, adds or drops the tie-breaker of `rd` as the rules ask;
/// `keep` keeps an existing tie-breaker.
pub(crate) fn rebalance_tiebreaker(
    plan: &mut Plan,
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    gone: &[&Resource],
    keep: bool,
) -> Result<(), ApiError> {
    if !rd.layer_stack.contains(&LayerKind::Drbd) || rd.is_deleting() {
        return Ok(());
    }
    let live: Vec<&Resource> = live_resources(cluster, &rd.name)
        .into_iter()
        .filter(|r| !gone.iter().any(|g| g.node == r.node))
        .collect();
    move_tiebreaker(plan, cluster, env, observed, rd, &live, keep)
}

/// Adds or drops the tie-breaker of `rd` as its `live` resources ask.
fn move_tiebreaker(
    plan: &mut Plan,
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    live: &[&Resource],
    keep: bool,
) -> Result<(), ApiError> {
    match tiebreaker_move(cluster, env, observed, rd, live, keep) {
        Some(TieBreakerMove::Drop(tb)) => drop_tiebreaker(plan, cluster, &tb),
        Some(TieBreakerMove::Add(tb)) => {
            let mut one = vec![tb];
            drbd::assign_resources(cluster, rd, live, &mut one, &[None])?;
            let tb = one.remove(0);
            plan.reply(tiebreaker_reply(&tb));
            plan.change(Change::PutRsc(tb));
        }
        None => {}
    }
    Ok(())
}

pub fn create_resources(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
    reqs: &[RscCreate],
) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    refuse_if_deleting(rd)?;
    if reqs.is_empty() {
        return Err(ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::Rsc,
            "The request names no node to create the resource on",
        ));
    }
    let existing = live_resources(cluster, &rd.name);
    let size = total_size(rd);
    let mut requested_layers: Vec<LayerKind> = Vec::new();
    let mut new: Vec<(Resource, StorPoolName)> = Vec::new();
    let mut takeovers: Vec<Resource> = Vec::new();
    for req in reqs {
        let node = parse_node_name(&req.node)?;
        let Some(n) = cluster.nodes.get(&node) else {
            return Err(ApiError::not_found(
                code::FAIL_NOT_FOUND_NODE,
                ObjKind::Node,
                "node",
                &req.node,
            ));
        };
        if !n.node_type.hosts_storage() {
            return Err(ApiError::new(
                code::FAIL_INVLD_NODE_TYPE,
                ObjKind::Rsc,
                format!(
                    "Node '{}' is a {} node and cannot hold resources",
                    n.name, n.node_type
                ),
            ));
        }
        // A live tie-breaker on the node is taken over by a diskless resource asked for there.
        let tiebreaker = cluster
            .resource(&rd.name, &node)
            .filter(|r| r.is_tiebreaker() && !r.is_deleting());
        if let Some(r) = cluster
            .resource(&rd.name, &node)
            .filter(|_| tiebreaker.is_none())
        {
            return Err(if r.is_deleting() {
                ApiError::new(
                    code::FAIL_EXISTS_RSC,
                    ObjKind::Rsc,
                    format!(
                        "Resource '{}' on node '{}' is being deleted",
                        rd.name, n.name
                    ),
                )
                .correction("Wait for the deletion to finish, then create it again")
            } else {
                ApiError::new(
                    code::FAIL_EXISTS_RSC,
                    ObjKind::Rsc,
                    format!("Resource '{}' already exists on node '{}'", rd.name, n.name),
                )
            });
        }
        if new.iter().any(|(r, _)| r.node == node) || takeovers.iter().any(|r| r.node == node) {
            return Err(ApiError::new(
                code::FAIL_EXISTS_RSC,
                ObjKind::Rsc,
                format!("Node '{}' is named twice in the request", n.name),
            ));
        }
        let mut flags = BTreeSet::new();
        for f in &req.flags {
            let up = f.to_ascii_uppercase();
            match up.as_str() {
                flag::DISKLESS | flag::DRBD_DISKLESS => {
                    flags.insert(up);
                }
                "" => {}
                _ => {
                    return Err(ApiError::new(
                        code::FAIL_INVLD_REQUEST,
                        ObjKind::Rsc,
                        format!("Unknown resource flag '{f}'"),
                    )
                    .correction(
                        "Use DISKLESS or DRBD_DISKLESS, or no flag for a diskful resource",
                    ))
                }
            }
        }
        let mut diskless = !flags.is_empty();
        if tiebreaker.is_some() && !diskless {
            let diskless_pool = resolve_pool(cluster, rd, &req.props, &node, false)
                .ok()
                .and_then(|p| cluster.stor_pool(&node, &p))
                .is_some_and(|sp| sp.kind == ProviderKind::Diskless);
            if !diskless_pool {
                return Err(ApiError::new(
                    code::FAIL_EXISTS_RSC,
                    ObjKind::Rsc,
                    format!(
                        "Node '{}' holds the diskless tie-breaker of resource '{}'; a diskful replica cannot be created there",
                        n.name, rd.name
                    ),
                )
                .correction("Create a diskless resource there to take the tie-breaker over, or place the diskful replica on another node"));
            }
        }
        let pool = resolve_pool(cluster, rd, &req.props, &node, diskless)?;
        let Some(sp) = cluster.stor_pool(&node, &pool) else {
            let default = pool.as_str() == DEFAULT_STOR_POOL;
            return Err(ApiError::new(
                if default {
                    code::FAIL_NOT_FOUND_DFLT_STOR_POOL
                } else {
                    code::FAIL_NOT_FOUND_STOR_POOL
                },
                ObjKind::Rsc,
                format!("Storage pool '{pool}' not found on node '{}'", n.name),
            )
            .correction(if default {
                "Name a storage pool (--storage-pool), or create one called DfltStorPool"
            } else {
                "Create the storage pool on that node first, or name another one"
            }));
        };
        if sp.kind == ProviderKind::Diskless {
            if !diskless {
                flags.insert(flag::DRBD_DISKLESS.to_string());
                diskless = true;
            }
        } else if diskless {
            return Err(ApiError::new(
                code::FAIL_INVLD_REQUEST,
                ObjKind::Rsc,
                format!(
                    "A diskless resource needs a DISKLESS storage pool, '{pool}' is {}",
                    sp.kind
                ),
            ));
        }
        if let Some(tb) = tiebreaker {
            let mut taken = tb.clone();
            taken.flags.remove(flag::TIE_BREAKER);
            taken.flags.insert(flag::DRBD_DISKLESS.to_string());
            taken.props = PropsChange {
                set: req.props.clone(),
                ..Default::default()
            }
            .apply(PropsOwner::Resource, &taken.props)
            .map_err(|e| prop_error(ObjKind::Rsc, e))?;
            takeovers.push(taken);
            continue;
        }
        if !diskless {
            check_room(cluster, observed, sp, size)?;
        }
        let mut props = PropsChange {
            set: req.props.clone(),
            ..Default::default()
        }
        .apply(PropsOwner::Resource, &Props::new())
        .map_err(|e| prop_error(ObjKind::Rsc, e))?;
        props
            .entry("StorPoolName".into())
            .or_insert_with(|| pool.to_string());
        let layers = parse_layer_stack(&req.layer_list, ObjKind::Rsc)?;
        if !layers.is_empty() {
            if !requested_layers.is_empty() && requested_layers != layers {
                return Err(ApiError::new(
                    code::FAIL_INVLD_LAYER_STACK,
                    ObjKind::Rsc,
                    "The resources of one request must use the same layer list",
                ));
            }
            requested_layers = layers;
        }
        let r = new_resource(env, rd, &node, &pool, props, flags);
        new.push((r, pool));
    }
    let nodes: Vec<&NodeName> = existing
        .iter()
        .map(|r| &r.node)
        .chain(new.iter().map(|(r, _)| &r.node))
        .collect();
    let diskful = existing.iter().filter(|r| !r.is_diskless()).count()
        + new.iter().filter(|(r, _)| !r.is_diskless()).count();
    // The group's layer list applies to a definition that has none of its own yet.
    if requested_layers.is_empty() && rd.layer_stack.is_empty() {
        if let Some(g) = cluster.rsc_grps.get(&rd.resource_group) {
            requested_layers = g.select_filter.layer_stack.clone();
        }
    }
    let layers = choose_layers(observed, rd, &requested_layers, &nodes, diskful)?;
    let mut plan = Plan::new();
    // Taken-over tie-breakers count as the diskless resources they become.
    let existing: Vec<&Resource> = existing
        .into_iter()
        .map(|r| takeovers.iter().find(|t| t.node == r.node).unwrap_or(r))
        .collect();
    for t in &takeovers {
        plan.reply(
            Reply::info(
                Op::Create,
                ObjKind::Rsc,
                code::INFO_TIE_BREAKER_TAKEOVER,
                format!(
                    "Tie breaker resource '{}' on node '{}' is now a regular diskless resource",
                    t.name, t.node
                ),
            )
            .with_ref("RscDfn", t.name.as_str())
            .with_ref("Node", t.node.as_str()),
        );
        plan.change(Change::PutRsc(t.clone()));
    }
    let ids: Vec<Option<i64>> = reqs
        .iter()
        .filter(|r| {
            !takeovers
                .iter()
                .any(|t| t.node.as_str().eq_ignore_ascii_case(&r.node))
        })
        .map(|r| r.drbd_node_id)
        .collect();
    commit_resources(
        &mut plan, cluster, env, observed, rd, layers, &existing, new, ids,
    )?;
    Ok(plan)
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
    // The newest replicas go first.
    let mut candidates = diskful.clone();
    candidates.sort_by_key(|r| std::cmp::Reverse((r.create_timestamp, r.node.clone())));
    let mut gone: Vec<&Resource> = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    for r in candidates {
        if gone.len() + place == diskful.len() {
            break;
        }
        // Checked against what stays: the replicas already chosen count as gone.
        let leaving: Vec<&NodeName> = gone.iter().map(|g| &g.node).collect();
        let check =
            super::safety::refuse_if_in_use(observed, r, "it is not deleted").and_then(|()| {
                super::safety::check_not_only_copy(cluster, observed, rd, r, "deleted", &leaving)
            });
        match check {
            Ok(()) => gone.push(r),
            Err(e) => kept.push(format!("'{}': {}", r.node, e.message)),
        }
    }
    for r in &gone {
        plan.change(Change::PutRsc(mark_deleting(cluster, r)));
        plan.reply(
            Reply::deleted(
                ObjKind::Rsc,
                format!(
                    "Resource '{}' on node '{}' is beyond the place count {place} and is deleted.",
                    r.name, r.node
                ),
            )
            .with_ref("RscDfn", r.name.as_str())
            .with_ref("Node", r.node.as_str()),
        );
    }
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
    let count = match filter.additional_place_count {
        Some(extra) => extra as usize,
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
            (place as usize).saturating_sub(diskful_existing)
        }
    };
    if count == 0 {
        return Ok(Plan::only(
            Reply::info(
                Op::Create,
                ObjKind::Rsc,
                code::WARN_RSC_ALREADY_DEPLOYED,
                format!(
                    "Resource '{}' already has {diskful_existing} diskful replica(s); nothing to place.",
                    rd.name
                ),
            )
            .with_ref("RscDfn", rd.name.as_str()),
        ));
    }
    let requested = if req.layer_list.is_empty() {
        filter.layer_stack.clone()
    } else {
        parse_layer_stack(&req.layer_list, ObjKind::Rsc)?
    };
    crate::plan::check_layer_stack(&requested, ObjKind::Rsc)?;
    let total = diskful_existing + count;
    let fixed = if !rd.layer_stack.is_empty() {
        rd.layer_stack.clone()
    } else {
        requested.clone()
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
    let required_layers: Vec<LayerKind> = if needs_drbd {
        vec![LayerKind::Drbd]
    } else {
        Vec::new()
    };
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
    let mut new: Vec<(Resource, StorPoolName)> = Vec::new();
    for p in &placements {
        let props: Props = [("StorPoolName".to_string(), p.pool.to_string())].into();
        new.push((
            new_resource(env, rd, &p.node, &p.pool, props, BTreeSet::new()),
            p.pool.clone(),
        ));
    }
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
            let diskless_pool = filter
                .storage_pool_diskless_list
                .first()
                .cloned()
                .unwrap_or_else(|| DEFAULT_DISKLESS_STOR_POOL.to_string());
            let diskless_pool = parse_pool_name(&diskless_pool)?;
            for (name, node) in &cluster.nodes {
                let taken = existing.iter().any(|r| &r.node == name)
                    || new.iter().any(|(r, _)| &r.node == name);
                let pool_ok = cluster
                    .stor_pool(name, &diskless_pool)
                    .is_some_and(|sp| sp.kind == ProviderKind::Diskless);
                if taken || !node.node_type.hosts_storage() || !pool_ok {
                    continue;
                }
                if drbd_support(observed, name).is_err() {
                    continue;
                }
                let props: Props = [("StorPoolName".to_string(), diskless_pool.to_string())].into();
                let flags: BTreeSet<String> = [flag::DRBD_DISKLESS.to_string()].into();
                new.push((
                    new_resource(env, rd, name, &diskless_pool, props, flags),
                    diskless_pool.clone(),
                ));
            }
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
            flags: vec![flag::DRBD_DISKLESS.to_string()],
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
    if req.diskful != r.is_diskless() {
        let what = if req.diskful {
            "has a disk"
        } else {
            "is diskless"
        };
        return Ok(Plan::only(
            Reply::warning(
                Op::Modify,
                ObjKind::Rsc,
                code::WARN_NO_EFFECT,
                format!(
                    "Resource '{}' already {what} on node '{}'; nothing to do.",
                    r.name, r.node
                ),
            )
            .with_ref("RscDfn", r.name.as_str())
            .with_ref("Node", r.node.as_str()),
        ));
    }
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
    let mut u = r.clone();
    if let Some(from) = &req.migrate_from {
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
        u.migrate_from = Some(from);
    }
    if req.diskful {
        check_room(cluster, observed, sp, total_size(rd))?;
        u.flags.remove(flag::DISKLESS);
        u.flags.remove(flag::DRBD_DISKLESS);
        u.flags.remove(flag::TIE_BREAKER);
    } else {
        super::safety::check_not_only_copy(cluster, observed, rd, r, "made diskless", &[])?;
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
        u.flags.insert(flag::DRBD_DISKLESS.to_string());
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
    move_tiebreaker(&mut plan, cluster, env, observed, rd, &live, false)?;
    plan.change(Change::PutRsc(u.clone()));
    plan.reply(
        Reply::modified(
            ObjKind::Rsc,
            if req.diskful {
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
        .with_ref("RscDfn", r.name.as_str())
        .with_ref("Node", r.node.as_str()),
    );
    Ok(plan)
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

fn rsc_of<'a>(cluster: &'a Cluster, rsc: &str, node: &str) -> Result<&'a Resource, ApiError> {
    let rd = rd_of(cluster, rsc)?;
    let node_name = parse_node_name(node)?;
    cluster.resource(&rd.name, &node_name).ok_or_else(|| {
        ApiError::not_found(
            code::FAIL_NOT_FOUND_RSC,
            ObjKind::Rsc,
            "resource",
            &format!("{rsc}' on node '{node}"),
        )
    })
}

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
    for r in super::drbd_option_replies(ObjKind::Rsc, change) {
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
    let Some(v) = u32::try_from(nr).ok().and_then(|n| r.volumes.get(&n)) else {
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
    let rsc_name = super::parse_rsc_name(rsc)?;
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
            super::safety::check_resource_removal(cluster, observed, rd, r)?;
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
        .with_ref("RscDfn", r.name.as_str())
        .with_ref("Node", r.node.as_str()),
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
        if r.is_deleting() {
            if r.delete_generation.is_some_and(|g| g <= applied) && held.is_none() {
                plan.changes.extend(super::rconn::drop_connections(
                    cluster,
                    &r.name,
                    Some(&r.node),
                ));
                plan.change(Change::DelRsc(r.name.clone(), r.node.clone()));
                plan.reply(Reply::deleted(
                    ObjKind::Rsc,
                    format!("Resource '{}' on node '{}' deleted.", r.name, r.node),
                ));
                touched_rds.insert(r.name.clone());
            }
            continue;
        }
        // Volumes whose definitions are being deleted.
        let gone: Vec<u32> = r
            .volumes
            .keys()
            .filter(|nr| {
                rd.volume_definitions.get(nr).is_some_and(|vd| {
                    vd.is_deleting()
                        && vd.delete_generation.is_some_and(|g| g <= applied)
                        && !held.as_ref().is_some_and(|h| h.contains(nr))
                })
            })
            .copied()
            .collect();
        if !gone.is_empty() {
            let mut u = r.clone();
            for nr in &gone {
                u.volumes.remove(nr);
            }
            plan.change(Change::PutRsc(u));
            touched_rds.insert(r.name.clone());
        }
    }
    // Definitions whose last resource or volume just went.
    for name in touched_rds {
        let Some(rd) = cluster.rsc_dfns.get(&name) else {
            continue;
        };
        let remaining: Vec<&Resource> = cluster
            .resources_of(&name)
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
            continue;
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
    plan
}
