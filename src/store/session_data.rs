//! A session's events and summaries as FullStory answered them, shared by every replica
//! ([`crate::fullstory::MeteredSessions`] reads here before it spends an Activation, and writes what it
//! paid for). A finished session's events do not change, so one answer serves every ticket, preview
//! and sidebar that shows the session, on any replica, for `fullstory.session_cache_ttl`.
//!
//! # Contract
//! * Rows older than the caller's `fresh_after` are never returned; each write deletes the rows that
//!   have gone stale (`stale_before`), so nothing is kept much past its time.
//! * [`SqlStore::drop_session_data`] (erasure) deletes a customer's sessions' rows, whatever their age;
//!   [`SqlStore::drop_all_session_data`] every row (an erasure naming too many sessions to list).

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::db::{SqlStore, with_db};
use super::dialect::Dialect;
use super::to_ms;

const GET: &str =
    "SELECT body FROM session_data WHERE session_id = $1 AND what = $2 AND stored_at >= $3";
const PUT: &str = "INSERT INTO session_data (session_id, what, body, stored_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (session_id, what) DO UPDATE SET body = excluded.body, stored_at = excluded.stored_at";
const PURGE: &str = "DELETE FROM session_data WHERE stored_at < $1";
const DROP_ONE: &str = "DELETE FROM session_data WHERE session_id = $1";
const DROP_ALL: &str = "DELETE FROM session_data";

impl SqlStore {
    /// The stored answer `what` (`events`, `summary:…`) of `session`, when stored at or after `fresh_after`.
    pub async fn session_data(
        &self,
        session: &str,
        what: &str,
        fresh_after: DateTime<Utc>,
    ) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = with_db!(self, |pool| {
            sqlx::query_as(GET)
                .bind(session)
                .bind(what)
                .bind(to_ms(fresh_after))
                .fetch_optional(pool.reader())
                .await
                .context("session data: reading")?
        });
        Ok(row.map(|(body,)| body))
    }

    /// Keeps the answer `what` of `session`, and deletes every row stored before `stale_before`.
    pub async fn put_session_data(
        &self,
        session: &str,
        what: &str,
        body: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("session data: begin")?;
            sqlx::query(PUT)
                .bind(session)
                .bind(what)
                .bind(body)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("session data: writing")?;
            sqlx::query(PURGE)
                .bind(to_ms(stale_before))
                .execute(&mut *tx)
                .await
                .context("session data: dropping stale rows")?;
            tx.commit().await.context("session data: commit")?;
        });
        Ok(())
    }

    /// Deletes every stored answer about `sessions` (an erasure).
    pub async fn drop_session_data(&self, sessions: &[String]) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("session data: begin")?;
            for session in sessions {
                sqlx::query(DROP_ONE)
                    .bind(session)
                    .execute(&mut *tx)
                    .await
                    .context("session data: dropping a session's")?;
            }
            tx.commit().await.context("session data: commit")?;
        });
        Ok(())
    }

    /// Deletes every stored answer (an erasure naming too many sessions to list).
    pub async fn drop_all_session_data(&self) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let mut tx = pool.begin_write().await.context("session data: begin")?;
            sqlx::query(DROP_ALL)
                .execute(&mut *tx)
                .await
                .context("session data: dropping all")?;
            tx.commit().await.context("session data: commit")?;
        });
        Ok(())
    }
}
