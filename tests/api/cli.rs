//! The `replaydesk` binary run as a real process against a fake FullStory: output, exit codes, messages.

use std::process::Output;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Command;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{path, query_param},
};

use super::helpers::{official_session, sessions};

/// Runs the binary in an empty directory with only the configuration we give it.
async fn replaydesk(dir: &TempDir, fullstory: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replaydesk"))
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REPLAYDESK_FULLSTORY__API_KEY", "na1.cli-test-key")
        .env("REPLAYDESK_FULLSTORY__BASE_URL", fullstory)
        .env("REPLAYDESK_FULLSTORY__RETRY_BACKOFF", "10ms")
        .env("REPLAYDESK_FULLSTORY__SUMMARY_PROFILE", "support")
        .env(
            "REPLAYDESK_STORE__URL",
            format!("sqlite://{}/cli.db", dir.path().display()),
        )
        .env("REPLAYDESK_LOG__LEVEL", "trace")
        .output()
        .await
        .inspect(super::helpers::capture_process_logs)
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn fake_fullstory() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .and(query_param("email", "jane@acme.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![
            official_session("5", "older", 90),
            official_session("5", "newer", 15),
        ])))
        .mount(&server)
        .await;
    Mock::given(path("/sessions/v2"))
        .and(query_param("email", "nobody@acme.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![])))
        .mount(&server)
        .await;
    Mock::given(path("/v2/sessions/5%3Anewer/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events":[
            {"event_time":super::helpers::minutes_ago(14),"event_type":"navigate","event_properties":{"url":"https://shop/a"}},
            {"event_time":super::helpers::minutes_ago(9),"event_type":"dead-click"}
        ]})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/sessions/5%3Anewer/summary"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"summary":"Browsed, clicked a dead button."})),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn lookup_prints_a_table_newest_first_with_the_likely_session_marked() {
    let server = fake_fullstory().await;
    let dir = TempDir::new().unwrap();
    let output = replaydesk(
        &dir,
        &server.uri(),
        &["lookup", "Jane@Acme.com", "--digest", "--summary"],
    )
    .await;
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "Sessions for jane@acme.com (newest first):");
    assert!(
        lines[1].starts_with("  * ")
            && lines[1].contains("5:newer")
            && lines[1].ends_with("<- likely"),
        "{stdout}"
    );
    assert_eq!(lines[2], "      1 page · 1 dead click · 5 min");
    assert!(
        lines[3].starts_with("    ") && lines[3].contains("5:older"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Summary:\n    Browsed, clicked a dead button."),
        "{stdout}"
    );
}

#[tokio::test]
async fn lookup_prints_json_with_likely_flags() {
    let server = fake_fullstory().await;
    let dir = TempDir::new().unwrap();
    let output = replaydesk(&dir, &server.uri(), &["lookup", "jane@acme.com", "--json"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let sessions = json["identities"][0]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["id"], "5:newer");
    assert_eq!(sessions[0]["likely"], true);
    assert_eq!(sessions[1]["likely"], false);
    assert!(
        sessions[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://app.fullstory.com/")
    );
    assert!(sessions[0]["created"].as_str().is_some());
    assert_eq!(json["identities"][0]["identity"]["email"], "jane@acme.com");
    assert!(
        json["identities"][0].get("digest").is_none(),
        "no digest unless asked"
    );
}

#[tokio::test]
async fn lookup_with_no_sessions_says_so_politely_and_succeeds() {
    let server = fake_fullstory().await;
    let dir = TempDir::new().unwrap();
    let output = replaydesk(&dir, &server.uri(), &["lookup", "nobody@acme.com"]).await;
    assert!(output.status.success());
    assert_eq!(
        text(&output.stdout),
        "No sessions found for nobody@acme.com in the last 30 days.\n"
    );
}

#[tokio::test]
async fn lookup_with_a_rejected_key_fails_with_one_actionable_line() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let dir = TempDir::new().unwrap();
    let output = replaydesk(&dir, &server.uri(), &["lookup", "jane@acme.com"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr).lines().last().unwrap(),
        "replaydesk: FullStory rejected the API key (401): check fullstory.api_key"
    );
}

#[tokio::test]
async fn usage_and_configuration_errors_exit_with_2() {
    let dir = TempDir::new().unwrap();
    let no_identity = replaydesk(&dir, "http://127.0.0.1:9", &["lookup"]).await;
    assert_eq!(no_identity.status.code(), Some(2));
    assert!(text(&no_identity.stderr).contains("at least one customer email"));

    let bad_email = replaydesk(&dir, "http://127.0.0.1:9", &["lookup", "not-an-email"]).await;
    assert_eq!(bad_email.status.code(), Some(2));

    let bad_config = Command::new(env!("CARGO_BIN_EXE_replaydesk"))
        .args(["lookup", "jane@acme.com"])
        .current_dir(dir.path())
        .env_clear()
        .env("REPLAYDESK_FULLSTORY__LIMIT", "0")
        .output()
        .await
        .unwrap();
    assert_eq!(bad_config.status.code(), Some(2));
    assert!(
        text(&bad_config.stderr).contains("fullstory.limit"),
        "{}",
        text(&bad_config.stderr)
    );
}

#[tokio::test]
async fn check_reports_each_integration_and_fails_on_a_bad_key() {
    let server = MockServer::start().await;
    // The key is checked by reading a user nobody has: FullStory's 404 means it was accepted.
    Mock::given(path("/v2/users/replaydesk-key-check"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code":404,"message":"User not found"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = TempDir::new().unwrap();
    let ok = replaydesk(&dir, &server.uri(), &["check"]).await;
    let stdout = text(&ok.stdout);
    assert!(ok.status.success(), "{stdout}{}", text(&ok.stderr));
    assert!(stdout.contains("config     ok"));
    assert!(stdout.contains("store      ok"));
    assert!(stdout.contains(&format!("fullstory  ok ({}: key accepted)", server.uri())));
    assert!(stdout.contains("slack      off"));
    assert!(
        stdout.contains("outages    no job waiting on an upstream"),
        "{stdout}"
    );

    let rejecting = MockServer::start().await;
    Mock::given(path("/v2/users/replaydesk-key-check"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&rejecting)
        .await;
    let failed = replaydesk(&dir, &rejecting.uri(), &["check"]).await;
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        text(&failed.stdout).contains("fullstory  failed: FullStory rejected the API key (401)")
    );
}

#[tokio::test]
async fn every_platforms_own_commands_are_listed_and_parsed_where_they_always_were() {
    let dir = TempDir::new().unwrap();
    let help = replaydesk(&dir, "http://127.0.0.1:9", &["--help"]).await;
    assert!(help.status.success());
    let help = text(&help.stdout);
    for (command, about) in [
        ("slack", "print the app manifest"),
        ("zendesk", "Connect Zendesk (setup)"),
        ("discord", "discord register [--guild ID]"),
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(command) && line.contains(about)),
            "`replaydesk --help` lists `{command}`: {help}"
        );
    }

    // A platform's command without its subcommand is a usage error (exit 2), with the usage shown.
    let bare = replaydesk(&dir, "http://127.0.0.1:9", &["zendesk"]).await;
    assert_eq!(bare.status.code(), Some(2));
    let usage = text(&bare.stderr);
    for subcommand in ["setup", "backfill", "app"] {
        assert!(usage.contains(subcommand), "{usage}");
    }
    let unknown = replaydesk(&dir, "http://127.0.0.1:9", &["slack", "publish"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("unrecognized subcommand 'publish'"),
        "{}",
        text(&unknown.stderr)
    );

    // `--config` is global: after a platform's command it is still the file read.
    let config = dir.path().join("elsewhere.toml");
    std::fs::write(
        &config,
        "[server]\npublic_url = \"https://from-the-file.example\"\n",
    )
    .unwrap();
    let manifest = replaydesk(
        &dir,
        "http://127.0.0.1:9",
        &["slack", "manifest", "--config", config.to_str().unwrap()],
    )
    .await;
    assert!(manifest.status.success(), "{}", text(&manifest.stderr));
    assert!(
        text(&manifest.stdout).contains("https://from-the-file.example/slack/commands"),
        "{}",
        text(&manifest.stdout)
    );
}
