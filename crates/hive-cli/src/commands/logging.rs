//! The one `tracing` subscriber of the binary: every library event (SSH
//! retries, pinned host keys, sshd moves, forwarded sockets) comes out on
//! standard error above the live rows, with the time, its level and its
//! fields (`host=...`). The level follows `-q`/`-v`/`-vv`; `RUST_LOG`
//! overrides it (and can show what `-vv` leaves out: `bollard=debug`
//! prints the Docker API's bodies, secrets included).

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the subscriber and the progress output's verbosity.
pub fn install(verbose: u8, quiet: bool) {
    super::progress::set_quiet(quiet);
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        // Not the Docker client's debug events: they carry the bodies of
        // the Engine API's requests and answers, services' environments
        // (passwords) among them.
        (false, _) => "debug,bollard=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(AboveRows)
        .with_ansi(false)
        .with_target(verbose > 1)
        .with_timer(tracing_subscriber::fmt::time::UtcTime::new(
            time::macros::format_description!("[hour]:[minute]:[second]"),
        ))
        .try_init();
}

/// Writes each event as a permanent line above the live rows.
#[derive(Clone, Copy)]
struct AboveRows;

/// One event's text, printed when the formatter is done with it.
struct EventLine(Vec<u8>);

impl Write for EventLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let text = text.trim_end();
        if !text.is_empty() {
            super::progress::event(text);
        }
    }
}

impl<'a> MakeWriter<'a> for AboveRows {
    type Writer = EventLine;
    fn make_writer(&'a self) -> Self::Writer {
        EventLine(Vec::new())
    }
}
