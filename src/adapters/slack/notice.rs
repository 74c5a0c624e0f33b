//! `slack.notice`: a short private line for requests that cannot be answered in the HTTP response (a
//! shortcut or mention from someone not allowed, a shortcut on a message naming nobody). Posting it is
//! a job so it is durable, deduplicated on the request's key and posted once through the ledger; no
//! lookup is enqueued and FullStory is not called.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    render,
    reply::{SlackReplier, Target},
};
use crate::{
    answer::ReplyTo,
    queue::{Job, JobContext, JobError, RunJob},
};

/// "Tell them this."
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoticeJob {
    pub text: String,
    pub reply: ReplyTo,
}

impl Job for NoticeJob {
    const KIND: &'static str = "slack.notice";
}

/// Runs [`NoticeJob`]s.
pub struct NoticeHandler {
    pub replier: Arc<SlackReplier>,
}

#[async_trait]
impl RunJob for NoticeHandler {
    type Job = NoticeJob;

    async fn run(&self, job: &JobContext, notice: NoticeJob) -> Result<(), JobError> {
        let target = notice.reply.target::<Target>()?;
        self.replier
            .post(job, "notice", &target, render::notice(&notice.text))
            .await
    }
}
