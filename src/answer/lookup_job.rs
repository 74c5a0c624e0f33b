//! The shared `lookup` job ("find this customer's sessions") and the one path every platform's
//! lookups take: [`run_lookup`], which runs the core, answers at a typed target ([`Recipient`]),
//! audits, and applies the failure policy. A job whose answer
//! names a customer who asked to be forgotten ([`crate::privacy::Tombstones`]) has its payload scrubbed once
//! answered: nothing of the question is kept until retention.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Answer, Recipient, Repliers, ReplyTo,
    policy::{deliver_cancelled, deliver_dead, on_fullstory_error, out_of_time},
};
use crate::{
    app::App,
    identity::Identity,
    lookup::LookupRequest,
    privacy::Requester,
    queue::{Job, JobContext, JobError, RunJob},
};

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

impl Job for LookupJob {
    const KIND: &'static str = "lookup";
}

impl LookupJob {
    /// The core's request for this job: the configured defaults, overridden by what the job says.
    pub fn to_request(&self, app: &App) -> LookupRequest {
        let mut request = app.lookup_request(self.identities.clone());
        request.around = self.around;
        request.summary = self.summary;
        if let Some(digest) = self.digest {
            // A person's ask, unless the operator switched digests off.
            request.digest = digest && app.config.fullstory.digest.answers_asks();
        }
        // A summary or digest the job names was asked for by the person (an option, a button);
        // the configured default digest is replaydesk's own doing.
        request.asked = crate::lookup::Asked {
            digest: request.digest && self.digest == Some(true),
            summary: self.summary,
        };
        request
    }
}

/// The one path every platform's lookups take: runs `request` within `job` and answers `to` with the
/// failure policy above. The [`LookupHandler`] calls it for the shared `lookup` job (the request made
/// from the job, [`LookupJob::to_request`]); so does an adapter's own job kind that first works out who
/// to look up and answers at its own typed target (a Zendesk ticket, whose request caps the comment's
/// identities; a Slack mention, whose emails are in the thread). Audit, metrics, the failure policy
/// and its wording are the same for every platform because they live only here.
pub async fn run_lookup(
    app: &App,
    to: &dyn Recipient,
    job: &JobContext,
    payload: &LookupJob,
    request: LookupRequest,
) -> Result<(), JobError> {
    if let Some(ended) = out_of_time(app, to, job).await {
        return ended;
    }
    match app.lookup.run(&request).await {
        Ok(result) => {
            tracing::info!(
                identities = payload.identities.len(),
                sessions = result.session_count(),
                "lookup answered"
            );
            to.deliver(
                job,
                Answer::Sessions {
                    job: payload,
                    result: &result,
                },
            )
            .await?;
            // Written with the job's outcome, in the transaction that marks it done.
            job.audit(app.auditor.entry(
                app.clock.now(),
                "lookup",
                &payload.requester,
                &payload.identities,
                result.session_count(),
                Some(format!("job {}", job.id())),
            ));
            if result.names_a_forgotten_customer() {
                forget_the_question(app, job).await;
            }
            Ok(())
        }
        Err(error) => on_fullstory_error(app, to, job, error).await,
    }
}

/// Once a job's answer named a customer who asked to be forgotten: its payload (the question, with
/// their address) is scrubbed now rather than at retention, and the store's files keep no copy of it
/// (as after an erasure). A failure is logged: the answer was given, and retention scrubs it later.
async fn forget_the_question(app: &App, job: &JobContext) {
    let scrubbed = match app.store.scrub_job(job.id(), app.clock.now()).await {
        Ok(()) => app.store.compact_after_erasure().await,
        Err(error) => Err(error),
    };
    if let Err(error) = scrubbed {
        tracing::warn!(error = %format!("{error:#}"), "could not scrub the job that asked for a forgotten customer");
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
        let to = self.repliers.bind(&payload.reply)?;
        let request = payload.to_request(&self.app);
        run_lookup(&self.app, to.as_ref(), job, &payload, request).await
    }

    async fn on_dead(&self, job: &JobContext, payload: Option<LookupJob>, error: &str) {
        let reply = payload.as_ref().map(|p| &p.reply);
        deliver_dead(&self.repliers, job, reply, error).await;
    }

    async fn on_cancel(
        &self,
        job: &JobContext,
        payload: Option<LookupJob>,
    ) -> Result<(), JobError> {
        deliver_cancelled(&self.repliers, job, payload.as_ref().map(|p| &p.reply)).await
    }
}
