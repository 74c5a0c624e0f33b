//! What the store keeps for privacy: the audit trail (who looked up whom, where, when, how many sessions
//! were shown; identities only as keyed hashes), install-wide settings (the generated audit key), and
//! the erasure of every stored payload that holds a customer's email.
//!
//! A supertrait of [`super::Store`], so `Arc<dyn Store>` has these methods, written once for both
//! backends in the same `with_db!` style as the queue's SQL.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::sql::{Db, Dialect, SqlStore, with_db};
use super::{from_ms, to_ms};

/// One audited action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Assigned by the store; 0 for a record not yet written.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `lookup`, `summary`, `erasure`.
    pub action: String,
    pub platform: String,
    /// Workspace, Zendesk account, guild.
    pub tenant: String,
    /// Who asked: the platform's user id.
    pub actor: String,
    /// Channel, ticket, thread.
    pub place: Option<String>,
    /// Keyed hashes of the identities concerned (never the emails).
    pub identities: Vec<String>,
    /// Sessions shown.
    pub sessions: i64,
    pub detail: Option<String>,
}

#[async_trait]
pub trait PrivacyStore: Send + Sync {
    async fn record_audit(&self, record: &AuditRecord) -> anyhow::Result<()>;

    /// Newest first; optionally since a time and about one identity hash.
    async fn audit(
        &self,
        since: Option<DateTime<Utc>>,
        identity_hash: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<AuditRecord>>;

    /// The setting's value, storing `value` first if it has none (first writer wins).
    async fn setting_or_insert(&self, key: &str, value: &str) -> anyhow::Result<String>;

    /// Replaces every job payload and last error mentioning `needle` (compared in lower case) by JSON
    /// `null`, except job `except` when given (an erasure that still needs its own payload to send its
    /// receipt); returns how many jobs were scrubbed.
    async fn scrub_payloads_containing(
        &self,
        needle: &str,
        except: Option<i64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64>;

    /// How many job payloads or errors still mention `needle` (lower case).
    async fn count_payloads_containing(&self, needle: &str) -> anyhow::Result<u64>;
}

const INSERT_AUDIT: &str = "INSERT INTO audit (at, action, platform, tenant, actor, place, identities, sessions, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const SELECT_AUDIT: &str = "SELECT id, at, action, platform, tenant, actor, place, identities, sessions, detail \
     FROM audit WHERE at >= $1 AND ($2 = '' OR identities LIKE '%' || $2 || '%') ORDER BY at DESC, id DESC LIMIT $3";
const INSERT_SETTING: &str =
    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
const SELECT_SETTING: &str = "SELECT value FROM settings WHERE key = $1";
const SCRUB: &str = "UPDATE jobs SET payload = 'null', last_error = NULL, payload_purged_at = $2 \
     WHERE (LOWER(payload) LIKE $1 OR LOWER(COALESCE(last_error, '')) LIKE $1) AND id <> $3";
const COUNT_MENTIONS: &str = "SELECT COUNT(*) FROM jobs \
     WHERE LOWER(payload) LIKE $1 OR LOWER(COALESCE(last_error, '')) LIKE $1";

type AuditRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<String>,
);

/// `%needle%` for LIKE. `_` in an address matches any one character, so a scrub may take a little more
/// than asked (never less): the safe side for erasure.
fn like(needle: &str) -> String {
    format!("%{}%", needle.to_lowercase().replace('%', ""))
}

#[async_trait]
impl PrivacyStore for SqlStore {
    async fn record_audit(&self, r: &AuditRecord) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(INSERT_AUDIT)
                .bind(to_ms(r.at))
                .bind(&r.action)
                .bind(&r.platform)
                .bind(&r.tenant)
                .bind(&r.actor)
                .bind(&r.place)
                .bind(r.identities.join(" "))
                .bind(r.sessions)
                .bind(&r.detail)
                .execute(&mut *tx)
                .await
                .context("recording an audit entry")?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn audit(
        &self,
        since: Option<DateTime<Utc>>,
        identity_hash: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Vec<AuditRecord>> {
        let since = since.map_or(i64::MIN, to_ms);
        let hash = identity_hash.unwrap_or("").replace(['%', '_'], "");
        let rows: Vec<AuditRow> = with_db!(self, |pool| {
            sqlx::query_as(SELECT_AUDIT)
                .bind(since)
                .bind(&hash)
                .bind(i64::from(limit))
                .fetch_all(pool.reader())
                .await
                .context("reading the audit trail")?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, at, action, platform, tenant, actor, place, identities, sessions, detail)| {
                    AuditRecord {
                        id,
                        at: from_ms(at),
                        action,
                        platform,
                        tenant,
                        actor,
                        place,
                        identities: identities.split_whitespace().map(str::to_owned).collect(),
                        sessions,
                        detail,
                    }
                },
            )
            .collect())
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> anyhow::Result<String> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(INSERT_SETTING)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
            let (stored,): (String,) = sqlx::query_as(SELECT_SETTING)
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(stored)
        })
    }

    async fn scrub_payloads_containing(
        &self,
        needle: &str,
        except: Option<i64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let pattern = like(needle);
        // Job ids start at 1: 0 excepts nothing.
        let except = except.unwrap_or(0);
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query(SCRUB)
                .bind(&pattern)
                .bind(to_ms(now))
                .bind(except)
                .execute(&mut *tx)
                .await
                .context("scrubbing payloads")?
                .rows_affected();
            tx.commit().await?;
            Ok(n)
        })
    }

    async fn count_payloads_containing(&self, needle: &str) -> anyhow::Result<u64> {
        let pattern = like(needle);
        let (n,): (i64,) = with_db!(self, |pool| {
            sqlx::query_as(COUNT_MENTIONS)
                .bind(&pattern)
                .fetch_one(pool.reader())
                .await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
