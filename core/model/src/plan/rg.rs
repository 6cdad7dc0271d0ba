//! Resource groups, volume groups, spawning resources from a group, and the maximum volume
//! size a placement filter allows.

use std::collections::BTreeMap;

use super::autoplace::DEFAULT_OVERSUBSCRIPTION;
use super::common::by_volume_number;
use super::rd::{build_rd, build_vd, created_rd_reply, RscDfnCreate, VlmDfnCreate};
use super::rsc::place::{autoplace_rd, AutoplaceRequest};
use super::{
    check_layer_stack, parse_node_name, parse_pool_name, parse_rg_name, prop_error, Env, Observed,
    Op, Plan, PlanResult, Reply,
};
use crate::cluster::{Change, Cluster};
use crate::error::{code, ApiError, ObjKind};
use crate::kinds::ProviderKind;
use crate::name::NodeName;
use crate::objects::{
    ResourceDefinition, ResourceGroup, SelectFilter, StorPool, VolumeGroup, DEFAULT_RSC_GRP,
};
use crate::props::{Props, PropsChange, PropsOwner};

#[derive(Debug, Clone, Default)]
pub struct RscGrpCreate {
    pub name: String,
    pub description: String,
    pub props: Props,
    pub select_filter: SelectFilter,
    pub peer_slots: Option<i64>,
}

/// Changes to a resource group's filter: `Some` replaces a field (an empty list clears it).
#[derive(Debug, Clone, Default)]
pub struct SelectFilterPatch {
    pub place_count: Option<u32>,
    pub additional_place_count: Option<u32>,
    pub node_name_list: Option<Vec<String>>,
    pub storage_pool_list: Option<Vec<String>>,
    pub storage_pool_diskless_list: Option<Vec<String>>,
    pub not_place_with_rsc: Option<Vec<String>>,
    pub not_place_with_rsc_regex: Option<String>,
    pub replicas_on_same: Option<Vec<String>>,
    pub replicas_on_different: Option<Vec<String>>,
    pub x_replicas_on_different_map: Option<BTreeMap<String, u32>>,
    pub layer_stack: Option<Vec<crate::kinds::LayerKind>>,
    pub provider_list: Option<Vec<ProviderKind>>,
    pub diskless_on_remaining: Option<bool>,
    pub diskless_type: Option<String>,
    pub overprovision: Option<f64>,
}

impl SelectFilterPatch {
    pub fn apply(&self, base: &SelectFilter) -> SelectFilter {
        let mut f = base.clone();
        macro_rules! set_opt {
            ($($field:ident),*) => {$(if self.$field.is_some() { f.$field = self.$field.clone(); })*};
        }
        macro_rules! set_val {
            ($($field:ident),*) => {$(if let Some(v) = &self.$field { f.$field = v.clone(); })*};
        }
        set_opt!(
            place_count,
            additional_place_count,
            not_place_with_rsc_regex,
            diskless_on_remaining,
            diskless_type,
            overprovision
        );
        set_val!(
            node_name_list,
            storage_pool_list,
            storage_pool_diskless_list,
            not_place_with_rsc,
            replicas_on_same,
            replicas_on_different,
            x_replicas_on_different_map,
            layer_stack,
            provider_list
        );
        if f.not_place_with_rsc_regex.as_deref() == Some("") {
            f.not_place_with_rsc_regex = None;
        }
        f
    }
}

#[derive(Debug, Clone, Default)]
pub struct RscGrpModify {
    pub description: Option<String>,
    pub props: PropsChange,
    pub select_filter: Option<SelectFilterPatch>,
    pub peer_slots: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct VlmGrpCreate {
    pub volume_number: Option<i64>,
    pub props: Props,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Spawn {
    pub rsc_name: Option<String>,
    pub external_name: Option<String>,
    pub volume_sizes: Vec<i64>,
    pub select_filter: SelectFilter,
    pub partial: bool,
    pub definitions_only: bool,
    pub peer_slots: Option<i64>,
    pub rd_props: Props,
}

/// Checks the parts of a filter that can be wrong regardless of the cluster's state.
pub fn check_filter(f: &SelectFilter) -> Result<(), ApiError> {
    if f.place_count == Some(0) {
        return Err(ApiError::new(
            code::FAIL_INVLD_PLACE_COUNT,
            ObjKind::RscGrp,
            "A place count of 0 places nothing",
        )
        .correction("Give a place count of 1 or more"));
    }
    if let Some(pc) = f.place_count {
        if pc > 32 {
            return Err(ApiError::new(
                code::FAIL_INVLD_PLACE_COUNT,
                ObjKind::RscGrp,
                format!("A place count of {pc} is more than a resource can have"),
            )
            .correction("Use a place count from 1 to 32"));
        }
    }
    for p in f
        .storage_pool_list
        .iter()
        .chain(&f.storage_pool_diskless_list)
    {
        parse_pool_name(p)?;
    }
    for n in &f.node_name_list {
        parse_node_name(n)?;
    }
    if let Some(re) = &f.not_place_with_rsc_regex {
        if !re.is_empty() {
            regex::Regex::new(re).map_err(|e| {
                ApiError::new(
                    code::FAIL_INVLD_REQUEST,
                    ObjKind::RscGrp,
                    format!("Invalid regular expression '{re}'"),
                )
                .cause(e.to_string())
            })?;
        }
    }
    if let Some(o) = f.overprovision {
        if !o.is_finite() || o <= 0.0 {
            return Err(ApiError::new(
                code::FAIL_INVLD_REQUEST,
                ObjKind::RscGrp,
                format!("Invalid overprovision factor {o}"),
            ));
        }
    }
    check_layer_stack(&f.layer_stack, ObjKind::RscGrp)
}

fn check_peer_slots(n: i64) -> Result<u32, ApiError> {
    if !(1..=31).contains(&n) {
        return Err(ApiError::new(
            code::FAIL_INVLD_REQUEST,
            ObjKind::RscGrp,
            format!("Invalid number of peer slots {n}"),
        )
        .correction("Use 1 to 31 peer slots"));
    }
    Ok(n as u32)
}

pub fn create_rg(cluster: &Cluster, env: &mut dyn Env, req: &RscGrpCreate) -> PlanResult {
    let name = parse_rg_name(&req.name)?;
    if let Some(existing) = cluster.rsc_grps.get(&name) {
        return Err(ApiError::new(
            code::FAIL_EXISTS_RSC_GRP,
            ObjKind::RscGrp,
            format!("Resource group '{}' already exists", existing.name),
        )
        .correction("Choose another name, or modify the existing group"));
    }
    check_filter(&req.select_filter)?;
    let props = PropsChange {
        set: req.props.clone(),
        ..Default::default()
    }
    .apply(PropsOwner::ResourceGroup, &Props::new())
    .map_err(|e| prop_error(ObjKind::RscGrp, e))?;
    let rg = ResourceGroup {
        name: name.clone(),
        description: req.description.clone(),
        props,
        select_filter: req.select_filter.clone(),
        peer_slots: req.peer_slots.map(check_peer_slots).transpose()?,
        volume_groups: Default::default(),
        uuid: env.uuid(),
    };
    let mut plan = Plan::new();
    plan.change(Change::PutRscGrp(rg));
    plan.reply(
        Reply::created(
            ObjKind::RscGrp,
            format!("New resource group '{name}' created."),
        )
        .with_ref("RscGrp", name.as_str()),
    );
    Ok(plan)
}

pub fn rg_of<'a>(cluster: &'a Cluster, name: &str) -> Result<&'a ResourceGroup, ApiError> {
    let rg_name = parse_rg_name(name)?;
    cluster.rsc_grps.get(&rg_name).ok_or_else(|| {
        ApiError::not_found(
            code::FAIL_NOT_FOUND_RSC_GRP,
            ObjKind::RscGrp,
            "resource group",
            name,
        )
    })
}

pub fn modify_rg(cluster: &Cluster, name: &str, req: &RscGrpModify) -> PlanResult {
    let rg = rg_of(cluster, name)?;
    let mut u = rg.clone();
    if let Some(d) = &req.description {
        u.description = d.clone();
    }
    u.props = req
        .props
        .apply(PropsOwner::ResourceGroup, &rg.props)
        .map_err(|e| prop_error(ObjKind::RscGrp, e))?;
    if let Some(patch) = &req.select_filter {
        let f = patch.apply(&rg.select_filter);
        check_filter(&f)?;
        u.select_filter = f;
    }
    if let Some(p) = req.peer_slots {
        u.peer_slots = Some(check_peer_slots(p)?);
    }
    let mut plan = Plan::new();
    plan.change(Change::PutRscGrp(u));
    for r in super::drbd_option_replies(ObjKind::RscGrp, &req.props) {
        plan.reply(r);
    }
    plan.reply(
        Reply::modified(
            ObjKind::RscGrp,
            format!("Resource group '{}' modified.", rg.name),
        )
        .with_ref("RscGrp", rg.name.as_str()),
    );
    Ok(plan)
}

pub fn delete_rg(cluster: &Cluster, name: &str) -> PlanResult {
    let rg_name = parse_rg_name(name)?;
    let Some(rg) = cluster.rsc_grps.get(&rg_name) else {
        return Ok(Plan::only(Reply::warning(
            Op::Delete,
            ObjKind::RscGrp,
            code::WARN_NOT_FOUND,
            format!("Resource group '{name}' not found; nothing to delete."),
        )));
    };
    if rg.name.as_str().eq_ignore_ascii_case(DEFAULT_RSC_GRP) {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::RscGrp,
            format!("The default resource group '{DEFAULT_RSC_GRP}' cannot be deleted"),
        ));
    }
    let users: Vec<String> = cluster
        .rsc_dfns
        .values()
        .filter(|d| d.resource_group == rg.name)
        .map(|d| d.name.to_string())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::new(
            code::FAIL_IN_USE,
            ObjKind::RscGrp,
            format!(
                "Resource group '{}' still has {} resource definition(s)",
                rg.name,
                users.len()
            ),
        )
        .cause(format!("Resource definitions: {}", users.join(", ")))
        .correction("Delete those resource definitions or move them to another group first"));
    }
    let mut plan = Plan::new();
    plan.change(Change::DelRscGrp(rg.name.clone()));
    plan.reply(
        Reply::deleted(
            ObjKind::RscGrp,
            format!("Resource group '{}' deleted.", rg.name),
        )
        .with_ref("RscGrp", rg.name.as_str()),
    );
    Ok(plan)
}

pub fn create_vg(
    cluster: &Cluster,
    env: &mut dyn Env,
    rg_name: &str,
    req: &VlmGrpCreate,
) -> PlanResult {
    let rg = rg_of(cluster, rg_name)?;
    let number = super::volume_number(
        req.volume_number,
        |n| rg.volume_groups.contains_key(&n),
        ObjKind::VlmGrp,
        code::FAIL_EXISTS_VLM_GRP,
        |n| {
            format!(
                "Volume group {n} of resource group '{}' already exists",
                rg.name
            )
        },
    )?;
    let props = PropsChange {
        set: req.props.clone(),
        ..Default::default()
    }
    .apply(PropsOwner::VolumeGroup, &Props::new())
    .map_err(|e| prop_error(ObjKind::VlmGrp, e))?;
    let mut flags = Default::default();
    super::apply_volume_flags(
        &mut flags,
        super::volume_flags(&req.flags, ObjKind::VlmGrp, "volume group")?,
    );
    let mut u = rg.clone();
    u.volume_groups.insert(
        number,
        VolumeGroup {
            number,
            props,
            flags,
            uuid: env.uuid(),
        },
    );
    let mut plan = Plan::new();
    plan.change(Change::PutRscGrp(u));
    plan.reply(
        Reply::created(
            ObjKind::VlmGrp,
            format!(
                "New volume group {number} of resource group '{}' created.",
                rg.name
            ),
        )
        .with_ref("RscGrp", rg.name.as_str())
        .with_ref("VlmNr", number.to_string()),
    );
    Ok(plan)
}

pub fn modify_vg(
    cluster: &Cluster,
    rg_name: &str,
    nr: i64,
    props: &PropsChange,
    flags: &[String],
) -> PlanResult {
    let rg = rg_of(cluster, rg_name)?;
    let Some(vg) = by_volume_number(&rg.volume_groups, nr) else {
        return Err(ApiError::not_found(
            code::FAIL_NOT_FOUND_VLM_GRP,
            ObjKind::VlmGrp,
            "volume group",
            &format!("{nr}' of resource group '{}", rg.name),
        ));
    };
    let mut uv = vg.clone();
    uv.props = props
        .apply(PropsOwner::VolumeGroup, &vg.props)
        .map_err(|e| prop_error(ObjKind::VlmGrp, e))?;
    super::apply_volume_flags(
        &mut uv.flags,
        super::volume_flags(flags, ObjKind::VlmGrp, "volume group")?,
    );
    let mut u = rg.clone();
    u.volume_groups.insert(uv.number, uv);
    let mut plan = Plan::new();
    plan.change(Change::PutRscGrp(u));
    plan.reply(Reply::modified(
        ObjKind::VlmGrp,
        format!(
            "Volume group {nr} of resource group '{}' modified.",
            rg.name
        ),
    ));
    Ok(plan)
}

pub fn delete_vg(cluster: &Cluster, rg_name: &str, nr: i64) -> PlanResult {
    let rg = rg_of(cluster, rg_name)?;
    let Some(vg) = by_volume_number(&rg.volume_groups, nr) else {
        return Ok(Plan::only(Reply::warning(
            Op::Delete,
            ObjKind::VlmGrp,
            code::WARN_NOT_FOUND,
            format!(
                "Volume group {nr} of resource group '{}' not found; nothing to delete.",
                rg.name
            ),
        )));
    };
    let mut u = rg.clone();
    u.volume_groups.remove(&vg.number);
    let mut plan = Plan::new();
    plan.change(Change::PutRscGrp(u));
    plan.reply(Reply::deleted(
        ObjKind::VlmGrp,
        format!("Volume group {nr} of resource group '{}' deleted.", rg.name),
    ));
    Ok(plan)
}

/// `resource-group spawn`: a new resource definition with a volume definition per given
/// size (numbered after the group's volume groups), autoplaced with the request's filter
/// over the group's unless only the definitions are asked for.
pub fn spawn(
    cluster: &Cluster,
    env: &mut dyn Env,
    observed: &dyn Observed,
    rg_name: &str,
    req: &Spawn,
) -> PlanResult {
    let rg = rg_of(cluster, rg_name)?;
    check_spawn_sizes(rg, req)?;
    check_filter(&req.select_filter)?;
    let mut rd = build_rd(
        cluster,
        env,
        &RscDfnCreate {
            name: req.rsc_name.clone(),
            external_name: req.external_name.clone(),
            props: req.rd_props.clone(),
            resource_group: Some(rg.name.to_string()),
            drbd_peer_slots: req.peer_slots.or(rg.peer_slots.map(i64::from)),
            ..Default::default()
        },
    )?;
    let mut plan = Plan::new();
    plan.reply(created_rd_reply(&rd));
    add_spawned_volumes(&mut plan, cluster, env, rg, &mut rd, &req.volume_sizes)?;
    if req.definitions_only {
        plan.changes.push(Change::PutRscDfn(rd));
        return Ok(plan);
    }
    let placed = autoplace_rd(
        cluster,
        env,
        observed,
        &rd,
        &AutoplaceRequest {
            filter: req.select_filter.clone(),
            diskless_on_remaining: None,
            layer_list: Vec::new(),
        },
    )?;
    // The autoplace may have fixed the layer stack on its copy of the definition.
    let mut rd_final = rd;
    let mut rest = Vec::new();
    for c in placed.changes {
        match c {
            // Placing fixes the layer stack and, with DRBD, the secret and the minors.
            Change::PutRscDfn(d) if d.name == rd_final.name => rd_final = d,
            other => rest.push(other),
        }
    }
    plan.changes.push(Change::PutRscDfn(rd_final));
    plan.changes.extend(rest);
    plan.replies.extend(placed.replies);
    Ok(plan)
}

/// Refuses sizes that are not positive, and a count of sizes that does not match the
/// group's volume groups (fewer are fine for a partial spawn).
fn check_spawn_sizes(rg: &ResourceGroup, req: &Spawn) -> Result<(), ApiError> {
    for s in &req.volume_sizes {
        if *s <= 0 {
            return Err(ApiError::new(
                code::FAIL_INVLD_VLM_SIZE,
                ObjKind::VlmDfn,
                format!("Invalid volume size {s} KiB"),
            )
            .correction("Give sizes larger than zero, e.g. 2G"));
        }
    }
    let groups = rg.volume_groups.len();
    if req.volume_sizes.len() > groups || (!req.partial && req.volume_sizes.len() != groups) {
        // More sizes than groups is a wrong list of sizes (LINSTOR's FAIL_INVLD_VLM_SIZES);
        // fewer is a wrong count unless the spawn is partial.
        let code = if req.volume_sizes.len() > groups {
            code::FAIL_INVLD_VLM_SIZES
        } else {
            code::FAIL_INVLD_VLM_COUNT
        };
        return Err(ApiError::new(
            code,
            ObjKind::RscGrp,
            format!(
                "Resource group '{}' has {} volume group(s), but {} size(s) were given",
                rg.name,
                groups,
                req.volume_sizes.len()
            ),
        )
        .correction(if groups == 0 {
            "Create a volume group first (linstor volume-group create <group>), or spawn with --partial"
        } else {
            "Give one size per volume group, or spawn with --partial"
        }));
    }
    Ok(())
}

/// Adds a volume definition per size to the spawned `rd`: the i-th takes the number and
/// flags of the group's i-th volume group.
fn add_spawned_volumes(
    plan: &mut Plan,
    cluster: &Cluster,
    env: &mut dyn Env,
    rg: &ResourceGroup,
    rd: &mut ResourceDefinition,
    sizes: &[i64],
) -> Result<(), ApiError> {
    let groups: Vec<&VolumeGroup> = rg.volume_groups.values().collect();
    let mut next_free = 0u32;
    for (i, size) in sizes.iter().enumerate() {
        let (number, flags) = match groups.get(i) {
            Some(vg) => (vg.number, vg.flags.names().map(str::to_string).collect()),
            None => {
                while rg.volume_groups.contains_key(&next_free)
                    || rd.volume_definitions.contains_key(&next_free)
                {
                    next_free += 1;
                }
                (next_free, Vec::new())
            }
        };
        let vd = build_vd(
            cluster,
            env,
            rd,
            &VlmDfnCreate {
                volume_number: Some(number as i64),
                size_kib: *size,
                flags,
                ..Default::default()
            },
        )?;
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
        rd.volume_definitions.insert(vd.number, vd);
    }
    Ok(())
}

/// One answer of a maximum-volume-size query.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeCandidate {
    pub storage_pool: String,
    pub max_volume_size_kib: u64,
    pub node_names: Vec<String>,
    pub all_thin: bool,
}

/// The storage pools of online nodes that pass `filter` and report no error, with their
/// last report.
fn usable_pools<'a>(
    cluster: &'a Cluster,
    observed: &'a dyn Observed,
    filter: &SelectFilter,
) -> Vec<(&'a NodeName, &'a StorPool, &'a crate::observed::PoolState)> {
    let node_list: Vec<String> = filter
        .node_name_list
        .iter()
        .map(|n| n.to_ascii_uppercase())
        .collect();
    let pool_list: Vec<String> = filter
        .storage_pool_list
        .iter()
        .map(|n| n.to_ascii_uppercase())
        .collect();
    let mut out = Vec::new();
    for (node_name, node) in &cluster.nodes {
        if !node.node_type.hosts_storage() || !observed.is_online(node_name) {
            continue;
        }
        if !node_list.is_empty() && !node_list.contains(&node_name.key().to_string()) {
            continue;
        }
        for sp in cluster.pools_on(node_name) {
            if sp.kind == ProviderKind::Diskless {
                continue;
            }
            if !pool_list.is_empty() && !pool_list.contains(&sp.name.key().to_string()) {
                continue;
            }
            if !filter.provider_list.is_empty() && !filter.provider_list.contains(&sp.kind) {
                continue;
            }
            let Some(state) = observed.pool_state(node_name, &sp.name) else {
                continue;
            };
            if state.errors.is_empty() {
                out.push((node_name, sp, state));
            }
        }
    }
    out
}

/// The largest volume each storage pool name could hold on `place_count` nodes at once.
pub fn max_volume_sizes(
    cluster: &Cluster,
    observed: &dyn Observed,
    filter: &SelectFilter,
) -> Vec<SizeCandidate> {
    let place = filter.place_count.unwrap_or(1).max(1) as usize;
    let mut by_pool: BTreeMap<String, Vec<(u64, String, bool)>> = BTreeMap::new();
    for (node_name, sp, state) in usable_pools(cluster, observed, filter) {
        let size = if sp.kind.is_thin() {
            let ratio = filter.overprovision.unwrap_or(DEFAULT_OVERSUBSCRIPTION);
            (state.free_capacity_kib as f64 * ratio) as u64
        } else {
            state.free_capacity_kib
        };
        by_pool.entry(sp.name.to_string()).or_default().push((
            size,
            node_name.to_string(),
            sp.kind.is_thin(),
        ));
    }
    let mut out = Vec::new();
    for (pool, mut entries) in by_pool {
        if entries.len() < place {
            continue;
        }
        entries.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let chosen = &entries[..place];
        out.push(SizeCandidate {
            storage_pool: pool,
            max_volume_size_kib: chosen.last().map(|e| e.0).unwrap_or(0),
            node_names: chosen.iter().map(|e| e.1.clone()).collect(),
            all_thin: chosen.iter().all(|e| e.2),
        });
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.max_volume_size_kib));
    out
}

/// What `query-size-info` answers for a group: how large the next spawned volume may be,
/// and the space of the pools it may use, counted once per replica.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeInfo {
    pub max_vlm_size_kib: u64,
    /// Free space of the usable pools divided by the place count: what volumes of this
    /// group can still take, with every replica counted.
    pub available_kib: u64,
    /// Capacity of the usable pools divided by the place count.
    pub capacity_kib: u64,
    /// Where the next spawn would go: (node, pool, the pool's oversubscription ratio).
    pub next_spawn: Vec<(String, String, f64)>,
}

pub fn size_info(cluster: &Cluster, observed: &dyn Observed, filter: &SelectFilter) -> SizeInfo {
    let place = filter.place_count.unwrap_or(1).max(1) as u64;
    let pools = usable_pools(cluster, observed, filter);
    let free: u64 = pools.iter().map(|(_, _, s)| s.free_capacity_kib).sum();
    let total: u64 = pools.iter().map(|(_, _, s)| s.total_capacity_kib).sum();
    let best = max_volume_sizes(cluster, observed, filter)
        .into_iter()
        .next();
    SizeInfo {
        max_vlm_size_kib: best.as_ref().map_or(0, |b| b.max_volume_size_kib),
        available_kib: free / place,
        capacity_kib: total / place,
        next_spawn: best
            .map(|b| {
                let ratio = if b.all_thin {
                    filter.overprovision.unwrap_or(DEFAULT_OVERSUBSCRIPTION)
                } else {
                    1.0
                };
                b.node_names
                    .into_iter()
                    .map(|n| (n, b.storage_pool.clone(), ratio))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
