//! JSON and YAML in templates: Ansible's `to_json`, `to_nice_json`,
//! `from_json`, `from_yaml`, `to_yaml` and `to_nice_yaml`, written the way
//! Python's `json.dumps` and PyYAML's `dump` write them.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error};

use super::filters::{invalid, items_of, pairs_of};
use super::objects::check_defined;
use super::pyvalue::{py_float, text, yaml_to_value};

/// JSON and YAML: `to_json`, `to_nice_json`, `from_json`, `from_yaml`,
/// `to_yaml`, `to_nice_yaml`.
pub(super) fn register_serialization(env: &mut Environment<'static>) {
    env.add_filter("to_json", |v: Value, kw: Kwargs| -> Result<String, Error> {
        let indent: Option<usize> = kw.get("indent")?;
        let sort: Option<bool> = kw.get("sort_keys")?;
        let _: Option<bool> = kw.get("ensure_ascii")?;
        kw.assert_all_used()?;
        let mut out = String::new();
        let (item_sep, key_sep) = if indent.is_some() {
            (",", ": ")
        } else {
            (", ", ": ")
        };
        py_json(
            &v,
            indent,
            sort.unwrap_or(false),
            item_sep,
            key_sep,
            0,
            &mut out,
        )?;
        Ok(out)
    });
    env.add_filter(
        "to_nice_json",
        |v: Value, kw: Kwargs| -> Result<String, Error> {
            let indent: Option<usize> = kw.get("indent")?;
            let sort: Option<bool> = kw.get("sort_keys")?;
            kw.assert_all_used()?;
            let mut out = String::new();
            py_json(
                &v,
                Some(indent.unwrap_or(4)),
                sort.unwrap_or(true),
                ",",
                ": ",
                0,
                &mut out,
            )?;
            Ok(out)
        },
    );
    env.add_filter("from_json", |v: Value| -> Result<Value, Error> {
        let s = text(&v)?;
        let j: serde_json::Value =
            serde_json::from_str(&s).map_err(|e| invalid(format!("from_json: {e}")))?;
        Ok(Value::from_serialize(&j))
    });
    env.add_filter("from_yaml", |v: Value| -> Result<Value, Error> {
        let s = text(&v)?;
        let y: serde_yaml::Value =
            serde_yaml::from_str(&s).map_err(|e| invalid(format!("from_yaml: {e}")))?;
        Ok(yaml_to_value(&y))
    });
    env.add_filter("to_yaml", |v: Value, kw: Kwargs| -> Result<String, Error> {
        let indent: Option<usize> = kw.get("indent")?;
        kw.assert_all_used()?;
        yaml_dump(&v, indent.unwrap_or(2), true)
    });
    env.add_filter(
        "to_nice_yaml",
        |v: Value, kw: Kwargs| -> Result<String, Error> {
            let indent: Option<usize> = kw.get("indent")?;
            let _: Option<i64> = kw.get("width")?;
            kw.assert_all_used()?;
            yaml_dump(&v, indent.unwrap_or(4), false)
        },
    );
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `json.dumps`.
fn py_json(
    v: &Value,
    indent: Option<usize>,
    sort: bool,
    item_sep: &str,
    key_sep: &str,
    level: usize,
    out: &mut String,
) -> Result<(), Error> {
    check_defined(v)?;
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    match v.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if v.is_integer() {
                out.push_str(&v.to_string());
            } else {
                out.push_str(&py_float(f64::try_from(v.clone()).unwrap_or(f64::NAN)));
            }
        }
        ValueKind::String => json_str(v.as_str().unwrap_or_default(), out),
        ValueKind::Map => {
            let mut pairs = pairs_of(v)?;
            if pairs.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if sort {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (k, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                let key = match k.kind() {
                    ValueKind::String => k.as_str().unwrap_or_default().to_string(),
                    ValueKind::Bool => if k.is_true() { "true" } else { "false" }.to_string(),
                    ValueKind::None => "null".into(),
                    _ => text(k)?,
                };
                json_str(&key, out);
                out.push_str(key_sep);
                py_json(item, indent, sort, item_sep, key_sep, level + 1, out)?;
            }
            newline(out, level);
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = items_of(v)?;
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                py_json(item, indent, sort, item_sep, key_sep, level + 1, out)?;
            }
            newline(out, level);
            out.push(']');
        }
        _ => json_str(&text(v)?, out),
    }
    Ok(())
}

fn yaml_scalar(v: &Value) -> Result<String, Error> {
    Ok(match v.kind() {
        ValueKind::None => "null".into(),
        ValueKind::Bool => if v.is_true() { "true" } else { "false" }.into(),
        ValueKind::Number => {
            if v.is_integer() {
                v.to_string()
            } else {
                py_float(f64::try_from(v.clone()).unwrap_or(f64::NAN))
            }
        }
        _ => {
            let s = text(v)?;
            if yaml_plain_ok(&s) {
                s
            } else if s.chars().any(|c| c.is_control()) {
                let mut out = String::new();
                json_str(&s, &mut out);
                out
            } else {
                format!("'{}'", s.replace('\'', "''"))
            }
        }
    })
}

fn yaml_plain_ok(s: &str) -> bool {
    if s.is_empty() || s != s.trim() || s.chars().any(|c| c.is_control()) {
        return false;
    }
    let lower = s.to_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
    ) {
        return false;
    }
    if s.parse::<f64>().is_ok() || s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c)) {
        return false;
    }
    !(s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.starts_with("0x")
        || s.starts_with('.'))
}

fn is_collection(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::Map | ValueKind::Seq)
}

fn yaml_flow(v: &Value) -> Result<String, Error> {
    match v.kind() {
        ValueKind::Map => {
            let parts: Result<Vec<String>, Error> = pairs_of(v)?
                .iter()
                .map(|(k, x)| Ok(format!("{}: {}", yaml_scalar(k)?, yaml_flow(x)?)))
                .collect();
            Ok(format!("{{{}}}", parts?.join(", ")))
        }
        ValueKind::Seq => {
            let parts: Result<Vec<String>, Error> = items_of(v)?.iter().map(yaml_flow).collect();
            Ok(format!("[{}]", parts?.join(", ")))
        }
        _ => yaml_scalar(v),
    }
}

/// PyYAML's `dump` (sorted keys; `flow_leaves` = `default_flow_style=None`).
fn yaml_dump(v: &Value, indent: usize, flow_leaves: bool) -> Result<String, Error> {
    check_defined(v)?;
    let mut out = String::new();
    if !is_collection(v) || v.len() == Some(0) || (flow_leaves && is_leaf(v)?) {
        out.push_str(&yaml_flow(v)?);
        out.push('\n');
        if !is_collection(v) {
            out.push_str("...\n");
        }
        return Ok(out);
    }
    yaml_block(v, indent, flow_leaves, 0, false, &mut out)?;
    Ok(out)
}

fn is_leaf(v: &Value) -> Result<bool, Error> {
    Ok(match v.kind() {
        ValueKind::Map => pairs_of(v)?.iter().all(|(_, x)| !is_collection(x)),
        ValueKind::Seq => items_of(v)?.iter().all(|x| !is_collection(x)),
        _ => true,
    })
}

fn yaml_block(
    v: &Value,
    indent: usize,
    flow: bool,
    col: usize,
    inline: bool,
    out: &mut String,
) -> Result<(), Error> {
    let inline_child = |x: &Value| -> Result<bool, Error> {
        Ok(!is_collection(x) || x.len() == Some(0) || (flow && is_leaf(x)?))
    };
    let mut first = true;
    match v.kind() {
        ValueKind::Map => {
            let mut pairs = pairs_of(v)?;
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, x) in pairs {
                if !(first && inline) {
                    out.push_str(&" ".repeat(col));
                }
                first = false;
                out.push_str(&yaml_scalar(&k)?);
                out.push(':');
                if inline_child(&x)? {
                    out.push(' ');
                    out.push_str(&yaml_flow(&x)?);
                    out.push('\n');
                } else if x.kind() == ValueKind::Seq {
                    out.push('\n');
                    yaml_block(&x, indent, flow, col, false, out)?;
                } else {
                    out.push('\n');
                    yaml_block(&x, indent, flow, col + indent, false, out)?;
                }
            }
        }
        _ => {
            for x in items_of(v)? {
                if !(first && inline) {
                    out.push_str(&" ".repeat(col));
                }
                first = false;
                out.push('-');
                if inline_child(&x)? {
                    out.push(' ');
                    out.push_str(&yaml_flow(&x)?);
                    out.push('\n');
                } else {
                    out.push_str(&" ".repeat(indent.saturating_sub(1).max(1)));
                    yaml_block(&x, indent, flow, col + indent.max(2), true, out)?;
                }
            }
        }
    }
    Ok(())
}
