//! A cache in front of FullStory's session-data calls: every call saved is metered quota saved.
//!
//! - Single flight: concurrent requests for one key share one upstream call (moka's `try_get_with`), so
//!   50 agents opening the same ticket cost one call.
//! - A customer's session list lives `fullstory.cache_ttl` (60 s); "no sessions" only
//!   `fullstory.negative_cache_ttl` (15 s), because a customer who just started a session should appear
//!   soon. A session's events and summaries do not change once recorded: `fullstory.session_cache_ttl` (1 h).
//! - Errors are never cached. [`CachedSessions::invalidate`] drops what we hold on one identity (erasure).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use moka::{Expiry, future::Cache};

use super::{FullStoryError, SessionId, SessionList, SessionsApi, Summary, model::SessionEvent};
use crate::{
    activations::Purpose, config::FullStoryConfig, identity::Identity, metrics::UpstreamMetrics,
};

type ListKey = (Identity, u32);
type SummaryKey = (SessionId, String, Option<i64>);

/// Shorter life for empty lists.
struct ListExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<ListKey, Arc<SessionList>> for ListExpiry {
    fn expire_after_create(
        &self,
        _key: &ListKey,
        value: &Arc<SessionList>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(if value.sessions.is_empty() {
            self.negative_ttl
        } else {
            self.ttl
        })
    }
}

/// [`SessionsApi`] with caching and coalescing in front of another one.
pub struct CachedSessions {
    inner: Arc<dyn SessionsApi>,
    lists: Cache<ListKey, Arc<SessionList>>,
    events: Cache<SessionId, Arc<Vec<SessionEvent>>>,
    summaries: Cache<SummaryKey, Arc<Summary>>,
    metrics: UpstreamMetrics,
}

impl CachedSessions {
    pub fn new(
        inner: Arc<dyn SessionsApi>,
        config: &FullStoryConfig,
        metrics: UpstreamMetrics,
    ) -> Self {
        Self {
            inner,
            lists: Cache::builder()
                .max_capacity(config.cache_capacity)
                .expire_after(ListExpiry {
                    ttl: config.cache_ttl.0,
                    negative_ttl: config.negative_cache_ttl.0,
                })
                .support_invalidation_closures()
                .build(),
            events: Cache::builder()
                .max_capacity(config.cache_capacity)
                .time_to_live(config.session_cache_ttl.0)
                .build(),
            summaries: Cache::builder()
                .max_capacity(config.cache_capacity)
                .time_to_live(config.session_cache_ttl.0)
                .build(),
            metrics,
        }
    }

    /// Forgets every session list of `who` (their events and summaries expire with the sessions' ids
    /// no longer reachable; erasure also calls [`Self::forget_sessions`]).
    pub fn invalidate(&self, who: &Identity) {
        let who = who.clone();
        self.invalidate_where(move |key| *key == who);
    }

    /// Forgets every session list whose identity `matches` (an erasure announced by another replica
    /// names the customer only by a keyed hash).
    pub fn invalidate_where(&self, matches: impl Fn(&Identity) -> bool + Send + Sync + 'static) {
        // Only fails when closures are not supported, which the builder enables.
        let _ = self
            .lists
            .invalidate_entries_if(move |key, _| matches(&key.0));
    }

    /// Forgets every session's events and summaries.
    pub fn forget_all_sessions(&self) {
        self.events.invalidate_all();
        self.summaries.invalidate_all();
    }

    /// Forgets the events and summaries of these sessions.
    pub async fn forget_sessions(&self, ids: &[SessionId]) {
        for id in ids {
            self.events.invalidate(id).await;
        }
        let ids: Vec<SessionId> = ids.to_vec();
        let _ = self
            .summaries
            .invalidate_entries_if(move |key, _| ids.contains(&key.0));
    }

    /// Runs `load` on a miss, counting hits and misses (a caller that joined another's load is a hit:
    /// it cost no upstream call).
    async fn cached<K, V, F>(
        &self,
        cache: &Cache<K, Arc<V>>,
        name: &'static str,
        key: K,
        load: F,
    ) -> Result<Arc<V>, FullStoryError>
    where
        K: std::hash::Hash + Eq + Send + Sync + Clone + 'static,
        V: Send + Sync + 'static,
        F: std::future::Future<Output = Result<Arc<V>, FullStoryError>>,
    {
        let loaded = AtomicBool::new(false);
        let result = cache
            .try_get_with(key, async {
                loaded.store(true, Ordering::Relaxed);
                load.await
            })
            .await
            .map_err(|e| (*e).clone());
        self.metrics
            .cache_hit(name, !loaded.load(Ordering::Relaxed));
        result
    }
}

#[async_trait]
impl SessionsApi for CachedSessions {
    async fn list_sessions(
        &self,
        who: &Identity,
        limit: u32,
    ) -> Result<Arc<SessionList>, FullStoryError> {
        self.cached(
            &self.lists,
            "sessions",
            (who.clone(), limit),
            self.inner.list_sessions(who, limit),
        )
        .await
    }

    async fn session_events(
        &self,
        id: &SessionId,
        purpose: Purpose,
    ) -> Result<Arc<Vec<SessionEvent>>, FullStoryError> {
        self.cached(
            &self.events,
            "events",
            id.clone(),
            self.inner.session_events(id, purpose),
        )
        .await
    }

    async fn session_summary(
        &self,
        id: &SessionId,
        profile: &str,
        end: Option<DateTime<Utc>>,
        purpose: Purpose,
    ) -> Result<Arc<Summary>, FullStoryError> {
        let key = (id.clone(), profile.to_owned(), end.map(|t| t.timestamp()));
        self.cached(
            &self.summaries,
            "summaries",
            key,
            self.inner.session_summary(id, profile, end, purpose),
        )
        .await
    }
}
