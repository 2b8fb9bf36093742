//! The `runpod` binary against servers that misbehave on the wire: an answer that is not a
//! stream answer, a redirect loop, a server that never answers, an unreachable one, a 300 MB
//! answer. Each case checks the exit code the help documents and the message on stderr; the
//! 300 MB case also the child's peak RSS (`wait4`) and how much the server got to send.

#![allow(unsafe_code, reason = "kill and wait4 (for the child's peak RSS) have no safe wrapper in std")]

use crate::common;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use common::{closed_port, ScriptServer, Scripted, KEY};
use serde_json::json;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const MIB: usize = 1024 * 1024;

/// What one `runpod` run did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
    /// Peak resident set size of the process, KiB (from `wait4`).
    max_rss_kib: i64,
}

/// Runs `runpod --endpoint ep1 --base-url URL ARGS` with `key` as `RUNPOD_API_KEY`, killing it
/// after `limit`; waits for it with `wait4` to read its peak RSS.
async fn runpod(base_url: &str, key: Option<&str>, args: &[&str], limit: Duration) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runpod"));
    cmd.args(["--endpoint", "ep1", "--base-url", base_url]).args(args);
    cmd.env_remove("RUNPOD_API_KEY").env_remove("RUNPOD_ENDPOINT_ID").env_remove("RUNPOD_BASE_URL");
    if let Some(k) = key {
        cmd.env("RUNPOD_API_KEY", k);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let args_shown = format!("{args:?}");
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        // Reaped by the wait4 below, which also gives its peak RSS (std's wait does not).
        #[allow(clippy::zombie_processes, reason = "reaped by wait4")]
        let mut child = cmd.spawn().expect("spawn runpod");
        let pid = child.id() as libc::pid_t;
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            out.read_to_string(&mut s).map(|_| s)
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            err.read_to_string(&mut s).map(|_| s)
        });
        let killer = std::thread::spawn(move || {
            std::thread::sleep(limit);
            // SAFETY: plain kill(2); at worst the pid is gone already (ESRCH).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value to be overwritten.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child, which nothing else reaps (`child` is never waited).
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(waited, pid, "wait4 failed");
        let took = started.elapsed();
        drop(killer);
        assert!(libc::WIFEXITED(status), "runpod {args_shown} did not exit (killed after {limit:?}?)");
        let run = Run {
            code: libc::WEXITSTATUS(status),
            stdout: out.join().unwrap().unwrap(),
            stderr: err.join().unwrap().unwrap(),
            took,
            max_rss_kib: usage.ru_maxrss,
        };
        assert!(!run.stdout.contains(KEY) && !run.stderr.contains(KEY), "key leaked: {run:?}");
        run
    })
    .await
    .unwrap()
}

/// A TCP server that accepts connections and never answers; it holds them until dropped.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = l.accept().await {
            held.push(sock);
        }
    });
    (url, task)
}

#[tokio::test]
async fn an_answer_that_is_not_a_stream_answer_exits_12() {
    let s = ScriptServer::start(vec![Scripted::new(200, json!("not a stream answer"))]).await;
    let r = runpod(&s.url, Some(KEY), &["stream", "j1"], Duration::from_secs(60)).await;
    assert_eq!(r.code, 12, "{r:?}");
    assert!(r.stderr.contains("could not decode stream answer"), "{}", r.stderr);
    assert_eq!(r.stdout, "");
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_exits_10() {
    // Every answer is a redirect to the same path: a loop, were it followed.
    let s = ScriptServer::start(vec![
        Scripted::new(302, json!({})).header("location", "/v2/ep1/status/j1?token=SECRET")
    ])
    .await;
    let r = runpod(&s.url, Some(KEY), &["status", "j1"], Duration::from_secs(60)).await;
    assert_eq!(r.code, 10, "{r:?}");
    assert!(r.stderr.contains("302") && r.stderr.contains("redirect to /v2/ep1/status/j1"), "{}", r.stderr);
    assert!(!r.stderr.contains("SECRET"), "{}", r.stderr);
    assert_eq!(s.requests().len(), 1, "the redirect was followed");
}

#[tokio::test]
async fn a_silent_server_is_given_up_on_at_the_time_limit() {
    let (url, _server) = silent_server().await;
    // A plain call with --timeout-ms: exit 11 at the limit, retries and all.
    let r = runpod(&url, Some(KEY), &["status", "j1", "--timeout-ms", "1500"], Duration::from_secs(60)).await;
    assert_eq!(r.code, 11, "{r:?}");
    assert!(r.stderr.contains("no answer within 1.5s"), "{}", r.stderr);
    assert!(r.took >= Duration::from_millis(1400) && r.took < Duration::from_secs(10), "{:?}", r.took);
    // The defaults (60 s for a plain call, 600 s for a wait) are checked in args.rs's tests.
    // A wait whose first poll never comes back: the same, after the grace for a last report.
    let r =
        runpod(&url, Some(KEY), &["status", "j1", "--wait", "--timeout-ms", "1500"], Duration::from_secs(60))
            .await;
    assert_eq!(r.code, 11, "{r:?}");
    assert!(r.took < Duration::from_secs(10), "{:?}", r.took);
}

#[tokio::test]
async fn errors_name_each_cause_once() {
    let port = closed_port().await;
    let r =
        runpod(&format!("http://127.0.0.1:{port}"), Some(KEY), &["health"], Duration::from_secs(60)).await;
    assert_eq!(r.code, 11, "{r:?}");
    assert_eq!(r.stderr.matches("error sending request").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("network error") && r.stderr.contains("refused"), "{}", r.stderr);
}

#[tokio::test]
async fn a_missing_key_says_to_set_the_variable() {
    let s = ScriptServer::start(vec![Scripted::new(200, json!({}))]).await;
    let r = runpod(&s.url, None, &["health"], Duration::from_secs(60)).await;
    assert_eq!(r.code, 7, "{r:?}");
    assert!(r.stderr.contains("no API key: set RUNPOD_API_KEY"), "{}", r.stderr);
    assert!(!r.stderr.contains("pass one"), "{}", r.stderr);
    assert!(s.requests().is_empty());
}

/// A server whose `/status` answers 300 MB, with or without a `Content-Length`, counting the
/// bytes its body handed to the connection.
async fn huge_answer_server(with_length: bool) -> (String, Arc<AtomicUsize>) {
    const SIZE: usize = 300 * 1000 * 1000;
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let app = Router::new().route(
        "/v2/ep1/status/{id}",
        get(move || {
            let counter = counter.clone();
            async move {
                let chunk = bytes::Bytes::from(vec![b' '; MIB]);
                let chunks = (0..SIZE.div_ceil(MIB)).map(move |i| {
                    let len = MIB.min(SIZE - i * MIB);
                    counter.fetch_add(len, Ordering::Relaxed);
                    Ok::<_, std::io::Error>(chunk.slice(..len))
                });
                let mut resp = Response::builder().status(StatusCode::OK);
                if with_length {
                    resp = resp.header(header::CONTENT_LENGTH, SIZE);
                }
                resp.body(Body::from_stream(futures::stream::iter(chunks))).unwrap()
            }
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, sent)
}

#[tokio::test]
async fn a_300_mb_answer_is_refused_at_the_limit() {
    for with_length in [true, false] {
        let (url, sent) = huge_answer_server(with_length).await;
        let r = runpod(&url, Some(KEY), &["status", "j1"], Duration::from_secs(120)).await;
        let sent = sent.load(Ordering::Relaxed);
        eprintln!(
            "MEASURED: 300 MB answer (Content-Length: {with_length}): exit {}, runpod peak RSS {:.1} MiB, \
             server handed over {:.1} MiB, {:?}",
            r.code,
            r.max_rss_kib as f64 / 1024.0,
            sent as f64 / MIB as f64,
            r.took
        );
        assert_eq!(r.code, 12, "{r:?}");
        assert!(r.stderr.contains("answer larger than 67108864 bytes"), "{}", r.stderr);
        assert!(r.max_rss_kib < 160 * 1024, "runpod reached {} KiB", r.max_rss_kib);
        assert!(sent < 100 * MIB, "the server got {sent} bytes out");
    }
}
