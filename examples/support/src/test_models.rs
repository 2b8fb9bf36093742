//! Where the tests of the examples find real model weights (installed by
//! `scripts/test.d/40-models.sh`): one lookup, so every test skips or fails the same way.

use std::path::PathBuf;

/// The all-MiniLM-L6-v2 folder from `RUNPOD_TEST_MINILM_DIR` (exported by
/// scripts/test.d/40-models.sh), else the default cache path `.cache/models/all-MiniLM-L6-v2`
/// under the workspace root. `None` (after a loud `SKIPPED:` line on stderr) when it is missing
/// outside CI; a panic when it is missing and `CI` is set.
pub fn minilm_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RUNPOD_TEST_MINILM_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/all-MiniLM-L6-v2")
    });
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    let why = format!("all-MiniLM-L6-v2 not found at {}", dir.display());
    if std::env::var_os("CI").is_some() {
        panic!("{why} (CI is set: scripts/test.d/40-models.sh must provide it)");
    }
    eprintln!("SKIPPED: {why} (run ./scripts/test.sh)");
    None
}

/// Reports a missing test prerequisite: a panic under `CI`, else a loud `SKIPPED:` line.
fn missing(why: &str, script: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why} (CI is set: scripts/test.d/{script} must provide it)");
    }
    eprintln!("SKIPPED: {why} (run ./scripts/test.sh)");
}

/// The SmolLM2-135M-Instruct Q4_1 GGUF file from `RUNPOD_TEST_SMOLLM2_GGUF` (exported by
/// scripts/test.d/45-smollm2.sh), else its default cache path; `None` or a panic as for
/// [`minilm_dir`].
pub fn smollm2_gguf() -> Option<PathBuf> {
    let file = std::env::var_os("RUNPOD_TEST_SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../.cache/models/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    if file.is_file() {
        return Some(file);
    }
    missing(&format!("SmolLM2-135M-Instruct GGUF not found at {}", file.display()), "45-smollm2.sh");
    None
}

/// The Python interpreter named by `var` (exported by scripts/test.d/50-llm-python.sh:
/// `RUNPOD_TEST_LLM_PYTHON` has openai, transformers and gguf; `RUNPOD_TEST_LLAMA_CPP_PYTHON`
/// has llama_cpp); `None` or a panic as for [`minilm_dir`].
pub fn python(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_file() => Some(p),
        other => {
            missing(&format!("{var} is not set to a Python interpreter ({other:?})"), "50-llm-python.sh");
            None
        }
    }
}
