//! Every metric family replaydesk exposes, in one place, and the Prometheus registry served at
//! `GET /metrics`: the inbound families (here), the outbound ones ([`upstream`]: every upstream call,
//! retry, 429, limiter wait, breaker and cache lookup) and the queue's ([`queue`]). A leaf module (it
//! uses nothing of the crate), so `outbound`, `fullstory` and `queue` count into their families without
//! any of them importing another.
//!
//! [`Metrics::build`] registers every family into the one registry at start-up; the registry is then
//! frozen and shared. Labels are small, fixed sets (upstream, endpoint, outcome, state): never a
//! customer value, so cardinality stays bounded.
//!
//! Metered calls: FullStory counts session-data calls against a monthly allowance on many plans, so
//! an operator needs "how many did we spend today" without a PromQL `increase(…[24h])` over a counter
//! that restarts with each replica. [`UpstreamMetrics::metered_call`] counts each one
//! (`replaydesk_upstream_metered_calls_total{upstream,endpoint}`) and keeps a rolling 24 h window in
//! 15-minute buckets, exposed as `replaydesk_upstream_metered_calls_24h{upstream}` and brought up to
//! date at every scrape ([`Metrics::render`]). Which endpoints are metered is the upstream client's
//! knowledge ([`crate::outbound::Upstream::with_metered`]).

use std::sync::Arc;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

pub mod activations;
pub mod queue;
pub mod upstream;

pub use activations::ActivationMetrics;
pub use queue::QueueMetrics;
pub use upstream::{
    CacheLabels, EndpointLabels, RefusalLabels, RequestLabels, UpstreamLabels, UpstreamMetrics,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InboundLabels {
    pub platform: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignatureLabels {
    pub platform: &'static str,
    pub reason: &'static str,
}

/// Families describing requests platforms send us.
#[derive(Clone, Default)]
pub struct InboundMetrics {
    /// By platform and outcome; the outcomes are listed in the help text below.
    pub requests: Family<InboundLabels, Counter>,
    /// Signature failures by platform and reason (missing, stale, mismatch, …).
    pub signature_failures: Family<SignatureLabels, Counter>,
}

impl InboundMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "replaydesk_inbound_requests",
            "Requests from platforms by platform and outcome: accepted (stored), duplicate (stored \
             before), immediate (answered at once, nothing stored), ignored (not for us), \
             not_permitted (a user, channel or member without access, answered politely), \
             rate_limited (the workspace, guild or account is over limits.per_source_per_minute), \
             bad_signature (401), forbidden (403: workspace, guild, application or account not \
             allowed), malformed (400), unavailable (503: the store could not record it)",
            metrics.requests.clone(),
        );
        registry.register(
            "replaydesk_inbound_signature_failures",
            "Inbound requests refused for their signature (401), by platform and reason",
            metrics.signature_failures.clone(),
        );
        metrics
    }
}

/// The frozen registry and the families the rest of the service records into.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub upstream: UpstreamMetrics,
    pub inbound: InboundMetrics,
    pub queue: QueueMetrics,
    pub activations: ActivationMetrics,
}

impl Metrics {
    /// Builds the registry with every family.
    pub fn build() -> Self {
        // Every family carries its full `replaydesk_…` name, so parts register without a prefix.
        let mut registry = Registry::default();
        let upstream = UpstreamMetrics::register(&mut registry);
        let inbound = InboundMetrics::register(&mut registry);
        let queue = QueueMetrics::register(&mut registry);
        let activations = ActivationMetrics::register(&mut registry);
        Self {
            registry: Arc::new(registry),
            upstream,
            inbound,
            queue,
            activations,
        }
    }

    /// The OpenMetrics text exposition of every family (`GET /metrics` turns it into the Prometheus text
    /// format 0.0.4 when that is what the scraper asks for: see `server::exposition`).
    pub fn render(&self) -> String {
        self.upstream.refresh();
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metered_calls_are_counted_by_endpoint_and_over_the_day() {
        let metrics = Metrics::build();
        metrics
            .upstream
            .metered_call("fullstory", "session_summary");
        metrics.upstream.metered_call("fullstory", "session_events");
        let text = metrics.render();
        assert!(
            text.contains(r#"replaydesk_upstream_metered_calls_total{upstream="fullstory",endpoint="session_summary"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"replaydesk_upstream_metered_calls_24h{upstream="fullstory"} 2"#),
            "{text}"
        );
    }
}
