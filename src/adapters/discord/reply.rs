//! Answers on Discord: every answer (the sessions, a summary, "it is late", "it failed") is an edit of
//! the interaction's deferred ephemeral response, `PATCH /webhooks/{application}/{token}/messages/@original`.
//!
//! Exactly once in effect: the edit is naturally idempotent (it replaces the message), and it still goes
//! through the effect ledger, one effect per kind of answer (`delayed`, `answer`, `failed`), so a retried
//! job does not send it again. The edit puts the ledger's marker in the last embed's footer, and
//! `find_existing` reads `@original` back looking for it: an edit that landed before a crash is found,
//! recorded and not repeated.
//!
//! When Discord refuses an edit (400, e.g. 50035), the refusal is logged and counted and the plain
//! fallback ([`render::plain`]: links only, as `content`) replaces `@original` instead, as the effect
//! `<name>-plain` ([`crate::adapters::refusal::once_or_fallback`]); its marker is on its last line.
//!
//! The interaction token lives 15 minutes from the interaction ([`TOKEN_LIFETIME`]; the job's
//! `enqueued_at` is when we received it). [`PlatformReplier::deadline`] is 14 minutes
//! ([`ANSWER_DEADLINE`]): the shared job handlers start no lookup past it, and a job waiting for
//! FullStory waits at most until it; then they send "it took too long" while the token still works,
//! and the job ends `expired`. Once the token has expired no edit is tried (it would fail with 404): the
//! answer is dropped with a warning.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serenity::builder::EditInteractionResponse;

use super::{api::DiscordApi, render};
use crate::{
    adapters::refusal::once_or_fallback,
    answer::{Answer, PlatformReplier, ReplyTarget},
    clock::Clock,
    lookup::Lookup,
    queue::{Effect, JobContext, JobError},
};

/// How long Discord accepts edits with an interaction token.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The last moment a job starts an answer (a minute of margin for the lookup and the edit).
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(14 * 60);

/// Where a Discord answer goes: the job's `ReplyTo` target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub application_id: String,
    /// The interaction token (a credential for 15 minutes).
    pub token: String,
    pub interaction_id: String,
}

impl ReplyTarget for Target {
    const PLATFORM: &'static str = super::PLATFORM;
}

pub struct DiscordReplier {
    api: Arc<DiscordApi>,
    clock: Clock,
    lookup: Arc<Lookup>,
    /// The trackers that are on: an answer offers an Escalate button for each.
    trackers: Vec<crate::escalate::Tracker>,
}

impl DiscordReplier {
    pub fn new(
        api: Arc<DiscordApi>,
        clock: Clock,
        lookup: Arc<Lookup>,
        trackers: Vec<crate::escalate::Tracker>,
    ) -> Self {
        Self {
            api,
            clock,
            lookup,
            trackers,
        }
    }

    fn expires(job: &JobContext, after: Duration) -> Option<DateTime<Utc>> {
        chrono::Duration::from_std(after)
            .ok()
            .and_then(|after| job.enqueued_at().checked_add_signed(after))
    }
}

/// One edit of `@original`.
struct EditOriginal<'a> {
    api: &'a DiscordApi,
    target: &'a Target,
    render: Box<dyn Fn(&str) -> EditInteractionResponse + Send + Sync + 'a>,
}

#[async_trait]
impl Effect for EditOriginal<'_> {
    async fn find_existing(&self, marker: &str) -> anyhow::Result<Option<String>> {
        let message = self
            .api
            .get_original(&self.target.application_id, &self.target.token)
            .await?;
        let carries_marker = message["embeds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|embed| embed["footer"]["text"].as_str())
            .chain(message["content"].as_str())
            .any(|text| text.contains(marker));
        Ok(carries_marker.then(|| message_id(&message)))
    }

    async fn perform(&self, marker: &str) -> anyhow::Result<String> {
        let message = self
            .api
            .edit_original(
                &self.target.application_id,
                &self.target.token,
                &(self.render)(marker),
            )
            .await?;
        Ok(message_id(&message))
    }
}

fn message_id(message: &serde_json::Value) -> String {
    message["id"].as_str().unwrap_or("@original").to_owned()
}

#[async_trait]
impl PlatformReplier for DiscordReplier {
    type Target = Target;

    fn deadline(&self, job: &JobContext, _target: &Target) -> Option<DateTime<Utc>> {
        Self::expires(job, ANSWER_DEADLINE)
    }

    async fn deliver(
        &self,
        job: &JobContext,
        target: &Target,
        answer: Answer<'_>,
    ) -> Result<(), JobError> {
        if Self::expires(job, TOKEN_LIFETIME).is_none_or(|expiry| self.clock.now() >= expiry) {
            tracing::warn!(
                interaction_id = %target.interaction_id,
                "the interaction token has expired; the answer cannot be delivered"
            );
            return Ok(());
        }
        let summaries = self.lookup.summaries_enabled();
        let job_id = job.id();
        let trackers = self.trackers.clone();
        let plain = EditOriginal {
            api: &self.api,
            target,
            render: Box::new(|marker| render::plain(&answer, marker)),
        };
        let (name, render): (
            &str,
            Box<dyn Fn(&str) -> EditInteractionResponse + Send + Sync>,
        ) = match &answer {
            Answer::Sessions { result, .. } => (
                "answer",
                Box::new(move |marker| {
                    render::sessions(result, summaries, Some((job_id, &trackers)), marker)
                }),
            ),
            Answer::Summary { job, outcome } => (
                "answer",
                Box::new(move |marker| render::summary(job, outcome, marker)),
            ),
            Answer::Delayed { message } => (
                "delayed",
                Box::new(move |marker| render::delayed(message, marker)),
            ),
            Answer::Failed { message, reference } => (
                "failed",
                Box::new(move |marker| render::failed(message, reference, marker)),
            ),
            Answer::Escalated { escalated } => {
                let text = escalated.message();
                (
                    "escalated",
                    Box::new(move |marker| render::delayed(&text, marker)),
                )
            }
            // Discord starts no erasure; should a job name it, the receipt is plain lines.
            Answer::Erasure { email, receipt } => {
                let text = std::iter::once(crate::render::erasure_heading(email, receipt))
                    .chain(crate::render::erasure_lines(receipt))
                    .collect::<Vec<_>>()
                    .join("\n");
                (
                    "receipt",
                    Box::new(move |marker| render::delayed(&text, marker)),
                )
            }
        };
        let edit = EditOriginal {
            api: &self.api,
            target,
            render,
        };
        match once_or_fallback::<super::api::DiscordError>(job, name, &edit, &plain).await {
            Ok(message_id) => {
                tracing::info!(effect = name, %message_id, "answered on Discord");
                Ok(())
            }
            Err(error) => {
                let transient = error
                    .downcast_ref::<super::api::DiscordError>()
                    .is_none_or(super::api::DiscordError::is_transient);
                if transient {
                    Err(JobError::Retry(error))
                } else {
                    Err(JobError::Permanent(error))
                }
            }
        }
    }
}
