//! The text-generation worker binary: loads the model once from `MODEL` (a folder or a `.gguf`
//! file; `MODEL_DIR` also works), then serves jobs: its native input and the OpenAI route.

#![forbid(unsafe_code)]

use anyhow::Context;
use runpod_worker::Worker;
use std::process::ExitCode;
use text_generation::{pick_device, GenerateHandler, TextModel};

/// `--help`: this worker's settings (`help_requested` adds the runtime's flags).
const HELP: &str = "\
text-generation worker: streamed generation with a Llama-family model, native input and the
OpenAI route (see examples/text-generation/README.md)
environment:
  MODEL       a model folder (config.json, tokenizer.json, *.safetensors, tokenizer_config.json)
              or a .gguf file; required (MODEL_DIR is read when MODEL is unset)
  DEVICE      cpu, cuda or cuda:N (default: cuda:0 in a `--features cuda` build, else cpu)
  MAX_CONCURRENCY
              jobs at once (default 8 for a .gguf file, whose jobs run in one batch on
              llama.cpp; 1 for a model folder, whose jobs would share the cores)";

/// `MAX_CONCURRENCY`, else the default for the kind of model at `path`.
fn concurrency(path: &std::path::Path) -> anyhow::Result<usize> {
    match std::env::var("MAX_CONCURRENCY") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=256).contains(&n) => Ok(n),
            _ => anyhow::bail!("MAX_CONCURRENCY must be a whole number from 1 to 256, got {v:?}"),
        },
        Err(_) => Ok(if TextModel::is_gguf(path) { 8 } else { 1 }),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    if example_support::help_requested(HELP) {
        return Ok(ExitCode::SUCCESS);
    }
    runpod_worker::init_logging(None);
    let path = std::env::var_os("MODEL").or_else(|| std::env::var_os("MODEL_DIR")).context(
        "set MODEL to a Llama-family model folder (config.json, tokenizer.json, *.safetensors) or a .gguf file",
    )?;
    let path = std::path::PathBuf::from(path);
    let device = pick_device()?;
    let sequences = concurrency(&path)?;
    // `start` picks the mode (queue, `--load-balancing`: `POST /run`, or a local one); the
    // model loads first (in load-balancing mode, while the health path answers 204).
    let startup = async move {
        let started = std::time::Instant::now();
        let model = tokio::task::spawn_blocking(move || {
            TextModel::load_with(&path, &device, sequences)
                .with_context(|| format!("loading the model from {}", path.display()))
                .map(|m| (m, path, device))
        })
        .await
        .map_err(|e| format!("the model-loading thread failed: {e}"))?;
        let (model, path, device) = model.map_err(|e| format!("{e:#}"))?;
        tracing::info!(
            model = %path.display(), device = ?device, context = model.context_length(), concurrency = sequences,
            chat_template = model.chat_template().is_some(),
            ms = started.elapsed().as_millis() as u64, "model loaded"
        );
        Ok::<_, String>(GenerateHandler::new(model))
    };
    Ok(Worker::loading(startup).concurrency(sequences).start().await)
}
