//! The Zendesk Support API client: the calls replaydesk makes, each through the shared
//! [`Upstream`] (429 + `Retry-After` waited out by every caller together, 5xx and timeouts retried with
//! capped backoff), none with a retry loop of its own.
//!
//! Contract (developer.zendesk.com/api-reference; PLATFORMS.md): `Authorization: Basic
//! base64("{email}/token:{api_token}")` or `Bearer {oauth_token}`; the host is `zendesk.base_url` or
//! `https://{subdomain}.zendesk.com`.
//! - read: `GET /api/v2/tickets/{id}.json?include=users`, `GET /api/v2/tickets/{id}/comments.json`
//!   (newest first, authors sideloaded), `GET /api/v2/users/{id}.json`, `GET /api/v2/users/show_many.json`,
//!   `GET /api/v2/users/{id}/group_memberships.json` (the sidebar's access check);
//! - write: the internal note `PUT /api/v2/tickets/{id}.json` with `safe_update` + `updated_stamp` (a
//!   stale stamp is 409 [`ZendeskError::Conflict`]: re-read and try again), sent with
//!   [`Upstream::send_unrepeatable`] so a 5xx or timeout is never re-sent blindly (the effect ledger
//!   looks for the note's reference first); the tag `PUT /api/v2/tickets/{id}/tags` (adds; `POST` would
//!   replace every tag, so it is never used);
//! - setup: `POST /api/v2/webhooks`, `POST /api/v2/triggers`, `GET /api/v2/webhooks/{id}/signing_secret`;
//! - backfill: `GET /api/v2/incremental/tickets/cursor.json` (cursor-based incremental export).
//!
//! A 422 (or 413) to the note's ticket update is Zendesk refusing the note ([`ZendeskError::NoteRefused`],
//! counted in `replaydesk_platform_refusals_total`); the replier then posts the plain fallback.
//!
//! Errors are [`ZendeskError`]s worded for the operator; [`ZendeskError::is_transient`] tells the job queue
//! whether trying again later can help.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{
    adapters::refusal::Refusal,
    config::{Secret, ZendeskConfig},
    outbound::{Answered, RetryPolicy, Upstream, UpstreamError, Upstreams},
};

/// Pages of group memberships read per agent (100 each).
pub const MAX_MEMBERSHIP_PAGES: usize = 5;

/// Why a Zendesk call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ZendeskError {
    #[error(
        "Zendesk rejected the credentials (401): check zendesk.email + zendesk.api_token, or zendesk.oauth_token"
    )]
    Unauthorized,
    #[error(
        "Zendesk refused {endpoint} (403): the API user needs agent rights (admin for setup and backfill)"
    )]
    Forbidden { endpoint: &'static str },
    #[error("Zendesk has no such {what} (404)")]
    NotFound { what: &'static str },
    #[error("the ticket changed while we wrote to it (409)")]
    Conflict,
    #[error("Zendesk rejected {endpoint} ({status}): {message}")]
    Rejected {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
    #[error("Zendesk is not configured: {0}")]
    NotConfigured(&'static str),
    /// Zendesk refused the note we sent (422 on the ticket update; 413 when too large).
    #[error(transparent)]
    NoteRefused(Refusal),
    #[error("Zendesk {0}")]
    Upstream(#[from] UpstreamError),
}

/// A note's text: HTML (`html_body`), or plain text (`body`) for the fallback.
#[derive(Clone, Copy, Debug)]
pub enum NoteText<'a> {
    Html(&'a str),
    Plain(&'a str),
}

impl ZendeskError {
    /// Whether trying again later may succeed: a stale ticket (409), or what [`UpstreamError`] says.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Conflict => true,
            Self::Upstream(error) => error.is_transient(),
            _ => false,
        }
    }
}

impl crate::adapters::refusal::Refusing for ZendeskError {
    fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::NoteRefused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

/// A Zendesk user, as sideloaded (`include=users`) or read alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: u64,
    #[serde(default)]
    pub email: Option<String>,
    /// `end-user`, `agent` or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// The customer's id in the company's own systems (often FullStory's `uid`).
    #[serde(default)]
    pub external_id: Option<String>,
}

impl User {
    /// Agents and admins work for us: their addresses are never looked up.
    pub fn is_staff(&self) -> bool {
        matches!(self.role.as_deref(), Some("agent" | "admin"))
    }
}

/// The parts of a ticket replaydesk reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Ticket {
    pub id: u64,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    /// Sent back verbatim as `updated_stamp`.
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub requester_id: Option<u64>,
    /// Who may see the ticket (the sidebar's access check, `sidebar::access::may_see`): its group, organisation and assignee.
    #[serde(default)]
    pub group_id: Option<u64>,
    #[serde(default)]
    pub organization_id: Option<u64>,
    #[serde(default)]
    pub assignee_id: Option<u64>,
    #[serde(default)]
    pub status: Option<String>,
    /// Read leniently (an array of strings; anything else is no tags), for the erasure tag.
    #[serde(default, deserialize_with = "lenient_tags")]
    pub tags: Vec<String>,
}

fn lenient_tags<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(super::wire::tags_of(&value))
}

impl Ticket {
    pub fn created(&self) -> Option<DateTime<Utc>> {
        parse_time(self.created_at.as_deref()?)
    }
}

/// Zendesk writes ISO-8601 (`2026-11-20T14:02:11Z`); placeholders may leave out the seconds.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            let minutes = text.strip_suffix('Z')?;
            chrono::NaiveDateTime::parse_from_str(minutes, "%Y-%m-%dT%H:%M")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// A Zendesk user as the sidebar's access check reads them (`GET /api/v2/users/{id}.json`): which
/// tickets they may see, in Zendesk's own terms (developer.zendesk.com/api-reference/ticketing/users/users:
/// `role`, `ticket_restriction`; PLATFORMS.md §7.5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Agent {
    pub id: u64,
    /// `end-user`, `agent` or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// `null` (every ticket), `"groups"`, `"organization"`, `"assigned"` or `"requested"`; absent
    /// (`None`) is not the same as `null` (`Some(None)`): a user record without the field says nothing,
    /// and is refused.
    #[serde(default, deserialize_with = "present")]
    pub ticket_restriction: Option<Option<String>>,
    #[serde(default)]
    pub organization_id: Option<u64>,
    #[serde(default)]
    pub suspended: bool,
    #[serde(default = "yes")]
    pub active: bool,
}

/// Tells a field that is `null` (`Some(None)`) from one that is absent (`None`, by `#[serde(default)]`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// `GET /api/v2/tickets/{id}.json?include=users`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TicketWithUsers {
    pub ticket: Ticket,
    #[serde(default)]
    pub users: Vec<User>,
}

impl TicketWithUsers {
    pub fn requester(&self) -> Option<&User> {
        let id = self.ticket.requester_id?;
        self.users.iter().find(|u| u.id == id)
    }
}

/// One ticket comment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub author_id: Option<u64>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub html_body: Option<String>,
    #[serde(default)]
    pub plain_body: Option<String>,
    #[serde(default = "yes")]
    pub public: bool,
    #[serde(default)]
    pub created_at: Option<String>,
}

fn yes() -> bool {
    true
}

impl Comment {
    /// The comment's text in every form Zendesk gave (for email extraction and marker search).
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        [&self.plain_body, &self.body, &self.html_body]
            .into_iter()
            .filter_map(|t| t.as_deref())
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.texts().any(|t| t.contains(needle))
    }
}

/// `GET /api/v2/tickets/{id}/comments.json?include=users`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Comments {
    #[serde(default)]
    pub comments: Vec<Comment>,
    #[serde(default)]
    pub users: Vec<User>,
}

impl Comments {
    /// The newest public comment (by time, then id), whatever order Zendesk listed them in.
    pub fn latest_public(&self) -> Option<&Comment> {
        self.comments
            .iter()
            .filter(|c| c.public)
            .max_by_key(|c| (c.created_at.as_deref().and_then(parse_time), c.id))
    }
}

/// What a note's `PUT` answered: the ids to record in the effect ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoteAdded {
    pub comment_id: Option<u64>,
    pub audit_id: Option<u64>,
}

/// One page of the incremental ticket export.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TicketPage {
    #[serde(default)]
    pub tickets: Vec<Ticket>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub after_cursor: Option<String>,
    #[serde(default)]
    pub end_of_stream: bool,
}

/// Where the incremental export starts or continues.
#[derive(Clone, Debug)]
pub enum ExportFrom {
    Start(DateTime<Utc>),
    Cursor(String),
}

enum Auth {
    Token { email: String, token: Secret },
    OAuth(Secret),
}

/// Zendesk over HTTP.
pub struct ZendeskApi {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    upstream: Upstream,
}

impl ZendeskApi {
    /// The client `config` describes; fails when it says neither which account nor how to sign in.
    pub fn from_config(config: &ZendeskConfig, upstreams: Upstreams) -> Result<Self, ZendeskError> {
        let base = base_url(config).ok_or(ZendeskError::NotConfigured(
            "set zendesk.subdomain (or zendesk.base_url)",
        ))?;
        let auth = if config.oauth_token.is_set() {
            Auth::OAuth(config.oauth_token.clone())
        } else {
            match (&config.email, config.api_token.is_set()) {
                (Some(email), true) => Auth::Token {
                    email: email.clone(),
                    token: config.api_token.clone(),
                },
                _ => {
                    return Err(ZendeskError::NotConfigured(
                        "set zendesk.email + zendesk.api_token, or zendesk.oauth_token",
                    ));
                }
            }
        };
        Ok(Self {
            http: crate::outbound::http_client(config.timeout.0)
                .map_err(|e| ZendeskError::Upstream(UpstreamError::Transport(e.to_string())))?,
            base,
            auth,
            upstream: Upstream::new("zendesk", RetryPolicy::default(), None, upstreams),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The agent's link to a ticket.
    pub fn ticket_link(&self, id: u64) -> String {
        format!("{}/agent/tickets/{id}", self.base)
    }

    fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, ZendeskError> {
        let url = Url::parse(&format!("{}{path}", self.base)).map_err(|e| {
            ZendeskError::Upstream(UpstreamError::Transport(format!("bad Zendesk URL: {e}")))
        })?;
        let authorization = match &self.auth {
            Auth::Token { email, token } => format!(
                "Basic {}",
                STANDARD.encode(format!(
                    "{email}/token:{}",
                    token.expose().unwrap_or_default()
                ))
            ),
            Auth::OAuth(token) => format!("Bearer {}", token.expose().unwrap_or_default()),
        };
        Ok(self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::ACCEPT, "application/json"))
    }

    /// Sends through the shared policy and returns a 2xx answer's body, or the typed error.
    async fn call(
        &self,
        endpoint: &'static str,
        what: &'static str,
        request: RequestBuilder,
        repeatable: bool,
    ) -> Result<Vec<u8>, ZendeskError> {
        let Answered { status, body } = self
            .upstream
            .call(endpoint, &self.http, request, repeatable)
            .await
            .map_err(UpstreamError::from)?;
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::UNAUTHORIZED => Err(ZendeskError::Unauthorized),
            StatusCode::FORBIDDEN => Err(ZendeskError::Forbidden { endpoint }),
            StatusCode::NOT_FOUND => Err(ZendeskError::NotFound { what }),
            StatusCode::CONFLICT => Err(ZendeskError::Conflict),
            s => Err(ZendeskError::Rejected {
                endpoint,
                status: s.as_u16(),
                message: error_message(&body),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        what: &'static str,
        request: RequestBuilder,
    ) -> Result<T, ZendeskError> {
        let body = self.call(endpoint, what, request, true).await?;
        read(endpoint, &body)
    }

    /// `GET /api/v2/tickets/{id}.json?include=users`.
    pub async fn ticket(&self, id: u64) -> Result<TicketWithUsers, ZendeskError> {
        let request = self
            .request(Method::GET, &format!("/api/v2/tickets/{id}.json"))?
            .query(&[("include", "users")]);
        self.get("show_ticket", "ticket", request).await
    }

    /// `GET /api/v2/tickets/{id}/comments.json`, newest first, authors sideloaded.
    pub async fn comments(&self, id: u64) -> Result<Comments, ZendeskError> {
        let request = self
            .request(Method::GET, &format!("/api/v2/tickets/{id}/comments.json"))?
            .query(&[("sort_order", "desc"), ("include", "users")]);
        self.get("list_comments", "ticket", request).await
    }

    /// `GET /api/v2/users/{id}.json`.
    pub async fn user(&self, id: u64) -> Result<User, ZendeskError> {
        self.show_user(id).await
    }

    /// `GET /api/v2/users/{id}.json`, read for the access check ([`Agent`]).
    pub async fn agent(&self, id: u64) -> Result<Agent, ZendeskError> {
        self.show_user(id).await
    }

    async fn show_user<T: DeserializeOwned>(&self, id: u64) -> Result<T, ZendeskError> {
        #[derive(Deserialize)]
        struct One<T> {
            user: T,
        }
        let request = self.request(Method::GET, &format!("/api/v2/users/{id}.json"))?;
        let one: One<T> = self.get("show_user", "user", request).await?;
        Ok(one.user)
    }

    /// The groups `user` belongs to: `GET /api/v2/users/{id}/group_memberships.json`, 100 a page, at
    /// most [`MAX_MEMBERSHIP_PAGES`] pages (an agent in more groups than that is read as in those).
    pub async fn group_ids(&self, user: u64) -> Result<Vec<u64>, ZendeskError> {
        #[derive(Deserialize)]
        struct Membership {
            group_id: u64,
        }
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            group_memberships: Vec<Membership>,
            #[serde(default)]
            meta: Option<Meta>,
        }
        #[derive(Deserialize)]
        struct Meta {
            #[serde(default)]
            has_more: bool,
            #[serde(default)]
            after_cursor: Option<String>,
        }
        let mut groups = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_MEMBERSHIP_PAGES {
            let mut request = self
                .request(
                    Method::GET,
                    &format!("/api/v2/users/{user}/group_memberships.json"),
                )?
                .query(&[("page[size]", "100")]);
            if let Some(cursor) = &after {
                request = request.query(&[("page[after]", cursor.as_str())]);
            }
            let page: Page = self.get("list_group_memberships", "user", request).await?;
            groups.extend(page.group_memberships.into_iter().map(|m| m.group_id));
            match page.meta {
                Some(Meta {
                    has_more: true,
                    after_cursor: Some(cursor),
                }) => after = Some(cursor),
                _ => break,
            }
        }
        Ok(groups)
    }

    /// `GET /api/v2/users/show_many.json?ids=…` (at most 100 ids per call).
    pub async fn users(&self, ids: &[u64]) -> Result<Vec<User>, ZendeskError> {
        #[derive(Deserialize)]
        struct Many {
            #[serde(default)]
            users: Vec<User>,
        }
        let mut users = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let ids = chunk
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let request = self
                .request(Method::GET, "/api/v2/users/show_many.json")?
                .query(&[("ids", ids.as_str())]);
            let many: Many = self.get("show_many_users", "user", request).await?;
            users.extend(many.users);
        }
        Ok(users)
    }

    /// Adds a private comment (an internal note) with `safe_update`: a stale `updated_stamp` is
    /// [`ZendeskError::Conflict`]. Never repeated by the transport on a 5xx or timeout.
    pub async fn add_internal_note(
        &self,
        id: u64,
        text: NoteText<'_>,
        updated_stamp: Option<&str>,
    ) -> Result<NoteAdded, ZendeskError> {
        let comment = match text {
            NoteText::Html(html) => json!({ "html_body": html, "public": false }),
            NoteText::Plain(body) => json!({ "body": body, "public": false }),
        };
        let mut ticket = json!({ "comment": comment });
        if let Some(stamp) = updated_stamp {
            ticket["safe_update"] = json!(true);
            ticket["updated_stamp"] = json!(stamp);
        }
        let request = self
            .request(Method::PUT, &format!("/api/v2/tickets/{id}.json"))?
            .json(&json!({ "ticket": ticket }));
        let body = match self.call("update_ticket", "ticket", request, false).await {
            Ok(body) => body,
            Err(ZendeskError::Rejected {
                status: status @ (413 | 422),
                message,
                ..
            }) => {
                let code = if status == 413 { "413" } else { "422" };
                let refusal = Refusal::new(super::PLATFORM, code, message);
                self.upstream
                    .metrics()
                    .refused(refusal.platform, refusal.code);
                return Err(ZendeskError::NoteRefused(refusal));
            }
            Err(error) => return Err(error),
        };
        Ok(note_ids(&body))
    }

    /// Adds `tags` to the ticket (`PUT …/tags` adds; it never removes the ticket's other tags).
    pub async fn add_tags(&self, id: u64, tags: &[&str]) -> Result<(), ZendeskError> {
        let request = self
            .request(Method::PUT, &format!("/api/v2/tickets/{id}/tags"))?
            .json(&json!({ "tags": tags }));
        self.call("add_tags", "ticket", request, true)
            .await
            .map(drop)
    }

    /// `POST /api/v2/webhooks`; the new webhook's id.
    pub async fn create_webhook(&self, webhook: &Value) -> Result<String, ZendeskError> {
        let request = self
            .request(Method::POST, "/api/v2/webhooks")?
            .json(webhook);
        let body = self
            .call("create_webhook", "webhook", request, false)
            .await?;
        let created: Value = read("create_webhook", &body)?;
        id_of(&created["webhook"]["id"]).ok_or_else(|| {
            UpstreamError::malformed("create_webhook", "no webhook.id in the answer").into()
        })
    }

    /// `POST /api/v2/triggers`; the new trigger's id.
    pub async fn create_trigger(&self, trigger: &Value) -> Result<String, ZendeskError> {
        let request = self
            .request(Method::POST, "/api/v2/triggers")?
            .json(trigger);
        let body = self
            .call("create_trigger", "trigger", request, false)
            .await?;
        let created: Value = read("create_trigger", &body)?;
        id_of(&created["trigger"]["id"]).ok_or_else(|| {
            UpstreamError::malformed("create_trigger", "no trigger.id in the answer").into()
        })
    }

    /// `GET /api/v2/webhooks/{id}/signing_secret`.
    pub async fn webhook_signing_secret(&self, webhook_id: &str) -> Result<String, ZendeskError> {
        let path = format!(
            "/api/v2/webhooks/{}/signing_secret",
            percent_encoding::utf8_percent_encode(webhook_id, percent_encoding::NON_ALPHANUMERIC)
        );
        let answer: Value = self
            .get(
                "webhook_signing_secret",
                "webhook",
                self.request(Method::GET, &path)?,
            )
            .await?;
        answer["signing_secret"]["secret"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                UpstreamError::malformed(
                    "webhook_signing_secret",
                    "no signing_secret.secret in the answer",
                )
                .into()
            })
    }

    /// `GET /api/v2/apps/{app_id}/public_key.pem`: the sidebar app's public key (PEM), which verifies
    /// the JWT Zendesk signs the app's first load with.
    pub async fn app_public_key(&self, app_id: &str) -> Result<String, ZendeskError> {
        let path = format!(
            "/api/v2/apps/{}/public_key.pem",
            percent_encoding::utf8_percent_encode(app_id, percent_encoding::NON_ALPHANUMERIC)
        );
        let body = self
            .call(
                "app_public_key",
                "app",
                self.request(Method::GET, &path)?,
                true,
            )
            .await?;
        let pem = String::from_utf8_lossy(&body).trim().to_owned();
        if pem.contains("BEGIN PUBLIC KEY") {
            Ok(pem)
        } else {
            Err(
                UpstreamError::malformed("app_public_key", "the answer is not a PEM public key")
                    .into(),
            )
        }
    }

    /// One page of `GET /api/v2/incremental/tickets/cursor.json` (tickets updated since a time).
    pub async fn export_tickets(&self, from: &ExportFrom) -> Result<TicketPage, ZendeskError> {
        let request = self.request(Method::GET, "/api/v2/incremental/tickets/cursor.json")?;
        let request = match from {
            ExportFrom::Start(since) => request.query(&[
                ("start_time", since.timestamp().max(0).to_string()),
                ("include", "users".to_owned()),
            ]),
            ExportFrom::Cursor(cursor) => {
                request.query(&[("cursor", cursor.as_str()), ("include", "users")])
            }
        };
        self.get("export_tickets", "export", request).await
    }
}

/// `zendesk.base_url` (trailing `/` dropped), else `https://{subdomain}.zendesk.com`.
pub fn base_url(config: &ZendeskConfig) -> Option<String> {
    match (&config.base_url, &config.subdomain) {
        (Some(url), _) => Some(url.trim_end_matches('/').to_owned()),
        (None, Some(sub)) => Some(format!("https://{sub}.zendesk.com")),
        (None, None) => None,
    }
}

/// The account's host (`acme.zendesk.com`, with a port when the URL has one): what the sidebar's JWT
/// names as its issuer, and the one key of the account's lookup limit for tickets and sidebar alike.
pub fn account_host(config: &ZendeskConfig) -> Option<String> {
    let url = Url::parse(&base_url(config)?).ok()?;
    Some(match url.port() {
        Some(port) => format!("{}:{port}", url.host_str()?),
        None => url.host_str()?.to_owned(),
    })
}

fn read<T: DeserializeOwned>(endpoint: &'static str, body: &[u8]) -> Result<T, ZendeskError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| UpstreamError::malformed(endpoint, e.to_string()).into())
}

/// Ids come as numbers or strings.
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The comment id (from the audit's `Comment` event) and the audit id of a ticket update's answer.
fn note_ids(body: &[u8]) -> NoteAdded {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return NoteAdded::default();
    };
    let audit = &answer["audit"];
    let comment_id = audit["events"].as_array().and_then(|events| {
        events
            .iter()
            .find(|e| e["type"] == "Comment")
            .and_then(|e| e["id"].as_u64())
    });
    NoteAdded {
        comment_id,
        audit_id: audit["id"].as_u64(),
    }
}

/// Zendesk's error text (`{"error": …, "description": …}` or `{"details": …}`), or the body's start.
fn error_message(body: &[u8]) -> String {
    let text = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let part = |key: &str| match &v[key] {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        };
        match (part("error"), part("description")) {
            (Some(e), Some(d)) => Some(format!("{e}: {d}")),
            (e, d) => e.or(d).or_else(|| part("details")),
        }
    });
    text.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn zendesk_times_are_read_with_or_without_seconds() {
        assert_eq!(
            parse_time("2026-11-20T14:02:11Z").unwrap().to_rfc3339(),
            "2026-11-20T14:02:11+00:00"
        );
        assert_eq!(
            parse_time("2013-12-12T05:35Z").unwrap().to_rfc3339(),
            "2013-12-12T05:35:00+00:00"
        );
        assert!(parse_time("May 18, 2014").is_none());
    }

    #[test]
    fn the_note_answer_gives_the_comment_and_audit_ids() {
        let body = br#"{"ticket":{"id":1},"audit":{"id":77,"events":[{"id":5,"type":"Change"},{"id":901,"type":"Comment"}]}}"#;
        assert_eq!(
            note_ids(body),
            NoteAdded {
                comment_id: Some(901),
                audit_id: Some(77)
            }
        );
        assert_eq!(note_ids(b"not json"), NoteAdded::default());
    }

    #[test]
    fn the_latest_public_comment_is_found_in_any_order() {
        let comments = Comments {
            comments: vec![
                Comment {
                    id: 3,
                    public: false,
                    created_at: Some("2026-11-20T12:00:00Z".into()),
                    ..Comment::default()
                },
                Comment {
                    id: 2,
                    public: true,
                    created_at: Some("2026-11-20T11:00:00Z".into()),
                    ..Comment::default()
                },
                Comment {
                    id: 1,
                    public: true,
                    created_at: Some("2026-11-20T10:00:00Z".into()),
                    ..Comment::default()
                },
            ],
            users: vec![],
        };
        assert_eq!(comments.latest_public().map(|c| c.id), Some(2));
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            error_message(br#"{"error":"RecordInvalid","description":"Record validation errors"}"#),
            "RecordInvalid: Record validation errors"
        );
        assert_eq!(error_message(b"<html>oops</html>"), "<html>oops</html>");
    }
}
