//! `[zendesk]`: the Zendesk integration: which account it calls and with what credential (an API token
//! with its agent's address, or an OAuth token), the webhook's signing secrets and allowed accounts, what
//! a ticket note holds (tag, summary, FullStory event, a note when nothing is found), its budgets and
//! patience, and the ticket sidebar app (its public key, installation, app id and SDK address). Its
//! on-switch is [`ZendeskConfig::is_enabled`].
//!
//! Checks: the per-minute budgets at least 1; `base_url` an http(s) URL; the account keys that depend on
//! each other (`subdomain` a bare subdomain, `email` with `api_token`, an account named whenever a
//! credential is set); `tag` one word; `timeout` more than 0s; the sidebar's key shaped as a PEM public
//! key and its ids numeric. `auto_summary` needs `fullstory.summary_profile`: that section is handed
//! in ([`ZendeskConfig::validate_with_fullstory`]).

use std::time::Duration;

use serde::Deserialize;

use super::{
    ConfigError, FullStoryConfig, Interval, List, Secret, Secrets, at_least_one,
    auto_summary_needs_a_profile, check_url, invalid, more_than_zero, values,
};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZendeskConfig {
    pub base_url: Option<String>,
    pub subdomain: Option<String>,
    pub email: Option<String>,
    pub api_token: Secret,
    pub oauth_token: Secret,
    /// One or several (during rotation) webhook signing secrets.
    pub webhook_secret: Secrets,
    pub auto_summary: bool,
    pub note_when_empty: bool,
    pub tag: String,
    /// A ticket carrying this tag (as read over Zendesk's API) is escalated to the tracker that is on
    /// (Linear first when both are), once per ticket and session; unset: no tag escalates.
    pub escalate_tag: Option<String>,
    pub fullstory_event: bool,
    /// When set, webhooks from other Zendesk accounts (`x-zendesk-account-id`) get 403.
    pub allowed_account_ids: List,
    /// Timeout of one request to the Zendesk API.
    pub timeout: Interval,
    /// Addresses taken from a ticket's latest comment, besides the requester.
    pub max_comment_identities: usize,
    /// Identities one Zendesk account may have looked up in FullStory per minute; a ticket job past it
    /// is delayed (run later), never refused.
    pub account_lookups_per_minute: u32,
    /// Sidebar calls one Zendesk account may make per minute (burst `limits.per_source_burst`): the
    /// sidebar's own allowance, apart from the webhook's, checked before any Zendesk or FullStory call.
    pub sidebar_calls_per_minute: u32,
    /// Sidebar calls one page load (one agent's open ticket) may make per minute (burst 5).
    pub sidebar_calls_per_token_per_minute: u32,
    /// How long a ticket's note may wait for an upstream that is down before the job ends (expired)
    /// with one note saying so.
    pub max_delay: Interval,
    /// The sidebar app's public key (PEM, `GET /api/v2/apps/{app_id}/public_key.pem`): verifies the
    /// RS256 JWT Zendesk signs the sidebar's first load with. Unset: the sidebar answers 401.
    pub app_public_key: Option<String>,
    /// The app installation whose JWT `aud` is accepted; unset: any installation of the account.
    /// (Ids are read as text or number, like Discord's: the environment turns `…=123` into a number.)
    #[serde(deserialize_with = "values::id_as_text")]
    pub app_installation_id: Option<String>,
    /// The uploaded app's id: `replaydesk zendesk app` then fetches its public key.
    #[serde(deserialize_with = "values::id_as_text")]
    pub app_id: Option<String>,
    /// Where the sidebar page loads the ZAF SDK from: Zendesk's address; tests and the demo point it
    /// at a stand-in.
    pub app_sdk_url: String,
}

/// Zendesk's ZAF v2 SDK (developer.zendesk.com, "ZAF Client API"): the sidebar page loads it.
pub const ZAF_SDK: &str =
    "https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js";

impl Default for ZendeskConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            subdomain: None,
            email: None,
            api_token: Secret::default(),
            oauth_token: Secret::default(),
            webhook_secret: Secrets::default(),
            auto_summary: false,
            note_when_empty: true,
            tag: "replaydesk".into(),
            escalate_tag: None,
            fullstory_event: false,
            allowed_account_ids: List::default(),
            timeout: Interval(Duration::from_secs(10)),
            max_comment_identities: 5,
            account_lookups_per_minute: 120,
            sidebar_calls_per_minute: 240,
            sidebar_calls_per_token_per_minute: 20,
            max_delay: Interval(Duration::from_secs(24 * 3600)),
            app_public_key: None,
            app_installation_id: None,
            app_id: None,
            app_sdk_url: ZAF_SDK.into(),
        }
    }
}

impl ZendeskConfig {
    /// On when webhooks can be verified (a webhook secret) and notes written (an API or OAuth token).
    pub fn is_enabled(&self) -> bool {
        self.webhook_secret.is_set() && (self.api_token.is_set() || self.oauth_token.is_set())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one(
            "zendesk.account_lookups_per_minute",
            self.account_lookups_per_minute,
        )?;
        at_least_one(
            "zendesk.sidebar_calls_per_minute",
            self.sidebar_calls_per_minute,
        )?;
        at_least_one(
            "zendesk.sidebar_calls_per_token_per_minute",
            self.sidebar_calls_per_token_per_minute,
        )?;
        check_url("zendesk.base_url", self.base_url.as_deref())?;
        self.validate_account()?;
        if self.tag.trim().is_empty() || self.tag.contains(char::is_whitespace) {
            return Err(invalid(
                "zendesk.tag",
                "must be one word (Zendesk tags cannot hold spaces)",
            ));
        }
        more_than_zero("zendesk.timeout", self.timeout)?;
        self.validate_sidebar()
    }

    /// `auto_summary` asks FullStory for a summary, which needs `fullstory.summary_profile`.
    pub(super) fn validate_with_fullstory(
        &self,
        fullstory: &FullStoryConfig,
    ) -> Result<(), ConfigError> {
        auto_summary_needs_a_profile("zendesk.auto_summary", self.auto_summary, fullstory)
    }

    /// The account keys that depend on each other: a token needs its account's address, an API
    /// credential needs to know which account.
    fn validate_account(&self) -> Result<(), ConfigError> {
        if let Some(subdomain) = &self.subdomain
            && (subdomain.is_empty()
                || !subdomain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(invalid(
                "zendesk.subdomain",
                "must be the account's subdomain, like `acme` for acme.zendesk.com",
            ));
        }
        if self.api_token.is_set() && self.email.as_deref().is_none_or(|e| !e.contains('@')) {
            return Err(invalid(
                "zendesk.email",
                "is required with zendesk.api_token (the address of the agent the token belongs to)",
            ));
        }
        if (self.api_token.is_set() || self.oauth_token.is_set())
            && self.base_url.is_none()
            && self.subdomain.is_none()
        {
            return Err(invalid(
                "zendesk.subdomain",
                "set zendesk.subdomain (or zendesk.base_url) to say which Zendesk account to call",
            ));
        }
        Ok(())
    }

    /// The sidebar app's keys. The public key's shape only (config is a leaf module); the sidebar
    /// parses the key itself and answers 401 naming this key when its contents are not an RSA key.
    fn validate_sidebar(&self) -> Result<(), ConfigError> {
        if let Some(pem) = &self.app_public_key
            && !(pem.contains("-----BEGIN PUBLIC KEY-----")
                && pem.contains("-----END PUBLIC KEY-----"))
        {
            return Err(invalid(
                "zendesk.app_public_key",
                "must be the app's RSA public key in PEM (-----BEGIN PUBLIC KEY-----)",
            ));
        }
        for (key, value) in [
            ("zendesk.app_installation_id", &self.app_installation_id),
            ("zendesk.app_id", &self.app_id),
        ] {
            if let Some(id) = value
                && (id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(invalid(key, "must be a number (Zendesk's id)"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    #[test]
    fn zendesk_keys_that_depend_on_each_other_are_checked_by_name() {
        let err =
            Config::from_toml("[zendesk]\napi_token = \"t\"\nsubdomain = \"acme\"\n").unwrap_err();
        assert!(err.to_string().contains("zendesk.email"), "{err}");
        let err = Config::from_toml("[zendesk]\noauth_token = \"t\"\n").unwrap_err();
        assert!(err.to_string().contains("zendesk.subdomain"), "{err}");
        let err = Config::from_toml("[zendesk]\nsubdomain = \"acme.zendesk.com\"\n").unwrap_err();
        assert!(err.to_string().contains("zendesk.subdomain"), "{err}");
        let err = Config::from_toml("[zendesk]\nauto_summary = true\n").unwrap_err();
        assert!(err.to_string().contains("zendesk.auto_summary"), "{err}");
        let err = Config::from_toml("[zendesk]\ntag = \"two words\"\n").unwrap_err();
        assert!(err.to_string().contains("zendesk.tag"), "{err}");
        let ok = Config::from_toml(
            "[zendesk]\nsubdomain = \"acme\"\nemail = \"a@acme.com\"\napi_token = \"t\"\n\
             allowed_account_ids = \"123, 456\"\n",
        )
        .unwrap();
        assert_eq!(ok.zendesk.allowed_account_ids.0, vec!["123", "456"]);
        let summaries = Config::from_toml(
            "[zendesk]\nauto_summary = true\n[fullstory]\nsummary_profile = \"support\"\n",
        )
        .unwrap();
        assert!(summaries.zendesk.auto_summary);
    }

    #[test]
    fn zendesk_is_on_with_a_webhook_secret_and_a_token() {
        let on = |toml: &str| Config::from_toml(toml).unwrap().zendesk.is_enabled();
        let account = "[zendesk]\nsubdomain = \"acme\"\nemail = \"a@acme.com\"\n";
        assert!(!on(""));
        assert!(!on(&format!("{account}webhook_secret = \"w\"\n")));
        assert!(!on(&format!("{account}api_token = \"t\"\n")));
        assert!(on(&format!(
            "{account}webhook_secret = \"w\"\napi_token = \"t\"\n"
        )));
        assert!(on(&format!(
            "{account}webhook_secret = \"w\"\noauth_token = \"o\"\n"
        )));
        // Rotation: several webhook secrets, one of them empty, still switch it on.
        assert!(on(&format!(
            "{account}webhook_secret = [\"\", \"w\"]\noauth_token = \"o\"\n"
        )));
    }
}
