//! What a job is to the code that defines and runs one: the payload trait ([`Job`]), the handler
//! contracts ([`RunJob`], typed, and [`JobHandler`], what the worker calls), what a handler is given
//! ([`JobContext`]) and may answer ([`JobError`]), what one step of the worker did
//! ([`ExecutionOutcome`]), and the queue's [`Settings`]. The worker runtime that uses them is in
//! [`super::worker`].
//!
//! Modelled on crates.io's `BackgroundJob`: a payload type names its kind once
//! (`impl Job for X { const KIND = "…"; }`; everything else says `X::KIND`), is enqueued by type
//! ([`super::Queue::push`], or [`NewJob::of`] where a [`NewJob`] is wanted) and is run by a [`RunJob`]
//! handler that receives it decoded. Kinds and payload shapes are stored with every job: a released
//! kind string never changes, and a payload only gains fields with defaults, so jobs queued by an
//! older version still run after an upgrade (`tests/api/stored_jobs.rs` keeps each kind's stored
//! shape).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};

use super::ledger::Effects;
use crate::store::{AuditRecord, NewJob};

/// Queue settings, built from `queue.*` (and `server.shutdown_grace`) in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Concurrent workers in this process.
    pub workers: usize,
    /// Attempts before a job is dead.
    pub max_attempts: u32,
    /// How long a claim holds a job without renewal.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs without a wake-up.
    pub poll_interval: Duration,
    /// Delay after the first failure.
    pub backoff_base: Duration,
    /// Longest delay between attempts.
    pub backoff_cap: Duration,
    /// How long a done job keeps its payload.
    pub retention: Duration,
    /// How long running jobs may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Settings {
    /// The settings `config` describes (backoff steps keep their defaults).
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            workers: config.queue.workers,
            max_attempts: config.queue.max_attempts,
            lease: config.queue.lease.0,
            poll_interval: config.queue.poll_interval.0,
            retention: config.queue.retention.0,
            shutdown_grace: config.server.shutdown_grace.0,
            ..Self::default()
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            workers: 4,
            max_attempts: 6,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(600),
            retention: Duration::from_secs(7 * 86_400),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Why a job's attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Try again later (up to `max_attempts`).
    #[error("{0:#}")]
    Retry(anyhow::Error),
    /// Will never succeed: dead at once.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
    /// Not now, and not the job's failure: run it again `after` this long, the attempt not counted (a
    /// spend limit that delays work rather than refusing it).
    #[error("delayed by {after:?}: {reason}")]
    Later { after: Duration, reason: String },
    /// An upstream the job needs is down: try again at `until` (sooner if it comes back), without
    /// counting this attempt.
    #[error("waiting: {upstream} unavailable ({error:#})")]
    Wait {
        upstream: &'static str,
        until: DateTime<Utc>,
        error: anyhow::Error,
    },
    /// The answer's deadline passed (the handler has told the requester): the job ends `expired`.
    #[error("expired: {0:#}")]
    Expired(anyhow::Error),
}

impl JobError {
    pub fn permanent(error: impl Into<anyhow::Error>) -> Self {
        JobError::Permanent(error.into())
    }
}

impl From<anyhow::Error> for JobError {
    fn from(error: anyhow::Error) -> Self {
        JobError::Retry(error)
    }
}

/// What a handler gets: the job and its effect ledger.
pub struct JobContext {
    pub(super) id: i64,
    pub(super) kind: String,
    pub(super) attempt: u32,
    pub(super) max_attempts: u32,
    pub(super) payload: serde_json::Value,
    pub(super) enqueued_at: DateTime<Utc>,
    pub(super) retried_at: Option<DateTime<Utc>>,
    pub(super) waiting_on: Option<String>,
    pub(super) effects: Effects,
    /// Audit entries to write with this attempt's outcome ([`JobContext::audit`]).
    pub(super) audit: std::sync::Mutex<Vec<AuditRecord>>,
}

impl JobContext {
    pub fn id(&self) -> i64 {
        self.id
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// 1 for the first attempt.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// True when a failure now makes the job dead.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// The payload as stored (JSON); a [`RunJob`] handler gets it decoded.
    pub fn payload(&self) -> &serde_json::Value {
        &self.payload
    }

    /// The payload as `J`. One that does not fit is a permanent error (it will not fit next time
    /// either) naming the field, never quoting the payload (it may hold an email).
    fn decode<J: Job>(&self) -> Result<J, JobError> {
        decode_stored(&self.payload).map_err(|why| {
            JobError::permanent(anyhow::anyhow!(
                "job {} is not a {:?} payload: {why}",
                self.id,
                J::KIND
            ))
        })
    }

    pub fn enqueued_at(&self) -> DateTime<Utc> {
        self.enqueued_at
    }

    /// The upstream this job was waiting for when it was claimed (its previous try met an outage).
    pub fn waiting_on(&self) -> Option<&str> {
        self.waiting_on.as_deref()
    }

    /// When an operator last retried it (`jobs retry`), if ever.
    pub fn retried_at(&self) -> Option<DateTime<Utc>> {
        self.retried_at
    }

    /// This job's effect ledger.
    pub fn effects(&self) -> &Effects {
        &self.effects
    }

    /// Writes `entry` to the audit log with this attempt's outcome: in the transaction that marks the
    /// job done (one commit a job fewer: issue 27 counted six a slash command), or on its own right
    /// after any other outcome (a retry, a wait, a lost lease, a panic), so an action taken is audited
    /// whatever follows it. A crash before the outcome loses the entry with the attempt; the job runs
    /// again, its effects found in the ledger, and that attempt writes it.
    pub fn audit(&self, entry: AuditRecord) {
        self.audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry);
    }

    /// The entries [`Self::audit`] collected, taken.
    pub(super) fn take_audit(&self) -> Vec<AuditRecord> {
        std::mem::take(&mut *self.audit.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Reads `T` from stored JSON (a payload, or a part of one such as a reply target), or says which
/// field does not fit (`times: invalid value`, `.: missing field `name``) without quoting its value:
/// payloads hold emails and reply targets hold tokens.
pub fn decode_stored<T: DeserializeOwned>(stored: &serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(stored).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        // "missing field `x`" names a field; serde's other messages may quote the value.
        let what = if message.starts_with("missing field") {
            message
        } else {
            "invalid value".to_owned()
        };
        format!("{path}: {what}")
    })
}

/// A job's payload: stored with the job as JSON, handed back decoded to the [`RunJob`] handler of
/// its kind.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stored `kind` of this payload's jobs. Never change a released one: queued jobs carry it.
    const KIND: &'static str;
}

impl NewJob {
    /// `job` as a job to enqueue, under its kind. (Beside [`Job`] rather than in the store, which
    /// knows nothing of payload types.) Fails only if the payload cannot be written as JSON.
    pub fn of<J: Job>(job: &J) -> anyhow::Result<NewJob> {
        Ok(NewJob::from_json(J::KIND, serde_json::to_string(job)?))
    }
}

/// Runs the jobs of one [`Job`] type: the way to write a handler. Every `RunJob` is a [`JobHandler`]
/// for the kind `Self::Job::KIND`, with the payload decoded once per call (one that does not fit is a
/// permanent error), so it is registered as `Arc::new(handler)`.
#[async_trait]
pub trait RunJob: Send + Sync + 'static {
    type Job: Job;

    async fn run(&self, ctx: &JobContext, job: Self::Job) -> Result<(), JobError>;

    /// Called once the job has given up, before it is marked dead (at least once: dedupe external
    /// effects with `ctx.effects()`), for telling the requester. `job` is `None` when the payload
    /// cannot be read (it does not fit, or retention or an erasure scrubbed it). Panics are caught and
    /// logged.
    async fn on_dead(&self, ctx: &JobContext, job: Option<Self::Job>, error: &str) {
        let _ = (ctx, job, error);
    }

    /// Called when an operator cancels the job (`replaydesk jobs cancel`), before it is marked
    /// cancelled, to tell the requester (dedupe with `ctx.effects()`). An error leaves the job as it
    /// was, waiting. `job` is `None` when the payload cannot be read. By default there is nobody to
    /// tell.
    async fn on_cancel(&self, ctx: &JobContext, job: Option<Self::Job>) -> Result<(), JobError> {
        let _ = (ctx, job);
        Ok(())
    }
}

#[async_trait]
impl<H: RunJob> JobHandler for H {
    fn kind(&self) -> &'static str {
        H::Job::KIND
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let job = ctx.decode::<H::Job>()?;
        RunJob::run(self, ctx, job).await
    }

    async fn on_dead(&self, ctx: &JobContext, error: &str) {
        RunJob::on_dead(self, ctx, ctx.decode::<H::Job>().ok(), error).await;
    }

    async fn on_cancel(&self, ctx: &JobContext) -> Result<(), JobError> {
        RunJob::on_cancel(self, ctx, ctx.decode::<H::Job>().ok()).await
    }
}

/// What the worker calls: runs the jobs of one kind, given the payload as stored. Write a [`RunJob`];
/// this lower level stays for handlers that take any payload (the queue's own tests).
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The `NewJob::kind` this handler runs.
    fn kind(&self) -> &'static str;

    async fn run(&self, job: &JobContext) -> Result<(), JobError>;

    /// Called once the job has given up, before it is marked dead (so: at
    /// least once; dedupe external effects with `job.effects()`). For telling
    /// the requester that it failed. Panics are caught and logged.
    async fn on_dead(&self, job: &JobContext, error: &str) {
        let _ = (job, error);
    }

    /// Called when an operator cancels the job, before it is marked cancelled; an error leaves it
    /// waiting. See [`RunJob::on_cancel`].
    async fn on_cancel(&self, job: &JobContext) -> Result<(), JobError> {
        let _ = job;
        Ok(())
    }
}

/// What [`super::Queue::try_execute_one`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionOutcome {
    /// Nothing was due.
    EmptyQueue,
    Done(i64),
    /// Failed; queued again after a backoff.
    Retrying(i64),
    /// Put off by the handler ([`JobError::Later`]); queued again, the attempt not counted.
    Delayed(i64),
    Dead(i64),
    /// An upstream it needs is down: queued again, the attempt not counted.
    Waiting(i64),
    /// Its answer's deadline passed: ended as `expired`.
    Expired(i64),
    /// The lease was taken over (or could not be renewed); nothing recorded.
    LeaseLost(i64),
    /// Cancelled by shutdown after the grace period; lease released.
    Released(i64),
}
