//! [`SqlStore`], the store's handle on its database, and what every role's file shares: the pool of
//! each backend, `with_db!` and the reading of rows into the store's types.
//!
//! # Why it is shaped this way
//! The two backends run the same SQL (placeholders are `$n` in both; sqlx maps SQLite's `$n` to the
//! n-th bind). Writing the bodies twice would let them drift, and writing them generically over
//! `sqlx::Database` drowns them in trait bounds. So each method body is written once inside
//! `with_db!`, which expands it once per concrete pool type; the few real differences are methods of
//! [`Dialect`], implemented in `sqlite.rs` and `postgres.rs`. The bodies live in one file per role
//! (`jobs.rs`, `effects.rs`, `claims.rs`, `retention.rs`, `listen.rs`, `privacy.rs`, `migrate.rs`),
//! each an `impl SqlStore` block. One exception, on purpose: the group commit's write
//! (`jobs.rs`: `write_batch_sqlite` and `write_batch_postgres`, sharing the row they insert) is
//! written once per backend, since SQLite takes a whole batch in one hand-off to its connection's
//! thread, which PostgreSQL's protocol cannot (issue 27: the round trips were most of a batch's time).
//!
//! # Contract
//! * Every write runs in a transaction begun by [`Dialect::begin_write`] (`BEGIN IMMEDIATE` on
//!   SQLite). An early return or a failed statement drops the transaction, which rolls it back.
//!   SQLite's group commit begins its own `BEGIN IMMEDIATE` inside its one query and rolls it back
//!   itself, or closes the connection (`jobs.rs`).
//! * Lease-guarded updates return `true` only if exactly one row matched `id`, `state = 'running'`
//!   and `lock_owner`.
//! * A stored time is `i64` unix milliseconds; a row read back becomes the store's typed record here
//!   and nowhere else.

use anyhow::{Context, anyhow};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, Postgres};
use sqlx::sqlite::{Sqlite, SqlitePool};

use super::dialect::Dialect;
use super::{EffectRecord, EffectState, ItemClaim, Ledgering, StoredJob, from_ms};

/// The SQLite store's pools: every write goes through `write`, a pool of one connection whose acquire
/// queue is first-come first-served, so writers in this process take turns instead of racing for
/// SQLite's lock (whose busy handler sleeps with backoff and let some enqueues wait a second under
/// load); reads use `read`. For `sqlite::memory:` both are the same single connection. Opened by
/// `sqlite.rs`.
pub(crate) struct SqliteDb {
    pub(crate) read: SqlitePool,
    pub(crate) write: SqlitePool,
}

pub(super) enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// The durable store, on SQLite or PostgreSQL. Build it with [`super::open`]; share it as
/// `Arc<SqlStore>`. Its methods are grouped by role, one file each (see the module docs).
pub struct SqlStore {
    pub(super) db: Db,
}

/// A connection that may write, held across several transactions: the group commit holds one while
/// batches keep arriving (`crate::queue`), instead of giving it back to its pool and taking it again
/// between them. A pool connection given back is checked first (sqlx pings it: a round trip to
/// SQLite's connection thread, which wakes the task through tokio's global queue) in a task spawned
/// behind the very callers the commit answered; on SQLite, whose writes take turns on one connection,
/// that give-and-take was about a fifth of each group commit's time under load (issue 27: a batch's
/// begin took 408 µs with it, 148 to 245 µs without, of about 1,080). Dropping it gives the connection
/// back; get one with [`SqlStore::writer`].
pub struct Writer(pub(super) WriterConn);

pub(super) enum WriterConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// Runs `$body` with `$pool` bound to the concrete pool: the body is compiled once per backend.
macro_rules! with_db {
    ($self:expr, |$pool:ident| $body:expr) => {
        match &$self.db {
            $crate::store::db::Db::Sqlite($pool) => $body,
            $crate::store::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(super) use with_db;

impl SqlStore {
    pub(super) fn from_sqlite(pool: SqliteDb) -> Self {
        Self {
            db: Db::Sqlite(pool),
        }
    }

    pub(super) fn from_postgres(pool: PgPool) -> Self {
        Self {
            db: Db::Postgres(pool),
        }
    }

    /// A connection that may write, to hold across several transactions (see [`Writer`]).
    pub async fn writer(&self) -> anyhow::Result<Writer> {
        Ok(Writer(match &self.db {
            Db::Sqlite(pool) => WriterConn::Sqlite(pool.acquire_writer().await?),
            Db::Postgres(pool) => WriterConn::Postgres(pool.acquire_writer().await?),
        }))
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Readiness: a round trip to the database.
    pub async fn ping(&self) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            sqlx::query("SELECT 1")
                .execute(pool.reader())
                .await
                .context("pinging the store")?;
            Ok(())
        })
    }

    /// Closes the pool; later calls fail.
    pub async fn close(&self) {
        with_db!(self, |pool| Dialect::close(pool).await)
    }
}

/// The columns of a job, in the order [`job_row!`] reads them.
macro_rules! job_columns {
    () => {
        "id, kind, payload, delivery_key, state, attempts, run_after, lock_owner, \
         locked_until, last_error, enqueued_at, updated_at, finished_at, payload_purged_at, request_id, \
         waiting_on, retried_at, handed_at, ledgering"
    };
}
pub(super) use job_columns;

/// Reads a [`JobRow`] from a row of `job_columns!()` (by position: more columns than sqlx's tuple
/// `FromRow` takes). Expanded inside `with_db!`, so once per backend.
macro_rules! job_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let r = &$row;
        let row: $crate::store::db::JobRow = (
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
            r.try_get(6)?,
            r.try_get(7)?,
            r.try_get(8)?,
            r.try_get(9)?,
            r.try_get(10)?,
            r.try_get(11)?,
            r.try_get(12)?,
            r.try_get(13)?,
            r.try_get(14)?,
            r.try_get(15)?,
            r.try_get(16)?,
            r.try_get(17)?,
            r.try_get(18)?,
        );
        row
    }};
}
pub(super) use job_row;

/// The columns of an effect, in the order of [`EffectRow`].
macro_rules! effect_columns {
    () => {
        "job_id, name, marker, external_id, state, created_at, updated_at"
    };
}
pub(super) use effect_columns;

/// A job's row as read (`job_columns!()`), before [`job_from_row`].
pub(super) type JobRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    String,
);

/// An effect's row as read (`effect_columns!()`), before [`effect_from_row`].
pub(super) type EffectRow = (i64, String, String, Option<String>, String, i64, i64);

/// An item claim's row: item, owner, claimed at.
pub(super) type ClaimRow = (String, String, i64);

pub(super) fn job_from_row(row: JobRow) -> anyhow::Result<StoredJob> {
    let (
        id,
        kind,
        payload,
        delivery_key,
        state,
        attempts,
        run_after,
        lock_owner,
        locked_until,
        last_error,
        enqueued_at,
        updated_at,
        finished_at,
        payload_purged_at,
        request_id,
        waiting_on,
        retried_at,
        handed_at,
        ledgering,
    ) = row;
    Ok(StoredJob {
        id,
        kind,
        payload: serde_json::from_str(&payload)
            .with_context(|| format!("job {id}: stored payload is not JSON"))?,
        delivery_key,
        state: state.parse()?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        run_after: from_ms(run_after),
        lock_owner,
        locked_until: locked_until.map(from_ms),
        last_error,
        enqueued_at: from_ms(enqueued_at),
        updated_at: from_ms(updated_at),
        finished_at: finished_at.map(from_ms),
        payload_purged_at: payload_purged_at.map(from_ms),
        request_id,
        waiting_on,
        retried_at: retried_at.map(from_ms),
        handed_at: handed_at.map(from_ms),
        ledgering: ledgering.parse::<Ledgering>()?.as_read(handed_at.is_some()),
    })
}

pub(super) fn effect_from_row(row: EffectRow) -> anyhow::Result<EffectRecord> {
    let (job_id, name, marker, external_id, state, created_at, updated_at) = row;
    let state = match state.as_str() {
        "intent" => EffectState::Intent,
        "done" => EffectState::Done,
        other => return Err(anyhow!("effect {job_id}/{name}: unknown state {other:?}")),
    };
    Ok(EffectRecord {
        job_id,
        name,
        marker,
        external_id,
        state,
        created_at: from_ms(created_at),
        updated_at: from_ms(updated_at),
    })
}

pub(super) fn claim_from_row((item, owner, claimed_at): ClaimRow) -> ItemClaim {
    ItemClaim {
        item,
        owner,
        claimed_at: from_ms(claimed_at),
    }
}
