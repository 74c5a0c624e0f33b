//! FullStory Activations, budgeted (issue 24): counted in the store before each metered call, the
//! automatic share stopping before the reserve, on-request spending going on to the budget, the line
//! every answer shows past it, FullStory's own out-of-quota answer, alerts, restarts, replicas on
//! PostgreSQL, and the cycle's reset. Every call reaches a wiremock FullStory, so "no call" is
//! counted by the fake, not assumed.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use replaydesk::{
    activations::{Kind, Purpose, Spent},
    config::{DigestMode, Reserve},
    fullstory::{FullStoryError, SessionId, SessionsApi},
    identity::{CustomerEmail, Identity},
    queue::ExecutionOutcome,
};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use super::helpers::{TestApp, official_session, sessions, spawn_app};

/// FullStory answering every session's events (an empty list: enough to count the call).
async fn events_answered(server: &MockServer) {
    Mock::given(path_regex("^/v2/sessions/[^/]+/events$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events": []})))
        .mount(server)
        .await;
}

/// FullStory knowing one session of anyone asked about (7:8, twenty minutes ago).
async fn jane_has_a_session(server: &MockServer) {
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(sessions(vec![official_session("7", "8", 20)])),
        )
        .mount(server)
        .await;
}

fn events_calls(requests: &[wiremock::Request]) -> usize {
    requests
        .iter()
        .filter(|r| r.url.path().ends_with("/events"))
        .count()
}

/// A session id of its own for call `n` (so the cache never answers in FullStory's place).
fn session(n: usize) -> SessionId {
    SessionId::new(format!("{}:{}", 1000 + n, 2000 + n)).unwrap()
}

/// A budget of `budget`, `reserve` kept for requests.
async fn budgeted(budget: u32, reserve: Reserve) -> TestApp {
    TestApp::builder()
        .configure(move |c| {
            c.fullstory.activations_per_cycle = Some(budget);
            c.fullstory.on_request_reserve = reserve;
        })
        .start()
        .await
}

#[tokio::test]
async fn automatic_spending_stops_before_the_reserve_and_requests_go_on_to_the_budget() {
    let app = budgeted(10, Reserve::Percent(20)).await;
    events_answered(&app.fullstory).await;

    let mut granted = 0;
    for n in 0..12 {
        match app
            .sessions
            .session_events(&session(n), Purpose::Automatic)
            .await
        {
            Ok(_) => granted += 1,
            Err(FullStoryError::OverBudget(Spent::Budget {
                used,
                limit,
                budget,
                ..
            })) => {
                assert_eq!((used, limit, budget), (8, 8, 10));
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        granted, 8,
        "automatic spending stops at the budget less the 20 % reserve"
    );
    for n in 12..20 {
        let asked = app
            .sessions
            .session_events(&session(n), Purpose::OnRequest)
            .await;
        assert_eq!(
            asked.is_ok(),
            n < 14,
            "call {n}: on request goes on to the budget"
        );
    }
    let requests = app.fullstory.received_requests().await.unwrap();
    assert_eq!(
        events_calls(&requests),
        10,
        "no call past the budget reached FullStory"
    );

    let report = app.activations.report().await.unwrap();
    assert_eq!((report.automatic, report.on_request), (8, 2));
    assert!(
        report
            .line()
            .starts_with("10 of 10 this cycle (automatic 8, on request 2; resets "),
        "{}",
        report.line()
    );
    assert!(
        report.line().ends_with("; 2 kept for requests)"),
        "{}",
        report.line()
    );
    // Cached answers cost nothing: the first session again is answered from the cache.
    assert!(
        app.sessions
            .session_events(&session(0), Purpose::Automatic)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_call_fullstory_did_not_answer_gives_its_activation_back() {
    let app = budgeted(2, Reserve::Count(0)).await;
    Mock::given(path_regex("^/v2/sessions/[^/]+/events$"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&app.fullstory)
        .await;
    for n in 0..5 {
        assert!(matches!(
            app.sessions
                .session_events(&session(n), Purpose::Automatic)
                .await,
            Err(FullStoryError::NotFound { .. })
        ));
    }
    let report = app.activations.report().await.unwrap();
    assert_eq!(report.used(), 0, "{report:?}");
    assert_eq!(
        events_calls(&app.fullstory.received_requests().await.unwrap()),
        5
    );
}

#[tokio::test]
async fn past_the_budget_an_answer_keeps_its_links_and_says_why_the_digest_is_missing() {
    let app = budgeted(1, Reserve::Count(0)).await;
    events_answered(&app.fullstory).await;
    jane_has_a_session(&app.fullstory).await;
    // The one Activation goes to another session first.
    app.sessions
        .session_events(&session(1), Purpose::Automatic)
        .await
        .unwrap();

    let jane = Identity::Email(CustomerEmail::parse("jane@acme.com").unwrap());
    let result = app
        .lookup
        .run(&app.lookup_request(vec![jane]))
        .await
        .unwrap();
    let group = &result.identities[0];
    assert_eq!(group.sessions.len(), 1);
    assert!(
        group.likely().is_some(),
        "the likely mark needs no Activation"
    );
    assert!(group.digest.is_none());
    let line = replaydesk::render::digest_line(group).unwrap();
    assert!(
        line.starts_with(
            "Digest skipped: FullStory Activation budget for this cycle used: 1 of 1; resets "
        ),
        "{line}"
    );
    assert_eq!(
        events_calls(&app.fullstory.received_requests().await.unwrap()),
        1
    );
}

#[tokio::test]
async fn digest_on_request_fetches_nothing_until_asked_and_then_spends_from_the_reserve() {
    let app = TestApp::builder()
        .configure(|c| {
            c.fullstory.digest = DigestMode::OnRequest;
            c.fullstory.activations_per_cycle = Some(5);
            c.fullstory.on_request_reserve = Reserve::Count(5);
        })
        .start()
        .await;
    events_answered(&app.fullstory).await;
    jane_has_a_session(&app.fullstory).await;
    let jane = || {
        vec![Identity::Email(
            CustomerEmail::parse("jane@acme.com").unwrap(),
        )]
    };
    let plain = app.lookup.run(&app.lookup_request(jane())).await.unwrap();
    assert!(plain.identities[0].digest.is_none() && plain.identities[0].digest_skipped.is_none());
    assert_eq!(
        events_calls(&app.fullstory.received_requests().await.unwrap()),
        0
    );

    // Asked (a `--digest`, a `digest:true`): fetched, although all five are kept for requests.
    let mut asked = app.lookup_request(jane());
    asked.digest = true;
    asked.asked.digest = true;
    let result = app.lookup.run(&asked).await.unwrap();
    assert!(result.identities[0].digest.is_some());
    let report = app.activations.report().await.unwrap();
    assert_eq!((report.automatic, report.on_request), (0, 1));
}

#[tokio::test]
async fn fullstorys_out_of_quota_answer_stops_metered_calls_until_the_next_cycle() {
    let start = Utc.with_ymd_and_hms(2026, 12, 30, 12, 0, 0).unwrap();
    let app = TestApp::builder().clock_at(start).start().await;
    Mock::given(path_regex("^/v2/sessions/[^/]+/events$"))
        .respond_with(ResponseTemplate::new(429).set_body_json(
            json!({"code": "quota_exceeded", "message": "Activation quota used up"}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.fullstory)
        .await;
    events_answered(&app.fullstory).await;

    let first = app
        .sessions
        .session_events(&session(1), Purpose::OnRequest)
        .await;
    match first {
        Err(FullStoryError::OverBudget(spent @ Spent::FullStory { .. })) => assert_eq!(
            spent.to_string(),
            "FullStory says this organisation's Activations are used up; metered calls start again on 2027-01-01"
        ),
        other => panic!("expected the quota to be used up, got {other:?}"),
    }
    for n in 2..5 {
        assert!(matches!(
            app.sessions
                .session_events(&session(n), Purpose::OnRequest)
                .await,
            Err(FullStoryError::OverBudget(Spent::FullStory { .. }))
        ));
    }
    assert_eq!(
        events_calls(&app.fullstory.received_requests().await.unwrap()),
        1,
        "the 429 naming a quota was neither retried nor followed by another metered call"
    );
    assert!(
        app.app
            .fullstory
            .upstream()
            .breaker()
            .asked_wait()
            .is_none(),
        "no breaker or cool-down for a used-up quota"
    );
    assert!(
        app.activations
            .report()
            .await
            .unwrap()
            .exhausted_at
            .is_some()
    );

    // The next cycle starts on its day: metered calls again.
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 1).unwrap());
    assert!(
        app.sessions
            .session_events(&session(9), Purpose::OnRequest)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_402_is_an_out_of_quota_answer_too() {
    let app = spawn_app().await;
    Mock::given(path_regex("^/v2/sessions/[^/]+/summary$"))
        .respond_with(
            ResponseTemplate::new(402).set_body_json(json!({"message": "payment required"})),
        )
        .mount(&app.fullstory)
        .await;
    let answer = app
        .sessions
        .session_summary(&session(1), "support", None, Purpose::OnRequest)
        .await;
    assert!(
        matches!(
            answer,
            Err(FullStoryError::OverBudget(Spent::FullStory { .. }))
        ),
        "{answer:?}"
    );
}

#[tokio::test]
async fn the_cycle_resets_on_its_day_and_the_count_survives_a_restart() {
    let start = Utc.with_ymd_and_hms(2027, 1, 14, 23, 59, 0).unwrap();
    let app = TestApp::builder()
        .clock_at(start)
        .configure(|c| {
            c.fullstory.activations_per_cycle = Some(3);
            c.fullstory.on_request_reserve = Reserve::Count(0);
            c.fullstory.cycle_start_day = 15;
        })
        .start()
        .await;
    events_answered(&app.fullstory).await;
    for n in 0..3 {
        app.sessions
            .session_events(&session(n), Purpose::Automatic)
            .await
            .unwrap();
    }
    // A restart: a new process on the same store counts on from where the last one stopped.
    let restarted = TestApp::builder().replica_of(&app).start().await;
    let refused = restarted
        .sessions
        .session_events(&session(3), Purpose::Automatic)
        .await;
    match refused {
        Err(FullStoryError::OverBudget(spent)) => assert_eq!(
            spent.to_string(),
            "FullStory Activation budget for this cycle used: 3 of 3; resets 2027-01-15"
        ),
        other => panic!("expected the budget to be used, got {other:?}"),
    }
    // 00:00 UTC on the 15th: a new cycle.
    app.clock.advance(Duration::from_secs(120));
    restarted
        .sessions
        .session_events(&session(4), Purpose::Automatic)
        .await
        .unwrap();
    let report = restarted.activations.report().await.unwrap();
    assert_eq!(report.cycle.to_string(), "2027-01-15");
    assert_eq!(report.used(), 1);
}

#[tokio::test]
async fn two_replicas_on_postgresql_never_pass_the_budget_between_them() {
    let db = super::processes::FreshDatabase::create().await;
    let a = TestApp::builder()
        .store_url(&db.url)
        .configure(|c| {
            c.privacy.audit_key = replaydesk::config::Secret::new("replicas-audit-key");
            c.fullstory.activations_per_cycle = Some(20);
            c.fullstory.on_request_reserve = Reserve::Count(0);
        })
        .start()
        .await;
    let b = TestApp::builder().replica_of(&a).start().await;
    events_answered(&a.fullstory).await;
    let calls = (0..60).map(|n| {
        let replica = if n % 2 == 0 {
            a.app.clone()
        } else {
            b.app.clone()
        };
        tokio::spawn(async move {
            replica
                .sessions
                .session_events(&session(n), Purpose::Automatic)
                .await
                .is_ok()
        })
    });
    let granted = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .filter(|ok| *ok.as_ref().unwrap())
        .count();
    assert_eq!(
        granted, 20,
        "the bound: not one call past the budget, in flight or not"
    );
    assert_eq!(
        events_calls(&a.fullstory.received_requests().await.unwrap()),
        20
    );
    assert_eq!(b.activations.report().await.unwrap().used(), 20);
}

#[tokio::test]
async fn the_alerts_go_to_slack_once_each_at_80_and_100_percent() {
    let app = TestApp::builder()
        .slack()
        .configure(|c| {
            c.fullstory.activations_per_cycle = Some(5);
            c.fullstory.on_request_reserve = Reserve::Count(0);
            c.fullstory.budget_alert_channel = Some("C-BUDGET".into());
        })
        .start()
        .await;
    events_answered(&app.fullstory).await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "ts": "1700000999.000001"})),
        )
        .mount(app.slack_api())
        .await;
    for n in 0..8 {
        let _ = app
            .sessions
            .session_events(&session(n), Purpose::OnRequest)
            .await;
    }
    let posts: Vec<serde_json::Value> = app
        .slack_api()
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/chat.postMessage")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert!(posts.iter().all(|p| p["channel"] == "C-BUDGET"));
    assert!(
        posts[0]["text"]
            .as_str()
            .unwrap()
            .contains("4 of this cycle's 5 FullStory Activations (80 %)")
    );
    assert!(
        posts[1]["text"]
            .as_str()
            .unwrap()
            .contains("5 of this cycle's 5 FullStory Activations (100 %)")
    );
}

#[tokio::test]
async fn list_sessions_is_counted_apart_and_never_against_the_budget() {
    let app = budgeted(1, Reserve::Count(0)).await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(sessions(vec![])))
        .mount(&app.fullstory)
        .await;
    for who in ["a@acme.com", "b@acme.com", "c@acme.com"] {
        let id = Identity::Email(CustomerEmail::parse(who).unwrap());
        app.sessions.list_sessions(&id, 5).await.unwrap();
    }
    // Counted without waiting: give the writes a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let report = loop {
        let report = app.activations.report().await.unwrap();
        if report.days.iter().map(|d| d.count).sum::<i64>() >= 3
            || std::time::Instant::now() > deadline
        {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(report.used(), 0, "List Sessions costs no Activation");
    assert!(report.days.iter().all(|d| d.kind == "list_sessions"));
    assert_eq!(report.days.iter().map(|d| d.count).sum::<i64>(), 3);
    // And the one Activation is still there.
    assert!(
        app.activations
            .spend(Kind::Events, Purpose::Automatic)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn one_session_costs_one_activation_whichever_replica_shows_it() {
    let db = super::processes::FreshDatabase::create().await;
    let a = TestApp::builder()
        .store_url(&db.url)
        .configure(|c| {
            c.privacy.audit_key = replaydesk::config::Secret::new("replicas-audit-key");
            c.fullstory.summary_profile = Some("support".into());
        })
        .start()
        .await;
    let b = TestApp::builder().replica_of(&a).start().await;
    let c = TestApp::builder().replica_of(&a).start().await;
    events_answered(&a.fullstory).await;
    Mock::given(path_regex("^/v2/sessions/[^/]+/summary$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"summary": "Paid twice."})))
        .mount(&a.fullstory)
        .await;
    // A ticket's note on A, the sidebar on B, a Slack answer on C: one session, one events call.
    for replica in [&a, &b, &c] {
        replica
            .sessions
            .session_events(&session(1), Purpose::Automatic)
            .await
            .unwrap();
        let summary = replica
            .sessions
            .session_summary(&session(1), "support", None, Purpose::OnRequest)
            .await
            .unwrap();
        assert_eq!(summary.text, "Paid twice.");
    }
    let requests = a.fullstory.received_requests().await.unwrap();
    assert_eq!(events_calls(&requests), 1);
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.url.path().ends_with("/summary"))
            .count(),
        1
    );
    assert_eq!(c.activations.report().await.unwrap().used(), 2);

    // Past its time the stored answer is not served: the next replica to show it pays again.
    a.clock.advance(Duration::from_secs(2 * 3600));
    let d = TestApp::builder().replica_of(&a).start().await;
    d.sessions
        .session_events(&session(1), Purpose::Automatic)
        .await
        .unwrap();
    assert_eq!(
        events_calls(&a.fullstory.received_requests().await.unwrap()),
        2
    );
}

#[tokio::test]
async fn an_erasure_drops_what_every_replica_shares_of_the_customers_sessions() {
    let app = TestApp::builder().start().await;
    super::privacy::mount_jane(&app.fullstory).await;
    events_answered(&app.fullstory).await;
    let jane = Identity::Email(CustomerEmail::parse("jane@acme.com").unwrap());
    let list = app.sessions.list_sessions(&jane, 5).await.unwrap();
    let id = list.sessions[0].id.clone();
    app.sessions
        .session_events(&id, Purpose::Automatic)
        .await
        .unwrap();
    let long_ago = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    assert!(
        app.store
            .session_data(id.as_str(), "events", long_ago)
            .await
            .unwrap()
            .is_some()
    );
    let id_job = super::privacy::enqueue_erasure(&app).await;
    assert!(
        app.run_jobs()
            .await
            .contains(&ExecutionOutcome::Done(id_job))
    );
    assert!(
        app.store
            .session_data(id.as_str(), "events", long_ago)
            .await
            .unwrap()
            .is_none(),
        "the events of an erased customer's session are not kept"
    );
}

#[tokio::test]
async fn check_and_the_activations_command_show_this_cycles_spending() {
    let app = spawn_app().await;
    events_answered(&app.fullstory).await;
    Mock::given(path_regex("^/v2/sessions/[^/]+/summary$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"summary": "Paid twice."})))
        .mount(&app.fullstory)
        .await;
    for n in 0..2 {
        app.sessions
            .session_events(&session(n), Purpose::Automatic)
            .await
            .unwrap();
    }
    app.sessions
        .session_summary(&session(0), "support", None, Purpose::OnRequest)
        .await
        .unwrap();

    let json = app.command(&["activations", "--json"], None).await;
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (report["automatic"].as_i64(), report["on_request"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(report["budget"], serde_json::Value::Null);
    let kinds: Vec<(&str, &str, i64)> = report["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["purpose"].as_str().unwrap(),
                d["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("events", "automatic", 2), ("summary", "on_request", 1)]
    );

    let table = app.command(&["activations"], None).await;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("3 this cycle, no budget set (automatic 2, on request 1; resets "),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.contains("summary")
            && l.contains("on request")
            && l.trim_end().ends_with('1')),
        "{table}"
    );

    let check = app.command(&["check"], None).await;
    let check = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.lines().any(|l| l.starts_with(
            "activations  3 this cycle, no budget set (automatic 2, on request 1; resets "
        )),
        "{check}"
    );
}

#[tokio::test]
async fn a_5xx_keeps_its_activation_and_is_not_repeated_in_place() {
    let app = budgeted(5, Reserve::Count(0)).await;
    Mock::given(path_regex("^/v2/sessions/[^/]+/events$"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.fullstory)
        .await;
    let answer = app
        .sessions
        .session_events(&session(1), Purpose::OnRequest)
        .await;
    assert!(
        matches!(answer, Err(FullStoryError::Upstream(_))),
        "{answer:?}"
    );
    assert_eq!(
        events_calls(&app.fullstory.received_requests().await.unwrap()),
        1,
        "a metered call is not retried in place: FullStory may have charged it"
    );
    assert_eq!(
        app.activations.report().await.unwrap().used(),
        1,
        "and it keeps its Activation"
    );
}

#[tokio::test]
async fn with_digests_off_an_agents_digest_option_fetches_nothing() {
    let app = TestApp::builder()
        .slack()
        .configure(|c| c.fullstory.digest = DigestMode::Never)
        .start()
        .await;
    events_answered(&app.fullstory).await;
    jane_has_a_session(&app.fullstory).await;
    Mock::given(method("POST"))
        .and(path_regex("^/hooks/"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(app.slack_api())
        .await;
    let response_url = format!("{}/hooks/1", app.slack_api().uri());
    app.replays(
        "U1",
        "jane@acme.com --digest",
        &response_url,
        "trig-digest-off",
    )
    .await;
    app.run_jobs().await;
    let posted = app.slack_api().received_requests().await.unwrap();
    assert!(
        posted.iter().any(|r| r.url.path() == "/hooks/1"),
        "the answer was posted"
    );
    assert_eq!(
        events_calls(&app.fullstory.received_requests().await.unwrap()),
        0,
        "fullstory.digest = false: no events call, asked or not"
    );
}
