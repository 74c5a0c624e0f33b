//! Previews of pasted FullStory session links (`link_shared` → `chat.unfurl`).
//!
//! When someone pastes a FullStory session URL where the app is present, Slack sends a `link_shared`
//! event (the manifest registers FullStory's US and EU app hosts in `features.unfurl_domains`, with the
//! `links:read`/`links:write` scopes). The event is acknowledged at once and becomes one
//! `slack.unfurl` job (its delivery key is the `event_id`, so Slack's retries add nothing); the job reads
//! the session's events (one metered call, cached: the same URL unfurled in many channels costs one
//! call), and answers with `chat.unfurl` once, through the effect ledger: when the session started and
//! how long it lasted, the digest, what went wrong ([`crate::lookup::WhatWentWrong`], scrubbed), the
//! customer's address masked (when FullStory's user record has one), and a Summarize button.
//!
//! What is left alone: links that are not FullStory session URLs, at most [`MAX_LINKS`] links per event,
//! links of any other FullStory organisation than the key's ([`crate::fullstory::Organisation`]:
//! `fullstory.org_id`, else learned from FullStory; when neither tells, no link is previewed, since a
//! preview is the channel's to see), channels outside `slack.unfurl_channel_ids` when it is set,
//! workspaces, channels and users outside the allow-lists, and sources over their per-source limit. A preview is best-effort: when
//! FullStory is unavailable the job waits like any other, and when it cannot be made the link stays as
//! Slack shows it.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    api::{SlackApi, UnfurlTarget},
    render::{self, Preview},
};
use crate::{
    app::App,
    fullstory::{FullStoryError, SessionId, SessionsApi},
    lookup::{Digest, WhatWentWrong},
    privacy::Requester,
    queue::{Effect, Job, JobContext, JobError, RunJob},
};

/// Links previewed per `link_shared` event (a message may carry many).
pub const MAX_LINKS: usize = 3;

/// FullStory's app hosts, registered as unfurl domains (Slack matches their subdomains too).
pub const UNFURL_DOMAINS: [&str; 2] = ["app.fullstory.com", "app.eu1.fullstory.com"];

/// A FullStory session URL, read: `https://app.fullstory.com/ui/{org}/session/{user}:{session}` (the
/// EU host too). `None` for anything else.
pub fn session_link(url: &str) -> Option<(String, SessionId)> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    if parsed.scheme() != "https" || !UNFURL_DOMAINS.contains(&host.as_str()) {
        return None;
    }
    let segments: Vec<String> = parsed
        .path_segments()?
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    match segments.as_slice() {
        [ui, org, session, id, ..] if ui == "ui" && session == "session" && !org.is_empty() => {
            Some((org.clone(), SessionId::new(id.as_str())?))
        }
        _ => None,
    }
}

/// "Preview these FullStory links."
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnfurlJob {
    /// The exact URLs as shared (the keys of `chat.unfurl`'s map).
    pub urls: Vec<String>,
    pub target: UnfurlTarget,
    pub requester: Requester,
}

impl Job for UnfurlJob {
    const KIND: &'static str = "slack.unfurl";
}

/// Runs [`UnfurlJob`]s.
pub struct UnfurlHandler {
    pub app: Arc<App>,
    pub api: Arc<SlackApi>,
}

impl UnfurlHandler {
    /// The preview of one URL; `None` when FullStory does not know the session (another org's, or gone).
    async fn preview(
        &self,
        url: &str,
        session: SessionId,
    ) -> Result<Option<Preview>, FullStoryError> {
        // A preview is replaydesk's own doing (a link was shared): an automatic Activation.
        let (events, skipped) = match self
            .app
            .sessions
            .session_events(&session, crate::activations::Purpose::Automatic)
            .await
        {
            Ok(events) => (events, None),
            Err(FullStoryError::NotFound { .. }) => return Ok(None),
            // Past the Activation budget: still a preview (the link, who), saying why it is short.
            Err(FullStoryError::OverBudget(spent)) => {
                (Arc::default(), Some(spent.digest_skipped()))
            }
            Err(e) => return Err(e),
        };
        let started = events.iter().filter_map(|e| e.at).min();
        let mut digest = Digest::from_events(&events, started.unwrap_or_else(Utc::now));
        if self.app.config.fullstory.what_went_wrong
            && let Some(start) = started
        {
            digest.went_wrong = WhatWentWrong::from_events(&events, start);
        }
        // The user part of the session id is FullStory's user id: its record may name the customer.
        let user = session.as_str().split(':').next().unwrap_or_default();
        let customer = match self.app.fullstory.get_user(user).await {
            Ok(record) => record
                .email
                .and_then(|e| crate::identity::CustomerEmail::parse(&e).ok())
                .map(|e| e.redacted()),
            Err(error) => {
                tracing::debug!(%error, "no user record for the previewed session");
                None
            }
        };
        Ok(Some(Preview {
            url: url.to_owned(),
            session,
            started,
            digest,
            skipped,
            customer,
        }))
    }
}

/// The `chat.unfurl` call as a ledgered effect: a retried job never unfurls twice.
struct Unfurl<'a> {
    api: &'a SlackApi,
    target: &'a UnfurlTarget,
    unfurls: serde_json::Value,
}

#[async_trait]
impl Effect for Unfurl<'_> {
    async fn find_existing(&self, _marker: &str) -> anyhow::Result<Option<String>> {
        // Unfurling again replaces the preview (Slack's contract): nothing to look for.
        Ok(None)
    }

    async fn perform(&self, _marker: &str) -> anyhow::Result<String> {
        self.api.unfurl(self.target, &self.unfurls).await?;
        Ok("unfurled".into())
    }
}

#[async_trait]
impl RunJob for UnfurlHandler {
    type Job = UnfurlJob;

    async fn run(&self, job: &JobContext, payload: UnfurlJob) -> Result<(), JobError> {
        let org = match self.app.organisation.id(&self.app.fullstory).await {
            Ok(Some(org)) => org,
            Ok(None) => {
                tracing::info!("previews {}", crate::fullstory::org::PREVIEWS_OFF);
                return Ok(());
            }
            Err(error) => return Err(JobError::Retry(anyhow::Error::new(error))),
        };
        let mut unfurls = serde_json::Map::new();
        for url in payload.urls.iter().take(MAX_LINKS) {
            let Some((link_org, session)) = session_link(url) else {
                continue;
            };
            if link_org != org {
                tracing::info!("a FullStory link of another organisation: not previewed");
                continue;
            }
            let preview = match self.preview(url, session).await {
                Ok(Some(preview)) => preview,
                Ok(None) => continue,
                Err(error) if error.is_transient() => {
                    return Err(JobError::Retry(anyhow::Error::new(error)));
                }
                Err(error) => {
                    tracing::warn!(%error, "FullStory refused the preview's session");
                    continue;
                }
            };
            unfurls.insert(
                url.clone(),
                json!({ "blocks": render::unfurl_blocks(&preview) }),
            );
        }
        if unfurls.is_empty() {
            return Ok(());
        }
        let effect = Unfurl {
            api: &self.api,
            target: &payload.target,
            unfurls: serde_json::Value::Object(unfurls),
        };
        job.effects().once("unfurl", &effect).await.map_err(|e| {
            match e.downcast_ref::<super::api::SlackError>() {
                Some(slack) if !slack.is_transient() => JobError::Permanent(e),
                _ => JobError::Retry(e),
            }
        })?;
        self.app
            .auditor
            .record(
                self.app.clock.now(),
                "unfurl",
                &payload.requester,
                &[],
                payload.urls.len().min(MAX_LINKS),
                Some(format!("job {}", job.id())),
            )
            .await;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_fullstory_session_urls_are_read() {
        let (org, session) = session_link(
            "https://app.fullstory.com/ui/o-1AB/session/5191865402245120%3A4000000000000003",
        )
        .unwrap();
        assert_eq!(org, "o-1AB");
        assert_eq!(session.as_str(), "5191865402245120:4000000000000003");
        assert!(session_link("https://app.eu1.fullstory.com/ui/ORG/session/1:2?x=1").is_some());
        for other in [
            "http://app.fullstory.com/ui/ORG/session/1:2",
            "https://evil.example/ui/ORG/session/1:2",
            "https://app.fullstory.com.evil.example/ui/ORG/session/1:2",
            "https://app.fullstory.com/ui/ORG/segments/everyone",
            "https://app.fullstory.com/ui//session/1:2",
            "not a url",
        ] {
            assert!(session_link(other).is_none(), "{other}");
        }
    }
}
