//! Throughput of the embedding model: sentences per second at a given batch size.
//!
//! `MODEL_DIR=... cargo run --release -p embeddings --example embed_bench [-- SENTENCES BATCH]`
//! (add `--features cuda` for the GPU). Prints one JSON line.

use std::time::Instant;

use embeddings::{pick_device, Embedder};

fn main() -> anyhow::Result<()> {
    let dir = std::env::var("MODEL_DIR").map_err(|_| anyhow::anyhow!("set MODEL_DIR to the model folder"))?;
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(512);
    let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
    let device = pick_device()?;
    let model = Embedder::load(dir.as_ref(), &device)?;
    let subjects = ["The cat", "A young programmer", "The old bridge", "Our team", "The weather service"];
    let verbs = ["quietly watched", "carefully rebuilt", "announced", "ignored", "measured"];
    let objects =
        ["the rising river.", "a new compiler.", "the morning traffic.", "every result twice.", "the storm."];
    let texts: Vec<String> = (0..total)
        .map(|i| format!("{} {} {} ({i})", subjects[i % 5], verbs[(i / 5) % 5], objects[(i / 25) % 5]))
        .collect();
    model.embed(&texts[..batch.min(total)], true)?; // warm-up (kernels, caches)
    let started = Instant::now();
    let mut tokens = 0;
    for chunk in texts.chunks(batch) {
        tokens += model.embed(chunk, true)?.tokens.iter().sum::<usize>();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "bench": "embeddings", "device": format!("{device:?}"), "sentences": total, "batch": batch,
            "tokens": tokens, "seconds": secs, "sentences_per_second": total as f64 / secs,
        })
    );
    Ok(())
}
