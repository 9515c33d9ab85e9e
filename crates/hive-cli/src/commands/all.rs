//! `hive all`: every phase from the stage's start_phase, as a graph.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use hive_phases::Phase;
use hive_phases::orchestrate::{Orchestrator, PhaseOptions};
use hive_phases::site::StageSite;

use super::{Globals, Output, progress, run};

/// Options of `hive all`.
#[derive(Args, Debug)]
pub struct AllArgs {
    /// Start at this phase instead of the stage's saved start_phase (when
    /// that one is earlier, it stays saved: the phases between are left to
    /// the next `hive all`).
    #[arg(short = 'S', long = "start-phase", value_name = "PHASE", value_parser = parse_phase)]
    pub start: Option<Phase>,
    /// Check mode: print what every phase would change, change nothing.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// Seconds to wait for every service to have its tasks running.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

fn parse_phase(s: &str) -> Result<Phase, String> {
    s.parse::<Phase>().map_err(|e| e.to_string())
}

/// `hive all`.
pub fn all(globals: &Globals, args: &AllArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    let _lock = run::lock(globals, &project)?;
    if globals.output == Output::Json {
        super::text_to_stderr();
    }
    let _progress = progress::guard();
    let options = PhaseOptions {
        timeout: Duration::from_secs(args.timeout),
        ..run::phase_options(globals, args.check)
    };
    let orchestrator = Orchestrator::new(&site, options, run::progress_sink())?;
    let rt = super::runtime()?;
    let done = rt.block_on(
        orchestrator.run_all(args.start, &run::command_line(), async {
            let _ = tokio::signal::ctrl_c().await;
        }),
    )?;
    run::print_if_json(globals, &done.document)?;
    if let Some(error) = &done.document.error {
        bail!("{error}");
    }
    let (changes, secs) = (done.changes, done.elapsed.as_secs_f64());
    if args.check {
        outln!("all: check mode, {changes} change(s) would be made, nothing changed ({secs:.1}s)");
        return Ok(run::plan_exit_code(globals, changes));
    } else if changes == 0 {
        outln!("all: no change ({secs:.1}s)");
    } else {
        outln!("all: done, {changes} change(s) ({secs:.1}s)");
    }
    Ok(ExitCode::SUCCESS)
}
