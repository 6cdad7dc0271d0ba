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
use crate::trust::describe;
pub use crate::trust::Channel;

const HELLO_TIMEOUT: Duration = Duration::from_secs(3);
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a link needs of the controller: where the node is, what to send it, and where what
/// its satellite says goes. The controller's core is the one host; links know nothing else
/// of it.
pub trait Host: Send + Sync + 'static {
    /// Opens the way to the node's satellite: over TLS (joining the node first when it has
    /// not joined, or was given a new join token), or in plain HTTP for a node created PLAIN
    /// whose satellite speaks no TLS.
    fn open_channel(
        self: &Arc<Self>,
        node: &NodeName,
        addr: SocketAddr,
    ) -> impl Future<Output = Result<Channel, String>> + Send;
    /// Gives the node a new certificate when a third of the old one's validity is left.
    fn renew_if_due(
        self: &Arc<Self>,
        node: &NodeName,
        addr: SocketAddr,
        channel: &Channel,
    ) -> impl Future<Output = ()> + Send;
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
    /// The request ids of the REST calls that changed the node's configuration in the
    /// generations after `after` up to `upto`, oldest first (a few at most).
    fn causes(&self, _node: &NodeName, _after: u64, _upto: u64) -> Vec<String> {
        Vec::new()
    }
    /// A hello or report poll of the node's satellite took `took`, there and back.
    fn round_trip(&self, _node: &NodeName, _took: Duration) {}
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
async fn follow_drbd<H: Host>(core: Arc<H>, node: NodeName, addr: SocketAddr, channel: Channel) {
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
        let answer = call::<Option<DrbdReport>>(
            channel.http.get(channel.url(addr, &path)),
            DRBD_WAIT + HELLO_TIMEOUT * 3,
        )
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

/// How long a link waits after its first failed hello; it doubles with each further one, up
/// to the poll interval.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Where a link stands. [`run`] takes one step of the state it is in and moves on to the
/// state that step leads to.
enum LinkState {
    /// Not connected, a hello goes out at once: at the start and right after the connection
    /// failed. `backoff`: how long to wait if the hello fails.
    Connecting { backoff: Duration },
    /// The last hello failed, or found a satellite that speaks another agent protocol: the
    /// next goes out after `backoff`, or sooner when a change is wanted.
    Offline { backoff: Duration },
    /// Connected: configurations go out when wanted, and the report is polled.
    Online(Online),
}

/// A connected link.
struct Online {
    /// A push is due whatever generation is wanted: after connecting, after a refused delta,
    /// and when a polled report shows the node lost what it had or has work to retry.
    need_push: bool,
    /// Follows the node's DRBD state while connected; dropping it stops that.
    _drbd: AbortOnDrop,
    /// How this connection reaches the satellite.
    channel: Channel,
}

/// Why a node is not connected.
enum Down {
    /// The hello got no answer, or an error.
    Unreachable(String),
    /// The satellite answered the hello in this other agent protocol version.
    OtherProtocol(u32),
    /// A push or a poll on the connection failed.
    Lost(String),
}

/// When the node's report is polled: at its own moment of each interval (see [`phase`]), so
/// that the nodes are not polled all at once. A push's answer is a report too, so it puts
/// the next poll off, but never beyond twice the interval since the last poll: the state of
/// what no push touched still comes in.
struct PollSchedule {
    every: Duration,
    next: tokio::time::Instant,
    due_by: tokio::time::Instant,
}

impl PollSchedule {
    fn new(node: &NodeName, every: Duration) -> PollSchedule {
        let next = tokio::time::Instant::now() + phase(node, every);
        PollSchedule {
            every,
            next,
            due_by: next,
        }
    }

    /// A poll goes out now.
    fn polling(&mut self) {
        self.next = tokio::time::Instant::now() + self.every;
        self.due_by = self.next + self.every;
    }

    /// A push was answered (with a report).
    fn pushed(&mut self) {
        self.next = (tokio::time::Instant::now() + self.every).min(self.due_by);
    }
}

/// One node's link: what its states have to work with.
struct Link<H: Host> {
    host: Arc<H>,
    node: NodeName,
    push_timeout: Duration,
    wanted: watch::Receiver<u64>,
    status: watch::Sender<LinkStatus>,
    stop: watch::Receiver<bool>,
    schedule: PollSchedule,
    /// The highest generation the node answered (applied or refused); kept across
    /// reconnects, so that a node reporting less is sent its configuration again.
    pushed: u64,
    /// The generation the node holds exactly as we built it: deltas are based on it.
    acked: Option<u64>,
    /// Off for a satellite that does not know deltas (an older one).
    deltas: bool,
}

/// One node's link, from its first hello until it is stopped or the node is gone.
async fn run<H: Host>(
    host: Arc<H>,
    node: NodeName,
    wanted: watch::Receiver<u64>,
    status: watch::Sender<LinkStatus>,
    stop: watch::Receiver<bool>,
) {
    let mut link = Link {
        push_timeout: host.settings().satellite_timeout,
        schedule: PollSchedule::new(&node, host.settings().poll_interval),
        host,
        node,
        wanted,
        status,
        stop,
        pushed: 0,
        acked: None,
        deltas: true,
    };
    let mut state = LinkState::Connecting {
        backoff: FIRST_BACKOFF,
    };
    loop {
        if *link.stop.borrow() {
            return;
        }
        let Some(addr) = link.host.satellite_addr(&link.node) else {
            return;
        };
        let next = match state {
            LinkState::Connecting { backoff } => Some(link.connect(addr, backoff).await),
            LinkState::Offline { backoff } => link.wait_to_retry(backoff).await,
            LinkState::Online(online) => link.serve(addr, online).await,
        };
        match next {
            Some(next) => state = next,
            None => return,
        }
    }
}

impl<H: Host> Link<H> {
    /// Says hello: online when the satellite answers in our protocol, offline otherwise.
    async fn connect(&mut self, addr: SocketAddr, backoff: Duration) -> LinkState {
        let channel = match self.host.open_channel(&self.node, addr).await {
            Ok(c) => c,
            Err(e) => {
                self.went_offline(addr, Down::Unreachable(e));
                return LinkState::Offline { backoff };
            }
        };
        let started = std::time::Instant::now();
        let hello = call::<Hello>(
            channel.http.get(channel.url(addr, PATH_HELLO)),
            HELLO_TIMEOUT,
        )
        .await;
        if hello.is_ok() {
            self.host.round_trip(&self.node, started.elapsed());
        }
        let h = match hello {
            Ok(h) if h.agent_api != AGENT_API_VERSION => {
                self.went_offline(addr, Down::OtherProtocol(h.agent_api));
                return LinkState::Offline { backoff };
            }
            Ok(h) => h,
            Err(CallError::Network(e)) | Err(CallError::Refused(e)) => {
                self.went_offline(addr, Down::Unreachable(e));
                return LinkState::Offline { backoff };
            }
        };
        self.acked = self.acked.filter(|a| *a == h.applied_generation);
        self.host.renew_if_due(&self.node, addr, &channel).await;
        let drbd = tokio::spawn(follow_drbd(
            self.host.clone(),
            self.node.clone(),
            addr,
            channel.clone(),
        ));
        self.host.set_node_online(&self.node, h.capabilities);
        tracing::info!(node = %self.node, %addr, tls = channel.tls, "satellite connected");
        LinkState::Online(Online {
            need_push: true,
            _drbd: AbortOnDrop(drbd),
            channel,
        })
    }

    /// Waits `backoff` before the next hello, less when a change is wanted or the link
    /// stops; `None` when the link is dropped.
    async fn wait_to_retry(&mut self, backoff: Duration) -> Option<LinkState> {
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {},
            r = self.wanted.changed() => { if r.is_err() { return None; } },
            _ = self.stop.changed() => {},
        }
        let backoff = (backoff * 2).min(self.schedule.every);
        Some(LinkState::Connecting { backoff })
    }

    /// One step of a connected link: a push when one is due, else a wait for a wanted
    /// change, for the link to stop, or for the next poll. `None` when the link is dropped.
    async fn serve(&mut self, addr: SocketAddr, online: Online) -> Option<LinkState> {
        let want = *self.wanted.borrow_and_update();
        if online.need_push || want > self.pushed {
            return Some(self.push(addr, online).await);
        }
        let poll_due = tokio::select! {
            r = self.wanted.changed() => { if r.is_err() { return None; } false },
            _ = self.stop.changed() => false,
            _ = tokio::time::sleep_until(self.schedule.next) => true,
        };
        if !poll_due {
            return Some(LinkState::Online(online));
        }
        Some(self.poll(addr, online).await)
    }

    /// Sends the node its next configuration and takes the answer.
    async fn push(&mut self, addr: SocketAddr, mut online: Online) -> LinkState {
        let base = self.acked.filter(|_| self.deltas);
        // Whole configurations take turns (see Host::full_pushes); the permit is held
        // until the answer is in, with the configuration.
        let host = self.host.clone();
        let _turn = match base {
            None => host.full_pushes().acquire().await.ok(),
            Some(_) => None,
        };
        let push = self.host.next_push(&self.node, base);
        let generation = push.generation();
        let is_delta = matches!(push, Push::Delta(_));
        // The REST calls behind this push, so that the satellite's log names them.
        let causes = self
            .host
            .causes(&self.node, base.unwrap_or(self.pushed), generation)
            .join(",");
        tracing::debug!(node = %self.node, generation, acked = ?self.acked, is_delta, need_push = online.need_push, request_id = %causes, "push");
        let answer = match &push {
            Push::Full(cfg) => online
                .channel
                .http
                .put(online.channel.url(addr, PATH_CONFIG))
                .json(cfg),
            Push::Delta(d) => online
                .channel
                .http
                .put(online.channel.url(addr, PATH_CONFIG_DELTA))
                .json(d),
        };
        let answer = if causes.is_empty() {
            answer
        } else {
            answer.header("x-request-id", causes)
        };
        match call::<Report>(answer, self.push_timeout).await {
            Ok(report) => {
                online.need_push = false;
                self.applied(generation, report).await;
            }
            Err(CallError::Refused(msg)) if is_delta => {
                // The node holds something else than we thought (or knows no deltas):
                // the whole configuration goes next, at once.
                tracing::debug!(node = %self.node, "delta refused, sending the whole configuration: {msg}");
                if msg.starts_with("HTTP status 404") || msg.starts_with("HTTP status 405") {
                    self.deltas = false;
                }
                self.acked = None;
                online.need_push = true;
            }
            Err(CallError::Refused(msg)) => {
                online.need_push = false;
                self.refused(generation, msg);
            }
            Err(CallError::Network(e)) => {
                self.acked = None;
                return self.lost(addr, e);
            }
        }
        LinkState::Online(online)
    }

    /// The node answered the configuration of `generation` with `report`.
    async fn applied(&mut self, generation: u64, report: Report) {
        self.pushed = self.pushed.max(generation);
        self.schedule.pushed();
        self.acked = (report.applied_generation == generation).then_some(generation);
        tracing::debug!(node = %self.node, generation, applied = report.applied_generation, "pushed");
        let report = Arc::new(report);
        self.host.record_report(&self.node, &report).await;
        self.status.send_modify(|s| {
            s.seq += 1;
            s.online = true;
            s.applied = report.applied_generation;
            s.report = Some(report.clone());
            s.error = None;
            s.rejected = None;
        });
    }

    /// The satellite refused the configuration of `generation` as a whole (it belongs to
    /// another controller): it is not sent again until a newer one is wanted.
    fn refused(&mut self, generation: u64, msg: String) {
        tracing::warn!(node = %self.node, "satellite refused its configuration: {msg}");
        self.host.set_node_status(
            &self.node,
            ConnectionStatus::OtherController,
            Some(msg.clone()),
        );
        self.acked = None;
        self.pushed = self.pushed.max(generation);
        self.status.send_modify(|s| {
            s.seq += 1;
            s.online = true;
            s.rejected = Some(msg);
        });
    }

    /// Polls the node's report.
    async fn poll(&mut self, addr: SocketAddr, mut online: Online) -> LinkState {
        self.schedule.polling();
        let started = std::time::Instant::now();
        let report = match call::<Report>(
            online
                .channel
                .http
                .get(online.channel.url(addr, PATH_REPORT)),
            REPORT_TIMEOUT,
        )
        .await
        {
            Ok(report) => report,
            Err(CallError::Network(e)) | Err(CallError::Refused(e)) => return self.lost(addr, e),
        };
        self.host.round_trip(&self.node, started.elapsed());
        // Each poll checks the certificate's age, so long-lived connections renew too.
        self.host
            .renew_if_due(&self.node, addr, &online.channel)
            .await;
        if report.applied_generation < self.pushed || self.host.needs_retry(&self.node, &report) {
            // The node lost what it had applied (e.g. its record), or still has work that
            // failed before: push again.
            online.need_push = true;
        }
        if self.acked.is_some_and(|a| a != report.applied_generation) {
            self.acked = None;
        }
        // Merged into the observed state; waiters take the answers to pushes, so the link
        // keeps no second copy of a whole node's report: the answer of a whole
        // configuration, served to its waiters by now, keeps only what is not per resource.
        let report = Arc::new(report);
        self.host.record_report(&self.node, &report).await;
        self.status.send_modify(|s| {
            if let Some(last) = s.report.as_ref().filter(|r| !r.partial) {
                s.report = Some(Arc::new(summary(last)));
            }
        });
        LinkState::Online(online)
    }

    /// The connection failed during a push or a poll: a hello goes out at once.
    fn lost(&self, addr: SocketAddr, e: String) -> LinkState {
        self.went_offline(addr, Down::Lost(e));
        LinkState::Connecting {
            backoff: FIRST_BACKOFF,
        }
    }

    /// Tells the observed state and the waiters that the node is not connected, and why.
    /// An earlier refusal stays visible to waiters until a push is applied or a hello fails.
    fn went_offline(&self, addr: SocketAddr, down: Down) {
        let (status, why, forget_refusal) = match down {
            Down::Unreachable(e) => (
                ConnectionStatus::Offline,
                format!("cannot reach satellite at {addr}: {e}"),
                true,
            ),
            Down::OtherProtocol(v) => (
                ConnectionStatus::VersionMismatch,
                format!("satellite {addr} speaks agent protocol {v}, the controller {AGENT_API_VERSION}"),
                false,
            ),
            Down::Lost(e) => {
                let why = format!("lost satellite at {addr}: {e}");
                tracing::warn!(node = %self.node, "{why}");
                (ConnectionStatus::Offline, why, false)
            }
        };
        self.host
            .set_node_status(&self.node, status, Some(why.clone()));
        self.status.send_modify(|s| {
            s.seq += 1;
            s.online = false;
            s.error = Some(why);
            if forget_refusal {
                s.rejected = None;
            }
        });
    }
}

/// What a link keeps of the answer to a whole configuration once a poll came in: what is
/// not per resource.
fn summary(last: &Report) -> Report {
    Report {
        node_name: last.node_name.clone(),
        applied_generation: last.applied_generation,
        pools: last.pools.clone(),
        errors: last.errors.clone(),
        snapshots: last.snapshots.clone(),
        partial: true,
        ..Report::default()
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
