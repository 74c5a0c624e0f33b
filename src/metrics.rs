//! The Prometheus registry served at `GET /metrics`, and the metric families of the outbound side
//! (every upstream call, retry, 429, limiter wait and cache lookup).
//!
//! Each part registers its own families into the one registry at start-up (the queue does so in
//! `queue::QueueMetrics::register`); the registry is then frozen and shared. Labels are small, fixed
//! sets (upstream, endpoint, outcome): never a customer value, so cardinality stays bounded.

use std::sync::Arc;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family},
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
pub struct CacheLabels {
    pub cache: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InboundLabels {
    pub platform: &'static str,
    pub outcome: &'static str,
}

/// Families describing requests platforms send us.
#[derive(Clone, Default)]
pub struct InboundMetrics {
    /// By platform and outcome: accepted, duplicate, immediate, bad_signature, forbidden, malformed, …
    pub requests: Family<InboundLabels, Counter>,
}

impl InboundMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "replaydesk_inbound_requests",
            "Requests from platforms by platform and outcome (bad_signature counts signature failures)",
            metrics.requests.clone(),
        );
        metrics
    }
}

/// Families describing calls to upstream APIs (FullStory, Slack, Zendesk, Discord, Heap).
#[derive(Clone, Default)]
pub struct UpstreamMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub retries: Family<EndpointLabels, Counter>,
    pub rate_limited: Family<UpstreamLabels, Counter>,
    pub limiter_waits: Family<UpstreamLabels, Counter>,
    pub limiter_wait_seconds: Family<UpstreamLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    pub cache: Family<CacheLabels, Counter>,
}

impl UpstreamMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
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
        metrics
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

/// The frozen registry and the families the rest of the service records into.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub upstream: UpstreamMetrics,
    pub inbound: InboundMetrics,
}

impl Metrics {
    /// Builds the registry: `extra` lets other parts (the queue, the adapters) register their families.
    pub fn build(extra: impl FnOnce(&mut Registry)) -> Self {
        // Every family carries its full `replaydesk_…` name, so parts can register without a prefix.
        let mut registry = Registry::default();
        let upstream = UpstreamMetrics::register(&mut registry);
        let inbound = InboundMetrics::register(&mut registry);
        extra(&mut registry);
        Self {
            registry: Arc::new(registry),
            upstream,
            inbound,
        }
    }

    /// A registry with only the outbound families, for commands and tests that serve no metrics.
    pub fn detached() -> Self {
        Self::build(|_| {})
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
