//! The process's stop signals: SIGTERM (what the platform sends) and SIGINT (Ctrl-C).

/// Completes on the first SIGTERM or SIGINT.
pub(crate) async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received: finishing in-flight jobs"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received: finishing in-flight jobs"),
                }
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops the worker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received: finishing in-flight jobs");
    }
}
