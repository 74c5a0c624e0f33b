//! **Escalation tag** (issue 25). A ticket carrying `zendesk.escalate_tag` (on the ticket as read over
//! Zendesk's API: never from the webhook body, whose free text can forge a tag) is escalated to a
//! tracker, for teams that work from macros and triggers: its requester's likely session around the
//! ticket's creation, through the shared escalation job ([`crate::escalate`]), to the tracker that is on
//! (Linear first when both are). Once per ticket: the job's delivery key is the ticket, so a retried
//! webhook or a re-sent tag enqueues nothing new, and the escalation itself is once per ticket and
//! session. The ticket gets one internal note, "Escalated to LIN-123 (Linear)" with the link, from the
//! Zendesk replier ([`super::reply`]). This is besides the replays note, not instead of it.

use super::{
    PLATFORM,
    api::{TicketWithUsers, ZendeskApi},
    customers::requester_address,
    erasure_tag::carries,
    reply::{self, Target},
};
use crate::{
    answer::ReplyTo,
    app::App,
    config::ZendeskConfig,
    escalate::{EscalateJob, Source, Tracker},
    privacy::Requester,
    queue::JobError,
    store::NewJob,
};

/// The configured escalation tag, when the ticket as read over Zendesk's API carries it.
pub fn escalate_tag<'c>(
    config: &'c crate::config::Config,
    ticket: &TicketWithUsers,
) -> Option<&'c str> {
    carries(config.zendesk.escalate_tag.as_deref(), ticket)
}

/// Where a ticket's escalations come from: the ticket, as a stable key (the account's host, as the
/// tag and the sidebar both know it, and the ticket id) and its agent link.
pub fn ticket_source(config: &ZendeskConfig, ticket_id: u64) -> Source {
    let base = super::api::base_url(config).unwrap_or_default();
    Source {
        key: format!(
            "{PLATFORM}:{}:ticket:{ticket_id}",
            super::api::account_host(config).unwrap_or_default()
        ),
        label: format!("Zendesk ticket #{ticket_id}"),
        url: Some(format!("{base}/agent/tickets/{ticket_id}")),
    }
}

/// The ticket carries the escalation tag: its requester's session is escalated (see the module docs).
pub(super) async fn escalate_ticket(
    app: &App,
    api: &ZendeskApi,
    ticket: &TicketWithUsers,
    tag: &str,
    account: Option<&str>,
    requester_email: Option<&str>,
) -> Result<(), JobError> {
    let id = ticket.ticket.id;
    let Some(tracker) = Tracker::ALL.into_iter().find(|t| t.enabled(&app.config)) else {
        tracing::warn!(
            ticket = id,
            "the ticket carries zendesk.escalate_tag, but neither [linear] nor [jira] is configured"
        );
        return Ok(());
    };
    let Some(customer) = requester_address(api, ticket, requester_email)
        .await
        .map_err(reply::job_error)?
    else {
        tracing::info!(
            ticket = id,
            "escalation tag, but the requester has no customer email"
        );
        return Ok(());
    };
    let requester = Requester {
        platform: PLATFORM.into(),
        tenant: account.unwrap_or_default().to_owned(),
        user: format!("tag:{tag}"),
        place: Some(format!("ticket {id}")),
    };
    let mut escalation = EscalateJob::new(
        customer,
        tracker,
        ticket_source(&app.config.zendesk, id),
        None,
        requester,
    );
    escalation.around = ticket.ticket.created();
    escalation.title = ticket.ticket.subject.clone();
    escalation.requester_name = Some(format!("a Zendesk trigger (tag {tag})"));
    escalation.reply = Some(ReplyTo::new(&Target {
        ticket_id: id,
        updated_at: None,
    }));
    let new_job = NewJob::of(&escalation).map_err(JobError::Retry)?;
    let enqueued = app
        .store
        .enqueue(
            &format!("{PLATFORM}:escalate:ticket:{id}"),
            new_job,
            app.clock.now(),
        )
        .await
        .map_err(JobError::Retry)?;
    tracing::info!(
        ticket = id,
        escalation_job = enqueued.job_id,
        duplicate = enqueued.duplicate,
        "escalation of the ticket queued"
    );
    Ok(())
}
