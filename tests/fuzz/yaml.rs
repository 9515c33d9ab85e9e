//! YAML documents for the fuzz tests: a tree whose scalars are written as
//! they are (plain, quoted or broken), its block-style text, and edits of a
//! tree read from a valid file.

#![allow(dead_code)]

use proptest::prelude::*;

/// A YAML document; scalars and keys are YAML text, written unchanged.
#[derive(Clone, Debug)]
pub enum Y {
    /// A scalar as written (`yes`, `'a b'`, `{{ x }}`, ...).
    Scalar(String),
    /// A block sequence.
    Seq(Vec<Y>),
    /// A block mapping.
    Map(Vec<(String, Y)>),
}

impl Y {
    /// A mapping of plain keys.
    pub fn map<'a>(entries: impl IntoIterator<Item = (&'a str, Y)>) -> Y {
        Y::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// A scalar.
    pub fn s(text: &str) -> Y {
        Y::Scalar(text.to_string())
    }

    /// The document's text, in block style.
    pub fn text(&self) -> String {
        let mut out = String::new();
        match self {
            Y::Scalar(s) => {
                out.push_str(s);
                out.push('\n');
            }
            other => emit(other, 0, &mut out),
        }
        out
    }

    fn count(&self) -> usize {
        1 + match self {
            Y::Scalar(_) => 0,
            Y::Seq(items) => items.iter().map(Y::count).sum(),
            Y::Map(entries) => entries.iter().map(|(_, v)| v.count()).sum(),
        }
    }

    /// The node at pre-order position `*at` (counting down to it).
    fn node(&mut self, at: &mut usize) -> Option<&mut Y> {
        if *at == 0 {
            return Some(self);
        }
        *at -= 1;
        match self {
            Y::Scalar(_) => None,
            Y::Seq(items) => items.iter_mut().find_map(|c| c.node(at)),
            Y::Map(entries) => entries.iter_mut().find_map(|(_, c)| c.node(at)),
        }
    }
}

/// Writes a collection at `indent`; nested collections go one level deeper.
fn emit(y: &Y, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let value = |v: &Y, out: &mut String| match v {
        Y::Scalar(s) => {
            out.push(' ');
            out.push_str(s);
            out.push('\n');
        }
        Y::Seq(items) if items.is_empty() => out.push_str(" []\n"),
        Y::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
        nested => {
            out.push('\n');
            emit(nested, indent + 2, out);
        }
    };
    match y {
        Y::Scalar(s) => {
            out.push_str(&pad);
            out.push_str(s);
            out.push('\n');
        }
        Y::Seq(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                value(item, out);
            }
        }
        Y::Map(entries) => {
            for (k, v) in entries {
                out.push_str(&pad);
                out.push_str(k);
                out.push(':');
                value(v, out);
            }
        }
    }
}

fn is_plain(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || "_./".contains(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || "_./:@-+ ".contains(c))
        && !s.contains(": ")
        && !s.ends_with([' ', ':'])
}

/// The text of a scalar as it would be written by hand.
fn scalar(v: &serde_yaml::Value) -> String {
    use serde_yaml::Value as V;
    match v {
        V::Null => "~".into(),
        V::Bool(b) => b.to_string(),
        V::Number(n) => n.to_string(),
        V::String(s) if is_plain(s) => s.clone(),
        V::String(s) => serde_json::to_string(s).unwrap_or_default(),
        V::Tagged(t) => scalar(&t.value),
        V::Sequence(_) | V::Mapping(_) => String::new(),
    }
}

/// The tree of a parsed document.
pub fn from_value(v: &serde_yaml::Value) -> Y {
    use serde_yaml::Value as V;
    match v {
        V::Sequence(items) => Y::Seq(items.iter().map(from_value).collect()),
        V::Mapping(m) => Y::Map(m.iter().map(|(k, v)| (scalar(k), from_value(v))).collect()),
        V::Tagged(t) => from_value(&t.value),
        other => Y::Scalar(scalar(other)),
    }
}

/// An edit of a tree; positions count nodes in pre-order and wrap around.
#[derive(Clone, Debug)]
pub enum TreeEdit {
    /// Puts a new value in place of a node.
    Replace(usize, Y),
    /// Removes an entry of a collection.
    Remove(usize, usize),
    /// Adds an entry to a collection (the key is left out for sequences).
    Insert(usize, String, Y),
    /// Gives an entry of a mapping another key.
    Rename(usize, usize, String),
}

/// Edits with keys from `key` and values from `value`.
pub fn tree_edit(
    key: impl Strategy<Value = String> + Clone,
    value: impl Strategy<Value = Y> + Clone,
) -> impl Strategy<Value = TreeEdit> {
    prop_oneof![
        3 => (any::<usize>(), value.clone()).prop_map(|(a, v)| TreeEdit::Replace(a, v)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| TreeEdit::Remove(a, b)),
        2 => (any::<usize>(), key.clone(), value).prop_map(|(a, k, v)| TreeEdit::Insert(a, k, v)),
        1 => (any::<usize>(), any::<usize>(), key).prop_map(|(a, b, k)| TreeEdit::Rename(a, b, k)),
    ]
}

/// `tree` with `edits` applied in order.
pub fn apply_tree_edits(mut tree: Y, edits: &[TreeEdit]) -> Y {
    for e in edits {
        let at = match e {
            TreeEdit::Replace(a, _)
            | TreeEdit::Remove(a, _)
            | TreeEdit::Insert(a, _, _)
            | TreeEdit::Rename(a, _, _) => *a,
        };
        let mut at = at % tree.count();
        let Some(node) = tree.node(&mut at) else {
            continue;
        };
        match (e, node) {
            (TreeEdit::Replace(_, v), node) => *node = v.clone(),
            (TreeEdit::Remove(_, i), Y::Seq(items)) if !items.is_empty() => {
                items.remove(i % items.len());
            }
            (TreeEdit::Remove(_, i), Y::Map(entries)) if !entries.is_empty() => {
                entries.remove(i % entries.len());
            }
            (TreeEdit::Insert(_, _, v), Y::Seq(items)) => items.push(v.clone()),
            (TreeEdit::Insert(_, k, v), Y::Map(entries)) => entries.push((k.clone(), v.clone())),
            (TreeEdit::Rename(_, i, k), Y::Map(entries)) if !entries.is_empty() => {
                let n = entries.len();
                entries[i % n].0 = k.clone();
            }
            _ => {}
        }
    }
    tree
}

/// Trees of up to `depth` levels over `leaf` scalars, keys from `key`.
pub fn tree(
    leaf: impl Strategy<Value = String> + 'static,
    key: impl Strategy<Value = String> + Clone + 'static,
    depth: u32,
) -> BoxedStrategy<Y> {
    leaf.prop_map(Y::Scalar)
        .prop_recursive(depth, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Y::Seq),
                proptest::collection::vec((key.clone(), inner), 0..6).prop_map(Y::Map),
            ]
        })
        .boxed()
}
