//! Example Runpod worker that uses S3: embeds a large list of texts in batches with a
//! BERT-family model (the `embeddings` example's [`Embedder`]), writes all vectors into one
//! safetensors file and uploads it to the job's bucket, answering with a presigned URL.
//!
//! The texts come inline (`texts`) or as a file with one text per line (`texts_url`: `https://`
//! or `s3://bucket/key`). The bucket is the job's `s3Config`, else the endpoint's
//! `BUCKET_ENDPOINT_URL`, `BUCKET_ACCESS_KEY_ID`, `BUCKET_SECRET_ACCESS_KEY` (and `BUCKET_NAME`);
//! with neither, small files come back inline as a `data:` URL (`runpod-worker`'s
//! `JobContext::uploader`). The file holds `embeddings` (F32, `[count, dimensions]`)
//! and `tokens` (U32, `[count]`), and metadata `model` and `normalized`.
//!
//! ```
//! let input: bulk_embeddings::BulkInput =
//!     serde_json::from_str(r#"{"texts": ["first", "second"], "batch_size": 64}"#).unwrap();
//! assert_eq!(input.texts.map(|t| t.len()), Some(2));
//! assert!(input.normalize);
//! assert_eq!(input.file_name, "embeddings.safetensors");
//! ```

#![forbid(unsafe_code)]

pub mod handler;

pub use embeddings::{Embedder, Hub};
pub use handler::{BulkError, BulkHandler, BulkInput, BulkOutput, BulkProgress};
