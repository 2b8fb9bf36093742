//! A tiny Llama with seeded random weights and a word-level tokenizer, written to a folder the
//! way a real model ships (config.json, tokenizer.json, model.safetensors): for plumbing tests.

#![allow(dead_code, reason = "the fixture is shared by several tests")]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::llama::{Llama, LlamaConfig};
use rand::{Rng, SeedableRng};

/// Words of the tiny vocabulary: `w00` (id 0, also BOS and unknown) to `w61` (id 61). No
/// special tokens, so every generated token decodes to exactly one word.
pub(crate) fn words() -> Vec<String> {
    (0..62).map(|i| format!("w{i:02}")).collect()
}

fn config_json() -> serde_json::Value {
    serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 32, "intermediate_size": 64, "vocab_size": 62,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 4096,
        "bos_token_id": 0, "tie_word_embeddings": false
    })
}

fn tokenizer_json() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> =
        words().into_iter().enumerate().map(|(i, w)| (w, i.into())).collect();
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "w00"}
    })
}

/// Writes the tiny model into a fresh folder under the temp dir and returns it. The weights are
/// drawn from a fixed seed, so every run writes the same model.
pub(crate) fn write_model(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tiny-llama-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = config_json();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json().to_string()).unwrap();

    // Let candle name and shape every tensor the architecture needs, then overwrite each with
    // seeded values (in name order) and save as safetensors.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let cfg: LlamaConfig = serde_json::from_value(config).unwrap();
    Llama::load(vb, &cfg.into_config(false)).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1234);
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let shape = var.shape().clone();
        let values: Vec<f32> = if name.ends_with("norm.weight") {
            vec![1.0; shape.elem_count()]
        } else {
            (0..shape.elem_count()).map(|_| rng.random_range(-0.5f32..0.5)).collect()
        };
        var.set(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap()).unwrap();
    }
    drop(data);
    varmap.save(dir.join("model.safetensors")).unwrap();
    dir
}

/// Removes a folder made by [`write_model`].
pub(crate) fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
