//! The satellite's own on-disk record: the last configuration it applied and which volumes it
//! made for which resource. It lets the satellite converge after a restart of itself or of the
//! machine without the controller, and it is written atomically (temporary file, fsync,
//! rename, fsync of the directory) so that a crash leaves either the old or the new record.
//!
//! The file carries its format `version` ([`FORMAT_VERSION`]; a file without one is version
//! 1). Loading brings an older file up to the current version one step at a time
//! ([`MIGRATIONS`]) and refuses a newer one without touching it: a satellite that does not
//! know the format cannot tell what the file says, and must not overwrite it either.
//!
//! Version 2 lists the keyed maps as objects with the key's fields spelled out, e.g.
//! `"volumes": [{"pool": "pool1", "name": "r_00000", "resource": "r", "volume_number": 0}]`,
//! where version 1 keyed them by strings such as `"pool1/r_00000"`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use strata_agent_api::{NodeConfig, PoolConfig, ResourceConfig};

pub const RECORD_FILE: &str = "satellite-state.json";

/// The record format this satellite writes, and the newest it reads.
pub const FORMAT_VERSION: u64 = 2;

/// Which resource volume a backing volume belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedVolume {
    pub resource: String,
    pub volume_number: u32,
}

/// A backing volume: its pool and its name there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VolumeKey {
    pub pool: String,
    pub name: String,
}

impl VolumeKey {
    pub fn new(pool: impl Into<String>, name: impl Into<String>) -> VolumeKey {
        VolumeKey {
            pool: pool.into(),
            name: name.into(),
        }
    }
}

/// A volume of a DRBD resource on this node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DrbdVolumeKey {
    pub resource: String,
    pub volume: u32,
}

impl DrbdVolumeKey {
    pub fn new(resource: impl Into<String>, volume: u32) -> DrbdVolumeKey {
        DrbdVolumeKey {
            resource: resource.into(),
            volume,
        }
    }
}

/// A snapshot of a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SnapshotKey {
    pub resource: String,
    pub snapshot: String,
}

impl SnapshotKey {
    pub fn new(resource: impl Into<String>, snapshot: impl Into<String>) -> SnapshotKey {
        SnapshotKey {
            resource: resource.into(),
            snapshot: snapshot.into(),
        }
    }
}

/// What the satellite keeps about itself (in the file, with the format version beside it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub node_name: Option<String>,
    pub cluster_id: Option<String>,
    pub applied: Option<NodeConfig>,
    /// Every pool the satellite has held volumes in, so that volumes in pools that later
    /// disappear from the configuration are still cleaned up.
    pub known_pools: Vec<PoolConfig>,
    /// Backing volume -> owner.
    #[serde(
        serialize_with = "listed::serialize::<OwnedVolume, _, _, _>",
        deserialize_with = "listed::deserialize::<OwnedVolume, _, _, _>"
    )]
    pub volumes: BTreeMap<VolumeKey, OwnedVolume>,
    /// DRBD volume -> backing size (KiB) DRBD was last set up or resized for on this node. A
    /// volume listed here carries DRBD metadata; a larger size in the configuration means its
    /// backing volume grew and DRBD must be resized.
    #[serde(
        default,
        serialize_with = "listed::serialize::<SizeKib, _, _, _>",
        deserialize_with = "listed::deserialize::<SizeKib, _, _, _>"
    )]
    pub drbd_sizes: BTreeMap<DrbdVolumeKey, u64>,
    /// Backing volume -> size (KiB) the configuration last asked for. A smaller one in the
    /// configuration (of a volume without DRBD) is a shrink the controller allowed.
    #[serde(
        default,
        serialize_with = "listed::serialize::<SizeKib, _, _, _>",
        deserialize_with = "listed::deserialize::<SizeKib, _, _, _>"
    )]
    pub volume_sizes: BTreeMap<VolumeKey, u64>,
    /// DRBD resources that left the configuration but could not be taken down yet (in use,
    /// or a DRBD tool failed): retried at every reconcile until they are down.
    #[serde(default)]
    pub drbd_leaving: Vec<ResourceConfig>,
    /// DRBD resources whose I/O this satellite suspended for a snapshot (and must resume).
    #[serde(default)]
    pub io_suspended: std::collections::BTreeSet<String>,
    /// Snapshot -> id of the rollback whose volumes were rolled back here (a rollback happens
    /// once per id, however often the configuration arrives).
    #[serde(
        default,
        serialize_with = "listed::serialize::<RollbackId, _, _, _>",
        deserialize_with = "listed::deserialize::<RollbackId, _, _, _>"
    )]
    pub rollbacks_done: BTreeMap<SnapshotKey, u64>,
}

impl Record {
    pub fn applied_generation(&self) -> u64 {
        self.applied.as_ref().map(|c| c.generation).unwrap_or(0)
    }
}

/// The keyed maps of the record as the file lists them: one object per entry, the key's
/// fields followed by the value's (`W`, the value as the file names it).
mod listed {
    use super::*;

    #[derive(Serialize)]
    struct Out<'a, K, W> {
        #[serde(flatten)]
        key: &'a K,
        #[serde(flatten)]
        value: W,
    }

    #[derive(Deserialize)]
    struct In<K, W> {
        #[serde(flatten)]
        key: K,
        #[serde(flatten)]
        value: W,
    }

    pub fn serialize<W, K, V, S>(map: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        W: Serialize + From<V>,
        K: Serialize,
        V: Clone,
        S: Serializer,
    {
        s.collect_seq(map.iter().map(|(key, v)| Out {
            key,
            value: W::from(v.clone()),
        }))
    }

    pub fn deserialize<'de, W, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        W: DeserializeOwned + Into<V>,
        K: DeserializeOwned + Ord,
        D: Deserializer<'de>,
    {
        Ok(Vec::<In<K, W>>::deserialize(d)?
            .into_iter()
            .map(|e| (e.key, e.value.into()))
            .collect())
    }
}

/// A size as the file names it.
#[derive(Serialize, Deserialize)]
struct SizeKib {
    size_kib: u64,
}

impl From<u64> for SizeKib {
    fn from(size_kib: u64) -> SizeKib {
        SizeKib { size_kib }
    }
}

impl From<SizeKib> for u64 {
    fn from(s: SizeKib) -> u64 {
        s.size_kib
    }
}

/// The id of a rollback as the file names it.
#[derive(Serialize, Deserialize)]
struct RollbackId {
    id: u64,
}

impl From<u64> for RollbackId {
    fn from(id: u64) -> RollbackId {
        RollbackId { id }
    }
}

impl From<RollbackId> for u64 {
    fn from(r: RollbackId) -> u64 {
        r.id
    }
}

/// A step that brings the file's content from one format version to the next.
type Migration = fn(Map<String, Value>) -> Result<Map<String, Value>, String>;

/// The migrations, in order: `MIGRATIONS[i]` turns version `i + 1` into version `i + 2`.
pub const MIGRATIONS: [Migration; (FORMAT_VERSION - 1) as usize] = [v1_to_v2];

/// Version 1 keyed `volumes` and `volume_sizes` by `"<pool>/<name>"`, `drbd_sizes` by
/// `"<resource>/<volume>"` and `rollbacks_done` by `"<resource>/<snapshot>"` (none of these
/// names can hold a '/'); version 2 lists them as objects with those fields.
fn v1_to_v2(mut doc: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let split = |key: &str, a: &str, b: &str| -> Result<(Value, Value), String> {
        match key.split_once('/') {
            Some((x, y)) if !x.is_empty() && !y.is_empty() => Ok((x.into(), y.into())),
            _ => Err(format!("key '{key}' is not <{a}>/<{b}>")),
        }
    };
    let volume = |key: &str| split(key, "pool", "name");
    let drbd_volume = |key: &str| {
        let (resource, volume) = split(key, "resource", "volume")?;
        let number: u32 = volume
            .as_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("key '{key}' does not end in a volume number"))?;
        Ok((resource, number.into()))
    };
    let snapshot = |key: &str| split(key, "resource", "snapshot");
    relist(&mut doc, "volumes", ("pool", "name"), None, volume)?;
    relist(
        &mut doc,
        "volume_sizes",
        ("pool", "name"),
        Some("size_kib"),
        volume,
    )?;
    relist(
        &mut doc,
        "drbd_sizes",
        ("resource", "volume"),
        Some("size_kib"),
        drbd_volume,
    )?;
    relist(
        &mut doc,
        "rollbacks_done",
        ("resource", "snapshot"),
        Some("id"),
        snapshot,
    )?;
    Ok(doc)
}

/// Turns the object `field` of `doc` (a version-1 map keyed by strings) into a list of
/// objects: the two parts `parse` reads from the key under the `names`, then the value's
/// fields, or the value itself under `value` when it is not an object.
fn relist(
    doc: &mut Map<String, Value>,
    field: &str,
    names: (&str, &str),
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<(Value, Value), String>,
) -> Result<(), String> {
    let Some(old) = doc.remove(field) else {
        return Ok(());
    };
    let Value::Object(old) = old else {
        return Err(format!("'{field}' is not an object"));
    };
    let mut list = Vec::with_capacity(old.len());
    for (key, v) in old {
        let (a, b) = parse(&key).map_err(|e| format!("'{field}': {e}"))?;
        let mut entry = Map::new();
        entry.insert(names.0.into(), a);
        entry.insert(names.1.into(), b);
        match (value, v) {
            (Some(name), v) => {
                entry.insert(name.into(), v);
            }
            (None, Value::Object(fields)) => entry.extend(fields),
            (None, _) => return Err(format!("'{field}': the value of '{key}' is not an object")),
        }
        list.push(Value::Object(entry));
    }
    doc.insert(field.into(), Value::Array(list));
    Ok(())
}

/// The record as the file holds it: the format version, then the record's fields.
#[derive(Serialize)]
struct Versioned<'a> {
    version: u64,
    #[serde(flatten)]
    record: &'a Record,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is damaged and was not used: {reason}")]
    Corrupt { path: String, reason: String },
    /// Written by a newer satellite: left as it is, and the satellite does not start.
    #[error(
        "{path} is a record of format version {version}, newer than this satellite knows \
         (up to version {known}); it was left as it is: run a satellite that knows version \
         {version}"
    )]
    Newer {
        path: String,
        version: u64,
        known: u64,
    },
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

    /// Reads the record; a missing file is an empty record, a damaged one an error, and so is
    /// one of a newer format (which is left alone).
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
        let corrupt = |reason: String| RecordError::Corrupt {
            path: self.path.display().to_string(),
            reason,
        };
        let doc: Map<String, Value> =
            serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        let doc = self.migrate(doc)?;
        serde_json::from_value(Value::Object(doc)).map_err(|e| corrupt(e.to_string()))
    }

    /// Brings the file's content from its format version to [`FORMAT_VERSION`].
    fn migrate(&self, mut doc: Map<String, Value>) -> Result<Map<String, Value>, RecordError> {
        let path = || self.path.display().to_string();
        let version = match doc.remove("version") {
            None => 1,
            Some(v) => v
                .as_u64()
                .filter(|v| *v >= 1)
                .ok_or_else(|| RecordError::Corrupt {
                    path: path(),
                    reason: format!("the format version {v} is not a whole number from 1 on"),
                })?,
        };
        if version > FORMAT_VERSION {
            return Err(RecordError::Newer {
                path: path(),
                version,
                known: FORMAT_VERSION,
            });
        }
        for (from, step) in (version..).zip(&MIGRATIONS[(version - 1) as usize..]) {
            doc = step(doc).map_err(|e| RecordError::Corrupt {
                path: path(),
                reason: format!("as a record of format version {from}: {e}"),
            })?;
        }
        Ok(doc)
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

    /// Writes the record in the current format, atomically, and makes the rename durable.
    pub fn save(&self, record: &Record) -> Result<(), RecordError> {
        let err = |e: std::io::Error| RecordError::Write {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(err)?;
        let body = serde_json::to_vec_pretty(&Versioned {
            version: FORMAT_VERSION,
            record,
        })
        .expect("the record always serializes");
        write_atomically(&self.path, &body).map_err(err)?;
        // The rename is an entry of the directory: flushed with the directory, so that the
        // new record is still there after a power cut.
        File::open(dir).and_then(|d| d.sync_all()).map_err(err)
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
            VolumeKey::new("pool1", "r_00000"),
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

    /// A record as the unversioned (version 1) code wrote it.
    const V1: &str = include_str!("../tests/fixtures/record-v1.json");

    fn owner(resource: &str, volume_number: u32) -> OwnedVolume {
        OwnedVolume {
            resource: resource.into(),
            volume_number,
        }
    }

    /// Every entry of the version-1 fixture, as the record holds it.
    fn check_v1_entries(r: &Record) {
        assert_eq!(r.node_name.as_deref(), Some("alpha"));
        assert_eq!(
            r.cluster_id.as_deref(),
            Some("0f3c2a9e-5b7d-4c1e-9a44-1d2e3f405162")
        );
        let applied = r.applied.as_ref().expect("the applied configuration");
        assert_eq!(r.applied_generation(), 5);
        let names: Vec<&str> = applied.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["web", "db", "legacy"]);
        assert_eq!(applied.snapshots.len(), 1);
        let pools: Vec<&str> = r.known_pools.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pools, ["pool_file", "pool_ssd", "old_pool"]);
        let volumes = BTreeMap::from([
            (VolumeKey::new("old_pool", "gone_00000"), owner("gone", 0)),
            (
                VolumeKey::new("pool_file", "legacy-disk.1"),
                owner("legacy", 0),
            ),
            (VolumeKey::new("pool_file", "web_00000"), owner("web", 0)),
            (VolumeKey::new("pool_ssd", "db_00000"), owner("db", 0)),
            (VolumeKey::new("pool_ssd", "web_00001"), owner("web", 1)),
        ]);
        assert_eq!(r.volumes, volumes);
        let sizes = BTreeMap::from([
            (VolumeKey::new("old_pool", "gone_00000"), 2048),
            (VolumeKey::new("pool_file", "legacy-disk.1"), 8192),
            (VolumeKey::new("pool_file", "web_00000"), 102400),
            (VolumeKey::new("pool_ssd", "db_00000"), 524288),
            (VolumeKey::new("pool_ssd", "web_00001"), 4096),
        ]);
        assert_eq!(r.volume_sizes, sizes);
        let drbd = BTreeMap::from([
            (DrbdVolumeKey::new("db", 0), 524288),
            (DrbdVolumeKey::new("gone", 0), 2048),
        ]);
        assert_eq!(r.drbd_sizes, drbd);
        assert_eq!(r.drbd_leaving.len(), 1);
        assert_eq!(r.drbd_leaving[0].name, "gone");
        assert_eq!(
            r.drbd_leaving[0].drbd.as_ref().unwrap().volumes[0].minor,
            1003
        );
        assert_eq!(r.io_suspended, ["web".to_string()].into());
        let rollbacks = BTreeMap::from([(SnapshotKey::new("web", "before-upgrade"), 3)]);
        assert_eq!(r.rollbacks_done, rollbacks);
    }

    #[test]
    fn a_version_1_record_is_read_whole_and_written_as_version_2() {
        let dir = tempfile::tempdir().unwrap();
        let f = RecordFile::new(dir.path());
        fs::write(f.path(), V1).unwrap();
        let r = f.load().unwrap();
        check_v1_entries(&r);

        f.save(&r).unwrap();
        let text = fs::read_to_string(f.path()).unwrap();
        assert!(text.starts_with("{\n  \"version\": 2,\n"), "{text}");
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["volumes"][0],
            serde_json::json!({
                "pool": "old_pool", "name": "gone_00000", "resource": "gone", "volume_number": 0
            })
        );
        assert_eq!(
            doc["drbd_sizes"][0],
            serde_json::json!({"resource": "db", "volume": 0, "size_kib": 524288})
        );
        assert_eq!(
            doc["volume_sizes"][1],
            serde_json::json!({"pool": "pool_file", "name": "legacy-disk.1", "size_kib": 8192})
        );
        assert_eq!(
            doc["rollbacks_done"],
            serde_json::json!([{"resource": "web", "snapshot": "before-upgrade", "id": 3}])
        );
        // The applied configuration is kept as it was.
        let v1: Value = serde_json::from_str(V1).unwrap();
        assert_eq!(doc["applied"], v1["applied"]);
        let again = f.load().unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn a_newer_record_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let f = RecordFile::new(dir.path());
        let newer = "{\"version\": 3, \"node_name\": \"alpha\", \"volumes\": {\"x\": 1}}";
        fs::write(f.path(), newer).unwrap();
        let err = f.load().unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::Newer {
                    version: 3,
                    known: FORMAT_VERSION,
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("format version 3"), "{msg}");
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        assert_eq!(fs::read_to_string(f.path()).unwrap(), newer);
    }

    #[test]
    fn a_record_that_does_not_migrate_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let f = RecordFile::new(dir.path());
        for text in [
            "{\"version\": \"two\"}",
            "{\"version\": 0}",
            "{\"volumes\": {\"no-slash\": {\"resource\": \"r\", \"volume_number\": 0}}}",
            "{\"drbd_sizes\": {\"r/zero\": 10}}",
            "{\"version\": 2, \"volumes\": {\"pool1/r_00000\": {}}}",
        ] {
            fs::write(f.path(), text).unwrap();
            let err = f.load().unwrap_err();
            assert!(matches!(err, RecordError::Corrupt { .. }), "{text}: {err}");
        }
    }
}
