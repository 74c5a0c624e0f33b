//! **Erasure tag.** A ticket carrying `privacy.zendesk_erasure_tag` (on the ticket as read over
//! Zendesk's API: never from the webhook body, which free text can forge) is an erasure request for its requester, and only that: no lookup, no replays
//! note, no FullStory event (all three would copy the very data the customer asked us to delete). The
//! requester is erased by the shared `privacy.erase` job (the one `replaydesk forget` runs), once per
//! ticket, and the ticket gets one internal note with its receipt ([`erase_requester`], called by the
//! ticket job in place of its lookup).

use super::{
    PLATFORM,
    api::{TicketWithUsers, ZendeskApi},
    customers::requester_address,
    reply::{self, Target, ZendeskReplier},
};
use crate::{
    answer::{self, Answer, PlatformReplier, ReplyTo},
    app::App,
    erasure::ErasureJob,
    privacy::Requester,
    queue::{JobContext, JobError},
    store::NewJob,
};

/// A ticket that carries the erasure tag, as the ticket job found it.
pub(super) struct Tagged<'a> {
    pub ticket: &'a TicketWithUsers,
    /// The tag, as configured.
    pub tag: &'a str,
    /// The webhook's account id.
    pub account: Option<&'a str>,
    /// The address the webhook's body named (used when the requester read over the API has none).
    pub requester_email: Option<&'a str>,
}

/// The claim (per ticket) that makes erasure happen once per ticket.
pub const ERASURE_ITEM: &str = "erasure";

/// The configured erasure tag, when the ticket as read over Zendesk's API carries it: never from the
/// webhook body, whose free text can forge a tag (see [`super::wire`]). Zendesk keeps tags in lower
/// case; the comparison ignores case and surrounding space anyway.
pub fn erasure_tag<'c>(
    config: &'c crate::config::Config,
    ticket: &TicketWithUsers,
) -> Option<&'c str> {
    carries(config.privacy.zendesk_erasure_tag.as_deref(), ticket)
}

/// `tag` (a configured one, trimmed; `None` or empty: no tag), when the ticket as read over Zendesk's
/// API carries it (case and surrounding space ignored): the erasure tag and the escalation tag alike.
pub fn carries<'c>(tag: Option<&'c str>, ticket: &TicketWithUsers) -> Option<&'c str> {
    let tag = tag.map(str::trim).filter(|t| !t.is_empty())?;
    ticket
        .ticket
        .tags
        .iter()
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
        .then_some(tag)
}

/// The ticket carries the erasure tag: its requester (only the requester: never a cc'd address, never
/// staff) is erased by the shared erasure job, whose receipt comes back as an internal note. This is
/// instead of the replays note: looking the customer up and posting their sessions is the opposite
/// of what they asked for. Once per ticket: the claim [`ERASURE_ITEM`] in the ticket's scope, and
/// the erasure's delivery key is the ticket, so a retried job or a repeated trigger enqueues nothing
/// new. The erasure is written straight to the store (a handler holds no queue handle), so an idle
/// worker picks it up at its next poll (`queue.poll_interval`), or at once on PostgreSQL's NOTIFY.
pub(super) async fn erase_requester(
    app: &App,
    api: &ZendeskApi,
    replier: &ZendeskReplier,
    job: &JobContext,
    asked: Tagged<'_>,
) -> Result<(), JobError> {
    let Tagged {
        ticket,
        tag,
        account,
        requester_email,
    } = asked;
    let id = ticket.ticket.id;
    let claimed = replier.claim(job, id, &[ERASURE_ITEM.to_owned()]).await?;
    if !claimed.contains(ERASURE_ITEM) {
        tracing::info!(
            ticket = id,
            "the ticket's requester is already being erased"
        );
        return Ok(());
    }
    let target = Target {
        ticket_id: id,
        updated_at: None,
    };
    let email = requester_address(api, ticket, requester_email)
        .await
        .map_err(reply::job_error)?;
    let Some(email) = email else {
        tracing::info!(
            ticket = id,
            "erasure tag, but the requester has no customer email"
        );
        let answer = Answer::Failed {
            message: format!(
                "The ticket is tagged {tag}, but its requester has no customer email address \
                 replaydesk could erase. Nothing was erased."
            ),
            reference: answer::reference(job),
        };
        return replier.deliver(job, &target, answer).await;
    };
    let erasure = ErasureJob {
        email,
        requester: Requester {
            platform: PLATFORM.into(),
            tenant: account.unwrap_or_default().to_owned(),
            user: format!("tag:{tag}"),
            place: Some(format!("ticket {id}")),
        },
        reply: Some(ReplyTo::new(&target)),
    };
    let new_job = NewJob::of(&erasure).map_err(JobError::Retry)?;
    let enqueued = app
        .store
        .enqueue(&erasure_key(id), new_job, app.clock.now())
        .await
        .map_err(JobError::Retry)?;
    tracing::info!(
        ticket = id,
        erasure_job = enqueued.job_id,
        duplicate = enqueued.duplicate,
        "erasure of the ticket's requester queued"
    );
    Ok(())
}

/// The delivery key of a ticket's erasure: one per ticket.
pub fn erasure_key(ticket_id: u64) -> String {
    format!("{PLATFORM}:erase:ticket:{ticket_id}")
}
