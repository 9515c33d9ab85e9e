use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::{Phase, PhaseGraph, PhaseResult};

/// What a completed phase reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhaseOutcome {
    /// How many resources the phase changed (0: nothing changed).
    pub changes: u64,
}

/// What a run of phases did.
#[derive(Debug)]
pub struct RunReport<E> {
    /// Each phase that ran, in the order it ended, with how it ended.
    pub ran: Vec<(Phase, Result<PhaseOutcome, E>)>,
    /// Phases that were interrupted while running.
    pub interrupted: Vec<Phase>,
    /// Phases of the plan that never started (after a failure or an
    /// interruption).
    pub not_started: Vec<Phase>,
}

impl<E> RunReport<E> {
    /// The phases that completed.
    pub fn succeeded(&self) -> Vec<Phase> {
        self.ran
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(p, _)| *p)
            .collect()
    }

    /// Whether every phase of the plan completed.
    pub fn is_success(&self) -> bool {
        self.interrupted.is_empty()
            && self.not_started.is_empty()
            && self.ran.iter().all(|(_, r)| r.is_ok())
    }

    /// How a phase ended, if it ran or was interrupted.
    pub fn result_of(&self, phase: Phase) -> Option<PhaseResult> {
        if self.interrupted.contains(&phase) {
            return Some(PhaseResult::Interrupted);
        }
        self.ran.iter().find(|(p, _)| *p == phase).map(|(_, r)| {
            if r.is_ok() {
                PhaseResult::Ok
            } else {
                PhaseResult::Failed
            }
        })
    }
}

type PhaseFuture<'a, E> = Pin<Box<dyn Future<Output = (Phase, Result<PhaseOutcome, E>)> + 'a>>;

/// Run the phases of `plan`, each as soon as the phases it depends on (those
/// in `plan`) completed, concurrently where the graph allows.
///
/// After a failure no new phase starts; phases already running finish. When
/// `interrupt` completes (e.g. on Ctrl-C), running phases are dropped and
/// reported as interrupted; since every phase is idempotent, a later run
/// resumes the work.
///
/// ```
/// use hive_phases::{Phase, PhaseGraph, PhaseOutcome, run_graph};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let graph = PhaseGraph::standard();
/// let plan = graph.plan_from(Phase::BuildImages);
/// let report = run_graph(&graph, &plan, |phase| async move {
///     Ok::<_, String>(PhaseOutcome { changes: 0 })
/// }, std::future::pending()).await;
/// assert!(report.is_success());
/// assert_eq!(report.ran.last().unwrap().0, Phase::InitializeServices);
/// # });
/// ```
pub async fn run_graph<'a, E, F, Fut>(
    graph: &PhaseGraph,
    plan: &[Phase],
    run_phase: F,
    interrupt: impl Future<Output = ()>,
) -> RunReport<E>
where
    F: Fn(Phase) -> Fut,
    Fut: Future<Output = Result<PhaseOutcome, E>> + 'a,
    E: 'a,
{
    let planned: BTreeSet<Phase> = plan.iter().copied().collect();
    let mut pending: Vec<Phase> = Phase::ALL
        .iter()
        .copied()
        .filter(|p| planned.contains(p))
        .collect();
    let mut done: BTreeSet<Phase> = BTreeSet::new();
    let mut running: BTreeSet<Phase> = BTreeSet::new();
    let mut failed = false;
    let mut report = RunReport {
        ran: Vec::new(),
        interrupted: Vec::new(),
        not_started: Vec::new(),
    };
    let mut in_flight: FuturesUnordered<PhaseFuture<'a, E>> = FuturesUnordered::new();
    let mut interrupt = std::pin::pin!(interrupt);

    loop {
        if !failed {
            let ready: Vec<Phase> = pending
                .iter()
                .copied()
                .filter(|p| {
                    graph
                        .dependencies(*p)
                        .iter()
                        .all(|d| !planned.contains(d) || done.contains(d))
                })
                .collect();
            for phase in ready {
                pending.retain(|p| *p != phase);
                running.insert(phase);
                let fut = run_phase(phase);
                in_flight.push(Box::pin(async move { (phase, fut.await) }));
            }
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            Some((phase, result)) = in_flight.next() => {
                running.remove(&phase);
                if result.is_ok() {
                    done.insert(phase);
                } else {
                    failed = true;
                }
                report.ran.push((phase, result));
            }
            () = &mut interrupt => {
                report.interrupted = running.iter().copied().collect();
                break;
            }
        }
    }
    report.not_started = pending;
    report
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn middle_phases_run_concurrently_after_setup_hosts() {
        let graph = PhaseGraph::standard();
        let plan = graph.plan_from(Phase::BuildInfra);
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let report = run_graph(
            &graph,
            &plan,
            |phase| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(format!("start {phase}"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    log.lock().unwrap().push(format!("end {phase}"));
                    Ok::<_, String>(PhaseOutcome { changes: 1 })
                }
            },
            std::future::pending(),
        )
        .await;
        assert!(report.is_success());
        let log = log.lock().unwrap().clone();
        let pos = |s: &str| log.iter().position(|l| l == s).unwrap();
        // The three middle phases all start before any of them ends.
        let last_start = ["build-images", "build-volumes", "build-networks"]
            .iter()
            .map(|p| pos(&format!("start {p}")))
            .max()
            .unwrap();
        let first_end = ["build-images", "build-volumes", "build-networks"]
            .iter()
            .map(|p| pos(&format!("end {p}")))
            .min()
            .unwrap();
        assert!(last_start < first_end, "{log:?}");
        assert!(pos("end setup-hosts") < pos("start build-images"));
        assert!(pos("end build-networks") < pos("start deploy-services"));
        assert_eq!(report.ran.len(), 7);
    }

    #[tokio::test]
    async fn a_failure_stops_dependent_phases() {
        let graph = PhaseGraph::standard();
        let plan = graph.plan_from(Phase::SetupHosts);
        let report = run_graph(
            &graph,
            &plan,
            |phase| async move {
                if phase == Phase::BuildVolumes {
                    Err(format!("{phase} failed"))
                } else {
                    Ok(PhaseOutcome::default())
                }
            },
            std::future::pending(),
        )
        .await;
        assert!(!report.is_success());
        assert_eq!(
            report.result_of(Phase::BuildVolumes),
            Some(PhaseResult::Failed)
        );
        assert_eq!(
            report.not_started,
            vec![Phase::DeployServices, Phase::InitializeServices]
        );
        assert_eq!(
            graph.next_start(Phase::SetupHosts, &report.succeeded()),
            Some(Phase::BuildVolumes)
        );
    }

    #[tokio::test]
    async fn an_interrupt_drops_running_phases() {
        let graph = PhaseGraph::standard();
        let plan = graph.plan_from(Phase::BuildInfra);
        let report = run_graph(
            &graph,
            &plan,
            |phase| async move {
                if phase == Phase::SetupHosts {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                Ok::<_, String>(PhaseOutcome::default())
            },
            tokio::time::sleep(Duration::from_millis(50)),
        )
        .await;
        assert_eq!(report.succeeded(), vec![Phase::BuildInfra]);
        assert_eq!(report.interrupted, vec![Phase::SetupHosts]);
        assert_eq!(
            report.result_of(Phase::SetupHosts),
            Some(PhaseResult::Interrupted)
        );
        assert_eq!(report.not_started.len(), 5);
    }
}
