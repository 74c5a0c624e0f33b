//! `[fullstory]`: the FullStory API every lookup spends metered quota on: the key (and the host its
//! region implies), the request budget, timeouts and retries, which sessions are shown, what the digest
//! adds, and how long answers are cached so the same question is not paid for twice.
//!
//! Checks: `requests_per_second` and `burst` at least 1, `limit` between 1 and 100, `lookback_days`
//! between 1 and 3650, `max_attempts` between 1 and 20, `timeout` more than 0s, `base_url` an http(s)
//! URL, `summary_profile`, when given, not blank, `cycle_start_day` between 1 and 28, and
//! `on_request_reserve` at most 100 % (or, as a count, at most `activations_per_cycle`).
//!
//! Activations (issue 24): `activations_per_cycle` unset means no budget (every metered call is still
//! counted); `on_request_reserve` is the part of it kept for what agents ask for, written `"20%"` or
//! as a number of Activations.

use std::time::Duration;

use serde::Deserialize;

use super::{
    ConfigError, Interval, Secret, at_least_one, between, check_url, invalid, more_than_zero,
};

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
    /// Whether answers carry the digest line (one events call, one Activation, per new session):
    /// `true`, `false`, or `"on_request"` (only when an agent asks for it).
    pub digest: DigestMode,
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
    /// FullStory Activations replaydesk may spend per billing cycle; unset: no budget (still counted).
    pub activations_per_cycle: Option<u32>,
    /// The day of the month (1–28, UTC) a billing cycle starts.
    pub cycle_start_day: u32,
    /// The part of the budget kept for what agents ask for: automatic spending stops before it.
    pub on_request_reserve: Reserve,
    /// A Slack channel id told once at 80 % and once at 100 % of the budget, each cycle.
    pub budget_alert_channel: Option<String>,
}

/// When the digest (one metered events call) is fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestMode {
    /// With every answer (`true`).
    Always,
    /// Never (`false`).
    Never,
    /// Only when an agent asks (`"on_request"`): a button or a command option on each platform.
    OnRequest,
}

impl DigestMode {
    /// Whether answers carry the digest without being asked.
    pub fn automatic(self) -> bool {
        self == Self::Always
    }

    /// Whether a person's ask for the digest (`--digest`, `digest:True`, a Digest button) is answered:
    /// not when the operator switched digests off (`false`).
    pub fn answers_asks(self) -> bool {
        self != Self::Never
    }
}

impl From<bool> for DigestMode {
    fn from(on: bool) -> Self {
        if on { Self::Always } else { Self::Never }
    }
}

impl<'de> Deserialize<'de> for DigestMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Flag(bool),
            Word(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Flag(on) => Ok(on.into()),
            Written::Word(word) => match word.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Self::Always),
                "false" => Ok(Self::Never),
                "on_request" => Ok(Self::OnRequest),
                _ => Err(serde::de::Error::custom(format!(
                    "fullstory.digest must be true, false or \"on_request\", not {word:?}"
                ))),
            },
        }
    }
}

/// The part of the Activation budget kept for agents' requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserve {
    /// A share of the budget, in percent (`"20%"`).
    Percent(u32),
    /// A number of Activations (`200`).
    Count(u32),
}

impl Reserve {
    /// The Activations kept out of `budget` (rounded down).
    pub fn of(self, budget: u32) -> u32 {
        match self {
            Self::Percent(p) => {
                u32::try_from(u64::from(budget) * u64::from(p) / 100).unwrap_or(budget)
            }
            Self::Count(n) => n.min(budget),
        }
    }
}

impl<'de> Deserialize<'de> for Reserve {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Count(u32),
            Text(String),
        }
        let bad = |text: &str| {
            serde::de::Error::custom(format!(
                "fullstory.on_request_reserve must be a share like \"20%\" or a number of Activations, not {text:?}"
            ))
        };
        match Written::deserialize(deserializer)? {
            Written::Count(n) => Ok(Self::Count(n)),
            Written::Text(text) => {
                let trimmed = text.trim();
                match trimmed.strip_suffix('%') {
                    Some(p) => p.trim().parse().map(Self::Percent).map_err(|_| bad(&text)),
                    None => trimmed.parse().map(Self::Count).map_err(|_| bad(&text)),
                }
            }
        }
    }
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
            digest: DigestMode::Always,
            what_went_wrong: true,
            max_attempts: 4,
            retry_backoff: Interval(Duration::from_millis(500)),
            cache_ttl: Interval(Duration::from_secs(60)),
            negative_cache_ttl: Interval(Duration::from_secs(15)),
            session_cache_ttl: Interval(Duration::from_secs(3600)),
            cache_capacity: 10_000,
            activations_per_cycle: None,
            cycle_start_day: 1,
            on_request_reserve: Reserve::Percent(20),
            budget_alert_channel: None,
        }
    }
}

impl FullStoryConfig {
    /// The lookback window as a duration.
    pub fn lookback(&self) -> Duration {
        Duration::from_secs(u64::from(self.lookback_days) * 86_400)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("fullstory.requests_per_second", self.requests_per_second)?;
        at_least_one("fullstory.burst", self.burst)?;
        between("fullstory.limit", self.limit, 1, 100)?;
        between("fullstory.lookback_days", self.lookback_days, 1, 3650)?;
        between("fullstory.max_attempts", self.max_attempts, 1, 20)?;
        more_than_zero("fullstory.timeout", self.timeout)?;
        check_url("fullstory.base_url", self.base_url.as_deref())?;
        between("fullstory.cycle_start_day", self.cycle_start_day, 1, 28)?;
        match (self.on_request_reserve, self.activations_per_cycle) {
            (Reserve::Percent(p), _) if p > 100 => {
                return Err(invalid(
                    "fullstory.on_request_reserve",
                    "must be at most 100%",
                ));
            }
            (Reserve::Count(n), Some(budget)) if n > budget => {
                return Err(invalid(
                    "fullstory.on_request_reserve",
                    format!("must be at most fullstory.activations_per_cycle ({budget})"),
                ));
            }
            _ => {}
        }
        if let Some(channel) = &self.budget_alert_channel
            && channel.trim().is_empty()
        {
            return Err(invalid(
                "fullstory.budget_alert_channel",
                "must not be empty (leave it out for no alert)",
            ));
        }
        if let Some(profile) = &self.summary_profile
            && profile.trim().is_empty()
        {
            return Err(invalid(
                "fullstory.summary_profile",
                "must not be empty (leave it out to switch summaries off)",
            ));
        }
        Ok(())
    }
}
