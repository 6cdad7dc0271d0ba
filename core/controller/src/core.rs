//! The controller's core: the desired state in memory, what satellites observed, the database,
//! and the one path every mutation takes: plan -> commit -> apply -> dispatch -> answer.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use strata_agent_api::{PoolConfig, PoolProbe, Report, PATH_POOL_PROBE};
use strata_model::error::code;
use strata_model::kinds::ConnectionStatus;
use strata_model::objects::{ResourceGroup, SelectFilter, SnapshotState, DEFAULT_RSC_GRP};
use strata_model::observed::Capabilities;
use strata_model::plan::{self, Env, Observed, Op, Plan, PlanResult, Reply};
use strata_model::security::SecurityRecord;
use strata_model::{ApiError, Change, Cluster, NodeName, ObjKind, ResourceGroupName};
use strata_store::Persistence;

use crate::config::Settings;
use crate::env::RealEnv;
use crate::errors::{ErrorReports, MODULE_CONTROLLER, MODULE_SATELLITE};
use crate::link::{self, Host, LinkHandle, Outcome, Push};
use crate::nodecfg::{self, Dirty};
use crate::observed::ObservedState;

pub struct Core {
    /// The desired state. Read through [`Core::cluster`]; written only on the commit path
    /// below, under `writer`.
    cluster: RwLock<Cluster>,
    /// What the satellites reported. Read through [`Core::observed`]; written only here.
    observed: RwLock<ObservedState>,
    store: Box<dyn Persistence>,
    /// Serialises plan + commit + apply; readers only ever take the cluster read lock.
    writer: Mutex<()>,
    pub cluster_id: String,
    pub settings: Settings,
    /// Plain HTTP, for nodes whose satellite runs in plain mode.
    pub http: reqwest::Client,
    /// The cluster CA and the controller's certificate.
    pub trust: crate::trust::Trust,
    /// The serials of revoked certificates, kept up to date with every commit: the TLS
    /// clients of the links consult it at every handshake.
    revoked: Arc<RwLock<std::collections::HashSet<String>>>,
    links: Mutex<HashMap<NodeName, Arc<LinkHandle>>>,
    /// Changes of DRBD's `may_promote`, for `GET /v1/events/drbd/promotion`.
    pub promotions: tokio::sync::broadcast::Sender<MayPromoteChange>,
    /// Error reports of the controller's own failures and of those satellites report.
    pub reports: Arc<ErrorReports>,
    /// What each node's next configuration must carry beyond the one it holds; marked
    /// under the cluster's write lock, taken under its read lock, so that a configuration
    /// built at generation g always carries every change up to g.
    dirty: Mutex<HashMap<NodeName, Dirty>>,
    /// Whole configurations built and sent at once: after a restart every node gets one,
    /// and building them all together would hold them all in memory together.
    full_pushes: tokio::sync::Semaphore,
    /// What the controller measures as it runs (`GET /metrics`).
    pub metrics: Arc<crate::metrics::ControllerMetrics>,
    /// The REST calls (request ids) that made the last generations, so that the pushes
    /// they cause name them to the satellites.
    causes: Mutex<std::collections::VecDeque<Cause>>,
    /// The event streams of node and resource changes.
    pub events: crate::events::Events,
}

/// A REST call that made a generation, and the nodes it concerned.
struct Cause {
    generation: u64,
    request_id: String,
    nodes: BTreeSet<NodeName>,
}

/// How many generations' request ids are kept for the pushes.
const CAUSES_KEPT: usize = 256;
/// How many request ids one push names at most.
const CAUSES_PER_PUSH: usize = 8;

/// How many whole configurations are built and sent at the same time.
const FULL_PUSHES_AT_ONCE: usize = 4;

/// A resource on a node became promotable, or stopped being.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MayPromoteChange {
    pub resource_name: String,
    pub node_name: String,
    pub may_promote: bool,
}

/// The answer of a mutation: what to say, and whether it created something.
#[derive(Debug, Default)]
pub struct Answer {
    pub replies: Vec<Reply>,
    /// How each node the change concerned answered.
    pub outcomes: Vec<(NodeName, Outcome)>,
}

impl Answer {
    pub fn has_errors(&self) -> bool {
        self.replies
            .iter()
            .any(|r| r.severity == plan::Severity::Error)
    }

    /// What is wrong with snapshot `snap` of `rsc` on `nodes` after this change, one phrase
    /// per node, joined; `None` when nothing is. A node that did not apply the change, does
    /// not report the snapshot or reports an error has that said; otherwise `judge` says
    /// what is wrong with its report (a phrase after "node 'X' ").
    fn snapshot_problems<'a>(
        &self,
        rsc: &str,
        snap: &str,
        nodes: impl Iterator<Item = &'a NodeName>,
        judge: impl Fn(&NodeName, &strata_agent_api::SnapshotReport) -> Option<String>,
    ) -> Option<String> {
        let mut problems = Vec::new();
        for node in nodes {
            let report = match self.outcomes.iter().find(|(n, _)| n == node) {
                Some((_, Outcome::Applied(rep))) => rep,
                Some((_, Outcome::Offline(why))) => {
                    problems.push(format!("node '{node}' is offline: {why}"));
                    continue;
                }
                Some((_, Outcome::TimedOut)) => {
                    problems.push(format!("node '{node}' did not answer in time"));
                    continue;
                }
                Some((_, Outcome::Rejected(why))) => {
                    problems.push(format!("node '{node}' refused its configuration: {why}"));
                    continue;
                }
                None => {
                    problems.push(format!("node '{node}' was not asked"));
                    continue;
                }
            };
            match report.snapshot(rsc, snap) {
                None => problems.push(format!("node '{node}' does not report the snapshot")),
                Some(s) => match (&s.error, judge(node, s)) {
                    (Some(e), _) => problems.push(format!("node '{node}': {e}")),
                    (None, Some(what)) => problems.push(format!("node '{node}' {what}")),
                    (None, None) => {}
                },
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// What a committed mutation leaves to do: answer, and bring these nodes to this generation.
struct Committed {
    replies: Vec<Reply>,
    generation: u64,
    nodes: BTreeSet<NodeName>,
    changes: Vec<Change>,
}

fn poisoned<T>(e: std::sync::PoisonError<T>) -> T {
    e.into_inner()
}

/// The nodes of a DRBD definition (none when it does not use DRBD).
fn drbd_peers<'a>(
    cluster: &'a Cluster,
    rsc: &strata_model::ResourceName,
) -> impl Iterator<Item = NodeName> + 'a {
    let drbd = cluster
        .rsc_dfns
        .get(rsc)
        .is_some_and(|d| d.layer_stack.contains(&strata_model::LayerKind::Drbd));
    cluster
        .resources_of(rsc)
        .filter(move |_| drbd)
        .map(|r| r.node.clone())
}

/// What a set of changes means for the nodes: which must get a configuration now
/// (`targets`), and what each node's next configuration must carry (`dirty`).
#[derive(Default)]
struct Touched {
    targets: BTreeSet<NodeName>,
    dirty: HashMap<NodeName, Dirty>,
}

impl Touched {
    /// Resource `rsc` changed for `node`; `push` when the node must be told now.
    fn rsc(&mut self, node: &NodeName, rsc: &strata_model::ResourceName, push: bool) {
        self.node(node, push).resources.insert(rsc.clone());
    }

    fn node(&mut self, node: &NodeName, push: bool) -> &mut Dirty {
        if push {
            self.targets.insert(node.clone());
        }
        self.dirty.entry(node.clone()).or_default()
    }

    fn merge(&mut self, other: Touched) {
        self.targets.extend(other.targets);
        for (node, d) in other.dirty {
            self.dirty.entry(node).or_default().merge(d);
        }
    }
}

/// What `changes` mean for the nodes, judged on `cluster` (called on the state before and
/// after them, so that peers a change removes count too).
fn touched(cluster: &Cluster, changes: &[Change]) -> Touched {
    let mut out = Touched::default();
    // With DRBD every peer's configuration names the resource's hosts.
    let with_peers = |out: &mut Touched, node: &NodeName, rsc: &strata_model::ResourceName| {
        out.rsc(node, rsc, true);
        for p in drbd_peers(cluster, rsc) {
            out.rsc(&p, rsc, true);
        }
    };
    let whole_rd = |out: &mut Touched, rd: &strata_model::ResourceName, push: bool| {
        let snaps = cluster.snapshots_of(rd).next().is_some();
        for r in cluster.resources_of(rd) {
            out.rsc(&r.node, rd, push);
            if snaps {
                out.node(&r.node, push).snapshots = true;
            }
        }
    };
    for c in changes {
        match c {
            Change::PutStorPool(sp) => {
                out.node(&sp.node, true);
            }
            Change::DelStorPool(n, _) => {
                out.node(n, true);
            }
            Change::PutRsc(r) => {
                with_peers(&mut out, &r.node, &r.name);
                if r.is_deleting() {
                    out.node(&r.node, true).snapshots = true;
                }
            }
            Change::DelRsc(rsc, n) => with_peers(&mut out, n, rsc),
            Change::PutRscDfn(rd) => whole_rd(&mut out, &rd.name, true),
            Change::DelRscDfn(rd) => whole_rd(&mut out, rd, true),
            // A connection's options are in the configuration of its two nodes only.
            Change::PutRscConn(c) => {
                out.rsc(&c.node_a, &c.name, true);
                out.rsc(&c.node_b, &c.name, true);
            }
            Change::DelRscConn(r, a, b) => {
                out.rsc(a, r, true);
                out.rsc(b, r, true);
            }
            Change::PutSnapshot(snap) => {
                for n in &snap.nodes {
                    out.node(&n.node, true).snapshots = true;
                }
            }
            Change::DelSnapshot(r, n) => {
                if let Some(snap) = cluster.snapshot(r, n) {
                    for n in &snap.nodes {
                        out.node(&n.node, true).snapshots = true;
                    }
                }
            }
            // Token authentication (`Auth/...`) is the REST API's alone.
            Change::CtrlProps(props) if same_but_auth(&cluster.ctrl_props, props) => {}
            // Inherited DRBD options: everything, everywhere; told now where resources are.
            Change::CtrlProps(_) => {
                for n in cluster.nodes.keys() {
                    out.node(n, cluster.resource_count_on(n) > 0).full = true;
                }
            }
            Change::PutRscGrp(g) => group_rds(cluster, &g.name, |rd| whole_rd(&mut out, rd, true)),
            Change::DelRscGrp(g) => group_rds(cluster, g, |rd| whole_rd(&mut out, rd, false)),
            // A node's address is in the DRBD configuration of its peers; its own link
            // sends it everything when it connects.
            Change::PutNode(n) => node_and_peers(cluster, &n.name, &mut out),
            Change::DelNode(n) => node_and_peers(cluster, n, &mut out),
            // Tokens, certificates and revocations reach no satellite's configuration.
            Change::PutStorPoolDfn(_)
            | Change::DelStorPoolDfn(_)
            | Change::PutSecurity(_)
            | Change::DelSecurity(_) => {}
        }
    }
    out
}

/// Whether two sets of controller properties differ at most in `Auth/` keys.
fn same_but_auth(a: &strata_model::Props, b: &strata_model::Props) -> bool {
    let others =
        |p: &'_ strata_model::Props| p.iter().filter(|(k, _)| !k.starts_with("Auth/")).count();
    others(a) == others(b)
        && a.iter()
            .filter(|(k, _)| !k.starts_with("Auth/"))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Calls `f` with every definition of resource group `rg`.
fn group_rds(
    cluster: &Cluster,
    rg: &ResourceGroupName,
    mut f: impl FnMut(&strata_model::ResourceName),
) {
    for rd in cluster
        .rsc_dfns
        .values()
        .filter(|d| &d.resource_group == rg)
    {
        f(&rd.name);
    }
}

fn node_and_peers(cluster: &Cluster, node: &NodeName, out: &mut Touched) {
    out.node(node, false).full = true;
    for r in cluster.resources_on(node) {
        for p in drbd_peers(cluster, &r.name) {
            out.rsc(&p, &r.name, false);
        }
    }
}

impl Core {
    pub fn new(
        store: Box<dyn Persistence>,
        cluster_id: String,
        settings: Settings,
    ) -> anyhow::Result<Arc<Core>> {
        let cluster = store.load()?;
        let data_dir = settings.data_dir.clone();
        let reports = Arc::new(ErrorReports::open(&data_dir));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let trust = crate::trust::Trust::load(
            &data_dir,
            &cluster_id,
            settings.node_cert_validity,
            settings.join_token_ttl,
        )?;
        let revoked = cluster
            .security
            .values()
            .filter_map(|r| match r {
                SecurityRecord::Revoked(r) => Some(r.serial.clone()),
                _ => None,
            })
            .collect();
        let core = Arc::new(Core {
            trust,
            revoked: Arc::new(RwLock::new(revoked)),
            cluster: RwLock::new(cluster),
            observed: RwLock::new(ObservedState::default()),
            store,
            writer: Mutex::new(()),
            cluster_id,
            settings,
            http,
            links: Mutex::new(HashMap::new()),
            promotions: tokio::sync::broadcast::channel(1024).0,
            reports,
            dirty: Mutex::new(HashMap::new()),
            full_pushes: tokio::sync::Semaphore::new(FULL_PUSHES_AT_ONCE),
            metrics: Arc::default(),
            causes: Mutex::new(std::collections::VecDeque::new()),
            events: Default::default(),
        });
        core.bootstrap()?;
        Ok(core)
    }

    /// Creates what every cluster has: the default resource group. Snapshots a previous run
    /// was taking when it stopped are given up (deleted), so that their nodes resume I/O.
    fn bootstrap(&self) -> anyhow::Result<()> {
        let unfinished = {
            let cluster = self.cluster();
            let mut plan = Plan::new();
            for s in cluster.snapshots.values().flat_map(|m| m.values()) {
                if matches!(
                    s.state,
                    strata_model::objects::SnapshotState::Suspending
                        | strata_model::objects::SnapshotState::Taking
                ) {
                    tracing::warn!(
                        resource = %s.rsc_name,
                        snapshot = %s.name,
                        "snapshot was being taken when the controller stopped; deleting it"
                    );
                    plan.extend(
                        plan::snapshot::delete(&cluster, s.rsc_name.as_str(), s.name.as_str())
                            .map_err(|e| anyhow::anyhow!("{e}"))?,
                    );
                }
            }
            plan
        };
        if !unfinished.changes.is_empty() {
            self.commit_plan(unfinished)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let name = ResourceGroupName::new(DEFAULT_RSC_GRP).expect("valid default name");
        if self.cluster().rsc_grps.contains_key(&name) {
            return Ok(());
        }
        let mut env = RealEnv;
        let rg = ResourceGroup {
            name,
            description: String::new(),
            props: Default::default(),
            select_filter: SelectFilter::default(),
            peer_slots: None,
            volume_groups: Default::default(),
            uuid: env.uuid(),
        };
        let plan = Plan {
            changes: vec![Change::PutRscGrp(rg)],
            replies: Vec::new(),
        };
        self.commit_plan(plan).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }

    /// The desired state, for reading. Whoever needs it and the observed state together
    /// takes this first, then [`Core::observed`], as planning does.
    pub fn cluster(&self) -> RwLockReadGuard<'_, Cluster> {
        self.cluster.read().unwrap_or_else(poisoned)
    }

    /// What the satellites reported, for reading (after [`Core::cluster`] when both are held).
    pub fn observed(&self) -> RwLockReadGuard<'_, ObservedState> {
        self.observed.read().unwrap_or_else(poisoned)
    }

    fn observed_mut(&self) -> RwLockWriteGuard<'_, ObservedState> {
        self.observed.write().unwrap_or_else(poisoned)
    }

    /// Starts a link for every node. Called once the runtime runs.
    pub fn start_links(self: &Arc<Self>) {
        let nodes: Vec<NodeName> = self.cluster().nodes.keys().cloned().collect();
        for n in nodes {
            self.link_for(&n);
        }
    }

    fn link_for(self: &Arc<Self>, node: &NodeName) -> Option<Arc<LinkHandle>> {
        let exists = self.cluster().nodes.contains_key(node);
        let mut links = self.links.lock().unwrap_or_else(poisoned);
        if !exists {
            if let Some(h) = links.remove(node) {
                h.stop();
            }
            self.observed_mut().forget(node);
            return None;
        }
        Some(
            links
                .entry(node.clone())
                .or_insert_with(|| Arc::new(link::spawn(self.clone(), node.clone())))
                .clone(),
        )
    }
}

/// What the links call: where a node is, its next configuration, and what its satellite
/// said.
impl Host for Core {
    async fn open_channel(
        self: &Arc<Self>,
        node: &NodeName,
        addr: SocketAddr,
    ) -> Result<link::Channel, String> {
        self.channel_to(node, addr).await
    }

    async fn renew_if_due(
        self: &Arc<Self>,
        node: &NodeName,
        addr: SocketAddr,
        channel: &link::Channel,
    ) {
        if !channel.tls {
            return;
        }
        let key = strata_model::security::node_cert_key(node);
        let Some(SecurityRecord::NodeCert(old)) = self.cluster().security.get(&key).cloned() else {
            return;
        };
        if !self.trust.renewal_due(&old, RealEnv.now_ms().max(0) as u64) {
            return;
        }
        match self.trust.renew(channel, addr, &old).await {
            Ok(new) => {
                let changes = vec![
                    Change::PutSecurity(SecurityRecord::NodeCert(new.clone())),
                    revoke(&old, "renewed"),
                ];
                match self.commit_changes(changes).await {
                    Ok(()) => {
                        tracing::info!(node = %node, serial = %new.serial, "renewed the node's certificate")
                    }
                    Err(e) => {
                        tracing::warn!(node = %node, "the renewed certificate could not be recorded: {e}")
                    }
                }
            }
            Err(e) => tracing::warn!(node = %node, "renewing the node's certificate failed: {e}"),
        }
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn full_pushes(&self) -> &tokio::sync::Semaphore {
        &self.full_pushes
    }

    fn satellite_addr(&self, node: &NodeName) -> Option<SocketAddr> {
        let cluster = self.cluster();
        let n = cluster.nodes.get(node)?;
        let nif = n.satellite_interface()?;
        let ip = nif.address.parse().ok()?;
        Some(SocketAddr::new(ip, nif.satellite_port?))
    }

    fn set_node_online(&self, node: &NodeName, caps: Capabilities) {
        self.observed_mut().set_online(node, caps);
        if self.events.listened() {
            self.events
                .node_changed(&self.cluster(), &self.observed(), node);
        }
    }

    fn set_node_status(&self, node: &NodeName, status: ConnectionStatus, why: Option<String>) {
        self.observed_mut().set_status(node, status, why);
        if self.events.listened() {
            self.events
                .node_changed(&self.cluster(), &self.observed(), node);
        }
    }

    /// Stores a node's report and finishes deletions it confirms.
    async fn record_report(self: &Arc<Self>, node: &NodeName, report: &Arc<Report>) {
        {
            let mut observed = self.observed_mut();
            let known = observed.node_mut(node).errors();
            for e in report.errors.iter().filter(|e| !known.contains(e)) {
                tracing::warn!(node = %node, "satellite reports: {e}");
            }
            self.report_failures(node, report);
            let changed = observed.apply_report(node, report.clone());
            drop(observed);
            self.announce_promotions(node, changed);
            if self.events.listened() {
                self.events
                    .resources_changed(&self.cluster(), &self.observed(), node);
            }
        }
        if !self.has_deletions_to_finish(node, report) {
            return;
        }
        self.finish_deletions_visible(node, report).await;
    }

    fn causes(&self, node: &NodeName, after: u64, upto: u64) -> Vec<String> {
        let causes = self.causes.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<String> = causes
            .iter()
            .rev()
            .filter(|c| c.generation > after && c.generation <= upto && c.nodes.contains(node))
            .map(|c| c.request_id.clone())
            .take(CAUSES_PER_PUSH)
            .collect();
        ids.reverse();
        ids
    }

    fn round_trip(&self, node: &NodeName, took: Duration) {
        self.metrics.round_trip(node.as_str(), took);
    }

    /// Takes the DRBD state a node's event watcher sent.
    fn record_drbd(&self, node: &NodeName, report: Arc<strata_model::observed::DrbdReport>) {
        let changed = self.observed_mut().apply_drbd(node, report);
        self.announce_promotions(node, changed);
        if self.events.listened() {
            self.events
                .resources_changed(&self.cluster(), &self.observed(), node);
        }
    }

    /// Finishes the migrations (`toggle-disk --migrate-from`) on `node` whose new disks are
    /// up to date now: the old replicas go.
    async fn finish_migrations(self: &Arc<Self>, node: &NodeName) {
        let due = {
            let cluster = self.cluster();
            if cluster.migrations_on(node).next().is_none() {
                return;
            }
            let observed = self.observed();
            plan::rsc::migrations_due(&cluster, &*observed, node)
        };
        for (rsc, from) in due {
            let (r, n, f) = (rsc.clone(), node.clone(), from.clone());
            let done = self
                .mutate(move |c, env, o| plan::rsc::finish_migration(c, env, o, &r, &n, &f))
                .await;
            match done {
                Ok(_) => {
                    tracing::info!(resource = %rsc, node = %node, from = %from, "migration finished; the old replica is deleted")
                }
                Err(e) => {
                    tracing::warn!(resource = %rsc, from = %from, "migration cannot finish yet: {}", e.message)
                }
            }
        }
    }

    /// Whether a node's report shows work to try again: a failed volume, or a resource it
    /// should have removed.
    fn needs_retry(&self, node: &NodeName, report: &Report) -> bool {
        if report.resources.iter().any(|r| r.first_error().is_some()) {
            return true;
        }
        let cluster = self.cluster();
        // A DRBD volume smaller than its definition: its resize waits for the peers' disks,
        // and the node asks DRBD again with every configuration.
        let short =
            report.resources.iter().any(|rs| {
                let Some(rd) = cluster.rsc_dfn_named(&rs.name) else {
                    return false;
                };
                if !rd.layer_stack.contains(&strata_model::LayerKind::Drbd) {
                    return false;
                }
                rs.volumes.iter().any(|v| {
                let want = rd.volume_definitions.get(&v.volume_number).map(|vd| vd.size_kib);
                matches!((v.usable_kib, want), (Some(have), Some(want)) if have > 0 && have < want)
            })
            });
        if short {
            return true;
        }
        let pending = cluster
            .pending_deletions()
            .filter_map(|name| cluster.resource(name, node))
            .filter(|r| r.is_deleting())
            .any(|r| report.resource(r.name.as_str()).is_some());
        pending
    }

    /// The next configuration for `node`: the changes since `base` when the node holds
    /// exactly that generation of ours, else the whole of it.
    fn next_push(&self, node: &NodeName, base: Option<u64>) -> Push {
        let cluster = self.cluster();
        let dirty = self
            .dirty
            .lock()
            .unwrap_or_else(poisoned)
            .remove(node)
            .unwrap_or_default();
        match base {
            Some(b) if !dirty.full && b <= cluster.generation => {
                Push::Delta(nodecfg::delta(&cluster, &self.cluster_id, node, b, &dirty))
            }
            _ => Push::Full(nodecfg::build(&cluster, &self.cluster_id, node)),
        }
    }
}

impl Core {
    /// Writes an error report for each failure in a node's report (the same failure seen
    /// again keeps its report).
    fn report_failures(&self, node: &NodeName, report: &Report) {
        let node_name = node.to_string();
        for e in &report.errors {
            self.reports
                .record(&node_name, MODULE_SATELLITE, "NodeError", first_line(e), e);
        }
        for (pool, state) in &report.pools {
            for e in &state.errors {
                self.reports.record(
                    &node_name,
                    MODULE_SATELLITE,
                    "StoragePoolError",
                    first_line(e),
                    &format!("storage pool '{pool}' on node '{node}':\n{e}"),
                );
            }
        }
        for r in &report.resources {
            self.resource_failure(node, r);
        }
    }

    /// The report id of the failure `rsc` shows in `report`, if it failed.
    fn failure_report(&self, node: &NodeName, report: &Report, rsc: &str) -> Option<String> {
        self.resource_failure(node, report.resource(rsc)?)
    }

    fn resource_failure(
        &self,
        node: &NodeName,
        r: &strata_model::observed::ResourceState,
    ) -> Option<String> {
        let e = r.first_error()?;
        Some(self.reports.record(
            node.as_str(),
            MODULE_SATELLITE,
            "ResourceError",
            first_line(&e),
            &format!("resource '{}' on node '{node}':\n{e}", r.name),
        ))
    }

    fn announce_promotions(&self, node: &NodeName, changed: Vec<(String, bool)>) {
        for (rsc, may_promote) in changed {
            // Nobody listening is not an error.
            let _ = self.promotions.send(MayPromoteChange {
                resource_name: rsc,
                node_name: node.to_string(),
                may_promote,
            });
        }
    }

    /// A cheap look (read lock only) whether a report lets deletions on `node` finish.
    fn has_deletions_to_finish(&self, node: &NodeName, report: &Report) -> bool {
        let cluster = self.cluster();
        let pending = cluster
            .pending_deletions()
            .any(|name| cluster.resource(name, node).is_some())
            || plan::snapshot::deletions_pending_on(&cluster, node);
        drop(cluster);
        pending && report.applied_generation > 0
    }

    /// Removes what `report` shows gone of the deletions pending on `node`.
    ///
    /// Like every change, the cleanup is committed first and only then applied in memory
    /// (with the generation bumped), and `applied` fires after that (the caller may answer
    /// its client). A failed commit changes nothing: the deletion itself was saved before any
    /// satellite acted on it, so the next report finishes it again. For the same reason the
    /// commit does not wait for the disk's flush (`commit_cleanup`): a power cut may lose it,
    /// and it is redone. All of it happens under the writer lock, so that no other change
    /// comes in between.
    fn finish_deletions(
        &self,
        node: &NodeName,
        report: &Report,
        applied: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        // The node's merged state, not `report` alone: the answer to a delta names only the
        // resources the delta was about.
        let present = |rsc: &strata_model::ResourceName| -> Option<Vec<u32>> {
            let observed = self.observed();
            observed
                .nodes
                .get(node)?
                .resource(rsc.as_str())
                .map(|r| r.volumes.iter().map(|v| v.volume_number).collect())
        };
        let holds = |rsc: &strata_model::ResourceName, snap: &strata_model::SnapshotName| {
            report
                .snapshot(rsc.as_str(), snap.as_str())
                .is_some_and(|s| !s.volumes.is_empty())
        };
        let find = || {
            let cluster = self.cluster();
            let mut plan =
                plan::rsc::finish_deletions(&cluster, node, report.applied_generation, &present);
            plan.extend(plan::snapshot::finish_deletions(
                &cluster,
                node,
                report.applied_generation,
                &holds,
            ));
            plan
        };
        // Most reports finish nothing: look without holding up writers first.
        if find().changes.is_empty() {
            return;
        }
        let _w = self.writer.lock().unwrap_or_else(poisoned);
        let plan = find();
        if plan.changes.is_empty() {
            return;
        }
        let generation = self.cluster().generation + 1;
        if let Err(e) = self.store.commit_cleanup(generation, &plan.changes) {
            if matches!(e, strata_store::StoreError::NotLeader) {
                crate::lost_leadership(&e.to_string());
            }
            tracing::error!(
                "saving finished deletions on {node} failed ({e}); nothing changed, the next report finishes them again"
            );
            return;
        }
        {
            let mut cluster = self.cluster.write().unwrap_or_else(poisoned);
            for c in plan.changes {
                cluster.apply(c);
            }
            cluster.generation = generation;
        }
        if let Some(tx) = applied {
            let _ = tx.send(());
        }
    }

    /// Runs [`Core::finish_deletions`] off the async runtime and returns once the cleanup
    /// is saved and visible, or once it turned out there was none or it could not be saved.
    async fn finish_deletions_visible(self: &Arc<Self>, node: &NodeName, report: &Arc<Report>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let core = self.clone();
        let node = node.clone();
        let report = report.clone();
        let job =
            tokio::task::spawn_blocking(move || core.finish_deletions(&node, &report, Some(tx)));
        // The sender is dropped without a signal when there was nothing to finish.
        if rx.await.is_err() {
            let _ = job.await;
        }
    }

    /// Commits `plan` and applies it; answers its replies and the nodes that must get a
    /// configuration now.
    fn commit_locked(&self, plan: Plan) -> Result<(Vec<Reply>, BTreeSet<NodeName>), ApiError> {
        let generation = self.cluster().generation + 1;
        let started = std::time::Instant::now();
        let committed = self.store.commit(generation, &plan.changes);
        self.metrics.commit_took(started.elapsed());
        committed.map_err(|e| {
            if matches!(e, strata_store::StoreError::NotLeader) {
                crate::lost_leadership(&e.to_string());
            }
            tracing::error!("database commit failed: {e}");
            let id = self.reports.record(
                "Controller",
                MODULE_CONTROLLER,
                "DatabaseError",
                "The change could not be saved",
                &format!("commit of generation {generation} failed: {e}"),
            );
            ApiError::new(code::FAIL_SQL, ObjKind::CtrlConf, "The change could not be saved")
                .cause(e.to_string())
                .correction("Nothing was changed. Check the controller's data directory (disk space, permissions) and retry")
                .report(id)
        })?;
        let mut cluster = self.cluster.write().unwrap_or_else(poisoned);
        let mut marks = touched(&cluster, &plan.changes);
        let changes = plan.changes.clone();
        for c in &changes {
            if let Change::PutSecurity(SecurityRecord::Revoked(r)) = c {
                self.revoked
                    .write()
                    .unwrap_or_else(poisoned)
                    .insert(r.serial.clone());
            }
        }
        for c in plan.changes {
            cluster.apply(c);
        }
        cluster.generation = generation;
        marks.merge(touched(&cluster, &changes));
        // Under the write lock: whoever builds a configuration of this generation sees these.
        let mut dirty = self.dirty.lock().unwrap_or_else(poisoned);
        for (node, d) in marks.dirty {
            dirty.entry(node).or_default().merge(d);
        }
        drop(dirty);
        drop(cluster);
        // Still under the writer lock: events go out in the order of the commits.
        if self.events.listened() {
            self.events
                .committed(&self.cluster(), &self.observed(), &changes);
        }
        Ok((plan.replies, marks.targets))
    }

    fn commit_plan(&self, plan: Plan) -> Result<Vec<Reply>, ApiError> {
        let _w = self.writer.lock().unwrap_or_else(poisoned);
        self.commit_locked(plan).map(|(replies, _)| replies)
    }

    /// Plans against the current state and commits the result; returns the replies, the
    /// generation reached and the nodes to update.
    fn plan_and_commit<F>(&self, f: F) -> Result<Committed, ApiError>
    where
        F: FnOnce(&Cluster, &mut dyn Env, &dyn Observed) -> PlanResult,
    {
        let _w = self.writer.lock().unwrap_or_else(poisoned);
        let plan = {
            let cluster = self.cluster();
            let observed = self.observed();
            let mut env = RealEnv;
            f(&cluster, &mut env, &*observed)?
        };
        if plan.changes.is_empty() {
            let generation = self.cluster().generation;
            return Ok(Committed {
                replies: plan.replies,
                generation,
                nodes: BTreeSet::new(),
                changes: Vec::new(),
            });
        }
        let placed = {
            let cluster = self.cluster();
            let placed: Vec<(strata_model::ResourceName, NodeName)> = plan
                .changes
                .iter()
                .filter_map(|c| match c {
                    Change::PutRsc(r)
                        if !r.is_diskless() && cluster.resource(&r.name, &r.node).is_none() =>
                    {
                        Some((r.name.clone(), r.node.clone()))
                    }
                    _ => None,
                })
                .collect();
            placed
        };
        let changes = plan.changes.clone();
        let (replies, nodes) = self.commit_locked(plan)?;
        let cluster = self.cluster();
        self.promise_space(&cluster, &placed);
        Ok(Committed {
            replies,
            generation: cluster.generation,
            nodes,
            changes,
        })
    }

    /// Counts the space of new volumes against their pools until their nodes report them.
    fn promise_space(&self, cluster: &Cluster, placed: &[(strata_model::ResourceName, NodeName)]) {
        if placed.is_empty() {
            return;
        }
        let mut observed = self.observed_mut();
        for (rsc, node) in placed {
            let (Some(r), Some(rd)) = (cluster.resource(rsc, node), cluster.rsc_dfns.get(rsc))
            else {
                continue;
            };
            for v in r.volumes.values() {
                if let Some(vd) = rd.volume_definitions.get(&v.number) {
                    observed.promise(node, cluster.generation, &v.storage_pool, vd.size_kib);
                }
            }
        }
    }

    /// Runs one mutation end to end.
    pub async fn mutate<F>(self: &Arc<Self>, f: F) -> Result<Answer, ApiError>
    where
        F: FnOnce(&Cluster, &mut dyn Env, &dyn Observed) -> PlanResult + Send + 'static,
    {
        let started = std::time::Instant::now();
        let core = self.clone();
        // The blocking part logs in the request's span too.
        let span = tracing::Span::current();
        let Committed {
            mut replies,
            generation,
            nodes,
            changes,
        } = tokio::task::spawn_blocking(move || span.in_scope(|| core.plan_and_commit(f)))
            .await
            .map_err(|e| {
                let id = self.reports.record(
                    "Controller",
                    MODULE_CONTROLLER,
                    "InternalError",
                    "planning a change failed",
                    &e.to_string(),
                );
                ApiError::new(
                    code::FAIL_IMPL_ERROR,
                    ObjKind::CtrlConf,
                    format!("internal error: {e}"),
                )
                .report(id)
            })??;
        // Links follow the node list.
        for c in &changes {
            match c {
                Change::PutNode(n) => {
                    self.link_for(&n.name);
                }
                Change::DelNode(n) => {
                    self.link_for(n);
                }
                _ => {}
            }
        }
        let committed = started.elapsed();
        if let Some(id) = strata_net::metrics::current_request_id() {
            let mut causes = self.causes.lock().unwrap_or_else(|e| e.into_inner());
            if causes.len() == CAUSES_KEPT {
                causes.pop_front();
            }
            causes.push_back(Cause {
                generation,
                request_id: id,
                nodes: nodes.clone(),
            });
        }
        let outcomes = self.dispatch(&nodes, generation).await;
        tracing::debug!(
            generation,
            commit_us = committed.as_micros() as u64,
            dispatch_us = (started.elapsed() - committed).as_micros() as u64,
            "mutation"
        );
        for (node, outcome) in &outcomes {
            replies.extend(self.outcome_replies(node, outcome, &changes));
            let deletes = changes.iter().any(|c| match c {
                Change::PutRsc(r) => r.is_deleting(),
                Change::PutRscDfn(d) => {
                    d.is_deleting() || d.volume_definitions.values().any(|v| v.is_deleting())
                }
                Change::PutSnapshot(snap) => {
                    snap.state == strata_model::objects::SnapshotState::Deleting
                }
                _ => false,
            });
            if let (true, Outcome::Applied(report)) = (deletes, outcome) {
                // The link may have finished these already; either way the state below tells.
                self.finish_deletions_visible(node, report).await;
            }
        }
        replies.extend(self.deletion_replies(&changes, &outcomes));
        Ok(Answer { replies, outcomes })
    }

    /// Says, for every deletion this change started, whether it is finished.
    fn deletion_replies(&self, changes: &[Change], outcomes: &[(NodeName, Outcome)]) -> Vec<Reply> {
        let cluster = self.cluster();
        let answered = |node: &NodeName| {
            outcomes
                .iter()
                .any(|(n, o)| n == node && matches!(o, Outcome::Applied(_)))
        };
        let mut out = Vec::new();
        for c in changes {
            match c {
                Change::PutRsc(r) if r.is_deleting() => {
                    if cluster.resource(&r.name, &r.node).is_none() {
                        out.push(Reply::deleted(
                            ObjKind::Rsc,
                            format!("Resource '{}' on node '{}' deleted.", r.name, r.node),
                        ));
                    } else if answered(&r.node) {
                        let why = outcomes
                            .iter()
                            .find_map(|(n, o)| match o {
                                Outcome::Applied(rep) if n == &r.node => {
                                    rep.resource(r.name.as_str()).and_then(|s| s.first_error())
                                }
                                _ => None,
                            })
                            .unwrap_or_else(|| "the node still reports it".into());
                        let report_id = outcomes.iter().find_map(|(n, o)| match o {
                            Outcome::Applied(rep) if n == &r.node => {
                                self.failure_report(n, rep, r.name.as_str())
                            }
                            _ => None,
                        });
                        out.push(Reply::from_error(
                            Op::Delete,
                            ApiError {
                                report_id: report_id.map(Box::new),
                                ..ApiError::new(
                                    code::FAIL_UNKNOWN_ERROR,
                                    ObjKind::Rsc,
                                    format!("(Node: '{}') Resource '{}' could not be removed yet", r.node, r.name),
                                )
                                .cause(why)
                                .correction("Stop using the volume on that node (unmount it, close it); the deletion is retried with every change and on reconnect")
                            },
                        ));
                    }
                }
                Change::PutRscDfn(rd)
                    if rd.is_deleting() && !cluster.rsc_dfns.contains_key(&rd.name) =>
                {
                    out.push(
                        Reply::deleted(
                            ObjKind::RscDfn,
                            format!("Resource definition '{}' deleted.", rd.name),
                        )
                        .with_ref("RscDfn", rd.name.as_str()),
                    );
                }
                _ => {}
            }
        }
        out
    }

    /// Pushes generation `gen` to `nodes` and waits (bounded) for their answers.
    async fn dispatch(
        self: &Arc<Self>,
        nodes: &BTreeSet<NodeName>,
        gen: u64,
    ) -> Vec<(NodeName, Outcome)> {
        let mut waits = Vec::new();
        for node in nodes {
            let Some(link) = self.link_for(node) else {
                continue;
            };
            link.want(gen);
            let limit = self.settings.satellite_timeout;
            let n = node.clone();
            waits.push(async move { (n, link.wait(gen, limit).await) });
        }
        // All at once: each wait's clock starts now, so slow nodes cost one time-out in all,
        // and no node's outcome can be missed while another is awaited.
        futures_util::future::join_all(waits).await
    }

    /// Waits for the first contact with a node that was just created.
    pub async fn first_contact(self: &Arc<Self>, node: &NodeName) -> Option<Reply> {
        let link = self.link_for(node)?;
        link.first_contact(Duration::from_secs(5)).await;
        let status = link.status();
        if status.online {
            None
        } else {
            Some(
                Reply::warning(
                    Op::Create,
                    ObjKind::Node,
                    code::WARN_NOT_CONNECTED,
                    format!("Node '{node}' is not reachable yet; it will be configured when its satellite answers."),
                )
                .with_cause(status.error.unwrap_or_else(|| "no answer yet".into()))
                .with_correction("Start the satellite on the node (linstor-satellite) and check the address and port"),
            )
        }
    }

    /// What to say of how `node` answered `changes`.
    fn outcome_replies(
        &self,
        node: &NodeName,
        outcome: &Outcome,
        changes: &[Change],
    ) -> Vec<Reply> {
        match outcome {
            Outcome::Applied(report) => self.applied_replies(node, report, changes),
            Outcome::Offline(why) => vec![Reply::warning(
                Op::None,
                ObjKind::Node,
                code::WARN_NOT_CONNECTED,
                format!("No connection to satellite '{node}'; the change is recorded and will be applied when it reconnects."),
            )
            .with_cause(why.clone())],
            Outcome::TimedOut => vec![Reply::warning(
                Op::None,
                ObjKind::Node,
                code::WARN_STLT_NOT_UPDATED,
                format!(
                    "Satellite '{node}' did not confirm the change within {}s; it will be applied when it does.",
                    self.settings.satellite_timeout.as_secs()
                ),
            )],
            Outcome::Rejected(msg) => vec![Reply::from_error(
                Op::None,
                ApiError::new(
                    code::FAIL_NOT_CONNECTED,
                    ObjKind::Node,
                    format!("Satellite '{node}' refused its configuration"),
                )
                .cause(msg.clone())
                .correction("Check that the node's address points at the right satellite")
                .report(self.reports.record(
                    node.as_str(),
                    MODULE_SATELLITE,
                    "ConfigurationRefused",
                    "the satellite refused its configuration",
                    msg,
                )),
            )],
        }
    }

    /// What `node` applying `changes` means, by its `report`: for each resource put there
    /// (and not being deleted) whether it is ready, and the problems of its new pools.
    fn applied_replies(&self, node: &NodeName, report: &Report, changes: &[Change]) -> Vec<Reply> {
        let mut out: Vec<Reply> = changes
            .iter()
            .filter_map(|c| match c {
                Change::PutRsc(r) if &r.node == node && !r.is_deleting() => {
                    Some(self.resource_reply(node, report, r.name.as_str()))
                }
                _ => None,
            })
            .collect();
        out.extend(new_pool_problems(node, report, changes));
        out
    }

    /// Whether resource `rsc` is ready on `node` by its `report`: its devices, or its error.
    fn resource_reply(&self, node: &NodeName, report: &Report, rsc: &str) -> Reply {
        let Some(state) = report.resource(rsc) else {
            return Reply::warning(
                Op::Create,
                ObjKind::Rsc,
                code::WARN_STLT_NOT_UPDATED,
                format!("(Node: '{node}') did not report resource '{rsc}' yet"),
            );
        };
        if let Some(err) = state.first_error() {
            return Reply::from_error(
                Op::Create,
                ApiError {
                    report_id: self.failure_report(node, report, rsc).map(Box::new),
                    ..ApiError::new(
                        code::FAIL_UNKNOWN_ERROR,
                        ObjKind::Rsc,
                        format!("(Node: '{node}') Resource '{rsc}' could not be set up"),
                    )
                    .cause(err)
                    .correction("Fix the cause on the node, then delete and re-create the resource, or retry by changing it")
                },
            );
        }
        let devices: Vec<String> = state
            .volumes
            .iter()
            .filter_map(|v| v.device_path.clone())
            .collect();
        let mut msg = format!("(Node: '{node}') Resource '{rsc}' is ready");
        if !devices.is_empty() {
            msg.push_str(&format!(" ({})", devices.join(", ")));
        }
        Reply::info(Op::Create, ObjKind::Rsc, 0, msg)
    }

    /// Asks a node's satellite whether a pool can be used; `None` when the node is offline.
    pub async fn probe_pool(&self, node: &NodeName, pool: &PoolConfig) -> Option<PoolProbe> {
        if !self.observed().is_online(node) {
            return None;
        }
        let addr = self.satellite_addr(node)?;
        // A probe never joins a node: only its link does.
        let channel = self.established_channel(node).ok()?;
        let resp = channel
            .http
            .post(channel.url(addr, PATH_POOL_PROBE))
            .json(pool)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .ok()?;
        resp.json::<PoolProbe>().await.ok()
    }

    /// Reconnects a node's link (drops the connection and connects again).
    pub fn reconnect(self: &Arc<Self>, node: &NodeName) -> bool {
        let handle = self.links.lock().unwrap_or_else(poisoned).remove(node);
        if let Some(h) = handle {
            h.stop();
        }
        self.link_for(node).is_some()
    }
}

/// Whether the controller may talk plain HTTP to `node`: it was created PLAIN (and has not
/// joined over TLS since, which makes it SSL).
fn plain_allowed(c: &Cluster, node: &NodeName) -> bool {
    c.nodes
        .get(node)
        .and_then(|n| n.satellite_interface())
        .is_some_and(|i| i.encryption == Some(strata_model::EncryptionType::Plain))
}

/// The record revoking `cert`.
fn revoke(cert: &strata_model::security::NodeCert, why: &str) -> Change {
    Change::PutSecurity(SecurityRecord::Revoked(
        strata_model::security::RevokedCert {
            serial: cert.serial.clone(),
            node: cert.node.clone(),
            revoked_at_ms: RealEnv.now_ms().max(0) as u64,
            reason: why.to_string(),
        },
    ))
}

impl Core {
    /// Commits changes made outside the planners (the trust's records), off the runtime.
    async fn commit_changes(self: &Arc<Self>, changes: Vec<Change>) -> Result<(), String> {
        let core = self.clone();
        tokio::task::spawn_blocking(move || {
            core.commit_plan(Plan {
                changes,
                replies: Vec::new(),
            })
        })
        .await
        .map_err(|e| e.to_string())?
        .map(|_| ())
        .map_err(|e| e.message)
    }

    /// How to reach `node` at `addr` now; joins it first when it has a join token.
    pub async fn channel_to(
        self: &Arc<Self>,
        node: &NodeName,
        addr: SocketAddr,
    ) -> Result<link::Channel, String> {
        use strata_model::security::{join_token_key, node_cert_key};
        let (plain_ok, cert, token) = {
            let c = self.cluster();
            let cert = match c.security.get(&node_cert_key(node)) {
                Some(SecurityRecord::NodeCert(x)) => Some(x.clone()),
                _ => None,
            };
            let token = match c.security.get(&join_token_key(node)) {
                Some(SecurityRecord::JoinToken(t)) => Some(t.clone()),
                _ => None,
            };
            (plain_allowed(&c, node), cert, token)
        };
        let now = RealEnv.now_ms().max(0) as u64;
        if let Some(t) = token.filter(|t| t.expires_at_ms > now) {
            match self.join_node(node, addr, &t.secret, cert.as_ref()).await {
                Ok(()) => {}
                Err(crate::trust::JoinError::NotTls(_)) if plain_ok && cert.is_none() => {
                    return Ok(crate::trust::plain_channel(&self.http));
                }
                // A joined node keeps its certificate while a new join waits for the
                // satellite to get the new token.
                Err(e) if cert.is_some() => {
                    tracing::warn!(node = %node, "joining again failed, the node keeps its certificate: {e}");
                }
                Err(crate::trust::JoinError::NotTls(m)) => {
                    return Err(format!("the satellite at {addr} speaks no TLS ({m}); run it with TLS (the default), or create the node with the communication type PLAIN if it must run in plain mode"));
                }
                Err(crate::trust::JoinError::Failed(m)) => {
                    return Err(format!("joining node '{node}' failed: {m}"));
                }
            }
        }
        self.established_channel(node)
    }

    /// How to reach `node` as things stand, without joining it: TLS with its certificate,
    /// plain HTTP for a PLAIN node that never joined.
    fn established_channel(&self, node: &NodeName) -> Result<link::Channel, String> {
        let (plain_ok, joined) = {
            let c = self.cluster();
            let key = strata_model::security::node_cert_key(node);
            (plain_allowed(&c, node), c.security.contains_key(&key))
        };
        if !joined {
            return if plain_ok {
                Ok(crate::trust::plain_channel(&self.http))
            } else {
                Err(format!(
                    "node '{node}' has not joined the cluster and has no valid join token; delete and create the node again to get one"
                ))
            };
        }
        let revoked = self.revoked.clone();
        self.trust.client_for(
            node.as_str(),
            Arc::new(move |serial: &str| {
                revoked
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(serial)
            }),
        )
    }

    /// Joins `node`: the certificate is recorded (an older one revoked) before the satellite
    /// gets it, the token dropped once it has it; a PLAIN node becomes SSL.
    async fn join_node(
        self: &Arc<Self>,
        node: &NodeName,
        addr: SocketAddr,
        token: &str,
        old: Option<&strata_model::security::NodeCert>,
    ) -> Result<(), crate::trust::JoinError> {
        use crate::trust::JoinError;
        let pending = self.trust.start_join(node.as_str(), addr, token).await?;
        let mut changes = vec![Change::PutSecurity(SecurityRecord::NodeCert(
            pending.cert.clone(),
        ))];
        if let Some(old) = old.filter(|o| o.serial != pending.cert.serial) {
            changes.push(revoke(old, "joined again"));
        }
        self.commit_changes(changes)
            .await
            .map_err(JoinError::Failed)?;
        pending.hand_over().await?;
        let mut changes = vec![Change::DelSecurity(strata_model::security::join_token_key(
            node,
        ))];
        if let Some(mut n) = self.cluster().nodes.get(node).cloned() {
            let mut changed = false;
            for nif in n
                .net_interfaces
                .iter_mut()
                .filter(|i| i.satellite_port.is_some())
            {
                if nif.encryption != Some(strata_model::EncryptionType::Ssl) {
                    nif.encryption = Some(strata_model::EncryptionType::Ssl);
                    changed = true;
                }
            }
            if changed {
                changes.push(Change::PutNode(n));
            }
        }
        self.commit_changes(changes)
            .await
            .map_err(JoinError::Failed)?;
        tracing::info!(node = %node, %addr, "node joined the cluster");
        Ok(())
    }
}

/// The first problem `report` shows of each pool `changes` put on `node`.
fn new_pool_problems<'a>(
    node: &'a NodeName,
    report: &'a Report,
    changes: &'a [Change],
) -> impl Iterator<Item = Reply> + 'a {
    report.pools.iter().filter_map(move |(pool, state)| {
        let new_pool = changes.iter().any(|c| {
            matches!(c, Change::PutStorPool(sp) if &sp.node == node && sp.name.as_str().eq_ignore_ascii_case(pool))
        });
        let e = state.errors.first().filter(|_| new_pool)?;
        Some(Reply::warning(
            Op::Create,
            ObjKind::StorPool,
            code::WARN_STORAGE_ERROR,
            format!("(Node: '{node}') storage pool '{pool}' reports a problem: {e}"),
        ))
    })
}

impl Core {
    /// Takes a snapshot in its steps, each a committed change the involved nodes apply:
    /// with DRBD, I/O suspended on every node, then the copies taken, then I/O resumed;
    /// without DRBD, the copies taken at once. If any node fails a step (or does not answer),
    /// the snapshot is deleted: I/O runs again everywhere and partial copies go.
    pub async fn take_snapshot(
        self: &Arc<Self>,
        rsc: String,
        req: plan::snapshot::SnapshotCreate,
    ) -> Result<Answer, ApiError> {
        self.take_snapshots(vec![(rsc, req)]).await
    }

    /// Takes snapshots of several definitions as one: I/O of all of them is suspended until
    /// every node has taken its copies of every one (`POST /v1/actions/snapshot/multi`). If
    /// any node fails any step, all of them are given up.
    pub async fn take_snapshots(
        self: &Arc<Self>,
        reqs: Vec<(String, plan::snapshot::SnapshotCreate)>,
    ) -> Result<Answer, ApiError> {
        refuse_repeated_resources(&reqs)?;
        let q = reqs.clone();
        let first = self
            .mutate(move |c, env, obs| {
                let mut plan = Plan::new();
                for (rsc, req) in &q {
                    let p = plan::snapshot::create(c, env, obs, rsc, req)?;
                    plan.changes.extend(p.changes);
                    plan.replies.extend(p.replies);
                }
                Ok(plan)
            })
            .await?;
        if first.has_errors() {
            return Ok(first);
        }
        let batch = SnapshotBatch::of(&self.cluster(), &reqs)?;
        match self.take_copies(&batch, first).await? {
            None => {
                self.mutate(batch.step(Some(SnapshotState::Successful)))
                    .await
            }
            Some(why) => Err(self.give_up_snapshots(&batch, why).await),
        }
    }

    /// Brings the snapshots `first` created to their copies: with DRBD, once every node
    /// suspended I/O, the copies are taken. Answers what went wrong, if anything.
    async fn take_copies(
        self: &Arc<Self>,
        batch: &SnapshotBatch,
        first: Answer,
    ) -> Result<Option<String>, ApiError> {
        let mut taken = first;
        if batch.suspends() {
            if let Some(why) = batch.problems(&taken, true) {
                return Ok(Some(why));
            }
            taken = self.mutate(batch.step(Some(SnapshotState::Taking))).await?;
        }
        Ok(batch.problems(&taken, false))
    }

    /// Deletes the snapshots of `batch` after a failed step (`why`); answers the error to
    /// report, which says whether the cleanup worked.
    async fn give_up_snapshots(self: &Arc<Self>, batch: &SnapshotBatch, why: String) -> ApiError {
        let cleanup = self.mutate(batch.step(None)).await;
        let err = ApiError::new(
            code::FAIL_UNKNOWN_ERROR,
            ObjKind::Snapshot,
            format!("{} could not be taken", batch.what()),
        )
        .cause(why);
        match cleanup {
            Ok(_) => err.correction(
                "Nothing was kept: I/O runs again and partial copies are removed. Fix the cause and retry",
            ),
            Err(e) => err.correction(format!(
                "Removing the partial snapshot failed too ({}); delete it with 'linstor snapshot delete'",
                e.message
            )),
        }
    }
}

/// Refuses a request that names a definition twice.
fn refuse_repeated_resources(
    reqs: &[(String, plan::snapshot::SnapshotCreate)],
) -> Result<(), ApiError> {
    for (i, (rsc, _)) in reqs.iter().enumerate() {
        if reqs[..i].iter().any(|(r, _)| r.eq_ignore_ascii_case(rsc)) {
            return Err(ApiError::new(
                code::FAIL_INVLD_REQUEST,
                ObjKind::Snapshot,
                format!("Resource '{rsc}' is named twice in the request"),
            ));
        }
    }
    Ok(())
}

/// One snapshot being taken.
struct SnapshotTaken {
    rsc: String,
    name: String,
    /// The state it was created in.
    state: SnapshotState,
    /// Its nodes, with the number of volume copies each must hold.
    nodes: Vec<(NodeName, usize)>,
}

/// The snapshots one request takes together.
struct SnapshotBatch {
    snaps: Vec<SnapshotTaken>,
}

impl SnapshotBatch {
    /// The snapshots `reqs` created, as `cluster` holds them.
    fn of(
        cluster: &Cluster,
        reqs: &[(String, plan::snapshot::SnapshotCreate)],
    ) -> Result<SnapshotBatch, ApiError> {
        let mut snaps = Vec::new();
        for (rsc, req) in reqs {
            let s = plan::snapshot::snapshot_of(cluster, rsc, &req.name)?;
            let nodes = s
                .nodes
                .iter()
                .map(|n| (n.node.clone(), n.volumes.len()))
                .collect();
            snaps.push(SnapshotTaken {
                rsc: rsc.clone(),
                name: req.name.clone(),
                state: s.state,
                nodes,
            });
        }
        Ok(SnapshotBatch { snaps })
    }

    /// Whether I/O is suspended first (some snapshot is of a DRBD resource).
    fn suspends(&self) -> bool {
        self.snaps
            .iter()
            .any(|s| s.state == SnapshotState::Suspending)
    }

    /// What is wrong after a step, per snapshot, joined; `None` when nothing is. After the
    /// suspension (`suspended`) every node must have suspended I/O, after the copies every
    /// node must hold all of its copies.
    fn problems(&self, answer: &Answer, suspended: bool) -> Option<String> {
        let several = self.snaps.len() > 1;
        let problems: Vec<String> = self
            .snaps
            .iter()
            .filter_map(|snap| {
                let nodes = &snap.nodes;
                let found = answer.snapshot_problems(
                    &snap.rsc,
                    &snap.name,
                    nodes.iter().map(|(n, _)| n),
                    |node, s| {
                        let volumes = nodes.iter().find(|(n, _)| n == node).map_or(0, |(_, v)| *v);
                        if suspended && !s.suspended {
                            Some("did not suspend I/O".into())
                        } else if !suspended && s.volumes.len() < volumes {
                            Some(format!(
                                "holds {} of {volumes} volume copies",
                                s.volumes.len()
                            ))
                        } else {
                            None
                        }
                    },
                )?;
                Some(if several {
                    format!("resource '{}': {found}", snap.rsc)
                } else {
                    found
                })
            })
            .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    /// The plan of the next step for every snapshot: on to state `to`, or (`None`) deleted.
    fn step(
        &self,
        to: Option<SnapshotState>,
    ) -> impl FnOnce(&Cluster, &mut dyn Env, &dyn Observed) -> PlanResult + Send + 'static {
        let list: Vec<(String, String)> = self
            .snaps
            .iter()
            .map(|s| (s.rsc.clone(), s.name.clone()))
            .collect();
        move |c: &Cluster, _: &mut dyn Env, _: &dyn Observed| {
            let mut plan = Plan::new();
            for (r, n) in &list {
                let p = match to {
                    Some(state) => plan::snapshot::advance(c, r, n, state)?,
                    None => plan::snapshot::delete(c, r, n)?,
                };
                plan.changes.extend(p.changes);
                plan.replies.extend(p.replies);
            }
            Ok(plan)
        }
    }

    /// The snapshots and their resources, for a message: "Snapshot 's' of resource 'a', 'b'".
    fn what(&self) -> String {
        let rscs: Vec<String> = self.snaps.iter().map(|s| format!("'{}'", s.rsc)).collect();
        let names: BTreeSet<&str> = self.snaps.iter().map(|s| s.name.as_str()).collect();
        let names: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        format!(
            "Snapshot {} of resource {}",
            names.join(", "),
            rscs.join(", ")
        )
    }
}

impl Core {
    /// Rolls a definition's resources back to a snapshot, in the two steps of
    /// [`strata_model::objects::Rollback`], then clears it. A node failing the first step
    /// gives the rollback up (nothing changed); one failing the second is reported (the nodes
    /// rolled back resync from it, so the replicas agree again).
    pub async fn rollback_snapshot(
        self: &Arc<Self>,
        rsc: String,
        snap: String,
    ) -> Result<Answer, ApiError> {
        let (r, n) = (rsc.clone(), snap.clone());
        let first = self
            .mutate(move |c, _, obs| plan::snapshot::rollback(c, obs, &r, &n))
            .await?;
        if first.has_errors() {
            return Ok(first);
        }
        let (id, nodes) = {
            let cluster = self.cluster();
            let s = plan::snapshot::snapshot_of(&cluster, &rsc, &snap)?;
            let id = s.rollback.map(|r| r.id).unwrap_or_default();
            let nodes: Vec<NodeName> = s.nodes.iter().map(|n| n.node.clone()).collect();
            (id, nodes)
        };
        let check = |answer: &Answer, done: bool| -> Option<String> {
            answer.snapshot_problems(&rsc, &snap, nodes.iter(), |_, s| {
                let step = if done {
                    s.rollback_done
                } else {
                    s.rollback_down
                };
                (step != Some(id)).then(|| "does not report the step done".to_string())
            })
        };
        let finish = |core: Arc<Core>, rsc: String, snap: String| async move {
            core.mutate(move |c, _, _| plan::snapshot::rollback_step(c, &rsc, &snap, true))
                .await
        };
        if let Some(why) = check(&first, false) {
            let _ = finish(self.clone(), rsc.clone(), snap.clone()).await;
            return Err(ApiError::new(
                code::FAIL_UNKNOWN_ERROR,
                ObjKind::Snapshot,
                format!("Resource '{rsc}' could not be rolled back to snapshot '{snap}'"),
            )
            .cause(why)
            .correction(
                "Nothing was changed: the resource runs as before. Fix the cause and retry",
            ));
        }
        let (r, n) = (rsc.clone(), snap.clone());
        let second = self
            .mutate(move |c, _, _| plan::snapshot::rollback_step(c, &r, &n, false))
            .await?;
        let failed = check(&second, true);
        let done = finish(self.clone(), rsc.clone(), snap.clone()).await?;
        match failed {
            None => Ok(done),
            Some(why) => Err(ApiError::new(
                code::FAIL_UNKNOWN_ERROR,
                ObjKind::Snapshot,
                format!("Rolling resource '{rsc}' back to snapshot '{snap}' failed on some nodes"),
            )
            .cause(why)
            .correction("The replicas resynchronise from the nodes that were not rolled back; check the resource and retry")),
        }
    }
}

/// The first line of a message, for a report's one-line summary.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
