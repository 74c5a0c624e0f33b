//! A cool-down shared by every caller of one upstream: after a 429, nobody calls again until
//! `Retry-After` has passed.
//!
//! One task learning of the 429 sets the deadline; every other task awaits it before its next request.
//! The deadline only moves forward, so a shorter `Retry-After` arriving late never shortens a longer one.

use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

#[derive(Debug, Default)]
pub struct CoolDown {
    until: Mutex<Option<Instant>>,
}

impl CoolDown {
    /// Nobody calls before `now + wait`.
    pub fn extend(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if until.is_none_or(|u| u < deadline) {
            *until = Some(deadline);
        }
    }

    /// The deadline, if one is in the future.
    pub fn active_until(&self) -> Option<Instant> {
        let until = *self.until.lock().unwrap_or_else(|e| e.into_inner());
        until.filter(|u| *u > Instant::now())
    }

    /// Waits out the cool-down; says whether it had to wait.
    pub async fn wait(&self) -> bool {
        let mut waited = false;
        // Loop: the deadline may move while we sleep (another 429 arrived).
        while let Some(deadline) = self.active_until() {
            waited = true;
            tokio::time::sleep_until(deadline).await;
        }
        waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_waiter_waits_for_the_latest_deadline() {
        let cooldown = std::sync::Arc::new(CoolDown::default());
        assert!(!cooldown.wait().await, "no cool-down, no wait");
        cooldown.extend(Duration::from_secs(2));
        cooldown.extend(Duration::from_secs(1)); // shorter: ignored
        let start = Instant::now();
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let c = cooldown.clone();
                tokio::spawn(async move { c.wait().await })
            })
            .collect();
        for w in waiters {
            assert!(w.await.unwrap_or(false));
        }
        assert!(start.elapsed() >= Duration::from_secs(2));
    }
}
