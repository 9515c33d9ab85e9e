//! The `ports` of a service and their published-port allocation.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use crate::error::{Error, Location, did_you_mean};
use crate::model::*;
use crate::yaml::{Node, NodeKind};

use super::alloc::*;
use super::common::*;

/// A port as written: target, published (if given), protocol, mode, and
/// its inventory value.
type PortParts = (u16, Option<u16>, String, Option<String>, Mapping);

pub(super) fn port(
    ctx: &mut Ctx,
    alloc: &mut Allocations,
    file: &Path,
    service: &str,
    path: &str,
    item: &Node,
) -> Option<(Port, Value)> {
    let (target, published, protocol, mode, mut value) = match &item.kind {
        NodeKind::Str(s) => short_port(ctx, file, path, item, s)?,
        NodeKind::Map(m) => {
            check_keys(
                ctx,
                file,
                m,
                path,
                &format!("port of service {service}"),
                &["target_port", "published_port", "protocol", "mode"],
            );
            long_port(ctx, file, service, path, item)?
        }
        _ => {
            ctx.wrong_type(file, item, path, "a string or a mapping", Some("\"published:target/protocol\" (quoted: YAML 1.1 reads unquoted 53:53 as a base-60 number) or {target_port, published_port, protocol}"));
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
    let published = published_port(ctx, alloc, file, path, item, &key, published)?;
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

/// A port in the short syntax, `"published:target/protocol"`.
fn short_port(ctx: &mut Ctx, file: &Path, path: &str, item: &Node, s: &str) -> Option<PortParts> {
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
    let (addr, proto) = match s.split_once('/') {
        Some((a, p)) => (a, p.to_string()),
        None => (s, "tcp".to_string()),
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
    Some((target, published, proto, None, value))
}

/// A port in the long syntax, `{target_port, published_port, protocol, mode}`.
fn long_port(
    ctx: &mut Ctx,
    file: &Path,
    service: &str,
    path: &str,
    item: &Node,
) -> Option<PortParts> {
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
    let target = port_number(ctx, file, t, &format!("{path}.target_port"))?;
    let published = match item.get("published_port") {
        Some(p) => Some(port_number(
            ctx,
            file,
            p,
            &format!("{path}.published_port"),
        )?),
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
    let value = match item.to_value() {
        Value::Mapping(mm) => mm,
        _ => Mapping::new(),
    };
    Some((target, published, proto, mode, value))
}

/// A port number of the long syntax: an integer from 1 to 65535, not a
/// template.
fn port_number(ctx: &mut Ctx, file: &Path, n: &Node, p: &str) -> Option<u16> {
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
}

/// The published port of port `key`: the one given (warning when another
/// port has it), or the one `published_port_map` holds, or the lowest free.
fn published_port(
    ctx: &mut Ctx,
    alloc: &mut Allocations,
    file: &Path,
    path: &str,
    item: &Node,
    key: &str,
    published: Option<u16>,
) -> Option<u16> {
    match published {
        Some(p) => {
            let pi = i64::from(p);
            if alloc.published_port_map.other_owner(pi, key).is_some() {
                ctx.warnings.push(format!(
                    "{}:{}: duplicate published port {p} of port {key}",
                    file.display(),
                    item.mark.line
                ));
            }
            Some(p)
        }
        None => match alloc.published_port_map.get(key) {
            Some(p) => match u16::try_from(p) {
                Ok(p) => Some(p),
                Err(_) => {
                    ctx.invalid(
                        file,
                        item,
                        path,
                        format!("published_port_map entry {key} = {p} is not a port number"),
                        Some("fix .hive/persistents.yml"),
                    );
                    None
                }
            },
            None => {
                let Some(p) = alloc.published_port_map.lowest_free() else {
                    ctx.invalid(file, item, path, "too many published ports: none left from 61001 to 65534", Some("remove unused entries from published_port_map in .hive/persistents.yml"));
                    return None;
                };
                Some(p as u16)
            }
        },
    }
}
