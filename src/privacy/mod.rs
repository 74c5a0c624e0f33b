//! Privacy: the audit trail and erasure.
//!
//! - [`Auditor`] ([`crate::audit`], kept below the core that holds it) records every lookup, summary and erasure: who asked (platform user id), where
//!   (workspace/account/guild, channel/ticket), which identities (a keyed hash with `privacy.audit_key`,
//!   never the email), when, and how many sessions were shown. Without a configured key, one is generated
//!   once and kept in the store, so hashes stay comparable across restarts and replicas.
//! - [`erase`] deletes a customer everywhere we know of: the FullStory user(s) behind the email, the Heap
//!   user (when `heap.*` is set), our cache, and every stored payload holding the email. It runs as a
//!   queued job whose steps are ledgered effects, so a partial failure is retried (never reported done)
//!   and a finished step is not repeated.
//! - [`broadcast`] carries an erasure to every replica's cache (PostgreSQL `NOTIFY`), naming the
//!   customer by their keyed hash.

pub mod broadcast;
pub mod erase;
pub mod heap;

pub use crate::answer::ErasureReceipt;
pub use crate::audit::{self, Auditor};
pub use erase::ErasureJob;
