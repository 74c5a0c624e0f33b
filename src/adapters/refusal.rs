//! A platform refusing our message, named and survived, once for every adapter.
//!
//! Slack (`invalid_blocks`, `msg_too_long`, …: HTTP 200 with `ok:false`), Discord (400, code 50035
//! "Invalid Form Body") and Zendesk (422 on the ticket update) can refuse a message we built, although
//! every renderer keeps within the documented limits ([`crate::render::limits`]): limits change, and some
//! are not published. Such a refusal is the platform's, not FullStory's, and retrying the same message
//! would be refused again. So:
//!
//! - each adapter's API client maps it to a [`Refusal`] (platform, a code from a small fixed set, and the
//!   platform's own reason) and counts it in `replaydesk_platform_refusals_total{platform,code}`;
//! - [`once_or_fallback`] logs it (a warning naming the platform and why) and posts the plain fallback
//!   ([`crate::render::fallback_lines`]: links only) through the effect ledger as `<name>-plain`, so the
//!   person asking gets an answer, once, and the job ends well;
//! - when the fallback fails too, the job's error names the platform's refusal (never FullStory) in front
//!   of the fallback's own error, which decides whether the job is retried (a 5xx) or ends (refused
//!   again); the queue's last word then says the answer could not be posted ([`crate::answer::gave_up`]).

// Words every refusal's message carries ([`crate::answer::gave_up`] looks for them), defined in
// `answer`, below the adapters.
use crate::{
    answer::REFUSED,
    queue::{Effect, JobContext},
};

/// A platform client's error, which may be its refusal of our message ([`once_or_fallback`] looks
/// for it in the effect's error).
pub trait Refusing: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static {
    /// The platform's refusal of our message, when this is one.
    fn refusal(&self) -> Option<&Refusal>;
}

/// A platform's refusal of a message we sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} {REFUSED} ({code}): {reason}", display_name(platform))]
pub struct Refusal {
    /// `slack`, `discord`, `zendesk`.
    pub platform: &'static str,
    /// The platform's code, from a fixed set (a metric label): `invalid_blocks`, `50035`, `422`, ….
    pub code: &'static str,
    /// The platform's explanation, shortened.
    pub reason: String,
}

impl Refusal {
    pub fn new(platform: &'static str, code: &'static str, reason: impl Into<String>) -> Self {
        let reason: String = reason.into();
        Self {
            platform,
            code,
            reason: reason.chars().take(300).collect(),
        }
    }
}

/// A platform's name as people write it: `slack` → `Slack`, `intercom` → `Intercom` (every platform's
/// name is one lower-case word, so a new one needs no entry here).
fn display_name(platform: &str) -> String {
    let mut chars = platform.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Runs `rich` once as effect `name`; when the platform refuses it (`refusal` finds a [`Refusal`] in
/// the error), logs the refusal and runs `plain` once as effect `<name>-plain` instead. The external
/// id of whichever was posted.
pub async fn once_or_fallback<E: Refusing>(
    job: &JobContext,
    name: &str,
    rich: &dyn Effect,
    plain: &dyn Effect,
) -> anyhow::Result<String> {
    let error = match job.effects().once(name, rich).await {
        Ok(id) => return Ok(id),
        Err(error) => error,
    };
    let Some(refused) = error.downcast_ref::<E>().and_then(E::refusal).cloned() else {
        return Err(error);
    };
    tracing::warn!(
        platform = refused.platform,
        code = refused.code,
        effect = name,
        "{refused}; posting the plain fallback instead"
    );
    // The fallback's own error decides what the queue does (a passing one is retried); the refusal
    // is named in front of it.
    job.effects()
        .once(&format!("{name}-plain"), plain)
        .await
        .map_err(|plain_error| plain_error.context(format!("{refused}; the plain fallback failed")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::{GAVE_UP, GAVE_UP_POSTING, gave_up};

    #[test]
    fn a_refusal_names_the_platform_and_a_job_dead_of_one_does_not_blame_fullstory() {
        let refused = Refusal::new("discord", "50035", "Invalid Form Body: embeds: too long");
        assert_eq!(
            refused.to_string(),
            "Discord refused our message (50035): Invalid Form Body: embeds: too long"
        );
        let error = format!("effect answer-plain: {refused}; the plain fallback failed");
        assert_eq!(gave_up(&error), GAVE_UP_POSTING);
        assert_eq!(gave_up("FullStory is unavailable (503)"), GAVE_UP);
    }
}
