//! Fetching a model folder by id from a hub-shaped HTTP server (a real axum server on
//! 127.0.0.1 serving the MiniLM files at `/{owner}/{name}/resolve/main/{file}`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use embeddings::{Embedder, Hub};
use example_support::test_models::minilm_dir;

/// Each request: the file asked for and the Authorization header sent.
type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

#[derive(Clone)]
struct Served {
    dir: PathBuf,
    log: RequestLog,
}

async fn serve(
    State(s): State<Served>,
    Path((_owner, _name, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Vec<u8>, StatusCode> {
    let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
    s.log.lock().unwrap().push((file.clone(), auth));
    std::fs::read(s.dir.join(&file)).map_err(|_| StatusCode::NOT_FOUND)
}

#[tokio::test]
async fn fetches_once_caches_and_reports_missing_files() {
    let Some(dir) = minilm_dir() else { return };
    let served = Served { dir, log: Default::default() };
    let app = axum::Router::new()
        .route("/{owner}/{name}/resolve/main/{file}", axum::routing::get(serve))
        .with_state(served.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let cache = std::env::temp_dir().join(format!("emb-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let hub = Hub { endpoint, token: Some("hf_secret_token".into()), cache: cache.clone() };
    assert!(!format!("{hub:?}").contains("hf_secret_token"), "Debug redacts the token");

    let optional = ["sentence_bert_config.json", "not-there.json"];
    let got = hub
        .fetch("sentence-transformers/all-MiniLM-L6-v2", embeddings::MODEL_FILES, &optional)
        .await
        .unwrap();
    assert_eq!(got, cache.join("sentence-transformers--all-MiniLM-L6-v2"));
    {
        let log = served.log.lock().unwrap();
        assert_eq!(log.len(), 5, "{log:?}");
        assert!(log.iter().all(|(_, auth)| auth.as_deref() == Some("Bearer hf_secret_token")));
    }
    // The fetched folder is a working model.
    let model = Embedder::load(&got, &candle_core::Device::Cpu).unwrap();
    assert_eq!((model.dimensions(), model.max_tokens()), (384, 256));

    // A second fetch is served from the cache (only the absent optional file is asked again).
    hub.fetch("sentence-transformers/all-MiniLM-L6-v2", embeddings::MODEL_FILES, &optional).await.unwrap();
    assert_eq!(served.log.lock().unwrap().len(), 6);

    // A missing required file is an error naming it; the token never shows.
    let err =
        hub.fetch("someone/other-model", &["config.json", "weights.bin"], &[]).await.unwrap_err().to_string();
    assert!(err.contains("weights.bin") && err.contains("404"), "{err}");
    assert!(!err.contains("hf_secret_token"));
    let err = hub.fetch("../etc", &["config.json"], &[]).await.unwrap_err().to_string();
    assert!(err.contains("invalid model id"), "{err}");
    std::fs::remove_dir_all(&cache).unwrap();
}
