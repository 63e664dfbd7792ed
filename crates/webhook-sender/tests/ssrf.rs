//! The SSRF guard: every forbidden address class is refused, for IP literals, for names
//! that resolve to them, and at connect time when a name re-resolves (DNS rebinding).
//! No test resolves a real name: names go through a resolver the test controls.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{TestServer, outcomes};
use serde_json::json;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::{
    AllowList, DeliveryStatus, EndpointConfig, ForbiddenAddress, Publish, Resolve, ResolveFuture,
    Sender, StaticResolver,
};

fn config(url: &str) -> EndpointConfig {
    EndpointConfig::event("org", url, [EventType::WalletCreated])
        .secret(HmacSecret::from_utf8("s").unwrap())
}

/// An event for [`config`]'s endpoint.
fn publish() -> Publish {
    Publish::event("org", EventType::WalletCreated, "w1", json!({}))
}

#[tokio::test]
async fn every_forbidden_address_class_is_refused() {
    use ForbiddenAddress as F;
    let sender = Sender::builder()
        .store(webhook_sender::store::MemoryStore::new())
        .build()
        .await
        .unwrap(); // no allow-list
    let cases = [
        ("127.0.0.1", F::Loopback),
        ("127.1.2.3", F::Loopback),
        ("[::1]", F::Loopback),
        ("[::ffff:127.0.0.1]", F::Loopback),
        ("10.0.0.1", F::Private),
        ("172.16.5.4", F::Private),
        ("192.168.1.1", F::Private),
        ("[fc00::1]", F::Private),
        ("[::ffff:192.168.1.1]", F::Private),
        ("169.254.1.1", F::LinkLocal),
        ("[fe80::1]", F::LinkLocal),
        ("169.254.169.254", F::CloudMetadata),
        ("[::ffff:169.254.169.254]", F::CloudMetadata),
        ("[64:ff9b::a9fe:a9fe]", F::CloudMetadata),
        ("[fd00:ec2::254]", F::CloudMetadata),
        ("224.0.0.1", F::Multicast),
        ("[ff02::1]", F::Multicast),
        ("255.255.255.255", F::Broadcast),
        ("0.0.0.0", F::Unspecified),
        ("[::]", F::Unspecified),
        ("100.64.0.1", F::SharedAddressSpace),
        ("192.0.2.10", F::Documentation),
        ("240.0.0.1", F::Reserved),
    ];
    for (host, class) in cases {
        let url = format!("http://{host}:8080/hook");
        let error = sender.endpoints().create(config(&url)).await.unwrap_err();
        assert!(error.is_forbidden_address(), "{host}: {error}");
        assert_eq!(error.forbidden_address(), Some(class), "{host}");
    }
    sender.shutdown().await.unwrap();
}

#[tokio::test]
async fn names_resolving_to_forbidden_addresses_are_refused() {
    let resolver = StaticResolver::new()
        .with("metadata.test", ["169.254.169.254".parse().unwrap()])
        .with(
            "intranet.test",
            ["10.1.2.3".parse().unwrap(), "fd00::1".parse().unwrap()],
        );
    let sender = Sender::builder()
        .store(webhook_sender::store::MemoryStore::new())
        .allow_private_networks(AllowList::loopback())
        .resolver(resolver)
        .build()
        .await
        .unwrap();
    for (url, class) in [
        (
            "http://metadata.test/latest/meta-data",
            ForbiddenAddress::CloudMetadata,
        ),
        ("https://intranet.test/hook", ForbiddenAddress::Private),
        // The loopback allow-list does not open other ranges.
        ("http://10.0.0.1/", ForbiddenAddress::Private),
    ] {
        let error = sender.endpoints().create(config(url)).await.unwrap_err();
        assert_eq!(error.forbidden_address(), Some(class), "{url}");
    }
    sender.shutdown().await.unwrap();
}

/// Answers a public address first (when the endpoint is created), then 127.0.0.1.
#[derive(Debug, Default)]
struct Rebinding {
    calls: AtomicUsize,
}

impl Resolve for Rebinding {
    fn resolve<'a>(&'a self, _host: &'a str) -> ResolveFuture<'a> {
        let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
        let ip: IpAddr = if first {
            "93.184.215.14".parse().unwrap()
        } else {
            "127.0.0.1".parse().unwrap()
        };
        Box::pin(async move { Ok(vec![ip]) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebinding_to_a_forbidden_address_is_refused_at_connect_time() {
    let server = TestServer::ok().await;
    let resolver = Arc::new(Rebinding::default());
    let sender = Sender::builder()
        .store(webhook_sender::store::MemoryStore::new())
        .resolver(SharedResolver(resolver.clone()))
        .build()
        .await
        .unwrap();
    let url = format!("http://rebind.test:{}/hook", server.addr.port());
    sender.endpoints().create(config(&url)).await.unwrap();
    let mut watch = sender.outcomes();
    let receipt = sender.publish(publish()).await.unwrap();
    outcomes(&mut watch, 1).await;
    let delivery = sender
        .delivery(&"org".into(), receipt.deliveries[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        delivery.status,
        DeliveryStatus::Failed,
        "refused, not retried"
    );
    assert_eq!(delivery.attempts.len(), 1);
    assert!(
        delivery.attempts[0].is_forbidden(),
        "{:?}",
        delivery.attempts[0]
    );
    assert_eq!(server.len(), 0, "nothing reached the loopback server");
    assert!(resolver.calls.load(Ordering::SeqCst) >= 2);
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_addresses_of_a_name_are_skipped_and_allowed_ones_used() {
    let server = TestServer::ok().await;
    let resolver = StaticResolver::new().with(
        "mixed.test",
        [
            "169.254.169.254".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ],
    );
    let sender = Sender::builder()
        .store(webhook_sender::store::MemoryStore::new())
        .allow_private_networks(AllowList::loopback())
        .resolver(resolver)
        .build()
        .await
        .unwrap();
    let url = format!("http://mixed.test:{}/hook", server.addr.port());
    sender.endpoints().create(config(&url)).await.unwrap();
    let mut watch = sender.outcomes();
    sender.publish(publish()).await.unwrap();
    let outcome = outcomes(&mut watch, 1).await.remove(0);
    assert_eq!(outcome.last_status, Some(200));
    let request = &server.requests()[0];
    assert_eq!(
        request.headers["host"],
        format!("mixed.test:{}", server.addr.port())
    );
    sender.shutdown().await.unwrap();
}

/// Lets the test keep a handle on its resolver.
#[derive(Debug)]
struct SharedResolver(Arc<Rebinding>);

impl Resolve for SharedResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        self.0.resolve(host)
    }
}
