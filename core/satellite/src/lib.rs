//! The satellite: an HTTP agent on each storage node. It receives the node's whole desired
//! state from the controller, makes it true with the node's own tools, and reports what it
//! observes. After a restart it first converges from its own record, so existing volumes come
//! back (loop devices re-attached) before any controller connects.

pub mod config;
pub mod drbd;
pub mod metrics;
pub mod reconcile;
pub mod record;
pub mod trust;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::{rejection::JsonRejection, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use strata_agent_api::{
    AgentError, CertRenewal, Hello, JoinBind, JoinOffer, NodeConfig, NodeConfigDelta, PoolConfig,
    Report, AGENT_API_VERSION, DRBD_WAIT_MAX_MS, PATH_CERTIFICATE, PATH_CONFIG, PATH_CONFIG_DELTA,
    PATH_DRBD, PATH_HELLO, PATH_JOIN, PATH_POOL_PROBE, PATH_REPORT,
};
use strata_model::observed::Capabilities;

use crate::reconcile::ProviderFactory;
use crate::record::{Record, RecordError, RecordFile};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Who the satellite is and what it applied: what `hello` answers, readable while a
/// reconcile pass holds the record (possibly for minutes of `lvcreate` or a resync wait).
#[derive(Debug, Clone, Default)]
struct Identity {
    node_name: Option<String>,
    cluster_id: Option<String>,
    applied_generation: u64,
}

impl Identity {
    fn of(record: &Record) -> Identity {
        Identity {
            node_name: record.node_name.clone(),
            cluster_id: record.cluster_id.clone(),
            applied_generation: record.applied_generation(),
        }
    }
}

struct Inner {
    factory: Arc<dyn ProviderFactory>,
    caps: Capabilities,
    file: RecordFile,
    /// Held for a whole reconcile pass; never locked on an async worker thread.
    record: Mutex<Record>,
    identity: RwLock<Identity>,
    /// The last report made, answered to `GET /v1/report` while a pass runs.
    last_report: Mutex<Option<Report>>,
    /// Set when the record could not be read at start-up; reported until a controller
    /// configures the node again.
    record_problem: Mutex<Option<String>>,
    /// The DRBD event watcher, on nodes with the DRBD layer.
    watch: Option<watch::DrbdWatch>,
    /// The cluster's trust, in TLS mode; `None` in plain mode (no authentication at all).
    trust: Option<Arc<trust::Trust>>,
    metrics: Arc<metrics::SatelliteMetrics>,
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
    /// Loads the record from `state_dir`. A record of a newer format than this satellite
    /// knows is an error: it is left as it is, and the satellite must not start on it.
    pub fn new(
        state_dir: PathBuf,
        factory: Arc<dyn ProviderFactory>,
        caps: Capabilities,
    ) -> Result<Satellite, RecordError> {
        let file = RecordFile::new(&state_dir);
        let (record, problem) = match file.load() {
            Ok(r) => (r, None),
            Err(e @ RecordError::Newer { .. }) => return Err(e),
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
        let identity = RwLock::new(Identity::of(&record));
        Ok(Satellite {
            inner: Arc::new(Inner {
                factory,
                caps,
                file,
                identity,
                last_report: Mutex::new(None),
                record: Mutex::new(record),
                record_problem: Mutex::new(problem),
                watch: None,
                trust: None,
                metrics: Arc::default(),
            }),
        })
    }

    /// The same satellite measuring into `metrics` (call before serving).
    pub fn with_metrics(self, metrics: Arc<metrics::SatelliteMetrics>) -> Satellite {
        let mut inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("with_metrics is called before the satellite is shared"));
        inner.metrics = metrics;
        Satellite {
            inner: Arc::new(inner),
        }
    }

    pub fn metrics(&self) -> &Arc<metrics::SatelliteMetrics> {
        &self.inner.metrics
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

    /// The same satellite in TLS mode, with its trust (call before serving).
    pub fn with_trust(self, trust: Arc<trust::Trust>) -> Satellite {
        let mut inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("with_trust is called before the satellite is shared"));
        inner.trust = Some(trust);
        Satellite {
            inner: Arc::new(inner),
        }
    }

    pub fn trust(&self) -> Option<&Arc<trust::Trust>> {
        self.inner.trust.as_ref()
    }

    pub fn watch(&self) -> Option<&watch::DrbdWatch> {
        self.inner.watch.as_ref()
    }

    fn lock_record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.inner.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes what `hello` and `report` answer after a pass changed the record.
    fn publish(&self, record: &Record, report: &Report) {
        *self
            .inner
            .identity
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Identity::of(record);
        *self
            .inner
            .last_report
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
    }

    /// Re-applies the configuration of the record, as after a reboot.
    pub fn converge_from_record(&self) -> Option<Report> {
        let mut record = self.lock_record();
        let cfg = record.applied.clone()?;
        // The record may be older than what the controller last sent: restore, never remove.
        let started = std::time::Instant::now();
        let report = reconcile::reconcile_with(
            self.inner.factory.as_ref(),
            &mut record,
            &cfg,
            reconcile::Removal::Never,
        );
        self.inner.metrics.reconciled(started.elapsed());
        if let Err(e) = self.inner.file.save(&record) {
            tracing::error!("{e}");
        }
        self.publish(&record, &report);
        Some(report)
    }

    /// The identity published by the last pass.
    fn identity(&self) -> Identity {
        self.inner
            .identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Never waits for a reconcile pass: answers from the published identity.
    pub fn hello(&self) -> Hello {
        let id = self.identity();
        Hello {
            agent_api: AGENT_API_VERSION,
            version: VERSION.to_string(),
            node_name: id.node_name,
            cluster_id: id.cluster_id,
            applied_generation: id.applied_generation,
            capabilities: self.inner.caps.clone(),
        }
    }

    fn add_problems(&self, report: &mut Report) {
        if let Some(w) = &self.inner.watch {
            report.drbd = Some(w.report());
            report.errors.extend(w.problems());
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

    /// Applies a delta to the configuration held: only when it holds exactly the delta's base
    /// (otherwise 409, and the controller sends the whole configuration). Answers a partial
    /// report: the resources the delta was about, pools, errors and snapshots.
    pub fn apply_delta(&self, delta: &NodeConfigDelta) -> Applied {
        let mut record = self.lock_record();
        let cfg = {
            let held = record.applied.as_ref().filter(|a| {
                a.generation == delta.base
                    && a.cluster_id == delta.cluster_id
                    && a.node_name.eq_ignore_ascii_case(&delta.node_name)
            });
            match held {
                Some(base) => delta.apply_to(base),
                None => {
                    return Err((
                        StatusCode::CONFLICT,
                        format!(
                            "this satellite holds generation {} of node {:?}, the delta is based on {} of '{}'; send the whole configuration",
                            record.applied_generation(),
                            record.node_name,
                            delta.base,
                            delta.node_name
                        ),
                    ))
                }
            }
        };
        let full = self.apply_locked(&mut record, &cfg)?;
        let wanted: std::collections::HashSet<String> =
            delta.names().map(str::to_ascii_lowercase).collect();
        let resources: Vec<_> = full
            .resources
            .into_iter()
            .filter(|r| wanted.contains(&r.name.to_ascii_lowercase()))
            .collect();
        let gone = delta
            .names()
            .filter(|n| !resources.iter().any(|r| r.name.eq_ignore_ascii_case(n)))
            .map(str::to_string)
            .collect();
        Ok(Report {
            resources,
            gone,
            drbd: None,
            partial: true,
            ..full
        })
    }

    /// Applies a configuration, unless a newer one was applied already.
    pub fn apply(&self, cfg: &NodeConfig) -> Applied {
        let mut record = self.lock_record();
        self.apply_locked(&mut record, cfg)
    }

    fn apply_locked(&self, record: &mut Record, cfg: &NodeConfig) -> Applied {
        if let Some(node) = self.trust().and_then(|t| t.bound_node()) {
            if !node.eq_ignore_ascii_case(&cfg.node_name) {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!(
                        "this satellite joined the cluster as node '{node}'; it takes no configuration of node '{}'",
                        cfg.node_name
                    ),
                ));
            }
        }
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
            let mut report = reconcile::observe(self.inner.factory.as_ref(), record);
            self.add_problems(&mut report);
            return Ok(report);
        }
        let started = std::time::Instant::now();
        let mut report = reconcile::reconcile(self.inner.factory.as_ref(), record, cfg);
        if let Some(w) = &self.inner.watch {
            w.configure(cfg);
        }
        let reconciled = started.elapsed();
        self.inner.metrics.reconciled(reconciled);
        let saved = self.inner.file.save(record);
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
        self.publish(record, &report);
        self.add_problems(&mut report);
        Ok(report)
    }

    /// What the node observes now; while a reconcile pass holds the record, the last report
    /// made (with the DRBD state of now), instead of waiting for the pass.
    pub fn report(&self) -> Report {
        let mut report = match self.inner.record.try_lock() {
            Ok(record) => {
                let report = reconcile::observe(self.inner.factory.as_ref(), &record);
                self.publish(&record, &report);
                report
            }
            Err(std::sync::TryLockError::Poisoned(e)) => {
                let record = e.into_inner();
                reconcile::observe(self.inner.factory.as_ref(), &record)
            }
            Err(std::sync::TryLockError::WouldBlock) => self.last_report_or_identity(),
        };
        self.add_problems(&mut report);
        report
    }

    fn last_report_or_identity(&self) -> Report {
        let last = self
            .inner
            .last_report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        last.unwrap_or_else(|| {
            let id = self.identity();
            Report {
                node_name: id.node_name,
                applied_generation: id.applied_generation,
                ..Default::default()
            }
        })
    }

    pub fn probe(&self, pool: &PoolConfig) -> strata_agent_api::PoolProbe {
        reconcile::probe(self.inner.factory.as_ref(), pool)
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(PATH_HELLO, get(hello))
            .route(PATH_CONFIG, put(config))
            .route(PATH_CONFIG_DELTA, put(config_delta))
            .route(PATH_REPORT, get(report))
            .route(PATH_POOL_PROBE, post(probe))
            .route(PATH_DRBD, get(drbd))
            .route(PATH_JOIN, get(join_offer).post(join_bind))
            .route(PATH_CERTIFICATE, put(renew_certificate))
            // The controller's calls carry the request ids of the REST calls behind them.
            .route_layer(axum::middleware::from_fn_with_state(
                self.inner.metrics.http.clone(),
                strata_net::metrics::observe,
            ))
            .layer(axum::middleware::from_fn_with_state(self.clone(), admit))
            .with_state(self.clone())
    }

    /// Serves until `shutdown` completes: over TLS with the satellite's trust, in plain HTTP
    /// without one.
    pub async fn serve(
        &self,
        listen: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let tls = self.trust().map(|t| {
            let t = t.clone();
            Arc::new(move || t.server_config()) as strata_net::TlsSource
        });
        tracing::info!(
            "satellite listening on {listen} ({})",
            if tls.is_some() {
                "TLS"
            } else {
                "PLAIN: no authentication"
            }
        );
        let limits = strata_net::Limits {
            // Whole node configurations come in one body.
            max_body: 1 << 30,
            ..Default::default()
        };
        strata_net::serve(listener, self.router(), tls, limits, shutdown).await?;
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    // The blocking part logs in the request's span (its request id) too.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| {
            agent_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: {e}"),
            )
        })
}

/// In TLS mode, lets through only the join, and everything else only on connections that
/// showed the controller's certificate once the satellite joined.
async fn admit(
    State(s): State<Satellite>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(trust) = s.trust() else {
        if req.uri().path() == PATH_JOIN || req.uri().path() == PATH_CERTIFICATE {
            return agent_error(
                StatusCode::NOT_FOUND,
                "this satellite runs in plain mode ([netcom] type = \"plain\"): it has no TLS to join",
            );
        }
        return next.run(req).await;
    };
    if req.uri().path() == PATH_JOIN {
        return next.run(req).await;
    }
    let authenticated = req
        .extensions()
        .get::<strata_net::ConnInfo>()
        .is_some_and(|c| c.tls && !c.peer_certs.is_empty());
    if trust.bound_node().is_none() {
        return agent_error(
            StatusCode::FORBIDDEN,
            "this satellite has not joined a cluster; only the join is served",
        );
    }
    if !authenticated {
        return agent_error(
            StatusCode::FORBIDDEN,
            "this connection showed no certificate of the cluster's controller",
        );
    }
    next.run(req).await
}

#[derive(serde::Deserialize)]
struct JoinQuery {
    node: String,
}

async fn join_offer(State(s): State<Satellite>, Query(q): Query<JoinQuery>) -> Response {
    let Some(trust) = s.trust() else {
        return agent_error(StatusCode::NOT_FOUND, "plain mode");
    };
    match trust.offer(&q.node) {
        Ok(proof) => Json(JoinOffer { proof }).into_response(),
        Err(e) => agent_error(StatusCode::CONFLICT, e.0),
    }
}

async fn join_bind(
    State(s): State<Satellite>,
    body: Result<Json<JoinBind>, JsonRejection>,
) -> Response {
    let Some(trust) = s.trust().cloned() else {
        return agent_error(StatusCode::NOT_FOUND, "plain mode");
    };
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return agent_error(StatusCode::BAD_REQUEST, format!("invalid join: {e}")),
    };
    match blocking(move || trust.bind(&req)).await {
        Ok(Ok(())) => Json(s.hello()).into_response(),
        Ok(Err(e)) => agent_error(StatusCode::FORBIDDEN, e.0),
        Err(resp) => resp,
    }
}

async fn renew_certificate(
    State(s): State<Satellite>,
    body: Result<Json<CertRenewal>, JsonRejection>,
) -> Response {
    let Some(trust) = s.trust().cloned() else {
        return agent_error(StatusCode::NOT_FOUND, "plain mode");
    };
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return agent_error(StatusCode::BAD_REQUEST, format!("invalid renewal: {e}")),
    };
    match blocking(move || trust.renew(&req.cert_pem)).await {
        Ok(Ok(())) => Json(s.hello()).into_response(),
        Ok(Err(e)) => agent_error(StatusCode::FORBIDDEN, e.0),
        Err(resp) => resp,
    }
}

async fn hello(State(s): State<Satellite>) -> Json<Hello> {
    Json(s.hello())
}

/// What applying a configuration answers: the report, or a status and why.
pub type Applied = Result<Report, (StatusCode, String)>;

/// Applies a configuration (`what` names it in errors) off the async runtime.
async fn apply_body<T: Send + 'static>(
    s: Satellite,
    body: Result<Json<T>, JsonRejection>,
    what: &str,
    apply: fn(&Satellite, &T) -> Applied,
) -> Response {
    let Json(cfg) = match body {
        Ok(b) => b,
        Err(e) => return agent_error(StatusCode::BAD_REQUEST, format!("invalid {what}: {e}")),
    };
    match blocking(move || apply(&s, &cfg)).await {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err((status, msg))) => agent_error(status, msg),
        Err(resp) => resp,
    }
}

async fn config(
    State(s): State<Satellite>,
    body: Result<Json<NodeConfig>, JsonRejection>,
) -> Response {
    apply_body(s, body, "configuration", Satellite::apply).await
}

async fn config_delta(
    State(s): State<Satellite>,
    body: Result<Json<NodeConfigDelta>, JsonRejection>,
) -> Response {
    apply_body(s, body, "configuration delta", Satellite::apply_delta).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;
    use strata_agent_api::{ResourceConfig, VolumeConfig};
    use strata_model::kinds::{LayerKind, ProviderKind};
    use strata_model::observed::PoolState;
    use strata_storage::{BackingVolume, Provider, StorageError};

    /// A pool whose volume creation waits until the test lets it go, as a long `lvcreate`.
    struct SlowPool {
        release: Mutex<mpsc::Receiver<()>>,
        started: Mutex<mpsc::Sender<()>>,
    }

    struct SlowProvider(Arc<SlowPool>);

    impl Provider for SlowProvider {
        fn kind(&self) -> ProviderKind {
            ProviderKind::FileThin
        }
        fn check(&self) -> Result<(), StorageError> {
            Ok(())
        }
        fn state(&self) -> Result<PoolState, StorageError> {
            Ok(PoolState {
                free_capacity_kib: 1000,
                total_capacity_kib: 2000,
                ..Default::default()
            })
        }
        fn list(&self) -> Result<Vec<BackingVolume>, StorageError> {
            Ok(Vec::new())
        }
        fn ensure(
            &self,
            name: &str,
            size_kib: u64,
            _: Option<&BackingVolume>,
        ) -> Result<BackingVolume, StorageError> {
            let _ = self.0.started.lock().unwrap().send(());
            let _ = self
                .0
                .release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(60));
            Ok(BackingVolume {
                name: name.into(),
                path: format!("/pool/{name}.img"),
                device: Some(format!("/dev/slow/{name}")),
                size_kib,
                allocated_kib: 0,
            })
        }
        fn delete(&self, _: &str, _: Option<&BackingVolume>) -> Result<(), StorageError> {
            Ok(())
        }
        fn adopt(&self, _: &str, _: u64) -> Result<Option<BackingVolume>, StorageError> {
            Ok(None)
        }
    }

    struct Factory(Arc<SlowPool>);

    impl ProviderFactory for Factory {
        fn open(&self, _: &PoolConfig) -> Result<Box<dyn Provider>, StorageError> {
            Ok(Box::new(SlowProvider(self.0.clone())))
        }
    }

    fn config(generation: u64) -> NodeConfig {
        NodeConfig {
            generation,
            cluster_id: "c1".into(),
            node_name: "alpha".into(),
            pools: vec![PoolConfig {
                name: "pool1".into(),
                kind: ProviderKind::FileThin,
                props: Default::default(),
            }],
            snapshots: Vec::new(),
            resources: vec![ResourceConfig {
                name: "r1".into(),
                layers: vec![LayerKind::Storage],
                diskless: false,
                drbd: None,
                initial_sync: None,
                volumes: vec![VolumeConfig {
                    number: 0,
                    size_kib: 100,
                    pool: "pool1".into(),
                    backing_name: "r1_00000".into(),
                    restore_from: None,
                    adopt: false,
                    copy_from: None,
                    net_kib: None,
                }],
            }],
        }
    }

    /// A satellite on a [`SlowPool`]: each volume made waits for a message on the first
    /// channel; the second tells when one started.
    fn slow_satellite(dir: &std::path::Path) -> (Satellite, mpsc::Sender<()>, mpsc::Receiver<()>) {
        let (release_tx, release_rx) = mpsc::channel();
        let (started_tx, started_rx) = mpsc::channel();
        let pool = Arc::new(SlowPool {
            release: Mutex::new(release_rx),
            started: Mutex::new(started_tx),
        });
        let sat = Satellite::new(
            dir.to_path_buf(),
            Arc::new(Factory(pool)),
            Capabilities::default(),
        )
        .expect("no record yet");
        (sat, release_tx, started_rx)
    }

    #[test]
    fn hello_and_report_answer_while_a_pass_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (sat, release_tx, started_rx) = slow_satellite(dir.path());
        // A pass that creates a volume, held in the middle.
        let applying = {
            let sat = sat.clone();
            std::thread::spawn(move || sat.apply(&config(7)).map_err(|(_, m)| m))
        };
        started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the pass started");
        // hello and report answer without waiting for the pass (a blocked call would not
        // send before the pass is released, and the receive would time out).
        let (tx, rx) = mpsc::channel();
        {
            let sat = sat.clone();
            std::thread::spawn(move || {
                let hello = sat.hello();
                let report = sat.report();
                let _ = tx.send((hello, report));
            });
        }
        let (hello, report) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("hello and report answer during a pass");
        assert_eq!(hello.applied_generation, 0, "nothing applied yet");
        assert_eq!(report.applied_generation, 0);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        release_tx.send(()).unwrap();
        let applied = applying.join().unwrap().expect("the pass finishes");
        assert_eq!(applied.applied_generation, 7);
        // Afterwards both show the new generation and node.
        let hello = sat.hello();
        assert_eq!(hello.applied_generation, 7);
        assert_eq!(hello.node_name.as_deref(), Some("alpha"));
        assert_eq!(hello.cluster_id.as_deref(), Some("c1"));
        assert_eq!(sat.report().applied_generation, 7);
    }

    #[test]
    fn a_delta_applies_only_on_its_base_and_answers_for_its_resources() {
        let dir = tempfile::tempdir().unwrap();
        let (sat, release_tx, _started) = slow_satellite(dir.path());
        // Volume creation is let go at once (one message per volume made).
        for _ in 0..8 {
            release_tx.send(()).unwrap();
        }
        let mut two = config(3);
        let mut r2 = two.resources[0].clone();
        r2.name = "r2".into();
        r2.volumes[0].backing_name = "r2_00000".into();
        two.resources.push(r2);
        sat.apply(&two).unwrap();

        let mut r3 = two.resources[0].clone();
        r3.name = "r3".into();
        r3.volumes[0].backing_name = "r3_00000".into();
        let delta = NodeConfigDelta {
            generation: 5,
            base: 3,
            cluster_id: "c1".into(),
            node_name: "alpha".into(),
            pools: two.pools.clone(),
            upsert: vec![r3],
            remove: vec!["r1".into()],
            snapshots: None,
        };
        // On another base: refused, nothing changes.
        let wrong = NodeConfigDelta {
            base: 2,
            ..delta.clone()
        };
        let (status, msg) = sat.apply_delta(&wrong).unwrap_err();
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(msg.contains("holds generation 3"), "{msg}");
        assert_eq!(sat.hello().applied_generation, 3);

        let report = sat.apply_delta(&delta).unwrap();
        assert!(report.partial);
        assert_eq!(report.applied_generation, 5);
        let names: Vec<&str> = report.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["r3"]);
        assert_eq!(report.gone, ["r1"]);
        assert!(report.pools.contains_key("pool1"));
        // What the node holds now is the base with the delta applied.
        let held = sat.report();
        let mut names: Vec<&str> = held.resources.iter().map(|r| r.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["r2", "r3"]);
        assert!(!held.partial);
        // The same delta again is based on what the node no longer holds.
        assert_eq!(sat.apply_delta(&delta).unwrap_err().0, StatusCode::CONFLICT);
    }

    /// A factory without pools, for satellites that only start.
    struct NoPools;

    impl ProviderFactory for NoPools {
        fn open(&self, _: &PoolConfig) -> Result<Box<dyn Provider>, StorageError> {
            Err(StorageError::Unsupported("no pools here".into()))
        }
    }

    #[test]
    fn a_record_of_a_newer_format_stops_the_start_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(record::RECORD_FILE);
        let newer = r#"{"version": 99, "node_name": "alpha"}"#;
        std::fs::write(&path, newer).unwrap();
        let start = || {
            Satellite::new(
                dir.path().to_path_buf(),
                Arc::new(NoPools),
                Capabilities::default(),
            )
        };
        let err = start().err().expect("a newer record stops the start");
        assert!(
            matches!(err, RecordError::Newer { version: 99, .. }),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), newer);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // A record of the first format is taken up as it is.
        std::fs::write(&path, include_str!("../tests/fixtures/record-v1.json")).unwrap();
        let hello = start().expect("a version-1 record is read").hello();
        assert_eq!(hello.node_name.as_deref(), Some("alpha"));
        assert_eq!(hello.applied_generation, 5);
    }
}
