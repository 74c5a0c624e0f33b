//! The server's own routes and layers on a real port: health, readiness, metrics, request ids, limits.

use replaydesk::identity::{CustomerEmail, Identity};
use tempfile::TempDir;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::path};

use super::helpers::{self, TestServer, official_session, sessions};

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let fullstory = MockServer::start().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 5)])),
        )
        .mount(&fullstory)
        .await;
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(helpers::config(&fullstory.uri(), &dir)).await;
    let jane = Identity::Email(CustomerEmail::parse("jane@acme.com").unwrap());
    let request = server.app.lookup_request(vec![jane]);
    server.app.lookup.run(&request).await.unwrap();
    server.app.lookup.run(&request).await.unwrap();
    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["store"], "ok");

    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"replaydesk_upstream_requests_total{upstream="fullstory",endpoint="list_sessions",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"replaydesk_cache_lookups_total{cache="sessions",result="hit"} 1"#),
        "{text}"
    );
    assert!(!text.contains("jane"), "no customer value in metrics");
}

#[tokio::test]
async fn readiness_fails_when_the_store_is_gone() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(helpers::config("http://127.0.0.1:9", &dir)).await;
    server.app.store.close().await;
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_the_callers() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(helpers::config("http://127.0.0.1:9", &dir)).await;
    let made = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let kept = server
        .http
        .get(server.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(helpers::config("http://127.0.0.1:9", &dir)).await;
    let response = server
        .http
        .post(server.url("/healthz"))
        .body(vec![b'x'; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}
