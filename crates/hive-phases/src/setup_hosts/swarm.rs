//! The swarm step: `docker_gwbridge` and ingress subnets from
//! `internal_cidr`, init on the first hive, the other hives joined as
//! managers, node labels from the servers' groups.
//!
//! It drives the docker CLI on the servers over the same shell as the other
//! steps (the servers' engines answer on their local socket, so no client
//! certificate leaves the mother machine). The cluster API proper (services,
//! networks, node inspection from the mother machine over the TLS API with
//! bollard) belongs in `hive-swarm`.

use super::item::Item;
use super::net::InternalNetworks;
use super::params::{Server, SetupHostsParams};
use super::shell::quote;

fn subnet_check(network: &str, subnet: &str) -> String {
    format!(
        "[ \"$(docker network inspect -f '{{{{range .IPAM.Config}}}}{{{{.Subnet}}}}{{{{end}}}}' {network} 2>/dev/null)\" = {subnet} ]"
    )
}

/// Items on every hive before it joins: the `docker_gwbridge` network.
pub(crate) fn gwbridge_items(p: &SetupHostsParams) -> Vec<Item> {
    let Some(cidr) = p.internal_cidr else {
        return Vec::new();
    };
    let subnet = InternalNetworks::split(cidr).docker_gwbridge.to_string();
    vec![Item::state(
        format!("network docker_gwbridge {subnet}"),
        subnet_check("docker_gwbridge", &subnet),
        format!(
            "docker network rm docker_gwbridge >/dev/null 2>&1 || true; \
docker network create --subnet {subnet} --opt com.docker.network.bridge.name=docker_gwbridge \
--opt com.docker.network.bridge.enable_icc=false --opt com.docker.network.bridge.enable_ip_masquerade=true docker_gwbridge >/dev/null"
        ),
    )]
}

const SWARM_ACTIVE: &str =
    "[ \"$(docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null)\" = active ]";

/// The swarm's address pool options for `swarm init`.
pub(crate) fn init_command(p: &SetupHostsParams, first: &Server) -> String {
    let mut s = format!("docker swarm init --advertise-addr {}", first.private_ip);
    if let Some(cidr) = p.internal_cidr {
        let n = InternalNetworks::split(cidr);
        let mask = (n.overlay.prefix_len() + 2).clamp(24, 29);
        s.push_str(&format!(
            " --default-addr-pool {} --default-addr-pool-mask-length {mask}",
            n.overlay
        ));
    }
    s.push_str(" >/dev/null");
    s
}

/// Items on the first hive: init, then the ingress network.
pub(crate) fn init_items(p: &SetupHostsParams, first: &Server) -> Vec<Item> {
    let mut items = vec![Item::state(
        "swarm initialised",
        SWARM_ACTIVE,
        init_command(p, first),
    )];
    if let Some(cidr) = p.internal_cidr {
        let n = InternalNetworks::split(cidr);
        let subnet = n.ingress.to_string();
        items.push(Item::state(
            format!("network ingress {subnet}"),
            subnet_check("ingress", &subnet),
            format!(
                "echo y | docker network rm ingress >/dev/null 2>&1 || true; i=0; \
until docker network create --driver overlay --ingress --subnet {subnet} --gateway {gw} ingress >/dev/null 2>&1; do \
i=$((i+1)); [ $i -lt 30 ] || {{ echo 'cannot recreate the ingress network' >&2; exit 1; }}; sleep 0.5; done",
                gw = n.ingress_gateway
            ),
        ));
    }
    items
}

/// The item that joins a hive as a manager with `token`.
pub(crate) fn join_item(server: &Server, first: &Server, token: &str) -> Item {
    Item::state(
        "swarm joined as manager",
        SWARM_ACTIVE,
        format!(
            "docker swarm join --token \"$(cat)\" --advertise-addr {} {}:2377 >/dev/null",
            server.private_ip, first.private_ip
        ),
    )
    .with_stdin(token.as_bytes().to_vec())
}

/// Items on the first hive: a `<group>=true` label per group of each hive.
pub(crate) fn label_items(p: &SetupHostsParams, hives: &[&Server]) -> Vec<Item> {
    let _ = p;
    let mut items = Vec::new();
    for h in hives {
        let node = quote(h.hostname());
        for g in &h.groups {
            let label = format!("{g}=true");
            items.push(Item::state(
                format!("node {} label {label}", h.hostname()),
                format!(
                    "[ \"$(docker node inspect -f '{{{{index .Spec.Labels \"{g}\"}}}}' {node})\" = true ]"
                ),
                format!("docker node update --label-add {} {node} >/dev/null", quote(&label)),
            ));
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup_hosts::params::ServerRole;

    fn hive(n: u8) -> Server {
        Server {
            name: format!("hive{n}.pdns"),
            role: ServerRole::Hive,
            private_ip: format!("10.0.0.{}", 10 + n).parse().unwrap(),
            groups: vec!["hives".into(), format!("zone{n}")],
        }
    }

    #[test]
    fn init_and_join_commands() {
        let mut p = SetupHostsParams::new("private", "pdns", "/tmp", vec![hive(0), hive(1)]);
        assert_eq!(
            init_command(&p, &p.servers[0]),
            "docker swarm init --advertise-addr 10.0.0.10 >/dev/null"
        );
        p.internal_cidr = Some("172.31.250.0/24".parse().unwrap());
        assert_eq!(
            init_command(&p, &p.servers[0]),
            "docker swarm init --advertise-addr 10.0.0.10 --default-addr-pool 172.31.250.0/26 --default-addr-pool-mask-length 28 >/dev/null"
        );
        let items = init_items(&p, &p.servers[0]);
        assert_eq!(items[1].describe(), "network ingress 172.31.250.64/26");
        assert_eq!(
            gwbridge_items(&p)[0].describe(),
            "network docker_gwbridge 172.31.250.128/27"
        );
        let j = join_item(&p.servers[1], &p.servers[0], "SWMTKN-1-x");
        let scripts = crate::setup_hosts::item::apply_scripts(std::slice::from_ref(&j), &[true]);
        assert!(
            scripts[0]
                .0
                .contains("--advertise-addr 10.0.0.11 10.0.0.10:2377")
        );
        assert!(
            !scripts[0].0.contains("SWMTKN"),
            "the token goes through stdin"
        );
        let hives = [&p.servers[0], &p.servers[1]];
        let labels: Vec<String> = label_items(&p, &hives)
            .iter()
            .map(|i| i.describe())
            .collect();
        assert_eq!(
            labels,
            [
                "node hive0 label hives=true",
                "node hive0 label zone0=true",
                "node hive1 label hives=true",
                "node hive1 label zone1=true"
            ]
        );
    }
}
