//! A real SIGTERM to an idle load-balancing worker: it exits 0 within about a second, even with
//! a client's keep-alive connection left open. The worker is this test binary run again as a
//! child process (`SIGTERM_IDLE_CHILD` set), serving until the signal with the default SIGTERM
//! handling; queue mode and `--serve-api` are tested with the echo example's binary
//! (`examples/echo/tests/cli.rs`).

use runpod_worker::load_balancing::LbConfig;
use runpod_worker::{handler_fn, Job, JobContext, Worker};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "SIGTERM_IDLE_CHILD";
const TEST: &str = "an_idle_load_balancing_worker_exits_promptly_on_sigterm";

async fn double(job: Job<u64>, _ctx: JobContext) -> Result<Value, String> {
    Ok(json!({"doubled": job.input * 2}))
}

/// The child: serves on a free port until SIGTERM, printing its address first.
async fn child() {
    let worker = Worker::new(handler_fn(double))
        .route("/double")
        .load_balancing_config(LbConfig::default().host("127.0.0.1").port(0))
        .bind_load_balancing()
        .await
        .unwrap();
    println!("LISTENING {}", worker.app_addr());
    std::io::stdout().flush().unwrap();
    worker.serve().await.unwrap();
}

#[tokio::test]
async fn an_idle_load_balancing_worker_exits_promptly_on_sigterm() {
    if std::env::var_os(CHILD).is_some() {
        return child().await;
    }
    let mut exits = Vec::new();
    for round in 0..3 {
        // This module's path without the test crate's name: the test's name in this binary.
        let module = module_path!().split_once("::").expect("a module of the test crate").1;
        let name = format!("{module}::{TEST}");
        let mut worker = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name.as_str(), "--nocapture", "--test-threads", "1"])
            .env(CHILD, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = worker.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may print `test <name> ... ` on the same line first.
                if let Some((_, addr)) = line.split_once("LISTENING ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("the child printed its address");
        // A client that keeps its connection open after its request, as a load balancer does.
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let ping = format!("http://{addr}/ping");
        let until = Instant::now() + Duration::from_secs(30);
        while client.get(&ping).send().await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
            assert!(Instant::now() < until, "the worker never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = client.post(format!("http://{addr}/double")).json(&json!(21)).send().await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["doubled"], 42);
        tokio::time::sleep(Duration::from_millis(300)).await;

        let t = Instant::now();
        let killed = Command::new("kill").args(["-TERM", &worker.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let exit = tokio::task::spawn_blocking(move || {
            let until = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(s) = worker.try_wait().unwrap() {
                    return s;
                }
                if Instant::now() > until {
                    let _ = worker.kill();
                    panic!("the worker did not exit within 60 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .await
        .unwrap();
        let took = t.elapsed();
        assert!(exit.success(), "round {round}: {exit:?}");
        exits.push(took.as_millis());
        drop(client);
    }
    eprintln!("idle load-balancing worker: exit after SIGTERM in {exits:?} ms");
    assert!(exits.iter().all(|ms| *ms < 5000), "{exits:?}");
}
