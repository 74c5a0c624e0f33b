//! The worker runtime: the [`Queue`] handle (enqueue, the step function [`Queue::try_execute_one`]),
//! how one claimed job is run (its lease renewed, panics caught, the outcome recorded: done, retried
//! after a backoff, delayed, waiting for an upstream, expired or dead), and the long-running
//! [`Workers`] with their maintenance task. The rules it keeps are the contract in [`super`]; the types
//! handlers see are in [`super::job`].

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::handoff::{Handed, Handoff};
use super::ledger::Ledgering;
use super::{
    Effects, ExecutionOutcome, Job, JobContext, JobError, JobHandler, Settings, group_commit,
};
use crate::{
    clock::Clock,
    metrics::QueueMetrics,
    store::{Enqueued, JobState, Lease, NewJob, NextClaim, SqlStore, StoredJob, TriedEffect},
};

/// Longest `last_error` kept, in bytes.
const MAX_ERROR_LEN: usize = 4_000;
/// How often the jobs-by-state gauge is refreshed.
const METRICS_REFRESH: Duration = Duration::from_secs(15);
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(600);
/// How long [`Workers::join`] waits beyond `shutdown_grace` before aborting.
const JOIN_SLACK: Duration = Duration::from_secs(5);

/// The job queue of this process. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<SqlStore>,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    settings: Settings,
    clock: Clock,
    metrics: QueueMetrics,
    wake: Arc<Notify>,
    group: Arc<group_commit::GroupCommit>,
    handoff: Handoff,
}

enum Leased<T> {
    Finished(T),
    LeaseLost,
    Interrupted,
}

impl Queue {
    /// Fails on two handlers for one kind or unusable settings.
    pub fn new(
        store: Arc<SqlStore>,
        handlers: Vec<Arc<dyn JobHandler>>,
        settings: Settings,
        clock: Clock,
        metrics: QueueMetrics,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.max_attempts >= 1,
            "queue.max_attempts must be at least 1"
        );
        anyhow::ensure!(!settings.lease.is_zero(), "queue.lease must be positive");
        anyhow::ensure!(
            !settings.poll_interval.is_zero(),
            "queue.poll_interval must be positive"
        );
        let mut by_kind = HashMap::new();
        for handler in handlers {
            let kind = handler.kind();
            anyhow::ensure!(
                by_kind.insert(kind, handler).is_none(),
                "two job handlers for kind {kind:?}"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                group: group_commit::GroupCommit::new(
                    store.clone(),
                    clock.clone(),
                    metrics.clone(),
                ),
                store,
                handlers: by_kind,
                handoff: Handoff::new(settings.workers),
                settings,
                clock,
                metrics,
                wake: Arc::new(Notify::new()),
            }),
        })
    }

    pub fn store(&self) -> &Arc<SqlStore> {
        &self.inner.store
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn metrics(&self) -> &QueueMetrics {
        &self.inner.metrics
    }

    /// Records the delivery and its job in one transaction, then wakes an
    /// idle worker. See the module docs.
    pub async fn enqueue(&self, delivery_key: &str, mut job: NewJob) -> anyhow::Result<Enqueued> {
        let inner = &self.inner;
        if job.request_id.is_none() {
            job.request_id = crate::telemetry::request_id();
        }
        // An idle worker here: claimed in the delivery's commit and handed to it (`handoff`).
        let worker = inner.handoff.reserve();
        if worker.is_some() {
            job.lease = Some(Lease {
                owner: format!("handed@{}:{:08x}", std::process::id(), fastrand::u32(..)),
                until: inner.clock.now() + chrono::Duration::from_std(inner.settings.lease)?,
            });
        }
        let handed = worker.is_some();
        let enqueued = inner.group.enqueue(delivery_key, job, worker).await?;
        inner.metrics.enqueued(enqueued.duplicate);
        match (enqueued.duplicate, handed) {
            (true, _) => {}
            (false, true) => inner.metrics.handed(),
            (false, false) => inner.wake.notify_one(),
        }
        Ok(enqueued)
    }

    /// Enqueues `job` under its kind ([`Queue::enqueue`] of [`NewJob::of`]).
    pub async fn push<J: Job>(&self, delivery_key: &str, job: &J) -> anyhow::Result<Enqueued> {
        self.enqueue(delivery_key, NewJob::of(job)?).await
    }

    /// Claims and runs at most one due job as `owner` (the zero2prod-style
    /// step function; workers loop over it).
    pub async fn try_execute_one(&self, owner: &str) -> anyhow::Result<ExecutionOutcome> {
        self.execute(owner, None, None).await
    }

    /// The delay before the attempt after failed attempt `attempt`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let s = &self.inner.settings;
        backoff_delay(s.backoff_base, s.backoff_cap, attempt, fastrand::f64())
    }

    /// Refreshes the jobs-by-state gauge now.
    pub async fn refresh_metrics(&self) -> anyhow::Result<()> {
        let counts: Vec<(&'static str, u64)> = self
            .inner
            .store
            .count_by_state()
            .await?
            .into_iter()
            .map(|(state, n)| (state.as_str(), n))
            .collect();
        self.inner.metrics.set_counts(&counts);
        let waiting = self.inner.store.count_waiting().await?;
        self.inner.metrics.set_waiting(&waiting);
        Ok(())
    }

    /// Runs retention now: scrubs the payloads of jobs done longer than
    /// `retention` ago. Returns how many.
    pub async fn purge_expired(&self) -> anyhow::Result<u64> {
        let now = self.inner.clock.now();
        let cutoff = now - chrono::Duration::from_std(self.inner.settings.retention)?;
        self.inner.store.purge_done(cutoff, now).await
    }

    /// Starts `settings.workers` workers, the maintenance task and (on
    /// PostgreSQL) the LISTEN task; they stop when `shutdown` turns true or
    /// its sender is dropped. Await [`Workers::join`] after signalling.
    pub async fn spawn_workers(&self, shutdown: watch::Receiver<bool>) -> Workers {
        let mut background = Vec::new();
        match self.inner.store.listen(self.inner.wake.clone()).await {
            Ok(Some(listener)) => background.push(listener),
            Ok(None) => {}
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "no cross-process wake-ups; idle workers will poll"
            ),
        }
        background.push(tokio::spawn(maintenance_loop(
            self.clone(),
            shutdown.clone(),
        )));
        let pid = std::process::id();
        let workers = (0..self.inner.settings.workers)
            .map(|i| {
                tokio::spawn(worker_loop(
                    self.clone(),
                    format!("w{i}@{pid}"),
                    shutdown.clone(),
                ))
            })
            .collect();
        Workers {
            workers,
            background,
            shutdown,
            grace: self.inner.settings.shutdown_grace,
        }
    }

    async fn execute(
        &self,
        owner: &str,
        shutdown: Option<&watch::Receiver<bool>>,
        next: Option<&mut ClaimNext<'_>>,
    ) -> anyhow::Result<ExecutionOutcome> {
        let now = self.inner.clock.now();
        let (lease_owner, lease_until) = self.new_lease(owner, now)?;
        let Some(job) = self
            .inner
            .store
            .claim(&lease_owner, lease_until, now)
            .await?
        else {
            return Ok(ExecutionOutcome::EmptyQueue);
        };
        self.run(job, &lease_owner, shutdown, next).await
    }

    /// A lease for a claim by worker `owner` at `now`: its owner (unique per claim) and its end.
    fn new_lease(
        &self,
        owner: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(String, DateTime<Utc>)> {
        let lease_owner = format!("{owner}:{:08x}", fastrand::u32(..));
        Ok((
            lease_owner,
            now + chrono::Duration::from_std(self.inner.settings.lease)?,
        ))
    }

    /// Runs `job`, leased to `lease_owner` by a claim or in its delivery's commit. With `next`, a
    /// job that ends done claims the worker's next job in its completion's commit.
    async fn run(
        &self,
        job: StoredJob,
        lease_owner: &str,
        shutdown: Option<&watch::Receiver<bool>>,
        next: Option<&mut ClaimNext<'_>>,
    ) -> anyhow::Result<ExecutionOutcome> {
        let span = tracing::info_span!(
            "job",
            job_id = job.id,
            kind = %job.kind,
            attempt = job.attempts,
            request_id = job.request_id.as_deref().unwrap_or("-")
        );
        let (ctx, last_error, request_id) = self.context(job);
        // The request id back in scope: the job's outbound calls and the jobs it enqueues carry it.
        let run = self.run_claimed(ctx, last_error, lease_owner, shutdown, next);
        crate::telemetry::scope_request_id(request_id, run)
            .instrument(span)
            .await
    }

    /// What a handler is given for a claimed `job`, with the job's last error and request id.
    fn context(&self, job: StoredJob) -> (JobContext, Option<String>, Option<String>) {
        let inner = &self.inner;
        let ledgering = Ledgering::of(&job);
        let ctx = JobContext {
            id: job.id,
            kind: job.kind,
            attempt: job.attempts,
            max_attempts: inner.settings.max_attempts,
            payload: job.payload,
            enqueued_at: job.enqueued_at,
            retried_at: job.retried_at,
            waiting_on: job.waiting_on,
            effects: Effects::new(inner.store.clone(), job.id, inner.clock.clone(), ledgering),
            audit: Default::default(),
        };
        (ctx, job.last_error, job.request_id)
    }

    /// Ends a queued job (one waiting for an upstream, say, with no deadline of its own: an erasure,
    /// a thread answer) on an operator's word: the job is held (no worker can claim it meanwhile), its
    /// handler tells the requester ([`JobHandler::on_cancel`], through the job's replier like an
    /// expired job's final message), then it is marked `cancelled` with `operator` named. If the
    /// requester cannot be told, the job is left waiting as it was and the error says why.
    ///
    /// # Errors
    /// No such job; a job that is not queued (running, done, dead, expired, cancelled: named); the
    /// requester could not be told; the store failed.
    pub async fn cancel(&self, job_id: i64, operator: &str) -> anyhow::Result<()> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let owner = format!("{operator}:{:08x}", fastrand::u32(..));
        let lease_until = now + chrono::Duration::from_std(inner.settings.lease)?;
        let Some(job) = inner
            .store
            .claim_job(job_id, &owner, lease_until, now)
            .await?
        else {
            return Err(match inner.store.get_job(job_id).await? {
                None => anyhow::anyhow!("no job {job_id}"),
                Some(job) if job.state == JobState::Running => anyhow::anyhow!(
                    "job {job_id} is running (a worker holds it until {}): try again when its \
                     attempt is over",
                    job.locked_until
                        .map_or_else(|| "-".into(), |t| t.to_rfc3339())
                ),
                Some(job) => anyhow::anyhow!(
                    "job {job_id} is {}: only a queued job (one still waiting) can be cancelled",
                    job.state
                ),
            });
        };
        let span = tracing::info_span!("job", job_id, kind = %job.kind, operator);
        let (ctx, _, request_id) = self.context(job);
        let tell = async {
            match inner.handlers.get(ctx.kind.as_str()) {
                Some(handler) => AssertUnwindSafe(handler.on_cancel(&ctx))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| {
                        Err(JobError::Retry(anyhow::anyhow!(
                            "telling the requester panicked: {}",
                            crate::telemetry::panic_message(panic.as_ref())
                        )))
                    }),
                None => Ok(()),
            }
        };
        let told = crate::telemetry::scope_request_id(request_id, tell)
            .instrument(span)
            .await;
        if let Err(error) = told {
            inner
                .store
                .unhold(job_id, &owner, inner.clock.now())
                .await?;
            anyhow::bail!(
                "job {job_id} was not cancelled: its requester could not be told ({error}); it \
                 waits as before"
            );
        }
        let now = inner.clock.now();
        let reason = format!(
            "cancelled by {operator} at {} (replaydesk jobs cancel)",
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        if !inner
            .store
            .mark_cancelled(job_id, &owner, &reason, now)
            .await?
        {
            anyhow::bail!(
                "job {job_id}: the hold on it was lost before it could be marked cancelled (see \
                 `replaydesk jobs show {job_id}`)"
            );
        }
        inner.metrics.execution("cancelled");
        tracing::info!(job_id, operator, "job cancelled by an operator");
        Ok(())
    }

    async fn run_claimed(
        &self,
        ctx: JobContext,
        previous_error: Option<String>,
        owner: &str,
        shutdown: Option<&watch::Receiver<bool>>,
        next: Option<&mut ClaimNext<'_>>,
    ) -> anyhow::Result<ExecutionOutcome> {
        let inner = &self.inner;
        let Some(handler) = inner.handlers.get(ctx.kind.as_str()).cloned() else {
            let mut known: Vec<&str> = inner.handlers.keys().copied().collect();
            known.sort_unstable();
            let error = format!(
                "no handler registered for job kind {:?} (known kinds: {})",
                ctx.kind,
                known.join(", ")
            );
            return self.bury(&ctx, None, owner, error).await;
        };
        if ctx.attempt > inner.settings.max_attempts {
            let error = format!(
                "gave up after {} attempts: the worker running the last one stopped without \
                 reporting (its lease expired); previous error: {}",
                inner.settings.max_attempts,
                previous_error.as_deref().unwrap_or("none")
            );
            return self.bury(&ctx, Some(handler), owner, error).await;
        }
        let run =
            crate::outbound::outage::observe(AssertUnwindSafe(handler.run(&ctx)).catch_unwind());
        let (outcome, seen) = match self.leased(ctx.id, owner, run, shutdown).await {
            Leased::Finished((result, seen)) => (Leased::Finished(result), seen),
            Leased::LeaseLost => (Leased::LeaseLost, Default::default()),
            Leased::Interrupted => (Leased::Interrupted, Default::default()),
        };
        for upstream in &seen.recovered {
            self.wake_waiting(upstream).await;
        }
        let outcome = match (outcome, seen.outage) {
            // A failure in an attempt that met an outage: the upstream's, not the job's.
            (Leased::Finished(Ok(Err(JobError::Retry(error)))), Some(outage)) => {
                let wait = chrono::Duration::from_std(outage.wait).unwrap_or_default();
                Leased::Finished(Ok(Err(JobError::Wait {
                    upstream: outage.upstream,
                    until: inner.clock.now() + wait,
                    error,
                })))
            }
            (outcome, _) => outcome,
        };
        let audit = ctx.take_audit();
        let effects = ctx.effects().take_tried();
        if !matches!(outcome, Leased::Finished(Ok(Ok(())))) {
            // Recorded before the outcome frees the job for another worker.
            self.record_attempt(ctx.id, &audit, &effects).await?;
        }
        match outcome {
            Leased::Finished(Ok(Ok(()))) => {
                let now = inner.clock.now();
                // Once shutdown has begun, a job claimed now would only be released again.
                let stopping = shutdown.is_some_and(|stop| *stop.borrow());
                let next = next.filter(|_| !stopping);
                let lease = match &next {
                    Some(next) => Some(self.new_lease(next.worker, now)?),
                    None => None,
                };
                let claim = lease.as_ref().map(|(owner, until)| NextClaim {
                    owner,
                    lease_until: *until,
                });
                let (completed, claimed) = inner
                    .store
                    .complete_and_claim(ctx.id, owner, now, &audit, &effects, claim)
                    .await?;
                if let (Some(next), Some(job), Some((owner, _))) = (next, claimed, lease) {
                    next.claimed = Some(Handed { job, owner });
                }
                if !completed {
                    return Ok(self.lease_lost(ctx.id));
                }
                let latency = (now - ctx.enqueued_at).to_std().unwrap_or_default();
                inner.metrics.done(ctx.attempt, latency.as_secs_f64());
                inner.metrics.execution("done");
                tracing::debug!("job done");
                Ok(ExecutionOutcome::Done(ctx.id))
            }
            Leased::Finished(Ok(Err(JobError::Retry(error)))) => {
                self.failed(&ctx, handler, owner, format!("{error:#}"))
                    .await
            }
            Leased::Finished(Ok(Err(JobError::Later { after, reason }))) => {
                let now = inner.clock.now();
                let error = truncate(reason.clone());
                let wait = crate::store::Wait {
                    upstream: None,
                    until: now + chrono::Duration::from_std(after)?,
                    error: &error,
                };
                if !inner.store.wait_later(ctx.id, owner, wait, now).await? {
                    return Ok(self.lease_lost(ctx.id));
                }
                inner.metrics.execution("delayed");
                tracing::info!(%reason, run_in = ?after, "job delayed");
                Ok(ExecutionOutcome::Delayed(ctx.id))
            }
            Leased::Finished(Ok(Err(JobError::Permanent(error)))) => {
                let error = format!("permanent error: {error:#}");
                self.bury(&ctx, Some(handler), owner, error).await
            }
            Leased::Finished(Ok(Err(JobError::Wait {
                upstream,
                until,
                error,
            }))) => self.wait(&ctx, owner, upstream, until, error).await,
            Leased::Finished(Ok(Err(JobError::Expired(error)))) => {
                let error = truncate(format!("expired: {error:#}"));
                let now = inner.clock.now();
                if !inner.store.mark_expired(ctx.id, owner, &error, now).await? {
                    return Ok(self.lease_lost(ctx.id));
                }
                inner.metrics.execution("expired");
                inner.metrics.expired();
                tracing::warn!(%error, "job expired: its answer's deadline passed");
                Ok(ExecutionOutcome::Expired(ctx.id))
            }
            Leased::Finished(Err(panic)) => {
                let error = format!(
                    "job panicked: {}",
                    crate::telemetry::panic_message(panic.as_ref())
                );
                self.failed(&ctx, handler, owner, error).await
            }
            Leased::LeaseLost => Ok(self.lease_lost(ctx.id)),
            Leased::Interrupted => {
                let released = inner
                    .store
                    .release(ctx.id, owner, inner.clock.now())
                    .await?;
                inner.metrics.execution("released");
                tracing::info!(
                    released,
                    "shutdown grace over; job cancelled and lease released"
                );
                Ok(ExecutionOutcome::Released(ctx.id))
            }
        }
    }

    /// What an attempt that did not end done leaves: the effects a job's first attempt tried
    /// (an error: its outcome is not recorded without them, and the lease runs out instead, so the
    /// next attempt looks for them on the platform) and its audit entries, each on its own (a
    /// failure is logged).
    async fn record_attempt(
        &self,
        job_id: i64,
        entries: &[crate::store::AuditRecord],
        effects: &[TriedEffect],
    ) -> anyhow::Result<()> {
        let store = &self.inner.store;
        for entry in entries {
            if let Err(error) = store.record_audit(entry).await {
                tracing::warn!(error = %format!("{error:#}"), action = %entry.action, "could not record the audit entry");
            }
        }
        store
            .record_tried_effects(job_id, effects, self.inner.clock.now())
            .await
    }

    /// A failed attempt: retry later, or dead if it was the last.
    async fn failed(
        &self,
        ctx: &JobContext,
        handler: Arc<dyn JobHandler>,
        owner: &str,
        error: String,
    ) -> anyhow::Result<ExecutionOutcome> {
        let inner = &self.inner;
        if ctx.attempt >= inner.settings.max_attempts {
            let error = format!("gave up after {} attempts: {error}", ctx.attempt);
            return self.bury(ctx, Some(handler), owner, error).await;
        }
        let now = inner.clock.now();
        let delay = self.backoff(ctx.attempt);
        let run_after = now + chrono::Duration::from_std(delay)?;
        let error = truncate(error);
        if !inner
            .store
            .retry_later(ctx.id, owner, run_after, &error, now)
            .await?
        {
            return Ok(self.lease_lost(ctx.id));
        }
        inner.metrics.execution("retry");
        tracing::info!(%error, retry_in = ?delay, "job failed; will retry");
        Ok(ExecutionOutcome::Retrying(ctx.id))
    }

    /// An upstream the job needs is down: queued again until `until`, the attempt not counted.
    async fn wait(
        &self,
        ctx: &JobContext,
        owner: &str,
        upstream: &'static str,
        until: DateTime<Utc>,
        error: anyhow::Error,
    ) -> anyhow::Result<ExecutionOutcome> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let error = truncate(format!("waiting: {upstream} unavailable: {error:#}"));
        let wait = crate::store::Wait {
            upstream: Some(upstream),
            until: until.max(now),
            error: &error,
        };
        if !inner.store.wait_later(ctx.id, owner, wait, now).await? {
            return Ok(self.lease_lost(ctx.id));
        }
        inner.metrics.execution("wait");
        tracing::info!(%until, %error, "attempt not counted");
        Ok(ExecutionOutcome::Waiting(ctx.id))
    }

    /// `upstream` is back: the jobs waiting on it are due now, oldest first, and idle workers wake.
    async fn wake_waiting(&self, upstream: &str) {
        match self
            .inner
            .store
            .wake_waiting(upstream, self.inner.clock.now())
            .await
        {
            Ok(0) => {}
            Ok(woken) => {
                tracing::info!(upstream, woken, "upstream back: waiting jobs are due");
                self.inner.wake.notify_waiters();
            }
            Err(error) => tracing::warn!(
                upstream,
                error = format!("{error:#}"),
                "could not wake the jobs waiting on the upstream (they run at their next try)"
            ),
        }
    }

    /// Gives up on a job: `on_dead` (under the lease), then dead.
    async fn bury(
        &self,
        ctx: &JobContext,
        handler: Option<Arc<dyn JobHandler>>,
        owner: &str,
        error: String,
    ) -> anyhow::Result<ExecutionOutcome> {
        let inner = &self.inner;
        let error = truncate(error);
        if let Some(handler) = handler {
            let notify = AssertUnwindSafe(handler.on_dead(ctx, &error)).catch_unwind();
            let notified = self.leased(ctx.id, owner, notify, None).await;
            // What `on_dead` did (to tell the requester), recorded before the job is dead.
            self.record_attempt(ctx.id, &ctx.take_audit(), &ctx.effects().take_tried())
                .await?;
            match notified {
                Leased::Finished(Ok(())) | Leased::Interrupted => {}
                Leased::Finished(Err(panic)) => {
                    tracing::error!(
                        panic = crate::telemetry::panic_message(panic.as_ref()),
                        "on_dead panicked"
                    )
                }
                Leased::LeaseLost => return Ok(self.lease_lost(ctx.id)),
            }
        }
        if !inner
            .store
            .mark_dead(ctx.id, owner, &error, inner.clock.now())
            .await?
        {
            return Ok(self.lease_lost(ctx.id));
        }
        inner.metrics.dead(ctx.attempt);
        inner.metrics.execution("dead");
        tracing::warn!(%error, "job is dead");
        Ok(ExecutionOutcome::Dead(ctx.id))
    }

    fn lease_lost(&self, job_id: i64) -> ExecutionOutcome {
        self.inner.metrics.execution("lease_lost");
        tracing::warn!(job_id, "lease lost; another worker owns this job now");
        ExecutionOutcome::LeaseLost(job_id)
    }

    /// Runs `work` while renewing the lease every `lease/3`. Stops early if
    /// the lease is lost, or, with `shutdown`, once the grace period after
    /// shutdown is over.
    async fn leased<F: Future>(
        &self,
        job_id: i64,
        owner: &str,
        work: F,
        shutdown: Option<&watch::Receiver<bool>>,
    ) -> Leased<F::Output> {
        let (lost_tx, lost_rx) = oneshot::channel::<()>();
        let renew = tokio::spawn(renew_loop(
            self.inner.store.clone(),
            self.inner.clock.clone(),
            self.inner.settings.lease,
            job_id,
            owner.to_owned(),
            lost_tx,
        ));
        let grace = self.inner.settings.shutdown_grace;
        let grace_over = async move {
            match shutdown {
                Some(rx) => {
                    wait_for_shutdown(&mut rx.clone()).await;
                    tokio::time::sleep(grace).await;
                }
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            out = work => Leased::Finished(out),
            Ok(()) = lost_rx => Leased::LeaseLost,
            () = grace_over => Leased::Interrupted,
        };
        renew.abort();
        outcome
    }
}

/// Renews a lease every `lease/3` until aborted; reports a lost lease once.
async fn renew_loop(
    store: Arc<SqlStore>,
    clock: Clock,
    lease: Duration,
    job_id: i64,
    owner: String,
    lost: oneshot::Sender<()>,
) {
    let period = (lease / 3).max(Duration::from_millis(10));
    let Ok(lease) = chrono::Duration::from_std(lease) else {
        return;
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.renew_lease(job_id, &owner, clock.now() + lease).await {
            Ok(true) => {}
            Ok(false) => {
                let _ = lost.send(());
                return;
            }
            // Keep going: the next tick tries again; if the lease lapses
            // meanwhile and someone takes it, renewal reports it lost.
            Err(error) => {
                tracing::warn!(job_id, error = format!("{error:#}"), "lease renewal failed")
            }
        }
    }
}

/// The delay after failed attempt `attempt` (1-based): the one backoff formula
/// ([`crate::outbound::backoff`]) with `floor` 0.8, i.e. `base·2ⁿ⁻¹` scaled by `0.8 + 0.2·jitter`
/// (`jitter` in `[0, 1)`), then capped at `cap`. Each attempt's shortest delay (1.6·base·2ⁿ⁻¹)
/// exceeds the previous one's longest, so delays grow strictly until they reach the cap.
pub fn backoff_delay(base: Duration, cap: Duration, attempt: u32, jitter: f64) -> Duration {
    crate::outbound::backoff(base, cap, attempt, 0.8, jitter)
}

/// Handles of the running workers; see [`Queue::spawn_workers`].
pub struct Workers {
    workers: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    shutdown: watch::Receiver<bool>,
    grace: Duration,
}

impl Workers {
    /// Waits for shutdown to be signalled, then for the workers to finish
    /// (running jobs get the grace period; the rest are released), aborting
    /// any still running `grace + 5 s` after the signal (their leases then
    /// lapse after `lease` and another process picks the jobs up).
    pub async fn join(mut self) {
        wait_for_shutdown(&mut self.shutdown).await;
        let aborts: Vec<_> = self.workers.iter().map(JoinHandle::abort_handle).collect();
        let all = futures_util::future::join_all(self.workers);
        if tokio::time::timeout(self.grace + JOIN_SLACK, all)
            .await
            .is_err()
        {
            tracing::warn!("queue workers did not stop in time; aborting them");
            for abort in aborts {
                abort.abort();
            }
        }
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
    }
}

/// A worker's wish to claim its next job in its current job's completion, and the job so claimed.
struct ClaimNext<'a> {
    worker: &'a str,
    claimed: Option<Handed>,
}

async fn worker_loop(queue: Queue, name: String, mut shutdown: watch::Receiver<bool>) {
    let settings = queue.inner.settings.clone();
    let handoff = &queue.inner.handoff;
    let mut errors: u32 = 0;
    // A job claimed in its delivery's commit and handed to this worker, or in the completion of
    // this worker's last job, to run next.
    let mut next: Option<Handed> = None;
    tracing::debug!(worker = %name, "queue worker started");
    while !*shutdown.borrow() {
        let mut claim = ClaimNext {
            worker: &name,
            claimed: None,
        };
        let outcome = match next.take() {
            Some(Handed { job, owner }) => {
                queue
                    .run(job, &owner, Some(&shutdown), Some(&mut claim))
                    .await
            }
            None => {
                queue
                    .execute(&name, Some(&shutdown), Some(&mut claim))
                    .await
            }
        };
        next = claim.claimed;
        match outcome {
            Ok(ExecutionOutcome::EmptyQueue) => {
                errors = 0;
                let poll = settings.poll_interval.mul_f64(0.9 + 0.2 * fastrand::f64());
                handoff.enter_idle();
                let stop = tokio::select! {
                    job = handoff.receive() => {
                        next = job;
                        continue;
                    }
                    () = queue.inner.wake.notified() => false,
                    () = tokio::time::sleep(poll) => false,
                    () = wait_for_shutdown(&mut shutdown) => true,
                };
                if !handoff.leave_idle() {
                    // A delivery took this worker while it was waking: its job is on the way.
                    next = handoff.receive().await;
                }
                if stop {
                    break;
                }
            }
            Ok(_) => errors = 0,
            Err(error) => {
                errors = errors.saturating_add(1);
                tracing::warn!(worker = %name, error = format!("{error:#}"), "queue worker error");
                let pause = backoff_delay(
                    Duration::from_millis(100),
                    settings.poll_interval.max(Duration::from_secs(1)),
                    errors,
                    fastrand::f64(),
                );
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = wait_for_shutdown(&mut shutdown) => break,
                }
            }
        }
    }
    if let Some(Handed { job, owner }) = next {
        // Handed over or claimed as shutdown began: queued again for whoever runs next, the attempt
        // not counted.
        if let Err(error) = queue
            .inner
            .store
            .release(job.id, &owner, queue.inner.clock.now())
            .await
        {
            tracing::warn!(
                job_id = job.id,
                error = format!("{error:#}"),
                "could not release a job taken as shutdown began; it runs when its lease runs out"
            );
        }
    }
    tracing::debug!(worker = %name, "queue worker stopped");
}

async fn maintenance_loop(queue: Queue, mut shutdown: watch::Receiver<bool>) {
    let mut metrics_tick = tokio::time::interval(METRICS_REFRESH);
    let mut retention_tick = tokio::time::interval(RETENTION_EVERY);
    metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    retention_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = metrics_tick.tick() => {
                if let Err(error) = queue.refresh_metrics().await {
                    tracing::warn!(error = format!("{error:#}"), "counting jobs failed");
                }
            }
            _ = retention_tick.tick() => match queue.purge_expired().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "scrubbed payloads of old done jobs"),
                Err(error) => tracing::warn!(error = format!("{error:#}"), "retention failed"),
            },
            () = wait_for_shutdown(&mut shutdown) => break,
        }
    }
}

/// Resolves once shutdown is signalled (true) or its sender is gone.
async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_the_cap() {
        let base = Duration::from_secs(2);
        let cap = Duration::from_secs(600);
        assert_eq!(backoff_delay(base, cap, 1, 1.0), Duration::from_secs(2));
        assert_eq!(
            backoff_delay(base, cap, 1, 0.0),
            Duration::from_secs_f64(1.6)
        );
        assert_eq!(backoff_delay(base, cap, 10, 0.0), cap);
        assert_eq!(backoff_delay(base, cap, 4, 1.0), Duration::from_secs(16));
        assert_eq!(backoff_delay(base, cap, 30, 1.0), cap);
        assert_eq!(backoff_delay(base, cap, u32::MAX, 1.0), cap);
        for n in 1..12 {
            assert!(backoff_delay(base, cap, n + 1, 0.0) >= backoff_delay(base, cap, n, 1.0));
        }
    }

    #[test]
    fn long_errors_are_cut_on_a_char_boundary() {
        let text = "é".repeat(MAX_ERROR_LEN);
        let cut = truncate(text);
        assert!(cut.len() <= MAX_ERROR_LEN + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
