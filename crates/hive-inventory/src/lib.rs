#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! - [`Project`], loaded by [`Project::load`] or a [`ProjectLoader`]: the
//!   [`Stage`]s, [`Server`]s, [`Service`]s, [`Volume`]s, [`Network`]s,
//!   Ansible groups and each host's merged [`Variable`]s; a project that
//!   does not load gives every problem at once ([`Errors`]).
//! - The checks of the service parameters of hive-model's table (name,
//!   type, copied into the inventory, deployed), [`SERVICE_PARAMETERS`].
//! - Jinja2 with Ansible's filters, tests and lookups, variables rendered
//!   lazily per host, in [`template`].
//! - YAML 1.1 with positions, as PyYAML reads it, in [`yaml`].
//! - `.hive/persistents.yml`, as [`Persistents`].
//!
//! The only I/O this crate does is reading the project and reading and
//! writing `.hive/` (see [`Project::save_persistents`]).

// Errors carry a full location and hint; they are cold and kept by value.
#![allow(clippy::result_large_err)]
#![deny(missing_docs)]

// The crates whose types appear in this crate's API, for users to build
// against the same versions.
pub use hive_model;
pub use indexmap::{self, IndexMap};
pub use ipnet::{self, IpNet};
pub use {serde_json, serde_yaml};

mod error;
mod inventory;
mod load;
mod model;
mod persist;
pub mod template;
pub mod yaml;

use std::path::{Path, PathBuf};

use serde_yaml::Value;

pub use error::{Error, Errors, Location};
pub use inventory::{Origin, Variable};
pub use load::{IMAGE_PARAMS, ParamType, SERVICE_PARAMETERS, ServiceParam, service_param};
pub use model::*;
pub use persist::Persistents;

use inventory::InventoryData;
use load::{Allocations, Allocator, Ctx, Loaded};

/// Options for loading a project; [`Project::load`] uses the defaults.
///
/// ```no_run
/// use hive_inventory::{ProjectLoader, StageName};
/// let project = ProjectLoader::new("/srv/site")
///     .inventory("/srv/site/inventory")
///     .stage(StageName::Staging)
///     .load();
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ProjectLoader {
    root: PathBuf,
    inventory: Option<PathBuf>,
    context_dir: Option<PathBuf>,
    stage: Option<StageName>,
    providers: Option<Vec<String>>,
}

impl ProjectLoader {
    /// Loads the project in `root` (the directory holding `inventory/` and `.hive/`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ProjectLoader {
            root: root.into(),
            inventory: None,
            context_dir: None,
            stage: None,
            providers: None,
        }
    }

    /// The provider names a stage may use (such as the names of
    /// `hive_provider::ProviderRegistry`); another name is an error at its
    /// line. Without this list the inventory takes any name: the provider
    /// crate decides what it supports when the stage is built.
    pub fn providers<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.providers = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Inventory directory or file (default: persisted `inventory_path`, else `<root>/inventory`).
    pub fn inventory(mut self, path: impl Into<PathBuf>) -> Self {
        self.inventory = Some(path.into());
        self
    }

    /// Context directory (default: persisted `context_dir`, else `<root>/.hive/<stage>`).
    pub fn context_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.context_dir = Some(path.into());
        self
    }

    /// The current stage (default: persisted `stage`, else `private`).
    /// Allocations (drbd device ids, published ports) are kept per stage.
    pub fn stage(mut self, stage: StageName) -> Self {
        self.stage = Some(stage);
        self
    }

    /// Reads, validates and derives the project; returns every problem found.
    ///
    /// The root, inventory and context paths become absolute (relative ones
    /// against the current directory, as the original's `hive_root_dir` and
    /// `hive_context_dir` are), so that every path derived from them
    /// (lookups writing under `hive_context_dir`, say) names the same file
    /// whatever directory a task runs in.
    pub fn load(self) -> Result<Project, Errors> {
        let root = absolute(&self.root);
        let persistents = Persistents::load(&root)?;
        let global = |name: &str| persistents.get(name, "global").and_then(|v| v.as_str());
        let stage = match self.stage {
            Some(s) => s,
            None => match global("stage") {
                None => StageName::Private,
                Some(s) => s.parse::<StageName>().map_err(|message| Error::Invalid {
                    location: Location::file(persistents.path()),
                    key_path: "stage.global".into(),
                    message,
                    expected: Some(StageName::NAMES.join(", ")),
                    suggestion: None,
                })?,
            },
        };
        let inventory_path = self
            .inventory
            .map(|p| absolute(&p))
            .or_else(|| global("inventory_path").map(|p| root.join(p)))
            .unwrap_or_else(|| root.join("inventory"));
        let context_dir = self
            .context_dir
            .map(|p| absolute(&p))
            .or_else(|| {
                persistents
                    .get("context_dir", stage.as_str())
                    .and_then(|v| v.as_str())
                    .map(|p| root.join(p))
            })
            .unwrap_or_else(|| root.join(".hive").join(stage.as_str()));

        let mut ctx = Ctx {
            providers: self.providers,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let mut alloc = Allocations {
            drbd_device_map: Allocator::new(
                int_map(&mut ctx, &persistents, "drbd_device_map", stage),
                1..256,
            ),
            published_port_map: Allocator::new(
                int_map(&mut ctx, &persistents, "published_port_map", stage),
                61001..65535,
            ),
        };
        let (files, vars_dir) = if inventory_path.is_file() {
            let dir = inventory_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            (vec![inventory_path.clone()], dir)
        } else if inventory_path.is_dir() {
            let mut files = Vec::new();
            inventory_files(&inventory_path, &mut files);
            (files, inventory_path.clone())
        } else {
            return Err(Error::Read {
                path: inventory_path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no inventory directory or file here",
                ),
            }
            .into());
        };
        let mut out = Loaded::new();
        let first_hive = |s: StageName| persistents.get("first_hive", s.as_str()).cloned();
        for file in &files {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(source) => {
                    ctx.errors.push(Error::Read {
                        path: file.clone(),
                        source,
                    });
                    continue;
                }
            };
            let node = match yaml::parse(file, &text) {
                Ok(n) => n,
                Err(e) => {
                    ctx.errors.push(e);
                    continue;
                }
            };
            match node.get("plugin").and_then(yaml::Node::as_str) {
                Some("hive_inventory") => {
                    load::hive_inventory(&mut ctx, &mut out, file, &node, &first_hive)
                }
                Some("hive_services") => {
                    load::hive_services(&mut ctx, &mut out, &mut alloc, file, &node)
                }
                _ => {}
            }
        }
        if out.hive_files == 0 && ctx.errors.is_empty() {
            ctx.errors.push(Error::Invalid {
                location: Location::file(&inventory_path),
                key_path: "plugin".into(),
                message: "no inventory file with `plugin: hive_inventory` found".into(),
                expected: Some("a hive.yml with plugin: hive_inventory, name and stages".into()),
                suggestion: None,
            });
        }
        out.inventory.reconcile();
        load_vars_files(&mut ctx, &mut out.inventory, &vars_dir);
        if !ctx.errors.is_empty() {
            return Err(Errors(ctx.errors));
        }
        let mut persistents = persistents;
        persistents.set(
            "drbd_device_map",
            stage.as_str(),
            to_mapping(&alloc.drbd_device_map.map),
        );
        persistents.set(
            "published_port_map",
            stage.as_str(),
            to_mapping(&alloc.published_port_map.map),
        );
        Ok(Project {
            root_dir: root,
            inventory_path,
            context_dir,
            stage,
            name: out.name.unwrap_or_default(),
            stages: out.stages,
            servers: out.servers,
            services: out.services.into_values().collect(),
            volumes: out.volumes.into_values().collect(),
            networks: out.networks.into_values().collect(),
            inventory: out.inventory,
            persistents,
            warnings: ctx.warnings,
        })
    }
}

fn to_mapping(map: &IndexMap<String, i64>) -> Value {
    Value::Mapping(
        map.iter()
            .map(|(k, v)| (Value::String(k.clone()), Value::Number((*v).into())))
            .collect(),
    )
}

fn int_map(
    ctx: &mut Ctx,
    persistents: &Persistents,
    name: &str,
    stage: StageName,
) -> IndexMap<String, i64> {
    let mut out = IndexMap::new();
    match persistents.get(name, stage.as_str()) {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                match v.as_i64() {
                    Some(i) => {
                        out.insert(key, i);
                    }
                    None => ctx.errors.push(Error::Invalid {
                        location: Location::file(persistents.path()),
                        key_path: format!("{name}.{stage}.{key}"),
                        message: "must be an integer".into(),
                        expected: None,
                        suggestion: None,
                    }),
                }
            }
        }
        Some(_) => ctx.errors.push(Error::Invalid {
            location: Location::file(persistents.path()),
            key_path: format!("{name}.{stage}"),
            message: "must be a mapping of name to number".into(),
            expected: None,
            suggestion: None,
        }),
    }
    out
}

/// Inventory source files of a directory, as Ansible picks them.
fn inventory_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') || name == "group_vars" || name == "host_vars" {
            continue;
        }
        if p.is_dir() {
            inventory_files(&p, out);
        } else if name.ends_with(".yml") || name.ends_with(".yaml") {
            out.push(p);
        }
    }
}

/// `path` made absolute against the current directory, with `.` components
/// dropped; a path that cannot be made absolute (no current directory) is
/// kept as it is.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn load_vars_files(ctx: &mut Ctx, inv: &mut InventoryData, dir: &Path) {
    let gdir = dir.join("group_vars");
    if gdir.is_dir() {
        let names: Vec<String> = inv.groups.keys().cloned().collect();
        for g in names {
            for file in load::vars_files(&gdir, &g) {
                let f2 = file.clone();
                let g2 = g.clone();
                let vars = load::read_vars(ctx, &file, &move |line| Origin::GroupVars {
                    group: g2.clone(),
                    file: f2.clone(),
                    line,
                });
                if let Some(data) = inv.groups.get_mut(&g) {
                    data.file_vars.extend(vars);
                }
            }
        }
    }
    let hdir = dir.join("host_vars");
    if hdir.is_dir() {
        let names: Vec<String> = inv.hosts.keys().cloned().collect();
        for h in names {
            for file in load::vars_files(&hdir, &h) {
                let f2 = file.clone();
                let h2 = h.clone();
                let vars = load::read_vars(ctx, &file, &move |line| Origin::HostVars {
                    host: h2.clone(),
                    file: f2.clone(),
                    line,
                });
                if let Some(data) = inv.hosts.get_mut(&h) {
                    data.file_vars.extend(vars);
                }
            }
        }
    }
}

/// A loaded, validated hive project.
#[derive(Debug, Clone)]
pub struct Project {
    root_dir: PathBuf,
    inventory_path: PathBuf,
    context_dir: PathBuf,
    stage: StageName,
    name: String,
    stages: Vec<Stage>,
    servers: Vec<Server>,
    services: Vec<Service>,
    volumes: Vec<Volume>,
    networks: Vec<Network>,
    inventory: InventoryData,
    persistents: Persistents,
    warnings: Vec<String>,
}

impl Project {
    /// Loads the project in `root` with default options (see [`ProjectLoader`]).
    pub fn load(root: &Path) -> Result<Project, Errors> {
        ProjectLoader::new(root).load()
    }

    /// The project root directory.
    pub fn root_dir(&self) -> &Path {
        &self.root_dir
    }

    /// The inventory directory (or file).
    pub fn inventory_path(&self) -> &Path {
        &self.inventory_path
    }

    /// The context directory of the current stage.
    pub fn context_dir(&self) -> &Path {
        &self.context_dir
    }

    /// The current stage (allocations in `.hive/persistents.yml` are kept for it).
    pub fn stage(&self) -> StageName {
        self.stage
    }

    /// The site name (`name:` of `hive.yml`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stages of `hive.yml`, in file order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// One stage, if `hive.yml` defines it.
    pub fn stage_def(&self, stage: StageName) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == stage)
    }

    /// Every server (hive and repository) of every stage.
    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// The servers of one stage, in index order.
    pub fn servers_of(&self, stage: StageName) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(move |s| s.stage == stage)
    }

    /// The first hive (swarm master) of a stage.
    pub fn first_hive(&self, stage: StageName) -> Option<&Server> {
        let index = self.stage_def(stage)?.first_hive;
        self.servers_of(stage)
            .filter(|s| s.role.is_hive())
            .nth(index)
    }

    /// Every service, in file order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Every named volume (drbd, nfs, driver), in order of first declaration.
    pub fn volumes(&self) -> &[Volume] {
        &self.volumes
    }

    /// Every network, including `hive_default_network`.
    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// The persistent values, with this load's allocations for the current stage.
    pub fn persistents(&self) -> &Persistents {
        &self.persistents
    }

    /// Non-fatal findings (e.g. a published port used twice).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Writes `.hive/persistents.yml` atomically if the allocations changed;
    /// returns whether it wrote.
    pub fn save_persistents(&mut self) -> Result<bool, Error> {
        self.persistents.save()
    }

    /// Every inventory host name (servers, mothers, services, images, volumes, networks).
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.inventory.hosts.keys().map(String::as_str)
    }

    /// A host's variables merged as Ansible merges them (values unrendered):
    /// plugin-set variables of `all`, `group_vars/all`, plugin-set group
    /// variables and then `group_vars/<group>` by group depth and name,
    /// plugin-set host variables, and `host_vars/<host>` last.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::fs::create_dir_all(dir.path().join("inventory/group_vars")).unwrap();
    /// # std::fs::write(dir.path().join("inventory/hive.yml"),
    /// #   "plugin: hive_inventory\nname: demo\nstages:\n  private:\n    provider: docker\n    cidr: 192.168.201.0/24\n").unwrap();
    /// # std::fs::write(dir.path().join("inventory/group_vars/hives.yml"), "zone: inner\n").unwrap();
    /// # let project = hive_inventory::Project::load(dir.path()).unwrap();
    /// let vars = project.host_vars("p-hive0.demo").unwrap();
    /// assert_eq!(vars["hive_swarm_master"].value.as_str(), Some("p-hive0.demo"));
    /// assert_eq!(vars["zone"].origin.file().file_name().unwrap(), "hives.yml");
    /// assert_eq!(vars["zone"].origin.line(), Some(1));
    /// ```
    pub fn host_vars(&self, host: &str) -> Option<IndexMap<String, Variable>> {
        self.inventory.merged_vars(host)
    }

    /// Every group with its hosts, descendants' hosts included, like
    /// Ansible's `groups` variable (`all` and `ungrouped` included).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::fs::create_dir_all(dir.path().join("inventory/group_vars")).unwrap();
    /// # std::fs::write(dir.path().join("inventory/hive.yml"),
    /// #   "plugin: hive_inventory\nname: demo\nstages:\n  private:\n    provider: docker\n    cidr: 192.168.201.0/24\n").unwrap();
    /// # std::fs::write(dir.path().join("inventory/group_vars/hives.yml"), "zone: inner\n").unwrap();
    /// # let project = hive_inventory::Project::load(dir.path()).unwrap();
    /// let groups = project.groups();
    /// assert_eq!(groups["repository"], vec!["p-hive3.demo"]);
    /// assert_eq!(groups["servers"].len(), 4);
    /// ```
    pub fn groups(&self) -> IndexMap<String, Vec<String>> {
        self.inventory
            .groups
            .keys()
            .map(|g| (g.clone(), self.inventory.group_hosts(g)))
            .collect()
    }

    /// The groups of a host, sorted, like Ansible's `group_names` variable.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::fs::create_dir_all(dir.path().join("inventory/group_vars")).unwrap();
    /// # std::fs::write(dir.path().join("inventory/hive.yml"),
    /// #   "plugin: hive_inventory\nname: demo\nstages:\n  private:\n    provider: docker\n    cidr: 192.168.201.0/24\n").unwrap();
    /// # std::fs::write(dir.path().join("inventory/group_vars/hives.yml"), "zone: inner\n").unwrap();
    /// # let project = hive_inventory::Project::load(dir.path()).unwrap();
    /// assert_eq!(
    ///     project.group_names("p-hive3.demo"),
    ///     vec!["hosts", "private", "repository", "servers"]
    /// );
    /// ```
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .inventory
            .host_groups(host)
            .into_iter()
            .filter(|g| g != "all")
            .collect();
        names.sort();
        names
    }

    /// The inventory in the shape of `ansible-inventory --list`: groups with
    /// their direct `hosts` and `children`, and `_meta.hostvars` holding each
    /// host's merged variables. Keys are sorted as Ansible prints them.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # std::fs::create_dir_all(dir.path().join("inventory/group_vars")).unwrap();
    /// # std::fs::write(dir.path().join("inventory/hive.yml"),
    /// #   "plugin: hive_inventory\nname: demo\nstages:\n  private:\n    provider: docker\n    cidr: 192.168.201.0/24\n").unwrap();
    /// # std::fs::write(dir.path().join("inventory/group_vars/hives.yml"), "zone: inner\n").unwrap();
    /// # let project = hive_inventory::Project::load(dir.path()).unwrap();
    /// let json = project.to_ansible_json();
    /// assert_eq!(json["hosts"]["children"], serde_json::json!(["servers", "mother"]));
    /// assert_eq!(json["_meta"]["hostvars"]["p-mother.demo"]["hive_cidr"], "192.168.201.0/24");
    /// ```
    pub fn to_ansible_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value as J};
        let mut root = Map::new();
        let mut hostvars = Map::new();
        for host in self.inventory.hosts.keys() {
            let vars = self.host_vars(host).unwrap_or_default();
            if vars.is_empty() {
                continue;
            }
            let m: Map<String, J> = vars
                .into_iter()
                .map(|(k, v)| (k, yaml_to_json(&v.value)))
                .collect();
            hostvars.insert(host.clone(), J::Object(m));
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), J::Object(hostvars));
        root.insert("_meta".into(), J::Object(meta));
        for (name, g) in &self.inventory.groups {
            let mut m = Map::new();
            if !g.hosts.is_empty() {
                m.insert(
                    "hosts".into(),
                    J::Array(g.hosts.iter().cloned().map(J::String).collect()),
                );
            }
            if !g.children.is_empty() {
                m.insert(
                    "children".into(),
                    J::Array(g.children.iter().cloned().map(J::String).collect()),
                );
            }
            if !m.is_empty() || name == "all" {
                root.insert(name.clone(), J::Object(m));
            }
        }
        sort_json(J::Object(root))
    }
}

/// Converts a YAML value to JSON, as Ansible hands data on as JSON (module
/// arguments, `to_json`, `ansible-inventory --list`): a mapping key that is
/// not a string becomes the text Python's `json` module writes for it
/// (`true`, `false`, `null`, `1`, `1.5`, `Infinity`), so YAML 1.1's `yes:`
/// and `on:` keys become `"true"`. A float that JSON cannot hold (`.inf`,
/// `.nan`) becomes `null`.
///
/// ```
/// let v = hive_inventory::yaml::parse(std::path::Path::new("x.yml"), "{on: 1, ~: 2, 3: [yes]}")
///     .unwrap()
///     .to_value();
/// assert_eq!(
///     hive_inventory::yaml_to_json(&v),
///     serde_json::json!({"true": 1, "null": 2, "3": [true]})
/// );
/// ```
pub fn yaml_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                J::from(i)
            } else if let Some(u) = n.as_u64() {
                J::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(J::Null, J::Number)
            }
        }
        Value::String(s) => J::String(s.clone()),
        Value::Sequence(s) => J::Array(s.iter().map(yaml_to_json).collect()),
        Value::Mapping(m) => J::Object(
            m.iter()
                .map(|(k, v)| (json_key(k), yaml_to_json(v)))
                .collect(),
        ),
        Value::Tagged(t) => yaml_to_json(&t.value),
    }
}

/// The text of a mapping key as Python's `json` module writes it.
fn json_key(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) if f.is_nan() => "NaN".to_string(),
            (None, None, Some(f)) if f.is_infinite() => {
                if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
            }
            (None, None, Some(f)) => template::pyvalue::py_float(f),
            _ => n.to_string(),
        },
        Value::Tagged(t) => json_key(&t.value),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn sort_json(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::Object(m) => {
            let mut entries: Vec<(String, J)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            J::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_json(v)))
                    .collect(),
            )
        }
        J::Array(a) => J::Array(a.into_iter().map(sort_json).collect()),
        other => other,
    }
}
