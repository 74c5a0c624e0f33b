//! The Slack Web API calls replaydesk makes, and `response_url` posts.
//!
//! Contract (api.slack.com/web): `POST {slack.api_url or https://slack.com/api}/{method}` with
//! `Authorization: Bearer xoxb-…` and a JSON body (`conversations.replies`, a read method, takes query
//! parameters). Slack answers errors as HTTP 200 `{"ok":false,"error":"…"}`: they become
//! [`SlackError::Api`] carrying Slack's code. Rate limits are HTTP 429 with `Retry-After` (seconds); those,
//! and 5xx, are handled by the one shared retry path, [`crate::outbound::Upstream`]: nothing here retries
//! on its own. `response_url`s (hooks.slack.com) have their own [`Upstream`], so a 429 there does not hold
//! up Web API calls. Socket Mode's `apps.connections.open` uses the app-level `xapp-` token.
//!
//! An error code that means "this message is not acceptable" ([`REFUSAL_CODES`]: `invalid_blocks`,
//! `msg_too_long`, …) from a method that posts a message is a [`Refusal`], with Slack's own explanation
//! (`response_metadata.messages`), counted in `replaydesk_platform_refusals_total`; the replier then
//! posts the plain fallback ([`crate::adapters::refusal`]).

use std::{collections::HashMap, time::Duration};

use reqwest::{Method, Url};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use slack_morphism::SlackMessageMetadata;

use super::render::Message;
use crate::{
    adapters::refusal::Refusal,
    config::{Secret, SlackConfig},
    metrics::UpstreamMetrics,
    outbound::{Answered, RetryPolicy, Upstream, UpstreamError, Upstreams},
};

pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// The upstream (and circuit breaker) names: the Web API, and the `response_url` hooks, which
/// Slack limits apart from it.
pub const WEB_API: &str = "slack";
pub const RESPONSE_URL: &str = "slack_response_url";
/// The `metadata.event_type` of every message replaydesk posts in a thread.
pub const METADATA_EVENT_TYPE: &str = "replaydesk_reply";
/// Timeout of one request to Slack.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Pages of a thread searched for a marker (200 messages each).
const MAX_REPLY_PAGES: usize = 10;

/// Slack error codes worth trying again later; every other code is lasting.
const TRANSIENT_CODES: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// Slack's codes for "this message is not acceptable" (chat.postMessage and response_url errors).
pub const REFUSAL_CODES: &[&str] = &[
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_blocks_too_long",
    "msg_too_long",
    "invalid_attachments",
    "too_many_attachments",
    "invalid_arguments",
    "no_text",
    "invalid_metadata_format",
    "metadata_too_large",
];

/// The methods whose body is a message of ours.
const MESSAGE_METHODS: &[&str] = &["chat.postMessage", "chat.postEphemeral", "response_url"];

/// Why a Slack call failed.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("Slack answered {method} with error `{code}`")]
    Api { method: &'static str, code: String },
    /// A request of ours that could not be made (a bad URL, a body that does not serialise).
    #[error("Slack {method}: {reason}")]
    Invalid {
        method: &'static str,
        reason: String,
    },
    #[error("slack.{0} is not configured")]
    NotConfigured(&'static str),
    #[error("not posting to the response_url at {host}: {reason}")]
    RefusedDestination { host: String, reason: &'static str },
    /// Slack refused the message we sent (see the module docs).
    #[error(transparent)]
    MessageRefused(Refusal),
    #[error("Slack {0}")]
    Upstream(#[from] UpstreamError),
}

impl SlackError {
    /// Whether trying again later may succeed: rate limits, 5xx, timeouts, Slack's own passing errors.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { code, .. } => TRANSIENT_CODES.contains(&code.as_str()),
            Self::Upstream(error) => error.is_transient(),
            Self::Invalid { .. }
            | Self::NotConfigured(_)
            | Self::RefusedDestination { .. }
            | Self::MessageRefused(_) => false,
        }
    }

    /// Slack's error code, when Slack gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            Self::MessageRefused(refusal) => Some(refusal.code),
            _ => None,
        }
    }
}

impl crate::adapters::refusal::Refusing for SlackError {
    fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::MessageRefused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

/// One message of a thread, as far as replaydesk reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct ThreadMessage {
    pub ts: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub event_payload: Value,
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    /// Slack's explanation of an error (`["[ERROR] must be less than 3001 characters [json-pointer:…]"]`).
    #[serde(default)]
    response_metadata: Option<Explanation>,
}

#[derive(Default, Deserialize)]
struct Explanation {
    #[serde(default)]
    messages: Vec<String>,
}

#[derive(Deserialize)]
struct RepliesPage {
    #[serde(default)]
    messages: Vec<ThreadMessage>,
    #[serde(default)]
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Deserialize)]
struct ResponseMetadata {
    #[serde(default)]
    next_cursor: String,
}

/// A `chat.postMessage` / `chat.postEphemeral` body.
#[derive(Serialize)]
struct Post<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_ts: Option<&'a str>,
    #[serde(flatten)]
    message: &'a Message,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<SlackMessageMetadata>,
    unfurl_links: bool,
}

/// Where the preview goes: the message (`channel` + `ts`), or the composer (`unfurl_id` + `source`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UnfurlTarget {
    Message { channel: String, ts: String },
    Composer { unfurl_id: String, source: String },
}

/// Slack's Web API, with the bot and app tokens.
pub struct SlackApi {
    http: reqwest::Client,
    base: String,
    bot_token: Secret,
    app_token: Secret,
    web: Upstream,
    hooks: Upstream,
    /// `slack.response_url_hosts`, lower case.
    response_url_hosts: Vec<String>,
    metrics: UpstreamMetrics,
}

impl SlackApi {
    pub fn new(config: &SlackConfig, upstreams: Upstreams) -> anyhow::Result<Self> {
        Ok(Self {
            http: crate::outbound::http_client(TIMEOUT)?,
            base: crate::outbound::base_url(config.api_url.as_deref(), DEFAULT_API_URL),
            bot_token: config.bot_token.clone(),
            app_token: config.app_token.clone(),
            web: Upstream::new(WEB_API, RetryPolicy::default(), None, upstreams.clone()),
            hooks: Upstream::new(
                RESPONSE_URL,
                RetryPolicy::default(),
                None,
                upstreams.clone(),
            ),
            response_url_hosts: config
                .response_url_hosts
                .iter()
                .map(str::to_ascii_lowercase)
                .collect(),
            metrics: upstreams.metrics,
        })
    }

    /// `chat.postMessage`, optionally in a thread and carrying `marker` in the message metadata; the new
    /// message's `ts`.
    pub async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        message: &Message,
        marker: Option<&str>,
    ) -> Result<String, SlackError> {
        let metadata = marker.map(|marker| {
            SlackMessageMetadata::new(METADATA_EVENT_TYPE.into())
                .with_event_payload(HashMap::from([("marker".to_owned(), marker.to_owned())]))
        });
        let body = Post {
            channel,
            user: None,
            thread_ts,
            message,
            metadata,
            unfurl_links: false,
        };
        let answer: Value = self.call("chat.postMessage", &body).await?;
        string_field(&answer, "chat.postMessage", "ts")
    }

    /// `chat.unfurl`: previews of the links (`unfurls`: URL → `{"blocks": …}`) in a message or the
    /// composer. Calling it again for the same message replaces the previews (Slack's contract).
    pub async fn unfurl(&self, target: &UnfurlTarget, unfurls: &Value) -> Result<(), SlackError> {
        let mut body = serde_json::to_value(target).map_err(|e| SlackError::Invalid {
            method: "chat.unfurl",
            reason: e.to_string(),
        })?;
        body["unfurls"] = unfurls.clone();
        let _: Value = self.call("chat.unfurl", &body).await?;
        Ok(())
    }

    /// `views.open`: the modal `view`, for the click whose `trigger_id` this is (valid 3 seconds).
    pub async fn open_view(&self, trigger_id: &str, view: &Value) -> Result<(), SlackError> {
        let body = serde_json::json!({ "trigger_id": trigger_id, "view": view });
        let _: Value = self.call("views.open", &body).await?;
        Ok(())
    }

    /// `chat.postEphemeral`: seen only by `user`; the `message_ts`.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        thread_ts: Option<&str>,
        message: &Message,
    ) -> Result<String, SlackError> {
        let body = Post {
            channel,
            user: Some(user),
            thread_ts,
            message,
            metadata: None,
            unfurl_links: false,
        };
        let answer: Value = self.call("chat.postEphemeral", &body).await?;
        string_field(&answer, "chat.postEphemeral", "message_ts")
    }

    /// The text of a thread's first (parent) message, if Slack has it.
    pub async fn thread_parent_text(
        &self,
        channel: &str,
        thread_ts: &str,
    ) -> Result<Option<String>, SlackError> {
        let page = self.replies(channel, thread_ts, None, 1).await?;
        Ok(page
            .messages
            .into_iter()
            .find(|m| m.ts == thread_ts)
            .map(|m| m.text))
    }

    /// The `ts` of the message in the thread whose metadata carries `marker`, searching the newest
    /// [`MAX_REPLY_PAGES`] pages.
    pub async fn find_marker(
        &self,
        channel: &str,
        thread_ts: &str,
        marker: &str,
    ) -> Result<Option<String>, SlackError> {
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_REPLY_PAGES {
            let page = self
                .replies(channel, thread_ts, cursor.as_deref(), 200)
                .await?;
            if let Some(found) = page.messages.iter().find(|m| carries_marker(m, marker)) {
                return Ok(Some(found.ts.clone()));
            }
            match page.response_metadata.map(|m| m.next_cursor) {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        Ok(None)
    }

    async fn replies(
        &self,
        channel: &str,
        ts: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<RepliesPage, SlackError> {
        const METHOD: &str = "conversations.replies";
        let token = self
            .bot_token
            .expose()
            .ok_or(SlackError::NotConfigured("bot_token"))?;
        let mut query = vec![
            ("channel", channel.to_owned()),
            ("ts", ts.to_owned()),
            ("limit", limit.to_string()),
            ("include_all_metadata", "true".to_owned()),
        ];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let request = self
            .http
            .request(Method::GET, self.url(METHOD)?)
            .bearer_auth(token)
            .query(&query);
        self.send(&self.web, METHOD, request).await
    }

    /// Posts `body` to a `response_url` (no token: the URL is the credential).
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), SlackError> {
        const METHOD: &str = "response_url";
        let url = Url::parse(response_url).map_err(|_| SlackError::Invalid {
            method: METHOD,
            reason: "the response_url is not a URL".into(),
        })?;
        if let Err(reason) = destination_allowed(&url, &self.response_url_hosts) {
            // The host only: the path is the credential.
            let host = url.host_str().unwrap_or("").to_owned();
            tracing::warn!(%host, reason, "refused to post to a response_url outside slack.response_url_hosts");
            self.metrics
                .refused_destinations
                .get_or_create(&crate::metrics::UpstreamLabels {
                    upstream: RESPONSE_URL,
                })
                .inc();
            return Err(SlackError::RefusedDestination { host, reason });
        }
        let request = self.http.request(Method::POST, url).json(body).build();
        let request = request.map_err(|e| SlackError::Invalid {
            method: METHOD,
            reason: e.to_string(),
        })?;
        let response = self
            .hooks
            .send(METHOD, &self.http, request)
            .await
            .map_err(|source| SlackError::Upstream(source.into()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            // Slack answers `ok` or `{"ok":true}`; a JSON `ok:false` still says why.
            if let Ok(Envelope {
                ok: false,
                error: Some(code),
                response_metadata,
            }) = serde_json::from_str::<Envelope>(&text)
            {
                return Err(self.api_error(METHOD, code, response_metadata));
            }
            return Ok(());
        }
        let code = serde_json::from_str::<Envelope>(&text)
            .ok()
            .and_then(|e| e.error)
            .or_else(|| {
                let word = text.trim();
                (!word.is_empty() && word.len() <= 64 && !word.contains(char::is_whitespace))
                    .then(|| word.to_owned())
            })
            .unwrap_or_else(|| format!("http_{}", status.as_u16()));
        Err(self.api_error(METHOD, code, None))
    }

    /// Slack's error `code` for `method`: a [`Refusal`] (counted) when it refuses our message.
    fn api_error(
        &self,
        method: &'static str,
        code: String,
        explanation: Option<Explanation>,
    ) -> SlackError {
        let refusal_code = REFUSAL_CODES.iter().find(|c| **c == code);
        match refusal_code {
            Some(refusal_code) if MESSAGE_METHODS.contains(&method) => {
                let messages = explanation.unwrap_or_default().messages;
                let reason = if messages.is_empty() {
                    format!("{method}: {code}")
                } else {
                    format!("{method}: {}", messages.join("; "))
                };
                let refusal = Refusal::new(super::PLATFORM, refusal_code, reason);
                self.web.metrics().refused(refusal.platform, refusal.code);
                SlackError::MessageRefused(refusal)
            }
            _ => SlackError::Api { method, code },
        }
    }

    /// `apps.connections.open` with the app-level token: a single-use Socket Mode URL.
    pub async fn open_connection(&self) -> Result<String, SlackError> {
        const METHOD: &str = "apps.connections.open";
        let token = self
            .app_token
            .expose()
            .ok_or(SlackError::NotConfigured("app_token"))?;
        let request = self
            .http
            .request(Method::POST, self.url(METHOD)?)
            .bearer_auth(token);
        let answer: Value = self.send(&self.web, METHOD, request).await?;
        string_field(&answer, METHOD, "url")
    }

    /// A Web API call with the bot token and a JSON body.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        body: &impl Serialize,
    ) -> Result<T, SlackError> {
        let token = self
            .bot_token
            .expose()
            .ok_or(SlackError::NotConfigured("bot_token"))?;
        let request = self
            .http
            .request(Method::POST, self.url(method)?)
            .bearer_auth(token)
            .json(body);
        self.send(&self.web, method, request).await
    }

    fn url(&self, method: &'static str) -> Result<Url, SlackError> {
        Url::parse(&format!("{}/{method}", self.base)).map_err(|e| SlackError::Invalid {
            method,
            reason: format!("bad slack.api_url: {e}"),
        })
    }

    /// Sends through the shared retry path, then reads Slack's `ok`/`error` envelope.
    async fn send<T: DeserializeOwned>(
        &self,
        upstream: &Upstream,
        method: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, SlackError> {
        let Answered {
            status,
            body: bytes,
        } = upstream
            .call(method, &self.http, request, true)
            .await
            .map_err(UpstreamError::from)?;
        let envelope: Envelope = match serde_json::from_slice(&bytes) {
            Ok(envelope) => envelope,
            Err(_) if !status.is_success() => {
                return Err(SlackError::Api {
                    method,
                    code: format!("http_{}", status.as_u16()),
                });
            }
            Err(e) => return Err(UpstreamError::malformed(method, e.to_string()).into()),
        };
        if !envelope.ok {
            let code = envelope
                .error
                .unwrap_or_else(|| format!("http_{}", status.as_u16()));
            return Err(self.api_error(method, code, envelope.response_metadata));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::malformed(method, e.to_string()).into())
    }
}

fn carries_marker(message: &ThreadMessage, marker: &str) -> bool {
    message.metadata.as_ref().is_some_and(|m| {
        m.event_type == METADATA_EVENT_TYPE
            && m.event_payload.get("marker").and_then(Value::as_str) == Some(marker)
    })
}

fn string_field(answer: &Value, method: &'static str, field: &str) -> Result<String, SlackError> {
    answer
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            UpstreamError::malformed(method, format!("no `{field}` in the answer")).into()
        })
}

/// Whether a `response_url` may be posted to: its host must be one of `hosts` (exactly, lower case),
/// loopback hosts included (a test lists its fakes' `127.0.0.1`), and the scheme https, or http to a
/// loopback host. Everything else is refused: a payload naming another host would otherwise receive
/// the answer (links, summary).
fn destination_allowed(url: &Url, hosts: &[String]) -> Result<(), &'static str> {
    let Some(host) = url.host_str() else {
        return Err("it names no host");
    };
    let bare = |h: &str| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    };
    let host = bare(host);
    if !hosts.iter().any(|allowed| bare(allowed) == host) {
        return Err("the host is not in slack.response_url_hosts");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::outbound::is_loopback_host(&host) => Ok(()),
        _ => Err("only https is allowed (http only to a loopback host)"),
    }
}

/// Whether `text`, a payload's `response_url`, may be answered at (the rule of [`SlackApi`]'s posts,
/// checked when the request arrives so that nothing is looked up for an answer that could not be
/// delivered).
pub fn response_url_allowed(text: &str, hosts: &[String]) -> Result<(), &'static str> {
    let url = Url::parse(text).map_err(|_| "it is not a URL")?;
    destination_allowed(&url, hosts)
}

/// The body of a `response_url` post.
pub fn response_body(message: &Message, in_channel: bool, replace_original: bool) -> Value {
    let mut body = json!({
        "response_type": if in_channel { "in_channel" } else { "ephemeral" },
        "replace_original": replace_original,
        "text": message.text,
    });
    if !message.blocks.is_empty() {
        body["blocks"] = json!(message.blocks);
    }
    body
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_hosts_are_posted_to_loopback_included() {
        let hosts: Vec<String> = ["hooks.slack.com", "127.0.0.1", "[::1]"]
            .map(str::to_owned)
            .to_vec();
        let table: &[(&str, Result<(), &str>)] = &[
            ("https://hooks.slack.com/commands/T1/2/x", Ok(())),
            ("https://HOOKS.slack.com/commands/T1/2/x", Ok(())),
            ("http://127.0.0.1:8081/hooks", Ok(())),
            ("http://[::1]:8081/hooks", Ok(())),
            ("https://127.0.0.1/hooks", Ok(())),
            (
                "http://127.0.0.2:8081/hooks",
                Err("the host is not in slack.response_url_hosts"),
            ),
            (
                "http://localhost:8081/hooks",
                Err("the host is not in slack.response_url_hosts"),
            ),
            (
                "https://evil.example/hooks",
                Err("the host is not in slack.response_url_hosts"),
            ),
            (
                "http://hooks.slack.com/commands/T1/2/x",
                Err("only https is allowed (http only to a loopback host)"),
            ),
            (
                "ftp://127.0.0.1/hooks",
                Err("only https is allowed (http only to a loopback host)"),
            ),
        ];
        for (url, expected) in table {
            let url = Url::parse(url).unwrap();
            assert_eq!(destination_allowed(&url, &hosts), *expected, "{url}");
        }
    }
}
