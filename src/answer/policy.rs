//! The failure policy: what the person who asked sees when FullStory fails, is late, or the job
//! gives up.
//!
//! - FullStory failing for a passing reason (5xx, timeout, connection error, its circuit breaker open,
//!   429): the requester is told once ([`Answer::Delayed`], through the effect ledger) that FullStory is
//!   unavailable and the answer will follow, and the job **waits** for FullStory ([`JobError::Wait`]:
//!   no attempt is spent) until FullStory is back or the answer's deadline comes, whichever is first.
//!   That notice goes out when the FullStory call gives up: after its own retries, which the breaker
//!   cuts at three failed attempts (a few seconds for errors; for timeouts about 21 s after the first,
//!   with the default 10 s `fullstory.timeout`). When FullStory is back, the answer comes once.
//! - A lasting reason (the key is rejected, the request is refused): the requester gets a short, polite
//!   explanation ([`Answer::Failed`]) and the job ends; retrying would not help.
//! - The queue gives up (attempts exhausted by failures that are the job's own): [`Answer::Failed`] with
//!   a reference the operator can replay (`replaydesk jobs retry ID`).
//! - The answer's deadline ([`PlatformReplier::deadline`]: Slack's `response_url` 30 minutes, Discord's
//!   interaction token 15 minutes, a Zendesk note `zendesk.max_delay`, each with a margin to deliver)
//!   passes before FullStory answers: one honest final message ([`TOO_LATE`], with the job's reference),
//!   sent while it can still be delivered, and the job ends `expired` ([`JobError::Expired`]), which
//!   `replaydesk jobs list --state expired` lists and `jobs retry ID` takes back.

use std::{sync::Arc, time::Duration};

use super::{Answer, Replier, Repliers, ReplyTo};
use crate::{
    app::App,
    fullstory::FsError,
    queue::{JobContext, JobError, decode_stored},
};

/// What the person who asked is told when FullStory fails, by cause.
pub fn user_message(error: &FsError) -> String {
    match error {
        FsError::NotConfigured | FsError::Unauthorized | FsError::Forbidden { .. } => {
            "replaydesk cannot read sessions from FullStory right now (its API key was refused). \
             Please ask your replaydesk admin to run `replaydesk check`."
                .into()
        }
        FsError::RateLimited { .. } => {
            "FullStory is busy right now; your replays are on their way shortly.".into()
        }
        FsError::Unavailable { .. } | FsError::Timeout | FsError::Transport(_) => {
            "FullStory is unavailable right now. replaydesk keeps trying: the answer will follow \
             here when it is back."
                .into()
        }
        FsError::NotFound { .. } | FsError::Rejected { .. } | FsError::Malformed { .. } => {
            "FullStory could not answer this request. Please try again, or ask your replaydesk admin."
                .into()
        }
    }
}

/// What the person who asked is told when their answer's deadline came before the answer.
pub const TOO_LATE: &str =
    "Sorry, this took too long to answer. Please try again in a few minutes.";

/// Ends the job when the replier's deadline has come: [`TOO_LATE`] is delivered (once: the effect
/// ledger) and the job is [`JobError::Expired`]. `None` while there is still time (or no deadline).
pub(super) async fn out_of_time(
    app: &App,
    replier: &dyn Replier,
    job: &JobContext,
    reply: &ReplyTo,
) -> Option<Result<(), JobError>> {
    let deadline = replier.deadline(job, reply)?;
    if app.clock.now() < deadline {
        return None;
    }
    tracing::warn!(%deadline, "the answer's deadline has come; ending the job");
    let answer = Answer::Failed {
        message: TOO_LATE.into(),
        reference: reference(job),
    };
    Some(match replier.deliver(job, reply, answer).await {
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
fn fullstory_wait(app: &App, error: &FsError) -> Duration {
    if let Some(wait) = error.retry_after() {
        return wait;
    }
    match crate::outbound::outage::current() {
        Some(outage) if outage.upstream == app.fullstory.upstream().name() => outage.wait,
        // The call was made by another job (the cache shares one call between concurrent lookups).
        _ => app.fullstory.upstream().breaker().wait_hint(false),
    }
}

/// A FullStory failure that may pass (see [`FsError::is_transient`]): past the answer's deadline, the
/// final message and `expired`; before it, the requester told once that the answer will follow, and
/// the job waits for FullStory until it is back or the deadline comes ([`JobError::Wait`]: the attempt
/// is not counted). Adapters whose jobs run their own lookups call this too.
pub async fn wait_for_fullstory(
    app: &App,
    replier: &dyn Replier,
    job: &JobContext,
    reply: &ReplyTo,
    error: FsError,
) -> Result<(), JobError> {
    if let Some(ended) = out_of_time(app, replier, job, reply).await {
        return ended;
    }
    // Told at the first wait only (and the replier's ledger keeps it to one post anyway).
    if job.waiting_on().is_none() {
        replier
            .deliver(
                job,
                reply,
                Answer::Delayed {
                    message: user_message(&error),
                },
            )
            .await?;
    }
    let wait = chrono::Duration::from_std(fullstory_wait(app, &error)).unwrap_or_default();
    let mut until = app.clock.now() + wait;
    if let Some(deadline) = replier.deadline(job, reply) {
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
    replier: &Arc<dyn Replier>,
    job: &JobContext,
    reply: &ReplyTo,
    error: FsError,
) -> Result<(), JobError> {
    if error.is_transient() {
        return wait_for_fullstory(app, replier.as_ref(), job, reply, error).await;
    }
    tracing::warn!(%error, "FullStory refused the job's request");
    replier
        .deliver(
            job,
            reply,
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
        return;
    };
    let Ok(replier) = repliers.get(reply) else {
        return;
    };
    let answer = Answer::Failed {
        message: gave_up(error).into(),
        reference: reference(job),
    };
    if let Err(error) = replier.deliver(job, reply, answer).await {
        tracing::warn!(error = %error, "could not tell the requester the job failed");
    }
}
