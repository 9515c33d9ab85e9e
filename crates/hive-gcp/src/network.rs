//! build-infra's network: the VPC network, its firewall rules and
//! subnetworks, each found by name and created when missing. In check
//! mode nothing is created and what a run would create is reported.

use google_cloud_compute_v1::model::{Firewall, Network, Subnetwork, firewall};
use hive_provider::{ProviderReport, ServerChange};

use crate::compute::{Compute, found, last_segment};
use crate::error::GcpError;
use crate::settings::{Allowed, FirewallPlan, MTU};

/// One build (or its plan): what was done so far.
pub(crate) struct Run<'a> {
    pub(crate) gce: &'a Compute,
    pub(crate) check: bool,
    pub(crate) report: ProviderReport,
}

impl<'a> Run<'a> {
    pub(crate) fn new(gce: &'a Compute, check: bool) -> Self {
        Run {
            gce,
            check,
            report: ProviderReport::default(),
        }
    }

    pub(crate) fn resource(&mut self, what: impl Into<String>, change: ServerChange) {
        self.report.resources.push((what.into(), change));
    }

    /// The network, its firewall rules and subnetworks; whether the
    /// network exists (it does not in a plan that would create it).
    pub(crate) async fn network(&mut self) -> Result<bool, GcpError> {
        let exists = self.vpc().await?;
        for plan in self.gce.settings.firewalls.clone() {
            self.firewall(&plan, exists).await?;
        }
        self.subnetworks(exists).await?;
        Ok(exists)
    }

    async fn vpc(&mut self) -> Result<bool, GcpError> {
        let gce = self.gce;
        let name = &gce.settings.network;
        let what = format!("network {name}");
        let got = gce
            .networks
            .get()
            .set_project(&gce.project)
            .set_network(name)
            .send()
            .await;
        if let Some(existing) = found(&what, got)? {
            if existing.auto_create_subnetworks == Some(true) {
                return Err(GcpError::Conflict(format!(
                    "{what} exists in auto mode (a subnetwork in every region); the stage needs a custom-mode network: remove it or set hive_vpc_name"
                )));
            }
            self.resource(what, ServerChange::Unchanged);
            return Ok(true);
        }
        self.resource(what.clone(), ServerChange::Created);
        if self.check {
            return Ok(false);
        }
        let body = Network::new()
            .set_name(name)
            .set_auto_create_subnetworks(false)
            .set_mtu(MTU);
        let op = gce
            .networks
            .insert()
            .set_project(&gce.project)
            .set_body(body)
            .send()
            .await
            .map_err(|e| GcpError::api(format!("create {what}"), &e))?;
        gce.wait(&format!("create {what}"), op, |op| {
            gce.networks
                .get_operation()
                .set_project(&gce.project)
                .set_operation(op)
                .send()
        })
        .await?;
        Ok(true)
    }

    async fn firewall(&mut self, plan: &FirewallPlan, network: bool) -> Result<(), GcpError> {
        let gce = self.gce;
        let what = format!("firewall {}", plan.summary());
        let existing = if network {
            let got = gce
                .firewalls
                .get()
                .set_project(&gce.project)
                .set_firewall(&plan.name)
                .send()
                .await;
            found(&format!("firewall {}", plan.name), got)?
        } else {
            None
        };
        let body = Firewall::new()
            .set_name(&plan.name)
            .set_description(&plan.description)
            .set_network(gce.network_path())
            .set_direction(firewall::Direction::Ingress)
            .set_source_ranges(plan.source_ranges.clone())
            .set_allowed(plan.allowed.iter().map(|a| {
                firewall::Allowed::new()
                    .set_ip_protocol(&a.protocol)
                    .set_ports(a.ports.clone())
            }));
        let change = match &existing {
            None => ServerChange::Created,
            Some(fw) if same_rule(fw, plan) => ServerChange::Unchanged,
            Some(fw) => {
                if last_segment(fw.network.as_deref().unwrap_or_default()) != gce.settings.network {
                    return Err(GcpError::Conflict(format!(
                        "firewall {} belongs to network {}, not {}; remove it or set hive_vpc_name",
                        plan.name,
                        last_segment(fw.network.as_deref().unwrap_or_default()),
                        gce.settings.network
                    )));
                }
                ServerChange::Updated
            }
        };
        self.resource(what.clone(), change);
        if self.check || change == ServerChange::Unchanged {
            return Ok(());
        }
        let op = if change == ServerChange::Created {
            gce.firewalls
                .insert()
                .set_project(&gce.project)
                .set_body(body)
                .send()
                .await
        } else {
            gce.firewalls
                .patch()
                .set_project(&gce.project)
                .set_firewall(&plan.name)
                .set_body(body)
                .send()
                .await
        };
        let action = format!(
            "{} {what}",
            if existing.is_some() {
                "update"
            } else {
                "create"
            }
        );
        let op = op.map_err(|e| GcpError::api(&action, &e))?;
        gce.wait(&action, op, |op| {
            gce.firewalls
                .get_operation()
                .set_project(&gce.project)
                .set_operation(op)
                .send()
        })
        .await
    }

    async fn subnetworks(&mut self, network: bool) -> Result<(), GcpError> {
        let gce = self.gce;
        let s = &gce.settings;
        for plan in &s.subnets {
            let what = format!("subnetwork {} ({}, {})", plan.name, plan.cidr, s.region);
            let existing = if network {
                let got = gce
                    .subnetworks
                    .get()
                    .set_project(&gce.project)
                    .set_region(&s.region)
                    .set_subnetwork(&plan.name)
                    .send()
                    .await;
                found(&what, got)?
            } else {
                None
            };
            if let Some(sub) = existing {
                let cidr = sub.ip_cidr_range.as_deref().unwrap_or_default();
                let net = last_segment(sub.network.as_deref().unwrap_or_default());
                if cidr != plan.cidr.to_string() || net != s.network {
                    return Err(GcpError::Conflict(format!(
                        "{what}: the existing subnetwork has range {cidr} in network {net}; remove it or change the stage's subnets"
                    )));
                }
                self.resource(what, ServerChange::Unchanged);
                continue;
            }
            self.resource(what.clone(), ServerChange::Created);
            if self.check {
                continue;
            }
            let body = Subnetwork::new()
                .set_name(&plan.name)
                .set_network(gce.network_path())
                .set_ip_cidr_range(plan.cidr.to_string())
                .set_region(&s.region);
            let op = gce
                .subnetworks
                .insert()
                .set_project(&gce.project)
                .set_region(&s.region)
                .set_body(body)
                .send()
                .await
                .map_err(|e| GcpError::api(format!("create {what}"), &e))?;
            gce.wait(&format!("create {what}"), op, |op| {
                gce.subnetworks
                    .get_operation()
                    .set_project(&gce.project)
                    .set_region(&s.region)
                    .set_operation(op)
                    .send()
            })
            .await?;
        }
        Ok(())
    }
}

/// Whether an existing rule lets in what `plan` does, from where it does.
fn same_rule(fw: &Firewall, plan: &FirewallPlan) -> bool {
    let mut got: Vec<Allowed> = fw
        .allowed
        .iter()
        .map(|a| Allowed {
            protocol: a.ip_protocol.clone().unwrap_or_default(),
            ports: a.ports.clone(),
        })
        .collect();
    let mut want = plan.allowed.clone();
    got.sort();
    want.sort();
    let mut sources = fw.source_ranges.clone();
    let mut want_sources = plan.source_ranges.clone();
    sources.sort();
    want_sources.sort();
    got == want && sources == want_sources
}

/// Delete resource `$what` of client `$client` when it exists and report
/// it destroyed: the `$scope` setters (project, region) go on its look-up,
/// its deletion and the wait for that operation, `$name` on the look-up
/// and the deletion.
macro_rules! remove {
    ($gce:expr, $run:expr, $what:expr, $client:ident,
     [$($scope:ident($sarg:expr)),*], $name:ident($narg:expr)) => {{
        let gce = $gce;
        let what = $what;
        let lookup = gce.$client.get()$(.$scope($sarg))*.$name($narg).send().await;
        if found(&what, lookup)?.is_some() {
            let doing = format!("delete {what}");
            let op = gce.$client.delete()$(.$scope($sarg))*.$name($narg)
                .send()
                .await
                .map_err(|e| GcpError::api(&doing, &e))?;
            gce.wait(&doing, op, |op| {
                gce.$client.get_operation()$(.$scope($sarg))*.set_operation(op).send()
            })
            .await?;
            $run.resource(what, ServerChange::Destroyed);
        }
    }};
}

impl Compute {
    /// Remove the firewall rules, the subnetworks and the network, in
    /// that order (a network with rules or subnetworks cannot go).
    pub(crate) async fn remove_network(&self, run: &mut Run<'_>) -> Result<(), GcpError> {
        let s = &self.settings;
        let project = &self.project;
        for plan in &s.firewalls {
            let what = format!("firewall {}", plan.name);
            remove!(
                self,
                run,
                what,
                firewalls,
                [set_project(project)],
                set_firewall(&plan.name)
            );
        }
        for plan in &s.subnets {
            let what = format!("subnetwork {} ({}, {})", plan.name, plan.cidr, s.region);
            let scope = &s.region;
            remove!(
                self,
                run,
                what,
                subnetworks,
                [set_project(project), set_region(scope)],
                set_subnetwork(&plan.name)
            );
        }
        let what = format!("network {}", s.network);
        remove!(
            self,
            run,
            what,
            networks,
            [set_project(project)],
            set_network(&s.network)
        );
        Ok(())
    }
}
