//! The parameters a service and its image build accept, and their checks.

use std::path::Path;

use crate::yaml::{Node, NodeKind};

use super::common::*;

/// Parameters of a service's `image` build object, copied into the image
/// host (`image_<service>`) as `hive_<param>`.
pub const IMAGE_PARAMS: &[&str] = &[
    "from",
    "roles",
    "env",
    "stop_signal",
    "user",
    "working_dir",
    "standalone",
    "entrypoint",
    "command",
    "privileged",
    "expose",
    "pull_on",
    "pull_from",
];

/// How a service parameter's value is checked when the inventory is read
/// (a template is always accepted: it is checked after rendering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Not checked here: free-form, or checked by the section that reads it.
    Any,
    /// A string or an integer, such as a signal name or number.
    Scalar,
    /// An integer of 0 or more.
    NonNegativeInt,
    /// One of the given strings.
    OneOf(&'static [&'static str]),
    /// A mapping.
    Mapping,
    /// A mapping, or a list of `NAME=value` strings.
    MappingOrStrList,
    /// A list of strings.
    StrList,
    /// A string, or a list of strings.
    Command,
    /// A list of backup script objects.
    BackupScripts,
}

/// One parameter a service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceParam {
    /// The key in the services file.
    pub name: &'static str,
    /// How its value is checked.
    pub kind: ParamType,
    /// Copied into the inventory as `hive_<name>`, as written. The others
    /// (`volumes`, `image`, `ports`, `available_on`) are read by their own
    /// section, which sets the variables derived from them.
    pub copied: bool,
    /// Whether it reaches hive-swarm's service spec; the others are read by
    /// other tools (backups, log monitoring, initialize-services) or by the
    /// inventory itself.
    pub deployed: bool,
    /// A value that differs from the default, as YAML (used by the test
    /// that every deployed parameter reaches the spec, and as
    /// documentation).
    pub example: &'static str,
}

const fn param(
    name: &'static str,
    kind: ParamType,
    copied: bool,
    deployed: bool,
    example: &'static str,
) -> ServiceParam {
    ServiceParam {
        name,
        kind,
        copied,
        deployed,
        example,
    }
}

use ParamType::*;

/// Every parameter a service accepts, in the original's order (`stop_signal`
/// is hive's own). This table drives the loader's checks, the variables
/// copied into the inventory and the parameters handed to hive-swarm.
pub const SERVICE_PARAMETERS: &[ServiceParam] = &[
    param(
        "backup_scripts",
        BackupScripts,
        true,
        false,
        "[{name: db, backup_command: dump, restore_command: restore, backup_file: /d.sql, restore_file: /d.sql}]",
    ),
    param("command", Command, true, true, "[sleep, '60']"),
    param("dns", Any, true, true, "192.168.1.2"),
    param(
        "endpoint_mode",
        OneOf(&["vip", "dnsrr"]),
        true,
        true,
        "dnsrr",
    ),
    param("entrypoint", Command, true, true, "[/entry.sh]"),
    param("environment", MappingOrStrList, true, true, "{A: '1'}"),
    param(
        "healthcheck",
        Mapping,
        true,
        true,
        "{test: [CMD, 'true'], interval: 30s}",
    ),
    param(
        "hosts",
        Mapping,
        true,
        true,
        "{test.example.com: 192.168.1.3}",
    ),
    param("ignore_error", StrList, true, false, "[favicon]"),
    param("initialize_roles", StrList, true, false, "[init]"),
    param(
        "labels",
        Mapping,
        true,
        true,
        "{published_fqdn: web.example.com}",
    ),
    param(
        "logging",
        Mapping,
        true,
        true,
        "{driver: journald, options: {tag: web}}",
    ),
    param("monitor_error", StrList, true, false, "['Error:']"),
    param(
        "mode",
        OneOf(&["replicated", "global"]),
        true,
        true,
        "global",
    ),
    param("networks", StrList, true, true, "[]"),
    param(
        "placement",
        Mapping,
        true,
        true,
        "{constraints: ['node.hostname!=hive2']}",
    ),
    param("replicas", NonNegativeInt, true, true, "3"),
    param(
        "restart_config",
        Mapping,
        true,
        true,
        "{condition: on-failure, delay: 5s}",
    ),
    param("stop_grace_period", Any, true, true, "30s"),
    param("stop_signal", Scalar, true, true, "SIGINT"),
    param("standalone", Any, true, true, "true"),
    param("user", Any, true, true, "admin"),
    param("working_dir", Any, true, true, "/opt"),
    param("cap_add", StrList, true, true, "[SYS_TIME]"),
    param("cap_drop", StrList, true, true, "[NET_RAW]"),
    param(
        "sysctls",
        Mapping,
        true,
        true,
        "{net.core.somaxconn: '1024'}",
    ),
    param("cpu_limit", Any, true, true, "1.5"),
    param("mem_limit", Any, true, true, "512M"),
    param(
        "volumes",
        Any,
        false,
        true,
        "[{source: /srv, target: /srv, type: bind}]",
    ),
    param("image", Any, false, true, "alpine:3.19"),
    param("ports", Any, false, true, "['8080:80']"),
    param("available_on", Any, false, false, "[private]"),
];

/// The parameter named `name`, if a service accepts it.
pub fn service_param(name: &str) -> Option<&'static ServiceParam> {
    SERVICE_PARAMETERS.iter().find(|p| p.name == name)
}

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
