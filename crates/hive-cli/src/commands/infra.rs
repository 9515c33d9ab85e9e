//! `hive build-infra` and `hive ssh`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use hive_phases::Phase;
use hive_phases::orchestrate::PhaseOptions;
use hive_phases::site::StageSite;
use hive_provider::{ProviderReport, SshCommandOptions};

use super::Globals;

/// Options of `hive build-infra`.
#[derive(Args, Debug)]
pub struct BuildInfraArgs {
    /// Halt (stop) the servers of the stage instead of building them.
    #[arg(short = 'H', long, conflicts_with = "destroy")]
    pub halt: bool,
    /// Destroy the servers of the stage (asks for confirmation unless --yes).
    #[arg(short = 'D', long)]
    pub destroy: bool,
    /// Do not ask for confirmation before destroying.
    #[arg(long)]
    pub yes: bool,
    /// Seconds to wait for each server to answer on SSH.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub ssh_wait: u64,
    /// Build the provider's resources and record the servers in the
    /// stage's ssh_config without waiting for them on SSH (no host key
    /// pinned); a later build-infra reaches them.
    #[arg(long, conflicts_with_all = ["halt", "destroy"])]
    pub skip_ssh_wait: bool,
    /// Only these servers (comma separated): build and reach them, keep the
    /// others' entries in ssh_config. Not with -H/-D, which act on the whole stage.
    #[arg(
        short = 'l',
        long = "limit",
        value_delimiter = ',',
        value_name = "SERVER",
        conflicts_with_all = ["halt", "destroy"]
    )]
    pub limit: Vec<String>,
    /// Check mode: print which servers (or, for kickstart, which files) would be created and change nothing.
    #[arg(short = 'C', long = "check", conflicts_with_all = ["halt", "destroy"])]
    pub check: bool,
}

/// Options of `hive ssh`.
#[derive(Args, Debug)]
pub struct SshArgs {
    /// Server to log in to (default: the repository server).
    #[arg(short = 't', long = "target", value_name = "HOST")]
    pub host: Option<String>,
    /// Port forwarding passed to ssh -L, e.g. 8080:localhost:80.
    #[arg(short = 'L', long = "port-forwarding", value_name = "SPEC")]
    pub forward: Option<String>,
    /// Forward the Zabbix web console to localhost (port set by -Z).
    #[arg(short = 'z', long = "forward-zabbix")]
    pub zabbix: bool,
    /// Local port of the Zabbix web console forwarding.
    #[arg(short = 'Z', long = "forward-zabbix-port", default_value_t = 10052)]
    pub zabbix_port: u16,
    /// Print the ssh command line instead of running it.
    #[arg(long)]
    pub print: bool,
    /// A command to run on the server instead of a login shell (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn print_report(what: &str, report: &ProviderReport) -> Result<()> {
    for (name, change) in report.servers.iter().chain(report.resources.iter()) {
        outln!("  {name}: {change}");
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if !report.changed() {
        outln!("{what}: no change");
    }
    Ok(())
}

fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the answer from standard input")?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// `hive build-infra`.
pub fn build_infra(globals: &Globals, args: &BuildInfraArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    if args.halt || args.destroy {
        let site = StageSite::new(&project)?;
        let spec = site.provider_stage()?;
        // Halting or destroying while another run works on the stage would
        // pull the servers from under it.
        let _lock = super::run::lock(globals, &project)?;
        return halt_or_destroy(&project, &spec, args, &super::runtime()?);
    }
    let options = PhaseOptions {
        ssh_wait: std::time::Duration::from_secs(args.ssh_wait),
        skip_ssh_wait: args.skip_ssh_wait,
        limit: args.limit.clone(),
        ..super::run::phase_options(globals, args.check)
    };
    super::run::phase_command(globals, &project, Phase::BuildInfra, options)
}

/// `build-infra -H` and `build-infra -D`.
fn halt_or_destroy(
    project: &hive_inventory::Project,
    spec: &hive_provider::StageSpec,
    args: &BuildInfraArgs,
    rt: &tokio::runtime::Runtime,
) -> Result<ExitCode> {
    let provider = hive_provider::provider_for(spec)?;
    let stage = &spec.stage;
    if args.halt {
        outln!("=== build-infra -H: halting the servers of stage {stage}");
        let report = rt.block_on(hive_provider::halt_infra(provider.as_ref(), spec))?;
        print_report("build-infra -H", &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes
        && !confirm(&format!(
            "destroy every server of stage {stage} of {} ({} servers)?",
            spec.site,
            spec.servers.len()
        ))?
    {
        bail!("not destroyed: the answer was not yes");
    }
    outln!("=== build-infra -D: destroying the servers of stage {stage}");
    let report = rt.block_on(hive_provider::destroy_infra(provider.as_ref(), spec))?;
    print_report("build-infra -D", &report)?;
    // The next `hive all` builds the stage from its first phase again.
    hive_phases::state::save_start_phase(
        project.root_dir(),
        project.stage().as_str(),
        Phase::BuildInfra,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `hive ssh`.
pub fn ssh(globals: &Globals, args: &SshArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let options = SshCommandOptions {
        host: args.host.clone(),
        forward: args.forward.clone(),
        zabbix: args.zabbix,
        zabbix_port: args.zabbix_port,
        ..Default::default()
    };
    let mut argv = hive_provider::ssh_command(project.context_dir(), &options)?;
    argv.extend(args.command.iter().cloned());
    if args.print {
        outln!("{}", argv.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    let status = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .with_context(|| format!("cannot run {}", argv[0]))?;
    Ok(ExitCode::from(
        u8::try_from(status.code().unwrap_or(255)).unwrap_or(255),
    ))
}
