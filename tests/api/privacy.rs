//! Erasure across FullStory, Heap and our own store and cache, and the audit trail, against fakes.

use replaydesk::{
    app::AppState,
    config::{Config, Secret},
    erasure::ErasureJob,
    identity::{CustomerEmail, Identity},
    privacy::ErasureReceipt,
    queue::ExecutionOutcome,
    store::NewJob,
};
use serde_json::json;
use tempfile::TempDir;
use tokio::process::Command;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path, query_param},
};

use super::helpers::{self, TestApp, official_session, sessions, spawn_app};

fn jane() -> CustomerEmail {
    CustomerEmail::parse("jane@acme.com").unwrap()
}

/// FullStory knows jane through two users: u1 (uid cust-1, two sessions) and u2 (uid cust-2). Its
/// list of users by email is not there (404), as in the seed OpenAPI document.
pub(crate) async fn fullstory_with_jane() -> MockServer {
    let server = MockServer::start().await;
    mount_jane(&server).await;
    server
}

/// Mounts jane's two users on a FullStory fake; each read and each deletion is expected exactly once
/// (checked when the fake is dropped).
pub async fn mount_jane(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/sessions/v2"))
        .and(query_param("email", "jane@acme.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![
            official_session("u1", "s1", 10),
            official_session("u1", "s2", 20),
            official_session("u2", "s3", 30),
        ])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/users/u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"u1","uid":"cust-1"})))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/users/u2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"u2","uid":"cust-2"})))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2/users"))
        .and(query_param("uid", "cust-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2/users"))
        .and(query_param("uid", "cust-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(server)
        .await;
}

/// Heap's fake: a token, then `status` for jane's deletion (`times` times, or always).
pub async fn heap_answering(status: u16, times: Option<u64>) -> MockServer {
    let heap = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/public/v0/auth_token"))
        // base64("app-7:heap-key")
        .and(header("authorization", "Basic YXBwLTc6aGVhcC1rZXk="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token":"tok-1"})))
        .mount(&heap)
        .await;
    let deletion = Mock::given(method("POST"))
        .and(path("/api/public/v0/user_deletion"))
        .and(header("authorization", "Bearer tok-1"))
        .and(body_json(json!({"users":[{"identity":"jane@acme.com"}]})))
        .respond_with(
            ResponseTemplate::new(status).set_body_json(json!({"deletion_request_id":"del-42"})),
        );
    match times {
        Some(n) => deletion.up_to_n_times(n).mount(&heap).await,
        None => deletion.mount(&heap).await,
    }
    heap
}

/// Heap on, at its fake `heap`.
pub fn with_heap(heap: &MockServer) -> impl FnOnce(&mut Config) + 'static {
    let url = heap.uri();
    move |config| {
        config.heap.app_id = Some("app-7".into());
        config.heap.api_key = Secret::new("heap-key");
        config.heap.base_url = Some(url);
    }
}

pub(crate) async fn enqueue_erasure(state: &AppState) -> i64 {
    let job = ErasureJob {
        email: jane(),
        requester: replaydesk::privacy::Requester {
            platform: "cli".into(),
            tenant: "local".into(),
            user: "dpo".into(),
            place: None,
        },
        reply: None,
    };
    state.queue.push("test:erase", &job).await.unwrap().job_id
}

#[tokio::test]
async fn erasure_deletes_the_fullstory_users_and_the_heap_user_and_says_so() {
    let heap = heap_answering(200, None).await;
    let state = TestApp::builder().configure(with_heap(&heap)).start().await;
    mount_jane(&state.fullstory).await;
    let id = enqueue_erasure(&state).await;
    assert_eq!(
        state.queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(id)
    );
    let receipt = ErasureReceipt::of_job(&state.store, id).await.unwrap();
    assert_eq!(receipt.status, "done");
    assert!(receipt.pending.is_empty(), "{receipt:?}");
    assert!(
        receipt
            .done
            .contains(&"FullStory user u1: deletion requested".to_owned()),
        "{receipt:?}"
    );
    assert!(
        receipt
            .done
            .contains(&"FullStory user u2: deletion requested".to_owned()),
        "{receipt:?}"
    );
    assert!(
        receipt
            .done
            .contains(&"heap deletion request del-42".to_owned()),
        "{receipt:?}"
    );
}

#[tokio::test]
async fn a_heap_failure_leaves_the_erasure_pending_and_the_retry_does_not_repeat_fullstory() {
    let heap = heap_answering(400, Some(1)).await;
    Mock::given(method("POST"))
        .and(path("/api/public/v0/user_deletion"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"deletion_request_id":"del-43"})),
        )
        .mount(&heap)
        .await;
    // The retry waits out its backoff in real time.
    let state = TestApp::builder()
        .configure(with_heap(&heap))
        .system_clock()
        .start()
        .await;
    mount_jane(&state.fullstory).await; // each deletion .expect(1): not repeated by the retry
    let id = enqueue_erasure(&state).await;

    assert_eq!(
        state.queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Retrying(id)
    );
    let pending = ErasureReceipt::of_job(&state.store, id).await.unwrap();
    assert_eq!(pending.status, "pending");
    assert!(pending.pending.contains(&"heap".to_owned()), "{pending:?}");
    assert!(
        pending
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("Heap refused"),
        "{pending:?}"
    );

    // The retry is due after a backoff: bring it forward, as `replaydesk jobs retry` would not (not dead).
    let mut outcome = ExecutionOutcome::EmptyQueue;
    for _ in 0..200 {
        outcome = state.queue.try_execute_one("w").await.unwrap();
        if outcome != ExecutionOutcome::EmptyQueue {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(outcome, ExecutionOutcome::Done(id));
    let done = ErasureReceipt::of_job(&state.store, id).await.unwrap();
    assert!(
        done.done
            .contains(&"heap deletion request del-43".to_owned()),
        "{done:?}"
    );
}

#[tokio::test]
async fn an_erasure_waits_out_a_heap_outage_without_spending_attempts_and_finishes() {
    // Each try reads a token (answered: the breaker closes) then fails the deletion 4 times.
    let heap = heap_answering(503, Some(12)).await;
    Mock::given(method("POST"))
        .and(path("/api/public/v0/user_deletion"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"deletion_request_id":"del-44"})),
        )
        .mount(&heap)
        .await;
    // Its next try is due when Heap's breaker lets a probe through, in real time.
    let state = TestApp::builder()
        .configure(with_heap(&heap))
        .configure(|c| c.queue.max_attempts = 2)
        .system_clock()
        .start()
        .await;
    mount_jane(&state.fullstory).await; // each deletion .expect(1): not repeated by the waits
    let id = enqueue_erasure(&state).await;

    let mut waits = 0;
    let outcome = loop {
        match state.queue.try_execute_one("w").await.unwrap() {
            ExecutionOutcome::Waiting(_) => {
                waits += 1;
                let job = state.store.get_job(id).await.unwrap().unwrap();
                assert_eq!(job.waiting_on.as_deref(), Some("heap"));
                assert_eq!(job.attempts, 0, "a wait is not an attempt");
            }
            // Its next try is due when Heap's breaker lets a probe through.
            ExecutionOutcome::EmptyQueue => {
                assert!(waits < 50, "stuck after {waits} waits");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => break other,
        }
    };
    assert_eq!(outcome, ExecutionOutcome::Done(id));
    assert!(
        waits >= 2,
        "more failed tries than max_attempts (2): {waits}"
    );
    let done = ErasureReceipt::of_job(&state.store, id).await.unwrap();
    assert_eq!(done.status, "done");
    assert!(
        done.done
            .contains(&"heap deletion request del-44".to_owned()),
        "{done:?}"
    );
}

/// The app without tombstones (`privacy.tombstone_days = 0`): a lookup after an erasure reaches
/// FullStory again, which shows that the cache forgot her (with tombstones, the default, it is answered
/// "asked to be forgotten" without reaching anything: `an_erased_address_is_answered_forgotten_…`).
async fn app_without_tombstones() -> TestApp {
    TestApp::builder()
        .configure(|c| c.privacy.tombstone_days = 0)
        .start()
        .await
}

#[tokio::test]
async fn after_erasure_the_cache_is_gone_and_no_stored_payload_holds_the_email() {
    let state = app_without_tombstones().await;
    mount_jane(&state.fullstory).await;
    let fullstory = &state.fullstory;
    let who = Identity::Email(jane());
    let request = state.lookup_request(vec![who.clone()]);
    state.lookup.run(&request).await.unwrap();
    state.lookup.run(&request).await.unwrap(); // cached
    // A finished job whose payload mentions her, as a lookup job would.
    state
        .store
        .enqueue(
            "test:old",
            NewJob::new("old", json!({"identities":[{"email":"Jane@Acme.com"}]})),
            state.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(
        state
            .store
            .count_payloads_mentioning(
                &replaydesk::identity::CustomerEmail::parse("jane@acme.com").unwrap()
            )
            .await
            .unwrap(),
        1
    );

    let id = enqueue_erasure(&state).await;
    let mut finished = false;
    for _ in 0..10 {
        if state.queue.try_execute_one("w").await.unwrap() == ExecutionOutcome::Done(id) {
            finished = true;
            break;
        }
    }
    assert!(finished);
    assert_eq!(
        state
            .store
            .count_payloads_mentioning(
                &replaydesk::identity::CustomerEmail::parse("jane@acme.com").unwrap()
            )
            .await
            .unwrap(),
        0
    );
    state.lookup.run(&request).await.unwrap();
    // Lookup, erasure (straight to FullStory), lookup after the cache was dropped.
    let lists = fullstory
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/sessions/v2")
        .count();
    assert_eq!(lists, 3);
    let audit = state
        .store
        .audit(None, Some(&state.auditor.hash(&who)), 10)
        .await
        .unwrap();
    assert_eq!(audit[0].action, "erasure");
    assert_eq!(audit[0].actor, "dpo");
}

async fn replaydesk(dir: &TempDir, fullstory: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_replaydesk"))
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("USER", "auditor-1")
        .env("REPLAYDESK_FULLSTORY__API_KEY", "na1.cli-test-key")
        .env("REPLAYDESK_FULLSTORY__BASE_URL", fullstory)
        .env("REPLAYDESK_PRIVACY__AUDIT_KEY", "audit-secret")
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

#[tokio::test]
async fn the_audit_finds_lookups_by_identity_without_storing_the_email() {
    let fullstory = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![
            official_session("u1", "s1", 10),
            official_session("u1", "s2", 20),
            official_session("u2", "s3", 30),
        ])))
        .mount(&fullstory)
        .await;
    let dir = TempDir::new().unwrap();
    let lookup = replaydesk(&dir, &fullstory.uri(), &["lookup", "jane@acme.com"]).await;
    assert!(
        lookup.status.success(),
        "{}",
        String::from_utf8_lossy(&lookup.stderr)
    );
    let other = replaydesk(&dir, &fullstory.uri(), &["lookup", "bob@acme.com"]).await;
    assert!(other.status.success());

    let audit = replaydesk(
        &dir,
        &fullstory.uri(),
        &["audit", "--identity", "Jane@Acme.com", "--json"],
    )
    .await;
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let entries: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["action"], "lookup");
    assert_eq!(entries[0]["actor"], "auditor-1");
    assert_eq!(entries[0]["sessions"], 3);

    // Nothing on disk holds her address: the database and its write-ahead log.
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        assert!(!text.contains("jane@acme.com"));
    }
}

#[tokio::test]
async fn forget_on_the_command_line_prints_a_receipt() {
    let fullstory = fullstory_with_jane().await;
    let dir = TempDir::new().unwrap();
    let output = replaydesk(&dir, &fullstory.uri(), &["forget", "jane@acme.com"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("Erasure of jane@acme.com (job "),
        "{stdout}"
    );
    assert!(stdout.contains("): done\n"), "{stdout}");
    let progress = String::from_utf8_lossy(&output.stderr);
    assert!(
        progress.contains("  erasures finished or waiting for a retry: 1/1"),
        "{progress}"
    );
    assert!(
        stdout.contains("  done     FullStory user u1: deletion requested"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  done     replaydesk cache and stored payloads: cleared"),
        "{stdout}"
    );
}

/// A FullStory session in the seed OpenAPI document's shape: `sessionId`, `url`, `created`, no user.
fn seed_session(id: &str, minutes_ago: i64) -> serde_json::Value {
    let created = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    json!({
        "sessionId": id,
        "url": format!("https://app.fullstory.com/ui/ORG/session/{id}"),
        "created": created.to_rfc3339(),
    })
}

/// Jane's sessions in the seed's shape on the FullStory fake `server`, whose list of users by email
/// answers `users` (`None`: not there, 404, as in the seed).
async fn mount_the_seed_shape(
    server: &MockServer,
    sessions_for_jane: Vec<serde_json::Value>,
    users: Option<serde_json::Value>,
) {
    Mock::given(method("GET"))
        .and(path("/sessions/v2"))
        .and(query_param("email", "jane@acme.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(sessions_for_jane)))
        .mount(server)
        .await;
    if let Some(users) = users {
        Mock::given(method("GET"))
            .and(path("/v2/users"))
            .and(query_param("email", "jane@acme.com"))
            .respond_with(ResponseTemplate::new(200).set_body_json(users))
            .mount(server)
            .await;
    }
}

async fn deletions(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .map(|r| r.url.to_string())
        .collect()
}

/// Erases jane through the service's own erasure job, run once: its receipt.
async fn erase_jane_in_process(state: &TestApp) -> ErasureReceipt {
    let id = enqueue_erasure(state).await;
    assert_eq!(
        state.queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(id)
    );
    ErasureReceipt::of_job(&state.store, id).await.unwrap()
}

#[tokio::test]
async fn sessions_without_a_user_are_left_to_a_person_and_forget_does_not_say_done() {
    let fullstory = MockServer::start().await;
    let jane_s = vec![seed_session("s1", 10), seed_session("s2", 20)];
    mount_the_seed_shape(&fullstory, jane_s, None).await;
    let dir = TempDir::new().unwrap();
    let output = replaydesk(&dir, &fullstory.uri(), &["forget", "jane@acme.com"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("): incomplete\n"), "{stdout}");
    assert!(!stdout.contains("): done"), "{stdout}");
    assert!(
        stdout.contains(
            "  by hand  FullStory: 2 session(s) found for this email, but no FullStory user to delete by"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("Delete a user via Fullstory application"),
        "{stdout}"
    );
    assert!(deletions(&fullstory).await.is_empty());
}

#[tokio::test]
async fn a_user_found_by_email_is_deleted_by_uid_even_when_the_sessions_name_no_user() {
    let app = spawn_app().await;
    mount_the_seed_shape(
        &app.fullstory,
        vec![seed_session("s1", 10)],
        Some(json!({"results":[{"id":"u9","uid":"cust-9","email":"Jane@Acme.com"}]})),
    )
    .await;
    Mock::given(method("DELETE"))
        .and(path("/v2/users"))
        .and(query_param("uid", "cust-9"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&app.fullstory)
        .await;
    let receipt = erase_jane_in_process(&app).await;
    assert_eq!(receipt.status, "done", "{receipt:?}");
    assert!(
        receipt
            .done
            .contains(&"FullStory user u9: deletion requested".to_owned()),
        "{receipt:?}"
    );
    assert!(receipt.needs_action.is_empty(), "{receipt:?}");
}

#[tokio::test]
async fn a_user_without_a_uid_is_left_to_a_person_not_deleted_by_a_call_the_api_lacks() {
    let app = spawn_app().await;
    mount_the_seed_shape(
        &app.fullstory,
        vec![seed_session("s1", 10)],
        Some(json!({"results":[{"id":"u7","email":"jane@acme.com"}]})),
    )
    .await;
    let receipt = erase_jane_in_process(&app).await;
    let fullstory = &app.fullstory;
    assert_eq!(receipt.status, "incomplete", "{receipt:?}");
    assert_eq!(receipt.needs_action.len(), 1, "{receipt:?}");
    assert!(
        receipt.needs_action[0].starts_with("FullStory user u7 has no uid"),
        "{receipt:?}"
    );
    assert!(deletions(fullstory).await.is_empty());
}

#[tokio::test]
async fn no_session_and_no_user_is_its_own_outcome_not_a_deletion() {
    let app = spawn_app().await;
    mount_the_seed_shape(&app.fullstory, vec![], Some(json!({"results":[]}))).await;
    let receipt = erase_jane_in_process(&app).await;
    let fullstory = &app.fullstory;
    assert_eq!(receipt.status, "done", "{receipt:?}");
    assert!(
        receipt
            .done
            .contains(&"FullStory: no user found for this email; nothing deleted there".to_owned()),
        "{receipt:?}"
    );
    assert!(
        !receipt
            .done
            .iter()
            .any(|d| d.contains("deletion requested"))
    );
    assert!(deletions(fullstory).await.is_empty());
}

#[tokio::test]
async fn after_an_erasure_no_encoded_copy_is_left_in_the_sqlite_files() {
    let state = spawn_app().await;
    mount_jane(&state.fullstory).await;
    // Every form extraction reads, as stored payloads and errors hold them.
    for (i, text) in [
        "Jane@Acme.com",
        "write to jane&#64;acme.com please",
        "<mailto:jane%40acme.com|her>",
    ]
    .iter()
    .enumerate()
    {
        state
            .store
            .enqueue(
                &format!("test:form-{i}"),
                NewJob::new("old", json!({ "text": text })),
                state.clock.now(),
            )
            .await
            .unwrap();
    }
    let id = enqueue_erasure(&state).await;
    let mut finished = false;
    for _ in 0..10 {
        if state.queue.try_execute_one("w").await.unwrap() == ExecutionOutcome::Done(id) {
            finished = true;
            break;
        }
    }
    assert!(finished);
    let forms = ["jane@acme.com", "jane&#64;acme.com", "jane%40acme.com"];
    let mut files = 0;
    for file in std::fs::read_dir(state.dir()).unwrap() {
        let file = file.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).to_lowercase();
        files += 1;
        for form in forms {
            assert!(
                !text.contains(form),
                "{form} is still in {}",
                file.display()
            );
        }
    }
    assert!(files >= 1);
}

#[tokio::test]
async fn an_erasure_in_another_process_on_the_same_sqlite_file_clears_this_cache_within_2_seconds()
{
    // `serve`: a cache warmed with jane's sessions, listening for erasures.
    let serving = app_without_tombstones().await;
    mount_jane(&serving.fullstory).await;
    let fullstory = &serving.fullstory;
    let listener = replaydesk::erasure::broadcast::listen(serving.app.clone())
        .await
        .unwrap()
        .expect("SQLite announces erasures too");
    let request = serving.lookup_request(vec![Identity::Email(jane())]);
    serving.lookup.run(&request).await.unwrap();
    let lists = || async {
        fullstory
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/sessions/v2")
            .count()
    };
    assert_eq!(lists().await, 1);
    serving.lookup.run(&request).await.unwrap();
    assert_eq!(
        lists().await,
        1,
        "the second lookup is served from the cache"
    );

    // `forget`: another process (its own app, its own cache) on the same file.
    let forgetting = TestApp::builder().replica_of(&serving).start().await;
    let id = enqueue_erasure(&forgetting).await;
    assert_eq!(
        forgetting.queue.try_execute_one("forget").await.unwrap(),
        ExecutionOutcome::Done(id)
    );
    let erased_at = std::time::Instant::now();
    let after_erasure = lists().await; // the erasure's own read of her sessions
    let mut dropped = false;
    while erased_at.elapsed() < std::time::Duration::from_secs(2) {
        serving.lookup.run(&request).await.unwrap();
        if lists().await > after_erasure {
            dropped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        dropped,
        "serve's cache still answered from before the erasure after 2 s"
    );
    listener.abort();
}

#[tokio::test]
async fn without_a_configured_key_the_audit_key_is_generated_into_a_private_file_not_the_database()
{
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let key_file = app.dir().join("replaydesk.db.audit-key");
    assert_eq!(
        app.config.audit_key_file().as_deref(),
        Some(key_file.as_path())
    );
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.len(), 64, "a 32-byte key in hex");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let hash = app.auditor.hash(&Identity::Email(jane()));
    app.store.close().await;
    // The database alone cannot give the key back.
    for file in ["replaydesk.db", "replaydesk.db-wal"] {
        if let Ok(bytes) = std::fs::read(app.dir().join(file)) {
            assert!(!String::from_utf8_lossy(&bytes).contains(&key), "{file}");
        }
    }
    // The next start reads the same key: hashes stay comparable.
    let again = TestApp::builder().replica_of(&app).start().await;
    assert_eq!(again.auditor.hash(&Identity::Email(jane())), hash);
}

#[tokio::test]
async fn a_key_an_older_version_kept_in_the_database_moves_into_the_file() {
    let dir = TempDir::new().unwrap();
    let url = helpers::sqlite_url(&dir);
    let store = replaydesk::store::open(&url).await.unwrap();
    store
        .setting_or_insert("audit_key", "legacy-generated-key")
        .await
        .unwrap();
    store.close().await;
    let app = TestApp::builder().store_url(&url).start().await;
    let key_file = app.config.audit_key_file().unwrap();
    assert_eq!(
        std::fs::read_to_string(key_file).unwrap(),
        "legacy-generated-key"
    );
    assert_eq!(app.store.take_setting("audit_key").await.unwrap(), None);
    let legacy = replaydesk::privacy::Auditor::new(
        app.store.clone(),
        &Secret::new("legacy-generated-key"),
        None,
    )
    .await
    .unwrap();
    let who = Identity::Email(jane());
    assert_eq!(app.auditor.hash(&who), legacy.hash(&who));
}

#[tokio::test]
async fn a_postgresql_store_without_an_audit_key_refuses_to_start_naming_the_key() {
    let db = super::processes::FreshDatabase::create().await;
    let store = replaydesk::store::open(&db.url)
        .await
        .expect("PostgreSQL at REPLAYDESK_TEST_POSTGRES_URL");
    let refused = replaydesk::privacy::Auditor::new(store.clone(), &Secret::default(), None).await;
    let error = format!("{:#}", refused.err().expect("refused"));
    assert!(error.contains("privacy.audit_key"), "{error}");
    assert!(error.contains("privacy.audit_key_file"), "{error}");
    store.close().await;
    db.drop_now().await;
}

/// Every form issue 22 (row 7) names, as a Slack message carries it (Slack writes `<`, `>` and `&` as
/// entities), each of which a reader sees as jane@acme.com.
const JANE_AS_A_READER_SEES_HER: &[&str] = &[
    "ja\u{200B}ne@acme.com",
    "jan\u{AD}e@acme.com",
    "jane\u{FF20}acme.com",
    "%6A%61%6E%65%40%61%63%6D%65%2E%63%6F%6D",
    "jane%40acme%2ecom",
    "&lt;b&gt;jane&lt;/b&gt;@acme.com",
    "https://jane%40acme.com@status.example/",
    "mailto:jane%40acme.com",
    "jane=40acme.com",
];

#[tokio::test]
async fn every_form_a_reader_sees_as_her_address_is_looked_up_and_erased_by_forget() {
    // Issue 22 row 7: `forget` missed forms a reader still sees as the address.
    let app = TestApp::builder().slack().start().await;
    mount_jane(&app.fullstory).await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "ts": "1700000999.000001"})),
        )
        .mount(app.slack_api())
        .await;
    // Each form arrives in an @mention signed as Slack signs it; the job keeps the message's text.
    for (n, form) in JANE_AS_A_READER_SEES_HER.iter().enumerate() {
        let ts = format!("{}.{n:06}", app.clock.now().timestamp());
        let event = json!({
            "type": "event_callback", "team_id": "T1", "api_app_id": "A1",
            "event_id": format!("EvForm{n}"), "event_time": 1_700_000_000,
            "event": {"type": "app_mention", "user": "U1", "text": format!("<@UBOT> see {form} please"),
                      "ts": ts, "channel": "C1", "event_ts": ts},
        });
        assert_eq!(app.slack_event(&event).await.status, 200, "{form}");
    }
    let outcomes = app.run_jobs().await;
    assert_eq!(outcomes.len(), JANE_AS_A_READER_SEES_HER.len());
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ExecutionOutcome::Done(_))),
        "{outcomes:?}"
    );
    // Found and looked up: every answer is about her (FullStory was asked for her, exactly).
    let posts: Vec<serde_json::Value> = app
        .slack_api()
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/chat.postMessage")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posts.len(), JANE_AS_A_READER_SEES_HER.len());
    for post in &posts {
        assert!(
            post["blocks"]
                .to_string()
                .contains("j•••@acme.com · 3 recent sessions"),
            "{post}"
        );
    }
    let fullstory_asked: Vec<_> = app
        .fullstory
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/sessions/v2")
        .map(|r| r.url.query().unwrap_or("").to_owned())
        .collect();
    assert!(!fullstory_asked.is_empty());
    assert!(
        fullstory_asked
            .iter()
            .all(|q| q.contains("email=jane%40acme.com")),
        "{fullstory_asked:?}"
    );
    assert_eq!(
        app.store.count_payloads_mentioning(&jane()).await.unwrap(),
        JANE_AS_A_READER_SEES_HER.len() as u64
    );

    // Erased: `forget jane@acme.com`'s job scrubs every payload holding any of the forms.
    let id = enqueue_erasure(&app).await;
    assert!(app.run_jobs().await.contains(&ExecutionOutcome::Done(id)));
    assert_eq!(
        app.store.count_payloads_mentioning(&jane()).await.unwrap(),
        0
    );
    for file in std::fs::read_dir(app.dir()).unwrap() {
        let file = file.unwrap().path();
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for form in JANE_AS_A_READER_SEES_HER {
            assert!(
                !text.contains(form),
                "{form} is still in {}",
                file.display()
            );
        }
    }
}

#[tokio::test]
async fn an_erased_address_is_answered_forgotten_on_every_platform_and_reaches_nothing() {
    // Issue 22 row 8: right after `forget`, her address was looked up and stored again. Slack and
    // Zendesk on, the ticket event to FullStory too; Zendesk's ticket is jane's.
    let builder = super::zendesk::Harness::builder(|c| c.zendesk.fullstory_event = true).slack();
    let rd = super::zendesk::Harness::start_from(builder).await;
    mount_jane(&rd.fullstory).await;
    Mock::given(method("POST"))
        .and(path("/hooks/T1/1/x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(rd.slack_api())
        .await;
    let id = enqueue_erasure(&rd).await;
    assert!(rd.run_jobs().await.contains(&ExecutionOutcome::Done(id)));
    let fullstory_calls = || async { rd.fullstory.received_requests().await.unwrap().len() };
    let after_erasure = fullstory_calls().await;

    // Asked again at once: in Slack, by a Zendesk ticket of hers, on the command line.
    let response_url = format!("{}/hooks/T1/1/x", rd.slack_api().uri());
    rd.replays("U1", "Jane@Acme.com", &response_url, "trig-after-erasure")
        .await;
    assert_eq!(
        rd.deliver(
            "inv-after-erasure",
            &super::zendesk::created_body(super::zendesk::TICKET)
        )
        .await,
        200
    );
    let outcomes = rd.run_jobs().await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ExecutionOutcome::Done(_)))
            && outcomes.len() == 2,
        "{outcomes:?}"
    );
    let cli = rd.command(&["lookup", "jane@acme.com"], None).await;
    assert!(cli.status.success(), "{cli:?}");

    // Each answer says so, politely.
    let said = "asked to be forgotten";
    let slack: Vec<String> = rd
        .slack_api()
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/hooks/T1/1/x")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(slack.len(), 1);
    assert!(slack[0].contains(said), "{}", slack[0]);
    let notes = rd.zendesk().notes(super::zendesk::TICKET);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains(said), "{}", notes[0]);
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains(said),
        "{cli:?}"
    );

    // Nothing about her reached FullStory (no lookup, no ticket event), nothing is kept: no payload
    // holds her, and no file of the store has her address.
    // (The ticket's latest comment names bob@acme.com too: he is looked up as usual.)
    let asked: Vec<String> = rd.fullstory.received_requests().await.unwrap()[after_erasure..]
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.method,
                r.url,
                String::from_utf8_lossy(&r.body)
            )
        })
        .collect();
    assert!(
        asked
            .iter()
            .all(|call| !call.to_lowercase().contains("jane") && !call.contains("/v2/events")),
        "{asked:?}"
    );
    assert_eq!(
        rd.store.count_payloads_mentioning(&jane()).await.unwrap(),
        0
    );
    for file in std::fs::read_dir(rd.dir()).unwrap() {
        let file = file.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).to_lowercase();
        assert!(!text.contains("jane@acme.com"), "{}", file.display());
    }

    // Past `privacy.tombstone_days` (30), she is a customer like any other again.
    rd.clock
        .advance(std::time::Duration::from_secs(31 * 86_400));
    rd.replays("U1", "jane@acme.com", &response_url, "trig-a-month-later")
        .await;
    rd.run_jobs().await;
    assert!(fullstory_calls().await > after_erasure);
}
