//! Throughput of the embedding model: sentences per second at one or more batch sizes.
//!
//! ```text
//! MODEL_DIR=... embed_bench [SENTENCES [BATCH]]
//! MODEL_DIR=... embed_bench --texts FILE [--batches 32,128] [--repeat K] [--vectors PREFIX]
//! ```
//!
//! (`cargo run --release -p embeddings --example embed_bench -- ...`; add `--features cuda` and
//! `DEVICE=cuda` for the GPU, `DTYPE=f16` for half precision there; `ENGINE=candle` runs candle's
//! padded `BertModel` on the CPU instead of the packed encoder.) The first form embeds
//! SENTENCES (default 512) short generated sentences, BATCH (default 32) per forward pass. The
//! second reads one JSON string per line from FILE, embeds all of them at each batch size K
//! times (after one untimed warm-up batch), and with `--vectors` writes the vectors of the last
//! run to `PREFIX-bBATCH.f32` (little-endian f32, one row per text): this is the form
//! `scripts/models/compare.py` runs against sentence-transformers. Prints one JSON line.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use embeddings::{pick_device, Embedder, Engine, LoadOptions};

struct Args {
    texts: Vec<String>,
    batches: Vec<usize>,
    repeat: usize,
    vectors: Option<String>,
}

fn generated(total: usize) -> Vec<String> {
    let subjects = ["The cat", "A young programmer", "The old bridge", "Our team", "The weather service"];
    let verbs = ["quietly watched", "carefully rebuilt", "announced", "ignored", "measured"];
    let objects =
        ["the rising river.", "a new compiler.", "the morning traffic.", "every result twice.", "the storm."];
    (0..total)
        .map(|i| format!("{} {} {} ({i})", subjects[i % 5], verbs[(i / 5) % 5], objects[(i / 25) % 5]))
        .collect()
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_none_or(|a| !a.starts_with("--")) {
        let total: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(512);
        let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
        return Ok(Args { texts: generated(total), batches: vec![batch], repeat: 1, vectors: None });
    }
    let (mut texts, mut batches, mut repeat, mut vectors) = (None, vec![32], 1, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--texts" => {
                let path = value()?;
                let body = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
                let lines = body.lines().filter(|l| !l.trim().is_empty());
                texts = Some(lines.map(serde_json::from_str).collect::<Result<Vec<String>, _>>()?);
            }
            "--batches" => batches = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--repeat" => repeat = value()?.parse()?,
            "--vectors" => vectors = Some(value()?),
            other => anyhow::bail!("unknown argument {other:?} (see the doc comment of embed_bench.rs)"),
        }
    }
    let texts = texts.context("--texts FILE is required with flags")?;
    anyhow::ensure!(!texts.is_empty() && repeat > 0 && batches.iter().all(|&b| b > 0), "nothing to run");
    Ok(Args { texts, batches, repeat, vectors })
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::var("MODEL_DIR").map_err(|_| anyhow::anyhow!("set MODEL_DIR to the model folder"))?;
    let args = parse_args()?;
    let device = pick_device()?;
    let dtype = match std::env::var("DTYPE").as_deref() {
        Ok("f16") => candle_core::DType::F16,
        Ok("f32") | Err(_) => candle_core::DType::F32,
        Ok(other) => anyhow::bail!("DTYPE={other:?}: f32 or f16"),
    };
    let started = Instant::now();
    let engine = match std::env::var("ENGINE").as_deref() {
        Ok("candle") => Some(Engine::Candle),
        Ok("packed") => Some(Engine::Packed),
        Err(_) => None,
        Ok(other) => anyhow::bail!("ENGINE={other:?}: packed or candle"),
    };
    let mut model = Embedder::load_with(dir.as_ref(), &device, LoadOptions { dtype, engine })?;
    let load_seconds = started.elapsed().as_secs_f64();
    let mut runs = Vec::new();
    let mut tokens = 0;
    for &batch in &args.batches {
        model = model.with_batch_size(batch);
        model.embed(&args.texts[..batch.min(args.texts.len())], true)?; // warm-up (kernels, caches)
        let mut seconds = Vec::new();
        let mut last = None;
        for _ in 0..args.repeat {
            let started = Instant::now();
            let out = model.embed(&args.texts, true)?;
            seconds.push(started.elapsed().as_secs_f64());
            last = Some(out);
        }
        let out = last.expect("repeat > 0");
        tokens = out.tokens.iter().sum::<usize>();
        if let Some(prefix) = &args.vectors {
            let path = format!("{prefix}-b{batch}.f32");
            let mut file =
                std::io::BufWriter::new(std::fs::File::create(&path).with_context(|| path.clone())?);
            for v in out.vectors.iter().flatten() {
                file.write_all(&v.to_le_bytes())?;
            }
            file.flush()?;
        }
        runs.push(serde_json::json!({"batch": batch, "seconds": seconds}));
    }
    let n = args.texts.len();
    let best =
        runs.iter().map(|r| r["seconds"][0].as_f64().unwrap_or(f64::INFINITY)).fold(f64::INFINITY, f64::min);
    println!(
        "{}",
        serde_json::json!({
            "bench": "embeddings", "side": "ours", "impl": format!("runpod-rs embeddings ({:?})", model.engine()).to_lowercase(),
            "device": format!("{device:?}"), "dtype": format!("{dtype:?}").to_lowercase(),
            "threads": candle_core::utils::get_num_threads(), "sentences": n, "tokens": tokens,
            "dimensions": model.dimensions(), "load_seconds": load_seconds, "runs": runs,
            // The first form's summary fields, kept for scripts that read them.
            "batch": args.batches[0], "seconds": best, "sentences_per_second": n as f64 / best,
        })
    );
    Ok(())
}
