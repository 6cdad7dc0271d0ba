//! Snapshots: take, list, delete, and restore into another resource definition.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use strata_api::convert;
use strata_api::types::{Snapshot, SnapshotRestore};
use strata_model::plan::snapshot::{self as psnap, SnapshotCreate};
use strata_model::plan::Op;

use super::{answer, error, ok, run, run_create, wanted, AppState, Body, Query};

/// `GET /v1/resource-definitions/{rsc}/snapshots`
pub async fn list(State(core): State<AppState>, Path(rsc): Path<String>) -> Response {
    let cluster = core.cluster();
    match strata_model::plan::rd::rd_of(&cluster, &rsc) {
        Ok(rd) => {
            let list: Vec<Snapshot> = cluster
                .snapshots_of(&rd.name)
                .map(convert::snapshot)
                .collect();
            ok(&list)
        }
        Err(e) => error(Op::None, e),
    }
}

/// `GET /v1/resource-definitions/{rsc}/snapshots/{snap}`
pub async fn get_one(
    State(core): State<AppState>,
    Path((rsc, snap)): Path<(String, String)>,
) -> Response {
    let cluster = core.cluster();
    match psnap::snapshot_of(&cluster, &rsc, &snap) {
        Ok(s) => ok(&convert::snapshot(s)),
        Err(e) => error(Op::None, e),
    }
}

/// `GET /v1/view/snapshots` (filters: `nodes`, `resources`).
pub async fn view(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let nodes = q.names("nodes");
    let resources = q.names("resources");
    let cluster = core.cluster();
    let list: Vec<Snapshot> = cluster
        .snapshots
        .values()
        .flat_map(|m| m.values())
        .filter(|s| wanted(&resources, s.rsc_name.key()))
        .filter(|s| nodes.is_empty() || s.nodes.iter().any(|n| wanted(&nodes, n.node.key())))
        .map(convert::snapshot)
        .collect();
    ok(&q.page(list))
}

/// `POST /v1/resource-definitions/{rsc}/snapshots`
pub async fn create(
    State(core): State<AppState>,
    Path(rsc): Path<String>,
    Body(req): Body<Snapshot>,
) -> Response {
    let req = SnapshotCreate {
        name: req.name,
        nodes: req.nodes,
    };
    answer(
        core.take_snapshot(rsc, req)
            .await
            .map_err(|e| e.creating(strata_model::ObjKind::Snapshot)),
        Op::Create,
        StatusCode::CREATED,
    )
}

/// `POST /v1/actions/snapshot/multi`: one snapshot of each resource named, with the I/O of
/// all of them suspended together.
pub async fn create_multi(
    State(core): State<AppState>,
    Body(req): Body<CreateMultiSnapshot>,
) -> Response {
    if req.snapshots.is_empty() {
        return error(
            Op::Create,
            strata_model::ApiError::new(
                strata_model::error::code::FAIL_INVLD_REQUEST,
                strata_model::ObjKind::Snapshot,
                "The request names no snapshot to take",
            )
            .correction("List the snapshots in 'snapshots', each with 'name' and 'resource_name'"),
        );
    }
    let reqs = req
        .snapshots
        .into_iter()
        .map(|s| {
            (
                s.resource_name,
                SnapshotCreate {
                    name: s.name,
                    nodes: s.nodes,
                },
            )
        })
        .collect();
    answer(
        core.take_snapshots(reqs).await,
        Op::Create,
        StatusCode::CREATED,
    )
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CreateMultiSnapshot {
    #[serde(default)]
    snapshots: Vec<Snapshot>,
}

/// `DELETE /v1/resource-definitions/{rsc}/snapshots/{snap}` (`?nodes=`: only those copies).
pub async fn delete(
    State(core): State<AppState>,
    Path((rsc, snap)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let nodes: Vec<String> = Query::parse(q.as_deref())
        .values("nodes")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    run(&core, Op::Delete, StatusCode::OK, move |c, _, _| {
        psnap::delete_on(c, &rsc, &snap, &nodes)
    })
    .await
}

/// `POST /v1/resource-definitions/{rsc}/snapshot-restore-volume-definition/{snap}`
pub async fn restore_volume_definitions(
    State(core): State<AppState>,
    Path((rsc, snap)): Path<(String, String)>,
    Body(req): Body<SnapshotRestore>,
) -> Response {
    run_create(
        &core,
        strata_model::ObjKind::VlmDfn,
        StatusCode::OK,
        move |c, env, obs| {
            psnap::restore_volume_definitions(c, env, obs, &rsc, &snap, &req.to_resource)
        },
    )
    .await
}

/// `POST /v1/resource-definitions/{rsc}/snapshot-restore-resource/{snap}`
pub async fn restore_resources(
    State(core): State<AppState>,
    Path((rsc, snap)): Path<(String, String)>,
    Body(req): Body<SnapshotRestore>,
) -> Response {
    run_create(
        &core,
        strata_model::ObjKind::Rsc,
        StatusCode::OK,
        move |c, env, obs| {
            psnap::restore_resources(c, env, obs, &rsc, &snap, &req.to_resource, &req.nodes)
        },
    )
    .await
}

/// `POST /v1/resource-definitions/{rsc}/snapshot-rollback/{snap}`
pub async fn rollback(
    State(core): State<AppState>,
    Path((rsc, snap)): Path<(String, String)>,
) -> Response {
    answer(
        core.rollback_snapshot(rsc, snap).await,
        Op::Modify,
        StatusCode::OK,
    )
}
