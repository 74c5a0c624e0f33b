//! The platform-neutral jobs every adapter enqueues, and the one handler that runs each of them.
//!
//! An adapter's inbound side turns a platform request into a [`LookupJob`] ("find this customer's
//! sessions") or a [`SummaryJob`] ("summarise this session"), each carrying who asked ([`Requester`]) and
//! where the answer goes ([`ReplyTo`]: opaque to the core, read back by that platform's [`Replier`]). The
//! handlers here run the core ([`crate::lookup`]) and hand the outcome to the replier, which renders and
//! posts it through the effect ledger. So lookup, error wording, retry policy and the "it failed" message
//! exist once, for every platform.
//!
//! Failure policy (what the person who asked sees):
//! - FullStory failing for a passing reason (429, 5xx, timeout): the requester is told once that the
//!   answer is delayed ([`Answer::Delayed`]), and the job is retried with backoff by the queue.
//! - A lasting reason (the key is rejected, the request is refused): the requester gets a short, polite
//!   explanation ([`Answer::Failed`]) and the job ends; retrying would not help.
//! - The queue gives up (attempts exhausted): [`Answer::Failed`] with a reference the operator can replay
//!   (`replaydesk jobs retry ID`).
//! - The answer has a deadline ([`Replier::deadline`], e.g. Discord's 15-minute interaction token) and the
//!   job reaches it, or its next retry would land after it: [`Answer::Failed`] saying it took too long
//!   ([`TOO_LATE`]), sent while it can still be delivered, instead of running or retrying.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    app::App,
    fullstory::{FsError, SessionId},
    identity::{CustomerEmail, Identity},
    lookup::{LookupRequest, LookupResult, SummaryOutcome},
    privacy::ErasureReceipt,
    queue::{JobContext, JobError, JobHandler},
    store::NewJob,
};

/// Who asked, for the audit log and access decisions. Never holds a customer email.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    /// `slack`, `zendesk`, `discord`, `cli`.
    pub platform: String,
    /// Workspace, Zendesk account or guild.
    pub tenant: String,
    /// The platform's user id of the person asking.
    pub user: String,
    /// Channel, ticket or thread the question came from.
    pub place: Option<String>,
}

/// Where the answer goes: the platform's own description (a `response_url`, a ticket id, an interaction
/// token), stored with the job and read back only by that platform's [`Replier`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyTo {
    pub platform: String,
    pub target: serde_json::Value,
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

pub const LOOKUP: &str = "lookup";
pub const SUMMARY: &str = "summary";

impl LookupJob {
    pub fn to_new_job(&self) -> anyhow::Result<NewJob> {
        Ok(NewJob::new(LOOKUP, serde_json::to_value(self)?))
    }

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

impl SummaryJob {
    pub fn to_new_job(&self) -> anyhow::Result<NewJob> {
        Ok(NewJob::new(SUMMARY, serde_json::to_value(self)?))
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

/// One platform's way of delivering answers. Implementations render the answer and post it with
/// `job.effects().once(…)`, so a retried job never posts twice.
#[async_trait]
pub trait Replier: Send + Sync {
    fn platform(&self) -> &'static str;

    async fn deliver(
        &self,
        job: &JobContext,
        reply: &ReplyTo,
        answer: Answer<'_>,
    ) -> Result<(), JobError>;

    /// The last moment to start answering `reply`, when answers expire (Discord's interaction token
    /// lives 15 minutes); `None` (the default) when they never do. See the module docs.
    fn deadline(&self, job: &JobContext, reply: &ReplyTo) -> Option<DateTime<Utc>> {
        let _ = (job, reply);
        None
    }
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
        self.0.get(reply.platform.as_str()).ok_or_else(|| {
            JobError::permanent(anyhow::anyhow!(
                "no replier for platform {:?} (is the adapter switched off?)",
                reply.platform
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
            "FullStory is not answering right now; replaydesk will keep trying.".into()
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

/// Ends the job with [`TOO_LATE`] when the replier's deadline comes before `now + wait`; `None` when
/// there is still time (or no deadline).
async fn out_of_time(
    app: &App,
    replier: &Arc<dyn Replier>,
    job: &JobContext,
    reply: &ReplyTo,
    wait: Duration,
) -> Option<Result<(), JobError>> {
    let deadline = replier.deadline(job, reply)?;
    let ready = chrono::Duration::from_std(wait)
        .ok()
        .and_then(|wait| app.clock.now().checked_add_signed(wait));
    if ready.is_some_and(|ready| ready < deadline) {
        return None;
    }
    tracing::warn!(%deadline, "the answer's deadline comes first; ending the job");
    let answer = Answer::Failed {
        message: TOO_LATE.into(),
        reference: reference(job),
    };
    Some(replier.deliver(job, reply, answer).await)
}

/// The longest the queue waits before retrying after `job`'s current attempt.
fn longest_retry_wait(app: &App, job: &JobContext) -> Duration {
    let settings = crate::queue::Settings::from_config(&app.config);
    crate::queue::backoff_delay(
        settings.backoff_base,
        settings.backoff_cap,
        job.attempt(),
        1.0,
    )
}

/// The reference shown when a job gives up: enough for an operator to find and replay it.
pub fn reference(job: &JobContext) -> String {
    format!(
        "job {} (an admin can run `replaydesk jobs retry {}`)",
        job.id(),
        job.id()
    )
}

/// Maps a FullStory failure to the queue's retry decision, telling the requester once when it is a delay.
async fn on_fullstory_error(
    app: &App,
    replier: &Arc<dyn Replier>,
    job: &JobContext,
    reply: &ReplyTo,
    error: FsError,
) -> Result<(), JobError> {
    if error.is_transient() && !job.is_last_attempt() {
        let wait = longest_retry_wait(app, job);
        if let Some(ended) = out_of_time(app, replier, job, reply, wait).await {
            tracing::warn!(%error, "not retrying: the retry would come too late");
            return ended;
        }
    }
    if error.is_transient() {
        if job.attempt() == 1 && !job.is_last_attempt() {
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
        return Err(JobError::Retry(anyhow::Error::new(error)));
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

/// The last word for a job that died with `error`: a platform's refusal of our message
/// ([`crate::adapters::refusal`]) is not blamed on FullStory.
pub fn gave_up(error: &str) -> &'static str {
    if error.contains(crate::adapters::refusal::REFUSED) {
        GAVE_UP_POSTING
    } else {
        GAVE_UP
    }
}

/// Tells the requester that a job gave up. Every job kind here carries its [`ReplyTo`] as `reply`; an
/// adapter's own job kinds that do too can call this from their `on_dead`.
pub async fn deliver_dead(repliers: &Repliers, job: &JobContext, error: &str) {
    #[derive(Deserialize)]
    struct Reply {
        reply: ReplyTo,
    }
    let Ok(Reply { reply }) = job.payload_as::<Reply>() else {
        return;
    };
    let Ok(replier) = repliers.get(&reply) else {
        return;
    };
    let answer = Answer::Failed {
        message: gave_up(error).into(),
        reference: reference(job),
    };
    if let Err(error) = replier.deliver(job, &reply, answer).await {
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
    if let Some(ended) = out_of_time(app, replier, job, &payload.reply, Duration::ZERO).await {
        return ended;
    }
    let request = payload.to_request(app);
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
impl JobHandler for LookupHandler {
    fn kind(&self) -> &'static str {
        LOOKUP
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let payload: LookupJob = job.payload_as()?;
        let replier = self.repliers.get(&payload.reply)?;
        run_lookup(&self.app, replier, job, &payload).await
    }

    async fn on_dead(&self, job: &JobContext, error: &str) {
        deliver_dead(&self.repliers, job, error).await;
    }
}

/// Runs [`SummaryJob`]s.
pub struct SummaryHandler {
    pub app: Arc<App>,
    pub repliers: Repliers,
}

#[async_trait]
impl JobHandler for SummaryHandler {
    fn kind(&self) -> &'static str {
        SUMMARY
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let payload: SummaryJob = job.payload_as()?;
        let replier = self.repliers.get(&payload.reply)?;
        if let Some(ended) =
            out_of_time(&self.app, replier, job, &payload.reply, Duration::ZERO).await
        {
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

    async fn on_dead(&self, job: &JobContext, error: &str) {
        deliver_dead(&self.repliers, job, error).await;
    }
}
