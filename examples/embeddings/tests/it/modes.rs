//! The embeddings binary in both endpoint types, over real HTTP: as a queue worker taking jobs
//! from runpod-local, and as a load-balancing worker behind runpod-local's load balancer
//! (`--load-balancing` and `LOAD_BALANCING=1`). The model comes from a Hugging Face cache
//! layout like the platform's `/runpod-volume/huggingface-cache/hub` (`RUNPOD_HF_CACHE`), with
//! the hub unreachable: found before any download.

use example_support::test_models::minilm_dir;
use runpod_local::{LoadBalancer, LocalEndpoint};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop, so a failed assertion leaves nothing running.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `root/models--sentence-transformers--all-MiniLM-L6-v2/{refs/main, snapshots/HASH/*}`, the
/// files linked from the test model.
fn hf_cache(model: &Path) -> PathBuf {
    // One folder per call: the tests run in parallel, and two of them linking the same files
    // raced (EEXIST).
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("embeddings-hf-cache-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root); // left by an earlier process with this pid
    let repo = root.join("models--sentence-transformers--all-MiniLM-L6-v2");
    let hash = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf";
    let snapshot = repo.join("snapshots").join(hash);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), hash).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors", "sentence_bert_config.json"] {
        std::os::unix::fs::symlink(model.join(f).canonicalize().unwrap(), snapshot.join(f)).unwrap();
    }
    root
}

/// The binary with the model only in the cache: no MODEL_DIR, the hub unreachable, an empty
/// download cache.
fn embeddings(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_embeddings"));
    c.env_remove("MODEL_DIR")
        .env_remove("MODEL_ID")
        .env("RUNPOD_HF_CACHE", cache)
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("MODEL_CACHE", cache.join("downloads-must-not-happen"))
        .env("DEVICE", "cpu")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn check_output(out: &Value) {
    assert_eq!(out["dimensions"], 384, "{out}");
    assert_eq!(out["model"], "sentence-transformers/all-MiniLM-L6-v2", "{out}");
    assert_eq!(out["tokens"], json!([8, 11]), "{out}");
    let v = out["embeddings"][0].as_array().unwrap();
    // The reference of tests/it/minilm.rs: 0.033242, 0.004406, ...
    assert!((v[0].as_f64().unwrap() - 0.033242).abs() < 1e-3, "{out}");
}

const TEXTS: [&str; 2] = ["A man is eating food.", "A man is eating a piece of bread."];

#[tokio::test]
async fn queue_mode_takes_jobs_with_the_cached_model() {
    let Some(model) = minilm_dir() else { return };
    let cache = hf_cache(&model);
    let ep = LocalEndpoint::builder().api_key("k").bind("127.0.0.1:0").await.unwrap();
    let mut cmd = embeddings(&cache);
    cmd.env("RUNPOD_PING_INTERVAL", "1000");
    for (k, v) in ep.worker_env("w1") {
        cmd.env(k, v);
    }
    // The platform's environment turns JSON logs on; keep them readable for this test.
    cmd.env_remove("RUNPOD_ENDPOINT_ID");
    let _worker = Worker(cmd.spawn().unwrap());
    let client = runpod_client::Endpoint::new(ep.endpoint_id(), Some("k"))
        .unwrap()
        .with_base_url(ep.base_url())
        .unwrap();
    let req = runpod_client::Request::new(json!({"input": TEXTS}));
    let out = tokio::time::timeout(Duration::from_secs(120), client.run_sync(&req)).await.unwrap().unwrap();
    let out: Value = out.into_output().unwrap();
    check_output(&out);
    assert!(!cache.join("downloads-must-not-happen").exists(), "nothing was downloaded");
}

/// Reads stderr lines until one contains `needle`; returns it.
fn wait_line(child: &mut Child, needle: &str) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let until = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while Instant::now() < until {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no line with {needle:?} in: {seen:#?}");
}

async fn load_balanced(flag: bool) {
    let Some(model) = minilm_dir() else { return };
    let cache = hf_cache(&model);
    let mut cmd = embeddings(&cache);
    cmd.env("PORT", "0").env("LISTEN_HOST", "127.0.0.1");
    if flag {
        cmd.arg("--load-balancing");
    } else {
        cmd.env("LOAD_BALANCING", "1");
    }
    let mut worker = Worker(cmd.spawn().unwrap());
    let line = wait_line(&mut worker.0, "load-balancing worker: application on ");
    let url = line.split("application on ").nth(1).unwrap().split(',').next().unwrap().to_owned();
    let lb = LoadBalancer::builder()
        .worker(&url)
        .api_key("k")
        .probe_interval(Duration::from_millis(50))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    // The balancer holds the request until the worker's /ping says 200 (the model is loaded).
    let r = http
        .post(format!("{}/embed", lb.base_url()))
        .bearer_auth("k")
        .json(&json!({"input": TEXTS}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check_output(&r.json().await.unwrap());
    let r = http
        .post(format!("{}/embed", lb.base_url()))
        .bearer_auth("k")
        .json(&json!({"input": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("a string or an array of strings"), "{e}");
    assert!(!cache.join("downloads-must-not-happen").exists(), "nothing was downloaded");
    assert_eq!(reqwest::get(format!("{url}/ping")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn load_balancing_mode_by_flag() {
    load_balanced(true).await;
}

#[tokio::test]
async fn load_balancing_mode_by_env() {
    load_balanced(false).await;
}
