//! HTTPS: rustls with the webpki roots plus a custom root for tests (an rcgen self-signed
//! certificate served by tokio-rustls on 127.0.0.1), HTTP/2 through ALPN.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, builder, outcomes, verify};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use webhook_core::TrustedKeys;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::{AttemptErrorKind, EndpointConfig, Publish, RetryPolicy, Sender};

struct Tls {
    server: Arc<rustls::ServerConfig>,
    ca_pem: String,
}

fn self_signed() -> Tls {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Tls {
        server: Arc::new(server),
        ca_pem: certified.cert.pem(),
    }
}

async fn deliver(sender: &Sender, url: String) -> webhook_sender::Delivery {
    let config = EndpointConfig::event("org", url, [EventType::WalletCreated])
        .secret(HmacSecret::from_utf8("s").unwrap())
        .retry(RetryPolicy::schedule([
            Duration::ZERO,
            Duration::from_millis(20),
        ]));
    sender.endpoints().create(config).await.unwrap();
    let mut watch = sender.outcomes();
    let receipt = sender
        .publish(Publish::event(
            "org",
            EventType::WalletCreated,
            "w1",
            json!({"id": "w1"}),
        ))
        .await
        .unwrap();
    outcomes(&mut watch, 1).await;
    sender
        .delivery(&"org".into(), receipt.deliveries[0].id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_custom_root_delivers_over_http2() {
    let tls = self_signed();
    let server = TestServer::start_tls(|_| common::Reply::ok(), tls.server.clone()).await;
    let sender = builder()
        .tls_root_certificates_pem(tls.ca_pem.as_bytes())
        .build()
        .await
        .unwrap();
    let delivery = deliver(
        &sender,
        format!("https://127.0.0.1:{}/hook", server.addr.port()),
    )
    .await;
    assert_eq!(delivery.attempts.len(), 1);
    assert_eq!(delivery.attempts[0].status(), Some(200));
    let request = &server.requests()[0];
    assert_eq!(request.version, http::Version::HTTP_2, "ALPN chose h2");
    verify(
        &TrustedKeys::Event(vec![HmacSecret::from_utf8("s").unwrap()]),
        request,
    )
    .unwrap();
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_tls_error_and_retried() {
    let tls = self_signed();
    let server = TestServer::start_tls(|_| common::Reply::ok(), tls.server.clone()).await;
    let sender = builder().build().await.unwrap(); // webpki roots only
    let delivery = deliver(
        &sender,
        format!("https://127.0.0.1:{}/hook", server.addr.port()),
    )
    .await;
    let kinds: Vec<_> = delivery.attempts.iter().map(|a| a.error_kind()).collect();
    assert_eq!(
        kinds,
        [Some(AttemptErrorKind::Tls), Some(AttemptErrorKind::Tls)]
    );
    assert_eq!(server.len(), 0, "no request got through");
    assert_eq!(delivery.status, webhook_sender::DeliveryStatus::Failed);
    sender.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_root_bundle_is_refused_at_build() {
    let error = Sender::builder()
        .tls_root_certificates_pem(b"not a certificate")
        .build()
        .await
        .unwrap_err();
    assert!(error.is_invalid());
}
