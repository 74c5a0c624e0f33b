//! Item claims: which job holds an item of a scope, so two jobs never both act on it (a Zendesk ticket
//! never gets the same session posted twice, a signed sidebar load is used once).
//!
//! # Contract
//! * A claim is taken in one transaction for all the items asked; rows are locked in one order
//!   (sorted), whatever the caller's, so two PostgreSQL transactions claiming overlapping items
//!   cannot deadlock.
//! * An item stays with its holder unless its claim lapsed (`stale_before`); claiming again as the
//!   holder changes nothing.
//! * One-time marks (scopes ending with `:once`) are dropped by retention ([`SqlStore::purge_done`]);
//!   every other claim stays.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};

use super::db::{ClaimRow, SqlStore, claim_from_row, with_db};
use super::dialect::Dialect;
use super::{ItemClaim, to_ms};

/// Takes an item nobody holds, or one whose claim is older than `$5` (`i64::MIN`: never), for `$3`.
const CLAIM_ITEM: &str = "INSERT INTO item_claims (scope, item, owner, claimed_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (scope, item) DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at \
     WHERE item_claims.claimed_at < $5 AND item_claims.owner <> excluded.owner";
const GET_CLAIM: &str =
    "SELECT item, owner, claimed_at FROM item_claims WHERE scope = $1 AND item = $2";
const CLAIMS_IN_SCOPE: &str = "SELECT item, owner, claimed_at FROM item_claims \
     WHERE scope = $1 ORDER BY claimed_at, item";

impl SqlStore {
    /// Claims each of `items` in `scope` for `owner`, in one transaction, so that two jobs never both
    /// act on the same item (e.g. post the same session on the same ticket): an item nobody holds
    /// becomes `owner`'s, and so does one whose claim was made before `stale_before` (when given: a
    /// claim that lapses); any other stays with its holder. Re-claiming an item one already holds
    /// changes nothing (its `claimed_at` stays). Returns each item's holder after the call, in the
    /// order given; the caller acts only on the items whose `owner` is its own.
    pub async fn claim_items(
        &self,
        scope: &str,
        owner: &str,
        items: &[String],
        stale_before: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<ItemClaim>> {
        let stale_before = stale_before.map_or(i64::MIN, to_ms);
        let rows: Vec<ClaimRow> = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("claim items: begin")?;
            let mut rows = Vec::with_capacity(items.len());
            // Rows are locked in one order (sorted) whatever the caller's order, so two
            // PostgreSQL transactions claiming overlapping items cannot deadlock.
            let mut sorted: Vec<&String> = items.iter().collect();
            sorted.sort();
            sorted.dedup();
            for item in sorted {
                sqlx::query(CLAIM_ITEM)
                    .bind(scope)
                    .bind(item)
                    .bind(owner)
                    .bind(to_ms(now))
                    .bind(stale_before)
                    .execute(&mut *tx)
                    .await
                    .context("claiming an item")?;
                let row: ClaimRow = sqlx::query_as(GET_CLAIM)
                    .bind(scope)
                    .bind(item)
                    .fetch_one(&mut *tx)
                    .await
                    .context("reading an item's claim")?;
                rows.push(row);
            }
            tx.commit().await.context("claim items: commit")?;
            rows
        });
        let by_item: HashMap<String, ItemClaim> = rows
            .into_iter()
            .map(|row| (row.0.clone(), claim_from_row(row)))
            .collect();
        items
            .iter()
            .map(|item| {
                by_item
                    .get(item)
                    .cloned()
                    .ok_or_else(|| anyhow!("claim of {item:?} was not read back"))
            })
            .collect()
    }

    /// Every claim in `scope`, oldest first.
    pub async fn claimed_items(&self, scope: &str) -> anyhow::Result<Vec<ItemClaim>> {
        let rows: Vec<ClaimRow> = with_db!(self, |pool| {
            sqlx::query_as(CLAIMS_IN_SCOPE)
                .bind(scope)
                .fetch_all(pool.reader())
                .await
                .context("reading item claims")?
        });
        Ok(rows.into_iter().map(claim_from_row).collect())
    }
}
