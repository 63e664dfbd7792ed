//! The SSRF guard end to end: host names that resolve to forbidden addresses (through a
//! resolver the test controls, or through the system resolver's numeric forms such as
//! `2130706433` and `0x7f.1`, which never reach DNS), names that re-resolve to a forbidden
//! address after the endpoint was accepted, and redirects, which are never followed.
//!
//! Every forbidden address a test connects to reaches a local test server if the guard
//! lets it through (127.0.0.1, `::ffff:127.0.0.1`, `0.0.0.0` and `::1` all land on
//! loopback), so a failure shows up as a request at that server and no traffic ever leaves
//! the machine; the other IPv6 forms of loopback are checked at endpoint creation, which
//! does not connect. Every IANA special-purpose block: `crates/webhook-sender/tests/ssrf.rs`.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use tokio::net::TcpListener;
use webhook_core::event::EventType;
use webhook_e2e::receiver::{CountingReceiver, event_entity};
use webhook_e2e::sender::{loopback_sender, wait_one_finished};
use webhook_e2e::server::HttpServer;
use webhook_receiver::{Verifier, WebhookLayer};
use webhook_sender::{
    AllowList, Cidr, DeliveryStatus, EndpointConfig, ForbiddenAddress, Publish, Resolve,
    ResolveFuture, Sender, SystemResolver,
};

const SECRET: &str = "ssrf-test-organization-secret";
const ORGANIZATION: &str = "org-ssrf";
/// How long a delivery may take to finish.
const WAIT: Duration = Duration::from_secs(20);

/// Answers `accepted` for the first resolution (when the endpoint is created) and
/// `forbidden` afterwards (when the sender connects): DNS rebinding.
#[derive(Debug)]
struct Rebinding {
    accepted: IpAddr,
    forbidden: Vec<IpAddr>,
    calls: AtomicUsize,
}

impl Resolve for Rebinding {
    fn resolve<'a>(&'a self, _host: &'a str) -> ResolveFuture<'a> {
        let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
        let answer = if first {
            vec![self.accepted]
        } else {
            self.forbidden.clone()
        };
        Box::pin(async move { Ok(answer) })
    }
}

/// Lets the test keep a handle on a resolver it gave away.
#[derive(Debug, Clone)]
struct Shared(Arc<Rebinding>);

impl Resolve for Shared {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        self.0.resolve(host)
    }
}

async fn sender(allow: AllowList, resolver: impl Resolve) -> Sender {
    loopback_sender(ORGANIZATION, SECRET, |builder| {
        builder.allow_private_networks(allow).resolver(resolver)
    })
    .await
}

fn endpoint(url: String) -> EndpointConfig {
    EndpointConfig::event(ORGANIZATION, url, [EventType::WalletCreated])
        .timeout(Duration::from_secs(2))
}

fn event() -> Publish {
    Publish::event(
        ORGANIZATION,
        EventType::WalletCreated,
        "w-1",
        json!({"n": 1}),
    )
}

async fn receiver() -> CountingReceiver {
    CountingReceiver::start(
        WebhookLayer::new(Verifier::event_secrets([SECRET]).unwrap()),
        event_entity,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_resolving_to_loopback_in_any_form_are_refused() {
    let server = receiver().await;
    let port = server.addr().port();
    // Loopback in every IPv6 form that carries an IPv4 address: mapped, NAT64 and 6to4
    // are judged as the IPv4 inside; IPv4-compatible and IPv4-translated (RFC 2765, which
    // the guard let through before issue 16) are refused outright. Endpoint creation
    // does not connect, so none of these sends a packet.
    let cases: [(&str, &str, ForbiddenAddress); 8] = [
        ("loopback.test", "127.0.0.1", ForbiddenAddress::Loopback),
        (
            "mapped.test",
            "::ffff:127.0.0.1",
            ForbiddenAddress::Loopback,
        ),
        ("zero.test", "0.0.0.0", ForbiddenAddress::Unspecified),
        ("six.test", "::1", ForbiddenAddress::Loopback),
        ("nat64.test", "64:ff9b::7f00:1", ForbiddenAddress::Loopback),
        (
            "sixtofour.test",
            "2002:7f00:1::1",
            ForbiddenAddress::Loopback,
        ),
        ("compatible.test", "::127.0.0.1", ForbiddenAddress::Reserved),
        (
            "translated.test",
            "::ffff:0:127.0.0.1",
            ForbiddenAddress::Reserved,
        ),
    ];
    let mut resolver = webhook_sender::StaticResolver::new();
    for (name, ip, _) in cases {
        resolver = resolver.with(name, [ip.parse().unwrap()]);
    }
    let sender = sender(AllowList::none(), resolver).await;
    for (name, ip, class) in cases {
        let error = sender
            .endpoints()
            .create(endpoint(format!("http://{name}:{port}/webhook")))
            .await
            .unwrap_err();
        assert_eq!(error.forbidden_address(), Some(class), "{name} → {ip}");
    }
    sender.shutdown().await.unwrap();

    // The system resolver reads numeric forms itself (inet_aton), without DNS: decimal,
    // hexadecimal, octal and shortened forms of 127.0.0.1, and `localhost` from /etc/hosts.
    let system = self::sender(AllowList::none(), SystemResolver).await;
    for host in [
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "127.1",
        "localhost",
    ] {
        let error = system
            .endpoints()
            .create(endpoint(format!("http://{host}:{port}/webhook")))
            .await
            .unwrap_err();
        assert!(
            error.is_forbidden_address(),
            "{host} must be refused as loopback: {error}"
        );
    }
    system.shutdown().await.unwrap();
    assert_eq!(server.tally().requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_re_resolves_to_a_forbidden_address_is_refused_at_connect_time() {
    let server = receiver().await;
    let port = server.addr().port();
    // An IPv6 twin on the same port, when the machine has IPv6 loopback.
    let six = TcpListener::bind(("::1", port)).await.ok();
    let six_hits = Arc::new(AtomicUsize::new(0));
    if let Some(listener) = six {
        let hits = Arc::clone(&six_hits);
        tokio::spawn(async move {
            while let Ok((_stream, _)) = listener.accept().await {
                hits.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    // At creation the name resolves to 127.0.0.2, which this sender's allow list admits
    // (nothing listens there); afterwards it resolves to addresses of the test servers.
    let allow = AllowList::none().allow("127.0.0.2/32".parse::<Cidr>().unwrap());
    for forbidden in [
        vec!["127.0.0.1"],
        vec!["::ffff:127.0.0.1"],
        vec!["0.0.0.0"],
        vec!["::1"],
        vec!["0.0.0.0", "::1", "127.0.0.1"],
    ] {
        let resolver = Arc::new(Rebinding {
            accepted: "127.0.0.2".parse().unwrap(),
            forbidden: forbidden.iter().map(|ip| ip.parse().unwrap()).collect(),
            calls: AtomicUsize::new(0),
        });
        let sender = sender(allow.clone(), Shared(Arc::clone(&resolver))).await;
        sender
            .endpoints()
            .create(endpoint(format!("http://rebind.test:{port}/webhook")))
            .await
            .unwrap();
        let receipt = sender.publish(event()).await.unwrap();
        let delivery = wait_one_finished(
            &sender,
            &ORGANIZATION.into(),
            receipt.deliveries[0].id,
            WAIT,
        )
        .await;
        assert_eq!(delivery.status, DeliveryStatus::Failed, "{forbidden:?}");
        assert_eq!(delivery.attempts.len(), 1, "refused, not retried");
        assert!(
            delivery.attempts[0].is_forbidden(),
            "{forbidden:?}: {:?}",
            delivery.attempts[0]
        );
        assert!(resolver.calls.load(Ordering::SeqCst) >= 2);
        sender.shutdown().await.unwrap();
    }
    assert_eq!(server.tally().requests(), 0, "a request reached 127.0.0.1");
    assert_eq!(
        six_hits.load(Ordering::SeqCst),
        0,
        "a connection reached ::1"
    );
}

/// A server that answers every request with `status` and `Location: location`, counting them.
async fn redirecting(status: u16, location: &str) -> (HttpServer, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let status = StatusCode::from_u16(status).unwrap();
    let location = HeaderValue::from_str(location).unwrap();
    let server = HttpServer::start(hyper::service::service_fn(move |_request: Request<_>| {
        counted.fetch_add(1, Ordering::SeqCst);
        let mut response = Response::new(Full::new(Bytes::from_static(b"moved")));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(http::header::LOCATION, location.clone());
        async move { Ok::<_, Infallible>(response) }
    }))
    .await;
    (server, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_never_followed() {
    let target = receiver().await;
    let sender = sender(AllowList::loopback(), SystemResolver).await;
    for status in [301, 302, 303, 307, 308] {
        let (server, hits) = redirecting(status, &target.url()).await;
        let id = sender
            .endpoints()
            .create(endpoint(server.url()))
            .await
            .unwrap();
        let receipt = sender.publish(event()).await.unwrap();
        let delivery = wait_one_finished(
            &sender,
            &ORGANIZATION.into(),
            receipt.deliveries[0].id,
            WAIT,
        )
        .await;
        assert_eq!(delivery.status, DeliveryStatus::Failed, "{status}");
        assert_eq!(delivery.attempts.len(), 1, "a redirect fails at once");
        assert_eq!(delivery.attempts[0].status(), Some(status));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        sender
            .endpoints()
            .delete(&ORGANIZATION.into(), id)
            .await
            .unwrap();
    }
    assert_eq!(
        target.tally().requests(),
        0,
        "the redirect target received a request"
    );
    sender.shutdown().await.unwrap();
}
