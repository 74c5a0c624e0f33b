//! Escalation (issue 25): an agent hands what a replay shows to engineering as a Linear or Jira
//! issue, in one step, from wherever they asked (Slack, Zendesk, Discord, the command line), and the
//! issue says what they would have typed: the customer (masked), the likely session's link, the
//! digest, what went wrong with each item's time into the session, the summary, the source and who
//! escalated ([`text`]).
//!
//! An escalation is an inbound request like any other: an adapter records an [`EscalateJob`] durably
//! before it acknowledges ([`job`]), and a worker runs it. The shared entry point every surface calls
//! is [`EscalateJob::new`] with a [`Source`] (the ticket, thread or message, as a stable key and a
//! link) and, when the surface knows it, the session; Intercom's Escalate button (issue 26) is one
//! more caller of it.
//!
//! # Once
//! The same source and session escalated twice (a double click, two agents, a retried webhook, a
//! re-sent tag) gives **one** issue: the store's `escalations` row of (source, session)
//! ([`crate::store::SqlStore::begin_escalation`]) is taken by the first job; the others wait for it
//! and answer "already escalated: LIN-123 <link>". The owner creates the issue through its effect
//! ledger (intent before, the issue after), and what finds the issue again after a crash between
//! the tracker's answer and the record differs per tracker, on purpose:
//! - **Linear**: `IssueCreateInput` takes a client-chosen `id`. replaydesk derives it from the
//!   escalation's tag (a keyed hash of source and session, [`Tag`]), so a retried create names the same
//!   issue and cannot make a second one; "find" is `issue(id:)`.
//! - **Jira**: a create is not idempotent (and a failed create can still use up a key). The new issue
//!   carries the label `replaydesk-<tag>`; after an unknown outcome, the job searches
//!   `labels = "replaydesk-<tag>"` (`GET /rest/api/3/search/jql`) before creating again. Jira's search
//!   index lags a few seconds behind a create, so this closes the crash window, not a race: two jobs
//!   never create for one row, because only the row's owner creates.
//!
//! The link from the issue back to the session is idempotent on both trackers (a Linear attachment per
//! issue and URL; a Jira remote link per `globalId`), so it is simply made again after a crash.
//!
//! # Adversity
//! Each tracker is an [`crate::outbound::Upstream`] of its own (`linear`, `jira`): its own circuit
//! breaker, 429 `Retry-After` honoured with the shared cool-down. A tracker down makes the job wait
//! for it without spending attempts; a refusal is named ("Linear refused: team not found") and ends
//! the job.
//!
//! # Privacy
//! Every escalation is audited (who, the customer's keyed hash, tracker and issue). An erasure
//! ([`crate::erasure`]) removes the links replaydesk made for that customer and lists in its receipt
//! the issues whose text still mentions them ("LIN-123: by hand").

pub mod adf;
pub mod jira;
pub mod job;
pub mod linear;
pub mod text;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::answer::Escalated;
pub use jira::{JiraApi, JiraError};
pub use job::{EscalateHandler, EscalateJob, Outcome, Source};
pub use linear::{LinearApi, LinearError};
pub use text::Report;

use crate::{config::Config, outbound::Upstreams};

/// The trackers issues go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tracker {
    Linear,
    Jira,
}

impl Tracker {
    pub const ALL: [Tracker; 2] = [Tracker::Linear, Tracker::Jira];

    /// `linear`, `jira`: the config section, the upstream's name, what the store records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Jira => "jira",
        }
    }

    /// `Linear`, `Jira`.
    pub fn title(self) -> &'static str {
        match self {
            Self::Linear => "Linear",
            Self::Jira => "Jira",
        }
    }

    /// Whether `config` switches this tracker on.
    pub fn enabled(self, config: &Config) -> bool {
        match self {
            Self::Linear => config.linear.is_enabled(),
            Self::Jira => config.jira.is_enabled(),
        }
    }

    /// The trackers `config` switches on, Linear first: what a surface offers to escalate to.
    pub fn on(config: &Config) -> Vec<Self> {
        Self::ALL
            .into_iter()
            .filter(|t| t.enabled(config))
            .collect()
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.title())
    }
}

/// An issue on a tracker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// The tracker's own id (Linear's UUID, Jira's numeric id).
    pub id: String,
    /// What people call it: `LIN-123`, `SUP-42`.
    pub key: String,
    /// Its page.
    pub url: String,
}

/// What finds an escalation's issue again: a keyed hash of its source and session (32 hex digits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag(pub String);

impl Tag {
    /// Jira's label for it: `replaydesk-<tag>`.
    pub fn label(&self) -> String {
        format!("replaydesk-{}", self.0)
    }

    /// Linear's issue id for it: the tag's 16 bytes as a UUID (version and variant bits set, so any
    /// validator takes it).
    pub fn uuid(&self) -> String {
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(self.0.get(2 * i..2 * i + 2).unwrap_or("00"), 16)
                .unwrap_or_default();
        }
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// The Jira remote link's `globalId` for it (≤ 255 characters).
    pub fn global_id(&self) -> String {
        format!("replaydesk:{}", self.0)
    }
}

/// The link from an issue back to what it is about (the session, else the source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub url: String,
    pub title: String,
    /// One line under the title ("3:32 into the session…").
    pub subtitle: Option<String>,
}

/// A tracker's failure: its own refusals, or its upstream's.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error(transparent)]
    Linear(#[from] LinearError),
    #[error(transparent)]
    Jira(#[from] JiraError),
}

impl TrackerError {
    /// Whether trying again later may help (the tracker was busy, down or slow).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Linear(error) => error.is_transient(),
            Self::Jira(error) => error.is_transient(),
        }
    }

    /// How long the tracker asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Linear(LinearError::Upstream(error)) | Self::Jira(JiraError::Upstream(error)) => {
                error.retry_after()
            }
            _ => None,
        }
    }
}

/// One tracker, as an escalation uses it. Implemented by [`LinearApi`] and [`JiraApi`].
#[async_trait]
pub trait IssueTracker: Send + Sync {
    fn tracker(&self) -> Tracker;

    /// The upstream it calls through (its breaker tells the queue when it is back).
    fn upstream(&self) -> &crate::outbound::Upstream;

    /// The issue replaydesk made for `tag`, if there is one.
    async fn find(&self, tag: &Tag) -> Result<Option<Issue>, TrackerError>;

    /// Makes the issue for `tag` (see the module docs for what makes this safe to retry).
    async fn create(&self, tag: &Tag, report: &Report) -> Result<Issue, TrackerError>;

    /// An existing issue by its key (`LIN-123`, `SUP-42`), to link instead of creating one.
    async fn resolve(&self, key: &str) -> Result<Issue, TrackerError>;

    /// Adds (or updates: both are idempotent) the link to `issue`; its id on the tracker.
    async fn link(&self, issue: &Issue, tag: &Tag, link: &Link) -> Result<String, TrackerError>;

    /// Removes a link replaydesk added (one already gone is not an error).
    async fn unlink(&self, issue: &Issue, link_id: &str) -> Result<(), TrackerError>;

    /// One read-only call that proves the credentials and the team or project: what it found.
    async fn check(&self) -> Result<String, TrackerError>;
}

/// The trackers the configuration switches on, each built once.
#[derive(Clone, Default)]
pub struct Trackers {
    linear: Option<Arc<dyn IssueTracker>>,
    jira: Option<Arc<dyn IssueTracker>>,
}

impl Trackers {
    /// The configured trackers' clients.
    pub fn from_config(config: &Config, upstreams: &Upstreams) -> anyhow::Result<Self> {
        let linear = if config.linear.is_enabled() {
            Some(
                Arc::new(LinearApi::from_config(&config.linear, upstreams.clone())?)
                    as Arc<dyn IssueTracker>,
            )
        } else {
            None
        };
        let jira = if config.jira.is_enabled() {
            Some(
                Arc::new(JiraApi::from_config(&config.jira, upstreams.clone())?)
                    as Arc<dyn IssueTracker>,
            )
        } else {
            None
        };
        Ok(Self { linear, jira })
    }

    /// `tracker`'s client, when it is on.
    pub fn get(&self, tracker: Tracker) -> Option<&Arc<dyn IssueTracker>> {
        match tracker {
            Tracker::Linear => self.linear.as_ref(),
            Tracker::Jira => self.jira.as_ref(),
        }
    }

    /// The trackers that are on, Linear first.
    pub fn enabled(&self) -> Vec<Tracker> {
        Tracker::ALL
            .into_iter()
            .filter(|t| self.get(*t).is_some())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.linear.is_none() && self.jira.is_none()
    }

    /// The tracker to use when the asker named none: the only one that is on; `None` when none is
    /// or both are (the asker must choose).
    pub fn only(&self) -> Option<Tracker> {
        match self.enabled().as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

/// The issue `session` was escalated to from `source`, when that escalation is finished: what a
/// surface answers at once ("Already escalated: LIN-123 <link>", as `(key, url)`) instead of queueing
/// another ask. A store that cannot answer is treated as "not yet": the job decides once anyway.
pub async fn already(
    store: &crate::store::SqlStore,
    source: &Source,
    session: &crate::fullstory::SessionId,
) -> Option<(String, String)> {
    let row = store
        .escalation(&source.key, session.as_str())
        .await
        .ok()??;
    if !row.is_done() {
        return None;
    }
    Some((row.issue_key?, row.issue_url?))
}

/// The upstream names of the trackers (their circuit breakers).
pub const UPSTREAMS: &[&str] = &["linear", "jira"];

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_gives_one_linear_id_one_jira_label_and_one_global_id() {
        let tag = Tag("0123456789abcdef0123456789abcdef".into());
        let id = tag.uuid();
        assert_eq!(id, tag.uuid(), "the same tag, the same id");
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(id, Tag("ff".repeat(16)).uuid());
        assert_eq!(tag.label(), "replaydesk-0123456789abcdef0123456789abcdef");
        assert!(tag.global_id().len() <= 255);
    }

    #[test]
    fn trackers_are_named_as_in_the_configuration() {
        assert_eq!(Tracker::parse("Linear"), Some(Tracker::Linear));
        assert_eq!(Tracker::parse(" jira "), Some(Tracker::Jira));
        assert_eq!(Tracker::parse("github"), None);
    }
}
