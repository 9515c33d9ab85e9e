//! The `ipaddr` filter family, as ansible.netcommon 2.5.1 (netaddr) does it.

use std::net::IpAddr;

use ipnet::IpNet;
use minijinja::Error;
use minijinja::value::{Value, ValueKind};

use super::pyvalue::text;

/// Parses `addr` or `addr/prefix`, keeping host bits (like netaddr's IPNetwork).
fn parse(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Some(n);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

fn size(n: &IpNet) -> u128 {
    let bits = match n {
        IpNet::V4(_) => 32,
        IpNet::V6(_) => 128,
    } - u32::from(n.prefix_len());
    if bits >= 128 {
        u128::MAX
    } else {
        1u128 << bits
    }
}

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, like: &IpNet) -> Option<IpAddr> {
    match like {
        IpNet::V4(_) => u32::try_from(v).ok().map(|x| IpAddr::V4(x.into())),
        IpNet::V6(_) => Some(IpAddr::V6(v.into())),
    }
}

fn nth(n: &IpNet, idx: i128) -> Option<IpAddr> {
    let size = size(n);
    let base = to_u128(n.network());
    let off = if idx < 0 {
        size.checked_sub(idx.unsigned_abs())?
    } else {
        u128::try_from(idx).ok()?
    };
    if off >= size {
        return None;
    }
    from_u128(base + off, n)
}

fn number(v: &Value) -> Option<i128> {
    if v.kind() != ValueKind::Number {
        return None;
    }
    if v.is_integer() {
        return i128::try_from(v.clone()).ok();
    }
    let f = f64::try_from(v.clone()).ok()?;
    (f.fract() == 0.0).then_some(f as i128)
}

fn query(n: &IpNet, original: &str, q: &Value) -> Value {
    let is_single = size(n) == 1;
    if let Some(i) = number(q).or_else(|| q.as_str().and_then(|s| s.parse::<i128>().ok())) {
        if is_single {
            return Value::from(n.addr().to_string());
        }
        return match nth(n, i) {
            Some(a) => Value::from(format!("{a}/{}", n.prefix_len())),
            None => Value::from(false),
        };
    }
    let q = q.as_str().unwrap_or_default();
    match q {
        "" => Value::from(original.trim()),
        "address" | "ip" => {
            if !is_single && n.addr() == n.network() {
                return Value::from(false);
            }
            Value::from(n.addr().to_string())
        }
        "network" | "net_address" => Value::from(n.network().to_string()),
        "prefix" => Value::from(i64::from(n.prefix_len())),
        "size" => match i64::try_from(size(n)) {
            Ok(s) => Value::from(s),
            Err(_) => Value::from(size(n)),
        },
        "netmask" => Value::from(n.netmask().to_string()),
        "hostmask" => Value::from(n.hostmask().to_string()),
        "broadcast" => {
            if is_single || (matches!(n, IpNet::V4(_)) && n.prefix_len() >= 31) {
                return Value::from(false);
            }
            Value::from(n.broadcast().to_string())
        }
        "subnet" | "cidr" => Value::from(format!("{}/{}", n.network(), n.prefix_len())),
        "net" if n.addr() == n.network() && !is_single => {
            Value::from(format!("{}/{}", n.network(), n.prefix_len()))
        }
        "host" if is_single || n.addr() != n.network() => {
            Value::from(format!("{}/{}", n.addr(), n.prefix_len()))
        }
        "host/prefix" | "address/prefix" => {
            if is_single || n.addr() == n.network() {
                return Value::from(false);
            }
            Value::from(format!("{}/{}", n.addr(), n.prefix_len()))
        }
        "version" => Value::from(if matches!(n, IpNet::V4(_)) { 4 } else { 6 }),
        "ipv4" => match n {
            IpNet::V4(_) => Value::from(original.trim()),
            IpNet::V6(_) => Value::from(false),
        },
        "ipv6" => match n {
            IpNet::V6(_) => Value::from(original.trim()),
            IpNet::V4(v4) => Value::from(format!(
                "{}/{}",
                v4.addr().to_ipv6_mapped(),
                96 + u32::from(v4.prefix_len())
            )),
        },
        "private" => {
            let private = match n.addr() {
                IpAddr::V4(a) => a.is_private(),
                IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00,
            };
            if private {
                Value::from(original.trim())
            } else {
                Value::from(false)
            }
        }
        "public" => {
            let private = match n.addr() {
                IpAddr::V4(a) => a.is_private() || a.is_loopback() || a.is_link_local(),
                IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00 || a.is_loopback(),
            };
            if private {
                Value::from(false)
            } else {
                Value::from(original.trim())
            }
        }
        "first_usable" => match nth(n, if size(n) > 2 { 1 } else { 0 }) {
            Some(a) => Value::from(a.to_string()),
            None => Value::from(false),
        },
        "last_usable" => match nth(n, if size(n) > 2 { -2 } else { -1 }) {
            Some(a) => Value::from(a.to_string()),
            None => Value::from(false),
        },
        _ => Value::from(false),
    }
}

fn apply(value: &Value, q: &Value, version: Option<u8>) -> Result<Value, Error> {
    if value.kind() == ValueKind::Seq {
        let mut out = Vec::new();
        for item in value.try_iter()? {
            let r = apply(&item, q, version)?;
            if r.is_true() {
                out.push(r);
            }
        }
        return Ok(Value::from(out));
    }
    let s = match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        ValueKind::Number => text(value)?,
        _ => return Ok(Value::from(false)),
    };
    let Some(n) = parse(&s) else {
        return Ok(Value::from(false));
    };
    match (version, &n) {
        (Some(4), IpNet::V6(_)) | (Some(6), IpNet::V4(_)) if q.as_str() != Some("ipv6") => {
            return Ok(Value::from(false));
        }
        _ => {}
    }
    Ok(query(&n, &s, q))
}

/// `ipaddr(query)`.
pub(crate) fn ipaddr_filter(value: Value, q: Option<Value>) -> Result<Value, Error> {
    apply(&value, &q.unwrap_or_else(|| Value::from("")), None)
}

/// `ipv4(query)`.
pub(crate) fn ipv4_filter(value: Value, q: Option<Value>) -> Result<Value, Error> {
    apply(&value, &q.unwrap_or_else(|| Value::from("")), Some(4))
}

/// `ipv6(query)`.
pub(crate) fn ipv6_filter(value: Value, q: Option<Value>) -> Result<Value, Error> {
    apply(&value, &q.unwrap_or_else(|| Value::from("")), Some(6))
}

/// `ipmath(amount)`: the address `amount` after (or before) the value's.
pub(crate) fn ipmath_filter(value: Value, amount: i64) -> Result<Value, Error> {
    let s = text(&value)?;
    let n = parse(&s).ok_or_else(|| {
        Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("ipmath: '{s}' is not an address"),
        )
    })?;
    let base = to_u128(n.addr()) as i128 + i128::from(amount);
    let addr = u128::try_from(base).ok().and_then(|b| from_u128(b, &n));
    Ok(addr.map_or(Value::from(false), |a| Value::from(a.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netcommon_queries() {
        let net = Value::from("172.20.0.0/16");
        let check = |v: Value, q: Value, expected: &str| {
            assert_eq!(
                ipaddr_filter(v, Some(q))
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                expected
            );
        };
        check(net.clone(), Value::from(32768.0), "172.20.128.0/16");
        check(
            Value::from("172.20.128.0/16"),
            Value::from("address"),
            "172.20.128.0",
        );
        check(net.clone(), Value::from("size"), "65536");
        check(net.clone(), Value::from("address"), "False");
        check(
            Value::from("fd00:1::/64"),
            Value::from(9.223372036854776e18),
            "fd00:1:0:0:8000::/64",
        );
    }
}
