//! The controller: owns the cluster's desired state, serves the LINSTOR REST API v1, persists
//! every mutation in the embedded database before answering, and keeps one link per
//! satellite.

pub mod clone;
pub mod config;
pub mod core;
pub mod dbmove;
pub mod env;
pub mod errors;
pub mod events;
pub mod https;
pub mod leader;
pub mod link;
pub mod metrics;
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
    let opened = match &settings.database {
        // Prefix, limits and TLS are not part of the URL.
        Database::Etcd(cfg) => {
            strata_store::EtcdStore::open(cfg.clone()).map(|s| Box::new(s) as Box<dyn Persistence>)
        }
        other => strata_store::open(&other.url()),
    };
    opened.map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", settings.database.shown()))
}

/// Opens the database, loads the state and starts the links. Must be called inside a
/// tokio runtime.
pub fn start(settings: Settings) -> anyhow::Result<Arc<Core>> {
    let store = open_store(&settings)?;
    start_on(store, settings)
}

/// Loads the state from `store` and starts the links (with a database several controllers
/// share, once this one leads). Must be called inside a tokio runtime.
pub fn start_on(store: Box<dyn Persistence>, settings: Settings) -> anyhow::Result<Arc<Core>> {
    let cluster_id = if store.shares_files() {
        shared_identity(store.as_ref(), &settings)?
    } else {
        cluster_id(&cluster_id_file(&settings))?
    };
    let core = Core::new(store, cluster_id, settings)?;
    core.start_links();
    Ok(core)
}

/// The shared file names of what several controllers must agree on.
pub(crate) const SHARED_CLUSTER_ID: &str = "cluster-id";
const SHARED_CA: [&str; 2] = [strata_tls::ca::CA_KEY_FILE, strata_tls::ca::CA_CERT_FILE];

/// The cluster's identity and CA as the database shares them between controllers: what it
/// keeps is written to this controller's data directory; what it does not keep yet (the
/// first start, or a cluster moved in with import-db) is taken from the data directory, or
/// made, and kept there.
fn shared_identity(store: &dyn Persistence, settings: &Settings) -> anyhow::Result<String> {
    let id_file = cluster_id_file(settings);
    let id = match store.shared_file(SHARED_CLUSTER_ID)? {
        Some(kept) => String::from_utf8_lossy(&kept).trim().to_string(),
        None => {
            let id = cluster_id(&id_file)?;
            String::from_utf8_lossy(&store.share_file(SHARED_CLUSTER_ID, id.as_bytes())?)
                .trim()
                .to_string()
        }
    };
    if stored_cluster_id(&id_file).as_deref() != Some(id.as_str()) {
        std::fs::write(&id_file, &id)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", id_file.display()))?;
    }
    let pki = settings.data_dir.join(trust::PKI_DIR);
    let shared = |n: &str| format!("{}/{n}", trust::PKI_DIR);
    let mut kept = Vec::new();
    for name in SHARED_CA {
        kept.push(store.shared_file(&shared(name))?);
    }
    if kept.iter().any(Option::is_none) {
        // Made here (or already here): the database keeps this one.
        strata_tls::ClusterCa::load_or_create(&pki, &id)?;
        kept.clear();
        for name in SHARED_CA {
            let local = std::fs::read(pki.join(name))
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", pki.join(name).display()))?;
            kept.push(Some(store.share_file(&shared(name), &local)?));
        }
    }
    for (name, bytes) in SHARED_CA.iter().zip(kept.into_iter().flatten()) {
        let path = pki.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::create_dir_all(&pki)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", pki.display()))?;
            strata_tls::write_private(&path, &bytes)?;
            tracing::info!("{} taken from the shared database", path.display());
        }
    }
    Ok(id)
}

/// Where the cluster's identity is kept: beside the embedded database (where it always
/// was), else in the data directory.
pub fn cluster_id_file(settings: &Settings) -> PathBuf {
    match &settings.database {
        Database::Sqlite(p) => p.with_extension("cluster-id"),
        Database::Postgres(_) | Database::Etcd(_) => settings.data_dir.join("linstor.cluster-id"),
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

/// The exit status of a controller that lost its leadership (its service manager starts it
/// again, as a standby).
pub const EXIT_LOST_LEADERSHIP: i32 = 75;

/// Stops a controller that no longer leads (with etcd: its lease expired, or a write was
/// refused because another controller leads).
pub fn lost_leadership(why: &str) -> ! {
    tracing::error!(
        "this controller no longer leads the cluster: {why}; stopping now so that nothing more is written or sent (its service manager starts it again as a standby)"
    );
    std::process::exit(EXIT_LOST_LEADERSHIP)
}
