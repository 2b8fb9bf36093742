//! The embeddings example's Runpod Hub listing: it passes the publishing guide's checks, and
//! every `tests.json` case passes against the embeddings binary through a local endpoint, with
//! the test model from the cache (`MODEL_DIR`) and the model hub unreachable.

use example_support::test_models::minilm_dir;
use runpod_local::hub::{self, HubRun, Listing};
use std::path::Path;
use tokio::process::Command;

fn example_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_passes_the_check_and_every_case_passes() {
    let report = hub::check(example_dir(), None);
    assert!(report.passed(), "{report}");
    let Some(model) = minilm_dir() else { return };
    let listing = Listing::read(example_dir()).unwrap();
    let cases = listing.tests["tests"].as_array().unwrap().len();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_embeddings"));
    worker.env("DEVICE", "cpu");
    let results = HubRun::new(listing, worker)
        .env("MODEL_DIR", model.display().to_string())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .run()
        .await
        .unwrap();
    assert_eq!(results.len(), cases);
    for r in &results {
        assert!(r.passed(), "{r}");
        let out = r.output.as_ref().unwrap();
        assert_eq!(out["dimensions"], 384, "{r}: {out}");
    }
    assert_eq!(results[1].output.as_ref().unwrap()["tokens"], serde_json::json!([8, 11]));
}
