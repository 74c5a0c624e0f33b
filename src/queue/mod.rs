//! The durable job queue: an accepted webhook becomes a job in the
//! [`crate::store`], and workers run it exactly once in effect.
//!
//! # Contract
//! * A job's payload is a [`Job`] (its kind an associated constant), enqueued with [`Queue::push`]
//!   and run by a [`RunJob`] handler (`queue/job.rs` says why a stored kind or shape never changes).
//! * [`Queue::enqueue`] records the delivery key and the job in **one**
//!   transaction ([`SqlStore::enqueue`](crate::store::SqlStore::enqueue)) and only
//!   then returns, so a handler that answers 2xx after it has a job that
//!   survives a crash. A delivery key seen
//!   before is a no-op reported as `duplicate` (answer 2xx anyway). Then it
//!   wakes an idle worker in this process.
//! * **The hand-off** ([`handoff`]): when a worker of this process is idle, the
//!   job is claimed in that same transaction (stored `running` under a lease,
//!   its first attempt counted) and handed to that worker after the commit, so
//!   no second commit claims it. Its process dying before or while it runs is
//!   a worker dying mid-attempt: claimed again when the lease runs out.
//! * The job keeps the request id it was enqueued under (the inbound
//!   `x-request-id`, from [`crate::telemetry::request_id`]); the worker's
//!   `job` span names it and puts it back in scope while the job runs.
//! * Wake-ups: in-process [`tokio::sync::Notify`]; on PostgreSQL also
//!   `LISTEN/NOTIFY` (jobs enqueued by other processes); polling every
//!   `poll_interval` (±10 %) as the fallback.
//! * A worker claims one job with a lease (`lease`, renewed every `lease/3`
//!   while the job runs). A job whose lease ran out (its worker died) is
//!   claimed again. Completing, failing or releasing a job names the lease;
//!   a worker whose lease was taken over changes nothing, and a worker whose
//!   renewal finds the lease gone cancels the job ([`ExecutionOutcome::LeaseLost`]).
//! * A worker whose job ends done claims its next job in the transaction that
//!   completes it ([`SqlStore::complete_and_claim`](crate::store::SqlStore::complete_and_claim)):
//!   while the queue has work, one commit a job instead of a claim's and a
//!   completion's (a drain after an outage is paced by SQLite's one writer).
//!   Such a job is run as claimed (not handed); a worker stopping for shutdown
//!   claims nothing more, and one that stops holding a job it claimed this way
//!   releases it like a handed one.
//! * Attempts count claims. A failure ([`JobError::Retry`], or a panic, caught
//!   with `catch_unwind`) retries after an exponential backoff with jitter:
//!   attempt `n` waits `base·2ⁿ⁻¹` scaled by a random factor in
//!   `[0.8, 1.0]`, capped at `backoff_cap` — strictly growing until the cap.
//!   The `max_attempts`-th failure, a [`JobError::Permanent`] error, or an
//!   unknown kind makes the job dead. Before a job is marked dead its
//!   handler's [`JobHandler::on_dead`] runs, still under the lease: if the
//!   process dies in between, the job is reclaimed and `on_dead` runs again,
//!   so use the effect ledger inside `on_dead` too (at least once + ledger =
//!   once in effect).
//! * A handler may put its job off instead ([`JobError::Later`]: a spend
//!   limit that delays work rather than refusing it): queued again after the
//!   wait it names, the attempt not counted, so a delay never kills a job.
//! * **Outages wait, they do not kill.** Attempts count only failures that
//!   are the job's own. A handler that cannot go on because an upstream is
//!   down returns [`JobError::Wait`] (the shared jobs do, with their
//!   platform's deadline in mind), and any [`JobError::Retry`] from an attempt
//!   that met an upstream outage ([`crate::outbound::outage`]: a 5xx, timeout
//!   or connection error after the call's own retries, or an open circuit
//!   breaker) is turned into a wait on that upstream: the job goes back to
//!   `queued` with `waiting_on` set, the claim is not counted, and it is due
//!   again when the breaker's next probe is (or later: see
//!   [`crate::outbound::Breaker::wait_hint`]). When an attempt's call closes a
//!   breaker, every job waiting on that upstream is made due at once, in
//!   enqueue order ([`SqlStore::wake_waiting`](crate::store::SqlStore::wake_waiting)).
//! * [`JobError::Expired`]: the answer's deadline passed (the handler told the
//!   person who asked); the job ends `expired`, not `dead`, and `jobs retry`
//!   takes it back.
//! * [`Queue::cancel`] (`replaydesk jobs cancel ID`): an operator ends a queued
//!   job. It is held (claimed for the operator, no attempt counted), its
//!   handler tells the requester ([`JobHandler::on_cancel`]), and it ends
//!   `cancelled`; if the requester cannot be told, it is put back as it was.
//!   `jobs retry` takes it back; retention scrubs it like `expired`.
//! * External effects go through the [`ledger`] (`ctx.effects().once(…)`). A job's first attempt,
//!   handed or claimed, writes no intents (one commit a job in all while nothing fails); which
//!   attempt is a first run is the job's [`Ledgering`](crate::store::Ledgering), moved on by each
//!   claim in its own statement (the ledger's module docs, "First attempts write no intent").
//! * Audit entries a handler gives [`JobContext::audit`] are written with the attempt's outcome: in
//!   the transaction that marks the job done (one commit a job fewer), or each on its own after any
//!   other outcome, so an action taken is audited whatever follows it.
//! * Graceful shutdown (the `watch` channel given to [`Queue::spawn_workers`]
//!   turns `true`, or its sender is dropped): workers stop claiming, running
//!   jobs get `shutdown_grace` to finish, the rest are cancelled and their
//!   leases released (back to queued, due now, the attempt not counted).
//! * Retention: a maintenance task scrubs done jobs' payloads after
//!   `retention` ([`SqlStore::purge_done`](crate::store::SqlStore::purge_done): payload → JSON `null`, rows and
//!   delivery keys kept) every 10 minutes, and refreshes the jobs-by-state
//!   gauge every 15 s.
//!
//! # Why not apalis
//! apalis 1.x (judged on paper: its docs and crate metadata, not a trial) is a
//! capable worker framework with SQLite and PostgreSQL storages, `SKIP
//! LOCKED`, `NOTIFY`, heartbeats and orphan re-enqueueing. We write our own
//! because what we need most is outside it:
//! * enqueue **inside our own transaction together with the delivery key**,
//!   refusing duplicates atomically; apalis pushes through its storage handle
//!   into its own tables (`apalis.jobs`), so dedupe would be a second,
//!   non-atomic step or SQL written against its private schema;
//! * **our effect ledger** (intent → external id, `find_existing(marker)`),
//!   keyed by our job ids, in the same database;
//! * one store trait and one set of migrations for both backends, with time
//!   injected for tests and retention that scrubs customer emails;
//! * a small surface we own (queue and store together are about 2,000 lines
//!   with their tests) instead of a tower-based framework and per-backend
//!   crates to keep in step with our sqlx.

mod group_commit;
mod handoff;
mod job;
pub mod ledger;
mod worker;

pub use job::{
    ExecutionOutcome, Job, JobContext, JobError, JobHandler, RunJob, Settings, decode_stored,
};
pub use ledger::{Effect, Effects, Idempotent};
pub use worker::{Queue, Workers, backoff_delay};
