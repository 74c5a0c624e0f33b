//! The effect ledger: what a job did on another platform, recorded so that a retried job does it
//! once. An intent row is written before the external call (its marker lets the retry find what
//! the first attempt may have created), and the external id once it succeeded.
//!
//! # Contract
//! * One row per (job, effect name): the first intent wins, a racing second reads the first's row.
//! * An external id is recorded only over an intent: done without an intent is an error.
//! * Retention leaves the ledger alone (it holds no customer email) so a late retry still finds it.

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};

use super::db::{EffectRow, SqlStore, effect_columns, effect_from_row, with_db};
use super::dialect::Dialect;
use super::{EffectRecord, to_ms};

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
