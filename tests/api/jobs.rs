//! The platform-neutral job path every adapter shares: a queued lookup runs the core and hands the
//! answer to the platform's replier; FullStory failures become a delay notice and a retry, or a polite
//! failure, or (when the queue gives up) a failure with a reference.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use replaydesk::{
    answer::{self, Answer, LookupJob, PlatformReplier, ReplyTarget, ReplyTo},
    identity::{CustomerEmail, Identity},
    privacy::Requester,
    queue::{ExecutionOutcome, Job, JobContext, JobError, Queue, Settings},
    store::NewJob,
};
use serde_json::json;
use wiremock::{Mock, ResponseTemplate, matchers::path};

use super::helpers::{TestApp, official_session, sessions};

/// Where the test platform's answers go.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Channel {
    channel: String,
}

impl ReplyTarget for Channel {
    const PLATFORM: &'static str = "test";
}

/// Remembers what it was asked to deliver, as text.
#[derive(Default)]
struct RecordingReplier(Mutex<Vec<String>>);

#[async_trait]
impl PlatformReplier for RecordingReplier {
    type Target = Channel;

    async fn deliver(
        &self,
        _: &JobContext,
        target: &Channel,
        answer: Answer<'_>,
    ) -> Result<(), JobError> {
        assert_eq!(
            *target,
            Channel {
                channel: "C1".into()
            }
        );
        let text = match answer {
            Answer::Sessions { result, .. } => format!("sessions:{}", result.session_count()),
            Answer::Summary { .. } => "summary".into(),
            Answer::Delayed { message } => format!("delayed:{message}"),
            Answer::Failed { message, reference } => format!("failed:{message}|{reference}"),
            Answer::Erasure { receipt, .. } => format!("erasure:{}", receipt.status),
            Answer::Escalated { escalated } => format!("escalated:{}", escalated.key),
        };
        self.0.lock().unwrap().push(text);
        Ok(())
    }
}

/// The service with a [`RecordingReplier`] for the platform `test`, `max_attempts` without backoff, on
/// the system clock (a job waiting for FullStory is due when the breaker, in real time, lets a probe
/// through).
async fn app_with(max_attempts: u32) -> (TestApp, Arc<RecordingReplier>) {
    let replier = Arc::new(RecordingReplier::default());
    let app = TestApp::builder()
        .replier(replier.clone())
        .queue_settings(Settings {
            max_attempts,
            backoff_base: std::time::Duration::ZERO,
            ..Settings::default()
        })
        .system_clock()
        .start()
        .await;
    (app, replier)
}

async fn enqueue_lookup(queue: &Queue, key: &str) {
    let job = LookupJob {
        identities: vec![Identity::Email(
            CustomerEmail::parse("jane@acme.com").unwrap(),
        )],
        around: None,
        summary: false,
        digest: Some(false),
        requester: Requester {
            platform: "test".into(),
            tenant: "T1".into(),
            user: "U1".into(),
            place: Some("C1".into()),
        },
        reply: ReplyTo::new(&Channel {
            channel: "C1".into(),
        }),
    };
    queue.push(key, &job).await.unwrap();
}

#[tokio::test]
async fn a_queued_lookup_is_answered_through_the_platforms_replier() {
    let (app, replier) = app_with(3).await;
    let queue = &app.queue;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 5)])),
        )
        .expect(1)
        .mount(&app.fullstory)
        .await;
    enqueue_lookup(queue, "test:delivery-1").await;
    enqueue_lookup(queue, "test:delivery-1").await; // the platform retried: no second job
    assert!(matches!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(_)
    ));
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::EmptyQueue
    );
    assert_eq!(*replier.0.lock().unwrap(), ["sessions:1"]);
}

#[tokio::test]
async fn a_lookup_whose_payload_no_longer_fits_still_tells_the_requester_it_failed() {
    let (app, replier) = app_with(3).await;
    // An older or edited row: its identities are not a list, but its reply is intact.
    let payload = json!({
        "identities": "jane@acme.com",
        "around": null,
        "requester": {"platform": "test", "tenant": "T1", "user": "U1", "place": "C1"},
        "reply": {"platform": "test", "target": {"channel": "C1"}},
    });
    let id = app
        .queue
        .enqueue("test:unfit", NewJob::new(LookupJob::KIND, payload))
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        app.queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Dead(id),
        "a payload that does not fit will not fit next time either"
    );
    let told = replier.0.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].starts_with(&format!("failed:{}|job {id}", answer::GAVE_UP)),
        "{told:?}"
    );
    let job = app.store.get_job(id).await.unwrap().unwrap();
    let error = job.last_error.unwrap_or_default();
    assert!(error.contains("identities"), "names the field: {error}");
    assert!(
        !error.contains("jane@acme.com"),
        "never quotes the value: {error}"
    );
}

/// Runs due jobs until one finishes (done, dead or expired), polling while they wait; returns every
/// outcome but "nothing due".
async fn run_until_finished(queue: &Queue) -> Vec<ExecutionOutcome> {
    let mut outcomes = Vec::new();
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let outcome = queue.try_execute_one("w").await.unwrap();
        match outcome {
            ExecutionOutcome::EmptyQueue => {
                assert!(std::time::Instant::now() < give_up, "{outcomes:?}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            ExecutionOutcome::Done(_)
            | ExecutionOutcome::Dead(_)
            | ExecutionOutcome::Expired(_) => {
                outcomes.push(outcome);
                return outcomes;
            }
            other => outcomes.push(other),
        }
    }
}

#[tokio::test]
async fn fullstory_down_tells_the_requester_once_and_waits_without_spending_attempts() {
    let (app, replier) = app_with(2).await;
    let queue = &app.queue;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(8)
        .mount(&app.fullstory)
        .await;
    Mock::given(path("/sessions/v2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sessions(vec![official_session("1", "2", 5)])),
        )
        .mount(&app.fullstory)
        .await;
    enqueue_lookup(queue, "test:down").await;
    // 8 failures: the first try's FullStory calls open the breaker (OPEN_AFTER), then each try is
    // one probe, until FullStory answers: more tries than max_attempts (2), none counted.
    let outcomes = run_until_finished(queue).await;
    assert!(outcomes.len() > 3, "{outcomes:?}");
    assert!(
        outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| matches!(o, ExecutionOutcome::Waiting(_))),
        "{outcomes:?}"
    );
    let ExecutionOutcome::Done(id) = outcomes[outcomes.len() - 1] else {
        panic!("{outcomes:?}")
    };
    let job = queue.store().get_job(id).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1, "the waits were not attempts");
    let delivered = replier.0.lock().unwrap().clone();
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert_eq!(
        delivered[0],
        "delayed:FullStory is unavailable right now. replaydesk keeps trying: the answer will follow here when it is back."
    );
    assert_eq!(delivered[1], "sessions:1");
}

#[tokio::test]
async fn a_rejected_key_is_explained_politely_and_not_retried() {
    let (app, replier) = app_with(5).await;
    let queue = &app.queue;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&app.fullstory)
        .await;
    enqueue_lookup(queue, "test:badkey").await;
    assert!(matches!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(_)
    ));
    let delivered = replier.0.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1);
    assert!(
        delivered[0].starts_with("failed:replaydesk cannot read sessions from FullStory"),
        "{delivered:?}"
    );
    assert!(
        delivered[0].contains("replaydesk jobs retry"),
        "{delivered:?}"
    );
}

#[tokio::test]
async fn an_outage_never_makes_a_job_dead_however_few_attempts_it_has() {
    let (app, replier) = app_with(2).await;
    let queue = &app.queue;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&app.fullstory)
        .await;
    enqueue_lookup(queue, "test:dead").await;
    let mut waits = 0;
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while waits < 5 {
        match queue.try_execute_one("w").await.unwrap() {
            ExecutionOutcome::Waiting(_) => waits += 1,
            ExecutionOutcome::EmptyQueue => {
                assert!(std::time::Instant::now() < give_up);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => panic!("{other:?}"),
        }
    }
    let job = queue.store().list_jobs(None, 1).await.unwrap().remove(0);
    assert_eq!(job.state, replaydesk::store::JobState::Queued);
    assert_eq!(job.attempts, 0);
    assert_eq!(job.waiting_on.as_deref(), Some("fullstory"));
    let delivered = replier.0.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "told once: {delivered:?}");
    assert!(delivered[0].starts_with("delayed:"));
}
