//! Fault test: SIGTERM while jobs stream in (issue 15: a job-take in flight when the signal
//! came was dropped, and a job the endpoint had already handed over stayed IN_PROGRESS on a
//! worker that had exited 0, until the ping grace re-queued it). Real `runpod-bench-worker`
//! processes and a real `runpod-local` on loopback sockets.

use crate::common;

use common::{endpoint, eventually, tail, Client, Secrets, WorkerProcess};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 100 worker processes one after another, each SIGTERMed 150 to 450 ms after its start while
/// a producer keeps the queue fed: each exits 0, and once it has exited no job is IN_PROGRESS
/// (its jobs were run and delivered before the exit). At the end every job is COMPLETED,
/// none was re-queued, and the ping grace (120 s) is far longer than the test: a job orphaned
/// by an exit would still be IN_PROGRESS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stream_of_jobs_leaves_none_stuck() {
    const RESTARTS: usize = 100;
    const CONCURRENCY: usize = 4;
    let secrets = Secrets::new();
    let ep = endpoint(&secrets)
        .ping_interval_ms(500)
        .ping_grace(Duration::from_secs(120))
        .take_wait(Duration::from_secs(1))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::new(&ep, &secrets.api_key);
    let health = |client: &Client| {
        let client = client.clone();
        async move { client.send("GET", "/health", None).await.1 }
    };

    // The producer: keeps 10 to 40 short jobs queued until told to stop.
    let ids: Arc<Mutex<Vec<String>>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (client, ids, stop, s3) = (client.clone(), ids.clone(), stop.clone(), secrets.s3_config());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let queued = health(&client).await["jobs"]["inQueue"].as_u64().unwrap_or(0);
                if queued >= 10 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                for _ in 0..30 {
                    let n = ids.lock().unwrap().len();
                    let id = client.run(json!({"input": {"sleep_ms": 5, "value": n}, "s3Config": s3})).await;
                    ids.lock().unwrap().push(id);
                }
            }
        })
    };

    let started = Instant::now();
    // (restart, jobs it left IN_PROGRESS), and how many are IN_PROGRESS with no worker running.
    let mut stuck: Vec<(usize, u64)> = Vec::new();
    let mut left_behind = 0;
    let mut exits = Vec::new();
    for k in 0..RESTARTS {
        let mut worker = WorkerProcess::spawn(ep.worker_env(&format!("w-term-{k}")), CONCURRENCY);
        tokio::time::sleep(Duration::from_millis(150 + (k as u64 * 37) % 300)).await;
        worker.signal(libc::SIGTERM);
        let t0 = Instant::now();
        let exit = tokio::time::timeout(Duration::from_secs(30), worker.child.wait())
            .await
            .unwrap_or_else(|_| panic!("worker {k} did not exit within 30 s of SIGTERM"))
            .unwrap();
        exits.push(t0.elapsed());
        assert_eq!(exit.code(), Some(0), "worker {k}: exit status {exit:?}; log: {}", tail(&worker.log()));
        // No worker runs now: whatever is IN_PROGRESS was left behind by the one that exited.
        let in_progress = health(&client).await["jobs"]["inProgress"].as_u64().unwrap();
        if in_progress > left_behind {
            stuck.push((k, in_progress - left_behind));
            left_behind = in_progress;
        }
        secrets.assert_absent("a worker's output", &worker.log());
    }
    let churn = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    producer.await.unwrap();

    // A last worker takes what is still queued; every job must then end COMPLETED well before
    // the ping grace could re-queue an orphan.
    let ids = ids.lock().unwrap().clone();
    let last = WorkerProcess::spawn(ep.worker_env("w-last"), CONCURRENCY);
    let all_done = eventually(Duration::from_secs(30), || {
        let client = client.clone();
        let n = ids.len();
        async move {
            let h = client.send("GET", "/health", None).await.1;
            h["jobs"]["completed"] == json!(n) && h["jobs"]["inProgress"] == json!(0)
        }
    })
    .await;
    let h = health(&client).await;
    let mut not_completed = Vec::new();
    for id in &ids {
        let v = client.status(id).await;
        if v["status"] != "COMPLETED" {
            not_completed.push(v);
        }
    }
    exits.sort();
    eprintln!(
        "{RESTARTS} SIGTERMs in {:.1} s, {} jobs; exit after SIGTERM min/median/max {:.0}/{:.0}/{:.0} ms; \
         {left_behind} job(s) left IN_PROGRESS by {} exit(s)",
        churn.as_secs_f64(),
        ids.len(),
        exits[0].as_secs_f64() * 1000.0,
        exits[exits.len() / 2].as_secs_f64() * 1000.0,
        exits[exits.len() - 1].as_secs_f64() * 1000.0,
        stuck.len(),
    );
    assert!(stuck.is_empty(), "jobs left IN_PROGRESS by an exited worker (restart, jobs): {stuck:?}");
    assert!(
        all_done && not_completed.is_empty(),
        "{} of {} jobs not COMPLETED: {:?}; {h}",
        not_completed.len(),
        ids.len(),
        &not_completed[..not_completed.len().min(5)]
    );
    assert_eq!(h["jobs"]["retried"], json!(0), "{h}");
    assert_eq!(h["jobs"]["failed"], json!(0), "{h}");
    assert!(ids.len() >= RESTARTS, "the stream was too thin: {} jobs", ids.len());

    secrets.assert_absent_everywhere("the last worker's output", &last.log(), &client);
}
