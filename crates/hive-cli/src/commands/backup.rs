//! `hive backup` and `hive restore`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use hive_phases::backup::{BackupListing, BackupReport};
use hive_phases::site::StageSite;

use super::{Globals, ServiceSelection};

/// Options of `hive backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    selection: ServiceSelection,
    /// List the backups on the repository server and on this machine
    /// instead of taking one.
    #[arg(long = "list", conflicts_with_all = ["limit", "check"])]
    pub list: bool,
}

/// Options of `hive restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    selection: ServiceSelection,
    /// Restore the backups taken at this time (YYYYmmddHHMMSS, as `hive
    /// backup --list` shows) instead of the latest.
    #[arg(long = "from", value_name = "TIMESTAMP", value_parser = stamp)]
    pub from: Option<String>,
}

fn stamp(s: &str) -> Result<String, String> {
    if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a backup time: 14 digits YYYYmmddHHMMSS, e.g. 20261207010000"
        ))
    }
}

fn print_report(globals: &Globals, report: &BackupReport) -> Result<ExitCode> {
    if globals.output == super::Output::Json {
        super::out_stdout(&serde_json::to_string_pretty(report)?)?;
    } else {
        let verb = if report.check_mode { "would" } else { "did" };
        for r in &report.results {
            let mut line = format!(
                "{} {}: {} {}",
                r.service,
                if r.name == r.service || r.name.is_empty() {
                    String::new()
                } else {
                    format!("({})", r.name)
                },
                report.action,
                match r.status.as_str() {
                    "planned" => format!("{verb} use {}", r.file.as_deref().unwrap_or("")),
                    "ok" => format!("ok: {}", r.file.as_deref().unwrap_or("")),
                    s => s.to_string(),
                }
            );
            if let Some(copy) = &r.mother_copy {
                line.push_str(&format!(", copied to {}", copy.display()));
            }
            if let (Some(d), true) = (&r.detail, r.status != "failed") {
                line.push_str(&format!(" ({d})"));
            }
            outln!("{}", line.replace(" :", ":"));
        }
        outln!(
            "{}: {} backup(s) in {}:{}",
            report.action,
            report.results.len(),
            report.repository,
            report.directory
        );
    }
    match report.error() {
        Some(e) => Err(e.into()),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn print_listing(globals: &Globals, listing: &BackupListing) -> Result<ExitCode> {
    if globals.output == super::Output::Json {
        super::out_stdout(&serde_json::to_string_pretty(listing)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(e) = &listing.repository_error {
        outln!("warning: cannot read {}: {e}", listing.repository);
    }
    for b in &listing.backups {
        let place = match (b.on_repository, b.on_mother) {
            (true, true) => "repository and this machine",
            (true, false) => "repository",
            _ => "this machine",
        };
        outln!(
            "{} {} {} {} bytes ({place})",
            b.service,
            b.stamp,
            b.file,
            b.size
        );
    }
    outln!(
        "{} backup(s); repository {}:{}, copies in {}",
        listing.backups.len(),
        listing.repository,
        listing.directory,
        listing.mother_directory.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `hive backup`.
pub fn backup(globals: &Globals, args: &BackupArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    let rt = super::runtime()?;
    if args.list {
        let listing = rt.block_on(hive_phases::backup::list(&site))?;
        return print_listing(globals, &listing);
    }
    // A backup reads what a concurrent run may be changing: one at a time.
    let _lock = super::run::lock(globals, &project)?;
    let report = rt.block_on(hive_phases::backup::backup(
        &site,
        &args.selection.limit,
        args.selection.check,
    ))?;
    print_report(globals, &report)
}

/// `hive restore`.
pub fn restore(globals: &Globals, args: &RestoreArgs) -> Result<ExitCode> {
    let project = globals.load()?;
    let site = StageSite::new(&project)?;
    // A restore stops services and writes their data: never beside a run.
    let _lock = super::run::lock(globals, &project)?;
    let report = super::runtime()?.block_on(hive_phases::backup::restore(
        &site,
        &args.selection.limit,
        args.from.as_deref(),
        args.selection.check,
    ))?;
    print_report(globals, &report)
}
