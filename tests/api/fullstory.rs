//! The FullStory client against a fake FullStory: auth, every response shape, retries, the shared
//! 429 cool-down, timeouts, malformed bodies, path encoding, the Server API.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use replaydesk::{
    activations::Purpose,
    config::{FullStoryConfig, Interval, Secret},
    fullstory::{
        FullStoryApi, FullStoryError, SessionId, SessionsApi,
        server_api::{BatchKind, BatchProgress, BatchStatus, EventTarget, ServerEvent},
    },
    identity::{CustomerEmail, Identity, Uid},
    metrics::Metrics,
    outbound::{LocalBudget, UpstreamError, Upstreams},
};
use serde_json::json;
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{body_partial_json, header, method, path, query_param},
};

use super::helpers::{official_session, sessions};

fn fs_config(server: &MockServer) -> FullStoryConfig {
    FullStoryConfig {
        api_key: Secret::new("na1.test-key-0123456789"),
        base_url: Some(server.uri()),
        retry_backoff: Interval(Duration::from_millis(20)),
        timeout: Interval(Duration::from_millis(300)),
        ..FullStoryConfig::default()
    }
}

fn client_with(config: &FullStoryConfig) -> (FullStoryApi, Metrics) {
    super::helpers::capture_logs();
    replaydesk::install_crypto_provider();
    let metrics = Metrics::build();
    let budget = Arc::new(LocalBudget::new(1000, 1000));
    (
        FullStoryApi::new(config, budget, Upstreams::new(metrics.upstream.clone())).unwrap(),
        metrics,
    )
}

fn jane() -> Identity {
    Identity::Email(CustomerEmail::parse("Jane@Acme.com").unwrap())
}

#[tokio::test]
async fn the_key_is_sent_verbatim_as_basic_auth_and_the_email_as_a_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sessions/v2"))
        .and(header("authorization", "Basic na1.test-key-0123456789"))
        .and(query_param("email", "jane@acme.com"))
        .and(query_param("limit", "5"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(sessions(vec![official_session("111", "222", 5)])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let list = client.list_sessions(&jane(), 5).await.unwrap();
    assert_eq!(list.sessions.len(), 1);
    assert_eq!(list.sessions[0].id.as_str(), "111:222");
}

#[tokio::test]
async fn every_response_shape_is_understood() {
    let server = MockServer::start().await;
    let bodies = [
        json!({"sessions":[{"userId":"1","sessionId":"2","createdTime":"1700000000","fsUrl":"https://x/ui/o/session/1:2"}]}),
        json!({"sessions":[{"user_id":1,"session_id":2,"created_time":1700000000,"fs_url":"https://x/ui/o/session/1:2"}]}),
        json!({"sessions":[{"userId":"1","sessionId":"2","createdTime":"2023-11-14T22:13:20Z","fsUrl":"https://x/ui/o/session/1:2"}]}),
        json!({"sessions":[{"sessionId":"1:2","url":"https://x/ui/o/session/1:2","created":"2023-11-14T22:13:20Z","extra":{"ignored":true}}]}),
    ];
    let (client, _) = client_with(&fs_config(&server));
    for (i, body) in bodies.into_iter().enumerate() {
        let uid = format!("shape-{i}");
        Mock::given(path("/sessions/v2"))
            .and(query_param("uid", uid.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        let list = client
            .list_sessions(&Identity::Uid(Uid::parse(&uid).unwrap()), 5)
            .await
            .unwrap();
        assert_eq!(list.sessions.len(), 1, "shape {i}");
        assert_eq!(list.sessions[0].id.as_str(), "1:2", "shape {i}");
        assert_eq!(
            list.sessions[0].created.timestamp(),
            1_700_000_000,
            "shape {i}"
        );
    }
}

#[tokio::test]
async fn a_rejected_key_is_a_typed_error_that_names_the_setting() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"code":401,"message":"bad key"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let error = client.list_sessions(&jane(), 5).await.unwrap_err();
    assert!(matches!(error, FullStoryError::Unauthorized));
    assert_eq!(
        error.to_string(),
        "FullStory rejected the API key (401): check fullstory.api_key"
    );
}

#[tokio::test]
async fn a_forbidden_call_says_which_key_role_is_needed() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(403))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let error = client.list_sessions(&jane(), 5).await.unwrap_err();
    assert!(error.to_string().contains("Admin or Architect"), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn server_errors_are_retried_until_an_answer_comes() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 1)])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (client, metrics) = client_with(&fs_config(&server));
    let list = client.list_sessions(&jane(), 5).await.unwrap();
    assert_eq!(list.sessions.len(), 1);
    let text = metrics.render();
    assert!(
        text.contains(
            r#"replaydesk_upstream_retries_total{upstream="fullstory",endpoint="list_sessions"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"outcome="server_error"} 2"#), "{text}");
}

#[tokio::test]
async fn server_errors_open_the_breaker_and_later_calls_fail_fast_without_a_request() {
    let server = MockServer::start().await;
    // max_attempts is 4, but the breaker opens after OPEN_AFTER consecutive failures.
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(503))
        .expect(u64::from(replaydesk::outbound::OPEN_AFTER))
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let error = client.list_sessions(&jane(), 5).await.unwrap_err();
    assert!(matches!(
        error,
        FullStoryError::Upstream(UpstreamError::Unavailable { status: 503 })
    ));
    assert!(error.is_transient());
    let again = client.list_sessions(&jane(), 5).await.unwrap_err();
    assert!(again.to_string().contains("circuit open"), "{again}");
    assert!(again.is_transient());
    assert_eq!(
        client.upstream().breaker().state(),
        replaydesk::outbound::BreakerState::Open
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![])))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let list = client.list_sessions(&jane(), 5).await.unwrap();
    assert!(list.sessions.is_empty());
}

#[tokio::test]
async fn an_answer_that_never_comes_is_a_timeout_error() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(2)
        .mount(&server)
        .await;
    let mut config = fs_config(&server);
    config.max_attempts = 2;
    let (client, _) = client_with(&config);
    let error = client.list_sessions(&jane(), 5).await.unwrap_err();
    assert!(
        matches!(error, FullStoryError::Upstream(UpstreamError::Timeout)),
        "{error:?}"
    );
}

#[tokio::test]
async fn malformed_json_is_a_typed_error_not_a_panic() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"sessions\": [ {"))
        .mount(&server)
        .await;
    Mock::given(path("/v2/sessions/1%3A2/events"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let error = client.list_sessions(&jane(), 5).await.unwrap_err();
    assert!(
        matches!(
            error,
            FullStoryError::Upstream(UpstreamError::Malformed {
                endpoint: "list_sessions",
                ..
            })
        ),
        "{error:?}"
    );
    let error = client
        .session_events(&SessionId::new("1:2").unwrap(), Purpose::Automatic)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            FullStoryError::Upstream(UpstreamError::Malformed {
                endpoint: "session_events",
                ..
            })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unknown_customer_is_an_empty_list() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    assert!(
        client
            .list_sessions(&jane(), 5)
            .await
            .unwrap()
            .sessions
            .is_empty()
    );
}

#[tokio::test]
async fn session_ids_travel_percent_encoded_in_paths() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/sessions/111%3A222/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events":[{"event_type":"navigate","event_time":"2026-11-20T10:00:00Z","event_properties":{"url":"https://a/"}}]})))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let events = client
        .session_events(&SessionId::new("111:222").unwrap(), Purpose::Automatic)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let received = server.received_requests().await.unwrap();
    assert!(
        received[0]
            .url
            .as_str()
            .contains("/v2/sessions/111%3A222/events")
    );
}

#[tokio::test]
async fn a_summary_sends_only_the_seeds_profile_parameter_and_the_cut() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/sessions/1%3A2/summary"))
        .and(query_param("config_profile_id", "prof"))
        .and(wiremock::matchers::query_param_is_missing("config_profile"))
        .and(query_param("end_timestamp", "2026-11-20T11:30:00Z"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"summary":"The customer could not pay."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let end = chrono::DateTime::parse_from_rfc3339("2026-11-20T11:30:00Z")
        .unwrap()
        .to_utc();
    let summary = client
        .session_summary(
            &SessionId::new("1:2").unwrap(),
            "prof",
            Some(end),
            Purpose::OnRequest,
        )
        .await
        .unwrap();
    assert_eq!(summary.text, "The customer could not pay.");
}

/// 429 for every request during `window` after the first one, then the sessions.
struct RateLimitedWindow {
    window: Duration,
    started: Mutex<Option<Instant>>,
    rejected: AtomicUsize,
    served: AtomicUsize,
}

impl Respond for RateLimitedWindow {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut started = self.started.lock().unwrap();
        let start = *started.get_or_insert_with(Instant::now);
        if start.elapsed() < self.window {
            self.rejected.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(429).insert_header("retry-after", "1")
        } else {
            self.served.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 1)]))
        }
    }
}

#[tokio::test]
async fn after_a_429_every_caller_waits_out_retry_after_together() {
    let server = MockServer::start().await;
    let responder = Arc::new(RateLimitedWindow {
        window: Duration::from_millis(900),
        started: Mutex::new(None),
        rejected: AtomicUsize::new(0),
        served: AtomicUsize::new(0),
    });
    struct Shared(Arc<RateLimitedWindow>);
    impl Respond for Shared {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            self.0.respond(request)
        }
    }
    Mock::given(path("/sessions/v2"))
        .respond_with(Shared(responder.clone()))
        .mount(&server)
        .await;
    let (client, metrics) = client_with(&fs_config(&server));
    let client = Arc::new(client);

    // The first caller meets the 429 …
    let first = {
        let client = client.clone();
        tokio::spawn(async move { client.list_sessions(&jane(), 5).await })
    };
    while !client.upstream().cooldown().any_active() {
        tokio::task::yield_now().await;
    }
    // … and 19 more arrive during the cool-down, each for a different customer (no cache in the way).
    let others: Vec<_> = (0..19)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let who = Identity::Uid(Uid::parse(&format!("user-{i}")).unwrap());
                client.list_sessions(&who, 5).await
            })
        })
        .collect();
    assert_eq!(first.await.unwrap().unwrap().sessions.len(), 1);
    for other in others {
        assert_eq!(other.await.unwrap().unwrap().sessions.len(), 1);
    }
    // Nobody called FullStory while it said to wait: one 429, then one request per caller.
    assert_eq!(responder.rejected.load(Ordering::SeqCst), 1);
    assert_eq!(responder.served.load(Ordering::SeqCst), 20);
    assert_eq!(server.received_requests().await.unwrap().len(), 21);
    assert!(
        metrics
            .render()
            .contains(r#"replaydesk_upstream_rate_limited_total{upstream="fullstory"} 1"#)
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_we_sleep_through_fails_fast_as_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let error = client.list_sessions(&jane(), 5).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert!(error.is_transient());
    assert_eq!(
        client.upstream().breaker().asked_wait(),
        None,
        "within the cap"
    );
}

#[tokio::test]
async fn a_retry_after_past_limits_max_retry_after_is_honoured_that_long_then_the_breaker_probes() {
    let server = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "86400"))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let error = client.list_sessions(&jane(), 5).await.unwrap_err();
    // The default cap, 5 minutes, not a day; the breaker remembers the day for the people waiting.
    assert_eq!(error.retry_after(), Some(Duration::from_secs(300)));
    let breaker = client.upstream().breaker();
    assert_eq!(breaker.state(), replaydesk::outbound::BreakerState::Open);
    assert!(breaker.asked_wait().unwrap() > Duration::from_secs(86_000));
    // Every other caller is refused without a call until the probe is due.
    let again = client.list_sessions(&jane(), 5).await.unwrap_err();
    assert!(again.is_transient(), "{again}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_server_api_reads_users_deletes_and_sends_events() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/users/u%3A1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"id":"u:1","uid":"cust-9","email":"jane@acme.com","unknown":1}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2/users"))
        .and(query_param("uid", "cust-9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/users"))
        .and(query_param("email", "jane@acme.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"results":[{"id":"u:1","uid":"cust-9","email":"jane@acme.com"}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/events"))
        .and(body_partial_json(json!({"name":"Support Ticket Created","session":{"use_most_recent":true},"user":{"uid":"cust-9"}})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/users"))
        .and(body_partial_json(json!({"uid":"cust-9"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id":"u:1","uid":"cust-9"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/events/batch"))
        .and(body_partial_json(
            json!({"requests":[{"name":"Support Ticket Created"}]}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id":"job-1","status":"PENDING"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    // FullStory's documented status answer nests the job (the seed's would be the job itself).
    Mock::given(method("GET"))
        .and(path("/v2/events/batch/job-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"imports":1,"errors":0,"job":{"id":"job-1","status":"COMPLETED"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_with(&fs_config(&server));
    let user = client.get_user("u:1").await.unwrap();
    assert_eq!(user.uid.as_deref(), Some("cust-9"));
    client.delete_user_by_uid("cust-9").await.unwrap();
    let listed = client.users_by_email("jane@acme.com").await.unwrap();
    assert_eq!(listed.unwrap()[0].uid.as_deref(), Some("cust-9"));
    let event = ServerEvent {
        name: "Support Ticket Created".into(),
        timestamp: None,
        target: EventTarget::MostRecentSessionOf {
            uid: Some("cust-9".into()),
            user_id: None,
        },
        properties: json!({"ticket_id": 42}),
    };
    client.create_event(&event).await.unwrap();
    let updated = client
        .create_or_update_user(&replaydesk::fullstory::server_api::UserUpdate {
            uid: Some("cust-9".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.id, "u:1");
    let job = client
        .batch_import(BatchKind::Events, vec![event.to_json()])
        .await
        .unwrap();
    assert_eq!(job.status, BatchStatus::Pending);
    let BatchProgress::Known(job) = client
        .batch_status(BatchKind::Events, &job.id)
        .await
        .unwrap()
    else {
        panic!("the status was readable")
    };
    assert_eq!(job.status, BatchStatus::Completed);
    // A host without the status path (the seed OpenAPI has none): "not available", not a failure.
    assert_eq!(
        client
            .batch_status(BatchKind::Events, "job-2")
            .await
            .unwrap(),
        BatchProgress::Unreadable
    );
    let batch = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/v2/events/batch")
        .unwrap();
    let key = batch.headers["idempotency-key"].to_str().unwrap();
    assert!(key.starts_with("replaydesk-") && key.len() == 43, "{key}");
}

#[tokio::test]
async fn the_key_is_checked_with_a_user_read_the_seed_documents_and_a_404_means_accepted() {
    for (status, outcome) in [(404, "ok"), (401, "unauthorized"), (403, "forbidden")] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/users/replaydesk-key-check"))
            .and(header("authorization", "Basic na1.test-key-0123456789"))
            .respond_with(ResponseTemplate::new(status))
            .expect(1)
            .mount(&server)
            .await;
        let (client, metrics) = client_with(&fs_config(&server));
        let checked = client.verify_key().await;
        match outcome {
            "ok" => assert!(checked.is_ok(), "{checked:?}"),
            "unauthorized" => assert!(matches!(checked, Err(FullStoryError::Unauthorized))),
            _ => assert!(matches!(checked, Err(FullStoryError::Forbidden { .. }))),
        }
        assert!(
            !metrics.render().contains("metered_calls_total{"),
            "costs no quota"
        );
    }
}
