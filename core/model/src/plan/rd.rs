//! Resource definitions and volume definitions.

use super::common::by_volume_number;
pub use super::common::rd_of;
use super::common::refuse_if_deleting;
use super::{
    parse_layer_stack, parse_rg_name, parse_rsc_name, prop_error, Env, Observed, Op, Plan,
    PlanResult, Reply,
};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::flags::Flag;
use crate::name::ResourceName;
use crate::objects::{ResourceDefinition, Volume, VolumeDefinition, DEFAULT_RSC_GRP};
use crate::props::{Props, PropsChange, PropsOwner};

#[derive(Debug, Clone, Default)]
pub struct RscDfnCreate {
    pub name: Option<String>,
    pub external_name: Option<String>,
    pub props: Props,
    pub resource_group: Option<String>,
    pub layer_stack: Vec<String>,
    pub drbd_port: Option<i64>,
    pub drbd_secret: Option<String>,
    pub drbd_peer_slots: Option<i64>,
    pub drbd_transport: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RscDfnModify {
    pub props: PropsChange,
    pub drbd_port: Option<i64>,
    pub drbd_peer_slots: Option<i64>,
    pub layer_stack: Option<Vec<String>>,
    pub resource_group: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct VlmDfnCreate {
    pub volume_number: Option<i64>,
    pub size_kib: i64,
    pub props: Props,
    pub flags: Vec<String>,
    pub minor: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct VlmDfnModify {
    pub size_kib: Option<i64>,
    pub props: PropsChange,
    pub flags: Vec<String>,
    /// Shrinking is asked for explicitly (it cuts off the end of the volume).
    pub allow_shrink: bool,
}

const MAX_EXTERNAL_NAME: usize = 255;

/// Builds a valid resource name from a free-form external name: the name itself when it is
/// valid and free, otherwise a sanitised form with a numeric suffix when needed.
pub fn name_from_external(cluster: &Cluster, ext: &str) -> Result<ResourceName, ApiError> {
    if let Ok(n) = ResourceName::new(ext) {
        if !cluster.rsc_dfns.contains_key(&n) {
            return Ok(n);
        }
    }
    let mut base: String = ext
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let starts_ok = base
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let has_letter = base.chars().any(|c| c.is_ascii_alphabetic());
    let reserved = ["all", "proxy"]
        .iter()
        .any(|w| w.eq_ignore_ascii_case(&base));
    if !starts_ok || !has_letter || reserved || base.len() < 2 {
        base = format!("rsc_{base}");
    }
    base.truncate(48);
    for attempt in 0..100_000u32 {
        let candidate = if attempt == 0 {
            base.clone()
        } else {
            let suffix = format!("_{attempt}");
            let mut b = base.clone();
            b.truncate(48 - suffix.len());
            format!("{b}{suffix}")
        };
        if let Ok(n) = ResourceName::new(&candidate) {
            if !cluster.rsc_dfns.contains_key(&n) {
                return Ok(n);
            }
        }
    }
    Err(ApiError::new(
        code::FAIL_INVLD_EXT_NAME,
        ObjKind::RscDfn,
        format!("Could not derive a free resource name from '{ext}'"),
    ))
}

fn check_external_name(ext: &str) -> Result<(), ApiError> {
    if ext.is_empty() || ext.len() > MAX_EXTERNAL_NAME || ext.chars().any(|c| c.is_control()) {
        return Err(ApiError::new(
            code::FAIL_INVLD_EXT_NAME,
            ObjKind::RscDfn,
            format!("Invalid external name '{ext}'"),
        )
        .correction(format!(
            "Use 1 to {MAX_EXTERNAL_NAME} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_port(
    cluster: &Cluster,
    port: i64,
    except: Option<&ResourceName>,
) -> Result<u16, ApiError> {
    if !(1..=65535).contains(&port) {
        return Err(ApiError::new(
            code::FAIL_INVLD_RSC_PORT,
            ObjKind::RscDfn,
            format!("Invalid TCP port {port}"),
        )
        .correction("Use a port from 1 to 65535"));
    }
    let taken = cluster.rsc_dfns.values().find_map(|d| {
        if Some(&d.name) == except {
            return None;
        }
        if d.drbd_port == Some(port as u16) {
            return Some(d.name.clone());
        }
        cluster
            .resources_of(&d.name)
            .any(|r| r.tcp_port == Some(port as u16))
            .then(|| d.name.clone())
    });
    if let Some(other) = taken.and_then(|n| cluster.rsc_dfns.get(&n)) {
        return Err(ApiError::new(
            code::FAIL_INVLD_RSC_PORT,
            ObjKind::RscDfn,
            format!(
                "TCP port {port} is already used by resource '{}'",
                other.name
            ),
        )
        .correction("Choose another port, or leave it out to have one allocated"));
    }
    Ok(port as u16)
}

fn check_peer_slots(n: i64) -> Result<u32, ApiError> {
    if !(1..=31).contains(&n) {
        return Err(ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::RscDfn,
            format!("Invalid number of peer slots {n}"),
        )
        .correction("Use 1 to 31 peer slots"));
    }
    Ok(n as u32)
}

/// Builds (without persisting) a new resource definition.
pub fn build_rd(
    cluster: &Cluster,
    env: &mut dyn Env,
    req: &RscDfnCreate,
) -> Result<ResourceDefinition, ApiError> {
    let external_name = match &req.external_name {
        Some(e) if !e.is_empty() => {
            check_external_name(e)?;
            if let Some(owner) = cluster.ext_names.get(e) {
                return Err(ApiError::new(
                    code::FAIL_EXISTS_EXT_NAME,
                    ObjKind::RscDfn,
                    format!("External name '{e}' is already used by resource '{owner}'"),
                ));
            }
            Some(e.clone())
        }
        _ => None,
    };
    let name = match (&req.name, &external_name) {
        (Some(n), _) if !n.is_empty() => parse_rsc_name(n)?,
        (_, Some(ext)) => name_from_external(cluster, ext)?,
        _ => {
            return Err(ApiError::new(
                code::FAIL_INVLD_RSC_NAME,
                ObjKind::RscDfn,
                "A resource definition needs a name or an external name",
            ))
        }
    };
    if let Some(existing) = cluster.rsc_dfns.get(&name) {
        return Err(ApiError::new(
            code::FAIL_EXISTS_RSC_DFN,
            ObjKind::RscDfn,
            format!("Resource definition '{}' already exists", existing.name),
        )
        .correction("Choose another name, or delete the existing resource definition first"));
    }
    let rg_name = parse_rg_name(
        req.resource_group
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_RSC_GRP),
    )?;
    let Some(rg) = cluster.rsc_grps.get(&rg_name) else {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_RSC_GRP,
            ObjKind::RscGrp,
            "resource group",
            rg_name.as_str(),
        ));
    };
    let layer_stack = parse_layer_stack(&req.layer_stack, ObjKind::RscDfn)?;
    let props = PropsChange {
        set: req.props.clone(),
        ..Default::default()
    }
    .apply(PropsOwner::ResourceDefinition, &Props::new())
    .map_err(|e| prop_error(ObjKind::RscDfn, e))?;
    let drbd_port = req
        .drbd_port
        .map(|p| check_port(cluster, p, None))
        .transpose()?;
    let drbd_peer_slots = req.drbd_peer_slots.map(check_peer_slots).transpose()?;
    Ok(ResourceDefinition {
        name,
        external_name,
        props,
        flags: Default::default(),
        layers_chosen: !layer_stack.is_empty(),
        layer_stack,
        resource_group: rg.name.clone(),
        volume_definitions: Default::default(),
        drbd_port,
        drbd_secret: req.drbd_secret.clone().filter(|s| !s.is_empty()),
        drbd_peer_slots,
        drbd_transport: req.drbd_transport.clone().filter(|s| !s.is_empty()),
        delete_generation: None,
        uuid: env.uuid(),
    })
}

pub fn created_rd_reply(rd: &ResourceDefinition) -> Reply {
    let mut r = Reply::created(
        ObjKind::RscDfn,
        format!("New resource definition '{}' created.", rd.name),
    )
    .with_ref("RscDfn", rd.name.as_str());
    if let Some(ext) = &rd.external_name {
        r = r.with_ref("ExternalName", ext.as_str());
    }
    r
}

pub fn create_rd(cluster: &Cluster, env: &mut dyn Env, req: &RscDfnCreate) -> PlanResult {
    let rd = build_rd(cluster, env, req)?;
    let mut plan = Plan::new();
    plan.reply(created_rd_reply(&rd));
    plan.change(Change::PutRscDfn(rd));
    Ok(plan)
}

pub fn modify_rd(
    cluster: &Cluster,
    observed: &dyn Observed,
    rsc: &str,
    req: &RscDfnModify,
) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    let mut updated = rd.clone();
    updated.props = req
        .props
        .apply(PropsOwner::ResourceDefinition, &rd.props)
        .map_err(|e| prop_error(ObjKind::RscDfn, e))?;
    let has_rscs = cluster.resources_of(&rd.name).next().is_some();
    if let Some(stack) = &req.layer_stack {
        let stack = parse_layer_stack(stack, ObjKind::RscDfn)?;
        if has_rscs && stack != rd.layer_stack {
            return Err(ApiError::new(
                code::FAIL_IN_USE,
                ObjKind::RscDfn,
                format!(
                    "The layer list of '{}' cannot change while it has resources",
                    rd.name
                ),
            ));
        }
        updated.layers_chosen = !stack.is_empty();
        updated.layer_stack = stack;
    }
    if let Some(port) = req.drbd_port {
        updated.drbd_port = Some(check_port(cluster, port, Some(&rd.name))?);
    }
    if let Some(slots) = req.drbd_peer_slots {
        updated.drbd_peer_slots = Some(check_peer_slots(slots)?);
    }
    if let Some(rg) = req.resource_group.as_deref().filter(|s| !s.is_empty()) {
        let rg_name = parse_rg_name(rg)?;
        let Some(group) = cluster.rsc_grps.get(&rg_name) else {
            return Err(ApiError::not_found(
                code::FAIL_NOT_FOUND_RSC_GRP,
                ObjKind::RscGrp,
                "resource group",
                rg,
            ));
        };
        updated.resource_group = group.name.clone();
    }
    // What its nodes' DRBD cannot do (quorum on DRBD 8.4) is refused now, not at the next
    // resource created.
    if updated.layer_stack.contains(&crate::kinds::LayerKind::Drbd) {
        let live: Vec<&crate::objects::Resource> = cluster
            .resources_of(&rd.name)
            .filter(|r| !r.is_deleting() && !r.is_tiebreaker())
            .collect();
        super::drbd84::check(cluster, observed, &updated, &live)?;
    }
    let mut plan = Plan::new();
    plan.change(Change::PutRscDfn(updated));
    for r in super::drbd_option_replies(ObjKind::RscDfn, &req.props) {
        plan.reply(r);
    }
    plan.reply(
        Reply::modified(
            ObjKind::RscDfn,
            format!("Resource definition '{}' modified.", rd.name),
        )
        .with_ref("RscDfn", rd.name.as_str()),
    );
    Ok(plan)
}

pub fn delete_rd(cluster: &Cluster, observed: &dyn Observed, rsc: &str) -> PlanResult {
    let name = parse_rsc_name(rsc)?;
    let Some(rd) = cluster.rsc_dfns.get(&name) else {
        return Ok(Plan::only(
            Reply::warning(
                Op::Delete,
                ObjKind::RscDfn,
                code::WARN_NOT_FOUND,
                format!("Resource definition '{rsc}' not found; nothing to delete."),
            )
            .with_ref("RscDfn", rsc),
        ));
    };
    super::common::refuse_rd_delete_with_snapshots(cluster, &name)?;
    let mut plan = Plan::new();
    let rscs: Vec<_> = cluster.resources_of(&name).collect();
    if rscs.is_empty() {
        plan.changes
            .extend(super::rconn::drop_connections(cluster, &name, None));
        plan.change(Change::DelRscDfn(name.clone()));
        plan.reply(
            Reply::deleted(
                ObjKind::RscDfn,
                format!("Resource definition '{}' deleted.", rd.name),
            )
            .with_ref("RscDfn", rd.name.as_str()),
        );
        return Ok(plan);
    }
    super::safety::check_definition_removal(cluster, observed, rd)?;
    let generation = cluster.generation + 1;
    let mut updated = rd.clone();
    updated.flags.insert(Flag::Delete);
    updated.delete_generation.get_or_insert(generation);
    plan.change(Change::PutRscDfn(updated));
    for r in rscs {
        if !r.is_deleting() {
            let mut u = r.clone();
            u.flags.insert(Flag::Delete);
            u.delete_generation = Some(generation);
            plan.change(Change::PutRsc(u));
        }
    }
    plan.reply(
        Reply::deleted(
            ObjKind::RscDfn,
            format!("Resource definition '{}' marked for deletion.", rd.name),
        )
        .with_ref("RscDfn", rd.name.as_str()),
    );
    Ok(plan)
}

fn size_error(size: i64) -> ApiError {
    ApiError::new(
        code::FAIL_INVLD_VLM_SIZE,
        ObjKind::VlmDfn,
        format!("Invalid volume size {size} KiB"),
    )
    .correction("Give a size larger than zero, e.g. 2G")
}

/// Builds (without persisting) a volume definition for `rd`, which may be new.
pub fn build_vd(
    cluster: &Cluster,
    env: &mut dyn Env,
    rd: &ResourceDefinition,
    req: &VlmDfnCreate,
) -> Result<VolumeDefinition, ApiError> {
    let number = super::volume_number(
        req.volume_number,
        |n| rd.volume_definitions.contains_key(&n),
        ObjKind::VlmDfn,
        code::FAIL_EXISTS_VLM_DFN,
        |n| {
            format!(
                "Volume definition {n} of resource '{}' already exists",
                rd.name
            )
        },
    )?;
    if req.size_kib <= 0 {
        return Err(size_error(req.size_kib));
    }
    let props = PropsChange {
        set: req.props.clone(),
        ..Default::default()
    }
    .apply(PropsOwner::VolumeDefinition, &Props::new())
    .map_err(|e| prop_error(ObjKind::VlmDfn, e))?;
    let mut flags = Default::default();
    super::apply_volume_flags(
        &mut flags,
        super::volume_flags(&req.flags, ObjKind::VlmDfn, "volume definition")?,
    );
    let minor = match req.minor {
        Some(m) => {
            if !(0..=1_048_575).contains(&m) {
                return Err(ApiError::new(
                    code::FAIL_INVLD_MINOR_NR,
                    ObjKind::VlmDfn,
                    format!("Invalid minor number {m}"),
                )
                .correction("Use a minor number from 0 to 1048575"));
            }
            let clash = cluster.rsc_dfns.values().find(|d| {
                d.volume_definitions
                    .values()
                    .any(|v| v.minor == Some(m as u32))
            });
            if let Some(other) = clash {
                return Err(ApiError::new(
                    code::FAIL_INVLD_MINOR_NR,
                    ObjKind::VlmDfn,
                    format!(
                        "Minor number {m} is already used by resource '{}'",
                        other.name
                    ),
                )
                .correction("Choose another minor number, or leave it out to have one allocated"));
            }
            Some(m as u32)
        }
        None => None,
    };
    Ok(VolumeDefinition {
        number,
        size_kib: req.size_kib as u64,
        props,
        flags,
        minor,
        delete_generation: None,
        uuid: env.uuid(),
    })
}

pub fn create_vd(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rsc: &str,
    req: &VlmDfnCreate,
) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    refuse_if_deleting(rd)?;
    let mut vd = build_vd(cluster, env, rd, req)?;
    if vd.minor.is_none() && rd.layer_stack.contains(&crate::kinds::LayerKind::Drbd) {
        vd.minor = Some(super::drbd::free_minor(cluster, &Default::default())?);
    }
    let mut plan = Plan::new();
    // Deployed resources get the new volume in the pool their other volumes use.
    for r in cluster.resources_of(&rd.name).filter(|r| !r.is_deleting()) {
        let pool = r
            .volumes
            .values()
            .next()
            .map(|v| v.storage_pool.clone())
            .or_else(|| super::rsc::pools::pool_for(cluster, rd, r, &r.node).ok());
        let Some(pool) = pool else {
            return Err(ApiError::new(
                code::FAIL_NOT_FOUND_DFLT_STOR_POOL,
                ObjKind::VlmDfn,
                format!(
                    "No storage pool known for resource '{}' on node '{}'",
                    rd.name, r.node
                ),
            ));
        };
        if !r.is_diskless() {
            if let Some(sp) = cluster.stor_pool(&r.node, &pool) {
                super::rsc::pools::check_room(cluster, observed, sp, vd.size_kib)?;
            }
        }
        let mut u = r.clone();
        u.volumes.insert(
            vd.number,
            Volume {
                number: vd.number,
                storage_pool: pool,
                props: Props::new(),
                flags: Default::default(),
                uuid: env.uuid(),
            },
        );
        plan.change(Change::PutRsc(u));
    }
    let mut updated = rd.clone();
    plan.reply(
        Reply::created(
            ObjKind::VlmDfn,
            format!(
                "New volume definition {} of resource '{}' created.",
                vd.number, rd.name
            ),
        )
        .with_ref("RscDfn", rd.name.as_str())
        .with_ref("VlmNr", vd.number.to_string()),
    );
    updated.volume_definitions.insert(vd.number, vd);
    plan.changes.insert(0, Change::PutRscDfn(updated));
    Ok(plan)
}

fn vd_of(rd: &ResourceDefinition, nr: i64) -> Result<&VolumeDefinition, ApiError> {
    by_volume_number(&rd.volume_definitions, nr).ok_or_else(|| {
        ApiError::not_found(
            code::FAIL_NOT_FOUND_VLM_DFN,
            ObjKind::VlmDfn,
            "volume definition",
            &format!("{nr}' of resource '{}", rd.name),
        )
    })
}

pub fn modify_vd(
    cluster: &Cluster,
    observed: &dyn Observed,
    rsc: &str,
    nr: i64,
    req: &VlmDfnModify,
) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    refuse_if_deleting(rd)?;
    let vd = vd_of(rd, nr)?;
    let mut updated_vd = vd.clone();
    updated_vd.props = req
        .props
        .apply(PropsOwner::VolumeDefinition, &vd.props)
        .map_err(|e| prop_error(ObjKind::VlmDfn, e))?;
    super::apply_volume_flags(
        &mut updated_vd.flags,
        super::volume_flags(&req.flags, ObjKind::VlmDfn, "volume definition")?,
    );
    let mut plan = Plan::new();
    if let Some(size) = req.size_kib {
        if size <= 0 {
            return Err(size_error(size));
        }
        let size = size as u64;
        let deployed: Vec<_> = cluster
            .resources_of(&rd.name)
            .filter(|r| !r.is_diskless() && r.volumes.contains_key(&vd.number))
            .collect();
        if size < vd.size_kib && !deployed.is_empty() {
            check_shrink(
                cluster,
                observed,
                rd,
                vd.number,
                vd.size_kib,
                size,
                req.allow_shrink,
            )?;
            plan.reply(Reply::warning(
                Op::Modify,
                ObjKind::VlmDfn,
                code::WARN_NO_EFFECT,
                format!(
                    "Volume {} of '{}' shrinks from {} KiB to {size} KiB: what lay beyond the new end is gone",
                    vd.number, rd.name, vd.size_kib
                ),
            ));
        }
        if size > vd.size_kib {
            for r in &deployed {
                let pool = &r.volumes[&vd.number].storage_pool;
                if let Some(sp) = cluster.stor_pool(&r.node, pool) {
                    super::rsc::pools::check_room(cluster, observed, sp, size - vd.size_kib)?;
                }
            }
        }
        if size == vd.size_kib {
            plan.reply(Reply::warning(
                Op::Modify,
                ObjKind::VlmDfn,
                1023,
                format!(
                    "Volume {} of '{}' already has that size",
                    vd.number, rd.name
                ),
            ));
        }
        updated_vd.size_kib = size;
    }
    let mut updated = rd.clone();
    updated.volume_definitions.insert(vd.number, updated_vd);
    plan.change(Change::PutRscDfn(updated));
    for r in super::drbd_option_replies(ObjKind::VlmDfn, &req.props) {
        plan.reply(r);
    }
    plan.reply(
        Reply::modified(
            ObjKind::VlmDfn,
            format!(
                "Volume definition {} of resource '{}' modified.",
                vd.number, rd.name
            ),
        )
        .with_ref("RscDfn", rd.name.as_str())
        .with_ref("VlmNr", vd.number.to_string()),
    );
    Ok(plan)
}

/// Shrinking a deployed volume cuts off its end: only when asked for explicitly, without
/// DRBD (its metadata lives at the end of the backing device), with every node holding the
/// volume online and none using it.
fn check_shrink(
    cluster: &Cluster,
    observed: &dyn Observed,
    rd: &ResourceDefinition,
    number: u32,
    from: u64,
    to: u64,
    allowed: bool,
) -> Result<(), ApiError> {
    let refuse = |cause: String, correction: &str| {
        ApiError::new(
            code::FAIL_INVLD_VLM_SIZE,
            ObjKind::VlmDfn,
            format!(
                "Volume {number} of '{}' cannot shrink from {from} KiB to {to} KiB",
                rd.name
            ),
        )
        .cause(cause)
        .correction(correction)
    };
    if !allowed {
        return Err(refuse(
            "Shrinking cuts off the data at the end of the volume; it is done only when asked for explicitly".into(),
            "Shrink the file system on it first, then repeat with --allow-shrink; or grow it instead",
        ));
    }
    if rd.layer_stack.contains(&crate::kinds::LayerKind::Drbd) {
        return Err(refuse(
            "DRBD keeps its metadata at the end of each backing volume; a DRBD volume does not shrink in place".into(),
            "Copy the data into a new, smaller resource instead",
        ));
    }
    for r in cluster
        .resources_of(&rd.name)
        .filter(|r| r.volumes.contains_key(&number))
    {
        if !observed.is_online(&r.node) {
            return Err(refuse(
                format!("Node '{}' holds the volume and is offline", r.node),
                "Bring the node back (or delete its resource) first, so that no copy keeps the old size",
            ));
        }
        let in_use = observed.in_use(&r.node, &rd.name).unwrap_or(false);
        if in_use {
            return Err(refuse(
                format!("The volume is in use on node '{}'", r.node),
                "Stop what uses it (unmount it, stop the VM or container), then shrink",
            ));
        }
    }
    Ok(())
}

pub fn delete_vd(cluster: &Cluster, rsc: &str, nr: i64) -> PlanResult {
    let rd = rd_of(cluster, rsc)?;
    let Some(vd) = by_volume_number(&rd.volume_definitions, nr) else {
        return Ok(Plan::only(Reply::warning(
            Op::Delete,
            ObjKind::VlmDfn,
            code::WARN_NOT_FOUND,
            format!(
                "Volume definition {nr} of resource '{}' not found; nothing to delete.",
                rd.name
            ),
        )));
    };
    let mut updated = rd.clone();
    let deployed: Vec<_> = cluster
        .resources_of(&rd.name)
        .filter(|r| r.volumes.contains_key(&vd.number))
        .collect();
    let mut plan = Plan::new();
    if deployed.is_empty() {
        updated.volume_definitions.remove(&vd.number);
        plan.change(Change::PutRscDfn(updated));
        plan.reply(Reply::deleted(
            ObjKind::VlmDfn,
            format!(
                "Volume definition {} of resource '{}' deleted.",
                vd.number, rd.name
            ),
        ));
        return Ok(plan);
    }
    let mut uvd = vd.clone();
    uvd.flags.insert(Flag::Delete);
    uvd.delete_generation.get_or_insert(cluster.generation + 1);
    updated.volume_definitions.insert(vd.number, uvd);
    plan.change(Change::PutRscDfn(updated));
    plan.reply(Reply::deleted(
        ObjKind::VlmDfn,
        format!(
            "Volume definition {} of resource '{}' marked for deletion.",
            vd.number, rd.name
        ),
    ));
    Ok(plan)
}
