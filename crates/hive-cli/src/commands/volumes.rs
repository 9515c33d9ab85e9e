//! `hive build-volumes`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use hive_phases::Phase;
use hive_phases::plan::{Change, volumes_changes};
use hive_phases::site::StageSite;
use hive_phases::volumes::VolumeOptions;

use super::Globals;

/// Options of `hive build-volumes`.
#[derive(Args, Debug)]
pub struct BuildVolumesArgs {
    /// Only these DRBD volumes (comma separated).
    #[arg(
        short = 'l',
        long = "limit",
        value_delimiter = ',',
        value_name = "VOLUME"
    )]
    pub limit: Vec<String>,
    /// Leave this server out (e.g. while it is being replaced).
    #[arg(
        short = 'x',
        long = "exclude",
        value_delimiter = ',',
        value_name = "SERVER"
    )]
    pub exclude: Vec<String>,
    /// Remove the volumes instead of building them.
    #[arg(short = 'D', long = "destroy")]
    pub destroy: bool,
    /// Check mode: print the steps that would run and change nothing.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
}

/// `hive build-volumes`.
pub fn build_volumes(globals: &Globals, args: &BuildVolumesArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    let options = VolumeOptions {
        limit: args.limit.clone(),
        exclude: args.exclude.clone(),
        swarm: hive_phases::swarm::SwarmOptions {
            destroy: args.destroy,
            check: args.check,
            ..super::swarm::options(globals)
        },
    };
    super::run::phase_command(
        globals,
        &project,
        Phase::BuildVolumes,
        args.check,
        args.destroy,
        || super::runtime()?.block_on(run_build_volumes(&site, &options)),
    )
}

/// build-volumes with its report; returns what changed.
pub async fn run_build_volumes(
    site: &StageSite<'_>,
    options: &VolumeOptions,
) -> Result<Vec<Change>> {
    outln!("=== build-volumes: stage {}", site.stage().name);
    let report = hive_phases::volumes::build_volumes(site, options).await?;
    for r in &report.drbd {
        outln!("{}", r.to_string().trim_end());
    }
    for p in &report.pending {
        outln!("{}", p.to_string().trim_end());
    }
    super::swarm::print_report("build-volumes (driver volumes)", &report.driver)?;
    let n = report.changes();
    outln!(
        "build-volumes: {}",
        if n == 0 {
            "no change".to_string()
        } else {
            format!("{n} change(s)")
        }
    );
    Ok(volumes_changes(&report))
}
