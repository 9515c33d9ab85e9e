//! Variable scopes: the raw (unrendered) variables a template can see.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use minijinja::Value;
use serde_yaml::Value as Yaml;

/// One variable of a scope.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) value: Yaml,
    pub(crate) is_final: bool,
    pub(crate) origin: Option<Arc<str>>,
}

/// A scope of raw (unrendered) variables, rendered lazily when a template
/// uses them.
///
/// Later insertions override earlier ones, so build a scope from the lowest
/// precedence up (defaults, inventory, extra vars, task vars). Values marked
/// final with [`Vars::insert_final`] (registered results, facts) are used as
/// they are and never rendered again.
///
/// ```
/// use hive_inventory::template::{Templar, Vars};
/// let mut vars = Vars::new();
/// vars.insert("name", "pdns".into());
/// vars.insert("fqdn", "{{ name }}.example.com".into());
/// let templar = Templar::new(std::path::Path::new("."));
/// assert_eq!(templar.render_text("{{ fqdn }}", &vars).unwrap(), "pdns.example.com");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Vars {
    pub(crate) entries: Arc<IndexMap<String, Entry>>,
    pub(crate) host: Option<HostLink>,
    /// true once variables were added after [`Site::vars_for`] built the scope
    pub(crate) modified: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct HostLink {
    pub(crate) site: Arc<Site>,
    pub(crate) host: String,
}

impl Vars {
    /// An empty scope.
    pub fn new() -> Vars {
        Vars::default()
    }

    /// Adds (or overrides) a raw variable.
    pub fn insert(&mut self, name: impl Into<String>, value: Yaml) -> &mut Vars {
        self.put(name.into(), value, false, None)
    }

    /// Adds (or overrides) a raw variable, remembering the file it came from
    /// (named in undefined-variable errors).
    pub fn insert_with_origin(
        &mut self,
        name: impl Into<String>,
        value: Yaml,
        origin: impl Into<String>,
    ) -> &mut Vars {
        let origin: String = origin.into();
        self.put(name.into(), value, false, Some(Arc::from(origin.as_str())))
    }

    /// Adds (or overrides) a variable whose value is final: it is never
    /// rendered (use it for registered results and facts).
    pub fn insert_final(&mut self, name: impl Into<String>, value: Yaml) -> &mut Vars {
        self.put(name.into(), value, true, None)
    }

    fn put(
        &mut self,
        name: String,
        value: Yaml,
        is_final: bool,
        origin: Option<Arc<str>>,
    ) -> &mut Vars {
        self.modified = true;
        let entries = Arc::make_mut(&mut self.entries);
        entries.shift_remove(&name);
        entries.insert(
            name,
            Entry {
                value,
                is_final,
                origin,
            },
        );
        self
    }

    /// Adds every variable of `other`, overriding those of the same name.
    pub fn extend(&mut self, other: &Vars) -> &mut Vars {
        self.modified = true;
        let entries = Arc::make_mut(&mut self.entries);
        for (k, e) in other.entries.iter() {
            entries.shift_remove(k);
            entries.insert(k.clone(), e.clone());
        }
        if self.host.is_none() {
            self.host.clone_from(&other.host);
        }
        self
    }

    /// The raw value of a variable.
    pub fn get(&self, name: &str) -> Option<&Yaml> {
        self.entries.get(name).map(|e| &e.value)
    }

    /// The file a variable came from, when known.
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.entries.get(name).and_then(|e| e.origin.as_deref())
    }

    /// Whether the scope holds a variable of that name.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The names of the variables, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The number of variables.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the scope is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The host this scope belongs to (set by [`Site::vars_for`]).
    pub fn host(&self) -> Option<&str> {
        self.host.as_ref().map(|h| h.host.as_str())
    }
}

impl From<IndexMap<String, Yaml>> for Vars {
    fn from(map: IndexMap<String, Yaml>) -> Vars {
        map.into_iter().collect()
    }
}

impl FromIterator<(String, Yaml)> for Vars {
    fn from_iter<I: IntoIterator<Item = (String, Yaml)>>(iter: I) -> Vars {
        let mut vars = Vars::new();
        for (k, v) in iter {
            vars.insert(k, v);
        }
        vars
    }
}

/// Every host of a site with its merged raw variables and groups: what
/// `hostvars`, `groups`, `group_names` and `inventory_hostname` show.
#[derive(Debug, Default)]
pub struct Site {
    pub(crate) hosts: IndexMap<String, SiteHost>,
    pub(crate) groups: IndexMap<String, Vec<String>>,
    pub(crate) cache: Mutex<HashMap<(PathBuf, String), Arc<ScopeCache>>>,
}

#[derive(Debug)]
pub(crate) struct SiteHost {
    pub(crate) vars: Vars,
    pub(crate) group_names: Vec<String>,
}

/// Rendered variables of one host, kept for the life of a [`Site`], each
/// with whether it is unsafe (its template read an unsafe value).
pub(crate) type ScopeCache = Mutex<HashMap<String, (Value, bool)>>;

impl Site {
    /// A site with these groups (group name → host names) and no hosts yet.
    pub fn new(groups: IndexMap<String, Vec<String>>) -> Site {
        Site {
            groups,
            ..Site::default()
        }
    }

    /// Adds a host with its merged raw variables (lowest precedence first)
    /// and the names of the groups it belongs to.
    pub fn add_host(&mut self, name: impl Into<String>, vars: Vars, group_names: Vec<String>) {
        self.hosts
            .insert(name.into(), SiteHost { vars, group_names });
    }

    /// The host names.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// The groups (group name → host names).
    pub fn groups(&self) -> &IndexMap<String, Vec<String>> {
        &self.groups
    }

    /// The names of the groups a host belongs to.
    pub fn group_names(&self, host: &str) -> Option<&[String]> {
        self.hosts.get(host).map(|h| h.group_names.as_slice())
    }

    /// The scope of a host: its variables, linked to the site so that
    /// `hostvars`, `groups`, `group_names` and `inventory_hostname` work.
    /// Insert task variables into the returned scope as needed.
    pub fn vars_for(self: &Arc<Self>, host: &str) -> Option<Vars> {
        let h = self.hosts.get(host)?;
        Some(Vars {
            entries: Arc::clone(&h.vars.entries),
            host: Some(HostLink {
                site: Arc::clone(self),
                host: host.to_string(),
            }),
            modified: false,
        })
    }

    pub(crate) fn host_cache(&self, root: &std::path::Path, host: &str) -> Arc<ScopeCache> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            cache
                .entry((root.to_path_buf(), host.to_string()))
                .or_default(),
        )
    }
}
