//! axum 0.8 integration: the layer on a `Router`, the `VerifiedWebhook` extractor, the
//! `Rejection` as a response, and quick-ack as a route service.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use common::{Fixture, body_text, event_body};
use http::{Request, StatusCode};
use tower::ServiceExt as _;
use webhook_receiver::{QuickAck, Rejection, VerifiedWebhook, WebhookLayer};

fn axum_request(request: &common::RawRequest) -> Request<Body> {
    common::to_http(request).map(Body::new)
}

#[tokio::test]
async fn router_layer_and_extractor() {
    let fixture = Fixture::event();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = Arc::clone(&seen);
    let app = Router::new()
        .route(
            "/webhook",
            post(move |webhook: VerifiedWebhook| {
                let record = Arc::clone(&record);
                async move {
                    let event = webhook.event().expect("event style");
                    record.lock().unwrap().push(format!(
                        "{} {}",
                        event.event_type.as_str(),
                        webhook.dedup_key()
                    ));
                    "ok"
                }
            }),
        )
        .layer(WebhookLayer::new(fixture.verifier.clone()));

    let good = fixture.signed("", &event_body("axum-1"));
    let (status, text) = body_text(app.clone().oneshot(axum_request(&good)).await.unwrap()).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "ok"));
    let (status, text) = body_text(app.clone().oneshot(axum_request(&good)).await.unwrap()).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, r#"{"status":"duplicate"}"#)
    );
    assert_eq!(*seen.lock().unwrap(), ["transaction.confirmed axum-1"]);

    let forged = good.clone().replace("X-Webhook-Signature", "ab".repeat(32));
    let response = app.clone().oneshot(axum_request(&forged)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, text) = body_text(response).await;
    assert_eq!(
        text,
        r#"{"error":"no_matching_signature","message":"no matching signature"}"#
    );

    let response = app
        .oneshot(axum_request(&good.clone().method("GET").body(Vec::new())))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn extractor_without_the_layer_is_a_500_and_option_is_none() {
    let app: Router = Router::new()
        .route(
            "/webhook",
            post(|_webhook: VerifiedWebhook| async { "unreachable" }),
        )
        .route(
            "/optional",
            get(|webhook: Option<VerifiedWebhook>| async move {
                if webhook.is_none() { "none" } else { "some" }
            }),
        );
    let response = app
        .clone()
        .oneshot(Request::post("/webhook").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let (_, text) = body_text(response).await;
    assert!(text.contains("not_verified"), "{text}");

    let response = app
        .oneshot(Request::get("/optional").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(body_text(response).await.1, "none");
}

#[tokio::test]
async fn rejection_is_an_axum_response() {
    use axum::response::IntoResponse as _;
    let response = Rejection::QueueFull.into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    assert_eq!(
        body_text(response).await.1,
        r#"{"error":"queue_full","message":"processing queue full; retry later"}"#
    );
}

#[tokio::test]
async fn quick_ack_as_a_route_service() {
    let fixture = Fixture::event();
    let (quick_ack, mut queue) = QuickAck::new(4);
    let app = Router::new().route_service(
        "/webhook",
        tower::ServiceBuilder::new()
            .layer(WebhookLayer::new(fixture.verifier.clone()))
            .service(quick_ack),
    );
    let response = app
        .oneshot(axum_request(&fixture.signed("", &event_body("axum-q"))))
        .await
        .unwrap();
    assert_eq!(
        body_text(response).await,
        (StatusCode::OK, r#"{"status":"accepted"}"#.to_owned())
    );
    assert_eq!(queue.recv().await.unwrap().dedup_key(), "axum-q");
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TxData {
    tx_id: String,
}

#[derive(Debug, serde::Deserialize)]
struct NeedsAmount {
    #[allow(dead_code)]
    amount: u64,
}

/// `WebhookEvent<D>` and `WebhookResource<R>` decode into the handler's own types; data
/// of the wrong shape is a 422 (the key is released), the wrong style a 500, no layer a
/// 500 — never a panic.
#[tokio::test]
async fn typed_extractors_decode_the_handlers_own_types() {
    use webhook_core::domain::Wallet;
    use webhook_receiver::typed::{WebhookEvent, WebhookResource};

    let event = Fixture::event();
    let app = Router::new()
        .route(
            "/typed",
            post(|event: WebhookEvent<TxData>| async move {
                format!("{} {}", event.event().idempotency_key, event.data().tx_id)
            }),
        )
        .route(
            "/strict",
            post(|_event: WebhookEvent<NeedsAmount>| async { "unreachable" }),
        )
        .route(
            "/resource",
            post(|_wallet: WebhookResource<Wallet>| async { "unreachable" }),
        )
        .layer(WebhookLayer::new(event.verifier.clone()));
    let at = |path: &str, key: &str| {
        let mut request = axum_request(&event.signed("", &event_body(key)));
        *request.uri_mut() = path.parse().unwrap();
        request
    };
    let (status, text) = body_text(app.clone().oneshot(at("/typed", "k-t1")).await.unwrap()).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "k-t1 t1"));

    let (status, text) = body_text(app.clone().oneshot(at("/strict", "k-t2")).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        text.contains("unexpected_payload") && !text.contains("t1"),
        "{text}"
    );
    // The 422 released the key: the same delivery to a fitting handler is handled.
    let (status, _) = body_text(app.clone().oneshot(at("/typed", "k-t2")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    let (status, text) =
        body_text(app.clone().oneshot(at("/resource", "k-t3")).await.unwrap()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text.contains("wrong_style"), "{text}");

    // Domain style: the resource as core's typed wallet, and as the handler's own type.
    let domain = Fixture::domain();
    let wallets = Router::new()
        .route(
            "/wallet",
            post(|wallet: WebhookResource<Wallet>| async move {
                format!("{} {}", wallet.domain(), wallet.resource().id)
            }),
        )
        .route(
            "/event",
            post(|_event: WebhookEvent<TxData>| async { "unreachable" }),
        )
        .layer(WebhookLayer::new(domain.verifier.clone()));
    let wallet = |path: &str, id: &str| {
        let mut request =
            axum_request(&domain.signed("", &common::wallet_json(id, "2025-05-08T14:29:00Z")));
        *request.uri_mut() = path.parse().unwrap();
        request
    };
    let (status, text) = body_text(
        wallets
            .clone()
            .oneshot(wallet("/wallet", "w-9"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "WALLET w-9"));
    let (status, _) = body_text(wallets.oneshot(wallet("/event", "w-10")).await.unwrap()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    // Standard Webhooks carrying the toolkit's event JSON decode like the event style.
    let standard = Fixture::standard();
    let app = Router::new()
        .route(
            "/typed",
            post(|event: WebhookEvent<TxData>| async move { event.into_data().tx_id }),
        )
        .layer(WebhookLayer::new(standard.verifier.clone()));
    let mut request = axum_request(&standard.signed("msg_typed", &event_body("k-std")));
    *request.uri_mut() = "/typed".parse().unwrap();
    let (status, text) = body_text(app.oneshot(request).await.unwrap()).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "t1"));

    // Without the layer: 500 not_verified.
    let bare: Router = Router::new().route(
        "/typed",
        post(|_event: WebhookEvent<TxData>| async { "unreachable" }),
    );
    let response = bare
        .oneshot(Request::post("/typed").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
