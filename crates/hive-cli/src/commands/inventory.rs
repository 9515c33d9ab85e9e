//! Commands reading the inventory: `inventory`, `list-*`, `check`.

use std::process::ExitCode;

use anyhow::{Context, Result};

use hive_phases::check::{ModuleSources, check_project};

use super::{Globals, Output};

/// Prints `names` space separated, or as a JSON array with `-o json`.
fn print_names(g: &Globals, names: &[&str]) -> Result<()> {
    if g.output == Output::Json {
        outln!("{}", serde_json::to_string(names)?);
    } else {
        outln!("{}", names.join(" "));
    }
    Ok(())
}

/// `hive inventory`: the inventory as `ansible-inventory --list` JSON.
///
/// Allocations (drbd device ids, published ports) are saved to
/// `.hive/persistents.yml` when they changed.
pub fn inventory(g: &Globals) -> Result<ExitCode> {
    let mut project = g.load()?;
    let json = serde_json::to_string_pretty(&project.to_ansible_json())?;
    let wrote = project.save_persistents().context("saving allocations")?;
    if g.verbose {
        let path = project.persistents().path().display().to_string();
        if wrote {
            eprintln!("saved allocations to {path}");
        } else {
            eprintln!("allocations unchanged in {path}");
        }
    }
    outln!("{json}");
    Ok(ExitCode::SUCCESS)
}

/// `hive list-hosts`: the servers of the current stage.
pub fn list_hosts(g: &Globals) -> Result<ExitCode> {
    let project = g.load()?;
    let stage = project.stage();
    if project.stage_def(stage).is_none() {
        anyhow::bail!("stage {stage} is not defined in the hive_inventory file");
    }
    let names: Vec<&str> = project.servers_of(stage).map(|s| s.name.as_str()).collect();
    print_names(g, &names)?;
    Ok(ExitCode::SUCCESS)
}

/// `hive list-services`: every service.
pub fn list_services(g: &Globals) -> Result<ExitCode> {
    let project = g.load()?;
    let names: Vec<&str> = project.services().iter().map(|s| s.name.as_str()).collect();
    print_names(g, &names)?;
    Ok(ExitCode::SUCCESS)
}

/// `hive list-volumes`: every volume source mounted by services.
pub fn list_volumes(g: &Globals) -> Result<ExitCode> {
    let project = g.load()?;
    let mut names: Vec<&str> = Vec::new();
    for s in project.services() {
        for m in &s.mounts {
            if !m.source.is_empty() && !names.contains(&m.source.as_str()) {
                names.push(&m.source);
            }
        }
    }
    print_names(g, &names)?;
    Ok(ExitCode::SUCCESS)
}

/// `hive check`: everything a run of the stage would meet, found without
/// touching a server; prints every problem, sorted by file and line (or,
/// with `-o json`, one document with the list); exit status 1 if any.
pub fn check(g: &Globals) -> Result<ExitCode> {
    let report = check_project(g.loader(), &ModuleSources::installed());
    if g.output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        for problem in &report.problems {
            outln!("{problem}");
        }
    }
    let c = &report.checked;
    if report.problems.is_empty() {
        let line = format!(
            "{}: stage {} valid ({} stages; {} servers, {} services, {} volumes, {} networks of the stage; {} values rendered, {} roles loaded)",
            report.project.as_deref().unwrap_or_default(),
            report.stage.as_deref().unwrap_or_default(),
            c.stages,
            c.servers,
            c.services,
            c.volumes,
            c.networks,
            c.values,
            c.roles
        );
        if g.output == Output::Json {
            eprintln!("{line}");
        } else {
            outln!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let n = report.problems.len();
    eprintln!("hive: {n} problem{} found", if n == 1 { "" } else { "s" });
    Ok(ExitCode::FAILURE)
}
