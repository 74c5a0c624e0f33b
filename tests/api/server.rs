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

/// `(content type, body)` of `GET /metrics` with this `Accept` header (none when `None`).
async fn scrape(server: &TestServer, accept: Option<&str>) -> (String, String) {
    let mut request = server.http.get(server.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, answer.text().await.unwrap())
}

/// The names of the `# HELP` and the `# TYPE` lines, in order.
fn descriptors(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|rest| rest.split(' ').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn metrics_answer_in_the_format_the_scraper_asks_for_with_help_for_every_family() {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(helpers::config("http://127.0.0.1:9", &dir)).await;
    server.app.metrics.upstream.cache_hit("sessions", true);

    // Prometheus 3's default Accept header prefers OpenMetrics.
    let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
        application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;\
        escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let (content_type, om) = scrape(&server, Some(prometheus)).await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains("# TYPE replaydesk_cache_lookups counter\n"),
        "{om}"
    );
    assert!(om.contains(r#"replaydesk_cache_lookups_total{cache="sessions",result="hit"} 1"#));

    // A scraper asking for the classic text, and one asking for nothing in particular, get 0.0.4.
    for accept in [Some("text/plain; version=0.0.4"), Some("*/*"), None] {
        let (content_type, text) = scrape(&server, accept).await;
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(
            text.contains("# HELP replaydesk_cache_lookups_total Cache lookups")
                && text.contains("# TYPE replaydesk_cache_lookups_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains(r#"replaydesk_cache_lookups_total{cache="sessions",result="hit"} 1"#)
        );
        // Every family has its help text under the name its samples carry.
        let (helps, types) = (descriptors(&text, "# HELP "), descriptors(&text, "# TYPE "));
        assert_eq!(helps, types);
        assert!(types.len() >= 5, "{types:?}");
    }
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
