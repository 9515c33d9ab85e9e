//! Progress of long work on standard error: on a terminal, a live block of
//! status rows (one per running phase, server or service) redrawn in place
//! under the lines already printed, by `indicatif` (which follows the
//! terminal's real width and its resizes); otherwise (a pipe, a log file,
//! CI) every status change is one plain line with the time.
//!
//! Rows are keyed (`"phase:setup-hosts"`, `"setup:hive0"`); [`status`] sets
//! a row, [`done`] removes it and prints its final line once; [`line()`]
//! prints a permanent line above the live rows. The `tracing` events of
//! the libraries come out through [`line()`] too (see `main.rs`).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The live display's state.
struct Display {
    /// The bars, when stderr is a terminal and the display was started.
    multi: Option<MultiProgress>,
    /// The rows, in the order they appeared.
    rows: Vec<(String, ProgressBar)>,
    /// Plain lines carry the time.
    stamp: bool,
    /// `-q`: no progress lines or rows (errors and results only).
    quiet: bool,
}

static DISPLAY: Mutex<Display> = Mutex::new(Display {
    multi: None,
    rows: Vec::new(),
    stamp: true,
    quiet: false,
});

fn lock() -> std::sync::MutexGuard<'static, Display> {
    DISPLAY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether standard error is a terminal that can redraw rows.
fn live_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(false)
}

/// Turns the live display on when standard error is a terminal (and
/// `TERM` is not `dumb`). Safe to call more than once.
pub fn start() {
    let mut d = lock();
    if d.multi.is_none() && !d.quiet && live_terminal() {
        d.multi = Some(MultiProgress::with_draw_target(
            ProgressDrawTarget::stderr_with_hz(4),
        ));
    }
}

/// Clears the live rows and stops the display.
pub fn finish() {
    let mut d = lock();
    for (_, bar) in d.rows.drain(..) {
        bar.finish_and_clear();
    }
    if let Some(m) = d.multi.take() {
        let _ = m.clear();
    }
}

/// The time prefix of a plain line.
fn stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!("[hour]:[minute]:[second]");
    now.format(&format)
        .map(|t| format!("{t} "))
        .unwrap_or_default()
}

fn plain(d: &Display, text: &str) {
    if d.stamp {
        let t = stamp();
        for l in text.lines() {
            eprintln!("{t}{l}");
        }
    } else {
        eprintln!("{text}");
    }
}

/// A permanent line on standard error, above the live rows.
pub fn line(text: &str) {
    let d = lock();
    if d.quiet {
        return;
    }
    match &d.multi {
        Some(m) => {
            if m.println(text).is_err() {
                eprintln!("{text}");
            }
        }
        None => plain(&d, text),
    }
}

/// Runs `print` (which writes to standard output) with the live rows
/// erased, so that a terminal shows both streams cleanly.
pub fn around_stdout<T>(print: impl FnOnce() -> T) -> T {
    let d = lock();
    match d.multi.clone() {
        Some(m) => {
            drop(d);
            m.suspend(print)
        }
        None => {
            drop(d);
            print()
        }
    }
}

fn row_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.dim} {wide_msg:.dim} {elapsed:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// Sets the row `key` to `text`; without a terminal, prints `text` as a
/// line when it differs from the row's last text.
pub fn status(key: &str, text: impl Into<String>) {
    let text = text.into();
    let mut d = lock();
    if d.quiet {
        return;
    }
    if let Some((_, bar)) = d.rows.iter().find(|(k, _)| k == key) {
        if bar.message() == text {
            return;
        }
        bar.set_message(text.clone());
        if d.multi.is_none() {
            plain(&d, &text);
        }
        return;
    }
    let bar = match &d.multi {
        Some(m) => {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(row_style());
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        }
        None => ProgressBar::hidden(),
    };
    bar.set_message(text.clone());
    if d.multi.is_none() {
        plain(&d, &text);
    }
    d.rows.push((key.to_string(), bar));
}

/// Removes the row `key` and prints `last` once, permanently.
pub fn done(key: &str, last: &str) {
    let mut d = lock();
    if d.quiet {
        return;
    }
    if let Some(i) = d.rows.iter().position(|(k, _)| k == key) {
        let (_, bar) = d.rows.remove(i);
        bar.finish_and_clear();
    }
    match &d.multi {
        Some(m) => {
            if m.println(last).is_err() {
                eprintln!("{last}");
            }
        }
        None => plain(&d, last),
    }
}

/// Removes every row whose key starts with `prefix`, printing nothing.
pub fn forget(prefix: &str) {
    let mut d = lock();
    d.rows.retain(|(k, bar)| {
        let keep = !k.starts_with(prefix);
        if !keep {
            bar.finish_and_clear();
        }
        keep
    });
}

/// `-q`: from now on [`line()`], [`status`] and [`done`] print nothing.
pub fn set_quiet(quiet: bool) {
    lock().quiet = quiet;
}

/// Whether `-q` was given.
pub fn is_quiet() -> bool {
    lock().quiet
}

/// A line of the `tracing` subscriber (already stamped): above the live
/// rows on a terminal, else as it is. Printed even with `-q` (the
/// subscriber's own level decides).
pub fn event(text: &str) {
    let d = lock();
    match &d.multi {
        Some(m) if m.println(text).is_ok() => {}
        _ => eprintln!("{text}"),
    }
}

/// Turns the live display off for the rest of the process when dropped.
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        finish();
    }
}

/// [`start`], with a guard that calls [`finish`].
pub fn guard() -> Guard {
    start();
    Guard
}
