//! The `volumes` of a service: mounts and the volumes they define.

use crate::inventory::Origin;
use std::path::Path;

use serde_yaml::{Mapping, Value};

use crate::model::*;
use crate::yaml::{Node, NodeKind};

use super::alloc::*;
use super::common::*;

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

pub(super) type VolumeResult = (Mount, Value, Vec<(Volume, &'static str)>);

pub(super) fn volume(
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
            ctx.wrong_type(
                file,
                item,
                path,
                "a mapping",
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
    check_exclusive_backends(ctx, file, service, path, item);
    let vm = VolumeAt {
        file,
        service,
        path,
        item,
        source: &source_s,
        available_on,
        before,
    };
    let vols = defined_volumes(ctx, alloc, &vm);
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

/// Checks that a mount names at most one of `nfs`, `driver` and `drbd`.
fn check_exclusive_backends(ctx: &mut Ctx, file: &Path, service: &str, path: &str, item: &Node) {
    let (nfs, driver, drbd) = (item.get("nfs"), item.get("driver"), item.get("drbd"));
    for (a, b, both) in [
        (nfs.is_some(), driver.is_some(), "\"driver\" and \"nfs\""),
        (nfs.is_some(), drbd.is_some(), "\"nfs\" and \"drbd\""),
        (drbd.is_some(), driver.is_some(), "\"driver\" and \"drbd\""),
    ] {
        if a && b {
            ctx.invalid(
                file,
                item,
                path,
                format!("both {both} cannot be specified in volume of service {service}"),
                None,
            );
        }
    }
}

/// A mount being checked: where it is, its volume's name, the stages of
/// its service, and the error count before it.
struct VolumeAt<'a> {
    file: &'a Path,
    service: &'a str,
    path: &'a str,
    item: &'a Node,
    source: &'a str,
    available_on: &'a [StageName],
    before: usize,
}

impl VolumeAt<'_> {
    /// The stages of a backend: its own `available_on`, or the service's.
    fn stages(&self, ctx: &mut Ctx, n: &Node, p: &str) -> Vec<StageName> {
        match n.get("available_on") {
            None => self.available_on.to_vec(),
            Some(a) => ctx
                .stages_at(self.file, a, &format!("{p}.available_on"))
                .unwrap_or_default(),
        }
    }

    fn volume(&self, kind: VolumeKind, available_on: Vec<StageName>) -> Volume {
        Volume {
            name: self.source.to_string(),
            kind,
            available_on,
            service: self.service.into(),
        }
    }
}

/// The volumes a mount defines through `nfs`, `driver` and `drbd`, with
/// the inventory group of each.
fn defined_volumes(
    ctx: &mut Ctx,
    alloc: &mut Allocations,
    vm: &VolumeAt,
) -> Vec<(Volume, &'static str)> {
    let item = vm.item;
    let mut vols = Vec::new();
    if let Some(n) = item.get("nfs") {
        let p = format!("{}.nfs", vm.path);
        if n.as_map().is_none() && n.kind != NodeKind::Null {
            ctx.wrong_type(vm.file, n, &p, "a mapping", None);
        }
        let av = vm.stages(ctx, n, &p);
        let kind = VolumeKind::Nfs {
            params: n.to_value(),
        };
        vols.push((vm.volume(kind, av), "nfs_volumes"));
    }
    if let Some(d) = item.get("driver") {
        let kind = VolumeKind::Driver {
            driver: d.to_value(),
            driver_opts: item.get("driver_opts").map(Node::to_value),
        };
        vols.push((vm.volume(kind, vm.available_on.to_vec()), "volumes"));
    }
    if let Some(d) = item.get("drbd") {
        if let Some(vol) = drbd_volume(ctx, alloc, vm, d) {
            vols.push((vol, "drbd_volumes"));
        }
    }
    vols
}

/// The drbd volume of a mount's `drbd` settings, with its device id
/// (given, or kept from `drbd_device_map`, or the lowest free one).
fn drbd_volume(ctx: &mut Ctx, alloc: &mut Allocations, vm: &VolumeAt, d: &Node) -> Option<Volume> {
    let (file, p) = (vm.file, format!("{}.drbd", vm.path));
    let Some(m) = d.as_map() else {
        ctx.wrong_type(
            file,
            d,
            &p,
            "a mapping",
            Some("fstype, size, diskless, device_id, available_on"),
        );
        return None;
    };
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
    let diskless: Vec<String> = d
        .get("diskless")
        .map(|dl| {
            let path = format!("{p}.diskless");
            ctx.str_list_at(file, dl, &path, "must be a list of server names")
        })
        .unwrap_or_default();
    let id = drbd_device_id(ctx, alloc, vm, d, &p)?;
    if ctx.errors.len() == vm.before {
        alloc.drbd_device_map.insert(vm.source.to_string(), id);
    }
    let mut params = match d.to_value() {
        Value::Mapping(m) => m,
        _ => Mapping::new(),
    };
    params.insert(sval("device_id"), Value::Number(id.into()));
    let av = vm.stages(ctx, d, &p);
    let kind = VolumeKind::Drbd {
        device_id: id as u8,
        fstype,
        size: d.get("size").map(Node::to_value),
        diskless,
        params: Value::Mapping(params),
    };
    Some(vm.volume(kind, av))
}

/// The drbd device id of a volume: its `device_id` if free, else the one
/// `drbd_device_map` holds for it, else the lowest free one.
fn drbd_device_id(
    ctx: &mut Ctx,
    alloc: &mut Allocations,
    vm: &VolumeAt,
    d: &Node,
    p: &str,
) -> Option<i64> {
    let (file, source_s, service) = (vm.file, vm.source, vm.service);
    match d.get("device_id") {
        Some(idn) => match idn.kind {
            NodeKind::Int(id) if (1..=255).contains(&id) => {
                let taken_by = alloc.drbd_device_map.other_owner(id, source_s);
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
        None => {
            match alloc.drbd_device_map.get(source_s) {
                Some(id) => Some(id),
                None => {
                    let free = alloc.drbd_device_map.lowest_free();
                    if free.is_none() {
                        ctx.invalid(file, d, p, "too many drbd volumes: no device_id left from 1 to 255", Some("remove unused entries from drbd_device_map in .hive/persistents.yml"));
                    }
                    free
                }
            }
        }
    }
}

/// Records a volume a service defines: its host `volume_<name>` in `group`
/// and its stages, with `hive_volume`, and the typed volume.
pub(super) fn record_volume(out: &mut Loaded, origin: &Origin, vol: Volume, group: &str) {
    let inv = &mut out.inventory;
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
    inv.set_variable(&vname, "hive_volume", Value::Mapping(m), origin);
    out.volumes.insert(vol.name.clone(), vol);
}
