//! Erasure of one customer ("delete my data"), as a queued job.
//!
//! Steps, each a ledgered effect (done once, never repeated by a retry):
//! 0. The address is remembered as erased ([`crate::privacy::Tombstones`], its keyed hash, for
//!    `privacy.tombstone_days`): from now on a lookup of it is answered "this customer asked to be
//!    forgotten" and reaches nothing (idempotent: a retry only extends it).
//! 1. FullStory: the users behind the email come from FullStory's user list by email
//!    (`GET /v2/users?email=…`, when the account's API has it: a 404 there means "not available") and
//!    from the email's sessions (`userId`, read with `GET /v2/users/{id}` for its `uid`). Each user with
//!    a `uid` is deleted (`DELETE /v2/users?uid=…`, the one deletion the seed API describes; a user
//!    already gone, 404, counts as deleted; deletion runs in the background at FullStory). Every other
//!    outcome is named for what it is, never as a deletion:
//!    - a user without a `uid`, or sessions whose user cannot be found: **needs a person**, with the
//!      manual path (FullStory: the user's page → delete the user), and the erasure is not "done";
//!    - no session and no user for the email: "no user found for this email; nothing deleted there".
//! 2. Heap, when `heap.*` is configured: a deletion request; its `deletion_request_id` is kept.
//!    Then the trackers ([`crate::escalate`]): the links replaydesk added to issues escalated about the
//!    customer are removed; each issue replaydesk made is listed as **needs a person** ("LIN-123: by
//!    hand"), since its description mentions the customer.
//! 3. Our cache: the customer's session lists, events and summaries are dropped, so the next lookup
//!    reaches FullStory again; the erasure is announced to every other replica, which drops its own
//!    copy ([`super::broadcast`]).
//! 4. Our store: every job payload and error mentioning the email is replaced by `null`; this job's own
//!    payload last (after it, the job has nothing left to retry with).
//!
//! Any failing step fails the attempt; the queue retries it, and the receipt says what is still pending.
//! The receipt is read back from the effect ledger ([`ErasureReceipt::of_job`]): the command line prints
//! it, and a job that came with a [`ReplyTo`] (the Slack confirmation, the Zendesk ticket) delivers it
//! there through that platform's [`crate::answer::Replier`] as [`Answer::Erasure`]:
//! - after the first failed attempt, "pending" (what is done, what is not, the last error), once;
//! - when every step but the last is done, "done": sent *before* this job's own payload is scrubbed,
//!   because that payload is where the reply address lives. A receipt that cannot be sent yet retries the
//!   job (the steps are ledgered, so nothing upstream is repeated), except on the last attempt, where the
//!   scrub goes first: an erasure is never left holding the email for the sake of its receipt;
//! - when the queue gives up, "not finished", with the job to replay.
//!
//! A pending erasure is never reported as done: "done" is only ever built after steps 1–3 and the scrub
//! of every other payload have succeeded in this attempt.

use std::{collections::BTreeSet, sync::Arc};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::heap::Heap;
use crate::{
    answer::{Answer, Repliers, ReplyTo},
    app::App,
    fullstory::{FullStoryError, SessionsApi},
    identity::{CustomerEmail, Identity},
    privacy::Requester,
    queue::{Idempotent, Job, JobContext, JobError, RunJob},
    store::EffectState,
};

/// "Delete everything about this customer."
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErasureJob {
    pub email: CustomerEmail,
    pub requester: Requester,
    /// Where the receipt goes; `None` for the command line, which reads it from the ledger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyTo>,
}

impl Job for ErasureJob {
    const KIND: &'static str = "privacy.erase";
}

/// Runs [`ErasureJob`]s.
pub struct EraseHandler {
    pub app: Arc<App>,
    pub heap: Option<Arc<Heap>>,
    /// The trackers escalations went to: the links replaydesk made there for the customer are removed.
    pub trackers: crate::escalate::Trackers,
    /// Who delivers receipts, by platform.
    pub repliers: Repliers,
}

// The ledger names of the steps live beside the receipt that reads them back ([`ErasureReceipt`]).
use crate::escalate::{Issue, Tracker};
use crate::privacy::{
    ESCALATION_STEP, ErasureReceipt, FULLSTORY_STEP, HEAP_STEP, MANUAL_STEP, SHOWN_STEP,
};

/// How a FullStory user is deleted by hand, in FullStory's own words (its help page "Can I delete
/// sessions?": "Delete a user via Fullstory application").
const FULLSTORY_BY_HAND: &str = "delete the user by hand in FullStory (open one of the user's \
     sessions, the user card's menu → Delete user; FullStory's help: \"Delete a user via Fullstory \
     application\")";

/// What the FullStory step found to do for one email.
#[derive(Debug, Default, PartialEq, Eq)]
struct FullStoryPlan {
    /// FullStory user id → uid (the seed API deletes by uid only).
    by_uid: std::collections::BTreeMap<String, String>,
    /// FullStory user ids without a uid: a person deletes them.
    without_uid: BTreeSet<String>,
    /// Sessions were found but no user behind them.
    orphan_sessions: usize,
    /// Users an earlier attempt of this job already dealt with (not read again).
    settled: BTreeSet<String>,
}

/// A short, stable effect name for one FullStory user (`fs-` + 12 hex digits).
fn user_effect_name(user_id: &str) -> String {
    let digest = crate::signing::hmac_sha256(b"fullstory-user", &[user_id.as_bytes()]);
    format!("{FULLSTORY_STEP}{}", &hex::encode(digest)[..12])
}

fn retry(error: impl Into<anyhow::Error>) -> JobError {
    JobError::Retry(error.into())
}

impl EraseHandler {
    /// Who to delete at FullStory for `email`: the users its list by email names (when available) and
    /// the users behind its sessions, each with its uid when it has one.
    async fn fullstory_plan(
        &self,
        job: &JobContext,
        email: &CustomerEmail,
        sessions: &crate::fullstory::SessionList,
    ) -> anyhow::Result<FullStoryPlan> {
        let mut plan = FullStoryPlan::default();
        let settled: BTreeSet<String> = job
            .effects()
            .records()
            .await?
            .into_iter()
            .filter(|e| e.state == EffectState::Done)
            .map(|e| e.name)
            .collect();
        let listed = self.app.fullstory.users_by_email(email.as_str()).await?;
        for user in listed.iter().flatten() {
            // Only a record naming this very address: a list that ignored the filter (or a user
            // without an email) must never get someone else deleted.
            let same = user
                .email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.as_str()));
            if !same || user.id.is_empty() {
                continue;
            }
            match &user.uid {
                Some(uid) if !uid.is_empty() => {
                    plan.by_uid.insert(user.id.clone(), uid.clone());
                }
                _ => {
                    plan.without_uid.insert(user.id.clone());
                }
            }
        }
        for session in &sessions.sessions {
            let Some(id) = &session.user_id else {
                if plan.by_uid.is_empty() && plan.without_uid.is_empty() {
                    plan.orphan_sessions += 1;
                }
                continue;
            };
            if plan.by_uid.contains_key(id) || plan.without_uid.contains(id) {
                continue;
            }
            let name = user_effect_name(id);
            if settled.contains(&name) || settled.contains(&format!("{MANUAL_STEP}{name}")) {
                plan.settled.insert(id.clone());
                continue;
            }
            match self.app.fullstory.get_user(id).await {
                Ok(user) => match user.uid.filter(|u| !u.is_empty()) {
                    Some(uid) => {
                        plan.by_uid.insert(id.clone(), uid);
                    }
                    None => {
                        plan.without_uid.insert(id.clone());
                    }
                },
                // Already gone.
                Err(FullStoryError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !plan.by_uid.is_empty() || !plan.without_uid.is_empty() || !plan.settled.is_empty() {
            plan.orphan_sessions = 0;
        }
        Ok(plan)
    }

    async fn delete_fullstory_user(&self, user_id: &str, uid: &str) -> anyhow::Result<String> {
        match self.app.fullstory.delete_user_by_uid(uid).await {
            Ok(()) => Ok(format!("FullStory user {user_id}: deletion requested")),
            Err(FullStoryError::NotFound { .. }) => {
                Ok(format!("FullStory user {user_id}: already gone"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Step 1 as ledgered effects: one deletion per user with a uid, one "needs a person" line per
    /// user without, or the line that says nothing was found.
    async fn fullstory_step(&self, job: &JobContext, plan: &FullStoryPlan) -> anyhow::Result<()> {
        for (user, uid) in &plan.by_uid {
            let effect = Idempotent(|| self.delete_fullstory_user(user, uid));
            job.effects().once(&user_effect_name(user), &effect).await?;
        }
        for user in &plan.without_uid {
            let line = format!(
                "FullStory user {user} has no uid, and FullStory's API deletes users by uid: \
                 {FULLSTORY_BY_HAND}"
            );
            let effect = Idempotent(move || {
                let line = line.clone();
                async move { Ok(line) }
            });
            let name = format!("{MANUAL_STEP}{}", user_effect_name(user));
            job.effects().once(&name, &effect).await?;
        }
        if plan.orphan_sessions > 0 {
            let line = format!(
                "FullStory: {} session(s) found for this email, but no FullStory user to delete by: \
                 {FULLSTORY_BY_HAND}",
                plan.orphan_sessions
            );
            let effect = Idempotent(move || {
                let line = line.clone();
                async move { Ok(line) }
            });
            job.effects()
                .once(&format!("{MANUAL_STEP}fs-sessions"), &effect)
                .await?;
        } else if plan.by_uid.is_empty() && plan.without_uid.is_empty() && plan.settled.is_empty() {
            let effect = Idempotent(|| async {
                Ok("FullStory: no user found for this email; nothing deleted there".to_owned())
            });
            job.effects()
                .once(&format!("{FULLSTORY_STEP}none"), &effect)
                .await?;
        }
        Ok(())
    }
}

/// Places named in the receipt's "shown at" line, at most.
const MAX_PLACES_SHOWN: usize = 20;

impl EraseHandler {
    /// The receipt's line naming where replaydesk posted this customer's replays (from the audit
    /// trail, by the keyed hash: every answered lookup with sessions, its platform and place), or
    /// `None` when nowhere. Notes and messages stay on the platforms (Intercom's API cannot delete a
    /// note; a Zendesk note, a Slack or Discord message are the platform's): they hold the redacted
    /// address and replay links that stop working once FullStory deleted the user; a person removes
    /// them when the customer asks for that too.
    async fn shown_at(&self, who: &Identity) -> anyhow::Result<Option<String>> {
        let hash = self.app.auditor.hash(who);
        let records = self.app.store.audit(None, Some(&hash), 1_000).await?;
        let places: BTreeSet<String> = records
            .iter()
            // A lookup answered on a platform with sessions; the command line prints to a terminal.
            .filter(|r| r.action == "lookup" && r.sessions > 0 && r.platform != "cli")
            .filter(|r| r.identities.contains(&hash))
            .map(|r| match &r.place {
                Some(place) => format!("{} {place}", r.platform),
                None => format!("{} {}", r.platform, r.tenant),
            })
            .collect();
        if places.is_empty() {
            return Ok(None);
        }
        let more = places.len().saturating_sub(MAX_PLACES_SHOWN);
        let mut named: Vec<String> = places.into_iter().take(MAX_PLACES_SHOWN).collect();
        if more > 0 {
            named.push(format!("and {more} more (`replaydesk audit --identity`)"));
        }
        Ok(Some(format!(
            "replay links for this customer were posted at: {}. Those notes and messages stay \
             there (redacted address; the links stop working once FullStory deleted the user): \
             remove them in each tool if the customer asks for that too",
            named.join(", ")
        )))
    }

    /// Step 2b: for each escalation about the customer ([`crate::escalate`]), the link replaydesk
    /// added to the issue (a Linear attachment, a Jira remote link) is removed; an issue replaydesk made
    /// has a description that mentions the customer (masked, or in full with
    /// `escalate.include_email`), which replaydesk does not rewrite: a person edits it ("LIN-123: by
    /// hand"). A tracker no longer configured here leaves its link to a person too.
    async fn escalation_step(&self, job: &JobContext, who: &Identity) -> anyhow::Result<()> {
        let escalations = self
            .app
            .store
            .escalations_of_customer(&self.app.auditor.hash(who))
            .await?;
        for row in escalations {
            let (Some(id), Some(key), Some(url)) = (&row.issue_id, &row.issue_key, &row.issue_url)
            else {
                continue;
            };
            let issue = Issue {
                id: id.clone(),
                key: key.clone(),
                url: url.clone(),
            };
            let short: String = row.tag.chars().take(12).collect();
            let tracker = Tracker::parse(&row.tracker);
            let name = tracker.map_or("tracker", Tracker::title);
            if let (Some(link_id), None) = (&row.link_id, row.unlinked_at) {
                match tracker.and_then(|t| self.trackers.get(t)) {
                    Some(client) => {
                        let effect = Idempotent(|| async {
                            client.unlink(&issue, link_id).await?;
                            Ok(format!(
                                "{name} {key}: replaydesk's link to the session removed"
                            ))
                        });
                        job.effects()
                            .once(&format!("{ESCALATION_STEP}{short}"), &effect)
                            .await?;
                        self.app
                            .store
                            .mark_escalation_unlinked(
                                &row.source,
                                &row.session,
                                self.app.clock.now(),
                            )
                            .await?;
                    }
                    None => {
                        let line = format!(
                            "{key}: by hand: remove replaydesk's link to the session ({name} is not \
                             configured here) {url}"
                        );
                        self.manual(
                            job,
                            &format!("{MANUAL_STEP}{ESCALATION_STEP}l{short}"),
                            line,
                        )
                        .await?;
                    }
                }
            }
            if row.created {
                let line = format!(
                    "{key}: by hand: the {name} issue replaydesk made mentions this customer in its \
                     description {url}"
                );
                self.manual(job, &format!("{MANUAL_STEP}{ESCALATION_STEP}{short}"), line)
                    .await?;
            }
        }
        Ok(())
    }

    /// A step a person must do, said once in the receipt.
    async fn manual(&self, job: &JobContext, name: &str, line: String) -> anyhow::Result<()> {
        let effect = Idempotent(move || {
            let line = line.clone();
            async move { Ok(line) }
        });
        job.effects().once(name, &effect).await?;
        Ok(())
    }

    /// Steps 1–3; the FullStory users found.
    async fn upstream_steps(
        &self,
        job: &JobContext,
        payload: &ErasureJob,
    ) -> anyhow::Result<BTreeSet<String>> {
        let who = Identity::Email(payload.email.clone());
        // 1. FullStory: straight to the client, not the cache (which may be stale by a minute).
        let sessions = self.app.fullstory.list_sessions(&who, 100).await?;
        let plan = self.fullstory_plan(job, &payload.email, &sessions).await?;
        self.fullstory_step(job, &plan).await?;
        let users: BTreeSet<String> = plan
            .by_uid
            .keys()
            .chain(&plan.without_uid)
            .chain(&plan.settled)
            .cloned()
            .collect();

        // 2. Heap.
        if let Some(heap) = &self.heap {
            let email = payload.email.as_str();
            let effect = Idempotent(|| async move {
                heap.delete_user(email)
                    .await
                    .map(|id| format!("heap deletion request {id}"))
            });
            job.effects().once(HEAP_STEP, &effect).await?;
        }

        // 2b. The trackers: the links replaydesk added to issues for this customer.
        self.escalation_step(job, &who).await?;

        // 3. Our cache, and every other replica's (told through the store, by the keyed hash).
        self.app.sessions.invalidate(&who);
        let ids: Vec<_> = sessions.sessions.iter().map(|s| s.id.clone()).collect();
        self.app.sessions.forget_sessions(&ids).await;
        // What every replica shares of these sessions (their events and summaries, kept in the store).
        let names: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        self.app.store.drop_session_data(&names).await?;
        let announcement = super::broadcast::Announcement::new(self.app.auditor.hash(&who), &ids);
        self.app
            .store
            .announce_erasure(&announcement.to_payload())
            .await?;

        // Where replaydesk showed this customer's replays: named, not deleted.
        if let Some(line) = self.shown_at(&who).await? {
            let effect = Idempotent(move || {
                let line = line.clone();
                async move { Ok(line) }
            });
            job.effects().once(SHOWN_STEP, &effect).await?;
        }
        Ok(users)
    }

    /// The receipt of this job as it stands, with `status`; a configured step not yet reached is
    /// listed as pending too.
    async fn receipt(
        &self,
        job: &JobContext,
        status: &str,
        last_error: Option<String>,
    ) -> anyhow::Result<ErasureReceipt> {
        let records = job.effects().records().await?;
        let mut receipt = ErasureReceipt::from_ledger(job.id(), status, last_error, records);
        if status != "done" && self.heap.is_some() {
            let reached = receipt.done.iter().any(|d| d.starts_with("heap "))
                || receipt.pending.iter().any(|p| p == HEAP_STEP);
            if !reached {
                receipt.pending.insert(0, HEAP_STEP.to_owned());
            }
        }
        Ok(receipt)
    }

    /// The last scrub, of this job's own payload, after its "done" receipt went out (it needed the
    /// reply address). A store that refuses it is asked again in place a few times before the attempt
    /// fails: once "done" was said, only a store refusing every attempt can make the queue's final
    /// "not finished" receipt follow it, and that later receipt is then the true one.
    async fn scrub_own_payload(
        &self,
        job: &JobContext,
        email: &CustomerEmail,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<u64> {
        let mut wait = std::time::Duration::from_millis(200);
        let mut tries = 1;
        loop {
            match self
                .app
                .store
                .scrub_payloads_mentioning(email, ErasureJob::KIND, Some(job.id()), now)
                .await
            {
                Ok(n) => return Ok(n),
                Err(error) if tries < 5 => {
                    tracing::warn!(error = %format!("{error:#}"), "scrubbing the erasure's own payload failed; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    tries += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Sends `receipt` where the job says, when it says anywhere.
    async fn deliver(
        &self,
        job: &JobContext,
        payload: &ErasureJob,
        receipt: &ErasureReceipt,
    ) -> Result<(), JobError> {
        let Some(reply) = &payload.reply else {
            return Ok(());
        };
        let answer = Answer::Erasure {
            email: &payload.email,
            receipt,
        };
        self.repliers.bind(reply)?.deliver(job, answer).await
    }

    /// A failed attempt: told once (the first time) as "pending", then retried by the queue.
    async fn not_yet(
        &self,
        job: &JobContext,
        payload: &ErasureJob,
        error: anyhow::Error,
    ) -> Result<(), JobError> {
        if job.attempt() == 1 && !job.is_last_attempt() && payload.reply.is_some() {
            let told = match self
                .receipt(job, "pending", Some(format!("{error:#}")))
                .await
            {
                Ok(receipt) => self.deliver(job, payload, &receipt).await,
                Err(e) => Err(JobError::Retry(e)),
            };
            if let Err(e) = told {
                tracing::warn!(error = %e, "could not send the pending erasure's receipt");
            }
        }
        Err(JobError::Retry(error))
    }
}

#[async_trait]
impl RunJob for EraseHandler {
    type Job = ErasureJob;

    async fn run(&self, job: &JobContext, payload: ErasureJob) -> Result<(), JobError> {
        // 0. Remembered first, so a lookup arriving while this runs is already answered "forgotten".
        if let Err(error) = self.app.tombstones.bury(&payload.email).await {
            return self.not_yet(job, &payload, error).await;
        }
        let users = match self.upstream_steps(job, &payload).await {
            Ok(users) => users,
            Err(error) => return self.not_yet(job, &payload, error).await,
        };

        // 4. Our store: every other payload first (never another erasure's: it still has to run); this
        // one after the receipt, which needs its reply address.
        let email = &payload.email;
        let now = self.app.clock.now();
        let keep_own = payload.reply.is_some();
        let own_now = (!keep_own).then(|| job.id());
        let mut scrubbed = match self
            .app
            .store
            .scrub_payloads_mentioning(email, ErasureJob::KIND, own_now, now)
            .await
        {
            Ok(n) => n,
            Err(error) => return self.not_yet(job, &payload, error).await,
        };
        if keep_own {
            let sent = match self.receipt(job, "done", None).await {
                Ok(receipt) => self.deliver(job, &payload, &receipt).await,
                Err(e) => Err(JobError::Retry(e)),
            };
            match sent {
                Ok(()) => {}
                Err(JobError::Retry(error)) if !job.is_last_attempt() => {
                    return Err(JobError::Retry(
                        error.context("sending the erasure's receipt"),
                    ));
                }
                Err(error) => {
                    tracing::warn!(%error, "the erasure is complete but its receipt could not be sent");
                }
            }
            scrubbed += self
                .scrub_own_payload(job, email, now)
                .await
                .map_err(retry)?;
        }
        // Nothing of the scrubbed rows left in the database's files (the WAL on SQLite).
        if let Err(error) = self.app.store.compact_after_erasure().await {
            tracing::warn!(error = %format!("{error:#}"), "could not compact the store after the erasure");
        }

        // The audit: a hash, never the email.
        self.app
            .auditor
            .record(
                now,
                "erasure",
                &payload.requester,
                &[Identity::Email(payload.email.clone())],
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

    /// An operator ended the erasure while it waited: its requester gets the receipt as it stands,
    /// "cancelled" (never "done"); the steps already done stay done.
    async fn on_cancel(
        &self,
        job: &JobContext,
        payload: Option<ErasureJob>,
    ) -> Result<(), JobError> {
        let Some(payload) = payload.filter(|p| p.reply.is_some()) else {
            return Ok(());
        };
        let receipt = self
            .receipt(job, "cancelled", None)
            .await
            .map_err(JobError::Retry)?;
        self.deliver(job, &payload, &receipt).await
    }

    async fn on_dead(&self, job: &JobContext, payload: Option<ErasureJob>, error: &str) {
        let Some(payload) = payload.filter(|p| p.reply.is_some()) else {
            return;
        };
        let told = match self.receipt(job, "dead", Some(error.to_owned())).await {
            Ok(receipt) => self.deliver(job, &payload, &receipt).await,
            Err(e) => Err(JobError::Retry(e)),
        };
        if let Err(e) = told {
            tracing::warn!(error = %e, "could not send the failed erasure's receipt");
        }
    }
}
