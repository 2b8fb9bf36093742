//! S3-compatible storage for handlers: [`JobContext::s3`], uploads that fall back to inline
//! base64 without a bucket, and input downloads into a temporary directory.
//!
//! The bucket is the job's `s3Config`, else the endpoint-wide `BUCKET_ENDPOINT_URL`,
//! `BUCKET_ACCESS_KEY_ID`, `BUCKET_SECRET_ACCESS_KEY` (and `BUCKET_NAME`). SDK clients are
//! cached per distinct configuration by `runpod_s3`; the environment is read once per worker,
//! when it starts (`scope::StorageEnv`, which every job's context shares).
//! The endpoint must resolve to a public address unless `RUNPOD_ALLOW_PRIVATE_S3_ENDPOINTS` is
//! `private` or `true` (see `runpod_s3::EndpointPolicy`); a refused one fails the upload (and
//! the job, if the handler returns the error) before anything is sent.

use crate::context::JobContext;
use runpod_s3::{DownloadError, Downloads, Storage, StorageConfig, StorageError, Uploaded, Uploader};
use std::path::Path;
use tracing::Instrument;

impl JobContext {
    /// The storage configuration of this job: its `s3Config`, else the `BUCKET_*`
    /// environment, else `None`.
    pub fn storage_config(&self) -> Result<Option<StorageConfig>, StorageError> {
        match self.s3_config() {
            Some(c) => Ok(Some(StorageConfig::from_s3_config(c))),
            None => self.scope().storage.bucket(),
        }
    }

    /// The job's bucket, with objects under `{job_id}/` and presigned URLs valid 7 days.
    ///
    /// Fails with [`StorageError::NotConfigured`] when neither the job nor the environment
    /// names a bucket. The SDK client inside is `storage.client()`.
    pub async fn s3(&self) -> Result<Storage, StorageError> {
        let config = self.storage_config()?.ok_or(StorageError::NotConfigured)?;
        Storage::new(&config)?.for_job(self.job_id())
    }

    /// Uploads to the job's bucket, or returns results inline (base64 `data:` URLs, logged)
    /// when no bucket is configured.
    pub async fn uploader(&self) -> Result<Uploader, StorageError> {
        match self.s3().await {
            Ok(storage) => Ok(Uploader::new(Some(storage))),
            Err(StorageError::NotConfigured) => Ok(Uploader::new(None)),
            Err(e) => Err(e),
        }
    }

    /// Uploads `data` as `{job_id}/{name}` and returns where to fetch it (a presigned GET URL,
    /// or the data inline without a bucket).
    pub async fn upload_bytes(
        &self,
        name: &str,
        data: impl Into<runpod_s3::Bytes>,
        content_type: &str,
    ) -> Result<Uploaded, StorageError> {
        let uploader = self.uploader().await?;
        uploader.upload_bytes(name, data, content_type).instrument(self.span().clone()).await
    }

    /// Uploads the file at `path` as `{job_id}/{name}` (multipart from disk when large); the
    /// content type defaults to the one of `name`'s extension.
    pub async fn upload_file(
        &self,
        name: &str,
        path: impl AsRef<Path>,
        content_type: Option<&str>,
    ) -> Result<Uploaded, StorageError> {
        let uploader = self.uploader().await?;
        uploader.upload_file(name, path, content_type).instrument(self.span().clone()).await
    }

    /// Downloads the job's input URLs (`http`, `https`, `s3://bucket/key` read with the job's
    /// bucket credentials) into a temporary directory that is deleted when the returned
    /// [`Downloads`] is dropped: keep it for the job, let it go at the end.
    pub async fn download<S: AsRef<str>>(&self, urls: &[S]) -> Result<Downloads, DownloadError> {
        let storage = match self.s3().await {
            Ok(s) => Some(s),
            Err(StorageError::NotConfigured) => None,
            // A broken configuration matters only to s3:// URLs; report it with the first one.
            Err(e) => match urls.iter().find(|u| u.as_ref().starts_with("s3://")) {
                Some(url) => {
                    return Err(DownloadError::Storage { url: url.as_ref().to_owned(), source: Box::new(e) })
                }
                None => None,
            },
        };
        self.scope()
            .storage
            .downloader()?
            .with_storage(storage)
            .download_for_job(self.job_id(), urls)
            .instrument(self.span().clone())
            .await
    }
}

/// An output over the result limit goes to the job's bucket as `{job_id}/output.json`, and
/// the job's output becomes that upload's record (`{"url": presigned GET, "bucket", "key",
/// "size", "contentType": "application/json", "inline": false}`): beyond the Python SDK, which
/// drops such a result. Without a bucket, `done` is returned unchanged (the size check then
/// fails the job clearly); `Err` when the upload itself failed. The upload runs on the handler
/// runtime `rt`, where the job's S3 clients live.
pub(crate) async fn offload_output(
    mut done: runpod_protocol::JobDone,
    limit: usize,
    ctx: &JobContext,
    rt: &tokio::runtime::Handle,
    timings: &mut Option<crate::debugger::Timings>,
) -> Result<runpod_protocol::JobDone, String> {
    if done.error.is_some() || done.output.is_none() {
        return Ok(done);
    }
    let size = encoded_len(&done);
    if size <= limit || !matches!(ctx.storage_config(), Ok(Some(_))) {
        return Ok(done);
    }
    let step = crate::debugger::start(timings, "upload_output");
    let body = serde_json::to_vec(&done.output).map_err(|e| format!("the output does not serialize: {e}"))?;
    let job = ctx.clone();
    let uploaded = rt
        .spawn(async move { job.upload_bytes("output.json", body, "application/json").await })
        .await
        .map_err(|e| format!("the upload task failed: {e}"))
        .and_then(|r| r.map_err(|e| e.to_string()));
    crate::debugger::stop(timings, step);
    match uploaded {
        Ok(up) => {
            tracing::warn!(
                parent: ctx.span(),
                "the result is {size} bytes, over the {limit}-byte limit: uploaded to {}/{}, the output is its URL",
                up.bucket.as_deref().unwrap_or_default(),
                up.key.as_deref().unwrap_or_default()
            );
            done.output = Some(serde_json::to_value(&up).map_err(|e| e.to_string())?);
            Ok(done)
        }
        Err(e) => Err(format!(
            "the job's result is {size} bytes, over the platform's {limit}-byte limit, and uploading it to the bucket failed: {e}"
        )),
    }
}

/// The length of `value` as JSON, without building the text.
fn encoded_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, value);
    c.0
}
