//! `hive build-images`, `hive initialize-services` and `hive image push`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Subcommand};
use hive_image::{BuildEvent, TaskStatus};
use hive_phases::Phase;
use hive_phases::images::ImageOptions;
use hive_phases::plan::{Change, task_changes};
use hive_phases::site::StageSite;

use super::{Globals, progress};

/// Options of `hive build-images`.
#[derive(Args, Debug)]
pub struct BuildImagesArgs {
    /// Only the images of these services (comma separated).
    #[arg(
        short = 'l',
        long = "limit",
        value_delimiter = ',',
        value_name = "SERVICE"
    )]
    pub limit: Vec<String>,
    /// Start from a fresh build container instead of reusing the last one.
    #[arg(long)]
    pub rebuild: bool,
    /// Check mode: report what the roles would change; nothing is committed or pushed.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
}

/// Options of `hive initialize-services`.
#[derive(Args, Debug)]
pub struct InitializeServicesArgs {
    /// Only these services (comma separated).
    #[arg(
        short = 'l',
        long = "limit",
        value_delimiter = ',',
        value_name = "SERVICE"
    )]
    pub limit: Vec<String>,
    /// Check mode: report what the roles would change, change nothing.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
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

fn options(globals: &Globals, limit: &[String], check: bool, rebuild: bool) -> ImageOptions {
    ImageOptions {
        limit: limit.to_vec(),
        rebuild,
        check,
        temp_dir: globals.temp_dir.clone(),
    }
}

/// `hive build-images`.
pub fn build_images(globals: &Globals, args: &BuildImagesArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    let opts = options(globals, &args.limit, args.check, args.rebuild);
    let verbose = globals.verbose;
    super::run::phase_command(
        globals,
        &project,
        Phase::BuildImages,
        args.check,
        false,
        || super::runtime()?.block_on(run_build_images(&site, &opts, verbose)),
    )
}

/// build-images with its progress; returns the changed tasks.
pub async fn run_build_images(
    site: &StageSite<'_>,
    opts: &ImageOptions,
    verbose: bool,
) -> Result<Vec<Change>> {
    outln!("=== build-images: stage {}", site.stage().name);
    let built = hive_phases::images::build_images(
        site,
        opts,
        Arc::new(move |service: &str, event: BuildEvent| {
            let service = if service.is_empty() {
                "seed".to_string()
            } else {
                format!("image_{service}")
            };
            let key = format!("image:{service}");
            match event {
                BuildEvent::Pulling(i) => {
                    progress::status(&key, format!("  {service}: pulling {i}"))
                }
                BuildEvent::ContainerReady(c) => {
                    if verbose {
                        progress::line(&format!("  {service}: build container {c}"));
                    }
                    progress::status(&key, format!("  {service}: applying roles"));
                }
                BuildEvent::Task(t) => {
                    if verbose || t.status != TaskStatus::Ok {
                        progress::line(&format!("  {service}: {}", task_line(&t)));
                    }
                    progress::status(&key, format!("  {service}: {}: {}", t.role, t.task));
                }
                BuildEvent::Committed(i) => {
                    progress::status(&key, format!("  {service}: committed {i}, pushing"))
                }
                BuildEvent::Pushed(i) => progress::done(&key, &format!("  {service}: pushed {i}")),
                BuildEvent::Skipped(why) => {
                    progress::done(&key, &format!("  {service}: skipped: {why}"))
                }
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
                outln!("  image_{service}: {} ({n} task(s) changed)", b.latest);
            }
            None => outln!("  image_{service}: pulled on this stage, not built"),
        }
    }
    if built.is_empty() {
        outln!("build-images: no image to build");
    } else if changes.is_empty() {
        outln!("build-images: no change");
    }
    Ok(changes)
}

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

/// `hive initialize-services`.
pub fn initialize_services(globals: &Globals, args: &InitializeServicesArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    let opts = options(globals, &args.limit, args.check, false);
    super::run::phase_command(
        globals,
        &project,
        Phase::InitializeServices,
        args.check,
        false,
        || super::runtime()?.block_on(run_initialize_services(&site, &opts)),
    )
}

/// initialize-services with its report; returns the changed tasks.
pub async fn run_initialize_services(
    site: &StageSite<'_>,
    opts: &ImageOptions,
) -> Result<Vec<Change>> {
    outln!("=== initialize-services: stage {}", site.stage().name);
    let reports = hive_phases::images::initialize_services(site, opts).await?;
    let mut changes = Vec::new();
    for (service, report) in &reports {
        let n = report.changed().len();
        changes.extend(task_changes(service, report));
        outln!("  {service}: {n} task(s) changed");
    }
    if reports.is_empty() {
        outln!("initialize-services: no service has initialize_roles");
    } else if changes.is_empty() {
        outln!("initialize-services: no change");
    }
    Ok(changes)
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
