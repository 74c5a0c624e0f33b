//! The `escalate` job: one escalation, run by a worker after the asker's request was stored (see the
//! module docs of [`super`] for once-ness and adversity).
//!
//! Steps:
//! 1. The customer's sessions are looked up (the core's lookup, with the digest, what went wrong, and
//!    the summary when summaries are configured): the session escalated is the one the surface named,
//!    else the likely one. A customer who asked to be forgotten is not escalated.
//! 2. The (source, session) row is taken ([`crate::store::SqlStore::begin_escalation`]). Another job's
//!    finished row: "already escalated: LIN-123". Another job's unfinished row: this job waits for it
//!    ([`JobError::Later`], the attempt not counted) and then answers the same; a row whose owner ended
//!    without finishing is taken over.
//! 3. The issue: the one recorded, else the existing one asked for (`--issue`), else a new one made
//!    through the effect ledger ([`CreateIssue`]), recorded at once.
//! 4. The link back to the session (else to the source), idempotent on both trackers; the row is done.
//! 5. The audit entry (who, the customer's keyed hash, tracker, issue), then the answer
//!    ([`Answer::Escalated`]) where the job says, and the outcome in the ledger (`outcome`), which the
//!    command line reads back.
//!
//! A tracker that is down or rate limiting makes the job wait for it ([`JobError::Wait`] on its
//! upstream: no attempt spent), the asker told once; a refusal is told in the tracker's words ("Linear
//! refused: team not found") and ends the job.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Issue, IssueTracker, Link, Report, Tag, Tracker, TrackerError, Trackers, text};
use crate::{
    answer::{Answer, Escalated, Repliers, ReplyTo, deliver_cancelled, deliver_dead, reference},
    app::App,
    fullstory::SessionId,
    identity::{CustomerEmail, Identity},
    lookup::{FoundSession, LookupResult},
    privacy::Requester,
    queue::{Effect, Idempotent, Job, JobContext, JobError, RunJob},
    store::NewEscalation,
};

/// Where an escalation was asked from: the ticket, thread or message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Stable across asks of the same place (the once key, with the session):
    /// `zendesk:<account>:ticket:<id>`, `slack:<team>:<channel>:<ts>`, `discord:<channel>:<message>`,
    /// `url:<link>` (the command line's `--source`).
    pub key: String,
    /// In words, for the issue: "Zendesk ticket #35437".
    pub label: String,
    /// A link a person can open (the ticket, the message's permalink).
    #[serde(default)]
    pub url: Option<String>,
}

/// "Escalate this customer's session to a tracker."
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EscalateJob {
    pub customer: CustomerEmail,
    pub tracker: Tracker,
    pub source: Source,
    /// The session, when the surface names one (a preview of a replay link); else the likely one.
    #[serde(default)]
    pub session: Option<SessionId>,
    /// The moment in question (the ticket's or message's time): decides the likely session.
    #[serde(default)]
    pub around: Option<DateTime<Utc>>,
    #[serde(default)]
    pub title: Option<String>,
    /// The agent's note, added to the description.
    #[serde(default)]
    pub note: Option<String>,
    /// An existing issue's key to link instead of making one (`LIN-123`, `SUP-42`).
    #[serde(default)]
    pub existing: Option<String>,
    pub requester: Requester,
    /// The asker's name on their platform (never their email), for the issue.
    #[serde(default)]
    pub requester_name: Option<String>,
    /// Where the answer goes; `None` for the command line, which reads the ledger's `outcome`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyTo>,
    /// Where the issue is also noted, once, for everyone (the Slack thread the answer was in), when
    /// it was made or linked by this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<ReplyTo>,
}

impl Job for EscalateJob {
    const KIND: &'static str = "escalate";
}

impl EscalateJob {
    /// The shared entry point of every surface (Slack, Zendesk, Discord, the command line, and
    /// Intercom's button): escalate `customer`'s session (`session`, else the likely one) from `source`
    /// to `tracker`, asked by `requester`. Set the optional fields, then enqueue it with the request
    /// (`inbound::accept` or [`crate::queue::Queue::push`]) before acknowledging.
    pub fn new(
        customer: CustomerEmail,
        tracker: Tracker,
        source: Source,
        session: Option<SessionId>,
        requester: Requester,
    ) -> Self {
        Self {
            customer,
            tracker,
            source,
            session,
            around: None,
            title: None,
            note: None,
            existing: None,
            requester,
            requester_name: None,
            reply: None,
            record: None,
        }
    }
}

/// How a job's escalation ended, as the ledger keeps it for the command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Escalated(Escalated),
    /// Not escalated, and why (a tracker's refusal, a forgotten customer).
    NotEscalated {
        message: String,
    },
}

/// The ledger name of a job's outcome.
pub const OUTCOME: &str = "outcome";

/// Runs [`EscalateJob`]s.
pub struct EscalateHandler {
    pub app: Arc<App>,
    pub trackers: Trackers,
    pub repliers: Repliers,
}

/// Making the issue, as the ledger sees it: after an unknown outcome (an intent without a result, or a
/// row taken over from a job that ended), the tracker is searched for the tag first.
struct CreateIssue<'a> {
    tracker: &'a dyn IssueTracker,
    tag: &'a Tag,
    report: &'a Report,
    search_first: bool,
}

#[async_trait]
impl Effect for CreateIssue<'_> {
    async fn find_existing(&self, _marker: &str) -> anyhow::Result<Option<String>> {
        let found = self.tracker.find(self.tag).await?;
        Ok(found
            .map(|issue| serde_json::to_string(&issue))
            .transpose()?)
    }

    async fn perform(&self, marker: &str) -> anyhow::Result<String> {
        if self.search_first
            && let Some(found) = self.find_existing(marker).await?
        {
            return Ok(found);
        }
        let issue = self.tracker.create(self.tag, self.report).await?;
        Ok(serde_json::to_string(&issue)?)
    }
}

/// The session escalated: the one named (when the lookup found it), else the likely one.
fn chosen<'a>(result: &'a LookupResult, named: Option<&SessionId>) -> Option<&'a FoundSession> {
    let group = result.identities.first()?;
    match named {
        Some(id) => group.sessions.iter().find(|s| &s.id == id),
        None => group.likely(),
    }
}

impl EscalateHandler {
    /// Tells the asker (when the job says where) and records the outcome for the command line.
    async fn answer(
        &self,
        job: &JobContext,
        payload: &EscalateJob,
        outcome: Outcome,
    ) -> Result<(), JobError> {
        if let Some(reply) = &payload.reply {
            let to = self.repliers.bind(reply)?;
            let answer = match &outcome {
                Outcome::Escalated(escalated) => Answer::Escalated { escalated },
                Outcome::NotEscalated { message } => Answer::Failed {
                    message: message.clone(),
                    reference: reference(job),
                },
            };
            to.deliver(job, answer).await?;
        }
        if let (Outcome::Escalated(escalated), Some(record)) = (&outcome, &payload.record)
            && !escalated.already
        {
            self.repliers
                .bind(record)?
                .deliver(job, Answer::Escalated { escalated })
                .await?;
        }
        let recorded = serde_json::to_string(&outcome).map_err(anyhow::Error::from)?;
        job.effects()
            .once(
                OUTCOME,
                &Idempotent(|| {
                    let recorded = recorded.clone();
                    async move { Ok(recorded) }
                }),
            )
            .await?;
        Ok(())
    }

    /// A tracker's failure: a passing one waits for the tracker (told once), a refusal is told and
    /// ends the job; anything else (the store) is retried.
    async fn on_error(
        &self,
        job: &JobContext,
        payload: &EscalateJob,
        tracker: &dyn IssueTracker,
        error: anyhow::Error,
    ) -> Result<(), JobError> {
        let Some(failure) = error.downcast_ref::<TrackerError>() else {
            return Err(JobError::Retry(error));
        };
        if failure.is_transient() {
            if job.waiting_on().is_none()
                && let Some(reply) = &payload.reply
            {
                let message = format!(
                    "{} is unavailable right now: replaydesk keeps trying, and the issue will \
                     follow here when it is back.",
                    tracker.tracker()
                );
                self.repliers
                    .bind(reply)?
                    .deliver(job, Answer::Delayed { message })
                    .await?;
            }
            let upstream = tracker.upstream();
            let wait = failure
                .retry_after()
                .unwrap_or_else(|| upstream.breaker().wait_hint(true));
            let until = self.app.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
            return Err(JobError::Wait {
                upstream: upstream.name(),
                until,
                error,
            });
        }
        let message = failure.to_string();
        tracing::warn!(error = %message, "the tracker refused the escalation");
        self.answer(job, payload, Outcome::NotEscalated { message })
            .await
    }
}

#[async_trait]
impl RunJob for EscalateHandler {
    type Job = EscalateJob;

    async fn run(&self, job: &JobContext, payload: EscalateJob) -> Result<(), JobError> {
        let Some(tracker) = self.trackers.get(payload.tracker) else {
            let message = format!(
                "{} is not configured here: ask your replaydesk admin to set [{}] (replaydesk check).",
                payload.tracker,
                payload.tracker.as_str()
            );
            return self
                .answer(job, &payload, Outcome::NotEscalated { message })
                .await;
        };
        let tracker = tracker.as_ref();
        let app = &self.app;
        let customer = Identity::Email(payload.customer.clone());

        // 1. What the issue is about.
        let mut request = app.lookup_request(vec![customer.clone()]);
        request.around = payload.around;
        // The digest unless the operator switched digests off (`fullstory.digest = false`).
        request.digest = app.config.fullstory.digest.answers_asks();
        request.summary = app.lookup.summaries_enabled();
        // An agent asked for this escalation: its digest and summary are spent from the FullStory
        // Activations kept for requests (and often cost none: the answer it came from fetched them).
        request.asked = crate::lookup::Asked {
            digest: request.digest,
            summary: request.summary,
        };
        let result = match app.lookup.run(&request).await {
            Ok(result) => result,
            Err(error) if error.is_transient() => {
                let wait = error
                    .retry_after()
                    .unwrap_or_else(|| app.fullstory.upstream().breaker().wait_hint(true));
                return Err(JobError::Wait {
                    upstream: app.fullstory.upstream().name(),
                    until: app.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                    error: anyhow::Error::new(error),
                });
            }
            Err(error) => {
                let message = crate::answer::user_message(&error);
                return self
                    .answer(job, &payload, Outcome::NotEscalated { message })
                    .await;
            }
        };
        if result.names_a_forgotten_customer() {
            let message = crate::render::forgotten(&customer);
            return self
                .answer(job, &payload, Outcome::NotEscalated { message })
                .await;
        }
        let session = chosen(&result, payload.session.as_ref());
        let session_key = session.map_or("", |s| s.id.as_str());
        let tag = Tag(app.auditor.hash_text(
            "escalation",
            &format!("{}\n{session_key}", payload.source.key),
        ));
        let source = payload.source.key.as_str();

        // 2. Once per source and session.
        let now = app.clock.now();
        let row = app
            .store
            .begin_escalation(
                &NewEscalation {
                    source,
                    session: session_key,
                    tracker: payload.tracker.as_str(),
                    job: job.id(),
                    customer_hash: &app.auditor.hash(&customer),
                    tag: &tag.0,
                },
                now,
            )
            .await?;
        let mut taken_over = false;
        if row.owner_job != job.id() {
            if row.is_done()
                && let (Some(id), Some(key), Some(url)) =
                    (&row.issue_id, &row.issue_key, &row.issue_url)
            {
                let escalated = Escalated {
                    tracker: Tracker::parse(&row.tracker)
                        .map_or_else(|| row.tracker.clone(), |t| t.title().to_owned()),
                    key: key.clone(),
                    url: url.clone(),
                    already: true,
                    linked: false,
                };
                tracing::info!(issue = %key, issue_id = %id, owner = row.owner_job, "already escalated");
                self.audit(job, &payload, &customer, &escalated, "already")
                    .await;
                return self
                    .answer(job, &payload, Outcome::Escalated(escalated))
                    .await;
            }
            let owner = app.store.get_job(row.owner_job).await?;
            let at_it = owner.as_ref().is_some_and(|o| {
                matches!(
                    o.state,
                    crate::store::JobState::Queued | crate::store::JobState::Running
                )
            });
            if at_it
                || !app
                    .store
                    .take_over_escalation(
                        source,
                        session_key,
                        row.owner_job,
                        job.id(),
                        payload.tracker.as_str(),
                        now,
                    )
                    .await?
            {
                return Err(JobError::Later {
                    after: std::time::Duration::from_secs(5),
                    reason: format!("job {} is escalating the same session", row.owner_job),
                });
            }
            taken_over = true;
        }

        // 3. The issue.
        let (issue, created) = match (&row.issue_id, &row.issue_key, &row.issue_url) {
            (Some(id), Some(key), Some(url)) => (
                Issue {
                    id: id.clone(),
                    key: key.clone(),
                    url: url.clone(),
                },
                row.created,
            ),
            _ => {
                let made = match &payload.existing {
                    Some(key) => tracker
                        .resolve(key)
                        .await
                        .map(|issue| (issue, false))
                        .map_err(anyhow::Error::from),
                    None => {
                        let report = self.report(&payload, &result, session);
                        let effect = CreateIssue {
                            tracker,
                            tag: &tag,
                            report: &report,
                            search_first: taken_over || row.issue_id.is_some(),
                        };
                        match job.effects().once("issue", &effect).await {
                            Ok(json) => serde_json::from_str::<Issue>(&json)
                                .map(|issue| (issue, true))
                                .map_err(anyhow::Error::from),
                            Err(error) => Err(error),
                        }
                    }
                };
                let (issue, created) = match made {
                    Ok(made) => made,
                    Err(error) => return self.on_error(job, &payload, tracker, error).await,
                };
                app.store
                    .record_escalation_issue(
                        source,
                        session_key,
                        job.id(),
                        (&issue.id, &issue.key, &issue.url),
                        created,
                        app.clock.now(),
                    )
                    .await?;
                (issue, created)
            }
        };

        // 4. The link back.
        let link = link_for(&payload, session, &result);
        let link_id = match &link {
            Some(link) => {
                let effect = Idempotent(|| async { Ok(tracker.link(&issue, &tag, link).await?) });
                match job.effects().once("link", &effect).await {
                    Ok(id) => Some(id),
                    Err(error) => return self.on_error(job, &payload, tracker, error).await,
                }
            }
            None => None,
        };
        app.store
            .finish_escalation(
                source,
                session_key,
                job.id(),
                link_id.as_deref(),
                app.clock.now(),
            )
            .await?;

        // 5. Audit, answer.
        let escalated = Escalated {
            tracker: payload.tracker.title().to_owned(),
            key: issue.key.clone(),
            url: issue.url.clone(),
            already: false,
            linked: !created,
        };
        tracing::info!(issue = %issue.key, tracker = payload.tracker.as_str(), created, "escalated");
        self.audit(
            job,
            &payload,
            &customer,
            &escalated,
            if created { "created" } else { "linked" },
        )
        .await;
        self.answer(job, &payload, Outcome::Escalated(escalated))
            .await
    }

    async fn on_dead(&self, job: &JobContext, payload: Option<EscalateJob>, error: &str) {
        let reply = payload.as_ref().and_then(|p| p.reply.as_ref());
        if reply.is_some() {
            deliver_dead(&self.repliers, job, reply, error).await;
        }
    }

    async fn on_cancel(
        &self,
        job: &JobContext,
        payload: Option<EscalateJob>,
    ) -> Result<(), JobError> {
        match payload.as_ref().and_then(|p| p.reply.as_ref()) {
            Some(reply) => deliver_cancelled(&self.repliers, job, Some(reply)).await,
            None => Ok(()),
        }
    }
}

impl EscalateHandler {
    /// The issue's text for this job.
    fn report(
        &self,
        payload: &EscalateJob,
        result: &LookupResult,
        session: Option<&FoundSession>,
    ) -> Report {
        let group = result.identities.first();
        // The digest and summary are the likely session's: only said of that one.
        let likely = session.is_some_and(|s| s.likely);
        let summary = group
            .and_then(|g| g.summary.as_ref())
            .and_then(|s| match s {
                crate::lookup::SummaryOutcome::Ready(text) => Some(text.as_str()),
                crate::lookup::SummaryOutcome::Unavailable(_) => None,
            })
            .filter(|_| likely);
        let by = match &payload.requester_name {
            Some(name) => format!("{name} ({})", platform_name(&payload.requester.platform)),
            None => format!(
                "{} user {} ({})",
                platform_name(&payload.requester.platform),
                payload.requester.user,
                payload.requester.tenant
            ),
        };
        Report::new(&text::Facts {
            customer: &payload.customer,
            include_email: self.app.config.escalate.include_email,
            session,
            likely_reason: likely.then(|| crate::render::likely_reason(result)),
            digest: group.and_then(|g| g.digest.as_ref()).filter(|_| likely),
            summary,
            source_label: &payload.source.label,
            source_url: payload.source.url.as_deref(),
            escalated_by: &by,
            note: payload.note.as_deref(),
            title: payload.title.as_deref(),
        })
    }

    async fn audit(
        &self,
        job: &JobContext,
        payload: &EscalateJob,
        customer: &Identity,
        escalated: &Escalated,
        how: &str,
    ) {
        self.app
            .auditor
            .record(
                self.app.clock.now(),
                "escalation",
                &payload.requester,
                std::slice::from_ref(customer),
                1,
                Some(format!(
                    "job {}: {} {} ({how}) from {}",
                    job.id(),
                    escalated.tracker,
                    escalated.key,
                    payload.source.key
                )),
            )
            .await;
    }
}

/// A platform's name as people write it.
fn platform_name(platform: &str) -> String {
    match platform {
        "slack" => "Slack".into(),
        "zendesk" => "Zendesk".into(),
        "discord" => "Discord".into(),
        "intercom" => "Intercom".into(),
        "cli" => "command line".into(),
        other => other.to_owned(),
    }
}

/// The issue's link back: the session's replay (with when the trouble started), else the source.
fn link_for(
    payload: &EscalateJob,
    session: Option<&FoundSession>,
    result: &LookupResult,
) -> Option<Link> {
    if let Some(session) = session
        && let Some(url) = crate::outbound::web_link(&session.url)
    {
        let digest = result
            .identities
            .first()
            .and_then(|g| g.digest.as_ref())
            .filter(|_| session.likely);
        return Some(Link {
            url: url.to_string(),
            title: "FullStory session replay".into(),
            subtitle: text::moment_line(digest, Some(session.created))
                .or_else(|| Some(format!("started {}", crate::render::utc(session.created)))),
        });
    }
    let url = crate::outbound::web_link(payload.source.url.as_deref()?)?;
    Some(Link {
        url: url.to_string(),
        title: crate::render::limits::cut(&payload.source.label, 200),
        subtitle: None,
    })
}
