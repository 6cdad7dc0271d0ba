//! The LINSTOR REST API v1 over axum.
//!
//! Bodies are read as JSON whatever the Content-Type says (python-linstor sends none); every
//! answer is JSON with `application/json`. Errors are lists of ApiCallRc: 404 when the named
//! object does not exist, 400 for bad input, 500 when a node or the database failed.

pub mod auth;
mod ctrl;
mod events;
pub mod metrics;
mod nodes;
mod rd;
mod reports;
mod rg;
mod snapshot;
mod view;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use strata_api::{paths, ApiCallRc};
use strata_model::error::code;
use strata_model::plan::{Env, Observed, Op, PlanResult, Reply, Severity};
use strata_model::{ApiError, Cluster, ObjKind};

use crate::core::{Answer, Core};

pub type AppState = Arc<Core>;

/// Where a panicking handler writes its error report (the handler has no state of its own).
static PANIC_REPORTS: std::sync::OnceLock<Arc<crate::errors::ErrorReports>> =
    std::sync::OnceLock::new();

pub fn router(core: Arc<Core>) -> Router {
    let _ = PANIC_REPORTS.set(core.reports.clone());
    Router::new()
        .route(paths::HEALTH, get(ctrl::health))
        .route(paths::METRICS, get(metrics::scrape))
        .route(paths::CONTROLLER_VERSION, get(ctrl::version))
        .route(
            paths::CONTROLLER_PROPS,
            get(ctrl::props_list).post(ctrl::props_modify),
        )
        .route(paths::CONTROLLER_PROP, delete(ctrl::props_delete))
        .route(paths::AUTH_INIT, post(auth::init))
        .route(paths::AUTH_TOKENS, get(auth::list).post(auth::create))
        .route(paths::AUTH_TOKEN, put(auth::modify).delete(auth::revoke))
        .route(paths::NODES, get(nodes::list).post(nodes::create))
        .route(
            paths::NODE,
            get(nodes::get_one)
                .put(nodes::modify)
                .delete(nodes::delete_one),
        )
        .route(paths::NODE_LOST, delete(nodes::lost))
        .route(paths::NODE_RECONNECT, put(nodes::reconnect))
        .route(paths::NODE_JOIN_TOKEN, post(nodes::join_token))
        .route(
            paths::NET_IFS,
            get(nodes::netif_list).post(nodes::netif_create),
        )
        .route(
            paths::NET_IF,
            get(nodes::netif_get)
                .put(nodes::netif_modify)
                .delete(nodes::netif_delete),
        )
        .route(
            paths::NODE_STOR_POOLS,
            get(nodes::sp_list).post(nodes::sp_create),
        )
        .route(
            paths::NODE_STOR_POOL,
            get(nodes::sp_get)
                .put(nodes::sp_modify)
                .delete(nodes::sp_delete),
        )
        .route(
            paths::STOR_POOL_DFNS,
            get(nodes::spd_list).post(nodes::spd_create),
        )
        .route(
            paths::STOR_POOL_DFN,
            get(nodes::spd_get)
                .put(nodes::spd_modify)
                .delete(nodes::spd_delete),
        )
        .route(paths::RSC_DFNS, get(rd::list).post(rd::create))
        .route(
            paths::RSC_DFN,
            get(rd::get_one).put(rd::modify).delete(rd::delete_one),
        )
        .route(paths::VLM_DFNS, get(rd::vd_list).post(rd::vd_create))
        .route(
            paths::VLM_DFN,
            get(rd::vd_get).put(rd::vd_modify).delete(rd::vd_delete),
        )
        .route(paths::RSCS, get(rd::rsc_list).post(rd::rsc_create))
        .route(
            paths::RSC,
            get(rd::rsc_get)
                .post(rd::rsc_create_on_node)
                .put(rd::rsc_modify)
                .delete(rd::rsc_delete),
        )
        .route(paths::MAKE_AVAILABLE, post(rd::make_available))
        .route(paths::TOGGLE_DISK, put(rd::toggle_disk))
        .route(paths::TOGGLE_DISK_TO, put(rd::toggle_disk_path))
        .route(paths::TOGGLE_DISK_TO_POOL, put(rd::toggle_disk_path))
        .route(paths::MIGRATE_DISK, put(rd::migrate_disk))
        .route(paths::MIGRATE_DISK_TO_POOL, put(rd::migrate_disk))
        .route(paths::VLMS, get(rd::vlm_list))
        .route(paths::VLM, get(rd::vlm_get).put(rd::vlm_modify))
        .route(paths::AUTOPLACE, post(rd::autoplace))
        .route(paths::CLONE, post(rd::clone))
        .route(paths::CLONE_STATUS, get(rd::clone_status))
        .route(paths::RSC_CONNS, get(rd::rconn_list))
        .route(paths::RSC_CONN, get(rd::rconn_get).put(rd::rconn_modify))
        .route(paths::RSC_GRPS, get(rg::list).post(rg::create))
        .route(
            paths::RSC_GRP,
            get(rg::get_one).put(rg::modify).delete(rg::delete_one),
        )
        .route(paths::RSC_GRP_SPAWN, post(rg::spawn))
        .route(paths::RSC_GRP_ADJUST, post(rg::adjust))
        .route(paths::RSC_GRPS_ADJUST_ALL, post(rg::adjust_all))
        .route(paths::VLM_GRPS, get(rg::vg_list).post(rg::vg_create))
        .route(
            paths::VLM_GRP,
            get(rg::vg_get).put(rg::vg_modify).delete(rg::vg_delete),
        )
        .route(paths::RSC_GRP_MAX_VLM_SIZE, get(rg::query_max_volume_size))
        .route(paths::RSC_GRP_SIZE_INFO, post(rg::query_size_info))
        .route(paths::RSC_GRPS_SIZE_INFO, post(rg::query_all_size_info))
        .route(
            paths::MAX_VLM_SIZE,
            axum::routing::options(rg::query_max_volume_size_filter)
                .post(rg::query_max_volume_size_filter),
        )
        .route(paths::VIEW_RESOURCES, get(view::resources))
        .route(paths::EVENTS_PROMOTION, get(events::drbd_promotion))
        .route(paths::EVENTS_NODES, get(events::nodes))
        .route(paths::EVENTS_RESOURCES, get(events::resources))
        .route(paths::VIEW_STOR_POOLS, get(view::storage_pools))
        .route(paths::VIEW_SNAPSHOTS, get(snapshot::view))
        .route(paths::SNAPSHOT_MULTI, post(snapshot::create_multi))
        .route(paths::SNAPSHOTS, get(snapshot::list).post(snapshot::create))
        .route(
            paths::SNAPSHOT,
            get(snapshot::get_one).delete(snapshot::delete),
        )
        .route(
            paths::SNAPSHOT_RESTORE_VLM_DFN,
            post(snapshot::restore_volume_definitions),
        )
        .route(
            paths::SNAPSHOT_RESTORE_RSC,
            post(snapshot::restore_resources),
        )
        .route(paths::SNAPSHOT_ROLLBACK, post(snapshot::rollback))
        .route(
            paths::ERROR_REPORTS,
            get(reports::list).patch(reports::delete_range),
        )
        .route(
            paths::ERROR_REPORT,
            get(reports::get_one).delete(reports::delete_one),
        )
        // Every routed call gets its request id (and its log lines with it), and is
        // counted and timed for /metrics.
        .route_layer(axum::middleware::from_fn_with_state(
            core.metrics.http.clone(),
            strata_net::metrics::observe,
        ))
        .fallback(unknown_call)
        .layer(axum::middleware::from_fn_with_state(
            core.clone(),
            auth::check,
        ))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(core)
}

/// Every answer is JSON: what axum itself refuses (a path that does not decode, a method the
/// path does not serve) becomes an ApiCallRc list with the same status.
async fn json_errors(req: Request, next: axum::middleware::Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let resp = next.run(req).await;
    let is_json = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/json") || v.starts_with(b"text/event-stream")
    });
    if is_json || resp.status().is_success() {
        return resp;
    }
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = String::from_utf8_lossy(&body).trim().to_string();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        format!("No API call {method} {path}")
    } else if detail.is_empty() {
        format!("The request {method} {path} cannot be served ({status})")
    } else {
        format!("The request {method} {path} cannot be served: {detail}")
    };
    let err = ApiError::new(code::FAIL_INVLD_REQUEST, ObjKind::CtrlConf, message).correction(
        "Check the path, its escapes (%XX) and the method against the LINSTOR REST API v1",
    );
    let rcs = vec![ApiCallRc::from(&Reply::from_error(Op::None, err))];
    json(status, &rcs)
}

/// A handler that panicked answers 500 with an ApiCallRc instead of dropping the connection.
fn panicked(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!("request handler panicked: {what}");
    let mut err = ApiError::new(
        code::FAIL_IMPL_ERROR,
        ObjKind::CtrlConf,
        format!("Internal error while serving the request: {what}"),
    )
    .correction("Report this as a bug with the request that caused it");
    if let Some(reports) = PANIC_REPORTS.get() {
        err = err.report(reports.record(
            "Controller",
            crate::errors::MODULE_CONTROLLER,
            "InternalError",
            "a request handler panicked",
            what,
        ));
    }
    let rcs = vec![ApiCallRc::from(&Reply::from_error(Op::None, err))];
    json(StatusCode::INTERNAL_SERVER_ERROR, &rcs)
}

/// A JSON body read regardless of its Content-Type; an empty body reads as `{}`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| bad_body(format!("the request body could not be read: {e}")))?;
        let text: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(Body)
            .map_err(|e| bad_body(format!("the request body is not valid for this call: {e}")))
    }
}

fn bad_body(msg: String) -> Response {
    error(
        Op::None,
        ApiError::new(code::FAIL_INVLD_REQUEST, ObjKind::CtrlConf, msg)
            .correction("Send a JSON object as described by the LINSTOR REST API v1"),
    )
}

/// JSON with the content type set, for data answers.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    json_bytes(
        status,
        serde_json::to_vec(value).expect("answers always serialize"),
    )
}

/// An already serialised JSON body.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    json_body(status, axum::body::Body::from(body))
}

/// A JSON body, serialised already or coming in parts.
pub fn json_body(status: StatusCode, body: axum::body::Body) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn ok<T: Serialize>(value: &T) -> Response {
    json(StatusCode::OK, value)
}

fn is_server_side(code: u64) -> bool {
    matches!(
        code,
        code::FAIL_SQL
            | code::FAIL_UNKNOWN_ERROR
            | code::FAIL_IMPL_ERROR
            | code::FAIL_NOT_CONNECTED
    )
}

fn status_for(replies: &[Reply], success: StatusCode) -> StatusCode {
    let errors: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.severity == Severity::Error)
        .collect();
    if errors.is_empty() {
        success
    } else if errors.iter().any(|r| is_server_side(r.code)) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if errors.iter().any(|r| (300..400).contains(&r.code)) {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_REQUEST
    }
}

pub fn replies(replies: &[Reply], success: StatusCode) -> Response {
    let status = status_for(replies, success);
    let rcs: Vec<ApiCallRc> = replies.iter().map(ApiCallRc::from).collect();
    json(status, &rcs)
}

pub fn error(op: Op, err: ApiError) -> Response {
    replies(&[Reply::from_error(op, err)], StatusCode::OK)
}

pub fn answer(result: Result<Answer, ApiError>, op: Op, success: StatusCode) -> Response {
    match result {
        Ok(a) => replies(&a.replies, success),
        Err(e) => error(op, e),
    }
}

/// Plans, commits and dispatches a mutation and answers with its replies.
pub async fn run<F>(core: &Arc<Core>, op: Op, success: StatusCode, f: F) -> Response
where
    F: FnOnce(&Cluster, &mut dyn Env, &dyn Observed) -> PlanResult + Send + 'static,
{
    answer(core.mutate(f).await, op, success)
}

/// Plans, commits and dispatches the creation of an object of `kind`: a not-found error
/// (of the node, definition or group it would belong to) names `kind` in its mask.
pub async fn run_create<F>(core: &Arc<Core>, kind: ObjKind, success: StatusCode, f: F) -> Response
where
    F: FnOnce(&Cluster, &mut dyn Env, &dyn Observed) -> PlanResult + Send + 'static,
{
    let result = core
        .mutate(move |c, env, o| f(c, env, o).map_err(|e| e.creating(kind)))
        .await;
    answer(result, Op::Create, success)
}

pub fn not_found(code: u64, object: ObjKind, what: &str, name: &str) -> Response {
    error(Op::None, ApiError::not_found(code, object, what, name))
}

async fn unknown_call(req: Request) -> Response {
    let msg = format!("No API call {} {}", req.method(), req.uri().path());
    let rc = ApiCallRc {
        ret_code: (strata_api::rc::MASK_ERROR | 0x0FFF_FFFF_FFFF_FFFF) as i64,
        message: msg,
        cause: None,
        details: None,
        correction: Some("Check the path against the LINSTOR REST API v1".into()),
        error_report_ids: vec![],
        obj_refs: Default::default(),
        created_at: None,
    };
    json(StatusCode::NOT_FOUND, &vec![rc])
}

/// Query parameters, with repeated keys and comma-separated lists.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Reads a raw query string the way browsers encode forms (`+` is a space, `%XX` a
    /// byte); malformed escapes are kept as they are and invalid UTF-8 is replaced, so no
    /// query string is ever refused or fatal here.
    pub fn parse(raw: Option<&str>) -> Query {
        let Some(raw) = raw else {
            return Query::default();
        };
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// All values of `key`, also split at commas; upper-cased for name matching.
    pub fn names(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(|v| v.trim().to_ascii_uppercase())
            .filter(|v| !v.is_empty())
            .collect()
    }

    pub fn values(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .collect()
    }

    pub fn flag(&self, key: &str) -> bool {
        self.0
            .iter()
            .any(|(k, v)| k == key && (v.is_empty() || v.eq_ignore_ascii_case("true") || v == "1"))
    }

    fn number(&self, key: &str) -> Option<usize> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// `offset` and `limit` (a limit of 0 means all).
    pub fn window(&self) -> (usize, Option<usize>) {
        (
            self.number("offset").unwrap_or(0),
            self.number("limit").filter(|l| *l > 0),
        )
    }

    /// Applies `offset` and `limit`.
    pub fn page<T>(&self, items: Vec<T>) -> Vec<T> {
        let (offset, limit) = self.window();
        let it = items.into_iter().skip(offset);
        match limit {
            Some(l) => it.take(l).collect(),
            None => it.collect(),
        }
    }
}

/// Whether `name` passes a name filter (empty filter: everything).
pub fn wanted(filter: &[String], key: &str) -> bool {
    filter.is_empty() || filter.iter().any(|f| f == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = Query::parse(Some("nodes=alpha&nodes=Beta,gamma&props=Aux%2Fsite%3Da&with_volume_definitions=true&limit=2"));
        assert_eq!(q.names("nodes"), vec!["ALPHA", "BETA", "GAMMA"]);
        assert_eq!(q.values("props"), vec!["Aux/site=a"]);
        assert!(q.flag("with_volume_definitions"));
        assert!(!q.flag("nope"));
        assert_eq!(q.page(vec![1, 2, 3]), vec![1, 2]);
        assert!(Query::parse(None).names("nodes").is_empty());
    }

    #[test]
    fn malformed_queries_parse_without_harm() {
        let q = Query::parse(Some("nodes=%a&nodes=%&x=%zz&y=%c3%28&z=caf%C3%A9+x"));
        assert_eq!(q.names("nodes"), vec!["%A", "%"]);
        assert_eq!(q.values("x"), vec!["%zz"]);
        assert_eq!(q.values("y"), vec!["\u{fffd}("]);
        assert_eq!(q.values("z"), vec!["caf\u{e9} x"]);
        let q = Query::parse(Some("&&==&limit=%39"));
        assert_eq!(q.window(), (0, Some(9)));
    }

    #[test]
    fn status_classes() {
        let nf = Reply::from_error(Op::Create, ApiError::new(300, ObjKind::Node, "x"));
        assert_eq!(
            status_for(&[nf], StatusCode::CREATED),
            StatusCode::NOT_FOUND
        );
        let bad = Reply::from_error(Op::Create, ApiError::new(202, ObjKind::RscDfn, "x"));
        assert_eq!(
            status_for(&[bad], StatusCode::CREATED),
            StatusCode::BAD_REQUEST
        );
        let sat = Reply::from_error(
            Op::Create,
            ApiError::new(code::FAIL_UNKNOWN_ERROR, ObjKind::Rsc, "x"),
        );
        assert_eq!(
            status_for(&[sat], StatusCode::CREATED),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let warn = Reply::warning(Op::Create, ObjKind::Node, 1002, "x");
        assert_eq!(
            status_for(&[warn], StatusCode::CREATED),
            StatusCode::CREATED
        );
    }
}
