//! The address classifier: what kind of address an IP is, by the IANA special-purpose
//! registries, with IPv6 forms that carry an IPv4 address judged by that address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP is. [`classify`] gives it; each user of the classifier decides
/// which classes it connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// Globally routable unicast: none of the others.
    Public,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// Private networks: `10/8`, `172.16/12`, `192.168/16` (RFC 1918) and IPv6 unique-local
    /// `fc00::/7`.
    Private,
    /// Shared address space `100.64.0.0/10` (carrier-grade NAT, RFC 6598).
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud metadata service: `169.254.169.254` (AWS, GCP, Azure, ...), `169.254.170.2`
    /// (AWS ECS task credentials), `fd00:ec2::254` (AWS over IPv6), `100.100.100.200` (Alibaba).
    Metadata,
    /// Documentation: TEST-NET-1/2/3 (`192.0.2/24`, `198.51.100/24`, `203.0.113/24`),
    /// `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Benchmarking: `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// Anything else no packet should be sent to: `0/8` ("this network"), `192.0.0/24` (IETF
    /// protocol assignments), `192.88.99/24` (6to4 relay anycast), `240/4`; IPv6 outside global
    /// unicast `2000::/3` (site-local `fec0::/10`, discard `100::/64`, local-use NAT64
    /// `64:ff9b:1::/48`, ...), the IETF block `2001::/23` (Teredo `2001::/32` included: its
    /// client address is obfuscated, and only a Teredo relay reaches it), and IPv4-compatible
    /// `::a.b.c.d` forms of public addresses (deprecated; no route leads to them).
    Reserved,
}

impl AddressClass {
    /// Every class, for tables and tests.
    pub const ALL: [AddressClass; 12] = [
        AddressClass::Public,
        AddressClass::Loopback,
        AddressClass::Private,
        AddressClass::SharedAddressSpace,
        AddressClass::LinkLocal,
        AddressClass::Metadata,
        AddressClass::Documentation,
        AddressClass::Benchmarking,
        AddressClass::Multicast,
        AddressClass::Broadcast,
        AddressClass::Unspecified,
        AddressClass::Reserved,
    ];

    /// The class in words, for messages ("a loopback address").
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private-network address",
            AddressClass::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Metadata => "a cloud metadata address",
            AddressClass::Documentation => "a documentation (TEST-NET) address",
            AddressClass::Benchmarking => "a benchmarking address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Unspecified => "the unspecified address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The class of `ip`. IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002::/16`) addresses are classified by the IPv4 address they carry (a NAT64 address of
/// `169.254.169.254` is [`Metadata`](AddressClass::Metadata)); so are IPv4-compatible ones
/// (`::a.b.c.d`), except that those of public addresses are [`Reserved`](AddressClass::Reserved).
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped, IPv4-compatible (not `::` or `::1`),
/// NAT64 well-known prefix, or 6to4. `None` for any other.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    embedded(ip).map(|(v4, _)| v4)
}

/// How an IPv6 address carries an IPv4 one.
#[derive(PartialEq)]
enum Embedding {
    Mapped,
    Compatible,
    Nat64,
    SixToFour,
}

fn embedded(ip: Ipv6Addr) -> Option<(Ipv4Addr, Embedding)> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some((v4, Embedding::Mapped))
    } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        Some((v4(s[6], s[7]), Embedding::Nat64))
    } else if s[0] == 0x2002 {
        Some((v4(s[1], s[2]), Embedding::SixToFour))
    } else if s[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        Some((v4(s[6], s[7]), Embedding::Compatible))
    } else {
        None
    }
}

/// The cloud metadata services' IPv4 addresses.
const METADATA_V4: [Ipv4Addr; 3] =
    [Ipv4Addr::new(169, 254, 169, 254), Ipv4Addr::new(169, 254, 170, 2), Ipv4Addr::new(100, 100, 100, 200)];

/// AWS's instance metadata service over IPv6.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    use AddressClass::*;
    let [a, b, c, _] = ip.octets();
    if METADATA_V4.contains(&ip) {
        return Metadata;
    }
    match (a, b, c) {
        _ if ip.is_unspecified() => Unspecified,
        _ if ip.is_broadcast() => Broadcast,
        (0, ..) => Reserved,
        (10, ..) => Private,
        (100, 64..=127, _) => SharedAddressSpace,
        (127, ..) => Loopback,
        (169, 254, _) => LinkLocal,
        (172, 16..=31, _) => Private,
        (192, 0, 0) => Reserved,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Documentation,
        (192, 88, 99) => Reserved,
        (192, 168, _) => Private,
        (198, 18..=19, _) => Benchmarking,
        (224..=239, ..) => Multicast,
        (240..=255, ..) => Reserved,
        _ => Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    use AddressClass::*;
    if let Some((v4, how)) = embedded(ip) {
        let class = classify_v4(v4);
        return if how == Embedding::Compatible && class == Public { Reserved } else { class };
    }
    let s = ip.segments();
    if ip.is_unspecified() {
        Unspecified
    } else if ip.is_loopback() {
        Loopback
    } else if ip == METADATA_V6 {
        Metadata
    } else if s[0] >> 8 == 0xff {
        Multicast
    } else if s[0] & 0xffc0 == 0xfe80 {
        LinkLocal
    } else if s[0] & 0xfe00 == 0xfc00 {
        Private
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        Documentation
    } else if s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0 {
        Benchmarking
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        Reserved
    } else if s[0] & 0xe000 == 0x2000 {
        Public
    } else {
        Reserved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressClass::*;

    /// Every class, in every spelling that reaches it: IPv4, IPv6, and the IPv6 forms that
    /// carry an IPv4 address (mapped, compatible, NAT64, 6to4).
    #[test]
    fn every_address_class() {
        let table: &[(&str, AddressClass)] = &[
            // public
            ("8.8.8.8", Public),
            ("1.1.1.1", Public),
            ("93.184.216.34", Public),
            ("2606:4700:4700::1111", Public),
            ("2a00:1450:4001::200e", Public),
            ("::ffff:8.8.8.8", Public),
            ("64:ff9b::808:808", Public),
            ("2002:808:808::1", Public),
            // unspecified
            ("0.0.0.0", Unspecified),
            ("::", Unspecified),
            ("::ffff:0.0.0.0", Unspecified),
            // loopback
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("::127.0.0.1", Loopback), // IPv4-compatible
            ("64:ff9b::7f00:1", Loopback),
            ("2002:7f00:1::", Loopback),
            // private networks
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("::ffff:10.0.0.1", Private),
            ("64:ff9b::a00:1", Private),
            ("2002:c0a8:101::", Private),
            // not private: the edges
            ("172.15.255.255", Public),
            ("172.32.0.0", Public),
            // shared address space (CGNAT)
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("::ffff:100.64.0.1", SharedAddressSpace),
            ("100.63.255.255", Public),
            ("100.128.0.0", Public),
            // link-local
            ("169.254.1.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("::ffff:169.254.1.1", LinkLocal),
            // cloud metadata, in every form
            ("169.254.169.254", Metadata),
            ("169.254.170.2", Metadata),
            ("100.100.100.200", Metadata),
            ("fd00:ec2::254", Metadata),
            ("::ffff:169.254.169.254", Metadata),
            ("::169.254.169.254", Metadata),
            ("64:ff9b::a9fe:a9fe", Metadata),
            ("2002:a9fe:a9fe::", Metadata),
            // documentation (TEST-NET)
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("64:ff9b::c000:201", Documentation),
            ("2002:cb00:7101::", Documentation),
            // benchmarking
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("2001:2::1", Benchmarking),
            // multicast
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("::ffff:224.0.0.1", Multicast),
            // broadcast
            ("255.255.255.255", Broadcast),
            ("::ffff:255.255.255.255", Broadcast),
            // reserved
            ("0.1.2.3", Reserved),
            ("192.0.0.8", Reserved),
            ("192.88.99.1", Reserved),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
            ("fec0::1", Reserved),                              // site-local
            ("100::1", Reserved),                               // discard
            ("64:ff9b:1::a00:1", Reserved),                     // local-use NAT64
            ("2001::1", Reserved),                              // Teredo
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reserved), // Teredo (RFC 4380's example)
            ("2001:20::1", Reserved),                           // ORCHIDv2
            ("::8.8.8.8", Reserved),                            // IPv4-compatible form of a public address
            ("4000::1", Reserved),                              // outside 2000::/3
        ];
        for (ip, want) in table {
            let got = classify(ip.parse().unwrap());
            assert_eq!(got, *want, "{ip}");
        }
        // Each class has at least one row.
        for class in AddressClass::ALL {
            assert!(table.iter().any(|(_, c)| *c == class), "no row for {class:?}");
        }
    }

    #[test]
    fn embedded_addresses() {
        let cases = [
            ("::ffff:1.2.3.4", Some("1.2.3.4")),
            ("::1.2.3.4", Some("1.2.3.4")),
            ("64:ff9b::102:304", Some("1.2.3.4")),
            ("2002:102:304::", Some("1.2.3.4")),
            ("::", None),
            ("::1", None),
            ("2001:db8::1", None),
        ];
        for (ip, want) in cases {
            let want: Option<Ipv4Addr> = want.map(|w| w.parse().unwrap());
            assert_eq!(embedded_ipv4(ip.parse().unwrap()), want, "{ip}");
        }
    }
}
