//! `resource create`: resources on the nodes the request names.

use std::collections::BTreeSet;

use super::commit::commit_resources;
use super::layers::choose_layers;
use super::pools::{check_room, resolve_pool, total_size};
use super::shared::{live_resources, new_resource};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::{LayerKind, ProviderKind};
use crate::name::{NodeName, StorPoolName};
use crate::objects::{flag, Resource, DEFAULT_STOR_POOL};
use crate::plan::common::{rd_of, refuse_if_deleting};
use crate::plan::{
    parse_layer_stack, parse_node_name, prop_error, Env, Observed, Op, Plan, PlanResult, Reply,
};
use crate::props::{Props, PropsChange, PropsOwner};

#[derive(Debug, Clone, Default)]
pub struct RscCreate {
    pub node: String,
    pub props: Props,
    pub flags: Vec<String>,
    pub layer_list: Vec<String>,
    pub drbd_node_id: Option<i64>,
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
