//! `replaydesk demo`: the real service against the demo's own fakes. In process (the pieces `demo` is
//! made of, including a second round of requests as a reader would send them with curl), and as the
//! built binary with `--once`, whose printed answers and curl lines are checked: every signature must
//! pass the crate's own verifiers.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::Utc;
use replaydesk::{
    adapters::{discord, intercom, slack, zendesk},
    config::LogConfig,
    demo::{
        self, Demo, DemoArgs,
        requests::{
            DISCORD_SEED, INTERCOM_CLIENT_SECRET, SLACK_SIGNING_SECRET, Signed,
            ZENDESK_WEBHOOK_SECRET,
        },
        show,
        upstream::{Platform, Reply},
    },
};
use tempfile::TempDir;

use super::helpers;

const JANE_LATEST: &str = "5191865402245120:4000000000000003";
/// Omar's session live just before his ticket (his newest started after it).
const OMAR_BEFORE_TICKET: &str = "6029183475021824:5100000000000011";
const LEE_BEFORE_MESSAGE: &str = "4785074604081152:6200000000000021";

fn args(dir: &TempDir) -> DemoArgs {
    DemoArgs {
        listen: "127.0.0.1:0".into(),
        store: Some(dir.path().join("demo.db")),
        once: true,
    }
}

/// The demo in process, its store in `dir`.
async fn start(dir: &TempDir) -> Demo {
    helpers::capture_logs();
    replaydesk::install_crypto_provider();
    Demo::start(&args(dir), LogConfig::default()).await.unwrap()
}

/// Whether `text` has a line marking `session` as the likely one.
fn marks_likely(text: &str, session: &str) -> bool {
    text.lines()
        .any(|line| line.contains(session) && line.contains("likely"))
}

fn rendered(replies: &[Reply], platform: Platform) -> String {
    replies
        .iter()
        .filter(|r| r.platform() == platform)
        .map(show::reply)
        .collect()
}

#[tokio::test]
async fn the_demo_answers_on_every_platform_through_the_real_pipeline() {
    let dir = TempDir::new().unwrap();
    let demo = start(&dir).await;

    for request in demo.samples(Utc::now()).unwrap() {
        let (status, body) = demo.send(&request).await.unwrap();
        assert_eq!(status, 200, "{}: {body}", request.label);
    }
    assert!(
        demo.wait_until(demo::all_answered, demo::ANSWER_TIMEOUT)
            .await
    );
    let replies = demo.upstreams.captured.all();
    let slack = rendered(&replies, Platform::Slack);
    assert!(marks_likely(&slack, JANE_LATEST), "{slack}");
    assert!(
        slack.contains("j•••@acme.com · 3 recent sessions"),
        "{slack}"
    );
    assert!(slack.contains("3 rage clicks"), "{slack}");
    assert!(
        slack.contains(
            "5:01 console error: TypeError: Cannot read properties of undefined (reading 'total')"
        ),
        "{slack}"
    );
    assert!(
        slack.contains("3:32 failed request: POST /api/checkout → 502"),
        "{slack}"
    );
    let zendesk = rendered(&replies, Platform::Zendesk);
    assert!(marks_likely(&zendesk, OMAR_BEFORE_TICKET), "{zendesk}");
    assert!(
        zendesk.contains("ticket #35436 tagged replaydesk"),
        "{zendesk}"
    );
    assert!(
        zendesk.contains("Summary: Omar opened the Q3 report"),
        "{zendesk}"
    );
    let discord = rendered(&replies, Platform::Discord);
    assert!(marks_likely(&discord, LEE_BEFORE_MESSAGE), "{discord}");
    let intercom = rendered(&replies, Platform::Intercom);
    assert!(marks_likely(&intercom, JANE_LATEST), "{intercom}");
    assert!(intercom.contains("conversation 8801"), "{intercom}");
    // The first ticket carries the escalation tag: one issue on the fake Linear, titled with the
    // ticket's subject, and one note on the ticket naming it.
    let issues: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.platform() == Platform::Linear)
        .collect();
    assert_eq!(issues.len(), 1, "{replies:?}");
    let linear = show::reply(issues[0]);
    assert!(
        linear.contains("Escalated to Linear: DEMO-1 CSV export of the Q3 report does nothing"),
        "{linear}"
    );
    let escalated = replies
        .iter()
        .filter(|r| matches!(r, Reply::ZendeskNote { ticket: 35436, html } if html.contains("Escalated to")))
        .count();
    assert_eq!(escalated, 1, "{zendesk}");
    assert!(
        zendesk.contains(
            "Escalated to DEMO-1 <https://linear.app/replaydesk-demo/issue/DEMO-1> (Linear)"
        ),
        "{zendesk}"
    );
    // Like the platforms, the answers show customers' addresses redacted.
    for text in [&slack, &zendesk, &discord, &intercom] {
        for email in ["jane@acme.com", "omar@globex.io", "lee@initech.com"] {
            assert!(!text.contains(email), "{text}");
        }
    }

    // The second round, as printed for curl: other customers, other commands.
    let seen = replies.len();
    for request in demo.try_more(Utc::now()) {
        let (status, body) = demo.send(&request).await.unwrap();
        assert_eq!(status, 200, "{}: {body}", request.label);
        if request.route == "/intercom/canvas/initialize" {
            // The inbox app answers its canvas at once: lee's sessions as a list.
            let canvas: serde_json::Value = serde_json::from_str(&body).unwrap();
            let components = canvas["canvas"]["content"]["components"]
                .as_array()
                .unwrap();
            assert!(components.iter().any(|c| c["type"] == "list"), "{body}");
            assert!(!body.contains("lee@initech.com"), "{body}");
        }
    }
    let three_more = |replies: &[Reply]| {
        let new = &replies[seen.min(replies.len())..];
        [Platform::Slack, Platform::Zendesk, Platform::Discord]
            .iter()
            .all(|p| new.iter().any(|r| r.platform() == *p))
            && new.iter().any(|r| matches!(r, Reply::ZendeskTags { .. }))
    };
    assert!(demo.wait_until(three_more, demo::ANSWER_TIMEOUT).await);
    let replies = demo.upstreams.captured.all();
    let new = &replies[seen..];
    let slack = rendered(new, Platform::Slack);
    assert!(marks_likely(&slack, LEE_BEFORE_MESSAGE), "{slack}");
    assert!(
        slack.contains("No sessions found for s•••@umbrella.dev in the last 30 days."),
        "{slack}"
    );
    let zendesk = rendered(new, Platform::Zendesk);
    assert!(zendesk.contains("ticket #35437"), "{zendesk}");
    assert!(marks_likely(&zendesk, JANE_LATEST), "{zendesk}");
    let discord = rendered(new, Platform::Discord);
    assert!(
        discord.contains("FullStory AI summary: Omar looked at reports"),
        "{discord}"
    );

    demo.stop().await.unwrap();
}

/// Splits one shell command line the way a POSIX shell does for what `Signed::curl` prints: words
/// separated by blanks, `'…'` quoted, `\`-newline continuing the line.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(escaped) => word.get_or_insert_with(String::new).push(escaped),
            },
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// The printed curl commands: (url, headers, body).
fn curl_commands(stdout: &str) -> Vec<(String, HeaderMap, String)> {
    let mut commands = Vec::new();
    let mut lines = stdout.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with("curl ") {
            continue;
        }
        let mut command = line.to_owned();
        while command.ends_with('\\') {
            command.push('\n');
            command.push_str(lines.next().unwrap_or_default());
        }
        let words = shell_words(&command);
        let mut headers = HeaderMap::new();
        let mut url = String::new();
        let mut body = String::new();
        let mut words = words.iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "-H" => {
                    let (name, value) = words.next().unwrap().split_once(": ").unwrap();
                    headers.insert(
                        HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_str(value).unwrap(),
                    );
                }
                "--data-binary" => body = words.next().unwrap().clone(),
                w if w.starts_with("http://") => url = w.to_owned(),
                _ => {}
            }
        }
        commands.push((url, headers, body));
    }
    commands
}

#[tokio::test]
async fn the_demo_binary_prints_each_answer_and_curl_lines_that_verify() {
    helpers::capture_logs();
    let dir = TempDir::new().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_replaydesk"))
            .args(["demo", "--once", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env_remove("REPLAYDESK_CONFIG")
            .env("REPLAYDESK_LOG__LEVEL", "info")
            .output(),
    )
    .await
    .expect("the demo finishes")
    .unwrap();
    helpers::capture_process_logs(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let section = |title: &str| {
        let start = stdout
            .find(title)
            .unwrap_or_else(|| panic!("{title}: {stdout}"));
        let rest = &stdout[start..];
        rest[..rest[3..].find("── ").map_or(rest.len(), |end| end + 3)].to_owned()
    };
    let slack = section("── Slack");
    assert!(marks_likely(&slack, JANE_LATEST), "{slack}");
    assert!(
        slack.contains("[Watch replay]") && slack.contains("Summary"),
        "{slack}"
    );
    let zendesk = section("── Zendesk (internal note");
    assert!(marks_likely(&zendesk, OMAR_BEFORE_TICKET), "{zendesk}");
    let discord = section("── Discord");
    assert!(marks_likely(&discord, LEE_BEFORE_MESSAGE), "{discord}");
    assert!(stdout.contains("tagged replaydesk"), "{stdout}");
    let intercom = section("── Intercom");
    assert!(marks_likely(&intercom, JANE_LATEST), "{intercom}");
    let linear = section("── Linear");
    assert!(
        linear.contains("Escalated to Linear: DEMO-1 CSV export of the Q3 report does nothing"),
        "{linear}"
    );
    assert!(
        stdout.contains("Escalated to DEMO-1 <https://linear.app/replaydesk-demo/issue/DEMO-1>"),
        "{stdout}"
    );

    let commands = curl_commands(&stdout);
    assert_eq!(commands.len(), 4, "{stdout}");
    let now = Utc::now();
    let verifier = serenity::interactions_endpoint::Verifier::try_new(
        hex::decode(discord::verify::public_key(&DISCORD_SEED))
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let mut routes = Vec::new();
    for (url, headers, body) in &commands {
        let route = url.rsplit_once(":").unwrap().1;
        let route = &route[route.find('/').unwrap()..];
        let body = body.as_bytes();
        let verified = match route {
            "/slack/commands" => {
                slack::verify::verify(headers, body, [SLACK_SIGNING_SECRET].into_iter(), now)
            }
            "/zendesk/webhook" => {
                zendesk::verify::verify(headers, body, [ZENDESK_WEBHOOK_SECRET].into_iter(), now)
            }
            "/discord/interactions" => discord::verify::verify(&verifier, headers, body, now),
            "/intercom/canvas/initialize" => {
                intercom::verify::verify_canvas(headers, body, [INTERCOM_CLIENT_SECRET].into_iter())
            }
            other => panic!("unexpected route {other}"),
        };
        assert_eq!(verified, Ok(()), "{route}");
        routes.push(route.to_owned());
    }
    assert_eq!(
        routes,
        [
            "/slack/commands",
            "/zendesk/webhook",
            "/discord/interactions",
            "/intercom/canvas/initialize"
        ]
    );
    assert!(stdout.contains("5-minute"), "{stdout}");
}

#[test]
fn a_printed_curl_line_reads_back_as_the_same_request() {
    let signed: Signed =
        demo::requests::zendesk_ticket(7, "o'neil@example.com", Utc::now(), Utc::now());
    let printed = signed.curl("127.0.0.1:8080".parse().unwrap());
    let commands = curl_commands(&printed);
    let (url, headers, body) = &commands[0];
    assert_eq!(url, "http://127.0.0.1:8080/zendesk/webhook");
    assert_eq!(body, &signed.body);
    assert_eq!(headers.len(), signed.headers.len() + 1);
}

#[tokio::test]
async fn the_demo_refuses_a_store_file_that_already_exists() {
    let dir = TempDir::new().unwrap();
    let existing = dir.path().join("old.db");
    std::fs::write(&existing, b"").unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_replaydesk"))
        .args(["demo", "--once", "--listen", "127.0.0.1:0", "--store"])
        .arg(&existing)
        .current_dir(dir.path())
        .env_remove("REPLAYDESK_CONFIG")
        .output()
        .await
        .unwrap();
    helpers::capture_process_logs(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("the file exists"));
}

#[tokio::test]
async fn the_demo_serves_the_zendesk_sidebar_on_a_stand_in_for_zendesks_frame() {
    let dir = TempDir::new().unwrap();
    let demo = start(&dir).await;
    let http = reqwest::Client::new();
    // The stand-in frame: a form that POSTs a freshly signed JWT to the sidebar, as Zendesk does.
    let get = async |url: String| http.get(url).send().await.unwrap().text().await.unwrap();
    let frame = get(demo.sidebar_url()).await;
    let action = frame
        .split(r#"action=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let action = action.replace("&amp;", "&");
    assert!(
        action.contains("origin=") && action.contains("app_guid="),
        "{action}"
    );
    let token = frame
        .split(r#"name="token" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let page = http
        .post(&action)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Add as internal note"), "{page}");
    assert!(page.contains("/demo/zaf_sdk.js"), "the stub SDK: {page}");
    let stub = get(format!("http://{}/demo/zaf_sdk.js", demo.upstreams.zendesk)).await;
    assert!(
        stub.contains("ZAFClient") && stub.contains("35436"),
        "{stub}"
    );
    demo.stop().await.unwrap();
}
