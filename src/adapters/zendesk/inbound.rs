//! `POST /zendesk/webhook`: a trigger's webhook → a durable `zendesk.ticket` job → 200.
//!
//! Order: verify the signature on the raw body with our clock (401) → the account
//! (with `zendesk.allowed_account_ids` set, an `x-zendesk-account-id` missing or not listed: 403; the
//! header is not covered by Zendesk's signature, so it selects, it does not prove) → read the body
//! tolerantly (400 naming the field; see [`super::wire`]) → drop a repeat of the same content →
//! [`inbound::accept`] (the delivery key and the job in one transaction) → 200. No Zendesk or FullStory
//! call happens before the answer, which comes in milliseconds (Zendesk waits about 10 s).
//!
//! Two dedupes, because Zendesk may fire one action twice under two invocation ids:
//! - the delivery key is `x-zendesk-webhook-invocation-id` (Zendesk's own retries of one invocation);
//!   without that header, the signature (unique per timestamp and body) stands in;
//! - a delivery for a ticket whose content hash ([`super::wire::Delivery::content_hash`]) another
//!   invocation delivered less than [`REPEAT_WINDOW`] ago is a duplicate: answered 200, nothing queued.
//!   It is a claim (`delivery:<hash>` in the ticket's scope) held by the first invocation, so that
//!   invocation's own retries still go through to `accept` (which dedupes them).
//!
//! Behind both, the ticket's session claims guarantee that a repeat which slips through (the window
//! passed, a different body) adds no session the ticket already shows.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{PLATFORM, Zendesk, reply, ticket::TicketJob, verify, wire};
use crate::{
    adapters::inbound::{self, Rejection, Verified},
    app::AppState,
    signing,
    store::NewJob,
};

pub const ACCOUNT: &str = "x-zendesk-account-id";
pub const INVOCATION: &str = "x-zendesk-webhook-invocation-id";

/// How long a delivery's content is remembered for the repeat check.
pub const REPEAT_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// Longest delivery id kept as a key.
const MAX_ID_LEN: usize = 200;

pub async fn webhook(State(state): State<AppState>, request: Verified<Zendesk>) -> Response {
    let result = receive(&state, &request.headers, &request.body).await;
    inbound::respond(&state, PLATFORM, result)
}

/// A signed delivery: the account, the body, the repeat check, then the job, durably.
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Rejection> {
    let config = &state.config.zendesk;
    let now = state.clock.now();
    // The account header is not covered by the signature: it narrows who is served, it proves nothing.
    // With a list configured, a request without it is refused like one from another account.
    let account = text_header(headers, ACCOUNT);
    if !config.allowed_account_ids.is_empty()
        && !account.is_some_and(|a| config.allowed_account_ids.allows(a))
    {
        return Err(Rejection::Forbidden(
            "this Zendesk account is not in zendesk.allowed_account_ids".into(),
        ));
    }
    let delivery = wire::parse(body).map_err(Rejection::Malformed)?;
    let key = delivery_key(headers).map_err(Rejection::Malformed)?;
    if delivery.recovered {
        tracing::info!(
            ticket = delivery.ticket_id,
            "the webhook body is not valid JSON; kept the ticket id, the rest is read from Zendesk"
        );
    }

    let window = chrono::Duration::from_std(REPEAT_WINDOW).unwrap_or_default();
    let item = format!("delivery:{}", delivery.content_hash);
    let claims = state
        .store
        .claim_items(
            &reply::ticket_scope(delivery.ticket_id),
            &key,
            std::slice::from_ref(&item),
            Some(now - window),
            now,
        )
        .await
        .map_err(|error| {
            tracing::error!(error = %format!("{error:#}"), "could not check the delivery");
            Rejection::Unavailable
        })?;
    if claims.iter().any(|c| c.owner != key) {
        inbound::count(state, PLATFORM, "duplicate");
        tracing::info!(
            ticket = delivery.ticket_id,
            "the same ticket content was delivered under another invocation; not queued again"
        );
        return Ok(ok());
    }

    let job = TicketJob {
        ticket_id: delivery.ticket_id,
        account_id: account.map(str::to_owned),
        requester_email: delivery.requester_email,
        latest_comment: delivery.latest_comment,
    };
    let job = NewJob::of(&job).map_err(|_| Rejection::Unavailable)?;
    inbound::accept(state, PLATFORM, &key, job).await?;
    Ok(ok())
}

fn ok() -> Response {
    (StatusCode::OK, Json(json!({ "ok": true }))).into_response()
}

fn text_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `invocation:<id>`, or `signature:<signature>` when Zendesk sent no invocation id.
fn delivery_key(headers: &HeaderMap) -> Result<String, String> {
    let usable = |id: &str| id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic());
    if let Some(value) = headers.get(INVOCATION) {
        return match value.to_str().map(str::trim) {
            Ok(id) if !id.is_empty() && usable(id) => Ok(format!("invocation:{id}")),
            _ => Err(format!("{INVOCATION}: malformed header")),
        };
    }
    match signing::header(headers, verify::SIGNATURE) {
        Ok(signature) if usable(signature) => Ok(format!("signature:{signature}")),
        _ => Err(format!("{INVOCATION}: missing header")),
    }
}
