//! The use case every platform shares: "which sessions of this customer should the agent watch?"
//!
//! A [`LookupRequest`] (identities, the moment the question is about, what to include) becomes a
//! [`LookupResult`]: per identity, the sessions newest first (a session found under an earlier identity is
//! not repeated under a later one), filtered to the lookback window, the session live at or just before
//! `around` marked likely, and, only when asked (each costs metered FullStory quota), a digest of the
//! likely session's events and FullStory's AI summary of it cut at `around`.
//!
//! Fan-out is capped here, where every platform's request passes: only the first
//! [`LookupRequest::max_identities`] identities (in order of appearance) are looked up, and the result
//! counts the rest ([`LookupResult::not_looked_up`]) so each answer can say so. One request can
//! therefore never spend more than that many session-list calls, whatever text it carried.
//!
//! Erased customers: an identity [`Tombstones`] remembers as erased is answered "this customer asked to
//! be forgotten" ([`IdentityResult::forgotten`]) and never sent to FullStory, so nothing about it is
//! fetched, cached or shown. Checked here, once, because every platform's lookup passes here (Slack,
//! Zendesk notes and the sidebar, Discord, `replaydesk lookup`); an erasure itself reads FullStory
//! directly, not through here.
//!
//! Decisions: when every session started *after* `around`, none is marked likely (the problem the ticket
//! is about happened before any of them). A digest that cannot be made is left out (logged), never an
//! error; a summary that cannot be made for a lasting reason (no profile, 404) says why in the result,
//! while a passing failure (429, 5xx) fails the lookup so the job queue retries it.
//!
//! This module imports nothing of any platform; `fullstory` is its only upstream, and the store (through
//! [`Tombstones`]) the only other thing it reads.

mod digest;
mod rank;
pub mod went_wrong;

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use futures_util::future::{join_all, try_join_all};
use serde::Serialize;

use crate::{
    activations::Purpose,
    clock::Clock,
    fullstory::{FullStoryError, SessionId, SessionsApi},
    identity::{Identity, redact_emails},
    privacy::Tombstones,
};
pub use digest::Digest;
pub use went_wrong::{Moment, WhatWentWrong};

/// What to look up.
#[derive(Clone, Debug)]
pub struct LookupRequest {
    pub identities: Vec<Identity>,
    /// The moment the question is about (ticket creation, message time); `None` means "now".
    pub around: Option<DateTime<Utc>>,
    /// Sessions per identity.
    pub limit: u32,
    /// Older sessions are left out.
    pub lookback: Duration,
    pub digest: bool,
    /// With the digest, list what went wrong in the likely session (the same events: no extra call).
    pub what_went_wrong: bool,
    pub summary: bool,
    /// Identities looked up at most (the first ones); `identity.max_per_request` by default.
    pub max_identities: usize,
    /// What a person asked for now (spent from the Activations kept for requests), as against what
    /// the configuration adds on its own ([`crate::activations::Purpose`]).
    pub asked: Asked,
}

/// Which metered parts of a lookup a person asked for in that moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    pub digest: bool,
    pub summary: bool,
}

/// One session as shown to an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FoundSession {
    pub id: SessionId,
    pub url: String,
    pub created: DateTime<Utc>,
    pub likely: bool,
}

/// The summary part of an answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "text", rename_all = "snake_case")]
pub enum SummaryOutcome {
    Ready(String),
    /// Why there is no summary, in words an agent can act on.
    Unavailable(String),
}

/// The answer for one identity.
#[derive(Clone, Debug, Serialize)]
pub struct IdentityResult {
    pub identity: Identity,
    /// This customer was erased and asked to be forgotten (see the module docs): nothing was looked
    /// up, `sessions` is empty, and every answer says so instead of "no sessions".
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forgotten: bool,
    pub sessions: Vec<FoundSession>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Why the digest asked for was not fetched (the Activation budget is used), in words every
    /// platform shows in its place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryOutcome>,
}

impl IdentityResult {
    pub fn likely(&self) -> Option<&FoundSession> {
        self.sessions.iter().find(|s| s.likely)
    }
}

/// The whole answer.
#[derive(Clone, Debug, Serialize)]
pub struct LookupResult {
    pub around: Option<DateTime<Utc>>,
    pub lookback_days: u64,
    pub identities: Vec<IdentityResult>,
    /// Identities of the request left out by [`LookupRequest::max_identities`].
    #[serde(skip_serializing_if = "is_zero")]
    pub not_looked_up: usize,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl LookupResult {
    pub fn session_count(&self) -> usize {
        self.identities.iter().map(|i| i.sessions.len()).sum()
    }

    /// Whether the answer names a customer who asked to be forgotten (the job that asked then keeps
    /// nothing of the question once answered).
    pub fn names_a_forgotten_customer(&self) -> bool {
        self.identities.iter().any(|i| i.forgotten)
    }
}

/// The lookup engine.
pub struct Lookup {
    sessions: Arc<dyn SessionsApi>,
    summary_profile: Option<String>,
    clock: Clock,
    tombstones: Tombstones,
}

impl Lookup {
    pub fn new(
        sessions: Arc<dyn SessionsApi>,
        summary_profile: Option<String>,
        clock: Clock,
        tombstones: Tombstones,
    ) -> Self {
        Self {
            sessions,
            summary_profile,
            clock,
            tombstones,
        }
    }

    pub fn summaries_enabled(&self) -> bool {
        self.summary_profile.is_some()
    }

    pub async fn run(&self, request: &LookupRequest) -> Result<LookupResult, FullStoryError> {
        let now = self.clock.now();
        let asked = request
            .identities
            .get(..request.max_identities)
            .unwrap_or(&request.identities);
        if asked.len() < request.identities.len() {
            tracing::info!(
                asked = request.identities.len(),
                looked_up = asked.len(),
                "more identities than one request looks up; the rest are named as not looked up"
            );
        }
        let forgotten = self.tombstones.forgotten(asked).await;
        if forgotten.contains(&true) {
            tracing::info!(
                forgotten = forgotten.iter().filter(|f| **f).count(),
                "a customer who asked to be forgotten was asked for; not looked up"
            );
        }
        let lists = try_join_all(asked.iter().zip(&forgotten).map(|(who, gone)| async move {
            if *gone {
                Ok(None)
            } else {
                self.sessions
                    .list_sessions(who, request.limit)
                    .await
                    .map(Some)
            }
        }))
        .await?;

        let since =
            now - chrono::Duration::from_std(request.lookback).unwrap_or(chrono::Duration::MAX);
        let mut seen = HashSet::new();
        let mut results: Vec<IdentityResult> = asked
            .iter()
            .zip(lists)
            .map(|(who, list)| {
                let fresh = list
                    .iter()
                    .flat_map(|list| list.sessions.iter())
                    .filter(|s| seen.insert(s.id.clone()))
                    .cloned()
                    .collect::<Vec<_>>();
                IdentityResult {
                    identity: who.clone(),
                    forgotten: list.is_none(),
                    sessions: rank::rank(fresh, since, request.around, request.limit as usize),
                    digest: None,
                    digest_skipped: None,
                    summary: None,
                }
            })
            .collect();

        let extras = join_all(results.iter().map(|r| self.extras(r, request))).await;
        for (result, extra) in results.iter_mut().zip(extras) {
            let (digest, summary) = extra?;
            match digest {
                Ok(digest) => result.digest = digest,
                Err(skipped) => result.digest_skipped = Some(skipped),
            }
            result.summary = summary;
        }
        Ok(LookupResult {
            around: request.around,
            lookback_days: request.lookback.as_secs() / 86_400,
            identities: results,
            not_looked_up: request.identities.len() - asked.len(),
        })
    }

    /// FullStory's AI summary of one session, cut at `end` when given, its email addresses masked
    /// (`j•••@acme.com`) like every other customer string we show: a summary is read aloud in channels
    /// and tickets, and FullStory's model quotes what the customer typed. Masked here, once, so every
    /// platform and the sidebar get the same text. A lasting failure (no profile configured, an unknown
    /// session or profile) is an [`SummaryOutcome::Unavailable`] saying why; a passing one (429, 5xx,
    /// timeout) is an error, so the caller can retry.
    pub async fn summarize(
        &self,
        session: &SessionId,
        end: Option<DateTime<Utc>>,
        purpose: Purpose,
    ) -> Result<SummaryOutcome, FullStoryError> {
        let Some(profile) = &self.summary_profile else {
            return Ok(SummaryOutcome::Unavailable(
                "summaries are off: set fullstory.summary_profile".into(),
            ));
        };
        match self
            .sessions
            .session_summary(session, profile, end, purpose)
            .await
        {
            Ok(summary) => Ok(SummaryOutcome::Ready(
                redact_emails(&summary.text).into_owned(),
            )),
            Err(e) if e.is_transient() => Err(e),
            Err(e) => Ok(SummaryOutcome::Unavailable(e.to_string())),
        }
    }

    /// The digest (or why it was skipped) and summary of one identity's likely session, as asked.
    async fn extras(
        &self,
        result: &IdentityResult,
        request: &LookupRequest,
    ) -> Result<(Result<Option<Digest>, String>, Option<SummaryOutcome>), FullStoryError> {
        let Some(likely) = result.likely() else {
            let summary = (request.summary && !result.sessions.is_empty()).then(|| {
                SummaryOutcome::Unavailable(
                    "no session started before the time in question, so there is nothing to summarise"
                        .into(),
                )
            });
            return Ok((Ok(None), summary));
        };
        let digest = async {
            if !request.digest {
                return Ok(None);
            }
            let purpose = Purpose::asked(request.asked.digest);
            match self.sessions.session_events(&likely.id, purpose).await {
                Ok(events) => {
                    let mut digest = Digest::from_events(&events, likely.created);
                    if request.what_went_wrong {
                        digest.went_wrong = WhatWentWrong::from_events(&events, likely.created);
                    }
                    Ok(Some(digest))
                }
                Err(FullStoryError::OverBudget(spent)) => Err(spent.digest_skipped()),
                Err(error) => {
                    tracing::warn!(%error, "no digest for the likely session");
                    Ok(None)
                }
            }
        };
        let summary = async {
            if !request.summary {
                return Ok(None);
            }
            // Cut the session at the moment in question, so the summary covers what led up to it.
            let end = request.around.filter(|around| *around > likely.created);
            self.summarize(&likely.id, end, Purpose::asked(request.asked.summary))
                .await
                .map(Some)
        };
        let (digest, summary) = futures_util::join!(digest, summary);
        Ok((digest, summary?))
    }
}
