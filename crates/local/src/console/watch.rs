//! `GET /console/api/jobs/{id}/events`: one job as it changes, as server-sent events.
//!
//! Each event's data is `{"job": <what /status answers>, "stream": [new chunks], "logs": [new
//! lines]}`, sent when the job changes (woken by the job's own notify and by new log lines, so
//! nothing polls). Chunks are read, not drained: a client of `/stream` still gets all of them.
//! The stream ends a moment after the job's final state (late log lines still come), when
//! the job is dropped, or when the server shuts down.

use super::logs::LogLineView;
use crate::error::ApiError;
use crate::request::Params;
use crate::server::Shared;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use runpod_protocol::StatusResponse;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long the stream stays open after the job's final state, for its last log lines.
const AFTER_END: Duration = Duration::from_secs(2);

pub(super) async fn events(
    State(sh): State<Arc<Shared>>,
    Params(id): Params<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    sh.lock().get(&id)?;
    let watch = Watch { sh, id, last: None, chunks: 0, logs: 0, ended_at: None };
    let events = futures::stream::unfold(watch, |mut w| async move {
        let event = w.next().await?;
        Some((Ok(event), w))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One client's view of one job: what it has been sent so far.
struct Watch {
    sh: Arc<Shared>,
    id: String,
    last: Option<StatusResponse>,
    /// Chunks sent so far.
    chunks: u64,
    /// Log lines sent so far.
    logs: usize,
    ended_at: Option<Instant>,
}

impl Watch {
    /// The next change, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        let sh = self.sh.clone();
        loop {
            let job_changed = sh.lock().get(&self.id).ok()?.changed();
            // Listen before looking, so that a change between the two is not missed.
            let job = job_changed.notified();
            let line = sh.logs.changed().notified();
            tokio::pin!(job, line);
            job.as_mut().enable();
            line.as_mut().enable();
            if let Some(event) = self.changes()? {
                return Some(event);
            }
            let until = match self.ended_at {
                Some(t) => t + AFTER_END,
                None => crate::server::deadline(Duration::MAX),
            };
            tokio::select! {
                _ = &mut job => {}
                _ = &mut line => {}
                _ = tokio::time::sleep_until(until) => return None,
                _ = sh.shutdown.cancelled() => return None,
            }
        }
    }

    /// `None`: the job is gone; `Some(None)`: nothing new; else the event to send.
    fn changes(&mut self) -> Option<Option<Event>> {
        let store = self.sh.lock();
        let entry = store.get(&self.id).ok()?;
        let status = entry.status_response();
        let (chunks, next) = entry.stream_from(self.chunks);
        let chunks = chunks.to_vec();
        let submitted = entry.submitted_at();
        drop(store);
        let lines = self.sh.logs.since(&self.id, self.logs);
        if self.last.as_ref() == Some(&status) && chunks.is_empty() && lines.is_empty() {
            return Some(None);
        }
        self.chunks = next;
        self.logs += lines.len();
        if status.status.is_final() {
            self.ended_at.get_or_insert_with(Instant::now);
        } else {
            self.ended_at = None;
        }
        let logs: Vec<LogLineView<'_>> = lines
            .iter()
            .map(|l| LogLineView {
                level: &l.level,
                message: &l.message,
                at_ms: l.at.saturating_duration_since(submitted).as_millis() as u64,
            })
            .collect();
        let data = json!({"job": &status, "stream": chunks, "logs": logs});
        self.last = Some(status);
        Some(Some(Event::default().data(data.to_string())))
    }
}
