//! `hive check`: every problem a run of the stage would meet, found without
//! touching a server.
//!
//! In order: the inventory is loaded (every loader error); the stage must
//! be defined and its provider supported, with settings the provider
//! accepts; every templated value the phases render is rendered for every
//! host of the stage (services' parameters, images' build parameters, the
//! variables a project defines in `group_vars/` and `host_vars/`), so that
//! undefined variables, cycles and filter errors show; every role that
//! build-images, initialize-services and setup-hosts' addon step apply is
//! loaded with what it includes, and every module it uses must be known;
//! `roles/` must not hold a symlink loop. Every problem is collected, with
//! its file, line and column where known, sorted by file and line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use hive_image::{RoleLint, RoleLoader};
use hive_inventory::template::{SiteBuilder, Templar, TemplateError, Vars};
use hive_inventory::{Origin, Project, ProjectLoader, Variable};
use serde::Serialize;

use crate::orchestrate::error_text;
use crate::site::StageSite;

/// One problem found by [`check_project`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file the problem is in, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl Problem {
    fn at(file: Option<&Path>, line: usize, column: usize, message: impl Into<String>) -> Self {
        Problem {
            file: file.map(Path::to_path_buf),
            line,
            column,
            message: message.into(),
        }
    }

    /// A problem at a `file:line` location as role tasks give it.
    fn at_location(location: &str, message: impl Into<String>) -> Self {
        let (file, line) = match location.rsplit_once(':') {
            Some((f, l)) if l.parse::<usize>().is_ok() => (f, l.parse().unwrap_or(0)),
            _ => (location, 0),
        };
        Problem::at(Some(Path::new(file)), line, 0, message)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(p), 0, _) => write!(f, "{}: {}", p.display(), self.message),
            (Some(p), l, 0) => write!(f, "{}:{l}: {}", p.display(), self.message),
            (Some(p), l, c) => write!(f, "{}:{l}:{c}: {}", p.display(), self.message),
            (None, _, _) => f.write_str(&self.message),
        }
    }
}

/// What [`check_project`] found.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    /// The project's name, when it loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The stage checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Every problem, sorted by file, line and column.
    pub problems: Vec<Problem>,
    /// Warnings of the loader and the provider (not problems).
    pub warnings: Vec<String>,
    /// What was checked: counts of stages, servers, services, volumes,
    /// networks, roles and tasks files.
    pub checked: Checked,
}

/// The sizes of what was checked.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Checked {
    /// Stages defined.
    pub stages: usize,
    /// Servers of the stage.
    pub servers: usize,
    /// Services of the stage.
    pub services: usize,
    /// Volumes of the stage.
    pub volumes: usize,
    /// Networks of the stage.
    pub networks: usize,
    /// Templated values rendered.
    pub values: usize,
    /// Roles named (images, initialize_roles, addon).
    pub roles: usize,
}

/// How a module hive does not implement may still run: the modules of an
/// installed Ansible, listed by `ansible-doc` the first time one is asked
/// for (never when every module is hive's own or the project's).
#[derive(Debug, Default)]
pub struct ModuleSources {
    ansible: std::sync::OnceLock<Option<HashSet<String>>>,
}

impl ModuleSources {
    /// Modules are looked up in the Ansible installed on this machine.
    pub fn installed() -> Self {
        ModuleSources::default()
    }

    /// Whether an installed Ansible provides module `name`.
    pub fn ansible_has(&self, name: &str) -> bool {
        self.ansible
            .get_or_init(ansible_modules)
            .as_ref()
            .is_some_and(|a| a.contains(name))
    }
}

/// The modules `ansible-doc` on `PATH` lists, short names of
/// `ansible.builtin` included (none when it is not installed or fails).
fn ansible_modules() -> Option<HashSet<String>> {
    let o = std::process::Command::new("ansible-doc")
        .args(["--list", "--json", "-t", "module"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    let mut names = HashSet::new();
    for name in v.as_object()?.keys() {
        names.insert(name.clone());
        if let Some(short) = name.strip_prefix("ansible.builtin.") {
            names.insert(short.to_string());
        }
    }
    Some(names)
}

/// Checks the project `loader` loads, for its stage; writes nothing but
/// what rendering the project's own lookups writes (Ansible's `password`
/// lookup creates its file, as in a run).
pub fn check_project(loader: ProjectLoader, modules: &ModuleSources) -> CheckReport {
    let mut report = CheckReport::default();
    let project = match loader.load() {
        Ok(p) => p,
        Err(errors) => {
            for e in errors.iter() {
                report.problems.push(match (e.location(), e) {
                    (Some(l), _) => Problem::at(Some(&l.file), l.line, l.column, strip(e, l)),
                    (None, hive_inventory::Error::Read { path, source }) => {
                        Problem::at(Some(path), 0, 0, format!("cannot read: {source}"))
                    }
                    (None, e) => Problem::at(None, 0, 0, e.to_string()),
                });
            }
            sort(&mut report.problems);
            return report;
        }
    };
    check_loaded(&project, modules)
}

/// Checks a loaded project, for its stage (see [`check_project`]).
pub fn check_loaded(project: &Project, modules: &ModuleSources) -> CheckReport {
    let mut report = CheckReport {
        project: Some(project.name().to_string()),
        stage: Some(project.stage().to_string()),
        ..Default::default()
    };
    report.warnings.extend(project.warnings().iter().cloned());
    report.checked.stages = project.stages().len();
    let mut checker = Checker {
        project,
        templar: Templar::new(project.root_dir()),
        positions: Positions::default(),
        problems: Vec::new(),
        values: 0,
        reported: HashSet::new(),
    };
    if let Some(site) = checker.stage() {
        let stage = site.stage().name;
        report.checked.servers = project.servers_of(stage).count();
        report.checked.services = project
            .services()
            .iter()
            .filter(|s| s.available_on.contains(&stage))
            .count();
        report.checked.volumes = project
            .volumes()
            .iter()
            .filter(|v| v.available_on.contains(&stage))
            .count();
        report.checked.networks = project
            .networks()
            .iter()
            .filter(|n| n.available_on.contains(&stage))
            .count();
        checker.provider(&site, &mut report.warnings);
        let rendered_clean = checker.values(&site);
        if rendered_clean {
            checker.derived(&site);
        }
        report.checked.roles = checker.roles(&site, modules);
    }
    checker.symlink_loops(&project.root_dir().join("roles"));
    report.checked.values = checker.values;
    report.problems = checker.problems;
    sort(&mut report.problems);
    report
}

fn strip(e: &hive_inventory::Error, l: &hive_inventory::Location) -> String {
    let text = e.to_string();
    let prefix = format!("{l}: ");
    text.strip_prefix(&prefix).unwrap_or(&text).to_string()
}

fn sort(problems: &mut [Problem]) {
    problems.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
    });
}

/// A host of the stage, the `hive_*` variables the phases render for it,
/// and, for a service or its image, the service (and whether it is the
/// image host).
type HostValues<'a> = (
    String,
    Vec<String>,
    Option<(&'a hive_inventory::Service, bool)>,
);

/// Positions of keys in the project's YAML files, parsed once each.
#[derive(Default)]
struct Positions {
    files: std::collections::HashMap<PathBuf, Option<hive_inventory::yaml::Node>>,
}

impl Positions {
    /// Line and column of the key at `path` (`services`, `web`,
    /// `environment`) in `file`.
    fn key(&mut self, file: &Path, path: &[&str]) -> Option<(usize, usize)> {
        let node = self.files.entry(file.to_path_buf()).or_insert_with(|| {
            let text = std::fs::read_to_string(file).ok()?;
            hive_inventory::yaml::parse(file, &text).ok()
        });
        let mut node = node.as_ref()?;
        let mut mark = None;
        for step in path {
            let (k, v) = node
                .as_map()?
                .iter()
                .find(|(k, _)| k.key_string().as_deref() == Some(step))?;
            mark = Some((k.mark.line, k.mark.column));
            node = v;
        }
        mark
    }
}

struct Checker<'p> {
    project: &'p Project,
    positions: Positions,
    templar: Templar,
    problems: Vec<Problem>,
    values: usize,
    /// (file, line) of variables already reported, so that a group
    /// variable failing on every host is reported once.
    reported: HashSet<(PathBuf, usize, String)>,
}

impl<'p> Checker<'p> {
    fn push(&mut self, p: Problem) {
        let key = (
            p.file.clone().unwrap_or_default(),
            p.line,
            p.message.clone(),
        );
        if self.reported.insert(key) {
            self.problems.push(p);
        }
    }

    /// The stage's site, or a problem saying which stages exist.
    fn stage(&mut self) -> Option<StageSite<'p>> {
        let project = self.project;
        match StageSite::new(project) {
            Ok(site) => Some(site),
            Err(_) => {
                let defined: Vec<String> = project
                    .stages()
                    .iter()
                    .map(|s| s.name.to_string())
                    .collect();
                let file = project
                    .stages()
                    .first()
                    .map(|s| s.file.clone())
                    .unwrap_or_else(|| project.inventory_path().to_path_buf());
                self.push(Problem::at(
                    Some(&file),
                    0,
                    0,
                    format!(
                        "stages: stage {} is not defined (defined: {}); add it under `stages:` or choose one with -s",
                        project.stage(),
                        if defined.is_empty() {
                            "none".to_string()
                        } else {
                            defined.join(", ")
                        }
                    ),
                ));
                None
            }
        }
    }

    /// The provider must be supported and accept the stage's settings.
    fn provider(&mut self, site: &StageSite<'_>, warnings: &mut Vec<String>) {
        let file = site.stage().file.clone();
        let at = |message: String| {
            Problem::at(
                Some(&file),
                0,
                0,
                format!("stages.{}: {message}", site.stage().name),
            )
        };
        let spec = match site.provider_stage() {
            Ok(s) => s,
            Err(e) => {
                self.push(at(error_text(&e)));
                return;
            }
        };
        let provider = match hive_provider::provider_for(&spec) {
            Ok(p) => p,
            Err(e) => {
                self.push(at(e.to_string()));
                return;
            }
        };
        match provider.validate(&spec) {
            Ok(w) => warnings.extend(w),
            Err(e) => self.push(at(e.to_string())),
        }
    }

    /// Renders every value the phases render, per host of the stage.
    /// Returns whether everything rendered.
    fn values(&mut self, site: &StageSite<'_>) -> bool {
        let project = self.project;
        let stage = site.stage().name;
        let before = self.problems.len();
        let built = SiteBuilder::new(project).build();
        let mut hosts: Vec<HostValues<'_>> = Vec::new();
        let mut service_keys: Vec<String> = hive_inventory::SERVICE_PARAMETERS
            .iter()
            .map(|p| format!("hive_{}", p.name))
            .collect();
        service_keys.extend(["hive_ports".to_string(), "hive_image".to_string()]);
        let image_keys: Vec<String> = hive_inventory::IMAGE_PARAMS
            .iter()
            .map(|k| format!("hive_{k}"))
            .collect();
        for s in project.servers_of(stage) {
            hosts.push((s.name.clone(), Vec::new(), None));
        }
        for s in project.services() {
            if s.available_on.contains(&stage) {
                hosts.push((s.name.clone(), service_keys.clone(), Some((s, false))));
                hosts.push((
                    format!("image_{}", s.name),
                    image_keys.clone(),
                    Some((s, true)),
                ));
            }
        }
        for (host, keys, service) in hosts {
            let (Some(vars), Some(defined)) = (built.vars_for(&host), project.host_vars(&host))
            else {
                continue;
            };
            for (name, var) in &defined {
                let own = matches!(
                    var.origin,
                    Origin::GroupVars { .. } | Origin::HostVars { .. }
                );
                if !own && !keys.iter().any(|k| k == name) {
                    continue;
                }
                self.values += 1;
                let at = match service {
                    Some((s, image)) if !own => {
                        let key = name.strip_prefix("hive_").unwrap_or(name);
                        let mut path = vec!["services", s.name.as_str()];
                        if image {
                            path.push("image");
                        }
                        path.push(key);
                        self.positions
                            .key(&s.file, &path)
                            .map(|(l, c)| (s.file.clone(), l, c))
                    }
                    _ => None,
                };
                self.value(name, var, &vars, own, at);
            }
        }
        self.problems.len() == before
    }

    fn value(
        &mut self,
        name: &str,
        var: &Variable,
        vars: &Vars,
        own: bool,
        at: Option<(PathBuf, usize, usize)>,
    ) {
        let raw = vars.get(name).cloned().unwrap_or_else(|| var.value.clone());
        let Err(e) = self.templar.render_value(&raw, vars) else {
            return;
        };
        if own && runtime_only(&e) {
            return;
        }
        // A project variable failing on every host is one problem.
        if own
            && !self.reported.insert((
                var.origin.file().to_path_buf(),
                var.origin.line().unwrap_or(0),
                name.to_string(),
            ))
        {
            return;
        }
        let key = name.strip_prefix("hive_").filter(|_| !own).unwrap_or(name);
        let (file, line, column) = at.unwrap_or_else(|| {
            (
                var.origin.file().to_path_buf(),
                var.origin.line().unwrap_or(0),
                0,
            )
        });
        self.push(Problem::at(
            Some(&file),
            line,
            column,
            format!("{key}: {}", e.full_message()),
        ));
    }

    /// What the phases derive from the rendered values (service
    /// definitions as hive-swarm reads them, the setup-hosts settings,
    /// volumes), once every value rendered.
    fn derived(&mut self, site: &StageSite<'_>) {
        let file = site.stage().file.clone();
        let checks: [(&str, Result<(), crate::Error>); 5] = [
            ("services", site.service_definitions().map(drop)),
            ("setup-hosts settings", site.setup_hosts_params().map(drop)),
            ("swarm", site.swarm_stage().map(drop)),
            ("drbd volumes", site.drbd_volumes().map(drop)),
            ("driver volumes", site.driver_volumes().map(drop)),
        ];
        for (what, result) in checks {
            if let Err(e) = result {
                self.push(Problem::at(
                    Some(&file),
                    0,
                    0,
                    format!("{what}: {}", error_text(&e)),
                ));
            }
        }
    }

    /// Loads every role a run applies; returns how many were named.
    fn roles(&mut self, site: &StageSite<'_>, modules: &ModuleSources) -> usize {
        let project = self.project;
        let root = project.root_dir();
        let loader = RoleLoader::new([root.join("roles")]);
        let lib = root.join("lib");
        let known = |m: &str| {
            lib.join(format!("{m}.py")).is_file() || lib.join(m).is_file() || modules.ansible_has(m)
        };
        let mut named: Vec<(String, String)> = Vec::new();
        let stage = site.stage().name;
        for service in project.services() {
            if !service.available_on.contains(&stage) {
                continue;
            }
            let mut at = |path: &[&str]| -> String {
                let mut full = vec!["services", service.name.as_str()];
                full.extend(path);
                match self.positions.key(&service.file, &full) {
                    Some((l, _)) => format!("{}:{l}", service.file.display()),
                    None => service.file.display().to_string(),
                }
            };
            if let Some(hive_inventory::ServiceImage::Build(b)) = &service.image {
                if !b.pull_on.contains(&stage) {
                    let from = at(&["image", "roles"]);
                    named.extend(b.roles.iter().map(|r| (r.clone(), from.clone())));
                }
            }
            if let Some(serde_yaml::Value::Sequence(roles)) = service.params.get("initialize_roles")
            {
                let from = at(&["initialize_roles"]);
                named.extend(
                    roles
                        .iter()
                        .filter_map(|r| r.as_str())
                        .map(|r| (r.to_string(), from.clone())),
                );
            }
        }
        for addon in ["addon", "addon2"] {
            if root.join("roles").join(addon).is_dir() {
                named.push((addon.to_string(), root.join("roles").display().to_string()));
            }
        }
        let mut lint = RoleLint::new(&loader, &known);
        for (role, from) in &named {
            lint.role(role, from);
        }
        for f in lint.finish() {
            self.push(Problem::at_location(&f.location, f.message));
        }
        named.len()
    }

    /// A directory symlink under `dir` that leads back to one of its own
    /// ancestors (or a link that cannot be resolved because it loops).
    fn symlink_loops(&mut self, dir: &Path) {
        let mut stack = vec![(dir.to_path_buf(), Vec::<PathBuf>::new())];
        while let Some((d, ancestors)) = stack.pop() {
            let Ok(real) = d.canonicalize() else {
                continue;
            };
            if ancestors.contains(&real) {
                self.push(Problem::at(
                    Some(&d),
                    0,
                    0,
                    format!(
                        "symbolic link loop: {} leads back to {}; roles are read recursively, replace the link",
                        d.display(),
                        real.display()
                    ),
                ));
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut next = ancestors.clone();
            next.push(real);
            for entry in entries.flatten() {
                let path = entry.path();
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_dir() => stack.push((path, next.clone())),
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(40) => self.push(Problem::at(
                        Some(&path),
                        0,
                        0,
                        "symbolic link loop: the link resolves to itself; replace it with a file or a link to one",
                    )),
                    Err(_) => {}
                }
            }
        }
    }
}

/// An undefined variable that only a run defines: facts gathered from the
/// servers (`ansible_*`), loop items and registered results are not known
/// before the run, so a project variable using them is not a problem.
fn runtime_only(e: &TemplateError) -> bool {
    if !e.is_undefined() {
        return false;
    }
    let message = e.full_message();
    let Some(name) = message
        .split('\'')
        .nth(1)
        .filter(|_| message.contains("is undefined"))
    else {
        return false;
    };
    name.starts_with("ansible_") || name == "item"
}
