//! One answer cannot freeze replaydesk (issue 22 row 5): FullStory answering one 429 with
//! `Retry-After: 86400` used to make every lookup wait a day while the person asking was told "your
//! replays are on their way shortly". Now a `Retry-After` is honoured at most
//! `limits.max_retry_after` (shortened here to 400 ms of real time: the circuit breaker keeps real
//! time while the tests step the jobs on the manual clock), then the breaker probes; the person is told
//! the real wait, and that it is longer than their answer can wait; and a waiting job with no deadline
//! can be ended by an operator (`replaydesk jobs cancel`). Requests are signed as Slack signs them.

use std::time::Duration;

use replaydesk::{config::Interval, queue::ExecutionOutcome, store::JobState};
use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use super::helpers::{TestApp, official_session, sessions};

/// The cap of one `Retry-After` in these tests (`limits.max_retry_after`; 5 minutes by default).
const CAP: Duration = Duration::from_millis(400);

/// Slack on (its fakes take every post), FullStory answering its first session list with a 429 that
/// asks for a day and then answering, the digest off; `limits.max_retry_after` = [`CAP`].
async fn app() -> TestApp {
    let app = TestApp::builder()
        .slack()
        .configure(|c| {
            c.limits.max_retry_after = Interval(CAP);
            c.fullstory.digest = replaydesk::config::DigestMode::Never;
        })
        .start()
        .await;
    fullstory_asks_for_a_day(&app, Some(1)).await;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 5)])),
        )
        .mount(&app.fullstory)
        .await;
    slack_takes_posts(&app).await;
    app
}

/// `/replays EMAIL`, answered at the Slack fake's `/hooks/N`.
async fn ask(app: &TestApp, email: &str, n: u32) {
    let response_url = format!("{}/hooks/{n}", app.slack_api().uri());
    app.replays("U1", email, &response_url, &format!("trig-{n}"))
        .await;
}

/// Slack's fake takes every `response_url` post and every message.
async fn slack_takes_posts(app: &TestApp) {
    Mock::given(method("POST"))
        .and(path_regex("^/hooks/"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(app.slack_api())
        .await;
    Mock::given(method("POST"))
        .and(path_regex("^/api/chat\\.post"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "ts": "1700000999.000001"})),
        )
        .mount(app.slack_api())
        .await;
}

/// FullStory answers every session list with a 429 asking for a day (`times`: only that many times,
/// then the mocks mounted after answer).
async fn fullstory_asks_for_a_day(app: &TestApp, times: Option<u64>) {
    let mock = Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "86400"))
        .with_priority(1);
    match times {
        Some(n) => mock.up_to_n_times(n).mount(&app.fullstory).await,
        None => mock.mount(&app.fullstory).await,
    }
}

/// What Slack's fake received at paths starting with `prefix`, as text.
async fn posted(app: &TestApp, prefix: &str) -> Vec<String> {
    app.slack_api()
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with(prefix))
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body)
                .map(|v| v.to_string())
                .unwrap_or_default()
        })
        .collect()
}

async fn fullstory_calls(app: &TestApp) -> usize {
    app.fullstory.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn a_retry_after_of_a_day_is_honoured_only_up_to_the_cap_and_people_are_told_the_real_wait() {
    let app = app().await;
    ask(&app, "jane@acme.com", 1).await;
    ask(&app, "bob@acme.com", 2).await;
    // Jane's lookup meets the 429; bob's is refused by the open breaker without a call. Both wait
    // for FullStory, without spending an attempt.
    for _ in 0..2 {
        let outcome = app.run_job().await;
        assert!(
            matches!(outcome, ExecutionOutcome::Waiting(_)),
            "{outcome:?}"
        );
    }
    assert_eq!(fullstory_calls(&app).await, 1);
    for n in [1, 2] {
        let told = posted(&app, &format!("/hooks/{n}")).await;
        assert_eq!(told.len(), 1, "{told:?}");
        // The real wait, and that it is longer than a Slack answer can wait; never "shortly".
        assert!(
            told[0].contains("it asked replaydesk to wait about 24 hours"),
            "{told:?}"
        );
        assert!(
            told[0].contains("That is longer than an answer can wait here (about 29 minutes more)"),
            "{told:?}"
        );
        assert!(!told[0].contains("shortly"), "{told:?}");
    }
    let jobs = app
        .store
        .list_jobs(Some(JobState::Queued), 10)
        .await
        .unwrap();
    assert!(
        jobs.iter()
            .all(|j| j.attempts == 0 && j.waiting_on.as_deref() == Some("fullstory")),
        "{jobs:?}"
    );

    // Past the cap (not a day), one probe goes out; its answer closes the breaker and both answers
    // come, once each.
    tokio::time::sleep(CAP + Duration::from_millis(100)).await;
    app.clock.advance(Duration::from_secs(1));
    let outcomes = app.run_jobs().await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, ExecutionOutcome::Done(_)))
            .count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(
        fullstory_calls(&app).await,
        3,
        "the 429, then one list each"
    );
    for n in [1, 2] {
        let told = posted(&app, &format!("/hooks/{n}")).await;
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[1].contains("1 recent session"), "{told:?}");
    }
    let metrics = app.state.metrics.render();
    assert!(
        metrics.contains(r#"replaydesk_upstream_breaker_openings_total{upstream="fullstory"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_waiting_thread_answer_with_no_deadline_is_ended_by_an_operator_with_jobs_cancel() {
    let app = TestApp::builder()
        .slack()
        .configure(|c| c.fullstory.digest = replaydesk::config::DigestMode::Never)
        .start()
        .await;
    // FullStory keeps asking for a day.
    fullstory_asks_for_a_day(&app, None).await;
    slack_takes_posts(&app).await;
    let ts = format!("{}.000100", app.clock.now().timestamp());
    let mention = json!({
        "type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "EvWait1",
        "event_time": 1_700_000_000,
        "event": {"type": "app_mention", "user": "U1", "text": "<@UBOT> jane@acme.com",
                  "ts": ts, "channel": "C1", "event_ts": ts, "thread_ts": "1699990000.000001"},
    });
    assert_eq!(app.slack_event(&mention).await.status, 200);
    let ExecutionOutcome::Waiting(id) = app.run_job().await else {
        panic!("the thread answer waits for FullStory");
    };
    // A thread has no deadline: told the real wait, and that the answer will follow.
    let told = posted(&app, "/api/chat.post").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].contains("about 24 hours"), "{told:?}");
    assert!(
        told[0].contains("The answer will follow here after that."),
        "{told:?}"
    );

    // The operator ends the wait.
    let id_text = id.to_string();
    let cancel = app.command(&["jobs", "cancel", &id_text], None).await;
    assert!(cancel.status.success(), "{cancel:?}");
    assert!(
        String::from_utf8_lossy(&cancel.stdout)
            .contains(&format!("job {id} (slack.mention) cancelled")),
        "{cancel:?}"
    );
    let told = posted(&app, "/api/chat.post").await;
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told[1].contains("an admin cancelled it"), "{told:?}");
    assert!(told[1].contains(&format!("job {id}")), "{told:?}");
    let job = app.store.get_job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or_default()
            .starts_with("cancelled by operator-1 at "),
        "{job:?}"
    );
    // No worker runs it any more; operators see it as cancelled; metrics count it.
    assert_eq!(app.run_job().await, ExecutionOutcome::EmptyQueue);
    let list = app
        .command(&["jobs", "list", "--state", "cancelled"], None)
        .await;
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(list.contains("slack.mention  cancelled"), "{list}");
    app.queue.refresh_metrics().await.unwrap();
    assert!(
        app.state
            .metrics
            .render()
            .contains(r#"replaydesk_queue_jobs{state="cancelled"} 1"#)
    );

    // What cannot be cancelled says why.
    let again = app.command(&["jobs", "cancel", &id_text], None).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains(&format!("job {id} is cancelled: only a queued job")),
        "{again:?}"
    );
    let nobody = app.command(&["jobs", "cancel", "999999"], None).await;
    assert!(
        String::from_utf8_lossy(&nobody.stderr).contains("no job 999999"),
        "{nobody:?}"
    );
    // And an operator may take it back.
    let retry = app.command(&["jobs", "retry", &id_text], None).await;
    assert!(retry.status.success(), "{retry:?}");
    assert_eq!(
        app.store.get_job(id).await.unwrap().unwrap().state,
        JobState::Queued
    );
}

#[tokio::test]
async fn at_the_answers_deadline_the_final_message_says_how_long_fullstory_asked_for() {
    let app = TestApp::builder().slack().start().await;
    fullstory_asks_for_a_day(&app, None).await;
    slack_takes_posts(&app).await;
    ask(&app, "jane@acme.com", 1).await;
    assert!(matches!(app.run_job().await, ExecutionOutcome::Waiting(_)));
    // Slack's response_url lives 30 minutes: at 29, the one honest final message, with the wait
    // FullStory asked for (not "try again in a few minutes").
    app.clock.advance(Duration::from_secs(29 * 60 + 1));
    assert!(matches!(app.run_job().await, ExecutionOutcome::Expired(_)));
    let told = posted(&app, "/hooks/1").await;
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(
        told[1].contains(
            "FullStory did not answer in time: it asked replaydesk to wait about 24 hours more"
        ),
        "{told:?}"
    );
    assert_eq!(
        fullstory_calls(&app).await,
        1,
        "nothing was asked meanwhile"
    );
}
