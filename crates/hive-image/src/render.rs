//! Rendering of task arguments, conditions and template files, through the
//! project's Ansible-compatible templating (`hive_inventory::template`).
//!
//! The runner keeps variables as JSON values ([`Vars`]); this adapter hands
//! them to [`Templar`] (which renders variables lazily, keeps the type of a
//! lone `{{ expr }}`, and drops map keys rendered to `omit`).

use std::path::Path;

use hive_inventory::template::{Site, Templar, Vars as TVars};
use indexmap::IndexMap;
use serde_json::Value as Json;

/// Variables visible to templates: raw values, rendered when read.
pub type Vars = IndexMap<String, Json>;

/// The variable listing the names in [`Vars`] whose values are final:
/// never rendered when read (registered results, whose text may hold
/// `{{` from a command's output or an error message, and every value
/// Ansible marks unsafe).
pub const FINAL_VARS: &str = "__hive_final_vars";

/// Marks variable `name` of `vars` final (listed in [`FINAL_VARS`]).
pub fn mark_final(vars: &mut Vars, name: &str) {
    let finals = vars
        .entry(FINAL_VARS.to_string())
        .or_insert_with(|| Json::Array(vec![]));
    if let Json::Array(a) = finals
        && !a.iter().any(|n| n == name)
    {
        a.push(Json::from(name));
    }
}

/// Renders values with variables.
#[derive(Clone, Debug)]
pub struct Renderer {
    templar: Templar,
}

fn to_yaml(v: &Json) -> serde_yaml::Value {
    serde_yaml::to_value(v).unwrap_or(serde_yaml::Value::Null)
}

impl Renderer {
    /// A renderer whose `lookup('file', …)` reads relative to `root_dir`.
    pub fn new(root_dir: &Path) -> Self {
        Renderer {
            templar: Templar::new(root_dir),
        }
    }

    /// A renderer whose template files include and import others from
    /// `dirs` (a role's `templates/`).
    pub fn with_template_dirs(root_dir: &Path, dirs: Vec<std::path::PathBuf>) -> Self {
        Renderer {
            templar: Templar::with_template_dirs(root_dir, dirs),
        }
    }

    /// The text `omit` renders to.
    pub fn omit_token(&self) -> &str {
        self.templar.omit_token()
    }

    /// The template scope of `vars`. With `inventory_hostname` and a
    /// `hostvars` mapping, the scope is that host's in a site of the hosts
    /// of `hostvars`, so that `hostvars[host][var]` renders with the
    /// variables of `host` only, as in Ansible.
    fn scope(&self, vars: &Vars) -> TVars {
        let finals: Vec<&str> = match vars.get(FINAL_VARS) {
            Some(Json::Array(a)) => a.iter().filter_map(Json::as_str).collect(),
            _ => vec![],
        };
        let site = match (vars.get("inventory_hostname"), vars.get("hostvars")) {
            (Some(Json::String(host)), Some(Json::Object(hostvars))) => {
                site_scope(host, hostvars, vars.get("groups"), &finals)
            }
            _ => None,
        };
        let mut t = TVars::new();
        for (k, v) in vars {
            if k == FINAL_VARS || (k == "hostvars" && site.is_some()) {
                continue;
            }
            if finals.contains(&k.as_str()) {
                t.insert_final(k.clone(), to_yaml(v));
            } else {
                t.insert(k.clone(), to_yaml(v));
            }
        }
        match site {
            Some(mut scope) => {
                scope.extend(&t);
                scope
            }
            None => t,
        }
    }

    /// Renders every string in `value`; map keys rendered to `omit` are
    /// dropped.
    pub fn render_value(&self, value: &Json, vars: &Vars) -> Result<Json, String> {
        self.templar
            .render_value(&to_yaml(value), &self.scope(vars))
            .map(|y| hive_inventory::yaml_to_json(&y))
            .map_err(|e| e.full_message())
    }

    /// [`Renderer::render_value`], also telling whether the result is
    /// unsafe (it read a lookup's result or a final variable): stored, it
    /// must be final (never templated again), as Ansible's unsafe values.
    pub fn render_value_marked(&self, value: &Json, vars: &Vars) -> Result<(Json, bool), String> {
        self.templar
            .render_value_marked(&to_yaml(value), &self.scope(vars))
            .map(|(y, tainted)| (hive_inventory::yaml_to_json(&y), tainted))
            .map_err(|e| e.full_message())
    }

    /// Renders one string; a lone `{{ expr }}` keeps the expression's type.
    pub fn render_str(&self, s: &str, vars: &Vars) -> Result<Json, String> {
        if !(s.contains("{{") || s.contains("{%")) {
            return Ok(Json::String(s.to_string()));
        }
        self.templar
            .render_str(s, &self.scope(vars))
            .map(|y| hive_inventory::yaml_to_json(&y))
            .map_err(|e| e.full_message())
    }

    /// Renders a template file's text.
    pub fn render_text(&self, s: &str, vars: &Vars) -> Result<String, String> {
        self.templar
            .render_text(s, &self.scope(vars))
            .map_err(|e| e.full_message())
    }

    /// Evaluates a condition (`when`, `failed_when`, `changed_when`).
    pub fn is_true(&self, condition: &str, vars: &Vars) -> Result<bool, String> {
        let c = condition.trim();
        let c = c
            .strip_prefix("{{")
            .and_then(|x| x.strip_suffix("}}"))
            .filter(|x| !x.contains("{{"))
            .unwrap_or(c);
        // an empty condition (`- ` in a list of them) holds, as in Ansible
        if c.trim().is_empty() {
            return Ok(true);
        }
        self.templar
            .is_true(c, &self.scope(vars))
            .map_err(|e| e.full_message())
    }
}

/// The scope of `host` in a site of the hosts of `hostvars` (each with the
/// variables given there; the finals of `host` stay final), grouped as
/// `groups` says; `None` when `host` is not in `hostvars`.
fn site_scope(
    host: &str,
    hostvars: &serde_json::Map<String, Json>,
    groups: Option<&Json>,
    finals: &[&str],
) -> Option<TVars> {
    let groups: IndexMap<String, Vec<String>> = match groups {
        Some(Json::Object(g)) => g
            .iter()
            .map(|(name, hosts)| {
                let hosts = match hosts {
                    Json::Array(a) => a
                        .iter()
                        .filter_map(Json::as_str)
                        .map(String::from)
                        .collect(),
                    _ => vec![],
                };
                (name.clone(), hosts)
            })
            .collect(),
        _ => IndexMap::new(),
    };
    let mut site = Site::new(groups.clone());
    for (h, hv) in hostvars {
        let mut t = TVars::new();
        if let Json::Object(m) = hv {
            for (k, v) in m {
                if h == host && finals.contains(&k.as_str()) {
                    t.insert_final(k.clone(), to_yaml(v));
                } else {
                    t.insert(k.clone(), to_yaml(v));
                }
            }
        }
        let group_names = groups
            .iter()
            .filter(|(_, hosts)| hosts.contains(h))
            .map(|(g, _)| g.clone())
            .collect();
        site.add_host(h.clone(), t, group_names);
    }
    std::sync::Arc::new(site).vars_for(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.insert("name".into(), json!("app"));
        v.insert("home".into(), json!("/opt/{{ name }}"));
        v.insert("items".into(), json!([1, 2]));
        v
    }

    #[test]
    fn renders_with_ansible_conventions() {
        let r = Renderer::new(Path::new("/"));
        let v = vars();
        let check =
            |input: Json, expected: Json| assert_eq!(r.render_value(&input, &v).unwrap(), expected);
        check(json!("{{ items }}"), json!([1, 2]));
        check(json!("{{ home }}/x"), json!("/opt/app/x"));
        check(
            json!({"a": "{{ omit }}", "b": "{{ name | d('z') }}"}),
            json!({"b": "app"}),
        );
        check(json!("{{ missing | default('dflt') }}"), json!("dflt"));

        check(
            json!("{{ {'a': 1} | combine({'b': 2}) }}"),
            json!({"a": 1, "b": 2}),
        );
        check(json!("line\n"), json!("line\n"));
        assert!(r.is_true("items | length == 2", &v).unwrap());
        assert!(!r.is_true("missing is defined", &v).unwrap());
        assert!(r.render_str("{{ missing }}", &v).is_err());
        let mut v = vars();
        v.insert("out".into(), json!({"stdout": "{{ name }}"}));
        v.insert(FINAL_VARS.into(), json!(["out"]));
        check_with(&r, &v, "{{ out.stdout }}", json!("{{ name }}"));
    }

    fn check_with(r: &Renderer, v: &Vars, input: &str, expected: Json) {
        assert_eq!(r.render_str(input, v).unwrap(), expected);
    }
}
