//! The text-generation worker binary: loads the model once from `MODEL_DIR`, then serves jobs.

use anyhow::Context;
use std::process::ExitCode;
use text_generation::{pick_device, GenerateHandler, Generator};

/// `--help`: this worker's settings (`help_requested` adds the runtime's flags).
const HELP: &str = "\
text-generation worker: streamed generation with a Llama-family model (see examples/text-generation/README.md)
environment:
  MODEL_DIR   model folder (config.json, tokenizer.json, *.safetensors), required
  DEVICE      cpu, cuda or cuda:N (default: cuda:0 in a `--features cuda` build, else cpu)";

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    if example_support::help_requested(HELP) {
        return Ok(ExitCode::SUCCESS);
    }
    runpod_worker::init_logging(None);
    let dir = std::env::var_os("MODEL_DIR").context(
        "set MODEL_DIR to a Llama-family model folder (config.json, tokenizer.json, *.safetensors)",
    )?;
    let dir = std::path::PathBuf::from(dir);
    let device = pick_device()?;
    let started = std::time::Instant::now();
    let generator = Generator::load(&dir, &device)
        .with_context(|| format!("loading the model from {}", dir.display()))?;
    tracing::info!(
        model = %dir.display(), device = ?device, context = generator.context_length(),
        ms = started.elapsed().as_millis() as u64, "model loaded"
    );
    Ok(runpod_worker::start(GenerateHandler::new(generator)).await)
}
