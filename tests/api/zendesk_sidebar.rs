//! The Zendesk sidebar app end to end, on the Zendesk harness of [`super::zendesk`] (the stateful fake
//! Zendesk, the fake FullStory, the manual clock): the first load signed as Zendesk signs it (an RS256
//! JWT in the form field `token`, made with the fixed test key in `tests/data/`), our own token, and the
//! JSON calls the page makes; what the agent sees and what the ticket ends up showing.

use axum::{
    body::Body,
    http::{Request as HttpRequest, StatusCode, header},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use replaydesk::{adapters::zendesk::sidebar::token::SidebarToken, demo::sidebar, signing};
use serde_json::{Value, json};
use wiremock::{Mock, ResponseTemplate, matchers::path};

use super::helpers::{TestAppBuilder, TestResponse};
use super::zendesk::{
    CREATED, Harness, TICKET, ZENDESK_SECRET, at, done, sessions_for, summary_of_jane_s_session,
};

pub(crate) const PRIVATE_KEY: &str = include_str!("../data/zendesk-app-test-key.pem");
pub(crate) const PUBLIC_KEY: &str = include_str!("../data/zendesk-app-test-key.pub.pem");
const OTHER_KEY: &str = include_str!("../data/zendesk-app-other-key.pem");

/// A JWT signed RS256 with `pem` under `header` (which says RS256).
fn rs256(pem: &str, header: &Value, claims: &Value) -> String {
    sidebar::rs256(pem, header, claims).unwrap()
}

/// The claims of a signed load for the account at `base_url`, agent 2, issued at `iat`.
fn claims(base_url: &str, iat: i64) -> Value {
    sidebar::claims(
        base_url,
        2,
        chrono::DateTime::from_timestamp(iat, 0).unwrap(),
    )
}

fn rs256_header() -> Value {
    json!({"alg": "RS256", "typ": "JWT"})
}

async fn sidebar() -> Harness {
    sidebar_with(|_| {}).await
}

async fn sidebar_with(tweak: impl FnOnce(&mut replaydesk::config::Config) + 'static) -> Harness {
    sidebar_from(Harness::builder(tweak)).await
}

/// The sidebar's harness from a builder of [`Harness::builder`]'s: the app's key, summaries on,
/// FullStory knowing jane (one session) and bob (none).
async fn sidebar_from(builder: TestAppBuilder) -> Harness {
    let rd = Harness::with_a_session_for_jane_from(builder.configure(|c| {
        c.zendesk.app_public_key = Some(PUBLIC_KEY.into());
        c.fullstory.summary_profile = Some("support".into());
    }))
    .await;
    sessions_for(&rd.fullstory, "bob@acme.com", vec![]).await;
    rd
}

/// What the page receives.
type Answer = TestResponse;

/// The page's view: this status, this `state`, a message saying `says`.
fn assert_state(answer: &Answer, status: StatusCode, state: &str, says: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    let json = answer.json();
    assert_eq!(json["state"], json!(state), "{}", answer.text);
    let message = json["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{message}");
}

async fn send(rd: &Harness, request: HttpRequest<Body>) -> Answer {
    rd.oneshot(request).await
}

/// Zendesk's first load: `POST /zendesk/app?origin=…&app_guid=…` with the form field `token`.
async fn load(rd: &Harness, jwt: &str) -> Answer {
    let body = serde_urlencoded::to_string([("token", jwt)]).unwrap();
    let request =
        HttpRequest::post("/zendesk/app?origin=https%3A%2F%2Facme.zendesk.com&app_guid=0b5e-guid")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
    send(rd, request).await
}

fn good_jwt(rd: &Harness) -> String {
    rs256(
        PRIVATE_KEY,
        &rs256_header(),
        &claims(&rd.zendesk().server.uri(), rd.clock.now().timestamp()),
    )
}

/// The token the page was answered with.
fn page_token(page: &str) -> String {
    let start = page.find(r#"{"token":""#).unwrap() + 10;
    page[start..].split('"').next().unwrap().to_owned()
}

async fn call(rd: &Harness, method: &str, uri: &str, token: &str, body: Value) -> Answer {
    let request = HttpRequest::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(rd, request).await
}

/// `GET /zendesk/app/api/sessions?ticket=…` with `token`.
async fn sessions_of(rd: &Harness, token: &str, ticket: u64) -> Answer {
    let uri = format!("/zendesk/app/api/sessions?ticket={ticket}");
    call(rd, "GET", &uri, token, json!({})).await
}

/// The signed load (a moment after the last one: Zendesk signs each load afresh, and replaydesk takes
/// each signed load once), then the exchange for a token of `ticket`, as the page does.
async fn ticket_token(rd: &Harness, ticket: u64) -> String {
    rd.clock.advance(std::time::Duration::from_secs(1));
    let page = load(rd, &good_jwt(rd)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let answer = exchange(rd, &page_token(&page.text), ticket).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()["token"].as_str().unwrap().to_owned()
}

/// `POST /zendesk/app/api/ticket {ticket_id}` with the load's token.
async fn exchange(rd: &Harness, token: &str, ticket: u64) -> Answer {
    call(
        rd,
        "POST",
        "/zendesk/app/api/ticket",
        token,
        json!({ "ticket_id": ticket }),
    )
    .await
}

/// A signed load for the agent `agent` (Zendesk's `sub`), answered with our page: its token.
async fn load_as(rd: &Harness, agent: u64) -> String {
    rd.clock.advance(std::time::Duration::from_secs(1));
    let base = rd.zendesk().server.uri();
    let jwt = rs256(
        PRIVATE_KEY,
        &rs256_header(),
        &sidebar::claims(&base, agent, rd.clock.now()),
    );
    let page = load(rd, &jwt).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page_token(&page.text)
}

// ------------------------------------------------------------------ the signed load

#[tokio::test]
async fn a_load_signed_by_zendesk_gets_the_page_framed_only_by_the_account() {
    let rd = sidebar().await;
    let page = load(&rd, &good_jwt(&rd)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let policy = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        policy.starts_with("default-src 'none'; script-src https://static.zdassets.com 'sha256-"),
        "{policy}"
    );
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    assert!(
        policy.ends_with(&format!("frame-ancestors {}", rd.zendesk().server.uri())),
        "{policy}"
    );
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(page.text.contains("zaf_sdk.min.js"));
    assert!(page.text.contains("Add as internal note"));
    assert!(!page_token(&page.text).is_empty());
    assert!(
        !page.text.contains("test-key-0123456789") && !page.text.contains(ZENDESK_SECRET),
        "no secret reaches the browser"
    );
}

#[tokio::test]
async fn every_bad_signed_load_is_401_with_a_page_that_says_what_to_check() {
    let rd = sidebar().await;
    let base = rd.zendesk().server.uri();
    let now = rd.clock.now().timestamp();
    let good = claims(&base, now);
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let hs256_with_public_key = {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(good.to_string());
        let mac = signing::hmac_sha256(
            PUBLIC_KEY.as_bytes(),
            &[format!("{header}.{payload}").as_bytes()],
        );
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let cases = [
        (
            "expired",
            rs256(PRIVATE_KEY, &rs256_header(), &with("exp", json!(now - 120))),
            "expired",
        ),
        (
            "issued in the future",
            rs256(PRIVATE_KEY, &rs256_header(), &with("iat", json!(now + 600))),
            "expired",
        ),
        (
            "expired at the start of time",
            rs256(PRIVATE_KEY, &rs256_header(), &with("exp", json!(i64::MIN))),
            "expired",
        ),
        (
            "not valid before the end of time",
            rs256(PRIVATE_KEY, &rs256_header(), &with("nbf", json!(i64::MAX))),
            "expired",
        ),
        (
            "wrong key",
            rs256(OTHER_KEY, &rs256_header(), &good),
            "app_public_key",
        ),
        (
            "wrong audience",
            rs256(
                PRIVATE_KEY,
                &rs256_header(),
                &with(
                    "aud",
                    json!(format!("{base}/api/v2/apps/installations/x.json")),
                ),
            ),
            "audience",
        ),
        (
            "wrong issuer",
            rs256(
                PRIVATE_KEY,
                &rs256_header(),
                &with("iss", json!("evil.example")),
            ),
            "issuer",
        ),
        ("alg none", alg_none, "not RS256"),
        (
            "HS256 with the public key as secret",
            hs256_with_public_key,
            "not RS256",
        ),
        ("no token", String::new(), "signedUrls"),
        ("garbage", "not.a.jwt".into(), "not a JWT"),
    ];
    for (case, jwt, says) in cases {
        let page = load(&rd, &jwt).await;
        assert_eq!(
            page.status,
            StatusCode::UNAUTHORIZED,
            "{case}: {}",
            page.text
        );
        assert!(page.text.contains(says), "{case}: {}", page.text);
        assert!(
            page.text.contains("zendesk.app_public_key"),
            "{case}: names what to check"
        );
        assert!(!page.text.contains("rd-config"), "{case}: no token of ours");
    }
    let unsigned = send(
        &rd,
        HttpRequest::get("/zendesk/app")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_good_token_of_another_account_is_403() {
    let rd = sidebar().await;
    let mut other = claims("https://beta.zendesk.com", rd.clock.now().timestamp());
    other["iss"] = json!("beta.zendesk.com");
    let page = load(&rd, &rs256(PRIVATE_KEY, &rs256_header(), &other)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.text);
    assert!(page.text.contains("beta.zendesk.com"), "{}", page.text);
}

#[tokio::test]
async fn a_configured_installation_is_the_only_audience_accepted() {
    let rd = sidebar_with(|c| c.zendesk.app_installation_id = Some("42".into())).await;
    let page = load(&rd, &good_jwt(&rd)).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.text);
}

// ------------------------------------------------------------------ our token

#[tokio::test]
async fn our_token_is_refused_when_expired_for_another_ticket_or_another_account() {
    let rd = sidebar().await;
    let token = ticket_token(&rd, TICKET).await;
    let sessions = |token: String, ticket: u64| {
        let rd = &rd;
        async move { sessions_of(rd, &token, ticket).await }
    };
    assert_eq!(sessions(token.clone(), TICKET).await.status, StatusCode::OK);
    assert_eq!(
        sessions(token.clone(), TICKET + 1).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        sessions(String::new(), TICKET).await.status,
        StatusCode::UNAUTHORIZED
    );
    let host = rd
        .zendesk()
        .server
        .uri()
        .trim_start_matches("http://")
        .to_owned();
    let other_account = SidebarToken::new("beta.zendesk.com", "2", Some(TICKET), rd.clock.now())
        .sign(ZENDESK_SECRET);
    assert_eq!(
        sessions(other_account, TICKET).await.status,
        StatusCode::FORBIDDEN
    );
    let forged = SidebarToken::new(&host, "2", Some(TICKET), rd.clock.now()).sign("not-our-secret");
    assert_eq!(
        sessions(forged, TICKET).await.status,
        StatusCode::UNAUTHORIZED
    );
    let no_ticket = call(&rd, "GET", "/zendesk/app/api/sessions", &token, json!({})).await;
    assert_state(&no_ticket, StatusCode::BAD_REQUEST, "error", "ticket");
    rd.clock.advance(std::time::Duration::from_secs(11 * 60));
    let expired = sessions(token, TICKET).await;
    assert_state(&expired, StatusCode::UNAUTHORIZED, "not_allowed", "expired");
}

// ------------------------------------------------------------------ the JSON calls

#[tokio::test]
async fn the_sidebar_lists_the_ticket_customers_sessions_newest_first_with_the_likely_one() {
    let rd = sidebar().await;
    let token = ticket_token(&rd, TICKET).await;
    let answer = sessions_of(&rd, &token, TICKET).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let data = answer.json();
    assert_eq!(data["state"], json!("ok"));
    let customers = data["customers"].as_array().unwrap();
    assert_eq!(
        customers[0]["who"],
        json!("j•••@acme.com"),
        "redacted, as in the note"
    );
    let sessions = customers[0]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], json!("5:3"));
    assert_eq!(sessions[0]["likely"], json!(true));
    assert!(
        customers[0]["digest"].as_str().unwrap().contains("rage"),
        "{data}"
    );
    // What went wrong, from the same events, for the page to list.
    let went_wrong = customers[0]["went_wrong"].as_array().unwrap();
    assert!(
        went_wrong
            .iter()
            .any(|l| l.as_str().unwrap().contains("rage click")),
        "{data}"
    );
    assert_eq!(customers[1]["who"], json!("b•••@acme.com"));
    assert!(!answer.text.contains("test-key-0123456789"));
    // No tracker configured: the page offers no Escalate button.
    assert_eq!(data["trackers"], json!([]), "{data}");

    let audit = rd.state.store.audit(None, None, 10).await.unwrap();
    let record = audit
        .iter()
        .find(|r| r.action == "sidebar.sessions")
        .unwrap();
    assert_eq!(
        (record.platform.as_str(), record.actor.as_str()),
        ("zendesk", "2")
    );
    assert_eq!(record.identities.len(), 2);
}

#[tokio::test]
async fn fullstory_down_is_a_state_the_page_shows() {
    let rd = Harness::start(|c| c.zendesk.app_public_key = Some(PUBLIC_KEY.into())).await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&rd.fullstory)
        .await;
    let token = ticket_token(&rd, TICKET).await;
    let answer = sessions_of(&rd, &token, TICKET).await;
    assert_state(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "FullStory",
    );
}

#[tokio::test]
async fn summarize_gives_fullstorys_summary_cut_at_the_ticket_creation_and_only_for_its_sessions() {
    let rd = sidebar().await;
    summary_of_jane_s_session("Clicked Pay 4 times; nothing happened.")
        .expect(1)
        .mount(&rd.fullstory)
        .await;
    let token = ticket_token(&rd, TICKET).await;
    let uri = format!("/zendesk/app/api/summary?ticket={TICKET}");
    let answer = call(&rd, "POST", &uri, &token, json!({"session": "5:3"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        answer.json(),
        json!({"state": "ready", "text": "Clicked Pay 4 times; nothing happened."})
    );
    let again = call(&rd, "POST", &uri, &token, json!({"session": "5:3"})).await;
    assert_eq!(
        again.json()["state"],
        json!("ready"),
        "cached: FullStory is asked once"
    );
    let stranger = call(&rd, "POST", &uri, &token, json!({"session": "9:9"})).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    assert!(at(CREATED) < rd.clock.now());
}

#[tokio::test]
async fn add_as_internal_note_posts_the_webhooks_note_once_under_repeated_clicks() {
    let rd = sidebar().await;
    let token = ticket_token(&rd, TICKET).await;
    let uri = format!("/zendesk/app/api/note?ticket={TICKET}");
    for _ in 0..3 {
        let answer = call(&rd, "POST", &uri, &token, json!({})).await;
        assert_state(&answer, StatusCode::ACCEPTED, "queued", "on its way");
    }
    assert_eq!(
        done(&rd.run_jobs().await),
        1,
        "one job for one page's clicks"
    );
    let notes = rd.zendesk().notes(TICKET);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("5:3"), "{}", notes[0]);

    // Another page load (a new token) and the webhook: the session is on the ticket already.
    let later = ticket_token(&rd, TICKET).await;
    call(&rd, "POST", &uri, &later, json!({})).await;
    rd.deliver("inv-1", &super::zendesk::created_body(TICKET))
        .await;
    rd.run_jobs().await;
    assert_eq!(
        rd.zendesk().notes(TICKET).len(),
        1,
        "never the same session twice"
    );
    assert_eq!(rd.note_puts().await.len(), 1);
}

#[tokio::test]
async fn a_ticket_asking_for_erasure_shows_nothing() {
    let rd = sidebar_with(|c| c.privacy.zendesk_erasure_tag = Some("forget_me".into())).await;
    rd.zendesk().set_tags(TICKET, &["forget_me"]);
    let token = ticket_token(&rd, TICKET).await;
    let answer = sessions_of(&rd, &token, TICKET).await;
    assert_state(&answer, StatusCode::FORBIDDEN, "not_allowed", "erased");
}

// ------------------------------------------------------------------ `replaydesk zendesk app`

#[tokio::test]
async fn zendesk_app_writes_a_zip_that_zendesks_validator_rules_accept_and_prints_the_key_line() {
    let zendesk = wiremock::MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .and(path("/api/v2/apps/77/public_key.pem"))
        .and(wiremock::matchers::header(
            "authorization",
            super::zendesk::expected_auth().as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_string(PUBLIC_KEY))
        .expect(1)
        .mount(&zendesk)
        .await;
    let dir = tempfile::TempDir::new().unwrap();
    let output = super::zendesk::replaydesk_with(
        &dir,
        &zendesk.uri(),
        "http://127.0.0.1:9",
        &[
            "zendesk",
            "app",
            "--url",
            "https://rd.example.com/",
            "--out",
            "rd.zip",
        ],
        &[("REPLAYDESK_ZENDESK__APP_ID", "77")],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let text = super::zendesk::stdout(&output);
    assert!(text.contains("Upload private app"), "{text}");
    assert!(
        text.contains("app_public_key = \"\"\"\n-----BEGIN PUBLIC KEY-----"),
        "{text}"
    );

    let zip = dir.path().join("rd.zip");
    let check = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/check_zaf_package.py"
        ))
        .arg(&zip)
        .arg("https://rd.example.com")
        .output()
        .expect("python3 runs");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[tokio::test]
async fn zendesk_setup_mentions_the_sidebar_app() {
    let dir = tempfile::TempDir::new().unwrap();
    let output = super::zendesk::replaydesk_with(
        &dir,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        &["zendesk", "setup", "--url", "https://rd.example.com"],
        &[],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    assert!(
        super::zendesk::stdout(&output)
            .contains("replaydesk zendesk app --url https://rd.example.com")
    );
}

// ------------------------------------------------------------------ a real browser

/// The stand-in for Zendesk's ZAF SDK (the demo's stub, answering the harness's ticket as ZAF would),
/// then the test's own clicks once the sessions are listed: Summarize on the likely session, "Add as
/// internal note" twice.
fn zaf_stub() -> String {
    zaf_stub_clicking(
        r#"
(function clickWhenListed() {
  var summarize = document.querySelector("li.likely button[data-action=summarize]");
  var note = document.getElementById("add-note");
  if (!summarize || !note || note.disabled) { setTimeout(clickWhenListed, 50); return; }
  summarize.click();
  note.click();
  note.click();
}());
"#,
    )
}

/// The ZAF stand-in for jane's ticket, then `clicks` (the agent's hand).
fn zaf_stub_clicking(clicks: &str) -> String {
    let ticket = json!({
        "id": TICKET, "subject": "Checkout is broken", "createdAt": CREATED,
        "requester": {"id": 1, "email": "jane@acme.com", "name": "Jane"},
    });
    sidebar::zaf_stub(&[ticket], &json!({"id": 2, "name": "Agent"})) + clicks
}

/// Zendesk's ticket frame played on `standin`: the ZAF stand-in `stub` and, per load, a freshly signed
/// JWT (as Zendesk signs each one) for the sidebar of `rd`; the frame's URL.
async fn serve_frame(rd: &Harness, standin: &wiremock::MockServer, stub: String) -> String {
    Mock::given(path("/zaf_sdk.min.js"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(stub, "text/javascript"))
        .mount(standin)
        .await;
    let sidebar_url = rd.url("/zendesk/app");
    let (base, now) = (rd.zendesk().server.uri(), rd.clock.now().timestamp());
    Mock::given(path("/frame.html"))
        .respond_with(move |_: &wiremock::Request| {
            let jwt = rs256(PRIVATE_KEY, &rs256_header(), &claims(&base, now));
            ResponseTemplate::new(200)
                .set_body_raw(sidebar::frame(&sidebar_url, &jwt, TICKET), "text/html")
        })
        .mount(standin)
        .await;
    format!("{}/frame.html", standin.uri())
}

/// Debian's `chromium`, or `None` (and the test is skipped) when it is missing outside CI.
fn chromium() -> Option<&'static str> {
    let found = std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is required in CI (apt-get install chromium)"
        );
        eprintln!("chromium is not installed: the browser test is skipped");
    }
    found.then_some("chromium")
}

async fn run_chromium(binary: &str, output: &str, url: &str) -> String {
    let profile = tempfile::TempDir::new().unwrap();
    let out = tokio::process::Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=360,560",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(output)
        .arg(url)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn in_a_real_browser_the_sidebar_lists_summarizes_and_adds_one_note() {
    let Some(chromium) = chromium() else { return };
    let standin = wiremock::MockServer::start().await;
    let sdk = format!("{}/zaf_sdk.min.js", standin.uri());
    // replaydesk's router on a real port; its queue is stepped by the test (`run_jobs`).
    let rd = sidebar_from(Harness::builder(|c| c.zendesk.app_sdk_url = sdk).serve()).await;
    summary_of_jane_s_session("Clicked Pay 4 times; nothing happened.")
        .mount(&rd.fullstory)
        .await;
    let frame_url = serve_frame(&rd, &standin, zaf_stub()).await;

    let dom = run_chromium(chromium, "--dump-dom", &frame_url).await;
    assert!(dom.contains(r#"data-state="ok""#), "{dom}");
    assert!(
        dom.contains(r#"class="session likely" data-session="5:3""#),
        "{dom}"
    );
    assert!(dom.contains(">Likely<"), "{dom}");
    assert!(
        dom.contains(r#"target="_blank""#),
        "Watch replay opens a new tab: {dom}"
    );
    assert!(
        dom.contains("Clicked Pay 4 times; nothing happened."),
        "{dom}"
    );
    assert!(
        dom.contains(r#"id="note-status" class="hint" role="status" data-state="queued""#),
        "{dom}"
    );
    assert!(
        dom.contains("data-zaf-resize="),
        "the frame was resized: {dom}"
    );
    assert_eq!(done(&rd.run_jobs().await), 1);
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1, "exactly one note");

    // The screenshot the README and docs/zendesk.md show: a second load, whose note finds the session
    // already on the ticket.
    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/target/zendesk-sidebar.png");
    run_chromium(chromium, &format!("--screenshot={shot}"), &frame_url).await;
    assert!(std::fs::metadata(shot).unwrap().len() > 1000);
    rd.run_jobs().await;
    assert_eq!(
        rd.zendesk().notes(TICKET).len(),
        1,
        "never the same session twice"
    );
}

#[tokio::test]
async fn a_ticket_token_cannot_be_exchanged_again_to_renew_it_or_point_it_at_another_ticket() {
    let rd = sidebar().await;
    let bound = ticket_token(&rd, TICKET).await;
    for ticket in [TICKET, TICKET + 1] {
        let again = call(
            &rd,
            "POST",
            "/zendesk/app/api/ticket",
            &bound,
            json!({"ticket_id": ticket, "agent_id": 2}),
        )
        .await;
        assert_eq!(again.status, StatusCode::FORBIDDEN, "{}", again.text);
    }
    assert_eq!(
        sessions_of(&rd, &bound, TICKET + 1).await.status,
        StatusCode::FORBIDDEN
    );
}

// ------------------------------------------------------------------ who may see what (issue 22)

/// Requests FullStory received.
async fn fullstory_calls(rd: &Harness) -> usize {
    rd.fullstory
        .received_requests()
        .await
        .unwrap_or_default()
        .len()
}

#[tokio::test]
async fn an_agent_cannot_open_a_ticket_zendesk_would_not_show_them() {
    let rd = sidebar().await;
    // The ticket is group 60's, in organisation 700, assigned to agent 5.
    rd.zendesk()
        .set_ticket_access(TICKET, Some(60), Some(700), Some(5));
    rd.zendesk()
        .add_user(3, "agent", json!("groups"), None, &[50]);
    rd.zendesk()
        .add_user(4, "agent", json!("organization"), Some(701), &[]);
    rd.zendesk()
        .add_user(6, "agent", json!("assigned"), None, &[]);
    rd.zendesk().add_user(8, "end-user", json!(null), None, &[]);
    for agent in [3, 4, 6, 8] {
        let before = fullstory_calls(&rd).await;
        let token = load_as(&rd, agent).await;
        let answer = exchange(&rd, &token, TICKET).await;
        assert_state(
            &answer,
            StatusCode::FORBIDDEN,
            "not_allowed",
            "You cannot see this ticket",
        );
        assert!(answer.json().get("token").is_none());
        assert_eq!(
            fullstory_calls(&rd).await,
            before,
            "agent {agent}: nothing looked up"
        );
    }
    assert_eq!(
        rd.zendesk()
            .calls_to(&format!("tickets/{TICKET}/comments"))
            .await,
        0,
        "no comment of the ticket was read"
    );
    let audit = rd.state.store.audit(None, None, 20).await.unwrap();
    let refused: Vec<&str> = audit
        .iter()
        .filter(|r| r.action == "sidebar.refused")
        .map(|r| r.actor.as_str())
        .collect();
    assert_eq!(refused.len(), 4, "every refusal audited: {refused:?}");
    assert!(refused.contains(&"3") && refused.contains(&"8"));

    // Those whom Zendesk lets see it: a member of group 60, the organisation's agent, the assignee.
    rd.zendesk()
        .add_user(9, "agent", json!("groups"), None, &[50, 60]);
    rd.zendesk()
        .add_user(10, "agent", json!("organization"), Some(700), &[]);
    rd.zendesk()
        .add_user(5, "agent", json!("assigned"), None, &[]);
    for agent in [9, 10, 5] {
        let token = load_as(&rd, agent).await;
        let answer = exchange(&rd, &token, TICKET).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "agent {agent}: {}",
            answer.text
        );
        let bound = answer.json()["token"].as_str().unwrap().to_owned();
        assert_eq!(
            sessions_of(&rd, &bound, TICKET).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn the_agent_is_zendesks_signed_subject_never_what_the_page_says() {
    let rd = sidebar().await;
    let base = rd.zendesk().server.uri();
    let now = rd.clock.now();
    // No `sub`, and a `sub` naming a user of another account: refused with a page saying why.
    let mut anonymous = sidebar::claims(&base, 2, now);
    anonymous.as_object_mut().unwrap().remove("sub");
    let mut elsewhere = sidebar::claims(&base, 2, now);
    elsewhere["sub"] = json!("https://evil.zendesk.com/api/v2/users/2.json");
    let mut escaped = sidebar::claims(&base, 2, now);
    escaped["sub"] = json!("\u{1b}[31m2");
    for claims in [anonymous, elsewhere, escaped] {
        let page = load(&rd, &rs256(PRIVATE_KEY, &rs256_header(), &claims)).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.text);
        assert!(page.text.contains("which agent"), "{}", page.text);
        assert!(!page.text.contains("rd-config"));
    }
    // The page names another agent, with a terminal escape: the audit names Zendesk's agent, 2.
    let token = load_as(&rd, 2).await;
    let answer = call(
        &rd,
        "POST",
        "/zendesk/app/api/ticket",
        &token,
        json!({"ticket_id": TICKET, "agent_id": "\u{1b}[2J\nroot"}),
    )
    .await;
    let bound = answer.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        sessions_of(&rd, &bound, TICKET).await.status,
        StatusCode::OK
    );
    let audit = rd.state.store.audit(None, None, 10).await.unwrap();
    let actors: Vec<&str> = audit.iter().map(|r| r.actor.as_str()).collect();
    assert_eq!(actors, ["2"], "{actors:?}");
}

#[tokio::test]
async fn a_signed_load_is_accepted_once_and_its_token_exchanged_once() {
    let rd = sidebar().await;
    rd.zendesk()
        .add_ticket(TICKET + 1, "Another", "nothing here");
    let jwt = good_jwt(&rd);
    let first = load(&rd, &jwt).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    for _ in 0..3 {
        let replayed = load(&rd, &jwt).await;
        assert_eq!(
            replayed.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            replayed.text
        );
        assert!(replayed.text.contains("already used"), "{}", replayed.text);
    }
    let token = page_token(&first.text);
    assert_eq!(exchange(&rd, &token, TICKET).await.status, StatusCode::OK);
    let again = exchange(&rd, &token, TICKET + 1).await;
    assert_state(
        &again,
        StatusCode::FORBIDDEN,
        "not_allowed",
        "already chose",
    );
    let same = exchange(&rd, &token, TICKET).await;
    assert_eq!(same.status, StatusCode::FORBIDDEN, "{}", same.text);
}

#[tokio::test]
async fn a_flood_of_sidebar_calls_makes_few_zendesk_calls_and_delays_no_webhook_note() {
    let rd = sidebar().await;
    let token = ticket_token(&rd, TICKET).await;
    let before = rd.zendesk().calls_to("").await;
    let uri = format!("/zendesk/app/api/sessions?ticket={TICKET}");
    let mut busy = 0;
    let mut answered = 0;
    for i in 0..300 {
        if i == 150 {
            // A new ticket's webhook arrives in the middle of the flood.
            assert_eq!(
                rd.deliver("inv-flood", &super::zendesk::created_body(TICKET))
                    .await,
                StatusCode::OK
            );
        }
        let answer = call(&rd, "GET", &uri, &token, json!({})).await;
        match answer.status {
            StatusCode::OK => answered += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(answer.json()["state"], json!("busy"));
                busy += 1;
            }
            other => panic!("{other}: {}", answer.text),
        }
    }
    let during = rd.zendesk().calls_to("").await - before;
    assert!(answered <= 10, "the token's allowance: {answered} answered");
    assert_eq!(busy + answered, 300);
    assert!(during <= 10, "{during} Zendesk calls for 300 sidebar calls");
    // The webhook's note is posted at its first run: the sidebar spent none of its allowance.
    assert_eq!(done(&rd.run_jobs().await), 1);
    assert_eq!(rd.zendesk().notes(TICKET).len(), 1);
}

#[tokio::test]
async fn a_session_link_that_is_not_a_web_link_never_reaches_the_page() {
    let rd = sidebar().await;
    let mut hostile = super::zendesk::fs_session("6", "1", "2026-11-19T10:00:00Z");
    hostile["fsUrl"] = json!("javascript:alert(document.cookie)//6:1");
    Mock::given(path("/sessions/v2"))
        .and(wiremock::matchers::query_param("email", "bob@acme.com"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"sessions": [
                hostile,
                super::zendesk::fs_session("6", "2", "2026-11-19T11:00:00Z"),
            ]})),
        )
        .with_priority(1)
        .mount(&rd.fullstory)
        .await;
    let token = ticket_token(&rd, TICKET).await;
    let answer = sessions_of(&rd, &token, TICKET).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert!(
        !answer.text.to_lowercase().contains("javascript"),
        "{}",
        answer.text
    );
    assert!(answer.text.contains("6:2"), "{}", answer.text);
}

#[tokio::test]
async fn a_summary_shows_no_customer_address() {
    let rd = sidebar().await;
    summary_of_jane_s_session("jane@acme.com paid twice; she wrote to bob@acme.com about it.")
        .mount(&rd.fullstory)
        .await;
    let token = ticket_token(&rd, TICKET).await;
    let uri = format!("/zendesk/app/api/summary?ticket={TICKET}");
    let answer = call(&rd, "POST", &uri, &token, json!({"session": "5:3"})).await;
    assert_eq!(
        answer.json()["text"],
        json!("j•••@acme.com paid twice; she wrote to b•••@acme.com about it.")
    );
}

#[tokio::test]
async fn a_customer_who_asked_to_be_forgotten_is_said_so_and_not_looked_up() {
    let rd = sidebar().await;
    let jane = replaydesk::identity::CustomerEmail::parse("jane@acme.com").unwrap();
    rd.state.tombstones.bury(&jane).await.unwrap();
    let token = ticket_token(&rd, TICKET).await;
    let answer = sessions_of(&rd, &token, TICKET).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let jane = &answer.json()["customers"][0];
    assert_eq!(jane["forgotten"], json!(true));
    assert!(
        jane["note"]
            .as_str()
            .unwrap()
            .contains("asked to be forgotten"),
        "{jane}"
    );
    let asked: Vec<String> = rd
        .fullstory
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "email")
                .map(|(_, v)| v.into_owned())
        })
        .collect();
    assert!(!asked.contains(&"jane@acme.com".to_owned()), "{asked:?}");
}

#[tokio::test]
async fn with_the_digest_on_request_the_sidebar_offers_it_and_fetches_it_when_clicked() {
    let rd = sidebar_with(|c| c.fullstory.digest = replaydesk::config::DigestMode::OnRequest).await;
    let token = ticket_token(&rd, TICKET).await;
    let events = || async {
        rd.fullstory
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().ends_with("/events"))
            .count()
    };
    let first = sessions_of(&rd, &token, TICKET).await.json();
    assert_eq!(first["customers"][0]["digest"], Value::Null, "{first}");
    assert_eq!(first["customers"][0]["digest_on_request"], json!(true));
    assert_eq!(
        first["customers"][1]["digest_on_request"],
        json!(false),
        "no likely session, no button"
    );
    assert_eq!(events().await, 0, "no automatic Activation");

    let uri = format!("/zendesk/app/api/sessions?ticket={TICKET}&digest=1");
    let asked = call(&rd, "GET", &uri, &token, json!({})).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
    let asked = asked.json();
    assert!(
        asked["customers"][0]["digest"]
            .as_str()
            .unwrap()
            .contains("rage"),
        "{asked}"
    );
    assert_eq!(events().await, 1);
    let report = rd.state.activations.report().await.unwrap();
    assert_eq!((report.automatic, report.on_request), (0, 1));
}

#[tokio::test]
async fn escalate_from_the_sidebar_makes_one_issue_notes_it_once_and_then_says_already() {
    let linear = super::escalate::FakeLinear::default();
    let server = linear.start().await;
    let uri = server.uri();
    let rd = sidebar_with(move |c| super::escalate::linear_at(c, &uri)).await;
    let token = ticket_token(&rd, TICKET).await;
    // The sessions answer names the trackers that are on: the page's Escalate button and its choice.
    let listed = sessions_of(&rd, &token, TICKET).await.json();
    assert_eq!(listed["trackers"], json!(["linear"]), "{listed}");
    let uri = format!("/zendesk/app/api/escalate?ticket={TICKET}");
    // Without a token: refused like every data call.
    let anonymous = call(&rd, "POST", &uri, "not-a-token", json!({})).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    // A tracker that is not on is refused, naming the ones that are.
    let jira = call(&rd, "POST", &uri, &token, json!({"tracker": "jira"})).await;
    assert_state(
        &jira,
        StatusCode::BAD_REQUEST,
        "error",
        "tracker must be one of: linear",
    );
    // A double click: one job, one issue, one note.
    let ask = json!({"session": "5:3", "note": "Happens on Safari"});
    for _ in 0..2 {
        let answer = call(&rd, "POST", &uri, &token, ask.clone()).await;
        assert_state(
            &answer,
            StatusCode::ACCEPTED,
            "queued",
            "Escalating to Linear",
        );
    }
    rd.run_jobs().await;
    assert_eq!(linear.issues(), 1);
    let create = &linear.creates()[0];
    assert!(
        create["description"]
            .as_str()
            .unwrap()
            .contains("Happens on Safari")
    );
    let notes: Vec<String> = rd
        .zendesk()
        .notes(TICKET)
        .into_iter()
        .filter(|n| n.contains("Escalated to"))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    // Another agent, later: already escalated, with the link; nothing queued.
    let later = ticket_token(&rd, TICKET).await;
    let again = call(&rd, "POST", &uri, &later, ask).await;
    assert_state(
        &again,
        StatusCode::OK,
        "already",
        "Already escalated: LIN-123 https://linear.app/acme/issue/LIN-123",
    );
    assert_eq!(again.json()["key"], "LIN-123");
}

#[tokio::test]
async fn with_both_trackers_on_the_sessions_answer_names_both_linear_first() {
    let rd = sidebar_with(|c| {
        super::escalate::linear_at(c, "http://127.0.0.1:9");
        super::escalate::jira_at(c, "https://acme.atlassian.net");
    })
    .await;
    let token = ticket_token(&rd, TICKET).await;
    let listed = sessions_of(&rd, &token, TICKET).await.json();
    assert_eq!(listed["trackers"], json!(["linear", "jira"]), "{listed}");
    // With both on, the page must choose: an escalation naming none is refused, naming both.
    let uri = format!("/zendesk/app/api/escalate?ticket={TICKET}");
    let unnamed = call(&rd, "POST", &uri, &token, json!({"session": "5:3"})).await;
    assert_state(
        &unnamed,
        StatusCode::BAD_REQUEST,
        "error",
        "tracker must be one of: linear, jira",
    );
}

#[tokio::test]
async fn in_a_real_browser_an_agent_escalates_the_likely_session_once() {
    let Some(chromium) = chromium() else { return };
    let linear = super::escalate::FakeLinear::default();
    let tracker = linear.start().await;
    let tracker_uri = tracker.uri();
    let standin = wiremock::MockServer::start().await;
    let sdk = format!("{}/zaf_sdk.min.js", standin.uri());
    let rd = sidebar_from(
        Harness::builder(move |c| {
            c.zendesk.app_sdk_url = sdk;
            super::escalate::linear_at(c, &tracker_uri);
        })
        .serve(),
    )
    .await;
    // The agent's hand: Escalate on the likely session, a note, Send; then Send again (a double click).
    let clicks = r#"
(function escalateWhenListed() {
  var escalate = document.querySelector("li.likely button[data-action=escalate]");
  if (!escalate) { setTimeout(escalateWhenListed, 50); return; }
  escalate.click();
  document.getElementById("escalate-note").value = "Happens on Safari";
  var send = document.getElementById("escalate-send");
  send.click();
  send.click();
}());
"#;
    let frame_url = serve_frame(&rd, &standin, zaf_stub_clicking(clicks)).await;
    let dom = run_chromium(chromium, "--dump-dom", &frame_url).await;
    // The answer is shown where the agent clicked: queued (the workers are the test's to run).
    assert!(
        dom.contains(r#"id="escalate-status" class="hint" role="status" data-state="queued""#),
        "{dom}"
    );
    rd.run_jobs().await;
    assert_eq!(linear.issues(), 1, "one issue for the double click");
    // The title came prefilled from the ticket's subject, the note as typed.
    let create = serde_json::to_string(&linear.creates()[0]).unwrap();
    assert!(create.contains("Checkout is broken"), "{create}");
    assert!(create.contains("Happens on Safari"), "{create}");
    assert_eq!(
        rd.zendesk()
            .notes(TICKET)
            .iter()
            .filter(|n| n.contains("Escalated to"))
            .count(),
        1,
        "one 'Escalated to' note"
    );
}
