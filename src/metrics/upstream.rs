//! The metric families of the outbound side: every upstream call, retry, 429, limiter wait, cache
//! lookup, refusal and metered call ([`UpstreamMetrics`]), with their label sets. They live in
//! `outbound` because the upstream client counts into them; [`crate::metrics`] registers them with
//! the rest and re-exports them (so `metrics` uses `outbound`, never the other way round).
//!
//! Metered calls: see [`crate::metrics`] for why a rolling 24 h window is kept.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub upstream: &'static str,
    pub endpoint: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub upstream: &'static str,
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub platform: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: &'static str,
    pub result: &'static str,
}

/// Width of one bucket of the rolling window, in seconds.
const BUCKET_SECONDS: u64 = 15 * 60;
/// Buckets in the 24 h window.
const BUCKETS: usize = (24 * 3600 / BUCKET_SECONDS) as usize;

/// Calls in the last 24 hours, in 15-minute buckets (the oldest bucket may be partly outside).
#[derive(Debug, Clone)]
struct RollingDay {
    /// `(bucket number since the epoch, calls in it)`, at `bucket % BUCKETS`.
    buckets: [(u64, u64); BUCKETS],
}

impl Default for RollingDay {
    fn default() -> Self {
        Self {
            buckets: [(0, 0); BUCKETS],
        }
    }
}

impl RollingDay {
    fn record(&mut self, now_secs: u64) {
        let bucket = now_secs / BUCKET_SECONDS;
        let slot = &mut self.buckets[(bucket % BUCKETS as u64) as usize];
        if slot.0 == bucket {
            slot.1 += 1;
        } else {
            *slot = (bucket, 1);
        }
    }

    fn total(&self, now_secs: u64) -> u64 {
        let bucket = now_secs / BUCKET_SECONDS;
        self.buckets
            .iter()
            .filter(|(b, _)| *b <= bucket && bucket - *b < BUCKETS as u64)
            .map(|(_, n)| n)
            .sum()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Families describing calls to upstream APIs (FullStory, Slack, Zendesk, Intercom, Discord, Heap).
#[derive(Clone, Default)]
pub struct UpstreamMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub retries: Family<EndpointLabels, Counter>,
    pub rate_limited: Family<UpstreamLabels, Counter>,
    pub limiter_waits: Family<UpstreamLabels, Counter>,
    pub limiter_wait_seconds: Family<UpstreamLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    pub cache: Family<CacheLabels, Counter>,
    pub metered: Family<EndpointLabels, Counter>,
    pub metered_24h: Family<UpstreamLabels, Gauge>,
    /// Posts not sent because their destination is not allowed (a `response_url` host outside
    /// `slack.response_url_hosts`).
    pub refused_destinations: Family<UpstreamLabels, Counter>,
    /// Messages a platform refused, by platform and the platform's code (a fixed set per platform).
    pub refusals: Family<RefusalLabels, Counter>,
    windows: Arc<Mutex<HashMap<&'static str, RollingDay>>>,
    /// Each upstream's circuit breaker, as exported (the breakers are `outbound`'s).
    pub breaker: BreakerMetrics,
}

/// `replaydesk_upstream_breaker_state{upstream}` (1 open, 0 closed) and
/// `replaydesk_upstream_breaker_openings_total{upstream}`.
#[derive(Clone, Default)]
pub struct BreakerMetrics {
    pub state: Family<UpstreamLabels, Gauge>,
    pub openings: Family<UpstreamLabels, Counter>,
}

impl UpstreamMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let breaker_metrics = metrics.breaker.clone();
        registry.register(
            "replaydesk_upstream_breaker_state",
            "Circuit breaker of each upstream: 1 open (calls fail fast, one probe per \
             limits.outage_probe_interval), 0 closed",
            breaker_metrics.state,
        );
        registry.register(
            "replaydesk_upstream_breaker_openings",
            "Times an upstream's circuit breaker opened (consecutive 5xx, timeouts or connection errors)",
            breaker_metrics.openings,
        );
        registry.register(
            "replaydesk_upstream_requests",
            "HTTP requests to upstream APIs by endpoint and outcome",
            metrics.requests.clone(),
        );
        registry.register(
            "replaydesk_upstream_retries",
            "Requests to upstream APIs that were retried",
            metrics.retries.clone(),
        );
        registry.register(
            "replaydesk_upstream_refused_destinations",
            "Outbound posts not sent because their destination host is not allowed \
             (slack.response_url_hosts)",
            metrics.refused_destinations.clone(),
        );
        registry.register(
            "replaydesk_upstream_rate_limited",
            "HTTP 429 answers received from upstream APIs",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "replaydesk_upstream_limiter_waits",
            "Requests that waited for our own rate limiter or a shared cool-down",
            metrics.limiter_waits.clone(),
        );
        registry.register(
            "replaydesk_upstream_limiter_wait_seconds",
            "Time spent waiting for our own rate limiter or a shared cool-down",
            metrics.limiter_wait_seconds.clone(),
        );
        registry.register(
            "replaydesk_cache_lookups",
            "Cache lookups by cache and result (hit, miss)",
            metrics.cache.clone(),
        );
        registry.register(
            "replaydesk_upstream_metered_calls",
            "Calls an upstream meters against a quota, by endpoint: for FullStory the calls that \
             cost an Activation (session_events, session_summary; List Sessions costs none) it \
             answered with anything but 429, retries included; cache hits cost none",
            metrics.metered.clone(),
        );
        registry.register(
            "replaydesk_upstream_metered_calls_24h",
            "Metered calls made by this process in the last 24 hours (15-minute buckets), an estimate \
             of the quota spent per day: sum over replicas",
            metrics.metered_24h.clone(),
        );
        registry.register(
            "replaydesk_platform_refusals",
            "Messages a platform refused (Slack invalid_blocks/msg_too_long/…, Discord 400 with its \
             code, Zendesk 422), by platform and code; each was followed by a plain fallback",
            metrics.refusals.clone(),
        );
        metrics
    }

    /// Counts one refusal of our message by `platform`.
    pub fn refused(&self, platform: &'static str, code: &'static str) {
        self.refusals
            .get_or_create(&RefusalLabels { platform, code })
            .inc();
    }

    /// Counts one metered call to `endpoint` of `upstream`.
    pub fn metered_call(&self, upstream: &'static str, endpoint: &'static str) {
        self.metered
            .get_or_create(&EndpointLabels { upstream, endpoint })
            .inc();
        let now = now_secs();
        let total = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            let window = windows.entry(upstream).or_default();
            window.record(now);
            window.total(now)
        };
        self.set_24h(upstream, total);
    }

    /// Brings the 24 h gauges up to date (old buckets fall out even when no call is made).
    pub fn refresh(&self) {
        let now = now_secs();
        let totals: Vec<(&'static str, u64)> = self
            .windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(upstream, window)| (*upstream, window.total(now)))
            .collect();
        for (upstream, total) in totals {
            self.set_24h(upstream, total);
        }
    }

    fn set_24h(&self, upstream: &'static str, total: u64) {
        self.metered_24h
            .get_or_create(&UpstreamLabels { upstream })
            .set(i64::try_from(total).unwrap_or(i64::MAX));
    }

    pub fn cache_hit(&self, cache: &'static str, hit: bool) {
        self.cache
            .get_or_create(&CacheLabels {
                cache,
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rolling_day_forgets_calls_older_than_24_hours() {
        let mut day = RollingDay::default();
        let start = 1_800_000_000;
        day.record(start);
        day.record(start + 10);
        day.record(start + 3600);
        assert_eq!(day.total(start + 3600), 3);
        assert_eq!(day.total(start + 23 * 3600), 3);
        // 24 h and a bucket later, the first two are gone; the third an hour after.
        assert_eq!(day.total(start + 24 * 3600 + BUCKET_SECONDS), 1);
        assert_eq!(day.total(start + 26 * 3600), 0);
        day.record(start + 26 * 3600);
        assert_eq!(day.total(start + 26 * 3600), 1);
    }
}
