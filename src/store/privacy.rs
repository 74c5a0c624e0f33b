//! What the store keeps for privacy: the audit trail (who looked up whom, where, when, how many sessions
//! were shown; identities only as keyed hashes), install-wide settings (the generated audit key), the
//! erasure of every stored payload that holds a customer's email, and the tombstones of erased
//! addresses (their keyed hashes, until they expire: [`crate::privacy::Tombstones`]).
//!
//! Methods of [`SqlStore`], written once for both backends in the same `with_db!` style as the rest
//! of the store.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::db::{Db, SqlStore, with_db};
use super::dialect::Dialect;
use super::{from_ms, to_ms};
use crate::identity::CustomerEmail;

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

pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit (at, action, platform, tenant, actor, place, identities, sessions, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The statement writing one [`AuditRecord`], for any backend (inside `with_db!`): on its own
/// ([`SqlStore::record_audit`]) or with a job's completion (`SqlStore::complete_and_claim`).
macro_rules! insert_audit {
    ($record:expr) => {{
        let r: &$crate::store::AuditRecord = $record;
        sqlx::query($crate::store::privacy::INSERT_AUDIT)
            .bind($crate::store::to_ms(r.at))
            .bind(&r.action)
            .bind(&r.platform)
            .bind(&r.tenant)
            .bind(&r.actor)
            .bind(&r.place)
            .bind(r.identities.join(" "))
            .bind(r.sessions)
            .bind(&r.detail)
    }};
}
pub(super) use insert_audit;

const SELECT_AUDIT: &str = "SELECT id, at, action, platform, tenant, actor, place, identities, sessions, detail \
     FROM audit WHERE at >= $1 AND ($2 = '' OR identities LIKE '%' || $2 || '%') ORDER BY at DESC, id DESC LIMIT $3";
const INSERT_SETTING: &str =
    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
const SELECT_SETTING: &str = "SELECT value FROM settings WHERE key = $1";
const DELETE_SETTING: &str = "DELETE FROM settings WHERE key = $1";
/// One page of the jobs that still hold something (payload or error), in id order.
const SCAN_HELD: &str = "SELECT id, kind, payload, last_error FROM jobs \
     WHERE id > $1 AND (payload <> 'null' OR last_error IS NOT NULL) ORDER BY id LIMIT $2";
const SCRUB_ONE: &str = "UPDATE jobs SET payload = 'null', last_error = NULL, \
     payload_purged_at = $2, updated_at = $2 WHERE id = $1";
const SCAN_PAGE: i64 = 500;
const BURY: &str = "INSERT INTO tombstones (hash, expires_at) VALUES ($1, $2) \
     ON CONFLICT (hash) DO UPDATE SET expires_at = \
     CASE WHEN excluded.expires_at > tombstones.expires_at THEN excluded.expires_at \
     ELSE tombstones.expires_at END";
const FORGET_EXPIRED_TOMBSTONES: &str = "DELETE FROM tombstones WHERE expires_at < $1";
const IS_BURIED: &str = "SELECT hash FROM tombstones WHERE hash = $1 AND expires_at > $2";

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

/// Whether a stored job mentions `email`: its payload or its last error.
fn job_mentions(email: &CustomerEmail, payload: &str, last_error: Option<&str>) -> bool {
    crate::identity::mentions(payload, email)
        || last_error.is_some_and(|e| crate::identity::mentions(e, email))
}

impl SqlStore {
    /// The ids of the jobs that mention `email`, except those of `protected_kind` other than `own`.
    /// Read page by page (the match is made here, not in SQL: it decodes what SQL cannot).
    async fn jobs_mentioning(
        &self,
        email: &CustomerEmail,
        protected_kind: Option<&str>,
        own: Option<i64>,
    ) -> anyhow::Result<Vec<i64>> {
        let mut found = Vec::new();
        let mut after = 0_i64;
        loop {
            let rows: Vec<(i64, String, String, Option<String>)> = with_db!(self, |pool| {
                sqlx::query_as(SCAN_HELD)
                    .bind(after)
                    .bind(SCAN_PAGE)
                    .fetch_all(pool.reader())
                    .await
                    .context("reading stored payloads")?
            });
            let Some(last) = rows.last() else {
                return Ok(found);
            };
            after = last.0;
            found.extend(
                rows.iter()
                    .filter(|(id, kind, _, _)| {
                        Some(*id) == own || protected_kind.is_none_or(|p| p != kind)
                    })
                    .filter(|(_, _, payload, error)| job_mentions(email, payload, error.as_deref()))
                    .map(|(id, _, _, _)| *id),
            );
        }
    }

    /// Writes one audited action.
    pub async fn record_audit(&self, r: &AuditRecord) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            insert_audit!(r)
                .execute(&mut *tx)
                .await
                .context("recording an audit entry")?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Newest first; optionally since a time and about one identity hash.
    pub async fn audit(
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

    /// The setting's value, storing `value` first if it has none (first writer wins).
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> anyhow::Result<String> {
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

    /// Removes the setting; its value, if it had one.
    pub async fn take_setting(&self, key: &str) -> anyhow::Result<Option<String>> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let value: Option<(String,)> = sqlx::query_as(SELECT_SETTING)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query(DELETE_SETTING)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(value.map(|(v,)| v))
        })
    }

    /// Replaces by JSON `null` the payload and last error of every job that mentions `email`
    /// ([`crate::identity::mentions`]: the exact address after normalisation, in every encoded form
    /// extraction reads; `_` and `%` are ordinary characters). Jobs of kind `protected_kind` (erasures,
    /// which hold the address they must still delete) are never touched, except job `own` when given:
    /// the erasure scrubbing itself last. Returns how many jobs were scrubbed.
    pub async fn scrub_payloads_mentioning(
        &self,
        email: &CustomerEmail,
        protected_kind: &str,
        own: Option<i64>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let ids = self
            .jobs_mentioning(email, Some(protected_kind), own)
            .await?;
        for page in ids.chunks(usize::try_from(SCAN_PAGE).unwrap_or(500)) {
            with_db!(self, |pool| {
                let mut tx = pool.begin_write().await?;
                for id in page {
                    sqlx::query(SCRUB_ONE)
                        .bind(id)
                        .bind(to_ms(now))
                        .execute(&mut *tx)
                        .await
                        .context("scrubbing payloads")?;
                }
                tx.commit().await?;
            });
        }
        Ok(ids.len() as u64)
    }

    /// Replaces by JSON `null` the payload and last error of job `job_id`, whatever its state: a job
    /// that answered about a forgotten customer keeps nothing of the question.
    pub async fn scrub_job(&self, job_id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(SCRUB_ONE)
                .bind(job_id)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("scrubbing a job's payload")?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Keeps the tombstone `hash` until `expires_at` (a later date wins when it has one already), and
    /// forgets the tombstones that expired before `now`.
    pub async fn bury(
        &self,
        hash: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(BURY)
                .bind(hash)
                .bind(to_ms(expires_at))
                .execute(&mut *tx)
                .await
                .context("keeping a tombstone")?;
            sqlx::query(FORGET_EXPIRED_TOMBSTONES)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("forgetting expired tombstones")?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Which of `hashes` have a tombstone that has not expired at `now`.
    pub async fn buried(
        &self,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<String>> {
        let mut found = Vec::new();
        for hash in hashes {
            let row: Option<(String,)> = with_db!(self, |pool| {
                sqlx::query_as(IS_BURIED)
                    .bind(hash)
                    .bind(to_ms(now))
                    .fetch_optional(pool.reader())
                    .await
                    .context("reading tombstones")?
            });
            found.extend(row.map(|(h,)| h));
        }
        Ok(found)
    }

    /// How many job payloads or errors still mention `email` (the same reading as the scrub).
    pub async fn count_payloads_mentioning(&self, email: &CustomerEmail) -> anyhow::Result<u64> {
        Ok(self.jobs_mentioning(email, None, None).await?.len() as u64)
    }

    /// After an erasure, leaves no scrubbed bytes where the database could still give them back:
    /// SQLite (`secure_delete` is on for every connection) checkpoints and truncates its WAL;
    /// PostgreSQL vacuums the tables that held payloads (the old row versions become free space; the
    /// bytes stay on disk until reused: see docs/privacy.md, "Erasure").
    pub async fn compact_after_erasure(&self) -> anyhow::Result<()> {
        match &self.db {
            Db::Sqlite(db) => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&db.write)
                    .await
                    .context("checkpointing the SQLite WAL")?;
            }
            Db::Postgres(pool) => {
                sqlx::query("VACUUM jobs")
                    .execute(pool)
                    .await
                    .context("vacuuming the jobs table")?;
            }
        }
        Ok(())
    }
}
