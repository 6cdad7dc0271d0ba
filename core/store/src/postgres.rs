//! The desired state in a PostgreSQL database (`postgresql://…`, or LINSTOR's
//! `jdbc:postgresql://…` spelling): the tables of the embedded database, the same schema
//! versions reached by the same chain of steps, one transaction per commit.
//!
//! The client is synchronous and runs its own small runtime: every call is made on a thread
//! of its own so that it may be called from anywhere, a runtime's threads included.

use std::sync::Mutex;

use postgres::{Client, NoTls};
use strata_model::cluster::{Change, Cluster};

use crate::{Persistence, Row, StoreError, CLASSES, SCHEMA_VERSION};

/// Version 1 (see `schema.rs`): settings, and one row of JSON per object.
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
    );
    INSERT INTO meta (key, value) VALUES ('schema_version', '1');";

/// The steps after version 1, as in `schema.rs`: `STEPS[i]` leads to version `i + 2`.
const STEPS: [&str; 1] = ["
    ALTER TABLE objects ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
    CREATE TABLE schema_history (
        version    BIGINT PRIMARY KEY,
        applied_at TEXT NOT NULL,
        release    TEXT NOT NULL
    );"];

fn sql(e: postgres::Error) -> StoreError {
    StoreError::Postgres(e.to_string())
}

/// The libpq form of a database URL: `postgresql://` and `postgres://` as they are;
/// `jdbc:postgresql://host:port/db?user=u&password=p` (LINSTOR's spelling) turned into it.
pub fn libpq_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.starts_with("postgresql://") || url.starts_with("postgres://") {
        return Some(url.to_string());
    }
    url.strip_prefix("jdbc:")
        .filter(|u| u.starts_with("postgresql://"))
        .map(str::to_string)
}

pub struct PostgresStore {
    /// Taken out only when the store drops.
    client: Mutex<Option<Client>>,
}

/// Runs `f` on a thread of its own (see the module's note).
fn apart<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("a database call does not panic"))
}

impl PostgresStore {
    /// Connects to the database at `url` and brings its schema up to date.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let libpq = libpq_url(url)
            .ok_or_else(|| StoreError::Postgres(format!("'{url}' is not a postgresql:// URL")))?;
        let mut client = apart(|| Client::connect(&libpq, NoTls)).map_err(sql)?;
        apart(|| bring_up_to_date(&mut client))?;
        Ok(PostgresStore {
            client: Mutex::new(Some(client)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Client>> {
        self.client.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing the connection blocks too: on a thread of its own.
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        apart(move || drop(client));
    }
}

fn version_of(client: &mut Client) -> Result<Option<i64>, StoreError> {
    let has_meta: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'meta')",
            &[],
        )
        .map_err(sql)?
        .get(0);
    if !has_meta {
        return Ok(None);
    }
    let row = client
        .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .map_err(sql)?;
    match row.map(|r| r.get::<_, String>(0)) {
        None => Ok(Some(1)),
        Some(v) => v.parse().map(Some).map_err(|_| StoreError::Corrupt {
            class: "meta".into(),
            key: "schema_version".into(),
            reason: format!("'{v}' is not a version number"),
        }),
    }
}

fn bring_up_to_date(client: &mut Client) -> Result<(), StoreError> {
    let from = match version_of(client)? {
        Some(v) if v > SCHEMA_VERSION => return Err(StoreError::TooNew { found: v }),
        Some(v) if v == SCHEMA_VERSION => return Ok(()),
        Some(v) => v,
        None => 0,
    };
    let mut tx = client.transaction().map_err(sql)?;
    if from == 0 {
        tx.batch_execute(BASE_SCHEMA).map_err(sql)?;
    }
    for (i, step) in STEPS.iter().enumerate() {
        let to = i as i64 + 2;
        if to <= from.max(1) {
            continue;
        }
        tx.batch_execute(step)
            .map_err(|e| StoreError::Postgres(format!("upgrading to schema {to}: {e}")))?;
        tx.execute(
            "UPDATE meta SET value = $1 WHERE key = 'schema_version'",
            &[&to.to_string()],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO schema_history (version, applied_at, release) \
             VALUES ($1, now()::text, $2)",
            &[&to, &env!("CARGO_PKG_VERSION")],
        )
        .map_err(sql)?;
    }
    tx.commit().map_err(sql)
}

fn generation_of(client: &mut Client) -> Result<u64, StoreError> {
    let row = client
        .query_opt("SELECT value FROM meta WHERE key = 'generation'", &[])
        .map_err(sql)?;
    Ok(row
        .and_then(|r| r.get::<_, String>(0).parse().ok())
        .unwrap_or(0))
}

fn read_all(client: &mut Client) -> Result<(u64, Vec<Row>), StoreError> {
    // One snapshot of the whole state.
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(sql)?;
    let generation = {
        let row = tx
            .query_opt("SELECT value FROM meta WHERE key = 'generation'", &[])
            .map_err(sql)?;
        row.and_then(|r| r.get::<_, String>(0).parse().ok())
            .unwrap_or(0)
    };
    let mut rows = Vec::new();
    for class in CLASSES {
        for r in tx
            .query(
                "SELECT key, data FROM objects WHERE class = $1",
                &[&class.as_str()],
            )
            .map_err(sql)?
        {
            rows.push(Row {
                class: class.as_str().to_string(),
                key: r.get(0),
                data: r.get(1),
            });
        }
    }
    tx.commit().map_err(sql)?;
    Ok((generation, rows))
}

fn write(client: &mut Client, generation: u64, changes: &[Change]) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(sql)?;
    let put = tx
        .prepare(
            "INSERT INTO objects (class, key, data, generation) VALUES ($1, $2, $3, $4)
             ON CONFLICT (class, key)
             DO UPDATE SET data = excluded.data, generation = excluded.generation",
        )
        .map_err(sql)?;
    let del = tx
        .prepare("DELETE FROM objects WHERE class = $1 AND key = $2")
        .map_err(sql)?;
    let gen = generation as i64;
    for change in changes {
        let (class, key) = change.store_key();
        match change.payload() {
            Some(json) => {
                tx.execute(&put, &[&class.as_str(), &key, &json.to_string(), &gen])
                    .map_err(sql)?;
            }
            None => {
                tx.execute(&del, &[&class.as_str(), &key]).map_err(sql)?;
            }
        }
    }
    set_generation(&mut tx, generation)?;
    tx.commit().map_err(sql)
}

/// Records `generation` as the last commit's, within `tx`.
fn set_generation(tx: &mut postgres::Transaction<'_>, generation: u64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&generation.to_string()],
    )
    .map_err(sql)?;
    Ok(())
}

fn replace_all(client: &mut Client, generation: u64, rows: &[Row]) -> Result<(), StoreError> {
    let mut tx = client.transaction().map_err(sql)?;
    tx.execute("DELETE FROM objects", &[]).map_err(sql)?;
    let put = tx
        .prepare("INSERT INTO objects (class, key, data, generation) VALUES ($1, $2, $3, $4)")
        .map_err(sql)?;
    let gen = generation as i64;
    for r in rows {
        tx.execute(&put, &[&r.class, &r.key, &r.data, &gen])
            .map_err(sql)?;
    }
    set_generation(&mut tx, generation)?;
    tx.commit().map_err(sql)
}

impl Persistence for PostgresStore {
    fn load(&self) -> Result<Cluster, StoreError> {
        let (generation, rows) = self.rows()?;
        crate::cluster_of(generation, rows)
    }

    fn commit(&self, generation: u64, changes: &[Change]) -> Result<(), StoreError> {
        let mut client = self.lock();
        let c: &mut Client = client
            .as_mut()
            .expect("the client is there until the store drops");
        apart(|| write(c, generation, changes))
    }

    fn rows(&self) -> Result<(u64, Vec<Row>), StoreError> {
        let mut client = self.lock();
        let c: &mut Client = client
            .as_mut()
            .expect("the client is there until the store drops");
        apart(|| read_all(c))
    }

    fn replace_all(&self, generation: u64, rows: &[Row]) -> Result<(), StoreError> {
        let mut client = self.lock();
        let c: &mut Client = client
            .as_mut()
            .expect("the client is there until the store drops");
        apart(|| replace_all(c, generation, rows))
    }

    fn generation(&self) -> Result<u64, StoreError> {
        let mut client = self.lock();
        let c: &mut Client = client
            .as_mut()
            .expect("the client is there until the store drops");
        apart(|| generation_of(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_both_spellings() {
        assert_eq!(
            libpq_url("postgresql://u:p@db:5432/linstor").as_deref(),
            Some("postgresql://u:p@db:5432/linstor")
        );
        assert_eq!(
            libpq_url("jdbc:postgresql://db/linstor?user=u&password=p").as_deref(),
            Some("postgresql://db/linstor?user=u&password=p")
        );
        assert_eq!(libpq_url("jdbc:h2:/var/lib/linstor/linstordb"), None);
        assert_eq!(libpq_url("sqlite:/x"), None);
    }
}
