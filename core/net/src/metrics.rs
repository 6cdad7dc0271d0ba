//! What the daemons' HTTP servers measure and how they show it: a middleware that gives every
//! request an id (the client's `X-Request-ID`, else a new one) carried by a tracing span, so
//! that every log line the request causes names it, and that counts requests and times them
//! per route; and the `/metrics` answer in Prometheus' text format (0.0.4), or OpenMetrics
//! when the scraper asks for it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing::Instrument;

pub use prometheus_client;

/// The header that carries a request's id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route as the server declares it (`/v1/nodes/{node}`), so that names do not
    /// multiply the series.
    pub path: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub path: String,
}

/// Buckets for latencies from a millisecond to a minute.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ]
    .into_iter()
}

pub fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// Requests served, by route and status, and how long they took.
pub struct HttpMetrics {
    /// `<prefix>_http_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
    /// `<prefix>_http_request_duration_seconds`.
    pub durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl HttpMetrics {
    /// Adds these metrics to `registry` (they stay shared with `self`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_requests",
            "HTTP requests served, by method, route and status",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time taken to answer HTTP requests, by method and route",
            prometheus_client::registry::Unit::Seconds,
            self.durations.clone(),
        );
    }
}

/// A request id as a client may give it: up to 200 letters, digits, `-`, `_`, `.` or `,`
/// (the controller names with commas the REST calls that caused a push to a satellite).
fn given_id(headers: &HeaderMap) -> Option<String> {
    let id = headers.get(&REQUEST_ID)?.to_str().ok()?.trim();
    let fine = !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ','));
    fine.then(|| id.to_string())
}

tokio::task_local! {
    static CURRENT_ID: String;
}

/// The id of the request the calling task serves, inside [`observe`].
pub fn current_request_id() -> Option<String> {
    CURRENT_ID.try_with(|id| id.clone()).ok()
}

/// A new request id: 16 hexadecimal digits.
pub fn new_request_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..16].to_string()
}

/// The middleware (with `axum::middleware::from_fn_with_state`, as a route layer so that the
/// route is known): the request runs in a `request` span with its `request_id`, its answer
/// carries `X-Request-ID`, and it is counted and timed.
pub async fn observe(
    State(metrics): State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let id = given_id(req.headers()).unwrap_or_else(new_request_id);
    let method = req.method().to_string();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let serve = async {
        tracing::debug!(%method, uri = %req.uri(), "request");
        next.run(req).await
    };
    let mut resp = CURRENT_ID.scope(id.clone(), serve.instrument(span)).await;
    let took = started.elapsed().as_secs_f64();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            path: path.clone(),
            status: resp.status().as_u16().to_string(),
        })
        .inc();
    metrics
        .durations
        .get_or_create(&RouteLabels { method, path })
        .observe(took);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    resp
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `/metrics` answer for `registry`: OpenMetrics when `accept` asks for it, Prometheus'
/// text format otherwise.
pub fn exposition(registry: &Registry, accept: Option<&HeaderValue>) -> Response {
    let openmetrics = accept
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let mut text = String::new();
    let (done, content_type) = if openmetrics {
        (
            prometheus_client::encoding::text::encode(&mut text, registry),
            OPENMETRICS,
        )
    } else {
        (
            prometheus_client::encoding::prometheus_text::encode(&mut text, registry),
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )
    };
    match done {
        Ok(()) => ([(header::CONTENT_TYPE, content_type)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be written",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn app(metrics: Arc<HttpMetrics>) -> Router {
        Router::new()
            .route("/v1/nodes/{node}", get(|| async { "ok" }))
            .route_layer(axum::middleware::from_fn_with_state(metrics, observe))
    }

    async fn call(app: &Router, uri: &str, id: Option<&str>) -> Response {
        let mut req = Request::builder().uri(uri);
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        app.clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_and_carry_their_id() {
        let metrics = Arc::new(HttpMetrics::default());
        let app = app(metrics.clone());
        let resp = call(&app, "/v1/nodes/alpha", Some("my-call.1")).await;
        assert_eq!(resp.headers()["x-request-id"], "my-call.1");
        let resp = call(&app, "/v1/nodes/alpha", Some("a1,b2")).await;
        assert_eq!(resp.headers()["x-request-id"], "a1,b2");
        let resp = call(&app, "/v1/nodes/beta", Some("bad id with spaces")).await;
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));

        let mut registry = Registry::with_prefix("test");
        metrics.register(&mut registry);
        let resp = exposition(&registry, None);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains(
                "test_http_requests_total{method=\"GET\",path=\"/v1/nodes/{node}\",status=\"200\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "test_http_request_duration_seconds_count{method=\"GET\",path=\"/v1/nodes/{node}\"} 3"
            ),
            "{text}"
        );
        let open = exposition(
            &registry,
            Some(&HeaderValue::from_static("application/openmetrics-text")),
        );
        let body = axum::body::to_bytes(open.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).ends_with("# EOF\n"));
    }
}
