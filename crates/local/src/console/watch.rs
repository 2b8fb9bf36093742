//! `GET /console/api/jobs/{id}/events`: one job as it changes, as server-sent events.
//!
//! Each event's data is `{"job": <what /status answers>, "stream": [new chunks], "logs": [new
//! lines]}`, sent when the job changes (woken by the job's own notify and by new log lines, so
//! nothing polls). Chunks are read, not drained: a client of `/stream` still gets all of them.
//! The stream ends a moment after the job's final state (late log lines still come), when
//! the job is dropped, or when the server shuts down.

use super::logs::{LogBook, LogLineView};
use crate::error::ApiError;
use crate::jobs::{deadline, Entry, Jobs};
use crate::request::Params;
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
    State(jobs): State<Jobs>,
    State(logs): State<Arc<LogBook>>,
    Params(id): Params<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    jobs.exists(&id)?;
    let watch = Watch { jobs, logs, id, last: None, chunks: 0, lines: 0, ended_at: None };
    let events = futures::stream::unfold(watch, |mut w| async move {
        let event = w.next().await?;
        Some((Ok(event), w))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One client's view of one job: what it has been sent so far.
struct Watch {
    jobs: Jobs,
    logs: Arc<LogBook>,
    id: String,
    last: Option<StatusResponse>,
    /// Chunks sent so far.
    chunks: u64,
    /// Log lines sent so far.
    lines: usize,
    ended_at: Option<Instant>,
}

impl Watch {
    /// The next change, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        let logs = self.logs.clone();
        loop {
            // Listen for log lines before looking, so that a line between the two is not missed.
            let line = logs.changed().notified();
            tokio::pin!(line);
            line.as_mut().enable();
            if let Some(event) = self.changes()? {
                return Some(event);
            }
            let until = match self.ended_at {
                Some(t) => t + AFTER_END,
                None => deadline(Duration::MAX),
            };
            let (last, seen) = (self.last.clone(), self.chunks);
            let changed = |e: Option<&Entry>| {
                e.is_none_or(|e| {
                    Some(&e.status_response()) != last.as_ref() || !e.stream_from(seen).0.is_empty()
                })
            };
            tokio::select! {
                _ = self.jobs.wait_job(&self.id, until, changed) => {
                    if self.jobs.is_shutting_down() || Instant::now() >= until {
                        return None;
                    }
                }
                _ = &mut line => {}
            }
        }
    }

    /// `None`: the job is gone; `Some(None)`: nothing new; else the event to send.
    fn changes(&mut self) -> Option<Option<Event>> {
        let view = self.jobs.view(&self.id, self.chunks)?;
        let status = view.status;
        let lines = self.logs.since(&self.id, self.lines);
        if self.last.as_ref() == Some(&status) && view.chunks.is_empty() && lines.is_empty() {
            return Some(None);
        }
        self.chunks = view.next;
        self.lines += lines.len();
        if status.status.is_final() {
            self.ended_at.get_or_insert_with(Instant::now);
        } else {
            self.ended_at = None;
        }
        let submitted = view.submitted_at;
        let logs: Vec<LogLineView<'_>> = lines
            .iter()
            .map(|l| LogLineView {
                level: &l.level,
                message: &l.message,
                at_ms: l.at.saturating_duration_since(submitted).as_millis() as u64,
            })
            .collect();
        let data = json!({"job": &status, "stream": view.chunks, "logs": logs});
        self.last = Some(status);
        Some(Some(Event::default().data(data.to_string())))
    }
}
