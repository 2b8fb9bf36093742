//! Keeps the AWS SDK's DEBUG and TRACE output out of the logs.
//!
//! At DEBUG the SDK's orchestrator (`aws_smithy_runtime`) prints the resolved identity, the access
//! key id included, each time it resolves an endpoint; at TRACE it prints more. Every SDK call
//! this crate makes runs under [`quiet_sdk`]: a thin wrapper around the current `tracing`
//! dispatcher that drops events and spans of `aws_*` targets below INFO, whatever the program's
//! own filter says (`RUST_LOG=debug` included). Everything else passes through unchanged.
//!
//! To see the SDK's details anyway (debugging the SDK itself), name an `aws` target in
//! `RUST_LOG`, e.g. `RUST_LOG=debug,aws_smithy_runtime=debug`: then nothing is capped.

use std::future::Future;
use std::sync::{Mutex, OnceLock};
use tracing::instrument::{WithDispatch, WithSubscriber};
use tracing::subscriber::{Interest, NoSubscriber};
use tracing::{span, Dispatch, Event, Level, Metadata, Subscriber};

/// How many distinct dispatchers (programs normally have one) keep a capped twin.
const CACHE_CAPACITY: usize = 16;

/// Runs `fut` (an AWS SDK call) with the SDK's own events below INFO dropped: they can carry the
/// access key id. Use it around calls you make on [`Storage::client`](crate::Storage::client)
/// yourself; this crate's helpers already do.
pub fn quiet_sdk<F: Future>(fut: F) -> WithDispatch<F> {
    fut.with_subscriber(capped())
}

/// Runs `f` (synchronous SDK work) under the same cap as [`quiet_sdk`].
pub(crate) fn quietly<T>(f: impl FnOnce() -> T) -> T {
    tracing::dispatcher::with_default(&capped(), f)
}

/// True for the SDK's events and spans below INFO.
fn is_sdk_detail(meta: &Metadata<'_>) -> bool {
    *meta.level() > Level::INFO && meta.target().starts_with("aws_")
}

/// True when `RUST_LOG` names an `aws` target: the user asked for the SDK's details.
fn sdk_details_wanted() -> bool {
    static WANTED: OnceLock<bool> = OnceLock::new();
    *WANTED.get_or_init(|| std::env::var("RUST_LOG").is_ok_and(|f| f.contains("aws")))
}

/// The current dispatcher with the SDK's details capped; built once per dispatcher (creating a
/// dispatcher re-registers every callsite, too slow to do per call).
fn capped() -> Dispatch {
    let current = tracing::dispatcher::get_default(Dispatch::clone);
    if sdk_details_wanted() || current.is::<CapSdk>() || current.is::<NoSubscriber>() {
        return current;
    }
    // A dispatcher's Debug form is its address: an identity, kept valid by the clone held here.
    let key = format!("{current:?}");
    static CACHE: OnceLock<Mutex<Vec<(String, Dispatch)>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, d)) = cache.iter().find(|(k, _)| *k == key) {
        return d.clone();
    }
    if cache.len() >= CACHE_CAPACITY {
        cache.remove(0);
    }
    let d = Dispatch::new(CapSdk { inner: current });
    cache.push((key, d.clone()));
    d
}

/// Forwards everything to `inner` except the SDK's details.
struct CapSdk {
    inner: Dispatch,
}

impl Subscriber for CapSdk {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_sdk_detail(meta) {
            Interest::never()
        } else {
            self.inner.register_callsite(meta)
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        !is_sdk_detail(meta) && self.inner.enabled(meta)
    }

    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        self.inner.new_span(attrs)
    }

    fn record(&self, span: &span::Id, values: &span::Record<'_>) {
        self.inner.record(span, values)
    }

    fn record_follows_from(&self, span: &span::Id, follows: &span::Id) {
        self.inner.record_follows_from(span, follows)
    }

    fn event(&self, event: &Event<'_>) {
        self.inner.event(event)
    }

    fn enter(&self, span: &span::Id) {
        self.inner.enter(span)
    }

    fn exit(&self, span: &span::Id) {
        self.inner.exit(span)
    }

    fn clone_span(&self, id: &span::Id) -> span::Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: span::Id) -> bool {
        self.inner.try_close(id)
    }

    fn current_span(&self) -> tracing_core::span::Current {
        self.inner.current_span()
    }
}

/// `.quiet()` on an SDK call's future: [`quiet_sdk`] as a method.
pub(crate) trait Quiet: Future + Sized {
    fn quiet(self) -> WithDispatch<Self> {
        quiet_sdk(self)
    }
}

impl<F: Future> Quiet for F {}
