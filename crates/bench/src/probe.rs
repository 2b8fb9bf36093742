//! Start-up probe: a listener that notes when a worker's first `job-take` request arrives.

use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A loopback listener standing in for the job-take URL; it never answers, it only notes arrivals.
pub(crate) struct Probe {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    arrivals: mpsc::UnboundedReceiver<Instant>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    /// Binds to a free loopback port and starts accepting.
    pub(crate) async fn start() -> std::io::Result<Probe> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (tx, arrivals) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut sock, _)) = listener.accept().await {
                let tx = tx.clone();
                held.push(tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    // Read the request head; note the time once a job-take request line is seen.
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let at = Instant::now();
                    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
                    if line.windows(9).any(|w| w == b"/job-take") {
                        let _ = tx.send(at);
                    }
                    // Hold the connection open (a long poll that never ends) until the worker dies.
                    let _ = sock.read(&mut chunk).await;
                }));
            }
        });
        Ok(Probe { base_url, arrivals, task })
    }

    /// Waits for the next job-take request to arrive.
    pub(crate) async fn next_take(&mut self) -> Option<Instant> {
        self.arrivals.recv().await
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}
