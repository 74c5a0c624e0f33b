//! PostgreSQL specifics of the store: how the pool is opened, its [`Dialect`] (with the `LISTEN`
//! tasks that wake idle workers and hear erasures) and its [`Migrations`] lock.
//!
//! # Contract
//! * `NOTIFY replaydesk_jobs` is sent inside every transaction that makes a
//!   job claimable (enqueue, release, retry), so it is delivered on commit
//!   and never for a rolled-back job.
//! * The claim uses `FOR UPDATE SKIP LOCKED`: concurrent workers skip each
//!   other's candidate rows instead of queueing on them.
//! * Migrations hold a transaction-scoped advisory lock, so processes that
//!   start together migrate one after the other.
//! * With [`StoreOptions::pg_schema`] the schema is created if missing and set
//!   as `search_path` on every pooled connection (tests use one per test).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::Connection;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::dialect::Dialect;
use super::migrate::{Embedded, Migrations};
use super::{StoreOptions, redact_url};

/// The channel idle workers listen on.
pub const CHANNEL: &str = "replaydesk_jobs";

/// The channel erasures are announced on, so every replica drops its cached copy.
pub const ERASURES: &str = "replaydesk_erasures";

/// Key of the advisory lock taken while migrating.
const MIGRATION_LOCK: i64 = 0x7265_706c_6179; // "replay"

/// `src/store/migrations/postgres/*.sql`, in version order ([`super::migrate`]).
const MIGRATIONS: &[Embedded] = include!(concat!(env!("OUT_DIR"), "/migrations_postgres.rs"));

pub(crate) async fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<PgPool> {
    let shown = redact_url(url);
    let mut connect = PgConnectOptions::from_str(url)
        .with_context(|| format!("parsing PostgreSQL URL {shown}"))?;
    if let Some(schema) = &options.pg_schema {
        validate_schema_name(schema)?;
        let mut conn = PgConnection::connect_with(&connect)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {shown}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating schema {schema}"))?;
        conn.close().await.ok();
        connect = connect.options([("search_path", schema.as_str())]);
    }
    PgPoolOptions::new()
        .max_connections(options.max_connections.unwrap_or(10))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(connect)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {shown}"))
}

/// Schema names are interpolated into SQL, so only plain identifiers pass.
fn validate_schema_name(schema: &str) -> anyhow::Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if !ok {
        bail!("invalid schema name {schema:?}: use lowercase letters, digits and _ (max 63)");
    }
    Ok(())
}

/// `LISTEN channel` (in place when this returns) and a task calling `on` with each notification's
/// payload, or with `None` when the connection was lost (`PgListener` reconnects after a second).
/// The task ends when the pool closes or `on` says `false`.
async fn subscribe(
    pool: &PgPool,
    channel: &'static str,
    what: &'static str,
    mut on: impl FnMut(Option<&str>) -> bool + Send + 'static,
) -> anyhow::Result<JoinHandle<()>> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .with_context(|| format!("connecting the listener for {what}"))?;
    listener
        .listen(channel)
        .await
        .with_context(|| format!("LISTEN for {what}"))?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(notification) => {
                    if !on(Some(notification.payload())) {
                        break;
                    }
                }
                Err(sqlx::Error::PoolClosed) => break,
                Err(error) => {
                    tracing::warn!(%error, channel, "listener lost its connection; reconnecting");
                    if !on(None) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }))
}

impl Dialect for PgPool {
    type Db = sqlx::Postgres;

    /// Concurrent workers skip each other's candidate rows instead of queueing on them.
    const SKIP_LOCKED: bool = true;

    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin().await
    }

    async fn acquire_writer(&self) -> sqlx::Result<PoolConnection<sqlx::Postgres>> {
        self.acquire().await
    }

    fn reader(&self) -> &sqlx::Pool<sqlx::Postgres> {
        self
    }

    async fn close(&self) {
        PgPool::close(self).await;
    }

    async fn notify_jobs(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> sqlx::Result<()> {
        sqlx::query("NOTIFY replaydesk_jobs")
            .execute(&mut **tx)
            .await
            .map(|_| ())
    }

    /// `LISTEN replaydesk_jobs` and a task that wakes one idle worker per notification. On a lost
    /// connection it wakes a worker too (a notification may have been missed) while `PgListener`
    /// reconnects.
    async fn listen(&self, wake: Arc<Notify>) -> anyhow::Result<Option<JoinHandle<()>>> {
        subscribe(self, CHANNEL, "new jobs", move |_| {
            wake.notify_one();
            true
        })
        .await
        .map(Some)
    }

    /// `NOTIFY replaydesk_erasures, payload` (at most 8000 bytes: PostgreSQL's limit).
    async fn announce_erasure(&self, payload: &str) -> anyhow::Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(ERASURES)
            .bind(payload)
            .execute(self)
            .await
            .context("announcing an erasure")?;
        Ok(())
    }

    /// `LISTEN replaydesk_erasures` and a task sending each payload to `to`, until nobody receives.
    /// An announcement sent while the connection is lost is missed, which the cache's own expiry
    /// (`fullstory.cache_ttl`) bounds.
    async fn listen_erasures(
        &self,
        to: mpsc::UnboundedSender<String>,
    ) -> anyhow::Result<JoinHandle<()>> {
        subscribe(self, ERASURES, "erasures", move |heard| match heard {
            Some(payload) => to.send(payload.to_owned()).is_ok(),
            None => true,
        })
        .await
    }
}

impl Migrations for PgPool {
    const MIGRATIONS: &'static [Embedded] = MIGRATIONS;

    /// `to_regclass` resolves the name through `search_path`, as the store's unqualified names do.
    const TABLE_EXISTS: &'static str = "SELECT to_regclass($1) IS NOT NULL";

    async fn lock_migrations(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    ) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut **tx)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(validate_schema_name("t_0a1b").is_ok());
        assert!(validate_schema_name("public").is_ok());
        for bad in ["", "T", "a-b", "a\"b", "1abc", &"x".repeat(64)] {
            assert!(validate_schema_name(bad).is_err(), "{bad:?}");
        }
    }
}
