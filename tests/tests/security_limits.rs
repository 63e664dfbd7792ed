//! Body size limits on both sides: the receiver answers 413 to a delivery over its limit
//! (and the sender fails it at once, without retrying), and the sender reads at most 8 KiB
//! of any response body, keeping 1 KiB in the attempt history, so an endless or huge
//! answer neither stalls an attempt nor fills memory.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use webhook_core::event::EventType;
use webhook_e2e::receiver::{CountingReceiver, event_entity};
use webhook_e2e::sender::{loopback_sender, wait_one_finished};
use webhook_e2e::server::HttpServer;
use webhook_receiver::{Verifier, WebhookLayer};
use webhook_sender::{AttemptResult, DeliveryStatus, EndpointConfig, Publish, RetryPolicy, Sender};

const SECRET: &str = "limits-test-organization-secret";
const ORGANIZATION: &str = "org-limits";
/// The most the endless body ever produces, so that a broken cap still ends the test.
const SAFETY_STOP: usize = 256 * 1024 * 1024;
/// How long a delivery may take to finish.
const WAIT: Duration = Duration::from_secs(30);

async fn sender() -> Sender {
    loopback_sender(ORGANIZATION, SECRET, |builder| builder).await
}

fn event(n: u64, padding: usize) -> Publish {
    Publish::event(
        ORGANIZATION,
        EventType::WalletCreated,
        format!("w-{n}"),
        json!({ "n": n, "padding": "p".repeat(padding) }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_answers_413_over_its_limit_and_the_sender_does_not_retry() {
    let receiver = CountingReceiver::start(
        WebhookLayer::new(
            Verifier::event_secrets([SECRET])
                .unwrap()
                .max_body_size(2048),
        ),
        event_entity,
    )
    .await;
    let sender = sender().await;
    sender
        .endpoints()
        .create(
            EndpointConfig::event(ORGANIZATION, receiver.url(), [EventType::WalletCreated])
                .retry(RetryPolicy::schedule([Duration::ZERO; 5])),
        )
        .await
        .unwrap();
    let small = sender.publish(event(1, 100)).await.unwrap().deliveries[0].id;
    let large = sender.publish(event(2, 4096)).await.unwrap().deliveries[0].id;
    assert_eq!(
        wait_one_finished(&sender, &ORGANIZATION.into(), small, WAIT)
            .await
            .status,
        DeliveryStatus::Delivered
    );
    let refused = wait_one_finished(&sender, &ORGANIZATION.into(), large, WAIT).await;
    assert_eq!(refused.status, DeliveryStatus::Failed);
    assert_eq!(refused.attempts.len(), 1, "413 is not retried");
    assert_eq!(refused.attempts[0].status(), Some(413));
    assert_eq!(receiver.tally().handler_calls(), 1);
    assert_eq!(receiver.tally().rejected(), 1);
    sender.shutdown().await.unwrap();

    // A declared length over the default limit (1 MiB) is refused before any body is read:
    // the answer comes although the 10 GiB never follow.
    let default = CountingReceiver::start(
        WebhookLayer::new(Verifier::event_secrets([SECRET]).unwrap()),
        event_entity,
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(default.addr())
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Content-Length: 10737418240\r\n\r\n{",
        )
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert_eq!(default.tally().handler_calls(), 0);
}

/// An answer body that never ends (until [`SAFETY_STOP`]), counting what was produced.
struct Endless {
    produced: Arc<AtomicUsize>,
}

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        const CHUNK: usize = 64 * 1024;
        if self.produced.fetch_add(CHUNK, Ordering::SeqCst) >= SAFETY_STOP {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; CHUNK])))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_reads_at_most_8_kib_of_an_endless_answer() {
    let produced = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&produced);
    let server = HttpServer::start(hyper::service::service_fn(move |_request: Request<_>| {
        // The first answer is a 503 (retried), the second a 200; both endless.
        let first = requests.fetch_add(1, Ordering::SeqCst) == 0;
        let mut response = Response::new(Endless {
            produced: Arc::clone(&counted),
        });
        if first {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        async move { Ok::<_, Infallible>(response) }
    }))
    .await;

    let sender = sender().await;
    sender
        .endpoints()
        .create(
            EndpointConfig::event(ORGANIZATION, server.url(), [EventType::WalletCreated])
                .timeout(Duration::from_secs(20))
                .retry(RetryPolicy::schedule([
                    Duration::ZERO,
                    Duration::from_millis(10),
                ])),
        )
        .await
        .unwrap();
    let id = sender.publish(event(1, 10)).await.unwrap().deliveries[0].id;
    let delivery = wait_one_finished(&sender, &ORGANIZATION.into(), id, WAIT).await;
    assert_eq!(delivery.status, DeliveryStatus::Delivered, "{delivery:?}");
    assert_eq!(delivery.attempts.len(), 2);
    for attempt in &delivery.attempts {
        let AttemptResult::Response { body, .. } = &attempt.result else {
            panic!("an attempt got no response: {attempt:?}");
        };
        assert!(
            body.len() <= 1024,
            "{} bytes kept in the history",
            body.len()
        );
        assert!(body.starts_with("xxxx"));
    }
    let produced = produced.load(Ordering::SeqCst);
    println!(
        "endless answers: the server produced {} KiB in all before the sender hung up",
        produced / 1024
    );
    // Socket buffers take a few MiB; a sender reading everything would take all 256 MiB.
    assert!(
        produced < 32 * 1024 * 1024,
        "the sender kept reading: {produced} bytes"
    );
    sender.shutdown().await.unwrap();
}
