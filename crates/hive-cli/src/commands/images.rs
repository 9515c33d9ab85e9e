//! `hive build-images`, `hive initialize-services` and `hive image push`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use hive_phases::Phase;
use hive_phases::orchestrate::PhaseOptions;
use hive_phases::site::StageSite;

use super::{Globals, ServiceSelection};

/// Options of `hive build-images`.
#[derive(Args, Debug)]
pub struct BuildImagesArgs {
    #[command(flatten)]
    pub services: ServiceSelection,
    /// Start from a fresh build container instead of reusing the last one.
    #[arg(long)]
    pub rebuild: bool,
}

/// Options of `hive initialize-services`.
#[derive(Args, Debug)]
pub struct InitializeServicesArgs {
    #[command(flatten)]
    pub services: ServiceSelection,
}

/// `hive image ...`.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Copy an image of this machine's Docker engine into the site registry
    /// (for sites without Docker Hub; point tag-mapping.json at the result).
    Push {
        /// The local image, e.g. hive-test/debian:bookworm.
        local: String,
        /// Name in the site registry (default: the local name without its registry).
        name: Option<String>,
    },
}

fn options(globals: &Globals, services: &ServiceSelection, rebuild: bool) -> PhaseOptions {
    PhaseOptions {
        limit: services.limit.clone(),
        rebuild,
        ..super::run::phase_options(globals, services.check)
    }
}

/// `hive build-images`.
pub fn build_images(globals: &Globals, args: &BuildImagesArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let opts = options(globals, &args.services, args.rebuild);
    super::run::phase_command(globals, &project, Phase::BuildImages, opts)
}

/// `hive initialize-services`.
pub fn initialize_services(globals: &Globals, args: &InitializeServicesArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let opts = options(globals, &args.services, false);
    super::run::phase_command(globals, &project, Phase::InitializeServices, opts)
}

/// `hive image ...`.
pub fn image(globals: &Globals, command: &ImageCommand) -> Result<ExitCode> {
    match command {
        ImageCommand::Push { local, name } => {
            let project = globals.load()?;
            let site = StageSite::new(&project)?;
            let pushed = super::runtime()?.block_on(hive_phases::images::push_local_image(
                &site,
                local,
                name.as_deref(),
                &globals.temp_dir,
            ))?;
            outln!("pushed {local} as {pushed}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
