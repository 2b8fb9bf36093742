//! Server-side request forgery guard: which addresses a download may reach, and a DNS resolver
//! that hands the HTTP client only addresses it has checked (so the checked address is the one
//! connected to: no second lookup, no DNS rebinding between check and use).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// True only for globally routable unicast addresses: not loopback, private (RFC 1918), shared
/// (CGNAT), link-local (cloud metadata at 169.254.169.254), documentation, benchmarking,
/// reserved, multicast, unspecified, IPv6 unique-local or site-local, nor an IPv4-mapped,
/// -compatible, NAT64 or 6to4 form of one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let blocked = a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !blocked
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address: judge that one.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    // Only global unicast (2000::/3) is routable; inside it, skip the special blocks.
    let global_unicast = (s[0] & 0xe000) == 0x2000;
    // 2001::/23 IETF protocol assignments (Teredo, ...), 2001:db8::/32 and 3fff::/20 documentation.
    let special = (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8)) || (s[0] == 0x3fff && s[1] < 0x1000);
    global_unicast && !special
}

/// A resolver that fails a lookup unless every address it finds is public (a name resolving to a
/// public and a private address is treated as hostile). With `allow_private` it resolves
/// normally.
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

/// The resolver's refusal; found again in the error chain to report it as [`crate::DownloadError::Blocked`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BlockedAddress(pub(crate) String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no address").into());
            }
            if !allow_private {
                if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
                    return Err(Box::new(BlockedAddress(format!(
                        "{host} resolves to the non-public address {}",
                        bad.ip()
                    ))) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        let public = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::200e"];
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
            "2001::1",
        ];
        for a in public {
            assert!(is_public(a.parse().unwrap()), "{a} should be public");
        }
        for a in private {
            assert!(!is_public(a.parse().unwrap()), "{a} should be blocked");
        }
        assert!(is_public("::ffff:8.8.8.8".parse().unwrap()));
        assert!(is_public("64:ff9b::808:808".parse().unwrap()));
    }

    #[tokio::test]
    async fn resolver_refuses_localhost_unless_allowed() {
        let name: Name = "localhost".parse().unwrap();
        let err = match (GuardedResolver { allow_private: false }).resolve(name).await {
            Err(e) => e,
            Ok(_) => panic!("localhost must be refused"),
        };
        assert!(err.downcast_ref::<BlockedAddress>().is_some(), "{err}");
        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<_> = (GuardedResolver { allow_private: true }).resolve(name).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
