//! The Postgres store across a PostgreSQL crash: the server is stopped with `pg_ctl stop
//! -m immediate` (no checkpoint, as a crash) mid-drain and started again on the same data
//! directory; every publish that was acknowledged is delivered.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Reply, TestServer};
use serde_json::json;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::store::{PostgresConfig, PostgresStore};
use webhook_sender::{EndpointConfig, EventId, Publish, RetryPolicy};
use webhook_testkit::PostgresServer;

const EVENTS: usize = 400;
/// How long the whole scenario may take.
const DEADLINE: Duration = Duration::from_secs(90);

fn event(i: usize, id: EventId) -> Publish {
    Publish::event(
        "org",
        EventType::TransactionConfirmed,
        format!("tx-{i}"),
        json!({"i": i}),
    )
    .with_event_id(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_postgres_stop_mid_drain_loses_no_acknowledged_delivery() {
    let started = Instant::now();
    let mut server = tokio::task::spawn_blocking(PostgresServer::start)
        .await
        .unwrap();
    // Slow answers keep deliveries in flight while the server goes down.
    let receiver = TestServer::start(|_| Reply::ok().after(Duration::from_millis(5))).await;
    let config = PostgresConfig::new(server.url()).acquire_timeout(Duration::from_secs(1));
    let store = PostgresStore::connect(&config).await.unwrap();
    let sender = common::builder()
        .store(store)
        .lease(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    sender
        .organizations()
        .set_secret("org", HmacSecret::from_utf8("pg-failover-secret").unwrap())
        .await
        .unwrap();
    let endpoint = EndpointConfig::event(
        "org",
        receiver.url("/hook"),
        [EventType::TransactionConfirmed],
    )
    .max_concurrency(8)
    .timeout(Duration::from_millis(900))
    .retry(RetryPolicy::schedule([Duration::from_millis(100); 20]));
    sender.endpoints().create(endpoint).await.unwrap();

    // Publishes every event until acknowledged; a failed publish is tried again with the
    // same event id (stored once if the failed call had committed after all).
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let publisher = {
        let (sender, acked) = (sender.clone(), Arc::clone(&acked));
        tokio::spawn(async move {
            let mut failures = 0;
            for i in 0..EVENTS {
                let id = EventId::generate();
                loop {
                    match sender.publish(event(i, id)).await {
                        Ok(_) => break,
                        Err(error) => {
                            assert!(error.is_store(), "{error}");
                            assert!(started.elapsed() < DEADLINE, "never reachable: {error}");
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                acked.lock().unwrap().insert(i.to_string());
            }
            failures
        })
    };

    // Crash the server once a third is acknowledged, while the rest is published and
    // drained.
    while acked.lock().unwrap().len() < EVENTS / 3 {
        assert!(started.elapsed() < DEADLINE, "publishing stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered_before = receiver.len();
    tokio::task::block_in_place(|| server.stop_immediate());
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| server.launch());
    let failures = publisher.await.unwrap();

    // Every acknowledged event arrives (at least once: at-least-once delivery).
    let acked: HashSet<String> = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), EVENTS);
    loop {
        let numbers: HashSet<String> = receiver
            .requests()
            .iter()
            .map(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["data"]["i"]
                    .to_string()
            })
            .collect();
        if acked.is_subset(&numbers) {
            break;
        }
        let missing = acked.difference(&numbers).count();
        assert!(
            started.elapsed() < DEADLINE,
            "{missing} acknowledged events never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "postgres crash: {EVENTS} publishes acknowledged ({failures} failed tries while it was \
         down), {delivered_before} delivered before the stop, {} requests in all, {:?}",
        receiver.len(),
        started.elapsed()
    );
    sender.shutdown().await.unwrap();
}
