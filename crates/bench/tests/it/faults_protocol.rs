//! Fault tests: protocol edge cases on the wire. An empty API key is refused at start; broken
//! bodies get 400 (not 413); `policy` and `s3Config` must be JSON objects; the HTTP layer's own
//! 400/414/431 answers carry a JSON error; 429s say when to retry; a worker that lists its jobs
//! in its pings does not make an endpoint with 200,000 queued jobs busy or slow.

use crate::common;

use common::{endpoint, Client, Secrets};
use runpod_local::{LocalEndpoint, RateLimit, RateLimits};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer read off a socket: status, headers (lower-case names) and body.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The `error` message of a JSON body, or panics naming what came instead.
    fn error(&self) -> String {
        let v: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("{} answer without a JSON body: {self:?}", self.status));
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        v["error"].as_str().unwrap_or_else(|| panic!("no error message: {self:?}")).to_string()
    }
}

/// Writes `bytes` on a fresh connection (then half-closes it when `close_write`), and reads the
/// first answer.
async fn raw(addr: std::net::SocketAddr, bytes: &[u8], close_write: bool) -> Raw {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // A write may fail once the server has answered and closed (e.g. a huge head): fine.
    let _ = s.write_all(bytes).await;
    if close_write {
        let _ = s.shutdown().await;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if let Some(r) = parse(&got) {
                return Some(r);
            }
        }
        parse(&got)
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("no answer within 20 s")
        .unwrap_or_else(|| panic!("not an HTTP answer: {:?}", String::from_utf8_lossy(&got)))
}

/// One complete answer at the start of `b` (Content-Length framed), if there is one yet.
fn parse(b: &[u8]) -> Option<Raw> {
    let text = String::from_utf8_lossy(b);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize =
        headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
    (rest.len() >= len).then(|| Raw { status, headers, body: rest[..len].to_string() })
}

#[tokio::test]
async fn an_empty_api_key_is_refused_at_start() {
    let err = LocalEndpoint::builder().api_key("").bind("127.0.0.1:0").await.unwrap_err();
    assert!(err.to_string().contains("API key"), "{err}");
    // And a key that is set never matches an empty or missing header.
    let secrets = Secrets::new();
    let ep = endpoint(&secrets).bind("127.0.0.1:0").await.unwrap();
    for auth in ["", "Bearer ", "Bearer", " "] {
        let req =
            format!("GET /v2/local/health HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n\r\n");
        let r = raw(ep.local_addr(), req.as_bytes(), false).await;
        assert_eq!(r.status, 401, "Authorization {auth:?}: {r:?}");
    }
}

#[tokio::test]
async fn broken_bodies_get_400_not_413() {
    let secrets = Secrets::new();
    let ep = endpoint(&secrets).bind("127.0.0.1:0").await.unwrap();
    let key = &secrets.api_key;
    let head = |extra: &str| {
        format!(
            "POST /v2/local/run HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n{extra}\r\n"
        )
    };
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "bad chunk size",
            format!("{}zz\r\n{{}}\r\n0\r\n\r\n", head("Transfer-Encoding: chunked\r\n")).into_bytes(),
            false,
        ),
        (
            "truncated chunk",
            format!("{}64\r\n{{\"input\": 1", head("Transfer-Encoding: chunked\r\n")).into_bytes(),
            true,
        ),
        (
            "body shorter than Content-Length",
            format!("{}{{\"input\": 1}}", head("Content-Length: 100\r\n")).into_bytes(),
            true,
        ),
    ];
    for (what, bytes, close) in cases {
        let r = raw(ep.local_addr(), &bytes, close).await;
        assert_eq!(r.status, 400, "{what}: {r:?}");
        assert!(r.error().contains("body"), "{what}: {r:?}");
    }
    // A Content-Length shorter than the body: the JSON is cut (400), and the bytes after it are
    // no request at all: a JSON 400 too.
    let bytes = format!("{}{{\"input\": 1}}", head("Content-Length: 5\r\n"));
    let r = raw(ep.local_addr(), bytes.as_bytes(), false).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().contains("JSON"), "{r:?}");
}

#[tokio::test]
async fn policy_and_s3_config_must_be_objects() {
    let secrets = Secrets::new();
    let ep = endpoint(&secrets).bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    let bodies = [
        (json!({"input": 1, "policy": [10000, true, 20000]}), "policy"),
        (json!({"input": 1, "policy": []}), "policy"),
        (json!({"input": 1, "s3Config": ["id", "secret", "bucket", "http://127.0.0.1:9"]}), "s3Config"),
    ];
    for (body, field) in bodies {
        for route in ["/run", "/runsync"] {
            let (status, v) = client.send("POST", route, Some(body.to_string())).await;
            assert_eq!(status, 400, "{route} {body}: {v}");
            let msg = v["error"].as_str().unwrap();
            assert!(msg.contains(field) && msg.contains("object"), "{route} {body}: {msg}");
            assert!(!msg.contains("secret"), "s3Config values are never echoed: {msg}");
        }
    }
}

#[tokio::test]
async fn the_http_layers_own_errors_are_json() {
    let secrets = Secrets::new();
    let ep = endpoint(&secrets).bind("127.0.0.1:0").await.unwrap();
    let long_uri = format!("GET /v2/local/status/{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "a".repeat(70_000));
    let big_headers = format!(
        "GET /v2/local/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "b".repeat(2_000_000)
    );
    let many_headers = format!(
        "GET /v2/local/health HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n",
        (0..200).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
    );
    let cases = [
        ("URI too long", long_uri, 414),
        ("headers too large", big_headers, 431),
        ("too many headers", many_headers, 431),
        ("garbage request line", "GARBAGE\r\n\r\n".to_string(), 400),
        ("bad header", "GET / HTTP/1.1\r\nHo st: x\r\n\r\n".to_string(), 400),
    ];
    for (what, bytes, status) in cases {
        let r = raw(ep.local_addr(), bytes.as_bytes(), false).await;
        assert_eq!(r.status, status, "{what}: {r:?}");
        assert!(!r.error().is_empty(), "{what}");
    }
}

#[tokio::test]
async fn too_many_requests_carry_retry_after() {
    let secrets = Secrets::new();
    let limits = RateLimits::none().with_run(RateLimit::new(1, Duration::from_secs(10)));
    let ep = endpoint(&secrets).rate_limits(limits).bind("127.0.0.1:0").await.unwrap();
    let key = &secrets.api_key;
    let run = format!(
        "POST /v2/local/run HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Length: 12\r\n\r\n{{\"input\": 1}}"
    );
    assert_eq!(raw(ep.local_addr(), run.as_bytes(), false).await.status, 200);
    let r = raw(ep.local_addr(), run.as_bytes(), false).await;
    assert_eq!(r.status, 429, "{r:?}");
    let after: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=10).contains(&after), "rate limit window of 10 s: Retry-After {after}");

    // A full queue.
    let ep = endpoint(&secrets).max_queue(1).bind("127.0.0.1:0").await.unwrap();
    assert_eq!(raw(ep.local_addr(), run.as_bytes(), false).await.status, 200);
    let r = raw(ep.local_addr(), run.as_bytes(), false).await;
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.error().contains("queue is full"), "{r:?}");
    let after: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!(after >= 1, "{r:?}");
}

/// Names the threads of the runtime that runs the endpoint in the idle test.
const IDLE_THREADS: &str = "idle-endpoint";

/// CPU time (user + system) so far of this process's threads named `name`, in ms. The other
/// tests of this binary run in this process at the same time: its total would count theirs.
#[allow(unsafe_code, reason = "sysconf has no safe wrapper in std or libc")]
fn threads_cpu_ms(name: &str) -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // "tid (comm) state ppid ...": utime and stime are the 12th and 13th fields after comm.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        if &stat[open + 1..close] != name {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    ticks * 1000 / ticks_per_s
}

/// 200,000 queued jobs and a worker whose pings list the 2 jobs it runs: the endpoint idles
/// (the 100 ms sweep looks at that worker's jobs, not at every queued one) and `/health` stays
/// fast.
#[test]
fn a_big_queue_and_pings_with_job_lists_keep_the_endpoint_idle() {
    // A runtime of its own, whose threads' CPU time is the endpoint's (and its client's) alone.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(IDLE_THREADS)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { tokio::spawn(big_queue_and_pings()).await.unwrap() });
}

async fn big_queue_and_pings() {
    const QUEUED: usize = 200_000;
    let secrets = Secrets::new();
    let ep = endpoint(&secrets).max_queue(QUEUED + 10).bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    for i in 0..QUEUED {
        ep.queue_with_id(&format!("q{i}"), runpod_protocol::JobRequest::new(json!(i))).unwrap();
    }
    // A worker takes two jobs and lists them in its pings.
    let http = reqwest::Client::new();
    let wurl = ep.endpoint_url();
    let take = |n: usize| {
        http.get(format!("{wurl}/job-take-batch/w1?batch_size={n}")).header("Authorization", &secrets.api_key)
    };
    let jobs: Value = take(2).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = jobs.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    let ping = format!("{wurl}/ping/w1?job_id={}", ids.join(","));
    let ping = || http.get(&ping).header("Authorization", &secrets.api_key).send();
    assert_eq!(ping().await.unwrap().status(), 200);

    let cpu0 = threads_cpu_ms(IDLE_THREADS);
    let t0 = Instant::now();
    let mut health_times = Vec::new();
    while t0.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        let (status, h) = client.send("GET", "/health", None).await;
        health_times.push(t.elapsed());
        assert_eq!(status, 200);
        assert_eq!(h["jobs"]["inQueue"], json!(QUEUED - 2), "{h}");
        assert_eq!(h["jobs"]["inProgress"], json!(2), "{h}");
        assert_eq!(h["workers"]["running"], json!(1), "{h}");
        ping().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cpu = threads_cpu_ms(IDLE_THREADS) - cpu0;
    let wall = t0.elapsed();
    health_times.sort();
    let p50 = health_times[health_times.len() / 2];
    let max = *health_times.last().unwrap();
    eprintln!(
        "200k queued, pings with job lists: CPU {cpu} ms in {wall:?}; /health p50 {p50:?}, max {max:?}"
    );
    assert!(
        cpu * 10 < wall.as_millis() as u64,
        "{cpu} ms of CPU in {wall:?}: over 10 % of a core while idle"
    );
    // Before the fix /health took 1.5-3.5 s here (debug build); the bounds leave room for a
    // loaded machine.
    assert!(p50 < Duration::from_millis(50), "/health took {p50:?} (median)");
    assert!(max < Duration::from_millis(500), "/health took up to {max:?}");
}
