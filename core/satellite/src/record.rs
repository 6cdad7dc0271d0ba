//! The satellite's own on-disk record: the last configuration it applied and which volumes it
//! made for which resource. It lets the satellite converge after a restart of itself or of the
//! machine without the controller, and it is written atomically (temporary file, fsync,
//! rename, fsync of the directory) so that a crash leaves either the old or the new record.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use strata_agent_api::{NodeConfig, PoolConfig, ResourceConfig};

pub const RECORD_FILE: &str = "satellite-state.json";

/// Which resource volume a backing volume belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedVolume {
    pub resource: String,
    pub volume_number: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub node_name: Option<String>,
    pub cluster_id: Option<String>,
    pub applied: Option<NodeConfig>,
    /// Every pool the satellite has held volumes in, so that volumes in pools that later
    /// disappear from the configuration are still cleaned up.
    pub known_pools: Vec<PoolConfig>,
    /// `<pool>/<backing name>` -> owner.
    pub volumes: BTreeMap<String, OwnedVolume>,
    /// `<resource>/<volume>` -> backing size (KiB) DRBD was last set up or resized for on this
    /// node. A volume listed here carries DRBD metadata; a larger size in the configuration
    /// means its backing volume grew and DRBD must be resized.
    #[serde(default)]
    pub drbd_sizes: BTreeMap<String, u64>,
    /// `<pool>/<backing name>` -> size (KiB) the configuration last asked for. A smaller one
    /// in the configuration (of a volume without DRBD) is a shrink the controller allowed.
    #[serde(default)]
    pub volume_sizes: BTreeMap<String, u64>,
    /// DRBD resources that left the configuration but could not be taken down yet (in use,
    /// or a DRBD tool failed): retried at every reconcile until they are down.
    #[serde(default)]
    pub drbd_leaving: Vec<ResourceConfig>,
    /// DRBD resources whose I/O this satellite suspended for a snapshot (and must resume).
    #[serde(default)]
    pub io_suspended: std::collections::BTreeSet<String>,
    /// `<resource>/<snapshot>` -> id of the rollback whose volumes were rolled back here (a
    /// rollback happens once per id, however often the configuration arrives).
    #[serde(default)]
    pub rollbacks_done: BTreeMap<String, u64>,
}

impl Record {
    pub fn applied_generation(&self) -> u64 {
        self.applied.as_ref().map(|c| c.generation).unwrap_or(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is damaged and was not used: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
}

pub struct RecordFile {
    path: PathBuf,
}

impl RecordFile {
    pub fn new(state_dir: &Path) -> RecordFile {
        RecordFile {
            path: state_dir.join(RECORD_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the record; a missing file is an empty record, a damaged one an error.
    pub fn load(&self) -> Result<Record, RecordError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(e) => {
                return Err(RecordError::Read {
                    path: self.path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        serde_json::from_str(&text).map_err(|e| RecordError::Corrupt {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Moves a damaged record aside (kept for inspection) so that it is never overwritten or
    /// read as if it were right; returns where it went.
    pub fn quarantine(&self) -> Option<PathBuf> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let to = self.path.with_extension(format!("json.damaged-{stamp}"));
        fs::rename(&self.path, &to).ok().map(|_| to)
    }

    pub fn save(&self, record: &Record) -> Result<(), RecordError> {
        let err = |e: std::io::Error| RecordError::Write {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let body = serde_json::to_vec_pretty(record).expect("the record always serializes");
        // No fsync of the directory: should the rename be lost in a power cut, the previous
        // record stays, and a record older than the truth is safe (converging from it never
        // removes anything; the controller's next configuration settles the rest).
        write_atomically(&self.path, &body).map_err(err)
    }
}

/// Replaces `path` with `body` in one step: written and flushed beside it as `<name>.tmp`,
/// then renamed over it, so a reader sees the old content or the new, never a part.
pub(crate) fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut f = File::create(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let f = RecordFile::new(dir.path());
        assert_eq!(f.load().unwrap(), Record::default());
        let mut r = Record {
            node_name: Some("alpha".into()),
            ..Default::default()
        };
        r.volumes.insert(
            "pool1/r_00000".into(),
            OwnedVolume {
                resource: "r".into(),
                volume_number: 0,
            },
        );
        f.save(&r).unwrap();
        assert_eq!(f.load().unwrap(), r);
        fs::write(f.path(), b"{\"node_name\": \"al").unwrap();
        assert!(matches!(f.load(), Err(RecordError::Corrupt { .. })));
    }
}
