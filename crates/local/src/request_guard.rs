//! The guard against a web browser used as the attacker: what local development servers
//! (Jupyter, Vite) check before they serve a request, so that a web page the developer visits
//! cannot drive or read the endpoint on their machine (docs/client-api.md, "Requests from web
//! pages").
//!
//! Three rules, checked on every request before anything else:
//!
//! 1. **Host allow-list** (against DNS rebinding, where a page's own domain name is made to
//!    point at 127.0.0.1): the `Host` must be an IP address (rebinding needs a name),
//!    `localhost` or a name under `.localhost`, `host.containers.internal` or
//!    `host.docker.internal` (how a container names its host), or a name given with
//!    `--allowed-host` (`.example.com` allows its subdomains too, `*` any name). A request
//!    with no `Host` (HTTP/1.0) passes: a browser always sends one.
//! 2. **No cross-origin requests**: an `Origin` that is not this server's own (scheme-less
//!    host and port equal to the `Host`'s), `Origin: null` included, is refused; without an
//!    `Origin`, a request other than `GET`/`HEAD` whose `Sec-Fetch-Site` is `cross-site` or
//!    `same-site` is refused too. Programs (curl, the SDKs, workers) send neither header.
//! 3. **A browser's body is JSON**: a request with a body type a page can send without a
//!    preflight (`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`) is
//!    refused when it comes from a browser (it carries `Origin` or `Sec-Fetch-*`). Other
//!    clients may still send JSON under any type (`curl -d` sends it as form data).
//!
//! A refusal is `403` with a JSON error naming the rule and the flag that changes it.

use crate::openai;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Host names allowed besides IP addresses and `*.localhost`: how a container reaches its host.
const CONTAINER_HOST_NAMES: [&str; 2] = ["host.containers.internal", "host.docker.internal"];

/// The request checks of one server; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct RequestGuard {
    rules: Arc<Rules>,
}

#[derive(Debug)]
struct Rules {
    /// Extra names, lowercased; `.suffix` entries allow the name and its subdomains.
    allowed: Vec<String>,
    /// `*` was given: any `Host` and any `Origin`.
    any: bool,
    /// The command whose flag changes the rules, for error messages.
    command: &'static str,
}

impl RequestGuard {
    /// The guard with `allowed` names added to the built-in ones; `command` is the command line
    /// that takes `--allowed-host` (`runpod-local`, `runpod-local load-balance`).
    pub(crate) fn new(allowed: &[String], command: &'static str) -> Self {
        let allowed: Vec<String> = allowed
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let any = allowed.iter().any(|h| h == "*");
        RequestGuard { rules: Arc::new(Rules { allowed, any, command }) }
    }

    /// `Ok` when the request may be served; otherwise why not.
    pub(crate) fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), String> {
        if self.rules.any {
            return Ok(());
        }
        let cmd = self.rules.command;
        let host = headers.get(header::HOST).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let authority = host.as_deref().map(Authority::parse);
        if let Some(a) = &authority {
            if !self.host_allowed(&a.host) {
                return Err(format!(
                    "Host '{}' is not allowed (DNS-rebinding guard: only IP addresses, localhost and \
                     --allowed-host names are served); to serve it, start {cmd} with --allowed-host {}",
                    host.as_deref().unwrap_or_default(),
                    a.host
                ));
            }
        }
        let origin = headers.get(header::ORIGIN).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if let Some(origin) = &origin {
            if !same_origin(origin, authority.as_ref()) {
                return Err(format!(
                    "cross-origin request refused: a page from '{origin}' may not call this server \
                     (its Origin is not this server's '{}'); only the console page on this server \
                     may; start {cmd} with --allowed-host '*' to turn the guard off",
                    host.as_deref().unwrap_or_default()
                ));
            }
        } else if !matches!(*method, Method::GET | Method::HEAD)
            && matches!(fetch_site, Some("cross-site" | "same-site"))
        {
            return Err(format!(
                "cross-site request refused (Sec-Fetch-Site: {}): a web page from another site may \
                 not call this server; start {cmd} with --allowed-host '*' to turn the guard off",
                fetch_site.unwrap_or_default()
            ));
        }
        let from_browser = origin.is_some() || headers.keys().any(|k| k.as_str().starts_with("sec-fetch-"));
        if from_browser {
            if let Some(simple) = simple_body_type(headers) {
                return Err(format!(
                    "a body sent by a web page must be JSON (Content-Type: application/json), not \
                     '{simple}': form and text bodies are how another site's page posts without \
                     asking; start {cmd} with --allowed-host '*' to turn the guard off"
                ));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        if host.parse::<Ipv4Addr>().is_ok()
            || host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<Ipv6Addr>().is_ok())
            || host == "localhost"
            || host.ends_with(".localhost")
            || CONTAINER_HOST_NAMES.contains(&host)
        {
            return true;
        }
        self.rules.allowed.iter().any(|a| match a.strip_prefix('.') {
            Some(domain) => {
                host == domain || host.strip_suffix(a.as_str()).is_some_and(|sub| !sub.is_empty())
            }
            None => host == a,
        })
    }
}

/// A `Host` value split into its lowercased name (IPv6 in brackets) and port, if any.
struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    fn parse(value: &str) -> Authority {
        let value = value.trim();
        let (host, port) = match value.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
            // `[::1]:8000`, `[::1]`
            Some((ip, after)) => (format!("[{ip}]"), after.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => match value.rsplit_once(':') {
                Some((name, port)) => (name.to_owned(), port.parse().ok()),
                None => (value.to_owned(), None),
            },
        };
        Authority { host: host.trim_end_matches('.').to_ascii_lowercase(), port }
    }
}

/// Whether `origin` (`http://host:port`) is this server, reached through `host`. A `Host`
/// without a port matches any port (a proxy in front may use the scheme's default).
fn same_origin(origin: &str, host: Option<&Authority>) -> bool {
    let Some(host) = host else { return false };
    let Ok(url) = url::Url::parse(origin) else { return false };
    if !matches!(url.scheme(), "http" | "https") {
        return false;
    }
    let Some(name) = url.host_str() else { return false };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == host.host && host.port.is_none_or(|p| url.port_or_known_default() == Some(p))
}

/// The request's body type when a page can send it without a CORS preflight.
fn simple_body_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let essence = String::from_utf8_lossy(value.as_bytes());
    let essence = essence.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    matches!(essence.as_str(), "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain")
        .then_some(essence)
}

/// The middleware: the request goes on, or gets `403` (in OpenAI's error shape on the OpenAI
/// routes).
pub(crate) async fn guard(State(g): State<RequestGuard>, req: Request, next: Next) -> Response {
    match g.check(req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(message) => {
            tracing::warn!("refused {} {}: {message}", req.method(), req.uri().path());
            if openai::is_openai_path(req.uri().path()) {
                let body = serde_json::json!({"error": {
                    "message": message, "type": "invalid_request_error", "param": null, "code": "forbidden",
                }});
                (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
            } else {
                (StatusCode::FORBIDDEN, axum::Json(runpod_protocol::ErrorBody { error: message }))
                    .into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, headers: &[(&str, &str)], allowed: &[&str]) -> Result<(), String> {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        RequestGuard::new(&allowed, "runpod-local").check(&method, &map)
    }

    #[test]
    fn hosts() {
        for ok in [
            "127.0.0.1:8000",
            "localhost:8000",
            "LOCALHOST.",
            "a.localhost",
            "[::1]:80",
            "[::1]",
            "10.0.0.7",
            "host.containers.internal:9",
            "0.0.0.0:8000",
        ] {
            assert!(check(Method::GET, &[("host", ok)], &[]).is_ok(), "{ok}");
        }
        for bad in ["evil.example:8000", "localhost.evil.example", "x", "127.0.0.1.nip.io:8000", "[evil]:80"]
        {
            let e = check(Method::GET, &[("host", bad)], &[]).unwrap_err();
            assert!(e.contains("--allowed-host"), "{e}");
        }
        assert!(check(Method::GET, &[("host", "box.lan:8000")], &["box.lan"]).is_ok());
        assert!(check(Method::GET, &[("host", "a.dev.lan")], &[".dev.lan"]).is_ok());
        assert!(check(Method::GET, &[("host", "dev.lan")], &[".dev.lan"]).is_ok());
        assert!(check(Method::GET, &[("host", "xdev.lan")], &[".dev.lan"]).is_err());
        assert!(check(Method::GET, &[("host", "any.thing")], &["*"]).is_ok());
        assert!(check(Method::GET, &[], &[]).is_ok());
    }

    #[test]
    fn origins_and_bodies() {
        let h = ("host", "127.0.0.1:8000");
        assert!(check(Method::POST, &[h, ("origin", "http://127.0.0.1:8000")], &[]).is_ok());
        assert!(check(Method::POST, &[h, ("origin", "http://127.0.0.1:5173")], &[]).is_err());
        assert!(check(Method::GET, &[h, ("origin", "https://evil.example")], &[]).is_err());
        assert!(check(Method::POST, &[h, ("origin", "null")], &[]).is_err());
        assert!(check(Method::POST, &[h, ("sec-fetch-site", "cross-site")], &[]).is_err());
        assert!(check(Method::GET, &[h, ("sec-fetch-site", "cross-site")], &[]).is_ok());
        let same = ("origin", "http://127.0.0.1:8000");
        assert!(check(Method::POST, &[h, same, ("content-type", "text/plain;charset=UTF-8")], &[]).is_err());
        assert!(check(Method::POST, &[h, same, ("content-type", "application/json")], &[]).is_ok());
        // curl -d: form type, no browser headers.
        assert!(check(Method::POST, &[h, ("content-type", "application/x-www-form-urlencoded")], &[]).is_ok());
        // A proxy's Host without a port matches the page's https origin.
        assert!(
            check(Method::POST, &[("host", "dev.lan"), ("origin", "https://dev.lan")], &["dev.lan"]).is_ok()
        );
    }
}
