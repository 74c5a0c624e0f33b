//! Cool-downs per upstream host, shared by every caller of one upstream: after a 429 from a host, nobody
//! calls that host again until `Retry-After` has passed, and no caller waits longer than a bound.
//!
//! Why per host: one upstream may span many hosts (every Slack `response_url` is a URL Slack chose), and
//! a 429 from one of them says nothing about the others. A 429 from a `response_url` host must never
//! hold up FullStory, Zendesk, or another host.
//!
//! Why bounded: a caller meeting an active cool-down waits it out in place only when what is left is at
//! most the caller's bound ([`super::RetryPolicy::max_retry_after`]); a longer one is returned at once as
//! the time still to wait, so the caller fails its attempt and the job queue runs it later, instead of a
//! worker sleeping for hours (`Retry-After: 100000` would otherwise park every worker that needs the host).
//!
//! One task learning of the 429 sets the host's deadline; the deadline only moves forward, so a shorter
//! `Retry-After` arriving late never shortens a longer one. Deadlines are kept at most [`LONGEST`] ahead
//! (no arithmetic overflow on absurd values); expired ones are dropped as new ones are set.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use tokio::time::Instant;

/// The longest cool-down kept for a host, whatever the upstream says.
pub const LONGEST: Duration = Duration::from_secs(24 * 60 * 60);

/// The cool-downs of one upstream, by host (`host:port`).
#[derive(Debug, Default)]
pub struct CoolDown {
    until: Mutex<HashMap<String, Instant>>,
}

impl CoolDown {
    /// Nobody calls `host` before `now + wait` (at most [`LONGEST`]).
    pub fn extend(&self, host: &str, wait: Duration) {
        let now = Instant::now();
        let deadline = now + wait.min(LONGEST);
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        until.retain(|_, u| *u > now);
        let entry = until.entry(host.to_owned()).or_insert(deadline);
        if *entry < deadline {
            *entry = deadline;
        }
    }

    /// `host`'s deadline, if one is in the future.
    pub fn active_until(&self, host: &str) -> Option<Instant> {
        let until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        until.get(host).copied().filter(|u| *u > Instant::now())
    }

    /// Whether any host of this upstream is cooling down (diagnostics and tests).
    pub fn any_active(&self) -> bool {
        let now = Instant::now();
        let until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        until.values().any(|u| *u > now)
    }

    /// Waits out `host`'s cool-down when what is left is at most `bound`; says whether it had to wait.
    /// A longer one is not waited: `Err` carries the time still to wait.
    pub async fn wait(&self, host: &str, bound: Duration) -> Result<bool, Duration> {
        let mut waited = false;
        // Loop: the deadline may move while we sleep (another 429 arrived).
        while let Some(deadline) = self.active_until(host) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left > bound {
                return Err(left);
            }
            waited = true;
            tokio::time::sleep_until(deadline).await;
        }
        Ok(waited)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn every_waiter_waits_for_the_latest_deadline_of_its_host() {
        let cooldown = std::sync::Arc::new(CoolDown::default());
        assert_eq!(cooldown.wait("a:443", BOUND).await, Ok(false));
        cooldown.extend("a:443", Duration::from_secs(2));
        cooldown.extend("a:443", Duration::from_secs(1)); // shorter: ignored
        let start = Instant::now();
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let c = cooldown.clone();
                tokio::spawn(async move { c.wait("a:443", BOUND).await })
            })
            .collect();
        // Another host is not held up.
        assert_eq!(cooldown.wait("b:443", BOUND).await, Ok(false));
        assert_eq!(start.elapsed(), Duration::ZERO);
        for w in waiters {
            assert_eq!(w.await.unwrap(), Ok(true));
        }
        assert!(start.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cool_down_beyond_the_bound_is_not_waited_and_says_what_is_left() {
        let cooldown = CoolDown::default();
        cooldown.extend("hooks:443", Duration::from_secs(100_000));
        let start = Instant::now();
        let left = cooldown.wait("hooks:443", BOUND).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO, "returned at once");
        assert!(left > BOUND && left <= LONGEST, "{left:?}");
        // An absurd wait is kept at the longest, without overflow.
        cooldown.extend("hooks:443", Duration::MAX);
        assert!(cooldown.active_until("hooks:443").is_some());
        assert!(cooldown.any_active());
    }
}
