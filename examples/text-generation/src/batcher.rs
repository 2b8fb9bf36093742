//! GGUF models on llama.cpp, many requests at once: one thread owns the model's context and runs
//! the next step of every sequence in flight as one batch (continuous batching). A request joins
//! between two steps, a long prompt is fed in chunks between the others' tokens, each sequence
//! stops on its own, and a finished sequence's KV cells go to the next request.
//!
//! Callers hold a [`Sequence`] and call [`Sequence::forward`] with the tokens to add (the prompt,
//! then one sampled token at a time); it returns the logits after the last of them. Sampling
//! stays with the caller, so a sequence's text does not depend on which others ran beside it.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;

use crate::model::GenerateError;

/// Most tokens in one step (llama.cpp's `n_batch`): a prompt longer than this is fed in chunks.
const STEP_TOKENS: usize = 512;

/// How long a step waits for the sequences of the step before it to bring their next token:
/// they sample and come back within microseconds, unless their client is slow to read.
const GATHER: Duration = Duration::from_millis(5);

/// How a [`Batcher`] runs its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Sequences at once, each with its own KV cache of `context` tokens (at least 1).
    pub sequences: usize,
    /// Tokens per sequence, prompt and generation.
    pub context: usize,
    /// CPU threads (default: every core).
    pub threads: usize,
    /// Model layers offloaded to the GPU (0: all on the CPU).
    pub gpu_layers: u32,
}

impl BatcherConfig {
    /// `sequences` at once with `context` tokens each, on every core of the CPU.
    pub fn cpu(sequences: usize, context: usize) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { sequences: sequences.max(1), context, threads, gpu_layers: 0 }
    }
}

/// llama.cpp's process-wide state, set up once (its logs are dropped: errors come back as
/// values, with the file named).
fn backend() -> Result<&'static LlamaBackend, GenerateError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut b = LlamaBackend::init().map_err(|e| e.to_string())?;
            b.void_logs();
            Ok(b)
        })
        .as_ref()
        .map_err(|e| GenerateError::Internal(format!("llama.cpp did not start: {e}")))
}

/// One step of one sequence: tokens to add at `pos`, and where the logits after them go.
struct Step {
    seq: i32,
    tokens: Vec<LlamaToken>,
    pos: i32,
    /// Tokens of `tokens` already in the KV cache (a prompt fed in chunks).
    done: usize,
    reply: SyncSender<Result<Vec<f32>, String>>,
}

enum Msg {
    Step(Step),
    /// The sequence ended: free its KV cells and its slot.
    Release(i32),
}

/// What the model thread has run, for logs and tests.
#[derive(Debug, Default)]
pub struct BatcherStats {
    /// Batches run (`llama_decode` calls).
    pub steps: AtomicU64,
    /// Steps that ran tokens of more than one sequence.
    pub shared_steps: AtomicU64,
    /// The most sequences one step has run.
    pub most_sequences: AtomicU64,
}

/// The free sequence ids, shared with the model thread (which returns an id once its cells are
/// cleared).
#[derive(Default)]
struct Slots {
    free: Mutex<Vec<i32>>,
    returned: Condvar,
}

/// A GGUF model on llama.cpp serving up to [`BatcherConfig::sequences`] sequences at once.
pub struct Batcher {
    model: Arc<LlamaModel>,
    steps: Sender<Msg>,
    slots: Arc<Slots>,
    stats: Arc<BatcherStats>,
    config: BatcherConfig,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Batcher {
    /// Loads the GGUF file at `path` and starts the thread that runs it.
    pub fn start(path: &Path, config: BatcherConfig) -> Result<Self, GenerateError> {
        let backend = backend()?;
        let model = Arc::new(load(backend, path, &config)?);
        let (steps, inbox) = mpsc::channel();
        let (ready, made) = mpsc::sync_channel(1);
        let slots = Arc::new(Slots {
            free: Mutex::new((0..config.sequences as i32).rev().collect()),
            ..Default::default()
        });
        let stats = Arc::new(BatcherStats::default());
        let (cfg, thread_model, thread_slots, thread_stats) =
            (config.clone(), model.clone(), slots.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("llama.cpp".into())
            .spawn(move || {
                let ctx = match context(backend, &thread_model, &cfg) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                run(ctx, &inbox, &thread_slots, &thread_stats, cfg.sequences);
            })
            .map_err(|e| GenerateError::Internal(format!("could not start the llama.cpp thread: {e}")))?;
        made.recv()
            .map_err(|_| GenerateError::Internal("the llama.cpp thread ended while starting".into()))??;
        Ok(Self { model, steps, slots, stats, config, thread: Some(thread) })
    }

    /// A sampler that holds a sequence to `grammar` (GBNF, its rule `root`): see [`Grammar`].
    pub fn grammar(&self, grammar: &str) -> Result<Grammar, GenerateError> {
        let sampler = LlamaSampler::grammar(&self.model, grammar, "root")
            .map_err(|e| GenerateError::BadInput(format!("llama.cpp could not read the grammar: {e}")))?;
        Ok(Grammar { sampler })
    }

    /// What it has run so far.
    pub fn stats(&self) -> &BatcherStats {
        &self.stats
    }

    /// How it runs.
    pub fn config(&self) -> &BatcherConfig {
        &self.config
    }

    /// The size of the logits [`Sequence::forward`] returns.
    pub fn vocab_size(&self) -> usize {
        usize::try_from(self.model.n_vocab()).unwrap_or(0)
    }

    /// A new sequence with an empty cache; waits for a free one while all are in use, asking
    /// `cancelled` ten times a second (`None` once it says yes).
    pub fn sequence(&self, cancelled: &mut dyn FnMut() -> bool) -> Option<Sequence<'_>> {
        let mut free = self.slots.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            // The lowest free id: see `plan` on why the ids in use should be consecutive.
            if let Some(at) = free.iter().enumerate().min_by_key(|(_, s)| **s).map(|(at, _)| at) {
                return Some(Sequence { batcher: self, seq: free.swap_remove(at), pos: 0 });
            }
            if cancelled() {
                return None;
            }
            free = self
                .slots
                .returned
                .wait_timeout(free, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        // Closing the channel ends the thread once no sequence holds a step in flight.
        let (steps, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.steps, steps));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request's place in the [`Batcher`]: its KV cache and position. Dropping it frees both.
#[derive(Debug)]
pub struct Sequence<'a> {
    batcher: &'a Batcher,
    seq: i32,
    pos: usize,
}

impl Sequence<'_> {
    /// Adds `tokens` after those before and returns the logits after the last of them; runs in
    /// the next step, beside the other sequences' tokens.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
        if tokens.is_empty() {
            return Err(GenerateError::Internal("a step with no tokens".into()));
        }
        let tokens: Vec<LlamaToken> = tokens
            .iter()
            .map(|&t| {
                i32::try_from(t)
                    .map(LlamaToken)
                    .map_err(|_| GenerateError::Engine(format!("token id {t} out of range")))
            })
            .collect::<Result<_, _>>()?;
        let n = tokens.len();
        let pos =
            i32::try_from(self.pos).map_err(|_| GenerateError::Engine("position out of range".into()))?;
        let (reply, logits) = mpsc::sync_channel(1);
        self.batcher
            .steps
            .send(Msg::Step(Step { seq: self.seq, tokens, pos, done: 0, reply }))
            .map_err(|_| GenerateError::Internal("the llama.cpp thread has ended".into()))?;
        let out = logits
            .recv()
            .map_err(|_| GenerateError::Internal("the llama.cpp thread has ended".into()))?
            .map_err(GenerateError::Engine)?;
        self.pos += n;
        Ok(out)
    }
}

impl Drop for Sequence<'_> {
    fn drop(&mut self) {
        if self.batcher.steps.send(Msg::Release(self.seq)).is_err() {
            // No thread to clear the cells: the id still goes back (nothing will run anyway).
            self.batcher.slots.free.lock().unwrap_or_else(|p| p.into_inner()).push(self.seq);
        }
    }
}

fn load(backend: &LlamaBackend, path: &Path, cfg: &BatcherConfig) -> Result<LlamaModel, GenerateError> {
    let params = LlamaModelParams::default().with_n_gpu_layers(cfg.gpu_layers);
    LlamaModel::load_from_file(backend, path, &params)
        .map_err(|e| GenerateError::Weights(format!("{}: llama.cpp could not load it: {e}", path.display())))
}

fn context<'m>(
    backend: &LlamaBackend,
    model: &'m LlamaModel,
    cfg: &BatcherConfig,
) -> Result<LlamaContext<'m>, GenerateError> {
    let cells = cfg
        .context
        .checked_mul(cfg.sequences)
        .and_then(|c| u32::try_from(c).ok())
        .and_then(NonZeroU32::new)
        .ok_or_else(|| {
            GenerateError::BadInput(format!("{} sequences of {} tokens", cfg.sequences, cfg.context))
        })?;
    let threads = i32::try_from(cfg.threads.max(1)).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(Some(cells))
        .with_n_batch(STEP_TOKENS as u32)
        .with_n_ubatch(STEP_TOKENS as u32)
        .with_n_seq_max(cfg.sequences as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    model.new_context(backend, params).map_err(|e| {
        GenerateError::Engine(format!("llama.cpp could not make a context of {cells} tokens: {e}"))
    })
}

/// Which of the queued steps run next, and how many of their tokens: decoding sequences first
/// (one token each), then prompts in what room is left; as `(queue index, tokens)`, in order of
/// sequence id, the order their tokens go into the batch. Each sequence has its own KV cache,
/// and llama.cpp runs one graph over sequences only while their ids follow each other (0, 1,
/// 2 ...) in the batch: out of order, a step of 8 sequences became several graphs, each reading
/// every weight again. (A unified cache runs any batch as one graph, but with it a greedy text
/// batched differed from the same text alone in tests/it/batching.rs.)
fn plan(queue: &VecDeque<Step>) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..queue.len()).collect();
    order.sort_by_key(|&i| queue[i].tokens.len() - queue[i].done);
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    let mut room = STEP_TOKENS;
    for i in order {
        if room == 0 {
            break;
        }
        let n = (queue[i].tokens.len() - queue[i].done).min(room);
        room -= n;
        chosen.push((i, n));
    }
    chosen.sort_by_key(|&(i, _)| queue[i].seq);
    chosen
}

/// The model thread: takes steps, runs them together, answers each; ends when every sender
/// is gone.
fn run(
    mut ctx: LlamaContext<'_>,
    inbox: &Receiver<Msg>,
    slots: &Slots,
    stats: &BatcherStats,
    sequences: usize,
) {
    let mut queue: VecDeque<Step> = VecDeque::new();
    // The sequences answered by the last step: the next step waits (briefly) for them.
    let mut expected: Vec<i32> = Vec::new();
    let mut batch = LlamaBatch::new(STEP_TOKENS, sequences as i32);
    let take =
        |msg: Msg, queue: &mut VecDeque<Step>, expected: &mut Vec<i32>, ctx: &mut LlamaContext<'_>| match msg
        {
            Msg::Step(s) => queue.push_back(s),
            Msg::Release(seq) => {
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                expected.retain(|&s| s != seq);
                queue.retain(|s| s.seq != seq);
                slots.free.lock().unwrap_or_else(|p| p.into_inner()).push(seq);
                slots.returned.notify_one();
            }
        };
    loop {
        if queue.is_empty() {
            match inbox.recv() {
                Ok(m) => take(m, &mut queue, &mut expected, &mut ctx),
                Err(_) => return,
            }
        }
        let deadline = Instant::now() + GATHER;
        loop {
            while let Ok(m) = inbox.try_recv() {
                take(m, &mut queue, &mut expected, &mut ctx);
            }
            if expected.iter().all(|s| queue.iter().any(|q| q.seq == *s)) {
                break;
            }
            match inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(m) => take(m, &mut queue, &mut expected, &mut ctx),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if queue.is_empty() {
            continue;
        }
        let chosen = plan(&queue);
        batch.clear();
        // (queue index, tokens taken, batch index of the logits when the step completes)
        let mut taken: Vec<(usize, usize, Option<i32>)> = Vec::new();
        let mut failed: Option<String> = None;
        for (i, n) in chosen {
            let s = &queue[i];
            let completes = s.done + n == s.tokens.len();
            for (k, t) in s.tokens[s.done..s.done + n].iter().enumerate() {
                let last = completes && k + 1 == n;
                let pos = s.pos + (s.done + k) as i32;
                if let Err(e) = batch.add(*t, pos, &[s.seq], last) {
                    failed = Some(e.to_string());
                }
            }
            taken.push((i, n, completes.then(|| batch.n_tokens() - 1)));
        }
        stats.steps.fetch_add(1, Ordering::Relaxed);
        if taken.len() > 1 {
            stats.shared_steps.fetch_add(1, Ordering::Relaxed);
        }
        stats.most_sequences.fetch_max(taken.len() as u64, Ordering::Relaxed);
        let result = match failed {
            Some(e) => Err(e),
            None => ctx.decode(&mut batch).map_err(|e| format!("llama.cpp could not run the batch: {e}")),
        };
        expected.clear();
        let mut finished: Vec<usize> = Vec::new();
        for (i, n, logits_at) in taken {
            let s = &mut queue[i];
            match (&result, logits_at) {
                (Err(e), _) => {
                    let _ = s.reply.send(Err(e.clone()));
                    finished.push(i);
                }
                (Ok(()), Some(at)) => {
                    let _ = s.reply.send(Ok(ctx.get_logits_ith(at).to_vec()));
                    expected.push(s.seq);
                    finished.push(i);
                }
                (Ok(()), None) => s.done += n,
            }
        }
        finished.sort_unstable_by(|a, b| b.cmp(a));
        for i in finished {
            queue.remove(i);
        }
    }
}

/// Which tokens may come next under a grammar (llama.cpp's grammar sampler): [`Grammar::mask`]
/// the logits before sampling, [`Grammar::accept`] the token sampled.
pub struct Grammar {
    sampler: LlamaSampler,
}

impl std::fmt::Debug for Grammar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grammar").finish_non_exhaustive()
    }
}

impl Grammar {
    /// Sets the logit of every token the grammar does not allow next to minus infinity (the
    /// end-of-sequence tokens are allowed once the grammar is complete).
    pub fn mask(&mut self, logits: &mut [f32]) {
        let data = logits.iter().enumerate().map(|(i, &l)| LlamaTokenData::new(LlamaToken(i as i32), l, 0.0));
        let mut candidates = LlamaTokenDataArray::from_iter(data, false);
        self.sampler.apply(&mut candidates);
        for d in &candidates.data {
            if let Some(l) = usize::try_from(d.id().0).ok().and_then(|i| logits.get_mut(i)) {
                *l = d.logit();
            }
        }
    }

    /// Whether the grammar allows `token` next.
    pub fn allows(&mut self, token: u32) -> bool {
        let one = LlamaTokenData::new(LlamaToken(token as i32), 0.0, 0.0);
        let mut candidates = LlamaTokenDataArray::new(vec![one], false);
        self.sampler.apply(&mut candidates);
        candidates.data.first().is_some_and(|d| d.logit() != f32::NEG_INFINITY)
    }

    /// Moves the grammar past `token` (one [`Grammar::allows`]).
    pub fn accept(&mut self, token: u32) {
        self.sampler.accept(LlamaToken(token as i32));
    }
}

/// llama.cpp's own tokenizer of a GGUF file (its vocabulary only, no weights): the reference
/// that the tokenizer [`crate::gguf::vocab_from_gguf`] builds is checked against.
pub struct LlamaTokenizer {
    model: LlamaModel,
}

impl std::fmt::Debug for LlamaTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaTokenizer").finish_non_exhaustive()
    }
}

impl LlamaTokenizer {
    /// Reads the vocabulary of the GGUF file at `path`.
    pub fn load(path: &Path) -> Result<Self, GenerateError> {
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(backend()?, path, &params).map_err(|e| {
            GenerateError::Tokenizer(format!("{}: llama.cpp could not read it: {e}", path.display()))
        })?;
        Ok(Self { model })
    }

    /// The token ids of `text`: BOS first when the file asks for it, special tokens written in
    /// the text matched whole (llama.cpp's `add_special` and `parse_special`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let vocab = self.model.vocab();
        vocab.tokenize(text.as_bytes(), true, true).into_iter().map(|t| t.0 as u32).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(seq: i32, tokens: usize, done: usize) -> Step {
        let (reply, _) = mpsc::sync_channel(1);
        Step { seq, tokens: vec![LlamaToken(1); tokens], pos: 0, done, reply }
    }

    #[test]
    fn a_step_takes_decoding_sequences_first_and_goes_in_order_of_id() {
        // Queued in arrival order: a long prompt, three decoding sequences, a short prompt, and
        // a prompt half fed already.
        let queue: VecDeque<Step> =
            [step(5, 600, 0), step(3, 1, 0), step(0, 1, 0), step(4, 1, 0), step(1, 20, 0), step(2, 700, 400)]
                .into_iter()
                .collect();
        let chosen = plan(&queue);
        let seqs: Vec<i32> = chosen.iter().map(|&(i, _)| queue[i].seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4, 5], "in order of sequence id");
        let tokens: Vec<usize> = chosen.iter().map(|&(_, n)| n).collect();
        // 3 decode tokens, the 20-token prompt, the 300 left of the half-fed one, and the rest
        // of the room (512 - 323 = 189) for the long prompt.
        assert_eq!(tokens, [1, 20, 300, 1, 1, 189]);
    }

    #[test]
    fn a_full_step_leaves_the_rest_for_the_next() {
        let queue: VecDeque<Step> = [step(1, 1, 0), step(0, STEP_TOKENS, 0)].into_iter().collect();
        let chosen = plan(&queue);
        assert_eq!(chosen, [(1, STEP_TOKENS - 1), (0, 1)], "the decode token first, the prompt cut to fit");
    }
}
