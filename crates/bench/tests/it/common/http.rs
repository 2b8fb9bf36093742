//! A tiny HTTP/1.1 server for the tests' own parts (a faulty proxy, a webhook receiver, a fake
//! job-take server), on a loopback port. A handler may answer, or drop the connection unanswered.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Response};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A request as a handler sees it.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub uri: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// What a handler does with a request.
pub(crate) enum Reply {
    /// Answer with this status, content type and body.
    Answer(u16, &'static str, Bytes),
    /// Answer with this 3xx status and `Location`, no body.
    Redirect(u16, &'static str),
    /// Close the connection without an answer.
    Drop,
}

impl Reply {
    /// A JSON answer.
    pub(crate) fn json(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply::Answer(status, "application/json", body.into())
    }
}

/// Serves `handler` on a free loopback port until the test process ends; returns the address.
pub(crate) async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let uri = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                        match handler(Req { method: parts.method, uri, headers: parts.headers, body }).await {
                            Reply::Answer(status, ctype, body) => Ok(Response::builder()
                                .status(status)
                                .header("content-type", ctype)
                                .body(Full::new(body))
                                .unwrap()),
                            Reply::Redirect(status, location) => Ok(Response::builder()
                                .status(status)
                                .header("location", location)
                                .body(Full::new(Bytes::new()))
                                .unwrap()),
                            Reply::Drop => Err(std::io::Error::other("dropped on purpose")),
                        }
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(sock), service).await;
            });
        }
    });
    addr
}

/// Forwards `req` to `upstream` (`http://host:port`) and returns the upstream's answer.
pub(crate) async fn forward(client: &reqwest::Client, upstream: &str, req: &Req) -> Reply {
    let mut r = client.request(req.method.clone(), format!("{upstream}{}", req.uri)).body(req.body.clone());
    for (k, v) in &req.headers {
        if k != "host" && k != "content-length" && k != "connection" {
            r = r.header(k, v);
        }
    }
    match r.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let json = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("json"));
            let body = resp.bytes().await.unwrap_or_default();
            Reply::Answer(status, if json { "application/json" } else { "text/plain" }, body)
        }
        Err(_) => Reply::Drop,
    }
}
