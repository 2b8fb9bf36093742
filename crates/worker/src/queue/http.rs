//! The HTTP client under the worker API: hyper on its own for a plain-`http` endpoint (the
//! local one), reqwest for `https` (the platform) or when a proxy is configured.
//!
//! Why two: for every request reqwest turns its `Url` into an `http::Uri` and back, and its
//! redirect layer parses the URL once more even with redirects off. Against runpod-local that
//! was 37 k of the worker's ~200 k instructions per job (callgrind, two requests a job).

use crate::config::Config;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The `User-Agent` of every worker-API request: this runtime's name and version, then the
/// system, shaped like the Python SDK's (`RunPod-Python-SDK/1.12.0 (Linux 6.8; x86_64)
/// Language/Python 3.12`). The `runpod_version` query field carries the SDK version instead.
static AGENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} ({}; {}) Language/Rust",
        crate::version::VERSION,
        std::env::consts::OS,
        std::env::consts::ARCH
    )
});
/// The `Content-Type` of every post: the Python SDK labels its JSON bodies so, and the platform
/// is known to accept that label; the body is JSON text all the same.
pub(crate) const POST_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One request: a GET, or a POST of a JSON body.
pub(crate) struct Request<'a> {
    pub(crate) url: &'a Url,
    /// The JSON body of a POST; `None` for a GET.
    pub(crate) json: Option<Vec<u8>>,
    /// The `Authorization` header value (the API key), if any.
    pub(crate) auth: Option<&'a str>,
    /// An `X-Request-ID` header value, if any.
    pub(crate) request_id: Option<&'a str>,
    /// The limit for the whole exchange, body included.
    pub(crate) timeout: Duration,
}

/// An answer: its status and its whole body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) struct SendError {
    /// The request could not even be built (never worth retrying).
    pub(crate) permanent: bool,
    pub(crate) message: String,
}

/// hyper's pooled HTTP/1 client over plain TCP.
type PlainClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A pooled keep-alive HTTP client, chosen once from the worker's URLs.
#[derive(Clone)]
pub(crate) enum Client {
    /// hyper with a plain TCP connector: every URL is `http` and no proxy is set.
    Plain(Arc<PlainClient>),
    /// reqwest: some URL is `https`, or a proxy variable is set (reqwest honours it).
    Reqwest(reqwest::Client),
}

impl Client {
    /// The client for `cfg`'s worker-API URLs.
    pub(crate) fn new(cfg: &Config) -> Client {
        if all_plain_http(cfg) && !proxy_configured() {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
            let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
            return Client::Plain(Arc::new(client));
        }
        let client = reqwest_builder(cfg)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .expect("a reqwest client with no custom TLS builds");
        Client::Reqwest(client)
    }

    /// Sends `req` and reads the whole answer, within `req.timeout`.
    pub(crate) async fn send(&self, req: Request<'_>) -> Result<Response, SendError> {
        match self {
            Client::Plain(client) => {
                let timeout = req.timeout;
                match tokio::time::timeout(timeout, send_plain(client, req)).await {
                    Ok(r) => r,
                    Err(_) => Err(SendError {
                        permanent: false,
                        message: format!("no answer within {} s", timeout.as_secs_f32()),
                    }),
                }
            }
            Client::Reqwest(client) => send_reqwest(client, req)
                .await
                .map_err(|e| SendError { permanent: e.is_builder(), message: error_chain(&e) }),
        }
    }
}

async fn send_plain(client: &PlainClient, req: Request<'_>) -> Result<Response, SendError> {
    let bad = |e: &dyn std::fmt::Display| SendError { permanent: true, message: format!("bad request: {e}") };
    let uri: hyper::Uri = req.url.as_str().parse().map_err(|e| bad(&e))?;
    let mut builder = hyper::Request::builder().uri(uri).header(USER_AGENT, AGENT.as_str());
    if let Some(key) = req.auth {
        let mut value =
            HeaderValue::from_str(key).map_err(|_| bad(&"the API key is not a valid header value"))?;
        value.set_sensitive(true);
        builder = builder.header(AUTHORIZATION, value);
    }
    if let Some(id) = req.request_id {
        builder = builder.header(HeaderName::from_static("x-request-id"), id);
    }
    let body = match req.json {
        Some(json) => {
            builder = builder.method(hyper::Method::POST).header(CONTENT_TYPE, POST_CONTENT_TYPE);
            Full::new(Bytes::from(json))
        }
        None => Full::new(Bytes::new()),
    };
    let request = builder.body(body).map_err(|e| bad(&e))?;
    let transient = |e: &dyn std::error::Error| SendError { permanent: false, message: error_chain(e) };
    let response = client.request(request).await.map_err(|e| transient(&e))?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(|e| transient(&e))?.to_bytes();
    Ok(Response { status, body })
}

async fn send_reqwest(client: &reqwest::Client, req: Request<'_>) -> Result<Response, reqwest::Error> {
    let mut builder = match req.json {
        Some(json) => {
            client.post(req.url.clone()).header(reqwest::header::CONTENT_TYPE, POST_CONTENT_TYPE).body(json)
        }
        None => client.get(req.url.clone()),
    };
    if let Some(key) = req.auth {
        builder = builder.header(reqwest::header::AUTHORIZATION, key);
    }
    if let Some(id) = req.request_id {
        builder = builder.header("X-Request-ID", id);
    }
    let response = builder.timeout(req.timeout).send().await?;
    let status = response.status().as_u16();
    Ok(Response { status, body: response.bytes().await? })
}

/// A reqwest client builder for the worker API (also the heartbeat's). When no worker URL is
/// `https` (a local endpoint), the system's CA bundle is not loaded: parsing it was 95 % of
/// start-up (callgrind: 25.8 M of 27 M instructions to the first job-take, for two clients).
/// Redirects are not followed: the worker API never sends one, and a redirected post would
/// silently change its target.
pub(crate) fn reqwest_builder(cfg: &Config) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .user_agent(AGENT.as_str())
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true);
    if worker_urls(cfg).iter().any(|u| is_https(u)) {
        builder
    } else {
        builder.tls_certs_only(std::iter::empty())
    }
}

fn worker_urls(cfg: &Config) -> [&str; 4] {
    [&cfg.job_take_url, &cfg.job_done_url, &cfg.job_stream_url, &cfg.ping_url]
}

fn is_https(url: &str) -> bool {
    url.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("https:"))
}

fn all_plain_http(cfg: &Config) -> bool {
    worker_urls(cfg).iter().all(|u| u.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")))
}

/// Whether a proxy variable that applies to `http` URLs is set (then reqwest, which honours
/// it and `NO_PROXY`, carries the requests).
fn proxy_configured() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// An error and its sources, joined with `: ` (hyper's and reqwest's top-level messages alone
/// say little, e.g. "client error (Connect)").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_plain_http_only_when_every_url_is_http() {
        let mut cfg = Config::from_vars([
            ("RUNPOD_WEBHOOK_GET_JOB", "http://127.0.0.1:1/v2/x/job-take/$ID"),
            ("RUNPOD_WEBHOOK_POST_OUTPUT", "HTTP://127.0.0.1:1/v2/x/job-done/$RUNPOD_POD_ID/$ID"),
            ("RUNPOD_WEBHOOK_PING", "http://127.0.0.1:1/v2/x/ping/$RUNPOD_POD_ID"),
            ("RUNPOD_POD_ID", "w"),
        ])
        .unwrap();
        assert!(all_plain_http(&cfg));
        cfg.ping_url = "https://api.runpod.ai/v2/x/ping/w".into();
        assert!(!all_plain_http(&cfg));
        assert!(is_https("HTTPS://a") && !is_https("http://a") && !is_https("h"));
    }

    /// A one-connection HTTP server on 127.0.0.1:0 that records the first request it reads
    /// (head and body) and answers `reply` (or nothing at all when `reply` is `None`).
    async fn one_shot(reply: Option<&'static str>) -> (Url, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/v2/x/job-done/w/a%2Fb?isStream=false",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = sock.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned)
                        })
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if body.len() >= len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            match reply {
                Some(r) => sock.write_all(r.as_bytes()).await.unwrap(),
                None => tokio::time::sleep(Duration::from_secs(5)).await,
            }
            String::from_utf8_lossy(&seen).to_string()
        });
        (url, task)
    }

    fn clients() -> [(&'static str, Client); 2] {
        let cfg = Config::from_vars([
            ("RUNPOD_WEBHOOK_GET_JOB", "http://127.0.0.1:1/v2/x/job-take/$ID"),
            ("RUNPOD_WEBHOOK_POST_OUTPUT", "http://127.0.0.1:1/v2/x/job-done/$RUNPOD_POD_ID/$ID"),
            ("RUNPOD_WEBHOOK_PING", "http://127.0.0.1:1/v2/x/ping/$RUNPOD_POD_ID"),
            ("RUNPOD_POD_ID", "w"),
        ])
        .unwrap();
        let plain = Client::new(&cfg);
        assert!(matches!(plain, Client::Plain(_)) || proxy_configured());
        let reqwest = Client::Reqwest(reqwest_builder(&cfg).build().unwrap());
        [("hyper", plain), ("reqwest", reqwest)]
    }

    /// Both transports put the same request on the wire and read the answer the same way, with
    /// the Python SDK's content type and a `User-Agent` that names runpod-rs.
    #[tokio::test]
    async fn both_transports_send_the_same_post() {
        for (name, client) in clients() {
            let (url, server) = one_shot(Some(
                "HTTP/1.1 409 Conflict\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nlate",
            ))
            .await;
            let req = Request {
                url: &url,
                json: Some(br#"{"output":1}"#.to_vec()),
                auth: Some("key-123"),
                request_id: Some("a%2Fb"),
                timeout: Duration::from_secs(30),
            };
            let resp = client.send(req).await.unwrap_or_else(|e| panic!("{name}: {}", e.message));
            assert_eq!((resp.status, &resp.body[..]), (409, &b"late"[..]), "{name}");
            let seen = server.await.unwrap();
            let lower = seen.to_ascii_lowercase();
            assert!(
                seen.starts_with("POST /v2/x/job-done/w/a%2Fb?isStream=false HTTP/1.1\r\n"),
                "{name}: {seen}"
            );
            let host = format!("host: {}", url.authority());
            let agent = format!(
                "user-agent: runpod-rs/{} ({}; {}) language/rust",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            for header in [
                host.as_str(),
                "authorization: key-123",
                "x-request-id: a%2fb",
                "content-type: application/x-www-form-urlencoded",
                "content-length: 12",
                agent.as_str(),
            ] {
                assert!(lower.contains(&format!("\r\n{header}\r\n")), "{name}: no {header:?} in {seen}");
            }
            assert!(seen.ends_with("\r\n\r\n{\"output\":1}"), "{name}: {seen}");
        }
    }

    /// A GET carries no body, and a peer that never answers runs into the timeout.
    #[tokio::test]
    async fn both_transports_time_out_and_fail_clearly() {
        for (name, client) in clients() {
            let (url, _server) = one_shot(None).await;
            let req = Request {
                url: &url,
                json: None,
                auth: None,
                request_id: None,
                timeout: Duration::from_millis(300),
            };
            let e = client.send(req).await.err().unwrap_or_else(|| panic!("{name}: answered"));
            assert!(!e.permanent, "{name}");
            assert!(e.message.contains("within") || e.message.contains("timed out"), "{name}: {}", e.message);

            // Nothing listens: a clear, retryable connection error.
            let closed = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                Url::parse(&format!("http://{}/v2/x/ping/w", l.local_addr().unwrap())).unwrap()
            };
            let req = Request {
                url: &closed,
                json: None,
                auth: None,
                request_id: None,
                timeout: Duration::from_secs(10),
            };
            let e = client.send(req).await.err().unwrap_or_else(|| panic!("{name}: answered"));
            assert!(!e.permanent, "{name}");
            assert!(e.message.to_ascii_lowercase().contains("refused"), "{name}: {}", e.message);
        }
    }

    /// An API key that cannot be a header value is refused for good, without echoing it.
    #[tokio::test]
    async fn a_bad_api_key_is_a_permanent_error_that_hides_the_key() {
        for (name, client) in clients() {
            let url = Url::parse("http://127.0.0.1:1/v2/x/ping/w").unwrap();
            let req = Request {
                url: &url,
                json: None,
                auth: Some("sekrit\nkey"),
                request_id: None,
                timeout: Duration::from_secs(5),
            };
            let e = client.send(req).await.err().unwrap_or_else(|| panic!("{name}: answered"));
            assert!(e.permanent, "{name}: {}", e.message);
            assert!(!e.message.contains("sekrit"), "{name}: {}", e.message);
        }
    }
}
