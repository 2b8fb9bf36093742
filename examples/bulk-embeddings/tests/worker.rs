//! The bulk-embeddings worker end to end: a real local endpoint, the worker runtime, the real
//! all-MiniLM-L6-v2 model, and a real S3 server (SeaweedFS from scripts/test.d/30-s3.sh). The
//! file is fetched back through its presigned URL and compared with the model's own vectors.

use std::time::Duration;

use base64::Engine;
use bulk_embeddings::{BulkHandler, Embedder};
use candle_core::Device;
use example_support::local_worker::{self, LocalWorker};
use example_support::test_models::minilm_dir;
use runpod_client::{Endpoint, JobState, JobStatus, Request, S3Config, S3ConfigBuilder};
use runpod_s3::test_support::TestS3;
use runpod_worker::Worker;
use serde_json::{json, Value};

/// Queues `request` and polls `/status` until the job ends, as an application would.
async fn run_job(ep: &Endpoint, request: Request<Value>) -> JobState<Value> {
    let job = ep.run(&request).await.unwrap();
    job.wait_timeout(Duration::from_secs(120)).await.unwrap()
}

/// Checks a safetensors file against the model's direct output for `texts`.
fn check_file(bytes: &[u8], texts: &[String], reference: &Embedder) {
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu).unwrap();
    let rows = tensors["embeddings"].to_vec2::<f32>().unwrap();
    let tokens = tensors["tokens"].to_vec1::<u32>().unwrap();
    assert_eq!(rows.len(), texts.len());
    // Each row against the model's own vector for that text alone (batching must not change it).
    for (i, text) in texts.iter().enumerate() {
        let direct = reference.embed(&[text.as_str()], true).unwrap();
        assert_eq!(rows[i].len(), 384);
        assert_eq!(tokens[i] as usize, direct.tokens[0]);
        let cos: f32 = rows[i].iter().zip(&direct.vectors[0]).map(|(a, b)| a * b).sum();
        assert!(cos > 0.9999, "row {i} differs from the model's vector (cos {cos})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeds_into_a_bucket_and_answers_with_a_presigned_url() {
    let Some(dir) = minilm_dir() else { return };
    let Some(s3) = TestS3::start() else { return };
    let bucket = s3.new_bucket("bulk-emb").await;

    let reference = Embedder::load(&dir, &Device::Cpu).unwrap();
    let handler = BulkHandler::new(Embedder::load(&dir, &Device::Cpu).unwrap(), "all-MiniLM-L6-v2");
    let local = LocalWorker::start(Worker::new(handler)).await.unwrap();
    let client = local_worker::client(&local);
    let http = reqwest::Client::new();

    // 22 short texts and 2 past the 256-token limit, in batches of 4.
    let texts: Vec<String> = (0..24)
        .map(|i| match i % 12 {
            11 => "word ".repeat(300 + i),
            n if n % 2 == 0 => format!("Sentence number {i} is about cooking pasta."),
            _ => format!("Item {i}: the market closed higher today."),
        })
        .collect();
    let s3_config = |secret: &str| -> S3Config {
        S3ConfigBuilder::new()
            .access_id(&s3.access_key)
            .access_secret(secret)
            .bucket_name(bucket.bucket())
            .endpoint_url(&s3.endpoint)
            .build()
            .unwrap()
    };
    let request = Request::new(json!({"texts": texts, "batch_size": 4})).s3_config(s3_config(&s3.secret_key));
    let done = run_job(&client, request).await;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    let out = done.output.as_ref().unwrap();
    assert_eq!(out["count"], 24);
    assert_eq!(out["dimensions"], 384);
    assert_eq!(out["file"]["inline"], false);
    assert_eq!(out["file"]["bucket"], bucket.bucket());
    let key = out["file"]["key"].as_str().unwrap();
    assert!(key.ends_with("/embeddings.safetensors"), "{key}");
    assert_eq!(out["truncated"], json!([11, 23]));
    assert!(!serde_json::to_string(&done).unwrap().contains(&s3.secret_key), "no secret in the job's result");

    // Fetch through the presigned URL, as a client would.
    let url = out["file"]["url"].as_str().unwrap();
    let resp = http.get(url).send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, out["file"]["size"].as_u64().unwrap());
    check_file(&bytes, &texts, &reference);

    // The texts as a file in the bucket, one per line (`s3://` read with the job's credentials).
    let lines = ["A man is eating food.", "", "The stock market fell.", "Rain is expected tomorrow."];
    bucket.upload_bytes("inputs/texts.txt", lines.join("\r\n").into_bytes(), "text/plain").await.unwrap();
    let url = format!("s3://{}/inputs/texts.txt", bucket.bucket());
    let request = Request::new(json!({"texts_url": url})).s3_config(s3_config(&s3.secret_key));
    let done = run_job(&client, request).await;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    let out = done.output.unwrap();
    assert_eq!(out["count"], 3, "empty lines are skipped");
    let bytes = http.get(out["file"]["url"].as_str().unwrap()).send().await.unwrap().bytes().await.unwrap();
    let expected: Vec<String> = lines.iter().filter(|l| !l.is_empty()).map(|l| l.to_string()).collect();
    check_file(&bytes, &expected, &reference);

    // Without any bucket the (small) file comes back inline.
    let small: Vec<String> = vec!["A man is eating food.".into(), "The stock market fell.".into()];
    let done = run_job(&client, Request::new(json!({"texts": small, "file_name": "two.safetensors"}))).await;
    assert_eq!(done.status, JobStatus::Completed, "{done:?}");
    let out = done.output.unwrap();
    let url = out["file"]["url"].as_str().unwrap();
    let b64 = url.strip_prefix("data:application/octet-stream;base64,").expect(url);
    check_file(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap(), &small, &reference);

    // Bad input and bad bucket credentials fail clearly, without leaking the secret.
    for (request, says) in [
        (Request::new(json!({"texts": []})), "1 to"),
        (Request::new(json!({"texts": ["a"], "texts_url": "https://example.com/t.txt"})), "exactly one"),
        (Request::new(json!({})), "exactly one"),
        (Request::new(json!({"texts": ["a"], "batch_size": 0})), "batch_size"),
        (Request::new(json!({"texts": ["a"], "file_name": "x.bin"})), "file_name"),
        (Request::new(json!({"texts": ["a"]})).s3_config(s3_config("wrong-secret-value")), "bulk-emb"),
    ] {
        let input = request.input().clone();
        let done = run_job(&client, request).await;
        assert_eq!(done.status, JobStatus::Failed, "{input}: {done:?}");
        let err = done.error.unwrap_or_default();
        assert!(err.contains(says), "{input}: {err}");
        assert!(!err.contains("wrong-secret-value") && !err.contains(&s3.secret_key), "{err}");
    }

    local.stop().await.unwrap();
}

/// The Hub listing (`.runpod/`): it passes the publishing guide's checks, and its case passes
/// against the bulk-embeddings binary through a local endpoint twice: as the Hub runs it (no
/// bucket configured: the file comes back inline), and with the listing's `BUCKET_*` inputs
/// set to the test S3 server (the file goes to the bucket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_listing_passes_the_check_and_its_cases_pass_with_and_without_a_bucket() {
    use runpod_local::hub::{self, HubRun, Listing};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = hub::check(dir, None);
    assert!(report.passed(), "{report}");
    let Some(model) = minilm_dir() else { return };
    let worker = || {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_bulk-embeddings"));
        c.env("DEVICE", "cpu").env("HF_ENDPOINT", "http://127.0.0.1:9");
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("BUCKET_")) {
            c.env_remove(k);
        }
        c
    };
    let model = model.display().to_string();

    let results =
        HubRun::new(Listing::read(dir).unwrap(), worker()).env("MODEL_DIR", &model).run().await.unwrap();
    assert!(!results.is_empty());
    for r in &results {
        assert!(r.passed(), "{r}");
        let out = r.output.as_ref().unwrap();
        assert_eq!(out["file"]["inline"], true, "no bucket: the file inline: {out}");
    }

    let Some(s3) = TestS3::start() else { return };
    let bucket = s3.new_bucket("bulk-hub").await;
    let results = HubRun::new(Listing::read(dir).unwrap(), worker())
        .env("MODEL_DIR", &model)
        .env("BUCKET_ENDPOINT_URL", &s3.endpoint)
        .env("BUCKET_NAME", bucket.bucket())
        .env("BUCKET_ACCESS_KEY_ID", &s3.access_key)
        .env("BUCKET_SECRET_ACCESS_KEY", &s3.secret_key)
        .env("RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS", "true")
        .run()
        .await
        .unwrap();
    for r in &results {
        assert!(r.passed(), "{r}");
        let out = r.output.as_ref().unwrap();
        assert_eq!(out["file"]["inline"], false, "{out}");
        assert_eq!(out["file"]["bucket"], bucket.bucket(), "{out}");
        let file = reqwest::get(out["file"]["url"].as_str().unwrap()).await.unwrap();
        assert!(file.status().is_success(), "the presigned URL serves the file");
        assert_eq!(file.bytes().await.unwrap().len() as u64, out["file"]["size"].as_u64().unwrap());
    }
}
