//! The chunk stream behind [`Endpoint::stream`](crate::Endpoint::stream): polls `/stream/{id}`.

use crate::state::decode_value;
use crate::{Endpoint, Error};
use futures::Stream;
use runpod_protocol::JobStatus;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::Duration;

struct State<T> {
    endpoint: Endpoint,
    id: String,
    buffered: VecDeque<Value>,
    /// The last item to yield once the buffer is empty (the job ended badly).
    ending: Option<Error>,
    done: bool,
    polled: bool,
    interval: Duration,
    min: Duration,
    max: Duration,
    _t: PhantomData<fn() -> T>,
}

/// Polls `/stream/{id}`: at once after chunks came, else waiting `min` growing to `max`.
/// Ends when a poll sees a final status and no new chunks.
pub(crate) fn chunks<T: DeserializeOwned + Send + 'static>(
    endpoint: Endpoint,
    id: String,
    min: Duration,
    max: Duration,
) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
    let state = State::<T> {
        endpoint,
        id,
        buffered: VecDeque::new(),
        ending: None,
        done: false,
        polled: false,
        interval: min,
        min,
        max,
        _t: PhantomData,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(v) = st.buffered.pop_front() {
                let item = decode_value::<T>(v, "stream chunk");
                return Some((item, st));
            }
            if let Some(e) = st.ending.take() {
                st.done = true;
                return Some((Err(e), st));
            }
            if st.done {
                return None;
            }
            if st.polled {
                tokio::time::sleep(st.interval).await;
            }
            st.polled = true;
            let answer = match st.endpoint.stream_once(&st.id).await {
                Ok(a) => a,
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            };
            let got = !answer.stream.is_empty();
            st.buffered.extend(answer.stream.into_iter().map(|c| c.output));
            if got {
                st.interval = st.min;
                // Ask again at once: more chunks may be waiting, and a final status is only
                // trusted from a poll that brought nothing new.
                st.polled = false;
            } else if answer.status.is_final() {
                st.done = true;
                if answer.status != JobStatus::Completed {
                    st.ending = Some(Error::JobEnded {
                        id: st.id.clone(),
                        status: answer.status,
                        error: answer.error,
                    });
                }
            } else {
                st.interval = (st.interval * 3 / 2).min(st.max);
            }
        }
    })
}
