//! The FullStory budget shared by replicas through Redis, and erasure reaching every replica's cache.
//!
//! The budget tests run two [`RedisBudget`]s (two replicas, as far as Redis can tell) against a
//! private `redis-server` started by the test, so that it can be stopped and started again; the erasure
//! test runs two replicas of the app on one fresh PostgreSQL database.

use std::{
    net::TcpListener,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

use replaydesk::{
    config::Secret,
    erasure::broadcast,
    identity::{CustomerEmail, Identity},
    outbound::{Budget, RedisBudget, RedisBudgetSettings},
    queue::ExecutionOutcome,
};

use super::helpers::TestApp;

/// A `redis-server` of the test's own on a free port; killed when dropped.
struct PrivateRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl PrivateRedis {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed on every development and CI machine");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.get_multiplexed_async_connection().await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }
}

fn settings(url: &str, org: &str, fail_closed: bool) -> RedisBudgetSettings {
    RedisBudgetSettings {
        redis_url: url.to_owned(),
        org_secret: org.to_owned(),
        per_second: 20,
        burst: 2,
        expected_replicas: 2,
        fail_closed,
        timeout: Duration::from_millis(250),
    }
}

#[tokio::test]
async fn two_replicas_together_stay_within_one_quota() {
    let redis = PrivateRedis::start().await;
    let org = format!("na1.{}", uuid::Uuid::new_v4());
    let replicas = [
        Arc::new(RedisBudget::new(&settings(&redis.url(), &org, false)).unwrap()),
        Arc::new(RedisBudget::new(&settings(&redis.url(), &org, false)).unwrap()),
    ];
    // 30 callers on each replica, all at once: 60 calls against 20/s with a burst of 2.
    let started = Instant::now();
    let mut calls = Vec::new();
    for replica in &replicas {
        for _ in 0..30 {
            let replica = replica.clone();
            calls.push(tokio::spawn(async move {
                replica.acquire().await.unwrap();
                Instant::now()
            }));
        }
    }
    let mut times = Vec::new();
    for call in calls {
        times.push(call.await.unwrap());
    }
    let last = times.iter().max().copied().unwrap();
    let busiest = super::processes::busiest_second(times);
    assert!(
        busiest <= 20 + 2,
        "{busiest} calls allowed within one second"
    );
    assert!(
        last.duration_since(started) >= Duration::from_millis(2_800),
        "60 calls at 20/s (after a burst of 2) take at least 2.9 s"
    );
    assert!(replicas.iter().all(|r| !r.is_degraded()));
}

#[tokio::test]
async fn a_429_seen_by_one_replica_makes_the_other_wait() {
    let redis = PrivateRedis::start().await;
    let org = format!("na1.{}", uuid::Uuid::new_v4());
    let first = RedisBudget::new(&settings(&redis.url(), &org, false)).unwrap();
    let second = RedisBudget::new(&settings(&redis.url(), &org, false)).unwrap();
    assert!(!second.acquire().await.unwrap(), "no wait before the 429");
    first.cool_down(Duration::from_millis(600)).await;
    first.cool_down(Duration::from_millis(100)).await; // shorter: never shortens it
    let started = Instant::now();
    assert!(second.acquire().await.unwrap(), "the other replica waited");
    assert!(started.elapsed() >= Duration::from_millis(400));
    let other_org = RedisBudget::new(&settings(&redis.url(), "eu1.another-org", false)).unwrap();
    assert!(
        !other_org.acquire().await.unwrap(),
        "another organisation's budget is its own"
    );
}

#[tokio::test]
async fn with_redis_stopped_a_replica_uses_its_share_or_refuses_as_configured_then_recovers() {
    let mut redis = PrivateRedis::start().await;
    let org = format!("na1.{}", uuid::Uuid::new_v4());
    let open = RedisBudget::new(&settings(&redis.url(), &org, false)).unwrap();
    let closed = RedisBudget::new(&settings(&redis.url(), &org, true)).unwrap();
    assert!(open.acquire().await.is_ok() && closed.acquire().await.is_ok());
    assert!(!open.is_degraded() && !closed.is_degraded());

    redis.stop().await;
    // Fail open: the local share, 20 / 2 replicas = 10/s with a burst of 1.
    let started = Instant::now();
    for _ in 0..6 {
        open.acquire().await.unwrap();
    }
    assert!(open.is_degraded());
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "6 calls at this replica's share of 10/s take at least 0.5 s"
    );
    // Fail closed: refused, naming the setting.
    let refused = closed.acquire().await.unwrap_err();
    assert!(refused.0.contains("limits.fail_closed"), "{refused}");

    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while open.is_degraded() || closed.acquire().await.is_err() {
        open.acquire().await.unwrap();
        assert!(
            Instant::now() < deadline,
            "the budget never came back to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!closed.is_degraded());
}

#[tokio::test]
async fn an_erasure_on_one_replica_clears_the_cache_of_another() {
    let db = super::processes::FreshDatabase::create().await;
    let a = TestApp::builder()
        .store_url(&db.url)
        // Replicas on PostgreSQL share one audit key (the broadcast names customers by its hash).
        .configure(|c| c.privacy.audit_key = Secret::new("replicas-audit-key"))
        // Without tombstones, B's next lookup reaches FullStory, which shows its cache forgot her
        // (with them, the default, B answers "forgotten" at once: the test below).
        .configure(|c| c.privacy.tombstone_days = 0)
        .start()
        .await;
    let b = TestApp::builder().replica_of(&a).start().await;
    let fullstory = &a.fullstory;
    super::privacy::mount_jane(fullstory).await;
    let listener = broadcast::listen(b.app.clone())
        .await
        .unwrap()
        .expect("PostgreSQL listens");

    let jane = CustomerEmail::parse("jane@acme.com").unwrap();
    let request = b.lookup_request(vec![Identity::Email(jane)]);
    let lists = async || {
        fullstory
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/sessions/v2")
            .count()
    };
    b.lookup.run(&request).await.unwrap();
    b.lookup.run(&request).await.unwrap();
    assert_eq!(
        lists().await,
        1,
        "replica B answers the second lookup from its cache"
    );

    super::privacy::enqueue_erasure(&a).await;
    assert!(matches!(a.run_job().await, ExecutionOutcome::Done(_)));
    assert_eq!(lists().await, 2, "the erasure itself asked FullStory once");

    // B learns of it through PostgreSQL: its next lookup reaches FullStory again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        b.lookup.run(&request).await.unwrap();
        if lists().await == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica B kept serving the erased customer from its cache"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    listener.abort();
    a.store.close().await;
    b.store.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn an_erasure_on_one_replica_is_answered_forgotten_by_another_at_once() {
    let db = super::processes::FreshDatabase::create().await;
    let a = TestApp::builder()
        .store_url(&db.url)
        .configure(|c| c.privacy.audit_key = Secret::new("replicas-audit-key"))
        .start()
        .await;
    let b = TestApp::builder().replica_of(&a).start().await;
    super::privacy::mount_jane(&a.fullstory).await;
    let request = b.lookup_request(vec![Identity::Email(
        CustomerEmail::parse("jane@acme.com").unwrap(),
    )]);
    assert!(
        !b.lookup
            .run(&request)
            .await
            .unwrap()
            .names_a_forgotten_customer()
    );

    super::privacy::enqueue_erasure(&a).await;
    assert!(matches!(a.run_job().await, ExecutionOutcome::Done(_)));
    let calls = a.fullstory.received_requests().await.unwrap().len();
    // The tombstone is in the shared store: B's very next lookup is answered without FullStory.
    let result = b.lookup.run(&request).await.unwrap();
    assert!(result.names_a_forgotten_customer());
    assert_eq!(result.session_count(), 0);
    assert_eq!(a.fullstory.received_requests().await.unwrap().len(), calls);
    a.store.close().await;
    b.store.close().await;
    db.drop_now().await;
}
