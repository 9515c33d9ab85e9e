//! What every phase command shares: the stage lock, the journal and the
//! persisted start_phase; and `hive history`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use hive_inventory::Project;
use hive_phases::plan::{Change, PhasePlan};
use hive_phases::{Journal, JournalEntry, Phase, PhaseResult, StageLock, state};
use serde::Serialize;

use super::{Globals, Output};

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

/// Append one entry to the stage's journal: the phase's number of changes,
/// or its error.
pub fn record(
    project: &Project,
    phase: Phase,
    start: String,
    check: bool,
    outcome: Result<usize, &anyhow::Error>,
) -> Result<()> {
    let (changes, error) = match outcome {
        Ok(n) => (n as u64, None),
        Err(e) => (0, Some(format!("{e:#}"))),
    };
    let mut entry = JournalEntry::finished(phase, start, changes, error);
    entry.command = command_line();
    entry.check_mode = check;
    Journal::in_dir(project.context_dir()).append(&entry)?;
    Ok(())
}

/// What a run of phases did or, in check mode, would do: the document
/// `--output json` prints on standard output.
#[derive(Debug, Serialize)]
pub struct RunDocument {
    /// The project's name.
    pub project: String,
    /// The stage.
    pub stage: String,
    /// Whether nothing was changed (`-C`).
    pub check_mode: bool,
    /// `ok`, `failed` or `interrupted`.
    pub result: &'static str,
    /// Why the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The number of changes over every phase.
    pub changes: usize,
    /// Every phase that ran, in the order of the phase graph.
    pub phases: Vec<PhasePlan>,
}

impl RunDocument {
    /// A document for a run of `project`.
    pub fn new(project: &Project, check_mode: bool, phases: Vec<PhasePlan>) -> RunDocument {
        RunDocument {
            project: project.name().to_string(),
            stage: project.stage().as_str().to_string(),
            check_mode,
            result: "ok",
            error: None,
            changes: phases.iter().map(|p| p.changes.len()).sum(),
            phases,
        }
    }

    /// The same document for a run that ended with `error`.
    pub fn failed(mut self, result: &'static str, error: String) -> RunDocument {
        self.result = result;
        self.error = Some(error);
        self
    }

    /// Prints the document on standard output when `--output json` was
    /// given.
    pub fn print_if_json(&self, globals: &Globals) -> Result<()> {
        if globals.output == Output::Json {
            super::out_stdout(&serde_json::to_string_pretty(self)?)?;
        }
        Ok(())
    }
}

/// Run one phase as a command: under the stage lock, journaled, and on
/// success (not in check mode, not destroying) advance the stage's
/// start_phase as the original does. With `--output json`, the progress
/// lines go to standard error and the changes are printed as a
/// [`RunDocument`] on standard output.
pub fn phase_command(
    globals: &Globals,
    project: &Project,
    phase: Phase,
    check: bool,
    destroy: bool,
    f: impl FnOnce() -> Result<Vec<Change>>,
) -> Result<ExitCode> {
    let _lock = lock(globals, project)?;
    if globals.output == Output::Json {
        super::text_to_stderr();
    }
    let _progress = super::progress::guard();
    let start = JournalEntry::now();
    let result = f();
    record(project, phase, start, check, result.as_ref().map(Vec::len))?;
    let (changes, error) = match result {
        Ok(c) => (c, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let changes_count = changes.len();
    let plan = PhasePlan {
        phase,
        check_mode: check,
        changes,
        note: None,
    };
    let doc = RunDocument::new(project, check, vec![plan]);
    match error {
        None => doc.print_if_json(globals)?,
        Some(e) => {
            doc.failed("failed", format!("{e:#}"))
                .print_if_json(globals)?;
            return Err(e);
        }
    }
    if check {
        return Ok(plan_exit_code(globals, changes_count));
    }
    if !destroy {
        state::save_start_phase(
            project.root_dir(),
            project.stage().as_str(),
            state::after_single_phase(phase),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit status of a plan (`-C`) that succeeded: 0, or with
/// `--detailed-exitcode` 2 when `changes` are pending (0 when none), as
/// `terraform plan -detailed-exitcode` does.
pub fn plan_exit_code(globals: &Globals, changes: usize) -> ExitCode {
    if globals.detailed_exitcode && changes > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Options of `hive history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Show only the last N entries.
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
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
    if globals.output == Output::Json {
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
