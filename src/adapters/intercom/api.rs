//! The Intercom REST API client: the three calls replaydesk makes, each through the shared
//! [`Upstream`] (429 waited out by every caller together, with the shared cool-down's default when
//! Intercom leaves out `Retry-After`; 5xx and timeouts retried with capped backoff; the `intercom`
//! circuit breaker), none with a retry loop of its own.
//!
//! Contract (developers.intercom.com REST API 2.11; PLATFORMS.md §10): `Authorization: Bearer
//! {intercom.access_token}`, `Intercom-Version: 2.11`; the host is `intercom.api_url` (US, EU or AU).
//! - `GET /contacts/{id}`: a contact's `email`, `external_id` (the FullStory uid) and `role`;
//! - `GET /conversations/{id}`: its parts' bodies, where a worker that died after posting looks for its
//!   note's reference before posting again;
//! - `POST /conversations/{id}/reply` `{"type": "admin", "message_type": "note", "admin_id", "body"}`:
//!   the internal note, sent with [`Upstream::send_unrepeatable`] (a 5xx or timeout is never re-sent
//!   blindly: the effect ledger looks for the reference first).
//!
//! Errors are `{"type": "error.list", "errors": [{"code", "message"}]}`; a 400 or 422 to the note is
//! Intercom refusing it ([`IntercomError::NoteRefused`], counted in `replaydesk_platform_refusals_total`),
//! and the replier posts the plain fallback.

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{
    adapters::refusal::{Refusal, Refusing},
    config::{IntercomConfig, Secret},
    outbound::{Answered, RetryPolicy, Upstream, UpstreamError, Upstreams},
};

/// The REST API version replaydesk speaks.
pub const API_VERSION: &str = "2.11";

/// Why an Intercom call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntercomError {
    #[error("Intercom rejected the access token (401): check intercom.access_token")]
    Unauthorized,
    #[error("Intercom refused {endpoint} (403): the app needs the permission for it")]
    Forbidden { endpoint: &'static str },
    #[error("Intercom has no such {what} (404)")]
    NotFound { what: &'static str },
    #[error("Intercom rejected {endpoint} ({status}): {message}")]
    Rejected {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
    /// Intercom refused the note we sent (400 or 422).
    #[error(transparent)]
    NoteRefused(Refusal),
    #[error("Intercom {0}")]
    Upstream(#[from] UpstreamError),
}

impl IntercomError {
    /// Whether trying again later may succeed: what [`UpstreamError`] says.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Upstream(error) => error.is_transient(),
            _ => false,
        }
    }
}

impl Refusing for IntercomError {
    fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::NoteRefused(refusal) => Some(refusal),
            _ => None,
        }
    }
}

/// A contact, as `GET /contacts/{id}` gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Contact {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    /// The customer's id in the company's own systems: FullStory's `uid` when the workspace sets it.
    #[serde(default)]
    pub external_id: Option<String>,
    /// `user` or `lead`.
    #[serde(default)]
    pub role: Option<String>,
}

/// Intercom over HTTP.
pub struct IntercomApi {
    http: reqwest::Client,
    base: String,
    token: Secret,
    upstream: Upstream,
}

impl IntercomApi {
    pub fn from_config(
        config: &IntercomConfig,
        upstreams: Upstreams,
    ) -> Result<Self, IntercomError> {
        Ok(Self {
            http: crate::outbound::http_client(config.timeout.0)
                .map_err(|e| IntercomError::Upstream(UpstreamError::Transport(e.to_string())))?,
            base: config.api_url.trim_end_matches('/').to_owned(),
            token: config.access_token.clone(),
            upstream: Upstream::new(super::PLATFORM, RetryPolicy::default(), None, upstreams),
        })
    }

    fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, IntercomError> {
        let url = Url::parse(&format!("{}{path}", self.base)).map_err(|e| {
            IntercomError::Upstream(UpstreamError::Transport(format!("bad Intercom URL: {e}")))
        })?;
        Ok(self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose().unwrap_or_default())
            .header("Intercom-Version", API_VERSION)
            .header(reqwest::header::ACCEPT, "application/json"))
    }

    async fn call(
        &self,
        endpoint: &'static str,
        what: &'static str,
        request: RequestBuilder,
        repeatable: bool,
    ) -> Result<Vec<u8>, IntercomError> {
        let Answered { status, body } = self
            .upstream
            .call(endpoint, &self.http, request, repeatable)
            .await
            .map_err(UpstreamError::from)?;
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::UNAUTHORIZED => Err(IntercomError::Unauthorized),
            StatusCode::FORBIDDEN => Err(IntercomError::Forbidden { endpoint }),
            StatusCode::NOT_FOUND => Err(IntercomError::NotFound { what }),
            s => Err(IntercomError::Rejected {
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
        path: &str,
    ) -> Result<T, IntercomError> {
        let body = self
            .call(endpoint, what, self.request(Method::GET, path)?, true)
            .await?;
        read(endpoint, &body)
    }

    /// `GET /contacts/{id}`.
    pub async fn contact(&self, id: &str) -> Result<Contact, IntercomError> {
        self.get(
            "show_contact",
            "contact",
            &format!("/contacts/{}", encode(id)),
        )
        .await
    }

    /// The bodies of a conversation's parts (`GET /conversations/{id}`), with their ids.
    pub async fn parts(&self, conversation: &str) -> Result<Vec<(String, String)>, IntercomError> {
        let answer: Value = self
            .get(
                "show_conversation",
                "conversation",
                &format!("/conversations/{}", encode(conversation)),
            )
            .await?;
        Ok(parts_of(&answer))
    }

    /// Adds an internal note as `admin_id`; the new part's id. Never repeated by the transport on a
    /// 5xx or timeout.
    pub async fn add_note(
        &self,
        conversation: &str,
        admin_id: &str,
        body: &str,
    ) -> Result<String, IntercomError> {
        let request = self
            .request(
                Method::POST,
                &format!("/conversations/{}/reply", encode(conversation)),
            )?
            .json(&json!({
                "type": "admin",
                "message_type": "note",
                "admin_id": admin_id,
                "body": body,
            }));
        let answer = match self
            .call("reply_note", "conversation", request, false)
            .await
        {
            Ok(answer) => answer,
            Err(IntercomError::Rejected {
                status: status @ (400 | 413 | 422),
                message,
                ..
            }) => {
                let code = match status {
                    400 => "400",
                    413 => "413",
                    _ => "422",
                };
                let refusal = Refusal::new(super::PLATFORM, code, message);
                self.upstream
                    .metrics()
                    .refused(refusal.platform, refusal.code);
                return Err(IntercomError::NoteRefused(refusal));
            }
            Err(error) => return Err(error),
        };
        let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
        Ok(parts_of(&answer).pop().map_or_else(
            || format!("conversation:{conversation}"),
            |(id, _)| format!("part:{id}"),
        ))
    }
}

/// The `(id, body)` of each part of a conversation object (`conversation_parts.conversation_parts`),
/// its first message (`source`) first.
fn parts_of(conversation: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let id = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let source = &conversation["source"];
    let first = text(&source["body"]).map(|body| (id(&source["id"]).unwrap_or_default(), body));
    let parts = conversation["conversation_parts"]["conversation_parts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|part| {
            (
                id(&part["id"]).unwrap_or_default(),
                text(&part["body"]).unwrap_or_default(),
            )
        });
    first.into_iter().chain(parts).collect()
}

/// An id in a path, percent-encoded.
fn encode(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn read<T: DeserializeOwned>(endpoint: &'static str, body: &[u8]) -> Result<T, IntercomError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| UpstreamError::malformed(endpoint, e.to_string()).into())
}

/// Intercom's error text (`{"type": "error.list", "errors": [{"code", "message"}]}`), or the body's
/// start.
fn error_message(body: &[u8]) -> String {
    let listed = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let errors = v["errors"].as_array()?;
        let said: Vec<String> = errors
            .iter()
            .map(|e| {
                let code = e["code"].as_str().unwrap_or("error");
                match e["message"].as_str() {
                    Some(message) => format!("{code}: {message}"),
                    None => code.to_owned(),
                }
            })
            .collect();
        (!said.is_empty()).then(|| said.join("; "))
    });
    listed
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_from_the_error_list() {
        assert_eq!(
            error_message(
                br#"{"type":"error.list","errors":[{"code":"parameter_invalid","message":"Body is too long"}]}"#
            ),
            "parameter_invalid: Body is too long"
        );
        assert_eq!(error_message(b"<html>oops</html>"), "<html>oops</html>");
    }

    #[test]
    fn a_conversations_parts_are_read_with_their_ids() {
        let conversation = json!({"source": {"id": "s1", "body": "<p>hi</p>"},
            "conversation_parts": {"conversation_parts": [{"id": 7, "body": "note rd-1"}, {"id": "8", "body": null}]}});
        assert_eq!(
            parts_of(&conversation),
            [
                ("s1".to_owned(), "<p>hi</p>".to_owned()),
                ("7".to_owned(), "note rd-1".to_owned()),
                ("8".to_owned(), String::new())
            ]
        );
    }
}
