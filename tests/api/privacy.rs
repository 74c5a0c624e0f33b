//! Erasure across FullStory, Heap and our own store and cache, and the audit trail, against fakes.

use replaydesk::{
    app::AppState,
    config::{Config, Secret},
    identity::{CustomerEmail, Identity},
    privacy::{ErasureJob, ErasureReceipt},
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

use super::helpers::{self, official_session, sessions};

fn jane() -> CustomerEmail {
    CustomerEmail::parse("jane@acme.com").unwrap()
}

/// FullStory knows jane through two users: u1 (uid cust-1, two sessions) and u2 (no uid).
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
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"u2"})))
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
        .and(path("/v2/users/u2"))
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

pub fn with_heap(mut config: Config, heap: &MockServer) -> Config {
    config.heap.app_id = Some("app-7".into());
    config.heap.api_key = Secret::new("heap-key");
    config.heap.base_url = Some(heap.uri());
    config
}

pub(crate) async fn enqueue_erasure(state: &AppState) -> i64 {
    let job = ErasureJob {
        email: jane(),
        requester: replaydesk::jobs::Requester {
            platform: "cli".into(),
            tenant: "local".into(),
            user: "dpo".into(),
            place: None,
        },
        reply: None,
    };
    state
        .queue
        .enqueue("test:erase", job.to_new_job().unwrap())
        .await
        .unwrap()
        .job_id
}

#[tokio::test]
async fn erasure_deletes_the_fullstory_users_and_the_heap_user_and_says_so() {
    let fullstory = fullstory_with_jane().await;
    let heap = heap_answering(200, None).await;
    let dir = TempDir::new().unwrap();
    let config = with_heap(helpers::config(&fullstory.uri(), &dir), &heap);
    let state = AppState::around(helpers::app(config).await).unwrap();
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
            .contains(&"fullstory user u1: deletion requested".to_owned()),
        "{receipt:?}"
    );
    assert!(
        receipt
            .done
            .contains(&"fullstory user u2: deletion requested".to_owned()),
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
    let fullstory = fullstory_with_jane().await; // each deletion .expect(1): not repeated by the retry
    let heap = heap_answering(400, Some(1)).await;
    Mock::given(method("POST"))
        .and(path("/api/public/v0/user_deletion"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"deletion_request_id":"del-43"})),
        )
        .mount(&heap)
        .await;
    let dir = TempDir::new().unwrap();
    let config = with_heap(helpers::config(&fullstory.uri(), &dir), &heap);
    let state = AppState::around(helpers::app(config).await).unwrap();
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
    let fullstory = fullstory_with_jane().await; // each deletion .expect(1): not repeated by the waits
    // Each try reads a token (answered: the breaker closes) then fails the deletion 4 times.
    let heap = heap_answering(503, Some(12)).await;
    Mock::given(method("POST"))
        .and(path("/api/public/v0/user_deletion"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"deletion_request_id":"del-44"})),
        )
        .mount(&heap)
        .await;
    let dir = TempDir::new().unwrap();
    let mut config = with_heap(helpers::config(&fullstory.uri(), &dir), &heap);
    config.queue.max_attempts = 2;
    let state = AppState::around(helpers::app(config).await).unwrap();
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

#[tokio::test]
async fn after_erasure_the_cache_is_gone_and_no_stored_payload_holds_the_email() {
    let fullstory = fullstory_with_jane().await;
    let dir = TempDir::new().unwrap();
    let state =
        AppState::around(helpers::app(helpers::config(&fullstory.uri(), &dir)).await).unwrap();
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
            .count_payloads_containing("jane@acme.com")
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
            .count_payloads_containing("jane@acme.com")
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
        stdout.contains("  done     fullstory user u1: deletion requested"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  done     replaydesk cache and stored payloads: cleared"),
        "{stdout}"
    );
}
