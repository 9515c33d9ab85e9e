//! The rendering core: environment setup, Ansible's typing of results, and
//! the template preprocessing Ansible does (backslash escaping).

use std::path::PathBuf;
use std::sync::LazyLock;

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind};
use regex::Regex;
use serde_yaml::Value as Yaml;

use super::TemplateError;
use super::objects::missing_message;
use super::pyvalue::{ansible_type, yaml_to_value};

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

/// Instructions one render may run: far above any real template.
pub(crate) const MAX_FUEL: u64 = 2_000_000;

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

impl Inner {
    /// Renders a raw YAML value (strings as templates, containers recursively).
    pub(crate) fn render_yaml(&self, raw: &Yaml, scope: &Value) -> Result<Value, Failure> {
        self.render_yaml_with(raw, scope, false)
    }

    /// [`Inner::render_yaml`] as Ansible's `fail_on_undefined=False`: a
    /// string whose template uses an undefined variable is left as written.
    pub(crate) fn render_yaml_lenient(&self, raw: &Yaml, scope: &Value) -> Result<Value, Failure> {
        self.render_yaml_with(raw, scope, true)
    }

    fn render_yaml_with(&self, raw: &Yaml, scope: &Value, lenient: bool) -> Result<Value, Failure> {
        Ok(match raw {
            Yaml::String(s) => match self.render_string(s, scope, Mode::Value) {
                Err(Failure::Undefined { .. }) if lenient => Value::from(s.as_str()),
                other => other?,
            },
            Yaml::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.render_yaml_with(item, scope, lenient)?);
                }
                Value::from(out)
            }
            Yaml::Mapping(m) => {
                let mut out = Vec::with_capacity(m.len());
                for (k, v) in m {
                    out.push((
                        self.render_yaml_with(k, scope, lenient)?,
                        self.render_yaml_with(v, scope, lenient)?,
                    ));
                }
                out.into_iter().collect()
            }
            Yaml::Tagged(t) => self.render_yaml_with(&t.value, scope, lenient)?,
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
        let text = self.render_jinja(src, scope, mode)?;
        if mode == Mode::Text || is_native_text(src) {
            return Ok(Value::from(restore_newlines(src, text)));
        }
        let v = ansible_type(text);
        Ok(match v.as_str() {
            Some(s) if v.kind() == ValueKind::String => {
                Value::from(restore_newlines(src, s.to_string()))
            }
            _ => v,
        })
    }

    /// Renders to text without typing, trailing newlines as in the source.
    pub(crate) fn render_to_string(
        &self,
        src: &str,
        scope: &Value,
        mode: Mode,
    ) -> Result<String, Failure> {
        Ok(restore_newlines(src, self.render_jinja(src, scope, mode)?))
    }

    /// Renders with Jinja's own rules (one trailing newline dropped).
    fn render_jinja(&self, src: &str, scope: &Value, mode: Mode) -> Result<String, Failure> {
        let prepared = prepare(src, mode);
        let tmpl = self.env.template_from_str(&prepared).map_err(|e| {
            Failure::Fatal(TemplateError::Syntax {
                template: src.to_string(),
                message: error_text(&e),
            })
        })?;
        tmpl.render(scope)
            .map_err(|e| self.diagnose(classify(src, &e), src, scope))
    }

    /// Evaluates a bare expression (a `when:` condition).
    pub(crate) fn eval_condition(&self, cond: &str, scope: &Value) -> Result<bool, Failure> {
        let src = cond.trim();
        if let Some(at) = variable_end(src) {
            // minijinja's expression lexer panics on a `}}` it pops its state with
            return Err(Failure::Fatal(TemplateError::Syntax {
                template: src.to_string(),
                message: format!("syntax error: unexpected `}}}}` at character {}", at + 1),
            }));
        }
        let expr = self.env.compile_expression(src).map_err(|e| {
            Failure::Fatal(TemplateError::Syntax {
                template: src.to_string(),
                message: error_text(&e),
            })
        })?;
        let v = expr
            .eval(scope)
            .map_err(|e| self.diagnose(classify(src, &e), &format!("{{{{ {src} }}}}"), scope))?;
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
            return Ok(super::pyvalue::truthy_str(s).unwrap_or(!s.is_empty()));
        }
        Ok(v.is_true())
    }
}

impl Inner {
    /// Names what is undefined when the engine only says "undefined value",
    /// as Ansible does: `'x' is undefined` or `'dict object' has no
    /// attribute 'y'`, for the first variable path of the template that
    /// does not resolve.
    fn diagnose(&self, failure: Failure, src: &str, scope: &Value) -> Failure {
        let Failure::Undefined { message, template } = failure else {
            return failure;
        };
        let message = match message.as_str() {
            "undefined value" => PATH
                .captures_iter(src)
                .find_map(|c| self.undefined_in_path(&c[1], scope))
                .unwrap_or(message),
            _ => message,
        };
        Failure::Undefined { message, template }
    }

    /// Why `path` (`a.b['c']`) is undefined, if it is.
    fn undefined_in_path(&self, path: &str, scope: &Value) -> Option<String> {
        let eval = |expr: &str| -> Option<Value> {
            let v = self.env.compile_expression(expr).ok()?.eval(scope).ok()?;
            Some(v)
        };
        let mut ends = SEGMENT.find_iter(path).map(|m| (m.start(), m.end()));
        let (_, base_end) = ends.next()?;
        let mut prev = eval(&path[..base_end])?;
        if let Some(m) = missing_message(&prev) {
            return Some(m);
        }
        if prev.is_undefined() {
            return Some(format!("'{}' is undefined", &path[..base_end]));
        }
        for (start, end) in ends {
            let v = eval(&path[..end])?;
            if v.is_undefined() || missing_message(&v).is_some() {
                let attr = path[start..end]
                    .trim_start_matches(['.', '['])
                    .trim_end_matches(']')
                    .trim_matches(['\'', '"']);
                let kind = match prev.kind() {
                    ValueKind::Map => "dict",
                    ValueKind::Seq => "list",
                    ValueKind::String => "str",
                    ValueKind::Bool => "bool",
                    ValueKind::None => "NoneType",
                    ValueKind::Number if prev.is_integer() => "int",
                    ValueKind::Number => "float",
                    _ => return None,
                };
                return Some(format!("'{kind} object' has no attribute '{attr}'"));
            }
            prev = v;
        }
        None
    }
}

/// A variable path at the start of an expression: `a.b['c'][0]`.
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\{\{-?\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[(?:'[^']*'|"[^"]*"|\d+)\])*)"#)
        .unwrap_or_else(|_| unreachable!())
});
/// One step of a [`PATH`]: the name, then `.attr` or `[key]`.
static SEGMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^[A-Za-z_]\w*|\.[A-Za-z_]\w*|\[(?:'[^']*'|"[^"]*"|\d+)\]"#)
        .unwrap_or_else(|_| unreachable!())
});

/// Ansible keeps the template's trailing newlines on string results
/// (Jinja drops one).
pub(crate) fn restore_newlines(src: &str, mut text: String) -> String {
    let want = src.len() - src.trim_end_matches('\n').len();
    let have = text.len() - text.trim_end_matches('\n').len();
    for _ in have..want {
        text.push('\n');
    }
    text
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
/// Where a bare expression has `}}` outside strings and brackets, if it does.
fn variable_end(src: &str) -> Option<usize> {
    let (mut depth, mut quote, mut escaped) = (0usize, None, false);
    for (i, c) in src.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth > 0 => depth -= 1,
                '}' if src[i..].starts_with("}}") => return Some(i),
                _ => {}
            },
        }
    }
    None
}

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
    let src_tuples = if src.contains(',') {
        mark_tuples(src)
    } else {
        src.to_string()
    };
    let src = src_tuples.as_str();
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

const KEYWORDS: &[&str] = &["in", "and", "or", "not", "if", "else", "is", "elif"];

/// Marks parenthesized tuples (`(1, 2)`) so they print as Python tuples:
/// `(` not following a name, `)` or `]`, with a comma at its own level.
fn mark_tuples(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut inserts: Vec<usize> = Vec::new();
    let mut i = 0;
    let mut in_block = false;
    // stack of (kind, position, is_group, has_comma)
    let mut stack: Vec<(char, usize, bool, bool)> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if !in_block {
            if c == '{' && matches!(chars.get(i + 1), Some('{' | '%')) {
                let rest: String = chars[i..chars.len().min(i + 20)].iter().collect();
                let raw = rest
                    .trim_start_matches("{%")
                    .trim_start_matches('-')
                    .trim_start()
                    .starts_with("raw");
                if raw {
                    let text: String = chars[i..].iter().collect();
                    match text.find("endraw") {
                        Some(off) => {
                            i += text[..off].chars().count() + 6;
                            continue;
                        }
                        None => break,
                    }
                }
                in_block = true;
                stack.clear();
                i += 2;
                continue;
            }
            i += 1;
            continue;
        }
        match c {
            '\'' | '"' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '}' | '%' if chars.get(i + 1) == Some(&'}') && stack.is_empty() => {
                in_block = false;
                i += 1;
            }
            '(' => {
                let mut j = i;
                while j > 0 && chars[j - 1].is_whitespace() {
                    j -= 1;
                }
                let mut k = j;
                while k > 0 && (chars[k - 1].is_alphanumeric() || chars[k - 1] == '_') {
                    k -= 1;
                }
                let word: String = chars[k..j].iter().collect();
                let prev = if j > 0 { chars[j - 1] } else { ' ' };
                let is_call = (!word.is_empty() && !KEYWORDS.contains(&word.as_str()))
                    || prev == ')'
                    || prev == ']';
                stack.push(('(', i, !is_call, false));
            }
            '[' | '{' => stack.push((c, i, false, false)),
            ',' => {
                if let Some(top) = stack.last_mut() {
                    top.3 = true;
                }
            }
            ')' | ']' | '}' => {
                if let Some((kind, pos, group, comma)) = stack.pop() {
                    if kind == '(' && group && comma {
                        inserts.push(pos);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    if inserts.is_empty() {
        return src.to_string();
    }
    let mut out = String::with_capacity(src.len() + inserts.len() * 11);
    for (idx, c) in chars.iter().enumerate() {
        if inserts.contains(&idx) {
            out.push_str("_hive_tuple");
        }
        out.push(*c);
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
    fn tuples_are_marked() {
        assert_eq!(mark_tuples("{{ (1, 2) }}"), "{{ _hive_tuple(1, 2) }}");
        assert_eq!(
            mark_tuples("{{ f(1, 2) | x((3, 4)) }} (a, b)"),
            "{{ f(1, 2) | x(_hive_tuple(3, 4)) }} (a, b)"
        );
        assert_eq!(
            mark_tuples("{{ 'a' in ('b', 'c') }}"),
            "{{ 'a' in _hive_tuple('b', 'c') }}"
        );
        assert_eq!(mark_tuples("{{ ([1, 2]) }}"), "{{ ([1, 2]) }}");
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
