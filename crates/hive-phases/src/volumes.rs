//! The build-volumes phase: DRBD-replicated volumes planned by hive-drbd
//! and executed over the stage's SSH sessions, then volumes with a Docker
//! volume driver on every hive.

use std::sync::Arc;

use hive_drbd::{
    DrbdError, ExecutionReport, Executor, HostCommand, HostPreparation, HostRunner, PackageManager,
    Plan, VolumePlanOptions,
};
use hive_provider::{RemoteCommand, SshPool, Transport};

use crate::Error;
use crate::setup::stage_pool;
use crate::site::StageSite;
use crate::swarm::SwarmOptions;

/// Runs hive-drbd's commands as root over the stage's SSH sessions.
pub struct SshRunner {
    pool: Arc<SshPool>,
    runtime: tokio::runtime::Handle,
}

impl SshRunner {
    /// A runner over `pool`, driving its async sessions on `runtime` (the
    /// executor calls it from its own threads).
    pub fn new(pool: Arc<SshPool>, runtime: tokio::runtime::Handle) -> Self {
        SshRunner { pool, runtime }
    }
}

impl HostRunner for SshRunner {
    fn run(
        &self,
        host: &str,
        command: &HostCommand,
    ) -> Result<hive_drbd::CommandOutput, DrbdError> {
        let mut cmd = RemoteCommand::new(&command.script).sudo();
        if let Some(data) = &command.stdin {
            cmd = cmd.stdin(data.clone());
        }
        let out = self.runtime.block_on(async {
            let session = self.pool.session(host).await?;
            session.exec(&cmd).await
        });
        match out {
            Ok(o) => Ok(hive_drbd::CommandOutput {
                status: o.status,
                stdout: o.stdout_text(),
                stderr: o.stderr_text(),
            }),
            Err(e) => Err(DrbdError::Transport {
                host: host.to_string(),
                message: "cannot run a command over SSH".into(),
                source: Some(Box::new(e)),
            }),
        }
    }
}

/// Options of [`build_volumes`].
#[derive(Debug, Clone, Default)]
pub struct VolumeOptions {
    /// `-l`: only these volumes (all when empty).
    pub limit: Vec<String>,
    /// `-x`: leave these servers out.
    pub exclude: Vec<String>,
    /// The swarm options (destroy, check, temp dir) shared with the driver
    /// volumes.
    pub swarm: SwarmOptions,
}

/// What build-volumes did.
#[derive(Debug, Default)]
pub struct VolumesReport {
    /// Host preparation and one report per DRBD volume.
    pub drbd: Vec<ExecutionReport>,
    /// In check mode: the steps that would run.
    pub pending: Vec<Plan>,
    /// The driver volumes.
    pub driver: hive_swarm::Report,
}

impl VolumesReport {
    /// How many things changed (or would change in check mode).
    pub fn changes(&self) -> u64 {
        let drbd: usize = self.drbd.iter().map(ExecutionReport::changed).sum();
        let pending: usize = self.pending.iter().map(Plan::len).sum();
        let driver = self
            .driver
            .resources
            .iter()
            .filter(|r| r.change.is_change())
            .count();
        (drbd + pending + driver) as u64
    }
}

/// build-volumes on the stage of `site`.
pub async fn build_volumes(
    site: &StageSite<'_>,
    options: &VolumeOptions,
) -> Result<VolumesReport, Error> {
    let drbd_error = |e: DrbdError| Error::Drbd(Box::new(e));
    let mut volumes = site.drbd_volumes()?;
    for name in &options.limit {
        if !volumes.iter().any(|v| &v.name == name) {
            return Err(Error::Site {
                message: format!(
                    "-l {name}: no DRBD volume of that name on stage {}; volumes: {}",
                    site.stage().name,
                    volumes
                        .iter()
                        .map(|v| v.name.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    if !options.limit.is_empty() {
        volumes.retain(|v| options.limit.contains(&v.name));
    }
    let mut report = VolumesReport::default();
    if !volumes.is_empty() {
        let stage = site.drbd_stage()?;
        let plan_options = VolumePlanOptions {
            first_hive: site
                .project()
                .first_hive(site.stage().name)
                .map(|s| s.name.clone()),
            exclude_hosts: options.exclude.clone(),
            ..Default::default()
        };
        let mut plans = Vec::new();
        if !options.swarm.destroy {
            plans.push(HostPreparation::new(PackageManager::Apt).plan(&stage));
        }
        for v in &volumes {
            plans.push(if options.swarm.destroy {
                hive_drbd::destroy_volume_plan(&stage, v, &plan_options).map_err(drbd_error)?
            } else {
                hive_drbd::create_volume_plan(&stage, v, &plan_options).map_err(drbd_error)?
            });
        }
        let pool = stage_pool(&site.context_dir())?;
        let runner = SshRunner::new(pool, tokio::runtime::Handle::current());
        let check = options.swarm.check;
        let (drbd, pending) = tokio::task::spawn_blocking(move || {
            let executor = Executor::new(&runner);
            let mut done = Vec::new();
            let mut pending = Vec::new();
            for plan in &plans {
                if check {
                    pending.push(executor.pending(plan)?);
                } else {
                    done.push(executor.run(plan)?);
                }
            }
            Ok::<_, DrbdError>((done, pending))
        })
        .await
        .map_err(|e| Error::Site {
            message: format!("the DRBD executor stopped: {e}"),
        })?
        .map_err(drbd_error)?;
        report.drbd = drbd;
        report.pending = pending;
    }
    if options.limit.is_empty() {
        report.driver = crate::swarm::build_driver_volumes(site, &options.swarm).await?;
    }
    Ok(report)
}
