//! The sender and the receiver together, once per wire style: publish → durable store →
//! signed HTTP attempt → receiver middleware (window, signature, dedup) → handler.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use webhook_core::domain::{Domain, Resource};
use webhook_core::event::EventType;
use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey, HmacSecret};
use webhook_core::scheme::StandardSigningKey;
use webhook_core::{SigningKeys, Style, VerifiedMessage};
use webhook_e2e::receiver::CountingReceiver;
use webhook_e2e::sender::wait_one_finished;
use webhook_receiver::{VerifiedWebhook, Verifier, WebhookLayer};
use webhook_sender::store::RedbStore;
use webhook_sender::{AllowList, DeliveryStatus, EndpointConfig, Publish, RetryPolicy, Sender};

/// How long a delivery may take to finish.
const WAIT: Duration = Duration::from_secs(5);

/// A [`CountingReceiver`] whose handler also forwards every verified webhook to a channel.
async fn receiver(
    verifier: Verifier,
) -> (CountingReceiver, mpsc::UnboundedReceiver<VerifiedWebhook>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let receiver = CountingReceiver::start(WebhookLayer::new(verifier), move |webhook| {
        tx.send(webhook.clone()).unwrap();
        webhook.dedup_key().to_owned()
    })
    .await;
    (receiver, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<VerifiedWebhook>) -> VerifiedWebhook {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a delivery within 10 s")
        .unwrap()
}

/// An endpoint signing with `keys`, with a short retry schedule.
fn endpoint(url: String, keys: &SigningKeys) -> EndpointConfig {
    let types = [EventType::CustomerCreated, EventType::WalletCreated];
    let config = match keys {
        SigningKeys::Event(secrets) => {
            EndpointConfig::event("org-e2e", url, types).secret(secrets[0].clone())
        }
        SigningKeys::Domain(key) => {
            EndpointConfig::domain("org-e2e", url, (**key).clone(), [Domain::Wallet])
        }
        SigningKeys::Standard(keys) => {
            EndpointConfig::standard("org-e2e", url, keys[0].clone(), types)
        }
    };
    config.retry(RetryPolicy::schedule([
        Duration::ZERO,
        Duration::from_millis(50),
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_style_delivers_verified_typed_events_exactly_once() {
    let cases = [
        SigningKeys::Event(vec![HmacSecret::from_utf8("org-secret").unwrap()]),
        SigningKeys::Domain(Box::new(EcdsaSigningKey::generate().unwrap().0)),
        SigningKeys::Standard(vec![StandardSigningKey::Symmetric(
            HmacSecret::generate().unwrap(),
        )]),
        SigningKeys::Standard(vec![StandardSigningKey::Asymmetric(
            Ed25519SigningKey::generate().unwrap(),
        )]),
    ];
    for keys in cases {
        let style = keys.style();
        let (receiver, mut rx) = receiver(Verifier::new(keys.trusted_keys())).await;
        let dir = tempfile::tempdir().unwrap();
        let sender = Sender::builder()
            .store(RedbStore::open(dir.path().join("e2e.redb")).unwrap())
            .allow_private_networks(AllowList::loopback())
            .build()
            .await
            .unwrap();
        sender
            .endpoints()
            .create(endpoint(receiver.url(), &keys))
            .await
            .unwrap();

        // A resource updated just now: receivers refuse domain resources older than their
        // maximum age (4 h by default).
        let updated_at = recent_updated_at();
        let publish = || match style {
            Style::Domain => Publish::domain(
                "org-e2e",
                Domain::Wallet,
                json!({"id": "w-1", "status": "PROVISIONED", "createdAt": "2025-04-08T11:48:56Z",
                       "updatedAt": updated_at, "ownerEmail": "jane.doe@example.com", "metadata": {"x": 1}}),
            ),
            _ => Publish::event(
                "org-e2e",
                EventType::CustomerCreated,
                "cus-1",
                json!({"id": "cus-1", "email": "jane.doe@example.com", "internalNotes": "vip"}),
            ),
        };
        let receipt = sender.publish(publish()).await.unwrap();
        assert_eq!(receipt.deliveries.len(), 1, "{style}");
        let webhook = next(&mut rx).await;
        assert_eq!(webhook.style(), style);
        match webhook.message() {
            VerifiedMessage::Event(event) => {
                assert_eq!(event.event_type, EventType::CustomerCreated);
                assert_eq!(event.idempotency_key, receipt.idempotency_key);
                assert_eq!(
                    event.data,
                    json!({"id": "cus-1", "email": "j***@example.com"}),
                    "redacted"
                );
            }
            VerifiedMessage::Domain {
                resource: Resource::Wallet(wallet),
                ..
            } => {
                assert!(wallet.status.is_terminal());
                assert_eq!(
                    wallet.extra.get("ownerEmail"),
                    Some(&json!("j***@example.com"))
                );
                assert!(!wallet.extra.contains_key("metadata"));
                assert_eq!(webhook.dedup_key(), format!("w-1@{updated_at}"));
            }
            VerifiedMessage::Standard { id, payload } => {
                assert_eq!(id, &receipt.event_id.to_string());
                assert_eq!(payload["data"]["email"], "j***@example.com");
            }
            other => panic!("{style}: unexpected {other:?}"),
        }

        // The same event again within the window: the event style shares the idempotency
        // key and the domain style the resource's id@updatedAt, so the receiver's dedup
        // swallows it. A retried publish that passes the same event id is not even queued
        // again: the sender answers with the first publish's receipt.
        let org = "org-e2e".into();
        let mut repeat = publish();
        if style == Style::Standard {
            repeat = repeat.with_event_id(receipt.event_id);
        }
        let again = sender.publish(repeat).await.unwrap();
        assert_eq!(again.idempotency_key, receipt.idempotency_key);
        if style == Style::Standard {
            assert_eq!(again.deliveries, receipt.deliveries, "queued once");
        } else {
            assert_eq!(
                wait_one_finished(&sender, &org, again.deliveries[0].id, WAIT)
                    .await
                    .status,
                DeliveryStatus::Delivered,
                "{style}: the second delivery still gets its 2xx"
            );
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "{style}: the handler must not see the duplicate"
        );
        let tally = receiver.tally();
        assert_eq!(tally.handler_calls(), 1, "{style}");
        if style != Style::Standard {
            assert!(tally.duplicates() >= 1, "{style}: answered as a duplicate");
        }
        // A new event id is a new Standard Webhooks message.
        if style == Style::Standard {
            sender.publish(publish()).await.unwrap();
            assert_ne!(next(&mut rx).await.dedup_key(), webhook.dedup_key());
        }
        sender.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_with_the_wrong_key_makes_the_sender_fail_the_delivery_at_once() {
    let (receiver, mut rx) =
        receiver(Verifier::event_secrets(["the-customers-idea-of-the-secret"]).unwrap()).await;
    let sender = Sender::builder()
        .store(webhook_sender::store::MemoryStore::new())
        .allow_private_networks(AllowList::loopback())
        .build()
        .await
        .unwrap();
    let keys = SigningKeys::Event(vec![HmacSecret::from_utf8("the-real-secret").unwrap()]);
    sender
        .endpoints()
        .create(endpoint(receiver.url(), &keys))
        .await
        .unwrap();
    let receipt = sender
        .publish(Publish::event(
            "org-e2e",
            EventType::WalletCreated,
            "w-2",
            json!({"id": "w-2"}),
        ))
        .await
        .unwrap();
    let delivery =
        wait_one_finished(&sender, &"org-e2e".into(), receipt.deliveries[0].id, WAIT).await;
    assert_eq!(delivery.status, DeliveryStatus::Failed, "{delivery:?}");
    assert_eq!(delivery.attempts.len(), 1, "401 is not retried");
    assert_eq!(delivery.attempts[0].status(), Some(401));
    assert!(rx.try_recv().is_err());
    assert_eq!(receiver.tally().rejected(), 1);
    assert_eq!(receiver.tally().handler_starts(), 0);
    sender.shutdown().await.unwrap();
}

/// Now, to the second, with a fractional part that must survive verbatim into the dedup key.
fn recent_updated_at() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let now = time::OffsetDateTime::now_utc()
        .format(&format)
        .expect("a UTC time formats");
    format!("{now}.900490Z")
}
