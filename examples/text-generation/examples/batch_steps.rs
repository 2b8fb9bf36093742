//! What batching can give on this CPU for a GGUF file, measured on llama.cpp alone (no worker,
//! no sampling, no HTTP): the time of one decode step with 1, 2, 4 and 8 sequences in it, each
//! sequence one token further per step, and the tokens/s that makes.
//!
//! ```text
//! cargo run --release -p text-generation --example batch_steps -- FILE.gguf [STEPS]
//! ```
//!
//! THREADS sets llama.cpp's threads (default 2). Each size runs STEPS steps (default 48) after a
//! 12-token prompt per sequence; the sizes run twice, in turn, to show the machine's drift.
//! The token ids are fixed numbers: the speed of a step does not depend on which tokens they are.

use std::num::NonZeroU32;
use std::time::Instant;

use anyhow::Context;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

/// The most sequences in a step.
const MOST: usize = 8;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().context("usage: batch_steps FILE.gguf [STEPS]")?;
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(48).max(1);
    let threads: i32 = std::env::var("THREADS").ok().map(|s| s.parse()).transpose()?.unwrap_or(2);

    let mut backend = LlamaBackend::init()?;
    backend.void_logs();
    let model = LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default())
        .with_context(|| format!("loading {path}"))?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new((MOST * 1024) as u32))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_seq_max(MOST as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(&backend, params)?;
    let prompt: Vec<LlamaToken> = (0..12).map(|i| LlamaToken(1000 + 37 * i)).collect();
    let mut batch = LlamaBatch::new(512, MOST as i32);
    let mut alone = 0.0;
    for size in [1, 2, 4, 8, 1, 2, 4, 8] {
        ctx.clear_kv_cache();
        batch.clear();
        for seq in 0..size {
            for (i, t) in prompt.iter().enumerate() {
                batch.add(*t, i as i32, &[seq as i32], i + 1 == prompt.len())?;
            }
        }
        ctx.decode(&mut batch)?;
        let started = Instant::now();
        for k in 0..steps {
            batch.clear();
            for seq in 0..size {
                batch.add(prompt[k % prompt.len()], (prompt.len() + k) as i32, &[seq as i32], true)?;
            }
            ctx.decode(&mut batch)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let rate = (steps * size) as f64 / seconds;
        if size == 1 {
            alone = rate;
        }
        println!(
            "{size} sequence(s): {:.2} ms a step, {rate:.1} tokens/s, {:.2}x one sequence's",
            seconds * 1000.0 / steps as f64,
            rate / alone
        );
    }
    Ok(())
}
