//! Where webhooks may go: the address classes allowed, checked on every address a webhook
//! connects to (a literal IP when the job is queued, a host name's addresses when it resolves).
//! The classes are `runpod_net`'s, the one classifier of runpod-rs (S3 endpoints and downloads
//! use it too); this module holds only the webhooks' decision over them.

use reqwest::dns::{Name, Resolve, Resolving};
use runpod_net::{AddressClass, AddressPolicy, GuardedResolver, MixedAnswer, Refused, ResolveError};

/// Which addresses webhooks may be sent to, besides public ones (always allowed).
///
/// The default allows loopback (a receiver on the same machine: the main local use) and
/// private networks (a receiver in a container network or on the LAN), and refuses link-local
/// addresses: `169.254.0.0/16` and `fe80::/10` hold cloud metadata services
/// (`169.254.169.254`), which no webhook has a reason to reach. Cloud metadata addresses
/// outside that range (`fd00:ec2::254`, `100.100.100.200`) count as link-local too.
/// Unspecified, broadcast, multicast, documentation (TEST-NET), benchmarking and reserved
/// addresses are always refused; NAT64, 6to4 and IPv4-mapped addresses are judged by the IPv4
/// address they carry.
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

impl AddressPolicy for WebhookTargets {
    fn allows(&self, class: AddressClass) -> bool {
        match class {
            AddressClass::Public => true,
            AddressClass::Loopback => self.loopback,
            AddressClass::Private | AddressClass::SharedAddressSpace => self.private,
            AddressClass::LinkLocal | AddressClass::Metadata => self.link_local,
            _ => false,
        }
    }
}

impl WebhookTargets {
    /// Only public addresses.
    pub fn public_only() -> Self {
        WebhookTargets { loopback: false, private: false, link_local: false }
    }

    /// The resolver of webhook deliveries: a name's allowed addresses are kept, the others
    /// dropped; a name with none allowed is refused.
    fn resolver(self) -> GuardedResolver<WebhookTargets> {
        GuardedResolver::new(self, MixedAnswer::KeepAllowed)
    }

    /// `Err` (saying why) when a webhook may not connect to `ip`.
    #[cfg(test)]
    fn check(&self, ip: std::net::IpAddr) -> Result<(), String> {
        self.resolver().check(ip).map_err(|r| explain(&r))
    }

    /// `Err` when `url`'s host is an IP address a webhook may not go to (host names are
    /// checked when they resolve).
    pub(crate) fn check_url(&self, url: &url::Url) -> Result<(), String> {
        self.resolver().check_url(url).map_err(|r| explain(&r))
    }
}

/// A refusal, with the `--webhook-targets` kind that would allow it.
fn explain(refused: &Refused) -> String {
    let flag = match refused.class {
        AddressClass::Loopback => Some("loopback"),
        AddressClass::Private | AddressClass::SharedAddressSpace => Some("private"),
        AddressClass::LinkLocal | AddressClass::Metadata => Some("link-local"),
        _ => None,
    };
    match flag {
        Some(flag) => {
            format!("{refused}: not allowed as a webhook target (--webhook-targets {flag} allows it)")
        }
        None => format!("{refused}: never a webhook target"),
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

/// The webhook client's resolver: `runpod_net`'s guarded resolver under the webhook targets
/// (a name's allowed addresses are kept; a name with none is refused, told with the first
/// refused address and the `--webhook-targets` kind that would allow it).
pub(crate) struct Guarded(pub WebhookTargets);

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.0.resolver();
        Box::pin(async move {
            let host = name.as_str();
            let ips = resolver.resolve(host).await.map_err(|e| match e {
                ResolveError::Refused(r) => explain(&r),
                other => other.to_string(),
            })?;
            Ok(Box::new(ips.into_iter().map(|ip| std::net::SocketAddr::new(ip, 0))) as reqwest::dns::Addrs)
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
        assert!(ok("fd12::1") && ok("100.64.0.1") && ok("::ffff:192.168.1.1") && ok("64:ff9b::7f00:1"));
        for no in ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254", "fd00:ec2::254", "100.100.100.200"]
        {
            assert!(!ok(no), "{no}");
        }
        // NAT64 and 6to4 forms of the metadata address are metadata too.
        for no in ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::"] {
            assert!(!ok(no), "{no}");
        }
        // Documentation (TEST-NET), benchmarking, reserved: never public.
        for no in ["192.0.2.1", "198.51.100.1", "203.0.113.1", "2001:db8::1", "198.18.0.1", "240.0.0.1"] {
            assert!(t.check(no.parse().unwrap()).unwrap_err().contains("never a webhook target"), "{no}");
        }
        for no in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "ff02::1"] {
            assert!(!ok(no), "{no}");
        }
        assert_eq!("public,private,loopback".parse::<WebhookTargets>(), Ok(WebhookTargets::default()));
        assert_eq!("public".parse::<WebhookTargets>(), Ok(WebhookTargets::public_only()));
        assert!("public,intranet".parse::<WebhookTargets>().is_err());
        let strict = WebhookTargets::public_only();
        assert!(strict.check("127.0.0.1".parse().unwrap()).unwrap_err().contains("loopback allows it"));
        assert!(strict.check("10.0.0.1".parse().unwrap()).unwrap_err().contains("private allows it"));
        assert!(strict.check("64:ff9b::a00:1".parse().unwrap()).unwrap_err().contains("private allows it"));
        assert!(strict.check("1.1.1.1".parse().unwrap()).is_ok());
        let open = WebhookTargets { link_local: true, ..WebhookTargets::default() };
        assert!(open.check("169.254.169.254".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn resolver_keeps_allowed_addresses_and_says_why_it_refuses() {
        let name = |s: &str| s.parse::<Name>().unwrap();
        let addrs: Vec<_> =
            Guarded(WebhookTargets::default()).resolve(name("localhost")).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        let err = match Guarded(WebhookTargets::public_only()).resolve(name("localhost")).await {
            Err(e) => e.to_string(),
            Ok(a) => panic!("localhost resolved to {:?} for public-only webhooks", a.collect::<Vec<_>>()),
        };
        assert!(err.starts_with("localhost resolves to") && err.contains("a loopback address"), "{err}");
        assert!(err.contains("--webhook-targets loopback allows it"), "{err}");
    }
}
