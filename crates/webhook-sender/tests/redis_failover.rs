//! Failures around a Redis-backed sender: a node killed mid-stream (its runtime dropped,
//! no graceful shutdown) leaves its leases to the other node, and a Redis restarted
//! mid-stream (append-only file on) loses nothing it acknowledged.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

mod common;
mod redis_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::runtime;
use http::StatusCode;
use redis_support::{
    Receiver, configure, count_delivered, event, publish_until_reachable, redis_config,
    redis_server, start_node, two_nodes,
};
use webhook_core::event::EventType;
use webhook_receiver::dedup::MemoryStore as DedupMemory;
use webhook_redis::redis;
use webhook_sender::{DeliveryId, DeliveryStatus, EndpointConfig, Sender};
use webhook_testkit::RedisServer;

fn endpoint(url: String, cap: u32) -> EndpointConfig {
    EndpointConfig::event("org", url, [EventType::TransactionConfirmed])
        .max_concurrency(cap)
        .timeout(Duration::from_millis(1_000))
}

/// A receiver whose handler answers 200 after `delay`, and nodes A and B (leases of 2 s)
/// on `server` under `prefix` delivering to it, two at a time.
async fn receiver_and_two_nodes(
    server: &RedisServer,
    prefix: &str,
    delay: Duration,
) -> (Receiver, Sender, Sender) {
    let receiver = Receiver::start(DedupMemory::new(), move |_| (StatusCode::OK, delay)).await;
    let config = redis_config(server, prefix);
    let (a, b) = two_nodes(&config, Duration::from_secs(2), endpoint(receiver.url(), 2)).await;
    (receiver, a, b)
}

/// The deliveries whose leases `consumer` holds: its pending entries in the ready stream.
async fn leases_of(url: &str, prefix: &str, consumer: &str) -> Vec<DeliveryId> {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!("{prefix}sender:ready");
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("senders")
        .arg("-")
        .arg("+")
        .arg(1000)
        .arg(consumer)
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (entry, ..) in pending {
        let rows: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&stream)
            .arg(&entry)
            .arg(&entry)
            .query_async(&mut connection)
            .await
            .unwrap();
        for (_, fields) in rows {
            ids.extend(
                fields
                    .into_iter()
                    .map(|(_, id)| id.parse::<DeliveryId>().unwrap()),
            );
        }
    }
    ids
}

/// Node A is killed while it holds leases: its runtime is dropped with every task (the
/// attempts in flight included), and nothing is shut down. Node B takes A's pending
/// entries over once their leases run out and finishes everything; the receiver's dedup
/// absorbs the attempts A made but never recorded.
#[test]
fn a_node_killed_mid_stream_leaves_its_work_to_the_other() {
    const EVENTS: usize = 200;
    const PREFIX: &str = "kill:";
    // Endpoint timeouts may be half the lease: 1.5 s keeps slow attempts on a loaded
    // machine from timing out (which would be redeliveries of their own).
    let lease = Duration::from_secs(3);
    // The receiver and Redis live on their own runtime, so they outlive node A.
    let infra = runtime();
    let server = infra.block_on(redis_server(false));
    let receiver = infra.block_on(Receiver::start(DedupMemory::new(), |_| {
        (StatusCode::OK, Duration::from_millis(60))
    }));
    let config = redis_config(&server, PREFIX);

    let a_runtime = runtime();
    let a = a_runtime.block_on(async {
        let a = start_node(&config, "a", lease).await;
        configure(&a, endpoint(receiver.url(), 16)).await;
        a
    });
    let b_runtime = runtime();
    let (b, b_delivered) = b_runtime.block_on(async {
        let b = start_node(&config, "b", lease).await;
        let delivered = count_delivered(&b);
        (b, delivered)
    });

    let published: HashSet<String> = a_runtime.block_on(async {
        let mut keys = HashSet::new();
        for i in 0..EVENTS {
            keys.insert(a.publish(event(i)).await.unwrap().idempotency_key);
        }
        receiver.wait_for(EVENTS / 4, common::WAIT).await;
        keys
    });
    // Kill A the moment it holds leases.
    let deadline = Instant::now() + common::WAIT;
    while infra
        .block_on(leases_of(&server.url(), PREFIX, "a"))
        .is_empty()
    {
        assert!(Instant::now() < deadline, "node A never held a lease");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(a_runtime);
    drop(a);
    let killed_at = Instant::now();
    let held = infra.block_on(leases_of(&server.url(), PREFIX, "a"));
    let handled_at_kill = receiver.handled_len();
    assert!(!held.is_empty(), "A died holding leases");
    assert!(handled_at_kill < EVENTS, "the kill came mid-stream");

    infra.block_on(receiver.wait_for(EVENTS, Duration::from_secs(60)));
    let recovery = killed_at.elapsed();
    let per_key = receiver.per_key();
    assert_eq!(per_key.len(), EVENTS);
    assert!(per_key.values().all(|&n| n == 1), "each key handled once");
    let seen: HashSet<String> = per_key.into_keys().collect();
    assert_eq!(seen, published, "none lost");

    b_runtime.block_on(async {
        for id in &held {
            let delivery = b.delivery(&"org".into(), *id).await.unwrap().unwrap();
            assert_eq!(
                delivery.status,
                DeliveryStatus::Delivered,
                "{id} taken over"
            );
            assert!(delivery.status.is_terminal() && delivery.finished_at_ms.is_some());
        }
        assert!(
            leases_of(&server.url(), PREFIX, "a").await.is_empty(),
            "A's pending entries were all taken over"
        );
        common::eventually("B's outcomes", || {
            let n = b_delivered.load(std::sync::atomic::Ordering::SeqCst);
            async move { n >= EVENTS - handled_at_kill }
        })
        .await;
    });
    // At-least-once: only attempts A made and never recorded may reach the receiver twice
    // (the dedup answers them without calling the handler).
    let redelivered = receiver.requests() - EVENTS;
    assert!(
        redelivered <= held.len(),
        "{redelivered} redeliveries, A held {}",
        held.len()
    );
    println!(
        "kill: {} of {EVENTS} handled at the kill; A held {} leases; B finished in {recovery:?} \
         (lease {lease:?}); {redelivered} redeliveries answered by the receiver's dedup",
        handled_at_kill,
        held.len()
    );
    b_runtime.block_on(b.shutdown()).unwrap();
    drop(b_runtime);
    drop(receiver);
    drop(infra);
}

/// Redis is killed (SIGKILL) and started again while deliveries are queued and in flight.
/// While it is down, publish fails with a store error, quickly; once it is back the nodes
/// reconnect on their own and every publish that succeeded is delivered (the append-only
/// file with `appendfsync always` kept everything Redis acknowledged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_stream_keeps_every_acknowledged_delivery() {
    const BEFORE: usize = 200;
    const AFTER: usize = 100;
    let mut server = redis_server(true).await;
    // 25 ms per delivery, two at a time: the queue drains over seconds, so the restart
    // meets it half-way.
    let (receiver, a, b) =
        receiver_and_two_nodes(&server, "restart:", Duration::from_millis(25)).await;

    let mut acknowledged = HashSet::new();
    for i in 0..BEFORE {
        let sender = if i % 2 == 0 { &a } else { &b };
        acknowledged.insert(sender.publish(event(i)).await.unwrap().idempotency_key);
    }
    receiver.wait_for(BEFORE / 5, common::WAIT).await;
    server = tokio::task::spawn_blocking(move || {
        server.kill();
        server
    })
    .await
    .unwrap();
    let handled_at_kill = receiver.handled_len();
    assert!(handled_at_kill < BEFORE, "the restart comes mid-stream");

    for i in 0..3 {
        for sender in [&a, &b] {
            let started = Instant::now();
            let error = sender.publish(event(10_000 + i)).await.unwrap_err();
            assert!(error.is_store(), "{error}");
            assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
        }
    }

    let server = tokio::task::spawn_blocking(move || {
        server.launch();
        server
    })
    .await
    .unwrap();
    let reconnect_started = Instant::now();
    for i in BEFORE..BEFORE + AFTER {
        let sender = if i % 2 == 0 { &a } else { &b };
        // The first publishes may still meet the reconnection (or Redis loading its
        // file).
        let receipt = publish_until_reachable(sender, event(i)).await;
        acknowledged.insert(receipt.idempotency_key);
    }
    receiver
        .wait_for(BEFORE + AFTER, Duration::from_secs(60))
        .await;
    let per_key = receiver.per_key();
    let seen: HashSet<String> = per_key.keys().cloned().collect();
    assert_eq!(
        seen, acknowledged,
        "every acknowledged publish, nothing else"
    );
    assert!(per_key.values().all(|&n| n == 1));
    println!(
        "restart: {handled_at_kill} of {BEFORE} handled when Redis died; all {} delivered \
         {:?} after it came back; {} HTTP requests",
        BEFORE + AFTER,
        reconnect_started.elapsed(),
        receiver.requests()
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    drop(server);
}

/// Every client connection is dropped by the server (`CLIENT KILL`) mid-stream: the nodes
/// reconnect by themselves and everything acknowledged is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_made_again() {
    const EVENTS: usize = 150;
    let server = redis_server(false).await;
    let (receiver, a, b) =
        receiver_and_two_nodes(&server, "dropped:", Duration::from_millis(5)).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();

    let mut acknowledged = HashSet::new();
    for i in 0..EVENTS {
        if i == EVENTS / 3 || i == 2 * EVENTS / 3 {
            let killed: u64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .query_async(&mut admin)
                .await
                .unwrap();
            assert!(killed >= 2, "both nodes were connected ({killed})");
        }
        let sender = if i % 2 == 0 { &a } else { &b };
        let receipt = publish_until_reachable(sender, event(i)).await;
        acknowledged.insert(receipt.idempotency_key);
    }
    receiver.wait_for(EVENTS, Duration::from_secs(60)).await;
    let seen: HashSet<String> = receiver.per_key().into_keys().collect();
    assert_eq!(seen, acknowledged);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
