//! The controller: owns the cluster's desired state, serves the LINSTOR REST API v1, persists
//! every mutation in the embedded database before answering, and keeps one link per
//! satellite.

pub mod clone;
pub mod config;
pub mod core;
pub mod dbmove;
pub mod env;
pub mod errors;
pub mod https;
pub mod link;
pub mod nodecfg;
pub mod observed;
pub mod rest;
pub mod trust;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_store::Persistence;

use crate::config::{Database, Settings};
use crate::core::Core;

/// Opens the database (creating the data directory, where the embedded one lives).
pub fn open_store(settings: &Settings) -> anyhow::Result<Box<dyn Persistence>> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            settings.data_dir.display()
        )
    })?;
    strata_store::open(&settings.database.url())
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", settings.database.shown()))
}

/// Opens the database, loads the state and starts the links. Must be called inside a
/// tokio runtime.
pub fn start(settings: Settings) -> anyhow::Result<Arc<Core>> {
    let store = open_store(&settings)?;
    let cluster_id = cluster_id(&cluster_id_file(&settings))?;
    let core = Core::new(store, cluster_id, settings)?;
    core.start_links();
    Ok(core)
}

/// Where the cluster's identity is kept: beside the embedded database (where it always
/// was), else in the data directory.
pub fn cluster_id_file(settings: &Settings) -> PathBuf {
    match &settings.database {
        Database::Sqlite(p) => p.with_extension("cluster-id"),
        Database::Postgres(_) => settings.data_dir.join("linstor.cluster-id"),
    }
}

/// The identity kept in `path`, if there is one.
pub fn stored_cluster_id(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The cluster's identity, kept next to the database; satellites refuse configurations of
/// another cluster once they hold its volumes.
fn cluster_id(path: &Path) -> anyhow::Result<String> {
    if let Some(id) = stored_cluster_id(path) {
        return Ok(id);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let tmp = path.with_extension("cluster-id.tmp");
    std::fs::write(&tmp, &id)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(id)
}
