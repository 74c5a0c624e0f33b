//! Delivering answers in Slack, each post through the effect ledger.
//!
//! Where an answer goes is the job's [`Target`]:
//! - `response_url` (slash command, a button on a private answer): an ephemeral post (or `in_channel`
//!   for Share in channel). The slash command's answers replace its "Looking up…" message
//!   (`replace_original`); a button's answers come as new messages. A `response_url` takes at most
//!   **5 posts within 30 minutes**: the posts made are counted in the job's ledger, and when they are
//!   used up or the URL is older than 30 minutes the answer goes through `chat.postEphemeral` to the same
//!   user and channel instead (`chat.postMessage` for a shared one). [`PlatformReplier::deadline`] is
//!   29 minutes ([`ANSWER_DEADLINE`]): a job waiting for a down FullStory waits at most that long, then
//!   sends one "took too long" and ends `expired`; one an operator retries later answers through
//!   `chat.postEphemeral`.
//!   Crash window: a `response_url` post cannot be searched for, so a worker dying between Slack's
//!   answer and the ledger's record may post once more; for the slash command that post replaces the
//!   first (same message), for buttons it is a second copy.
//! - `thread` (message shortcut, mention, a button on a message in a channel): `chat.postMessage` with
//!   `thread_ts` = the thread's parent and message `metadata {event_type: "replaydesk_reply",
//!   event_payload: {marker}}`, so after a crash `find_existing` finds the post with
//!   `conversations.replies` (`include_all_metadata`) and nothing is posted twice. When the bot may not
//!   post there (`not_in_channel`, `channel_not_found`, …) and the request came with a `response_url`,
//!   the answer goes there privately with a hint to invite the bot.
//! - `ephemeral` (a refusal for a mention): `chat.postEphemeral`.
//!
//! When Slack refuses a message (`invalid_blocks`, `msg_too_long`, …), the refusal is logged and
//! counted and the plain fallback ([`render::plain`]: text and links, no blocks) goes to the same place
//! as the effect `<name>-plain` ([`crate::adapters::refusal::once_or_fallback`]).
//!
//! Slack errors become job errors by kind: rate limits, 5xx and Slack's passing codes retry; the rest
//! (`channel_not_found`, `not_in_channel`, `expired_url`, …) are permanent.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    PLATFORM,
    api::{SlackApi, SlackError, response_body},
    render::{self, Message, Options},
};
use crate::{
    adapters::refusal::once_or_fallback,
    answer::{Answer, PlatformReplier, ReplyTarget, ReplyTo},
    app::App,
    queue::{Effect, JobContext, JobError},
    store::EffectState,
};

/// Posts a `response_url` takes, and for how long.
pub const RESPONSE_URL_MAX_USES: usize = 5;
pub const RESPONSE_URL_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(30);
/// The last moment a job answering through a `response_url` starts its answer (a minute of margin
/// for the lookup and the post), counted from the request (or from an operator's `jobs retry`, whose
/// answer goes through `chat.postEphemeral`).
pub const ANSWER_DEADLINE: chrono::TimeDelta = chrono::TimeDelta::minutes(29);
/// What the ledger records as the external id of a `response_url` post (Slack returns none).
const RESPONSE_URL_ID: &str = "response_url";
/// Codes that mean "the bot may not post in this channel".
const CANNOT_POST_HERE: &[&str] = &[
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "restricted_action",
    "cannot_reply_to_message",
];

/// Where a Slack answer goes: the `ReplyTo` target of every Slack job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    ResponseUrl {
        url: String,
        user: String,
        #[serde(default)]
        channel: Option<String>,
        /// Replace the message the URL belongs to (the slash command's "Looking up…").
        #[serde(default)]
        replace_original: bool,
        /// Visible to the channel (Share in channel).
        #[serde(default)]
        in_channel: bool,
    },
    Thread {
        channel: String,
        /// The thread's parent message.
        thread_ts: String,
        #[serde(default)]
        user: Option<String>,
        /// The request's own `response_url`, for when the bot may not post in the channel.
        #[serde(default)]
        response_url: Option<String>,
    },
    Ephemeral {
        channel: String,
        user: String,
        #[serde(default)]
        thread_ts: Option<String>,
    },
}

impl ReplyTarget for Target {
    const PLATFORM: &'static str = PLATFORM;
}

impl Target {
    /// Answers go here.
    pub fn reply_to(&self) -> ReplyTo {
        ReplyTo::new(self)
    }

    /// The same place, but seen only by the person who asked (for notices about a shared answer).
    fn privately(&self) -> Self {
        match self {
            Self::ResponseUrl {
                url,
                user,
                channel,
                replace_original,
                ..
            } => Self::ResponseUrl {
                url: url.clone(),
                user: user.clone(),
                channel: channel.clone(),
                replace_original: *replace_original,
                in_channel: false,
            },
            other => other.clone(),
        }
    }

    /// Only the person who asked sees answers sent here.
    fn is_private(&self) -> bool {
        matches!(
            self,
            Self::ResponseUrl {
                in_channel: false,
                ..
            } | Self::Ephemeral { .. }
        )
    }
}

/// Slack's replier.
pub struct SlackReplier {
    pub app: Arc<App>,
    pub api: Arc<SlackApi>,
}

#[async_trait]
impl PlatformReplier for SlackReplier {
    type Target = Target;

    /// Answers through a `response_url` ([`ANSWER_DEADLINE`]); thread answers have none (a thread can
    /// be posted in at any time).
    fn deadline(&self, job: &JobContext, target: &Target) -> Option<DateTime<Utc>> {
        matches!(target, Target::ResponseUrl { .. }).then(|| {
            job.retried_at()
                .unwrap_or(job.enqueued_at())
                .checked_add_signed(ANSWER_DEADLINE)
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        })
    }

    async fn deliver(
        &self,
        job: &JobContext,
        target: &Target,
        answer: Answer<'_>,
    ) -> Result<(), JobError> {
        let plain = render::plain(&answer);
        let (name, message) = match answer {
            Answer::Sessions {
                job: lookup,
                result,
            } => {
                let options = Options {
                    share: target.is_private().then(|| job.id()),
                    summarize: self.app.lookup.summaries_enabled() && !lookup.summary,
                    escalate: crate::escalate::Tracker::ALL
                        .iter()
                        .any(|t| t.enabled(&self.app.config))
                        .then(|| job.id()),
                };
                ("answer", render::sessions(result, options))
            }
            Answer::Summary { job, outcome } => ("answer", render::summary(job, outcome)),
            // Notices about a shared answer go to the person who shared it, not the channel.
            Answer::Delayed { message } => {
                let target = target.privately();
                return self
                    .post(job, "delayed", &target, render::notice(&message))
                    .await;
            }
            // Each receipt replaces the last (the confirmation, then "pending", then "done").
            Answer::Erasure { email, receipt } => {
                let name = match receipt.status.as_str() {
                    "done" => "receipt",
                    "dead" => "receipt-dead",
                    "cancelled" => "receipt-cancelled",
                    _ => "receipt-pending",
                };
                let target = target.privately();
                return self
                    .post(job, name, &target, render::erasure_receipt(email, receipt))
                    .await;
            }
            // The asker hears which issue; the thread's one reply is the escalation job's own.
            // The asker hears which issue privately; a thread gets it once, for everyone (the job
            // delivers it there only when the issue was made or linked now).
            Answer::Escalated { escalated } => {
                let (name, target) = match target {
                    Target::Thread { .. } => ("escalated-thread", target.clone()),
                    _ => ("escalated", target.privately()),
                };
                return self
                    .post(job, name, &target, render::notice(&escalated.message()))
                    .await;
            }
            Answer::Failed { message, reference } => {
                let target = target.privately();
                return self
                    .post(
                        job,
                        "failed",
                        &target,
                        render::failure(&message, &reference),
                    )
                    .await;
            }
        };
        self.post_or_plain(job, name, target, message, plain).await
    }
}

impl SlackReplier {
    /// Posts `message` to `target` once per (job, `name`); if Slack refuses it, its `text` alone.
    pub async fn post(
        &self,
        job: &JobContext,
        name: &str,
        target: &Target,
        message: Message,
    ) -> Result<(), JobError> {
        let plain = Message {
            text: message.text.clone(),
            blocks: Vec::new(),
        };
        self.post_or_plain(job, name, target, message, plain).await
    }

    /// Posts `message` to `target` once per (job, `name`); if Slack refuses it, `plain` instead.
    async fn post_or_plain(
        &self,
        job: &JobContext,
        name: &str,
        target: &Target,
        message: Message,
        plain: Message,
    ) -> Result<(), JobError> {
        let post = |message| Post {
            replier: self,
            job,
            target,
            message,
        };
        once_or_fallback::<SlackError>(job, name, &post(message), &post(plain))
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// Posts already made to this job's `response_url` (this attempt's included).
    async fn response_url_uses(&self, job: &JobContext) -> anyhow::Result<usize> {
        let effects = job.effects().records().await?;
        Ok(effects
            .iter()
            .filter(|e| {
                e.state == EffectState::Done && e.external_id.as_deref() == Some(RESPONSE_URL_ID)
            })
            .count())
    }

    /// Whether `job`'s `response_url` (issued when the request arrived, as the job was stored) may
    /// take one more post.
    async fn response_url_usable(&self, job: &JobContext) -> anyhow::Result<bool> {
        let fresh = self.app.clock.now() - job.enqueued_at() < RESPONSE_URL_LIFETIME;
        Ok(fresh && self.response_url_uses(job).await? < RESPONSE_URL_MAX_USES)
    }
}

/// A Slack job error: retry when Slack may answer later, give up when it will not (a refusal of our
/// message included).
fn classify(error: anyhow::Error) -> JobError {
    match error.downcast_ref::<SlackError>() {
        Some(slack) if !slack.is_transient() => JobError::Permanent(error),
        _ => JobError::Retry(error),
    }
}

/// One post, as the ledger sees it.
struct Post<'a> {
    replier: &'a SlackReplier,
    job: &'a JobContext,
    target: &'a Target,
    message: Message,
}

#[async_trait]
impl Effect for Post<'_> {
    async fn find_existing(&self, marker: &str) -> anyhow::Result<Option<String>> {
        match self.target {
            Target::Thread {
                channel, thread_ts, ..
            } => Ok(self
                .replier
                .api
                .find_marker(channel, thread_ts, marker)
                .await?),
            // Ephemeral posts and response_url posts cannot be searched for (see the module docs).
            Target::ResponseUrl { .. } | Target::Ephemeral { .. } => Ok(None),
        }
    }

    async fn perform(&self, marker: &str) -> anyhow::Result<String> {
        let api = &self.replier.api;
        match self.target {
            Target::ResponseUrl {
                url,
                user,
                channel,
                replace_original,
                in_channel,
            } => {
                if self.replier.response_url_usable(self.job).await? {
                    let body = response_body(&self.message, *in_channel, *replace_original);
                    api.respond(url, &body).await?;
                    return Ok(RESPONSE_URL_ID.to_owned());
                }
                let Some(channel) = channel else {
                    anyhow::bail!("the response_url is used up and the request named no channel");
                };
                tracing::info!("response_url used up or expired; posting through the Web API");
                if *in_channel {
                    Ok(api
                        .post_message(channel, None, &self.message, Some(marker))
                        .await?)
                } else {
                    Ok(api
                        .post_ephemeral(channel, user, None, &self.message)
                        .await?)
                }
            }
            Target::Thread {
                channel,
                thread_ts,
                response_url,
                ..
            } => {
                let posted = api
                    .post_message(channel, Some(thread_ts), &self.message, Some(marker))
                    .await;
                match (posted, response_url) {
                    (Err(error), Some(url))
                        if error.code().is_some_and(|c| CANNOT_POST_HERE.contains(&c))
                            && self.replier.response_url_usable(self.job).await? =>
                    {
                        let code = error.code().unwrap_or_default().to_owned();
                        tracing::warn!(%error, "cannot post in the thread; answering privately");
                        let message = render::with_thread_hint(self.message.clone(), &code);
                        api.respond(url, &response_body(&message, false, false))
                            .await?;
                        Ok(RESPONSE_URL_ID.to_owned())
                    }
                    (posted, _) => Ok(posted?),
                }
            }
            Target::Ephemeral {
                channel,
                user,
                thread_ts,
            } => Ok(api
                .post_ephemeral(channel, user, thread_ts.as_deref(), &self.message)
                .await?),
        }
    }
}
