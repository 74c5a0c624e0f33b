//! Logging: `tracing` with a pretty or JSON format (`log.format`), a filter from `log.level` (or
//! `RUST_LOG`), and email redaction done by the log writer itself.
//!
//! Redacting in the writer rather than at each call site means a customer email cannot reach the logs by
//! accident: whatever a span field, an error chain or a debug dump holds, every formatted line passes
//! through [`crate::identity::redact_emails`] before it is written (`jane@acme.com` → `j•••@acme.com`).
//! Secrets are [`crate::config::Secret`]s, whose `Debug` prints `[REDACTED]`, and are never logged.
//!
//! Request ids: one question travels through an inbound request, a queued job and several outbound
//! calls, in different tasks and possibly hours apart. Its id (`x-request-id`, the caller's or ours) is
//! held in a task-local ([`scope_request_id`]) while the request is served; [`crate::queue::Queue::enqueue`]
//! stores it with the job, the worker puts it back in scope while the job runs, and
//! [`crate::outbound::Upstream`] names it in the span of every call. So `request_id=…` finds every log
//! line of one question, from the signed request to the reply posted. We do not send it to FullStory,
//! Slack, Zendesk or Discord: it means nothing to them, and a caller-chosen id is not ours to forward.
//!
//! Panics: [`init`] also installs a panic hook that logs the panic (message, location, and a backtrace
//! when `RUST_BACKTRACE` asks for one) as one `error` event through this same writer, so a panic message
//! holding a customer email (a job's payload, a ticket's text) is redacted like every other line. The
//! default hook would print it to stderr as is. A caught panic stays caught (the server answers 500, the
//! job counts a failed attempt); the hook only decides how it is written.
//!
//! `log.format = "json"` writes one JSON object per line (`timestamp`, `level`, `target`, the event's
//! fields with `message`, the current `span` and the list of `spans` with their fields, `request_id`
//! among them), ready for a log pipeline.

use std::{
    future::Future,
    io::{self, Write},
};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter, util::SubscriberInitExt};

use crate::config::{LogConfig, LogFormat};

/// Writes each formatted event once, with every email redacted.
pub struct RedactingWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return self.inner.flush();
        }
        let text = String::from_utf8_lossy(&self.buffer);
        let redacted = crate::identity::redact_emails(&text);
        self.inner.write_all(redacted.as_bytes())?;
        self.buffer.clear();
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Wraps any `MakeWriter` (stderr, a test buffer) so that what it writes is redacted.
pub struct Redacting<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.0.make_writer(),
            buffer: Vec::with_capacity(256),
        }
    }
}

/// Installs the global subscriber, writing to stderr (stdout is for command output).
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Already installed (tests, or a second call): keep the first.
    let _ = subscriber(config.format, filter, io::stderr).try_init();
    install_panic_hook();
}

/// Replaces the default panic hook with one that logs through `tracing` (redacted; see the module docs).
/// With no subscriber in place, it writes the redacted text to stderr itself.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = panic_message(info.payload());
        let location = info
            .location()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string);
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => backtrace.to_string(),
            _ => String::new(),
        };
        let no_logger =
            tracing::dispatcher::get_default(|d| d.is::<tracing::subscriber::NoSubscriber>());
        if no_logger {
            let text = format!("panic at {location}: {message}\n{backtrace}");
            let _ = writeln!(io::stderr(), "{}", crate::identity::redact_emails(&text));
        } else {
            tracing::error!(panic = %message, location, backtrace, "panic");
        }
    }));
}

/// The text of a panic's payload (`panic!("…")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

/// The subscriber [`init`] installs, writing (redacted) to `writer`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting(writer));
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        ),
        LogFormat::Pretty => Box::new(builder.with_ansi(false).compact().finish()),
    }
}

tokio::task_local! {
    static REQUEST_ID: Option<String>;
}

/// Longest request id kept; a longer one (or one with other characters than `[A-Za-z0-9._:-]`) is
/// not carried into jobs and spans, so a caller cannot park arbitrary text in our store and logs.
const MAX_REQUEST_ID: usize = 128;

/// The id if it is one we carry.
pub fn usable_request_id(id: &str) -> Option<&str> {
    let ok = !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    ok.then_some(id)
}

/// Runs `work` with `id` as the current request id (see the module docs).
pub async fn scope_request_id<F: Future>(id: Option<String>, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

/// The request id of the request or job being served by this task, if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok().flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_redacts_every_email_it_is_given() {
        let mut out = Vec::new();
        {
            let mut writer = RedactingWriter {
                inner: &mut out,
                buffer: Vec::new(),
            };
            writer.write_all(b"lookup for jane.doe@acme.com ").unwrap();
            writer.write_all(b"failed\n").unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("jane.doe@acme.com"), "{text}");
        assert!(text.contains("@acme.com"), "{text}");
        assert!(text.ends_with("failed\n"));
    }

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn json_logs_are_one_object_per_line_with_the_request_id_of_their_spans() {
        let buffer = Buffer::default();
        let subscriber = subscriber(LogFormat::Json, EnvFilter::new("debug"), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", request_id = "req-42", route = "/x");
            let _request = request.enter();
            let call =
                tracing::info_span!("upstream", upstream = "fullstory", request_id = "req-42");
            let _call = call.enter();
            tracing::info!(status = 200, "upstream call for jane@acme.com");
            tracing::debug!("second line");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert!(line["timestamp"].is_string(), "{line}");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
        assert_eq!(line["status"], 200);
        let message = line["message"].as_str().unwrap();
        assert!(message.starts_with("upstream call for j"), "{message}");
        assert!(!message.contains("jane@"), "redacted: {message}");
        assert_eq!(line["span"]["name"], "upstream");
        assert_eq!(line["span"]["request_id"], "req-42");
        assert_eq!(line["spans"][0]["name"], "request");
        assert_eq!(line["spans"][0]["request_id"], "req-42");
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["level"], "DEBUG");
    }

    #[test]
    fn a_panic_is_logged_through_the_redacting_writer() {
        let buffer = Buffer::default();
        let subscriber = subscriber(LogFormat::Json, EnvFilter::new("info"), buffer.clone());
        install_panic_hook();
        tracing::subscriber::with_default(subscriber, || {
            let caught = std::panic::catch_unwind(|| {
                panic!("bad ticket from jane.doe@acme.com");
            });
            assert!(caught.is_err());
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["message"], "panic");
        let panic = line["panic"].as_str().unwrap();
        assert!(panic.starts_with("bad ticket from j"), "{panic}");
        assert!(panic.ends_with("@acme.com"), "{panic}");
        assert!(!text.contains("jane.doe@"), "redacted: {text}");
        assert!(line["location"].as_str().unwrap().contains("telemetry.rs"));
    }

    #[test]
    fn only_plain_short_request_ids_are_carried() {
        assert_eq!(usable_request_id("abc-123"), Some("abc-123"));
        assert_eq!(
            usable_request_id("4f0c2a4e-8d1b-4c57-9a0e-0f1e2d3c4b5a"),
            Some("4f0c2a4e-8d1b-4c57-9a0e-0f1e2d3c4b5a")
        );
        assert_eq!(usable_request_id(""), None);
        assert_eq!(usable_request_id("jane@acme.com"), None);
        assert_eq!(usable_request_id("a b"), None);
        assert_eq!(usable_request_id(&"x".repeat(129)), None);
    }

    #[tokio::test]
    async fn the_request_id_is_in_scope_only_inside_its_scope() {
        assert_eq!(request_id(), None);
        let inside = scope_request_id(Some("r1".into()), async { request_id() }).await;
        assert_eq!(inside.as_deref(), Some("r1"));
        assert_eq!(request_id(), None);
    }
}
