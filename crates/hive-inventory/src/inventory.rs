//! Ansible's inventory data: groups, hosts and their variables, merged the way
//! Ansible merges them.

use std::fmt;
use std::path::PathBuf;

use indexmap::{IndexMap, IndexSet};
use serde_yaml::Value;

/// Where a variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Set by an inventory plugin from an inventory file (`hive.yml` or a services file).
    Plugin {
        /// The inventory file.
        file: PathBuf,
        /// Line of the attribute the value was derived from, if known.
        line: Option<usize>,
    },
    /// From `group_vars/<group>`.
    GroupVars {
        /// The group.
        group: String,
        /// The file.
        file: PathBuf,
        /// Line of the key.
        line: Option<usize>,
    },
    /// From `host_vars/<host>`.
    HostVars {
        /// The host.
        host: String,
        /// The file.
        file: PathBuf,
        /// Line of the key.
        line: Option<usize>,
    },
}

impl Origin {
    /// The file the value came from.
    pub fn file(&self) -> &std::path::Path {
        match self {
            Origin::Plugin { file, .. }
            | Origin::GroupVars { file, .. }
            | Origin::HostVars { file, .. } => file,
        }
    }

    /// The line the value came from, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Origin::Plugin { line, .. }
            | Origin::GroupVars { line, .. }
            | Origin::HostVars { line, .. } => *line,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file().display())?;
        if let Some(l) = self.line() {
            write!(f, ":{l}")?;
        }
        Ok(())
    }
}

/// A variable value (unrendered: templates are kept as written) and its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// The value.
    pub value: Value,
    /// Where it came from.
    pub origin: Origin,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct GroupData {
    pub hosts: IndexSet<String>,
    pub children: Vec<String>,
    pub parents: Vec<String>,
    pub vars: IndexMap<String, Variable>,
    pub file_vars: IndexMap<String, Variable>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct HostData {
    pub groups: Vec<String>,
    pub vars: IndexMap<String, Variable>,
    pub file_vars: IndexMap<String, Variable>,
}

/// Groups and hosts as Ansible's inventory holds them.
#[derive(Debug, Clone)]
pub(crate) struct InventoryData {
    pub groups: IndexMap<String, GroupData>,
    pub hosts: IndexMap<String, HostData>,
}

impl Default for InventoryData {
    fn default() -> Self {
        let mut inv = InventoryData {
            groups: IndexMap::new(),
            hosts: IndexMap::new(),
        };
        inv.add_group("all");
        inv.add_group("ungrouped");
        inv.add_child("all", "ungrouped");
        inv
    }
}

impl InventoryData {
    pub fn add_group(&mut self, name: &str) {
        if !self.groups.contains_key(name) {
            self.groups.insert(name.to_string(), GroupData::default());
        }
    }

    pub fn add_child(&mut self, parent: &str, child: &str) {
        self.add_group(parent);
        self.add_group(child);
        if let Some(p) = self.groups.get_mut(parent) {
            if !p.children.iter().any(|c| c == child) {
                p.children.push(child.to_string());
            }
        }
        if let Some(c) = self.groups.get_mut(child) {
            if !c.parents.iter().any(|p| p == parent) {
                c.parents.push(parent.to_string());
            }
        }
    }

    pub fn add_host(&mut self, host: &str, group: &str) {
        self.add_group(group);
        let h = self.hosts.entry(host.to_string()).or_default();
        if !h.groups.iter().any(|g| g == group) {
            h.groups.push(group.to_string());
        }
        if let Some(g) = self.groups.get_mut(group) {
            g.hosts.insert(host.to_string());
        }
    }

    /// Sets an inventory variable on a group (if one has that name) or host.
    pub fn set_variable(&mut self, entity: &str, key: &str, value: Value, origin: &Origin) {
        let var = Variable {
            value,
            origin: origin.clone(),
        };
        if let Some(g) = self.groups.get_mut(entity) {
            g.vars.insert(key.to_string(), var);
        } else if let Some(h) = self.hosts.get_mut(entity) {
            h.vars.insert(key.to_string(), var);
        }
    }

    /// Makes parentless groups children of `all` and groupless hosts members of `ungrouped`.
    pub fn reconcile(&mut self) {
        let orphans: Vec<String> = self
            .groups
            .iter()
            .filter(|(name, g)| name.as_str() != "all" && g.parents.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for g in orphans {
            self.add_child("all", &g);
        }
        let lonely: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.groups.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        for h in lonely {
            self.add_host(&h, "ungrouped");
        }
    }

    fn depth(&self, group: &str, seen: &mut Vec<String>) -> usize {
        if group == "all" || seen.iter().any(|s| s == group) {
            return 0;
        }
        seen.push(group.to_string());
        let d = self
            .groups
            .get(group)
            .map(|g| {
                g.parents
                    .iter()
                    .map(|p| self.depth(p, seen) + 1)
                    .max()
                    .unwrap_or(1)
            })
            .unwrap_or(1);
        seen.pop();
        d
    }

    /// Every group a host belongs to, directly or through ancestors.
    pub fn host_groups(&self, host: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let Some(h) = self.hosts.get(host) else {
            return out;
        };
        let mut queue: Vec<String> = h.groups.clone();
        while let Some(g) = queue.pop() {
            if out.contains(&g) {
                continue;
            }
            if let Some(data) = self.groups.get(&g) {
                queue.extend(data.parents.iter().cloned());
            }
            out.push(g);
        }
        if !out.iter().any(|g| g == "all") {
            out.push("all".to_string());
        }
        out
    }

    /// Groups of a host other than `all`, in Ansible's merge order (depth, then name).
    pub fn sorted_groups(&self, host: &str) -> Vec<String> {
        let mut groups: Vec<(usize, String)> = self
            .host_groups(host)
            .into_iter()
            .filter(|g| g != "all")
            .map(|g| (self.depth(&g, &mut Vec::new()), g))
            .collect();
        groups.sort();
        groups.into_iter().map(|(_, g)| g).collect()
    }

    /// A host's variables merged as Ansible does for inventory variables.
    pub fn merged_vars(&self, host: &str) -> Option<IndexMap<String, Variable>> {
        let h = self.hosts.get(host)?;
        let mut out: IndexMap<String, Variable> = IndexMap::new();
        let mut put = |vars: &IndexMap<String, Variable>| {
            for (k, v) in vars {
                out.insert(k.clone(), v.clone());
            }
        };
        if let Some(all) = self.groups.get("all") {
            put(&all.vars);
            put(&all.file_vars);
        }
        let sorted = self.sorted_groups(host);
        for g in &sorted {
            if let Some(data) = self.groups.get(g) {
                put(&data.vars);
            }
        }
        for g in &sorted {
            if let Some(data) = self.groups.get(g) {
                put(&data.file_vars);
            }
        }
        put(&h.vars);
        put(&h.file_vars);
        Some(out)
    }

    /// Hosts of a group including those of its descendants.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        let mut out: IndexSet<String> = IndexSet::new();
        let mut visited: Vec<String> = Vec::new();
        let mut queue: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        queue.push_back(group.to_string());
        while let Some(g) = queue.pop_front() {
            if visited.contains(&g) {
                continue;
            }
            visited.push(g.clone());
            if let Some(data) = self.groups.get(&g) {
                for h in &data.hosts {
                    out.insert(h.clone());
                }
                queue.extend(data.children.iter().cloned());
            }
        }
        out.into_iter().collect()
    }
}
