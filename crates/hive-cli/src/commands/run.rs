//! What every phase command shares: the stage lock, the journal and the
//! persisted start_phase; and `hive history`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use std::sync::Arc;

use hive_inventory::Project;
use hive_phases::orchestrate::{Orchestrator, PhaseOptions, Progress, ProgressSink, RunDocument};
use hive_phases::site::StageSite;
use hive_phases::{Journal, Phase, PhaseResult, StageLock};

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

/// The front-end of [`Progress`] events: report lines on standard output
/// (standard error with `-o json`), live rows through [`super::progress`].
pub fn progress_sink() -> ProgressSink {
    Arc::new(|p: Progress| match p {
        Progress::Line(line) => {
            if !super::progress::is_quiet() {
                let _ = super::out(&line);
            }
        }
        Progress::Status { key, text } => super::progress::status(&key, text),
        Progress::Done { key, text } => super::progress::done(&key, &text),
        Progress::Forget { prefix } => super::progress::forget(&prefix),
        Progress::Warning(w) => super::progress::line(&format!("warning: {w}")),
    })
}

/// The phase options every command starts from.
pub fn phase_options(globals: &Globals, check: bool) -> PhaseOptions {
    PhaseOptions {
        check,
        verbose: globals.verbose,
        temp_dir: globals.temp_dir.clone(),
        ..PhaseOptions::default()
    }
}

/// Prints `document` on standard output when `--output json` was given.
pub fn print_if_json(globals: &Globals, document: &RunDocument) -> Result<()> {
    if globals.output == Output::Json {
        super::out_stdout(&serde_json::to_string_pretty(document)?)?;
    }
    Ok(())
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
    options: PhaseOptions,
) -> Result<ExitCode> {
    let site = StageSite::new(project)?;
    let _lock = lock(globals, project)?;
    if globals.output == Output::Json {
        super::text_to_stderr();
    }
    let _progress = super::progress::guard();
    let check = options.check;
    let orchestrator = Orchestrator::new(&site, options, progress_sink())?;
    let run = super::runtime()?.block_on(orchestrator.run_phase(phase, &command_line()));
    print_if_json(globals, &run.document)?;
    if let Some(e) = run.error {
        return Err(e.into());
    }
    if check {
        return Ok(plan_exit_code(globals, run.document.changes));
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
