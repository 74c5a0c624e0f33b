//! A circuit breaker per upstream (FullStory, Zendesk, Slack, Discord, Heap): when an upstream is down,
//! stop calling it, and find out when it is back with one probe at a time.
//!
//! Why: without it, every job that needs a down upstream spends its attempts on it (a 3-minute FullStory
//! outage used to make every job dead after ~6 attempts) and the upstream gets a storm of calls just as
//! it comes back. The rule, kept small on purpose:
//!
//! - **Opens** after [`OPEN_AFTER`] (3) consecutive failed attempts of this replica (HTTP 5xx, a timeout,
//!   a connection error), whatever the endpoint. Three: a call survives two passing errors with its own
//!   retries, and a job hears of an outage within 30 s of its first failure even when FullStory times
//!   out (two more attempts of `fullstory.timeout`, 10 s, and their backoff). Any other answer (2xx, a 4xx: the upstream is up, the
//!   request was ours to fix) resets the count; a 429 is neither (the cool-down handles it).
//! - **While open**, [`Breaker::admit`] refuses at once (no HTTP call, [`Admission::Refused`]), except
//!   for one probe per `limits.outage_probe_interval` (default 10 s) per replica: the first call after
//!   the interval is let through ([`Admission::Probe`]).
//! - **Closes** on any answer that is not a failure (the probe's, or one that was in flight). Closing is
//!   reported to the caller ([`Breaker::succeeded`] returns `true`), so the queue can run the jobs that
//!   were waiting on this upstream at once.
//! - **Also opens on a long `Retry-After`** ([`Breaker::rate_limited`]): an upstream asking to be left
//!   alone for longer than `limits.max_retry_after` (default 5 minutes) is not called for that long,
//!   then probed like a down one, instead of everything waiting as long as it said (one 429 with
//!   `Retry-After: 86400` used to make every lookup wait a day). The breaker remembers what the upstream
//!   asked for ([`Breaker::asked_wait`]), so the people waiting can be told the real expected wait. A
//!   probe answered with another long 429 keeps it open for another `max_retry_after`.
//!
//! Shared by the workers of a replica (one breaker per [`super::Upstream`], held in [`Breakers`]) and,
//! with `limits.backend = "redis"`, across replicas through two small keys per upstream:
//! `replaydesk:{fs:<org>}:breaker:<upstream>:open` (`<org>` names the deployment by its FullStory
//! organisation, as the shared budget does; set with a time to live while open, refreshed by each failed
//! probe, deleted on close) and `…:probe` (`SET NX PX <interval>`: the probe slot, so the replicas
//! together send at most one probe per interval). A replica reads the shared state at most once a
//! second, so it learns of an opening or a closing elsewhere within a second. If Redis is unreachable
//! the breaker keeps working on this replica's own observations (fail open to the local breaker).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use tokio::time::Instant;

use super::redis_budget::RedisLink;
use crate::metrics::upstream::{BreakerMetrics, UpstreamLabels};

/// Consecutive failed attempts that open a breaker.
pub const OPEN_AFTER: u32 = 3;
/// The default of `limits.outage_probe_interval` (set where the config is, so `config` stays below
/// `outbound`).
pub const DEFAULT_PROBE_INTERVAL: Duration = crate::config::DEFAULT_OUTAGE_PROBE_INTERVAL;
/// A job refused without a call waits this many probe intervals (or until the upstream is back, when
/// the queue runs it at once): the probing is left to the jobs whose own call failed, so a long
/// outage does not make every waiting job wake at every probe.
pub const PARK_INTERVALS: u32 = 6;
/// How often a replica reads the shared state in Redis.
const SHARED_REFRESH: Duration = Duration::from_secs(1);

/// Whether a call may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: call.
    Go,
    /// Open, and this call is the probe.
    Probe,
    /// Open: do not call; the next probe is due in `retry_in`.
    Refused { retry_in: Duration },
}

/// What [`Breaker::state`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
        }
    }
}

#[derive(Debug)]
struct Local {
    failures: u32,
    open: bool,
    next_probe: Instant,
    /// Until when the upstream asked not to be called, when a long `Retry-After` opened the breaker.
    asked_until: Option<Instant>,
    /// Our opening is recorded in Redis (so a missing key there means someone closed it).
    published: bool,
    shared_read: Option<Instant>,
}

/// The Redis side of a breaker (see the module docs).
struct Shared {
    link: Arc<RedisLink>,
    open_key: String,
    probe_key: String,
}

/// `PTTL` of the open key: > 0 while open.
const READ: &str = "return redis.call('PTTL', KEYS[1])";
/// Marks the upstream open for `ARGV[1]` ms.
const OPEN: &str = "redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) return 1";
/// Takes the probe slot for `ARGV[1]` ms: 1 if ours.
const PROBE: &str =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 else return 0 end";
/// Closes: deletes the open key.
const CLOSE: &str = "redis.call('DEL', KEYS[1]) return 1";

impl Shared {
    async fn run(&self, script: &str, key: &str, ms: Option<u64>) -> Result<i64, String> {
        let script = redis::Script::new(script);
        let mut invocation = script.key(key);
        if let Some(ms) = ms {
            invocation.arg(ms);
        }
        self.link.invoke(&invocation).await
    }
}

/// One upstream's breaker. See the module docs.
pub struct Breaker {
    upstream: &'static str,
    probe_interval: Duration,
    max_retry_after: Duration,
    local: Mutex<Local>,
    shared: Option<Shared>,
    state_gauge: Gauge,
    openings: Counter,
}

impl Breaker {
    fn new(upstream: &'static str, settings: &BreakerSettings, metrics: &BreakerMetrics) -> Self {
        let labels = UpstreamLabels { upstream };
        Self {
            upstream,
            probe_interval: settings.probe_interval,
            max_retry_after: settings.max_retry_after,
            local: Mutex::new(Local {
                failures: 0,
                open: false,
                next_probe: Instant::now(),
                asked_until: None,
                published: false,
                shared_read: None,
            }),
            shared: settings.redis.as_ref().map(|link| Shared {
                link: link.clone(),
                open_key: format!("replaydesk:{{fs:{}}}:breaker:{upstream}:open", settings.org),
                probe_key: format!(
                    "replaydesk:{{fs:{}}}:breaker:{upstream}:probe",
                    settings.org
                ),
            }),
            state_gauge: metrics.state.get_or_create(&labels).clone(),
            openings: metrics.openings.get_or_create(&labels).clone(),
        }
    }

    /// A breaker of its own (tests, tools): local only, no metrics registered.
    pub fn standalone(upstream: &'static str, probe_interval: Duration) -> Self {
        Self::new(
            upstream,
            &BreakerSettings {
                probe_interval,
                ..BreakerSettings::default()
            },
            &BreakerMetrics::default(),
        )
    }

    /// The longest one `Retry-After` is honoured (`limits.max_retry_after`): past it, this breaker
    /// opens instead ([`Breaker::rate_limited`]).
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// While a long `Retry-After` keeps this breaker open: how much of what the upstream asked for is
    /// left (the real expected wait, which may be longer than the next probe).
    pub fn asked_wait(&self) -> Option<Duration> {
        let local = self.local();
        let until = local.asked_until.filter(|_| local.open)?;
        Some(until.saturating_duration_since(Instant::now())).filter(|left| !left.is_zero())
    }

    pub fn upstream(&self) -> &'static str {
        self.upstream
    }

    pub fn probe_interval(&self) -> Duration {
        self.probe_interval
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        if self.local().open {
            BreakerState::Open
        } else {
            BreakerState::Closed
        }
    }

    /// While open: the time until the next probe is due (zero when it is due now).
    pub fn retry_in(&self) -> Option<Duration> {
        let local = self.local();
        local
            .open
            .then(|| local.next_probe.saturating_duration_since(Instant::now()))
    }

    /// How long a job that needed this upstream and could not have it should wait before trying again:
    /// until the next probe when its own call failed (`called`: it will be a probe candidate again),
    /// [`PARK_INTERVALS`] intervals when it was refused without a call, one interval when the breaker
    /// is not (or no longer) open. The queue runs waiting jobs sooner when the breaker closes.
    pub fn wait_hint(&self, called: bool) -> Duration {
        match self.retry_in() {
            Some(retry_in) if called => retry_in.max(Duration::from_millis(100)),
            Some(retry_in) => retry_in.max(self.probe_interval * PARK_INTERVALS),
            None => self.probe_interval,
        }
    }

    /// The state, after reading the shared one from Redis (when shared): what another replica opened
    /// shows here. Takes no probe slot (for `replaydesk check`).
    pub async fn refresh(&self) -> BreakerState {
        self.read_shared().await;
        self.state()
    }

    /// May a call go out now? See the module docs.
    pub async fn admit(&self) -> Admission {
        self.read_shared().await;
        let now = Instant::now();
        {
            let mut local = self.local();
            if !local.open {
                return Admission::Go;
            }
            if now < local.next_probe {
                return Admission::Refused {
                    retry_in: local.next_probe - now,
                };
            }
            local.next_probe = now + self.probe_interval;
        }
        if let Some(shared) = &self.shared {
            let ms = millis(self.probe_interval);
            if let Ok(0) = shared.run(PROBE, &shared.probe_key, Some(ms)).await {
                // Another replica has this interval's probe.
                return Admission::Refused {
                    retry_in: self.probe_interval,
                };
            }
        }
        tracing::info!(upstream = self.upstream, "circuit open: sending one probe");
        Admission::Probe
    }

    /// An answer that is not a failure. Returns `true` when it closed the breaker.
    pub async fn succeeded(&self) -> bool {
        let closed = {
            let mut local = self.local();
            local.failures = 0;
            let was_open = local.open;
            local.open = false;
            local.published = false;
            local.asked_until = None;
            was_open
        };
        if closed {
            self.state_gauge.set(0);
            tracing::warn!(
                upstream = self.upstream,
                "circuit closed: the upstream answers again"
            );
            if let Some(shared) = &self.shared
                && let Err(error) = shared.run(CLOSE, &shared.open_key, None).await
            {
                tracing::warn!(
                    upstream = self.upstream,
                    error,
                    "could not close the shared circuit in Redis"
                );
            }
        }
        closed
    }

    /// A 429 asking for `asked`, longer than [`Breaker::max_retry_after`]: the breaker opens (or stays
    /// open) and lets no call through, not even a probe, for `max_retry_after`; then it probes as for
    /// an outage. Remembers `asked` for [`Breaker::asked_wait`]. Other replicas (with Redis) see it open
    /// and find the probe slot taken for as long.
    pub async fn rate_limited(&self, asked: Duration) {
        let now = Instant::now();
        let hold = self.max_retry_after;
        let opened = {
            let mut local = self.local();
            let opened = !local.open;
            local.open = true;
            local.next_probe = local.next_probe.max(now + hold);
            let asked_until = now + asked.min(super::cooldown::LONGEST);
            local.asked_until = Some(
                local
                    .asked_until
                    .map_or(asked_until, |u| u.max(asked_until)),
            );
            opened
        };
        if opened {
            self.state_gauge.set(1);
            self.openings.inc();
        }
        tracing::warn!(
            upstream = self.upstream,
            asked_s = asked.as_secs(),
            hold_s = hold.as_secs(),
            "asked to wait longer than limits.max_retry_after: circuit open; probing after that"
        );
        if let Some(shared) = &self.shared {
            let ms = millis(hold);
            // The probe slot is held for the whole wait, so no replica probes before it ends.
            if shared
                .run(PROBE, &shared.probe_key, Some(ms))
                .await
                .is_err()
            {
                tracing::warn!(
                    upstream = self.upstream,
                    "could not hold the shared probe slot in Redis"
                );
            }
            let ttl = ms
                .max(millis(self.probe_interval * PARK_INTERVALS))
                .max(60_000);
            let published = shared.run(OPEN, &shared.open_key, Some(ttl)).await.is_ok();
            self.local().published = published;
        }
    }

    /// A failed attempt (5xx, timeout, connection error).
    pub async fn failed(&self) {
        let (opened, publish) = {
            let mut local = self.local();
            local.failures = local.failures.saturating_add(1);
            if !local.open && local.failures >= OPEN_AFTER {
                local.open = true;
                local.next_probe = Instant::now() + self.probe_interval;
                (true, true)
            } else {
                // A failed probe keeps it open: tell the other replicas it still is.
                (false, local.open)
            }
        };
        if opened {
            self.state_gauge.set(1);
            self.openings.inc();
            tracing::warn!(
                upstream = self.upstream,
                failures = OPEN_AFTER,
                probe_every_ms = millis(self.probe_interval),
                "circuit open: calls fail fast, one probe per interval"
            );
        }
        if publish {
            self.publish_open().await;
        }
    }

    async fn publish_open(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        // Lives well past a probe interval, so it outlasts a replica that died while it was open.
        let ttl = millis(self.probe_interval * PARK_INTERVALS).max(60_000);
        let published = shared.run(OPEN, &shared.open_key, Some(ttl)).await.is_ok();
        self.local().published = published;
    }

    /// At most once a second: adopt an opening or a closing another replica recorded in Redis.
    async fn read_shared(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let now = Instant::now();
        {
            let mut local = self.local();
            if local
                .shared_read
                .is_some_and(|at| now.duration_since(at) < SHARED_REFRESH)
            {
                return;
            }
            local.shared_read = Some(now);
        }
        let Ok(ttl) = shared.run(READ, &shared.open_key, None).await else {
            return; // Redis unreachable: this replica's own view stands.
        };
        let shared_open = ttl > 0;
        let mut local = self.local();
        if shared_open && !local.open {
            local.open = true;
            local.published = true;
            local.next_probe = now + self.probe_interval;
            drop(local);
            self.state_gauge.set(1);
            tracing::warn!(
                upstream = self.upstream,
                "circuit open (another replica opened it)"
            );
        } else if !shared_open && local.open && local.published {
            local.open = false;
            local.failures = 0;
            local.published = false;
            drop(local);
            self.state_gauge.set(0);
            tracing::warn!(
                upstream = self.upstream,
                "circuit closed (another replica's probe succeeded)"
            );
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// How breakers are built: `limits.outage_probe_interval`, `limits.max_retry_after`, and Redis when
/// `limits.backend = "redis"`.
#[derive(Clone)]
pub struct BreakerSettings {
    pub probe_interval: Duration,
    /// The longest one `Retry-After` is honoured; past it the breaker opens ([`Breaker::rate_limited`]).
    pub max_retry_after: Duration,
    pub redis: Option<Arc<RedisLink>>,
    /// Names this deployment in the shared keys: [`super::org_tag`] of the FullStory API key.
    pub org: String,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            probe_interval: DEFAULT_PROBE_INTERVAL,
            max_retry_after: crate::config::DEFAULT_MAX_RETRY_AFTER,
            redis: None,
            org: "default".into(),
        }
    }
}

/// Every breaker of this process, one per upstream name: whoever builds an [`super::Upstream`] of that
/// name gets the same breaker. Cheap to clone.
#[derive(Clone, Default)]
pub struct Breakers {
    inner: Arc<BreakersInner>,
}

#[derive(Default)]
struct BreakersInner {
    settings: Mutex<BreakerSettings>,
    metrics: BreakerMetrics,
    by_upstream: Mutex<HashMap<&'static str, Arc<Breaker>>>,
}

impl Breakers {
    pub fn with_metrics(metrics: BreakerMetrics) -> Self {
        Self {
            inner: Arc::new(BreakersInner {
                metrics,
                ..BreakersInner::default()
            }),
        }
    }

    /// Sets how breakers made from now on behave (done once at start-up, before any upstream is built).
    pub fn configure(&self, settings: BreakerSettings) {
        *self
            .inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = settings;
    }

    /// The breaker of `upstream`, made on first use.
    pub fn get(&self, upstream: &'static str) -> Arc<Breaker> {
        let settings = self
            .inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.inner
            .by_upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(upstream)
            .or_insert_with(|| Arc::new(Breaker::new(upstream, &settings, &self.inner.metrics)))
            .clone()
    }

    /// Every breaker made so far, by upstream name.
    pub fn all(&self) -> Vec<Arc<Breaker>> {
        let mut all: Vec<_> = self
            .inner
            .by_upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|b| b.upstream());
        all
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_opens_after_consecutive_failures_and_lets_one_probe_through_per_interval() {
        let breaker = Breaker::standalone("fullstory", Duration::from_secs(10));
        for _ in 0..OPEN_AFTER - 1 {
            breaker.failed().await;
        }
        assert_eq!(breaker.admit().await, Admission::Go, "not yet");
        breaker.succeeded().await;
        for _ in 0..OPEN_AFTER - 1 {
            breaker.failed().await;
        }
        assert_eq!(
            breaker.admit().await,
            Admission::Go,
            "a success reset the count"
        );
        breaker.failed().await;
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(matches!(
            breaker.admit().await,
            Admission::Refused { retry_in } if retry_in == Duration::from_secs(10)
        ));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breaker.admit().await, Admission::Probe);
        assert!(
            matches!(breaker.admit().await, Admission::Refused { .. }),
            "one probe per interval"
        );
        breaker.failed().await;
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "a failed probe keeps it open"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breaker.admit().await, Admission::Probe);
        assert!(breaker.succeeded().await, "the probe's success closes it");
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.admit().await, Admission::Go);
        assert!(!breaker.succeeded().await, "closing is reported once");
    }

    #[tokio::test(start_paused = true)]
    async fn refused_jobs_park_longer_than_the_ones_that_probe() {
        let breaker = Breaker::standalone("zendesk", Duration::from_secs(10));
        assert_eq!(breaker.wait_hint(true), Duration::from_secs(10));
        for _ in 0..OPEN_AFTER {
            breaker.failed().await;
        }
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(breaker.wait_hint(true), Duration::from_secs(6));
        assert_eq!(breaker.wait_hint(false), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_retry_after_opens_it_for_the_cap_then_it_probes_and_remembers_what_was_asked() {
        let breaker = Breaker::new(
            "fullstory",
            &BreakerSettings {
                probe_interval: Duration::from_secs(10),
                max_retry_after: Duration::from_secs(300),
                ..BreakerSettings::default()
            },
            &BreakerMetrics::default(),
        );
        assert_eq!(breaker.asked_wait(), None);
        breaker.rate_limited(Duration::from_secs(86_400)).await;
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.asked_wait(), Some(Duration::from_secs(86_400)));
        assert!(matches!(
            breaker.admit().await,
            Admission::Refused { retry_in } if retry_in == Duration::from_secs(300)
        ));
        assert_eq!(breaker.wait_hint(true), Duration::from_secs(300));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(matches!(breaker.admit().await, Admission::Refused { .. }));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            breaker.admit().await,
            Admission::Probe,
            "after the cap, a probe"
        );
        // The probe is told to wait a day again: no call for another cap.
        breaker.rate_limited(Duration::from_secs(86_400)).await;
        assert!(matches!(
            breaker.admit().await,
            Admission::Refused { retry_in } if retry_in == Duration::from_secs(300)
        ));
        assert_eq!(breaker.asked_wait(), Some(Duration::from_secs(86_400)));
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(breaker.admit().await, Admission::Probe);
        assert!(breaker.succeeded().await, "the probe's answer closes it");
        assert_eq!(breaker.asked_wait(), None, "and forgets what was asked");
        assert_eq!(breaker.admit().await, Admission::Go);
    }

    #[test]
    fn the_registry_gives_one_breaker_per_upstream() {
        let breakers = Breakers::default();
        let a = breakers.get("slack");
        let b = breakers.get("slack");
        assert!(Arc::ptr_eq(&a, &b));
        breakers.get("discord");
        let names: Vec<_> = breakers.all().iter().map(|b| b.upstream()).collect();
        assert_eq!(names, ["discord", "slack"]);
    }
}
