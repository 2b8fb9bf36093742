//! Each error class, and the retry rules: against runpod-local, and against scripted HTTP
//! servers where a real endpoint cannot be made to answer a given way on cue.

use crate::common;

use common::{client, closed_port, local, local_with, ScriptServer, Scripted, KEY};
use runpod_client::{Endpoint, Error, JobStatus, Request, RetryPolicy};
use runpod_local::{RateLimit, RateLimits};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(max_retries)
        .with_base_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(1))
        .with_max_retry_after(Duration::from_secs(10))
}

fn scripted_client(s: &ScriptServer, retry: RetryPolicy) -> Endpoint {
    Endpoint::new("ep1", Some(KEY)).unwrap().with_base_url(&s.url).unwrap().with_retry(retry)
}

fn status_body(id: &str, status: &str) -> Value {
    json!({"id": id, "status": status})
}

#[tokio::test]
async fn bad_request_carries_the_server_message() {
    let ep = local().await;
    let err = client(&ep).run(&Request::new(())).await.unwrap_err();
    match &err {
        Error::BadRequest { message } => assert!(message.contains("'input' is required"), "{message}"),
        other => panic!("expected 400, got {other:?}"),
    }
    assert_eq!(err.http_status(), Some(400));
}

#[tokio::test]
async fn wrong_key_is_unauthorized_and_never_printed() {
    let ep = local().await;
    let c = Endpoint::new(ep.endpoint_id(), Some("wrong-key-SHOULD-NOT-LEAK"))
        .unwrap()
        .with_base_url(ep.base_url())
        .unwrap();
    let err = c.health().await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { status: 401, .. }), "{err:?}");
    let shown = format!("{err} {err:?} {c:?}");
    assert!(!shown.contains("SHOULD-NOT-LEAK"), "{shown}");
}

#[tokio::test]
async fn unknown_job_and_unknown_endpoint_are_not_found() {
    let ep = local().await;
    let c = client(&ep);
    assert!(matches!(c.status::<Value>("no-such-job").await, Err(Error::NotFound { .. })));
    assert!(matches!(c.cancel("no-such-job").await, Err(Error::NotFound { .. })));
    let other = Endpoint::new("other-endpoint", Some(KEY)).unwrap().with_base_url(ep.base_url()).unwrap();
    assert!(matches!(other.health().await, Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn full_queue_is_rate_limited_and_run_is_not_duplicated() {
    let ep = local_with(|b| b.max_queue(1)).await;
    let c = client(&ep).with_retry(fast_retry(2));
    c.run(&Request::new(1)).await.unwrap();
    let started = Instant::now();
    let err = c.run(&Request::new(2)).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    // It backed off twice (>= 50 ms + 100 ms with equal jitter) before giving up...
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    // ...and no second job was queued by the retries.
    assert_eq!(c.health().await.unwrap().jobs.in_queue, 1);
}

#[tokio::test]
async fn local_rate_limit_is_ridden_out_with_backoff() {
    let per = Duration::from_secs(1);
    let limits = RateLimits::none().with_status(RateLimit::new(3, per));
    let ep = local_with(|b| b.rate_limits(limits)).await;
    let job = client(&ep).run(&Request::new(1)).await.unwrap();

    // Without retries the 4th status call in the window is refused.
    let strict = client(&ep).with_retry(RetryPolicy::none());
    let mut refused = 0;
    for _ in 0..4 {
        if let Err(e) = strict.status::<Value>(job.id()).await {
            assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
            refused += 1;
        }
    }
    assert!(refused >= 1);

    // With retries, 9 calls all succeed, spread over the following windows.
    let patient = client(&ep).with_retry(fast_retry(10));
    let started = Instant::now();
    for _ in 0..9 {
        assert_eq!(patient.status::<Value>(job.id()).await.unwrap().status, JobStatus::InQueue);
    }
    assert!(started.elapsed() >= Duration::from_millis(1500), "{:?}", started.elapsed());
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let s = ScriptServer::start(vec![
        Scripted::new(429, json!({"error": "slow down"})).header("retry-after", "1"),
        Scripted::new(429, json!({"error": "slow down"})).header("retry-after", "1"),
        Scripted::new(200, status_body("j1", "IN_PROGRESS")),
    ])
    .await;
    let c = scripted_client(&s, fast_retry(5));
    let state = c.status::<Value>("j1").await.unwrap();
    assert_eq!(state.status, JobStatus::InProgress);
    let log = s.requests();
    assert_eq!(log.len(), 3);
    for pair in log.windows(2) {
        let gap = pair[1].2 - pair[0].2;
        assert!(gap >= Duration::from_millis(1000), "Retry-After: 1 not honoured: {gap:?}");
    }
    assert!(log.iter().all(|(m, p, _)| m == "GET" && p == "/v2/ep1/status/j1"));
}

#[tokio::test]
async fn backoff_without_retry_after_grows() {
    let s = ScriptServer::start(vec![
        Scripted::new(429, json!({})),
        Scripted::new(429, json!({})),
        Scripted::new(429, json!({})),
        Scripted::new(200, json!({"jobs": {"inQueue": 7}, "workers": {}})),
    ])
    .await;
    let c = scripted_client(&s, fast_retry(5));
    assert_eq!(c.health().await.unwrap().jobs.in_queue, 7);
    let log = s.requests();
    assert_eq!(log.len(), 4);
    // Equal jitter: the n-th wait is between half and all of 100 ms * 2^n.
    for (n, pair) in log.windows(2).enumerate() {
        let gap = pair[1].2 - pair[0].2;
        let full = Duration::from_millis(100 * (1 << n));
        assert!(gap >= full / 2, "wait {n}: {gap:?} < {:?}", full / 2);
        assert!(gap < full + Duration::from_millis(300), "wait {n}: {gap:?} way past {full:?}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_on_idempotent_calls_until_the_limit() {
    let s = ScriptServer::start(vec![
        Scripted::new(503, json!({"error": "busy"})),
        Scripted::new(502, json!({})),
        Scripted::new(200, status_body("j1", "CANCELLED")),
    ])
    .await;
    let c = scripted_client(&s, fast_retry(5));
    assert_eq!(c.cancel("j1").await.unwrap().status, JobStatus::Cancelled);
    assert_eq!(s.requests().len(), 3);

    let always = ScriptServer::start(vec![Scripted::new(500, json!({"error": "down"}))]).await;
    let c = scripted_client(&always, fast_retry(2));
    match c.status::<Value>("j1").await {
        Err(Error::Server { status: 500, message }) => assert_eq!(message, "down"),
        other => panic!("{other:?}"),
    }
    assert_eq!(always.requests().len(), 3, "1 try + 2 retries");
}

#[tokio::test]
async fn run_is_never_retried_when_the_job_may_be_queued() {
    // A 5xx may come after the job was queued: not retried.
    let s = ScriptServer::start(vec![
        Scripted::new(503, json!({})),
        Scripted::new(200, status_body("j", "IN_QUEUE")),
    ])
    .await;
    let c = scripted_client(&s, fast_retry(5));
    assert!(matches!(c.run(&Request::new(1)).await, Err(Error::Server { status: 503, .. })));
    assert_eq!(s.requests().len(), 1);
    let sync = ScriptServer::start(vec![Scripted::new(500, json!({}))]).await;
    let c = scripted_client(&sync, fast_retry(5));
    assert!(matches!(c.run_sync::<_, Value>(&Request::new(1)).await, Err(Error::Server { status: 500, .. })));
    assert_eq!(sync.requests().len(), 1);

    // A timeout too: the server may have queued it.
    let slow = ScriptServer::start(vec![
        Scripted::new(200, status_body("j", "IN_QUEUE")).delay(Duration::from_secs(2))
    ])
    .await;
    let c = scripted_client(&slow, fast_retry(5)).with_request_timeout(Duration::from_millis(300));
    assert!(matches!(c.run(&Request::new(1)).await, Err(Error::RequestTimeout(_))));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(slow.requests().len(), 1);

    // A 429 means it was refused, so run is retried, honouring Retry-After.
    let busy = ScriptServer::start(vec![
        Scripted::new(429, json!({})).header("retry-after", "0"),
        Scripted::new(200, json!({"id": "j7", "status": "IN_QUEUE"})),
    ])
    .await;
    let job = scripted_client(&busy, fast_retry(5)).run(&Request::new(1)).await.unwrap();
    assert_eq!(job.id(), "j7");
    assert_eq!(busy.requests().len(), 2);
}

#[tokio::test]
async fn idempotent_timeouts_are_retried() {
    let slow = ScriptServer::start(vec![
        Scripted::new(200, status_body("j", "IN_QUEUE")).delay(Duration::from_secs(2))
    ])
    .await;
    let c = scripted_client(&slow, fast_retry(2)).with_request_timeout(Duration::from_millis(200));
    let err = c.status::<Value>("j").await.unwrap_err();
    assert!(matches!(err, Error::RequestTimeout(_)), "{err:?}");
    assert_eq!(slow.requests().len(), 3);
}

#[tokio::test]
async fn long_retry_after_ends_the_retries_at_once() {
    let s =
        ScriptServer::start(
            vec![Scripted::new(429, json!({"error": "later"})).header("retry-after", "3600")],
        )
        .await;
    let started = Instant::now();
    let err = scripted_client(&s, fast_retry(5)).health().await.unwrap_err();
    match err {
        Error::RateLimited { retry_after, message } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3600)));
            assert_eq!(message, "later");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn runsync_asks_for_the_wait_then_polls_status() {
    let s = ScriptServer::start(vec![
        Scripted::new(200, status_body("s1", "IN_QUEUE")),
        Scripted::new(200, status_body("s1", "IN_PROGRESS")),
        Scripted::new(
            200,
            json!({"id": "s1", "status": "COMPLETED", "output": [1, 2, 3], "executionTime": 9}),
        ),
    ])
    .await;
    let c = scripted_client(&s, fast_retry(0))
        .with_runsync_wait(Duration::from_secs(2))
        .with_poll_interval(Duration::from_millis(10), Duration::from_millis(50));
    let st = c.run_sync_timeout::<_, Vec<u8>>(&Request::new(1), Duration::from_secs(30)).await.unwrap();
    assert_eq!(st.into_output().unwrap(), vec![1, 2, 3]);
    let paths: Vec<String> = s.requests().into_iter().map(|r| format!("{} {}", r.0, r.1)).collect();
    assert_eq!(
        paths,
        vec!["POST /v2/ep1/runsync?wait=2000", "GET /v2/ep1/status/s1", "GET /v2/ep1/status/s1"]
    );
}

#[tokio::test]
async fn unexpected_answers_are_decode_errors() {
    let s = ScriptServer::start(vec![Scripted::new(200, json!({"weird": true}))]).await;
    match scripted_client(&s, fast_retry(0)).status::<Value>("j").await {
        Err(Error::Decode { what, message }) => {
            assert_eq!(what, "status answer");
            assert!(message.contains("missing field"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unreachable_server_is_a_network_error() {
    let port = closed_port().await;
    let c = Endpoint::new("ep1", Some(KEY))
        .unwrap()
        .with_base_url(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .with_retry(fast_retry(1));
    assert!(matches!(c.status::<Value>("j").await, Err(Error::Network(_))));
    // run retries connection failures (nothing was sent) and then reports them.
    assert!(matches!(c.run(&Request::new(1)).await, Err(Error::Network(_))));
}

#[tokio::test]
async fn client_side_checks_refuse_before_sending() {
    let port = closed_port().await;
    let c =
        Endpoint::new("ep1", Some(KEY)).unwrap().with_base_url(&format!("http://127.0.0.1:{port}")).unwrap();
    let big = Request::new("x".repeat(11 * 1024 * 1024));
    assert!(matches!(c.run(&big).await, Err(Error::InvalidRequest(m)) if m.contains("payload")));
    let hook = Request::new(1).webhook("not-a-url");
    assert!(matches!(c.run(&hook).await, Err(Error::InvalidRequest(m)) if m.contains("webhook")));
}

/// The half of the test below that reads `RUNPOD_API_KEY`, run by it in a child process with
/// the variable set or removed: a test never changes its own process's environment, which the
/// other tests of this binary read at the same time.
#[test]
#[ignore = "run by api_key_comes_from_the_environment_when_not_given in a child process"]
fn api_key_from_the_child_environment() {
    match std::env::var("RUNPOD_API_KEY") {
        Err(_) => assert!(matches!(Endpoint::new("ep1", None), Err(Error::MissingApiKey))),
        Ok(_) => {
            let c = Endpoint::new("ep1", None).unwrap();
            assert!(!format!("{c:?}").contains("SECRET"));
        }
    }
}

#[test]
fn api_key_comes_from_the_environment_when_not_given() {
    // This module's path without the test crate's name: the test's name in this binary.
    let module = module_path!().split_once("::").expect("a module of the test crate").1;
    let name = format!("{module}::api_key_from_the_child_environment");
    for key in [None, Some("env-key-SECRET")] {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([name.as_str(), "--exact", "--ignored", "--test-threads=1"]);
        match key {
            Some(k) => cmd.env("RUNPOD_API_KEY", k),
            None => cmd.env_remove("RUNPOD_API_KEY"),
        };
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "RUNPOD_API_KEY={key:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
