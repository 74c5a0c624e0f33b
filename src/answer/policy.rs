//! The failure policy: what the person who asked sees when FullStory fails, is late, or the job
//! gives up.
//!
//! - FullStory failing for a passing reason (5xx, timeout, connection error, its circuit breaker open,
//!   429): the requester is told once ([`Answer::Delayed`], through the effect ledger) that FullStory is
//!   unavailable and the answer will follow, and the job **waits** for FullStory ([`JobError::Wait`]:
//!   no attempt is spent) until FullStory is back or the answer's deadline comes, whichever is first.
//!   When FullStory asked replaydesk to wait (a 429's `Retry-After`, remembered by its circuit breaker
//!   when longer than `limits.max_retry_after`), the requester is told that wait, in words ("about 24
//!   hours"), and, when it is longer than the answer can wait here (the deadline below), that the
//!   answer may not come here ([`delay_message`]): never that it is "on its way shortly".
//!   That notice goes out when the FullStory call gives up: after its own retries, which the breaker
//!   cuts at three failed attempts (a few seconds for errors; for timeouts about 21 s after the first,
//!   with the default 10 s `fullstory.timeout`). When FullStory is back, the answer comes once.
//! - A lasting reason (the key is rejected, the request is refused): the requester gets a short, polite
//!   explanation ([`Answer::Failed`]) and the job ends; retrying would not help.
//! - The queue gives up (attempts exhausted by failures that are the job's own): [`Answer::Failed`] with
//!   a reference the operator can replay (`replaydesk jobs retry ID`).
//! - The answer's deadline ([`PlatformReplier::deadline`]: Slack's `response_url` 30 minutes, Discord's
//!   interaction token 15 minutes, a Zendesk note `zendesk.max_delay`, each with a margin to deliver)
//!   passes before FullStory answers: one honest final message ([`TOO_LATE`], or with FullStory's own
//!   wait when it asked for one: [`too_late_message`]; with the job's reference), sent while it can
//!   still be delivered, and the job ends `expired` ([`JobError::Expired`]), which `replaydesk jobs
//!   list --state expired` lists and `jobs retry ID` takes back.
//! - A waiting job with no deadline (an erasure, a thread answer) may be ended by an operator
//!   (`replaydesk jobs cancel ID`): its requester gets [`CANCELLED`], through the job's replier like an
//!   expired job's final message ([`deliver_cancelled`]), and the job ends `cancelled`.

use std::time::Duration;

use super::{Answer, Recipient, Repliers, ReplyTo};
use crate::{
    app::App,
    fullstory::FullStoryError,
    outbound::UpstreamError,
    queue::{JobContext, JobError, decode_stored},
};

/// What the person who asked is told when FullStory fails, by cause.
pub fn user_message(error: &FullStoryError) -> String {
    match error {
        FullStoryError::NotConfigured | FullStoryError::Unauthorized | FullStoryError::Forbidden { .. } => {
            "replaydesk cannot read sessions from FullStory right now (its API key was refused). \
             Please ask your replaydesk admin to run `replaydesk check`."
                .into()
        }
        FullStoryError::Upstream(UpstreamError::RateLimited { .. }) => {
            "FullStory is busy right now: it asked replaydesk to wait before asking again.".into()
        }
        FullStoryError::Upstream(error) if error.is_transient() => {
            "FullStory is unavailable right now. replaydesk keeps trying: the answer will follow \
             here when it is back."
                .into()
        }
        FullStoryError::OverBudget(spent) => spent.to_string(),
        FullStoryError::OutOfQuota { .. } => {
            "FullStory says this organisation's Activations are used up, so replaydesk cannot \
             fetch this until the next billing cycle."
                .into()
        }
        FullStoryError::NotFound { .. }
        | FullStoryError::Rejected { .. }
        | FullStoryError::Upstream(_) => {
            "FullStory could not answer this request. Please try again, or ask your replaydesk admin."
                .into()
        }
    }
}

/// What the person who asked is told when their answer's deadline came before the answer.
pub const TOO_LATE: &str =
    "Sorry, this took too long to answer. Please try again in a few minutes.";

/// What the person who asked is told when an operator ended the job (`replaydesk jobs cancel`).
pub const CANCELLED: &str = "Sorry, replaydesk stopped waiting for this answer (an admin cancelled \
     it), so it will not come here. Please ask again later.";

/// How long FullStory asked replaydesk to wait, when it did: this error's `Retry-After`, or what is
/// left of a longer one its circuit breaker remembers ([`crate::outbound::Breaker::asked_wait`]),
/// whichever is longer. `None` for an outage (FullStory said nothing about when).
pub fn asked_wait(app: &App, error: &FullStoryError) -> Option<Duration> {
    let remembered = app.fullstory.upstream().breaker().asked_wait();
    match (error.retry_after(), remembered) {
        (Some(this), Some(remembered)) => Some(this.max(remembered)),
        (this, remembered) => this.or(remembered),
    }
}

/// A wait in words, rounded up: "less than a minute", "about 5 minutes", "about 24 hours", "about 3
/// days".
pub fn in_words(wait: Duration) -> String {
    let s = wait.as_secs();
    let (n, unit) = match s {
        0..60 => return "less than a minute".into(),
        60..90 => return "about a minute".into(),
        90..5_400 => (s.div_ceil(60), "minute"),
        5_400..129_600 => (s.div_ceil(3_600), "hour"),
        _ => (s.div_ceil(86_400), "day"),
    };
    format!("about {n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// What the requester is told while their answer waits for FullStory: the cause, and when FullStory
/// asked for a wait, that wait; when it is longer than the answer can wait at `reply` (its
/// deadline), that the answer may not come here. Never "shortly".
pub fn delay_message(
    app: &App,
    to: &dyn Recipient,
    job: &JobContext,
    error: &FullStoryError,
) -> String {
    let Some(wait) = asked_wait(app, error) else {
        return user_message(error);
    };
    let asked = format!(
        "FullStory is busy: it asked replaydesk to wait {} before asking again.",
        in_words(wait)
    );
    let left = to
        .deadline(job)
        .map(|deadline| (deadline - app.clock.now()).to_std().unwrap_or_default());
    match left {
        Some(left) if wait > left => format!(
            "{asked} That is longer than an answer can wait here ({} more). replaydesk keeps \
             trying and answers here if FullStory lets it sooner; if not, it will say so here. You \
             can also ask again after that.",
            in_words(left)
        ),
        _ => format!("{asked} The answer will follow here after that."),
    }
}

/// The final message at the answer's deadline: [`TOO_LATE`], or, while FullStory's own wait still
/// runs, that wait, so nobody is told to try again "in a few minutes" when FullStory said a day.
pub fn too_late_message(app: &App) -> String {
    match app.fullstory.upstream().breaker().asked_wait() {
        Some(left) => format!(
            "Sorry, FullStory did not answer in time: it asked replaydesk to wait {} more. Please \
             ask again after that.",
            in_words(left)
        ),
        None => TOO_LATE.into(),
    }
}

/// Ends the job when the replier's deadline has come: [`TOO_LATE`] is delivered (once: the effect
/// ledger) and the job is [`JobError::Expired`]. `None` while there is still time (or no deadline).
pub(super) async fn out_of_time(
    app: &App,
    to: &dyn Recipient,
    job: &JobContext,
) -> Option<Result<(), JobError>> {
    let deadline = to.deadline(job)?;
    if app.clock.now() < deadline {
        return None;
    }
    tracing::warn!(%deadline, "the answer's deadline has come; ending the job");
    let answer = Answer::Failed {
        message: too_late_message(app),
        reference: reference(job),
    };
    Some(match to.deliver(job, answer).await {
        Ok(()) => Err(JobError::Expired(anyhow::anyhow!(
            "the answer's deadline ({deadline}) passed before FullStory answered; the requester was told"
        ))),
        Err(error) => Err(error),
    })
}

/// The reference shown when a job gives up: enough for an operator to find and replay it.
pub fn reference(job: &JobContext) -> String {
    format!(
        "job {} (an admin can run `replaydesk jobs retry {}`)",
        job.id(),
        job.id()
    )
}

/// How long a job that could not have FullStory waits before trying again: what FullStory said (a
/// 429's `Retry-After`), else what its circuit breaker says (see
/// [`crate::outbound::Breaker::wait_hint`]). The queue runs it sooner if FullStory comes back.
fn fullstory_wait(app: &App, error: &FullStoryError) -> Duration {
    if let Some(wait) = error.retry_after() {
        return wait;
    }
    match crate::outbound::outage::current() {
        Some(outage) if outage.upstream == app.fullstory.upstream().name() => outage.wait,
        // The call was made by another job (the cache shares one call between concurrent lookups).
        _ => app.fullstory.upstream().breaker().wait_hint(false),
    }
}

/// A FullStory failure that may pass (see [`FullStoryError::is_transient`]): past the answer's deadline, the
/// final message and `expired`; before it, the requester told once that the answer will follow, and
/// the job waits for FullStory until it is back or the deadline comes ([`JobError::Wait`]: the attempt
/// is not counted). Adapters whose jobs run their own lookups call this too.
pub async fn wait_for_fullstory(
    app: &App,
    to: &dyn Recipient,
    job: &JobContext,
    error: FullStoryError,
) -> Result<(), JobError> {
    if let Some(ended) = out_of_time(app, to, job).await {
        return ended;
    }
    // Told at the first wait only (and the replier's ledger keeps it to one post anyway).
    if job.waiting_on().is_none() {
        let message = delay_message(app, to, job, &error);
        to.deliver(job, Answer::Delayed { message }).await?;
    }
    let wait = chrono::Duration::from_std(fullstory_wait(app, &error)).unwrap_or_default();
    let mut until = app.clock.now() + wait;
    if let Some(deadline) = to.deadline(job) {
        until = until.min(deadline);
    }
    Err(JobError::Wait {
        upstream: app.fullstory.upstream().name(),
        until,
        error: anyhow::Error::new(error),
    })
}

/// Maps a FullStory failure to the queue's decision, telling the requester once when it is a delay.
pub(super) async fn on_fullstory_error(
    app: &App,
    to: &dyn Recipient,
    job: &JobContext,
    error: FullStoryError,
) -> Result<(), JobError> {
    if error.is_transient() {
        return wait_for_fullstory(app, to, job, error).await;
    }
    tracing::warn!(%error, "FullStory refused the job's request");
    to.deliver(
        job,
        Answer::Failed {
            message: user_message(&error),
            reference: reference(job),
        },
    )
    .await
}

/// What the requester is told when a job gave up.
pub const GAVE_UP: &str = "replaydesk could not get an answer from FullStory after several tries.";

/// What the requester is told when a job gave up because the platform kept refusing the answer.
pub const GAVE_UP_POSTING: &str =
    "replaydesk found the answer but could not post it here. Please ask your replaydesk admin.";

/// Words every platform refusal's message carries ([`crate::adapters::refusal`]); [`gave_up`] looks
/// for them. Defined here, below the adapters, so the core never imports an adapter.
pub const REFUSED: &str = "refused our message";

/// The last word for a job that died with `error`: a platform's refusal of our message
/// ([`crate::adapters::refusal`]) is not blamed on FullStory.
pub fn gave_up(error: &str) -> &'static str {
    if error.contains(REFUSED) {
        GAVE_UP_POSTING
    } else {
        GAVE_UP
    }
}

/// Tells the requester at `reply` that a job gave up, when its platform is on. `reply` is `None` when
/// the payload could not be read as its kind (an older or edited row): its `reply` alone is then read
/// from the stored payload, so the person who asked still hears that it failed; a payload without
/// one (a command-line erasure) has nowhere to tell. The shared handlers' `on_dead`; an adapter's own job kinds
/// that carry a [`ReplyTo`] call it from theirs.
pub async fn deliver_dead(
    repliers: &Repliers,
    job: &JobContext,
    reply: Option<&ReplyTo>,
    error: &str,
) {
    if let Err(error) = deliver_last_word(repliers, job, reply, gave_up(error)).await {
        tracing::warn!(error = %error, "could not tell the requester the job failed");
    }
}

/// Tells the requester at `reply` that an operator cancelled the job ([`CANCELLED`]), like
/// [`deliver_dead`] (the reply read from the stored payload when the payload does not fit), but
/// returning the delivery's failure: a cancellation that could not be told is not made. The shared
/// handlers' `on_cancel`; an adapter's own job kinds that carry a [`ReplyTo`] call it from theirs.
///
/// # Errors
/// The replier could not deliver (the job then stays as it was).
pub async fn deliver_cancelled(
    repliers: &Repliers,
    job: &JobContext,
    reply: Option<&ReplyTo>,
) -> Result<(), JobError> {
    deliver_last_word(repliers, job, reply, CANCELLED).await
}

/// A job's last word, `message` with its reference, at `reply` (or the stored payload's `reply`);
/// nothing when there is nowhere to tell or that platform is off.
async fn deliver_last_word(
    repliers: &Repliers,
    job: &JobContext,
    reply: Option<&ReplyTo>,
    message: &str,
) -> Result<(), JobError> {
    #[derive(serde::Deserialize)]
    struct OnlyReply {
        reply: ReplyTo,
    }
    let stored = match reply {
        Some(_) => None,
        None => decode_stored::<OnlyReply>(job.payload())
            .ok()
            .map(|only| only.reply),
    };
    let Some(reply) = reply.or(stored.as_ref()) else {
        return Ok(());
    };
    let Ok(to) = repliers.bind(reply) else {
        return Ok(());
    };
    let answer = Answer::Failed {
        message: message.into(),
        reference: reference(job),
    };
    to.deliver(job, answer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_said_in_words_rounded_up() {
        let table = [
            (0, "less than a minute"),
            (59, "less than a minute"),
            (60, "about a minute"),
            (120, "about 2 minutes"),
            (300, "about 5 minutes"),
            (1_740, "about 29 minutes"),
            (5_399, "about 90 minutes"),
            (5_400, "about 2 hours"),
            (86_400, "about 24 hours"),
            (129_600, "about 2 days"),
            (7 * 86_400, "about 7 days"),
        ];
        for (secs, words) in table {
            assert_eq!(in_words(Duration::from_secs(secs)), words, "{secs} s");
        }
    }
}
