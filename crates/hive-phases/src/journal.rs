use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Phase};

/// The current time as RFC 3339 in UTC, e.g. `2026-11-27T21:04:05Z`.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// How a phase run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseResult {
    /// The phase completed.
    Ok,
    /// The phase failed; the entry's `error` says why.
    Failed,
    /// The run was stopped (Ctrl-C) before the phase completed.
    Interrupted,
}

/// One line of a stage's journal: one phase of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The phase.
    pub phase: Phase,
    /// When the phase started (RFC 3339).
    pub start: String,
    /// When the phase ended (RFC 3339).
    pub end: String,
    /// How many resources the phase changed (0: nothing changed).
    pub changes: u64,
    /// How the phase ended.
    pub result: PhaseResult,
    /// The error, when the phase failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The command line of the run.
    #[serde(default)]
    pub command: String,
    /// Whether the run was a check (`-C`) that changed nothing.
    #[serde(default)]
    pub check_mode: bool,
}

impl JournalEntry {
    /// An entry for `phase` that started at `start` and ends now.
    pub fn finished(phase: Phase, start: String, changes: u64, error: Option<String>) -> Self {
        JournalEntry {
            phase,
            start,
            end: now_rfc3339(),
            changes,
            result: if error.is_some() {
                PhaseResult::Failed
            } else {
                PhaseResult::Ok
            },
            error,
            command: String::new(),
            check_mode: false,
        }
    }

    /// The time now, in the format of [`JournalEntry::start`].
    pub fn now() -> String {
        now_rfc3339()
    }
}

/// The journal of a stage: `.hive/<stage>/journal.jsonl`, one JSON object
/// per line, appended to by every run and never rewritten.
///
/// ```
/// use hive_phases::{Journal, JournalEntry, Phase};
///
/// let dir = tempfile::tempdir()?;
/// let journal = Journal::in_dir(dir.path());
/// journal.append(&JournalEntry::finished(Phase::SetupHosts, JournalEntry::now(), 3, None))?;
/// let entries = journal.read()?;
/// assert_eq!(entries[0].phase, Phase::SetupHosts);
/// assert_eq!(entries[0].changes, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal of the stage state directory `dir` (`.hive/<stage>`).
    pub fn in_dir(dir: &Path) -> Self {
        Journal {
            path: dir.join("journal.jsonl"),
        }
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one entry as one line, flushed to disk.
    pub fn append(&self, entry: &JournalEntry) -> Result<(), Error> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        }
        let mut line = serde_json::to_vec(entry).map_err(|e| Error::BadJournal {
            path: self.path.clone(),
            line: 0,
            source: e,
        })?;
        line.push(b'\n');
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io("open", &self.path, e))?;
        f.write_all(&line)
            .and_then(|()| f.sync_data())
            .map_err(|e| Error::io("append to", &self.path, e))
    }

    /// Every entry, oldest first; an empty list when there is no journal.
    pub fn read(&self) -> Result<Vec<JournalEntry>, Error> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", &self.path, e)),
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| Error::BadJournal {
                    path: self.path.clone(),
                    line: i + 1,
                    source: e,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::in_dir(&dir.path().join("private"));
        assert!(j.read().unwrap().is_empty());
        j.append(&JournalEntry::finished(
            Phase::BuildInfra,
            JournalEntry::now(),
            4,
            None,
        ))
        .unwrap();
        j.append(&JournalEntry::finished(
            Phase::SetupHosts,
            JournalEntry::now(),
            0,
            Some("host p-hive1 unreachable".into()),
        ))
        .unwrap();
        let e = j.read().unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].result, PhaseResult::Ok);
        assert_eq!(e[1].result, PhaseResult::Failed);
        assert_eq!(e[1].error.as_deref(), Some("host p-hive1 unreachable"));
        let raw = fs::read_to_string(j.path()).unwrap();
        assert_eq!(raw.lines().count(), 2);
        assert!(
            raw.lines()
                .nth(1)
                .unwrap()
                .contains("\"phase\":\"setup-hosts\"")
        );
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::in_dir(dir.path());
        j.append(&JournalEntry::finished(
            Phase::BuildInfra,
            JournalEntry::now(),
            0,
            None,
        ))
        .unwrap();
        let mut text = fs::read_to_string(j.path()).unwrap();
        text.push_str("{\"phase\": \"nope\"}\n");
        fs::write(j.path(), text).unwrap();
        let err = j.read().unwrap_err().to_string();
        assert!(
            err.ends_with("journal.jsonl:2: not a journal entry"),
            "{err}"
        );
    }
}
