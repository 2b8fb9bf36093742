//! `Job<T>`: one job with its input decoded into the handler's type.

use runpod_protocol::{Policy, S3Config};
use serde::de::DeserializeOwned;

/// A job handed to a [`Handler`](crate::Handler), its `input` already decoded into `T`.
#[derive(Debug, Clone)]
pub struct Job<T> {
    /// The job id (also the `requestId` of every log line the job produces).
    pub id: String,
    /// The client's `input`, decoded.
    pub input: T,
    /// The client's webhook, if any (the platform calls it; the worker need not).
    pub webhook: Option<String>,
    /// The client's policy, if any.
    pub policy: Option<Policy>,
    /// The job's bucket credentials, if any (`Debug` redacts the keys).
    pub s3_config: Option<S3Config>,
    /// The job's other fields, as the platform sent them (e.g. `batchId`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `input` did not match the handler's `Input` type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("invalid input at `{path}`: {message}")]
pub struct InputError {
    /// Where in the input the mismatch is, e.g. `input.messages[2].role`.
    pub path: String,
    /// What serde expected and found.
    pub message: String,
}

impl<T> Job<T> {
    /// A job with this id and input and nothing else (no webhook, policy, bucket or other
    /// fields), for calling a handler in a test.
    pub fn new(id: impl Into<String>, input: T) -> Job<T> {
        Job { id: id.into(), input, webhook: None, policy: None, s3_config: None, extra: Default::default() }
    }

    /// The job's `batchId`, when it was sent as part of a batch.
    pub fn batch_id(&self) -> Option<&str> {
        self.extra.get("batchId").and_then(|v| v.as_str())
    }

    /// The same job with another input (e.g. after a conversion).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Job<U> {
        match self.try_map(|input| Ok::<U, std::convert::Infallible>(f(input))) {
            Ok(job) => job,
            Err(never) => match never {},
        }
    }

    /// The same job with another input, or the conversion's error.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Job<U>, E> {
        Ok(Job {
            id: self.id,
            input: f(self.input)?,
            webhook: self.webhook,
            policy: self.policy,
            s3_config: self.s3_config,
            extra: self.extra,
        })
    }
}

impl Job<serde_json::Value> {
    /// A wire job as it came, its input still JSON (decoded by the handler call).
    pub(crate) fn undecoded(job: runpod_protocol::Job) -> Job<serde_json::Value> {
        Job {
            id: job.id,
            input: job.input,
            webhook: job.webhook,
            policy: job.policy,
            s3_config: job.s3_config,
            extra: job.extra,
        }
    }
}

impl<T: DeserializeOwned> Job<T> {
    /// Decodes a wire job, naming the field path of any mismatch.
    pub fn from_wire(job: runpod_protocol::Job) -> Result<Job<T>, InputError> {
        Job::undecoded(job).try_map(decode_input)
    }
}

/// Decodes `input` into `T`; an error names the path below `input`.
pub fn decode_input<T: DeserializeOwned>(input: serde_json::Value) -> Result<T, InputError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            "input".to_owned()
        } else if inner.starts_with('[') {
            format!("input{inner}")
        } else {
            format!("input.{inner}")
        };
        InputError { path, message: e.into_inner().to_string() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "the fields are only decoded")]
    struct Msg {
        role: String,
        n: u32,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "the fields are only decoded")]
    struct Input {
        prompt: String,
        messages: Vec<Msg>,
    }

    #[test]
    fn names_the_field_path() {
        let e = decode_input::<Input>(
            json!({"prompt": "p", "messages": [{"role": "a", "n": 1}, {"role": 7, "n": 1}]}),
        )
        .unwrap_err();
        assert_eq!(e.path, "input.messages[1].role");
        assert!(e.message.contains("expected a string"), "{e}");
        let e = decode_input::<Input>(json!({"messages": []})).unwrap_err();
        assert_eq!(e.path, "input");
        assert!(e.message.contains("missing field `prompt`"), "{e}");
        let e = decode_input::<Vec<u8>>(json!([1, "x"])).unwrap_err();
        assert_eq!(e.path, "input[1]");
    }

    #[test]
    fn decodes_a_wire_job() {
        let wire: runpod_protocol::Job = serde_json::from_value(json!({
            "id": "j1", "input": {"prompt": "hi", "messages": []}, "policy": {"executionTimeout": 9000}
        }))
        .unwrap();
        let job = Job::<Input>::from_wire(wire).unwrap();
        assert_eq!(job.id, "j1");
        assert_eq!(job.input.prompt, "hi");
        assert_eq!(job.policy.unwrap().execution_timeout, Some(9000));
    }
}
