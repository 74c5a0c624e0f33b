//! The lookup engine through the cache and the real client, against a fake FullStory: coalescing,
//! negative caching, ranking, de-duplication across identities, and the metered extras only when asked.

use std::time::Duration;

use replaydesk::{
    config::Interval,
    identity::{CustomerEmail, Identity, Uid},
    lookup::{Asked, LookupRequest, SummaryOutcome},
};
use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{path, query_param},
};

use super::helpers::{self, TestApp, official_session, sessions, spawn_app};

fn email(text: &str) -> Identity {
    Identity::Email(CustomerEmail::parse(text).unwrap())
}

fn request(identities: Vec<Identity>) -> LookupRequest {
    LookupRequest {
        identities,
        around: None,
        limit: 5,
        lookback: Duration::from_secs(30 * 86_400),
        digest: false,
        what_went_wrong: true,
        summary: false,
        max_identities: 10,
        asked: Asked::default(),
    }
}

#[tokio::test]
async fn fifty_concurrent_lookups_of_one_customer_cost_one_call() {
    let app = spawn_app().await;
    let server = &app.fullstory;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(sessions(vec![official_session("1", "2", 3)]))
                .set_delay(Duration::from_millis(200)),
        )
        .expect(1)
        .mount(server)
        .await;
    let lookups: Vec<_> = (0..50)
        .map(|_| {
            let app = app.app.clone();
            tokio::spawn(
                async move { app.lookup.run(&request(vec![email("jane@acme.com")])).await },
            )
        })
        .collect();
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap().unwrap().session_count(), 1);
    }
    let metrics = app.metrics.render();
    assert!(
        metrics.contains(r#"replaydesk_cache_lookups_total{cache="sessions",result="miss"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"replaydesk_cache_lookups_total{cache="sessions",result="hit"} 49"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn no_sessions_is_cached_briefly_and_sessions_longer() {
    let app = TestApp::builder()
        .configure(|c| c.fullstory.negative_cache_ttl = Interval(Duration::from_millis(300)))
        .configure(|c| c.fullstory.cache_ttl = Interval(Duration::from_secs(60)))
        .start()
        .await;
    let server = &app.fullstory;
    Mock::given(path("/sessions/v2"))
        .and(query_param("email", "nobody@acme.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![])))
        .expect(2)
        .mount(server)
        .await;
    Mock::given(path("/sessions/v2"))
        .and(query_param("email", "jane@acme.com"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 3)])),
        )
        .expect(1)
        .mount(server)
        .await;
    for _ in 0..3 {
        app.lookup
            .run(&request(vec![email("nobody@acme.com")]))
            .await
            .unwrap();
        app.lookup
            .run(&request(vec![email("jane@acme.com")]))
            .await
            .unwrap();
    }
    // Past the negative TTL, "no sessions" is asked again; the non-empty list is still cached.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let empty = app
        .lookup
        .run(&request(vec![email("nobody@acme.com")]))
        .await
        .unwrap();
    assert_eq!(empty.session_count(), 0);
    app.lookup
        .run(&request(vec![email("jane@acme.com")]))
        .await
        .unwrap();
}

#[tokio::test]
async fn invalidating_an_identity_sends_the_next_lookup_upstream() {
    let app = spawn_app().await;
    let server = &app.fullstory;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 3)])),
        )
        .expect(2)
        .mount(server)
        .await;
    app.lookup
        .run(&request(vec![email("jane@acme.com")]))
        .await
        .unwrap();
    app.lookup
        .run(&request(vec![email("jane@acme.com")]))
        .await
        .unwrap();
    app.sessions.invalidate(&email("jane@acme.com"));
    app.lookup
        .run(&request(vec![email("jane@acme.com")]))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_session_live_before_the_ticket_is_likely_and_duplicates_across_identities_are_dropped()
{
    let app = spawn_app().await;
    let server = &app.fullstory;
    // Sessions 2 h, 1 h and 10 min ago; the email and the uid find the same customer.
    let all = sessions(vec![
        official_session("d", "old", 120),
        official_session("d", "mid", 60),
        official_session("d", "new", 10),
    ]);
    Mock::given(path("/sessions/v2"))
        .and(query_param("email", "jane@acme.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(all.clone()))
        .mount(server)
        .await;
    Mock::given(path("/sessions/v2"))
        .and(query_param("uid", "cust-9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![
            official_session("d", "mid", 60),
            official_session("d", "other", 30),
        ])))
        .mount(server)
        .await;
    let mut req = request(vec![
        email("jane@acme.com"),
        Identity::Uid(Uid::parse("cust-9").unwrap()),
    ]);
    req.around = Some(chrono::Utc::now() - chrono::Duration::minutes(45));
    let result = app.lookup.run(&req).await.unwrap();
    let first: Vec<_> = result.identities[0]
        .sessions
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(first, ["d:new", "d:mid", "d:old"]);
    assert_eq!(result.identities[0].likely().unwrap().id.as_str(), "d:mid");
    let second: Vec<_> = result.identities[1]
        .sessions
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        second,
        ["d:other"],
        "d:mid was already shown under the email"
    );
}

#[tokio::test]
async fn the_digest_and_summary_are_fetched_only_when_asked() {
    let app = TestApp::builder()
        .configure(|c| c.fullstory.summary_profile = Some("support".into()))
        .start()
        .await;
    let server = &app.fullstory;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(sessions(vec![official_session("7", "8", 20)])),
        )
        .mount(server)
        .await;
    Mock::given(path("/v2/sessions/7%3A8/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events":[
            {"event_time":helpers::minutes_ago(19),"event_type":"navigate","event_properties":{"url":"https://shop/cart"}},
            {"event_time":helpers::minutes_ago(17),"event_type":"rage-click"},
            {"event_time":helpers::minutes_ago(16),"event_type":"console-error"},
            {"event_time":helpers::minutes_ago(12),"event_type":"navigate","event_properties":{"url":"https://shop/pay"}}
        ]})))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(path("/v2/sessions/7%3A8/summary"))
        .and(query_param("config_profile_id", "support"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"response":"Tried to pay twice, then gave up."})),
        )
        .expect(1)
        .mount(server)
        .await;

    let plain = app
        .lookup
        .run(&request(vec![email("jane@acme.com")]))
        .await
        .unwrap();
    assert!(plain.identities[0].digest.is_none() && plain.identities[0].summary.is_none());

    let mut full = request(vec![email("jane@acme.com")]);
    full.digest = true;
    full.summary = true;
    let result = app.lookup.run(&full).await.unwrap();
    let group = &result.identities[0];
    assert_eq!(
        group.digest.as_ref().unwrap().line(),
        "2 pages · 1 error · 1 rage click · 7 min"
    );
    assert_eq!(
        group.summary,
        Some(SummaryOutcome::Ready(
            "Tried to pay twice, then gave up.".into()
        ))
    );
}

#[tokio::test]
async fn a_summary_without_a_profile_says_how_to_switch_it_on() {
    let app = spawn_app().await;
    let server = &app.fullstory;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(sessions(vec![official_session("7", "8", 20)])),
        )
        .mount(server)
        .await;
    let mut req = request(vec![email("jane@acme.com")]);
    req.summary = true;
    let result = app.lookup.run(&req).await.unwrap();
    match &result.identities[0].summary {
        Some(SummaryOutcome::Unavailable(why)) => {
            assert!(why.contains("fullstory.summary_profile"))
        }
        other => panic!("unexpected summary {other:?}"),
    }
}
