//! The platform-neutral jobs every adapter enqueues, and the one handler that runs each of them.
//!
//! An adapter's inbound side turns a platform request into a [`LookupJob`] ("find this customer's
//! sessions") or a [`SummaryJob`] ("summarise this session"), each carrying who asked ([`Requester`]) and
//! where the answer goes ([`ReplyTo`]: a platform's own [`ReplyTarget`], opaque to the core, read back by
//! that platform's [`PlatformReplier`], which the core calls as a [`Replier`]). The
//! handlers here run the core ([`crate::lookup`]) and hand the outcome to the replier, which renders and
//! posts it through the effect ledger. So lookup, error wording, retry policy and the "it failed" message
//! exist once, for every platform.
//!
//! Failure policy (what the person who asked sees):
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

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    app::App,
    fullstory::{FsError, SessionId},
    identity::{CustomerEmail, Identity},
    lookup::{LookupRequest, LookupResult, SummaryOutcome},
    queue::{Job, JobContext, JobError, RunJob, decode_stored},
    store::{EffectState, Store},
};

/// Who asked: defined beside the audit trail that records it ([`crate::audit`]), below the jobs.
pub use crate::audit::Requester;

/// Where the answer goes: the platform's own description ([`ReplyTarget`]: a `response_url`, a ticket
/// id, an interaction token), stored with the job as `{"platform": …, "target": {…}}` and read back only
/// by that platform's replier. The core never looks inside, so adding a platform adds no variant here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyTo {
    platform: String,
    target: serde_json::Value,
}

/// One platform's description of where its answers go: the `target` of a [`ReplyTo`]. Its stored shape
/// is kept across versions like a job's payload (queued jobs carry it).
pub trait ReplyTarget: Serialize + DeserializeOwned + Send + Sync {
    /// The platform's name: its adapter's name and its [`Requester::platform`].
    const PLATFORM: &'static str;
}

impl ReplyTo {
    /// Answers go to `target`, on its platform.
    pub fn new<T: ReplyTarget>(target: &T) -> Self {
        Self {
            platform: T::PLATFORM.to_owned(),
            // A target is plain data (strings, numbers, flags): writing it as JSON cannot fail.
            target: serde_json::to_value(target).unwrap_or_default(),
        }
    }

    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// The target, read back as `T`: a permanent error when it is another platform's, or does not fit
    /// (naming the field, never quoting its value: targets hold tokens).
    pub fn target<T: ReplyTarget>(&self) -> Result<T, JobError> {
        if self.platform != T::PLATFORM {
            return Err(JobError::permanent(anyhow::anyhow!(
                "a reply to {:?} is not a {} reply target",
                self.platform,
                T::PLATFORM
            )));
        }
        decode_stored(&self.target).map_err(|why| {
            JobError::permanent(anyhow::anyhow!("{} reply target: {why}", T::PLATFORM))
        })
    }
}

/// "Find this customer's sessions."
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LookupJob {
    pub identities: Vec<Identity>,
    /// The moment in question (ticket created, message sent).
    pub around: Option<DateTime<Utc>>,
    /// Add FullStory's AI summary of the likely session.
    #[serde(default)]
    pub summary: bool,
    /// Add the digest line; `None` follows `fullstory.digest`.
    #[serde(default)]
    pub digest: Option<bool>,
    pub requester: Requester,
    pub reply: ReplyTo,
}

/// "Summarise this session" (a Summarize button).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryJob {
    pub session: SessionId,
    /// The replay link, to show beside the summary.
    pub url: Option<String>,
    /// Cut the session here (the ticket's or message's time).
    pub around: Option<DateTime<Utc>>,
    pub requester: Requester,
    pub reply: ReplyTo,
}

impl Job for LookupJob {
    const KIND: &'static str = "lookup";
}

impl Job for SummaryJob {
    const KIND: &'static str = "summary";
}

impl LookupJob {
    /// The core's request for this job: the configured defaults, overridden by what the job says.
    pub fn to_request(&self, app: &App) -> LookupRequest {
        let mut request = app.lookup_request(self.identities.clone());
        request.around = self.around;
        request.summary = self.summary;
        if let Some(digest) = self.digest {
            request.digest = digest;
        }
        request
    }
}

#[cfg(test)]
impl ReplyTo {
    /// A reply to no platform, for tests that render answers and never deliver them.
    pub(crate) fn nowhere() -> Self {
        Self {
            platform: "test".into(),
            target: serde_json::Value::Null,
        }
    }
}

/// What a replier is asked to deliver.
#[derive(Debug)]
pub enum Answer<'a> {
    Sessions {
        job: &'a LookupJob,
        result: &'a LookupResult,
    },
    Summary {
        job: &'a SummaryJob,
        outcome: &'a SummaryOutcome,
    },
    /// The answer is late (FullStory is slow or rate limiting): retrying.
    Delayed { message: String },
    /// No answer will come.
    Failed { message: String, reference: String },
    /// An erasure's receipt ([`crate::privacy::erase`]): done, still pending, or given up. A replier
    /// that cannot replace what it posts may skip the pending one (as it skips [`Answer::Delayed`]).
    Erasure {
        email: &'a CustomerEmail,
        receipt: &'a ErasureReceipt,
    },
}

/// One platform's way of delivering answers, to its own [`ReplyTarget`]: what an adapter implements.
/// Implementations render the answer and post it with `job.effects().once(…)`, so a retried job never
/// posts twice. Every `PlatformReplier` is a [`Replier`] (the target read from the [`ReplyTo`] once, a
/// target that does not fit being a permanent error), so the core holds it as `Arc<dyn Replier>`.
#[async_trait]
pub trait PlatformReplier: Send + Sync {
    type Target: ReplyTarget;

    async fn deliver(
        &self,
        job: &JobContext,
        target: &Self::Target,
        answer: Answer<'_>,
    ) -> Result<(), JobError>;

    /// The last moment to start answering at `target`, when answers expire (Discord's interaction token
    /// lives 15 minutes, a Slack `response_url` 30); `None` (the default) when they never do: such a
    /// job waits for a down upstream as long as it takes. See the module docs.
    fn deadline(&self, job: &JobContext, target: &Self::Target) -> Option<DateTime<Utc>> {
        let _ = (job, target);
        None
    }
}

#[async_trait]
impl<R: PlatformReplier> Replier for R {
    fn platform(&self) -> &'static str {
        R::Target::PLATFORM
    }

    async fn deliver(
        &self,
        job: &JobContext,
        reply: &ReplyTo,
        answer: Answer<'_>,
    ) -> Result<(), JobError> {
        let target = reply.target::<R::Target>()?;
        PlatformReplier::deliver(self, job, &target, answer).await
    }

    fn deadline(&self, job: &JobContext, reply: &ReplyTo) -> Option<DateTime<Utc>> {
        let target = reply.target::<R::Target>().ok()?;
        PlatformReplier::deadline(self, job, &target)
    }
}

/// The replier the core calls, whatever the platform: written as a [`PlatformReplier`], whose target
/// it reads from the [`ReplyTo`].
#[async_trait]
pub trait Replier: Send + Sync {
    fn platform(&self) -> &'static str;

    async fn deliver(
        &self,
        job: &JobContext,
        reply: &ReplyTo,
        answer: Answer<'_>,
    ) -> Result<(), JobError>;

    /// [`PlatformReplier::deadline`] of `reply`'s target (`None` when it does not fit).
    fn deadline(&self, job: &JobContext, reply: &ReplyTo) -> Option<DateTime<Utc>>;
}

/// The repliers of the enabled platforms, by platform name.
#[derive(Clone, Default)]
pub struct Repliers(HashMap<&'static str, Arc<dyn Replier>>);

impl Repliers {
    pub fn new(repliers: impl IntoIterator<Item = Arc<dyn Replier>>) -> Self {
        Self(repliers.into_iter().map(|r| (r.platform(), r)).collect())
    }

    /// The replier for `reply`'s platform; a permanent error when that adapter is off.
    pub fn get(&self, reply: &ReplyTo) -> Result<&Arc<dyn Replier>, JobError> {
        self.0.get(reply.platform()).ok_or_else(|| {
            JobError::permanent(anyhow::anyhow!(
                "no replier for platform {:?} (is the adapter switched off?)",
                reply.platform()
            ))
        })
    }
}

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
async fn out_of_time(
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
async fn on_fullstory_error(
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

/// Tells the requester at `reply` that a job gave up, when its payload could still be read (`None`:
/// nowhere to tell) and its platform is on. The shared handlers' `on_dead`; an adapter's own job kinds
/// that carry a [`ReplyTo`] call it from theirs.
pub async fn deliver_dead(
    repliers: &Repliers,
    job: &JobContext,
    reply: Option<&ReplyTo>,
    error: &str,
) {
    let Some((reply, Ok(replier))) = reply.map(|reply| (reply, repliers.get(reply))) else {
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

/// Runs one lookup within `job` and hands the outcome to `replier`, with the failure policy above. The
/// [`LookupHandler`] calls this; so can an adapter's own job kind that first works out who to look up
/// (a Slack mention whose emails are in the thread's first message).
pub async fn run_lookup(
    app: &App,
    replier: &Arc<dyn Replier>,
    job: &JobContext,
    payload: &LookupJob,
) -> Result<(), JobError> {
    run_lookup_as(app, replier, job, payload, payload.to_request(app)).await
}

/// [`run_lookup`] with the request already made: for an adapter whose request differs from the job's
/// defaults (a Zendesk ticket caps the comment's identities). Audit, metrics, the failure policy and
/// its wording are the same for every platform because they live only here.
pub async fn run_lookup_as(
    app: &App,
    replier: &Arc<dyn Replier>,
    job: &JobContext,
    payload: &LookupJob,
    request: LookupRequest,
) -> Result<(), JobError> {
    if let Some(ended) = out_of_time(app, replier.as_ref(), job, &payload.reply).await {
        return ended;
    }
    match app.lookup.run(&request).await {
        Ok(result) => {
            tracing::info!(
                identities = payload.identities.len(),
                sessions = result.session_count(),
                "lookup answered"
            );
            replier
                .deliver(
                    job,
                    &payload.reply,
                    Answer::Sessions {
                        job: payload,
                        result: &result,
                    },
                )
                .await?;
            app.auditor
                .record(
                    app.clock.now(),
                    "lookup",
                    &payload.requester,
                    &payload.identities,
                    result.session_count(),
                    Some(format!("job {}", job.id())),
                )
                .await;
            Ok(())
        }
        Err(error) => on_fullstory_error(app, replier, job, &payload.reply, error).await,
    }
}

/// Runs [`LookupJob`]s.
pub struct LookupHandler {
    pub app: Arc<App>,
    pub repliers: Repliers,
}

#[async_trait]
impl RunJob for LookupHandler {
    type Job = LookupJob;

    async fn run(&self, job: &JobContext, payload: LookupJob) -> Result<(), JobError> {
        let replier = self.repliers.get(&payload.reply)?;
        run_lookup(&self.app, replier, job, &payload).await
    }

    async fn on_dead(&self, job: &JobContext, payload: Option<LookupJob>, error: &str) {
        let reply = payload.as_ref().map(|p| &p.reply);
        deliver_dead(&self.repliers, job, reply, error).await;
    }
}

/// Runs [`SummaryJob`]s.
pub struct SummaryHandler {
    pub app: Arc<App>,
    pub repliers: Repliers,
}

#[async_trait]
impl RunJob for SummaryHandler {
    type Job = SummaryJob;

    async fn run(&self, job: &JobContext, payload: SummaryJob) -> Result<(), JobError> {
        let replier = self.repliers.get(&payload.reply)?;
        if let Some(ended) = out_of_time(&self.app, replier.as_ref(), job, &payload.reply).await {
            return ended;
        }
        let outcome = match self
            .app
            .lookup
            .summarize(&payload.session, payload.around)
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => {
                return on_fullstory_error(&self.app, replier, job, &payload.reply, error).await;
            }
        };
        replier
            .deliver(
                job,
                &payload.reply,
                Answer::Summary {
                    job: &payload,
                    outcome: &outcome,
                },
            )
            .await?;
        self.app
            .auditor
            .record(
                self.app.clock.now(),
                "summary",
                &payload.requester,
                &[],
                1,
                Some(format!("job {}, session {}", job.id(), payload.session)),
            )
            .await;
        Ok(())
    }

    async fn on_dead(&self, job: &JobContext, payload: Option<SummaryJob>, error: &str) {
        let reply = payload.as_ref().map(|p| &p.reply);
        deliver_dead(&self.repliers, job, reply, error).await;
    }
}

/// The ledger name of an erasure's Heap step, and the prefix of each FullStory user's.
pub const HEAP_STEP: &str = "heap";
pub const FULLSTORY_STEP: &str = "fs-";
/// The prefix of an erasure step replaydesk cannot do and a person must (its text says how).
pub const MANUAL_STEP: &str = "manual-";

/// Whether a ledger entry of an erasure job is one of its steps (not a receipt a replier posted).
fn is_step(name: &str) -> bool {
    name == HEAP_STEP || name.starts_with(FULLSTORY_STEP) || name.starts_with(MANUAL_STEP)
}

/// What an erasure ([`crate::privacy::erase`]) did, from its job's ledger. Defined here, beside
/// [`Answer::Erasure`] that carries it, so the jobs never import `privacy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErasureReceipt {
    pub job_id: i64,
    /// `done` (every step confirmed), `incomplete` (finished what it could; `needs_action` lists the
    /// rest), `pending` (will be retried), `dead`.
    pub status: String,
    pub done: Vec<String>,
    pub pending: Vec<String>,
    /// What replaydesk could not do and a person must (each line says how). A receipt with any is
    /// `incomplete`, never `done`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs_action: Vec<String>,
    pub last_error: Option<String>,
}

impl ErasureReceipt {
    /// The receipt of erasure job `job_id` as the store sees it (its state decides the status).
    pub async fn of_job(store: &Arc<dyn Store>, job_id: i64) -> anyhow::Result<Self> {
        let job = store
            .get_job(job_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no job {job_id}"))?;
        let status = match job.state.as_str() {
            "done" => "done",
            "dead" => "dead",
            _ => "pending",
        };
        Self::from_ledger(store, job_id, status, job.last_error.clone()).await
    }

    /// The receipt of erasure job `job_id` with `status` given (the job itself knows better than its
    /// row while it runs): its steps from the ledger, done ones with their upstream references.
    pub async fn from_ledger(
        store: &Arc<dyn Store>,
        job_id: i64,
        status: &str,
        last_error: Option<String>,
    ) -> anyhow::Result<Self> {
        let mut receipt = ErasureReceipt {
            job_id,
            status: status.to_owned(),
            last_error,
            ..Self::default()
        };
        for effect in store.effects_for_job(job_id).await? {
            if !is_step(&effect.name) {
                continue;
            }
            match (effect.state, effect.external_id) {
                (EffectState::Done, Some(line)) if effect.name.starts_with(MANUAL_STEP) => {
                    receipt.needs_action.push(line);
                }
                (EffectState::Done, Some(id)) => receipt.done.push(id),
                _ => receipt.pending.push(effect.name),
            }
        }
        if receipt.status == "done" {
            receipt
                .done
                .push("replaydesk cache and stored payloads: cleared".into());
            if !receipt.needs_action.is_empty() {
                receipt.status = "incomplete".to_owned();
            }
        } else {
            receipt
                .pending
                .push("replaydesk cache and stored payloads (cleared last)".into());
        }
        Ok(receipt)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A platform's reply target, as an adapter would define one.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Desk {
        ticket: u64,
        #[serde(default)]
        note: Option<String>,
    }

    impl ReplyTarget for Desk {
        const PLATFORM: &'static str = "desk";
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Chat {
        channel: String,
    }

    impl ReplyTarget for Chat {
        const PLATFORM: &'static str = "chat";
    }

    #[test]
    fn a_reply_is_stored_as_its_platform_and_target_and_read_back_as_the_same_target() {
        let reply = ReplyTo::new(&Desk {
            ticket: 7,
            note: None,
        });
        let stored = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            stored,
            json!({"platform": "desk", "target": {"ticket": 7, "note": null}})
        );
        let read: ReplyTo = serde_json::from_value(stored).unwrap();
        assert_eq!(read.platform(), "desk");
        assert_eq!(
            read.target::<Desk>().unwrap(),
            Desk {
                ticket: 7,
                note: None
            }
        );
    }

    #[test]
    fn another_platforms_target_or_one_that_does_not_fit_is_a_permanent_error() {
        let reply = ReplyTo::new(&Chat {
            channel: "C1".into(),
        });
        let Err(JobError::Permanent(error)) = reply.target::<Desk>() else {
            panic!("a chat reply read as a desk target");
        };
        assert_eq!(
            error.to_string(),
            "a reply to \"chat\" is not a desk reply target"
        );
        let broken: ReplyTo =
            serde_json::from_value(json!({"platform": "desk", "target": {"ticket": "tok-secret"}}))
                .unwrap();
        let Err(JobError::Permanent(error)) = broken.target::<Desk>() else {
            panic!("a target that does not fit was read");
        };
        assert_eq!(
            error.to_string(),
            "desk reply target: ticket: invalid value"
        );
    }
}
