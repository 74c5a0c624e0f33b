//! The durable store: where an accepted webhook delivery, the job it became,
//! and the effects that job had on other platforms are written down.
//!
//! # Why it exists
//! A webhook is answered 2xx only after its delivery key and its job are
//! committed together ([`Store::enqueue`]); from then on the job survives a
//! crash, a restart or a power cut, and the [`crate::queue`] workers run it
//! exactly once in effect.
//!
//! # Contract
//! * One trait, [`Store`], with two backends chosen by the URL given to
//!   [`open`]: `sqlite://PATH` (the embedded default; the file is created if
//!   missing; `sqlite::memory:` for throwaway use) and `postgres://…` /
//!   `postgresql://…`. Migrations for the chosen backend run inside `open`,
//!   under a lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL an advisory lock), so
//!   several processes may start at once.
//! * Both backends run the *same* query text (`$1`-style placeholders work in
//!   both) from one body of Rust code (`sql.rs`), compiled once per backend;
//!   the differences (how a write transaction begins, `FOR UPDATE SKIP
//!   LOCKED`, `NOTIFY`) live in a small per-backend `Dialect` impl.
//! * SQLite runs in WAL mode with `synchronous=FULL`: an acknowledged delivery
//!   survives power loss, not only a process crash. Writes in this process
//!   take turns on one writer connection (first come, first served: this keeps
//!   enqueue's tail latency in milliseconds under concurrent webhooks), and
//!   every write transaction starts with `BEGIN IMMEDIATE`, so it takes the
//!   write lock up front and waits (`busy_timeout`, against other processes)
//!   instead of failing half-way; a statement that fails rolls the whole
//!   transaction back (the transaction is dropped un-committed).
//! * Times are passed in by the caller (`now`), never read from the system
//!   clock here, and stored as `i64` unix milliseconds in both backends.
//! * Every state change of a leased job names the lease owner; a worker whose
//!   lease was taken over gets `false` back and changes nothing.
//! * PostgreSQL isolation for tests (and for sharing a database): pass
//!   [`StoreOptions::pg_schema`] to [`open_with`], which creates the schema if
//!   needed and sets `search_path` on every connection. A URL with
//!   `?options=-c%20search_path%3Dmyschema` works as well, for an existing
//!   schema.

mod migrate;
mod postgres;
mod privacy;
mod sql;
mod sqlite;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use privacy::{AuditRecord, PrivacyStore};
pub use sql::SqlStore;

/// A job to enqueue: what to run (`kind`, matched against a handler) and its
/// input. Payloads may hold customer emails: see retention in
/// [`Store::purge_done`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    pub payload: serde_json::Value,
    /// The inbound request that asked for it (`x-request-id`), so the worker's logs and spans carry
    /// it; [`crate::queue::Queue::enqueue`] fills it from the request being served when `None`.
    pub request_id: Option<String>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            request_id: None,
        }
    }
}

/// What [`Store::enqueue`] did. On a duplicate delivery key `job_id` is the
/// job recorded the first time and nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub job_id: i64,
    pub duplicate: bool,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for `run_after`.
    Queued,
    /// Leased by a worker until `locked_until`.
    Running,
    /// Finished successfully.
    Done,
    /// Gave up: attempts exhausted, a permanent error, or no handler.
    Dead,
    /// Its answer's deadline passed while an upstream it needed was down (the person who asked was
    /// told); nothing was wrong with the job itself. Listed and retried like a dead job.
    Expired,
    /// An operator ended it while it waited (`replaydesk jobs cancel`; the person who asked was told).
    /// Listed and retried like an expired job.
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
        JobState::Expired,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Expired => "expired",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "queued" => Ok(JobState::Queued),
            "running" => Ok(JobState::Running),
            "done" => Ok(JobState::Done),
            "dead" => Ok(JobState::Dead),
            "expired" => Ok(JobState::Expired),
            "cancelled" => Ok(JobState::Cancelled),
            other => bail!(
                "unknown job state {other:?} (expected queued, running, done, dead, expired or \
                 cancelled)"
            ),
        }
    }
}

/// A job as stored: its row (the payload still JSON). Not to be confused with [`crate::queue::Job`],
/// the trait of a typed payload.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJob {
    pub id: i64,
    pub kind: String,
    /// `null` once purged by retention.
    pub payload: serde_json::Value,
    pub delivery_key: Option<String>,
    pub state: JobState,
    /// Claims so far, including the current one while running.
    pub attempts: u32,
    pub run_after: DateTime<Utc>,
    pub lock_owner: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub enqueued_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it became done or dead.
    pub finished_at: Option<DateTime<Utc>>,
    pub payload_purged_at: Option<DateTime<Utc>>,
    /// The inbound request that enqueued it (`x-request-id`), when there was one.
    pub request_id: Option<String>,
    /// Queued, waiting for this upstream to be back (its wait did not count as an attempt).
    pub waiting_on: Option<String>,
    /// When an operator last retried it (`jobs retry`).
    pub retried_at: Option<DateTime<Utc>>,
}

/// A job waiting for an upstream: see [`Store::wait_later`].
#[derive(Debug, Clone, Copy)]
pub struct Wait<'a> {
    /// The upstream waited for (`fullstory`, `zendesk`, …); `None` for a delay that is no outage (a
    /// spend limit: [`crate::queue::JobError::Later`]).
    pub upstream: Option<&'a str>,
    /// When to try again (sooner if the upstream comes back: [`Store::wake_waiting`]).
    pub until: DateTime<Utc>,
    /// Why, for `jobs show`.
    pub error: &'a str,
}

/// How far an effect got: intent recorded before the external call, done
/// (with the external id) after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectState {
    Intent,
    Done,
}

impl EffectState {
    pub fn as_str(self) -> &'static str {
        match self {
            EffectState::Intent => "intent",
            EffectState::Done => "done",
        }
    }
}

/// One row of the effect ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectRecord {
    pub job_id: i64,
    pub name: String,
    pub marker: String,
    pub external_id: Option<String>,
    pub state: EffectState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who holds one item of a scope; see [`Store::claim_items`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemClaim {
    pub item: String,
    pub owner: String,
    pub claimed_at: DateTime<Utc>,
}

/// How hard SQLite works to keep a commit (PostgreSQL ignores this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a commit is on disk before it returns, so an
    /// acknowledged webhook survives power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash, may lose the last
    /// commits on power loss. For benchmarks and throwaway stores only.
    Normal,
}

/// Knobs for [`open_with`]; `Default` is what [`open`] uses.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Pool size: SQLite's read pool, default 8 (writes always share one
    /// connection; `sqlite::memory:` uses one in all); PostgreSQL's pool,
    /// default 10, one of which the LISTEN task holds.
    pub max_connections: Option<u32>,
    /// PostgreSQL only: create this schema if missing and use it as
    /// `search_path`. Lowercase letters, digits and `_`, at most 63 bytes.
    pub pg_schema: Option<String>,
    /// SQLite only.
    pub durability: Durability,
}

/// The durable store. Implementations: [`SqlStore`] (SQLite, PostgreSQL).
#[async_trait]
pub trait Store: PrivacyStore + Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Readiness: a round trip to the database.
    async fn ping(&self) -> anyhow::Result<()>;

    /// Records the delivery key and the job in one transaction. A key seen
    /// before writes nothing and returns the first job's id with
    /// `duplicate: true`. Callers should namespace keys (`"slack:Ev123"`).
    async fn enqueue(
        &self,
        delivery_key: &str,
        job: NewJob,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Enqueued>;

    /// [`Store::enqueue`] for several deliveries in one transaction (group commit): one commit, one
    /// disk flush, for all of them. Results are in the order given; a key repeated within the batch
    /// is a duplicate of its first occurrence. If the transaction fails, none is stored.
    async fn enqueue_batch(
        &self,
        items: Vec<(String, NewJob)>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Enqueued>>;

    /// Atomically leases one claimable job (queued and due, or running with a
    /// lease that ran out before `now`) to `owner` until `lease_until`, and
    /// counts the attempt. `owner` must be unique per claim.
    async fn claim(
        &self,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StoredJob>>;

    /// Extends a lease still held by `owner`; `false` if it was lost.
    async fn renew_lease(
        &self,
        job_id: i64,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// running → done, if `owner` still holds the lease.
    async fn complete(&self, job_id: i64, owner: &str, now: DateTime<Utc>) -> anyhow::Result<bool>;

    /// running → queued until `run_after`, with the error, if `owner` still
    /// holds the lease.
    async fn retry_later(
        &self,
        job_id: i64,
        owner: &str,
        run_after: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// running → dead, with the error, if `owner` still holds the lease.
    async fn mark_dead(
        &self,
        job_id: i64,
        owner: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// running → expired (its answer's deadline passed while an upstream was down), with the error, if
    /// `owner` still holds the lease.
    async fn mark_expired(
        &self,
        job_id: i64,
        owner: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// Leases job `job_id` to `owner` until `lease_until` when it is queued (due or not, waiting or
    /// not) or running with a lease that ran out before `now`, without counting an attempt: an
    /// operator's hold on it (`jobs cancel`). `None` when it is in any other state or absent.
    async fn claim_job(
        &self,
        job_id: i64,
        owner: &str,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StoredJob>>;

    /// Undoes [`Store::claim_job`]: running → queued as it was (its `run_after`, attempts, wait and
    /// error untouched), if `owner` still holds the lease.
    async fn unhold(&self, job_id: i64, owner: &str, now: DateTime<Utc>) -> anyhow::Result<bool>;

    /// running → cancelled (an operator ended it), with the reason, if `owner` still holds the lease.
    async fn mark_cancelled(
        &self,
        job_id: i64,
        owner: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// running → queued until `wait.until`, waiting on `wait.upstream` (or only delayed, without one),
    /// un-counting the attempt (an upstream outage or a spend limit is not the job's failure), if
    /// `owner` still holds the lease.
    async fn wait_later(
        &self,
        job_id: i64,
        owner: &str,
        wait: Wait<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// `upstream` is back: every job queued waiting on it is due now, in enqueue order (its
    /// `run_after` becomes its `enqueued_at`). Returns how many.
    async fn wake_waiting(&self, upstream: &str, now: DateTime<Utc>) -> anyhow::Result<u64>;

    /// Queued jobs waiting on an upstream, by upstream.
    async fn count_waiting(&self) -> anyhow::Result<Vec<(String, u64)>>;

    /// running → queued, due now, un-counting the attempt (shutdown
    /// interrupted it; it was not the job's fault), if `owner` still holds
    /// the lease.
    async fn release(&self, job_id: i64, owner: &str, now: DateTime<Utc>) -> anyhow::Result<bool>;

    async fn get_job(&self, job_id: i64) -> anyhow::Result<Option<StoredJob>>;

    /// Newest first.
    async fn list_jobs(
        &self,
        state: Option<JobState>,
        limit: u32,
    ) -> anyhow::Result<Vec<StoredJob>>;

    /// Every state, zero included.
    async fn count_by_state(&self) -> anyhow::Result<Vec<(JobState, u64)>>;

    /// dead, expired or cancelled → queued, due now, attempts reset, `retried_at` = now. `false` if none, or
    /// when retention or an erasure scrubbed its payload (nothing is left to run). The bulk retries
    /// below leave scrubbed jobs alone too.
    async fn retry_dead(&self, job_id: i64, now: DateTime<Utc>) -> anyhow::Result<bool>;

    /// Every dead job → queued; how many.
    async fn retry_all_dead(&self, now: DateTime<Utc>) -> anyhow::Result<u64>;

    /// At most `limit` dead jobs (oldest first) → queued, in one transaction; how many. Repeated
    /// until it returns 0, this is [`Store::retry_all_dead`] in steps that can report progress.
    async fn retry_dead_batch(&self, limit: u32, now: DateTime<Utc>) -> anyhow::Result<u64>;

    /// Retention: done, dead, expired and cancelled jobs finished before `finished_before` get
    /// their payload replaced by JSON `null` and their `last_error` cleared
    /// (both may hold customer emails; a dead job kept its email and reply
    /// address forever before). The job row (kind, times, attempts), its
    /// delivery key and its effect ledger stay: they hold no email, and the
    /// delivery key must keep refusing late retries. Returns how many jobs
    /// were scrubbed. Runs in small batches so writers are not held up.
    /// One-time marks (item claims in a scope ending with `:once`, such as
    /// the Zendesk sidebar's signed loads, each valid for minutes) made
    /// before `finished_before` are deleted too: they need only outlive what
    /// they mark.
    async fn purge_done(
        &self,
        finished_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64>;

    async fn effect(&self, job_id: i64, name: &str) -> anyhow::Result<Option<EffectRecord>>;

    /// Inserts an intent row unless one exists; returns the row as stored
    /// (whose marker wins if two workers race).
    async fn record_effect_intent(
        &self,
        job_id: i64,
        name: &str,
        marker: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<EffectRecord>;

    /// intent → done with the external id.
    async fn record_effect_done(
        &self,
        job_id: i64,
        name: &str,
        external_id: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;

    async fn effects_for_job(&self, job_id: i64) -> anyhow::Result<Vec<EffectRecord>>;

    /// Claims each of `items` in `scope` for `owner`, in one transaction, so that two jobs never both
    /// act on the same item (e.g. post the same session on the same ticket): an item nobody holds
    /// becomes `owner`'s, and so does one whose claim was made before `stale_before` (when given: a
    /// claim that lapses); any other stays with its holder. Re-claiming an item one already holds
    /// changes nothing (its `claimed_at` stays). Returns each item's holder after the call, in the
    /// order given; the caller acts only on the items whose `owner` is its own.
    async fn claim_items(
        &self,
        scope: &str,
        owner: &str,
        items: &[String],
        stale_before: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<ItemClaim>>;

    /// Every claim in `scope`, oldest first.
    async fn claimed_items(&self, scope: &str) -> anyhow::Result<Vec<ItemClaim>>;

    /// Cross-process wake-ups: PostgreSQL starts a task that `LISTEN`s and
    /// calls `wake.notify_one()` per notification (the LISTEN is in place
    /// when this returns); SQLite has none and returns `None` (workers poll).
    async fn listen(
        &self,
        wake: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>>;

    /// Tells every process on this store that a customer was erased, so each drops what its cache
    /// holds on them (PostgreSQL `NOTIFY replaydesk_erasures`, delivered on commit to every replica;
    /// SQLite: a row every other process on the file polls for, e.g. `serve` beside a `forget`).
    async fn announce_erasure(&self, payload: &str) -> anyhow::Result<()>;

    /// Starts a task sending every erasure announcement's payload to `to` (PostgreSQL `LISTEN`, in
    /// place when this returns; SQLite: polling every half second for announcements made after it
    /// started). `None` when the store has no announcements.
    async fn listen_erasures(
        &self,
        to: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>>;

    /// Closes the pool; later calls fail.
    async fn close(&self);
}

/// Opens the store at `url` with default options and runs migrations.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_with(url, StoreOptions::default()).await
}

/// Opens the store at `url` and runs migrations.
pub async fn open_with(url: &str, options: StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    let store = if url.starts_with("sqlite:") {
        let pool = sqlite::connect(url, &options).await?;
        SqlStore::from_sqlite(pool)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = postgres::connect(url, &options).await?;
        SqlStore::from_postgres(pool)
    } else {
        bail!(
            "unsupported store URL {:?}: expected sqlite://PATH, sqlite::memory: or postgres://…",
            redact_url(url)
        );
    };
    store
        .migrate()
        .await
        .with_context(|| format!("running {} migrations", store.backend()))?;
    Ok(Arc::new(store))
}

/// The files of a SQLite store at `url` (the database, `-wal`, `-shm`) readable or writable by others
/// than their owner, with their mode: `replaydesk check` warns about them (they hold customer emails
/// and reply tokens). Empty for PostgreSQL and in-memory stores.
pub fn wider_than_private(url: &str) -> Vec<(std::path::PathBuf, u32)> {
    if url.starts_with("sqlite:") {
        sqlite::wider_than_private(url)
    } else {
        Vec::new()
    }
}

/// The URL with any password replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// How long SQLite waits for the write lock before giving up.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x?sslmode=require"),
            "postgres://app:***@db:5432/x?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite://data/rd.db"), "sqlite://data/rd.db");
    }

    #[test]
    fn job_state_round_trips_through_text() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().ok(), Some(s));
        }
        assert!("zombie".parse::<JobState>().is_err());
    }
}
