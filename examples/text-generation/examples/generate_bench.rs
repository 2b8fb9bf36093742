//! Generation speed, one request at a time, greedy: the prompt's prefill (time to the first new
//! token) and the decode that follows (the other new tokens), separately.
//!
//! ```text
//! [MODEL_DIR=...] generate_bench [TOKENS]
//! [MODEL_DIR=...] generate_bench --new-tokens N [--prompt TEXT] [--repeat K]
//! ```
//!
//! (`cargo run --release -p text-generation --example generate_bench -- ...`; add
//! `--features cuda` for the GPU.) Without `MODEL_DIR` it builds a model with random weights in
//! the shape of SmolLM2-135M (speed depends on the shape, not on the weights) and a word-level
//! tokenizer (`t0` .. `t49151`), so it runs where no weights can be downloaded. With `MODEL_DIR`
//! it loads that folder, e.g. one made by `scripts/models/make_models.py`, which is how
//! `scripts/models/compare.py` runs it against transformers' `generate` on the same weights.
//! `ENGINE=candle` runs candle's `Llama` on the CPU instead of the CPU decoder.
//! Each run is timed after one untimed 4-token warm-up. Prints one JSON line with the new
//! token ids of the last run.

use std::time::Instant;

use anyhow::Context;
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::llama::LlamaConfig;
use text_generation::{pick_device, Engine, Generator, Observer, Params};

/// Notes when the first new token arrives (the end of prefill), and the new token ids.
struct Clock {
    first: Option<Instant>,
    ids: Vec<u32>,
}

impl Observer for Clock {
    fn token_id(&mut self, id: u32) {
        self.ids.push(id);
    }

    fn token(&mut self, n: usize) {
        if n == 1 {
            self.first = Some(Instant::now());
        }
    }
}

fn random_smollm(device: &candle_core::Device, engine: Option<Engine>) -> anyhow::Result<Generator> {
    let config: LlamaConfig = serde_json::from_value(serde_json::json!({
        "hidden_size": 576, "intermediate_size": 1536, "vocab_size": 49152, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
        "max_position_embeddings": 8192, "tie_word_embeddings": true
    }))?;
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..49152u32).map(|i| (format!("t{i}"), serde_json::Value::from(i))).collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
        "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}
    });
    let tokenizer = tokenizers::Tokenizer::from_bytes(tokenizer.to_string()).map_err(anyhow::Error::msg)?;
    let dtype = if device.is_cuda() { DType::F16 } else { DType::F32 };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, dtype, device);
    Ok(Generator::from_parts_with(vb, config.into_config(false), tokenizer, vec![], engine)?)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let (mut new_tokens, mut prompt, mut repeat) = (128usize, None, 1usize);
    if args.peek().is_some_and(|a| !a.starts_with("--")) {
        new_tokens = args.next().unwrap_or_default().parse()?;
    }
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--new-tokens" => new_tokens = value()?.parse()?,
            "--prompt" => prompt = Some(value()?),
            "--repeat" => repeat = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other:?} (see the doc comment of generate_bench.rs)"),
        }
    }
    anyhow::ensure!(
        new_tokens >= 2 && repeat >= 1,
        "--new-tokens must be at least 2 and --repeat at least 1"
    );
    let device = pick_device()?;
    let engine = match std::env::var("ENGINE").as_deref() {
        Ok("candle") => Some(Engine::Candle),
        Ok("cpu") => Some(Engine::Cpu),
        Err(_) => None,
        Ok(other) => anyhow::bail!("ENGINE={other:?}: cpu or candle"),
    };
    let started = Instant::now();
    let (model, name) = match std::env::var("MODEL_DIR") {
        Ok(dir) => (Generator::load_with(dir.as_ref(), &device, engine)?, dir),
        Err(_) => (random_smollm(&device, engine)?, "random SmolLM2-135M shape".to_owned()),
    };
    let load_seconds = started.elapsed().as_secs_f64();
    let prompt = prompt.unwrap_or_else(|| {
        if std::env::var("MODEL_DIR").is_ok() { "The history of the printing press" } else { "t1 t2 t3 t4" }
            .to_owned()
    });
    let params = Params { max_tokens: new_tokens, temperature: 0.0, top_p: None, seed: 1, stop: vec![] };
    model.generate(
        &prompt,
        &Params { max_tokens: 4, ..params.clone() },
        &mut Clock { first: None, ids: vec![] },
    )?; // warm-up
    let mut runs = Vec::new();
    let mut last = None;
    for _ in 0..repeat {
        let mut clock = Clock { first: None, ids: vec![] };
        let started = Instant::now();
        let out = model.generate(&prompt, &params, &mut clock)?;
        let done = Instant::now();
        let first = clock.first.context("no token was generated")?;
        runs.push(serde_json::json!({
            "prefill_seconds": (first - started).as_secs_f64(), "decode_seconds": (done - first).as_secs_f64(),
        }));
        last = Some((out, clock.ids));
    }
    let (out, ids) = last.expect("repeat >= 1");
    let secs: f64 = runs[0]["prefill_seconds"].as_f64().unwrap_or(0.0)
        + runs[0]["decode_seconds"].as_f64().unwrap_or(0.0);
    println!(
        "{}",
        serde_json::json!({
            "bench": "text-generation", "side": "ours",
            "impl": format!("runpod-rs text-generation ({:?})", model.engine()).to_lowercase(),
            "model": name, "device": format!("{device:?}"), "dtype": if device.is_cuda() { "f16" } else { "f32" },
            "threads": candle_core::utils::get_num_threads(), "load_seconds": load_seconds,
            "prompt_tokens": out.prompt_tokens, "generated_tokens": out.generated_tokens, "runs": runs, "tokens": ids,
            // The first run as one figure, as the older form printed it.
            "finish_reason": out.finish_reason, "seconds": secs, "tokens_per_second": out.generated_tokens as f64 / secs,
        })
    );
    Ok(())
}
