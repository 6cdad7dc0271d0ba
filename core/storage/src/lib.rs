//! Storage providers: one module per kind behind the [`Provider`] trait, with the parsers of
//! tool output as pure functions tested on captured output.
//!
//! Providers only ever list, change or delete what they created: files carry a marker, logical
//! volumes a tag, ZFS volumes a user property.

pub mod detect;
pub mod diskless;
pub mod file;
pub mod loopctl;
pub mod loopdev;
pub mod lvm;
pub mod zfs;

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_exec::{CommandRunner, ExecError};
use strata_model::kinds::ProviderKind;
use strata_model::observed::PoolState;

/// Tag, property and marker value that identify objects this suite created.
pub const OWNER_MARK: &str = "strata_owned";

/// What went wrong in a storage pool. Each variant says what failed; the message says how to
/// fix it where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A tool could not be run, or failed in a way the provider has no better words for.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A file or directory of the pool could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The pool as configured cannot be used on this node: a property is missing, or the
    /// volume group, thin pool, ZFS pool or directory it names is absent, unreadable, badly
    /// named or not of the right kind.
    #[error("storage pool configuration: {0}")]
    PoolConfig(String),
    /// A volume or snapshot name the pool's tools cannot take (it would be read as an option,
    /// a path or several arguments).
    #[error("{0}")]
    InvalidName(String),
    /// A volume of no size was asked for.
    #[error("volume '{volume}' cannot be created with a size of 0 KiB")]
    ZeroSize { volume: String },
    #[error("'{0}' exists but was not created by this system; it is left alone")]
    NotOwned(String),
    /// An object of ours that lies outside this pool (another thin pool of the volume group,
    /// say), or a foreign one that cannot be adopted into it.
    #[error("{0}")]
    NotInPool(String),
    /// The volume or snapshot a request is about does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A snapshot a request names does not exist in the pool (`place` names the pool).
    #[error("snapshot '{snapshot}' of volume '{volume}' not found in {place}")]
    SnapshotNotFound {
        volume: String,
        snapshot: String,
        place: String,
    },
    /// The name a request would create is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// A block device is held (mounted or opened); `fix` says what to do.
    #[error("{device} is in use (mounted or opened); {fix}")]
    InUse { device: String, fix: &'static str },
    /// Other objects depend on the one to change (clones, newer snapshots); they go first.
    #[error("{0}")]
    HasDependents(String),
    /// A logical volume that stays inactive after activation.
    #[error(
        "logical volume '{volume}' does not become active (lv_attr {attr}); check \
         activation/volume_list in lvm.conf"
    )]
    NotActivated { volume: String, attr: String },
    /// A tool refused a change; `said` is its complaint.
    #[error("{command} failed: {said}")]
    ToolFailed { command: String, said: String },
    #[error("{0}")]
    Unsupported(String),
    /// The request cannot be met as things are on the node; the message says why.
    #[error("{0}")]
    Refused(String),
    #[error("unexpected output of {tool}: {reason}")]
    Parse { tool: String, reason: String },
}

impl StorageError {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// An I/O problem at `path` that no `std::io::Error` describes, said as `reason`.
    pub fn io_other(path: impl AsRef<std::path::Path>, reason: String) -> StorageError {
        StorageError::io(path, std::io::Error::other(reason))
    }
}

/// A volume a provider holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingVolume {
    pub name: String,
    /// Where the volume lives: the image file, the LV or the zvol.
    pub path: String,
    /// The block device to use; `None` while not activated (e.g. a file without loop device).
    pub device: Option<String>,
    /// Size users get, in KiB.
    pub size_kib: u64,
    /// Space it takes in the pool, in KiB.
    pub allocated_kib: u64,
}

/// Tag or marker of a snapshot this suite took (it is not a volume: `list` leaves it out).
pub const SNAPSHOT_MARK: &str = "strata_snapshot";

/// A snapshot of one volume, held by a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotVolume {
    /// The volume it was taken of (its backing name); the volume may be gone since.
    pub volume: String,
    pub snapshot: String,
    /// Where it lives: the LV, the file or the ZFS snapshot.
    pub path: String,
    /// Size of the volume when the snapshot was taken, in KiB.
    pub size_kib: u64,
}

/// The refusal of a provider without snapshots.
pub fn no_snapshots(kind: ProviderKind) -> StorageError {
    StorageError::Unsupported(format!(
        "{kind} storage pools cannot take snapshots; use a pool of kind LVM_THIN, FILE_THIN, ZFS or ZFS_THIN"
    ))
}

/// One storage pool on this node.
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// Checks that the backing pool exists and is usable.
    fn check(&self) -> Result<(), StorageError>;

    /// Capacity of the pool.
    fn state(&self) -> Result<PoolState, StorageError>;

    /// The volumes of this pool this suite created, with their devices.
    fn list(&self) -> Result<Vec<BackingVolume>, StorageError>;

    /// Makes volume `name` exist with at least `size_kib` and be usable as a block device.
    /// `current` is what `list` found for it. Never shrinks.
    fn ensure(
        &self,
        name: &str,
        size_kib: u64,
        current: Option<&BackingVolume>,
    ) -> Result<BackingVolume, StorageError>;

    /// Removes volume `name` if this suite created it; absent volumes are fine.
    fn delete(&self, name: &str, current: Option<&BackingVolume>) -> Result<(), StorageError>;

    /// Makes volume `name` (ours, `current` as listed) `size_kib` small: its end is cut off.
    /// Nothing may use it.
    fn shrink(
        &self,
        name: &str,
        size_kib: u64,
        current: &BackingVolume,
    ) -> Result<BackingVolume, StorageError> {
        let _ = (name, size_kib, current);
        Err(StorageError::Unsupported(format!(
            "{} storage pools cannot shrink volumes",
            self.kind()
        )))
    }

    /// Renames our volume `from` (`current` as listed) to `to`, which must not exist. The
    /// volume may come back detached (the next `ensure` attaches it).
    fn rename(
        &self,
        from: &str,
        to: &str,
        current: &BackingVolume,
    ) -> Result<BackingVolume, StorageError> {
        let _ = (from, to, current);
        Err(StorageError::Unsupported(format!(
            "{} storage pools cannot rename volumes",
            self.kind()
        )))
    }

    /// Takes over volume `name`, which exists in the pool without being this suite's: a
    /// volume definition names it (OverrideVlmId), so the administrator hands it over. From
    /// then on it is listed, grown and deleted as ours. It must hold at least `size_kib`;
    /// when it does not, or is not a volume of this pool, nothing is changed. `None` when
    /// there is no such volume; one that is ours already is returned as it is.
    fn adopt(&self, name: &str, size_kib: u64) -> Result<Option<BackingVolume>, StorageError>;

    /// The snapshots of this pool this suite took.
    fn snapshots(&self) -> Result<Vec<SnapshotVolume>, StorageError> {
        Ok(Vec::new())
    }

    /// Takes snapshot `snapshot` of volume `volume` (a point-in-time copy that does not
    /// change); an existing one of that volume and name is kept as it is.
    fn snapshot_create(
        &self,
        volume: &str,
        snapshot: &str,
    ) -> Result<SnapshotVolume, StorageError> {
        let _ = (volume, snapshot);
        Err(no_snapshots(self.kind()))
    }

    /// Removes snapshot `snapshot` of `volume` if this suite took it; absent ones are fine.
    fn snapshot_delete(&self, volume: &str, snapshot: &str) -> Result<(), StorageError> {
        let _ = (volume, snapshot);
        Err(no_snapshots(self.kind()))
    }

    /// Makes the new volume `target` with the content of snapshot `snapshot` of `volume`.
    /// The snapshot stays; `target` must not exist.
    fn snapshot_restore(
        &self,
        volume: &str,
        snapshot: &str,
        target: &str,
    ) -> Result<BackingVolume, StorageError> {
        let _ = (volume, snapshot, target);
        Err(no_snapshots(self.kind()))
    }

    /// Gives `volume` the content of its snapshot `snapshot` again (nothing may use the
    /// volume). The snapshot stays; the volume is left detached where that applies (the next
    /// `ensure` attaches it).
    fn snapshot_rollback(&self, volume: &str, snapshot: &str) -> Result<(), StorageError> {
        let _ = (volume, snapshot);
        Err(no_snapshots(self.kind()))
    }
}

/// Refuses adopting volume `id` of `has_kib` where `needs_kib` are needed.
pub fn check_adoptable_size(id: &str, has_kib: u64, needs_kib: u64) -> Result<(), StorageError> {
    if has_kib >= needs_kib {
        return Ok(());
    }
    Err(StorageError::Refused(format!(
        "'{id}' exists with {has_kib} KiB, less than the {needs_kib} KiB its volume definition \
         needs (with DRBD: net size plus metadata, unless AllowLargerVolumeSize is set); it is \
         left as it is: grow it or make the volume definition smaller"
    )))
}

/// Copies the first `bytes` of block device `src` onto `dst` and flushes `dst` (a clone
/// from a pool without snapshots: the source must not change meanwhile).
pub fn copy_device(src: &str, dst: &str, bytes: u64) -> Result<(), StorageError> {
    use std::io::{Read, Write};
    let mut from = std::fs::File::open(src).map_err(|e| StorageError::io(src, e))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .open(dst)
        .map_err(|e| StorageError::io(dst, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = from
            .read(&mut buf[..want])
            .map_err(|e| StorageError::io(src, e))?;
        if n == 0 {
            return Err(StorageError::io_other(
                src,
                format!("ended {left} bytes early"),
            ));
        }
        to.write_all(&buf[..n])
            .map_err(|e| StorageError::io(dst, e))?;
        left -= n as u64;
    }
    to.sync_all().map_err(|e| StorageError::io(dst, e))
}

/// Whether a block device is in use (mounted, held by a device mapper or DRBD, or opened
/// exclusively): the kernel refuses an exclusive open of such a device with EBUSY.
pub fn device_in_use(dev: &str) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(dev)
    {
        Ok(_) => false,
        Err(e) => e.raw_os_error() == Some(nix::libc::EBUSY),
    }
}

/// Opens the provider for a pool from its kind and properties.
pub fn open(
    kind: ProviderKind,
    props: &BTreeMap<String, String>,
    runner: Arc<dyn CommandRunner>,
) -> Result<Box<dyn Provider>, StorageError> {
    let need = |key: &str| -> Result<String, StorageError> {
        props
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .ok_or_else(|| StorageError::PoolConfig(format!("property '{key}' is not set")))
    };
    Ok(match kind {
        ProviderKind::Diskless => Box::new(diskless::Diskless),
        ProviderKind::File | ProviderKind::FileThin => Box::new(file::FilePool::new(
            need("StorDriver/FileDir")?.into(),
            kind == ProviderKind::FileThin,
            runner,
        )),
        ProviderKind::Lvm => Box::new(lvm::LvmPool::thick(need("StorDriver/LvmVg")?, runner)),
        ProviderKind::LvmThin => Box::new(lvm::LvmPool::thin(
            need("StorDriver/LvmVg")?,
            need("StorDriver/ThinPool")?,
            runner,
        )),
        ProviderKind::Zfs => Box::new(zfs::ZfsPool::new(need("StorDriver/ZPool")?, false, runner)),
        ProviderKind::ZfsThin => Box::new(zfs::ZfsPool::new(
            need("StorDriver/ZPoolThin")?,
            true,
            runner,
        )),
        other => {
            return Err(StorageError::Unsupported(format!(
                "the {other} provider is not supported"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variants with fields read as the messages they replace did.
    #[test]
    fn messages_say_what_failed() {
        let cases = [
            (
                StorageError::ZeroSize {
                    volume: "r_00000".into(),
                },
                "volume 'r_00000' cannot be created with a size of 0 KiB",
            ),
            (
                StorageError::SnapshotNotFound {
                    volume: "r_00000".into(),
                    snapshot: "s1".into(),
                    place: "pool 'tank'".into(),
                },
                "snapshot 's1' of volume 'r_00000' not found in pool 'tank'",
            ),
            (
                StorageError::InUse {
                    device: "/dev/loop3".into(),
                    fix: "stop using it first",
                },
                "/dev/loop3 is in use (mounted or opened); stop using it first",
            ),
            (
                StorageError::NotActivated {
                    volume: "vg/r_00000".into(),
                    attr: "-wi-------".into(),
                },
                "logical volume 'vg/r_00000' does not become active (lv_attr -wi-------); \
                 check activation/volume_list in lvm.conf",
            ),
            (
                StorageError::ToolFailed {
                    command: "zfs rollback".into(),
                    said: "busy".into(),
                },
                "zfs rollback failed: busy",
            ),
            (
                StorageError::PoolConfig("property 'StorDriver/LvmVg' is not set".into()),
                "storage pool configuration: property 'StorDriver/LvmVg' is not set",
            ),
            (
                StorageError::io_other("/pool/a.img", "ended 512 bytes early".into()),
                "/pool/a.img: ended 512 bytes early",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }

    /// An I/O error keeps the error it came from.
    #[test]
    fn io_errors_keep_their_source() {
        let e = StorageError::io(
            "/pool",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        let source = std::error::Error::source(&e).expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(e.to_string(), format!("/pool: {io}"));
    }
}
