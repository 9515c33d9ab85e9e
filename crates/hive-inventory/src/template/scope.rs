//! Template-side objects: lazily rendered variable scopes, `hostvars`,
//! `groups`, undefined values that remember why, and mutable containers.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

use super::TemplateError;
use super::engine::{Failure, Inner};
use super::objects::{Missing, lock, missing_message};
use super::vars::{ScopeCache, Vars};

/// The variable under which a render's scope is found by the lookups
/// (which render their terms with the caller's variables).
pub(crate) const SCOPE_VAR: &str = "__hive_scope";

/// Names the template environment provides as globals; a scope never
/// shadows them with an undefined value.
pub(crate) const GLOBALS: &[&str] = &[
    "lookup",
    "query",
    "q",
    "now",
    "dict",
    "namespace",
    "range",
    "cycler",
    "joiner",
    "debug",
    "_hive_mutable",
    "_hive_tuple",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
];

/// State shared by everything one top-level render touches.
pub(crate) struct RenderCtx {
    pub(crate) inner: Arc<Inner>,
    stack: Mutex<Vec<String>>,
    pub(crate) fatal: Mutex<Option<TemplateError>>,
    hosts: Mutex<HashMap<String, Value>>,
    /// the render read an unsafe value (a final variable, a lookup's
    /// result): its result is unsafe too, as Ansible's `AnsibleContext`
    /// marks it
    tainted: AtomicBool,
}

impl fmt::Debug for RenderCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RenderCtx")
    }
}

impl RenderCtx {
    pub(crate) fn new(inner: Arc<Inner>) -> Arc<RenderCtx> {
        Arc::new(RenderCtx {
            inner,
            stack: Mutex::new(Vec::new()),
            fatal: Mutex::new(None),
            hosts: Mutex::new(HashMap::new()),
            tainted: AtomicBool::new(false),
        })
    }

    /// Records that the render read an unsafe value.
    pub(crate) fn taint(&self) {
        self.tainted.store(true, Ordering::Relaxed);
    }

    /// Whether the render read an unsafe value.
    pub(crate) fn is_tainted(&self) -> bool {
        self.tainted.load(Ordering::Relaxed)
    }

    /// Sets whether the render read an unsafe value; returns what it was.
    fn set_tainted(&self, tainted: bool) -> bool {
        self.tainted.swap(tainted, Ordering::Relaxed)
    }

    fn set_fatal(&self, err: TemplateError) {
        let mut f = lock(&self.fatal);
        if f.is_none() {
            *f = Some(err);
        }
    }

    pub(crate) fn take_fatal(&self) -> Option<TemplateError> {
        lock(&self.fatal).take()
    }
}

/// A variable scope as the template sees it: variables render on first use.
#[derive(Debug)]
pub(crate) struct Scope {
    pub(crate) ctx: Arc<RenderCtx>,
    pub(crate) vars: Arc<Vars>,
    cache: Arc<ScopeCache>,
    /// true for `hostvars[h]` (errors name the HostVarsVars object)
    foreign: bool,
}

impl Scope {
    pub(crate) fn new(ctx: Arc<RenderCtx>, vars: Arc<Vars>) -> Scope {
        let cache = match (&vars.host, vars.modified) {
            (Some(link), false) => link.site.host_cache(&ctx.inner.root, &link.host),
            _ => Arc::new(Mutex::new(HashMap::new())),
        };
        Scope {
            ctx,
            vars,
            cache,
            foreign: false,
        }
    }

    fn host_label(&self) -> String {
        self.vars.host().unwrap_or("localhost").to_string()
    }

    fn missing_var(&self, name: &str) -> Value {
        if self.foreign {
            Missing::value(format!(
                "'ansible.vars.hostvars.HostVarsVars object' has no attribute '{name}'"
            ))
        } else {
            Missing::value(format!("'{name}' is undefined"))
        }
    }

    /// Resolves a variable: magic variables, then the scope's own.
    /// A final variable is unsafe: reading it taints the render, and so
    /// does reading a variable whose own template read an unsafe value.
    pub(crate) fn lookup(self: &Arc<Self>, name: &str) -> Option<Value> {
        if let Some((v, tainted)) = lock(&self.cache).get(name) {
            if *tainted {
                self.ctx.taint();
            }
            return Some(v.clone());
        }
        let Some(entry) = self.vars.entries.get(name) else {
            return self.magic(name);
        };
        if entry.is_final {
            let v = super::pyvalue::yaml_to_value(&entry.value);
            lock(&self.cache).insert(name.to_string(), (v.clone(), true));
            self.ctx.taint();
            return Some(v);
        }
        let key = format!("{}/{}", self.host_label(), name);
        {
            let mut stack = lock(&self.ctx.stack);
            if let Some(pos) = stack.iter().position(|k| *k == key) {
                let mut chain: Vec<String> = stack[pos..]
                    .iter()
                    .map(|k| k.rsplit('/').next().unwrap_or(k).to_string())
                    .collect();
                chain.push(name.to_string());
                self.ctx.set_fatal(TemplateError::Recursion {
                    host: self.host_label(),
                    chain: chain.join(" -> "),
                });
                return Some(Missing::value(format!(
                    "recursive loop detected in '{name}'"
                )));
            }
            stack.push(key);
        }
        let scope_value = self.template_scope();
        let outer_tainted = self.ctx.set_tainted(false);
        let result = self.ctx.inner.render_yaml(&entry.value, &scope_value);
        let tainted = self.ctx.is_tainted();
        self.ctx.set_tainted(outer_tainted || tainted);
        lock(&self.ctx.stack).pop();
        let value = match result {
            Ok(v) => v,
            Err(Failure::Undefined { message, template }) => {
                let origin = entry
                    .origin
                    .as_deref()
                    .map(|o| format!(", from {o}"))
                    .unwrap_or_default();
                Missing::value(format!(
                    "{template}: {message} (variable '{name}' of host {}{origin})",
                    self.host_label()
                ))
            }
            Err(Failure::Fatal(err)) => {
                self.ctx.set_fatal(err.in_variable(
                    name,
                    &self.host_label(),
                    entry.origin.as_deref(),
                ));
                Missing::value(format!("'{name}' failed to render"))
            }
        };
        // a value computed while a fatal error (a cycle, a failing lookup) is
        // pending is not kept: the next render must report the error again
        if lock(&self.ctx.fatal).is_none() {
            lock(&self.cache).insert(name.to_string(), (value.clone(), tainted));
        }
        Some(value)
    }

    /// The scope a variable's own template renders in: the host's
    /// variables, read strictly even when the variable was read through
    /// `hostvars` (only that outer read is lenient, as in Ansible).
    fn template_scope(self: &Arc<Self>) -> Value {
        if !self.foreign {
            return Value::from_dyn_object(Arc::clone(self));
        }
        Value::from_object(Scope {
            ctx: Arc::clone(&self.ctx),
            vars: Arc::clone(&self.vars),
            cache: Arc::clone(&self.cache),
            foreign: false,
        })
    }

    /// A variable read through `hostvars[host]`: as Ansible's
    /// `HostVarsVars`, rendered with the host's own variables and without
    /// failing on undefined ones: each string whose template uses an
    /// undefined variable is left as written.
    fn lookup_lenient(self: &Arc<Self>, name: &str) -> Option<Value> {
        let value = self.lookup(name)?;
        let Some(entry) = self.vars.entries.get(name) else {
            return Some(value);
        };
        if entry.is_final || missing_message(&value).is_none() || lock(&self.ctx.fatal).is_some() {
            return Some(value);
        }
        let scope_value = self.template_scope();
        match self
            .ctx
            .inner
            .render_yaml_lenient(&entry.value, &scope_value)
        {
            Ok(v) => Some(v),
            Err(Failure::Fatal(err)) => {
                self.ctx.set_fatal(err.in_variable(
                    name,
                    &self.host_label(),
                    entry.origin.as_deref(),
                ));
                Some(value)
            }
            Err(Failure::Undefined { .. }) => Some(value),
        }
    }

    fn magic(self: &Arc<Self>, name: &str) -> Option<Value> {
        let link = self.vars.host.as_ref();
        let v = match (name, link) {
            ("omit", _) => Value::from(self.ctx.inner.omit.as_str()),
            (SCOPE_VAR, _) => Value::from_dyn_object(Arc::clone(self)),
            ("inventory_hostname", Some(l)) => Value::from(l.host.as_str()),
            ("inventory_hostname_short", Some(l)) => {
                Value::from(l.host.split('.').next().unwrap_or_default())
            }
            ("group_names", Some(l)) => {
                let mut names: Vec<String> = l
                    .site
                    .group_names(&l.host)
                    .map(<[String]>::to_vec)
                    .unwrap_or_default();
                names.retain(|g| g != "all" && g != "ungrouped");
                names.sort();
                Value::from(names)
            }
            ("groups", Some(l)) => Value::from_object(Groups {
                site: Arc::clone(&l.site),
            }),
            ("hostvars", Some(l)) => Value::from_object(HostVars {
                ctx: Arc::clone(&self.ctx),
                site: Arc::clone(&l.site),
            }),
            _ if GLOBALS.contains(&name) => return None,
            _ => self.missing_var(name),
        };
        Some(v)
    }
}

impl Object for Scope {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        // `'x' in hostvars[h]` must test the variable names, while a lookup
        // of a missing name must stay undefined (chainable): a sequence of
        // names gives both.
        if self.foreign {
            ObjectRepr::Seq
        } else {
            ObjectRepr::Map
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if self.foreign {
            self.lookup_lenient(name)
        } else {
            self.lookup(name)
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut names: Vec<Value> = self.vars.names().map(Value::from).collect();
        if self.vars.host.is_some() {
            for magic in [
                "inventory_hostname",
                "inventory_hostname_short",
                "group_names",
            ] {
                if !self.vars.contains(magic) {
                    names.push(Value::from(magic));
                }
            }
        }
        Enumerator::Values(names)
    }
}

/// `hostvars`: every host's scope, rendered with that host's variables.
#[derive(Debug)]
struct HostVars {
    ctx: Arc<RenderCtx>,
    site: Arc<super::vars::Site>,
}

impl Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let host = key.as_str()?;
        if let Some(v) = lock(&self.ctx.hosts).get(host) {
            return Some(v.clone());
        }
        let Some(vars) = self.site.vars_for(host) else {
            return Some(Missing::value(format!(
                "'ansible.vars.hostvars.HostVars object' has no attribute '{host}'"
            )));
        };
        let mut scope = Scope::new(Arc::clone(&self.ctx), Arc::new(vars));
        scope.foreign = true;
        let v = Value::from_object(scope);
        lock(&self.ctx.hosts).insert(host.to_string(), v.clone());
        Some(v)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.site.hosts().map(Value::from).collect())
    }
}

/// `groups`: group name → host names.
#[derive(Debug)]
struct Groups {
    site: Arc<super::vars::Site>,
}

impl Object for Groups {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        Some(match self.site.groups().get(name) {
            Some(hosts) => Value::from(hosts.clone()),
            None => Missing::value(format!("'dict object' has no attribute '{name}'")),
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.site
                .groups()
                .keys()
                .map(|k| Value::from(k.as_str()))
                .collect(),
        )
    }
}
