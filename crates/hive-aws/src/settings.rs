//! What the aws provider builds for a stage, worked out from the stage
//! alone (no API call): names, tags, subnets, firewall rules and one
//! instance per server, as hive-builder's `aws` role derives them.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use hive_provider::cloud::{
    check_subnet, cloud_attributes, cloud_region, cloud_subnets, server_subnet,
};
use hive_provider::{ServerRole, StageSpec};
use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::error::AwsError;

hive_provider::cloud_attributes! {
    /// The `aws` provider's stage attributes (`hive.yml`).
    ///
    /// Besides these fields, the settings every cloud takes, e.g.
    /// `region: ap-northeast-1` and `instance_type: t3.medium`.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
    pub struct AwsAttributes {
        /// `image_name`: the AMI of every server (hive-builder's default AMI
        /// when absent).
        pub image_name: Option<String>,
        /// `disk_encrypted`: encrypt the hives' boot disks.
        pub disk_encrypted: Option<bool>,
        /// `repository_disk_encrypted`: encrypt the repository server's boot disk.
        pub repository_disk_encrypted: Option<bool>,
        /// `mirrored_disk_encrypted`: encrypt the mirrored disks.
        pub mirrored_disk_encrypted: Option<bool>,
        /// `kms_key_id`: the KMS key of encrypted disks.
        pub kms_key_id: Option<String>,
    }
}

/// The stage keys the aws provider accepts.
pub const ACCEPTED: &[&str] = AwsAttributes::ACCEPTED;

/// The inventory variables the aws provider reads, as hive-builder's role
/// does: names of the VPC and key pair, the root device, custom firewall
/// rules, the published ports and the shared repository.
pub const VARIABLES: &[&str] = &[
    "hive_vpc_name",
    "hive_aws_key_name",
    "hive_osdisk_device",
    "hive_ec2_group_rules",
    "hive_published_ports_tcp",
    "hive_published_ports_udp",
    "hive_safe_shared_repository_ports",
    "hive_shared_repository",
];

/// hive-builder's default AMI (`hive_vm_image_name` unset).
pub const DEFAULT_IMAGE: &str = "ami-00d73f83fa9a60285";

/// hive-builder's default root device (`hive_osdisk_device` unset).
pub const DEFAULT_ROOT_DEVICE: &str = "/dev/sda1";

/// The device of the mirrored (DRBD) disk.
pub const MIRRORED_DEVICE: &str = "/dev/sdb";

/// Where an inbound rule lets traffic in from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// The security group itself (every server of the stage).
    Group,
    /// An address range.
    Cidr(String),
}

/// One inbound rule of the stage's security group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboundRule {
    /// `-1` (all), `tcp`, `udp`, `icmp`, ...
    pub protocol: String,
    /// First port (-1: all).
    pub from_port: i32,
    /// Last port (-1: all).
    pub to_port: i32,
    /// Where from.
    pub source: Source,
}

impl std::fmt::Display for InboundRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = if self.protocol == "-1" {
            "all"
        } else {
            &self.protocol
        };
        let ports = match (self.from_port, self.to_port) {
            (-1, _) => String::new(),
            (a, b) if a == b => format!(" {a}"),
            (a, b) => format!(" {a}-{b}"),
        };
        let from = match &self.source {
            Source::Group => "the group".to_string(),
            Source::Cidr(c) => c.clone(),
        };
        write!(f, "{proto}{ports} from {from}")
    }
}

/// One subnet to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPlan {
    /// Its `Name` tag.
    pub name: String,
    /// Its network.
    pub cidr: Ipv4Net,
    /// Its availability zone.
    pub zone: String,
}

/// One EBS volume of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskPlan {
    /// Device name (`/dev/sda1`, `/dev/sdb`).
    pub device: String,
    /// Size in GiB; the image's size when `None`.
    pub size: Option<i32>,
    /// Encrypted with `kms_key_id`.
    pub encrypted: bool,
}

/// One instance to create (one per server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePlan {
    /// Server name: the `Name` tag.
    pub name: String,
    /// Hive or repository.
    pub role: ServerRole,
    /// The name of its subnet.
    pub subnet: String,
    /// Its availability zone.
    pub zone: String,
    /// Its private address.
    pub private_ip: Ipv4Addr,
    /// AMI id.
    pub image: String,
    /// Instance type.
    pub instance_type: String,
    /// Boot disk, then the mirrored disk when the server has one.
    pub disks: Vec<DiskPlan>,
}

/// Everything the provider builds for a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The stage name (for messages).
    pub stage: String,
    /// `region`.
    pub region: String,
    /// The `Project` tag of every resource: the site's name.
    pub project: String,
    /// The VPC's `Name` tag (`hive_vpc_name`, default `vpc-<site>`).
    pub vpc_name: String,
    /// The VPC's network: the stage's `cidr`.
    pub cidr: Ipv4Net,
    /// The key pair's name (`hive_aws_key_name`, default
    /// `hive-bulder-<site>` as hive-builder spells it).
    pub key_name: String,
    /// The subnets, in the inventory's order.
    pub subnets: Vec<SubnetPlan>,
    /// The security group's inbound rules, sorted.
    pub rules: Vec<InboundRule>,
    /// One instance per server, in stage order.
    pub instances: Vec<InstancePlan>,
    /// `kms_key_id`, for encrypted disks.
    pub kms_key_id: Option<String>,
}

impl AwsSettings {
    /// The internet gateway's `Name` tag.
    pub fn gateway_name(&self) -> String {
        format!("gateway for {}", self.vpc_name)
    }

    /// The security group's `Name` tag.
    pub fn group_name(&self) -> String {
        format!("group-{}", self.vpc_name)
    }

    /// The route table's `Name` tag.
    pub fn route_table_name(&self) -> &'static str {
        "Public for subnet"
    }

    /// An elastic IP's `Name` tag.
    pub fn address_name(server: &str) -> String {
        format!("for {server}")
    }

    /// Work out what to build for `stage`, refusing settings the real run
    /// would fail on: a missing region or instance type, a subnet without a
    /// zone of the region, a server outside its subnet.
    pub fn from_stage(stage: &StageSpec) -> Result<Self, AwsError> {
        let attrs: AwsAttributes = cloud_attributes(stage, ACCEPTED)?;
        let invalid = |key: &str, message: String| AwsError::from(stage.invalid(key, message));
        let region = cloud_region(stage, attrs.region.as_ref(), "region", "ap-northeast-1")?;
        let subnets = subnet_plans(stage, &region)?;
        let shared_repository = stage.variables.contains_key("hive_shared_repository");
        let text_var = |name: &str| stage.text_variable(name);
        let image = attrs
            .image_name
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE.to_string());
        let root_device =
            text_var("hive_osdisk_device").unwrap_or_else(|| DEFAULT_ROOT_DEVICE.into());
        let mut instances = Vec::new();
        for server in &stage.servers {
            if shared_repository && server.role == ServerRole::Repository {
                // The repository is the shared one, on another machine.
                continue;
            }
            let repository = server.role == ServerRole::Repository;
            let instance_type = if repository {
                attrs
                    .repository_instance_type
                    .clone()
                    .or_else(|| attrs.instance_type.clone())
            } else {
                attrs.instance_type.clone()
            };
            let key = if repository && attrs.instance_type.is_some() {
                "repository_instance_type"
            } else {
                "instance_type"
            };
            let instance_type = instance_type.filter(|t| !t.is_empty()).ok_or_else(|| {
                invalid(
                    key,
                    format!(
                        "server {} needs an instance type: set {key}, e.g. `{key}: t3.medium`",
                        server.name
                    ),
                )
            })?;
            let subnet = server_subnet(stage, server, &subnets, |s| (&s.name, s.cidr))?;
            let encrypted = if repository {
                attrs.repository_disk_encrypted
            } else {
                attrs.disk_encrypted
            };
            let mut disks = vec![DiskPlan {
                device: root_device.clone(),
                size: gib(stage, &server.name, "disk_size", server.disk_size)?,
                encrypted: encrypted.unwrap_or(false),
            }];
            if let Some(size) = server.mirrored_disk_size {
                disks.push(DiskPlan {
                    device: MIRRORED_DEVICE.into(),
                    size: gib(stage, &server.name, "mirrored_disk_size", Some(size))?,
                    encrypted: attrs.mirrored_disk_encrypted.unwrap_or(false),
                });
            }
            if disks.iter().any(|d| d.encrypted) && attrs.kms_key_id.is_none() {
                return Err(invalid(
                    "kms_key_id",
                    format!(
                        "server {} has an encrypted disk; encrypted disks need kms_key_id",
                        server.name
                    ),
                ));
            }
            instances.push(InstancePlan {
                name: server.name.clone(),
                role: server.role,
                subnet: subnet.name.clone(),
                zone: subnet.zone.clone(),
                private_ip: server.private_ip,
                image: image.clone(),
                instance_type,
                disks,
            });
        }
        Ok(AwsSettings {
            stage: stage.stage.clone(),
            region,
            project: stage.site.clone(),
            vpc_name: text_var("hive_vpc_name").unwrap_or_else(|| format!("vpc-{}", stage.site)),
            cidr: stage.cidr,
            key_name: text_var("hive_aws_key_name")
                .unwrap_or_else(|| format!("hive-bulder-{}", stage.site)),
            subnets,
            rules: inbound_rules(stage)?,
            instances,
            kms_key_id: attrs.kms_key_id.clone(),
        })
    }

    /// The instance of server `name`.
    pub fn instance(&self, name: &str) -> Option<&InstancePlan> {
        self.instances.iter().find(|i| i.name == name)
    }
}

fn gib(
    stage: &StageSpec,
    server: &str,
    key: &str,
    size: Option<u64>,
) -> Result<Option<i32>, AwsError> {
    size.map(|s| {
        i32::try_from(s).ok().filter(|&s| s > 0).ok_or_else(|| {
            AwsError::from(stage.invalid(
                key,
                format!(
                    "server {server}: {s} is not a disk size in GiB (1 to {})",
                    i32::MAX
                ),
            ))
        })
    })
    .transpose()
}

/// The stage's subnets with their zones, each inside the stage's network
/// and its zone in the region.
fn subnet_plans(stage: &StageSpec, region: &str) -> Result<Vec<SubnetPlan>, AwsError> {
    let invalid = |message: String| AwsError::from(stage.invalid("subnets", message));
    let mut out: Vec<SubnetPlan> = Vec::new();
    for (index, subnet) in cloud_subnets(stage)?.iter().enumerate() {
        let zone = subnet.zone.clone().filter(|z| !z.is_empty()).ok_or_else(|| {
            invalid(format!(
                "subnet {} has no available_zone; the aws provider needs `subnets`, each with a cidr, a name and an available_zone such as {region}a",
                subnet.name
            ))
        })?;
        let in_region = zone.strip_prefix(region).is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if !in_region {
            return Err(invalid(format!(
                "subnet {}: availability zone {zone} is not a zone of region {region} (e.g. {region}a)",
                subnet.name
            )));
        }
        check_subnet(stage, index, true)?;
        out.push(SubnetPlan {
            name: subnet.name.clone(),
            cidr: subnet.cidr,
            zone,
        });
    }
    Ok(out)
}

/// A port given as a number or a string, as the inventory renders them.
fn port_of(v: &serde_json::Value) -> Option<i32> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ports(stage: &StageSpec, name: &str) -> Result<Vec<i32>, AwsError> {
    let ports = stage.ports(name)?;
    Ok(ports.into_iter().map(i32::from).collect())
}

/// The security group's inbound rules: `hive_ec2_group_rules` when set,
/// otherwise everything from the group itself, the sshd port, the TCP
/// ports published below 10000 (and the shared repository's ports) and
/// the UDP ones from anywhere.
fn inbound_rules(stage: &StageSpec) -> Result<Vec<InboundRule>, AwsError> {
    let mut rules = BTreeSet::new();
    if let Some(custom) = stage.variables.get("hive_ec2_group_rules") {
        for (i, rule) in custom.as_array().into_iter().flatten().enumerate() {
            rules.insert(custom_rule(stage, i, rule)?);
        }
        if custom.as_array().is_none() {
            return Err(AwsError::from(stage.invalid(
                "hive_ec2_group_rules",
                format!("must be a list of rules, got {custom}"),
            )));
        }
        return Ok(rules.into_iter().collect());
    }
    rules.insert(InboundRule {
        protocol: "-1".into(),
        from_port: -1,
        to_port: -1,
        source: Source::Group,
    });
    let anywhere = |protocol: &str, port: i32| InboundRule {
        protocol: protocol.into(),
        from_port: port,
        to_port: port,
        source: Source::Cidr("0.0.0.0/0".into()),
    };
    rules.insert(anywhere("tcp", i32::from(stage.sshd_port)));
    for name in [
        "hive_published_ports_tcp",
        "hive_safe_shared_repository_ports",
    ] {
        for port in ports(stage, name)? {
            rules.insert(anywhere("tcp", port));
        }
    }
    for port in ports(stage, "hive_published_ports_udp")? {
        rules.insert(anywhere("udp", port));
    }
    Ok(rules.into_iter().collect())
}

/// One rule object of `hive_ec2_group_rules` (`proto`, `from_port`,
/// `to_port`, `cidr_ip` or `group_name: default`).
fn custom_rule(
    stage: &StageSpec,
    i: usize,
    rule: &serde_json::Value,
) -> Result<InboundRule, AwsError> {
    let invalid = |message: String| {
        AwsError::from(stage.invalid(&format!("hive_ec2_group_rules[{i}]"), message))
    };
    let obj = rule
        .as_object()
        .ok_or_else(|| invalid(format!("must be a rule object, got {rule}")))?;
    for key in obj.keys() {
        if !["proto", "from_port", "to_port", "cidr_ip", "group_name"].contains(&key.as_str()) {
            return Err(invalid(format!(
                "unknown key {key}; a rule has proto, from_port, to_port, cidr_ip, group_name"
            )));
        }
    }
    let proto = obj
        .get("proto")
        .and_then(|p| p.as_str())
        .ok_or_else(|| invalid("proto must be given: tcp, udp, icmp, icmpv6 or all".into()))?;
    let protocol = match proto {
        "all" | "-1" => "-1".to_string(),
        "tcp" | "udp" | "icmp" | "icmpv6" => proto.to_string(),
        other => {
            return Err(invalid(format!(
                "proto {other} is not one of tcp, udp, icmp, icmpv6, all"
            )));
        }
    };
    let port = |key: &str| match obj.get(key) {
        None => Ok(-1),
        Some(v) => {
            port_of(v).ok_or_else(|| invalid(format!("{key} must be a port number, got {v}")))
        }
    };
    let (from_port, to_port) = if protocol == "-1" {
        (-1, -1)
    } else {
        (port("from_port")?, port("to_port")?)
    };
    let source = match (
        obj.get("group_name").and_then(|g| g.as_str()),
        obj.get("cidr_ip").and_then(|c| c.as_str()),
    ) {
        (Some("default"), None) => Source::Group,
        (None, Some(cidr)) => {
            cidr.parse::<Ipv4Net>()
                .map_err(|e| invalid(format!("cidr_ip {cidr}: {e}")))?;
            Source::Cidr(cidr.to_string())
        }
        (Some(g), None) => {
            return Err(invalid(format!(
                "group_name {g}: only `default` (the stage's own group) is supported"
            )));
        }
        _ => return Err(invalid("give exactly one of cidr_ip and group_name".into())),
    };
    Ok(InboundRule {
        protocol,
        from_port,
        to_port,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_provider::{ServerSpec, SubnetSpec};

    fn stage() -> StageSpec {
        let mut s = StageSpec::new(
            "pdns",
            "production",
            "aws",
            "192.168.0.0/24".parse().unwrap(),
            "/tmp/ctx",
        );
        for (i, (name, cidr, zone)) in [
            ("subnet-a", "192.168.0.0/26", "ap-northeast-1a"),
            ("subnet-b", "192.168.0.64/26", "ap-northeast-1c"),
            ("subnet-c", "192.168.0.128/26", "ap-northeast-1d"),
        ]
        .into_iter()
        .enumerate()
        {
            s.subnets.push(SubnetSpec {
                name: name.into(),
                cidr: cidr.parse().unwrap(),
                zone: Some(zone.into()),
            });
            let ip = format!("192.168.0.{}", 64 * i + 4).parse().unwrap();
            let mut server = ServerSpec::new(format!("p-hive{i}.pdns"), ServerRole::Hive, ip);
            server.subnet = Some(name.into());
            server.mirrored_disk_size = Some(20);
            server.disk_size = Some(30);
            s.servers.push(server);
        }
        let mut repo = ServerSpec::new(
            "p-hive3.pdns",
            ServerRole::Repository,
            "192.168.0.5".parse().unwrap(),
        );
        repo.subnet = Some("subnet-a".into());
        s.servers.push(repo);
        s.attributes
            .insert("region".into(), "ap-northeast-1".into());
        s.attributes
            .insert("instance_type".into(), "t3.medium".into());
        s.attributes
            .insert("repository_instance_type".into(), "t3.large".into());
        s
    }

    #[test]
    fn names_types_and_disks_as_hive_builder() {
        let mut st = stage();
        st.variables.insert(
            "hive_published_ports_tcp".into(),
            serde_json::json!(["53", "80", "53"]),
        );
        st.variables
            .insert("hive_published_ports_udp".into(), serde_json::json!(["53"]));
        let s = AwsSettings::from_stage(&st).unwrap();
        assert_eq!(s.vpc_name, "vpc-pdns");
        assert_eq!(s.key_name, "hive-bulder-pdns");
        assert_eq!(s.gateway_name(), "gateway for vpc-pdns");
        assert_eq!(s.group_name(), "group-vpc-pdns");
        assert_eq!(s.instances.len(), 4);
        assert_eq!(s.instances[0].instance_type, "t3.medium");
        assert_eq!(s.instances[3].instance_type, "t3.large");
        assert_eq!(s.instances[1].zone, "ap-northeast-1c");
        assert_eq!(
            s.instances[0].disks,
            vec![
                DiskPlan {
                    device: "/dev/sda1".into(),
                    size: Some(30),
                    encrypted: false
                },
                DiskPlan {
                    device: "/dev/sdb".into(),
                    size: Some(20),
                    encrypted: false
                },
            ]
        );
        assert_eq!(
            s.instances[3].disks.len(),
            1,
            "the repository has no mirrored disk"
        );
        let rules: Vec<String> = s.rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            rules,
            [
                "all from the group",
                "tcp 22 from 0.0.0.0/0",
                "tcp 53 from 0.0.0.0/0",
                "tcp 80 from 0.0.0.0/0",
                "udp 53 from 0.0.0.0/0"
            ]
        );
    }

    #[test]
    fn refuses_what_the_run_would_fail_on() {
        let err = |f: &dyn Fn(&mut StageSpec)| {
            let mut st = stage();
            f(&mut st);
            AwsSettings::from_stage(&st).unwrap_err().to_string()
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
        assert!(e.contains("p-hive0.pdns needs an instance type"), "{e}");
        let e = err(&|s| s.subnets[1].zone = Some("us-east-1a".into()));
        assert!(
            e.contains("us-east-1a is not a zone of region ap-northeast-1"),
            "{e}"
        );
        let e = err(&|s| s.subnets[2].zone = None);
        assert!(e.contains("subnet subnet-c has no available_zone"), "{e}");
        let e = err(&|s| {
            s.attributes.insert("volume_type".into(), "gp3".into());
        });
        assert!(
            e.contains("volume_type") && e.contains("accepts: region"),
            "{e}"
        );
        let e = err(&|s| {
            s.attributes
                .insert("mirrored_disk_encrypted".into(), true.into());
        });
        assert!(e.contains("need kms_key_id"), "{e}");
        let e = err(&|s| {
            s.variables.insert(
                "hive_ec2_group_rules".into(),
                serde_json::json!([{"proto": "tcp", "group_name": "web"}]),
            );
        });
        assert!(
            e.contains("hive_ec2_group_rules[0]") && e.contains("only `default`"),
            "{e}"
        );
    }

    #[test]
    fn custom_rules_and_names() {
        let mut st = stage();
        st.variables.insert("hive_vpc_name".into(), "main".into());
        st.variables
            .insert("hive_aws_key_name".into(), "ops".into());
        st.variables.insert(
            "hive_ec2_group_rules".into(),
            serde_json::json!([
                {"group_name": "default", "proto": "all"},
                {"cidr_ip": "8.8.8.8/32", "proto": "tcp", "from_port": "22", "to_port": "22"},
            ]),
        );
        st.variables
            .insert("hive_shared_repository".into(), serde_json::json!({}));
        let s = AwsSettings::from_stage(&st).unwrap();
        assert_eq!((s.vpc_name.as_str(), s.key_name.as_str()), ("main", "ops"));
        let rules: Vec<String> = s.rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(rules, ["all from the group", "tcp 22 from 8.8.8.8/32"]);
        assert_eq!(
            s.instances.len(),
            3,
            "a shared repository is not built here"
        );
    }
}
