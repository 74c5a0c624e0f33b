//! The Linear client: the GraphQL calls an escalation makes, each through the shared
//! [`Upstream`] named `linear` (its own circuit breaker; 429 `Retry-After` waited out by every caller
//! together), none with a retry loop of its own.
//!
//! Contract (linear.app/developers; PLATFORMS.md §8): `POST {linear.api_url}` (default
//! `https://api.linear.app/graphql`) with `{"query", "variables"}`, header `Authorization: <API key>`
//! (a personal key; OAuth tokens would be `Bearer …`).
//! - `issueCreate(input: {id, teamId, title, description, labelIds})` → `issue {id identifier url}`.
//!   The `id` is the escalation's own ([`Tag::uuid`]), so a retried create names the same issue: the
//!   call is safe to repeat, and a create whose answer was lost is found with `issue(id:)`.
//! - `issue(id:)` reads an issue by its id or its identifier (`LIN-123`): the crash check and `--issue`.
//! - `attachmentCreate(input: {issueId, url, title, subtitle})`: "the attachment URL is used as an
//!   idempotent value if used in conjunction with the same issue id", so linking again updates it.
//! - `attachmentDelete(id:)`: an erasure removes the link it made.
//! - `viewer {id name}` and `team(id:) {id key name}`: `replaydesk check`'s read-only call.
//!
//! GraphQL failures come as `errors[]` (with HTTP 200 or 400), each with `message` and
//! `extensions {type, code, userPresentableMessage}`; a rate limit as HTTP 429, or as
//! `extensions.code = "RATELIMITED"` (`type` "ratelimited"), read as [`UpstreamError::RateLimited`].
//! Linear's schema is not published as a file (npm `@linear/sdk` ships TypeScript declarations only),
//! so the contract test checks the variables' shape against those types' field names, not a schema.

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Issue, IssueTracker, Link, Report, Tag, Tracker, TrackerError};
use crate::{
    config::{LINEAR_API_URL, LinearConfig, List, Secret},
    outbound::{Answered, RetryPolicy, Upstream, UpstreamError, Upstreams},
};

/// How long a rate-limited Linear call waits when Linear says no more than "ratelimited".
const RATE_LIMITED_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a Linear call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinearError {
    #[error("Linear rejected the API key (401): check linear.api_key")]
    Unauthorized,
    #[error("Linear refused: {message}")]
    Refused { message: String },
    /// An entity the call names does not exist (`Entity not found: Team`).
    #[error("Linear refused: {what} not found")]
    NotFound { what: String },
    #[error("Linear {0}")]
    Upstream(#[from] UpstreamError),
}

impl LinearError {
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Upstream(error) => error.is_transient(),
            _ => false,
        }
    }
}

/// Linear over GraphQL.
pub struct LinearApi {
    http: reqwest::Client,
    url: String,
    key: Secret,
    team_id: String,
    label_ids: List,
    upstream: Upstream,
}

#[derive(Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default, rename = "userPresentableMessage")]
    user_presentable_message: Option<String>,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Deserialize)]
struct IssueNode {
    id: String,
    identifier: String,
    url: String,
}

impl From<IssueNode> for Issue {
    fn from(node: IssueNode) -> Self {
        Self {
            id: node.id,
            key: node.identifier,
            url: node.url,
        }
    }
}

const ISSUE_FIELDS: &str = "id identifier url";

impl LinearApi {
    pub fn from_config(config: &LinearConfig, upstreams: Upstreams) -> Result<Self, LinearError> {
        Ok(Self {
            http: crate::outbound::http_client(config.timeout.0)
                .map_err(|e| LinearError::Upstream(UpstreamError::Transport(e.to_string())))?,
            url: crate::outbound::base_url(config.api_url.as_deref(), LINEAR_API_URL),
            key: config.api_key.clone(),
            team_id: config.team_id.clone().unwrap_or_default(),
            label_ids: config.label_ids.clone(),
            upstream: Upstream::new("linear", RetryPolicy::default(), None, upstreams),
        })
    }

    /// Runs one GraphQL operation; its `data`, or the typed error.
    async fn graphql(
        &self,
        endpoint: &'static str,
        query: &str,
        variables: Value,
    ) -> Result<Value, LinearError> {
        let request = self
            .http
            .post(&self.url)
            .header(
                reqwest::header::AUTHORIZATION,
                self.key.expose().unwrap_or_default(),
            )
            .json(&json!({ "query": query, "variables": variables }));
        // Every operation here is safe to repeat (the create names its own id).
        let Answered { status, body } = self
            .upstream
            .call(endpoint, &self.http, request, true)
            .await
            .map_err(UpstreamError::from)?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(LinearError::Unauthorized);
        }
        let reply: Reply = serde_json::from_slice(&body).map_err(|e| {
            LinearError::Upstream(UpstreamError::malformed(endpoint, e.to_string()))
        })?;
        if let Some(error) = reply.errors.into_iter().next() {
            return Err(refusal(error));
        }
        if !status.is_success() {
            return Err(LinearError::Refused {
                message: format!("{endpoint} answered {status}"),
            });
        }
        reply
            .data
            .ok_or_else(|| UpstreamError::malformed(endpoint, "no data").into())
    }

    async fn issue(&self, id: &str) -> Result<Option<Issue>, LinearError> {
        let query = format!("query Issue($id: String!) {{ issue(id: $id) {{ {ISSUE_FIELDS} }} }}");
        match self.graphql("issue", &query, json!({ "id": id })).await {
            Ok(data) => read_issue("issue", data.get("issue")).map(Some),
            Err(LinearError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// A GraphQL error as a typed one: authentication, a rate limit, a missing entity, or a refusal in
/// Linear's own words ("Linear refused: team not found").
fn refusal(error: GraphQlError) -> LinearError {
    let ext = error.extensions.unwrap_or(Extensions {
        kind: None,
        code: None,
        user_presentable_message: None,
    });
    let kind = ext.kind.unwrap_or_default().to_ascii_lowercase();
    let code = ext.code.unwrap_or_default().to_ascii_uppercase();
    let raw = error.message;
    let message = ext
        .user_presentable_message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| raw.clone());
    let message: String = message.chars().take(300).collect();
    if kind == "ratelimited" || code == "RATELIMITED" {
        return LinearError::Upstream(UpstreamError::RateLimited {
            retry_after: RATE_LIMITED_WAIT,
        });
    }
    if kind.contains("authentication") || code == "AUTHENTICATION_ERROR" {
        return LinearError::Unauthorized;
    }
    // "Entity not found: Team" (the entity after the colon, when Linear names it).
    if let Some(rest) = raw.strip_prefix("Entity not found") {
        let what = rest.trim_start_matches(':').trim().to_lowercase();
        return LinearError::NotFound {
            what: if what.is_empty() {
                "entity".into()
            } else {
                what.chars().take(60).collect()
            },
        };
    }
    LinearError::Refused {
        message: if message.is_empty() {
            "no reason given".into()
        } else {
            message
        },
    }
}

fn read_issue(endpoint: &'static str, node: Option<&Value>) -> Result<Issue, LinearError> {
    let node = node.filter(|n| !n.is_null()).ok_or(LinearError::NotFound {
        what: "issue".into(),
    })?;
    serde_json::from_value::<IssueNode>(node.clone())
        .map(Issue::from)
        .map_err(|e| UpstreamError::malformed(endpoint, e.to_string()).into())
}

/// Whether a `{ success }` payload said yes.
fn succeeded(endpoint: &'static str, payload: Option<&Value>) -> Result<(), LinearError> {
    match payload
        .and_then(|p| p.get("success"))
        .and_then(Value::as_bool)
    {
        Some(true) => Ok(()),
        Some(false) => Err(LinearError::Refused {
            message: format!("{endpoint} did not succeed"),
        }),
        None => Err(UpstreamError::malformed(endpoint, "no success flag").into()),
    }
}

/// The variables of `issueCreate` for `tag`'s issue (what the contract test checks).
pub fn create_input(team_id: &str, label_ids: &[String], tag: &Tag, report: &Report) -> Value {
    let mut input = json!({
        "id": tag.uuid(),
        "teamId": team_id,
        "title": report.title,
        "description": report.markdown(),
    });
    if !label_ids.is_empty() {
        input["labelIds"] = json!(label_ids);
    }
    json!({ "input": input })
}

#[async_trait]
impl IssueTracker for LinearApi {
    fn tracker(&self) -> Tracker {
        Tracker::Linear
    }

    fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    async fn find(&self, tag: &Tag) -> Result<Option<Issue>, TrackerError> {
        Ok(self.issue(&tag.uuid()).await?)
    }

    async fn create(&self, tag: &Tag, report: &Report) -> Result<Issue, TrackerError> {
        let query = format!(
            "mutation IssueCreate($input: IssueCreateInput!) {{ issueCreate(input: $input) \
             {{ success issue {{ {ISSUE_FIELDS} }} }} }}"
        );
        let labels: Vec<String> = self.label_ids.iter().map(str::to_owned).collect();
        let variables = create_input(&self.team_id, &labels, tag, report);
        match self.graphql("issue_create", &query, variables).await {
            Ok(data) => {
                let payload = data.get("issueCreate");
                succeeded("issue_create", payload)?;
                Ok(read_issue(
                    "issue_create",
                    payload.and_then(|p| p.get("issue")),
                )?)
            }
            // The id is taken: an earlier try made it (its answer was lost). It is ours.
            Err(LinearError::Refused { message })
                if message.contains("already exists") || message.contains("duplicate") =>
            {
                match self.issue(&tag.uuid()).await? {
                    Some(issue) => Ok(issue),
                    None => Err(LinearError::Refused { message }.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn resolve(&self, key: &str) -> Result<Issue, TrackerError> {
        self.issue(key.trim()).await?.ok_or_else(|| {
            LinearError::NotFound {
                what: format!("issue {}", key.trim()),
            }
            .into()
        })
    }

    async fn link(&self, issue: &Issue, _tag: &Tag, link: &Link) -> Result<String, TrackerError> {
        let query = "mutation AttachmentCreate($input: AttachmentCreateInput!) { \
                     attachmentCreate(input: $input) { success attachment { id } } }";
        let mut input = json!({
            "issueId": issue.id,
            "url": link.url,
            "title": link.title,
        });
        if let Some(subtitle) = &link.subtitle {
            input["subtitle"] = json!(subtitle);
        }
        let data = self
            .graphql("attachment_create", query, json!({ "input": input }))
            .await?;
        let payload = data.get("attachmentCreate");
        succeeded("attachment_create", payload)?;
        payload
            .and_then(|p| p.pointer("/attachment/id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                LinearError::from(UpstreamError::malformed(
                    "attachment_create",
                    "no attachment id",
                ))
                .into()
            })
    }

    async fn unlink(&self, _issue: &Issue, link_id: &str) -> Result<(), TrackerError> {
        let query =
            "mutation AttachmentDelete($id: String!) { attachmentDelete(id: $id) { success } }";
        match self
            .graphql("attachment_delete", query, json!({ "id": link_id }))
            .await
        {
            Ok(data) => Ok(succeeded(
                "attachment_delete",
                data.get("attachmentDelete"),
            )?),
            // Already gone.
            Err(LinearError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn check(&self) -> Result<String, TrackerError> {
        let query =
            "query Check($team: String!) { viewer { id name } team(id: $team) { id key name } }";
        let data = match self
            .graphql("check", query, json!({ "team": self.team_id }))
            .await
        {
            Err(LinearError::NotFound { .. }) => {
                return Err(LinearError::Refused {
                    message: format!("team {} not found (linear.team_id)", self.team_id),
                }
                .into());
            }
            other => other?,
        };
        let viewer = data
            .pointer("/viewer/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let team =
            data.get("team")
                .filter(|t| !t.is_null())
                .ok_or_else(|| LinearError::Refused {
                    message: format!("team {} not found (linear.team_id)", self.team_id),
                })?;
        Ok(format!(
            "key of {viewer}; team {} ({})",
            team.get("key").and_then(Value::as_str).unwrap_or("?"),
            team.get("name").and_then(Value::as_str).unwrap_or("?"),
        ))
    }
}
