//! The ticket event in FullStory.
//!
//! With `zendesk.fullstory_event`, after the note the requester gets a FullStory server event
//! "Support Ticket Created" (`POST /v2/events`, `session.use_most_recent`), once per ticket (claim
//! `fullstory-event`) and once per job (ledger effect `fullstory-event`). The event names the
//! requester by `uid`: the requester's Zendesk `external_id` when set (the company's own user id, which
//! is what FullStory's uid usually is), else their email. A requester who was erased and asked to be
//! forgotten ([`crate::privacy::Tombstones`]) gets no event.

use async_trait::async_trait;
use serde_json::json;

use super::{
    api::{TicketWithUsers, User, ZendeskApi},
    reply::ZendeskReplier,
};
use crate::{
    fullstory::{
        FullStoryApi, FullStoryError,
        server_api::{EventTarget, ServerEvent},
    },
    identity::{CustomerEmail, Identity},
    privacy::Tombstones,
    queue::{Effect, JobContext, JobError},
};

/// The FullStory event's name.
pub const TICKET_EVENT: &str = "Support Ticket Created";

/// The claim (per ticket) and ledger effect (per job) of the ticket event.
pub const EVENT_ITEM: &str = "fullstory-event";

/// Sends the ticket event for `ticket`'s requester, once per ticket and job (see the module docs).
pub(super) async fn send_ticket_event(
    fullstory: &FullStoryApi,
    tombstones: &Tombstones,
    api: &ZendeskApi,
    replier: &ZendeskReplier,
    job: &JobContext,
    ticket: &TicketWithUsers,
    requester: Option<&User>,
) -> Result<(), JobError> {
    let id = ticket.ticket.id;
    let Some(uid) = requester.and_then(fullstory_uid) else {
        tracing::info!(ticket = id, "no requester to send the FullStory event for");
        return Ok(());
    };
    if let Some(user) = requester
        && forgotten(tombstones, user).await
    {
        tracing::info!(
            ticket = id,
            "the requester asked to be forgotten: no FullStory event"
        );
        return Ok(());
    }
    let claimed = replier.claim(job, id, &[EVENT_ITEM.to_owned()]).await?;
    if !claimed.contains(EVENT_ITEM) {
        return Ok(());
    }
    let effect = EventEffect {
        fullstory,
        event: ticket_event(ticket, uid, &api.ticket_link(id)),
    };
    match job.effects().once(EVENT_ITEM, &effect).await {
        Ok(_) => Ok(()),
        Err(error) => match error.downcast_ref::<FullStoryError>() {
            Some(fs) if !fs.is_transient() => {
                tracing::warn!(ticket = id, error = %fs, "FullStory refused the ticket event");
                Ok(())
            }
            _ => Err(JobError::Retry(error)),
        },
    }
}

/// Whether `user` (a ticket's requester) was erased and asked to be forgotten ([`Tombstones`]):
/// nothing about them is sent to FullStory, by a ticket's job or by `zendesk backfill`.
pub async fn forgotten(tombstones: &Tombstones, user: &User) -> bool {
    let Some(email) = user
        .email
        .as_deref()
        .and_then(|e| CustomerEmail::parse(e).ok())
    else {
        return false;
    };
    tombstones
        .forgotten(&[Identity::Email(email)])
        .await
        .first()
        .copied()
        .unwrap_or(false)
}

/// How FullStory knows a Zendesk user: their `external_id` (the company's own user id) when set, else
/// their email in normal form. Staff are never named.
pub fn fullstory_uid(user: &User) -> Option<String> {
    if user.is_staff() {
        return None;
    }
    user.external_id
        .as_deref()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            let email = CustomerEmail::parse(user.email.as_deref()?).ok()?;
            Some(email.into_inner())
        })
}

/// "Support Ticket Created" for the requester named by `uid`, at the ticket's creation.
pub fn ticket_event(ticket: &TicketWithUsers, uid: String, link: &str) -> ServerEvent {
    ServerEvent {
        name: TICKET_EVENT.into(),
        timestamp: ticket.ticket.created(),
        target: EventTarget::MostRecentSessionOf {
            uid: Some(uid),
            user_id: None,
        },
        properties: json!({
            "ticket_id": ticket.ticket.id,
            "subject": ticket.ticket.subject.clone().unwrap_or_default(),
            "link": link,
        }),
    }
}

/// The ticket event, sent once per job.
struct EventEffect<'a> {
    fullstory: &'a FullStoryApi,
    event: ServerEvent,
}

#[async_trait]
impl Effect for EventEffect<'_> {
    async fn find_existing(&self, _marker: &str) -> anyhow::Result<Option<String>> {
        // FullStory cannot be searched for an event: a worker that died between sending and recording
        // sends it again (the one window where the event may arrive twice).
        Ok(None)
    }

    async fn perform(&self, _marker: &str) -> anyhow::Result<String> {
        self.fullstory.create_event(&self.event).await?;
        Ok("sent".into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_ticket_event_names_the_ticket_subject_and_link() {
        let ticket = TicketWithUsers {
            ticket: super::super::api::Ticket {
                id: 42,
                subject: Some("Cannot pay".into()),
                created_at: Some("2026-11-20T14:10:00Z".into()),
                ..Default::default()
            },
            users: vec![],
        };
        let event = ticket_event(
            &ticket,
            "u-77".into(),
            "https://acme.zendesk.com/agent/tickets/42",
        );
        assert_eq!(
            event.to_json(),
            json!({
                "name": "Support Ticket Created",
                "timestamp": "2026-11-20T14:10:00.000Z",
                "session": {"use_most_recent": true},
                "user": {"uid": "u-77"},
                "properties": {
                    "ticket_id": 42,
                    "subject": "Cannot pay",
                    "link": "https://acme.zendesk.com/agent/tickets/42"
                }
            })
        );
    }
}
