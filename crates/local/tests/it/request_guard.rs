//! The guard against web pages (docs/client-api.md, "Requests from web pages"), over real
//! sockets: requests with a hostile `Host` (DNS rebinding), a cross-origin `Origin` or
//! `Sec-Fetch-Site`, or a browser's form or text body are refused with `403` and nothing
//! happens; curl, SDK-style clients, the console's own same-origin requests and hosts given by
//! address are served. The same for the load balancer; and the OpenAI route's `405` in
//! OpenAI's error shape.

use runpod_local::{LoadBalancer, LocalEndpoint};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one raw HTTP/1.1 request to `addr` (`Connection: close`), with `headers` as given
/// (`Host` included: none is added); the status and the body parsed as JSON (`Null` if not).
async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// How many jobs the endpoint holds, queued or done (from `/health`, asked by address).
async fn jobs(ep: &LocalEndpoint) -> u64 {
    let host = ep.local_addr().to_string();
    let (status, h) = raw(ep.local_addr(), "GET", "/v2/local/health", &[("Host", &host)], "").await;
    assert_eq!(status, 200, "{h}");
    h["jobs"].as_object().unwrap().values().map(|v| v.as_u64().unwrap_or(0)).sum()
}

/// Raw request headers, name and value.
type Headers<'a> = Vec<(&'a str, &'a str)>;

const JOB: &str = r#"{"input": {"n": 1}}"#;

#[tokio::test]
async fn a_hostile_host_is_refused_and_addresses_and_loopback_names_are_served() {
    let ep = LocalEndpoint::builder().allowed_host("box.lan").bind("127.0.0.1:0").await.unwrap();
    let addr = ep.local_addr();
    let port = addr.port();
    // A DNS-rebinding page: its own name, now resolving to 127.0.0.1.
    for host in [
        format!("attacker.example:{port}"),
        "rebind.127.0.0.1.nip.io".into(),
        "localhost.evil.example".into(),
    ] {
        for (method, path, body) in [
            ("GET", "/console/api/jobs", ""),
            ("GET", "/console/api/request", ""),
            ("GET", "/v2/local/status/x", ""),
            ("POST", "/v2/local/run", JOB),
            ("GET", "/", ""),
        ] {
            let (status, answer) = raw(addr, method, path, &[("Host", &host)], body).await;
            assert_eq!(status, 403, "{method} {path} with Host {host}: {answer}");
            let msg = answer["error"].as_str().unwrap();
            assert!(msg.contains("DNS-rebinding") && msg.contains("--allowed-host"), "{msg}");
        }
    }
    assert_eq!(jobs(&ep).await, 0, "the refused /run queued nothing");
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost.:{port}"),
        format!("console.localhost:{port}"),
        format!("[::1]:{port}"),
        format!("192.168.1.20:{port}"),
        format!("host.containers.internal:{port}"),
        format!("box.lan:{port}"),
    ] {
        let (status, answer) = raw(addr, "GET", "/v2/local/health", &[("Host", &host)], "").await;
        assert_eq!(status, 200, "Host {host}: {answer}");
    }
}

#[tokio::test]
async fn cross_origin_and_browser_form_requests_are_refused() {
    let ep = LocalEndpoint::builder().bind("127.0.0.1:0").await.unwrap();
    let addr = ep.local_addr();
    let host = addr.to_string();
    let h = ("Host", host.as_str());
    let text = ("Content-Type", "text/plain;charset=UTF-8");
    let chat = r#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#;
    let evil = ("Origin", "https://evil.example");
    let same = format!("http://{host}");
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("/v2/local/run", vec![h, evil, text], JOB),
        ("/v2/local/runsync", vec![h, evil, text], JOB),
        ("/v2/local/purge-queue", vec![h, evil, text], ""),
        ("/v2/local/run", vec![h, ("Origin", "null"), text], JOB),
        // Another port of the same host is another origin.
        (
            "/v2/local/run",
            vec![h, ("Origin", "http://127.0.0.1:5173"), ("Content-Type", "application/json")],
            JOB,
        ),
        // A browser that sent no Origin still says where the request came from.
        ("/v2/local/run", vec![h, ("Sec-Fetch-Site", "cross-site"), text], JOB),
        // Same origin, but a form body: not what the console sends.
        (
            "/v2/local/run",
            vec![h, ("Origin", &same), ("Content-Type", "application/x-www-form-urlencoded")],
            JOB,
        ),
        (
            "/v2/local/run",
            vec![h, ("Sec-Fetch-Site", "same-origin"), ("Content-Type", "multipart/form-data; boundary=x")],
            JOB,
        ),
    ];
    for (path, headers, body) in &cases {
        let (status, answer) = raw(addr, "POST", path, headers, body).await;
        assert_eq!(status, 403, "{path} {headers:?}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("--allowed-host '*'"), "{answer}");
    }
    // The OpenAI route answers in OpenAI's shape.
    let (status, answer) =
        raw(addr, "POST", "/v2/local/openai/v1/chat/completions", &[h, evil, text], chat).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("cross-origin"), "{answer}");
    // A cross-origin read of the console's API.
    let (status, _) = raw(addr, "GET", "/console/api/jobs", &[h, evil], "").await;
    assert_eq!(status, 403);
    assert_eq!(jobs(&ep).await, 0, "nothing refused was queued");
}

#[tokio::test]
async fn curl_sdk_and_same_origin_requests_are_served() {
    let ep = LocalEndpoint::builder().bind("127.0.0.1:0").await.unwrap();
    let addr = ep.local_addr();
    let host = addr.to_string();
    let h = ("Host", host.as_str());
    let origin = format!("http://{host}");
    let served: Vec<Vec<(&str, &str)>> = vec![
        // curl -d: a form type, no browser headers.
        vec![h, ("Content-Type", "application/x-www-form-urlencoded"), ("User-Agent", "curl/8.5.0")],
        // The SDKs (requests, httpx, reqwest): JSON, no browser headers.
        vec![h, ("Content-Type", "application/json"), ("User-Agent", "python-requests/2.32.3")],
        // No type at all.
        vec![h],
        // The console page: same origin, JSON.
        vec![h, ("Origin", &origin), ("Sec-Fetch-Site", "same-origin"), ("Content-Type", "application/json")],
    ];
    for headers in &served {
        let (status, answer) = raw(addr, "POST", "/v2/local/run", headers, JOB).await;
        assert_eq!((status, answer["status"].clone()), (200, json!("IN_QUEUE")), "{headers:?}: {answer}");
    }
    // A link to the console from another site opens it (a navigation is a GET).
    let (status, _) =
        raw(addr, "GET", "/", &[h, ("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "navigate")], "")
            .await;
    assert_eq!(status, 200);
    // Real curl, as the READMEs write it (`-d` without a content type).
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-XPOST", &format!("{}/run", ep.endpoint_url()), "-d", JOB])
        .output()
        .await
        .expect("curl");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["status"], "IN_QUEUE", "{answer}");
    assert_eq!(jobs(&ep).await, (served.len() + 1) as u64);
    // `*` turns the guard off.
    let open = LocalEndpoint::builder().allowed_host("*").bind("127.0.0.1:0").await.unwrap();
    let evil = [("Host", "evil.example"), ("Origin", "https://evil.example"), ("Content-Type", "text/plain")];
    let (status, _) = raw(open.local_addr(), "POST", "/v2/local/run", &evil, JOB).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_openai_route_answers_a_wrong_method_in_openai_shape() {
    let ep = LocalEndpoint::builder().bind("127.0.0.1:0").await.unwrap();
    let host = ep.local_addr().to_string();
    for (method, path) in
        [("GET", "/v2/local/openai/v1/chat/completions"), ("DELETE", "/v2/local/openai/v1/models")]
    {
        let (status, answer) = raw(ep.local_addr(), method, path, &[("Host", &host)], "").await;
        assert_eq!(status, 405, "{answer}");
        let e = &answer["error"];
        assert!(e["message"].as_str().unwrap().contains(method), "{answer}");
        assert_eq!(
            (e["type"].clone(), e["code"].clone()),
            (json!("invalid_request_error"), json!("method_not_allowed"))
        );
        assert!(e.get("param").is_some(), "{answer}");
    }
}

#[tokio::test]
async fn the_load_balancer_is_guarded_too() {
    // A worker: the endpoint's /health stands in for any HTTP server.
    let worker = LocalEndpoint::builder().bind("127.0.0.1:0").await.unwrap();
    let lb = LoadBalancer::builder()
        .worker(format!("{}={}/v2/local/health", worker.base_url(), worker.base_url()))
        .probe_interval(Duration::from_millis(50))
        .allowed_host("lb.lan")
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = lb.local_addr();
    let host = addr.to_string();
    let path = "/v2/local/health";
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while lb.workers()[0].2 != "healthy" {
        assert!(std::time::Instant::now() < until, "{:?}", lb.workers());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for headers in [
        vec![("Host", "attacker.example")],
        vec![("Host", host.as_str()), ("Origin", "https://evil.example")],
    ] {
        let (status, answer) = raw(addr, "GET", path, &headers, "").await;
        assert_eq!(status, 403, "{headers:?}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("start runpod-local load-balance with --allowed-host"),
            "{answer}"
        );
    }
    for h in [host.as_str(), "lb.lan", "localhost"] {
        let (status, answer) = raw(addr, "GET", path, &[("Host", h)], "").await;
        assert_eq!(status, 200, "Host {h}: {answer}");
    }
}
