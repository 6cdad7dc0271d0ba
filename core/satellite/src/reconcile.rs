//! Making a node's desired state true, and observing it.
//!
//! Reconciliation is level-triggered and idempotent: for every volume of the configuration the
//! provider is asked to `ensure` it (which does nothing when it already matches), and every
//! volume this satellite created that is no longer wanted is deleted. Running it twice with the
//! same configuration runs no changing command the second time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use strata_agent_api::{
    NodeConfig, PoolConfig, PoolProbe, Report, ResourceConfig, RollbackConfig, SnapshotConfig,
    SnapshotReport, VolumeConfig,
};
use strata_exec::CommandRunner;
use strata_model::drbd_state::DiskState;
use strata_model::kinds::LayerKind;
use strata_model::observed::{ResourceState, VolumeState};
use strata_storage::{BackingVolume, Provider, StorageError};

use crate::drbd::{device_path, DrbdApply, DrbdDriver};
use crate::record::{DrbdVolumeKey, OwnedVolume, Record, SnapshotKey, VolumeKey};

/// Opens providers; the real one builds them from the pool kind, tests substitute fakes.
pub trait ProviderFactory: Send + Sync {
    fn open(&self, pool: &PoolConfig) -> Result<Box<dyn Provider>, StorageError>;

    /// The DRBD layer, when this node can run it.
    fn drbd(&self) -> Option<&DrbdDriver> {
        None
    }
}

pub struct RealProviders {
    pub runner: Arc<dyn CommandRunner>,
    pub drbd: Option<DrbdDriver>,
}

impl ProviderFactory for RealProviders {
    fn open(&self, pool: &PoolConfig) -> Result<Box<dyn Provider>, StorageError> {
        strata_storage::open(pool.kind, &pool.props, self.runner.clone())
    }

    fn drbd(&self) -> Option<&DrbdDriver> {
        self.drbd.as_ref()
    }
}

/// A pool opened for one pass, with what it holds.
struct OpenPool {
    provider: Result<Box<dyn Provider>, String>,
    volumes: BTreeMap<String, BackingVolume>,
}

fn open_pools(
    factory: &dyn ProviderFactory,
    configs: &[PoolConfig],
    report: &mut Report,
) -> BTreeMap<String, OpenPool> {
    let mut pools = BTreeMap::new();
    for pc in configs {
        let opened = factory
            .open(pc)
            .and_then(|p| p.check().map(|_| p))
            .map_err(|e| e.to_string());
        let mut volumes = BTreeMap::new();
        let provider = match opened {
            Ok(p) => match p.list() {
                Ok(list) => {
                    volumes = list.into_iter().map(|v| (v.name.clone(), v)).collect();
                    Ok(p)
                }
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        let state = match &provider {
            Ok(p) => p
                .state()
                .unwrap_or_else(|e| strata_model::observed::PoolState {
                    errors: vec![e.to_string()],
                    ..Default::default()
                }),
            Err(e) => strata_model::observed::PoolState {
                errors: vec![e.clone()],
                ..Default::default()
            },
        };
        report.pools.insert(pc.name.clone(), state);
        pools.insert(pc.name.clone(), OpenPool { provider, volumes });
    }
    pools
}

fn volume_key(pool: &str, backing: &str) -> VolumeKey {
    VolumeKey::new(pool, backing)
}

/// Reads `<resource>_<nnnnn>` back into its parts, for volumes the record does not know.
pub fn parse_backing_name(name: &str) -> Option<OwnedVolume> {
    let (rsc, nr) = name.rsplit_once('_')?;
    if nr.len() != 5 || !nr.bytes().all(|b| b.is_ascii_digit()) || rsc.is_empty() {
        return None;
    }
    Some(OwnedVolume {
        resource: rsc.to_string(),
        volume_number: nr.parse().ok()?,
    })
}

fn up_to_date(number: u32, v: &BackingVolume) -> VolumeState {
    let attached = v.device.is_some();
    VolumeState {
        volume_number: number,
        device_path: v.device.clone(),
        backing_path: Some(v.path.clone()),
        allocated_kib: Some(v.allocated_kib),
        usable_kib: Some(v.size_kib),
        disk_state: if attached {
            DiskState::UpToDate
        } else {
            DiskState::Failed
        },
        error: (!attached).then(|| format!("{} is not attached to a block device", v.path)),
    }
}

/// Whether any device of the resource is in use; `None` when it has no device.
///
/// A DRBD device is never opened to find out: its use is its role, which DRBD's events
/// report (the controller counts a Primary as in use), and even a moment's open by this
/// probe would make a `drbdadm secondary` on the node fail ("held open") — the hand-over of a
/// migration included.
fn in_use(rs: &ResourceState) -> Option<bool> {
    let devices: Vec<&String> = rs
        .volumes
        .iter()
        .filter_map(|v| v.device_path.as_ref())
        .collect();
    if devices.is_empty() {
        return None;
    }
    Some(
        devices
            .iter()
            .any(|d| !d.starts_with("/dev/drbd") && strata_storage::device_in_use(d)),
    )
}

/// Makes volume `v`, missing from the pool, from where the configuration says it comes
/// from: a snapshot, another volume of the pool, or the administrator's volume of that name.
/// `None`: it is to be created empty.
fn from_origin(
    provider: &dyn Provider,
    volumes: &BTreeMap<String, BackingVolume>,
    v: &strata_agent_api::VolumeConfig,
) -> Result<Option<BackingVolume>, String> {
    if let Some(src) = &v.restore_from {
        return provider
            .snapshot_restore(&src.volume, &src.snapshot, &v.backing_name)
            .map(Some)
            .map_err(|e| {
                format!(
                    "cannot restore snapshot '{}' of volume '{}': {e}",
                    src.snapshot, src.volume
                )
            });
    }
    if let Some(src) = &v.copy_from {
        return copy_volume(provider, volumes, v, src)
            .map(Some)
            .map_err(|e| format!("cannot copy volume '{src}' into '{}': {e}", v.backing_name));
    }
    if v.adopt {
        return provider
            .adopt(&v.backing_name, v.size_kib)
            .map_err(|e| format!("cannot adopt volume '{}': {e}", v.backing_name));
    }
    Ok(None)
}

/// Makes volume `v` as a copy of volume `src` of the same pool: filled under a temporary
/// name, then renamed, so that a copy cut short (a crash) is never taken for a finished one
/// (the temporary volume is not wanted and goes).
fn copy_volume(
    provider: &dyn Provider,
    volumes: &BTreeMap<String, BackingVolume>,
    v: &strata_agent_api::VolumeConfig,
    src: &str,
) -> Result<BackingVolume, String> {
    let source = volumes
        .get(src)
        .ok_or_else(|| format!("the source volume '{src}' is not in the pool"))?;
    let from = source
        .device
        .clone()
        .ok_or_else(|| format!("the source volume '{src}' has no block device"))?;
    let tmp = format!("{}.clone", v.backing_name);
    let made = provider
        .ensure(&tmp, v.size_kib, volumes.get(&tmp))
        .map_err(|e| e.to_string())?;
    let done = made
        .device
        .clone()
        .ok_or_else(|| format!("'{tmp}' has no block device"))
        .and_then(|to| {
            let bytes = source.size_kib.min(made.size_kib) * 1024;
            strata_storage::copy_device(&from, &to, bytes).map_err(|e| e.to_string())
        })
        .and_then(|()| {
            provider
                .rename(&tmp, &v.backing_name, &made)
                .map_err(|e| e.to_string())
        });
    if done.is_err() {
        let _ = provider.delete(&tmp, Some(&made));
    }
    done
}

fn failed(number: u32, error: String) -> VolumeState {
    VolumeState {
        volume_number: number,
        disk_state: DiskState::Failed,
        error: Some(error),
        ..Default::default()
    }
}

fn unsupported_layers(layers: &[LayerKind], drbd: bool) -> Option<String> {
    layers
        .iter()
        .find(|l| **l != LayerKind::Storage && !(drbd && **l == LayerKind::Drbd))
        .map(|l| format!("the {l} layer is not supported by this satellite"))
}

/// Which resource volume the backing volume `name` (record key `key`) belongs to: as the
/// record says, else as its name says, else the name itself.
fn owner_of(record: &Record, key: &VolumeKey, name: &str) -> OwnedVolume {
    record
        .volumes
        .get(key)
        .cloned()
        .or_else(|| parse_backing_name(name))
        .unwrap_or(OwnedVolume {
            resource: name.to_string(),
            volume_number: 0,
        })
}

/// Adds failed leftovers (volumes that should be gone but are not) to the report, so that the
/// controller does not consider their deletion finished.
fn report_leftover(report: &mut Report, owner: &OwnedVolume, error: String) {
    let idx = match report
        .resources
        .iter()
        .position(|r| r.name == owner.resource)
    {
        Some(i) => i,
        None => {
            report.resources.push(ResourceState {
                name: owner.resource.clone(),
                ..Default::default()
            });
            report.resources.len() - 1
        }
    };
    report.resources[idx]
        .volumes
        .push(failed(owner.volume_number, error));
}

fn pool_union(cfg: &NodeConfig, record: &Record) -> Vec<PoolConfig> {
    let mut all = cfg.pools.clone();
    for old in &record.known_pools {
        if !all.iter().any(|p| p.name == old.name) {
            all.push(old.clone());
        }
    }
    all
}

/// Whether a pass may remove volumes that are not wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// A configuration from the controller: what is not in it goes.
    Allowed,
    /// Converging from the satellite's own record, which may be older than what the controller
    /// last sent: bring wanted volumes back, never remove anything.
    Never,
}

fn drbd_size_key(rsc: &str, vol: u32) -> DrbdVolumeKey {
    DrbdVolumeKey::new(rsc, vol)
}

/// Applies the DRBD resource `d` of `r` over the backing volumes `rs` reports, and makes
/// the volumes' devices the DRBD devices. The record keeps the backing size DRBD was set up
/// for, to know when a grown backing volume asks for a DRBD resize.
fn apply_drbd(
    driver: &DrbdDriver,
    node: &str,
    r: &strata_agent_api::ResourceConfig,
    d: &strata_drbd::config::Resource,
    rs: &mut ResourceState,
    sizes: &mut BTreeMap<DrbdVolumeKey, u64>,
) {
    if rs.volumes.iter().any(|v| v.error.is_some()) {
        return; // the storage errors say what is wrong; DRBD waits for its disks
    }
    let disks: BTreeMap<u32, String> = if r.diskless {
        BTreeMap::new()
    } else {
        rs.volumes
            .iter()
            .filter_map(|v| Some((v.volume_number, v.device_path.clone()?)))
            .collect()
    };
    let want = |n: u32| r.volumes.iter().find(|v| v.number == n).map(|v| v.size_kib);
    let known_md: BTreeSet<u32> = disks
        .keys()
        .copied()
        .filter(|n| sizes.contains_key(&drbd_size_key(&r.name, *n)))
        .collect();
    let fresh: BTreeSet<u32> = r
        .volumes
        .iter()
        .filter(|v| {
            (v.restore_from.is_some() || v.copy_from.is_some()) && !known_md.contains(&v.number)
        })
        .map(|v| v.number)
        .collect();
    let grown: Vec<u32> = disks
        .keys()
        .copied()
        .filter(|n| {
            let had = sizes.get(&drbd_size_key(&r.name, *n));
            matches!((had, want(*n)), (Some(h), Some(w)) if w > *h)
        })
        .collect();
    let step = DrbdApply {
        node,
        res: d,
        disks: &disks,
        known_md: &known_md,
        fresh: &fresh,
        grown: &grown,
    };
    if let Err(e) = driver.apply(&step) {
        rs.error = Some(format!("DRBD: {e}"));
        return;
    }
    // DRBD grows to the smallest backing volume of all replicas: where the device is still
    // smaller than asked, a peer's disk grew only after this node's resize (or at the same
    // time). Ask again; the controller retries while the report shows it short.
    for v in r.volumes.iter().filter(|v| disks.contains_key(&v.number)) {
        let (Some(net), Some(dv)) = (v.net_kib, d.volumes.iter().find(|x| x.number == v.number))
        else {
            continue;
        };
        if grown.contains(&v.number) {
            continue;
        }
        if driver
            .device_size_kib(dv.minor)
            .is_some_and(|have| have < net)
        {
            if let Err(e) = driver.resize(node, &d.name, v.number) {
                tracing::info!(resource = %r.name, volume = v.number, "DRBD cannot grow yet: {e}");
            }
        }
    }
    for n in disks.keys() {
        if let Some(w) = want(*n) {
            let slot = sizes.entry(drbd_size_key(&r.name, *n)).or_insert(w);
            *slot = (*slot).max(w);
        }
    }
    // A volume that lost its disk (toggled diskless) gets fresh metadata on its next disk.
    for v in &r.volumes {
        if !disks.contains_key(&v.number) {
            sizes.remove(&drbd_size_key(&r.name, v.number));
        }
    }
    drbd_volumes_into(driver, d, &mut rs.volumes);
}

/// Users get what DRBD gives, not the backing volume (which holds the metadata too): the
/// device of a volume with the DRBD layer is DRBD's (the backing volume's path moves to
/// `backing_path`), and its usable size, once the device is up, the device's.
fn drbd_volumes_into(
    driver: &DrbdDriver,
    d: &strata_drbd::config::Resource,
    volumes: &mut [VolumeState],
) {
    for v in volumes.iter_mut() {
        if let Some(dv) = d.volumes.iter().find(|x| x.number == v.volume_number) {
            v.backing_path = v.device_path.take().or(v.backing_path.take());
            v.device_path = Some(device_path(dv.minor));
            if let Some(have) = driver.device_size_kib(dv.minor) {
                v.usable_kib = Some(have);
            }
        }
    }
}

/// A volume of snapshot `s`'s resource that is in use on this node, said as an error.
fn busy_volume(
    factory: &dyn ProviderFactory,
    cfg: &NodeConfig,
    s: &strata_agent_api::SnapshotConfig,
) -> Option<String> {
    for v in &s.volumes {
        let pool = cfg.pools.iter().find(|p| p.name == v.pool)?;
        let list = factory.open(pool).and_then(|p| p.list()).ok()?;
        let dev = list
            .into_iter()
            .find(|b| b.name == v.backing_name)
            .and_then(|b| b.device)?;
        if strata_storage::device_in_use(&dev) {
            return Some(format!(
                "volume {} ({dev}) is in use (mounted or opened); stop using it first",
                v.number
            ));
        }
    }
    None
}

fn rollback_key(s: &strata_agent_api::SnapshotConfig) -> SnapshotKey {
    SnapshotKey::new(&s.resource, &s.name)
}

pub fn reconcile(factory: &dyn ProviderFactory, record: &mut Record, cfg: &NodeConfig) -> Report {
    reconcile_with(factory, record, cfg, Removal::Allowed)
}

/// Applies `cfg` and returns what the node looks like afterwards. The record is updated with
/// what was created and removed; the caller persists it.
pub fn reconcile_with(
    factory: &dyn ProviderFactory,
    record: &mut Record,
    cfg: &NodeConfig,
    removal: Removal,
) -> Report {
    let mut pass = Pass::new(factory, record, cfg, removal);
    // Rollbacks first: the volumes are listed after they changed.
    pass.rollbacks();
    pass.open_pools();
    pass.resources();
    pass.snapshots();
    // DRBD resources that went (or lost the layer) come down before their volumes go.
    pass.take_down_leavers();
    pass.delete_unwanted();
    pass.record_applied()
}

/// One reconcile pass: what it works from, and what it collects on the way to the report.
struct Pass<'a> {
    factory: &'a dyn ProviderFactory,
    cfg: &'a NodeConfig,
    record: &'a mut Record,
    removal: Removal,
    report: Report,
    /// The pools of the configuration and those the record knows from before.
    all_pools: Vec<PoolConfig>,
    pools: BTreeMap<String, OpenPool>,
    /// Resources whose DRBD stays down in this pass (being rolled back).
    keep_down: BTreeSet<String>,
    /// Errors by snapshot (resource, snapshot name), reported with the snapshots.
    snapshot_errors: BTreeMap<(String, String), String>,
    /// Backing volumes that stay.
    wanted: BTreeSet<VolumeKey>,
    /// Pools that hold volumes which should have gone but did not.
    still_holding: BTreeSet<String>,
}

/// Copies of snapshots by pool, as the providers list them.
type Held = BTreeMap<String, Vec<strata_storage::SnapshotVolume>>;

/// Whether pool `pool` holds the copy of volume `volume` for snapshot `snap`.
fn holds(held: &Held, pool: &str, volume: &str, snap: &str) -> bool {
    held.get(pool)
        .is_some_and(|l| l.iter().any(|x| x.volume == volume && x.snapshot == snap))
}

impl<'a> Pass<'a> {
    fn new(
        factory: &'a dyn ProviderFactory,
        record: &'a mut Record,
        cfg: &'a NodeConfig,
        removal: Removal,
    ) -> Pass<'a> {
        Pass {
            factory,
            cfg,
            record,
            removal,
            report: Report {
                node_name: Some(cfg.node_name.clone()),
                applied_generation: cfg.generation,
                ..Default::default()
            },
            all_pools: Vec::new(),
            pools: BTreeMap::new(),
            keep_down: BTreeSet::new(),
            snapshot_errors: BTreeMap::new(),
            wanted: BTreeSet::new(),
            still_holding: BTreeSet::new(),
        }
    }

    /// Phase 1: the rollbacks the configuration asks for (none when converging from a record).
    fn rollbacks(&mut self) {
        // DRBD goes down for every resource being rolled back (and stays down while
        // `down_only`), then, once per rollback id, the volumes get the snapshot's content.
        if self.removal != Removal::Allowed {
            return;
        }
        let cfg = self.cfg;
        self.record
            .rollbacks_done
            .retain(|k, _| cfg.snapshots.iter().any(|s| &rollback_key(s) == k));
        for s in &cfg.snapshots {
            let Some(rb) = s.rollback else {
                continue;
            };
            if self.record.rollbacks_done.get(&rollback_key(s)) == Some(&rb.id) {
                continue; // rolled back already; DRBD comes up as usual
            }
            self.roll_back(s, rb);
        }
    }

    /// One rollback: DRBD down, then (unless only that is asked) the volumes rolled back.
    fn roll_back(&mut self, s: &SnapshotConfig, rb: RollbackConfig) {
        let (factory, cfg) = (self.factory, self.cfg);
        let id = (s.resource.clone(), s.name.clone());
        if let Some(driver) = factory.drbd() {
            if let Err(e) = driver.take_down(&cfg.node_name, &s.resource) {
                self.snapshot_errors
                    .insert(id, format!("cannot take DRBD down: {e}"));
                return;
            }
        }
        if rb.down_only {
            // Nothing may hold the volumes now (a mounted storage-only volume, say).
            match busy_volume(factory, cfg, s) {
                Some(busy) => {
                    self.snapshot_errors.insert(id, busy);
                }
                None => {
                    self.keep_down.insert(s.resource.clone());
                }
            }
            return;
        }
        match roll_back_volumes(factory, cfg, s) {
            Ok(()) => {
                tracing::info!(resource = %s.resource, snapshot = %s.name, "rolled back");
                self.record.rollbacks_done.insert(rollback_key(s), rb.id);
            }
            Err(e) => {
                self.snapshot_errors.insert(id, e);
                self.keep_down.insert(s.resource.clone());
            }
        }
    }

    /// Phase 2: opens every pool, of the configuration and of the record, and lists volumes.
    fn open_pools(&mut self) {
        self.all_pools = pool_union(self.cfg, self.record);
        self.pools = open_pools(self.factory, &self.all_pools, &mut self.report);
        for old in &self.record.known_pools {
            if !self.cfg.pools.iter().any(|p| p.name == old.name) {
                self.report.pools.remove(&old.name);
            }
        }
    }

    /// Phase 3: each resource's volumes ensured, then its DRBD resource applied over them.
    fn resources(&mut self) {
        let cfg = self.cfg;
        for r in &cfg.resources {
            let rs = self.resource(r);
            self.report.resources.push(rs);
        }
    }

    /// One resource of phase 3, as the report shows it afterwards.
    fn resource(&mut self, r: &ResourceConfig) -> ResourceState {
        let mut rs = ResourceState {
            name: r.name.clone(),
            ..Default::default()
        };
        if let Some(e) = unsupported_layers(&r.layers, self.factory.drbd().is_some()) {
            rs.error = Some(e);
            // Its volumes stay as they are until the resource is fixed or deleted.
            for v in &r.volumes {
                self.wanted.insert(volume_key(&v.pool, &v.backing_name));
            }
            return rs;
        }
        rs.volumes = self.ensure_volumes(r);
        self.drbd(r, &mut rs);
        rs.in_use = in_use(&rs);
        rs
    }

    /// Phase 3a: makes the backing volumes of `r` exist with their size (none when diskless).
    fn ensure_volumes(&mut self, r: &ResourceConfig) -> Vec<VolumeState> {
        let mut states = Vec::with_capacity(r.volumes.len());
        for v in &r.volumes {
            if r.diskless {
                states.push(VolumeState {
                    volume_number: v.number,
                    disk_state: DiskState::Diskless,
                    ..Default::default()
                });
                continue;
            }
            states.push(self.ensure_volume(r, v));
        }
        states
    }

    /// One backing volume: found, else made from its origin or created; shrunk or grown to
    /// its size; recorded as ours.
    fn ensure_volume(&mut self, r: &ResourceConfig, v: &VolumeConfig) -> VolumeState {
        let key = volume_key(&v.pool, &v.backing_name);
        self.wanted.insert(key.clone());
        let Some(pool) = self.pools.get_mut(&v.pool) else {
            return failed(
                v.number,
                format!("storage pool '{}' is not configured on this node", v.pool),
            );
        };
        let provider = match &pool.provider {
            Ok(p) => p,
            Err(e) => return failed(v.number, format!("storage pool '{}': {e}", v.pool)),
        };
        let mut current = pool.volumes.get(&v.backing_name).cloned();
        if current.is_none() {
            match from_origin(provider.as_ref(), &pool.volumes, v) {
                Ok(made) => current = made,
                Err(e) => return failed(v.number, e),
            }
        }
        let asked_before = self.record.volume_sizes.get(&key).copied();
        if let (Some(cur), Some(before), None) = (&current, asked_before, &r.drbd) {
            if v.size_kib < before {
                match shrink(provider.as_ref(), v, cur) {
                    Ok(bv) => current = Some(bv),
                    Err(e) => return failed(v.number, e),
                }
            }
        }
        let existed = current.is_some();
        match provider.ensure(&v.backing_name, v.size_kib, current.as_ref()) {
            Ok(bv) => {
                if !existed {
                    tracing::info!(resource = %r.name, volume = v.number, pool = %v.pool, backing = %bv.name, "volume created");
                }
                self.record.volume_sizes.insert(key.clone(), v.size_kib);
                self.record.volumes.insert(
                    key,
                    OwnedVolume {
                        resource: r.name.clone(),
                        volume_number: v.number,
                    },
                );
                let state = up_to_date(v.number, &bv);
                pool.volumes.insert(bv.name.clone(), bv);
                state
            }
            Err(e) => failed(v.number, e.to_string()),
        }
    }

    /// Phase 3b: the DRBD resource of `r` over its volumes, unless a rollback keeps it down.
    fn drbd(&mut self, r: &ResourceConfig, rs: &mut ResourceState) {
        let Some(driver) = self.factory.drbd() else {
            return;
        };
        if let (Some(d), false) = (&r.drbd, self.keep_down.contains(&r.name)) {
            apply_drbd(
                driver,
                &self.cfg.node_name,
                r,
                d,
                rs,
                &mut self.record.drbd_sizes,
            );
        }
    }

    /// Phase 4: makes the node's snapshots what the configuration asks, and reports them.
    fn snapshots(&mut self) {
        // I/O of DRBD resources is suspended where asked, missing copies are taken where asked
        // (only then: a copy taken later would be of another moment), I/O is resumed where no
        // longer asked, and copies this node took that are no longer wanted are removed.
        let want_suspended: BTreeSet<String> = self
            .cfg
            .snapshots
            .iter()
            .filter(|s| s.suspend_io)
            .map(|s| s.resource.clone())
            .collect();
        self.suspend_io(&want_suspended);
        let mut held = self.held_snapshots();
        self.take_snapshots(&mut held);
        self.resume_io(&want_suspended);
        if self.removal == Removal::Allowed {
            self.delete_unwanted_snapshots(&held);
        }
        self.report_snapshots(&held);
    }

    /// Suspends the I/O of the DRBD resources in `want` that is not suspended yet.
    fn suspend_io(&mut self, want: &BTreeSet<String>) {
        let (Some(driver), cfg) = (self.factory.drbd(), self.cfg) else {
            return;
        };
        for rsc in want.difference(&self.record.io_suspended.clone()) {
            match driver.set_io_suspended(&cfg.node_name, rsc, true) {
                Ok(()) => {
                    self.record.io_suspended.insert(rsc.clone());
                }
                Err(e) => {
                    for s in cfg.snapshots.iter().filter(|s| &s.resource == rsc) {
                        self.snapshot_errors.insert(
                            (s.resource.clone(), s.name.clone()),
                            format!("cannot suspend I/O: {e}"),
                        );
                    }
                }
            }
        }
    }

    /// The copies the usable pools hold.
    fn held_snapshots(&mut self) -> Held {
        let mut held = Held::new();
        for (name, pool) in &self.pools {
            if let Ok(p) = &pool.provider {
                match p.snapshots() {
                    Ok(list) => {
                        held.insert(name.clone(), list);
                    }
                    Err(e) => self
                        .report
                        .errors
                        .push(format!("storage pool '{name}': cannot list snapshots: {e}")),
                }
            }
        }
        held
    }

    /// Takes the missing copies of the snapshots to take, unless their I/O could not be
    /// suspended.
    fn take_snapshots(&mut self, held: &mut Held) {
        for s in self.cfg.snapshots.iter().filter(|s| s.take) {
            let id = (s.resource.clone(), s.name.clone());
            if self.snapshot_errors.contains_key(&id) {
                continue; // its I/O is not suspended: a copy now would not match the others
            }
            for v in &s.volumes {
                if holds(held, &v.pool, &v.backing_name, &s.name) {
                    continue;
                }
                let Some(Ok(p)) = self.pools.get(&v.pool).map(|p| p.provider.as_ref()) else {
                    self.snapshot_errors.insert(
                        id.clone(),
                        format!("storage pool '{}' is not usable on this node", v.pool),
                    );
                    continue;
                };
                match p.snapshot_create(&v.backing_name, &s.name) {
                    Ok(taken) => held.entry(v.pool.clone()).or_default().push(taken),
                    Err(e) => {
                        self.snapshot_errors
                            .insert(id.clone(), format!("volume {}: {e}", v.number));
                    }
                }
            }
        }
    }

    /// Resumes the I/O this satellite suspended that `want` no longer asks suspended.
    fn resume_io(&mut self, want: &BTreeSet<String>) {
        let (Some(driver), cfg) = (self.factory.drbd(), self.cfg) else {
            return;
        };
        for rsc in self.record.io_suspended.clone().difference(want) {
            match driver.set_io_suspended(&cfg.node_name, rsc, false) {
                Ok(()) => {
                    self.record.io_suspended.remove(rsc);
                }
                Err(e) => self
                    .report
                    .errors
                    .push(format!("resource '{rsc}': cannot resume I/O: {e}")),
            }
        }
    }

    /// Deletes the copies no snapshot of the configuration wants.
    fn delete_unwanted_snapshots(&mut self, held: &Held) {
        for (pool, list) in held {
            let Some(Ok(p)) = self.pools.get(pool).map(|p| p.provider.as_ref()) else {
                continue;
            };
            for x in list {
                let wanted = self.cfg.snapshots.iter().any(|s| {
                    s.name == x.snapshot
                        && s.volumes
                            .iter()
                            .any(|v| &v.pool == pool && v.backing_name == x.volume)
                });
                if wanted {
                    continue;
                }
                match p.snapshot_delete(&x.volume, &x.snapshot) {
                    Ok(()) => {
                        tracing::info!(pool = %pool, volume = %x.volume, snapshot = %x.snapshot, "snapshot deleted")
                    }
                    Err(e) => self.report.errors.push(format!(
                        "snapshot '{}' of '{}' could not be deleted: {e}",
                        x.snapshot, x.volume
                    )),
                }
            }
        }
    }

    /// Reports, per snapshot of the configuration, which copies exist and how it stands.
    fn report_snapshots(&mut self, held: &Held) {
        for s in &self.cfg.snapshots {
            self.report.snapshots.push(SnapshotReport {
                resource: s.resource.clone(),
                name: s.name.clone(),
                volumes: s
                    .volumes
                    .iter()
                    .filter(|v| holds(held, &v.pool, &v.backing_name, &s.name))
                    .map(|v| v.number)
                    .collect(),
                suspended: self.record.io_suspended.contains(&s.resource),
                error: self
                    .snapshot_errors
                    .remove(&(s.resource.clone(), s.name.clone())),
                rollback_down: s
                    .rollback
                    .filter(|_| self.keep_down.contains(&s.resource))
                    .map(|r| r.id),
                rollback_done: self.record.rollbacks_done.get(&rollback_key(s)).copied(),
            });
        }
    }

    /// Phase 5: takes down DRBD resources that left (or lost the layer), or failed to before.
    fn take_down_leavers(&mut self) {
        let (Some(driver), Removal::Allowed) = (self.factory.drbd(), self.removal) else {
            return;
        };
        let mut leaving: Vec<ResourceConfig> = std::mem::take(&mut self.record.drbd_leaving);
        for r in self
            .record
            .applied
            .iter()
            .flat_map(|old| old.resources.iter())
        {
            if !leaving.iter().any(|l| l.name == r.name) {
                leaving.push(r.clone());
            }
        }
        for gone in leaving.iter().filter(|o| o.drbd.is_some()) {
            let still = self
                .cfg
                .resources
                .iter()
                .any(|r| r.name == gone.name && r.drbd.is_some());
            if !still {
                self.take_down(driver, gone);
            }
        }
    }

    /// Takes down the DRBD resource of `gone`; one that stays up keeps its backing volumes
    /// and is tried again at the next pass.
    fn take_down(&mut self, driver: &DrbdDriver, gone: &ResourceConfig) {
        let disks: BTreeMap<u32, String> = gone
            .volumes
            .iter()
            .filter_map(|v| {
                let dev = self
                    .pools
                    .get(&v.pool)?
                    .volumes
                    .get(&v.backing_name)?
                    .device
                    .clone()?;
                Some((v.number, dev))
            })
            .collect();
        let d = gone.drbd.as_ref().expect("filtered on drbd");
        match driver.remove(&self.cfg.node_name, d, &disks) {
            Ok(()) => {
                self.record
                    .drbd_sizes
                    .retain(|k, _| k.resource != gone.name);
            }
            Err(e) => {
                self.record.drbd_leaving.push(gone.clone());
                // Keep the backing volumes: DRBD still holds them.
                for v in &gone.volumes {
                    self.wanted.insert(volume_key(&v.pool, &v.backing_name));
                    report_leftover(
                        &mut self.report,
                        &OwnedVolume {
                            resource: gone.name.clone(),
                            volume_number: v.number,
                        },
                        format!("DRBD resource could not be taken down: {e}"),
                    );
                }
            }
        }
    }

    /// Phase 6: deletes the volumes nobody wants (reports them when removal is not allowed).
    fn delete_unwanted(&mut self) {
        let mut unwanted: Vec<(String, String)> = Vec::new();
        for (pool_name, pool) in &self.pools {
            if pool.provider.is_err() {
                continue;
            }
            for name in pool.volumes.keys() {
                if !self.wanted.contains(&volume_key(pool_name, name)) {
                    unwanted.push((pool_name.clone(), name.clone()));
                }
            }
        }
        for (pool_name, name) in unwanted {
            if self.removal == Removal::Never {
                let owner = owner_of(self.record, &volume_key(&pool_name, &name), &name);
                report_leftover(
                    &mut self.report,
                    &owner,
                    "kept until the controller confirms it should go".into(),
                );
                self.still_holding.insert(pool_name);
                continue;
            }
            self.delete_volume(&pool_name, &name);
        }
    }

    /// Deletes volume `name` of pool `pool_name`, unless something uses it.
    fn delete_volume(&mut self, pool_name: &str, name: &str) {
        let key = volume_key(pool_name, name);
        let Some(pool) = self.pools.get_mut(pool_name) else {
            return;
        };
        let Ok(provider) = &pool.provider else {
            return;
        };
        let current = pool.volumes.get(name).cloned();
        // Never pull a volume from under a file system or another user.
        let busy = current
            .as_ref()
            .and_then(|c| c.device.as_deref())
            .filter(|d| strata_storage::device_in_use(d));
        let result = match busy {
            Some(dev) => Err(StorageError::InUse {
                device: dev.to_string(),
                fix: "unmount or close it first",
            }),
            None => provider.delete(name, current.as_ref()),
        };
        match result {
            Ok(()) => {
                self.record.volumes.remove(&key);
                self.record.volume_sizes.remove(&key);
                pool.volumes.remove(name);
                tracing::info!(pool = %pool_name, volume = %name, "deleted");
            }
            Err(e) => {
                let owner = owner_of(self.record, &key, name);
                report_leftover(
                    &mut self.report,
                    &owner,
                    format!("could not be deleted: {e}"),
                );
                self.still_holding.insert(pool_name.to_string());
            }
        }
    }

    /// Phase 7: records what the pass applied and the pools still in use; answers the report.
    fn record_applied(self) -> Report {
        let cfg = self.cfg;
        let still_holding = self.still_holding;
        self.record.known_pools = self
            .all_pools
            .into_iter()
            .filter(|p| {
                cfg.pools.iter().any(|c| c.name == p.name) || still_holding.contains(&p.name)
            })
            .collect();
        self.record.node_name = Some(cfg.node_name.clone());
        self.record.cluster_id = Some(cfg.cluster_id.clone());
        self.record.applied = Some(cfg.clone());
        self.report
    }
}

/// Gives every volume of snapshot `s` the snapshot's content; stops at the first that fails.
fn roll_back_volumes(
    factory: &dyn ProviderFactory,
    cfg: &NodeConfig,
    s: &SnapshotConfig,
) -> Result<(), String> {
    for v in &s.volumes {
        let pool = cfg
            .pools
            .iter()
            .find(|p| p.name == v.pool)
            .ok_or_else(|| format!("storage pool '{}' is not configured", v.pool))?;
        factory
            .open(pool)
            .and_then(|p| p.snapshot_rollback(&v.backing_name, &s.name))
            .map_err(|e| format!("volume {}: {e}", v.number))?;
    }
    Ok(())
}

/// Shrinks volume `v` (as `cur` is now) to its configured size, unless something uses it.
fn shrink(
    provider: &dyn Provider,
    v: &VolumeConfig,
    cur: &BackingVolume,
) -> Result<BackingVolume, String> {
    if cur
        .device
        .as_deref()
        .is_some_and(strata_storage::device_in_use)
    {
        return Err(format!(
            "volume '{}' is in use; it shrinks to {} KiB once nothing uses it",
            v.backing_name, v.size_kib
        ));
    }
    provider
        .shrink(&v.backing_name, v.size_kib, cur)
        .map_err(|e| e.to_string())
}

/// What the node looks like now, without changing anything.
pub fn observe(factory: &dyn ProviderFactory, record: &Record) -> Report {
    let mut report = Report {
        node_name: record.node_name.clone(),
        applied_generation: record.applied_generation(),
        ..Default::default()
    };
    let Some(cfg) = &record.applied else {
        return report;
    };
    let all_pools = pool_union(cfg, record);
    let pools = open_pools(factory, &all_pools, &mut report);
    report
        .pools
        .retain(|name, _| cfg.pools.iter().any(|p| &p.name == name));
    let mut wanted: BTreeSet<VolumeKey> = BTreeSet::new();
    for r in &cfg.resources {
        let mut rs = ResourceState {
            name: r.name.clone(),
            error: unsupported_layers(&r.layers, factory.drbd().is_some()),
            ..Default::default()
        };
        for v in &r.volumes {
            wanted.insert(volume_key(&v.pool, &v.backing_name));
            if rs.error.is_some() {
                continue;
            }
            if r.diskless {
                rs.volumes.push(VolumeState {
                    volume_number: v.number,
                    disk_state: DiskState::Diskless,
                    ..Default::default()
                });
                continue;
            }
            let state = match pools.get(&v.pool) {
                None => failed(
                    v.number,
                    format!("storage pool '{}' is not configured on this node", v.pool),
                ),
                Some(OpenPool {
                    provider: Err(e), ..
                }) => failed(v.number, format!("storage pool '{}': {e}", v.pool)),
                Some(p) => match p.volumes.get(&v.backing_name) {
                    Some(bv) => up_to_date(v.number, bv),
                    None => failed(
                        v.number,
                        format!("volume '{}' does not exist", v.backing_name),
                    ),
                },
            };
            rs.volumes.push(state);
        }
        if let (Some(d), Some(driver)) = (&r.drbd, factory.drbd()) {
            drbd_volumes_into(driver, d, &mut rs.volumes);
        }
        rs.in_use = in_use(&rs);
        report.resources.push(rs);
    }
    for (pool_name, pool) in &pools {
        for name in pool.volumes.keys() {
            let key = volume_key(pool_name, name);
            if wanted.contains(&key) {
                continue;
            }
            let owner = owner_of(record, &key, name);
            report_leftover(
                &mut report,
                &owner,
                "still present; waiting to be deleted".into(),
            );
        }
    }
    report
}

/// Whether a new pool can be used here, asked before the controller records it.
pub fn probe(factory: &dyn ProviderFactory, pool: &PoolConfig) -> PoolProbe {
    let result = factory
        .open(pool)
        .and_then(|p| p.check().and_then(|_| p.state()));
    match result {
        Ok(state) => PoolProbe {
            ok: true,
            error: None,
            state: Some(state),
        },
        Err(e) => PoolProbe {
            ok: false,
            error: Some(e.to_string()),
            state: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use strata_agent_api::{ResourceConfig, VolumeConfig};
    use strata_model::kinds::ProviderKind;
    use strata_model::observed::PoolState;

    /// An in-memory pool that records the changing calls it receives.
    #[derive(Default)]
    struct FakePool {
        volumes: Mutex<BTreeMap<String, u64>>,
        /// Volumes in the pool that are not ours (the administrator's).
        foreign: Mutex<BTreeMap<String, u64>>,
        changes: Mutex<Vec<String>>,
        fail_delete: bool,
    }

    struct FakeProvider(Arc<FakePool>);

    impl Provider for FakeProvider {
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
            Ok(self
                .0
                .volumes
                .lock()
                .unwrap()
                .iter()
                .map(|(n, s)| BackingVolume {
                    name: n.clone(),
                    path: format!("/pool/{n}.img"),
                    device: Some(format!("/dev/fake/{n}")),
                    size_kib: *s,
                    allocated_kib: 0,
                })
                .collect())
        }
        fn ensure(
            &self,
            name: &str,
            size: u64,
            current: Option<&BackingVolume>,
        ) -> Result<BackingVolume, StorageError> {
            let mut v = self.0.volumes.lock().unwrap();
            match current {
                Some(c) if c.size_kib >= size => {}
                Some(_) => self
                    .0
                    .changes
                    .lock()
                    .unwrap()
                    .push(format!("grow {name} {size}")),
                None => self
                    .0
                    .changes
                    .lock()
                    .unwrap()
                    .push(format!("create {name} {size}")),
            }
            let s = v.entry(name.to_string()).or_insert(size);
            *s = (*s).max(size);
            Ok(BackingVolume {
                name: name.into(),
                path: format!("/pool/{name}.img"),
                device: Some(format!("/dev/fake/{name}")),
                size_kib: *s,
                allocated_kib: 0,
            })
        }
        fn adopt(&self, name: &str, size: u64) -> Result<Option<BackingVolume>, StorageError> {
            let mut foreign = self.0.foreign.lock().unwrap();
            let Some(&has) = foreign.get(name) else {
                return Ok(None);
            };
            strata_storage::check_adoptable_size(name, has, size)?;
            foreign.remove(name);
            self.0.volumes.lock().unwrap().insert(name.into(), has);
            self.0.changes.lock().unwrap().push(format!("adopt {name}"));
            Ok(self.list()?.into_iter().find(|v| v.name == name))
        }
        fn delete(&self, name: &str, _: Option<&BackingVolume>) -> Result<(), StorageError> {
            if self.0.fail_delete {
                return Err(StorageError::Refused("device busy".into()));
            }
            self.0
                .changes
                .lock()
                .unwrap()
                .push(format!("delete {name}"));
            self.0.volumes.lock().unwrap().remove(name);
            Ok(())
        }
    }

    struct Factory(Arc<FakePool>);
    impl ProviderFactory for Factory {
        fn open(&self, _: &PoolConfig) -> Result<Box<dyn Provider>, StorageError> {
            Ok(Box::new(FakeProvider(self.0.clone())))
        }
    }

    fn config(generation: u64, rscs: &[(&str, u64)]) -> NodeConfig {
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
            resources: rscs
                .iter()
                .map(|(n, size)| ResourceConfig {
                    drbd: None,
                    initial_sync: None,
                    name: n.to_string(),
                    layers: vec![LayerKind::Storage],
                    diskless: false,
                    volumes: vec![VolumeConfig {
                        number: 0,
                        size_kib: *size,
                        pool: "pool1".into(),
                        backing_name: format!("{n}_00000"),
                        restore_from: None,
                        adopt: false,
                        copy_from: None,
                        net_kib: None,
                    }],
                })
                .collect(),
        }
    }

    #[test]
    fn second_pass_changes_nothing() {
        let pool = Arc::new(FakePool::default());
        let f = Factory(pool.clone());
        let mut rec = Record::default();
        let rep = reconcile(&f, &mut rec, &config(1, &[("r1", 100), ("r2", 200)]));
        assert_eq!(rep.resources.len(), 2);
        assert_eq!(
            rep.resources[0].volumes[0].device_path.as_deref(),
            Some("/dev/fake/r1_00000")
        );
        assert_eq!(rep.pools["pool1"].free_capacity_kib, 1000);
        assert_eq!(pool.changes.lock().unwrap().len(), 2);
        let rep2 = reconcile(&f, &mut rec, &config(1, &[("r1", 100), ("r2", 200)]));
        assert_eq!(pool.changes.lock().unwrap().len(), 2, "idempotent");
        assert_eq!(rep, rep2);
        assert_eq!(rec.applied_generation(), 1);
    }

    /// A volume definition naming an existing volume (OverrideVlmId) takes it over as it is:
    /// not created, not grown; one too small is refused and left alone.
    #[test]
    fn an_existing_volume_named_by_the_administrator_is_adopted() {
        let pool = Arc::new(FakePool::default());
        pool.foreign.lock().unwrap().insert("legacy".into(), 500);
        pool.foreign.lock().unwrap().insert("tiny".into(), 10);
        let f = Factory(pool.clone());
        let mut rec = Record::default();
        let mut cfg = config(1, &[("legacy", 400), ("tiny", 100), ("fresh", 100)]);
        for r in &mut cfg.resources {
            r.volumes[0].backing_name = r.name.clone();
            r.volumes[0].adopt = true;
        }
        let rep = reconcile(&f, &mut rec, &cfg);
        let vol = |name: &str| rep.resource(name).unwrap().volumes[0].clone();
        assert_eq!(vol("legacy").error, None);
        assert_eq!(vol("legacy").usable_kib, Some(500), "kept its own size");
        let err = vol("tiny").error.unwrap();
        assert!(
            err.contains("cannot adopt volume 'tiny'") && err.contains("10 KiB"),
            "{err}"
        );
        assert_eq!(vol("fresh").error, None, "nothing to adopt: created");
        assert_eq!(
            *pool.changes.lock().unwrap(),
            vec!["adopt legacy", "create fresh 100"]
        );
        assert_eq!(pool.foreign.lock().unwrap().get("tiny"), Some(&10));
        // Adopted, it is ours: the next pass changes nothing.
        reconcile(&f, &mut rec, &cfg);
        assert_eq!(pool.changes.lock().unwrap().len(), 2);
    }

    #[test]
    fn grows_and_removes_what_is_no_longer_wanted() {
        let pool = Arc::new(FakePool::default());
        let f = Factory(pool.clone());
        let mut rec = Record::default();
        reconcile(&f, &mut rec, &config(1, &[("r1", 100), ("r2", 200)]));
        let rep = reconcile(&f, &mut rec, &config(2, &[("r1", 150)]));
        assert_eq!(
            *pool.changes.lock().unwrap(),
            vec![
                "create r1_00000 100",
                "create r2_00000 200",
                "grow r1_00000 150",
                "delete r2_00000"
            ]
        );
        assert!(rep.resource("r2").is_none());
        assert_eq!(rec.volumes.len(), 1);
        // Observation afterwards matches.
        let obs = observe(&f, &rec);
        assert_eq!(obs.resources.len(), 1);
        assert_eq!(obs.resources[0].volumes[0].usable_kib, Some(150));
    }

    #[test]
    fn converging_from_a_stale_record_never_removes() {
        let pool = Arc::new(FakePool::default());
        let f = Factory(pool.clone());
        let mut rec = Record::default();
        reconcile(&f, &mut rec, &config(1, &[("r1", 100), ("r2", 100)]));
        // The record says only r1 (e.g. it was written before r2 was added).
        let stale = config(1, &[("r1", 100)]);
        let rep = reconcile_with(&f, &mut rec, &stale, Removal::Never);
        assert!(!pool
            .changes
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("delete")));
        assert!(rep.resource("r2").is_some(), "the kept volume is reported");
        assert_eq!(pool.volumes.lock().unwrap().len(), 2);
        // The controller's configuration settles it.
        reconcile(&f, &mut rec, &stale);
        assert_eq!(pool.volumes.lock().unwrap().len(), 1);
    }

    #[test]
    fn failed_deletion_is_reported_as_still_present() {
        let pool = Arc::new(FakePool {
            fail_delete: true,
            ..Default::default()
        });
        let f = Factory(pool.clone());
        let mut rec = Record::default();
        reconcile(&f, &mut rec, &config(1, &[("r1", 100)]));
        let rep = reconcile(&f, &mut rec, &config(2, &[]));
        let r1 = rep.resource("r1").expect("leftover reported");
        assert!(r1.volumes[0]
            .error
            .as_ref()
            .unwrap()
            .contains("device busy"));
        assert_eq!(rec.known_pools.len(), 1);
    }

    struct WithDrbd(Arc<FakePool>, DrbdDriver);
    impl ProviderFactory for WithDrbd {
        fn open(&self, _: &PoolConfig) -> Result<Box<dyn Provider>, StorageError> {
            Ok(Box::new(FakeProvider(self.0.clone())))
        }
        fn drbd(&self) -> Option<&DrbdDriver> {
            Some(&self.1)
        }
    }

    /// A DRBD resource that cannot be taken down when it leaves (here: still open) keeps its
    /// backing volume and is taken down by a later reconcile, even one with no change.
    #[test]
    fn a_drbd_resource_that_could_not_go_down_is_retried() {
        use strata_exec::{Output, ScriptedRunner};
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(ScriptedRunner::new());
        let driver = DrbdDriver::new(
            runner.clone(),
            strata_drbd::adm::AdmConfig::default(),
            dir.path().to_path_buf(),
            None,
        )
        .unwrap();
        let pool = Arc::new(FakePool::default());
        pool.volumes.lock().unwrap().insert("r1_00000".into(), 100);
        let f = WithDrbd(pool.clone(), driver);
        // What the satellite applied before: r1 with DRBD over its volume.
        let mut before = config(1, &[("r1", 100)]);
        before.resources[0].layers = vec![LayerKind::Drbd, LayerKind::Storage];
        before.resources[0].drbd = Some(strata_drbd::config::Resource {
            name: "r1".into(),
            volumes: vec![strata_drbd::config::Volume {
                number: 0,
                minor: 1000,
            }],
            ..Default::default()
        });
        std::fs::write(f.1.res_file("r1"), "resource r1 {}\n").unwrap();
        let mut rec = Record {
            applied: Some(before),
            ..Default::default()
        };
        rec.volumes.insert(
            VolumeKey::new("pool1", "r1_00000"),
            OwnedVolume {
                resource: "r1".into(),
                volume_number: 0,
            },
        );

        runner.expect(
            &["drbdadm", "down", "r1"],
            Output::failed(
                11,
                "r1: State change failed: (-12) Device is held open by someone",
            ),
        );
        let rep = reconcile(&f, &mut rec, &config(2, &[]));
        let err = rep.resource("r1").expect("reported").volumes[0]
            .error
            .clone();
        assert!(err.unwrap().contains("held open"));
        assert!(pool.volumes.lock().unwrap().contains_key("r1_00000"));
        assert_eq!(rec.drbd_leaving.len(), 1);

        // Closed now: the same configuration again takes it down, then the volume goes.
        runner
            .expect(&["drbdadm", "down", "r1"], Output::ok(""))
            .expect(
                &["drbdadm", "--", "--force", "wipe-md", "r1/0"],
                Output::ok(""),
            );
        let rep = reconcile(&f, &mut rec, &config(2, &[]));
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
        assert!(rep.resource("r1").is_none(), "{rep:?}");
        assert!(!pool.volumes.lock().unwrap().contains_key("r1_00000"));
        assert!(rec.drbd_leaving.is_empty());
        assert!(!f.1.res_file("r1").exists());
    }

    /// DRBD grows to the smallest backing volume of all replicas: a node whose device is
    /// still short of the definition's size asks DRBD again with every pass (the peer's disk
    /// may have grown since), and reports the device's own size.
    #[test]
    fn a_drbd_device_short_of_its_size_is_resized_again() {
        use strata_exec::{Output, ScriptedRunner};
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(sys.join("drbd1000")).unwrap();
        let runner = Arc::new(ScriptedRunner::new());
        let driver = DrbdDriver::new(
            runner.clone(),
            strata_drbd::adm::AdmConfig::default(),
            dir.path().join("res"),
            None,
        )
        .unwrap()
        .with_sys_block(sys.clone());
        let pool = Arc::new(FakePool::default());
        let f = WithDrbd(pool.clone(), driver);
        let mut cfg = config(1, &[("r1", 300)]);
        cfg.resources[0].layers = vec![LayerKind::Drbd, LayerKind::Storage];
        cfg.resources[0].volumes[0].net_kib = Some(200);
        cfg.resources[0].drbd = Some(strata_drbd::config::Resource {
            name: "r1".into(),
            volumes: vec![strata_drbd::config::Volume {
                number: 0,
                minor: 1000,
            }],
            hosts: ["alpha", "beta"]
                .iter()
                .enumerate()
                .map(|(i, n)| strata_drbd::config::Host {
                    name: n.to_string(),
                    node_id: i as u32,
                    address: format!("127.0.0.{}", i + 2),
                    port: 7000,
                    diskless: false,
                })
                .collect(),
            ..Default::default()
        });
        pool.volumes.lock().unwrap().insert("r1_00000".into(), 300);
        let mut rec = Record::default();
        // The backing volume was grown and resized for already; DRBD stayed at 100 KiB
        // because the peer's disk had not grown yet.
        rec.drbd_sizes.insert(DrbdVolumeKey::new("r1", 0), 300);
        std::fs::write(sys.join("drbd1000/size"), "200\n").unwrap();
        runner
            .expect(&["drbdadm", "adjust", "r1"], Output::ok(""))
            .expect(&["drbdadm", "resize", "r1/0"], Output::ok(""));
        let rep = reconcile(&f, &mut rec, &cfg);
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
        let v = &rep.resource("r1").expect("reported").volumes[0];
        assert_eq!(v.usable_kib, Some(100), "the DRBD device's size: {v:?}");
        assert_eq!(v.device_path.as_deref(), Some("/dev/drbd1000"));
        assert!(v.error.is_none(), "{v:?}");
        // Grown now: no resize asked, the full size reported, by a poll too.
        std::fs::write(sys.join("drbd1000/size"), "400\n").unwrap();
        runner.expect(&["drbdadm", "adjust", "r1"], Output::ok(""));
        let rep = reconcile(&f, &mut rec, &cfg);
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
        assert_eq!(rep.resource("r1").unwrap().volumes[0].usable_kib, Some(200));
        let polled = observe(&f, &rec);
        assert_eq!(
            polled.resource("r1").unwrap().volumes[0].usable_kib,
            Some(200)
        );
    }

    #[test]
    fn unsupported_layers_are_refused_per_resource() {
        let pool = Arc::new(FakePool::default());
        let f = Factory(pool.clone());
        let mut rec = Record::default();
        let mut cfg = config(1, &[("r1", 100)]);
        cfg.resources[0].layers = vec![LayerKind::Drbd, LayerKind::Storage];
        let rep = reconcile(&f, &mut rec, &cfg);
        assert!(rep.resources[0].error.as_ref().unwrap().contains("DRBD"));
        assert!(pool.changes.lock().unwrap().is_empty());
    }

    #[test]
    fn backing_names() {
        assert_eq!(
            parse_backing_name("my_res_00012"),
            Some(OwnedVolume {
                resource: "my_res".into(),
                volume_number: 12
            })
        );
        assert_eq!(parse_backing_name("legacy"), None);
        assert_eq!(parse_backing_name("_00001"), None);
    }
}
