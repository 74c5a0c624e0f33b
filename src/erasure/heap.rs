//! Heap's user deletion API (developers.heap.io/reference/user-deletion), for erasure.
//!
//! `POST /api/public/v0/auth_token` with Basic `app_id:api_key` (the Main Production environment) gives
//! an `access_token` valid five minutes; `POST /api/public/v0/user_deletion` with `Bearer` and
//! `{"users":[{"identity":…}]}` (≤ 10,000 per request) answers a `deletion_request_id`, which we keep as the
//! receipt. The per-user field name is unconfirmed upstream; we send `identity` for an email, as Heap's
//! reference shows. Every call goes through the shared retry policy.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use crate::{
    config::HeapConfig,
    outbound::{RetryPolicy, Upstream, Upstreams},
};

pub const DEFAULT_BASE_URL: &str = "https://heapanalytics.com";

pub struct Heap {
    http: reqwest::Client,
    base: String,
    app_id: String,
    api_key: String,
    upstream: Upstream,
}

impl Heap {
    /// `None` when `heap.app_id` or `heap.api_key` is not set.
    pub fn from_config(config: &HeapConfig, upstreams: Upstreams) -> anyhow::Result<Option<Self>> {
        let (Some(app_id), Some(api_key)) = (&config.app_id, config.api_key.expose()) else {
            return Ok(None);
        };
        Ok(Some(Self {
            http: crate::outbound::http_client(std::time::Duration::from_secs(15))?,
            base: crate::outbound::base_url(config.base_url.as_deref(), DEFAULT_BASE_URL),
            app_id: app_id.clone(),
            api_key: api_key.to_owned(),
            upstream: Upstream::new("heap", RetryPolicy::default(), None, upstreams),
        }))
    }

    async fn post(
        &self,
        endpoint: &'static str,
        path: &str,
        auth: String,
        body: Value,
    ) -> anyhow::Result<Value> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, auth)
            .json(&body)
            .build()?;
        let response = self.upstream.send(endpoint, &self.http, request).await?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "Heap refused {endpoint} ({status}): {}",
            text.chars().take(200).collect::<String>()
        );
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Asks Heap to delete the user known by `identity`; returns the deletion request id.
    pub async fn delete_user(&self, identity: &str) -> anyhow::Result<String> {
        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.app_id, self.api_key))
        );
        let token = self
            .post("auth_token", "/api/public/v0/auth_token", basic, json!({}))
            .await?;
        let token = token["access_token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("Heap's auth_token answer has no access_token"))?;
        let answer = self
            .post(
                "user_deletion",
                "/api/public/v0/user_deletion",
                format!("Bearer {token}"),
                json!({ "users": [{ "identity": identity }] }),
            )
            .await?;
        match &answer["deletion_request_id"] {
            Value::String(id) => Ok(id.clone()),
            Value::Number(id) => Ok(id.to_string()),
            _ => anyhow::bail!("Heap's user_deletion answer has no deletion_request_id"),
        }
    }
}
