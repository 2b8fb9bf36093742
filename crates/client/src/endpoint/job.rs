//! [`JobHandle`]: a queued job and the calls about it.

use crate::{Endpoint, Error, JobState};
use runpod_protocol::JobStatus;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// A job queued with [`Endpoint::run`]: its id, and shortcuts to the calls that take one.
#[derive(Debug, Clone)]
pub struct JobHandle {
    endpoint: Endpoint,
    id: String,
    queued_status: JobStatus,
}

impl JobHandle {
    pub(crate) fn new(endpoint: Endpoint, id: String, queued_status: JobStatus) -> Self {
        JobHandle { endpoint, id, queued_status }
    }

    /// A handle for a job queued earlier (e.g. whose id was stored), on `endpoint`.
    pub fn from_id(endpoint: Endpoint, id: impl Into<String>) -> Self {
        JobHandle { endpoint, id: id.into(), queued_status: JobStatus::InQueue }
    }

    /// The job id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The status `/run` answered (normally `IN_QUEUE`).
    pub fn queued_status(&self) -> JobStatus {
        self.queued_status
    }

    /// The job's current state.
    pub async fn status<O: DeserializeOwned>(&self) -> Result<JobState<O>, Error> {
        self.endpoint.status(&self.id).await
    }

    /// Waits until the job ends, up to the endpoint's [`wait_timeout`](Endpoint::wait_timeout).
    pub async fn wait<O: DeserializeOwned>(&self) -> Result<JobState<O>, Error> {
        self.endpoint.wait(&self.id, self.endpoint.wait_timeout()).await
    }

    /// Waits until the job ends, up to `timeout`.
    pub async fn wait_timeout<O: DeserializeOwned>(&self, timeout: Duration) -> Result<JobState<O>, Error> {
        self.endpoint.wait(&self.id, timeout).await
    }

    /// The job's streamed chunks until it ends (see [`Endpoint::stream`]).
    pub fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
    ) -> impl futures::Stream<Item = Result<T, Error>> + Send + 'static {
        self.endpoint.stream(&self.id)
    }

    /// Cancels the job.
    pub async fn cancel(&self) -> Result<JobState<Value>, Error> {
        self.endpoint.cancel(&self.id).await
    }

    /// Re-queues the job after it failed or timed out.
    pub async fn retry(&self) -> Result<JobState<Value>, Error> {
        self.endpoint.retry(&self.id).await
    }
}
