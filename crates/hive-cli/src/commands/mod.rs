//! The `hive` subcommands, one module per command group.
//!
//! To add a command: add a variant to [`Command`] (its arguments as a
//! `clap::Args` struct in your module) and one arm to [`dispatch`].

/// Like `println!`, but a closed stdout pipe ends the command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::out(&format!($($arg)*))?
    };
}

mod all;
mod backup;
mod completion;
mod images;
mod infra;
mod inventory;
pub mod logging;
mod progress;
mod project;
mod run;
mod setup;
mod status;
mod swarm;
mod template;
mod volumes;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hive_inventory::{Persistents, Project, ProjectLoader, StageName};

use crate::Cli;

/// The services a command acts on (`-l`), and its check mode (`-C`).
#[derive(Args, Debug)]
pub struct ServiceSelection {
    /// Only these services (comma separated, or repeat the option).
    #[arg(
        short = 'l',
        long = "limit",
        value_delimiter = ',',
        value_name = "SERVICE"
    )]
    pub limit: Vec<String>,
    /// Check mode: print what would change and change nothing.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
}

/// Every `hive` subcommand.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a project: in a directory without an inventory, write a starter project (a stage, one service whose image a role builds, the role, group variables) and .hive/; in a project, create .hive/.
    Init(project::InitArgs),
    /// Save a hive variable persistently in .hive/persistents.yml (per stage or global, as the variable requires).
    Set(project::SetArgs),
    /// Print the inventory as JSON, in the shape of `ansible-inventory --list`.
    Inventory,
    /// Print the servers of the stage, space separated.
    ListHosts,
    /// Print the services, space separated.
    ListServices,
    /// Print the volumes mounted by services, space separated.
    ListVolumes,
    /// Validate the whole project and print every problem (exit status 1 if any).
    Check,
    /// Print a shell completion script.
    Completion(completion::CompletionArgs),
    /// Print a host's merged variables, rendered as Ansible would (--raw: as written).
    Vars(template::VarsArgs),
    /// Render one template with a host's variables (what `ansible -m debug` is used for).
    Render(template::RenderArgs),
    /// Run every phase from the stage's start_phase (-S to choose), concurrently where the phase graph allows.
    All(all::AllArgs),
    /// Phase build-infra: create the servers of the stage, wait for SSH, write `.hive/<stage>/ssh_config`.
    BuildInfra(infra::BuildInfraArgs),
    /// Phase setup-hosts: configure every server (packages, Docker with TLS, swarm, registry, firewall, DRBD, logs, backup).
    SetupHosts(setup::SetupHostsArgs),
    /// Log in to a server of the stage with the system ssh (default: the repository server).
    Ssh(infra::SshArgs),
    /// Phase build-networks: create the stage's overlay networks (hive_default_network always).
    BuildNetworks(swarm::BuildNetworksArgs),
    /// Phase build-images: build the services' images by applying roles, push them to the site registry (with -C the roles run in check mode: nothing is committed or pushed).
    BuildImages(images::BuildImagesArgs),
    /// Phase initialize-services: apply each service's initialize_roles inside a running task (with -C in check mode).
    InitializeServices(images::InitializeServicesArgs),
    /// The site registry.
    #[command(subcommand)]
    Registry(setup::RegistryCommand),
    /// Images of the site registry.
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// Phase build-volumes: DRBD-replicated volumes, and volumes with a driver, on every hive.
    BuildVolumes(volumes::BuildVolumesArgs),
    /// DRBD-replicated volumes of the stage.
    #[command(subcommand)]
    Volumes(volumes::VolumesCommand),
    /// Phase deploy-services: create or update the stage's services and wait until they run.
    DeployServices(swarm::DeployServicesArgs),
    /// Show the journal of the stage: every phase run, its result and changes.
    History(run::HistoryArgs),
    /// The site as it is: servers (reachable, Docker, swarm, disk), services (tasks against the inventory, where, image, last error, endpoints), volumes, the registry, the last runs (exit status 1 when something is unhealthy).
    Status(status::StatusArgs),
    /// A service's log, as collected on the repository server (/var/log/services/SERVICE.log).
    Logs(status::LogsArgs),
    /// Back up the services with backup_scripts and the site registry now, into ~/backup of the repository server's admin (as the daily 01:00 run does), and copy each new backup to `.hive/<stage>/backups/` on this machine (mode 0600), where it outlives the servers: `build-infra -D` removes the repository server with its ~/backup, never this copy. --list shows both places; in -l, `hive-registry` is the site registry.
    Backup(backup::BackupArgs),
    /// Restore services from their latest backups (or --from TIMESTAMP): a backup the repository server lacks (a rebuilt site) is sent there from `.hive/<stage>/backups/` first. Refused while a service has no running container; the backup restored from is never deleted.
    Restore(backup::RestoreArgs),
}

/// Runs a command.
pub fn dispatch(command: Command, globals: &Globals) -> Result<ExitCode> {
    match command {
        Command::Init(args) => project::init(globals, &args),
        Command::Set(args) => project::set(globals, &args),
        Command::Inventory => inventory::inventory(globals),
        Command::ListHosts => inventory::list_hosts(globals),
        Command::ListServices => inventory::list_services(globals),
        Command::ListVolumes => inventory::list_volumes(globals),
        Command::Check => inventory::check(globals),
        Command::Completion(args) => completion::completion(&args),
        Command::Vars(args) => template::vars(globals, &args),
        Command::Render(args) => template::render(globals, &args),
        Command::All(args) => all::all(globals, &args),
        Command::BuildInfra(args) => infra::build_infra(globals, &args),
        Command::SetupHosts(args) => setup::setup_hosts(globals, &args),
        Command::Ssh(args) => infra::ssh(globals, &args),
        Command::BuildNetworks(args) => swarm::build_networks(globals, &args),
        Command::BuildImages(args) => images::build_images(globals, &args),
        Command::InitializeServices(args) => images::initialize_services(globals, &args),
        Command::Image(cmd) => images::image(globals, &cmd),
        Command::Registry(cmd) => setup::registry(globals, &cmd),
        Command::BuildVolumes(args) => volumes::build_volumes(globals, &args),
        Command::Volumes(cmd) => volumes::volumes(globals, &cmd),
        Command::DeployServices(args) => swarm::deploy_services(globals, &args),
        Command::History(args) => run::history(globals, &args),
        Command::Status(args) => status::status(globals, &args),
        Command::Logs(args) => status::logs(globals, &args),
        Command::Backup(args) => backup::backup(globals, &args),
        Command::Restore(args) => backup::restore(globals, &args),
    }
}

/// The global options, resolved.
#[derive(Debug, Clone)]
pub struct Globals {
    /// Project root.
    pub root_dir: PathBuf,
    /// Stage given with -s, if any.
    pub stage: Option<StageName>,
    /// Inventory path given with -i, if any.
    pub inventory_path: Option<PathBuf>,
    /// Context directory given with -c, if any.
    pub context_dir: Option<PathBuf>,
    /// Temporary directory (for the phase commands).
    pub temp_dir: PathBuf,
    /// Verbose output.
    pub verbose: bool,
    /// Take over a stale stage lock.
    pub force_unlock: bool,
    /// Output format (`--output`).
    pub output: Output,
    /// `--detailed-exitcode`: a plan with changes exits 2.
    pub detailed_exitcode: bool,
}

/// Output formats (`--output`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Output {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON document on standard output: the changes (or, with -C,
    /// the plan) of phase commands and `hive all`, the journal for
    /// `hive history`; the progress lines go to standard error.
    Json,
}

impl Globals {
    /// Resolves the global options of the command line.
    pub fn from_cli(cli: &Cli) -> Globals {
        Globals {
            root_dir: cli.root_dir.clone().unwrap_or_else(|| PathBuf::from(".")),
            stage: cli.stage.map(StageName::from),
            inventory_path: cli.inventory_path.clone(),
            context_dir: cli.context_dir.clone(),
            temp_dir: cli
                .temp_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/var/tmp/hive")),
            verbose: cli.verbose > 0,
            force_unlock: cli.force_unlock,
            output: cli.output,
            detailed_exitcode: cli.detailed_exitcode,
        }
    }

    /// The project loader configured by the global options (the
    /// providers of [`install_providers`]).
    pub fn loader(&self) -> ProjectLoader {
        let mut loader = ProjectLoader::new(&self.root_dir)
            .providers(hive_provider::ProviderRegistry::installed().names());
        if let Some(s) = self.stage {
            loader = loader.stage(s);
        }
        if let Some(i) = &self.inventory_path {
            loader = loader.inventory(i);
        }
        if let Some(c) = &self.context_dir {
            loader = loader.context_dir(c);
        }
        loader
    }

    /// Loads and validates the project; every problem becomes part of the error.
    pub fn load(&self) -> Result<Project> {
        let project = self.loader().load()?;
        if self.verbose {
            eprintln!(
                "loaded {} (stage {}, inventory {})",
                project.root_dir().display(),
                project.stage(),
                project.inventory_path().display()
            );
        }
        for w in project.warnings() {
            eprintln!("warning: {w}");
        }
        Ok(project)
    }

    /// The current stage: -s, else the saved `stage`, else private.
    pub fn current_stage(&self) -> Result<StageName> {
        if let Some(s) = self.stage {
            return Ok(s);
        }
        let p = Persistents::load(&self.root_dir)?;
        match p.get("stage", "global").and_then(|v| v.as_str()) {
            Some(s) => s
                .parse()
                .map_err(|e: String| anyhow::anyhow!(e))
                .with_context(|| format!("stage saved in {}", p.path().display())),
            None => Ok(StageName::Private),
        }
    }
}

/// A runtime for the commands that talk to servers.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Set when standard output carries a JSON document: lines for people go
/// to standard error instead.
static TEXT_TO_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, [`out`] writes to standard error (standard output is kept
/// for the JSON document of `--output json`).
pub fn text_to_stderr() {
    TEXT_TO_STDERR.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Prints a line for people: to stdout, or to stderr when stdout carries a
/// JSON document; a closed pipe (`hive inventory | head`) is not an error.
pub fn out(line: &str) -> Result<()> {
    if TEXT_TO_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
        progress::line(line);
        return Ok(());
    }
    out_stdout(line)
}

/// Prints a line to stdout; a closed pipe is not an error.
pub fn out_stdout(line: &str) -> Result<()> {
    use std::io::Write;
    progress::around_stdout(|| {
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    })
}

/// Prints an error to stderr, one line per problem.
pub fn report_error(e: &anyhow::Error) {
    if let Some(errors) = e.downcast_ref::<hive_inventory::Errors>() {
        for problem in errors {
            eprintln!("error: {problem}");
        }
        eprintln!(
            "hive: {} problem{} found",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return;
    }
    eprintln!("error: {e:#}");
}

/// The providers `hive` offers: the built-in ones and aws
/// (`hive_aws`), installed for the process so that every phase finds them.
pub fn install_providers() {
    let mut registry = hive_provider::ProviderRegistry::builtin();
    hive_aws::register(&mut registry);
    hive_azure::register(&mut registry);
    hive_gcp::register(&mut registry);
    registry.install();
}
