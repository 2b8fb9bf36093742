//! The embeddings worker binary: loads the model once, then serves jobs from the queue or, as a
//! load-balancing worker, `POST /embed` requests (see the README).

#![forbid(unsafe_code)]

use anyhow::Context;
use candle_core::Device;
use embeddings::{pick_device, EmbedHandler, Embedder};
use runpod_worker::fitness::FitnessCheck;
use runpod_worker::Worker;
use std::process::ExitCode;

/// `--help`: this worker's settings (`help_requested` adds the runtime's flags).
const HELP: &str = "\
embeddings worker: sentence embeddings with a BERT-family model (see examples/embeddings/README.md)
  --load-balancing   serve POST /embed as a load-balancing worker (also LOAD_BALANCING=1, or a
                     load-balancing endpoint's environment: see runpod-worker's --help below)
environment:
  MODEL_DIR   model folder (config.json, tokenizer.json, model.safetensors)
  MODEL_ID    hub model id when MODEL_DIR is unset: the platform's model cache
              (/runpod-volume/huggingface-cache/hub, RUNPOD_HF_CACHE), else fetched
              (default sentence-transformers/all-MiniLM-L6-v2)
  DEVICE      cpu, cuda or cuda:N (default: cuda:0 in a `--features cuda` build, else cpu)
  MAX_BATCH   most texts per job (default 128)
  BATCH_SIZE  most texts per forward pass (default 32; a job's texts are sorted by length first)
  PORT, PORT_HEALTH, HEALTH_CHECK_PATH, LISTEN_HOST   load-balancing mode (default 80, PORT, /ping, 0.0.0.0)";

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    if example_support::help_requested(HELP) {
        return Ok(ExitCode::SUCCESS);
    }
    runpod_worker::init_logging(None);
    // The device first: a GPU build on a machine without one fails before any download.
    let device = pick_device()?;
    let max_batch = match std::env::var("MAX_BATCH") {
        Ok(v) => v.parse().with_context(|| format!("MAX_BATCH={v:?} is not a number"))?,
        Err(_) => 128,
    };
    let batch_size = match std::env::var("BATCH_SIZE") {
        Ok(v) => v.parse().with_context(|| format!("BATCH_SIZE={v:?} is not a number"))?,
        Err(_) => embeddings::DEFAULT_BATCH_SIZE,
    };
    // A MODEL_DIR without a model is a setting to fix, not a start-up to retry: said at once, in
    // one line, in every mode and before the runtime's own checks (no download is involved).
    let given = match std::env::var_os("MODEL_DIR") {
        Some(_) => Some(embeddings::hub::model_from_env(embeddings::DEFAULT_MODEL_ID).await?),
        None => None,
    };
    let gpu = gpu_check(&device);
    // One worker for both endpoint types: `start` picks the mode (`--load-balancing`,
    // `LOAD_BALANCING=1`, else the queue). The model loads after the fitness checks; in
    // load-balancing mode the health path answers 204 meanwhile.
    let startup = async move {
        let (dir, name) = match given {
            Some(found) => found,
            None => embeddings::hub::model_from_env(embeddings::DEFAULT_MODEL_ID).await?,
        };
        let embedder =
            tokio::task::spawn_blocking(move || load(&dir, &device, &name, batch_size).map(|e| (e, name)))
                .await
                .context("the model-loading thread failed")??;
        let (embedder, name) = embedder;
        Ok::<_, anyhow::Error>(EmbedHandler::new(embedder, name, max_batch))
    };
    let mut worker =
        Worker::loading(async move { startup.await.map_err(|e| format!("{e:#}")) }).route("/embed");
    if let Some(check) = gpu {
        worker = worker.fitness(check);
    }
    Ok(worker.start().await)
}

fn load(dir: &std::path::Path, device: &Device, name: &str, batch_size: usize) -> anyhow::Result<Embedder> {
    let started = std::time::Instant::now();
    let embedder = Embedder::load(dir, device)
        .with_context(|| format!("loading the model from {}", dir.display()))?
        .with_batch_size(batch_size);
    tracing::info!(
        model = %name, device = ?device, engine = ?embedder.engine(), dimensions = embedder.dimensions(),
        max_tokens = embedder.max_tokens(), batch_size = embedder.batch_size(),
        ms = started.elapsed().as_millis() as u64, "model loaded"
    );
    Ok(embedder)
}

/// On a GPU, a fitness check that a small matrix product there is right (run before the
/// first job, or before the health path answers 200).
fn gpu_check(device: &Device) -> Option<FitnessCheck> {
    if !device.is_cuda() {
        return None;
    }
    let device = device.clone();
    Some(FitnessCheck::new("gpu", move || async move {
        tokio::task::spawn_blocking(move || example_support::device::self_test(&device))
            .await
            .map_err(|e| format!("the GPU test thread failed: {e}"))?
    }))
}
