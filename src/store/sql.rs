//! [`SqlStore`]: the one implementation of [`Store`] for both SQLite and
//! PostgreSQL.
//!
//! # Why it is shaped this way
//! The two backends run the same SQL (placeholders are `$n` in both; sqlx
//! maps SQLite's `$n` to the n-th bind). Writing the bodies twice would let
//! them drift, and writing them generically over `sqlx::Database` drowns them
//! in trait bounds. So each method body is written once inside `with_db!`,
//! which expands it once per concrete pool type; the few real differences are
//! methods of the crate-private [`Dialect`] trait, implemented in `sqlite.rs`
//! and `postgres.rs`.
//!
//! # Contract
//! * Every write runs in a transaction begun by [`Dialect::begin_write`]
//!   (`BEGIN IMMEDIATE` on SQLite). An early return or a failed statement
//!   drops the transaction, which rolls it back.
//! * Lease-guarded updates return `true` only if exactly one row matched
//!   `id`, `state = 'running'` and `lock_owner`.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;

use super::migrate::Embedded;
use super::sqlite::SqliteDb;
use super::{
    EffectRecord, EffectState, Enqueued, ItemClaim, JobState, NewJob, Store, StoredJob, from_ms,
    postgres, to_ms,
};

/// What differs between the backends. Implemented for `SqliteDb` and
/// `PgPool`; only ever called on those concrete types (through `with_db!`).
pub(crate) trait Dialect {
    type Db: sqlx::Database;

    /// The claim statement (PostgreSQL adds `FOR UPDATE SKIP LOCKED`).
    const CLAIM_SQL: &'static str;

    /// The backend's migrations, embedded by `build.rs` ([`super::migrate`]).
    const MIGRATIONS: &'static [Embedded];

    /// One row, one boolean: whether the table named `$1` exists (where unqualified names resolve).
    const TABLE_EXISTS: &'static str;

    /// Begins a transaction that may write.
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Self::Db>>;

    /// The pool for reads outside a write transaction.
    fn reader(&self) -> &sqlx::Pool<Self::Db>;

    /// Closes every pool.
    async fn close(&self);

    /// Inside an enqueue/retry transaction: wake other processes on commit.
    async fn notify_jobs(&self, tx: &mut sqlx::Transaction<'static, Self::Db>) -> sqlx::Result<()>;

    /// Inside the migration transaction: keep other processes out.
    async fn lock_migrations(
        &self,
        tx: &mut sqlx::Transaction<'static, Self::Db>,
    ) -> sqlx::Result<()>;
}

pub(super) enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// The SQL-backed [`Store`]. Build it with [`super::open`].
pub struct SqlStore {
    pub(super) db: Db,
}

/// Runs `$body` with `$pool` bound to the concrete pool: the body is compiled
/// once per backend.
macro_rules! with_db {
    ($self:expr, |$pool:ident| $body:expr) => {
        match &$self.db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}
pub(super) use with_db;

macro_rules! job_columns {
    () => {
        "id, kind, payload, delivery_key, state, attempts, run_after, lock_owner, \
         locked_until, last_error, enqueued_at, updated_at, finished_at, payload_purged_at, request_id, \
         waiting_on, retried_at"
    };
}

/// Reads a [`JobRow`] from a row of `job_columns!()` (by position: more columns than sqlx's tuple
/// `FromRow` takes). Expanded inside `with_db!`, so once per backend.
macro_rules! job_row {
    ($row:expr) => {{
        use sqlx::Row as _;
        let r = &$row;
        let row: JobRow = (
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
        );
        row
    }};
}

macro_rules! effect_columns {
    () => {
        "job_id, name, marker, external_id, state, created_at, updated_at"
    };
}

macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lock_owner = $1, \
             locked_until = $2, updated_at = $3 \
             WHERE id = (SELECT id FROM jobs \
                 WHERE (state = 'queued' AND run_after <= $3) \
                    OR (state = 'running' AND locked_until < $3) \
                 ORDER BY run_after, id LIMIT 1",
            $lock,
            ") RETURNING ",
            job_columns!()
        )
    };
}

pub(crate) const CLAIM_SQLITE: &str = claim_sql!("");
pub(crate) const CLAIM_POSTGRES: &str = claim_sql!(" FOR UPDATE SKIP LOCKED");

const FIND_DELIVERY: &str = "SELECT job_id FROM deliveries WHERE delivery_key = $1";
const INSERT_JOB: &str = "INSERT INTO jobs \
     (kind, payload, delivery_key, state, attempts, run_after, enqueued_at, updated_at, request_id) \
     VALUES ($1, $2, $3, 'queued', 0, $4, $4, $4, $5) RETURNING id";
const DELETE_JOB: &str = "DELETE FROM jobs WHERE id = $1";
const INSERT_DELIVERY: &str = "INSERT INTO deliveries (delivery_key, job_id, received_at) \
     VALUES ($1, $2, $3) ON CONFLICT (delivery_key) DO NOTHING";
const RENEW: &str = "UPDATE jobs SET locked_until = $3 \
     WHERE id = $1 AND state = 'running' AND lock_owner = $2";
const COMPLETE: &str = "UPDATE jobs SET state = 'done', lock_owner = NULL, locked_until = NULL, \
     finished_at = $3, updated_at = $3, waiting_on = NULL \
     WHERE id = $1 AND state = 'running' AND lock_owner = $2";
const RETRY_LATER: &str = "UPDATE jobs SET state = 'queued', lock_owner = NULL, \
     locked_until = NULL, run_after = $3, last_error = $4, updated_at = $5, waiting_on = NULL \
     WHERE id = $1 AND state = 'running' AND lock_owner = $2";
/// Like a retry, but the claim is not counted as an attempt, and the upstream waited for is kept.
const WAIT_LATER: &str = "UPDATE jobs SET state = 'queued', lock_owner = NULL, \
     locked_until = NULL, run_after = $3, last_error = $4, waiting_on = $5, updated_at = $6, \
     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
     WHERE id = $1 AND state = 'running' AND lock_owner = $2";
/// Ends a job as `$5` (`dead`, `expired` or `cancelled`).
const MARK_ENDED: &str = "UPDATE jobs SET state = $5, lock_owner = NULL, locked_until = NULL, \
     last_error = $3, finished_at = $4, updated_at = $4, waiting_on = NULL \
     WHERE id = $1 AND state = 'running' AND lock_owner = $2";
/// The upstream is back: its waiting jobs are due, oldest first (the claim orders by `run_after`).
const WAKE_WAITING: &str = "UPDATE jobs SET run_after = enqueued_at, updated_at = $2 \
     WHERE state = 'queued' AND waiting_on = $1 AND run_after > $2";
const COUNT_WAITING: &str = "SELECT waiting_on, COUNT(*) FROM jobs \
     WHERE state = 'queued' AND waiting_on IS NOT NULL GROUP BY waiting_on";
const RELEASE: &str = "UPDATE jobs SET state = 'queued', lock_owner = NULL, locked_until = NULL, \
     run_after = $3, updated_at = $3, \
     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
     WHERE id = $1 AND state = 'running' AND lock_owner = $2";
const GET_JOB: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");
/// Releases an operator's hold, leaving the job as it was before it.
const UNHOLD: &str = "UPDATE jobs SET state = 'queued', lock_owner = NULL, locked_until = NULL, \
     updated_at = $3 WHERE id = $1 AND state = 'running' AND lock_owner = $2";
/// An operator's hold on one job: queued, or running with a lapsed lease; the attempt not counted.
const CLAIM_JOB: &str = concat!(
    "UPDATE jobs SET state = 'running', lock_owner = $2, locked_until = $3, updated_at = $4 \
     WHERE id = $1 AND (state = 'queued' OR (state = 'running' AND locked_until < $4)) RETURNING ",
    job_columns!()
);
const LIST_JOBS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs ORDER BY id DESC LIMIT $1"
);
const LIST_JOBS_IN_STATE: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE state = $1 ORDER BY id DESC LIMIT $2"
);
const COUNT_BY_STATE: &str = "SELECT state, COUNT(*) FROM jobs GROUP BY state";
const RETRY_DEAD: &str = "UPDATE jobs SET state = 'queued', attempts = 0, run_after = $2, \
     lock_owner = NULL, locked_until = NULL, finished_at = NULL, updated_at = $2, retried_at = $2, \
     waiting_on = NULL \
     WHERE id = $1 AND state IN ('dead', 'expired', 'cancelled') AND payload_purged_at IS NULL";
const RETRY_ALL_DEAD: &str = "UPDATE jobs SET state = 'queued', attempts = 0, run_after = $1, \
     lock_owner = NULL, locked_until = NULL, finished_at = NULL, updated_at = $1, retried_at = $1, \
     waiting_on = NULL \
     WHERE state = 'dead' AND payload_purged_at IS NULL";
const RETRY_DEAD_BATCH: &str = "UPDATE jobs SET state = 'queued', attempts = 0, run_after = $1, \
     lock_owner = NULL, locked_until = NULL, finished_at = NULL, updated_at = $1, retried_at = $1, \
     waiting_on = NULL \
     WHERE id IN (SELECT id FROM jobs WHERE state = 'dead' AND payload_purged_at IS NULL \
         ORDER BY id LIMIT $2)";
/// One batch of retention; repeated until it touches nothing.
const PURGE_DONE_BATCH: &str = "UPDATE jobs SET payload = 'null', last_error = NULL, \
     payload_purged_at = $2, updated_at = $2 \
     WHERE id IN (SELECT id FROM jobs \
         WHERE state IN ('done', 'dead', 'expired', 'cancelled') AND finished_at < $1 \
             AND payload_purged_at IS NULL \
         LIMIT 500)";
const GET_EFFECT: &str = concat!(
    "SELECT ",
    effect_columns!(),
    " FROM effects WHERE job_id = $1 AND name = $2"
);
const INSERT_EFFECT_INTENT: &str = "INSERT INTO effects \
     (job_id, name, marker, external_id, state, created_at, updated_at) \
     VALUES ($1, $2, $3, NULL, 'intent', $4, $4) ON CONFLICT (job_id, name) DO NOTHING";
const EFFECT_DONE: &str = "UPDATE effects SET external_id = $3, state = 'done', updated_at = $4 \
     WHERE job_id = $1 AND name = $2";
const EFFECTS_FOR_JOB: &str = concat!(
    "SELECT ",
    effect_columns!(),
    " FROM effects WHERE job_id = $1 ORDER BY created_at, name"
);
/// Takes an item nobody holds, or one whose claim is older than `$5` (`i64::MIN`: never), for `$3`.
const CLAIM_ITEM: &str = "INSERT INTO item_claims (scope, item, owner, claimed_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (scope, item) DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at \
     WHERE item_claims.claimed_at < $5 AND item_claims.owner <> excluded.owner";
/// Retention of one-time marks: claims in a scope ending with `:once`, older than `$1`.
const PURGE_ONCE_MARKS: &str =
    "DELETE FROM item_claims WHERE scope LIKE '%:once' AND claimed_at < $1";
const GET_CLAIM: &str =
    "SELECT item, owner, claimed_at FROM item_claims WHERE scope = $1 AND item = $2";
const CLAIMS_IN_SCOPE: &str = "SELECT item, owner, claimed_at FROM item_claims \
     WHERE scope = $1 ORDER BY claimed_at, item";

type JobRow = (
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
);

type EffectRow = (i64, String, String, Option<String>, String, i64, i64);

fn job_from_row(row: JobRow) -> anyhow::Result<StoredJob> {
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
    })
}

fn effect_from_row(row: EffectRow) -> anyhow::Result<EffectRecord> {
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

fn claim_from_row((item, owner, claimed_at): (String, String, i64)) -> ItemClaim {
    ItemClaim {
        item,
        owner,
        claimed_at: from_ms(claimed_at),
    }
}

impl SqlStore {
    pub(crate) fn from_sqlite(pool: SqliteDb) -> Self {
        Self {
            db: Db::Sqlite(pool),
        }
    }

    pub(crate) fn from_postgres(pool: PgPool) -> Self {
        Self {
            db: Db::Postgres(pool),
        }
    }

    /// running → `state` (dead, expired or cancelled), with the error, if `owner` still holds the lease.
    async fn end(
        &self,
        job_id: i64,
        owner: &str,
        state: JobState,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let n = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(MARK_ENDED)
                .bind(job_id)
                .bind(owner)
                .bind(error)
                .bind(to_ms(now))
                .bind(state.as_str())
                .execute(&mut *tx)
                .await
                .with_context(|| format!("marking a job {state}"))?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    /// Runs `sql` (`$1` job id, `$2` lease owner, `$3` a time) in its own write transaction; whether it
    /// changed the job (the lease was still `owner`'s). The lease-guarded updates without more to bind.
    async fn on_lease(
        &self,
        sql: &'static str,
        job_id: i64,
        owner: &str,
        at: DateTime<Utc>,
        what: &'static str,
    ) -> anyhow::Result<bool> {
        let n = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(sql)
                .bind(job_id)
                .bind(owner)
                .bind(to_ms(at))
                .execute(&mut *tx)
                .await
                .context(what)?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }
}

fn claim_sql_of<P: Dialect>(_pool: &P) -> &'static str {
    P::CLAIM_SQL
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    async fn ping(&self) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            sqlx::query("SELECT 1")
                .execute(pool.reader())
                .await
                .context("pinging the store")?;
            Ok(())
        })
    }

    async fn enqueue(
        &self,
        delivery_key: &str,
        job: NewJob,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Enqueued> {
        let mut done = self
            .enqueue_batch(vec![(delivery_key.to_owned(), job)], now)
            .await?;
        done.pop().context("enqueue: no result")
    }

    async fn enqueue_batch(
        &self,
        items: Vec<(String, NewJob)>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Enqueued>> {
        let items = items
            .into_iter()
            .map(|(key, job)| {
                let payload = serde_json::to_string(&job.payload)?;
                Ok((key, job.kind, payload, job.request_id))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let now = to_ms(now);
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("enqueue: begin")?;
            let mut results = Vec::with_capacity(items.len());
            for (delivery_key, kind, payload, request_id) in &items {
                // Seen before (committed, or earlier in this same batch): a duplicate.
                let existing: Option<(i64,)> = sqlx::query_as(FIND_DELIVERY)
                    .bind(delivery_key)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some((job_id,)) = existing {
                    results.push(Enqueued {
                        job_id,
                        duplicate: true,
                    });
                    continue;
                }
                let (job_id,): (i64,) = sqlx::query_as(INSERT_JOB)
                    .bind(kind)
                    .bind(payload)
                    .bind(delivery_key)
                    .bind(now)
                    .bind(request_id)
                    .fetch_one(&mut *tx)
                    .await
                    .context("enqueue: inserting the job")?;
                let inserted = sqlx::query(INSERT_DELIVERY)
                    .bind(delivery_key)
                    .bind(job_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .context("enqueue: inserting the delivery key")?
                    .rows_affected();
                if inserted == 0 {
                    // A concurrent transaction (PostgreSQL) recorded the same key first and has
                    // committed (ON CONFLICT waited for it): drop our job, report theirs.
                    sqlx::query(DELETE_JOB)
                        .bind(job_id)
                        .execute(&mut *tx)
                        .await?;
                    let (job_id,): (i64,) = sqlx::query_as(FIND_DELIVERY)
                        .bind(delivery_key)
                        .fetch_one(&mut *tx)
                        .await?;
                    results.push(Enqueued {
                        job_id,
                        duplicate: true,
                    });
                    continue;
                }
                results.push(Enqueued {
                    job_id,
                    duplicate: false,
                });
            }
            if results.iter().any(|r| !r.duplicate) {
                pool.notify_jobs(&mut tx).await?;
            }
            tx.commit().await.context("enqueue: commit")?;
            Ok(results)
        })
    }

    async fn claim(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StoredJob>> {
        let row: Option<JobRow> = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("claim: begin")?;
            let row = sqlx::query(claim_sql_of(pool))
                .bind(owner)
                .bind(to_ms(lease_until))
                .bind(to_ms(now))
                .fetch_optional(&mut *tx)
                .await
                .context("claiming a job")?;
            tx.commit().await.context("claim: commit")?;
            match row {
                Some(row) => Some(job_row!(row)),
                None => None,
            }
        });
        row.map(job_from_row).transpose()
    }

    async fn claim_job(
        &self,
        job_id: i64,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StoredJob>> {
        let row: Option<JobRow> = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("claim_job: begin")?;
            let row = sqlx::query(CLAIM_JOB)
                .bind(job_id)
                .bind(owner)
                .bind(to_ms(lease_until))
                .bind(to_ms(now))
                .fetch_optional(&mut *tx)
                .await
                .context("claiming one job")?;
            tx.commit().await.context("claim_job: commit")?;
            match row {
                Some(row) => Some(job_row!(row)),
                None => None,
            }
        });
        row.map(job_from_row).transpose()
    }

    async fn unhold(&self, job_id: i64, owner: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        self.on_lease(UNHOLD, job_id, owner, now, "releasing a hold on a job")
            .await
    }

    async fn mark_cancelled(
        &self,
        job_id: i64,
        owner: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.end(job_id, owner, JobState::Cancelled, reason, now)
            .await
    }

    async fn renew_lease(
        &self,
        job_id: i64,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.on_lease(RENEW, job_id, owner, lease_until, "renewing a lease")
            .await
    }

    async fn complete(&self, job_id: i64, owner: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        self.on_lease(COMPLETE, job_id, owner, now, "completing a job")
            .await
    }

    async fn retry_later(
        &self,
        job_id: i64,
        owner: &str,
        run_after: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let n = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(RETRY_LATER)
                .bind(job_id)
                .bind(owner)
                .bind(to_ms(run_after))
                .bind(error)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("scheduling a retry")?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    async fn mark_dead(
        &self,
        job_id: i64,
        owner: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.end(job_id, owner, JobState::Dead, error, now).await
    }

    async fn mark_expired(
        &self,
        job_id: i64,
        owner: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.end(job_id, owner, JobState::Expired, error, now).await
    }

    async fn wait_later(
        &self,
        job_id: i64,
        owner: &str,
        wait: super::Wait<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let n = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(WAIT_LATER)
                .bind(job_id)
                .bind(owner)
                .bind(to_ms(wait.until))
                .bind(wait.error)
                .bind(wait.upstream)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("scheduling a wait")?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    async fn wake_waiting(&self, upstream: &str, now: DateTime<Utc>) -> anyhow::Result<u64> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(WAKE_WAITING)
                .bind(upstream)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("waking the jobs waiting on an upstream")?
                .rows_affected();
            if n > 0 {
                pool.notify_jobs(&mut tx).await?;
            }
            tx.commit().await?;
            Ok(n)
        })
    }

    async fn count_waiting(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = with_db!(self, |pool| {
            sqlx::query_as(COUNT_WAITING)
                .fetch_all(pool.reader())
                .await
                .context("counting waiting jobs")?
        });
        Ok(rows
            .into_iter()
            .map(|(upstream, n)| (upstream, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    async fn release(&self, job_id: i64, owner: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let n = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(RELEASE)
                .bind(job_id)
                .bind(owner)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("releasing a lease")?
                .rows_affected();
            pool.notify_jobs(&mut tx).await?;
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    async fn get_job(&self, job_id: i64) -> anyhow::Result<Option<StoredJob>> {
        let row: Option<JobRow> = with_db!(self, |pool| {
            match sqlx::query(GET_JOB)
                .bind(job_id)
                .fetch_optional(pool.reader())
                .await
                .context("reading a job")?
            {
                Some(row) => Some(job_row!(row)),
                None => None,
            }
        });
        row.map(job_from_row).transpose()
    }

    async fn list_jobs(
        &self,
        state: Option<JobState>,
        limit: u32,
    ) -> anyhow::Result<Vec<StoredJob>> {
        let limit = i64::from(limit);
        let rows: Vec<JobRow> = with_db!(self, |pool| {
            let rows = match state {
                Some(state) => {
                    sqlx::query(LIST_JOBS_IN_STATE)
                        .bind(state.as_str())
                        .bind(limit)
                        .fetch_all(pool.reader())
                        .await
                }
                None => {
                    sqlx::query(LIST_JOBS)
                        .bind(limit)
                        .fetch_all(pool.reader())
                        .await
                }
            }
            .context("listing jobs")?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(job_row!(row));
            }
            out
        });
        rows.into_iter().map(job_from_row).collect()
    }

    async fn count_by_state(&self) -> anyhow::Result<Vec<(JobState, u64)>> {
        let rows: Vec<(String, i64)> = with_db!(self, |pool| {
            sqlx::query_as(COUNT_BY_STATE)
                .fetch_all(pool.reader())
                .await
                .context("counting jobs")?
        });
        let mut counts: Vec<(JobState, u64)> = JobState::ALL.iter().map(|s| (*s, 0)).collect();
        for (state, n) in rows {
            let state: JobState = state.parse()?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == state) {
                slot.1 = u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(counts)
    }

    async fn retry_dead(&self, job_id: i64, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let n = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(RETRY_DEAD)
                .bind(job_id)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("retrying a dead job")?
                .rows_affected();
            pool.notify_jobs(&mut tx).await?;
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    async fn retry_all_dead(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        Ok(with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(RETRY_ALL_DEAD)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("retrying dead jobs")?
                .rows_affected();
            pool.notify_jobs(&mut tx).await?;
            tx.commit().await?;
            n
        }))
    }

    async fn retry_dead_batch(&self, limit: u32, now: DateTime<Utc>) -> anyhow::Result<u64> {
        Ok(with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(RETRY_DEAD_BATCH)
                .bind(to_ms(now))
                .bind(i64::from(limit))
                .execute(&mut *tx)
                .await
                .context("retrying dead jobs")?
                .rows_affected();
            if n > 0 {
                pool.notify_jobs(&mut tx).await?;
            }
            tx.commit().await?;
            n
        }))
    }

    async fn purge_done(
        &self,
        finished_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let mut total = 0;
        loop {
            let n = with_db!(self, |pool| {
                let mut tx = pool.begin_write().await?;
                let n = sqlx::query(PURGE_DONE_BATCH)
                    .bind(to_ms(finished_before))
                    .bind(to_ms(now))
                    .execute(&mut *tx)
                    .await
                    .context("purging done jobs' payloads")?
                    .rows_affected();
                tx.commit().await?;
                n
            });
            total += n;
            if n == 0 {
                break;
            }
        }
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(PURGE_ONCE_MARKS)
                .bind(to_ms(finished_before))
                .execute(&mut *tx)
                .await
                .context("purging one-time marks")?;
            tx.commit().await?;
        });
        Ok(total)
    }

    async fn effect(&self, job_id: i64, name: &str) -> anyhow::Result<Option<EffectRecord>> {
        let row: Option<EffectRow> = with_db!(self, |pool| {
            sqlx::query_as(GET_EFFECT)
                .bind(job_id)
                .bind(name)
                .fetch_optional(pool.reader())
                .await
                .context("reading the effect ledger")?
        });
        row.map(effect_from_row).transpose()
    }

    async fn record_effect_intent(
        &self,
        job_id: i64,
        name: &str,
        marker: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<EffectRecord> {
        let row: EffectRow = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(INSERT_EFFECT_INTENT)
                .bind(job_id)
                .bind(name)
                .bind(marker)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("recording an effect intent")?;
            let row = sqlx::query_as(GET_EFFECT)
                .bind(job_id)
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        effect_from_row(row)
    }

    async fn record_effect_done(
        &self,
        job_id: i64,
        name: &str,
        external_id: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let n = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(EFFECT_DONE)
                .bind(job_id)
                .bind(name)
                .bind(external_id)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("recording an effect's external id")?
                .rows_affected();
            tx.commit().await?;
            n
        });
        if n == 1 {
            Ok(())
        } else {
            Err(anyhow!(
                "effect {job_id}/{name}: no intent recorded before its external id"
            ))
        }
    }

    async fn effects_for_job(&self, job_id: i64) -> anyhow::Result<Vec<EffectRecord>> {
        let rows: Vec<EffectRow> = with_db!(self, |pool| {
            sqlx::query_as(EFFECTS_FOR_JOB)
                .bind(job_id)
                .fetch_all(pool.reader())
                .await
                .context("reading the effect ledger")?
        });
        rows.into_iter().map(effect_from_row).collect()
    }

    async fn claim_items(
        &self,
        scope: &str,
        owner: &str,
        items: &[String],
        stale_before: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<ItemClaim>> {
        let stale_before = stale_before.map_or(i64::MIN, to_ms);
        let rows: Vec<(String, String, i64)> = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("claim items: begin")?;
            let mut rows = Vec::with_capacity(items.len());
            // Rows are locked in one order (sorted) whatever the caller's order, so two
            // PostgreSQL transactions claiming overlapping items cannot deadlock.
            let mut sorted: Vec<&String> = items.iter().collect();
            sorted.sort();
            sorted.dedup();
            for item in sorted {
                sqlx::query(CLAIM_ITEM)
                    .bind(scope)
                    .bind(item)
                    .bind(owner)
                    .bind(to_ms(now))
                    .bind(stale_before)
                    .execute(&mut *tx)
                    .await
                    .context("claiming an item")?;
                let row: (String, String, i64) = sqlx::query_as(GET_CLAIM)
                    .bind(scope)
                    .bind(item)
                    .fetch_one(&mut *tx)
                    .await
                    .context("reading an item's claim")?;
                rows.push(row);
            }
            tx.commit().await.context("claim items: commit")?;
            rows
        });
        let by_item: std::collections::HashMap<String, ItemClaim> = rows
            .into_iter()
            .map(|row| (row.0.clone(), claim_from_row(row)))
            .collect();
        items
            .iter()
            .map(|item| {
                by_item
                    .get(item)
                    .cloned()
                    .ok_or_else(|| anyhow!("claim of {item:?} was not read back"))
            })
            .collect()
    }

    async fn claimed_items(&self, scope: &str) -> anyhow::Result<Vec<ItemClaim>> {
        let rows: Vec<(String, String, i64)> = with_db!(self, |pool| {
            sqlx::query_as(CLAIMS_IN_SCOPE)
                .bind(scope)
                .fetch_all(pool.reader())
                .await
                .context("reading item claims")?
        });
        Ok(rows.into_iter().map(claim_from_row).collect())
    }

    async fn listen(
        &self,
        wake: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        match &self.db {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(pool) => postgres::listen(pool, wake).await.map(Some),
        }
    }

    async fn announce_erasure(&self, payload: &str) -> anyhow::Result<()> {
        match &self.db {
            Db::Sqlite(db) => super::sqlite::announce_erasure(db, payload, to_ms(Utc::now())).await,
            Db::Postgres(pool) => postgres::announce_erasure(pool, payload).await,
        }
    }

    async fn listen_erasures(
        &self,
        to: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        match &self.db {
            Db::Sqlite(db) => super::sqlite::listen_erasures(db, to).await.map(Some),
            Db::Postgres(pool) => postgres::listen_erasures(pool, to).await.map(Some),
        }
    }

    async fn close(&self) {
        with_db!(self, |pool| Dialect::close(pool).await)
    }
}
