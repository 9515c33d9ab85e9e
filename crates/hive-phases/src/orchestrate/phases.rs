//! Each phase run with its report lines.

use std::sync::Arc;

use hive_image::{BuildEvent, TaskStatus};
use hive_swarm::{DeployEvent, Report};

use super::{Orchestrator, Progress};
use crate::Error;
use crate::images::ImageOptions;
use crate::plan::{Change, setup_hosts_changes, swarm_changes, task_changes, volumes_changes};
use crate::setup::SetupOptions;
use crate::setup_hosts::SetupEvent;
use crate::swarm::SwarmOptions;
use crate::volumes::VolumeOptions;

/// One line for a task execution: `role: task [item] status (message)`.
pub fn task_line(t: &hive_image::TaskEvent) -> String {
    let item = t
        .item
        .as_ref()
        .map(|i| format!(" [{i}]"))
        .unwrap_or_default();
    let msg = t
        .msg
        .as_ref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    format!("{}: {}{item} {:?}{msg}", t.role, t.task, t.status)
}

/// The lines of a swarm report, one per resource, and "no change" when so.
pub fn swarm_report_lines(phase: &str, report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for r in &report.resources {
        let on = r
            .hive
            .as_ref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        let verb = if report.check && r.change.is_change() {
            "would be "
        } else {
            ""
        };
        out.push(format!("  {:?} {}{on}: {verb}{}", r.kind, r.name, r.change));
    }
    let n = report
        .resources
        .iter()
        .filter(|r| r.change.is_change())
        .count();
    out.push(if n == 0 {
        format!("{phase}: no change")
    } else if report.check {
        format!("{phase}: {n} change(s) would be made (check mode, nothing changed)")
    } else {
        format!("{phase}: {n} change(s)")
    });
    out
}

impl Orchestrator<'_> {
    fn swarm_options(&self) -> SwarmOptions {
        SwarmOptions {
            limit: self.options.limit.clone(),
            destroy: self.options.destroy,
            check: self.options.check,
            timeout: self.options.timeout,
            temp_dir: self.options.temp_dir.clone(),
        }
    }

    fn image_options(&self) -> ImageOptions {
        ImageOptions {
            limit: self.options.limit.clone(),
            rebuild: self.options.rebuild,
            check: self.options.check,
            temp_dir: self.options.temp_dir.clone(),
        }
    }

    /// build-infra in check mode. A provider that can read what exists
    /// (a cloud) reports what a run would create; for the others, once
    /// the stage's servers were built (its ssh_config exists), a run only
    /// verifies them and reaches them again. The provider is checked as a
    /// run checks it first: a provider hive does not support, or settings
    /// it refuses, fail the plan.
    pub(super) async fn plan_build_infra(&self) -> Result<Vec<Change>, Error> {
        let spec = &self.spec;
        let provider = hive_provider::provider_for(spec).map_err(Error::provider)?;
        for w in provider.validate(spec).map_err(Error::provider)? {
            (self.progress)(Progress::Warning(w));
        }
        if let Some(report) = provider.plan(spec).await.map_err(Error::provider)? {
            // A provider whose servers install from what it writes
            // (kickstart) lists its files; a cloud its resources and servers.
            if provider.installs_servers_later() {
                return Ok(self.provider_plan(&report));
            }
            self.line(format!(
                "=== build-infra: check mode: provider {} on stage {}:",
                spec.provider, spec.stage
            ));
            return Ok(self.cloud_plan(&report));
        }
        let n = spec.servers.len();
        if spec.ssh_config_path().exists() {
            self.line(format!(
                "=== build-infra: check mode: the {n} servers are built; a run verifies them"
            ));
            return Ok(Vec::new());
        }
        self.line(format!(
            "=== build-infra: check mode: would create {n} servers with provider {}:",
            spec.provider
        ));
        let mut changes = Vec::new();
        for s in &spec.servers {
            self.line(format!("  {} ({:?}, {})", s.name, s.role, s.private_ip));
            changes.push(Change::new("server", &s.name, "create").on(&s.name));
        }
        Ok(changes)
    }

    /// The plan of a cloud provider: its resources (the changed ones, or
    /// all in verbose mode), its servers and a closing line.
    fn cloud_plan(&self, report: &hive_provider::ProviderReport) -> Vec<Change> {
        use hive_provider::ServerChange;
        let verb = |c: ServerChange| {
            if c != ServerChange::Unchanged {
                format!("would be {c}")
            } else {
                c.to_string()
            }
        };
        let mut changes = Vec::new();
        for (name, c) in &report.resources {
            if *c != ServerChange::Unchanged || self.options.verbose {
                self.line(format!("  {name}: {}", verb(*c)));
            }
            if *c != ServerChange::Unchanged {
                changes.push(Change::new("resource", name, c.to_string()));
            }
        }
        for (name, c) in &report.servers {
            self.line(format!("  {name}: {}", verb(*c)));
            if *c != ServerChange::Unchanged {
                changes.push(Change::new("server", name, c.to_string()).on(name));
            }
        }
        for w in &report.warnings {
            (self.progress)(Progress::Warning(w.clone()));
        }
        self.line(if changes.is_empty() {
            "build-infra: no change".to_string()
        } else {
            format!(
                "build-infra: {} change(s) would be made (check mode, nothing changed)",
                changes.len()
            )
        });
        changes
    }

    /// The plan of a provider that computes its own (what it would write).
    fn provider_plan(&self, report: &hive_provider::ProviderReport) -> Vec<Change> {
        let pending = || {
            report
                .resources
                .iter()
                .filter(|(_, c)| *c != hive_provider::ServerChange::Unchanged)
        };
        if pending().next().is_none() {
            self.line(format!(
                "=== build-infra: check mode: provider {}: no change",
                self.spec.provider
            ));
            return Vec::new();
        }
        self.line(format!(
            "=== build-infra: check mode: provider {} would write:",
            self.spec.provider
        ));
        pending()
            .map(|(path, c)| {
                let action = match c {
                    hive_provider::ServerChange::Created => "create",
                    _ => "update",
                };
                self.line(format!("  {path}: {action}"));
                Change::new("local", path, action)
            })
            .collect()
    }

    /// build-infra: build the servers, wait for SSH, report what happened.
    pub(super) async fn build_infra(&self) -> Result<Vec<Change>, Error> {
        let spec = &self.spec;
        let limit = &self.options.limit;
        let provider = hive_provider::provider_for(spec).map_err(Error::provider)?;
        let stage = &spec.stage;
        if limit.is_empty() {
            self.line(format!(
                "=== build-infra: {} servers of stage {stage} with provider {}",
                spec.servers.len(),
                spec.provider
            ));
        } else {
            self.line(format!(
                "=== build-infra -l: {} of stage {stage} with provider {}",
                limit.join(", "),
                spec.provider
            ));
        }
        let options = hive_provider::BuildInfraOptions {
            ssh_wait: self.options.ssh_wait,
            limit: limit.clone(),
            wait_for_ssh: !self.options.skip_ssh_wait,
            ..Default::default()
        };
        let report = hive_provider::build_infra(provider.as_ref(), spec, &options)
            .await
            .map_err(Error::provider)?;
        for s in &report.servers {
            let mut notes = Vec::new();
            if s.host_key_pinned {
                notes.push("host key pinned");
            }
            if s.old_pin_forgotten {
                notes.push("old host key forgotten");
            }
            if s.admin_bootstrap_changed == Some(true) {
                notes.push("admin account created");
            }
            let change = report
                .provider
                .change_of(&s.endpoint.name)
                .map(|c| c.to_string())
                .unwrap_or_default();
            self.line(format!(
                "  {}: {change} ({}@{}){}",
                s.endpoint.name,
                s.endpoint.user,
                s.endpoint.socket_text(),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(", {}", notes.join(", "))
                }
            ));
        }
        for e in &report.not_installed {
            self.line(format!(
                "  {}: not installed yet ({}@{} does not answer): boot it from the installation media, then run build-infra again to pin its host key",
                e.name,
                e.user,
                e.socket_text()
            ));
        }
        for (path, c) in &report.provider.resources {
            if *c != hive_provider::ServerChange::Unchanged {
                self.line(format!("  {path}: {c}"));
            }
        }
        for w in &report.provider.warnings {
            (self.progress)(Progress::Warning(w.clone()));
        }
        if report.key_generated {
            self.line(format!(
                "  generated the stage key pair {}",
                spec.private_key_path().display()
            ));
        }
        self.line(format!(
            "build-infra: {}; log in with `ssh -F {} HOST` or `hive ssh`",
            if report.changed() {
                "done"
            } else {
                "no change"
            },
            report.ssh_config.display()
        ));
        let mut changes: Vec<Change> = report
            .provider
            .servers
            .iter()
            .filter(|(_, c)| *c != hive_provider::ServerChange::Unchanged)
            .map(|(name, c)| Change::new("server", name, c.to_string()).on(name))
            .collect();
        changes.extend(
            report
                .provider
                .resources
                .iter()
                .filter(|(_, c)| *c != hive_provider::ServerChange::Unchanged)
                .map(|(path, c)| Change::new("local", path, c.to_string())),
        );
        if report.key_generated {
            changes.push(Change::new(
                "local",
                spec.private_key_path().display().to_string(),
                "create",
            ));
        }
        Ok(changes)
    }

    /// setup-hosts with its report.
    pub(super) async fn setup_hosts(&self) -> Result<Vec<Change>, Error> {
        let site = self.site;
        self.line(format!("=== setup-hosts: stage {}", site.stage().name));
        let check = self.options.check;
        let options = SetupOptions {
            tags: self.options.tags.clone(),
            limit: self.options.limit.clone(),
            check,
            temp_dir: self.options.temp_dir.clone(),
        };
        let progress = self.progress.clone();
        let shown = Arc::new(move |event: &SetupEvent| match event {
            SetupEvent::StepStarted { step, hosts } => {
                for h in hosts {
                    progress(Progress::Status {
                        key: format!("setup:{h}"),
                        text: format!("  {h}: {step}"),
                    });
                }
            }
            SetupEvent::Waiting {
                step,
                host,
                message,
            } => progress(Progress::Line(format!("  {host}: {step}: {message}"))),
            SetupEvent::StepDone {
                step,
                host,
                changes,
                failed,
            } => match failed {
                Some(e) => progress(Progress::Done {
                    key: format!("setup:{host}"),
                    text: format!("  {host}: {step} FAILED: {e}"),
                }),
                None if *changes > 0 => progress(Progress::Line(format!(
                    "  {host}: {step}: {changes} change(s){}",
                    if check { " would be made" } else { "" }
                ))),
                None => {}
            },
        });
        let report = crate::setup::setup_hosts_with_progress(site, &options, Some(shown)).await;
        self.forget("setup:");
        let report = report?;
        self.line(report.to_string());
        for (step, took) in &report.step_times {
            self.line(format!("  {step}: {:.1}s", took.as_secs_f64()));
        }
        let failed: Vec<String> = report.failed().map(|h| h.host.clone()).collect();
        if !failed.is_empty() {
            return Err(Error::Site {
                message: format!(
                    "setup-hosts failed on {}; the other servers finished, re-run to complete the work",
                    failed.join(", ")
                ),
            });
        }
        Ok(setup_hosts_changes(&report))
    }

    /// build-images with its progress.
    pub(super) async fn build_images(&self) -> Result<Vec<Change>, Error> {
        let site = self.site;
        self.line(format!("=== build-images: stage {}", site.stage().name));
        let verbose = self.options.verbose;
        let progress = self.progress.clone();
        let built = crate::images::build_images(
            site,
            &self.image_options(),
            Arc::new(move |service: &str, event: BuildEvent| {
                let service = if service.is_empty() {
                    "seed".to_string()
                } else {
                    format!("image_{service}")
                };
                let key = format!("image:{service}");
                let status = |text: String| {
                    progress(Progress::Status {
                        key: key.clone(),
                        text,
                    })
                };
                let done = |text: String| {
                    progress(Progress::Done {
                        key: key.clone(),
                        text,
                    })
                };
                match event {
                    BuildEvent::Pulling(i) => status(format!("  {service}: pulling {i}")),
                    BuildEvent::ContainerReady(c) => {
                        if verbose {
                            progress(Progress::Line(format!("  {service}: build container {c}")));
                        }
                        status(format!("  {service}: applying roles"));
                    }
                    BuildEvent::Task(t) => {
                        if verbose || t.status != TaskStatus::Ok {
                            progress(Progress::Line(format!("  {service}: {}", task_line(&t))));
                        }
                        status(format!("  {service}: {}: {}", t.role, t.task));
                    }
                    BuildEvent::Committed(i) => {
                        status(format!("  {service}: committed {i}, pushing"))
                    }
                    BuildEvent::Pushed(i) => done(format!("  {service}: pushed {i}")),
                    BuildEvent::Skipped(why) => done(format!("  {service}: skipped: {why}")),
                }
            }),
        )
        .await?;
        let mut changes = Vec::new();
        for (service, image) in &built {
            match image {
                Some(b) => {
                    let n = b.report.changed().len();
                    changes.extend(task_changes(&format!("image_{service}"), &b.report));
                    if b.new_image {
                        changes.push(Change::new("image", &b.latest, "commit and push"));
                    }
                    self.line(format!(
                        "  image_{service}: {} ({n} task(s) changed)",
                        b.latest
                    ));
                }
                None => self.line(format!(
                    "  image_{service}: pulled on this stage, not built"
                )),
            }
        }
        if built.is_empty() {
            self.line("build-images: no image to build");
        } else if changes.is_empty() {
            self.line("build-images: no change");
        }
        Ok(changes)
    }

    /// initialize-services with its report.
    pub(super) async fn initialize_services(&self) -> Result<Vec<Change>, Error> {
        let site = self.site;
        self.line(format!(
            "=== initialize-services: stage {}",
            site.stage().name
        ));
        let reports = crate::images::initialize_services(site, &self.image_options()).await?;
        let mut changes = Vec::new();
        for (service, report) in &reports {
            let n = report.changed().len();
            changes.extend(task_changes(service, report));
            self.line(format!("  {service}: {n} task(s) changed"));
        }
        if reports.is_empty() {
            self.line("initialize-services: no service has initialize_roles");
        } else if changes.is_empty() {
            self.line("initialize-services: no change");
        }
        Ok(changes)
    }

    /// build-volumes with its report.
    pub(super) async fn build_volumes(&self) -> Result<Vec<Change>, Error> {
        let site = self.site;
        self.line(format!("=== build-volumes: stage {}", site.stage().name));
        let options = VolumeOptions {
            limit: self.options.limit.clone(),
            exclude: self.options.exclude.clone(),
            swarm: SwarmOptions {
                limit: Vec::new(),
                ..self.swarm_options()
            },
        };
        let report = crate::volumes::build_volumes(site, &options).await?;
        for r in &report.drbd {
            self.line(r.to_string().trim_end());
        }
        for p in &report.pending {
            self.line(p.to_string().trim_end());
        }
        for l in swarm_report_lines("build-volumes (driver volumes)", &report.driver) {
            self.line(l);
        }
        let n = report.changes();
        self.line(format!(
            "build-volumes: {}",
            if n == 0 {
                "no change".to_string()
            } else {
                format!("{n} change(s)")
            }
        ));
        Ok(volumes_changes(&report))
    }

    /// build-networks with its report.
    pub(super) async fn build_networks(&self) -> Result<Vec<Change>, Error> {
        let site = self.site;
        self.line(format!("=== build-networks: stage {}", site.stage().name));
        let report = crate::swarm::build_networks(site, &self.swarm_options()).await?;
        for l in swarm_report_lines("build-networks", &report) {
            self.line(l);
        }
        Ok(swarm_changes(&report))
    }

    /// deploy-services with its progress.
    pub(super) async fn deploy_services(&self) -> Result<Vec<Change>, Error> {
        let site = self.site;
        self.line(format!("=== deploy-services: stage {}", site.stage().name));
        let verbose = self.options.verbose;
        let progress = self.progress.clone();
        let report = crate::swarm::deploy_services(site, &self.swarm_options(), move |event| {
            let status = |service: &str, text: String| {
                progress(Progress::Status {
                    key: format!("service:{service}"),
                    text,
                })
            };
            match event {
                DeployEvent::Pulled { hive, image } if verbose => {
                    progress(Progress::Line(format!("  pulled {image} on {hive}")));
                }
                DeployEvent::Applied { service, change } => {
                    status(&service, format!("  service {service}: {change}"));
                }
                DeployEvent::Progress {
                    service,
                    running,
                    desired,
                } => status(
                    &service,
                    format!("  service {service}: {running}/{desired} tasks running"),
                ),
                DeployEvent::Converged { service } => progress(Progress::Done {
                    key: format!("service:{service}"),
                    text: format!("  service {service}: converged"),
                }),
                _ => {}
            }
        })
        .await;
        self.forget("service:");
        let report = report?;
        for l in swarm_report_lines("deploy-services", &report) {
            self.line(l);
        }
        let mut changes = swarm_changes(&report);
        // The services' backup definitions on the repository server (the
        // original's service-backup).
        let o = &self.options;
        let backups =
            crate::backup::install_definitions(site, &o.limit, o.destroy, o.check).await?;
        for c in &backups {
            self.line(format!(
                "  backup definitions of {}: {}{}",
                c.resource,
                c.action,
                if o.check { " (would be made)" } else { "" }
            ));
        }
        changes.extend(backups);
        Ok(changes)
    }
}
