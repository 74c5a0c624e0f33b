//! One typed configuration tree: a TOML file overlaid by `REPLAYDESK_<SECTION>__<KEY>` environment
//! variables, validated once at start-up with errors that name the key.
//!
//! The file is `--config PATH`, else `./replaydesk.toml` when present, else the defaults alone. Every key,
//! its default and its meaning is documented in `config.example.toml`, which a test loads. Unknown keys are
//! refused (a typo must not silently fall back to a default). Secrets are [`Secret`]s: they print as
//! `[REDACTED]`. An adapter whose secrets are absent is off.
//!
//! One file per section (`[server]` in `server.rs`, …, `[log]` in `log.rs`), each holding its struct,
//! its defaults, its `validate` and, for a platform, its on-switch (`is_enabled`); `values.rs` holds
//! the types keys are written in. This file holds the tree, loading, [`ConfigError`] and the small
//! checks every section words alike ("must be at least 1", "must be more than 0s", an http(s) URL).
//! [`Config::validate`] only calls the sections' checks, in section order; a check that reads two
//! sections belongs to the section whose key it names and is handed the other one
//! ([`ZendeskConfig`]'s `auto_summary` reads `[fullstory]`).

mod discord;
mod escalate;
mod fullstory;
mod heap;
mod identity;
mod intercom;
mod jira;
mod limits;
mod linear;
mod log;
mod privacy;
mod queue;
mod server;
mod slack;
mod store;
mod values;
mod zendesk;

use std::{fmt::Display, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

pub use discord::DiscordConfig;
pub use escalate::EscalateConfig;
pub use fullstory::{DigestMode, FullStoryConfig, Reserve};
pub use heap::HeapConfig;
pub use identity::IdentityConfig;
pub use intercom::{INTERCOM_US, IntercomConfig};
pub use jira::JiraConfig;
pub use limits::{
    DEFAULT_MAX_RETRY_AFTER, DEFAULT_OUTAGE_PROBE_INTERVAL, LimitsBackend, LimitsConfig,
};
pub use linear::{LINEAR_API_URL, LinearConfig};
pub use log::{LogConfig, LogFormat};
pub use privacy::PrivacyConfig;
pub use queue::QueueConfig;
pub use server::ServerConfig;
pub use slack::{SLACK_RESPONSE_URL_HOSTS, SlackConfig};
pub use store::StoreConfig;
pub use values::{Interval, List, Secret, Secrets, format_duration, parse_duration};
pub use zendesk::{ZAF_SDK, ZendeskConfig};

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub queue: QueueConfig,
    pub fullstory: FullStoryConfig,
    pub identity: IdentityConfig,
    pub limits: LimitsConfig,
    pub slack: SlackConfig,
    pub zendesk: ZendeskConfig,
    pub discord: DiscordConfig,
    pub intercom: IntercomConfig,
    pub linear: LinearConfig,
    pub jira: JiraConfig,
    pub escalate: EscalateConfig,
    pub heap: HeapConfig,
    pub privacy: PrivacyConfig,
    pub log: LogConfig,
}

/// A configuration problem, naming the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// A count or rate that zero would switch off or stall: "must be at least 1".
fn at_least_one<N: Default + PartialEq>(key: &'static str, value: N) -> Result<(), ConfigError> {
    if value == N::default() {
        return Err(invalid(key, "must be at least 1"));
    }
    Ok(())
}

/// A number with a range: "must be between `low` and `high`" (both allowed).
fn between<N: PartialOrd + Display>(
    key: &'static str,
    value: N,
    low: N,
    high: N,
) -> Result<(), ConfigError> {
    if value < low || value > high {
        return Err(invalid(key, format!("must be between {low} and {high}")));
    }
    Ok(())
}

/// A timeout or interval that zero would make useless: "must be more than 0s".
fn more_than_zero(key: &'static str, interval: Interval) -> Result<(), ConfigError> {
    if interval.0.is_zero() {
        return Err(invalid(key, "must be more than 0s"));
    }
    Ok(())
}

/// A platform's `auto_summary` asks FullStory for a summary, which needs `fullstory.summary_profile`.
fn auto_summary_needs_a_profile(
    key: &'static str,
    auto_summary: bool,
    fullstory: &FullStoryConfig,
) -> Result<(), ConfigError> {
    if auto_summary && fullstory.summary_profile.is_none() {
        return Err(invalid(
            key,
            "needs fullstory.summary_profile (the AI summary profile to use)",
        ));
    }
    Ok(())
}

/// An optional base URL: when set, an http(s) URL with a host.
fn check_url(key: &'static str, url: Option<&str>) -> Result<(), ConfigError> {
    let Some(url) = url else {
        return Ok(());
    };
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(invalid(key, format!("`{url}` is not an http(s) URL"))),
    }
}

/// The environment variable prefix: `REPLAYDESK_FULLSTORY__API_KEY` sets `fullstory.api_key`.
pub const ENV_PREFIX: &str = "REPLAYDESK_";

impl Config {
    /// Loads `path` (or `./replaydesk.toml` when it exists) overlaid by the environment, then validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let default_path = Path::new("replaydesk.toml");
        let file = match path {
            Some(p) if !p.exists() => {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist",
                    p.display()
                )));
            }
            Some(p) => Some(p),
            None if default_path.exists() => Some(default_path),
            None => None,
        };
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(Toml::file(file));
        }
        Self::from_figment(figment.merge(Self::env()))
    }

    /// Parses a TOML document alone (no environment), then validates.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::string(text)))
    }

    fn env() -> Env {
        // Only variables with a section (`__`) are configuration; `REPLAYDESK_TEST_…` and the like are not.
        Env::prefixed(ENV_PREFIX)
            .filter(|key| key.as_str().contains("__"))
            .split("__")
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(describe_figment_error(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot, naming the key: each section in turn, the first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.store.validate()?;
        self.queue.validate()?;
        self.fullstory.validate()?;
        self.identity.validate()?;
        self.limits.validate()?;
        self.slack.validate()?;
        self.zendesk.validate()?;
        self.zendesk.validate_with_fullstory(&self.fullstory)?;
        self.discord.validate()?;
        self.intercom.validate()?;
        self.intercom.validate_with_fullstory(&self.fullstory)?;
        self.linear.validate()?;
        self.jira.validate()?;
        self.heap.validate()?;
        self.privacy.validate()?;
        self.log.validate()
    }

    /// The lookback window as a duration (`fullstory.lookback_days`).
    pub fn lookback(&self) -> Duration {
        self.fullstory.lookback()
    }

    /// Where the generated audit key lives: `privacy.audit_key_file`, else beside a SQLite store's file;
    /// `None` for PostgreSQL (which needs one configured) and for an in-memory store.
    pub fn audit_key_file(&self) -> Option<std::path::PathBuf> {
        self.privacy.audit_key_file(&self.store)
    }
}

/// Figment's errors already name the key ("for key `fullstory.limit`"); keep every one of them.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let kind = e.kind.to_string();
            if key.is_empty() {
                kind
            } else {
                format!("{key}: {kind}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_embedded() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.server.max_body_bytes, 256 * 1024);
        assert_eq!(config.store.url, "sqlite://replaydesk.db");
        assert_eq!(config.fullstory.cache_ttl.0, Duration::from_secs(60));
        assert_eq!(
            config.fullstory.negative_cache_ttl.0,
            Duration::from_secs(15)
        );
        assert!(!config.fullstory.api_key.is_set());
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = Config::from_toml("[fullstory]\nlimit = 0\n").unwrap_err();
        assert!(err.to_string().contains("fullstory.limit"), "{err}");
        let err = Config::from_toml("[fullstory]\ntimeout = \"10 parsecs\"\n").unwrap_err();
        assert!(err.to_string().contains("fullstory.timeout"), "{err}");
        let err = Config::from_toml("[server]\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(err.to_string().contains("server.listen"), "{err}");
    }

    /// Every check's exact words, one bad key at a time: what an operator reads at start-up (and what
    /// scripts and the docs quote) must not drift when the checks move.
    #[test]
    fn every_check_says_what_it_always_said() {
        let cases = [
            (
                "[server]\nlisten = \"nowhere\"",
                "server.listen: must be an address like 127.0.0.1:8080",
            ),
            (
                "[server]\nmax_body_bytes = 100",
                "server.max_body_bytes: must be at least 1024",
            ),
            (
                "[server]\nheader_read_timeout = \"0s\"",
                "server.header_read_timeout: must be more than 0s",
            ),
            (
                "[server]\nidle_timeout = \"0s\"",
                "server.idle_timeout: must be more than 0s",
            ),
            (
                "[server]\nmax_connections = 0",
                "server.max_connections: must be at least 1",
            ),
            (
                "[server]\npublic_url = \"nope\"",
                "server.public_url: `nope` is not an http(s) URL",
            ),
            (
                "[store]\nurl = \"mysql://db\"",
                "store.url: must start with sqlite:// or postgres://",
            ),
            (
                "[queue]\nworkers = 257",
                "queue.workers: must be between 0 and 256",
            ),
            (
                "[queue]\nmax_attempts = 0",
                "queue.max_attempts: must be at least 1",
            ),
            (
                "[queue]\nlease = \"500ms\"",
                "queue.lease: must be at least 1s",
            ),
            (
                "[fullstory]\nrequests_per_second = 0",
                "fullstory.requests_per_second: must be at least 1",
            ),
            (
                "[fullstory]\nburst = 0",
                "fullstory.burst: must be at least 1",
            ),
            (
                "[fullstory]\nlimit = 101",
                "fullstory.limit: must be between 1 and 100",
            ),
            (
                "[fullstory]\nlookback_days = 0",
                "fullstory.lookback_days: must be between 1 and 3650",
            ),
            (
                "[fullstory]\nlookback_days = 3651",
                "fullstory.lookback_days: must be between 1 and 3650",
            ),
            (
                "[fullstory]\nmax_attempts = 21",
                "fullstory.max_attempts: must be between 1 and 20",
            ),
            (
                "[fullstory]\ntimeout = \"0s\"",
                "fullstory.timeout: must be more than 0s",
            ),
            (
                "[fullstory]\nbase_url = \"fs\"",
                "fullstory.base_url: `fs` is not an http(s) URL",
            ),
            (
                "[fullstory]\nsummary_profile = \" \"",
                "fullstory.summary_profile: must not be empty (leave it out to switch summaries off)",
            ),
            (
                "[identity]\nmax_per_request = 0",
                "identity.max_per_request: must be at least 1",
            ),
            (
                "[identity]\nexclude_domains = [\"a@b.com\"]",
                "identity.exclude_domains: `a@b.com` is not a domain like example.com",
            ),
            (
                "[limits]\nbackend = \"redis\"",
                "limits.redis_url: is required when limits.backend = \"redis\"",
            ),
            (
                "[limits]\nper_source_burst = 0",
                "limits.per_source_per_minute: limits.per_source_per_minute and \
                 limits.per_source_burst must be at least 1",
            ),
            (
                "[limits]\noutage_probe_interval = \"0s\"",
                "limits.outage_probe_interval: must be more than 0s",
            ),
            (
                "[limits]\nmax_retry_after = \"25h\"",
                "limits.max_retry_after: must be more than 0s and at most 24h",
            ),
            (
                "[limits]\nexpected_replicas = 0",
                "limits.expected_replicas: must be at least 1",
            ),
            (
                "[slack]\napi_url = \"ftp://slack\"",
                "slack.api_url: `ftp://slack` is not an http(s) URL",
            ),
            (
                "[zendesk]\naccount_lookups_per_minute = 0",
                "zendesk.account_lookups_per_minute: must be at least 1",
            ),
            (
                "[zendesk]\nsidebar_calls_per_minute = 0",
                "zendesk.sidebar_calls_per_minute: must be at least 1",
            ),
            (
                "[zendesk]\nsidebar_calls_per_token_per_minute = 0",
                "zendesk.sidebar_calls_per_token_per_minute: must be at least 1",
            ),
            (
                "[zendesk]\nbase_url = \"zd\"",
                "zendesk.base_url: `zd` is not an http(s) URL",
            ),
            (
                "[zendesk]\nsubdomain = \"acme.zendesk.com\"",
                "zendesk.subdomain: must be the account's subdomain, like `acme` for acme.zendesk.com",
            ),
            (
                "[zendesk]\nsubdomain = \"acme\"\napi_token = \"t\"",
                "zendesk.email: is required with zendesk.api_token (the address of the agent the token belongs to)",
            ),
            (
                "[zendesk]\noauth_token = \"t\"",
                "zendesk.subdomain: set zendesk.subdomain (or zendesk.base_url) to say which Zendesk account to call",
            ),
            (
                "[zendesk]\ntag = \"two words\"",
                "zendesk.tag: must be one word (Zendesk tags cannot hold spaces)",
            ),
            (
                "[zendesk]\nauto_summary = true",
                "zendesk.auto_summary: needs fullstory.summary_profile (the AI summary profile to use)",
            ),
            (
                "[zendesk]\ntimeout = \"0s\"",
                "zendesk.timeout: must be more than 0s",
            ),
            (
                "[zendesk]\napp_public_key = \"abc\"",
                "zendesk.app_public_key: must be the app's RSA public key in PEM (-----BEGIN PUBLIC KEY-----)",
            ),
            (
                "[zendesk]\napp_installation_id = \"abc\"",
                "zendesk.app_installation_id: must be a number (Zendesk's id)",
            ),
            (
                "[zendesk]\napp_id = \"12a\"",
                "zendesk.app_id: must be a number (Zendesk's id)",
            ),
            (
                "[discord]\napplication_id = \"my-app\"",
                "discord.application_id: must be the numeric application id from the developer portal",
            ),
            (
                "[discord]\napi_url = \"discord\"",
                "discord.api_url: `discord` is not an http(s) URL",
            ),
            (
                "[heap]\nbase_url = \"ftp://heap\"",
                "heap.base_url: `ftp://heap` is not an http(s) URL",
            ),
            (
                "[privacy]\ntombstone_days = 3651",
                "privacy.tombstone_days: must be between 0 (not remembered) and 3650",
            ),
            ("[log]\nlevel = \" \"", "log.level: must not be empty"),
        ];
        for (toml, said) in cases {
            let err = Config::from_toml(toml).unwrap_err().to_string();
            assert_eq!(err, said, "{toml}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let err = Config::from_toml("[fullstory]\napi_kee = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("api_kee"), "{err}");
    }

    #[test]
    fn lists_accept_arrays_and_comma_separated_strings() {
        let config = Config::from_toml(
            "[slack]\nallowed_team_ids = \"T1, T2\"\n[identity]\nexclude_domains = [\"ourco.com\"]\n",
        )
        .unwrap();
        assert_eq!(config.slack.allowed_team_ids.0, vec!["T1", "T2"]);
        assert_eq!(config.identity.exclude_domains.0, vec!["ourco.com"]);
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "replaydesk.toml",
                "[fullstory]\nlimit = 3\napi_key = \"from-file\"\n",
            )?;
            jail.set_env("REPLAYDESK_FULLSTORY__LIMIT", "7");
            jail.set_env("REPLAYDESK_FULLSTORY__API_KEY", "na1.from-env");
            jail.set_env("REPLAYDESK_SLACK__ALLOWED_TEAM_IDS", "T1,T2");
            jail.set_env("REPLAYDESK_TEST_POSTGRES_URL", "ignored: not a config key");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.fullstory.limit, 7);
            assert_eq!(config.fullstory.api_key.expose(), Some("na1.from-env"));
            assert_eq!(config.slack.allowed_team_ids.0, vec!["T1", "T2"]);
            Ok(())
        });
    }

    #[test]
    fn the_example_file_documents_a_valid_configuration() {
        let text = include_str!("../../config.example.toml");
        let config = Config::from_toml(text).unwrap();
        let defaults = Config::from_toml("").unwrap();
        // The example shows the defaults: loading it must change nothing that has a default.
        assert_eq!(config.server.listen, defaults.server.listen);
        assert_eq!(config.fullstory.limit, defaults.fullstory.limit);
        assert_eq!(config.queue.retention, defaults.queue.retention);
        assert_eq!(config.zendesk.tag, defaults.zendesk.tag);
    }
}
