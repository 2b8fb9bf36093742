//! Fetching a model folder from the Hugging Face hub (or a mirror) into a local cache.

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;

/// Why a model could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The request failed or the server answered with an error status.
    #[error("cannot fetch {file} of {model}: {message}")]
    Fetch {
        /// The model id.
        model: String,
        /// The file.
        file: String,
        /// What went wrong (never contains the token).
        message: String,
    },
    /// The cache folder could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model id is not of the form `owner/name`.
    #[error("invalid model id {0:?}: expected owner/name")]
    BadId(String),
    /// `MODEL_DIR` is set but holds no model, and no `MODEL_ID` says what to fetch instead.
    #[error("MODEL_DIR={0} holds no config.json: mount a model there or set MODEL_ID")]
    EmptyModelDir(PathBuf),
}

/// The model folder a worker should load, and its name: `MODEL_DIR` when it holds a
/// `config.json`, else `MODEL_ID` (default `default_id`) from the platform's model cache
/// (`runpod_worker::model_cache`: `/runpod-volume/huggingface-cache/hub/models--org--name/
/// snapshots/...`) when it is there, else fetched with [`Hub::from_env`].
pub async fn model_from_env(default_id: &str) -> Result<(PathBuf, String), HubError> {
    let dir = std::env::var_os("MODEL_DIR").map(PathBuf::from);
    let id = std::env::var("MODEL_ID").ok().filter(|s| !s.is_empty());
    match (dir, id) {
        (Some(dir), _) if dir.join("config.json").is_file() => {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Ok((dir, name))
        }
        (Some(dir), None) => Err(HubError::EmptyModelDir(dir)),
        (_, id) => {
            let id = id.unwrap_or_else(|| default_id.to_owned());
            if let Some(dir) = runpod_worker::model_cache::cached_model(&id) {
                if dir.join("config.json").is_file() {
                    tracing::info!(model = %id, dir = %dir.display(), "model found in the platform's model cache");
                    let name = id.split(':').next().unwrap_or(&id).to_owned();
                    return Ok((dir, name));
                }
                tracing::warn!(dir = %dir.display(), "cached model has no config.json; fetching it instead");
            }
            let dir = Hub::from_env().fetch(&id, crate::MODEL_FILES, crate::OPTIONAL_FILES).await?;
            Ok((dir, id))
        }
    }
}

/// Where and how to fetch: `endpoint` is `https://huggingface.co` or a mirror with the same
/// `/{id}/resolve/{revision}/{file}` layout; `token` (`HF_TOKEN`) is sent as a bearer token.
#[derive(Clone)]
pub struct Hub {
    /// Base URL, no trailing slash.
    pub endpoint: String,
    /// Access token for gated or private models.
    pub token: Option<String>,
    /// Folder that holds one sub-folder per model id.
    pub cache: PathBuf,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("cache", &self.cache)
            .finish()
    }
}

impl Hub {
    /// Settings from `HF_ENDPOINT`, `HF_TOKEN` and `MODEL_CACHE` (default `~/.cache/runpod-rs/models`).
    pub fn from_env() -> Self {
        let cache = std::env::var_os("MODEL_CACHE").map(PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
            home.join(".cache/runpod-rs/models")
        });
        Self {
            endpoint: std::env::var("HF_ENDPOINT")
                .unwrap_or_else(|_| "https://huggingface.co".into())
                .trim_end_matches('/')
                .to_owned(),
            token: std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()),
            cache,
        }
    }

    /// Downloads `required` and, where they exist, `optional` files of `model_id` (revision
    /// `main`) into `cache/owner--name/`, skipping files already there; returns that folder.
    pub async fn fetch(
        &self,
        model_id: &str,
        required: &[&str],
        optional: &[&str],
    ) -> Result<PathBuf, HubError> {
        let (owner, name) = model_id.split_once('/').ok_or_else(|| HubError::BadId(model_id.into()))?;
        let safe = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && s != "." && s != "..";
        if !safe(owner) || !safe(name) {
            return Err(HubError::BadId(model_id.into()));
        }
        let dir = self.cache.join(format!("{owner}--{name}"));
        std::fs::create_dir_all(&dir).map_err(|source| HubError::Write { path: dir.clone(), source })?;
        let http = reqwest::Client::new();
        for (file, needed) in required.iter().map(|f| (f, true)).chain(optional.iter().map(|f| (f, false))) {
            let path = dir.join(file);
            if path.is_file() {
                continue;
            }
            let url = format!("{}/{model_id}/resolve/main/{file}", self.endpoint);
            let fail =
                |message: String| HubError::Fetch { model: model_id.into(), file: (*file).into(), message };
            let mut req = http.get(&url);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.map_err(|e| fail(e.without_url().to_string()))?;
            if resp.status() == reqwest::StatusCode::NOT_FOUND && !needed {
                continue;
            }
            if !resp.status().is_success() {
                return Err(fail(format!("HTTP {} from {url}", resp.status())));
            }
            // Streamed to a `.part` file and renamed when complete: weights can be gigabytes, and
            // an interrupted download must not look like a cached file.
            let tmp = path.with_extension("part");
            let write = |source| HubError::Write { path: tmp.clone(), source };
            let mut out = tokio::fs::File::create(&tmp).await.map_err(write)?;
            let mut resp = resp;
            let mut size = 0u64;
            while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.without_url().to_string()))? {
                out.write_all(&chunk).await.map_err(write)?;
                size += chunk.len() as u64;
            }
            out.flush().await.map_err(write)?;
            drop(out);
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|source| HubError::Write { path: path.clone(), source })?;
            tracing::info!(model = model_id, file, bytes = size, "fetched");
        }
        Ok(dir)
    }
}
