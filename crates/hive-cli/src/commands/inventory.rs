//! Commands reading the inventory: `inventory`, `list-*`, `check`.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::Globals;

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
    outln!("{}", names.join(" "));
    Ok(ExitCode::SUCCESS)
}

/// `hive list-services`: every service.
pub fn list_services(g: &Globals) -> Result<ExitCode> {
    let project = g.load()?;
    let names: Vec<&str> = project.services().iter().map(|s| s.name.as_str()).collect();
    outln!("{}", names.join(" "));
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
    outln!("{}", names.join(" "));
    Ok(ExitCode::SUCCESS)
}

/// `hive check`: validates everything and prints every problem; writes nothing.
pub fn check(g: &Globals) -> Result<ExitCode> {
    match g.loader().load() {
        Ok(project) => {
            for w in project.warnings() {
                eprintln!("warning: {w}");
            }
            outln!(
                "{}: valid ({} stages, {} servers, {} services, {} volumes, {} networks)",
                project.inventory_path().display(),
                project.stages().len(),
                project.servers().len(),
                project.services().len(),
                project.volumes().len(),
                project.networks().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for problem in &errors {
                outln!("{problem}");
            }
            eprintln!(
                "hive: {} problem{} found",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
