//! [`WorkerScope`]: what every job of a worker shares, read from the environment once when the
//! worker starts (so that nothing of it is process-global): for now the storage settings.

#[cfg(feature = "s3")]
use {
    runpod_s3::{DownloadError, DownloadOptions, Downloader, StorageConfig, StorageError},
    std::collections::HashMap,
    std::sync::{Arc, Mutex},
};

/// What every job of a worker shares, built once when the worker starts (so that nothing of
/// it is process-global).
#[derive(Debug, Clone)]
pub(crate) struct WorkerScope {
    /// The `BUCKET_*` configuration and the downloaders.
    #[cfg(feature = "s3")]
    pub(crate) storage: Arc<StorageEnv>,
}

impl WorkerScope {
    /// Reads what the jobs need from the environment.
    pub(crate) fn from_env() -> WorkerScope {
        WorkerScope {
            #[cfg(feature = "s3")]
            storage: Arc::new(StorageEnv::from_env()),
        }
    }
}

#[cfg(feature = "s3")]
/// What a worker's jobs share for storage: the `BUCKET_*` configuration (an invalid one kept
/// as its message) and the downloaders, built once per tokio runtime from
/// `RUNPOD_MAX_DOWNLOAD_BYTES` and `RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS` (a downloader holds a
/// connection pool, whose connections live on the runtime that opened them).
pub(crate) struct StorageEnv {
    bucket: Result<Option<StorageConfig>, String>,
    downloaders: Mutex<HashMap<Option<tokio::runtime::Id>, Downloader>>,
}

#[cfg(feature = "s3")]
impl StorageEnv {
    /// Reads the `BUCKET_*` environment.
    pub(crate) fn from_env() -> StorageEnv {
        let bucket = StorageConfig::from_env().map_err(|e| match e {
            StorageError::InvalidConfig(message) => message,
            other => other.to_string(),
        });
        StorageEnv { bucket, downloaders: Mutex::default() }
    }

    pub(crate) fn bucket(&self) -> Result<Option<StorageConfig>, StorageError> {
        self.bucket.clone().map_err(StorageError::InvalidConfig)
    }

    /// The downloader of the current runtime.
    pub(crate) fn downloader(&self) -> Result<Downloader, DownloadError> {
        let runtime = tokio::runtime::Handle::try_current().ok().map(|h| h.id());
        let mut map = self.downloaders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = map.get(&runtime) {
            return Ok(d.clone());
        }
        if map.len() >= 16 {
            map.clear();
        }
        let d = Downloader::new(DownloadOptions::from_env())?;
        map.insert(runtime, d.clone());
        Ok(d)
    }
}

#[cfg(feature = "s3")]
impl std::fmt::Debug for StorageEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration holds keys: only whether there is one.
        f.debug_struct("StorageEnv")
            .field("bucket", &matches!(self.bucket, Ok(Some(_))))
            .finish_non_exhaustive()
    }
}
