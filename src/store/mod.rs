//! The durable store: where an accepted webhook delivery, the job it became,
//! and the effects that job had on other platforms are written down.
//!
//! # Why it exists
//! A webhook is answered 2xx only after its delivery key and its job are
//! committed together ([`SqlStore::enqueue`]); from then on the job survives a
//! crash, a restart or a power cut, and the [`crate::queue`] workers run it
//! exactly once in effect.
//!
//! # Decision: one concrete store, no trait
//! Everything uses [`SqlStore`] directly, shared as `Arc<SqlStore>`; there is no `Store` trait
//! (there was one, of 34 methods plus a 10-method privacy supertrait, and nothing but `SqlStore`
//! implemented it). Role traits (`JobStore`, `EffectStore`, …) were the other choice, and were not
//! taken: the queue alone (its worker, effect ledger and `jobs` CLI) calls four roles (jobs, effects,
//! retention, listening), so it would have taken most of them back in one bound, and so would the
//! app, which hands one store to all; no test fakes or wraps a store (`tests/queue.rs` and
//! `tests/store.rs` run one suite on both real databases, and the harness opens a real one), so a
//! trait bought nothing but `dyn` calls, boxed futures and a second place for every signature. The
//! split by role is in the files instead: one `impl SqlStore` block per role, each in a file named
//! after what it does:
//!
//! | file | what it keeps |
//! |---|---|
//! | `jobs.rs` | enqueue, claim, leases, completion, retries, waits, the operator's hold, listing |
//! | `effects.rs` | the effect ledger (intent before an external call, its id after) |
//! | `claims.rs` | item claims (which job holds an item of a scope) |
//! | `escalations.rs` | escalations to a tracker: which issue a (source, session) became |
//! | `retention.rs` | retention: finished jobs' payloads scrubbed, one-time marks dropped |
//! | `listen.rs` | cross-process wake-ups and erasure announcements |
//! | `privacy.rs` | the audit trail, settings, erasure scrubbing, tombstones |
//! | `activations.rs` | FullStory Activations counted per billing cycle, for every replica |
//! | `session_data.rs` | sessions' events and summaries every replica shares (one Activation each) |
//! | `migrate.rs` | migrations, run by [`open`] |
//! | `db.rs` | shared: [`SqlStore`] itself, each backend's pool, `with_db!`, rows read into types |
//! | `dialect.rs` | shared: `Dialect`, what differs between the backends |
//! | `sqlite.rs`, `postgres.rs` | each backend: opening its pool, its `Dialect` and migration lock |
//!
//! The role files use only the shared ones, never a backend's file; the backends' files use the shared
//! ones and `migrate.rs` (whose `Migrations` they implement); nothing shared uses a role or a backend:
//! the files form no circle.
//!
//! # Contract
//! * One store, [`SqlStore`], with two backends chosen by the URL given to
//!   [`open`]: `sqlite://PATH` (the embedded default; the file is created if
//!   missing; `sqlite::memory:` for throwaway use) and `postgres://…` /
//!   `postgresql://…`. Migrations for the chosen backend run inside `open`,
//!   under a lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL an advisory lock), so
//!   several processes may start at once.
//! * Both backends run the *same* query text (`$1`-style placeholders work in
//!   both) from one body of Rust code per role, compiled once per backend
//!   (`with_db!`); the differences (how a write transaction begins, `FOR
//!   UPDATE SKIP LOCKED`, `NOTIFY`, `LISTEN`) live in a small per-backend
//!   `Dialect` impl.
//! * SQLite runs in WAL mode with `synchronous=FULL`: an acknowledged delivery
//!   survives power loss, not only a process crash. Writes in this process
//!   take turns on one writer connection (first come, first served: this keeps
//!   enqueue's tail latency in milliseconds under concurrent webhooks), and
//!   every write transaction starts with `BEGIN IMMEDIATE`, so it takes the
//!   write lock up front and waits (`busy_timeout`, against other processes)
//!   instead of failing half-way; a statement that fails rolls the whole
//!   transaction back (the transaction is dropped un-committed).
//! * Times are passed in by the caller (`now`), never read from the system
//!   clock here (but for the time of a SQLite erasure announcement, which
//!   only decides when it is forgotten), and stored as `i64` unix
//!   milliseconds in both backends.
//! * Every state change of a leased job names the lease owner; a worker whose
//!   lease was taken over gets `false` back and changes nothing.
//! * PostgreSQL isolation for tests (and for sharing a database): pass
//!   [`StoreOptions::pg_schema`] to [`open_with`], which creates the schema if
//!   needed and sets `search_path` on every connection. A URL with
//!   `?options=-c%20search_path%3Dmyschema` works as well, for an existing
//!   schema.

mod activations;
mod claims;
mod db;
mod dialect;
mod effects;
mod escalations;
mod jobs;
mod listen;
mod migrate;
mod postgres;
mod privacy;
mod retention;
mod session_data;
mod sqlite;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use activations::{ActivationCount, ActivationDay, ActivationSlot};
pub use db::{SqlStore, Writer};
pub use escalations::{EscalationRecord, NewEscalation};
pub use jobs::MAX_ENQUEUE_BATCH;
pub use privacy::AuditRecord;

/// A job to enqueue: what to run (`kind`, matched against a handler) and its
/// input. Payloads may hold customer emails: see retention in
/// [`SqlStore::purge_done`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    /// The input as JSON text, written once where the job is made ([`crate::queue::Job`]'s type
    /// straight to text: issue 27's profile found a `Value` tree built and written again per delivery).
    pub payload: String,
    /// The inbound request that asked for it (`x-request-id`), so the worker's logs and spans carry
    /// it; [`crate::queue::Queue::enqueue`] fills it from the request being served when `None`.
    pub request_id: Option<String>,
    /// Claimed in the delivery's own transaction: stored `running` under this lease, its first
    /// attempt counted, for a worker of this process to run at once (the queue's hand-off, issue 27:
    /// one commit fewer before the answer). `None`: stored `queued`, for any worker to claim.
    pub lease: Option<Lease>,
}

/// A lease on a job: who holds it and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// The claim [`SqlStore::complete_and_claim`] makes in a completion's transaction: the next job's
/// lease owner (unique per claim, as for [`SqlStore::claim`]) and how long the lease runs.
#[derive(Debug, Clone, Copy)]
pub struct NextClaim<'a> {
    pub owner: &'a str,
    pub lease_until: DateTime<Utc>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self::from_json(kind, payload.to_string())
    }

    /// A job whose input is already JSON text.
    pub fn from_json(kind: impl Into<String>, payload: String) -> Self {
        Self {
            kind: kind.into(),
            payload,
            request_id: None,
            lease: None,
        }
    }
}

/// What [`SqlStore::enqueue`] did. On a duplicate delivery key `job_id` is the
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
    /// When it was claimed in its delivery's commit and handed to a worker ([`NewJob::lease`]).
    pub handed_at: Option<DateTime<Utc>>,
    /// How its attempts keep the effect ledger (its first attempt writes no intents).
    pub ledgering: Ledgering,
}

/// How a job's attempts keep the effect ledger (`queue/ledger.rs`, "First attempts write no
/// intent"): each claim moves it on (`Unrun` → `FirstRun`, or `Intents` when the ledger already has
/// rows for the job; `FirstRun` → `AfterFirstRun`), and a first run's recorded outcome other than
/// done (a wait, a retry, a release, an end) puts it back to `Unrun`: the worker recorded all the
/// attempt tried before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ledgering {
    /// The ledger knows all that was done for it (nothing, or rows): the next claim decides.
    Unrun,
    /// Claimed (or handed) with no ledger rows: that attempt writes no intents. Still so when the
    /// next claim comes (the attempt died or lost its lease before its outcome, which may have done
    /// an effect it did not record), that claim makes the job `AfterFirstRun`.
    FirstRun,
    /// A first run may have done an effect it did not record: intents, and an effect without a row
    /// is looked for on the platform (under its derived marker) before it is done.
    AfterFirstRun,
    /// Intents with random markers: jobs stored before the column was (one with `handed_at` set is
    /// read as `AfterFirstRun`), or stored by an older binary during a rolling upgrade, or held by an
    /// operator before any attempt.
    Intents,
}

impl Ledgering {
    /// The column as a job's attempts follow it (`handed`: the job has a `handed_at`): a job handed
    /// before the column was is still `intents`, but its first attempt wrote no intents, so it reads
    /// as `AfterFirstRun`.
    pub(super) fn as_read(self, handed: bool) -> Self {
        match self {
            Ledgering::Intents if handed => Ledgering::AfterFirstRun,
            other => other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ledgering::Unrun => "unrun",
            Ledgering::FirstRun => "first_run",
            Ledgering::AfterFirstRun => "after_first_run",
            Ledgering::Intents => "intents",
        }
    }
}

impl FromStr for Ledgering {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "unrun" => Ok(Ledgering::Unrun),
            "first_run" => Ok(Ledgering::FirstRun),
            "after_first_run" => Ok(Ledgering::AfterFirstRun),
            "intents" => Ok(Ledgering::Intents),
            other => bail!(
                "unknown ledgering {other:?} (expected unrun, first_run, after_first_run or intents)"
            ),
        }
    }
}

/// A job waiting for an upstream: see [`SqlStore::wait_later`].
#[derive(Debug, Clone, Copy)]
pub struct Wait<'a> {
    /// The upstream waited for (`fullstory`, `zendesk`, …); `None` for a delay that is no outage (a
    /// spend limit: [`crate::queue::JobError::Later`]).
    pub upstream: Option<&'a str>,
    /// When to try again (sooner if the upstream comes back: [`SqlStore::wake_waiting`]).
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

/// An effect a job's first attempt tried, recorded with the attempt's outcome
/// ([`SqlStore::complete_and_claim`], [`SqlStore::record_tried_effects`]): done with its external id,
/// or (`None`: it failed, or was cut off) an intent under its marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriedEffect {
    pub name: String,
    pub marker: String,
    pub external_id: Option<String>,
}

/// Who holds one item of a scope; see [`SqlStore::claim_items`].
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

/// Opens the store at `url` with default options and runs migrations.
pub async fn open(url: &str) -> anyhow::Result<Arc<SqlStore>> {
    open_with(url, StoreOptions::default()).await
}

/// Opens the store at `url` and runs migrations.
pub async fn open_with(url: &str, options: StoreOptions) -> anyhow::Result<Arc<SqlStore>> {
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

    #[test]
    fn only_a_job_handed_before_the_ledgering_column_reads_as_after_first_run() {
        use Ledgering::*;
        assert_eq!(Intents.as_read(true), AfterFirstRun);
        assert_eq!(Intents.as_read(false), Intents);
        for ledgering in [Unrun, FirstRun, AfterFirstRun] {
            assert_eq!(ledgering.as_read(true), ledgering);
            assert_eq!(ledgering.as_read(false), ledgering);
        }
    }
}
