//! Refusals: 400/401/404 with a JSON body that says what is wrong; no panic on any input.

use crate::common;

use common::Api;
use runpod_local::{LocalEndpoint, RateLimits};
use serde_json::{json, Value};
use std::time::Duration;

async fn start(key: Option<&str>) -> (LocalEndpoint, Api) {
    let mut b =
        LocalEndpoint::builder().take_wait(Duration::from_millis(200)).rate_limits(RateLimits::none());
    if let Some(k) = key {
        b = b.api_key(k);
    }
    let ep = b.bind("127.0.0.1:0").await.unwrap();
    let api = Api::new(&ep, key);
    (ep, api)
}

fn says(body: &Value, what: &str) {
    let msg = body["error"].as_str().unwrap_or_else(|| panic!("no error text in {body}"));
    assert!(msg.contains(what), "'{msg}' does not mention '{what}'");
}

#[tokio::test]
async fn wrong_or_missing_key_is_401_on_both_apis() {
    let (ep, api) = start(Some("right")).await;
    for key in [None, Some("wrong")] {
        let other = Api { key: key.map(str::to_owned), ..Api::new(&ep, None) };
        let (code, body) = other.post("run", &json!({"input": 1})).await;
        assert_eq!(code, 401, "{body}");
        says(&body, "API key");
        let (code, _) = other.wget("job-take/w1").await;
        assert_eq!(code, 401);
        let (code, _) = other.wget("ping/w1").await;
        assert_eq!(code, 401);
    }
    assert_eq!(api.post("run", &json!({"input": 1})).await.0, 200);
    let (code, body) = api.wget("job-take/w1").await;
    assert_eq!(code, 200, "raw key on the worker API: {body}");
}

#[tokio::test]
async fn without_a_key_any_key_is_accepted() {
    let (ep, _) = start(None).await;
    let api = Api::new(&ep, Some("anything"));
    assert_eq!(api.post("run", &json!({"input": 1})).await.0, 200);
    let anon = Api::new(&ep, None);
    assert_eq!(anon.wget("job-take/w1").await.0, 200);
}

#[tokio::test]
async fn unknown_endpoints_routes_and_jobs_are_404() {
    let (ep, api) = start(None).await;
    let other = Api { url: format!("{}/v2/nope", ep.base_url()), ..Api::new(&ep, None) };
    let (code, body) = other.post("run", &json!({"input": 1})).await;
    assert_eq!(code, 404);
    says(&body, "nope");
    let (code, body) = api.status("no-such-job").await;
    assert_eq!(code, 404);
    says(&body, "no-such-job");
    for path in ["stream/x", "cancel/x", "retry/x"] {
        let (code, _) =
            if path.starts_with("stream") { api.get(path).await } else { api.post(path, &json!({})).await };
        assert_eq!(code, 404, "{path}");
    }
    let (code, body) = api.get("no-such-route").await;
    assert_eq!(code, 404);
    says(&body, "no-such-route");
    let (code, _) = api.wpost("job-done/w1/nojob", &json!({"output": 1})).await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn bad_requests_are_400_and_say_why() {
    let (_ep, api) = start(None).await;
    let cases: Vec<(&str, &str)> = vec![
        ("{not json", "not valid JSON"),
        ("", "empty"),
        ("{}", "input"),
        (r#"{"input": null}"#, "input"),
        (r#"{"input": 1, "policy": {"ttl": "soon"}}"#, "policy.ttl"),
        (r#"{"input": 1, "policy": {"executionTimeout": -5}}"#, "policy.executionTimeout"),
        (r#"{"input": 1, "policy": {"executionTimeout": 100}}"#, "executionTimeout"),
        (r#"{"input": 1, "webhook": 7}"#, "webhook"),
        (r#"{"input": 1, "webhook": "file:///etc/passwd"}"#, "webhook"),
        ("[1, 2]", "must be a JSON object"),
    ];
    for (body, what) in cases {
        for route in ["run", "runsync"] {
            let (code, answer) = api.post_raw(route, body).await;
            assert_eq!(code, 400, "{route} {body}: {answer}");
            says(&answer, what);
        }
    }
    let id = api.run(json!(1)).await;
    api.wget("job-take/w1").await;
    for (body, what) in
        [("", "empty"), ("nope", "JSON object"), ("{nope", "not valid JSON"), (r#"{"error": 5}"#, "error")]
    {
        let (code, answer) = api.wpost_raw(&format!("job-done/w1/{id}"), body).await;
        assert_eq!(code, 400, "{body}: {answer}");
        says(&answer, what);
    }
    let (code, answer) = api.wpost_raw(&format!("job-stream/w1/{id}"), "{}").await;
    assert_eq!(code, 400);
    says(&answer, "output");
    let (code, _) = api.wget("job-take-batch/w1?batch_size=lots").await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn garbage_never_breaks_the_server() {
    let (_ep, api) = start(None).await;
    let deep = "[".repeat(100_000);
    let bodies: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        vec![0xff, 0xfe, 0x00, 0x01],
        br#"{"input": 1e999999}"#.to_vec(),
        br#"{"input": "\ud800"}"#.to_vec(),
        br#"{"input": 1, "policy": {"ttl": 18446744073709551616}}"#.to_vec(),
        br#"{"input": 1, "policy": {"executionTimeout": 18446744073709551615}}"#.to_vec(),
    ];
    for b in bodies {
        for route in ["run", "runsync?wait=1000"] {
            let (code, answer) = api.post_raw(route, b.clone()).await;
            assert!(code == 400 || code == 200, "{route}: {code} {answer}");
        }
    }
    for path in
        ["status/%00%ff", "stream/..%2F..", "status/a?ttl=99999999999999999999999", "cancel/%E2%82%AC"]
    {
        let (code, _) = api.get(path).await;
        assert!(code == 404 || code == 400 || code == 405, "{path}: {code}");
    }
    let (code, _) = api.wget("ping/w1?status=unhealthy&check=gpu&reason=%FF%FE").await;
    assert_eq!(code, 200);
    let (code, h) = api.get("health").await;
    assert_eq!(code, 200);
    assert_eq!(h["workers"]["unhealthy"], 1, "{h}");
}

#[tokio::test]
async fn s3_config_never_reaches_a_client() {
    let (_ep, api) = start(None).await;
    let s3 = json!({"accessId": "AKIDSECRET", "accessSecret": "TOPSECRET", "bucketName": "b", "endpointUrl": "http://127.0.0.1:1"});
    let (_, run) = api.post("run", &json!({"input": 1, "s3Config": s3})).await;
    assert!(!run.to_string().contains("SECRET"));
    let id = run["id"].as_str().unwrap();
    for answer in [api.status(id).await.1, api.get(&format!("stream/{id}?")).await.1] {
        assert!(!answer.to_string().contains("SECRET"), "{answer}");
    }
    let (_, job) = api.wget("job-take/w1").await;
    assert_eq!(job["s3Config"], s3);
    let (_, sync) = api.post("runsync?wait=1000", &json!({"input": 1, "s3Config": s3})).await;
    assert!(!sync.to_string().contains("SECRET"), "{sync}");
    let (_, c) = api.post(&format!("cancel/{id}"), &json!({})).await;
    assert!(!c.to_string().contains("SECRET"), "{c}");
}
