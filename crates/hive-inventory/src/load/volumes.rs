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
            ctx.wrong_type(file, n, &p, "a mapping", None);
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
            None => ctx.wrong_type(
                file,
                d,
                &p,
                "a mapping",
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
                let diskless: Vec<String> = d
                    .get("diskless")
                    .map(|dl| {
                        let path = format!("{p}.diskless");
                        ctx.str_list_at(file, dl, &path, "must be a list of server names")
                    })
                    .unwrap_or_default();
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
