//! `hive all` and the phase commands as library calls: the static check
//! first, the phases (concurrently where the graph allows), the journal,
//! the stage's start_phase, and the run's document.

use std::time::{Duration, Instant};

use super::{Orchestrator, Progress, RunDocument};
use crate::check::{ModuleSources, check_loaded};
use crate::plan::PhasePlan;
use crate::{Error, Journal, JournalEntry, Phase, PhaseGraph, PhaseOutcome, PhaseResult};
use crate::{run_graph, state};

/// How a run of `hive all` ended.
#[derive(Debug)]
pub struct AllRun {
    /// The phases the run was to execute, in graph order.
    pub plan: Vec<Phase>,
    /// What each phase that ended did (or would do), its error included
    /// as the document's `error`.
    pub document: RunDocument,
    /// The number of changes over every phase.
    pub changes: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// How one phase command ended.
#[derive(Debug)]
pub struct PhaseRun {
    /// The document of the run (one phase).
    pub document: RunDocument,
    /// The phase's error, when it failed.
    pub error: Option<Error>,
}

/// An error with its causes, on one line.
pub(crate) fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

impl Orchestrator<'_> {
    fn record(
        &self,
        phase: Phase,
        start: String,
        command: &str,
        outcome: Result<usize, &Error>,
    ) -> Result<(), Error> {
        let (changes, error) = match outcome {
            Ok(n) => (n as u64, None),
            Err(e) => (0, Some(error_text(e))),
        };
        let mut entry = JournalEntry::finished(phase, start, changes, error);
        entry.command = command.to_string();
        entry.check_mode = self.options.check;
        Journal::in_dir(self.site.project().context_dir()).append(&entry)
    }

    /// Runs one phase as a phase command does: journaled under `command`,
    /// and on success (not in check mode, not destroying) the stage's
    /// start_phase advanced past it, unless an earlier phase is still to be
    /// done ([`state::start_after_run`]).
    pub async fn run_phase(&self, phase: Phase, command: &str) -> PhaseRun {
        let project = self.site.project();
        let start = JournalEntry::now();
        let result = self.run(phase).await;
        let recorded = self.record(
            phase,
            start,
            command,
            result.as_ref().map(|p| p.changes.len()),
        );
        let (plan, error) = match (result, recorded) {
            (Ok(p), Ok(())) => (p, None),
            (Ok(p), Err(e)) => (p, Some(e)),
            (Err(e), _) => (
                PhasePlan {
                    phase,
                    check_mode: self.options.check,
                    changes: Vec::new(),
                    note: None,
                },
                Some(e),
            ),
        };
        let mut error = error;
        if error.is_none() && !self.options.check && !self.options.destroy {
            if let Err(e) = state::advance_start_phase(
                project.root_dir(),
                project.stage().as_str(),
                phase,
                state::after_single_phase(phase),
            ) {
                error = Some(e);
            }
        }
        let document = RunDocument::new(project, self.options.check, vec![plan]);
        let document = match &error {
            Some(e) => document.failed("failed", error_text(e)),
            None => document,
        };
        PhaseRun { document, error }
    }

    /// Runs every phase from `start` (the stage's saved start_phase when
    /// `None`) as `hive all` does: first what `hive check` finds (a run
    /// with problems does not start), then the phases, concurrently where
    /// the graph allows, each journaled under `command`, until one fails
    /// or `interrupt` completes. Afterwards (not in check mode) the
    /// stage's start_phase is where a re-run should begin: the first phase
    /// that did not complete, or the saved one when it was earlier than
    /// `start` ([`state::start_after_run`]).
    pub async fn run_all(
        &self,
        start: Option<Phase>,
        command: &str,
        interrupt: impl std::future::Future<Output = ()>,
    ) -> Result<AllRun, Error> {
        let project = self.site.project();
        let check = self.options.check;
        let root = project.root_dir();
        let stage = project.stage();
        let began = Instant::now();
        let start = match start {
            Some(p) => p,
            None => state::saved_start_phase(root, stage.as_str())?.unwrap_or(Phase::BuildInfra),
        };
        let graph = PhaseGraph::standard();
        let plan = graph.plan_from(start);
        self.line(format!(
            "=== all: stage {stage} of {}, phases {}{}",
            project.name(),
            plan.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
            if check { " (check mode)" } else { "" }
        ));
        let found = check_loaded(project, &ModuleSources::installed());
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
            return Ok(AllRun {
                plan,
                document: RunDocument::new(project, check, Vec::new()).failed("failed", message),
                changes: 0,
                elapsed: began.elapsed(),
            });
        }
        let plans = std::sync::Mutex::new(Vec::<PhasePlan>::new());
        let report = run_graph(
            &graph,
            &plan,
            |phase| {
                let plans = &plans;
                async move {
                    let start = JournalEntry::now();
                    let key = format!("phase:{phase}");
                    let started = Instant::now();
                    self.status(
                        &key,
                        format!("{phase}: running on stage {stage} of {}", project.name()),
                    );
                    let result = self.run(phase).await.map(|p| {
                        let n = p.changes.len();
                        plans.lock().unwrap_or_else(|e| e.into_inner()).push(p);
                        n
                    });
                    let took = started.elapsed().as_secs_f64();
                    self.done(
                        &key,
                        match &result {
                            Ok(0) => format!("{phase}: no change ({took:.1}s)"),
                            Ok(n) if check => {
                                format!("{phase}: {n} change(s) would be made ({took:.1}s)")
                            }
                            Ok(n) => format!("{phase}: {n} change(s) ({took:.1}s)"),
                            Err(_) => format!("{phase}: FAILED ({took:.1}s)"),
                        },
                    );
                    self.record(phase, start, command, result.as_ref().map(|n| *n))?;
                    result.map(|changes| PhaseOutcome {
                        changes: changes as u64,
                    })
                }
            },
            async {
                interrupt.await;
                (self.progress)(Progress::Warning(
                    "interrupted: stopping; a re-run resumes from the first unfinished phase"
                        .into(),
                ));
            },
        )
        .await;
        let mut plans = plans.into_inner().unwrap_or_else(|e| e.into_inner());
        plans.sort_by_key(|p| plan.iter().position(|q| *q == p.phase));
        let changes: usize = plans.iter().map(|p| p.changes.len()).sum();
        let document = RunDocument::new(project, check, plans);
        for phase in &report.interrupted {
            let entry = JournalEntry {
                phase: *phase,
                start: JournalEntry::now(),
                end: JournalEntry::now(),
                changes: 0,
                result: PhaseResult::Interrupted,
                error: None,
                command: command.to_string(),
                check_mode: check,
            };
            Journal::in_dir(project.context_dir()).append(&entry)?;
        }
        if !check {
            let next = graph
                .next_start(start, &report.succeeded())
                .unwrap_or(Phase::BuildInfra);
            state::advance_start_phase(root, stage.as_str(), start, next)?;
        }
        let elapsed = began.elapsed();
        let secs = elapsed.as_secs_f64();
        let document = if let Some((phase, Err(e))) = report.ran.iter().find(|(_, r)| r.is_err()) {
            document.failed(
                "failed",
                format!("phase {phase} failed after {secs:.1}s: {}", error_text(e)),
            )
        } else if !report.interrupted.is_empty() {
            document.failed(
                "interrupted",
                format!(
                    "interrupted during {}",
                    report
                        .interrupted
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        } else {
            document
        };
        Ok(AllRun {
            plan,
            document,
            changes,
            elapsed,
        })
    }
}
