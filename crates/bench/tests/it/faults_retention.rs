//! Fault tests: what finished jobs keep. A finished job drops the input it can never hand out
//! again, retained results are bounded in bytes as well as in time, and the memory of expired
//! jobs goes back to the system (the endpoint's resident set, read from /proc).

use crate::common;

use common::endpoint_process::{EndpointConfig, EndpointProcess};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const KEY: &str = "retention-test-key";

/// Client and worker calls against an endpoint process (this test plays the worker).
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    fn new(ep: &EndpointProcess) -> Api {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        Api { http, url: ep.endpoint_url() }
    }

    async fn post(&self, path: &str, body: String) -> (u16, Value) {
        let r =
            self.http.post(format!("{}/{path}", self.url)).bearer_auth(KEY).body(body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}/{path}", self.url)).bearer_auth(KEY).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Takes up to `n` jobs as worker `w`.
    async fn take(&self, w: &str, n: usize) -> Vec<Value> {
        let (status, v) = self.get(&format!("job-take-batch/{w}?batch_size={n}")).await;
        if status == 204 {
            return Vec::new();
        }
        v.as_array().cloned().unwrap_or_default()
    }

    async fn done(&self, w: &str, id: &str, body: Value) {
        let (status, v) = self.post(&format!("job-done/{w}/{id}"), body.to_string()).await;
        assert_eq!(status, 200, "job-done {id}: {v}");
    }
}

/// Waits until `cond` holds or `secs` pass.
async fn until(secs: u64, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// 20 jobs with 5 MB inputs complete: the endpoint's resident set goes back to within 40 MiB of
/// where it started (it held all 100 MB for the whole 30 min retention before). A failed job
/// keeps its input: `/retry` hands it out again whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_drop_their_inputs() {
    let ep = EndpointProcess::spawn(&EndpointConfig { api_key: KEY.into(), ..Default::default() });
    let api = Api::new(&ep);
    let base = ep.rss_kib();
    let big = "x".repeat(5_000_000);
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, v) = api.post("run", json!({"input": {"n": i, "pad": big}}).to_string()).await;
        assert_eq!(status, 200, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let loaded = ep.rss_kib();
    let mut failed = None;
    let mut taken = 0;
    while taken < ids.len() {
        for job in api.take("w1", 8).await {
            taken += 1;
            let id = job["id"].as_str().unwrap();
            if failed.is_none() {
                failed = Some(id.to_string());
                api.done("w1", id, json!({"error": "boom"})).await;
            } else {
                api.done("w1", id, json!({"output": {"n": job["input"]["n"]}})).await;
            }
        }
    }
    // The failed one can be retried, with its whole input.
    let failed = failed.unwrap();
    let (status, v) = api.post(&format!("retry/{failed}"), String::new()).await;
    assert_eq!(status, 200, "{v}");
    let again = api.take("w2", 1).await;
    assert_eq!(again[0]["id"], json!(failed));
    assert_eq!(again[0]["input"]["pad"].as_str().map(str::len), Some(5_000_000));
    api.done("w2", &failed, json!({"output": 1})).await;
    drop(again);

    let mut after = 0;
    let back = until(10, async || {
        after = ep.rss_kib();
        after < base + 40 * 1024
    })
    .await;
    eprintln!(
        "20 x 5 MB inputs: RSS {:.1} MiB at start, {:.1} MiB queued, {:.1} MiB after they completed",
        mib(base),
        mib(loaded),
        mib(after)
    );
    assert!(back, "RSS stayed at {:.1} MiB (start {:.1} MiB)", mib(after), mib(base));
    for id in &ids {
        let (status, v) = api.get(&format!("status/{id}")).await;
        assert_eq!((status, v["status"].as_str()), (200, Some("COMPLETED")), "{v}");
    }
}

/// Finished jobs may hold at most 20 MB, at every moment: of 60 jobs with 1 MB outputs the
/// oldest are dropped early as new results arrive (404, and a log line says why), the latest
/// stay readable, and the resident set stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_results_are_bounded_in_bytes() {
    let ep = EndpointProcess::spawn(&EndpointConfig {
        api_key: KEY.into(),
        max_retained_bytes: Some(20_000_000),
        ..Default::default()
    });
    let api = Api::new(&ep);
    let out = "y".repeat(1_000_000);
    let mut ids = Vec::new();
    for i in 0..60 {
        let (_, v) = api.post("run", json!({"input": i}).to_string()).await;
        let id = v["id"].as_str().unwrap().to_string();
        let job = api.take("w1", 1).await;
        assert_eq!(job[0]["id"], json!(id));
        api.done("w1", &id, json!({"output": {"i": i, "pad": out}})).await;
        ids.push(id);
    }
    // The bound holds as each result arrives, not only at the next sweep: no waiting here.
    assert_eq!(
        api.get(&format!("status/{}", ids[0])).await.0,
        404,
        "the oldest result is kept past the bound"
    );
    let mut kept = 0;
    for id in &ids {
        if api.get(&format!("status/{id}")).await.0 == 200 {
            kept += 1;
        }
    }
    let (status, last) = api.get(&format!("status/{}", ids[59])).await;
    assert_eq!((status, &last["output"]["i"]), (200, &json!(59)));
    eprintln!("60 x 1 MB results, 20 MB bound: {kept} kept; RSS {:.1} MiB", mib(ep.rss_kib()));
    assert!((15..=20).contains(&kept), "{kept} of 60 kept under a 20 MB bound");
    let logged = until(10, async || ep.log().contains("retained")).await;
    assert!(logged, "the early drop is logged:\n{}", ep.log());
}

/// 10,000 jobs with 4 KB inputs are queued, purged, and expire after a 1 s retention: the
/// resident set goes back to within 30 MiB of where it started (it kept all of it before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_of_expired_jobs_goes_back() {
    const JOBS: usize = 10_000;
    let ep = EndpointProcess::spawn(&EndpointConfig {
        api_key: KEY.into(),
        run_retention_ms: Some(1000),
        max_queue: Some(JOBS),
        ..Default::default()
    });
    let api = std::sync::Arc::new(Api::new(&ep));
    let base = ep.rss_kib();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..JOBS).step_by(16) {
                let body = json!({"input": {"i": i, "text": "x".repeat(4000)}});
                let (status, v) = api.post("run", body.to_string()).await;
                assert_eq!(status, 200, "{v}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let queued_in = t0.elapsed();
    let loaded = ep.rss_kib();
    let (status, v) = api.post("purge-queue", String::new()).await;
    assert_eq!((status, &v["removed"]), (200, &json!(JOBS)), "{v}");
    let mut after = 0;
    let back = until(20, async || {
        after = ep.rss_kib();
        after < base + 30 * 1024
    })
    .await;
    eprintln!(
        "{JOBS} jobs (queued in {queued_in:?}): RSS {:.1} MiB at start, {:.1} MiB queued, {:.1} MiB after they expired",
        mib(base),
        mib(loaded),
        mib(after)
    );
    assert!(back, "RSS stayed at {:.1} MiB after the jobs expired (start {:.1} MiB)", mib(after), mib(base));
    let (_, h) = api.get("health").await;
    assert_eq!(h["jobs"]["inQueue"], json!(0), "{h}");
}
