//! What this node knows without the controller: the devices of the disks activated here,
//! kept in `<state dir>/devices.json` (`STRATA_PVE_STATE_DIR`, default
//! `/var/lib/strata/pve`). When the controller cannot be reached, `path` and
//! `activate_volume` of a disk already set up on this node answer from it, so that running
//! VMs keep their disks and a VM whose disk is here can start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_STATE_DIR: &str = "/var/lib/strata/pve";

fn state_dir() -> PathBuf {
    std::env::var_os("STRATA_PVE_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

fn file() -> PathBuf {
    state_dir().join("devices.json")
}

fn status_file(storeid: &str) -> PathBuf {
    state_dir().join(format!("status-{storeid}.json"))
}

/// The status of `storeid` noted less than `max_age` ago.
pub fn cached_status(storeid: &str, max_age: std::time::Duration) -> Option<serde_json::Value> {
    let path = status_file(storeid);
    let age = std::fs::metadata(&path)
        .ok()?
        .modified()
        .ok()?
        .elapsed()
        .ok()?;
    if age > max_age {
        return None;
    }
    serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
}

/// Notes the status of `storeid` (pvestatd asks every few seconds on every node).
pub fn note_status(storeid: &str, status: &serde_json::Value) {
    let path = status_file(storeid);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::create_dir_all(state_dir())
        .and_then(|_| std::fs::write(&tmp, status.to_string()))
        .and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        eprintln!("strata: cannot note the status in {}: {e}", path.display());
    }
}

fn load(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Writes the map through a temporary file and a rename, so that a reader never sees half.
fn save(path: &Path, map: &BTreeMap<String, String>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(map).expect("a map serializes"))?;
    std::fs::rename(&tmp, path)
}

/// Notes that `volname` (of storage `storeid`) is `device` on this node. A failure to note
/// it is said on stderr (the task log) and costs only the fallback.
pub fn remember(storeid: &str, volname: &str, device: &str) {
    let path = file();
    let mut map = load(&path);
    let key = format!("{storeid}:{volname}");
    if map.get(&key).map(String::as_str) == Some(device) {
        return;
    }
    map.insert(key, device.to_string());
    if let Err(e) = save(&path, &map) {
        eprintln!(
            "strata: cannot note the device of {volname} in {}: {e}",
            path.display()
        );
    }
}

pub fn forget(storeid: &str, volname: &str) {
    let path = file();
    let mut map = load(&path);
    if map.remove(&format!("{storeid}:{volname}")).is_some() {
        let _ = save(&path, &map);
    }
}

/// The device noted for `volname`, if it still exists.
pub fn recall(storeid: &str, volname: &str) -> Option<String> {
    load(&file())
        .remove(&format!("{storeid}:{volname}"))
        .filter(|d| Path::new(d).exists())
}
