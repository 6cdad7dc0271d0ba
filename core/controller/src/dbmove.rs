//! `linstor-controller export-db FILE` / `import-db FILE`: a cluster's state moved from one
//! database to another (the embedded SQLite, PostgreSQL) through a file, row by row as the
//! databases keep it, with the cluster's identity.

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
}

/// Writes every object of the configured database to `file`; answers how many.
pub fn export_db(settings: &Settings, file: &Path) -> anyhow::Result<usize> {
    let store = open_store(settings)?;
    let (generation, rows) = store.rows()?;
    let n = rows.len();
    let export = Export {
        format: FORMAT.into(),
        schema: strata_store::SCHEMA_VERSION,
        generation,
        cluster_id: stored_cluster_id(&cluster_id_file(settings)),
        rows,
    };
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&export)?)
        .and_then(|_| std::fs::rename(&tmp, file))
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
    }
    Ok(n)
}
