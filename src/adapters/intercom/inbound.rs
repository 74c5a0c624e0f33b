//! `POST /intercom/webhook`: a notification → a durable `intercom.conversation` job → 200.
//!
//! Order: verify `X-Hub-Signature` on the raw body (401) → read the envelope (400 naming the field) →
//! the workspace (`app_id`: 403 unless `intercom.allowed_workspace_ids` lists it, or
//! `allow_any_workspace`) → the topic → [`inbound::accept`] (the delivery key and the job in one
//! transaction) → 200. No Intercom or FullStory call happens before the answer.
//!
//! Topics: `conversation.user.created` queues the note when `intercom.auto_note` is on;
//! `conversation.user.replied` only when the customer's reply names an address (a new customer to look
//! up; the note then adds only sessions the conversation does not show yet); any other topic (`ping`
//! when the webhook is saved, topics subscribed for something else) is answered 200 and ignored.
//!
//! Once: the delivery key is the notification's `id`, which Intercom keeps across its retries of one
//! notification; behind it, the conversation's session claims ([`crate::answer::posted`]) make two
//! notifications of one conversation (created, then replied) add no session twice.

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{
    Intercom, PLATFORM,
    conversation::{ContactId, ConversationJob},
    wire::{self, CREATED, REPLIED},
};
use crate::{
    adapters::inbound::{self, Rejection, Verified},
    app::AppState,
    identity::extract_emails,
    store::NewJob,
};

/// Longest notification id kept as a key.
const MAX_ID_LEN: usize = 200;

pub async fn webhook(State(state): State<AppState>, request: Verified<Intercom>) -> Response {
    let result = receive(&state, &request.body).await;
    inbound::respond(&state, PLATFORM, result)
}

async fn receive(state: &AppState, body: &[u8]) -> Result<Response, Rejection> {
    let config = &state.config.intercom;
    let notification = wire::notification(body).map_err(Rejection::Malformed)?;
    if !config.allows_workspace(&notification.app_id) {
        return Err(Rejection::Forbidden(
            "this Intercom workspace is not in intercom.allowed_workspace_ids".into(),
        ));
    }
    let topic = notification.topic.as_str();
    let wanted = (topic == CREATED && config.auto_note) || topic == REPLIED;
    if !wanted {
        inbound::count(state, PLATFORM, "ignored");
        tracing::info!(topic, "intercom notification not for replaydesk; ignored");
        return Ok(ok());
    }
    if notification.id.len() > MAX_ID_LEN || !notification.id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Rejection::Malformed("id: not a notification id".into()));
    }
    let conversation = wire::conversation(&notification.data.item).map_err(Rejection::Malformed)?;
    let named = conversation
        .latest_customer_text()
        .map(|text| extract_emails(text, &state.config.identity.exclude_domains.0))
        .unwrap_or_default();
    if topic == REPLIED && named.is_empty() {
        inbound::count(state, PLATFORM, "ignored");
        tracing::info!(conversation = %conversation.id, "a reply naming no address; nothing new to look up");
        return Ok(ok());
    }
    let job = ConversationJob {
        workspace_id: notification.app_id.clone(),
        conversation_id: conversation.id.clone(),
        contacts: conversation
            .contacts
            .contacts
            .iter()
            .map(|c| ContactId {
                id: c.id.clone(),
                external_id: c.external_id.clone(),
            })
            .collect(),
        named,
        created_at: conversation.created_at,
        asked_by: None,
    };
    let job = NewJob::of(&job).map_err(|_| Rejection::Unavailable)?;
    let key = format!("notification:{}", notification.id);
    inbound::accept(state, PLATFORM, &key, job).await?;
    Ok(ok())
}

fn ok() -> Response {
    (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
}
