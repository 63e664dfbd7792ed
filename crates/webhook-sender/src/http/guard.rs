//! The SSRF guard: which IP addresses a sender may connect to.
//!
//! Every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries is refused
//! (loopback, private, link-local, shared (CGNAT), documentation, benchmarking, protocol
//! assignments and anycast services, reserved), plus cloud-metadata addresses, multicast
//! and, for IPv6, everything outside global unicast `2000::/3`. IPv4 addresses embedded in
//! IPv6 (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged
//! as the IPv4 address they carry; IPv4-compatible `::a.b.c.d`, IPv4-translated
//! `::ffff:0:a.b.c.d` and Teredo `2001::/32` are refused outright. The same check runs
//! when an endpoint is created and on every connection. An [`AllowList`] opts ranges back
//! in, for development and tests.
//!
//! ```
//! use std::net::IpAddr;
//! use webhook_sender::{AllowList, ForbiddenAddress};
//!
//! let metadata: IpAddr = "169.254.169.254".parse()?;
//! let mapped_loopback: IpAddr = "::ffff:127.0.0.1".parse()?;
//! let public: IpAddr = "93.184.215.14".parse()?;
//! let none = AllowList::none();
//! assert_eq!(none.check(metadata), Err(ForbiddenAddress::CloudMetadata));
//! assert_eq!(none.check(mapped_loopback), Err(ForbiddenAddress::Loopback));
//! assert_eq!(none.check(public), Ok(()));
//! assert_eq!(AllowList::loopback().check(mapped_loopback), Ok(()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForbiddenAddress {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, IPv6 unique local `fc00::/7`, site-local `fec0::/10`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// Cloud metadata services: `169.254.169.254`, `169.254.170.2`, `100.100.100.200`,
    /// `fd00:ec2::254`.
    CloudMetadata,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `0/8`, `::`.
    Unspecified,
    /// Shared address space (carrier-grade NAT), `100.64/10`.
    SharedAddressSpace,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Other special-purpose ranges: `240/4`, `192.0.0/24`, `198.18/15`, AS112 and AMT
    /// anycast, `::/96`, `::ffff:0:0:0/96`, `100::/64`, `2001::/23` (Teredo included),
    /// local NAT64 `64:ff9b:1::/48`, SRv6 `5f00::/16`, and IPv6 outside `2000::/3`.
    Reserved,
}

impl ForbiddenAddress {
    /// A short lowercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::CloudMetadata => "cloud metadata",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Unspecified => "unspecified",
            Self::SharedAddressSpace => "shared address space",
            Self::Documentation => "documentation",
            Self::Reserved => "reserved",
        }
    }

    /// The class of `ip`, or `None` when it is a public address.
    #[must_use]
    pub fn classify(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(v4) => classify_v4(v4),
            IpAddr::V6(v6) => classify_v6(v6),
        }
    }
}

impl fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One refused range: `(network, prefix length, class)`.
type Range<A> = (A, u8, ForbiddenAddress);

/// Every entry of the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its
/// updates) with the cloud metadata addresses and multicast added. The guard refuses each
/// range, including those the registry marks globally reachable: they are anycast
/// services (AS112 DNS sinks, AMT relays, PCP/TURN anycast), never a customer's webhook
/// receiver, and whoever answers on them is not the endpoint's owner. The longest match
/// gives the class. `crates/webhook-sender/tests/ssrf.rs` checks every registry entry.
const V4: &[Range<[u8; 4]>] = {
    use ForbiddenAddress as F;
    &[
        ([0, 0, 0, 0], 8, F::Unspecified), // "This network", RFC 791
        ([10, 0, 0, 0], 8, F::Private),    // Private-Use, RFC 1918
        ([100, 64, 0, 0], 10, F::SharedAddressSpace), // RFC 6598
        ([100, 100, 100, 200], 32, F::CloudMetadata), // Alibaba Cloud
        ([127, 0, 0, 0], 8, F::Loopback),  // RFC 1122
        ([169, 254, 0, 0], 16, F::LinkLocal), // RFC 3927
        ([169, 254, 169, 254], 32, F::CloudMetadata), // AWS, GCP, Azure, …
        ([169, 254, 170, 2], 32, F::CloudMetadata), // AWS ECS task metadata
        ([172, 16, 0, 0], 12, F::Private), // Private-Use, RFC 1918
        // IETF Protocol Assignments, RFC 6890: every assignment inside (DS-Lite /29,
        // dummy .8, PCP anycast .9, TURN anycast .10, NAT64 discovery .170/.171) and
        // any future one.
        ([192, 0, 0, 0], 24, F::Reserved),
        ([192, 0, 2, 0], 24, F::Documentation), // TEST-NET-1, RFC 5737
        ([192, 31, 196, 0], 24, F::Reserved),   // AS112-v4, RFC 7535
        ([192, 52, 193, 0], 24, F::Reserved),   // AMT, RFC 7450
        ([192, 88, 99, 0], 24, F::Reserved),    // 6to4 relay anycast, RFC 7526
        ([192, 168, 0, 0], 16, F::Private),     // Private-Use, RFC 1918
        ([192, 175, 48, 0], 24, F::Reserved),   // AS112 direct delegation, RFC 7534
        ([198, 18, 0, 0], 15, F::Reserved),     // Benchmarking, RFC 2544
        ([198, 51, 100, 0], 24, F::Documentation), // TEST-NET-2, RFC 5737
        ([203, 0, 113, 0], 24, F::Documentation), // TEST-NET-3, RFC 5737
        ([224, 0, 0, 0], 4, F::Multicast),      // RFC 5771 (not in the registry)
        ([240, 0, 0, 0], 4, F::Reserved),       // Reserved, RFC 1112
        ([255, 255, 255, 255], 32, F::Broadcast), // Limited Broadcast, RFC 919
    ]
};

/// The IANA IPv6 Special-Purpose Address Registry, as [`V4`]; with the deprecated
/// IPv4-compatible (`::/96`), IPv4-translated (`::ffff:0:0:0/96`, RFC 2765) and site-local
/// (`fec0::/10`) forms, cloud metadata and multicast added. Beyond this table, only global
/// unicast (`2000::/3`, the IANA IPv6 Address Space registry) is allowed at all: every
/// other block is reserved by the IETF. IPv4-mapped (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96`)
/// and 6to4 (`2002::/16`) addresses are judged by the IPv4 address they carry.
const V6: &[Range<[u16; 8]>] = {
    use ForbiddenAddress as F;
    &[
        ([0, 0, 0, 0, 0, 0, 0, 0], 128, F::Unspecified), // RFC 4291
        ([0, 0, 0, 0, 0, 0, 0, 1], 128, F::Loopback),    // RFC 4291
        ([0, 0, 0, 0, 0, 0, 0, 0], 96, F::Reserved),     // IPv4-compatible, RFC 4291 §2.5.5.1
        ([0, 0, 0, 0, 0xffff, 0, 0, 0], 96, F::Reserved), // IPv4-translated, RFC 2765
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, F::Reserved), // local-use NAT64, RFC 8215
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, F::Reserved), // Discard-Only, RFC 6666
        ([0x100, 0, 0, 1, 0, 0, 0, 0], 64, F::Reserved), // Dummy prefix, RFC 9780
        // IETF Protocol Assignments, RFC 2928: Teredo, the PCP/TURN/DNS-SD anycasts,
        // benchmarking, AMT, AS112, ORCHID(v2), DETs, and any future assignment.
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, F::Reserved),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, F::Documentation), // RFC 3849
        ([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48, F::Reserved),  // AS112 delegation, RFC 7534
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, F::Documentation),     // RFC 9637
        ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, F::Reserved),          // SRv6 SIDs, RFC 9602
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, F::Private),            // Unique-Local, RFC 4193
        ([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128, F::CloudMetadata), // AWS IMDS IPv6
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, F::LinkLocal),         // RFC 4291
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, F::Private),           // site-local, RFC 3879
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, F::Multicast),          // RFC 4291
    ]
};

/// The class of the longest range of `table` holding `bits` (of `width` bits).
fn longest_match<A: Copy>(
    table: &[Range<A>],
    to_bits: impl Fn(A) -> u128,
    bits: u128,
    width: u8,
) -> Option<ForbiddenAddress> {
    table
        .iter()
        .filter(|(net, prefix, _)| prefix_match(to_bits(*net), bits, *prefix, width))
        .max_by_key(|(_, prefix, _)| *prefix)
        .map(|(_, _, class)| *class)
}

fn classify_v4(ip: Ipv4Addr) -> Option<ForbiddenAddress> {
    longest_match(
        V4,
        |octets| u128::from(Ipv4Addr::from(octets).to_bits()),
        u128::from(ip.to_bits()),
        32,
    )
}

fn classify_v6(ip: Ipv6Addr) -> Option<ForbiddenAddress> {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let class = longest_match(V6, |s| Ipv6Addr::from(s).to_bits(), ip.to_bits(), 128);
    // Global unicast is 2000::/3; the rest of the space is reserved by the IETF.
    let global_unicast = ip.segments()[0] & 0xe000 == 0x2000;
    class.or((!global_unicast).then_some(ForbiddenAddress::Reserved))
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`), NAT64 with
/// the well-known prefix (`64:ff9b::a.b.c.d`, RFC 6052) or 6to4 (`2002:AABB:CCDD::/48`,
/// RFC 3056). A connection to one of them reaches that IPv4 address (the socket layer,
/// a NAT64 gateway or a 6to4 relay translates), so it is judged as that address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let from = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(from(hi, lo)),
        _ => None,
    }
}

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// A network; `None` when the prefix is longer than the address.
    #[must_use]
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is in this network (IPv4 networks never contain IPv6 addresses).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_match(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                self.prefix,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_match(net.to_bits(), ip.to_bits(), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn prefix_match(net: u128, ip: u128, prefix: u8, width: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (net >> shift) == (ip >> shift)
}

/// A text that is not `address` or `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCidr(String);

impl fmt::Display for InvalidCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an IP network: {:?}", self.0)
    }
}

impl std::error::Error for InvalidCidr {}

impl FromStr for Cidr {
    type Err = InvalidCidr;

    /// Parses `10.0.0.0/8`, `::1/128`, or a bare address (a single-address network).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCidr(text.to_owned());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| invalid())?;
        let prefix = match prefix {
            Some(prefix) => prefix.trim().parse().map_err(|_| invalid())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Self::new(addr, prefix).ok_or_else(invalid)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Address ranges that are allowed although the guard would refuse them: an explicit
/// opt-in for development and tests. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    networks: Vec<Cidr>,
}

impl AllowList {
    /// Allows nothing beyond public addresses (the default).
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Allows loopback only (`127.0.0.0/8` and `::1`): what tests on 127.0.0.1 need.
    #[must_use]
    pub fn loopback() -> Self {
        Self::none().allow_loopback()
    }

    /// Allows loopback and the private networks (`10.0.0.0/8`, `172.16.0.0/12`,
    /// `192.168.0.0/16`, `fc00::/7`): a service run for development or inside a private
    /// network. Link-local addresses (cloud metadata at `169.254.169.254`) stay refused.
    #[must_use]
    pub fn private_networks() -> Self {
        let v4 = |a, b, prefix| Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, 0, 0)),
            prefix,
        };
        Self::loopback()
            .allow(v4(10, 0, 8))
            .allow(v4(172, 16, 12))
            .allow(v4(192, 168, 16))
            .allow(Cidr {
                addr: IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)),
                prefix: 7,
            })
    }

    /// Adds loopback (`127.0.0.0/8` and `::1`).
    #[must_use]
    pub fn allow_loopback(self) -> Self {
        self.allow(Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
            prefix: 8,
        })
        .allow(Cidr {
            addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
            prefix: 128,
        })
    }

    /// Adds a network.
    #[must_use]
    pub fn allow(mut self, network: Cidr) -> Self {
        self.networks.push(network);
        self
    }

    /// Whether `ip` may be connected to: either public, or inside an allowed network.
    /// IPv4 addresses embedded in IPv6 are also matched against IPv4 networks.
    ///
    /// # Errors
    /// The [`ForbiddenAddress`] class of a refused address.
    pub fn check(&self, ip: IpAddr) -> Result<(), ForbiddenAddress> {
        let Some(class) = ForbiddenAddress::classify(ip) else {
            return Ok(());
        };
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = self
            .networks
            .iter()
            .any(|net| net.contains(ip) || embedded.is_some_and(|v4| net.contains(v4)));
        if allowed { Ok(()) } else { Err(class) }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<ForbiddenAddress> {
        ForbiddenAddress::classify(ip.parse().unwrap())
    }

    #[test]
    fn every_class_of_forbidden_address() {
        use ForbiddenAddress as F;
        let cases = [
            ("127.0.0.1", F::Loopback),
            ("127.255.255.254", F::Loopback),
            ("::1", F::Loopback),
            ("::ffff:127.0.0.1", F::Loopback),
            ("10.1.2.3", F::Private),
            ("172.16.0.1", F::Private),
            ("172.31.255.255", F::Private),
            ("192.168.1.1", F::Private),
            ("::ffff:10.0.0.1", F::Private),
            ("fc00::1", F::Private),
            ("fd12:3456::1", F::Private),
            ("fec0::1", F::Private),
            ("169.254.1.1", F::LinkLocal),
            ("fe80::1", F::LinkLocal),
            ("169.254.169.254", F::CloudMetadata),
            ("::ffff:169.254.169.254", F::CloudMetadata),
            ("64:ff9b::a9fe:a9fe", F::CloudMetadata),
            ("2002:a9fe:a9fe::1", F::CloudMetadata),
            ("fd00:ec2::254", F::CloudMetadata),
            ("100.100.100.200", F::CloudMetadata),
            ("224.0.0.1", F::Multicast),
            ("239.255.255.250", F::Multicast),
            ("ff02::1", F::Multicast),
            ("255.255.255.255", F::Broadcast),
            ("0.0.0.0", F::Unspecified),
            ("0.1.2.3", F::Unspecified),
            ("::", F::Unspecified),
            ("100.64.0.1", F::SharedAddressSpace),
            ("100.127.255.255", F::SharedAddressSpace),
            ("192.0.2.1", F::Documentation),
            ("2001:db8::1", F::Documentation),
            ("240.0.0.1", F::Reserved),
            ("198.18.0.1", F::Reserved),
            ("::7f00:1", F::Reserved),
            ("2001::1", F::Reserved),
            ("::ffff:0:7f00:1", F::Reserved),
            ("2001:2::1", F::Reserved),
            ("2001:10::1", F::Reserved),
            ("2001:4:112::1", F::Reserved),
            ("2620:4f:8000::1", F::Reserved),
            ("192.31.196.1", F::Reserved),
            ("192.175.48.1", F::Reserved),
            ("192.52.193.1", F::Reserved),
            ("3fff::1", F::Documentation),
            ("5f00::1", F::Reserved),
            ("4000::1", F::Reserved),
            ("2002:7f00:1::1", F::Loopback),
            ("64:ff9b::7f00:1", F::Loopback),
            ("64:ff9b:1::808:808", F::Reserved),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:200::1",
            "2620:4f:8001::1",
            "3fff:1000::1",
        ] {
            assert_eq!(class(public), None, "{public}");
        }
    }

    #[test]
    fn allow_list_opts_in_explicitly() {
        let loopback = AllowList::loopback();
        assert_eq!(loopback.check("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(loopback.check("::1".parse().unwrap()), Ok(()));
        assert_eq!(loopback.check("::ffff:127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(
            loopback.check("10.0.0.1".parse().unwrap()),
            Err(ForbiddenAddress::Private)
        );
        assert_eq!(
            loopback.check("169.254.169.254".parse().unwrap()),
            Err(ForbiddenAddress::CloudMetadata)
        );
        let ten = AllowList::none().allow("10.0.0.0/8".parse().unwrap());
        assert_eq!(ten.check("10.9.9.9".parse().unwrap()), Ok(()));
        assert_eq!(
            ten.check("11.0.0.1".parse::<IpAddr>().unwrap()),
            Ok(()),
            "public"
        );
        assert!(ten.check("192.168.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
