//! Slack's HTTP routes: `POST /slack/commands` (a form), `POST /slack/interactions` (a form with one
//! `payload` field holding JSON) and `POST /slack/events` (JSON).
//!
//! Each takes the raw body, verified by Slack's signature with the clock in the state before the handler
//! runs ([`Verified`]: 401 on a bad, missing or stale signature; the body limit answers 413), decodes just enough to hand a
//! JSON value to the one handler per request type in [`super::handle`], which Socket Mode calls too,
//! and answers within Slack's 3 seconds: the job is durable before any 2xx, and no upstream is called.
//! A refused event is answered with `X-Slack-No-Retry: 1` when a retry could not succeed (403, 400).

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::{
    PLATFORM, Slack,
    handle::{self, Immediate},
    wire::{form_to_json, interaction_form},
};
use crate::{
    adapters::inbound::{Rejection, Verified, respond},
    app::AppState,
};

const RETRY_NUM: &str = "x-slack-retry-num";
const RETRY_REASON: &str = "x-slack-retry-reason";
const NO_RETRY: &str = "x-slack-no-retry";

pub async fn commands(State(state): State<AppState>, request: Verified<Slack>) -> Response {
    let result = match form_to_json(&request.body) {
        Ok(payload) => handle::command(&state, payload).await,
        Err(rejection) => Err(rejection),
    };
    answer(&state, result)
}

pub async fn interactions(State(state): State<AppState>, request: Verified<Slack>) -> Response {
    let result = match interaction_form(&request.body) {
        Ok(payload) => handle::interaction(&state, payload).await,
        Err(rejection) => Err(rejection),
    };
    answer(&state, result)
}

pub async fn events(State(state): State<AppState>, request: Verified<Slack>) -> Response {
    let headers = &request.headers;
    if let Some(attempt) = headers.get(RETRY_NUM).and_then(|v| v.to_str().ok()) {
        let reason = headers
            .get(RETRY_REASON)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info!(attempt, reason, "Slack is retrying an event");
    }
    let result = match serde_json::from_slice::<Value>(&request.body) {
        Ok(payload) => handle::event(&state, payload).await,
        Err(e) => Err(Rejection::Malformed(format!("the body is not JSON: {e}"))),
    };
    let no_retry = matches!(
        result,
        Err(Rejection::Forbidden(_) | Rejection::Malformed(_))
    );
    let mut response = answer(&state, result);
    if no_retry {
        response
            .headers_mut()
            .insert(NO_RETRY, HeaderValue::from_static("1"));
    }
    response
}

fn answer(state: &AppState, result: Result<Immediate, Rejection>) -> Response {
    let result = result.map(|immediate| match immediate {
        Immediate::Empty => StatusCode::OK.into_response(),
        Immediate::Json(body) => (StatusCode::OK, Json(body)).into_response(),
    });
    respond(state, PLATFORM, result)
}
