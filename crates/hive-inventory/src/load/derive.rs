//! The inventory entries a validated stage gives: the stage's own
//! variables, the mother machine's and each server's, in the original's
//! order.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use crate::inventory::InventoryData;
use crate::model::*;
use crate::yaml::Node;

use super::common::{origin, sval};

/// Sets the inventory entries of a validated stage, in the original's order.
pub(super) fn derive_stage(
    inv: &mut InventoryData,
    file: &Path,
    site: &str,
    stage: &Stage,
    servers: &[Server],
    node: &Node,
) {
    let sn = stage.name.as_str();
    inv.add_group(sn);
    let o = |k: &str| origin(file, node.get(k).unwrap_or(node));
    inv.set_variable(
        sn,
        "hive_provider",
        sval(stage.provider.as_str()),
        &o("provider"),
    );
    inv.set_variable(
        sn,
        "hive_custom_hostname",
        sval(&stage.custom_hostname),
        &o("custom_hostname"),
    );
    derive_mother(inv, file, site, stage, node);
    let swarm_master = servers
        .iter()
        .filter(|s| s.role.is_hive())
        .nth(stage.first_hive)
        .map(|s| s.name.clone());
    for server in servers {
        derive_server(inv, file, sn, server, node);
    }
    if let Some(master) = swarm_master {
        for server in servers.iter().filter(|s| s.role.is_hive()) {
            inv.set_variable(
                &server.name,
                "hive_swarm_master",
                sval(&master),
                &origin(file, node),
            );
        }
        inv.add_host(&master, "first_hive");
    }
}

/// The stage's mother host and its variables: the network and the
/// settings build-infra reads there.
fn derive_mother(inv: &mut InventoryData, file: &Path, site: &str, stage: &Stage, node: &Node) {
    let sn = stage.name.as_str();
    let o = |k: &str| origin(file, node.get(k).unwrap_or(node));
    let attr = |k: &str| node.get(k).map(Node::to_value);
    let mother = format!("{}mother.{site}", stage.name.prefix());
    inv.add_host(&mother, "mother");
    inv.add_host(&mother, sn);
    copy_settings(inv, file, node, &mother, MOTHER_SETTINGS);
    let subnets_value = match node.get("subnets") {
        Some(s) => s.to_value(),
        None => {
            let mut m = Mapping::new();
            m.insert(sval("cidr"), attr("cidr").unwrap_or(Value::Null));
            m.insert(sval("name"), sval(&format!("{site}-default")));
            Value::Sequence(vec![Value::Mapping(m)])
        }
    };
    inv.set_variable(
        &mother,
        "hive_subnets",
        subnets_value,
        &o(if node.get("subnets").is_some() {
            "subnets"
        } else {
            "cidr"
        }),
    );
}

/// A server of the stage in its groups, with the stage settings of its
/// role and its address.
fn derive_server(inv: &mut InventoryData, file: &Path, sn: &str, server: &Server, node: &Node) {
    let o = |k: &str| origin(file, node.get(k).unwrap_or(node));
    let attr = |k: &str| node.get(k).map(Node::to_value);
    let h = server.name.as_str();
    inv.add_host(h, sn);
    copy_settings(inv, file, node, h, SERVER_SETTINGS);
    if server.role.is_hive() {
        inv.add_host(h, "hives");
        copy_settings(inv, file, node, h, HIVE_SETTINGS);
    }
    if server.role.is_repository() {
        inv.add_host(h, "repository");
        copy_settings(inv, file, node, h, REPOSITORY_SETTINGS);
    }
    if let Some(v) = attr("image_name") {
        inv.set_variable(h, "hive_vm_image_name", v, &o("image_name"));
    }
    let o_net = o(if node.get("subnets").is_some() {
        "subnets"
    } else {
        "cidr"
    });
    inv.set_variable(h, "hive_subnet", sval(&server.subnet), &o_net);
    if let Some(az) = &server.available_zone {
        inv.set_variable(h, "hive_available_zone", az.clone(), &o("region"));
    }
    let o_ip = if node.get("ip_address_list").is_some() {
        o("ip_address_list")
    } else {
        o_net.clone()
    };
    inv.set_variable(
        h,
        "hive_private_ip",
        sval(&server.private_ip.to_string()),
        &o_ip,
    );
    inv.set_variable(h, "hive_netmask", sval(&server.netmask.to_string()), &o_net);
}

/// Stage settings set as variables of the mother host.
const MOTHER_SETTINGS: &[(&str, &str)] = &[
    ("cidr", "hive_cidr"),
    ("prepared_resource_group", "hive_prepared_resource_group"),
    ("not_support_az", "hive_not_support_az"),
    ("region", "hive_region"),
    ("bridge", "hive_bridge"),
    ("dev", "hive_dev"),
    ("kickstart_config", "hive_kickstart_config"),
    ("filestore_cidr", "hive_filestore_cidr"),
    ("shared_repository", "hive_shared_repository"),
];

/// Stage settings set as variables of every server.
const SERVER_SETTINGS: &[(&str, &str)] = &[
    ("root_password", "hive_root_password"),
    ("kernel_version", "hive_kernel_version"),
    ("drbd_download_url", "hive_drbd_download_url"),
    ("internal_cidr", "hive_internal_cidr"),
    ("internal_cidr_v6", "hive_internal_cidr_v6"),
    ("kms_key_id", "hive_kms_key_id"),
    ("shared_repository", "hive_shared_repository"),
];

/// Stage settings set as variables of the hives.
const HIVE_SETTINGS: &[(&str, &str)] = &[
    ("memory_size", "hive_memory_size"),
    ("cpus", "hive_cpus"),
    ("disk_size", "hive_disk_size"),
    ("disk_encrypted", "hive_disk_encrypted"),
    ("instance_type", "hive_instance_type"),
    ("mirrored_disk_size", "hive_mirrored_disk_size"),
    ("mirrored_disk_encrypted", "hive_mirrored_disk_encrypted"),
];

/// Stage settings set as variables of the repository server.
const REPOSITORY_SETTINGS: &[(&str, &str)] = &[
    ("repository_memory_size", "hive_memory_size"),
    ("repository_cpus", "hive_cpus"),
    ("repository_disk_size", "hive_disk_size"),
    ("repository_disk_encrypted", "hive_disk_encrypted"),
    ("repository_instance_type", "hive_instance_type"),
];

/// Sets each of `settings` (stage key, variable) present on the stage as
/// that variable of `host`.
fn copy_settings(
    inv: &mut InventoryData,
    file: &Path,
    node: &Node,
    host: &str,
    settings: &[(&str, &str)],
) {
    for (k, var) in settings {
        if let Some(v) = node.get(k) {
            inv.set_variable(host, var, v.to_value(), &origin(file, v));
        }
    }
}
