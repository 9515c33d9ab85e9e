//! The runner shared by the fuzz tests of the crates (`tests/fuzz.rs` of
//! hive-inventory, hive-image and hive-drbd include it with `#[path]`).
//!
//! Each target is a proptest strategy and a check. Every input is checked in
//! a thread of its own, so that a panic is caught with its message and an
//! input that does not finish within the time bound fails the target instead
//! of hanging the run.
//!
//! - Under `cargo test`, a target tries `cases` inputs (`PROPTEST_CASES`
//!   overrides it) from a random seed (`HIVE_FUZZ_SEED` fixes it); a failing
//!   input is shrunk and reported with the seed that found it.
//! - With `HIVE_FUZZ_SECONDS=N` (what `scripts/fuzz.sh` sets), a target runs
//!   batches of inputs from fresh seeds until N seconds have passed and
//!   prints `fuzz: <target>: <inputs> inputs, <failures> failures, <secs> s`.

#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

/// How long one input may take before it counts as a hang.
pub const TIME_BOUND: Duration = Duration::from_secs(30);

/// The outcome of checking one input: `Err` says which property broke.
pub type Check = Result<(), String>;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn seed() -> u64 {
    env_u64("HIVE_FUZZ_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
    })
}

fn config(cases: u32, seed: u64) -> Config {
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        max_shrink_time: 60_000,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}

/// Leaves the report of a caught panic to [`fuzz`], which prints the
/// smallest input; panics of other threads are printed as usual.
fn quiet_input_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some("fuzz-input") {
                default(info);
            }
        }));
    });
}

/// Runs `check(input)` in its own thread: a panic or a run past
/// [`TIME_BOUND`] is a failure (the stuck thread is left behind).
pub fn bounded<V: Send + 'static>(input: V, check: fn(V) -> Check) -> Check {
    quiet_input_panics();
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("fuzz-input".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(input)));
            let _ = tx.send(r.map_err(|p| format!("panicked: {}", panic_text(p.as_ref()))));
        });
    if let Err(e) = spawned {
        return Err(format!("cannot start a thread: {e}"));
    }
    match rx.recv_timeout(TIME_BOUND) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(panic),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("did not finish within {} s", TIME_BOUND.as_secs()))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the check thread died".into()),
    }
}

/// An edit of a text, line by line; indexes wrap around the text's length.
#[derive(Clone, Debug)]
pub enum TextEdit {
    /// Removes a line.
    Delete(usize),
    /// Repeats a line.
    Duplicate(usize),
    /// Exchanges two lines.
    Swap(usize, usize),
    /// Cuts a line after some characters.
    Truncate(usize, usize),
    /// Indents a line by some spaces more (odd) or removes its indent (even).
    Indent(usize, usize),
    /// Puts a new line before a line.
    Insert(usize, String),
}

/// Edits of a text, new lines drawn from `line`.
pub fn text_edit(line: impl Strategy<Value = String>) -> impl Strategy<Value = TextEdit> {
    use proptest::prelude::*;
    prop_oneof![
        any::<usize>().prop_map(TextEdit::Delete),
        any::<usize>().prop_map(TextEdit::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| TextEdit::Swap(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| TextEdit::Truncate(a, b)),
        (any::<usize>(), 0..5usize).prop_map(|(a, b)| TextEdit::Indent(a, b)),
        (any::<usize>(), line).prop_map(|(a, l)| TextEdit::Insert(a, l)),
    ]
}

/// `text` with `edits` applied in order.
pub fn apply_text_edits(text: &str, edits: &[TextEdit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        let n = lines.len();
        match e {
            TextEdit::Insert(i, l) => lines.insert(i % (n + 1), l.clone()),
            _ if n == 0 => {}
            TextEdit::Delete(i) => {
                lines.remove(i % n);
            }
            TextEdit::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            TextEdit::Swap(a, b) => lines.swap(a % n, b % n),
            TextEdit::Truncate(i, at) => {
                let l = &mut lines[i % n];
                let cut = l
                    .char_indices()
                    .map(|(p, _)| p)
                    .nth(at % (l.chars().count() + 1))
                    .unwrap_or(l.len());
                l.truncate(cut);
            }
            TextEdit::Indent(i, by) => {
                let l = &mut lines[i % n];
                *l = if by % 2 == 1 {
                    format!("{}{l}", " ".repeat(*by))
                } else {
                    l.trim_start().to_string()
                };
            }
        }
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Checks `cases` inputs of `strategy` (see the module doc for the fuzz
/// mode) and panics with the smallest failing input found.
pub fn fuzz<S>(target: &str, cases: u32, strategy: S, check: fn(S::Value) -> Check)
where
    S: Strategy,
    S::Value: Clone + Send + Debug + 'static,
{
    let deadline = env_u64("HIVE_FUZZ_SECONDS").map(|s| Instant::now() + Duration::from_secs(s));
    let cases = match deadline {
        Some(_) => 64,
        None => env_u64("PROPTEST_CASES").map_or(cases, |c| c as u32),
    };
    let start = Instant::now();
    let tried = std::cell::Cell::new(0u64);
    let mut failures = Vec::new();
    loop {
        let seed = seed().wrapping_add(tried.get());
        let mut runner = TestRunner::new(config(cases, seed));
        let result = runner.run(&strategy, |input| {
            tried.set(tried.get() + 1);
            bounded(input, check).map_err(TestCaseError::fail)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => {
                failures.push(format!("seed {seed}: {why}\nminimal input: {input:#?}"))
            }
            Err(TestError::Abort(why)) => failures.push(format!("seed {seed}: aborted: {why}")),
        }
        match deadline {
            Some(d) if Instant::now() < d && failures.len() < 5 => continue,
            _ => break,
        }
    }
    if deadline.is_some() {
        println!(
            "fuzz: {target}: {} inputs, {} failures, {} s",
            tried.get(),
            failures.len(),
            start.elapsed().as_secs()
        );
    }
    assert!(
        failures.is_empty(),
        "{target}: {} failing inputs among {}:\n{}",
        failures.len(),
        tried.get(),
        failures.join("\n\n")
    );
}
