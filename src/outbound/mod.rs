//! The one way replaydesk calls an upstream API: the rate budget, a cool-down shared by every caller of
//! that upstream, and one retry policy.
//!
//! - HTTP 429: wait `Retry-After` (seconds or an HTTP date; for an upstream that also says it in the body,
//!   like Discord's `{"retry_after": 1.5}`, read from the body when the header is missing:
//!   [`Upstream::with_retry_after_body`]). The wait is set on the [`CoolDown`] of the host that answered
//!   (`host:port` of the request URL), which every caller of the upstream awaits before its next request
//!   to that host, so after one 429 nobody else hammers on while one task sleeps, and a 429 from one host
//!   (one Slack `response_url`) holds up no other. A `Retry-After` (or what is left of a host's
//!   cool-down) longer than [`RetryPolicy::max_retry_after`] is not slept through in place: the call
//!   fails as rate-limited at once and the job queue reschedules the work, so no worker is parked.
//!   One answer cannot freeze replaydesk: a `Retry-After` longer than `limits.max_retry_after`
//!   ([`Breaker::max_retry_after`], default 5 minutes) is honoured only that long, and the upstream's
//!   circuit breaker opens ([`Breaker::rate_limited`]): after that, it is probed one call at a time,
//!   as when it is down, and the jobs needing it wait for it without spending attempts.
//!   Reading the value never panics: negative, `NaN`, infinite or unreadable values count as absent
//!   (our own backoff applies), huge ones and far-future dates are cut to [`cooldown::LONGEST`]
//!   ([`retry_after`], [`retry_after_seconds`]).
//! - 5xx, timeouts, connection errors: exponential backoff with full jitter, capped attempts; each one
//!   counts towards opening the upstream's circuit [`Breaker`]. While it is open, a call fails at once
//!   with [`SendError::CircuitOpen`] (nothing is sent), except one probe per
//!   `limits.outage_probe_interval`; the job queue then makes the job wait for the upstream
//!   ([`outage`]) instead of spending an attempt.
//! - Any other status is returned to the caller, who turns 4xx into its own typed errors (no retry).
//!
//! Adapters (Slack, Zendesk, Intercom, Discord, Heap) and FullStory all use [`Upstream::send`]; none retries on its own.
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
    Admission, Breaker, BreakerSettings, BreakerState, Breakers, DEFAULT_PROBE_INTERVAL,
    OPEN_AFTER, PARK_INTERVALS,
};
pub use budget::{Budget, BudgetRefused, LocalBudget};
pub use cooldown::{CoolDown, LONGEST as LONGEST_COOL_DOWN};
pub use redis_budget::{RedisBudget, RedisBudgetSettings, RedisLink, org_tag, ping as ping_redis};

/// The upstreams of the core (each has a circuit breaker); each platform names its own
/// (`crate::adapters::Platform::upstreams`).
pub const CORE_UPSTREAMS: &[&str] = &["fullstory", "heap"];

/// An upstream's base URL: the configured one (tests and proxies point it elsewhere), else its
/// default, without a trailing `/` (paths are appended with one).
pub fn base_url(configured: Option<&str>, default: &str) -> String {
    configured
        .unwrap_or(default)
        .trim_end_matches('/')
        .to_owned()
}

/// Whether `host` (as a URL gives it: `127.0.0.1`, `[::1]`, `localhost`) is this machine: the only
/// hosts plain `http` is accepted for (the tests' and the demo's fakes).
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `text` as a link a person may be shown and click: `https`, or `http` to a loopback host; `None` for
/// anything else (`javascript:`, `data:`, `http` to the world, no host, not a URL). The URL is given
/// back as the parser wrote it (control characters and white space gone).
pub fn web_link(text: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(text.trim()).ok()?;
    let host = url.host_str()?;
    match url.scheme() {
        "https" => Some(url),
        "http" if is_loopback_host(host) => Some(url),
        _ => None,
    }
}

/// The HTTP client every upstream uses: rustls (ring), a request timeout, our user agent, and no
/// redirects followed: every client carries customer data or credentials, and a redirect would take
/// them to a host nobody configured (a 3xx is returned to the caller as an unexpected answer).
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("replaydesk/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
}

mod error;

pub use error::UpstreamError;

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
    /// The wait after failed attempt `attempt` (1-based): [`backoff`] with jitter drawn from the
    /// upper half (`floor` 0.5), so waits never collapse to zero.
    pub fn backoff(&self, attempt: u32) -> Duration {
        backoff(self.base, self.cap, attempt, 0.5, fastrand::f64())
    }
}

/// The one backoff formula (HTTP retries here, the queue's job retries in `queue`): the wait after
/// failed attempt `attempt` (1-based) is `base·2ⁿ⁻¹` scaled by `floor + (1 − floor)·jitter`
/// (`jitter` in `[0, 1]`, clamped), then capped at `cap`. With `floor` above 0.5 each attempt's
/// shortest wait exceeds the previous one's longest, so waits grow strictly until they reach the
/// cap; with a smaller floor they spread more (HTTP retries of many callers at once).
pub fn backoff(base: Duration, cap: Duration, attempt: u32, floor: f64, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(60);
    let nominal = base.as_secs_f64() * 2f64.powi(i32::try_from(exponent).unwrap_or(60));
    let floor = floor.clamp(0.0, 1.0);
    let factor = floor + (1.0 - floor) * jitter.clamp(0.0, 1.0);
    let delay = (nominal * factor).min(cap.as_secs_f64());
    Duration::try_from_secs_f64(delay).unwrap_or(cap)
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

/// What an upstream answered once the retry policy is done: its status and its whole body. Each
/// client maps this to its own typed error ([`Upstream::call`]).
#[derive(Debug)]
pub struct Answered {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// Why [`Upstream::call`] has no answer to give; each client maps it to its own typed error.
#[derive(Debug)]
pub enum CallError {
    /// The request could not be built (a bad URL or header): nothing was sent.
    Build(reqwest::Error),
    /// The retry policy gave up (or the breaker is open): see [`SendError`].
    Send(SendError),
    /// The status came, but the body could not be read.
    Body { endpoint: &'static str },
}

/// Reads `Retry-After` as seconds (`"3"`, `"1.5"`) or as an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`;
/// one in the past means "now"). `None` when absent or unreadable; never panics (see the module docs).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return retry_after_seconds(seconds);
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = chrono::DateTime::<chrono::Utc>::from(now);
    let left = (when.to_utc() - now).to_std().unwrap_or(Duration::ZERO);
    Some(left.min(cooldown::LONGEST))
}

/// A wait given in (possibly fractional) seconds, as headers and Discord's body say it: `None` for
/// negative, `NaN` or infinite values; at most [`cooldown::LONGEST`].
pub fn retry_after_seconds(seconds: f64) -> Option<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(seconds)
        .ok()
        .map(|wait| wait.min(cooldown::LONGEST))
        .or(Some(cooldown::LONGEST))
}

/// The cool-down key of a request: its host and port.
fn host_of(url: &reqwest::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
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
    quota_answer: Option<QuotaAnswer>,
    metered: &'static [&'static str],
}

/// Whether a 429's body says a quota is used up (not a rate to slow down to): such an answer is
/// returned to the client at once, neither retried nor cooled down on nor counted by the breaker.
pub type QuotaAnswer = fn(&[u8]) -> bool;

/// Reads a 429's wait from its body (for upstreams that may leave out `Retry-After`).
pub type RetryAfterBody = fn(&[u8]) -> Option<Duration>;

/// What every upstream client of one process shares: the upstream metric families it counts into,
/// and the circuit breakers (one per upstream name: whoever builds an [`Upstream`] of that name gets
/// the same breaker). Built once by the core; cheap to clone.
#[derive(Clone, Default)]
pub struct Upstreams {
    pub metrics: UpstreamMetrics,
    pub breakers: Breakers,
}

impl Upstreams {
    /// The clients' shared parts over `metrics` (the breakers export their state there).
    pub fn new(metrics: UpstreamMetrics) -> Self {
        Self {
            breakers: Breakers::with_metrics(metrics.breaker.clone()),
            metrics,
        }
    }
}

impl Upstream {
    pub fn new(
        name: &'static str,
        policy: RetryPolicy,
        budget: Option<std::sync::Arc<dyn Budget>>,
        upstreams: Upstreams,
    ) -> Self {
        Self {
            name,
            policy,
            cooldown: CoolDown::default(),
            budget,
            breaker: upstreams.breakers.get(name),
            metrics: upstreams.metrics,
            retry_after_body: None,
            quota_answer: None,
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

    /// Returns a 429 whose body `says` a quota is used up as it is, at once (see [`QuotaAnswer`]).
    #[must_use]
    pub fn with_quota_answer(mut self, says: QuotaAnswer) -> Self {
        self.quota_answer = Some(says);
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The metric families this upstream records into (adapters count platform refusals there).
    pub fn metrics(&self) -> &UpstreamMetrics {
        &self.metrics
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

    async fn wait_turn(&self, host: &str) -> Result<(), SendError> {
        let started = Instant::now();
        let mut waited = self
            .cooldown
            .wait(host, self.policy.max_retry_after)
            .await
            .map_err(|left| SendError::RateLimited { retry_after: left })?;
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

    /// The one "build → send → read the body" step every upstream client starts from: builds
    /// `request`, sends it through [`send`](Self::send) (or
    /// [`send_unrepeatable`](Self::send_unrepeatable) when `repeatable` is false) and reads the whole
    /// body. What a status means stays with each client (FullStory, Slack, Zendesk, Intercom, Discord).
    pub async fn call(
        &self,
        endpoint: &'static str,
        http: &reqwest::Client,
        request: reqwest::RequestBuilder,
        repeatable: bool,
    ) -> Result<Answered, CallError> {
        let request = request.build().map_err(CallError::Build)?;
        let response = self
            .send_with(endpoint, http, request, repeatable)
            .await
            .map_err(CallError::Send)?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|_| CallError::Body { endpoint })?
            .to_vec();
        Ok(Answered { status, body })
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
        // An outage, or a rate limit long enough to have opened the breaker: the job waits for the
        // upstream (woken when it is back) instead of spending an attempt.
        if let Err(error) = &result
            && (error.is_outage() || self.breaker.asked_wait().is_some())
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
        let host = host_of(request.url());
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
            if let Err(refused) = self.wait_turn(&host).await {
                if let SendError::RateLimited { retry_after } = refused {
                    // The host's cool-down is longer than we wait in place: the job runs later.
                    self.count(endpoint, "cooling_down");
                    tracing::info!(
                        upstream = self.name,
                        endpoint,
                        retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                        "cooling down; not waiting in place"
                    );
                    return Err(refused);
                }
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
                    if self.quota_answer.is_some() || wait.is_none() {
                        let headers = response.headers().clone();
                        let body = response.bytes().await.unwrap_or_default();
                        if self.quota_answer.is_some_and(|says| says(&body)) {
                            tracing::warn!(upstream = self.name, endpoint, "quota used up (429)");
                            return Ok(rebuilt(StatusCode::TOO_MANY_REQUESTS, headers, body));
                        }
                        if let (None, Some(read)) = (wait, self.retry_after_body) {
                            wait = read(&body);
                        }
                    }
                    let mut wait = wait.unwrap_or_else(|| self.policy.backoff(attempt));
                    if wait > self.breaker.max_retry_after() {
                        // Honoured up to the cap; past it, the breaker probes.
                        self.breaker.rate_limited(wait).await;
                        wait = self.breaker.max_retry_after();
                    }
                    self.cooldown.extend(&host, wait);
                    if let Some(budget) = &self.budget {
                        // Other replicas pause at most as long as anyone waits in place.
                        budget
                            .cool_down(wait.min(self.policy.max_retry_after))
                            .await;
                    }
                    tracing::warn!(
                        upstream = self.name,
                        endpoint,
                        retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
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

/// A response made again from its parts, after its body was read.
fn rebuilt(
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut response = axum::http::Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Response::from(response)
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
    fn retry_after_reads_any_value_without_panicking() {
        const LONGEST: Duration = cooldown::LONGEST;
        // 2015-10-21 07:27:50 UTC
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        let table: &[(&str, Option<Duration>)] = &[
            ("3", Some(Duration::from_secs(3))),
            (" 3 ", Some(Duration::from_secs(3))),
            ("1.5", Some(Duration::from_millis(1500))),
            ("0", Some(Duration::ZERO)),
            ("-0", Some(Duration::ZERO)),
            ("100000", Some(LONGEST.min(Duration::from_secs(100_000)))),
            ("1e300", Some(LONGEST)),
            ("18446744073709551616", Some(LONGEST)),
            ("99999999999999999999999999999999999999", Some(LONGEST)),
            ("1e-300", Some(Duration::ZERO)),
            ("-1", None),
            ("-1e300", None),
            ("NaN", None),
            ("nan", None),
            ("inf", None),
            ("-infinity", None),
            ("", None),
            ("soon", None),
            ("3 seconds", None),
            ("0x10", None),
            (
                "Wed, 21 Oct 2015 07:28:00 GMT",
                Some(Duration::from_secs(10)),
            ),
            ("Wed, 21 Oct 2015 07:27:00 GMT", Some(Duration::ZERO)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(Duration::ZERO)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(LONGEST)),
            ("Wed, 21 Oct 2015 25:61:00 GMT", None),
            ("Wednesday, 21-Oct-15 07:28:00 GMT", None),
        ];
        for (value, expected) in table {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            assert_eq!(
                retry_after(&headers, now),
                *expected,
                "Retry-After: {value:?}"
            );
        }
        assert_eq!(retry_after(&HeaderMap::new(), now), None, "absent");
        for seconds in [
            f64::MAX,
            f64::MIN,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e19,
        ] {
            let wait = retry_after_seconds(seconds);
            assert!(wait.is_none_or(|w| w <= LONGEST), "{seconds}: {wait:?}");
        }
    }

    #[test]
    fn cool_downs_are_kept_per_host_and_port() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(
            host_of(&url("https://hooks.slack.com/commands/T1/2/x")),
            "hooks.slack.com:443"
        );
        assert_eq!(host_of(&url("http://127.0.0.1:8081/a")), "127.0.0.1:8081");
        assert_ne!(
            host_of(&url("http://127.0.0.1:8081/a")),
            host_of(&url("http://127.0.0.1:8082/a"))
        );
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
