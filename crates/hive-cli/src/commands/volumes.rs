//! `hive build-volumes` and `hive volumes status`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use hive_phases::Phase;
use hive_phases::orchestrate::PhaseOptions;
use hive_phases::site::StageSite;

use super::Globals;

/// `-l VOLUME`, shared by build-volumes and `volumes status`.
#[derive(Args, Debug)]
pub struct VolumeLimit {
    /// Only these DRBD volumes (comma separated).
    #[arg(
        short = 'l',
        long = "limit",
        value_delimiter = ',',
        value_name = "VOLUME"
    )]
    pub limit: Vec<String>,
}

/// Options of `hive build-volumes`.
#[derive(Args, Debug)]
pub struct BuildVolumesArgs {
    #[command(flatten)]
    pub volumes: VolumeLimit,
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
    let options = PhaseOptions {
        limit: args.volumes.limit.clone(),
        exclude: args.exclude.clone(),
        destroy: args.destroy,
        ..super::run::phase_options(globals, args.check)
    };
    super::run::phase_command(globals, &project, Phase::BuildVolumes, options)
}

/// `hive volumes ...`.
#[derive(Subcommand, Debug)]
pub enum VolumesCommand {
    /// Role, disk state, peers and sync progress of each DRBD volume on
    /// each hive, read with `drbdsetup events2 --now` over SSH (exit
    /// status 1 when a volume is not healthy somewhere).
    Status(VolumesStatusArgs),
}

/// Options of `hive volumes status`.
#[derive(Args, Debug)]
pub struct VolumesStatusArgs {
    #[command(flatten)]
    pub volumes: VolumeLimit,
}

/// `hive volumes ...`.
pub fn volumes(globals: &Globals, command: &VolumesCommand) -> Result<ExitCode> {
    match command {
        VolumesCommand::Status(args) => volumes_status(globals, args),
    }
}

fn volumes_status(globals: &Globals, args: &VolumesStatusArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    let status = super::runtime()?.block_on(hive_phases::volumes::drbd_status(
        &site,
        &args.volumes.limit,
    ))?;
    let json = globals.output == super::Output::Json;
    let Some(status) = status else {
        if json {
            outln!("[]");
        } else {
            outln!("stage {} has no DRBD volumes", site.stage().name);
        }
        return Ok(ExitCode::SUCCESS);
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        for s in &status {
            outln!("{}", s.to_string().trim_end());
        }
        let unhealthy = status.iter().filter(|s| !s.healthy()).count();
        outln!(
            "volumes status: {} volume(s) on {} hive(s){}",
            status
                .iter()
                .map(|s| s.volume.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            status
                .iter()
                .map(|s| s.host.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            if unhealthy == 0 {
                ", all healthy".to_string()
            } else {
                format!(", {unhealthy} not healthy")
            }
        );
    }
    Ok(if status.iter().all(|s| s.healthy()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
