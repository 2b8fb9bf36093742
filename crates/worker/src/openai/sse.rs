//! The Server-Sent Events framing of streamed answers.

use serde_json::Value;

/// The event that ends every stream.
pub const SSE_DONE: &str = "data: [DONE]\n\n";

/// One Server-Sent Event carrying `value` as JSON: `data: {...}\n\n`.
pub fn sse_event(value: &Value) -> String {
    format!("data: {value}\n\n")
}
