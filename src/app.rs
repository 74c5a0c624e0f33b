//! The core of the service, and the state its request handlers share.
//!
//! [`App`] is built once from the configuration: clock, metrics, store, FullStory client, cache,
//! auditor, tombstones, lookup. [`AppState`] is the core plus the job queue, what every route and job reaches.
//! Neither knows a platform: the composition root ([`crate::wiring`]) builds the core first, then plugs
//! the enabled platforms and the job handlers into it, so handlers need the core and the core needs
//! nothing of them.

use std::sync::Arc;

use anyhow::Context;

use crate::{
    activations::Activations,
    clock::Clock,
    config::Config,
    fullstory::{CachedSessions, FullStoryApi, MeteredSessions, Organisation, SessionsApi},
    lookup::{Lookup, LookupRequest},
    metrics::Metrics,
    outbound::{
        BreakerSettings, Budget, LocalBudget, RedisBudget, RedisBudgetSettings, RedisLink,
        Upstreams,
    },
    privacy::Auditor,
    privacy::Tombstones,
    queue::Queue,
    source_limits::SourceLimits,
    store::{self, SqlStore},
};

pub struct App {
    pub config: Config,
    pub clock: Clock,
    pub metrics: Metrics,
    /// What every upstream client shares: its metric families and the circuit breakers.
    pub upstreams: Upstreams,
    pub store: Arc<SqlStore>,
    pub fullstory: Arc<FullStoryApi>,
    /// The FullStory organisation of the key (configured or learned): previews are of its links only.
    pub organisation: Organisation,
    pub sessions: Arc<CachedSessions>,
    /// The FullStory Activation budget every metered call spends from (issue 24).
    pub activations: Activations,
    pub lookup: Arc<Lookup>,
    pub auditor: Auditor,
    /// Erased addresses remembered: the erasure job keeps them, every lookup asks them.
    pub tombstones: Tombstones,
    /// Per-source inbound limits, checked by every adapter after the tenant check.
    pub sources: SourceLimits,
}

impl App {
    /// Builds the core the configuration describes; opens the store and runs its migrations.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let metrics = Metrics::build();
        let store = store::open(&config.store.url).await.with_context(|| {
            format!(
                "could not open the store at store.url = {}",
                store::redact_url(&config.store.url)
            )
        })?;
        let upstreams = Upstreams::new(metrics.upstream.clone());
        upstreams.breakers.configure(breaker_settings(&config)?);
        let fs = &config.fullstory;
        let budget = fullstory_budget(&config)?;
        let fullstory = Arc::new(
            FullStoryApi::new(fs, budget, upstreams.clone())
                .context("could not build the FullStory client")?,
        );
        let activations = Activations::new(
            store.clone(),
            clock.clone(),
            fs,
            metrics.activations.clone(),
        );
        let metered = Arc::new(MeteredSessions::new(
            fullstory.clone() as Arc<dyn SessionsApi>,
            activations.clone(),
            store.clone(),
            clock.clone(),
            fs.session_cache_ttl.0,
        ));
        let sessions = Arc::new(CachedSessions::new(
            metered as Arc<dyn SessionsApi>,
            fs,
            metrics.upstream.clone(),
        ));
        let auditor = Auditor::new(
            store.clone(),
            &config.privacy.audit_key,
            config.audit_key_file().as_deref(),
        )
        .await
        .context("could not prepare the audit key")?;
        let tombstones = Tombstones::new(
            auditor.clone(),
            store.clone(),
            clock.clone(),
            config.privacy.tombstone_keep(),
        );
        let lookup = Arc::new(Lookup::new(
            sessions.clone() as Arc<dyn SessionsApi>,
            fs.summary_profile.clone(),
            clock.clone(),
            tombstones.clone(),
        ));
        Ok(Self {
            clock,
            metrics,
            upstreams,
            store,
            organisation: Organisation::new(config.fullstory.org_id.as_deref()),
            fullstory,
            sessions,
            activations,
            lookup,
            auditor,
            tombstones,
            sources: SourceLimits::new(&config.limits),
            config,
        })
    }

    /// A lookup request with the configured defaults.
    pub fn lookup_request(&self, identities: Vec<crate::identity::Identity>) -> LookupRequest {
        LookupRequest {
            identities,
            around: None,
            limit: self.config.fullstory.limit,
            lookback: self.config.lookback(),
            digest: self.config.fullstory.digest.automatic(),
            asked: crate::lookup::Asked::default(),
            what_went_wrong: self.config.fullstory.what_went_wrong,
            summary: false,
            max_identities: self.config.identity.max_per_request,
        }
    }
}

/// How the upstreams' circuit breakers behave: the probe interval, the longest `Retry-After`
/// honoured, and shared through Redis when the limits are.
fn breaker_settings(config: &Config) -> anyhow::Result<BreakerSettings> {
    let limits = &config.limits;
    let redis = match (&limits.backend, &limits.redis_url) {
        (crate::config::LimitsBackend::Redis, Some(url)) => Some(Arc::new(RedisLink::new(
            url,
            std::time::Duration::from_millis(250),
        )?)),
        _ => None,
    };
    Ok(BreakerSettings {
        probe_interval: limits.outage_probe_interval.0,
        max_retry_after: limits.max_retry_after.0,
        redis,
        org: crate::outbound::org_tag(config.fullstory.api_key.expose().unwrap_or("no-key")),
    })
}

/// The FullStory budget the configuration asks for: this process's own, or one shared through Redis.
fn fullstory_budget(config: &Config) -> anyhow::Result<Arc<dyn Budget>> {
    let fs = &config.fullstory;
    let limits = &config.limits;
    Ok(match (&limits.backend, &limits.redis_url) {
        (crate::config::LimitsBackend::Redis, Some(url)) => {
            Arc::new(RedisBudget::new(&RedisBudgetSettings {
                redis_url: url.clone(),
                org_secret: fs.api_key.expose().unwrap_or("no-key").to_owned(),
                per_second: fs.requests_per_second,
                burst: fs.burst,
                expected_replicas: limits.expected_replicas,
                fail_closed: limits.fail_closed,
                timeout: std::time::Duration::from_millis(250),
            })?)
        }
        _ => Arc::new(LocalBudget::new(fs.requests_per_second, fs.burst)),
    })
}

/// What routes, jobs and commands share: the core and the queue. Cheap to clone. Built by
/// [`crate::wiring::Service`].
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<App>,
    pub queue: Queue,
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}
