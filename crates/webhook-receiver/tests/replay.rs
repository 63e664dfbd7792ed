//! Replays and a full dedup store, on a manual clock: a full memory store makes room by
//! dropping only keys the freshness checks already protect, and a domain-style delivery
//! re-wrapped with a fresh envelope timestamp is caught by dedup or, after the dedup TTL,
//! by the age of its signed `updatedAt`.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    Fixture, NOW, RawRequest, Recorder, at, body_text, event_body, recording_handler, to_http,
    wallet_json,
};
use tower::{Layer as _, ServiceExt as _};
use webhook_core::domain::format_timestamp;
use webhook_receiver::dedup::MemoryStore;
use webhook_receiver::{DEFAULT_MAX_RESOURCE_AGE, WebhookLayer};

/// `service` answers `request` with this status and `error` code (`""`: no error body).
async fn answers<S, B>(service: &S, request: &RawRequest) -> (u16, String)
where
    S: tower::Service<
            http::Request<http_body_util::Full<bytes::Bytes>>,
            Response = http::Response<B>,
        > + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = service.clone().oneshot(to_http(request)).await.unwrap();
    let (status, text) = body_text(response).await;
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|json| json["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status.as_u16(), code)
}

/// What an attacker can do with a captured domain-style delivery: keep the payload and
/// its `Signature`, and put a fresh timestamp on the (unsigned) envelope.
fn rewrap(captured: &RawRequest, unix: i64) -> RawRequest {
    let mut envelope: serde_json::Value = serde_json::from_slice(&captured.body).unwrap();
    envelope["timestamp"] = serde_json::Value::from(format_timestamp(at(unix)));
    captured
        .clone()
        .body(serde_json::to_vec(&envelope).unwrap())
}

#[tokio::test]
async fn a_full_store_drops_only_replay_safe_done_keys_and_replays_stay_caught() {
    let event = Fixture::event();
    // Replay-safe age: 2 × 300 s tolerance + 60 s margin.
    let safe_age = 660;
    let store = MemoryStore::with_capacity(3).clock(event.clock.clone());
    let recorder = Recorder::new();
    let service = WebhookLayer::new(event.verifier.clone())
        .dedup_store(store.clone())
        .layer(recording_handler(Arc::clone(&recorder)));

    let first = event.signed("", &event_body("k-1"));
    assert_eq!(answers(&service, &first).await, (200, String::new()));
    for key in ["k-2", "k-3"] {
        event.clock.advance(Duration::from_secs(10));
        let request = event.signed_at("", &event_body(key), NOW + 10);
        assert_eq!(answers(&service, &request).await.0, 200);
    }
    assert_eq!(recorder.calls(), 3);
    // Full of young done keys: a new delivery is refused, nothing is forgotten.
    let fourth = event.signed_at("", &event_body("k-4"), NOW + 20);
    assert_eq!(answers(&service, &fourth).await, (503, "dedup_full".into()));
    assert_eq!(answers(&service, &first).await.0, 200); // a duplicate
    assert_eq!(recorder.calls(), 3);

    // Once the oldest keys are past the replay-safe age, the store makes room.
    event.clock.set_unix(NOW + safe_age + 1);
    let fourth = event.signed_at("", &event_body("k-4"), NOW + safe_age + 1);
    assert_eq!(answers(&service, &fourth).await, (200, String::new()));
    assert_eq!(recorder.calls(), 4);
    assert_eq!(store.len(), 3);
    // The captured first request is refused by the window, dropped key or not…
    assert_eq!(
        answers(&service, &first).await,
        (401, "timestamp_out_of_window".into())
    );
    // …and a copy of a delivery that was just handled is still a duplicate.
    assert_eq!(answers(&service, &fourth).await.0, 200);
    assert_eq!(recorder.calls(), 4);
}

#[tokio::test]
async fn in_progress_keys_are_never_dropped_to_make_room() {
    let event = Fixture::event();
    let store = MemoryStore::with_capacity(1).clock(event.clock.clone());
    let recorder = Recorder::gated();
    let service = WebhookLayer::new(event.verifier.clone())
        .dedup_store(store)
        .layer(recording_handler(Arc::clone(&recorder)));
    let held = event.signed("", &event_body("k-held"));
    let running = tokio::spawn({
        let service = service.clone();
        async move { answers(&service, &held).await }
    });
    common::wait_until("the handler runs", || recorder.calls() == 1).await;
    // Long past the replay-safe age, yet inside the 300 s processing lease.
    event.clock.advance(Duration::from_secs(299));
    let other = event.signed_at("", &event_body("k-other"), NOW + 299);
    assert_eq!(answers(&service, &other).await, (503, "dedup_full".into()));
    recorder.gate.as_ref().unwrap().add_permits(1);
    assert_eq!(running.await.unwrap().0, 200);
}

#[tokio::test]
async fn a_domain_replay_with_a_fresh_envelope_after_the_dedup_ttl_is_refused_by_age() {
    let domain = Fixture::domain();
    let recorder = Recorder::new();
    // Even with a 1 h TTL asked for, domain keys are kept for the maximum age.
    let service = WebhookLayer::new(domain.verifier.clone())
        .dedup_ttl(Duration::from_secs(3600))
        .layer(recording_handler(Arc::clone(&recorder)));
    let captured = domain.signed("", &wallet_json("w-replay", "2025-05-08T14:29:00Z"));
    assert_eq!(answers(&service, &captured).await, (200, String::new()));

    // Two hours later (past the 1 h TTL asked for): the re-wrapped copy passes the
    // window and the signature, and is caught by dedup.
    domain.clock.advance(Duration::from_secs(2 * 3600));
    let replay = rewrap(&captured, NOW + 2 * 3600);
    assert_eq!(answers(&service, &replay).await, (200, String::new()));
    assert_eq!(recorder.calls(), 1, "the replay reached the handler");

    // Past the maximum age of `updatedAt` (4 h): refused by age, whatever dedup holds.
    let max_age = i64::try_from(DEFAULT_MAX_RESOURCE_AGE.as_secs()).unwrap();
    let later = NOW - 60 + max_age + 1;
    domain.clock.set_unix(later);
    let replay = rewrap(&captured, later);
    assert_eq!(
        answers(&service, &replay).await,
        (401, "stale_resource".into())
    );
    assert_eq!(recorder.calls(), 1);

    // A first delivery of a resource updated more than 4 h ago is refused too (a
    // redrive that old needs a larger maximum age), and so is one from the future.
    let stale = domain.signed_at("", &wallet_json("w-old", "2025-05-08T14:29:00Z"), later);
    assert_eq!(
        answers(&service, &stale).await,
        (401, "stale_resource".into())
    );
    let lenient = WebhookLayer::new(
        domain
            .verifier
            .clone()
            .max_resource_age(DEFAULT_MAX_RESOURCE_AGE * 2),
    )
    .layer(recording_handler(Arc::clone(&recorder)));
    assert_eq!(answers(&lenient, &stale).await.0, 200);
    domain.clock.set_unix(NOW);
    let ahead = domain.signed("", &wallet_json("w-ahead", "2025-05-08T14:40:00Z"));
    assert_eq!(
        answers(&service, &ahead).await,
        (401, "stale_resource".into())
    );
}
