//! Commands showing rendered values: `vars` and `render`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use hive_inventory::Project;
use hive_inventory::template::{SiteBuilder, Templar, Vars, run_vars};
use serde_yaml::Value as Yaml;

use super::{Globals, Output};

/// Arguments of `hive vars`.
#[derive(clap::Args, Debug)]
pub struct VarsArgs {
    /// The inventory host (server, service, image, volume or network).
    pub host: String,
    /// Print the merged variables unrendered, as written.
    #[arg(long)]
    pub raw: bool,
}

/// Arguments of `hive render`.
#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The template to render, e.g. '{{ hive_registry }}'.
    pub template: String,
    /// Render with this host's variables (default: the mother host of the stage).
    #[arg(long)]
    pub host: Option<String>,
}

fn extra_vars(g: &Globals, project: &Project) -> Vars {
    let mut extra = run_vars(project);
    extra.insert(
        "hive_temp_dir",
        Yaml::String(g.temp_dir.to_string_lossy().into_owned()),
    );
    extra
}

fn scope(g: &Globals, project: &Project, host: &str) -> Result<Vars> {
    let site = SiteBuilder::new(project)
        .extra_vars(extra_vars(g, project))
        .build();
    site.vars_for(host).with_context(|| {
        let known: Vec<&str> = project.hosts().collect();
        let hint = known
            .iter()
            .map(|h| (strsim::levenshtein(h, host), *h))
            .min()
            .filter(|(d, _)| *d <= 3)
            .map(|(_, h)| format!("; did you mean {h}?"))
            .unwrap_or_default();
        format!("unknown host '{host}': not in the inventory{hint}")
    })
}

/// Prints `value` as YAML (`-o text`, strings as they are when
/// `plain_strings`) or as JSON (`-o json`).
fn print(value: &Yaml, output: Output, plain_strings: bool) -> Result<()> {
    match (value, output) {
        (Yaml::String(s), Output::Text) if plain_strings => outln!("{s}"),
        (_, Output::Json) => outln!(
            "{}",
            serde_json::to_string_pretty(&hive_inventory::yaml_to_json(value))?
        ),
        (_, Output::Text) => outln!("{}", serde_yaml::to_string(value)?.trim_end()),
    }
    Ok(())
}

/// `hive vars HOST`: the host's merged variables, rendered (or `--raw`).
///
/// A variable that is undefined on this host (it uses an undefined
/// variable, as `hive_shared_repository_path` does without a shared
/// repository) is printed as null with a note on stderr. A variable that
/// fails otherwise is printed as null with its error; the exit status is
/// then 1.
pub fn vars(g: &Globals, args: &VarsArgs) -> Result<ExitCode> {
    let project = g.load()?;
    let vars = scope(g, &project, &args.host)?;
    let templar = Templar::new(project.root_dir());
    let mut out = serde_yaml::Mapping::new();
    let mut failed = 0;
    for name in vars.names() {
        let raw = vars.get(name).cloned().unwrap_or(Yaml::Null);
        let value = if args.raw {
            raw
        } else {
            match templar.render_value(&raw, &vars) {
                Ok(v) => v,
                Err(e) if e.is_undefined() => {
                    eprintln!("note: {name} is undefined: {}", e.full_message());
                    Yaml::Null
                }
                Err(e) => {
                    eprintln!("error: {name}: {}", e.full_message());
                    failed += 1;
                    Yaml::Null
                }
            }
        };
        out.insert(Yaml::String(name.to_string()), value);
    }
    if !args.raw {
        out.insert("inventory_hostname".into(), Yaml::String(args.host.clone()));
        out.insert(
            "group_names".into(),
            Yaml::Sequence(
                project
                    .group_names(&args.host)
                    .into_iter()
                    .map(Yaml::String)
                    .collect(),
            ),
        );
    }
    print(&Yaml::Mapping(out), g.output, false)?;
    if failed > 0 {
        eprintln!(
            "hive: {failed} variable(s) of {} failed to render",
            args.host
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `hive render 'TEMPLATE'`: renders one template as a task argument would
/// be, for a host (default: the stage's mother host).
pub fn render(g: &Globals, args: &RenderArgs) -> Result<ExitCode> {
    let project = g.load()?;
    let host = match &args.host {
        Some(h) => h.clone(),
        None => format!("{}mother.{}", project.stage().prefix(), project.name()),
    };
    let vars = scope(g, &project, &host)?;
    let templar = Templar::new(project.root_dir());
    let value = templar
        .render_str(&args.template, &vars)
        .map_err(|e| anyhow::anyhow!(e.full_message()))?;
    print(&value, g.output, true)?;
    Ok(ExitCode::SUCCESS)
}
