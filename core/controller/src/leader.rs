//! Several controllers on one etcd database: one leads (it holds the leader key under its
//! lease) and serves; the others are standbys that forward every REST call to the leader
//! (so that any controller's address works for any client), answer a clear error while no
//! controller leads, and take over once the leader's lease expires.
//!
//! The leader renews its lease every third of its time. When a renewal says the lease is
//! gone, or none succeeded for a whole lease time (counted from when the last successful
//! one was sent, so before etcd can expire it), it stops at once: the process exits and its
//! service manager starts it again as a standby. Its writes are fenced besides (each
//! transaction compares the leader key's revision), so a leader that did not notice yet
//! writes nothing once another one leads.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use strata_model::error::code;
use strata_model::{ApiError, ObjKind};
use strata_store::{EtcdStore, LeaderInfo, Persistence};
use tower::ServiceExt;

use crate::config::Leadership;
use crate::rest;

/// Headers of one hop that a forwarded call does not carry on.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
];

/// The header a standby adds to the answers it forwards: its own name.
pub const FORWARDED_BY: &str = "x-linstor-forwarded-by";

/// What the REST listeners serve: the API once this controller leads, the forwarder before.
pub struct Switch {
    api: OnceLock<Router>,
    me: String,
    leader: RwLock<Option<LeaderInfo>>,
    http: reqwest::Client,
}

impl Switch {
    pub fn new(me: &str) -> anyhow::Result<Arc<Switch>> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Arc::new(Switch {
            api: OnceLock::new(),
            me: me.to_string(),
            leader: RwLock::new(None),
            http,
        }))
    }

    /// The router every listener serves.
    pub fn router(self: &Arc<Self>) -> Router {
        let switch = self.clone();
        Router::new().fallback(move |req: Request| {
            let switch = switch.clone();
            async move { switch.handle(req).await }
        })
    }

    /// From now on the API answers.
    pub fn lead(&self, api: Router) {
        let _ = self.api.set(api);
    }

    pub fn set_leader(&self, leader: Option<LeaderInfo>) {
        *self.leader.write().unwrap_or_else(|e| e.into_inner()) = leader;
    }

    async fn handle(&self, req: Request) -> Response {
        if let Some(api) = self.api.get() {
            return match api.clone().oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
        }
        let leader = self
            .leader
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match leader {
            Some(l) if !l.url.is_empty() && l.name != self.me => self.forward(req, l).await,
            _ => unavailable(
                format!("No controller leads the cluster right now; controller '{}' is a standby", self.me),
                "The controllers are electing a leader (a leader that stopped is replaced once its lease expires, in a few seconds), or etcd cannot be reached from them. Retry shortly; if it lasts, check the controllers' logs and etcd",
            ),
        }
    }

    /// The call made at the leader, its answer streamed back.
    async fn forward(&self, req: Request, leader: LeaderInfo) -> Response {
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let url = format!("{}{path}", leader.url);
        let mut call = self
            .http
            .request(parts.method.clone(), &url)
            .body(reqwest::Body::wrap_stream(body.into_data_stream()));
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) && name != "content-length" {
                call = call.header(name, value);
            }
        }
        let answer = match call.send().await {
            Ok(a) => a,
            Err(e) => return unavailable(
                format!(
                    "Controller '{}' is a standby; the leader '{}' at {} cannot be reached: {}",
                    self.me,
                    leader.name,
                    leader.url,
                    crate::trust::describe(&e)
                ),
                "Retry shortly: if the leader stopped, a standby takes over once its lease expires",
            ),
        };
        let mut out = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if !HOP_BY_HOP.contains(&name.as_str()) && name != "content-length" {
                out = out.header(name, value);
            }
        }
        out = out.header(HeaderName::from_static(FORWARDED_BY), self.me.as_str());
        out.body(Body::from_stream(answer.bytes_stream()))
            .unwrap_or_else(|e| {
                unavailable(
                    format!("the leader's answer cannot be passed on: {e}"),
                    "Ask the leader directly",
                )
            })
    }
}

/// A LINSTOR error answer with 503 Service Unavailable.
fn unavailable(message: String, correction: &str) -> Response {
    let mut r = rest::error(
        strata_model::plan::Op::None,
        ApiError::new(code::FAIL_NOT_CONNECTED, ObjKind::CtrlConf, message).correction(correction),
    );
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("2"));
    r.into_response()
}

/// Runs `f` on the store off the runtime's threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Persistence>,
    f: impl FnOnce(&EtcdStore) -> T + Send + 'static,
) -> T {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.etcd().expect("an etcd store")))
        .await
        .expect("an etcd call does not panic")
}

/// Contends for leadership until this controller leads; meanwhile `switch` forwards to the
/// one that does. Answers the lease it leads under.
pub async fn campaign(store: &Arc<dyn Persistence>, lead: &Leadership, switch: &Switch) -> i64 {
    let me = LeaderInfo {
        name: lead.name.clone(),
        url: lead.advertise_url.clone(),
    };
    let poll = (lead.lease / 8).clamp(Duration::from_millis(100), Duration::from_millis(500));
    let mut lease: Option<i64> = None;
    let mut last_warning: Option<Instant> = None;
    let mut following: Option<String> = None;
    loop {
        let ttl = lead.lease;
        let attempt = {
            let me = me.clone();
            blocking(
                store,
                move |s| -> Result<(i64, Option<LeaderInfo>), strata_store::StoreError> {
                    let id = match lease {
                        Some(id) if s.keep_alive(id)? > 0 => id,
                        _ => s.grant(ttl)?,
                    };
                    Ok((id, s.try_lead(id, &me)?))
                },
            )
            .await
        };
        match attempt {
            Ok((id, None)) => {
                tracing::info!(name = %me.name, url = %me.url, "this controller leads the cluster now");
                return id;
            }
            Ok((id, Some(other))) => {
                lease = Some(id);
                if following.as_deref() != Some(other.name.as_str()) {
                    tracing::info!(
                        "standby: controller '{}' at {} leads; REST calls are forwarded to it",
                        other.name,
                        other.url
                    );
                    following = Some(other.name.clone());
                }
                switch.set_leader(Some(other));
            }
            Err(e) => {
                lease = None;
                following = None;
                switch.set_leader(None);
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
                    tracing::warn!("standby: cannot contend for leadership: {e}");
                    last_warning = Some(Instant::now());
                }
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// Keeps the lease of a leading controller alive on a thread of its own; exits the process
/// the moment the leadership is lost (see the module's note).
pub fn keep_leading(store: Arc<dyn Persistence>, lease: i64, ttl: Duration) {
    std::thread::Builder::new()
        .name("leader-lease".into())
        .spawn(move || {
            let etcd = store.etcd().expect("an etcd store");
            // The lease was granted or renewed just before this controller led.
            let mut valid_until = Instant::now() + ttl;
            loop {
                std::thread::sleep(ttl / 3);
                let sent = Instant::now();
                match etcd.keep_alive(lease) {
                    Ok(left) if left > 0 => valid_until = sent + ttl,
                    Ok(_) => crate::lost_leadership(
                        "its lease expired (etcd did not hear from it in time)",
                    ),
                    Err(e) if Instant::now() >= valid_until => crate::lost_leadership(&format!(
                        "its lease could not be renewed for {} s: {e}",
                        ttl.as_secs()
                    )),
                    Err(e) => tracing::warn!("renewing the leader's lease failed, retrying: {e}"),
                }
                if Instant::now() >= valid_until {
                    crate::lost_leadership("its lease could not be renewed in time");
                }
            }
        })
        .expect("a thread for the leader's lease");
}
