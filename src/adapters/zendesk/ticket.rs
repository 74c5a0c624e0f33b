//! The `zendesk.ticket` job: a webhook told us a ticket id; this reads the ticket, decides whose
//! sessions to look up, runs the core lookup and hands the result to [`ZendeskReplier`].
//!
//! Why a job kind of its own rather than the shared `lookup` job: at enqueue time we often know only the
//! ticket id (the webhook must be answered before any upstream is called, and its body may be broken),
//! so the identities are resolved here, in the worker. The lookup itself is the shared
//! [`LookupJob`] run by [`crate::lookup`], answered through the [`crate::answer::Replier`] contract.
//!
//! Failure policy (deliberately not the shared handler's): a FullStory failure that may pass (429, 5xx,
//! timeout, its circuit breaker open) makes the job wait for FullStory quietly, without spending attempts
//! and with no "delayed" note (a note cannot be replaced later), for at most `zendesk.max_delay`; past
//! it, one note says it took too long and the job ends `expired` ([`answer::wait_for_fullstory`]); a
//! lasting one posts one short failure note on the ticket and ends; a Zendesk refusal that will not pass (401,
//! 403, 404) makes the job dead at once, to be replayed with `replaydesk jobs retry` once fixed. When
//! the queue gives up, the ticket gets the failure note unless its replays note is already there.
//!
//! Whom it looks up: [`super::customers`]. A ticket with the erasure tag is an erasure instead
//! ([`super::erasure_tag`]); a ticket with the escalation tag is also escalated to a tracker
//! ([`super::escalate_tag`]); after the note, the optional FullStory event ([`super::ticket_event`]).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    PLATFORM,
    api::ZendeskApi,
    customers::{Customers, customers},
    erasure_tag::{Tagged, erase_requester, erasure_tag},
    escalate_tag::{escalate_tag, escalate_ticket},
    reply::{self, Target, ZendeskReplier},
    ticket_event::send_ticket_event,
};
use crate::{
    answer::{self, Answer, LookupJob, PlatformReplier, ReplyTo},
    app::App,
    privacy::Requester,
    queue::{Job, JobContext, JobError, RunJob},
    source_limits::SourceLimits,
    store::EffectState,
};

/// What the webhook handler enqueues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketJob {
    pub ticket_id: u64,
    #[serde(default)]
    pub account_id: Option<String>,
    /// From the webhook body, when its template sent them.
    #[serde(default)]
    pub requester_email: Option<String>,
    #[serde(default)]
    pub latest_comment: Option<String>,
}

impl Job for TicketJob {
    const KIND: &'static str = "zendesk.ticket";
}

/// Runs [`TicketJob`]s.
pub struct TicketHandler {
    pub app: Arc<App>,
    pub api: Arc<ZendeskApi>,
    pub replier: Arc<ZendeskReplier>,
    /// Each account's FullStory spend: `zendesk.account_lookups_per_minute` identities a minute; a
    /// ticket past it is delayed ([`JobError::Later`]), never refused (see [`crate::source_limits`]).
    pub accounts: Arc<SourceLimits>,
}

#[async_trait]
impl RunJob for TicketHandler {
    type Job = TicketJob;

    async fn run(&self, job: &JobContext, payload: TicketJob) -> Result<(), JobError> {
        let id = payload.ticket_id;
        let ticket =
            self.api.ticket(id).await.map_err(|e| {
                reply::job_error(anyhow::Error::new(e).context("reading the ticket"))
            })?;
        if let Some(tag) = erasure_tag(&self.app.config, &ticket) {
            let tagged = Tagged {
                ticket: &ticket,
                tag,
                account: payload.account_id.as_deref(),
                requester_email: payload.requester_email.as_deref(),
            };
            return erase_requester(&self.app, &self.api, &self.replier, job, tagged).await;
        }
        if let Some(tag) = escalate_tag(&self.app.config, &ticket) {
            escalate_ticket(
                &self.app,
                &self.api,
                &ticket,
                tag,
                payload.account_id.as_deref(),
                payload.requester_email.as_deref(),
            )
            .await?;
        }
        let Customers {
            requester,
            identities,
            max_identities,
        } = customers(
            &self.api,
            &self.app.config,
            &ticket,
            payload.requester_email.as_deref(),
            payload.latest_comment.as_deref(),
        )
        .await
        .map_err(reply::job_error)?;
        let config = &self.app.config;
        if identities.is_empty() {
            tracing::info!(
                ticket = id,
                "no customer email on the ticket; nothing to look up"
            );
        } else {
            let target = Target {
                ticket_id: id,
                updated_at: ticket.ticket.updated_at.clone(),
            };
            let lookup = LookupJob {
                identities,
                around: ticket.ticket.created(),
                summary: config.zendesk.auto_summary,
                digest: None,
                requester: Requester {
                    platform: PLATFORM.into(),
                    tenant: payload.account_id.clone().unwrap_or_default(),
                    user: "trigger".into(),
                    place: Some(format!("ticket {id}")),
                },
                reply: ReplyTo::new(&target),
            };
            let mut request = lookup.to_request(&self.app);
            request.max_identities = max_identities;
            // Keyed like the sidebar's lookups (the account's host), so one account has one allowance.
            let account = super::api::account_host(&config.zendesk)
                .or_else(|| payload.account_id.clone())
                .unwrap_or_default();
            let spend = lookup.identities.len().min(max_identities);
            if let Some(after) = self.accounts.delay(PLATFORM, &account, spend) {
                // Zendesk does not resend after our 2xx: the ticket waits, it is never dropped.
                return Err(JobError::Later {
                    after,
                    reason: format!(
                        "over zendesk.account_lookups_per_minute for account {account}"
                    ),
                });
            }
            // The one shared path: audit, failure policy and wording as on every platform, answered at
            // the ticket's typed target.
            let to = answer::To::new(self.replier.as_ref(), target);
            answer::run_lookup(&self.app, &to, job, &lookup, request).await?;
        }
        if config.zendesk.fullstory_event {
            send_ticket_event(
                &self.app.fullstory,
                &self.app.tombstones,
                &self.api,
                &self.replier,
                job,
                &ticket,
                requester.as_ref(),
            )
            .await?;
        }
        Ok(())
    }

    async fn on_dead(&self, job: &JobContext, payload: Option<TicketJob>, error: &str) {
        let ticket = payload.as_ref().map(|p| p.ticket_id);
        if let Err(error) = self.last_note(job, payload, answer::gave_up(error)).await {
            tracing::warn!(?ticket, %error, "could not put the failure note on the ticket");
        }
    }

    async fn on_cancel(
        &self,
        job: &JobContext,
        payload: Option<TicketJob>,
    ) -> Result<(), JobError> {
        self.last_note(job, payload, answer::CANCELLED).await
    }
}

impl TicketHandler {
    /// The note a ticket gets when its job ends without an answer (`message`, with the job's
    /// reference), unless the answer's note is on it already; nothing when the payload is unreadable.
    async fn last_note(
        &self,
        job: &JobContext,
        payload: Option<TicketJob>,
        message: &str,
    ) -> Result<(), JobError> {
        let Some(payload) = payload else {
            return Ok(());
        };
        if let Ok(Some(note)) = self.app.store.effect(job.id(), reply::NOTE).await
            && note.state == EffectState::Done
        {
            return Ok(());
        }
        let target = Target {
            ticket_id: payload.ticket_id,
            updated_at: None,
        };
        let answer = Answer::Failed {
            message: message.into(),
            reference: answer::reference(job),
        };
        self.replier.deliver(job, &target, answer).await
    }
}
