//! `slack.mention`: an `@replaydesk` mention, beside the shared lookup and summary jobs. Who to look
//! up is worked out in the job, not before the acknowledgement: the emails (or `uid:…`) in the
//! mention, or if none, in the thread's parent message (`conversations.replies`, the one Slack call a
//! mention needs before the lookup). Then the lookup runs through the shared
//! [`crate::answer::run_lookup`], with its failure policy, "around" = the mention's time, and the
//! answer goes in the thread.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    api::SlackApi,
    render,
    reply::{SlackReplier, Target},
};
use crate::{
    answer::{self, LookupJob, Replier, Repliers, ReplyTo},
    app::App,
    identity::parse_query,
    privacy::Requester,
    queue::{Job, JobContext, JobError, RunJob},
};

/// "Someone mentioned @replaydesk."
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MentionJob {
    pub text: String,
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub requester: Requester,
    pub reply: ReplyTo,
}

impl Job for MentionJob {
    const KIND: &'static str = "slack.mention";
}

/// Runs [`MentionJob`]s.
pub struct MentionHandler {
    pub app: Arc<App>,
    pub api: Arc<SlackApi>,
    pub replier: Arc<SlackReplier>,
}

#[async_trait]
impl RunJob for MentionHandler {
    type Job = MentionJob;

    async fn run(&self, job: &JobContext, mention: MentionJob) -> Result<(), JobError> {
        let exclude = &self.app.config.identity.exclude_domains.0;
        let mut query = parse_query(&mention.text, exclude);
        if query.identities.is_empty()
            && let Some(parent) = mention.thread_ts.as_deref().filter(|p| *p != mention.ts)
        {
            let text = self
                .api
                .thread_parent_text(&mention.channel, parent)
                .await
                .map_err(|e| {
                    let transient = e.is_transient();
                    let error = anyhow::Error::new(e).context("reading the thread's parent");
                    if transient {
                        JobError::Retry(error)
                    } else {
                        JobError::Permanent(error)
                    }
                })?;
            let found = parse_query(text.as_deref().unwrap_or_default(), exclude);
            query.identities = found.identities;
        }
        if query.identities.is_empty() {
            let target = mention.reply.target::<Target>()?;
            return self
                .replier
                .post(
                    job,
                    "answer",
                    &target,
                    render::notice(crate::render::NO_IDENTITIES),
                )
                .await;
        }
        let lookup = LookupJob {
            summary: query.has_flag("summary"),
            identities: query.identities,
            around: render::ts_time(&mention.ts),
            digest: None,
            requester: mention.requester,
            reply: mention.reply,
        };
        let to = self.replier.bind(&lookup.reply)?;
        let request = lookup.to_request(&self.app);
        answer::run_lookup(&self.app, to.as_ref(), job, &lookup, request).await
    }

    async fn on_dead(&self, job: &JobContext, mention: Option<MentionJob>, error: &str) {
        let replier: Arc<dyn Replier> = self.replier.clone();
        let reply = mention.as_ref().map(|m| &m.reply);
        answer::deliver_dead(&Repliers::new([replier]), job, reply, error).await;
    }

    /// A thread answer has no deadline: an operator may end its wait (`replaydesk jobs cancel`).
    async fn on_cancel(
        &self,
        job: &JobContext,
        mention: Option<MentionJob>,
    ) -> Result<(), JobError> {
        let replier: Arc<dyn Replier> = self.replier.clone();
        let reply = mention.as_ref().map(|m| &m.reply);
        answer::deliver_cancelled(&Repliers::new([replier]), job, reply).await
    }
}
