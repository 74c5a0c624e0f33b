//! What an operator's commands print and touch, each in the shape of an attack on it (issue 22): a
//! value a signed request or an upstream's answer carries never plays in the terminal that prints a
//! table.

use replaydesk::queue::ExecutionOutcome;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

use super::helpers::{TestApp, official_session, sessions};

/// What a line of a table must never hold: a control character (an escape sequence starts with one)
/// or a mark that reorders text.
fn plays_in_a_terminal(c: char) -> bool {
    c.is_control() && c != '\n' || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A Slack slash command about jane from `user`, signed as Slack signs it.
async fn slack_command_from(app: &TestApp, user: &str, trigger: &str, response_url: &str) {
    let response = app
        .slack_command(&[
            ("team_id", "T1"),
            ("channel_id", "C1"),
            ("user_id", user),
            ("command", "/replays"),
            ("text", "jane@acme.com"),
            ("response_url", response_url),
            ("trigger_id", trigger),
        ])
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
}

#[tokio::test]
async fn escape_sequences_from_a_request_or_an_upstream_are_printed_escaped_in_audit_and_jobs_list()
{
    let app = TestApp::builder().slack().start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 5)])),
        )
        .mount(&app.fullstory)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/ok"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(app.slack_api())
        .await;
    // A response_url whose answer carries an escape sequence and a line break in its error code.
    Mock::given(method("POST"))
        .and(path("/hooks/hostile"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "ok": false,
            "error": "gone\u{1b}[2J\u{1b}[31m\n     99  lookup  forged line",
        })))
        .mount(app.slack_api())
        .await;
    let hooks = |p: &str| format!("{}{p}", app.slack_api().uri());
    // The user id a signed request names is stored as the audited actor, whatever it holds.
    let forged_actor = "U1\u{1b}]0;pwned\u{7}\u{1b}[2J\n2026-01-01 00:00:00   erasure   cli       local        root";
    slack_command_from(&app, forged_actor, "trig-1", &hooks("/hooks/ok")).await;
    slack_command_from(&app, "U2", "trig-2", &hooks("/hooks/hostile")).await;
    assert!(matches!(app.run_job().await, ExecutionOutcome::Done(_)));
    assert!(matches!(app.run_job().await, ExecutionOutcome::Dead(_)));

    let audit = app.command(&["audit"], None).await;
    assert!(audit.status.success(), "{audit:?}");
    let table = String::from_utf8(audit.stdout).unwrap();
    assert!(!table.chars().any(plays_in_a_terminal), "{table:?}");
    assert_eq!(table.lines().count(), 2, "a header and one entry: {table}");
    assert!(
        table.contains(r"U1\u{1b}]0;pwned\u{7}\u{1b}[2J\u{a}2026-01-01"),
        "{table}"
    );

    for args in [&["jobs", "list"][..], &["jobs", "list", "--state", "dead"]] {
        let list = app.command(args, None).await;
        assert!(list.status.success(), "{list:?}");
        let table = String::from_utf8(list.stdout).unwrap();
        assert!(!table.chars().any(plays_in_a_terminal), "{table:?}");
        assert!(!table.contains("\n     99  lookup  forged line"), "{table}");
        assert!(table.contains(r"gone\u{1b}[2J\u{1b}[31m\u{a}"), "{table}");
    }
    let dead = app
        .store
        .list_jobs(Some(replaydesk::store::JobState::Dead), 1)
        .await
        .unwrap();
    let show = app
        .command(&["jobs", "show", &dead[0].id.to_string()], None)
        .await;
    let shown = String::from_utf8(show.stdout).unwrap();
    assert!(!shown.chars().any(plays_in_a_terminal), "{shown:?}");
    assert!(shown.contains(r"\u{1b}[2J"), "{shown}");
}

/// The mode of `file` (its permission bits).
fn mode(file: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_sqlite_store_and_its_wal_and_shm_are_private_from_creation_and_check_warns_when_wider()
{
    // Issue 22 row 9: the store as `serve` opens it, in a fresh directory.
    let app = TestApp::builder().start().await;
    let db = app.dir().join("replaydesk.db");
    let usual = app.dir().join("made-the-usual-way");
    std::fs::write(&usual, b"").unwrap();
    assert_ne!(mode(&usual) & 0o077, 0, "this umask makes readable files");
    // A write, so the write-ahead log and its index hold something.
    app.store
        .enqueue(
            "test:one",
            replaydesk::store::NewJob::new("old", serde_json::json!({"email": "jane@acme.com"})),
            app.clock.now(),
        )
        .await
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = app.dir().join(format!("replaydesk.db{suffix}"));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    Mock::given(path("/v2/users/replaydesk-key-check"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&app.fullstory)
        .await;
    let check = app.command(&["check"], None).await;
    let said = String::from_utf8(check.stdout).unwrap();
    assert!(said.contains("store      ok"), "{said}");
    assert!(!said.contains("warning"), "{said}");

    // An existing store made readable by others (an older version, a copy): said, with the fix.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let check = app.command(&["check"], None).await;
    let said = String::from_utf8(check.stdout).unwrap();
    assert!(
        said.contains(&format!(
            "store      warning: {} is mode 0644, readable by others than its owner",
            db.display()
        )),
        "{said}"
    );
    assert!(said.contains("chmod 600"), "{said}");
    assert_eq!(mode(&db), 0o644, "check only says so; it changes nothing");
}
