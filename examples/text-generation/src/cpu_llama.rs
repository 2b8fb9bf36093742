//! A Llama-family decoder for the CPU in F32, the forward pass the generator uses there.
//!
//! candle's `Llama` runs one new token as a chain of tensor ops: each dense layer is a
//! matrix-vector product that `gemm` computes on one thread, the key/value cache grows by
//! concatenation (a copy of the whole cache per token and layer), grouped key/value heads are
//! copied out to every query head, and every op writes a new tensor. For one token the work is
//! reading each weight once, so its speed is memory bandwidth. Here:
//!
//! - each dense layer with one token is a matrix-vector product with its rows split over the
//!   threads ([`kernels::matvec`]); with a few tokens (a short prompt) each block of weight rows
//!   is read once for all of them, and with more it is one `gemm` product ([`kernels::linear`]);
//! - query, key and value are one product (their weights side by side), and so are the MLP's
//!   gate and up projections;
//! - the cache is allocated once per generation and appended in place; query heads read their
//!   group's key/value head where it lies;
//! - norms, rotary embedding, softmax and SiLU gating are single passes ([`kernels`]).
//!
//! It computes what candle's `Llama` computes (the tests compare the two on the same weights),
//! for configs without `rope_scaling`; others run on candle's.

use candle_core::DType;
use candle_nn::init::{Init, DEFAULT_KAIMING_NORMAL};
use candle_nn::VarBuilder;
use candle_transformers::models::llama::Config;
use example_support::kernels;
use rayon::prelude::*;

/// One layer's weights, each `(out, in)` row-major as `nn.Linear` stores it.
struct Layer {
    attn_norm: Vec<f32>,
    qkv: Vec<f32>,
    o: Vec<f32>,
    mlp_norm: Vec<f32>,
    gate_up: Vec<f32>,
    down: Vec<f32>,
}

/// The decoder's weights and shape.
pub struct CpuLlama {
    embed: Vec<f32>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// `None`: the output layer is the embedding matrix (`tie_word_embeddings`).
    lm_head: Option<Vec<f32>>,
    hidden: usize,
    intermediate: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    vocab: usize,
    max_positions: usize,
    eps: f32,
    inv_freq: Vec<f32>,
}

// A summary: the weights and buffers are far too big to print.
impl std::fmt::Debug for CpuLlama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuLlama")
            .field("layers", &self.layers.len())
            .field("hidden", &self.hidden)
            .field("heads", &self.heads)
            .field("kv_heads", &self.kv_heads)
            .field("vocab", &self.vocab)
            .finish_non_exhaustive()
    }
}

/// One generation's key/value cache: per layer, `positions x kv_heads x head_dim` values.
pub struct KvCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

// A summary: the weights and buffers are far too big to print.
impl std::fmt::Debug for KvCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCache").field("len", &self.len).finish_non_exhaustive()
    }
}

/// A weight as F32 values. `init` only matters for a `VarBuilder` over a fresh `VarMap` (random
/// weights for benchmarks and tests); it is the one candle's `Llama` gives the same weight.
fn get(vb: &VarBuilder, shape: &[usize], name: &str) -> candle_core::Result<Vec<f32>> {
    let init = if shape.len() == 1 {
        Init::Const(1.0) // norms
    } else if name.starts_with("embed_tokens") {
        Init::Randn { mean: 0.0, stdev: 1.0 }
    } else {
        DEFAULT_KAIMING_NORMAL
    };
    vb.get_with_hints(shape, name, init)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

/// Rows of several `nn.Linear` weights of the same input size, one after the other.
fn stacked(vb: &VarBuilder, parts: &[(&str, usize)], inputs: usize) -> candle_core::Result<Vec<f32>> {
    let mut w = Vec::with_capacity(parts.iter().map(|p| p.1).sum::<usize>() * inputs);
    for (name, rows) in parts {
        w.extend(get(vb, &[*rows, inputs], &format!("{name}.weight"))?);
    }
    Ok(w)
}

impl CpuLlama {
    /// Whether this decoder runs `config` (else use candle's `Llama`).
    pub fn supports(config: &Config) -> bool {
        config.rope_scaling.is_none()
            && config.num_attention_heads > 0
            && config.num_key_value_heads > 0
            && config.hidden_size.is_multiple_of(config.num_attention_heads)
            && config.num_attention_heads.is_multiple_of(config.num_key_value_heads)
            && (config.hidden_size / config.num_attention_heads).is_multiple_of(2)
    }

    /// Loads the weights (the names of candle's `Llama`: `model.embed_tokens`, `model.layers.N.*`,
    /// `model.norm`, `lm_head`) from `vb`.
    pub fn load(vb: VarBuilder, config: &Config) -> candle_core::Result<Self> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let head_dim = h / config.num_attention_heads;
        let kv = config.num_key_value_heads * head_dim;
        let m = vb.pp("model");
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for n in 0..config.num_hidden_layers {
            let l = m.pp(format!("layers.{n}"));
            let a = l.pp("self_attn");
            let f = l.pp("mlp");
            layers.push(Layer {
                attn_norm: get(&l, &[h], "input_layernorm.weight")?,
                qkv: stacked(&a, &[("q_proj", h), ("k_proj", kv), ("v_proj", kv)], h)?,
                o: get(&a, &[h, h], "o_proj.weight")?,
                mlp_norm: get(&l, &[h], "post_attention_layernorm.weight")?,
                gate_up: stacked(&f, &[("gate_proj", i), ("up_proj", i)], h)?,
                down: get(&f, &[h, i], "down_proj.weight")?,
            });
        }
        let embed = get(&m, &[config.vocab_size, h], "embed_tokens.weight")?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(get(&vb, &[config.vocab_size, h], "lm_head.weight")?)
        };
        let inv_freq = (0..head_dim)
            .step_by(2)
            .map(|j| 1f32 / config.rope_theta.powf(j as f32 / head_dim as f32))
            .collect();
        Ok(Self {
            embed,
            layers,
            norm: get(&m, &[h], "norm.weight")?,
            lm_head,
            hidden: h,
            intermediate: i,
            heads: config.num_attention_heads,
            kv_heads: config.num_key_value_heads,
            head_dim,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            eps: config.rms_norm_eps as f32,
            inv_freq,
        })
    }

    /// An empty cache for one generation of up to `positions` tokens (prompt included).
    pub fn cache(&self, positions: usize) -> KvCache {
        let width = positions.min(self.max_positions) * self.kv_heads * self.head_dim;
        let layers = self.layers.len();
        KvCache {
            keys: (0..layers).map(|_| Vec::with_capacity(width)).collect(),
            values: (0..layers).map(|_| Vec::with_capacity(width)).collect(),
            len: 0,
        }
    }

    /// Runs `tokens` (the prompt, then one token at a time) after what `cache` holds, and returns
    /// the logits of the last one (`vocab` values).
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> candle_core::Result<Vec<f32>> {
        let (n, h, d) = (tokens.len(), self.hidden, self.head_dim);
        let start = cache.len;
        if n == 0 {
            candle_core::bail!("no tokens to run");
        }
        if start + n > self.max_positions {
            candle_core::bail!("{} positions exceed the model's {}", start + n, self.max_positions);
        }
        let threads = candle_core::utils::get_num_threads();
        let kv = self.kv_heads * d;
        let qkv_width = h + 2 * kv;

        let mut x = Vec::with_capacity(n * h);
        for &t in tokens {
            let t = t as usize;
            if t >= self.vocab {
                candle_core::bail!("token id {t} is outside the vocabulary of {}", self.vocab);
            }
            x.extend_from_slice(&self.embed[t * h..(t + 1) * h]);
        }
        // cos / sin of every new position and frequency, shared by all layers.
        let half = d / 2;
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for p in start..start + n {
            for f in &self.inv_freq {
                let (s, c) = (p as f32 * f).sin_cos();
                cos.push(c);
                sin.push(s);
            }
        }

        let mut normed = vec![0f32; n * h];
        let mut qkv = vec![0f32; n * qkv_width];
        let mut attn = vec![0f32; n * h];
        let mut proj = vec![0f32; n * h];
        let mut gate_up = vec![0f32; n * 2 * self.intermediate];
        let mut gated = vec![0f32; n * self.intermediate];
        for (layer, (keys, values)) in
            self.layers.iter().zip(cache.keys.iter_mut().zip(cache.values.iter_mut()))
        {
            kernels::rms_norm(&x, &layer.attn_norm, self.eps, &mut normed);
            kernels::linear(&normed, n, &layer.qkv, &mut qkv, false, threads);
            for (t, row) in qkv.chunks_exact_mut(qkv_width).enumerate() {
                let (c, s) = (&cos[t * half..(t + 1) * half], &sin[t * half..(t + 1) * half]);
                // Query and key heads are rotated; values are not.
                for head in row[..h + kv].chunks_exact_mut(d) {
                    rotate(head, c, s);
                }
                keys.extend_from_slice(&row[h..h + kv]);
                values.extend_from_slice(&row[h + kv..]);
            }
            self.attention(&qkv, keys, values, start, &mut attn);
            kernels::linear(&attn, n, &layer.o, &mut proj, false, threads);
            x.iter_mut().zip(&proj).for_each(|(x, p)| *x += p);

            kernels::rms_norm(&x, &layer.mlp_norm, self.eps, &mut normed);
            kernels::linear(&normed, n, &layer.gate_up, &mut gate_up, false, threads);
            for (row, out) in
                gate_up.chunks_exact(2 * self.intermediate).zip(gated.chunks_exact_mut(self.intermediate))
            {
                kernels::silu_mul(row, out);
            }
            kernels::linear(&gated, n, &layer.down, &mut proj, false, threads);
            x.iter_mut().zip(&proj).for_each(|(x, p)| *x += p);
        }
        cache.len += n;

        let last = &x[(n - 1) * h..];
        let mut normed_last = vec![0f32; h];
        kernels::rms_norm(last, &self.norm, self.eps, &mut normed_last);
        let mut logits = vec![0f32; self.vocab];
        kernels::matvec(self.lm_head.as_ref().unwrap_or(&self.embed), &normed_last, &mut logits, threads);
        Ok(logits)
    }

    /// Causal attention of the `n` new tokens (queries in `qkv`) over all cached positions, into
    /// `out` (`n x hidden`), one task per (token, head).
    fn attention(&self, qkv: &[f32], keys: &[f32], values: &[f32], start: usize, out: &mut [f32]) {
        let (h, d) = (self.hidden, self.head_dim);
        let kv = self.kv_heads * d;
        let width = h + 2 * kv;
        let group = self.heads / self.kv_heads;
        let scale = 1.0 / (d as f32).sqrt();
        out.par_chunks_mut(d).enumerate().for_each_init(Vec::new, |scores: &mut Vec<f32>, (i, out)| {
            let (t, head) = (i / self.heads, i % self.heads);
            let q = &qkv[t * width + head * d..][..d];
            let g = head / group;
            let len = start + t + 1; // causal: this token and those before it
            scores.clear();
            scores.extend((0..len).map(|p| dot(q, &keys[p * kv + g * d..][..d]) * scale));
            kernels::softmax_rows(scores, len);
            out.fill(0.0);
            for (p, &w) in scores.iter().enumerate() {
                for (o, v) in out.iter_mut().zip(&values[p * kv + g * d..][..d]) {
                    *o += w * v;
                }
            }
        });
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Rotary embedding of one head, halves rotated (Llama's `rotate_half` form).
fn rotate(head: &mut [f32], cos: &[f32], sin: &[f32]) {
    let (first, second) = head.split_at_mut(cos.len());
    for (((a, b), c), s) in first.iter_mut().zip(second.iter_mut()).zip(cos).zip(sin) {
        let (x1, x2) = (*a, *b);
        *a = x1 * c - x2 * s;
        *b = x2 * c + x1 * s;
    }
}
