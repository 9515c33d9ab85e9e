//! The swarm step's parameters: `docker_gwbridge` and ingress subnets from
//! `internal_cidr`, init on the first hive, the other hives joined as
//! managers, node labels from the servers' groups.
//!
//! The step talks to the hives' Docker engines with the cluster API of
//! `hive-swarm` ([`hive_swarm::Engine`]), reached through the
//! [`EngineConnector`](super::EngineConnector) given to the phase; this
//! module derives what it asks for and words what it changed.

use std::net::{Ipv4Addr, SocketAddr};

use hive_swarm::{SWARM_PORT, SwarmInit, SwarmJoin};
use ipnet::Ipv4Net;

use super::error::SetupHostsError;
use super::net::InternalNetworks;
use super::params::{Server, SetupHostsParams};

/// The subnet of `docker_gwbridge` and the `internal_cidr` it comes from.
pub(crate) fn gwbridge(p: &SetupHostsParams) -> Option<(Ipv4Net, Ipv4Net)> {
    p.internal_cidr
        .map(|cidr| (InternalNetworks::split(cidr).docker_gwbridge, cidr))
}

/// How the first hive initialises the swarm: advertising its private
/// address, with the overlay quarter of `internal_cidr` as the address
/// pool, carved in subnets two bits longer (between /24 and /29).
pub(crate) fn init(p: &SetupHostsParams, first: &Server) -> SwarmInit {
    let mut init = SwarmInit::new(first.private_ip.into());
    if let Some(cidr) = p.internal_cidr {
        let overlay = InternalNetworks::split(cidr).overlay;
        init.default_addr_pool = vec![overlay];
        init.subnet_size = Some((overlay.prefix_len() + 2).clamp(24, 29));
    }
    init
}

/// The ingress network's subnet and gateway.
pub(crate) fn ingress(p: &SetupHostsParams) -> Option<(Ipv4Net, Ipv4Addr)> {
    p.internal_cidr.map(|cidr| {
        let n = InternalNetworks::split(cidr);
        (n.ingress, n.ingress_gateway)
    })
}

/// How `server` joins the swarm of `first`.
pub(crate) fn join(server: &Server, first: &Server) -> SwarmJoin {
    SwarmJoin::new(
        server.private_ip.into(),
        SocketAddr::new(first.private_ip.into(), SWARM_PORT).to_string(),
    )
}

/// The node labels of a hive: `<group>=true` for each of its groups.
pub(crate) fn labels(server: &Server) -> Vec<(String, String)> {
    server
        .groups
        .iter()
        .map(|g| (g.clone(), "true".to_string()))
        .collect()
}

/// What the step reports for a label set on `server`'s node.
pub(crate) fn label_change(server: &Server, label: &str) -> String {
    format!("node {} label {label}", server.hostname())
}

/// The phase's error for a cluster operation that failed on `host`.
pub(crate) fn error(host: &str, e: hive_swarm::Error) -> SetupHostsError {
    if matches!(e, hive_swarm::Error::SubnetMismatch { .. }) {
        return SetupHostsError::Params {
            key: "internal_cidr".into(),
            reason: e.to_string(),
        };
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    if e.is_unreachable() {
        SetupHostsError::Unreachable {
            host: host.to_string(),
            reason: text,
        }
    } else {
        SetupHostsError::Remote {
            host: host.to_string(),
            what: "the swarm's Docker API".into(),
            status: e.engine_status().map_or(1, i32::from),
            stderr: text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ServerRole;

    fn hive(n: u8) -> Server {
        Server {
            name: format!("hive{n}.pdns"),
            role: ServerRole::Hive,
            private_ip: format!("10.0.0.{}", 10 + n).parse().unwrap(),
            groups: vec!["hives".into(), format!("zone{n}")],
        }
    }

    #[test]
    fn init_join_and_networks_from_internal_cidr() {
        let mut p = SetupHostsParams::new("private", "pdns", "/tmp", vec![hive(0), hive(1)]);
        let plain = init(&p, &p.servers[0]);
        assert_eq!(plain.advertise_addr.to_string(), "10.0.0.10");
        assert!(plain.default_addr_pool.is_empty() && plain.subnet_size.is_none());
        assert_eq!((gwbridge(&p), ingress(&p)), (None, None));

        fn check(cidr: &str, pool: &str, size: u8, gw: &str, ingress_net: &str, ingress_gw: &str) {
            let mut p = SetupHostsParams::new("private", "pdns", "/tmp", vec![hive(0)]);
            p.internal_cidr = Some(cidr.parse().unwrap());
            let i = init(&p, &p.servers[0]);
            assert_eq!(i.default_addr_pool[0].to_string(), pool, "{cidr}");
            assert_eq!(i.subnet_size, Some(size), "{cidr}");
            let (bridge, from) = gwbridge(&p).unwrap();
            assert_eq!(
                (bridge.to_string(), from.to_string()),
                (gw.into(), cidr.into())
            );
            let (net, gateway) = ingress(&p).unwrap();
            assert_eq!(
                (net.to_string(), gateway.to_string()),
                (ingress_net.into(), ingress_gw.into())
            );
        }
        check(
            "172.31.250.0/24",
            "172.31.250.0/26",
            28,
            "172.31.250.128/27",
            "172.31.250.64/26",
            "172.31.250.65",
        );
        check(
            "10.231.0.0/16",
            "10.231.0.0/18",
            24,
            "10.231.128.0/19",
            "10.231.64.0/18",
            "10.231.64.1",
        );
        check(
            "10.0.0.0/8",
            "10.0.0.0/10",
            24,
            "10.128.0.0/11",
            "10.64.0.0/10",
            "10.64.0.1",
        );

        p.internal_cidr = Some("172.31.250.0/24".parse().unwrap());
        let j = join(&p.servers[1], &p.servers[0]);
        assert_eq!(j.advertise_addr.to_string(), "10.0.0.11");
        assert_eq!(j.remote_addr, "10.0.0.10:2377");
        let l = labels(&p.servers[1]);
        assert_eq!(
            l,
            [
                ("hives".to_string(), "true".to_string()),
                ("zone1".to_string(), "true".to_string())
            ]
        );
        assert_eq!(
            label_change(&p.servers[1], "zone1=true"),
            "node hive1 label zone1=true"
        );
    }

    #[test]
    fn a_subnet_mismatch_is_a_parameter_error_naming_internal_cidr() {
        let e = error(
            "hive1.pdns",
            hive_swarm::Error::SubnetMismatch {
                hive: "hive1.pdns".into(),
                network: "docker_gwbridge",
                have: "10.1.128.0/19".into(),
                want: "10.2.128.0/19".parse().unwrap(),
                internal_cidr: "10.2.0.0/16".parse().unwrap(),
                reason: "the hive is in a swarm (state active)".into(),
            },
        );
        let text = e.to_string();
        assert!(
            text.starts_with("invalid setup-hosts parameter internal_cidr: hive hive1.pdns: network docker_gwbridge has subnet 10.1.128.0/19, but internal_cidr 10.2.0.0/16 asks for 10.2.128.0/19"),
            "{text}"
        );
        let e = error(
            "hive1.pdns",
            hive_swarm::Error::EngineApi {
                hive: "hive1.pdns".into(),
                action: "join the swarm of 10.0.0.10:2377 as a manager".into(),
                status: 503,
                message: "timeout was reached".into(),
            },
        );
        assert!(
            matches!(e, SetupHostsError::Remote { status: 503, .. }),
            "{e:?}"
        );
    }
}
