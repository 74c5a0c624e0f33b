//! Listening: what one process of a store tells the others. Wake-ups (a job became claimable: an idle
//! worker elsewhere takes it now instead of at its next poll) and erasure announcements (a customer was
//! erased: every process drops what its cache holds on them).
//!
//! # Contract
//! * Each backend does this its own way, in its own file, as methods of [`Dialect`]: PostgreSQL with
//!   `LISTEN`/`NOTIFY` (a notification is delivered on commit, to every replica), SQLite with no
//!   wake-ups (workers poll) and a table of announcements that every process on the file polls.
//! * A listener is in place when the call returns: nothing announced after it is missed while its
//!   connection holds (a lost connection wakes a worker, and the cache's own expiry bounds a missed
//!   erasure).

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::db::{SqlStore, with_db};
use super::dialect::Dialect;

impl SqlStore {
    /// Cross-process wake-ups: PostgreSQL starts a task that `LISTEN`s and
    /// calls `wake.notify_one()` per notification (the LISTEN is in place
    /// when this returns); SQLite has none and returns `None` (workers poll).
    pub async fn listen(&self, wake: Arc<Notify>) -> anyhow::Result<Option<JoinHandle<()>>> {
        with_db!(self, |pool| pool.listen(wake).await)
    }

    /// Tells every process on this store that a customer was erased, so each drops what its cache
    /// holds on them (PostgreSQL `NOTIFY replaydesk_erasures`, delivered on commit to every replica;
    /// SQLite: a row every other process on the file polls for, e.g. `serve` beside a `forget`).
    pub async fn announce_erasure(&self, payload: &str) -> anyhow::Result<()> {
        with_db!(self, |pool| pool.announce_erasure(payload).await)
    }

    /// Starts a task sending every erasure announcement's payload to `to` (PostgreSQL `LISTEN`, in
    /// place when this returns; SQLite: polling every half second for announcements made after it
    /// started). `None` when the store has no announcements.
    pub async fn listen_erasures(
        &self,
        to: mpsc::UnboundedSender<String>,
    ) -> anyhow::Result<Option<JoinHandle<()>>> {
        with_db!(self, |pool| pool.listen_erasures(to).await.map(Some))
    }
}
