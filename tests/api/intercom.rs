//! Intercom end to end: webhooks and Canvas Kit requests signed exactly as Intercom signs them go
//! through the real router; the queue is stepped with `try_execute_one`; Intercom and FullStory are
//! fakes on loopback (wiremock). The note's once-per-conversation-and-session rule runs on SQLite and on
//! PostgreSQL.

use std::time::Duration;

use axum::{
    body::Body,
    http::{Request as HttpRequest, StatusCode},
};
use replaydesk::{
    adapters::intercom::verify::{BODY_SIGNATURE, HUB_SIGNATURE, sign_canvas, sign_webhook},
    config::{Interval, List, Secret, Secrets},
    queue::{ExecutionOutcome, Settings},
};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, path_regex, query_param},
};

use super::{
    fakes::{NOW, at},
    helpers::{TestApp, TestResponse},
    processes::FreshDatabase,
    zendesk::{fs_session, sessions_for},
};

/// The app's client secret in these tests (an older one is accepted too, as during a rotation).
const SECRET: &str = "intercom-client-secret";
const WORKSPACE: &str = "ws1";
const CONVERSATION: &str = "123";
const ADMIN: &str = "4242";

/// Known-answer vectors computed apart from replaydesk (Python's `hmac`; the canvas one also with
/// `openssl dgst -sha256 -hmac intercom-client-secret`).
const KAT_WEBHOOK: &str = r#"{"type":"notification_event","app_id":"ws1","topic":"ping","id":"notif_1","data":{"item":{}}}"#;
const KAT_WEBHOOK_SIGNATURE: &str = "sha1=e298d95e85ea3961345adc9c6fccc66891c7be68";
const KAT_CANVAS: &str = r#"{"workspace_id":"ws1"}"#;
const KAT_CANVAS_SIGNATURE: &str =
    "6f1f61e61d6fa630e5a847c550e049e5fb9fbf42ea32b50c762989e1326eb097";

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The service with Intercom on (its API faked), FullStory knowing jane's and bob's sessions.
struct Harness {
    app: TestApp,
    intercom: MockServer,
    _database: Option<FreshDatabase>,
}

impl std::ops::Deref for Harness {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl Harness {
    async fn start(
        backend: Backend,
        tweak: impl FnOnce(&mut replaydesk::config::Config) + 'static,
    ) -> Self {
        let intercom = MockServer::start().await;
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(FreshDatabase::create().await),
        };
        let uri = intercom.uri();
        let mut builder = TestApp::builder()
            .clock_at(at(NOW))
            .queue_settings(Settings {
                max_attempts: 3,
                backoff_base: Duration::ZERO,
                ..Settings::default()
            })
            .configure(move |config| {
                config.intercom.client_secret = Secrets::from_values(["old-secret", SECRET]);
                config.intercom.access_token = Secret::new("intercom-test-token");
                config.intercom.admin_id = Some(ADMIN.into());
                config.intercom.api_url = uri;
                config.intercom.allowed_workspace_ids = List(vec![WORKSPACE.into()]);
                config.intercom.timeout = Interval(Duration::from_millis(1500));
                config.fullstory.digest = replaydesk::config::DigestMode::Never;
                config.identity.exclude_domains = List(vec!["help.io".into()]);
            })
            .configure(tweak);
        if let Some(database) = &database {
            builder = builder.store_url(&database.url).configure(|config| {
                config.privacy.audit_key = Secret::new("intercom-tests-audit-key");
            });
        }
        let app = builder.start().await;
        assert!(
            app.platforms().contains(&"intercom"),
            "the Intercom adapter is on"
        );
        let rd = Self {
            app,
            intercom,
            _database: database,
        };
        rd.mount_intercom().await;
        sessions_for(
            &rd.fullstory,
            "jane@acme.com",
            vec![
                fs_session("5", "3", "2026-11-20T14:02:00Z"),
                fs_session("5", "1", "2026-11-19T09:11:00Z"),
            ],
        )
        .await;
        sessions_for(
            &rd.fullstory,
            "bob@acme.com",
            vec![fs_session("7", "9", "2026-11-18T08:00:00Z")],
        )
        .await;
        // Nobody has sessions under a uid here.
        Mock::given(path("/sessions/v2"))
            .and(query_param("uid", "u-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sessions": []})))
            .mount(&rd.fullstory)
            .await;
        rd
    }

    /// Intercom's contacts (jane, with an external id; bob) and the conversation's reply and read.
    async fn mount_intercom(&self) {
        for (id, email, external) in [
            ("c1", "jane@acme.com", Some("u-1")),
            ("c2", "bob@acme.com", None),
        ] {
            Mock::given(method("GET"))
                .and(path(format!("/contacts/{id}")))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                    "type": "contact", "id": id, "email": email, "external_id": external, "role": "user"})))
                .mount(&self.intercom)
                .await;
        }
        Mock::given(method("POST"))
            .and(path(format!("/conversations/{CONVERSATION}/reply")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "type": "conversation", "id": CONVERSATION,
                "conversation_parts": {"conversation_parts": [{"id": "901", "part_type": "note"}]}})))
            .mount(&self.intercom)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/conversations/{CONVERSATION}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "type": "conversation", "id": CONVERSATION,
                "conversation_parts": {"conversation_parts": []}})))
            .mount(&self.intercom)
            .await;
    }

    /// Posts `body` to `route` with `header: signature`.
    async fn post(&self, route: &str, header: &str, signature: &str, body: &str) -> TestResponse {
        let request = HttpRequest::post(route)
            .header("content-type", "application/json")
            .header(header, signature)
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.oneshot(request).await
    }

    /// A webhook notification, signed as Intercom signs it.
    async fn notify(&self, body: &Value) -> StatusCode {
        let body = body.to_string();
        self.post(
            "/intercom/webhook",
            HUB_SIGNATURE,
            &sign_webhook(SECRET, body.as_bytes()),
            &body,
        )
        .await
        .status
    }

    /// A Canvas Kit request to `route`, signed as Intercom signs it.
    async fn canvas(&self, route: &str, body: &Value) -> TestResponse {
        let body = body.to_string();
        self.post(
            route,
            BODY_SIGNATURE,
            &sign_canvas(SECRET, body.as_bytes()),
            &body,
        )
        .await
    }

    async fn run_all(&self) -> Vec<ExecutionOutcome> {
        let mut outcomes = Vec::new();
        loop {
            match self.app.run_job().await {
                ExecutionOutcome::EmptyQueue => return outcomes,
                outcome => outcomes.push(outcome),
            }
            assert!(
                outcomes.len() < 20,
                "the queue does not drain: {outcomes:?}"
            );
        }
    }

    /// The notes Intercom received, as sent.
    async fn notes(&self) -> Vec<Value> {
        self.intercom
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/reply"))
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }
}

/// A notification of `topic` about the conversation with contacts `c1` (and `c2` when `both`), the
/// customer's newest words being `text`.
fn notification(id: &str, topic: &str, text: &str, both: bool) -> Value {
    let mut contacts = vec![json!({"type": "contact", "id": "c1", "external_id": "u-1"})];
    if both {
        contacts.push(json!({"type": "contact", "id": "c2"}));
    }
    json!({
        "type": "notification_event", "app_id": WORKSPACE, "topic": topic, "id": id,
        "created_at": 1_795_184_000,
        "data": {"type": "notification_event_data", "item": {
            "type": "conversation", "id": CONVERSATION, "created_at": 1_795_183_800,
            "contacts": {"type": "contact.list", "contacts": contacts},
            "source": {"type": "conversation", "id": "s1", "body": "<p>Checkout fails</p>",
                       "author": {"type": "user", "id": "c1"}},
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [
                {"type": "conversation_part", "id": "p1", "part_type": "comment", "body": text,
                 "author": {"type": "user", "id": "c1"}}]}}}
    })
}

/// The session ids a note links to.
fn sessions_in(note: &Value) -> Vec<String> {
    let body = note["body"].as_str().unwrap_or_default();
    ["5:3", "5:1", "7:9"]
        .into_iter()
        .filter(|id| body.contains(&format!("/session/{id}")))
        .map(str::to_owned)
        .collect()
}

/// One note per conversation and session, across Intercom's retries of one notification and both
/// topics, on `backend`.
async fn one_note_per_conversation_and_session(backend: Backend) {
    let rd = Harness::start(backend, |_| {}).await;
    let created = notification(
        "notif_1",
        "conversation.user.created",
        "<p>Checkout fails</p>",
        false,
    );
    for _ in 0..3 {
        assert_eq!(
            rd.notify(&created).await,
            StatusCode::OK,
            "Intercom retries a delivery"
        );
    }
    assert_eq!(
        rd.jobs().await,
        1,
        "one job for three deliveries of one notification"
    );
    // The customer replies naming a colleague: a second notification, a new address.
    let replied = notification(
        "notif_2",
        "conversation.user.replied",
        "<p>My colleague bob@acme.com sees it too</p>",
        true,
    );
    assert_eq!(rd.notify(&replied).await, StatusCode::OK);
    assert_eq!(rd.notify(&replied).await, StatusCode::OK);
    // A reply naming nobody queues nothing.
    let plain_reply = notification(
        "notif_3",
        "conversation.user.replied",
        "<p>thanks</p>",
        true,
    );
    assert_eq!(rd.notify(&plain_reply).await, StatusCode::OK);
    assert_eq!(rd.jobs().await, 2);
    let outcomes = rd.run_all().await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, ExecutionOutcome::Done(_)))
            .count(),
        2,
        "{outcomes:?}"
    );
    // A later reply naming jane again adds nothing: every session is on the conversation.
    let again = notification(
        "notif_4",
        "conversation.user.replied",
        "<p>it is jane@acme.com again</p>",
        true,
    );
    assert_eq!(rd.notify(&again).await, StatusCode::OK);
    rd.run_all().await;

    let notes = rd.notes().await;
    assert_eq!(notes.len(), 2, "{notes:#?}");
    for note in &notes {
        assert_eq!(note["type"], json!("admin"));
        assert_eq!(note["message_type"], json!("note"));
        assert_eq!(note["admin_id"], json!(ADMIN));
        let body = note["body"].as_str().unwrap();
        assert!(
            !body.contains("jane@acme.com") && !body.contains("bob@acme.com"),
            "redacted"
        );
        assert!(
            body.contains("replaydesk · ref rd-"),
            "the ledger's reference: {body}"
        );
    }
    assert_eq!(sessions_in(&notes[0]), ["5:3", "5:1"]);
    assert_eq!(
        sessions_in(&notes[1]),
        ["7:9"],
        "only the new customer's session"
    );
    // Each lookup is audited, under the workspace and conversation.
    let audited = super::helpers::audited_lookups(&rd.state, "jane@acme.com").await;
    assert!(!audited.is_empty());
    // Every Intercom call carried the token and the API version.
    for request in rd.intercom.received_requests().await.unwrap() {
        assert_eq!(
            request.headers.get("authorization").unwrap(),
            "Bearer intercom-test-token"
        );
        assert_eq!(request.headers.get("intercom-version").unwrap(), "2.11");
    }
}

#[tokio::test]
async fn one_note_per_conversation_and_session_across_retries_and_both_topics_on_sqlite() {
    one_note_per_conversation_and_session(Backend::Sqlite).await;
}

#[tokio::test]
async fn one_note_per_conversation_and_session_across_retries_and_both_topics_on_postgres() {
    one_note_per_conversation_and_session(Backend::Postgres).await;
}

#[tokio::test]
async fn a_worker_that_died_after_posting_finds_its_note_and_does_not_post_again() {
    let rd = Harness::start(Backend::Sqlite, |_| {}).await;
    assert_eq!(
        rd.notify(&notification("n1", "conversation.user.created", "", false))
            .await,
        StatusCode::OK
    );
    // The note was posted by a worker that died before recording it: its intent and marker are in
    // the ledger, the note (with the marker) on the conversation.
    let job = rd.store.list_jobs(None, 10).await.unwrap()[0].id;
    let marker = format!("rd-{job}-note-0000beef");
    rd.store
        .record_effect_intent(job, "note", &marker, rd.clock.now())
        .await
        .unwrap();
    rd.intercom.reset().await;
    rd.mount_intercom_with_note(&marker).await;
    rd.run_all().await;
    assert!(
        rd.notes().await.is_empty(),
        "the note was found, not posted again"
    );
    let effect = rd.store.effect(job, "note").await.unwrap().unwrap();
    assert_eq!(effect.external_id.as_deref(), Some("part:77"));
}

impl Harness {
    /// Intercom as before, its conversation already holding a note with `marker`.
    async fn mount_intercom_with_note(&self, marker: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/conversations/{CONVERSATION}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "type": "conversation", "id": CONVERSATION,
                "conversation_parts": {"conversation_parts": [
                    {"id": "77", "part_type": "note", "body": format!("<p>replaydesk · ref {marker}</p>")}]}})))
            .mount(&self.intercom)
            .await;
        self.mount_intercom().await;
    }
}

/// An initialize request for contact `c1` (jane) beside the conversation.
fn initialize_body() -> Value {
    json!({
        "workspace_id": WORKSPACE, "workspace_region": "us",
        "admin": {"type": "admin", "id": ADMIN},
        "card_creation_options": {},
        "context": {"conversation_id": 123, "location": "conversation"},
        "conversation": {"type": "conversation", "id": CONVERSATION, "created_at": 1_795_183_800},
        "contact": {"type": "user", "id": "c1", "email": "jane@acme.com", "external_id": "u-1"},
    })
}

/// A submit of `component` on a canvas that stored `stored`.
fn submit_body(component: &str, stored: &Value) -> Value {
    let mut body = initialize_body();
    body["component_id"] = json!(component);
    body["input_values"] = json!({});
    body["current_canvas"] = json!({"content": {"components": []}, "stored_data": stored});
    body
}

fn components(canvas: &Value) -> &Vec<Value> {
    canvas["canvas"]["content"]["components"]
        .as_array()
        .unwrap()
}

fn buttons(canvas: &Value) -> Vec<&str> {
    components(canvas)
        .iter()
        .filter(|c| c["type"] == "button")
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_inbox_app_lists_sessions_summarizes_and_adds_one_note() {
    let rd = Harness::start(Backend::Sqlite, |config| {
        config.fullstory.summary_profile = Some("support".into());
    })
    .await;
    Mock::given(path("/v2/sessions/5%3A3/summary"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"summary": "Tried to pay twice."})),
        )
        .mount(&rd.fullstory)
        .await;

    let first = rd
        .canvas("/intercom/canvas/initialize", &initialize_body())
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let canvas = first.json();
    let list = components(&canvas)
        .iter()
        .find(|c| c["type"] == "list")
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(
        list["items"][0]["title"]
            .as_str()
            .unwrap()
            .ends_with("likely")
    );
    assert_eq!(buttons(&canvas), ["summarize", "add_note"]);
    let stored = canvas["canvas"]["stored_data"].clone();
    assert_eq!(stored["state"]["likely"]["id"], json!("5:3"));
    assert!(
        !first.text.contains("jane@acme.com"),
        "no address in the canvas"
    );

    let summarized = rd
        .canvas(
            "/intercom/canvas/submit",
            &submit_body("summarize", &stored),
        )
        .await;
    assert_eq!(summarized.status, StatusCode::OK);
    let text = components(&summarized.json())[0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("Tried to pay twice."), "{text}");

    // "Add as note", pressed twice on one canvas: one job, one note.
    for _ in 0..2 {
        let added = rd
            .canvas("/intercom/canvas/submit", &submit_body("add_note", &stored))
            .await;
        assert_eq!(added.status, StatusCode::OK);
        assert!(added.text.contains("on its way"), "{}", added.text);
    }
    assert_eq!(rd.jobs().await, 1);
    rd.run_all().await;
    let notes = rd.notes().await;
    assert_eq!(notes.len(), 1);
    assert_eq!(sessions_in(&notes[0]), ["5:3", "5:1"]);
    // The webhook's note for the same conversation adds nothing now: the sessions are there.
    assert_eq!(
        rd.notify(&notification("n9", "conversation.user.created", "", false))
            .await,
        StatusCode::OK
    );
    rd.run_all().await;
    assert_eq!(rd.notes().await.len(), 1);

    // Audited: the canvas's lookups and the summary, under the admin.
    let audit = rd.store.audit(None, None, 100).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    assert!(
        actions.contains(&"canvas.sessions") && actions.contains(&"canvas.summary"),
        "{actions:?}"
    );

    // A stored state we did not sign is never acted on: the canvas starts afresh.
    let mut forged = stored.clone();
    forged["state"]["likely"]["id"] = json!("7:9");
    let afresh = rd
        .canvas(
            "/intercom/canvas/submit",
            &submit_body("summarize", &forged),
        )
        .await;
    assert_eq!(afresh.status, StatusCode::OK);
    assert!(!afresh.text.contains("Summary"), "{}", afresh.text);
}

#[tokio::test]
async fn a_slow_fullstory_gives_a_loading_canvas_and_refresh_shows_the_answer() {
    let rd = Harness::start(Backend::Sqlite, |config| {
        config.intercom.canvas_wait = Interval(Duration::from_millis(300));
    })
    .await;
    Mock::given(path("/sessions/v2"))
        .and(query_param("email", "slow@acme.com"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"sessions": [fs_session("8", "1", "2026-11-20T10:00:00Z")]}))
                .set_delay(Duration::from_millis(900)),
        )
        .mount(&rd.fullstory)
        .await;
    let mut body = initialize_body();
    body["contact"] = json!({"type": "user", "id": "c3", "email": "slow@acme.com"});
    let loading = rd.canvas("/intercom/canvas/initialize", &body).await;
    assert_eq!(loading.status, StatusCode::OK);
    let canvas = loading.json();
    assert!(
        components(&canvas)[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Loading")
    );
    assert_eq!(buttons(&canvas), ["refresh"]);
    // The lookup went on; its answer is in the cache for the refresh.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut refresh = body.clone();
    refresh["component_id"] = json!("refresh");
    refresh["current_canvas"] = json!({"stored_data": canvas["canvas"]["stored_data"]});
    let refreshed = rd.canvas("/intercom/canvas/submit", &refresh).await;
    assert!(
        components(&refreshed.json())
            .iter()
            .any(|c| c["type"] == "list"),
        "{}",
        refreshed.text
    );
    let calls = rd
        .fullstory
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains("slow%40acme.com")))
        .count();
    assert_eq!(
        calls, 1,
        "the refresh was answered from the lookup that went on"
    );
}

#[tokio::test]
async fn a_canvas_with_a_hundred_long_sessions_and_a_long_summary_stays_within_64_kb() {
    let rd = Harness::start(Backend::Sqlite, |config| {
        config.fullstory.limit = 100;
        config.fullstory.summary_profile = Some("support".into());
    })
    .await;
    let long: Vec<Value> = (0..100)
        .map(|i| {
            let mut s = fs_session("9", &i.to_string(), "2026-11-20T10:00:00Z");
            s["fsUrl"] = json!(format!(
                "https://app.fullstory.com/ui/o-1/session/9:{i}?x={}",
                "y".repeat(1_900)
            ));
            s
        })
        .collect();
    rd.fullstory.reset().await;
    sessions_for(&rd.fullstory, "jane@acme.com", long).await;
    Mock::given(path("/sessions/v2"))
        .and(query_param("uid", "u-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"sessions": []})))
        .mount(&rd.fullstory)
        .await;
    Mock::given(path_regex("^/v2/sessions/.+/summary$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"summary": "[x](y) ".repeat(20_000)})),
        )
        .mount(&rd.fullstory)
        .await;
    let first = rd
        .canvas("/intercom/canvas/initialize", &initialize_body())
        .await;
    let canvas = first.json();
    let content = canvas["canvas"]["content"].to_string().len();
    assert!(content <= 64_000, "{content} bytes of content");
    assert!(first.text.contains("more part"), "what did not fit is said");
    let stored = canvas["canvas"]["stored_data"].clone();
    let summarized = rd
        .canvas(
            "/intercom/canvas/submit",
            &submit_body("summarize", &stored),
        )
        .await;
    let summarized = summarized.json();
    let content = summarized["canvas"]["content"].to_string().len();
    assert!(content <= 64_000, "{content} bytes with the summary");
    assert!(
        !summarized.to_string().contains("[x](y)"),
        "markdown from outside is escaped"
    );
}

#[tokio::test]
async fn wrong_signatures_are_refused_with_401_and_the_known_answer_vectors_pass() {
    let rd = Harness::start(Backend::Sqlite, |_| {}).await;
    // The independently computed vectors verify through the router (a ping is answered and ignored;
    // the canvas request names no contact).
    let ping = rd
        .post(
            "/intercom/webhook",
            HUB_SIGNATURE,
            KAT_WEBHOOK_SIGNATURE,
            KAT_WEBHOOK,
        )
        .await;
    assert_eq!(ping.status, StatusCode::OK, "{}", ping.text);
    let canvas = rd
        .post(
            "/intercom/canvas/initialize",
            BODY_SIGNATURE,
            KAT_CANVAS_SIGNATURE,
            KAT_CANVAS,
        )
        .await;
    assert_eq!(canvas.status, StatusCode::OK, "{}", canvas.text);

    let body = notification("n1", "conversation.user.created", "", false).to_string();
    let unsigned = rd.oneshot(
        HttpRequest::post("/intercom/webhook")
            .body(Body::from(body.clone()))
            .unwrap(),
    );
    assert_eq!(unsigned.await.status, StatusCode::UNAUTHORIZED);
    let wrong = sign_webhook("not-the-secret", body.as_bytes());
    assert_eq!(
        rd.post("/intercom/webhook", HUB_SIGNATURE, &wrong, &body)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // The canvas's scheme is not the webhook's: a SHA-256 signature under X-Hub-Signature is refused,
    // and so is the webhook's under X-Body-Signature.
    let sha256 = format!("sha1={}", sign_canvas(SECRET, body.as_bytes()));
    assert_eq!(
        rd.post("/intercom/webhook", HUB_SIGNATURE, &sha256, &body)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let init = initialize_body().to_string();
    let crossed = sign_webhook(SECRET, init.as_bytes());
    assert_eq!(
        rd.post(
            "/intercom/canvas/initialize",
            BODY_SIGNATURE,
            &crossed[5..],
            &init
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(rd.jobs().await, 0, "nothing queued for a refused request");
}

#[tokio::test]
async fn an_unknown_workspace_is_403_a_bad_body_400_and_an_oversized_one_413() {
    let rd = Harness::start(Backend::Sqlite, |_| {}).await;
    let mut other = notification("n1", "conversation.user.created", "", false);
    other["app_id"] = json!("ws-other");
    assert_eq!(rd.notify(&other).await, StatusCode::FORBIDDEN);
    let mut body = initialize_body();
    body["workspace_id"] = json!("ws-other");
    assert_eq!(
        rd.canvas("/intercom/canvas/initialize", &body).await.status,
        StatusCode::FORBIDDEN
    );

    let broken = "{\"app_id\": \"ws1\", \"topic\": ";
    let malformed = rd
        .post(
            "/intercom/webhook",
            HUB_SIGNATURE,
            &sign_webhook(SECRET, broken.as_bytes()),
            broken,
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed.json()["error"],
        json!("malformed request: topic: the body is not valid JSON")
    );
    let no_conversation = json!({"type": "notification_event", "app_id": WORKSPACE,
        "topic": "conversation.user.created", "id": "n2", "data": {"item": {"type": "conversation"}}});
    let refused = rd
        .post(
            "/intercom/webhook",
            HUB_SIGNATURE,
            &sign_webhook(SECRET, no_conversation.to_string().as_bytes()),
            &no_conversation.to_string(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.text.contains("data.item: missing field `id`"),
        "{}",
        refused.text
    );
    let no_workspace = r#"{"admin": {"id": "1"}}"#;
    let refused = rd
        .post(
            "/intercom/canvas/initialize",
            BODY_SIGNATURE,
            &sign_canvas(SECRET, no_workspace.as_bytes()),
            no_workspace,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.text.contains("workspace_id"), "{}", refused.text);

    let huge = format!(
        "{{\"app_id\":\"ws1\",\"topic\":\"x\",\"id\":\"n\",\"pad\":\"{}\"}}",
        "a".repeat(300 * 1024)
    );
    let oversized = rd
        .post(
            "/intercom/webhook",
            HUB_SIGNATURE,
            &sign_webhook(SECRET, huge.as_bytes()),
            &huge,
        )
        .await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(rd.jobs().await, 0);
}

#[tokio::test]
async fn an_erasure_names_the_conversations_it_noted_the_customer_on() {
    let rd = Harness::start(Backend::Sqlite, |_| {}).await;
    assert_eq!(
        rd.notify(&notification("n1", "conversation.user.created", "", false))
            .await,
        StatusCode::OK
    );
    rd.run_all().await;
    assert_eq!(rd.notes().await.len(), 1);
    // FullStory: jane's sessions belong to user 5, uid u-1, deleted by uid.
    Mock::given(method("GET"))
        .and(path("/v2/users/5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "5", "uid": "u-1"})))
        .mount(&rd.fullstory)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2/users"))
        .and(query_param("uid", "u-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&rd.fullstory)
        .await;
    let id = super::privacy::enqueue_erasure(&rd.state).await;
    assert_eq!(rd.app.run_job().await, ExecutionOutcome::Done(id));
    let receipt = replaydesk::privacy::ErasureReceipt::of_job(&rd.store, id)
        .await
        .unwrap();
    let shown = receipt
        .done
        .iter()
        .find(|line| line.starts_with("replay links for this customer were posted at"))
        .unwrap_or_else(|| panic!("{receipt:?}"));
    assert!(shown.contains("intercom conversation 123"), "{shown}");
    assert!(!shown.contains("jane@acme.com"), "{shown}");
}

#[tokio::test]
async fn a_workspace_over_its_allowance_gets_busy_with_refresh_and_its_note_waits() {
    let rd = Harness::start(Backend::Sqlite, |config| {
        config.intercom.workspace_lookups_per_minute = 1;
        config.limits.per_source_burst = 1;
    })
    .await;
    let first = rd
        .canvas("/intercom/canvas/initialize", &initialize_body())
        .await;
    assert!(first.text.contains("\"list\""), "{}", first.text);
    let busy = rd
        .canvas("/intercom/canvas/initialize", &initialize_body())
        .await
        .json();
    let text = components(&busy)[0]["text"].as_str().unwrap();
    assert!(text.contains("many requests from this workspace"), "{text}");
    assert_eq!(buttons(&busy), ["refresh"]);
    // The note of a new conversation is delayed, never dropped (Intercom does not resend it).
    assert_eq!(
        rd.notify(&notification("n1", "conversation.user.created", "", false))
            .await,
        StatusCode::OK
    );
    assert!(matches!(
        rd.app.run_job().await,
        ExecutionOutcome::Delayed(_)
    ));
    assert!(rd.notes().await.is_empty());
    assert_eq!(rd.jobs().await, 1);
}

#[tokio::test]
async fn every_contact_is_looked_up_by_email_and_external_id_within_max_per_request() {
    let rd = Harness::start(Backend::Sqlite, |config| {
        config.identity.max_per_request = 2;
    })
    .await;
    // Two contacts: jane (an email and an external id: two identities, the cap) and bob.
    let created = notification("n1", "conversation.user.created", "", true);
    assert_eq!(rd.notify(&created).await, StatusCode::OK);
    rd.run_all().await;
    let contacts_read: Vec<String> = rd
        .intercom
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/contacts/"))
        .map(|r| r.url.path().to_owned())
        .collect();
    assert_eq!(
        contacts_read,
        ["/contacts/c1"],
        "bob is past the cap: not even read"
    );
    let asked: Vec<String> = rd
        .fullstory
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/sessions/v2")
        .filter_map(|r| r.url.query().map(str::to_owned))
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked.iter().any(|q| q.contains("email=jane%40acme.com")),
        "{asked:?}"
    );
    assert!(asked.iter().any(|q| q.contains("uid=u-1")), "{asked:?}");
    assert_eq!(sessions_in(&rd.notes().await[0]), ["5:3", "5:1"]);
}

#[tokio::test]
async fn with_the_digest_on_request_the_inbox_app_offers_it_and_fetches_it_when_clicked() {
    let rd = Harness::start(Backend::Sqlite, |config| {
        config.fullstory.digest = replaydesk::config::DigestMode::OnRequest;
    })
    .await;
    Mock::given(path("/v2/sessions/5%3A3/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events": [
            {"event_time": "2026-11-20T14:03:00Z", "event_type": "navigate",
             "event_properties": {"url": "https://shop/cart"}},
            {"event_time": "2026-11-20T14:04:00Z", "event_type": "rage-click"}
        ]})))
        .expect(1)
        .mount(&rd.fullstory)
        .await;
    let first = rd
        .canvas("/intercom/canvas/initialize", &initialize_body())
        .await
        .json();
    assert_eq!(buttons(&first), ["digest", "add_note"], "{first}");
    let stored = first["canvas"]["stored_data"].clone();

    let asked = rd
        .canvas("/intercom/canvas/submit", &submit_body("digest", &stored))
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
    let asked = asked.json();
    assert!(asked.to_string().contains("rage"), "{asked}");
    assert_eq!(
        buttons(&asked),
        ["add_note"],
        "the digest is there: no button for it"
    );
    let report = rd.state.activations.report().await.unwrap();
    assert_eq!((report.automatic, report.on_request), (0, 1));
}

// ------------------------------------------------------------------ escalation (issue 25)

/// "Escalate to Linear" on the inbox app, on `backend`: a double click makes one job, one Linear issue
/// and one "Escalated to" note on the conversation; pressed again, the canvas says it is already
/// escalated, with the issue, and queues nothing.
async fn one_issue_and_one_note_from_the_inbox_app(backend: Backend) {
    let linear = super::escalate::FakeLinear::default();
    let server = linear.start().await;
    let uri = server.uri();
    let rd = Harness::start(backend, move |c| super::escalate::linear_at(c, &uri)).await;
    let first = rd
        .canvas("/intercom/canvas/initialize", &initialize_body())
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let canvas = first.json();
    assert_eq!(buttons(&canvas), ["escalate_linear", "add_note"]);
    let button = components(&canvas)
        .iter()
        .find(|c| c["id"] == "escalate_linear")
        .unwrap();
    assert_eq!(button["label"], "Escalate to Linear");
    let stored = canvas["canvas"]["stored_data"].clone();

    for _ in 0..2 {
        let pressed = rd
            .canvas(
                "/intercom/canvas/submit",
                &submit_body("escalate_linear", &stored),
            )
            .await;
        assert_eq!(pressed.status, StatusCode::OK, "{}", pressed.text);
        assert!(
            pressed.text.contains("Escalation to Linear queued"),
            "{}",
            pressed.text
        );
    }
    assert_eq!(rd.jobs().await, 1, "a double click queues one job");
    rd.run_all().await;
    assert_eq!(linear.issues(), 1);
    let description = linear.creates()[0]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        description.contains("app.intercom.com/a/inbox/ws1/inbox/conversation/123"),
        "the issue links the conversation: {description}"
    );
    assert!(
        description.contains("5:3"),
        "the likely session: {description}"
    );
    assert!(
        !description.contains("jane@acme.com"),
        "masked: {description}"
    );
    let escalated: Vec<String> = rd
        .notes()
        .await
        .iter()
        .map(|n| n["body"].as_str().unwrap_or_default().to_owned())
        .filter(|body| body.contains("Escalated to"))
        .collect();
    assert_eq!(escalated.len(), 1, "{escalated:?}");
    assert!(escalated[0].contains("LIN-123"), "{escalated:?}");
    let note = rd.notes().await;
    let note = note
        .iter()
        .find(|n| {
            n["body"]
                .as_str()
                .unwrap_or_default()
                .contains("Escalated to")
        })
        .unwrap();
    assert_eq!(note["message_type"], "note", "an internal note: {note}");

    // Pressed again (another canvas, later): already escalated, nothing queued.
    let again = rd
        .canvas(
            "/intercom/canvas/submit",
            &submit_body("escalate_linear", &stored),
        )
        .await;
    assert!(
        again
            .text
            .contains("Already escalated: LIN-123 https://linear.app/acme/issue/LIN-123"),
        "{}",
        again.text
    );
    assert_eq!(rd.jobs().await, 1);
    rd.run_all().await;
    assert_eq!(linear.issues(), 1);
}

#[tokio::test]
async fn escalate_from_the_inbox_app_makes_one_issue_and_one_note_on_sqlite() {
    one_issue_and_one_note_from_the_inbox_app(Backend::Sqlite).await;
}

#[tokio::test]
async fn escalate_from_the_inbox_app_makes_one_issue_and_one_note_on_postgres() {
    one_issue_and_one_note_from_the_inbox_app(Backend::Postgres).await;
}

#[tokio::test]
async fn with_both_trackers_on_the_inbox_app_offers_a_button_for_each() {
    let rd = Harness::start(Backend::Sqlite, |c| {
        super::escalate::linear_at(c, "http://127.0.0.1:9");
        super::escalate::jira_at(c, "https://acme.atlassian.net");
    })
    .await;
    let canvas = rd
        .canvas("/intercom/canvas/initialize", &initialize_body())
        .await
        .json();
    assert_eq!(
        buttons(&canvas),
        ["escalate_linear", "escalate_jira", "add_note"]
    );
    // A contact without an email address: nothing to escalate with, so no Escalate button.
    let mut anonymous = initialize_body();
    anonymous["contact"] = json!({"type": "user", "id": "c9", "external_id": "u-1"});
    let canvas = rd
        .canvas("/intercom/canvas/initialize", &anonymous)
        .await
        .json();
    assert!(
        !buttons(&canvas).iter().any(|b| b.starts_with("escalate")),
        "{canvas}"
    );
}
