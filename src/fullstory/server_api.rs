//! FullStory's Server API v2: users, server-side events, deletion and batch imports.
//!
//! Used by erasure (find a user's FullStory id, delete the user) and by the Zendesk integration
//! ("Support Ticket Created" events, and the backfill through batch imports). These calls change data in
//! the customer's FullStory account and are never cached. Deletion and batch imports need an Admin or
//! Architect key; a 403 says so.
//!
//! Against the seed OpenAPI document (`tests/contracts/README.md`): every call here is in it except
//! `GET /v2/{users,events}/batch/{id}` (a batch import's status, in FullStory's public docs) and
//! `DELETE /v2/users/{id}` (used only for a user without a `uid`). Batch status is read
//! leniently: a 404 there is [`BatchProgress::Unreadable`] ("accepted, status not available"), never
//! a failure, and both the documented shape (`{"job": {"id", "status"}, "imports", "errors"}`) and the
//! seed's flat `BatchJob` are read. The key is checked with [`FullStoryApi::verify_key`], a call the seed has.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{FullStoryApi, FullStoryError, SessionId};
use crate::outbound::UpstreamError;

/// A FullStory user, as `GET /v2/users/{id}` describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub app_url: Option<String>,
}

/// A user to create or update (`POST /v2/users`, matched by `uid`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct UserUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Value>,
}

/// Which session a server event belongs to.
#[derive(Clone, Debug)]
pub enum EventTarget {
    /// The user's most recent session within 30 minutes (or none), found by FullStory.
    MostRecentSessionOf {
        uid: Option<String>,
        user_id: Option<String>,
    },
    Session(SessionId),
}

/// A custom server-side event (`POST /v2/events`).
#[derive(Clone, Debug)]
pub struct ServerEvent {
    pub name: String,
    pub timestamp: Option<DateTime<Utc>>,
    pub target: EventTarget,
    pub properties: Value,
}

impl ServerEvent {
    /// The request body FullStory expects.
    pub fn to_json(&self) -> Value {
        let mut body = json!({ "name": self.name, "properties": self.properties });
        if let Some(ts) = self.timestamp {
            body["timestamp"] = json!(ts.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
        match &self.target {
            EventTarget::Session(id) => body["session"] = json!({ "id": id.as_str() }),
            EventTarget::MostRecentSessionOf { uid, user_id } => {
                body["session"] = json!({ "use_most_recent": true });
                let mut user = serde_json::Map::new();
                if let Some(uid) = uid {
                    user.insert("uid".into(), json!(uid));
                }
                if let Some(id) = user_id {
                    user.insert("id".into(), json!(id));
                }
                body["user"] = Value::Object(user);
            }
        }
        body
    }
}

/// An asynchronous batch import job.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BatchJob {
    pub id: String,
    #[serde(default)]
    pub status: BatchStatus,
    #[serde(default)]
    pub created: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchStatus {
    #[default]
    Pending,
    Processing,
    Completed,
    Failed,
    #[serde(other)]
    Unknown,
}

impl BatchStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// Which kind of records a batch import carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchKind {
    Users,
    Events,
}

impl BatchKind {
    fn path(self) -> &'static str {
        match self {
            Self::Users => "/v2/users/batch",
            Self::Events => "/v2/events/batch",
        }
    }
}

/// What reading a batch import's status told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchProgress {
    /// The job as FullStory describes it.
    Known(BatchJob),
    /// FullStory has no status for it at this host (404): the import was accepted, but whether it
    /// finished cannot be read here.
    Unreadable,
}

/// The FullStory user id `verify_key` asks for: no account has it, so the answer is a 404 that
/// proves the key was accepted without reading (or costing) anything.
const KEY_CHECK_USER: &str = "replaydesk-key-check";

/// At most this many records per batch request.
pub const MAX_BATCH: usize = 50_000;

/// A batch job from either shape: FullStory's documented status answer nests it under `job`; the seed's
/// create answer (and its status answer) is the job itself.
fn read_batch(endpoint: &'static str, body: &[u8]) -> Result<BatchJob, FullStoryError> {
    let value: Value = read(endpoint, body)?;
    match value.get("job") {
        Some(job) if job.is_object() => read(endpoint, job.to_string().as_bytes()),
        _ => read(endpoint, body),
    }
}

fn read<T: serde::de::DeserializeOwned>(
    endpoint: &'static str,
    body: &[u8],
) -> Result<T, FullStoryError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| UpstreamError::malformed(endpoint, e.to_string()).into())
}

impl FullStoryApi {
    /// Checks the key with `GET /v2/users/{id}` for a user no account has: a call the seed OpenAPI
    /// documents, that reads nothing and is not metered. 404 (or 200) means the key was accepted; 401
    /// that it was not; 403 that it cannot read users (not an Admin or Architect key).
    pub async fn verify_key(&self) -> Result<(), FullStoryError> {
        match self.get_user(KEY_CHECK_USER).await {
            Ok(_) | Err(FullStoryError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `GET /v2/users/{id}`.
    pub async fn get_user(&self, id: &str) -> Result<User, FullStoryError> {
        let path = format!("/v2/users/{}", segment(id));
        let body = self
            .call("get_user", "user", self.request(Method::GET, &path)?)
            .await?;
        read("get_user", &body)
    }

    /// `GET /v2/users?email=…`: the users FullStory knows by this email (its public "List users"; not
    /// in the seed OpenAPI document). `Ok(None)` when the endpoint is not there (404): the caller falls
    /// back to what the sessions list says (so does a 405: a FullStory with only the seed's `POST`). Only the first page is read: one email names few users.
    pub async fn users_by_email(&self, email: &str) -> Result<Option<Vec<User>>, FullStoryError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            results: Vec<User>,
        }
        let request = self
            .request(Method::GET, "/v2/users")?
            .query(&[("email", email)]);
        match self.call("list_users", "user list", request).await {
            Ok(body) => read::<Page>("list_users", &body).map(|page| Some(page.results)),
            // Not there: 404, or 405 where only the seed's POST /v2/users exists.
            Err(FullStoryError::NotFound { .. } | FullStoryError::Rejected { status: 405, .. }) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /v2/users`: creates the user, or updates the one with the same `uid`.
    pub async fn create_or_update_user(&self, user: &UserUpdate) -> Result<User, FullStoryError> {
        let request = self.request(Method::POST, "/v2/users")?.json(user);
        let body = self.call("create_user", "user", request).await?;
        read("create_user", &body)
    }

    /// `DELETE /v2/users?uid=…`: deletion runs in the background at FullStory.
    pub async fn delete_user_by_uid(&self, uid: &str) -> Result<(), FullStoryError> {
        let request = self
            .request(Method::DELETE, "/v2/users")?
            .query(&[("uid", uid)]);
        self.call("delete_user", "user", request).await.map(drop)
    }

    /// `POST /v2/events`.
    pub async fn create_event(&self, event: &ServerEvent) -> Result<(), FullStoryError> {
        let request = self
            .request(Method::POST, "/v2/events")?
            .json(&event.to_json());
        self.call("create_event", "session or user", request)
            .await
            .map(drop)
    }

    /// `POST /v2/users/batch` or `/v2/events/batch` with up to [`MAX_BATCH`] records, with an
    /// `Idempotency-Key` made from the body (FullStory's docs): the same records sent again after a crash
    /// between the submission and its record in our store make no second import.
    pub async fn batch_import(
        &self,
        kind: BatchKind,
        records: Vec<Value>,
    ) -> Result<BatchJob, FullStoryError> {
        if records.is_empty() || records.len() > MAX_BATCH {
            return Err(FullStoryError::Rejected {
                endpoint: "batch_import",
                status: 400,
                message: format!(
                    "a batch holds 1 to {MAX_BATCH} records, not {}",
                    records.len()
                ),
            });
        }
        let body = json!({ "requests": records });
        let idempotency_key = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(body.to_string().as_bytes());
            format!("replaydesk-{}", hex::encode(&digest[..16]))
        };
        let request = self
            .request(Method::POST, kind.path())?
            .header("idempotency-key", idempotency_key)
            .json(&body);
        let body = self.call("batch_import", "batch", request).await?;
        read_batch("batch_import", &body)
    }

    /// `GET /v2/{users,events}/batch/{id}`: the job's status ([`BatchProgress::Unreadable`] on 404:
    /// the seed OpenAPI has no such path, FullStory's docs do).
    pub async fn batch_status(
        &self,
        kind: BatchKind,
        id: &str,
    ) -> Result<BatchProgress, FullStoryError> {
        let path = format!("{}/{}", kind.path(), segment(id));
        let body = self
            .call(
                "batch_status",
                "batch job",
                self.request(Method::GET, &path)?,
            )
            .await;
        match body {
            Ok(body) => read_batch("batch_status", &body).map(BatchProgress::Known),
            Err(FullStoryError::NotFound { .. }) => Ok(BatchProgress::Unreadable),
            Err(error) => Err(error),
        }
    }
}

fn segment(id: &str) -> String {
    SessionId::new(id)
        .map(|s| s.path_segment())
        .unwrap_or_default()
}
