//! The one error core of every upstream client: why a call failed for a reason the upstream's own
//! answer does not explain (it was busy, down, slow, unreachable, its breaker open, or its answer
//! unreadable), and whether trying again later can help.
//!
//! Each client's error (`FullStoryError`, `SlackError`, `ZendeskError`, `DiscordError`, and the trackers'
//! and Intercom's) is its own refusals (401, 403, 404, a platform's error code, a message it refused) plus
//! `Upstream(UpstreamError)`, made by `From<CallError>` from what [`super::Upstream::call`] gives back; so
//! the mapping from a transport failure to words is written once, here, and so is
//! [`UpstreamError::is_transient`], which every client's own `is_transient` defers to. Its `Display` is a
//! predicate the client prefixes with the upstream's name ("FullStory" + " is unavailable (503)").

use std::time::Duration;

use super::{CallError, SendError};

/// Why an upstream call failed, apart from the upstream refusing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// A 429 whose wait is longer than a caller waits in place, or its host's shared cool-down.
    #[error("is rate limiting us (429): retry after {}s", whole_seconds(*retry_after))]
    RateLimited { retry_after: Duration },
    /// A 5xx, after the retry policy's attempts.
    #[error("is unavailable ({status})")]
    Unavailable { status: u16 },
    #[error("did not answer in time")]
    Timeout,
    /// The connection failed, or the request could not be built.
    #[error("could not be reached: {0}")]
    Transport(String),
    /// Its circuit breaker is open: nothing was sent.
    #[error("is unavailable (circuit open; next probe in {}s): not called", retry_in.as_secs())]
    CircuitOpen { retry_in: Duration },
    /// It answered, but not in a form we can read.
    #[error("sent an answer to {endpoint} we could not read: {reason}")]
    Malformed {
        endpoint: &'static str,
        reason: String,
    },
}

/// A wait in whole seconds, rounded up (a wait is never said shorter than it is), at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

impl UpstreamError {
    /// Whether trying again later may succeed: everything but an unreadable answer.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Malformed { .. })
    }

    /// How long the upstream asked us to wait, when it did (a 429's `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// An answer we could not read.
    pub fn malformed(endpoint: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            endpoint,
            reason: reason.into(),
        }
    }
}

impl From<SendError> for UpstreamError {
    fn from(error: SendError) -> Self {
        match error {
            SendError::RateLimited { retry_after } => Self::RateLimited { retry_after },
            SendError::Server { status, .. } => Self::Unavailable {
                status: status.as_u16(),
            },
            SendError::Timeout => Self::Timeout,
            SendError::Transport(reason) => Self::Transport(reason),
            SendError::CircuitOpen { retry_in, .. } => Self::CircuitOpen { retry_in },
        }
    }
}

impl From<CallError> for UpstreamError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Build(error) => {
                Self::Transport(format!("the request could not be built: {error}"))
            }
            CallError::Send(error) => error.into(),
            CallError::Body { endpoint } => Self::malformed(endpoint, "the body could not be read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreadable_answer_is_lasting() {
        let passing = [
            UpstreamError::RateLimited {
                retry_after: Duration::from_secs(3),
            },
            UpstreamError::Unavailable { status: 503 },
            UpstreamError::Timeout,
            UpstreamError::Transport("refused".into()),
            UpstreamError::CircuitOpen {
                retry_in: Duration::from_secs(9),
            },
        ];
        assert!(passing.iter().all(UpstreamError::is_transient));
        assert!(!UpstreamError::malformed("list_sessions", "not JSON").is_transient());
    }

    #[test]
    fn a_wait_is_said_in_whole_seconds_rounded_up() {
        let said = |ms| {
            UpstreamError::RateLimited {
                retry_after: Duration::from_millis(ms),
            }
            .to_string()
        };
        assert!(said(0).ends_with("retry after 1s"));
        assert!(said(1_000).ends_with("retry after 1s"));
        assert!(said(120_500).ends_with("retry after 121s"));
    }

    #[test]
    fn a_send_error_keeps_its_wait_and_status() {
        let limited: UpstreamError = CallError::Send(SendError::RateLimited {
            retry_after: Duration::from_secs(7),
        })
        .into();
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        let down: UpstreamError = CallError::Send(SendError::Server {
            status: reqwest::StatusCode::BAD_GATEWAY,
            body: String::new(),
        })
        .into();
        assert_eq!(down.to_string(), "is unavailable (502)");
        let unread: UpstreamError = CallError::Body { endpoint: "me" }.into();
        assert_eq!(
            unread.to_string(),
            "sent an answer to me we could not read: the body could not be read"
        );
    }
}
