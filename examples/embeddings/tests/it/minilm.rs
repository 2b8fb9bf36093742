//! The embedding model on the real all-MiniLM-L6-v2 weights.

use candle_core::Device;
use embeddings::Embedder;
use example_support::test_models::minilm_dir;

/// Reference values computed once with an independent implementation,
/// `tests/reference/minilm_ref.py`: a float64 numpy BERT forward pass over the same
/// `model.safetensors`, tokenised by transformers' pure-Python `BertTokenizer` from `vocab.txt`,
/// mean pooling over the tokens, L2-normalised. Run as
/// `python minilm_ref.py $RUNPOD_TEST_MINILM_DIR "A man is eating food." ...`
/// (numpy 2, safetensors 0.7, transformers 4.5x, no torch). Each entry: text, token count
/// (with [CLS] and [SEP]), first 8 components of the normalised vector.
const REFERENCE: &[(&str, usize, [f32; 8])] = &[
    (
        "A man is eating food.",
        8,
        [0.033242, 0.004406, -0.006277, 0.048379, -0.138702, -0.033617, 0.101128, -0.054385],
    ),
    (
        "The quick brown fox jumps over the lazy dog.",
        12,
        [0.043934, 0.058934, 0.048178, 0.077548, 0.026744, -0.03763, -0.002605, -0.059943],
    ),
    (
        "A man is eating a piece of bread.",
        11,
        [0.052518, 0.055241, -0.011188, -0.005745, -0.127208, -0.022252, 0.076879, 0.013185],
    ),
    (
        "The stock market fell sharply today.",
        9,
        [0.060455, 0.005445, 0.076566, 0.053829, -0.014793, -0.006096, -0.029377, 0.053715],
    ),
];

fn load() -> Option<Embedder> {
    let dir = minilm_dir()?;
    Some(Embedder::load(&dir, &Device::Cpu).expect("load all-MiniLM-L6-v2"))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

#[test]
fn matches_the_independent_reference_one_by_one_and_as_a_padded_batch() {
    let Some(model) = load() else { return };
    assert_eq!(model.dimensions(), 384);
    assert_eq!(model.max_tokens(), 256, "sentence_bert_config.json says max_seq_length 256");

    let texts: Vec<&str> = REFERENCE.iter().map(|r| r.0).collect();
    let batch = model.embed(&texts, true).unwrap();
    for (i, (text, tokens, prefix)) in REFERENCE.iter().enumerate() {
        let single = model.embed(&[*text], true).unwrap();
        assert_eq!(single.tokens, vec![*tokens], "{text}");
        assert_eq!(batch.tokens[i], *tokens, "{text}");
        assert!(!batch.truncated[i]);
        for (got, want) in [(&single.vectors[0], prefix), (&batch.vectors[i], prefix)] {
            assert_eq!(got.len(), 384);
            assert!((norm(got) - 1.0).abs() < 1e-5, "unit norm, got {}", norm(got));
            for (g, w) in got.iter().zip(want.iter()) {
                assert!((g - w).abs() < 2e-4, "{text}: got {:?}, want {want:?}", &got[..8]);
            }
        }
        // Padding in the batch must not move the vector.
        let cos = dot(&single.vectors[0], &batch.vectors[i]);
        assert!(cos > 0.99999, "{text}: batch vs single cosine {cos}");
    }
}

#[test]
fn similar_sentences_score_higher_than_unrelated_ones() {
    let Some(model) = load() else { return };
    let e = model
        .embed(
            &[
                "A man is eating food.",
                "A man is eating a piece of bread.",
                "The stock market fell sharply today.",
            ],
            true,
        )
        .unwrap();
    let similar = dot(&e.vectors[0], &e.vectors[1]);
    let unrelated = dot(&e.vectors[0], &e.vectors[2]);
    eprintln!("cosine similar={similar:.4} unrelated={unrelated:.4}");
    assert!(similar > 0.6, "similar pair {similar}");
    assert!(unrelated < 0.2, "unrelated pair {unrelated}");
    assert!(similar > unrelated + 0.4);
}

#[test]
fn normalize_false_keeps_the_raw_mean_pooled_vector() {
    let Some(model) = load() else { return };
    let raw = model.embed(&["A man is eating food."], false).unwrap();
    let unit = model.embed(&["A man is eating food."], true).unwrap();
    let n = norm(&raw.vectors[0]);
    assert!((n - 1.0).abs() > 0.05, "raw vector should not be unit length, norm {n}");
    for (r, u) in raw.vectors[0].iter().zip(&unit.vectors[0]) {
        assert!((r / n - u).abs() < 1e-5);
    }
}

#[test]
fn long_inputs_are_truncated_to_the_model_limit_and_say_so() {
    let Some(model) = load() else { return };
    let long = "word ".repeat(1000);
    let e = model.embed(&[long.as_str(), "short text"], true).unwrap();
    assert_eq!(e.truncated, vec![true, false]);
    assert_eq!(e.tokens[0], model.max_tokens());
    assert_eq!(e.tokens[1], 4);
    assert!((norm(&e.vectors[0]) - 1.0).abs() < 1e-5);
}

#[test]
fn bad_input_and_bad_model_dirs_are_clear_errors() {
    let Some(model) = load() else { return };
    let empty: [&str; 0] = [];
    let err = model.embed(&empty, true).unwrap_err().to_string();
    assert!(err.contains("no input"), "{err}");
    // An empty string still embeds ([CLS] [SEP]).
    assert_eq!(model.embed(&[""], true).unwrap().tokens, vec![2]);

    let dir = std::env::temp_dir().join(format!("emb-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = Embedder::load(&dir, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("config.json"), "{err}");
    std::fs::write(dir.join("config.json"), "{not json").unwrap();
    let err = Embedder::load(&dir, &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("invalid") && err.contains("config.json"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn packed_and_candle_engines_agree_and_order_is_kept() {
    use embeddings::{Engine, LoadOptions};
    let Some(dir) = minilm_dir() else { return };
    let packed = Embedder::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(packed.engine(), Engine::Packed, "the default on the CPU");
    let candle = Embedder::load_with(
        &dir,
        &Device::Cpu,
        LoadOptions { engine: Some(Engine::Candle), ..Default::default() },
    )
    .unwrap();
    // Mixed lengths (one truncated), more texts than one forward pass takes, out of length order.
    let long = "word ".repeat(400);
    let texts: Vec<String> = (0..41)
        .map(|i| match i % 4 {
            0 => format!("Short text {i}."),
            1 => format!(
                "A somewhat longer sentence about the river and the bridge, number {i}, with more words."
            ),
            2 if i == 10 => long.clone(),
            _ => format!("{i} apples"),
        })
        .collect();
    let a = packed.with_batch_size(8).embed(&texts, true).unwrap();
    let b = candle.embed(&texts, true).unwrap();
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.truncated, b.truncated);
    assert!(a.truncated[10] && a.truncated.iter().filter(|t| **t).count() == 1);
    for (i, (x, y)) in a.vectors.iter().zip(&b.vectors).enumerate() {
        let cos = dot(x, y) / (norm(x) * norm(y));
        assert!(cos > 0.99999, "text {i}: packed vs candle cosine {cos}");
        // In input order: each vector is that text's own.
        let alone = candle.embed(&[texts[i].as_str()], true).unwrap();
        assert!(dot(x, &alone.vectors[0]) > 0.99999, "text {i} out of place");
    }
    // Asking for the packed encoder where it cannot run is a clear error.
    let err = Embedder::load_with(
        &dir,
        &Device::Cpu,
        LoadOptions { dtype: candle_core::DType::F16, engine: Some(Engine::Packed) },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("F32 on the CPU"), "{err}");
}
