//! Restart and shutdown on the durable store: a sender that dies mid-stream and is
//! reopened on the same redb file delivers everything that was pending; a graceful
//! shutdown releases what it could not finish.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Reply, TestServer, WAIT, builder, outcomes, runtime};
use serde_json::{Value, json};
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::store::RedbStore;
use webhook_sender::{DeliveryStatus, EndpointConfig, Publish, Sender};

/// Opens the store, retrying briefly while a dropped predecessor is still closing.
fn open(path: &Path) -> RedbStore {
    let deadline = Instant::now() + WAIT;
    loop {
        match RedbStore::open(path) {
            Ok(store) => return store,
            Err(error) => {
                assert!(Instant::now() < deadline, "store does not reopen: {error}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn event_id(body: &[u8]) -> String {
    let json: Value = serde_json::from_slice(body).unwrap();
    json["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_sender_killed_mid_stream_delivers_everything_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.redb");
    // The receiver lives on its own runtime so that it outlives the killed sender.
    let server_rt = runtime();
    let server = server_rt.block_on(TestServer::start(|_| {
        Reply::ok().after(Duration::from_millis(30))
    }));
    let url = server.url("/hook");

    let first = runtime();
    let (sender, published) = first.block_on(async {
        let sender = builder()
            .store(open(&path))
            .lease(Duration::from_millis(800))
            .build()
            .await
            .unwrap();
        sender
            .organizations()
            .set_secret("org", HmacSecret::from_utf8("s").unwrap())
            .await
            .unwrap();
        sender
            .endpoints()
            .create(
                EndpointConfig::event("org", url, [EventType::TransactionConfirmed])
                    .max_concurrency(4)
                    .timeout(Duration::from_millis(400)),
            )
            .await
            .unwrap();
        let mut published = HashSet::new();
        for i in 0..40 {
            let receipt = sender
                .publish(Publish::event(
                    "org",
                    EventType::TransactionConfirmed,
                    format!("t{i}"),
                    json!({"i": i}),
                ))
                .await
                .unwrap();
            published.insert(receipt.event_id.to_string());
        }
        server.wait_for(6).await;
        (sender, published)
    });
    // Kill it: the runtime goes with every task (attempts in flight included), then the
    // last handle, which closes the file. Nothing is shut down gracefully.
    drop(first);
    drop(sender);
    let before = server.len();
    assert!(
        before < 40,
        "the test needs deliveries pending at the kill ({before} done)"
    );

    let second = runtime();
    second.block_on(async {
        let sender = builder()
            .store(open(&path))
            .lease(Duration::from_millis(800))
            .build()
            .await
            .unwrap();
        common::eventually("every event delivered", || {
            let seen: HashSet<String> = server
                .requests()
                .iter()
                .map(|r| event_id(&r.body))
                .collect();
            let all = published.is_subset(&seen);
            async move { all }
        })
        .await;
        sender.shutdown().await.unwrap();
    });
    let received: Vec<String> = server
        .requests()
        .iter()
        .map(|r| event_id(&r.body))
        .collect();
    let distinct: HashSet<&String> = received.iter().collect();
    assert_eq!(distinct.len(), 40);
    // At-least-once: only the attempts cut off in flight (at most the endpoint's cap of 4)
    // may have been sent twice.
    assert!(
        received.len() <= 44,
        "{} requests for 40 events",
        received.len()
    );
}

/// The graceful-shutdown test's lease: one left behind would run out only after the
/// shutdown (at most [`SHUTDOWN_BOUND`]) and the wait for the outcomes (at most [`WAIT`]),
/// so the test fails rather than pass on an expired lease.
const LEASE: Duration = Duration::from_secs(60);
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);
const _: () = assert!(SHUTDOWN_BOUND.as_secs() + WAIT.as_secs() < LEASE.as_secs());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_releases_unfinished_attempts_for_the_next_sender() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.redb");
    // The first two requests hang past the shutdown timeout; later ones succeed.
    let server = TestServer::start(|r| {
        if r.index < 2 {
            Reply::hang()
        } else {
            Reply::ok()
        }
    })
    .await;
    let configure = |store| {
        builder()
            .store(store)
            .lease(LEASE)
            .shutdown_timeout(Duration::from_millis(200))
    };
    let sender: Sender = configure(open(&path)).build().await.unwrap();
    sender
        .endpoints()
        .create(
            EndpointConfig::event("org", server.url("/"), [EventType::WalletCreated])
                .secret(HmacSecret::from_utf8("s").unwrap()),
        )
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..2 {
        let receipt = sender
            .publish(Publish::event(
                "org",
                EventType::WalletCreated,
                format!("w{i}"),
                json!({}),
            ))
            .await
            .unwrap();
        deliveries.extend(receipt.deliveries.iter().map(|d| d.id));
    }
    server.wait_for(2).await;
    let started = Instant::now();
    sender.shutdown().await.unwrap();
    assert!(started.elapsed() < SHUTDOWN_BOUND, "shutdown is bounded");
    assert!(
        sender
            .publish(Publish::event(
                "org",
                EventType::WalletCreated,
                "w",
                json!({})
            ))
            .await
            .unwrap_err()
            .is_shutdown()
    );
    drop(sender);

    let sender = configure(open(&path)).build().await.unwrap();
    let mut watch = sender.outcomes();
    // Released, not left to the lease: `outcomes` gives up long before LEASE.
    let done = outcomes(&mut watch, 2).await;
    for outcome in done {
        assert!(deliveries.contains(&outcome.delivery));
        let delivery = sender
            .delivery(&"org".into(), outcome.delivery)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(delivery.status, DeliveryStatus::Delivered);
        assert_eq!(
            delivery.attempts.len(),
            1,
            "the abandoned attempt is not counted"
        );
    }
    sender.shutdown().await.unwrap();
}
