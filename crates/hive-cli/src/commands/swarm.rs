//! `hive build-networks` and `hive deploy-services`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hive_phases::Phase;
use hive_phases::plan::{Change, swarm_changes};
use hive_phases::site::StageSite;
use hive_phases::swarm::SwarmOptions;
use hive_swarm::{DeployEvent, Report};

use super::{Globals, progress};

/// Options of `hive build-networks`.
#[derive(Args, Debug)]
pub struct BuildNetworksArgs {
    /// Check mode: print what would change and change nothing.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
}

/// Options of `hive deploy-services`.
#[derive(Args, Debug)]
pub struct DeployServicesArgs {
    /// Only these services (comma separated, or repeat the option).
    #[arg(
        short = 'l',
        long = "limit",
        value_delimiter = ',',
        value_name = "SERVICE"
    )]
    pub limit: Vec<String>,
    /// Remove the services instead of deploying them (networks stay).
    #[arg(short = 'D', long = "destroy")]
    pub destroy: bool,
    /// Check mode: print what would change and change nothing.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// Seconds to wait for every service to have its tasks running.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

/// Print a swarm report, one line per resource, and "no change" when so.
pub fn print_report(phase: &str, report: &Report) -> Result<()> {
    for r in &report.resources {
        let on = r
            .hive
            .as_ref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        let verb = if report.check { "would be " } else { "" };
        if r.change.is_change() {
            outln!("  {:?} {}{on}: {verb}{}", r.kind, r.name, r.change);
        } else {
            outln!("  {:?} {}{on}: {}", r.kind, r.name, r.change);
        }
    }
    let n = report
        .resources
        .iter()
        .filter(|r| r.change.is_change())
        .count();
    if n == 0 {
        outln!("{phase}: no change");
    } else if report.check {
        outln!("{phase}: {n} change(s) would be made (check mode, nothing changed)");
    } else {
        outln!("{phase}: {n} change(s)");
    }
    Ok(())
}

/// The swarm options every swarm phase starts from.
pub fn options(globals: &Globals) -> SwarmOptions {
    SwarmOptions {
        temp_dir: globals.temp_dir.clone(),
        ..Default::default()
    }
}

/// `hive build-networks`.
pub fn build_networks(globals: &Globals, args: &BuildNetworksArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    let opts = SwarmOptions {
        check: args.check,
        ..options(globals)
    };
    super::run::phase_command(
        globals,
        &project,
        Phase::BuildNetworks,
        args.check,
        false,
        || super::runtime()?.block_on(run_build_networks(&site, &opts)),
    )
}

/// build-networks with its output; returns what changed.
pub async fn run_build_networks(site: &StageSite<'_>, opts: &SwarmOptions) -> Result<Vec<Change>> {
    outln!("=== build-networks: stage {}", site.stage().name);
    let report = hive_phases::swarm::build_networks(site, opts).await?;
    print_report("build-networks", &report)?;
    Ok(swarm_changes(&report))
}

/// `hive deploy-services`.
pub fn deploy_services(globals: &Globals, args: &DeployServicesArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    let opts = SwarmOptions {
        limit: args.limit.clone(),
        destroy: args.destroy,
        check: args.check,
        timeout: Duration::from_secs(args.timeout),
        ..options(globals)
    };
    let verbose = globals.verbose;
    super::run::phase_command(
        globals,
        &project,
        Phase::DeployServices,
        args.check,
        args.destroy,
        || super::runtime()?.block_on(run_deploy_services(&site, &opts, verbose)),
    )
}

/// deploy-services with its progress output; returns what changed.
pub async fn run_deploy_services(
    site: &StageSite<'_>,
    opts: &SwarmOptions,
    verbose: bool,
) -> Result<Vec<Change>> {
    outln!("=== deploy-services: stage {}", site.stage().name);
    let report = hive_phases::swarm::deploy_services(site, opts, move |event| match event {
        DeployEvent::Pulled { hive, image } if verbose => {
            progress::line(&format!("  pulled {image} on {hive}"));
        }
        DeployEvent::Applied { service, change } => {
            progress::status(
                &format!("service:{service}"),
                format!("  service {service}: {change}"),
            );
        }
        DeployEvent::Progress {
            service,
            running,
            desired,
        } => progress::status(
            &format!("service:{service}"),
            format!("  service {service}: {running}/{desired} tasks running"),
        ),
        DeployEvent::Converged { service } => progress::done(
            &format!("service:{service}"),
            &format!("  service {service}: converged"),
        ),
        _ => {}
    })
    .await;
    progress::forget("service:");
    let report = report?;
    print_report("deploy-services", &report)?;
    Ok(swarm_changes(&report))
}
