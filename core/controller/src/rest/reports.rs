//! Error reports: `GET /v1/error-reports[/{id}]`, `DELETE /v1/error-reports/{id}` and
//! `PATCH /v1/error-reports` (delete a range).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use strata_model::error::code;
use strata_model::plan::{Op, Reply};
use strata_model::ObjKind;

use super::{not_found, ok, replies, AppState, Body, Query};
use crate::errors::{ErrorReport, Selection};

/// An error report as LINSTOR's REST API shows it.
#[derive(Debug, Serialize)]
struct ReportView {
    node_name: String,
    error_time: i64,
    filename: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    module: String,
    version: String,
    exception: String,
    exception_message: String,
}

fn view(r: &ErrorReport, with_text: bool) -> ReportView {
    ReportView {
        node_name: r.node.clone(),
        error_time: r.time_ms,
        filename: r.filename(),
        text: with_text.then(|| r.text()),
        module: r.module.clone(),
        version: r.version.clone(),
        exception: r.exception.clone(),
        exception_message: r.message.clone(),
    }
}

fn number(q: &Query, key: &str) -> Option<i64> {
    q.values(key).first().and_then(|v| v.parse().ok())
}

fn selection(q: &Query) -> Selection {
    Selection {
        nodes: q.names("node"),
        since_ms: number(q, "since"),
        to_ms: number(q, "to"),
        ..Default::default()
    }
}

/// Whether `withContent` asks for the text (`default` when absent).
fn with_content(q: &Query, default: bool) -> bool {
    match q.values("withContent").first() {
        Some(v) => v.eq_ignore_ascii_case("true") || v == "1",
        None => default,
    }
}

pub async fn list(State(core): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let text = with_content(&q, false);
    let views: Vec<ReportView> = core
        .reports
        .list(&selection(&q))
        .iter()
        .map(|r| view(r, text))
        .collect();
    ok(&q.page(views))
}

pub async fn get_one(
    State(core): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let found = core.reports.list(&Selection {
        ids: vec![id.clone()],
        ..selection(&q)
    });
    if found.is_empty() {
        // A report is a file on the controller: LINSTOR's "file not found".
        return not_found(
            code::FAIL_NOT_FOUND_EXT_FILE,
            ObjKind::CtrlConf,
            "error report",
            &id,
        );
    }
    let text = with_content(&q, true);
    ok(&found.iter().map(|r| view(r, text)).collect::<Vec<_>>())
}

fn deleted(ids: Vec<String>) -> Response {
    let msg = if ids.is_empty() {
        "No error report matched; nothing was deleted.".to_string()
    } else {
        format!("Deleted {} error report(s): {}", ids.len(), ids.join(", "))
    };
    replies(&[Reply::deleted(ObjKind::CtrlConf, msg)], StatusCode::OK)
}

pub async fn delete_one(State(core): State<AppState>, Path(id): Path<String>) -> Response {
    let gone = core.reports.delete(&Selection {
        ids: vec![id.clone()],
        ..Default::default()
    });
    if gone.is_empty() {
        return replies(
            &[Reply::warning(
                Op::Delete,
                ObjKind::CtrlConf,
                code::WARN_NOT_FOUND,
                format!("Error report '{id}' not found; nothing was deleted."),
            )],
            StatusCode::OK,
        );
    }
    deleted(gone)
}

/// `PATCH /v1/error-reports`: LINSTOR's ErrorReportDelete.
#[derive(Debug, Default, Deserialize)]
pub struct DeleteRange {
    #[serde(default)]
    since: Option<i64>,
    #[serde(default)]
    to: Option<i64>,
    #[serde(default)]
    nodes: Option<Vec<String>>,
    #[serde(default)]
    exception: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    ids: Option<Vec<String>>,
}

pub async fn delete_range(State(core): State<AppState>, Body(req): Body<DeleteRange>) -> Response {
    let sel = Selection {
        nodes: req
            .nodes
            .unwrap_or_default()
            .iter()
            .map(|n| n.to_ascii_uppercase())
            .collect(),
        since_ms: req.since,
        to_ms: req.to,
        ids: req.ids.unwrap_or_default(),
        exception: req.exception.filter(|e| !e.is_empty()),
        version: req.version.filter(|v| !v.is_empty()),
    };
    // An empty request would wipe every report: more likely a client's mistake.
    if sel.is_everything() {
        return super::error(
            Op::Delete,
            strata_model::ApiError::new(
                code::FAIL_INVLD_REQUEST,
                ObjKind::CtrlConf,
                "The request names no error reports to delete",
            )
            .correction("Give ids, nodes, an exception, a version, or a time range (since/to); nothing was deleted"),
        );
    }
    deleted(core.reports.delete(&sel))
}
