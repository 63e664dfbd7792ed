//! The Redis dedup store against a `redis-server` this test starts on a free port.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fixture, Recorder, event_body, recording_handler, to_http};
use tower::{Layer as _, ServiceExt as _};
use webhook_receiver::WebhookLayer;
use webhook_receiver::dedup::{Begin, Claim, DedupStore, RedisStore};
use webhook_testkit::RedisServer;

const LEASE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(600);

async fn start() -> (RedisServer, RedisStore) {
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    let store = RedisStore::connect(&server.url(), "ep").await.unwrap();
    (server, store)
}

async fn claim(store: &RedisStore, key: &str, lease: Duration) -> Claim {
    match store.begin(key, lease).await.unwrap() {
        Begin::New(claim) => claim,
        other => panic!("expected New for {key}, got {other:?}"),
    }
}

async fn raw_get(server: &RedisServer, key: &str) -> Option<String> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut connection)
        .await
        .unwrap()
}

async fn raw_pttl(server: &RedisServer, key: &str) -> i64 {
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn claim_complete_release() {
    let (server, store) = start().await;
    let first = claim(&store, "k", LEASE).await;
    assert_eq!(store.begin("k", LEASE).await.unwrap(), Begin::InProgress);
    let pending = raw_get(&server, "webhook-receiver:dedup:ep:k")
        .await
        .unwrap();
    assert_eq!(pending, first.token());
    let pttl = raw_pttl(&server, "webhook-receiver:dedup:ep:k").await;
    assert!((1..=30_000).contains(&pttl), "{pttl}");

    store.release("k", &first).await.unwrap();
    assert_eq!(raw_get(&server, "webhook-receiver:dedup:ep:k").await, None);
    let second = claim(&store, "k", LEASE).await;
    assert_ne!(first, second);
    // A stale claim cannot release the current holder.
    store.release("k", &first).await.unwrap();
    assert_eq!(store.begin("k", LEASE).await.unwrap(), Begin::InProgress);

    store.complete("k", &second, TTL).await.unwrap();
    assert_eq!(store.begin("k", LEASE).await.unwrap(), Begin::Done);
    assert_eq!(
        raw_get(&server, "webhook-receiver:dedup:ep:k")
            .await
            .as_deref(),
        Some("done")
    );
    let ttl = raw_pttl(&server, "webhook-receiver:dedup:ep:k").await;
    assert!((590_000..=600_000).contains(&ttl), "{ttl}");
    // Releasing a done key changes nothing.
    store.release("k", &second).await.unwrap();
    assert_eq!(store.begin("k", LEASE).await.unwrap(), Begin::Done);
}

#[tokio::test]
async fn leases_and_ttls_expire_in_redis() {
    let (_server, store) = start().await;
    let _abandoned = claim(&store, "lease", Duration::from_millis(50)).await;
    let done = claim(&store, "ttl", LEASE).await;
    store
        .complete("ttl", &done, Duration::from_millis(50))
        .await
        .unwrap();
    // Bounded polling: both keys must come back as new within the deadline.
    for key in ["lease", "ttl"] {
        let deadline = tokio::time::Instant::now() + common::IO_DEADLINE;
        loop {
            if let Begin::New(_) = store.begin(key, LEASE).await.unwrap() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key} never expired"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn prefixes_separate_endpoints() {
    let (server, store) = start().await;
    let other = store.clone().prefix("endpoint-b:");
    let _a = claim(&store, "same", LEASE).await;
    let _b = claim(&other, "same", LEASE).await;
    assert!(raw_get(&server, "endpoint-b:same").await.is_some());
    assert!(
        raw_get(&server, "webhook-receiver:dedup:ep:same")
            .await
            .is_some()
    );
    assert!(format!("{other:?}").contains("endpoint-b:"));
}

#[tokio::test]
async fn exactly_one_concurrent_claim_wins() {
    let (_server, store) = start().await;
    let store = Arc::new(store);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let store = Arc::clone(&store);
        tasks.spawn(
            async move { matches!(store.begin("race", LEASE).await.unwrap(), Begin::New(_)) },
        );
    }
    let mut wins = 0;
    while let Some(won) = tasks.join_next().await {
        wins += usize::from(won.unwrap());
    }
    assert_eq!(wins, 1);
}

/// Redis going away turns into 503 (the sender retries), within the store's timeout.
#[tokio::test]
async fn an_unreachable_redis_is_a_503() {
    let (mut server, store) = start().await;
    let store = store.timeout(Duration::from_millis(500));
    let fixture = Fixture::event();
    let recorder = Recorder::new();
    let service = WebhookLayer::new(fixture.verifier.clone())
        .dedup_store(store)
        .layer(recording_handler(Arc::clone(&recorder)));
    let ok = service
        .clone()
        .oneshot(to_http(&fixture.signed("", &event_body("before"))))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    tokio::task::spawn_blocking(move || {
        server.kill();
        server
    })
    .await
    .unwrap();
    let response = tokio::time::timeout(
        common::IO_DEADLINE,
        service.oneshot(to_http(&fixture.signed("", &event_body("after")))),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 503);
    let (_, text) = common::body_text(response).await;
    assert!(text.contains("dedup_unavailable"), "{text}");
    assert_eq!(recorder.calls(), 1);
}

/// Two endpoints on one Redis: the same dedup key is new for each, and done for one only
/// after that one handled it; a second process of the same endpoint agrees.
#[tokio::test]
async fn two_endpoints_on_one_redis_never_dedup_each_other() {
    let (server, payments) = start().await;
    let payouts = RedisStore::connect(&server.url(), "payouts").await.unwrap();
    let payments_again = RedisStore::connect(&server.url(), "ep").await.unwrap();

    let paid = claim(&payments, "evt-1", LEASE).await;
    // The other endpoint's first sight of the same key is new, not in progress.
    let paid_out = claim(&payouts, "evt-1", LEASE).await;
    payments.complete("evt-1", &paid, TTL).await.unwrap();
    assert_eq!(
        payments_again.begin("evt-1", LEASE).await.unwrap(),
        Begin::Done
    );
    assert_eq!(
        payouts.begin("evt-1", LEASE).await.unwrap(),
        Begin::InProgress
    );
    payouts.release("evt-1", &paid_out).await.unwrap();
    let _again = claim(&payouts, "evt-1", LEASE).await;
    assert_eq!(
        raw_get(&server, "webhook-receiver:dedup:ep:evt-1")
            .await
            .as_deref(),
        Some("done")
    );
    assert!(
        raw_get(&server, "webhook-receiver:dedup:payouts:evt-1")
            .await
            .is_some_and(|v| v.starts_with("claim:"))
    );

    // On a shared connection, the endpoint name goes under the connection's prefix.
    let shared = webhook_redis::RedisConfig::new(server.url())
        .prefix("platform:")
        .connect()
        .await
        .unwrap();
    let a = RedisStore::for_endpoint(&shared, "a");
    let b = RedisStore::for_endpoint(&shared, "b");
    let claimed = claim(&a, "evt-2", LEASE).await;
    a.complete("evt-2", &claimed, TTL).await.unwrap();
    let _b = claim(&b, "evt-2", LEASE).await;
    assert_eq!(
        raw_get(&server, "platform:dedup:a:evt-2").await.as_deref(),
        Some("done")
    );
}

#[tokio::test]
async fn connecting_to_nothing_fails() {
    let port = webhook_testkit::free_port().unwrap();
    let error = RedisStore::connect(&format!("redis://127.0.0.1:{port}/"), "ep")
        .await
        .unwrap_err();
    assert!(error.is_unavailable());
    assert!(
        RedisStore::connect("not a url", "ep")
            .await
            .unwrap_err()
            .is_unavailable()
    );
}
