//! The bulk-embeddings worker binary: loads the model once, then serves jobs (see the README).

#![forbid(unsafe_code)]

use anyhow::Context;
use bulk_embeddings::{BulkHandler, Embedder};
use std::process::ExitCode;

/// `--help`: this worker's settings (`help_requested` adds the runtime's flags).
const HELP: &str = "\
bulk-embeddings worker: embeds many texts into one safetensors file in S3 (see examples/bulk-embeddings/README.md)
environment:
  MODEL_DIR   model folder (config.json, tokenizer.json, model.safetensors)
  MODEL_ID    hub model id fetched when MODEL_DIR is unset (default sentence-transformers/all-MiniLM-L6-v2)
  DEVICE      cpu, cuda or cuda:N (default: cuda:0 in a `--features cuda` build, else cpu)
  BUCKET_*    the endpoint's bucket, for jobs without an s3Config (see the README)";

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    if example_support::help_requested(HELP) {
        return Ok(ExitCode::SUCCESS);
    }
    runpod_worker::init_logging(None);
    // The device first: a GPU build on a machine without one fails before any download.
    let device = embeddings::pick_device()?;
    let (dir, name) = embeddings::hub::model_from_env(embeddings::DEFAULT_MODEL_ID).await?;
    let embedder =
        Embedder::load(&dir, &device).with_context(|| format!("loading the model from {}", dir.display()))?;
    let storage = runpod_s3::StorageConfig::from_env().context("the BUCKET_* settings")?;
    match &storage {
        Some(s) => {
            tracing::info!(endpoint = %s.endpoint_for_display(), bucket = %s.bucket, "endpoint bucket configured")
        }
        None => tracing::warn!("no BUCKET_* settings: jobs without s3Config get their file inline"),
    }
    tracing::info!(model = %name, device = ?device, "model loaded");
    Ok(runpod_worker::start(BulkHandler::new(embedder, name)).await)
}
