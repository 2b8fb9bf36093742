//! Fault tests: connections that never finish a request. Silent, slow-header and slow-body
//! connections are closed after the header and body timeouts; under `ulimit -n 512`, 600 silent
//! connections do not stop the endpoint answering, and accept errors (EMFILE) do not make it
//! spin.

use crate::common;

use common::endpoint_process::{EndpointConfig, EndpointProcess};
use common::tail;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const KEY: &str = "conn-test-key";

/// `GET /health` on a fresh connection (plain HTTP/1.1 over a socket); the status code, or why
/// there is none within 10 s.
fn health(base: &str) -> Result<u16, String> {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "GET /v2/local/health HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))
}

/// Opens `n` TCP connections to `port`; with `first` sent on each (nothing when empty).
fn open(port: u16, n: usize, first: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            if !first.is_empty() {
                s.write_all(first).unwrap();
            }
            s
        })
        .collect()
}

/// True once the server has closed `s` (EOF or reset), reading at most `max` for an answer.
fn closed_by_server(s: &mut TcpStream, max: Duration) -> (bool, Vec<u8>) {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let end = Instant::now() + max;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (true, got),
        }
    }
    (false, got)
}

/// CPU time (user + system) the process has used, in ms.
#[allow(unsafe_code, reason = "sysconf has no safe wrapper in std or libc")]
fn cpu_ms(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1000 / hz
}

/// 150 silent connections, 100 that send headers a byte every 300 ms and 100 that send a body
/// a byte every 300 ms: the endpoint answers other clients throughout, and closes every one of
/// them once the 1 s header or body timeout has passed (a slow body is answered 408 first).
#[test]
fn slow_and_silent_connections_are_closed_and_others_are_served() {
    let ep = EndpointProcess::spawn(&EndpointConfig {
        api_key: KEY.into(),
        header_timeout_ms: Some(1000),
        body_timeout_ms: Some(1000),
        ..Default::default()
    });
    let port = ep.port;
    let mut silent = open(port, 150, b"");
    let mut slow_header = open(port, 100, b"GET /v2/local/health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    let body_head = format!(
        "POST /v2/local/run HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 1000\r\n\r\n{{"
    );
    let mut slow_body = open(port, 100, body_head.as_bytes());
    let started = Instant::now();
    // Trickle a byte every 300 ms on the slow ones for 4 s, asking /health meanwhile.
    let mut served = Vec::new();
    while started.elapsed() < Duration::from_secs(4) {
        for s in slow_header.iter_mut() {
            let _ = s.write_all(b"X");
        }
        for s in slow_body.iter_mut() {
            let _ = s.write_all(b" ");
        }
        let t = Instant::now();
        served.push((health(&ep.base_url), t.elapsed()));
        std::thread::sleep(Duration::from_millis(300));
    }
    let slowest = served.iter().map(|(_, t)| *t).max().unwrap_or_default();
    eprintln!(
        "350 slow or silent connections: {} /health answered meanwhile, slowest {slowest:?}",
        served.len()
    );
    for (r, took) in &served {
        assert_eq!(r.as_ref().ok(), Some(&200), "/health during the slow connections: {r:?}");
        assert!(*took < Duration::from_secs(5), "/health took {took:?}");
    }
    let mut open_after = Vec::new();
    for (what, conns) in [("silent", &mut silent), ("slow-header", &mut slow_header)] {
        let still = conns
            .iter_mut()
            .map(|s| closed_by_server(s, Duration::from_millis(200)).0)
            .filter(|c| !c)
            .count();
        if still > 0 {
            open_after.push(format!("{still} {what}"));
        }
    }
    let mut answered_408 = 0;
    let mut still_body = 0;
    for s in slow_body.iter_mut() {
        let (closed, answer) = closed_by_server(s, Duration::from_millis(200));
        let text = String::from_utf8_lossy(&answer);
        if text.starts_with("HTTP/1.1 408") && text.contains("{\"error\":") {
            answered_408 += 1;
        }
        if !closed {
            still_body += 1;
        }
    }
    if still_body > 0 {
        open_after.push(format!("{still_body} slow-body"));
    }
    assert!(open_after.is_empty(), "still open 4 s after opening, with 1 s timeouts: {open_after:?}");
    assert_eq!(answered_408, 100, "each slow body is answered 408 with a JSON error");
}

/// Under `ulimit -n 512`, 600 connections that never send a byte: the endpoint keeps answering
/// (it closes the oldest idle connections to make room), and while the connections stay open it
/// neither spins on accept errors nor logs one per attempt.
#[test]
fn six_hundred_silent_connections_under_ulimit_512_do_not_stop_it() {
    let ep = EndpointProcess::spawn(&EndpointConfig {
        api_key: KEY.into(),
        open_files: Some(512),
        ..Default::default()
    });
    silent_connections_under_a_low_limit(ep, "default cap");
}

/// The same with a connection cap above the open-files limit, so that accepting fails with
/// EMFILE: each failure closes an idle connection and backs off, and the log says so at most
/// every 10 s.
#[test]
fn accept_errors_free_a_descriptor_and_back_off() {
    let ep = EndpointProcess::spawn(&EndpointConfig {
        api_key: KEY.into(),
        open_files: Some(512),
        max_connections: Some(5000),
        ..Default::default()
    });
    silent_connections_under_a_low_limit(ep, "cap 5000 over the limit");
}

fn silent_connections_under_a_low_limit(ep: EndpointProcess, what: &str) {
    assert_eq!(health(&ep.base_url), Ok(200));
    let cpu_before = cpu_ms(ep.pid());
    let t0 = Instant::now();
    let silent = open(ep.port, 600, b"");
    let mut took = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = health(&ep.base_url);
        assert_eq!(
            r,
            Ok(200),
            "{what}: a request with 600 silent connections open; log:\n{}",
            tail(&ep.log())
        );
        took.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Keep them open a while longer, then look at the CPU the endpoint used meanwhile.
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_ms(ep.pid()) - cpu_before;
    let wall = t0.elapsed();
    drop(silent);
    took.sort();
    let log = ep.log();
    let accept_errors = log.lines().filter(|l| l.contains("accept failed")).count();
    eprintln!(
        "{what}: 600 silent connections, ulimit -n 512: 20 /health answered, max {:?}; endpoint CPU {cpu} ms in {wall:?}; {accept_errors} accept-error log lines",
        took.last().unwrap()
    );
    assert!(cpu < 2000, "{what}: the endpoint used {cpu} ms of CPU in {wall:?}: spinning?\n{}", tail(&log));
    assert!(accept_errors <= 2, "{what}: {accept_errors} accept-error log lines:\n{}", tail(&log));
}

/// A request in progress is never idle: with a 1 s header timeout, a 3 s `job-take` long poll
/// and a 3 s `/runsync` wait are answered, not cut; an idle keep-alive connection is closed
/// after the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_outlast_the_header_timeout() {
    let secrets = common::Secrets::new();
    let ep = common::endpoint(&secrets)
        .header_timeout(Duration::from_secs(1))
        .take_wait(Duration::from_secs(3))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = ep.endpoint_url();
    let t = Instant::now();
    let take = http.get(format!("{url}/job-take/w1")).header("Authorization", &secrets.api_key).send();
    let sync = http
        .post(format!("{url}/runsync?wait=3000"))
        .bearer_auth(&secrets.api_key)
        .body(r#"{"input": 1}"#)
        .send();
    let (take, sync) = tokio::join!(take, sync);
    let took = t.elapsed();
    // The job-take may have got the /runsync job; either way both were answered.
    let take = take.expect("job-take answered");
    assert!(take.status() == 204 || take.status() == 200, "{take:?}");
    let sync = sync.expect("/runsync answered");
    assert_eq!(sync.status(), 200);
    assert!(took >= Duration::from_millis(2900), "answered after {took:?}");

    // An idle connection is closed once the header timeout passes.
    let mut s = tokio::net::TcpStream::connect(ep.local_addr()).await.unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let n =
        tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read(&mut s, &mut buf)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    let closed_after = t.elapsed();
    assert!((Duration::from_millis(900)..Duration::from_secs(5)).contains(&closed_after), "{closed_after:?}");
}
