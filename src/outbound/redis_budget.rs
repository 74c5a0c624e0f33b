//! One FullStory budget shared by every replica, kept in Redis (`limits.backend = "redis"`).
//!
//! FullStory's quota is per organisation, not per process: N replicas each running the in-process
//! limiter at the full quota would together send N times too much. Here every replica asks Redis
//! before each call, in one atomic Lua script:
//!
//! - **GCRA** (the algorithm `governor` uses locally): one key holds the theoretical arrival time, in
//!   microseconds of the Redis server's own clock (`TIME`), so replicas' clocks never matter. A call is
//!   allowed while it is at most `burst - 1` emission intervals early; otherwise the script answers how
//!   long to wait and counts nothing. N replicas together stay within `requests_per_second` plus
//!   `burst`.
//! - **The shared cool-down**: after a 429 the replica that got it sets a second key for `Retry-After`;
//!   the script answers "wait" to everybody until it expires, so no replica hammers on.
//! - Keys are `replaydesk:{fs:<hash>}:tat` and `…:cool`, where `<hash>` is a SHA-256 prefix of the API
//!   key: one budget per FullStory organisation, and the key itself never reaches Redis.
//!
//! When Redis cannot be reached (connection refused, no answer within 250 ms), the call is not held
//! hostage: with `limits.fail_closed = false` (the default) the replica falls back to its local governor
//! at `quota ÷ limits.expected_replicas` (rounded down, at least 1), so N replicas together still stay
//! under the quota, and warns once per outage; with `fail_closed = true` the call is refused and the job
//! retried later. A reconnect is tried at most once a second, so an outage does not cost every call a
//! connect timeout.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use sha2::Digest;
use tokio::time::Instant;

use super::budget::{Budget, BudgetRefused, LocalBudget};

/// Allowed now (0), or the microseconds to wait before asking again.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cool = redis.call('PTTL', KEYS[2])
if cool > 0 then return cool * 1000 end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return wait end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1000)
return 0
";

/// Extends the cool-down to `ARGV[1]` milliseconds from now; never shortens it.
const COOL_DOWN: &str = r"
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 0
";

/// How a [`RedisBudget`] is set up.
#[derive(Clone, Debug)]
pub struct RedisBudgetSettings {
    pub redis_url: String,
    /// Names the organisation's budget (hashed: it is the API key).
    pub org_secret: String,
    pub per_second: u32,
    pub burst: u32,
    pub expected_replicas: u32,
    pub fail_closed: bool,
    /// How long one Redis call may take before Redis counts as unreachable.
    pub timeout: Duration,
}

/// One lazily made, shared connection to Redis whose every call times out, reconnecting at most once a
/// second after a failure. Used by the shared budget and the shared circuit breakers.
pub struct RedisLink {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    next_connect: Mutex<Option<Instant>>,
    timeout: Duration,
}

impl RedisLink {
    /// Checks the URL; connects on first use (Redis may come up after us).
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("limits.redis_url: {e}"))?;
        Ok(Self {
            client,
            connection: tokio::sync::Mutex::new(None),
            next_connect: Mutex::new(None),
            timeout,
        })
    }

    /// Runs `script` on the shared connection, making one when there is none (at most once a second).
    pub async fn invoke(&self, script: &redis::ScriptInvocation<'_>) -> Result<i64, String> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            {
                let mut next = self.next_connect.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if next.is_some_and(|at| at > now) {
                    return Err("not connected (next attempt within a second)".into());
                }
                *next = Some(now + Duration::from_secs(1));
            }
            let connection = connect(&self.client, self.timeout)
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            *slot = Some(connection);
        }
        let Some(connection) = slot.as_mut() else {
            return Err("not connected".into());
        };
        let mut connection = connection.clone();
        drop(slot);
        let answer = tokio::time::timeout(self.timeout, script.invoke_async(&mut connection)).await;
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.disconnect().await;
                Err(e.to_string())
            }
            Err(_) => {
                self.disconnect().await;
                Err(format!("no answer within {:?}", self.timeout))
            }
        }
    }

    async fn disconnect(&self) {
        *self.connection.lock().await = None;
    }
}

pub struct RedisBudget {
    link: RedisLink,
    acquire: redis::Script,
    cool_down: redis::Script,
    tat_key: String,
    cool_key: String,
    interval_us: u64,
    tolerance_us: u64,
    fallback: LocalBudget,
    fail_closed: bool,
    degraded: AtomicBool,
}

impl RedisBudget {
    /// Checks the URL; connects on first use (Redis may come up after us).
    pub fn new(settings: &RedisBudgetSettings) -> anyhow::Result<Self> {
        let link = RedisLink::new(&settings.redis_url, settings.timeout)?;
        let per_second = u64::from(settings.per_second.max(1));
        let interval_us = 1_000_000 / per_second;
        let replicas = settings.expected_replicas.max(1);
        let org = org_tag(&settings.org_secret);
        Ok(Self {
            link,
            acquire: redis::Script::new(ACQUIRE),
            cool_down: redis::Script::new(COOL_DOWN),
            tat_key: format!("replaydesk:{{fs:{org}}}:tat"),
            cool_key: format!("replaydesk:{{fs:{org}}}:cool"),
            interval_us,
            tolerance_us: interval_us * u64::from(settings.burst.max(1) - 1),
            fallback: LocalBudget::new(
                (settings.per_second / replicas).max(1),
                (settings.burst / replicas).max(1),
            ),
            fail_closed: settings.fail_closed,
            degraded: AtomicBool::new(false),
        })
    }

    /// The Redis keys of this budget: `(theoretical arrival time, cool-down)`.
    pub fn keys(&self) -> (&str, &str) {
        (&self.tat_key, &self.cool_key)
    }

    fn reachable(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::warn!("the shared FullStory budget in Redis is reachable again");
        }
    }

    fn unreachable(&self, error: &str) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            if self.fail_closed {
                tracing::error!(
                    error,
                    "the shared FullStory budget in Redis is unreachable: FullStory calls wait \
                     (limits.fail_closed = true)"
                );
            } else {
                tracing::warn!(
                    error,
                    "the shared FullStory budget in Redis is unreachable: using this replica's \
                     share of the quota (quota ÷ limits.expected_replicas) until it is back"
                );
            }
        }
    }

    /// Whether the last attempt to reach Redis failed.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }
}

/// Names a FullStory organisation in Redis keys: a SHA-256 prefix of its API key (never the key).
pub fn org_tag(api_key: &str) -> String {
    hex::encode(&sha2::Sha256::digest(api_key.as_bytes())[..8])
}

/// One connection whose connect and every answer time out after `timeout`.
async fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// `PING`s the Redis at `url` (for `replaydesk check`).
pub async fn ping(url: &str, timeout: Duration) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut connection = connect(&client, timeout).await.map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[async_trait]
impl Budget for RedisBudget {
    async fn acquire(&self) -> Result<bool, BudgetRefused> {
        let mut waited = false;
        loop {
            let mut invocation = self.acquire.key(&self.tat_key);
            invocation
                .key(&self.cool_key)
                .arg(self.interval_us)
                .arg(self.tolerance_us);
            match self.link.invoke(&invocation).await {
                Ok(wait_us) if wait_us <= 0 => {
                    self.reachable();
                    return Ok(waited);
                }
                Ok(wait_us) => {
                    self.reachable();
                    waited = true;
                    // Jitter, so the replicas told to wait the same time do not all come back at once.
                    let jitter =
                        Duration::from_micros(fastrand::u64(0..=self.interval_us.min(20_000)));
                    let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0));
                    tokio::time::sleep(wait + jitter).await;
                }
                Err(error) => {
                    self.unreachable(&error);
                    if self.fail_closed {
                        return Err(BudgetRefused(
                            "the shared FullStory budget (limits.redis_url) is unreachable and \
                             limits.fail_closed = true"
                                .into(),
                        ));
                    }
                    return Ok(self.fallback.wait().await || waited);
                }
            }
        }
    }

    async fn cool_down(&self, wait: Duration) {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut invocation = self.cool_down.key(&self.cool_key);
        invocation.arg(ms);
        if let Err(error) = self.link.invoke(&invocation).await {
            // This replica's own cool-down still holds; the others learn of the 429 from theirs.
            self.unreachable(&error);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings() -> RedisBudgetSettings {
        RedisBudgetSettings {
            redis_url: "redis://127.0.0.1:1".into(),
            org_secret: "na1.secret-key".into(),
            per_second: 10,
            burst: 3,
            expected_replicas: 3,
            fail_closed: false,
            timeout: Duration::from_millis(250),
        }
    }

    #[test]
    fn the_keys_name_the_organisation_by_a_hash_never_the_api_key() {
        let budget = RedisBudget::new(&settings()).unwrap();
        let (tat, cool) = budget.keys();
        assert!(!tat.contains("secret"), "{tat}");
        assert!(
            tat.starts_with("replaydesk:{fs:") && tat.ends_with("}:tat"),
            "{tat}"
        );
        assert_eq!(cool, tat.replace(":tat", ":cool"));
        let other = RedisBudget::new(&RedisBudgetSettings {
            org_secret: "eu1.another".into(),
            ..settings()
        })
        .unwrap();
        assert_ne!(other.keys().0, tat, "one budget per organisation");
        assert_eq!(budget.interval_us, 100_000);
        assert_eq!(budget.tolerance_us, 200_000, "burst 3: two intervals early");
    }

    #[test]
    fn a_url_that_is_not_redis_names_the_key() {
        let error = RedisBudget::new(&RedisBudgetSettings {
            redis_url: "http://nope".into(),
            ..settings()
        })
        .err()
        .unwrap();
        assert!(error.to_string().starts_with("limits.redis_url"), "{error}");
    }

    #[tokio::test]
    async fn unreachable_redis_falls_back_or_refuses_as_configured() {
        let open = RedisBudget::new(&settings()).unwrap();
        assert!(open.acquire().await.is_ok(), "fail open: the local share");
        assert!(open.is_degraded());
        let closed = RedisBudget::new(&RedisBudgetSettings {
            fail_closed: true,
            ..settings()
        })
        .unwrap();
        let refused = closed.acquire().await.unwrap_err();
        assert!(refused.0.contains("limits.fail_closed"), "{refused}");
    }
}
