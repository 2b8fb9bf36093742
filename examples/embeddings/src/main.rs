//! The embeddings worker binary: loads the model once, then serves jobs (see the README).

use anyhow::Context;
use embeddings::{pick_device, EmbedHandler, Embedder};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runpod_worker::init_logging(None);
    let (dir, name) = embeddings::hub::model_from_env(embeddings::DEFAULT_MODEL_ID).await?;
    let max_batch = match std::env::var("MAX_BATCH") {
        Ok(v) => v.parse().with_context(|| format!("MAX_BATCH={v:?} is not a number"))?,
        Err(_) => 128,
    };
    let device = pick_device()?;
    let started = std::time::Instant::now();
    let embedder =
        Embedder::load(&dir, &device).with_context(|| format!("loading the model from {}", dir.display()))?;
    tracing::info!(
        model = %name, device = ?device, dimensions = embedder.dimensions(), max_tokens = embedder.max_tokens(),
        ms = started.elapsed().as_millis() as u64, "model loaded"
    );
    runpod_worker::start(EmbedHandler::new(embedder, name, max_batch)).await;
    Ok(())
}
