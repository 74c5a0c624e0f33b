//! Zendesk end to end: webhooks signed exactly as Zendesk signs them go through the real router; the
//! queue is stepped with `try_execute_one`; Zendesk and FullStory are fakes on loopback, started by the
//! shared harness ([`TestApp`]). The Zendesk fake ([`super::fakes::FakeZendesk`]) keeps state like the
//! real API, so the tests assert what a ticket ends up showing, and what each fake received.

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    http::{Request as HttpRequest, StatusCode},
};
use replaydesk::{
    adapters::zendesk::{inbound::ACCOUNT, inbound::INVOCATION, verify},
    config::{Config, Interval, List},
    queue::{ExecutionOutcome, Settings},
    store::JobState,
};
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, path_regex, query_param},
};

use super::helpers::{self, SLACK_SECRET, TestApp, TestAppBuilder};
pub(crate) use super::{
    fakes::{CREATED, NOW, TICKET, at, expected_auth},
    helpers::ZENDESK_SECRET,
};

// ------------------------------------------------------------------ the fake FullStory

pub(crate) fn fs_session(device: &str, session: &str, created: &str) -> Value {
    json!({
        "userId": device,
        "sessionId": session,
        "createdTime": at(created).timestamp().to_string(),
        "fsUrl": format!("https://app.fullstory.com/ui/o-1/session/{device}:{session}"),
    })
}

/// A page view, a rage click and a console error at `times` (within the session they belong to: the
/// digest ignores times outside it).
fn three_events(times: [&str; 3]) -> Value {
    json!({"events": [
        {"event_time": times[0], "event_type": "navigate", "event_properties": {"url": "https://shop/cart"}},
        {"event_time": times[1], "event_type": "rage-click"},
        {"event_time": times[2], "event_type": "console-error"},
    ]})
}

/// Every session's events: three of them within its first minutes.
async fn mount_session_events(server: &MockServer) {
    // bob's 7:9 began on the 18th; the other sessions on the 20th.
    Mock::given(path("/v2/sessions/7%3A9/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(three_events([
            "2026-11-18T08:00:00Z",
            "2026-11-18T08:02:00Z",
            "2026-11-18T08:07:00Z",
        ])))
        .mount(server)
        .await;
    Mock::given(path_regex("^/v2/sessions/.+/events$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(three_events([
            "2026-11-20T14:02:00Z",
            "2026-11-20T14:04:00Z",
            "2026-11-20T14:09:00Z",
        ])))
        .mount(server)
        .await;
}

pub(crate) async fn sessions_for(fullstory: &MockServer, email: &str, sessions: Vec<Value>) {
    Mock::given(path("/sessions/v2"))
        .and(query_param("email", email))
        .respond_with(ResponseTemplate::new(200).set_body_json(helpers::sessions(sessions)))
        .mount(fullstory)
        .await;
}

/// FullStory summarising jane's session `5:3` as `text`, when asked to cut it at the ticket's creation.
pub(crate) fn summary_of_jane_s_session(text: &str) -> Mock {
    Mock::given(path("/v2/sessions/5%3A3/summary"))
        .and(query_param("end_timestamp", CREATED))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "summary": text })))
}

/// Emails FullStory was asked about, in order.
async fn looked_up(fullstory: &MockServer) -> Vec<String> {
    fullstory
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/sessions/v2")
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "email")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

// ------------------------------------------------------------------ the service

/// The service with Zendesk on (the stateful fake) and the Zendesk tests' settings: the clock at
/// [`NOW`], caches that forget at once, few attempts without backoff, the agents' domain excluded;
/// FullStory's events of every session mounted.
pub(crate) struct Harness(TestApp);

impl std::ops::Deref for Harness {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.0
    }
}

impl Harness {
    pub(crate) async fn start(tweak: impl FnOnce(&mut Config) + 'static) -> Self {
        Self::start_from(Self::builder(tweak)).await
    }

    /// The Zendesk tests' app, not started yet: for a test that needs more of the builder.
    pub(crate) fn builder(tweak: impl FnOnce(&mut Config) + 'static) -> TestAppBuilder {
        TestApp::builder()
            .zendesk()
            .clock_at(at(NOW))
            .queue_settings(Settings {
                max_attempts: 3,
                backoff_base: Duration::ZERO,
                ..Settings::default()
            })
            .configure(|config| {
                config.fullstory.cache_ttl = Interval(Duration::from_millis(1));
                config.fullstory.negative_cache_ttl = Interval(Duration::from_millis(1));
                config.zendesk.timeout = Interval(Duration::from_millis(1500));
                config.identity.exclude_domains = List(vec!["help.io".into()]);
            })
            .configure(tweak)
    }

    pub(crate) async fn start_from(builder: TestAppBuilder) -> Self {
        let app = builder.start().await;
        assert!(
            app.platforms().contains(&"zendesk"),
            "the Zendesk adapter is on"
        );
        mount_session_events(&app.fullstory).await;
        Self(app)
    }

    /// The default harness, FullStory knowing one session of jane@acme.com (the ticket's requester).
    async fn with_a_session_for_jane() -> Self {
        Self::with_a_session_for_jane_and(|_| {}).await
    }

    /// [`Self::with_a_session_for_jane`] with `tweak` applied to the configuration.
    pub(crate) async fn with_a_session_for_jane_and(
        tweak: impl FnOnce(&mut Config) + 'static,
    ) -> Self {
        Self::with_a_session_for_jane_from(Self::builder(tweak)).await
    }

    /// [`Self::with_a_session_for_jane`] from a builder of [`Self::builder`]'s.
    pub(crate) async fn with_a_session_for_jane_from(builder: TestAppBuilder) -> Self {
        let rd = Self::start_from(builder).await;
        sessions_for(
            &rd.fullstory,
            "jane@acme.com",
            vec![fs_session("5", "3", "2026-11-20T14:02:00Z")],
        )
        .await;
        rd
    }

    /// Posts `body` to the router signed as Zendesk signs it, now.
    async fn deliver_signed(
        &self,
        invocation: &str,
        body: &str,
        secret: &str,
        timestamp: &str,
    ) -> (StatusCode, Value) {
        self.deliver_from(Some("9001"), invocation, body, secret, timestamp)
            .await
    }

    /// [`Self::deliver_signed`] from the Zendesk account `account` (`None`: no account header).
    async fn deliver_from(
        &self,
        account: Option<&str>,
        invocation: &str,
        body: &str,
        secret: &str,
        timestamp: &str,
    ) -> (StatusCode, Value) {
        let signature = verify::sign(secret, timestamp, body.as_bytes());
        let mut request = HttpRequest::post("/zendesk/webhook")
            .header("content-type", "application/json")
            .header(verify::TIMESTAMP, timestamp)
            .header(verify::SIGNATURE, signature)
            .header(INVOCATION, invocation)
            .header("x-zendesk-webhook-id", "01HWEBHOOK");
        if let Some(account) = account {
            request = request.header(ACCOUNT, account);
        }
        let response = self
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await;
        (response.status, response.json())
    }

    pub(crate) async fn deliver(&self, invocation: &str, body: &str) -> StatusCode {
        let now = self.clock.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        self.deliver_signed(invocation, body, ZENDESK_SECRET, &now)
            .await
            .0
    }

    pub(crate) async fn note_puts(&self) -> Vec<Value> {
        self.zendesk()
            .bodies("PUT", &format!("/api/v2/tickets/{TICKET}.json"))
            .await
    }
}

pub(crate) fn created_body(ticket: u64) -> String {
    format!(
        r#"{{"ticket_id": "{ticket}", "updated_at": "2026-11-20T14:10Z", "requester_email": "jane@acme.com"}}"#
    )
}

fn replied_body(ticket: u64, minute: u32) -> String {
    format!(
        r#"{{"ticket_id": "{ticket}", "updated_at": "2026-11-20T14:{minute}Z", "requester_email": "jane@acme.com"}}"#
    )
}

/// The note's HTML with the ledger reference's random part made stable.
fn stable(html: &str) -> String {
    regex::Regex::new(r"rd-\d+-note-[0-9a-f]{8}")
        .unwrap()
        .replace_all(html, "rd-[job]-note-[random]")
        .into_owned()
}

pub(crate) fn done(outcomes: &[ExecutionOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, ExecutionOutcome::Done(_)))
        .count()
}

// ------------------------------------------------------------------ the tests

#[tokio::test]
async fn a_new_ticket_gets_exactly_one_private_note_with_the_replays_and_the_tag() {
    let rd = Harness::start(|_| {}).await;
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

    assert_eq!(
        rd.deliver("inv-1", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(done(&rd.run_jobs().await), 1);

    let puts = rd.note_puts().await;
    assert_eq!(puts.len(), 1);
    let ticket = &puts[0]["ticket"];
    assert_eq!(ticket["comment"]["public"], json!(false));
    assert_eq!(ticket["safe_update"], json!(true));
    assert_eq!(ticket["updated_stamp"], json!("2026-11-20T14:10:00Z"));
    let html = ticket["comment"]["html_body"].as_str().unwrap();
    assert!(!html.contains("jane@acme.com"), "addresses are redacted");
    insta::assert_snapshot!(stable(html));

    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
    assert_eq!(rd.zendesk().tags(TICKET), ["replaydesk"]);
    let tag_path = format!("/api/v2/tickets/{TICKET}/tags");
    assert_eq!(
        rd.zendesk().bodies("PUT", &tag_path).await,
        [json!({"tags": ["replaydesk"]})]
    );
    assert!(
        rd.zendesk().bodies("POST", &tag_path).await.is_empty(),
        "POST would replace every tag"
    );
    assert_eq!(
        looked_up(&rd.fullstory).await,
        ["jane@acme.com", "bob@acme.com"]
    );
}

#[tokio::test]
async fn the_same_delivery_three_times_gives_one_job_and_one_note() {
    let rd = Harness::with_a_session_for_jane().await;
    for _ in 0..3 {
        assert_eq!(
            rd.deliver("inv-same", &created_body(TICKET)).await,
            StatusCode::OK
        );
    }
    assert_eq!(rd.jobs().await, 1);
    assert_eq!(done(&rd.run_jobs().await), 1);
    assert_eq!(rd.note_puts().await.len(), 1);
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
}

#[tokio::test]
async fn one_action_fired_twice_under_two_invocation_ids_gives_one_note() {
    let rd = Harness::with_a_session_for_jane().await;
    assert_eq!(
        rd.deliver("inv-a", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(
        rd.deliver("inv-b", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(
        rd.jobs().await,
        1,
        "the repeated content was not queued again"
    );
    // Zendesk retrying the first invocation is still answered (and still one job).
    assert_eq!(
        rd.deliver("inv-a", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(rd.jobs().await, 1);
    rd.run_jobs().await;
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
}

#[tokio::test]
async fn two_jobs_for_one_ticket_never_post_the_same_session_twice() {
    let rd = Harness::with_a_session_for_jane().await;
    // Different bodies (different update times): both are queued.
    assert_eq!(
        rd.deliver("inv-a", &replied_body(TICKET, 11)).await,
        StatusCode::OK
    );
    assert_eq!(
        rd.deliver("inv-b", &replied_body(TICKET, 12)).await,
        StatusCode::OK
    );
    assert_eq!(rd.jobs().await, 2);
    assert_eq!(done(&rd.run_jobs().await), 2);
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
    assert_eq!(rd.note_puts().await.len(), 1);
}

#[tokio::test]
async fn a_later_trigger_posts_only_the_new_session_and_then_nothing() {
    let rd = Harness::start(|_| {}).await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    sessions_for(
        &rd.fullstory,
        "jane@acme.com",
        vec![fs_session("5", "1", "2026-11-20T14:02:00Z")],
    )
    .await;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    rd.run_jobs().await;
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);

    // The customer came back, had a new session, and replied.
    rd.fullstory.reset().await;
    let events = json!({"events": []});
    Mock::given(path_regex("^/v2/sessions/.+/events$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(events))
        .mount(&rd.fullstory)
        .await;
    sessions_for(
        &rd.fullstory,
        "jane@acme.com",
        vec![
            fs_session("5", "2", "2026-11-20T14:40:00Z"),
            fs_session("5", "1", "2026-11-20T14:02:00Z"),
        ],
    )
    .await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    rd.zendesk()
        .add_public_comment(TICKET, "Still broken, tried again just now.");
    rd.deliver("inv-2", &replied_body(TICKET, 50)).await;
    rd.run_jobs().await;
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 2);
    assert!(notes[1].contains("/session/5:2\""), "{}", notes[1]);
    assert!(!notes[1].contains("/session/5:1\""), "{}", notes[1]);

    // Nothing new: a third trigger adds nothing.
    rd.zendesk().add_public_comment(TICKET, "Any news?");
    rd.deliver("inv-3", &replied_body(TICKET, 55)).await;
    assert_eq!(done(&rd.run_jobs().await), 1);
    assert_eq!(rd.zendesk().notes(TICKET).len(), 2);
    assert_eq!(rd.note_puts().await.len(), 2);
}

#[tokio::test]
async fn a_worker_that_died_after_the_put_finds_its_note_and_does_not_post_again() {
    let rd = Harness::with_a_session_for_jane().await;
    // Zendesk makes the note but the answer never reaches us: the attempt fails after the PUT.
    rd.zendesk().state.lock().unwrap().slow_puts = 1;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    let outcomes = rd.run_jobs().await;
    assert!(
        matches!(outcomes[0], ExecutionOutcome::Waiting(_)),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes.last(), Some(ExecutionOutcome::Done(_))),
        "{outcomes:?}"
    );
    assert_eq!(rd.note_puts().await.len(), 1, "the note was not sent again");
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
    assert_eq!(rd.zendesk().tags(TICKET), ["replaydesk"]);
    let job = rd.state.store.list_jobs(None, 1).await.unwrap().remove(0);
    let note = rd
        .state
        .store
        .effect(job.id, "note")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(note.external_id.as_deref(), Some("comment:101"));
}

#[tokio::test]
async fn a_stale_stamp_is_retried_with_the_fresh_one_after_409() {
    let rd = Harness::with_a_session_for_jane().await;
    rd.zendesk().state.lock().unwrap().conflicts = 1;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    assert_eq!(done(&rd.run_jobs().await), 1);
    let stamps: Vec<Value> = rd
        .note_puts()
        .await
        .iter()
        .map(|put| put["ticket"]["updated_stamp"].clone())
        .collect();
    assert_eq!(
        stamps,
        [json!("2026-11-20T14:10:00Z"), json!("2026-11-20T14:11:00Z")]
    );
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
}

#[tokio::test]
async fn a_429_from_zendesk_is_waited_out_then_the_note_is_posted_once() {
    let rd = Harness::with_a_session_for_jane().await;
    rd.zendesk().state.lock().unwrap().rate_limits = 1;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    let started = Instant::now();
    assert_eq!(done(&rd.run_jobs().await), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(rd.note_puts().await.len(), 2);
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
}

#[tokio::test]
async fn a_5xx_to_the_note_is_not_resent_in_place_but_by_the_next_attempt() {
    let rd = Harness::with_a_session_for_jane().await;
    rd.zendesk().state.lock().unwrap().server_errors = 1;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    let outcomes = rd.run_jobs().await;
    assert!(
        matches!(
            outcomes[..],
            [ExecutionOutcome::Waiting(_), ExecutionOutcome::Done(_)]
        ),
        "{outcomes:?}"
    );
    assert_eq!(rd.note_puts().await.len(), 2);
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
}

#[tokio::test]
async fn when_fullstory_stays_down_past_max_delay_the_ticket_gets_one_note_and_the_job_expires() {
    let rd = Harness::start(|config| {
        config.zendesk.max_delay = Interval(Duration::from_secs(120));
    })
    .await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&rd.fullstory)
        .await;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    let outcomes = rd.run_jobs().await;
    let (last, waits) = outcomes.split_last().unwrap();
    assert!(matches!(last, ExecutionOutcome::Expired(_)), "{outcomes:?}");
    assert!(
        waits.len() > 3
            && waits
                .iter()
                .all(|o| matches!(o, ExecutionOutcome::Waiting(_))),
        "more waits than max_attempts (3), none counted: {outcomes:?}"
    );
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1, "no 'delayed' notes, one final note");
    assert!(notes[0].contains("took too long"), "{}", notes[0]);
    assert!(notes[0].contains("replaydesk jobs retry"), "{}", notes[0]);
    let job = rd.state.store.list_jobs(None, 1).await.unwrap().remove(0);
    assert_eq!(job.state, replaydesk::store::JobState::Expired);
}

#[tokio::test]
async fn a_bad_or_stale_signature_is_refused_with_401_and_nothing_is_queued() {
    let rd = Harness::start(|_| {}).await;
    let body = created_body(TICKET);
    let now = "2026-11-20T15:00:00Z";
    let (status, _) = rd.deliver_signed("inv-1", &body, "wrong-secret", now).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = rd
        .deliver_signed("inv-2", &body, ZENDESK_SECRET, "2026-11-20T14:54:59Z")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The other configured secret (rotation) is accepted.
    let (status, _) = rd.deliver_signed("inv-3", &body, "old-secret", now).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rd.jobs().await, 1);
}

#[tokio::test]
async fn a_body_without_a_ticket_id_is_refused_with_400_naming_the_field() {
    let rd = Harness::start(|_| {}).await;
    let now = "2026-11-20T15:00:00Z";
    let (status, body) = rd
        .deliver_signed(
            "inv-1",
            r#"{"requester_email": "jane@acme.com"}"#,
            ZENDESK_SECRET,
            now,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("ticket_id"),
        "{body}"
    );
    let (status, body) = rd
        .deliver_signed(
            "inv-2",
            r#"{"comment": "it says "no" "#,
            ZENDESK_SECRET,
            now,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("ticket_id: not found"),
        "{body}"
    );
    assert_eq!(rd.jobs().await, 0);
}

#[tokio::test]
async fn a_body_broken_by_an_unescaped_quote_is_accepted_and_the_rest_read_from_zendesk() {
    let rd = Harness::with_a_session_for_jane().await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    let broken = format!(
        r#"{{"ticket_id": "{TICKET}", "latest_comment": "the "Pay" button", "requester_email": "jane@acme.com"}}"#
    );
    assert_eq!(rd.deliver("inv-1", &broken).await, StatusCode::OK);
    assert_eq!(done(&rd.run_jobs().await), 1);
    let comments_path = format!("/api/v2/tickets/{TICKET}/comments.json");
    assert_eq!(rd.zendesk().bodies("GET", &comments_path).await.len(), 1);
    assert_eq!(
        looked_up(&rd.fullstory).await,
        ["jane@acme.com", "bob@acme.com"]
    );
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
}

#[tokio::test]
async fn another_zendesk_account_is_refused_with_403() {
    let rd = Harness::start(|c| c.zendesk.allowed_account_ids = List(vec!["1234".into()])).await;
    assert_eq!(
        rd.deliver("inv-1", &created_body(TICKET)).await,
        StatusCode::FORBIDDEN
    );
    // The account header is not signed: leaving it out does not get around the list.
    let now = rd.clock.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (status, _) = rd
        .deliver_from(None, "inv-2", &created_body(TICKET), ZENDESK_SECRET, &now)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = rd
        .deliver_from(
            Some("1234"),
            "inv-3",
            &created_body(TICKET),
            ZENDESK_SECRET,
            &now,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rd.jobs().await, 1);
}

#[tokio::test]
async fn a_body_forging_a_second_ticket_id_is_refused_and_erases_nobody() {
    let rd = Harness::start(|c| c.privacy.zendesk_erasure_tag = Some(ERASE_TAG.into())).await;
    // What a comment `x","ticket_id":"4444","tags":"gdpr_erase` makes of a template with free text.
    let forged = r#"{"ticket_id":"1","latest_comment":"x","ticket_id":"4444","tags":"gdpr_erase"}"#;
    let now = rd.clock.now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (status, body) = rd
        .deliver_signed("inv-forged", forged, ZENDESK_SECRET, &now)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("ticket_id: the body names this key twice"),
        "{body}"
    );
    assert_eq!(rd.jobs().await, 0);
}

#[tokio::test]
async fn an_unknown_customer_gets_one_short_note_saying_so() {
    let rd = Harness::start(|_| {}).await;
    sessions_for(&rd.fullstory, "jane@acme.com", vec![]).await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    rd.run_jobs().await;
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1);
    insta::assert_snapshot!(stable(&notes[0]));
    assert_eq!(rd.zendesk().tags(TICKET), ["replaydesk"]);
    // Still nothing later: the ticket already says so.
    rd.zendesk().add_public_comment(TICKET, "Hello?");
    rd.deliver("inv-2", &replied_body(TICKET, 50)).await;
    rd.run_jobs().await;
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
}

#[tokio::test]
async fn an_unknown_customer_gets_no_note_when_note_when_empty_is_off() {
    let rd = Harness::start(|c| c.zendesk.note_when_empty = false).await;
    sessions_for(&rd.fullstory, "jane@acme.com", vec![]).await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    assert_eq!(done(&rd.run_jobs().await), 1);
    assert!(rd.note_puts().await.is_empty());
    assert!(rd.zendesk().tags(TICKET).is_empty());
}

#[tokio::test]
async fn agents_and_our_own_domains_are_never_looked_up() {
    let rd = Harness::start(|c| {
        c.identity.exclude_domains = List(vec!["ourco.com".into()]);
    })
    .await;
    sessions_for(&rd.fullstory, "jane@acme.com", vec![]).await;
    sessions_for(&rd.fullstory, "eve@beta.io", vec![]).await;
    rd.zendesk().add_public_comment(
        TICKET,
        "Forwarding: agent@help.io and billing@ourco.com looked at it; eve@beta.io has it too.",
    );
    rd.deliver("inv-1", r#"{"ticket_id": 35436}"#).await;
    rd.run_jobs().await;
    assert_eq!(
        looked_up(&rd.fullstory).await,
        ["jane@acme.com", "eve@beta.io"]
    );
}

#[tokio::test]
async fn auto_summary_adds_fullstorys_summary_cut_at_the_ticket_creation() {
    let rd = Harness::start(|c| {
        c.zendesk.auto_summary = true;
        c.fullstory.summary_profile = Some("support".into());
    })
    .await;
    sessions_for(
        &rd.fullstory,
        "jane@acme.com",
        vec![fs_session("5", "3", "2026-11-20T14:02:00Z")],
    )
    .await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    summary_of_jane_s_session("Clicked Pay 4 times; nothing happened.")
        .expect(1)
        .mount(&rd.fullstory)
        .await;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    rd.run_jobs().await;
    let notes = rd.zendesk().notes(TICKET);
    assert!(
        notes[0].contains("<strong>Summary</strong>: Clicked Pay 4 times; nothing happened."),
        "{}",
        notes[0]
    );
}

#[tokio::test]
async fn a_refused_fullstory_key_puts_one_failure_note_on_the_ticket() {
    let rd = Harness::start(|_| {}).await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&rd.fullstory)
        .await;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    assert_eq!(done(&rd.run_jobs().await), 1);
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("its API key was refused"), "{}", notes[0]);
    assert!(
        notes[0].contains("<code>replaydesk jobs retry"),
        "the command shows as code, not between literal backticks: {}",
        notes[0]
    );
    assert!(rd.zendesk().tags(TICKET).is_empty());
}

#[tokio::test]
async fn a_missing_ticket_makes_the_job_dead_without_retrying() {
    let rd = Harness::start(|_| {}).await;
    rd.deliver("inv-1", r#"{"ticket_id": "999"}"#).await;
    let outcomes = rd.run_jobs().await;
    assert!(
        matches!(outcomes[..], [ExecutionOutcome::Dead(_)]),
        "{outcomes:?}"
    );
    let dead = rd
        .state
        .store
        .list_jobs(Some(JobState::Dead), 10)
        .await
        .unwrap();
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no such ticket"),
        "{:?}",
        dead[0].last_error
    );
}

#[tokio::test]
async fn the_fullstory_event_is_sent_once_per_ticket_for_the_requester() {
    let rd = Harness::start(|c| c.zendesk.fullstory_event = true).await;
    sessions_for(
        &rd.fullstory,
        "jane@acme.com",
        vec![fs_session("5", "3", "2026-11-20T14:02:00Z")],
    )
    .await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    Mock::given(method("POST"))
        .and(path("/v2/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&rd.fullstory)
        .await;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    rd.run_jobs().await;
    rd.zendesk().add_public_comment(TICKET, "Any news?");
    rd.deliver("inv-2", &replied_body(TICKET, 50)).await;
    rd.run_jobs().await;

    let events: Vec<Value> = rd
        .fullstory
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v2/events")
        .map(|r| r.body_json().unwrap())
        .collect();
    assert_eq!(
        events,
        [json!({
            "name": "Support Ticket Created",
            "timestamp": "2026-11-20T14:10:00.000Z",
            "session": {"use_most_recent": true},
            "user": {"uid": "jane@acme.com"},
            "properties": {
                "ticket_id": TICKET,
                "subject": "Checkout is broken",
                "link": format!("{}/agent/tickets/{TICKET}", rd.zendesk().server.uri()),
            },
        })]
    );
}

// ------------------------------------------------------------------ the commands

/// Runs `replaydesk zendesk …` as a real process against the fakes.
async fn replaydesk(
    dir: &TempDir,
    zendesk: &str,
    fullstory: &str,
    args: &[&str],
) -> std::process::Output {
    replaydesk_with(dir, zendesk, fullstory, args, &[]).await
}

/// [`replaydesk`] with more configuration in the environment.
pub(crate) async fn replaydesk_with(
    dir: &TempDir,
    zendesk: &str,
    fullstory: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_replaydesk"))
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().copied())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REPLAYDESK_ZENDESK__BASE_URL", zendesk)
        .env("REPLAYDESK_ZENDESK__EMAIL", "agent@help.io")
        .env("REPLAYDESK_ZENDESK__API_TOKEN", "zd-token")
        .env("REPLAYDESK_FULLSTORY__API_KEY", "na1.cli-test-key")
        .env("REPLAYDESK_FULLSTORY__BASE_URL", fullstory)
        .env(
            "REPLAYDESK_STORE__URL",
            format!("sqlite://{}/cli.db", dir.path().display()),
        )
        .output()
        .await
        .unwrap()
}

pub(crate) fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn zendesk_setup_prints_the_webhook_and_the_triggers_to_create() {
    let dir = TempDir::new().unwrap();
    let output = replaydesk(
        &dir,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        &["zendesk", "setup", "--url", "https://rd.example.com/"],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains(r#""endpoint": "https://rd.example.com/zendesk/webhook""#),
        "{text}"
    );
    assert!(text.contains(r#""value": "Create""#), "{text}");
    assert!(text.contains("replaydesk: requester replied"), "{text}");
    assert!(
        text.contains(r#"\"ticket_id\": \"{{ticket.id}}\""#),
        "{text}"
    );
    assert!(
        text.contains("\n  \"ticket_id\": \"{{ticket.id}}\",\n"),
        "the template as it is pasted: {text}"
    );
    assert!(text.contains("zendesk.webhook_secret"), "{text}");
}

#[tokio::test]
async fn zendesk_setup_apply_creates_the_webhook_and_triggers_and_prints_the_signing_secret() {
    let zendesk = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/webhooks"))
        .and(wiremock::matchers::header(
            "authorization",
            expected_auth().as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"webhook": {"id": "01HWEBHOOK"}})),
        )
        .expect(1)
        .mount(&zendesk)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/triggers"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"trigger": {"id": 360001}})))
        .expect(2)
        .mount(&zendesk)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/webhooks/01HWEBHOOK/signing_secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"signing_secret": {"algorithm": "SHA256", "secret": "c2lnbmluZy1zZWNyZXQ="}}),
        ))
        .expect(1)
        .mount(&zendesk)
        .await;
    let dir = TempDir::new().unwrap();
    let output = replaydesk(
        &dir,
        &zendesk.uri(),
        "http://127.0.0.1:9",
        &[
            "zendesk",
            "setup",
            "--url",
            "https://rd.example.com",
            "--apply",
        ],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("created webhook 01HWEBHOOK"), "{text}");
    assert!(
        text.contains(r#"webhook_secret = "c2lnbmluZy1zZWNyZXQ=""#),
        "{text}"
    );
    assert!(text.contains("replaydesk zendesk app --url"), "{text}");

    let requests = zendesk.received_requests().await.unwrap();
    let webhook: Value = requests[0].body_json().unwrap();
    assert_eq!(
        webhook["webhook"]["endpoint"],
        json!("https://rd.example.com/zendesk/webhook")
    );
    assert_eq!(
        webhook["webhook"]["subscriptions"],
        json!(["conditional_ticket_events"])
    );
    let triggers: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path() == "/api/v2/triggers")
        .map(|r| r.body_json().unwrap())
        .collect();
    for trigger in &triggers {
        let action = &trigger["trigger"]["actions"][0];
        assert_eq!(action["field"], json!("notification_webhook"));
        assert_eq!(action["value"][0], json!("01HWEBHOOK"));
    }
}

/// A Zendesk user for the export.
fn export_ticket(id: u64, created: &str, requester: u64, status: &str) -> Value {
    json!({"id": id, "subject": format!("ticket {id}"), "created_at": created,
           "updated_at": created, "requester_id": requester, "status": status})
}

#[tokio::test]
async fn zendesk_backfill_sends_past_tickets_in_batches_and_waits_for_each_import() {
    let zendesk = MockServer::start().await;
    let since = at("2026-01-01T00:00:00Z").timestamp().to_string();
    Mock::given(path("/api/v2/incremental/tickets/cursor.json"))
        .and(query_param("start_time", since.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "tickets": [
                export_ticket(1, "2026-02-01T10:00:00Z", 11, "solved"),
                export_ticket(2, "2025-12-24T10:00:00Z", 11, "closed"),
                export_ticket(3, "2026-02-02T10:00:00Z", 11, "deleted"),
                export_ticket(4, "2026-02-03T10:00:00Z", 12, "open"),
            ],
            "users": [
                {"id": 11, "email": "Jane@Acme.com", "role": "end-user"},
                {"id": 12, "email": "agent@help.io", "role": "agent"},
            ],
            "after_cursor": "c2",
            "end_of_stream": false,
        })))
        .mount(&zendesk)
        .await;
    Mock::given(path("/api/v2/incremental/tickets/cursor.json"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "tickets": [export_ticket(5, "2026-03-01T10:00:00Z", 13, "new")],
            "after_cursor": "c3",
            "end_of_stream": true,
        })))
        .mount(&zendesk)
        .await;
    Mock::given(path("/api/v2/users/show_many.json"))
        .and(query_param("ids", "13"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "users": [{"id": 13, "email": "bob@acme.com", "role": "end-user", "external_id": "u-13"}],
        })))
        .expect(1)
        .mount(&zendesk)
        .await;

    let fullstory = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/events/batch"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "imp-1", "status": "PENDING"})),
        )
        .expect(2)
        .mount(&fullstory)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/events/batch/imp-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "imp-1", "status": "PROCESSING"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fullstory)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/events/batch/imp-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "imp-1", "status": "COMPLETED"})),
        )
        .mount(&fullstory)
        .await;

    let dir = TempDir::new().unwrap();
    let args = [
        "zendesk",
        "backfill",
        "--since",
        "2026-01-01",
        "--batch-size",
        "1",
        "--poll-interval",
        "10ms",
    ];
    let output = replaydesk(&dir, &zendesk.uri(), &fullstory.uri(), &args).await;
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    for line in [
        "listed 2 tickets created since 2026-01-01 00:00:00 UTC",
        "listed 3 tickets created since 2026-01-01 00:00:00 UTC",
        "2 events to send (0 already sent, 1 without a customer requester)",
        "batch 1/2: 1 event (1/2 sent with it), import job imp-1 pending",
        "batch 1/2: processing",
        "batch 1/2: completed",
        "batch 2/2: completed",
        "done: 2 events sent to FullStory",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(
        progress.contains("  tickets checked for an event already sent: 3/3"),
        "{progress}"
    );
    let batches: Vec<Value> = fullstory
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| r.body_json().unwrap())
        .collect();
    let uids: Vec<&Value> = batches
        .iter()
        .map(|b| &b["requests"][0]["user"]["uid"])
        .collect();
    assert_eq!(uids, [&json!("jane@acme.com"), &json!("u-13")]);
    assert_eq!(
        batches[0]["requests"][0]["name"],
        json!("Support Ticket Created")
    );
    assert_eq!(
        batches[0]["requests"][0]["properties"]["ticket_id"],
        json!(1)
    );
    assert_eq!(batches[0]["requests"].as_array().unwrap().len(), 1);

    // Run again: every ticket already has its event; nothing is sent twice.
    let again = replaydesk(&dir, &zendesk.uri(), &fullstory.uri(), &args).await;
    assert!(again.status.success(), "{again:?}");
    assert!(
        stdout(&again)
            .contains("0 events to send (2 already sent, 1 without a customer requester)")
    );
}

/// A Zendesk with one ticket from one customer since 2026-01-01, for the backfill.
async fn zendesk_with_one_past_ticket() -> MockServer {
    let zendesk = MockServer::start().await;
    Mock::given(path("/api/v2/incremental/tickets/cursor.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "tickets": [export_ticket(1, "2026-02-01T10:00:00Z", 11, "open")],
            "users": [{"id": 11, "email": "jane@acme.com", "role": "end-user"}],
            "end_of_stream": true,
        })))
        .mount(&zendesk)
        .await;
    zendesk
}

/// A FullStory that accepts one batch import as job `imp-7` (and fails the test on a second).
async fn fullstory_accepting_one_batch() -> MockServer {
    let fullstory = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/events/batch"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "imp-7", "status": "PENDING"})),
        )
        .expect(1)
        .mount(&fullstory)
        .await;
    fullstory
}

const BACKFILL: [&str; 6] = [
    "zendesk",
    "backfill",
    "--since",
    "2026-01-01",
    "--poll-interval",
    "10ms",
];

#[tokio::test]
async fn a_backfill_interrupted_while_polling_resumes_its_import_and_never_sends_the_batch_again() {
    let zendesk = zendesk_with_one_past_ticket().await;
    let fullstory = fullstory_accepting_one_batch().await;
    let status = "/v2/events/batch/imp-7";
    let unavailable = Mock::given(method("GET"))
        .and(path(status))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&fullstory)
        .await;
    let dir = TempDir::new().unwrap();
    let one_attempt = [("REPLAYDESK_FULLSTORY__MAX_ATTEMPTS", "1")];
    let (zd, fs) = (zendesk.uri(), fullstory.uri());
    let first = replaydesk_with(&dir, &zd, &fs, &BACKFILL, &one_attempt).await;
    assert_eq!(first.status.code(), Some(1), "{first:?}");
    assert!(
        stdout(&first).contains("batch 1/1: 1 event (1/1 sent with it), import job imp-7 pending")
    );
    let error = String::from_utf8_lossy(&first.stderr);
    assert!(
        error.contains("run the same command again to resume it (nothing is sent twice)"),
        "{error}"
    );
    drop(unavailable);

    Mock::given(method("GET"))
        .and(path(status))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"imports": 1, "errors": 0, "job": {"id": "imp-7", "status": "COMPLETED"}}),
        ))
        .expect(1)
        .mount(&fullstory)
        .await;
    let second = replaydesk_with(&dir, &zd, &fs, &BACKFILL, &one_attempt).await;
    assert!(second.status.success(), "{second:?}");
    let text = stdout(&second);
    for line in [
        "import job imp-7 (sent by an earlier run): resuming",
        "import job imp-7 (sent by an earlier run): completed",
        "0 events to send (1 already sent, 0 without a customer requester)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }

    // A third run has nothing to resume and nothing to send; the mocks' `expect(1)` hold.
    let third = replaydesk(&dir, &zd, &fs, &BACKFILL).await;
    assert!(third.status.success(), "{third:?}");
    assert!(!stdout(&third).contains("resuming"), "{}", stdout(&third));
}

#[tokio::test]
async fn a_backfill_whose_import_status_cannot_be_read_says_so_and_succeeds() {
    // The seed OpenAPI has no batch-status path: a FullStory (or mock) without it answers 404.
    let zendesk = zendesk_with_one_past_ticket().await;
    let fullstory = fullstory_accepting_one_batch().await;
    Mock::given(method("GET"))
        .and(path("/v2/events/batch/imp-7"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&fullstory)
        .await;
    let dir = TempDir::new().unwrap();
    let (zd, fs) = (zendesk.uri(), fullstory.uri());
    let output = replaydesk(&dir, &zd, &fs, &BACKFILL).await;
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains(
            "batch 1/1: accepted; its status is not available here (FullStory answered 404), \
             check import job imp-7 in FullStory"
        ),
        "{text}"
    );
    assert!(text.contains("done: 1 event sent to FullStory"), "{text}");
    let again = replaydesk(&dir, &zd, &fs, &BACKFILL).await;
    assert!(again.status.success(), "{again:?}");
    assert!(stdout(&again).contains("0 events to send (1 already sent"));
}

// ------------------------------------------------------------------ the erasure tag

const ERASE_TAG: &str = "gdpr_erase";

fn erasure_body(ticket: u64, minute: u32, tags: &str) -> String {
    format!(
        r#"{{"ticket_id": "{ticket}", "updated_at": "2026-11-20T14:{minute}Z", "tags": "{tags}"}}"#
    )
}

async fn harness_for_erasure() -> Harness {
    let rd = Harness::start(|c| c.privacy.zendesk_erasure_tag = Some(ERASE_TAG.into())).await;
    super::privacy::mount_jane(&rd.fullstory).await;
    rd
}

#[tokio::test]
async fn a_ticket_tagged_for_erasure_erases_only_its_requester_and_gets_one_receipt_note() {
    let rd = harness_for_erasure().await;
    rd.zendesk().set_tags(TICKET, &["vip", ERASE_TAG]);
    // The trigger fires on the tag; the body's template sends no tags here: they are read from the API.
    assert_eq!(
        rd.deliver("inv-e1", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(
        done(&rd.run_jobs().await),
        2,
        "the ticket job, then the erasure"
    );

    // Only the requester (bob@acme.com is in the description: neither erased nor looked up).
    assert_eq!(looked_up(&rd.fullstory).await, ["jane@acme.com"]);
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert!(
        note.contains("Erasure of j•••@acme.com: done (job "),
        "{note}"
    );
    assert!(
        note.contains("FullStory user u1: deletion requested"),
        "{note}"
    );
    assert!(
        note.contains("FullStory user u2: deletion requested"),
        "{note}"
    );
    assert!(!note.contains("jane@acme.com"), "{note}");
    assert!(!note.contains("pending"), "{note}");
    assert_eq!(
        rd.note_puts().await[0]["ticket"]["comment"]["public"],
        json!(false)
    );
    assert!(
        !rd.zendesk().tags(TICKET).contains(&"replaydesk".to_owned()),
        "no replays note, so no replays tag"
    );
    assert_eq!(
        rd.state
            .store
            .count_payloads_mentioning(
                &replaydesk::identity::CustomerEmail::parse("jane@acme.com").unwrap()
            )
            .await
            .unwrap(),
        0
    );

    // Zendesk retries the delivery, and the trigger fires again on a later update (tags in the body
    // this time): nothing new is erased, and no second note.
    assert_eq!(
        rd.deliver("inv-e1", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(
        rd.deliver("inv-e2", &erasure_body(TICKET, 30, "vip gdpr_erase"))
            .await,
        StatusCode::OK
    );
    let outcomes = rd.run_jobs().await;
    assert_eq!(done(&outcomes), 1, "{outcomes:?}");
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
    assert_eq!(looked_up(&rd.fullstory).await, ["jane@acme.com"]);
}

#[tokio::test]
async fn the_erasure_tag_in_the_webhook_body_alone_erases_nobody() {
    let rd = Harness::start(|c| c.privacy.zendesk_erasure_tag = Some(ERASE_TAG.into())).await;
    sessions_for(
        &rd.fullstory,
        "jane@acme.com",
        vec![fs_session("5", "3", "2026-11-20T14:02:00Z")],
    )
    .await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    // The ticket as Zendesk's API shows it has no erasure tag; the body claims one.
    assert_eq!(
        rd.deliver("inv-e3", &erasure_body(TICKET, 20, ERASE_TAG))
            .await,
        StatusCode::OK
    );
    assert_eq!(done(&rd.run_jobs().await), 1, "the ticket job only");
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1);
    assert!(!notes[0].contains("Erasure"), "{}", notes[0]);
    let deletions = rd
        .fullstory
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .count();
    assert_eq!(deletions, 0);
}

#[tokio::test]
async fn without_the_tag_configured_a_tagged_ticket_gets_its_replays_as_before() {
    let rd = Harness::with_a_session_for_jane().await;
    rd.zendesk().set_tags(TICKET, &[ERASE_TAG]);
    assert_eq!(
        rd.deliver("inv-e4", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(done(&rd.run_jobs().await), 1);
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1);
    assert!(!notes[0].contains("Erasure"), "{}", notes[0]);
}

// ------------------------------------------------------------------ cool-downs are per host and bounded

/// A Slack slash command for jane, signed as Slack signs it, its answer going to `response_url`.
async fn slack_command(rd: &Harness, trigger: &str, response_url: &str) -> StatusCode {
    let now = rd.clock.now().timestamp();
    let (body, headers) =
        helpers::slack_command(SLACK_SECRET, now, "jane@acme.com", response_url, trigger);
    let mut request = HttpRequest::post("/slack/commands");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    rd.oneshot(request.body(Body::from(body)).unwrap())
        .await
        .status
}

#[tokio::test]
async fn a_response_url_host_saying_retry_after_100000_holds_up_nothing_else() {
    // Slack on too; the queue as `serve` runs it (every handler, the configured backoff).
    let builder = Harness::builder(|_| {}).slack().configured_queue();
    let rd = Harness::with_a_session_for_jane_from(builder).await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "100000"))
        .mount(&hooks)
        .await;
    let response_url = |n: u32| format!("{}/commands/T1/{n}/x", hooks.uri());

    // Two Slack answers for that host are queued before the ticket, then the ticket arrives.
    assert_eq!(
        slack_command(&rd, "trig-1", &response_url(1)).await,
        StatusCode::OK
    );
    assert_eq!(
        slack_command(&rd, "trig-2", &response_url(2)).await,
        StatusCode::OK
    );
    assert_eq!(
        rd.deliver("inv-1", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(rd.jobs().await, 3);

    // The service's own queue as `serve` runs it takes the jobs oldest first: no step sleeps through
    // the 100,000 s (a hung step would hang the test).
    let mut outcomes = Vec::new();
    loop {
        match rd.run_job().await {
            ExecutionOutcome::EmptyQueue => break,
            outcome => outcomes.push(outcome),
        }
    }
    // Both Slack answers wait for that host without spending attempts: 100,000 s is past
    // `limits.max_retry_after` (5 minutes), so its circuit breaker holds every call for 5 minutes,
    // then probes it.
    assert!(
        matches!(
            outcomes[..],
            [
                ExecutionOutcome::Waiting(_),
                ExecutionOutcome::Waiting(_),
                ExecutionOutcome::Done(_),
            ]
        ),
        "{outcomes:?}"
    );

    // The ticket got its note with jane's session, FullStory answering as usual.
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("2026-11-20 14:02 UTC"), "{}", notes[0]);
    // The host that said to wait heard from us once: every later answer for it was refused by the
    // breaker at once, and the queue keeps it for later.
    assert_eq!(hooks.received_requests().await.unwrap().len(), 1);
    let slack_jobs: Vec<_> = rd
        .state
        .store
        .list_jobs(None, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| {
            j.kind
                != <replaydesk::adapters::zendesk::ticket::TicketJob as replaydesk::queue::Job>::KIND
        })
        .collect();
    assert_eq!(slack_jobs.len(), 2);
    let metrics = rd.state.metrics.render();
    for line in [
        r#"replaydesk_upstream_requests_total{upstream="slack_response_url",endpoint="response_url",outcome="rate_limited"} 1"#,
        r#"replaydesk_upstream_requests_total{upstream="slack_response_url",endpoint="response_url",outcome="circuit_open"} 1"#,
        r#"replaydesk_upstream_breaker_state{upstream="slack_response_url"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    for job in &slack_jobs {
        assert_eq!(job.state, JobState::Queued, "{job:?}");
        assert_eq!(job.attempts, 0, "{job:?}");
        assert_eq!(job.waiting_on.as_deref(), Some("slack_response_url"));
    }
    assert!(
        slack_jobs
            .iter()
            .any(|j| j.last_error.as_deref().unwrap_or_default().contains("429")),
        "{slack_jobs:?}"
    );
}

// ------------------------------------------------------------------ fan-out is capped and counted

#[tokio::test]
async fn a_comment_with_2000_addresses_costs_the_requester_and_five_lookups() {
    let rd = Harness::with_a_session_for_jane().await;
    let pasted: Vec<String> = (0..2000)
        .map(|i| format!("customer{i}@example.org"))
        .collect();
    rd.zendesk().add_public_comment(
        TICKET,
        &format!("Please check all of these: {}", pasted.join(", ")),
    );
    assert_eq!(
        rd.deliver("inv-1", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(done(&rd.run_jobs().await), 1);

    // The requester, then the comment's first five in order of appearance: nothing else was asked. (The
    // lookups run concurrently, so they reach FullStory in any order.)
    let mut expected = vec!["jane@acme.com".to_owned()];
    expected.extend(pasted[..5].iter().cloned());
    let mut asked = looked_up(&rd.fullstory).await;
    asked.sort();
    expected.sort();
    assert_eq!(asked, expected);
    // The note names how many were left out.
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains("1995 more identities were not looked up"),
        "{}",
        notes[0]
    );
}

#[tokio::test]
async fn an_account_past_its_lookups_per_minute_has_its_ticket_delayed_not_refused() {
    let rd = Harness::with_a_session_for_jane_and(|c| {
        c.zendesk.account_lookups_per_minute = 1;
        c.limits.per_source_burst = 2;
    })
    .await;
    rd.zendesk()
        .add_ticket(TICKET + 1, "Still broken", "Same here, says jane again.");
    // Jane and bob: the account's burst of two is spent by the first ticket.
    assert_eq!(
        rd.deliver("inv-1", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(
        rd.deliver("inv-2", &created_body(TICKET + 1)).await,
        StatusCode::OK
    );
    let outcomes = rd.run_jobs().await;
    assert!(
        matches!(
            outcomes[..],
            [ExecutionOutcome::Done(_), ExecutionOutcome::Delayed(_)]
        ),
        "{outcomes:?}"
    );
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
    assert!(rd.zendesk().notes(TICKET + 1).is_empty(), "not yet");
    assert_eq!(
        looked_up(&rd.fullstory).await,
        ["jane@acme.com", "bob@acme.com"]
    );
    // The delayed job waits, queued, without having spent an attempt: it is not on its way to dead.
    let jobs = rd.state.store.list_jobs(None, 10).await.unwrap();
    let delayed = jobs.iter().find(|j| j.state != JobState::Done).unwrap();
    assert_eq!(delayed.state, JobState::Queued);
    assert_eq!(delayed.attempts, 0);
    let reason = delayed.last_error.as_deref().unwrap_or_default();
    assert!(
        reason.contains("zendesk.account_lookups_per_minute"),
        "{reason}"
    );
    assert!(delayed.run_after > rd.clock.now(), "run later");
}

// ------------------------------------------------------------------ Zendesk refusing a note (issue 16.2)

#[tokio::test]
async fn when_zendesk_refuses_the_note_a_plain_note_with_the_links_follows_once_and_is_counted() {
    let rd = Harness::with_a_session_for_jane().await;
    rd.zendesk().state.lock().unwrap().refused_html = 1;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    assert_eq!(done(&rd.run_jobs().await), 1, "the job ends well");
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("here are the replay links"),
        "{}",
        notes[0]
    );
    assert!(
        notes[0].contains("(likely): https://app.fullstory.com/ui/o-1/session/5:3"),
        "{}",
        notes[0]
    );
    assert!(
        !notes[0].contains("FullStory after several tries"),
        "{}",
        notes[0]
    );
    assert!(!notes[0].contains("jane@"), "{}", notes[0]);
    let puts = rd.note_puts().await;
    assert_eq!(puts.len(), 2, "the refused HTML note, then the plain one");
    assert!(puts[1]["ticket"]["comment"]["html_body"].is_null());
    assert_eq!(rd.zendesk().tags(TICKET), ["replaydesk"]);
    let metrics = rd.state.app.metrics.render();
    assert!(
        metrics.contains(r#"replaydesk_platform_refusals_total{platform="zendesk",code="422"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn when_zendesk_refuses_every_note_the_job_names_zendesk_not_fullstory() {
    let rd = Harness::with_a_session_for_jane().await;
    // Every note refused, plain ones too: a ticket at its 5,000 comments.
    Mock::given(method("PUT"))
        .and(path(format!("/api/v2/tickets/{TICKET}.json")))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"error": "RecordInvalid", "description": "Ticket has too many comments"}),
        ))
        .with_priority(1)
        .mount(&rd.zendesk().server)
        .await;
    rd.deliver("inv-1", &created_body(TICKET)).await;
    rd.run_jobs().await;
    let jobs = rd.state.store.list_jobs(None, 10).await.unwrap();
    let error = jobs[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("Zendesk refused our message (422)"),
        "{error}"
    );
    assert!(!error.contains("FullStory"), "{error}");
}

#[tokio::test]
async fn a_tickets_lookup_is_in_the_audit_trail_like_every_platforms() {
    let rd = Harness::with_a_session_for_jane().await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    assert_eq!(
        rd.deliver("inv-audit", &created_body(TICKET)).await,
        StatusCode::OK
    );
    assert_eq!(done(&rd.run_jobs().await), 1);
    let audited = helpers::audited_lookups(&rd.state.app, "jane@acme.com").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].platform, "zendesk");
    assert_eq!(
        audited[0].place.as_deref(),
        Some(&*format!("ticket {TICKET}"))
    );
    assert_eq!(audited[0].sessions, 1);
}
