//! One typed configuration tree: a TOML file overlaid by `REPLAYDESK_<SECTION>__<KEY>` environment
//! variables, validated once at start-up with errors that name the key.
//!
//! The file is `--config PATH`, else `./replaydesk.toml` when present, else the defaults alone. Every key,
//! its default and its meaning is documented in `config.example.toml`, which a test loads. Unknown keys are
//! refused (a typo must not silently fall back to a default). Secrets are [`Secret`]s: they print as
//! `[REDACTED]`. An adapter whose secrets are absent is off.

mod discord;
mod values;

use std::{net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

pub use values::{Interval, List, Secret, Secrets, format_duration, parse_duration};

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
    pub heap: HeapConfig,
    pub privacy: PrivacyConfig,
    pub log: LogConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// The public base URL platforms reach us at (used in manifests and setup output).
    pub public_url: Option<String>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Longest time one inbound request may take before it is answered 408.
    pub request_timeout: Interval,
    /// How long a graceful shutdown waits for in-flight requests and jobs.
    pub shutdown_grace: Interval,
    /// How long a request's whole head (request line and headers) may take, from the connection's
    /// opening (its first request) or from the request's first byte (a kept-alive connection's next
    /// ones); slower connections are closed.
    pub header_read_timeout: Interval,
    /// How long a connection may stay open with no request in progress and no byte moving (a kept-alive
    /// one between requests, a client not reading our answer) before it is closed.
    pub idle_timeout: Interval,
    /// Connections served at once; more wait in the kernel's accept queue until one closes.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            max_body_bytes: 256 * 1024,
            request_timeout: Interval(Duration::from_secs(15)),
            shutdown_grace: Interval(Duration::from_secs(20)),
            header_read_timeout: Interval(Duration::from_secs(10)),
            idle_timeout: Interval(Duration::from_secs(60)),
            max_connections: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://replaydesk.db".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub workers: usize,
    pub max_attempts: u32,
    /// How long finished jobs keep their payloads (which hold customer emails).
    pub retention: Interval,
    /// How long a claimed job stays locked to its worker without a renewal.
    pub lease: Interval,
    /// How often idle workers look for due jobs when no wake-up arrives.
    pub poll_interval: Interval,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_attempts: 6,
            retention: Interval(Duration::from_secs(7 * 86_400)),
            lease: Interval(Duration::from_secs(30)),
            poll_interval: Interval(Duration::from_secs(1)),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FullStoryConfig {
    pub api_key: Secret,
    /// Overrides the host derived from the key's region prefix.
    pub base_url: Option<String>,
    pub requests_per_second: u32,
    pub burst: u32,
    /// Timeout of one HTTP request to FullStory.
    pub timeout: Interval,
    /// Sessions older than this are not shown.
    pub lookback_days: u32,
    /// Sessions shown (and asked for) per identity.
    pub limit: u32,
    /// The AI summary profile (`config_profile`); summaries are off without it.
    pub summary_profile: Option<String>,
    /// The FullStory organisation the key belongs to (the `o-…` in app URLs): Slack previews only its
    /// session links. Unset: any organisation's link is tried, and FullStory's 404 leaves it alone.
    pub org_id: Option<String>,
    /// Whether adapters add the digest line (one events call per answer).
    pub digest: bool,
    /// With the digest, list the likely session's console errors, failed requests and rage/dead-click
    /// pages (scrubbed of personal data; no extra FullStory call).
    pub what_went_wrong: bool,
    /// Attempts per request before giving up (429, 5xx, timeouts).
    pub max_attempts: u32,
    /// First backoff step after a 5xx or timeout; doubles each attempt, with jitter.
    pub retry_backoff: Interval,
    /// How long a session list is cached.
    pub cache_ttl: Interval,
    /// How long "no sessions" is cached.
    pub negative_cache_ttl: Interval,
    /// How long a session's events and summaries are cached.
    pub session_cache_ttl: Interval,
    /// Entries kept in each cache.
    pub cache_capacity: u64,
}

impl Default for FullStoryConfig {
    fn default() -> Self {
        Self {
            api_key: Secret::default(),
            base_url: None,
            requests_per_second: 5,
            burst: 10,
            timeout: Interval(Duration::from_secs(10)),
            lookback_days: 30,
            limit: 5,
            summary_profile: None,
            org_id: None,
            digest: true,
            what_went_wrong: true,
            max_attempts: 4,
            retry_backoff: Interval(Duration::from_millis(500)),
            cache_ttl: Interval(Duration::from_secs(60)),
            negative_cache_ttl: Interval(Duration::from_secs(15)),
            session_cache_ttl: Interval(Duration::from_secs(3600)),
            cache_capacity: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Our own domains: addresses there are never looked up.
    pub exclude_domains: List,
    /// Identities looked up for one request (the first ones, in order of appearance); the rest are
    /// named in the answer as not looked up.
    pub max_per_request: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            exclude_domains: List::default(),
            max_per_request: 10,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitsBackend {
    #[default]
    Local,
    Redis,
}

/// The default of `limits.outage_probe_interval`: how often an open circuit breaker lets one call
/// through to see whether its upstream is back.
pub const DEFAULT_OUTAGE_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// The default of `limits.max_retry_after`: the longest one `Retry-After` is honoured.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub backend: LimitsBackend,
    pub redis_url: Option<String>,
    pub expected_replicas: u32,
    pub fail_closed: bool,
    /// Inbound requests one source (workspace, guild, Zendesk account) may make per minute.
    pub per_source_per_minute: u32,
    /// Requests one source may make at once before the per-minute rate applies.
    pub per_source_burst: u32,
    /// While an upstream's circuit breaker is open, at most one probe per this interval per replica.
    pub outage_probe_interval: Interval,
    /// The longest one `Retry-After` is honoured: an upstream asking for longer is not called for
    /// this long, then its circuit breaker probes it (one call at a time) instead of everything waiting
    /// as long as it said.
    pub max_retry_after: Interval,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            backend: LimitsBackend::Local,
            redis_url: None,
            expected_replicas: 1,
            fail_closed: false,
            per_source_per_minute: 120,
            per_source_burst: 30,
            outage_probe_interval: Interval(DEFAULT_OUTAGE_PROBE_INTERVAL),
            max_retry_after: Interval(DEFAULT_MAX_RETRY_AFTER),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// One or several (during rotation) signing secrets.
    pub signing_secret: Secrets,
    pub bot_token: Secret,
    /// App-level `xapp-` token: Socket Mode, no public URL needed.
    pub app_token: Secret,
    pub api_url: Option<String>,
    pub allowed_team_ids: List,
    pub allowed_channel_ids: List,
    pub allowed_user_ids: List,
    /// The only hosts a `response_url` may name, loopback ones included (https; http only to a loopback
    /// host, for tests that list theirs). Slack's own hooks hosts by default: a payload naming any
    /// other host is not posted to.
    pub response_url_hosts: List,
    /// Channels whose pasted FullStory links are previewed (`link_shared` → `chat.unfurl`); empty: every
    /// channel the other allow-lists let through. A preview is seen by everyone in the channel.
    pub unfurl_channel_ids: List,
}

/// Zendesk's ZAF v2 SDK (developer.zendesk.com, "ZAF Client API"): the sidebar page loads it.
pub const ZAF_SDK: &str =
    "https://static.zdassets.com/zendesk_app_framework_sdk/2.0/zaf_sdk.min.js";

/// Where Slack's `response_url`s point: its commercial and GovSlack hooks hosts.
pub const SLACK_RESPONSE_URL_HOSTS: [&str; 2] = ["hooks.slack.com", "hooks.slack-gov.com"];

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            signing_secret: Secrets::default(),
            bot_token: Secret::default(),
            app_token: Secret::default(),
            api_url: None,
            allowed_team_ids: List::default(),
            allowed_channel_ids: List::default(),
            allowed_user_ids: List::default(),
            response_url_hosts: List(SLACK_RESPONSE_URL_HOSTS.map(str::to_owned).to_vec()),
            unfurl_channel_ids: List::default(),
        }
    }
}

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
    #[serde(deserialize_with = "discord::id")]
    pub app_installation_id: Option<String>,
    /// The uploaded app's id: `replaydesk zendesk app` then fetches its public key.
    #[serde(deserialize_with = "discord::id")]
    pub app_id: Option<String>,
    /// Where the sidebar page loads the ZAF SDK from: Zendesk's address; tests and the demo point it
    /// at a stand-in.
    pub app_sdk_url: String,
}

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

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    #[serde(deserialize_with = "discord::id")]
    pub application_id: Option<String>,
    pub public_key: Option<String>,
    pub bot_token: Secret,
    pub api_url: Option<String>,
    pub required_permissions: List,
    pub allowed_role_ids: List,
    /// Guilds (servers) whose interactions are served. Closed by default: with Discord on, an empty list
    /// is refused at start-up unless `allow_any_guild` says otherwise.
    pub allowed_guild_ids: List,
    /// Serve every guild the application is added to (and direct messages): an explicit opt-out of
    /// `allowed_guild_ids`, logged as a warning at start-up.
    pub allow_any_guild: bool,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            application_id: None,
            public_key: None,
            bot_token: Secret::default(),
            api_url: None,
            required_permissions: List(vec!["MODERATE_MEMBERS".into()]),
            allowed_role_ids: List::default(),
            allowed_guild_ids: List::default(),
            allow_any_guild: false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeapConfig {
    pub app_id: Option<String>,
    pub api_key: Secret,
    pub base_url: Option<String>,
}

impl HeapConfig {
    /// Whether erasures reach Heap too (its app id and API key are set).
    pub fn is_enabled(&self) -> bool {
        self.app_id.is_some() && self.api_key.is_set()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    pub admin_slack_user_ids: List,
    pub zendesk_erasure_tag: Option<String>,
    /// Key of the keyed hash the audit log stores instead of emails.
    pub audit_key: Secret,
    /// Where the generated key is kept when `audit_key` is not set (mode 0600, never in the database
    /// beside the hashes it protects). Default: beside a SQLite store (`<store file>.audit-key`); a
    /// PostgreSQL store needs `audit_key` or this file (the same on every replica).
    pub audit_key_file: Option<std::path::PathBuf>,
    /// Days an erased address is remembered (as its keyed hash): a lookup of it meanwhile is answered
    /// "this customer asked to be forgotten" and reaches nothing. 0: not remembered.
    pub tombstone_days: u32,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            admin_slack_user_ids: List::default(),
            zendesk_erasure_tag: None,
            audit_key: Secret::default(),
            audit_key_file: None,
            tombstone_days: 30,
        }
    }
}

impl PrivacyConfig {
    /// How long an erased address is remembered (`tombstone_days`).
    pub fn tombstone_keep(&self) -> Duration {
        Duration::from_secs(u64::from(self.tombstone_days) * 86_400)
    }
}

impl Config {
    /// Where the generated audit key lives: `privacy.audit_key_file`, else beside a SQLite store's file;
    /// `None` for PostgreSQL (which needs one configured) and for an in-memory store.
    pub fn audit_key_file(&self) -> Option<std::path::PathBuf> {
        if let Some(path) = &self.privacy.audit_key_file {
            return Some(path.clone());
        }
        let url = &self.store.url;
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = path.split('?').next().unwrap_or("");
        if path.is_empty() || path.contains(":memory:") {
            return None;
        }
        Some(std::path::PathBuf::from(format!("{path}.audit-key")))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `replaydesk=debug,info`, …
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
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

    /// Checks what types alone cannot, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server
            .listen
            .parse::<SocketAddr>()
            .map_err(|_| invalid("server.listen", "must be an address like 127.0.0.1:8080"))?;
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        if self.server.header_read_timeout.0.is_zero() {
            return Err(invalid(
                "server.header_read_timeout",
                "must be more than 0s",
            ));
        }
        if self.server.idle_timeout.0.is_zero() {
            return Err(invalid("server.idle_timeout", "must be more than 0s"));
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        if self.identity.max_per_request == 0 {
            return Err(invalid("identity.max_per_request", "must be at least 1"));
        }
        for (key, value) in [
            (
                "zendesk.account_lookups_per_minute",
                self.zendesk.account_lookups_per_minute,
            ),
            (
                "zendesk.sidebar_calls_per_minute",
                self.zendesk.sidebar_calls_per_minute,
            ),
            (
                "zendesk.sidebar_calls_per_token_per_minute",
                self.zendesk.sidebar_calls_per_token_per_minute,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if let Some(url) = &self.server.public_url {
            check_url("server.public_url", url)?;
        }
        if !(self.store.url.starts_with("sqlite:")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "store.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if self.queue.workers == 0 || self.queue.workers > 256 {
            return Err(invalid("queue.workers", "must be between 1 and 256"));
        }
        if self.queue.max_attempts == 0 {
            return Err(invalid("queue.max_attempts", "must be at least 1"));
        }
        if self.queue.lease.0 < Duration::from_secs(1) {
            return Err(invalid("queue.lease", "must be at least 1s"));
        }
        let fs = &self.fullstory;
        if fs.requests_per_second == 0 {
            return Err(invalid(
                "fullstory.requests_per_second",
                "must be at least 1",
            ));
        }
        if fs.burst == 0 {
            return Err(invalid("fullstory.burst", "must be at least 1"));
        }
        if fs.limit == 0 || fs.limit > 100 {
            return Err(invalid("fullstory.limit", "must be between 1 and 100"));
        }
        if fs.lookback_days == 0 || fs.lookback_days > 3650 {
            return Err(invalid(
                "fullstory.lookback_days",
                "must be between 1 and 3650",
            ));
        }
        if fs.max_attempts == 0 || fs.max_attempts > 20 {
            return Err(invalid(
                "fullstory.max_attempts",
                "must be between 1 and 20",
            ));
        }
        if fs.timeout.0.is_zero() {
            return Err(invalid("fullstory.timeout", "must be more than 0s"));
        }
        if let Some(url) = &fs.base_url {
            check_url("fullstory.base_url", url)?;
        }
        if let Some(profile) = &fs.summary_profile
            && profile.trim().is_empty()
        {
            return Err(invalid(
                "fullstory.summary_profile",
                "must not be empty (leave it out to switch summaries off)",
            ));
        }
        for domain in self.identity.exclude_domains.iter() {
            if !domain.contains('.') || domain.contains('@') || domain.contains(' ') {
                return Err(invalid(
                    "identity.exclude_domains",
                    format!("`{domain}` is not a domain like example.com"),
                ));
            }
        }
        if self.limits.backend == LimitsBackend::Redis && self.limits.redis_url.is_none() {
            return Err(invalid(
                "limits.redis_url",
                "is required when limits.backend = \"redis\"",
            ));
        }
        if self.limits.per_source_per_minute == 0 || self.limits.per_source_burst == 0 {
            return Err(invalid(
                "limits.per_source_per_minute",
                "limits.per_source_per_minute and limits.per_source_burst must be at least 1",
            ));
        }
        if self.limits.outage_probe_interval.0.is_zero() {
            return Err(invalid(
                "limits.outage_probe_interval",
                "must be more than 0s",
            ));
        }
        if self.limits.max_retry_after.0.is_zero()
            || self.limits.max_retry_after.0 > Duration::from_secs(24 * 3600)
        {
            return Err(invalid(
                "limits.max_retry_after",
                "must be more than 0s and at most 24h",
            ));
        }
        if self.limits.expected_replicas == 0 {
            return Err(invalid("limits.expected_replicas", "must be at least 1"));
        }
        for (key, url) in [
            ("slack.api_url", &self.slack.api_url),
            ("zendesk.base_url", &self.zendesk.base_url),
            ("discord.api_url", &self.discord.api_url),
            ("heap.base_url", &self.heap.base_url),
        ] {
            if let Some(url) = url {
                check_url(key, url)?;
            }
        }
        if self.privacy.tombstone_days > 3650 {
            return Err(invalid(
                "privacy.tombstone_days",
                "must be between 0 (not remembered) and 3650",
            ));
        }
        self.discord.validate()?;
        self.validate_zendesk()?;
        if self.log.level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty"));
        }
        Ok(())
    }

    /// The Zendesk keys that depend on each other: a token needs its account's address, an API
    /// credential needs to know which account, a tag must be one word.
    fn validate_zendesk(&self) -> Result<(), ConfigError> {
        let zd = &self.zendesk;
        if let Some(subdomain) = &zd.subdomain
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
        if zd.api_token.is_set() && zd.email.as_deref().is_none_or(|e| !e.contains('@')) {
            return Err(invalid(
                "zendesk.email",
                "is required with zendesk.api_token (the address of the agent the token belongs to)",
            ));
        }
        if (zd.api_token.is_set() || zd.oauth_token.is_set())
            && zd.base_url.is_none()
            && zd.subdomain.is_none()
        {
            return Err(invalid(
                "zendesk.subdomain",
                "set zendesk.subdomain (or zendesk.base_url) to say which Zendesk account to call",
            ));
        }
        if zd.tag.trim().is_empty() || zd.tag.contains(char::is_whitespace) {
            return Err(invalid(
                "zendesk.tag",
                "must be one word (Zendesk tags cannot hold spaces)",
            ));
        }
        if zd.auto_summary && self.fullstory.summary_profile.is_none() {
            return Err(invalid(
                "zendesk.auto_summary",
                "needs fullstory.summary_profile (the AI summary profile to use)",
            ));
        }
        if zd.timeout.0.is_zero() {
            return Err(invalid("zendesk.timeout", "must be more than 0s"));
        }
        // The shape only (config is a leaf module); the sidebar parses the key itself and answers 401
        // naming this key when its contents are not an RSA key.
        if let Some(pem) = &zd.app_public_key
            && !(pem.contains("-----BEGIN PUBLIC KEY-----")
                && pem.contains("-----END PUBLIC KEY-----"))
        {
            return Err(invalid(
                "zendesk.app_public_key",
                "must be the app's RSA public key in PEM (-----BEGIN PUBLIC KEY-----)",
            ));
        }
        for (key, value) in [
            ("zendesk.app_installation_id", &zd.app_installation_id),
            ("zendesk.app_id", &zd.app_id),
        ] {
            if let Some(id) = value
                && (id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(invalid(key, "must be a number (Zendesk's id)"));
            }
        }
        Ok(())
    }

    /// The lookback window as a duration.
    pub fn lookback(&self) -> Duration {
        Duration::from_secs(u64::from(self.fullstory.lookback_days) * 86_400)
    }
}

fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(invalid(key, format!("`{url}` is not an http(s) URL"))),
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
    /// scripts and the README quote) must not drift when the checks move.
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
                "queue.workers: must be between 1 and 256",
            ),
            (
                "[queue]\nworkers = 0",
                "queue.workers: must be between 1 and 256",
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
    }

    #[test]
    fn redis_backend_needs_a_url() {
        let err = Config::from_toml("[limits]\nbackend = \"redis\"\n").unwrap_err();
        assert!(err.to_string().contains("limits.redis_url"), "{err}");
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
