//! Tombstones: an erased address is remembered, as the audit trail's keyed hash of it
//! ([`Auditor::hash`], never the address), for `privacy.tombstone_days` (default 30) after its
//! erasure, so that it is not looked up and stored again right after (issue 22, row 8: "nothing
//! remembers an erased address").
//!
//! Contract:
//! * [`Tombstones::bury`] is called by the erasure job before its first step (`forget`, Slack's
//!   `/replays forget`, the Zendesk erasure tag all run it), so a lookup arriving while the erasure is
//!   still running is already refused;
//! * [`Tombstones::forgotten`] is asked by the one lookup every platform's question passes through
//!   ([`crate::lookup::Lookup::run`], so Slack, Zendesk notes and the sidebar, Discord and `replaydesk
//!   lookup` alike): a forgotten identity is answered "this customer asked to be forgotten", is not sent
//!   to FullStory, and so is neither cached nor counted against the quota;
//! * with `privacy.tombstone_days = 0` nothing is kept or asked;
//! * a store that cannot be read answers "not forgotten" (logged): a lookup of an erased customer then
//!   reaches FullStory, which deleted the user, rather than every lookup failing with the database.
//!
//! The hash is keyed with `privacy.audit_key`: rotating that key makes the tombstones kept before
//! unreadable, as it does the audit trail's hashes (see docs/privacy.md, "Audit").

use std::{sync::Arc, time::Duration};

use super::Auditor;
use crate::{
    clock::Clock,
    identity::{CustomerEmail, Identity},
    store::SqlStore,
};

/// The erased addresses this install remembers. Cheap to clone.
#[derive(Clone)]
pub struct Tombstones {
    auditor: Auditor,
    store: Arc<SqlStore>,
    clock: Clock,
    /// How long a tombstone is kept; zero: none is.
    keep: Duration,
}

impl Tombstones {
    pub fn new(auditor: Auditor, store: Arc<SqlStore>, clock: Clock, keep: Duration) -> Self {
        Self {
            auditor,
            store,
            clock,
            keep,
        }
    }

    /// Whether tombstones are kept at all (`privacy.tombstone_days` above 0).
    pub fn enabled(&self) -> bool {
        !self.keep.is_zero()
    }

    /// Remembers that `email` was erased, from now for the configured days.
    ///
    /// # Errors
    /// The store refused to keep it.
    pub async fn bury(&self, email: &CustomerEmail) -> anyhow::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let now = self.clock.now();
        let keep = chrono::Duration::from_std(self.keep).unwrap_or(chrono::Duration::MAX);
        let hash = self.auditor.hash(&Identity::Email(email.clone()));
        self.store
            .bury(&hash, now.checked_add_signed(keep).unwrap_or(now), now)
            .await
    }

    /// For each of `identities`, whether it is an erased address still remembered (a uid never is).
    pub async fn forgotten(&self, identities: &[Identity]) -> Vec<bool> {
        let none = vec![false; identities.len()];
        if !self.enabled() || !identities.iter().any(|i| i.as_email().is_some()) {
            return none;
        }
        let hashes: Vec<String> = identities
            .iter()
            .filter(|i| i.as_email().is_some())
            .map(|i| self.auditor.hash(i))
            .collect();
        match self.store.buried(&hashes, self.clock.now()).await {
            Ok(buried) => identities
                .iter()
                .map(|i| i.as_email().is_some() && buried.contains(&self.auditor.hash(i)))
                .collect(),
            Err(error) => {
                tracing::warn!(
                    error = %format!("{error:#}"),
                    "could not read the tombstones; looking up as if nobody had been erased"
                );
                none
            }
        }
    }
}
