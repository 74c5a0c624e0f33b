//! Socket Mode (api.slack.com/apis/socket-mode): Slack delivers the same requests over a websocket we
//! open, so no public URL is needed. Runs as the adapter's background task when `slack.app_token` is set.
//!
//! Contract: `POST apps.connections.open` with the app-level `xapp-` token gives a single-use `wss://`
//! URL. Frames: `hello` (connected), envelopes `{envelope_id, type: events_api | slash_commands |
//! interactive, payload, accepts_response_payload, retry_attempt}`, and `disconnect {reason}` (Slack is
//! about to close: we open a fresh URL at once). Each envelope is acknowledged with
//! `{"envelope_id": …}` (plus `payload`, the same immediate answer the HTTP route gives, when
//! `accepts_response_payload`) within 3 seconds, **after** the job is durable: envelopes go through the
//! very handlers the HTTP routes use ([`super::handle`]); the connection itself is the authentication,
//! so there is no signature. A store that cannot record the job leaves the envelope unacknowledged, so
//! Slack redelivers it; a refused one (403, 400) is acknowledged, since redelivery could not help.
//!
//! Envelopes are handled one at a time, in order (recording a job takes milliseconds). A connection
//! that fails is reopened after a jittered backoff (0.5 s doubling to 20 s); `serve`'s shutdown closes it.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::{
    PLATFORM,
    api::SlackApi,
    handle::{self, Immediate},
};
use crate::{
    adapters::inbound::{self, Rejection, refuse},
    app::AppState,
    outbound::RetryPolicy,
};

#[derive(Debug, Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    envelope_id: Option<String>,
    #[serde(default)]
    payload: Value,
    #[serde(default)]
    accepts_response_payload: bool,
    #[serde(default)]
    retry_attempt: Option<u32>,
    #[serde(default)]
    reason: Option<String>,
}

/// What to do after a frame.
#[derive(Debug, PartialEq)]
enum Next {
    Continue,
    /// Send this acknowledgement.
    Ack(String),
    /// Slack asked us to reconnect.
    Reconnect(String),
}

/// Why a connection ended.
enum Ended {
    Shutdown,
    Reconnect(String),
}

/// Keeps a Socket Mode connection open until `shutdown` turns true (or its sender is dropped).
pub async fn run(state: AppState, api: Arc<SlackApi>, mut shutdown: watch::Receiver<bool>) {
    let policy = RetryPolicy {
        base: Duration::from_millis(500),
        cap: Duration::from_secs(20),
        ..RetryPolicy::default()
    };
    let mut failures = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match connection(&state, &api, &mut shutdown).await {
            Ok(Ended::Shutdown) => return,
            Ok(Ended::Reconnect(reason)) => {
                failures = 0;
                tracing::info!(%reason, "Socket Mode: reconnecting");
            }
            Err(error) => {
                failures += 1;
                let wait = policy.backoff(failures);
                tracing::warn!(
                    error = %format!("{error:#}"),
                    retry_in_ms = wait.as_millis() as u64,
                    "Socket Mode connection failed"
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// One connection: open a URL, read frames until Slack or shutdown ends it.
async fn connection(
    state: &AppState,
    api: &SlackApi,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Ended> {
    let url = api.open_connection().await?;
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    tracing::info!("Socket Mode connected");
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = shutdown.changed() => {
                let _ = socket.close(None).await;
                return Ok(Ended::Shutdown);
            }
        };
        let text = match frame {
            None => return Ok(Ended::Reconnect("the connection closed".into())),
            Some(Err(error)) => return Err(error.into()),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) => {
                return Ok(Ended::Reconnect("Slack closed the connection".into()));
            }
            // Pings are answered by the library; Slack sends nothing else.
            Some(Ok(_)) => continue,
        };
        match on_frame(state, text.as_str()).await {
            Next::Continue => {}
            Next::Ack(ack) => socket.send(Message::text(ack)).await?,
            Next::Reconnect(reason) => {
                let _ = socket.close(None).await;
                return Ok(Ended::Reconnect(reason));
            }
        }
    }
}

/// Handles one text frame.
async fn on_frame(state: &AppState, text: &str) -> Next {
    let frame: Frame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(error) => {
            tracing::warn!(%error, "Socket Mode: unreadable frame");
            return Next::Continue;
        }
    };
    match frame.kind.as_str() {
        "hello" => {
            tracing::debug!("Socket Mode: hello");
            return Next::Continue;
        }
        "disconnect" => {
            return Next::Reconnect(format!(
                "Slack asked to reconnect ({})",
                frame.reason.as_deref().unwrap_or("no reason given")
            ));
        }
        _ => {}
    }
    let Some(envelope_id) = frame.envelope_id else {
        tracing::debug!(kind = %frame.kind, "Socket Mode: frame without an envelope");
        return Next::Continue;
    };
    if let Some(attempt) = frame.retry_attempt.filter(|a| *a > 0) {
        tracing::info!(attempt, "Socket Mode: Slack is redelivering an envelope");
    }
    let result = match frame.kind.as_str() {
        "events_api" => handle::event(state, frame.payload).await,
        "slash_commands" => handle::command(state, frame.payload).await,
        "interactive" => handle::interaction(state, frame.payload).await,
        other => {
            tracing::debug!(
                kind = other,
                "Socket Mode: envelope of a type we do not handle"
            );
            Ok(Immediate::Empty)
        }
    };
    let payload = match result {
        Ok(Immediate::Json(payload)) if frame.accepts_response_payload => Some(payload),
        Ok(_) => None,
        Err(Rejection::Unavailable) => {
            // Not stored (`accept` logged why): no ack, so Slack delivers it again.
            inbound::count(state, PLATFORM, Rejection::Unavailable.outcome());
            return Next::Continue;
        }
        Err(rejection) => {
            let _ = refuse(state, PLATFORM, rejection);
            None
        }
    };
    let ack = match payload {
        Some(payload) => json!({ "envelope_id": envelope_id, "payload": payload }),
        None => json!({ "envelope_id": envelope_id }),
    };
    Next::Ack(ack.to_string())
}
