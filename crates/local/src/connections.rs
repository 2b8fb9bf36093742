//! Serving connections: the accept loop, the connection cap, the header and idle timeout, the
//! HTTP layer's own error answers as JSON, and the graceful close on shutdown.
//!
//! A connection that never finishes a request holds a socket and a file descriptor. Each one is
//! bounded three ways: hyper's header timeout closes a connection that has not sent a whole
//! request head in time (which also covers a connection idle between requests); the body
//! timeout (`request::read_body`) answers `408` to a body that does not arrive; and at the
//! connection cap a new connection closes the oldest idle one. A request in progress, a long
//! poll included, is never idle. Accept errors (out of file descriptors) free an idle
//! connection and back off instead of spinning, and are logged at most every 10 s.

use crate::config::Config;
use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// File descriptors kept free of connections: webhooks, the data file, the process's own.
const RESERVED_FDS: u64 = 128;

/// The connection cap when none is configured: the open-files limit less [`RESERVED_FDS`],
/// between 64 and 16384.
#[allow(unsafe_code, reason = "getrlimit has no safe wrapper in std or libc")]
pub(crate) fn default_max() -> usize {
    // SAFETY: getrlimit only writes the struct it is given.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `lim` is a valid, writable rlimit.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur as u64
    } else {
        1024
    };
    soft.saturating_sub(RESERVED_FDS).clamp(64, 16_384) as usize
}

/// What [`serve_with`] needs to know: the endpoint's settings, or the load balancer's.
pub(crate) struct Limits {
    /// `None`: [`default_max`].
    pub max_connections: Option<usize>,
    pub header_timeout: Duration,
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
    pub shutdown: CancellationToken,
}

/// [`serve_with`] under the endpoint's settings.
pub(crate) async fn serve(listener: TcpListener, app: Router, cfg: Arc<Config>, shutdown: CancellationToken) {
    let limits = Limits {
        max_connections: cfg.max_connections,
        header_timeout: cfg.header_timeout,
        shutdown_grace: cfg.shutdown_grace,
        shutdown,
    };
    serve_with(listener, app, limits).await
}

/// Accepts and serves connections on `listener` until shutdown; then closes them gracefully
/// (requests in flight finish) and returns once they are all closed.
pub(crate) async fn serve_with(listener: TcpListener, app: Router, limits: Limits) {
    let sh = Arc::new(limits);
    let max = sh.max_connections.unwrap_or_else(default_max);
    tracing::debug!(max_connections = max, "serving");
    let conns = Arc::new(Registry::default());
    let tracker = TaskTracker::new();
    let mut errors = AcceptErrors::default();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = sh.shutdown.cancelled() => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => {
                errors.reset();
                tcp
            }
            // The peer went away before it was accepted: nothing to do.
            Err(e)
                if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) =>
            {
                continue
            }
            Err(e) => {
                // Most likely out of file descriptors: closing an idle connection frees one.
                let freed = conns.close_oldest_idle();
                let pause = errors.note(&e, freed);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => continue,
                    _ = sh.shutdown.cancelled() => break,
                }
            }
        };
        if conns.len() >= max && !conns.close_oldest_idle() {
            errors.refused(max);
            refuse(tcp, max);
            continue;
        }
        let (id, conn) = conns.add();
        let (app, sh, conns) = (app.clone(), sh.clone(), conns.clone());
        tracker.spawn(async move {
            serve_one(tcp, app, &sh, &conn).await;
            conns.remove(id);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Serves one connection until it closes, is closed to make room, or the server shuts down.
async fn serve_one(tcp: TcpStream, app: Router, sh: &Limits, conn: &ConnState) {
    // Answers leave at once: no Nagle delay behind a previous small write.
    let _ = tcp.set_nodelay(true);
    let service = Counted { app, busy: conn.busy.clone() };
    let http = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(sh.header_timeout)
        .serve_connection(TokioIo::new(JsonErrors::new(tcp)), service);
    tokio::pin!(http);
    tokio::select! {
        _ = http.as_mut() => {}
        _ = conn.close.cancelled() => {}
        _ = sh.shutdown.cancelled() => {
            // Requests in flight finish (long polls answer at once on shutdown); idle
            // connections close now.
            http.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(sh.shutdown_grace, http).await;
        }
    }
}

/// Answers `503` (best effort, without reading the request) and closes the connection.
fn refuse(tcp: TcpStream, max: usize) {
    let body = format!(r#"{{"error":"too many connections: {max} are open and none is idle; retry later"}}"#);
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.try_write(answer.as_bytes());
}

/// One open connection: how many of its requests are in progress, and how to close it.
struct ConnState {
    opened: Instant,
    busy: Arc<AtomicUsize>,
    close: CancellationToken,
}

/// The open connections.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next: AtomicU64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn add(&self) -> (u64, Arc<ConnState>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(ConnState {
            opened: Instant::now(),
            busy: Arc::default(),
            close: CancellationToken::new(),
        });
        self.lock().insert(id, conn.clone());
        (id, conn)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the connection open longest with no request in progress; false when every
    /// connection is busy.
    fn close_oldest_idle(&self) -> bool {
        let mut conns = self.lock();
        let oldest = conns
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.opened)
            .map(|(id, _)| *id);
        match oldest.and_then(|id| conns.remove(&id)) {
            Some(conn) => {
                conn.close.cancel();
                true
            }
            None => false,
        }
    }
}

/// Accept failures: a growing pause between retries, and a log line at most every 10 s.
#[derive(Default)]
struct AcceptErrors {
    pause: Duration,
    since_log: u64,
    last_log: Option<Instant>,
}

impl AcceptErrors {
    const LOG_EVERY: Duration = Duration::from_secs(10);

    fn reset(&mut self) {
        self.pause = Duration::ZERO;
    }

    fn due(&mut self) -> bool {
        self.since_log += 1;
        let due = self.last_log.is_none_or(|t| t.elapsed() >= Self::LOG_EVERY);
        if due {
            self.last_log = Some(Instant::now());
        }
        due
    }

    /// Notes a failed accept; returns how long to pause before the next one.
    fn note(&mut self, e: &io::Error, freed_one: bool) -> Duration {
        if self.due() {
            let n = std::mem::take(&mut self.since_log);
            tracing::warn!(
                error = %e,
                failures = n,
                closed_idle = freed_one,
                "accept failed (out of file descriptors?); backing off; see --max-connections and ulimit -n"
            );
        }
        self.pause = (self.pause * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.pause
    }

    fn refused(&mut self, max: usize) {
        if self.due() {
            let n = std::mem::take(&mut self.since_log);
            tracing::warn!(
                max_connections = max,
                refused = n,
                "connection refused with 503: all connections busy"
            );
        }
    }
}

/// The router as a hyper service that counts the connection's requests in progress.
#[derive(Clone)]
struct Counted {
    app: Router,
    busy: Arc<AtomicUsize>,
}

/// One request in progress on a connection.
struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Counted {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.busy.fetch_add(1, Ordering::AcqRel);
        let busy = Busy(self.busy.clone());
        let app = self.app.clone();
        Box::pin(async move {
            let answer = app.oneshot(req.map(Body::new)).await;
            drop(busy);
            answer
        })
    }
}

/// A socket whose body-less `400`, `414` and `431` answers (hyper's own, for requests it cannot
/// parse) get a JSON `{"error"}` body like every other error of the endpoint.
struct JsonErrors<T> {
    inner: T,
    /// A rewritten answer not yet fully written, and how much of it is.
    pending: Vec<u8>,
    written: usize,
}

impl<T> JsonErrors<T> {
    fn new(inner: T) -> Self {
        JsonErrors { inner, pending: Vec::new(), written: 0 }
    }
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

/// hyper's answer head for a request it could not parse (`HTTP/1.1 4xx ...`, `content-length:
/// 0`, nothing after the head) with a JSON body instead; `None` for anything else.
fn with_json_body(head: &[u8]) -> Option<Vec<u8>> {
    let message = match head.get(..13)? {
        b"HTTP/1.1 400 " => "malformed HTTP request",
        b"HTTP/1.1 414 " => "request URI too long",
        b"HTTP/1.1 431 " => "request headers too large (or too many)",
        _ => return None,
    };
    let text = std::str::from_utf8(head).ok()?;
    let head_only = text.find("\r\n\r\n").is_some_and(|end| end + 4 == text.len());
    let empty = "\r\ncontent-length: 0\r\n";
    if !head_only || !text.contains(empty) {
        return None;
    }
    let body = format!(r#"{{"error":"{message}"}}"#);
    let headers = format!("\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len());
    Some(format!("{}{body}", text.replacen(empty, &headers, 1)).into_bytes())
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(answer) = with_json_body(buf) {
            self.pending = answer;
            // Taken whole; what the socket does not take now goes out on the next write,
            // flush or shutdown.
            if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // hyper writes head and body as separate buffers when the socket takes them (no copy of
    // a large body into its write buffer, which would keep that much memory per connection).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if let Some(head) = bufs.iter().find(|b| !b.is_empty()) {
            if head.len() == total {
                if let Some(answer) = with_json_body(head) {
                    self.pending = answer;
                    if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                        return Poll::Ready(Err(e));
                    }
                    return Poll::Ready(Ok(total));
                }
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::with_json_body;

    #[test]
    fn only_hypers_bodyless_errors_are_rewritten() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(with_json_body(head).unwrap()).unwrap();
        assert!(out.ends_with("\r\n\r\n{\"error\":\"request headers too large (or too many)\"}"), "{out}");
        assert!(out.contains("content-type: application/json\r\ncontent-length: 51\r\n"), "{out}");
        // Our own answers have bodies; other statuses are left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 9\r\n\r\n{\"a\": 1}";
        assert!(with_json_body(ours).is_none());
        assert!(with_json_body(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
