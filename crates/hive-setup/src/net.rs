//! Docker's internal networks carved from `internal_cidr`, split as the
//! original does: quarters for the overlay and ingress networks, eighths for
//! the bridges.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The internal networks derived from `internal_cidr`.
///
/// ```
/// use hive_setup::InternalNetworks;
/// let n = InternalNetworks::split("172.31.250.0/24".parse().unwrap());
/// assert_eq!(n.overlay.to_string(), "172.31.250.0/26");
/// assert_eq!(n.ingress.to_string(), "172.31.250.64/26");
/// assert_eq!(n.docker_gwbridge.to_string(), "172.31.250.128/27");
/// assert_eq!(n.bip, "172.31.250.161/27");
/// assert_eq!(n.registry.to_string(), "172.31.250.192/27");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalNetworks {
    /// First quarter: the services' overlay networks (swarm address pool).
    pub overlay: Ipv4Net,
    /// Second quarter: the ingress network.
    pub ingress: Ipv4Net,
    /// The ingress network's gateway: the second quarter's first address + 1.
    pub ingress_gateway: Ipv4Addr,
    /// Fifth eighth: `docker_gwbridge`.
    pub docker_gwbridge: Ipv4Net,
    /// Sixth eighth: `docker0`, as `--bip` wants it (first host address and
    /// prefix).
    pub bip: String,
    /// Seventh eighth: the repository server's local networks (the
    /// registry's), Docker's `default-address-pools` base.
    pub registry: Ipv4Net,
    /// Eighth eighth: reserved for the monitoring containers (zabbix).
    pub monitoring: Ipv4Net,
}

fn part(cidr: Ipv4Net, index: u32, extra_prefix: u8) -> Ipv4Net {
    let size = 1u64 << (32 - cidr.prefix_len());
    let step = size >> extra_prefix;
    let base = u32::from(cidr.network()) as u64 + step * index as u64;
    // The prefix cannot overflow: `internal_cidr` is validated to /24 or larger.
    Ipv4Net::new(
        Ipv4Addr::from(base as u32),
        cidr.prefix_len() + extra_prefix,
    )
    .unwrap_or(cidr)
}

impl InternalNetworks {
    /// Split `cidr` (at most /24).
    pub fn split(cidr: Ipv4Net) -> Self {
        let cidr = cidr.trunc();
        let ingress = part(cidr, 1, 2);
        let docker0 = part(cidr, 5, 3);
        InternalNetworks {
            overlay: part(cidr, 0, 2),
            ingress,
            ingress_gateway: Ipv4Addr::from(u32::from(ingress.network()) + 1),
            docker_gwbridge: part(cidr, 4, 3),
            bip: format!(
                "{}/{}",
                Ipv4Addr::from(u32::from(docker0.network()) + 1),
                docker0.prefix_len()
            ),
            registry: part(cidr, 6, 3),
            monitoring: part(cidr, 7, 3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_original() {
        fn check(cidr: &str, expected: [&str; 6]) {
            let n = InternalNetworks::split(cidr.parse().unwrap());
            assert_eq!(
                [
                    n.overlay.to_string(),
                    n.ingress.to_string(),
                    n.docker_gwbridge.to_string(),
                    n.bip.clone(),
                    n.registry.to_string(),
                    n.monitoring.to_string(),
                ],
                expected.map(String::from),
                "{cidr}"
            );
        }
        check(
            "172.20.0.0/16",
            [
                "172.20.0.0/18",
                "172.20.64.0/18",
                "172.20.128.0/19",
                "172.20.160.1/19",
                "172.20.192.0/19",
                "172.20.224.0/19",
            ],
        );
        check(
            "10.1.2.0/24",
            [
                "10.1.2.0/26",
                "10.1.2.64/26",
                "10.1.2.128/27",
                "10.1.2.161/27",
                "10.1.2.192/27",
                "10.1.2.224/27",
            ],
        );
        // Host bits are ignored.
        check(
            "10.1.2.7/24",
            [
                "10.1.2.0/26",
                "10.1.2.64/26",
                "10.1.2.128/27",
                "10.1.2.161/27",
                "10.1.2.192/27",
                "10.1.2.224/27",
            ],
        );
        assert_eq!(
            InternalNetworks::split("10.1.2.0/24".parse().unwrap()).ingress_gateway,
            "10.1.2.65".parse::<Ipv4Addr>().unwrap()
        );
    }
}
