//! How an answer becomes internal notes on a help desk's place (a Zendesk ticket, an Intercom
//! conversation), written once for every desk platform: which answer gets which note, under which
//! ledger name, and which notes a place gets at most once.
//!
//! - [`Answer::Sessions`]: the sessions the place does not show yet ([`crate::answer::posted`]: claimed
//!   before posting, never the same session twice), or the one "no sessions" note when nobody has any
//!   and the desk asks for it; ledger effect [`NOTE`]; then the desk's [`Desk::after_note`] (Zendesk's
//!   tag).
//! - [`Answer::Summary`]: a summary note ([`SUMMARY`]).
//! - [`Answer::Escalated`]: one "Escalated to LIN-123" note per place and issue ([`ESCALATED`]); none
//!   for an ask that found the issue already made.
//! - [`Answer::Delayed`], and a pending erasure receipt: nothing. A note cannot be replaced later, and a
//!   "your answer is late" note followed by the answer would only clutter the place.
//! - [`Answer::Erasure`]: the final receipt, as `receipt`, `receipt-cancelled` or `receipt-dead`.
//! - [`Answer::Failed`]: one failure note per place ([`crate::answer::posted::FAILURE_NOTE`]).
//!
//! Each note is HTML from [`crate::render::note`]; the desk posts it through the effect ledger with the
//! plain fallback when the desk refuses it ([`crate::adapters::refusal::once_or_fallback`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    answer::{
        Answer,
        posted::{FAILURE_NOTE, Fresh, Place},
    },
    fullstory::FullStoryError,
    identity::CustomerEmail,
    lookup::{LookupResult, SummaryOutcome},
    privacy::ErasureReceipt,
    queue::{JobContext, JobError},
    render::note,
};

/// Ledger effect names of the notes.
pub const NOTE: &str = "note";
pub const FAILED: &str = "failed";
pub const ESCALATED: &str = "escalated";
pub const SUMMARY: &str = "summary";
pub const RECEIPT: &str = "receipt";
pub const RECEIPT_DEAD: &str = "receipt-dead";
pub const RECEIPT_CANCELLED: &str = "receipt-cancelled";

/// What a note says.
pub enum NoteBody<'a> {
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
    /// The plain fallback's lines ([`note::plain_lines`]).
    Plain(&'a [String]),
}

impl NoteBody<'_> {
    /// The note carrying `marker`, and whether it is HTML (else plain text).
    pub fn text(&self, marker: &str) -> (bool, String) {
        let html = match self {
            Self::Sessions(result) => note::sessions_note(result, marker),
            Self::Empty(result) => note::empty_note(result, marker),
            Self::Failed { message, reference } => note::failure_note(message, reference, marker),
            Self::Summary { url, outcome } => note::summary_note(*url, outcome, marker),
            Self::Receipt { email, receipt } => note::receipt_note(email, receipt, marker),
            Self::Escalated(escalated) => note::escalated_note(escalated, marker),
            Self::Plain(lines) => return (false, note::plain_note(lines, marker)),
        };
        (true, html)
    }
}

/// One place of a desk, as the shared delivery sees it: how a note is posted there, and what it
/// shows already.
#[async_trait]
pub trait Desk: Send + Sync {
    /// The place's claims ([`crate::answer::posted`]).
    fn place(&self) -> Place<'_>;

    /// Posts `body` once as ledger effect `name`; when the desk refuses it, the plain note of `plain`.
    async fn post(
        &self,
        job: &JobContext,
        name: &'static str,
        body: NoteBody<'_>,
        plain: &[String],
    ) -> Result<(), JobError>;

    /// After a sessions (or "no sessions") note: what the desk adds (Zendesk tags the ticket).
    async fn after_note(&self, job: &JobContext) -> Result<(), JobError> {
        let _ = job;
        Ok(())
    }
}

/// A failed step as the queue's decision, for a desk's jobs: a lasting refusal of the desk (`E`,
/// `transient` false) or of FullStory will not get better by itself (dead at once; an admin replays it
/// after fixing the cause); anything else is retried.
pub fn job_error<E>(error: anyhow::Error, transient: fn(&E) -> bool) -> JobError
where
    E: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static,
{
    let lasting = error
        .downcast_ref::<E>()
        .map(|e| !transient(e))
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

/// A desk note's deadline: `max_delay` after the delivery (or after an operator's `jobs retry`). A
/// note may come late, but a place should not get its replays a week after it was answered.
pub fn deadline(job: &JobContext, max_delay: std::time::Duration) -> Option<DateTime<Utc>> {
    let since = job.retried_at().unwrap_or(job.enqueued_at());
    chrono::Duration::from_std(max_delay)
        .ok()
        .and_then(|delay| since.checked_add_signed(delay))
}

/// Delivers `answer` at `desk`'s place as notes (see the module docs).
pub async fn deliver(
    desk: &dyn Desk,
    note_when_empty: bool,
    job: &JobContext,
    answer: Answer<'_>,
) -> Result<(), JobError> {
    let plain = note::plain_lines(&answer);
    match answer {
        Answer::Sessions {
            job: lookup,
            result,
        } => {
            let fresh = match desk.place().fresh(job, result, note_when_empty).await? {
                Fresh::Nothing => return Ok(()),
                Fresh::Empty => None,
                Fresh::Sessions(fresh) => Some(fresh),
            };
            let (body, shown) = match &fresh {
                Some(fresh) => (NoteBody::Sessions(fresh), fresh),
                None => (NoteBody::Empty(result), result),
            };
            let plain = note::plain_lines(&Answer::Sessions {
                job: lookup,
                result: shown,
            });
            desk.post(job, NOTE, body, &plain).await?;
            desk.after_note(job).await
        }
        Answer::Summary {
            job: asked,
            outcome,
        } => {
            let body = NoteBody::Summary {
                url: asked.url.as_deref(),
                outcome,
            };
            desk.post(job, SUMMARY, body, &plain).await
        }
        Answer::Delayed { .. } => Ok(()),
        // One note per place and issue: "Escalated to LIN-123 <link>" (an ask that found the issue
        // already made leaves none: the first ask's note is there).
        Answer::Escalated { escalated } if escalated.already => Ok(()),
        Answer::Escalated { escalated } => {
            let item = format!("escalated-{}", escalated.key);
            if !desk.place().holds(job, &item).await? {
                return Ok(());
            }
            desk.post(job, ESCALATED, NoteBody::Escalated(escalated), &plain)
                .await
        }
        Answer::Erasure { receipt, .. } if receipt.status == "pending" => Ok(()),
        Answer::Erasure { email, receipt } => {
            let name = match receipt.status.as_str() {
                "done" => RECEIPT,
                "cancelled" => RECEIPT_CANCELLED,
                _ => RECEIPT_DEAD,
            };
            desk.post(job, name, NoteBody::Receipt { email, receipt }, &plain)
                .await
        }
        Answer::Failed { message, reference } => {
            if !desk.place().holds(job, FAILURE_NOTE).await? {
                tracing::info!("the place already has a failure note");
                return Ok(());
            }
            let body = NoteBody::Failed {
                message: &message,
                reference: &reference,
            };
            desk.post(job, FAILED, body, &plain).await
        }
    }
}
