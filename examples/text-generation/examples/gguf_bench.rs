//! GGUF generation speed on the CPU against llama.cpp, and the OpenAI route's overhead.
//!
//! ```sh
//! RUNPOD_TEST_SMOLLM2_GGUF=... RUNPOD_TEST_LLAMA_CPP_PYTHON=... \
//!   cargo run --release -p text-generation --example gguf_bench -- [ROUNDS] [TOKENS]
//! ```
//! (`./scripts/test.sh` installs both; source `scripts/test.d/45-smollm2.sh` and
//! `50-llm-python.sh` to get the variables.) Two comparisons, each interleaved round by round,
//! printed as min/median/max:
//!
//! 1. tokens/s of this crate's `GgufModel` against llama-cpp-python on the same file, same
//!    prompt, greedy, same thread count (`THREADS`, default: all cores);
//! 2. time to first token and tokens/s through runpod-local's OpenAI route (`/openai/v1/completions`,
//!    streamed as SSE) against the worker's native input (`/run` + `/stream`), same worker.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use candle_core::Device;
use example_support::local_worker::{LocalWorker, API_KEY};
use futures::StreamExt;
use serde_json::{json, Value};
use text_generation::gguf::GgufModel;
use text_generation::{GenerateHandler, Observer, Params};

const PROMPT: &str = "<|im_start|>user\nWrite a long essay about the history of the printing press.<|im_end|>\n<|im_start|>assistant\n";

/// One run: tokens generated, seconds, seconds to the first token.
#[derive(Debug, Clone, Copy)]
struct Run {
    tokens: f64,
    seconds: f64,
    ttft: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.tokens / self.seconds
    }
}

struct Timer {
    started: Instant,
    first: Option<f64>,
    tokens: usize,
}

impl Observer for Timer {
    fn token(&mut self, n: usize) {
        self.first.get_or_insert_with(|| self.started.elapsed().as_secs_f64());
        self.tokens = n;
    }
}

fn ours(model: &GgufModel, tokens: usize) -> anyhow::Result<Run> {
    let params = Params { max_tokens: tokens, temperature: 0.0, top_p: None, seed: 1, stop: vec![] };
    let mut t = Timer { started: Instant::now(), first: None, tokens: 0 };
    model.generate(PROMPT, &params, &mut t)?;
    let seconds = t.started.elapsed().as_secs_f64();
    Ok(Run { tokens: t.tokens as f64, seconds, ttft: t.first.unwrap_or(seconds) })
}

/// min / median / max of `xs`.
fn spread(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn line(name: &str, xs: Vec<f64>, unit: &str) -> (f64, f64, f64) {
    let (lo, mid, hi) = spread(xs);
    println!("  {name:<34} {lo:>8.2} {mid:>8.2} {hi:>8.2}  {unit}");
    (lo, mid, hi)
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

    fn run(&mut self, tokens: usize) -> anyhow::Result<Run> {
        let stdin = self.child.stdin.as_mut().context("peer stdin")?;
        writeln!(stdin, "{}", json!({"prompt": PROMPT, "max_tokens": tokens}))?;
        let mut answer = String::new();
        self.out.read_line(&mut answer)?;
        let v: Value = serde_json::from_str(&answer).with_context(|| format!("peer said {answer:?}"))?;
        Ok(Run {
            tokens: v["tokens"].as_f64().unwrap_or(0.0),
            seconds: v["seconds"].as_f64().unwrap_or(f64::NAN),
            ttft: v["ttft"].as_f64().unwrap_or(f64::NAN),
        })
    }
}

/// A streamed `/openai/v1/completions` call for `model` (the name the worker serves: another
/// is answered 404 `model_not_found`), timed from the request to the first text and to `[DONE]`.
async fn openai_run(
    http: &reqwest::Client,
    base: &str,
    model: &str,
    prompt: &str,
    tokens: usize,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let body = json!({"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": true,
                      "stream_options": {"include_usage": true}});
    let resp =
        http.post(format!("{base}/openai/v1/completions")).bearer_auth(API_KEY).json(&body).send().await?;
    let status = resp.status();
    anyhow::ensure!(status.is_success(), "status {status}: {}", resp.text().await.unwrap_or_default());
    let mut bytes = resp.bytes_stream();
    let (mut first, mut n, mut buf) = (None, 0.0, String::new());
    while let Some(chunk) = bytes.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event.trim().trim_start_matches("data: ");
            if data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data)?;
            if v["choices"][0]["text"].as_str().is_some_and(|t| !t.is_empty()) {
                first.get_or_insert_with(|| started.elapsed().as_secs_f64());
            }
            if let Some(u) = v["usage"]["completion_tokens"].as_f64() {
                n = u;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Run { tokens: n, seconds, ttft: first.unwrap_or(seconds) })
}

/// The native input through `/run` and `/stream`, timed the same way.
async fn native_run(ep: &runpod_client::Endpoint, prompt: &str, tokens: usize) -> anyhow::Result<Run> {
    let started = Instant::now();
    let input = json!({"prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": true});
    let id = ep.run(&runpod_client::Request::new(input)).await?.id().to_owned();
    let mut first = None;
    let mut chunks = std::pin::pin!(ep.stream::<Value>(&id));
    while let Some(c) = chunks.next().await {
        match c {
            Ok(_) => {
                first.get_or_insert_with(|| started.elapsed().as_secs_f64());
            }
            Err(runpod_client::Error::JobEnded { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let state = ep.status::<Value>(&id).await?;
    let seconds = started.elapsed().as_secs_f64();
    let n = state.output.as_ref().and_then(|o| o["generated_tokens"].as_f64()).unwrap_or(0.0);
    Ok(Run { tokens: n, seconds, ttft: first.unwrap_or(seconds) })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let tokens: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let threads: usize = match std::env::var("THREADS") {
        Ok(t) => t.parse()?,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // candle's CPU kernels size their thread pool from this, once, at first use.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let gguf =
        std::env::var("RUNPOD_TEST_SMOLLM2_GGUF").context("set RUNPOD_TEST_SMOLLM2_GGUF to a .gguf file")?;
    let python = std::env::var("RUNPOD_TEST_LLAMA_CPP_PYTHON")
        .context("set RUNPOD_TEST_LLAMA_CPP_PYTHON (llama_cpp)")?;

    let model = GgufModel::load(gguf.as_ref(), &Device::Cpu)?;
    let mut peer = Peer::start(&python, &gguf, threads)?;
    ours(&model, 4)?; // warm-up, both
    peer.run(4)?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(ours(&model, tokens)?);
        b.push(peer.run(tokens)?);
    }
    drop(peer.child.stdin.take());
    let _ = peer.child.wait();
    println!(
        "GGUF {} on the CPU, {threads} threads, greedy, {tokens} new tokens, {rounds} interleaved rounds (min median max):",
        model.name()
    );
    let ours_rate = line("text-generation (candle) tokens/s", a.iter().map(Run::rate).collect(), "tok/s");
    let peer_rate = line("llama-cpp-python tokens/s", b.iter().map(Run::rate).collect(), "tok/s");
    let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x.rate() / y.rate()).collect();
    line("ratio candle / llama.cpp (per round)", ratios, "x");
    line("text-generation first token", a.iter().map(|r| r.ttft * 1000.0).collect(), "ms");
    line("llama-cpp-python first token", b.iter().map(|r| r.ttft * 1000.0).collect(), "ms");
    let _ = (ours_rate, peer_rate);

    // The OpenAI route against the native input, same in-process worker and endpoint.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let name = model.name().to_string();
    rt.block_on(async {
        let local = LocalWorker::start(runpod_worker::Worker::new(GenerateHandler::new(model))).await?;
        let client = example_support::local_worker::client(&local)
            .with_poll_interval(Duration::from_millis(1), Duration::from_millis(5));
        let http = reqwest::Client::new();
        let base = local.endpoint().endpoint_url();
        openai_run(&http, &base, &name, PROMPT, 4).await?;
        native_run(&client, PROMPT, 4).await?;
        let (mut o, mut n) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            o.push(openai_run(&http, &base, &name, PROMPT, tokens).await?);
            n.push(native_run(&client, PROMPT, tokens).await?);
        }
        println!("Through runpod-local, same worker, {tokens} new tokens (min median max):");
        line("OpenAI route (SSE) first token", o.iter().map(|r| r.ttft * 1000.0).collect(), "ms");
        line("native /run + /stream first token", n.iter().map(|r| r.ttft * 1000.0).collect(), "ms");
        line("OpenAI route tokens/s", o.iter().map(Run::rate).collect(), "tok/s");
        line("native input tokens/s", n.iter().map(Run::rate).collect(), "tok/s");
        local.stop().await?;
        anyhow::Ok(())
    })?;
    Ok(())
}
