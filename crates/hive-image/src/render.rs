//! Rendering of task arguments, conditions and template files.
//!
//! This is the one place that knows the template engine. It offers the
//! interface the project's shared Ansible-compatible templating publishes in
//! `hive_inventory::template` (`render_value`, `render_str`, `render_text`,
//! `is_true`), implemented here on minijinja with Ansible's conventions
//! (lazily rendered variables, a single `{{ expr }}` keeps its type, `omit`,
//! trailing newlines kept, `trim_blocks`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value as Json;

/// Variables visible to templates: raw values, rendered when read.
pub type Vars = IndexMap<String, Json>;

/// The value templates give to `omit`; keys rendered to it are dropped.
pub const OMIT: &str = "__hive_omit_place_holder__";

const MAX_DEPTH: usize = 32;

/// Renders values with variables.
#[derive(Clone)]
pub struct Renderer {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer")
    }
}

#[derive(Debug)]
struct LazyVars {
    vars: Arc<Vars>,
    env: Arc<Environment<'static>>,
    depth: usize,
}

impl Object for LazyVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let k = key.as_str()?;
        if k == "omit" && !self.vars.contains_key("omit") {
            return Some(Value::from(OMIT));
        }
        let raw = self.vars.get(k)?;
        if self.depth >= MAX_DEPTH || !has_template(raw) {
            return Some(Value::from_serialize(raw));
        }
        let ctx = Arc::new(LazyVars {
            vars: self.vars.clone(),
            env: self.env.clone(),
            depth: self.depth + 1,
        });
        match render_json(&self.env, raw, &ctx) {
            Ok(v) => Some(Value::from_serialize(&v)),
            Err(_) => Some(Value::from_serialize(raw)),
        }
    }
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<Value> = self.vars.keys().map(|k| Value::from(k.as_str())).collect();
        Enumerator::Values(keys)
    }
}

fn has_template(v: &Json) -> bool {
    match v {
        Json::String(s) => s.contains("{{") || s.contains("{%"),
        Json::Array(a) => a.iter().any(has_template),
        Json::Object(m) => m.values().any(has_template),
        _ => false,
    }
}

fn single_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

fn err_text(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn render_string(env: &Environment<'static>, s: &str, ctx: &Arc<LazyVars>) -> Result<Json, String> {
    if !(s.contains("{{") || s.contains("{%")) {
        return Ok(Json::String(s.to_string()));
    }
    let cv = Value::from_dyn_object(ctx.clone());
    if let Some(expr) = single_expression(s) {
        let e = env.compile_expression(expr).map_err(|e| err_text(&e))?;
        let v = e.eval(cv).map_err(|e| err_text(&e))?;
        if v.is_undefined() {
            return Err(format!("'{expr}' is undefined"));
        }
        return serde_json::to_value(&v).map_err(|e| e.to_string());
    }
    env.render_str(s, cv)
        .map(Json::String)
        .map_err(|e| err_text(&e))
}

fn render_json(env: &Environment<'static>, v: &Json, ctx: &Arc<LazyVars>) -> Result<Json, String> {
    Ok(match v {
        Json::String(s) => render_string(env, s, ctx)?,
        Json::Array(a) => Json::Array(
            a.iter()
                .map(|x| render_json(env, x, ctx))
                .filter(|r| !matches!(r, Ok(Json::String(s)) if s == OMIT))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                let key = match render_string(env, k, ctx)? {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                let val = render_json(env, x, ctx)?;
                if val.as_str() != Some(OMIT) {
                    out.insert(key, val);
                }
            }
            Json::Object(out)
        }
        other => other.clone(),
    })
}

impl Renderer {
    /// A renderer whose `lookup('file', …)` reads relative to `root_dir`.
    pub fn new(root_dir: &Path) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        add_ansible_filters(&mut env, root_dir.to_path_buf());
        Renderer { env: Arc::new(env) }
    }

    fn ctx(&self, vars: &Vars) -> Arc<LazyVars> {
        Arc::new(LazyVars {
            vars: Arc::new(vars.clone()),
            env: self.env.clone(),
            depth: 0,
        })
    }

    /// Renders every string in `value` (keys too); keys rendered to `omit`
    /// are dropped.
    pub fn render_value(&self, value: &Json, vars: &Vars) -> Result<Json, String> {
        render_json(&self.env, value, &self.ctx(vars))
    }

    /// Renders one string; a lone `{{ expr }}` keeps the expression's type.
    pub fn render_str(&self, s: &str, vars: &Vars) -> Result<Json, String> {
        render_string(&self.env, s, &self.ctx(vars))
    }

    /// Renders a template file's text.
    pub fn render_text(&self, s: &str, vars: &Vars) -> Result<String, String> {
        let cv = Value::from_dyn_object(self.ctx(vars));
        self.env.render_str(s, cv).map_err(|e| err_text(&e))
    }

    /// Evaluates a condition (`when`, `failed_when`, `changed_when`).
    pub fn is_true(&self, condition: &str, vars: &Vars) -> Result<bool, String> {
        let c = single_expression(condition).unwrap_or(condition.trim());
        let e = self.env.compile_expression(c).map_err(|e| err_text(&e))?;
        let v = e
            .eval(Value::from_dyn_object(self.ctx(vars)))
            .map_err(|e| err_text(&e))?;
        if v.is_undefined() {
            return Err(format!("'{c}' is undefined"));
        }
        if let Some(s) = v.as_str() {
            return Ok(matches!(
                s.to_ascii_lowercase().as_str(),
                "true" | "yes" | "on" | "1"
            ));
        }
        Ok(v.is_true())
    }
}

fn to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

fn merge(a: &mut Json, b: Json, recursive: bool) {
    match (a, b) {
        (Json::Object(am), Json::Object(bm)) => {
            for (k, v) in bm {
                match am.get_mut(&k) {
                    Some(x) if recursive && x.is_object() && v.is_object() => merge(x, v, true),
                    _ => {
                        am.insert(k, v);
                    }
                }
            }
        }
        (a, b) => *a = b,
    }
}

fn fail(msg: impl Into<String>) -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn add_ansible_filters(env: &mut Environment<'static>, root: PathBuf) {
    env.add_filter(
        "d",
        |v: Value, d: Option<Value>, b: Option<bool>| -> Value {
            if v.is_undefined() || (b.unwrap_or(false) && !v.is_true()) {
                d.unwrap_or(Value::from(""))
            } else {
                v
            }
        },
    );
    env.add_filter("to_json", |v: Value| to_json(&v).to_string());
    env.add_filter("to_nice_json", |v: Value| {
        serde_json::to_string_pretty(&to_json(&v)).unwrap_or_default()
    });
    env.add_filter(
        "from_json",
        |s: String| -> Result<Value, minijinja::Error> {
            let j: Json = serde_json::from_str(&s).map_err(|e| fail(format!("from_json: {e}")))?;
            Ok(Value::from_serialize(&j))
        },
    );
    env.add_filter("to_yaml", |v: Value| {
        serde_yaml::to_string(&to_json(&v)).unwrap_or_default()
    });
    env.add_filter("to_nice_yaml", |v: Value| {
        serde_yaml::to_string(&to_json(&v)).unwrap_or_default()
    });
    env.add_filter(
        "from_yaml",
        |s: String| -> Result<Value, minijinja::Error> {
            let j: Json = serde_yaml::from_str(&s).map_err(|e| fail(format!("from_yaml: {e}")))?;
            Ok(Value::from_serialize(&j))
        },
    );
    env.add_filter("bool", |v: Value| -> bool {
        match v.as_str() {
            Some(s) => matches!(
                s.to_ascii_lowercase().as_str(),
                "true" | "yes" | "on" | "1" | "y"
            ),
            None => v.is_true(),
        }
    });
    env.add_filter("b64encode", |s: String| {
        base64::engine::general_purpose::STANDARD.encode(s)
    });
    env.add_filter(
        "b64decode",
        |s: String| -> Result<String, minijinja::Error> {
            let b = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| fail(format!("b64decode: {e}")))?;
            Ok(String::from_utf8_lossy(&b).into_owned())
        },
    );
    env.add_filter(
        "regex_replace",
        |s: String, pat: String, rep: Option<String>| -> Result<String, minijinja::Error> {
            let re = regex::Regex::new(&pat).map_err(|e| fail(format!("regex_replace: {e}")))?;
            let rep = python_replacement(&rep.unwrap_or_default());
            Ok(re.replace_all(&s, rep.as_str()).into_owned())
        },
    );
    env.add_filter(
        "regex_search",
        |s: String, pat: String| -> Result<Value, minijinja::Error> {
            let re = regex::Regex::new(&pat).map_err(|e| fail(format!("regex_search: {e}")))?;
            Ok(re
                .find(&s)
                .map(|m| Value::from(m.as_str()))
                .unwrap_or(Value::from(())))
        },
    );
    env.add_filter(
        "combine",
        |a: Value, rest: minijinja::value::Rest<Value>| -> Value {
            let mut out = to_json(&a);
            for b in rest.iter() {
                merge(&mut out, to_json(b), false);
            }
            Value::from_serialize(&out)
        },
    );
    env.add_filter("intersect", |a: Value, b: Value| -> Value {
        let (a, b) = (to_json(&a), to_json(&b));
        let bl = b.as_array().cloned().unwrap_or_default();
        let out: Vec<Json> = a
            .as_array()
            .map(|x| x.iter().filter(|i| bl.contains(i)).cloned().collect())
            .unwrap_or_default();
        Value::from_serialize(&out)
    });
    env.add_filter("difference", |a: Value, b: Value| -> Value {
        let (a, b) = (to_json(&a), to_json(&b));
        let bl = b.as_array().cloned().unwrap_or_default();
        let out: Vec<Json> = a
            .as_array()
            .map(|x| x.iter().filter(|i| !bl.contains(i)).cloned().collect())
            .unwrap_or_default();
        Value::from_serialize(&out)
    });
    env.add_filter("union", |a: Value, b: Value| -> Value {
        let mut out: Vec<Json> = to_json(&a).as_array().cloned().unwrap_or_default();
        for i in to_json(&b).as_array().cloned().unwrap_or_default() {
            if !out.contains(&i) {
                out.push(i);
            }
        }
        Value::from_serialize(&out)
    });
    env.add_filter("flatten", |a: Value| -> Value {
        fn flat(v: &Json, out: &mut Vec<Json>) {
            match v {
                Json::Array(a) => a.iter().for_each(|x| flat(x, out)),
                x => out.push(x.clone()),
            }
        }
        let mut out = Vec::new();
        flat(&to_json(&a), &mut out);
        Value::from_serialize(&out)
    });
    env.add_filter("dict2items", |a: Value| -> Value {
        let out: Vec<Json> = to_json(&a)
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                    .collect()
            })
            .unwrap_or_default();
        Value::from_serialize(&out)
    });
    env.add_filter("items2dict", |a: Value| -> Value {
        let mut out = serde_json::Map::new();
        for i in to_json(&a).as_array().cloned().unwrap_or_default() {
            if let (Some(k), Some(v)) = (i.get("key").and_then(|k| k.as_str()), i.get("value")) {
                out.insert(k.to_string(), v.clone());
            }
        }
        Value::from_serialize(&out)
    });
    env.add_filter("basename", |s: String| {
        s.rsplit('/').next().unwrap_or_default().to_string()
    });
    env.add_filter("dirname", |s: String| match s.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => s[..i].to_string(),
        None => String::new(),
    });
    env.add_filter("quote", |s: String| crate::target::shell_quote(&s));
    env.add_filter("mandatory", |v: Value| -> Result<Value, minijinja::Error> {
        if v.is_undefined() {
            Err(fail("mandatory variable not defined"))
        } else {
            Ok(v)
        }
    });
    env.add_filter(
        "ternary",
        |v: Value, a: Value, b: Value| if v.is_true() { a } else { b },
    );
    env.add_function(
        "lookup",
        move |kind: String,
              args: minijinja::value::Rest<String>|
              -> Result<Value, minijinja::Error> {
            let arg = args.first().cloned().unwrap_or_default();
            match kind.as_str() {
                "file" => {
                    let p = if Path::new(&arg).is_absolute() {
                        PathBuf::from(&arg)
                    } else {
                        root.join(&arg)
                    };
                    let s = std::fs::read_to_string(&p)
                        .map_err(|e| fail(format!("lookup file {}: {e}", p.display())))?;
                    Ok(Value::from(s.trim_end_matches('\n').to_string()))
                }
                "env" => Ok(Value::from(std::env::var(&arg).unwrap_or_default())),
                "pipe" => {
                    let out = std::process::Command::new("/bin/sh")
                        .args(["-c", &arg])
                        .output()
                        .map_err(|e| fail(format!("lookup pipe: {e}")))?;
                    Ok(Value::from(
                        String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
                    ))
                }
                other => Err(fail(format!(
                    "lookup plugin {other} is not supported (supported: file, env, pipe)"
                ))),
            }
        },
    );
}

/// Python's `\1` / `\g<name>` replacement syntax to the regex crate's.
pub(crate) fn python_replacement(rep: &str) -> String {
    let mut out = String::new();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    out.push_str(&format!("${{{d}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|&x| x != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    }
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
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
            json!("{{ 'a1b' | regex_replace('([0-9])', 'n\\\\1') }}"),
            json!("an1b"),
        );
        check(
            json!("{{ {'a': 1} | combine({'b': 2}) }}"),
            json!({"a": 1, "b": 2}),
        );
        check(json!("line\n"), json!("line\n"));
        assert!(r.is_true("items | length == 2", &v).unwrap());
        assert!(!r.is_true("missing is defined", &v).unwrap());
        assert!(r.render_str("{{ missing }}", &v).is_err());
    }
}
