//! The effect ledger: what a job did on another platform, recorded so that a retried job does it
//! once. An intent row is written before the external call (its marker lets the retry find what
//! the first attempt may have created), and the external id once it succeeded.
//!
//! # Contract
//! * One row per (job, effect name): the first intent wins, a racing second reads the first's row.
//! * An external id is recorded over an intent (done without one is an error), or, for a job's
//!   first attempt, with no intent before it, with the attempt's outcome (and an effect that attempt
//!   tried without success as an intent then) ([`SqlStore::record_tried_effects`],
//!   [`SqlStore::complete_and_claim`]).
//! * Retention leaves the ledger alone (it holds no customer email) so a late retry still finds it.

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};

use super::db::{EffectRow, SqlStore, effect_columns, effect_from_row, with_db};
use super::dialect::Dialect;
use super::{EffectRecord, TriedEffect, to_ms};

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
/// A job's first attempt (no intent before it): what it tried, done with its external id (`$4`),
/// or an intent without one. An intent under the same marker (written by this attempt's earlier
/// outcome, before `on_dead` did the effect) becomes done; any other row recorded meanwhile (an
/// attempt that took over a lapsed lease) stays.
pub(super) const INSERT_TRIED_EFFECT: &str = "INSERT INTO effects \
     (job_id, name, marker, external_id, state, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, CASE WHEN $4 IS NULL THEN 'intent' ELSE 'done' END, $5, $5) \
     ON CONFLICT (job_id, name) DO UPDATE \
     SET external_id = excluded.external_id, state = excluded.state, updated_at = excluded.updated_at \
     WHERE effects.state = 'intent' AND effects.marker = excluded.marker \
         AND excluded.state = 'done'";

/// Records each of `$effects` (a slice of [`TriedEffect`]) of job `$job_id` at `$now`, in the
/// caller's transaction `$tx` (alone, or with the job's completion).
macro_rules! insert_tried_effects {
    ($tx:expr, $job_id:expr, $effects:expr, $now:expr) => {
        for effect in $effects {
            let effect: &$crate::store::TriedEffect = effect;
            sqlx::query($crate::store::effects::INSERT_TRIED_EFFECT)
                .bind($job_id)
                .bind(&effect.name)
                .bind(&effect.marker)
                .bind(&effect.external_id)
                .bind($crate::store::to_ms($now))
                .execute(&mut *$tx)
                .await
                .context("recording what a first attempt tried")?;
        }
    };
}
pub(super) use insert_tried_effects;
const EFFECTS_FOR_JOB: &str = concat!(
    "SELECT ",
    effect_columns!(),
    " FROM effects WHERE job_id = $1 ORDER BY created_at, name"
);

impl SqlStore {
    /// The ledger row of effect `name` of job `job_id`, if one was recorded.
    pub async fn effect(&self, job_id: i64, name: &str) -> anyhow::Result<Option<EffectRecord>> {
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

    /// Inserts an intent row unless one exists; returns the row as stored
    /// (whose marker wins if two workers race).
    pub async fn record_effect_intent(
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

    /// intent → done with the external id.
    pub async fn record_effect_done(
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

    /// Records the effects the first attempt of job `job_id` tried, with no intent before them
    /// ([`crate::queue::ledger`] says why that is safe), in one transaction ([`INSERT_TRIED_EFFECT`]
    /// says which rows recorded meanwhile stay).
    pub async fn record_tried_effects(
        &self,
        job_id: i64,
        effects: &[TriedEffect],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if effects.is_empty() {
            return Ok(());
        }
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            insert_tried_effects!(tx, job_id, effects, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Every effect of job `job_id`, oldest first.
    pub async fn effects_for_job(&self, job_id: i64) -> anyhow::Result<Vec<EffectRecord>> {
        let rows: Vec<EffectRow> = with_db!(self, |pool| {
            sqlx::query_as(EFFECTS_FOR_JOB)
                .bind(job_id)
                .fetch_all(pool.reader())
                .await
                .context("reading the effect ledger")?
        });
        rows.into_iter().map(effect_from_row).collect()
    }
}
