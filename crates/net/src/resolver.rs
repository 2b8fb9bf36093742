//! The guarded resolver: looks a name up once, classifies every address found, and hands the
//! connector only the addresses its policy allows. The connector connects to exactly those (no
//! second lookup), so a name cannot resolve to a public address when checked and to a private
//! one when connected (DNS rebinding).

use crate::class::{classify, embedded_ipv4, AddressClass};
use std::fmt;
use std::net::IpAddr;

/// Which address classes a user of the resolver connects to.
pub trait AddressPolicy: Send + Sync + 'static {
    /// Whether a connection to an address of `class` is allowed.
    fn allows(&self, class: AddressClass) -> bool;
}

impl<F: Fn(AddressClass) -> bool + Send + Sync + 'static> AddressPolicy for F {
    fn allows(&self, class: AddressClass) -> bool {
        self(class)
    }
}

/// What the resolver does with a name whose addresses are partly allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixedAnswer {
    /// Refuse the name: one refused address makes the whole answer suspect (S3 endpoints and
    /// downloads, where the name comes from whoever sends the job).
    RefuseAll,
    /// Keep the allowed addresses and connect only to those; refuse when none is allowed
    /// (webhooks: the receiver is the developer's own, and a name with a refused address
    /// among allowed ones still reaches only allowed ones).
    KeepAllowed,
}

/// An address the policy refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    /// The name looked up; `None` when the address was given literally.
    pub host: Option<String>,
    /// The refused address.
    pub ip: IpAddr,
    /// Its class.
    pub class: AddressClass,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(f, "{host} resolves to {}, {}", self.ip, self.class)?,
            None => write!(f, "{} is {}", self.ip, self.class)?,
        }
        if let IpAddr::V6(v6) = self.ip {
            if let Some(v4) = embedded_ipv4(v6) {
                write!(f, " (it carries {v4})")?;
            }
        }
        Ok(())
    }
}

/// Why a guarded lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The system resolver failed.
    #[error("looking up {host}: {source}")]
    Lookup {
        /// The name.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The name has no address.
    #[error("{host} resolves to no address")]
    NoAddress {
        /// The name.
        host: String,
    },
    /// The policy refused an address (with [`MixedAnswer::KeepAllowed`]: every address; this
    /// is the first).
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// The first [`Refused`] in an error's source chain (directly or inside a [`ResolveError`]):
/// how a caller finds the resolver's refusal in the error of the HTTP client that used it.
pub fn find_refused<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        if let Some(ResolveError::Refused(refused)) = e.downcast_ref::<ResolveError>() {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}

/// A DNS resolver that classifies every address and keeps only what its policy allows.
#[derive(Debug, Clone)]
pub struct GuardedResolver<P> {
    policy: P,
    mixed: MixedAnswer,
}

impl<P: AddressPolicy> GuardedResolver<P> {
    /// A resolver under `policy`, treating partly allowed answers as `mixed` says.
    pub fn new(policy: P, mixed: MixedAnswer) -> Self {
        GuardedResolver { policy, mixed }
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// `Err` when the policy refuses a connection to `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        check(&self.policy, None, ip)
    }

    /// `Err` when `url`'s host is an IP address the policy refuses. A connector does not
    /// resolve IP literals, so they never reach [`resolve`](Self::resolve): check them here
    /// before sending. Names pass (they are checked when they resolve).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        match url_ip(url) {
            Some(ip) => self.check(ip),
            None => Ok(()),
        }
    }

    /// Looks `host` up (the system resolver) and returns the addresses to connect to: all of
    /// them when all are allowed; else, by [`MixedAnswer`], the allowed ones or an error.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let found: Vec<IpAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|source| ResolveError::Lookup { host: host.to_owned(), source })?
            .map(|a| a.ip())
            .collect();
        self.filter(host, found)
    }

    /// The resolver's decision over the addresses `host` resolved to.
    fn filter(&self, host: &str, found: Vec<IpAddr>) -> Result<Vec<IpAddr>, ResolveError> {
        let mut first_refused = None;
        let mut allowed = Vec::with_capacity(found.len());
        for ip in found {
            match check(&self.policy, Some(host), ip) {
                Ok(()) => allowed.push(ip),
                Err(refused) if self.mixed == MixedAnswer::RefuseAll => return Err(refused.into()),
                Err(refused) => {
                    first_refused.get_or_insert(refused);
                }
            }
        }
        match (allowed.is_empty(), first_refused) {
            (false, _) => Ok(allowed),
            (true, Some(refused)) => Err(refused.into()),
            (true, None) => Err(ResolveError::NoAddress { host: host.to_owned() }),
        }
    }
}

fn check(policy: &dyn AddressPolicy, host: Option<&str>, ip: IpAddr) -> Result<(), Refused> {
    let class = classify(ip);
    if policy.allows(class) {
        Ok(())
    } else {
        Err(Refused { host: host.map(str::to_owned), ip, class })
    }
}

/// The IP address `url`'s host is, when it is one (any spelling the URL parser accepts:
/// `2130706433`, `127.1`, `[::ffff:127.0.0.1]`).
pub fn url_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(v4.into()),
        url::Host::Ipv6(v6) => Some(v6.into()),
        url::Host::Domain(_) => None,
    }
}

#[cfg(feature = "reqwest")]
impl<P: AddressPolicy + Clone> reqwest::dns::Resolve for GuardedResolver<P> {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let ips = GuardedResolver::resolve(&this, name.as_str()).await?;
            let addrs = ips.into_iter().map(|ip| std::net::SocketAddr::new(ip, 0));
            Ok(Box::new(addrs) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public_only(class: AddressClass) -> bool {
        class == AddressClass::Public
    }

    #[test]
    fn mixed_answers_are_refused_or_filtered() {
        let found: Vec<IpAddr> = vec!["8.8.8.8".parse().unwrap(), "10.0.0.1".parse().unwrap()];
        let strict = GuardedResolver::new(public_only, MixedAnswer::RefuseAll);
        let err = strict.filter("mixed.example", found.clone()).unwrap_err();
        assert_eq!(err.to_string(), "mixed.example resolves to 10.0.0.1, a private-network address");
        let lenient = GuardedResolver::new(public_only, MixedAnswer::KeepAllowed);
        assert_eq!(lenient.filter("mixed.example", found).unwrap(), ["8.8.8.8".parse::<IpAddr>().unwrap()]);
        let err = lenient.filter("inside.example", vec!["10.0.0.1".parse().unwrap()]).unwrap_err();
        assert!(matches!(err, ResolveError::Refused(_)), "{err}");
        let err = lenient.filter("empty.example", vec![]).unwrap_err();
        assert!(matches!(err, ResolveError::NoAddress { .. }), "{err}");
    }

    #[test]
    fn literal_hosts_in_any_spelling() {
        let r = GuardedResolver::new(public_only, MixedAnswer::RefuseAll);
        let check = |u: &str| r.check_url(&url::Url::parse(u).unwrap());
        for refused in [
            "http://127.0.0.1:8333",
            "http://2130706433/",
            "http://127.1/",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert!(check(refused).is_err(), "{refused}");
        }
        let err = check("http://[2002:a9fe:a9fe::]/").unwrap_err();
        assert_eq!(
            err.to_string(),
            "2002:a9fe:a9fe:: is a cloud metadata address (it carries 169.254.169.254)"
        );
        assert!(check("http://8.8.8.8/").is_ok());
        assert!(check("http://localhost:1/").is_ok(), "names are checked when they resolve");
    }

    #[tokio::test]
    async fn resolves_names_and_refuses_what_the_policy_refuses() {
        let strict = GuardedResolver::new(public_only, MixedAnswer::RefuseAll);
        let err = strict.resolve("localhost").await.unwrap_err();
        let refused = find_refused(&err).expect("a refusal");
        assert_eq!((refused.host.as_deref(), refused.class), (Some("localhost"), AddressClass::Loopback));
        let any = GuardedResolver::new(|_| true, MixedAnswer::RefuseAll);
        let ips = any.resolve("localhost").await.unwrap();
        assert!(!ips.is_empty() && ips.iter().all(|ip| ip.is_loopback()), "{ips:?}");
        let err = any.resolve("name.invalid").await.unwrap_err();
        assert!(matches!(err, ResolveError::Lookup { .. }), "{err}");
    }
}
