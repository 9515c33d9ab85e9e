//! The checks of the parameters a service and its image build accept. The
//! parameters themselves are hive-model's table (`SERVICE_PARAMETERS`,
//! `IMAGE_PARAMS`), declared with the typed service definition.

use std::path::Path;

use crate::yaml::{Node, NodeKind};

use super::common::*;

pub use hive_model::{IMAGE_PARAMS, ParamType, SERVICE_PARAMETERS, ServiceParam, service_param};

use ParamType::*;

/// The names of every service parameter, in the table's order.
pub(super) fn service_param_names() -> Vec<&'static str> {
    SERVICE_PARAMETERS.iter().map(|p| p.name).collect()
}

/// Checks the value of a service parameter against its type in
/// [`SERVICE_PARAMETERS`] (templates are always accepted).
pub(super) fn check_service_param(
    ctx: &mut Ctx,
    file: &Path,
    path: &str,
    param: &ServiceParam,
    v: &Node,
) {
    if is_template(v) {
        return;
    }
    let key = param.name;
    let is_str_list = |n: &Node| {
        n.as_seq()
            .is_some_and(|s| s.iter().all(|i| i.as_str().is_some()))
    };
    let bad = |ctx: &mut Ctx, expected: &str| {
        ctx.invalid(
            file,
            v,
            path,
            format!("{key} must be {expected}, not {}", describe(v)),
            None,
        );
    };
    match param.kind {
        Any => {}
        Scalar => {
            if !matches!(v.kind, NodeKind::Str(_) | NodeKind::Int(_)) {
                bad(ctx, "a string or an integer");
            }
        }
        Bool => {
            ctx.bool_at(file, v, path);
        }
        NonNegativeInt => {
            if !matches!(v.kind, NodeKind::Int(i) if i >= 0) {
                bad(ctx, "a non-negative integer");
            }
        }
        OneOf(values) => {
            if !v.as_str().is_some_and(|s| values.contains(&s)) {
                ctx.invalid(
                    file,
                    v,
                    path,
                    format!("unknown {key} {}", describe(v)),
                    Some(&values.join(", ")),
                );
            }
        }
        MappingOrStrList => {
            if v.as_map().is_none() && !is_str_list(v) {
                bad(ctx, "a mapping");
            }
        }
        Mapping => {
            if v.as_map().is_none() {
                bad(ctx, "a mapping");
            }
        }
        StrList => {
            if !is_str_list(v) {
                bad(ctx, "a list of strings");
            }
        }
        Command => {
            if v.as_str().is_none() && !is_str_list(v) {
                bad(ctx, "a string or a list of strings");
            }
        }
        BackupScripts => match v.as_seq() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    let ip = format!("{path}[{i}]");
                    match item.as_map() {
                        Some(m) => {
                            const KEYS: &[&str] = &[
                                "name",
                                "directory",
                                "backup_command",
                                "backup_file",
                                "restore_command",
                                "restore_file",
                                "ext",
                                "cleanup_days_before",
                                "batch_scripts",
                            ];
                            check_keys(ctx, file, m, &ip, "backup script", KEYS);
                            if item.get("name").is_none() {
                                ctx.invalid(file, item, &format!("{ip}.name"), "name must be specified in backup script", None);
                            }
                            if item.get("directory").is_some() {
                                for k in &KEYS[2..7] {
                                    if let Some(n) = item.get(k) {
                                        ctx.invalid(
                                            file,
                                            n,
                                            &format!("{ip}.{k}"),
                                            format!("{k} cannot be used with directory in a backup script"),
                                            Some("either directory, or backup_command, backup_file, restore_command, restore_file, ext"),
                                        );
                                    }
                                }
                            }
                        }
                        None => ctx.invalid(file, item, &ip, "must be a mapping", Some("name, directory, backup_command, backup_file, restore_command, restore_file, ext, cleanup_days_before, batch_scripts")),
                    }
                }
            }
            None => bad(ctx, "a list of backup scripts"),
        },
    }
}
