//! The database's schema and how an older one becomes the current one.
//!
//! Every database starts as version 1, the schema of the first release, and is brought to
//! [`SCHEMA_VERSION`] by a chain of steps, each turning version N into N+1. A fresh database
//! walks the same chain as an upgraded one, so there is one way to the current schema and it
//! is exercised by every test that opens a store. An upgrade runs all its steps and the new
//! version number in one transaction: it completes or leaves the database as it was. Before
//! upgrading a database file a copy of it is written beside it (`<file>.schema-v<N>.bak`), so
//! that an administrator can go back to the previous release.
//!
//! To change the schema or the stored form of an object: add a step at the end of
//! [`MIGRATIONS`], raise [`SCHEMA_VERSION`], and keep a database written by the previous
//! version under `fixtures/` with a test that opens it and sees every object.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::StoreError;

/// Schema version this build writes; newer databases are refused rather than misread.
pub const SCHEMA_VERSION: i64 = 2;

/// Version 1: a table of settings and one row of JSON per object, keyed by class and
/// case-folded name.
const BASE_SCHEMA: &str = "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE objects (
        class TEXT NOT NULL,
        key   TEXT NOT NULL,
        data  TEXT NOT NULL,
        PRIMARY KEY (class, key)
    ) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('schema_version', '1');";

/// One step of the chain: turns a database of version `to - 1` into version `to`.
pub(crate) struct Migration {
    pub(crate) to: i64,
    /// What the step changes, for the log and the history table.
    pub(crate) what: &'static str,
    pub(crate) step: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// The chain, in order; `MIGRATIONS[i]` leads to version `i + 2`.
pub(crate) const MIGRATIONS: [Migration; 1] = [Migration {
    to: 2,
    what: "every object row records the generation of the commit that last wrote it; \
           upgrades are recorded in schema_history",
    step: v1_to_v2,
}];

/// Version 2: rows carry the generation that wrote them (0 for rows written before), so
/// that what changed since a generation can be read without comparing whole states; and
/// every upgrade is written down with when it ran and which release ran it.
fn v1_to_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE objects ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
         CREATE TABLE schema_history (
             version    INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL,
             release    TEXT NOT NULL
         );",
    )
}

/// The version of the database behind `conn`, or `None` when it has no schema yet.
pub(crate) fn version_of(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    let version: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match version {
        // The first release created its tables before it wrote the version; a database
        // with tables and no version is one of those.
        None => Ok(Some(1)),
        Some(v) => v.parse().map(Some).map_err(|_| StoreError::Corrupt {
            class: "meta".into(),
            key: "schema_version".into(),
            reason: format!("'{v}' is not a version number"),
        }),
    }
}

/// Brings the database behind `conn` to [`SCHEMA_VERSION`]; `file` is where it lives on
/// disk (none for an in-memory database), for the copy kept before an upgrade.
pub(crate) fn bring_up_to_date(
    conn: &mut Connection,
    file: Option<&Path>,
) -> Result<(), StoreError> {
    let found = version_of(conn)?;
    let from = match found {
        Some(v) if v > SCHEMA_VERSION => return Err(StoreError::TooNew { found: v }),
        Some(v) if v == SCHEMA_VERSION => return Ok(()),
        Some(v) if v < 1 => {
            return Err(StoreError::Corrupt {
                class: "meta".into(),
                key: "schema_version".into(),
                reason: format!("version {v} never existed"),
            })
        }
        Some(v) => {
            if let Some(file) = file {
                keep_copy(conn, file, v)?;
            }
            v
        }
        None => 0,
    };
    let tx = conn.transaction()?;
    if from == 0 {
        tx.execute_batch(BASE_SCHEMA)?;
    }
    let start = from.max(1);
    for m in MIGRATIONS.iter().filter(|m| m.to > start) {
        (m.step)(&tx).map_err(|source| StoreError::Migration {
            from: m.to - 1,
            to: m.to,
            source,
        })?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            params![m.to.to_string()],
        )?;
        tx.execute(
            "INSERT INTO schema_history (version, applied_at, release) \
             VALUES (?1, datetime('now'), ?2)",
            params![m.to, env!("CARGO_PKG_VERSION")],
        )?;
        if from != 0 {
            tracing::info!("database upgraded to schema version {}: {}", m.to, m.what);
        }
    }
    tx.commit()?;
    Ok(())
}

/// Where the copy of a database file of `version` is kept before it is upgraded.
pub fn backup_path(file: &Path, version: i64) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".schema-v{version}.bak"));
    PathBuf::from(name)
}

/// Writes a consistent copy of the database to [`backup_path`], unless one is there
/// already: a copy left by an upgrade that failed holds the same data.
fn keep_copy(conn: &Connection, file: &Path, version: i64) -> Result<(), StoreError> {
    let copy = backup_path(file, version);
    if copy.exists() {
        return Ok(());
    }
    let target = copy.to_str().ok_or_else(|| StoreError::Backup {
        path: copy.clone(),
        source: rusqlite::Error::InvalidPath(copy.clone()),
    })?;
    conn.execute("VACUUM INTO ?1", params![target])
        .map_err(|source| StoreError::Backup { path: copy, source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Persistence, SqliteStore};
    use strata_model::cluster::Change;
    use strata_model::{NodeName, ResourceName, SnapshotName};

    /// A database written by version 1 (the first release): two nodes with pools, two
    /// resource groups, two definitions with three resources, a resource connection, a
    /// snapshot and a controller property, at generation 18.
    const V1: &str = include_str!("../fixtures/schema-v1.sql");

    fn v1_file(dir: &Path) -> PathBuf {
        let path = dir.join("linstor.sqlite");
        Connection::open(&path).unwrap().execute_batch(V1).unwrap();
        path
    }

    fn columns(conn: &Connection, table: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap();
        let names = stmt.query_map([], |r| r.get(0)).unwrap();
        names.map(|n| n.unwrap()).collect()
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let names = stmt.query_map([], |r| r.get(0)).unwrap();
        names.map(|n| n.unwrap()).collect()
    }

    /// The rows of a two-column query.
    fn pairs<A: rusqlite::types::FromSql, B: rusqlite::types::FromSql>(
        conn: &Connection,
        sql: &str,
    ) -> Vec<(A, B)> {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    #[test]
    fn the_chain_leads_step_by_step_to_the_current_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                m.to,
                i as i64 + 2,
                "step {i} must lead to version {}",
                i + 2
            );
            assert!(!m.what.is_empty());
        }
        assert_eq!(MIGRATIONS.last().map_or(1, |m| m.to), SCHEMA_VERSION);
    }

    #[test]
    fn a_version_1_database_opens_with_every_object() {
        let dir = tempfile::tempdir().unwrap();
        let path = v1_file(dir.path());
        let store = SqliteStore::open(&path).unwrap();
        let c = store.load().unwrap();
        assert_eq!(c.generation, 18);
        assert_eq!(
            c.ctrl_props
                .get("DrbdOptions/Net/max-buffers")
                .map(String::as_str),
            Some("8000")
        );
        let alpha = NodeName::new("alpha").unwrap();
        let beta = NodeName::new("beta").unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(
            c.nodes[&alpha].props.get("Aux/rack").map(String::as_str),
            Some("r1")
        );
        assert_eq!(c.stor_pool_dfns.len(), 2);
        let pools: usize = c.stor_pools.values().map(|p| p.len()).sum();
        assert_eq!(pools, 4);
        assert_eq!(c.rsc_grps.len(), 2);
        assert_eq!(c.rsc_dfns.len(), 2);
        let vol1 = ResourceName::new("vol1").unwrap();
        let rd2 = ResourceName::new("rd2").unwrap();
        assert!(c.resource(&vol1, &alpha).is_some());
        assert!(c.resource(&vol1, &beta).is_some());
        assert!(c.resource(&rd2, &alpha).is_some());
        assert!(c.resource(&rd2, &beta).is_none());
        assert_eq!(
            c.rsc_dfns[&rd2].props.get("Aux/owner").map(String::as_str),
            Some("test")
        );
        let conns: Vec<_> = c.connections_of(&vol1).collect();
        assert_eq!(conns.len(), 1);
        assert_eq!(
            conns[0]
                .props
                .get("DrbdOptions/Net/max-buffers")
                .map(String::as_str),
            Some("9000")
        );
        let snap = c
            .snapshot(&vol1, &SnapshotName::new("snap1").unwrap())
            .expect("the snapshot survives the upgrade");
        assert_eq!(snap.volumes.len(), 1);
    }

    #[test]
    fn an_upgrade_keeps_a_copy_and_records_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = v1_file(dir.path());
        let store = SqliteStore::open(&path).unwrap();
        // Rows written before the upgrade say so; a commit stamps the rows it writes.
        let node = store.load().unwrap().nodes.values().next().unwrap().clone();
        store.commit(19, &[Change::PutNode(node)]).unwrap();
        drop(store);

        let conn = Connection::open(&path).unwrap();
        assert_eq!(version_of(&conn).unwrap(), Some(SCHEMA_VERSION));
        let stamped: Vec<(String, i64)> = pairs(
            &conn,
            "SELECT key, generation FROM objects WHERE class = 'node' ORDER BY key",
        );
        assert_eq!(
            stamped,
            [("ALPHA".to_string(), 19), ("BETA".to_string(), 0)]
        );
        let history: Vec<(i64, String)> =
            pairs(&conn, "SELECT version, release FROM schema_history");
        assert_eq!(history, [(2, env!("CARGO_PKG_VERSION").to_string())]);

        // The copy is the untouched version 1 database, and it is not written again.
        let copy = backup_path(&path, 1);
        let old = Connection::open(&copy).unwrap();
        assert_eq!(version_of(&old).unwrap(), Some(1));
        assert_eq!(columns(&old, "objects"), ["class", "key", "data"]);
        let rows: i64 = old
            .query_row("SELECT count(*) FROM objects", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 18);
        let before = std::fs::metadata(&copy).unwrap().modified().unwrap();
        drop(SqliteStore::open(&path).unwrap());
        assert_eq!(
            std::fs::metadata(&copy).unwrap().modified().unwrap(),
            before
        );
    }

    #[test]
    fn a_fresh_database_has_the_schema_of_an_upgraded_one() {
        let dir = tempfile::tempdir().unwrap();
        let upgraded = v1_file(dir.path());
        drop(SqliteStore::open(&upgraded).unwrap());
        let fresh = dir.path().join("fresh.sqlite");
        drop(SqliteStore::open(&fresh).unwrap());
        let (a, b) = (
            Connection::open(&upgraded).unwrap(),
            Connection::open(&fresh).unwrap(),
        );
        assert_eq!(tables(&a), tables(&b));
        for t in tables(&a) {
            assert_eq!(columns(&a, &t), columns(&b, &t), "table {t}");
        }
        assert_eq!(version_of(&b).unwrap(), Some(SCHEMA_VERSION));
        // A fresh database was never upgraded: no copy of it is made.
        assert!(!backup_path(&fresh, 1).exists());
    }

    #[test]
    fn a_failed_step_leaves_the_database_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = v1_file(dir.path());
        // A table in the way of the step's own makes it fail half-way through.
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE schema_history (x INTEGER)")
            .unwrap();
        let err = SqliteStore::open(&path).err().expect("the upgrade fails");
        assert!(
            matches!(err, StoreError::Migration { from: 1, to: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("nothing was changed"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version_of(&conn).unwrap(), Some(1));
        assert_eq!(columns(&conn, "objects"), ["class", "key", "data"]);
    }

    #[test]
    fn a_version_that_never_existed_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(BASE_SCHEMA).unwrap();
        conn.execute(
            "UPDATE meta SET value = 'x' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        assert!(matches!(version_of(&conn), Err(StoreError::Corrupt { .. })));
    }
}
