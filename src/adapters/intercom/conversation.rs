//! The `intercom.conversation` job: a webhook (or the inbox app's "Add as note") told us a
//! conversation and its contacts; this reads each contact's email and `external_id` over the API, runs
//! the shared lookup ([`answer::run_lookup`]: audit, failure policy, wording) and answers with a note
//! on the conversation ([`super::reply`]).
//!
//! Why a job kind of its own rather than the shared `lookup` job: a webhook's conversation names its
//! contacts by id only (their emails are read with `GET /contacts/{id}`), and no upstream may be called
//! before the webhook is answered; so whom to look up is worked out here, in the worker.
//!
//! Whom: each contact (in the conversation's order) by email and by `external_id` as the FullStory uid,
//! then the addresses the customer's text named; never an address at `identity.exclude_domains`; at
//! most `identity.max_per_request` identities (contacts past that are not even read, and the note names
//! how many were left out). Each workspace's lookups are held to
//! `intercom.workspace_lookups_per_minute` identities: past it the job is delayed, never dropped
//! (Intercom does not resend a notification we answered 2xx).
//!
//! Failure policy: the shared one (a FullStory outage waits quietly until `intercom.max_delay`, with
//! no "delayed" note: a note cannot be replaced); an Intercom refusal that will not pass (401, 403,
//! 404) ends the job dead at once; when the queue gives up, the conversation gets the failure note
//! unless its replays note is there already.

use std::{collections::HashSet, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    PLATFORM,
    api::IntercomApi,
    reply::{IntercomReplier, Target, job_error},
};
use crate::{
    adapters::desk_note::NOTE,
    answer::{self, Answer, LookupJob, PlatformReplier, ReplyTo},
    app::App,
    identity::{CustomerEmail, Identity, Uid, extract_emails},
    privacy::Requester,
    queue::{Job, JobContext, JobError, RunJob},
    source_limits::SourceLimits,
    store::EffectState,
};

/// A contact of the conversation, as Intercom named it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactId {
    pub id: String,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// What the webhook (or the inbox app) enqueues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationJob {
    pub workspace_id: String,
    pub conversation_id: String,
    pub contacts: Vec<ContactId>,
    /// Addresses the customer's text named (already read as a reader sees them).
    #[serde(default)]
    pub named: Vec<CustomerEmail>,
    /// The conversation's start (Unix seconds): the moment in question.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Who asked: `webhook`, or the admin who pressed "Add as note".
    #[serde(default)]
    pub asked_by: Option<String>,
}

impl Job for ConversationJob {
    const KIND: &'static str = "intercom.conversation";
}

/// Runs [`ConversationJob`]s.
pub struct ConversationHandler {
    pub app: Arc<App>,
    pub api: Arc<IntercomApi>,
    pub replier: Arc<IntercomReplier>,
    /// Each workspace's FullStory spend (`intercom.workspace_lookups_per_minute`), shared with the
    /// inbox app.
    pub workspaces: Arc<SourceLimits>,
}

#[async_trait]
impl RunJob for ConversationHandler {
    type Job = ConversationJob;

    async fn run(&self, job: &JobContext, payload: ConversationJob) -> Result<(), JobError> {
        let config = &self.app.config;
        let (identities, not_read) = self.identities(&payload).await?;
        if identities.is_empty() {
            tracing::info!(
                conversation = %payload.conversation_id,
                "no contact email or external id; nothing to look up"
            );
            return Ok(());
        }
        let spend = identities.len().min(config.identity.max_per_request);
        if let Some(after) = self
            .workspaces
            .delay(PLATFORM, &payload.workspace_id, spend)
        {
            return Err(JobError::Later {
                after,
                reason: format!(
                    "over intercom.workspace_lookups_per_minute for workspace {}",
                    payload.workspace_id
                ),
            });
        }
        let target = Target {
            conversation_id: payload.conversation_id.clone(),
        };
        let lookup = LookupJob {
            identities,
            around: payload
                .created_at
                .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)),
            summary: config.intercom.auto_summary,
            digest: None,
            requester: requester(&payload),
            reply: ReplyTo::new(&target),
        };
        let request = lookup.to_request(&self.app);
        if not_read > 0 {
            tracing::info!(
                conversation = %payload.conversation_id,
                not_read,
                "contacts past identity.max_per_request were not read"
            );
        }
        let to = answer::To::new(self.replier.as_ref(), target);
        answer::run_lookup(&self.app, &to, job, &lookup, request).await
    }

    async fn on_dead(&self, job: &JobContext, payload: Option<ConversationJob>, error: &str) {
        if let Err(error) = self.last_note(job, payload, answer::gave_up(error)).await {
            tracing::warn!(%error, "could not put the failure note on the conversation");
        }
    }

    async fn on_cancel(
        &self,
        job: &JobContext,
        payload: Option<ConversationJob>,
    ) -> Result<(), JobError> {
        self.last_note(job, payload, answer::CANCELLED).await
    }
}

/// Who asked, for the audit: the workspace, the webhook or the admin, about the conversation.
pub fn requester(payload: &ConversationJob) -> Requester {
    Requester {
        platform: PLATFORM.into(),
        tenant: payload.workspace_id.clone(),
        user: payload.asked_by.clone().unwrap_or_else(|| "webhook".into()),
        place: Some(format!("conversation {}", payload.conversation_id)),
    }
}

impl ConversationHandler {
    /// The identities to look up (see the module docs), and how many contacts were not read.
    async fn identities(
        &self,
        payload: &ConversationJob,
    ) -> Result<(Vec<Identity>, usize), JobError> {
        let config = &self.app.config;
        let max = config.identity.max_per_request;
        let exclude = &config.identity.exclude_domains.0;
        let mut seen = HashSet::new();
        let mut identities = Vec::new();
        let mut add = |identity: Identity, identities: &mut Vec<Identity>| {
            if seen.insert(identity.clone()) {
                identities.push(identity);
            }
        };
        let mut read = 0;
        for contact in &payload.contacts {
            if identities.len() >= max {
                break;
            }
            read += 1;
            let found = self
                .api
                .contact(&contact.id)
                .await
                .map_err(|e| job_error(anyhow::Error::new(e).context("reading a contact")))?;
            if let Some(email) = found.email.as_deref() {
                for email in extract_emails(email, exclude) {
                    add(Identity::Email(email), &mut identities);
                }
            }
            let uid = found.external_id.or_else(|| contact.external_id.clone());
            if let Some(uid) = uid.as_deref().and_then(|u| Uid::parse(u).ok()) {
                add(Identity::Uid(uid), &mut identities);
            }
        }
        for named in &payload.named {
            // Read again against today's exclusions.
            for email in extract_emails(named.as_str(), exclude) {
                add(Identity::Email(email), &mut identities);
            }
        }
        Ok((identities, payload.contacts.len() - read))
    }

    /// The note a conversation gets when its job ends without an answer, unless the answer's note is on
    /// it already.
    async fn last_note(
        &self,
        job: &JobContext,
        payload: Option<ConversationJob>,
        message: &str,
    ) -> Result<(), JobError> {
        let Some(payload) = payload else {
            return Ok(());
        };
        if let Ok(Some(note)) = self.app.store.effect(job.id(), NOTE).await
            && note.state == EffectState::Done
        {
            return Ok(());
        }
        let answer = Answer::Failed {
            message: message.into(),
            reference: answer::reference(job),
        };
        let target = Target {
            conversation_id: payload.conversation_id,
        };
        self.replier.deliver(job, &target, answer).await
    }
}
