//! Retention: what the store stops keeping once it is no longer needed. A finished job's payload and
//! last error (both may hold customer emails) are scrubbed after the retention period, and one-time
//! marks (item claims in a `:once` scope) are deleted once they have outlived what they mark.
//! Erasure of one customer's data, whatever its age, is [`super::privacy`]'s.
//!
//! # Contract
//! * The job row (kind, times, attempts), its delivery key and its effect ledger stay: they hold no
//!   email, and the delivery key must keep refusing late retries.
//! * Scrubbing runs in batches of 500 rows, each its own transaction, so writers are not held up.

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::db::{SqlStore, with_db};
use super::dialect::Dialect;
use super::to_ms;

/// One batch of retention; repeated until it touches nothing.
const PURGE_DONE_BATCH: &str = "UPDATE jobs SET payload = 'null', last_error = NULL, \
     payload_purged_at = $2, updated_at = $2 \
     WHERE id IN (SELECT id FROM jobs \
         WHERE state IN ('done', 'dead', 'expired', 'cancelled') AND finished_at < $1 \
             AND payload_purged_at IS NULL \
         LIMIT 500)";
/// Retention of one-time marks: claims in a scope ending with `:once`, older than `$1`.
const PURGE_ONCE_MARKS: &str =
    "DELETE FROM item_claims WHERE scope LIKE '%:once' AND claimed_at < $1";

impl SqlStore {
    /// Retention: done, dead, expired and cancelled jobs finished before `finished_before` get
    /// their payload replaced by JSON `null` and their `last_error` cleared
    /// (both may hold customer emails; a dead job kept its email and reply
    /// address forever before). The job row (kind, times, attempts), its
    /// delivery key and its effect ledger stay: they hold no email, and the
    /// delivery key must keep refusing late retries. Returns how many jobs
    /// were scrubbed. Runs in small batches so writers are not held up.
    /// One-time marks (item claims in a scope ending with `:once`, such as
    /// the Zendesk sidebar's signed loads, each valid for minutes) made
    /// before `finished_before` are deleted too: they need only outlive what
    /// they mark.
    pub async fn purge_done(
        &self,
        finished_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let mut total = 0;
        loop {
            let n = with_db!(self, |pool| {
                let mut tx = pool.begin_write().await?;
                let n = sqlx::query(PURGE_DONE_BATCH)
                    .bind(to_ms(finished_before))
                    .bind(to_ms(now))
                    .execute(&mut *tx)
                    .await
                    .context("purging done jobs' payloads")?
                    .rows_affected();
                tx.commit().await?;
                n
            });
            total += n;
            if n == 0 {
                break;
            }
        }
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(PURGE_ONCE_MARKS)
                .bind(to_ms(finished_before))
                .execute(&mut *tx)
                .await
                .context("purging one-time marks")?;
            tx.commit().await?;
        });
        Ok(total)
    }
}
