//! The SSRF guard: every forbidden address class is refused, for IP literals, for names
//! that resolve to them, and at connect time when a name re-resolves (DNS rebinding).
//! No test resolves a real name: names go through a resolver the test controls.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{TestServer, outcomes};
use serde_json::json;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::{
    AllowList, Cidr, DeliveryStatus, EndpointConfig, ForbiddenAddress, Publish, Resolve,
    ResolveFuture, RetryPolicy, Sender, StaticResolver,
};

fn config(url: &str) -> EndpointConfig {
    EndpointConfig::event("org", url, [EventType::WalletCreated])
        .secret(HmacSecret::from_utf8("s").unwrap())
}

/// An event for [`config`]'s endpoint.
fn publish() -> Publish {
    Publish::event("org", EventType::WalletCreated, "w1", json!({}))
}

/// What the guard does with a registry entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Every address of the block is refused.
    Refused,
    /// Judged by the IPv4 address embedded in it: `inside` embeds a forbidden one and is
    /// refused, `allowed` embeds a public one and is allowed.
    EmbeddedV4 { allowed: &'static str },
}

/// One entry of an IANA special-purpose address registry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The registry's address block.
    block: &'static str,
    /// The registry's name for it.
    name: &'static str,
    /// The registry's RFC column.
    rfc: &'static str,
    /// Whether the registry marks it globally reachable ("Globally Reachable" column).
    global: bool,
    /// An address inside the block that must be refused.
    inside: &'static str,
    /// What the guard does, and why where the registry says globally reachable.
    decision: Decision,
}

const fn refused(
    block: &'static str,
    name: &'static str,
    rfc: &'static str,
    global: bool,
    inside: &'static str,
) -> Entry {
    Entry {
        block,
        name,
        rfc,
        global,
        inside,
        decision: Decision::Refused,
    }
}

/// The IANA IPv4 Special-Purpose Address Registry (iana-ipv4-special-registry), every
/// entry, in the registry's order. Globally reachable entries are refused too: each is an
/// anycast service (PCP, TURN, AS112 DNS sinks, AMT relays) run by whoever is nearest on
/// the network, never the customer's receiver, and a webhook posted there leaks to a
/// stranger.
#[rustfmt::skip]
const IPV4_REGISTRY: &[Entry] = &[
    refused("0.0.0.0/8", "\"This network\"", "RFC 791 §3.2", false, "0.1.2.3"),
    refused("0.0.0.0/32", "\"This host on this network\"", "RFC 1122 §3.2.1.3", false, "0.0.0.0"),
    refused("10.0.0.0/8", "Private-Use", "RFC 1918", false, "10.20.30.40"),
    refused("100.64.0.0/10", "Shared Address Space", "RFC 6598", false, "100.100.1.1"),
    refused("127.0.0.0/8", "Loopback", "RFC 1122 §3.2.1.3", false, "127.0.0.2"),
    refused("169.254.0.0/16", "Link Local", "RFC 3927", false, "169.254.10.10"),
    refused("172.16.0.0/12", "Private-Use", "RFC 1918", false, "172.20.1.1"),
    refused("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890 §2.1", false, "192.0.0.77"),
    refused("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", false, "192.0.0.1"),
    refused("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", false, "192.0.0.8"),
    // Globally reachable: PCP anycast, answered by the nearest PCP server (a CPE).
    refused("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", true, "192.0.0.9"),
    // Globally reachable: TURN anycast, the nearest TURN relay.
    refused("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", true, "192.0.0.10"),
    refused("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880 §7.1", false, "192.0.0.170"),
    refused("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880 §7.1", false, "192.0.0.171"),
    refused("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", false, "192.0.2.55"),
    // Globally reachable: AS112 anycast DNS sinks, run by volunteers.
    refused("192.31.196.0/24", "AS112-v4", "RFC 7535", true, "192.31.196.1"),
    // Globally reachable: AMT relay anycast.
    refused("192.52.193.0/24", "AMT", "RFC 7450", true, "192.52.193.1"),
    refused("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", false, "192.88.99.1"),
    // Globally reachable: the 6a44 relay anycast, whichever relay is nearest.
    refused("192.88.99.2/32", "6a44-relay anycast address", "RFC 6751", true, "192.88.99.2"),
    refused("192.168.0.0/16", "Private-Use", "RFC 1918", false, "192.168.100.1"),
    // Globally reachable: AS112 direct delegation anycast.
    refused("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", true, "192.175.48.6"),
    refused("198.18.0.0/15", "Benchmarking", "RFC 2544", false, "198.19.1.1"),
    refused("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", false, "198.51.100.7"),
    refused("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", false, "203.0.113.9"),
    refused("240.0.0.0/4", "Reserved", "RFC 1112 §4", false, "250.1.2.3"),
    refused("255.255.255.255/32", "Limited Broadcast", "RFC 8190, RFC 919 §7", false, "255.255.255.255"),
];

/// The IANA IPv6 Special-Purpose Address Registry (iana-ipv6-special-registry), every
/// entry, in the registry's order; decisions as for [`IPV4_REGISTRY`]. ORCHIDv2 and DETs
/// are globally reachable identifiers (overlay and drone ids), not locators of a receiver;
/// refusing the whole of `2001::/23` also refuses assignments made after this table.
#[rustfmt::skip]
const IPV6_REGISTRY: &[Entry] = &[
    refused("::1/128", "Loopback Address", "RFC 4291", false, "::1"),
    refused("::/128", "Unspecified Address", "RFC 4291", false, "::"),
    // Not globally reachable as IPv6, but a socket connects to the IPv4 address inside.
    Entry {
        block: "::ffff:0:0/96",
        name: "IPv4-mapped Address",
        rfc: "RFC 4291",
        global: false,
        inside: "::ffff:10.0.0.1",
        decision: Decision::EmbeddedV4 {
            allowed: "::ffff:8.8.8.8",
        },
    },
    // Globally reachable: the NAT64 gateway reaches the embedded IPv4 address, so it is
    // judged as that address (64:ff9b::7f00:1 is 127.0.0.1 behind the gateway).
    Entry {
        block: "64:ff9b::/96",
        name: "IPv4-IPv6 Translat.",
        rfc: "RFC 6052",
        global: true,
        inside: "64:ff9b::7f00:1",
        decision: Decision::EmbeddedV4 {
            allowed: "64:ff9b::808:808",
        },
    },
    refused("64:ff9b:1::/48", "IPv4-IPv6 Translat.", "RFC 8215", false, "64:ff9b:1::808:808"),
    refused("100::/64", "Discard-Only Address Block", "RFC 6666", false, "100::1"),
    refused("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", false, "100:0:0:1::1"),
    refused("2001::/23", "IETF Protocol Assignments", "RFC 2928", false, "2001:1ff::1"),
    // Teredo: the server's IPv4 and the client's obfuscated IPv4 are embedded; refused
    // outright, whatever they are (a tunnel endpoint, not a receiver).
    refused("2001::/32", "TEREDO", "RFC 4380, RFC 8190", false, "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
    // Globally reachable anycasts: the nearest PCP server, TURN relay, SRP registrar.
    refused("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", true, "2001:1::1"),
    refused("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", true, "2001:1::2"),
    refused("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast Address", "RFC 9665", true, "2001:1::3"),
    refused("2001:2::/48", "Benchmarking", "RFC 5180, RFC Errata 1752", false, "2001:2::1"),
    // Globally reachable: AMT relay anycast.
    refused("2001:3::/32", "AMT", "RFC 7450", true, "2001:3::1"),
    // Globally reachable: AS112 anycast DNS sinks.
    refused("2001:4:112::/48", "AS112-v6", "RFC 7535", true, "2001:4:112::1"),
    refused("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", false, "2001:10::1"),
    // Globally reachable: ORCHIDv2 overlay identifiers, not locators.
    refused("2001:20::/28", "ORCHIDv2", "RFC 7343", true, "2001:20::1"),
    // Globally reachable: drone remote-ID entity tags, not a receiver.
    refused("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", true, "2001:30::1"),
    refused("2001:db8::/32", "Documentation", "RFC 3849", false, "2001:db8::1"),
    // 6to4: a relay forwards to the embedded IPv4 address (2002:AABB:CCDD::/48).
    Entry {
        block: "2002::/16",
        name: "6to4",
        rfc: "RFC 3056",
        global: false,
        inside: "2002:a9fe:a9fe::1",
        decision: Decision::EmbeddedV4 {
            allowed: "2002:808:808::1",
        },
    },
    // Globally reachable: AS112 direct delegation anycast.
    refused("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", true, "2620:4f:8000::6"),
    refused("3fff::/20", "Documentation", "RFC 9637", false, "3fff:123::1"),
    refused("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", false, "5f00:1::1"),
    refused("fc00::/7", "Unique-Local", "RFC 4193, RFC 8190", false, "fd12:3456::1"),
    refused("fe80::/10", "Link-Local Unicast", "RFC 4291", false, "fe80::1"),
];

/// Forms outside the registries that the guard refuses too (deprecated or non-unicast),
/// with the forms the issue names: IPv4-compatible, IPv4-translated, site-local,
/// multicast, cloud metadata, and IPv6 outside global unicast `2000::/3`.
const OTHER_REFUSED: &[(&str, &str)] = &[
    (
        "::7f00:1",
        "IPv4-compatible ::127.0.0.1 (deprecated, RFC 4291 §2.5.5.1)",
    ),
    ("::8.8.8.8", "IPv4-compatible, even of a public address"),
    (
        "::ffff:0:7f00:1",
        "IPv4-translated ::ffff:0:127.0.0.1 (RFC 2765)",
    ),
    (
        "::ffff:0:808:808",
        "IPv4-translated, even of a public address",
    ),
    ("fec0::1", "site-local (deprecated, RFC 3879)"),
    ("ff02::1", "IPv6 multicast"),
    ("224.0.0.1", "IPv4 multicast"),
    ("239.255.255.250", "IPv4 multicast (SSDP)"),
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata (AWS IPv6)"),
    ("::ffff:169.254.169.254", "cloud metadata, IPv4-mapped"),
    (
        "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "just below 2000::/3",
    ),
    ("4000::1", "just above 2000::/3"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of cloud metadata"),
    ("2002:7f00:1::1", "6to4 of loopback"),
];

/// Public addresses just outside refused blocks: all allowed.
const ADJACENT_PUBLIC: &[&str] = &[
    "1.0.0.0",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "191.255.255.255",
    "192.0.1.0",
    "192.0.3.0",
    "192.31.195.255",
    "192.31.197.0",
    "192.52.192.255",
    "192.52.194.0",
    "192.88.98.255",
    "192.88.100.0",
    "192.167.255.255",
    "192.169.0.0",
    "192.175.47.255",
    "192.175.49.0",
    "198.17.255.255",
    "198.20.0.0",
    "198.51.99.255",
    "198.51.101.0",
    "203.0.112.255",
    "203.0.114.0",
    "223.255.255.255",
    "2000::1",
    "2001:200::1",
    "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db9::",
    "2003::1",
    "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff",
    "2620:4f:8001::",
    "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "3fff:1000::",
    "3fff:ffff::1",
    "2606:4700::1111",
    "::ffff:1.0.0.0",
    "64:ff9b::b00:0",
    "2002:b00::1",
];

fn registry() -> impl Iterator<Item = &'static Entry> {
    IPV4_REGISTRY.iter().chain(IPV6_REGISTRY)
}

fn ip(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|e| panic!("{text} is not an address: {e}"))
}

/// The last address of `block` (all host bits set).
fn last_address(block: &str) -> IpAddr {
    let (addr, prefix) = block.split_once('/').unwrap();
    let prefix: u32 = prefix.parse().unwrap();
    match ip(addr) {
        IpAddr::V4(v4) => {
            let host = u32::MAX.checked_shr(prefix).unwrap_or(0);
            IpAddr::V4((v4.to_bits() | host).into())
        }
        IpAddr::V6(v6) => {
            let host = u128::MAX.checked_shr(prefix).unwrap_or(0);
            IpAddr::V6((v6.to_bits() | host).into())
        }
    }
}

/// A URL host for `ip`.
fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[test]
fn the_registry_tables_are_consistent() {
    assert_eq!(
        IPV4_REGISTRY.len(),
        26,
        "rows of iana-ipv4-special-registry"
    );
    assert_eq!(
        IPV6_REGISTRY.len(),
        25,
        "rows of iana-ipv6-special-registry"
    );
    for entry in registry() {
        let block: Cidr = entry.block.parse().unwrap();
        assert!(
            block.contains(ip(entry.inside)),
            "{} ({}): {} is not inside",
            entry.block,
            entry.name,
            entry.inside
        );
        assert!(block.contains(last_address(entry.block)), "{}", entry.block);
        assert!(
            entry.rfc.starts_with("RFC "),
            "{}: {}",
            entry.block,
            entry.rfc
        );
        if let Decision::EmbeddedV4 { allowed } = entry.decision {
            assert!(block.contains(ip(allowed)), "{}: {allowed}", entry.block);
        }
    }
    let global = registry().filter(|entry| entry.global).count();
    assert_eq!(
        global, 15,
        "globally reachable entries, each with its decision noted"
    );
}

/// Every registry entry, at an address inside and at its last address, and the other
/// refused forms; the embedded forms' public counterparts and the adjacent public
/// addresses are allowed. Checked by the guard itself and at endpoint creation.
#[tokio::test]
async fn every_iana_special_purpose_block_is_refused_at_endpoint_creation() {
    let none = AllowList::none();
    let mut refused: Vec<(IpAddr, String)> = Vec::new();
    for entry in registry() {
        let what = format!("{} {} ({})", entry.block, entry.name, entry.rfc);
        refused.push((ip(entry.inside), what.clone()));
        if entry.decision == Decision::Refused {
            refused.push((last_address(entry.block), format!("{what}, last address")));
        }
    }
    refused.extend(
        OTHER_REFUSED
            .iter()
            .map(|(a, why)| (ip(a), (*why).to_owned())),
    );
    let mut allowed: Vec<IpAddr> = ADJACENT_PUBLIC.iter().map(|a| ip(a)).collect();
    allowed.extend(registry().filter_map(|entry| match entry.decision {
        Decision::EmbeddedV4 { allowed } => Some(ip(allowed)),
        Decision::Refused => None,
    }));

    for (addr, what) in &refused {
        assert!(none.check(*addr).is_err(), "{addr} ({what}) is allowed");
    }
    for addr in &allowed {
        assert_eq!(none.check(*addr), Ok(()), "{addr} is refused");
    }

    let sender = Sender::builder()
        .store(webhook_sender::store::MemoryStore::new())
        .build()
        .await
        .unwrap(); // no allow-list
    for (addr, what) in &refused {
        let url = format!("http://{}:8080/hook", host(*addr));
        let error = sender.endpoints().create(config(&url)).await.unwrap_err();
        assert!(error.is_forbidden_address(), "{addr} ({what}): {error}");
        assert_eq!(error.forbidden_address(), none.check(*addr).err(), "{addr}");
    }
    // Creating an endpoint on an IP literal does not connect: these reach no network.
    for addr in &allowed {
        let url = format!("http://{}:8080/hook", host(*addr));
        sender.endpoints().create(config(&url)).await.unwrap();
    }
    sender.shutdown().await.unwrap();
}

/// Answers a public address the first time a name is resolved (when the endpoint is
/// created), then the name's own address: DNS rebinding, one name per registry entry.
#[derive(Debug, Default)]
struct RebindEach {
    targets: HashMap<String, IpAddr>,
    calls: Mutex<HashMap<String, usize>>,
}

impl Resolve for RebindEach {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        let first = {
            let mut calls = self.calls.lock().unwrap();
            let count = calls.entry(host.to_owned()).or_default();
            *count += 1;
            *count == 1
        };
        let ip = if first {
            Some("93.184.215.14".parse().unwrap())
        } else {
            self.targets.get(host).copied()
        };
        Box::pin(async move {
            ip.map(|ip| vec![ip])
                .ok_or_else(|| std::io::Error::other("unknown test name"))
        })
    }
}

/// The same entries at connect time: each name passes creation, then re-resolves to an
/// address inside its block; the connector refuses every one before connecting, so the
/// delivery fails at its first attempt as forbidden. (The guard check in the test above
/// runs first, so a gap shows there, without any packet leaving the machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_iana_special_purpose_block_is_refused_at_connect_time() {
    let targets: HashMap<String, IpAddr> = registry()
        .map(|entry| entry.inside)
        .chain(OTHER_REFUSED.iter().map(|(a, _)| *a))
        .enumerate()
        .map(|(n, addr)| (format!("row{n}.test"), ip(addr)))
        .collect();
    for (name, addr) in &targets {
        assert!(AllowList::none().check(*addr).is_err(), "{name}: {addr}");
    }
    let resolver = Arc::new(RebindEach {
        targets: targets.clone(),
        calls: Mutex::default(),
    });
    let sender = Sender::builder()
        .store(webhook_sender::store::MemoryStore::new())
        .resolver(SharedRebindEach(Arc::clone(&resolver)))
        .outcome_capacity(4 * targets.len())
        .build()
        .await
        .unwrap();
    let mut names = HashMap::new();
    for (name, addr) in &targets {
        let url = format!("http://{name}:8080/hook");
        let endpoint = sender
            .endpoints()
            .create(config(&url).retry(RetryPolicy::schedule([std::time::Duration::ZERO; 3])))
            .await
            .unwrap();
        names.insert(endpoint, (name.clone(), *addr));
    }
    let mut watch = sender.outcomes();
    let receipt = sender.publish(publish()).await.unwrap();
    assert_eq!(receipt.deliveries.len(), targets.len());
    outcomes(&mut watch, targets.len()).await;
    for id in receipt.deliveries.iter().map(|d| d.id) {
        let delivery = sender.delivery(&"org".into(), id).await.unwrap().unwrap();
        let (name, addr) = &names[&delivery.endpoint];
        assert_eq!(delivery.status, DeliveryStatus::Failed, "{name} → {addr}");
        assert_eq!(
            delivery.attempts.len(),
            1,
            "{name} → {addr}: refused, not retried"
        );
        assert!(
            delivery.attempts[0].is_forbidden(),
            "{name} → {addr}: {:?}",
            delivery.attempts[0]
        );
    }
    let all_re_resolved = {
        let calls = resolver.calls.lock().unwrap();
        targets.keys().all(|name| calls[name] >= 2)
    };
    assert!(all_re_resolved, "every name re-resolved");
    sender.shutdown().await.unwrap();
}

/// Lets the test keep a handle on its resolver.
#[derive(Debug)]
struct SharedRebindEach(Arc<RebindEach>);

impl Resolve for SharedRebindEach {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        self.0.resolve(host)
    }
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
        .delivery(&"org".into(), receipt.deliveries[0].id)
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
