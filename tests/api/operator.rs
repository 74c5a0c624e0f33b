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
    app.replays(forged_actor, "jane@acme.com", &hooks("/hooks/ok"), "trig-1")
        .await;
    app.replays("U2", "jane@acme.com", &hooks("/hooks/hostile"), "trig-2")
        .await;
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

#[tokio::test]
async fn zendesk_app_never_writes_through_a_symlink_nor_replaces_a_file_without_force_and_wants_https()
 {
    // Issue 22 row 12.
    let app = TestApp::builder().start().await;
    let dir = app.dir();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("link.zip")).unwrap();
    let run = |extra: &[&str]| {
        let args: Vec<String> = ["zendesk", "app", "--url", "https://rd.example.com"]
            .iter()
            .chain(extra)
            .map(|a| (*a).to_owned())
            .collect();
        let app = &app;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            app.command(&args, None).await
        }
    };

    for extra in [
        &["--out", "link.zip"][..],
        &["--out", "link.zip", "--force"],
    ] {
        let refused = run(extra).await;
        assert_eq!(refused.status.code(), Some(2), "{refused:?}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("link.zip is a symbolic link"), "{said}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    let written = run(&["--out", "rd.zip"]).await;
    assert!(written.status.success(), "{written:?}");
    let zip = dir.join("rd.zip");
    assert!(std::fs::read(&zip).unwrap().starts_with(b"PK"));
    std::fs::write(&zip, "an older package").unwrap();
    let refused = run(&["--out", "rd.zip"]).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("rd.zip already exists: give --force"),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_to_string(&zip).unwrap(), "an older package");
    let replaced = run(&["--out", "rd.zip", "--force"]).await;
    assert!(replaced.status.success(), "{replaced:?}");
    assert!(std::fs::read(&zip).unwrap().starts_with(b"PK"));
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    for (url, ok) in [
        ("http://rd.example.com", false),
        ("ftp://rd.example.com", false),
        ("http://127.0.0.1:8080", true),
        ("http://[::1]:8080", true),
    ] {
        let output = app
            .command(
                &[
                    "zendesk",
                    "app",
                    "--url",
                    url,
                    "--out",
                    "local.zip",
                    "--force",
                ],
                None,
            )
            .await;
        assert_eq!(output.status.success(), ok, "{url}: {output:?}");
        if !ok {
            assert_eq!(output.status.code(), Some(2), "{url}");
            let said = String::from_utf8_lossy(&output.stderr);
            assert!(
                said.contains("must be https") || said.contains("is not an http(s) URL"),
                "{said}"
            );
        }
    }
}

#[tokio::test]
async fn forget_reads_addresses_from_standard_input_one_a_line() {
    // Issue 22 row 12: the addresses never show in `ps` or the shell's history.
    let app = TestApp::builder().start().await;
    super::privacy::mount_jane(&app.fullstory).await;
    let output = app
        .command(
            &["forget", "--stdin"],
            Some("# erasure requests of the week\n\n  Jane@Acme.com  \njane@acme.com\n"),
        )
        .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout.matches("Erasure of jane@acme.com (job ").count(),
        1,
        "one erasure for one customer: {stdout}"
    );
    assert!(stdout.contains("): done\n"), "{stdout}");

    // A line that is not an address is named by its number, not repeated; nothing is erased.
    let jobs = app.jobs().await;
    let refused = app
        .command(
            &["forget", "--stdin"],
            Some("bob@acme.com\nnot-an-address\n"),
        )
        .await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("line 2 of standard input is not an email address"),
        "{said}"
    );
    assert!(!said.contains("not-an-address"), "{said}");
    assert_eq!(app.jobs().await, jobs);
}
