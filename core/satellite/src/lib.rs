//! The satellite: an HTTP agent on each storage node. It receives the node's whole desired
//! state from the controller, makes it true with the node's own tools, and reports what it
//! observes. After a restart it first converges from its own record, so existing volumes come
//! back (loop devices re-attached) before any controller connects.

pub mod config;
pub mod drbd;
pub mod reconcile;
pub mod record;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{rejection::JsonRejection, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use strata_agent_api::{
    AgentError, Hello, NodeConfig, PoolConfig, Report, AGENT_API_VERSION, DRBD_WAIT_MAX_MS,
    PATH_CONFIG, PATH_DRBD, PATH_HELLO, PATH_POOL_PROBE, PATH_REPORT,
};
use strata_model::observed::Capabilities;

use crate::reconcile::ProviderFactory;
use crate::record::{Record, RecordError, RecordFile};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

struct Inner {
    factory: Arc<dyn ProviderFactory>,
    caps: Capabilities,
    file: RecordFile,
    record: Mutex<Record>,
    /// Set when the record could not be read at start-up; reported until a controller
    /// configures the node again.
    record_problem: Mutex<Option<String>>,
    /// The DRBD event watcher, on nodes with the DRBD layer.
    watch: Option<watch::DrbdWatch>,
}

#[derive(Clone)]
pub struct Satellite {
    inner: Arc<Inner>,
}

fn agent_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(AgentError {
            message: message.into(),
        }),
    )
        .into_response()
}

impl Satellite {
    /// Loads the record from `state_dir` and detects what the host can do.
    pub fn new(
        state_dir: PathBuf,
        factory: Arc<dyn ProviderFactory>,
        caps: Capabilities,
    ) -> Satellite {
        let file = RecordFile::new(&state_dir);
        let (record, problem) = match file.load() {
            Ok(r) => (r, None),
            Err(e @ RecordError::Corrupt { .. }) => {
                // Refuse to guess: keep the damaged record aside, touch no volume, and wait
                // for the controller's configuration, which finds the volumes that exist.
                let kept = file
                    .quarantine()
                    .map(|p| format!("; kept as {}", p.display()))
                    .unwrap_or_default();
                let msg = format!(
                    "{e}{kept}; no volume was changed, waiting for the controller's configuration"
                );
                tracing::error!("{msg}");
                (Record::default(), Some(msg))
            }
            Err(e) => {
                tracing::error!("{e}; waiting for the controller's configuration");
                (Record::default(), Some(e.to_string()))
            }
        };
        Satellite {
            inner: Arc::new(Inner {
                factory,
                caps,
                file,
                record: Mutex::new(record),
                record_problem: Mutex::new(problem),
                watch: None,
            }),
        }
    }

    /// The same satellite with a DRBD event watcher (call before serving).
    pub fn with_watch(self, watch: watch::DrbdWatch) -> Satellite {
        let mut inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("with_watch is called before the satellite is shared"));
        if let Some(cfg) = &inner
            .record
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .applied
        {
            watch.configure(cfg);
        }
        inner.watch = Some(watch);
        Satellite {
            inner: Arc::new(inner),
        }
    }

    pub fn watch(&self) -> Option<&watch::DrbdWatch> {
        self.inner.watch.as_ref()
    }

    fn lock_record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.inner.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-applies the configuration of the record, as after a reboot.
    pub fn converge_from_record(&self) -> Option<Report> {
        let mut record = self.lock_record();
        let cfg = record.applied.clone()?;
        // The record may be older than what the controller last sent: restore, never remove.
        let report = reconcile::reconcile_with(
            self.inner.factory.as_ref(),
            &mut record,
            &cfg,
            reconcile::Removal::Never,
        );
        if let Err(e) = self.inner.file.save(&record) {
            tracing::error!("{e}");
        }
        Some(report)
    }

    pub fn hello(&self) -> Hello {
        let record = self.lock_record();
        Hello {
            agent_api: AGENT_API_VERSION,
            version: VERSION.to_string(),
            node_name: record.node_name.clone(),
            cluster_id: record.cluster_id.clone(),
            applied_generation: record.applied_generation(),
            capabilities: self.inner.caps.clone(),
        }
    }

    fn add_problems(&self, report: &mut Report) {
        if let Some(w) = &self.inner.watch {
            report.drbd = Some(w.report());
        }
        if let Some(p) = self
            .inner
            .record_problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            report.errors.push(p);
        }
    }

    /// Applies a configuration, unless a newer one was applied already.
    pub fn apply(&self, cfg: &NodeConfig) -> Result<Report, (StatusCode, String)> {
        let mut record = self.lock_record();
        let holds_volumes = !record.volumes.is_empty();
        if let Some(cluster) = &record.cluster_id {
            if cluster != &cfg.cluster_id && holds_volumes {
                return Err((
                    StatusCode::CONFLICT,
                    format!(
                        "this satellite belongs to another cluster ({cluster}) and holds its volumes; it refuses configurations of cluster {}",
                        cfg.cluster_id
                    ),
                ));
            }
        }
        if let Some(name) = &record.node_name {
            if !name.eq_ignore_ascii_case(&cfg.node_name) && holds_volumes {
                return Err((
                    StatusCode::CONFLICT,
                    format!(
                        "this satellite is node '{name}' and holds its volumes; it cannot also be node '{}'",
                        cfg.node_name
                    ),
                ));
            }
        }
        if record.cluster_id.as_deref() == Some(cfg.cluster_id.as_str())
            && cfg.generation < record.applied_generation()
        {
            // Stale: a newer configuration already covers this one.
            let mut report = reconcile::observe(self.inner.factory.as_ref(), &record);
            self.add_problems(&mut report);
            return Ok(report);
        }
        let started = std::time::Instant::now();
        let mut report = reconcile::reconcile(self.inner.factory.as_ref(), &mut record, cfg);
        if let Some(w) = &self.inner.watch {
            w.configure(cfg);
        }
        let reconciled = started.elapsed();
        let saved = self.inner.file.save(&record);
        tracing::debug!(
            generation = cfg.generation,
            reconcile_us = reconciled.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "applied configuration"
        );
        match saved {
            Ok(()) => {
                *self
                    .inner
                    .record_problem
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = None;
            }
            Err(e) => report.errors.push(e.to_string()),
        }
        self.add_problems(&mut report);
        Ok(report)
    }

    pub fn report(&self) -> Report {
        let record = self.lock_record();
        let mut report = reconcile::observe(self.inner.factory.as_ref(), &record);
        self.add_problems(&mut report);
        report
    }

    pub fn probe(&self, pool: &PoolConfig) -> strata_agent_api::PoolProbe {
        reconcile::probe(self.inner.factory.as_ref(), pool)
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(PATH_HELLO, get(hello))
            .route(PATH_CONFIG, put(config))
            .route(PATH_REPORT, get(report))
            .route(PATH_POOL_PROBE, post(probe))
            .route(PATH_DRBD, get(drbd))
            .with_state(self.clone())
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        &self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        tracing::info!("satellite listening on {listen}");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        agent_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )
    })
}

async fn hello(State(s): State<Satellite>) -> Json<Hello> {
    Json(s.hello())
}

async fn config(
    State(s): State<Satellite>,
    body: Result<Json<NodeConfig>, JsonRejection>,
) -> Response {
    let Json(cfg) = match body {
        Ok(b) => b,
        Err(e) => {
            return agent_error(
                StatusCode::BAD_REQUEST,
                format!("invalid configuration: {e}"),
            )
        }
    };
    match blocking(move || s.apply(&cfg)).await {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err((status, msg))) => agent_error(status, msg),
        Err(resp) => resp,
    }
}

async fn report(State(s): State<Satellite>) -> Response {
    match blocking(move || s.report()).await {
        Ok(r) => Json(r).into_response(),
        Err(resp) => resp,
    }
}

async fn probe(
    State(s): State<Satellite>,
    body: Result<Json<PoolConfig>, JsonRejection>,
) -> Response {
    let Json(pool) = match body {
        Ok(b) => b,
        Err(e) => return agent_error(StatusCode::BAD_REQUEST, format!("invalid pool: {e}")),
    };
    match blocking(move || s.probe(&pool)).await {
        Ok(r) => Json(r).into_response(),
        Err(resp) => resp,
    }
}

#[derive(Debug, serde::Deserialize)]
struct DrbdWait {
    after: Option<u64>,
    epoch: Option<u64>,
    wait_ms: Option<u64>,
}

/// The node's DRBD state, once it changed after `after` of watcher `epoch` or the wait ran out.
async fn drbd(State(s): State<Satellite>, Query(q): Query<DrbdWait>) -> Response {
    let Some(w) = s.watch().cloned() else {
        return Json(None::<strata_model::observed::DrbdReport>).into_response();
    };
    if q.epoch == Some(w.epoch()) {
        let after = q.after.unwrap_or(0);
        let wait = std::time::Duration::from_millis(q.wait_ms.unwrap_or(0).min(DRBD_WAIT_MAX_MS));
        let mut rx = w.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|seq| *seq > after)).await;
    }
    Json(Some(w.report())).into_response()
}
