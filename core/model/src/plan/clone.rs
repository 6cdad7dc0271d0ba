//! `resource-definition clone`: a new definition with the data of an existing one at one
//! moment, made in one transaction: definition, volume definitions, and a resource on every
//! node of the source.
//!
//! Where every pool of the source takes snapshots, the controller takes one first (so every
//! replica's copy is of the same moment, with DRBD I/O suspended while it is taken) and each
//! volume is made from its node's copy by the provider (a thin snapshot, a reflink copy, a
//! ZFS clone): [`create`]. Otherwise each node copies its replica block by block into the
//! clone's volume in the same pool ([`create_copy`]); the moment is consistent because the
//! source must be unused (and, with DRBD, up to date everywhere) while it is copied.

use super::common::{rd_of, refuse_if_deleting};
use super::rd::{build_rd, create_vd, created_rd_reply, RscDfnCreate, VlmDfnCreate};
use super::rsc::create::{create_resources, RscCreate};
use super::snapshot::{restore_resources, restore_volume_definitions, SNAPSHOT_KINDS};
use super::{Env, Observed, Plan, PlanResult};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::{LayerKind, ProviderKind};
use crate::name::ResourceName;
use crate::objects::{Resource, ResourceDefinition};
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
    let mut b = Building::start(cluster, rd);
    let vds = restore_volume_definitions(&b.work, env, observed, src, snap, &dst)?;
    b.add(vds);
    let rscs = restore_resources(&b.work, env, observed, src, snap, &dst, &[])?;
    b.add(rscs);
    Ok(b.plan)
}

/// A clone's plan being built, each step planned against the cluster as the steps before
/// leave it.
struct Building {
    plan: Plan,
    work: Cluster,
}

impl Building {
    /// Starts with the clone's definition.
    fn start(cluster: &Cluster, rd: ResourceDefinition) -> Building {
        let mut b = Building {
            plan: Plan::new(),
            work: cluster.clone(),
        };
        b.plan.reply(created_rd_reply(&rd));
        b.add(Plan {
            changes: vec![Change::PutRscDfn(rd)],
            replies: Vec::new(),
        });
        b
    }

    fn add(&mut self, p: Plan) {
        for c in &p.changes {
            self.work.apply(c.clone());
        }
        self.plan.extend(p);
    }
}

/// The source's replicas that hold data.
fn sources<'a>(cluster: &'a Cluster, rd: &ResourceDefinition) -> Vec<&'a Resource> {
    cluster
        .resources_of(&rd.name)
        .filter(|r| !r.is_deleting() && !r.is_diskless())
        .collect()
}

/// Whether every pool holding the source's data takes snapshots (the clone is then made from
/// a snapshot; otherwise by copying).
pub fn by_snapshot(cluster: &Cluster, src: &str) -> Result<bool, ApiError> {
    let rd = rd_of(cluster, src)?;
    Ok(sources(cluster, rd).iter().all(|r| {
        r.volumes.values().all(|v| {
            cluster
                .stor_pool(&r.node, &v.storage_pool)
                .is_some_and(|sp| SNAPSHOT_KINDS.contains(&sp.kind))
        })
    }))
}

/// Kinds whose volumes a node can copy into a new volume of the same pool.
const COPY_KINDS: &[ProviderKind] = &[
    ProviderKind::Lvm,
    ProviderKind::LvmThin,
    ProviderKind::File,
    ProviderKind::FileThin,
];

/// Refuses copying the source now: it must be unused on every node (nothing may change it
/// while it is copied), its nodes online, with DRBD every replica up to date, and each
/// replica's volumes in one pool of a kind that can be copied.
fn check_copy(
    cluster: &Cluster,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
) -> Result<(), ApiError> {
    let refuse = |why: String, correction: &str| {
        ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::RscDfn,
            format!("Resource '{}' cannot be copied into a clone now", rd.name),
        )
        .cause(why)
        .correction(correction)
    };
    let drbd = rd.layer_stack.contains(&LayerKind::Drbd);
    for r in cluster.resources_of(&rd.name).filter(|r| !r.is_deleting()) {
        if !observed.is_online(&r.node) {
            return Err(refuse(
                format!("Node '{}' holds it and is offline", r.node),
                "Bring the node back first",
            ));
        }
        if crate::plan::safety::seen_in_use(observed, &r.node, &rd.name) {
            return Err(refuse(
                format!("It is in use on node '{}'; its pools take no snapshots, so it is copied, and nothing may write to it meanwhile", r.node),
                "Stop what uses it (the VM, container or mount) until the clone is made, or keep it in a pool with snapshots (LVM_THIN, FILE_THIN, ZFS, ZFS_THIN)",
            ));
        }
        if r.is_diskless() {
            continue;
        }
        let pools: std::collections::BTreeSet<_> =
            r.volumes.values().map(|v| v.storage_pool.clone()).collect();
        if pools.len() > 1 {
            return Err(refuse(
                format!(
                    "Its volumes on node '{}' are in several storage pools",
                    r.node
                ),
                "Clone resources whose volumes share one pool per node",
            ));
        }
        for p in &pools {
            let kind = cluster.stor_pool(&r.node, p).map(|sp| sp.kind);
            if !kind.is_some_and(|k| COPY_KINDS.contains(&k)) {
                return Err(refuse(
                    format!("Storage pool '{p}' on node '{}' can neither take snapshots nor copy volumes", r.node),
                    "Clone from LVM, LVM_THIN, FILE, FILE_THIN, ZFS or ZFS_THIN pools",
                ));
            }
        }
        if drbd {
            let up = observed.drbd_state(&r.node, &rd.name).is_some_and(|d| {
                r.volumes
                    .keys()
                    .all(|n| d.volumes.get(n).is_some_and(|v| v.is_up_to_date()))
            });
            if !up {
                return Err(refuse(
                    format!(
                        "Its replica on node '{}' is not known to be up to date",
                        r.node
                    ),
                    &format!(
                        "Wait with 'linstor resource-definition wait-sync {}', then clone",
                        rd.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Creates the clone of `src` by copying: definition, the source's volume definitions, and
/// a resource on every node holding the source's data, in the same pool, whose volumes the
/// node fills from the source's (`Resource::cloned_from`).
pub fn create_copy(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    src: &str,
    req: &CloneRequest,
) -> PlanResult {
    let rd = check(cluster, env, src, req)?;
    let source = rd_of(cluster, src)?;
    check_copy(cluster, observed, source)?;
    let dst = rd.name.clone();
    let mut b = Building::start(cluster, rd);
    for vd in source
        .volume_definitions
        .values()
        .filter(|v| !v.is_deleting())
    {
        let req = VlmDfnCreate {
            volume_number: Some(vd.number as i64),
            size_kib: vd.size_kib as i64,
            ..Default::default()
        };
        let p = create_vd(&b.work, env, observed, dst.as_str(), &req)?;
        b.add(p);
    }
    let reqs: Vec<RscCreate> = sources(cluster, source)
        .iter()
        .filter_map(|r| {
            let pool = r.volumes.values().next()?.storage_pool.to_string();
            Some(RscCreate {
                node: r.node.to_string(),
                props: [("StorPoolName".to_string(), pool)].into(),
                ..Default::default()
            })
        })
        .collect();
    let mut p = create_resources(&b.work, env, observed, dst.as_str(), &reqs)?;
    for c in p.changes.iter_mut() {
        if let Change::PutRsc(r) = c {
            if r.name == dst && !r.is_diskless() {
                r.cloned_from = Some(source.name.clone());
            }
        }
    }
    b.add(p);
    Ok(b.plan)
}
