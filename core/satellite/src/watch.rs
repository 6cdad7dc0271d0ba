//! The node's view of DRBD: one long-lived `drbdsetup events2` per satellite, folded into
//! [`strata_drbd::events::State`] by a thread of its own, and read by reports.
//!
//! The thread also finishes the birth of new resources: on the node the controller chose, once
//! every diskful node of a new resource is connected and every disk is still `Inconsistent`, it
//! either declares the data in sync (new thin or zeroed backing volumes: a new current UUID with
//! a cleared bitmap) or makes this node primary by force once, so that a full sync starts from
//! it. Afterwards no disk is `Inconsistent` everywhere any more, so it never happens twice.
//!
//! While a resync runs DRBD sends no event for its progress alone, so the thread reads a
//! `--now` snapshot of the syncing resources every [`REFRESH`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_agent_api::{InitialSync, NodeConfig};
use strata_drbd::adm::{self, AdmConfig};
use strata_drbd::config::Resource;
use strata_drbd::events::{self, DiskState};
use strata_exec::{Cmd, CommandRunner, ExecError, LineSource, StreamRunner};
use strata_model::observed::{DrbdObserved, DrbdReport, DrbdVolumeObserved, PeerReplication};

/// How often the progress of running resyncs is read.
pub const REFRESH: Duration = Duration::from_secs(2);
/// Longest wait before the event stream is started again after it ended.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Least time between two attempts of the same initial-sync step after a failure.
const RETRY: Duration = Duration::from_secs(10);

/// Where the events come from.
#[derive(Debug, Clone)]
pub struct EventSource {
    /// The long-lived command (`drbdsetup events2 --full all`).
    pub cmd: Cmd,
    /// Read `--now` snapshots of syncing resources (needs the DRBD kernel module).
    pub refresh: bool,
}

impl EventSource {
    /// The real one, for the DRBD `adm` says the node runs.
    pub fn drbdsetup(adm: &AdmConfig) -> EventSource {
        EventSource {
            cmd: adm::events2_command(adm),
            refresh: true,
        }
    }
}

/// What the controller asked of this node for the birth of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Birth {
    node: String,
    how: InitialSync,
    /// Local volume numbers.
    volumes: Vec<u32>,
    /// Node ids of the diskful peers.
    peers: Vec<u32>,
    /// When the last attempt failed.
    failed_at: Option<Instant>,
    /// Why it failed; reported with the node's problems until an attempt succeeds.
    failure: Option<String>,
}

struct Shared {
    events: events::State,
    seq: u64,
    error: Option<String>,
    births: BTreeMap<String, Birth>,
    /// The DRBD configuration of each resource, from the node's configuration (names peers).
    configured: HashMap<String, Resource>,
    /// This node's name, from its configuration.
    node: String,
}

struct Inner {
    shared: Mutex<Shared>,
    changed: tokio::sync::watch::Sender<u64>,
    epoch: u64,
    stop: Arc<AtomicBool>,
    runner: Arc<dyn CommandRunner>,
    adm: AdmConfig,
}

/// Stops the thread when the last handle goes.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The watcher. Dropping the last handle stops its thread (within a second).
#[derive(Clone)]
pub struct DrbdWatch {
    inner: Arc<Inner>,
    _stop: Arc<StopOnDrop>,
}

/// The node id -> node name map of a resource.
fn names(res: &Resource) -> HashMap<u32, &str> {
    res.hosts
        .iter()
        .map(|h| (h.node_id, h.name.as_str()))
        .collect()
}

/// DRBD 8.4 reports its one peer as node id 0 named "peer", whatever the configuration
/// says (recorded with DRBD 8.4.11): the id under which it appears.
pub const DRBD84_PEER_ID: u32 = 0;

/// How peers appear in the events of `res` on node `local`: by their node ids (DRBD 9), or
/// as [`DRBD84_PEER_ID`] for the one other host (8.4).
fn peer_names<'a>(res: &'a Resource, local: &str, drbd84: bool) -> HashMap<u32, &'a str> {
    if !drbd84 {
        return names(res);
    }
    res.hosts
        .iter()
        .find(|h| h.name != local)
        .map(|h| (DRBD84_PEER_ID, h.name.as_str()))
        .into_iter()
        .collect()
}

fn peer_name(names: &HashMap<u32, &str>, id: u32, conn_name: Option<&str>) -> String {
    names
        .get(&id)
        .map(|s| s.to_string())
        .or_else(|| conn_name.map(str::to_string))
        .unwrap_or_else(|| format!("node-id:{id}"))
}

/// What DRBD's state `st` of a resource says, with peers named by `names` (node id as DRBD
/// reports it -> node name; see [`peer_names`]).
pub fn observe(st: &events::ResourceState, names: &HashMap<u32, &str>) -> DrbdObserved {
    let mut volumes: BTreeMap<u32, DrbdVolumeObserved> = st
        .devices
        .values()
        .map(|d| {
            (
                d.volume,
                DrbdVolumeObserved {
                    disk_state: d.disk.clone(),
                    client: d.client.unwrap_or(false),
                    open: d.open.unwrap_or(false),
                    peers: BTreeMap::new(),
                },
            )
        })
        .collect();
    let mut connections = BTreeMap::new();
    for c in st.connections.values() {
        let name = peer_name(names, c.peer_node_id, c.conn_name.as_deref());
        if let Some(state) = &c.connection {
            connections.insert(name.clone(), state.clone());
        }
        for p in c.peer_devices.values() {
            let Some(v) = volumes.get_mut(&p.volume) else {
                continue;
            };
            v.peers.insert(
                name.clone(),
                PeerReplication {
                    replication: p
                        .replication
                        .clone()
                        .unwrap_or(events::ReplicationState::Off),
                    peer_disk: p.peer_disk.clone(),
                    done: p.done,
                    out_of_sync_kib: p.out_of_sync_kib,
                },
            );
        }
    }
    DrbdObserved {
        name: st.name.clone(),
        role: st.role.clone(),
        may_promote: st.may_promote,
        promotion_score: st.promotion_score,
        quorum: st.has_quorum(),
        suspended: st.suspended_by.clone(),
        connections,
        volumes,
    }
}

/// Whether the birth `b` of resource `st` can happen now: every local disk and every diskful
/// peer's disk is `Inconsistent`, with every diskful peer connected.
fn ready_for_birth(st: &events::ResourceState, b: &Birth) -> bool {
    let inconsistent = |d: Option<&DiskState>| d == Some(&DiskState::Inconsistent);
    b.volumes
        .iter()
        .all(|v| inconsistent(st.device(*v).and_then(|d| d.disk.as_ref())))
        && b.peers.iter().all(|p| {
            st.connection(*p).is_some_and(|c| {
                c.connection == Some(events::ConnectionState::Connected)
                    && b.volumes.iter().all(|v| {
                        inconsistent(c.peer_device(*v).and_then(|pd| pd.peer_disk.as_ref()))
                    })
            })
        })
}

impl DrbdWatch {
    /// Starts the watcher thread reading `source` through `streams`; drbdadm (births) and
    /// snapshots run through `runner` with `adm`.
    pub fn start(
        streams: Arc<dyn StreamRunner>,
        runner: Arc<dyn CommandRunner>,
        adm: AdmConfig,
        source: EventSource,
    ) -> DrbdWatch {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let (changed, _) = tokio::sync::watch::channel(0);
        let stop = Arc::new(AtomicBool::new(false));
        let inner = Arc::new(Inner {
            shared: Mutex::new(Shared {
                events: events::State::new(),
                seq: 0,
                error: None,
                births: BTreeMap::new(),
                configured: HashMap::new(),
                node: String::new(),
            }),
            changed,
            epoch,
            stop: stop.clone(),
            runner,
            adm,
        });
        let thread_inner = inner.clone();
        std::thread::Builder::new()
            .name("drbd-events".into())
            .spawn(move || run(&thread_inner, streams, source))
            .expect("cannot start the DRBD event thread");
        DrbdWatch {
            inner,
            _stop: Arc::new(StopOnDrop(stop)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.inner.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the watcher the node's configuration: how its DRBD resources are configured, and
    /// which of them this node should bring to life. Replaces what it was told before.
    pub fn configure(&self, cfg: &NodeConfig) {
        let mut want = BTreeMap::new();
        for r in &cfg.resources {
            let (Some(how), Some(d), false) = (r.initial_sync, &r.drbd, r.diskless) else {
                continue;
            };
            let me = d.host(&cfg.node_name).map(|h| h.node_id);
            want.insert(
                r.name.clone(),
                Birth {
                    node: cfg.node_name.clone(),
                    how,
                    volumes: d.volumes.iter().map(|v| v.number).collect(),
                    peers: d
                        .hosts
                        .iter()
                        .filter(|h| !h.diskless && Some(h.node_id) != me)
                        .map(|h| {
                            if self.inner.adm.drbd84 {
                                DRBD84_PEER_ID
                            } else {
                                h.node_id
                            }
                        })
                        .collect(),
                    failed_at: None,
                    failure: None,
                },
            );
        }
        let mut s = self.lock();
        for (name, b) in want.iter_mut() {
            if let Some(old) = s.births.get(name) {
                b.failed_at = old.failed_at;
                b.failure = old.failure.clone();
            }
        }
        s.births = want;
        s.configured = cfg
            .resources
            .iter()
            .filter_map(|r| Some((r.name.clone(), r.drbd.clone()?)))
            .collect();
        s.node = cfg.node_name.clone();
        drop(s);
        self.inner.step_births();
    }

    /// Initial sync steps that failed (and are retried), one line each.
    pub fn problems(&self) -> Vec<String> {
        let s = self.lock();
        s.births
            .values()
            .filter_map(|b| b.failure.clone())
            .collect()
    }

    /// The DRBD state of the node's resources, with peers named.
    pub fn report(&self) -> DrbdReport {
        let s = self.lock();
        DrbdReport {
            epoch: self.inner.epoch,
            seq: s.seq,
            complete: s.events.initial_state_done(),
            error: s.error.clone(),
            resources: s
                .events
                .resources()
                .map(|st| {
                    let names = s
                        .configured
                        .get(&st.name)
                        .map(|r| peer_names(r, &s.node, self.inner.adm.drbd84))
                        .unwrap_or_default();
                    observe(st, &names)
                })
                .collect(),
        }
    }

    /// Sequence numbers of changes, for waiting on the next one.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Identifies this watcher among the ones the node ran (see [`DrbdReport::epoch`]).
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self, s: &mut Shared) {
        s.seq += 1;
        self.changed.send_replace(s.seq);
    }

    /// Runs the births whose moment has come.
    fn step_births(&self) {
        let due: Vec<(String, Birth)> = {
            let s = self.lock();
            if !s.events.initial_state_done() {
                return;
            }
            s.births
                .iter()
                .filter(|(_, b)| b.failed_at.is_none_or(|t| t.elapsed() >= RETRY))
                .filter(|(name, b)| {
                    s.events
                        .resource(name)
                        .is_some_and(|st| ready_for_birth(st, b))
                })
                .map(|(n, b)| (n.clone(), b.clone()))
                .collect()
        };
        for (name, b) in due {
            let result = self.birth(&name, &b);
            let mut s = self.lock();
            match result {
                Ok(()) => {
                    tracing::info!(resource = %name, how = ?b.how, "initial state of new resource set");
                    s.births.remove(&name);
                }
                Err(e) => {
                    tracing::warn!(resource = %name, "initial sync step failed: {e}");
                    // A failed step is this resource's problem, not the watcher's: the
                    // state it reports stays trustworthy (`DrbdReport::error` would make
                    // the controller disregard every resource of the node).
                    if let Some(x) = s.births.get_mut(&name) {
                        x.failed_at = Some(Instant::now());
                        x.failure = Some(format!(
                            "resource '{name}': the initial sync step failed: {e}"
                        ));
                    }
                }
            }
        }
    }

    fn birth(&self, name: &str, b: &Birth) -> Result<(), adm::AdmError> {
        let adm = AdmConfig {
            node_name: Some(b.node.clone()),
            ..self.adm.clone()
        };
        let runner = self.runner.as_ref();
        // DRBD 8.4 clears the bitmap only towards a connected peer: alone, a new volume
        // becomes UpToDate by being made primary once.
        let alone84 = self.adm.drbd84 && b.peers.is_empty();
        match b.how {
            InitialSync::Skip if !alone84 => {
                for v in &b.volumes {
                    adm::skip_initial_sync(runner, &adm, name, *v)?;
                }
            }
            InitialSync::Skip | InitialSync::Full => {
                adm::primary_force(runner, &adm, name)?;
                adm::secondary(runner, &adm, name)?;
            }
        }
        Ok(())
    }

    /// Replaces the state of resources with a running resync by a fresh snapshot.
    fn refresh_progress(&self) {
        let syncing: Vec<String> = {
            let s = self.lock();
            s.events
                .resources()
                .filter(|r| {
                    r.connections.values().any(|c| {
                        c.peer_devices.values().any(|p| {
                            p.replication
                                .as_ref()
                                .is_some_and(events::ReplicationState::has_progress)
                        })
                    })
                })
                .map(|r| r.name.clone())
                .collect()
        };
        for name in syncing {
            match adm::status(self.runner.as_ref(), &self.adm, &name) {
                Ok(Some(fresh)) => {
                    let mut s = self.lock();
                    if s.events.resource(&name) != Some(&fresh) {
                        s.events.replace_resource(fresh);
                        self.bump(&mut s);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(resource = %name, "no progress snapshot: {e}"),
            }
        }
    }
}

/// The thread: (re)starts the stream, folds its lines in, and does the periodic work.
fn run(inner: &Inner, streams: Arc<dyn StreamRunner>, source: EventSource) {
    let mut backoff = Duration::from_millis(250);
    while !inner.stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        match streams.stream(&source.cmd) {
            Ok(lines) => {
                {
                    let mut s = inner.lock();
                    s.events.clear();
                    s.error = None;
                }
                let Some(end) = follow(inner, lines, &source) else {
                    return;
                };
                let mut s = inner.lock();
                s.events.clear();
                s.error = Some(format!("the DRBD event stream ended: {end}"));
                inner.bump(&mut s);
            }
            Err(e) => {
                let mut s = inner.lock();
                s.error = Some(format!("cannot watch DRBD events: {e}"));
                inner.bump(&mut s);
            }
        }
        if started.elapsed() > MAX_BACKOFF * 3 {
            backoff = Duration::from_millis(250);
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if inner.stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Reads `lines` until the stream ends (`Some(why)`) or the watcher stops (`None`).
fn follow(inner: &Inner, mut lines: Box<dyn LineSource>, source: &EventSource) -> Option<String> {
    let mut last_refresh = Instant::now();
    loop {
        if inner.stop.load(Ordering::SeqCst) {
            return None;
        }
        match lines.next_line(Duration::from_millis(500)) {
            Ok(Some(line)) => {
                let mut s = inner.lock();
                // Nothing is announced during the initial dump; its end (`exists -`) and every
                // change after it are.
                if s.events.apply_line(&line) && s.events.initial_state_done() {
                    inner.bump(&mut s);
                    drop(s);
                    inner.step_births();
                }
            }
            Ok(None) => inner.step_births(),
            Err(ExecError::Ended { status, stderr, .. }) => {
                return Some(format!("status {status}: {}", stderr.trim()));
            }
            Err(e) => return Some(e.to_string()),
        }
        if source.refresh && last_refresh.elapsed() >= REFRESH {
            last_refresh = Instant::now();
            inner.refresh_progress();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_agent_api::{ResourceConfig, VolumeConfig};
    use strata_drbd::config::{Host, Volume};
    use strata_exec::{Output, ScriptedLines, ScriptedRunner};
    use strata_model::kinds::LayerKind;

    /// A new two-node resource seen from alpha (id 0) right after both came up and connected:
    /// nothing has happened to the data yet.
    const NEWBORN: &[&str] = &[
        "exists resource name:r0 role:Secondary suspended:no may_promote:no promotion_score:0",
        "exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Secondary",
        "exists device name:r0 volume:0 minor:1000 disk:Inconsistent client:no quorum:yes open:no",
        "exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established peer-disk:Inconsistent peer-client:no",
        "exists -",
    ];

    fn config(initial: Option<InitialSync>) -> NodeConfig {
        let host = |name: &str, id: u32| Host {
            name: name.into(),
            node_id: id,
            address: format!("127.0.0.{}", id + 2),
            port: 7000,
            diskless: false,
        };
        NodeConfig {
            generation: 3,
            cluster_id: "c".into(),
            node_name: "alpha".into(),
            pools: Vec::new(),
            snapshots: Vec::new(),
            resources: vec![ResourceConfig {
                name: "r0".into(),
                layers: vec![LayerKind::Drbd, LayerKind::Storage],
                diskless: false,
                volumes: vec![VolumeConfig {
                    number: 0,
                    size_kib: 1024,
                    pool: "p".into(),
                    backing_name: "r0_00000".into(),
                    restore_from: None,
                    adopt: false,
                    copy_from: None,
                    net_kib: None,
                }],
                drbd: Some(Resource {
                    name: "r0".into(),
                    volumes: vec![Volume {
                        number: 0,
                        minor: 1000,
                    }],
                    hosts: vec![host("alpha", 0), host("beta", 1)],
                    ..Default::default()
                }),
                initial_sync: initial,
            }],
        }
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn start(runner: &Arc<ScriptedRunner>, lines: ScriptedLines) -> DrbdWatch {
        start_with(runner, lines, AdmConfig::default())
    }

    fn start_with(runner: &Arc<ScriptedRunner>, lines: ScriptedLines, adm: AdmConfig) -> DrbdWatch {
        let source = EventSource {
            refresh: false,
            ..EventSource::drbdsetup(&adm)
        };
        let argv: Vec<&str> = source.cmd.argv().to_vec();
        runner.expect_stream(&argv, lines);
        DrbdWatch::start(runner.clone(), runner.clone(), adm, source)
    }

    /// On DRBD 8.4 the one peer shows up as node id 0 named "peer" (lines as recorded from
    /// DRBD 8.4.11): it is named by the configuration's other host, also when this node is
    /// node id 0 itself, and the birth waits for it as for a DRBD 9 peer.
    #[test]
    fn drbd84_peer_is_named_and_awaited() {
        let runner = Arc::new(ScriptedRunner::new());
        // The disks turn UpToDate only after the skip ran.
        let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lines = ScriptedLines::new([
            "exists -",
            "create resource name:r0 role:Secondary suspended:no",
            "create device name:r0 volume:0 minor:1000 disk:Inconsistent",
            "create connection name:r0 peer-node-id:0 conn-name:peer connection:StandAlone role:Unknown",
            "create peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Off peer-disk:DUnknown resync-suspended:no",
        ])
        .idle()
        .idle()
        .line("change connection name:r0 peer-node-id:0 conn-name:peer connection:Connected")
        .line("change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Established peer-disk:Inconsistent")
        .gate(open.clone())
        .line("change device name:r0 volume:0 minor:1000 disk:UpToDate")
        .line("change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 peer-disk:UpToDate");
        runner.expect(
            &["drbdadm", "new-current-uuid", "--clear-bitmap", "r0/0"],
            Output::ok(""),
        );
        let adm = AdmConfig {
            drbd84: true,
            ..Default::default()
        };
        assert_eq!(
            EventSource::drbdsetup(&adm).cmd.argv(),
            ["drbdsetup", "events2", "--statistics", "all"]
        );
        let w = start_with(&runner, lines, adm);
        w.configure(&config(Some(InitialSync::Skip)));
        wait_until("the skip", || runner.remaining().is_empty());
        open.store(true, std::sync::atomic::Ordering::SeqCst);
        // Both lines after the gate: the local disk alone already counts as synced.
        wait_until("UpToDate on both sides", || {
            w.report().resource("r0").is_some_and(|r| {
                r.is_synced()
                    && r.volumes[&0]
                        .peers
                        .get("beta")
                        .and_then(|p| p.peer_disk.clone())
                        == Some(DiskState::UpToDate)
            })
        });
        let r = w.report();
        let o = r.resource("r0").unwrap();
        assert_eq!(o.connections.keys().collect::<Vec<_>>(), ["beta"]);
        assert_eq!(
            o.volumes[&0].peers["beta"].peer_disk,
            Some(DiskState::UpToDate)
        );
    }

    /// Alone on DRBD 8.4, a new thin volume cannot skip its sync by clearing the bitmap (8.4
    /// does that only towards a connected peer): it is made primary once instead.
    #[test]
    fn drbd84_alone_is_born_by_one_forced_primary() {
        let runner = Arc::new(ScriptedRunner::new());
        // The disk turns UpToDate only after the birth (the stream would otherwise run ahead
        // of `configure`, and a device already UpToDate is rightly not born).
        let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lines = ScriptedLines::new([
            "exists -",
            "create resource name:r0 role:Secondary suspended:no",
            "create device name:r0 volume:0 minor:1000 disk:Inconsistent",
            "create connection name:r0 peer-node-id:0 conn-name:peer connection:StandAlone role:Unknown",
        ])
        .gate(open.clone())
        .line("change device name:r0 volume:0 minor:1000 disk:UpToDate");
        runner
            .expect(&["drbdadm", "primary", "--force", "r0"], Output::ok(""))
            .expect(&["drbdadm", "secondary", "r0"], Output::ok(""));
        let adm = AdmConfig {
            drbd84: true,
            ..Default::default()
        };
        let w = start_with(&runner, lines, adm);
        let mut cfg = config(Some(InitialSync::Skip));
        if let Some(d) = cfg.resources[0].drbd.as_mut() {
            d.hosts.truncate(1);
        }
        w.configure(&cfg);
        wait_until("the forced primary", || runner.remaining().is_empty());
        open.store(true, std::sync::atomic::Ordering::SeqCst);
        wait_until("UpToDate", || {
            w.report().resource("r0").is_some_and(|r| r.is_synced())
        });
    }

    #[test]
    fn observes_peers_by_node_name_with_resync_progress() {
        let mut st = events::State::new();
        for l in NEWBORN {
            assert!(st.apply_line(l));
        }
        for l in [
            "change device name:r0 volume:0 disk:UpToDate",
            "change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncSource peer-disk:Inconsistent done:45.12",
            "change resource name:r0 role:Primary may_promote:no promotion_score:10101",
        ] {
            assert!(st.apply_line(l));
        }
        let cfg = config(None);
        let res = cfg.resources[0].drbd.as_ref();
        let o = observe(st.resource("r0").unwrap(), &names(res.unwrap()));
        assert_eq!(o.role, Some(events::Role::Primary));
        assert_eq!(o.in_use(), Some(true));
        assert_eq!(o.may_promote, Some(false));
        assert_eq!(o.promotion_score, Some(10101));
        assert_eq!(o.connections["beta"], events::ConnectionState::Connected);
        let v = &o.volumes[&0];
        assert_eq!(v.disk_state, Some(DiskState::UpToDate));
        assert_eq!(
            v.peers["beta"].replication,
            events::ReplicationState::SyncSource
        );
        assert_eq!(v.peers["beta"].done, Some(45.12));
        assert!(!o.is_synced());
        // Without the configuration peers keep DRBD's connection name.
        let o = observe(st.resource("r0").unwrap(), &HashMap::new());
        assert!(o.connections.contains_key("beta"));
        // The resync ends.
        st.apply_line("change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established peer-disk:UpToDate");
        let o = observe(st.resource("r0").unwrap(), &names(res.unwrap()));
        assert_eq!(o.volumes[&0].peers["beta"].done, None);
        assert!(o.is_synced());
    }

    #[test]
    fn new_thin_resource_skips_the_initial_sync_once() {
        let runner = Arc::new(ScriptedRunner::new());
        let mut lines = ScriptedLines::new(NEWBORN.iter().copied());
        // After the step the disks turn UpToDate (held back until the step ran); nothing is
        // run again.
        let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        lines = lines
            .gate(open.clone())
            .line("change device name:r0 volume:0 disk:UpToDate")
            .line("change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 peer-disk:UpToDate");
        runner.expect(
            &["drbdadm", "new-current-uuid", "--clear-bitmap", "r0/0"],
            Output::ok(""),
        );
        let w = start(&runner, lines);
        w.configure(&config(Some(InitialSync::Skip)));
        wait_until("the skip", || runner.remaining().is_empty());
        open.store(true, std::sync::atomic::Ordering::SeqCst);
        wait_until("UpToDate", || {
            w.report().resource("r0").is_some_and(|r| r.is_synced())
        });
        // Told again (the same configuration re-sent): nothing more runs.
        w.configure(&config(Some(InitialSync::Skip)));
        std::thread::sleep(Duration::from_millis(100));
        let ran: Vec<Vec<String>> = runner
            .calls()
            .into_iter()
            .filter(|c| c[0] == "drbdadm")
            .collect();
        assert_eq!(ran.len(), 1, "{ran:?}");
        let r = w.report();
        assert!(r.complete);
        assert!(r.error.is_none(), "{:?}", r.error);
    }

    #[test]
    fn thick_resource_is_forced_primary_once_and_waits_for_its_peers() {
        let runner = Arc::new(ScriptedRunner::new());
        // First stream: beta never connects, then the stream ends. Nothing may run.
        let alone = ScriptedLines::new([
            "exists resource name:r0 role:Secondary suspended:no may_promote:no promotion_score:0",
            "exists connection name:r0 peer-node-id:1 conn-name:beta connection:Connecting role:Unknown",
            "exists device name:r0 volume:0 minor:1000 disk:Inconsistent client:no quorum:yes open:no",
            "exists -",
        ])
        .idle()
        .idle()
        .ends(0, "");
        // Second stream: beta is there.
        let cmd = adm::events2_command(&AdmConfig::default());
        let argv: Vec<&str> = cmd.argv().to_vec();
        runner.expect_stream(&argv, alone);
        runner.expect_stream(&argv, ScriptedLines::new(NEWBORN.iter().copied()));
        runner
            .expect(&["drbdadm", "primary", "--force", "r0"], Output::ok(""))
            .expect(&["drbdadm", "secondary", "r0"], Output::ok(""));
        let w = DrbdWatch::start(
            runner.clone(),
            runner.clone(),
            AdmConfig::default(),
            EventSource {
                cmd,
                refresh: false,
            },
        );
        w.configure(&config(Some(InitialSync::Full)));
        wait_until("primary --force then secondary", || {
            runner.remaining().is_empty()
        });
        let calls: Vec<String> = runner.calls().iter().map(|c| c[..2].join(" ")).collect();
        assert_eq!(
            calls,
            [
                "drbdsetup events2",
                "drbdsetup events2",
                "drbdadm primary",
                "drbdadm secondary"
            ]
        );
        wait_until("the state", || w.report().resource("r0").is_some());
        let r = w.report();
        assert_eq!(
            r.resource("r0").unwrap().connections["beta"],
            events::ConnectionState::Connected
        );
    }

    #[test]
    fn a_failing_step_is_reported_and_the_stream_end_too() {
        let runner = Arc::new(ScriptedRunner::new());
        // The stream ends only after the configuration is in: were it to end first, the
        // state the step needs would be gone before the step could fail.
        let open = Arc::new(AtomicBool::new(false));
        let lines = ScriptedLines::new(NEWBORN.iter().copied())
            .gate(open.clone())
            .idle()
            .idle()
            .ends(10, "drbdsetup: module not loaded");
        runner.expect(
            &["drbdadm", "new-current-uuid", "--clear-bitmap", "r0/0"],
            Output::failed(11, "no such resource"),
        );
        let w = start(&runner, lines);
        let seen = w.subscribe();
        w.configure(&config(Some(InitialSync::Skip)));
        open.store(true, Ordering::SeqCst);
        wait_until("the failed step among the problems", || {
            w.problems()
                .iter()
                .any(|p| p.contains("resource 'r0'") && p.contains("no such resource"))
        });
        wait_until("the stream's end", || {
            w.report()
                .error
                .is_some_and(|e| e.contains("module not loaded"))
        });
        let r = w.report();
        assert!(!r.complete);
        assert!(r.resources.is_empty(), "state is dropped with the stream");
        let why = r.error.unwrap();
        assert!(
            !why.contains("no such resource"),
            "a failed step does not make the watcher's state untrusted: {why}"
        );
        assert!(*seen.borrow() > 0, "changes were announced");
    }
}
