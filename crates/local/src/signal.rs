//! Waiting for the signal to stop: SIGINT (Ctrl-C) or SIGTERM (what `docker stop`, systemd and
//! Kubernetes send).

/// Returns on the first SIGINT or SIGTERM (on other platforms, Ctrl-C). Call
/// [`crate::LocalEndpoint::shutdown`] then: both signals stop the endpoint gracefully.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let ep = runpod_local::LocalEndpoint::builder().bind("127.0.0.1:8000").await?;
/// runpod_local::shutdown_signal().await;
/// ep.shutdown().await;
/// # Ok(()) }
/// ```
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => {
                let which = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                };
                tracing::info!("{which}: shutting down");
                return;
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("cannot listen for SIGINT/SIGTERM ({e}); only Ctrl-C stops")
            }
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        // No way to be told to stop: run until killed.
        std::future::pending::<()>().await;
    }
    tracing::info!("Ctrl-C: shutting down");
}
