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
//! What the ledger cannot close: two workers running the same job at once
//! (only if a lease lapsed while its worker was alive and cut off from the
//! database) may both see "no row" or both miss the marker. The queue cancels
//! a job whose lease renewal fails, which keeps that window small.

use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;

use crate::clock::Clock;
use crate::store::{EffectState, SqlStore};

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

/// The ledger of one job; get it from `JobContext::effects`.
pub struct Effects {
    store: Arc<SqlStore>,
    job_id: i64,
    clock: Clock,
}

impl Effects {
    pub(crate) fn new(store: Arc<SqlStore>, job_id: i64, clock: Clock) -> Self {
        Self {
            store,
            job_id,
            clock,
        }
    }

    /// Runs `effect` at most once per (job, `name`), returning its external
    /// id. See the module docs for the steps.
    pub async fn once(&self, name: &str, effect: &dyn Effect) -> anyhow::Result<String> {
        validate_name(name)?;
        let job_id = self.job_id;
        let (record, ours) = match self.store.effect(job_id, name).await? {
            Some(record) => (record, false),
            None => {
                let marker = new_marker(job_id, name);
                let record = self
                    .store
                    .record_effect_intent(job_id, name, &marker, self.clock.now())
                    .await?;
                // Another worker may have recorded its intent first; then the
                // stored marker is theirs and theirs is the one to look for.
                let ours = record.marker == marker;
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
