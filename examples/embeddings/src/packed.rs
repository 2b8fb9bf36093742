//! A BERT encoder for the CPU that runs a batch as one packed matrix of its real tokens.
//!
//! candle's `BertModel` pads every sequence of a batch to the longest and runs attention as a
//! batched product over (sequence, head) pairs, one `gemm` call each, with every op writing a
//! new tensor. Here the tokens of all sequences are the rows of one `(tokens, hidden)` matrix
//! with no padding at all, so the dense layers (nearly all of the work) do none wasted, and:
//!
//! - query, key and value are one product with the three weight matrices side by side;
//! - each dense layer's bias is added by the product itself (the output starts as the bias);
//! - attention runs per sequence, each on its own length, its heads read in place from the
//!   fused query/key/value rows (no transposes or copies), sequences spread over the threads;
//! - bias + GELU, and bias + residual + layer norm, are one pass each ([`crate::kernels`]);
//! - the buffers are allocated once per batch and reused by every layer.
//!
//! Products use the `gemm` crate, the CPU kernel candle itself uses, on candle's thread count
//! (`RAYON_NUM_THREADS`, else one per CPU). Mean pooling is over each sequence's own tokens,
//! which is what masked mean pooling over a padded batch computes.
#![allow(unsafe_code, reason = "the gemm crate's matrix product takes raw pointers and strides")]

use candle_core::DType;
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

use example_support::kernels::{self, Activation};

/// One input sequence: token ids and token type ids, of the same length.
#[derive(Debug, Clone, Copy)]
pub struct Sequence<'a> {
    /// Token ids (special tokens included).
    pub ids: &'a [u32],
    /// Token type (segment) ids.
    pub types: &'a [u32],
}

/// A dense layer `y = x W^T + b`, its weight stored transposed, `(in, out)` row-major.
struct Dense {
    w_t: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    qkv: Dense,
    attn_out: Dense,
    attn_norm: Norm,
    up: Dense,
    down: Dense,
    out_norm: Norm,
}

/// The encoder's weights, in the layout the forward pass wants.
pub struct PackedBert {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    vocab: usize,
    positions: usize,
    type_vocab: usize,
    eps: f32,
    act: Activation,
}

// A summary: the weights and buffers are far too big to print.
impl std::fmt::Debug for PackedBert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedBert")
            .field("layers", &self.layers.len())
            .field("hidden", &self.hidden)
            .field("heads", &self.heads)
            .field("vocab", &self.vocab)
            .finish_non_exhaustive()
    }
}

fn tensor(vb: &VarBuilder, shape: &[usize], name: &str) -> candle_core::Result<Vec<f32>> {
    vb.get(shape, name)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

impl Dense {
    /// Loads one or more `nn.Linear` layers of the same input size as one layer whose outputs
    /// are theirs side by side (query, key and value into one product).
    fn load(vbs: &[VarBuilder], inputs: usize, outputs: usize) -> candle_core::Result<Self> {
        let total = outputs * vbs.len();
        let mut w_t = vec![0f32; inputs * total];
        let mut bias = Vec::with_capacity(total);
        for (part, vb) in vbs.iter().enumerate() {
            let w = tensor(vb, &[outputs, inputs], "weight")?;
            for o in 0..outputs {
                for i in 0..inputs {
                    w_t[i * total + part * outputs + o] = w[o * inputs + i];
                }
            }
            bias.extend(tensor(vb, &[outputs], "bias")?);
        }
        Ok(Self { w_t, bias, inputs, outputs: total })
    }

    /// `out = x W^T + b` for the `rows` rows of `x`.
    fn forward(&self, x: &[f32], rows: usize, out: &mut [f32], threads: usize) {
        for row in out[..rows * self.outputs].chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        self.product(x, rows, out, true, threads);
    }

    /// `out = x W^T` (`accumulate`: `out += x W^T`).
    fn product(&self, x: &[f32], rows: usize, out: &mut [f32], accumulate: bool, threads: usize) {
        assert!(x.len() >= rows * self.inputs && out.len() >= rows * self.outputs);
        if rows == 0 {
            return;
        }
        let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
        // SAFETY: the slices hold rows x inputs, inputs x outputs and rows x outputs values
        // (asserted above), row-major with the strides given; `out` does not alias the others.
        unsafe {
            gemm(
                rows,
                self.outputs,
                self.inputs,
                out.as_mut_ptr(),
                1,
                self.outputs as isize,
                accumulate,
                x.as_ptr(),
                1,
                self.inputs as isize,
                self.w_t.as_ptr(),
                1,
                self.outputs as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

impl Norm {
    fn load(vb: &VarBuilder, size: usize) -> candle_core::Result<Self> {
        // Older checkpoints call the parameters gamma/beta.
        let (g, b) = if vb.contains_tensor("weight") { ("weight", "bias") } else { ("gamma", "beta") };
        Ok(Self { gamma: tensor(vb, &[size], g)?, beta: tensor(vb, &[size], b)? })
    }
}

impl PackedBert {
    /// Whether this encoder can run `config` (else use candle's `BertModel`).
    pub fn supports(config: &Config) -> bool {
        config.num_attention_heads > 0 && config.hidden_size.is_multiple_of(config.num_attention_heads)
    }

    /// Loads the weights (names as in candle's `BertModel`: `embeddings.*`, `encoder.layer.N.*`,
    /// or the same under `{model_type}.`) from `vb` into this encoder's layout.
    pub fn load(vb: VarBuilder, config: &Config) -> candle_core::Result<Self> {
        let vb = if !vb.contains_tensor("embeddings.word_embeddings.weight") {
            match &config.model_type {
                Some(prefix)
                    if vb.contains_tensor(&format!("{prefix}.embeddings.word_embeddings.weight")) =>
                {
                    vb.pp(prefix)
                }
                _ => vb,
            }
        } else {
            vb
        };
        let h = config.hidden_size;
        let emb = vb.pp("embeddings");
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let att = l.pp("attention");
            let s = att.pp("self");
            layers.push(Layer {
                qkv: Dense::load(&[s.pp("query"), s.pp("key"), s.pp("value")], h, h)?,
                attn_out: Dense::load(&[att.pp("output.dense")], h, h)?,
                attn_norm: Norm::load(&att.pp("output.LayerNorm"), h)?,
                up: Dense::load(&[l.pp("intermediate.dense")], h, config.intermediate_size)?,
                down: Dense::load(&[l.pp("output.dense")], config.intermediate_size, h)?,
                out_norm: Norm::load(&l.pp("output.LayerNorm"), h)?,
            });
        }
        Ok(Self {
            word: tensor(&emb, &[config.vocab_size, h], "word_embeddings.weight")?,
            position: tensor(&emb, &[config.max_position_embeddings, h], "position_embeddings.weight")?,
            token_type: tensor(&emb, &[config.type_vocab_size, h], "token_type_embeddings.weight")?,
            embed_norm: Norm::load(&emb.pp("LayerNorm"), h)?,
            layers,
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: config.intermediate_size,
            vocab: config.vocab_size,
            positions: config.max_position_embeddings,
            type_vocab: config.type_vocab_size,
            eps: config.layer_norm_eps as f32,
            act: match config.hidden_act {
                HiddenAct::Gelu => Activation::GeluErf,
                HiddenAct::GeluApproximate => Activation::GeluTanh,
                HiddenAct::Relu => Activation::Relu,
            },
        })
    }

    /// Runs the encoder over `seqs` and returns each sequence's mean-pooled last hidden state
    /// (`hidden` values per sequence, in order).
    pub fn mean_pooled(&self, seqs: &[Sequence]) -> candle_core::Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let mut offsets = Vec::with_capacity(seqs.len() + 1);
        offsets.push(0);
        for s in seqs {
            if s.ids.len() != s.types.len() {
                candle_core::bail!(
                    "ids and type ids differ in length ({} vs {})",
                    s.ids.len(),
                    s.types.len()
                );
            }
            if s.ids.len() > self.positions {
                candle_core::bail!("{} tokens exceed the model's {} positions", s.ids.len(), self.positions);
            }
            offsets.push(offsets.last().unwrap_or(&0) + s.ids.len());
        }
        let tokens = *offsets.last().unwrap_or(&0);
        let threads = candle_core::utils::get_num_threads();

        // Embeddings: word + position + token type, then layer norm.
        let mut x = vec![0f32; tokens * h];
        for (s, seq) in seqs.iter().enumerate() {
            for (p, (&id, &ty)) in seq.ids.iter().zip(seq.types).enumerate() {
                let (id, ty) = (id as usize, ty as usize);
                if id >= self.vocab || ty >= self.type_vocab {
                    candle_core::bail!("token id {id} or type {ty} is outside the model's vocabulary");
                }
                let row = &mut x[(offsets[s] + p) * h..][..h];
                let (w, pos) = (&self.word[id * h..][..h], &self.position[p * h..][..h]);
                for (((r, a), b), c) in row.iter_mut().zip(w).zip(pos).zip(&self.token_type[ty * h..][..h]) {
                    *r = a + b + c;
                }
            }
        }
        let norm = &self.embed_norm;
        rows_in_parallel(&mut x, h, threads)
            .into_par_iter()
            .for_each(|rows| kernels::norm(rows, &norm.gamma, &norm.beta, self.eps));

        let mut qkv = vec![0f32; tokens * 3 * h];
        let mut ctx = vec![0f32; tokens * h];
        let mut tmp = vec![0f32; tokens * h];
        let mut up = vec![0f32; tokens * self.intermediate];
        for layer in &self.layers {
            layer.qkv.forward(&x, tokens, &mut qkv, threads);
            self.attention(&qkv, &offsets, &mut ctx);
            layer.attn_out.product(&ctx, tokens, &mut tmp, false, threads);
            self.add_norm(&mut x, &tmp, &layer.attn_out.bias, &layer.attn_norm, threads);
            layer.up.product(&x, tokens, &mut up, false, threads);
            let (act, bias) = (self.act, &layer.up.bias);
            rows_in_parallel(&mut up, self.intermediate, threads)
                .into_par_iter()
                .for_each(|rows| kernels::bias_act(rows, bias, act));
            layer.down.product(&up, tokens, &mut tmp, false, threads);
            self.add_norm(&mut x, &tmp, &layer.down.bias, &layer.out_norm, threads);
        }

        let mut pooled = vec![vec![0f32; h]; seqs.len()];
        for (s, out) in pooled.iter_mut().enumerate() {
            kernels::mean_rows(&x[offsets[s] * h..offsets[s + 1] * h], out);
        }
        Ok(pooled)
    }

    /// `x = norm(x + delta + bias)`, rows split over the threads.
    fn add_norm(&self, x: &mut [f32], delta: &[f32], bias: &[f32], norm: &Norm, threads: usize) {
        let h = self.hidden;
        let chunks = rows_in_parallel(x, h, threads);
        let mut start = 0;
        let mut jobs = Vec::with_capacity(chunks.len());
        for rows in chunks {
            let len = rows.len();
            jobs.push((rows, &delta[start..start + len]));
            start += len;
        }
        jobs.into_par_iter().for_each(|(rows, delta)| {
            kernels::add_norm(rows, delta, bias, &norm.gamma, &norm.beta, self.eps)
        });
    }

    /// Scaled dot-product attention of every sequence, head by head, into `ctx` (tokens x hidden).
    fn attention(&self, qkv: &[f32], offsets: &[usize], ctx: &mut [f32]) {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        // One task per sequence: it owns that sequence's rows of `ctx`.
        let mut tasks = Vec::with_capacity(offsets.len() - 1);
        let mut rest = ctx;
        for w in offsets.windows(2) {
            let (mine, tail) = rest.split_at_mut((w[1] - w[0]) * h);
            tasks.push((w[0], w[1] - w[0], mine));
            rest = tail;
        }
        tasks.into_par_iter().for_each_init(Vec::new, |scores: &mut Vec<f32>, (start, len, out)| {
            if len == 0 {
                return;
            }
            scores.resize(len * len, 0.0);
            let rows = &qkv[start * 3 * h..(start + len) * 3 * h];
            for head in 0..self.heads {
                let q = rows[head * d..].as_ptr();
                let k = rows[h + head * d..].as_ptr();
                let v = rows[2 * h + head * d..].as_ptr();
                // SAFETY: q, k and v point into `rows`, which holds `len` rows of 3h values; each
                // product reads `len` rows of `d` values at stride 3h from its start, which stays
                // inside `rows` (head * d + d <= h). `scores` holds len x len values and `out`
                // len rows of h values, written at columns head * d .. head * d + d.
                unsafe {
                    // scores = scale * q k^T   (len x d) (d x len)
                    gemm(
                        len,
                        len,
                        d,
                        scores.as_mut_ptr(),
                        1,
                        len as isize,
                        false,
                        q,
                        1,
                        3 * h as isize,
                        k,
                        3 * h as isize,
                        1,
                        0.0,
                        scale,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
                kernels::softmax_rows(scores, len);
                // SAFETY: as above.
                unsafe {
                    // out[:, head] = scores v   (len x len) (len x d)
                    gemm(
                        len,
                        d,
                        len,
                        out[head * d..].as_mut_ptr(),
                        1,
                        h as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        len as isize,
                        v,
                        1,
                        3 * h as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            }
        });
    }
}

/// Splits `x` (rows of `width`) into about `threads * 4` runs of whole rows, for rayon.
fn rows_in_parallel(x: &mut [f32], width: usize, threads: usize) -> Vec<&mut [f32]> {
    let rows = x.len() / width.max(1);
    let per = rows.div_ceil((threads * 4).max(1)).max(1);
    x.chunks_mut(per * width).collect()
}
