//! Ansible-compatible Jinja2 rendering of a hive project's values.
//!
//! hive projects are written in Ansible's dialect of Jinja2. [`Templar`]
//! renders them the way Ansible 2.18 does (`jinja2_native` off):
//!
//! * the Ansible filters, tests and lookups hive projects use (`default` with
//!   `omit`, `combine`, `ipaddr`, `regex_replace`, `lookup('password', ...)`,
//!   ...) on top of minijinja's Jinja2 engine with `trim_blocks`;
//! * Ansible's typing of results: a template that is one variable returns
//!   that variable's value; any other template yields a string, turned back
//!   into a list, dict or boolean when it spells one as a Python literal;
//! * lazy, recursive resolution: a variable whose value is a template is
//!   rendered when a template uses it, with its host's variables; a cycle
//!   is an error naming the chain;
//! * `hostvars[host][var]` is rendered with that host's own variables and,
//!   as Ansible's `HostVarsVars`, without failing on undefined ones: a
//!   string whose template uses one is left as written;
//! * unsafe values: final variables ([`Vars::insert_final`]: registered
//!   results, facts) and lookup results are never templated again, and a
//!   render that reads one is unsafe too ([`Templar::render_value_marked`]
//!   tells), as Ansible's `AnsibleContext` marks it;
//! * `omit`: [`Templar::render_value`] drops map keys whose value renders to
//!   the omit placeholder, as Ansible does with module arguments.
//!
//! On a loaded project, one call renders a value for a host:
//! [`render_for_host`] (or [`Project::render`](crate::Project::render));
//! [`SiteBuilder`] builds every host's scope once for many renders.
//!
//! A scope of variables is a [`Vars`]; a [`Site`] links the hosts of a site
//! so that `hostvars`, `groups`, `group_names` and `inventory_hostname` work.
//! [`defaults`] re-expresses the derived variables the original playbooks
//! define for every server (`hive_safe_admin`, `hive_registry`, ...).
//!
//! ```
//! use hive_inventory::template::{Templar, Vars};
//!
//! let templar = Templar::new(std::path::Path::new("."));
//! let mut vars = Vars::new();
//! vars.insert("hive_provider", "aws".into());
//! vars.insert("ports", serde_yaml::from_str("[53, 80]").unwrap());
//! let v = templar
//!     .render_str("{{ 'ntp' if hive_provider == 'vagrant' else omit }}", &vars)
//!     .unwrap();
//! assert_eq!(v.as_str(), Some(templar.omit_token()));
//! let ports = templar.render_str("{{ ports | map('string') | list }}", &vars).unwrap();
//! assert_eq!(ports, serde_yaml::from_str::<serde_yaml::Value>("['53', '80']").unwrap());
//! assert!(templar.is_true("80 in ports", &vars).unwrap());
//! ```

mod clock;
pub mod defaults;
mod engine;
mod environment;
mod files;
mod filters;
mod ipaddr;
mod lookups;
mod loops;
mod objects;
mod project;
mod pyset;
pub(crate) mod pyvalue;
mod random;
mod scope;
mod serialize;
mod vars;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use minijinja::Value;
use serde_yaml::Value as Yaml;

pub use loops::{LIST_LOOKUPS, list_lookup};
pub use project::{SiteBuilder, render_for_host, run_vars};
pub use vars::{Site, Vars};

use engine::{Failure, Inner, Mode};
use scope::{RenderCtx, Scope};

/// An error rendering a template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse.
    #[error("template error in '{template}': {message}")]
    Syntax {
        /// the template text
        template: String,
        /// what is wrong
        message: String,
    },
    /// The template uses an undefined variable or attribute.
    #[error("undefined variable on host {host}: {message} (in '{template}')")]
    Undefined {
        /// the host whose variables were used
        host: String,
        /// Ansible's description, e.g. `'x' is undefined`
        message: String,
        /// the template text
        template: String,
    },
    /// Rendering failed (a filter, test or lookup error).
    #[error("cannot render '{template}': {message}")]
    Render {
        /// the template text
        template: String,
        /// what failed
        message: String,
    },
    /// Variables refer to each other in a cycle.
    #[error("recursive loop detected in variables of host {host}: {chain}")]
    Recursion {
        /// the host whose variables loop
        host: String,
        /// the chain of variable names, `a -> b -> a`
        chain: String,
    },
    /// The host is not in the inventory.
    #[error("unknown host '{host}': not in the inventory")]
    UnknownHost {
        /// the host asked for
        host: String,
    },
    /// A variable's own template failed.
    #[error("variable '{name}' of host {host}{}", origin.as_deref().map(|o| format!(" (from {o})")).unwrap_or_default())]
    Variable {
        /// the variable
        name: String,
        /// the host
        host: String,
        /// the file the variable came from
        origin: Option<String>,
        /// why it failed
        #[source]
        source: Box<TemplateError>,
    },
}

impl TemplateError {
    pub(crate) fn in_variable(self, name: &str, host: &str, origin: Option<&str>) -> TemplateError {
        match self {
            e @ (TemplateError::Recursion { .. } | TemplateError::Variable { .. }) => e,
            e => TemplateError::Variable {
                name: name.to_string(),
                host: host.to_string(),
                origin: origin.map(str::to_string),
                source: Box::new(e),
            },
        }
    }

    /// Whether the error is (caused by) an undefined variable or attribute.
    pub fn is_undefined(&self) -> bool {
        match self {
            TemplateError::Undefined { .. } => true,
            TemplateError::Variable { source, .. } => source.is_undefined(),
            _ => false,
        }
    }

    /// The message with its causes, on one line.
    pub fn full_message(&self) -> String {
        let mut s = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(e) = src {
            s.push_str(": ");
            s.push_str(&e.to_string());
            src = e.source();
        }
        s
    }
}

/// A minijinja environment with Ansible's filters, tests and lookups.
///
/// Lookups (`file`, `password`, `first_found`) resolve relative paths
/// against the project root given to [`Templar::new`].
#[derive(Clone)]
pub struct Templar {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Templar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templar")
            .field("root", &self.inner.root)
            .finish()
    }
}

fn omit_placeholder() -> &'static str {
    static OMIT: OnceLock<String> = OnceLock::new();
    OMIT.get_or_init(|| {
        use rand::Rng;
        use sha1::Digest;
        let seed: [u8; 32] = rand::thread_rng().r#gen();
        format!(
            "__omit_place_holder__{}",
            hex::encode(sha1::Sha1::digest(seed))
        )
    })
}

impl Templar {
    /// An environment whose lookups are relative to `root_dir`.
    pub fn new(root_dir: &Path) -> Templar {
        Templar::with_template_dirs(root_dir, vec![])
    }

    /// A templar whose `{% include %}`, `{% import %}` and `{% extends %}`
    /// find templates by name in `dirs` (a role's `templates/`), in order.
    pub fn with_template_dirs(root_dir: &Path, dirs: Vec<std::path::PathBuf>) -> Templar {
        Templar {
            inner: Arc::new(environment::inner(
                root_dir.to_path_buf(),
                omit_placeholder().to_string(),
                dirs,
            )),
        }
    }

    /// The placeholder `omit` renders to (`__omit_place_holder__<sha1>`).
    pub fn omit_token(&self) -> &str {
        &self.inner.omit
    }

    fn with_scope<T>(
        &self,
        vars: &Vars,
        template: &str,
        f: impl FnOnce(&Arc<RenderCtx>, &Value) -> Result<T, Failure>,
    ) -> Result<T, TemplateError> {
        self.with_scope_marked(vars, template, f).map(|(v, _)| v)
    }

    /// [`Templar::with_scope`], also telling whether the render read an
    /// unsafe value.
    fn with_scope_marked<T>(
        &self,
        vars: &Vars,
        template: &str,
        f: impl FnOnce(&Arc<RenderCtx>, &Value) -> Result<T, Failure>,
    ) -> Result<(T, bool), TemplateError> {
        let ctx = RenderCtx::new(Arc::clone(&self.inner));
        let scope = Value::from_object(Scope::new(Arc::clone(&ctx), Arc::new(vars.clone())));
        let result = f(&ctx, &scope);
        if let Some(fatal) = ctx.take_fatal() {
            return Err(fatal);
        }
        let tainted = ctx.is_tainted();
        let value = result.map_err(|failure| match failure {
            Failure::Fatal(e) => e,
            Failure::Undefined {
                message,
                template: t,
            } => TemplateError::Undefined {
                host: vars.host().unwrap_or("localhost").to_string(),
                message,
                template: if t.is_empty() {
                    template.to_string()
                } else {
                    t
                },
            },
        })?;
        Ok((value, tainted))
    }

    /// Renders a value recursively (strings as templates, maps and lists
    /// element by element) with Ansible's typing; map keys whose value is
    /// the omit placeholder are dropped, as for module arguments.
    pub fn render_value(&self, value: &Yaml, vars: &Vars) -> Result<Yaml, TemplateError> {
        self.render_value_marked(value, vars).map(|(v, _)| v)
    }

    /// [`Templar::render_value`], also telling whether the result is
    /// unsafe, as Ansible marks it: the render read the result of a lookup
    /// or a final variable ([`Vars::insert_final`]), directly or through
    /// the template of a variable it read. Store an unsafe result final:
    /// Ansible never templates it again.
    pub fn render_value_marked(
        &self,
        value: &Yaml,
        vars: &Vars,
    ) -> Result<(Yaml, bool), TemplateError> {
        let (rendered, tainted) =
            self.with_scope_marked(vars, "", |_, scope| self.inner.render_yaml(value, scope))?;
        let yaml = to_yaml(&rendered, "")?;
        Ok((self.strip_omit(yaml), tainted))
    }

    /// Removes map keys whose value is the omit placeholder, recursively (list
    /// elements equal to it stay, as in Ansible).
    pub fn strip_omit(&self, value: Yaml) -> Yaml {
        match value {
            Yaml::Mapping(m) => Yaml::Mapping(
                m.into_iter()
                    .filter(|(_, v)| v.as_str() != Some(self.omit_token()))
                    .map(|(k, v)| (k, self.strip_omit(v)))
                    .collect(),
            ),
            Yaml::Sequence(items) => {
                Yaml::Sequence(items.into_iter().map(|v| self.strip_omit(v)).collect())
            }
            other => other,
        }
    }

    /// Renders one template string with Ansible's typing of the result.
    pub fn render_str(&self, template: &str, vars: &Vars) -> Result<Yaml, TemplateError> {
        let v = self.with_scope(vars, template, |_, scope| {
            self.inner.render_string(template, scope, Mode::Value)
        })?;
        to_yaml(&v, template)
    }

    /// Renders a template file's text (the `template` module): always a
    /// string, backslashes as written.
    pub fn render_text(&self, template: &str, vars: &Vars) -> Result<String, TemplateError> {
        self.with_scope(vars, template, |_, scope| {
            self.inner.render_to_string(template, scope, Mode::Text)
        })
    }

    /// Evaluates a bare expression as Ansible's `when:`/`failed_when:` do.
    pub fn is_true(&self, condition: &str, vars: &Vars) -> Result<bool, TemplateError> {
        self.with_scope(vars, condition, |_, scope| {
            self.inner.eval_condition(condition, scope)
        })
    }
}

fn to_yaml(v: &Value, template: &str) -> Result<Yaml, TemplateError> {
    pyvalue::value_to_yaml(v).map_err(|message| TemplateError::Render {
        template: template.to_string(),
        message,
    })
}
