//! Running any phase by name, for `hive all`.

use std::time::Duration;

use anyhow::Result;
use hive_phases::Phase;
use hive_phases::images::ImageOptions;
use hive_phases::plan::{Change, PhasePlan};
use hive_phases::setup::SetupOptions;
use hive_phases::setup_hosts::StepTag;
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

    /// Run `phase`; returns what it changed (or, in check mode, would
    /// change).
    pub async fn run(&self, phase: Phase) -> Result<PhasePlan> {
        let plan = |changes: Vec<Change>, note: Option<String>| PhasePlan {
            phase,
            check_mode: self.check,
            changes,
            note,
        };
        if self.check && phase != Phase::BuildInfra && !self.infra_exists() {
            let note =
                "the servers do not exist yet; this phase would run in full after build-infra";
            outln!("=== {phase}: check mode: {note}");
            return Ok(plan(self.planned_from_inventory(phase)?, Some(note.into())));
        }
        let changes = match phase {
            Phase::BuildInfra if self.check => super::infra::plan_build_infra(&self.spec)?,
            Phase::BuildInfra => super::infra::run_build_infra(&self.spec, 120, &[]).await?,
            Phase::SetupHosts => {
                let options = SetupOptions {
                    check: self.check,
                    temp_dir: self.temp_dir.clone(),
                    ..Default::default()
                };
                super::setup::run_setup_hosts(self.site, &options).await?
            }
            Phase::BuildImages => {
                let options = ImageOptions {
                    check: self.check,
                    temp_dir: self.temp_dir.clone(),
                    ..Default::default()
                };
                super::images::run_build_images(self.site, &options, self.verbose).await?
            }
            Phase::BuildVolumes => {
                let options = VolumeOptions {
                    swarm: self.swarm.clone(),
                    ..Default::default()
                };
                super::volumes::run_build_volumes(self.site, &options).await?
            }
            Phase::BuildNetworks => {
                super::swarm::run_build_networks(self.site, &self.swarm).await?
            }
            Phase::DeployServices => {
                super::swarm::run_deploy_services(self.site, &self.swarm, self.verbose).await?
            }
            Phase::InitializeServices => {
                let options = ImageOptions {
                    check: self.check,
                    temp_dir: self.temp_dir.clone(),
                    ..Default::default()
                };
                super::images::run_initialize_services(self.site, &options).await?
            }
        };
        Ok(plan(changes, None))
    }

    /// In check mode on a stage without servers: what the phase would
    /// create, from the inventory alone.
    fn planned_from_inventory(&self, phase: Phase) -> Result<Vec<Change>> {
        let project = self.site.project();
        let stage = self.site.stage().name;
        let names = |kind: &str, v: Vec<String>| -> Result<Vec<Change>> {
            let mut changes = Vec::new();
            for n in v {
                outln!("  would create {kind} {n}");
                changes.push(Change::new(kind, n, "create"));
            }
            Ok(changes)
        };
        match phase {
            Phase::BuildInfra => Ok(Vec::new()),
            Phase::SetupHosts => {
                let drbd = !self.site.drbd_volumes()?.is_empty();
                let addon = project.root_dir().join("roles/addon").is_dir();
                let mut changes = Vec::new();
                for s in project.servers_of(stage) {
                    let hive = s.role.is_hive();
                    let steps: Vec<(StepTag, &str)> = StepTag::ALL
                        .into_iter()
                        .filter_map(|step| {
                            let what = match step {
                                StepTag::Base => {
                                    "packages, host name, time, sshd, /etc/hosts, users"
                                }
                                StepTag::Pki => "site CA and server certificate",
                                StepTag::Docker => "Docker engine with its TLS API",
                                StepTag::Swarm if hive => "swarm manager with its labels",
                                StepTag::Registry if hive => "login to the site registry",
                                StepTag::Registry => "the site registry",
                                StepTag::Firewall => "iptables rules",
                                StepTag::Drbd if hive && drbd => "DRBD host preparation",
                                StepTag::Logs if !hive => "rsyslog receiving the services' logs",
                                StepTag::Addon if addon => "roles/addon",
                                _ => return None,
                            };
                            Some((step, what))
                        })
                        .collect();
                    outln!(
                        "  would configure server {}: {}",
                        s.name,
                        steps
                            .iter()
                            .map(|(t, _)| t.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    for (step, what) in steps {
                        changes.push(Change::new(step.name(), what, "configure").on(&s.name));
                    }
                }
                Ok(changes)
            }
            Phase::BuildImages => names(
                "image",
                hive_phases::images::image_definitions(self.site)?
                    .into_iter()
                    .map(|i| format!("image_{}", i.service))
                    .collect(),
            ),
            Phase::BuildVolumes => names(
                "volume",
                project
                    .volumes()
                    .iter()
                    .filter(|v| v.available_on.contains(&stage))
                    .map(|v| v.name.clone())
                    .collect(),
            ),
            Phase::BuildNetworks => names(
                "network",
                project
                    .networks()
                    .iter()
                    .filter(|n| n.available_on.contains(&stage))
                    .map(|n| n.name.clone())
                    .collect(),
            ),
            Phase::DeployServices => names(
                "service",
                project
                    .services()
                    .iter()
                    .filter(|s| s.available_on.contains(&stage))
                    .map(|s| s.name.clone())
                    .collect(),
            ),
            Phase::InitializeServices => names(
                "initial data",
                self.site
                    .service_definitions()?
                    .into_iter()
                    .filter(|(_, d)| !d.initialize_roles.is_empty())
                    .map(|(n, _)| n)
                    .collect(),
            ),
        }
    }
}
