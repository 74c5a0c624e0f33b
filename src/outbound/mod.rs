//! The one way replaydesk calls an upstream API: the rate budget, a cool-down shared by every caller of
//! that upstream, and one retry policy.
//!
//! - HTTP 429: wait `Retry-After` (seconds or an HTTP date; for an upstream that also says it in the body,
//!   like Discord's `{"retry_after": 1.5}`, read from the body when the header is missing:
//!   [`Upstream::with_retry_after_body`]). The wait is set on a [`CoolDown`] that every
//!   caller of the upstream awaits before its next request, so after one 429 nobody else hammers on while
//!   one task sleeps. A `Retry-After` longer than [`RetryPolicy::max_retry_after`] is not slept through in
//!   place: the call fails as rate-limited and the job queue reschedules the work.
//! - 5xx, timeouts, connection errors: exponential backoff with full jitter, capped attempts; each one
//!   counts towards opening the upstream's circuit [`Breaker`]. While it is open, a call fails at once
//!   with [`SendError::CircuitOpen`] (nothing is sent), except one probe per
//!   `limits.outage_probe_interval`; the job queue then makes the job wait for the upstream
//!   ([`outage`]) instead of spending an attempt.
//! - Any other status is returned to the caller, who turns 4xx into its own typed errors (no retry).
//!
//! Adapters (Slack, Zendesk, Discord, Heap) and FullStory all use [`Upstream::send`]; none retries on its own.
//!
//! Observability: every call runs in an `upstream` span naming the upstream, the endpoint and the
//! request id of the question being answered ([`crate::telemetry::request_id`]), and logs one
//! `upstream call` line per attempt (debug: status, elapsed). Calls the upstream meters against a quota
//! ([`Upstream::with_metered`]) are counted for the daily estimate in [`crate::metrics`].

mod breaker;
mod budget;
mod cooldown;
pub mod outage;
mod redis_budget;

use std::time::{Duration, SystemTime};

use reqwest::{Response, StatusCode, header::HeaderMap};
use tokio::time::Instant;
use tracing::Instrument;

pub use breaker::{
    Admission, Breaker, BreakerMetrics, BreakerSettings, BreakerState, Breakers,
    DEFAULT_PROBE_INTERVAL, OPEN_AFTER, PARK_INTERVALS,
};
pub use budget::{Budget, BudgetRefused, LocalBudget};
pub use cooldown::CoolDown;
pub use redis_budget::{RedisBudget, RedisBudgetSettings, RedisLink, org_tag, ping as ping_redis};

/// The names of every upstream replaydesk calls (each has a circuit breaker).
pub const UPSTREAMS: &[&str] = &[
    "fullstory",
    "zendesk",
    "slack",
    "slack_response_url",
    "discord",
    "heap",
];

/// The HTTP client every upstream uses: rustls (ring), a request timeout, our user agent.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("replaydesk/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
}

use crate::metrics::{EndpointLabels, RequestLabels, UpstreamLabels, UpstreamMetrics};

/// Attempts and backoff for one upstream.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    /// First backoff step; doubles each attempt.
    pub base: Duration,
    /// Longest single backoff step.
    pub cap: Duration,
    /// Longest `Retry-After` slept through in place; longer ones fail the call as rate-limited.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): `base · 2^(attempt-1)`, capped, with jitter
    /// drawn from the upper half so waits never collapse to zero.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)));
        let ceiling = exp.min(self.cap);
        let half = ceiling / 2;
        half + ceiling.saturating_sub(half).mul_f64(fastrand::f64())
    }
}

/// Why a call failed after the retry policy gave up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("rate limited (429); retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    #[error("server error {status}")]
    Server { status: StatusCode, body: String },
    #[error("timed out")]
    Timeout,
    #[error("could not connect: {0}")]
    Transport(String),
    /// The upstream's circuit breaker is open: nothing was sent.
    #[error("{upstream} is unavailable (circuit open; next probe in {}s): not called", retry_in.as_secs())]
    CircuitOpen {
        upstream: &'static str,
        retry_in: Duration,
    },
}

impl SendError {
    /// Whether this says the upstream is down (as opposed to busy: a 429).
    pub fn is_outage(&self) -> bool {
        !matches!(self, SendError::RateLimited { .. })
    }
}

/// Reads `Retry-After` as seconds (`"3"`, `"1.5"`) or as an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(when.timestamp()).ok()?);
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// One upstream API: its name (for metrics and logs), budget, cool-down and retry policy.
pub struct Upstream {
    name: &'static str,
    policy: RetryPolicy,
    cooldown: CoolDown,
    budget: Option<std::sync::Arc<dyn Budget>>,
    breaker: std::sync::Arc<Breaker>,
    metrics: UpstreamMetrics,
    retry_after_body: Option<RetryAfterBody>,
    metered: &'static [&'static str],
}

/// Reads a 429's wait from its body (for upstreams that may leave out `Retry-After`).
pub type RetryAfterBody = fn(&[u8]) -> Option<Duration>;

impl Upstream {
    pub fn new(
        name: &'static str,
        policy: RetryPolicy,
        budget: Option<std::sync::Arc<dyn Budget>>,
        metrics: UpstreamMetrics,
    ) -> Self {
        Self {
            name,
            policy,
            cooldown: CoolDown::default(),
            budget,
            breaker: metrics.breakers.get(name),
            metrics,
            retry_after_body: None,
            metered: &[],
        }
    }

    /// Names the endpoints this upstream meters against a quota: each of their attempts it answers
    /// (anything but a 429) is counted in `replaydesk_upstream_metered_calls`.
    #[must_use]
    pub fn with_metered(mut self, endpoints: &'static [&'static str]) -> Self {
        self.metered = endpoints;
        self
    }

    /// Also reads a 429's wait from its body when it has no `Retry-After` header.
    #[must_use]
    pub fn with_retry_after_body(mut self, read: RetryAfterBody) -> Self {
        self.retry_after_body = Some(read);
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn cooldown(&self) -> &CoolDown {
        &self.cooldown
    }

    /// This upstream's circuit breaker (shared with every other `Upstream` of the same name built from
    /// the same metrics).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    fn count(&self, endpoint: &'static str, outcome: &'static str) {
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                upstream: self.name,
                endpoint,
                outcome,
            })
            .inc();
    }

    async fn wait_turn(&self) -> Result<(), SendError> {
        let started = Instant::now();
        let mut waited = self.cooldown.wait().await;
        if let Some(budget) = &self.budget {
            waited |= budget
                .acquire()
                .await
                .map_err(|refused| SendError::Transport(refused.0))?;
        }
        if waited {
            let labels = UpstreamLabels {
                upstream: self.name,
            };
            self.metrics.limiter_waits.get_or_create(&labels).inc();
            self.metrics
                .limiter_wait_seconds
                .get_or_create(&labels)
                .inc_by(started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Sends `request` (a fresh copy for each attempt) under the budget, cool-down and retry policy.
    /// Returns the first response that is neither 429 nor 5xx.
    pub async fn send(
        &self,
        endpoint: &'static str,
        http: &reqwest::Client,
        request: reqwest::Request,
    ) -> Result<Response, SendError> {
        self.send_with(endpoint, http, request, true).await
    }

    /// [`send`](Self::send) for a request that must not be repeated blindly (posting a note or a
    /// message): a 429 is still waited out and sent again (the platform did not process it), but a 5xx,
    /// a timeout or a broken connection is returned at once, because the platform may have acted on
    /// it. The caller's effect ledger then looks for its marker before trying again.
    pub async fn send_unrepeatable(
        &self,
        endpoint: &'static str,
        http: &reqwest::Client,
        request: reqwest::Request,
    ) -> Result<Response, SendError> {
        self.send_with(endpoint, http, request, false).await
    }

    async fn send_with(
        &self,
        endpoint: &'static str,
        http: &reqwest::Client,
        request: reqwest::Request,
        retry_failures: bool,
    ) -> Result<Response, SendError> {
        let request_id = crate::telemetry::request_id();
        let span = tracing::info_span!(
            "upstream",
            upstream = self.name,
            endpoint,
            request_id = request_id.as_deref().unwrap_or("-")
        );
        let result = self
            .attempts(endpoint, http, request, retry_failures)
            .instrument(span)
            .await;
        if let Err(error) = &result
            && error.is_outage()
        {
            let called = !matches!(error, SendError::CircuitOpen { .. });
            outage::note_outage(self.name, self.breaker.wait_hint(called));
        }
        result
    }

    async fn attempts(
        &self,
        endpoint: &'static str,
        http: &reqwest::Client,
        request: reqwest::Request,
        retry_failures: bool,
    ) -> Result<Response, SendError> {
        let mut attempt = 0;
        // The last real failure: returned instead of "circuit open" when the breaker opens mid-way.
        let mut failure: Option<SendError> = None;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.metrics
                    .retries
                    .get_or_create(&EndpointLabels {
                        upstream: self.name,
                        endpoint,
                    })
                    .inc();
            }
            let last = attempt >= self.policy.max_attempts;
            let probing = match self.breaker.admit().await {
                Admission::Refused { retry_in } => {
                    self.count(endpoint, "circuit_open");
                    return Err(failure.unwrap_or(SendError::CircuitOpen {
                        upstream: self.name,
                        retry_in,
                    }));
                }
                Admission::Probe => true,
                Admission::Go => false,
            };
            if let Err(refused) = self.wait_turn().await {
                self.count(endpoint, "budget_refused");
                // Nothing was sent, so even a request that must not be repeated may go again.
                if last {
                    return Err(refused);
                }
                self.back_off(endpoint, attempt, &refused).await;
                continue;
            }
            // Our bodies are always in memory, so a copy can always be made.
            let copy = request.try_clone().ok_or_else(|| {
                SendError::Transport("the request body cannot be sent again".into())
            })?;
            let sent = Instant::now();
            let result = http.execute(copy).await;
            let elapsed_ms = sent.elapsed().as_secs_f64() * 1e3;
            match &result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    tracing::debug!(attempt, status, elapsed_ms, "upstream call");
                    if status != 429 && self.metered.contains(&endpoint) {
                        self.metrics.metered_call(self.name, endpoint);
                    }
                }
                Err(error) => {
                    let error = without_url(error);
                    tracing::debug!(attempt, elapsed_ms, error, "upstream call");
                }
            }
            let error = match result {
                Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    self.count(endpoint, "rate_limited");
                    self.metrics
                        .rate_limited
                        .get_or_create(&UpstreamLabels {
                            upstream: self.name,
                        })
                        .inc();
                    let mut wait = retry_after(response.headers(), SystemTime::now());
                    if let (None, Some(read)) = (wait, self.retry_after_body) {
                        wait = read(&response.bytes().await.unwrap_or_default());
                    }
                    let wait = wait.unwrap_or_else(|| self.policy.backoff(attempt));
                    self.cooldown.extend(wait);
                    if let Some(budget) = &self.budget {
                        budget.cool_down(wait).await;
                    }
                    tracing::warn!(
                        upstream = self.name,
                        endpoint,
                        retry_after_ms = wait.as_millis() as u64,
                        "rate limited"
                    );
                    if last || wait > self.policy.max_retry_after {
                        return Err(SendError::RateLimited { retry_after: wait });
                    }
                    continue;
                }
                Ok(response) if response.status().is_server_error() => {
                    self.count(endpoint, "server_error");
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    SendError::Server {
                        status,
                        body: body.chars().take(300).collect(),
                    }
                }
                Ok(response) => {
                    self.count(
                        endpoint,
                        if response.status().is_success() {
                            "ok"
                        } else {
                            "client_error"
                        },
                    );
                    if self.breaker.succeeded().await {
                        outage::note_recovered(self.name);
                    }
                    return Ok(response);
                }
                Err(e) if e.is_timeout() => {
                    self.count(endpoint, "timeout");
                    SendError::Timeout
                }
                Err(e) => {
                    self.count(endpoint, "transport_error");
                    SendError::Transport(without_url(&e))
                }
            };
            self.breaker.failed().await;
            // A probe is one call: a failed one is not retried in place (the next is an interval away).
            if last || !retry_failures || probing {
                return Err(error);
            }
            self.back_off(endpoint, attempt, &error).await;
            failure = Some(error);
        }
    }

    /// The wait after failed attempt `attempt`, before the next.
    async fn back_off(&self, endpoint: &'static str, attempt: u32, error: &SendError) {
        let wait = self.policy.backoff(attempt);
        tracing::info!(upstream = self.name, endpoint, attempt, backoff_ms = wait.as_millis() as u64, error = %error, "retrying");
        tokio::time::sleep(wait).await;
    }
}

/// A transport error's text without its URL (which may carry a customer email in the query).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "bad response body"
    } else {
        "request failed"
    }
    .to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(
            retry_after(&headers, SystemTime::now()),
            Some(Duration::from_secs(3))
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(10)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..100 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let capped = policy.backoff(30);
            assert!(capped >= Duration::from_millis(500) && capped <= Duration::from_millis(1000));
        }
    }
}
