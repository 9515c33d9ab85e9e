//! Commands managing the project state: `init`, `set`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use hive_inventory::{Persistents, yaml_to_json};
use serde_yaml::Value;

use super::Globals;

/// How a variable's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Enum(&'static [&'static str]),
    Boolean,
    Integer,
    Directory,
    Dict,
}

/// Where a variable is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Not persistable.
    None,
    /// One value for every stage.
    Global,
    /// One value per stage.
    Stage,
}

const PHASES: &[&str] = &[
    "build-infra",
    "setup-hosts",
    "build-images",
    "build-volumes",
    "build-networks",
    "deploy-services",
    "initialize-services",
];

/// The hive variables (the original's `variables_metainf.yml`): name, type, scope, secret.
const VARIABLES: &[(&str, Kind, Scope, bool)] = &[
    ("root_dir", Kind::Directory, Scope::None, false),
    (
        "stage",
        Kind::Enum(&["production", "staging", "private"]),
        Scope::Global,
        false,
    ),
    ("inventory_path", Kind::Directory, Scope::Global, false),
    ("context_dir", Kind::Directory, Scope::Stage, false),
    ("phase", Kind::Enum(PHASES), Scope::None, false),
    ("temp_dir", Kind::Directory, Scope::Stage, false),
    ("local_python_path", Kind::Text, Scope::None, false),
    ("inventory_plugins", Kind::Text, Scope::Global, false),
    ("filter_plugins", Kind::Text, Scope::Global, false),
    ("library", Kind::Text, Scope::Global, false),
    ("enable_plugins", Kind::Text, Scope::Global, false),
    ("unparsed_is_failed", Kind::Boolean, Scope::Global, false),
    ("playbooks_dir", Kind::Text, Scope::Global, false),
    ("verbose", Kind::Boolean, Scope::Stage, false),
    ("start_phase", Kind::Enum(PHASES), Scope::Stage, false),
    ("halt", Kind::Boolean, Scope::None, false),
    ("ssh_host", Kind::Text, Scope::Global, false),
    ("tags", Kind::Text, Scope::Global, false),
    ("destroy", Kind::Boolean, Scope::None, false),
    ("check_mode", Kind::Boolean, Scope::None, false),
    ("limit_target", Kind::Text, Scope::Global, false),
    ("limit_server", Kind::Text, Scope::Global, false),
    ("vagrant_box_name", Kind::Text, Scope::Stage, false),
    ("stdout_callback", Kind::Text, Scope::Global, false),
    ("callback_enabled", Kind::Text, Scope::Global, false),
    ("bin_ansible_callbacks", Kind::Boolean, Scope::Global, false),
    ("roles_path", Kind::Text, Scope::Global, false),
    ("collections_path", Kind::Text, Scope::Global, false),
    ("no_format", Kind::Boolean, Scope::Global, false),
    ("first_hive", Kind::Integer, Scope::Stage, false),
    ("forks", Kind::Integer, Scope::Global, false),
    ("pipelining", Kind::Boolean, Scope::Global, false),
    ("force_handlers", Kind::Boolean, Scope::Global, false),
    ("ssh_args", Kind::Text, Scope::Global, false),
    ("repository_docker_socket", Kind::Text, Scope::Global, false),
    ("aws_access_key_id", Kind::Text, Scope::Stage, false),
    ("aws_secret_access_key", Kind::Text, Scope::Stage, true),
    ("foward_zabbix", Kind::Boolean, Scope::Stage, false),
    ("foward_zabbix_port", Kind::Integer, Scope::Stage, false),
    ("port_forwarding", Kind::Text, Scope::Stage, false),
    ("drbd_device_map", Kind::Dict, Scope::Stage, false),
    ("published_port_map", Kind::Dict, Scope::Stage, false),
    ("azure_client_id", Kind::Text, Scope::Stage, false),
    ("azure_secret", Kind::Text, Scope::Stage, true),
    ("azure_subscription_id", Kind::Text, Scope::Stage, false),
    ("azure_tenant", Kind::Text, Scope::Stage, false),
    ("timeout", Kind::Integer, Scope::Global, false),
    ("retries", Kind::Integer, Scope::Global, false),
    (
        "zabbix_backup_cleanup_days_before",
        Kind::Integer,
        Scope::Global,
        false,
    ),
    (
        "registry_backup_cleanup_days_before",
        Kind::Integer,
        Scope::Global,
        false,
    ),
    ("interpreter_python", Kind::Text, Scope::Global, false),
    ("http_proxy", Kind::Text, Scope::Stage, false),
    ("http_proxy_port", Kind::Text, Scope::Stage, false),
    ("vagrant_proxy", Kind::Text, Scope::Stage, false),
    ("registry_mirror", Kind::Text, Scope::Stage, false),
    ("pip_index_url", Kind::Text, Scope::Stage, false),
    ("pip_trusted_host", Kind::Text, Scope::Stage, false),
    ("tls_logging", Kind::Boolean, Scope::Stage, false),
];

/// Arguments of `hive set`.
#[derive(clap::Args, Debug)]
pub struct SetArgs {
    /// Variable name, e.g. stage, first_hive, context_dir.
    pub variable: String,
    /// The value (booleans: true/yes/1/false/no/0; dicts: JSON).
    pub value: String,
}

/// Arguments of `hive init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The project directory (default: -r, else the current directory);
    /// created when missing.
    pub dir: Option<std::path::PathBuf>,
    /// The provider of the starter project's stage `private`.
    #[arg(long, value_enum, default_value_t = ProviderArg::Docker)]
    pub provider: ProviderArg,
    /// The site's name (default: the directory's name + `.example`).
    #[arg(long)]
    pub name: Option<String>,
}

/// A provider of `hive init --provider`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderArg {
    /// Servers as containers of this machine's Docker engine.
    Docker,
    /// Servers that exist already, reached over SSH.
    Prepared,
    /// Virtual machines made by Vagrant.
    Vagrant,
}

/// `hive init [DIR]`: a starter project where there is no inventory yet
/// (none of its files overwritten), and `.hive/`.
pub fn init(g: &Globals, args: &InitArgs) -> Result<ExitCode> {
    use hive_phases::scaffold::{Initialized, StarterProvider};
    let root = args.dir.clone().unwrap_or_else(|| g.root_dir.clone());
    let root = std::path::absolute(&root)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => format!(
            "{}.example",
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "site".into())
        ),
    };
    let provider = match args.provider {
        ProviderArg::Docker => StarterProvider::Docker,
        ProviderArg::Prepared => StarterProvider::Prepared,
        ProviderArg::Vagrant => StarterProvider::Vagrant,
    };
    match hive_phases::scaffold::init(&root, &name, provider)? {
        Initialized::Starter(files) => {
            outln!(
                "wrote a starter project for site {name} in {}:",
                root.display()
            );
            for f in files {
                outln!("  {}", f.strip_prefix(&root).unwrap_or(&f).display());
            }
            outln!(
                "next: hive -r {} check, then hive -r {0} all",
                root.display()
            );
        }
        Initialized::ContextOnly { created: true } => {
            outln!(
                "initialized hive context in {}",
                root.join(".hive").display()
            );
        }
        Initialized::ContextOnly { created: false } => {
            outln!(
                "hive context in {} is already initialized; nothing written",
                root.join(".hive").display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Converts a command line value to the variable's type.
fn cast(name: &str, kind: Kind, raw: &str) -> Result<Value> {
    Ok(match kind {
        Kind::Text => Value::String(raw.to_string()),
        Kind::Enum(options) => {
            if !options.contains(&raw) {
                bail!("value {raw} of {name} is not one of {}", options.join(", "));
            }
            Value::String(raw.to_string())
        }
        Kind::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => bail!("boolean value {raw} of {name} is not one of true, yes, 1, false, no, 0"),
        },
        Kind::Integer => match raw.trim().parse::<i64>() {
            Ok(i) if i >= 0 => Value::Number(i.into()),
            _ => bail!("value {raw} of {name} is not a non-negative integer"),
        },
        Kind::Directory => {
            let path = std::path::Path::new(raw.trim_end_matches('/'));
            if !path.is_dir() {
                bail!("{raw} is not a directory (value of {name})");
            }
            let abs = std::path::absolute(path)?;
            Value::String(abs.display().to_string())
        }
        Kind::Dict => {
            let json: serde_json::Value = serde_json::from_str(raw)
                .map_err(|e| anyhow::anyhow!("value of {name} is not a JSON object: {e}"))?;
            if !json.is_object() {
                bail!("value of {name} must be a JSON object, e.g. {{\"name\": 1}}");
            }
            serde_yaml::to_value(json)?
        }
    })
}

/// `hive set VARIABLE VALUE`: saves a variable in `.hive/persistents.yml`.
pub fn set(g: &Globals, args: &SetArgs) -> Result<ExitCode> {
    let name = args.variable.as_str();
    let Some((_, kind, scope, secret)) = VARIABLES.iter().find(|v| v.0 == name) else {
        let names: Vec<&str> = VARIABLES.iter().map(|v| v.0).collect();
        let hint = names
            .iter()
            .map(|n| (strsim::jaro_winkler(name, n), *n))
            .filter(|(s, _)| *s > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| format!("; did you mean {n}?"))
            .unwrap_or_default();
        bail!("unknown variable {name}{hint}");
    };
    let key = match scope {
        Scope::None => bail!("variable {name} cannot be saved persistently"),
        Scope::Global => "global".to_string(),
        Scope::Stage => g.current_stage()?.as_str().to_string(),
    };
    let value = cast(name, *kind, &args.value)?;
    let mut persistents = Persistents::load(&g.root_dir)?;
    persistents.set(name, &key, value.clone());
    let shown = if *secret {
        "(secret)".to_string()
    } else {
        yaml_to_json(&value).to_string()
    };
    if persistents.save()? {
        outln!("set persistently {shown} to {name} on {key}");
    } else {
        outln!("{name} on {key} is already {shown}; nothing changed");
    }
    Ok(ExitCode::SUCCESS)
}
