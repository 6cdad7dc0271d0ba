//! ZFS and ZFS_THIN through the zfs tool.
//!
//! A pool is a zpool or a file system dataset in one; its volumes are the zvols directly below
//! it. ZFS reserves the whole size of a zvol; ZFS_THIN creates sparse zvols (`-s`). Every zvol
//! the suite creates carries the user property [`OWNER_PROPERTY`]`=`[`OWNER_MARK`] from the
//! moment it exists (`zfs create -o`), and only zvols with it are ever listed, grown or
//! destroyed.
//!
//! Output is read with `-Hp` (tab separated, exact byte counts) and parsed by the pure functions
//! [`parse_volumes`] and [`parse_space`]. Every change is followed by one listing that gives
//! the real sizes.
//!
//! Snapshots are ZFS snapshots `<pool>/<volume>@<snapshot>` carrying the owner property too;
//! a restore is a clone of the snapshot (which then cannot be destroyed while the clone
//! exists), a rollback is `zfs rollback` (refused by zfs while newer snapshots exist).

use std::sync::Arc;

use strata_exec::{Cmd, CommandRunner, Output};
use strata_model::kinds::ProviderKind;
use strata_model::observed::PoolState;

use crate::{BackingVolume, Provider, SnapshotVolume, StorageError, OWNER_MARK};

/// The user property that marks the zvols this suite created.
pub const OWNER_PROPERTY: &str = "strata:owner";

const VOLUME_FIELDS: &str = "name,volsize,used,strata:owner";
const SPACE_FIELDS: &str = "used,available";
const SNAPSHOT_FIELDS: &str = "name,volsize,strata:owner";

/// Volume sizes are rounded up to this, in KiB: a multiple of the default `volblocksize` both
/// before OpenZFS 2.2 (8 KiB) and since (16 KiB); zfs refuses sizes that are not.
pub const VOLSIZE_GRANULE_KIB: u64 = 16;

/// One line of `zfs list -Hp -o name,volsize,used,strata:owner -t volume -r <pool>` that is a
/// zvol directly below the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZvolReport {
    /// The name below the pool (`r1_00000` for `tank/r1_00000`).
    pub name: String,
    pub volsize_kib: u64,
    pub used_kib: u64,
    /// The owner property; `None` where zfs prints `-` (not set).
    pub owner: Option<String>,
}

impl ZvolReport {
    pub fn owned(&self) -> bool {
        self.owner.as_deref() == Some(OWNER_MARK)
    }
}

fn parse_error(reason: String) -> StorageError {
    StorageError::Parse {
        tool: "zfs list".into(),
        reason,
    }
}

fn bytes(field: &str) -> Result<u64, StorageError> {
    field
        .trim()
        .parse()
        .map_err(|_| parse_error(format!("'{field}' is not a byte count")))
}

fn columns(line: &str, count: usize) -> Result<Vec<&str>, StorageError> {
    let cols: Vec<&str> = line.split('\t').collect();
    if cols.len() != count {
        return Err(parse_error(format!(
            "expected {count} tab separated columns, got '{line}'"
        )));
    }
    Ok(cols)
}

/// Parses `zfs list -Hp -o name,volsize,used,strata:owner -t volume -r <pool>`, keeping only the
/// zvols directly below `pool` (deeper ones belong to other datasets).
pub fn parse_volumes(out: &str, pool: &str) -> Result<Vec<ZvolReport>, StorageError> {
    let mut vols = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let cols = columns(line, 4)?;
        let Some(name) = cols[0]
            .strip_prefix(pool)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|n| !n.is_empty() && !n.contains('/'))
        else {
            continue;
        };
        let owner = cols[3].trim();
        vols.push(ZvolReport {
            name: name.to_string(),
            volsize_kib: bytes(cols[1])? / 1024,
            used_kib: bytes(cols[2])?.div_ceil(1024),
            owner: (owner != "-").then(|| owner.to_string()),
        });
    }
    Ok(vols)
}

/// Parses `zfs list -Hp -o name,volsize,strata:owner -t snapshot -r <pool>`: the snapshots
/// this suite took of the zvols directly below `pool`.
pub fn parse_snapshots(out: &str, pool: &str) -> Result<Vec<SnapshotVolume>, StorageError> {
    let mut snaps = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let cols = columns(line, 3)?;
        let Some((volume, snapshot)) = cols[0]
            .strip_prefix(pool)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.split_once('@'))
            .filter(|(v, s)| !v.is_empty() && !v.contains('/') && !s.is_empty())
        else {
            continue;
        };
        if cols[2].trim() != OWNER_MARK {
            continue;
        }
        snaps.push(SnapshotVolume {
            volume: volume.to_string(),
            snapshot: snapshot.to_string(),
            path: cols[0].to_string(),
            size_kib: bytes(cols[1])? / 1024,
        });
    }
    Ok(snaps)
}

/// Parses `zfs list -Hp -o used,available <dataset>` into (used, available) KiB.
pub fn parse_space(out: &str) -> Result<(u64, u64), StorageError> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return Err(parse_error(format!(
            "expected one line, got '{}'",
            out.trim()
        )));
    };
    let cols = columns(line, 2)?;
    Ok((bytes(cols[0])? / 1024, bytes(cols[1])? / 1024))
}

/// `size_kib` rounded up to whole [`VOLSIZE_GRANULE_KIB`], in bytes.
pub fn volsize_bytes(size_kib: u64) -> u64 {
    size_kib.div_ceil(VOLSIZE_GRANULE_KIB) * VOLSIZE_GRANULE_KIB * 1024
}

/// The tool's complaint, on one line.
fn complaint(out: &Output) -> String {
    let text = if out.stderr.trim().is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        format!("exit status {} and no message", out.status)
    } else {
        lines.join("; ")
    }
}

/// Refuses names that would be taken as options, hidden, paths, snapshots or bookmarks, or
/// several arguments.
fn check_name(name: &str) -> Result<(), StorageError> {
    if name.is_empty()
        || name.starts_with('-')
        || name.starts_with('.')
        || name.contains(['/', '@', '#', '%', '\0'])
        || name.chars().any(char::is_whitespace)
    {
        return Err(StorageError::InvalidName(format!(
            "'{name}' cannot name a ZFS volume: it must not be empty, start with '-' or '.', \
             or contain '/', '@', '#', '%' or whitespace"
        )));
    }
    Ok(())
}

pub struct ZfsPool {
    pool: String,
    thin: bool,
    runner: Arc<dyn CommandRunner>,
}

impl ZfsPool {
    pub fn new(pool: String, thin: bool, runner: Arc<dyn CommandRunner>) -> ZfsPool {
        ZfsPool { pool, thin, runner }
    }

    /// The pool may be a dataset path (`tank/strata`), but not an option, a snapshot or odd.
    fn check_config(&self) -> Result<(), StorageError> {
        let p = &self.pool;
        if p.is_empty()
            || p.starts_with(['-', '/'])
            || p.ends_with('/')
            || p.contains("//")
            || p.contains(['@', '#', '%', '\0'])
            || p.chars().any(char::is_whitespace)
        {
            return Err(StorageError::PoolConfig(format!(
                "'{p}' cannot name a ZFS pool or dataset"
            )));
        }
        Ok(())
    }

    fn dataset(&self, name: &str) -> String {
        format!("{}/{name}", self.pool)
    }

    fn zvol_path(&self, name: &str) -> String {
        format!("/dev/zvol/{}/{name}", self.pool)
    }

    /// Runs a listing of the pool; a failure means the pool cannot be used as configured.
    fn listing(&self, cmd: Cmd) -> Result<String, StorageError> {
        let out = self.runner.run_any(&cmd)?;
        if out.status != 0 {
            let said = complaint(&out);
            let problem = if said.contains("does not exist") {
                "not found on this node"
            } else {
                "cannot be used on this node"
            };
            return Err(StorageError::PoolConfig(format!(
                "ZFS pool or dataset '{}' {problem} (zfs reports: {said})",
                self.pool
            )));
        }
        Ok(out.stdout)
    }

    fn space(&self) -> Result<(u64, u64), StorageError> {
        let out = self.listing(
            Cmd::new("zfs")
                .args(["list", "-Hp", "-o", SPACE_FIELDS, "-t", "filesystem"])
                .arg(&self.pool),
        )?;
        parse_space(&out)
    }

    fn volumes(&self) -> Result<Vec<ZvolReport>, StorageError> {
        let out = self.listing(
            Cmd::new("zfs")
                .args(["list", "-Hp", "-o", VOLUME_FIELDS, "-t", "volume", "-r"])
                .arg(&self.pool),
        )?;
        parse_volumes(&out, &self.pool)
    }

    fn lookup(&self, name: &str) -> Result<Option<ZvolReport>, StorageError> {
        Ok(self.volumes()?.into_iter().find(|v| v.name == name))
    }

    fn ours(&self, vol: ZvolReport) -> Result<ZvolReport, StorageError> {
        if !vol.owned() {
            return Err(StorageError::NotOwned(self.dataset(&vol.name)));
        }
        Ok(vol)
    }

    fn volume(&self, vol: &ZvolReport) -> BackingVolume {
        let path = self.zvol_path(&vol.name);
        BackingVolume {
            name: vol.name.clone(),
            device: Some(path.clone()),
            path,
            size_kib: vol.volsize_kib,
            allocated_kib: vol.used_kib,
        }
    }

    fn create(&self, name: &str, size_kib: u64) -> Result<(), StorageError> {
        if size_kib == 0 {
            return Err(StorageError::ZeroSize {
                volume: name.into(),
            });
        }
        let mut cmd = Cmd::new("zfs")
            .args(["create", "-V"])
            .arg(volsize_bytes(size_kib).to_string())
            .arg("-o")
            .arg(format!("{OWNER_PROPERTY}={OWNER_MARK}"));
        if self.thin {
            cmd = cmd.arg("-s");
        }
        self.runner.run(&cmd.arg(self.dataset(name)))?;
        Ok(())
    }

    fn set_volsize(&self, name: &str, size_kib: u64) -> Result<(), StorageError> {
        self.runner.run(
            &Cmd::new("zfs")
                .arg("set")
                .arg(format!("volsize={}", volsize_bytes(size_kib)))
                .arg(self.dataset(name)),
        )?;
        Ok(())
    }

    fn read_back(&self, name: &str) -> Result<BackingVolume, StorageError> {
        let vol = self.lookup(name)?.ok_or_else(|| {
            parse_error(format!(
                "'{}' is not listed right after it was set up",
                self.dataset(name)
            ))
        })?;
        Ok(self.volume(&self.ours(vol)?))
    }
}

impl Provider for ZfsPool {
    fn kind(&self) -> ProviderKind {
        if self.thin {
            ProviderKind::ZfsThin
        } else {
            ProviderKind::Zfs
        }
    }

    fn check(&self) -> Result<(), StorageError> {
        self.check_config()?;
        self.space()?;
        Ok(())
    }

    fn state(&self) -> Result<PoolState, StorageError> {
        self.check_config()?;
        let (used, available) = self.space()?;
        Ok(PoolState {
            free_capacity_kib: available,
            total_capacity_kib: used + available,
            supports_snapshots: true,
            errors: Vec::new(),
        })
    }

    fn list(&self) -> Result<Vec<BackingVolume>, StorageError> {
        self.check_config()?;
        Ok(self
            .volumes()?
            .iter()
            .filter(|v| v.owned())
            .map(|v| self.volume(v))
            .collect())
    }

    fn ensure(
        &self,
        name: &str,
        size_kib: u64,
        current: Option<&BackingVolume>,
    ) -> Result<BackingVolume, StorageError> {
        self.check_config()?;
        check_name(name)?;
        let known = match current.filter(|c| c.name == name) {
            Some(c) => Some(c.clone()),
            None => match self.lookup(name)? {
                Some(vol) => Some(self.volume(&self.ours(vol)?)),
                None => None,
            },
        };
        match known {
            None => self.create(name, size_kib)?,
            // A zvol is a block device as long as it exists: there is nothing to activate.
            Some(v) if v.size_kib >= size_kib => return Ok(v),
            Some(_) => self.set_volsize(name, size_kib)?,
        }
        self.read_back(name)
    }

    fn delete(&self, name: &str, _current: Option<&BackingVolume>) -> Result<(), StorageError> {
        self.check_config()?;
        check_name(name)?;
        // Destroying loses data: the owner property is read again right before, whatever
        // `current` says.
        let Some(vol) = self.lookup(name)? else {
            return Ok(());
        };
        self.ours(vol)?;
        self.runner
            .run(&Cmd::new("zfs").arg("destroy").arg(self.dataset(name)))?;
        Ok(())
    }

    fn shrink(
        &self,
        name: &str,
        size_kib: u64,
        _current: &BackingVolume,
    ) -> Result<BackingVolume, StorageError> {
        self.check_config()?;
        check_name(name)?;
        let vol = self.lookup(name)?.ok_or_else(|| {
            StorageError::NotFound(format!("'{}' does not exist", self.dataset(name)))
        })?;
        self.ours(vol)?;
        self.set_volsize(name, size_kib)?;
        tracing::info!(zvol = %self.dataset(name), size_kib, "volume shrunk");
        self.read_back(name)
    }

    fn adopt(&self, name: &str, size_kib: u64) -> Result<Option<BackingVolume>, StorageError> {
        self.check_config()?;
        check_name(name)?;
        let Some(vol) = self.lookup(name)? else {
            return Ok(None);
        };
        if vol.owned() {
            return Ok(Some(self.volume(&vol)));
        }
        let v = self.volume(&vol);
        crate::check_adoptable_size(&self.dataset(name), v.size_kib, size_kib)?;
        self.runner.run(
            &Cmd::new("zfs")
                .arg("set")
                .arg(format!("{OWNER_PROPERTY}={OWNER_MARK}"))
                .arg(self.dataset(name)),
        )?;
        tracing::info!(zvol = %self.dataset(name), "volume adopted");
        Ok(Some(v))
    }

    fn snapshots(&self) -> Result<Vec<SnapshotVolume>, StorageError> {
        self.check_config()?;
        let out = self.listing(
            Cmd::new("zfs")
                .args(["list", "-Hp", "-o", SNAPSHOT_FIELDS, "-t", "snapshot", "-r"])
                .arg(&self.pool),
        )?;
        parse_snapshots(&out, &self.pool)
    }

    fn snapshot_create(
        &self,
        volume: &str,
        snapshot: &str,
    ) -> Result<SnapshotVolume, StorageError> {
        self.check_config()?;
        check_name(volume)?;
        check_snapshot_name(snapshot)?;
        if let Some(s) = self.find_snapshot(volume, snapshot)? {
            return Ok(s);
        }
        let Some(vol) = self.lookup(volume)? else {
            return Err(StorageError::NotFound(format!(
                "volume '{}' not found: there is nothing to take snapshot '{snapshot}' of",
                self.dataset(volume)
            )));
        };
        self.ours(vol)?;
        self.runner.run(
            &Cmd::new("zfs")
                .args(["snapshot", "-o"])
                .arg(format!("{OWNER_PROPERTY}={OWNER_MARK}"))
                .arg(self.snapshot_name(volume, snapshot)),
        )?;
        self.find_snapshot(volume, snapshot)?.ok_or_else(|| {
            parse_error(format!(
                "'{}' is not listed right after it was taken",
                self.snapshot_name(volume, snapshot)
            ))
        })
    }

    fn snapshot_delete(&self, volume: &str, snapshot: &str) -> Result<(), StorageError> {
        self.check_config()?;
        check_name(volume)?;
        check_snapshot_name(snapshot)?;
        if self.find_snapshot(volume, snapshot)?.is_none() {
            return Ok(());
        }
        let out = self.runner.run_any(
            &Cmd::new("zfs")
                .arg("destroy")
                .arg(self.snapshot_name(volume, snapshot)),
        )?;
        if out.status != 0 {
            let said = complaint(&out);
            if said.contains("dependent clones") {
                return Err(StorageError::HasDependents(format!(
                    "snapshot '{}' has volumes restored from it (zfs clones); delete those first ({said})",
                    self.snapshot_name(volume, snapshot)
                )));
            }
            return Err(StorageError::ToolFailed {
                command: format!("zfs destroy {}", self.snapshot_name(volume, snapshot)),
                said,
            });
        }
        Ok(())
    }

    fn snapshot_restore(
        &self,
        volume: &str,
        snapshot: &str,
        target: &str,
    ) -> Result<BackingVolume, StorageError> {
        self.check_config()?;
        check_name(volume)?;
        check_snapshot_name(snapshot)?;
        check_name(target)?;
        if self.lookup(target)?.is_some() {
            return Err(StorageError::AlreadyExists(format!(
                "cannot restore into '{}': it exists already",
                self.dataset(target)
            )));
        }
        if self.find_snapshot(volume, snapshot)?.is_none() {
            return Err(self.no_snapshot(volume, snapshot));
        }
        self.runner.run(
            &Cmd::new("zfs")
                .args(["clone", "-o"])
                .arg(format!("{OWNER_PROPERTY}={OWNER_MARK}"))
                .arg(self.snapshot_name(volume, snapshot))
                .arg(self.dataset(target)),
        )?;
        self.read_back(target)
    }

    fn snapshot_rollback(&self, volume: &str, snapshot: &str) -> Result<(), StorageError> {
        self.check_config()?;
        check_name(volume)?;
        check_snapshot_name(snapshot)?;
        if self.find_snapshot(volume, snapshot)?.is_none() {
            return Err(self.no_snapshot(volume, snapshot));
        }
        let out = self.runner.run_any(
            &Cmd::new("zfs")
                .arg("rollback")
                .arg(self.snapshot_name(volume, snapshot)),
        )?;
        if out.status != 0 {
            let said = complaint(&out);
            if said.contains("more recent snapshots") {
                return Err(StorageError::HasDependents(format!(
                    "volume '{volume}' has snapshots newer than '{snapshot}'; ZFS rolls back only to the latest: delete the newer ones first ({said})"
                )));
            }
            return Err(StorageError::ToolFailed {
                command: "zfs rollback".into(),
                said,
            });
        }
        Ok(())
    }
}

/// A snapshot name zfs takes after the `@`.
fn check_snapshot_name(name: &str) -> Result<(), StorageError> {
    check_name(name)?;
    if name.contains('@') {
        return Err(StorageError::InvalidName(format!(
            "'{name}' cannot name a ZFS snapshot"
        )));
    }
    Ok(())
}

impl ZfsPool {
    /// The answer for a snapshot this pool does not hold.
    fn no_snapshot(&self, volume: &str, snapshot: &str) -> StorageError {
        StorageError::SnapshotNotFound {
            volume: volume.into(),
            snapshot: snapshot.into(),
            place: format!("pool '{}'", self.pool),
        }
    }

    fn snapshot_name(&self, volume: &str, snapshot: &str) -> String {
        format!("{}@{snapshot}", self.dataset(volume))
    }

    fn find_snapshot(
        &self,
        volume: &str,
        snapshot: &str,
    ) -> Result<Option<SnapshotVolume>, StorageError> {
        Ok(self
            .snapshots()?
            .into_iter()
            .find(|s| s.volume == volume && s.snapshot == snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exec::ScriptedRunner;

    // ZFS is not installed on the development host: every fixture below is composed in the
    // format OpenZFS 2.x prints (`-H`: no header, one tab between columns; `-p`: exact bytes;
    // an unset property prints `-`); none is captured. A VM test should replace them.

    /// Composed in the format of OpenZFS 2.x `zfs list -Hp -o name,volsize,used,strata:owner
    /// -t volume -r tank`; not captured. A thick 1 GiB zvol (used includes its
    /// refreservation), a sparse 2 GiB one, a foreign zvol, and one in a child dataset.
    const ZFS_LIST: &str = concat!(
        "tank/r1_00000\t1073741824\t1109393408\tstrata_owned\n",
        "tank/r2_00000\t2147483648\t57344\tstrata_owned\n",
        "tank/vm-100-disk-0\t34359738368\t35433480192\t-\n",
        "tank/k8s/pvc-1\t1073741824\t1109393408\tstrata_owned\n",
    );

    /// Composed in the format of OpenZFS 2.x `zfs list -Hp -o used,available -t filesystem
    /// tank`; not captured.
    const ZFS_SPACE: &str = "38654705664\t68719476736\n";

    /// Composed from OpenZFS's message for a dataset that does not exist (`zfs list` exits
    /// with status 1); not captured.
    const ZFS_MISSING_STDERR: &str = "cannot open 'tank': dataset does not exist\n";

    fn list_argv(pool: &str) -> Vec<&str> {
        vec![
            "zfs",
            "list",
            "-Hp",
            "-o",
            "name,volsize,used,strata:owner",
            "-t",
            "volume",
            "-r",
            pool,
        ]
    }

    fn space_argv(pool: &str) -> Vec<&str> {
        vec![
            "zfs",
            "list",
            "-Hp",
            "-o",
            "used,available",
            "-t",
            "filesystem",
            pool,
        ]
    }

    fn zfs(runner: &Arc<ScriptedRunner>, thin: bool) -> ZfsPool {
        ZfsPool::new("tank".into(), thin, runner.clone())
    }

    fn with_line(line: &str) -> String {
        format!("{ZFS_LIST}{line}\n")
    }

    #[test]
    fn volume_listing_parses() {
        let vols = parse_volumes(ZFS_LIST, "tank").unwrap();
        assert_eq!(
            vols,
            vec![
                ZvolReport {
                    name: "r1_00000".into(),
                    volsize_kib: 1_048_576,
                    used_kib: 1_083_392,
                    owner: Some("strata_owned".into()),
                },
                ZvolReport {
                    name: "r2_00000".into(),
                    volsize_kib: 2_097_152,
                    used_kib: 56,
                    owner: Some("strata_owned".into()),
                },
                ZvolReport {
                    name: "vm-100-disk-0".into(),
                    volsize_kib: 33_554_432,
                    used_kib: 34_603_008,
                    owner: None,
                },
            ],
            "the zvol of the child dataset tank/k8s is not one of ours"
        );
        assert!(parse_volumes("", "tank").unwrap().is_empty());
        // A pool whose name is a prefix of another's does not see the other's volumes.
        assert!(parse_volumes("tank2/x\t8192\t8192\tstrata_owned\n", "tank")
            .unwrap()
            .is_empty());
        assert!(matches!(
            parse_volumes("tank/x\t8192\n", "tank"),
            Err(StorageError::Parse { .. })
        ));
        assert!(matches!(
            parse_volumes("tank/x\t8K\t8192\t-\n", "tank"),
            Err(StorageError::Parse { .. })
        ));
    }

    #[test]
    fn dataset_pools_parse() {
        let out = "tank/strata/r1_00000\t8388608\t8650752\tstrata_owned\n";
        let vols = parse_volumes(out, "tank/strata").unwrap();
        assert_eq!(vols.len(), 1);
        assert_eq!(vols[0].name, "r1_00000");
        assert_eq!(vols[0].volsize_kib, 8192);
    }

    #[test]
    fn space_parses() {
        assert_eq!(parse_space(ZFS_SPACE).unwrap(), (37_748_736, 67_108_864));
        assert!(parse_space("").is_err());
        assert!(parse_space("1\t2\n3\t4\n").is_err());
    }

    #[test]
    fn volsize_is_rounded_up_to_whole_blocks() {
        assert_eq!(volsize_bytes(1_048_576), 1_073_741_824);
        assert_eq!(volsize_bytes(1), 16_384);
        assert_eq!(volsize_bytes(16), 16_384);
        assert_eq!(volsize_bytes(17), 32_768);
        assert_eq!(volsize_bytes(1000) % 8192, 0);
    }

    #[test]
    fn list_returns_only_owned_volumes() {
        let runner = Arc::new(ScriptedRunner::new());
        runner.expect(&list_argv("tank"), Output::ok(ZFS_LIST));
        let vols = zfs(&runner, false).list().unwrap();
        assert_eq!(
            vols,
            vec![
                BackingVolume {
                    name: "r1_00000".into(),
                    path: "/dev/zvol/tank/r1_00000".into(),
                    device: Some("/dev/zvol/tank/r1_00000".into()),
                    size_kib: 1_048_576,
                    allocated_kib: 1_083_392,
                },
                BackingVolume {
                    name: "r2_00000".into(),
                    path: "/dev/zvol/tank/r2_00000".into(),
                    device: Some("/dev/zvol/tank/r2_00000".into()),
                    size_kib: 2_097_152,
                    allocated_kib: 56,
                },
            ]
        );
    }

    #[test]
    fn thick_create() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&list_argv("tank"), Output::ok(ZFS_LIST))
            .expect(
                &[
                    "zfs",
                    "create",
                    "-V",
                    "10502144",
                    "-o",
                    "strata:owner=strata_owned",
                    "tank/new_00000",
                ],
                Output::ok(""),
            )
            .expect(
                &list_argv("tank"),
                Output::ok(with_line(
                    "tank/new_00000\t10502144\t10797056\tstrata_owned",
                )),
            );
        let v = zfs(&runner, false)
            .ensure("new_00000", 10_250, None)
            .unwrap();
        assert_eq!(
            v,
            BackingVolume {
                name: "new_00000".into(),
                path: "/dev/zvol/tank/new_00000".into(),
                device: Some("/dev/zvol/tank/new_00000".into()),
                size_kib: 10_256,
                allocated_kib: 10_544,
            }
        );
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn thin_create_is_sparse() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&list_argv("tank"), Output::ok(""))
            .expect(
                &[
                    "zfs",
                    "create",
                    "-V",
                    "1073741824",
                    "-o",
                    "strata:owner=strata_owned",
                    "-s",
                    "tank/new_00000",
                ],
                Output::ok(""),
            )
            .expect(
                &list_argv("tank"),
                Output::ok("tank/new_00000\t1073741824\t12288\tstrata_owned\n"),
            );
        let p = zfs(&runner, true);
        assert_eq!(p.kind(), ProviderKind::ZfsThin);
        let v = p.ensure("new_00000", 1_048_576, None).unwrap();
        assert_eq!(v.size_kib, 1_048_576);
        assert_eq!(v.allocated_kib, 12);
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn grow_sets_volsize_and_reads_back() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(
                &["zfs", "set", "volsize=2147483648", "tank/r1_00000"],
                Output::ok(""),
            )
            .expect(
                &list_argv("tank"),
                Output::ok(ZFS_LIST.replace(
                    "tank/r1_00000\t1073741824\t1109393408",
                    "tank/r1_00000\t2147483648\t2218786816",
                )),
            );
        let p = zfs(&runner, false);
        let current = p.volume(&parse_volumes(ZFS_LIST, "tank").unwrap()[0]);
        let v = p.ensure("r1_00000", 2_097_152, Some(&current)).unwrap();
        assert_eq!(v.size_kib, 2_097_152);
        assert_eq!(v.allocated_kib, 2_166_784);
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn existing_volume_needs_no_change() {
        let runner = Arc::new(ScriptedRunner::new());
        runner.expect(&list_argv("tank"), Output::ok(ZFS_LIST));
        let p = zfs(&runner, true);
        let v = p.ensure("r2_00000", 2_097_152, None).unwrap();
        assert_eq!(v.device.as_deref(), Some("/dev/zvol/tank/r2_00000"));
        assert_eq!(runner.calls(), vec![list_argv("tank")]);
        // Known from `list` and asked smaller: nothing runs, nothing shrinks.
        assert_eq!(p.ensure("r2_00000", 4, Some(&v)).unwrap(), v);
        assert_eq!(runner.calls().len(), 1);
    }

    #[test]
    fn delete_destroys_an_owned_volume() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&list_argv("tank"), Output::ok(ZFS_LIST))
            .expect(&["zfs", "destroy", "tank/r1_00000"], Output::ok(""))
            .expect(&list_argv("tank"), Output::ok(ZFS_LIST));
        let p = zfs(&runner, false);
        p.delete("r1_00000", None).unwrap();
        // Absent: fine, nothing destroyed.
        p.delete("gone_00000", None).unwrap();
        assert!(runner.remaining().is_empty());
        assert_eq!(runner.calls().len(), 3);
    }

    #[test]
    fn foreign_volumes_are_never_changed() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&list_argv("tank"), Output::ok(ZFS_LIST))
            .expect(&list_argv("tank"), Output::ok(ZFS_LIST));
        let p = zfs(&runner, false);
        match p.delete("vm-100-disk-0", None) {
            Err(StorageError::NotOwned(what)) => assert_eq!(what, "tank/vm-100-disk-0"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            p.ensure("vm-100-disk-0", 64 * 1024 * 1024, None),
            Err(StorageError::NotOwned(_))
        ));
        assert_eq!(runner.calls(), vec![list_argv("tank"), list_argv("tank")]);
    }

    #[test]
    fn bad_names_are_refused_without_commands() {
        let runner = Arc::new(ScriptedRunner::new());
        let p = zfs(&runner, false);
        for name in ["", "-r", ".x", "a/b", "a b", "r1@snap", "r1#mark", "a%b"] {
            assert!(
                matches!(p.ensure(name, 4, None), Err(StorageError::InvalidName(_))),
                "{name:?}"
            );
            assert!(
                matches!(p.delete(name, None), Err(StorageError::InvalidName(_))),
                "{name:?}"
            );
        }
        for pool in ["", "-r", "/tank", "tank/", "tank@snap"] {
            let bad = ZfsPool::new(pool.into(), false, runner.clone());
            assert!(
                matches!(bad.check(), Err(StorageError::PoolConfig(_))),
                "{pool:?}"
            );
        }
        assert!(runner.calls().is_empty());
    }

    #[test]
    fn check_names_a_missing_pool() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&space_argv("tank"), Output::failed(1, ZFS_MISSING_STDERR))
            .expect(&space_argv("tank"), Output::ok(ZFS_SPACE));
        let p = zfs(&runner, false);
        assert_eq!(
            p.check().unwrap_err().to_string(),
            "storage pool configuration: ZFS pool or dataset 'tank' not found on this node \
             (zfs reports: cannot open 'tank': dataset does not exist)"
        );
        p.check().unwrap();
    }

    #[test]
    fn check_refuses_a_zvol_as_pool() {
        let runner = Arc::new(ScriptedRunner::new());
        // Composed from OpenZFS's message for a dataset of the wrong type; not captured.
        runner.expect(
            &space_argv("tank/vol"),
            Output::failed(
                1,
                "cannot open 'tank/vol': operation not applicable to datasets of this type\n",
            ),
        );
        let p = ZfsPool::new("tank/vol".into(), false, runner.clone());
        assert_eq!(
            p.check().unwrap_err().to_string(),
            "storage pool configuration: ZFS pool or dataset 'tank/vol' cannot be used on this \
             node (zfs reports: cannot open 'tank/vol': operation not applicable to datasets of \
             this type)"
        );
    }

    #[test]
    fn state_is_used_plus_available() {
        let runner = Arc::new(ScriptedRunner::new());
        runner.expect(&space_argv("tank"), Output::ok(ZFS_SPACE));
        assert_eq!(
            zfs(&runner, false).state().unwrap(),
            PoolState {
                free_capacity_kib: 67_108_864,
                total_capacity_kib: 104_857_600,
                supports_snapshots: true,
                errors: Vec::new(),
            }
        );
        assert_eq!(zfs(&runner, false).kind(), ProviderKind::Zfs);
    }

    /// Composed in the format of OpenZFS 2.x `zfs list -Hp -o name,volsize,strata:owner -t
    /// snapshot -r tank`; not captured. One snapshot of ours, one of a foreign zvol, one in a
    /// child dataset.
    const ZFS_SNAPSHOTS: &str = concat!(
        "tank/r1_00000@s1\t1073741824\tstrata_owned\n",
        "tank/vm-100-disk-0@daily\t34359738368\t-\n",
        "tank/k8s/pvc-1@s1\t1073741824\tstrata_owned\n",
    );

    fn snap_argv() -> Vec<&'static str> {
        vec![
            "zfs",
            "list",
            "-Hp",
            "-o",
            "name,volsize,strata:owner",
            "-t",
            "snapshot",
            "-r",
            "tank",
        ]
    }

    #[test]
    fn snapshots_parse_and_only_ours_count() {
        let s = parse_snapshots(ZFS_SNAPSHOTS, "tank").unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].volume.as_str(), s[0].snapshot.as_str()),
            ("r1_00000", "s1")
        );
        assert_eq!(s[0].size_kib, 1 << 20);
        assert_eq!(s[0].path, "tank/r1_00000@s1");
        assert!(parse_snapshots("tank/x@y\t12\n", "tank").is_err());
    }

    #[test]
    fn snapshot_take_restore_rollback_delete() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            // take s2 of r1: not there yet, the volume is ours
            .expect(&snap_argv(), Output::ok(ZFS_SNAPSHOTS))
            .expect(&list_argv("tank"), Output::ok(ZFS_LIST))
            .expect(
                &["zfs", "snapshot", "-o", "strata:owner=strata_owned", "tank/r1_00000@s2"],
                Output::ok(""),
            )
            .expect(
                &snap_argv(),
                Output::ok(format!("{ZFS_SNAPSHOTS}tank/r1_00000@s2\t1073741824\tstrata_owned\n")),
            )
            // restore s1 into r3
            .expect(&list_argv("tank"), Output::ok(ZFS_LIST))
            .expect(&snap_argv(), Output::ok(ZFS_SNAPSHOTS))
            .expect(
                &[
                    "zfs",
                    "clone",
                    "-o",
                    "strata:owner=strata_owned",
                    "tank/r1_00000@s1",
                    "tank/r3_00000",
                ],
                Output::ok(""),
            )
            .expect(
                &list_argv("tank"),
                Output::ok(with_line("tank/r3_00000\t1073741824\t8192\tstrata_owned")),
            )
            // rollback to s1 while a newer snapshot exists: zfs refuses, we say why
            .expect(&snap_argv(), Output::ok(ZFS_SNAPSHOTS))
            .expect(
                &["zfs", "rollback", "tank/r1_00000@s1"],
                Output::failed(
                    1,
                    "cannot rollback to 'tank/r1_00000@s1': more recent snapshots or bookmarks exist\n",
                ),
            )
            // delete s1 while r3 is its clone: refused with the reason
            .expect(&snap_argv(), Output::ok(ZFS_SNAPSHOTS))
            .expect(
                &["zfs", "destroy", "tank/r1_00000@s1"],
                Output::failed(1, "cannot destroy 'tank/r1_00000@s1': snapshot has dependent clones\n"),
            )
            // a foreign snapshot name is never destroyed: not ours, so nothing to do
            .expect(&snap_argv(), Output::ok(ZFS_SNAPSHOTS));
        let p = zfs(&runner, true);
        let taken = p.snapshot_create("r1_00000", "s2").unwrap();
        assert_eq!(taken.path, "tank/r1_00000@s2");
        let v = p.snapshot_restore("r1_00000", "s1", "r3_00000").unwrap();
        assert_eq!(v.device.as_deref(), Some("/dev/zvol/tank/r3_00000"));
        let e = p.snapshot_rollback("r1_00000", "s1").unwrap_err();
        assert!(e.to_string().contains("newer than 's1'"), "{e}");
        let e = p.snapshot_delete("r1_00000", "s1").unwrap_err();
        assert!(e.to_string().contains("restored from it"), "{e}");
        p.snapshot_delete("vm-100-disk-0", "daily").unwrap();
        assert!(runner.remaining().is_empty(), "{:?}", runner.remaining());
        assert!(p.snapshot_create("r1_00000", "a@b").is_err());
    }
}
