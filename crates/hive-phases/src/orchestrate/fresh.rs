//! The plan of a stage whose servers do not exist yet: what each phase
//! would create, from the inventory alone.

use super::Orchestrator;
use crate::plan::Change;
use crate::setup_hosts::StepTag;
use crate::{Error, Phase};

/// What setup-hosts' `step` does on a server, or `None` when it does
/// nothing there.
fn step_work(step: StepTag, hive: bool, drbd: bool, addon: bool) -> Option<&'static str> {
    Some(match step {
        StepTag::Base => "packages, host name, time, sshd, /etc/hosts, users",
        StepTag::Pki => "site CA and server certificate",
        StepTag::Docker => "Docker engine with its TLS API",
        StepTag::Swarm if hive => "swarm manager with its labels",
        StepTag::Registry if hive => "login to the site registry",
        StepTag::Registry => "the site registry",
        StepTag::Firewall => "iptables rules",
        StepTag::Drbd if hive && drbd => "DRBD host preparation",
        StepTag::Logs if !hive => "rsyslog receiving the services' logs",
        StepTag::Backup if !hive => "backup command and its daily run at 01:00",
        StepTag::Addon if addon => "roles/addon",
        _ => return None,
    })
}

impl Orchestrator<'_> {
    fn would_create(&self, kind: &str, names: Vec<String>) -> Vec<Change> {
        names
            .into_iter()
            .map(|n| {
                self.line(format!("  would create {kind} {n}"));
                Change::new(kind, n, "create")
            })
            .collect()
    }

    /// In check mode on a stage without servers: what `phase` would
    /// create. Every value it needs is rendered, so that an error a run
    /// would meet fails the plan too.
    pub(super) fn planned_from_inventory(&self, phase: Phase) -> Result<Vec<Change>, Error> {
        let site = self.site;
        let project = site.project();
        let stage = site.stage().name;
        match phase {
            Phase::BuildInfra => Ok(Vec::new()),
            Phase::SetupHosts => {
                let drbd = !site.drbd_volumes()?.is_empty();
                let addon = project.root_dir().join("roles/addon").is_dir();
                let mut changes = Vec::new();
                for s in project.servers_of(stage) {
                    let hive = s.role.is_hive();
                    let steps: Vec<(StepTag, &str)> = StepTag::ALL
                        .into_iter()
                        .filter_map(|step| step_work(step, hive, drbd, addon).map(|w| (step, w)))
                        .collect();
                    self.line(format!(
                        "  would configure server {}: {}",
                        s.name,
                        steps
                            .iter()
                            .map(|(t, _)| t.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    for (step, what) in steps {
                        changes.push(Change::new(step.name(), what, "configure").on(&s.name));
                    }
                }
                Ok(changes)
            }
            Phase::BuildImages => Ok(self.would_create(
                "image",
                crate::images::image_definitions(site)?
                    .into_iter()
                    .map(|i| format!("image_{}", i.service))
                    .collect(),
            )),
            Phase::BuildVolumes => Ok(self.would_create(
                "volume",
                project
                    .volumes()
                    .iter()
                    .filter(|v| v.available_on.contains(&stage))
                    .map(|v| v.name.clone())
                    .collect(),
            )),
            Phase::BuildNetworks => Ok(self.would_create(
                "network",
                project
                    .networks()
                    .iter()
                    .filter(|n| n.available_on.contains(&stage))
                    .map(|n| n.name.clone())
                    .collect(),
            )),
            Phase::DeployServices => {
                Ok(self.would_create("service", site.service_definitions()?.into_keys().collect()))
            }
            Phase::InitializeServices => Ok(self.would_create(
                "initial data",
                site.service_definitions()?
                    .into_iter()
                    .filter(|(_, d)| !d.initialize_roles.is_empty())
                    .map(|(n, _)| n)
                    .collect(),
            )),
        }
    }
}
