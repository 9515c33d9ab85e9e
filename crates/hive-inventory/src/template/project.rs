//! Rendering on a loaded [`Project`]: every host's scope, with the derived
//! defaults, the inventory's merged variables and hive's run-time variables.

use std::sync::Arc;

use serde_yaml::Value as Yaml;

use super::defaults::host_defaults;
use super::{Site, Templar, TemplateError, Vars};
use crate::Project;

/// The run-time variables hive passes to every phase (Ansible's extra vars,
/// highest precedence): `hive_stage`, `hive_root_dir`, `hive_context_dir`,
/// `hive_temp_dir` (`/var/tmp/hive`) and the defaults of the settings the
/// original passes to every phase (`hive_tls_logging: false`,
/// `hive_http_proxy_port: '3128'`, cleanup days 3, ...). Phase runners add
/// their own (`hive_phase`, `hive_limit`, ...) with [`Vars::insert`].
pub fn run_vars(project: &Project) -> Vars {
    let mut vars = Vars::new();
    let path = |p: &std::path::Path| Yaml::String(p.to_string_lossy().into_owned());
    vars.insert(
        "hive_stage",
        Yaml::String(project.stage().as_str().to_string()),
    );
    vars.insert("hive_root_dir", path(project.root_dir()));
    vars.insert("hive_context_dir", path(project.context_dir()));
    vars.insert("hive_temp_dir", Yaml::String("/var/tmp/hive".into()));
    vars.insert("hive_tls_logging", Yaml::Bool(false));
    vars.insert("hive_http_proxy_port", Yaml::String("3128".into()));
    vars.insert("hive_no_format", Yaml::Bool(false));
    vars.insert(
        "hive_registry_backup_cleanup_days_before",
        Yaml::Number(3.into()),
    );
    vars.insert(
        "hive_zabbix_backup_cleanup_days_before",
        Yaml::Number(3.into()),
    );
    vars
}

/// Builds the [`Site`] of a loaded project: for each host, the derived
/// defaults (hosts of group `hosts`), the merged inventory variables, any
/// facts, then the extra (run-time) variables.
///
/// ```no_run
/// use hive_inventory::{template, Project};
/// let project = Project::load(std::path::Path::new("/srv/site")).unwrap();
/// let site = template::SiteBuilder::new(&project).build();
/// let vars = site.vars_for("p-hive0.pdns").unwrap();
/// let templar = template::Templar::new(project.root_dir());
/// println!("{:?}", templar.render_str("{{ hive_registry }}", &vars));
/// ```
#[derive(Debug)]
#[must_use]
pub struct SiteBuilder<'a> {
    project: &'a Project,
    extra: Vars,
    facts: indexmap::IndexMap<String, Vars>,
}

impl<'a> SiteBuilder<'a> {
    /// A builder with [`run_vars`] as extra variables.
    pub fn new(project: &'a Project) -> SiteBuilder<'a> {
        SiteBuilder {
            project,
            extra: run_vars(project),
            facts: indexmap::IndexMap::new(),
        }
    }

    /// Replaces the extra (run-time) variables.
    pub fn extra_vars(mut self, vars: Vars) -> Self {
        self.extra = vars;
        self
    }

    /// Adds facts of a host (above inventory variables, below extra vars).
    pub fn facts(mut self, host: impl Into<String>, vars: Vars) -> Self {
        self.facts.entry(host.into()).or_default().extend(&vars);
        self
    }

    /// Builds the site.
    pub fn build(self) -> Arc<Site> {
        let groups = self.project.groups();
        let mut site = Site::new(groups.clone());
        let in_group = |g: &str, h: &str| groups.get(g).is_some_and(|hs| hs.iter().any(|x| x == h));
        for host in self.project.hosts() {
            let mut vars = if in_group("hosts", host) {
                host_defaults(in_group("mother", host))
            } else {
                Vars::new()
            };
            for (name, var) in self.project.host_vars(host).unwrap_or_default() {
                vars.insert_with_origin(name, sorted_keys(var.value), var.origin.to_string());
            }
            if let Some(facts) = self.facts.get(host) {
                vars.extend(facts);
            }
            vars.extend(&self.extra);
            site.add_host(host, vars, self.project.group_names(host));
        }
        Arc::new(site)
    }
}

/// Inventory values as Ansible's inventory shows them to templates: map
/// keys in sorted order (as `ansible-inventory` exports them).
fn sorted_keys(v: Yaml) -> Yaml {
    match v {
        Yaml::Mapping(m) => {
            let mut pairs: Vec<(Yaml, Yaml)> =
                m.into_iter().map(|(k, v)| (k, sorted_keys(v))).collect();
            pairs.sort_by_key(|a| key_text(&a.0));
            Yaml::Mapping(pairs.into_iter().collect())
        }
        Yaml::Sequence(items) => Yaml::Sequence(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}

fn key_text(k: &Yaml) -> String {
    match k {
        Yaml::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default(),
    }
}

/// Renders one template for a host of a loaded project, with the project's
/// run-time variables: the one-call way to see a value as hive sees it.
/// (It builds the whole [`Site`]; to render many values, build the site once
/// with [`SiteBuilder`] and reuse it.)
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # std::fs::create_dir(dir.path().join("inventory")).unwrap();
/// # std::fs::write(dir.path().join("inventory/hive.yml"),
/// #   "plugin: hive_inventory\nname: demo\nstages:\n  private:\n    provider: vagrant\n    separate_repository: no\n    number_of_hosts: 1\n    cidr: 192.168.56.0/27\n").unwrap();
/// use hive_inventory::{template, Project};
/// let project = Project::load(dir.path()).unwrap();
/// let registry = template::render_for_host(&project, "p-hive0.demo", "{{ hive_registry }}").unwrap();
/// assert_eq!(registry.as_str(), Some("p-hive0.demo:5000"));
/// // the same, as a method of the project
/// let admin = project.render("p-hive0.demo", "{{ hive_safe_admin }}").unwrap();
/// assert_eq!(admin.as_str(), Some("vagrant"));
/// ```
pub fn render_for_host(
    project: &Project,
    host: &str,
    template: &str,
) -> Result<Yaml, TemplateError> {
    let site = SiteBuilder::new(project).build();
    let vars = site
        .vars_for(host)
        .ok_or_else(|| TemplateError::UnknownHost {
            host: host.to_string(),
        })?;
    Templar::new(project.root_dir()).render_str(template, &vars)
}

impl Project {
    /// Renders one template for a host, as Ansible would on that host (see
    /// [`template::render_for_host`](crate::template::render_for_host)).
    ///
    /// ```no_run
    /// # let project = hive_inventory::Project::load(std::path::Path::new("/srv/site")).unwrap();
    /// let password = project.render("powerdns", "{{ db_password }}").unwrap();
    /// ```
    pub fn render(&self, host: &str, template: &str) -> Result<Yaml, TemplateError> {
        render_for_host(self, host, template)
    }
}
