//! `[fullstory]`: the FullStory API every lookup spends metered quota on: the key (and the host its
//! region implies), the request budget, timeouts and retries, which sessions are shown, what the digest
//! adds, and how long answers are cached so the same question is not paid for twice.
//!
//! Checks: `requests_per_second` and `burst` at least 1, `limit` between 1 and 100, `lookback_days`
//! between 1 and 3650, `max_attempts` between 1 and 20, `timeout` more than 0s, `base_url` an http(s)
//! URL, and `summary_profile`, when given, not blank.

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
