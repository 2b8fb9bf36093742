//! Generation speed: new tokens per second, greedy, one request at a time.
//!
//! `MODEL_DIR=... cargo run --release -p text-generation --example generate_bench [-- TOKENS]`
//! (add `--features cuda` for the GPU). Without `MODEL_DIR` it builds a model with random
//! weights in the shape of SmolLM2-135M (speed depends on the shape, not on the weights) and a
//! word-level tokenizer, so it runs where no weights can be downloaded. Prints one JSON line.

use std::time::Instant;

use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::llama::LlamaConfig;
use text_generation::{pick_device, Generator, Observer, Params};

struct Count(usize);
impl Observer for Count {
    fn token(&mut self, n: usize) {
        self.0 = n;
    }
}

fn random_smollm(device: &candle_core::Device) -> anyhow::Result<Generator> {
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
    Ok(Generator::from_parts(vb, config.into_config(false), tokenizer, vec![])?)
}

fn main() -> anyhow::Result<()> {
    let tokens: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(128);
    let device = pick_device()?;
    let (model, name) = match std::env::var("MODEL_DIR") {
        Ok(dir) => (Generator::load(dir.as_ref(), &device)?, dir),
        Err(_) => (random_smollm(&device)?, "random SmolLM2-135M shape".to_owned()),
    };
    let prompt =
        if std::env::var("MODEL_DIR").is_ok() { "The history of the printing press" } else { "t1 t2 t3 t4" };
    let params = Params { max_tokens: tokens, temperature: 0.0, top_p: None, seed: 1, stop: vec![] };
    model.generate(prompt, &Params { max_tokens: 4, ..params.clone() }, &mut Count(0))?; // warm-up
    let started = Instant::now();
    let mut count = Count(0);
    let out = model.generate(prompt, &params, &mut count)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "bench": "text-generation", "model": name, "device": format!("{device:?}"),
            "prompt_tokens": out.prompt_tokens, "generated_tokens": out.generated_tokens,
            "finish_reason": out.finish_reason, "seconds": secs, "tokens_per_second": out.generated_tokens as f64 / secs,
        })
    );
    Ok(())
}
