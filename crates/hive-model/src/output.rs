//! What a command run on a host produced: one type for every way hive runs
//! one (SSH sessions, the Docker API's exec, local processes, the DRBD
//! executor's runners).

/// A finished command: its exit status and everything it wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status (negative when it was killed by a signal or the status
    /// is unknown).
    pub status: i32,
    /// Everything it wrote to standard output.
    pub stdout: Vec<u8>,
    /// Everything it wrote to standard error.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// An output with `status` and `stdout`, nothing on standard error.
    ///
    /// ```
    /// let out = hive_model::ExecOutput::new(0, "Connected");
    /// assert!(out.success());
    /// assert_eq!(out.stdout_text(), "Connected");
    /// ```
    pub fn new(status: i32, stdout: impl Into<Vec<u8>>) -> Self {
        ExecOutput {
            status,
            stdout: stdout.into(),
            stderr: Vec::new(),
        }
    }
    /// Whether it exited with 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
    /// Standard output as text, lossily.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Standard error as text, lossily.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// The last `max` bytes of standard error, trimmed ([`tail`]).
    pub fn stderr_tail(&self, max: usize) -> String {
        tail(&self.stderr_text(), max)
    }
}

/// The last `max` bytes of `s`, trimmed, after `...` when something was cut
/// (on a character boundary), for error messages.
///
/// ```
/// assert_eq!(hive_model::output::tail("  short\n", 10), "short");
/// assert_eq!(hive_model::output::tail("a long message", 7), "...message");
/// ```
pub fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}
