//! Links to satellites: one task per node that connects, pushes the node's configuration
//! whenever the wanted generation is ahead of what the node applied, and polls its report.
//! A node that holds exactly a generation of ours gets only the changes since (a delta, so a
//! change costs what it changes, not what the node holds); after a reconnect, a failure or a
//! refused delta it gets the whole configuration.
//!
//! Requests never wait on a socket of an offline node: a change bumps the wanted generation,
//! wakes the task and waits (bounded) for the outcome; an offline node answers "offline" after
//! one quick connection attempt, and the task pushes again when the node returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use strata_agent_api::{
    AgentError, Hello, NodeConfig, NodeConfigDelta, Report, AGENT_API_VERSION, DRBD_WAIT_MAX_MS,
    PATH_CONFIG, PATH_CONFIG_DELTA, PATH_DRBD, PATH_HELLO, PATH_REPORT,
};
use strata_model::kinds::ConnectionStatus;
use strata_model::observed::{Capabilities, DrbdReport};
use strata_model::NodeName;
use tokio::sync::{watch, Semaphore};

use crate::config::Settings;

const HELLO_TIMEOUT: Duration = Duration::from_secs(3);
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a link needs of the controller: where the node is, what to send it, and where what
/// its satellite says goes. The controller's core is the one host; links know nothing else
/// of it.
pub trait Host: Send + Sync + 'static {
    fn http(&self) -> &reqwest::Client;
    fn settings(&self) -> &Settings;
    /// Whole configurations take turns: one permit per configuration built and sent.
    fn full_pushes(&self) -> &Semaphore;
    /// Where the node's satellite listens; `None` once the node is gone (the link ends).
    fn satellite_addr(&self, node: &NodeName) -> Option<SocketAddr>;
    /// The node's next configuration: the changes since `base` if it can, else all of it.
    fn next_push(&self, node: &NodeName, base: Option<u64>) -> Push;
    /// Whether a polled report shows work the node should be sent again.
    fn needs_retry(&self, node: &NodeName, report: &Report) -> bool;
    fn set_node_online(&self, node: &NodeName, caps: Capabilities);
    fn set_node_status(&self, node: &NodeName, status: ConnectionStatus, why: Option<String>);
    /// Takes a node's report (the answer to a push, or a polled one).
    fn record_report(
        self: &Arc<Self>,
        node: &NodeName,
        report: &Arc<Report>,
    ) -> impl Future<Output = ()> + Send;
    /// Takes the DRBD state the node's event watcher sent.
    fn record_drbd(&self, node: &NodeName, report: Arc<DrbdReport>);
    /// Acts on DRBD state that lets migrations on the node finish.
    fn finish_migrations(self: &Arc<Self>, node: &NodeName) -> impl Future<Output = ()> + Send;
}

/// A node's next configuration: the whole of it, or the changes to what it holds.
pub enum Push {
    Full(NodeConfig),
    Delta(NodeConfigDelta),
}

impl Push {
    pub fn generation(&self) -> u64 {
        match self {
            Push::Full(c) => c.generation,
            Push::Delta(d) => d.generation,
        }
    }
}

/// Latest state of a link, published to waiting requests.
#[derive(Debug, Clone, Default)]
pub struct LinkStatus {
    /// Counts finished attempts (connect or push), so waiters can tell a fresh outcome from an
    /// old one.
    pub seq: u64,
    pub online: bool,
    pub applied: u64,
    pub report: Option<Arc<Report>>,
    pub error: Option<String>,
    /// The satellite answered but refused the configuration.
    pub rejected: Option<String>,
}

/// How a node answered a change.
#[derive(Debug, Clone)]
pub enum Outcome {
    Applied(Arc<Report>),
    Offline(String),
    Rejected(String),
    TimedOut,
}

pub struct LinkHandle {
    wanted: watch::Sender<u64>,
    status: watch::Receiver<LinkStatus>,
    stop: watch::Sender<bool>,
}

impl LinkHandle {
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Asks for generation `gen` at least; wakes the task.
    pub fn want(&self, gen: u64) {
        self.wanted.send_modify(|w| *w = (*w).max(gen));
    }

    pub fn status(&self) -> LinkStatus {
        self.status.borrow().clone()
    }

    /// Waits until the node applied `gen`, went or stayed offline, refused, or `limit` passed.
    pub async fn wait(&self, gen: u64, limit: Duration) -> Outcome {
        let mut rx = self.status.clone();
        let start = rx.borrow().seq;
        let fut = async {
            loop {
                {
                    let s = rx.borrow_and_update();
                    if s.applied >= gen {
                        if let Some(r) = &s.report {
                            return Outcome::Applied(r.clone());
                        }
                    }
                    if s.seq > start {
                        if let Some(msg) = &s.rejected {
                            return Outcome::Rejected(msg.clone());
                        }
                        if !s.online {
                            return Outcome::Offline(
                                s.error.clone().unwrap_or_else(|| "not connected".into()),
                            );
                        }
                    }
                }
                if rx.changed().await.is_err() {
                    return Outcome::Offline("the link to the node was closed".into());
                }
            }
        };
        tokio::time::timeout(limit, fut)
            .await
            .unwrap_or(Outcome::TimedOut)
    }

    /// Waits for the first connection attempt to finish (for a node just created).
    pub async fn first_contact(&self, limit: Duration) {
        let mut rx = self.status.clone();
        let _ = tokio::time::timeout(limit, async {
            while rx.borrow_and_update().seq == 0 {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }
}

#[derive(Debug)]
enum CallError {
    /// Could not talk to the satellite at all.
    Network(String),
    /// The satellite answered with an error.
    Refused(String),
}

fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

async fn call<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
    limit: Duration,
) -> Result<T, CallError> {
    let resp = req
        .timeout(limit)
        .send()
        .await
        .map_err(|e| CallError::Network(describe(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        let msg = resp
            .json::<AgentError>()
            .await
            .map(|e| e.message)
            .unwrap_or_else(|_| format!("HTTP status {status}"));
        return Err(if status.is_server_error() {
            CallError::Network(msg)
        } else {
            CallError::Refused(msg)
        });
    }
    resp.json::<T>()
        .await
        .map_err(|e| CallError::Network(format!("unreadable answer: {}", describe(&e))))
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// A task that ends when its handle goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long one wait for DRBD changes may last on the satellite.
const DRBD_WAIT: Duration = Duration::from_millis(DRBD_WAIT_MAX_MS / 2);

/// Follows the DRBD state of a node while it is online: asks for it, and again as soon as
/// something changed (the satellite holds the question until then). Ends at once when the
/// node has no DRBD layer.
async fn follow_drbd<H: Host>(core: Arc<H>, node: NodeName, addr: SocketAddr) {
    let http = core.http().clone();
    let mut after = 0u64;
    let mut epoch: Option<u64> = None;
    loop {
        let mut path = format!(
            "{PATH_DRBD}?after={after}&wait_ms={}",
            DRBD_WAIT.as_millis()
        );
        if let Some(e) = epoch {
            path.push_str(&format!("&epoch={e}"));
        }
        let answer =
            call::<Option<DrbdReport>>(http.get(url(addr, &path)), DRBD_WAIT + HELLO_TIMEOUT * 3)
                .await;
        match answer {
            Ok(None) => return,
            Ok(Some(report)) => {
                after = report.seq;
                epoch = Some(report.epoch);
                core.record_drbd(&node, Arc::new(report));
                core.finish_migrations(&node).await;
                // Coalesce bursts of events into fewer answers.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The main loop of the link notices a lost node; try again shortly.
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

pub fn spawn<H: Host>(core: Arc<H>, node: NodeName) -> LinkHandle {
    let (wanted_tx, wanted_rx) = watch::channel(0u64);
    let (status_tx, status_rx) = watch::channel(LinkStatus::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(run(core, node, wanted_rx, status_tx, stop_rx));
    LinkHandle {
        wanted: wanted_tx,
        status: status_rx,
        stop: stop_tx,
    }
}

/// Where in each poll interval `node` is polled: spread evenly by its name, the same at
/// every start.
fn phase(node: &NodeName, poll: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    node.hash(&mut h);
    poll.mul_f64((h.finish() % 1000) as f64 / 1000.0)
}

async fn run<H: Host>(
    core: Arc<H>,
    node: NodeName,
    mut wanted: watch::Receiver<u64>,
    status: watch::Sender<LinkStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let http = core.http().clone();
    let poll = core.settings().poll_interval;
    let push_timeout = core.settings().satellite_timeout;
    let mut online = false;
    let mut need_push = true;
    let mut pushed: u64 = 0;
    // The generation the node holds exactly as we built it: deltas are based on it.
    let mut acked: Option<u64> = None;
    // Off for a satellite that does not know deltas (an older one).
    let mut deltas = true;
    let mut backoff = Duration::from_millis(500);
    // The nodes are polled at different moments of the interval, not all at once. A push's
    // answer is a report too, so it puts the next poll off, but never beyond twice the
    // interval since the last poll: the state of what no push touched still comes in.
    let mut next_poll = tokio::time::Instant::now() + phase(&node, poll);
    let mut poll_due_by = next_poll;
    // Held for its effect: dropping it stops following DRBD.
    let mut _drbd: Option<AbortOnDrop> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if !online {
            _drbd = None;
        }
        let Some(addr) = core.satellite_addr(&node) else {
            return;
        };
        if !online {
            let hello = call::<Hello>(http.get(url(addr, PATH_HELLO)), HELLO_TIMEOUT).await;
            match hello {
                Ok(h) if h.agent_api != AGENT_API_VERSION => {
                    let why = format!(
                        "satellite {addr} speaks agent protocol {}, the controller {AGENT_API_VERSION}",
                        h.agent_api
                    );
                    core.set_node_status(
                        &node,
                        ConnectionStatus::VersionMismatch,
                        Some(why.clone()),
                    );
                    status.send_modify(|s| {
                        s.seq += 1;
                        s.online = false;
                        s.error = Some(why);
                    });
                }
                Ok(h) => {
                    online = true;
                    need_push = true;
                    acked = acked.filter(|a| *a == h.applied_generation);
                    backoff = Duration::from_millis(500);
                    _drbd = Some(AbortOnDrop(tokio::spawn(follow_drbd(
                        core.clone(),
                        node.clone(),
                        addr,
                    ))));
                    core.set_node_online(&node, h.capabilities);
                    tracing::info!(node = %node, %addr, "satellite connected");
                    continue;
                }
                Err(CallError::Network(e)) | Err(CallError::Refused(e)) => {
                    let why = format!("cannot reach satellite at {addr}: {e}");
                    core.set_node_status(&node, ConnectionStatus::Offline, Some(why.clone()));
                    status.send_modify(|s| {
                        s.seq += 1;
                        s.online = false;
                        s.error = Some(why);
                        s.rejected = None;
                    });
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {},
                r = wanted.changed() => { if r.is_err() { return; } },
                _ = stop.changed() => {},
            }
            backoff = (backoff * 2).min(poll);
            continue;
        }
        let want = *wanted.borrow_and_update();
        if need_push || want > pushed {
            let base = acked.filter(|_| deltas);
            // Whole configurations take turns (see Host::full_pushes); the permit is held
            // until the answer is in, with the configuration.
            let _turn = match base {
                None => core.full_pushes().acquire().await.ok(),
                Some(_) => None,
            };
            let push = core.next_push(&node, base);
            let generation = push.generation();
            let is_delta = matches!(push, Push::Delta(_));
            tracing::debug!(node = %node, generation, ?acked, is_delta, need_push, "push");
            let answer = match &push {
                Push::Full(cfg) => {
                    call::<Report>(http.put(url(addr, PATH_CONFIG)).json(cfg), push_timeout).await
                }
                Push::Delta(d) => {
                    call::<Report>(http.put(url(addr, PATH_CONFIG_DELTA)).json(d), push_timeout)
                        .await
                }
            };
            match answer {
                Ok(report) => {
                    need_push = false;
                    pushed = pushed.max(generation);
                    next_poll = (tokio::time::Instant::now() + poll).min(poll_due_by);
                    acked = (report.applied_generation == generation).then_some(generation);
                    tracing::debug!(node = %node, generation, applied = report.applied_generation, "pushed");
                    let report = Arc::new(report);
                    core.record_report(&node, &report).await;
                    status.send_modify(|s| {
                        s.seq += 1;
                        s.online = true;
                        s.applied = report.applied_generation;
                        s.report = Some(report.clone());
                        s.error = None;
                        s.rejected = None;
                    });
                }
                Err(CallError::Refused(msg)) if is_delta => {
                    // The node holds something else than we thought (or knows no deltas):
                    // the whole configuration goes next, at once.
                    tracing::debug!(node = %node, "delta refused, sending the whole configuration: {msg}");
                    if msg.starts_with("HTTP status 404") || msg.starts_with("HTTP status 405") {
                        deltas = false;
                    }
                    acked = None;
                    need_push = true;
                }
                Err(CallError::Refused(msg)) => {
                    tracing::warn!(node = %node, "satellite refused its configuration: {msg}");
                    core.set_node_status(
                        &node,
                        ConnectionStatus::OtherController,
                        Some(msg.clone()),
                    );
                    need_push = false;
                    acked = None;
                    pushed = pushed.max(generation);
                    status.send_modify(|s| {
                        s.seq += 1;
                        s.online = true;
                        s.rejected = Some(msg);
                    });
                }
                Err(CallError::Network(e)) => {
                    online = false;
                    acked = None;
                    let why = format!("lost satellite at {addr}: {e}");
                    tracing::warn!(node = %node, "{why}");
                    core.set_node_status(&node, ConnectionStatus::Offline, Some(why.clone()));
                    status.send_modify(|s| {
                        s.seq += 1;
                        s.online = false;
                        s.error = Some(why);
                    });
                }
            }
            continue;
        }
        tokio::select! {
            r = wanted.changed() => { if r.is_err() { return; } },
            _ = stop.changed() => {},
            _ = tokio::time::sleep_until(next_poll) => {
                next_poll = tokio::time::Instant::now() + poll;
                poll_due_by = next_poll + poll;
                match call::<Report>(http.get(url(addr, PATH_REPORT)), REPORT_TIMEOUT).await {
                    Ok(report) => {
                        if report.applied_generation < pushed || core.needs_retry(&node, &report) {
                            // The node lost what it had applied (e.g. its record), or still
                            // has work that failed before: push again.
                            need_push = true;
                        }
                        if acked.is_some_and(|a| a != report.applied_generation) {
                            acked = None;
                        }
                        // Merged into the observed state; waiters take the answers to pushes,
                        // so the link keeps no second copy of a whole node's report: the
                        // answer of a whole configuration, served to its waiters by now,
                        // keeps only what is not per resource.
                        let report = Arc::new(report);
                        core.record_report(&node, &report).await;
                        status.send_modify(|s| {
                            if let Some(last) = s.report.as_ref().filter(|r| !r.partial) {
                                s.report = Some(Arc::new(Report {
                                    node_name: last.node_name.clone(),
                                    applied_generation: last.applied_generation,
                                    pools: last.pools.clone(),
                                    errors: last.errors.clone(),
                                    snapshots: last.snapshots.clone(),
                                    partial: true,
                                    ..Report::default()
                                }));
                            }
                        });
                    }
                    Err(CallError::Network(e)) | Err(CallError::Refused(e)) => {
                        online = false;
                        let why = format!("lost satellite at {addr}: {e}");
                        tracing::warn!(node = %node, "{why}");
                        core.set_node_status(&node, ConnectionStatus::Offline, Some(why.clone()));
                        status.send_modify(|s| {
                            s.seq += 1;
                            s.online = false;
                            s.error = Some(why);
                        });
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_polled_spread_over_the_interval() {
        let poll = Duration::from_secs(5);
        let phases: Vec<Duration> = (0..100)
            .map(|i| phase(&NodeName::new(&format!("node{i:03}")).expect("name"), poll))
            .collect();
        assert!(phases.iter().all(|p| *p < poll), "{phases:?}");
        // Every tenth of the interval has some of the hundred nodes, none has most of them.
        let mut tenths = [0usize; 10];
        for p in &phases {
            tenths[(p.as_millis() / 500) as usize] += 1;
        }
        assert!(tenths.iter().all(|n| (1..=25).contains(n)), "{tenths:?}");
        // The same node gets the same moment at every start.
        let n = NodeName::new("node007").expect("name");
        assert_eq!(phase(&n, poll), phases[7]);
    }
}
