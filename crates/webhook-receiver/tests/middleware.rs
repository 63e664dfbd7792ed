//! The middleware's behaviour: each style's happy path, key rotation, dedup release on
//! handler failure, error and panic, dropped requests, store failures, quick-ack and
//! metrics.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{
    Fixture, NOW, Recorder, TestServer, body_text, call_until_not_503, event_body, from_signed,
    recording_handler, send, standard_body, to_http, wait_until, wallet_json,
};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer as _, ServiceExt as _};
use webhook_core::domain::Resource;
use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey, HmacSecret};
use webhook_core::scheme::StandardSigningKey;
use webhook_core::{Outgoing, SigningKeys, Style, VerifiedMessage};
use webhook_receiver::dedup::{Begin, Claim, DedupError, DedupFuture, DedupStore, MemoryStore};
use webhook_receiver::{QuickAck, VerifiedWebhook, Verifier, WebhookLayer};

/// One scenario, run once per style: a delivery is handled once, its retry is a
/// duplicate, and the handler sees the typed message.
#[tokio::test]
async fn each_style_is_handled_once_and_typed() {
    let event = Fixture::event();
    let domain = Fixture::domain();
    let standard = Fixture::standard();
    let deliveries = [
        (&event, event.signed("", &event_body("k-happy")), "k-happy"),
        (
            &domain,
            domain.signed("", &wallet_json("w-1", "2025-05-08T14:29:59Z")),
            "w-1@2025-05-08T14:29:59Z",
        ),
        (
            &standard,
            standard.signed("msg_1", &standard_body(1)),
            "msg_1",
        ),
    ];
    for (fixture, request, key) in deliveries {
        let recorder = Recorder::new();
        let seen = Arc::new(std::sync::Mutex::new(None::<VerifiedWebhook>));
        let keep = Arc::clone(&seen);
        let inner = recording_handler(Arc::clone(&recorder));
        let handler = tower::service_fn(move |request: Request<Full<Bytes>>| {
            *keep.lock().unwrap() = request.extensions().get::<VerifiedWebhook>().cloned();
            inner.clone().oneshot(request)
        });
        let server =
            TestServer::start(WebhookLayer::new(fixture.verifier.clone()).layer(handler)).await;

        let first = send(server.addr, &request).await;
        assert_eq!((first.status, first.body.as_str()), (200, "handled"));
        let again = send(server.addr, &request).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.json()["status"], "duplicate");
        assert_eq!(recorder.calls(), 1);
        assert_eq!(recorder.keys(), [key]);

        let webhook = seen.lock().unwrap().clone().unwrap();
        assert_eq!(webhook.dedup_key(), key);
        assert_eq!(webhook.body().as_ref(), request.body.as_slice());
        assert_eq!(webhook.timestamp(), NOW);
        match webhook.style() {
            Style::Event => {
                let event = webhook.event().unwrap();
                assert_eq!(event.event_type.as_str(), "transaction.confirmed");
                assert_eq!(webhook.kind(), "transaction.confirmed");
                assert_eq!(
                    webhook.json::<serde_json::Value>().unwrap()["data"]["txId"],
                    "t1"
                );
            }
            Style::Domain => {
                let (envelope, resource) = webhook.domain().unwrap();
                assert_eq!(envelope.domain.as_str(), "WALLET");
                let Resource::Wallet(wallet) = resource else {
                    panic!("expected a wallet, got {resource:?}");
                };
                assert!(wallet.status.is_terminal());
            }
            Style::Standard => {
                assert_eq!(webhook.standard_payload().unwrap()["data"]["n"], 1);
                assert_eq!(webhook.kind(), "invoice.paid");
                assert!(matches!(
                    webhook.message(),
                    VerifiedMessage::Standard { .. }
                ));
            }
        }
        // Debug shows identifiers, not the payload.
        let debug = format!("{webhook:?}");
        assert!(debug.contains(key) && !debug.contains("PROVISIONED") && !debug.contains("txId"));
    }
}

#[tokio::test]
async fn unknown_event_types_and_domains_are_accepted() {
    let event = Fixture::event();
    let body = br#"{"id":"e9","type":"payout.sent","idempotencyKey":"k-new-type","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{}}"#;
    let service =
        WebhookLayer::new(event.verifier.clone()).layer(recording_handler(Recorder::new()));
    let response = service
        .oneshot(to_http(&event.signed("", body)))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let domain = Fixture::domain();
    let recorder = Recorder::new();
    let service =
        WebhookLayer::new(domain.verifier.clone()).layer(recording_handler(Arc::clone(&recorder)));
    let future = webhook_core::domain::Domain::from("PAYOUT");
    let resource = br#"{"id":"p1","updatedAt":"2025-05-08T14:29:00Z","amount":"1.5"}"#;
    let signed = domain
        .signer
        .sign(
            &Outgoing::new("p1", resource).with_domain(&future),
            common::at(NOW),
        )
        .unwrap();
    let response = service
        .oneshot(to_http(&from_signed(signed)))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(recorder.keys(), ["p1@2025-05-08T14:29:00Z"]);
}

/// Two secrets or keys during a rotation: a request signed by either (or both) passes,
/// one signed by neither does not.
#[tokio::test]
async fn rotation_accepts_any_configured_key() {
    let old = HmacSecret::from_utf8("old-secret").unwrap();
    let new = HmacSecret::from_utf8("new-secret").unwrap();
    let retired = HmacSecret::from_utf8("retired-secret").unwrap();
    let verifier = Verifier::event_secrets(["old-secret", "new-secret"])
        .unwrap()
        .clock(webhook_core::clock::ManualClock::at_unix(NOW));
    let recorder = Recorder::new();
    let service = WebhookLayer::new(verifier).layer(recording_handler(Arc::clone(&recorder)));
    let cases = [
        ("old only", vec![old.clone()], 200),
        ("new only", vec![new.clone()], 200),
        ("both, comma-separated", vec![new, old], 200),
        ("retired only", vec![retired], 401),
    ];
    for (i, (name, secrets, status)) in cases.into_iter().enumerate() {
        let body = event_body(&format!("rotation-{i}"));
        let signed = SigningKeys::Event(secrets)
            .sign(&Outgoing::new("", &body), common::at(NOW))
            .unwrap();
        let response = service
            .clone()
            .oneshot(to_http(&from_signed(signed)))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
    }
    assert_eq!(recorder.calls(), 3);

    // Domain style: two public keys.
    let (first, _) = EcdsaSigningKey::generate().unwrap();
    let (second, _) = EcdsaSigningKey::generate().unwrap();
    let (stranger, _) = EcdsaSigningKey::generate().unwrap();
    let verifier = Verifier::domain_public_keys([
        first.public_key().to_spki_base64(),
        second.public_key().to_spki_base64(),
    ])
    .unwrap()
    .clock(webhook_core::clock::ManualClock::at_unix(NOW));
    let service = WebhookLayer::new(verifier).layer(recording_handler(Recorder::new()));
    for (i, (key, status)) in [(first, 200), (second, 200), (stranger, 401)]
        .into_iter()
        .enumerate()
    {
        let resource = wallet_json(&format!("w-rot-{i}"), "2025-05-08T14:29:00Z");
        let signed = SigningKeys::Domain(Box::new(key))
            .sign(
                &Outgoing::new("", &resource).with_domain(&webhook_core::domain::Domain::Wallet),
                common::at(NOW),
            )
            .unwrap();
        let response = service
            .clone()
            .oneshot(to_http(&from_signed(signed)))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "domain key {i}");
    }

    // Standard Webhooks: a whsec_ secret and a whpk_ public key side by side.
    let secret = HmacSecret::generate().unwrap();
    let ed = Ed25519SigningKey::generate().unwrap();
    let verifier =
        Verifier::standard_keys([secret.to_whsec().to_string(), ed.public_key().to_whpk()])
            .unwrap()
            .clock(webhook_core::clock::ManualClock::at_unix(NOW));
    let service = WebhookLayer::new(verifier).layer(recording_handler(Recorder::new()));
    let signers = [
        StandardSigningKey::Symmetric(secret),
        StandardSigningKey::Asymmetric(ed),
        StandardSigningKey::Symmetric(HmacSecret::generate().unwrap()),
    ];
    for (i, (key, status)) in signers.into_iter().zip([200, 200, 401]).enumerate() {
        let body = standard_body(u32::try_from(i).unwrap());
        let signed = SigningKeys::Standard(vec![key])
            .sign(
                &Outgoing::new(&format!("msg_rot_{i}"), &body),
                common::at(NOW),
            )
            .unwrap();
        let response = service
            .clone()
            .oneshot(to_http(&from_signed(signed)))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "standard key {i}");
    }
}

/// A handler that answers 500 does not swallow the event: the key is released, the
/// sender's retry is handled, and only then do duplicates get 200.
#[tokio::test]
async fn a_failed_handler_releases_the_key_for_the_retry() {
    let event = Fixture::event();
    let recorder = Recorder::new();
    recorder.fail_next.store(2, Ordering::SeqCst);
    let server = TestServer::start(
        WebhookLayer::new(event.verifier.clone()).layer(recording_handler(Arc::clone(&recorder))),
    )
    .await;
    let request = event.signed("", &event_body("k-fail"));
    assert_eq!(send(server.addr, &request).await.status, 500);
    // The sender retries later, signing afresh.
    event.clock.advance(Duration::from_secs(60));
    let retry = event.signed_at("", &event_body("k-fail"), NOW + 60);
    assert_eq!(send(server.addr, &retry).await.status, 500);
    let third = send(server.addr, &retry).await;
    assert_eq!((third.status, third.body.as_str()), (200, "handled"));
    let fourth = send(server.addr, &retry).await;
    assert_eq!(fourth.json()["status"], "duplicate");
    assert_eq!(recorder.calls(), 3);
}

#[tokio::test]
async fn a_handler_error_or_panic_releases_the_key() {
    let event = Fixture::event();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    // First call errs, second panics, third succeeds.
    let handler = tower::service_fn(move |_request: Request<Full<Bytes>>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0 => Err(std::io::Error::other("database down")),
                1 => panic!("handler bug"),
                _ => Ok(Response::new(Full::new(Bytes::from_static(b"ok")))),
            }
        }
    });
    let service = WebhookLayer::new(event.verifier.clone()).layer(handler);
    let request = event.signed("", &event_body("k-err"));

    assert!(service.clone().oneshot(to_http(&request)).await.is_err());
    let panicked = tokio::spawn(service.clone().oneshot(to_http(&request))).await;
    assert!(panicked.unwrap_err().is_panic());
    // The panic's release runs in a spawned task: poll (bounded) until it has.
    let response = call_until_not_503(&service, &request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// A request dropped while its handler runs (the client went away) releases its key.
#[tokio::test]
async fn a_dropped_request_releases_the_key() {
    let event = Fixture::event();
    let recorder = Recorder::gated();
    let service =
        WebhookLayer::new(event.verifier.clone()).layer(recording_handler(Arc::clone(&recorder)));
    let request = event.signed("", &event_body("k-drop"));

    let in_flight = service.clone().oneshot(to_http(&request));
    tokio::select! {
        _ = in_flight => panic!("the gated handler cannot answer"),
        () = wait_until("the handler to start", || recorder.calls() == 1) => {}
    }
    // While it ran, a duplicate got 503; now that it is dropped, the key is free again.
    recorder.gate.as_ref().unwrap().add_permits(10);
    let answer = body_text(call_until_not_503(&service, &request).await).await;
    assert_eq!(answer, (StatusCode::OK, "handled".to_owned()));
    assert_eq!(recorder.calls(), 2);
}

#[tokio::test]
async fn in_progress_duplicates_get_503_with_retry_after() {
    let event = Fixture::event();
    let recorder = Recorder::gated();
    let service =
        WebhookLayer::new(event.verifier.clone()).layer(recording_handler(Arc::clone(&recorder)));
    let request = event.signed("", &event_body("k-busy"));
    let first = tokio::spawn(service.clone().oneshot(to_http(&request)));
    wait_until("the handler to start", || recorder.calls() == 1).await;

    let busy = service.clone().oneshot(to_http(&request)).await.unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "5");
    let (_, text) = body_text(busy).await;
    assert!(text.contains("in_progress"), "{text}");

    recorder.gate.as_ref().unwrap().add_permits(1);
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    let (status, text) = body_text(service.oneshot(to_http(&request)).await.unwrap()).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, r#"{"status":"duplicate"}"#)
    );
}

/// A store that always fails.
#[derive(Debug)]
struct BrokenStore;

impl DedupStore for BrokenStore {
    fn begin<'a>(&'a self, _key: &'a str, _lease: Duration) -> DedupFuture<'a, Begin> {
        Box::pin(async { Err(DedupError::unavailable("connection refused")) })
    }
    fn complete<'a>(&'a self, _: &'a str, _: &'a Claim, _: Duration) -> DedupFuture<'a, ()> {
        Box::pin(async { Err(DedupError::unavailable("connection refused")) })
    }
    fn release<'a>(&'a self, _: &'a str, _: &'a Claim) -> DedupFuture<'a, ()> {
        Box::pin(async { Err(DedupError::unavailable("connection refused")) })
    }
}

/// A store that claims but cannot record completion.
#[derive(Debug, Default)]
struct ForgetfulStore;

impl DedupStore for ForgetfulStore {
    fn begin<'a>(&'a self, _key: &'a str, _lease: Duration) -> DedupFuture<'a, Begin> {
        Box::pin(async { Ok(Begin::New(Claim::new("c"))) })
    }
    fn complete<'a>(&'a self, _: &'a str, _: &'a Claim, _: Duration) -> DedupFuture<'a, ()> {
        Box::pin(async { Err(DedupError::unavailable("timeout")) })
    }
    fn release<'a>(&'a self, _: &'a str, _: &'a Claim) -> DedupFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn store_failures_are_503_before_and_invisible_after_the_handler() {
    let event = Fixture::event();
    let recorder = Recorder::new();
    let service = WebhookLayer::new(event.verifier.clone())
        .dedup_store(BrokenStore)
        .layer(recording_handler(Arc::clone(&recorder)));
    let response = service
        .oneshot(to_http(&event.signed("", &event_body("k-store"))))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let (_, text) = body_text(response).await;
    assert!(
        text.contains("dedup_unavailable") && !text.contains("refused"),
        "{text}"
    );
    assert_eq!(recorder.calls(), 0);

    let service = WebhookLayer::new(event.verifier.clone())
        .dedup_store(ForgetfulStore)
        .layer(recording_handler(Arc::clone(&recorder)));
    let response = service
        .oneshot(to_http(&event.signed("", &event_body("k-store"))))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "the handler succeeded; the sender must not retry"
    );
    assert_eq!(recorder.calls(), 1);
}

#[tokio::test]
async fn a_full_memory_store_answers_503_until_keys_expire() {
    let event = Fixture::event();
    let store = MemoryStore::with_capacity(2).clock(event.clock.clone());
    let recorder = Recorder::new();
    let service = WebhookLayer::new(event.verifier.clone())
        .dedup_store(store.clone())
        .dedup_ttl(Duration::from_secs(600))
        .layer(recording_handler(Arc::clone(&recorder)));
    for key in ["a", "b"] {
        let response = service
            .clone()
            .oneshot(to_http(&event.signed("", &event_body(key))))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let full = service
        .clone()
        .oneshot(to_http(&event.signed("", &event_body("c"))))
        .await
        .unwrap();
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "30");
    assert_eq!(recorder.calls(), 2);

    // The sender retries after the keys expired (signing afresh).
    event.clock.advance(Duration::from_secs(600));
    let retry = event.signed_at("", &event_body("c"), NOW + 600);
    let response = service.oneshot(to_http(&retry)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn dedup_outlives_the_replay_window() {
    // Even with a TTL shorter than the window, a replay inside the window is a duplicate.
    let event = Fixture::event();
    let recorder = Recorder::new();
    let service = WebhookLayer::new(event.verifier.clone())
        .dedup_ttl(Duration::from_secs(1))
        .layer(recording_handler(Arc::clone(&recorder)));
    // Sent with a timestamp 300 s ahead of the receiver's clock: valid for 600 s.
    let request = event.signed_at("", &event_body("k-horizon"), NOW + 300);
    assert_eq!(
        service
            .clone()
            .oneshot(to_http(&request))
            .await
            .unwrap()
            .status(),
        200
    );
    event.clock.advance(Duration::from_secs(599));
    let (status, text) = body_text(service.clone().oneshot(to_http(&request)).await.unwrap()).await;
    assert_eq!((status.as_u16(), text.contains("duplicate")), (200, true));
    event.clock.advance(Duration::from_secs(2));
    let late = service.oneshot(to_http(&request)).await.unwrap();
    assert_eq!(late.status(), 401);
    assert_eq!(recorder.calls(), 1);
}

#[tokio::test]
async fn skipping_the_timestamp_check_is_explicit() {
    let event = Fixture::event();
    let stale = event.signed_at("", &event_body("k-stale"), NOW - 86_400);
    let strict =
        WebhookLayer::new(event.verifier.clone()).layer(recording_handler(Recorder::new()));
    assert_eq!(strict.oneshot(to_http(&stale)).await.unwrap().status(), 401);
    let lax = WebhookLayer::new(event.verifier.clone().dangerous().skip_timestamp_check())
        .layer(recording_handler(Recorder::new()));
    assert_eq!(lax.oneshot(to_http(&stale)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn default_limits() {
    let verifier = Verifier::event_secrets(["s"]).unwrap();
    assert_eq!(verifier.get_max_body_size(), 1024 * 1024);
    assert_eq!(verifier.get_tolerance(), Some(Duration::from_secs(300)));
    // A body just over 1 MiB is refused without reaching verification.
    let service = WebhookLayer::new(verifier).layer(recording_handler(Recorder::new()));
    let request = Request::post("/webhook")
        .body(Full::new(Bytes::from(vec![b' '; 1024 * 1024 + 1])))
        .unwrap();
    assert_eq!(service.oneshot(request).await.unwrap().status(), 413);
}

/// Quick-ack: 200 at once, events queued in order, 503 with `Retry-After` when the queue
/// is full (and that delivery's key released, so its retry is accepted), acked events
/// counted as done.
#[tokio::test]
async fn quick_ack_answers_at_once_and_pushes_back_when_full() {
    let event = Fixture::event();
    let (quick_ack, mut queue) = QuickAck::new(2);
    let server =
        TestServer::start(WebhookLayer::new(event.verifier.clone()).layer(quick_ack.clone())).await;
    let requests: Vec<_> = ["q1", "q2", "q3"]
        .iter()
        .map(|key| event.signed("", &event_body(key)))
        .collect();

    for request in &requests[..2] {
        let response = send(server.addr, request).await;
        assert_eq!(
            (response.status, response.json()["status"].clone()),
            (200, "accepted".into())
        );
    }
    let full = send(server.addr, &requests[2]).await;
    assert_eq!(full.status, 503);
    assert_eq!(full.json()["error"], "queue_full");
    assert_eq!(full.header("retry-after"), Some("5"));
    assert_eq!(queue.len(), 2);
    assert_eq!(quick_ack.available(), 0);

    // Acknowledged means done: a redelivery is a duplicate even before the worker ran.
    assert_eq!(
        send(server.addr, &requests[0]).await.json()["status"],
        "duplicate"
    );

    // The worker takes one; the refused delivery's retry now gets in.
    let first = queue.recv().await.unwrap();
    assert_eq!(first.dedup_key(), "q1");
    assert_eq!(
        send(server.addr, &requests[2]).await.json()["status"],
        "accepted"
    );
    let rest: Vec<String> = [queue.recv().await.unwrap(), queue.recv().await.unwrap()]
        .iter()
        .map(|w| w.dedup_key().to_owned())
        .collect();
    assert_eq!(rest, ["q2", "q3"]);
    assert!(queue.is_empty());

    // A closed queue is a 503 too.
    queue.close();
    let closed = send(server.addr, &event.signed("", &event_body("q4"))).await;
    assert_eq!(
        (closed.status, closed.json()["error"].clone()),
        (503, "queue_closed".into())
    );
}

#[tokio::test]
async fn quick_ack_worker_runs_every_job_and_survives_a_panic() {
    let event = Fixture::event();
    let done = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&done);
    let (quick_ack, worker) = QuickAck::spawn(8, move |webhook: VerifiedWebhook| {
        let record = Arc::clone(&record);
        async move {
            assert_ne!(webhook.dedup_key(), "w-boom", "job panics");
            record.lock().unwrap().push(webhook.dedup_key().to_owned());
        }
    });
    let service = WebhookLayer::new(event.verifier.clone()).layer(quick_ack);
    for key in ["w-1", "w-boom", "w-2"] {
        let response = service
            .clone()
            .oneshot(to_http(&event.signed("", &event_body(key))))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    drop(service);
    tokio::time::timeout(common::IO_DEADLINE, worker)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*done.lock().unwrap(), ["w-1", "w-2"]);
}

#[tokio::test]
async fn quick_ack_without_the_layer_is_a_500() {
    let (quick_ack, _queue) = QuickAck::new(1);
    let response = quick_ack
        .oneshot(Request::post("/").body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
}

/// Metrics, read through a local `metrics-util` debugging recorder.
#[test]
fn metrics_count_accepted_rejected_duplicates_and_latency() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let event = Fixture::event();
    let handler_recorder = Recorder::new();
    let service = WebhookLayer::new(event.verifier.clone())
        .layer(recording_handler(Arc::clone(&handler_recorder)));
    let good = event.signed("", &event_body("k-metrics"));
    let failing = event.signed("", &event_body("k-metrics-fail"));
    let forged = good.clone().replace("X-Webhook-Signature", "00".repeat(32));

    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let call = |request: &common::RawRequest| service.clone().oneshot(to_http(request));
                assert_eq!(call(&good).await.unwrap().status(), 200);
                assert_eq!(call(&good).await.unwrap().status(), 200);
                assert_eq!(call(&forged).await.unwrap().status(), 401);
                assert_eq!(
                    call(&good.clone().method("GET")).await.unwrap().status(),
                    405
                );
                handler_recorder.fail_next.store(1, Ordering::SeqCst);
                assert_eq!(call(&failing).await.unwrap().status(), 500);
            });
    });

    let mut counters = std::collections::BTreeMap::new();
    let mut verify_samples = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_owned();
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        match value {
            DebugValue::Counter(n) => {
                counters.insert(format!("{name}{labels:?}"), n);
            }
            DebugValue::Histogram(samples)
                if name == webhook_receiver::telemetry::VERIFY_SECONDS =>
            {
                verify_samples = samples.len();
                // Measured durations in seconds: positive and well under the I/O deadline.
                let bound = common::IO_DEADLINE.as_secs_f64();
                assert!(
                    samples.iter().all(|s| {
                        let s = s.into_inner();
                        s.is_finite() && s > 0.0 && s < bound
                    }),
                    "{samples:?}"
                );
            }
            _ => {}
        }
    }
    let count = |name: &str| counters.get(name).copied().unwrap_or(0);
    assert_eq!(
        count("webhook_receiver_accepted_total[]"),
        2,
        "{counters:?}"
    );
    assert_eq!(
        count("webhook_receiver_duplicates_total[]"),
        1,
        "{counters:?}"
    );
    assert_eq!(
        count(r#"webhook_receiver_rejected_total["reason=no_matching_signature"]"#),
        1,
        "{counters:?}"
    );
    assert_eq!(
        count(r#"webhook_receiver_rejected_total["reason=method_not_allowed"]"#),
        1,
        "{counters:?}"
    );
    assert_eq!(
        count("webhook_receiver_handler_failures_total[]"),
        1,
        "{counters:?}"
    );
    // Verified: good, its duplicate, the forgery and the failing one (not the GET).
    assert_eq!(verify_samples, 4);
}

#[tokio::test]
async fn the_observer_sees_duplicates_and_rejections_but_not_handled_requests() {
    use std::sync::Mutex;
    use webhook_receiver::Observation;

    let event = Fixture::event();
    let recorder = Recorder::new();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&seen);
    let service = WebhookLayer::new(event.verifier.clone())
        .observe(move |observation| {
            let line = match observation {
                Observation::Duplicate(webhook) => format!("duplicate {}", webhook.dedup_key()),
                Observation::Rejected(rejection) => format!("rejected {}", rejection.code()),
                _ => "other".to_owned(),
            };
            log.lock().unwrap().push(line);
        })
        .layer(recording_handler(Arc::clone(&recorder)));
    let good = event.signed("", &event_body("k-observed"));
    let forged = good.clone().replace("X-Webhook-Signature", "00".repeat(32));

    assert_eq!(
        service
            .clone()
            .oneshot(to_http(&good))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        service
            .clone()
            .oneshot(to_http(&good))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        service.oneshot(to_http(&forged)).await.unwrap().status(),
        401
    );
    assert_eq!(recorder.calls(), 1);
    assert_eq!(
        *seen.lock().unwrap(),
        ["duplicate k-observed", "rejected no_matching_signature"]
    );
}
