//! The console's routes over HTTP (the page itself runs in a real browser in
//! `examples/echo/tests/console.rs`): what is served without the key, what needs it, the
//! request check that answers as `/run` does, the jobs list that never shows `s3Config`, and
//! the event stream that leaves `/stream` its chunks.

use crate::common;

use common::Api;
use runpod_local::LocalEndpoint;
use serde_json::{json, Value};
use std::time::Duration;

const KEY: &str = "console-test-key";

async fn endpoint() -> (LocalEndpoint, Api) {
    let ep = LocalEndpoint::builder().api_key(KEY).bind("127.0.0.1:0").await.unwrap();
    let api = Api::new(&ep, Some(KEY));
    (ep, api)
}

#[tokio::test]
async fn the_page_is_served_without_the_key_and_its_api_needs_it() {
    let (ep, api) = endpoint().await;
    let base = ep.base_url().to_owned();
    assert_eq!(ep.console_url(), format!("{base}/"));
    for (path, kind) in [
        ("/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/form.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let r = api.http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
        assert!(!r.text().await.unwrap().contains(KEY));
    }
    let info: Value =
        api.http.get(format!("{base}/console/info")).send().await.unwrap().json().await.unwrap();
    assert_eq!(info, json!({"endpointId": "local", "keyRequired": true, "logs": false, "inputSchema": null}));

    for path in ["/console/api/request", "/console/api/jobs"] {
        let r = api.http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a key");
        let r = api.http.get(format!("{base}{path}")).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong key");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "wrong API key in the Authorization header");
    }
    // The test's working directory (the crate) has no test_input.json: the empty request.
    let r = api.http.get(format!("{base}/console/api/request")).bearer_auth(KEY).send().await.unwrap();
    let start: Value = r.json().await.unwrap();
    assert_eq!(start["source"], Value::Null);
    let text: Value = serde_json::from_str(start["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, json!({"input": {}}));
}

#[tokio::test]
async fn the_check_answers_what_run_answers() {
    let (ep, api) = endpoint().await;
    let check = format!("{}/console/api/check", ep.base_url());
    let bodies = [
        r#"{"input": {"a": 1}}"#,
        r#"{"input": {"a": 1}, "policy": {"executionTimeout": 60000, "ttl": 20000, "lowPriority": true}}"#,
        r#"{"input": 1, "webhook": "https://example.com/hook"}"#,
        r#"{"input": "#,
        r#"{}"#,
        r#"{"input": null}"#,
        r#"[1]"#,
        r#"{"input": 1, "webhook": "ftp://x"}"#,
        r#"{"input": 1, "policy": {"ttl": 5}}"#,
        r#"{"input": 1, "policy": {"executionTimeout": 10}}"#,
        r#"{"input": 1, "policy": {"ttl": "soon"}}"#,
        r#"{"input": 1, "s3Config": {"accessId": "a", "accessSecret": 42, "bucketName": "b", "endpointUrl": "e"}}"#,
        r#"{"input": 1, "s3Config": {"accessId": "a"}}"#,
    ];
    for body in bodies {
        let r = api.http.post(&check).bearer_auth(KEY).body(body).send().await.unwrap();
        let checked = (r.status().as_u16(), r.json::<Value>().await.unwrap());
        let (code, run) = api.post_raw("run", body).await;
        if code == 200 {
            assert_eq!(checked, (200, json!({"ok": true})), "{body}");
        } else {
            assert_eq!(checked, (code, run.clone()), "{body}: the check and /run disagree");
            assert!(!run["error"].as_str().unwrap().contains("42"), "no s3Config value echoed: {run}");
        }
    }
    // Checking queues nothing: only the three valid bodies were queued, by /run.
    let (_, health) = api.get("health").await;
    assert_eq!(health["jobs"]["inQueue"], 3, "{health}");
}

#[tokio::test]
async fn the_jobs_list_shows_newest_first_without_secrets() {
    let (ep, api) = endpoint().await;
    let (code, run) = api
        .post(
            "run",
            &json!({"input": {"n": 1}, "webhook": "http://127.0.0.1:9/hook?token=hook-secret",
                    "s3Config": {"accessId": "AKID-LISTED", "accessSecret": "s3-secret", "bucketName": "b", "endpointUrl": "http://127.0.0.1:9"}}),
        )
        .await;
    assert_eq!(code, 200, "{run}");
    let first = run["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = api.run(json!({"n": 2})).await;
    let jobs =
        api.http.get(format!("{}/console/api/jobs", ep.base_url())).bearer_auth(KEY).send().await.unwrap();
    let text = jobs.text().await.unwrap();
    for secret in ["s3-secret", "AKID-LISTED", "hook-secret"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let list: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = list["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()]);
    assert_eq!(list["jobs"][0]["status"], "IN_QUEUE");
    assert_eq!(list["total"], 2);
    assert_eq!(list["health"]["jobs"]["inQueue"], 2);

    // The newest 50 only.
    let mut newest = String::new();
    for n in 0..60 {
        newest = api.run(json!({"n": n})).await;
    }
    let list: Value = api
        .http
        .get(format!("{}/console/api/jobs", ep.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((list["jobs"].as_array().unwrap().len(), list["total"].as_u64()), (50, Some(62)));
    assert_eq!(list["jobs"][0]["id"], newest.as_str());
    assert!(
        list["jobs"].as_array().unwrap().iter().all(|j| j["id"] != first.as_str()),
        "the oldest is left out"
    );
}

/// Reads server-sent events from `resp` until one satisfies `done`; returns all read.
async fn read_events(mut resp: reqwest::Response, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut events = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await.expect("an event in time").unwrap();
        let Some(chunk) = chunk else { return events };
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                let event: Value = serde_json::from_str(data).unwrap();
                let stop = done(&event);
                events.push(event);
                if stop {
                    return events;
                }
            }
        }
    }
}

#[tokio::test]
async fn the_event_stream_follows_a_job_and_leaves_stream_its_chunks() {
    let (ep, api) = endpoint().await;
    let id = api.run(json!({"n": 3})).await;
    let url = format!("{}/console/api/jobs/{id}/events", ep.base_url());
    let r = api.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401, "the stream needs the key");
    let r =
        api.http.get(format!("{}/console/api/jobs/nope/events", ep.base_url())).bearer_auth(KEY).send().await;
    assert_eq!(r.unwrap().status(), 404);

    let events = api.http.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert!(events.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let logs = ep.job_logs();
    let worker = async {
        let (_, job) = api.wget("job-take/w1").await;
        assert_eq!(job["id"], id.as_str());
        for i in 1..=3 {
            logs.push(&id, "INFO", &format!("step {i}"));
            let (code, _) = api.wpost(&format!("job-stream/w1/{id}"), &json!({"output": i})).await;
            assert_eq!(code, 200);
            let progress = json!({"output": {"done": i}, "status": "IN_PROGRESS"});
            assert_eq!(api.wpost(&format!("job-done/w1/{id}"), &progress).await.0, 200);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        api.wpost(&format!("job-done/w1/{id}"), &json!({"output": "all done"})).await;
        logs.push(&id, "INFO", "after the end");
    };
    let (events, ()) = tokio::join!(
        read_events(events, |e| e["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "after the end")),
        worker
    );
    let statuses: Vec<&str> = events.iter().map(|e| e["job"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.first(), Some(&"IN_QUEUE"), "{events:#?}");
    assert!(statuses.contains(&"IN_PROGRESS") && statuses.contains(&"COMPLETED"), "{statuses:?}");
    let chunks: Vec<Value> = events.iter().flat_map(|e| e["stream"].as_array().unwrap().clone()).collect();
    assert_eq!(chunks, [json!(1), json!(2), json!(3)], "every chunk once, in order");
    let lines: Vec<&str> = events
        .iter()
        .flat_map(|e| e["logs"].as_array().unwrap())
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["step 1", "step 2", "step 3", "after the end"]);
    let progress = events.iter().find(|e| e["job"]["output"] == json!({"done": 1}));
    assert!(progress.is_some(), "progress updates are seen: {events:#?}");
    let last_status = events.iter().rev().find(|e| e["job"]["status"] == "COMPLETED").unwrap();
    assert_eq!(last_status["job"]["output"], "all done");

    // /stream still has every chunk: the page read them without taking them.
    let (_, stream) = api.get(&format!("stream/{id}")).await;
    assert_eq!(stream["stream"], json!([{"output": 1}, {"output": 2}, {"output": 3}]), "{stream}");
    let info: Value =
        api.http.get(format!("{}/console/info", ep.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["logs"], true, "a JobLogs was handed out");
}

/// With the worker's schema: `/run` answers `400` naming the first field that breaks it, the
/// check lists every one (for the form), and the page learns the schema from `/console/info`.
#[tokio::test]
async fn with_a_schema_the_check_lists_each_field_and_run_refuses() {
    let schema = json!({
        "type": "object", "additionalProperties": false, "required": ["message"],
        "properties": {"message": {"type": "string"}, "repeat": {"type": "integer", "minimum": 1, "maximum": 100}}
    });
    let ep = LocalEndpoint::builder()
        .api_key(KEY)
        .schema(runpod_protocol::WorkerSchema { input: schema.clone(), output: None })
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let api = Api::new(&ep, Some(KEY));
    let info: Value =
        api.http.get(format!("{}/console/info", ep.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["inputSchema"], schema);

    let body = json!({"input": {"repeat": 500, "colour": "red"}});
    let r = api.http.post(format!("{}/console/api/check", ep.base_url())).bearer_auth(KEY).json(&body);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 400);
    let checked: Value = r.json().await.unwrap();
    assert_eq!(
        checked["violations"],
        json!([
            {"path": "input", "message": "missing field `message`"},
            {"path": "input.colour", "message": "unknown field `colour`, expected one of `message`, `repeat`"},
            {"path": "input.repeat", "message": "invalid value: integer `500`, expected a value from 1 to 100"}
        ])
    );
    let (code, run) = api.post("run", &body).await;
    assert_eq!((code, &run["error"]), (400, &checked["error"]));
    assert_eq!(run["error"], "invalid input at `input`: missing field `message`");
    let (code, _) = api.post("runsync?wait=1000", &json!({"input": {"message": "hi", "repeat": 0}})).await;
    assert_eq!(code, 400);
    assert_eq!(api.run(json!({"message": "hi", "repeat": 2})).await.len(), 36, "a fitting input is queued");
    let (_, health) = api.get("health").await;
    assert_eq!(health["jobs"]["inQueue"], 1, "{health}");
}
