//! FullStory Activations by billing cycle, one count for every replica and restart
//! ([`crate::activations`] decides what may be spent; this file only keeps the numbers).
//!
//! # Contract
//! * [`SqlStore::reserve_activation`] is one conditional `UPDATE` of the cycle's row (`… WHERE
//!   automatic + on_request < limit AND exhausted_at IS NULL`), in the same transaction as the
//!   day's row: two replicas racing for the last Activation cannot both get it (SQLite has one
//!   writer; PostgreSQL re-checks the `WHERE` on the locked row after the other's commit). The count
//!   kept here therefore never passes the limit asked.
//! * [`SqlStore::release_activation`] gives one back (a call FullStory did not answer with data).
//! * [`SqlStore::count_unmetered`] counts a call that costs no Activation (List Sessions), apart.

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::db::{SqlStore, with_db};
use super::dialect::Dialect;
use super::{from_ms, to_ms};

const ENSURE_CYCLE: &str =
    "INSERT INTO activation_cycles (cycle) VALUES ($1) ON CONFLICT (cycle) DO NOTHING";
const RESERVE_AUTOMATIC: &str = "UPDATE activation_cycles SET automatic = automatic + 1 \
     WHERE cycle = $1 AND exhausted_at IS NULL AND automatic + on_request < $2";
const RESERVE_ON_REQUEST: &str = "UPDATE activation_cycles SET on_request = on_request + 1 \
     WHERE cycle = $1 AND exhausted_at IS NULL AND automatic + on_request < $2";
const RELEASE_AUTOMATIC: &str = "UPDATE activation_cycles SET automatic = automatic - 1 \
     WHERE cycle = $1 AND automatic > 0";
const RELEASE_ON_REQUEST: &str = "UPDATE activation_cycles SET on_request = on_request - 1 \
     WHERE cycle = $1 AND on_request > 0";
const ADD_DAY: &str = "INSERT INTO activation_days (cycle, day, kind, purpose, count) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (cycle, day, kind, purpose) DO UPDATE SET count = activation_days.count + excluded.count";
const GET_CYCLE: &str = "SELECT automatic, on_request, exhausted_at, alerted FROM activation_cycles \
     WHERE cycle = $1";
const DAYS: &str = "SELECT day, kind, purpose, count FROM activation_days WHERE cycle = $1 \
     AND count <> 0 ORDER BY day, kind, purpose";
const EXHAUSTED: &str = "UPDATE activation_cycles SET exhausted_at = $2 \
     WHERE cycle = $1 AND exhausted_at IS NULL";
const ALERTED: &str = "UPDATE activation_cycles SET alerted = alerted | $2 \
     WHERE cycle = $1 AND (alerted & $2) = 0";

/// One cycle's spending, as kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActivationCount {
    pub automatic: i64,
    pub on_request: i64,
    /// When FullStory answered that the organisation's Activations were used up, this cycle.
    pub exhausted_at: Option<DateTime<Utc>>,
    /// The alerts already sent this cycle (a bit each).
    pub alerted: i64,
}

impl ActivationCount {
    pub fn used(&self) -> i64 {
        self.automatic + self.on_request
    }
}

/// One day's calls of one kind and purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivationDay {
    pub day: String,
    pub kind: String,
    pub purpose: String,
    pub count: i64,
}

/// Where one call is counted: the cycle (its first day), the day, what was called and why.
#[derive(Clone, Copy, Debug)]
pub struct ActivationSlot<'a> {
    pub cycle: &'a str,
    pub day: &'a str,
    pub kind: &'a str,
    /// `"automatic"` or `"on_request"`.
    pub purpose: &'a str,
}

type CycleRow = (i64, i64, Option<i64>, i64);
type DayRow = (String, String, String, i64);

/// Adds `$by` to the day's row of `$slot`, inside the transaction `$tx` (a macro, as `with_db!`
/// bodies are: it is compiled once per backend).
macro_rules! add_day {
    ($tx:expr, $slot:expr, $by:expr) => {
        sqlx::query(ADD_DAY)
            .bind($slot.cycle)
            .bind($slot.day)
            .bind($slot.kind)
            .bind($slot.purpose)
            .bind($by)
            .execute(&mut *$tx)
            .await
            .context("activations: the day's row")?
    };
}

fn count_from_row(row: Option<CycleRow>) -> ActivationCount {
    row.map(
        |(automatic, on_request, exhausted, alerted)| ActivationCount {
            automatic,
            on_request,
            exhausted_at: exhausted.map(from_ms),
            alerted,
        },
    )
    .unwrap_or_default()
}

impl SqlStore {
    /// Takes one Activation of `slot.cycle` for `slot.purpose` when the cycle's total is below
    /// `limit` and FullStory has not said the quota is used up; returns whether it was taken and the
    /// cycle's count after.
    pub async fn reserve_activation(
        &self,
        slot: ActivationSlot<'_>,
        limit: i64,
    ) -> anyhow::Result<(bool, ActivationCount)> {
        let reserve = if slot.purpose == "automatic" {
            RESERVE_AUTOMATIC
        } else {
            RESERVE_ON_REQUEST
        };
        let (taken, row): (bool, Option<CycleRow>) = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("activations: begin")?;
            sqlx::query(ENSURE_CYCLE)
                .bind(slot.cycle)
                .execute(&mut *tx)
                .await
                .context("activations: the cycle's row")?;
            let taken = sqlx::query(reserve)
                .bind(slot.cycle)
                .bind(limit)
                .execute(&mut *tx)
                .await
                .context("activations: reserving one")?
                .rows_affected()
                == 1;
            if taken {
                add_day!(tx, slot, 1_i64);
            }
            let row: Option<CycleRow> = sqlx::query_as(GET_CYCLE)
                .bind(slot.cycle)
                .fetch_optional(&mut *tx)
                .await
                .context("activations: reading the cycle")?;
            tx.commit().await.context("activations: commit")?;
            (taken, row)
        });
        Ok((taken, count_from_row(row)))
    }

    /// Gives back one Activation [`Self::reserve_activation`] took (the call was not answered).
    pub async fn release_activation(&self, slot: ActivationSlot<'_>) -> anyhow::Result<()> {
        let release = if slot.purpose == "automatic" {
            RELEASE_AUTOMATIC
        } else {
            RELEASE_ON_REQUEST
        };
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("activations: begin")?;
            sqlx::query(release)
                .bind(slot.cycle)
                .execute(&mut *tx)
                .await
                .context("activations: releasing one")?;
            add_day!(tx, slot, -1_i64);
            tx.commit().await.context("activations: commit")?;
        });
        Ok(())
    }

    /// Counts `calls` that cost no Activation (List Sessions), by day, never against a budget.
    pub async fn count_unmetered(
        &self,
        slot: ActivationSlot<'_>,
        calls: i64,
    ) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("activations: begin")?;
            add_day!(tx, slot, calls);
            tx.commit().await.context("activations: commit")?;
        });
        Ok(())
    }

    /// The cycle's count (zero when nothing was spent).
    pub async fn activation_count(&self, cycle: &str) -> anyhow::Result<ActivationCount> {
        let row: Option<CycleRow> = with_db!(self, |pool| {
            sqlx::query_as(GET_CYCLE)
                .bind(cycle)
                .fetch_optional(pool.reader())
                .await
                .context("activations: reading the cycle")?
        });
        Ok(count_from_row(row))
    }

    /// The cycle's calls by day, kind and purpose.
    pub async fn activation_days(&self, cycle: &str) -> anyhow::Result<Vec<ActivationDay>> {
        let rows: Vec<DayRow> = with_db!(self, |pool| {
            sqlx::query_as(DAYS)
                .bind(cycle)
                .fetch_all(pool.reader())
                .await
                .context("activations: reading the days")?
        });
        Ok(rows
            .into_iter()
            .map(|(day, kind, purpose, count)| ActivationDay {
                day,
                kind,
                purpose,
                count,
            })
            .collect())
    }

    /// Records that FullStory said the organisation's Activations are used up (the first time only).
    pub async fn mark_quota_exhausted(
        &self,
        cycle: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("activations: begin")?;
            sqlx::query(ENSURE_CYCLE)
                .bind(cycle)
                .execute(&mut *tx)
                .await
                .context("activations: the cycle's row")?;
            sqlx::query(EXHAUSTED)
                .bind(cycle)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("activations: marking the quota used up")?;
            tx.commit().await.context("activations: commit")?;
        });
        Ok(())
    }

    /// Marks alert `bit` sent for the cycle; `true` only for the one caller that marked it (so an
    /// alert goes out once per cycle, whichever replica sees the threshold first).
    pub async fn mark_activation_alert(&self, cycle: &str, bit: i64) -> anyhow::Result<bool> {
        Ok(with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("activations: begin")?;
            sqlx::query(ENSURE_CYCLE)
                .bind(cycle)
                .execute(&mut *tx)
                .await
                .context("activations: the cycle's row")?;
            let marked = sqlx::query(ALERTED)
                .bind(cycle)
                .bind(bit)
                .execute(&mut *tx)
                .await
                .context("activations: marking an alert")?
                .rows_affected()
                == 1;
            tx.commit().await.context("activations: commit")?;
            marked
        }))
    }
}
