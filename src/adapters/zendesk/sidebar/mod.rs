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
//!   marked likely, with its digest; with `fullstory.digest = "on_request"` the digest only with
//!   `&digest=1` (the page's Digest button: an on-request Activation). `trackers` names the trackers that are on
//!   (`["linear", "jira"]`): the page offers Escalate on the likely session when there is one.
//! - `POST /zendesk/app/api/summary?ticket=ID` `{session}`: FullStory's summary of one of those sessions,
//!   cut at the ticket's creation (cached by the shared FullStory cache).
//! - `POST /zendesk/app/api/note?ticket=ID`: queues the webhook's own `zendesk.ticket` job, so the note is
//!   the one the webhook would post, through the same effect ledger and per-ticket session claims (never
//!   the same session twice on a ticket). Its delivery key is the ticket and the page load, so repeated
//!   clicks on one page queue one job; a later page (new sessions since) may add another note with only
//!   the new sessions.
//!
//! - `POST /zendesk/app/api/escalate?ticket=ID` `{tracker?, title?, note?, issue?, session?}`: escalates
//!   the ticket's requester's session (the one named, else the likely one) to Linear or Jira through the
//!   shared escalation job ([`crate::escalate`]): 202 `queued` (the ticket then gets one internal note
//!   "Escalated to LIN-123"), or 200 `already` with the issue's key and link when that session was
//!   escalated from this ticket before. `tracker` may be left out when only one is on; `issue` links an
//!   existing issue instead of making one. Repeated clicks on one page queue one job. The page's
//!   Escalate form (tracker when both are on, title prefilled with the ticket's subject, note, existing
//!   issue) sends the likely session, and after `queued` asks again a few times, which answers
//!   `already` with the issue once the worker made it.
//!
//! Every data call needs `Authorization: Bearer <our token>` of that ticket, is audited
//! (`app.auditor`, platform `zendesk`, the agent's Zendesk user id) and counts against the account's
//! `zendesk.account_lookups_per_minute` (past it: 429 with `state: "busy"`). FullStory failing is
//! `state: "unavailable"` (503) with the same words the other platforms use; the FullStory key stays on
//! the server. A ticket carrying the erasure tag is `state: "not_allowed"` (403): its customer asked to
//! be forgotten.

pub mod access;
pub mod jwt;
pub mod package;
pub mod page;
pub mod reads;
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
use sha2::{Digest, Sha256};

use super::{PLATFORM, api::TicketWithUsers, api::ZendeskError, erasure_tag, ticket::TicketJob};
use crate::{
    answer,
    app::AppState,
    config::Config,
    fullstory::SessionId,
    lookup::{LookupResult, SummaryOutcome},
    privacy::Requester,
    source_limits::SourceLimits,
    store::NewJob,
};
use reads::Reads;
use token::{SidebarToken, TokenError};

/// Calls one page load's token may make at once before the per-minute pace applies.
pub const TOKEN_BURST: u32 = 5;

/// The sidebar's own parts, built once by the Zendesk adapter: its cached Zendesk reads and its
/// allowances. Its own, apart from the webhook's: a flood of sidebar calls spends the sidebar's
/// allowance, never the one the ticket notes run on.
pub(super) struct Sidebar {
    reads: Reads,
    /// `zendesk.sidebar_calls_per_token_per_minute` per page load (burst [`TOKEN_BURST`]).
    per_token: SourceLimits,
    /// `zendesk.sidebar_calls_per_minute` per account (burst `limits.per_source_burst`).
    per_account: SourceLimits,
}

impl Sidebar {
    pub(super) fn new(api: Arc<super::api::ZendeskApi>, config: &Config) -> Self {
        Self {
            reads: Reads::new(api),
            per_token: SourceLimits::per_minute(
                config.zendesk.sidebar_calls_per_token_per_minute,
                TOKEN_BURST,
            ),
            per_account: SourceLimits::per_minute(
                config.zendesk.sidebar_calls_per_minute,
                config.limits.per_source_burst,
            ),
        }
    }

    /// Counts one call of `token`'s against its page load's and its account's allowances, before any
    /// Zendesk or FullStory call; past either, the call is refused (429, `busy`).
    fn allow(&self, token: &SidebarToken) -> Result<(), Refusal> {
        let over = self
            .per_token
            .delay(PLATFORM, &token.load, 1)
            .or_else(|| self.per_account.delay(PLATFORM, &token.acct, 1));
        match over {
            None => Ok(()),
            Some(after) => Err(state_json(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                &format!(
                    "replaydesk is answering many sidebar requests from here; try again in {} s.",
                    after.as_secs().max(1)
                ),
            )),
        }
    }
}

/// The sidebar's routes.
pub(super) fn routes(sidebar: Arc<Sidebar>) -> Router<AppState> {
    Router::new()
        .route("/zendesk/app", post(load).get(unsigned))
        .route("/zendesk/app/api/ticket", post(exchange))
        .route("/zendesk/app/api/sessions", get(sessions))
        .route("/zendesk/app/api/summary", post(summary))
        .route("/zendesk/app/api/note", post(note))
        .route("/zendesk/app/api/escalate", post(escalate))
        .layer(Extension(sidebar))
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

/// `frame-ancestors`: the account's Zendesk origin only.
fn framed_by(expected: Option<&jwt::Expected>) -> &str {
    expected.map_or("'none'", |e| e.base_url.as_str())
}

fn html(status: StatusCode, csp: &str, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The refusal page, with its own policy.
fn refused(status: StatusCode, expected: Option<&jwt::Expected>, message: &str) -> Response {
    html(
        status,
        &page::refused_policy(framed_by(expected)),
        page::refused(message),
    )
}

/// Scope of the one-time marks ([`first_use`]): the signed loads and the exchanges already made.
pub const ONCE_SCOPE: &str = "zendesk:sidebar:once";

/// Marks `item` used; `Ok(true)` the first time only (on every replica: the mark is in the store).
async fn first_use(state: &AppState, item: String) -> anyhow::Result<bool> {
    let owner = uuid::Uuid::new_v4().simple().to_string();
    let claims = state
        .store
        .claim_items(ONCE_SCOPE, &owner, &[item], None, state.clock.now())
        .await?;
    Ok(claims.first().is_some_and(|claim| claim.owner == owner))
}

/// What a signed load is remembered by: its `jti` when Zendesk sends one, else the hash of the
/// whole token (the same token is the same load).
fn load_mark(token: &str, jti: Option<&str>) -> String {
    match jti.filter(|j| !j.is_empty()) {
        Some(jti) => format!("jti:{}", hex::encode(Sha256::digest(jti.as_bytes()))),
        None => format!("jwt:{}", hex::encode(Sha256::digest(token.as_bytes()))),
    }
}

/// `POST /zendesk/app`: verify Zendesk's JWT, name the agent by its `sub`, accept it once, and answer
/// the page with our token.
async fn load(State(state): State<AppState>, body: Bytes) -> Response {
    let expected = account(&state);
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
    let Some(expected) = expected else {
        return refused(
            StatusCode::UNAUTHORIZED,
            None,
            "zendesk.subdomain is not set",
        );
    };
    let claims = match jwt::verify(&token, key.as_ref(), &expected, state.clock.now()) {
        Ok(claims) => claims,
        Err(error) => {
            tracing::info!(%error, "zendesk sidebar load refused");
            let status = if error.is_other_account() {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            return refused(status, Some(&expected), &error.to_string());
        }
    };
    let Some(agent) = access::agent_of(claims.sub.as_ref(), &expected.base_url) else {
        tracing::info!("zendesk sidebar load refused: the JWT names no agent");
        return refused(
            StatusCode::UNAUTHORIZED,
            Some(&expected),
            "Zendesk's signed load does not say which agent opened the app (no usable `sub`), so \
             replaydesk cannot check which tickets you may see.",
        );
    };
    let Some(secret) = secrets(&state).next() else {
        return refused(
            StatusCode::UNAUTHORIZED,
            Some(&expected),
            "zendesk.webhook_secret is not set on the replaydesk server.",
        );
    };
    match first_use(&state, load_mark(token.trim(), claims.jti.as_deref())).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                agent,
                "zendesk sidebar load refused: its signed token was used before"
            );
            return refused(
                StatusCode::UNAUTHORIZED,
                Some(&expected),
                "This signed load was already used. Reload the app in the ticket sidebar.",
            );
        }
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "zendesk sidebar: could not record the load");
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&expected),
                "replaydesk cannot accept the load right now (its store is unavailable). Try again shortly.",
            );
        }
    }
    let ours = SidebarToken::new(&expected.host, &agent.to_string(), None, state.clock.now());
    tracing::info!(agent, "zendesk sidebar opened");
    let sdk = &state.config.zendesk.app_sdk_url;
    html(
        StatusCode::OK,
        &page::sidebar_policy(sdk, framed_by(Some(&expected))),
        page::sidebar(&ours.sign(secret), sdk),
    )
}

/// `GET /zendesk/app`: a load Zendesk did not sign.
async fn unsigned(State(state): State<AppState>) -> Response {
    refused(
        StatusCode::UNAUTHORIZED,
        account(&state).as_ref(),
        &jwt::JwtError::Missing.to_string(),
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
) -> Result<SidebarToken, Refusal> {
    let Some(expected) = account(state) else {
        return Err(token_refused(&TokenError::Invalid));
    };
    let text = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let token = SidebarToken::verify(text, secrets(state), &expected.host, state.clock.now())
        .map_err(|e| token_refused(&e))?;
    match ticket {
        Some(id) => token.for_ticket(id).map_err(|e| token_refused(&e)),
        None => Ok(token),
    }
}

#[derive(Deserialize)]
struct Exchange {
    ticket_id: u64,
}

/// `POST /zendesk/app/api/ticket` `{ticket_id}`: the load's token for one bound to that ticket, once per
/// page load, when the agent Zendesk named may see the ticket ([`access::may_see`]). A refusal is 403
/// ("you cannot see this ticket") and is audited.
async fn exchange(
    State(state): State<AppState>,
    Extension(sidebar): Extension<Arc<Sidebar>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match bind(&state, &sidebar, &headers, &body).await {
        Ok(token) => Json(json!({"token": token})).into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn bind(
    state: &AppState,
    sidebar: &Sidebar,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, Refusal> {
    let token = authorize(state, headers, None)?;
    // A token already bound to a ticket is not exchanged again (it could otherwise be renewed
    // forever, or re-pointed at another ticket).
    if token.ticket.is_some() {
        return Err(token_refused(&TokenError::OtherTicket));
    }
    sidebar.allow(&token)?;
    let asked: Exchange = serde_json::from_slice(body).map_err(|_| {
        state_json(
            StatusCode::BAD_REQUEST,
            "error",
            "ticket_id (a ticket id) is required",
        )
    })?;
    let agent: u64 = token
        .agent
        .parse()
        .map_err(|_| token_refused(&TokenError::Invalid))?;
    match first_use(state, format!("exchange:{}", token.load)).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(state_json(
                StatusCode::FORBIDDEN,
                "not_allowed",
                "This page already chose its ticket. Reload the app in the ticket sidebar.",
            ));
        }
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "zendesk sidebar: could not record the exchange");
            return Err(store_unavailable());
        }
    }
    let ticket = read_ticket(sidebar, asked.ticket_id).await?;
    let access = sidebar.reads.access(agent).await.map_err(|error| {
        tracing::warn!(agent, %error, "zendesk sidebar: reading the agent's access");
        state_json(
            StatusCode::BAD_GATEWAY,
            "zendesk_unavailable",
            "replaydesk could not check your access to this ticket in Zendesk right now. Reload the app shortly.",
        )
    })?;
    let requester = requester(&token, ticket.ticket.id);
    if let Err(denied) = access::may_see(&access.agent, &access.groups, &ticket.ticket) {
        tracing::warn!(%denied, "zendesk sidebar: an agent asked for a ticket they cannot see");
        state
            .auditor
            .record(
                state.clock.now(),
                "sidebar.refused",
                &requester,
                &[],
                0,
                Some(denied.to_string()),
            )
            .await;
        return Err(state_json(
            StatusCode::FORBIDDEN,
            "not_allowed",
            "You cannot see this ticket in Zendesk, so replaydesk shows nothing of it.",
        ));
    }
    let mut bound = SidebarToken::new(
        &token.acct,
        &token.agent,
        Some(asked.ticket_id),
        state.clock.now(),
    );
    bound.load = token.load;
    // The load's expiry stays: exchanging never lengthens a token's life.
    bound.exp = token.exp;
    let secret = secrets(state)
        .next()
        .ok_or_else(|| token_refused(&TokenError::Invalid))?;
    Ok(bound.sign(secret))
}

fn store_unavailable() -> Refusal {
    state_json(
        StatusCode::SERVICE_UNAVAILABLE,
        "error",
        "replaydesk cannot answer right now (its store is unavailable). Try again shortly.",
    )
}

/// The ticket, through the sidebar's short cache.
async fn read_ticket(sidebar: &Sidebar, id: u64) -> Result<Arc<TicketWithUsers>, Refusal> {
    match sidebar.reads.ticket(id).await {
        Ok(found) => Ok(found),
        Err(ZendeskError::NotFound { .. }) => Err(state_json(
            StatusCode::NOT_FOUND,
            "not_found",
            "Zendesk does not know this ticket.",
        )),
        Err(error) => {
            tracing::warn!(ticket = id, %error, "zendesk sidebar: reading the ticket");
            Err(state_json(
                StatusCode::BAD_GATEWAY,
                "zendesk_unavailable",
                "replaydesk could not read this ticket from Zendesk right now. Try again shortly.",
            ))
        }
    }
}

/// Who asked, for the audit: the agent Zendesk named, on its account, about `ticket`.
fn requester(token: &SidebarToken, ticket: u64) -> Requester {
    Requester {
        platform: PLATFORM.into(),
        tenant: token.acct.clone(),
        user: token.agent.clone(),
        place: Some(format!("ticket {ticket} (sidebar)")),
    }
}

#[derive(Deserialize)]
struct TicketQuery {
    ticket: u64,
}

/// A data call, authorized for its ticket (`?ticket=ID` and our token of that ticket), within the
/// sidebar's allowances, with the ticket as read over the API: the extractor every JSON endpoint but
/// the exchange starts with.
struct Context {
    sidebar: Arc<Sidebar>,
    token: SidebarToken,
    ticket: Arc<TicketWithUsers>,
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
        // Always there: `routes` layers the sidebar over every route. Without it (a wiring mistake)
        // the request is an internal error, said plainly, never a panic.
        let Some(sidebar) = request.extensions.get::<Arc<Sidebar>>().cloned() else {
            tracing::error!(
                "zendesk sidebar: a sidebar route is mounted without the sidebar's parts"
            );
            return Err(state_json(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error",
                "replaydesk could not serve this request.",
            ));
        };
        let token = authorize(state, &request.headers, Some(query.ticket))?;
        sidebar.allow(&token)?;
        let ticket = read_ticket(&sidebar, query.ticket).await?;
        if erasure_tag::erasure_tag(&state.config, &ticket).is_some() {
            return Err(state_json(
                StatusCode::FORBIDDEN,
                "not_allowed",
                "This ticket asks for the customer's data to be erased: replaydesk shows no sessions for it.",
            ));
        }
        Ok(Context {
            sidebar,
            token,
            ticket,
        })
    }
}

impl Context {
    fn requester(&self) -> Requester {
        requester(&self.token, self.ticket.ticket.id)
    }

    fn around(&self) -> Option<DateTime<Utc>> {
        self.ticket.ticket.created()
    }

    /// The ticket's customers, by the webhook's rules.
    async fn customers(
        &self,
        state: &AppState,
    ) -> Result<Arc<super::customers::Customers>, Refusal> {
        self
            .sidebar
            .reads
            .customers(&state.config, &self.ticket)
            .await
            .map_err(|error| {
                tracing::warn!(error = %format!("{error:#}"), "zendesk sidebar: reading the ticket's customers");
                state_json(
                    StatusCode::BAD_GATEWAY,
                    "zendesk_unavailable",
                    "replaydesk could not read this ticket's customers from Zendesk right now.",
                )
            })
    }

    /// The ticket's customers' sessions, as the webhook's job would look them up (digest included);
    /// `Ok(None)` when the ticket names no customer. Audited.
    async fn lookup(
        &self,
        state: &AppState,
        action: &str,
        digest_asked: bool,
    ) -> Result<Option<LookupResult>, Refusal> {
        let customers = self.customers(state).await?;
        if customers.identities.is_empty() {
            return Ok(None);
        }
        let mut request = state.lookup_request(customers.identities.clone());
        request.around = self.around();
        request.max_identities = customers.max_identities;
        if digest_asked && state.config.fullstory.digest.answers_asks() {
            // The agent clicked Digest: fetched even with `fullstory.digest = "on_request"`, from the
            // Activations kept for requests.
            request.digest = true;
            request.asked.digest = true;
        }
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
            tracing::warn!(%error, "zendesk sidebar: FullStory lookup failed");
            state_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &answer::user_message(&error),
            )
        })
    }
}

/// The page's view of a lookup result; `digest_button`: the page offers Digest where a likely session
/// has none (`fullstory.digest = "on_request"`).
fn sessions_json(result: &LookupResult, digest_button: bool) -> Value {
    let customers: Vec<Value> = result
        .identities
        .iter()
        .map(|group| {
            json!({
                "who": group.identity.to_string(),
                // What to say when there is no session: none in the lookback, or asked to be forgotten.
                "note": group.sessions.is_empty()
                    .then(|| crate::render::no_sessions(group, result.lookback_days)),
                "forgotten": group.forgotten,
                "sessions": group.sessions,
                "digest": crate::render::digest_line(group),
                "digest_on_request": digest_button
                    && group.likely().is_some()
                    && crate::render::digest_line(group).is_none(),
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

#[derive(Deserialize)]
struct SessionsAsk {
    /// `digest=1`: the agent asked for the digest (the page's Digest button).
    #[serde(default)]
    digest: Option<String>,
}

/// `GET /zendesk/app/api/sessions?ticket=ID[&digest=1]`.
async fn sessions(
    State(state): State<AppState>,
    ctx: Context,
    Query(ask): Query<SessionsAsk>,
) -> Result<Response, Refusal> {
    let asked = ask.digest.as_deref() == Some("1");
    let button = state.config.fullstory.digest == crate::config::DigestMode::OnRequest;
    let mut answer = match ctx.lookup(&state, "sidebar.sessions", asked).await? {
        Some(result) => sessions_json(&result, button),
        None => json!({
            "state": "empty",
            "message": "This ticket names no customer email address to look up.",
            "customers": [],
        }),
    };
    // The trackers the page offers to escalate the likely session to (none: no Escalate button).
    let trackers: Vec<&str> = crate::escalate::Tracker::on(&state.config)
        .into_iter()
        .map(crate::escalate::Tracker::as_str)
        .collect();
    answer["trackers"] = json!(trackers);
    Ok(Json(answer).into_response())
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
    let Some(result) = ctx.lookup(&state, "sidebar.summary", false).await? else {
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
    // The agent clicked Summarize in the sidebar: spent from the Activations kept for requests.
    match state
        .lookup
        .summarize(&id, end, crate::activations::Purpose::OnRequest)
        .await
    {
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
            tracing::error!(error = %format!("{error:#}"), "zendesk sidebar: could not queue the note");
            Err(state_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "error",
                "replaydesk could not queue the note right now. Try again shortly.",
            ))
        }
    }
}

#[derive(Deserialize, Default)]
struct EscalateAsk {
    #[serde(default)]
    tracker: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    note: Option<String>,
    /// An existing issue to link instead of making one.
    #[serde(default)]
    issue: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

/// `POST /zendesk/app/api/escalate?ticket=ID`: see the module docs.
async fn escalate(
    State(state): State<AppState>,
    ctx: Context,
    body: Bytes,
) -> Result<Response, Refusal> {
    use crate::escalate::{EscalateJob, Tracker};
    let asked: EscalateAsk = if body.is_empty() {
        EscalateAsk::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            state_json(
                StatusCode::BAD_REQUEST,
                "error",
                &format!("malformed request: {e}"),
            )
        })?
    };
    let on = Tracker::on(&state.config);
    let tracker = match asked.tracker.as_deref() {
        Some(name) => Tracker::parse(name).filter(|t| on.contains(t)),
        None if on.len() == 1 => on.first().copied(),
        None => None,
    }
    .ok_or_else(|| {
        let names: Vec<&str> = on.iter().map(|t| t.as_str()).collect();
        state_json(
            StatusCode::BAD_REQUEST,
            "error",
            &if names.is_empty() {
                "No tracker is configured: ask your replaydesk admin to set [linear] or [jira]."
                    .to_owned()
            } else {
                format!("tracker must be one of: {}", names.join(", "))
            },
        )
    })?;
    let customers = ctx.customers(&state).await?;
    let Some(customer) = customers
        .identities
        .iter()
        .find_map(|i| i.as_email())
        .cloned()
    else {
        return Err(state_json(
            StatusCode::NOT_FOUND,
            "empty",
            "This ticket names no customer email address to escalate.",
        ));
    };
    let id = ctx.ticket.ticket.id;
    let source = super::escalate_tag::ticket_source(&state.config.zendesk, id);
    let session = asked.session.as_deref().and_then(SessionId::new);
    if let Some(session) = &session
        && let Some((key, url)) = crate::escalate::already(&state.store, &source, session).await
    {
        return Ok(Json(json!({
            "state": "already",
            "key": key,
            "url": url,
            "message": format!("Already escalated: {key} {url}"),
        }))
        .into_response());
    }
    let mut job = EscalateJob::new(customer, tracker, source, session.clone(), ctx.requester());
    job.around = ctx.around();
    job.title = asked.title.or_else(|| ctx.ticket.ticket.subject.clone());
    job.note = asked.note;
    job.existing = asked.issue.filter(|k| !k.trim().is_empty());
    job.reply = Some(answer::ReplyTo::new(&super::reply::Target {
        ticket_id: id,
        updated_at: None,
    }));
    let Ok(new_job) = NewJob::of(&job) else {
        return Err(state_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error",
            "could not queue the escalation",
        ));
    };
    let key = format!(
        "{PLATFORM}:app-escalate:{id}:{}:{}:{}",
        ctx.token.load,
        session.as_ref().map_or("", SessionId::as_str),
        tracker.as_str()
    );
    match state.queue.enqueue(&key, new_job).await {
        Ok(enqueued) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "state": "queued",
                "duplicate": enqueued.duplicate,
                "message": format!(
                    "Escalating to {tracker}: the issue's key and link will be noted on this ticket."
                ),
            })),
        )
            .into_response()),
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "zendesk sidebar: could not queue the escalation");
            Err(state_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "error",
                "replaydesk could not queue the escalation right now. Try again shortly.",
            ))
        }
    }
}
