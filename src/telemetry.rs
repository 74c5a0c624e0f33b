//! Logging: `tracing` with a pretty or JSON format (`log.format`), a filter from `log.level` (or
//! `RUST_LOG`), and email redaction done by the log writer itself.
//!
//! Redacting in the writer rather than at each call site means a customer email cannot reach the logs by
//! accident: whatever a span field, an error chain or a debug dump holds, every formatted line passes
//! through [`crate::identity::redact_emails`] before it is written (`jane@acme.com` → `j•••@acme.com`).
//! Secrets are [`crate::config::Secret`]s, whose `Debug` prints `[REDACTED]`, and are never logged.

use std::io::{self, Write};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting(io::stderr));
    let result = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.with_ansi(false).compact().try_init(),
    };
    // Already installed (tests, or a second call): keep the first.
    let _ = result;
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
}
