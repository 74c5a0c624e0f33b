//! Erasure of one customer ("delete my data"), as a queued job.
//!
//! Steps, each a ledgered effect (done once, never repeated by a retry):
//! 1. FullStory: the email's sessions give the FullStory user ids (`userId`); each user is read
//!    (`GET /v2/users/{id}`) for its `uid`, then deleted (`DELETE /v2/users?uid=…`, or by id when it has no
//!    uid). A user already gone (404) counts as deleted. Deletion runs in the background at FullStory.
//! 2. Heap, when `heap.*` is configured: a deletion request; its `deletion_request_id` is kept.
//! 3. Our cache: the customer's session lists, events and summaries are dropped, so the next lookup
//!    reaches FullStory again; the erasure is announced to every other replica, which drops its own
//!    copy ([`super::broadcast`]).
//! 4. Our store: every job payload and error mentioning the email is replaced by `null`, this job's own
//!    payload included (the last step: after it, the job has nothing left to retry with).
//!
//! Any failing step fails the attempt; the queue retries it, and the receipt says what is still pending.
//! The receipt is read back from the effect ledger ([`ErasureReceipt::of_job`]).

use std::{collections::BTreeSet, sync::Arc};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::heap::Heap;
use crate::{
    app::App,
    fullstory::{FsError, SessionsApi},
    identity::{CustomerEmail, Identity},
    jobs::Requester,
    queue::{Effect, JobContext, JobError, JobHandler},
    store::{EffectState, NewJob, Store},
};

pub const ERASE: &str = "privacy.erase";

/// "Delete everything about this customer."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureJob {
    pub email: CustomerEmail,
    pub requester: Requester,
}

impl ErasureJob {
    pub fn to_new_job(&self) -> anyhow::Result<NewJob> {
        Ok(NewJob::new(ERASE, serde_json::to_value(self)?))
    }
}

/// Runs [`ErasureJob`]s.
pub struct EraseHandler {
    pub app: Arc<App>,
    pub heap: Option<Arc<Heap>>,
}

/// An effect whose action is idempotent upstream, so a retry after a crash may simply do it again.
struct Idempotent<F>(F);

#[async_trait]
impl<F, Fut> Effect for Idempotent<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: std::future::Future<Output = anyhow::Result<String>> + Send,
{
    async fn find_existing(&self, _marker: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }

    async fn perform(&self, _marker: &str) -> anyhow::Result<String> {
        (self.0)().await
    }
}

/// A short, stable effect name for one FullStory user (`fs-` + 12 hex digits).
fn user_effect_name(user_id: &str) -> String {
    let digest = crate::adapters::signing::hmac_sha256(b"fullstory-user", &[user_id.as_bytes()]);
    format!("fs-{}", &hex::encode(digest)[..12])
}

fn retry(error: impl Into<anyhow::Error>) -> JobError {
    JobError::Retry(error.into())
}

impl EraseHandler {
    async fn delete_fullstory_user(&self, user_id: &str) -> anyhow::Result<String> {
        let uid = match self.app.fullstory.get_user(user_id).await {
            Ok(user) => user.uid,
            Err(FsError::NotFound { .. }) => {
                return Ok(format!("fullstory user {user_id}: already gone"));
            }
            Err(e) => return Err(e.into()),
        };
        let deleted = match &uid {
            Some(uid) => self.app.fullstory.delete_user_by_uid(uid).await,
            None => self.app.fullstory.delete_user_by_id(user_id).await,
        };
        match deleted {
            Ok(()) | Err(FsError::NotFound { .. }) => {
                Ok(format!("fullstory user {user_id}: deletion requested"))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl JobHandler for EraseHandler {
    fn kind(&self) -> &'static str {
        ERASE
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let payload: ErasureJob = job.payload_as()?;
        let who = Identity::Email(payload.email.clone());

        // 1. FullStory: straight to the client, not the cache (which may be stale by a minute).
        let sessions = self
            .app
            .fullstory
            .list_sessions(&who, 100)
            .await
            .map_err(retry)?;
        let users: BTreeSet<String> = sessions
            .sessions
            .iter()
            .filter_map(|s| s.user_id.clone())
            .collect();
        for user in &users {
            let effect = Idempotent(|| self.delete_fullstory_user(user));
            job.effects()
                .once(&user_effect_name(user), &effect)
                .await
                .map_err(retry)?;
        }

        // 2. Heap.
        if let Some(heap) = &self.heap {
            let email = payload.email.as_str();
            let effect = Idempotent(|| async move {
                heap.delete_user(email)
                    .await
                    .map(|id| format!("heap deletion request {id}"))
            });
            job.effects().once("heap", &effect).await.map_err(retry)?;
        }

        // 3. Our cache, and every other replica's (told through the store, by the keyed hash).
        self.app.sessions.invalidate(&who);
        let ids: Vec<_> = sessions.sessions.iter().map(|s| s.id.clone()).collect();
        self.app.sessions.forget_sessions(&ids).await;
        let announcement = super::broadcast::Announcement::new(self.app.auditor.hash(&who), &ids);
        self.app
            .store
            .announce_erasure(&announcement.to_payload())
            .await
            .map_err(retry)?;

        // 4. Our store, this job's own payload included; then the audit (a hash, never the email).
        let now = self.app.clock.now();
        let scrubbed = self
            .app
            .store
            .scrub_payloads_containing(payload.email.as_str(), now)
            .await
            .map_err(retry)?;
        self.app
            .auditor
            .record(
                now,
                "erasure",
                &payload.requester,
                &[who],
                0,
                Some(format!(
                    "{} FullStory user(s), heap: {}, {scrubbed} stored job(s) scrubbed",
                    users.len(),
                    if self.heap.is_some() {
                        "requested"
                    } else {
                        "not configured"
                    }
                )),
            )
            .await;
        tracing::info!(fullstory_users = users.len(), scrubbed, "erasure done");
        Ok(())
    }
}

/// What an erasure did, from its job's ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErasureReceipt {
    pub job_id: i64,
    /// `done`, `pending` (will be retried), `dead`.
    pub status: String,
    pub done: Vec<String>,
    pub pending: Vec<String>,
    pub last_error: Option<String>,
}

impl ErasureReceipt {
    pub async fn of_job(store: &Arc<dyn Store>, job_id: i64) -> anyhow::Result<Self> {
        let job = store
            .get_job(job_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no job {job_id}"))?;
        let mut receipt = ErasureReceipt {
            job_id,
            status: match job.state.as_str() {
                "done" => "done",
                "dead" => "dead",
                _ => "pending",
            }
            .to_owned(),
            last_error: job.last_error.clone(),
            ..Self::default()
        };
        for effect in store.effects_for_job(job_id).await? {
            match (effect.state, effect.external_id) {
                (EffectState::Done, Some(id)) => receipt.done.push(id),
                _ => receipt.pending.push(effect.name),
            }
        }
        if receipt.status == "done" {
            receipt
                .done
                .push("replaydesk cache and stored payloads: cleared".into());
        } else {
            receipt
                .pending
                .push("replaydesk cache and stored payloads (cleared last)".into());
        }
        Ok(receipt)
    }
}
