//! SQLite specifics of the store: how the pools are opened, and its [`Dialect`] and
//! [`Migrations`]: the write lock, and erasure announcements through a table every process polls.
//!
//! # Contract
//! * File databases: created if missing (parent directory too) with mode 0600, whatever the umask:
//!   the file and its `-wal` and `-shm` hold customer emails, live Slack `response_url`s and Discord
//!   interaction tokens. SQLite gives the `-wal` and `-shm` the database file's mode; they are also set
//!   to 0600 after opening when the database file is owner-only. An existing file keeps its mode
//!   (`replaydesk check` warns when one is wider: [`wider_than_private`]). WAL journal,
//!   `synchronous=FULL` (or NORMAL when [`Durability::Normal`] is asked for),
//!   `secure_delete=ON` (a scrubbed payload is zeroed in the file, not left in a free page),
//!   `busy_timeout` of [`SQLITE_BUSY_TIMEOUT`], foreign keys on.
//! * `sqlite::memory:`: one connection that never closes, because every
//!   connection to an in-memory database would otherwise see its own, and
//!   the database vanishes with its last connection.
//! * Writes go through one writer connection (see `SqliteDb`) and start
//!   with `BEGIN IMMEDIATE`: the write lock is taken (or, against another
//!   process, waited for) before the first read, so a read-then-write
//!   transaction can never fail half-way with `SQLITE_BUSY` when another
//!   connection wrote in between. Reads use a pool of their own (WAL lets
//!   them run beside the writer).
//! * No cross-process wake-ups: other processes find new jobs by polling, and
//!   erasures announced by another process ([`Dialect::announce_erasure`]) by polling
//!   a table every [`ERASURE_POLL`] (PostgreSQL uses `NOTIFY` for both).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::db::SqliteDb;
use super::dialect::Dialect;
use super::migrate::{Embedded, Migrations};
use super::{Durability, SQLITE_BUSY_TIMEOUT, StoreOptions, to_ms};

/// `src/store/migrations/sqlite/*.sql`, in version order ([`super::migrate`]). SQLite alone has 6,
/// `erasure_announcements` (PostgreSQL announces erasures with NOTIFY).
const MIGRATIONS: &[Embedded] = include!(concat!(env!("OUT_DIR"), "/migrations_sqlite.rs"));

/// The writer's page cache: 512 KiB (SQLite's default is 2 MiB). The hot pages of the queue (index
/// roots, the B-trees' right edges) fit; the heap profile of durable ingest found SQLite's caches the
/// largest part of peak memory (issue 27: RSS under load), the writer's holding more than its setting
/// while a group commit's pages are dirty (1.6 MB at 1 MiB).
const WRITER_CACHE_KIB: &str = "-512";

/// Each reader's page cache: 64 KiB. A reader's cache does not outlive a change to the database (in
/// WAL mode SQLite drops it when a read transaction begins after another connection's commit), so on a
/// busy queue it only ever serves one transaction: the point lookups need a few pages per B-tree, and
/// a scan (the jobs-by-state gauge counts an index every 15 s) reads each page once; a larger cache
/// only left that scan's pages behind as heap, per open reader (issue 27's heap profile: 1 MiB, then
/// 256 KiB, each reader's arena 0.8 MB; at 64 KiB, 0.3 MB).
const READER_CACHE_KIB: &str = "-64";

/// Every write transaction takes SQLite's write lock before its first read (see the contract).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

pub(crate) async fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<SqliteDb> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let mut connect = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("parsing SQLite URL {url:?}"))?
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        // Deleted and overwritten content is zeroed, not left in free pages (erasure).
        .pragma("secure_delete", "ON")
        .pragma("cache_size", WRITER_CACHE_KIB);
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
    create_private(&path)?;
    connect = connect
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match options.durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        });
    // The writer first: it creates the file and switches it to WAL. A group commit's `RETURNING`
    // gives up to `MAX_ENQUEUE_BATCH` rows at once: buffered whole, SQLite's thread never stops half-way
    // through a statement for the task to catch up (sqlx buffers 50 by default).
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(SQLITE_BUSY_TIMEOUT * 3)
        .connect_with(connect.clone().row_buffer_size(super::MAX_ENQUEUE_BATCH))
        .await
        .with_context(|| format!("opening SQLite store {url:?}"))?;
    let read = SqlitePoolOptions::new()
        .max_connections(options.max_connections.unwrap_or(8))
        .connect_with(connect.pragma("cache_size", READER_CACHE_KIB))
        .await
        .with_context(|| format!("opening SQLite store {url:?} for reading"))?;
    private_companions(&path)?;
    Ok(SqliteDb { read, write })
}

/// The store's files: the database, its `-wal` and its `-shm`.
fn files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Creates the database file empty (SQLite's empty database) with mode 0600 when it does not exist,
/// so SQLite never creates it with the umask's mode (0644 with the usual 022).
fn create_private(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("creating {}", path.display())),
    }
}

/// After opening: the `-wal` and `-shm` get mode 0600 when the database file is owner-only (SQLite
/// gives them the database's mode when it creates them; this holds whatever created them first).
fn private_companions(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o077 == 0)
            .unwrap_or(false);
        if private {
            for file in files(path).iter().skip(1).filter(|f| f.exists()) {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} private (0600)", file.display()))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The files of the SQLite store at `url` that others than their owner may read or write, with their
/// mode (unix; none for another store, an in-memory one, or elsewhere).
pub(crate) fn wider_than_private(url: &str) -> Vec<(PathBuf, u32)> {
    let Ok(options) = SqliteConnectOptions::from_str(url) else {
        return Vec::new();
    };
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Vec::new();
    }
    let mut wide = Vec::new();
    #[cfg(unix)]
    for file in files(options.get_filename()) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&file) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                wide.push((file, mode));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = options;
    wide
}

impl Dialect for SqliteDb {
    type Db = sqlx::Sqlite;

    /// One writer and no row locks: the claim needs no `SKIP LOCKED`.
    const SKIP_LOCKED: bool = false;

    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.write.begin_with(BEGIN_WRITE).await
    }

    async fn acquire_writer(&self) -> sqlx::Result<PoolConnection<sqlx::Sqlite>> {
        self.write.acquire().await
    }

    fn reader(&self) -> &sqlx::Pool<sqlx::Sqlite> {
        &self.read
    }

    async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    async fn notify_jobs(&self, _tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> sqlx::Result<()> {
        Ok(())
    }

    /// No cross-process wake-ups: other processes find new jobs by polling.
    async fn listen(&self, _wake: Arc<Notify>) -> anyhow::Result<Option<JoinHandle<()>>> {
        Ok(None)
    }

    /// Writes an erasure announcement for every process on this file, and forgets those older than
    /// an hour.
    async fn announce_erasure(&self, payload: &str) -> anyhow::Result<()> {
        let now_ms = to_ms(Utc::now());
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO erasure_announcements (at, payload) VALUES ($1, $2)")
            .bind(now_ms)
            .bind(payload)
            .execute(&mut *tx)
            .await
            .context("announcing an erasure")?;
        sqlx::query("DELETE FROM erasure_announcements WHERE at < $1")
            .bind(now_ms - ANNOUNCEMENT_KEPT_MS)
            .execute(&mut *tx)
            .await
            .context("forgetting old erasure announcements")?;
        tx.commit().await?;
        Ok(())
    }

    /// A task sending each announcement written after it started to `to`, polling every
    /// [`ERASURE_POLL`], until nobody receives.
    async fn listen_erasures(
        &self,
        to: mpsc::UnboundedSender<String>,
    ) -> anyhow::Result<JoinHandle<()>> {
        let read = self.read.clone();
        let (mut seen,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM erasure_announcements")
                .fetch_one(&read)
                .await
                .context("reading erasure announcements")?;
        Ok(tokio::spawn(async move {
            let mut tick = tokio::time::interval(ERASURE_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let rows: Vec<(i64, String)> = match sqlx::query_as(
                    "SELECT id, payload FROM erasure_announcements WHERE id > $1 ORDER BY id",
                )
                .bind(seen)
                .fetch_all(&read)
                .await
                {
                    Ok(rows) => rows,
                    Err(error) if read.is_closed() => {
                        tracing::debug!(%error, "the store closed: erasure polling stops");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not read erasure announcements; trying again");
                        continue;
                    }
                };
                for (id, payload) in rows {
                    seen = id;
                    if to.send(payload).is_err() {
                        return;
                    }
                }
            }
        }))
    }
}

impl Migrations for SqliteDb {
    const MIGRATIONS: &'static [Embedded] = MIGRATIONS;

    const TABLE_EXISTS: &'static str =
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1)";

    async fn lock_migrations(
        &self,
        _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    ) -> sqlx::Result<()> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        Ok(())
    }
}

/// How often a process polls for erasures announced by another process on the same file: the bound
/// on how long an erased customer's sessions stay in its cache (well under the 2 seconds promised).
pub(crate) const ERASURE_POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// How long an announcement is kept for processes to read it.
const ANNOUNCEMENT_KEPT_MS: i64 = 3_600_000;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The writer keeps the larger page cache, every reader the smaller one (issue 27's peak RSS).
    #[tokio::test]
    async fn readers_and_the_writer_get_their_own_page_cache_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cache.db").display());
        let db = connect(&url, &StoreOptions::default()).await.unwrap();
        let size = |pool: &sqlx::SqlitePool| {
            let pool = pool.clone();
            async move {
                let (size,): (i64,) = sqlx::query_as("PRAGMA cache_size")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                size.to_string()
            }
        };
        assert_eq!(size(&db.write).await, WRITER_CACHE_KIB);
        assert_eq!(size(&db.read).await, READER_CACHE_KIB);
    }
}
