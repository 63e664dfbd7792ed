//! Secret rotation: during the overlap a receiver that knows only the old secret and one
//! that knows only the new secret both accept (HMAC styles: every active secret signs);
//! the domain style's single signature stays the old key's until the overlap ends. After
//! it, only the new one works.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TestServer, builder, verify};
use serde_json::json;
use webhook_core::TrustedKeys;
use webhook_core::clock::ManualClock;
use webhook_core::domain::Domain;
use webhook_core::event::EventType;
use webhook_core::keys::{EcdsaSigningKey, HmacSecret};
use webhook_core::scheme::{StandardSigningKey, StandardVerifyingKey};
use webhook_sender::{EndpointConfig, EndpointId, Publish, Sender};

const HOUR: Duration = Duration::from_secs(3600);

fn hmac(text: &str) -> HmacSecret {
    HmacSecret::from_utf8(text).unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Rotated {
    Organization,
    EventEndpoint,
    StandardEndpoint,
}

async fn rotate(
    sender: &Sender,
    what: Rotated,
    endpoint: EndpointId,
    new: &str,
    overlap: Duration,
) {
    match what {
        Rotated::Organization => sender
            .organizations()
            .rotate_secret("org", hmac(new), overlap)
            .await
            .unwrap(),
        Rotated::EventEndpoint => sender
            .endpoints()
            .rotate_secret(&"org".into(), endpoint, hmac(new), overlap)
            .await
            .unwrap(),
        Rotated::StandardEndpoint => sender
            .endpoints()
            .rotate_secret(
                &"org".into(),
                endpoint,
                StandardSigningKey::Symmetric(hmac(new)),
                overlap,
            )
            .await
            .unwrap(),
    }
}

fn trust(what: Rotated, secret: &str) -> TrustedKeys {
    match what {
        Rotated::Organization | Rotated::EventEndpoint => TrustedKeys::Event(vec![hmac(secret)]),
        Rotated::StandardEndpoint => {
            TrustedKeys::Standard(vec![StandardVerifyingKey::Symmetric(hmac(secret))])
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_knowing_only_the_old_or_only_the_new_secret_both_accept() {
    for what in [
        Rotated::Organization,
        Rotated::EventEndpoint,
        Rotated::StandardEndpoint,
    ] {
        let server = TestServer::ok().await;
        let sender = builder().build().await.unwrap();
        sender
            .organizations()
            .set_secret("org", hmac("old"))
            .await
            .unwrap();
        let types = [EventType::CustomerLockedOut];
        let config = match what {
            Rotated::Organization => EndpointConfig::event("org", server.url("/"), types),
            Rotated::EventEndpoint => {
                EndpointConfig::event("org", server.url("/"), types).secret(hmac("old"))
            }
            Rotated::StandardEndpoint => EndpointConfig::standard(
                "org",
                server.url("/"),
                StandardSigningKey::Symmetric(hmac("old")),
                types,
            ),
        };
        let endpoint = sender.endpoints().create(config).await.unwrap();
        let publish = |n: usize| {
            Publish::event(
                "org",
                EventType::CustomerLockedOut,
                format!("c{n}"),
                json!({}),
            )
        };

        sender.publish(publish(0)).await.unwrap();
        let before = server.wait_for(1).await.remove(0);
        assert!(verify(&trust(what, "old"), &before).is_ok(), "{what:?}");
        assert!(verify(&trust(what, "new"), &before).is_err(), "{what:?}");

        rotate(&sender, what, endpoint, "new", HOUR).await;
        sender.publish(publish(1)).await.unwrap();
        let during = server.wait_for(2).await.remove(1);
        assert!(
            verify(&trust(what, "old"), &during).is_ok(),
            "{what:?}: old-only receiver"
        );
        assert!(
            verify(&trust(what, "new"), &during).is_ok(),
            "{what:?}: new-only receiver"
        );

        // A rotation with no overlap retires the others at once.
        rotate(&sender, what, endpoint, "newest", Duration::ZERO).await;
        sender.publish(publish(2)).await.unwrap();
        let after = server.wait_for(3).await.remove(2);
        assert!(verify(&trust(what, "newest"), &after).is_ok(), "{what:?}");
        assert!(verify(&trust(what, "new"), &after).is_err(), "{what:?}");
        assert!(verify(&trust(what, "old"), &after).is_err(), "{what:?}");
        sender.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_key_rotation_keeps_the_old_key_until_the_overlap_ends() {
    // The sender's clock moves past the overlap on demand; it starts at the real time, and
    // the overlap is short, so that receivers (on the real clock) accept its timestamps.
    const OVERLAP: Duration = Duration::from_secs(60);
    let clock = ManualClock::at_unix(time::OffsetDateTime::now_utc().unix_timestamp());
    let server = TestServer::ok().await;
    let sender = builder().clock(clock.clone()).build().await.unwrap();
    let (old, _) = EcdsaSigningKey::generate().unwrap();
    let (new, _) = EcdsaSigningKey::generate().unwrap();
    let (newest, _) = EcdsaSigningKey::generate().unwrap();
    let trust = |key: &EcdsaSigningKey| TrustedKeys::Domain(vec![key.public_key()]);
    let endpoint = sender
        .endpoints()
        .create(EndpointConfig::domain(
            "org",
            server.url("/"),
            old.clone(),
            [Domain::Wallet],
        ))
        .await
        .unwrap();
    let publish = |n: usize| {
        let wallet = json!({"id": format!("w{n}"), "status": "CREATED",
            "createdAt": "2025-04-08T11:48:56Z", "updatedAt": "2025-04-08T11:48:56Z"});
        Publish::domain("org", Domain::Wallet, wallet)
    };

    sender
        .endpoints()
        .rotate_secret(&"org".into(), endpoint, new.clone(), OVERLAP)
        .await
        .unwrap();
    assert_eq!(
        sender
            .endpoints()
            .get(&"org".into(), endpoint)
            .unwrap()
            .signing_keys,
        2
    );
    sender.publish(publish(0)).await.unwrap();
    let during = server.wait_for(1).await.remove(0);
    assert!(
        verify(&trust(&old), &during).is_ok(),
        "customers have time to add the new key"
    );
    // One signature per request, the old key's: a receiver trusting only the new key
    // refuses it until the overlap ends.
    assert!(
        verify(&trust(&new), &during).is_err(),
        "the new key does not sign during the overlap"
    );

    // Once the overlap has ended, the new key signs and the old one is retired.
    clock.advance(OVERLAP + Duration::from_secs(1));
    sender.publish(publish(1)).await.unwrap();
    let ended = server.wait_for(2).await.remove(1);
    assert!(
        verify(&trust(&new), &ended).is_ok(),
        "the new key takes over after the overlap"
    );
    assert!(verify(&trust(&old), &ended).is_err());

    sender
        .endpoints()
        .rotate_secret(&"org".into(), endpoint, newest.clone(), Duration::ZERO)
        .await
        .unwrap();
    sender.publish(publish(2)).await.unwrap();
    let after = server.wait_for(3).await.remove(2);
    assert!(verify(&trust(&newest), &after).is_ok());
    assert!(verify(&trust(&new), &after).is_err());
    assert!(verify(&trust(&old), &after).is_err());
    // The wrong kind of key is refused.
    let error = sender
        .endpoints()
        .rotate_secret(&"org".into(), endpoint, hmac("x"), HOUR)
        .await
        .unwrap_err();
    assert!(error.is_invalid());
    sender.shutdown().await.unwrap();
}
