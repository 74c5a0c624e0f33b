//! Privacy: what replaydesk keeps about the customers it looks up, and in what form. The one home of
//! the rules; erasing a customer (the job that deletes them at FullStory, Heap and here) is
//! [`crate::erasure`], which sits above the core because it answers people, while these sit below it
//! because the core keeps them.
//!
//! - [`Auditor`] ([`audit`]) records every lookup, summary and erasure: who asked ([`Requester`]:
//!   platform user id), where (workspace/account/guild, channel/ticket), which identities (a keyed hash
//!   with `privacy.audit_key`, never the email), when, and how many sessions were shown. Without a
//!   configured key, one is generated once and kept beside the store, so hashes stay comparable across
//!   restarts and replicas.
//! - [`Tombstones`] ([`tombstone`]) remember an erased address by that same keyed hash for
//!   `privacy.tombstone_days`, so it is answered "asked to be forgotten" and never looked up again.
//! - [`ErasureReceipt`] ([`receipt`]): what an erasure did, read from its job's ledger, for every
//!   platform's renderer.
//! - Customer emails in logs are masked by [`crate::identity::redact_emails`] (the log writer in
//!   [`crate::telemetry`]); the store's side of all this (audit rows, tombstones, scrubbing stored
//!   payloads) is its privacy role, `store/privacy.rs`.

mod audit;
mod receipt;
mod tombstone;

pub use audit::{Auditor, Requester};
pub use receipt::{
    ESCALATION_STEP, ErasureReceipt, FULLSTORY_STEP, HEAP_STEP, MANUAL_STEP, SHOWN_STEP,
};
pub use tombstone::Tombstones;
