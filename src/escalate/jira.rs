//! The Jira Cloud client: the REST v3 calls an escalation makes, each through the shared
//! [`Upstream`] named `jira` (its own circuit breaker; 429 `Retry-After` waited out by every caller
//! together), none with a retry loop of its own.
//!
//! Contract (developer.atlassian.com/cloud/jira/platform/rest/v3; PLATFORMS.md §9): basic auth
//! `email:api_token` against `jira.base_url` (an API token, not a Connect or Forge app).
//! - `POST /rest/api/3/issue` `{"fields": {"project": {"key"}, "issuetype": {"name"}, "summary",
//!   "description": <ADF>, "labels"}}` → `{id, key, self}`. **Not idempotent**: sent with
//!   [`Upstream::send_unrepeatable`] (a 5xx or timeout is never re-sent blindly), and the issue carries
//!   the label `replaydesk-<tag>` ([`Tag::label`]) that finds it again after an unknown outcome;
//! - `GET /rest/api/3/search/jql?jql=labels = "replaydesk-<tag>"` → `{issues: [{id, key}]}`: that search;
//! - `GET /rest/api/3/issue/{key}?fields=summary`: an existing issue to link (`--issue SUP-42`);
//! - `POST /rest/api/3/issue/{key}/remotelink` `{"globalId", "object": {"url", "title", "summary"}}`
//!   → `{id, self}`: one link per `globalId`, so sending it again updates it (every field is sent each
//!   time, because a re-POST replaces the link);
//! - `DELETE /rest/api/3/issue/{key}/remotelink/{linkId}`: an erasure removes the link it made;
//! - `GET /rest/api/3/myself` and `GET /rest/api/3/project/{key}`: `replaydesk check`.
//!
//! Refusals: 400 carries `{"errorMessages": [...], "errors": {"field": "why"}}`, named as "Jira refused:
//! summary: …"; 401 the credentials; 403 the account's permissions; 404 the issue or project.

use async_trait::async_trait;
use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Issue, IssueTracker, Link, Report, Tag, Tracker, TrackerError, adf};
use crate::{
    config::{JiraConfig, List, Secret},
    outbound::{Answered, RetryPolicy, Upstream, UpstreamError, Upstreams},
};

/// Why a Jira call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JiraError {
    #[error("Jira rejected the credentials (401): check jira.email and jira.api_token")]
    Unauthorized,
    #[error(
        "Jira refused {endpoint} (403): the account needs \"Create issues\" and \"Link issues\" in the project"
    )]
    Forbidden { endpoint: &'static str },
    #[error("Jira refused: {what} not found")]
    NotFound { what: String },
    #[error("Jira refused: {message}")]
    Refused { message: String },
    #[error("Jira {0}")]
    Upstream(#[from] UpstreamError),
}

impl JiraError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Upstream(error) => error.is_transient(),
            _ => false,
        }
    }
}

/// Jira Cloud over REST v3.
pub struct JiraApi {
    http: reqwest::Client,
    base: String,
    email: String,
    token: Secret,
    project_key: String,
    issue_type: String,
    labels: List,
    upstream: Upstream,
}

#[derive(Deserialize)]
struct Created {
    id: String,
    key: String,
}

impl JiraApi {
    pub fn from_config(config: &JiraConfig, upstreams: Upstreams) -> Result<Self, JiraError> {
        Ok(Self {
            http: crate::outbound::http_client(config.timeout.0)
                .map_err(|e| JiraError::Upstream(UpstreamError::Transport(e.to_string())))?,
            base: crate::outbound::base_url(config.base_url.as_deref(), ""),
            email: config.email.clone().unwrap_or_default(),
            token: config.api_token.clone(),
            project_key: config.project_key.clone().unwrap_or_default(),
            issue_type: config.issue_type.clone(),
            labels: config.labels.clone(),
            upstream: Upstream::new("jira", RetryPolicy::default(), None, upstreams),
        })
    }

    /// An issue's page.
    pub fn browse_url(&self, key: &str) -> String {
        format!("{}/browse/{key}", self.base)
    }

    fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, JiraError> {
        let url = Url::parse(&format!("{}{path}", self.base)).map_err(|e| {
            JiraError::Upstream(UpstreamError::Transport(format!("bad Jira URL: {e}")))
        })?;
        let basic = STANDARD.encode(format!(
            "{}:{}",
            self.email,
            self.token.expose().unwrap_or_default()
        ));
        Ok(self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(reqwest::header::ACCEPT, "application/json"))
    }

    /// Sends through the shared policy; a 2xx answer's body, or the typed error.
    async fn call(
        &self,
        endpoint: &'static str,
        what: &str,
        request: RequestBuilder,
        repeatable: bool,
    ) -> Result<Vec<u8>, JiraError> {
        let Answered { status, body } = self
            .upstream
            .call(endpoint, &self.http, request, repeatable)
            .await
            .map_err(UpstreamError::from)?;
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::UNAUTHORIZED => Err(JiraError::Unauthorized),
            StatusCode::FORBIDDEN => Err(JiraError::Forbidden { endpoint }),
            StatusCode::NOT_FOUND => Err(JiraError::NotFound { what: what.into() }),
            s => Err(JiraError::Refused {
                message: refusal_message(s, &body),
            }),
        }
    }

    async fn get(
        &self,
        endpoint: &'static str,
        what: &str,
        request: RequestBuilder,
    ) -> Result<Value, JiraError> {
        let body = self.call(endpoint, what, request, true).await?;
        read(endpoint, &body)
    }

    /// The create's body for `tag`'s issue (what the contract test validates: its description is ADF).
    pub fn create_body(&self, tag: &Tag, report: &Report) -> Value {
        let mut labels: Vec<String> = self.labels.iter().map(str::to_owned).collect();
        labels.push(tag.label());
        create_body(&self.project_key, &self.issue_type, &labels, report)
    }
}

/// `POST /rest/api/3/issue`'s body.
pub fn create_body(
    project_key: &str,
    issue_type: &str,
    labels: &[String],
    report: &Report,
) -> Value {
    json!({
        "fields": {
            "project": {"key": project_key},
            "issuetype": {"name": issue_type},
            "summary": report.title,
            "description": adf::document(report),
            "labels": labels,
        }
    })
}

fn read(endpoint: &'static str, body: &[u8]) -> Result<Value, JiraError> {
    serde_json::from_slice(body)
        .map_err(|e| JiraError::Upstream(UpstreamError::malformed(endpoint, e.to_string())))
}

/// Jira's reasons, from `errorMessages` and `errors` (`summary: …`), in one short line.
fn refusal_message(status: StatusCode, body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut reasons: Vec<String> = value
        .get("errorMessages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if let Some(errors) = value.get("errors").and_then(Value::as_object) {
        reasons.extend(
            errors
                .iter()
                .map(|(field, why)| format!("{field}: {}", why.as_str().unwrap_or("invalid"))),
        );
    }
    let reasons = reasons.join("; ");
    let line = if reasons.is_empty() {
        format!(
            "{} ({})",
            status.canonical_reason().unwrap_or("refused"),
            status.as_u16()
        )
    } else {
        reasons
    };
    line.chars().take(300).collect()
}

#[async_trait]
impl IssueTracker for JiraApi {
    fn tracker(&self) -> Tracker {
        Tracker::Jira
    }

    fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    async fn find(&self, tag: &Tag) -> Result<Option<Issue>, TrackerError> {
        let jql = format!("labels = \"{}\"", tag.label());
        let request = self
            .request(Method::GET, "/rest/api/3/search/jql")?
            .query(&[
                ("jql", jql.as_str()),
                ("fields", "summary"),
                ("maxResults", "1"),
            ]);
        let found = self.get("search", "search", request).await?;
        let first = found
            .get("issues")
            .and_then(Value::as_array)
            .and_then(|issues| issues.first());
        Ok(first.and_then(|issue| {
            let id = issue.get("id")?.as_str()?.to_owned();
            let key = issue.get("key")?.as_str()?.to_owned();
            Some(Issue {
                url: self.browse_url(&key),
                id,
                key,
            })
        }))
    }

    async fn create(&self, tag: &Tag, report: &Report) -> Result<Issue, TrackerError> {
        let request = self
            .request(Method::POST, "/rest/api/3/issue")?
            .json(&self.create_body(tag, report));
        let body = self.call("create_issue", "project", request, false).await?;
        let created: Created = serde_json::from_slice(&body).map_err(|e| {
            JiraError::Upstream(UpstreamError::malformed("create_issue", e.to_string()))
        })?;
        Ok(Issue {
            url: self.browse_url(&created.key),
            id: created.id,
            key: created.key,
        })
    }

    async fn resolve(&self, key: &str) -> Result<Issue, TrackerError> {
        let key = key.trim();
        // An agent typed it: only an issue key (`SUP-42`) reaches a Jira path, never `..` or a query.
        if !is_issue_key(key) {
            return Err(JiraError::Refused {
                message: format!("{key:?} is not an issue key (like SUP-42)"),
            }
            .into());
        }
        let encoded = utf8_percent_encode(key);
        let request = self
            .request(Method::GET, &format!("/rest/api/3/issue/{encoded}"))?
            .query(&[("fields", "summary")]);
        let issue = self
            .get("get_issue", &format!("issue {key}"), request)
            .await?;
        let (Some(id), Some(key)) = (
            issue.get("id").and_then(Value::as_str),
            issue.get("key").and_then(Value::as_str),
        ) else {
            return Err(
                JiraError::Upstream(UpstreamError::malformed("get_issue", "no id or key")).into(),
            );
        };
        Ok(Issue {
            url: self.browse_url(key),
            id: id.to_owned(),
            key: key.to_owned(),
        })
    }

    async fn link(&self, issue: &Issue, tag: &Tag, link: &Link) -> Result<String, TrackerError> {
        let mut object = json!({"url": link.url, "title": link.title});
        if let Some(subtitle) = &link.subtitle {
            object["summary"] = json!(subtitle);
        }
        let request = self
            .request(
                Method::POST,
                &format!(
                    "/rest/api/3/issue/{}/remotelink",
                    utf8_percent_encode(&issue.key)
                ),
            )?
            .json(&json!({"globalId": tag.global_id(), "object": object}));
        let body = self
            .call(
                "remote_link",
                &format!("issue {}", issue.key),
                request,
                true,
            )
            .await?;
        let answer = read("remote_link", &body)?;
        match answer.get("id") {
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(JiraError::Upstream(UpstreamError::malformed("remote_link", "no id")).into()),
        }
    }

    async fn unlink(&self, issue: &Issue, link_id: &str) -> Result<(), TrackerError> {
        let request = self.request(
            Method::DELETE,
            &format!(
                "/rest/api/3/issue/{}/remotelink/{}",
                utf8_percent_encode(&issue.key),
                utf8_percent_encode(link_id)
            ),
        )?;
        match self
            .call("delete_remote_link", "remote link", request, true)
            .await
        {
            Ok(_) | Err(JiraError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn check(&self) -> Result<String, TrackerError> {
        let me = self
            .get(
                "myself",
                "account",
                self.request(Method::GET, "/rest/api/3/myself")?,
            )
            .await?;
        let project = self
            .get(
                "get_project",
                &format!("project {} (jira.project_key)", self.project_key),
                self.request(
                    Method::GET,
                    &format!(
                        "/rest/api/3/project/{}",
                        utf8_percent_encode(&self.project_key)
                    ),
                )?,
            )
            .await?;
        Ok(format!(
            "token of {}; project {} ({})",
            me.get("displayName").and_then(Value::as_str).unwrap_or("?"),
            project.get("key").and_then(Value::as_str).unwrap_or("?"),
            project.get("name").and_then(Value::as_str).unwrap_or("?"),
        ))
    }
}

/// Everything but RFC 3986's unreserved characters is encoded in a path segment.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment (an issue key, a link id), percent-encoded.
fn utf8_percent_encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// A Jira issue key: a project key (a letter, then letters, digits or `_`), `-`, a number.
fn is_issue_key(key: &str) -> bool {
    let Some((project, number)) = key.split_once('-') else {
        return false;
    };
    key.len() <= 64
        && project.starts_with(|c: char| c.is_ascii_alphabetic())
        && project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_issue_keys_reach_a_jira_path() {
        for key in ["SUP-42", "A1_B-7", "x-1"] {
            assert!(is_issue_key(key), "{key}");
        }
        for key in [
            "..",
            "SUP",
            "SUP-",
            "-42",
            "SUP-4a",
            "SUP-42/../x",
            "1SUP-2",
            "SUP-42?x=1",
            "",
        ] {
            assert!(!is_issue_key(key), "{key}");
        }
    }

    /// The create's body, snapshotted: `tests/contracts/run` validates every snapshot's ADF document
    /// against Atlassian's published ADF JSON schema (npm `@atlaskit/adf-schema`).
    #[test]
    fn the_create_body_is_a_jira_issue_with_an_adf_description() {
        let report = super::super::text::tests::sample();
        let labels = vec![
            "support".to_owned(),
            Tag("0123456789abcdef0123456789abcdef".into()).label(),
        ];
        insta::assert_json_snapshot!(create_body("SUP", "Bug", &labels, &report));
    }

    #[test]
    fn jiras_reasons_are_said_in_one_line() {
        let body = br#"{"errorMessages": ["Field 'x' cannot be set."], "errors": {"summary": "Summary must be less than 255 characters."}}"#;
        assert_eq!(
            refusal_message(StatusCode::BAD_REQUEST, body),
            "Field 'x' cannot be set.; summary: Summary must be less than 255 characters."
        );
        assert_eq!(
            refusal_message(StatusCode::BAD_REQUEST, b"<html>"),
            "Bad Request (400)"
        );
    }
}
