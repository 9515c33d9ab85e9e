//! Reading the inventory files: dispatch on `plugin:`, validation and
//! derivation of the site, the way the original plugins do it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_yaml::{Mapping, Value};

use crate::error::{Error, Location, did_you_mean};
use crate::inventory::{InventoryData, Origin, Variable};
use crate::model::*;
use crate::yaml::{Node, NodeKind};

pub(crate) const STAGE_KEYS: &[&str] = &[
    "provider",
    "separate_repository",
    "shared_repository",
    "cidr",
    "number_of_hosts",
    "subnets",
    "ip_address_list",
    "custom_hostname",
    "memory_size",
    "cpus",
    "drbd_download_url",
    "instance_type",
    "image_name",
    "region",
    "az_suffix_list",
    "prepared_resource_group",
    "not_support_az",
    "disk_size",
    "disk_encrypted",
    "kms_key_id",
    "kernel_version",
    "mirrored_disk_size",
    "mirrored_disk_encrypted",
    "repository_memory_size",
    "repository_cpus",
    "repository_instance_type",
    "repository_disk_size",
    "repository_disk_encrypted",
    "root_password",
    "kickstart_config",
    "internal_cidr",
    "internal_cidr_v6",
    "filestore_cidr",
    "nameservers",
    "dev",
    "bridge",
];

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

/// Service parameters copied into the inventory as `hive_<param>`.
pub const SERVICE_PARAMS_COPY: &[&str] = &[
    "backup_scripts",
    "command",
    "dns",
    "endpoint_mode",
    "entrypoint",
    "environment",
    "healthcheck",
    "hosts",
    "ignore_error",
    "initialize_roles",
    "labels",
    "logging",
    "monitor_error",
    "mode",
    "networks",
    "placement",
    "replicas",
    "restart_config",
    "stop_grace_period",
    "standalone",
    "user",
    "working_dir",
    "cap_add",
    "cap_drop",
    "sysctls",
    "cpu_limit",
    "mem_limit",
];

/// Every parameter a service accepts.
pub const SERVICE_PARAMS: &[&str] = &[
    "backup_scripts",
    "command",
    "dns",
    "endpoint_mode",
    "entrypoint",
    "environment",
    "healthcheck",
    "hosts",
    "ignore_error",
    "initialize_roles",
    "labels",
    "logging",
    "monitor_error",
    "mode",
    "networks",
    "placement",
    "replicas",
    "restart_config",
    "stop_grace_period",
    "standalone",
    "user",
    "working_dir",
    "cap_add",
    "cap_drop",
    "sysctls",
    "cpu_limit",
    "mem_limit",
    "volumes",
    "image",
    "ports",
    "available_on",
];
const NETWORK_PARAMS: &[&str] = &["driver", "ipam", "driver_opts"];
const VOLUME_PARAMS: &[&str] = &["target", "type", "source", "readonly"];
const VOLUME_KEYS: &[&str] = &[
    "target",
    "type",
    "source",
    "readonly",
    "driver",
    "driver_opts",
    "drbd",
    "nfs",
];
const STANDALONE_CAPS: &[&str] = &[
    "NET_ADMIN",
    "SYS_ADMIN",
    "SYSLOG",
    "SYS_PTRACE",
    "AUDIT_CONTROL",
];

/// Collects problems for one load.
pub(crate) struct Ctx {
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

    fn unknown_key(&mut self, file: &Path, key: &Node, key_path: &str, what: &str, valid: &[&str]) {
        let name = key.key_string().unwrap_or_default();
        self.errors.push(Error::Invalid {
            location: Location::new(file, key.mark.line, key.mark.column),
            key_path: key_path.to_string(),
            message: format!("unknown parameter {name} in {what}"),
            expected: Some(valid.join(", ")),
            suggestion: did_you_mean(&name, valid).map(str::to_string),
        });
    }

    fn bool_at(&mut self, file: &Path, node: &Node, key_path: &str) -> Option<bool> {
        match &node.kind {
            NodeKind::Bool(b) => Some(*b),
            _ => {
                self.invalid(
                    file,
                    node,
                    key_path,
                    format!("must be a boolean, not {}", describe(node)),
                    Some("true or false (yes/no, on/off are also accepted)"),
                );
                None
            }
        }
    }

    fn str_at<'n>(&mut self, file: &Path, node: &'n Node, key_path: &str) -> Option<&'n str> {
        match &node.kind {
            NodeKind::Str(s) => Some(s),
            _ => {
                self.invalid(
                    file,
                    node,
                    key_path,
                    format!("must be a string, not {}", describe(node)),
                    None,
                );
                None
            }
        }
    }

    fn stages_at(&mut self, file: &Path, node: &Node, key_path: &str) -> Option<Vec<StageName>> {
        let Some(items) = node.as_seq() else {
            self.invalid(
                file,
                node,
                key_path,
                format!("must be a list of stages, not {}", describe(node)),
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

fn describe(node: &Node) -> String {
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

fn is_template(node: &Node) -> bool {
    node.as_str()
        .is_some_and(|s| s.contains("{{") || s.contains("{%"))
}

fn origin(file: &Path, node: &Node) -> Origin {
    Origin::Plugin {
        file: file.to_path_buf(),
        line: Some(node.mark.line),
    }
}

fn sval(s: &str) -> Value {
    Value::String(s.to_string())
}

/// Allocations shared by every services file of one load.
pub(crate) struct Allocations {
    pub drbd_device_map: Allocator,
    pub published_port_map: Allocator,
}

/// A persistent name -> number map handing out the lowest free number of a range.
pub(crate) struct Allocator {
    pub map: IndexMap<String, i64>,
    counts: std::collections::HashMap<i64, usize>,
    start: i64,
    floor: i64,
    end: i64,
}

impl Allocator {
    pub fn new(map: IndexMap<String, i64>, range: std::ops::Range<i64>) -> Self {
        let mut counts = std::collections::HashMap::new();
        for v in map.values() {
            *counts.entry(*v).or_insert(0) += 1;
        }
        Allocator {
            map,
            counts,
            start: range.start,
            floor: range.start,
            end: range.end,
        }
    }

    pub fn get(&self, key: &str) -> Option<i64> {
        self.map.get(key).copied()
    }

    /// Another name holding `value`, if any.
    pub fn other_owner(&self, value: i64, key: &str) -> Option<String> {
        let count = self.counts.get(&value).copied().unwrap_or(0);
        let own = usize::from(self.map.get(key) == Some(&value));
        if count > own {
            self.map
                .iter()
                .find(|(k, v)| **v == value && *k != key)
                .map(|(k, _)| k.clone())
        } else {
            None
        }
    }

    pub fn insert(&mut self, key: String, value: i64) {
        if let Some(old) = self.map.insert(key, value) {
            if let Some(c) = self.counts.get_mut(&old) {
                *c -= 1;
                if *c == 0 {
                    self.counts.remove(&old);
                    // A number freed below the range (a port declared
                    // twice, or a seeded entry) must not move the floor
                    // out of the range.
                    self.floor = self.floor.min(old.max(self.start));
                }
            }
        }
        *self.counts.entry(value).or_insert(0) += 1;
    }

    /// The lowest number of the range no name holds.
    pub fn lowest_free(&mut self) -> Option<i64> {
        while self.floor < self.end && self.counts.contains_key(&self.floor) {
            self.floor += 1;
        }
        (self.floor < self.end).then_some(self.floor)
    }
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

fn check_keys(
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

// ---------------------------------------------------------------- hive_inventory

/// Processes a `plugin: hive_inventory` file.
pub(crate) fn hive_inventory(
    ctx: &mut Ctx,
    out: &mut Loaded,
    file: &Path,
    root: &Node,
    first_hive: &dyn Fn(StageName) -> Option<Value>,
) {
    out.hive_files += 1;
    let Some(map) = root.as_map() else { return };
    check_keys(
        ctx,
        file,
        map,
        "",
        "hive_inventory file",
        &["plugin", "name", "stages"],
    );
    let name = match root.get("name") {
        None => {
            ctx.invalid(
                file,
                root,
                "name",
                "name must be specified",
                Some("the site's domain name, e.g. pdns.example.com"),
            );
            return;
        }
        Some(n) => match n.as_str() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => {
                ctx.invalid(
                    file,
                    n,
                    "name",
                    format!("must be a non-empty string, not {}", describe(n)),
                    None,
                );
                return;
            }
        },
    };
    let inv = &mut out.inventory;
    for g in [
        "servers",
        "hives",
        "repository",
        "first_hive",
        "mother",
        "hosts",
    ] {
        inv.add_group(g);
    }
    inv.add_child("servers", "hives");
    inv.add_child("servers", "repository");
    inv.add_child("hosts", "servers");
    inv.add_child("hosts", "mother");
    let name_node = root.get("name").unwrap_or(root);
    inv.set_variable("all", "hive_name", sval(&name), &origin(file, name_node));
    out.name = Some(name.clone());
    let Some(stages) = root.get("stages") else {
        ctx.invalid(
            file,
            root,
            "stages",
            "stages must be specified",
            Some("a mapping of private, staging, production"),
        );
        return;
    };
    let Some(stage_entries) = stages.as_map() else {
        ctx.invalid(
            file,
            stages,
            "stages",
            format!("must be a mapping, not {}", describe(stages)),
            Some("a mapping of private, staging, production"),
        );
        return;
    };
    for (key, node) in stage_entries {
        let key_name = key.key_string().unwrap_or_default();
        let Ok(stage_name) = key_name.parse::<StageName>() else {
            ctx.errors.push(Error::Invalid {
                location: Location::new(file, key.mark.line, key.mark.column),
                key_path: format!("stages.{key_name}"),
                message: format!("unknown stage {key_name}"),
                expected: Some(StageName::NAMES.join(", ")),
                suggestion: did_you_mean(&key_name, &StageName::NAMES).map(str::to_string),
            });
            continue;
        };
        if out.stages.iter().any(|s| s.name == stage_name) {
            ctx.invalid(
                file,
                key,
                &format!("stages.{key_name}"),
                "stage is defined twice",
                None,
            );
            continue;
        }
        if let Some((stage, servers)) = stage(ctx, file, &name, stage_name, key, node, first_hive) {
            derive_stage(&mut out.inventory, file, &name, &stage, &servers, node);
            out.stages.push(stage);
            out.servers.extend(servers);
        }
    }
}

fn parse_net(ctx: &mut Ctx, file: &Path, node: &Node, path: &str) -> Option<ipnet::IpNet> {
    let s = ctx.str_at(file, node, path)?;
    match s.parse::<ipnet::IpNet>() {
        Ok(net) if net.trunc() == net => Some(net),
        Ok(net) => {
            ctx.invalid(
                file,
                node,
                path,
                format!("{s} has host bits set"),
                Some(&format!("the network address, {}", net.trunc())),
            );
            None
        }
        Err(_) => {
            ctx.invalid(
                file,
                node,
                path,
                format!("{s} is not a network in CIDR notation"),
                Some("e.g. 192.168.0.0/24"),
            );
            None
        }
    }
}

/// Usable addresses of a network, skipping the first `skip` as the original does.
fn addresses(net: ipnet::IpNet, skip: usize) -> Box<dyn Iterator<Item = IpAddr>> {
    let hosts: Box<dyn Iterator<Item = IpAddr>> = match net {
        ipnet::IpNet::V4(n) if n.prefix_len() >= 31 => Box::new(n.hosts().map(IpAddr::V4)),
        ipnet::IpNet::V4(n) => Box::new(n.hosts().map(IpAddr::V4)),
        ipnet::IpNet::V6(n) => Box::new(n.hosts().skip(1).map(IpAddr::V6)),
    };
    Box::new(hosts.skip(skip))
}

#[allow(clippy::too_many_arguments)]
fn stage(
    ctx: &mut Ctx,
    file: &Path,
    site: &str,
    name: StageName,
    key: &Node,
    node: &Node,
    first_hive: &dyn Fn(StageName) -> Option<Value>,
) -> Option<(Stage, Vec<Server>)> {
    let before = ctx.errors.len();
    let sp = format!("stages.{name}");
    let Some(map) = node.as_map() else {
        ctx.invalid(
            file,
            node,
            &sp,
            format!("must be a mapping, not {}", describe(node)),
            Some("stage attributes such as provider and cidr"),
        );
        return None;
    };
    check_keys(ctx, file, map, &sp, &format!("stage {name}"), STAGE_KEYS);
    let get = |k: &str| node.get(k);
    let kp = |k: &str| format!("{sp}.{k}");

    let provider = match get("provider") {
        None => {
            ctx.invalid(
                file,
                key,
                &kp("provider"),
                "provider must be specified",
                Some(&Provider::NAMES.join(", ")),
            );
            None
        }
        Some(p) => {
            let text = p.key_string().unwrap_or_default();
            match Provider::from_name(&text) {
                Some(pr) => Some(pr),
                None => {
                    ctx.errors.push(Error::Invalid {
                        location: Location::new(file, p.mark.line, p.mark.column),
                        key_path: kp("provider"),
                        message: format!("unknown provider {text}"),
                        expected: Some(Provider::NAMES.join(", ")),
                        suggestion: did_you_mean(&text, &Provider::NAMES).map(str::to_string),
                    });
                    None
                }
            }
        }
    };
    if let Some(provider) = provider {
        let forbid = |ctx: &mut Ctx, attr: &str, why: &str| {
            if let Some(n) = get(attr) {
                ctx.invalid(
                    file,
                    n,
                    &kp(attr),
                    format!("{attr} cannot be specified when {why}"),
                    None,
                );
            }
        };
        if provider != Provider::Kickstart {
            forbid(ctx, "kickstart_config", "provider is not kickstart");
        }
        if provider.is_local() {
            forbid(ctx, "instance_type", &format!("provider is {provider}"));
            forbid(ctx, "region", &format!("provider is {provider}"));
        } else {
            if provider != Provider::Azure {
                forbid(ctx, "prepared_resource_group", "provider is not azure");
                forbid(ctx, "not_support_az", "provider is not azure");
            }
            if provider.is_iaas() {
                forbid(ctx, "memory_size", "provider is IaaS");
            }
            let why = format!("provider is {provider} (only with vagrant or docker)");
            forbid(ctx, "repository_memory_size", &why);
            forbid(ctx, "dev", &why);
            forbid(ctx, "bridge", &why);
        }
    }

    let custom_hostname = match get("custom_hostname") {
        None => Some("hive".to_string()),
        Some(n) => ctx
            .str_at(file, n, &kp("custom_hostname"))
            .map(str::to_string),
    };
    if let Some(ch) = &custom_hostname {
        let b = ch.as_bytes();
        let pattern_ok = b.len() >= 2
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !pattern_ok || ch.len() + site.len() >= 55 {
            let n = get("custom_hostname").unwrap_or(key);
            ctx.invalid(
                file,
                n,
                &kp("custom_hostname"),
                format!("invalid custom_hostname {ch:?}"),
                Some("lowercase letters, digits and inner hyphens, at least 2 characters, and custom_hostname + name shorter than 55"),
            );
        }
    }

    let separate_repository = match get("separate_repository") {
        None => Some(true),
        Some(n) => ctx.bool_at(file, n, &kp("separate_repository")),
    };
    let mut shared_repository = None;
    if let Some(n) = get("shared_repository") {
        match &n.kind {
            NodeKind::Null | NodeKind::Bool(false) => {}
            NodeKind::Map(m) => {
                check_keys(
                    ctx,
                    file,
                    m,
                    &kp("shared_repository"),
                    "shared_repository",
                    &["context_dir", "ssh_port", "dns_address"],
                );
                let s = |k: &str| n.get(k).and_then(|v| v.as_str()).map(str::to_string);
                if n.get("context_dir").is_none() {
                    ctx.invalid(
                        file,
                        n,
                        &kp("shared_repository.context_dir"),
                        "context_dir must be specified in shared_repository",
                        None,
                    );
                }
                shared_repository = Some(SharedRepository {
                    context_dir: s("context_dir"),
                    ssh_port: n.get("ssh_port").map(Node::to_value),
                    dns_address: s("dns_address"),
                });
                if separate_repository == Some(false) {
                    ctx.invalid(
                        file,
                        n,
                        &kp("shared_repository"),
                        "shared_repository needs a separate repository server",
                        Some("set separate_repository: true in this stage, or remove shared_repository"),
                    );
                }
            }
            _ => ctx.invalid(
                file,
                n,
                &kp("shared_repository"),
                format!("must be a mapping, not {}", describe(n)),
                Some("context_dir, ssh_port, dns_address"),
            ),
        }
    }

    for attr in [
        "disk_encrypted",
        "mirrored_disk_encrypted",
        "repository_disk_encrypted",
        "prepared_resource_group",
        "not_support_az",
    ] {
        if let Some(n) = get(attr) {
            if !is_template(n) {
                if let Some(true) = ctx.bool_at(file, n, &kp(attr)) {
                    if attr.ends_with("encrypted") && get("kms_key_id").is_none() {
                        ctx.invalid(
                            file,
                            n,
                            &kp(attr),
                            format!("{attr} requires kms_key_id"),
                            Some("set kms_key_id in this stage"),
                        );
                    }
                }
            }
        }
    }
    for attr in ["cpus", "repository_cpus"] {
        if let Some(n) = get(attr) {
            if !matches!(n.kind, NodeKind::Int(i) if i > 0) && !is_template(n) {
                ctx.invalid(
                    file,
                    n,
                    &kp(attr),
                    format!("must be a positive integer, not {}", describe(n)),
                    None,
                );
            }
        }
    }
    for attr in [
        "memory_size",
        "disk_size",
        "mirrored_disk_size",
        "repository_memory_size",
        "repository_disk_size",
    ] {
        if let Some(n) = get(attr) {
            let ok = match &n.kind {
                NodeKind::Int(i) => *i > 0,
                NodeKind::Str(s) => is_template(n) || is_size(s),
                _ => false,
            };
            if !ok {
                ctx.invalid(
                    file,
                    n,
                    &kp(attr),
                    format!("must be a size, not {}", describe(n)),
                    Some("a positive integer or a number with unit G, M or K, e.g. 20G"),
                );
            }
        }
    }
    for attr in [
        "region",
        "instance_type",
        "repository_instance_type",
        "kms_key_id",
        "kernel_version",
        "drbd_download_url",
        "root_password",
        "dev",
        "bridge",
        "internal_cidr",
        "internal_cidr_v6",
        "filestore_cidr",
    ] {
        if let Some(n) = get(attr) {
            ctx.str_at(file, n, &kp(attr));
        }
    }
    if let Some(n) = get("kickstart_config") {
        if n.as_map().is_none() {
            ctx.invalid(
                file,
                n,
                &kp("kickstart_config"),
                format!("must be a mapping, not {}", describe(n)),
                Some("iso_src, iso_dest, networks, ..."),
            );
        }
    }
    let az_suffix_list: Vec<String> = match get("az_suffix_list") {
        None => vec!["-a".into(), "-b".into(), "-c".into()],
        Some(n) => match n.as_seq() {
            Some(items) if !items.is_empty() && items.iter().all(|i| i.as_str().is_some()) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => {
                ctx.invalid(
                    file,
                    n,
                    &kp("az_suffix_list"),
                    "must be a non-empty list of strings",
                    Some("e.g. [-a, -b, -c]"),
                );
                Vec::new()
            }
        },
    };

    let cidr = match get("cidr") {
        None => {
            ctx.invalid(
                file,
                key,
                &kp("cidr"),
                "cidr must be specified",
                Some("the stage's network, e.g. 192.168.0.0/24"),
            );
            None
        }
        Some(n) => parse_net(ctx, file, n, &kp("cidr")),
    };

    let ip_address_list: Option<Vec<IpAddr>> = match get("ip_address_list") {
        None => None,
        Some(n) => match n.as_seq() {
            Some(items) if !items.is_empty() => {
                let mut ips = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().and_then(|s| s.parse::<IpAddr>().ok()) {
                        Some(ip) => ips.push(ip),
                        None => ctx.invalid(
                            file,
                            item,
                            &format!("{}[{i}]", kp("ip_address_list")),
                            format!("{} is not an IP address", describe(item)),
                            None,
                        ),
                    }
                }
                Some(ips)
            }
            _ => {
                ctx.invalid(
                    file,
                    n,
                    &kp("ip_address_list"),
                    "must be a non-empty list of IP addresses",
                    None,
                );
                None
            }
        },
    };

    let mut number_of_hosts = match get("number_of_hosts") {
        None => Some(if separate_repository == Some(false) {
            3
        } else {
            4
        }),
        Some(n) => match n.kind {
            NodeKind::Int(i) if (1..=10000).contains(&i) => Some(i as usize),
            _ => {
                ctx.invalid(
                    file,
                    n,
                    &kp("number_of_hosts"),
                    format!("must be a positive integer, not {}", describe(n)),
                    Some("1 to 10000"),
                );
                None
            }
        },
    };
    if let Some(ips) = &ip_address_list {
        number_of_hosts = Some(ips.len());
    }
    if let (Some(n), Some(true)) = (number_of_hosts, separate_repository) {
        if n < 2 {
            let node = get("number_of_hosts")
                .or(get("ip_address_list"))
                .unwrap_or(key);
            ctx.invalid(
                file,
                node,
                &kp("number_of_hosts"),
                format!("{n} host leaves no hive besides the separate repository server"),
                Some("at least 2 hosts, or separate_repository: false"),
            );
        }
    }

    // subnets
    let mut subnets: Vec<(Subnet, Box<dyn Iterator<Item = IpAddr>>)> = Vec::new();
    match get("subnets") {
        None => {
            if let Some(net) = cidr {
                let sub = Subnet {
                    name: format!("{site}-default"),
                    cidr: net,
                    netmask: net.netmask(),
                    available_zone: None,
                };
                let ips: Box<dyn Iterator<Item = IpAddr>> = match &ip_address_list {
                    Some(list) => Box::new(list.clone().into_iter()),
                    None => addresses(net, 3),
                };
                subnets.push((sub, ips));
            }
        }
        Some(n) => match n.as_seq() {
            Some(items) if !items.is_empty() => {
                for (idx, item) in items.iter().enumerate() {
                    let ip = format!("{}[{idx}]", kp("subnets"));
                    let Some(m) = item.as_map() else {
                        ctx.invalid(
                            file,
                            item,
                            &ip,
                            format!("must be a mapping, not {}", describe(item)),
                            Some("cidr, name, available_zone"),
                        );
                        continue;
                    };
                    check_keys(
                        ctx,
                        file,
                        m,
                        &ip,
                        "subnet",
                        &["cidr", "name", "available_zone"],
                    );
                    let Some(c) = item.get("cidr") else {
                        ctx.invalid(
                            file,
                            item,
                            &format!("{ip}.cidr"),
                            "cidr in subnet must be specified",
                            None,
                        );
                        continue;
                    };
                    let Some(net) = parse_net(ctx, file, c, &format!("{ip}.cidr")) else {
                        continue;
                    };
                    let sname = match item.get("name") {
                        Some(nn) => match ctx.str_at(file, nn, &format!("{ip}.name")) {
                            Some(s) => s.to_string(),
                            None => continue,
                        },
                        None => format!("{}subnet{idx}", name.prefix()),
                    };
                    subnets.push((
                        Subnet {
                            name: sname,
                            cidr: net,
                            netmask: net.netmask(),
                            available_zone: item.get("available_zone").map(Node::to_value),
                        },
                        addresses(net, 4),
                    ));
                }
            }
            _ => ctx.invalid(
                file,
                n,
                &kp("subnets"),
                "must be a non-empty list of subnets",
                Some("a list of {cidr, name, available_zone}"),
            ),
        },
    }

    let first_index = match first_hive(name) {
        None => 0,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0) as usize,
        Some(Value::String(s)) if s.parse::<usize>().is_ok() => s.parse::<usize>().unwrap_or(0),
        Some(other) => {
            ctx.errors.push(Error::Invalid {
                location: Location::file(Path::new(".hive/persistents.yml")),
                key_path: format!("first_hive.{name}"),
                message: format!("first_hive must be a non-negative integer, not {other:?}"),
                expected: Some("set it with `hive set first_hive N`".into()),
                suggestion: None,
            });
            0
        }
    };

    if ctx.errors.len() > before {
        return None;
    }
    let (
        Some(provider),
        Some(custom_hostname),
        Some(separate_repository),
        Some(cidr),
        Some(number_of_hosts),
    ) = (
        provider,
        custom_hostname,
        separate_repository,
        cidr,
        number_of_hosts,
    )
    else {
        return None;
    };
    let region = get("region").and_then(|n| n.as_str()).map(str::to_string);
    let mut servers = Vec::new();
    for idx in 0..number_of_hosts {
        let host = format!("{}{}{}.{}", name.prefix(), custom_hostname, idx, site);
        let role = if idx == number_of_hosts - 1 {
            if separate_repository {
                ServerRole::Repository
            } else {
                ServerRole::HiveAndRepository
            }
        } else {
            ServerRole::Hive
        };
        let n_sub = subnets.len();
        let (sub, ips) = &mut subnets[idx % n_sub];
        let Some(ip) = ips.next() else {
            let n = get("ip_address_list")
                .or(get("subnets"))
                .or(get("cidr"))
                .unwrap_or(key);
            ctx.invalid(
                file,
                n,
                &sp,
                format!(
                    "no address left for host {host} in subnet {} ({})",
                    sub.name, sub.cidr
                ),
                Some("a larger cidr or fewer hosts"),
            );
            return None;
        };
        let available_zone = region.as_ref().map(|r| {
            sub.available_zone.clone().unwrap_or_else(|| {
                if provider == Provider::Azure {
                    Value::Number(((idx % 3) + 1).into())
                } else {
                    sval(&format!(
                        "{r}{}",
                        az_suffix_list[idx % az_suffix_list.len()]
                    ))
                }
            })
        });
        servers.push(Server {
            name: host,
            stage: name,
            index: idx,
            role,
            private_ip: ip,
            netmask: sub.netmask,
            subnet: sub.name.clone(),
            available_zone,
        });
    }
    let hives = servers.iter().filter(|s| s.role.is_hive()).count();
    if first_index >= hives {
        ctx.errors.push(Error::Invalid {
            location: Location::file(Path::new(".hive/persistents.yml")),
            key_path: format!("first_hive.{name}"),
            message: format!(
                "first_hive {first_index} is past the last hive of stage {name} ({hives} hives)"
            ),
            expected: Some(format!(
                "0 to {}; change it with `hive -s {name} set first_hive N`",
                hives.saturating_sub(1)
            )),
            suggestion: None,
        });
        return None;
    }
    let attributes = map
        .iter()
        .filter_map(|(k, v)| k.key_string().map(|k| (k, v.to_value())))
        .collect();
    Some((
        Stage {
            name,
            provider,
            separate_repository,
            shared_repository,
            cidr,
            number_of_hosts,
            custom_hostname,
            subnets: subnets.into_iter().map(|(s, _)| s).collect(),
            ip_address_list,
            first_hive: first_index,
            attributes,
            file: file.to_path_buf(),
        },
        servers,
    ))
}

fn is_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['G', 'M', 'K', 'g', 'm', 'k', 'T', 't']);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// Sets the inventory entries of a validated stage, in the original's order.
fn derive_stage(
    inv: &mut InventoryData,
    file: &Path,
    site: &str,
    stage: &Stage,
    servers: &[Server],
    node: &Node,
) {
    let sn = stage.name.as_str();
    let o = |k: &str| origin(file, node.get(k).unwrap_or(node));
    let attr = |k: &str| node.get(k).map(Node::to_value);
    inv.add_group(sn);
    inv.set_variable(
        sn,
        "hive_provider",
        sval(stage.provider.as_str()),
        &o("provider"),
    );
    inv.set_variable(
        sn,
        "hive_custom_hostname",
        sval(&stage.custom_hostname),
        &o("custom_hostname"),
    );
    let mother = format!("{}mother.{site}", stage.name.prefix());
    inv.add_host(&mother, "mother");
    inv.add_host(&mother, sn);
    for (k, var) in [
        ("cidr", "hive_cidr"),
        ("prepared_resource_group", "hive_prepared_resource_group"),
        ("not_support_az", "hive_not_support_az"),
        ("region", "hive_region"),
        ("bridge", "hive_bridge"),
        ("dev", "hive_dev"),
        ("kickstart_config", "hive_kickstart_config"),
        ("filestore_cidr", "hive_filestore_cidr"),
        ("shared_repository", "hive_shared_repository"),
    ] {
        if let Some(v) = attr(k) {
            inv.set_variable(&mother, var, v, &o(k));
        }
    }
    let subnets_value = match node.get("subnets") {
        Some(s) => s.to_value(),
        None => {
            let mut m = Mapping::new();
            m.insert(sval("cidr"), attr("cidr").unwrap_or(Value::Null));
            m.insert(sval("name"), sval(&format!("{site}-default")));
            Value::Sequence(vec![Value::Mapping(m)])
        }
    };
    inv.set_variable(
        &mother,
        "hive_subnets",
        subnets_value,
        &o(if node.get("subnets").is_some() {
            "subnets"
        } else {
            "cidr"
        }),
    );

    let swarm_master = servers
        .iter()
        .filter(|s| s.role.is_hive())
        .nth(stage.first_hive)
        .map(|s| s.name.clone());
    for server in servers {
        let h = server.name.as_str();
        inv.add_host(h, sn);
        for (k, var) in [
            ("root_password", "hive_root_password"),
            ("kernel_version", "hive_kernel_version"),
            ("drbd_download_url", "hive_drbd_download_url"),
            ("internal_cidr", "hive_internal_cidr"),
            ("internal_cidr_v6", "hive_internal_cidr_v6"),
            ("kms_key_id", "hive_kms_key_id"),
            ("shared_repository", "hive_shared_repository"),
        ] {
            if let Some(v) = attr(k) {
                inv.set_variable(h, var, v, &o(k));
            }
        }
        let hive_attrs = [
            ("memory_size", "hive_memory_size"),
            ("cpus", "hive_cpus"),
            ("disk_size", "hive_disk_size"),
            ("disk_encrypted", "hive_disk_encrypted"),
            ("instance_type", "hive_instance_type"),
            ("mirrored_disk_size", "hive_mirrored_disk_size"),
            ("mirrored_disk_encrypted", "hive_mirrored_disk_encrypted"),
        ];
        if server.role.is_hive() {
            inv.add_host(h, "hives");
            for (k, var) in hive_attrs {
                if let Some(v) = attr(k) {
                    inv.set_variable(h, var, v, &o(k));
                }
            }
        }
        if server.role.is_repository() {
            inv.add_host(h, "repository");
            for (k, var) in [
                ("repository_memory_size", "hive_memory_size"),
                ("repository_cpus", "hive_cpus"),
                ("repository_disk_size", "hive_disk_size"),
                ("repository_disk_encrypted", "hive_disk_encrypted"),
                ("repository_instance_type", "hive_instance_type"),
            ] {
                if let Some(v) = attr(k) {
                    inv.set_variable(h, var, v, &o(k));
                }
            }
        }
        if let Some(v) = attr("image_name") {
            inv.set_variable(h, "hive_vm_image_name", v, &o("image_name"));
        }
        let o_net = o(if node.get("subnets").is_some() {
            "subnets"
        } else {
            "cidr"
        });
        inv.set_variable(h, "hive_subnet", sval(&server.subnet), &o_net);
        if let Some(az) = &server.available_zone {
            inv.set_variable(h, "hive_available_zone", az.clone(), &o("region"));
        }
        let o_ip = if node.get("ip_address_list").is_some() {
            o("ip_address_list")
        } else {
            o_net.clone()
        };
        inv.set_variable(
            h,
            "hive_private_ip",
            sval(&server.private_ip.to_string()),
            &o_ip,
        );
        inv.set_variable(h, "hive_netmask", sval(&server.netmask.to_string()), &o_net);
    }
    if let Some(master) = swarm_master {
        for server in servers.iter().filter(|s| s.role.is_hive()) {
            inv.set_variable(
                &server.name,
                "hive_swarm_master",
                sval(&master),
                &origin(file, node),
            );
        }
        inv.add_host(&master, "first_hive");
    }
}

// ---------------------------------------------------------------- hive_services

/// Processes a `plugin: hive_services` file.
pub(crate) fn hive_services(
    ctx: &mut Ctx,
    out: &mut Loaded,
    alloc: &mut Allocations,
    file: &Path,
    root: &Node,
) {
    let Some(map) = root.as_map() else { return };
    check_keys(
        ctx,
        file,
        map,
        "",
        "hive_services file",
        &["plugin", "services", "networks", "available_on"],
    );
    for g in [
        "services",
        "images",
        "volumes",
        "drbd_volumes",
        "nfs_volumes",
        "networks",
    ] {
        out.inventory.add_group(g);
    }
    let available_on = match root.get("available_on") {
        None
        | Some(Node {
            kind: NodeKind::Null,
            ..
        }) => StageName::ALL.to_vec(),
        Some(n) => match ctx.stages_at(file, n, "available_on") {
            Some(s) => s,
            None => return,
        },
    };
    for s in &available_on {
        out.inventory.add_group(s.as_str());
    }
    match root.get("services") {
        None => ctx.invalid(
            file,
            root,
            "services",
            "services must be specified",
            Some("a mapping of service name to definition"),
        ),
        Some(services) => match services.as_map() {
            Some(entries) => {
                for (k, v) in entries {
                    let name = k.key_string().unwrap_or_default();
                    if let Some(prev) = out.services.get(&name) {
                        ctx.invalid(
                            file,
                            k,
                            &format!("services.{name}"),
                            format!(
                                "service {name} is already defined in {}",
                                prev.file.display()
                            ),
                            Some("unique service names across all services files"),
                        );
                        continue;
                    }
                    if let Some(svc) = service(ctx, out, alloc, file, &name, v, &available_on) {
                        out.services.insert(name, svc);
                    }
                }
            }
            None => ctx.invalid(
                file,
                services,
                "services",
                format!("must be a mapping, not {}", describe(services)),
                Some("a mapping of service name to definition"),
            ),
        },
    }
    let mut no_default = true;
    if let Some(networks) = root.get("networks") {
        match &networks.kind {
            NodeKind::Null => {}
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    let name = k.key_string().unwrap_or_default();
                    if name == "hive_default_network" {
                        no_default = false;
                    }
                    network(ctx, out, file, &name, v, &available_on);
                }
            }
            _ => ctx.invalid(
                file,
                networks,
                "networks",
                format!("must be a mapping, not {}", describe(networks)),
                Some("a mapping of network name to driver, ipam, driver_opts"),
            ),
        }
    }
    if no_default {
        let null = Node {
            mark: root.mark,
            kind: NodeKind::Null,
        };
        network(ctx, out, file, "hive_default_network", &null, &available_on);
    }
}

fn network(
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
            ctx.invalid(
                file,
                node,
                &path,
                format!("must be a mapping, not {}", describe(node)),
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

fn service(
    ctx: &mut Ctx,
    out: &mut Loaded,
    alloc: &mut Allocations,
    file: &Path,
    name: &str,
    node: &Node,
    file_available_on: &[StageName],
) -> Option<Service> {
    let before = ctx.errors.len();
    let sp = format!("services.{name}");
    let kp = |k: &str| format!("{sp}.{k}");
    let Some(entries) = node.as_map() else {
        ctx.invalid(
            file,
            node,
            &sp,
            format!("service {name} must be a mapping, not {}", describe(node)),
            Some("service parameters such as image, ports, volumes"),
        );
        return None;
    };
    let mut params: IndexMap<String, Value> = IndexMap::new();
    for (k, v) in entries {
        let key = k.key_string().unwrap_or_default();
        if !SERVICE_PARAMS.contains(&key.as_str()) {
            ctx.unknown_key(
                file,
                k,
                &kp(&key),
                &format!("service {name}"),
                SERVICE_PARAMS,
            );
            continue;
        }
        check_service_param(ctx, file, &kp(&key), &key, v);
        if SERVICE_PARAMS_COPY.contains(&key.as_str()) {
            params.insert(key, v.to_value());
        }
    }
    let available_on = match node.get("available_on") {
        None => file_available_on.to_vec(),
        Some(n) => ctx
            .stages_at(file, n, &kp("available_on"))
            .unwrap_or_default(),
    };
    let standalone = match node.get("standalone") {
        None => false,
        Some(n) => ctx.bool_at(file, n, &kp("standalone")).unwrap_or(false),
    };

    // volumes
    let mut mounts: Vec<Mount> = Vec::new();
    let mut mount_values: Vec<Value> = Vec::new();
    let mut new_volumes: Vec<(Volume, &'static str)> = Vec::new();
    let mut cap_add: Option<Value> = None;
    let mut command: Option<Value> = None;
    if node.get("volumes").is_some() || standalone {
        if standalone {
            for target in ["/run", "/tmp", "/sys/fs/cgroup"] {
                mounts.push(Mount {
                    source: String::new(),
                    target: target.into(),
                    kind: Some("tmpfs".into()),
                    readonly: false,
                });
                let mut m = Mapping::new();
                m.insert(sval("source"), sval(""));
                m.insert(sval("target"), sval(target));
                m.insert(sval("type"), sval("tmpfs"));
                mount_values.push(Value::Mapping(m));
            }
            let mut caps: Vec<Value> = match node.get("cap_add").map(Node::to_value) {
                Some(Value::Sequence(s)) => s,
                _ => Vec::new(),
            };
            for cap in STANDALONE_CAPS {
                if !caps.iter().any(|c| c.as_str() == Some(cap)) {
                    caps.push(sval(cap));
                }
            }
            cap_add = Some(Value::Sequence(caps));
            let given = node.get("command").map(Node::to_value);
            if given.is_none() || given == Some(sval("")) {
                command = Some(Value::Sequence(vec![
                    sval("sh"),
                    sval("-c"),
                    sval("mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec /sbin/init"),
                ]));
            }
        }
        let empty = Node {
            mark: node.mark,
            kind: NodeKind::Seq(Vec::new()),
        };
        let vnode = node.get("volumes").unwrap_or(&empty);
        match vnode.as_seq() {
            None if vnode.kind == NodeKind::Null => {}
            None => ctx.invalid(
                file,
                vnode,
                &kp("volumes"),
                format!("must be a list, not {}", describe(vnode)),
                Some("a list of {source, target, type, ...}"),
            ),
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    let ip = format!("{}[{i}]", kp("volumes"));
                    if let Some((mount, value, vols)) =
                        volume(ctx, alloc, file, name, &ip, item, &available_on)
                    {
                        mounts.push(mount);
                        mount_values.push(value);
                        new_volumes.extend(vols);
                    }
                }
            }
        }
    }

    // image
    let mut image = None;
    let mut image_vars: Vec<(String, Value, Origin)> = Vec::new();
    if let Some(inode) = node.get("image") {
        match &inode.kind {
            NodeKind::Str(s) => image = Some(ServiceImage::Tag(s.clone())),
            NodeKind::Map(ientries) => {
                let host = format!("image_{name}");
                let ip = kp("image");
                let mut iparams = IndexMap::new();
                if standalone {
                    image_vars.push((
                        "hive_standalone".into(),
                        Value::Bool(true),
                        origin(file, inode),
                    ));
                    image_vars.push((
                        "hive_privileged".into(),
                        Value::Bool(true),
                        origin(file, inode),
                    ));
                }
                for (k, v) in ientries {
                    let key = k.key_string().unwrap_or_default();
                    if !IMAGE_PARAMS.contains(&key.as_str()) {
                        ctx.unknown_key(
                            file,
                            k,
                            &format!("{ip}.{key}"),
                            &format!("\"image\" of service {name}"),
                            IMAGE_PARAMS,
                        );
                        continue;
                    }
                    iparams.insert(key.clone(), v.to_value());
                    image_vars.push((format!("hive_{key}"), v.to_value(), origin(file, v)));
                }
                let from = match inode.get("from") {
                    None => {
                        ctx.invalid(
                            file,
                            inode,
                            &format!("{ip}.from"),
                            format!("\"from\" must be specified in \"image\" of service {name}"),
                            Some("the base image, e.g. almalinux:9"),
                        );
                        None
                    }
                    Some(f) => ctx
                        .str_at(file, f, &format!("{ip}.from"))
                        .map(str::to_string),
                };
                let roles = match inode.get("roles") {
                    None => Vec::new(),
                    Some(r) => match r.as_seq() {
                        Some(items) if items.iter().all(|i| i.as_str().is_some()) => items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect(),
                        _ => {
                            ctx.invalid(
                                file,
                                r,
                                &format!("{ip}.roles"),
                                "must be a list of role names",
                                None,
                            );
                            Vec::new()
                        }
                    },
                };
                let pull_on = match inode.get("pull_on") {
                    None => Vec::new(),
                    Some(p) => ctx
                        .stages_at(file, p, &format!("{ip}.pull_on"))
                        .unwrap_or_default(),
                };
                let pull_from = inode.get("pull_from").and_then(|p| {
                    ctx.str_at(file, p, &format!("{ip}.pull_from"))
                        .map(str::to_string)
                });
                if let Some(pf) = inode.get("pull_from") {
                    if inode.get("pull_on").is_none() {
                        ctx.invalid(
                            file,
                            pf,
                            &format!("{ip}.pull_from"),
                            format!("pull_from needs pull_on in \"image\" of service {name}"),
                            Some("add pull_on: the stages that pull the image from pull_from"),
                        );
                    }
                }
                if let Some(b) = inode.get("privileged") {
                    ctx.bool_at(file, b, &format!("{ip}.privileged"));
                }
                if let Some(b) = inode.get("standalone") {
                    ctx.bool_at(file, b, &format!("{ip}.standalone"));
                }
                image = Some(ServiceImage::Build(ImageBuild {
                    host,
                    from: from.unwrap_or_default(),
                    roles,
                    pull_on,
                    pull_from,
                    params: iparams,
                }));
            }
            _ => ctx.invalid(
                file,
                inode,
                &kp("image"),
                format!("must be a string or a mapping, not {}", describe(inode)),
                Some("an image tag, or a build object with from and roles"),
            ),
        }
    }

    // ports
    let mut ports = Vec::new();
    let mut port_values = Vec::new();
    if let Some(pnode) = node.get("ports") {
        match pnode.as_seq() {
            None => ctx.invalid(file, pnode, &kp("ports"), format!("must be a list, not {}", describe(pnode)), Some("a list of \"published:target/protocol\" strings or {target_port, published_port, protocol} objects")),
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some((port, value)) = port(ctx, alloc, file, name, &format!("{}[{i}]", kp("ports")), item) {
                        ports.push(port);
                        port_values.push(value);
                    }
                }
            }
        }
    }

    if ctx.errors.len() > before {
        return None;
    }

    // inventory entries, in the original's order
    let inv = &mut out.inventory;
    inv.add_host(name, "services");
    for (k, v) in entries {
        let key = k.key_string().unwrap_or_default();
        if SERVICE_PARAMS_COPY.contains(&key.as_str()) {
            inv.set_variable(name, &format!("hive_{key}"), v.to_value(), &origin(file, v));
        }
    }
    for s in &available_on {
        inv.add_host(name, s.as_str());
    }
    if let Some(caps) = &cap_add {
        inv.set_variable(
            name,
            "hive_cap_add",
            caps.clone(),
            &origin(file, node.get("standalone").unwrap_or(node)),
        );
        params.insert("cap_add".into(), caps.clone());
    }
    if let Some(cmd) = &command {
        inv.set_variable(
            name,
            "hive_command",
            cmd.clone(),
            &origin(file, node.get("standalone").unwrap_or(node)),
        );
        params.insert("command".into(), cmd.clone());
    }
    for (vol, group) in new_volumes {
        let vname = format!("volume_{}", vol.name);
        inv.add_host(&vname, group);
        for s in &vol.available_on {
            inv.add_host(&vname, s.as_str());
        }
        let mut m = Mapping::new();
        m.insert(sval("name"), sval(&vol.name));
        match &vol.kind {
            VolumeKind::Drbd { params, .. } => {
                m.insert(sval("drbd"), params.clone());
            }
            VolumeKind::Nfs { params } => {
                m.insert(sval("nfs"), params.clone());
            }
            VolumeKind::Driver {
                driver,
                driver_opts,
            } => {
                m.insert(sval("driver"), driver.clone());
                if let Some(o) = driver_opts {
                    m.insert(sval("driver_options"), o.clone());
                }
            }
        }
        inv.set_variable(
            &vname,
            "hive_volume",
            Value::Mapping(m),
            &origin(file, node.get("volumes").unwrap_or(node)),
        );
        out.volumes.insert(vol.name.clone(), vol);
    }
    if node.get("volumes").is_some() || standalone {
        inv.set_variable(
            name,
            "hive_volumes",
            Value::Sequence(mount_values),
            &origin(file, node.get("volumes").unwrap_or(node)),
        );
    }
    match &image {
        Some(ServiceImage::Tag(t)) => {
            inv.set_variable(
                name,
                "hive_image",
                sval(t),
                &origin(file, node.get("image").unwrap_or(node)),
            );
        }
        Some(ServiceImage::Build(b)) => {
            inv.add_host(&b.host, "images");
            for s in &available_on {
                inv.add_host(&b.host, s.as_str());
            }
            inv.set_variable(
                name,
                "hive_image_name",
                sval(&b.host),
                &origin(file, node.get("image").unwrap_or(node)),
            );
            for (k, v, o) in image_vars {
                inv.set_variable(&b.host, &k, v, &o);
            }
        }
        None => {}
    }
    if node.get("ports").is_some() {
        inv.set_variable(
            name,
            "hive_ports",
            Value::Sequence(port_values),
            &origin(file, node.get("ports").unwrap_or(node)),
        );
    }
    Some(Service {
        name: name.to_string(),
        available_on,
        image,
        mounts,
        ports,
        standalone,
        params,
        file: file.to_path_buf(),
    })
}

/// Type checks of copied service parameters (templates are always accepted).
#[allow(clippy::collapsible_match)]
fn check_service_param(ctx: &mut Ctx, file: &Path, path: &str, key: &str, v: &Node) {
    if is_template(v) {
        return;
    }
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
    match key {
        "replicas" => {
            if !matches!(v.kind, NodeKind::Int(i) if i >= 0) {
                bad(ctx, "a non-negative integer");
            }
        }
        "mode" => {
            if !matches!(v.as_str(), Some("replicated" | "global")) {
                ctx.invalid(
                    file,
                    v,
                    path,
                    format!("unknown mode {}", describe(v)),
                    Some("replicated, global"),
                );
            }
        }
        "endpoint_mode" => {
            if !matches!(v.as_str(), Some("vip" | "dnsrr")) {
                ctx.invalid(
                    file,
                    v,
                    path,
                    format!("unknown endpoint_mode {}", describe(v)),
                    Some("vip, dnsrr"),
                );
            }
        }
        "environment" | "labels" | "sysctls" | "hosts" => {
            if v.as_map().is_none() && !(key == "environment" && is_str_list(v)) {
                bad(ctx, "a mapping");
            }
        }
        "logging" | "placement" | "restart_config" | "healthcheck" => {
            if v.as_map().is_none() {
                bad(ctx, "a mapping");
            }
        }
        "cap_add" | "cap_drop" | "initialize_roles" | "monitor_error" | "ignore_error"
        | "networks" => {
            if !is_str_list(v) {
                bad(ctx, "a list of strings");
            }
        }
        "command" | "entrypoint" => {
            if v.as_str().is_none() && !is_str_list(v) {
                bad(ctx, "a string or a list of strings");
            }
        }
        "backup_scripts" => match v.as_seq() {
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
        _ => {}
    }
}

type VolumeResult = (Mount, Value, Vec<(Volume, &'static str)>);

fn volume(
    ctx: &mut Ctx,
    alloc: &mut Allocations,
    file: &Path,
    service: &str,
    path: &str,
    item: &Node,
    available_on: &[StageName],
) -> Option<VolumeResult> {
    let before = ctx.errors.len();
    let entries = match &item.kind {
        NodeKind::Str(s) => {
            ctx.invalid(
                file,
                item,
                path,
                format!("short syntax {s} is not supported in volumes of service {service}"),
                Some("the long syntax: {source: ..., target: ..., type: volume}"),
            );
            return None;
        }
        NodeKind::Map(m) => m,
        _ => {
            ctx.invalid(
                file,
                item,
                path,
                format!("must be a mapping, not {}", describe(item)),
                Some("{source, target, type, readonly, driver, driver_opts, drbd, nfs}"),
            );
            return None;
        }
    };
    check_keys(
        ctx,
        file,
        entries,
        path,
        &format!("volume of service {service}"),
        VOLUME_KEYS,
    );
    let source = item.get("source");
    let target = item.get("target");
    if source.is_none() || target.is_none() {
        ctx.invalid(
            file,
            item,
            path,
            format!(
                "both \"source\" and \"target\" must be specified in volume of service {service}"
            ),
            None,
        );
        return None;
    }
    let source_s = source.and_then(|s| s.key_string()).unwrap_or_default();
    let target_s = target
        .and_then(|t| {
            ctx.str_at(file, t, &format!("{path}.target"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    let kind = item.get("type").and_then(|t| {
        let s = t.as_str();
        if !matches!(s, Some("volume" | "bind" | "tmpfs")) {
            ctx.invalid(
                file,
                t,
                &format!("{path}.type"),
                format!("unknown volume type {}", describe(t)),
                Some("volume, bind, tmpfs"),
            );
        }
        s.map(str::to_string)
    });
    let readonly = match item.get("readonly") {
        None => false,
        Some(r) => ctx
            .bool_at(file, r, &format!("{path}.readonly"))
            .unwrap_or(false),
    };
    let (nfs, driver, drbd) = (item.get("nfs"), item.get("driver"), item.get("drbd"));
    if nfs.is_some() && driver.is_some() {
        ctx.invalid(
            file,
            item,
            path,
            format!(
                "both \"driver\" and \"nfs\" cannot be specified in volume of service {service}"
            ),
            None,
        );
    }
    if nfs.is_some() && drbd.is_some() {
        ctx.invalid(
            file,
            item,
            path,
            format!("both \"nfs\" and \"drbd\" cannot be specified in volume of service {service}"),
            None,
        );
    }
    if drbd.is_some() && driver.is_some() {
        ctx.invalid(
            file,
            item,
            path,
            format!(
                "both \"driver\" and \"drbd\" cannot be specified in volume of service {service}"
            ),
            None,
        );
    }
    let mut vols = Vec::new();
    let sub_available = |ctx: &mut Ctx, n: &Node, p: &str| -> Vec<StageName> {
        match n.get("available_on") {
            None => available_on.to_vec(),
            Some(a) => ctx
                .stages_at(file, a, &format!("{p}.available_on"))
                .unwrap_or_default(),
        }
    };
    if let Some(n) = nfs {
        let p = format!("{path}.nfs");
        if n.as_map().is_none() && n.kind != NodeKind::Null {
            ctx.invalid(
                file,
                n,
                &p,
                format!("must be a mapping, not {}", describe(n)),
                None,
            );
        }
        let av = sub_available(ctx, n, &p);
        vols.push((
            Volume {
                name: source_s.clone(),
                kind: VolumeKind::Nfs {
                    params: n.to_value(),
                },
                available_on: av,
                service: service.into(),
            },
            "nfs_volumes",
        ));
    }
    if let Some(d) = driver {
        vols.push((
            Volume {
                name: source_s.clone(),
                kind: VolumeKind::Driver {
                    driver: d.to_value(),
                    driver_opts: item.get("driver_opts").map(Node::to_value),
                },
                available_on: available_on.to_vec(),
                service: service.into(),
            },
            "volumes",
        ));
    }
    if let Some(d) = drbd {
        let p = format!("{path}.drbd");
        match d.as_map() {
            None => ctx.invalid(
                file,
                d,
                &p,
                format!("must be a mapping, not {}", describe(d)),
                Some("fstype, size, diskless, device_id, available_on"),
            ),
            Some(m) => {
                check_keys(
                    ctx,
                    file,
                    m,
                    &p,
                    "drbd",
                    &["fstype", "size", "diskless", "device_id", "available_on"],
                );
                let fstype = d.get("fstype").and_then(|f| {
                    let s = f.as_str();
                    if !matches!(s, Some("xfs" | "ext4")) && !is_template(f) {
                        ctx.invalid(
                            file,
                            f,
                            &format!("{p}.fstype"),
                            format!("unknown fstype {}", describe(f)),
                            Some("xfs, ext4"),
                        );
                    }
                    s.map(str::to_string)
                });
                let diskless: Vec<String> = match d.get("diskless") {
                    None => Vec::new(),
                    Some(dl) => match dl.as_seq() {
                        Some(items) if items.iter().all(|i| i.as_str().is_some()) => items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect(),
                        _ => {
                            ctx.invalid(
                                file,
                                dl,
                                &format!("{p}.diskless"),
                                "must be a list of server names",
                                None,
                            );
                            Vec::new()
                        }
                    },
                };
                let device_id = match d.get("device_id") {
                    Some(idn) => match idn.kind {
                        NodeKind::Int(id) if (1..=255).contains(&id) => {
                            let taken_by = alloc.drbd_device_map.other_owner(id, &source_s);
                            if let Some(other) = taken_by {
                                ctx.invalid(file, idn, &format!("{p}.device_id"), format!("duplicate device_id {id} of volume {source_s} in service {service}: volume {other} already uses it"), Some("a device_id no other volume uses"));
                                None
                            } else {
                                Some(id)
                            }
                        }
                        _ => {
                            ctx.invalid(
                                file,
                                idn,
                                &format!("{p}.device_id"),
                                format!(
                                    "device_id must be an integer from 1 to 255, not {}",
                                    describe(idn)
                                ),
                                Some("1 to 255"),
                            );
                            None
                        }
                    },
                    None => match alloc.drbd_device_map.get(&source_s) {
                        Some(id) => Some(id),
                        None => {
                            let free = alloc.drbd_device_map.lowest_free();
                            if free.is_none() {
                                ctx.invalid(file, d, &p, "too many drbd volumes: no device_id left from 1 to 255", Some("remove unused entries from drbd_device_map in .hive/persistents.yml"));
                            }
                            free
                        }
                    },
                };
                if let Some(id) = device_id {
                    if ctx.errors.len() == before {
                        alloc.drbd_device_map.insert(source_s.clone(), id);
                    }
                    let mut params = match d.to_value() {
                        Value::Mapping(m) => m,
                        _ => Mapping::new(),
                    };
                    params.insert(sval("device_id"), Value::Number(id.into()));
                    let av = sub_available(ctx, d, &p);
                    vols.push((
                        Volume {
                            name: source_s.clone(),
                            kind: VolumeKind::Drbd {
                                device_id: id as u8,
                                fstype,
                                size: d.get("size").map(Node::to_value),
                                diskless,
                                params: Value::Mapping(params),
                            },
                            available_on: av,
                            service: service.into(),
                        },
                        "drbd_volumes",
                    ));
                }
            }
        }
    }
    if ctx.errors.len() > before {
        return None;
    }
    let mut value = Mapping::new();
    for (k, v) in entries {
        let key = k.key_string().unwrap_or_default();
        if VOLUME_PARAMS.contains(&key.as_str()) {
            value.insert(sval(&key), v.to_value());
        }
    }
    Some((
        Mount {
            source: source_s,
            target: target_s,
            kind,
            readonly,
        },
        Value::Mapping(value),
        vols,
    ))
}

fn port(
    ctx: &mut Ctx,
    alloc: &mut Allocations,
    file: &Path,
    service: &str,
    path: &str,
    item: &Node,
) -> Option<(Port, Value)> {
    let port_num = |ctx: &mut Ctx, n: &Node, p: &str| -> Option<u16> {
        if is_template(n) {
            ctx.invalid(
                file,
                n,
                p,
                "port numbers cannot be templates: they are allocated when the inventory is read",
                None,
            );
            return None;
        }
        match n.kind {
            NodeKind::Int(i) if (1..=65535).contains(&i) => Some(i as u16),
            _ => {
                ctx.invalid(
                    file,
                    n,
                    p,
                    format!(
                        "port must be an integer from 1 to 65535, not {}",
                        describe(n)
                    ),
                    None,
                );
                None
            }
        }
    };
    let parse_num = |ctx: &mut Ctx, s: &str| -> Option<u16> {
        match s.trim().parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                ctx.invalid(
                    file,
                    item,
                    path,
                    format!(
                        "{s:?} is not a port number in {:?}",
                        item.as_str().unwrap_or_default()
                    ),
                    Some("\"published:target/protocol\", e.g. \"8080:80/tcp\""),
                );
                None
            }
        }
    };
    let mut value = Mapping::new();
    let (target, published, protocol, mode) = match &item.kind {
        NodeKind::Str(s) => {
            let (addr, proto) = match s.split_once('/') {
                Some((a, p)) => (a, p.to_string()),
                None => (s.as_str(), "tcp".to_string()),
            };
            let (published, target) = match addr.split_once(':') {
                Some((p, t)) => (Some(parse_num(ctx, p)?), parse_num(ctx, t)?),
                None => (None, parse_num(ctx, addr)?),
            };
            if let Some(p) = published {
                value.insert(sval("published_port"), Value::Number(p.into()));
            }
            value.insert(sval("target_port"), Value::Number(target.into()));
            value.insert(sval("protocol"), sval(&proto));
            (target, published, proto, None)
        }
        NodeKind::Map(m) => {
            check_keys(
                ctx,
                file,
                m,
                path,
                &format!("port of service {service}"),
                &["target_port", "published_port", "protocol", "mode"],
            );
            let Some(t) = item.get("target_port") else {
                ctx.invalid(
                    file,
                    item,
                    &format!("{path}.target_port"),
                    format!("target_port must be specified in port of service {service}"),
                    None,
                );
                return None;
            };
            let target = port_num(ctx, t, &format!("{path}.target_port"))?;
            let published = match item.get("published_port") {
                Some(p) => Some(port_num(ctx, p, &format!("{path}.published_port"))?),
                None => None,
            };
            // The original reads `portdef['protocol']` of a long-syntax
            // port without a default: it is required there.
            let Some(p) = item.get("protocol") else {
                ctx.invalid(
                    file,
                    item,
                    &format!("{path}.protocol"),
                    format!("protocol must be specified in port of service {service}"),
                    Some("tcp, udp, sctp"),
                );
                return None;
            };
            let proto = ctx
                .str_at(file, p, &format!("{path}.protocol"))?
                .to_string();
            let mode = match item.get("mode") {
                Some(mn) => {
                    let s = ctx.str_at(file, mn, &format!("{path}.mode"))?.to_string();
                    if s != "ingress" && s != "host" {
                        ctx.invalid(
                            file,
                            mn,
                            &format!("{path}.mode"),
                            format!("unknown port mode {s}"),
                            Some("ingress, host"),
                        );
                        return None;
                    }
                    Some(s)
                }
                None => None,
            };
            if let Value::Mapping(mm) = item.to_value() {
                value = mm;
            }
            (target, published, proto, mode)
        }
        _ => {
            ctx.invalid(file, item, path, format!("must be a string or a mapping, not {}", describe(item)), Some("\"published:target/protocol\" (quoted: YAML 1.1 reads unquoted 53:53 as a base-60 number) or {target_port, published_port, protocol}"));
            return None;
        }
    };
    let protocol = match protocol.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => {
            let n = item.get("protocol").unwrap_or(item);
            ctx.errors.push(Error::Invalid {
                location: Location::new(file, n.mark.line, n.mark.column),
                key_path: path.to_string(),
                message: format!("unknown protocol {other} in port of service {service}"),
                expected: Some("tcp, udp, sctp".into()),
                suggestion: did_you_mean(other, &["tcp", "udp", "sctp"]).map(str::to_string),
            });
            return None;
        }
    };
    let key = format!("{service}{target}");
    let published = match published {
        Some(p) => {
            let pi = i64::from(p);
            if alloc.published_port_map.other_owner(pi, &key).is_some() {
                ctx.warnings.push(format!(
                    "{}:{}: duplicate published port {p} of port {key}",
                    file.display(),
                    item.mark.line
                ));
            }
            p
        }
        None => match alloc.published_port_map.get(&key) {
            Some(p) => match u16::try_from(p) {
                Ok(p) => p,
                Err(_) => {
                    ctx.invalid(
                        file,
                        item,
                        path,
                        format!("published_port_map entry {key} = {p} is not a port number"),
                        Some("fix .hive/persistents.yml"),
                    );
                    return None;
                }
            },
            None => {
                let Some(p) = alloc.published_port_map.lowest_free() else {
                    ctx.invalid(file, item, path, "too many published ports: none left from 61001 to 65534", Some("remove unused entries from published_port_map in .hive/persistents.yml"));
                    return None;
                };
                p as u16
            }
        },
    };
    alloc.published_port_map.insert(key, i64::from(published));
    value.insert(sval("published_port"), Value::Number(published.into()));
    Some((
        Port {
            target_port: target,
            published_port: published,
            protocol,
            mode,
        },
        Value::Mapping(value),
    ))
}

// ---------------------------------------------------------------- vars files

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_declared_twice_below_the_range_keeps_the_floor() {
        let mut a = Allocator::new(IndexMap::new(), 61001..65535);
        a.insert("dns53".into(), 53);
        a.insert("dns53".into(), 53);
        assert_eq!(a.lowest_free(), Some(61001));
    }

    #[test]
    fn a_freed_number_in_the_range_is_handed_out_again() {
        let seeded = IndexMap::from([("a".to_string(), 61001), ("b".to_string(), 61002)]);
        let mut a = Allocator::new(seeded, 61001..65535);
        assert_eq!(a.lowest_free(), Some(61003));
        a.insert("a".into(), 8080);
        assert_eq!(a.lowest_free(), Some(61001));
    }
}
