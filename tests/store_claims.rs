//! Item claims (`Store::claim_items` / `claimed_items`), on both backends: the store primitive behind
//! "a Zendesk ticket never shows the same session twice" and the per-ticket content dedupe.
//!
//! Every test body runs as `<name>::sqlite` (a fresh file) and `<name>::postgres` (a fresh schema in the
//! database at `REPLAYDESK_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`,
//! dropped afterwards), as in `tests/queue.rs`. The postgres variants never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{future::Future, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use replaydesk::store::{self, ItemClaim, Store, StoreOptions};

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

fn postgres_url() -> String {
    std::env::var("REPLAYDESK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Opens a fresh store of `backend`, runs `body`, then closes it and drops the PostgreSQL schema.
async fn run_test<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let (url, options) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("claims.db").display()),
            StoreOptions::default(),
        ),
        Backend::Postgres => (
            postgres_url(),
            StoreOptions {
                pg_schema: Some(format!("t_{}", uuid::Uuid::new_v4().simple())),
                ..StoreOptions::default()
            },
        ),
    };
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
    if let Some(schema) = options.pg_schema {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
            let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await;
        }
    }
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run_test(Backend::Sqlite, super::$name).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run_test(Backend::Postgres, super::$name).await
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
);

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

async fn a_claimed_item_stays_with_its_first_owner(store: Arc<dyn Store>) {
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

async fn claiming_again_as_the_same_owner_keeps_the_item_and_its_time(store: Arc<dyn Store>) {
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

async fn a_lapsing_claim_can_be_taken_over_only_after_it_is_stale(store: Arc<dyn Store>) {
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

async fn scopes_are_independent_and_listed_oldest_first(store: Arc<dyn Store>) {
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

async fn concurrent_claimers_split_the_items_without_overlap(store: Arc<dyn Store>) {
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
