//! What every section of the loader shares: the problem collector, node
//! descriptions, the output of one load and the key check.

use std::path::Path;

use indexmap::IndexMap;
use serde_yaml::Value;

use crate::error::{Error, Location, did_you_mean};
use crate::inventory::{InventoryData, Origin};
use crate::model::*;
use crate::yaml::{Node, NodeKind};

/// Collects problems for one load.
pub(crate) struct Ctx {
    /// The provider names a stage may use; any name when `None`.
    pub providers: Option<Vec<String>>,
    pub errors: Vec<Error>,
    pub warnings: Vec<String>,
}

impl Ctx {
    pub fn invalid(
        &mut self,
        file: &Path,
        node: &Node,
        key_path: &str,
        message: impl Into<String>,
        expected: Option<&str>,
    ) {
        self.errors.push(Error::Invalid {
            location: Location::new(file, node.mark.line, node.mark.column),
            key_path: key_path.to_string(),
            message: message.into(),
            expected: expected.map(str::to_string),
            suggestion: None,
        });
    }

    /// `node` at `key_path` is not `kind` (such as "a mapping").
    pub fn wrong_type(
        &mut self,
        file: &Path,
        node: &Node,
        key_path: &str,
        kind: &str,
        expected: Option<&str>,
    ) {
        self.invalid(
            file,
            node,
            key_path,
            format!("must be {kind}, not {}", describe(node)),
            expected,
        );
    }

    pub fn unknown_key(
        &mut self,
        file: &Path,
        key: &Node,
        key_path: &str,
        what: &str,
        valid: &[&str],
    ) {
        let name = key.key_string().unwrap_or_default();
        self.errors.push(Error::Invalid {
            location: Location::new(file, key.mark.line, key.mark.column),
            key_path: key_path.to_string(),
            message: format!("unknown parameter {name} in {what}"),
            expected: Some(valid.join(", ")),
            suggestion: did_you_mean(&name, valid).map(str::to_string),
        });
    }

    pub fn bool_at(&mut self, file: &Path, node: &Node, key_path: &str) -> Option<bool> {
        match &node.kind {
            NodeKind::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(
                    file,
                    node,
                    key_path,
                    "a boolean",
                    Some("true or false (yes/no, on/off are also accepted)"),
                );
                None
            }
        }
    }

    pub fn str_at<'n>(&mut self, file: &Path, node: &'n Node, key_path: &str) -> Option<&'n str> {
        match &node.kind {
            NodeKind::Str(s) => Some(s),
            _ => {
                self.wrong_type(file, node, key_path, "a string", None);
                None
            }
        }
    }

    /// The strings of a list of strings; an error and an empty list
    /// otherwise.
    pub fn str_list_at(
        &mut self,
        file: &Path,
        node: &Node,
        key_path: &str,
        message: &str,
    ) -> Vec<String> {
        match node.as_seq() {
            Some(items) if items.iter().all(|i| i.as_str().is_some()) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => {
                self.invalid(file, node, key_path, message, None);
                Vec::new()
            }
        }
    }

    pub fn stages_at(
        &mut self,
        file: &Path,
        node: &Node,
        key_path: &str,
    ) -> Option<Vec<StageName>> {
        let Some(items) = node.as_seq() else {
            self.wrong_type(
                file,
                node,
                key_path,
                "a list of stages",
                Some("a list of private, staging, production"),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match item.as_str().and_then(|s| s.parse::<StageName>().ok()) {
                Some(s) => out.push(s),
                None => {
                    ok = false;
                    let text = item.key_string().unwrap_or_else(|| describe(item));
                    self.errors.push(Error::Invalid {
                        location: Location::new(file, item.mark.line, item.mark.column),
                        key_path: format!("{key_path}[{i}]"),
                        message: format!("unknown stage {text}"),
                        expected: Some(StageName::NAMES.join(", ")),
                        suggestion: did_you_mean(&text, &StageName::NAMES).map(str::to_string),
                    });
                }
            }
        }
        ok.then_some(out)
    }
}

pub(super) fn describe(node: &Node) -> String {
    match &node.kind {
        NodeKind::Str(s) => format!("the string {s:?}"),
        NodeKind::Int(i) => format!("the integer {i}"),
        NodeKind::Float(f) => format!("the number {f}"),
        NodeKind::Bool(b) => format!("the boolean {b}"),
        NodeKind::Null => "an empty value".to_string(),
        NodeKind::Seq(_) => "a list".to_string(),
        NodeKind::Map(_) => "a mapping".to_string(),
    }
}

pub(super) fn is_template(node: &Node) -> bool {
    node.as_str()
        .is_some_and(|s| s.contains("{{") || s.contains("{%"))
}

pub(super) fn origin(file: &Path, node: &Node) -> Origin {
    Origin::Plugin {
        file: file.to_path_buf(),
        line: Some(node.mark.line),
    }
}

pub(super) fn sval(s: &str) -> Value {
    Value::String(s.to_string())
}

/// Everything the plugins produce.
pub(crate) struct Loaded {
    pub inventory: InventoryData,
    pub name: Option<String>,
    pub stages: Vec<Stage>,
    pub servers: Vec<Server>,
    pub services: IndexMap<String, Service>,
    pub volumes: IndexMap<String, Volume>,
    pub networks: IndexMap<String, Network>,
    pub hive_files: usize,
}

impl Loaded {
    pub fn new() -> Self {
        Loaded {
            inventory: InventoryData::default(),
            name: None,
            stages: Vec::new(),
            servers: Vec::new(),
            services: IndexMap::new(),
            volumes: IndexMap::new(),
            networks: IndexMap::new(),
            hive_files: 0,
        }
    }
}

pub(super) fn check_keys(
    ctx: &mut Ctx,
    file: &Path,
    map: &[(Node, Node)],
    path: &str,
    what: &str,
    valid: &[&str],
) {
    for (k, _) in map {
        let name = k.key_string().unwrap_or_default();
        if !valid.contains(&name.as_str()) {
            let kp = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            ctx.unknown_key(file, k, &kp, what, valid);
        }
    }
}
