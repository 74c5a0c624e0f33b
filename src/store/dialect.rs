//! [`Dialect`]: what differs between SQLite and PostgreSQL, as one small trait that each backend's
//! file implements (`sqlite.rs` for [`SqliteDb`](super::db::SqliteDb), `postgres.rs` for `PgPool`).
//!
//! # Why it exists
//! The store's bodies are written once (see [`super::db`]); the few real differences between the
//! backends are the methods below. The code that reads and writes rows only ever calls these, so it
//! never names a backend's file, and a backend's file names only the shared ones (this trait, the
//! pool types in [`super::db`], the migration trait in [`super::migrate`]): the files form no circle.
//!
//! # Contract
//! * Only ever called on a concrete pool (through `with_db!`), never as `dyn`: the trait's async
//!   methods need no boxing and their futures are `Send` whenever the backend's are.
//! * [`Dialect::notify_jobs`] runs inside the transaction that makes a job claimable, so a wake-up is
//!   delivered on commit and never for a rolled-back job.
//! * Migration specifics (the embedded files, the lock) are [`super::migrate::Migrations`], a trait of
//!   their own beside the migration runner.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// What differs between the backends. Implemented for `SqliteDb` and `PgPool`.
pub(crate) trait Dialect {
    type Db: sqlx::Database;

    /// Whether the claim's sub-select takes `FOR UPDATE SKIP LOCKED` (PostgreSQL: concurrent
    /// workers skip each other's candidate rows instead of queueing on them; SQLite has one writer
    /// and no row locks).
    const SKIP_LOCKED: bool;

    /// Begins a transaction that may write.
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Self::Db>>;

    /// A connection that may write, to hold across several transactions (the group commit's: see
    /// [`super::Writer`]).
    async fn acquire_writer(&self) -> sqlx::Result<PoolConnection<Self::Db>>;

    /// The pool for reads outside a write transaction.
    fn reader(&self) -> &sqlx::Pool<Self::Db>;

    /// Closes every pool.
    async fn close(&self);

    /// Inside an enqueue/retry transaction: wake other processes on commit.
    async fn notify_jobs(&self, tx: &mut sqlx::Transaction<'_, Self::Db>) -> sqlx::Result<()>;

    /// Cross-process wake-ups: a task calling `wake.notify_one()` per job made claimable by another
    /// process (in place when this returns); `None` when the backend has none (workers poll).
    async fn listen(&self, wake: Arc<Notify>) -> anyhow::Result<Option<JoinHandle<()>>>;

    /// Tells every process on this store that a customer was erased (the payload says who).
    async fn announce_erasure(&self, payload: &str) -> anyhow::Result<()>;

    /// A task sending every erasure announcement's payload (made after it started) to `to`, until
    /// nobody receives.
    async fn listen_erasures(
        &self,
        to: mpsc::UnboundedSender<String>,
    ) -> anyhow::Result<JoinHandle<()>>;
}
