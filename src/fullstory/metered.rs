//! [`MeteredSessions`]: the Activation budget in front of FullStory's metered calls
//! ([`crate::activations`]). It sits between the cache and the HTTP client, so a cached or coalesced
//! answer costs nothing and every call that reaches FullStory has taken its Activation first.
//!
//! * Get Session Events and Generate Summary take one Activation for their purpose before the call; a
//!   refused one is [`FullStoryError::OverBudget`], and nothing is sent.
//! * A call FullStory surely served nothing for (a 4xx, never sent, never received) gives its
//!   Activation back; a 5xx, a timeout or an unreadable 200 keeps it (FullStory may have charged it),
//!   and is not repeated in place: the job asks again and takes another. An out-of-quota answer
//!   ([`FullStoryError::OutOfQuota`]) marks the cycle used up for every replica.
//! * List Sessions costs no Activation: it is counted apart ([`crate::activations::Activations::count_list_sessions`]).
//! * What was paid for is shared: a session's events and summaries are kept in the store for
//!   `fullstory.session_cache_ttl` ([`crate::store::SqlStore::session_data`]) and read there first, so
//!   the same session costs one Activation whichever replica's ticket note, preview, sidebar or answer
//!   shows it (two replicas that miss at the same instant may each pay once: the in-process cache
//!   coalesces only within a replica). A stored answer is served even past the budget: it costs nothing.
//!   A store that cannot be read or written is a miss (logged), never an error.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};

use super::{FullStoryError, SessionId, SessionList, SessionsApi, Summary, model::SessionEvent};
use crate::{
    activations::{Activations, Kind, Purpose},
    clock::Clock,
    identity::Identity,
    outbound::UpstreamError,
    store::SqlStore,
};

/// [`SessionsApi`] spending Activations from the budget in front of another one, and sharing what it
/// paid for through the store.
pub struct MeteredSessions {
    inner: Arc<dyn SessionsApi>,
    activations: Activations,
    store: Arc<SqlStore>,
    clock: Clock,
    /// How long a stored answer is served (`fullstory.session_cache_ttl`).
    keep: Duration,
}

impl MeteredSessions {
    pub fn new(
        inner: Arc<dyn SessionsApi>,
        activations: Activations,
        store: Arc<SqlStore>,
        clock: Clock,
        keep: Duration,
    ) -> Self {
        Self {
            inner,
            activations,
            store,
            clock,
            keep,
        }
    }

    fn stale_before(&self) -> DateTime<Utc> {
        self.clock.now() - chrono::Duration::from_std(self.keep).unwrap_or(chrono::Duration::MAX)
    }

    /// The answer `what` of `id` another call (on any replica) paid for, while fresh.
    async fn stored<T: DeserializeOwned>(&self, id: &SessionId, what: &str) -> Option<T> {
        if self.keep.is_zero() {
            return None;
        }
        match self
            .store
            .session_data(id.as_str(), what, self.stale_before())
            .await
        {
            Ok(Some(body)) => serde_json::from_str(&body).ok(),
            Ok(None) => None,
            Err(error) => {
                tracing::debug!(
                    error = format!("{error:#}"),
                    "stored session data unreadable"
                );
                None
            }
        }
    }

    /// Keeps what was paid for, for every replica.
    async fn keep<T: Serialize + ?Sized>(&self, id: &SessionId, what: &str, answer: &T) {
        if self.keep.is_zero() {
            return;
        }
        let Ok(body) = serde_json::to_string(answer) else {
            return;
        };
        if let Err(error) = self
            .store
            .put_session_data(
                id.as_str(),
                what,
                &body,
                self.clock.now(),
                self.stale_before(),
            )
            .await
        {
            tracing::debug!(error = format!("{error:#}"), "session data not kept");
        }
    }

    /// Runs `call` with one Activation of `kind` taken for `purpose`.
    async fn metered<T>(
        &self,
        kind: Kind,
        purpose: Purpose,
        call: impl Future<Output = Result<T, FullStoryError>>,
    ) -> Result<T, FullStoryError> {
        let taken = self
            .activations
            .spend(kind, purpose)
            .await
            .map_err(FullStoryError::OverBudget)?;
        match call.await {
            Ok(answer) => Ok(answer),
            Err(FullStoryError::OutOfQuota { .. }) => {
                // FullStory spent nothing, and will spend nothing more this cycle.
                self.activations.release(taken).await;
                Err(FullStoryError::OverBudget(
                    self.activations.quota_exhausted().await,
                ))
            }
            Err(error) => {
                if nothing_served(&error) {
                    self.activations.release(taken).await;
                }
                Err(error)
            }
        }
    }
}

/// Whether FullStory surely served nothing for this failed call (so it charged nothing): refused it
/// (4xx), never received it (circuit open, cooling down, connection failed) or was never asked. A 5xx, a
/// timeout or an unreadable 200 may have been charged, and keep their Activation: the count errs on
/// the side of the budget.
fn nothing_served(error: &FullStoryError) -> bool {
    match error {
        FullStoryError::Upstream(
            UpstreamError::Timeout
            | UpstreamError::Unavailable { .. }
            | UpstreamError::Malformed { .. },
        ) => false,
        FullStoryError::Upstream(
            UpstreamError::RateLimited { .. }
            | UpstreamError::CircuitOpen { .. }
            | UpstreamError::Transport(_),
        )
        | FullStoryError::NotConfigured
        | FullStoryError::Unauthorized
        | FullStoryError::Forbidden { .. }
        | FullStoryError::NotFound { .. }
        | FullStoryError::Rejected { .. }
        | FullStoryError::OutOfQuota { .. }
        | FullStoryError::OverBudget(_) => true,
    }
}

#[async_trait]
impl SessionsApi for MeteredSessions {
    async fn list_sessions(
        &self,
        who: &Identity,
        limit: u32,
    ) -> Result<Arc<SessionList>, FullStoryError> {
        let answer = self.inner.list_sessions(who, limit).await;
        if answer.is_ok() {
            self.activations.count_list_sessions();
        }
        answer
    }

    async fn session_events(
        &self,
        id: &SessionId,
        purpose: Purpose,
    ) -> Result<Arc<Vec<SessionEvent>>, FullStoryError> {
        if let Some(events) = self.stored::<Vec<SessionEvent>>(id, "events").await {
            return Ok(Arc::new(events));
        }
        let events = self
            .metered(
                Kind::Events,
                purpose,
                self.inner.session_events(id, purpose),
            )
            .await?;
        self.keep(id, "events", events.as_slice()).await;
        Ok(events)
    }

    async fn session_summary(
        &self,
        id: &SessionId,
        profile: &str,
        end: Option<DateTime<Utc>>,
        purpose: Purpose,
    ) -> Result<Arc<Summary>, FullStoryError> {
        let what = format!(
            "summary:{profile}:{}",
            end.map_or_else(|| "-".to_owned(), |t| t.timestamp().to_string())
        );
        if let Some(summary) = self.stored::<Summary>(id, &what).await {
            return Ok(Arc::new(summary));
        }
        let summary = self
            .metered(
                Kind::Summary,
                purpose,
                self.inner.session_summary(id, profile, end, purpose),
            )
            .await?;
        self.keep(id, &what, summary.as_ref()).await;
        Ok(summary)
    }
}
