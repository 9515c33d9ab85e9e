//! The `drbd` step: hive-drbd's host preparation plan (packages, kernel
//! module preflight, volume group and thin pool, TCP buffers, firewall,
//! the `drbd-resource@.service` unit and its wait helper) on the hives.
//!
//! The step acts only when the stage has DRBD volumes, or when the
//! operator selects it with `-T drbd`; otherwise it says so and changes
//! nothing (servers without a DRBD module are not touched). Each hive runs
//! its part of the plan on its own, so a hive that fails (e.g. its kernel
//! has no DRBD 9 module) is reported alone while the others finish.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hive_drbd::{
    DrbdError, ExecOutput, Executor, HostCommand, HostPreparation, HostRunner, MirroredDiskGroup,
    PackageManager, Stage,
};

use super::error::{Result, SetupHostsError};
use super::os::OsFamily;
use super::params::Server;
use super::report::StepOutcome;
use super::shell::{Transport, root_command, run_script};
use super::steps::StepTag;

/// What the `drbd` step needs to know of the stage, mapped from the
/// inventory by the caller (see `hive_phases::volumes::drbd_host_setup` in hive-phases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdHostSetup {
    /// The hives as hive-drbd sees them (names equal to the servers').
    pub stage: Stage,
    /// Names of the stage's DRBD volumes; without any, the step does
    /// nothing unless selected with `-T drbd`.
    pub volumes: Vec<String>,
    /// Volume groups to build on the mirrored disks (default: `drbdvg`
    /// with thin pool `drbdpool` on hive-builder's device list).
    pub mirrored_disks: Vec<MirroredDiskGroup>,
}

impl DrbdHostSetup {
    /// The setup for `stage` and its DRBD `volumes`, default mirrored disks.
    pub fn new(stage: Stage, volumes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        DrbdHostSetup {
            stage,
            volumes: volumes.into_iter().map(Into::into).collect(),
            mirrored_disks: vec![MirroredDiskGroup::default()],
        }
    }

    /// The preparation for a server of OS family `os`.
    pub fn preparation(&self, os: OsFamily) -> HostPreparation {
        let manager = match os {
            OsFamily::Debian => PackageManager::Apt,
            OsFamily::RedHat { .. } => PackageManager::Dnf,
        };
        let mut p = HostPreparation::new(manager);
        p.mirrored_disks = self.mirrored_disks.clone();
        p
    }
}

/// hive-drbd's command runner over the servers' [`Transport`]s, for the
/// executor's (blocking) threads: setup-hosts' `drbd` step, build-volumes
/// and `hive volumes status`.
pub struct TransportRunner {
    transports: HashMap<String, Arc<dyn Transport>>,
    runtime: tokio::runtime::Handle,
    as_setup_scripts: bool,
}

impl TransportRunner {
    /// A runner over `transports` (keyed by server name), driving them on
    /// `runtime`, that runs each command as setup-hosts runs its scripts
    /// ([`run_script`]: under the server's setup lock, time-limited). Call
    /// it from blocking threads only.
    pub fn new(
        transports: HashMap<String, Arc<dyn Transport>>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        TransportRunner {
            transports,
            runtime,
            as_setup_scripts: true,
        }
    }

    /// A runner over `transports` that runs each command as it is, as root
    /// (`sudo -n`): build-volumes' waits for a sync are not bounded by a
    /// script's time limit, and `hive volumes status` does not wait for a
    /// setup-hosts script of another run.
    pub fn as_root(
        transports: impl IntoIterator<Item = Arc<dyn Transport>>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        TransportRunner {
            transports: transports
                .into_iter()
                .map(|t| (t.host().to_string(), t))
                .collect(),
            runtime,
            as_setup_scripts: false,
        }
    }
}

impl HostRunner for TransportRunner {
    fn run(&self, host: &str, command: &HostCommand) -> Result<ExecOutput, DrbdError> {
        let server = self
            .transports
            .get(host)
            .ok_or_else(|| DrbdError::Transport {
                host: host.to_string(),
                message: "no connection was given for this server".into(),
                source: None,
            })?;
        let failed = |message: String, source: Box<dyn std::error::Error + Send + Sync>| {
            DrbdError::Transport {
                host: host.to_string(),
                message,
                source: Some(source),
            }
        };
        if self.as_setup_scripts {
            let script = run_script(server.as_ref(), &command.script, command.stdin.as_deref());
            return self
                .runtime
                .block_on(script)
                .map_err(|e| failed(e.to_string(), Box::new(e)));
        }
        let cmd = root_command(command.script.as_str(), command.stdin.as_deref());
        self.runtime
            .block_on(server.exec(&cmd))
            .map_err(|e| failed("cannot run a command over SSH".into(), Box::new(e)))
    }
}

/// The step's error on a server, from hive-drbd's.
pub(crate) fn step_error(host: &str, e: DrbdError) -> SetupHostsError {
    match e {
        DrbdError::KernelModule { host, explanation } => SetupHostsError::Remote {
            host,
            what: "the DRBD kernel module preflight".into(),
            status: 1,
            stderr: format!("DRBD kernel module not usable: {explanation}"),
        },
        DrbdError::StepFailed {
            host,
            step,
            status,
            stderr,
        } => SetupHostsError::Remote {
            host,
            what: step,
            status,
            stderr,
        },
        DrbdError::Transport { host, message, .. } => SetupHostsError::Unreachable {
            host,
            reason: message,
        },
        other => SetupHostsError::Unexpected {
            host: host.to_string(),
            what: "DRBD host preparation".into(),
            detail: other.to_string(),
        },
    }
}

fn outcome(changed: Vec<String>, notes: Vec<String>, elapsed: Duration) -> StepOutcome {
    StepOutcome {
        step: StepTag::Drbd,
        changed,
        notes,
        elapsed,
    }
}

/// Runs the step on `servers` (acting, not failed; with their detected OS)
/// and returns one result per server, in order. `selected` says whether
/// the operator chose the step with `-T`.
pub(crate) async fn run_step(
    setup: Option<&DrbdHostSetup>,
    transports: &HashMap<String, Arc<dyn Transport>>,
    servers: &[(Server, Option<OsFamily>)],
    check: bool,
    selected: bool,
) -> Vec<Result<StepOutcome>> {
    let start = Instant::now();
    let skip = |note: &str| {
        servers
            .iter()
            .map(|_| Ok(outcome(Vec::new(), vec![note.to_string()], start.elapsed())))
            .collect()
    };
    let Some(setup) = setup else {
        return skip("the stage has no DRBD volumes");
    };
    if setup.volumes.is_empty() && !selected {
        return skip("the stage has no DRBD volumes; select with -T drbd to prepare anyway");
    }
    let runner = Arc::new(TransportRunner::new(
        transports.clone(),
        tokio::runtime::Handle::current(),
    ));
    let tasks: Vec<_> = servers
        .iter()
        .map(|(server, os)| {
            // The DRBD stage lists the inventory's hives, a repository
            // server that is also a hive (no separate repository) included.
            let hive = setup.stage.hive(&server.name).is_some() && os.is_some();
            let plan = os.map(|os| {
                setup
                    .preparation(os)
                    .plan(&setup.stage)
                    .for_host(&server.name)
            });
            let host = server.name.clone();
            let runner = runner.clone();
            tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let Some(plan) = plan.filter(|_| hive) else {
                    return Ok(outcome(
                        Vec::new(),
                        vec!["not a hive: no DRBD volumes here".into()],
                        started.elapsed(),
                    ));
                };
                let executor = Executor::new(runner.as_ref());
                let changed = if check {
                    let pending = executor.pending(&plan).map_err(|e| step_error(&host, e))?;
                    pending
                        .hosts
                        .iter()
                        .flat_map(|h| h.steps.iter().map(|s| s.action.to_string()))
                        .collect()
                } else {
                    let report = executor.run(&plan).map_err(|e| step_error(&host, e))?;
                    report
                        .outcomes
                        .into_iter()
                        .filter(|o| o.changed)
                        .map(|o| o.step)
                        .collect()
                };
                Ok(outcome(changed, Vec::new(), started.elapsed()))
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for (task, (server, _)) in tasks.into_iter().zip(servers) {
        results.push(match task.await {
            Ok(r) => r,
            Err(e) => Err(SetupHostsError::Unexpected {
                host: server.name.clone(),
                what: "DRBD host preparation".into(),
                detail: format!("the worker stopped: {e}"),
            }),
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerRole;
    use hive_provider::{OutputChunk, OutputStream, RemoteCommand, RemoteFile, UnboundedSender};
    use std::sync::Mutex;

    /// A server answering the preparation's checks from a table of
    /// (script fragment, exit status, stdout); records what ran.
    struct Scripted {
        host: String,
        answers: Vec<(&'static str, i32, &'static str)>,
        ran: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Transport for Scripted {
        fn host(&self) -> &str {
            &self.host
        }
        async fn exec_streamed(
            &self,
            command: &RemoteCommand,
            output: Option<UnboundedSender<OutputChunk>>,
        ) -> hive_provider::Result<i32> {
            let script = &command.script;
            self.ran.lock().unwrap().push(script.to_string());
            let (status, out) = self
                .answers
                .iter()
                .find(|(frag, _, _)| script.contains(frag))
                .map(|(_, s, o)| (*s, *o))
                .unwrap_or((0, ""));
            if let Some(tx) = output {
                let _ = tx.send(OutputChunk {
                    stream: OutputStream::Stdout,
                    data: out.as_bytes().to_vec(),
                });
            }
            Ok(status)
        }
        async fn put(&self, file: &RemoteFile, _: &[u8]) -> hive_provider::Result<()> {
            panic!(
                "the step writes files with scripts, not put ({})",
                file.path
            )
        }
        async fn get(&self, path: &str, _: bool) -> hive_provider::Result<Vec<u8>> {
            panic!("the step reads files with scripts, not get ({path})")
        }
    }

    fn server(name: &str, role: ServerRole, ip: &str) -> Server {
        Server {
            name: name.into(),
            role,
            private_ip: ip.parse().unwrap(),
            groups: Vec::new(),
        }
    }

    fn setup(volumes: &[&str]) -> DrbdHostSetup {
        let stage = Stage::new(vec![hive_drbd::StageHive::new(
            "p-hive0.t",
            "10.0.0.10".parse().unwrap(),
        )])
        .unwrap();
        DrbdHostSetup::new(stage, volumes.iter().copied())
    }

    fn shells(
        answers: Vec<(&'static str, i32, &'static str)>,
    ) -> (Arc<Scripted>, HashMap<String, Arc<dyn Transport>>) {
        let s = Arc::new(Scripted {
            host: "p-hive0.t".into(),
            answers,
            ran: Mutex::new(Vec::new()),
        });
        let mut m: HashMap<String, Arc<dyn Transport>> = HashMap::new();
        m.insert("p-hive0.t".into(), s.clone());
        (s, m)
    }

    fn servers() -> Vec<(Server, Option<OsFamily>)> {
        vec![
            (
                server("p-hive0.t", ServerRole::Hive, "10.0.0.10"),
                Some(OsFamily::Debian),
            ),
            (
                server("p-repository.t", ServerRole::Repository, "10.0.0.20"),
                Some(OsFamily::Debian),
            ),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_drbd_volumes_nothing_runs_and_the_step_says_why() {
        let (shell, map) = shells(Vec::new());
        let r = run_step(Some(&setup(&[])), &map, &servers(), false, false).await;
        assert_eq!(r.len(), 2);
        for o in &r {
            let o = o.as_ref().unwrap();
            assert!(o.changed.is_empty());
            assert!(o.notes[0].contains("no DRBD volumes"), "{:?}", o.notes);
        }
        assert!(shell.ran.lock().unwrap().is_empty());
        let r = run_step(None, &map, &servers(), false, true).await;
        assert!(r[0].as_ref().unwrap().notes[0].contains("no DRBD volumes"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn check_mode_lists_what_would_change_and_runs_only_checks() {
        // Everything is in place but the volume group.
        let (shell, map) = shells(vec![("vgs drbdvg", 5, "")]);
        let r = run_step(Some(&setup(&["data"])), &map, &servers(), true, false).await;
        let hive = r[0].as_ref().unwrap();
        assert_eq!(hive.changed.len(), 1, "{:?}", hive.changed);
        assert!(hive.changed[0].contains("create volume group drbdvg with thin pool drbdpool"));
        let repo = r[1].as_ref().unwrap();
        assert!(repo.changed.is_empty() && repo.notes[0].contains("not a hive"));
        assert!(
            !shell
                .ran
                .lock()
                .unwrap()
                .iter()
                .any(|s| s.contains("vgcreate"))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_kernel_module_fails_the_hive_with_the_explanation() {
        let probe = "@@modprobe\nmodprobe: FATAL: Module drbd not found in directory /lib/modules/6.1.0-27-amd64\nrc=1\n@@proc\n@@modinfo\nmodinfo: ERROR: Module drbd not found.\n@@lsmod\n@@kernel\n6.1.0-27-amd64\n";
        let (_, map) = shells(vec![
            ("echo '@@modprobe'", 0, probe),
            ("grep -q '^drbd '", 1, ""),
        ]);
        let r = run_step(Some(&setup(&["data"])), &map, &servers(), false, false).await;
        let e = r[0].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("p-hive0.t: the DRBD kernel module preflight failed")
                && e.contains("no DRBD module for the running kernel 6.1.0-27-amd64")
                && e.contains("drbd-dkms"),
            "{e}"
        );
        assert!(r[1].is_ok());
    }
}
