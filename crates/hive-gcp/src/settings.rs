//! What the gcp provider builds for a stage, worked out from the stage
//! alone (no API call): names, firewall rules, subnetworks and one
//! instance per server, as hive-builder's `gcp` role derives them.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use hive_provider::cloud::{
    check_subnet, cloud_attributes, cloud_region, cloud_subnets, server_subnet,
};
use hive_provider::{ServerRole, StageSpec};
use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::error::GcpError;

hive_provider::cloud_attributes! {
    /// The `gcp` provider's stage attributes (`hive.yml`).
    ///
    /// Besides these fields, the settings every cloud takes, e.g.
    /// `region: asia-northeast2` and `instance_type: n1-standard-2`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
    pub struct GcpAttributes {
        /// `image_name`: the boot image of every server (hive-builder's
        /// AlmaLinux 9 family when absent).
        pub image_name: Option<String>,
        /// `filestore_cidr`: read by the nfs volumes, not by the provider.
        pub filestore_cidr: Option<serde_json::Value>,
    }
}

/// The stage keys the gcp provider accepts.
pub const ACCEPTED: &[&str] = GcpAttributes::ACCEPTED;

/// The inventory variables the gcp provider reads, as hive-builder's role
/// does: the project's root (where `gcp_credential.json` is), the network
/// name, the sources of SSH, the published ports and the shared
/// repository.
pub const VARIABLES: &[&str] = &[
    "hive_root_dir",
    "hive_vpc_name",
    "hive_gcp_ssh_source_range",
    "hive_published_ports_tcp",
    "hive_published_ports_udp",
    "hive_safe_shared_repository_ports",
    "hive_shared_repository",
];

/// hive-builder's default image (`hive_vm_image_name` unset).
pub const DEFAULT_IMAGE: &str = "projects/almalinux-cloud/global/images/family/almalinux-9";

/// hive-builder's boot disk size in GB when `disk_size` is not set.
pub const DEFAULT_DISK_SIZE: i64 = 25;

/// The MTU of the network, as hive-builder sets it.
pub const MTU: i32 = 1500;

/// What a firewall rule lets in: a protocol and its ports (all when
/// empty).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Allowed {
    /// `tcp`, `udp` or `icmp`.
    pub protocol: String,
    /// Ports or ranges (`22`, `0-65535`); every port when empty.
    pub ports: Vec<String>,
}

impl std::fmt::Display for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ports.is_empty() {
            f.write_str(&self.protocol)
        } else {
            write!(f, "{} {}", self.protocol, self.ports.join(","))
        }
    }
}

/// One firewall rule of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallPlan {
    /// Its name (`internal-<site>`, `ssh-<site>`, `inbound-<site>`).
    pub name: String,
    /// Its description, as hive-builder writes it.
    pub description: String,
    /// Where traffic may come from.
    pub source_ranges: Vec<String>,
    /// What is let in.
    pub allowed: Vec<Allowed>,
}

impl FirewallPlan {
    /// `ssh-pdns (tcp 22 from 0.0.0.0/0)`, for reports.
    pub fn summary(&self) -> String {
        let allowed: Vec<String> = self.allowed.iter().map(|a| a.to_string()).collect();
        format!(
            "{} ({} from {})",
            self.name,
            allowed.join("; "),
            self.source_ranges.join(",")
        )
    }
}

/// One subnetwork to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPlan {
    /// Its name.
    pub name: String,
    /// Its range.
    pub cidr: Ipv4Net,
}

/// One persistent disk of an instance, created with it and deleted with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskPlan {
    /// Its name: `boot-<instance>` or `drbd-<instance>`.
    pub name: String,
    /// Size in GB.
    pub size_gb: i64,
    /// The boot disk (made from the image).
    pub boot: bool,
}

/// One instance to create (one per server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePlan {
    /// Server name (`hive0.pdns`): the instance's host name.
    pub server: String,
    /// The instance name: the server name with dots as hyphens
    /// (`hive0-pdns`).
    pub name: String,
    /// Hive or repository.
    pub role: ServerRole,
    /// Its zone, in the region.
    pub zone: String,
    /// The name of its subnetwork.
    pub subnet: String,
    /// Its private address.
    pub private_ip: Ipv4Addr,
    /// Machine type.
    pub machine_type: String,
    /// The boot image.
    pub image: String,
    /// Boot disk, then the mirrored disk when the server has one.
    pub disks: Vec<DiskPlan>,
    /// The name of its static external address (`gip-<instance>`).
    pub address: String,
}

/// Everything the provider builds for a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpSettings {
    /// The stage name (for messages).
    pub stage: String,
    /// The site's name.
    pub site: String,
    /// `region`.
    pub region: String,
    /// The network's name (`hive_vpc_name`, default `vpc-<site>`).
    pub network: String,
    /// The stage's network (`cidr`): the internal rule's source.
    pub cidr: Ipv4Net,
    /// The firewall rules: internal, ssh, inbound.
    pub firewalls: Vec<FirewallPlan>,
    /// The subnetworks, in the inventory's order.
    pub subnets: Vec<SubnetPlan>,
    /// One instance per server, in stage order.
    pub instances: Vec<InstancePlan>,
    /// The admin account given the stage key through `ssh-keys`.
    pub admin: String,
    /// `hive_root_dir`: where `gcp_credential.json` is looked for.
    pub root_dir: Option<std::path::PathBuf>,
}

/// A site name as part of a Compute Engine name: dots as hyphens, as
/// hive-builder names instances (`pdns.example.com` → `pdns-example-com`).
fn dashed(site: &str) -> String {
    site.replace('.', "-")
}

/// A name Compute Engine accepts: lowercase letters, digits and hyphens,
/// starting with a letter, 63 characters at most.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !name.ends_with('-')
}

impl GcpSettings {
    /// Work out what to build for `stage`, refusing settings the real run
    /// would fail on: a missing region or machine type, a zone outside the
    /// region, a name Compute Engine refuses, a server outside its
    /// subnetwork.
    pub fn from_stage(stage: &StageSpec) -> Result<Self, GcpError> {
        let attrs: GcpAttributes = cloud_attributes(stage, ACCEPTED)?;
        let invalid = |key: &str, message: String| GcpError::from(stage.invalid(key, message));
        let region = cloud_region(stage, attrs.region.as_ref(), "region", "asia-northeast2")?;
        let text_var = |name: &str| stage.text_variable(name);
        let network =
            text_var("hive_vpc_name").unwrap_or_else(|| format!("vpc-{}", dashed(&stage.site)));
        if !valid_name(&network) {
            return Err(invalid(
                "hive_vpc_name",
                format!(
                    "network name {network} is not a Compute Engine name (lowercase letters, digits and hyphens, starting with a letter, 63 at most)"
                ),
            ));
        }
        let subnets = subnet_plans(stage)?;
        let image = attrs
            .image_name
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE.to_string());
        let shared_repository = stage.variables.contains_key("hive_shared_repository");
        let mut instances = Vec::new();
        for server in &stage.servers {
            if shared_repository && server.role == ServerRole::Repository {
                // The repository is the shared one, on another machine.
                continue;
            }
            instances.push(instance_plan(
                stage, &attrs, server, &region, &subnets, &image,
            )?);
        }
        let firewalls = firewall_plans(stage, &network)?;
        if let Some(f) = firewalls.iter().find(|f| !valid_name(&f.name)) {
            return Err(invalid(
                "name",
                format!(
                    "firewall rule name {} is not a Compute Engine name (lowercase letters, digits and hyphens, starting with a letter, 63 at most)",
                    f.name
                ),
            ));
        }
        Ok(GcpSettings {
            stage: stage.stage.clone(),
            site: stage.site.clone(),
            firewalls,
            region,
            network,
            cidr: stage.cidr,
            subnets,
            instances,
            admin: stage.admin.user.clone(),
            root_dir: text_var("hive_root_dir").map(std::path::PathBuf::from),
        })
    }
}

/// The instance of one server.
fn instance_plan(
    stage: &StageSpec,
    attrs: &GcpAttributes,
    server: &hive_provider::ServerSpec,
    region: &str,
    subnets: &[SubnetPlan],
    image: &str,
) -> Result<InstancePlan, GcpError> {
    let invalid = |key: &str, message: String| GcpError::from(stage.invalid(key, message));
    let repository = server.role == ServerRole::Repository;
    let (key, machine_type) = if repository && attrs.repository_instance_type.is_some() {
        ("repository_instance_type", &attrs.repository_instance_type)
    } else {
        ("instance_type", &attrs.instance_type)
    };
    let machine_type = machine_type
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            invalid(
                key,
                format!(
                    "server {} needs a machine type: set {key}, e.g. `{key}: n1-standard-2`",
                    server.name
                ),
            )
        })?;
    let zone = server
        .zone
        .clone()
        .filter(|z| !z.is_empty())
        .ok_or_else(|| {
            invalid(
                "subnets",
                format!(
                    "server {} has no zone; give its subnet an available_zone such as {region}-a",
                    server.name
                ),
            )
        })?;
    let in_region = zone
        .strip_prefix(region)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|z| !z.is_empty() && z.chars().all(|c| c.is_ascii_alphanumeric()));
    if !in_region {
        return Err(invalid(
            "subnets",
            format!(
                "server {}: zone {zone} is not a zone of region {region} (e.g. {region}-a)",
                server.name
            ),
        ));
    }
    let subnet = server_subnet(stage, server, subnets, |s| (&s.name, s.cidr))?;
    let name = server.name.replace('.', "-");
    if !valid_name(&name) || name.len() > 58 {
        return Err(invalid(
            "custom_hostname",
            format!(
                "server {}: instance name {name} is not a Compute Engine name (lowercase letters, digits and hyphens, starting with a letter, 58 at most so that its disks' names fit)",
                server.name
            ),
        ));
    }
    let size = |key: &str, size: Option<u64>| -> Result<Option<i64>, GcpError> {
        size.map(|s| {
            i64::try_from(s).ok().filter(|&s| s > 0).ok_or_else(|| {
                invalid(
                    key,
                    format!("server {}: {s} is not a disk size in GB", server.name),
                )
            })
        })
        .transpose()
    };
    let mut disks = vec![DiskPlan {
        name: format!("boot-{name}"),
        size_gb: size("disk_size", server.disk_size)?.unwrap_or(DEFAULT_DISK_SIZE),
        boot: true,
    }];
    if let Some(s) = size("mirrored_disk_size", server.mirrored_disk_size)? {
        disks.push(DiskPlan {
            name: format!("drbd-{name}"),
            size_gb: s,
            boot: false,
        });
    }
    Ok(InstancePlan {
        server: server.name.clone(),
        address: format!("gip-{name}"),
        name,
        role: server.role,
        zone,
        subnet: subnet.name.clone(),
        private_ip: server.private_ip,
        machine_type,
        image: image.to_string(),
        disks,
    })
}

/// The stage's subnetworks, each inside the stage's network, without
/// overlaps, with names Compute Engine accepts.
fn subnet_plans(stage: &StageSpec) -> Result<Vec<SubnetPlan>, GcpError> {
    let invalid = |message: String| GcpError::from(stage.invalid("subnets", message));
    let mut out: Vec<SubnetPlan> = Vec::new();
    for (index, subnet) in cloud_subnets(stage)?.iter().enumerate() {
        if !valid_name(&subnet.name) {
            return Err(invalid(format!(
                "subnet name {} is not a Compute Engine name (lowercase letters, digits and hyphens, starting with a letter, 63 at most)",
                subnet.name
            )));
        }
        check_subnet(stage, index, true)?;
        if subnet.cidr.prefix_len() > 29 {
            return Err(invalid(format!(
                "subnet {} ({}): Compute Engine subnetworks are /29 or larger",
                subnet.name, subnet.cidr
            )));
        }
        out.push(SubnetPlan {
            name: subnet.name.clone(),
            cidr: subnet.cidr,
        });
    }
    Ok(out)
}

/// The ports of list variable `name`, sorted and without duplicates.
fn ports(stage: &StageSpec, name: &str) -> Result<BTreeSet<u16>, GcpError> {
    let ports = stage.ports(name)?;
    Ok(ports.into_iter().collect())
}

/// The three rules of hive-builder's role: everything inside the stage's
/// network (`internal-<site>`), sshd from `hive_gcp_ssh_source_range`
/// (`ssh-<site>`), and the published ports and ICMP from anywhere
/// (`inbound-<site>`).
fn firewall_plans(stage: &StageSpec, network: &str) -> Result<Vec<FirewallPlan>, GcpError> {
    let site = &dashed(&stage.site);
    let allowed = |protocol: &str, ports: Vec<String>| Allowed {
        protocol: protocol.into(),
        ports,
    };
    let ssh_sources: Vec<String> = match stage.variables.get("hive_gcp_ssh_source_range") {
        None => vec!["0.0.0.0/0".into()],
        Some(v) => {
            let text = v.as_str().unwrap_or_default();
            let ranges: Vec<String> = text
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            for r in &ranges {
                r.parse::<Ipv4Net>().map_err(|e| GcpError::from(stage.invalid("hive_gcp_ssh_source_range", format!("{r}: {e}; give address ranges separated by commas, e.g. 203.0.113.0/24,198.51.100.7/32"))))?;
            }
            if ranges.is_empty() {
                return Err(GcpError::from(stage.invalid(
                    "hive_gcp_ssh_source_range",
                    format!("must be address ranges separated by commas, got {v}"),
                )));
            }
            ranges
        }
    };
    let mut tcp = ports(stage, "hive_published_ports_tcp")?;
    tcp.extend(ports(stage, "hive_safe_shared_repository_ports")?);
    let udp = ports(stage, "hive_published_ports_udp")?;
    let list = |set: &BTreeSet<u16>| set.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    // An empty port list would open every port: a protocol without
    // published ports is left out.
    let mut inbound = Vec::new();
    if !tcp.is_empty() {
        inbound.push(allowed("tcp", list(&tcp)));
    }
    inbound.push(allowed("icmp", Vec::new()));
    if !udp.is_empty() {
        inbound.push(allowed("udp", list(&udp)));
    }
    Ok(vec![
        FirewallPlan {
            name: format!("internal-{site}"),
            description: format!("Allow internal traffic on the {network} network"),
            source_ranges: vec![stage.cidr.to_string()],
            allowed: vec![
                allowed("tcp", vec!["0-65535".into()]),
                allowed("udp", vec!["0-65535".into()]),
                allowed("icmp", Vec::new()),
            ],
        },
        FirewallPlan {
            name: format!("ssh-{site}"),
            description: "Allow SSH traffic".into(),
            source_ranges: ssh_sources,
            allowed: vec![allowed("tcp", vec![stage.sshd_port.to_string()])],
        },
        FirewallPlan {
            name: format!("inbound-{site}"),
            description: "Allow inbound traffic for published_port".into(),
            source_ranges: vec!["0.0.0.0/0".into()],
            allowed: inbound,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_provider::{ServerSpec, SubnetSpec};

    pub(crate) fn stage() -> StageSpec {
        let mut s = StageSpec::new(
            "pdns",
            "production",
            "gcp",
            "192.168.0.0/24".parse().unwrap(),
            "/tmp/ctx",
        );
        for (i, (name, cidr, zone)) in [
            ("subnet-a", "192.168.0.0/26", "asia-northeast2-a"),
            ("subnet-b", "192.168.0.64/26", "asia-northeast2-b"),
            ("subnet-c", "192.168.0.128/26", "asia-northeast2-c"),
        ]
        .into_iter()
        .enumerate()
        {
            s.subnets.push(SubnetSpec {
                name: name.into(),
                cidr: cidr.parse().unwrap(),
                zone: None,
            });
            let ip = format!("192.168.0.{}", 64 * i + 5).parse().unwrap();
            let mut server = ServerSpec::new(format!("hive{i}.pdns"), ServerRole::Hive, ip);
            server.subnet = Some(name.into());
            server.zone = Some(zone.into());
            server.mirrored_disk_size = Some(20);
            s.servers.push(server);
        }
        let mut repo = ServerSpec::new(
            "hive3.pdns",
            ServerRole::Repository,
            "192.168.0.6".parse().unwrap(),
        );
        repo.subnet = Some("subnet-a".into());
        repo.zone = Some("asia-northeast2-a".into());
        repo.disk_size = Some(150);
        s.servers.push(repo);
        s.attributes
            .insert("region".into(), "asia-northeast2".into());
        s.attributes
            .insert("instance_type".into(), "n1-standard-2".into());
        s.attributes
            .insert("repository_instance_type".into(), "n1-standard-4".into());
        s
    }

    #[test]
    fn names_rules_and_disks_as_hive_builder() {
        let mut st = stage();
        st.variables.insert(
            "hive_published_ports_tcp".into(),
            serde_json::json!(["53", 80, "53"]),
        );
        st.variables
            .insert("hive_published_ports_udp".into(), serde_json::json!(["53"]));
        let s = GcpSettings::from_stage(&st).unwrap();
        assert_eq!(s.network, "vpc-pdns");
        let rules: Vec<String> = s.firewalls.iter().map(|f| f.summary()).collect();
        assert_eq!(
            rules,
            [
                "internal-pdns (tcp 0-65535; udp 0-65535; icmp from 192.168.0.0/24)",
                "ssh-pdns (tcp 22 from 0.0.0.0/0)",
                "inbound-pdns (tcp 53,80; icmp; udp 53 from 0.0.0.0/0)",
            ]
        );
        assert_eq!(s.instances.len(), 4);
        let i = &s.instances[1];
        assert_eq!(
            (i.name.as_str(), i.address.as_str(), i.zone.as_str()),
            ("hive1-pdns", "gip-hive1-pdns", "asia-northeast2-b")
        );
        assert_eq!(i.machine_type, "n1-standard-2");
        assert_eq!(i.image, DEFAULT_IMAGE);
        assert_eq!(
            i.disks,
            vec![
                DiskPlan {
                    name: "boot-hive1-pdns".into(),
                    size_gb: 25,
                    boot: true
                },
                DiskPlan {
                    name: "drbd-hive1-pdns".into(),
                    size_gb: 20,
                    boot: false
                },
            ]
        );
        let repo = &s.instances[3];
        assert_eq!(repo.machine_type, "n1-standard-4");
        assert_eq!(repo.disks.len(), 1, "the repository has no mirrored disk");
        assert_eq!(repo.disks[0].size_gb, 150);
    }

    #[test]
    fn refuses_what_the_run_would_fail_on() {
        let err = |f: &dyn Fn(&mut StageSpec)| {
            let mut st = stage();
            f(&mut st);
            GcpSettings::from_stage(&st).unwrap_err().to_string()
        };
        let e = err(&|s| {
            s.attributes.remove("region");
        });
        assert!(
            e.contains("attribute `region`") && e.contains("needs a region"),
            "{e}"
        );
        let e = err(&|s| {
            s.attributes.remove("instance_type");
        });
        assert!(e.contains("hive0.pdns needs a machine type"), "{e}");
        let e = err(&|s| s.servers[1].zone = Some("us-east1-b".into()));
        assert!(
            e.contains("hive1.pdns: zone us-east1-b is not a zone of region asia-northeast2"),
            "{e}"
        );
        let e = err(&|s| s.subnets[2].name = "Subnet_C".into());
        assert!(
            e.contains("subnet name Subnet_C is not a Compute Engine name"),
            "{e}"
        );
        let e = err(&|s| {
            s.attributes.insert("kms_key_id".into(), "k".into());
        });
        assert!(
            e.contains("kms_key_id") && e.contains("accepts: region"),
            "{e}"
        );
        let e = err(&|s| {
            s.variables.insert(
                "hive_gcp_ssh_source_range".into(),
                "203.0.113.0/24, nowhere".into(),
            );
        });
        assert!(
            e.contains("hive_gcp_ssh_source_range") && e.contains("nowhere"),
            "{e}"
        );
        let e = err(&|s| {
            s.variables.insert(
                "hive_published_ports_tcp".into(),
                serde_json::json!(["http"]),
            );
        });
        assert!(e.contains("\"http\" is not a port number"), "{e}");
    }

    #[test]
    fn custom_names_sources_and_shared_repository() {
        let mut st = stage();
        st.variables.insert("hive_vpc_name".into(), "main".into());
        st.variables.insert(
            "hive_gcp_ssh_source_range".into(),
            "203.0.113.0/24, 198.51.100.7/32".into(),
        );
        st.variables
            .insert("hive_shared_repository".into(), serde_json::json!({}));
        let s = GcpSettings::from_stage(&st).unwrap();
        assert_eq!(s.network, "main");
        assert_eq!(
            s.firewalls[0].description,
            "Allow internal traffic on the main network"
        );
        assert_eq!(
            s.firewalls[1].source_ranges,
            ["203.0.113.0/24", "198.51.100.7/32"]
        );
        let inbound: Vec<String> = s.firewalls[2]
            .allowed
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            inbound,
            ["icmp"],
            "no port published: only icmp, never every port"
        );
        assert_eq!(
            s.instances.len(),
            3,
            "a shared repository is not built here"
        );
        let mut st = stage();
        st.site = "pdns.example.com".into();
        let s = GcpSettings::from_stage(&st).unwrap();
        assert_eq!(s.network, "vpc-pdns-example-com");
        assert_eq!(s.firewalls[0].name, "internal-pdns-example-com");
    }
}
