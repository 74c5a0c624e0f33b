//! How answers reach a Zendesk ticket: one internal note, through the effect ledger, never showing a
//! session the ticket already shows.
//!
//! - **Never the same session twice.** Before rendering, the job *claims* the sessions it found in the
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

use super::{
    api::{NoteAdded, NoteText, ZendeskApi, ZendeskError},
    render,
};
use crate::{
    adapters::refusal::once_or_fallback,
    answer::{Answer, LookupJob, PlatformReplier, ReplyTarget},
    clock::Clock,
    config::ZendeskConfig,
    fullstory::FullStoryError,
    identity::CustomerEmail,
    lookup::{IdentityResult, LookupResult, SummaryOutcome},
    privacy::ErasureReceipt,
    queue::{Effect, JobContext, JobError},
    store::SqlStore,
};

/// How often a note is re-sent after a 409 within one attempt.
pub const MAX_CONFLICTS: u32 = 3;

/// Ledger effect names.
pub const NOTE: &str = "note";
const TAG: &str = "tag";
const FAILED: &str = "failed";
const ESCALATED: &str = "escalated";
const SUMMARY: &str = "summary";
const RECEIPT: &str = "receipt";
const RECEIPT_DEAD: &str = "receipt-dead";
const RECEIPT_CANCELLED: &str = "receipt-cancelled";

/// Claim items in a ticket's scope.
const EMPTY_NOTE: &str = "empty-note";
const FAILURE_NOTE: &str = "failure-note";

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

/// The claim owner of one job.
pub fn job_owner(job: &JobContext) -> String {
    format!("job:{}", job.id())
}

fn session_item(id: &str) -> String {
    format!("session:{id}")
}

/// Turns a failed step into the queue's decision: a lasting Zendesk or FullStory refusal will not get
/// better by itself (dead at once, an admin replays it after fixing the cause); anything else is retried.
pub fn job_error(error: anyhow::Error) -> JobError {
    let lasting = error
        .downcast_ref::<ZendeskError>()
        .map(|e| !e.is_transient())
        .or_else(|| {
            error
                .downcast_ref::<FullStoryError>()
                .map(|e| !e.is_transient())
        })
        .unwrap_or(false);
    if lasting {
        JobError::Permanent(error)
    } else {
        JobError::Retry(error)
    }
}

/// The sessions of `result` that are in `new`, grouped as before. The digest and summary stay with a
/// group only when its likely session stays (they describe that session).
pub fn only_new(result: &LookupResult, new: &HashSet<String>) -> LookupResult {
    let identities = result
        .identities
        .iter()
        .filter_map(|group| {
            let sessions: Vec<_> = group
                .sessions
                .iter()
                .filter(|s| new.contains(s.id.as_str()))
                .cloned()
                .collect();
            if sessions.is_empty() {
                return None;
            }
            let keeps_likely = sessions.iter().any(|s| s.likely);
            let no_likely = group.likely().is_none();
            Some(IdentityResult {
                identity: group.identity.clone(),
                forgotten: group.forgotten,
                sessions,
                digest: if keeps_likely {
                    group.digest.clone()
                } else {
                    None
                },
                summary: if keeps_likely || no_likely {
                    group.summary.clone()
                } else {
                    None
                },
            })
        })
        .collect();
    LookupResult {
        around: result.around,
        lookback_days: result.lookback_days,
        identities,
        not_looked_up: result.not_looked_up,
    }
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

    /// Claims `items` in the ticket's scope for this job; the ones it now holds.
    pub async fn claim(
        &self,
        job: &JobContext,
        ticket_id: u64,
        items: &[String],
    ) -> Result<HashSet<String>, JobError> {
        let owner = job_owner(job);
        let claims = self
            .store
            .claim_items(
                &ticket_scope(ticket_id),
                &owner,
                items,
                None,
                self.clock.now(),
            )
            .await
            .map_err(JobError::Retry)?;
        Ok(claims
            .into_iter()
            .filter(|c| c.owner == owner)
            .map(|c| c.item)
            .collect())
    }

    /// Posts `body` once (ledger effect `name`); if Zendesk refuses it, the plain note of `plain`.
    async fn post(
        &self,
        job: &JobContext,
        target: &Target,
        name: &'static str,
        body: NoteBody<'_>,
        plain: &[String],
    ) -> Result<(), JobError> {
        let effect = |body| NoteEffect {
            api: &self.api,
            ticket_id: target.ticket_id,
            stamp: target.updated_at.clone(),
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
        tracing::info!(ticket = target.ticket_id, note = %id, "internal note on the ticket");
        Ok(())
    }

    async fn tag(&self, job: &JobContext, ticket_id: u64) -> Result<(), JobError> {
        let effect = TagEffect {
            api: &self.api,
            ticket_id,
            tag: &self.tag,
        };
        job.effects()
            .once(TAG, &effect)
            .await
            .map(drop)
            .map_err(job_error)
    }

    async fn sessions(
        &self,
        job: &JobContext,
        target: &Target,
        lookup: &LookupJob,
        result: &LookupResult,
    ) -> Result<(), JobError> {
        let ticket = target.ticket_id;
        let found: Vec<String> = result
            .identities
            .iter()
            .flat_map(|g| g.sessions.iter().map(|s| session_item(s.id.as_str())))
            .collect();
        if found.is_empty() {
            if !self.note_when_empty {
                tracing::info!(ticket, "no sessions; zendesk.note_when_empty is off");
                return Ok(());
            }
            if !self
                .claim(job, ticket, &[EMPTY_NOTE.to_owned()])
                .await?
                .contains(EMPTY_NOTE)
            {
                tracing::info!(ticket, "no sessions, and the ticket already says so");
                return Ok(());
            }
            let plain = render::plain_lines(&Answer::Sessions {
                job: lookup,
                result,
            });
            self.post(job, target, NOTE, NoteBody::Empty(result), &plain)
                .await?;
            return self.tag(job, ticket).await;
        }
        let mine = self.claim(job, ticket, &found).await?;
        let new: HashSet<String> = mine
            .iter()
            .filter_map(|item| item.strip_prefix("session:"))
            .map(str::to_owned)
            .collect();
        let fresh = only_new(result, &new);
        if fresh.session_count() == 0 {
            tracing::info!(
                ticket,
                sessions = found.len(),
                "every session found is already on the ticket; nothing to add"
            );
            return Ok(());
        }
        tracing::info!(
            ticket,
            sessions = fresh.session_count(),
            already_posted = found.len() - fresh.session_count(),
            "posting the sessions not yet on the ticket"
        );
        let plain = render::plain_lines(&Answer::Sessions {
            job: lookup,
            result: &fresh,
        });
        self.post(job, target, NOTE, NoteBody::Sessions(&fresh), &plain)
            .await?;
        self.tag(job, ticket).await
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
        let since = job.retried_at().unwrap_or(job.enqueued_at());
        chrono::Duration::from_std(self.max_delay)
            .ok()
            .and_then(|delay| since.checked_add_signed(delay))
    }

    async fn deliver(
        &self,
        job: &JobContext,
        target: &Target,
        answer: Answer<'_>,
    ) -> Result<(), JobError> {
        let plain = render::plain_lines(&answer);
        match answer {
            Answer::Sessions {
                job: lookup,
                result,
            } => self.sessions(job, target, lookup, result).await,
            Answer::Summary {
                job: asked,
                outcome,
            } => {
                let body = NoteBody::Summary {
                    url: asked.url.as_deref(),
                    outcome,
                };
                self.post(job, target, SUMMARY, body, &plain).await
            }
            Answer::Delayed { .. } => Ok(()),
            // One note per ticket and issue: "Escalated to LIN-123 <link>" (an ask that found the issue
            // already made leaves none: the first ask's note is there).
            Answer::Escalated { escalated } if escalated.already => Ok(()),
            Answer::Escalated { escalated } => {
                let item = format!("escalated-{}", escalated.key);
                let claimed = self
                    .claim(job, target.ticket_id, std::slice::from_ref(&item))
                    .await?;
                if !claimed.contains(&item) {
                    return Ok(());
                }
                self.post(
                    job,
                    target,
                    ESCALATED,
                    NoteBody::Escalated(escalated),
                    &plain,
                )
                .await
            }
            // Like a delay, "still pending" is not worth a note that cannot be replaced: the ticket gets
            // the final receipt (done, or given up).
            Answer::Erasure { receipt, .. } if receipt.status == "pending" => Ok(()),
            Answer::Erasure { email, receipt } => {
                let name = match receipt.status.as_str() {
                    "done" => RECEIPT,
                    "cancelled" => RECEIPT_CANCELLED,
                    _ => RECEIPT_DEAD,
                };
                self.post(
                    job,
                    target,
                    name,
                    NoteBody::Receipt { email, receipt },
                    &plain,
                )
                .await
            }
            Answer::Failed { message, reference } => {
                let claimed = self
                    .claim(job, target.ticket_id, &[FAILURE_NOTE.to_owned()])
                    .await?;
                if !claimed.contains(FAILURE_NOTE) {
                    tracing::info!(
                        ticket = target.ticket_id,
                        "the ticket already has a failure note"
                    );
                    return Ok(());
                }
                let body = NoteBody::Failed {
                    message: &message,
                    reference: &reference,
                };
                self.post(job, target, FAILED, body, &plain).await
            }
        }
    }
}

/// What a note says.
enum NoteBody<'a> {
    Sessions(&'a LookupResult),
    Empty(&'a LookupResult),
    Failed {
        message: &'a str,
        reference: &'a str,
    },
    Summary {
        url: Option<&'a str>,
        outcome: &'a SummaryOutcome,
    },
    Receipt {
        email: &'a CustomerEmail,
        receipt: &'a ErasureReceipt,
    },
    Escalated(&'a crate::answer::Escalated),
    /// The plain fallback's lines ([`render::plain_lines`]).
    Plain(&'a [String]),
}

impl NoteBody<'_> {
    /// The note carrying `marker`, and whether it is HTML (else plain text).
    fn text(&self, marker: &str) -> (bool, String) {
        let html = match self {
            Self::Sessions(result) => render::sessions_note(result, marker),
            Self::Empty(result) => render::empty_note(result, marker),
            Self::Failed { message, reference } => render::failure_note(message, reference, marker),
            Self::Summary { url, outcome } => render::summary_note(*url, outcome, marker),
            Self::Receipt { email, receipt } => render::receipt_note(email, receipt, marker),
            Self::Escalated(escalated) => render::escalated_note(escalated, marker),
            Self::Plain(lines) => return (false, render::plain_note(lines, marker)),
        };
        (true, html)
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
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::{
        fullstory::SessionId,
        identity::{CustomerEmail, Identity},
        lookup::{Digest, FoundSession},
    };

    fn session(id: &str, likely: bool) -> FoundSession {
        FoundSession {
            id: SessionId::new(id).unwrap(),
            url: format!("https://fs/{id}"),
            created: DateTime::<Utc>::UNIX_EPOCH,
            likely,
        }
    }

    fn group(email: &str, sessions: Vec<FoundSession>) -> IdentityResult {
        IdentityResult {
            identity: Identity::Email(CustomerEmail::parse(email).unwrap()),
            forgotten: false,
            sessions,
            digest: Some(Digest::default()),
            summary: Some(SummaryOutcome::Ready("s".into())),
        }
    }

    #[test]
    fn only_new_sessions_remain_and_the_digest_follows_the_likely_session() {
        let result = LookupResult {
            not_looked_up: 0,
            around: None,
            lookback_days: 30,
            identities: vec![
                group(
                    "a@acme.com",
                    vec![session("1:2", true), session("1:1", false)],
                ),
                group("b@acme.com", vec![session("2:1", true)]),
            ],
        };
        let new: HashSet<String> = ["1:1".to_owned()].into();
        let fresh = only_new(&result, &new);
        assert_eq!(fresh.identities.len(), 1);
        assert_eq!(fresh.identities[0].sessions, vec![session("1:1", false)]);
        assert!(fresh.identities[0].digest.is_none());
        assert!(fresh.identities[0].summary.is_none());
        let all: HashSet<String> = ["1:1", "1:2", "2:1"].map(str::to_owned).into();
        let everything = only_new(&result, &all);
        assert_eq!(everything.session_count(), 3);
        assert!(everything.identities[0].digest.is_some());
    }

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
