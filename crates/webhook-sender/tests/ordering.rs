//! Per endpoint, deliveries about one resource go out in publish order and never two at
//! once, while other resources' deliveries proceed.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Reply, TestServer, builder, outcomes};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use webhook_core::domain::{Domain, Envelope};
use webhook_core::keys::EcdsaSigningKey;
use webhook_sender::{EndpointConfig, Publish, RetryPolicy};

/// The `id` and update number `n` of the resource a domain-style body carries.
fn resource(body: &[u8]) -> (String, u64) {
    let envelope: Envelope = serde_json::from_slice(body).unwrap();
    let json: Value = serde_json::from_slice(&envelope.payload_bytes().unwrap()).unwrap();
    (
        json["id"].as_str().unwrap().to_owned(),
        json["n"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_resource_in_order_while_another_proceeds() {
    let gate = Arc::new(Semaphore::new(0));
    let a_seen = Arc::new(AtomicUsize::new(0));
    let server = {
        let gate = gate.clone();
        let a_seen = a_seen.clone();
        TestServer::start(move |request| {
            let (id, _) = resource(&request.body);
            if id != "tx-a" {
                return Reply::ok().after(Duration::from_millis(5));
            }
            match a_seen.fetch_add(1, Ordering::SeqCst) {
                // The first update of tx-a is held until the test lets it go.
                0 => Reply::ok().gated(gate.clone()),
                // The second fails once: its retry must still come before the third.
                1 => Reply::status(503),
                _ => Reply::ok().after(Duration::from_millis(5)),
            }
        })
        .await
    };
    let sender = builder().build().await.unwrap();
    let (key, _) = EcdsaSigningKey::generate().unwrap();
    let policy = RetryPolicy::schedule([
        Duration::ZERO,
        Duration::from_millis(30),
        Duration::from_millis(30),
    ]);
    sender
        .endpoints()
        .create(
            EndpointConfig::domain("org", server.url("/"), key, [Domain::Transaction])
                .retry(policy),
        )
        .await
        .unwrap();
    let mut watch = sender.outcomes();
    for n in 0..5 {
        for id in ["tx-a", "tx-b"] {
            sender
                .publish(Publish::domain(
                    "org",
                    Domain::Transaction,
                    json!({"id": id, "n": n}),
                ))
                .await
                .unwrap();
        }
    }
    // tx-b's five updates all arrive while tx-a's first is still held.
    common::eventually("tx-b's updates", || {
        let requests = server.requests();
        async move {
            requests
                .iter()
                .filter(|r| resource(&r.body).0 == "tx-b")
                .count()
                == 5
        }
    })
    .await;
    let a_so_far = server
        .requests()
        .iter()
        .filter(|r| resource(&r.body).0 == "tx-a")
        .count();
    assert_eq!(a_so_far, 1, "tx-a's later updates wait for its first");
    gate.add_permits(1);
    outcomes(&mut watch, 10).await;

    let requests = server.requests();
    let a: Vec<_> = requests
        .iter()
        .filter(|r| resource(&r.body).0 == "tx-a")
        .collect();
    let order: Vec<u64> = a.iter().map(|r| resource(&r.body).1).collect();
    assert_eq!(
        order,
        [0, 1, 1, 2, 3, 4],
        "publish order, the retry in its place"
    );
    for pair in a.windows(2) {
        let finished = pair[0].finished.unwrap();
        assert!(
            finished <= pair[1].started,
            "two tx-a deliveries overlapped"
        );
    }
    let b: Vec<u64> = requests
        .iter()
        .filter(|r| resource(&r.body).0 == "tx-b")
        .map(|r| resource(&r.body).1)
        .collect();
    assert_eq!(b, [0, 1, 2, 3, 4]);
    sender.shutdown().await.unwrap();
}
