//! Resource definitions, volume definitions, resources and their volumes, autoplace, and
//! resource connections.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use strata_api::convert;
use strata_api::rsc_conn::resource_connection;
use strata_api::types::{
    AutoPlaceRequest, ResourceConnectionModify, ResourceCreate, ResourceDefinition,
    ResourceDefinitionCreate, ResourceDefinitionModify, ResourceMakeAvailable, ResourceModify,
    ResourceWithVolumes, VolumeDefinitionCreate, VolumeDefinitionModify, VolumeModify,
};
use strata_model::error::{code, ApiError};
use strata_model::flags::Flag;
use strata_model::plan::rconn as prconn;
use strata_model::plan::rd::{self as prd, RscDfnCreate, RscDfnModify, VlmDfnCreate, VlmDfnModify};
use strata_model::plan::rsc::{self as prsc, AutoplaceRequest, RscCreate};
use strata_model::plan::Op;
use strata_model::props::matches_filter;
use strata_model::ObjKind;

use super::view::resource_view;
use super::{error, not_found, ok, run, run_create, wanted, AppState, Body, Query};

/// The definition named `rsc`, or the answer that it does not exist.
fn find_rd(
    core: &AppState,
    rsc: &str,
) -> Result<strata_model::objects::ResourceDefinition, Box<Response>> {
    let cluster = core.cluster();
    strata_model::ResourceName::new(rsc)
        .ok()
        .and_then(|n| cluster.rsc_dfns.get(&n).cloned())
        .ok_or_else(|| {
            Box::new(not_found(
                code::FAIL_NOT_FOUND_RSC_DFN,
                ObjKind::RscDfn,
                "resource definition",
                rsc,
            ))
        })
}

pub async fn list(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let names = q.names("resource_definitions");
    let props = q.values("props");
    let with_vds = q.flag("with_volume_definitions");
    let cluster = core.cluster();
    let list: Vec<ResourceDefinition> = cluster
        .rsc_dfns
        .values()
        .filter(|d| wanted(&names, d.name.key()) && matches_filter(&d.props, &props))
        .map(|d| convert::resource_definition(d, with_vds))
        .collect();
    ok(&q.page(list))
}

pub async fn get_one(State(core): State<AppState>, Path(rsc): Path<String>) -> Response {
    match find_rd(&core, &rsc) {
        Ok(d) => ok(&convert::resource_definition(&d, true)),
        Err(missing) => *missing,
    }
}

pub async fn create(
    State(core): State<AppState>,
    Body(req): Body<ResourceDefinitionCreate>,
) -> Response {
    let rd = &req.resource_definition;
    let layer_stack: Vec<String> = rd.layer_data.iter().map(|l| l.layer_type.clone()).collect();
    let plan_req = RscDfnCreate {
        name: Some(rd.name.clone()).filter(|n| !n.is_empty()),
        external_name: rd.external_name.clone(),
        props: rd.props.clone(),
        resource_group: rd.resource_group_name.clone(),
        layer_stack,
        drbd_port: req.drbd_port,
        drbd_secret: req.drbd_secret.clone(),
        drbd_peer_slots: req.drbd_peer_slots,
        drbd_transport: req.drbd_transport_type.clone(),
    };
    run_create(
        &core,
        ObjKind::RscDfn,
        StatusCode::CREATED,
        move |c, env, _| prd::create_rd(c, env, &plan_req),
    )
    .await
}

pub async fn modify(
    State(core): State<AppState>,
    Path(rsc): Path<String>,
    Body(req): Body<ResourceDefinitionModify>,
) -> Response {
    let plan_req = RscDfnModify {
        props: convert::props_change(&req.props),
        drbd_port: req.drbd_port,
        drbd_peer_slots: req.drbd_peer_slots,
        layer_stack: req.layer_stack.clone(),
        resource_group: req.resource_group.clone(),
    };
    run(&core, Op::Modify, StatusCode::OK, move |c, _, obs| {
        prd::modify_rd(c, obs, &rsc, &plan_req)
    })
    .await
}

pub async fn delete_one(State(core): State<AppState>, Path(rsc): Path<String>) -> Response {
    run(&core, Op::Delete, StatusCode::OK, move |c, _, o| {
        prd::delete_rd(c, o, &rsc)
    })
    .await
}

pub async fn vd_list(
    State(core): State<AppState>,
    Path(rsc): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    match find_rd(&core, &rsc) {
        Ok(d) => ok(&q.page(
            d.volume_definitions
                .values()
                .map(|vd| convert::volume_definition(vd, &d.layer_stack))
                .collect::<Vec<_>>(),
        )),
        Err(missing) => *missing,
    }
}

pub async fn vd_get(
    State(core): State<AppState>,
    Path((rsc, vnr)): Path<(String, u32)>,
) -> Response {
    let d = match find_rd(&core, &rsc) {
        Ok(d) => d,
        Err(missing) => return *missing,
    };
    match d.volume_definitions.get(&vnr) {
        Some(vd) => ok(&convert::volume_definition(vd, &d.layer_stack)),
        None => not_found(
            code::FAIL_NOT_FOUND_VLM_DFN,
            ObjKind::VlmDfn,
            "volume definition",
            &format!("{vnr}' of resource '{rsc}"),
        ),
    }
}

pub async fn vd_create(
    State(core): State<AppState>,
    Path(rsc): Path<String>,
    Body(req): Body<VolumeDefinitionCreate>,
) -> Response {
    let vd = &req.volume_definition;
    let Some(size) = vd.size_kib else {
        return error(
            Op::Create,
            strata_model::ApiError::new(
                code::FAIL_INVLD_VLM_SIZE,
                ObjKind::VlmDfn,
                "The volume definition has no size",
            )
            .correction("Give size_kib (the CLI takes sizes such as 2G or 150M)"),
        );
    };
    let plan_req = VlmDfnCreate {
        volume_number: vd.volume_number,
        size_kib: size,
        props: vd.props.clone(),
        flags: vd.flags.clone(),
        minor: req.drbd_minor_number,
    };
    run_create(
        &core,
        ObjKind::VlmDfn,
        StatusCode::CREATED,
        move |c, env, o| prd::create_vd(c, env, o, &rsc, &plan_req),
    )
    .await
}

pub async fn vd_modify(
    State(core): State<AppState>,
    Path((rsc, vnr)): Path<(String, i64)>,
    Body(req): Body<VolumeDefinitionModify>,
) -> Response {
    let plan_req = VlmDfnModify {
        size_kib: req.size_kib,
        props: convert::props_change(&req.props),
        flags: req.flags.clone(),
        allow_shrink: req.allow_shrink.unwrap_or(false),
    };
    run(&core, Op::Modify, StatusCode::OK, move |c, _, o| {
        prd::modify_vd(c, o, &rsc, vnr, &plan_req)
    })
    .await
}

pub async fn vd_delete(
    State(core): State<AppState>,
    Path((rsc, vnr)): Path<(String, i64)>,
) -> Response {
    run(&core, Op::Delete, StatusCode::OK, move |c, _, _| {
        prd::delete_vd(c, &rsc, vnr)
    })
    .await
}

pub async fn rsc_list(
    State(core): State<AppState>,
    Path(rsc): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let d = match find_rd(&core, &rsc) {
        Ok(d) => d,
        Err(missing) => return *missing,
    };
    let rscs: Vec<_> = {
        let cluster = core.cluster();
        let all: Vec<_> = cluster.resources_of(&d.name).cloned().collect();
        all
    };
    let views: Vec<_> = rscs.iter().map(|r| resource_view(&core, r, &d)).collect();
    ok(&q.page(views))
}

fn find_rsc(core: &AppState, rsc: &str, node: &str) -> Result<ResourceWithVolumes, Box<Response>> {
    let d = find_rd(core, rsc)?;
    let r = {
        let cluster = core.cluster();
        let found = cluster
            .resources_of(&d.name)
            .find(|r| r.node.as_str().eq_ignore_ascii_case(node))
            .cloned();
        found
    };
    match r {
        Some(r) => Ok(resource_view(core, &r, &d)),
        None => Err(Box::new(not_found(
            code::FAIL_NOT_FOUND_RSC,
            ObjKind::Rsc,
            "resource",
            &format!("{rsc}' on node '{node}"),
        ))),
    }
}

pub async fn rsc_get(
    State(core): State<AppState>,
    Path((rsc, node)): Path<(String, String)>,
) -> Response {
    match find_rsc(&core, &rsc, &node) {
        Ok(r) => ok(&r),
        Err(resp) => *resp,
    }
}

fn rsc_req(node: String, r: &ResourceCreate) -> RscCreate {
    let mut flags = r.resource.flags.clone();
    if r.drbd_client == Some(true) {
        flags.push(Flag::DrbdDiskless.to_string());
    }
    RscCreate {
        node,
        props: r.resource.props.clone(),
        flags,
        layer_list: r.layer_list.clone(),
        drbd_node_id: r.drbd_node_id,
    }
}

pub async fn rsc_create(
    State(core): State<AppState>,
    Path(rsc): Path<String>,
    Body(reqs): Body<Vec<ResourceCreate>>,
) -> Response {
    let plan_reqs: Vec<RscCreate> = reqs
        .iter()
        .map(|r| rsc_req(r.resource.node_name.clone(), r))
        .collect();
    run_create(
        &core,
        ObjKind::Rsc,
        StatusCode::CREATED,
        move |c, env, o| prsc::create_resources(c, env, o, &rsc, &plan_reqs),
    )
    .await
}

pub async fn rsc_create_on_node(
    State(core): State<AppState>,
    Path((rsc, node)): Path<(String, String)>,
    Body(req): Body<ResourceCreate>,
) -> Response {
    let plan_req = rsc_req(node, &req);
    run_create(
        &core,
        ObjKind::Rsc,
        StatusCode::CREATED,
        move |c, env, o| prsc::create_resources(c, env, o, &rsc, &[plan_req]),
    )
    .await
}

pub async fn rsc_modify(
    State(core): State<AppState>,
    Path((rsc, node)): Path<(String, String)>,
    Body(req): Body<ResourceModify>,
) -> Response {
    let change = convert::props_change(&req.props);
    run(&core, Op::Modify, StatusCode::OK, move |c, _, _| {
        prsc::modify_resource(c, &rsc, &node, &change)
    })
    .await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct RscDeleteQuery {
    #[serde(default)]
    keep_tiebreaker: Option<String>,
}

pub async fn rsc_delete(
    State(core): State<AppState>,
    Path((rsc, node)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<RscDeleteQuery>,
) -> Response {
    let keep = q
        .keep_tiebreaker
        .as_deref()
        .is_some_and(|v| v.is_empty() || v.eq_ignore_ascii_case("true") || v == "1");
    run(&core, Op::Delete, StatusCode::OK, move |c, env, o| {
        prsc::delete_resource(c, env, o, &rsc, &node, keep)
    })
    .await
}

pub async fn make_available(
    State(core): State<AppState>,
    Path((rsc, node)): Path<(String, String)>,
    Body(req): Body<ResourceMakeAvailable>,
) -> Response {
    let diskful = req.diskful.unwrap_or(false);
    let layers = req.layer_list.clone();
    run_create(&core, ObjKind::Rsc, StatusCode::OK, move |c, env, o| {
        prsc::make_available(c, env, o, &rsc, &node, diskful, &layers)
    })
    .await
}

/// The body of `POST .../clone`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CloneBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    external_name: Option<String>,
    #[serde(default)]
    resource_group: Option<String>,
    #[serde(default)]
    layer_list: Vec<String>,
    #[serde(default)]
    volume_passphrases: Vec<String>,
    #[serde(flatten)]
    props: strata_api::types::PropsModify,
}

/// `POST /v1/resource-definitions/{rsc}/clone`: the clone is complete when this answers
/// (the status endpoint says so too).
pub async fn clone(
    State(core): State<AppState>,
    Path(rsc): Path<String>,
    Body(req): Body<CloneBody>,
) -> Response {
    let refuse = |what: &str| {
        error(
            Op::Create,
            ApiError::new(
                code::FAIL_INVLD_REQUEST,
                ObjKind::RscDfn,
                format!("Cloning with {what} is not supported"),
            )
            .correction("Leave it out: the clone has the layers of its source, without encryption"),
        )
    };
    if !req.layer_list.is_empty() {
        return refuse("another layer list");
    }
    if !req.volume_passphrases.is_empty() {
        return refuse("volume passphrases");
    }
    let plan_req = strata_model::plan::clone::CloneRequest {
        name: req.name.filter(|n| !n.is_empty()),
        external_name: req.external_name.filter(|n| !n.is_empty()),
        resource_group: req.resource_group,
        props: convert::props_change(&req.props),
    };
    match core.clone_rd(rsc.clone(), plan_req).await {
        Ok((dst, a)) if !a.has_errors() => {
            let messages: Vec<strata_api::ApiCallRc> =
                a.replies.iter().map(strata_api::ApiCallRc::from).collect();
            super::json(
                StatusCode::CREATED,
                &serde_json::json!({
                    "location": format!("/v1/resource-definitions/{rsc}/clone/{dst}"),
                    "source_name": rsc,
                    "clone_name": dst.as_str(),
                    "messages": messages,
                }),
            )
        }
        Ok((_, a)) => super::replies(&a.replies, StatusCode::CREATED),
        Err(e) => error(Op::Create, e),
    }
}

/// `GET /v1/resource-definitions/{rsc}/clone/{clone}`
pub async fn clone_status(
    State(core): State<AppState>,
    Path((rsc, dst)): Path<(String, String)>,
) -> Response {
    match core.clone_status(&rsc, &dst) {
        Some(s) => ok(&serde_json::json!({ "status": s.as_str() })),
        None => super::json(
            StatusCode::NOT_FOUND,
            &vec![strata_api::ApiCallRc::from(
                &strata_model::plan::Reply::from_error(
                    Op::None,
                    ApiError::not_found(
                        code::FAIL_NOT_FOUND_RSC_DFN,
                        ObjKind::RscDfn,
                        "clone",
                        &format!("{dst}' of '{rsc}"),
                    ),
                ),
            )],
        ),
    }
}

/// The body of `PUT .../toggle-disk` (REST API 1.28).
#[derive(Debug, Default, serde::Deserialize)]
pub struct ToggleDiskRequest {
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    storage_pool: Option<String>,
    #[serde(default)]
    migrate_from: Option<String>,
}

pub async fn toggle_disk(
    State(core): State<AppState>,
    Path((rsc, node)): Path<(String, String)>,
    Body(req): Body<ToggleDiskRequest>,
) -> Response {
    // A DRBD client is a diskless resource here (every diskless peer votes in the quorum).
    let diskful = match req
        .operation
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("INTO_DRBD_DISKFUL") => true,
        Some("INTO_DRBD_DISKLESS") | Some("INTO_DRBD_CLIENT") => false,
        Some(other) => {
            return error(
                Op::Modify,
                ApiError::new(
                    code::FAIL_INVLD_REQUEST,
                    ObjKind::Rsc,
                    format!("Unknown toggle-disk operation '{other}'"),
                )
                .correction("Use INTO_DRBD_DISKFUL, INTO_DRBD_DISKLESS or INTO_DRBD_CLIENT"),
            )
        }
    };
    toggle(core, rsc, node, diskful, req.storage_pool, req.migrate_from).await
}

/// The parts of the older toggle-disk and migrate-disk paths.
#[derive(Debug, serde::Deserialize)]
pub struct TogglePath {
    rsc: String,
    node: String,
    #[serde(default)]
    how: Option<String>,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    from: Option<String>,
}

/// The older toggle-disk paths: `.../toggle-disk/{diskless|diskful}[/{pool}]`.
pub async fn toggle_disk_path(State(core): State<AppState>, Path(p): Path<TogglePath>) -> Response {
    let diskful = match p.how.as_deref() {
        Some("diskful") => true,
        Some("diskless") => false,
        how => {
            return error(
                Op::Modify,
                ApiError::new(
                    code::FAIL_INVLD_REQUEST,
                    ObjKind::Rsc,
                    format!("Unknown toggle-disk target '{}'", how.unwrap_or_default()),
                )
                .correction("Use .../toggle-disk/diskful or .../toggle-disk/diskless"),
            )
        }
    };
    toggle(core, p.rsc, p.node, diskful, p.pool, None).await
}

/// `.../migrate-disk/{from}[/{pool}]`.
pub async fn migrate_disk(State(core): State<AppState>, Path(p): Path<TogglePath>) -> Response {
    toggle(core, p.rsc, p.node, true, p.pool, p.from).await
}

async fn toggle(
    core: AppState,
    rsc: String,
    node: String,
    diskful: bool,
    storage_pool: Option<String>,
    migrate_from: Option<String>,
) -> Response {
    let req = prsc::ToggleDisk {
        diskful,
        storage_pool,
        migrate_from,
    };
    run(&core, Op::Modify, StatusCode::OK, move |c, env, o| {
        prsc::toggle_disk(c, env, o, &rsc, &node, &req)
    })
    .await
}

pub async fn vlm_list(
    State(core): State<AppState>,
    Path((rsc, node)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    match find_rsc(&core, &rsc, &node) {
        Ok(r) => ok(&q.page(r.volumes)),
        Err(resp) => *resp,
    }
}

pub async fn vlm_get(
    State(core): State<AppState>,
    Path((rsc, node, vnr)): Path<(String, String, i32)>,
) -> Response {
    let r = match find_rsc(&core, &rsc, &node) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    match r.volumes.into_iter().find(|v| v.volume_number == vnr) {
        Some(v) => ok(&v),
        None => not_found(
            code::FAIL_NOT_FOUND_VLM,
            ObjKind::Vlm,
            "volume",
            &format!("{vnr}' of resource '{rsc}' on node '{node}"),
        ),
    }
}

pub async fn vlm_modify(
    State(core): State<AppState>,
    Path((rsc, node, vnr)): Path<(String, String, i64)>,
    Body(req): Body<VolumeModify>,
) -> Response {
    let change = convert::props_change(&req.props);
    run(&core, Op::Modify, StatusCode::OK, move |c, _, _| {
        prsc::modify_volume(c, &rsc, &node, vnr, &change)
    })
    .await
}

pub async fn autoplace(
    State(core): State<AppState>,
    Path(rsc): Path<String>,
    Body(req): Body<AutoPlaceRequest>,
) -> Response {
    let filter = match convert::select_filter_in(&req.select_filter) {
        Ok(f) => f,
        Err(e) => return error(Op::Create, e),
    };
    let plan_req = AutoplaceRequest {
        filter,
        diskless_on_remaining: req.diskless_on_remaining,
        layer_list: req.layer_list.clone().unwrap_or_default(),
    };
    run_create(
        &core,
        ObjKind::Rsc,
        StatusCode::CREATED,
        move |c, env, o| prsc::autoplace(c, env, o, &rsc, &plan_req),
    )
    .await
}

pub async fn rconn_list(
    State(core): State<AppState>,
    Path(rsc): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let list = {
        let cluster = core.cluster();
        match prd::rd_of(&cluster, &rsc) {
            Ok(rd) => cluster
                .connections_of(&rd.name)
                .map(resource_connection)
                .collect::<Vec<_>>(),
            Err(e) => return error(Op::None, e),
        }
    };
    ok(&q.page(list))
}

/// One connection, as an object (what LINSTOR answers, although the spec says a list).
pub async fn rconn_get(
    State(core): State<AppState>,
    Path((rsc, node_a, node_b)): Path<(String, String, String)>,
) -> Response {
    let found = {
        let cluster = core.cluster();
        prconn::rsc_conn_of(&cluster, &rsc, &node_a, &node_b).map(resource_connection)
    };
    match found {
        Ok(c) => ok(&c),
        Err(e) => error(Op::None, e),
    }
}

pub async fn rconn_modify(
    State(core): State<AppState>,
    Path((rsc, node_a, node_b)): Path<(String, String, String)>,
    Body(req): Body<ResourceConnectionModify>,
) -> Response {
    let change = convert::props_change(&req.props);
    run(&core, Op::Modify, StatusCode::OK, move |c, env, _| {
        prconn::modify_rsc_conn(c, env, &rsc, &node_a, &node_b, &change)
    })
    .await
}
