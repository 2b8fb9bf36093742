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
