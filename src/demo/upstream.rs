//! The demo's stand-ins for everything replaydesk talks to, each an axum server on its own loopback port,
//! so the real clients call the real paths (`fullstory.base_url`, `slack.api_url`, `zendesk.base_url`,
//! `discord.api_url` point here):
//!
//! - **FullStory**: the sample customers of `fixtures.json` (`GET /sessions/v2`, `GET
//!   /v2/sessions/{id}/events`, `GET /v2/sessions/{id}/summary`, `GET /me`), with session times relative to
//!   when the demo started, so they always fall inside the lookback window;
//! - **Slack**: `response_url`s (`POST /commands/…`) and the Web API methods replies use;
//! - **Zendesk**: the fixture tickets (read, comments, users), the internal note (`PUT
//!   /api/v2/tickets/{id}.json`) and tags (`PUT /api/v2/tickets/{id}/tags`);
//! - **Discord**: the edit of a deferred answer (`PATCH /webhooks/{app}/{token}/messages/@original`) and
//!   reading it back.
//! - **Linear** (`linear.api_url`): the GraphQL operations an escalation makes (`issueCreate` with its
//!   client-chosen id, `issue(id:)`, `attachmentCreate`, and `replaydesk check`'s `viewer`/`team`), issues
//!   numbered `DEMO-1`, `DEMO-2`, … .
//!
//! What the platforms would have shown is kept as [`Reply`]s, in order, and announced on a `watch`
//! channel, so the demo waits for answers without sleeping. This is demo scaffolding: `serve` never
//! reaches it. Each fake checks the credential the demo configured, as the real service would.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use anyhow::Context;
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

/// The sample data, shipped in the binary.
pub const FIXTURES: &str = include_str!("fixtures.json");

#[derive(Clone, Debug, Deserialize)]
pub struct Fixtures {
    pub org: String,
    pub customers: Vec<Customer>,
    pub zendesk: ZendeskFixtures,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Customer {
    pub email: String,
    pub uid: String,
    pub device: String,
    pub sessions: Vec<SampleSession>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SampleSession {
    pub id: String,
    pub minutes_ago: i64,
    pub events: Vec<SampleEvent>,
    pub summary: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SampleEvent {
    pub after_secs: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// The page, or for a failed request the request's URL.
    pub url: Option<String>,
    /// A console error's message.
    #[serde(default)]
    pub message: Option<String>,
    /// A failed request's method and status.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ZendeskFixtures {
    pub agent: ZendeskUser,
    pub tickets: Vec<SampleTicket>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ZendeskUser {
    pub id: u64,
    pub email: String,
    pub name: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SampleTicket {
    pub id: u64,
    pub subject: String,
    pub requester: ZendeskUser,
    pub created_minutes_ago: i64,
    pub comment: String,
    /// Tags the ticket carries from the start.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Fixtures {
    pub fn load() -> anyhow::Result<Self> {
        serde_json::from_str(FIXTURES).context("the demo's fixtures.json does not parse")
    }

    fn customer(&self, email: Option<&str>, uid: Option<&str>) -> Option<&Customer> {
        self.customers.iter().find(|c| {
            email.is_some_and(|e| e.eq_ignore_ascii_case(&c.email)) || uid == Some(c.uid.as_str())
        })
    }

    /// The session with the full id `device:session`, and its customer.
    fn session(&self, full_id: &str) -> Option<(&Customer, &SampleSession)> {
        let (device, id) = full_id.split_once(':')?;
        self.customers
            .iter()
            .filter(|c| c.device == device)
            .find_map(|c| c.sessions.iter().find(|s| s.id == id).map(|s| (c, s)))
    }

    pub fn ticket(&self, id: u64) -> Option<&SampleTicket> {
        self.zendesk.tickets.iter().find(|t| t.id == id)
    }
}

/// The platform a reply was meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Slack,
    Zendesk,
    Discord,
    Intercom,
    Linear,
}

/// One thing a platform would have shown.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// A `response_url` post or a Web API message (`via` says which), as JSON.
    Slack { via: String, body: Value },
    /// An internal note's HTML on a ticket.
    ZendeskNote { ticket: u64, html: String },
    /// Tags added to a ticket.
    ZendeskTags { ticket: u64, tags: Vec<String> },
    /// An edit of a deferred interaction answer, as JSON.
    Discord { body: Value },
    /// An internal note's HTML on an Intercom conversation.
    IntercomNote { conversation: String, html: String },
    /// An issue an escalation made on Linear.
    LinearIssue {
        key: String,
        url: String,
        title: String,
    },
}

impl Reply {
    pub fn platform(&self) -> Platform {
        match self {
            Self::Slack { .. } => Platform::Slack,
            Self::ZendeskNote { .. } | Self::ZendeskTags { .. } => Platform::Zendesk,
            Self::Discord { .. } => Platform::Discord,
            Self::IntercomNote { .. } => Platform::Intercom,
            Self::LinearIssue { .. } => Platform::Linear,
        }
    }
}

/// The credentials the fakes expect (the same the demo puts in its configuration).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub fullstory_key: String,
    pub slack_bot_token: String,
    pub zendesk_email: String,
    pub zendesk_token: String,
    pub intercom_token: String,
    pub linear_key: String,
}

/// Replies captured so far; `changed` counts them.
pub struct Captured {
    replies: Mutex<Vec<Reply>>,
    changed: watch::Sender<usize>,
}

impl Captured {
    fn new() -> Self {
        Self {
            replies: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Reply>> {
        self.replies.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, reply: Reply) {
        let count = {
            let mut replies = self.lock();
            replies.push(reply);
            replies.len()
        };
        self.changed.send_replace(count);
    }

    /// Every reply so far, oldest first.
    pub fn all(&self) -> Vec<Reply> {
        self.lock().clone()
    }

    /// Wakes when a reply arrives: `borrow()` is how many there are.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.changed.subscribe()
    }
}

/// A fake Zendesk ticket: the fixture plus what was written to it.
struct Ticket {
    sample: SampleTicket,
    notes: Vec<Value>,
    tags: Vec<String>,
    version: u32,
}

struct Shared {
    fixtures: Fixtures,
    /// The moment the sample times count back from.
    started: DateTime<Utc>,
    credentials: Credentials,
    captured: Arc<Captured>,
    tickets: Mutex<BTreeMap<u64, Ticket>>,
    /// Discord answers by interaction token, for `GET @original`.
    originals: Mutex<BTreeMap<String, Value>>,
    /// Intercom notes by conversation: (part id, body).
    conversations: Mutex<BTreeMap<String, Vec<(String, String)>>>,
    /// Linear's issues, as made: `{id, identifier, url}`.
    issues: Mutex<Vec<Value>>,
}

type Fake = State<Arc<Shared>>;

/// The running fakes: where each listens, and what they captured.
pub struct Upstreams {
    pub fullstory: SocketAddr,
    pub slack: SocketAddr,
    pub zendesk: SocketAddr,
    pub discord: SocketAddr,
    pub intercom: SocketAddr,
    pub linear: SocketAddr,
    pub captured: Arc<Captured>,
    pub started: DateTime<Utc>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Upstreams {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Upstreams {
    /// Starts the six fakes on loopback ports of their own.
    pub async fn start(
        fixtures: Fixtures,
        credentials: Credentials,
        started: DateTime<Utc>,
    ) -> anyhow::Result<Self> {
        let tickets = fixtures
            .zendesk
            .tickets
            .iter()
            .map(|t| {
                let ticket = Ticket {
                    sample: t.clone(),
                    notes: Vec::new(),
                    // The tags the agent's macro put on it (the escalation tag, say).
                    tags: t.tags.clone(),
                    version: 0,
                };
                (t.id, ticket)
            })
            .collect();
        let captured = Arc::new(Captured::new());
        let shared = Arc::new(Shared {
            fixtures,
            started,
            credentials,
            captured: captured.clone(),
            tickets: Mutex::new(tickets),
            originals: Mutex::new(BTreeMap::new()),
            conversations: Mutex::new(BTreeMap::new()),
            issues: Mutex::new(Vec::new()),
        });
        let mut tasks = Vec::new();
        let mut addresses = Vec::new();
        for router in [
            fullstory(),
            slack(),
            zendesk(),
            discord(),
            intercom(),
            linear(),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("could not listen on loopback for the demo's fakes")?;
            addresses.push(listener.local_addr()?);
            let app = router.with_state(shared.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    tracing::error!(%error, "a demo fake stopped");
                }
            }));
        }
        let [fullstory, slack, zendesk, discord, intercom, linear] = addresses[..] else {
            anyhow::bail!("the demo's fakes did not all start");
        };
        Ok(Self {
            fullstory,
            slack,
            zendesk,
            discord,
            intercom,
            linear,
            captured,
            started,
            tasks,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn authorized(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected)
}

fn refused(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "message": message })),
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "RecordNotFound" })),
    )
        .into_response()
}

fn iso(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ------------------------------------------------------------------ FullStory

fn fullstory() -> Router<Arc<Shared>> {
    Router::new()
        .route("/me", get(fs_me))
        .route("/sessions/v2", get(fs_sessions))
        .route("/v2/sessions/{id}/events", get(fs_events))
        .route("/v2/sessions/{id}/summary", get(fs_summary))
}

fn fs_authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    authorized(
        headers,
        &format!("Basic {}", shared.credentials.fullstory_key),
    )
}

async fn fs_me(State(shared): Fake, headers: HeaderMap) -> Response {
    if !fs_authorized(&shared, &headers) {
        return refused("Unauthorized");
    }
    Json(json!({ "email": "", "orgId": shared.fixtures.org, "role": "ARCHITECT" })).into_response()
}

#[derive(Deserialize)]
struct SessionsQuery {
    email: Option<String>,
    uid: Option<String>,
    limit: Option<usize>,
}

async fn fs_sessions(
    State(shared): Fake,
    headers: HeaderMap,
    Query(query): Query<SessionsQuery>,
) -> Response {
    if !fs_authorized(&shared, &headers) {
        return refused("Unauthorized");
    }
    let Some(customer) = shared
        .fixtures
        .customer(query.email.as_deref(), query.uid.as_deref())
    else {
        return Json(json!({ "sessions": [] })).into_response();
    };
    // The official example's shape: epoch seconds as a string, the halves of the id apart.
    let sessions: Vec<Value> = customer
        .sessions
        .iter()
        .take(query.limit.unwrap_or(20))
        .map(|s| {
            let created = shared.started - Duration::minutes(s.minutes_ago);
            json!({
                "userId": customer.device,
                "sessionId": s.id,
                "createdTime": created.timestamp().to_string(),
                "fsUrl": format!(
                    "https://app.fullstory.com/ui/{}/session/{}:{}",
                    shared.fixtures.org, customer.device, s.id
                ),
            })
        })
        .collect();
    Json(json!({ "sessions": sessions })).into_response()
}

async fn fs_events(State(shared): Fake, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !fs_authorized(&shared, &headers) {
        return refused("Unauthorized");
    }
    let Some((_, session)) = shared.fixtures.session(&id) else {
        return not_found();
    };
    let start = shared.started - Duration::minutes(session.minutes_ago);
    let events: Vec<Value> = session
        .events
        .iter()
        .map(|e| {
            json!({
                "event_time": iso(start + Duration::seconds(e.after_secs)),
                "event_type": e.kind,
                // Only what the event has, as FullStory's own events carry it.
                "event_properties": serde_json::Value::Object(
                    [
                        ("url", e.url.clone().map(Value::from)),
                        ("message", e.message.clone().map(Value::from)),
                        ("method", e.method.clone().map(Value::from)),
                        ("status", e.status.map(Value::from)),
                    ]
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                    .collect(),
                ),
            })
        })
        .collect();
    Json(json!({ "events": events })).into_response()
}

async fn fs_summary(State(shared): Fake, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !fs_authorized(&shared, &headers) {
        return refused("Unauthorized");
    }
    match shared.fixtures.session(&id) {
        Some((_, session)) => Json(json!({ "summary": session.summary })).into_response(),
        None => not_found(),
    }
}

// ------------------------------------------------------------------ Slack

fn slack() -> Router<Arc<Shared>> {
    Router::new()
        .route("/commands/{team}/{id}/{secret}", post(slack_response_url))
        .route("/api/{method}", post(slack_web_api))
        .route("/api/conversations.replies", get(slack_replies))
}

/// Where the demo's slash commands say to answer (as `hooks.slack.com/commands/…` would).
pub fn response_url(slack: SocketAddr, request_id: &str) -> String {
    format!("http://{slack}/commands/T0DEMO/{request_id}/demo")
}

async fn slack_response_url(State(shared): Fake, Json(body): Json<Value>) -> Response {
    shared.captured.push(Reply::Slack {
        via: "response_url".into(),
        body,
    });
    Json(json!({ "ok": true })).into_response()
}

async fn slack_web_api(
    State(shared): Fake,
    Path(method): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let bearer = format!("Bearer {}", shared.credentials.slack_bot_token);
    if !authorized(&headers, &bearer) {
        return Json(json!({ "ok": false, "error": "invalid_auth" })).into_response();
    }
    let ts = format!("{}.000100", Utc::now().timestamp());
    match method.as_str() {
        "chat.postMessage" | "chat.postEphemeral" => {
            shared.captured.push(Reply::Slack { via: method, body });
            Json(json!({ "ok": true, "ts": ts, "message_ts": ts })).into_response()
        }
        _ => Json(json!({ "ok": false, "error": "unknown_method" })).into_response(),
    }
}

async fn slack_replies() -> Response {
    Json(json!({ "ok": true, "messages": [] })).into_response()
}

// ------------------------------------------------------------------ Zendesk

fn zendesk() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v2/tickets/{file}", get(zd_ticket).put(zd_note))
        .route("/api/v2/tickets/{id}/comments.json", get(zd_comments))
        .route("/api/v2/tickets/{id}/tags", put(zd_tags))
        .route("/api/v2/users/{file}", get(zd_user))
        .route("/demo/sidebar", get(zd_sidebar_frame))
        .route("/demo/zaf_sdk.js", get(zd_zaf_stub))
}

fn zd_authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    use base64::Engine;
    let credentials = format!(
        "{}/token:{}",
        shared.credentials.zendesk_email, shared.credentials.zendesk_token
    );
    authorized(
        headers,
        &format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ),
    )
}

/// `35436.json` → 35436.
fn json_id(file: &str) -> Option<u64> {
    file.strip_suffix(".json")?.parse().ok()
}

fn zd_users(shared: &Shared, ticket: &SampleTicket) -> Value {
    let agent = &shared.fixtures.zendesk.agent;
    json!([
        { "id": ticket.requester.id, "email": ticket.requester.email, "name": ticket.requester.name,
          "role": "end-user" },
        { "id": agent.id, "email": agent.email, "name": agent.name, "role": "agent" },
    ])
}

impl Ticket {
    fn created(&self, started: DateTime<Utc>) -> DateTime<Utc> {
        started - Duration::minutes(self.sample.created_minutes_ago)
    }

    fn updated_at(&self, started: DateTime<Utc>) -> String {
        iso(self.created(started) + Duration::seconds(i64::from(self.version)))
    }
}

async fn zd_ticket(State(shared): Fake, headers: HeaderMap, Path(file): Path<String>) -> Response {
    if !zd_authorized(&shared, &headers) {
        return refused("Couldn't authenticate you");
    }
    let tickets = lock(&shared.tickets);
    let Some(ticket) = json_id(&file).and_then(|id| tickets.get(&id)) else {
        return not_found();
    };
    let sample = &ticket.sample;
    Json(json!({
        "ticket": {
            "id": sample.id,
            "subject": sample.subject,
            "created_at": iso(ticket.created(shared.started)),
            "updated_at": ticket.updated_at(shared.started),
            "requester_id": sample.requester.id,
            "status": "open",
            "tags": ticket.tags,
        },
        "users": zd_users(&shared, sample),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct FrameQuery {
    /// replaydesk's `/zendesk/app` (on loopback).
    app: String,
    ticket: Option<u64>,
}

/// The stand-in for Zendesk's ticket frame ([`super::sidebar`]): a fresh signed load of the sidebar.
async fn zd_sidebar_frame(
    State(shared): Fake,
    headers: HeaderMap,
    Query(query): Query<FrameQuery>,
) -> Response {
    let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if !loopback.iter().any(|p| query.app.starts_with(p)) {
        return (
            StatusCode::BAD_REQUEST,
            "app must be replaydesk's /zendesk/app on loopback",
        )
            .into_response();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let agent = shared.fixtures.zendesk.agent.id;
    let claims = super::sidebar::claims(&format!("http://{host}"), agent, Utc::now());
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let Some(jwt) = super::sidebar::rs256(super::sidebar::DEMO_KEY, &header, &claims) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the demo key does not sign",
        )
            .into_response();
    };
    let ticket = query
        .ticket
        .or_else(|| shared.fixtures.zendesk.tickets.first().map(|t| t.id))
        .unwrap_or_default();
    let page = super::sidebar::frame(&query.app, &jwt, ticket);
    (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

/// The stub ZAF SDK, answering with the sample tickets as ZAF would.
async fn zd_zaf_stub(State(shared): Fake) -> Response {
    let tickets: Vec<Value> = lock(&shared.tickets)
        .values()
        .map(|t| {
            json!({
                "id": t.sample.id,
                "subject": t.sample.subject,
                "createdAt": iso(t.created(shared.started)),
                "requester": {"id": t.sample.requester.id, "email": t.sample.requester.email, "name": t.sample.requester.name},
            })
        })
        .collect();
    let agent = &shared.fixtures.zendesk.agent;
    let user = json!({"id": agent.id, "name": agent.name});
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        super::sidebar::zaf_stub(&tickets, &user),
    )
        .into_response()
}

async fn zd_comments(State(shared): Fake, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    if !zd_authorized(&shared, &headers) {
        return refused("Couldn't authenticate you");
    }
    let tickets = lock(&shared.tickets);
    let Some(ticket) = tickets.get(&id) else {
        return not_found();
    };
    let sample = &ticket.sample;
    let first = json!({
        "id": sample.id * 100,
        "author_id": sample.requester.id,
        "body": sample.comment,
        "plain_body": sample.comment,
        "public": true,
        "created_at": iso(ticket.created(shared.started)),
    });
    // Newest first, as asked for.
    let comments: Vec<Value> = ticket.notes.iter().rev().cloned().chain([first]).collect();
    Json(json!({ "comments": comments, "users": zd_users(&shared, sample) })).into_response()
}

async fn zd_user(State(shared): Fake, headers: HeaderMap, Path(file): Path<String>) -> Response {
    if !zd_authorized(&shared, &headers) {
        return refused("Couldn't authenticate you");
    }
    let id = json_id(&file);
    // The demo's agent sees every ticket (`ticket_restriction: null`), as the sidebar's access check reads.
    let agent = &shared.fixtures.zendesk.agent;
    if Some(agent.id) == id {
        return Json(
            json!({ "user": { "id": agent.id, "email": agent.email, "name": agent.name,
                                       "role": "agent", "ticket_restriction": null } }),
        )
        .into_response();
    }
    let tickets = lock(&shared.tickets);
    let user = tickets
        .values()
        .map(|t| &t.sample.requester)
        .find(|u| Some(u.id) == id);
    match user {
        Some(u) => Json(
            json!({ "user": { "id": u.id, "email": u.email, "name": u.name,
                                          "role": "end-user" } }),
        )
        .into_response(),
        None => not_found(),
    }
}

async fn zd_note(
    State(shared): Fake,
    headers: HeaderMap,
    Path(file): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if !zd_authorized(&shared, &headers) {
        return refused("Couldn't authenticate you");
    }
    let mut tickets = lock(&shared.tickets);
    let Some((id, ticket)) = json_id(&file).and_then(|id| tickets.get_mut(&id).map(|t| (id, t)))
    else {
        return not_found();
    };
    let comment = &body["ticket"]["comment"];
    let Some(html) = comment["html_body"].as_str() else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(
                json!({ "error": "RecordInvalid", "description": "comment.html_body is missing" }),
            ),
        )
            .into_response();
    };
    ticket.version += 1;
    let comment_id = id * 100 + u64::from(ticket.version);
    ticket.notes.push(json!({
        "id": comment_id,
        "author_id": shared.fixtures.zendesk.agent.id,
        "html_body": html,
        "public": comment["public"].as_bool().unwrap_or(true),
        "created_at": iso(Utc::now()),
    }));
    shared.captured.push(Reply::ZendeskNote {
        ticket: id,
        html: html.to_owned(),
    });
    Json(json!({
        "ticket": { "id": id },
        "audit": { "id": comment_id + 7_000_000, "events": [{ "id": comment_id, "type": "Comment" }] },
    }))
    .into_response()
}

async fn zd_tags(
    State(shared): Fake,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Json(body): Json<Value>,
) -> Response {
    if !zd_authorized(&shared, &headers) {
        return refused("Couldn't authenticate you");
    }
    let mut tickets = lock(&shared.tickets);
    let Some(ticket) = tickets.get_mut(&id) else {
        return not_found();
    };
    let added: Vec<String> = body["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    for tag in &added {
        if !ticket.tags.contains(tag) {
            ticket.tags.push(tag.clone());
        }
    }
    let tags = ticket.tags.clone();
    drop(tickets);
    shared.captured.push(Reply::ZendeskTags {
        ticket: id,
        tags: added,
    });
    Json(json!({ "tags": tags })).into_response()
}

// ------------------------------------------------------------------ Discord

fn discord() -> Router<Arc<Shared>> {
    Router::new().route(
        "/api/v10/webhooks/{app}/{token}/messages/@original",
        get(discord_original).patch(discord_edit),
    )
}

async fn discord_edit(
    State(shared): Fake,
    Path((_app, token)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let mut message = body.clone();
    message["id"] = json!("1310000000000000001");
    lock(&shared.originals).insert(token, message.clone());
    shared.captured.push(Reply::Discord { body });
    Json(message).into_response()
}

async fn discord_original(
    State(shared): Fake,
    Path((_app, token)): Path<(String, String)>,
) -> Response {
    match lock(&shared.originals).get(&token) {
        Some(message) => Json(message.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": "Unknown Message", "code": 10008 })),
        )
            .into_response(),
    }
}

// ------------------------------------------------------------------ Intercom

/// The contact id the demo's Intercom gives the fixture customer at `index`.
pub fn intercom_contact(index: usize) -> String {
    format!("contact-{index}")
}

fn intercom() -> Router<Arc<Shared>> {
    Router::new()
        .route("/contacts/{id}", get(ic_contact))
        .route("/conversations/{id}", get(ic_conversation))
        .route("/conversations/{id}/reply", post(ic_reply))
}

fn ic_authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    authorized(
        headers,
        &format!("Bearer {}", shared.credentials.intercom_token),
    )
}

async fn ic_contact(State(shared): Fake, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !ic_authorized(&shared, &headers) {
        return refused("Access Token Invalid");
    }
    let customer = id
        .strip_prefix("contact-")
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| shared.fixtures.customers.get(n));
    match customer {
        Some(customer) => Json(json!({
            "type": "contact", "id": id, "role": "user",
            "email": customer.email, "external_id": customer.uid,
        }))
        .into_response(),
        None => not_found(),
    }
}

fn ic_parts(shared: &Shared, conversation: &str) -> Value {
    let parts: Vec<Value> = lock(&shared.conversations)
        .get(conversation)
        .map(|notes| {
            notes
                .iter()
                .map(|(id, body)| json!({"type": "conversation_part", "id": id, "part_type": "note", "body": body}))
                .collect()
        })
        .unwrap_or_default();
    json!({"type": "conversation", "id": conversation,
           "conversation_parts": {"type": "conversation_part.list", "conversation_parts": parts}})
}

async fn ic_conversation(
    State(shared): Fake,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !ic_authorized(&shared, &headers) {
        return refused("Access Token Invalid");
    }
    Json(ic_parts(&shared, &id)).into_response()
}

async fn ic_reply(
    State(shared): Fake,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if !ic_authorized(&shared, &headers) {
        return refused("Access Token Invalid");
    }
    let html = body["body"].as_str().unwrap_or_default().to_owned();
    {
        let mut conversations = lock(&shared.conversations);
        let notes = conversations.entry(id.clone()).or_default();
        notes.push((format!("{}", 900 + notes.len()), html.clone()));
    }
    shared.captured.push(Reply::IntercomNote {
        conversation: id.clone(),
        html,
    });
    Json(ic_parts(&shared, &id)).into_response()
}

// ------------------------------------------------------------------ Linear

/// The demo's Linear team (`linear.team_id`).
pub const LINEAR_TEAM: &str = "0b5e7d2c-7a3f-4c1e-9d2a-6f8e1c3b5a70";

fn linear() -> Router<Arc<Shared>> {
    Router::new().route("/graphql", post(linear_graphql))
}

/// One GraphQL operation, told apart by its text as Linear's server would parse it; errors in
/// Linear's shape (`errors[].message`, `extensions.type`).
async fn linear_graphql(
    State(shared): Fake,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    // A personal API key, sent as is (no `Bearer`).
    if !authorized(&headers, &shared.credentials.linear_key) {
        return linear_error(
            "Authentication required, not authenticated",
            "authentication error",
        );
    }
    let query = body["query"].as_str().unwrap_or_default();
    let vars = &body["variables"];
    let data = |data: Value| Json(json!({ "data": data })).into_response();
    if query.contains("issueCreate") {
        let input = &vars["input"];
        if input["teamId"] != LINEAR_TEAM {
            return linear_error("Entity not found: Team", "invalid input");
        }
        let mut issues = lock(&shared.issues);
        if issues.iter().any(|i| i["id"] == input["id"]) {
            return linear_error("Entity already exists", "invalid input");
        }
        let key = format!("DEMO-{}", issues.len() + 1);
        let issue = json!({
            "id": input["id"],
            "identifier": key,
            "url": format!("https://linear.app/replaydesk-demo/issue/{key}"),
        });
        issues.push(issue.clone());
        drop(issues);
        shared.captured.push(Reply::LinearIssue {
            key,
            url: issue["url"].as_str().unwrap_or_default().to_owned(),
            title: input["title"].as_str().unwrap_or_default().to_owned(),
        });
        return data(json!({"issueCreate": {"success": true, "issue": issue}}));
    }
    if query.contains("attachmentCreate") {
        return data(json!({"attachmentCreate": {"success": true, "attachment": {"id": "att-1"}}}));
    }
    if query.contains("issue(id:") {
        let found = lock(&shared.issues)
            .iter()
            .find(|i| i["id"] == vars["id"] || i["identifier"] == vars["id"])
            .cloned();
        return match found {
            Some(issue) => data(json!({ "issue": issue })),
            None => linear_error("Entity not found: Issue", "invalid input"),
        };
    }
    if query.contains("viewer") && vars["team"] == LINEAR_TEAM {
        return data(json!({"viewer": {"id": "demo-bot", "name": "Demo Bot"},
                           "team": {"id": LINEAR_TEAM, "key": "DEMO", "name": "Demo"}}));
    }
    linear_error("Entity not found", "invalid input")
}

fn linear_error(message: &str, kind: &str) -> Response {
    Json(json!({"data": null, "errors": [{"message": message, "extensions": {"type": kind}}]}))
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_fixtures_parse_and_every_session_has_events_and_a_summary() {
        let fixtures = Fixtures::load().unwrap();
        assert!(fixtures.customers.len() >= 3);
        for session in fixtures.customers.iter().flat_map(|c| &c.sessions) {
            assert!(!session.events.is_empty(), "{}", session.id);
            assert!(!session.summary.is_empty(), "{}", session.id);
        }
        for ticket in &fixtures.zendesk.tickets {
            assert!(
                fixtures
                    .customer(Some(&ticket.requester.email), None)
                    .is_some()
            );
        }
    }

    #[test]
    fn sessions_are_found_by_their_full_id() {
        let fixtures = Fixtures::load().unwrap();
        let (customer, session) = fixtures
            .session("5191865402245120:4000000000000003")
            .unwrap();
        assert_eq!(customer.email, "jane@acme.com");
        assert_eq!(session.minutes_ago, 38);
        assert!(fixtures.session("5191865402245120").is_none());
        assert!(fixtures.session("1:4000000000000003").is_none());
    }
}
