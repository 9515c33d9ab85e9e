//! `plugin: hive_inventory`: the stages and their servers (the variables
//! they give are in `derive.rs`).

use std::net::IpAddr;
use std::path::Path;

use serde_yaml::Value;

use crate::error::{Error, Location, did_you_mean};
use crate::model::*;
use crate::yaml::{Node, NodeKind};

use super::common::*;

/// Every key a stage takes, in the order error messages list them, each
/// with whether it is a provider's own setting (`true`: given to the
/// stage's provider to check, like `region` or `bridge`) or one hive reads
/// for every provider (`false`).
pub(crate) const STAGE_KEYS: &[(&str, bool)] = &[
    ("provider", false),
    ("separate_repository", false),
    ("shared_repository", false),
    ("cidr", false),
    ("number_of_hosts", false),
    ("subnets", false),
    ("ip_address_list", true),
    ("custom_hostname", false),
    ("memory_size", false),
    ("cpus", false),
    ("drbd_download_url", true),
    ("instance_type", true),
    ("image_name", true),
    ("region", true),
    ("az_suffix_list", true),
    ("prepared_resource_group", true),
    ("not_support_az", true),
    ("disk_size", false),
    ("disk_encrypted", true),
    ("kms_key_id", true),
    ("kernel_version", true),
    ("mirrored_disk_size", false),
    ("mirrored_disk_encrypted", true),
    ("repository_memory_size", false),
    ("repository_cpus", false),
    ("repository_instance_type", true),
    ("repository_disk_size", false),
    ("repository_disk_encrypted", true),
    ("root_password", false),
    ("kickstart_config", true),
    ("internal_cidr", false),
    ("internal_cidr_v6", false),
    ("filestore_cidr", true),
    ("nameservers", false),
    ("dev", true),
    ("bridge", true),
];

/// Whether stage key `key` is a provider's own setting: every key but
/// those [`STAGE_KEYS`] marks as read by hive for every provider. A key
/// the table does not list is a setting of a provider the inventory has no
/// rules for (such a stage's keys are not checked against the table).
pub(crate) fn is_provider_setting(key: &str) -> bool {
    !STAGE_KEYS.iter().any(|&(k, own)| !own && k == key)
}

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
                ctx.wrong_type(file, n, "name", "a non-empty string", None);
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
        ctx.wrong_type(
            file,
            stages,
            "stages",
            "a mapping",
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
            super::derive::derive_stage(&mut out.inventory, file, &name, &stage, &servers, node);
            out.stages.push(stage);
            out.servers.extend(servers);
        }
    }
}

pub(super) fn parse_net(
    ctx: &mut Ctx,
    file: &Path,
    node: &Node,
    path: &str,
) -> Option<ipnet::IpNet> {
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
pub(super) fn addresses(net: ipnet::IpNet, skip: usize) -> Box<dyn Iterator<Item = IpAddr>> {
    let hosts: Box<dyn Iterator<Item = IpAddr>> = match net {
        ipnet::IpNet::V4(n) if n.prefix_len() >= 31 => Box::new(n.hosts().map(IpAddr::V4)),
        ipnet::IpNet::V4(n) => Box::new(n.hosts().map(IpAddr::V4)),
        ipnet::IpNet::V6(n) => Box::new(n.hosts().skip(1).map(IpAddr::V6)),
    };
    Box::new(hosts.skip(skip))
}

/// Where a stage's settings are: its file, key and mapping, for the
/// checks that make up [`stage`].
struct StageAt<'a> {
    file: &'a Path,
    site: &'a str,
    name: StageName,
    key: &'a Node,
    node: &'a Node,
    sp: String,
}

impl<'a> StageAt<'a> {
    fn get(&self, k: &str) -> Option<&'a Node> {
        self.node.get(k)
    }

    fn kp(&self, k: &str) -> String {
        format!("{}.{k}", self.sp)
    }
}

/// Address pools of a stage's subnets, in the order servers take them.
type SubnetPools = Vec<(Subnet, Box<dyn Iterator<Item = IpAddr>>)>;

#[allow(clippy::too_many_arguments)]
pub(super) fn stage(
    ctx: &mut Ctx,
    file: &Path,
    site: &str,
    name: StageName,
    key: &Node,
    node: &Node,
    first_hive: &dyn Fn(StageName) -> Option<Value>,
) -> Option<(Stage, Vec<Server>)> {
    let before = ctx.errors.len();
    let at = StageAt {
        file,
        site,
        name,
        key,
        node,
        sp: format!("stages.{name}"),
    };
    let Some(map) = node.as_map() else {
        ctx.wrong_type(
            file,
            node,
            &at.sp,
            "a mapping",
            Some("stage attributes such as provider and cidr"),
        );
        return None;
    };
    // The settings of a provider the inventory has no rules for are its
    // own: kept as data (`Stage::attributes`) and checked by the provider.
    let own_rules = node
        .get("provider")
        .and_then(Node::key_string)
        .is_none_or(|p| RULED_PROVIDERS.contains(&p.as_str()));
    if own_rules {
        let keys: Vec<&str> = STAGE_KEYS.iter().map(|k| k.0).collect();
        check_keys(ctx, file, map, &at.sp, &format!("stage {name}"), &keys);
    }

    let provider = stage_provider(ctx, &at);
    if let Some(provider) = provider.as_deref() {
        forbid_foreign_settings(ctx, file, node, &at.sp, provider);
    }
    let custom_hostname = stage_custom_hostname(ctx, &at);
    let separate_repository = match at.get("separate_repository") {
        None => Some(true),
        Some(n) => ctx.bool_at(file, n, &at.kp("separate_repository")),
    };
    let shared_repository = at.get("shared_repository").and_then(|n| {
        shared_repository(
            ctx,
            file,
            n,
            &at.kp("shared_repository"),
            separate_repository,
        )
    });
    check_setting_types(ctx, file, node, &at.sp);
    let az_suffix_list = az_suffix_list(ctx, &at);
    let cidr = match at.get("cidr") {
        None => {
            ctx.invalid(
                file,
                key,
                &at.kp("cidr"),
                "cidr must be specified",
                Some("the stage's network, e.g. 192.168.0.0/24"),
            );
            None
        }
        Some(n) => parse_net(ctx, file, n, &at.kp("cidr")),
    };
    let ip_address_list = ip_address_list(ctx, &at);
    let number_of_hosts = number_of_hosts(ctx, &at, separate_repository, &ip_address_list);
    let subnets = stage_subnets(ctx, &at, cidr, &ip_address_list);
    let first_index = first_hive_index(ctx, name, first_hive);

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
    let (subnets, mut pools): (Vec<Subnet>, Vec<_>) = subnets.into_iter().unzip();
    let attributes = map
        .iter()
        .filter_map(|(k, v)| k.key_string().map(|k| (k, v.to_value())))
        .collect();
    let stage = Stage {
        name,
        provider,
        separate_repository,
        shared_repository,
        cidr,
        number_of_hosts,
        custom_hostname,
        subnets,
        ip_address_list,
        first_hive: first_index,
        attributes,
        file: file.to_path_buf(),
    };
    let servers = allocate_servers(ctx, &at, &stage, &mut pools, &az_suffix_list)?;
    check_first_hive(ctx, &stage, &servers)?;
    Some((stage, servers))
}

/// The stage's `provider`: required, and one of the known providers when
/// the loader was given their names.
fn stage_provider(ctx: &mut Ctx, at: &StageAt) -> Option<String> {
    match at.get("provider") {
        None => {
            let expected = ctx.providers.as_ref().map(|p| p.join(", "));
            ctx.invalid(
                at.file,
                at.key,
                &at.kp("provider"),
                "provider must be specified",
                expected.as_deref(),
            );
            None
        }
        Some(p) => {
            let text = p.key_string().unwrap_or_default();
            match &ctx.providers {
                Some(known) if !known.contains(&text) => {
                    let names: Vec<&str> = known.iter().map(String::as_str).collect();
                    ctx.errors.push(Error::Invalid {
                        location: Location::new(at.file, p.mark.line, p.mark.column),
                        key_path: at.kp("provider"),
                        message: format!("unknown provider {text}"),
                        expected: Some(names.join(", ")),
                        suggestion: did_you_mean(&text, &names).map(str::to_string),
                    });
                    None
                }
                _ => Some(text),
            }
        }
    }
}

/// The stage's `custom_hostname` (default `hive`), checked as a host name
/// part that keeps the full name short enough.
fn stage_custom_hostname(ctx: &mut Ctx, at: &StageAt) -> Option<String> {
    let custom_hostname = match at.get("custom_hostname") {
        None => Some("hive".to_string()),
        Some(n) => ctx
            .str_at(at.file, n, &at.kp("custom_hostname"))
            .map(str::to_string),
    };
    if let Some(ch) = &custom_hostname {
        let b = ch.as_bytes();
        let pattern_ok = b.len() >= 2
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !pattern_ok || ch.len() + at.site.len() >= 55 {
            let n = at.get("custom_hostname").unwrap_or(at.key);
            ctx.invalid(
                at.file,
                n,
                &at.kp("custom_hostname"),
                format!("invalid custom_hostname {ch:?}"),
                Some("lowercase letters, digits and inner hyphens, at least 2 characters, and custom_hostname + name shorter than 55"),
            );
        }
    }
    custom_hostname
}

/// The stage's `az_suffix_list`, `-a`, `-b`, `-c` by default.
fn az_suffix_list(ctx: &mut Ctx, at: &StageAt) -> Vec<String> {
    match at.get("az_suffix_list") {
        None => vec!["-a".into(), "-b".into(), "-c".into()],
        Some(n) => match n.as_seq() {
            Some(items) if !items.is_empty() && items.iter().all(|i| i.as_str().is_some()) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => {
                ctx.invalid(
                    at.file,
                    n,
                    &at.kp("az_suffix_list"),
                    "must be a non-empty list of strings",
                    Some("e.g. [-a, -b, -c]"),
                );
                Vec::new()
            }
        },
    }
}

/// The stage's `ip_address_list`, if given.
fn ip_address_list(ctx: &mut Ctx, at: &StageAt) -> Option<Vec<IpAddr>> {
    let n = at.get("ip_address_list")?;
    match n.as_seq() {
        Some(items) if !items.is_empty() => {
            let mut ips = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().and_then(|s| s.parse::<IpAddr>().ok()) {
                    Some(ip) => ips.push(ip),
                    None => ctx.invalid(
                        at.file,
                        item,
                        &format!("{}[{i}]", at.kp("ip_address_list")),
                        format!("{} is not an IP address", describe(item)),
                        None,
                    ),
                }
            }
            Some(ips)
        }
        _ => {
            ctx.invalid(
                at.file,
                n,
                &at.kp("ip_address_list"),
                "must be a non-empty list of IP addresses",
                None,
            );
            None
        }
    }
}

/// The stage's number of hosts: `number_of_hosts` (by default 4, or 3
/// without a separate repository), or the length of `ip_address_list`;
/// a separate repository needs a hive besides it.
fn number_of_hosts(
    ctx: &mut Ctx,
    at: &StageAt,
    separate_repository: Option<bool>,
    ip_address_list: &Option<Vec<IpAddr>>,
) -> Option<usize> {
    let mut number_of_hosts = match at.get("number_of_hosts") {
        None => Some(if separate_repository == Some(false) {
            3
        } else {
            4
        }),
        Some(n) => match n.kind {
            NodeKind::Int(i) if (1..=10000).contains(&i) => Some(i as usize),
            _ => {
                ctx.wrong_type(
                    at.file,
                    n,
                    &at.kp("number_of_hosts"),
                    "a positive integer",
                    Some("1 to 10000"),
                );
                None
            }
        },
    };
    if let Some(ips) = ip_address_list {
        number_of_hosts = Some(ips.len());
    }
    if let (Some(n), Some(true)) = (number_of_hosts, separate_repository) {
        if n < 2 {
            let node = at
                .get("number_of_hosts")
                .or(at.get("ip_address_list"))
                .unwrap_or(at.key);
            ctx.invalid(
                at.file,
                node,
                &at.kp("number_of_hosts"),
                format!("{n} host leaves no hive besides the separate repository server"),
                Some("at least 2 hosts, or separate_repository: false"),
            );
        }
    }
    number_of_hosts
}

/// The stage's subnets with their address pools: the listed `subnets`, or
/// one default subnet of `cidr` whose addresses are `ip_address_list` or
/// the network's from the fourth on.
fn stage_subnets(
    ctx: &mut Ctx,
    at: &StageAt,
    cidr: Option<ipnet::IpNet>,
    ip_address_list: &Option<Vec<IpAddr>>,
) -> SubnetPools {
    let mut subnets: SubnetPools = Vec::new();
    match at.get("subnets") {
        None => {
            if let Some(net) = cidr {
                let sub = Subnet {
                    name: format!("{}-default", at.site),
                    cidr: net,
                    netmask: net.netmask(),
                    available_zone: None,
                };
                let ips: Box<dyn Iterator<Item = IpAddr>> = match ip_address_list {
                    Some(list) => Box::new(list.clone().into_iter()),
                    None => addresses(net, 3),
                };
                subnets.push((sub, ips));
            }
        }
        Some(n) => match n.as_seq() {
            Some(items) if !items.is_empty() => {
                subnets = listed_subnets(ctx, at.file, items, &at.kp("subnets"), at.name);
            }
            _ => ctx.invalid(
                at.file,
                n,
                &at.kp("subnets"),
                "must be a non-empty list of subnets",
                Some("a list of {cidr, name, available_zone}"),
            ),
        },
    }
    subnets
}

/// The stage's `first_hive` from `.hive/persistents.yml`, 0 if unset.
fn first_hive_index(
    ctx: &mut Ctx,
    name: StageName,
    first_hive: &dyn Fn(StageName) -> Option<Value>,
) -> usize {
    match first_hive(name) {
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
    }
}

/// The servers of a validated stage: names, roles (the last one the
/// repository), addresses taken from the subnets in turn, and zones.
fn allocate_servers(
    ctx: &mut Ctx,
    at: &StageAt,
    stage: &Stage,
    pools: &mut [Box<dyn Iterator<Item = IpAddr>>],
    az_suffix_list: &[String],
) -> Option<Vec<Server>> {
    let (name, number_of_hosts) = (stage.name, stage.number_of_hosts);
    let region = at
        .get("region")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    let mut servers = Vec::new();
    for idx in 0..number_of_hosts {
        let host = format!(
            "{}{}{}.{}",
            name.prefix(),
            stage.custom_hostname,
            idx,
            at.site
        );
        let role = if idx == number_of_hosts - 1 {
            if stage.separate_repository {
                ServerRole::Repository
            } else {
                ServerRole::HiveAndRepository
            }
        } else {
            ServerRole::Hive
        };
        let n_sub = stage.subnets.len();
        let (sub, ips) = (&stage.subnets[idx % n_sub], &mut pools[idx % n_sub]);
        let Some(ip) = ips.next() else {
            let n = at
                .get("ip_address_list")
                .or(at.get("subnets"))
                .or(at.get("cidr"))
                .unwrap_or(at.key);
            ctx.invalid(
                at.file,
                n,
                &at.sp,
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
                if stage.provider == "azure" {
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
    Some(servers)
}

/// Checks that the stage's `first_hive` names one of its hives.
fn check_first_hive(ctx: &mut Ctx, stage: &Stage, servers: &[Server]) -> Option<()> {
    let (name, first_index) = (stage.name, stage.first_hive);
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
    Some(())
}

pub(super) fn is_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['G', 'M', 'K', 'g', 'm', 'k', 'T', 't']);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// The providers whose settings [`STAGE_KEYS`] lists and
/// `forbid_foreign_settings` rules: the original's, and docker.
const RULED_PROVIDERS: &[&str] = &[
    "vagrant",
    "aws",
    "azure",
    "gcp",
    "openstack",
    "prepared",
    "kickstart",
    "docker",
];

/// The original's rules for the settings of its own providers: a setting
/// of one kind of provider is refused on a stage of another kind. A
/// provider it does not know gets only the rules of a non-local provider
/// that is not IaaS.
fn forbid_foreign_settings(ctx: &mut Ctx, file: &Path, node: &Node, sp: &str, provider: &str) {
    let forbid = |ctx: &mut Ctx, attr: &str, why: &str| {
        if let Some(n) = node.get(attr) {
            ctx.invalid(
                file,
                n,
                &format!("{sp}.{attr}"),
                format!("{attr} cannot be specified when {why}"),
                None,
            );
        }
    };
    if provider != "kickstart" {
        forbid(ctx, "kickstart_config", "provider is not kickstart");
    }
    if matches!(provider, "vagrant" | "docker") {
        forbid(ctx, "instance_type", &format!("provider is {provider}"));
        forbid(ctx, "region", &format!("provider is {provider}"));
    } else {
        if provider != "azure" {
            forbid(ctx, "prepared_resource_group", "provider is not azure");
            forbid(ctx, "not_support_az", "provider is not azure");
        }
        if matches!(provider, "aws" | "azure" | "gcp" | "openstack") {
            forbid(ctx, "memory_size", "provider is IaaS");
        }
        let why = format!("provider is {provider} (only with vagrant or docker)");
        forbid(ctx, "repository_memory_size", &why);
        forbid(ctx, "dev", &why);
        forbid(ctx, "bridge", &why);
    }
}

/// The `shared_repository` of a stage at `path` (none when null or false).
fn shared_repository(
    ctx: &mut Ctx,
    file: &Path,
    n: &Node,
    path: &str,
    separate_repository: Option<bool>,
) -> Option<SharedRepository> {
    match &n.kind {
        NodeKind::Null | NodeKind::Bool(false) => None,
        NodeKind::Map(m) => {
            check_keys(
                ctx,
                file,
                m,
                path,
                "shared_repository",
                &["context_dir", "ssh_port", "dns_address"],
            );
            let s = |k: &str| n.get(k).and_then(|v| v.as_str()).map(str::to_string);
            if n.get("context_dir").is_none() {
                ctx.invalid(
                    file,
                    n,
                    &format!("{path}.context_dir"),
                    "context_dir must be specified in shared_repository",
                    None,
                );
            }
            let shared = SharedRepository {
                context_dir: s("context_dir"),
                ssh_port: n.get("ssh_port").map(Node::to_value),
                dns_address: s("dns_address"),
            };
            if separate_repository == Some(false) {
                ctx.invalid(
                    file,
                    n,
                    path,
                    "shared_repository needs a separate repository server",
                    Some(
                        "set separate_repository: true in this stage, or remove shared_repository",
                    ),
                );
            }
            Some(shared)
        }
        _ => {
            ctx.wrong_type(
                file,
                n,
                path,
                "a mapping",
                Some("context_dir, ssh_port, dns_address"),
            );
            None
        }
    }
}

/// The types of a stage's settings that nothing else reads here (flags,
/// counts, sizes, strings), and that an encrypted disk has its key.
fn check_setting_types(ctx: &mut Ctx, file: &Path, node: &Node, sp: &str) {
    let get = |k: &str| node.get(k);
    let kp = |k: &str| format!("{sp}.{k}");
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
                ctx.wrong_type(file, n, &kp(attr), "a positive integer", None);
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
                ctx.wrong_type(
                    file,
                    n,
                    &kp(attr),
                    "a size",
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
            ctx.wrong_type(
                file,
                n,
                &kp("kickstart_config"),
                "a mapping",
                Some("iso_src, iso_dest, networks, ..."),
            );
        }
    }
}

/// The subnets listed in `subnets` (at `path`), each with the addresses its
/// servers take.
fn listed_subnets(
    ctx: &mut Ctx,
    file: &Path,
    items: &[Node],
    path: &str,
    name: StageName,
) -> SubnetPools {
    let mut out: SubnetPools = Vec::new();
    for (idx, item) in items.iter().enumerate() {
        let ip = format!("{path}[{idx}]");
        let Some(m) = item.as_map() else {
            ctx.wrong_type(
                file,
                item,
                &ip,
                "a mapping",
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
        out.push((
            Subnet {
                name: sname,
                cidr: net,
                netmask: net.netmask(),
                available_zone: item.get("available_zone").map(Node::to_value),
            },
            addresses(net, 4),
        ));
    }
    out
}
