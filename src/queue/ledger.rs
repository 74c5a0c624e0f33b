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
//! # Handed jobs: the first attempt writes no intent
//! A job claimed in its delivery's commit and handed to a worker at once ([`super::handoff`]) runs
//! its first attempt with no intent before each effect: nothing can have been done for it before,
//! and the intent's commit is one of the disk flushes between a slash command and its answer (issue
//! 27). The effect's row is written `done`, marker and external id, with the attempt's outcome: in
//! the transaction that marks the job done, or on its own before any other outcome is recorded (so
//! before another worker can claim the job), so the store shows it from then on (within the attempt,
//! `once` knows it; an effect whose `perform` failed is not known, and is looked for by the next
//! attempt: adapters give a fallback its own name rather than asking again). Its
//! marker is not random but derived from the job's id, the moment it was handed and the effect's
//! name, so every later attempt of that job knows it: a later attempt that finds no row for an
//! effect (the first one died, failed or lost its lease between doing it and recording it) records
//! an intent with that marker and looks for it on the platform before doing the effect. An effect
//! whose platform cannot be searched ([`Idempotent`], a Slack `response_url`) is done again after a
//! crash in that window, as after a crash between an intent's effect and its record; the window runs
//! to the attempt's outcome instead of the record's commit (for an answer, its job's last step
//! either way). Jobs claimed the usual way keep the steps above, random marker included.
//!
//! What the ledger cannot close: two workers running the same job at once
//! (only if a lease lapsed while its worker was alive and cut off from the
//! database) may both see "no row" or both miss the marker. The queue cancels
//! a job whose lease renewal fails, which keeps that window small.

use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::store::{DoneEffect, EffectState, SqlStore};

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

/// How an attempt keeps the ledger (the module docs, "Handed jobs").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ledgering {
    /// An intent before each effect, with a random marker: a job claimed the usual way.
    Intents,
    /// The first attempt of a job handed at `handed_ms`: no intent; the row is written done after.
    HandedFirstRun { handed_ms: i64 },
    /// A later attempt of a job handed at `handed_ms`: intents, and an effect without a row is
    /// looked for (under its derived marker) before it is done.
    AfterHanded { handed_ms: i64 },
}

impl Ledgering {
    /// For an attempt of a job handed at `handed_at` (if it was), `first_run` when this attempt is
    /// the one it was handed for.
    pub(crate) fn of(handed_at: Option<DateTime<Utc>>, first_run: bool) -> Self {
        match handed_at.map(|at| at.timestamp_millis()) {
            Some(handed_ms) if first_run => Self::HandedFirstRun { handed_ms },
            Some(handed_ms) => Self::AfterHanded { handed_ms },
            None => Self::Intents,
        }
    }
}

/// The ledger of one job; get it from `JobContext::effects`.
pub struct Effects {
    store: Arc<SqlStore>,
    job_id: i64,
    clock: Clock,
    ledgering: Ledgering,
    /// [`Ledgering::HandedFirstRun`]: the effects done so far, each with whether the worker has
    /// recorded it yet ([`Self::take_done`]); kept after, so `on_dead` in the same attempt finds them.
    done: std::sync::Mutex<Vec<(DoneEffect, bool)>>,
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
            done: Default::default(),
        }
    }

    /// The effects a handed job's first attempt did and the worker has not recorded yet (marked
    /// recorded now): it records them with the attempt's outcome (in the transaction that marks it
    /// done, else on their own before it).
    pub(crate) fn take_done(&self) -> Vec<DoneEffect> {
        self.lock_done()
            .iter_mut()
            .filter(|(_, recorded)| !*recorded)
            .map(|(effect, recorded)| {
                *recorded = true;
                effect.clone()
            })
            .collect()
    }

    fn lock_done(&self) -> std::sync::MutexGuard<'_, Vec<(DoneEffect, bool)>> {
        self.done.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first attempt of a handed job: nothing was done for it before, so no intent and no read;
    /// the effect is done and remembered for the attempt's outcome.
    async fn once_first_run(
        &self,
        name: &str,
        effect: &dyn Effect,
        handed_ms: i64,
    ) -> anyhow::Result<String> {
        let done_before = self
            .lock_done()
            .iter()
            .find(|(d, _)| d.name == name)
            .map(|(d, _)| d.external_id.clone());
        if let Some(external_id) = done_before {
            return Ok(external_id);
        }
        let marker = handed_marker(self.job_id, name, handed_ms);
        let external_id = effect
            .perform(&marker)
            .await
            .with_context(|| format!("effect {name}"))?;
        let effect = DoneEffect {
            name: name.to_owned(),
            marker,
            external_id: external_id.clone(),
        };
        self.lock_done().push((effect, false));
        Ok(external_id)
    }

    /// Runs `effect` at most once per (job, `name`), returning its external
    /// id. See the module docs for the steps.
    pub async fn once(&self, name: &str, effect: &dyn Effect) -> anyhow::Result<String> {
        validate_name(name)?;
        let job_id = self.job_id;
        if let Ledgering::HandedFirstRun { handed_ms } = self.ledgering {
            return self.once_first_run(name, effect, handed_ms).await;
        }
        let (record, ours) = match self.store.effect(job_id, name).await? {
            Some(record) => (record, false),
            None => {
                let (marker, look_first) = match self.ledgering {
                    Ledgering::AfterHanded { handed_ms } => {
                        (handed_marker(job_id, name, handed_ms), true)
                    }
                    _ => (new_marker(job_id, name), false),
                };
                let record = self
                    .store
                    .record_effect_intent(job_id, name, &marker, self.clock.now())
                    .await?;
                // Another worker may have recorded its intent first; then the
                // stored marker is theirs and theirs is the one to look for. After a handed first
                // attempt, that attempt may have done it without a row: look for it too.
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

/// The marker of effect `name` of a job handed at `handed_ms`: the same for every attempt, its 8 hex
/// digits an FNV-1a hash of the three (as unlikely as random ones to meet another database's marker:
/// that job would need the same id, name and millisecond).
pub fn handed_marker(job_id: i64, name: &str, handed_ms: i64) -> String {
    let hash = format!("{job_id}:{handed_ms}:{name}")
        .bytes()
        .fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        });
    format!("rd-{job_id}-{name}-{hash:08x}")
}
