//! `[queue]`: the durable job queue every acknowledged request lands in: how many workers run jobs, how
//! often a job is tried, how long a claim holds, how long finished payloads (which hold customer emails)
//! are kept.
//!
//! Checks: `workers` between 0 and 256 (0: this process only accepts and stores requests, and other
//! processes on the same store run the jobs: an ingest-only replica, or a load test of the ingest path), `max_attempts` at least 1, `lease` at least 1s. (The worker
//! refuses a zero `poll_interval` itself.)

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Interval, at_least_one, between, invalid};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub workers: usize,
    pub max_attempts: u32,
    /// How long finished jobs keep their payloads (which hold customer emails).
    pub retention: Interval,
    /// How long a claimed job stays locked to its worker without a renewal.
    pub lease: Interval,
    /// How often idle workers look for due jobs when no wake-up arrives.
    pub poll_interval: Interval,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_attempts: 6,
            retention: Interval(Duration::from_secs(7 * 86_400)),
            lease: Interval(Duration::from_secs(30)),
            poll_interval: Interval(Duration::from_secs(1)),
        }
    }
}

impl QueueConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        between("queue.workers", self.workers, 0, 256)?;
        at_least_one("queue.max_attempts", self.max_attempts)?;
        if self.lease.0 < Duration::from_secs(1) {
            return Err(invalid("queue.lease", "must be at least 1s"));
        }
        Ok(())
    }
}
