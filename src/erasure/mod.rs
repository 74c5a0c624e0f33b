//! Erasure ("delete my data"): a customer deleted everywhere replaydesk knows of.
//!
//! - [`job`]: the `privacy.erase` job ([`ErasureJob`], run by [`EraseHandler`]): the FullStory user(s)
//!   behind the email, the Heap user (when `heap.*` is set), our cache, every stored payload holding the
//!   email, and a tombstone ([`crate::privacy::Tombstones`]). Its steps are ledgered effects, so a partial
//!   failure is retried (never reported done) and a finished step is not repeated; its receipt
//!   ([`crate::privacy::ErasureReceipt`]) goes back to whoever asked.
//! - [`heap`]: Heap's user deletion API.
//! - [`broadcast`]: carries an erasure to every replica's cache (PostgreSQL `NOTIFY`; a polled table on
//!   SQLite), naming the customer by their keyed hash.
//!
//! What replaydesk keeps about customers, and how (the audit trail, tombstones, receipts), is
//! [`crate::privacy`].

pub mod broadcast;
pub mod heap;
pub mod job;

pub use job::{EraseHandler, ErasureJob};
