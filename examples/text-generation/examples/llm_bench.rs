//! The GGUF worker as a client sees it (runpod-local's OpenAI route, streamed) against
//! llama-cpp-python in-process on the same file, same threads, with the worker's model called
//! in-process beside them (what the route adds); run by `scripts/bench-llm.sh`,
//! which builds the peer and sets the variables:
//!
//! ```text
//! RUNPOD_TEST_SMOLLM2_GGUF=FILE BENCH_LLAMA_CPP_PYTHON=PYTHON [THREADS=N] \
//!   cargo run --release -p text-generation --example llm_bench -- [ROUNDS]
//! ```
//!
//! Interleaved request by request, min/median/max over ROUNDS (default 5): the first token
//! after a 32-token and a 512-token prompt, decode tokens/s over 128 greedy tokens; then the
//! first 32 greedy tokens' text of 20 chat prompts, ours against the peer's; then 8 chats
//! streamed at once against the same 8 one at a time (total tokens/s, and each text the same),
//! and 8 copies of one 128-token request at once against one alone (equal work per stream).
//! The peer resets its KV cache before each request (else it skips a prompt that starts like
//! the last one).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use candle_core::Device;
use example_support::local_worker::{LocalWorker, API_KEY};
use futures::StreamExt;
use serde_json::{json, Value};
use text_generation::batcher::BatcherConfig;
use text_generation::gguf::{GgufModel, MAX_CONTEXT};
use text_generation::{GenerateHandler, Params};

/// Sequences the worker batches (and jobs it takes at once).
const SEQUENCES: usize = 8;

/// One request: tokens generated, seconds in all, seconds to the first text, the text.
#[derive(Debug, Clone)]
struct Run {
    tokens: f64,
    seconds: f64,
    ttft: f64,
    text: String,
}

impl Run {
    /// Tokens per second after the first token.
    fn decode_rate(&self) -> f64 {
        (self.tokens - 1.0) / (self.seconds - self.ttft)
    }
}

/// min / median / max of `xs`.
fn spread(mut xs: Vec<f64>) -> [f64; 3] {
    xs.sort_by(f64::total_cmp);
    [xs[0], xs[xs.len() / 2], xs[xs.len() - 1]]
}

/// Prints one figure's row: ours through the route, ours in-process, theirs, and the ratios of
/// the medians (higher is better for us).
fn row(name: &str, [route, inproc, theirs]: [Vec<f64>; 3], unit: &str, higher_is_better: bool) {
    let [a, b, c] = [spread(route), spread(inproc), spread(theirs)];
    let ratio = |x: f64| if higher_is_better { x / c[1] } else { c[1] / x };
    let cell = |v: [f64; 3]| format!("{:.1} / {:.1} / {:.1} {unit}", v[0], v[1], v[2]);
    println!(
        "| {name} | {} | {} | {} | {:.2}x | {:.2}x |",
        cell(a),
        cell(b),
        cell(c),
        ratio(a[1]),
        ratio(b[1])
    );
}

struct Peer {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Peer {
    fn start(python: &str, gguf: &str, threads: usize) -> anyhow::Result<Peer> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/llama_cpp_peer.py");
        let mut child = Command::new(python)
            .args([script, gguf, &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the llama-cpp-python peer")?;
        let mut out = BufReader::new(child.stdout.take().context("peer stdout")?);
        let mut ready = String::new();
        out.read_line(&mut ready)?;
        anyhow::ensure!(ready.contains("ready"), "the peer did not start: {ready:?}");
        Ok(Peer { child, out })
    }

    fn run(&mut self, prompt: &str, max_tokens: usize) -> anyhow::Result<Run> {
        let stdin = self.child.stdin.as_mut().context("peer stdin")?;
        writeln!(stdin, "{}", json!({"prompt": prompt, "max_tokens": max_tokens}))?;
        let mut answer = String::new();
        self.out.read_line(&mut answer)?;
        let v: Value = serde_json::from_str(&answer).with_context(|| format!("peer said {answer:?}"))?;
        Ok(Run {
            tokens: v["tokens"].as_f64().unwrap_or(0.0),
            seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
            ttft: v["ttft"].as_f64().unwrap_or(f64::NAN),
            text: v["text"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// A streamed greedy `/openai/v1/completions` call, timed from the request to the first text
/// and to its end.
async fn ours(
    http: &reqwest::Client,
    base: &str,
    model: &str,
    prompt: &str,
    max_tokens: usize,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let body = json!({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": true,
                      "stream_options": {"include_usage": true}});
    let resp =
        http.post(format!("{base}/openai/v1/completions")).bearer_auth(API_KEY).json(&body).send().await?;
    let status = resp.status();
    anyhow::ensure!(status.is_success(), "status {status}: {}", resp.text().await.unwrap_or_default());
    let mut bytes = resp.bytes_stream();
    let (mut first, mut n, mut buf, mut text) = (None, 0.0, String::new(), String::new());
    while let Some(chunk) = bytes.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event.trim().trim_start_matches("data: ");
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data)?;
            if let Some(t) = v["choices"][0]["text"].as_str().filter(|t| !t.is_empty()) {
                first.get_or_insert_with(|| started.elapsed().as_secs_f64());
                text.push_str(t);
            }
            if let Some(u) = v["usage"]["completion_tokens"].as_f64() {
                n = u;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Run { tokens: n, seconds, ttft: first.unwrap_or(seconds), text })
}

/// Times the first text and the end of an in-process generation (no HTTP).
struct Clock {
    started: Instant,
    first: Option<f64>,
    text: String,
}

impl text_generation::Observer for Clock {
    fn text(&mut self, piece: &str) {
        self.first.get_or_insert_with(|| self.started.elapsed().as_secs_f64());
        self.text.push_str(piece);
    }
}

/// The same greedy generation as [`ours`], called in-process on the handler's model: what the
/// worker adds over llama.cpp is the difference to [`ours`].
fn in_process(handler: &GenerateHandler, prompt: &str, max_tokens: usize) -> anyhow::Result<Run> {
    let params = Params { max_tokens, temperature: 0.0, top_p: None, seed: 1, stop: vec![] };
    let mut clock = Clock { started: Instant::now(), first: None, text: String::new() };
    let out = tokio::task::block_in_place(|| handler.model().generate(prompt, &params, &mut clock))?;
    let seconds = clock.started.elapsed().as_secs_f64();
    Ok(Run {
        tokens: out.generated_tokens as f64,
        seconds,
        ttft: clock.first.unwrap_or(seconds),
        text: clock.text,
    })
}

/// A chat prompt in SmolLM2's template (the raw text both sides tokenize the same way).
fn chat(question: &str) -> String {
    format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")
}

/// The first `n` tokens of the essay, as text.
fn prompt_of(model: &GgufModel, n: usize) -> anyhow::Result<String> {
    let essay = include_str!("../bench/essay.txt");
    let ids = model.encode(essay)?;
    anyhow::ensure!(ids.len() >= n, "the essay has only {} tokens", ids.len());
    model.vocab().tokenizer.decode(&ids[..n], false).map_err(|e| anyhow::anyhow!("{e}"))
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let threads: usize = match std::env::var("THREADS") {
        Ok(t) => t.parse()?,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let gguf =
        std::env::var("RUNPOD_TEST_SMOLLM2_GGUF").context("set RUNPOD_TEST_SMOLLM2_GGUF to a .gguf file")?;
    let python = std::env::var("BENCH_LLAMA_CPP_PYTHON").context("set BENCH_LLAMA_CPP_PYTHON (llama_cpp)")?;
    let config = BatcherConfig { threads, ..BatcherConfig::cpu(SEQUENCES, MAX_CONTEXT) };
    let model = GgufModel::load_with_config(gguf.as_ref(), &Device::Cpu, config)?;
    let (p32, p512) = (prompt_of(&model, 32)?, prompt_of(&model, 512)?);
    let essay_prompt = chat("Write a long essay about the history of the printing press.");
    let questions: Vec<String> = include_str!("../bench/questions.txt").lines().map(chat).collect();
    let name = model.name().to_owned();
    let mut peer = Peer::start(&python, &gguf, threads)?;

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let handler = GenerateHandler::new(model);
        let worker = runpod_worker::Worker::new(handler.clone()).concurrency(SEQUENCES);
        let local = LocalWorker::start(worker).await?;
        let http = reqwest::Client::new();
        let base = local.endpoint().endpoint_url();
        ours(&http, &base, &name, &p32, 4).await?; // warm-up, both
        peer.run(&p32, 4)?;

        in_process(&handler, &p32, 4)?;
        // [figure][route, in-process, peer]
        let mut figures: [[Vec<f64>; 3]; 3] = Default::default();
        let mut decoded = [0.0; 3];
        for _ in 0..rounds {
            for (i, p) in [&p32, &p512].into_iter().enumerate() {
                figures[i][0].push(ours(&http, &base, &name, p, 1).await?.ttft * 1000.0);
                figures[i][1].push(in_process(&handler, p, 1)?.ttft * 1000.0);
                figures[i][2].push(peer.run(p, 1)?.ttft * 1000.0);
            }
            let runs = [
                ours(&http, &base, &name, &essay_prompt, 128).await?,
                in_process(&handler, &essay_prompt, 128)?,
                peer.run(&essay_prompt, 128)?,
            ];
            for (k, r) in runs.iter().enumerate() {
                decoded[k] = r.tokens;
                figures[2][k].push(r.decode_rate());
            }
        }
        println!(
            "GGUF {name} on the CPU, {threads} threads a side, greedy, {rounds} interleaved rounds; \
             ours through runpod-local's OpenAI route (streamed) and in-process (the handler's model \
             called directly), llama-cpp-python in-process.\n"
        );
        println!(
            "| figure | ours, OpenAI route (min / median / max) | ours, in-process | llama-cpp-python \
             | route vs theirs | in-process vs theirs |"
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        let [a, b, c] = figures;
        row("first token, 32-token prompt", a, "ms", false);
        row("first token, 512-token prompt", b, "ms", false);
        let [d0, d1, d2] = decoded;
        row(&format!("decode, {d0}/{d1}/{d2} greedy tokens"), c, "tokens/s", true);

        // Greedy text of the first 32 tokens, 20 prompts.
        let mut same = 0;
        for q in &questions {
            let (a, b) = (ours(&http, &base, &name, q, 32).await?, peer.run(q, 32)?);
            if a.text == b.text {
                same += 1;
            } else {
                println!("\ndiffers: {q:?}\n  ours:   {:?}\n  theirs: {:?}", a.text, b.text);
            }
        }
        println!("\nfirst 32 greedy tokens: the same text on {same} of {} prompts", questions.len());

        // 8 streams at once against the same 8 one at a time, 64 tokens each.
        let eight: Vec<&String> = questions.iter().take(SEQUENCES).collect();
        let mut one_at_a_time = Vec::new();
        let started = Instant::now();
        for q in &eight {
            one_at_a_time.push(ours(&http, &base, &name, q, 64).await?);
        }
        let serial_secs = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let together =
            futures::future::try_join_all(eight.iter().map(|q| ours(&http, &base, &name, q, 64))).await?;
        let batch_secs = started.elapsed().as_secs_f64();
        let tokens: f64 = together.iter().map(|r| r.tokens).sum();
        let serial_tokens: f64 = one_at_a_time.iter().map(|r| r.tokens).sum();
        let identical = together.iter().zip(&one_at_a_time).filter(|(a, b)| a.text == b.text).count();
        println!(
            "{SEQUENCES} chats at once: {tokens} tokens in {batch_secs:.2} s = {:.1} tokens/s; one at a time: \
             {serial_tokens} tokens in {serial_secs:.2} s = {:.1} tokens/s ({:.2}x); the same text alone and \
             batched on {identical} of {SEQUENCES}",
            tokens / batch_secs,
            serial_tokens / serial_secs,
            (tokens / batch_secs) / (serial_tokens / serial_secs)
        );
        // The same with equal work per stream: 8 copies of the essay prompt, 128 tokens each
        // (greedy, so every copy runs to the end), against one alone.
        let started = Instant::now();
        let alone = ours(&http, &base, &name, &essay_prompt, 128).await?;
        let alone_secs = started.elapsed().as_secs_f64();
        let stats = handler.model().gguf().context("a GGUF model")?.batcher().stats();
        let steps_before = stats.steps.load(std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let copies = futures::future::try_join_all(
            (0..SEQUENCES).map(|_| ours(&http, &base, &name, &essay_prompt, 128)),
        )
        .await?;
        let copies_secs = started.elapsed().as_secs_f64();
        let copies_steps = stats.steps.load(std::sync::atomic::Ordering::Relaxed) - steps_before;
        let copies_tokens: f64 = copies.iter().map(|r| r.tokens).sum();
        let same = copies.iter().filter(|r| r.text == alone.text).count();
        println!(
            "{SEQUENCES} copies of a 128-token essay at once: {copies_tokens} tokens in {copies_secs:.2} s \
             ({copies_steps} llama.cpp steps) = {:.1} tokens/s; one alone: {} tokens in {alone_secs:.2} s = {:.1} tokens/s ({:.2}x); the same text as alone \
             on {same} of {SEQUENCES}",
            copies_tokens / copies_secs,
            alone.tokens,
            alone.tokens / alone_secs,
            (copies_tokens / copies_secs) / (alone.tokens / alone_secs)
        );
        // The same 8 copies in-process (8 threads on the model, no HTTP): what the route costs.
        let started = Instant::now();
        let runs = tokio::task::block_in_place(|| {
            std::thread::scope(|s| {
                let threads: Vec<_> =
                    (0..SEQUENCES).map(|_| s.spawn(|| in_process(&handler, &essay_prompt, 128))).collect();
                threads
                    .into_iter()
                    .map(|t| t.join().expect("a generation thread panicked"))
                    .collect::<anyhow::Result<Vec<Run>>>()
            })
        })?;
        let inproc_secs = started.elapsed().as_secs_f64();
        let inproc_tokens: f64 = runs.iter().map(|r| r.tokens).sum();
        println!(
            "the same in-process: {inproc_tokens} tokens in {inproc_secs:.2} s = {:.1} tokens/s ({:.2}x one alone \
             through the route)",
            inproc_tokens / inproc_secs,
            (inproc_tokens / inproc_secs) / (alone.tokens / alone_secs)
        );
        drop(peer.child.stdin.take());
        let _ = peer.child.wait();
        local.stop().await?;
        anyhow::Ok(())
    })
}
