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

use std::path::Path;
use std::sync::Arc;

use strata_store::Persistence;

use crate::config::{Database, Settings};
use crate::core::Core;

/// Opens the database (creating the embedded one and its directory), loads the state and
/// starts the links. Must be called inside a tokio runtime.
pub fn start(settings: Settings) -> anyhow::Result<Arc<Core>> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data directory {}: {e}",
            settings.data_dir.display()
        )
    })?;
    let store = strata_store::open(&settings.database.url())
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", settings.database.shown()))?;
    let id_file = match &settings.database {
        Database::Sqlite(p) => p.with_extension("cluster-id"),
        Database::Postgres(_) => settings.data_dir.join("linstor.cluster-id"),
    };
    let cluster_id = cluster_id(&id_file)?;
    let core = Core::new(store as Box<dyn Persistence>, cluster_id, settings)?;
    core.start_links();
    Ok(core)
}

/// The cluster's identity, kept next to the database; satellites refuse configurations of
/// another cluster once they hold its volumes.
fn cluster_id(path: &Path) -> anyhow::Result<String> {
    let path = path.to_path_buf();
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
