//! Per-source limits: one workspace, guild or Zendesk account cannot spend the whole FullStory budget.
//! Each source (platform + tenant) gets `limits.per_source_per_minute` **identities** a minute with a
//! burst of `limits.per_source_burst`: what costs FullStory quota is an identity looked up, not a
//! request, so a command naming ten customers counts ten (at most `identity.max_per_request`, the most
//! one request can look up). Past that, the adapter answers politely ("too many lookups from this
//! workspace, try again in a minute") and enqueues nothing. In-process GCRA (`governor`), per replica.
//!
//! Checked through [`crate::adapters::inbound::within_source_limit`] (counted as `rate_limited`) by Slack's
//! slash command and mentions (a mention over the limit is acknowledged and left unanswered) and by
//! Discord's lookups and Summarize presses.
//!
//! Zendesk is not refused here: a ticket turned away would never get its note (Zendesk does not resend
//! after a 2xx, and a refusal would be retried into the same limit). Its accounts have their own spend
//! limit instead, `zendesk.account_lookups_per_minute` identities a minute (burst
//! `limits.per_source_burst`), checked by the ticket job with [`SourceLimits::delay`]: a job past it is
//! run again later (the attempt not counted), so a storm of tickets is answered late, never dropped.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    state::keyed::HashMapStateStore,
};

use crate::config::LimitsConfig;

pub struct SourceLimits {
    limiter: RateLimiter<String, HashMapStateStore<String>, DefaultClock>,
    burst: NonZeroU32,
}

impl SourceLimits {
    /// The inbound limits of `[limits]`.
    pub fn new(config: &LimitsConfig) -> Self {
        Self::per_minute(config.per_source_per_minute, config.per_source_burst)
    }

    /// `per_minute` identities a minute per source, `burst` at once.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::hashmap(Quota::per_minute(per_minute).allow_burst(burst)),
            burst,
        }
    }

    /// Whether `identities` more lookups from `tenant` on `platform` are allowed now (and counts them if
    /// so). A request counts at least one, and at most the burst (so a large one is not refused forever).
    pub fn allow(&self, platform: &str, tenant: &str, identities: usize) -> bool {
        self.delay(platform, tenant, identities).is_none()
    }

    /// `None` when `identities` more lookups from `tenant` are allowed now (and then counts them), else
    /// how long until they would be.
    pub fn delay(&self, platform: &str, tenant: &str, identities: usize) -> Option<Duration> {
        let n = u32::try_from(identities)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(NonZeroU32::MIN)
            .min(self.burst);
        let checked = self.limiter.check_key_n(&format!("{platform}:{tenant}"), n);
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        match checked {
            Ok(Ok(())) => None,
            Ok(Err(not_until)) => Some(not_until.wait_time_from(DefaultClock::default().now())),
            // n is at most the burst, so this cannot happen; treat it as "a minute".
            Err(_) => Some(Duration::from_secs(60)),
        }
    }
}

/// What the person over the limit is told.
pub const OVER_LIMIT: &str =
    "replaydesk is getting a lot of requests from here right now. Please try again in a minute.";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
            assert!(limits.allow("slack", "T1", 1));
        }
        assert!(!limits.allow("slack", "T1", 1));
        assert!(limits.allow("slack", "T2", 1));
        assert!(limits.allow("discord", "T1", 1));
    }

    #[test]
    fn identities_are_counted_not_requests() {
        let limits = SourceLimits::per_minute(1, 10);
        assert!(limits.allow("slack", "T1", 6));
        assert!(
            !limits.allow("slack", "T1", 6),
            "12 identities > a burst of 10"
        );
        assert!(limits.allow("slack", "T1", 4));
        // A request naming more than the burst counts the burst: allowed when the source is fresh.
        assert!(limits.allow("slack", "T2", 300));
        assert!(!limits.allow("slack", "T2", 1));
        let wait = limits.delay("zendesk", "T2", 1);
        assert_eq!(wait, None, "another platform's source is its own");
        let wait = limits.delay("slack", "T2", 1).unwrap();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
    }
}
