//! How answers reach a Zendesk ticket: one internal note, through the effect ledger, never showing a
//! session the ticket already shows. Which answer gets which note is the desks' shared rule
//! ([`crate::adapters::desk_note`], shared with Intercom); what is Zendesk's own is below: the safe
//! update, the tag, and where a lost note is looked for.
//!
//! - **Never the same session twice** ([`crate::answer::posted`], shared with Intercom). Before rendering,
//!   the job *claims* the sessions it found in the
//!   ticket's scope (`zendesk:ticket:{id}`, items `session:{id}`, [`SqlStore::claim_items`]) and the note
//!   lists only the sessions it now holds. Claiming before posting (rather than recording after) means
//!   two jobs for one ticket running at the same time split the sessions instead of both posting them;
//!   a retry of the same job holds the same claims, so it posts them. The empty note (`empty-note`) and
//!   the failure note (`failure-note`) are claimed the same way: at most one of each per ticket.
//! - **Once in effect.** The note is the ledger effect `note`: its HTML ends with the ledger's reference
//!   (`rd-…`); a worker that died between the `PUT` and recording it finds the reference in the ticket's
//!   comments ([`NoteEffect::find_existing`]) and does not post again. The `PUT` is never repeated by
//!   the transport on a 5xx or timeout ([`crate::outbound::Upstream::send_unrepeatable`]).
//! - **Safe update.** The note is sent with `safe_update` and the ticket's `updated_at` as
//!   `updated_stamp`; a 409 (someone changed the ticket meanwhile) re-reads the ticket and sends again
//!   with the fresh stamp, up to [`MAX_CONFLICTS`] times, then the job is retried later.
//! - Then the tag (`zendesk.tag`), ledger effect `tag`, with `PUT …/tags` (adds; `POST` would replace).
//!   Only a note with sessions, or the empty note, tags the ticket.
//! - An erasure's receipt ([`Answer::Erasure`]) is a note of its own (`receipt`, or `receipt-dead` when
//!   the queue gave up); a pending one posts nothing, for the same reason as a delay.
//! - **Refused.** When Zendesk refuses a note (422), the refusal is logged and counted and a plain-text
//!   note with the replay links goes instead, as the effect `<name>-plain`
//!   ([`crate::adapters::refusal::once_or_fallback`]); if that is refused too (a ticket at its 5,000
//!   comments), the job ends naming Zendesk's refusal.
//! - [`Answer::Delayed`] posts nothing: a note cannot be replaced later, and a "your answer is late"
//!   note followed by the answer would only clutter the ticket.

use std::{collections::HashSet, sync::Arc};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::api::{NoteAdded, NoteText, ZendeskApi, ZendeskError};
use crate::{
    adapters::{
        desk_note::{self, Desk, NoteBody},
        refusal::once_or_fallback,
    },
    answer::{Answer, PlatformReplier, ReplyTarget, posted::Place},
    clock::Clock,
    config::ZendeskConfig,
    queue::{Effect, JobContext, JobError},
    store::SqlStore,
};

/// How often a note is re-sent after a 409 within one attempt.
pub const MAX_CONFLICTS: u32 = 3;

/// Ledger effect names: the note's is the desks' ([`desk_note::NOTE`]), the tag is Zendesk's own.
pub use crate::adapters::desk_note::NOTE;
const TAG: &str = "tag";

/// Where a Zendesk answer goes: the job's `ReplyTo` target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub ticket_id: u64,
    /// The ticket's `updated_at` when the job read it: the first `updated_stamp` to try.
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl ReplyTarget for Target {
    const PLATFORM: &'static str = super::PLATFORM;
}

/// The claim scope of one ticket.
pub fn ticket_scope(ticket_id: u64) -> String {
    format!("zendesk:ticket:{ticket_id}")
}

/// Turns a failed step into the queue's decision: a lasting Zendesk or FullStory refusal will not get
/// better by itself (dead at once, an admin replays it after fixing the cause); anything else is retried.
pub fn job_error(error: anyhow::Error) -> JobError {
    desk_note::job_error(error, ZendeskError::is_transient)
}

/// Posts answers on Zendesk tickets.
pub struct ZendeskReplier {
    api: Arc<ZendeskApi>,
    store: Arc<SqlStore>,
    clock: Clock,
    note_when_empty: bool,
    tag: String,
    max_delay: std::time::Duration,
}

impl ZendeskReplier {
    pub fn new(
        api: Arc<ZendeskApi>,
        store: Arc<SqlStore>,
        clock: Clock,
        config: &ZendeskConfig,
    ) -> Self {
        Self {
            api,
            store,
            clock,
            note_when_empty: config.note_when_empty,
            tag: config.tag.trim().to_owned(),
            max_delay: config.max_delay.0,
        }
    }

    /// The ticket as a place whose claims say what it shows ([`crate::answer::posted`]).
    pub fn place(&self, ticket_id: u64) -> Place<'_> {
        Place::new(&self.store, ticket_scope(ticket_id), self.clock.now())
    }

    /// Claims `items` in the ticket's scope for this job; the ones it now holds.
    pub async fn claim(
        &self,
        job: &JobContext,
        ticket_id: u64,
        items: &[String],
    ) -> Result<HashSet<String>, JobError> {
        self.place(ticket_id).claim(job, items).await
    }
}

#[async_trait]
impl PlatformReplier for ZendeskReplier {
    type Target = Target;

    /// `zendesk.max_delay` after the ticket's delivery (or after an operator's `jobs retry`): a
    /// note may come late, but a ticket should not get its replays a week after it was answered.
    fn deadline(
        &self,
        job: &JobContext,
        _target: &Target,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        desk_note::deadline(job, self.max_delay)
    }

    async fn deliver(
        &self,
        job: &JobContext,
        target: &Target,
        answer: Answer<'_>,
    ) -> Result<(), JobError> {
        let ticket = OnTicket {
            replier: self,
            target,
        };
        desk_note::deliver(&ticket, self.note_when_empty, job, answer).await
    }
}

/// One ticket, as the desks' shared delivery posts to it ([`desk_note::Desk`]).
struct OnTicket<'a> {
    replier: &'a ZendeskReplier,
    target: &'a Target,
}

#[async_trait]
impl Desk for OnTicket<'_> {
    fn place(&self) -> Place<'_> {
        self.replier.place(self.target.ticket_id)
    }

    /// Posts `body` once (ledger effect `name`); if Zendesk refuses it, the plain note of `plain`.
    async fn post(
        &self,
        job: &JobContext,
        name: &'static str,
        body: NoteBody<'_>,
        plain: &[String],
    ) -> Result<(), JobError> {
        let effect = |body| NoteEffect {
            api: &self.replier.api,
            ticket_id: self.target.ticket_id,
            stamp: self.target.updated_at.clone(),
            body,
        };
        let id = once_or_fallback::<ZendeskError>(
            job,
            name,
            &effect(body),
            &effect(NoteBody::Plain(plain)),
        )
        .await
        .map_err(job_error)?;
        tracing::info!(ticket = self.target.ticket_id, note = %id, "internal note on the ticket");
        Ok(())
    }

    /// The configured tag (ledger effect `tag`), after a note with sessions or the empty note.
    async fn after_note(&self, job: &JobContext) -> Result<(), JobError> {
        let effect = TagEffect {
            api: &self.replier.api,
            ticket_id: self.target.ticket_id,
            tag: &self.replier.tag,
        };
        job.effects()
            .once(TAG, &effect)
            .await
            .map(drop)
            .map_err(job_error)
    }
}

/// One internal note on one ticket.
struct NoteEffect<'a> {
    api: &'a ZendeskApi,
    ticket_id: u64,
    stamp: Option<String>,
    body: NoteBody<'a>,
}

#[async_trait]
impl Effect for NoteEffect<'_> {
    async fn find_existing(&self, marker: &str) -> anyhow::Result<Option<String>> {
        let comments = self.api.comments(self.ticket_id).await?;
        Ok(comments
            .comments
            .iter()
            .find(|c| c.contains(marker))
            .map(|c| format!("comment:{}", c.id)))
    }

    async fn perform(&self, marker: &str) -> anyhow::Result<String> {
        let (is_html, text) = self.body.text(marker);
        let text = if is_html {
            NoteText::Html(&text)
        } else {
            NoteText::Plain(&text)
        };
        let mut stamp = match &self.stamp {
            Some(stamp) => Some(stamp.clone()),
            None => self.api.ticket(self.ticket_id).await?.ticket.updated_at,
        };
        for _ in 0..MAX_CONFLICTS {
            match self
                .api
                .add_internal_note(self.ticket_id, text, stamp.as_deref())
                .await
            {
                Ok(added) => return Ok(external_id(self.ticket_id, &added)),
                Err(ZendeskError::Conflict) => {
                    tracing::info!(
                        ticket = self.ticket_id,
                        "the ticket changed meanwhile (409); re-reading it for a fresh stamp"
                    );
                    stamp = self.api.ticket(self.ticket_id).await?.ticket.updated_at;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ZendeskError::Conflict.into())
    }
}

fn external_id(ticket_id: u64, added: &NoteAdded) -> String {
    match (added.comment_id, added.audit_id) {
        (Some(comment), _) => format!("comment:{comment}"),
        (None, Some(audit)) => format!("audit:{audit}"),
        (None, None) => format!("ticket:{ticket_id}"),
    }
}

/// The configured tag on one ticket.
struct TagEffect<'a> {
    api: &'a ZendeskApi,
    ticket_id: u64,
    tag: &'a str,
}

#[async_trait]
impl Effect for TagEffect<'_> {
    async fn find_existing(&self, _marker: &str) -> anyhow::Result<Option<String>> {
        // Adding a tag the ticket already has changes nothing, so doing it again is the check.
        Ok(None)
    }

    async fn perform(&self, _marker: &str) -> anyhow::Result<String> {
        self.api.add_tags(self.ticket_id, &[self.tag]).await?;
        Ok(format!("tag:{}", self.tag))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fullstory::FullStoryError;

    #[test]
    fn lasting_refusals_are_permanent_and_passing_ones_are_retried() {
        assert!(matches!(
            job_error(
                anyhow::Error::new(ZendeskError::NotFound { what: "ticket" }).context("reading")
            ),
            JobError::Permanent(_)
        ));
        assert!(matches!(
            job_error(anyhow::Error::new(ZendeskError::Upstream(
                crate::outbound::UpstreamError::Timeout
            ))),
            JobError::Retry(_)
        ));
        assert!(matches!(
            job_error(anyhow::Error::new(FullStoryError::Unauthorized)),
            JobError::Permanent(_)
        ));
        assert!(matches!(
            job_error(anyhow::anyhow!("database is locked")),
            JobError::Retry(_)
        ));
    }
}
