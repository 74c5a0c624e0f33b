//! Fakes of upstreams that wiremock's matchers alone cannot play, shared by every test that needs one.
//!
//! [`FakeZendesk`] keeps state like the real API (tickets, comments, tags, `updated_at` checked by
//! `safe_update`), so a test asserts what a ticket ends up showing, not only what was sent. The harness
//! ([`super::helpers::TestApp`]) starts it for `.zendesk()` and points the configuration at it.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::path_regex};

/// The ticket every fake Zendesk starts with (jane's, naming bob in its description).
pub(crate) const TICKET: u64 = 35436;
/// When the fake's tickets were created; the Zendesk tests' clock starts at [`NOW`].
pub(crate) const CREATED: &str = "2026-11-20T14:10:00Z";
pub(crate) const NOW: &str = "2026-11-20T15:00:00Z";

pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

#[derive(Default)]
struct Ticket {
    subject: String,
    version: u32,
    requester_id: u64,
    /// Who may see it (the sidebar's access check): its group, organisation and assignee.
    group_id: Option<u64>,
    organization_id: Option<u64>,
    assignee_id: Option<u64>,
    comments: Vec<Value>,
    tags: Vec<String>,
}

impl Ticket {
    fn updated_at(&self) -> String {
        format!("2026-11-20T14:{:02}:00Z", 10 + self.version)
    }
}

/// What the fake holds, and the failures it was told to show.
#[derive(Default)]
pub(crate) struct ZdState {
    tickets: BTreeMap<u64, Ticket>,
    users: Vec<Value>,
    /// Each agent's groups (`GET /api/v2/users/{id}/group_memberships.json`).
    memberships: BTreeMap<u64, Vec<u64>>,
    next_id: u64,
    /// Note PUTs to refuse with 409 because "an agent" updated the ticket just before.
    pub(crate) conflicts: u32,
    /// Note PUTs to refuse with 429 + `Retry-After: 1`.
    pub(crate) rate_limits: u32,
    /// Note PUTs to carry out but answer too late for the client (the worker "dies" after the PUT).
    pub(crate) slow_puts: u32,
    /// Note PUTs to refuse with 503.
    pub(crate) server_errors: u32,
    /// HTML note PUTs to refuse with 422 (a plain `body` note is taken).
    pub(crate) refused_html: u32,
}

struct ZendeskApi(Arc<Mutex<ZdState>>);

/// The agent and API token the fake accepts (`zendesk.email`, `zendesk.api_token`).
pub(crate) const AGENT: &str = "agent@help.io";
pub(crate) const API_TOKEN: &str = "zd-token";

pub(crate) fn expected_auth() -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{AGENT}/token:{API_TOKEN}"))
    )
}

impl Respond for ZendeskApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some(expected_auth().as_str())
        {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"error": "Couldn't authenticate you"}));
        }
        let mut state = self.0.lock().unwrap();
        let path = request.url.path().trim_start_matches("/api/v2/").to_owned();
        let parts: Vec<&str> = path.split('/').collect();
        let id_of = |file: &str| file.trim_end_matches(".json").parse::<u64>().ok();
        match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["tickets", file]) => {
                let Some(ticket) =
                    id_of(file).and_then(|id| state.tickets.get(&id).map(|t| (id, t)))
                else {
                    return ResponseTemplate::new(404)
                        .set_body_json(json!({"error": "RecordNotFound"}));
                };
                let (id, t) = ticket;
                ResponseTemplate::new(200).set_body_json(json!({
                    "ticket": {
                        "id": id, "subject": t.subject, "created_at": CREATED,
                        "updated_at": t.updated_at(), "requester_id": t.requester_id,
                        "group_id": t.group_id, "organization_id": t.organization_id,
                        "assignee_id": t.assignee_id, "status": "new", "tags": t.tags,
                    },
                    "users": state.users,
                }))
            }
            ("GET", ["tickets", id, "comments.json"]) => {
                let Some(t) = id.parse::<u64>().ok().and_then(|id| state.tickets.get(&id)) else {
                    return ResponseTemplate::new(404);
                };
                let newest_first: Vec<Value> = t.comments.iter().rev().cloned().collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "comments": newest_first, "users": state.users }))
            }
            ("PUT", ["tickets", file]) => {
                let Some(id) = id_of(file) else {
                    return ResponseTemplate::new(404);
                };
                let body: Value = request.body_json().unwrap_or_default();
                if state.rate_limits > 0 {
                    state.rate_limits -= 1;
                    return ResponseTemplate::new(429).insert_header("Retry-After", "1");
                }
                if state.server_errors > 0 {
                    state.server_errors -= 1;
                    return ResponseTemplate::new(503);
                }
                if state.refused_html > 0 && body["ticket"]["comment"]["html_body"].is_string() {
                    state.refused_html -= 1;
                    return ResponseTemplate::new(422).set_body_json(json!({
                        "error": "RecordInvalid",
                        "description": "Record validation errors",
                        "details": {"base": [{"description": "Comment body is too long"}]}
                    }));
                }
                let conflict = state.conflicts > 0;
                let next_id = state.next_id + 1;
                let Some(t) = state.tickets.get_mut(&id) else {
                    return ResponseTemplate::new(404);
                };
                if conflict {
                    t.version += 1;
                }
                let stale = body["ticket"]["safe_update"] == json!(true)
                    && body["ticket"]["updated_stamp"] != json!(t.updated_at());
                if stale {
                    state.conflicts = state.conflicts.saturating_sub(1);
                    return ResponseTemplate::new(409)
                        .set_body_json(json!({"error": "UpdateConflict"}));
                }
                let comment = &body["ticket"]["comment"];
                // A plain note's body is kept as its text (Zendesk renders it as HTML too).
                let html = match &comment["html_body"] {
                    Value::Null => comment["body"].clone(),
                    html => html.clone(),
                };
                t.comments.push(json!({
                    "id": next_id, "author_id": 999, "html_body": html,
                    "body": comment["body"].as_str().unwrap_or("(rendered)"),
                    "public": comment["public"], "created_at": NOW,
                }));
                t.version += 1;
                state.next_id = next_id;
                let answer = ResponseTemplate::new(200).set_body_json(json!({
                    "ticket": { "id": id },
                    "audit": { "id": 7000 + next_id, "events": [{ "id": next_id, "type": "Comment" }] },
                }));
                if state.slow_puts > 0 {
                    state.slow_puts -= 1;
                    return answer.set_delay(Duration::from_secs(3));
                }
                answer
            }
            ("GET", ["users", file]) => {
                let user = id_of(file)
                    .and_then(|id| state.users.iter().find(|u| u["id"] == json!(id)).cloned());
                match user {
                    Some(user) => ResponseTemplate::new(200).set_body_json(json!({ "user": user })),
                    None => {
                        ResponseTemplate::new(404).set_body_json(json!({"error": "RecordNotFound"}))
                    }
                }
            }
            ("GET", ["users", id, "group_memberships.json"]) => {
                let Some(id) = id.parse::<u64>().ok() else {
                    return ResponseTemplate::new(404);
                };
                let memberships: Vec<Value> = state
                    .memberships
                    .get(&id)
                    .into_iter()
                    .flatten()
                    .map(|group| json!({"id": id * 1000 + group, "user_id": id, "group_id": group}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "group_memberships": memberships,
                    "meta": {"has_more": false, "after_cursor": null},
                }))
            }
            ("PUT", ["tickets", id, "tags"]) => {
                let body: Value = request.body_json().unwrap_or_default();
                let Some(t) = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| state.tickets.get_mut(&id))
                else {
                    return ResponseTemplate::new(404);
                };
                for tag in body["tags"].as_array().into_iter().flatten() {
                    if let Some(tag) = tag.as_str()
                        && !t.tags.iter().any(|x| x == tag)
                    {
                        t.tags.push(tag.to_owned());
                    }
                }
                ResponseTemplate::new(200).set_body_json(json!({ "tags": t.tags }))
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

pub(crate) struct FakeZendesk {
    pub(crate) server: MockServer,
    pub(crate) state: Arc<Mutex<ZdState>>,
}

impl FakeZendesk {
    pub(crate) async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(ZdState {
            next_id: 100,
            users: vec![
                json!({"id": 1, "email": "Jane@Acme.com", "role": "end-user", "external_id": null}),
                json!({"id": 2, "email": "agent@help.io", "role": "agent", "ticket_restriction": null}),
                json!({"id": 999, "email": "api@help.io", "role": "admin", "ticket_restriction": null}),
            ],
            ..ZdState::default()
        }));
        Mock::given(path_regex("^/api/v2/"))
            .respond_with(ZendeskApi(state.clone()))
            .mount(&server)
            .await;
        let fake = Self { server, state };
        fake.add_ticket(
            TICKET,
            "Checkout is broken",
            "The Pay button does nothing. My colleague bob@acme.com sees it too.",
        );
        fake
    }

    pub(crate) fn add_ticket(&self, id: u64, subject: &str, description: &str) {
        let mut state = self.state.lock().unwrap();
        state.tickets.insert(
            id,
            Ticket {
                subject: subject.into(),
                requester_id: 1,
                comments: vec![json!({
                    "id": 10, "author_id": 1, "body": description, "plain_body": description,
                    "html_body": format!("<p>{description}</p>"), "public": true, "created_at": CREATED,
                })],
                ..Ticket::default()
            },
        );
    }

    /// Puts ticket `id` in `group` and `organization`, assigned to `assignee`.
    pub(crate) fn set_ticket_access(
        &self,
        id: u64,
        group: Option<u64>,
        organization: Option<u64>,
        assignee: Option<u64>,
    ) {
        let mut state = self.state.lock().unwrap();
        let ticket = state.tickets.get_mut(&id).unwrap();
        ticket.group_id = group;
        ticket.organization_id = organization;
        ticket.assignee_id = assignee;
    }

    /// Adds a staff user (`role` `agent` or `admin`, or `end-user`) with this `ticket_restriction`
    /// (`Value::Null` for none), organisation and groups.
    pub(crate) fn add_user(
        &self,
        id: u64,
        role: &str,
        restriction: Value,
        organization: Option<u64>,
        groups: &[u64],
    ) {
        let mut state = self.state.lock().unwrap();
        state.users.push(json!({
            "id": id, "email": format!("user{id}@help.io"), "role": role,
            "ticket_restriction": restriction, "organization_id": organization,
        }));
        state.memberships.insert(id, groups.to_vec());
    }

    /// How many requests the fake received whose path starts with `/api/v2/{prefix}`.
    pub(crate) async fn calls_to(&self, prefix: &str) -> usize {
        let prefix = format!("/api/v2/{prefix}");
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path().starts_with(&prefix))
            .count()
    }

    pub(crate) fn add_public_comment(&self, id: u64, text: &str) {
        let mut state = self.state.lock().unwrap();
        let next = state.next_id + 1;
        state.next_id = next;
        let ticket = state.tickets.get_mut(&id).unwrap();
        ticket.comments.push(json!({
            "id": next, "author_id": 1, "body": text, "plain_body": text, "public": true,
            "created_at": "2026-11-20T14:50:00Z",
        }));
        ticket.version += 1;
    }

    /// The internal notes on a ticket, oldest first.
    pub(crate) fn notes(&self, id: u64) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.tickets[&id]
            .comments
            .iter()
            .filter(|c| c["public"] == json!(false))
            .map(|c| c["html_body"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub(crate) fn set_tags(&self, id: u64, tags: &[&str]) {
        let mut state = self.state.lock().unwrap();
        if let Some(ticket) = state.tickets.get_mut(&id) {
            ticket.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        }
    }

    pub(crate) fn tags(&self, id: u64) -> Vec<String> {
        self.state.lock().unwrap().tickets[&id].tags.clone()
    }

    /// Bodies of the requests with `method` to `path`.
    pub(crate) async fn bodies(&self, method: &str, path: &str) -> Vec<Value> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == method && r.url.path() == path)
            .map(|r| r.body_json::<Value>().unwrap_or(Value::Null))
            .collect()
    }
}
