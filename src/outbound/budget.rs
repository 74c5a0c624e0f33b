//! Our own ceiling on calls to an upstream, awaited before every request (retries included).
//!
//! FullStory meters session-data calls and publishes no numbers for its per-second limit, so we stay
//! under a configured quota (`fullstory.requests_per_second`, `fullstory.burst`) instead of finding the
//! limit with 429s. [`LocalBudget`] is the in-process `governor` limiter (GCRA), the default;
//! [`super::RedisBudget`] implements the same trait with one budget shared by every replica
//! (`limits.backend = "redis"`).

use std::{num::NonZeroU32, time::Duration};

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};

/// Why a call may not go out at all (not merely "not yet").
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BudgetRefused(pub String);

#[async_trait]
pub trait Budget: Send + Sync {
    /// Waits until one more call is allowed; says whether it had to wait. Refuses only when the budget
    /// cannot be consulted and the configuration says to fail closed.
    async fn acquire(&self) -> Result<bool, BudgetRefused>;

    /// After a 429: nobody sharing this budget calls before `wait` has passed. The caller's own
    /// in-process cool-down already covers this process; a shared budget tells the other replicas.
    async fn cool_down(&self, _wait: Duration) {}
}

/// A per-process GCRA limiter.
pub struct LocalBudget {
    limiter: DefaultDirectRateLimiter,
    jitter: Duration,
}

impl LocalBudget {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            // Spread out callers released together, so they do not arrive upstream in one burst.
            jitter: Duration::from_millis(20),
        }
    }

    /// Waits for a slot; says whether it had to wait.
    pub async fn wait(&self) -> bool {
        if self.limiter.check().is_ok() {
            return false;
        }
        self.limiter
            .until_ready_with_jitter(Jitter::up_to(self.jitter))
            .await;
        true
    }
}

#[async_trait]
impl Budget for LocalBudget {
    async fn acquire(&self) -> Result<bool, BudgetRefused> {
        Ok(self.wait().await)
    }
}
