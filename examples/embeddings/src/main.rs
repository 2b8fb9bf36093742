//! The embeddings worker binary: loads the model once, then serves jobs (see the README).

#![forbid(unsafe_code)]

use anyhow::Context;
use embeddings::{pick_device, EmbedHandler, Embedder};
use std::process::ExitCode;

/// `--help`: this worker's settings (`help_requested` adds the runtime's flags).
const HELP: &str = "\
embeddings worker: sentence embeddings with a BERT-family model (see examples/embeddings/README.md)
environment:
  MODEL_DIR   model folder (config.json, tokenizer.json, model.safetensors)
  MODEL_ID    hub model id fetched when MODEL_DIR is unset (default sentence-transformers/all-MiniLM-L6-v2)
  DEVICE      cpu, cuda or cuda:N (default: cuda:0 in a `--features cuda` build, else cpu)
  MAX_BATCH   most texts per job (default 128)
  BATCH_SIZE  most texts per forward pass (default 32; a job's texts are sorted by length first)";

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    if example_support::help_requested(HELP) {
        return Ok(ExitCode::SUCCESS);
    }
    runpod_worker::init_logging(None);
    // The device first: a GPU build on a machine without one fails before any download.
    let device = pick_device()?;
    let (dir, name) = embeddings::hub::model_from_env(embeddings::DEFAULT_MODEL_ID).await?;
    let max_batch = match std::env::var("MAX_BATCH") {
        Ok(v) => v.parse().with_context(|| format!("MAX_BATCH={v:?} is not a number"))?,
        Err(_) => 128,
    };
    let batch_size = match std::env::var("BATCH_SIZE") {
        Ok(v) => v.parse().with_context(|| format!("BATCH_SIZE={v:?} is not a number"))?,
        Err(_) => embeddings::DEFAULT_BATCH_SIZE,
    };
    let started = std::time::Instant::now();
    let embedder = Embedder::load(&dir, &device)
        .with_context(|| format!("loading the model from {}", dir.display()))?
        .with_batch_size(batch_size);
    tracing::info!(
        model = %name, device = ?device, engine = ?embedder.engine(), dimensions = embedder.dimensions(),
        max_tokens = embedder.max_tokens(), batch_size = embedder.batch_size(),
        ms = started.elapsed().as_millis() as u64, "model loaded"
    );
    Ok(runpod_worker::start(EmbedHandler::new(embedder, name, max_batch)).await)
}
