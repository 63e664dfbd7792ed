//! Per-endpoint concurrency caps and rate limits.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Reply, TestServer, builder, outcomes};
use serde_json::json;
use tokio::sync::Semaphore;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::{EndpointConfig, Publish, RateLimit, Sender};

fn config(url: String) -> EndpointConfig {
    EndpointConfig::event("org", url, [EventType::WalletCreated])
        .secret(HmacSecret::from_utf8("s").unwrap())
}

async fn publish(sender: &Sender, n: usize) {
    for i in 0..n {
        sender
            .publish(Publish::event(
                "org",
                EventType::WalletCreated,
                format!("w{i}"),
                json!({}),
            ))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_bounds_requests_in_flight() {
    let gate = Arc::new(Semaphore::new(0));
    let server = {
        let gate = gate.clone();
        TestServer::start(move |_| Reply::ok().gated(gate.clone())).await
    };
    let sender = builder().build().await.unwrap();
    sender
        .endpoints()
        .create(config(server.url("/")).max_concurrency(3))
        .await
        .unwrap();
    let mut watch = sender.outcomes();
    publish(&sender, 10).await;
    server.wait_for(3).await;
    // With three held, no fourth request starts; each release lets exactly one more in.
    for step in 1..=7 {
        assert_eq!(server.len(), 2 + step, "step {step}");
        gate.add_permits(1);
        server.wait_for(3 + step).await;
    }
    gate.add_permits(3);
    outcomes(&mut watch, 10).await;
    assert_eq!(server.len(), 10);
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_spreads_attempts_over_time() {
    let server = TestServer::ok().await;
    let sender = builder().build().await.unwrap();
    sender
        .endpoints()
        .create(config(server.url("/")).rate_limit(RateLimit::per_second(20)))
        .await
        .unwrap();
    let mut watch = sender.outcomes();
    let started = Instant::now();
    publish(&sender, 30).await;
    outcomes(&mut watch, 30).await;
    // A burst of 20, then 10 more at 20 per second: at least half a second.
    let requests = server.requests();
    let span = requests.last().unwrap().started - requests[0].started;
    assert!(
        span >= Duration::from_millis(450),
        "30 attempts in {span:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    sender.shutdown().await.unwrap();
}
