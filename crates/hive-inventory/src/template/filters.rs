//! Ansible's filters and tests, and Python methods on plain values.

use base64::Engine as _;
use hive_model::shell_quote;
use indexmap::IndexMap;
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use regex::{Regex, RegexBuilder};

use super::objects::{Missing, check_defined, is_undefined, missing_message, undefined_error};
use super::pyset::PySet;
use super::pyvalue::{check_size, text};

pub(super) fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

pub(super) fn items_of(v: &Value) -> Result<Vec<Value>, Error> {
    check_defined(v)?;
    check_size(v).map_err(invalid)?;
    Ok(v.try_iter()?.collect())
}

pub(super) fn pairs_of(v: &Value) -> Result<Vec<(Value, Value)>, Error> {
    check_defined(v)?;
    if v.kind() != ValueKind::Map {
        return Err(invalid(format!("expected a dict, got {}", v.kind())));
    }
    let mut out = Vec::new();
    for k in v.try_iter()? {
        let item = v.get_item(&k)?;
        out.push((k, item));
    }
    Ok(out)
}

/// Registers the Ansible filters and tests (but the serialization filters,
/// which `serialize` registers).
pub(crate) fn register(env: &mut Environment<'static>) {
    register_conversions(env);
    register_collections(env);
    register_regex(env);
    register_strings(env);
    register_ipaddr(env);
    register_tests(env);
}

/// Defaults and type conversions: `default`, `mandatory`, `bool`, `int`,
/// `list`, `float`, `string`.
fn register_conversions(env: &mut Environment<'static>) {
    env.add_filter("default", default);
    env.add_filter("d", default);
    env.add_filter(
        "mandatory",
        |v: Value, msg: Option<String>| -> Result<Value, Error> {
            if is_undefined(&v) {
                let m = msg
                    .or_else(|| missing_message(&v))
                    .unwrap_or_else(|| "mandatory variable not defined".into());
                return Err(undefined_error(m));
            }
            Ok(v)
        },
    );
    env.add_filter("bool", |v: Value| -> Result<bool, Error> {
        check_defined(&v)?;
        Ok(match v.kind() {
            ValueKind::Bool => v.is_true(),
            ValueKind::None => false,
            ValueKind::Number => v.as_i64() == Some(1),
            ValueKind::String => {
                matches!(
                    v.as_str().unwrap_or_default().to_lowercase().as_str(),
                    "yes" | "on" | "1" | "true"
                )
            }
            _ => false,
        })
    });
    env.add_filter("int", to_int);
    env.add_filter("list", |state: &State, v: Value| -> Result<Value, Error> {
        check_size(&v).map_err(invalid)?;
        minijinja::filters::list(state, v)
    });
    env.add_filter(
        "float",
        |v: Value, default: Option<f64>| -> Result<Value, Error> {
            check_defined(&v)?;
            let d = default.unwrap_or(0.0);
            Ok(Value::from(match v.kind() {
                ValueKind::Number | ValueKind::Bool => f64::try_from(v).unwrap_or(d),
                ValueKind::String => v.as_str().unwrap_or_default().trim().parse().unwrap_or(d),
                _ => d,
            }))
        },
    );
    env.add_filter("string", |v: Value| -> Result<String, Error> { text(&v) });
}

/// The `key_name` and `value_name` arguments of `dict2items` and
/// `items2dict` (default `key` and `value`); no other argument is taken.
fn key_value_names(kw: &Kwargs) -> Result<(String, String), Error> {
    let key: Option<String> = kw.get("key_name")?;
    let value: Option<String> = kw.get("value_name")?;
    kw.assert_all_used()?;
    Ok((
        key.unwrap_or_else(|| "key".into()),
        value.unwrap_or_else(|| "value".into()),
    ))
}

/// Dicts, lists and sets: `combine`, `dict2items`, `items2dict`, the set
/// operations, `unique`, `flatten`, `extract`.
fn register_collections(env: &mut Environment<'static>) {
    env.add_filter("combine", combine);
    env.add_filter(
        "dict2items",
        |v: Value, kw: Kwargs| -> Result<Value, Error> {
            let (key, value) = key_value_names(&kw)?;
            Ok(Value::from(
                pairs_of(&v)?
                    .into_iter()
                    .map(|(k, v)| {
                        [
                            (Value::from(key.as_str()), k),
                            (Value::from(value.as_str()), v),
                        ]
                        .into_iter()
                        .collect()
                    })
                    .collect::<Vec<Value>>(),
            ))
        },
    );
    env.add_filter(
        "items2dict",
        |v: Value, kw: Kwargs| -> Result<Value, Error> {
            let (key, value) = key_value_names(&kw)?;
            let mut out = Vec::new();
            for item in items_of(&v)? {
                out.push((item.get_attr(&key)?, item.get_attr(&value)?));
            }
            Ok(out.into_iter().collect())
        },
    );
    env.add_filter("intersect", |a: Value, b: Value| -> Result<Value, Error> {
        set_op(&a, &b, PySet::intersection, |a, b| {
            a.iter().filter(|x| b.contains(x)).cloned().collect()
        })
    });
    env.add_filter("difference", |a: Value, b: Value| -> Result<Value, Error> {
        set_op(&a, &b, PySet::difference, |a, b| {
            a.iter().filter(|x| !b.contains(x)).cloned().collect()
        })
    });
    env.add_filter("union", |a: Value, b: Value| -> Result<Value, Error> {
        set_op(&a, &b, PySet::union, |a, b| {
            a.iter().chain(b.iter()).cloned().collect()
        })
    });
    env.add_filter(
        "symmetric_difference",
        |a: Value, b: Value| -> Result<Value, Error> {
            set_op(&a, &b, PySet::symmetric_difference, |a, b| {
                let mut out: Vec<Value> = a.iter().filter(|x| !b.contains(x)).cloned().collect();
                out.extend(b.iter().filter(|x| !a.contains(x)).cloned());
                out
            })
        },
    );
    env.add_filter("unique", |a: Value| -> Result<Value, Error> {
        Ok(Value::from(unique(items_of(&a)?)))
    });
    env.add_filter(
        "flatten",
        |v: Value, levels: Option<i64>, kw: Kwargs| -> Result<Value, Error> {
            let skip_nulls: Option<bool> = kw.get("skip_nulls")?;
            let levels = match levels {
                Some(l) => Some(l),
                None => kw.get::<Option<i64>>("levels")?,
            };
            kw.assert_all_used()?;
            let mut out = Vec::new();
            flatten(&v, levels, skip_nulls.unwrap_or(true), &mut out)?;
            Ok(Value::from(out))
        },
    );
    env.add_filter(
        "extract",
        |item: Value, container: Value, morekeys: Option<Value>| -> Result<Value, Error> {
            let mut v = container.get_item(&item)?;
            if let Some(keys) = morekeys {
                let keys = if keys.kind() == ValueKind::Seq {
                    items_of(&keys)?
                } else {
                    vec![keys]
                };
                for k in keys {
                    if is_undefined(&v) {
                        break;
                    }
                    v = v.get_item(&k)?;
                }
            }
            Ok(v)
        },
    );
}

/// Regular expressions: `regex_replace`, `regex_search`, `regex_findall`,
/// `regex_escape`.
fn register_regex(env: &mut Environment<'static>) {
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter(
        "regex_findall",
        |v: Value, pattern: String, kw: Kwargs| -> Result<Value, Error> {
            let re = build_regex(&pattern, &kw)?;
            let s = text(&v)?;
            Ok(Value::from(
                re.captures_iter(&s)
                    .map(|c| {
                        if c.len() <= 1 {
                            Value::from(c.get(0).map_or("", |m| m.as_str()))
                        } else if c.len() == 2 {
                            Value::from(c.get(1).map_or("", |m| m.as_str()))
                        } else {
                            Value::from(
                                c.iter()
                                    .skip(1)
                                    .map(|m| m.map_or("", |m| m.as_str()).to_string())
                                    .collect::<Vec<_>>(),
                            )
                        }
                    })
                    .collect::<Vec<_>>(),
            ))
        },
    );
    env.add_filter("regex_escape", |v: Value| -> Result<String, Error> {
        Ok(regex::escape(&text(&v)?))
    });
}

/// Strings and sequences: `split`, `join`, `first`, `last`, `ternary`,
/// base64, `basename`, `dirname`, `quote`.
fn register_strings(env: &mut Environment<'static>) {
    env.add_filter(
        "split",
        |v: Value, sep: Option<String>, maxsplit: Option<i64>| -> Result<Value, Error> {
            Ok(py_split(&text(&v)?, sep.as_deref(), maxsplit.unwrap_or(-1)))
        },
    );
    env.add_filter(
        "join",
        |v: Value, sep: Option<String>| -> Result<String, Error> {
            let parts: Result<Vec<String>, Error> = items_of(&v)?.iter().map(text).collect();
            Ok(parts?.join(sep.as_deref().unwrap_or("")))
        },
    );
    env.add_filter("first", |v: Value| -> Result<Value, Error> {
        Ok(items_of(&v)?
            .into_iter()
            .next()
            .unwrap_or_else(|| Missing::value("No first item, sequence was empty.".into())))
    });
    env.add_filter("last", |v: Value| -> Result<Value, Error> {
        Ok(items_of(&v)?
            .into_iter()
            .last()
            .unwrap_or_else(|| Missing::value("No last item, sequence was empty.".into())))
    });
    env.add_filter(
        "ternary",
        |v: Value, t: Value, f: Value, none: Option<Value>| -> Value {
            match none {
                Some(n) if v.is_none() => n,
                _ if v.is_true() => t,
                _ => f,
            }
        },
    );
    env.add_filter("b64encode", |v: Value| -> Result<String, Error> {
        Ok(base64::engine::general_purpose::STANDARD.encode(text(&v)?))
    });
    env.add_filter("b64decode", |v: Value| -> Result<String, Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text(&v)?.trim())
            .map_err(|e| invalid(format!("b64decode: {e}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    });
    env.add_filter("basename", |v: Value| -> Result<String, Error> {
        let s = text(&v)?;
        Ok(s.rsplit('/').next().unwrap_or_default().to_string())
    });
    env.add_filter("dirname", |v: Value| -> Result<String, Error> {
        let s = text(&v)?;
        Ok(match s.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => s[..i].trim_end_matches('/').to_string(),
            None => String::new(),
        })
    });
    env.add_filter("quote", |v: Value| -> Result<String, Error> {
        Ok(shell_quote(&text(&v)?))
    });
}

/// The `ansible.utils` address filters: `ipaddr`, `ipv4`, `ipv6`, `ipmath`.
fn register_ipaddr(env: &mut Environment<'static>) {
    env.add_filter("ipaddr", super::ipaddr::ipaddr_filter);
    env.add_filter("ansible.netcommon.ipaddr", super::ipaddr::ipaddr_filter);
    env.add_filter("ansible.utils.ipaddr", super::ipaddr::ipaddr_filter);
    env.add_filter("ipv4", super::ipaddr::ipv4_filter);
    env.add_filter("ipv6", super::ipaddr::ipv6_filter);
    env.add_filter("ipmath", super::ipaddr::ipmath_filter);
}

/// The tests: defined, regex matches, truthiness, paths, task results.
fn register_tests(env: &mut Environment<'static>) {
    env.add_test("defined", |v: Value| !is_undefined(&v));
    env.add_test("undefined", |v: Value| is_undefined(&v));
    env.add_test(
        "match",
        |v: Value, pattern: String, kw: Kwargs| -> Result<bool, Error> {
            let re = build_regex(&format!(r"\A(?:{pattern})"), &kw)?;
            Ok(re.is_match(&text(&v)?))
        },
    );
    env.add_test(
        "search",
        |v: Value, pattern: String, kw: Kwargs| -> Result<bool, Error> {
            let re = build_regex(&pattern, &kw)?;
            Ok(re.is_match(&text(&v)?))
        },
    );
    env.add_test(
        "regex",
        |v: Value, pattern: String, kw: Kwargs| -> Result<bool, Error> {
            let re = build_regex(&pattern, &kw)?;
            Ok(re.is_match(&text(&v)?))
        },
    );
    env.add_test("truthy", |v: Value| v.is_true());
    // Ansible's `seq is contains(value)`: Python's `value in seq`
    env.add_test(
        "contains",
        |seq: Value, value: Value| -> Result<bool, Error> {
            match seq.kind() {
                ValueKind::String => Ok(seq
                    .as_str()
                    .unwrap_or_default()
                    .contains(text(&value)?.as_str())),
                ValueKind::Map => Ok(seq.get_item(&value).is_ok_and(|v| !v.is_undefined())),
                _ => Ok(seq.try_iter()?.any(|item| item == value)),
            }
        },
    );
    for (name, check) in [
        (
            "file",
            (|p: &std::path::Path| p.is_file()) as fn(&std::path::Path) -> bool,
        ),
        ("directory", |p: &std::path::Path| p.is_dir()),
        ("exists", |p: &std::path::Path| p.exists()),
        ("link", |p: &std::path::Path| p.is_symlink()),
        ("abs", |p: &std::path::Path| p.is_absolute()),
    ] {
        env.add_test(name, move |v: Value| -> Result<bool, Error> {
            Ok(check(std::path::Path::new(&text(&v)?)))
        });
    }
    env.add_test("falsy", |v: Value| !v.is_true());
    for (name, key) in [
        ("failed", "failed"),
        ("changed", "changed"),
        ("skipped", "skipped"),
    ] {
        env.add_test(name, move |v: Value| {
            v.get_attr(key).map(|x| x.is_true()).unwrap_or(false)
        });
    }
    env.add_test("succeeded", |v: Value| {
        !v.get_attr("failed").map(|x| x.is_true()).unwrap_or(false)
    });
    env.add_test("success", |v: Value| {
        !v.get_attr("failed").map(|x| x.is_true()).unwrap_or(false)
    });
}

fn default(v: Value, d: Option<Value>, boolean: Option<bool>) -> Value {
    if is_undefined(&v) || (boolean.unwrap_or(false) && !v.is_true()) {
        d.unwrap_or_else(|| Value::from(""))
    } else {
        v
    }
}

fn to_int(v: Value, default: Option<i64>, kw: Kwargs) -> Result<Value, Error> {
    check_defined(&v)?;
    let base: Option<u32> = kw.get("base")?;
    kw.assert_all_used()?;
    let d = default.unwrap_or(0);
    Ok(Value::from(match v.kind() {
        ValueKind::Bool => i64::from(v.is_true()),
        ValueKind::Number => {
            if v.is_integer() {
                return Ok(v);
            }
            f64::try_from(v).map(|f| f.trunc() as i64).unwrap_or(d)
        }
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default().trim().replace('_', "");
            match i64::from_str_radix(&s, base.unwrap_or(10)) {
                Ok(i) => i,
                Err(_) => s.parse::<f64>().map(|f| f.trunc() as i64).unwrap_or(d),
            }
        }
        _ => d,
    }))
}

/// Ansible's set filters: Python set operations (element order as CPython
/// gives it with `PYTHONHASHSEED=0`), or first-seen order for unhashable
/// elements.
fn set_op(
    a: &Value,
    b: &Value,
    op: fn(&PySet, &PySet) -> PySet,
    fallback: fn(&[Value], &[Value]) -> Vec<Value>,
) -> Result<Value, Error> {
    let (a, b) = (items_of(a)?, items_of(b)?);
    Ok(Value::from(
        match (PySet::from_items(&a), PySet::from_items(&b)) {
            (Some(sa), Some(sb)) => op(&sa, &sb).items(),
            _ => unique(fallback(&a, &b)),
        },
    ))
}

fn unique(items: Vec<Value>) -> Vec<Value> {
    // strings alone, or integers alone, are equal when their texts are
    let strings = items.iter().all(|v| v.kind() == ValueKind::String);
    if strings || items.iter().all(Value::is_integer) {
        let mut seen = std::collections::HashSet::new();
        return items
            .into_iter()
            .filter(|v| seen.insert(v.to_string()))
            .collect();
    }
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn flatten(
    v: &Value,
    levels: Option<i64>,
    skip_nulls: bool,
    out: &mut Vec<Value>,
) -> Result<(), Error> {
    for item in items_of(v)? {
        if skip_nulls && item.is_none() {
            continue;
        }
        if item.kind() == ValueKind::Seq && levels != Some(0) {
            flatten(&item, levels.map(|l| l - 1), skip_nulls, out)?;
        } else {
            out.push(item);
        }
    }
    Ok(())
}

fn combine(args: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let recursive: Option<bool> = kw.get("recursive")?;
    let list_merge: Option<String> = kw.get("list_merge")?;
    kw.assert_all_used()?;
    let mut dicts = Vec::new();
    for a in args.iter() {
        if a.kind() == ValueKind::Seq {
            dicts.extend(items_of(a)?);
        } else {
            dicts.push(a.clone());
        }
    }
    let mut acc: IndexMap<Value, Value> = IndexMap::new();
    for d in dicts {
        merge(
            &mut acc,
            &d,
            recursive.unwrap_or(false),
            list_merge.as_deref().unwrap_or("replace"),
        )?;
    }
    Ok(acc.into_iter().collect())
}

fn merge(
    acc: &mut IndexMap<Value, Value>,
    d: &Value,
    recursive: bool,
    list_merge: &str,
) -> Result<(), Error> {
    for (k, v) in pairs_of(d)? {
        let merged = match acc.get(&k) {
            Some(old)
                if recursive && old.kind() == ValueKind::Map && v.kind() == ValueKind::Map =>
            {
                let mut inner: IndexMap<Value, Value> = pairs_of(old)?.into_iter().collect();
                merge(&mut inner, &v, recursive, list_merge)?;
                inner.into_iter().collect()
            }
            Some(old)
                if old.kind() == ValueKind::Seq
                    && v.kind() == ValueKind::Seq
                    && list_merge != "replace" =>
            {
                let (o, n) = (items_of(old)?, items_of(&v)?);
                let all: Vec<Value> = match list_merge {
                    "keep" => o,
                    "append" => o.into_iter().chain(n).collect(),
                    "prepend" => n.into_iter().chain(o).collect(),
                    "append_rp" => o
                        .into_iter()
                        .filter(|x| !n.contains(x))
                        .chain(n.clone())
                        .collect(),
                    "prepend_rp" => n
                        .clone()
                        .into_iter()
                        .chain(o.into_iter().filter(|x| !n.contains(x)))
                        .collect(),
                    _ => n,
                };
                Value::from(all)
            }
            _ => v,
        };
        acc.insert(k, merged);
    }
    Ok(())
}

fn build_regex(pattern: &str, kw: &Kwargs) -> Result<Regex, Error> {
    let ignorecase: Option<bool> = kw.get("ignorecase")?;
    let multiline: Option<bool> = kw.get("multiline")?;
    kw.assert_all_used()?;
    RegexBuilder::new(pattern)
        .case_insensitive(ignorecase.unwrap_or(false))
        .multi_line(multiline.unwrap_or(false))
        .build()
        .map_err(|e| invalid(format!("invalid regular expression '{pattern}': {e}")))
}

/// Converts a Python `re.sub` replacement (`\1`, `\g<name>`) to regex's.
fn py_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut num = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        num.push(d);
                        chars.next();
                        if num.len() == 2 {
                            break;
                        }
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn regex_replace(
    v: Value,
    pattern: String,
    replacement: Option<String>,
    kw: Kwargs,
) -> Result<String, Error> {
    let count: Option<usize> = kw.get("count")?;
    let re = build_regex(&pattern, &kw)?;
    let s = text(&v)?;
    let rep = py_replacement(replacement.as_deref().unwrap_or(""));
    Ok(re
        .replacen(&s, count.unwrap_or(0), rep.as_str())
        .into_owned())
}

fn regex_search(
    v: Value,
    pattern: String,
    groups: Rest<String>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let re = build_regex(&pattern, &kw)?;
    let s = text(&v)?;
    let Some(c) = re.captures(&s) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(c.get(0).map_or("", |m| m.as_str())));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        let m = if let Some(n) = g.strip_prefix('\\') {
            n.parse::<usize>().ok().and_then(|i| c.get(i))
        } else if let Some(name) = g.strip_prefix("\\g<").and_then(|n| n.strip_suffix('>')) {
            c.name(name)
        } else {
            c.name(g)
        };
        out.push(Value::from(m.map_or("", |m| m.as_str())));
    }
    Ok(Value::from(out))
}

fn py_split(s: &str, sep: Option<&str>, maxsplit: i64) -> Value {
    let parts: Vec<String> = match sep {
        None | Some("") if sep.is_none() => {
            if maxsplit < 0 {
                s.split_whitespace().map(str::to_string).collect()
            } else {
                let mut out = Vec::new();
                let mut rest = s.trim_start();
                while !rest.is_empty() {
                    if out.len() as i64 == maxsplit {
                        out.push(rest.to_string());
                        break;
                    }
                    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    out.push(rest[..end].to_string());
                    rest = rest[end..].trim_start();
                }
                out
            }
        }
        Some(sep) => {
            if maxsplit < 0 {
                s.split(sep).map(str::to_string).collect()
            } else {
                s.splitn(usize::try_from(maxsplit + 1).unwrap_or(1), sep)
                    .map(str::to_string)
                    .collect()
            }
        }
        None => Vec::new(),
    };
    Value::from(parts)
}

/// Python methods on plain values (`'a,b'.split(',')`, `d.keys()`, ...).
pub(crate) fn call_method(
    _state: &State<'_, '_>,
    v: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    check_defined(v)?;
    let arg_str =
        |i: usize| -> Option<String> { args.get(i).and_then(|a| a.as_str().map(str::to_string)) };
    match (v.kind(), method) {
        (ValueKind::String, _) => {
            let s = v.as_str().unwrap_or_default();
            Ok(match method {
                "split" => py_split(
                    s,
                    arg_str(0).as_deref(),
                    args.get(1).and_then(Value::as_i64).unwrap_or(-1),
                ),
                "rsplit" if args.len() < 2 => py_split(s, arg_str(0).as_deref(), -1),
                "strip" => Value::from(match arg_str(0) {
                    Some(c) => s.trim_matches(|x| c.contains(x)),
                    None => s.trim(),
                }),
                "lstrip" => Value::from(match arg_str(0) {
                    Some(c) => s.trim_start_matches(|x| c.contains(x)),
                    None => s.trim_start(),
                }),
                "rstrip" => Value::from(match arg_str(0) {
                    Some(c) => s.trim_end_matches(|x| c.contains(x)),
                    None => s.trim_end(),
                }),
                "lower" => Value::from(s.to_lowercase()),
                "upper" => Value::from(s.to_uppercase()),
                "startswith" => Value::from(arg_str(0).is_some_and(|p| s.starts_with(&p))),
                "endswith" => Value::from(arg_str(0).is_some_and(|p| s.ends_with(&p))),
                "replace" => Value::from(s.replace(
                    &arg_str(0).unwrap_or_default(),
                    &arg_str(1).unwrap_or_default(),
                )),
                "find" => Value::from(arg_str(0).and_then(|p| s.find(&p)).map_or(-1, |i| i as i64)),
                "splitlines" => Value::from(s.lines().map(str::to_string).collect::<Vec<_>>()),
                "isdigit" => Value::from(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
                "join" => {
                    let parts: Result<Vec<String>, Error> =
                        items_of(args.first().unwrap_or(&Value::from(())))?
                            .iter()
                            .map(text)
                            .collect();
                    Value::from(parts?.join(s))
                }
                _ => return Err(Error::from(ErrorKind::UnknownMethod)),
            })
        }
        (ValueKind::Map, "keys") => Ok(Value::from(
            pairs_of(v)?.into_iter().map(|p| p.0).collect::<Vec<_>>(),
        )),
        (ValueKind::Map, "values") => Ok(Value::from(
            pairs_of(v)?.into_iter().map(|p| p.1).collect::<Vec<_>>(),
        )),
        (ValueKind::Map, "items") => Ok(Value::from(
            pairs_of(v)?
                .into_iter()
                .map(|(k, x)| Value::from(vec![k, x]))
                .collect::<Vec<_>>(),
        )),
        (ValueKind::Map, "get") => {
            let key = args.first().cloned().unwrap_or_default();
            let got = v.get_item(&key)?;
            Ok(if is_undefined(&got) {
                args.get(1).cloned().unwrap_or(Value::from(()))
            } else {
                got
            })
        }
        (ValueKind::Map, "copy") | (ValueKind::Seq, "copy") => Ok(v.clone()),
        (ValueKind::Seq, "index") => {
            let x = args.first().cloned().unwrap_or_default();
            items_of(v)?
                .iter()
                .position(|i| *i == x)
                .map(|i| Value::from(i as i64))
                .ok_or_else(|| invalid("value is not in list"))
        }
        (ValueKind::Seq, "count") => {
            let x = args.first().cloned().unwrap_or_default();
            Ok(Value::from(
                items_of(v)?.iter().filter(|i| **i == x).count() as i64,
            ))
        }
        (ValueKind::Map, "update") | (ValueKind::Seq, "append" | "extend") => {
            Err(invalid(format!(
                "cannot {method}() this value: only a variable set with {{% set %}} in the same template can be changed"
            )))
        }
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}
