//! `hive build-networks` and `hive deploy-services`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use hive_phases::Phase;
use hive_phases::orchestrate::PhaseOptions;

use super::{Globals, ServiceSelection};

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
    #[command(flatten)]
    pub services: ServiceSelection,
    /// Remove the services instead of deploying them (networks stay).
    #[arg(short = 'D', long = "destroy")]
    pub destroy: bool,
    /// Seconds to wait for every service to have its tasks running.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

/// `hive build-networks`.
pub fn build_networks(globals: &Globals, args: &BuildNetworksArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let opts = super::run::phase_options(globals, args.check);
    super::run::phase_command(globals, &project, Phase::BuildNetworks, opts)
}

/// `hive deploy-services`.
pub fn deploy_services(globals: &Globals, args: &DeployServicesArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let opts = PhaseOptions {
        limit: args.services.limit.clone(),
        destroy: args.destroy,
        timeout: Duration::from_secs(args.timeout),
        ..super::run::phase_options(globals, args.services.check)
    };
    super::run::phase_command(globals, &project, Phase::DeployServices, opts)
}
