//! Conversions between YAML values, minijinja values and the Python text
//! forms Ansible prints and parses back (`repr`, `ast.literal_eval`).

use minijinja::value::{Value, ValueKind};
use serde_yaml::Value as Yaml;

use super::objects::{
    MutableList, MutableMap, Tuple, check_defined, missing_message, undefined_error,
};

/// Converts a YAML value into a template value.
pub(crate) fn yaml_to_value(v: &Yaml) -> Value {
    match v {
        Yaml::Null => Value::from(()),
        Yaml::Bool(b) => Value::from(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Yaml::String(s) => Value::from(s.as_str()),
        Yaml::Sequence(items) => Value::from(items.iter().map(yaml_to_value).collect::<Vec<_>>()),
        Yaml::Mapping(m) => m
            .iter()
            .map(|(k, v)| (yaml_to_value(k), yaml_to_value(v)))
            .collect::<Value>(),
        Yaml::Tagged(t) => yaml_to_value(&t.value),
    }
}

/// Converts a template value into a YAML value; `Err` carries the message of
/// an undefined value found inside.
pub(crate) fn value_to_yaml(v: &Value) -> Result<Yaml, String> {
    if let Some(msg) = missing_message(v) {
        return Err(msg);
    }
    Ok(match v.kind() {
        ValueKind::Undefined => return Err("undefined value".to_string()),
        ValueKind::None => Yaml::Null,
        ValueKind::Bool => Yaml::Bool(v.is_true()),
        ValueKind::Number => {
            if v.is_integer() {
                if let Some(i) = v.as_i64() {
                    Yaml::Number(i.into())
                } else if let Ok(u) = u64::try_from(v.clone()) {
                    Yaml::Number(u.into())
                } else {
                    Yaml::String(v.to_string())
                }
            } else {
                Yaml::Number(f64::try_from(v.clone()).unwrap_or(f64::NAN).into())
            }
        }
        ValueKind::String => Yaml::String(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Bytes => {
            Yaml::String(String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned())
        }
        ValueKind::Map => {
            let mut out = serde_yaml::Mapping::new();
            for k in v.try_iter().map_err(|e| e.to_string())? {
                let item = v.get_item(&k).map_err(|e| e.to_string())?;
                out.insert(value_to_yaml(&k)?, value_to_yaml(&item)?);
            }
            Yaml::Mapping(out)
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut out = Vec::new();
            for item in v.try_iter().map_err(|e| e.to_string())? {
                out.push(value_to_yaml(&item)?);
            }
            Yaml::Sequence(out)
        }
        _ => Yaml::String(v.to_string()),
    })
}

/// Python's `repr()` of a float.
pub(crate) fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    if f.fract() == 0.0 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Python's `repr()` of a string.
pub(crate) fn py_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `str()` of a value (`top`) or `repr()` (inside containers).
pub(crate) fn py_text(v: &Value, top: bool, out: &mut String) -> Result<(), String> {
    if let Some(msg) = missing_message(v) {
        return Err(msg);
    }
    check_size(v)?;
    match v.kind() {
        ValueKind::Undefined => {
            if top {
                Ok(())
            } else {
                Err("undefined value".into())
            }
        }
        ValueKind::None => {
            out.push_str("None");
            Ok(())
        }
        ValueKind::Bool => {
            out.push_str(if v.is_true() { "True" } else { "False" });
            Ok(())
        }
        ValueKind::Number => {
            if v.is_integer() {
                out.push_str(&v.to_string());
            } else {
                out.push_str(&py_float(f64::try_from(v.clone()).unwrap_or(f64::NAN)));
            }
            Ok(())
        }
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            if top {
                out.push_str(s);
            } else {
                py_str_repr(s, out);
            }
            Ok(())
        }
        ValueKind::Map => {
            out.push('{');
            let mut first = true;
            for k in v.try_iter().map_err(|e| e.to_string())? {
                if !first {
                    out.push_str(", ");
                }
                first = false;
                let item = v.get_item(&k).map_err(|e| e.to_string())?;
                py_text(&k, false, out)?;
                out.push_str(": ");
                py_text(&item, false, out)?;
            }
            out.push('}');
            Ok(())
        }
        ValueKind::Seq if v.downcast_object_ref::<Tuple>().is_some() => {
            let items: Vec<Value> = v.try_iter().map_err(|e| e.to_string())?.collect();
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_text(item, false, out)?;
            }
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
            Ok(())
        }
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            let mut first = true;
            for item in v.try_iter().map_err(|e| e.to_string())? {
                if !first {
                    out.push_str(", ");
                }
                first = false;
                py_text(&item, false, out)?;
            }
            out.push(']');
            Ok(())
        }
        _ => {
            out.push_str(&v.to_string());
            Ok(())
        }
    }
}

/// Items a sequence or mapping may have where hive walks it (`[1] * 10**9`
/// is a lazy sequence of a billion items).
pub(crate) const MAX_ITEMS: usize = 1_000_000;

/// Refuses a sequence or mapping of more than [`MAX_ITEMS`] items.
pub(crate) fn check_size(v: &Value) -> Result<(), String> {
    match v.len() {
        Some(n) if n > MAX_ITEMS && v.kind() != ValueKind::String => Err(format!(
            "a {} of {n} items is more than hive handles ({MAX_ITEMS})",
            v.kind()
        )),
        _ => Ok(()),
    }
}

/// Python's `str()` of a value, as a `String`.
pub(crate) fn py_str(v: &Value) -> Result<String, String> {
    let mut s = String::new();
    py_text(v, true, &mut s)?;
    Ok(s)
}

/// Ansible's typing of a rendered string: a string starting with `[` or `{`,
/// or exactly `True`/`False`, becomes the literal it spells when it parses.
pub(crate) fn ansible_type(s: String) -> Value {
    if s.starts_with('[') || s.starts_with('{') || s == "True" || s == "False" {
        if let Some(v) = parse_literal(&s) {
            return v;
        }
    }
    Value::from(s)
}

/// Parses a Python literal (with JSON's `true`/`false`/`null` understood).
pub(crate) fn parse_literal(s: &str) -> Option<Value> {
    let mut p = Parser {
        s: s.as_bytes(),
        src: s,
        pos: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.pos == p.s.len() { Some(v) } else { None }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn items(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                return Some(out);
            }
            out.push(self.value()?);
            if !self.eat(b',') {
                return if self.eat(close) { Some(out) } else { None };
            }
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        let c = self.peek()?;
        match c {
            b'[' => {
                self.pos += 1;
                Some(Value::from(self.items(b']')?))
            }
            b'(' => {
                self.pos += 1;
                Some(Value::from(self.items(b')')?))
            }
            b'{' => {
                self.pos += 1;
                let mut pairs = Vec::new();
                loop {
                    if self.eat(b'}') {
                        break;
                    }
                    let k = self.value()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    let v = self.value()?;
                    pairs.push((k, v));
                    if !self.eat(b',') {
                        if self.eat(b'}') {
                            break;
                        }
                        return None;
                    }
                }
                Some(pairs.into_iter().collect())
            }
            b'\'' | b'"' => {
                let mut s = self.string()?;
                // adjacent literals concatenate
                loop {
                    let save = self.pos;
                    self.ws();
                    if matches!(self.peek(), Some(b'\'' | b'"')) {
                        s.push_str(&self.string()?);
                    } else {
                        self.pos = save;
                        break;
                    }
                }
                Some(Value::from(s))
            }
            b'-' | b'+' | b'0'..=b'9' | b'.' => self.number(),
            _ => {
                let start = self.pos;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
                {
                    self.pos += 1;
                }
                match &self.src[start..self.pos] {
                    "True" | "true" => Some(Value::from(true)),
                    "False" | "false" => Some(Value::from(false)),
                    "None" | "null" => Some(Value::from(())),
                    _ => None,
                }
            }
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.pos;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
            self.ws();
        }
        let digits_start = self.pos;
        let mut is_float = false;
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' | b'_' => {}
                b'.' | b'e' | b'E' => is_float = true,
                b'-' | b'+' if matches!(self.s[self.pos - 1], b'e' | b'E') => {}
                _ => break,
            }
            self.pos += 1;
        }
        let negative = self.s[start] == b'-';
        let text: String = self.src[digits_start..self.pos]
            .chars()
            .filter(|c| *c != '_')
            .collect();
        if text.is_empty() {
            return None;
        }
        if is_float {
            let f: f64 = text.parse().ok()?;
            Some(Value::from(if negative { -f } else { f }))
        } else {
            if text.len() > 1 && text.starts_with('0') && text.chars().any(|c| c != '0') {
                return None;
            }
            let i: i128 = text.parse().ok()?;
            let i = if negative { -i } else { i };
            Some(match i64::try_from(i) {
                Ok(i) => Value::from(i),
                Err(_) => Value::from(i),
            })
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.pos += 1;
        let mut out = String::new();
        let rest = &self.src[self.pos..];
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            if c as u32 == quote as u32 {
                self.pos += i + 1;
                return Some(out);
            }
            if c == '\n' {
                return None;
            }
            if c == '\\' {
                let (_, d) = chars.next()?;
                match d {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0'..='7' => {
                        let mut val = d.to_digit(8)?;
                        for _ in 0..2 {
                            let save = chars.clone();
                            match chars.next() {
                                Some((_, o)) if o.is_digit(8) => val = val * 8 + o.to_digit(8)?,
                                _ => {
                                    chars = save;
                                    break;
                                }
                            }
                        }
                        out.push(char::from_u32(val)?);
                    }
                    'x' | 'u' | 'U' => {
                        let n = match d {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut val = 0u32;
                        for _ in 0..n {
                            val = val * 16 + chars.next()?.1.to_digit(16)?;
                        }
                        out.push(char::from_u32(val)?);
                    }
                    '\\' | '\'' | '"' => out.push(d),
                    '\n' => {}
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            } else {
                out.push(c);
            }
        }
        None
    }
}

/// Converts a value into one with mutable containers at its top level (used
/// for `{% set x = {...} %}` when the template later calls `x.update(...)`).
pub(crate) fn make_mutable(v: Value) -> Value {
    match v.kind() {
        ValueKind::Map if v.downcast_object_ref::<MutableMap>().is_none() => {
            let mut map = indexmap::IndexMap::new();
            if let Ok(iter) = v.try_iter() {
                for k in iter {
                    let item = v.get_item(&k).unwrap_or_default();
                    map.insert(k, item);
                }
            }
            Value::from_object(MutableMap::new(map))
        }
        ValueKind::Seq if v.downcast_object_ref::<MutableList>().is_none() => {
            let items = v.try_iter().map(|i| i.collect()).unwrap_or_default();
            Value::from_object(MutableList::new(items))
        }
        _ => v,
    }
}

/// Python's `str()` of a defined value (an undefined one is an error).
pub(crate) fn text(v: &Value) -> Result<String, minijinja::Error> {
    check_defined(v)?;
    py_str(v).map_err(undefined_error)
}

/// `"True"`/`"False"` as booleans.
pub(crate) fn truthy_str(s: &str) -> Option<bool> {
    match s {
        "True" => Some(true),
        "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_round_trip() {
        for (src, expected) in [
            ("[1, 'pdns']", "[1, \"pdns\"]"),
            ("{'a': True, \"b\": None}", "{\"a\": True, \"b\": None}"),
            (
                "{\"a\": true, \"b\": null, \"c\": [1.5]}",
                "{\"a\": True, \"b\": None, \"c\": [1.5]}",
            ),
            ("[1, 2] ", "[1, 2]"),
            ("[('a', 1)]", "[[\"a\", 1]]"),
        ] {
            assert_eq!(
                parse_literal(src).map(|v| format!("{v:?}")),
                Some(expected.to_string()),
                "{src}"
            );
        }
        for bad in ["[pdns]", " [1]", "(1, 2", "{'a' 1}"] {
            assert!(
                parse_literal(bad).is_none() || bad.starts_with(' '),
                "{bad}"
            );
        }
    }

    #[test]
    fn python_text() {
        let v = parse_literal("{'a': [1, 2.5, 32768.0, True, None, \"it's\"]}").unwrap_or_default();
        assert_eq!(
            py_str(&v).unwrap_or_default(),
            "{'a': [1, 2.5, 32768.0, True, None, \"it's\"]}"
        );
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(0.5), "0.5");
    }
}
