//! [`Uploaded`]: where an uploaded object can be fetched, as a job's output names it.

use base64::Engine;
use serde::Serialize;

/// Where an uploaded object can be fetched. Serializes as
/// `{"url", "bucket"?, "key"?, "size", "contentType", "inline"}`, ready to be a job's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Uploaded {
    /// A presigned GET URL, or a `data:{content type};base64,...` URL when returned inline.
    pub url: String,
    /// The bucket (absent when inline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The object key, `{job_id}/{name}` (absent when inline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// The content type it was stored with.
    pub content_type: String,
    /// True when no storage was configured and the data is in `url` itself.
    pub inline: bool,
}

impl Uploaded {
    /// The inline form of `data`: a base64 `data:` URL with its content type.
    pub fn inline(data: &[u8], content_type: &str) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        Uploaded {
            url: format!("data:{content_type};base64,{b64}"),
            bucket: None,
            key: None,
            size: data.len() as u64,
            content_type: content_type.to_owned(),
            inline: true,
        }
    }
}
