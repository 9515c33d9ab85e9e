//! Running any phase by name, for `hive all`.

use std::time::Duration;

use anyhow::Result;
use hive_phases::Phase;
use hive_phases::images::ImageOptions;
use hive_phases::setup::SetupOptions;
use hive_phases::site::StageSite;
use hive_phases::swarm::SwarmOptions;
use hive_phases::volumes::VolumeOptions;
use hive_provider::StageSpec;

use super::Globals;

/// Runs the phases of one stage with the options of `hive all`.
pub struct PhaseRunner<'a> {
    site: &'a StageSite<'a>,
    spec: StageSpec,
    check: bool,
    verbose: bool,
    swarm: SwarmOptions,
    temp_dir: std::path::PathBuf,
}

impl<'a> PhaseRunner<'a> {
    /// A runner for `site`.
    pub fn new(
        globals: &Globals,
        site: &'a StageSite<'a>,
        check: bool,
        timeout: u64,
    ) -> Result<Self> {
        Ok(PhaseRunner {
            site,
            spec: site.provider_stage()?,
            check,
            verbose: globals.verbose,
            swarm: SwarmOptions {
                check,
                timeout: Duration::from_secs(timeout),
                ..super::swarm::options(globals)
            },
            temp_dir: globals.temp_dir.clone(),
        })
    }

    /// Whether the stage's servers are known (build-infra ran).
    fn infra_exists(&self) -> bool {
        self.spec.ssh_config_path().exists()
    }

    /// Run `phase`; returns its number of changes.
    pub async fn run(&self, phase: Phase) -> Result<u64> {
        if self.check && phase != Phase::BuildInfra && !self.infra_exists() {
            outln!(
                "=== {phase}: check mode: the servers do not exist yet; this phase would run in full after build-infra"
            );
            return Ok(self.planned_from_inventory(phase));
        }
        match phase {
            Phase::BuildInfra => {
                if self.check {
                    let n = self.spec.servers.len() as u64;
                    if self.infra_exists() {
                        outln!(
                            "=== build-infra: check mode: the {n} servers are built; a run verifies them"
                        );
                        return Ok(0);
                    }
                    outln!(
                        "=== build-infra: check mode: would create {n} servers with provider {}:",
                        self.spec.provider
                    );
                    for s in &self.spec.servers {
                        outln!("  {} ({:?}, {})", s.name, s.role, s.private_ip);
                    }
                    return Ok(n);
                }
                super::infra::run_build_infra(&self.spec, 120).await
            }
            Phase::SetupHosts => {
                let options = SetupOptions {
                    check: self.check,
                    temp_dir: self.temp_dir.clone(),
                    ..Default::default()
                };
                super::setup::run_setup_hosts(self.site, &options).await
            }
            Phase::BuildImages => {
                let options = ImageOptions {
                    check: self.check,
                    temp_dir: self.temp_dir.clone(),
                    ..Default::default()
                };
                super::images::run_build_images(self.site, &options, self.verbose).await
            }
            Phase::BuildVolumes => {
                let options = VolumeOptions {
                    swarm: self.swarm.clone(),
                    ..Default::default()
                };
                super::volumes::run_build_volumes(self.site, &options).await
            }
            Phase::BuildNetworks => super::swarm::run_build_networks(self.site, &self.swarm).await,
            Phase::DeployServices => {
                super::swarm::run_deploy_services(self.site, &self.swarm, self.verbose).await
            }
            Phase::InitializeServices => {
                let options = ImageOptions {
                    check: self.check,
                    temp_dir: self.temp_dir.clone(),
                    ..Default::default()
                };
                super::images::run_initialize_services(self.site, &options).await
            }
        }
    }

    /// In check mode on a stage without servers: what the phase would
    /// create, from the inventory alone.
    fn planned_from_inventory(&self, phase: Phase) -> u64 {
        let project = self.site.project();
        let stage = self.site.stage().name;
        let names = |v: Vec<String>| -> u64 {
            for n in &v {
                let _ = super::out(&format!("  would create {n}"));
            }
            v.len() as u64
        };
        match phase {
            Phase::BuildInfra => 0,
            Phase::SetupHosts => names(
                project
                    .servers_of(stage)
                    .map(|s| format!("the configuration of {}", s.name))
                    .collect(),
            ),
            Phase::BuildImages => names(
                hive_phases::images::image_definitions(self.site)
                    .map(|v| {
                        v.into_iter()
                            .map(|i| format!("image image_{}", i.service))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Phase::BuildVolumes => names(
                project
                    .volumes()
                    .iter()
                    .filter(|v| v.available_on.contains(&stage))
                    .map(|v| format!("volume {}", v.name))
                    .collect(),
            ),
            Phase::BuildNetworks => names(
                project
                    .networks()
                    .iter()
                    .filter(|n| n.available_on.contains(&stage))
                    .map(|n| format!("network {}", n.name))
                    .collect(),
            ),
            Phase::DeployServices => names(
                project
                    .services()
                    .iter()
                    .filter(|s| s.available_on.contains(&stage))
                    .map(|s| format!("service {}", s.name))
                    .collect(),
            ),
            Phase::InitializeServices => names(
                self.site
                    .service_definitions()
                    .map(|m| {
                        m.into_iter()
                            .filter(|(_, d)| !d.initialize_roles.is_empty())
                            .map(|(n, _)| format!("the initial data of {n}"))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
        }
    }
}
