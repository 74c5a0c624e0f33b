//! Discord's HTTP API, as replaydesk uses it: editing an interaction's original response (answers) and
//! bulk-overwriting the application's commands (`replaydesk discord register`).
//!
//! Every call goes through [`Upstream::send`]: on 429 it waits `Retry-After`, or, when Discord leaves the
//! header out, the body's `retry_after` (float seconds; [`retry_after_body`]); every caller of the Discord
//! upstream waits out the same cool-down, whether Discord said the limit was `global` or per route. 5xx and
//! timeouts are retried with backoff. Webhook edits authenticate with the interaction token in the path
//! and send no `Authorization`; only bot-token calls (registration) send `Authorization: Bot …`. The
//! token is never logged (errors and metrics name the endpoint, not the URL).
//!
//! A 400 to an edit of our answer is Discord refusing the message itself (code 50035 "Invalid Form
//! Body", 50006 "empty message", …): it becomes a [`Refusal`] naming Discord's code and the fields it
//! objected to, counted in `replaydesk_platform_refusals_total`, and the replier posts the plain
//! fallback ([`crate::adapters::refusal`]). Every edit carries `allowed_mentions: {"parse": []}`, whatever
//! the renderer set: nothing we post pings anyone.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;

use crate::{
    adapters::refusal::Refusal,
    config::{DiscordConfig, Secret},
    outbound::{Answered, RetryPolicy, Upstream, UpstreamError, Upstreams},
};

pub const DEFAULT_API_URL: &str = "https://discord.com/api/v10";
/// Discord asks bots to say who they are this way.
pub const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/replaydesk/replaydesk, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Why a Discord call failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// Discord refused the call; trying again will not help (an expired token is a 404).
    #[error("Discord {endpoint} answered {status}: {message}")]
    Refused {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
    /// Discord refused the message we sent (400): see the module docs.
    #[error(transparent)]
    MessageRefused(Refusal),
    /// A request of ours that could not be made (a bad URL, no bot token, a body that does not serialise).
    #[error("Discord {endpoint}: {reason}")]
    Invalid {
        endpoint: &'static str,
        reason: String,
    },
    #[error("Discord {0}")]
    Upstream(#[from] UpstreamError),
}

impl DiscordError {
    /// Whether a later attempt may succeed: what [`UpstreamError`] says.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Upstream(e) if e.is_transient())
    }
}

impl crate::adapters::refusal::Refusing for DiscordError {
    fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::MessageRefused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

/// The endpoints whose body is a message of ours (a 400 there is a [`Refusal`]).
const MESSAGE_ENDPOINTS: &[&str] = &["edit_original"];

/// Discord's refusal of a message from its 400 body: `{"code":50035,"message":"Invalid Form Body",
/// "errors":{"embeds":{"0":{"description":{"_errors":[{"code":…,"message":…}]}}}}}`, as the code and
/// "Invalid Form Body: embeds.0.description: Must be 4096 or fewer in length."
pub fn refusal(body: &[u8]) -> Refusal {
    let value: Value = serde_json::from_slice(body).unwrap_or_default();
    let code = match value.get("code").and_then(Value::as_i64) {
        Some(50035) => "50035",
        Some(50006) => "50006",
        Some(50109) => "50109",
        Some(_) => "other",
        None => "400",
    };
    let mut reason = value["message"]
        .as_str()
        .unwrap_or("Bad Request")
        .to_owned();
    let mut fields = Vec::new();
    field_errors(&value["errors"], &mut String::new(), &mut fields);
    if !fields.is_empty() {
        reason.push_str(": ");
        reason.push_str(&fields.join("; "));
    }
    Refusal::new(super::PLATFORM, code, reason)
}

/// `path: message` for every `_errors` entry of Discord's error tree.
fn field_errors(tree: &Value, path: &mut String, out: &mut Vec<String>) {
    let Some(map) = tree.as_object() else { return };
    for (key, child) in map {
        if key == "_errors" {
            for error in child.as_array().into_iter().flatten() {
                let message = error["message"].as_str().unwrap_or("invalid");
                out.push(format!("{path}: {message}"));
            }
        } else if out.len() < 10 {
            let before = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            field_errors(child, path, out);
            path.truncate(before);
        }
    }
}

/// A 429's wait from Discord's body: `{"message": …, "retry_after": 1.5, "global": false}`.
pub fn retry_after_body(body: &[u8]) -> Option<Duration> {
    let seconds = serde_json::from_slice::<Value>(body)
        .ok()?
        .get("retry_after")?
        .as_f64()?;
    crate::outbound::retry_after_seconds(seconds)
}

/// A command as Discord answers a registration.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct RegisteredCommand {
    pub id: String,
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: u8,
    pub default_member_permissions: Option<String>,
}

pub struct DiscordApi {
    http: reqwest::Client,
    base: String,
    bot_token: Secret,
    upstream: Upstream,
}

impl DiscordApi {
    pub fn new(config: &DiscordConfig, upstreams: Upstreams) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        let timeout = Duration::from_secs(10);
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            // As every client carrying customer data: no redirect is followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base: crate::outbound::base_url(config.api_url.as_deref(), DEFAULT_API_URL),
            bot_token: config.bot_token.clone(),
            upstream: Upstream::new("discord", RetryPolicy::default(), None, upstreams)
                .with_retry_after_body(retry_after_body),
        })
    }

    /// The URL of `segments` under the API base, each percent-encoded as one path segment.
    fn url(&self, segments: &[&str]) -> Result<Url, DiscordError> {
        let mut url = Url::parse(&self.base).map_err(|e| DiscordError::Invalid {
            endpoint: "url",
            reason: format!("bad discord.api_url: {e}"),
        })?;
        url.path_segments_mut()
            .map_err(|()| DiscordError::Invalid {
                endpoint: "url",
                reason: "discord.api_url cannot take a path".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn call(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, DiscordError> {
        let Answered { status, body } = self
            .upstream
            .call(endpoint, &self.http, request, true)
            .await
            .map_err(UpstreamError::from)?;
        if status == StatusCode::BAD_REQUEST && MESSAGE_ENDPOINTS.contains(&endpoint) {
            let refusal = refusal(&body);
            self.upstream
                .metrics()
                .refused(refusal.platform, refusal.code);
            return Err(DiscordError::MessageRefused(refusal));
        }
        if !status.is_success() {
            return Err(DiscordError::Refused {
                endpoint,
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        if status == StatusCode::NO_CONTENT || body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| {
            UpstreamError::malformed(endpoint, format!("the answer is not JSON: {e}")).into()
        })
    }

    /// `PATCH /webhooks/{application}/{token}/messages/@original`: replaces our answer. Returns the message.
    pub async fn edit_original(
        &self,
        application_id: &str,
        token: &str,
        body: &impl Serialize,
    ) -> Result<Value, DiscordError> {
        let url = self.url(&["webhooks", application_id, token, "messages", "@original"])?;
        let mut body = serde_json::to_value(body).map_err(|e| DiscordError::Invalid {
            endpoint: "edit_original",
            reason: format!("the message could not be written: {e}"),
        })?;
        if let Some(message) = body.as_object_mut() {
            message.insert(
                "allowed_mentions".into(),
                serde_json::json!({ "parse": [] }),
            );
        }
        self.call(
            "edit_original",
            self.http.request(Method::PATCH, url).json(&body),
        )
        .await
    }

    /// `GET /webhooks/{application}/{token}/messages/@original`: our answer as it is now.
    pub async fn get_original(
        &self,
        application_id: &str,
        token: &str,
    ) -> Result<Value, DiscordError> {
        let url = self.url(&["webhooks", application_id, token, "messages", "@original"])?;
        self.call("get_original", self.http.request(Method::GET, url))
            .await
    }

    /// `PUT /applications/{application}/commands` (or the guild's): replaces every command of the
    /// application (there, or globally) with `commands`.
    pub async fn overwrite_commands(
        &self,
        application_id: &str,
        guild_id: Option<&str>,
        commands: &impl Serialize,
    ) -> Result<Vec<RegisteredCommand>, DiscordError> {
        let endpoint = "overwrite_commands";
        let token = self.bot_token.expose().ok_or(DiscordError::Invalid {
            endpoint,
            reason: "discord.bot_token is not set".into(),
        })?;
        let url = match guild_id {
            Some(guild) => {
                self.url(&["applications", application_id, "guilds", guild, "commands"])?
            }
            None => self.url(&["applications", application_id, "commands"])?,
        };
        let request = self
            .http
            .request(Method::PUT, url)
            .header(reqwest::header::AUTHORIZATION, format!("Bot {token}"))
            .json(commands);
        let answer = self.call(endpoint, request).await?;
        serde_json::from_value(answer)
            .map_err(|e| UpstreamError::malformed(endpoint, e.to_string()).into())
    }
}

/// Discord's error `message` (and `code`), or the start of the body.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.get("message").is_some() => {
            let message = value["message"].as_str().unwrap_or_default();
            match value.get("code").and_then(Value::as_i64) {
                Some(code) => format!("{message} (code {code})"),
                None => message.to_owned(),
            }
        }
        _ => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_400_names_discords_code_and_the_fields_it_refused() {
        let body = br#"{"code":50035,"errors":{"embeds":{"0":{"description":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 4096 or fewer in length."}]}}}},"message":"Invalid Form Body"}"#;
        let refused = refusal(body);
        assert_eq!(refused.code, "50035");
        assert_eq!(
            refused.to_string(),
            "Discord refused our message (50035): Invalid Form Body: embeds.0.description: Must be \
             4096 or fewer in length."
        );
        assert_eq!(refusal(b"<html>").code, "400");
    }

    #[test]
    fn the_body_says_how_long_to_wait() {
        assert_eq!(
            retry_after_body(
                br#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#
            ),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after_body(br#"{"retry_after":-1}"#), None);
        assert_eq!(retry_after_body(b"<html>"), None);
        assert_eq!(
            retry_after_body(br#"{"retry_after":1e300}"#),
            Some(crate::outbound::LONGEST_COOL_DOWN)
        );
        assert_eq!(retry_after_body(br#"{"retry_after":"NaN"}"#), None);
        assert_eq!(retry_after_body(br#"{"retry_after":null}"#), None);
    }
}
