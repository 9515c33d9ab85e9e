//! A YAML 1.1 reader that keeps the position of every node.
//!
//! Ansible reads inventories with PyYAML, which follows YAML 1.1: `yes`, `no`,
//! `on`, `off` (in any of their usual capitalisations) are booleans, `0755` is
//! an octal number and `1:30` a base-60 number. This module resolves plain
//! scalars the same way, so values compare equal to what the original saw, and
//! records the line and column of each node for error messages.

use std::path::Path;

use serde_yaml::{Mapping, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{Error, Location};

/// A position in a YAML file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number, starting at 1.
    pub column: usize,
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub mark: Mark,
    /// The node's content.
    pub kind: NodeKind,
}

/// The content of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `~`, `null` or nothing.
    Null,
    /// A boolean (YAML 1.1 spellings accepted).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A string (quoted scalars are always strings).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The mapping entries, if this node is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence items, if this node is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The string, if this node is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Looks up a string key in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.key_string().as_deref() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key as Ansible would see it when used as a dictionary key.
    pub fn key_string(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Null => Some("None".to_string()),
            _ => None,
        }
    }

    /// A short name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "boolean",
            NodeKind::Int(_) => "integer",
            NodeKind::Float(_) => "number",
            NodeKind::Str(_) => "string",
            NodeKind::Seq(_) => "list",
            NodeKind::Map(_) => "mapping",
        }
    }

    /// Converts the node to a plain value.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::Number(Number::from(*i)),
            NodeKind::Float(f) => Value::Number(Number::from(*f)),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Sequence(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(entries) => {
                let mut m = Mapping::new();
                for (k, v) in entries {
                    let key = match &k.kind {
                        NodeKind::Str(s) => Value::String(s.clone()),
                        _ => k.to_value(),
                    };
                    m.insert(key, v.to_value());
                }
                Value::Mapping(m)
            }
        }
    }
}

/// Parses one YAML document. An empty file gives a null node.
pub fn parse(path: &Path, text: &str) -> Result<Node, Error> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let m = e.marker();
        return Err(Error::Syntax {
            location: Location::new(path, m.line(), m.col() + 1),
            message: e.info().to_string(),
        });
    }
    if let Some((mark, message)) = builder.error {
        return Err(Error::Syntax {
            location: Location::new(path, mark.line, mark.column),
            message,
        });
    }
    Ok(builder.root.unwrap_or(Node {
        mark: Mark { line: 1, column: 1 },
        kind: NodeKind::Null,
    }))
}

enum Frame {
    Seq(Mark, usize, Vec<Node>),
    Map(Mark, usize, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: std::collections::HashMap<usize, Node>,
    error: Option<(Mark, String)>,
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if key.as_str() == Some("<<") {
                        merge_key(entries, node);
                    } else {
                        entries.push((key, node))
                    }
                }
            },
        }
    }
}

/// YAML merge keys (`<<: *defaults`): entries not already present are added.
fn merge_key(entries: &mut Vec<(Node, Node)>, node: Node) {
    let sources = match node.kind {
        NodeKind::Map(m) => vec![m],
        NodeKind::Seq(items) => items
            .into_iter()
            .filter_map(|n| match n.kind {
                NodeKind::Map(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for source in sources {
        for (k, v) in source {
            if !entries.iter().any(|(ek, _)| ek.kind == k.kind) {
                entries.push((k, v));
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, marker: Marker) {
        let mark = Mark {
            line: marker.line(),
            column: marker.col() + 1,
        };
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let kind = resolve(text, style, tag.as_deref());
                self.push(Node { mark, kind }, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(mark, anchor, Vec::new()))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(mark, anchor, Vec::new(), None))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq(m, anchor, items)) => (
                        Node {
                            mark: m,
                            kind: NodeKind::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map(m, anchor, entries, _)) => (
                        Node {
                            mark: m,
                            kind: NodeKind::Map(entries),
                        },
                        anchor,
                    ),
                    None => return,
                };
                self.push(node.0, node.1);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.mark = mark;
                    self.push(node, 0);
                }
                None => {
                    if self.error.is_none() {
                        self.error = Some((mark, "alias to an unknown anchor".to_string()));
                    }
                }
            },
            _ => {}
        }
    }
}

/// Resolves a scalar the way PyYAML's safe loader does (YAML 1.1).
fn resolve(text: String, style: TScalarStyle, tag: Option<&str>) -> NodeKind {
    if let Some(tag) = tag {
        let t = tag
            .trim_start_matches("tag:yaml.org,2002:")
            .trim_start_matches("!!");
        return match t {
            // `!unsafe` text is never templated: what would be template
            // syntax is kept as written, in a raw block
            "!unsafe" | "unsafe" if ["{{", "{%", "{#"].iter().any(|m| text.contains(m)) => {
                NodeKind::Str(format!("{{% raw %}}{text}{{% endraw %}}"))
            }
            "str" | "!unsafe" | "!vault" | "unsafe" => NodeKind::Str(text),
            "int" => parse_int(&text).map_or(NodeKind::Str(text), NodeKind::Int),
            "float" => parse_float(&text).map_or(NodeKind::Str(text), NodeKind::Float),
            "bool" => parse_bool(&text).map_or(NodeKind::Str(text), NodeKind::Bool),
            "null" => NodeKind::Null,
            _ => NodeKind::Str(text),
        };
    }
    if style != TScalarStyle::Plain {
        return NodeKind::Str(text);
    }
    if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
        return NodeKind::Null;
    }
    if let Some(b) = parse_bool(&text) {
        return NodeKind::Bool(b);
    }
    if let Some(i) = parse_int(&text) {
        return NodeKind::Int(i);
    }
    if let Some(f) = parse_float(&text) {
        return NodeKind::Float(f);
    }
    NodeKind::Str(text)
}

/// YAML 1.1 booleans.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn split_sign(s: &str) -> (bool, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        (true, rest)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    }
}

/// YAML 1.1 integers: decimal, `0b`, `0x`, leading-zero octal, base 60.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = split_sign(s);
    if body.is_empty() || !body.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let magnitude = if let Some(b) = clean.strip_prefix("0b") {
        if b.is_empty() || !b.chars().all(|c| c == '0' || c == '1') {
            return None;
        }
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(h) = clean.strip_prefix("0x") {
        if h.is_empty() || !h.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        i64::from_str_radix(h, 16).ok()?
    } else if body.contains(':') {
        // base 60: first part starts with 1-9, others are 0..59
        let mut parts = clean.split(':');
        let first = parts.next()?;
        if first.is_empty() || first.starts_with('0') || !first.chars().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let mut v: i64 = first.parse().ok()?;
        for p in parts {
            if p.is_empty() || p.len() > 2 || !p.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let d: i64 = p.parse().ok()?;
            if d > 59 {
                return None;
            }
            v = v.checked_mul(60)?.checked_add(d)?;
        }
        v
    } else if clean.len() > 1 && clean.starts_with('0') {
        if !clean.chars().all(|c| ('0'..='7').contains(&c)) {
            return None;
        }
        i64::from_str_radix(&clean, 8).ok()?
    } else {
        if clean.is_empty() || !clean.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        clean.parse().ok()?
    };
    Some(if neg { -magnitude } else { magnitude })
}

/// YAML 1.1 floats (`1.5`, `.5`, `1e+3` with a dot, `.inf`, `.nan`).
fn parse_float(s: &str) -> Option<f64> {
    let (neg, body) = split_sign(s);
    let v = match body {
        ".inf" | ".Inf" | ".INF" => f64::INFINITY,
        ".nan" | ".NaN" | ".NAN" if !neg && !s.starts_with('+') => return Some(f64::NAN),
        _ => {
            if !body.contains('.') {
                return None;
            }
            let (mantissa, exp) = match body.find(['e', 'E']) {
                Some(i) => (&body[..i], Some(&body[i + 1..])),
                None => (body, None),
            };
            let ok_m = mantissa
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '_')
                && mantissa.matches('.').count() == 1
                && mantissa.chars().any(|c| c.is_ascii_digit())
                && !mantissa.starts_with('_');
            if !ok_m {
                return None;
            }
            if let Some(e) = exp {
                let (_, digits) = match e.strip_prefix(['+', '-']) {
                    Some(d) => (true, d),
                    None => return None,
                };
                if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
            }
            let clean: String = body.chars().filter(|c| *c != '_').collect();
            clean.parse().ok()?
        }
    };
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(s: &str) -> NodeKind {
        let node = parse(Path::new("t.yml"), &format!("k: {s}\n")).unwrap();
        node.get("k").unwrap().kind.clone()
    }

    #[test]
    fn resolves_yaml_1_1_scalars() {
        let cases: Vec<(&str, NodeKind)> = vec![
            ("yes", NodeKind::Bool(true)),
            ("No", NodeKind::Bool(false)),
            ("on", NodeKind::Bool(true)),
            ("OFF", NodeKind::Bool(false)),
            ("True", NodeKind::Bool(true)),
            ("'yes'", NodeKind::Str("yes".into())),
            ("y", NodeKind::Str("y".into())),
            ("10", NodeKind::Int(10)),
            ("0755", NodeKind::Int(0o755)),
            ("0x1f", NodeKind::Int(31)),
            ("1_000", NodeKind::Int(1000)),
            ("53:53", NodeKind::Int(3233)),
            ("1.5", NodeKind::Float(1.5)),
            ("1e3", NodeKind::Str("1e3".into())),
            ("~", NodeKind::Null),
            ("", NodeKind::Null),
            ("512M", NodeKind::Str("512M".into())),
            ("192.168.0.1", NodeKind::Str("192.168.0.1".into())),
            ("\"{{ x }}\"", NodeKind::Str("{{ x }}".into())),
            ("!unsafe plain", NodeKind::Str("plain".into())),
            (
                "!unsafe '{{ x }}'",
                NodeKind::Str("{% raw %}{{ x }}{% endraw %}".into()),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(scalar(input), expected, "input {input}");
        }
    }

    #[test]
    fn records_positions() {
        let node = parse(Path::new("t.yml"), "a:\n  b: 1\n  c: [x, y]\n").unwrap();
        let b = node.get("a").unwrap().get("b").unwrap();
        assert_eq!(b.mark, Mark { line: 2, column: 6 });
        let c = node.get("a").unwrap().get("c").unwrap();
        assert_eq!(c.mark.line, 3);
    }

    #[test]
    fn syntax_errors_carry_position() {
        let err = parse(Path::new("t.yml"), "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.to_string().contains("t.yml:"), "{err}");
    }

    #[test]
    fn merge_keys_and_aliases() {
        let node = parse(Path::new("t.yml"), "d: &d {x: 1}\ne:\n  <<: *d\n  y: 2\n").unwrap();
        let e = node.get("e").unwrap();
        assert_eq!(e.get("x").unwrap().kind, NodeKind::Int(1));
        assert_eq!(e.get("y").unwrap().kind, NodeKind::Int(2));
    }
}
