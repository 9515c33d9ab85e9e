//! `hive setup-hosts`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use hive_phases::Phase;
use hive_phases::plan::{Change, setup_hosts_changes};
use hive_phases::setup::SetupOptions;
use hive_phases::setup_hosts::{SetupEvent, StepTag};
use hive_phases::site::StageSite;

use super::{Globals, progress};

/// Options of `hive setup-hosts`.
#[derive(Args, Debug)]
pub struct SetupHostsArgs {
    /// Only these steps: base, pki, docker, swarm, registry, firewall, drbd, logs, addon (comma separated).
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
    let site = StageSite::new(&project)?;
    let options = SetupOptions {
        tags: args.tags.clone(),
        limit: args.limit.clone(),
        check: args.check,
        temp_dir: globals.temp_dir.clone(),
    };
    super::run::phase_command(
        globals,
        &project,
        Phase::SetupHosts,
        args.check,
        false,
        || super::runtime()?.block_on(run_setup_hosts(&site, &options)),
    )
}

/// setup-hosts with its report; returns what changed (or would change).
pub async fn run_setup_hosts(site: &StageSite<'_>, options: &SetupOptions) -> Result<Vec<Change>> {
    outln!("=== setup-hosts: stage {}", site.stage().name);
    let check = options.check;
    let shown = std::sync::Arc::new(move |event: &SetupEvent| match event {
        SetupEvent::StepStarted { step, hosts } => {
            for h in hosts {
                progress::status(&format!("setup:{h}"), format!("  {h}: {step}"));
            }
        }
        SetupEvent::StepDone {
            step,
            host,
            changes,
            failed,
        } => {
            let key = format!("setup:{host}");
            match failed {
                Some(e) => progress::done(&key, &format!("  {host}: {step} FAILED: {e}")),
                None if *changes > 0 => progress::line(&format!(
                    "  {host}: {step}: {changes} change(s){}",
                    if check { " would be made" } else { "" }
                )),
                None => {}
            }
        }
    });
    let report = hive_phases::setup::setup_hosts_with_progress(site, options, Some(shown)).await;
    progress::forget("setup:");
    let report = report?;
    outln!("{report}");
    for (step, took) in &report.step_times {
        outln!("  {step}: {:.1}s", took.as_secs_f64());
    }
    let failed: Vec<String> = report.failed().map(|h| h.host.clone()).collect();
    if !failed.is_empty() {
        bail!(
            "setup-hosts failed on {}; the other servers finished, re-run to complete the work",
            failed.join(", ")
        );
    }
    Ok(setup_hosts_changes(&report))
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
