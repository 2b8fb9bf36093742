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
//! The default allows publicly routable addresses only. A configuration's own policy
//! ([`StorageConfig::with_endpoint_policy`](crate::StorageConfig::with_endpoint_policy)), else
//! `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS` read when its client is built, widens it: `private` adds
//! private networks (RFC 1918, CGNAT, IPv6 unique-local: a MinIO on the LAN), `true` allows any
//! address (local development and tests, where the S3 server is on 127.0.0.1). The addresses
//! are classified by `runpod_net`, the one classifier of runpod-rs (webhooks and downloads use
//! it too); this module holds only the S3 client's decision over the classes.

use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use runpod_net::{AddressClass, AddressPolicy, GuardedResolver, MixedAnswer};

/// `private` lets the S3 client reach private networks as well as public addresses; `true`,
/// `1`, `yes` or `any` lets it reach any address (loopback and link-local included).
pub const ENV_ALLOW_PRIVATE_S3_ENDPOINTS: &str = "RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS";

/// Which addresses an S3 endpoint may resolve to (classes of `runpod_net::classify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EndpointPolicy {
    /// Publicly routable addresses only (the default).
    #[default]
    Public,
    /// Public addresses and private networks: `10/8`, `172.16/12`, `192.168/16`, `100.64/10`
    /// (CGNAT), `fc00::/7`, and the IPv4-mapped, NAT64 and 6to4 forms of those. Never
    /// loopback, link-local, cloud metadata (`fd00:ec2::254` and `100.100.100.200` included),
    /// unspecified, multicast, documentation or reserved addresses.
    Private,
    /// Any address.
    Any,
}

impl AddressPolicy for EndpointPolicy {
    fn allows(&self, class: AddressClass) -> bool {
        match self {
            EndpointPolicy::Public => class == AddressClass::Public,
            EndpointPolicy::Private => matches!(
                class,
                AddressClass::Public | AddressClass::Private | AddressClass::SharedAddressSpace
            ),
            EndpointPolicy::Any => true,
        }
    }
}

impl EndpointPolicy {
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
    /// [`Public`](Self::Public), with a warning. A [`StorageConfig`](crate::StorageConfig)
    /// without a policy of its own takes this one when its client is built.
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

    /// The guarded resolver of this policy: a name with one refused address is refused whole.
    pub(crate) fn resolver(self) -> GuardedResolver<EndpointPolicy> {
        GuardedResolver::new(self, MixedAnswer::RefuseAll)
    }
}

/// The S3 client's resolver: `runpod_net`'s guarded resolver behind the SDK's DNS trait.
#[derive(Debug, Clone)]
struct SdkResolver(GuardedResolver<EndpointPolicy>);

impl ResolveDns for SdkResolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        DnsFuture::new(async move { self.0.resolve(name).await.map_err(ResolveDnsError::new) })
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
            .build_with_resolver(SdkResolver(policy.resolver())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_allow_what_they_say() {
        use AddressClass::*;
        let cases = [
            // class, Public, Private, Any
            (Public, true, true, true),
            (Private, false, true, true),
            (SharedAddressSpace, false, true, true),
            (Loopback, false, false, true),
            (LinkLocal, false, false, true),
            (Metadata, false, false, true),
            (Documentation, false, false, true),
            (Benchmarking, false, false, true),
            (Multicast, false, false, true),
            (Broadcast, false, false, true),
            (Unspecified, false, false, true),
            (Reserved, false, false, true),
        ];
        assert_eq!(cases.len(), AddressClass::ALL.len());
        for (class, public, private, any) in cases {
            assert_eq!(EndpointPolicy::Public.allows(class), public, "{class:?} Public");
            assert_eq!(EndpointPolicy::Private.allows(class), private, "{class:?} Private");
            assert_eq!(EndpointPolicy::Any.allows(class), any, "{class:?} Any");
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
        let check = |u: &str, p: EndpointPolicy| p.resolver().check_url(&url::Url::parse(u).unwrap()).is_ok();
        assert!(!check("http://127.0.0.1:8333", EndpointPolicy::Public));
        assert!(!check("http://2130706433/", EndpointPolicy::Private)); // 127.0.0.1 in decimal
        assert!(!check("http://[::ffff:169.254.169.254]/", EndpointPolicy::Private));
        assert!(!check("http://[64:ff9b::a9fe:a9fe]/", EndpointPolicy::Private)); // NAT64 metadata
        assert!(!check("http://[fd00:ec2::254]/", EndpointPolicy::Private)); // metadata, not a LAN host
        assert!(check("http://10.0.0.5:9000", EndpointPolicy::Private));
        assert!(check("http://127.0.0.1:8333", EndpointPolicy::Any));
        assert!(check("http://localhost:8333", EndpointPolicy::Public));
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_loopback_addresses() {
        let err = SdkResolver(EndpointPolicy::Private.resolver()).resolve_dns("localhost").await.unwrap_err();
        let refused = runpod_net::find_refused(&err).expect("a refusal in the chain");
        assert_eq!(refused.class, AddressClass::Loopback);
        assert!(refused.to_string().starts_with("localhost resolves to"), "{refused}");
        let ok = SdkResolver(EndpointPolicy::Any.resolver()).resolve_dns("localhost").await.unwrap();
        assert!(!ok.is_empty() && ok.iter().all(|ip| ip.is_loopback()));
    }
}
