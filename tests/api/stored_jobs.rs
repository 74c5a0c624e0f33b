//! Jobs already in a store when replaydesk is upgraded still run. Each payload below is exactly what the
//! code before typed jobs stored for its kind (printed from that code's `to_new_job`, kept verbatim; only
//! `{SLACK}` stands for the fake Slack's address). Each is enqueued raw, as that code stored it, and run
//! to completion by the real handlers of the whole service (Slack, Zendesk and Discord on), with
//! FullStory and the platform the answer goes to faked on loopback: the answer reaches the fake and the
//! job ends `done`. Every test runs on SQLite and on PostgreSQL (a fresh database on the server at
//! `REPLAYDESK_TEST_POSTGRES_URL`; never skipped).

use replaydesk::{
    config::{List, Secret},
    privacy::ErasureReceipt,
    queue::ExecutionOutcome,
    store::{JobState, NewJob},
};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, query_param},
};

use super::{
    fakes::TICKET,
    helpers::{self, TestApp, official_session, sessions},
    processes::FreshDatabase,
    zendesk::{fs_session, sessions_for},
};

const LOOKUP_ON_SLACK: &str = r#"{"around":null,"digest":null,"identities":[{"email":"jane@acme.com"}],"reply":{"platform":"slack","target":{"channel":"C1","in_channel":false,"kind":"response_url","replace_original":true,"url":"{SLACK}/hooks/T1/123/abc","user":"U1"}},"requester":{"place":"C1","platform":"slack","tenant":"T1","user":"U1"},"summary":false}"#;
const SUMMARY_ON_DISCORD: &str = r#"{"around":null,"reply":{"platform":"discord","target":{"application_id":"111","interaction_id":"222","token":"tok-1"}},"requester":{"place":"C1","platform":"discord","tenant":"T1","user":"U1"},"session":"5:3","url":"https://app.fullstory.com/ui/ORG/session/5:3"}"#;
const ZENDESK_TICKET: &str = r#"{"account_id":"9001","latest_comment":null,"requester_email":"jane@acme.com","ticket_id":35436}"#;
const ERASURE_FROM_THE_CLI: &str = r#"{"email":"jane@acme.com","requester":{"place":null,"platform":"cli","tenant":"local","user":"dpo"}}"#;
/// An erasure asked for with `/replays forget` in Slack: the receipt goes back through the click's
/// `response_url` (the same stored `ReplyTo` shape as [`LOOKUP_ON_SLACK`]'s).
const ERASURE_FROM_SLACK: &str = r#"{"email":"jane@acme.com","reply":{"platform":"slack","target":{"channel":"C1","in_channel":false,"kind":"response_url","replace_original":true,"url":"{SLACK}/hooks/T1/123/abc","user":"U1"}},"requester":{"place":"C1","platform":"slack","tenant":"T1","user":"U1"}}"#;
const SLACK_MENTION: &str = r#"{"channel":"C1","reply":{"platform":"slack","target":{"channel":"C1","kind":"thread","response_url":null,"thread_ts":"1700000000.000100","user":"U1"}},"requester":{"place":"C1","platform":"slack","tenant":"T1","user":"U1"},"text":"<@UBOT> jane@acme.com","thread_ts":null,"ts":"1700000000.000100"}"#;
const SLACK_NOTICE: &str = r#"{"reply":{"platform":"slack","target":{"channel":"C1","kind":"ephemeral","thread_ts":null,"user":"U1"}},"text":"Sorry, only some people may ask."}"#;
const SLACK_UNFURL: &str = r#"{"requester":{"place":"C1","platform":"slack","tenant":"T1","user":"U1"},"target":{"channel":"C1","ts":"1700000000.000100"},"urls":["https://app.fullstory.com/ui/ORG/session/5%3A3"]}"#;

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The whole service after the upgrade, its store holding what the old code queued.
struct Upgraded {
    app: TestApp,
    database: Option<FreshDatabase>,
}

impl Upgraded {
    async fn start(backend: Backend) -> Self {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(FreshDatabase::create().await),
        };
        let mut builder = TestApp::builder()
            .slack()
            .zendesk()
            .discord()
            .system_clock()
            .configure(|config| {
                config.fullstory.digest = replaydesk::config::DigestMode::Never;
                config.fullstory.summary_profile = Some("support".into());
                config.discord.application_id = Some("111".into());
                config.identity.exclude_domains = List(vec!["help.io".into()]);
            });
        if let Some(database) = &database {
            builder = builder.store_url(&database.url).configure(|config| {
                config.privacy.audit_key = Secret::new("stored-jobs-audit-key");
            });
        }
        let app = builder.start().await;
        assert_eq!(app.platforms(), ["slack", "zendesk", "discord"]);
        Self { app, database }
    }

    /// Stores `payload` as a job of `kind`, exactly as the code before the upgrade did.
    async fn stored_by_the_old_code(&self, kind: &str, payload: &str) -> i64 {
        let payload = payload.replace("{SLACK}", &self.app.slack_api().uri());
        let payload: Value = serde_json::from_str(&payload).unwrap();
        self.app
            .state
            .queue
            .enqueue(&format!("old:{kind}"), NewJob::new(kind, payload))
            .await
            .unwrap()
            .job_id
    }

    /// Runs every due job; the job `id` must have ended `done` at its first attempt, and nothing else
    /// must be left to run.
    async fn runs_to_done(&self, id: i64) {
        let mut outcomes = Vec::new();
        loop {
            match self.app.state.queue.try_execute_one("test").await.unwrap() {
                ExecutionOutcome::EmptyQueue => break,
                outcome => outcomes.push(outcome),
            }
            assert!(
                outcomes.len() < 10,
                "the queue does not drain: {outcomes:?}"
            );
        }
        let job = self.app.state.store.get_job(id).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.last_error.as_deref()),
            (JobState::Done, None),
            "{outcomes:?}"
        );
        assert_eq!(outcomes, [ExecutionOutcome::Done(id)]);
    }

    /// Requests the fake `server` received with `method` at `path`.
    async fn received(server: &MockServer, method: &str, path: &str) -> usize {
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == method && r.url.path() == path)
            .count()
    }

    async fn fullstory_knows_janes_session(&self) {
        Mock::given(path("/sessions/v2"))
            .and(query_param("email", "jane@acme.com"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(sessions(vec![official_session("1", "2", 5)])),
            )
            .mount(&self.app.fullstory)
            .await;
    }

    /// The JSON bodies the fake Slack received at `route`.
    async fn slack_bodies(&self, route: &str) -> Vec<Value> {
        self.app
            .slack_api()
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == route)
            .map(|r| r.body_json().unwrap())
            .collect()
    }

    async fn slack_answers(&self, route: &str, answer: Value) {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .mount(self.app.slack_api())
            .await;
    }

    async fn stop(self) {
        self.app.state.store.close().await;
        if let Some(database) = self.database {
            database.drop_now().await;
        }
    }
}

/// `on_both_backends!(name, …)` turns each `async fn name(backend: Backend)` into the tests
/// `name::sqlite` and `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(super::Backend::Postgres).await
                }
            }
        )*
    };
}

on_both_backends!(
    a_stored_lookup_is_answered_through_its_slack_response_url,
    a_stored_summary_is_answered_by_editing_the_discord_response,
    a_stored_zendesk_ticket_gets_its_note,
    a_stored_erasure_from_the_command_line_erases_and_its_receipt_says_done,
    a_stored_erasure_from_slack_sends_its_receipt_to_the_response_url,
    a_stored_slack_mention_is_answered_in_its_thread,
    a_stored_slack_notice_is_posted_privately,
    a_stored_slack_unfurl_previews_the_link,
);

async fn a_stored_lookup_is_answered_through_its_slack_response_url(backend: Backend) {
    let rd = Upgraded::start(backend).await;
    rd.fullstory_knows_janes_session().await;
    Mock::given(method("POST"))
        .and(path("/hooks/T1/123/abc"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(rd.app.slack_api())
        .await;
    let id = rd.stored_by_the_old_code("lookup", LOOKUP_ON_SLACK).await;
    rd.runs_to_done(id).await;
    assert_eq!(
        Upgraded::received(rd.app.slack_api(), "POST", "/hooks/T1/123/abc").await,
        1
    );
    rd.stop().await;
}

async fn a_stored_summary_is_answered_by_editing_the_discord_response(backend: Backend) {
    let rd = Upgraded::start(backend).await;
    Mock::given(path("/v2/sessions/5%3A3/summary"))
        .and(query_param("config_profile_id", "support"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"summary": "Tried to pay twice."})),
        )
        .expect(1)
        .mount(&rd.app.fullstory)
        .await;
    let edit = "/webhooks/111/tok-1/messages/@original";
    Mock::given(method("PATCH"))
        .and(path(edit))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "1600000000000000001"})),
        )
        .mount(rd.app.discord_api())
        .await;
    let id = rd
        .stored_by_the_old_code("summary", SUMMARY_ON_DISCORD)
        .await;
    rd.runs_to_done(id).await;
    assert_eq!(
        Upgraded::received(rd.app.discord_api(), "PATCH", edit).await,
        1
    );
    rd.stop().await;
}

async fn a_stored_zendesk_ticket_gets_its_note(backend: Backend) {
    let rd = Upgraded::start(backend).await;
    sessions_for(
        &rd.app.fullstory,
        "jane@acme.com",
        vec![fs_session("5", "3", "2026-11-20T14:02:00Z")],
    )
    .await;
    let id = rd
        .stored_by_the_old_code("zendesk.ticket", ZENDESK_TICKET)
        .await;
    rd.runs_to_done(id).await;
    let notes = rd.app.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("5:3"), "{}", notes[0]);
    rd.stop().await;
}

async fn a_stored_erasure_from_the_command_line_erases_and_its_receipt_says_done(backend: Backend) {
    let rd = Upgraded::start(backend).await;
    // jane's two FullStory users are each read and deleted exactly once (checked when the fake drops).
    super::privacy::mount_jane(&rd.app.fullstory).await;
    let id = rd
        .stored_by_the_old_code("privacy.erase", ERASURE_FROM_THE_CLI)
        .await;
    rd.runs_to_done(id).await;
    assert_eq!(
        Upgraded::received(&rd.app.fullstory, "DELETE", "/v2/users").await,
        2
    );
    let receipt = ErasureReceipt::of_job(&rd.app.state.store, id)
        .await
        .unwrap();
    assert_eq!(receipt.status, "done", "{receipt:?}");
    rd.stop().await;
}

async fn a_stored_erasure_from_slack_sends_its_receipt_to_the_response_url(backend: Backend) {
    let rd = Upgraded::start(backend).await;
    super::privacy::mount_jane(&rd.app.fullstory).await;
    Mock::given(method("POST"))
        .and(path("/hooks/T1/123/abc"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(rd.app.slack_api())
        .await;
    let id = rd
        .stored_by_the_old_code("privacy.erase", ERASURE_FROM_SLACK)
        .await;
    rd.runs_to_done(id).await;
    let receipts = rd.slack_bodies("/hooks/T1/123/abc").await;
    assert_eq!(receipts.len(), 1, "one receipt: {receipts:?}");
    let text = receipts[0]["text"].as_str().unwrap_or_default();
    assert_eq!(
        text,
        format!("Erasure of j•••@acme.com: done (job {id})."),
        "the receipt, privately, without the address"
    );
    rd.stop().await;
}

async fn a_stored_slack_mention_is_answered_in_its_thread(backend: Backend) {
    let rd = Upgraded::start(backend).await;
    rd.fullstory_knows_janes_session().await;
    rd.slack_answers(
        "/api/chat.postMessage",
        json!({"ok": true, "ts": "1700000999.000002"}),
    )
    .await;
    let id = rd
        .stored_by_the_old_code("slack.mention", SLACK_MENTION)
        .await;
    rd.runs_to_done(id).await;
    let posts = rd.slack_bodies("/api/chat.postMessage").await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["thread_ts"], "1700000000.000100");
    rd.stop().await;
}

async fn a_stored_slack_notice_is_posted_privately(backend: Backend) {
    let rd = Upgraded::start(backend).await;
    rd.slack_answers(
        "/api/chat.postEphemeral",
        json!({"ok": true, "message_ts": "1700000999.000003"}),
    )
    .await;
    let id = rd
        .stored_by_the_old_code("slack.notice", SLACK_NOTICE)
        .await;
    rd.runs_to_done(id).await;
    assert_eq!(
        Upgraded::received(rd.app.slack_api(), "POST", "/api/chat.postEphemeral").await,
        1
    );
    rd.stop().await;
}

async fn a_stored_slack_unfurl_previews_the_link(backend: Backend) {
    let rd = Upgraded::start(backend).await;
    Mock::given(method("GET"))
        .and(path("/v2/sessions/5%3A3/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events": [
            {"type": "navigate", "timestamp": helpers::minutes_ago(20), "data": {"url": "https://shop.acme.com/cart"}}
        ]})))
        .mount(&rd.app.fullstory)
        .await;
    // The key's organisation, which the link names (previews are of its links only).
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orgId": "ORG"})))
        .mount(&rd.app.fullstory)
        .await;
    rd.slack_answers("/api/chat.unfurl", json!({"ok": true}))
        .await;
    let id = rd
        .stored_by_the_old_code("slack.unfurl", SLACK_UNFURL)
        .await;
    rd.runs_to_done(id).await;
    assert_eq!(
        Upgraded::received(rd.app.slack_api(), "POST", "/api/chat.unfurl").await,
        1
    );
    rd.stop().await;
}
