//! The tokenizer built from a GGUF file's vocabulary and merges, checked token for token
//! against llama.cpp's own tokenization of the same file (the llama.cpp the worker runs on,
//! loaded with its vocabulary only: `LlamaTokenizer`) on a few hundred strings: prose, code,
//! numbers, whitespace runs, accents, CJK, emoji, and special tokens written in the text.

use candle_core::quantized::gguf_file;
use example_support::test_models;
use rand::{Rng, SeedableRng};
use text_generation::batcher::LlamaTokenizer;

const PIECES: &[&str] = &[
    "The capital of France is Paris.",
    "What is the capital of France?",
    "hello",
    " world",
    "Hello,",
    "  two spaces",
    "\ttab",
    "\n",
    "\n\n",
    "line1\nline2",
    "   ",
    "1234567",
    "3.14159",
    "x=42;",
    "2026-11-30",
    "fn main() { println!(\"hi\"); }",
    "def f(x):\n    return x**2",
    "<div class=\"a\">",
    "$HOME/.cache",
    "don't",
    "I'll",
    "we've",
    "they're",
    "O'Brien's",
    "café",
    "naïve",
    "Ærøskøbing",
    "straße",
    "日本語のテキスト",
    "中文",
    "한국어",
    "Привет, мир!",
    "مرحبا",
    "🙂",
    "👩‍💻 emoji",
    "a—b",
    "“quoted”",
    "…",
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_start|>user\nHi<|im_end|>\n",
    "UPPER lower MiXeD",
    "snake_case_name",
    "camelCaseName",
    "http://example.com/a?b=c",
    "100%",
    "#hashtag",
    "@mention",
    "a  b   c",
    "end.",
];

fn strings() -> Vec<String> {
    let mut all: Vec<String> = PIECES.iter().map(|s| s.to_string()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    while all.len() < 400 {
        let n = rng.random_range(2..7);
        let joined: String = (0..n).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect();
        all.push(joined);
    }
    all
}

#[test]
fn gguf_tokenizer_matches_llama_cpp_token_for_token() {
    let Some(file) = test_models::smollm2_gguf() else { return };
    let mut f = std::fs::File::open(&file).unwrap();
    let vocab = text_generation::gguf::vocab_from_gguf(&gguf_file::Content::read(&mut f).unwrap()).unwrap();
    let llama = LlamaTokenizer::load(&file).unwrap();
    let strings = strings();
    let mut tokens = 0;
    for s in &strings {
        let ours = vocab.encode(s).unwrap();
        assert_eq!(ours, llama.encode(s), "tokens of {s:?}");
        // And back: decoding gives the text (special tokens kept).
        assert_eq!(&vocab.tokenizer.decode(&ours, false).unwrap(), s);
        tokens += ours.len();
    }
    assert!(tokens > strings.len(), "{tokens} tokens for {} strings", strings.len());
    eprintln!("{} strings, {tokens} tokens: identical to llama.cpp", strings.len());
}
