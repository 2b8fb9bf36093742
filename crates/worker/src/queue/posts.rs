//! The queue's [`JobSink`]: a job's progress updates and chunks queued, in order, for its one
//! sender task ([`deliver`](crate::queue::sender::deliver)), which also takes the final result
//! after them.

use crate::queue::sender::Post;
use crate::sink::{JobSink, StreamError};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// The sending half of a job's post queue.
pub(crate) struct PostQueue(pub(crate) mpsc::UnboundedSender<Post>);

impl JobSink for PostQueue {
    fn progress(&self, value: Value, span: &tracing::Span) {
        if self.0.send(Post::Progress(value)).is_err() {
            tracing::debug!(parent: span, "progress after the job ended: dropped");
        }
    }

    fn chunk(&self, value: Value, _span: &tracing::Span) -> BoxFuture<'static, Result<(), StreamError>> {
        let (ack, done) = oneshot::channel();
        let queued = self.0.send(Post::Chunk(value, ack)).is_ok();
        Box::pin(async move {
            if !queued {
                return Err(StreamError::Closed);
            }
            done.await.unwrap_or(Err(StreamError::Closed))
        })
    }
}
