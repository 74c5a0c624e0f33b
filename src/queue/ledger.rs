//! The effect ledger: how a job that posts to another platform (a Zendesk
//! note, a Slack or Discord message) posts at most once even though the job
//! itself may run more than once (a retry, a worker that died mid-way, a
//! lease taken over).
//!
//! # Contract
//! One mechanism for every adapter. An adapter wraps each external effect in
//! an [`Effect`] and calls `ctx.effects().once(name, &effect)`:
//!
//! 1. The ledger row for (job, `name`) is `done` → its external id is
//!    returned; nothing on the platform is called.
//! 2. The row is an `intent` (an earlier attempt recorded it and then died or
//!    failed before recording the outcome) → [`Effect::find_existing`] looks
//!    for the row's marker on the platform. Found → the id is recorded and
//!    returned, [`Effect::perform`] is **not** called. Not found →
//!    `perform(marker)`, record, return.
//! 3. No row → an intent with a fresh marker is recorded, then `perform`,
//!    then the external id is recorded.
//!
//! The marker is `rd-<job id>-<name>-<8 random hex digits>`, e.g.
//! `rd-42-note-9f3a01c2`: short enough for a footer or message metadata,
//! unique per (job, name), and, thanks to the random part, never equal to a
//! marker left on the platform by another database whose job ids restarted.
//! `perform` must put the marker where `find_existing` can search for it.
//!
//! `name` is 1–32 characters of `a-z`, `0-9`, `_`, `-`, chosen by the adapter
//! and fixed per effect (e.g. `"note"`, `"reply"`).
//!
//! # First attempts write no intent
//! A job's first attempt (handed to a worker in its delivery's commit, [`super::handoff`], or
//! claimed from the queue) runs with no intent before each effect: nothing can have been done for it
//! before, and an intent's commit is one of the disk flushes between a slash command and its answer,
//! and two more (the intent, its record) a job in a drain after an outage (issue 27). What the
//! attempt tried is written with its outcome: each effect done as a `done` row (marker and external
//! id), each one that failed or was cut off (a panic, a shutdown) as an `intent` under its marker, in
//! the transaction that marks the job done, or on their own before any other outcome is recorded
//! (so before another worker can claim the job). Within the attempt, [`Effects::records`] shows the
//! ledger as it stands, this attempt's effects included (an erasure's receipt, the posts made to a
//! Slack `response_url`, read while the job runs). Its markers are not random but derived from the
//! job's id, the moment it was stored (handed) and the effect's name, so every later attempt knows
//! them: a later attempt that finds no row for an effect (the first one died or lost its lease
//! before recording its outcome) records an intent with that marker and looks for it on the
//! platform before doing the effect. An effect whose platform cannot be searched ([`Idempotent`], a
//! Slack `response_url`) is done again after a crash in that window, as after a crash between an
//! intent's effect and its record; the window runs to the attempt's outcome instead of the record's
//! commit (for an answer, its job's last step either way).
//!
//! Which attempt is a first run is the job's [`crate::store::Ledgering`], moved on by each claim in
//! the claim's own statement: a job nothing was done for (`unrun`) is claimed as a first run, unless
//! the ledger already has rows for it, which it then follows with intents (an earlier attempt
//! recorded what it tried; or an older binary ran it, during a rolling upgrade). A first run's
//! recorded outcome leaves the job `unrun` again, since the ledger then knows all it tried: a job that
//! waited out an outage before answering is answered with one commit (its completion's), and one
//! that had told its asker "this is taking a while" follows its rows with intents. A first run that
//! left no outcome (it died, or lost its lease) makes every later attempt look first. Jobs stored
//! before the column was, and jobs held by an operator before any attempt, keep the steps above,
//! random marker included.
//!
//! During a rolling upgrade from a binary before `ledgering`: such a binary takes a claimed job whose
//! first run died between an effect and its outcome for a job it never saw handed (no `handed_at`),
//! and runs it with random markers and no search, as it ran every such job: a crash inside that
//! window, crossed with the upgrade's minutes, may repeat that one effect.
//!
//! What the ledger cannot close: two workers running the same job at once
//! (only if a lease lapsed while its worker was alive and cut off from the
//! database) may both see "no row" or both miss the marker. The queue cancels
//! a job whose lease renewal fails, which keeps that window small.

use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;

use crate::clock::Clock;
use crate::store::{
    EffectRecord, EffectState, Ledgering as StoreLedgering, SqlStore, StoredJob, TriedEffect,
};

/// One external effect, as seen by the ledger.
#[async_trait]
pub trait Effect: Send + Sync {
    /// Looks on the platform for something carrying `marker`; its external id
    /// if found.
    async fn find_existing(&self, marker: &str) -> anyhow::Result<Option<String>>;

    /// Does the effect, embedding `marker`; returns the external id.
    async fn perform(&self, marker: &str) -> anyhow::Result<String>;
}

/// An effect whose action is idempotent upstream (a deletion, a link keyed by its URL) or a record of
/// our own, so a retry after a crash may simply do it again: nothing to look for.
pub struct Idempotent<F>(pub F);

#[async_trait]
impl<F, Fut> Effect for Idempotent<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: std::future::Future<Output = anyhow::Result<String>> + Send,
{
    async fn find_existing(&self, _marker: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }

    async fn perform(&self, _marker: &str) -> anyhow::Result<String> {
        (self.0)().await
    }
}

/// How an attempt keeps the ledger (the module docs, "First attempts write no intent").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ledgering {
    /// An intent before each effect, with a random marker.
    Intents,
    /// A job's first attempt: no intent; the row is written done after, its marker derived from
    /// `marker_ms`.
    FirstRun { marker_ms: i64 },
    /// A later attempt: intents, and an effect without a row is looked for (under the marker derived
    /// from `marker_ms`) before it is done.
    AfterFirstRun { marker_ms: i64 },
}

impl Ledgering {
    /// For an attempt of `job`, as its claim (or its hand-off) left it.
    pub(crate) fn of(job: &StoredJob) -> Self {
        // A moment every attempt knows: when the job was stored, which is when it was handed (the
        // same commit) for a job handed; `handed_at` first for rows stored before `ledgering` was.
        let marker_ms = job.handed_at.unwrap_or(job.enqueued_at).timestamp_millis();
        match job.ledgering {
            StoreLedgering::FirstRun => Self::FirstRun { marker_ms },
            StoreLedgering::AfterFirstRun => Self::AfterFirstRun { marker_ms },
            // A claim never leaves a job unrun; intents are right for any job. (A job handed
            // before the column was is read as `AfterFirstRun`: `store::Ledgering::as_read`.)
            StoreLedgering::Intents | StoreLedgering::Unrun => Self::Intents,
        }
    }
}

/// The ledger of one job; get it from `JobContext::effects`.
pub struct Effects {
    store: Arc<SqlStore>,
    job_id: i64,
    clock: Clock,
    ledgering: Ledgering,
    /// [`Ledgering::FirstRun`]: the effects tried so far (an external id once done), each with
    /// whether the worker has recorded it as it stands ([`Self::take_tried`]); kept after, so
    /// `on_dead` in the same attempt finds them.
    tried: std::sync::Mutex<Vec<(TriedEffect, bool)>>,
}

impl Effects {
    pub(crate) fn new(
        store: Arc<SqlStore>,
        job_id: i64,
        clock: Clock,
        ledgering: Ledgering,
    ) -> Self {
        Self {
            store,
            job_id,
            clock,
            ledgering,
            tried: Default::default(),
        }
    }

    /// The effects a first attempt tried that the worker has not recorded as they stand (marked
    /// recorded now): done ones with their external id, the others (failed, or cut off by a panic or
    /// a shutdown) as intents under their marker. The worker records them with the attempt's
    /// outcome (in the transaction that marks it done, else on their own before it), so every
    /// outcome leaves the ledger knowing all the attempt tried.
    pub(crate) fn take_tried(&self) -> Vec<TriedEffect> {
        self.lock_tried()
            .iter_mut()
            .filter(|(_, recorded)| !*recorded)
            .map(|(effect, recorded)| {
                *recorded = true;
                effect.clone()
            })
            .collect()
    }

    fn lock_tried(&self) -> std::sync::MutexGuard<'_, Vec<(TriedEffect, bool)>> {
        self.tried.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This job's ledger as it stands: the store's rows and, in a first attempt, what this attempt
    /// tried and has not recorded yet (done, or an intent). What a job reads of its own ledger
    /// while it runs (an erasure's receipt, the posts made to a Slack `response_url`).
    ///
    /// # Errors
    /// The store could not be read.
    pub async fn records(&self) -> anyhow::Result<Vec<EffectRecord>> {
        let mut rows = self.store.effects_for_job(self.job_id).await?;
        let now = self.clock.now();
        for (tried, _) in self.lock_tried().iter() {
            let state = match tried.external_id {
                Some(_) => EffectState::Done,
                None => EffectState::Intent,
            };
            match rows.iter_mut().find(|row| row.name == tried.name) {
                // Recorded as an intent earlier in this attempt, done since.
                Some(row) if row.state == EffectState::Intent && row.marker == tried.marker => {
                    row.state = state;
                    row.external_id.clone_from(&tried.external_id);
                }
                Some(_) => {}
                None => rows.push(EffectRecord {
                    job_id: self.job_id,
                    name: tried.name.clone(),
                    marker: tried.marker.clone(),
                    external_id: tried.external_id.clone(),
                    state,
                    created_at: now,
                    updated_at: now,
                }),
            }
        }
        Ok(rows)
    }

    /// A job's first attempt: nothing was done for it before, so no intent and no read; the effect
    /// is tried, and remembered (done or not) for the attempt's outcome.
    async fn once_first_run(
        &self,
        name: &str,
        effect: &dyn Effect,
        marker_ms: i64,
    ) -> anyhow::Result<String> {
        let done_before = self
            .lock_tried()
            .iter()
            .find(|(t, _)| t.name == name)
            .and_then(|(t, _)| t.external_id.clone());
        if let Some(external_id) = done_before {
            return Ok(external_id);
        }
        let marker = first_run_marker(self.job_id, name, marker_ms);
        {
            let mut tried = self.lock_tried();
            if !tried.iter().any(|(t, _)| t.name == name) {
                tried.push((
                    TriedEffect {
                        name: name.to_owned(),
                        marker: marker.clone(),
                        external_id: None,
                    },
                    false,
                ));
            }
        }
        // An effect whose `perform` fails stays tried (an intent, at the outcome); one asked for
        // again in the same attempt is done again under the same marker (adapters give a fallback
        // its own name).
        let external_id = effect
            .perform(&marker)
            .await
            .with_context(|| format!("effect {name}"))?;
        if let Some((tried, recorded)) = self.lock_tried().iter_mut().find(|(t, _)| t.name == name)
        {
            tried.external_id = Some(external_id.clone());
            *recorded = false;
        }
        Ok(external_id)
    }

    /// Runs `effect` at most once per (job, `name`), returning its external
    /// id. See the module docs for the steps.
    pub async fn once(&self, name: &str, effect: &dyn Effect) -> anyhow::Result<String> {
        validate_name(name)?;
        let job_id = self.job_id;
        if let Ledgering::FirstRun { marker_ms } = self.ledgering {
            return self.once_first_run(name, effect, marker_ms).await;
        }
        let (record, ours) = match self.store.effect(job_id, name).await? {
            Some(record) => (record, false),
            None => {
                let (marker, look_first) = match self.ledgering {
                    Ledgering::AfterFirstRun { marker_ms } => {
                        (first_run_marker(job_id, name, marker_ms), true)
                    }
                    _ => (new_marker(job_id, name), false),
                };
                let record = self
                    .store
                    .record_effect_intent(job_id, name, &marker, self.clock.now())
                    .await?;
                // Another worker may have recorded its intent first; then the
                // stored marker is theirs and theirs is the one to look for. After a first attempt,
                // that attempt may have done it without a row: look for it too.
                let ours = record.marker == marker && !look_first;
                (record, ours)
            }
        };
        if record.state == EffectState::Done {
            return record
                .external_id
                .ok_or_else(|| anyhow!("effect {job_id}/{name} is done without an external id"));
        }
        if !ours
            && let Some(found) = effect
                .find_existing(&record.marker)
                .await
                .with_context(|| format!("effect {name}: looking for marker {}", record.marker))?
        {
            self.store
                .record_effect_done(job_id, name, &found, self.clock.now())
                .await?;
            tracing::info!(
                job_id,
                effect = name,
                marker = %record.marker,
                external_id = %found,
                "effect found on the platform; not performing it again"
            );
            return Ok(found);
        }
        let external_id = effect
            .perform(&record.marker)
            .await
            .with_context(|| format!("effect {name}"))?;
        self.store
            .record_effect_done(job_id, name, &external_id, self.clock.now())
            .await?;
        Ok(external_id)
    }
}

fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        bail!("invalid effect name {name:?}: use 1-32 of a-z, 0-9, _ and -");
    }
    Ok(())
}

/// A fresh marker for (job, name): `rd-<job id>-<name>-<8 hex>`.
pub fn new_marker(job_id: i64, name: &str) -> String {
    format!("rd-{job_id}-{name}-{:08x}", fastrand::u32(..))
}

/// The marker of effect `name` of a job whose first attempt's markers derive from `marker_ms` (when it
/// was stored): the same for every attempt, its 8 hex digits an FNV-1a hash of the three (as
/// unlikely as random ones to meet another database's marker: that job would need the same id, name
/// and millisecond).
pub fn first_run_marker(job_id: i64, name: &str, marker_ms: i64) -> String {
    let hash = format!("{job_id}:{marker_ms}:{name}")
        .bytes()
        .fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
    format!("rd-{job_id}-{name}-{hash:08x}")
}
