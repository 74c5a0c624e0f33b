//! What the job running in this task saw of upstream outages, so the queue can tell "the upstream was
//! down" from "the job failed" without every adapter having to say so.
//!
//! The queue runs each job inside [`observe`]. When a call of that job ends in an outage (a 5xx, a
//! timeout or a connection error after the retries, or a refusal by an open circuit breaker),
//! [`super::Upstream`] notes which upstream and how long to wait ([`super::Breaker::wait_hint`]); when
//! a call closes a breaker, it notes the recovery. A job that then fails with a retryable error waits
//! for that upstream instead of spending an attempt, and a recovery makes the queue run the jobs that
//! were waiting on it. Outside [`observe`] (commands, tests) the notes go nowhere.

use std::{future::Future, sync::Mutex, time::Duration};

/// An upstream this job could not reach, and how long to wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub upstream: &'static str,
    pub wait: Duration,
}

/// What one job saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The last outage met.
    pub outage: Option<Outage>,
    /// Upstreams whose breaker this job's calls closed.
    pub recovered: Vec<&'static str>,
}

tokio::task_local! {
    static SEEN: Mutex<Seen>;
}

/// Runs `work`, returning its output and what it saw.
pub async fn observe<F: Future>(work: F) -> (F::Output, Seen) {
    SEEN.scope(Mutex::new(Seen::default()), async {
        let output = work.await;
        let seen = SEEN
            .try_with(|seen| seen.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        (output, seen)
    })
    .await
}

/// The outage the work in this task met last, if any.
pub fn current() -> Option<Outage> {
    SEEN.try_with(|seen| seen.lock().unwrap_or_else(|e| e.into_inner()).outage)
        .ok()
        .flatten()
}

pub(super) fn note_outage(upstream: &'static str, wait: Duration) {
    let _ = SEEN.try_with(|seen| {
        seen.lock().unwrap_or_else(|e| e.into_inner()).outage = Some(Outage { upstream, wait });
    });
}

pub(super) fn note_recovered(upstream: &'static str) {
    let _ = SEEN.try_with(|seen| {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.recovered.contains(&upstream) {
            seen.recovered.push(upstream);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_are_kept_per_observed_task_and_dropped_outside() {
        note_outage("fullstory", Duration::from_secs(1));
        assert_eq!(current(), None, "outside observe, nothing is kept");
        let ((), seen) = observe(async {
            note_outage("fullstory", Duration::from_secs(3));
            note_recovered("slack");
            note_recovered("slack");
        })
        .await;
        assert_eq!(
            seen.outage,
            Some(Outage {
                upstream: "fullstory",
                wait: Duration::from_secs(3)
            })
        );
        assert_eq!(seen.recovered, ["slack"]);
    }
}
