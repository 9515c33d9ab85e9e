//! Progress of long work on standard error: on a terminal, a live block of
//! status rows (one per running phase, server or service) redrawn in place
//! under the lines already printed; otherwise (a pipe, a log file, CI) every
//! status change is one plain line.
//!
//! Rows are keyed (`"phase:setup-hosts"`, `"host:hive0"`); [`status`] sets a
//! row, [`done`] removes it and prints its final line once; [`line()`]
//! prints a permanent line above the live rows.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The live display's state.
struct Display {
    /// Whether rows are drawn in place (stderr is a terminal).
    live: bool,
    /// The rows, in the order they appeared: key, text, since when.
    rows: Vec<(String, String, Instant)>,
    /// How many lines of rows are on the screen now.
    drawn: usize,
}

static DISPLAY: Mutex<Display> = Mutex::new(Display {
    live: false,
    rows: Vec::new(),
    drawn: 0,
});

/// Turns the live display on when standard error is a terminal (and
/// `TERM` is not `dumb`), and starts the thread that refreshes the
/// elapsed times. Safe to call more than once.
pub fn start() {
    let live = std::io::stderr().is_terminal()
        && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(false);
    let mut d = lock();
    if d.live || !live {
        return;
    }
    d.live = true;
    drop(d);
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let mut d = lock();
            if !d.live {
                break;
            }
            if !d.rows.is_empty() {
                redraw(&mut d, None);
            }
        }
    });
}

/// Clears the live rows and stops refreshing.
pub fn finish() {
    let mut d = lock();
    if d.live {
        clear(&mut d);
        d.rows.clear();
        d.live = false;
    }
}

fn lock() -> std::sync::MutexGuard<'static, Display> {
    DISPLAY.lock().unwrap_or_else(|e| e.into_inner())
}

fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

fn clear(d: &mut Display) {
    if d.drawn > 0 {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\x1b[{}A\r\x1b[J", d.drawn);
        let _ = err.flush();
        d.drawn = 0;
    }
}

/// Erases the rows, prints `above` (if any) as permanent text, draws the
/// rows again.
fn redraw(d: &mut Display, above: Option<&str>) {
    clear(d);
    let mut err = std::io::stderr().lock();
    if let Some(text) = above {
        let _ = writeln!(err, "{text}");
    }
    let w = width().saturating_sub(1).max(20);
    for (_, text, since) in &d.rows {
        let row = format!("{text} ({}s)", since.elapsed().as_secs());
        let row: String = row.chars().take(w).collect();
        let _ = writeln!(err, "\x1b[2m{row}\x1b[0m");
    }
    let _ = err.flush();
    d.drawn = d.rows.len();
}

/// A permanent line on standard error, above the live rows.
pub fn line(text: &str) {
    let mut d = lock();
    if d.live {
        redraw(&mut d, Some(text));
    } else {
        eprintln!("{text}");
    }
}

/// Runs `print` (which writes to standard output) with the live rows
/// erased, so that a terminal shows both streams cleanly.
pub fn around_stdout<T>(print: impl FnOnce() -> T) -> T {
    let mut d = lock();
    if !d.live {
        drop(d);
        return print();
    }
    clear(&mut d);
    let out = print();
    redraw(&mut d, None);
    out
}

/// Sets the row `key` to `text`; without a terminal, prints `text` as a
/// line when it differs from the row's last text.
pub fn status(key: &str, text: impl Into<String>) {
    let text = text.into();
    let mut d = lock();
    let live = d.live;
    match d.rows.iter_mut().find(|(k, _, _)| k == key) {
        Some(row) if row.1 == text => return,
        Some(row) => row.1.clone_from(&text),
        None => d.rows.push((key.to_string(), text.clone(), Instant::now())),
    }
    if live {
        redraw(&mut d, None);
    } else {
        eprintln!("{text}");
    }
}

/// Removes the row `key` and prints `last` once, permanently.
pub fn done(key: &str, last: &str) {
    let mut d = lock();
    d.rows.retain(|(k, _, _)| k != key);
    if d.live {
        redraw(&mut d, Some(last));
    } else {
        eprintln!("{last}");
    }
}

/// Removes every row whose key starts with `prefix`, printing nothing.
pub fn forget(prefix: &str) {
    let mut d = lock();
    let before = d.rows.len();
    d.rows.retain(|(k, _, _)| !k.starts_with(prefix));
    if d.live && d.rows.len() != before {
        redraw(&mut d, None);
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
