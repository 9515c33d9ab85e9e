//! Rendering of task arguments, conditions and template files, through the
//! project's Ansible-compatible templating (`hive_inventory::template`).
//!
//! The runner keeps variables as JSON values ([`Vars`]); this adapter hands
//! them to [`Templar`] (which renders variables lazily, keeps the type of a
//! lone `{{ expr }}`, and drops map keys rendered to `omit`).

use std::path::Path;

use hive_inventory::template::{Templar, Vars as TVars};
use indexmap::IndexMap;
use serde_json::Value as Json;

/// Variables visible to templates: raw values, rendered when read.
pub type Vars = IndexMap<String, Json>;

/// The variable listing the names in [`Vars`] whose values are final:
/// never rendered when read (registered results, whose text may hold
/// `{{` from a command's output or an error message).
pub const FINAL_VARS: &str = "__hive_final_vars";

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

    fn scope(&self, vars: &Vars) -> TVars {
        let finals: Vec<&str> = match vars.get(FINAL_VARS) {
            Some(Json::Array(a)) => a.iter().filter_map(Json::as_str).collect(),
            _ => vec![],
        };
        let mut t = TVars::new();
        for (k, v) in vars {
            if k == FINAL_VARS {
                continue;
            }
            if finals.contains(&k.as_str()) {
                t.insert_final(k.clone(), to_yaml(v));
            } else {
                t.insert(k.clone(), to_yaml(v));
            }
        }
        t
    }

    /// Renders every string in `value`; map keys rendered to `omit` are
    /// dropped.
    pub fn render_value(&self, value: &Json, vars: &Vars) -> Result<Json, String> {
        self.templar
            .render_value(&to_yaml(value), &self.scope(vars))
            .map(|y| hive_inventory::yaml_to_json(&y))
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
