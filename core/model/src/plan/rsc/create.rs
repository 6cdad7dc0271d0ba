//! `resource create`: resources on the nodes the request names.

use super::commit::commit_resources;
use super::layers::{choose_layers, Layers};
use super::pools::{check_room, resolve_pool, total_size};
use super::shared::{live_resources, new_resource};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::flags::{Flag, Flags};
use crate::kinds::{LayerKind, ProviderKind};
use crate::name::{NodeName, StorPoolName};
use crate::objects::{Node, Resource, ResourceDefinition, StorPool, DEFAULT_STOR_POOL};
use crate::plan::common::{rd_of, refuse_if_deleting, storage_node};
use crate::plan::{parse_layer_stack, prop_error, Env, Observed, Op, Plan, PlanResult, Reply};
use crate::props::{Props, PropsChange, PropsOwner};

#[derive(Debug, Clone, Default)]
pub struct RscCreate {
    pub node: String,
    pub props: Props,
    pub flags: Vec<String>,
    pub layer_list: Vec<String>,
    pub drbd_node_id: Option<i64>,
}

/// Creates the resources `reqs` name for definition `rsc`. A diskless resource asked for on
/// the node of the definition's tie-breaker takes the tie-breaker over.
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
    let mut batch = NewResources::new(cluster, rd);
    for req in reqs {
        batch.add(env, observed, req)?;
    }
    let layers = batch.choose_layers(observed, &existing)?;
    let NewResources { new, takeovers, .. } = batch;
    let mut plan = Plan::new();
    // Taken-over tie-breakers count as the diskless resources they become.
    let existing = with_takeovers(existing, &takeovers);
    take_over_tiebreakers(&mut plan, &takeovers);
    let ids = requested_node_ids(reqs, &takeovers);
    commit_resources(
        &mut plan, cluster, env, observed, rd, layers, &existing, new, ids,
    )?;
    Ok(plan)
}

/// The resources one create request asks for, gathered entry by entry.
struct NewResources<'a> {
    cluster: &'a Cluster,
    rd: &'a ResourceDefinition,
    /// Space every new diskful resource needs.
    size_kib: u64,
    /// New resources with their storage pools.
    new: Vec<(Resource, StorPoolName)>,
    /// Tie-breakers that become regular diskless resources.
    takeovers: Vec<Resource>,
    /// The layer list the entries ask for (all the same, or none).
    requested_layers: Vec<LayerKind>,
}

impl<'a> NewResources<'a> {
    fn new(cluster: &'a Cluster, rd: &'a ResourceDefinition) -> Self {
        NewResources {
            cluster,
            rd,
            size_kib: total_size(rd),
            new: Vec::new(),
            takeovers: Vec::new(),
            requested_layers: Vec::new(),
        }
    }

    /// Adds what one entry of the request asks for: a new resource, or the takeover of the
    /// tie-breaker on its node.
    fn add(
        &mut self,
        env: &mut dyn Env,
        observed: &dyn Observed,
        req: &RscCreate,
    ) -> Result<(), ApiError> {
        let (node, n) = storage_node(self.cluster, &req.node, ObjKind::Rsc, "hold resources")?;
        let tiebreaker = self.tiebreaker_on(&node, n)?;
        let mut flags = parse_flags(&req.flags)?;
        let mut diskless = !flags.is_empty();
        if tiebreaker.is_some() && !diskless {
            self.refuse_diskful_over_tiebreaker(req, &node, n)?;
        }
        let pool = resolve_pool(self.cluster, self.rd, &req.props, &node, diskless)?;
        let sp = self.storage_pool(&node, n, &pool)?;
        if sp.kind == ProviderKind::Diskless {
            if !diskless {
                flags.insert(Flag::DrbdDiskless);
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
            self.takeovers.push(take_over(tb, req)?);
            return Ok(());
        }
        if !diskless {
            check_room(self.cluster, observed, sp, self.size_kib)?;
        }
        let props = new_props(req, &pool)?;
        self.note_layers(req)?;
        let r = new_resource(env, self.rd, &node, &pool, props, flags);
        self.new.push((r, pool));
        Ok(())
    }

    /// Refuses a node that already has the resource or that the request names twice; a live
    /// tie-breaker on the node is returned instead, to be taken over by a diskless resource.
    fn tiebreaker_on(&self, node: &NodeName, n: &Node) -> Result<Option<&'a Resource>, ApiError> {
        let rd = self.rd;
        let tiebreaker = self
            .cluster
            .resource(&rd.name, node)
            .filter(|r| r.is_tiebreaker() && !r.is_deleting());
        if let Some(r) = self
            .cluster
            .resource(&rd.name, node)
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
        if self.new.iter().any(|(r, _)| &r.node == node)
            || self.takeovers.iter().any(|r| &r.node == node)
        {
            return Err(ApiError::new(
                code::FAIL_EXISTS_RSC,
                ObjKind::Rsc,
                format!("Node '{}' is named twice in the request", n.name),
            ));
        }
        Ok(tiebreaker)
    }

    /// Refuses a diskful resource on the node of the tie-breaker (unless the pool the entry
    /// would use is DISKLESS, which makes it a diskless one after all).
    fn refuse_diskful_over_tiebreaker(
        &self,
        req: &RscCreate,
        node: &NodeName,
        n: &Node,
    ) -> Result<(), ApiError> {
        let diskless_pool = resolve_pool(self.cluster, self.rd, &req.props, node, false)
            .ok()
            .and_then(|p| self.cluster.stor_pool(node, &p))
            .is_some_and(|sp| sp.kind == ProviderKind::Diskless);
        if diskless_pool {
            return Ok(());
        }
        Err(ApiError::new(
            code::FAIL_EXISTS_RSC,
            ObjKind::Rsc,
            format!(
                "Node '{}' holds the diskless tie-breaker of resource '{}'; a diskful replica cannot be created there",
                n.name, self.rd.name
            ),
        )
        .correction("Create a diskless resource there to take the tie-breaker over, or place the diskful replica on another node"))
    }

    /// The storage pool `pool` of the node, which must exist.
    fn storage_pool(
        &self,
        node: &NodeName,
        n: &Node,
        pool: &StorPoolName,
    ) -> Result<&'a StorPool, ApiError> {
        self.cluster.stor_pool(node, pool).ok_or_else(|| {
            let default = pool.as_str() == DEFAULT_STOR_POOL;
            ApiError::new(
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
            })
        })
    }

    /// Records the layer list an entry asks for; the entries of one request must agree.
    fn note_layers(&mut self, req: &RscCreate) -> Result<(), ApiError> {
        let layers = parse_layer_stack(&req.layer_list, ObjKind::Rsc)?;
        if !layers.is_empty() {
            if !self.requested_layers.is_empty() && self.requested_layers != layers {
                return Err(ApiError::new(
                    code::FAIL_INVLD_LAYER_STACK,
                    ObjKind::Rsc,
                    "The resources of one request must use the same layer list",
                ));
            }
            self.requested_layers = layers;
        }
        Ok(())
    }

    /// The layer stack of the definition with the new resources added to `existing`: the
    /// request's layer list, else the group's for a definition without one of its own.
    fn choose_layers(
        &self,
        observed: &dyn Observed,
        existing: &[&Resource],
    ) -> Result<Layers, ApiError> {
        let rd = self.rd;
        let new = &self.new;
        let nodes: Vec<&NodeName> = existing
            .iter()
            .map(|r| &r.node)
            .chain(new.iter().map(|(r, _)| &r.node))
            .collect();
        let diskful = existing.iter().filter(|r| !r.is_diskless()).count()
            + new.iter().filter(|(r, _)| !r.is_diskless()).count();
        let mut requested_layers = self.requested_layers.clone();
        // The group's layer list applies to a definition that has none of its own yet.
        if requested_layers.is_empty() && rd.layer_stack.is_empty() {
            if let Some(g) = self.cluster.rsc_grps.get(&rd.resource_group) {
                requested_layers = g.select_filter.layer_stack.clone();
            }
        }
        choose_layers(observed, rd, &requested_layers, &nodes, diskful)
    }
}

/// The flags of an entry: DISKLESS or DRBD_DISKLESS, or none for a diskful resource.
fn parse_flags(flags: &[String]) -> Result<Flags, ApiError> {
    let mut out = Flags::new();
    for f in flags.iter().filter(|f| !f.is_empty()) {
        match Flag::parse(&f.to_ascii_uppercase()) {
            flag @ (Flag::Diskless | Flag::DrbdDiskless) => {
                out.insert(flag);
            }
            _ => {
                return Err(ApiError::new(
                    code::FAIL_INVLD_REQUEST,
                    ObjKind::Rsc,
                    format!("Unknown resource flag '{f}'"),
                )
                .correction("Use DISKLESS or DRBD_DISKLESS, or no flag for a diskful resource"))
            }
        }
    }
    Ok(out)
}

/// The properties of a new resource: the entry's, with the storage pool it uses.
fn new_props(req: &RscCreate, pool: &StorPoolName) -> Result<Props, ApiError> {
    let mut props = PropsChange {
        set: req.props.clone(),
        ..Default::default()
    }
    .apply(PropsOwner::Resource, &Props::new())
    .map_err(|e| prop_error(ObjKind::Rsc, e))?;
    props
        .entry("StorPoolName".into())
        .or_insert_with(|| pool.to_string());
    Ok(props)
}

/// The tie-breaker `tb` turned into a regular diskless resource with the entry's properties.
fn take_over(tb: &Resource, req: &RscCreate) -> Result<Resource, ApiError> {
    let mut taken = tb.clone();
    taken.flags.remove(Flag::TieBreaker);
    taken.flags.insert(Flag::DrbdDiskless);
    taken.props = PropsChange {
        set: req.props.clone(),
        ..Default::default()
    }
    .apply(PropsOwner::Resource, &taken.props)
    .map_err(|e| prop_error(ObjKind::Rsc, e))?;
    Ok(taken)
}

/// The `existing` resources with the taken-over tie-breakers in their new form.
fn with_takeovers<'a>(existing: Vec<&'a Resource>, takeovers: &'a [Resource]) -> Vec<&'a Resource> {
    existing
        .into_iter()
        .map(|r| takeovers.iter().find(|t| t.node == r.node).unwrap_or(r))
        .collect()
}

/// Persists the taken-over tie-breakers and says so.
fn take_over_tiebreakers(plan: &mut Plan, takeovers: &[Resource]) {
    for t in takeovers {
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
            .with_rsc_refs(t),
        );
        plan.change(Change::PutRsc(t.clone()));
    }
}

/// The DRBD node ids the entries ask for, in the order of the new resources (a takeover
/// keeps its node id).
fn requested_node_ids(reqs: &[RscCreate], takeovers: &[Resource]) -> Vec<Option<i64>> {
    reqs.iter()
        .filter(|r| {
            !takeovers
                .iter()
                .any(|t| t.node.as_str().eq_ignore_ascii_case(&r.node))
        })
        .map(|r| r.drbd_node_id)
        .collect()
}
