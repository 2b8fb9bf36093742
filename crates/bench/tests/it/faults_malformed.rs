//! Fault test: 200+ malformed client requests and job inputs against a real endpoint with a real
//! worker process. Each gets the documented 4xx (with a JSON `{"error"}` message) or a FAILED job
//! with a clear message; both keep serving, and a valid job afterwards succeeds.

use crate::common;

use common::{endpoint, Client, Secrets, WorkerProcess};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const LIMIT: usize = 64 * 1024;

/// One malformed request, the statuses it may get and what its error message must say.
struct Case {
    method: &'static str,
    /// Full URL.
    url: String,
    /// `Authorization` header value, `None` for none.
    auth: Option<String>,
    body: Option<String>,
    expect: &'static [u16],
    /// A fragment the `{"error"}` message must contain; `""`: any non-empty message.
    says: &'static str,
    what: String,
}

/// A body short enough to name in a failure message.
fn preview(body: &str) -> String {
    match body.char_indices().nth(80) {
        Some((cut, _)) => format!("{:?}... ({} bytes)", &body[..cut], body.len()),
        None => format!("{body:?}"),
    }
}

fn cases(base: &str, ep_url: &str, s: &Secrets) -> Vec<Case> {
    let key = Some(format!("Bearer {}", s.api_key));
    let s3 = s.s3_config();
    let mut out = Vec::new();
    let mut add = |method, path: &str, auth: Option<String>, body: Option<String>, expect, says, what| {
        out.push(Case { method, url: format!("{ep_url}{path}"), auth, body, expect, says, what })
    };

    // Invalid JSON.
    let bad_json = [
        "{",
        "}",
        "{\"input\":",
        "{\"input\": {}",
        "not json",
        "{'input': 1}",
        "{\"input\": tru}",
        "\u{0}",
        "{\"input\": 1,}",
        "[",
        "{\"input\": \"\\x\"}",
        "{\"input\": 01}",
        "{\"input\": NaN}",
        "\"unterminated",
        "{\"input\" 1}",
        "{\"input\": {\"a\": }}",
        "\u{feff}{\"input\": 1}",
        "{\"input\": 1} trailing",
        "{\"input\": [1, 2}",
        "{\"input\": 1e999999}",
    ];
    // Missing, null or misplaced input.
    let no_input = [
        "{}".to_string(),
        "   ".to_string(),
        "".to_string(),
        "[]".to_string(),
        "null".to_string(),
        "1".to_string(),
        "\"input\"".to_string(),
        json!({"input": null}).to_string(),
        json!({"Input": {}}).to_string(),
        json!({"inputs": {}}).to_string(),
        json!({"webhook": "http://127.0.0.1:9/"}).to_string(),
        json!({"s3Config": s3}).to_string(),
        json!({"policy": {"ttl": 20000}}).to_string(),
        json!([{"input": {}}]).to_string(),
    ];
    // Wrong-typed request fields (input itself may be any JSON value: the worker judges it).
    let wrong_types = [
        json!({"input": {}, "webhook": 5}),
        json!({"input": {}, "webhook": {"url": "x"}}),
        json!({"input": {}, "policy": "fast"}),
        json!({"input": {}, "policy": [1]}),
        json!({"input": {}, "policy": {"executionTimeout": "600000"}}),
        json!({"input": {}, "policy": {"executionTimeout": -1}}),
        json!({"input": {}, "policy": {"executionTimeout": 6000.5}}),
        json!({"input": {}, "policy": {"lowPriority": "yes"}}),
        json!({"input": {}, "policy": {"ttl": true}}),
        json!({"input": {}, "s3Config": "creds"}),
        json!({"input": {}, "s3Config": {"accessId": s.access_id}}),
        json!({"input": {}, "s3Config": {"accessId": s.access_id, "accessSecret": 5, "bucketName": "b", "endpointUrl": "e"}}),
        json!({"input": {}, "s3Config": {"accessId": 7, "accessSecret": s.access_secret, "bucketName": "b", "endpointUrl": "e"}}),
        json!({"input": {}, "s3Config": {"accessId": s.access_id, "accessSecret": s.access_secret, "bucketName": 1, "endpointUrl": "e"}}),
    ];
    // Policy values out of the documented bounds.
    let bad_policy = [
        json!({"executionTimeout": 0}),
        json!({"executionTimeout": 1}),
        json!({"executionTimeout": 5000}),
        json!({"ttl": 0}),
        json!({"ttl": 9999}),
        json!({"ttl": 604_800_001u64}),
        json!({"ttl": u64::MAX}),
        json!({"executionTimeout": 4999, "ttl": 20000}),
    ];
    // Bodies over the configured limit, by this many bytes.
    let over_limit = [1usize, 10, 1000, LIMIT, 4 * LIMIT];
    // Each malformed body goes to both routes that queue a job: (what, bodies, statuses, says).
    let body_groups: [(&str, Vec<String>, &'static [u16], &str); 5] = [
        ("invalid JSON", bad_json.iter().map(|b| b.to_string()).collect(), &[400], ""),
        ("without input", no_input.to_vec(), &[400], ""),
        ("wrong type", wrong_types.iter().map(Value::to_string).collect(), &[400], ""),
        (
            "bad policy",
            bad_policy
                .iter()
                .map(|p| json!({"input": {}, "policy": p, "s3Config": s3}).to_string())
                .collect(),
            &[400],
            "",
        ),
        (
            "over the body limit",
            over_limit
                .iter()
                .map(|extra| json!({"input": {"pad": "x".repeat(LIMIT + extra)}, "s3Config": s3}).to_string())
                .collect(),
            &[413],
            "larger than the limit",
        ),
    ];
    for (what, bodies, expect, says) in &body_groups {
        for route in ["/run", "/runsync"] {
            for b in bodies {
                add(
                    "POST",
                    route,
                    key.clone(),
                    Some(b.clone()),
                    expect,
                    says,
                    format!("{route} {what}: {}", preview(b)),
                );
            }
        }
    }
    // Bad ?wait= on /runsync.
    for w in ["abc", "-5", "0", "999", "300001", "1e3"] {
        let path = format!("/runsync?wait={w}");
        add(
            "POST",
            &path,
            key.clone(),
            Some(r#"{"input": {}}"#.into()),
            &[400][..],
            "wait",
            format!("runsync wait={w:?}"),
        );
    }
    // Unknown ids.
    let ids =
        ["nope", "00000000-0000-0000-0000-000000000000", "sync-123", "%2e%2e", "a%20b", &"z".repeat(300)];
    for id in ids {
        for (m, route) in [("GET", "status"), ("GET", "stream"), ("POST", "cancel"), ("POST", "retry")] {
            add(
                m,
                &format!("/{route}/{id}"),
                key.clone(),
                None,
                &[404][..],
                // Not "not found" for all: the client resolves `%2e%2e` (`..`) to no route at all.
                "",
                format!("{route} of unknown {id}"),
            );
        }
    }
    // Wrong or missing keys, on every route.
    let wrong_keys: [Option<String>; 6] = [
        None,
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(format!("Bearer {}x", s.api_key)),
        Some(format!("Bearer {}", &s.api_key[..s.api_key.len() - 1])),
        Some("Basic dXNlcjpwYXNz".into()),
    ];
    let routes = [
        ("POST", "/run"),
        ("POST", "/runsync"),
        ("GET", "/status/x"),
        ("GET", "/stream/x"),
        ("POST", "/cancel/x"),
        ("POST", "/retry/x"),
        ("POST", "/purge-queue"),
        ("GET", "/health"),
    ];
    for auth in &wrong_keys {
        for (m, r) in routes {
            let body = (m == "POST").then(|| json!({"input": {}, "s3Config": s3}).to_string());
            let what = format!("{m} {r} with key {auth:?}");
            add(m, r, auth.clone(), body, &[401][..], "Authorization header", what);
        }
    }
    // Unknown endpoint ids and routes.
    for (m, path) in [
        ("POST", "/v2/other/run"),
        ("GET", "/v2/other/health"),
        ("GET", "/v2/local/nothing"),
        ("GET", "/v3/local/run"),
    ] {
        out.push(Case {
            method: m,
            url: format!("{base}{path}"),
            auth: key.clone(),
            body: (m == "POST").then(|| r#"{"input": {}}"#.into()),
            expect: &[404, 405],
            says: "",
            what: format!("{m} {path}"),
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_and_inputs_get_clear_errors_and_nothing_breaks() {
    let secrets = Secrets::new();
    let ep = endpoint(&secrets)
        .max_run_bytes(LIMIT)
        .max_runsync_bytes(LIMIT)
        .take_wait(Duration::from_secs(2))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    let mut worker = WorkerProcess::spawn(ep.worker_env("w-sturdy"), 4);

    let all = cases(ep.base_url(), &ep.endpoint_url(), &secrets);
    let mut failures = Vec::new();
    for c in &all {
        let (status, body) = client.send_with(c.method, &c.url, c.auth.as_deref(), c.body.clone()).await;
        let message = body.get("error").and_then(Value::as_str).unwrap_or("");
        if !c.expect.contains(&status)
            || (status != 405 && (message.trim().is_empty() || !message.contains(c.says)))
        {
            failures.push(format!(
                "{}: got {status} {body}, expected {:?} with an error message saying {:?}",
                c.what, c.expect, c.says
            ));
        }
    }

    // Inputs the endpoint accepts but the worker's typed handler cannot: FAILED with a message.
    let bad_inputs = [
        (json!("a string"), "invalid type"),
        (json!(42), "invalid type"),
        (json!(["x"]), "invalid type"),
        (json!(true), "invalid type"),
        (json!({"sleep_ms": "soon"}), "sleep_ms"),
        (json!({"sleep_ms": -1}), "sleep_ms"),
        (json!({"sleep_ms": 1.5}), "sleep_ms"),
        (json!({"fail": 5}), "fail"),
        (json!({"fail": "handler said no"}), "handler said no"),
    ];
    let mut ids = Vec::new();
    for (input, _) in &bad_inputs {
        ids.push(client.run(json!({"input": input, "s3Config": secrets.s3_config()})).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for ((input, needle), id) in bad_inputs.iter().zip(&ids) {
        let v = client.wait_final(id, deadline).await;
        let error = v["error"].as_str().unwrap_or("");
        if v["status"] != "FAILED" || !error.contains(needle) {
            failures.push(format!("input {input}: expected FAILED mentioning {needle:?}, got {v}"));
        }
    }
    let total = all.len() + bad_inputs.len();
    assert!(total >= 200, "only {total} cases");
    assert!(failures.is_empty(), "{} of {total} cases misbehaved:\n{}", failures.len(), failures.join("\n"));

    // Both still serve: a valid job completes.
    assert!(worker.alive(), "the worker died: {}", worker.log());
    let (status, v) =
        client.send("POST", "/runsync", Some(json!({"input": {"value": "after"}}).to_string())).await;
    assert_eq!(
        (status, &v["status"], &v["output"]),
        (200, &json!("COMPLETED"), &json!({"value": "after"})),
        "{v}"
    );

    secrets.assert_absent_everywhere("the worker's output", &worker.log(), &client);
}
