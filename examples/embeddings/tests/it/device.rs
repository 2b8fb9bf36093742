//! The worker binary's start-up without a model or a GPU: `--help`, and a clear error (not a
//! panic) when `DEVICE` asks for a GPU this build or this machine cannot give.

use std::process::Command;

fn worker() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_embeddings"));
    // No model and no hub: the device must be settled before either is looked at.
    cmd.env_remove("MODEL_ID")
        .env("MODEL_DIR", "/nonexistent-model-dir")
        .env("HF_ENDPOINT", "http://127.0.0.1:9");
    cmd
}

#[test]
fn help_needs_no_model_and_names_the_settings() {
    let out = worker().arg("--help").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["MODEL_DIR", "MODEL_ID", "DEVICE", "MAX_BATCH", "--serve-api"] {
        assert!(text.contains(word), "--help lacks {word}: {text}");
    }
}

#[test]
fn a_gpu_it_cannot_have_is_a_clear_error() {
    let out = worker()
        .env("DEVICE", "cuda:0")
        .arg("--test-input")
        .arg(r#"{"input":{"input":"x"}}"#)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if cfg!(feature = "cuda") {
        // A GPU build on a machine without a usable GPU (where a GPU is visible this test
        // would pass the device and stop at the missing model instead).
        assert!(stderr.contains("cannot open CUDA device 0") || stderr.contains("MODEL_DIR"), "{stderr}");
    } else {
        assert!(stderr.contains("needs a GPU build") && stderr.contains("--features cuda"), "{stderr}");
    }

    let out = worker().env("DEVICE", "tpu").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("\"tpu\" is not a device"), "{stderr}");
}
