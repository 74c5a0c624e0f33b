//! `[limits]`: the shared budgets that keep one source or one outage from taking everything: where rate
//! and breaker state live (this replica, or Redis for several), what happens when Redis is away, each
//! inbound source's allowance, how an open circuit breaker probes, and the longest `Retry-After` obeyed.
//!
//! Checks: the Redis backend has a `redis_url`; the per-source rate and burst, and `expected_replicas`,
//! at least 1; `outage_probe_interval` more than 0s; `max_retry_after` more than 0s and at most 24h.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Interval, at_least_one, invalid, more_than_zero};

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

impl LimitsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.backend == LimitsBackend::Redis && self.redis_url.is_none() {
            return Err(invalid(
                "limits.redis_url",
                "is required when limits.backend = \"redis\"",
            ));
        }
        if self.per_source_per_minute == 0 || self.per_source_burst == 0 {
            return Err(invalid(
                "limits.per_source_per_minute",
                "limits.per_source_per_minute and limits.per_source_burst must be at least 1",
            ));
        }
        more_than_zero("limits.outage_probe_interval", self.outage_probe_interval)?;
        if self.max_retry_after.0.is_zero()
            || self.max_retry_after.0 > Duration::from_secs(24 * 3600)
        {
            return Err(invalid(
                "limits.max_retry_after",
                "must be more than 0s and at most 24h",
            ));
        }
        at_least_one("limits.expected_replicas", self.expected_replicas)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    #[test]
    fn redis_backend_needs_a_url() {
        let err = Config::from_toml("[limits]\nbackend = \"redis\"\n").unwrap_err();
        assert!(err.to_string().contains("limits.redis_url"), "{err}");
        let ok = Config::from_toml(
            "[limits]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379\"\n",
        )
        .unwrap();
        assert_eq!(ok.limits.backend, super::LimitsBackend::Redis);
    }
}
