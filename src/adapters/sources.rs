//! Per-source inbound limits: one workspace, guild or Zendesk account cannot spend the whole FullStory
//! budget. Each source (platform + tenant) gets `limits.per_source_per_minute` requests a minute with a
//! burst of `limits.per_source_burst`; past that, the adapter answers politely ("too many lookups from
//! this workspace, try again in a minute") and enqueues nothing. In-process GCRA (`governor`), per replica.
//!
//! Checked through [`super::inbound::within_source_limit`] (counted as `rate_limited`) by Slack's
//! slash command and mentions (a mention over the limit is acknowledged and left unanswered) and by
//! Discord's lookups and Summarize presses. Zendesk is not limited here: a ticket turned away would
//! never get its note (Zendesk does not retry a 2xx, and a refusal would be retried into the same
//! limit), and an account's tickets arrive at human pace.

use std::num::NonZeroU32;

use governor::{Quota, RateLimiter, clock::DefaultClock, state::keyed::HashMapStateStore};

use crate::config::LimitsConfig;

pub struct SourceLimits {
    limiter: RateLimiter<String, HashMapStateStore<String>, DefaultClock>,
}

impl SourceLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        let per_minute = NonZeroU32::new(config.per_source_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.per_source_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::hashmap(Quota::per_minute(per_minute).allow_burst(burst)),
        }
    }

    /// Whether one more request from `tenant` on `platform` is allowed now (and counts it if so).
    pub fn allow(&self, platform: &str, tenant: &str) -> bool {
        let allowed = self
            .limiter
            .check_key(&format!("{platform}:{tenant}"))
            .is_ok();
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        allowed
    }
}

/// What the person over the limit is told.
pub const OVER_LIMIT: &str =
    "replaydesk is getting a lot of requests from here right now. Please try again in a minute.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_past_its_burst_is_refused_while_others_are_not() {
        let limits = SourceLimits::new(&LimitsConfig {
            per_source_per_minute: 1,
            per_source_burst: 3,
            ..LimitsConfig::default()
        });
        for _ in 0..3 {
            assert!(limits.allow("slack", "T1"));
        }
        assert!(!limits.allow("slack", "T1"));
        assert!(limits.allow("slack", "T2"));
        assert!(limits.allow("discord", "T1"));
    }
}
