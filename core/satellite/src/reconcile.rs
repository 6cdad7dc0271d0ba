//! Making a node's desired state true, and observing it.
//!
//! Reconciliation is level-triggered and idempotent: for every volume of the configuration the
//! provider is asked to `ensure` it (which does nothing when it already matches), and every
//! volume this satellite created that is no longer wanted is deleted. Running it twice with the
//! same configuration runs no changing command the second time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use strata_agent_api::{NodeConfig, PoolConfig, PoolProbe, Report, ResourceConfig};
use strata_exec::CommandRunner;
use strata_model::kinds::LayerKind;
use strata_model::observed::{ResourceState, VolumeState};
use strata_storage::{BackingVolume, Provider, StorageError};

use crate::drbd::{device_path, DrbdDriver};
use crate::record::{OwnedVolume, Record};

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

pub const DISK_UP_TO_DATE: &str = "UpToDate";
pub const DISK_DISKLESS: &str = "Diskless";
pub const DISK_FAILED: &str = "Failed";

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

fn volume_key(pool: &str, backing: &str) -> String {
    format!("{pool}/{backing}")
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
            DISK_UP_TO_DATE
        } else {
            DISK_FAILED
        }
        .to_string(),
        error: (!attached).then(|| format!("{} is not attached to a block device", v.path)),
    }
}

/// Whether any device of the resource is in use; `None` when it has no device.
fn in_use(rs: &ResourceState) -> Option<bool> {
    let devices: Vec<&String> = rs
        .volumes
        .iter()
        .filter_map(|v| v.device_path.as_ref())
        .collect();
    if devices.is_empty() {
        return None;
    }
    Some(devices.iter().any(|d| strata_storage::device_in_use(d)))
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
        disk_state: DISK_FAILED.into(),
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
fn owner_of(record: &Record, key: &str, name: &str) -> OwnedVolume {
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

/// Applies `cfg` and returns what the node looks like afterwards. The record is updated with
/// what was created and removed; the caller persists it.
fn drbd_size_key(rsc: &str, vol: u32) -> String {
    format!("{rsc}/{vol}")
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
    sizes: &mut BTreeMap<String, u64>,
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
    if let Err(e) = driver.apply(node, d, &disks, &known_md, &fresh, &grown) {
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

/// Makes the node's snapshots what `cfg` asks: I/O of DRBD resources suspended where asked,
/// missing copies taken where asked (only then: a copy taken later would be of another
/// moment), I/O resumed where no longer asked, and copies this node took that are no longer
/// wanted removed. Reports, per wanted snapshot, which copies exist.
#[allow(clippy::too_many_arguments)]
fn reconcile_snapshots(
    factory: &dyn ProviderFactory,
    cfg: &NodeConfig,
    record: &mut Record,
    pools: &BTreeMap<String, OpenPool>,
    removal: Removal,
    report: &mut Report,
    keep_down: &BTreeSet<String>,
    mut errors: BTreeMap<(String, String), String>,
) {
    let want_suspended: BTreeSet<String> = cfg
        .snapshots
        .iter()
        .filter(|s| s.suspend_io)
        .map(|s| s.resource.clone())
        .collect();
    if let Some(driver) = factory.drbd() {
        for rsc in want_suspended.difference(&record.io_suspended.clone()) {
            match driver.set_io_suspended(&cfg.node_name, rsc, true) {
                Ok(()) => {
                    record.io_suspended.insert(rsc.clone());
                }
                Err(e) => {
                    for s in cfg.snapshots.iter().filter(|s| &s.resource == rsc) {
                        errors.insert(
                            (s.resource.clone(), s.name.clone()),
                            format!("cannot suspend I/O: {e}"),
                        );
                    }
                }
            }
        }
    }
    // Copies exist as the providers list them.
    let mut held: BTreeMap<String, Vec<strata_storage::SnapshotVolume>> = BTreeMap::new();
    for (name, pool) in pools {
        if let Ok(p) = &pool.provider {
            match p.snapshots() {
                Ok(list) => {
                    held.insert(name.clone(), list);
                }
                Err(e) => report
                    .errors
                    .push(format!("storage pool '{name}': cannot list snapshots: {e}")),
            }
        }
    }
    let has = |held: &BTreeMap<String, Vec<strata_storage::SnapshotVolume>>,
               pool: &str,
               volume: &str,
               snap: &str| {
        held.get(pool)
            .is_some_and(|l| l.iter().any(|x| x.volume == volume && x.snapshot == snap))
    };
    for s in cfg.snapshots.iter().filter(|s| s.take) {
        if errors.contains_key(&(s.resource.clone(), s.name.clone())) {
            continue; // its I/O is not suspended: a copy now would not match the others
        }
        for v in &s.volumes {
            if has(&held, &v.pool, &v.backing_name, &s.name) {
                continue;
            }
            let Some(Ok(p)) = pools.get(&v.pool).map(|p| p.provider.as_ref()) else {
                errors.insert(
                    (s.resource.clone(), s.name.clone()),
                    format!("storage pool '{}' is not usable on this node", v.pool),
                );
                continue;
            };
            match p.snapshot_create(&v.backing_name, &s.name) {
                Ok(taken) => held.entry(v.pool.clone()).or_default().push(taken),
                Err(e) => {
                    errors.insert(
                        (s.resource.clone(), s.name.clone()),
                        format!("volume {}: {e}", v.number),
                    );
                }
            }
        }
    }
    if let Some(driver) = factory.drbd() {
        for rsc in record.io_suspended.clone().difference(&want_suspended) {
            match driver.set_io_suspended(&cfg.node_name, rsc, false) {
                Ok(()) => {
                    record.io_suspended.remove(rsc);
                }
                Err(e) => report
                    .errors
                    .push(format!("resource '{rsc}': cannot resume I/O: {e}")),
            }
        }
    }
    if removal == Removal::Allowed {
        for (pool, list) in &held {
            let Some(Ok(p)) = pools.get(pool).map(|p| p.provider.as_ref()) else {
                continue;
            };
            for x in list {
                let wanted = cfg.snapshots.iter().any(|s| {
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
                    Err(e) => report.errors.push(format!(
                        "snapshot '{}' of '{}' could not be deleted: {e}",
                        x.snapshot, x.volume
                    )),
                }
            }
        }
    }
    for s in &cfg.snapshots {
        report.snapshots.push(strata_agent_api::SnapshotReport {
            resource: s.resource.clone(),
            name: s.name.clone(),
            volumes: s
                .volumes
                .iter()
                .filter(|v| has(&held, &v.pool, &v.backing_name, &s.name))
                .map(|v| v.number)
                .collect(),
            suspended: record.io_suspended.contains(&s.resource),
            error: errors.remove(&(s.resource.clone(), s.name.clone())),
            rollback_down: s
                .rollback
                .filter(|_| keep_down.contains(&s.resource))
                .map(|r| r.id),
            rollback_done: record.rollbacks_done.get(&rollback_key(s)).copied(),
        });
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

fn rollback_key(s: &strata_agent_api::SnapshotConfig) -> String {
    format!("{}/{}", s.resource, s.name)
}

/// Runs the rollbacks `cfg` asks for, before the volumes are looked at: DRBD down for every
/// resource being rolled back (and kept down while `down_only`), then, once per rollback id,
/// the volumes given the snapshot's content. Answers the resources whose DRBD stays down in
/// this pass, and the errors by snapshot.
fn reconcile_rollbacks(
    factory: &dyn ProviderFactory,
    cfg: &NodeConfig,
    record: &mut Record,
) -> (BTreeSet<String>, BTreeMap<(String, String), String>) {
    let mut keep_down = BTreeSet::new();
    let mut errors = BTreeMap::new();
    record
        .rollbacks_done
        .retain(|k, _| cfg.snapshots.iter().any(|s| &rollback_key(s) == k));
    for s in &cfg.snapshots {
        let Some(rb) = s.rollback else {
            continue;
        };
        let key = rollback_key(s);
        if record.rollbacks_done.get(&key) == Some(&rb.id) {
            continue; // rolled back already; DRBD comes up as usual
        }
        let fail = |errors: &mut BTreeMap<(String, String), String>, e: String| {
            errors.insert((s.resource.clone(), s.name.clone()), e);
        };
        if let Some(driver) = factory.drbd() {
            if let Err(e) = driver.take_down(&cfg.node_name, &s.resource) {
                fail(&mut errors, format!("cannot take DRBD down: {e}"));
                continue;
            }
        }
        if rb.down_only {
            // Nothing may hold the volumes now (a mounted storage-only volume, say).
            if let Some(busy) = busy_volume(factory, cfg, s) {
                fail(&mut errors, busy);
                continue;
            }
            keep_down.insert(s.resource.clone());
            continue;
        }
        let mut ok = true;
        for v in &s.volumes {
            let Some(pool) = cfg.pools.iter().find(|p| p.name == v.pool) else {
                fail(
                    &mut errors,
                    format!("storage pool '{}' is not configured", v.pool),
                );
                ok = false;
                break;
            };
            let rolled = factory
                .open(pool)
                .and_then(|p| p.snapshot_rollback(&v.backing_name, &s.name));
            if let Err(e) = rolled {
                fail(&mut errors, format!("volume {}: {e}", v.number));
                ok = false;
                break;
            }
        }
        if ok {
            tracing::info!(resource = %s.resource, snapshot = %s.name, "rolled back");
            record.rollbacks_done.insert(key, rb.id);
        } else {
            keep_down.insert(s.resource.clone());
        }
    }
    (keep_down, errors)
}

pub fn reconcile(factory: &dyn ProviderFactory, record: &mut Record, cfg: &NodeConfig) -> Report {
    reconcile_with(factory, record, cfg, Removal::Allowed)
}

pub fn reconcile_with(
    factory: &dyn ProviderFactory,
    record: &mut Record,
    cfg: &NodeConfig,
    removal: Removal,
) -> Report {
    let mut report = Report {
        node_name: Some(cfg.node_name.clone()),
        applied_generation: cfg.generation,
        ..Default::default()
    };
    // Rollbacks first: the volumes are listed after they changed.
    let (keep_down, rollback_errors) = if removal == Removal::Allowed {
        reconcile_rollbacks(factory, cfg, record)
    } else {
        Default::default()
    };
    let all_pools = pool_union(cfg, record);
    let mut pools = open_pools(factory, &all_pools, &mut report);
    for old in &record.known_pools {
        if !cfg.pools.iter().any(|p| p.name == old.name) {
            report.pools.remove(&old.name);
        }
    }
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for r in &cfg.resources {
        let mut rs = ResourceState {
            name: r.name.clone(),
            ..Default::default()
        };
        if let Some(e) = unsupported_layers(&r.layers, factory.drbd().is_some()) {
            rs.error = Some(e);
            report.resources.push(rs);
            // Its volumes stay as they are until the resource is fixed or deleted.
            for v in &r.volumes {
                wanted.insert(volume_key(&v.pool, &v.backing_name));
            }
            continue;
        }
        for v in &r.volumes {
            if r.diskless {
                rs.volumes.push(VolumeState {
                    volume_number: v.number,
                    disk_state: DISK_DISKLESS.into(),
                    ..Default::default()
                });
                continue;
            }
            let key = volume_key(&v.pool, &v.backing_name);
            wanted.insert(key.clone());
            let Some(pool) = pools.get_mut(&v.pool) else {
                rs.volumes.push(failed(
                    v.number,
                    format!("storage pool '{}' is not configured on this node", v.pool),
                ));
                continue;
            };
            let provider = match &pool.provider {
                Ok(p) => p,
                Err(e) => {
                    rs.volumes
                        .push(failed(v.number, format!("storage pool '{}': {e}", v.pool)));
                    continue;
                }
            };
            let mut current = pool.volumes.get(&v.backing_name).cloned();
            if current.is_none() {
                match from_origin(provider.as_ref(), &pool.volumes, v) {
                    Ok(made) => current = made,
                    Err(e) => {
                        rs.volumes.push(failed(v.number, e));
                        continue;
                    }
                }
            }
            let asked_before = record.volume_sizes.get(&key).copied();
            if let (Some(cur), Some(before), None) = (&current, asked_before, &r.drbd) {
                if v.size_kib < before {
                    if cur
                        .device
                        .as_deref()
                        .is_some_and(strata_storage::device_in_use)
                    {
                        rs.volumes.push(failed(
                            v.number,
                            format!(
                                "volume '{}' is in use; it shrinks to {} KiB once nothing uses it",
                                v.backing_name, v.size_kib
                            ),
                        ));
                        continue;
                    }
                    match provider.shrink(&v.backing_name, v.size_kib, cur) {
                        Ok(bv) => current = Some(bv),
                        Err(e) => {
                            rs.volumes.push(failed(v.number, e.to_string()));
                            continue;
                        }
                    }
                }
            }
            match provider.ensure(&v.backing_name, v.size_kib, current.as_ref()) {
                Ok(bv) => {
                    record.volume_sizes.insert(key.clone(), v.size_kib);
                    record.volumes.insert(
                        key,
                        OwnedVolume {
                            resource: r.name.clone(),
                            volume_number: v.number,
                        },
                    );
                    rs.volumes.push(up_to_date(v.number, &bv));
                    pool.volumes.insert(bv.name.clone(), bv);
                }
                Err(e) => rs.volumes.push(failed(v.number, e.to_string())),
            }
        }
        if let (Some(d), Some(driver), false) =
            (&r.drbd, factory.drbd(), keep_down.contains(&r.name))
        {
            apply_drbd(
                driver,
                &cfg.node_name,
                r,
                d,
                &mut rs,
                &mut record.drbd_sizes,
            );
        }
        rs.in_use = in_use(&rs);
        report.resources.push(rs);
    }
    reconcile_snapshots(
        factory,
        cfg,
        record,
        &pools,
        removal,
        &mut report,
        &keep_down,
        rollback_errors,
    );
    // DRBD resources that went (or lost the layer) come down before their volumes go.
    // Those that could not be taken down before are tried again.
    if let (Some(driver), Removal::Allowed) = (factory.drbd(), removal) {
        let mut leaving: Vec<ResourceConfig> = std::mem::take(&mut record.drbd_leaving);
        for r in record.applied.iter().flat_map(|old| old.resources.iter()) {
            if !leaving.iter().any(|l| l.name == r.name) {
                leaving.push(r.clone());
            }
        }
        for gone in leaving.iter().filter(|o| o.drbd.is_some()) {
            let still = cfg
                .resources
                .iter()
                .any(|r| r.name == gone.name && r.drbd.is_some());
            if still {
                continue;
            }
            let disks: BTreeMap<u32, String> = gone
                .volumes
                .iter()
                .filter_map(|v| {
                    let dev = pools
                        .get(&v.pool)?
                        .volumes
                        .get(&v.backing_name)?
                        .device
                        .clone()?;
                    Some((v.number, dev))
                })
                .collect();
            let d = gone.drbd.as_ref().expect("filtered on drbd");
            let removed = driver.remove(&cfg.node_name, d, &disks);
            if removed.is_ok() {
                let prefix = format!("{}/", gone.name);
                record.drbd_sizes.retain(|k, _| !k.starts_with(&prefix));
            }
            if let Err(e) = removed {
                record.drbd_leaving.push(gone.clone());
                // Keep the backing volumes: DRBD still holds them.
                for v in &gone.volumes {
                    wanted.insert(volume_key(&v.pool, &v.backing_name));
                    report_leftover(
                        &mut report,
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
    let mut still_holding: BTreeSet<String> = BTreeSet::new();
    for (pool_name, pool) in &mut pools {
        let Ok(provider) = &pool.provider else {
            continue;
        };
        let names: Vec<String> = pool.volumes.keys().cloned().collect();
        for name in names {
            let key = volume_key(pool_name, &name);
            if wanted.contains(&key) {
                continue;
            }
            let current = pool.volumes.get(&name).cloned();
            if removal == Removal::Never {
                let owner = owner_of(record, &key, &name);
                report_leftover(
                    &mut report,
                    &owner,
                    "kept until the controller confirms it should go".into(),
                );
                still_holding.insert(pool_name.clone());
                continue;
            }
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
                None => provider.delete(&name, current.as_ref()),
            };
            match result {
                Ok(()) => {
                    record.volumes.remove(&key);
                    record.volume_sizes.remove(&key);
                    pool.volumes.remove(&name);
                    tracing::info!(pool = %pool_name, volume = %name, "deleted");
                }
                Err(e) => {
                    let owner = owner_of(record, &key, &name);
                    report_leftover(&mut report, &owner, format!("could not be deleted: {e}"));
                    still_holding.insert(pool_name.clone());
                }
            }
        }
    }
    record.known_pools = all_pools
        .into_iter()
        .filter(|p| cfg.pools.iter().any(|c| c.name == p.name) || still_holding.contains(&p.name))
        .collect();
    record.node_name = Some(cfg.node_name.clone());
    record.cluster_id = Some(cfg.cluster_id.clone());
    record.applied = Some(cfg.clone());
    report
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
    let mut wanted: BTreeSet<String> = BTreeSet::new();
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
                    disk_state: DISK_DISKLESS.into(),
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
            let owner = record
                .volumes
                .get(&key)
                .cloned()
                .or_else(|| parse_backing_name(name))
                .unwrap_or(OwnedVolume {
                    resource: name.clone(),
                    volume_number: 0,
                });
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
            "pool1/r1_00000".into(),
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
        rec.drbd_sizes.insert("r1/0".into(), 300);
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
