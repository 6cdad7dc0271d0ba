//! `linstor-controller export-db FILE` / `import-db FILE`: a cluster's state moved from one
//! database to another (the embedded SQLite, PostgreSQL) through a file, row by row as the
//! databases keep it, with the cluster's identity and CA (the file holds the CA's key: it is
//! written readable by its owner alone).

use std::path::Path;

use serde::{Deserialize, Serialize};
use strata_store::Row;

use crate::config::Settings;
use crate::{cluster_id_file, open_store, stored_cluster_id};

const FORMAT: &str = "strata-db-export";

#[derive(Debug, Serialize, Deserialize)]
struct Export {
    format: String,
    /// The schema the rows are in.
    schema: i64,
    generation: u64,
    cluster_id: Option<String>,
    rows: Vec<Row>,
    /// The cluster CA's files (PEM) by their name in the data directory (`pki/ca.crt`).
    #[serde(default)]
    files: std::collections::BTreeMap<String, String>,
}

/// The files that make the cluster's trust, by their path in the data directory.
fn trust_files() -> [String; 2] {
    [strata_tls::ca::CA_CERT_FILE, strata_tls::ca::CA_KEY_FILE]
        .map(|f| format!("{}/{f}", crate::trust::PKI_DIR))
}

/// Writes every object of the configured database to `file`; answers how many.
pub fn export_db(settings: &Settings, file: &Path) -> anyhow::Result<usize> {
    let store = open_store(settings)?;
    let (generation, rows) = store.rows()?;
    let n = rows.len();
    // What the database shares between controllers first, else this controller's files.
    let shared = |name: &str| -> anyhow::Result<Option<String>> {
        Ok(store
            .shared_file(name)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    let cluster_id = match shared(crate::SHARED_CLUSTER_ID)? {
        Some(id) => Some(id.trim().to_string()),
        None => stored_cluster_id(&cluster_id_file(settings)),
    };
    let mut files = std::collections::BTreeMap::new();
    for name in trust_files() {
        let text = match shared(&name)? {
            Some(t) => Some(t),
            None => std::fs::read_to_string(settings.data_dir.join(&name)).ok(),
        };
        if let Some(t) = text {
            files.insert(name, t);
        }
    }
    let export = Export {
        format: FORMAT.into(),
        schema: strata_store::SCHEMA_VERSION,
        generation,
        cluster_id,
        rows,
        files,
    };
    let tmp = file.with_extension("tmp");
    strata_tls::write_private(&tmp, &serde_json::to_vec_pretty(&export)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, file)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    Ok(n)
}

/// Loads `file` (from [`export_db`]) into the configured database, which must hold no
/// cluster; the cluster's identity comes along unless this controller has one already.
pub fn import_db(settings: &Settings, file: &Path) -> anyhow::Result<usize> {
    let text =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let export: Export = serde_json::from_slice(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a file export-db wrote: {e}", file.display()))?;
    if export.format != FORMAT {
        anyhow::bail!("{} is not a file export-db wrote", file.display());
    }
    if export.schema != strata_store::SCHEMA_VERSION {
        anyhow::bail!(
            "{} holds schema {}, this controller writes {}: import it with the release that exported it",
            file.display(),
            export.schema,
            strata_store::SCHEMA_VERSION
        );
    }
    let store = open_store(settings)?;
    let n = strata_store::import(store.as_ref(), export.generation, &export.rows)?;
    if let Some(id) = &export.cluster_id {
        // The data directory, where the file goes, was made when the store was opened.
        let path = cluster_id_file(settings);
        match stored_cluster_id(&path) {
            None => std::fs::write(&path, id)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
            Some(have) if &have != id => tracing::warn!(
                "this controller's cluster identity ({have}) differs from the exported one ({id}); satellites that hold volumes of the exported cluster will refuse it: copy {} from the old controller",
                path.display()
            ),
            Some(_) => {}
        }
        if store.shares_files() {
            store.share_file(crate::SHARED_CLUSTER_ID, id.as_bytes())?;
        }
    }
    for (name, text) in &export.files {
        if !trust_files().contains(name) {
            continue;
        }
        if store.shares_files() {
            store.share_file(name, text.as_bytes())?;
            continue;
        }
        let path = settings.data_dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(have) if &have != text => tracing::warn!(
                "{} differs from the exported cluster's; nodes of the exported cluster will not trust this controller: replace it with the exported one",
                path.display()
            ),
            Ok(_) => {}
            Err(_) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
                }
                strata_tls::write_private(&path, text.as_bytes())?;
            }
        }
    }
    Ok(n)
}
