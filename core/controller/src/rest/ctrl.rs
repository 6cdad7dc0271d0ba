//! Controller-wide calls: health, version, controller properties.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strata_api::types::{ControllerVersion, PropsModify};
use strata_api::{convert, REST_API_VERSION};
use strata_model::plan::{node, Op};
use strata_model::PropsChange;

use super::{ok, run, AppState, Body};

pub async fn health() -> Response {
    StatusCode::OK.into_response()
}

pub async fn version() -> Response {
    ok(&ControllerVersion {
        version: REST_API_VERSION.to_string(),
        git_hash: format!("strata-{}", env!("CARGO_PKG_VERSION")),
        build_time: env!("STRATA_BUILD_TIME").to_string(),
        rest_api_version: REST_API_VERSION.to_string(),
    })
}

pub async fn props_list(State(core): State<AppState>) -> Response {
    let cluster = core.cluster();
    ok(&cluster.ctrl_props)
}

pub async fn props_modify(State(core): State<AppState>, Body(req): Body<PropsModify>) -> Response {
    let change = convert::props_change(&req);
    run(&core, Op::Modify, StatusCode::CREATED, move |c, _, _| {
        node::modify_ctrl_props(c, &change)
    })
    .await
}

pub async fn props_delete(State(core): State<AppState>, Path(key): Path<String>) -> Response {
    let change = PropsChange {
        delete: vec![key.trim_start_matches('/').to_string()],
        ..Default::default()
    };
    run(&core, Op::Delete, StatusCode::OK, move |c, _, _| {
        node::modify_ctrl_props(c, &change)
    })
    .await
}
