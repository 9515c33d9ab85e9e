//! The swarm phases of a stage: build-networks, the driver-volume part of
//! build-volumes, and deploy-services, on the stage's engines.

use std::path::PathBuf;
use std::time::Duration;

use hive_swarm::{DeployEvent, Deployer, Report};

use crate::site::StageSite;
use crate::{Engines, Error};

/// Options of the swarm phases.
#[derive(Debug, Clone)]
pub struct SwarmOptions {
    /// `-l`: only these services (deploy-services).
    pub limit: Vec<String>,
    /// `-D`: remove instead of create.
    pub destroy: bool,
    /// `-C`: compute the plan, change nothing.
    pub check: bool,
    /// How long deploy-services waits for services to converge.
    pub timeout: Duration,
    /// Where the forwarded Docker sockets are made.
    pub temp_dir: PathBuf,
}

impl Default for SwarmOptions {
    fn default() -> Self {
        SwarmOptions {
            limit: Vec::new(),
            destroy: false,
            check: false,
            timeout: Duration::from_secs(300),
            temp_dir: std::env::temp_dir(),
        }
    }
}

/// The hives of the stage, the swarm master (first hive) first.
fn hive_names(site: &StageSite<'_>) -> Vec<String> {
    let project = site.project();
    let stage = site.stage().name;
    let first = project.first_hive(stage).map(|s| s.name.clone());
    let mut names: Vec<String> = first.iter().cloned().collect();
    for s in project.servers_of(stage) {
        if s.role.is_hive() && Some(&s.name) != first.as_ref() {
            names.push(s.name.clone());
        }
    }
    names
}

/// build-networks: the stage's overlay networks on the swarm master.
pub async fn build_networks(site: &StageSite<'_>, options: &SwarmOptions) -> Result<Report, Error> {
    let ctx = site.swarm_stage()?;
    let master: Vec<String> = hive_names(site).into_iter().take(1).collect();
    let engines = Engines::connect(&site.context_dir(), &master, &options.temp_dir).await?;
    let manager = engines.hives().first().ok_or_else(|| Error::Site {
        message: "the stage has no hive".into(),
    })?;
    hive_swarm::build_networks(manager, &ctx, options.check)
        .await
        .map_err(Error::swarm)
}

/// build-volumes, driver part: volumes with a `driver` on every hive
/// (`-D` removes them).
pub async fn build_driver_volumes(
    site: &StageSite<'_>,
    options: &SwarmOptions,
) -> Result<Report, Error> {
    let volumes = site.driver_volumes()?;
    if volumes.is_empty() {
        return Ok(Report::default());
    }
    let engines =
        Engines::connect(&site.context_dir(), &hive_names(site), &options.temp_dir).await?;
    hive_swarm::build_volumes(engines.hives(), &volumes, options.destroy, options.check)
        .await
        .map_err(Error::swarm)
}

/// deploy-services: create, update or (with `-D`) remove the stage's
/// services, pulling images on every hive, then wait for convergence,
/// reporting progress to `on_event`.
pub async fn deploy_services(
    site: &StageSite<'_>,
    options: &SwarmOptions,
    on_event: impl Fn(DeployEvent) + Send + Sync + 'static,
) -> Result<Report, Error> {
    let services = site.service_definitions()?;
    let ctx = site.swarm_stage()?;
    for name in &options.limit {
        if !services.contains_key(name) {
            return Err(Error::Site {
                message: format!(
                    "-l {name}: no such service on stage {}; services: {}",
                    ctx.stage,
                    services.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    let engines =
        Engines::connect(&site.context_dir(), &hive_names(site), &options.temp_dir).await?;
    let mut deployer = Deployer::new(engines.hives().to_vec(), ctx)
        .destroy(options.destroy)
        .check(options.check)
        .timeout(options.timeout)
        .on_event(on_event);
    if !options.limit.is_empty() {
        deployer = deployer.limit(options.limit.iter().cloned());
    }
    deployer.deploy(&services).await.map_err(Error::swarm)
}
