//! Escalations to Linear and Jira (issue 25), against stateful fakes of Linear's GraphQL endpoint and
//! Jira Cloud's REST API on loopback: one issue per source and session across double clicks and
//! retried deliveries (SQLite and PostgreSQL), the link back to the session, refusals named, a tracker
//! down waited for, the audit, the erasure's receipt, and the command line.

use std::sync::{Arc, Mutex};

use replaydesk::{
    config::{List, Secret},
    erasure::ErasureJob,
    escalate::{EscalateJob, Outcome, Source, Tracker, job::OUTCOME},
    identity::{CustomerEmail, Identity},
    privacy::{ErasureReceipt, Requester},
    queue::ExecutionOutcome,
    store::JobState,
};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use super::helpers::{self, TestApp, official_session, sessions};

const TEAM: &str = "team-eng";

fn jane() -> CustomerEmail {
    CustomerEmail::parse("jane@acme.com").unwrap()
}

/// jane has two sessions; the newer (u1:s1, 10 minutes ago) is the likely one, with a console error
/// 3 minutes in and a failed payment.
async fn mount_jane_sessions(fullstory: &MockServer) {
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![
            official_session("u1", "s1", 10),
            official_session("u1", "s2", 60),
        ])))
        .mount(fullstory)
        .await;
    Mock::given(path("/v2/sessions/u1%3As1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events": [
            {"event_time": helpers::minutes_ago(10), "event_type": "navigate", "event_properties": {"url": "https://shop/cart"}},
            {"event_time": helpers::minutes_ago(7), "event_type": "console-error", "event_properties": {"message": "TypeError: cart is undefined"}},
        ]})))
        .mount(fullstory)
        .await;
}

// ------------------------------------------------------------------------------------ Linear's fake

/// Linear's GraphQL endpoint as far as escalations use it: issues by id (a client-chosen id is kept,
/// a second create of the same id is refused as Linear refuses it), attachments idempotent per issue
/// and URL, `attachmentDelete`, `viewer` and `team`. `fail_creates` answers that many creates 503.
#[derive(Clone, Default)]
pub(crate) struct FakeLinear {
    state: Arc<Mutex<LinearState>>,
}

#[derive(Default)]
struct LinearState {
    issues: Vec<Value>,
    creates: Vec<Value>,
    attachments: Vec<Value>,
    deleted: Vec<String>,
    fail_creates: usize,
    refuse_team: bool,
}

impl FakeLinear {
    pub(crate) async fn start(&self) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/graphql"))
            .respond_with(self.clone())
            .mount(&server)
            .await;
        server
    }

    pub(crate) fn creates(&self) -> Vec<Value> {
        self.state.lock().unwrap().creates.clone()
    }

    pub(crate) fn issues(&self) -> usize {
        self.state.lock().unwrap().issues.len()
    }

    fn attachments(&self) -> Vec<Value> {
        self.state.lock().unwrap().attachments.clone()
    }
}

impl Respond for FakeLinear {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        assert_eq!(
            request.headers.get("authorization").unwrap(),
            "lin_api_test",
            "a personal key, as is"
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let query = body["query"].as_str().unwrap_or_default();
        let vars = &body["variables"];
        let mut state = self.state.lock().unwrap();
        let ok = |data: Value| ResponseTemplate::new(200).set_body_json(json!({ "data": data }));
        let error = |message: &str, kind: &str| {
            ResponseTemplate::new(200).set_body_json(json!({"data": null, "errors": [
                {"message": message, "extensions": {"type": kind}}
            ]}))
        };
        if query.contains("issueCreate") {
            let input = vars["input"].clone();
            state.creates.push(input.clone());
            if state.fail_creates > 0 {
                state.fail_creates -= 1;
                return ResponseTemplate::new(503);
            }
            if state.refuse_team || input["teamId"] != TEAM {
                return error("Entity not found: Team", "invalid input");
            }
            if state.issues.iter().any(|i| i["id"] == input["id"]) {
                return error("Entity already exists", "invalid input");
            }
            let n = 122 + state.issues.len() + 1;
            let issue = json!({
                "id": input["id"],
                "identifier": format!("LIN-{n}"),
                "url": format!("https://linear.app/acme/issue/LIN-{n}"),
                "title": input["title"],
                "description": input["description"],
            });
            state.issues.push(issue.clone());
            return ok(json!({"issueCreate": {"success": true, "issue": issue}}));
        }
        if query.contains("attachmentCreate") {
            let input = vars["input"].clone();
            let existing = state
                .attachments
                .iter()
                .position(|a| a["issueId"] == input["issueId"] && a["url"] == input["url"]);
            let id = match existing {
                Some(at) => {
                    let id = state.attachments[at]["id"].clone();
                    state.attachments[at] = json!({"id": id, "issueId": input["issueId"], "url": input["url"], "title": input["title"], "subtitle": input["subtitle"]});
                    id
                }
                None => {
                    let id = json!(format!("att-{}", state.attachments.len() + 1));
                    state.attachments.push(json!({"id": id, "issueId": input["issueId"], "url": input["url"], "title": input["title"], "subtitle": input["subtitle"]}));
                    id
                }
            };
            return ok(json!({"attachmentCreate": {"success": true, "attachment": {"id": id}}}));
        }
        if query.contains("attachmentDelete") {
            let id = vars["id"].as_str().unwrap_or_default().to_owned();
            state.attachments.retain(|a| a["id"] != id.as_str());
            state.deleted.push(id);
            return ok(json!({"attachmentDelete": {"success": true}}));
        }
        if query.contains("issue(id:") {
            let id = &vars["id"];
            return match state
                .issues
                .iter()
                .find(|i| &i["id"] == id || &i["identifier"] == id)
            {
                Some(issue) => ok(json!({"issue": issue})),
                None => error("Entity not found: Issue", "invalid input"),
            };
        }
        if query.contains("viewer") {
            if vars["team"] != TEAM {
                return error("Entity not found: Team", "invalid input");
            }
            return ok(json!({"viewer": {"id": "u-1", "name": "Support Bot"},
                             "team": {"id": TEAM, "key": "ENG", "name": "Engineering"}}));
        }
        ResponseTemplate::new(400).set_body_json(json!({"errors": [{"message": "unknown query"}]}))
    }
}

// -------------------------------------------------------------------------------------- Jira's fake

/// Jira Cloud's REST v3 as far as escalations use it: `POST /issue` (not idempotent: each call makes
/// an issue), the JQL search by label, issues by key, remote links by `globalId` (a re-POST replaces),
/// their deletion. `fail_after_create` makes that many creates answer 502 **after** making the issue
/// (the outcome a client cannot know).
#[derive(Clone, Default)]
struct FakeJira {
    state: Arc<Mutex<JiraState>>,
}

#[derive(Default)]
struct JiraState {
    issues: Vec<Value>,
    creates: usize,
    links: Vec<Value>,
    deleted: Vec<String>,
    fail_after_create: usize,
}

impl FakeJira {
    async fn start(&self) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(path_regex("^/rest/api/3/"))
            .respond_with(self.clone())
            .mount(&server)
            .await;
        server
    }
}

impl Respond for FakeJira {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode("bot@acme.com:jira-token");
        assert_eq!(
            request.headers.get("authorization").unwrap(),
            format!("Basic {basic}").as_str()
        );
        let mut state = self.state.lock().unwrap();
        let p = request.url.path().to_owned();
        let m = request.method.as_str();
        match (m, p.as_str()) {
            ("POST", "/rest/api/3/issue") => {
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                let fields = &body["fields"];
                state.creates += 1;
                if fields["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .count()
                    > 255
                {
                    return ResponseTemplate::new(400).set_body_json(
                        json!({"errorMessages": [], "errors": {"summary": "Summary must be less than 255 characters."}}),
                    );
                }
                if fields["project"]["key"] != "SUP" {
                    return ResponseTemplate::new(400).set_body_json(
                        json!({"errorMessages": [], "errors": {"project": "valid project is required"}}),
                    );
                }
                let n = 41 + state.issues.len() + 1;
                state.issues.push(
                    json!({"id": format!("100{n}"), "key": format!("SUP-{n}"), "fields": fields}),
                );
                if state.fail_after_create > 0 {
                    state.fail_after_create -= 1;
                    return ResponseTemplate::new(502);
                }
                ResponseTemplate::new(201).set_body_json(
                    json!({"id": format!("100{n}"), "key": format!("SUP-{n}"), "self": "x"}),
                )
            }
            ("GET", "/rest/api/3/search/jql") => {
                let jql = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "jql")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let label = jql
                    .strip_prefix("labels = \"")
                    .and_then(|rest| rest.strip_suffix('"'))
                    .unwrap_or_default()
                    .to_owned();
                let found: Vec<Value> = state
                    .issues
                    .iter()
                    .filter(|i| {
                        i["fields"]["labels"]
                            .as_array()
                            .is_some_and(|l| l.contains(&json!(label)))
                    })
                    .map(|i| json!({"id": i["id"], "key": i["key"]}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"issues": found}))
            }
            ("GET", "/rest/api/3/myself") => ResponseTemplate::new(200)
                .set_body_json(json!({"accountId": "a-1", "displayName": "Support Bot"})),
            ("GET", "/rest/api/3/project/SUP") => {
                ResponseTemplate::new(200).set_body_json(json!({"key": "SUP", "name": "Support"}))
            }
            ("GET", issue) if issue.starts_with("/rest/api/3/issue/") => {
                let key = issue.trim_start_matches("/rest/api/3/issue/");
                match state.issues.iter().find(|i| i["key"] == key) {
                    Some(i) => ResponseTemplate::new(200).set_body_json(json!({"id": i["id"], "key": i["key"]})),
                    None => ResponseTemplate::new(404).set_body_json(json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."]})),
                }
            }
            ("POST", link) if link.ends_with("/remotelink") => {
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                let key = link
                    .trim_start_matches("/rest/api/3/issue/")
                    .trim_end_matches("/remotelink")
                    .to_owned();
                let at = state
                    .links
                    .iter()
                    .position(|l| l["globalId"] == body["globalId"] && l["issue"] == key.as_str());
                let id = match at {
                    Some(at) => {
                        let id = state.links[at]["id"].clone();
                        state.links[at] = json!({"id": id, "issue": key, "globalId": body["globalId"], "object": body["object"]});
                        id
                    }
                    None => {
                        let id = json!(10_000 + state.links.len() + 1);
                        state.links.push(json!({"id": id, "issue": key, "globalId": body["globalId"], "object": body["object"]}));
                        id
                    }
                };
                ResponseTemplate::new(if at.is_some() { 200 } else { 201 })
                    .set_body_json(json!({"id": id, "self": "x"}))
            }
            ("DELETE", link) if link.contains("/remotelink/") => {
                let id = link.rsplit('/').next().unwrap_or_default().to_owned();
                state
                    .links
                    .retain(|l| l["id"] != json!(id.parse::<u64>().unwrap_or_default()));
                state.deleted.push(id);
                ResponseTemplate::new(204)
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

// ------------------------------------------------------------------------------------------- harness

struct Trackers {
    linear: FakeLinear,
    jira: FakeJira,
    _servers: Vec<MockServer>,
}

/// Linear on, at the fake served at `uri` (its server's).
pub(crate) fn linear_at(config: &mut replaydesk::config::Config, uri: &str) {
    config.linear.api_key = Secret::new("lin_api_test");
    config.linear.team_id = Some(TEAM.into());
    config.linear.api_url = Some(format!("{uri}/graphql"));
}

/// Jira on too, at `uri` (a fake's, or an address nothing is asked of).
pub(crate) fn jira_at(config: &mut replaydesk::config::Config, uri: &str) {
    config.jira.base_url = Some(uri.into());
    config.jira.email = Some("bot@acme.com".into());
    config.jira.api_token = Secret::new("jira-token");
    config.jira.project_key = Some("SUP".into());
}

/// The service with Linear and Jira on, each at its fake.
async fn app_with_trackers(store_url: Option<&str>) -> (TestApp, Trackers) {
    let linear = FakeLinear::default();
    let jira = FakeJira::default();
    let linear_server = linear.start().await;
    let jira_server = jira.start().await;
    let (linear_url, jira_url) = (
        format!("{}/graphql", linear_server.uri()),
        jira_server.uri(),
    );
    let mut builder = TestApp::builder().configure(move |c| {
        c.linear.api_key = Secret::new("lin_api_test");
        c.linear.team_id = Some(TEAM.into());
        c.linear.api_url = Some(linear_url);
        jira_at(c, &jira_url);
        c.jira.labels = List(vec!["support".into()]);
        c.privacy.audit_key = Secret::new("escalation-audit-key");
    });
    if let Some(url) = store_url {
        builder = builder.store_url(url);
    }
    let app = builder.start().await;
    mount_jane_sessions(&app.fullstory).await;
    (
        app,
        Trackers {
            linear,
            jira,
            _servers: vec![linear_server, jira_server],
        },
    )
}

fn agent(user: &str) -> Requester {
    Requester {
        platform: "zendesk".into(),
        tenant: "acme".into(),
        user: user.into(),
        place: Some("ticket 35437".into()),
    }
}

fn ticket_source() -> Source {
    Source {
        key: "zendesk:acme:ticket:35437".into(),
        label: "Zendesk ticket #35437".into(),
        url: Some("https://acme.zendesk.com/agent/tickets/35437".into()),
    }
}

fn escalation(tracker: Tracker, user: &str) -> EscalateJob {
    let mut job = EscalateJob::new(jane(), tracker, ticket_source(), None, agent(user));
    job.requester_name = Some(format!("Agent {user}"));
    job
}

/// Records an escalation as a platform's request does (under its delivery key); the job's id.
async fn ask(app: &TestApp, key: &str, job: &impl replaydesk::queue::Job) -> i64 {
    app.queue.push(key, job).await.unwrap().job_id
}

/// The outcome a job recorded in its ledger.
async fn outcome(app: &TestApp, job: i64) -> Outcome {
    let effect = app
        .store
        .effect(job, OUTCOME)
        .await
        .unwrap()
        .expect("an outcome");
    serde_json::from_str(&effect.external_id.unwrap()).unwrap()
}

fn escalated(outcome: &Outcome) -> &replaydesk::answer::Escalated {
    match outcome {
        Outcome::Escalated(escalated) => escalated,
        Outcome::NotEscalated { message } => panic!("not escalated: {message}"),
    }
}

// --------------------------------------------------------------------------------------------- tests

async fn one_linear_issue_per_source_and_session(store_url: Option<&str>) {
    let (app, trackers) = app_with_trackers(store_url).await;
    // A double click and a retried delivery: three requests, three jobs.
    let mut jobs = Vec::new();
    for (key, user) in [("click-1", "U1"), ("click-2", "U1"), ("retry-1", "U2")] {
        jobs.push(ask(&app, key, &escalation(Tracker::Linear, user)).await);
    }
    // The same delivery again is the same job.
    let again = app
        .queue
        .push("click-1", &escalation(Tracker::Linear, "U1"))
        .await
        .unwrap();
    assert_eq!(again.job_id, jobs[0]);
    app.run_jobs().await;

    assert_eq!(trackers.linear.creates().len(), 1, "one create");
    assert_eq!(trackers.linear.issues(), 1, "one issue");
    let first = outcome(&app, jobs[0]).await;
    let first = escalated(&first);
    assert_eq!(
        first.message(),
        "Escalated to Linear: LIN-123 https://linear.app/acme/issue/LIN-123"
    );
    for job in &jobs[1..] {
        let later = outcome(&app, *job).await;
        assert_eq!(
            escalated(&later).message(),
            "Already escalated: LIN-123 https://linear.app/acme/issue/LIN-123"
        );
    }
    // What the issue says.
    let create = &trackers.linear.creates()[0];
    assert_eq!(create["teamId"], TEAM);
    let description = create["description"].as_str().unwrap();
    assert!(
        description.contains("**Customer:** j•••@acme.com"),
        "{description}"
    );
    assert!(!description.contains("jane@acme.com"), "masked by default");
    assert!(
        description.contains("3:00 into the session: console error: TypeError: cart is undefined"),
        "{description}"
    );
    assert!(
        description
            .contains("[Zendesk ticket \\#35437](<https://acme.zendesk.com/agent/tickets/35437>)"),
        "{description}"
    );
    assert!(
        description.contains("**Escalated by:** Agent U1 \\(Zendesk\\)"),
        "{description}"
    );
    assert!(
        uuid::Uuid::parse_str(create["id"].as_str().unwrap()).is_ok(),
        "a client-chosen id"
    );
    assert!(
        create["title"]
            .as_str()
            .unwrap()
            .ends_with("(j•••@acme.com)")
    );
    // One attachment: the likely session, with the moment.
    let attachments = trackers.linear.attachments();
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["url"],
        "https://app.fullstory.com/ui/ORG/session/u1:s1"
    );
    assert!(
        attachments[0]["subtitle"]
            .as_str()
            .unwrap()
            .starts_with("first problem 3:00 into the session")
    );
    // Stored once, audited each time (who, the customer's hash, tracker, issue).
    let row = app
        .store
        .escalation("zendesk:acme:ticket:35437", "u1:s1")
        .await
        .unwrap()
        .unwrap();
    assert!(row.is_done() && row.created);
    assert_eq!(row.issue_key.as_deref(), Some("LIN-123"));
    assert_eq!(row.link_id.as_deref(), Some("att-1"));
    let audited = app.store.audit(None, None, 50).await.unwrap();
    let escalations: Vec<_> = audited
        .iter()
        .filter(|a| a.action == "escalation")
        .collect();
    assert_eq!(escalations.len(), 3, "every ask is audited");
    let hash = app.auditor.hash(&Identity::Email(jane()));
    assert!(
        escalations
            .iter()
            .all(|a| a.identities == vec![hash.clone()])
    );
    assert!(escalations.iter().any(|a| {
        a.detail
            .as_deref()
            .unwrap_or_default()
            .contains("Linear LIN-123 (created)")
    }));
    assert!(
        escalations
            .iter()
            .all(|a| !a.detail.as_deref().unwrap_or_default().contains("jane"))
    );
}

#[tokio::test]
async fn a_double_click_and_a_retried_delivery_make_one_linear_issue_on_sqlite() {
    one_linear_issue_per_source_and_session(None).await;
}

/// Runs `test` on a fresh PostgreSQL database (dropped after).
async fn on_postgresql<F: std::future::Future<Output = ()>>(test: impl FnOnce(String) -> F) {
    let db = super::processes::FreshDatabase::create().await;
    test(db.url.clone()).await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_double_click_and_a_retried_delivery_make_one_linear_issue_on_postgresql() {
    on_postgresql(async |url| one_linear_issue_per_source_and_session(Some(&url)).await).await;
}

async fn one_jira_issue_when_the_create_answer_is_lost(store_url: Option<&str>) {
    let (app, trackers) = app_with_trackers(store_url).await;
    // Jira makes the issue but the answer is lost (502): the job searches by its label before making
    // another.
    trackers.jira.state.lock().unwrap().fail_after_create = 1;
    let first = ask(&app, "tag-1", &escalation(Tracker::Jira, "U1")).await;
    let second = ask(&app, "tag-2", &escalation(Tracker::Jira, "U2")).await;
    app.run_jobs().await;
    // The first attempt met the lost answer; the queue retries after its backoff.
    for _ in 0..5 {
        if app.store.get_job(first).await.unwrap().unwrap().state == JobState::Done {
            break;
        }
        app.clock.advance(std::time::Duration::from_secs(900));
        app.run_jobs().await;
    }
    app.clock.advance(std::time::Duration::from_secs(900));
    app.run_jobs().await;
    {
        let state = trackers.jira.state.lock().unwrap();
        assert_eq!(state.creates, 1, "not created again after the lost answer");
        assert_eq!(state.issues.len(), 1);
        let fields = &state.issues[0]["fields"];
        assert_eq!(fields["issuetype"]["name"], "Bug");
        let labels = fields["labels"].as_array().unwrap();
        assert!(labels.contains(&json!("support")));
        assert!(
            labels
                .iter()
                .any(|l| l.as_str().unwrap().starts_with("replaydesk-"))
        );
        assert_eq!(fields["description"]["type"], "doc");
        assert_eq!(state.links.len(), 1, "one remote link");
        assert_eq!(
            state.links[0]["object"]["url"],
            "https://app.fullstory.com/ui/ORG/session/u1:s1"
        );
    }
    let made = outcome(&app, first).await;
    assert_eq!(escalated(&made).key, "SUP-42");
    let other = outcome(&app, second).await;
    assert!(escalated(&other).already, "{other:?}");
}

#[tokio::test]
async fn a_lost_jira_answer_is_found_by_its_label_not_made_twice_on_sqlite() {
    one_jira_issue_when_the_create_answer_is_lost(None).await;
}

#[tokio::test]
async fn a_lost_jira_answer_is_found_by_its_label_not_made_twice_on_postgresql() {
    on_postgresql(async |url| one_jira_issue_when_the_create_answer_is_lost(Some(&url)).await)
        .await;
}

#[tokio::test]
async fn a_refusal_is_named_in_the_trackers_words_and_nothing_is_made() {
    let (app, trackers) = app_with_trackers(None).await;
    trackers.linear.state.lock().unwrap().refuse_team = true;
    let job = ask(&app, "r-1", &escalation(Tracker::Linear, "U1")).await;
    app.run_jobs().await;
    assert_eq!(
        outcome(&app, job).await,
        Outcome::NotEscalated {
            message: "Linear refused: team not found".into()
        }
    );
    assert_eq!(trackers.linear.issues(), 0);
    // The row stays unfinished: a later ask, once the team is right, makes the issue.
    trackers.linear.state.lock().unwrap().refuse_team = false;
    let later = ask(&app, "r-2", &escalation(Tracker::Linear, "U1")).await;
    app.run_jobs().await;
    assert_eq!(escalated(&outcome(&app, later).await).key, "LIN-123");
}

#[tokio::test]
async fn a_linear_outage_makes_the_escalation_wait_and_the_retry_names_the_same_issue() {
    let (app, trackers) = app_with_trackers(None).await;
    // Linear answers 503 to every try of the first attempt (4 tries): the breaker opens, the job waits.
    trackers.linear.state.lock().unwrap().fail_creates = 4;
    let job = ask(&app, "o-1", &escalation(Tracker::Linear, "U1")).await;
    let first = app.run_job().await;
    assert_eq!(
        first,
        ExecutionOutcome::Waiting(job),
        "waits for Linear, attempt not spent"
    );
    let stored = app.store.get_job(job).await.unwrap().unwrap();
    assert_eq!(stored.waiting_on.as_deref(), Some("linear"));
    // Linear is back: the same id is sent again, one issue.
    app.clock.advance(std::time::Duration::from_secs(120));
    app.run_jobs().await;
    let ids: Vec<Value> = trackers
        .linear
        .creates()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert!(
        ids.len() >= 2 && ids.windows(2).all(|w| w[0] == w[1]),
        "{ids:?}"
    );
    assert_eq!(trackers.linear.issues(), 1);
    assert_eq!(escalated(&outcome(&app, job).await).key, "LIN-123");
}

#[tokio::test]
async fn an_existing_issue_is_linked_not_made() {
    let (app, trackers) = app_with_trackers(None).await;
    trackers
        .jira
        .state
        .lock()
        .unwrap()
        .issues
        .push(json!({"id": "10077", "key": "SUP-77", "fields": {"labels": []}}));
    let mut job = escalation(Tracker::Jira, "U1");
    job.existing = Some("SUP-77".into());
    let id = ask(&app, "e-1", &job).await;
    app.run_jobs().await;
    let outcome = outcome(&app, id).await;
    assert_eq!(
        escalated(&outcome).message(),
        format!(
            "Linked to Jira issue SUP-77 {}/browse/SUP-77",
            app.config.jira.base_url.as_deref().unwrap()
        )
    );
    let state = trackers.jira.state.lock().unwrap();
    assert_eq!(state.creates, 0);
    assert_eq!(state.links.len(), 1);
    assert_eq!(state.links[0]["issue"], "SUP-77");
    assert!(
        state.links[0]["globalId"]
            .as_str()
            .unwrap()
            .starts_with("replaydesk:")
    );
}

#[tokio::test]
async fn erasure_removes_the_links_and_lists_the_issues_to_edit_by_hand() {
    let (app, trackers) = app_with_trackers(None).await;
    let a = ask(&app, "x-1", &escalation(Tracker::Linear, "U1")).await;
    app.run_jobs().await;
    let mut other = escalation(Tracker::Jira, "U1");
    other.source.key = "slack:T1:C1:1700000000.000100".into();
    let b = ask(&app, "x-2", &other).await;
    app.run_jobs().await;
    assert_eq!(escalated(&outcome(&app, a).await).key, "LIN-123");
    assert_eq!(escalated(&outcome(&app, b).await).key, "SUP-42");
    // FullStory's side of the erasure: nobody to delete there.
    wiremock::Mock::given(path("/v2/users"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&app.fullstory)
        .await;
    wiremock::Mock::given(path_regex("^/v2/users/"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&app.fullstory)
        .await;
    let erasure = ErasureJob {
        email: jane(),
        requester: agent("admin"),
        reply: None,
    };
    let job = ask(&app, "erase-1", &erasure).await;
    app.run_jobs().await;
    let receipt = ErasureReceipt::of_job(&app.store, job).await.unwrap();
    assert_eq!(receipt.status, "incomplete", "{receipt:?}");
    assert!(
        receipt
            .done
            .contains(&"Linear LIN-123: replaydesk's link to the session removed".into()),
        "{receipt:?}"
    );
    assert!(
        receipt
            .done
            .contains(&"Jira SUP-42: replaydesk's link to the session removed".into()),
        "{receipt:?}"
    );
    assert!(
        receipt
            .needs_action
            .iter()
            .any(|l| l.starts_with("LIN-123: by hand")),
        "{receipt:?}"
    );
    assert!(
        receipt
            .needs_action
            .iter()
            .any(|l| l.starts_with("SUP-42: by hand")),
        "{receipt:?}"
    );
    assert_eq!(
        trackers.linear.state.lock().unwrap().deleted,
        vec!["att-1".to_owned()]
    );
    assert_eq!(trackers.linear.attachments().len(), 0);
    assert_eq!(trackers.jira.state.lock().unwrap().links.len(), 0);
    let row = app
        .store
        .escalation("zendesk:acme:ticket:35437", "u1:s1")
        .await
        .unwrap()
        .unwrap();
    assert!(row.unlinked_at.is_some());
}

#[tokio::test]
async fn the_command_line_escalates_once_and_check_names_each_tracker() {
    let (app, trackers) = app_with_trackers(None).await;
    let linear_url = app.config.linear.api_url.clone().unwrap();
    let jira_url = app.config.jira.base_url.clone().unwrap();
    let run = |args: Vec<&'static str>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_replaydesk"));
        command
            .args(args)
            .current_dir(app.dir())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", "operator-1")
            .env("REPLAYDESK_STORE__URL", &app.config.store.url)
            .env("REPLAYDESK_FULLSTORY__API_KEY", "na1.test-key-0123456789")
            .env("REPLAYDESK_FULLSTORY__BASE_URL", app.fullstory.uri())
            .env("REPLAYDESK_LINEAR__API_KEY", "lin_api_test")
            .env("REPLAYDESK_LINEAR__TEAM_ID", TEAM)
            .env("REPLAYDESK_LINEAR__API_URL", &linear_url)
            .env("REPLAYDESK_JIRA__BASE_URL", &jira_url)
            .env("REPLAYDESK_JIRA__EMAIL", "bot@acme.com")
            .env("REPLAYDESK_JIRA__API_TOKEN", "jira-token")
            .env("REPLAYDESK_JIRA__PROJECT_KEY", "SUP");
        command
    };
    let args = vec![
        "escalate",
        "jane@acme.com",
        "--to",
        "linear",
        "--source",
        "https://acme.zendesk.com/agent/tickets/9",
        "--title",
        "Checkout broken for jane@acme.com",
    ];
    let first = run(args.clone()).output().await.unwrap();
    helpers::capture_process_logs(&first);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        said.trim(),
        "Escalated to Linear: LIN-123 https://linear.app/acme/issue/LIN-123"
    );
    assert_eq!(
        trackers.linear.creates()[0]["title"],
        "Checkout broken for j•••@acme.com"
    );
    let second = run(args).output().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "Already escalated: LIN-123 https://linear.app/acme/issue/LIN-123"
    );
    assert_eq!(trackers.linear.issues(), 1);
    let usage = run(vec!["escalate", "jane@acme.com", "--to", "github"])
        .output()
        .await
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let check = run(vec!["check"]).output().await.unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        said.contains("linear     ok (key of Support Bot; team ENG (Engineering))"),
        "{said}"
    );
    assert!(
        said.contains("jira       ok (token of Support Bot; project SUP (Support))"),
        "{said}"
    );
}

#[tokio::test]
async fn a_ticket_tagged_to_escalate_gets_one_issue_and_one_note_however_often_the_tag_comes() {
    use super::fakes::TICKET;
    use super::zendesk::{Harness, created_body};
    let linear = FakeLinear::default();
    let server = linear.start().await;
    let uri = server.uri();
    let rd = Harness::with_a_session_for_jane_and(move |c| {
        linear_at(c, &uri);
        c.zendesk.escalate_tag = Some("escalate-bug".into());
    })
    .await;
    rd.zendesk().set_tags(TICKET, &["escalate-bug"]);
    // The trigger fires, Zendesk retries the same invocation, then the tag is sent again later.
    let resent = format!(
        r#"{{"ticket_id": "{TICKET}", "updated_at": "2026-11-20T14:30Z", "requester_email": "jane@acme.com"}}"#
    );
    for (invocation, body) in [
        ("inv-1", created_body(TICKET)),
        ("inv-1", created_body(TICKET)),
        ("inv-2", resent),
    ] {
        assert_eq!(
            rd.deliver(invocation, &body).await,
            axum::http::StatusCode::OK
        );
        rd.run_jobs().await;
    }
    assert_eq!(linear.issues(), 1, "one issue");
    let create = &linear.creates()[0];
    let description = create["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("Zendesk ticket \\#{TICKET}")),
        "{description}"
    );
    assert!(
        description.contains(&format!("/agent/tickets/{TICKET}>)")),
        "{description}"
    );
    assert!(
        description.contains("a Zendesk trigger \\(tag escalate-bug\\)"),
        "{description}"
    );
    let notes = rd.zendesk().notes(TICKET);
    let escalated: Vec<&String> = notes
        .iter()
        .filter(|n| n.contains("Escalated to"))
        .collect();
    assert_eq!(escalated.len(), 1, "{notes:?}");
    assert!(
        escalated[0]
            .contains(r#"<a href="https://linear.app/acme/issue/LIN-123">LIN-123</a> (Linear)"#),
        "{}",
        escalated[0]
    );
}

/// A Slack interaction `payload`, form-encoded and signed as Slack signs it now, through the router.
async fn slack_interaction(app: &TestApp, payload: &Value) -> helpers::TestResponse {
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let (ts, signature) = replaydesk::adapters::slack::verify::sign(
        helpers::SLACK_SECRET,
        app.clock.now().timestamp(),
        body.as_bytes(),
    );
    let request = axum::http::Request::post("/slack/interactions")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(axum::body::Body::from(body))
        .unwrap();
    app.oneshot(request).await
}

#[tokio::test]
async fn escalate_from_a_slack_answer_opens_a_modal_and_its_submission_answers_privately_once() {
    let linear = FakeLinear::default();
    let linear_server = linear.start().await;
    let jira = FakeJira::default();
    let jira_server = jira.start().await;
    let (linear_uri, jira_uri) = (linear_server.uri(), jira_server.uri());
    let app = TestApp::builder()
        .slack()
        .configure(move |c| {
            linear_at(c, &linear_uri);
            c.jira.base_url = Some(jira_uri);
            c.jira.email = Some("bot@acme.com".into());
            c.jira.api_token = Secret::new("jira-token");
            c.jira.project_key = Some("SUP".into());
        })
        .start()
        .await;
    mount_jane_sessions(&app.fullstory).await;
    let slack = app.slack_api();
    for method in ["/api/views.open", "/api/chat.postEphemeral"] {
        Mock::given(path(method))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"ok": true, "message_ts": "1.2"})),
            )
            .mount(slack)
            .await;
    }
    Mock::given(path("/hooks/lookup"))
        .respond_with(ResponseTemplate::new(200))
        .mount(slack)
        .await;
    // U1 looks jane up; the private answer carries an Escalate button on the likely session.
    let response_url = format!("{}/hooks/lookup", slack.uri());
    app.replays("U1", "jane@acme.com", &response_url, "trigger-lookup")
        .await;
    app.run_jobs().await;
    let answers = slack.received_requests().await.unwrap();
    let answer: Value = answers
        .iter()
        .find(|r| r.url.path() == "/hooks/lookup")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .expect("the answer");
    let text = answer.to_string();
    assert!(
        text.contains(r#"\"action_id\":\"escalate\""#)
            || text.contains(r#""action_id":"escalate""#),
        "{text}"
    );
    let lookup_job = 1;
    let value = json!({"job": lookup_job, "session": "u1:s1"}).to_string();
    let click = |trigger: &str, user: &str| {
        json!({
            "type": "block_actions", "trigger_id": trigger, "team": {"id": "T1"},
            "user": {"id": user}, "channel": {"id": "C1"},
            "container": {"channel_id": "C1", "is_ephemeral": true},
            "response_url": format!("{}/hooks/click", slack.uri()),
            "actions": [{"action_id": "escalate", "value": value}],
        })
    };
    // The click is acknowledged at once; a worker opens the modal with its trigger.
    let clicked = slack_interaction(&app, &click("trigger-click", "U1")).await;
    assert_eq!(
        clicked.status,
        axum::http::StatusCode::OK,
        "{}",
        clicked.text
    );
    app.run_jobs().await;
    let opened: Vec<Value> = slack
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/views.open")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["trigger_id"], "trigger-click");
    let view = &opened[0]["view"];
    assert_eq!(view["callback_id"], "escalate");
    let blocks = view["blocks"].as_array().unwrap();
    assert_eq!(
        blocks[0]["block_id"], "tracker",
        "a choice: both trackers are on"
    );
    assert_eq!(
        blocks[1]["element"]["initial_value"],
        "Support escalation: j•••@acme.com"
    );
    // The submission (twice: Slack's retry of one view) makes one Jira issue, answered privately.
    let submission = json!({
        "type": "view_submission", "team": {"id": "T1"},
        "user": {"id": "U1", "name": "ada"},
        "view": {
            "id": "V123", "callback_id": "escalate",
            "private_metadata": view["private_metadata"],
            "state": {"values": {
                "tracker": {"tracker": {"type": "static_select", "selected_option": {"value": "jira"}}},
                "title": {"title": {"type": "plain_text_input", "value": "Checkout fails"}},
                "note": {"note": {"type": "plain_text_input", "value": "Safari only"}},
                "issue": {"issue": {"type": "plain_text_input", "value": null}},
            }},
        },
    });
    for _ in 0..2 {
        let submitted = slack_interaction(&app, &submission).await;
        assert_eq!(submitted.status, axum::http::StatusCode::OK);
        assert_eq!(submitted.text, "", "the modal closes");
    }
    app.run_jobs().await;
    {
        let state = jira.state.lock().unwrap();
        assert_eq!(state.creates, 1);
        assert_eq!(state.issues[0]["fields"]["summary"], "Checkout fails");
    }
    let ephemeral: Vec<Value> = slack
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/chat.postEphemeral")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(ephemeral.len(), 1, "{ephemeral:?}");
    assert_eq!(ephemeral[0]["user"], "U1");
    assert!(
        ephemeral[0]["text"]
            .as_str()
            .unwrap()
            .contains("Escalated to Jira: SUP-42"),
        "{ephemeral:?}"
    );
    // Someone else clicking U1's answer opens nothing.
    slack_interaction(&app, &click("trigger-other", "U2")).await;
    app.run_jobs().await;
    let opened = slack
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/views.open")
        .count();
    assert_eq!(opened, 1);
    assert_eq!(linear.issues(), 0);
}

#[tokio::test]
async fn escalating_a_thread_answer_replies_once_in_the_thread_and_privately_to_the_asker() {
    let linear = FakeLinear::default();
    let server = linear.start().await;
    let uri = server.uri();
    let app = TestApp::builder()
        .slack()
        .configure(move |c| linear_at(c, &uri))
        .start()
        .await;
    mount_jane_sessions(&app.fullstory).await;
    let slack = app.slack_api();
    for (method, answer) in [
        (
            "/api/chat.postMessage",
            json!({"ok": true, "ts": "1700000100.000200"}),
        ),
        ("/api/views.open", json!({"ok": true})),
        (
            "/api/chat.postEphemeral",
            json!({"ok": true, "message_ts": "1.2"}),
        ),
    ] {
        Mock::given(path(method))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .mount(slack)
            .await;
    }
    let posted = |name: &'static str| async move {
        slack
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == name)
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
            .collect::<Vec<_>>()
    };
    // "Find replays" on a message in a thread (sent now): the answer goes to the thread, with Escalate.
    let ts = format!("{}.000100", app.clock.now().timestamp());
    let shortcut = json!({
        "type": "message_action", "callback_id": "find_replays", "trigger_id": "trigger-shortcut",
        "response_url": format!("{}/hooks/shortcut", slack.uri()),
        "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"}, "channel": {"id": "C1"},
        "message": {"type": "message", "user": "U9", "text": "help jane@acme.com",
                    "ts": ts, "thread_ts": "1700000000.000001"},
    });
    let asked = slack_interaction(&app, &shortcut).await;
    assert_eq!(asked.status, axum::http::StatusCode::OK, "{}", asked.text);
    app.run_jobs().await;
    let answer = posted("/api/chat.postMessage").await.remove(0);
    assert_eq!(answer["thread_ts"], "1700000000.000001");
    assert!(
        answer.to_string().contains(r#""action_id":"escalate""#),
        "{answer}"
    );
    let click = json!({
        "type": "block_actions", "trigger_id": "trigger-escalate", "team": {"id": "T1"},
        "user": {"id": "U1"}, "channel": {"id": "C1"},
        "container": {"channel_id": "C1", "message_ts": "1700000100.000200", "thread_ts": "1700000000.000001"},
        "actions": [{"action_id": "escalate", "value": json!({"job": 1, "session": "u1:s1"}).to_string()}],
    });
    slack_interaction(&app, &click).await;
    app.run_jobs().await;
    let view = posted("/api/views.open").await.remove(0)["view"].clone();
    assert_eq!(
        view["submit"]["text"], "Escalate to Linear",
        "one tracker: no choice"
    );
    let submission = json!({
        "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1", "name": "ada"},
        "view": {"id": "V9", "callback_id": "escalate", "private_metadata": view["private_metadata"],
                 "state": {"values": {}}},
    });
    slack_interaction(&app, &submission).await;
    app.run_jobs().await;
    assert_eq!(linear.issues(), 1);
    let thread: Vec<Value> = posted("/api/chat.postMessage")
        .await
        .into_iter()
        .filter(|m| m.to_string().contains("LIN-123"))
        .collect();
    assert_eq!(thread.len(), 1, "one reply in the thread");
    assert_eq!(thread[0]["thread_ts"], "1700000000.000001");
    let private = posted("/api/chat.postEphemeral").await;
    assert_eq!(private.len(), 1);
    assert!(
        private[0]["text"]
            .as_str()
            .unwrap()
            .contains("Escalated to Linear: LIN-123")
    );
    // The source is the thread: the description says where it came from.
    let description = linear.creates()[0]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        description.contains("**Escalated by:** ada \\(Slack\\)"),
        "{description}"
    );
}
