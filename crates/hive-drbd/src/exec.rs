//! Running plans on hosts through a small command-runner trait.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::host::assess_kernel_module;
use crate::plan::{Action, Plan, Step, missing_connections, missing_sync};
use crate::status::{VolumeHostStatus, parse_events2, status_command, volume_status};
use crate::{DrbdError, DrbdVolume, Stage};
use hive_model::ExecOutput;

/// A command for a host: a POSIX shell script run as root, with optional
/// standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCommand {
    /// Script for `sh -c`.
    pub script: String,
    /// Bytes written to the command's standard input.
    pub stdin: Option<Vec<u8>>,
}

impl HostCommand {
    /// A command without standard input.
    pub fn new(script: impl Into<String>) -> Self {
        HostCommand {
            script: script.into(),
            stdin: None,
        }
    }
}

/// Runs commands on hosts. The SSH transport adapts to this trait; a
/// non-zero exit status is a normal result, `Err` is for failing to run
/// the command at all.
pub trait HostRunner: Sync {
    /// Runs `command` on `host` and returns its exit status and output.
    fn run(&self, host: &str, command: &HostCommand) -> Result<ExecOutput, DrbdError>;
}

impl<T: HostRunner + ?Sized> HostRunner for &T {
    fn run(&self, host: &str, command: &HostCommand) -> Result<ExecOutput, DrbdError> {
        (**self).run(host, command)
    }
}

/// Runs commands as local processes (`sh -c`), with per-host environment
/// variables so one machine can stand in for several hosts in tests.
/// `HIVE_HOST` is set to the host name.
#[derive(Debug, Clone, Default)]
pub struct LocalRunner {
    env: BTreeMap<String, Vec<(String, String)>>,
}

impl LocalRunner {
    /// A runner with no extra environment.
    pub fn new() -> Self {
        LocalRunner::default()
    }

    /// Sets `key=value` for commands of `host` (e.g. a `PATH` with
    /// stand-in tools first).
    pub fn host_env(
        mut self,
        host: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.env
            .entry(host.into())
            .or_default()
            .push((key.into(), value.into()));
        self
    }
}

impl HostRunner for LocalRunner {
    fn run(&self, host: &str, command: &HostCommand) -> Result<ExecOutput, DrbdError> {
        let transport = |message: String, e: std::io::Error| DrbdError::Transport {
            host: host.into(),
            message,
            source: Some(Box::new(e)),
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&command.script).env("HIVE_HOST", host);
        for (k, v) in self.env.get(host).into_iter().flatten() {
            cmd.env(k, v);
        }
        cmd.stdin(if command.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| transport("cannot start sh".into(), e))?;
        if let (Some(data), Some(mut stdin)) = (&command.stdin, child.stdin.take()) {
            stdin
                .write_all(data)
                .map_err(|e| transport("cannot write standard input".into(), e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| transport("cannot read output".into(), e))?;
        Ok(ExecOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// Host.
    pub host: String,
    /// Round of the step.
    pub round: u32,
    /// Description of the step.
    pub step: String,
    /// `true` when the step ran, `false` when its check said it was done.
    pub changed: bool,
}

/// Result of executing a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionReport {
    /// Title of the plan.
    pub title: String,
    /// Outcome per step, in execution order.
    pub outcomes: Vec<StepOutcome>,
}

impl ExecutionReport {
    /// Number of steps that changed something.
    pub fn changed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.changed).count()
    }
}

impl fmt::Display for ExecutionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} of {} steps changed",
            self.title,
            self.changed(),
            self.outcomes.len()
        )?;
        if self.changed() == 0 {
            return writeln!(f, "  nothing changed: already in the desired state");
        }
        for o in self.outcomes.iter().filter(|o| o.changed) {
            writeln!(f, "  {} [{}] {}", o.host, o.round, o.step)?;
        }
        Ok(())
    }
}

/// Executes plans: round by round, the hosts of a round in parallel; each
/// step's check runs right before it and a done step is skipped. Waits
/// poll `drbdsetup events2 --now` until their goal or their timeout.
pub struct Executor<'a, R: HostRunner + ?Sized> {
    runner: &'a R,
    poll_interval: Duration,
    delay_unit: Duration,
}

impl<'a, R: HostRunner + ?Sized> Executor<'a, R> {
    /// An executor polling once a second.
    pub fn new(runner: &'a R) -> Self {
        Executor {
            runner,
            poll_interval: Duration::from_secs(1),
            delay_unit: Duration::from_secs(1),
        }
    }

    /// Sets the pause between polls of a wait.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the length of one "second" of the plan's timeouts and delays
    /// (tests shrink it; production keeps one second).
    pub fn time_unit(mut self, unit: Duration) -> Self {
        self.delay_unit = unit;
        self
    }

    /// Check mode: runs every check once and returns the steps that are
    /// not done (see [`Plan::pending`]).
    pub fn pending(&self, plan: &Plan) -> Result<Plan, DrbdError> {
        let mut err = None;
        let pending = plan.pending(|host, check| {
            match self.runner.run(host, &HostCommand::new(&check.command)) {
                Ok(out) => Some(out),
                Err(e) => {
                    err.get_or_insert(e);
                    None
                }
            }
        });
        match err {
            Some(e) => Err(e),
            None => Ok(pending),
        }
    }

    /// `hive volumes status` data: reads `drbdsetup events2 --now` of
    /// `volume` on every hive of `stage` (in parallel) and summarises it
    /// per host. A host where the resource is not up is reported as down;
    /// one that cannot be reached, with the reason
    /// ([`VolumeHostStatus::unknown`]), the others still being read.
    pub fn volume_status(
        &self,
        stage: &Stage,
        volume: &DrbdVolume,
    ) -> Result<Vec<VolumeHostStatus>, DrbdError> {
        let cmd = HostCommand::new(status_command(&volume.name));
        let results: Vec<Result<VolumeHostStatus, DrbdError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = stage
                .hives()
                .iter()
                .map(|hive| {
                    let cmd = &cmd;
                    scope.spawn(move || {
                        let out = match self.runner.run(&hive.name, cmd) {
                            Ok(out) => out,
                            Err(DrbdError::Transport {
                                message, source, ..
                            }) => {
                                let mut why = format!("cannot read its state: {message}");
                                if let Some(s) = source {
                                    why.push_str(&format!(": {s}"));
                                }
                                return Ok(VolumeHostStatus::unknown(
                                    &hive.name,
                                    &volume.name,
                                    why,
                                ));
                            }
                            Err(e) => return Err(e),
                        };
                        let text = if out.success() {
                            out.stdout_text()
                        } else {
                            String::new()
                        };
                        let resources = parse_events2(&text)?;
                        Ok(volume_status(
                            &hive.name,
                            &volume.name,
                            volume.has_disk_on(hive),
                            &resources,
                        ))
                    })
                })
                .collect();
            joined(handles)
        });
        results.into_iter().collect()
    }

    /// Runs the plan. Stops after the first round in which a step failed
    /// and returns that failure (the first host by name).
    pub fn run(&self, plan: &Plan) -> Result<ExecutionReport, DrbdError> {
        let mut outcomes = Vec::new();
        for round in plan.rounds() {
            let work: Vec<(&str, Vec<&Step>)> = plan
                .hosts
                .iter()
                .map(|h| {
                    (
                        h.host.as_str(),
                        h.steps
                            .iter()
                            .filter(|s| s.round == round)
                            .collect::<Vec<_>>(),
                    )
                })
                .filter(|(_, s)| !s.is_empty())
                .collect();
            let results: Vec<Result<Vec<StepOutcome>, DrbdError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = work
                    .iter()
                    .map(|(host, steps)| scope.spawn(move || self.run_host_steps(host, steps)))
                    .collect();
                joined(handles)
            });
            let mut first_err = None;
            for r in results {
                match r {
                    Ok(o) => outcomes.extend(o),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
        }
        Ok(ExecutionReport {
            title: plan.title.clone(),
            outcomes,
        })
    }

    fn run_host_steps(&self, host: &str, steps: &[&Step]) -> Result<Vec<StepOutcome>, DrbdError> {
        let mut out = Vec::new();
        for step in steps {
            let check = self
                .runner
                .run(host, &HostCommand::new(&step.check.command))?;
            let changed = if step.check.is_done(&check) {
                false
            } else {
                self.perform(host, &step.action)?;
                true
            };
            out.push(StepOutcome {
                host: host.into(),
                round: step.round,
                step: step.action.to_string(),
                changed,
            });
        }
        Ok(out)
    }

    fn secs(&self, n: u64) -> Duration {
        self.delay_unit
            .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn perform(&self, host: &str, action: &Action) -> Result<(), DrbdError> {
        match action {
            Action::KernelModulePreflight => {
                let out = self.runner.run(host, &HostCommand::new(action.command()))?;
                assess_kernel_module(&out.stdout_text())
                    .map(|_| ())
                    .map_err(|explanation| DrbdError::KernelModule {
                        host: host.into(),
                        explanation,
                    })
            }
            Action::WaitConnected {
                resource,
                peers,
                timeout_secs,
            } => self.wait(
                host,
                resource,
                "connection to all peers",
                *timeout_secs,
                action,
                |text| missing_connections(text, resource, peers),
            ),
            Action::WaitSynced {
                resource,
                local_disk,
                peers,
                timeout_secs,
            } => self.wait(
                host,
                resource,
                "sync of all disks",
                *timeout_secs,
                action,
                |text| missing_sync(text, resource, *local_disk, peers),
            ),
            Action::Down {
                attempts,
                delay_secs,
                ..
            } => {
                let attempts = (*attempts).max(1);
                let mut last = None;
                for i in 0..attempts {
                    match self.run_checked(host, action) {
                        Ok(()) => return Ok(()),
                        Err(e) => last = Some(e),
                    }
                    if i + 1 < attempts {
                        std::thread::sleep(self.secs(*delay_secs));
                    }
                }
                Err(last.unwrap_or_else(|| DrbdError::StepFailed {
                    host: host.into(),
                    step: action.to_string(),
                    status: -1,
                    stderr: "no attempt made".into(),
                }))
            }
            _ => self.run_checked(host, action),
        }
    }

    fn run_checked(&self, host: &str, action: &Action) -> Result<(), DrbdError> {
        let cmd = HostCommand {
            script: action.command(),
            stdin: action.stdin().map(<[u8]>::to_vec),
        };
        let out = self.runner.run(host, &cmd)?;
        if out.success() {
            return Ok(());
        }
        let (stdout, stderr) = (out.stdout_text(), out.stderr_text());
        let text = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
        Err(DrbdError::StepFailed {
            host: host.into(),
            step: action.to_string(),
            status: out.status,
            stderr: tail,
        })
    }

    fn wait<F>(
        &self,
        host: &str,
        resource: &str,
        what: &str,
        timeout_secs: u64,
        action: &Action,
        missing: F,
    ) -> Result<(), DrbdError>
    where
        F: Fn(&str) -> Vec<String>,
    {
        let timeout = self.secs(timeout_secs);
        let start = Instant::now();
        loop {
            let out = self.runner.run(host, &HostCommand::new(action.command()))?;
            let text = if out.success() {
                out.stdout_text()
            } else {
                String::new()
            };
            let m = missing(&text);
            if m.is_empty() {
                return Ok(());
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Err(DrbdError::WaitTimeout {
                    host: host.into(),
                    resource: resource.into(),
                    what: what.into(),
                    waited: Duration::from_secs(timeout_secs),
                    missing: m,
                });
            }
            std::thread::sleep(self.poll_interval.min(timeout - elapsed));
        }
    }
}

/// The results of the worker threads `handles`, in order; a thread that
/// panicked gives a transport error.
fn joined<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<T, DrbdError>>>,
) -> Vec<Result<T, DrbdError>> {
    handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(DrbdError::Transport {
                    host: "?".into(),
                    message: "a worker thread panicked".into(),
                    source: None,
                })
            })
        })
        .collect()
}
