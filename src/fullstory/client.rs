//! The HTTP client for FullStory's Sessions API.
//!
//! Contract (developer.fullstory.com; PLATFORMS.md): `Authorization: Basic {API_KEY}` with the key as
//! issued; keys starting `eu1.` belong to `api.eu1.fullstory.com`, all others (`na1.` and pre-2022 keys
//! without a prefix) to `api.fullstory.com`. `GET /sessions/v2?email=|uid=&limit=`,
//! `GET /v2/sessions/{id}/events`, `GET /v2/sessions/{id}/summary?config_profile_id=…[&end_timestamp=…]`
//! (the seed OpenAPI's name; issue 24 item 7: only that one is sent).
//!
//! Past the organisation's Activation quota FullStory's answer is undocumented: a 402, or a 403 or 429
//! whose body names a quota or Activations, is read as "used up" ([`FullStoryError::OutOfQuota`]) and
//! a 429 of that kind is returned at once, not retried (`Upstream::with_quota_answer`). A key is checked with
//! [`FullStoryApi::verify_key`] (`GET /v2/users/{id}`, in the seed), not `GET /me` (which the seed lacks).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, RequestBuilder, StatusCode, Url};

use super::{FullStoryError, SessionsApi, model};
use crate::{
    config::{FullStoryConfig, Secret},
    identity::Identity,
    outbound::{Answered, Budget, RetryPolicy, Upstream, UpstreamError, Upstreams},
};

/// The calls FullStory meters in Activations (PLATFORMS.md §7.1: Get Session Events, Generate
/// Summary; List Sessions is not in its table, and is counted apart).
pub const METERED: &[&str] = &["session_events", "session_summary"];

/// Whether an answer's body names a quota: FullStory's out-of-quota answer is undocumented, so a
/// 403 or 429 saying "quota" or "activation" is taken for it.
pub fn names_a_quota(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    text.contains("quota") || text.contains("activation")
}

pub const US_BASE_URL: &str = "https://api.fullstory.com";
pub const EU_BASE_URL: &str = "https://api.eu1.fullstory.com";

/// The API host a key belongs to, from its region prefix.
pub fn base_url_for_key(key: &str) -> &'static str {
    if key.trim().to_ascii_lowercase().starts_with("eu1.") {
        EU_BASE_URL
    } else {
        US_BASE_URL
    }
}

/// FullStory over HTTP.
pub struct FullStoryApi {
    http: reqwest::Client,
    base: String,
    key: Secret,
    upstream: Upstream,
}

impl FullStoryApi {
    pub fn new(
        config: &FullStoryConfig,
        budget: Arc<dyn Budget>,
        upstreams: Upstreams,
    ) -> Result<Self, FullStoryError> {
        let key = config.api_key.clone();
        let base = match (&config.base_url, key.expose()) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(key)) => base_url_for_key(key).to_owned(),
            (None, None) => US_BASE_URL.to_owned(),
        };
        Ok(Self {
            http: crate::outbound::http_client(config.timeout.0)
                .map_err(|e| FullStoryError::Upstream(UpstreamError::Transport(e.to_string())))?,
            base,
            key,
            upstream: Upstream::new(
                "fullstory",
                RetryPolicy {
                    max_attempts: config.max_attempts,
                    base: config.retry_backoff.0,
                    ..RetryPolicy::default()
                },
                Some(budget),
                upstreams,
            )
            .with_metered(METERED)
            .with_quota_answer(names_a_quota),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The shared retry machinery, for tests and diagnostics.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    pub(super) fn request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<RequestBuilder, FullStoryError> {
        let key = self.key.expose().ok_or(FullStoryError::NotConfigured)?;
        let url = Url::parse(&format!("{}{path}", self.base)).map_err(|e| {
            FullStoryError::Upstream(UpstreamError::Transport(format!("bad FullStory URL: {e}")))
        })?;
        Ok(self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, format!("Basic {key}"))
            .header(reqwest::header::ACCEPT, "application/json"))
    }

    /// Sends through the retry policy and returns the body of a 2xx answer, or the typed error.
    pub(super) async fn call(
        &self,
        endpoint: &'static str,
        not_found: &'static str,
        request: RequestBuilder,
    ) -> Result<Vec<u8>, FullStoryError> {
        self.call_with(endpoint, not_found, request, true).await
    }

    /// [`Self::call`] for a metered call: not repeated after a 5xx or a timeout, which FullStory may
    /// have charged (the job asks again, and takes an Activation again: issue 24). A 429 is still
    /// waited out and sent again (nothing was served).
    async fn call_metered(
        &self,
        endpoint: &'static str,
        not_found: &'static str,
        request: RequestBuilder,
    ) -> Result<Vec<u8>, FullStoryError> {
        self.call_with(endpoint, not_found, request, false).await
    }

    async fn call_with(
        &self,
        endpoint: &'static str,
        not_found: &'static str,
        request: RequestBuilder,
        repeatable: bool,
    ) -> Result<Vec<u8>, FullStoryError> {
        let Answered { status, body } = self
            .upstream
            .call(endpoint, &self.http, request, repeatable)
            .await
            .map_err(UpstreamError::from)?;
        match status {
            s if s.is_success() => Ok(body),
            s if s == StatusCode::PAYMENT_REQUIRED
                || ((s == StatusCode::FORBIDDEN || s == StatusCode::TOO_MANY_REQUESTS)
                    && names_a_quota(&body)) =>
            {
                Err(FullStoryError::OutOfQuota {
                    endpoint,
                    status: s.as_u16(),
                    message: error_message(&body),
                })
            }
            StatusCode::UNAUTHORIZED => Err(FullStoryError::Unauthorized),
            StatusCode::FORBIDDEN => Err(FullStoryError::Forbidden { endpoint }),
            StatusCode::NOT_FOUND => Err(FullStoryError::NotFound { what: not_found }),
            s => Err(FullStoryError::Rejected {
                endpoint,
                status: s.as_u16(),
                message: error_message(&body),
            }),
        }
    }
}

/// The `message` of FullStory's error body, or the start of the body.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

#[async_trait]
impl SessionsApi for FullStoryApi {
    async fn list_sessions(
        &self,
        who: &Identity,
        limit: u32,
    ) -> Result<Arc<model::SessionList>, FullStoryError> {
        let (name, value) = match who {
            Identity::Email(email) => ("email", email.as_str()),
            Identity::Uid(uid) => ("uid", uid.as_str()),
        };
        let limit = limit.to_string();
        let request = self
            .request(Method::GET, "/sessions/v2")?
            .query(&[(name, value), ("limit", limit.as_str())]);
        let body = self.call("list_sessions", "user", request).await;
        let body = match body {
            // An unknown user is "no sessions", not an error.
            Err(FullStoryError::NotFound { .. }) => return Ok(Arc::default()),
            other => other?,
        };
        let list = model::parse_session_list(&body)
            .map_err(|reason| UpstreamError::malformed("list_sessions", reason))?;
        if list.skipped > 0 {
            tracing::warn!(skipped = list.skipped, "skipped unreadable session entries");
        }
        Ok(Arc::new(list))
    }

    async fn session_events(
        &self,
        id: &model::SessionId,
        _purpose: crate::activations::Purpose,
    ) -> Result<Arc<Vec<model::SessionEvent>>, FullStoryError> {
        let path = format!("/v2/sessions/{}/events", id.path_segment());
        let request = self.request(Method::GET, &path)?;
        let body = self
            .call_metered("session_events", "session", request)
            .await?;
        model::parse_events(&body)
            .map(Arc::new)
            .map_err(|reason| UpstreamError::malformed("session_events", reason).into())
    }

    async fn session_summary(
        &self,
        id: &model::SessionId,
        profile: &str,
        end: Option<DateTime<Utc>>,
        _purpose: crate::activations::Purpose,
    ) -> Result<Arc<model::Summary>, FullStoryError> {
        let path = format!("/v2/sessions/{}/summary", id.path_segment());
        let mut query = vec![("config_profile_id", profile.to_owned())];
        if let Some(end) = end {
            query.push((
                "end_timestamp",
                end.to_rfc3339_opts(SecondsFormat::Secs, true),
            ));
        }
        let request = self.request(Method::GET, &path)?.query(&query);
        let body = self
            .call_metered("session_summary", "session or summary profile", request)
            .await?;
        model::parse_summary(&body)
            .map(Arc::new)
            .map_err(|reason| UpstreamError::malformed("session_summary", reason).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_naming_a_quota_or_activations_is_an_out_of_quota_answer() {
        assert!(names_a_quota(br#"{"message":"Activation quota exceeded"}"#));
        assert!(names_a_quota(b"QUOTA reached"));
        assert!(!names_a_quota(br#"{"message":"slow down"}"#));
        assert!(!names_a_quota(b""));
    }

    #[test]
    fn eu_keys_go_to_the_eu_host() {
        assert_eq!(base_url_for_key("eu1.abcdef"), EU_BASE_URL);
        assert_eq!(base_url_for_key("EU1.abcdef"), EU_BASE_URL);
        assert_eq!(base_url_for_key("na1.abcdef"), US_BASE_URL);
        assert_eq!(base_url_for_key("legacykeywithoutregion"), US_BASE_URL);
    }
}
