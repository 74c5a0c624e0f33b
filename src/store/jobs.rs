//! Jobs: the life of a job in the store, from the delivery that enqueued it to its end. Enqueue
//! (with the delivery key, in one transaction, alone or as a group commit), the claim and its lease,
//! completion, retries, waits for an upstream, the ends (dead, expired, cancelled), an operator's hold,
//! and the reads behind `jobs list/show` and the metrics.
//!
//! # Contract
//! * A delivery key is recorded with its job in the same transaction: a key seen before writes
//!   nothing and answers the first job's id (`duplicate: true`), also when a concurrent
//!   transaction (PostgreSQL) committed the same key first.
//! * A job may be claimed in its delivery's own transaction ([`NewJob::lease`]: stored `running`,
//!   one attempt counted), for the process that runs it at once; it is woken for no other process.
//! * Each claim moves the job's [`Ledgering`] on in its own statement (`claim_ledgering!`), and a
//!   first run's recorded outcome other than done leaves it `unrun` (`settled!`: the worker records
//!   what the attempt tried first): which attempt writes no ledger intents is decided by the store,
//!   under the lease, never by a worker's memory.
//! * Every state change of a leased job names the lease owner; a worker whose lease was taken over
//!   gets `false` back and changes nothing.
//! * The transactions that make jobs due now (enqueue, a shutdown's release, an operator's retry,
//!   waking the jobs waiting on an upstream) wake other processes on commit
//!   ([`Dialect::notify_jobs`]); other processes' workers find the rest by polling.
//! * Waiting for an upstream, a shutdown's release and an operator's hold do not count as attempts.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::db::{
    Db, JobRow, SqlStore, Writer, WriterConn, job_columns, job_from_row, job_row, with_db,
};
use super::dialect::Dialect;
use super::effects::insert_tried_effects;
use super::privacy::insert_audit;
use super::{
    AuditRecord, Enqueued, JobState, Ledgering, NewJob, NextClaim, StoredJob, TriedEffect, Wait,
    from_ms, to_ms,
};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Sqlite};

/// What a claim does to a job's [`Ledgering`](super::Ledgering): an unrun job's attempt is a first
/// run, unless the ledger has rows for it (then intents: an earlier attempt recorded what it tried,
/// or an older binary ran it during a rolling upgrade); a first run that left no outcome (it died, or
/// lost its lease) is followed by attempts that look first.
macro_rules! claim_ledgering {
    () => {
        "ledgering = CASE \
             WHEN ledgering = 'unrun' \
                 AND NOT EXISTS (SELECT 1 FROM effects WHERE effects.job_id = jobs.id) \
                 THEN 'first_run' \
             WHEN ledgering = 'unrun' THEN 'intents' \
             WHEN ledgering = 'first_run' THEN 'after_first_run' \
             ELSE ledgering END"
    };
}

/// What a first run's recorded outcome (other than done) does to its job's ledgering: the worker
/// has recorded all the attempt tried (`queue/ledger.rs`), so the job is unrun again and its next
/// claim decides again (a first run if the ledger has no rows for it, intents if it has).
macro_rules! settled {
    () => {
        "ledgering = CASE WHEN ledgering = 'first_run' THEN 'unrun' ELSE ledgering END"
    };
}

/// The claim: the first due job (queued and due, or running with a lapsed lease), by `run_after`
/// then id, leased and its attempt counted. Each kind is looked up on its own partial index
/// (`jobs_ready`, `jobs_leased`), first of each, and the earlier of the two taken: one condition
/// `queued … OR running …` made both SQLite and PostgreSQL read every due job and sort them, 2 ms a
/// claim with 10,000 waiting (issue 27: the drain after an outage was paced by that, on SQLite's one
/// writer). SQLite's planner is told the indexes (`$ready`, `$leased`: it otherwise prefers
/// `jobs_state_finished` and a sort); `$lock` is what the backend adds to each candidate
/// ([`Dialect::SKIP_LOCKED`]; PostgreSQL holds the candidate not taken until the commit, and a
/// concurrent claim skips it).
macro_rules! claim_sql {
    ($ready:literal, $leased:literal, $lock:literal) => {
        concat!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lock_owner = $1, \
             locked_until = $2, updated_at = $3, ",
            claim_ledgering!(),
            " WHERE id = (SELECT id FROM (\
                 SELECT id, run_after FROM (SELECT id, run_after FROM jobs",
            $ready,
            " WHERE state = 'queued' AND run_after <= $3 ORDER BY run_after, id LIMIT 1",
            $lock,
            ") AS due \
                 UNION ALL SELECT id, run_after FROM (SELECT id, run_after FROM jobs",
            $leased,
            " WHERE state = 'running' AND locked_until < $3 ORDER BY run_after, id LIMIT 1",
            $lock,
            ") AS lapsed\
             ) AS candidates ORDER BY run_after, id LIMIT 1) RETURNING ",
            job_columns!()
        )
    };
}

const CLAIM: &str = claim_sql!(" INDEXED BY jobs_ready", " INDEXED BY jobs_leased", "");
const CLAIM_SKIP_LOCKED: &str = claim_sql!("", "", " FOR UPDATE SKIP LOCKED");

const FIND_DELIVERY: &str = "SELECT job_id FROM deliveries WHERE delivery_key = $1";
const DELETE_JOB: &str = "DELETE FROM jobs WHERE id = $1";
const RENEW: &str = "UPDATE jobs SET locked_until = $3 \
     WHERE id = $1 AND state = 'running' AND lock_owner = $2";
const COMPLETE: &str = "UPDATE jobs SET state = 'done', lock_owner = NULL, locked_until = NULL, \
     finished_at = $3, updated_at = $3, waiting_on = NULL \
     WHERE id = $1 AND state = 'running' AND lock_owner = $2";
const RETRY_LATER: &str = concat!(
    "UPDATE jobs SET state = 'queued', lock_owner = NULL, \
     locked_until = NULL, run_after = $3, last_error = $4, updated_at = $5, waiting_on = NULL, ",
    settled!(),
    " WHERE id = $1 AND state = 'running' AND lock_owner = $2"
);
/// Like a retry, but the claim is not counted as an attempt, and the upstream waited for is kept.
const WAIT_LATER: &str = concat!(
    "UPDATE jobs SET state = 'queued', lock_owner = NULL, \
     locked_until = NULL, run_after = $3, last_error = $4, waiting_on = $5, updated_at = $6, \
     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, ",
    settled!(),
    " WHERE id = $1 AND state = 'running' AND lock_owner = $2"
);
/// Ends a job as `$5` (`dead`, `expired` or `cancelled`).
const MARK_ENDED: &str = concat!(
    "UPDATE jobs SET state = $5, lock_owner = NULL, locked_until = NULL, \
     last_error = $3, finished_at = $4, updated_at = $4, waiting_on = NULL, ",
    settled!(),
    " WHERE id = $1 AND state = 'running' AND lock_owner = $2"
);
/// The upstream is back: its waiting jobs are due, oldest first (the claim orders by `run_after`).
const WAKE_WAITING: &str = "UPDATE jobs SET run_after = enqueued_at, updated_at = $2 \
     WHERE state = 'queued' AND waiting_on = $1 AND run_after > $2";
const COUNT_WAITING: &str = "SELECT waiting_on, COUNT(*) FROM jobs \
     WHERE state = 'queued' AND waiting_on IS NOT NULL GROUP BY waiting_on";
const RELEASE: &str = concat!(
    "UPDATE jobs SET state = 'queued', lock_owner = NULL, locked_until = NULL, \
     run_after = $3, updated_at = $3, \
     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, ",
    settled!(),
    " WHERE id = $1 AND state = 'running' AND lock_owner = $2"
);
const GET_JOB: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");
/// Releases an operator's hold, leaving the job as it was before it.
const UNHOLD: &str = "UPDATE jobs SET state = 'queued', lock_owner = NULL, locked_until = NULL, \
     updated_at = $3 WHERE id = $1 AND state = 'running' AND lock_owner = $2";
/// An operator's hold on job `$4`: queued, or running with a lapsed lease; the attempt not counted.
/// Bound as the claim is (`$1` owner, `$2` lease end, `$3` now), and the job id. What runs under it
/// (telling the requester) keeps intents: an unrun job's from then on.
const CLAIM_JOB: &str = concat!(
    "UPDATE jobs SET state = 'running', lock_owner = $1, locked_until = $2, updated_at = $3, \
     ledgering = CASE ledgering WHEN 'unrun' THEN 'intents' \
         WHEN 'first_run' THEN 'after_first_run' ELSE ledgering END \
     WHERE id = $4 AND (state = 'queued' OR (state = 'running' AND locked_until < $3)) RETURNING ",
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

/// Pushes one job's row of the jobs INSERT (its 13 columns, in `JOB_INSERT_COLUMNS`' order) onto
/// `$row`, a `QueryBuilder`'s `Separated`: a job with a lease is stored `running` under it, its first
/// attempt counted. A macro, as the builder's bind bounds differ per backend.
macro_rules! push_job_row {
    ($row:ident, $key:expr, $job:expr, $now:expr) => {{
        let (key, job, now): (&str, &NewJob, i64) = ($key, $job, $now);
        let leased = job.lease.is_some();
        $row.push_bind(job.kind.as_str())
            .push_bind(job.payload.as_str())
            .push_bind(key)
            .push(if leased { "'running'" } else { "'queued'" })
            .push(if leased { "1" } else { "0" })
            .push_bind(now)
            .push_bind(now)
            .push_bind(now)
            .push_bind(job.request_id.as_deref())
            .push_bind(job.lease.as_ref().map(|l| l.owner.as_str()))
            .push_bind(job.lease.as_ref().map(|l| to_ms(l.until)))
            .push_bind(job.lease.as_ref().map(|_| now))
            .push(if leased { "'first_run'" } else { "'unrun'" });
    }};
}

/// The columns of a new job, in the order [`push_job_row!`] pushes them.
const JOB_INSERT_COLUMNS: &str = "kind, payload, delivery_key, state, attempts, run_after, \
     enqueued_at, updated_at, request_id, lock_owner, locked_until, handed_at, ledgering";

fn claim_sql_of<P: Dialect>(_pool: &P) -> &'static str {
    if P::SKIP_LOCKED {
        CLAIM_SKIP_LOCKED
    } else {
        CLAIM
    }
}

/// Most deliveries the group commit (`queue::group_commit`) stores in one transaction: it bounds the
/// statements' sizes and the rows SQLite's connection thread hands back at once.
pub const MAX_ENQUEUE_BATCH: usize = 256;

/// Batches of up to this many deliveries keep their statements prepared (in each connection's
/// statement cache); larger ones prepare theirs afresh. Each batch size is its own SQL text: cached
/// for every size seen under load, a hundred statements of up to 256 rows each held several MB of
/// SQLite's memory (issue 27: peak RSS under load), while preparing a batch's statements costs a
/// small fraction of the batch's commit.
const PREPARED_BATCH_SIZES: usize = 8;

/// SQLite: the batch's statements in one hand-off to the connection's thread, from `BEGIN
/// IMMEDIATE` to `COMMIT` (sqlx runs the statements of one query in turn, each taking the next of
/// its binds): the known keys' jobs, the new jobs (those whose key is not known, checked inside the
/// INSERT), and their keys. Returns the known keys' jobs and the new jobs, by key. Nothing wakes
/// other processes: SQLite's have none to wake ([`Dialect::notify_jobs`] is nothing there; they poll).
///
/// Why: under load each statement's round trip cost more than its work (issue 27: 100 to 250 µs of
/// waking SQLite's thread and then the task, five a batch, against about 300 µs for the commit's
/// disk flush); a batch now takes one.
///
/// The new jobs' keys are recorded from the jobs just inserted, by id: SQLite's AUTOINCREMENT gives
/// each new row one more than the largest id the table ever had (and fails with `SQLITE_FULL`
/// rather than reuse one), so the ids of one INSERT, made under the write lock, are consecutive and
/// end at `last_insert_rowid()`; `changes()` is that INSERT's count (a statement counts once it
/// completes, and `deliveries` has no rowid to move `last_insert_rowid()`). A batch of known keys
/// inserts no job, and the range is empty.
///
/// The transaction is SQLite's own, not an `sqlx::Transaction`: after a failure it is rolled back
/// here, and a connection left in an unknown state (a failed rollback, a panic, a cancelled future)
/// is closed instead of given back, which ends its transaction.
async fn write_batch_sqlite(
    conn: &mut PoolConnection<Sqlite>,
    items: &[(String, NewJob)],
    unique: &[usize],
    now: i64,
) -> anyhow::Result<(HashMap<String, i64>, HashMap<String, i64>)> {
    let mut batch = sqlx::QueryBuilder::<Sqlite>::new(
        "BEGIN IMMEDIATE; SELECT delivery_key, job_id, 1 FROM deliveries WHERE delivery_key IN (",
    );
    {
        let mut keys = batch.separated(", ");
        for &i in unique {
            keys.push_bind(items[i].0.as_str());
        }
    }
    batch.push(format!(
        "); INSERT INTO jobs ({JOB_INSERT_COLUMNS}) SELECT * FROM ("
    ));
    batch.push_values(unique.iter().map(|&i| &items[i]), |mut row, (key, job)| {
        push_job_row!(row, key.as_str(), job, now);
    });
    // `column3` is the VALUES' third column: the delivery key.
    batch.push(
        ") WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE delivery_key = column3) \
         RETURNING delivery_key, id, 0; \
         INSERT INTO deliveries (delivery_key, job_id, received_at) SELECT delivery_key, id, ",
    );
    batch.push_bind(now);
    batch.push(
        " FROM jobs WHERE id > last_insert_rowid() - changes() AND id <= last_insert_rowid(); \
         COMMIT",
    );
    let mut guard = CloseUnlessSettled {
        conn,
        settled: false,
    };
    let rows = batch
        .build_query_as::<(String, i64, bool)>()
        .persistent(unique.len() <= PREPARED_BATCH_SIZES)
        .fetch_all(&mut **guard.conn)
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            // Rolled back if a statement after BEGIN failed; "no transaction is active" if the
            // BEGIN (or a failed COMMIT's automatic rollback) left none.
            match sqlx::raw_sql("ROLLBACK").execute(&mut **guard.conn).await {
                Err(e) if !e.to_string().contains("no transaction is active") => {}
                _ => guard.settled = true,
            }
            return Err(error).context("enqueue: storing the batch");
        }
    };
    guard.settled = true;
    let mut seen = HashMap::new();
    let mut created = HashMap::with_capacity(unique.len());
    for (key, id, known) in rows {
        if known { &mut seen } else { &mut created }.insert(key, id);
    }
    Ok((seen, created))
}

/// A writer connection in the middle of [`write_batch_sqlite`]'s transaction: closed when dropped
/// before it is settled (committed or rolled back), so no transaction of ours is ever given back
/// open. (An in-memory store's one connection holds its database: closing it after a panic or a
/// cancelled flush loses that store, as the process's end would.)
struct CloseUnlessSettled<'c> {
    conn: &'c mut PoolConnection<Sqlite>,
    settled: bool,
}

impl Drop for CloseUnlessSettled<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.conn.close_on_drop();
        }
    }
}

impl SqlStore {
    /// Records the delivery key and the job in one transaction. A key seen
    /// before writes nothing and returns the first job's id with
    /// `duplicate: true`. Callers should namespace keys (`"slack:Ev123"`).
    pub async fn enqueue(
        &self,
        delivery_key: &str,
        job: NewJob,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Enqueued> {
        let mut done = self
            .enqueue_batch(&[(delivery_key.to_owned(), job)], now)
            .await?;
        done.pop().context("enqueue: no result")
    }

    /// [`Self::enqueue`] for several deliveries (at most [`MAX_ENQUEUE_BATCH`]) in one transaction
    /// (group commit): one commit, one disk flush, for all of them. Results are in the order given; a key repeated within the batch
    /// is a duplicate of its first occurrence. If the transaction fails, none is stored.
    ///
    /// A job with a [`NewJob::lease`] is stored `running` under it, its first attempt counted (the
    /// claim made in the delivery's commit); a duplicate's lease is taken by nobody.
    pub async fn enqueue_batch(
        &self,
        items: &[(String, NewJob)],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Enqueued>> {
        let mut writer = self.writer().await.context("enqueue: a writer")?;
        self.enqueue_batch_on(&mut writer, items, now).await
    }

    /// [`Self::enqueue_batch`] on a connection held across batches (`writer`, of this store): the
    /// group commit's, so consecutive batches do not each give the connection back and take it again.
    pub async fn enqueue_batch_on(
        &self,
        writer: &mut Writer,
        items: &[(String, NewJob)],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Enqueued>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let now = to_ms(now);
        // Each key's first occurrence in the batch; a later one is its duplicate.
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        for (i, (key, ..)) in items.iter().enumerate() {
            first.entry(key.as_str()).or_insert(i);
        }
        let unique: Vec<usize> = (0..items.len())
            .filter(|i| first.get(items[*i].0.as_str()) == Some(i))
            .collect();
        let (seen, created) = match (&self.db, &mut writer.0) {
            (Db::Sqlite(_), WriterConn::Sqlite(conn)) => {
                write_batch_sqlite(conn, items, &unique, now).await?
            }
            (Db::Postgres(pool), WriterConn::Postgres(conn)) => {
                write_batch_postgres(pool, conn, items, &unique, now).await?
            }
            _ => anyhow::bail!("a writer of another kind of store"),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, (key, ..))| {
                let known = seen.get(key).map(|id| (*id, true));
                let (job_id, duplicate) = known
                    .or_else(|| created.get(key).map(|id| (*id, false)))
                    .context("enqueue: a delivery without a job")?;
                Ok(Enqueued {
                    job_id,
                    // A later occurrence of a key in the same batch is a duplicate of the first.
                    duplicate: duplicate || first.get(key.as_str()) != Some(&i),
                })
            })
            .collect()
    }
}

/// PostgreSQL: the batch's statements one at a time in a transaction (its protocol takes one
/// statement a query), a constant number whatever the batch's size: the known keys' jobs, the new
/// jobs, their keys (sorted, so two transactions inserting overlapping keys wait for each other
/// instead of deadlocking), and the wake-up of other processes' workers. A key another transaction
/// recorded first (`ON CONFLICT` waited for its commit) is reported as theirs and our job dropped.
/// Returns the known keys' jobs and the new jobs, by key.
async fn write_batch_postgres(
    pool: &PgPool,
    conn: &mut PoolConnection<Postgres>,
    items: &[(String, NewJob)],
    unique: &[usize],
    now: i64,
) -> anyhow::Result<(HashMap<String, i64>, HashMap<String, i64>)> {
    let mut tx = sqlx::Connection::begin(&mut **conn)
        .await
        .context("enqueue: begin")?;
    let mut find = sqlx::QueryBuilder::<Postgres>::new(
        "SELECT delivery_key, job_id FROM deliveries WHERE delivery_key IN (",
    );
    {
        let mut keys = find.separated(", ");
        for &i in unique {
            keys.push_bind(items[i].0.as_str());
        }
    }
    find.push(")");
    let prepared = unique.len() <= PREPARED_BATCH_SIZES;
    let mut seen: HashMap<String, i64> = find
        .build_query_as::<(String, i64)>()
        .persistent(prepared)
        .fetch_all(&mut *tx)
        .await
        .context("enqueue: reading known delivery keys")?
        .into_iter()
        .collect();
    let fresh: Vec<usize> = unique
        .iter()
        .copied()
        .filter(|&i| !seen.contains_key(&items[i].0))
        .collect();
    let mut created: HashMap<String, i64> = HashMap::with_capacity(fresh.len());
    if !fresh.is_empty() {
        let mut jobs = sqlx::QueryBuilder::<Postgres>::new(format!(
            "INSERT INTO jobs ({JOB_INSERT_COLUMNS}) "
        ));
        jobs.push_values(fresh.iter().map(|&i| &items[i]), |mut row, (key, job)| {
            push_job_row!(row, key.as_str(), job, now);
        });
        jobs.push(" RETURNING delivery_key, id");
        created = jobs
            .build_query_as::<(String, i64)>()
            .persistent(prepared)
            .fetch_all(&mut *tx)
            .await
            .context("enqueue: inserting the jobs")?
            .into_iter()
            .collect();
        let mut keyed: Vec<(&str, i64)> = fresh
            .iter()
            .map(|&i| {
                let key = items[i].0.as_str();
                created
                    .get(key)
                    .map(|id| (key, *id))
                    .context("enqueue: a job was not returned")
            })
            .collect::<anyhow::Result<_>>()?;
        // Keys in one order (sorted), whatever the arrival order, so two PostgreSQL
        // transactions inserting overlapping keys wait for each other instead of deadlocking.
        keyed.sort_unstable();
        let mut keys = sqlx::QueryBuilder::<Postgres>::new(
            "INSERT INTO deliveries (delivery_key, job_id, received_at) ",
        );
        keys.push_values(&keyed, |mut row, (key, id)| {
            row.push_bind(*key).push_bind(*id).push_bind(now);
        });
        keys.push(" ON CONFLICT (delivery_key) DO NOTHING RETURNING delivery_key");
        let recorded: HashSet<String> = keys
            .build_query_as::<(String,)>()
            .persistent(prepared)
            .fetch_all(&mut *tx)
            .await
            .context("enqueue: inserting the delivery keys")?
            .into_iter()
            .map(|(key,)| key)
            .collect();
        for (key, id) in keyed {
            if recorded.contains(key) {
                continue;
            }
            // A concurrent transaction recorded the same key first and has committed
            // (ON CONFLICT waited for it): drop our job, report theirs.
            sqlx::query(DELETE_JOB).bind(id).execute(&mut *tx).await?;
            created.remove(key);
            let (theirs,): (i64,) = sqlx::query_as(FIND_DELIVERY)
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
            seen.insert(key.to_owned(), theirs);
        }
    }
    // Other processes' workers are woken for a job they may claim, not for a leased one.
    let claimable = unique
        .iter()
        .any(|&i| items[i].1.lease.is_none() && created.contains_key(&items[i].0));
    if claimable {
        pool.notify_jobs(&mut tx).await?;
    }
    tx.commit().await.context("enqueue: commit")?;
    Ok((seen, created))
}

impl SqlStore {
    /// The row [`Self::enqueue_batch`] stored for a job with a lease, as a claim would read it: what
    /// the queue hands to the worker that runs it, without reading it back.
    pub fn leased_job(
        job_id: i64,
        delivery_key: &str,
        job: &NewJob,
        now: DateTime<Utc>,
    ) -> anyhow::Result<StoredJob> {
        let lease = job
            .lease
            .as_ref()
            .context("the job was stored without a lease")?;
        let now = from_ms(to_ms(now));
        Ok(StoredJob {
            id: job_id,
            kind: job.kind.clone(),
            payload: serde_json::from_str(&job.payload)
                .with_context(|| format!("job {job_id}: payload is not JSON"))?,
            delivery_key: Some(delivery_key.to_owned()),
            state: JobState::Running,
            attempts: 1,
            run_after: now,
            lock_owner: Some(lease.owner.clone()),
            locked_until: Some(from_ms(to_ms(lease.until))),
            last_error: None,
            enqueued_at: now,
            updated_at: now,
            finished_at: None,
            payload_purged_at: None,
            request_id: job.request_id.clone(),
            waiting_on: None,
            retried_at: None,
            handed_at: Some(now),
            ledgering: Ledgering::FirstRun,
        })
    }

    /// Atomically leases one claimable job (queued and due, or running with a
    /// lease that ran out before `now`) to `owner` until `lease_until`, and
    /// counts the attempt. `owner` must be unique per claim.
    pub async fn claim(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StoredJob>> {
        let sql = with_db!(self, |pool| claim_sql_of(pool));
        self.lease(sql, None, owner, lease_until, now, "claiming a job")
            .await
    }

    /// Extends a lease still held by `owner`; `false` if it was lost.
    pub async fn renew_lease(
        &self,
        job_id: i64,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.on_lease(RENEW, job_id, owner, lease_until, "renewing a lease")
            .await
    }

    /// running → done, if `owner` still holds the lease.
    pub async fn complete(
        &self,
        job_id: i64,
        owner: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let (completed, _) = self
            .complete_and_claim(job_id, owner, now, &[], &[], None)
            .await?;
        Ok(completed)
    }

    /// [`Self::complete`], with `audit`'s entries and the `effects` a job's first attempt did
    /// written in the same transaction (one commit for all); they are written even when the lease
    /// was lost: what they record was done. With `next`, also [`Self::claim`] in that transaction: a
    /// worker that finishes a job takes its next one in the same commit (one disk flush a job while
    /// the queue has work, instead of one for the claim and one for the completion). Returns whether
    /// the lease was still held, and the job claimed, if any (claimed whether or not it was).
    pub async fn complete_and_claim(
        &self,
        job_id: i64,
        owner: &str,
        now: DateTime<Utc>,
        audit: &[AuditRecord],
        effects: &[TriedEffect],
        next: Option<NextClaim<'_>>,
    ) -> anyhow::Result<(bool, Option<StoredJob>)> {
        let (n, row): (u64, Option<JobRow>) = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(COMPLETE)
                .bind(job_id)
                .bind(owner)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("completing a job")?
                .rows_affected();
            for r in audit {
                insert_audit!(r)
                    .execute(&mut *tx)
                    .await
                    .context("recording an audit entry")?;
            }
            insert_tried_effects!(tx, job_id, effects, now);
            let row = match next {
                Some(next) => sqlx::query(claim_sql_of(pool))
                    .bind(next.owner)
                    .bind(to_ms(next.lease_until))
                    .bind(to_ms(now))
                    .fetch_optional(&mut *tx)
                    .await
                    .context("claiming the next job")?,
                None => None,
            };
            let row = match row {
                Some(row) => Some(job_row!(row)),
                None => None,
            };
            tx.commit().await?;
            (n, row)
        });
        Ok((n == 1, row.map(job_from_row).transpose()?))
    }

    /// running → queued until `run_after`, with the error, if `owner` still
    /// holds the lease.
    pub async fn retry_later(
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

    /// running → dead, with the error, if `owner` still holds the lease.
    pub async fn mark_dead(
        &self,
        job_id: i64,
        owner: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.end(job_id, owner, JobState::Dead, error, now).await
    }

    /// running → expired (its answer's deadline passed while an upstream was down), with the error, if
    /// `owner` still holds the lease.
    pub async fn mark_expired(
        &self,
        job_id: i64,
        owner: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.end(job_id, owner, JobState::Expired, error, now).await
    }

    /// Leases job `job_id` to `owner` until `lease_until` when it is queued (due or not, waiting or
    /// not) or running with a lease that ran out before `now`, without counting an attempt: an
    /// operator's hold on it (`jobs cancel`). `None` when it is in any other state or absent.
    pub async fn claim_job(
        &self,
        job_id: i64,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StoredJob>> {
        self.lease(
            CLAIM_JOB,
            Some(job_id),
            owner,
            lease_until,
            now,
            "claiming one job",
        )
        .await
    }

    /// Undoes [`Self::claim_job`]: running → queued as it was (its `run_after`, attempts, wait and
    /// error untouched), if `owner` still holds the lease.
    pub async fn unhold(
        &self,
        job_id: i64,
        owner: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.on_lease(UNHOLD, job_id, owner, now, "releasing a hold on a job")
            .await
    }

    /// running → cancelled (an operator ended it), with the reason, if `owner` still holds the lease.
    pub async fn mark_cancelled(
        &self,
        job_id: i64,
        owner: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        self.end(job_id, owner, JobState::Cancelled, reason, now)
            .await
    }

    /// running → queued until `wait.until`, waiting on `wait.upstream` (or only delayed, without one),
    /// un-counting the attempt (an upstream outage or a spend limit is not the job's failure), if
    /// `owner` still holds the lease.
    pub async fn wait_later(
        &self,
        job_id: i64,
        owner: &str,
        wait: Wait<'_>,
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

    /// `upstream` is back: every job queued waiting on it is due now, in enqueue order (its
    /// `run_after` becomes its `enqueued_at`). Returns how many.
    pub async fn wake_waiting(&self, upstream: &str, now: DateTime<Utc>) -> anyhow::Result<u64> {
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

    /// Queued jobs waiting on an upstream, by upstream.
    pub async fn count_waiting(&self) -> anyhow::Result<Vec<(String, u64)>> {
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

    /// running → queued, due now, un-counting the attempt (shutdown
    /// interrupted it; it was not the job's fault), if `owner` still holds
    /// the lease.
    pub async fn release(
        &self,
        job_id: i64,
        owner: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
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

    pub async fn get_job(&self, job_id: i64) -> anyhow::Result<Option<StoredJob>> {
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

    /// Newest first.
    pub async fn list_jobs(
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

    /// Every state, zero included.
    pub async fn count_by_state(&self) -> anyhow::Result<Vec<(JobState, u64)>> {
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

    /// dead, expired or cancelled → queued, due now, attempts reset, `retried_at` = now. `false` if none, or
    /// when retention or an erasure scrubbed its payload (nothing is left to run). The bulk retries
    /// below leave scrubbed jobs alone too.
    pub async fn retry_dead(&self, job_id: i64, now: DateTime<Utc>) -> anyhow::Result<bool> {
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

    /// Every dead job → queued; how many.
    pub async fn retry_all_dead(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
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

    /// At most `limit` dead jobs (oldest first) → queued, in one transaction; how many. Repeated
    /// until it returns 0, this is [`Self::retry_all_dead`] in steps that can report progress.
    pub async fn retry_dead_batch(&self, limit: u32, now: DateTime<Utc>) -> anyhow::Result<u64> {
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

    /// Runs the lease `sql` (`$1` owner, `$2` lease end, `$3` now, and `$4` the job when one is named:
    /// the claim or an operator's hold) in its own write transaction; the job it leased, if any.
    async fn lease(
        &self,
        sql: &'static str,
        job_id: Option<i64>,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
        what: &'static str,
    ) -> anyhow::Result<Option<StoredJob>> {
        let row: Option<JobRow> = with_db!(self, |pool| {
            let mut tx = pool
                .begin_write()
                .await
                .with_context(|| format!("{what}: begin"))?;
            let query = sqlx::query(sql)
                .bind(owner)
                .bind(to_ms(lease_until))
                .bind(to_ms(now));
            let query = match job_id {
                Some(job_id) => query.bind(job_id),
                None => query,
            };
            let row = query.fetch_optional(&mut *tx).await.context(what)?;
            tx.commit()
                .await
                .with_context(|| format!("{what}: commit"))?;
            match row {
                Some(row) => Some(job_row!(row)),
                None => None,
            }
        });
        row.map(job_from_row).transpose()
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
