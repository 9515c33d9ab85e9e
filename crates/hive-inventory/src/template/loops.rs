//! The lookups that make lists: what `with_<name>` loops iterate over and
//! what `lookup('<name>', …)` / `query('<name>', …)` return for `list`,
//! `items`, `indexed_items`, `nested`, `together`, `dict`, `sequence`,
//! `subelements` and `random_choice`, with Ansible's messages.

use rand::seq::SliceRandom as _;
use serde_json::{Value as Json, json};

/// The names [`list_lookup`] knows.
pub const LIST_LOOKUPS: &[&str] = &[
    "list",
    "items",
    "indexed_items",
    "nested",
    "together",
    "dict",
    "sequence",
    "subelements",
    "random_choice",
];

/// The items of list lookup `name` for `terms` (what `with_<name>:` gives
/// once templated, a string already made a one-item list); `None` when
/// `name` is not one of [`LIST_LOOKUPS`].
pub fn list_lookup(name: &str, terms: &Json) -> Option<Result<Vec<Json>, String>> {
    let as_list = || match terms {
        Json::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    Some(match name {
        "list" => match terms {
            Json::Array(a) => Ok(a.clone()),
            _ => Err("with_list expects a list".into()),
        },
        "items" => Ok(as_list().into_iter().flat_map(listify).collect()),
        "indexed_items" => match terms {
            Json::Array(a) => Ok(a.iter().enumerate().map(|(i, x)| json!([i, x])).collect()),
            _ => Err("with_indexed_items expects a list".into()),
        },
        "nested" => nested(as_list()),
        "together" => {
            let lists: Vec<Vec<Json>> = as_list().into_iter().map(listify).collect();
            if lists.is_empty() {
                return Some(Err(
                    "with_together requires at least one element in each list".into(),
                ));
            }
            let n = lists.iter().map(Vec::len).max().unwrap_or(0);
            Ok((0..n)
                .map(|i| {
                    flatten(
                        lists
                            .iter()
                            .map(|l| l.get(i).cloned().unwrap_or(Json::Null))
                            .collect(),
                    )
                })
                .collect())
        }
        "dict" => {
            let mut out = vec![];
            for term in as_list() {
                let Json::Object(m) = term else {
                    return Some(Err("with_dict expects a dict".into()));
                };
                out.extend(m.into_iter().map(|(k, v)| json!({"key": k, "value": v})));
            }
            Ok(out)
        }
        "sequence" => {
            let mut out = vec![];
            for term in as_list() {
                let spec = match term {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                match sequence(&spec) {
                    Ok(items) => out.extend(items),
                    Err(e) => return Some(Err(e)),
                }
            }
            Ok(out)
        }
        "subelements" => subelements(as_list()),
        "random_choice" => Ok(as_list()
            .choose(&mut rand::thread_rng())
            .cloned()
            .into_iter()
            .collect()),
        _ => return None,
    })
}

/// A term as a list (a string or other scalar is one item).
fn listify(v: Json) -> Vec<Json> {
    match v {
        Json::Array(a) => a,
        other => vec![other],
    }
}

/// One level of lists flattened into one list (Ansible's `_flatten`).
fn flatten(items: Vec<Json>) -> Json {
    Json::Array(items.into_iter().flat_map(listify).collect())
}

fn nested(terms: Vec<Json>) -> Result<Vec<Json>, String> {
    let mut lists = terms.into_iter().map(listify);
    let Some(first) = lists.next() else {
        return Err("with_nested requires at least one element in the nested list".into());
    };
    let mut result = first;
    for next in lists {
        let mut combined = vec![];
        for x in &result {
            for y in &next {
                combined.push(flatten(vec![x.clone(), y.clone()]));
            }
        }
        result = combined;
    }
    Ok(result.into_iter().map(|x| flatten(vec![x])).collect())
}

fn subelements(terms: Vec<Json>) -> Result<Vec<Json>, String> {
    let usage =
        |msg: &str| format!("subelements lookup expects a list of two or three items, {msg}");
    if !(2..=3).contains(&terms.len()) {
        return Err(usage(""));
    }
    let mut terms = terms;
    if !matches!(terms[0], Json::Array(_) | Json::Object(_)) {
        terms[0] = Json::Array(vec![terms[0].clone()]);
    }
    let (Json::Array(_) | Json::Object(_), Json::String(path)) = (&terms[0], &terms[1]) else {
        return Err(usage(
            "first a dict or a list, second a string pointing to the subkey",
        ));
    };
    let elements: Vec<Json> = match &terms[0] {
        Json::Object(m) => {
            if m.get("skipped").is_some_and(|s| s != &Json::Bool(false)) {
                return Ok(vec![]);
            }
            m.values().cloned().collect()
        }
        Json::Array(a) => a.clone(),
        _ => vec![],
    };
    let skip_missing = match terms.get(2) {
        None => false,
        Some(Json::Object(flags)) => {
            if let Some(k) = flags.keys().find(|k| *k != "skip_missing") {
                return Err(usage(&format!(
                    "the optional third item must be a dict with flags ['skip_missing'], got {k}"
                )));
            }
            matches!(flags.get("skip_missing"), Some(Json::Bool(true)))
                || flags
                    .get("skip_missing")
                    .and_then(Json::as_str)
                    .is_some_and(|s| {
                        matches!(s.to_ascii_lowercase().as_str(), "yes" | "true" | "on" | "1")
                    })
        }
        Some(_) => {
            return Err(usage(
                "the optional third item must be a dict with flags ['skip_missing']",
            ));
        }
    };
    let keys: Vec<&str> = path.split('.').collect();
    let mut out = vec![];
    for item in elements {
        let Json::Object(m) = &item else {
            return Err(format!(
                "subelements lookup expects a dictionary, got '{item}'"
            ));
        };
        if m.get("skipped").is_some_and(|s| s != &Json::Bool(false)) {
            continue;
        }
        let mut item0 = item.clone();
        let mut sub = &item;
        let mut list = vec![];
        for (i, k) in keys.iter().enumerate() {
            let last = i + 1 == keys.len();
            let Some(v) = sub.get(k) else {
                if skip_missing {
                    continue;
                }
                return Err(format!(
                    "could not find '{k}' key in iterated item '{}'",
                    python_repr(sub)
                ));
            };
            if !last {
                if !v.is_object() {
                    if skip_missing {
                        continue;
                    }
                    return Err(format!(
                        "the key {k} should point to a dictionary, got '{}'",
                        python_repr(v)
                    ));
                }
                sub = v;
            } else {
                let Json::Array(a) = v else {
                    return Err(format!(
                        "the key {k} should point to a list, got '{}'",
                        python_repr(v)
                    ));
                };
                list = a.clone();
            }
        }
        // the list itself is taken out of the item, as Ansible pops it
        remove_path(&mut item0, &keys);
        out.extend(list.into_iter().map(|x| json!([item0.clone(), x])));
    }
    Ok(out)
}

fn remove_path(v: &mut Json, keys: &[&str]) {
    match keys {
        [] => {}
        [last] => {
            if let Json::Object(m) = v
                && m.get(*last).is_some_and(Json::is_array)
            {
                m.remove(*last);
            }
        }
        [first, rest @ ..] => {
            if let Some(inner) = v.get_mut(*first) {
                remove_path(inner, rest);
            }
        }
    }
}

/// A value as Python prints it (`{'a': 1}`, `'x'`, `True`), for messages.
fn python_repr(v: &Json) -> String {
    match v {
        Json::String(s) => format!("'{s}'"),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Null => "None".into(),
        Json::Number(n) => n.to_string(),
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("'{k}': {}", python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `with_sequence`: `start=1 end=5 stride=1 format=%d`, `count=5`, or the
/// shortcut `[start-]end[/stride][:format]`; items are strings.
fn sequence(spec: &str) -> std::result::Result<Vec<Json>, String> {
    let (pairs, rest) = split_kv(spec);
    let (mut start, mut end, mut stride, mut count, mut format) =
        (1i64, None::<i64>, 1i64, None::<i64>, "%d".to_string());
    let num = |k: &str, v: &str| -> std::result::Result<i64, String> {
        let v = v.trim();
        let parsed = if let Some(h) = v.strip_prefix("0x") {
            i64::from_str_radix(h, 16)
        } else if let Some(o) = v
            .strip_prefix("0o")
            .or_else(|| v.strip_prefix('0').filter(|o| !o.is_empty()))
        {
            i64::from_str_radix(o, 8)
        } else {
            v.parse()
        };
        parsed.map_err(|_| {
            format!(
                "Invalid type for configuration option {k} of the sequence lookup: invalid literal for int() with base 10: '{v}'"
            )
        })
    };
    let mut rest = rest.trim().to_string();
    if !rest.is_empty() {
        if let Some((r, f)) = rest.clone().split_once(':') {
            format = f.to_string();
            rest = r.to_string();
        }
        if let Some((r, s)) = rest.clone().split_once('/') {
            stride = num("stride", s)?;
            rest = r.to_string();
        }
        match rest.split_once('-') {
            Some((a, b)) => {
                start = num("start", a)?;
                end = Some(num("end", b)?);
            }
            None => end = Some(num("end", &rest)?),
        }
    }
    let unknown: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| !["start", "end", "stride", "count", "format"].contains(&k.as_str()))
        .map(|(k, _)| format!("'{k}'"))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unrecognized arguments to with_sequence: [{}]",
            unknown.join(", ")
        ));
    }
    for (k, v) in &pairs {
        match k.as_str() {
            "start" => start = num(k, v)?,
            "end" => end = Some(num(k, v)?),
            "stride" => stride = num(k, v)?,
            "count" => count = Some(num(k, v)?),
            _ => format = v.clone(),
        }
    }
    let end = match (end, count) {
        (Some(_), Some(_)) => {
            return Err("can't specify both count and end in with_sequence".into());
        }
        (Some(e), None) => e,
        (None, Some(0)) => return Ok(vec![]),
        (None, Some(c)) => start + (c - 1) * stride,
        (None, None) => return Err("must specify count or end in with_sequence".into()),
    };
    if stride == 0 {
        return Ok(vec![]);
    }
    if format.matches('%').count() != 1 {
        return Err(format!("bad formatting string: {format}"));
    }
    if (stride > 0 && end < start) || (stride < 0 && end > start) {
        return Err(if stride > 0 {
            "to count backwards make stride negative".into()
        } else {
            "to count forward don't make stride negative".into()
        });
    }
    let mut out = vec![];
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(Json::String(printf_int(&format, i)));
        i += stride;
    }
    Ok(out)
}

/// Python's `format % i` for one integer conversion (`%d`, `%02d`, `%x`,
/// `%o`, `%s`).
fn printf_int(format: &str, i: i64) -> String {
    let Some(pos) = format.find('%') else {
        return format.to_string();
    };
    let tail = &format[pos + 1..];
    let spec_end = tail
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(tail.len());
    let (flags, conv) = (&tail[..spec_end], tail[spec_end..].chars().next());
    let width: usize = flags.trim_start_matches(['0', '-']).parse().unwrap_or(0);
    let body = match conv {
        Some('x') => format!("{i:x}"),
        Some('X') => format!("{i:X}"),
        Some('o') => format!("{i:o}"),
        _ => i.to_string(),
    };
    let padded = if flags.starts_with('0') {
        format!("{body:0>width$}")
    } else if flags.starts_with('-') {
        format!("{body:<width$}")
    } else {
        format!("{body:>width$}")
    };
    let after = conv.map(|c| &tail[spec_end + c.len_utf8()..]).unwrap_or("");
    format!("{}{padded}{after}", &format[..pos])
}

/// `key=value` words of a `with_sequence` spec and the rest.
fn split_kv(spec: &str) -> (Vec<(String, String)>, String) {
    let mut pairs = vec![];
    let mut rest = vec![];
    for w in spec.split_whitespace() {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => pairs.push((k.to_string(), v.to_string())),
            _ => rest.push(w),
        }
    }
    (pairs, rest.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(name: &str, terms: Json) -> Result<Vec<Json>, String> {
        list_lookup(name, &terms).unwrap()
    }

    #[test]
    fn sequences_zips_and_products() {
        assert_eq!(
            items("sequence", json!(["start=1 end=3 format=host%02d"])).unwrap(),
            vec![json!("host01"), json!("host02"), json!("host03")]
        );
        assert_eq!(
            items("sequence", json!("count=2 stride=2 start=0")).unwrap(),
            vec![json!("0"), json!("2")]
        );
        assert_eq!(
            items("sequence", json!("4-6/2")).unwrap(),
            vec![json!("4"), json!("6")]
        );
        assert!(items("sequence", json!("start=5 end=1")).is_err());
        assert_eq!(
            items("together", json!([[1, 2], ["a"]])).unwrap(),
            vec![json!([1, "a"]), json!([2, null])]
        );
        assert_eq!(
            items("together", json!([])).unwrap_err(),
            "with_together requires at least one element in each list"
        );
        assert_eq!(
            items("nested", json!([["a", "b"], ["c"]])).unwrap(),
            vec![json!(["a", "c"]), json!(["b", "c"])]
        );
        assert_eq!(
            items("indexed_items", json!(["x", "y"])).unwrap(),
            vec![json!([0, "x"]), json!([1, "y"])]
        );
        assert_eq!(
            items("indexed_items", json!({"a": 1})).unwrap_err(),
            "with_indexed_items expects a list"
        );
        assert_eq!(
            items("items", json!([["a"], "b"])).unwrap(),
            vec![json!("a"), json!("b")]
        );
        assert_eq!(
            items("dict", json!([1])).unwrap_err(),
            "with_dict expects a dict"
        );
        assert_eq!(
            items("list", json!({"k": 1})).unwrap_err(),
            "with_list expects a list"
        );
        assert!(list_lookup("file", &json!([])).is_none());
    }

    #[test]
    fn subelements_pop_the_list_and_skip() {
        let users = json!([
            {"name": "alice", "groups": ["wheel", "docker"]},
            {"name": "bob", "skipped": true, "groups": ["x"]},
        ]);
        let got = items("subelements", json!([users, "groups"])).unwrap();
        assert_eq!(
            got,
            vec![
                json!([{"name": "alice"}, "wheel"]),
                json!([{"name": "alice"}, "docker"])
            ]
        );
        let e = items("subelements", json!([[{"name": "c"}], "groups"])).unwrap_err();
        assert_eq!(
            e,
            "could not find 'groups' key in iterated item '{'name': 'c'}'"
        );
        assert_eq!(
            items(
                "subelements",
                json!([[{"name": "c"}], "groups", {"skip_missing": true}])
            )
            .unwrap(),
            Vec::<Json>::new()
        );
    }
}
