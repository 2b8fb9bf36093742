//! A job's life over real HTTP: queue, take, progress, stream, result, cancel, retry, purge.

use crate::common;

use common::Api;
use runpod_local::{LocalEndpoint, RateLimits};
use serde_json::json;
use std::time::{Duration, Instant};

async fn endpoint() -> (LocalEndpoint, Api) {
    let ep = LocalEndpoint::builder()
        .api_key("k")
        .take_wait(Duration::from_secs(2))
        .stream_wait(Duration::from_millis(200))
        .rate_limits(RateLimits::none())
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let api = Api::new(&ep, Some("k"));
    (ep, api)
}

#[tokio::test]
async fn run_take_progress_done_status() {
    let (ep, api) = endpoint().await;
    let id = api.run(json!({"n": 3})).await;
    let (_, st) = api.status(&id).await;
    assert_eq!(st["status"], "IN_QUEUE");

    let (code, job) = api.wget("job-take/w1?gpu=local&job_in_progress=0").await;
    assert_eq!(code, 200, "{job}");
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["input"], json!({"n": 3}));

    let st = api.wait_status(&id, "IN_PROGRESS").await;
    assert_eq!(st["workerId"], "w1");
    assert!(st["delayTime"].is_u64(), "{st}");

    let (code, _) = api
        .wpost(
            &format!("job-done/w1/{id}?gpu=local&isStream=false"),
            &json!({"status": "IN_PROGRESS", "output": "half"}),
        )
        .await;
    assert_eq!(code, 200);
    let (_, st) = api.status(&id).await;
    assert_eq!(st["status"], "IN_PROGRESS");
    assert_eq!(st["output"], "half");

    let (code, _) = api
        .wpost(&format!("job-done/w1/{id}?gpu=local&isStream=false"), &json!({"output": {"sum": 6}}))
        .await;
    assert_eq!(code, 200);
    let (_, st) = api.status(&id).await;
    assert_eq!(st["status"], "COMPLETED");
    assert_eq!(st["output"], json!({"sum": 6}));
    assert_eq!(st["workerId"], "w1");
    assert!(st["executionTime"].is_u64() && st["delayTime"].is_u64(), "{st}");

    // A progress post after the result does not reopen the job.
    let (code, body) = api
        .wpost(
            &format!("job-done/w1/{id}?isStream=false"),
            &json!({"status": "IN_PROGRESS", "output": "late"}),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(api.status(&id).await.1["status"], "COMPLETED");
    ep.shutdown().await;
}

#[tokio::test]
async fn failed_result_and_retry() {
    let (_ep, api) = endpoint().await;
    let id = api.run(json!(1)).await;
    api.wget("job-take/w1").await;
    let (code, _) = api.wpost(&format!("job-done/w1/{id}?isStream=false"), &json!({"error": "boom"})).await;
    assert_eq!(code, 200);
    let st = api.wait_status(&id, "FAILED").await;
    assert_eq!(st["error"], "boom");

    let (code, body) = api.post(&format!("retry/{id}"), &json!({})).await;
    assert_eq!((code, &body["status"]), (200, &json!("IN_QUEUE")), "{body}");
    let (_, job) = api.wget("job-take/w2").await;
    assert_eq!(job["id"], id.as_str());
    api.wpost(&format!("job-done/w2/{id}"), &json!({"output": 2})).await;
    let st = api.wait_status(&id, "COMPLETED").await;
    assert!(st.get("error").is_none(), "{st}");

    let (code, body) = api.post(&format!("retry/{id}"), &json!({})).await;
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("COMPLETED"), "{body}");
    let (_, h) = api.get("health").await;
    assert_eq!(h["jobs"]["retried"], 1);
    assert_eq!(h["jobs"]["failed"], 1);
    assert_eq!(h["jobs"]["completed"], 1);
}

#[tokio::test]
async fn waiting_take_gets_a_new_job_within_milliseconds() {
    let (_ep, api) = endpoint().await;
    let api = std::sync::Arc::new(api);
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        let taker = {
            let api = api.clone();
            tokio::spawn(async move {
                let (code, job) = api.wget("job-take/w1?job_in_progress=0").await;
                (code, job, Instant::now())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await; // the take is now waiting
        let sent = Instant::now();
        let id = api.run(json!(i)).await;
        let (code, job, got) = taker.await.unwrap();
        assert_eq!(code, 200);
        assert_eq!(job["id"], id.as_str());
        worst = worst.max(got - sent);
        api.wpost(&format!("job-done/w1/{id}"), &json!({"output": i})).await;
    }
    eprintln!("handover: worst {worst:?} from /run sent to job-take answered");
    assert!(worst < Duration::from_millis(100), "handover took {worst:?}");
}

#[tokio::test]
async fn empty_take_answers_204_after_the_hold() {
    let ep =
        LocalEndpoint::builder().take_wait(Duration::from_millis(300)).bind("127.0.0.1:0").await.unwrap();
    let api = Api::new(&ep, None);
    let t = Instant::now();
    let (code, body) = api.wget("job-take/w1").await;
    assert_eq!((code, body), (204, serde_json::Value::Null));
    assert!(t.elapsed() >= Duration::from_millis(250), "{:?}", t.elapsed());
    let (code, _) = api.wget("job-stop/w1").await;
    assert_eq!(code, 204);
}

#[tokio::test]
async fn batch_take() {
    let (_ep, api) = endpoint().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(api.run(json!(i)).await);
    }
    let (code, jobs) = api.wget("job-take-batch/w1?gpu=local&batch_size=2&job_in_progress=0").await;
    assert_eq!(code, 200);
    let got: Vec<&str> = jobs.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(got, vec![ids[0].as_str(), ids[1].as_str()]);
    let (_, jobs) = api.wget("job-take-batch/w1?batch_size=5").await;
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["id"], ids[2].as_str());
}

#[tokio::test]
async fn runsync_returns_the_result_or_the_current_status() {
    let (_ep, api) = endpoint().await;
    let api = std::sync::Arc::new(api);
    let worker = {
        let api = api.clone();
        tokio::spawn(async move {
            let (_, job) = api.wget("job-take/w1").await;
            let id = job["id"].as_str().unwrap().to_owned();
            tokio::time::sleep(Duration::from_millis(100)).await;
            api.wpost(&format!("job-done/w1/{id}"), &json!({"output": job["input"]["x"]})).await;
        })
    };
    let (code, st) = api.post("runsync", &json!({"input": {"x": "hi"}})).await;
    assert_eq!(code, 200);
    assert_eq!(st["status"], "COMPLETED", "{st}");
    assert_eq!(st["output"], "hi");
    assert!(st["id"].as_str().unwrap().starts_with("sync-"));
    assert!(st["executionTime"].as_u64().unwrap() >= 100, "{st}");
    worker.await.unwrap();

    // No worker: answered after ?wait= with the current status.
    let t = Instant::now();
    let (code, st) = api.post("runsync?wait=1000", &json!({"input": 1})).await;
    assert_eq!(code, 200);
    assert_eq!(st["status"], "IN_QUEUE");
    assert!(t.elapsed() >= Duration::from_millis(900));
    let (code, body) = api.post("runsync?wait=5", &json!({"input": 1})).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("wait"));
}

#[tokio::test]
async fn stream_returns_each_chunk_once_in_order() {
    let (_ep, api) = endpoint().await;
    let id = api.run(json!("s")).await;
    api.wget("job-take/w1").await;
    for i in 0..3 {
        let (code, _) =
            api.wpost(&format!("job-stream/w1/{id}?gpu=local&isStream=false"), &json!({"output": i})).await;
        assert_eq!(code, 200);
    }
    let (_, s) = api.get(&format!("stream/{id}")).await;
    assert_eq!(s["status"], "IN_PROGRESS");
    assert_eq!(s["stream"], json!([{"output": 0}, {"output": 1}, {"output": 2}]));
    api.wpost(&format!("job-stream/w1/{id}"), &json!({"output": 3})).await;
    api.wpost(&format!("job-done/w1/{id}?isStream=true"), &json!({"output": [0, 1, 2, 3]})).await;
    let (_, s) = api.get(&format!("stream/{id}")).await;
    assert_eq!(s["status"], "COMPLETED");
    assert_eq!(s["stream"], json!([{"output": 3}]));
    let (_, s) = api.get(&format!("stream/{id}")).await;
    assert_eq!(s["stream"], json!([]));
    let (_, st) = api.status(&id).await;
    assert_eq!(st["output"], json!([0, 1, 2, 3]));
}

#[tokio::test]
async fn stream_waits_for_the_next_chunk() {
    let (_ep, api) = endpoint().await;
    let ep2 = LocalEndpoint::builder().stream_wait(Duration::from_secs(5)).bind("127.0.0.1:0").await.unwrap();
    let api2 = std::sync::Arc::new(Api::new(&ep2, None));
    drop(api);
    let id = api2.run(json!(1)).await;
    api2.wget("job-take/w1").await;
    let poster = {
        let (api, id) = (api2.clone(), id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            api.wpost(&format!("job-stream/w1/{id}"), &json!({"output": "x"})).await;
        })
    };
    let t = Instant::now();
    let (_, s) = api2.get(&format!("stream/{id}")).await;
    assert_eq!(s["stream"], json!([{"output": "x"}]));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    poster.await.unwrap();
}

#[tokio::test]
async fn cancel_queued_and_running_jobs() {
    let (_ep, api) = endpoint().await;
    let queued = api.run(json!("q")).await;
    let (code, st) = api.post(&format!("cancel/{queued}"), &json!({})).await;
    assert_eq!((code, &st["status"]), (200, &json!("CANCELLED")));

    let running = api.run(json!("r")).await;
    let (_, job) = api.wget("job-take/w1").await;
    assert_eq!(job["id"], running.as_str(), "the cancelled job left the queue");
    let api = std::sync::Arc::new(api);
    let stop = {
        let api = api.clone();
        tokio::spawn(async move { api.wget("job-stop/w1?gpu=local").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (code, st) = api.post(&format!("cancel/{running}"), &json!({})).await;
    assert_eq!((code, &st["status"]), (200, &json!("CANCELLED")));
    let (code, stops) = stop.await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(stops, json!({"jobsToStop": [running]}));
    // Its late result is refused and the job stays cancelled.
    let (code, _) = api.wpost(&format!("job-done/w1/{running}"), &json!({"output": 1})).await;
    assert_eq!(code, 409);
    assert_eq!(api.status(&running).await.1["status"], "CANCELLED");
    // While its pings still list the job, the stop is announced again (a stop that reached the
    // worker before it started the job is not lost).
    api.wget(&format!("ping/w1?job_id={running}&runpod_version=1.12.0")).await;
    assert_eq!(api.wget("job-stop/w1").await, (200, json!({"jobsToStop": [running]})));
    let other = api.run(json!("o")).await;
    api.wget("job-take/w2").await;
    api.wget(&format!("ping/w1?job_id={other}")).await;
    assert_eq!(api.wget("job-stop/w1").await, (200, json!({"jobsToStop": [other.clone()]})), "w2's job");
    api.wget(&format!("ping/w2?job_id={other}")).await;
    let (code, _) = api.wget("job-stop/w2").await;
    assert_eq!(code, 204, "w2 runs it rightly");
}

#[tokio::test]
async fn purge_and_health() {
    let (_ep, api) = endpoint().await;
    let running = api.run(json!(0)).await;
    api.wget("job-take/w1").await;
    for i in 0..3 {
        api.run(json!(i)).await;
    }
    let (_, h) = api.get("health").await;
    assert_eq!(h["jobs"]["inQueue"], 3);
    assert_eq!(h["jobs"]["inProgress"], 1);
    assert_eq!(h["workers"]["running"], 1);
    let (code, p) = api.post("purge-queue", &json!({})).await;
    assert_eq!(code, 200);
    assert_eq!(p, json!({"removed": 3, "status": "completed"}));
    let (_, h) = api.get("health").await;
    assert_eq!(h["jobs"]["inQueue"], 0);
    assert_eq!(api.status(&running).await.1["status"], "IN_PROGRESS");
}

#[tokio::test]
async fn shutdown_ends_long_polls_and_stops_serving() {
    let ep = LocalEndpoint::builder().take_wait(Duration::from_secs(60)).bind("127.0.0.1:0").await.unwrap();
    let api = std::sync::Arc::new(Api::new(&ep, None));
    let take = {
        let api = api.clone();
        tokio::spawn(async move { api.wget("job-take/w1").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    ep.shutdown().await;
    assert_eq!(take.await.unwrap().0, 204, "the waiting take is answered");
    assert!(t.elapsed() < Duration::from_secs(2), "shutdown took {:?}", t.elapsed());
    let refused = api.http.get(format!("{}/health", api.url)).send().await;
    assert!(refused.is_err(), "still serving after shutdown");
}

#[tokio::test]
async fn dropping_the_endpoint_stops_it() {
    let ep = LocalEndpoint::builder().bind("127.0.0.1:0").await.unwrap();
    let api = Api::new(&ep, None);
    assert_eq!(api.get("health").await.0, 200);
    drop(ep);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(api.http.get(format!("{}/health", api.url)).send().await.is_err());
}

#[tokio::test]
async fn worker_answers_are_application_json() {
    let (_ep, api) = endpoint().await;
    api.run(json!(1)).await;
    api.run(json!(2)).await;
    for path in ["job-take/w1", "job-take-batch/w1?batch_size=3"] {
        let r =
            api.http.get(format!("{}/{path}", api.url)).header("Authorization", "k").send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "application/json", "the Python SDK insists on it");
    }
}

#[test]
fn worker_env_has_the_platform_template_form() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ep =
            LocalEndpoint::builder().api_key("k").ping_interval_ms(2000).bind("127.0.0.1:0").await.unwrap();
        let env: std::collections::HashMap<String, String> = ep.worker_env("w9").into_iter().collect();
        let api = ep.endpoint_url();
        assert_eq!(env["RUNPOD_WEBHOOK_GET_JOB"], format!("{api}/job-take/$ID?gpu=local"));
        assert_eq!(env["RUNPOD_WEBHOOK_POST_OUTPUT"], format!("{api}/job-done/$RUNPOD_POD_ID/$ID?gpu=local"));
        assert_eq!(
            env["RUNPOD_WEBHOOK_POST_STREAM"],
            format!("{api}/job-stream/$RUNPOD_POD_ID/$ID?gpu=local")
        );
        assert_eq!(env["RUNPOD_WEBHOOK_PING"], format!("{api}/ping/$RUNPOD_POD_ID"));
        assert_eq!(env["RUNPOD_PING_INTERVAL"], "2000");
        assert_eq!(env["RUNPOD_AI_API_KEY"], "k");
        assert_eq!(env["RUNPOD_POD_ID"], "w9");
        assert_eq!(env["RUNPOD_ENDPOINT_ID"], "local");
        assert!(env.contains_key("RUNPOD_POD_HOSTNAME") && env.contains_key("RUNPOD_GPU_COUNT"));
        assert_eq!(ep.endpoint_url(), format!("{}/v2/local", ep.base_url()));
        assert!(ep.base_url().starts_with("http://127.0.0.1:") && !ep.base_url().ends_with('/'));
        assert_eq!(ep.local_addr().port().to_string(), ep.base_url().rsplit(':').next().unwrap());
    });
}

#[tokio::test]
async fn many_jobs_through_concurrent_workers() {
    let (_ep, api) = endpoint().await;
    let api = std::sync::Arc::new(api);
    const JOBS: usize = 400;
    let t = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let api = api.clone();
            tokio::spawn(async move {
                let mut done = 0;
                loop {
                    let (code, jobs) = api.wget(&format!("job-take-batch/w{w}?batch_size=8")).await;
                    if code == 204 {
                        return done;
                    }
                    for job in jobs.as_array().unwrap() {
                        let id = job["id"].as_str().unwrap();
                        let (code, _) =
                            api.wpost(&format!("job-done/w{w}/{id}"), &json!({"output": job["input"]})).await;
                        assert_eq!(code, 200);
                        done += 1;
                    }
                }
            })
        })
        .collect();
    let mut ids = Vec::new();
    for i in 0..JOBS {
        ids.push(api.run(json!(i)).await);
    }
    for (i, id) in ids.iter().enumerate() {
        let st = api.wait_status(id, "COMPLETED").await;
        assert_eq!(st["output"], i);
    }
    let elapsed = t.elapsed();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    assert_eq!(total, JOBS, "each job handed out exactly once");
    eprintln!(
        "{JOBS} jobs through 4 workers in {elapsed:?}: {:.0} jobs/s",
        JOBS as f64 / elapsed.as_secs_f64()
    );
}
