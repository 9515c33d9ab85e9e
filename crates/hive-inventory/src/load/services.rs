//! `plugin: hive_services`: the services of a services file.

use std::path::Path;

use indexmap::IndexMap;
use serde_yaml::{Mapping, Value};

use crate::inventory::Origin;
use crate::model::*;
use crate::yaml::{Node, NodeKind};

use super::alloc::*;
use super::common::*;
use super::networks::network;
use super::params::*;
use super::ports::port;
use super::volumes::{record_volume, volume};

const STANDALONE_CAPS: &[&str] = &[
    "NET_ADMIN",
    "SYS_ADMIN",
    "SYSLOG",
    "SYS_PTRACE",
    "AUDIT_CONTROL",
];

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
            None => ctx.wrong_type(
                file,
                services,
                "services",
                "a mapping",
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
            _ => ctx.wrong_type(
                file,
                networks,
                "networks",
                "a mapping",
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

pub(super) fn service(
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
    let mut params = service_params(ctx, file, name, entries);
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
    let mut mounts = service_mounts(ctx, alloc, file, name, node, standalone, &available_on);
    let (image, image_vars) = service_image(ctx, file, name, node, standalone);
    let (ports, port_values) = service_ports(ctx, alloc, file, name, node);
    if ctx.errors.len() > before {
        return None;
    }
    if let Some(caps) = &mounts.cap_add {
        params.insert("cap_add".into(), caps.clone());
    }
    if let Some(cmd) = &mounts.command {
        params.insert("command".into(), cmd.clone());
    }
    let service = Service {
        name: name.to_string(),
        available_on,
        image,
        mounts: std::mem::take(&mut mounts.mounts),
        ports,
        standalone,
        params,
        file: file.to_path_buf(),
    };
    derive_service(out, file, node, &service, mounts, port_values, image_vars);
    Some(service)
}

/// Checks each parameter of a service against the table of service
/// parameters; returns the ones copied into the inventory.
fn service_params(
    ctx: &mut Ctx,
    file: &Path,
    name: &str,
    entries: &[(Node, Node)],
) -> IndexMap<String, Value> {
    let kp = |k: &str| format!("services.{name}.{k}");
    let mut params: IndexMap<String, Value> = IndexMap::new();
    for (k, v) in entries {
        let key = k.key_string().unwrap_or_default();
        let Some(param) = service_param(&key) else {
            ctx.unknown_key(
                file,
                k,
                &kp(&key),
                &format!("service {name}"),
                &service_param_names(),
            );
            continue;
        };
        check_service_param(ctx, file, &kp(&key), param, v);
        if param.copied {
            params.insert(key, v.to_value());
        }
    }
    params
}

/// A service's mounts, their inventory values and the volumes they
/// define, with a standalone service's defaults.
struct ServiceMounts {
    mounts: Vec<Mount>,
    values: Vec<Value>,
    volumes: Vec<(Volume, &'static str)>,
    cap_add: Option<Value>,
    command: Option<Value>,
}

/// The `volumes` of a service (and a standalone service's own mounts).
fn service_mounts(
    ctx: &mut Ctx,
    alloc: &mut Allocations,
    file: &Path,
    name: &str,
    node: &Node,
    standalone: bool,
    available_on: &[StageName],
) -> ServiceMounts {
    let mut m = ServiceMounts {
        mounts: Vec::new(),
        values: Vec::new(),
        volumes: Vec::new(),
        cap_add: None,
        command: None,
    };
    if node.get("volumes").is_none() && !standalone {
        return m;
    }
    if standalone {
        (m.cap_add, m.command) = standalone_defaults(node, &mut m.mounts, &mut m.values);
    }
    let path = format!("services.{name}.volumes");
    let empty = Node {
        mark: node.mark,
        kind: NodeKind::Seq(Vec::new()),
    };
    let vnode = node.get("volumes").unwrap_or(&empty);
    match vnode.as_seq() {
        None if vnode.kind == NodeKind::Null => {}
        None => ctx.wrong_type(
            file,
            vnode,
            &path,
            "a list",
            Some("a list of {source, target, type, ...}"),
        ),
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                let ip = format!("{path}[{i}]");
                if let Some((mount, value, vols)) =
                    volume(ctx, alloc, file, name, &ip, item, available_on)
                {
                    m.mounts.push(mount);
                    m.values.push(value);
                    m.volumes.extend(vols);
                }
            }
        }
    }
    m
}

/// The `ports` of a service and their inventory values.
fn service_ports(
    ctx: &mut Ctx,
    alloc: &mut Allocations,
    file: &Path,
    name: &str,
    node: &Node,
) -> (Vec<Port>, Vec<Value>) {
    let mut ports = Vec::new();
    let mut port_values = Vec::new();
    let path = format!("services.{name}.ports");
    if let Some(pnode) = node.get("ports") {
        match pnode.as_seq() {
            None => ctx.wrong_type(file, pnode, &path, "a list", Some("a list of \"published:target/protocol\" strings or {target_port, published_port, protocol} objects")),
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some((port, value)) = port(ctx, alloc, file, name, &format!("{path}[{i}]"), item) {
                        ports.push(port);
                        port_values.push(value);
                    }
                }
            }
        }
    }
    (ports, port_values)
}

/// Sets the inventory entries of a validated service, in the original's order.
fn derive_service(
    out: &mut Loaded,
    file: &Path,
    node: &Node,
    service: &Service,
    mounts: ServiceMounts,
    port_values: Vec<Value>,
    image_vars: Vec<(String, Value, Origin)>,
) {
    let name = service.name.as_str();
    let at = |k: &str| origin(file, node.get(k).unwrap_or(node));
    let inv = &mut out.inventory;
    inv.add_host(name, "services");
    for (k, v) in node.as_map().unwrap_or_default() {
        let key = k.key_string().unwrap_or_default();
        if service_param(&key).is_some_and(|p| p.copied) {
            inv.set_variable(name, &format!("hive_{key}"), v.to_value(), &origin(file, v));
        }
    }
    for s in &service.available_on {
        inv.add_host(name, s.as_str());
    }
    if let Some(caps) = mounts.cap_add {
        inv.set_variable(name, "hive_cap_add", caps, &at("standalone"));
    }
    if let Some(cmd) = mounts.command {
        inv.set_variable(name, "hive_command", cmd, &at("standalone"));
    }
    let volumes_origin = at("volumes");
    for (vol, group) in mounts.volumes {
        record_volume(out, &volumes_origin, vol, group);
    }
    let inv = &mut out.inventory;
    if node.get("volumes").is_some() || service.standalone {
        inv.set_variable(
            name,
            "hive_volumes",
            Value::Sequence(mounts.values),
            &at("volumes"),
        );
    }
    match &service.image {
        Some(ServiceImage::Tag(t)) => {
            inv.set_variable(name, "hive_image", sval(t), &at("image"));
        }
        Some(ServiceImage::Build(b)) => {
            inv.add_host(&b.host, "images");
            for s in &service.available_on {
                inv.add_host(&b.host, s.as_str());
            }
            inv.set_variable(name, "hive_image_name", sval(&b.host), &at("image"));
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
            &at("ports"),
        );
    }
}

/// The `image` of a service: a tag, or a build object whose parameters
/// become variables of the image host `image_<service>`.
fn service_image(
    ctx: &mut Ctx,
    file: &Path,
    name: &str,
    node: &Node,
    standalone: bool,
) -> (Option<ServiceImage>, Vec<(String, Value, Origin)>) {
    let kp = |k: &str| format!("services.{name}.{k}");
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
                let roles = inode
                    .get("roles")
                    .map(|r| {
                        let path = format!("{ip}.roles");
                        ctx.str_list_at(file, r, &path, "must be a list of role names")
                    })
                    .unwrap_or_default();
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
            _ => ctx.wrong_type(
                file,
                inode,
                &kp("image"),
                "a string or a mapping",
                Some("an image tag, or a build object with from and roles"),
            ),
        }
    }
    (image, image_vars)
}

/// What a standalone (init-system) service gets when it does not say
/// otherwise: tmpfs mounts on `/run`, `/tmp` and `/sys/fs/cgroup` (added to
/// `mounts`), the capabilities of [`STANDALONE_CAPS`] and a command that
/// mounts cgroup2 and starts init. Returns `cap_add` and `command`.
fn standalone_defaults(
    node: &Node,
    mounts: &mut Vec<Mount>,
    mount_values: &mut Vec<Value>,
) -> (Option<Value>, Option<Value>) {
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
    let given = node.get("command").map(Node::to_value);
    let command = (given.is_none() || given == Some(sval(""))).then(|| {
        Value::Sequence(vec![
            sval("sh"),
            sval("-c"),
            sval("mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec /sbin/init"),
        ])
    });
    (Some(Value::Sequence(caps)), command)
}
