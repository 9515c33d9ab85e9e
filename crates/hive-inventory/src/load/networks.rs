//! The `networks` section of a services file.

use std::path::Path;

use indexmap::IndexMap;

use crate::model::*;
use crate::yaml::{Node, NodeKind};

use super::common::*;

const NETWORK_PARAMS: &[&str] = &["driver", "ipam", "driver_opts"];

pub(super) fn network(
    ctx: &mut Ctx,
    out: &mut Loaded,
    file: &Path,
    name: &str,
    node: &Node,
    available_on: &[StageName],
) {
    let path = format!("networks.{name}");
    let mut params = IndexMap::new();
    match &node.kind {
        NodeKind::Null => {}
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                let key = k.key_string().unwrap_or_default();
                if !NETWORK_PARAMS.contains(&key.as_str()) {
                    ctx.unknown_key(
                        file,
                        k,
                        &format!("{path}.{key}"),
                        &format!("network {name}"),
                        NETWORK_PARAMS,
                    );
                    continue;
                }
                params.insert(key, v.to_value());
            }
        }
        _ => {
            ctx.wrong_type(
                file,
                node,
                &path,
                "a mapping",
                Some("driver, ipam, driver_opts"),
            );
            return;
        }
    }
    let inv = &mut out.inventory;
    inv.add_host(name, "networks");
    for s in available_on {
        inv.add_host(name, s.as_str());
    }
    for (k, v) in &params {
        let o = origin(file, node.get(k).unwrap_or(node));
        inv.set_variable(name, &format!("hive_{k}"), v.clone(), &o);
    }
    let entry = out
        .networks
        .entry(name.to_string())
        .or_insert_with(|| Network {
            name: name.to_string(),
            available_on: Vec::new(),
            params: IndexMap::new(),
        });
    for s in available_on {
        if !entry.available_on.contains(s) {
            entry.available_on.push(*s);
        }
    }
    entry.params.extend(params);
}
