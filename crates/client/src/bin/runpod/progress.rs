//! The live progress line drawn on stderr while waiting, only when stderr is a terminal.

use runpod_client::JobState;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest progress line, in characters.
const WIDTH: usize = 100;

/// A progress line: redrawn every 200 ms by a task, fed by [`update`](Progress::update).
pub(crate) struct Progress {
    line: Option<Arc<Mutex<Line>>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

struct Line {
    label: String,
    status: String,
    progress: Option<Value>,
    started: Instant,
}

impl Progress {
    /// Starts drawing (a no-op when stderr is not a terminal).
    pub(crate) fn start(label: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { line: None, ticker: None };
        }
        let line = Arc::new(Mutex::new(Line {
            label: label.to_owned(),
            status: "waiting".into(),
            progress: None,
            started: Instant::now(),
        }));
        let drawn = line.clone();
        let ticker = tokio::spawn(async move {
            loop {
                draw(&drawn.lock().unwrap_or_else(|p| p.into_inner()));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Progress { line: Some(line), ticker: Some(ticker) }
    }

    /// Records the latest state seen.
    pub(crate) fn update(&self, s: &JobState<Value>) {
        if let Some(line) = &self.line {
            let mut l = line.lock().unwrap_or_else(|p| p.into_inner());
            l.label = s.id.clone();
            l.status = s.status.to_string();
            l.progress = s.progress.clone();
        }
    }

    /// Stops drawing and clears the line.
    pub(crate) fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        if self.line.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

fn draw(l: &Line) {
    let mut text = format!("{} {} {:.1}s", l.label, l.status, l.started.elapsed().as_secs_f64());
    if let Some(p) = &l.progress {
        text.push_str(&format!(" {p}"));
    }
    let text: String = crate::terminal::printable(&text).chars().take(WIDTH).collect();
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K{text}");
    let _ = err.flush();
}
