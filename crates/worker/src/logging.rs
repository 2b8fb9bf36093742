//! Logs through `tracing`: on the platform one JSON object a line (`requestId`, `message`,
//! `level`, as Runpod's log viewer reads them), readable text elsewhere.

use std::fmt;
use std::sync::{Arc, RwLock};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Installs the runtime's log output, unless the program already installed a subscriber.
///
/// The level is `level` (the `--log-level` flag), else `RUNPOD_LOG_LEVEL`, else
/// `RUNPOD_DEBUG_LEVEL`, else `INFO`; `RUST_LOG`, when set, wins with its full syntax. With
/// `RUNPOD_ENDPOINT_ID` set (on the platform) lines are JSON on stdout; otherwise text on
/// stderr, so `--test-input` leaves stdout to the result. Returns false when a subscriber
/// was already installed.
pub fn init_logging(level: Option<&str>) -> bool {
    let chosen = level
        .map(str::to_owned)
        .or_else(|| std::env::var("RUNPOD_LOG_LEVEL").ok())
        .or_else(|| std::env::var("RUNPOD_DEBUG_LEVEL").ok());
    let (directive, bad) = match chosen.as_deref().map(parse_level) {
        None => ("info", None),
        Some(Some(l)) => (l, None),
        Some(None) => ("info", chosen.clone()),
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => EnvFilter::new(s),
        _ => EnvFilter::new(format!(
            "{directive},hyper=warn,hyper_util=warn,h2=warn,reqwest=warn,rustls=warn,tower=warn,tower_http=warn,axum=warn"
        )),
    };
    let platform = std::env::var("RUNPOD_ENDPOINT_ID").is_ok_and(|v| !v.is_empty());
    let installed = if platform {
        tracing_subscriber::registry()
            .with(JobIdLayer)
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(RunpodJson)
                    .fmt_fields(NoSpanFields)
                    .with_writer(std::io::stdout),
            )
            .with(filter)
            .try_init()
            .is_ok()
    } else {
        tracing_subscriber::registry()
            .with(JobIdLayer)
            .with(JobLogTap::default())
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false),
            )
            .with(filter)
            .try_init()
            .is_ok()
    };
    if let Some(bad) = bad {
        tracing::warn!("unknown log level {bad:?} (use TRACE, DEBUG, INFO, WARN or ERROR); using INFO");
    }
    installed
}

fn parse_level(s: &str) -> Option<&'static str> {
    Some(match s.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" | "TIP" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" => "error",
        "NOTSET" | "OFF" => "off",
        _ => return None,
    })
}

/// Where `--serve-api` sends each job's log lines: `(job id, level, message)`.
#[cfg_attr(
    not(feature = "serve-api"),
    allow(dead_code, reason = "only --serve-api's console reads job logs")
)]
pub(crate) type JobLogSink = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

/// From now on, also hands every log line of a job (an event in its span, at the level the
/// terminal shows) to `sink`; `None` stops. Only through the local (text) output of
/// [`init_logging`], whose subscriber holds the sink (nothing process-global here): false when
/// the current subscriber is not that one (the program installed its own), and the lines are
/// then not handed on.
#[cfg_attr(
    not(feature = "serve-api"),
    allow(dead_code, reason = "only --serve-api's console reads job logs")
)]
pub(crate) fn send_job_logs(sink: Option<JobLogSink>) -> bool {
    let mut sink = Some(sink);
    tracing::dispatcher::get_default(|dispatch| match dispatch.downcast_ref::<JobLogTap>() {
        Some(tap) => {
            *tap.sink.write().unwrap_or_else(|p| p.into_inner()) = sink.take().flatten();
            true
        }
        None => false,
    })
}

/// Hands each event inside a job's span to its sink, when one is set.
#[derive(Default)]
struct JobLogTap {
    sink: RwLock<Option<JobLogSink>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for JobLogTap {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let sink = self.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(sink) = sink else { return };
        let mut v = FieldsVisitor::default();
        event.record(&mut v);
        let job = v.job_id.or_else(|| {
            let scope = ctx.event_scope(event)?;
            scope.from_root().find_map(|s| s.extensions().get::<JobId>().map(|j| j.0.clone()))
        });
        if let Some(job) = job {
            sink(&job, event.metadata().level().as_str(), &format!("{}{}", v.message, v.rest));
        }
    }
}

/// The job id (and batch id) a `job` span carries, kept in the span's extensions for the JSON
/// format.
struct JobId(String, Option<String>);

/// Records each span's `job_id` and `batch_id` fields.
struct JobIdLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for JobIdLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut v = FieldsVisitor::default();
        attrs.record(&mut v);
        if let (Some(job), Some(span)) = (v.job_id, ctx.span(id)) {
            span.extensions_mut().insert(JobId(job, v.batch_id));
        }
    }
}

#[derive(Default)]
struct FieldsVisitor {
    message: String,
    rest: String,
    job_id: Option<String>,
    batch_id: Option<String>,
}

impl Visit for FieldsVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "job_id" => self.job_id = Some(value.to_owned()),
            "batch_id" => self.batch_id = Some(value.to_owned()),
            name => self.rest.push_str(&format!(" {name}={value}")),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "job_id" => self.job_id = Some(format!("{value:?}")),
            "batch_id" => self.batch_id = Some(format!("{value:?}")),
            name => self.rest.push_str(&format!(" {name}={value:?}")),
        }
    }
}

/// Formats no span fields: [`RunpodJson`] reads the job id from [`JobId`] and never shows span
/// fields, and formatting them for every job's span was wasted work.
struct NoSpanFields;

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(&self, _: Writer<'w>, _: R) -> fmt::Result {
        Ok(())
    }
}

/// `{"requestId": <job id or null>, "message": "...", "level": "INFO"}`; a job sent in a batch
/// has `[batchId=...] ` before its messages, as the Python SDK 1.12 writes them.
struct RunpodJson;

impl<S, N> FormatEvent<S, N> for RunpodJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut v = FieldsVisitor::default();
        event.record(&mut v);
        let (job, batch) = match v.job_id {
            Some(job) => (Some(job), v.batch_id),
            None => ctx
                .event_scope()
                .and_then(|scope| {
                    scope
                        .from_root()
                        .find_map(|s| s.extensions().get::<JobId>().map(|j| (j.0.clone(), j.1.clone())))
                })
                .map_or((None, None), |(j, b)| (Some(j), b)),
        };
        let message = match batch {
            Some(b) => format!("[batchId={b}] {}{}", v.message, v.rest),
            None => format!("{}{}", v.message, v.rest),
        };
        let line = serde_json::json!({
            "requestId": job,
            "message": message,
            "level": event.metadata().level().as_str(),
        });
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn levels() {
        assert_eq!(super::parse_level("warn"), Some("warn"));
        assert_eq!(super::parse_level("DEBUG"), Some("debug"));
        assert_eq!(super::parse_level("loud"), None);
    }
}
