//! `hive setup-hosts`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use hive_phases::Phase;
use hive_phases::orchestrate::PhaseOptions;
use hive_phases::setup_hosts::StepTag;
use hive_phases::site::StageSite;

use super::Globals;

/// Options of `hive setup-hosts`.
#[derive(Args, Debug)]
pub struct SetupHostsArgs {
    /// Only these steps: base, pki, docker, swarm, registry, firewall, drbd, logs, backup, addon (comma separated).
    #[arg(short = 'T', long = "tags", value_delimiter = ',', value_name = "STEP", value_parser = parse_tag)]
    pub tags: Vec<StepTag>,
    /// Only these servers (comma separated).
    #[arg(
        short = 'l',
        long = "limit",
        value_delimiter = ',',
        value_name = "SERVER"
    )]
    pub limit: Vec<String>,
    /// Check mode: print what would change on each server and change nothing.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
}

fn parse_tag(s: &str) -> Result<StepTag, String> {
    s.parse::<StepTag>().map_err(|e| e.to_string())
}

/// `hive setup-hosts`.
pub fn setup_hosts(globals: &Globals, args: &SetupHostsArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let options = PhaseOptions {
        tags: args.tags.clone(),
        limit: args.limit.clone(),
        ..super::run::phase_options(globals, args.check)
    };
    super::run::phase_command(globals, &project, Phase::SetupHosts, options)
}

/// `hive registry ...`.
#[derive(clap::Subcommand, Debug)]
pub enum RegistryCommand {
    /// Run the registry's garbage collector on the repository server
    /// (removes blobs no image refers to any more).
    Gc,
}

/// `hive registry ...`.
pub fn registry(globals: &Globals, command: &RegistryCommand) -> Result<ExitCode> {
    match command {
        RegistryCommand::Gc => {
            let project = globals.load()?;
            let site = StageSite::new(&project)?;
            let out = super::runtime()?.block_on(hive_phases::setup::registry_gc(&site))?;
            let count = |word: &str| {
                out.lines()
                    .filter(|l| l.to_ascii_lowercase().contains(word))
                    .count()
            };
            let (marked, deleted) = (count("marking blob"), count("deleting blob"));
            if globals.verbose {
                outln!("{}", out.trim_end());
            }
            outln!("registry gc: {marked} blob(s) in use, {deleted} deleted");
            Ok(ExitCode::SUCCESS)
        }
    }
}
