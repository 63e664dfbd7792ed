//! Crash safety and Redis faults with the Redis store (a `redis-server` with the
//! append-only file on, `appendfsync always`, started by the test):
//!
//! - two sender processes share one Redis; one is killed with SIGKILL mid-stream and
//!   restarted; every event reaches the receiver's handler exactly once;
//! - the store's connections are dropped by Redis (`CLIENT KILL`), then Redis itself is
//!   killed and restarted: `publish` fails with a store error while Redis is down, and every
//!   publish that was acknowledged is delivered.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_e2e::crash::{self, Acked, Backend, CrashSender, LEASE, PUBLISHERS, WORKERS};
use webhook_e2e::receiver::{CountingReceiver, event_entity};
use webhook_receiver::{Verifier, WebhookLayer};
use webhook_redis::RedisConfig;
use webhook_sender::store::{ClaimRequest, HistoryStore as _, QueueStore as _, RedisStore};
use webhook_sender::{
    AllowList, DeliveryId, DeliveryStatus, EndpointConfig, Publish, RetryPolicy, Sender,
};
use webhook_testkit::RedisServer;

const SECRET: &str = "redis-crash-organization-secret";
const PREFIX: &str = "crash:";
const EVENTS: usize = 10_000;
const PHASE_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn two_sender_processes_on_redis_one_killed_with_sigkill_lose_nothing() {
    let started = Instant::now();
    let redis = RedisServer::start_with_aof();
    let dir = tempfile::tempdir().unwrap();
    let rt = crash::runtime();
    let receiver = rt.block_on(CountingReceiver::start(
        WebhookLayer::new(Verifier::event_secrets([SECRET]).unwrap()),
        event_entity,
    ));
    let (url, tally) = (receiver.url(), receiver.tally());
    let half = (EVENTS / 2) as u64;
    let a_indices: Vec<u64> = (0..half).collect();
    let b_indices: Vec<u64> = (half..EVENTS as u64).collect();
    let mut acked = Acked::new();
    let launcher = CrashSender {
        program: env!("CARGO_BIN_EXE_crash_sender"),
        dir: dir.path(),
        url: &url,
        secret: SECRET,
        limit: PHASE_LIMIT,
    };
    let redis_url = redis.url();
    let node = |consumer| Backend::Redis {
        url: &redis_url,
        prefix: PREFIX,
        consumer,
    };

    // Node A configures the endpoint; node B starts after it, so it loads the endpoint.
    let mut a = launcher.start(&node("node-a"), "node-a", &a_indices, true);
    let mut b = launcher.start(&node("node-b"), "node-b", &b_indices, false);
    let deadline = Instant::now() + PHASE_LIMIT;
    while tally.distinct() < EVENTS / 3 {
        assert!(
            Instant::now() < deadline,
            "nodes stalled at {}",
            tally.distinct()
        );
        crash::drain(&a, &mut acked);
        crash::drain(&b, &mut acked);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Lines printed before the kill are still in the pipe: recorded too.
    crash::kill(&mut a, &mut acked);
    let at_kill = (acked.len(), tally.distinct(), started.elapsed());

    // Node A comes back under the same name and publishes what it had not acknowledged.
    let missing: Vec<u64> = a_indices
        .iter()
        .copied()
        .filter(|i| !acked.contains_key(i))
        .collect();
    let mut a = launcher.start(&node("node-a"), "node-a (restarted)", &missing, false);
    crash::wait_all_handled(&[&a, &b], &mut acked, tally, EVENTS, PHASE_LIMIT);
    crash::stop(&mut a, &mut acked, PHASE_LIMIT);
    crash::stop(&mut b, &mut acked, PHASE_LIMIT);
    let elapsed = started.elapsed();

    let store = rt.block_on(async {
        RedisStore::connect(&RedisConfig::new(redis.url()).prefix(PREFIX))
            .await
            .unwrap()
    });
    let (open, failed_attempts) = rt.block_on(async {
        let claim = store.claim(ClaimRequest::new(0, 0, LEASE)).await.unwrap();
        let mut failed = 0;
        for (index, id) in &acked {
            let delivery = store.delivery(*id).await.unwrap().unwrap();
            assert_eq!(delivery.status, DeliveryStatus::Delivered, "event {index}");
            failed += delivery
                .attempts
                .iter()
                .filter(|a| a.status() != Some(200))
                .count();
        }
        (claim.open, failed)
    });

    let deliveries = tally.requests();
    let redeliveries = deliveries - EVENTS;
    let cancelled = tally.handler_starts() - tally.handler_calls();
    println!(
        "redis crash test: {EVENTS} events over 2 nodes, node A SIGKILLed at {:?} \
         ({} acknowledged, {} handled) and restarted; {elapsed:?} in all\n\
         receiver: {deliveries} deliveries, {} handler calls ({cancelled} cancelled), \
         {} duplicates, {} rejected; redeliveries: {redeliveries}; store: {open} open",
        at_kill.2,
        at_kill.0,
        at_kill.1,
        tally.handler_calls(),
        tally.duplicates(),
        tally.rejected()
    );
    assert_eq!(tally.distinct(), EVENTS);
    assert_eq!(tally.max_calls_per_label(), 1, "an event was handled twice");
    assert_eq!(open, 0);
    assert!(redeliveries <= WORKERS + PUBLISHERS + failed_attempts);
    assert_eq!(
        tally.duplicates() + tally.rejected() + cancelled,
        redeliveries
    );
}

async fn publish(sender: &Sender, n: u64) -> Result<DeliveryId, webhook_sender::Error> {
    sender
        .publish(Publish::event(
            "org-redis",
            EventType::TransactionConfirmed,
            format!("tx-{n}"),
            json!({ "n": n }),
        ))
        .await
        .map(|receipt| receipt.deliveries[0].id)
}

#[test]
fn redis_connections_dropped_and_redis_restarted_lose_nothing_acknowledged() {
    let mut redis = RedisServer::start_with_aof();
    let rt = crash::runtime();
    rt.block_on(async {
        let receiver = CountingReceiver::start(
            WebhookLayer::new(Verifier::event_secrets([SECRET]).unwrap()),
            event_entity,
        )
        .await;
        let tally = receiver.tally();
        let config = RedisConfig::new(redis.url())
            .prefix("faults:")
            .connect_timeout(Duration::from_millis(300))
            .response_timeout(Duration::from_millis(500));
        let sender = Sender::builder()
            .store(RedisStore::connect(&config).await.unwrap())
            .allow_private_networks(AllowList::loopback())
            .idle_poll(Duration::from_millis(20))
            .lease(LEASE)
            .shutdown_timeout(Duration::from_secs(2))
            .build()
            .await
            .unwrap();
        sender
            .organizations()
            .set_secret("org-redis", HmacSecret::from_utf8(SECRET).unwrap())
            .await
            .unwrap();
        sender
            .endpoints()
            .create(
                EndpointConfig::event(
                    "org-redis",
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
            .unwrap();
        // The receiver is slow, so that deliveries are queued and in flight at each fault.
        tally.set_handler_delay(Duration::from_millis(20));
        let mut acked = Vec::new();
        for n in 0..300 {
            acked.push((n, publish(&sender, n).await.unwrap()));
        }

        // 1. Redis drops every client connection; the store reconnects by itself.
        let admin = redis::Client::open(redis.url()).unwrap();
        let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query_async(&mut admin)
            .await
            .unwrap();
        assert!(killed >= 1, "the store's connections were dropped");
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

        // 2. Redis dies (SIGKILL): publishing fails with a store error, promptly.
        tokio::task::block_in_place(|| redis.kill());
        let down = Instant::now();
        let mut errors = Vec::new();
        for n in 600..605 {
            let tried = Instant::now();
            let error = publish(&sender, n).await.unwrap_err();
            assert!(error.is_store(), "{error}");
            assert!(
                tried.elapsed() < Duration::from_secs(10),
                "a publish hung while Redis was down"
            );
            errors.push(error.to_string());
        }
        let down_for = down.elapsed();

        // 3. Redis comes back with its append-only file: nothing acknowledged is lost.
        tokio::task::block_in_place(|| redis.launch());
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
                        "Redis did not come back: {error}"
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
                    .delivery(&"org-redis".into(), *id)
                    .await
                    .unwrap()
                    .unwrap();
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
            "redis faults: {} publishes acknowledged ({failed_publishes} failed after CLIENT \
             KILL), Redis down {down_for:?} with every publish refused, e.g. {:?}; \
             receiver: {} deliveries, {} handler calls, {} duplicates",
            acked.len(),
            errors[0],
            tally.requests(),
            tally.handler_calls(),
            tally.duplicates()
        );
        sender.shutdown().await.unwrap();
    });
}
