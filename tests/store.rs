//! Store primitives beyond the queue's own suite (`tests/queue.rs`), on both backends:
//! - item claims (`SqlStore::claim_items` / `claimed_items`): the primitive behind "a Zendesk ticket never
//!   shows the same session twice" and the per-ticket content dedupe;
//! - erasure's scrub (`scrub_payloads_mentioning`): exactly the erased customer, in every encoded form,
//!   never another erasure's job; retention scrubbing dead jobs too;
//! - erasure tombstones (`bury`, `buried`) and an operator's cancellation (`claim_job`,
//!   `mark_cancelled`), both of migration 7.
//!
//! Every test body runs as `<name>::sqlite` (a fresh file) and `<name>::postgres` (a fresh schema in the
//! database at `REPLAYDESK_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`,
//! dropped afterwards), as in `tests/queue.rs`. The postgres variants never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{future::Future, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use replaydesk::identity::CustomerEmail;
use replaydesk::store::{
    self, EffectState, ItemClaim, JobState, Ledgering, NewJob, SqlStore, StoreOptions, TriedEffect,
};
use serde_json::json;

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

fn postgres_url() -> String {
    std::env::var("REPLAYDESK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Where a fresh database of `backend` is: a file in `dir`, or a new schema of the test PostgreSQL.
fn fresh_database(backend: Backend, dir: &tempfile::TempDir) -> (String, StoreOptions) {
    match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("test.db").display()),
            StoreOptions::default(),
        ),
        Backend::Postgres => (
            postgres_url(),
            StoreOptions {
                pg_schema: Some(format!("t_{}", uuid::Uuid::new_v4().simple())),
                ..StoreOptions::default()
            },
        ),
    }
}

/// Drops the PostgreSQL schema of `options`, if it has one.
async fn drop_schema(url: &str, options: &StoreOptions) {
    if let Some(schema) = &options.pg_schema {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(url).await {
            let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await;
        }
    }
}

/// Opens a fresh store of `backend`, runs `body`, then closes it and drops the PostgreSQL schema.
async fn run_test<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Arc<SqlStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let (url, options) = fresh_database(backend, &dir);
    let store = store::open_with(&url, options.clone())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "the test store at {} could not be opened: {error:#} (start PostgreSQL or set \
                 REPLAYDESK_TEST_POSTGRES_URL; the postgres variants never skip)",
                store::redact_url(&url)
            )
        });
    let outcome = tokio::spawn(body(store.clone())).await;
    store.close().await;
    drop_schema(&url, &options).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `both_backends!(name, …)`: each `async fn name(store)` as the tests `name::sqlite` and
/// `name::postgres`, run by `run_test`; `both_backends!(runner: name, …)` runs them by `runner`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        both_backends!(run_test: $($name),*);
    };
    ($runner:ident: $($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $runner(Backend::Sqlite, super::$name).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $runner(Backend::Postgres, super::$name).await
                }
            }
        )*
    };
}

both_backends!(
    a_claimed_item_stays_with_its_first_owner,
    claiming_again_as_the_same_owner_keeps_the_item_and_its_time,
    a_lapsing_claim_can_be_taken_over_only_after_it_is_stale,
    scopes_are_independent_and_listed_oldest_first,
    concurrent_claimers_split_the_items_without_overlap,
    an_erasure_scrubs_exactly_its_customer_in_every_encoded_form,
    an_erasure_never_scrubs_another_erasure,
    retention_scrubs_dead_jobs_too,
    a_tombstone_is_kept_until_it_expires_and_a_later_erasure_extends_it,
    an_operator_holds_a_waiting_job_cancels_it_and_may_retry_it,
    retention_drops_one_time_marks_but_keeps_every_other_claim,
    a_claim_moves_a_jobs_ledgering_on_and_a_settled_outcome_puts_it_back,
    a_claim_takes_the_earliest_due_job_whether_queued_or_its_lease_lapsed,
);

fn email(text: &str) -> CustomerEmail {
    CustomerEmail::parse(text).unwrap()
}

/// Enqueues a job of `kind` with `payload`; its id.
async fn job(store: &Arc<SqlStore>, kind: &str, payload: serde_json::Value) -> i64 {
    let key = format!("test:{}", uuid::Uuid::new_v4());
    store
        .enqueue(&key, NewJob::new(kind, payload), Utc::now())
        .await
        .unwrap()
        .job_id
}

async fn payload(store: &Arc<SqlStore>, id: i64) -> serde_json::Value {
    store.get_job(id).await.unwrap().unwrap().payload
}

async fn an_erasure_scrubs_exactly_its_customer_in_every_encoded_form(store: Arc<SqlStore>) {
    let plain = job(
        &store,
        "lookup",
        json!({"identities":[{"email":"Bob@X-Corp.example"}]}),
    )
    .await;
    let entity = job(
        &store,
        "zendesk.ticket",
        json!({"comment":"mail bob&#64;x-corp.example"}),
    )
    .await;
    let mailto = job(
        &store,
        "slack.mention",
        json!({"text":"<mailto:bob%40x-corp.example|me>"}),
    )
    .await;
    // Not bob: a longer local part, another domain, and an address `_` would match as a LIKE wildcard.
    let alice = job(
        &store,
        "lookup",
        json!({"identities":[{"email":"alice.bob@x-corp.example"}]}),
    )
    .await;
    let other_domain = job(
        &store,
        "lookup",
        json!({"identities":[{"email":"bob@y-corp.example"}]}),
    )
    .await;
    let wildcard = job(
        &store,
        "lookup",
        json!({"identities":[{"email":"b_b@x-corp.example"}]}),
    )
    .await;

    let bob = email("bob@x-corp.example");
    assert_eq!(store.count_payloads_mentioning(&bob).await.unwrap(), 3);
    let n = store
        .scrub_payloads_mentioning(&bob, "privacy.erase", None, Utc::now())
        .await
        .unwrap();
    assert_eq!(n, 3);
    for id in [plain, entity, mailto] {
        assert_eq!(
            payload(&store, id).await,
            serde_json::Value::Null,
            "job {id}"
        );
    }
    for id in [alice, other_domain, wildcard] {
        assert_ne!(
            payload(&store, id).await,
            serde_json::Value::Null,
            "job {id}"
        );
    }
    assert_eq!(store.count_payloads_mentioning(&bob).await.unwrap(), 0);

    // `_` is an ordinary character: erasing b_b touches b_b only.
    let n = store
        .scrub_payloads_mentioning(
            &email("b_b@x-corp.example"),
            "privacy.erase",
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(payload(&store, wildcard).await, serde_json::Value::Null);
    assert_ne!(payload(&store, alice).await, serde_json::Value::Null);
}

async fn an_erasure_never_scrubs_another_erasure(store: Arc<SqlStore>) {
    // failbob's erasure is pending; bob's erasure (another job, same address as a third) runs.
    let failbob = job(
        &store,
        "privacy.erase",
        json!({"email":"failbob@y-corp.example"}),
    )
    .await;
    let earlier = job(
        &store,
        "privacy.erase",
        json!({"email":"bob@y-corp.example"}),
    )
    .await;
    let own = job(
        &store,
        "privacy.erase",
        json!({"email":"bob@y-corp.example"}),
    )
    .await;
    let lookup = job(
        &store,
        "lookup",
        json!({"identities":[{"email":"bob@y-corp.example"}]}),
    )
    .await;
    let bob = email("bob@y-corp.example");

    let n = store
        .scrub_payloads_mentioning(&bob, "privacy.erase", None, Utc::now())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(payload(&store, lookup).await, serde_json::Value::Null);
    for id in [failbob, earlier, own] {
        assert_ne!(
            payload(&store, id).await,
            serde_json::Value::Null,
            "erasure job {id}"
        );
    }
    // The erasure scrubs itself last, and nothing else of its kind.
    let n = store
        .scrub_payloads_mentioning(&bob, "privacy.erase", Some(own), Utc::now())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(payload(&store, own).await, serde_json::Value::Null);
    assert_ne!(payload(&store, earlier).await, serde_json::Value::Null);
    assert_eq!(
        payload(&store, failbob).await["email"],
        "failbob@y-corp.example"
    );
}

async fn retention_scrubs_dead_jobs_too(store: Arc<SqlStore>) {
    let then = Utc::now() - Duration::days(10);
    let id = store
        .enqueue(
            "test:dead",
            NewJob::new(
                "lookup",
                json!({"identities":[{"email":"carol@corp.example"}],"response_url":"https://hooks.slack.com/x"}),
            ),
            then,
        )
        .await
        .unwrap()
        .job_id;
    let claimed = store
        .claim("w", then + Duration::seconds(30), then)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id);
    assert!(
        store
            .mark_dead(id, "w", "refused for carol@corp.example", then)
            .await
            .unwrap()
    );
    let n = store
        .purge_done(Utc::now() - Duration::days(7), Utc::now())
        .await
        .unwrap();
    assert_eq!(n, 1);
    let dead = store.get_job(id).await.unwrap().unwrap();
    assert_eq!(dead.payload, serde_json::Value::Null);
    assert_eq!(dead.last_error, None);
    assert_eq!(
        store
            .count_payloads_mentioning(&email("carol@corp.example"))
            .await
            .unwrap(),
        0
    );
    // Nothing is left to run: a scrubbed job is not queued again, alone or in bulk.
    assert!(!store.retry_dead(id, Utc::now()).await.unwrap());
    assert_eq!(store.retry_all_dead(Utc::now()).await.unwrap(), 0);
}

fn items(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn owners(claims: &[ItemClaim]) -> Vec<(&str, &str)> {
    claims
        .iter()
        .map(|c| (c.item.as_str(), c.owner.as_str()))
        .collect()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
}

async fn a_claimed_item_stays_with_its_first_owner(store: Arc<SqlStore>) {
    let scope = "zendesk:ticket:1";
    let first = store
        .claim_items(
            scope,
            "job:1",
            &items(&["session:a", "session:b"]),
            None,
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(
        owners(&first),
        [("session:a", "job:1"), ("session:b", "job:1")]
    );
    let second = store
        .claim_items(
            scope,
            "job:2",
            &items(&["session:b", "session:c"]),
            None,
            at(10),
        )
        .await
        .unwrap();
    assert_eq!(
        owners(&second),
        [("session:b", "job:1"), ("session:c", "job:2")]
    );
    assert_eq!(second[0].claimed_at, at(0));
}

async fn claiming_again_as_the_same_owner_keeps_the_item_and_its_time(store: Arc<SqlStore>) {
    let scope = "zendesk:ticket:2";
    store
        .claim_items(scope, "job:7", &items(&["session:a"]), None, at(0))
        .await
        .unwrap();
    let again = store
        .claim_items(
            scope,
            "job:7",
            &items(&["session:a"]),
            Some(at(50)),
            at(100),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        [ItemClaim {
            item: "session:a".into(),
            owner: "job:7".into(),
            claimed_at: at(0),
        }]
    );
}

async fn a_lapsing_claim_can_be_taken_over_only_after_it_is_stale(store: Arc<SqlStore>) {
    let scope = "zendesk:ticket:3";
    let window = Duration::minutes(5);
    let now = at(0);
    store
        .claim_items(
            scope,
            "inv:1",
            &items(&["delivery:h"]),
            Some(now - window),
            now,
        )
        .await
        .unwrap();
    let soon = at(60_000);
    let refused = store
        .claim_items(
            scope,
            "inv:2",
            &items(&["delivery:h"]),
            Some(soon - window),
            soon,
        )
        .await
        .unwrap();
    assert_eq!(owners(&refused), [("delivery:h", "inv:1")]);
    let later = at(301_000);
    let taken = store
        .claim_items(
            scope,
            "inv:3",
            &items(&["delivery:h"]),
            Some(later - window),
            later,
        )
        .await
        .unwrap();
    assert_eq!(owners(&taken), [("delivery:h", "inv:3")]);
    assert_eq!(taken[0].claimed_at, later);
    // Without a stale bound a claim never lapses.
    let kept = store
        .claim_items(
            scope,
            "inv:4",
            &items(&["delivery:h"]),
            None,
            at(10_000_000),
        )
        .await
        .unwrap();
    assert_eq!(owners(&kept), [("delivery:h", "inv:3")]);
}

async fn scopes_are_independent_and_listed_oldest_first(store: Arc<SqlStore>) {
    store
        .claim_items(
            "zendesk:ticket:4",
            "job:1",
            &items(&["session:b"]),
            None,
            at(5),
        )
        .await
        .unwrap();
    store
        .claim_items(
            "zendesk:ticket:4",
            "job:2",
            &items(&["session:a"]),
            None,
            at(9),
        )
        .await
        .unwrap();
    store
        .claim_items(
            "zendesk:ticket:5",
            "job:3",
            &items(&["session:b"]),
            None,
            at(1),
        )
        .await
        .unwrap();
    let four = store.claimed_items("zendesk:ticket:4").await.unwrap();
    assert_eq!(
        owners(&four),
        [("session:b", "job:1"), ("session:a", "job:2")]
    );
    let five = store.claimed_items("zendesk:ticket:5").await.unwrap();
    assert_eq!(owners(&five), [("session:b", "job:3")]);
    assert!(
        store
            .claimed_items("zendesk:ticket:6")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_claimers_split_the_items_without_overlap(store: Arc<SqlStore>) {
    let all: Vec<String> = (0..20).map(|i| format!("session:{i}")).collect();
    let tasks: Vec<_> = (0..4)
        .map(|worker| {
            let store = store.clone();
            let all = all.clone();
            tokio::spawn(async move {
                let owner = format!("job:{worker}");
                let claims = store
                    .claim_items("zendesk:ticket:9", &owner, &all, None, Utc::now())
                    .await
                    .unwrap();
                claims
                    .into_iter()
                    .filter(|c| c.owner == owner)
                    .map(|c| c.item)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.unwrap());
    }
    won.sort();
    let mut expected = all.clone();
    expected.sort();
    assert_eq!(won, expected, "every item is held by exactly one claimer");
}

async fn a_tombstone_is_kept_until_it_expires_and_a_later_erasure_extends_it(store: Arc<SqlStore>) {
    let now = at(1_000_000_000);
    let hashes = items(&["h-jane", "h-bob", "h-carol"]);
    store
        .bury("h-jane", now + Duration::days(30), now)
        .await
        .unwrap();
    store
        .bury("h-bob", now + Duration::days(1), now)
        .await
        .unwrap();
    assert_eq!(
        store.buried(&hashes, now).await.unwrap(),
        ["h-jane", "h-bob"]
    );
    // An earlier expiry never shortens a kept one; a later one extends it.
    store
        .bury("h-jane", now + Duration::days(2), now)
        .await
        .unwrap();
    let later = now + Duration::days(3);
    assert_eq!(store.buried(&hashes, later).await.unwrap(), ["h-jane"]);
    store
        .bury("h-jane", later + Duration::days(60), later)
        .await
        .unwrap();
    let after = now + Duration::days(40);
    assert_eq!(store.buried(&hashes, after).await.unwrap(), ["h-jane"]);
    assert!(
        store
            .buried(&hashes, later + Duration::days(61))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The claim looks up the first queued job and the first lapsed one on their own indexes and takes
/// the earlier by `run_after`, then id: the order one condition over both gave.
async fn a_claim_takes_the_earliest_due_job_whether_queued_or_its_lease_lapsed(
    store: Arc<SqlStore>,
) {
    let t0 = Utc::now() - Duration::minutes(10);
    let at = |minutes: i64| t0 + Duration::minutes(minutes);
    let mut ids = Vec::new();
    for minute in 0..3 {
        let key = format!("test:order-{minute}");
        let new = NewJob::new("note", json!({}));
        ids.push(store.enqueue(&key, new, at(minute)).await.unwrap().job_id);
    }
    // The first job's worker dies: its lease (to minute 3) lapses; it keeps its `run_after` (0).
    let first = store.claim("dead", at(3), at(0)).await.unwrap().unwrap();
    assert_eq!(first.id, ids[0]);
    // Not lapsed yet at minute 1: the next queued one.
    let next = store.claim("w1", at(9), at(1)).await.unwrap().unwrap();
    assert_eq!(next.id, ids[1]);
    // Lapsed at minute 5: due since minute 0, before the queued job due since minute 2.
    let lapsed = store.claim("w2", at(9), at(5)).await.unwrap().unwrap();
    assert_eq!((lapsed.id, lapsed.attempts), (ids[0], 2));
    let last = store.claim("w3", at(9), at(5)).await.unwrap().unwrap();
    assert_eq!(last.id, ids[2]);
    assert!(store.claim("w4", at(9), at(5)).await.unwrap().is_none());
}

/// `queue/ledger.rs`, "First attempts write no intent": which attempt of a job is a first run is
/// decided by the claim, in its own statement, and by the outcome of a first run.
async fn a_claim_moves_a_jobs_ledgering_on_and_a_settled_outcome_puts_it_back(
    store: Arc<SqlStore>,
) {
    // Claims a minute ahead: every job `job` stores (now) is due.
    let now = Utc::now() + Duration::minutes(1);
    let lease = now + Duration::seconds(30);
    let ledgering = |id: i64| {
        let store = store.clone();
        async move { store.get_job(id).await.unwrap().unwrap().ledgering }
    };
    let wait = |error| replaydesk::store::Wait {
        upstream: Some("fullstory"),
        until: now,
        error,
    };
    let id = job(&store, "note", json!({})).await;
    assert_eq!(
        ledgering(id).await,
        Ledgering::Unrun,
        "stored: nothing done"
    );

    // A first run's recorded outcome leaves the job unrun (the worker recorded what it tried
    // first); the next claim is a first run again while the ledger has no rows for the job, and
    // follows them with intents once it has.
    let claimed = store.claim("w1", lease, now).await.unwrap().unwrap();
    assert_eq!((claimed.id, claimed.ledgering), (id, Ledgering::FirstRun));
    assert!(store.wait_later(id, "w1", wait("down"), now).await.unwrap());
    assert_eq!(ledgering(id).await, Ledgering::Unrun);
    let claimed = store.claim("w2", lease, now).await.unwrap().unwrap();
    assert_eq!(claimed.ledgering, Ledgering::FirstRun);
    let told = TriedEffect {
        name: "late".into(),
        marker: "rd-told".into(),
        external_id: Some("msg-1".into()),
    };
    store
        .record_tried_effects(id, std::slice::from_ref(&told), now)
        .await
        .unwrap();
    assert!(store.wait_later(id, "w2", wait("down"), now).await.unwrap());
    assert_eq!(ledgering(id).await, Ledgering::Unrun);
    let claimed = store.claim("w3", lease, now).await.unwrap().unwrap();
    assert_eq!(claimed.ledgering, Ledgering::Intents);
    assert!(store.release(id, "w3", now).await.unwrap());
    assert_eq!(
        ledgering(id).await,
        Ledgering::Intents,
        "intents from then on"
    );
    let claimed = store.claim("w3", lease, now).await.unwrap().unwrap();
    assert_eq!(claimed.ledgering, Ledgering::Intents);
    assert!(store.complete(id, "w3", now).await.unwrap());

    // A first run whose worker died (no outcome): the claim after its lease runs out looks first.
    let died = job(&store, "note", json!({})).await;
    let claimed = store.claim("w4", lease, now).await.unwrap().unwrap();
    assert_eq!((claimed.id, claimed.ledgering), (died, Ledgering::FirstRun));
    let later = lease + Duration::seconds(1);
    let claimed = store
        .claim("w5", later + Duration::seconds(30), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id, claimed.ledgering),
        (died, Ledgering::AfterFirstRun)
    );
    assert!(store.complete(died, "w5", later).await.unwrap());

    // Retries, shutdown releases and ends settle a first run too.
    let retried = job(&store, "note", json!({})).await;
    store.claim("w6", lease, now).await.unwrap().unwrap();
    assert!(
        store
            .retry_later(retried, "w6", now, "failed", now)
            .await
            .unwrap()
    );
    assert_eq!(ledgering(retried).await, Ledgering::Unrun);
    store.claim("w7", lease, now).await.unwrap().unwrap();
    assert!(store.release(retried, "w7", now).await.unwrap());
    assert_eq!(ledgering(retried).await, Ledgering::Unrun);
    store.claim("w7", lease, now).await.unwrap().unwrap();
    assert!(
        store
            .mark_dead(retried, "w7", "gave up", now)
            .await
            .unwrap()
    );
    assert_eq!(ledgering(retried).await, Ledgering::Unrun);

    // What a first run tried without success is an intent under its marker; the same effect done
    // later in that attempt (by `on_dead`) turns it done; another marker's row stays as it is.
    let tried = job(&store, "note", json!({})).await;
    let mut note = TriedEffect {
        name: "note".into(),
        marker: "rd-first".into(),
        external_id: None,
    };
    store
        .record_tried_effects(tried, std::slice::from_ref(&note), now)
        .await
        .unwrap();
    let row = store.effect(tried, "note").await.unwrap().unwrap();
    assert_eq!((row.state, row.external_id), (EffectState::Intent, None));
    note.external_id = Some("n-1".into());
    let other = TriedEffect {
        marker: "rd-other".into(),
        external_id: Some("n-2".into()),
        ..note.clone()
    };
    store
        .record_tried_effects(tried, &[note, other], now)
        .await
        .unwrap();
    let row = store.effect(tried, "note").await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.marker.as_str(), row.external_id.as_deref()),
        (EffectState::Done, "rd-first", Some("n-1"))
    );
    let claimed = store.claim("w9", lease, now).await.unwrap().unwrap();
    assert_eq!((claimed.id, claimed.ledgering), (tried, Ledgering::Intents));
    assert!(store.complete(tried, "w9", now).await.unwrap());

    // An unrun job the ledger has rows for (an older binary ran it with intents, in a rolling
    // upgrade) is claimed with intents: its rows are the ones to follow.
    let ran_by_older = job(&store, "note", json!({})).await;
    store
        .record_effect_intent(ran_by_older, "note", "rd-older-marker", now)
        .await
        .unwrap();
    let claimed = store.claim("w8", lease, now).await.unwrap().unwrap();
    assert_eq!(
        (claimed.id, claimed.ledgering),
        (ran_by_older, Ledgering::Intents)
    );

    // An operator's hold keeps intents for what runs under it (telling the requester).
    let held = job(&store, "note", json!({})).await;
    let claimed = store
        .claim_job(held, "cli", lease, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.ledgering, Ledgering::Intents);
}

async fn an_operator_holds_a_waiting_job_cancels_it_and_may_retry_it(store: Arc<SqlStore>) {
    let then = Utc::now() - Duration::days(10);
    let id = store
        .enqueue(
            "test:waiting",
            NewJob::new(
                "lookup",
                json!({"identities":[{"email":"dave@corp.example"}]}),
            ),
            then,
        )
        .await
        .unwrap()
        .job_id;
    // A worker's attempt met an outage: the job waits, due far ahead.
    store
        .claim("w", then + Duration::seconds(30), then)
        .await
        .unwrap()
        .unwrap();
    let wait = replaydesk::store::Wait {
        upstream: Some("fullstory"),
        until: then + Duration::days(365),
        error: "waiting: fullstory unavailable",
    };
    assert!(store.wait_later(id, "w", wait, then).await.unwrap());
    // An operator's hold: not due, but claimed; no attempt counted; nobody else can take it.
    let held = store
        .claim_job(id, "cli", then + Duration::seconds(30), then)
        .await
        .unwrap()
        .expect("a queued job can be held");
    assert_eq!(held.attempts, 0);
    assert!(
        store
            .claim("w2", then + Duration::seconds(30), then)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .claim_job(id, "cli-2", then + Duration::seconds(30), then)
            .await
            .unwrap()
            .is_none(),
        "a held job is not held twice"
    );
    assert!(
        !store
            .mark_cancelled(id, "cli-2", "cancelled", then)
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_cancelled(id, "cli", "cancelled by an operator", then)
            .await
            .unwrap()
    );
    let cancelled = store.get_job(id).await.unwrap().unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(cancelled.waiting_on, None);
    assert!(
        store
            .count_by_state()
            .await
            .unwrap()
            .contains(&(JobState::Cancelled, 1))
    );
    assert_eq!(
        store
            .list_jobs(Some(JobState::Cancelled), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_job(id, "cli", then, then)
            .await
            .unwrap()
            .is_none(),
        "ended"
    );
    // It can be taken back, like an expired job; and retention scrubs it like one.
    assert!(store.retry_dead(id, then).await.unwrap());
    assert_eq!(
        store.get_job(id).await.unwrap().unwrap().state,
        JobState::Queued
    );
    store
        .claim_job(id, "cli", then + Duration::seconds(30), then)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .mark_cancelled(id, "cli", "cancelled again", then)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .purge_done(Utc::now() - Duration::days(7), Utc::now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(payload(&store, id).await, serde_json::Value::Null);
}

async fn retention_drops_one_time_marks_but_keeps_every_other_claim(store: Arc<SqlStore>) {
    for scope in ["zendesk:sidebar:once", "zendesk:ticket:4"] {
        store
            .claim_items(scope, "o1", &items(&["jwt:old"]), None, at(0))
            .await
            .unwrap();
        store
            .claim_items(scope, "o2", &items(&["jwt:new"]), None, at(100))
            .await
            .unwrap();
    }
    store.purge_done(at(50), at(200)).await.unwrap();
    let once = store.claimed_items("zendesk:sidebar:once").await.unwrap();
    assert_eq!(owners(&once), [("jwt:new", "o2")]);
    let ticket = store.claimed_items("zendesk:ticket:4").await.unwrap();
    assert_eq!(owners(&ticket), [("jwt:old", "o1"), ("jwt:new", "o2")]);
}

// ---------------------------------------------------------------- migrations

/// The migrations replaydesk's runner before sqlx's knew (version, name, file), as it ran them.
const BEFORE_SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "queue",
        include_str!("../src/store/migrations/sqlite/0001_queue.sql"),
    ),
    (
        2,
        "zendesk",
        include_str!("../src/store/migrations/sqlite/0002_zendesk.sql"),
    ),
    (
        3,
        "privacy",
        include_str!("../src/store/migrations/sqlite/0003_privacy.sql"),
    ),
    (
        4,
        "request_id",
        include_str!("../src/store/migrations/sqlite/0004_request_id.sql"),
    ),
    (
        5,
        "outages",
        include_str!("../src/store/migrations/sqlite/0005_outages.sql"),
    ),
    (
        6,
        "erasure_announcements",
        include_str!("../src/store/migrations/sqlite/0006_erasure_announcements.sql"),
    ),
];
const BEFORE_POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "queue",
        include_str!("../src/store/migrations/postgres/0001_queue.sql"),
    ),
    (
        2,
        "zendesk",
        include_str!("../src/store/migrations/postgres/0002_zendesk.sql"),
    ),
    (
        3,
        "privacy",
        include_str!("../src/store/migrations/postgres/0003_privacy.sql"),
    ),
    (
        4,
        "request_id",
        include_str!("../src/store/migrations/postgres/0004_request_id.sql"),
    ),
    (
        5,
        "outages",
        include_str!("../src/store/migrations/postgres/0005_outages.sql"),
    ),
];

/// Rows of every table, as a binary of that time wrote them (ids 1 to 3 for the jobs).
const OLD_ROWS: &str = "\
    INSERT INTO jobs (kind, payload, delivery_key, state, attempts, run_after, lock_owner, locked_until, \
        last_error, enqueued_at, updated_at, finished_at, payload_purged_at, request_id, waiting_on, \
        retried_at) VALUES \
        ('zendesk.ticket', '{\"ticket_id\":7}', 'zendesk:7', 'queued', 0, 1000, NULL, NULL, NULL, 1000, \
         1000, NULL, NULL, 'req-7', NULL, NULL), \
        ('slack.lookup', '{}', 'slack:1', 'dead', 5, 1000, NULL, NULL, 'gave up', 900, 2000, 2000, 2500, \
         NULL, NULL, NULL), \
        ('discord.lookup', '{\"user\":3}', 'discord:1', 'expired', 1, 1000, NULL, NULL, 'deadline', 900, \
         2000, 2000, NULL, NULL, 'fullstory', 1500); \
    INSERT INTO deliveries (delivery_key, job_id, received_at) VALUES \
        ('zendesk:7', 1, 1000), ('slack:1', 2, 900), ('discord:1', 3, 900); \
    INSERT INTO effects (job_id, name, marker, external_id, state, created_at, updated_at) VALUES \
        (1, 'zendesk.note', 'm1', 'note-9', 'done', 1100, 1200); \
    INSERT INTO item_claims (scope, item, owner, claimed_at) VALUES \
        ('zendesk:ticket:7', 'session:abc', 'job:1', 1100); \
    INSERT INTO audit (at, action, platform, tenant, actor, place, identities, sessions, detail) VALUES \
        (1000, 'lookup', 'zendesk', 'acme', 'agent:2', 'ticket:7', '[\"h1\"]', 2, NULL); \
    INSERT INTO settings (key, value) VALUES ('audit_key', 'k3y');";

/// A connection to a test database beside the store's, for what the store does not do: migrate as
/// before, write rows as an old binary did, read the schema back.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// `$body` with `$conn` bound to the concrete connection (once per backend).
macro_rules! on_raw {
    ($raw:expr, |$conn:ident| $body:expr) => {
        match $raw {
            Raw::Sqlite($conn) => $body,
            Raw::Postgres($conn) => $body,
        }
    };
}

impl Raw {
    async fn execute(&mut self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        on_raw!(self, |conn| {
            sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap();
        })
    }

    async fn texts(&mut self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        on_raw!(self, |conn| sqlx::query_scalar(sql)
            .fetch_all(&mut *conn)
            .await
            .unwrap())
    }

    async fn close(self) {
        use sqlx::Connection;
        on_raw!(self, |conn| conn.close().await.unwrap())
    }
}

/// A database of `backend` that no store has opened yet, and how the store opens it.
struct Unopened {
    backend: Backend,
    url: String,
    options: StoreOptions,
    _dir: tempfile::TempDir,
}

impl Unopened {
    async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (url, options) = fresh_database(backend, &dir);
        Self {
            backend,
            url,
            options,
            _dir: dir,
        }
    }

    async fn raw(&self) -> Raw {
        use sqlx::{ConnectOptions, Connection};
        match (&self.backend, &self.options.pg_schema) {
            (Backend::Sqlite, _) => {
                let path = self.url.trim_start_matches("sqlite://");
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true);
                Raw::Sqlite(options.connect().await.unwrap())
            }
            (Backend::Postgres, schema) => {
                let schema = schema.as_deref().unwrap();
                let conn = sqlx::PgConnection::connect(&self.url)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e} (never skipped)", self.url));
                let mut raw = Raw::Postgres(conn);
                raw.execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
                ))
                .await;
                raw
            }
        }
    }

    async fn open(&self) -> anyhow::Result<Arc<SqlStore>> {
        store::open_with(&self.url, self.options.clone()).await
    }

    /// replaydesk's migration runner before sqlx's (e052ed3's `SqlStore::migrate`), frozen: in one
    /// transaction (`BEGIN IMMEDIATE` on SQLite; its PostgreSQL advisory lock left out, one process
    /// here), `schema_migrations` created if missing, each migration it does not list run and listed
    /// with its name and the time in unix ms.
    async fn migrate_as_before(&self, raw: &mut Raw) {
        let (begin, migrations) = match self.backend {
            Backend::Sqlite => ("BEGIN IMMEDIATE", BEFORE_SQLITE),
            Backend::Postgres => ("BEGIN", BEFORE_POSTGRES),
        };
        raw.execute(begin).await;
        raw.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
             name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .await;
        let applied = raw
            .texts("SELECT CAST(version AS TEXT) FROM schema_migrations")
            .await;
        for (version, name, sql) in migrations {
            if applied.contains(&version.to_string()) {
                continue;
            }
            raw.execute(sql).await;
            raw.execute(&format!(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ({version}, '{name}', {})",
                Utc::now().timestamp_millis()
            ))
            .await;
        }
        raw.execute("COMMIT").await;
    }

    /// Every table but sqlx's: its definition (columns, constraints, indexes) and its rows, as text.
    async fn snapshot(&self, raw: &mut Raw) -> Vec<String> {
        let (schema, tables) = match self.backend {
            Backend::Sqlite => (
                "SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master \
                 WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> '_sqlx_migrations' ORDER BY 1",
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name <> '_sqlx_migrations' ORDER BY 1",
            ),
            Backend::Postgres => (
                "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
                     || ' ' || COALESCE(column_default, '') FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' \
                 UNION ALL SELECT indexdef FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename <> '_sqlx_migrations' \
                 UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE connamespace = current_schema()::regnamespace AND conname NOT LIKE '\\_sqlx%' \
                 ORDER BY 1",
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' ORDER BY 1",
            ),
        };
        let mut out = raw.texts(schema).await;
        for table in raw.texts(tables).await {
            let rows = match self.backend {
                Backend::Sqlite => {
                    let columns = raw
                        .texts(&format!(
                            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
                        ))
                        .await;
                    let quoted: Vec<String> =
                        columns.iter().map(|c| format!("quote(\"{c}\")")).collect();
                    format!(
                        "SELECT '{table}: ' || {} FROM \"{table}\" ORDER BY 1",
                        quoted.join(" || ', ' || ")
                    )
                }
                Backend::Postgres => {
                    format!("SELECT '{table}: ' || t::text FROM \"{table}\" AS t ORDER BY 1")
                }
            };
            out.extend(raw.texts(&rows).await);
        }
        out
    }

    /// `_sqlx_migrations` as `version description success checksum` (checksum in lowercase hex).
    async fn recorded(&self, raw: &mut Raw) -> Vec<String> {
        let hex = match self.backend {
            Backend::Sqlite => "lower(hex(checksum))",
            Backend::Postgres => "encode(checksum, 'hex')",
        };
        raw.texts(&format!(
            "SELECT CAST(version AS TEXT) || ' ' || description || ' ' || \
             CASE WHEN success THEN 'ok' ELSE 'failed' END || ' ' || {hex} \
             FROM _sqlx_migrations ORDER BY version"
        ))
        .await
    }

    /// What sqlx's own reading of the migrations folder (as `sqlx migrate info --source` reads it)
    /// expects `_sqlx_migrations` to say, every migration applied.
    async fn expected_records(&self) -> Vec<String> {
        let folder = match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/store/migrations")
            .join(folder);
        let migrator = sqlx::migrate::Migrator::new(source).await.unwrap();
        migrator
            .iter()
            .map(|m| {
                format!(
                    "{} {} ok {}",
                    m.version,
                    m.description,
                    hex::encode(&*m.checksum)
                )
            })
            .collect()
    }
}

/// Runs `body` on an unopened database of `backend`, then drops its PostgreSQL schema.
async fn with_unopened<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Arc<Unopened>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = Arc::new(Unopened::new(backend).await);
    let outcome = tokio::spawn(body(db.clone())).await;
    drop_schema(&db.url, &db.options).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

both_backends!(
    with_unopened:
    a_store_migrated_by_the_runner_before_sqlx_upgrades_in_place_keeping_every_table_row_and_setting,
    a_new_store_records_every_migration_as_sqlx_migrate_reads_them_and_no_schema_migrations,
    a_store_whose_applied_migration_was_edited_refuses_to_open,
);

async fn a_store_migrated_by_the_runner_before_sqlx_upgrades_in_place_keeping_every_table_row_and_setting(
    db: Arc<Unopened>,
) {
    let mut raw = db.raw().await;
    db.migrate_as_before(&mut raw).await;
    raw.execute(OLD_ROWS).await;
    if matches!(db.backend, Backend::Sqlite) {
        raw.execute("INSERT INTO erasure_announcements (at, payload) VALUES (1000, 'h1')")
            .await;
    }
    let before = db.snapshot(&mut raw).await;
    let rows_of = |table: &str| {
        let prefix = format!("{table}: ");
        before.iter().filter(|l| l.starts_with(&prefix)).count()
    };
    assert_eq!(
        rows_of("schema_migrations"),
        BEFORE_POSTGRES.len() + usize::from(matches!(db.backend, Backend::Sqlite))
    );
    assert_eq!(
        (rows_of("jobs"), rows_of("deliveries"), rows_of("settings")),
        (3, 3, 1),
        "{before:#?}"
    );
    raw.close().await;

    let store = db.open().await.unwrap();
    let mut raw = db.raw().await;
    // Migrations newer than the old runner's are applied on top (7: the `cancelled` state and the
    // `tombstones` table; 8: the `escalations` table; 10: the Activation counts and shared session
    // data; 11: the jobs' `handed_at`, NULL in every old row; 12: their `ledgering`, 'intents' in
    // every old row); everything the old runner made is as it was.
    let after: Vec<String> = db
        .snapshot(&mut raw)
        .await
        .into_iter()
        .filter(|line| {
            ![
                "tombstones",
                "escalations",
                "activation_",
                "session_data",
                "jobs.handed_at",
                "jobs.ledgering",
            ]
            .iter()
            .any(|new| line.contains(new))
        })
        .map(|line| {
            let line = line
                .replace(", 'cancelled'::text", "")
                .replace(", 'cancelled'", "")
                .replace(
                    "\n, handed_at BIGINT, ledgering TEXT NOT NULL DEFAULT 'intents')",
                    "\n)",
                );
            // The new last columns of a jobs row, NULL and 'intents': `, NULL, 'intents'` (SQLite's
            // dump), `,,intents)` (a record).
            match line.strip_prefix("jobs: ") {
                Some(row) => match (
                    row.strip_suffix(", NULL, 'intents'"),
                    row.strip_suffix(",,intents)"),
                ) {
                    (Some(old), _) => format!("jobs: {old}"),
                    (None, Some(old)) => format!("jobs: {old})"),
                    (None, None) => line,
                },
                None => line,
            }
        })
        .collect();
    assert_eq!(after, before, "every table and row as it was");
    assert_eq!(db.recorded(&mut raw).await, db.expected_records().await);
    raw.close().await;

    // The store reads and extends what the old binary wrote.
    assert_eq!(
        store.get_job(1).await.unwrap().unwrap().payload,
        json!({"ticket_id": 7})
    );
    let again = store
        .enqueue(
            "zendesk:7",
            NewJob::new("zendesk.ticket", json!({})),
            Utc::now(),
        )
        .await
        .unwrap();
    assert!(again.duplicate && again.job_id == 1);
    assert_eq!(
        store.setting_or_insert("audit_key", "new").await.unwrap(),
        "k3y"
    );
    let new = job(&store, "slack.lookup", json!({})).await;
    assert_eq!(new, 4, "ids go on after the old rows");
    store.close().await;

    // Opening again runs nothing twice and changes nothing.
    let mut raw = db.raw().await;
    let recorded = db.recorded(&mut raw).await;
    raw.close().await;
    db.open().await.unwrap().close().await;
    let mut raw = db.raw().await;
    assert_eq!(db.recorded(&mut raw).await, recorded);
    raw.close().await;
}

async fn a_new_store_records_every_migration_as_sqlx_migrate_reads_them_and_no_schema_migrations(
    db: Arc<Unopened>,
) {
    db.open().await.unwrap().close().await;
    let mut raw = db.raw().await;
    assert_eq!(db.recorded(&mut raw).await, db.expected_records().await);
    let snapshot = db.snapshot(&mut raw).await;
    assert!(
        !snapshot.iter().any(|l| l.contains("schema_migrations")),
        "{snapshot:#?}"
    );
    raw.close().await;
}

async fn a_store_whose_applied_migration_was_edited_refuses_to_open(db: Arc<Unopened>) {
    db.open().await.unwrap().close().await;
    let mut raw = db.raw().await;
    raw.execute("UPDATE _sqlx_migrations SET checksum = checksum || checksum WHERE version = 2")
        .await;
    raw.close().await;
    let error = format!("{:#}", db.open().await.err().unwrap());
    assert!(
        error.contains("migration 2 was previously applied but has been modified"),
        "{error}"
    );
}
