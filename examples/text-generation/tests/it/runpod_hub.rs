//! The text-generation example's Runpod Hub listing: it passes the publishing guide's checks,
//! and every `tests.json` case (its own input and the OpenAI route's) passes against the
//! text-generation binary through a local endpoint, with the SmolLM2 GGUF file of the test
//! cache as `MODEL`.

use example_support::test_models::smollm2_gguf;
use runpod_local::hub::{self, HubRun, Listing};
use std::path::Path;
use tokio::process::Command;

fn example_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_passes_the_check_and_every_case_passes() {
    let _cpu = crate::llama_cpu().await;
    let report = hub::check(example_dir(), None);
    assert!(report.passed(), "{report}");
    let Some(model) = smollm2_gguf() else { return };
    let listing = Listing::read(example_dir()).unwrap();
    let cases = listing.tests["tests"].as_array().unwrap().len();
    let mut worker = Command::new(env!("CARGO_BIN_EXE_text-generation"));
    worker.env("DEVICE", "cpu");
    let results = HubRun::new(listing, worker).env("MODEL", model.display().to_string()).run().await.unwrap();
    assert_eq!(results.len(), cases);
    for r in &results {
        assert!(r.passed(), "{r}");
    }
    let native = results[0].output.as_ref().unwrap();
    assert_eq!(native["generated_tokens"], 8, "{native}");
    let chat = results[1].output.as_ref().unwrap();
    assert_eq!(chat["object"], "chat.completion", "{chat}");
    assert!(chat["choices"][0]["message"]["content"].as_str().is_some_and(|t| !t.is_empty()), "{chat}");
}
