//! Persistence of the desired state.
//!
//! The controller commits every mutation as one transaction of [`Change`]s before it answers,
//! and loads the whole state once at start-up. Objects are stored one row each, as JSON keyed
//! by class and case-folded name, so a start-up is a single table scan.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use strata_model::cluster::{Change, Cluster, ObjectClass};

mod etcd;
mod postgres;
mod schema;
pub use etcd::{
    etcd_endpoints, EtcdConfig, EtcdStore, LeaderInfo, DEFAULT_OPS_PER_TXN, DEFAULT_PREFIX,
};
pub use postgres::{libpq_url, PostgresStore};
pub use schema::{backup_path, SCHEMA_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("etcd: {0}")]
    Etcd(String),
    #[error("no etcd member could be reached: {0}")]
    Unreachable(String),
    #[error("this controller no longer leads the cluster (its etcd lease expired and another controller took over); nothing was written")]
    NotLeader,
    #[error("database URL '{0}' is not supported: use sqlite:/path/to/file, a plain path, postgresql://user:password@host:port/database (jdbc:postgresql://... as LINSTOR writes it) or etcd://host:2379,host:2379")]
    UnknownUrl(String),
    #[error("the target database holds a cluster already ({0} objects); import into an empty one")]
    NotEmpty(usize),
    #[error("stored {class} '{key}' cannot be read: {reason}")]
    Corrupt {
        class: String,
        key: String,
        reason: String,
    },
    #[error("the database was written by a newer version (schema {found}, this build knows {SCHEMA_VERSION}); upgrade this controller")]
    TooNew { found: i64 },
    #[error(
        "upgrading the database from schema {from} to {to} failed, nothing was changed: {source}"
    )]
    Migration {
        from: i64,
        to: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the copy of the database kept before an upgrade could not be written to {path}, nothing was changed (free some space there and start again): {source}")]
    Backup {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// How many batches of parsed rows may wait to be applied during a load.
const LOAD_BATCHES_AHEAD: usize = 8;
const LOAD_BATCH: usize = 512;

/// Reads every object, class by class in dependency order (so that indexes see their parents
/// first), and sends them parsed, in batches.
fn read_rows(
    conn: &Connection,
    tx: &std::sync::mpsc::SyncSender<Vec<Change>>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT key, data FROM objects WHERE class = ?1")?;
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    for class in CLASSES {
        let mut rows = stmt.query(params![class.as_str()])?;
        while let Some(row) = rows.next()? {
            let data = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            let change = Change::from_row(class, data).map_err(|e| StoreError::Corrupt {
                class: class.as_str().to_string(),
                key: row.get::<_, String>(0).unwrap_or_default(),
                reason: e.to_string(),
            })?;
            batch.push(change);
            if batch.len() == LOAD_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(LOAD_BATCH));
                if tx.send(full).is_err() {
                    return Ok(());
                }
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(())
}

/// One stored object as it is kept: its class, case-folded key and JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub class: String,
    pub key: String,
    pub data: String,
}

/// The state that `rows` (at `generation`) hold, checked row by row.
pub(crate) fn cluster_of(generation: u64, rows: Vec<Row>) -> Result<Cluster, StoreError> {
    let mut cluster = Cluster::default();
    cluster.generation = generation;
    for class in CLASSES {
        for r in rows.iter().filter(|r| r.class == class.as_str()) {
            let change = Change::from_row(class, &r.data).map_err(|e| StoreError::Corrupt {
                class: r.class.clone(),
                key: r.key.clone(),
                reason: e.to_string(),
            })?;
            cluster.apply(change);
        }
    }
    if let Some(r) = rows
        .iter()
        .find(|r| !CLASSES.iter().any(|c| c.as_str() == r.class))
    {
        return Err(StoreError::Corrupt {
            class: r.class.clone(),
            key: r.key.clone(),
            reason: "no such class of objects".into(),
        });
    }
    Ok(cluster)
}

/// The database a URL names: `sqlite:/path` or a plain path (the embedded default),
/// `postgresql://…`, `postgres://…` or `jdbc:postgresql://…`, `etcd://host:port,…` (with the
/// default prefix and limits: [`EtcdStore::open`] takes them all).
pub fn open(url: &str) -> Result<Box<dyn Persistence>, StoreError> {
    if libpq_url(url).is_some() {
        return Ok(Box::new(PostgresStore::open(url)?));
    }
    if let Some(cfg) = EtcdConfig::from_url(url) {
        return Ok(Box::new(EtcdStore::open(cfg)?));
    }
    match sqlite_path(url) {
        Some(path) => Ok(Box::new(SqliteStore::open(&path)?)),
        None => Err(StoreError::UnknownUrl(url.to_string())),
    }
}

/// The file of an embedded-database URL (`sqlite:/path`, `sqlite:///path`, a plain path).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        return Some(std::path::PathBuf::from(format!(
            "/{}",
            rest.trim_start_matches('/')
        )))
        .filter(|_| rest.starts_with('/'))
        .or_else(|| Some(std::path::PathBuf::from(rest)));
    }
    if url.starts_with("jdbc:") || url.contains("://") {
        return None;
    }
    Some(std::path::PathBuf::from(url))
}

/// Writes `rows` at `generation` into `to`, which must hold no objects; answers how many.
/// Rows that do not read as objects are refused before anything is written.
pub fn import(to: &dyn Persistence, generation: u64, rows: &[Row]) -> Result<usize, StoreError> {
    let (_, there) = to.rows()?;
    if !there.is_empty() {
        return Err(StoreError::NotEmpty(there.len()));
    }
    cluster_of(generation, rows.to_vec())?;
    to.replace_all(generation, rows)?;
    Ok(rows.len())
}

/// Copies every object of `from` into `to`, which must hold none; answers how many.
pub fn copy(from: &dyn Persistence, to: &dyn Persistence) -> Result<usize, StoreError> {
    let (generation, rows) = from.rows()?;
    import(to, generation, &rows)
}

/// What the controller needs from a database.
pub trait Persistence: Send + Sync {
    /// Reads the whole desired state.
    fn load(&self) -> Result<Cluster, StoreError>;
    /// Writes `changes` and the new generation in one transaction; all or nothing.
    fn commit(&self, generation: u64, changes: &[Change]) -> Result<(), StoreError>;
    /// [`Persistence::commit`] for cleanup the controller redoes from the next report should
    /// it be lost (finished deletions): written before it is applied, but without waiting
    /// for the disk to flush it, so a power cut may lose it; the next durable commit makes
    /// it durable too.
    fn commit_cleanup(&self, generation: u64, changes: &[Change]) -> Result<(), StoreError> {
        self.commit(generation, changes)
    }
    /// Every stored object as it is kept, and the generation, read as one snapshot (to
    /// move a cluster from one database to another).
    fn rows(&self) -> Result<(u64, Vec<Row>), StoreError>;
    /// Replaces every stored object with `rows` at `generation`, in one transaction.
    fn replace_all(&self, generation: u64, rows: &[Row]) -> Result<(), StoreError>;
    /// The generation of the last commit.
    fn generation(&self) -> Result<u64, StoreError>;
    /// Whether several controllers share this database, and with it the files they must
    /// agree on (the cluster's CA and identity): see [`Persistence::share_file`].
    fn shares_files(&self) -> bool {
        false
    }
    /// The shared file `name`, if the database keeps it.
    fn shared_file(&self, _name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    /// Keeps `bytes` as the shared file `name` unless one is kept already; answers the
    /// one kept (so that two controllers starting at once agree).
    fn share_file(&self, _name: &str, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(bytes.to_vec())
    }
    /// The etcd store, whose leadership several controllers contend for.
    fn etcd(&self) -> Option<&EtcdStore> {
        None
    }
}

/// A store shared between owners (the controller's core and its leadership's lease keeper).
impl<P: Persistence + ?Sized> Persistence for std::sync::Arc<P> {
    fn load(&self) -> Result<Cluster, StoreError> {
        (**self).load()
    }
    fn commit(&self, generation: u64, changes: &[Change]) -> Result<(), StoreError> {
        (**self).commit(generation, changes)
    }
    fn commit_cleanup(&self, generation: u64, changes: &[Change]) -> Result<(), StoreError> {
        (**self).commit_cleanup(generation, changes)
    }
    fn rows(&self) -> Result<(u64, Vec<Row>), StoreError> {
        (**self).rows()
    }
    fn replace_all(&self, generation: u64, rows: &[Row]) -> Result<(), StoreError> {
        (**self).replace_all(generation, rows)
    }
    fn generation(&self) -> Result<u64, StoreError> {
        (**self).generation()
    }
    fn shares_files(&self) -> bool {
        (**self).shares_files()
    }
    fn shared_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).shared_file(name)
    }
    fn share_file(&self, name: &str, bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
        (**self).share_file(name, bytes)
    }
    fn etcd(&self) -> Option<&EtcdStore> {
        (**self).etcd()
    }
}

pub(crate) const CLASSES: [ObjectClass; 10] = [
    ObjectClass::Ctrl,
    ObjectClass::Node,
    ObjectClass::StorPoolDfn,
    ObjectClass::StorPool,
    ObjectClass::RscGrp,
    ObjectClass::RscDfn,
    ObjectClass::Rsc,
    ObjectClass::RscConn,
    ObjectClass::Snapshot,
    ObjectClass::Security,
];

/// The embedded default database.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        // WAL with full sync: an acknowledged commit survives a crash or a power cut.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        SqliteStore::init(conn, Some(path))
    }

    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::init(Connection::open_in_memory()?, None)
    }

    fn init(mut conn: Connection, file: Option<&Path>) -> Result<SqliteStore, StoreError> {
        schema::bring_up_to_date(&mut conn, file)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Persistence for SqliteStore {
    fn load(&self) -> Result<Cluster, StoreError> {
        let conn = self.lock();
        let mut cluster = Cluster::default();
        let generation: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                r.get(0)
            })
            .optional()?;
        cluster.generation = generation.and_then(|g| g.parse().ok()).unwrap_or(0);
        // This thread reads and parses the rows while another applies them: a start-up
        // costs the longer of the two, not their sum.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Change>>(LOAD_BATCHES_AHEAD);
        std::thread::scope(|s| {
            let applier = s.spawn(move || {
                for batch in rx {
                    for change in batch {
                        cluster.apply(change);
                    }
                }
                cluster
            });
            let read = read_rows(&conn, &tx);
            drop(tx);
            let cluster = applier.join().expect("applying rows does not panic");
            read.map(|()| cluster)
        })
    }

    fn commit(&self, generation: u64, changes: &[Change]) -> Result<(), StoreError> {
        write(&mut self.lock(), generation, changes)
    }

    fn commit_cleanup(&self, generation: u64, changes: &[Change]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        // In WAL mode NORMAL writes the transaction to the log without an fsync; the next
        // FULL commit's fsync covers it, since the log is written in order.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let written = write(&mut conn, generation, changes);
        conn.pragma_update(None, "synchronous", "FULL")?;
        written
    }

    fn rows(&self) -> Result<(u64, Vec<Row>), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let generation = generation_of(&tx)?;
        let mut rows = Vec::new();
        {
            let mut stmt =
                tx.prepare("SELECT class, key, data FROM objects ORDER BY class, key")?;
            let mut q = stmt.query([])?;
            while let Some(r) = q.next()? {
                rows.push(Row {
                    class: r.get(0)?,
                    key: r.get(1)?,
                    data: r.get(2)?,
                });
            }
        }
        tx.commit()?;
        Ok((generation, rows))
    }

    fn replace_all(&self, generation: u64, rows: &[Row]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM objects", [])?;
        {
            let mut put = tx.prepare(
                "INSERT INTO objects (class, key, data, generation) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in rows {
                put.execute(params![r.class, r.key, r.data, generation])?;
            }
        }
        set_generation(&tx, generation)?;
        tx.commit()?;
        Ok(())
    }

    fn generation(&self) -> Result<u64, StoreError> {
        generation_of(&self.lock())
    }
}

fn generation_of(conn: &Connection) -> Result<u64, StoreError> {
    let generation: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(generation.and_then(|g| g.parse().ok()).unwrap_or(0))
}

/// Writes `changes` and `generation` in one transaction.
fn write(conn: &mut Connection, generation: u64, changes: &[Change]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO objects (class, key, data, generation) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (class, key)
             DO UPDATE SET data = excluded.data, generation = excluded.generation",
        )?;
        let mut del = tx.prepare_cached("DELETE FROM objects WHERE class = ?1 AND key = ?2")?;
        for change in changes {
            let (class, key) = change.store_key();
            match change.payload() {
                Some(json) => {
                    put.execute(params![class.as_str(), key, json.to_string(), generation])?;
                }
                None => {
                    del.execute(params![class.as_str(), key])?;
                }
            }
        }
        set_generation(&tx, generation)?;
    }
    tx.commit()?;
    Ok(())
}

/// Records `generation` as the last commit's, within `tx`.
fn set_generation(tx: &rusqlite::Transaction<'_>, generation: u64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![generation.to_string()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::objects::{Node, ResourceGroup};
    use strata_model::{NodeName, NodeType, ResourceGroupName};

    fn node(name: &str) -> Node {
        Node {
            name: NodeName::new(name).unwrap(),
            node_type: NodeType::Satellite,
            props: [("Aux/a".to_string(), "1".to_string())].into(),
            flags: Default::default(),
            net_interfaces: vec![],
            uuid: format!("uuid-{name}"),
        }
    }

    #[test]
    fn commit_and_reload() {
        // The second commit both ways: durable, and as cleanup (not waiting for the flush).
        for cleanup in [false, true] {
            commit_and_reload_with(cleanup);
        }
    }

    #[test]
    fn rows_move_between_databases_whole_or_not_at_all() {
        let from = SqliteStore::open_in_memory().unwrap();
        from.commit(
            7,
            &[
                Change::PutNode(node("alpha")),
                Change::PutNode(node("beta")),
            ],
        )
        .unwrap();
        let to = SqliteStore::open_in_memory().unwrap();
        assert_eq!(copy(&from, &to).unwrap(), 2);
        let c = to.load().unwrap();
        assert_eq!((c.generation, c.nodes.len()), (7, 2));
        assert_eq!(to.generation().unwrap(), 7);
        assert_eq!(from.rows().unwrap(), to.rows().unwrap());
        // Not into a database that holds objects.
        assert!(matches!(copy(&from, &to), Err(StoreError::NotEmpty(2))));
        // Rows that do not read as objects: refused, nothing written.
        let empty = SqliteStore::open_in_memory().unwrap();
        let bad = [Row {
            class: "node".into(),
            key: "gamma".into(),
            data: "{not json".into(),
        }];
        assert!(matches!(
            import(&empty, 3, &bad),
            Err(StoreError::Corrupt { .. })
        ));
        let odd = [Row {
            class: "spaceship".into(),
            key: "x".into(),
            data: "{}".into(),
        }];
        assert!(import(&empty, 3, &odd).is_err());
        assert!(empty.rows().unwrap().1.is_empty());
        assert_eq!(empty.generation().unwrap(), 0);
    }

    #[test]
    fn database_urls() {
        assert_eq!(
            sqlite_path("sqlite:/srv/db.sqlite"),
            Some(std::path::PathBuf::from("/srv/db.sqlite"))
        );
        assert_eq!(
            sqlite_path("sqlite:///srv/db.sqlite"),
            Some(std::path::PathBuf::from("/srv/db.sqlite"))
        );
        assert_eq!(
            sqlite_path("/srv/db.sqlite"),
            Some(std::path::PathBuf::from("/srv/db.sqlite"))
        );
        assert_eq!(sqlite_path("jdbc:h2:/x"), None);
        assert_eq!(sqlite_path("ftp://h/db"), None);
        assert!(matches!(open("ftp://h/db"), Err(StoreError::UnknownUrl(_))));
    }

    fn commit_and_reload_with(cleanup: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        {
            let store = SqliteStore::open(&path).unwrap();
            store
                .commit(
                    1,
                    &[
                        Change::PutNode(node("alpha")),
                        Change::PutNode(node("beta")),
                        Change::PutRscGrp(ResourceGroup {
                            name: ResourceGroupName::new("DfltRscGrp").unwrap(),
                            description: String::new(),
                            props: Default::default(),
                            select_filter: Default::default(),
                            peer_slots: None,
                            volume_groups: Default::default(),
                            uuid: "rg".into(),
                        }),
                    ],
                )
                .unwrap();
            let beta_gone = [Change::DelNode(NodeName::new("BETA").unwrap())];
            if cleanup {
                store.commit_cleanup(2, &beta_gone).unwrap();
                let sync: i64 = store
                    .lock()
                    .query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(sync, 2, "later commits wait for the disk again (FULL)");
            } else {
                store.commit(2, &beta_gone).unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        let c = store.load().unwrap();
        assert_eq!(c.generation, 2);
        assert_eq!(c.nodes.len(), 1);
        let n = c.nodes.values().next().unwrap();
        assert_eq!(n, &node("alpha"));
        assert_eq!(c.rsc_grps.len(), 1);
    }

    #[test]
    fn resource_connections_persist_under_one_key() {
        use strata_model::objects::ResourceConnection;
        use strata_model::ResourceName;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let rsc = ResourceName::new("r1").unwrap();
        let conn = ResourceConnection {
            name: rsc.clone(),
            node_a: NodeName::new("alpha").unwrap(),
            node_b: NodeName::new("beta").unwrap(),
            props: [("DrbdOptions/Net/protocol".to_string(), "A".to_string())].into(),
            flags: Default::default(),
            uuid: "c1".into(),
        };
        {
            let store = SqliteStore::open(&path).unwrap();
            let mut other = conn.clone();
            other.node_b = NodeName::new("gamma").unwrap();
            store
                .commit(
                    1,
                    &[Change::PutRscConn(conn.clone()), Change::PutRscConn(other)],
                )
                .unwrap();
            // Named the other way round and in other case, it is the same row.
            store
                .commit(
                    2,
                    &[Change::DelRscConn(
                        ResourceName::new("R1").unwrap(),
                        NodeName::new("GAMMA").unwrap(),
                        NodeName::new("alpha").unwrap(),
                    )],
                )
                .unwrap();
        }
        let c = SqliteStore::open(&path).unwrap().load().unwrap();
        let loaded: Vec<_> = c.connections_of(&rsc).cloned().collect();
        assert_eq!(loaded, vec![conn]);
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::TooNew { found: 99 })
        ));
    }

    #[test]
    fn corrupt_rows_are_named() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .lock()
            .execute(
                "INSERT INTO objects (class, key, data) VALUES ('node', 'X', '{not json')",
                [],
            )
            .unwrap();
        let err = store.load().unwrap_err();
        assert!(err.to_string().contains("node 'X'"), "{err}");
    }
}
