//! The server's own routes and layers on a real port: health, readiness, metrics, request ids, limits.

use std::time::Duration;

use replaydesk::{
    config::Interval,
    identity::{CustomerEmail, Identity},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use wiremock::{Mock, ResponseTemplate, matchers::path};

use super::helpers::{self, SLACK_SECRET, TestApp, TestAppBuilder, official_session, sessions};

/// The whole service as `replaydesk serve` runs it, on a real loopback port.
async fn serve() -> TestApp {
    serving(TestApp::builder()).await
}

/// [`serve`] with the builder's other options.
async fn serving(builder: TestAppBuilder) -> TestApp {
    builder.serve_with_workers().start().await
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let server = serve().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 5)])),
        )
        .mount(&server.fullstory)
        .await;
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
async fn scrape(server: &TestApp, accept: Option<&str>) -> (String, String) {
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
    let server = serve().await;
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
    let server = serve().await;
    server.app.store.close().await;
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn readiness_does_not_flip_when_an_upstream_is_down() {
    // Load balancers must keep sending webhooks during an outage: jobs wait, the ack is still ours.
    let server = serve().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server.fullstory)
        .await;
    let jane = Identity::Email(CustomerEmail::parse("jane@acme.com").unwrap());
    let request = server.app.lookup_request(vec![jane]);
    assert!(server.app.lookup.run(&request).await.is_err());
    let ready = server.http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_the_callers() {
    let server = serve().await;
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
    let server = serve().await;
    let response = server
        .http
        .post(server.url("/healthz"))
        .body(vec![b'x'; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

/// Reads until the server closes the connection (or resets it); what it sent before.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    // A safety bound only (the test fails instead of hanging); nothing here is timed.
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut seen)).await;
    assert!(read.is_ok(), "the server never closed the connection");
    seen
}

#[tokio::test]
async fn thousands_of_silent_and_half_sent_connections_do_not_keep_signed_requests_out() {
    // This test process holds both ends of every connection.
    replaydesk::server::connections::raise_file_limit(5_000);
    let server = serving(TestApp::builder().slack().configure(|c| {
        c.server.header_read_timeout = Interval(Duration::from_secs(2));
        c.server.idle_timeout = Interval(Duration::from_secs(60));
    }))
    .await;

    // A kept-alive connection, answered once, now waiting for its next request.
    let mut kept = TcpStream::connect(server.address()).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: replaydesk\r\n\r\n")
        .await
        .unwrap();
    let mut answered = Vec::new();
    while !answered.ends_with(b"\r\n\r\nok") {
        let mut chunk = [0u8; 512];
        let n = kept.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed early");
        answered.extend_from_slice(&chunk[..n]);
    }

    // 1,000 connections that never send a byte, then 1,000 that stop in the middle of their headers.
    let mut idle = Vec::new();
    for _ in 0..1_000 {
        idle.push(TcpStream::connect(server.address()).await.unwrap());
    }
    let mut half_sent = Vec::new();
    for _ in 0..1_000 {
        let mut stream = TcpStream::connect(server.address()).await.unwrap();
        stream
            .write_all(b"POST /slack/commands HTTP/1.1\r\nHost: replaydesk\r\nX-Slack-Sig")
            .await
            .unwrap();
        half_sent.push(stream);
    }

    // Meanwhile health checks and signed requests are answered.
    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let now = chrono::Utc::now().timestamp();
    let hooks = "https://hooks.slack.com/commands/T1/1/x";
    let (body, headers) = helpers::slack_command(SLACK_SECRET, now, "help", hooks, "trigger-1");
    let mut request = server.http.post(server.url("/slack/commands")).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert!(
        answer["text"].as_str().unwrap().contains("/replays"),
        "{answer}"
    );

    // Silent and half-sent connections are closed, unanswered, header_read_timeout after they opened …
    for stream in idle.iter_mut().chain(half_sent.iter_mut()) {
        assert!(read_to_close(stream).await.is_empty());
    }
    // … while the kept-alive connection, waiting for its next request (idle_timeout: 60 s), still serves.
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: replaydesk\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let seen = String::from_utf8(read_to_close(&mut kept).await).unwrap();
    assert!(seen.starts_with("HTTP/1.1 200 OK"), "{seen}");
}

#[tokio::test]
async fn past_max_connections_a_client_waits_for_a_free_one() {
    let server = serving(TestApp::builder().configure(|c| {
        c.server.max_connections = 1;
        c.server.header_read_timeout = Interval(Duration::from_secs(1));
    }))
    .await;
    // The only connection served at once, saying nothing.
    let first = TcpStream::connect(server.address()).await.unwrap();
    // A second client is accepted by the kernel, but served only once the first is gone: here, when
    // the server closes it for not asking anything within header_read_timeout.
    let status = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let mut byte = [0u8; 1];
    assert_eq!(
        first.try_read(&mut byte).unwrap(),
        0,
        "the first connection was closed before the second was served"
    );
}

#[tokio::test]
async fn a_graceful_shutdown_closes_idle_connections_and_stops_accepting() {
    let mut server = serve().await;
    let address = server.address();
    // A kept-alive connection that has been answered once and now waits.
    let mut kept = TcpStream::connect(address).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: replaydesk\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 15];
    kept.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");

    let stopped = tokio::time::timeout(Duration::from_secs(30), server.shut_down()).await;
    assert!(stopped.unwrap().is_ok(), "serve returned");
    // The rest of the answer, then the end of the connection.
    read_to_close(&mut kept).await;
    assert!(
        TcpStream::connect(address).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_idle_past_idle_timeout_is_closed() {
    let server = serving(
        TestApp::builder().configure(|c| c.server.idle_timeout = Interval(Duration::from_secs(1))),
    )
    .await;
    let mut kept = TcpStream::connect(server.address()).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: replaydesk\r\n\r\n")
        .await
        .unwrap();
    // The answer, then (nothing more being asked) the end of the connection.
    let seen = String::from_utf8(read_to_close(&mut kept).await).unwrap();
    assert!(seen.starts_with("HTTP/1.1 200 OK"), "{seen}");
    assert!(seen.ends_with("\r\n\r\nok"), "{seen}");
}
