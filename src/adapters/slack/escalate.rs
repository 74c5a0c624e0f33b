//! Escalate from Slack (issue 25): an **Escalate** button on a lookup's answer opens a modal (the
//! tracker when both are on, the title prefilled, an optional note, an optional existing issue's key);
//! submitting it records the shared escalation job ([`crate::escalate`]) and closes the modal; the
//! asker then gets the issue's key and link privately (`chat.postEphemeral`), "Already escalated: …"
//! when the same answer's session was escalated before, and an answer in a thread gets one reply there
//! with the issue (for everyone; once, when the issue was made or linked).
//!
//! Contract (docs.slack.dev: `views.open`, `view_submission`): a modal is opened with the click's
//! `trigger_id`, which Slack accepts for 3 seconds. No upstream is called before the click is
//! acknowledged: the click records a `slack.escalate_modal` job (durable, deduplicated on the
//! `trigger_id`) and a worker opens the modal. The modal carries where it came from in its
//! `private_metadata` (the lookup job, the session, the channel, the thread); the submission reads
//! the customer from that lookup job, only for the person who asked it in that workspace (like Share in
//! channel), and is deduplicated on the view's id.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{PLATFORM, api::SlackApi, reply::Target, wire::decode};
use crate::{
    adapters::inbound::Rejection,
    answer::LookupJob,
    app::AppState,
    escalate::{EscalateJob, Source, Tracker},
    fullstory::SessionId,
    privacy::Requester,
    queue::{Idempotent, Job, JobContext, JobError, RunJob},
    store::NewJob,
};

/// The modal's `callback_id`.
pub const MODAL: &str = "escalate";

/// What the modal carries back (`private_metadata`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    pub job: i64,
    #[serde(default)]
    pub session: Option<SessionId>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub thread_ts: Option<String>,
}

fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": text})
}

fn option(tracker: Tracker) -> Value {
    json!({"text": plain(tracker.title()), "value": tracker.as_str()})
}

/// An optional text input, its block and action named `name`, with `extra` element fields.
fn text_input(name: &str, label: &str, extra: Value) -> Value {
    let mut element = json!({"type": "plain_text_input", "action_id": name});
    if let (Some(element), Value::Object(extra)) = (element.as_object_mut(), extra) {
        element.extend(extra);
    }
    json!({"type": "input", "block_id": name, "optional": true, "label": plain(label), "element": element})
}

/// The modal: the tracker (a choice when both are on), the title (prefilled), a note, an existing
/// issue's key; Slack's limits kept (title 24, labels 2,000, `private_metadata` 3,000 characters).
pub fn modal(trackers: &[Tracker], title: &str, origin: &Origin) -> Value {
    let mut blocks = Vec::new();
    if trackers.len() > 1 {
        blocks.push(json!({
            "type": "input",
            "block_id": "tracker",
            "label": plain("Tracker"),
            "element": {
                "type": "static_select",
                "action_id": "tracker",
                "initial_option": option(trackers[0]),
                "options": trackers.iter().map(|t| option(*t)).collect::<Vec<_>>(),
            },
        }));
    }
    let title = crate::render::limits::cut(title, 150);
    blocks.push(text_input(
        "title",
        "Title",
        json!({"initial_value": title, "max_length": 254}),
    ));
    blocks.push(text_input(
        "note",
        "Note",
        json!({"multiline": true, "max_length": 2000}),
    ));
    let mut issue = text_input("issue", "Existing issue", json!({"max_length": 50}));
    issue["hint"] = plain("LIN-123 or SUP-42: links it instead of making a new one.");
    blocks.push(issue);
    let submit = match trackers {
        [one] => format!("Escalate to {}", one.title()),
        _ => "Escalate".to_owned(),
    };
    json!({
        "type": "modal",
        "callback_id": MODAL,
        "title": plain("Escalate"),
        "submit": plain(&crate::render::limits::cut(&submit, 24)),
        "close": plain("Cancel"),
        "private_metadata": serde_json::to_string(origin).unwrap_or_default(),
        "blocks": blocks,
    })
}

/// "Open this modal" (the click's `trigger_id` lives 3 seconds: a worker opens it at once).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModalJob {
    pub trigger_id: String,
    pub view: Value,
}

impl Job for ModalJob {
    const KIND: &'static str = "slack.escalate_modal";
}

/// Runs [`ModalJob`]s: `views.open`, once.
pub struct ModalHandler {
    pub api: Arc<SlackApi>,
}

#[async_trait]
impl RunJob for ModalHandler {
    type Job = ModalJob;

    async fn run(&self, job: &JobContext, modal: ModalJob) -> Result<(), JobError> {
        let open = Idempotent(|| async {
            self.api.open_view(&modal.trigger_id, &modal.view).await?;
            Ok("opened".to_owned())
        });
        job.effects()
            .once("modal", &open)
            .await
            .map(drop)
            // A trigger lives 3 seconds: a retry later would only be refused.
            .map_err(JobError::Permanent)
    }
}

/// The lookup job `id`, when it is a Slack lookup asked by `user` of `team`: what an answer's Share in
/// channel and Escalate buttons act on, for the person who asked it only.
pub async fn lookup_of(
    state: &AppState,
    id: i64,
    team: &str,
    user: &str,
) -> Result<Option<LookupJob>, Rejection> {
    let job = state.app.store.get_job(id).await.map_err(|error| {
        tracing::warn!(%error, job = id, "could not read the answer's job");
        Rejection::Unavailable
    })?;
    Ok(job
        .filter(|job| job.kind == LookupJob::KIND)
        .and_then(|job| serde_json::from_value::<LookupJob>(job.payload).ok())
        .filter(|lookup| {
            lookup.requester.platform == PLATFORM
                && lookup.requester.tenant == team
                && lookup.requester.user == user
        }))
}

/// A modal submission (`type: view_submission`).
#[derive(Debug, Deserialize)]
pub struct Submission {
    pub user: SubmittingUser,
    pub view: View,
}

#[derive(Debug, Deserialize)]
pub struct SubmittingUser {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct View {
    pub id: String,
    #[serde(default)]
    pub callback_id: String,
    #[serde(default)]
    pub private_metadata: String,
    #[serde(default)]
    pub state: Value,
}

/// An input's value in the submitted view's state: a text input's `value`, a select's choice.
fn input(state: &Value, block: &str) -> Option<String> {
    let element = state.pointer(&format!("/values/{block}/{block}"))?;
    element
        .get("value")
        .or_else(|| element.pointer("/selected_option/value"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A submitted Escalate modal: the escalation job, recorded durably (keyed on the view), the modal
/// closed. Errors in the form come back to the modal (`response_action: errors`).
pub async fn submitted(state: &AppState, team: &str, payload: Value) -> Result<Value, Rejection> {
    let submission: Submission = decode(payload, "payload")?;
    let view = &submission.view;
    let origin: Origin = serde_json::from_str(&view.private_metadata)
        .map_err(|_| Rejection::Malformed("payload.view.private_metadata: invalid value".into()))?;
    let on: Vec<Tracker> = Tracker::ALL
        .into_iter()
        .filter(|t| t.enabled(&state.config))
        .collect();
    let values = &view.state;
    let tracker = match input(values, "tracker") {
        Some(name) => Tracker::parse(&name).filter(|t| on.contains(t)),
        None => on.first().copied(),
    };
    let Some(tracker) = tracker else {
        return Ok(
            json!({"response_action": "errors", "errors": {"title": "No tracker is configured here."}}),
        );
    };
    let user = &submission.user.id;
    let Some(lookup) = lookup_of(state, origin.job, team, user).await? else {
        return Ok(json!({"response_action": "errors", "errors": {
            "title": "This answer is gone (or is someone else's): look the customer up again."
        }}));
    };
    let Some(customer) = lookup.identities.iter().find_map(|i| i.as_email()).cloned() else {
        return Ok(json!({"response_action": "errors", "errors": {
            "title": "This answer names no customer email address to escalate."
        }}));
    };
    let channel = origin.channel.clone().unwrap_or_default();
    let place = origin
        .thread_ts
        .clone()
        .unwrap_or_else(|| format!("answer {}", origin.job));
    let source = Source {
        key: format!("{PLATFORM}:{team}:{channel}:{place}"),
        label: format!("a Slack answer in channel {channel}"),
        url: None,
    };
    let requester = Requester {
        platform: PLATFORM.into(),
        tenant: team.to_owned(),
        user: user.clone(),
        place: Some(channel.clone()),
    };
    let mut job = EscalateJob::new(customer, tracker, source, origin.session.clone(), requester);
    job.around = lookup.around;
    job.title = input(values, "title");
    job.note = input(values, "note");
    job.existing = input(values, "issue");
    job.requester_name = submission
        .user
        .name
        .clone()
        .or_else(|| submission.user.username.clone());
    job.record = origin.thread_ts.clone().map(|thread_ts| {
        Target::Thread {
            channel: channel.clone(),
            thread_ts,
            user: None,
            response_url: None,
        }
        .reply_to()
    });
    job.reply = Some(
        Target::Ephemeral {
            channel,
            user: user.clone(),
            thread_ts: origin.thread_ts.clone(),
        }
        .reply_to(),
    );
    let new_job = NewJob::of(&job).map_err(|_| Rejection::Unavailable)?;
    crate::adapters::inbound::accept(state, PLATFORM, &format!("view:{}", view.id), new_job)
        .await?;
    Ok(Value::Null)
}
