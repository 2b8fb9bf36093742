//! The job handler: batches through the model (progress and cancellation between batches),
//! one safetensors file, one upload.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use embeddings::{EmbedError, Embedder};
use runpod_s3::{DownloadError, StorageError, Uploaded};
use runpod_worker::{Failure, Job, JobContext};
use serde::{Deserialize, Serialize};

/// Most texts one job may carry.
pub const MAX_TEXTS: usize = 100_000;

/// One job's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkInput {
    /// The texts to embed, in order (row `i` of the file is text `i`).
    #[serde(default)]
    pub texts: Option<Vec<String>>,
    /// Instead of `texts`: a UTF-8 text file with one text per line (`https://...`, or
    /// `s3://bucket/key` read with the job's bucket credentials). Empty lines are skipped.
    #[serde(default)]
    pub texts_url: Option<String>,
    /// L2-normalise each vector (default true).
    #[serde(default = "yes")]
    pub normalize: bool,
    /// Texts per forward pass (default 32, at most 256).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Name of the uploaded file (default `embeddings.safetensors`); the key is `{job_id}/{name}`.
    #[serde(default = "default_name")]
    pub file_name: String,
}

fn yes() -> bool {
    true
}
fn default_batch() -> usize {
    32
}
fn default_name() -> String {
    "embeddings.safetensors".into()
}

/// Progress after each batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BulkProgress {
    /// Texts embedded so far.
    pub embedded: usize,
    /// Texts in the job.
    pub total: usize,
}

/// One job's output.
#[derive(Debug, Clone, Serialize)]
pub struct BulkOutput {
    /// Where the file is: a presigned URL into the bucket, or inline without storage.
    pub file: Uploaded,
    /// Rows in the file.
    pub count: usize,
    /// Columns in the file.
    pub dimensions: usize,
    /// Tokens over all texts.
    pub total_tokens: usize,
    /// Indices of texts cut to the model's token limit.
    pub truncated: Vec<usize>,
    /// The model's name.
    pub model: String,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// The input is not acceptable.
    #[error("{0}")]
    BadInput(String),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] EmbedError),
    /// Writing or uploading the file failed (the message never contains keys).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// `texts_url` could not be downloaded.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// Writing the safetensors file failed.
    #[error("cannot write the output file: {0}")]
    Write(String),
    /// The job was cancelled between two batches.
    #[error("cancelled after {0} texts")]
    Cancelled(usize),
}

/// Each kind of failure is the job's `error_type`: `BadInput`, `Storage`, `Download`, `Write`,
/// `Cancelled`, or the model's own (see the embeddings example).
impl From<BulkError> for Failure {
    fn from(e: BulkError) -> Failure {
        let error_type = match e {
            BulkError::Model(model) => return model.into(),
            BulkError::BadInput(_) => "BadInput",
            BulkError::Storage(_) => "Storage",
            BulkError::Download(_) => "Download",
            BulkError::Write(_) => "Write",
            BulkError::Cancelled(_) => "Cancelled",
        };
        Failure::from_error(error_type, &e)
    }
}

/// The bulk-embeddings worker: one loaded model; files go to the job's bucket (its `s3Config`,
/// else the endpoint's `BUCKET_*` settings) through [`JobContext::uploader`].
#[derive(Clone, Debug)]
pub struct BulkHandler {
    embedder: Arc<Embedder>,
    model: String,
}

impl BulkHandler {
    /// A handler over a loaded model; `model` names it in outputs and in the file's metadata.
    pub fn new(embedder: Embedder, model: impl Into<String>) -> Self {
        Self { embedder: Arc::new(embedder), model: model.into() }
    }

    /// The job's texts: given inline, or read from `texts_url`.
    async fn texts(input: &mut BulkInput, ctx: &JobContext) -> Result<Vec<String>, BulkError> {
        match (input.texts.take(), input.texts_url.take()) {
            (Some(texts), None) => Ok(texts),
            (None, Some(url)) => {
                let downloads = ctx.download(&[url.as_str()]).await?;
                let path = &downloads.files()[0];
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| BulkError::BadInput(format!("texts_url is not a UTF-8 text file: {e}")))?;
                Ok(text
                    .lines()
                    .map(|l| l.trim_end_matches('\r'))
                    .filter(|l| !l.trim().is_empty())
                    .map(String::from)
                    .collect())
            }
            _ => Err(BulkError::BadInput("give exactly one of texts and texts_url".into())),
        }
    }

    /// Runs one job (see the crate docs).
    pub async fn run(&self, job: Job<BulkInput>, ctx: &JobContext) -> Result<BulkOutput, BulkError> {
        let mut input = job.input;
        let texts = Self::texts(&mut input, ctx).await?;
        let total = texts.len();
        if total == 0 || total > MAX_TEXTS {
            return Err(BulkError::BadInput(format!(
                "texts must hold 1 to {MAX_TEXTS} strings, got {total}"
            )));
        }
        if input.batch_size == 0 || input.batch_size > 256 {
            return Err(BulkError::BadInput(format!(
                "batch_size must be 1 to 256, got {}",
                input.batch_size
            )));
        }
        if !input.file_name.ends_with(".safetensors") {
            return Err(BulkError::BadInput(format!(
                "file_name must end in .safetensors, got {:?}",
                input.file_name
            )));
        }
        // Check the storage settings before spending time on the model.
        let uploader = ctx.uploader().await?;

        let embedder = self.embedder.clone();
        let (normalize, batch) = (input.normalize, input.batch_size);
        let progress_ctx = ctx.clone();
        let span = ctx.span().clone();
        let dir = tempfile::tempdir().map_err(|e| BulkError::Write(e.to_string()))?;
        let path = dir.path().join("embeddings.safetensors");
        let file = path.clone();
        let model_name = self.model.clone();
        let (tokens, truncated) = tokio::task::spawn_blocking(move || -> Result<_, BulkError> {
            let _g = span.enter();
            let mut vectors: Vec<f32> = Vec::with_capacity(texts.len() * embedder.dimensions());
            let mut tokens: Vec<u32> = Vec::with_capacity(texts.len());
            let mut truncated = Vec::new();
            for (i, chunk) in texts.chunks(batch).enumerate() {
                if progress_ctx.is_cancelled() {
                    return Err(BulkError::Cancelled(i * batch));
                }
                let out = embedder.embed(chunk, normalize)?;
                for (j, v) in out.vectors.iter().enumerate() {
                    vectors.extend_from_slice(v);
                    tokens.push(out.tokens[j] as u32);
                    if out.truncated[j] {
                        truncated.push(i * batch + j);
                    }
                }
                progress_ctx.progress(BulkProgress { embedded: tokens.len(), total: texts.len() });
            }
            let n = tokens.len();
            let write = |e: candle_core::Error| BulkError::Write(e.to_string());
            let rows = Tensor::from_vec(vectors, (n, embedder.dimensions()), &Device::Cpu).map_err(write)?;
            let counts = Tensor::from_vec(tokens.clone(), n, &Device::Cpu).map_err(write)?;
            let tensors = HashMap::from([("embeddings".to_owned(), rows), ("tokens".to_owned(), counts)]);
            let metadata = HashMap::from([
                ("model".to_owned(), model_name),
                ("normalized".to_owned(), normalize.to_string()),
            ]);
            write_safetensors(&tensors, Some(metadata), &file)?;
            Ok((tokens, truncated))
        })
        .await
        .map_err(|e| BulkError::Write(format!("the model thread failed: {e}")))??;

        let uploaded =
            uploader.upload_file(&input.file_name, &path, Some("application/octet-stream")).await?;
        drop(dir);
        Ok(BulkOutput {
            file: uploaded,
            count: tokens.len(),
            dimensions: self.embedder.dimensions(),
            total_tokens: tokens.iter().map(|&t| t as usize).sum(),
            truncated,
            model: self.model.clone(),
        })
    }
}

fn write_safetensors(
    tensors: &HashMap<String, Tensor>,
    metadata: Option<HashMap<String, String>>,
    path: &std::path::Path,
) -> Result<(), BulkError> {
    let views: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    safetensors::serialize_to_file(views, metadata, path).map_err(|e| BulkError::Write(e.to_string()))
}

#[runpod_worker::async_trait]
impl runpod_worker::Handler for BulkHandler {
    type Input = BulkInput;
    type Output = BulkOutput;
    type Error = BulkError;

    async fn handle(&self, job: Job<BulkInput>, ctx: JobContext) -> Result<BulkOutput, BulkError> {
        self.run(job, &ctx).await
    }
}
