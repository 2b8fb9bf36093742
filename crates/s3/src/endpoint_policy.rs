//! Which addresses the S3 client may connect to, and the DNS resolver that enforces it.
//!
//! A job's `s3Config.endpointUrl` comes from whoever sends the job; unchecked, it would let them
//! point the worker's signed requests at cloud metadata (`169.254.169.254`), the worker's own
//! loopback, or hosts of the private network the worker runs in. So the endpoint's address is
//! checked where the connection is made: an IP-literal host when the client is built, a name by
//! the client's resolver, which hands the connector only addresses it has checked (no second
//! lookup, so no DNS rebinding between check and use). The SDK follows no redirects, so the
//! endpoint is the only host the client talks to; a guarded client ignores `HTTP_PROXY` and
//! friends, since a proxy would make the connection on the client's behalf.
//!
//! The default allows publicly routable addresses only. `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS`
//! (or [`EndpointPolicy::set_default`], or [`StorageConfig::with_endpoint_policy`](crate::StorageConfig::with_endpoint_policy))
//! widens it: `private` adds private networks (RFC 1918, CGNAT, IPv6 unique-local: a MinIO on
//! the LAN), `true` allows any address (local development and tests, where the S3 server is on
//! 127.0.0.1).

use crate::download::is_public;
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU8, Ordering};

/// `private` lets the S3 client reach private networks as well as public addresses; `true`,
/// `1`, `yes` or `any` lets it reach any address (loopback and link-local included).
pub const ENV_ALLOW_PRIVATE_S3_ENDPOINTS: &str = "RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS";

/// Which addresses an S3 endpoint may resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EndpointPolicy {
    /// Publicly routable addresses only (the default; see [`is_public`]).
    #[default]
    Public,
    /// Public addresses and private networks: `10/8`, `172.16/12`, `192.168/16`, `100.64/10`
    /// (CGNAT), `fc00::/7` (and their IPv4-mapped forms). Never loopback, link-local (cloud
    /// metadata), unspecified, multicast or reserved addresses.
    Private,
    /// Any address.
    Any,
}

/// The process-wide default set with [`EndpointPolicy::set_default`] (0: none, read the env).
static DEFAULT: AtomicU8 = AtomicU8::new(0);

impl EndpointPolicy {
    /// Whether a connection to `ip` is allowed.
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            EndpointPolicy::Public => is_public(ip),
            EndpointPolicy::Private => is_public(ip) || is_private_network(ip),
            EndpointPolicy::Any => true,
        }
    }

    /// The policy a value of `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS` names: unset, empty, `false`,
    /// `0`, `no` are [`Public`](Self::Public); `private` is [`Private`](Self::Private); `true`,
    /// `1`, `yes`, `any` are [`Any`](Self::Any). Anything else is `None`.
    pub fn from_value(value: Option<&str>) -> Option<Self> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "false" | "0" | "no") => Some(EndpointPolicy::Public),
            Some("private") => Some(EndpointPolicy::Private),
            Some("true" | "1" | "yes" | "any") => Some(EndpointPolicy::Any),
            Some(_) => None,
        }
    }

    /// The policy `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS` names; an unknown value is
    /// [`Public`](Self::Public), with a warning.
    pub fn from_env() -> Self {
        let raw = std::env::var(ENV_ALLOW_PRIVATE_S3_ENDPOINTS).ok();
        Self::from_value(raw.as_deref()).unwrap_or_else(|| {
            tracing::warn!(
                "{ENV_ALLOW_PRIVATE_S3_ENDPOINTS}={raw:?} is not false, private or true; allowing public \
                 addresses only"
            );
            EndpointPolicy::Public
        })
    }

    /// Sets the policy of every [`StorageConfig`](crate::StorageConfig) in this process that has
    /// none of its own, instead of `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS` (tests use it; so can a
    /// program that configures itself in code).
    pub fn set_default(policy: EndpointPolicy) {
        DEFAULT.store(policy as u8 + 1, Ordering::Relaxed);
    }

    /// The policy of a configuration without its own: the one [`set_default`](Self::set_default)
    /// set, else [`from_env`](Self::from_env).
    pub fn current_default() -> Self {
        match DEFAULT.load(Ordering::Relaxed) {
            1 => EndpointPolicy::Public,
            2 => EndpointPolicy::Private,
            3 => EndpointPolicy::Any,
            _ => Self::from_env(),
        }
    }

    /// The setting that would allow what this policy refuses, for error messages.
    pub(crate) fn remedy(self) -> &'static str {
        match self {
            EndpointPolicy::Public => {
                "set RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS=private to allow private networks, =true to allow any \
                 address"
            }
            EndpointPolicy::Private | EndpointPolicy::Any => {
                "set RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS=true to allow any address"
            }
        }
    }
}

/// Private-network addresses: RFC 1918, shared address space (CGNAT), IPv6 unique-local, and
/// IPv4-mapped forms of those.
fn is_private_network(ip: IpAddr) -> bool {
    let v4 = |ip: Ipv4Addr| {
        let [a, b, ..] = ip.octets();
        a == 10
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && b == 168)
            || (a == 100 && (64..128).contains(&b))
    };
    match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => v4(mapped),
            None => (ip.segments()[0] & 0xfe00) == 0xfc00,
        },
    }
}

/// Why the policy refused an endpoint; found in the SDK's error chain to report it as
/// [`StorageError::BlockedEndpoint`](crate::StorageError::BlockedEndpoint).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub(crate) struct BlockedEndpoint {
    pub(crate) reason: String,
    pub(crate) remedy: &'static str,
}

/// The check of an endpoint URL whose host is an IP literal (the connector does not resolve
/// those, so the resolver never sees them). Names pass here and are checked when resolved.
pub(crate) fn check_literal_host(url: &url::Url, policy: EndpointPolicy) -> Result<(), BlockedEndpoint> {
    let ip: IpAddr = match url.host() {
        Some(url::Host::Ipv4(v4)) => v4.into(),
        Some(url::Host::Ipv6(v6)) => v6.into(),
        _ => return Ok(()),
    };
    if policy.allows(ip) {
        return Ok(());
    }
    Err(BlockedEndpoint { reason: format!("{ip} is not an allowed address"), remedy: policy.remedy() })
}

/// A resolver that fails a lookup unless the policy allows every address found (a name with
/// one allowed and one refused address is treated as hostile).
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    policy: EndpointPolicy,
}

impl ResolveDns for GuardedResolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        let policy = self.policy;
        DnsFuture::new(async move {
            let addrs: Vec<IpAddr> = tokio::net::lookup_host((name, 0))
                .await
                .map_err(ResolveDnsError::new)?
                .map(|a| a.ip())
                .collect();
            if addrs.is_empty() {
                return Err(ResolveDnsError::new(format!("{name} resolves to no address")));
            }
            if let Some(bad) = addrs.iter().find(|ip| !policy.allows(**ip)) {
                return Err(ResolveDnsError::new(BlockedEndpoint {
                    reason: format!("{name} resolves to {bad}, not an allowed address"),
                    remedy: policy.remedy(),
                }));
            }
            Ok(addrs)
        })
    }
}

/// The HTTP client of an S3 client under `policy`: `None` for [`EndpointPolicy::Any`] (the
/// SDK's default client), else the SDK's default TLS setup with the guarded resolver and no
/// proxy.
pub(crate) fn http_client(policy: EndpointPolicy) -> Option<SharedHttpClient> {
    if policy == EndpointPolicy::Any {
        return None;
    }
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_with_resolver(GuardedResolver { policy }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_allow_what_they_say() {
        let cases = [
            // address, Public, Private, Any
            ("8.8.8.8", true, true, true),
            ("2606:4700:4700::1111", true, true, true),
            ("10.1.2.3", false, true, true),
            ("172.20.0.1", false, true, true),
            ("192.168.1.10", false, true, true),
            ("100.64.0.1", false, true, true),
            ("fd12:3456::1", false, true, true),
            ("::ffff:10.0.0.1", false, true, true),
            ("127.0.0.1", false, false, true),
            ("::1", false, false, true),
            ("::ffff:127.0.0.1", false, false, true),
            ("169.254.169.254", false, false, true),
            ("fe80::1", false, false, true),
            ("0.0.0.0", false, false, true),
            ("224.0.0.1", false, false, true),
        ];
        for (ip, public, private, any) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(EndpointPolicy::Public.allows(ip), public, "{ip} Public");
            assert_eq!(EndpointPolicy::Private.allows(ip), private, "{ip} Private");
            assert_eq!(EndpointPolicy::Any.allows(ip), any, "{ip} Any");
        }
    }

    #[test]
    fn values_of_the_variable() {
        for (v, want) in [
            (None, Some(EndpointPolicy::Public)),
            (Some(""), Some(EndpointPolicy::Public)),
            (Some("false"), Some(EndpointPolicy::Public)),
            (Some(" Private "), Some(EndpointPolicy::Private)),
            (Some("TRUE"), Some(EndpointPolicy::Any)),
            (Some("1"), Some(EndpointPolicy::Any)),
            (Some("sure"), None),
        ] {
            assert_eq!(EndpointPolicy::from_value(v), want, "{v:?}");
        }
    }

    #[test]
    fn literal_hosts_are_checked_names_are_left_to_the_resolver() {
        let check = |u: &str, p| check_literal_host(&url::Url::parse(u).unwrap(), p).is_ok();
        assert!(!check("http://127.0.0.1:8333", EndpointPolicy::Public));
        assert!(!check("http://2130706433/", EndpointPolicy::Private)); // 127.0.0.1 in decimal
        assert!(!check("http://[::ffff:169.254.169.254]/", EndpointPolicy::Private));
        assert!(check("http://10.0.0.5:9000", EndpointPolicy::Private));
        assert!(check("http://127.0.0.1:8333", EndpointPolicy::Any));
        assert!(check("http://localhost:8333", EndpointPolicy::Public));
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_loopback_addresses() {
        let err =
            GuardedResolver { policy: EndpointPolicy::Private }.resolve_dns("localhost").await.unwrap_err();
        let blocked = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<BlockedEndpoint>());
        assert!(blocked.is_some_and(|b| b.reason.contains("localhost resolves to")), "{err:?}");
        let ok = GuardedResolver { policy: EndpointPolicy::Any }.resolve_dns("localhost").await.unwrap();
        assert!(!ok.is_empty() && ok.iter().all(|ip| ip.is_loopback()));
    }
}
