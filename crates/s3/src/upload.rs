//! [`Uploader`]: S3 when configured, inline base64 otherwise.

use crate::content_type::content_type_for;
use crate::error::StorageError;
use crate::storage::{validate_name, Storage};
use crate::uploaded::Uploaded;
use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use std::path::Path;

/// Largest object returned inline when no storage is configured (10 MiB: the platform's
/// `/run` payload limit is of the same order).
pub const DEFAULT_INLINE_LIMIT: u64 = 10 * 1024 * 1024;

/// Uploads a job's results to S3 when storage is configured, and otherwise returns them inline
/// as base64 (as the Python SDK falls back to local files), with a warning in the log.
#[derive(Debug, Clone)]
pub struct Uploader {
    storage: Option<Storage>,
    inline_limit: u64,
}

impl Uploader {
    /// An uploader for `storage` (`None`: inline fallback).
    pub fn new(storage: Option<Storage>) -> Self {
        Uploader { storage, inline_limit: DEFAULT_INLINE_LIMIT }
    }

    /// Sets the largest size returned inline.
    #[must_use]
    pub fn with_inline_limit(mut self, bytes: u64) -> Self {
        self.inline_limit = bytes;
        self
    }

    /// The storage, when configured.
    pub fn storage(&self) -> Option<&Storage> {
        self.storage.as_ref()
    }

    /// Uploads `data` as `name`, or returns it inline.
    pub async fn upload_bytes(
        &self,
        name: &str,
        data: impl Into<Bytes>,
        content_type: &str,
    ) -> Result<Uploaded, StorageError> {
        let data: Bytes = data.into();
        match &self.storage {
            Some(s) => s.upload_bytes(name, data, content_type).await,
            None => self.inline(name, &data, content_type),
        }
    }

    /// Uploads the file at `path` as `name`, or returns its content inline.
    pub async fn upload_file(
        &self,
        name: &str,
        path: impl AsRef<Path>,
        content_type: Option<&str>,
    ) -> Result<Uploaded, StorageError> {
        let path = path.as_ref();
        if let Some(s) = &self.storage {
            return s.upload_file(name, path, content_type).await;
        }
        let io = |source| StorageError::Io { action: "reading", path: path.to_owned(), source };
        let size = tokio::fs::metadata(path).await.map_err(io)?.len();
        self.check_inline_size(name, size)?;
        let data = tokio::fs::read(path).await.map_err(io)?;
        let ct = content_type.unwrap_or_else(|| content_type_for(name));
        self.inline(name, &data, ct)
    }

    /// Uploads everything `stream` yields as `name`, or collects it (up to the inline limit)
    /// and returns it inline.
    pub async fn upload_stream<S>(
        &self,
        name: &str,
        stream: S,
        content_type: &str,
    ) -> Result<Uploaded, StorageError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send,
    {
        if let Some(s) = &self.storage {
            return s.upload_stream(name, stream, content_type).await;
        }
        let mut data = Vec::new();
        let mut stream = Box::pin(stream);
        while let Some(chunk) =
            stream.try_next().await.map_err(|source| StorageError::Stream { key: name.to_owned(), source })?
        {
            data.extend_from_slice(&chunk);
            self.check_inline_size(name, data.len() as u64)?;
        }
        self.inline(name, &data, content_type)
    }

    fn check_inline_size(&self, name: &str, size: u64) -> Result<(), StorageError> {
        if size > self.inline_limit {
            return Err(StorageError::InlineTooLarge {
                name: name.to_owned(),
                size,
                limit: self.inline_limit,
            });
        }
        Ok(())
    }

    fn inline(&self, name: &str, data: &[u8], content_type: &str) -> Result<Uploaded, StorageError> {
        validate_name(name)?;
        self.check_inline_size(name, data.len() as u64)?;
        tracing::warn!(
            name,
            size = data.len(),
            "no S3 storage configured (no s3Config in the job, BUCKET_* not set): returning the data inline \
             as base64"
        );
        Ok(Uploaded::inline(data, content_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inline_fallback_encodes_with_content_type() {
        let up = Uploader::new(None);
        let got = up.upload_bytes("hello.txt", &b"hi there"[..], "text/plain").await.unwrap();
        assert!(got.inline);
        assert_eq!(got.url, "data:text/plain;base64,aGkgdGhlcmU=");
        assert_eq!(got.size, 8);
        let json = serde_json::to_string(&got).unwrap();
        assert!(json.contains("\"inline\":true") && !json.contains("bucket"), "{json}");
    }

    #[tokio::test]
    async fn inline_fallback_has_a_size_limit() {
        let up = Uploader::new(None).with_inline_limit(4);
        let err = up.upload_bytes("big.bin", vec![0u8; 5], "application/octet-stream").await.unwrap_err();
        assert!(matches!(err, StorageError::InlineTooLarge { size: 5, limit: 4, .. }), "{err}");
        let chunks =
            futures::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Ok(Bytes::from_static(b"de"))]);
        assert!(up.upload_stream("s.bin", chunks, "application/octet-stream").await.is_err());
    }

    #[tokio::test]
    async fn inline_file_guesses_content_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        std::fs::write(&path, [1u8, 2, 3]).unwrap();
        let got = Uploader::new(None).upload_file("x.png", &path, None).await.unwrap();
        assert_eq!(got.url, "data:image/png;base64,AQID");
    }
}
