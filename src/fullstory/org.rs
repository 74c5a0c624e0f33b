//! Which FullStory organisation the API key belongs to: what decides whether a pasted session link is
//! ours to preview.
//!
//! A link names its organisation (`https://app.fullstory.com/ui/{org}/session/…`). Without knowing ours,
//! a preview of *any* organisation's link would be answered with our key's data whenever the session id
//! happened to resolve, to the whole channel. So previews need the organisation: `fullstory.org_id`
//! when the operator set it, else what FullStory says of the key (`GET /me` → `orgId`, documented at
//! developer.fullstory.com/server/v1/authentication/me; unmetered), learned once per process: at
//! start-up by `serve` (which logs whether previews are on), or at the first preview when FullStory
//! was unreachable then. A transient failure is not remembered (the next preview asks again); an answer
//! without `orgId`, or a refusal (a FullStory that lacks `/me`), is: previews then stay off, and
//! `replaydesk check` says why.

use reqwest::Method;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::{FullStoryApi, FullStoryError};
use crate::outbound::UpstreamError;

/// The organisation of the key: configured, or learned from FullStory once.
pub struct Organisation {
    configured: Option<String>,
    learned: OnceCell<Option<String>>,
}

/// Why previews are off, in the words `check` and `serve` print.
pub const PREVIEWS_OFF: &str = "off: FullStory did not say which organisation the API key \
     belongs to; set fullstory.org_id (the `o-…` part of your FullStory URLs)";

impl Organisation {
    pub fn new(configured: Option<&str>) -> Self {
        Self {
            configured: configured
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
            learned: OnceCell::new(),
        }
    }

    /// The organisation id: configured, else learned through `client` (once; a transient failure is an
    /// error and is asked again next time; FullStory not saying is `None`, kept).
    pub async fn id(&self, client: &FullStoryApi) -> Result<Option<String>, FullStoryError> {
        if let Some(id) = &self.configured {
            return Ok(Some(id.clone()));
        }
        self.learned
            .get_or_try_init(|| async {
                match client.org_id().await {
                    Ok(id) => Ok(id),
                    Err(error) if error.is_transient() => Err(error),
                    Err(error) => {
                        tracing::warn!(%error, "FullStory would not say which organisation the key belongs to");
                        Ok(None)
                    }
                }
            })
            .await
            .cloned()
    }
}

#[derive(Deserialize)]
struct Me {
    #[serde(default, rename = "orgId")]
    org_id: Option<String>,
}

impl FullStoryApi {
    /// `GET /me`: the organisation the key belongs to, when FullStory says.
    pub async fn org_id(&self) -> Result<Option<String>, FullStoryError> {
        let request = self.request(Method::GET, "/me")?;
        let body = self.call("me", "key", request).await?;
        let me: Me = serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::malformed("me", e.to_string()))?;
        Ok(me
            .org_id
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty()))
    }
}
