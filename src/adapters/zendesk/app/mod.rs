//! The Zendesk sidebar app: the ticket's customers' replays beside the ticket, live, with Summarize and
//! "Add as internal note". Why a server-side page rather than a note: a note is static and posted once;
//! agents look at the sidebar, and ask for a summary or a newer session when they need it.
//!
//! Routes (DESIGN.md's `POST|GET /zendesk/app…`), mounted by the Zendesk adapter:
//! - `POST /zendesk/app`: Zendesk's signed first load ([`jwt`]: RS256, form field `token`). Answers the
//!   page ([`page`]) with a token of ours ([`token`]) bound to account and agent; 401 page saying what to
//!   check when the JWT is bad or missing, 403 for another account. `GET /zendesk/app` (a load that was
//!   not signed) is the 401 page.
//! - `POST /zendesk/app/api/ticket` `{ticket_id, agent_id}`: exchanges the load's token for one bound to
//!   the ticket the ZAF client reports (Zendesk's JWT does not name the ticket).
//! - `GET /zendesk/app/api/sessions?ticket=ID`: the ticket's customers (the webhook's identity rules and
//!   caps, [`super::customers`]), their sessions newest first, the one live at the ticket's creation
//!   marked likely, with its digest.
//! - `POST /zendesk/app/api/summary?ticket=ID` `{session}`: FullStory's summary of one of those sessions,
//!   cut at the ticket's creation (cached by the shared FullStory cache).
//! - `POST /zendesk/app/api/note?ticket=ID`: queues the webhook's own `zendesk.ticket` job, so the note is
//!   the one the webhook would post, through the same effect ledger and per-ticket session claims (never
//!   the same session twice on a ticket). Its delivery key is the ticket and the page load, so repeated
//!   clicks on one page queue one job; a later page (new sessions since) may add another note with only
//!   the new sessions.
//!
//! Every data call needs `Authorization: Bearer <our token>` of that ticket, is audited
//! (`app.auditor`, platform `zendesk`, the agent's Zendesk user id) and counts against the account's
//! `zendesk.account_lookups_per_minute` (past it: 429 with `state: "busy"`). FullStory failing is
//! `state: "unavailable"` (503) with the same words the other platforms use; the FullStory key stays on
//! the server. A ticket carrying the erasure tag is `state: "not_allowed"` (403): its customer asked to
//! be forgotten.

pub mod jwt;
pub mod package;
pub mod page;
pub mod token;

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    PLATFORM, Parts,
    api::{TicketWithUsers, ZdError},
    customers, erasure_tag,
    ticket::TicketJob,
};
use crate::{
    answer::{self, Requester},
    app::AppState,
    fullstory::SessionId,
    lookup::{LookupResult, SummaryOutcome},
    store::NewJob,
};
use token::{AppToken, TokenError};

/// The sidebar's routes; `parts` is the Zendesk adapter's API client and account limits.
pub(super) fn routes(parts: Arc<Parts>) -> Router<AppState> {
    Router::new()
        .route("/zendesk/app", post(load).get(unsigned))
        .route("/zendesk/app/api/ticket", post(exchange))
        .route("/zendesk/app/api/sessions", get(sessions))
        .route("/zendesk/app/api/summary", post(summary))
        .route("/zendesk/app/api/note", post(note))
        .layer(Extension(parts))
}

/// The configured account: its host (the JWT's `iss`, our tokens' `acct`) and base URL.
fn account(state: &AppState) -> Option<jwt::Expected> {
    let base_url = super::api::base_url(&state.config.zendesk)?;
    let host = super::api::account_host(&state.config.zendesk)?;
    Some(jwt::Expected {
        host,
        base_url: base_url.trim_end_matches('/').to_owned(),
        installation_id: state.config.zendesk.app_installation_id.clone(),
    })
}

/// The signing secret of our tokens (see [`token`]).
fn secrets(state: &AppState) -> impl Iterator<Item = &str> {
    state.config.zendesk.webhook_secret.iter()
}

/// `Content-Security-Policy: frame-ancestors` the account's Zendesk origin only.
fn framed_by(expected: Option<&jwt::Expected>) -> String {
    let origin = expected.map_or("'none'", |e| e.base_url.as_str());
    format!("frame-ancestors {origin}")
}

fn html(status: StatusCode, csp: &str, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `POST /zendesk/app`: verify Zendesk's JWT, answer the page with our token.
async fn load(State(state): State<AppState>, body: Bytes) -> Response {
    let expected = account(&state);
    let csp = framed_by(expected.as_ref());
    let token: String = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let key = state
        .config
        .zendesk
        .app_public_key
        .as_deref()
        .and_then(jwt::RsaPublicKey::from_pem);
    let verified = match &expected {
        Some(expected) => jwt::verify(&token, key.as_ref(), expected, state.clock.now()),
        None => Err(jwt::JwtError::NoKey),
    };
    match (verified, expected) {
        (Ok(claims), Some(expected)) => {
            let agent = claims.agent().unwrap_or_default();
            let ours = AppToken::new(&expected.host, &agent, None, state.clock.now());
            let Some(secret) = secrets(&state).next() else {
                return html(
                    StatusCode::UNAUTHORIZED,
                    &csp,
                    page::refused("zendesk.webhook_secret is not set on the replaydesk server."),
                );
            };
            tracing::info!(agent = %agent, "zendesk app opened");
            html(
                StatusCode::OK,
                &csp,
                page::sidebar(&ours.sign(secret), &state.config.zendesk.app_sdk_url),
            )
        }
        (Err(error), _) => {
            tracing::info!(%error, "zendesk app load refused");
            let status = if error.is_other_account() {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            html(status, &csp, page::refused(&error.to_string()))
        }
        (Ok(_), None) => html(
            StatusCode::UNAUTHORIZED,
            &csp,
            page::refused("zendesk.subdomain is not set"),
        ),
    }
}

/// `GET /zendesk/app`: a load Zendesk did not sign.
async fn unsigned(State(state): State<AppState>) -> Response {
    let csp = framed_by(account(&state).as_ref());
    html(
        StatusCode::UNAUTHORIZED,
        &csp,
        page::refused(&jwt::JwtError::Missing.to_string()),
    )
}

/// A JSON answer with its `state` for the page (`not_allowed`, `unavailable`, `busy`, …) and words for
/// the agent.
struct Refusal {
    status: StatusCode,
    state: &'static str,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"state": self.state, "message": self.message})),
        )
            .into_response()
    }
}

fn state_json(status: StatusCode, state: &'static str, message: &str) -> Refusal {
    Refusal {
        status,
        state,
        message: message.to_owned(),
    }
}

fn token_refused(error: &TokenError) -> Refusal {
    let status = if error.is_forbidden() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    state_json(status, "not_allowed", &error.to_string())
}

/// Our token from `Authorization: Bearer …`, checked, for `ticket` when given.
fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    ticket: Option<u64>,
) -> Result<AppToken, Refusal> {
    let Some(expected) = account(state) else {
        return Err(token_refused(&TokenError::Invalid));
    };
    let text = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let token = AppToken::verify(text, secrets(state), &expected.host, state.clock.now())
        .map_err(|e| token_refused(&e))?;
    match ticket {
        Some(id) => token.for_ticket(id).map_err(|e| token_refused(&e)),
        None => Ok(token),
    }
}

#[derive(Deserialize)]
struct Exchange {
    ticket_id: u64,
    #[serde(default)]
    agent_id: Option<Value>,
}

/// `POST /zendesk/app/api/ticket`: the load's token for one bound to the ZAF client's ticket.
async fn exchange(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let token = match authorize(&state, &headers, None) {
        Ok(token) => token,
        Err(refused) => return refused.into_response(),
    };
    // Once per page load: a token already bound to a ticket is not exchanged again (it could otherwise
    // be renewed forever, or re-pointed at another ticket).
    if token.ticket.is_some() {
        return token_refused(&TokenError::OtherTicket).into_response();
    }
    let Ok(asked) = serde_json::from_slice::<Exchange>(&body) else {
        return state_json(StatusCode::BAD_REQUEST, "error", "ticket_id is required")
            .into_response();
    };
    // The JWT's agent when Zendesk named one; else the ZAF client's current user.
    let agent = if token.agent.is_empty() {
        match asked.agent_id {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if s.len() <= 32 => s,
            _ => String::new(),
        }
    } else {
        token.agent.clone()
    };
    let mut bound = AppToken::new(
        &token.acct,
        &agent,
        Some(asked.ticket_id),
        state.clock.now(),
    );
    bound.load = token.load;
    // The load's expiry stays: exchanging never lengthens a token's life.
    bound.exp = token.exp;
    let Some(secret) = secrets(&state).next() else {
        return token_refused(&TokenError::Invalid).into_response();
    };
    Json(json!({"token": bound.sign(secret)})).into_response()
}

#[derive(Deserialize)]
struct TicketQuery {
    ticket: u64,
}

/// A data call, authorized for its ticket (`?ticket=ID` and our token of that ticket), with the ticket
/// as read over the API and the adapter's API client and account limits: the extractor every JSON
/// endpoint but the exchange starts with.
struct Context {
    api: Arc<super::api::ZendeskApi>,
    accounts: Arc<crate::source_limits::SourceLimits>,
    token: AppToken,
    ticket: TicketWithUsers,
}

impl FromRequestParts<AppState> for Context {
    type Rejection = Refusal;

    async fn from_request_parts(
        request: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Refusal> {
        let Ok(Query(query)) = Query::<TicketQuery>::try_from_uri(&request.uri) else {
            return Err(state_json(
                StatusCode::BAD_REQUEST,
                "error",
                "the ticket query parameter (a ticket id) is required",
            ));
        };
        // Always there: `routes` layers the parts over every sidebar route. Without them (a wiring
        // mistake) the request is an internal error, said plainly, never a panic.
        let Some(parts) = request.extensions.get::<Arc<Parts>>().cloned() else {
            tracing::error!("zendesk app: a sidebar route is mounted without the adapter's parts");
            return Err(state_json(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error",
                "replaydesk could not serve this request.",
            ));
        };
        context(state, &parts, &request.headers, query.ticket).await
    }
}

async fn context(
    state: &AppState,
    parts: &Parts,
    headers: &HeaderMap,
    ticket: u64,
) -> Result<Context, Refusal> {
    let token = authorize(state, headers, Some(ticket))?;
    let ticket = match parts.api.ticket(ticket).await {
        Ok(found) => found,
        Err(ZdError::NotFound { .. }) => {
            return Err(state_json(
                StatusCode::NOT_FOUND,
                "not_found",
                "Zendesk does not know this ticket.",
            ));
        }
        Err(error) => {
            tracing::warn!(ticket, %error, "zendesk app: reading the ticket");
            return Err(state_json(
                StatusCode::BAD_GATEWAY,
                "zendesk_unavailable",
                "replaydesk could not read this ticket from Zendesk right now. Try again shortly.",
            ));
        }
    };
    if erasure_tag::erasure_tag(&state.config, &ticket).is_some() {
        return Err(state_json(
            StatusCode::FORBIDDEN,
            "not_allowed",
            "This ticket asks for the customer's data to be erased: replaydesk shows no sessions for it.",
        ));
    }
    Ok(Context {
        api: parts.api.clone(),
        accounts: parts.accounts.clone(),
        token,
        ticket,
    })
}

impl Context {
    fn requester(&self) -> Requester {
        Requester {
            platform: PLATFORM.into(),
            tenant: self.token.acct.clone(),
            user: self.token.agent.clone(),
            place: Some(format!("ticket {} (sidebar)", self.ticket.ticket.id)),
        }
    }

    fn around(&self) -> Option<DateTime<Utc>> {
        self.ticket.ticket.created()
    }

    /// The ticket's customers' sessions, as the webhook's job would look them up (digest included);
    /// `Ok(None)` when the ticket names no customer. Audited and counted against the account's limit.
    async fn lookup(
        &self,
        state: &AppState,
        action: &str,
    ) -> Result<Option<LookupResult>, Refusal> {
        let customers = customers::customers(
            &self.api,
            &state.config,
            &self.ticket,
            None,
            None,
        )
        .await
        .map_err(|error| {
            tracing::warn!(error = %format!("{error:#}"), "zendesk app: reading the ticket's customers");
            state_json(
                StatusCode::BAD_GATEWAY,
                "zendesk_unavailable",
                "replaydesk could not read this ticket's customers from Zendesk right now.",
            )
        })?;
        if customers.identities.is_empty() {
            return Ok(None);
        }
        let spend = customers.identities.len().min(customers.max_identities);
        if let Some(after) = self.accounts.delay(PLATFORM, &self.token.acct, spend) {
            return Err(state_json(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                &format!(
                    "This Zendesk account has asked for many lookups this minute; try again in {} s.",
                    after.as_secs().max(1)
                ),
            ));
        }
        let mut request = state.lookup_request(customers.identities.clone());
        request.around = self.around();
        request.max_identities = customers.max_identities;
        let result = state.lookup.run(&request).await;
        let sessions = result.as_ref().map_or(0, LookupResult::session_count);
        state
            .auditor
            .record(
                state.clock.now(),
                action,
                &self.requester(),
                &customers.identities,
                sessions,
                Some("zendesk sidebar".into()),
            )
            .await;
        result.map(Some).map_err(|error| {
            tracing::warn!(%error, "zendesk app: FullStory lookup failed");
            state_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &answer::user_message(&error),
            )
        })
    }
}

/// The page's view of a lookup result.
fn sessions_json(result: &LookupResult) -> Value {
    let customers: Vec<Value> = result
        .identities
        .iter()
        .map(|group| {
            json!({
                "who": group.identity.to_string(),
                "sessions": group.sessions,
                "digest": crate::render::digest_line(group),
                // Already scrubbed (emails masked, queries dropped): the page shows it as text.
                "went_wrong": crate::render::went_wrong_lines(group),
            })
        })
        .collect();
    json!({
        "state": if result.session_count() == 0 { "empty" } else { "ok" },
        "around": result.around,
        "lookback_days": result.lookback_days,
        "not_looked_up": result.not_looked_up,
        "customers": customers,
    })
}

/// `GET /zendesk/app/api/sessions?ticket=ID`.
async fn sessions(State(state): State<AppState>, ctx: Context) -> Result<Response, Refusal> {
    Ok(match ctx.lookup(&state, "sidebar.sessions").await? {
        Some(result) => Json(sessions_json(&result)).into_response(),
        None => Json(json!({
            "state": "empty",
            "message": "This ticket names no customer email address to look up.",
            "customers": [],
        }))
        .into_response(),
    })
}

#[derive(Deserialize)]
struct SummaryAsk {
    session: String,
}

/// `POST /zendesk/app/api/summary?ticket=ID` `{session}`: only a session of this ticket's customers.
async fn summary(
    State(state): State<AppState>,
    ctx: Context,
    body: Bytes,
) -> Result<Response, Refusal> {
    let Ok(asked) = serde_json::from_slice::<SummaryAsk>(&body) else {
        return Err(state_json(
            StatusCode::BAD_REQUEST,
            "error",
            "session is required",
        ));
    };
    let Some(result) = ctx.lookup(&state, "sidebar.summary").await? else {
        return Err(state_json(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such session on this ticket.",
        ));
    };
    let Some(found) = result
        .identities
        .iter()
        .flat_map(|g| &g.sessions)
        .find(|s| s.id.as_str() == asked.session)
    else {
        return Err(state_json(
            StatusCode::NOT_FOUND,
            "not_found",
            "That session is not one of this ticket's customers' sessions.",
        ));
    };
    let id: SessionId = found.id.clone();
    // Cut the session at the ticket's creation when it was live then, so the summary covers what led up to it.
    let end = ctx.around().filter(|around| *around > found.created);
    match state.lookup.summarize(&id, end).await {
        Ok(SummaryOutcome::Ready(text)) => {
            Ok(Json(json!({"state": "ready", "text": text})).into_response())
        }
        Ok(SummaryOutcome::Unavailable(why)) => {
            Ok(Json(json!({"state": "no_summary", "text": why})).into_response())
        }
        Err(error) => Err(state_json(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &answer::user_message(&error),
        )),
    }
}

/// `POST /zendesk/app/api/note?ticket=ID`: the webhook's note, queued once per page load.
async fn note(State(state): State<AppState>, ctx: Context) -> Result<Response, Refusal> {
    let ticket = ctx.ticket.ticket.id;
    let payload = TicketJob {
        ticket_id: ticket,
        account_id: Some(ctx.token.acct.clone()),
        requester_email: None,
        latest_comment: None,
    };
    let Ok(new_job) = NewJob::of(&payload) else {
        return Err(state_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error",
            "could not queue the note",
        ));
    };
    let key = format!("{PLATFORM}:app-note:{ticket}:{}", ctx.token.load);
    match state.queue.enqueue(&key, new_job).await {
        Ok(enqueued) => {
            state
                .auditor
                .record(
                    state.clock.now(),
                    "sidebar.note",
                    &ctx.requester(),
                    &[],
                    0,
                    Some(format!("job {}", enqueued.job_id)),
                )
                .await;
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "state": "queued",
                    "duplicate": enqueued.duplicate,
                    "message": "The note is on its way to the ticket (only sessions not on it yet).",
                })),
            )
                .into_response())
        }
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "zendesk app: could not queue the note");
            Err(state_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "error",
                "replaydesk could not queue the note right now. Try again shortly.",
            ))
        }
    }
}
