//! Discord end to end: interactions signed with Ed25519 exactly as Discord signs them (RFC 8032's test-1
//! key, the same as PLATFORMS.md's vector), the real router, the queue stepped by hand, and Discord's API
//! and FullStory faked on loopback.

use std::{process::Output, time::Duration};

use axum::{body::Body, http::Request};
use replaydesk::{
    adapters::discord::api::DiscordApi,
    answer::TOO_LATE,
    config::{Config, List},
    queue::ExecutionOutcome,
    render::{NO_IDENTITIES, NOT_ALLOWED},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path, query_param},
};

use super::helpers::{self, TestApp, minutes_ago, official_session, sessions};

/// RFC 8032 test 1's seed and the harness's application and guild.
use super::helpers::{DISCORD_APP as APP, DISCORD_GUILD as GUILD, DISCORD_SEED as SEED};
const MODERATE_MEMBERS: &str = "1099511627776";

fn signature(seed: &str, timestamp: i64, body: &[u8]) -> String {
    let seed: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
    replaydesk::adapters::discord::verify::sign(&seed, timestamp, body)
}

fn member(permissions: &str, roles: &[&str]) -> Value {
    json!({
        "user": {"id": "1400000000000000001", "username": "mod"},
        "roles": roles,
        "permissions": permissions,
        "joined_at": "2025-01-01T00:00:00+00:00",
        "deaf": false,
        "mute": false,
    })
}

/// An interaction as Discord sends it (with fields we do not read, too).
fn interaction(id: &str, kind: u8, token: &str, data: Value) -> Value {
    json!({
        "id": id,
        "application_id": APP,
        "type": kind,
        "token": token,
        "version": 1,
        "guild_id": GUILD,
        "channel_id": "1300000000000000001",
        "member": member(MODERATE_MEMBERS, &[]),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD},
        "context": 0,
        "app_permissions": "2248473465835073",
        "attachment_size_limit": 10_485_760,
        "data": data,
    })
}

fn slash(id: &str, token: &str, options: Value) -> Value {
    interaction(
        id,
        2,
        token,
        json!({"id": "1500000000000000001", "name": "replays", "type": 1, "options": options}),
    )
}

fn edit_path(token: &str) -> String {
    format!("/webhooks/{APP}/{token}/messages/@original")
}

/// The service with Discord on (its API and FullStory faked), driven through the router; the queue
/// stepped by the test.
struct Harness(TestApp);

impl std::ops::Deref for Harness {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.0
    }
}

impl Harness {
    async fn start() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(configure: impl FnOnce(&mut Config) + 'static) -> Self {
        Self(
            TestApp::builder()
                .discord()
                .configure(configure)
                .start()
                .await,
        )
    }

    /// Posts `body` signed now, with the given signing seed and timestamp offset.
    async fn post_signed(&self, body: &[u8], seed: &str, skew_secs: i64) -> (StatusCode, Value) {
        let timestamp = self.clock.now().timestamp() + skew_secs;
        let request = Request::post("/discord/interactions")
            .header("content-type", "application/json")
            .header("x-signature-timestamp", timestamp.to_string())
            .header("x-signature-ed25519", signature(seed, timestamp, body))
            .body(Body::from(body.to_vec()))
            .unwrap();
        self.send(request).await
    }

    async fn post(&self, body: &Value) -> (StatusCode, Value) {
        self.post_signed(body.to_string().as_bytes(), SEED, 0).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.oneshot(request).await;
        (response.status, response.json())
    }

    /// The bodies of the edits Discord received, in order.
    async fn edits(&self) -> Vec<Value> {
        self.discord_api()
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() == "PATCH")
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    /// `/replays email:jane@acme.com` as interaction `id` with `token`.
    async fn ask_about_jane(&self, id: &str, token: &str) -> (StatusCode, Value) {
        self.post(&slash(
            id,
            token,
            json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
        ))
        .await
    }

    async fn accept_edits(&self, token: &str) {
        Mock::given(method("PATCH"))
            .and(path(edit_path(token)))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": "1600000000000000001"})),
            )
            .mount(self.discord_api())
            .await;
    }

    async fn customer(&self, email: &str, entries: Vec<Value>) {
        Mock::given(path("/sessions/v2"))
            .and(query_param("email", email))
            .respond_with(ResponseTemplate::new(200).set_body_json(sessions(entries)))
            .mount(&self.fullstory)
            .await;
        Mock::given(path("/v2/sessions/7%3A8/events"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events": [
                {"event_time": minutes_ago(19), "event_type": "navigate", "event_properties": {"url": "https://shop/cart"}},
                {"event_time": minutes_ago(17), "event_type": "rage-click"},
                {"event_time": minutes_ago(15), "event_type": "navigate", "event_properties": {"url": "https://shop/pay"}}
            ]})))
            .mount(&self.fullstory)
            .await;
    }
}

fn text_of(edit: &Value) -> String {
    edit.to_string()
}

#[tokio::test]
async fn a_ping_is_answered_pong_and_enqueues_nothing() {
    let discord = Harness::start().await;
    let ping = json!({"id": "1700000000000000001", "application_id": APP, "type": 1, "token": "tok", "version": 1});
    let (status, body) = discord.post(&ping).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"type": 1}));
    assert_eq!(discord.jobs().await, 0);
}

#[tokio::test]
async fn every_bad_signature_is_refused_with_401_and_nothing_is_enqueued() {
    let discord = Harness::start().await;
    let body = slash(
        "1700000000000000002",
        "tok",
        json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
    )
    .to_string();
    let other_seed = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
    // Another key; a request older than the replay window; one from the future.
    for (seed, skew) in [(other_seed, 0), (SEED, -301), (SEED, 301)] {
        let (status, _) = discord.post_signed(body.as_bytes(), seed, skew).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "seed {seed}, skew {skew}");
    }
    // A body changed after signing.
    let timestamp = discord.clock.now().timestamp();
    let tampered = body.replace("jane@acme.com", "evil@acme.com");
    let request = Request::post("/discord/interactions")
        .header("x-signature-timestamp", timestamp.to_string())
        .header(
            "x-signature-ed25519",
            signature(SEED, timestamp, body.as_bytes()),
        )
        .body(Body::from(tampered))
        .unwrap();
    assert_eq!(discord.send(request).await.0, StatusCode::UNAUTHORIZED);
    // No headers, and garbage headers, as Discord's own probes send.
    let request = Request::post("/discord/interactions")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(discord.send(request).await.0, StatusCode::UNAUTHORIZED);
    let request = Request::post("/discord/interactions")
        .header("x-signature-timestamp", "now")
        .header("x-signature-ed25519", "not-hex")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(discord.send(request).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(discord.jobs().await, 0);
}

#[tokio::test]
async fn a_moderators_slash_command_is_deferred_ephemerally_then_answered_by_editing_the_original()
{
    let discord = Harness::start().await;
    discord
        .customer(
            "jane@acme.com",
            vec![
                official_session("7", "8", 20),
                official_session("7", "6", 60 * 24),
            ],
        )
        .await;
    discord.accept_edits("tok-slash").await;
    let (status, body) = discord
        .post(&slash(
            "1700000000000000003",
            "tok-slash",
            json!([{"name": "email", "type": 3, "value": "Jane@Acme.com"}]),
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["type"], 5, "{body}");
    assert_eq!(body["data"]["flags"], 64, "{body}");
    assert!(
        discord.edits().await.is_empty(),
        "nothing is sent before the job runs"
    );

    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));
    let requests = discord.discord_api().received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let edit = &requests[0];
    assert_eq!(edit.method.as_str(), "PATCH");
    assert_eq!(edit.url.path(), edit_path("tok-slash"));
    assert!(
        edit.headers.get("authorization").is_none(),
        "webhook edits carry no bot token"
    );
    let agent = edit.headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(
        agent.starts_with("DiscordBot (https://github.com/replaydesk/replaydesk, "),
        "{agent}"
    );

    let answer: Value = serde_json::from_slice(&edit.body).unwrap();
    let embed = &answer["embeds"][0];
    assert_eq!(embed["title"], "j•••@acme.com · 2 recent sessions");
    let description = embed["description"].as_str().unwrap();
    assert!(description.contains("**1.** <t:"), "{description}");
    assert!(description.contains(":f> · [replay](https://app.fullstory.com/ui/ORG/session/7:8) · **likely**\n↳ 2 pages · 1 rage click · 4 min"), "{description}");
    assert!(
        !text_of(&answer).contains("jane@acme.com"),
        "the email is shown redacted"
    );
    let buttons = &answer["components"][0]["components"];
    assert_eq!(buttons[0]["style"], 5);
    assert_eq!(
        buttons[0]["url"],
        "https://app.fullstory.com/ui/ORG/session/7:8"
    );
    assert_eq!(buttons[0]["label"], "Replay 1 (likely)");
    assert_eq!(buttons[1]["label"], "Replay 2");
    // No summary profile is configured: no Summarize button.
    assert_eq!(answer["components"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_message_command_looks_up_the_emails_in_the_message_around_its_time() {
    let discord = Harness::with(|c| c.fullstory.summary_profile = Some("support".into())).await;
    // The message was sent 30 minutes ago: the session from 20 minutes ago started after it.
    discord
        .customer(
            "jane@acme.com",
            vec![
                official_session("7", "9", 20),
                official_session("7", "8", 45),
            ],
        )
        .await;
    discord.accept_edits("tok-message").await;
    let sent = discord.clock.now() - chrono::Duration::minutes(30);
    let data = json!({
        "id": "1500000000000000002", "name": "Find replays", "type": 3,
        "target_id": "1800000000000000002",
        "resolved": {"messages": {
            "1800000000000000002": {
                "id": "1800000000000000002", "channel_id": "1300000000000000001",
                "author": {"id": "1900000000000000001", "username": "customer"},
                "content": "Hi, this is jane@acme.com, the pay button does nothing!",
                "timestamp": sent.to_rfc3339(), "edited_timestamp": null, "tts": false,
                "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
                "embeds": [], "pinned": false, "type": 0
            }
        }}
    });
    let (status, body) = discord
        .post(&interaction("1700000000000000004", 2, "tok-message", data))
        .await;
    assert_eq!(
        (status, body["type"].clone(), body["data"]["flags"].clone()),
        (StatusCode::OK, json!(5), json!(64))
    );
    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));

    let edits = discord.edits().await;
    assert_eq!(edits.len(), 1);
    let description = edits[0]["embeds"][0]["description"].as_str().unwrap();
    let likely_line = description
        .lines()
        .find(|l| l.contains("**likely**"))
        .unwrap();
    assert!(
        likely_line.starts_with("**2.**") && likely_line.contains("session/7:8"),
        "{description}"
    );
    assert_eq!(
        edits[0]["embeds"][0]["footer"]["text"]
            .as_str()
            .unwrap()
            .split(" · ref ")
            .next(),
        Some("likely: live at or just before the time in question")
    );
    let summarize = &edits[0]["components"][1]["components"][0];
    assert_eq!(summarize["style"], 1);
    assert_eq!(
        summarize["custom_id"],
        format!("rd:sum:7:8:{}", sent.timestamp())
    );
}

#[tokio::test]
async fn a_message_without_an_email_is_answered_at_once() {
    let discord = Harness::start().await;
    let data = json!({"name": "Find replays", "type": 3, "target_id": "1800000000000000003",
        "resolved": {"messages": {"1800000000000000003": {"content": "it is broken", "timestamp": "2026-11-20T10:00:00+00:00"}}}});
    let (status, body) = discord
        .post(&interaction("1700000000000000005", 2, "tok", data))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["flags"], 64);
    assert_eq!(body["data"]["content"], NO_IDENTITIES);
    assert_eq!(discord.jobs().await, 0);
}

#[tokio::test]
async fn a_member_without_the_permission_is_refused_politely_and_nothing_is_enqueued() {
    let discord = Harness::start().await;
    let mut request = slash(
        "1700000000000000006",
        "tok",
        json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
    );
    request["member"] = member("2048", &["1999999999999999999"]); // SEND_MESSAGES only
    let (status, body) = discord.post(&request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["type"], 4, "{body}");
    assert_eq!(body["data"]["flags"], 64);
    assert_eq!(body["data"]["content"], NOT_ALLOWED);

    // In a DM there is no member at all.
    let mut dm = slash(
        "1700000000000000007",
        "tok",
        json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
    );
    let object = dm.as_object_mut().unwrap();
    object.remove("member");
    object.remove("guild_id");
    object.insert("user".into(), json!({"id": "1400000000000000001"}));
    let (status, body) = discord.post(&dm).await;
    assert_eq!(
        (status, body["data"]["content"].clone()),
        (StatusCode::OK, json!(NOT_ALLOWED))
    );
    assert_eq!(discord.jobs().await, 0);
    assert!(
        discord
            .discord_api()
            .received_requests()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_allowed_role_is_enough_and_an_administrator_may_too() {
    let discord =
        Harness::with(|c| c.discord.allowed_role_ids = List(vec!["1990000000000000001".into()]))
            .await;
    let mut by_role = slash(
        "1700000000000000008",
        "tok-a",
        json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
    );
    by_role["member"] = member("0", &["1990000000000000001"]);
    assert_eq!(discord.post(&by_role).await.1["type"], 5);
    let mut admin = slash(
        "1700000000000000009",
        "tok-b",
        json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
    );
    admin["member"] = member("8", &[]);
    assert_eq!(discord.post(&admin).await.1["type"], 5);
    assert_eq!(discord.jobs().await, 2);
}

#[tokio::test]
async fn the_summarize_button_answers_in_a_new_ephemeral_message_with_the_summary() {
    let discord = Harness::with(|c| c.fullstory.summary_profile = Some("support".into())).await;
    let around = discord.clock.now() - chrono::Duration::minutes(30);
    let end = around.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Mock::given(path("/v2/sessions/7%3A8/summary"))
        .and(query_param("config_profile_id", "support"))
        .and(query_param("end_timestamp", end.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"response": "Tried to pay twice, then gave up."})),
        )
        .expect(1)
        .mount(&discord.fullstory)
        .await;
    discord.accept_edits("tok-button").await;
    let press = json!({
        "id": "1700000000000000010", "application_id": APP, "type": 3, "token": "tok-button", "version": 1,
        "guild_id": GUILD, "channel_id": "1300000000000000001", "member": member(MODERATE_MEMBERS, &[]),
        "data": {"custom_id": format!("rd:sum:7:8:{}", around.timestamp()), "component_type": 2},
        "message": {"id": "1600000000000000001", "flags": 64, "components": [
            {"type": 1, "components": [{"type": 2, "style": 5, "label": "Replay 1 (likely)", "url": "https://app.fullstory.com/ui/ORG/session/7:8"}]},
            {"type": 1, "components": [{"type": 2, "style": 1, "label": "Summarize replay 1", "custom_id": format!("rd:sum:7:8:{}", around.timestamp())}]}
        ]}
    });
    let (status, body) = discord.post(&press).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["type"], 5,
        "a new deferred message, not an update of the list"
    );
    assert_eq!(body["data"]["flags"], 64);
    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));
    let edits = discord.edits().await;
    assert_eq!(edits.len(), 1);
    let embed = &edits[0]["embeds"][0];
    assert_eq!(embed["title"], "FullStory AI summary");
    assert_eq!(embed["description"], "Tried to pay twice, then gave up.");
    assert_eq!(embed["url"], "https://app.fullstory.com/ui/ORG/session/7:8");
}

#[tokio::test]
async fn a_repeated_interaction_makes_one_job_and_one_edit() {
    let discord = Harness::start().await;
    discord
        .customer("jane@acme.com", vec![official_session("7", "8", 20)])
        .await;
    Mock::given(method("PATCH"))
        .and(path(edit_path("tok-again")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "1600000000000000001"})),
        )
        .expect(1)
        .mount(discord.discord_api())
        .await;
    let request = slash(
        "1700000000000000011",
        "tok-again",
        json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
    );
    for _ in 0..2 {
        let (status, body) = discord.post(&request).await;
        assert_eq!((status, body["type"].clone()), (StatusCode::OK, json!(5)));
    }
    assert_eq!(discord.jobs().await, 1);
    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));
    assert_eq!(discord.run_job().await, ExecutionOutcome::EmptyQueue);
}

#[tokio::test]
async fn another_application_or_guild_is_forbidden_and_a_bad_field_is_named() {
    let discord = Harness::start().await;
    let options = json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]);
    let mut other_app = slash("1700000000000000012", "tok", options.clone());
    other_app["application_id"] = json!("1100000000000000999");
    assert_eq!(discord.post(&other_app).await.0, StatusCode::FORBIDDEN);
    let mut other_guild = slash("1700000000000000013", "tok", options.clone());
    other_guild["guild_id"] = json!("1200000000000000999");
    assert_eq!(discord.post(&other_guild).await.0, StatusCode::FORBIDDEN);
    let mut malformed = slash("1700000000000000014", "tok", options);
    malformed["member"]["permissions"] = json!("lots");
    let (status, body) = discord.post(&malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "malformed request: member.permissions: invalid value"
    );
    assert_eq!(discord.jobs().await, 0);
}

#[tokio::test]
async fn discords_429_with_the_wait_only_in_the_body_is_honoured() {
    let discord = Harness::start().await;
    discord
        .customer("jane@acme.com", vec![official_session("7", "8", 20)])
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"message": "You are being rate limited.", "retry_after": 0.05, "global": false}),
        ))
        .up_to_n_times(1)
        .mount(discord.discord_api())
        .await;
    discord.accept_edits("tok-429").await;
    discord
        .ask_about_jane("1700000000000000015", "tok-429")
        .await;
    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));
    assert_eq!(discord.edits().await.len(), 2, "retried once after the 429");
}

#[tokio::test]
async fn a_429_asking_for_a_long_wait_is_not_slept_through_but_left_to_the_queue() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"message": "You are being rate limited.", "retry_after": 120.5, "global": true}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = Config::default().discord;
    config.api_url = Some(server.uri());
    let api = DiscordApi::new(&config, Default::default()).unwrap();
    let error = api.edit_original(APP, "tok", &json!({})).await.unwrap_err();
    assert!(error.is_transient());
    assert!(error.to_string().contains("retry after 121s"), "{error}");
}

#[tokio::test]
async fn a_lookup_that_starts_after_fourteen_minutes_says_it_took_too_long_without_asking_fullstory()
 {
    let discord = Harness::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![])))
        .expect(0)
        .mount(&discord.fullstory)
        .await;
    discord.accept_edits("tok-late").await;
    discord
        .post(&slash(
            "1700000000000000016",
            "tok-late",
            json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
        ))
        .await;
    discord.clock.advance(Duration::from_secs(14 * 60 + 30));
    assert!(matches!(
        discord.run_job().await,
        ExecutionOutcome::Expired(_)
    ));
    let edits = discord.edits().await;
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0]["embeds"][0]["description"], TOO_LATE);
}

#[tokio::test]
async fn after_fifteen_minutes_nothing_is_sent_since_the_token_is_dead() {
    let discord = Harness::start().await;
    discord
        .post(&slash(
            "1700000000000000017",
            "tok-dead",
            json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
        ))
        .await;
    discord.clock.advance(Duration::from_secs(15 * 60 + 1));
    assert!(matches!(
        discord.run_job().await,
        ExecutionOutcome::Expired(_)
    ));
    assert!(
        discord
            .discord_api()
            .received_requests()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        discord
            .fullstory
            .received_requests()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn fullstory_down_says_it_is_late_then_answers_but_a_retry_past_the_deadline_says_too_long() {
    let discord = Harness::start().await;
    // The first try's 4 FullStory requests fail (the breaker opens after OPEN_AFTER = 3; the test's
    // 1 ms probe interval lets the 4th through as a probe); the next try's probe is answered.
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(4)
        .mount(&discord.fullstory)
        .await;
    discord
        .customer("jane@acme.com", vec![official_session("7", "8", 20)])
        .await;
    discord.accept_edits("tok-slow").await;
    discord
        .post(&slash(
            "1700000000000000018",
            "tok-slow",
            json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
        ))
        .await;
    assert!(matches!(
        discord.run_job().await,
        ExecutionOutcome::Waiting(_)
    ));
    discord.clock.advance(Duration::from_secs(5));
    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));
    let edits = discord.edits().await;
    assert_eq!(edits.len(), 2);
    assert_eq!(
        edits[0]["embeds"][0]["description"],
        "FullStory is unavailable right now. replaydesk keeps trying: the answer will follow here when it is back."
    );
    assert!(
        edits[1]["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("1 recent session")
    );

    // The same outage 13 min 59 s in: told it is late, then, at the deadline, one final message.
    let late = Harness::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&late.fullstory)
        .await;
    late.accept_edits("tok-slower").await;
    late.post(&slash(
        "1700000000000000019",
        "tok-slower",
        json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
    ))
    .await;
    late.clock.advance(Duration::from_secs(13 * 60 + 59));
    assert!(matches!(late.run_job().await, ExecutionOutcome::Waiting(_)));
    late.clock.advance(Duration::from_secs(2));
    assert!(matches!(late.run_job().await, ExecutionOutcome::Expired(_)));
    let edits = late.edits().await;
    assert_eq!(
        edits.len(),
        2,
        "the delay notice, then the final message: {edits:?}"
    );
    assert_eq!(edits[1]["embeds"][0]["description"], TOO_LATE);
    let job = late.state.store.list_jobs(None, 1).await.unwrap().remove(0);
    assert_eq!(job.state, replaydesk::store::JobState::Expired);
}

#[tokio::test]
async fn an_edit_that_landed_before_a_crash_is_found_and_not_sent_again() {
    let discord = Harness::start().await;
    discord
        .customer("jane@acme.com", vec![official_session("7", "8", 20)])
        .await;
    discord
        .post(&slash(
            "1700000000000000020",
            "tok-crash",
            json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
        ))
        .await;
    let job = discord
        .state
        .store
        .list_jobs(None, 10)
        .await
        .unwrap()
        .remove(0);
    // An earlier worker recorded its intent, edited, and died before recording the outcome.
    let marker = format!("rd-{}-answer-0badf00d", job.id);
    discord
        .state
        .store
        .record_effect_intent(job.id, "answer", &marker, discord.clock.now())
        .await
        .unwrap();
    Mock::given(method("GET"))
        .and(path(edit_path("tok-crash")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "1600000000000000077",
            "embeds": [{"title": "j•••@acme.com · 1 recent session", "footer": {"text": format!("likely: the most recent · ref {marker}")}}]
        })))
        .expect(1)
        .mount(discord.discord_api())
        .await;
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "1600000000000000077"})),
        )
        .expect(0)
        .mount(discord.discord_api())
        .await;
    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));
    let effect = discord
        .state
        .store
        .effect(job.id, "answer")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(effect.external_id.as_deref(), Some("1600000000000000077"));
}

#[tokio::test]
async fn the_slash_command_works_end_to_end_over_a_real_port() {
    let server = TestApp::builder()
        .discord()
        .serve_with_workers()
        .start()
        .await;
    let api = server.discord_api();
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(sessions(vec![official_session("7", "8", 20)])),
        )
        .mount(&server.fullstory)
        .await;
    Mock::given(path("/v2/sessions/7%3A8/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events": []})))
        .mount(&server.fullstory)
        .await;
    Mock::given(method("PATCH"))
        .and(path(edit_path("tok-port")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "1600000000000000001"})),
        )
        .expect(1)
        .mount(api)
        .await;

    let body = slash(
        "1700000000000000021",
        "tok-port",
        json!([{"name": "email", "type": 3, "value": "jane@acme.com"}]),
    )
    .to_string();
    let timestamp = chrono::Utc::now().timestamp();
    let response = server
        .http
        .post(server.url("/discord/interactions"))
        .header("x-signature-timestamp", timestamp.to_string())
        .header(
            "x-signature-ed25519",
            signature(SEED, timestamp, body.as_bytes()),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["type"], 5);

    // The workers run the job in the background: wait for the edit, with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.received_requests().await.unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no edit within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the binary with only the configuration we give it.
async fn replaydesk(dir: &TempDir, env: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_replaydesk"));
    command
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "REPLAYDESK_STORE__URL",
            format!("sqlite://{}/cli.db", dir.path().display()),
        );
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.unwrap()
}

#[tokio::test]
async fn register_overwrites_both_commands_in_a_guild_and_prints_them() {
    let api = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!("/applications/{APP}/guilds/{GUILD}/commands")))
        .and(header("authorization", "Bot test-bot-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "2100000000000000001", "application_id": APP, "name": "replays", "type": 1, "default_member_permissions": MODERATE_MEMBERS},
            {"id": "2100000000000000002", "application_id": APP, "name": "Find replays", "type": 3, "default_member_permissions": MODERATE_MEMBERS}
        ])))
        .expect(1)
        .mount(&api)
        .await;
    let dir = TempDir::new().unwrap();
    let env = [
        ("REPLAYDESK_DISCORD__APPLICATION_ID", APP.to_owned()),
        ("REPLAYDESK_DISCORD__BOT_TOKEN", "test-bot-token".to_owned()),
        ("REPLAYDESK_DISCORD__API_URL", api.uri()),
    ];
    let output = replaydesk(&dir, &env, &["discord", "register", "--guild", GUILD]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "Registered 2 commands for application {APP} in guild {GUILD}"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("/replays") && stdout.contains("Find replays"),
        "{stdout}"
    );

    let sent: Value =
        serde_json::from_slice(&api.received_requests().await.unwrap()[0].body).unwrap();
    let slash = &sent[0];
    assert_eq!(slash["name"], "replays");
    assert_eq!(slash["type"], 1);
    assert_eq!(slash["default_member_permissions"], MODERATE_MEMBERS);
    assert_eq!(slash["contexts"], json!([0]));
    let options: Vec<(&str, u64)> = slash["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["type"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        options,
        [("email", 3), ("uid", 3), ("summary", 5), ("digest", 5)]
    );
    let message = &sent[1];
    assert_eq!(message["name"], "Find replays");
    assert_eq!(message["type"], 3);
    assert!(
        message.get("description").is_none(),
        "a message command has no description"
    );
    assert_eq!(message["default_member_permissions"], MODERATE_MEMBERS);
    assert_eq!(message["contexts"], json!([0]));

    // Without a bot token it says which key to set.
    let output = replaydesk(&dir, &env[..1], &["discord", "register"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("discord.bot_token"));
}

// Issue 16.2 and 14.8: Discord refusing our answer, and what FullStory writes shown as typed.

#[tokio::test]
async fn when_discord_refuses_the_answer_the_plain_links_follow_and_fullstory_is_not_blamed() {
    let discord = Harness::start().await;
    discord
        .customer("jane@acme.com", vec![official_session("7", "8", 20)])
        .await;
    // The rich answer (embeds with a title) is refused; the plain one is taken.
    Mock::given(method("PATCH"))
        .and(path(edit_path("tok-refused")))
        .and(wiremock::matchers::body_string_contains("\"title\""))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 50035,
            "errors": {"embeds": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Embed size exceeds maximum size of 6000"}]}},
            "message": "Invalid Form Body"
        })))
        .with_priority(1)
        .mount(discord.discord_api())
        .await;
    discord.accept_edits("tok-refused").await;
    discord
        .ask_about_jane("1700000000000000050", "tok-refused")
        .await;
    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));
    let edits = discord.edits().await;
    assert_eq!(edits.len(), 2, "the refused answer, then the plain one");
    let plain = &edits[1];
    assert_eq!(plain["embeds"], json!([]));
    assert_eq!(plain["allowed_mentions"]["parse"], json!([]));
    let content = plain["content"].as_str().unwrap();
    assert!(content.contains("here are the replay links"), "{content}");
    assert!(
        content.contains("(likely): <https://app.fullstory.com/ui/ORG/session/7:8>"),
        "{content}"
    );
    assert!(content.contains("ref rd-"), "{content}");
    assert!(content.chars().count() <= 2000);
    assert!(
        !edits
            .iter()
            .any(|e| e.to_string().contains("FullStory after")),
        "nobody reads that FullStory failed"
    );
    let metrics = discord.state.app.metrics.render();
    assert!(
        metrics
            .contains(r#"replaydesk_platform_refusals_total{platform="discord",code="50035"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_hostile_summary_is_shown_as_typed_and_pings_nobody() {
    let discord = Harness::with(|c| c.fullstory.summary_profile = Some("support".into())).await;
    Mock::given(path("/v2/sessions/7%3A8/summary"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "response": "@everyone **urgent** [Reset your password](https://evil.example) <@123> `x`"
        })))
        .mount(&discord.fullstory)
        .await;
    discord.accept_edits("tok-hostile").await;
    let press = json!({
        "id": "1700000000000000051", "application_id": APP, "type": 3, "token": "tok-hostile", "version": 1,
        "guild_id": GUILD, "channel_id": "1300000000000000001", "member": member(MODERATE_MEMBERS, &[]),
        "data": {"custom_id": "rd:sum:7:8:-", "component_type": 2},
        "message": {"id": "1600000000000000001", "flags": 64, "components": []}
    });
    discord.post(&press).await;
    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));
    let edits = discord.edits().await;
    assert_eq!(edits[0]["allowed_mentions"]["parse"], json!([]));
    assert_eq!(
        edits[0]["embeds"][0]["description"],
        r"@everyone \*\*urgent\*\* \[Reset your password\]\(https://evil.example\) \<@123\> \`x\`"
    );
}

#[tokio::test]
async fn a_moderators_lookup_is_in_the_audit_trail() {
    let discord = Harness::start().await;
    discord
        .customer("jane@acme.com", vec![official_session("7", "8", 20)])
        .await;
    discord.accept_edits("tok-audit").await;
    let (status, _) = discord
        .ask_about_jane("1700000000000000077", "tok-audit")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(matches!(discord.run_job().await, ExecutionOutcome::Done(_)));
    let audited = helpers::audited_lookups(&discord.state.app, "jane@acme.com").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].platform, "discord");
}

#[tokio::test]
async fn a_moderator_escalates_from_the_answer_through_a_modal_and_hears_the_issue_once() {
    let linear = super::escalate::FakeLinear::default();
    let server = linear.start().await;
    let uri = server.uri();
    let discord = Harness::with(move |c| super::escalate::linear_at(c, &uri)).await;
    discord
        .customer("jane@acme.com", vec![official_session("7", "8", 20)])
        .await;
    discord.accept_edits("tok-ask").await;
    discord.accept_edits("tok-submit").await;
    discord
        .ask_about_jane("1700000000000000101", "tok-ask")
        .await;
    discord.run_jobs().await;
    // The answer offers Escalate (Linear is on), on the likely session.
    let answer = discord.edits().await.remove(0);
    let rows = answer["components"].as_array().unwrap();
    let escalate = &rows.last().unwrap()["components"][0];
    assert_eq!(escalate["label"], "Escalate to Linear");
    let custom_id = escalate["custom_id"].as_str().unwrap().to_owned();
    assert_eq!(custom_id, "rd:esc:linear:1:7:8");
    // The press is answered with the modal at once; nothing is stored.
    let press = interaction(
        "1700000000000000102",
        3,
        "tok-press",
        json!({"custom_id": custom_id, "component_type": 2}),
    );
    let (status, modal) = discord.post(&press).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(modal["type"], 9, "{modal}");
    assert_eq!(modal["data"]["title"], "Escalate to Linear");
    assert_eq!(modal["data"]["custom_id"], custom_id);
    let jobs = discord.jobs().await;
    // Submitted twice (Discord's retry of one interaction): deferred, one job, one issue, one edit.
    let submit = interaction(
        "1700000000000000103",
        5,
        "tok-submit",
        json!({"custom_id": custom_id, "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "title", "value": "Pay button dead"}]},
            {"type": 1, "components": [{"type": 4, "custom_id": "note", "value": ""}]},
        ]}),
    );
    for _ in 0..2 {
        let (status, body) = discord.post(&submit).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["type"], 5, "{body}");
        assert_eq!(body["data"]["flags"], 64, "{body}");
    }
    assert_eq!(discord.jobs().await, jobs + 1);
    discord.run_jobs().await;
    assert_eq!(linear.issues(), 1);
    assert_eq!(linear.creates()[0]["title"], "Pay button dead");
    let told: Vec<String> = discord
        .discord_api()
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == edit_path("tok-submit"))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(told.len(), 1);
    assert!(
        told[0].contains("Escalated to Linear: LIN-123"),
        "{}",
        told[0]
    );
}
