//! The service's notion of "now", passed in so tests can move time.
//!
//! Every timestamp that decides behaviour (signature windows, the lookback filter, leases, backoff,
//! retention) comes from a [`Clock`]. [`Clock::system`] is wall time; [`ManualClock`] only moves when
//! told to. Sleeping (poll interval, lease renewal cadence, shutdown grace) still uses tokio's timer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of the current time. Cheap to clone.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    /// Wall-clock time.
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Clock").field(&self.now()).finish()
    }
}

/// A clock for tests: starts at a given instant and moves only by
/// [`ManualClock::advance`] / [`ManualClock::set`].
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Starts at the current wall-clock time, truncated to whole milliseconds
    /// (the store's resolution), so that stored and computed times compare
    /// equal.
    pub fn starting_now() -> Self {
        let now = Utc::now();
        Self::new(DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        *now = now
            .checked_add_signed(by)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    /// A [`Clock`] reading this manual clock.
    pub fn clock(&self) -> Clock {
        let this = self.clone();
        Clock::from_fn(move || this.now())
    }
}
