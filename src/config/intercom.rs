//! `[intercom]`: the Intercom app: its client secret (which signs webhooks and Canvas Kit requests),
//! the access token and admin that write the notes, the region's API host, which workspaces are
//! served, and what a new conversation gets (a note, a summary, a note when nothing is found). Its
//! on-switch is [`IntercomConfig::is_enabled`].
//!
//! Checks: `api_url` an http(s) URL; with Intercom on, `admin_id` set (a note is written as an admin)
//! and a workspace list unless `allow_any_workspace` opens it on purpose (like Discord's guilds);
//! `auto_summary` needs `fullstory.summary_profile` (that section is handed in); the budgets at least 1,
//! the timeouts more than 0s and the canvas's wait under Intercom's own (about 10 s).

use std::time::Duration;

use serde::Deserialize;

use super::{
    ConfigError, FullStoryConfig, Interval, List, Secret, Secrets, at_least_one,
    auto_summary_needs_a_profile, check_url, invalid, more_than_zero, values,
};

/// Intercom's US host; EU is `https://api.eu.intercom.io`, Australia `https://api.au.intercom.io`.
pub const INTERCOM_US: &str = "https://api.intercom.io";

/// The longest the inbox app may wait for an answer before it shows "loading": Intercom gives a
/// Canvas Kit request about 10 s.
pub const MAX_CANVAS_WAIT: Duration = Duration::from_secs(9);

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntercomConfig {
    /// The app's client secret (Developer Hub → Basic information); a list during rotation.
    pub client_secret: Secrets,
    /// The app's access token (Developer Hub → Authentication): reads contacts, writes notes.
    pub access_token: Secret,
    /// The admin (teammate) the notes are written as.
    #[serde(deserialize_with = "values::id_as_text")]
    pub admin_id: Option<String>,
    /// The region's REST API host.
    pub api_url: String,
    /// Workspaces (`app_id` of a webhook, `workspace_id` of a canvas request) that are served. Closed by
    /// default: with Intercom on, an empty list is refused at start-up unless `allow_any_workspace`.
    pub allowed_workspace_ids: List,
    /// Serve every workspace that installs the app: an explicit opt-out of `allowed_workspace_ids`.
    pub allow_any_workspace: bool,
    /// A new conversation (`conversation.user.created`) gets a note with its contacts' replays.
    pub auto_note: bool,
    /// The note carries FullStory's summary of the likely session.
    pub auto_summary: bool,
    /// A note saying no session was found (once per conversation).
    pub note_when_empty: bool,
    /// Timeout of one request to Intercom's API.
    pub timeout: Interval,
    /// Identities one workspace may have looked up in FullStory per minute (notes and the inbox app).
    pub workspace_lookups_per_minute: u32,
    /// How long the inbox app waits for an answer before it shows "loading" with a Refresh button.
    pub canvas_wait: Interval,
    /// How long a conversation's note may wait for an upstream that is down before the job ends.
    pub max_delay: Interval,
}

impl Default for IntercomConfig {
    fn default() -> Self {
        Self {
            client_secret: Secrets::default(),
            access_token: Secret::default(),
            admin_id: None,
            api_url: INTERCOM_US.into(),
            allowed_workspace_ids: List::default(),
            allow_any_workspace: false,
            auto_note: true,
            auto_summary: false,
            note_when_empty: true,
            timeout: Interval(Duration::from_secs(10)),
            workspace_lookups_per_minute: 120,
            canvas_wait: Interval(Duration::from_secs(7)),
            max_delay: Interval(Duration::from_secs(24 * 3600)),
        }
    }
}

impl IntercomConfig {
    /// On when requests can be verified (a client secret) and notes written (an access token).
    pub fn is_enabled(&self) -> bool {
        self.client_secret.is_set() && self.access_token.is_set()
    }

    /// Whether a workspace is served.
    pub fn allows_workspace(&self, workspace: &str) -> bool {
        self.allow_any_workspace
            || (!self.allowed_workspace_ids.is_empty()
                && self.allowed_workspace_ids.allows(workspace))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_url("intercom.api_url", Some(&self.api_url))?;
        at_least_one(
            "intercom.workspace_lookups_per_minute",
            self.workspace_lookups_per_minute,
        )?;
        more_than_zero("intercom.timeout", self.timeout)?;
        more_than_zero("intercom.canvas_wait", self.canvas_wait)?;
        if self.canvas_wait.0 > MAX_CANVAS_WAIT {
            return Err(invalid(
                "intercom.canvas_wait",
                "must be at most 9s (Intercom waits about 10 s for the inbox app's answer)",
            ));
        }
        more_than_zero("intercom.max_delay", self.max_delay)?;
        if !self.is_enabled() {
            return Ok(());
        }
        if self
            .admin_id
            .as_deref()
            .is_none_or(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "intercom.admin_id",
                "is required (the numeric id of the teammate the notes are written as)",
            ));
        }
        if self.allowed_workspace_ids.is_empty() && !self.allow_any_workspace {
            return Err(invalid(
                "intercom.allowed_workspace_ids",
                "is empty: any workspace that installs the app would get customer lookups. List \
                 your workspace ids here, or set intercom.allow_any_workspace = true",
            ));
        }
        Ok(())
    }

    /// `auto_summary` asks FullStory for a summary, which needs `fullstory.summary_profile`.
    pub(super) fn validate_with_fullstory(
        &self,
        fullstory: &FullStoryConfig,
    ) -> Result<(), ConfigError> {
        auto_summary_needs_a_profile("intercom.auto_summary", self.auto_summary, fullstory)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    const ON: &str = "[intercom]\nclient_secret = \"s\"\naccess_token = \"t\"\n";

    #[test]
    fn intercom_is_on_with_a_client_secret_and_an_access_token() {
        assert!(!Config::from_toml("").unwrap().intercom.is_enabled());
        let config = Config::from_toml(&format!(
            "{ON}admin_id = 42\nallowed_workspace_ids = \"ws1, ws2\"\n"
        ))
        .unwrap();
        assert!(config.intercom.is_enabled());
        assert_eq!(config.intercom.admin_id.as_deref(), Some("42"));
        assert!(config.intercom.allows_workspace("ws2"));
        assert!(!config.intercom.allows_workspace("ws3"));
        assert_eq!(config.intercom.api_url, "https://api.intercom.io");
        // Rotation: a list of client secrets.
        let rotating = Config::from_toml(
            "[intercom]\nclient_secret = [\"old\", \"new\"]\naccess_token = \"t\"\nadmin_id = \"1\"\n\
             allow_any_workspace = true\n",
        )
        .unwrap();
        assert_eq!(rotating.intercom.client_secret.iter().count(), 2);
        assert!(rotating.intercom.allows_workspace("anything"));
    }

    #[test]
    fn intercom_without_a_workspace_list_or_an_admin_is_refused_by_key() {
        let err = Config::from_toml(&format!("{ON}admin_id = \"1\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("intercom.allowed_workspace_ids: is empty"),
            "{err}"
        );
        assert!(err.contains("intercom.allow_any_workspace = true"), "{err}");
        let err = Config::from_toml(&format!("{ON}allow_any_workspace = true\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("intercom.admin_id: is required"), "{err}");
        let cases = [
            ("api_url = \"intercom\"", "intercom.api_url"),
            ("canvas_wait = \"12s\"", "intercom.canvas_wait"),
            ("timeout = \"0s\"", "intercom.timeout"),
            (
                "workspace_lookups_per_minute = 0",
                "intercom.workspace_lookups_per_minute",
            ),
            ("auto_summary = true", "intercom.auto_summary"),
        ];
        for (line, key) in cases {
            let err = Config::from_toml(&format!("[intercom]\n{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(key), "{line}: {err}");
        }
        // Off (no secrets): nothing to close.
        assert!(Config::from_toml("[intercom]\n").is_ok());
    }
}
