//! Failure handling: redrive of one failed delivery and of an endpoint's failures since a
//! time, the circuit breaker, and the outcome stream.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Reply, TestServer, builder, outcomes};
use serde_json::json;
use webhook_core::clock::{Clock as _, ManualClock};
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::{
    BreakerConfig, DeliveryStatus, EndpointConfig, OutcomeStatus, Publish, RetryPolicy,
};

fn config(url: String) -> EndpointConfig {
    EndpointConfig::event("org", url, [EventType::TransactionFailed])
        .secret(HmacSecret::from_utf8("s").unwrap())
}

fn event(entity: &str) -> Publish {
    Publish::event(
        "org",
        EventType::TransactionFailed,
        entity,
        json!({"id": entity}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_redriven_with_its_history() {
    let server = TestServer::sequence(vec![Reply::status(400).body("missing field")]).await;
    let sender = builder().build().await.unwrap();
    sender
        .endpoints()
        .create(config(server.url("/")))
        .await
        .unwrap();
    let mut watch = sender.outcomes();
    let receipt = sender.publish(event("t1")).await.unwrap();
    let id = receipt.deliveries[0].id;
    let failed = outcomes(&mut watch, 1).await.remove(0);
    assert_eq!(
        (failed.delivery, failed.status),
        (id, OutcomeStatus::Failed)
    );
    assert_eq!(failed.last_status, Some(400));
    let delivery = sender.delivery(&"org".into(), id).await.unwrap().unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Failed);
    assert!(delivery.finished_at().is_some());
    let webhook_sender::AttemptResult::Response { body, .. } = &delivery.attempts[0].result else {
        panic!("a response")
    };
    assert_eq!(
        body, "missing field",
        "the response body is kept for debugging"
    );

    sender.redrive(&"org".into(), id).await.unwrap();
    let delivered = outcomes(&mut watch, 1).await.remove(0);
    assert_eq!(
        (delivered.delivery, delivered.status),
        (id, OutcomeStatus::Delivered)
    );
    assert_eq!(delivered.attempts, 2);
    let delivery = sender.delivery(&"org".into(), id).await.unwrap().unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    let statuses: Vec<_> = delivery.attempts.iter().map(|a| a.status()).collect();
    assert_eq!(statuses, [Some(400), Some(200)]);
    assert_eq!(delivery.attempts[1].number, 2);
    assert!(
        sender
            .redrive(&"org".into(), id)
            .await
            .unwrap_err()
            .is_not_found(),
        "not failed any more"
    );
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoints_failures_since_a_time_are_redriven() {
    let clock = ManualClock::at_unix(1_746_714_600);
    let server = TestServer::start(|r| Reply::status(if r.index < 3 { 400 } else { 200 })).await;
    let sender = builder().clock(clock.clone()).build().await.unwrap();
    let endpoint = sender
        .endpoints()
        .create(config(server.url("/")))
        .await
        .unwrap();
    let mut watch = sender.outcomes();
    let early = sender.publish(event("t1")).await.unwrap();
    outcomes(&mut watch, 1).await;
    clock.advance(Duration::from_secs(10));
    let since = clock.now() - Duration::from_secs(5);
    let late: Vec<_> = [
        sender.publish(event("t2")).await.unwrap(),
        sender.publish(event("t3")).await.unwrap(),
    ]
    .into_iter()
    .flat_map(|r| r.deliveries)
    .collect();
    assert!(
        outcomes(&mut watch, 2)
            .await
            .iter()
            .all(|o| o.status == OutcomeStatus::Failed)
    );

    let mut redriven = sender
        .redrive_failed_since(&"org".into(), Some(endpoint), since)
        .await
        .unwrap();
    redriven.sort();
    let mut expected: Vec<_> = late.iter().map(|d| d.id).collect();
    expected.sort();
    assert_eq!(redriven, expected, "only the failures after `since`");
    let done = outcomes(&mut watch, 2).await;
    assert!(done.iter().all(|o| o.status == OutcomeStatus::Delivered));
    let early = sender
        .delivery(&"org".into(), early.deliveries[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        early.status,
        DeliveryStatus::Failed,
        "failed before `since`: left alone"
    );
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_pauses_a_failing_endpoint_then_probes_it() {
    let healthy = Arc::new(AtomicBool::new(false));
    let server = {
        let healthy = healthy.clone();
        TestServer::start(move |_| {
            Reply::status(if healthy.load(Ordering::SeqCst) {
                200
            } else {
                503
            })
        })
        .await
    };
    let cooldown = Duration::from_millis(400);
    let sender = builder()
        .breaker(BreakerConfig {
            threshold: 3,
            cooldown,
        })
        .build()
        .await
        .unwrap();
    let policy = RetryPolicy::schedule(
        std::iter::once(Duration::ZERO).chain(std::iter::repeat_n(Duration::from_millis(10), 30)),
    );
    sender
        .endpoints()
        .create(config(server.url("/")).retry(policy))
        .await
        .unwrap();
    let mut watch = sender.outcomes();
    let first = sender.publish(event("t1")).await.unwrap();
    let requests = server.wait_for(4).await;
    // Three quick failures, then nothing for the cool-down, then one probe.
    for pair in requests[..3].windows(2) {
        assert!(pair[1].started - pair[0].started < cooldown / 2);
    }
    let paused = requests[3].started - requests[2].started;
    assert!(
        paused + Duration::from_millis(5) >= cooldown,
        "probe after {paused:?}"
    );

    // Another event for the paused endpoint waits too.
    let second = sender.publish(event("t2")).await.unwrap();
    healthy.store(true, Ordering::SeqCst);
    let done = outcomes(&mut watch, 2).await;
    assert!(done.iter().all(|o| o.status == OutcomeStatus::Delivered));
    let delivered: Vec<_> = done.iter().map(|o| o.delivery).collect();
    assert!(
        delivered.contains(&first.deliveries[0].id) && delivered.contains(&second.deliveries[0].id)
    );
    let second = sender
        .delivery(&"org".into(), second.deliveries[0].id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        second.attempts.len() <= 2,
        "paused time is not counted as attempts: {:?}",
        second.attempts
    );
    sender.shutdown().await.unwrap();
}
