//! Several sender nodes on one shared store, Redis (a `redis-server` each test starts)
//! and, with the `postgres` feature, Postgres (a PostgreSQL server each test starts): they
//! share the queue, the idempotency windows and the configuration; nothing is lost, each
//! idempotency key reaches the receiver's handler once, per-resource order holds.
//!
//! Every scenario runs on each shared store (`redis::…`, `postgres::…`).

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod common;
mod redis_support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use redis_support::{
    Cluster, NoDedup, Receiver, configure, count_delivered, event, redis_config, redis_server,
    start_node, start_node_with, two_nodes,
};
use serde_json::json;
use webhook_core::event::EventType;
use webhook_receiver::dedup::{MemoryStore as DedupMemory, RedisStore as DedupRedis};
use webhook_sender::{Builder, EndpointConfig, Publish, RetryPolicy};

const EVENTS: usize = 10_000;

const LEASE: Duration = Duration::from_secs(30);

/// The shared store a scenario runs on; holds its server.
enum Env {
    Redis(webhook_testkit::RedisServer),
    #[cfg(feature = "postgres")]
    Postgres(webhook_testkit::PostgresServer),
}

impl Env {
    async fn redis() -> Self {
        Self::Redis(redis_server(false).await)
    }

    #[cfg(feature = "postgres")]
    async fn postgres() -> Self {
        let server = tokio::task::spawn_blocking(webhook_testkit::PostgresServer::start);
        Self::Postgres(server.await.unwrap())
    }

    /// One environment on this store: a key prefix, or a schema.
    fn cluster(&self, name: &str) -> Cluster {
        match self {
            Self::Redis(server) => Cluster::Redis(redis_config(server, &format!("{name}:"))),
            #[cfg(feature = "postgres")]
            Self::Postgres(server) => Cluster::Postgres {
                url: server.url(),
                schema: name.to_owned(),
            },
        }
    }

    /// A receiver answering `answer`, deduplicating in this store when it can (Redis),
    /// else in memory.
    async fn receiver(
        &self,
        answer: impl Fn(&serde_json::Value) -> (StatusCode, Duration) + Send + Sync + 'static,
    ) -> Receiver {
        match self {
            Self::Redis(server) => {
                let config = redis_config(server, "receiver:");
                let dedup = DedupRedis::from_connection(&config.connect().await.unwrap());
                Receiver::start(dedup, answer).await
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Receiver::start(DedupMemory::new(), answer).await,
        }
    }
}

macro_rules! on_shared_stores {
    ($($scenario:ident),* $(,)?) => {
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::Env::redis().await).await; })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::Env::postgres().await).await; })*
        }
    };
}

on_shared_stores!(
    two_nodes_deliver_ten_thousand_events_each_key_once,
    per_resource_order_holds_with_two_nodes,
    endpoints_created_on_one_node_are_delivered_by_others,
    the_idempotency_window_is_shared_by_nodes,
);

fn endpoint(url: String, cap: u32) -> EndpointConfig {
    EndpointConfig::event("org", url, [EventType::TransactionConfirmed])
        .max_concurrency(cap)
        .timeout(Duration::from_secs(5))
        .retry(RetryPolicy::schedule([
            Duration::ZERO,
            Duration::from_millis(50),
            Duration::from_millis(100),
            Duration::from_millis(200),
        ]))
}

/// Two nodes on one store deliver 10,000 events, published through both: none is lost,
/// and after the receiver's dedup (in the same Redis; in memory for Postgres) its handler
/// sees each idempotency key once.
async fn two_nodes_deliver_ten_thousand_events_each_key_once(env: Env) {
    let receiver = env.receiver(|_| (StatusCode::OK, Duration::ZERO)).await;
    let config = env.cluster("scale");
    let workers = |builder: Builder| builder.workers(48);
    let a = start_node_with(config.clone(), "a", LEASE, workers).await;
    configure(&a, endpoint(receiver.url(), 48)).await;
    // B starts after the configuration exists, and loads it.
    let b = start_node_with(config, "b", LEASE, workers).await;
    let (a_count, b_count) = (count_delivered(&a), count_delivered(&b));

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut publishers = tokio::task::JoinSet::new();
    for task in 0..32 {
        let sender = if task % 2 == 0 { a.clone() } else { b.clone() };
        let next = Arc::clone(&next);
        publishers.spawn(async move {
            let mut keys = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= EVENTS {
                    return keys;
                }
                let receipt = sender.publish(event(i)).await.unwrap();
                assert_eq!(receipt.deliveries.len(), 1);
                keys.push(receipt.idempotency_key);
            }
        });
    }
    let mut published = HashSet::new();
    while let Some(keys) = publishers.join_next().await {
        published.extend(keys.unwrap());
    }
    let publish_time = started.elapsed();
    assert_eq!(published.len(), EVENTS, "distinct entities, distinct keys");

    receiver.wait_for(EVENTS, Duration::from_secs(120)).await;
    let elapsed = started.elapsed();
    let per_key = receiver.per_key();
    assert_eq!(per_key.len(), EVENTS);
    assert!(per_key.values().all(|&n| n == 1), "a key was handled twice");
    let seen: HashSet<String> = per_key.into_keys().collect();
    assert_eq!(seen, published, "none lost");
    common::eventually("both nodes' outcomes recorded", || {
        let total = a_count.load(Ordering::SeqCst) + b_count.load(Ordering::SeqCst);
        async move { total >= EVENTS }
    })
    .await;
    let (by_a, by_b) = (
        a_count.load(Ordering::SeqCst),
        b_count.load(Ordering::SeqCst),
    );
    assert!(
        by_a > 0 && by_b > 0,
        "both nodes delivered: a {by_a}, b {by_b}"
    );
    println!(
        "{EVENTS} events: published in {publish_time:?}, all handled after {elapsed:?}; \
         node a delivered {by_a}, node b {by_b}; {} HTTP requests",
        receiver.requests()
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Per endpoint and resource, deliveries go out in publish order and never two at once,
/// although two nodes deliver them and updates are published through both.
async fn per_resource_order_holds_with_two_nodes(env: Env) {
    const RESOURCES: usize = 8;
    const UPDATES: usize = 16;
    // Update 3 of every resource is refused once: its retry must keep its place. The
    // updates of one resource share an idempotency key (one entity, one type, within a
    // minute), so the receiver keeps no dedup state here: the handler sees every one.
    let refused = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let answer_refused = Arc::clone(&refused);
    let receiver = Receiver::start(NoDedup, move |data| {
        let n = data["n"].as_u64().unwrap();
        let r = data["r"].as_u64().unwrap();
        let delay = Duration::from_millis(1 + (n * 7 + r * 3) % 6);
        if n == 3 && answer_refused.lock().unwrap().insert(r) {
            return (StatusCode::SERVICE_UNAVAILABLE, delay);
        }
        (StatusCode::OK, delay)
    })
    .await;
    let (a, b) = two_nodes(env.cluster("order"), LEASE, endpoint(receiver.url(), 6)).await;
    let (a_count, b_count) = (count_delivered(&a), count_delivered(&b));

    let mut publishers = tokio::task::JoinSet::new();
    for r in 0..RESOURCES {
        let (a, b) = (a.clone(), b.clone());
        publishers.spawn(async move {
            for n in 0..UPDATES {
                // Alternate the publishing node; each publish returns once queued, so
                // publish order is n's order.
                let sender = if (n + r) % 2 == 0 { &a } else { &b };
                let publish = Publish::event(
                    "org",
                    EventType::TransactionConfirmed,
                    format!("res-{r}"),
                    json!({"r": r, "n": n}),
                );
                sender.publish(publish).await.unwrap();
            }
        });
    }
    while let Some(done) = publishers.join_next().await {
        done.unwrap();
    }
    receiver
        .wait_for(RESOURCES * UPDATES, Duration::from_secs(60))
        .await;

    let mut by_resource: HashMap<u64, Vec<redis_support::Handled>> = HashMap::new();
    for handled in receiver.handled() {
        let r = handled.data["r"].as_u64().unwrap();
        by_resource.entry(r).or_default().push(handled);
    }
    assert_eq!(by_resource.len(), RESOURCES);
    for (r, handled) in &by_resource {
        let order: Vec<u64> = handled
            .iter()
            .map(|h| h.data["n"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (0..UPDATES as u64).collect();
        assert_eq!(order, expected, "resource {r} out of order");
        for pair in handled.windows(2) {
            assert!(
                pair[0].finished <= pair[1].started,
                "two deliveries of resource {r} overlapped"
            );
        }
    }
    assert_eq!(
        refused.lock().unwrap().len(),
        RESOURCES,
        "every refusal happened"
    );
    common::eventually("outcomes recorded", || {
        let total = a_count.load(Ordering::SeqCst) + b_count.load(Ordering::SeqCst);
        async move { total >= RESOURCES * UPDATES }
    })
    .await;
    let (by_a, by_b) = (
        a_count.load(Ordering::SeqCst),
        b_count.load(Ordering::SeqCst),
    );
    assert!(
        by_a > 0 && by_b > 0,
        "both nodes delivered: a {by_a}, b {by_b}"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Configuration lives in the shared store and every change bumps a version: a node that started
/// before an endpoint was created on another node loads it at its next publish (or idle
/// poll), fans out to it and delivers to it.
async fn endpoints_created_on_one_node_are_delivered_by_others(env: Env) {
    let receiver = Receiver::start(DedupMemory::new(), |_| (StatusCode::OK, Duration::ZERO)).await;
    let config = env.cluster("config");
    let a = start_node(config.clone(), "a", LEASE).await;
    // `early` starts before the endpoint and the organization's secret exist.
    let early = start_node(config, "early", LEASE).await;
    let early_count = count_delivered(&early);
    configure(&a, endpoint(receiver.url(), 4)).await;

    // Published through `early`: it sees the store's configuration version move, loads
    // the endpoint and the secret, fans out to the endpoint and signs with the secret.
    for i in 0..50 {
        early.publish(event(i)).await.unwrap();
    }
    receiver.wait_for(50, common::WAIT).await;

    // A goes away; `early` delivers what is published through it from now on.
    a.shutdown().await.unwrap();
    for i in 50..80 {
        early.publish(event(i)).await.unwrap();
    }
    receiver.wait_for(80, common::WAIT).await;
    common::eventually("early's outcomes", || {
        let n = early_count.load(Ordering::SeqCst);
        async move { n >= 30 }
    })
    .await;
    assert!(receiver.per_key().values().all(|&n| n == 1));
    assert_eq!(receiver.per_key().len(), 80);
    early.shutdown().await.unwrap();
}

/// The idempotency window is shared: the same (organization, type, entity) published
/// on two nodes within a minute gets one key, and the receiver handles it once.
async fn the_idempotency_window_is_shared_by_nodes(env: Env) {
    let receiver = Receiver::start(DedupMemory::new(), |_| (StatusCode::OK, Duration::ZERO)).await;
    let (a, b) = two_nodes(env.cluster("window"), LEASE, endpoint(receiver.url(), 4)).await;
    let first = a.publish(event(1)).await.unwrap();
    let second = b.publish(event(1)).await.unwrap();
    let other = b.publish(event(2)).await.unwrap();
    assert_eq!(first.idempotency_key, second.idempotency_key);
    assert_ne!(first.event_id, second.event_id);
    assert_ne!(first.idempotency_key, other.idempotency_key);
    receiver.wait_for(2, common::WAIT).await;
    common::eventually("the duplicate reached the receiver", || {
        let requests = receiver.requests();
        async move { requests >= 3 }
    })
    .await;
    let per_key = receiver.per_key();
    assert_eq!(per_key.len(), 2);
    assert!(per_key.values().all(|&n| n == 1));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
