//! Where webhooks may go: the address kinds allowed, checked on every address a webhook
//! connects to (a literal IP when the job is queued, a host name's addresses when it resolves).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Which addresses webhooks may be sent to, besides public ones (always allowed).
///
/// The default allows loopback (a receiver on the same machine: the main local use) and
/// private networks (a receiver in a container network or on the LAN), and refuses link-local
/// addresses: `169.254.0.0/16` and `fe80::/10` hold cloud metadata services
/// (`169.254.169.254`), which no webhook has a reason to reach. Known metadata addresses
/// outside that range (`fd00:ec2::254`, `100.100.100.200`) count as link-local too.
/// Unspecified, broadcast and multicast addresses are always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookTargets {
    /// `127.0.0.0/8` and `::1`.
    pub loopback: bool,
    /// `10/8`, `172.16/12`, `192.168/16`, `100.64/10` and `fc00::/7`.
    pub private: bool,
    /// `169.254/16`, `fe80::/10` and cloud metadata addresses.
    pub link_local: bool,
}

impl Default for WebhookTargets {
    fn default() -> Self {
        WebhookTargets { loopback: true, private: true, link_local: false }
    }
}

impl WebhookTargets {
    /// Only public addresses.
    pub fn public_only() -> Self {
        WebhookTargets { loopback: false, private: false, link_local: false }
    }

    /// `Err` (saying why) when a webhook may not connect to `ip`.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), String> {
        let (kind, allowed, flag) = match classify(ip) {
            Kind::Public => return Ok(()),
            Kind::Unusable => return Err(format!("{ip} is not a unicast address")),
            Kind::Loopback => ("loopback", self.loopback, "loopback"),
            Kind::Private => ("a private address", self.private, "private"),
            Kind::LinkLocal => ("link-local (cloud metadata lives there)", self.link_local, "link-local"),
        };
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "{ip} is {kind}: not allowed as a webhook target (--webhook-targets {flag} allows it)"
            ))
        }
    }

    /// `Err` when `url`'s host is an IP address a webhook may not go to (host names are
    /// checked when they resolve).
    pub(crate) fn check_url(&self, url: &url::Url) -> Result<(), String> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.check(ip)
    }
}

/// `public`, `private`, `loopback` and `link-local`, comma-separated (public addresses are
/// always allowed, so `public` alone allows only those); e.g. `"public,loopback"`.
impl std::str::FromStr for WebhookTargets {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut t = WebhookTargets::public_only();
        for kind in s.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match kind {
                "public" => {}
                "private" => t.private = true,
                "loopback" => t.loopback = true,
                "link-local" => t.link_local = true,
                other => {
                    return Err(format!(
                    "unknown webhook target kind '{other}' (expected public, private, loopback, link-local)"
                ))
                }
            }
        }
        Ok(t)
    }
}

enum Kind {
    Public,
    Private,
    Loopback,
    LinkLocal,
    Unusable,
}

fn classify(ip: IpAddr) -> Kind {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Kind {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        Kind::Unusable
    } else if ip.is_loopback() {
        Kind::Loopback
    } else if ip.is_link_local() || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Kind::LinkLocal
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Kind::Private
    } else {
        Kind::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Kind {
    let first = ip.segments()[0];
    if ip.is_unspecified() || ip.is_multicast() {
        Kind::Unusable
    } else if ip.is_loopback() {
        Kind::Loopback
    } else if (first & 0xffc0) == 0xfe80 || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Kind::LinkLocal
    } else if (first & 0xfe00) == 0xfc00 {
        Kind::Private
    } else {
        Kind::Public
    }
}

/// The webhook client's resolver: the system's, keeping only the addresses allowed.
pub(crate) struct Guarded(pub WebhookTargets);

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let targets = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut why = None;
            let allowed: Vec<SocketAddr> = all
                .into_iter()
                .filter(|a| match targets.check(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        why.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = why.unwrap_or_else(|| "no address".into());
                return Err(format!("{host} resolves to no address a webhook may go to: {why}").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_defaults() {
        let t = WebhookTargets::default();
        let ok = |s: &str| t.check(s.parse().unwrap()).is_ok();
        assert!(ok("8.8.8.8") && ok("2001:4860::8888"));
        assert!(ok("127.0.0.1") && ok("::1") && ok("10.1.2.3") && ok("172.17.0.2") && ok("192.168.1.1"));
        assert!(ok("fd12::1") && ok("100.64.0.1"));
        for no in ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254", "fd00:ec2::254", "100.100.100.200"]
        {
            assert!(!ok(no), "{no}");
        }
        for no in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "ff02::1"] {
            assert!(!ok(no), "{no}");
        }
        assert_eq!("public,private,loopback".parse::<WebhookTargets>(), Ok(WebhookTargets::default()));
        assert_eq!("public".parse::<WebhookTargets>(), Ok(WebhookTargets::public_only()));
        assert!("public,intranet".parse::<WebhookTargets>().is_err());
        let strict = WebhookTargets::public_only();
        assert!(strict.check("127.0.0.1".parse().unwrap()).unwrap_err().contains("loopback"));
        assert!(strict.check("10.0.0.1".parse().unwrap()).unwrap_err().contains("private"));
        assert!(strict.check("1.1.1.1".parse().unwrap()).is_ok());
    }
}
