//! The bulk-embeddings worker binary: loads the model once, then serves jobs (see the README).

use anyhow::Context;
use bulk_embeddings::{BulkHandler, Embedder};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runpod_worker::init_logging(None);
    let (dir, name) = embeddings::hub::model_from_env(embeddings::DEFAULT_MODEL_ID).await?;
    let device = embeddings::pick_device()?;
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
    runpod_worker::start(BulkHandler::new(embedder, name)).await;
    Ok(())
}
