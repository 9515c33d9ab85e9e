//! build-networks: the stage's overlay networks.

use std::collections::HashMap;

use bollard::models::{Ipam, IpamConfig, Network};
use bollard::network::{CreateNetworkOptions, ListNetworksOptions};
use ipnet::Ipv4Net;

use crate::Error;
use crate::definition::{NetworkDefinition, StageContext};
use crate::hive::Hive;
use crate::report::{Change, Report, ResourceChange, ResourceKind};

/// The subnet of `hive_default_network` when it has no IPAM configuration:
/// the network address of `internal_cidr` with a prefix two bits longer
/// (its first quarter), as hive-builder does.
///
/// ```
/// let cidr: ipnet::Ipv4Net = "10.254.0.0/16".parse().unwrap();
/// assert_eq!(hive_swarm::default_network_subnet(cidr).to_string(), "10.254.0.0/18");
/// ```
pub fn default_network_subnet(internal_cidr: Ipv4Net) -> Ipv4Net {
    let prefix = (internal_cidr.prefix_len() + 2).min(32);
    Ipv4Net::new(internal_cidr.network(), prefix)
        .map(|n| n.trunc())
        .unwrap_or(internal_cidr)
}

/// The create options of one network of the stage.
pub fn network_options(
    name: &str,
    definition: &NetworkDefinition,
    stage: &StageContext,
) -> Result<CreateNetworkOptions<String>, Error> {
    if let Some(driver) = &definition.driver {
        if driver != "overlay" {
            return Err(Error::InvalidNetwork {
                network: name.to_string(),
                key: "driver".to_string(),
                message: format!("{driver:?} is not possible: stage networks are overlay networks"),
            });
        }
    }
    let ipam_def = definition.ipam.clone().unwrap_or_default();
    let mut config: Vec<IpamConfig> = ipam_def
        .config
        .iter()
        .map(|p| IpamConfig {
            subnet: p.subnet.clone(),
            ip_range: p.iprange.clone(),
            gateway: p.gateway.clone(),
            auxiliary_addresses: if p.aux_addresses.is_empty() {
                None
            } else {
                Some(p.aux_addresses.clone().into_iter().collect())
            },
        })
        .collect();
    if config.is_empty() && name == stage.default_network {
        if let Some(cidr) = stage.internal_cidr {
            config.push(IpamConfig {
                subnet: Some(default_network_subnet(cidr).to_string()),
                ..Default::default()
            });
        }
    }
    Ok(CreateNetworkOptions {
        name: name.to_string(),
        check_duplicate: true,
        driver: "overlay".to_string(),
        attachable: definition.attachable.unwrap_or(true),
        ipam: Ipam {
            driver: ipam_def.driver.clone(),
            config: if config.is_empty() {
                None
            } else {
                Some(config)
            },
            options: if ipam_def.options.is_empty() {
                None
            } else {
                Some(
                    ipam_def
                        .options
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_docker_string()))
                        .collect(),
                )
            },
        },
        options: definition
            .driver_opts
            .iter()
            .map(|(k, v)| (k.clone(), v.to_docker_string()))
            .collect(),
        ..Default::default()
    })
}

/// What an existing network lacks of its create options.
fn network_differences(want: &CreateNetworkOptions<String>, have: &Network) -> Vec<String> {
    let mut out = Vec::new();
    if have.driver.as_deref() != Some("overlay") {
        out.push(format!("driver {:?}", have.driver.as_deref().unwrap_or("")));
    }
    if have.attachable.unwrap_or(false) != want.attachable {
        out.push(format!("attachable {}", have.attachable.unwrap_or(false)));
    }
    let have_opts = have.options.clone().unwrap_or_default();
    for (k, v) in &want.options {
        if have_opts.get(k) != Some(v) {
            out.push(format!("driver option {k}"));
        }
    }
    let have_subnets: Vec<String> = have
        .ipam
        .as_ref()
        .and_then(|i| i.config.as_ref())
        .map(|c| c.iter().filter_map(|p| p.subnet.clone()).collect())
        .unwrap_or_default();
    for p in want.ipam.config.iter().flatten() {
        if let Some(s) = &p.subnet {
            if !have_subnets.contains(s) {
                out.push(format!("subnet {s} (it has {})", have_subnets.join(", ")));
            }
        }
    }
    out
}

/// build-networks: create the stage's overlay networks (and
/// `hive_default_network`) on the swarm `manager`; an existing network is
/// left alone when it matches its definition.
///
/// Networks are never removed (hive-builder keeps them on `-D` too). With
/// `check`, only the plan is computed.
pub async fn build_networks(
    manager: &Hive,
    stage: &StageContext,
    check: bool,
) -> Result<Report, Error> {
    let manager = manager.negotiated().await?;
    let default_def = NetworkDefinition::default();
    let mut wanted = Vec::new();
    for name in stage.network_names() {
        let def = stage.networks.get(&name).unwrap_or(&default_def);
        wanted.push(network_options(&name, def, stage)?);
    }
    let existing = manager
        .docker
        .list_networks(Some(ListNetworksOptions::<String> {
            filters: HashMap::new(),
        }))
        .await
        .map_err(|e| Error::docker(&manager.name, "list networks", e))?;
    let by_name: HashMap<String, Network> = existing
        .into_iter()
        .filter(|n| n.scope.as_deref() == Some("swarm"))
        .filter_map(|n| n.name.clone().map(|name| (name, n)))
        .collect();
    let mut report = Report {
        check,
        resources: Vec::new(),
    };
    for want in wanted {
        let change = match by_name.get(&want.name) {
            Some(have) => {
                let differences = network_differences(&want, have);
                if !differences.is_empty() {
                    return Err(Error::NetworkDiffers {
                        network: want.name.clone(),
                        differences: differences.join(", "),
                    });
                }
                Change::Unchanged
            }
            None => {
                if !check {
                    let name = want.name.clone();
                    manager
                        .docker
                        .create_network(want.clone())
                        .await
                        .map_err(|e| {
                            Error::docker(&manager.name, format!("create network {name}"), e)
                        })?;
                }
                Change::Created
            }
        };
        report.resources.push(ResourceChange {
            kind: ResourceKind::Network,
            name: want.name,
            hive: None,
            change,
        });
    }
    Ok(report)
}
