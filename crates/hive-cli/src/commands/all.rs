//! `hive all`: every phase from the stage's start_phase, as a graph.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use hive_phases::check::{ModuleSources, check_loaded};
use hive_phases::plan::PhasePlan;
use hive_phases::site::StageSite;
use hive_phases::{JournalEntry, Phase, PhaseGraph, PhaseOutcome, run_graph, state};

use super::run::RunDocument;
use super::{Globals, Output, progress};

/// Options of `hive all`.
#[derive(Args, Debug)]
pub struct AllArgs {
    /// Start at this phase instead of the stage's saved start_phase.
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
    let _lock = super::run::lock(globals, &project)?;
    if globals.output == Output::Json {
        super::text_to_stderr();
    }
    let _progress = progress::guard();
    let root = project.root_dir();
    let stage = project.stage();
    let start = match args.start {
        Some(p) => p,
        None => state::saved_start_phase(root, stage.as_str())?.unwrap_or(Phase::BuildInfra),
    };
    let graph = PhaseGraph::standard();
    let plan = graph.plan_from(start);
    // What `hive check` finds fails the run (and the plan) before any
    // phase starts: a plan never hides an error a run would meet.
    let found = check_loaded(&project, &ModuleSources::installed());
    if !found.problems.is_empty() {
        let message = format!(
            "{} problem(s) found before any phase ran (see `hive check`):\n{}",
            found.problems.len(),
            found
                .problems
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        RunDocument::new(&project, args.check, Vec::new())
            .failed("failed", message.clone())
            .print_if_json(globals)?;
        bail!(message);
    }
    outln!(
        "=== all: stage {stage} of {}, phases {}{}",
        project.name(),
        plan.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
        if args.check { " (check mode)" } else { "" }
    );
    let runner = super::phases::PhaseRunner::new(globals, &site, args.check, args.timeout)?;
    let rt = super::runtime()?;
    let began = std::time::Instant::now();
    let plans = std::sync::Mutex::new(Vec::<PhasePlan>::new());
    let report = rt.block_on(run_graph(
        &graph,
        &plan,
        |phase| {
            let runner = &runner;
            let project = &project;
            let plans = &plans;
            async move {
                let start = JournalEntry::now();
                let key = format!("phase:{phase}");
                let started = std::time::Instant::now();
                progress::status(&key, format!("{phase}: running"));
                let result = runner.run(phase).await.map(|p| {
                    let n = p.changes.len() as u64;
                    plans.lock().unwrap_or_else(|e| e.into_inner()).push(p);
                    n
                });
                let took = started.elapsed().as_secs_f64();
                progress::done(
                    &key,
                    &match &result {
                        Ok(0) => format!("{phase}: no change ({took:.1}s)"),
                        Ok(n) if args.check => {
                            format!("{phase}: {n} change(s) would be made ({took:.1}s)")
                        }
                        Ok(n) => format!("{phase}: {n} change(s) ({took:.1}s)"),
                        Err(_) => format!("{phase}: FAILED ({took:.1}s)"),
                    },
                );
                super::run::record(
                    project,
                    phase,
                    start,
                    args.check,
                    result.as_ref().map(|n| *n as usize),
                )?;
                result.map(|changes| PhaseOutcome { changes })
            }
        },
        async {
            let _ = tokio::signal::ctrl_c().await;
            progress::line(
                "interrupted: stopping; a re-run resumes from the first unfinished phase",
            );
        },
    ));
    let mut plans = plans.into_inner().unwrap_or_else(|e| e.into_inner());
    plans.sort_by_key(|p| plan.iter().position(|q| *q == p.phase));
    let doc = RunDocument::new(&project, args.check, plans);
    for phase in &report.interrupted {
        let entry = JournalEntry {
            phase: *phase,
            start: JournalEntry::now(),
            end: JournalEntry::now(),
            changes: 0,
            result: hive_phases::PhaseResult::Interrupted,
            error: None,
            command: super::run::command_line(),
            check_mode: args.check,
        };
        hive_phases::Journal::in_dir(project.context_dir()).append(&entry)?;
    }
    let changes: u64 = report
        .ran
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|o| o.changes)
        .sum();
    if !args.check {
        let next = graph
            .next_start(start, &report.succeeded())
            .unwrap_or(Phase::BuildInfra);
        state::save_start_phase(root, stage.as_str(), next)?;
    }
    let secs = began.elapsed().as_secs_f64();
    if let Some((phase, Err(e))) = report.ran.iter().find(|(_, r)| r.is_err()) {
        let message = format!("phase {phase} failed after {secs:.1}s: {e:#}");
        doc.failed("failed", message.clone())
            .print_if_json(globals)?;
        bail!(message);
    }
    if !report.interrupted.is_empty() {
        let message = format!(
            "interrupted during {}",
            report
                .interrupted
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        doc.failed("interrupted", message.clone())
            .print_if_json(globals)?;
        bail!(message);
    }
    doc.print_if_json(globals)?;
    if args.check {
        outln!("all: check mode, {changes} change(s) would be made, nothing changed ({secs:.1}s)");
        return Ok(super::run::plan_exit_code(globals, changes as usize));
    } else if changes == 0 {
        outln!("all: no change ({secs:.1}s)");
    } else {
        outln!("all: done, {changes} change(s) ({secs:.1}s)");
    }
    Ok(ExitCode::SUCCESS)
}
