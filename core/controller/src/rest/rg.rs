//! Resource groups, volume groups, spawning, and maximum volume size queries.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use strata_api::convert;
use strata_api::types::{
    AutoSelectFilter, Candidate, MaxVolumeSizes, QueryAllSizeInfoResponse, QuerySizeInfoRequest,
    QuerySizeInfoResponse, QuerySizeInfoSpaceInfo, QuerySizeInfoSpawnResult, ResourceGroup,
    ResourceGroupModify, ResourceGroupSpawn, VolumeGroup, VolumeGroupModify,
};
use strata_model::error::code;
use strata_model::plan::autoplace::DEFAULT_OVERSUBSCRIPTION;
use strata_model::plan::rg::{self as prg, RscGrpCreate, RscGrpModify, Spawn, VlmGrpCreate};
use strata_model::plan::Op;
use strata_model::props::matches_filter;
use strata_model::ObjKind;

use super::{error, not_found, ok, run, run_create, wanted, AppState, Body, Query};

/// The group named `name`, or the answer that it does not exist.
fn find_rg(
    core: &AppState,
    name: &str,
) -> Result<strata_model::objects::ResourceGroup, Box<Response>> {
    let cluster = core.cluster();
    strata_model::ResourceGroupName::new(name)
        .ok()
        .and_then(|n| cluster.rsc_grps.get(&n).cloned())
        .ok_or_else(|| {
            Box::new(not_found(
                code::FAIL_NOT_FOUND_RSC_GRP,
                ObjKind::RscGrp,
                "resource group",
                name,
            ))
        })
}

pub async fn list(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let names = q.names("resource_groups");
    let props = q.values("props");
    let cluster = core.cluster();
    let list: Vec<ResourceGroup> = cluster
        .rsc_grps
        .values()
        .filter(|g| wanted(&names, g.name.key()) && matches_filter(&g.props, &props))
        .map(convert::resource_group)
        .collect();
    ok(&q.page(list))
}

pub async fn get_one(State(core): State<AppState>, Path(rg): Path<String>) -> Response {
    match find_rg(&core, &rg) {
        Ok(g) => ok(&convert::resource_group(&g)),
        Err(missing) => *missing,
    }
}

pub async fn create(State(core): State<AppState>, Body(req): Body<ResourceGroup>) -> Response {
    let filter = match convert::select_filter_in(&req.select_filter) {
        Ok(f) => f,
        Err(e) => return error(Op::Create, e),
    };
    let plan_req = RscGrpCreate {
        name: req.name.clone(),
        description: req.description.clone(),
        props: req.props.clone(),
        select_filter: filter,
        peer_slots: req.peer_slots,
    };
    run(&core, Op::Create, StatusCode::CREATED, move |c, env, _| {
        prg::create_rg(c, env, &plan_req)
    })
    .await
}

pub async fn modify(
    State(core): State<AppState>,
    Path(rg): Path<String>,
    Body(req): Body<ResourceGroupModify>,
) -> Response {
    let patch = match req
        .select_filter
        .as_ref()
        .map(convert::select_filter_patch)
        .transpose()
    {
        Ok(p) => p,
        Err(e) => return error(Op::Modify, e),
    };
    let plan_req = RscGrpModify {
        description: req.description.clone(),
        props: convert::props_change(&req.props),
        select_filter: patch,
        peer_slots: req.peer_slots,
    };
    run(&core, Op::Modify, StatusCode::OK, move |c, _, _| {
        prg::modify_rg(c, &rg, &plan_req)
    })
    .await
}

pub async fn delete_one(State(core): State<AppState>, Path(rg): Path<String>) -> Response {
    run(&core, Op::Delete, StatusCode::OK, move |c, _, _| {
        prg::delete_rg(c, &rg)
    })
    .await
}

/// `POST /v1/resource-groups/{rg}/adjust`: every definition of the group gets the replica
/// count the group asks for, each in a transaction of its own (one that cannot be adjusted
/// does not hold the others back).
pub async fn adjust(State(core): State<AppState>, Path(rg): Path<String>) -> Response {
    let group = match find_rg(&core, &rg) {
        Ok(g) => g,
        Err(missing) => return *missing,
    };
    adjust_groups(&core, &[group.name]).await
}

/// `POST /v1/resource-groups/adjustall`.
pub async fn adjust_all(State(core): State<AppState>) -> Response {
    let groups: Vec<strata_model::ResourceGroupName> = {
        let cluster = core.cluster();
        cluster.rsc_grps.keys().cloned().collect()
    };
    adjust_groups(&core, &groups).await
}

async fn adjust_groups(core: &AppState, groups: &[strata_model::ResourceGroupName]) -> Response {
    let rds: Vec<String> = {
        let cluster = core.cluster();
        cluster
            .rsc_dfns
            .values()
            .filter(|d| groups.contains(&d.resource_group) && !d.is_deleting())
            .map(|d| d.name.to_string())
            .collect()
    };
    let mut all = Vec::new();
    for rd in rds {
        let done = core
            .mutate(move |c, env, o| strata_model::plan::rsc::adjust_rd(c, env, o, &rd))
            .await;
        match done {
            Ok(a) => all.extend(a.replies),
            Err(e) => all.push(strata_model::plan::Reply::from_error(Op::Modify, e)),
        }
    }
    if all.is_empty() {
        all.push(strata_model::plan::Reply::info(
            Op::Modify,
            ObjKind::RscGrp,
            code::WARN_NO_EFFECT,
            "The resource group has no resource definitions to adjust.",
        ));
    }
    super::replies(&all, StatusCode::OK)
}

pub async fn spawn(
    State(core): State<AppState>,
    Path(rg): Path<String>,
    Body(req): Body<ResourceGroupSpawn>,
) -> Response {
    let filter = match convert::select_filter_in(&req.select_filter) {
        Ok(f) => f,
        Err(e) => return error(Op::Create, e),
    };
    let plan_req = Spawn {
        rsc_name: req
            .resource_definition_name
            .clone()
            .filter(|n| !n.is_empty()),
        external_name: req
            .resource_definition_external_name
            .clone()
            .filter(|n| !n.is_empty()),
        volume_sizes: req.volume_sizes.clone(),
        select_filter: filter,
        partial: req.partial.unwrap_or(false),
        definitions_only: req.definitions_only.unwrap_or(false),
        peer_slots: req.peer_slots,
        rd_props: req.resource_definition_props.clone(),
    };
    run_create(
        &core,
        ObjKind::RscDfn,
        StatusCode::CREATED,
        move |c, env, o| prg::spawn(c, env, o, &rg, &plan_req),
    )
    .await
}

pub async fn vg_list(
    State(core): State<AppState>,
    Path(rg): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    match find_rg(&core, &rg) {
        Ok(g) => ok(&q.page(
            g.volume_groups
                .values()
                .map(convert::volume_group)
                .collect::<Vec<_>>(),
        )),
        Err(missing) => *missing,
    }
}

pub async fn vg_get(
    State(core): State<AppState>,
    Path((rg, vnr)): Path<(String, u32)>,
) -> Response {
    let g = match find_rg(&core, &rg) {
        Ok(g) => g,
        Err(missing) => return *missing,
    };
    match g.volume_groups.get(&vnr) {
        Some(vg) => ok(&convert::volume_group(vg)),
        None => not_found(
            code::FAIL_NOT_FOUND_VLM_GRP,
            ObjKind::VlmGrp,
            "volume group",
            &format!("{vnr}' of resource group '{rg}"),
        ),
    }
}

pub async fn vg_create(
    State(core): State<AppState>,
    Path(rg): Path<String>,
    Body(req): Body<VolumeGroup>,
) -> Response {
    let plan_req = VlmGrpCreate {
        volume_number: req.volume_number,
        props: req.props.clone(),
        flags: req.flags.clone(),
    };
    run_create(
        &core,
        ObjKind::VlmGrp,
        StatusCode::CREATED,
        move |c, env, _| prg::create_vg(c, env, &rg, &plan_req),
    )
    .await
}

pub async fn vg_modify(
    State(core): State<AppState>,
    Path((rg, vnr)): Path<(String, i64)>,
    Body(req): Body<VolumeGroupModify>,
) -> Response {
    let change = convert::props_change(&req.props);
    let flags = req.flags.clone();
    run(&core, Op::Modify, StatusCode::OK, move |c, _, _| {
        prg::modify_vg(c, &rg, vnr, &change, &flags)
    })
    .await
}

pub async fn vg_delete(
    State(core): State<AppState>,
    Path((rg, vnr)): Path<(String, i64)>,
) -> Response {
    run(&core, Op::Delete, StatusCode::OK, move |c, _, _| {
        prg::delete_vg(c, &rg, vnr)
    })
    .await
}

fn max_sizes(core: &AppState, filter: &strata_model::objects::SelectFilter) -> MaxVolumeSizes {
    let cluster = core.cluster();
    let observed = core.observed();
    MaxVolumeSizes {
        candidates: prg::max_volume_sizes(&cluster, &*observed, filter)
            .into_iter()
            .map(|c| Candidate {
                storage_pool: c.storage_pool,
                max_volume_size_kib: c.max_volume_size_kib.min(i64::MAX as u64) as i64,
                node_names: c.node_names,
                all_thin: c.all_thin,
            })
            .collect(),
        default_max_oversubscription_ratio: DEFAULT_OVERSUBSCRIPTION,
    }
}

fn size_info(
    core: &AppState,
    filter: &strata_model::objects::SelectFilter,
) -> QuerySizeInfoResponse {
    let info = {
        let cluster = core.cluster();
        let observed = core.observed();
        prg::size_info(&cluster, &*observed, filter)
    };
    let kib = |v: u64| v.min(i64::MAX as u64) as i64;
    QuerySizeInfoResponse {
        space_info: QuerySizeInfoSpaceInfo {
            max_vlm_size_in_kib: kib(info.max_vlm_size_kib),
            available_size_in_kib: kib(info.available_kib),
            capacity_in_kib: kib(info.capacity_kib),
            default_max_oversubscription_ratio: DEFAULT_OVERSUBSCRIPTION,
            next_spawn_result: info
                .next_spawn
                .into_iter()
                .map(
                    |(node_name, stor_pool_name, ratio)| QuerySizeInfoSpawnResult {
                        node_name,
                        stor_pool_name,
                        stor_pool_oversubscription_ratio: ratio,
                    },
                )
                .collect(),
        },
        reports: Vec::new(),
    }
}

/// The filter a size-info request lays over its groups' filters, if any.
fn request_filter(
    req: &QuerySizeInfoRequest,
) -> Result<Option<strata_model::objects::SelectFilter>, strata_model::ApiError> {
    req.select_filter
        .as_ref()
        .map(convert::select_filter_in)
        .transpose()
}

/// `over` (the request's filter) laid over a group's.
fn over_group(
    over: &Option<strata_model::objects::SelectFilter>,
    group: &strata_model::objects::SelectFilter,
) -> strata_model::objects::SelectFilter {
    match over {
        None => group.clone(),
        Some(f) => f.over(group),
    }
}

/// `POST /v1/resource-groups/{rg}/query-size-info`.
pub async fn query_size_info(
    State(core): State<AppState>,
    Path(rg): Path<String>,
    Body(req): Body<QuerySizeInfoRequest>,
) -> Response {
    let g = match find_rg(&core, &rg) {
        Ok(g) => g,
        Err(missing) => return *missing,
    };
    match request_filter(&req) {
        Ok(over) => ok(&size_info(&core, &over_group(&over, &g.select_filter))),
        Err(e) => error(Op::None, e),
    }
}

/// `POST /v1/queries/resource-groups/query-all-size-info`: every group at once, from the
/// pools' last reports (Proxmox asks on every status poll).
pub async fn query_all_size_info(
    State(core): State<AppState>,
    Body(req): Body<QuerySizeInfoRequest>,
) -> Response {
    let groups: Vec<(String, strata_model::objects::SelectFilter)> = {
        let cluster = core.cluster();
        cluster
            .rsc_grps
            .values()
            .map(|g| (g.name.to_string(), g.select_filter.clone()))
            .collect()
    };
    let over = match request_filter(&req) {
        Ok(over) => over,
        Err(e) => return error(Op::None, e),
    };
    let result: std::collections::BTreeMap<String, QuerySizeInfoResponse> = groups
        .into_iter()
        .map(|(name, filter)| (name, size_info(&core, &over_group(&over, &filter))))
        .collect();
    ok(&QueryAllSizeInfoResponse {
        result,
        reports: Vec::new(),
    })
}

pub async fn query_max_volume_size(
    State(core): State<AppState>,
    Path(rg): Path<String>,
) -> Response {
    match find_rg(&core, &rg) {
        Ok(g) => ok(&max_sizes(&core, &g.select_filter)),
        Err(missing) => *missing,
    }
}

pub async fn query_max_volume_size_filter(
    State(core): State<AppState>,
    Body(req): Body<AutoSelectFilter>,
) -> Response {
    match convert::select_filter_in(&req) {
        Ok(f) => ok(&max_sizes(&core, &f)),
        Err(e) => error(Op::None, e),
    }
}
