//! The build-volumes phase: DRBD-replicated volumes planned by hive-drbd
//! and executed over the stage's SSH sessions, then volumes with a Docker
//! volume driver on every hive; and `hive volumes status`.
//!
//! The hives are prepared for DRBD by the `drbd` step of setup-hosts
//! ([`drbd_host_setup`] maps the stage for it); build-volumes only checks,
//! with one cheap command per hive, that this was done.

use std::sync::Arc;

use hive_drbd::{
    DrbdError, DrbdVolume, ExecutionReport, Executor, HostPreparation, PackageManager, Plan, Stage,
    VolumeHostStatus, VolumePlanOptions,
};
use hive_provider::{RemoteCommand, SshPool, Transport};

use crate::Error;
use crate::engines::stage_pool;
use crate::setup_hosts::{DrbdHostSetup, TransportRunner};
use crate::site::StageSite;
use crate::swarm::SwarmOptions;

/// hive-drbd's commands run as root over the sessions of `pool` (one per
/// server, opened when first needed), for hive-drbd's executor.
///
/// ```no_run
/// # fn f(pool: std::sync::Arc<hive_provider::SshPool>) {
/// let runner = hive_phases::volumes::stage_runner(&pool, tokio::runtime::Handle::current());
/// # }
/// ```
pub fn stage_runner(pool: &Arc<SshPool>, runtime: tokio::runtime::Handle) -> TransportRunner {
    let servers = pool
        .hosts()
        .iter()
        .map(|h| Arc::new(SshPool::server(pool, h)) as Arc<dyn Transport>);
    TransportRunner::as_root(servers, runtime)
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
    /// One report per DRBD volume.
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
    limit_volumes(site, &mut volumes, &options.limit)?;
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
        let pool = stage_pool(&site.context_dir())?;
        // Check mode lists what would run on unprepared hives as well.
        if !options.swarm.destroy && !options.swarm.check {
            check_prepared(pool.clone(), &stage, &options.exclude).await?;
        }
        let mut plans = Vec::new();
        for v in &volumes {
            plans.push(if options.swarm.destroy {
                hive_drbd::destroy_volume_plan(&stage, v, &plan_options).map_err(drbd_error)?
            } else {
                hive_drbd::create_volume_plan(&stage, v, &plan_options).map_err(drbd_error)?
            });
        }
        let runner = stage_runner(&pool, tokio::runtime::Handle::current());
        let (drbd, pending) = execute_plans(runner, plans, options.swarm.check).await?;
        report.drbd = drbd;
        report.pending = pending;
    }
    if options.limit.is_empty() {
        report.driver = crate::swarm::build_driver_volumes(site, &options.swarm).await?;
    }
    Ok(report)
}

/// Runs `plans` in order with hive-drbd's executor over `runner` (in check
/// mode: only their checks, returning the steps that would run). Stops at
/// the first failing plan.
pub async fn execute_plans(
    runner: TransportRunner,
    plans: Vec<Plan>,
    check: bool,
) -> Result<(Vec<ExecutionReport>, Vec<Plan>), Error> {
    tokio::task::spawn_blocking(move || {
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
    .map_err(|e| Error::Drbd(Box::new(e)))
}

/// What the `drbd` step of setup-hosts needs of the stage of `site`: its
/// hives and DRBD volumes. `None` when the stage has no hive.
pub fn drbd_host_setup(site: &StageSite<'_>) -> Result<Option<DrbdHostSetup>, Error> {
    if !site
        .project()
        .servers_of(site.stage().name)
        .any(|s| s.role.is_hive())
    {
        return Ok(None);
    }
    let stage = site.drbd_stage()?;
    let volumes = site.drbd_volumes()?;
    Ok(Some(DrbdHostSetup::new(
        stage,
        volumes.into_iter().map(|v| v.name),
    )))
}

/// Checks, with one read-only command per hive (those of `exclude` left
/// out), that setup-hosts prepared the hives for DRBD; the error names
/// each hive with what it lacks and says to run `hive setup-hosts -T drbd`.
pub async fn check_prepared(
    pool: Arc<SshPool>,
    stage: &Stage,
    exclude: &[String],
) -> Result<(), Error> {
    let preparation = HostPreparation::new(PackageManager::Apt);
    let hives: Vec<_> = stage
        .hives()
        .iter()
        .filter(|h| !exclude.contains(&h.name))
        .collect();
    let results = futures::future::join_all(hives.iter().map(|hive| {
        let cmd = RemoteCommand::new(preparation.readiness_command(hive)).sudo();
        let pool = pool.clone();
        async move {
            let session = pool.session(&hive.name).await?;
            session.exec(&cmd).await
        }
    }))
    .await;
    let mut problems = Vec::new();
    for (hive, r) in hives.iter().zip(results) {
        let out = r.map_err(Error::provider)?;
        let missing: Vec<String> = out
            .stdout_text()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if !missing.is_empty() {
            problems.push(format!("{} lacks {}", hive.name, missing.join(", ")));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Site {
        message: format!(
            "the hives are not prepared for DRBD ({}): run `hive setup-hosts -T drbd` first",
            problems.join("; ")
        ),
    })
}

/// `hive volumes status` of `volumes` on the hives of `stage`: role, disk
/// state, peers and sync progress per volume and host, read from
/// `drbdsetup events2 --now` over the stage's SSH sessions. Volume by
/// volume, hives in name order.
pub async fn volumes_status(
    runner: TransportRunner,
    stage: Stage,
    volumes: Vec<DrbdVolume>,
) -> Result<Vec<VolumeHostStatus>, Error> {
    tokio::task::spawn_blocking(move || {
        let executor = Executor::new(&runner);
        let mut all = Vec::new();
        for v in &volumes {
            all.extend(executor.volume_status(&stage, v)?);
        }
        Ok::<_, DrbdError>(all)
    })
    .await
    .map_err(|e| Error::Site {
        message: format!("reading the DRBD status stopped: {e}"),
    })?
    .map_err(|e| Error::Drbd(Box::new(e)))
}

/// Keeps the volumes `limit` names (all when it is empty); a name that is
/// no DRBD volume of the stage is an error listing the volumes there are.
fn limit_volumes(
    site: &StageSite<'_>,
    volumes: &mut Vec<DrbdVolume>,
    limit: &[String],
) -> Result<(), Error> {
    for name in limit {
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
    if !limit.is_empty() {
        volumes.retain(|v| limit.contains(&v.name));
    }
    Ok(())
}

/// `hive volumes status` on the stage of `site` (only the volumes of
/// `limit` when not empty). `Ok(None)` when the stage has no DRBD volumes.
pub async fn drbd_status(
    site: &StageSite<'_>,
    limit: &[String],
) -> Result<Option<Vec<VolumeHostStatus>>, Error> {
    let mut volumes = site.drbd_volumes()?;
    if volumes.is_empty() {
        return Ok(None);
    }
    limit_volumes(site, &mut volumes, limit)?;
    let stage = site.drbd_stage()?;
    let pool = stage_pool(&site.context_dir())?;
    let runner = stage_runner(&pool, tokio::runtime::Handle::current());
    volumes_status(runner, stage, volumes).await.map(Some)
}
