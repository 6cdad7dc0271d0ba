//! The controller: owns the cluster's desired state, serves the LINSTOR REST API v1, persists
//! every mutation in the embedded database before answering, and keeps one link per
//! satellite.

pub mod clone;
pub mod config;
pub mod core;
pub mod env;
pub mod errors;
pub mod https;
pub mod link;
pub mod nodecfg;
pub mod observed;
pub mod rest;
pub mod trust;

use std::path::Path;
use std::sync::Arc;

use strata_store::{Persistence, SqliteStore};

use crate::config::Settings;
use crate::core::Core;

/// Opens the database (creating it and its directory), loads the state and starts the links.
/// Must be called inside a tokio runtime.
pub fn start(settings: Settings) -> anyhow::Result<Arc<Core>> {
    if let Some(dir) = settings.db_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", dir.display()))?;
    }
    let store = SqliteStore::open(&settings.db_path)
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", settings.db_path.display()))?;
    let cluster_id = cluster_id(&settings.db_path)?;
    let core = Core::new(
        Box::new(store) as Box<dyn Persistence>,
        cluster_id,
        settings,
    )?;
    core.start_links();
    Ok(core)
}

/// The cluster's identity, kept next to the database; satellites refuse configurations of
/// another cluster once they hold its volumes.
fn cluster_id(db_path: &Path) -> anyhow::Result<String> {
    let path = db_path.with_extension("cluster-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            let tmp = path.with_extension("cluster-id.tmp");
            std::fs::write(&tmp, &id)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            Ok(id)
        }
    }
}
