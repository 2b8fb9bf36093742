//! Job ids are opaque strings: a job whose id holds `/`, `?`, `#`, `%`, spaces or non-ASCII
//! characters gets its progress, stream chunks and result delivered like any other (the worker
//! percent-encodes the id in the job-done/job-stream URLs and `X-Request-ID`), over real HTTP
//! against `runpod-local`.

use crate::common;

use common::*;
use futures::stream;
use runpod_protocol::JobRequest;
use runpod_worker::{handler_fn, stream_fn, Job, JobContext, Worker};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ODD_IDS: &[&str] = &[
    "a/b",
    "what?x=1",
    "frag#ment",
    "100%",
    "%2F",
    "with space",
    "ünïcödé-ジョブ",
    "semi;colon+plus&amp=eq",
    "trailing/",
    "back\\slash",
    "..x",
];

/// `GET /status/{id}` with the id percent-encoded as one path segment.
async fn status_of(ep: &runpod_local::LocalEndpoint, id: &str) -> Value {
    let mut url = url::Url::parse(&format!("{}/status/", ep.endpoint_url())).unwrap();
    url.path_segments_mut().unwrap().pop_if_empty().push(id);
    let r = client().get(url).bearer_auth(KEY).send().await.expect("endpoint answers");
    assert!(r.status().is_success(), "status of {id:?}: {}", r.status());
    r.json().await.unwrap()
}

async fn wait_done(ep: &runpod_local::LocalEndpoint, id: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status_of(ep, id).await;
        if !matches!(s["status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS")) {
            return s;
        }
        assert!(Instant::now() < until, "job {id:?} did not end in 30 s (result not delivered?): {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_of_jobs_with_odd_ids_are_delivered() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<Value>, ctx: JobContext| async move {
            ctx.progress(json!({"seen": ctx.job_id()}));
            Ok::<_, String>(json!({"id": job.id, "input": job.input}))
        }))
        .concurrency(4),
    );
    for (i, id) in ODD_IDS.iter().enumerate() {
        ep.queue_with_id(id, JobRequest::new(json!({"n": i}))).expect("queued");
    }
    for (i, id) in ODD_IDS.iter().enumerate() {
        let s = wait_done(&ep, id).await;
        assert_eq!(s["status"], "COMPLETED", "{id:?}: {s}");
        assert_eq!(s["id"], json!(id));
        assert_eq!(s["output"], json!({"id": id, "input": {"n": i}}), "{id:?}");
    }
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_chunks_of_jobs_with_odd_ids_are_delivered() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(
            stream_fn(|job: Job<u32>, _ctx: JobContext| {
                stream::iter((0..job.input).map(|i| Ok::<_, String>(json!({"i": i}))))
            })
            .aggregate(true),
        ),
    );
    let id = "stream/odd? #%ü";
    ep.queue_with_id(id, JobRequest::new(json!(3))).unwrap();
    let s = wait_done(&ep, id).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert_eq!(s["output"], json!([{"i": 0}, {"i": 1}, {"i": 2}]), "{s}");
    w.stop().await.unwrap();
}

#[tokio::test]
async fn queue_with_id_refuses_duplicates_and_bad_requests() {
    let ep = endpoint(|b| b).await;
    ep.queue_with_id("x/y", JobRequest::new(json!(1))).unwrap();
    assert_eq!(ep.queue_with_id("x/y", JobRequest::new(json!(2))).unwrap_err().status(), 409);
    assert_eq!(ep.queue_with_id("z", JobRequest::new(Value::Null)).unwrap_err().status(), 400);
    assert_eq!(status_of(&ep, "x/y").await["status"], "IN_QUEUE");
}
