//! Generation plumbing on a tiny random Llama the test writes: streaming order, seeds, top-p,
//! stop strings, max tokens, end-of-sequence, cancellation and bad input.

use crate::tiny;

use candle_core::Device;
use text_generation::{FinishReason, GenerateError, Generator, Observer, Params};

/// Records what the generator reports; cancels once `cancel_after` tokens exist.
#[derive(Default)]
struct Recorder {
    pieces: Vec<String>,
    counts: Vec<usize>,
    cancel_after: Option<usize>,
}

impl Observer for Recorder {
    fn cancelled(&mut self) -> bool {
        self.cancel_after.is_some_and(|n| self.counts.len() >= n)
    }
    fn text(&mut self, piece: &str) {
        self.pieces.push(piece.to_owned());
    }
    fn token(&mut self, generated: usize) {
        self.counts.push(generated);
    }
}

fn params(max_tokens: usize, temperature: f64, seed: u64) -> Params {
    Params { max_tokens, temperature, top_p: None, seed, stop: vec![] }
}

fn run(g: &Generator, p: &Params) -> (text_generation::Generation, Recorder) {
    let mut rec = Recorder::default();
    let out = g.generate("w01 w02 w03", p, &mut rec).unwrap();
    (out, rec)
}

fn load(name: &str) -> (Generator, std::path::PathBuf) {
    let dir = tiny::write_model(name);
    let g = Generator::load(&dir, &Device::Cpu).unwrap();
    (g, dir)
}

#[test]
fn streams_in_order_and_seeds_reproduce() {
    let (g, dir) = load("stream");
    let (a, rec) = run(&g, &params(24, 1.0, 7));
    assert_eq!(a.finish_reason, FinishReason::Length);
    assert_eq!(a.generated_tokens, 24);
    assert_eq!(a.prompt_tokens, 3);
    assert_eq!(rec.counts, (1..=24).collect::<Vec<_>>());
    assert_eq!(rec.pieces.concat(), a.text, "streamed pieces concatenate to the text");
    assert_eq!(a.text.split(' ').count(), 24, "one word per token: {}", a.text);
    assert!(rec.pieces.len() >= 20, "streamed token by token, got {} pieces", rec.pieces.len());

    let (again, _) = run(&g, &params(24, 1.0, 7));
    assert_eq!(again.text, a.text, "same seed, same text");
    let (other, _) = run(&g, &params(24, 1.0, 8));
    assert_ne!(other.text, a.text, "another seed samples differently");
    tiny::remove(&dir);
}

#[test]
fn greedy_equals_a_tiny_top_p_and_max_tokens_is_exact() {
    let (g, dir) = load("greedy");
    let (greedy, _) = run(&g, &params(12, 0.0, 1));
    let nucleus = Params { top_p: Some(1e-6), ..params(12, 1.0, 99) };
    let (top_p, _) = run(&g, &nucleus);
    assert_eq!(greedy.text, top_p.text, "top_p keeping one token is greedy");
    for n in [1, 5] {
        let (out, rec) = run(&g, &params(n, 0.0, 1));
        assert_eq!((out.generated_tokens, out.finish_reason), (n, FinishReason::Length));
        assert!(greedy.text.starts_with(&out.text));
        assert_eq!(rec.counts.len(), n);
    }
    tiny::remove(&dir);
}

#[test]
fn stop_strings_end_the_text_before_them() {
    let (g, dir) = load("stop");
    let (full, _) = run(&g, &params(30, 1.0, 3));
    let words: Vec<&str> = full.text.split(' ').collect();
    // Stop on the 6th word and, separately, on a string spanning two tokens.
    for stop in [words[5].to_owned(), format!("{} {}", words[7], &words[8][..2])] {
        let p = Params { stop: vec!["never-generated".into(), stop.clone()], ..params(30, 1.0, 3) };
        let (out, rec) = run(&g, &p);
        let at = full.text.find(&stop).unwrap();
        assert_eq!(out.text, full.text[..at], "stop {stop:?}");
        assert_eq!(out.finish_reason, FinishReason::Stop);
        assert_eq!(rec.pieces.concat(), out.text, "nothing past the stop string streamed");
        assert!(out.generated_tokens < 30);
    }
    tiny::remove(&dir);
}

#[test]
fn eos_token_ends_generation() {
    let dir = tiny::write_model("eos");
    let g = Generator::load(&dir, &Device::Cpu).unwrap();
    let (full, _) = run(&g, &params(30, 1.0, 5));
    let words: Vec<&str> = full.text.split(' ').collect();
    // Declare the 4th generated word end-of-sequence in generation_config.json.
    let eos_word = words[3];
    let eos_id = g.tokenizer().token_to_id(eos_word).unwrap();
    let first = words.iter().position(|w| *w == eos_word).unwrap();
    std::fs::write(dir.join("generation_config.json"), format!(r#"{{"eos_token_id": [{eos_id}]}}"#)).unwrap();
    let g = Generator::load(&dir, &Device::Cpu).unwrap();
    let (out, _) = run(&g, &params(30, 1.0, 5));
    assert_eq!(out.finish_reason, FinishReason::Eos);
    assert_eq!(out.generated_tokens, first + 1);
    assert_eq!(out.text, words[..first].join(" "));
    tiny::remove(&dir);
}

#[test]
fn cancellation_is_honoured_between_tokens() {
    let (g, dir) = load("cancel");
    let (full, _) = run(&g, &params(20, 1.0, 11));
    let mut rec = Recorder { cancel_after: Some(4), ..Default::default() };
    let out = g.generate("w01 w02 w03", &params(20, 1.0, 11), &mut rec).unwrap();
    assert_eq!(out.finish_reason, FinishReason::Cancelled);
    assert_eq!(out.generated_tokens, 4);
    assert!(full.text.starts_with(&out.text) && !out.text.is_empty());
    assert_eq!(rec.pieces.concat(), out.text);
    tiny::remove(&dir);
}

#[test]
fn bad_input_and_bad_weights_are_errors_not_panics() {
    let (g, dir) = load("bad");
    let mut rec = Recorder::default();
    let cases = [
        (params(0, 1.0, 1), "max_tokens"),
        (params(5, -1.0, 1), "temperature"),
        (params(5, f64::NAN, 1), "temperature"),
        (Params { top_p: Some(0.0), ..params(5, 1.0, 1) }, "top_p"),
        (Params { top_p: Some(1.5), ..params(5, 1.0, 1) }, "top_p"),
        (params(g.context_length() - 2, 1.0, 1), "context"),
        // prompt + max_tokens would wrap around: refused, not run.
        (params(usize::MAX, 1.0, 1), "context"),
        (params(usize::MAX - 1, 1.0, 1), "context"),
    ];
    for (p, word) in cases {
        let err = g.generate("w01 w02 w03", &p, &mut rec).unwrap_err();
        assert!(matches!(err, GenerateError::BadInput(_)), "{err}");
        assert!(err.to_string().contains(word), "{err}");
    }
    // An empty prompt starts from BOS.
    let out = g.generate("", &params(3, 0.0, 1), &mut rec).unwrap();
    assert_eq!((out.prompt_tokens, out.generated_tokens), (1, 3));

    // A config with more layers than the weights hold: an error naming the missing tensor.
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    config["num_hidden_layers"] = 3.into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let err = Generator::load(&dir, &Device::Cpu).err().unwrap();
    assert!(matches!(err, GenerateError::Weights(_)), "{err}");
    assert!(err.to_string().contains("layers.2"), "{err}");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let err = Generator::load(&dir, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    tiny::remove(&dir);
}
