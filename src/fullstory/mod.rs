//! FullStory: the Sessions API (sessions of a user, a session's events, AI summaries) and the Server API
//! (users, events, deletion, batch imports).
//!
//! - [`FullStoryApi`] speaks HTTP: `Authorization: Basic <key>` verbatim (the key is *not* base64-encoded
//!   again), the host chosen from the key's region prefix unless `fullstory.base_url` overrides it, and
//!   every call through [`crate::outbound::Upstream`] (rate budget, shared 429 cool-down, retries).
//! - [`cache::CachedSessions`] sits in front of it: session-data calls are metered per month on many plans,
//!   so concurrent identical calls are coalesced and answers are kept for a while.
//! - [`SessionsApi`] is what `lookup` depends on; nothing here knows any chat or ticket platform.

pub mod cache;
pub mod client;
pub mod metered;
pub mod model;
pub mod org;
pub mod server_api;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    activations::{Purpose, Spent},
    identity::Identity,
    outbound::UpstreamError,
};
pub use cache::CachedSessions;
pub use client::{FullStoryApi, base_url_for_key};
pub use metered::MeteredSessions;
#[cfg(test)]
pub(crate) use model::test_event;
pub use model::{EventKind, Session, SessionEvent, SessionId, SessionList, Summary};
pub use org::Organisation;

/// The session-data calls `lookup` makes.
#[async_trait]
pub trait SessionsApi: Send + Sync {
    /// Sessions of one user, as FullStory returns them (at most `limit`).
    async fn list_sessions(
        &self,
        who: &Identity,
        limit: u32,
    ) -> Result<Arc<SessionList>, FullStoryError>;
    /// Every event of one session (one Activation), fetched for `purpose`.
    async fn session_events(
        &self,
        id: &SessionId,
        purpose: Purpose,
    ) -> Result<Arc<Vec<SessionEvent>>, FullStoryError>;
    /// FullStory's AI summary of a session, optionally cut at `end` (one Activation), for `purpose`.
    async fn session_summary(
        &self,
        id: &SessionId,
        profile: &str,
        end: Option<DateTime<Utc>>,
        purpose: Purpose,
    ) -> Result<Arc<Summary>, FullStoryError>;
}

/// Why a FullStory call failed, worded for the operator who has to fix it: FullStory's refusals, or
/// the one upstream failure core ([`UpstreamError`]: busy, down, slow, unreachable, unreadable).
#[derive(Debug, Clone, thiserror::Error)]
pub enum FullStoryError {
    #[error("no FullStory API key is configured: set fullstory.api_key")]
    NotConfigured,
    #[error("FullStory rejected the API key (401): check fullstory.api_key")]
    Unauthorized,
    #[error(
        "FullStory refused {endpoint} (403): this needs an Admin or Architect API key in fullstory.api_key"
    )]
    Forbidden { endpoint: &'static str },
    #[error("FullStory has no such {what} (404)")]
    NotFound { what: &'static str },
    #[error("FullStory rejected the request to {endpoint} ({status}): {message}")]
    Rejected {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
    /// FullStory answered that the organisation's Activations are used up (a 402, or a 403 or 429
    /// whose body names a quota: FullStory documents no answer of its own).
    #[error(
        "FullStory refused {endpoint}: the organisation's Activations are used up ({status}): {message}"
    )]
    OutOfQuota {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
    /// Not called: replaydesk's Activation budget (or FullStory's quota) is used for this cycle.
    #[error("{0}")]
    OverBudget(Spent),
    #[error("FullStory {0}")]
    Upstream(#[from] UpstreamError),
}

impl FullStoryError {
    /// Whether trying again later may succeed (the job queue retries these; the others are final).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Upstream(e) if e.is_transient())
    }

    /// How long to wait before trying again, when FullStory said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Upstream(e) => e.retry_after(),
            _ => None,
        }
    }
}
