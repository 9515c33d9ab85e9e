//! What every phase command shares: the stage lock, the journal and the
//! persisted start_phase; and `hive history`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use hive_inventory::Project;
use hive_phases::{Journal, JournalEntry, Phase, PhaseResult, StageLock, state};

use super::Globals;

/// The command line of this run, for the lock and the journal.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut out = vec!["hive".to_string()];
    out.extend(args.into_iter().skip(1));
    out.join(" ")
}

/// Take the stage lock of `project`'s current stage.
pub fn lock(globals: &Globals, project: &Project) -> Result<StageLock> {
    Ok(StageLock::acquire(
        project.context_dir(),
        project.stage().as_str(),
        &command_line(),
        globals.force_unlock,
    )?)
}

/// Append one entry to the stage's journal.
pub fn record(
    project: &Project,
    phase: Phase,
    start: String,
    check: bool,
    result: &Result<u64>,
) -> Result<()> {
    let (changes, error) = match result {
        Ok(n) => (*n, None),
        Err(e) => (0, Some(format!("{e:#}"))),
    };
    let mut entry = JournalEntry::finished(phase, start, changes, error);
    entry.command = command_line();
    entry.check_mode = check;
    Journal::in_dir(project.context_dir()).append(&entry)?;
    Ok(())
}

/// Run one phase as a command: under the stage lock, journaled, and on
/// success (not in check mode, not destroying) advance the stage's
/// start_phase as the original does.
pub fn phase_command(
    globals: &Globals,
    project: &Project,
    phase: Phase,
    check: bool,
    destroy: bool,
    f: impl FnOnce() -> Result<u64>,
) -> Result<ExitCode> {
    let _lock = lock(globals, project)?;
    let start = JournalEntry::now();
    let result = f();
    record(project, phase, start, check, &result)?;
    result?;
    if !check && !destroy {
        state::save_start_phase(
            project.root_dir(),
            project.stage().as_str(),
            state::after_single_phase(phase),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Options of `hive history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Show only the last N entries.
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Output formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// A line per phase run.
    Text,
    /// The journal entries as a JSON array.
    Json,
}

/// `hive history`: the stage's journal.
pub fn history(globals: &Globals, args: &HistoryArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let journal = Journal::in_dir(project.context_dir());
    let mut entries = journal.read()?;
    if let Some(n) = args.last {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    if args.output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        outln!("no run recorded in {}", journal.path().display());
        return Ok(ExitCode::SUCCESS);
    }
    for e in &entries {
        let result = match e.result {
            PhaseResult::Ok if e.check_mode => "checked",
            PhaseResult::Ok => "ok",
            PhaseResult::Failed => "FAILED",
            PhaseResult::Interrupted => "interrupted",
        };
        let changes = if e.changes == 0 {
            "no change".to_string()
        } else {
            format!("{} change(s)", e.changes)
        };
        outln!(
            "{}  {:<20} {:<11} {:<14} {}",
            e.start,
            e.phase.name(),
            result,
            changes,
            e.command
        );
        if let Some(err) = &e.error {
            outln!("    error: {}", err.lines().next().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}
