//! Fault test: a worker holding more jobs than one ping URL can list (issue 15: above ~1,770
//! running jobs the ping URL passed 64 KB, could not be built, and the endpoint re-queued every
//! job). Real `runpod-bench-worker` process, real `runpod-local`, and between them a proxy that
//! refuses request lines over 8 KiB with `414` as nginx does by default.

use crate::common;

use common::http::{forward, serve, Reply};
use common::{endpoint, eventually, tail, Client, Secrets, WorkerProcess};
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The proxy's request-line limit (nginx's `large_client_header_buffers` default is 8k).
const PROXY_MAX_TARGET: usize = 8192;

/// 1,900 jobs of 10 s at once on one worker (concurrency 1,900; 70 KB of job ids), pings every
/// second, ping grace 5 s: every job completes on its first run, none is re-queued, every ping
/// fits the proxy's limit, every id is listed, and no log line of the worker carries the ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_running_jobs_stay_alive_in_pings() {
    const JOBS: usize = 1900;
    const SLEEP_MS: u64 = 10_000;
    let secrets = Secrets::new();
    let ep = endpoint(&secrets)
        .ping_interval_ms(1000)
        .ping_grace(Duration::from_secs(5))
        .take_wait(Duration::from_secs(2))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::new(&ep, &secrets.api_key);

    // The proxy: counts refused (too long) requests and records the ids every ping listed.
    let upstream = ep.base_url().to_string();
    let refused = Arc::new(AtomicUsize::new(0));
    let pings = Arc::new(AtomicUsize::new(0));
    let longest = Arc::new(AtomicUsize::new(0));
    let listed: Arc<Mutex<HashSet<String>>> = Default::default();
    let (rf, pg, lg, ls) = (refused.clone(), pings.clone(), longest.clone(), listed.clone());
    let http = reqwest::Client::new();
    let proxy = serve(move |req| {
        let (rf, pg, lg, ls, http, upstream) =
            (rf.clone(), pg.clone(), lg.clone(), ls.clone(), http.clone(), upstream.clone());
        async move {
            if req.uri.len() > PROXY_MAX_TARGET {
                rf.fetch_add(1, Ordering::SeqCst);
                return Reply::Answer(414, "text/html", "<html>414 Request-URI Too Large</html>".into());
            }
            if req.uri.contains("/ping/") {
                pg.fetch_add(1, Ordering::SeqCst);
                lg.fetch_max(req.uri.len(), Ordering::SeqCst);
                // The ids are UUIDs: nothing in them is percent-encoded.
                let query = req.uri.split_once('?').map_or("", |(_, q)| q);
                if let Some(ids) = query.split('&').find_map(|p| p.strip_prefix("job_id=")) {
                    ls.lock().unwrap().extend(ids.split(',').map(str::to_owned));
                }
            }
            forward(&http, &upstream, &req).await
        }
    })
    .await;
    let env: Vec<(String, String)> = ep
        .worker_env("w-many")
        .into_iter()
        .map(|(k, v)| (k, v.replace(ep.base_url(), &format!("http://{proxy}"))))
        .collect();
    let mut worker = WorkerProcess::spawn(env, JOBS);

    // First a few jobs, until a ping has listed them (the endpoint then holds the worker to
    // its lists, as for any worker that has run for a while); then the rest, from 8 tasks, so
    // that they all run at once.
    const FIRST: usize = 20;
    let started = Instant::now();
    let submit = |range: std::ops::Range<usize>, tasks: usize| {
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let (client, s3) = (client.clone(), secrets.s3_config());
                let range = range.clone();
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in range.skip(t).step_by(tasks) {
                        let body = json!({"input": {"sleep_ms": SLEEP_MS, "value": i}, "s3Config": s3});
                        ids.push((i, client.run(body).await));
                    }
                    ids
                })
            })
            .collect();
        async move {
            let mut ids = Vec::new();
            for h in handles {
                ids.extend(h.await.unwrap());
            }
            ids
        }
    };
    let mut ids = submit(0..FIRST, 1).await;
    let first_listed = eventually(Duration::from_secs(20), || {
        let listed = listed.clone();
        async move { !listed.lock().unwrap().is_empty() }
    })
    .await;
    assert!(first_listed, "no ping listed a job: {}", tail(&worker.log()));
    ids.extend(submit(FIRST..JOBS, 8).await);
    let submitted = started.elapsed();

    let health = || {
        let client = client.clone();
        async move { client.send("GET", "/health", None).await.1 }
    };
    let all_running = eventually(Duration::from_secs(30), || {
        let health = health();
        async move { health.await["jobs"]["inProgress"] == json!(JOBS) }
    })
    .await;
    assert!(all_running, "the {JOBS} jobs never ran at once: {}", health().await);
    let completed = eventually(Duration::from_secs(60), || {
        let health = health();
        async move { health.await["jobs"]["completed"] == json!(JOBS) }
    })
    .await;
    let took = started.elapsed();
    let h = health().await;
    let last = tail(&worker.log()).to_owned();
    assert!(completed, "not all {JOBS} jobs completed in 60 s: {h}\nworker log tail: {last}");
    assert_eq!(h["jobs"]["retried"], json!(0), "jobs were re-queued: {h}\nworker log tail: {last}");
    assert_eq!(h["jobs"]["failed"], json!(0), "{h}");
    for (i, id) in &ids {
        let v = client.status(id).await;
        assert_eq!(v["status"], "COMPLETED", "job {i}: {v}");
        assert_eq!(v["output"], json!({"value": i}), "job {i}: {v}");
    }

    assert_eq!(refused.load(Ordering::SeqCst), 0, "the worker sent requests over the proxy's 8 KiB limit");
    let listed = listed.lock().unwrap().clone();
    let missing = ids.iter().filter(|(_, id)| !listed.contains(id)).count();
    assert_eq!(missing, 0, "{missing} job(s) were never listed in a ping");

    let log = worker.log();
    let longest_line = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest_line < 2000, "a worker log line of {longest_line} bytes");
    assert!(!log.contains("job_id="), "the worker logged a ping URL");
    assert!(worker.alive(), "the worker died: {last}");
    eprintln!(
        "{JOBS} jobs of {SLEEP_MS} ms: submitted in {:.1} s, all completed {:.1} s after the first \
         submission; {} pings, longest {} bytes; longest worker log line {longest_line} bytes",
        submitted.as_secs_f64(),
        took.as_secs_f64(),
        pings.load(Ordering::SeqCst),
        longest.load(Ordering::SeqCst),
    );

    secrets.assert_absent_everywhere("the worker's output", &log, &client);
}
