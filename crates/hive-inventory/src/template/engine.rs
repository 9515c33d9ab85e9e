//! The rendering core: environment setup, Ansible's typing of results, and
//! the template preprocessing Ansible does (backslash escaping).

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};
use regex::Regex;
use serde_yaml::Value as Yaml;

use super::TemplateError;
use super::pyvalue::{ansible_type, py_text, yaml_to_value};
use super::scope::{missing_message, undefined_error};

/// How a template is used: task arguments and variables get Ansible's
/// backslash escaping and typing; template files do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Value,
    Text,
}

/// Why a render failed: undefined values can still be defaulted by the
/// template that used the variable; everything else is fatal.
#[derive(Debug)]
pub(crate) enum Failure {
    Undefined { message: String, template: String },
    Fatal(TemplateError),
}

/// The environment and settings shared by every render of a `Templar`.
pub(crate) struct Inner {
    pub(crate) env: Environment<'static>,
    pub(crate) root: PathBuf,
    pub(crate) omit: String,
}

static SINGLE_VAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$").unwrap_or_else(|_| unreachable!())
});
static NATIVE_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)^\{\{.*\|\s*(string|to_json|to_nice_json|to_yaml|to_nice_yaml)\s*(\([^{}]*\))?\s*-?\}\}$")
        .unwrap_or_else(|_| unreachable!())
});
static MUTATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([A-Za-z_][A-Za-z0-9_]*)\.(update|append|extend)\(")
        .unwrap_or_else(|_| unreachable!())
});

/// Whether a string might be a template (Ansible only renders those).
pub(crate) fn is_possibly_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

fn format_value(
    out: &mut minijinja::Output<'_>,
    _state: &State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    if let Some(msg) = missing_message(value) {
        return Err(undefined_error(msg));
    }
    if value.is_undefined() || value.is_none() {
        return Ok(());
    }
    let mut s = String::new();
    py_text(value, true, &mut s).map_err(undefined_error)?;
    out.write_str(&s)
        .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write output"))
}

impl Inner {
    pub(crate) fn new(root: PathBuf, omit: String) -> Inner {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(false);
        env.set_keep_trailing_newline(true);
        env.set_recursion_limit(400);
        env.set_formatter(format_value);
        env.set_unknown_method_callback(super::filters::call_method);
        super::filters::register(&mut env);
        super::lookups::register(&mut env, Arc::new(root.clone()));
        env.add_function("_hive_mutable", |v: Value| super::pyvalue::make_mutable(v));
        Inner { env, root, omit }
    }

    /// Renders a raw YAML value (strings as templates, containers recursively).
    pub(crate) fn render_yaml(&self, raw: &Yaml, scope: &Value) -> Result<Value, Failure> {
        Ok(match raw {
            Yaml::String(s) => self.render_string(s, scope, Mode::Value)?,
            Yaml::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.render_yaml(item, scope)?);
                }
                Value::from(out)
            }
            Yaml::Mapping(m) => {
                let mut out = Vec::with_capacity(m.len());
                for (k, v) in m {
                    out.push((self.render_yaml(k, scope)?, self.render_yaml(v, scope)?));
                }
                out.into_iter().collect()
            }
            Yaml::Tagged(t) => self.render_yaml(&t.value, scope)?,
            other => yaml_to_value(other),
        })
    }

    /// Renders one template string in a scope.
    pub(crate) fn render_string(
        &self,
        src: &str,
        scope: &Value,
        mode: Mode,
    ) -> Result<Value, Failure> {
        if !is_possibly_template(src) {
            return Ok(Value::from(src));
        }
        if mode == Mode::Value {
            if let Some(c) = SINGLE_VAR.captures(src) {
                let name = c.get(1).map_or("", |m| m.as_str());
                if let Ok(v) = scope.get_attr(name) {
                    if let Some(message) = missing_message(&v) {
                        return Err(Failure::Undefined {
                            message,
                            template: src.to_string(),
                        });
                    }
                    match v.kind() {
                        ValueKind::String => {
                            return Ok(ansible_type(v.as_str().unwrap_or_default().to_string()));
                        }
                        ValueKind::Bool | ValueKind::Number | ValueKind::None => return Ok(v),
                        ValueKind::Seq | ValueKind::Map if v.as_object().is_none() => return Ok(v),
                        _ => {}
                    }
                }
            }
        }
        let text = self.render_to_string(src, scope, mode)?;
        if mode == Mode::Text || is_native_text(src) {
            return Ok(Value::from(text));
        }
        Ok(ansible_type(text))
    }

    /// Renders to text without typing.
    pub(crate) fn render_to_string(
        &self,
        src: &str,
        scope: &Value,
        mode: Mode,
    ) -> Result<String, Failure> {
        let prepared = prepare(src, mode);
        let tmpl = self.env.template_from_str(&prepared).map_err(|e| {
            Failure::Fatal(TemplateError::Syntax {
                template: src.to_string(),
                message: error_text(&e),
            })
        })?;
        tmpl.render(scope).map_err(|e| classify(src, &e))
    }

    /// Evaluates a bare expression (a `when:` condition).
    pub(crate) fn eval_condition(&self, cond: &str, scope: &Value) -> Result<bool, Failure> {
        let src = cond.trim();
        let expr = self.env.compile_expression(src).map_err(|e| {
            Failure::Fatal(TemplateError::Syntax {
                template: src.to_string(),
                message: error_text(&e),
            })
        })?;
        let v = expr.eval(scope).map_err(|e| classify(src, &e))?;
        if let Some(message) = missing_message(&v) {
            return Err(Failure::Undefined {
                message,
                template: src.to_string(),
            });
        }
        if v.is_undefined() {
            return Err(Failure::Undefined {
                message: "undefined value".into(),
                template: src.to_string(),
            });
        }
        if let Some(s) = v.as_str() {
            return Ok(crate::template::filters::truthy_str(s).unwrap_or(!s.is_empty()));
        }
        Ok(v.is_true())
    }
}

/// Whether the whole template is one expression ending in a filter whose
/// text Ansible keeps as is (`string`, `to_json`, ...).
fn is_native_text(src: &str) -> bool {
    src.matches("{{").count() == 1 && !src.contains("{%") && NATIVE_TEXT.is_match(src)
}

fn classify(src: &str, e: &Error) -> Failure {
    if e.kind() == ErrorKind::UndefinedError {
        Failure::Undefined {
            message: e.detail().unwrap_or("undefined value").to_string(),
            template: src.to_string(),
        }
    } else {
        Failure::Fatal(TemplateError::Render {
            template: src.to_string(),
            message: error_text(e),
        })
    }
}

/// An error's message with its cause chain, without the template dump.
pub(crate) fn error_text(e: &Error) -> String {
    let mut msg = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        msg.push_str(&format!(" (line {line})"));
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// Applies Ansible's preprocessing: backslashes in string literals inside
/// `{{ }}` are doubled (task arguments and variables only), and names that
/// the template mutates with `update()`/`append()` get mutable containers.
pub(crate) fn prepare(src: &str, mode: Mode) -> String {
    let mut out = if mode == Mode::Value && src.contains('\\') {
        escape_backslashes(src)
    } else {
        src.to_string()
    };
    if MUTATED.is_match(&out) {
        let mut names: Vec<String> = MUTATED
            .captures_iter(&out)
            .map(|c| c[1].to_string())
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let re = Regex::new(&format!(
                r"(?s)\{{%(-?)\s*set\s+{name}\s*=\s*(.*?)\s*(-?)%\}}"
            ));
            if let Ok(re) = re {
                out = re
                    .replace_all(&out, |c: &regex::Captures<'_>| {
                        format!(
                            "{{%{} set {name} = _hive_mutable({}) {}%}}",
                            &c[1], &c[2], &c[3]
                        )
                    })
                    .into_owned();
            }
        }
    }
    out
}

fn escape_backslashes(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 8);
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start + 2]);
        rest = &rest[start + 2..];
        let mut quote: Option<char> = None;
        let mut end = None;
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match quote {
                Some(q) => {
                    if c == '\\' {
                        out.push_str("\\\\");
                        continue;
                    }
                    if c == q {
                        quote = None;
                    }
                    out.push(c);
                }
                None => {
                    if c == '}' && matches!(chars.peek(), Some((_, '}'))) {
                        end = Some(i);
                        break;
                    }
                    if c == '\'' || c == '"' {
                        quote = Some(c);
                    }
                    out.push(c);
                }
            }
        }
        match end {
            Some(i) => rest = &rest[i..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslashes_doubled_inside_expressions_only() {
        assert_eq!(
            escape_backslashes(r"a\1 {{ x | regex_replace('(.)', 'v_\1') }} \2"),
            r"a\1 {{ x | regex_replace('(.)', 'v_\\1') }} \2"
        );
    }

    #[test]
    fn mutated_names_get_mutable_containers() {
        let out = prepare(
            "{% set o = {'a': 1} -%}{% set _ = o.update({'b': 2}) %}",
            Mode::Text,
        );
        assert!(
            out.starts_with("{% set o = _hive_mutable({'a': 1}) -%}"),
            "{out}"
        );
    }
}
