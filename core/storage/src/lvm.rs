//! LVM and LVM_THIN through the lvm2 tools.
//!
//! A thick pool is a volume group; a thin pool is a thin pool LV inside one. Every LV the suite
//! creates carries the tag [`OWNER_MARK`] from the moment it exists (`lvcreate --addtag`), and
//! only tagged LVs are ever listed, grown or removed, so the LVs of other users of the same
//! volume group are left alone.
//!
//! The state of the volume group is read with report commands whose output does not depend on
//! column widths or unit suffixes (`--noheadings --units k --nosuffix --separator ;`), parsed by
//! the pure functions [`parse_vgs`] and [`parse_lvs`]. `lvcreate` and `lvextend` round sizes up to
//! whole extents themselves, so every change is followed by one `lvs` that gives the real size.

use std::sync::Arc;

use strata_exec::{Cmd, CommandRunner, Output};
use strata_model::kinds::ProviderKind;
use strata_model::observed::PoolState;

use crate::{BackingVolume, Provider, SnapshotVolume, StorageError, OWNER_MARK, SNAPSHOT_MARK};

/// Options that make lvm2's reports machine-readable: no header, sizes in KiB without suffix,
/// columns separated by [`SEPARATOR`].
const REPORT_OPTIONS: [&str; 5] = ["--noheadings", "--units", "k", "--nosuffix", "--separator"];
const SEPARATOR: &str = ";";
const VG_FIELDS: &str = "vg_name,vg_size,vg_free";
/// Prefix of the tag naming the volume a snapshot was taken of (the LV's own origin field
/// empties when that volume is removed; the snapshot stays).
const ORIGIN_TAG: &str = "strata_origin:";
const LV_FIELDS: &str = "lv_name,lv_size,lv_attr,data_percent,pool_lv,lv_tags";

/// One line of `vgs -o vg_name,vg_size,vg_free`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgReport {
    pub name: String,
    pub size_kib: u64,
    pub free_kib: u64,
}

/// One line of `lvs -o lv_name,lv_size,lv_attr,data_percent,pool_lv,lv_tags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvReport {
    pub name: String,
    pub size_kib: u64,
    /// The ten `lv_attr` characters, e.g. `-wi-ao----`.
    pub attr: String,
    /// Data in use, in hundredths of a percent of the size; 0 where lvm prints none (thick LVs,
    /// inactive thin LVs).
    pub data_hundredths: u64,
    /// The thin pool of a thin LV, empty otherwise.
    pub pool_lv: String,
    pub tags: Vec<String>,
}

impl LvReport {
    pub fn owned(&self) -> bool {
        self.tags.iter().any(|t| t == OWNER_MARK)
    }

    /// The volume this LV is a snapshot of, when it is a snapshot this suite took.
    pub fn snapshot_of(&self) -> Option<&str> {
        if !self.tags.iter().any(|t| t == SNAPSHOT_MARK) {
            return None;
        }
        self.tags.iter().find_map(|t| t.strip_prefix(ORIGIN_TAG))
    }

    /// The fifth `lv_attr` character is the state: `a` when active.
    pub fn active(&self) -> bool {
        self.attr.chars().nth(4) == Some('a')
    }

    pub fn is_thin_volume(&self) -> bool {
        self.attr.starts_with('V')
    }

    pub fn is_thin_pool(&self) -> bool {
        self.attr.starts_with('t')
    }

    /// Space taken in the pool: the whole size for thick LVs, the mapped part for thin ones.
    pub fn allocated_kib(&self) -> u64 {
        if self.is_thin_volume() {
            share(self.size_kib, self.data_hundredths)
        } else {
            self.size_kib
        }
    }
}

/// `hundredths` hundredths of a percent of `kib`, rounded down.
fn share(kib: u64, hundredths: u64) -> u64 {
    (u128::from(kib) * u128::from(hundredths.min(10_000)) / 10_000) as u64
}

fn parse_error(tool: &str, reason: String) -> StorageError {
    StorageError::Parse {
        tool: tool.to_string(),
        reason,
    }
}

/// A size printed with `--units k --nosuffix` (`1048576.00`), in whole KiB rounded down.
pub fn parse_kib(field: &str) -> Option<u64> {
    let field = field.trim();
    let (whole, fraction) = field.split_once('.').unwrap_or((field, "0"));
    if whole.is_empty() || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    whole.parse().ok()
}

/// A percentage printed by lvm (`12.50`) in hundredths of a percent; an empty field is 0.
pub fn parse_percent(field: &str) -> Option<u64> {
    let field = field.trim();
    if field.is_empty() {
        return Some(0);
    }
    let (whole, fraction) = field.split_once('.').unwrap_or((field, ""));
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let mut digits = fraction.chars().chain(std::iter::repeat('0')).take(2);
    let tens = digits.next()?.to_digit(10)? as u64;
    let ones = digits.next()?.to_digit(10)? as u64;
    Some(whole * 100 + tens * 10 + ones)
}

fn fields<'a>(tool: &str, line: &'a str, count: usize) -> Result<Vec<&'a str>, StorageError> {
    let fields: Vec<&str> = line.trim().split(SEPARATOR).map(str::trim).collect();
    if fields.len() != count {
        return Err(parse_error(
            tool,
            format!(
                "expected {count} columns separated by '{SEPARATOR}', got '{}'",
                line.trim()
            ),
        ));
    }
    Ok(fields)
}

fn kib(tool: &str, field: &str) -> Result<u64, StorageError> {
    parse_kib(field).ok_or_else(|| parse_error(tool, format!("'{field}' is not a size in KiB")))
}

/// Parses `vgs --noheadings --units k --nosuffix --separator ; -o vg_name,vg_size,vg_free`.
pub fn parse_vgs(out: &str) -> Result<Vec<VgReport>, StorageError> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f = fields("vgs", line, 3)?;
            Ok(VgReport {
                name: f[0].to_string(),
                size_kib: kib("vgs", f[1])?,
                free_kib: kib("vgs", f[2])?,
            })
        })
        .collect()
}

/// Parses `lvs --noheadings --units k --nosuffix --separator ; -o
/// lv_name,lv_size,lv_attr,data_percent,pool_lv,lv_tags`. Tags are comma separated.
pub fn parse_lvs(out: &str) -> Result<Vec<LvReport>, StorageError> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f = fields("lvs", line, 6)?;
            Ok(LvReport {
                name: f[0].to_string(),
                size_kib: kib("lvs", f[1])?,
                attr: f[2].to_string(),
                data_hundredths: parse_percent(f[3])
                    .ok_or_else(|| parse_error("lvs", format!("'{}' is not a percentage", f[3])))?,
                pool_lv: f[4].to_string(),
                tags: f[5]
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
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

/// Why `name` cannot name an LVM `what`: it would be taken as an option, hidden, a path or
/// several arguments.
fn name_problem(what: &str, name: &str) -> Option<String> {
    let bad = name.is_empty()
        || name.starts_with('-')
        || name.starts_with('.')
        || name.contains('/')
        || name.contains('\0')
        || name.chars().any(char::is_whitespace);
    bad.then(|| {
        format!(
            "'{name}' cannot name an LVM {what}: it must not be empty, start with '-' or '.', \
             or contain '/' or whitespace"
        )
    })
}

/// Refuses volume and snapshot names [`name_problem`] finds fault with.
fn check_name(what: &str, name: &str) -> Result<(), StorageError> {
    match name_problem(what, name) {
        Some(why) => Err(StorageError::InvalidName(why)),
        None => Ok(()),
    }
}

pub struct LvmPool {
    vg: String,
    thin_pool: Option<String>,
    runner: Arc<dyn CommandRunner>,
}

impl LvmPool {
    pub fn thick(vg: String, runner: Arc<dyn CommandRunner>) -> LvmPool {
        LvmPool {
            vg,
            thin_pool: None,
            runner,
        }
    }

    pub fn thin(vg: String, thin_pool: String, runner: Arc<dyn CommandRunner>) -> LvmPool {
        LvmPool {
            vg,
            thin_pool: Some(thin_pool),
            runner,
        }
    }

    /// The pool as people name it, for messages.
    fn describe(&self) -> String {
        match &self.thin_pool {
            Some(tp) => format!("LVM thin pool '{}/{tp}'", self.vg),
            None => format!("LVM volume group '{}'", self.vg),
        }
    }

    /// The pool's own names (volume group, thin pool) as configured.
    fn check_config(&self) -> Result<(), StorageError> {
        let thin_pool = self.thin_pool.as_deref();
        let problem = name_problem("volume group", &self.vg)
            .or_else(|| thin_pool.and_then(|tp| name_problem("thin pool", tp)));
        match problem {
            Some(why) => Err(StorageError::PoolConfig(why)),
            None => Ok(()),
        }
    }

    /// The answer for a snapshot this pool does not hold.
    fn no_snapshot(&self, volume: &str, snapshot: &str) -> StorageError {
        StorageError::SnapshotNotFound {
            volume: volume.into(),
            snapshot: snapshot.into(),
            place: self.describe(),
        }
    }

    fn lv_id(&self, name: &str) -> String {
        format!("{}/{name}", self.vg)
    }

    fn lv_path(&self, name: &str) -> String {
        format!("/dev/{}/{name}", self.vg)
    }

    fn report(&self, program: &str, fields: &str) -> Result<String, StorageError> {
        let cmd = Cmd::new(program)
            .args(REPORT_OPTIONS)
            .arg(SEPARATOR)
            .arg("-o")
            .arg(fields)
            .arg(&self.vg);
        let out = self.runner.run_any(&cmd)?;
        if out.status != 0 {
            let said = complaint(&out);
            let problem = if said.contains("not found") {
                "not found on this node"
            } else {
                "cannot be read on this node"
            };
            return Err(StorageError::PoolConfig(format!(
                "LVM volume group '{}' {problem} ({program} reports: {said})",
                self.vg
            )));
        }
        Ok(out.stdout)
    }

    fn vgs(&self) -> Result<VgReport, StorageError> {
        let out = self.report("vgs", VG_FIELDS)?;
        parse_vgs(&out)?
            .into_iter()
            .find(|vg| vg.name == self.vg)
            .ok_or_else(|| {
                StorageError::PoolConfig(format!(
                    "LVM volume group '{}' not found on this node (vgs did not list it)",
                    self.vg
                ))
            })
    }

    fn lvs(&self) -> Result<Vec<LvReport>, StorageError> {
        parse_lvs(&self.report("lvs", LV_FIELDS)?)
    }

    fn lookup(&self, name: &str) -> Result<Option<LvReport>, StorageError> {
        Ok(self.lvs()?.into_iter().find(|lv| lv.name == name))
    }

    /// Whether `lv` is a volume of this pool (a thin LV of our thin pool, or a thick LV).
    fn belongs(&self, lv: &LvReport) -> bool {
        match &self.thin_pool {
            Some(tp) => lv.is_thin_volume() && lv.pool_lv == *tp,
            None => !lv.is_thin_volume() && !lv.is_thin_pool(),
        }
    }

    /// `lv` if this suite created it in this pool; the refusal otherwise.
    fn ours(&self, lv: LvReport) -> Result<LvReport, StorageError> {
        if !lv.owned() {
            return Err(StorageError::NotOwned(self.lv_id(&lv.name)));
        }
        if !self.belongs(&lv) {
            return Err(StorageError::NotInPool(format!(
                "logical volume '{}' exists but is not a volume of {}",
                self.lv_id(&lv.name),
                self.describe()
            )));
        }
        Ok(lv)
    }

    fn volume(&self, lv: &LvReport) -> BackingVolume {
        let path = self.lv_path(&lv.name);
        BackingVolume {
            name: lv.name.clone(),
            device: lv.active().then(|| path.clone()),
            path,
            size_kib: lv.size_kib,
            allocated_kib: lv.allocated_kib(),
        }
    }

    fn thin_pool_lv(&self, lvs: Vec<LvReport>, tp: &str) -> Result<LvReport, StorageError> {
        let names: Vec<String> = lvs.iter().map(|lv| lv.name.clone()).collect();
        let Some(lv) = lvs.into_iter().find(|lv| lv.name == tp) else {
            let there = if names.is_empty() {
                "it has no logical volumes".to_string()
            } else {
                format!("logical volumes there: {}", names.join(", "))
            };
            return Err(StorageError::PoolConfig(format!(
                "LVM thin pool '{tp}' not found in volume group '{}' on this node ({there})",
                self.vg
            )));
        };
        if !lv.is_thin_pool() {
            return Err(StorageError::PoolConfig(format!(
                "logical volume '{}' is not a thin pool (lv_attr {})",
                self.lv_id(tp),
                lv.attr
            )));
        }
        Ok(lv)
    }

    fn create(&self, name: &str, size_kib: u64) -> Result<(), StorageError> {
        if size_kib == 0 {
            return Err(StorageError::ZeroSize {
                volume: name.into(),
            });
        }
        let size = format!("{size_kib}k");
        let cmd = match &self.thin_pool {
            None => Cmd::new("lvcreate").args([
                "--yes",
                "--wipesignatures",
                "y",
                "--zero",
                "y",
                "--name",
                name,
                "--size",
                size.as_str(),
                "--addtag",
                OWNER_MARK,
                self.vg.as_str(),
            ]),
            Some(tp) => Cmd::new("lvcreate").args([
                "--yes",
                "--virtualsize",
                size.as_str(),
                "--thinpool",
                tp.as_str(),
                "--name",
                name,
                "--addtag",
                OWNER_MARK,
                self.vg.as_str(),
            ]),
        };
        self.runner.run(&cmd)?;
        Ok(())
    }

    fn extend(&self, name: &str, size_kib: u64) -> Result<(), StorageError> {
        self.runner.run(&Cmd::new("lvextend").args([
            "--size".to_string(),
            format!("{size_kib}k"),
            self.lv_id(name),
        ]))?;
        Ok(())
    }

    fn activate(&self, name: &str) -> Result<(), StorageError> {
        self.runner.run(
            &Cmd::new("lvchange")
                .args(["--activate", "y"])
                .arg(self.lv_id(name)),
        )?;
        Ok(())
    }

    /// The LV of snapshot `snapshot` of `volume` (LINSTOR's naming: `<volume>_<snapshot>`).
    fn snapshot_lv(volume: &str, snapshot: &str) -> String {
        format!("{volume}_{snapshot}")
    }

    /// The thin pool's name; snapshots exist only in thin pools.
    fn thin_only(&self) -> Result<&str, StorageError> {
        self.thin_pool
            .as_deref()
            .ok_or_else(|| crate::no_snapshots(ProviderKind::Lvm))
    }

    fn snapshot_of_lv(&self, lv: &LvReport) -> Option<SnapshotVolume> {
        let volume = lv.snapshot_of()?;
        let snapshot = lv.name.strip_prefix(volume)?.strip_prefix('_')?;
        Some(SnapshotVolume {
            volume: volume.to_string(),
            snapshot: snapshot.to_string(),
            path: self.lv_path(&lv.name),
            size_kib: lv.size_kib,
        })
    }

    /// Snapshot `snapshot` of `volume` as lvs lists it now; an LV of that name that is not
    /// our snapshot of that volume is refused.
    fn find_snapshot(
        &self,
        lvs: &[LvReport],
        volume: &str,
        snapshot: &str,
    ) -> Result<Option<SnapshotVolume>, StorageError> {
        let name = Self::snapshot_lv(volume, snapshot);
        let Some(lv) = lvs.iter().find(|lv| lv.name == name) else {
            return Ok(None);
        };
        match self.snapshot_of_lv(lv) {
            Some(s) if s.volume == volume && s.snapshot == snapshot && self.belongs(lv) => {
                Ok(Some(s))
            }
            _ => Err(StorageError::NotOwned(self.lv_id(&name))),
        }
    }

    /// The volume as lvm reports it after a change; it must be there, ours and active.
    fn read_back(&self, name: &str) -> Result<BackingVolume, StorageError> {
        let lv = self.lookup(name)?.ok_or_else(|| {
            parse_error(
                "lvs",
                format!(
                    "'{}' is not listed right after it was set up",
                    self.lv_id(name)
                ),
            )
        })?;
        let lv = self.ours(lv)?;
        if !lv.active() {
            return Err(StorageError::NotActivated {
                volume: self.lv_id(name),
                attr: lv.attr,
            });
        }
        Ok(self.volume(&lv))
    }
}

impl Provider for LvmPool {
    fn kind(&self) -> ProviderKind {
        if self.thin_pool.is_some() {
            ProviderKind::LvmThin
        } else {
            ProviderKind::Lvm
        }
    }

    fn check(&self) -> Result<(), StorageError> {
        self.check_config()?;
        self.vgs()?;
        if let Some(tp) = &self.thin_pool {
            self.thin_pool_lv(self.lvs()?, tp)?;
        }
        Ok(())
    }

    fn state(&self) -> Result<PoolState, StorageError> {
        self.check_config()?;
        let (total, free) = match &self.thin_pool {
            None => {
                let vg = self.vgs()?;
                (vg.size_kib, vg.free_kib)
            }
            Some(tp) => {
                let pool = self.thin_pool_lv(self.lvs()?, tp)?;
                (
                    pool.size_kib,
                    pool.size_kib - share(pool.size_kib, pool.data_hundredths),
                )
            }
        };
        Ok(PoolState {
            free_capacity_kib: free,
            total_capacity_kib: total,
            supports_snapshots: self.thin_pool.is_some(),
            errors: Vec::new(),
        })
    }

    fn list(&self) -> Result<Vec<BackingVolume>, StorageError> {
        self.check_config()?;
        Ok(self
            .lvs()?
            .iter()
            .filter(|lv| lv.owned() && self.belongs(lv))
            .map(|lv| self.volume(lv))
            .collect())
    }

    fn ensure(
        &self,
        name: &str,
        size_kib: u64,
        current: Option<&BackingVolume>,
    ) -> Result<BackingVolume, StorageError> {
        self.check_config()?;
        check_name("logical volume", name)?;
        let known = match current.filter(|c| c.name == name) {
            Some(c) => Some(c.clone()),
            None => match self.lookup(name)? {
                Some(lv) => Some(self.volume(&self.ours(lv)?)),
                None => None,
            },
        };
        match known {
            None => self.create(name, size_kib)?,
            Some(v) => {
                if v.size_kib >= size_kib && v.device.is_some() {
                    return Ok(v);
                }
                if v.size_kib < size_kib {
                    self.extend(name, size_kib)?;
                }
                if v.device.is_none() {
                    self.activate(name)?;
                }
            }
        }
        self.read_back(name)
    }

    fn delete(&self, name: &str, _current: Option<&BackingVolume>) -> Result<(), StorageError> {
        self.check_config()?;
        check_name("logical volume", name)?;
        // Removal destroys data: the tag is read again right before, whatever `current` says.
        let Some(lv) = self.lookup(name)? else {
            return Ok(());
        };
        self.ours(lv)?;
        self.runner
            .run(&Cmd::new("lvremove").arg("--yes").arg(self.lv_id(name)))?;
        Ok(())
    }

    fn shrink(
        &self,
        name: &str,
        size_kib: u64,
        _current: &BackingVolume,
    ) -> Result<BackingVolume, StorageError> {
        self.check_config()?;
        check_name("logical volume", name)?;
        // Cutting data off: the tag is read again right before, whatever `current` says.
        let lv = self.lookup(name)?.ok_or_else(|| {
            StorageError::NotFound(format!("'{}' does not exist", self.lv_id(name)))
        })?;
        self.ours(lv)?;
        self.runner.run(&Cmd::new("lvreduce").args([
            "--yes".to_string(),
            "--force".to_string(),
            "--size".to_string(),
            format!("{size_kib}k"),
            self.lv_id(name),
        ]))?;
        tracing::info!(lv = %self.lv_id(name), size_kib, "logical volume shrunk");
        self.read_back(name)
    }

    fn rename(
        &self,
        from: &str,
        to: &str,
        _current: &BackingVolume,
    ) -> Result<BackingVolume, StorageError> {
        self.check_config()?;
        check_name("logical volume", from)?;
        check_name("logical volume", to)?;
        let lvs = self.lvs()?;
        if lvs.iter().any(|lv| lv.name == to) {
            return Err(StorageError::AlreadyExists(format!(
                "'{}' exists already",
                self.lv_id(to)
            )));
        }
        let lv = lvs.into_iter().find(|lv| lv.name == from).ok_or_else(|| {
            StorageError::NotFound(format!("'{}' does not exist", self.lv_id(from)))
        })?;
        self.ours(lv)?;
        self.runner
            .run(&Cmd::new("lvrename").arg(&self.vg).arg(from).arg(to))?;
        self.read_back(to)
    }

    fn adopt(&self, name: &str, size_kib: u64) -> Result<Option<BackingVolume>, StorageError> {
        self.check_config()?;
        check_name("logical volume", name)?;
        let Some(lv) = self.lookup(name)? else {
            return Ok(None);
        };
        if lv.owned() {
            return Ok(Some(self.volume(&self.ours(lv)?)));
        }
        if !self.belongs(&lv) || lv.snapshot_of().is_some() {
            return Err(StorageError::NotInPool(format!(
                "logical volume '{}' cannot be adopted: it is not a volume of {}",
                self.lv_id(name),
                self.describe()
            )));
        }
        crate::check_adoptable_size(&self.lv_id(name), lv.size_kib, size_kib)?;
        self.runner.run(
            &Cmd::new("lvchange")
                .args(["--addtag", OWNER_MARK])
                .arg(self.lv_id(name)),
        )?;
        tracing::info!(lv = %self.lv_id(name), "logical volume adopted");
        Ok(Some(self.volume(&lv)))
    }

    fn snapshots(&self) -> Result<Vec<SnapshotVolume>, StorageError> {
        self.check_config()?;
        if self.thin_pool.is_none() {
            return Ok(Vec::new());
        }
        Ok(self
            .lvs()?
            .iter()
            .filter(|lv| self.belongs(lv))
            .filter_map(|lv| self.snapshot_of_lv(lv))
            .collect())
    }

    fn snapshot_create(
        &self,
        volume: &str,
        snapshot: &str,
    ) -> Result<SnapshotVolume, StorageError> {
        self.check_config()?;
        self.thin_only()?;
        check_name("logical volume", volume)?;
        check_name("snapshot", snapshot)?;
        let lvs = self.lvs()?;
        if let Some(s) = self.find_snapshot(&lvs, volume, snapshot)? {
            return Ok(s);
        }
        let Some(origin) = lvs.iter().find(|lv| lv.name == volume) else {
            return Err(StorageError::NotFound(format!(
                "volume '{}' not found: there is nothing to take snapshot '{snapshot}' of",
                self.lv_id(volume)
            )));
        };
        self.ours(origin.clone())?;
        // A thin snapshot shares the pool's blocks and is created inactive (activation skip).
        let name = Self::snapshot_lv(volume, snapshot);
        self.runner.run(
            &Cmd::new("lvcreate")
                .args(["--yes", "--snapshot", "--name", name.as_str()])
                .args(["--addtag", SNAPSHOT_MARK, "--addtag"])
                .arg(format!("{ORIGIN_TAG}{volume}"))
                .arg(self.lv_id(volume)),
        )?;
        self.find_snapshot(&self.lvs()?, volume, snapshot)?
            .ok_or_else(|| {
                parse_error(
                    "lvs",
                    format!(
                        "'{}' is not listed right after it was taken",
                        self.lv_id(&name)
                    ),
                )
            })
    }

    fn snapshot_delete(&self, volume: &str, snapshot: &str) -> Result<(), StorageError> {
        self.check_config()?;
        self.thin_only()?;
        check_name("logical volume", volume)?;
        check_name("snapshot", snapshot)?;
        if self
            .find_snapshot(&self.lvs()?, volume, snapshot)?
            .is_none()
        {
            return Ok(());
        }
        let name = Self::snapshot_lv(volume, snapshot);
        self.runner
            .run(&Cmd::new("lvremove").arg("--yes").arg(self.lv_id(&name)))?;
        Ok(())
    }

    fn snapshot_restore(
        &self,
        volume: &str,
        snapshot: &str,
        target: &str,
    ) -> Result<BackingVolume, StorageError> {
        self.check_config()?;
        self.thin_only()?;
        check_name("logical volume", volume)?;
        check_name("snapshot", snapshot)?;
        check_name("logical volume", target)?;
        let lvs = self.lvs()?;
        if lvs.iter().any(|lv| lv.name == target) {
            return Err(StorageError::AlreadyExists(format!(
                "cannot restore into '{}': it exists already",
                self.lv_id(target)
            )));
        }
        let Some(snap) = self.find_snapshot(&lvs, volume, snapshot)? else {
            return Err(self.no_snapshot(volume, snapshot));
        };
        // A writable thin snapshot of the snapshot, activated like any volume of ours.
        let from = Self::snapshot_lv(&snap.volume, &snap.snapshot);
        self.runner.run(
            &Cmd::new("lvcreate")
                .args([
                    "--yes",
                    "--snapshot",
                    "--setactivationskip",
                    "n",
                    "--name",
                    target,
                ])
                .args(["--addtag", OWNER_MARK])
                .arg(self.lv_id(&from)),
        )?;
        self.activate(target)?;
        self.read_back(target)
    }

    fn snapshot_rollback(&self, volume: &str, snapshot: &str) -> Result<(), StorageError> {
        self.check_config()?;
        self.thin_only()?;
        check_name("logical volume", volume)?;
        check_name("snapshot", snapshot)?;
        let lvs = self.lvs()?;
        if self.find_snapshot(&lvs, volume, snapshot)?.is_none() {
            return Err(self.no_snapshot(volume, snapshot));
        }
        // The volume becomes a writable thin snapshot of the snapshot, under its own name.
        if let Some(lv) = lvs.into_iter().find(|lv| lv.name == volume) {
            self.ours(lv)?;
            self.runner
                .run(&Cmd::new("lvremove").arg("--yes").arg(self.lv_id(volume)))?;
        }
        self.snapshot_restore(volume, snapshot, volume).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_exec::ScriptedRunner;

    /// Captured with lvm2 2.03.16 (Debian 12) as `vgs --noheadings --units k --nosuffix
    /// --separator ; -o vg_name,vg_size,vg_free vg_strata_cap`, a 200 MiB loop device PV.
    const VGS_CAPTURED: &str = "  vg_strata_cap;200704.00;139264.00\n";

    /// Captured with lvm2 2.03.16: stderr of the same `vgs` for a volume group that does not
    /// exist (exit status 5, empty stdout). `lvs` prints the same lines.
    const VGS_MISSING_STDERR: &str =
        "  Volume group \"vg_missing\" not found\n  Cannot process volume group vg_missing\n";

    /// Captured with lvm2 2.03.16 as `lvs --noheadings --units k --nosuffix --separator ; -o
    /// lv_name,lv_size,lv_attr,data_percent,pool_lv,lv_tags vg_strata_cap`. The LVs were put
    /// in the metadata with vgcfgrestore because the host has no device-mapper, so lvm shows
    /// their state as unknown (`X`) and prints no data_percent.
    const LVS_CAPTURED: &str = concat!(
        "  foreign;4096.00;-wi-XX----;;;backup,other\n",
        "  r1_00000;8192.00;-wi-XX----;;;strata_owned\n",
        "  r2_00000;20480.00;Vwi-XXtz--;;thinpool;strata_owned\n",
        "  theirs_thin;12288.00;Vwi-XXtz--;;thinpool;\n",
        "  thinpool;40960.00;twi---tz--;;;\n",
    );

    /// Composed in the format of lvm2 2.03 `lvs --noheadings --units k --nosuffix --separator ;
    /// -o lv_name,lv_size,lv_attr,data_percent,pool_lv,lv_tags vg_ssd` on a host with
    /// device-mapper (active LVs, data_percent of thin LVs and pool); not captured.
    const LVS_ACTIVE: &str = concat!(
        "  foreign;4096.00;-wi-ao----;;;backup,other\n",
        "  r1_00000;8192.00;-wi-a-----;;;strata_owned\n",
        "  r2_00000;20480.00;Vwi-aotz--;25.00;thinpool;strata_owned\n",
        "  theirs_thin;12288.00;Vwi-a-tz--;50.00;thinpool;\n",
        "  thinpool;40960.00;twi-aotz--;12.50;;\n",
    );

    /// Captured with lvm2 2.03.16: stdout of `lvremove --yes vg_strata_cap/r1_00000`.
    const LVREMOVE_OUT: &str = "  Logical volume \"r1_00000\" successfully removed.\n";

    /// Composed in the format of lvm2 2.03 `lvcreate` output; not captured (no device-mapper).
    const LVCREATE_OUT: &str = "  Logical volume \"new_00000\" created.\n";

    fn vgs_argv(vg: &str) -> Vec<&str> {
        vec![
            "vgs",
            "--noheadings",
            "--units",
            "k",
            "--nosuffix",
            "--separator",
            ";",
            "-o",
            "vg_name,vg_size,vg_free",
            vg,
        ]
    }

    fn lvs_argv(vg: &str) -> Vec<&str> {
        vec![
            "lvs",
            "--noheadings",
            "--units",
            "k",
            "--nosuffix",
            "--separator",
            ";",
            "-o",
            "lv_name,lv_size,lv_attr,data_percent,pool_lv,lv_tags",
            vg,
        ]
    }

    /// `LVS_ACTIVE` with `line` added.
    fn lvs_with(line: &str) -> String {
        format!("{LVS_ACTIVE}  {line}\n")
    }

    fn thick(runner: &Arc<ScriptedRunner>) -> LvmPool {
        LvmPool::thick("vg_ssd".into(), runner.clone())
    }

    fn thin(runner: &Arc<ScriptedRunner>) -> LvmPool {
        LvmPool::thin("vg_ssd".into(), "thinpool".into(), runner.clone())
    }

    fn failed(stderr: &str) -> Output {
        Output::failed(5, stderr)
    }

    #[test]
    fn sizes_and_percentages_parse() {
        assert_eq!(parse_kib("  1048576.00"), Some(1_048_576));
        assert_eq!(parse_kib("4096"), Some(4096));
        assert_eq!(parse_kib("1000.50"), Some(1000));
        assert_eq!(parse_kib(""), None);
        assert_eq!(parse_kib("12.5g"), None);
        assert_eq!(parse_percent(""), Some(0));
        assert_eq!(parse_percent("12.50"), Some(1250));
        assert_eq!(parse_percent("0.5"), Some(50));
        assert_eq!(parse_percent("100.00"), Some(10_000));
        assert_eq!(parse_percent("7"), Some(700));
        assert_eq!(parse_percent("n/a"), None);
    }

    #[test]
    fn captured_vgs_parses() {
        assert_eq!(
            parse_vgs(VGS_CAPTURED).unwrap(),
            vec![VgReport {
                name: "vg_strata_cap".into(),
                size_kib: 200_704,
                free_kib: 139_264,
            }]
        );
        assert!(parse_vgs("").unwrap().is_empty());
        assert!(matches!(
            parse_vgs("  vg0;100.00\n"),
            Err(StorageError::Parse { .. })
        ));
    }

    #[test]
    fn captured_lvs_parses() {
        let lvs = parse_lvs(LVS_CAPTURED).unwrap();
        assert_eq!(lvs.len(), 5);
        assert_eq!(
            lvs[0],
            LvReport {
                name: "foreign".into(),
                size_kib: 4096,
                attr: "-wi-XX----".into(),
                data_hundredths: 0,
                pool_lv: String::new(),
                tags: vec!["backup".into(), "other".into()],
            }
        );
        assert!(lvs[1].owned() && !lvs[1].is_thin_volume() && !lvs[1].active());
        assert_eq!(lvs[2].pool_lv, "thinpool");
        assert!(lvs[2].owned() && lvs[2].is_thin_volume());
        assert!(!lvs[3].owned() && lvs[3].tags.is_empty());
        assert!(lvs[4].is_thin_pool() && !lvs[4].active());
        assert!(matches!(
            parse_lvs("  a;1.00;-wi-a-----\n"),
            Err(StorageError::Parse { .. })
        ));
    }

    #[test]
    fn active_lvs_parse_with_usage() {
        let lvs = parse_lvs(LVS_ACTIVE).unwrap();
        assert!(lvs[1].active());
        assert_eq!(
            lvs[1].allocated_kib(),
            8192,
            "thick LVs take their whole size"
        );
        assert_eq!(lvs[2].data_hundredths, 2500);
        assert_eq!(lvs[2].allocated_kib(), 5120, "25% of 20480 KiB");
        assert_eq!(lvs[4].data_hundredths, 1250);
    }

    #[test]
    fn list_returns_only_tagged_volumes_of_the_pool() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_CAPTURED))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        let thick_list = thick(&runner).list().unwrap();
        assert_eq!(
            thick_list,
            vec![BackingVolume {
                name: "r1_00000".into(),
                path: "/dev/vg_ssd/r1_00000".into(),
                device: None,
                size_kib: 8192,
                allocated_kib: 8192,
            }]
        );
        let thin_list = thin(&runner).list().unwrap();
        assert_eq!(
            thin_list,
            vec![BackingVolume {
                name: "r2_00000".into(),
                path: "/dev/vg_ssd/r2_00000".into(),
                device: Some("/dev/vg_ssd/r2_00000".into()),
                size_kib: 20480,
                allocated_kib: 5120,
            }]
        );
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn thick_create() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(
                &[
                    "lvcreate",
                    "--yes",
                    "--wipesignatures",
                    "y",
                    "--zero",
                    "y",
                    "--name",
                    "new_00000",
                    "--size",
                    "10240k",
                    "--addtag",
                    "strata_owned",
                    "vg_ssd",
                ],
                Output::ok(LVCREATE_OUT),
            )
            .expect(
                &lvs_argv("vg_ssd"),
                Output::ok(lvs_with("new_00000;12288.00;-wi-a-----;;;strata_owned")),
            );
        let v = thick(&runner).ensure("new_00000", 10240, None).unwrap();
        assert_eq!(
            v,
            BackingVolume {
                name: "new_00000".into(),
                path: "/dev/vg_ssd/new_00000".into(),
                device: Some("/dev/vg_ssd/new_00000".into()),
                size_kib: 12288,
                allocated_kib: 12288,
            },
            "the size is what lvm made of the request (rounded up to whole extents)"
        );
        assert!(runner.remaining().is_empty());
        assert_eq!(runner.calls().len(), 3);
    }

    #[test]
    fn thin_create() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(
                &[
                    "lvcreate",
                    "--yes",
                    "--virtualsize",
                    "1048576k",
                    "--thinpool",
                    "thinpool",
                    "--name",
                    "new_00000",
                    "--addtag",
                    "strata_owned",
                    "vg_ssd",
                ],
                Output::ok(LVCREATE_OUT),
            )
            .expect(
                &lvs_argv("vg_ssd"),
                Output::ok(lvs_with(
                    "new_00000;1048576.00;Vwi-a-tz--;0.00;thinpool;strata_owned",
                )),
            );
        let v = thin(&runner).ensure("new_00000", 1_048_576, None).unwrap();
        assert_eq!(v.device.as_deref(), Some("/dev/vg_ssd/new_00000"));
        assert_eq!(v.size_kib, 1_048_576);
        assert_eq!(v.allocated_kib, 0);
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn grow_from_current_runs_lvextend_then_reads_back() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(
                &["lvextend", "--size", "16384k", "vg_ssd/r1_00000"],
                Output::ok(""),
            )
            .expect(
                &lvs_argv("vg_ssd"),
                Output::ok(LVS_ACTIVE.replace(
                    "r1_00000;8192.00;-wi-a-----",
                    "r1_00000;16384.00;-wi-a-----",
                )),
            );
        let p = thick(&runner);
        let current = p.list_from(LVS_ACTIVE, "r1_00000");
        let v = p.ensure("r1_00000", 16384, Some(&current)).unwrap();
        assert_eq!(v.size_kib, 16384);
        assert_eq!(v.device.as_deref(), Some("/dev/vg_ssd/r1_00000"));
        assert!(runner.remaining().is_empty());
        assert_eq!(runner.calls().len(), 2);
    }

    #[test]
    fn existing_active_volume_needs_no_change() {
        // Found by lookup: one lvs, no create, no extend.
        let runner = Arc::new(ScriptedRunner::new());
        runner.expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        let p = thin(&runner);
        let v = p.ensure("r2_00000", 20480, None).unwrap();
        assert_eq!(v.size_kib, 20480);
        assert_eq!(v.device.as_deref(), Some("/dev/vg_ssd/r2_00000"));
        assert_eq!(runner.calls(), vec![lvs_argv("vg_ssd")]);
        // Known from `list`, asked smaller: no command at all, and never a shrink.
        let v2 = p.ensure("r2_00000", 1024, Some(&v)).unwrap();
        assert_eq!(v2, v);
        assert_eq!(runner.calls().len(), 1);
    }

    #[test]
    fn inactive_volume_is_activated() {
        let inactive =
            LVS_ACTIVE.replace("r1_00000;8192.00;-wi-a-----", "r1_00000;8192.00;-wi-------");
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(inactive))
            .expect(
                &["lvchange", "--activate", "y", "vg_ssd/r1_00000"],
                Output::ok(""),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        let v = thick(&runner).ensure("r1_00000", 8192, None).unwrap();
        assert_eq!(v.device.as_deref(), Some("/dev/vg_ssd/r1_00000"));
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn volume_that_stays_inactive_is_an_error() {
        let inactive =
            LVS_ACTIVE.replace("r1_00000;8192.00;-wi-a-----", "r1_00000;8192.00;-wi-------");
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(inactive.clone()))
            .expect(
                &["lvchange", "--activate", "y", "vg_ssd/r1_00000"],
                Output::ok(""),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(inactive));
        let err = thick(&runner).ensure("r1_00000", 8192, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("'vg_ssd/r1_00000' does not become active"),
            "{err}"
        );
    }

    #[test]
    fn delete_removes_a_tagged_volume() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(
                &["lvremove", "--yes", "vg_ssd/r1_00000"],
                Output::ok(LVREMOVE_OUT),
            );
        let p = thick(&runner);
        let current = p.list_from(LVS_ACTIVE, "r1_00000");
        p.delete("r1_00000", Some(&current)).unwrap();
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn delete_of_an_absent_volume_is_fine() {
        let runner = Arc::new(ScriptedRunner::new());
        runner.expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        thick(&runner).delete("gone_00000", None).unwrap();
        assert_eq!(runner.calls(), vec![lvs_argv("vg_ssd")]);
    }

    /// Renaming checks the target name is free and the volume ours, then runs lvrename.
    #[test]
    fn renaming_moves_only_our_volumes_to_free_names() {
        let runner = Arc::new(ScriptedRunner::new());
        let renamed = LVS_ACTIVE.replace("r1_00000;", "r1_copy;");
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(
                &["lvrename", "vg_ssd", "r1_00000", "r1_copy"],
                Output::ok(""),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(&renamed))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        let p = thick(&runner);
        let current = p.volume(&parse_lvs(LVS_ACTIVE).unwrap()[1]);
        let v = p.rename("r1_00000", "r1_copy", &current).unwrap();
        assert_eq!(v.name, "r1_copy");
        let e = p.rename("r1_00000", "foreign", &current).unwrap_err();
        assert!(e.to_string().contains("exists already"), "{e}");
        assert!(matches!(
            p.rename("foreign", "new", &current),
            Err(StorageError::NotOwned(_))
        ));
        assert!(runner.remaining().is_empty());
    }

    /// Shrinking re-reads the tag, then reduces the LV without a question; a foreign LV is
    /// never reduced.
    #[test]
    fn shrinking_reduces_only_our_volumes() {
        let runner = Arc::new(ScriptedRunner::new());
        let reduced = LVS_ACTIVE.replace("r1_00000;8192.00", "r1_00000;4096.00");
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(
                &[
                    "lvreduce",
                    "--yes",
                    "--force",
                    "--size",
                    "4096k",
                    "vg_ssd/r1_00000",
                ],
                Output::ok(""),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(&reduced))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        let p = thick(&runner);
        let current = p.volume(&parse_lvs(LVS_ACTIVE).unwrap()[1]);
        let v = p.shrink("r1_00000", 4096, &current).unwrap();
        assert_eq!(v.size_kib, 4096);
        assert!(matches!(
            p.shrink("foreign", 1024, &current),
            Err(StorageError::NotOwned(_))
        ));
        assert!(runner.remaining().is_empty());
    }

    /// An LV named by OverrideVlmId is tagged ours as it is (never recreated or resized); one
    /// too small, of another pool, or absent is left alone.
    #[test]
    fn an_administrators_volume_is_adopted_by_tagging_it() {
        let runner = Arc::new(ScriptedRunner::new());
        let tagged = LVS_ACTIVE.replace(";thinpool;\n", ";thinpool;strata_owned\n");
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(
                &["lvchange", "--addtag", "strata_owned", "vg_ssd/theirs_thin"],
                Output::ok(""),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(&tagged));
        let p = thin(&runner);
        assert_eq!(p.adopt("absent", 1024).unwrap(), None);
        let err = p.adopt("theirs_thin", 20_000).unwrap_err().to_string();
        assert!(
            err.contains("'vg_ssd/theirs_thin' exists with 12288 KiB, less than the 20000 KiB"),
            "{err}"
        );
        let err = p.adopt("foreign", 1024).unwrap_err().to_string();
        assert!(err.contains("not a volume of"), "{err}");
        let v = p.adopt("theirs_thin", 12_000).unwrap().unwrap();
        assert_eq!(v.size_kib, 12288);
        assert_eq!(v.device.as_deref(), Some("/dev/vg_ssd/theirs_thin"));
        // Tagged, it is ours: listed, and already ours when asked again.
        assert!(p.list().unwrap().iter().any(|v| v.name == "theirs_thin"));
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn foreign_volumes_are_never_changed() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        let p = thick(&runner);
        match p.delete("foreign", None) {
            Err(StorageError::NotOwned(what)) => assert_eq!(what, "vg_ssd/foreign"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            p.ensure("foreign", 1_000_000, None),
            Err(StorageError::NotOwned(_))
        ));
        // A strata thin LV is not a volume of the thick pool on the same volume group.
        let err = p.delete("r2_00000", None).unwrap_err();
        assert!(
            err.to_string().contains(
                "'vg_ssd/r2_00000' exists but is not a volume of LVM volume group 'vg_ssd'"
            ),
            "{err}"
        );
        assert!(
            runner.calls().iter().all(|c| c[0] == "lvs"),
            "{:?}",
            runner.calls()
        );
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn bad_names_are_refused_without_commands() {
        let runner = Arc::new(ScriptedRunner::new());
        let p = thick(&runner);
        for name in ["", "-rf", ".hidden", "a/b", "a b", "tab\there"] {
            assert!(
                matches!(p.ensure(name, 4, None), Err(StorageError::InvalidName(_))),
                "{name:?}"
            );
            assert!(matches!(
                p.delete(name, None),
                Err(StorageError::InvalidName(_))
            ));
        }
        let bad_vg = LvmPool::thick("--all".into(), runner.clone());
        assert!(matches!(bad_vg.check(), Err(StorageError::PoolConfig(_))));
        assert!(runner.calls().is_empty());
    }

    #[test]
    fn check_names_a_missing_volume_group() {
        let runner = Arc::new(ScriptedRunner::new());
        runner.expect(&vgs_argv("vg_missing"), failed(VGS_MISSING_STDERR));
        let p = LvmPool::thick("vg_missing".into(), runner.clone());
        let err = p.check().unwrap_err();
        assert!(matches!(err, StorageError::PoolConfig(_)));
        assert_eq!(
            err.to_string(),
            "storage pool configuration: LVM volume group 'vg_missing' not found on this node \
             (vgs reports: Volume group \"vg_missing\" not found; Cannot process volume group \
             vg_missing)"
        );
    }

    #[test]
    fn check_names_a_missing_thin_pool() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(
                &vgs_argv("vg_ssd"),
                Output::ok("  vg_ssd;200704.00;139264.00\n"),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_CAPTURED))
            .expect(
                &vgs_argv("vg_ssd"),
                Output::ok("  vg_ssd;200704.00;139264.00\n"),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_CAPTURED))
            .expect(
                &vgs_argv("vg_ssd"),
                Output::ok("  vg_ssd;200704.00;139264.00\n"),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_CAPTURED));
        let missing = LvmPool::thin("vg_ssd".into(), "tp0".into(), runner.clone());
        assert_eq!(
            missing.check().unwrap_err().to_string(),
            "storage pool configuration: LVM thin pool 'tp0' not found in volume group 'vg_ssd' \
             on this node (logical volumes there: foreign, r1_00000, r2_00000, theirs_thin, \
             thinpool)"
        );
        let not_thin = LvmPool::thin("vg_ssd".into(), "foreign".into(), runner.clone());
        assert_eq!(
            not_thin.check().unwrap_err().to_string(),
            "storage pool configuration: logical volume 'vg_ssd/foreign' is not a thin pool \
             (lv_attr -wi-XX----)"
        );
        thin(&runner).check().unwrap();
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn thick_state_is_the_volume_group() {
        let runner = Arc::new(ScriptedRunner::new());
        runner.expect(&vgs_argv("vg_strata_cap"), Output::ok(VGS_CAPTURED));
        let p = LvmPool::thick("vg_strata_cap".into(), runner.clone());
        assert_eq!(
            p.state().unwrap(),
            PoolState {
                free_capacity_kib: 139_264,
                total_capacity_kib: 200_704,
                supports_snapshots: false,
                errors: Vec::new(),
            }
        );
    }

    #[test]
    fn thin_state_is_the_thin_pool() {
        let runner = Arc::new(ScriptedRunner::new());
        runner.expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        assert_eq!(
            thin(&runner).state().unwrap(),
            PoolState {
                // 12.5% of 40960 KiB used.
                free_capacity_kib: 35_840,
                total_capacity_kib: 40_960,
                supports_snapshots: true,
                errors: Vec::new(),
            }
        );
    }

    #[test]
    fn kinds() {
        let runner = Arc::new(ScriptedRunner::new());
        assert_eq!(thick(&runner).kind(), ProviderKind::Lvm);
        assert_eq!(thin(&runner).kind(), ProviderKind::LvmThin);
    }

    impl LvmPool {
        /// What `list` returns for `name` given `lvs` output, without running anything.
        fn list_from(&self, lvs: &str, name: &str) -> BackingVolume {
            let lv = parse_lvs(lvs)
                .unwrap()
                .into_iter()
                .find(|lv| lv.name == name)
                .unwrap();
            self.volume(&lv)
        }
    }

    /// `LVS_ACTIVE` with snapshot `s1` of `r2_00000` (as lvm2 2.03.16 lists a thin snapshot:
    /// inactive, activation skip `k`, no data percent).
    fn lvs_with_snapshot() -> String {
        lvs_with("r2_00000_s1;20480.00;Vwi---tz-k;;thinpool;strata_origin:r2_00000,strata_snapshot")
    }

    #[test]
    fn thin_snapshot_is_taken_tagged_and_not_a_volume() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE))
            .expect(
                &[
                    "lvcreate",
                    "--yes",
                    "--snapshot",
                    "--name",
                    "r2_00000_s1",
                    "--addtag",
                    "strata_snapshot",
                    "--addtag",
                    "strata_origin:r2_00000",
                    "vg_ssd/r2_00000",
                ],
                Output::ok(""),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(lvs_with_snapshot()))
            .expect(&lvs_argv("vg_ssd"), Output::ok(lvs_with_snapshot()))
            .expect(&lvs_argv("vg_ssd"), Output::ok(lvs_with_snapshot()))
            .expect(&lvs_argv("vg_ssd"), Output::ok(lvs_with_snapshot()));
        let p = thin(&runner);
        let snap = p.snapshot_create("r2_00000", "s1").unwrap();
        let want = SnapshotVolume {
            volume: "r2_00000".into(),
            snapshot: "s1".into(),
            path: "/dev/vg_ssd/r2_00000_s1".into(),
            size_kib: 20480,
        };
        assert_eq!(snap, want);
        // Taken again: nothing to do.
        assert_eq!(p.snapshot_create("r2_00000", "s1").unwrap(), want);
        assert_eq!(p.snapshots().unwrap(), [want]);
        let names: Vec<String> = p.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["r2_00000"], "a snapshot is not a volume");
        assert!(runner.remaining().is_empty());
    }

    #[test]
    fn thin_snapshot_restores_into_a_new_active_volume() {
        let restored = format!(
            "{}  r3_00000;20480.00;Vwi-a-tz--;25.00;thinpool;strata_owned\n",
            lvs_with_snapshot()
        );
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(lvs_with_snapshot()))
            .expect(
                &[
                    "lvcreate",
                    "--yes",
                    "--snapshot",
                    "--setactivationskip",
                    "n",
                    "--name",
                    "r3_00000",
                    "--addtag",
                    "strata_owned",
                    "vg_ssd/r2_00000_s1",
                ],
                Output::ok(""),
            )
            .expect(
                &["lvchange", "--activate", "y", "vg_ssd/r3_00000"],
                Output::ok(""),
            )
            .expect(&lvs_argv("vg_ssd"), Output::ok(restored.clone()));
        let p = thin(&runner);
        let v = p.snapshot_restore("r2_00000", "s1", "r3_00000").unwrap();
        assert_eq!(v.device.as_deref(), Some("/dev/vg_ssd/r3_00000"));
        assert_eq!(v.size_kib, 20480);
        assert!(runner.remaining().is_empty());

        // Into a volume that exists, or from a snapshot that does not: refused, no change.
        runner.expect(&lvs_argv("vg_ssd"), Output::ok(restored.clone()));
        let e = p
            .snapshot_restore("r2_00000", "s1", "r3_00000")
            .unwrap_err();
        assert!(e.to_string().contains("exists already"), "{e}");
        runner.expect(&lvs_argv("vg_ssd"), Output::ok(restored));
        let e = p
            .snapshot_restore("r2_00000", "s9", "r4_00000")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("snapshot 's9' of volume 'r2_00000' not found"),
            "{e}"
        );
        assert!(runner.remaining().is_empty());
        assert_eq!(runner.calls().len(), 6);
    }

    #[test]
    fn thin_snapshot_delete_removes_only_our_snapshot() {
        let runner = Arc::new(ScriptedRunner::new());
        runner
            .expect(&lvs_argv("vg_ssd"), Output::ok(lvs_with_snapshot()))
            .expect(&["lvremove", "--yes", "vg_ssd/r2_00000_s1"], Output::ok(""))
            .expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        let p = thin(&runner);
        p.snapshot_delete("r2_00000", "s1").unwrap();
        // Gone already: fine.
        p.snapshot_delete("r2_00000", "s1").unwrap();
        // An LV of the snapshot's name that someone else made is never touched.
        runner.expect(
            &lvs_argv("vg_ssd"),
            Output::ok(lvs_with("r2_00000_s2;20480.00;Vwi-a-tz--;1.00;thinpool;")),
        );
        assert!(matches!(
            p.snapshot_delete("r2_00000", "s2"),
            Err(StorageError::NotOwned(_))
        ));
        assert!(runner.remaining().is_empty());
        assert_eq!(runner.calls().len(), 4);
    }

    #[test]
    fn thick_pools_and_missing_volumes_take_no_snapshot() {
        let runner = Arc::new(ScriptedRunner::new());
        let e = thick(&runner)
            .snapshot_create("r1_00000", "s1")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("LVM storage pools cannot take snapshots"),
            "{e}"
        );
        runner.expect(&lvs_argv("vg_ssd"), Output::ok(LVS_ACTIVE));
        let e = thin(&runner).snapshot_create("r9_00000", "s1").unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        let e = thin(&runner)
            .snapshot_create("r2_00000", "bad name")
            .unwrap_err();
        assert!(e.to_string().contains("cannot name"), "{e}");
        assert_eq!(runner.calls().len(), 1);
    }
}
