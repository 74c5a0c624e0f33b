//! How answers reach an Intercom conversation: internal notes, through the effect ledger, never showing
//! a session the conversation already shows.
//!
//! - **Which note for which answer** is the desks' shared rule ([`crate::adapters::desk_note`], as on a
//!   Zendesk ticket): the sessions not yet shown (claimed in the conversation's scope
//!   `intercom:conversation:{id}` before posting, [`crate::answer::posted`]), one "no sessions" note
//!   when `intercom.note_when_empty`, one failure note, a summary note, an erasure's final receipt;
//!   nothing for a delay (a note cannot be replaced).
//! - **Once in effect.** Each note is a ledger effect whose HTML ends with the ledger's reference
//!   (`rd-…`); a worker that died between the `POST` and recording it finds the reference among the
//!   conversation's parts ([`NoteEffect::find_existing`]) and does not post again. The `POST` is never
//!   repeated by the transport on a 5xx or timeout.
//! - **Refused.** A 400/422 to the note is Intercom refusing it: the plain note with the links goes
//!   instead ([`crate::adapters::refusal::once_or_fallback`]).
//! - **Deadline**: `intercom.max_delay` after the delivery, like a Zendesk note.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::api::{IntercomApi, IntercomError};
use crate::{
    adapters::{
        desk_note::{self, Desk, NoteBody},
        refusal::once_or_fallback,
    },
    answer::{Answer, PlatformReplier, ReplyTarget, posted::Place},
    clock::Clock,
    config::IntercomConfig,
    queue::{Effect, JobContext, JobError},
    store::SqlStore,
};

/// Where an Intercom answer goes: one conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub conversation_id: String,
}

impl ReplyTarget for Target {
    const PLATFORM: &'static str = super::PLATFORM;
}

/// The claim scope of one conversation.
pub fn conversation_scope(conversation_id: &str) -> String {
    format!("intercom:conversation:{conversation_id}")
}

/// A lasting Intercom or FullStory refusal is permanent (dead at once, replayed by an admin once
/// fixed); anything else is retried.
pub fn job_error(error: anyhow::Error) -> JobError {
    desk_note::job_error(error, IntercomError::is_transient)
}

/// Posts answers on Intercom conversations.
pub struct IntercomReplier {
    api: Arc<IntercomApi>,
    store: Arc<SqlStore>,
    clock: Clock,
    admin_id: String,
    note_when_empty: bool,
    max_delay: std::time::Duration,
}

impl IntercomReplier {
    pub fn new(
        api: Arc<IntercomApi>,
        store: Arc<SqlStore>,
        clock: Clock,
        config: &IntercomConfig,
    ) -> Self {
        Self {
            api,
            store,
            clock,
            admin_id: config.admin_id.clone().unwrap_or_default(),
            note_when_empty: config.note_when_empty,
            max_delay: config.max_delay.0,
        }
    }

    /// The conversation as a place whose claims say what it shows.
    pub fn place(&self, conversation_id: &str) -> Place<'_> {
        Place::new(
            &self.store,
            conversation_scope(conversation_id),
            self.clock.now(),
        )
    }
}

#[async_trait]
impl PlatformReplier for IntercomReplier {
    type Target = Target;

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
        let conversation = OnConversation {
            replier: self,
            target,
        };
        desk_note::deliver(&conversation, self.note_when_empty, job, answer).await
    }
}

/// One conversation, as the desks' shared delivery posts to it.
struct OnConversation<'a> {
    replier: &'a IntercomReplier,
    target: &'a Target,
}

#[async_trait]
impl Desk for OnConversation<'_> {
    fn place(&self) -> Place<'_> {
        self.replier.place(&self.target.conversation_id)
    }

    async fn post(
        &self,
        job: &JobContext,
        name: &'static str,
        body: NoteBody<'_>,
        plain: &[String],
    ) -> Result<(), JobError> {
        let effect = |body| NoteEffect {
            api: &self.replier.api,
            conversation: &self.target.conversation_id,
            admin_id: &self.replier.admin_id,
            body,
        };
        let id = once_or_fallback::<IntercomError>(
            job,
            name,
            &effect(body),
            &effect(NoteBody::Plain(plain)),
        )
        .await
        .map_err(job_error)?;
        tracing::info!(conversation = %self.target.conversation_id, note = %id, "internal note on the conversation");
        Ok(())
    }
}

/// One internal note on one conversation.
struct NoteEffect<'a> {
    api: &'a IntercomApi,
    conversation: &'a str,
    admin_id: &'a str,
    body: NoteBody<'a>,
}

#[async_trait]
impl Effect for NoteEffect<'_> {
    async fn find_existing(&self, marker: &str) -> anyhow::Result<Option<String>> {
        let parts = self.api.parts(self.conversation).await?;
        Ok(parts
            .into_iter()
            .find(|(_, body)| body.contains(marker))
            .map(|(id, _)| format!("part:{id}")))
    }

    async fn perform(&self, marker: &str) -> anyhow::Result<String> {
        let (is_html, text) = self.body.text(marker);
        // Intercom's note body is HTML; the plain fallback keeps its lines as paragraphs of text.
        let body = if is_html {
            text
        } else {
            text.lines()
                .filter(|line| !line.is_empty())
                .map(|line| format!("<p>{}</p>", crate::render::note::escape(line)))
                .collect()
        };
        Ok(self
            .api
            .add_note(self.conversation, self.admin_id, &body)
            .await?)
    }
}
