//! [`Startup`]: the worker's handler, or the future that builds it (the model load), run
//! after the fitness checks in every mode.

use crate::WorkerError;
use futures::future::BoxFuture;

/// The handler, or the start-up that builds it.
pub(crate) enum Startup<H> {
    /// Built already.
    Ready(H),
    /// Built by a future (the model load), run after the fitness checks.
    Loading(BoxFuture<'static, Result<H, String>>),
}

impl<H> Startup<H> {
    /// The handler, once its start-up is done; [`WorkerError::Startup`] when it failed.
    pub(crate) async fn handler(self) -> Result<H, WorkerError> {
        match self {
            Startup::Ready(h) => Ok(h),
            Startup::Loading(startup) => {
                let started = std::time::Instant::now();
                let h = startup.await.map_err(WorkerError::Startup)?;
                tracing::info!(ms = started.elapsed().as_millis() as u64, "start-up done");
                Ok(h)
            }
        }
    }
}
