//! A job's state as `/status` (and `/runsync`, `/cancel`, `/retry`) report it, with a typed output.

use crate::Error;
use runpod_protocol::{JobStatus, StatusResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Where a job stands, with its output decoded into the caller's type `O`.
///
/// While a job runs, `output` on the wire is its latest progress update, whose type is not
/// `O`; so `output` holds the decoded result only when the job is `COMPLETED`, and the raw
/// `output` of any other state is in `progress`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState<O> {
    /// The job id.
    pub id: String,
    /// Where the job stands.
    pub status: JobStatus,
    /// Time the job waited in the queue, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_time: Option<u64>,
    /// Time the job ran, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_time: Option<u64>,
    /// The worker that ran (or runs) it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// The result of a `COMPLETED` job, decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<O>,
    /// The `output` field of a job in any other state (its latest progress update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// The error of a failed job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobState<Value> {
    /// Converts a wire answer, keeping the output as JSON.
    pub(crate) fn from_wire(r: StatusResponse) -> Self {
        let (output, progress) =
            if r.status == JobStatus::Completed { (r.output, None) } else { (None, r.output) };
        JobState {
            id: r.id,
            status: r.status,
            delay_time: r.delay_time,
            execution_time: r.execution_time,
            worker_id: r.worker_id,
            output,
            progress,
            error: r.error,
        }
    }

    /// Decodes the output into `O`; a mismatch is [`Error::Decode`] naming the path.
    pub fn decode<O: DeserializeOwned>(self) -> Result<JobState<O>, Error> {
        let output = match self.output {
            Some(v) => Some(decode_value(v, "job output")?),
            None => None,
        };
        Ok(JobState {
            id: self.id,
            status: self.status,
            delay_time: self.delay_time,
            execution_time: self.execution_time,
            worker_id: self.worker_id,
            output,
            progress: self.progress,
            error: self.error,
        })
    }
}

impl<O: DeserializeOwned> JobState<O> {
    /// The output of a `COMPLETED` job; [`Error::JobEnded`] for a job that failed, was
    /// cancelled or timed out; [`Error::NotFinished`] for one still queued or running.
    /// A completed job without output yields `O` decoded from `null` (works for `()` and `Option`).
    pub fn into_output(self) -> Result<O, Error> {
        match self.status {
            JobStatus::Completed => match self.output {
                Some(o) => Ok(o),
                None => decode_value(Value::Null, "job output (absent)"),
            },
            s if s.is_final() => Err(Error::JobEnded { id: self.id, status: s, error: self.error }),
            s => Err(Error::NotFinished { id: self.id, status: s }),
        }
    }
}

/// Deserializes `v` into `T`, reporting the JSON path of a mismatch.
pub(crate) fn decode_value<T: DeserializeOwned>(v: Value, what: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(v)
        .map_err(|e| Error::Decode { what: what.to_owned(), message: e.to_string() })
}

/// Deserializes an answer body into `T`, reporting the JSON path of a mismatch.
pub(crate) fn decode_body<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de)
        .map_err(|e| Error::Decode { what: what.to_owned(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Out {
        n: u32,
    }

    fn wire(v: Value) -> JobState<Value> {
        JobState::from_wire(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn completed_output_is_typed_and_progress_is_not() {
        let s = wire(json!({"id": "a", "status": "COMPLETED", "output": {"n": 3}, "executionTime": 5}));
        let s: JobState<Out> = s.decode().unwrap();
        assert_eq!(s.execution_time, Some(5));
        assert_eq!(s.into_output().unwrap(), Out { n: 3 });

        let running = wire(json!({"id": "a", "status": "IN_PROGRESS", "output": "50%"}));
        let running: JobState<Out> = running.decode().unwrap();
        assert_eq!(running.progress, Some(json!("50%")));
        assert!(matches!(running.into_output(), Err(Error::NotFinished { .. })));
    }

    #[test]
    fn mismatch_names_the_path() {
        let s = wire(json!({"id": "a", "status": "COMPLETED", "output": {"n": "three"}}));
        let err = s.decode::<Out>().unwrap_err();
        assert!(matches!(&err, Error::Decode { message, .. } if message.starts_with("n:")), "{err}");
    }

    #[test]
    fn failed_job_is_an_error_with_its_message() {
        let s = wire(json!({"id": "a", "status": "FAILED", "error": "boom"}));
        match s.decode::<Out>().unwrap().into_output() {
            Err(Error::JobEnded { status: JobStatus::Failed, error: Some(e), .. }) => assert_eq!(e, "boom"),
            other => panic!("{other:?}"),
        }
        let done = wire(json!({"id": "a", "status": "COMPLETED"}));
        done.clone().decode::<()>().unwrap().into_output().unwrap();
        assert!(done.decode::<Out>().unwrap().into_output().is_err());
    }
}
