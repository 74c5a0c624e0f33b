//! SQLite specifics of the store: how the pool is opened and the
//! [`Dialect`] for it.
//!
//! # Contract
//! * File databases: created if missing (parent directory too), WAL journal,
//!   `synchronous=FULL` (or NORMAL when [`Durability::Normal`] is asked for),
//!   `busy_timeout` of [`SQLITE_BUSY_TIMEOUT`], foreign keys on.
//! * `sqlite::memory:`: one connection that never closes, because every
//!   connection to an in-memory database would otherwise see its own, and
//!   the database vanishes with its last connection.
//! * Writes go through one writer connection (see [`SqliteDb`]) and start
//!   with `BEGIN IMMEDIATE`: the write lock is taken (or, against another
//!   process, waited for) before the first read, so a read-then-write
//!   transaction can never fail half-way with `SQLITE_BUSY` when another
//!   connection wrote in between. Reads use a pool of their own (WAL lets
//!   them run beside the writer).
//! * No cross-process wake-ups: other processes find new jobs by polling.

use std::str::FromStr;

use anyhow::Context;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::{CLAIM_SQLITE, Dialect, Migration};
use super::{Durability, SQLITE_BUSY_TIMEOUT, StoreOptions};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "queue",
        sql: include_str!("migrations/sqlite/0001_queue.sql"),
    },
    Migration {
        version: 2,
        name: "zendesk",
        sql: include_str!("migrations/sqlite/0002_zendesk.sql"),
    },
    Migration {
        version: 3,
        name: "privacy",
        sql: include_str!("migrations/sqlite/0003_privacy.sql"),
    },
    Migration {
        version: 4,
        name: "request_id",
        sql: include_str!("migrations/sqlite/0004_request_id.sql"),
    },
    Migration {
        version: 5,
        name: "outages",
        sql: include_str!("migrations/sqlite/0005_outages.sql"),
    },
];

/// The SQLite store's pools: every write goes through `write`, a pool of
/// one connection whose acquire queue is first-come first-served, so writers
/// in this process take turns instead of racing for SQLite's lock (whose busy
/// handler sleeps with backoff and let some enqueues wait a second under
/// load); reads use `read`. For `sqlite::memory:` both are the same single
/// connection.
pub(crate) struct SqliteDb {
    pub(crate) read: SqlitePool,
    pub(crate) write: SqlitePool,
}

pub(crate) async fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<SqliteDb> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let mut connect = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("parsing SQLite URL {url:?}"))?
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    if in_memory {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .with_context(|| format!("opening SQLite store {url:?}"))?;
        return Ok(SqliteDb {
            read: pool.clone(),
            write: pool,
        });
    }
    let path = connect.get_filename().to_path_buf();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the directory of {}", path.display()))?;
    }
    connect = connect
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match options.durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        });
    // The writer first: it creates the file and switches it to WAL.
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(SQLITE_BUSY_TIMEOUT * 3)
        .connect_with(connect.clone())
        .await
        .with_context(|| format!("opening SQLite store {url:?}"))?;
    let read = SqlitePoolOptions::new()
        .max_connections(options.max_connections.unwrap_or(8))
        .connect_with(connect)
        .await
        .with_context(|| format!("opening SQLite store {url:?} for reading"))?;
    Ok(SqliteDb { read, write })
}

impl Dialect for SqliteDb {
    type Db = sqlx::Sqlite;

    const CLAIM_SQL: &'static str = CLAIM_SQLITE;

    const MIGRATIONS: &'static [Migration] = MIGRATIONS;

    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    fn reader(&self) -> &sqlx::Pool<sqlx::Sqlite> {
        &self.read
    }

    async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    async fn notify_jobs(
        &self,
        _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    ) -> sqlx::Result<()> {
        Ok(())
    }

    async fn lock_migrations(
        &self,
        _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    ) -> sqlx::Result<()> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        Ok(())
    }
}
