//! The same delivery sent 100 times at once reaches the handler exactly once, with the
//! memory store and with the Redis store (against a `redis-server` this test starts).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{
    Fixture, IO_DEADLINE, RawResponse, Recorder, TestServer, event_body, recording_handler, send,
};
use tokio::sync::mpsc;
use tower::Layer as _;
use webhook_receiver::WebhookLayer;

const COPIES: usize = 100;

/// Sends `COPIES` identical requests at once; returns the channel their answers arrive on.
fn storm(
    server: &TestServer,
    request: &common::RawRequest,
) -> mpsc::UnboundedReceiver<RawResponse> {
    let (answers, received) = mpsc::unbounded_channel();
    for _ in 0..COPIES {
        let answers = answers.clone();
        let request = request.clone();
        let addr = server.addr;
        tokio::spawn(async move {
            let _ = answers.send(send(addr, &request).await);
        });
    }
    received
}

async fn next(received: &mut mpsc::UnboundedReceiver<RawResponse>) -> RawResponse {
    tokio::time::timeout(IO_DEADLINE, received.recv())
        .await
        .expect("an answer within the deadline")
        .expect("every sender answers")
}

/// The handler is held until 99 copies have been answered, so all 100 are surely
/// concurrent: one reaches the handler, 99 get a retryable 503; afterwards the delivery
/// is a duplicate.
async fn hundred_at_once_while_the_first_is_held(
    layer: WebhookLayer,
    fixture: &Fixture,
    key: &str,
) {
    let recorder = Recorder::gated();
    let server = TestServer::start(layer.layer(recording_handler(Arc::clone(&recorder)))).await;
    let request = fixture.signed("", &event_body(key));

    let mut received = storm(&server, &request);
    let mut answers = Vec::new();
    while answers.len() < COPIES - 1 {
        answers.push(next(&mut received).await);
    }
    let mut seen: Vec<(u16, String)> = answers.iter().map(|a| (a.status, a.body.clone())).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        recorder.calls(),
        1,
        "only one copy is being handled: {seen:?}"
    );
    recorder.gate.as_ref().unwrap().add_permits(1);
    answers.push(next(&mut received).await);

    let handled = answers
        .iter()
        .filter(|a| a.status == 200 && a.body == "handled")
        .count();
    let busy = answers
        .iter()
        .filter(|a| {
            a.status == 503
                && a.json()["error"] == "in_progress"
                && a.header("retry-after").is_some()
        })
        .count();
    assert_eq!((handled, busy), (1, COPIES - 1), "{answers:?}");
    assert_eq!(recorder.calls(), 1);

    let again = send(server.addr, &request).await;
    assert_eq!(again.json()["status"], "duplicate");
    assert_eq!(recorder.calls(), 1);
}

/// The handler answers at once: copies arriving after it finished are duplicates, those
/// arriving during it get 503; either way the handler runs once.
async fn hundred_at_once_free_running(layer: WebhookLayer, fixture: &Fixture, key: &str) {
    let recorder = Recorder::new();
    let server = TestServer::start(layer.layer(recording_handler(Arc::clone(&recorder)))).await;
    let request = fixture.signed("", &event_body(key));
    let mut received = storm(&server, &request);
    let mut answers = Vec::new();
    while answers.len() < COPIES {
        answers.push(next(&mut received).await);
    }
    assert_eq!(recorder.calls(), 1);
    assert_eq!(answers.iter().filter(|a| a.body == "handled").count(), 1);
    assert!(
        answers.iter().all(|a| a.status == 200 || a.status == 503),
        "{answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_handles_a_hundred_copies_once() {
    let fixture = Fixture::event();
    let layer = WebhookLayer::new(fixture.verifier.clone());
    hundred_at_once_while_the_first_is_held(layer.clone(), &fixture, "k-held").await;
    hundred_at_once_free_running(layer, &fixture, "k-free").await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_handles_a_hundred_copies_once() {
    use webhook_receiver::dedup::RedisStore;

    let redis = tokio::task::spawn_blocking(webhook_testkit::RedisServer::start)
        .await
        .unwrap();
    let store = RedisStore::connect(&redis.url(), "concurrency")
        .await
        .unwrap();
    let fixture = Fixture::event();
    let layer = WebhookLayer::new(fixture.verifier.clone()).dedup_store(store);
    hundred_at_once_while_the_first_is_held(layer.clone(), &fixture, "k-held").await;
    hundred_at_once_free_running(layer, &fixture, "k-free").await;
}
