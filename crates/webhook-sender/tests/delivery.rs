//! End-to-end delivery with each scheme, verified as a receiver would with
//! `webhook_core::TrustedKeys`, plus tenancy, redaction and idempotency keys.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, builder, outcomes, verify};
use serde_json::json;
use webhook_core::domain::{Domain, Resource};
use webhook_core::event::EventType;
use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey, HmacSecret};
use webhook_core::scheme::{StandardSigningKey, StandardVerifyingKey};
use webhook_core::{Style, TrustedKeys, VerifiedMessage};
use webhook_sender::{EndpointConfig, OutcomeStatus, Publish, Sender};

const ORG: &str = "21c81319-5b83-45f9-b648-42055084af15";

fn secret(text: &str) -> HmacSecret {
    HmacSecret::from_utf8(text).unwrap()
}

/// One scheme: how to configure the endpoint, what a receiver trusts, what to publish.
struct Scheme {
    name: &'static str,
    config: Box<dyn Fn(String) -> EndpointConfig>,
    trusted: TrustedKeys,
    publish: Publish,
}

fn schemes() -> Vec<Scheme> {
    let customer = json!({"id": "c-1", "email": "jane.doe@example.com",
                          "internalRiskScore": 7, "metadata": {"x": 1}, "name": "Jane"});
    let wallet = json!({"id": "w-1", "status": "PROVISIONED", "createdAt": "2025-04-08T11:48:56Z",
                        "updatedAt": "2025-04-08T11:48:57Z", "createdBy": "ops@example.com",
                        "metadata": {"x": 1}});
    let (ecdsa, _) = EcdsaSigningKey::generate().unwrap();
    let ecdsa_public = ecdsa.public_key();
    let ed25519 = Ed25519SigningKey::generate().unwrap();
    let ed25519_public = ed25519.public_key();
    let whsec = HmacSecret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let whsec_trusted = whsec.clone();
    let own = secret("endpoint-own-secret");
    vec![
        Scheme {
            name: "event, organization secret",
            config: Box::new(|url| EndpointConfig::event(ORG, url, [EventType::CustomerCreated])),
            trusted: TrustedKeys::Event(vec![secret("org-secret")]),
            publish: Publish::event(ORG, EventType::CustomerCreated, "c-1", customer.clone()),
        },
        Scheme {
            name: "event, endpoint's own secret",
            config: Box::new(move |url| {
                EndpointConfig::event(ORG, url, [EventType::CustomerCreated]).secret(own.clone())
            }),
            trusted: TrustedKeys::Event(vec![secret("endpoint-own-secret")]),
            publish: Publish::event(ORG, EventType::CustomerCreated, "c-1", customer.clone()),
        },
        Scheme {
            name: "domain, ECDSA P-256",
            config: Box::new(move |url| {
                EndpointConfig::domain(ORG, url, ecdsa.clone(), [Domain::Wallet])
            }),
            trusted: TrustedKeys::Domain(vec![ecdsa_public]),
            publish: Publish::domain(ORG, Domain::Wallet, wallet),
        },
        Scheme {
            name: "standard v1 (HMAC)",
            config: Box::new(move |url| {
                EndpointConfig::standard(
                    ORG,
                    url,
                    StandardSigningKey::Symmetric(whsec.clone()),
                    [EventType::CustomerCreated],
                )
            }),
            trusted: TrustedKeys::Standard(vec![StandardVerifyingKey::Symmetric(whsec_trusted)]),
            publish: Publish::event(ORG, EventType::CustomerCreated, "c-1", customer.clone()),
        },
        Scheme {
            name: "standard v1a (Ed25519)",
            config: Box::new(move |url| {
                EndpointConfig::standard(ORG, url, ed25519.clone(), [EventType::CustomerCreated])
            }),
            trusted: TrustedKeys::Standard(vec![StandardVerifyingKey::Asymmetric(ed25519_public)]),
            publish: Publish::event(ORG, EventType::CustomerCreated, "c-1", customer),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_delivers_and_verifies_end_to_end() {
    for scheme in schemes() {
        let server = TestServer::ok().await;
        let sender = builder().build().await.unwrap();
        sender
            .organizations()
            .set_secret(ORG, secret("org-secret"))
            .await
            .unwrap();
        let config = (scheme.config)(server.url("/hook")).header("X-Tenant", "acme");
        sender.endpoints().create(config).await.unwrap();
        let mut watch = sender.outcomes();
        let receipt = sender.publish(scheme.publish.clone()).await.unwrap();
        assert_eq!(receipt.deliveries.len(), 1, "{}", scheme.name);

        let requests = server.wait_for(1).await;
        let request = &requests[0];
        assert_eq!(request.headers["x-tenant"], "acme", "{}", scheme.name);
        assert_eq!(request.headers["content-type"], "application/json");
        let verified =
            verify(&scheme.trusted, request).unwrap_or_else(|e| panic!("{}: {e}", scheme.name));
        // A receiver with other keys refuses it.
        let wrong = match scheme.trusted.style() {
            Style::Domain => {
                TrustedKeys::Domain(vec![EcdsaSigningKey::generate().unwrap().0.public_key()])
            }
            Style::Event => TrustedKeys::Event(vec![secret("wrong")]),
            Style::Standard => TrustedKeys::Standard(vec![StandardVerifyingKey::Symmetric(
                HmacSecret::generate().unwrap(),
            )]),
        };
        assert!(verify(&wrong, request).is_err(), "{}", scheme.name);

        match verified.message {
            VerifiedMessage::Event(event) => {
                assert_eq!(event.id, receipt.event_id.to_string());
                assert_eq!(event.idempotency_key, receipt.idempotency_key);
                assert_eq!(event.organization_id, ORG);
                assert_eq!(event.event_type, EventType::CustomerCreated);
                assert_eq!(
                    event.data,
                    json!({"id": "c-1", "email": "j***@example.com", "name": "Jane"}),
                    "redacted"
                );
            }
            VerifiedMessage::Domain { envelope, resource } => {
                assert_eq!(envelope.domain, Domain::Wallet);
                let Resource::Wallet(wallet) = resource else {
                    panic!("a wallet")
                };
                assert_eq!(wallet.id, "w-1");
                let raw: serde_json::Value =
                    serde_json::from_slice(&envelope.payload_bytes().unwrap()).unwrap();
                assert_eq!(raw["createdBy"], "o***@example.com");
                assert!(raw.get("metadata").is_none());
            }
            VerifiedMessage::Standard { id, payload } => {
                assert_eq!(
                    id,
                    receipt.event_id.to_string(),
                    "webhook-id is the event id"
                );
                assert_eq!(payload["type"], "customer.created");
                assert_eq!(payload["data"]["email"], "j***@example.com");
            }
            other => panic!("unexpected {other:?}"),
        }
        let done = outcomes(&mut watch, 1).await;
        assert_eq!(done[0].status, OutcomeStatus::Delivered);
        assert_eq!(done[0].attempts, 1);
        let delivery = sender
            .delivery(&ORG.into(), receipt.deliveries[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(delivery.attempts.len(), 1);
        assert_eq!(delivery.attempts[0].status(), Some(200));
        sender.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_crosses_organizations() {
    let server_a = TestServer::ok().await;
    let server_b = TestServer::ok().await;
    let sender = builder().build().await.unwrap();
    sender
        .organizations()
        .set_secret("org-a", secret("a"))
        .await
        .unwrap();
    sender
        .organizations()
        .set_secret("org-b", secret("b"))
        .await
        .unwrap();
    let types = [EventType::TransactionConfirmed, EventType::WalletCreated];
    sender
        .endpoints()
        .create(EndpointConfig::event(
            "org-a",
            server_a.url("/a"),
            types.clone(),
        ))
        .await
        .unwrap();
    sender
        .endpoints()
        .create(EndpointConfig::event("org-b", server_b.url("/b"), types))
        .await
        .unwrap();
    let mut watch = sender.outcomes();
    for i in 0..6 {
        let receipt = sender
            .publish(Publish::event(
                "org-a",
                EventType::TransactionConfirmed,
                format!("t{i}"),
                json!({"n": i}),
            ))
            .await
            .unwrap();
        assert_eq!(receipt.deliveries.len(), 1, "only org-a's endpoint");
    }
    for i in 0..3 {
        sender
            .publish(Publish::event(
                "org-b",
                EventType::WalletCreated,
                format!("w{i}"),
                json!({"n": i}),
            ))
            .await
            .unwrap();
    }
    // An organization without endpoints fans out to nobody.
    let nobody = sender
        .publish(Publish::event(
            "org-c",
            EventType::WalletCreated,
            "w",
            json!({}),
        ))
        .await
        .unwrap();
    assert!(nobody.deliveries.is_empty());
    outcomes(&mut watch, 9).await;

    let a = server_a.requests();
    let b = server_b.requests();
    assert_eq!((a.len(), b.len()), (6, 3));
    let trust_a = TrustedKeys::Event(vec![secret("a")]);
    let trust_b = TrustedKeys::Event(vec![secret("b")]);
    for request in &a {
        let VerifiedMessage::Event(event) = verify(&trust_a, request).unwrap().message else {
            panic!("event")
        };
        assert_eq!(event.organization_id, "org-a");
        assert!(
            verify(&trust_b, request).is_err(),
            "signed with org-a's secret only"
        );
    }
    for request in &b {
        let VerifiedMessage::Event(event) = verify(&trust_b, request).unwrap().message else {
            panic!("event")
        };
        assert_eq!(event.organization_id, "org-b");
    }
    sender.shutdown().await.unwrap();
}

#[tokio::test]
async fn idempotency_keys_follow_the_sixty_second_window() {
    use std::time::Duration;
    use webhook_core::clock::ManualClock;
    use webhook_core::idempotency::IdempotencyKey;

    let clock = ManualClock::at_unix(1_746_714_600);
    let sender: Sender = builder().clock(clock.clone()).build().await.unwrap();
    let publish =
        |entity: &str| Publish::event(ORG, EventType::WalletCreated, entity, json!({"id": entity}));
    let first = sender.publish(publish("w1")).await.unwrap();
    clock.advance(Duration::from_secs(59));
    let same = sender.publish(publish("w1")).await.unwrap();
    let other_entity = sender.publish(publish("w2")).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let next_window = sender.publish(publish("w1")).await.unwrap();
    assert_eq!(first.idempotency_key, same.idempotency_key);
    assert_ne!(first.event_id, same.event_id, "each event has its own id");
    assert_ne!(first.idempotency_key, other_entity.idempotency_key);
    assert_ne!(first.idempotency_key, next_window.idempotency_key);
    assert_eq!(
        first.idempotency_key,
        IdempotencyKey::derive(ORG, "wallet.created", "w1", 1_746_714_600).into_string()
    );
    sender.shutdown().await.unwrap();
    assert!(
        sender
            .publish(publish("w1"))
            .await
            .unwrap_err()
            .is_shutdown()
    );
}

#[tokio::test]
async fn bad_input_is_a_typed_error() {
    let sender = builder().build().await.unwrap();
    let no_id = Publish::domain(ORG, Domain::Wallet, json!({"status": "CREATED"}));
    assert!(sender.publish(no_id).await.unwrap_err().is_invalid());
    let empty_org = Publish::event("", EventType::WalletCreated, "w", json!({}));
    assert!(sender.publish(empty_org).await.unwrap_err().is_invalid());
    let endpoints = sender.endpoints();
    // Event style needs a secret: its own or its organization's.
    let no_secret = EndpointConfig::event(ORG, "http://127.0.0.1:1/", [EventType::WalletCreated]);
    assert!(endpoints.create(no_secret).await.unwrap_err().is_invalid());
    let with =
        |url: &str| EndpointConfig::event(ORG, url, [EventType::WalletCreated]).secret(secret("s"));
    for url in [
        "ftp://127.0.0.1/",
        "not a url",
        "http://user:pw@127.0.0.1/",
        "/relative",
    ] {
        assert!(
            endpoints.create(with(url)).await.unwrap_err().is_invalid(),
            "{url}"
        );
    }
    let reserved = with("http://127.0.0.1:1/").header("X-Webhook-Signature", "forged");
    assert!(endpoints.create(reserved).await.unwrap_err().is_invalid());
    let too_slow = with("http://127.0.0.1:1/").timeout(std::time::Duration::from_secs(3600));
    assert!(endpoints.create(too_slow).await.unwrap_err().is_invalid());
    let nothing = EndpointConfig::event(ORG, "http://127.0.0.1:1/", []).secret(secret("s"));
    assert!(endpoints.create(nothing).await.unwrap_err().is_invalid());
    let missing = webhook_sender::EndpointId::generate();
    assert!(
        endpoints
            .pause(&ORG.into(), missing)
            .await
            .unwrap_err()
            .is_not_found()
    );
    sender.shutdown().await.unwrap();
}
