//! The SSRF guard: which IP addresses a sender may connect to.
//!
//! Loopback, private, link-local, cloud-metadata, multicast, broadcast, shared (CGNAT),
//! documentation and reserved ranges are refused, for IPv4, IPv6, and IPv4 addresses
//! embedded in IPv6 (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`),
//! which are judged as the IPv4 address they carry. An [`AllowList`] opts ranges back in,
//! for development and tests.
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
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`.
    Documentation,
    /// Other special-purpose ranges: `240/4`, `192.0.0/24`, `198.18/15`, `::/96`,
    /// `100::/64`, Teredo `2001::/32`, local NAT64 `64:ff9b:1::/48`.
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

fn classify_v4(ip: Ipv4Addr) -> Option<ForbiddenAddress> {
    use ForbiddenAddress as F;
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        (169, 254, 169, 254) | (169, 254, 170, 2) | (100, 100, 100, 200) => F::CloudMetadata,
        (0, ..) => F::Unspecified,
        (10, ..) | (192, 168, ..) => F::Private,
        (172, b, ..) if (16..=31).contains(&b) => F::Private,
        (100, b, ..) if (64..=127).contains(&b) => F::SharedAddressSpace,
        (127, ..) => F::Loopback,
        (169, 254, ..) => F::LinkLocal,
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => F::Documentation,
        (192, 0, 0, _) | (192, 88, 99, _) => F::Reserved,
        (198, b, ..) if b == 18 || b == 19 => F::Reserved,
        (255, 255, 255, 255) => F::Broadcast,
        (224..=239, ..) => F::Multicast,
        (240..=255, ..) => F::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<ForbiddenAddress> {
    use ForbiddenAddress as F;
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    Some(match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => F::Unspecified,
        [0, 0, 0, 0, 0, 0, 0, 1] => F::Loopback,
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254] => F::CloudMetadata,
        // IPv4-compatible (deprecated) ::a.b.c.d.
        [0, 0, 0, 0, 0, 0, _, _] => F::Reserved,
        [0x0100, 0, 0, 0, ..] => F::Reserved,
        [0x0064, 0xff9b, 0x0001, ..] => F::Reserved,
        [0x2001, 0x0db8, ..] => F::Documentation,
        [0x2001, 0, ..] => F::Reserved,
        [first, ..] if first & 0xfe00 == 0xfc00 => F::Private,
        [first, ..] if first & 0xffc0 == 0xfe80 => F::LinkLocal,
        [first, ..] if first & 0xffc0 == 0xfec0 => F::Private,
        [first, ..] if first & 0xff00 == 0xff00 => F::Multicast,
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped, NAT64 (well-known prefix)
/// or 6to4.
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
