//! One network policy for runpod-rs: which addresses a connection made on someone else's
//! say-so (a job's webhook, its `s3Config` endpoint, its input URLs) may reach.
//!
//! - [`classify`] says what kind of address an IP is ([`AddressClass`]: public, loopback,
//!   private, shared, link-local, cloud metadata, documentation, benchmarking, multicast,
//!   broadcast, unspecified, reserved). IPv6 forms that carry an IPv4 address (IPv4-mapped,
//!   IPv4-compatible, NAT64, 6to4) are judged by that address.
//! - [`GuardedResolver`] looks a name up once, classifies every address, and returns only the
//!   addresses its [`AddressPolicy`] allows; the HTTP client connects to exactly those, so there
//!   is no second lookup between check and connect (DNS rebinding). With the `reqwest` feature
//!   it is a `reqwest` resolver.
//!
//! Each user keeps its own policy over the classes: runpod-local's webhooks allow loopback and
//! private networks by default (a receiver on the developer's machine is the common case);
//! runpod-s3's endpoints and downloads allow public addresses only by default.
//!
//! ```
//! use runpod_net::{classify, AddressClass, GuardedResolver, MixedAnswer};
//!
//! assert_eq!(classify("64:ff9b::a9fe:a9fe".parse().unwrap()), AddressClass::Metadata);
//! let public_only = GuardedResolver::new(|c| c == AddressClass::Public, MixedAnswer::RefuseAll);
//! let url = url::Url::parse("http://[::ffff:127.0.0.1]:8080/").unwrap();
//! assert_eq!(public_only.check_url(&url).unwrap_err().class, AddressClass::Loopback);
//! ```

#![forbid(unsafe_code)]

mod class;
mod resolver;

pub use class::{classify, embedded_ipv4, AddressClass};
pub use resolver::{
    find_refused, url_ip, AddressPolicy, GuardedResolver, MixedAnswer, Refused, ResolveError,
};
