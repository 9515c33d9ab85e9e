//! `group_vars/` and `host_vars/` files, as Ansible's host_group_vars reads them.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::error::Error;
use crate::inventory::{Origin, Variable};
use crate::yaml::NodeKind;

use super::common::*;

/// Files Ansible's `host_group_vars` plugin reads for an entity, in order.
pub(crate) fn vars_files(dir: &Path, entity: &str) -> Vec<PathBuf> {
    let base = dir.join(entity);
    if base.is_dir() {
        let mut out = Vec::new();
        walk(&base, &mut out);
        out.retain(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            matches!(ext, "" | "yml" | "yaml" | "json")
        });
        return out;
    }
    for ext in ["", ".yml", ".yaml", ".json"] {
        let p = dir.join(format!("{entity}{ext}"));
        if p.is_file() {
            return vec![p];
        }
    }
    Vec::new()
}

pub(crate) fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Reads a vars file into variables.
pub(crate) fn read_vars(
    ctx: &mut Ctx,
    file: &Path,
    make_origin: &dyn Fn(Option<usize>) -> Origin,
) -> IndexMap<String, Variable> {
    let mut out = IndexMap::new();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(source) => {
            ctx.errors.push(Error::Read {
                path: file.to_path_buf(),
                source,
            });
            return out;
        }
    };
    let node = match crate::yaml::parse(file, &text) {
        Ok(n) => n,
        Err(e) => {
            ctx.errors.push(e);
            return out;
        }
    };
    match &node.kind {
        NodeKind::Null => {}
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                match k.key_string() {
                    Some(key) => {
                        out.insert(
                            key,
                            Variable {
                                value: v.to_value(),
                                origin: make_origin(Some(k.mark.line)),
                            },
                        );
                    }
                    None => ctx.invalid(
                        file,
                        k,
                        "(top level)",
                        "variable names must be strings",
                        None,
                    ),
                }
            }
        }
        _ => ctx.invalid(
            file,
            &node,
            "(top level)",
            format!(
                "a vars file must be a mapping of variables, not {}",
                describe(&node)
            ),
            Some("name: value lines"),
        ),
    }
    out
}
