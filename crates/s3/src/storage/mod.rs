//! [`Storage`]: one bucket, one job prefix, and the upload/presign/get operations on it.

mod multipart;

use crate::client::client_under;
use crate::config::StorageConfig;
use crate::content_type::content_type_for;
use crate::endpoint_policy::EndpointPolicy;
use crate::error::{describe_sdk_error, redact_url, scrub, StorageError};
use crate::sdk_logs::Quiet;
use crate::uploaded::Uploaded;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::Stream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt};

/// Default lifetime of presigned GET URLs: 7 days, the longest SigV4 allows.
pub const DEFAULT_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Smallest part S3 accepts (except the last one).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// How large uploads are cut into parts and how many parts travel at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct TransferOptions {
    /// Files larger than this are sent as multipart uploads (default 16 MiB).
    pub multipart_threshold: u64,
    /// Size of each part (default 8 MiB, at least 5 MiB).
    pub part_size: u64,
    /// Parts uploaded in parallel (default 4).
    ///
    /// Memory: a stream upload holds `concurrency` parts being sent and one being filled, so
    /// `(concurrency + 1) * part_size` of part buffers (40 MiB with the defaults; a 256 MiB
    /// stream measured 40.4 MiB of heap and 41.7 MiB of RSS growth, `tests/multipart_memory.rs`).
    /// File uploads read each part from disk as it is sent (under 4 MiB for 64 MiB). On top,
    /// once per process, the first S3 client costs about 10 MiB of RSS (SDK code paged in, TLS
    /// setup, connection pool), shared by every later upload.
    pub concurrency: usize,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions { multipart_threshold: 16 * 1024 * 1024, part_size: 8 * 1024 * 1024, concurrency: 4 }
    }
}

impl TransferOptions {
    /// Sets the size above which files are sent as multipart uploads.
    pub fn with_multipart_threshold(mut self, bytes: u64) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    /// Sets the size of each part (raised to [`MIN_PART_SIZE`] when smaller).
    pub fn with_part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes;
        self
    }

    /// Sets how many parts are uploaded in parallel (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// The options with `part_size` raised to S3's minimum and `concurrency` to at least 1.
    pub(crate) fn normalized(self) -> Self {
        TransferOptions {
            multipart_threshold: self.multipart_threshold.max(1),
            part_size: self.part_size.max(MIN_PART_SIZE),
            concurrency: self.concurrency.max(1),
        }
    }
}

/// A bucket, ready for uploads of one job: objects go to `{bucket}/{prefix}/{name}`.
///
/// Cheap to clone. Built from a [`StorageConfig`] with a cached client (one per distinct
/// endpoint and keys).
#[derive(Clone)]
pub struct Storage {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) bucket: String,
    prefix: Option<String>,
    pub(crate) endpoint: String,
    /// The client's endpoint policy, to say in errors what would allow a refused endpoint.
    policy: EndpointPolicy,
    presign_expiry: Duration,
    pub(crate) transfer: TransferOptions,
    /// The keys, only to scrub them from error messages.
    secrets: Arc<[String; 2]>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("presign_expiry", &self.presign_expiry)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Storage on the configured bucket, with no key prefix.
    pub fn new(config: &StorageConfig) -> Result<Self, StorageError> {
        let policy = config.effective_endpoint_policy();
        let client = client_under(config, policy)?;
        Ok(Storage {
            client,
            bucket: config.bucket.clone(),
            prefix: None,
            endpoint: redact_url(&config.endpoint_url),
            policy,
            presign_expiry: DEFAULT_PRESIGN_EXPIRY,
            transfer: TransferOptions::default(),
            secrets: Arc::new([
                config.access_key_id.expose().to_owned(),
                config.secret_access_key.expose().to_owned(),
            ]),
        })
    }

    /// The same storage with objects under `{job_id}/`.
    pub fn for_job(&self, job_id: &str) -> Result<Self, StorageError> {
        validate_name(job_id)?;
        let mut s = self.clone();
        s.prefix = Some(job_id.trim_matches('/').to_owned());
        Ok(s)
    }

    /// Sets how long presigned URLs stay valid (1 s to 7 days).
    pub fn with_presign_expiry(mut self, expiry: Duration) -> Result<Self, StorageError> {
        if expiry < Duration::from_secs(1) || expiry > DEFAULT_PRESIGN_EXPIRY {
            return Err(StorageError::PresignExpiry(expiry));
        }
        self.presign_expiry = expiry;
        Ok(self)
    }

    /// Sets part size, threshold and parallelism of multipart uploads.
    #[must_use]
    pub fn with_transfer_options(mut self, options: TransferOptions) -> Self {
        self.transfer = options.normalized();
        self
    }

    /// The underlying SDK client, for anything the helpers do not cover. Wrap your calls in
    /// [`quiet_sdk`](crate::quiet_sdk)`(client.list_objects_v2()...send())` so the SDK's DEBUG
    /// output (which prints the access key id) stays out of the logs, as the helpers' calls do.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key an object called `name` gets: `{job_id}/{name}`, or `name` without a job.
    pub fn key_for(&self, name: &str) -> Result<String, StorageError> {
        validate_name(name)?;
        Ok(match &self.prefix {
            Some(p) => format!("{p}/{name}"),
            None => name.to_owned(),
        })
    }

    /// Creates the bucket unless it exists already.
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        if self.client.head_bucket().bucket(&self.bucket).send().quiet().await.is_ok() {
            return Ok(());
        }
        match self.client.create_bucket().bucket(&self.bucket).send().quiet().await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")) => Ok(()),
            Err(e) => Err(self.sdk_error("CreateBucket", "", &e)),
        }
    }

    /// Uploads `data` as `name` and returns its presigned GET URL.
    pub async fn upload_bytes(
        &self,
        name: &str,
        data: impl Into<Bytes>,
        content_type: &str,
    ) -> Result<Uploaded, StorageError> {
        let key = self.key_for(name)?;
        let data: Bytes = data.into();
        let size = data.len() as u64;
        self.put_object(&key, ByteStream::from(data), size, content_type).await?;
        self.finish(key, size, content_type).await
    }

    /// Uploads the file at `path` as `name` (content type from `content_type` or the file
    /// name's extension) and returns its presigned GET URL. Files above the multipart threshold
    /// go up in parts read from disk as they are sent, several at once.
    pub async fn upload_file(
        &self,
        name: &str,
        path: impl AsRef<Path>,
        content_type: Option<&str>,
    ) -> Result<Uploaded, StorageError> {
        let path = path.as_ref();
        let key = self.key_for(name)?;
        let content_type =
            content_type.map(str::to_owned).unwrap_or_else(|| content_type_for(name).to_owned());
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|source| StorageError::Io { action: "reading", path: path.to_owned(), source })?
            .len();
        if size <= self.transfer.multipart_threshold {
            let body = ByteStream::from_path(path).await.map_err(|e| StorageError::Io {
                action: "reading",
                path: path.to_owned(),
                source: e.into(),
            })?;
            self.put_object(&key, body, size, &content_type).await?;
        } else {
            multipart::upload_file_parts(self, &key, path, size, &content_type).await?;
        }
        self.finish(key, size, &content_type).await
    }

    /// Uploads everything `stream` yields as `name` and returns its presigned GET URL. Short
    /// streams become one PUT; longer ones a multipart upload holding at most
    /// `(concurrency + 1) * part_size` bytes of parts at a time (see [`TransferOptions`]).
    pub async fn upload_stream<S>(
        &self,
        name: &str,
        stream: S,
        content_type: &str,
    ) -> Result<Uploaded, StorageError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send,
    {
        let key = self.key_for(name)?;
        let size = multipart::upload_stream_parts(self, &key, Box::pin(stream), content_type).await?;
        self.finish(key, size, content_type).await
    }

    /// [`Storage::upload_stream`] for an `AsyncRead` (a file being written, a process pipe).
    pub async fn upload_reader<R>(
        &self,
        name: &str,
        reader: R,
        content_type: &str,
    ) -> Result<Uploaded, StorageError>
    where
        R: AsyncRead + Send,
    {
        let stream = tokio_util::io::ReaderStream::with_capacity(Box::pin(reader), 256 * 1024);
        self.upload_stream(name, stream, content_type).await
    }

    /// A presigned GET URL for `key` (a full key, as [`Storage::key_for`] gives), valid for the
    /// storage's expiry (7 days unless set).
    pub async fn presign_get(&self, key: &str) -> Result<String, StorageError> {
        let conf = PresigningConfig::expires_in(self.presign_expiry)
            .map_err(|_| StorageError::PresignExpiry(self.presign_expiry))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(conf)
            .quiet()
            .await
            .map_err(|e| self.sdk_error("PresignGetObject", key, &e))?;
        Ok(req.uri().to_string())
    }

    /// Writes object `bucket`/`key` to `dest`, failing once more than `max_bytes` arrived.
    /// Returns the number of bytes written.
    pub async fn get_to_file(
        &self,
        bucket: &str,
        key: &str,
        dest: &Path,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .quiet()
            .await
            .map_err(|e| self.sdk_error_in("GetObject", bucket, key, &e))?;
        let too_large =
            || StorageError::TooLarge { bucket: bucket.into(), key: key.into(), limit: max_bytes };
        if out.content_length().is_some_and(|n| n as u64 > max_bytes) {
            return Err(too_large());
        }
        let io_err = |source| StorageError::Io { action: "writing", path: dest.to_owned(), source };
        let mut file = tokio::fs::File::create(dest).await.map_err(io_err)?;
        let mut body = out.body;
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StorageError::Request {
                operation: "GetObject",
                bucket: bucket.into(),
                key: key.into(),
                endpoint: self.endpoint.clone(),
                message: self.scrubbed(e.to_string()),
            })?;
            written += chunk.len() as u64;
            if written > max_bytes {
                return Err(too_large());
            }
            file.write_all(&chunk).await.map_err(io_err)?;
        }
        file.flush().await.map_err(io_err)?;
        Ok(written)
    }

    async fn put_object(
        &self,
        key: &str,
        body: ByteStream,
        size: u64,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size as i64)
            .body(body)
            .send()
            .quiet()
            .await
            .map_err(|e| self.sdk_error("PutObject", key, &e))?;
        Ok(())
    }

    async fn finish(&self, key: String, size: u64, content_type: &str) -> Result<Uploaded, StorageError> {
        let url = self.presign_get(&key).await?;
        tracing::debug!(bucket = %self.bucket, key = %key, size, "uploaded");
        Ok(Uploaded {
            url,
            bucket: Some(self.bucket.clone()),
            key: Some(key),
            size,
            content_type: content_type.to_owned(),
            inline: false,
        })
    }

    pub(crate) fn sdk_error<E, R>(
        &self,
        operation: &'static str,
        key: &str,
        err: &SdkError<E, R>,
    ) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        self.sdk_error_in(operation, &self.bucket, key, err)
    }

    fn sdk_error_in<E, R>(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
        err: &SdkError<E, R>,
    ) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        if let Some(refused) = runpod_net::find_refused(err) {
            return StorageError::BlockedEndpoint {
                endpoint: self.endpoint.clone(),
                reason: refused.to_string(),
                remedy: self.policy.remedy(),
            };
        }
        StorageError::Request {
            operation,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            endpoint: self.endpoint.clone(),
            message: self.scrubbed(describe_sdk_error(err)),
        }
    }

    pub(crate) fn scrubbed(&self, text: String) -> String {
        scrub(text, &[&self.secrets[0], &self.secrets[1]])
    }
}

/// Rejects names that are empty, absolute, contain `..` or `.` segments, backslashes or
/// control characters, so that `{job_id}/{name}` stays under the job's prefix.
pub(crate) fn validate_name(name: &str) -> Result<(), StorageError> {
    let bad = |reason| Err(StorageError::InvalidName { name: name.to_owned(), reason });
    if name.trim().is_empty() {
        return bad("empty");
    }
    if name.starts_with('/') {
        return bad("must not start with '/'");
    }
    if name.len() > 900 {
        return bad("longer than 900 bytes");
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return bad("contains a control character or backslash");
    }
    if name.split('/').any(|seg| seg == ".." || seg == "." || seg.is_empty()) {
        return bad("has an empty, '.' or '..' path segment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_under_the_prefix() {
        for ok in ["a.png", "out/frame-001.png", "x y.txt"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", " ", "/abs", "../up", "a/../b", "a//b", "a/", "a\\b", "a\nb", "./a"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn transfer_options_are_normalized() {
        let t = TransferOptions { multipart_threshold: 0, part_size: 1, concurrency: 0 }.normalized();
        assert_eq!(t, TransferOptions { multipart_threshold: 1, part_size: MIN_PART_SIZE, concurrency: 1 });
    }
}
