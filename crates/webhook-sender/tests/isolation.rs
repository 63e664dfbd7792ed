//! A dead endpoint beside a healthy one leaves the healthy one's latency and throughput
//! unchanged within noise. The numbers themselves belong to benchmarks; this test only
//! bounds the ratio generously, so it holds on a loaded 2-core machine.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Reply, TestServer, builder};
use serde_json::{Value, json};
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::{BreakerConfig, EndpointConfig, OutcomeStatus, Publish};

const EVENTS: usize = 200;

struct Run {
    total: Duration,
    median_latency: Duration,
}

#[derive(Clone, Copy, PartialEq)]
enum Dead {
    /// No dead endpoint: the baseline.
    None,
    /// Accepts connections and never answers; every attempt runs into its timeout.
    Hanging,
    /// Refuses connections, with retries due every few milliseconds, so that its retries
    /// compete with the healthy endpoint's first attempts all the time.
    Refusing,
}

/// Publishes `EVENTS` events and measures how the healthy endpoint receives them.
async fn run(dead_kind: Dead) -> Run {
    let healthy = TestServer::start(|_| Reply::ok().after(Duration::from_millis(2))).await;
    let dead = TestServer::start(|_| Reply::hang()).await;
    let sender = builder()
        // Breakers off, so that the dead endpoint keeps taking (capped) worker slots.
        .breaker(BreakerConfig {
            threshold: 0,
            cooldown: Duration::ZERO,
        })
        .shutdown_timeout(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    sender
        .organizations()
        .set_secret("org", HmacSecret::from_utf8("s").unwrap())
        .await
        .unwrap();
    let types = [EventType::TransactionConfirmed];
    let healthy_id = sender
        .endpoints()
        .create(EndpointConfig::event(
            "org",
            healthy.url("/"),
            types.clone(),
        ))
        .await
        .unwrap();
    match dead_kind {
        Dead::None => {}
        Dead::Hanging => {
            sender
                .endpoints()
                .create(
                    EndpointConfig::event("org", dead.url("/"), types)
                        .timeout(Duration::from_secs(2))
                        .max_concurrency(8),
                )
                .await
                .unwrap();
        }
        Dead::Refusing => {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/", closed.local_addr().unwrap());
            drop(closed);
            let retries = webhook_sender::RetryPolicy::schedule(
                std::iter::once(Duration::ZERO)
                    .chain(std::iter::repeat_n(Duration::from_millis(5), 1000)),
            );
            sender
                .endpoints()
                .create(EndpointConfig::event("org", url, types).retry(retries))
                .await
                .unwrap();
        }
    }
    let mut watch = sender.outcomes();
    let start = Instant::now();
    let mut published_at = HashMap::new();
    for i in 0..EVENTS {
        let receipt = sender
            .publish(Publish::event(
                "org",
                EventType::TransactionConfirmed,
                format!("t{i}"),
                json!({}),
            ))
            .await
            .unwrap();
        published_at.insert(receipt.event_id.to_string(), Instant::now());
    }
    let mut delivered = 0;
    let deadline = start + common::WAIT;
    while delivered < EVENTS {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = tokio::time::timeout(left, watch.recv())
            .await
            .expect("healthy deliveries stalled")
            .unwrap();
        if outcome.endpoint == healthy_id {
            assert_eq!(outcome.status, OutcomeStatus::Delivered);
            delivered += 1;
        }
    }
    let total = start.elapsed();
    let mut latencies: Vec<Duration> = healthy
        .requests()
        .iter()
        .map(|r| {
            let json: Value = serde_json::from_slice(&r.body).unwrap();
            let published = published_at[json["id"].as_str().unwrap()];
            r.started.saturating_duration_since(published)
        })
        .collect();
    latencies.sort();
    if dead_kind == Dead::Hanging {
        assert!(dead.len() >= 1, "the dead endpoint was tried");
        assert!(dead.len() <= 8, "its concurrency cap held: {}", dead.len());
    }
    sender.shutdown().await.unwrap();
    Run {
        total,
        median_latency: latencies[latencies.len() / 2],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_does_not_slow_a_healthy_one() {
    let baseline = run(Dead::None).await;
    for kind in [Dead::Hanging, Dead::Refusing] {
        let beside_dead = run(kind).await;
        compare(&baseline, &beside_dead);
    }
}

fn compare(baseline: &Run, beside_dead: &Run) {
    eprintln!(
        "healthy alone: {:?} total, {:?} median latency; beside a dead endpoint: {:?}, {:?}",
        baseline.total, baseline.median_latency, beside_dead.total, beside_dead.median_latency
    );
    assert!(
        beside_dead.total <= baseline.total * 3 + Duration::from_secs(1),
        "throughput: {:?} vs {:?}",
        beside_dead.total,
        baseline.total
    );
    assert!(
        beside_dead.median_latency <= baseline.median_latency * 3 + Duration::from_millis(250),
        "latency: {:?} vs {:?}",
        beside_dead.median_latency,
        baseline.median_latency
    );
}
