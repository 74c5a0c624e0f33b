//! The shared `summary` job ("summarise this session", a Summarize button) and its handler.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Answer, Repliers, ReplyTo,
    policy::{deliver_cancelled, deliver_dead, on_fullstory_error, out_of_time},
};
use crate::{
    app::App,
    fullstory::SessionId,
    privacy::Requester,
    queue::{Job, JobContext, JobError, RunJob},
};

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

impl Job for SummaryJob {
    const KIND: &'static str = "summary";
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
        let to = self.repliers.bind(&payload.reply)?;
        let to = to.as_ref();
        if let Some(ended) = out_of_time(&self.app, to, job).await {
            return ended;
        }
        let outcome = match self
            .app
            .lookup
            // A summary job is always a person's Summarize click (or option).
            .summarize(
                &payload.session,
                payload.around,
                crate::activations::Purpose::OnRequest,
            )
            .await
        {
            Ok(outcome) => outcome,
            Err(error) => {
                return on_fullstory_error(&self.app, to, job, error).await;
            }
        };
        to.deliver(
            job,
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

    async fn on_cancel(
        &self,
        job: &JobContext,
        payload: Option<SummaryJob>,
    ) -> Result<(), JobError> {
        deliver_cancelled(&self.repliers, job, payload.as_ref().map(|p| &p.reply)).await
    }
}
