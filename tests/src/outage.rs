//! The store-outage scenario shared by the Redis and Postgres reliability tests: a sender
//! on a store served by a separate server process whose connections are dropped, and which
//! is then killed and started again, while events are published to a slow receiver.
//!
//! What must hold: a publish during the outage fails promptly with a store error (never
//! hangs, never succeeds without being stored), and every publish that was acknowledged is
//! delivered and handled exactly once once the server is back.
//!
//! ```no_run
//! # async fn demo(store: webhook_sender::store::MemoryStore, server: &mut dyn webhook_e2e::outage::Outage) {
//! use webhook_e2e::outage;
//!
//! outage::publishes_survive_an_outage("my store", store, server).await;
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::json;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_receiver::{Verifier, WebhookLayer};
use webhook_sender::store::Store;
use webhook_sender::{
    AllowList, DeliveryId, DeliveryStatus, EndpointConfig, Publish, RetryPolicy, Sender,
};

use crate::crash::LEASE;
use crate::receiver::{CountingReceiver, event_entity};

const ORGANIZATION: &str = "org-outage";
const SECRET: &str = "outage-organization-secret";
/// How long the store may take to come back, and the deliveries to finish.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

/// The server process behind a store, as the scenario breaks it.
pub trait Outage: Send {
    /// Makes the server drop every client connection; returns how many it dropped.
    fn drop_connections(&mut self) -> Pin<Box<dyn Future<Output = usize> + Send + '_>>;
    /// Kills the server at once (SIGKILL or an immediate shutdown: no clean close).
    fn kill(&mut self);
    /// Starts the server again on the same data and port.
    fn relaunch(&mut self);
}

async fn publish(sender: &Sender, n: u64) -> Result<DeliveryId, webhook_sender::Error> {
    sender
        .publish(Publish::event(
            ORGANIZATION,
            EventType::TransactionConfirmed,
            format!("tx-{n}"),
            json!({ "n": n }),
        ))
        .await
        .map(|receipt| receipt.deliveries[0].id)
}

/// Runs the scenario with a sender on `store` (whose server `server` breaks) and prints a
/// summary headed `name`. Call it on a multi-threaded runtime (the server is killed and
/// started from inside it).
///
/// # Panics
/// When a publish hangs or fails with anything but a store error, the store does not come
/// back within two minutes, or an acknowledged publish is lost or handled twice.
pub async fn publishes_survive_an_outage(name: &str, store: impl Store, server: &mut dyn Outage) {
    let receiver = CountingReceiver::start(
        WebhookLayer::new(Verifier::event_secrets([SECRET]).expect("a valid secret")),
        event_entity,
    )
    .await;
    let tally = receiver.tally();
    let sender = Sender::builder()
        .store(store)
        .allow_private_networks(AllowList::loopback())
        .idle_poll(Duration::from_millis(20))
        .lease(LEASE)
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("build the sender");
    sender
        .organizations()
        .set_secret(
            ORGANIZATION,
            HmacSecret::from_utf8(SECRET).expect("a valid secret"),
        )
        .await
        .expect("set the secret");
    sender
        .endpoints()
        .create(
            EndpointConfig::event(
                ORGANIZATION,
                receiver.url(),
                [EventType::TransactionConfirmed],
            )
            .timeout(Duration::from_millis(1500))
            .retry(RetryPolicy::schedule(
                std::iter::once(Duration::ZERO)
                    .chain(std::iter::repeat_n(Duration::from_millis(100), 59)),
            )),
        )
        .await
        .expect("create the endpoint");
    // The receiver is slow, so that deliveries are queued and in flight at each fault.
    tally.set_handler_delay(Duration::from_millis(20));
    let mut acked = Vec::new();
    for n in 0..300 {
        acked.push((
            n,
            publish(&sender, n)
                .await
                .expect("publish before the faults"),
        ));
    }

    // 1. The server drops every client connection; the store reconnects by itself.
    let dropped = server.drop_connections().await;
    assert!(dropped >= 1, "the store's connections were dropped");
    let mut failed_publishes = 0;
    for n in 300..600 {
        match publish(&sender, n).await {
            Ok(id) => acked.push((n, id)),
            Err(error) => {
                // A publish may fail while the connection is re-made; it says so.
                assert!(error.is_store(), "{error}");
                failed_publishes += 1;
            }
        }
    }

    // 2. The server dies: publishing fails with a store error, promptly.
    tokio::task::block_in_place(|| server.kill());
    let down = Instant::now();
    let mut errors = Vec::new();
    for n in 600..605 {
        let tried = Instant::now();
        let error = publish(&sender, n)
            .await
            .expect_err("a publish while the store is down");
        assert!(error.is_store(), "{error}");
        assert!(
            tried.elapsed() < Duration::from_secs(10),
            "a publish hung while the store was down"
        );
        errors.push(error.to_string());
    }
    let down_for = down.elapsed();

    // 3. The server comes back with its data: nothing acknowledged is lost.
    tokio::task::block_in_place(|| server.relaunch());
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut n = 605;
    while n < 700 {
        match publish(&sender, n).await {
            Ok(id) => {
                acked.push((n, id));
                n += 1;
            }
            Err(error) => {
                assert!(error.is_store(), "{error}");
                assert!(
                    Instant::now() < deadline,
                    "the store did not come back: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tally.set_handler_delay(Duration::ZERO);
    let deadline = Instant::now() + PHASE_LIMIT;
    loop {
        let mut delivered = 0;
        for (_, id) in &acked {
            let delivery = sender
                .delivery(&ORGANIZATION.into(), *id)
                .await
                .expect("read a delivery")
                .expect("an acknowledged delivery exists");
            assert_ne!(delivery.status, DeliveryStatus::Failed, "{delivery:?}");
            delivered += usize::from(delivery.status == DeliveryStatus::Delivered);
        }
        if delivered == acked.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} of {} acknowledged publishes delivered",
            acked.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (n, _) in &acked {
        assert_eq!(
            tally.per_label().get(&n.to_string()).copied(),
            Some(1),
            "event {n} not handled exactly once"
        );
    }
    println!(
        "{name}: {} publishes acknowledged ({failed_publishes} failed after the connections \
         were dropped), the store down {down_for:?} with every publish refused, e.g. {:?}; \
         receiver: {} deliveries, {} handler calls, {} duplicates",
        acked.len(),
        errors[0],
        tally.requests(),
        tally.handler_calls(),
        tally.duplicates()
    );
    sender.shutdown().await.expect("shut down");
}
