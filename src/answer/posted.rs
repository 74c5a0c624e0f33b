//! What a place already shows: the rule "never the same session twice on one ticket or conversation",
//! written once for every platform whose answers are notes that stay (a Zendesk ticket, an Intercom
//! conversation), so the second such platform did not copy the first's.
//!
//! - A place is a claim scope in the store (`zendesk:ticket:{id}`, `intercom:conversation:{id}`;
//!   [`SqlStore::claim_items`]); its items are `session:{id}`, plus one-of-a-kind notes ([`EMPTY_NOTE`],
//!   [`FAILURE_NOTE`]) and whatever else a platform posts at most once per place.
//! - Before rendering, a job *claims* the sessions it found ([`Place::fresh`]) and the note lists only
//!   the sessions it now holds ([`only_new`]). Claiming before posting (rather than recording after)
//!   means two jobs for one place running at the same time split the sessions instead of both posting
//!   them; a retry of the same job holds the same claims (the owner is the job), so it posts them.
//! - The post itself goes through the effect ledger (`job.effects().once`), which each replier does.
//!
//! This is how a ticket's note is once per ticket and session across retried deliveries, both
//! Zendesk triggers and the sidebar's button, and how a conversation's note is once per conversation
//! and session across Intercom's retries, both webhook topics and the inbox app's button.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::{
    lookup::{IdentityResult, LookupResult},
    queue::{JobContext, JobError},
    store::SqlStore,
};

/// The claim item of the one "no sessions" note a place may get.
pub const EMPTY_NOTE: &str = "empty-note";
/// The claim item of the one failure note a place may get.
pub const FAILURE_NOTE: &str = "failure-note";

/// The claim owner of one job: its retries hold what it claimed.
pub fn job_owner(job: &JobContext) -> String {
    format!("job:{}", job.id())
}

/// The claim item of one session.
pub fn session_item(id: &str) -> String {
    format!("session:{id}")
}

/// What a job may post at a place, once its claims are taken ([`Place::fresh`]).
#[derive(Debug)]
pub enum Fresh {
    /// Nothing: every session found is there already, or the "no sessions" note is (or is not wanted).
    Nothing,
    /// Nobody has sessions, and this job holds the place's one "no sessions" note.
    Empty,
    /// The sessions this job now holds, grouped as found ([`only_new`]).
    Sessions(LookupResult),
}

/// One place (a ticket, a conversation) of a platform: its claim scope in the store.
pub struct Place<'a> {
    pub store: &'a SqlStore,
    pub scope: String,
    pub now: DateTime<Utc>,
}

impl<'a> Place<'a> {
    /// The place `scope` (`<platform>:<kind>:<id>`), as of `now`.
    pub fn new(store: &'a SqlStore, scope: String, now: DateTime<Utc>) -> Self {
        Self { store, scope, now }
    }

    /// Claims `items` here for `job`; the ones it now holds.
    pub async fn claim(
        &self,
        job: &JobContext,
        items: &[String],
    ) -> Result<HashSet<String>, JobError> {
        let owner = job_owner(job);
        let claims = self
            .store
            .claim_items(&self.scope, &owner, items, None, self.now)
            .await
            .map_err(JobError::Retry)?;
        Ok(claims
            .into_iter()
            .filter(|c| c.owner == owner)
            .map(|c| c.item)
            .collect())
    }

    /// Whether `job` holds the one-of-a-kind `item` here (claiming it if nobody does).
    pub async fn holds(&self, job: &JobContext, item: &str) -> Result<bool, JobError> {
        Ok(self.claim(job, &[item.to_owned()]).await?.contains(item))
    }

    /// What `job` may post here of `result`: the sessions not shown here yet (claimed now), the
    /// "no sessions" note when nobody has any and `note_when_empty` asks for it (once per place), or
    /// nothing.
    pub async fn fresh(
        &self,
        job: &JobContext,
        result: &LookupResult,
        note_when_empty: bool,
    ) -> Result<Fresh, JobError> {
        let found: Vec<String> = result
            .identities
            .iter()
            .flat_map(|g| g.sessions.iter().map(|s| session_item(s.id.as_str())))
            .collect();
        if found.is_empty() {
            if !note_when_empty {
                tracing::info!(place = %self.scope, "no sessions; no note asked for when empty");
                return Ok(Fresh::Nothing);
            }
            if !self.holds(job, EMPTY_NOTE).await? {
                tracing::info!(place = %self.scope, "no sessions, and the place already says so");
                return Ok(Fresh::Nothing);
            }
            return Ok(Fresh::Empty);
        }
        let mine = self.claim(job, &found).await?;
        let new: HashSet<String> = mine
            .iter()
            .filter_map(|item| item.strip_prefix("session:"))
            .map(str::to_owned)
            .collect();
        let fresh = only_new(result, &new);
        if fresh.session_count() == 0 {
            tracing::info!(
                place = %self.scope,
                sessions = found.len(),
                "every session found is already shown here; nothing to add"
            );
            return Ok(Fresh::Nothing);
        }
        tracing::info!(
            place = %self.scope,
            sessions = fresh.session_count(),
            already_posted = found.len() - fresh.session_count(),
            "posting the sessions not yet shown here"
        );
        Ok(Fresh::Sessions(fresh))
    }
}

/// The sessions of `result` that are in `new`, grouped as before. The digest and summary stay with a
/// group only when its likely session stays (they describe that session).
pub fn only_new(result: &LookupResult, new: &HashSet<String>) -> LookupResult {
    let identities = result
        .identities
        .iter()
        .filter_map(|group| {
            let sessions: Vec<_> = group
                .sessions
                .iter()
                .filter(|s| new.contains(s.id.as_str()))
                .cloned()
                .collect();
            if sessions.is_empty() {
                return None;
            }
            let keeps_likely = sessions.iter().any(|s| s.likely);
            let no_likely = group.likely().is_none();
            Some(IdentityResult {
                identity: group.identity.clone(),
                forgotten: group.forgotten,
                sessions,
                digest: if keeps_likely {
                    group.digest.clone()
                } else {
                    None
                },
                digest_skipped: if keeps_likely {
                    group.digest_skipped.clone()
                } else {
                    None
                },
                summary: if keeps_likely || no_likely {
                    group.summary.clone()
                } else {
                    None
                },
            })
        })
        .collect();
    LookupResult {
        around: result.around,
        lookback_days: result.lookback_days,
        identities,
        not_looked_up: result.not_looked_up,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::{
        fullstory::SessionId,
        identity::{CustomerEmail, Identity},
        lookup::{Digest, FoundSession, SummaryOutcome},
    };

    fn session(id: &str, likely: bool) -> FoundSession {
        FoundSession {
            id: SessionId::new(id).unwrap(),
            url: format!("https://fs/{id}"),
            created: DateTime::<Utc>::UNIX_EPOCH,
            likely,
        }
    }

    fn group(email: &str, sessions: Vec<FoundSession>) -> IdentityResult {
        IdentityResult {
            identity: Identity::Email(CustomerEmail::parse(email).unwrap()),
            forgotten: false,
            sessions,
            digest: Some(Digest::default()),
            digest_skipped: None,
            summary: Some(SummaryOutcome::Ready("s".into())),
        }
    }

    #[test]
    fn only_new_sessions_remain_and_the_digest_follows_the_likely_session() {
        let result = LookupResult {
            not_looked_up: 0,
            around: None,
            lookback_days: 30,
            identities: vec![
                group(
                    "a@acme.com",
                    vec![session("1:2", true), session("1:1", false)],
                ),
                group("b@acme.com", vec![session("2:1", true)]),
            ],
        };
        let new: HashSet<String> = ["1:1".to_owned()].into();
        let fresh = only_new(&result, &new);
        assert_eq!(fresh.identities.len(), 1);
        assert_eq!(fresh.identities[0].sessions, vec![session("1:1", false)]);
        assert!(fresh.identities[0].digest.is_none());
        assert!(fresh.identities[0].summary.is_none());
        let all: HashSet<String> = ["1:1", "1:2", "2:1"].map(str::to_owned).into();
        let everything = only_new(&result, &all);
        assert_eq!(everything.session_count(), 3);
        assert!(everything.identities[0].digest.is_some());
    }
}
