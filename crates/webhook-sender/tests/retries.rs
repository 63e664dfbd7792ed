//! Response classification and retry policies against real servers (SPEC §4), with
//! schedules scaled down so that nothing waits for real minutes.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Reply, TestServer, builder, outcomes};
use serde_json::json;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::{
    AttemptErrorKind, BreakerConfig, DeliveryStatus, EndpointConfig, OutcomeStatus, Publish,
    RetryPolicy, Sender,
};

const ORG: &str = "org";

fn quick(n: usize) -> RetryPolicy {
    RetryPolicy::schedule(
        std::iter::once(Duration::ZERO)
            .chain(std::iter::repeat_n(Duration::from_millis(20), n - 1)),
    )
}

async fn sender_with(url: &str, policy: RetryPolicy, timeout: Duration) -> Sender {
    // Breakers off: these tests look at one delivery's retries, not at pausing.
    let breaker = BreakerConfig {
        threshold: 0,
        cooldown: Duration::ZERO,
    };
    let sender = builder().breaker(breaker).build().await.unwrap();
    let config = EndpointConfig::event(ORG, url, [EventType::TransactionFailed])
        .secret(HmacSecret::from_utf8("s").unwrap())
        .retry(policy)
        .timeout(timeout);
    sender.endpoints().create(config).await.unwrap();
    sender
}

fn event(entity: &str) -> Publish {
    Publish::event(
        ORG,
        EventType::TransactionFailed,
        entity,
        json!({"id": entity}),
    )
}

/// Publishes one event and waits for its outcome; returns the delivery's attempt statuses
/// (or error kinds) and final status.
async fn run(sender: &Sender) -> (Vec<String>, DeliveryStatus) {
    let mut watch = sender.outcomes();
    let receipt = sender.publish(event("t1")).await.unwrap();
    outcomes(&mut watch, 1).await;
    let delivery = sender
        .delivery(&"org".into(), receipt.deliveries[0].id)
        .await
        .unwrap()
        .unwrap();
    let attempts = delivery
        .attempts
        .iter()
        .map(|a| match a.status() {
            Some(status) => status.to_string(),
            None => a.error_kind().unwrap().as_str().to_owned(),
        })
        .collect();
    (attempts, delivery.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_statuses_are_retried_and_others_fail_at_once() {
    let cases: &[(&[u16], &[&str], DeliveryStatus)] = &[
        (
            &[503, 500, 200],
            &["503", "500", "200"],
            DeliveryStatus::Delivered,
        ),
        (
            &[408, 429, 204],
            &["408", "429", "204"],
            DeliveryStatus::Delivered,
        ),
        (&[400], &["400"], DeliveryStatus::Failed),
        (&[401], &["401"], DeliveryStatus::Failed),
        (&[404], &["404"], DeliveryStatus::Failed),
        (&[422], &["422"], DeliveryStatus::Failed),
        (&[503, 413], &["503", "413"], DeliveryStatus::Failed),
        // Redirects are not followed: a 3xx fails.
        (&[302], &["302"], DeliveryStatus::Failed),
        // Retries stop after the policy's last attempt.
        (
            &[503, 503, 503, 503],
            &["503", "503", "503"],
            DeliveryStatus::Failed,
        ),
    ];
    for (replies, expected, status) in cases {
        let server = TestServer::sequence(
            replies
                .iter()
                .map(|s| {
                    let reply = Reply::status(*s);
                    if *s == 302 {
                        reply.header("location", "http://127.0.0.1:1/")
                    } else {
                        reply
                    }
                })
                .collect(),
        )
        .await;
        let sender = sender_with(&server.url("/"), quick(3), Duration::from_secs(5)).await;
        let (attempts, final_status) = run(&sender).await;
        assert_eq!(&attempts, expected, "replies {replies:?}");
        assert_eq!(final_status, *status, "replies {replies:?}");
        assert_eq!(server.len(), expected.len());
        sender.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_refused_connections_are_retried() {
    // A slow answer times out, then the endpoint recovers.
    let server = TestServer::sequence(vec![Reply::hang(), Reply::ok()]).await;
    let sender = sender_with(&server.url("/"), quick(3), Duration::from_millis(200)).await;
    let (attempts, status) = run(&sender).await;
    assert_eq!(attempts, ["timeout", "200"]);
    assert_eq!(status, DeliveryStatus::Delivered);
    sender.shutdown().await.unwrap();

    // Nothing listens: every attempt is refused, and the delivery fails after the last.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let sender = sender_with(&url, quick(3), Duration::from_secs(5)).await;
    let mut watch = sender.outcomes();
    let receipt = sender.publish(event("t1")).await.unwrap();
    let outcome = outcomes(&mut watch, 1).await.remove(0);
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert_eq!(outcome.attempts, 3);
    assert_eq!(outcome.last_status, None);
    let delivery = sender
        .delivery(&"org".into(), receipt.deliveries[0].id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        delivery.attempts.iter().all(|a| a.is_connect()),
        "{:?}",
        delivery.attempts
    );
    assert_eq!(
        delivery.attempts[0].error_kind(),
        Some(AttemptErrorKind::Connect)
    );
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_failures_are_retried_like_connection_errors() {
    let sender = builder()
        .resolver(webhook_sender::StaticResolver::new())
        .build()
        .await
        .unwrap();
    let config = EndpointConfig::event(ORG, "http://nowhere.test/", [EventType::TransactionFailed])
        .secret(HmacSecret::from_utf8("s").unwrap())
        .retry(quick(2));
    sender.endpoints().create(config).await.unwrap();
    let (attempts, status) = run(&sender).await;
    assert_eq!(attempts, ["dns", "dns"]);
    assert_eq!(status, DeliveryStatus::Failed);
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_on_429_and_503() {
    for status in [429, 503] {
        let server = TestServer::sequence(vec![
            Reply::status(status).header("retry-after", "1"),
            Reply::ok(),
        ])
        .await;
        // The schedule alone would retry after 10 ms; the longest delay (2 s) caps hints.
        let policy = RetryPolicy::schedule([
            Duration::ZERO,
            Duration::from_millis(10),
            Duration::from_secs(2),
        ]);
        let sender = sender_with(&server.url("/"), policy, Duration::from_secs(5)).await;
        let (attempts, final_status) = run(&sender).await;
        assert_eq!(attempts, [status.to_string(), "200".to_owned()]);
        assert_eq!(final_status, DeliveryStatus::Delivered);
        let requests = server.requests();
        let gap = requests[1].started - requests[0].started;
        assert!(
            gap >= Duration::from_millis(990),
            "{status}: retried after {gap:?}"
        );
        assert!(
            gap < Duration::from_secs(2),
            "{status}: retried after {gap:?}"
        );
        sender.shutdown().await.unwrap();
    }

    // A hint longer than the policy's longest delay is capped by it.
    let server = TestServer::sequence(vec![
        Reply::status(429).header("retry-after", "3600"),
        Reply::ok(),
    ])
    .await;
    let sender = sender_with(&server.url("/"), quick(2), Duration::from_secs(5)).await;
    let started = Instant::now();
    let (attempts, _) = run(&sender).await;
    assert_eq!(attempts, ["429", "200"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_fails_at_once_and_disables_the_endpoint() {
    let server = TestServer::sequence(vec![Reply::status(410)]).await;
    let sender = builder().build().await.unwrap();
    let config = EndpointConfig::event(ORG, server.url("/"), [EventType::TransactionFailed])
        .secret(HmacSecret::from_utf8("s").unwrap())
        .retry(quick(5));
    let endpoint = sender.endpoints().create(config).await.unwrap();
    let (attempts, status) = run(&sender).await;
    assert_eq!(attempts, ["410"]);
    assert_eq!(status, DeliveryStatus::Failed);
    let info = sender.endpoints().get(&ORG.into(), endpoint).unwrap();
    assert_eq!(
        info.state,
        webhook_sender::EndpointState::Disabled {
            reason: "410 Gone".into()
        }
    );
    // New events are no longer queued for it.
    let receipt = sender.publish(event("t2")).await.unwrap();
    assert!(receipt.deliveries.is_empty());
    assert_eq!(server.len(), 1);
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_001_schedule_is_followed() {
    // The seed's schedule, scaled down 10 000 times: 0, 6, 12, 18, 32, 48, 84, 150, 282,
    // 540 ms before attempts 1 to 10.
    let RetryPolicy::Schedule { delays } = RetryPolicy::domain_default() else {
        panic!("a schedule")
    };
    let scaled: Vec<Duration> = delays.iter().map(|d| *d / 10_000).collect();
    let server = TestServer::start(|_| Reply::status(503)).await;
    let sender = sender_with(
        &server.url("/"),
        RetryPolicy::schedule(scaled.clone()),
        Duration::from_secs(5),
    )
    .await;
    let (attempts, status) = run(&sender).await;
    assert_eq!(attempts.len(), 10, "ten attempts, then failed");
    assert_eq!(status, DeliveryStatus::Failed);
    let requests = server.requests();
    assert_eq!(requests.len(), 10);
    for (k, pair) in requests.windows(2).enumerate() {
        let gap = pair[1].started - pair[0].started;
        let wanted = scaled[k + 1];
        // Never sooner than the schedule (1 ms for wall-clock rounding); a generous upper
        // bound for a loaded machine.
        assert!(
            gap + Duration::from_millis(1) >= wanted,
            "attempt {}: {gap:?} < {wanted:?}",
            k + 2
        );
        assert!(
            gap < wanted + Duration::from_millis(400),
            "attempt {}: {gap:?} ≫ {wanted:?}",
            k + 2
        );
    }
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_is_signed_afresh() {
    let server = TestServer::sequence(vec![Reply::status(503), Reply::ok()]).await;
    let policy = RetryPolicy::schedule([Duration::ZERO, Duration::from_millis(1100)]);
    let sender = sender_with(&server.url("/"), policy, Duration::from_secs(5)).await;
    run(&sender).await;
    let requests = server.requests();
    let stamp = |i: usize| {
        requests[i].headers["x-webhook-timestamp"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let signature = |i: usize| {
        requests[i].headers["x-webhook-signature"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(stamp(0), stamp(1), "each attempt has its own timestamp");
    assert_ne!(signature(0), signature(1));
    assert_eq!(requests[0].body, requests[1].body, "the same event");
    let trusted = webhook_core::TrustedKeys::Event(vec![HmacSecret::from_utf8("s").unwrap()]);
    for r in &requests {
        common::verify(&trusted, r).unwrap();
    }
    sender.shutdown().await.unwrap();
}
