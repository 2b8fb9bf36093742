//! End-to-end: the runtime against a real `runpod-local` endpoint over HTTP.

use crate::common;

use common::*;
use futures::stream;
use runpod_worker::{handler_fn, stream_fn, CancelReason, Job, JobContext, Worker};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Sum {
    sum: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_job_reports_progress_then_completes() {
    let ep = endpoint(|b| b).await;
    let release = Arc::new(Notify::new());
    let r = release.clone();
    let w = spawn(
        &ep,
        Worker::new(handler_fn(move |job: Job<Add>, ctx: JobContext| {
            let r = r.clone();
            async move {
                ctx.progress(json!({"step": "adding"}));
                r.notified().await;
                Ok::<_, String>(Sum { sum: job.input.a + job.input.b })
            }
        })),
    );
    let id = run(&ep, json!({"input": {"a": 2, "b": 40}})).await;
    let s = wait_status(&ep, &id, 20, |s| s["output"] == json!({"step": "adding"})).await;
    assert_eq!(s["status"], "IN_PROGRESS");
    release.notify_one();
    let s = wait_final(&ep, &id, 20).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert_eq!(s["output"], json!({"sum": 42}));
    assert_eq!(s["workerId"], "w1");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsync_round_trip() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<Add>, _ctx: JobContext| async move {
            Ok::<_, String>(Sum { sum: job.input.a * job.input.b })
        })),
    );
    let s = post(&ep, "runsync", json!({"input": {"a": 6, "b": 7}})).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert_eq!(s["output"]["sum"], 42);
    assert!(s["id"].as_str().unwrap().starts_with("sync-"));
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_the_field_and_the_worker_goes_on() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<Add>, _ctx: JobContext| async move {
            Ok::<_, String>(Sum { sum: job.input.a + job.input.b })
        })),
    );
    let bad = run(&ep, json!({"input": {"a": 1, "b": "two"}})).await;
    let missing = run(&ep, json!({"input": {"a": 1}})).await;
    let good = run(&ep, json!({"input": {"a": 1, "b": 2}})).await;
    let s = wait_final(&ep, &bad, 20).await;
    assert_eq!(s["status"], "FAILED", "{s}");
    let r = report(&s);
    assert_eq!(r["error_type"], "InputError");
    let msg = r["error_message"].as_str().unwrap();
    assert!(msg.contains("input.b") && msg.contains("expected i64"), "{msg}");
    assert_eq!(r["worker_id"], "w1");
    let s = wait_final(&ep, &missing, 20).await;
    assert!(report(&s)["error_message"].as_str().unwrap().contains("missing field `b`"), "{s}");
    let s = wait_final(&ep, &good, 20).await;
    assert_eq!(s["output"]["sum"], 3, "{s}");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_panics_fail_the_job_only() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<String>, _ctx: JobContext| async move {
            match job.input.as_str() {
                "err" => Err(anyhow::anyhow!("disk on fire").context("loading the model")),
                "panic" => panic!("index out of range in the tokenizer"),
                "dict-error" => Ok(json!({"error": "returned an error key", "partial": 1})),
                "refresh" => Ok(json!({"refresh_worker": true, "ok": true})),
                other => Ok(json!(other)),
            }
        })),
    );
    let err = run(&ep, json!({"input": "err"})).await;
    let panic = run(&ep, json!({"input": "panic"})).await;
    let dict = run(&ep, json!({"input": "dict-error"})).await;
    let refresh = run(&ep, json!({"input": "refresh"})).await;
    let fine = run(&ep, json!({"input": "fine"})).await;

    let s = wait_final(&ep, &err, 20).await;
    assert_eq!(s["status"], "FAILED");
    let r = report(&s);
    assert_eq!(r["error_type"], "Error");
    assert_eq!(r["error_message"], "loading the model");
    let tb = r["error_traceback"].as_str().unwrap();
    assert!(tb.starts_with("loading the model\n\nCaused by:\n") && tb.contains("disk on fire"), "{tb}");
    // The Python SDK version whose protocol the worker speaks (docs/worker-api.md).
    assert_eq!(r["runpod_version"], "1.12.0");

    let s = wait_final(&ep, &panic, 20).await;
    assert_eq!(s["status"], "FAILED");
    let r = report(&s);
    assert_eq!(r["error_type"], "Panic");
    assert!(r["error_message"].as_str().unwrap().contains("index out of range in the tokenizer"), "{r}");

    let s = wait_final(&ep, &dict, 20).await;
    assert_eq!(s["status"], "FAILED", "{s}");
    assert_eq!(s["error"], "returned an error key");

    let s = wait_final(&ep, &refresh, 20).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert_eq!(s["output"], json!({"ok": true}));

    let s = wait_final(&ep, &fine, 20).await;
    assert_eq!(s["output"], "fine");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_handler_posts_chunks_in_order() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(
            stream_fn(|job: Job<u32>, _ctx: JobContext| {
                let n = job.input;
                stream::iter((0..n).map(move |i| {
                    if i == 99 {
                        Err("chunk 99 is cursed")
                    } else {
                        Ok(json!({"i": i}))
                    }
                }))
            })
            .aggregate(true),
        ),
    );
    let id = run(&ep, json!({"input": 20})).await;
    let s = wait_final(&ep, &id, 20).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    let want: Vec<Value> = (0..20).map(|i| json!({"i": i})).collect();
    assert_eq!(s["output"], json!(want));
    let st = get(&ep, &format!("stream/{id}")).await;
    let got: Vec<Value> = st["stream"].as_array().unwrap().iter().map(|c| c["output"].clone()).collect();
    assert_eq!(got, want);

    // A stream that fails part-way: the chunks before are delivered, the job fails with the error.
    let id = run(&ep, json!({"input": 120})).await;
    let s = wait_final(&ep, &id, 20).await;
    assert_eq!(s["status"], "FAILED", "{s}");
    assert!(report(&s)["error_message"].as_str().unwrap().contains("chunk 99 is cursed"), "{s}");
    let st = get(&ep, &format!("stream/{id}")).await;
    assert_eq!(st["stream"].as_array().unwrap().len(), 99, "{st}");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctx_stream_and_progress_all_arrive_before_the_result() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<u32>, ctx: JobContext| async move {
            for i in 0..job.input {
                ctx.progress(json!({"progress": i}));
                if i % 10 == 0 {
                    ctx.stream(json!(i)).await.map_err(|e| e.to_string())?;
                }
            }
            // Too large for one chunk: a clear error, not a silent drop.
            let big = "x".repeat(1024 * 1024 + 1);
            let too_big = ctx.stream(&big).await.unwrap_err();
            Ok::<_, String>(json!({"done": true, "too_big": too_big.to_string()}))
        })),
    );
    let id = run(&ep, json!({"input": 200})).await;
    let s = wait_final(&ep, &id, 30).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    assert_eq!(s["output"]["done"], true, "a late progress post overwrote the result: {s}");
    assert!(s["output"]["too_big"].as_str().unwrap().contains("over the 1048576-byte limit"), "{s}");
    // Still COMPLETED a moment later: no progress post arrived after the result.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = status(&ep, &id).await;
    assert_eq!(s["status"], "COMPLETED", "{s}");
    let st = get(&ep, &format!("stream/{id}")).await;
    let got: Vec<Value> = st["stream"].as_array().unwrap().iter().map(|c| c["output"].clone()).collect();
    assert_eq!(got, (0..20).map(|i| json!(i * 10)).collect::<Vec<_>>());
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded_and_slots_refill_at_once() {
    let ep = endpoint(|b| b).await;
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (now.clone(), peak.clone());
    let w = spawn(
        &ep,
        Worker::new(handler_fn(move |_job: Job<Value>, _ctx: JobContext| {
            let (n, p) = (n.clone(), p.clone());
            async move {
                let c = n.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(c, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(400)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(c)
            }
        }))
        .concurrency(3),
    );
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..9 {
        ids.push(run(&ep, json!({"input": i})).await);
    }
    for id in &ids {
        assert_eq!(wait_final(&ep, id, 30).await["status"], "COMPLETED");
    }
    let took = started.elapsed();
    assert_eq!(peak.load(Ordering::SeqCst), 3, "never more than 3 at once, and 3 reached");
    // 9 jobs of 400 ms, 3 at a time: 1.2 s of work; slots refill without sleeps.
    assert!(took < Duration::from_millis(3000), "took {took:?}");
    w.stop().await.unwrap();
}

async fn drain(concurrency: usize, jobs: usize) -> Duration {
    let ep = endpoint(|b| b).await;
    let mut ids = Vec::new();
    for i in 0..jobs {
        ids.push(run(&ep, json!({"input": i})).await);
    }
    let started = Instant::now();
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<u32>, _ctx: JobContext| async move { Ok::<_, String>(job.input) }))
            .concurrency(concurrency),
    );
    for id in &ids {
        assert_eq!(wait_final(&ep, id, 60).await["status"], "COMPLETED");
    }
    let took = started.elapsed();
    w.stop().await.unwrap();
    eprintln!(
        "{jobs} no-op jobs at concurrency {concurrency}: {took:?} ({:.0} jobs/s, from worker start)",
        jobs as f64 / took.as_secs_f64()
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_no_op_jobs_fast() {
    // The Python SDK: ~1 job/s at concurrency 1, ~8 jobs/s at 8 (docs/python-sdk.md).
    assert!(drain(1, 100).await < Duration::from_secs(10));
    assert!(drain(8, 200).await < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_fn_decides_the_limit() {
    let ep = endpoint(|b| b).await;
    let peak = Arc::new(AtomicUsize::new(0));
    let now = Arc::new(AtomicUsize::new(0));
    let (n, p) = (now.clone(), peak.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let w = spawn(
        &ep,
        Worker::new(handler_fn(move |_job: Job<u32>, _ctx: JobContext| {
            let (n, p) = (n.clone(), p.clone());
            async move {
                p.fetch_max(n.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        }))
        .concurrency_fn(move |current| {
            c.fetch_add(1, Ordering::SeqCst);
            (current + 1).min(2)
        }),
    );
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(run(&ep, json!({"input": i})).await);
    }
    for id in &ids {
        assert_eq!(wait_final(&ep, id, 20).await["status"], "COMPLETED");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    assert!(calls.load(Ordering::SeqCst) >= 3);
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cancel_stops_the_handler_and_the_worker_goes_on() {
    let ep = endpoint(|b| b).await;
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let seen = saw_cancel.clone();
    let w = spawn(
        &ep,
        Worker::new(handler_fn(move |job: Job<String>, ctx: JobContext| {
            let seen = seen.clone();
            async move {
                if job.input == "forever" {
                    // CPU-style work on a blocking thread that checks the token between steps.
                    let token = ctx.cancellation_token();
                    let c = ctx.clone();
                    tokio::task::spawn_blocking(move || {
                        while !token.is_cancelled() {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        seen.store(c.cancel_reason() == Some(CancelReason::Stopped), Ordering::SeqCst);
                    })
                    .await
                    .unwrap();
                }
                Ok::<_, String>(job.input)
            }
        })),
    );
    let id = run(&ep, json!({"input": "forever"})).await;
    wait_status(&ep, &id, 20, |s| s["status"] == "IN_PROGRESS").await;
    post(&ep, &format!("cancel/{id}"), json!({})).await;
    let s = wait_final(&ep, &id, 20).await;
    assert_eq!(s["status"], "CANCELLED", "{s}");
    let until = Instant::now() + Duration::from_secs(10);
    while !saw_cancel.load(Ordering::SeqCst) {
        assert!(Instant::now() < until, "the handler never saw the stop signal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = run(&ep, json!({"input": "next"})).await;
    assert_eq!(wait_final(&ep, &next, 20).await["output"], "next");
    assert_eq!(status(&ep, &id).await["status"], "CANCELLED");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_timeout_cancels_the_job() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|_job: Job<Value>, ctx: JobContext| async move {
            ctx.cancelled().await;
            Ok::<_, String>("should not be reported")
        })),
    );
    let started = Instant::now();
    let id = run(&ep, json!({"input": {}, "policy": {"executionTimeout": 5500}})).await;
    let s = wait_final(&ep, &id, 30).await;
    assert_eq!(s["status"], "TIMED_OUT", "{s}");
    assert!(started.elapsed() < Duration::from_secs(12));
    let next = run(&ep, json!({"input": {}, "policy": {"executionTimeout": 5500}})).await;
    wait_status(&ep, &next, 20, |s| s["status"] == "IN_PROGRESS").await;
    post(&ep, &format!("cancel/{next}"), json!({})).await;
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_handler_thread_stalls_neither_the_job_loop_nor_other_jobs() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<String>, _ctx: JobContext| async move {
            if job.input == "block" {
                // The mistake the runtime must survive: blocking CPU work inside an async fn.
                std::thread::sleep(Duration::from_secs(3));
            }
            Ok::<_, String>(job.input)
        }))
        .concurrency(2)
        .handler_threads(2),
    );
    let blocked = run(&ep, json!({"input": "block"})).await;
    wait_status(&ep, &blocked, 20, |s| s["status"] == "IN_PROGRESS").await;
    let started = Instant::now();
    let quick = run(&ep, json!({"input": "quick"})).await;
    let s = wait_final(&ep, &quick, 20).await;
    let took = started.elapsed();
    assert_eq!(s["status"], "COMPLETED");
    assert_eq!(
        status(&ep, &blocked).await["status"],
        "IN_PROGRESS",
        "the quick job ran while the other blocked"
    );
    assert!(took < Duration::from_millis(1500), "quick job took {took:?}");
    assert_eq!(wait_final(&ep, &blocked, 20).await["status"], "COMPLETED");
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_result_fails_with_a_size_error() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<usize>, _ctx: JobContext| async move {
            Ok::<_, String>("x".repeat(job.input))
        }))
        .max_result_bytes(10_000),
    );
    let big = run(&ep, json!({"input": 20_000})).await;
    let small = run(&ep, json!({"input": 10})).await;
    let s = wait_final(&ep, &big, 20).await;
    assert_eq!(s["status"], "FAILED");
    let r = report(&s);
    assert_eq!(r["error_type"], "OutputTooLarge");
    assert!(r["error_message"].as_str().unwrap().contains("10000-byte limit"), "{r}");
    assert_eq!(wait_final(&ep, &small, 20).await["output"], "x".repeat(10));
    w.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_jobs_finish_and_delivers_them() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<u64>, ctx: JobContext| async move {
            tokio::time::sleep(Duration::from_millis(job.input)).await;
            ctx.progress("almost");
            Ok::<_, String>(job.input)
        }))
        .concurrency(2)
        .shutdown_grace(Duration::from_secs(5)),
    );
    let a = run(&ep, json!({"input": 1500})).await;
    let b = run(&ep, json!({"input": 800})).await;
    wait_status(&ep, &a, 20, |s| s["status"] == "IN_PROGRESS").await;
    wait_status(&ep, &b, 20, |s| s["status"] == "IN_PROGRESS").await;
    let started = Instant::now();
    w.stop().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1000), "returned before the jobs ended");
    // Results were delivered before run() returned.
    assert_eq!(status(&ep, &a).await["status"], "COMPLETED");
    assert_eq!(status(&ep, &b).await["output"], 800);
    // And no more jobs are taken.
    let c = run(&ep, json!({"input": 1})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&ep, &c).await["status"], "IN_QUEUE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_past_the_grace_period_are_failed_clearly() {
    let ep = endpoint(|b| b).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|_job: Job<Value>, _ctx: JobContext| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, String>(1)
        }))
        .shutdown_grace(Duration::from_millis(300)),
    );
    let id = run(&ep, json!({"input": {}})).await;
    wait_status(&ep, &id, 20, |s| s["status"] == "IN_PROGRESS").await;
    let started = Instant::now();
    w.stop().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let s = status(&ep, &id).await;
    assert_eq!(s["status"], "FAILED", "{s}");
    assert_eq!(report(&s)["error_type"], "WorkerShutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_after_job_runs_one_job_then_exits() {
    let ep = endpoint(|b| b).await;
    let first = run(&ep, json!({"input": 1})).await;
    let second = run(&ep, json!({"input": 2})).await;
    let w = spawn(
        &ep,
        Worker::new(handler_fn(|job: Job<u32>, _ctx: JobContext| async move { Ok::<_, String>(job.input) }))
            .refresh_after_job(true),
    );
    tokio::time::timeout(Duration::from_secs(20), w.join()).await.expect("exits by itself").unwrap();
    assert_eq!(status(&ep, &first).await["status"], "COMPLETED");
    assert_eq!(status(&ep, &second).await["status"], "IN_QUEUE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_take_fills_every_free_slot() {
    let ep = endpoint(|b| b).await;
    // Jobs queued before the worker starts: its first take is a batch of 4.
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(run(&ep, json!({"input": i})).await);
    }
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (now.clone(), peak.clone());
    let w = spawn(
        &ep,
        Worker::new(handler_fn(move |_job: Job<u32>, _ctx: JobContext| {
            let (n, p) = (n.clone(), p.clone());
            async move {
                p.fetch_max(n.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        }))
        .concurrency(4),
    );
    for id in &ids {
        assert_eq!(wait_final(&ep, id, 20).await["status"], "COMPLETED");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 4);
    w.stop().await.unwrap();
}
