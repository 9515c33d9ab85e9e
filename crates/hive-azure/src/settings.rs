//! What the azure provider builds for a stage, worked out from the stage
//! alone (no API call): the resource group, network, security rules and
//! one VM per server, named as hive-builder's `azure` role names them.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use hive_provider::cloud::{check_subnet, cloud_attributes, cloud_region, cloud_subnets};
use hive_provider::{ServerRole, StageSpec};
use serde::Deserialize;

use crate::error::AzureError;

hive_provider::cloud_attributes! {
    /// The `azure` provider's stage attributes (`hive.yml`).
    ///
    /// Besides these fields, the settings every cloud takes, e.g.
    /// `region: japaneast` and `instance_type: Standard_D2s_v3`.
    #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
    pub struct AzureAttributes {
        /// `image_name`: `publisher:offer:sku:version`, a mapping with those
        /// keys, an image resource id, or the name of an image in the
        /// resource group; hive-builder's AlmaLinux image when absent.
        pub image_name: Option<serde_json::Value>,
        /// `prepared_resource_group`: the resource group exists already and
        /// is neither created nor removed.
        pub prepared_resource_group: Option<bool>,
        /// `not_support_az`: the location has no availability zones; VMs are
        /// not placed in one.
        pub not_support_az: Option<bool>,
        /// `disk_encrypted`: Azure managed disks are always encrypted at rest,
        /// so this has no effect (as in hive-builder's role).
        pub disk_encrypted: Option<bool>,
        /// `repository_disk_encrypted`: no effect, as `disk_encrypted`.
        pub repository_disk_encrypted: Option<bool>,
        /// `mirrored_disk_encrypted`: no effect, as `disk_encrypted`.
        pub mirrored_disk_encrypted: Option<bool>,
    }
}

/// The stage keys the azure provider accepts.
pub const ACCEPTED: &[&str] = AzureAttributes::ACCEPTED;

/// The inventory variables the azure provider reads, as hive-builder's
/// role does: the virtual network's name, the published ports and the
/// shared repository.
pub const VARIABLES: &[&str] = &[
    "hive_vpc_name",
    "hive_published_ports_tcp",
    "hive_published_ports_udp",
    "hive_safe_shared_repository_ports",
    "hive_shared_repository",
];

/// The storage type of every managed disk (hive-builder's
/// `hive_safe_managed_disk_type`).
pub const MANAGED_DISK_TYPE: &str = "Premium_LRS";

/// User names Azure refuses for the admin account.
const RESERVED_USERS: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "guest",
    "user",
    "user1",
    "test",
    "sys",
    "support",
];

/// The image a VM boots from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A marketplace image.
    Marketplace {
        /// e.g. `almalinux`.
        publisher: String,
        /// e.g. `almalinux-x86_64`.
        offer: String,
        /// e.g. `10-gen2`.
        sku: String,
        /// e.g. `latest`.
        version: String,
    },
    /// An image resource id (`/subscriptions/.../images/NAME` or a gallery
    /// image version).
    Id(String),
    /// The name of an image in the stage's resource group.
    Named(String),
}

impl ImageRef {
    /// hive-builder's default image (`hive_safe_default_azure_image`).
    pub fn default_image() -> Self {
        ImageRef::Marketplace {
            publisher: "almalinux".into(),
            offer: "almalinux-x86_64".into(),
            sku: "10-gen2".into(),
            version: "latest".into(),
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageRef::Marketplace {
                publisher,
                offer,
                sku,
                version,
            } => write!(f, "{publisher}:{offer}:{sku}:{version}"),
            ImageRef::Id(id) => f.write_str(id),
            ImageRef::Named(name) => f.write_str(name),
        }
    }
}

/// One inbound rule of the stage's network security group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecurityRule {
    /// Rule name.
    pub name: String,
    /// Priority (lower first).
    pub priority: u32,
    /// `Tcp`, `Udp` or `*`.
    pub protocol: String,
    /// Source address prefix (`*`, `VirtualNetwork`).
    pub source: String,
    /// Destination ports (`*` for all), sorted.
    pub ports: Vec<String>,
    /// `Allow` or `Deny`.
    pub access: String,
}

impl std::fmt::Display for SecurityRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} {} {} from {}, priority {})",
            self.name,
            self.access.to_lowercase(),
            self.protocol.to_lowercase(),
            self.ports.join(","),
            self.source,
            self.priority
        )
    }
}

/// One subnet to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPlan {
    /// Its name.
    pub name: String,
    /// Its address prefix.
    pub cidr: String,
}

/// One VM to create (one per server), with its address and NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmPlan {
    /// Server name (`hive0.pdns`).
    pub server: String,
    /// The VM's name: the server name up to its first dot (`hive0`).
    pub name: String,
    /// Hive or repository.
    pub role: ServerRole,
    /// The name of its subnet.
    pub subnet: String,
    /// Its availability zone (`1`, `2`, `3`), unless `not_support_az`.
    pub zone: Option<String>,
    /// Its static private address.
    pub private_ip: Ipv4Addr,
    /// VM size.
    pub size: String,
    /// The image it boots from.
    pub image: ImageRef,
    /// OS disk size in GiB; the image's when `None`.
    pub os_disk_size: Option<u64>,
    /// Size of the mirrored (DRBD) data disk in GiB, for a hive.
    pub mirrored_disk_size: Option<u64>,
}

impl VmPlan {
    /// Its public IP address resource (`gip-<vm>`).
    pub fn public_ip_name(&self) -> String {
        format!("gip-{}", self.name)
    }

    /// Its network interface (`<vm>-primary`).
    pub fn nic_name(&self) -> String {
        format!("{}-primary", self.name)
    }

    /// Its OS disk.
    pub fn os_disk_name(&self) -> String {
        format!("osdisk-{}", self.name)
    }

    /// Its mirrored data disk (`mirrored_<vm>`).
    pub fn mirrored_disk_name(&self) -> String {
        format!("mirrored_{}", self.name)
    }

    /// What the VM is made of, for reports: `VM hive0 (Standard_D2s_v3,
    /// zone 1, image ..., os disk osdisk-hive0 30 GiB, mirrored disk
    /// mirrored_hive0 20 GiB)`.
    pub fn describe(&self) -> String {
        let gib =
            |size: Option<u64>| size.map_or("the image's size".into(), |s| format!("{s} GiB"));
        let mut out = format!("VM {} ({}", self.name, self.size);
        if let Some(zone) = &self.zone {
            out.push_str(&format!(", zone {zone}"));
        }
        out.push_str(&format!(
            ", image {}, os disk {} {}",
            self.image,
            self.os_disk_name(),
            gib(self.os_disk_size)
        ));
        if let Some(size) = self.mirrored_disk_size {
            out.push_str(&format!(
                ", mirrored disk {} {}",
                self.mirrored_disk_name(),
                gib(Some(size))
            ));
        }
        out.push(')');
        out
    }
}

/// Everything the provider builds for a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSettings {
    /// The stage name (for messages).
    pub stage: String,
    /// The Azure location (`region`).
    pub location: String,
    /// The resource group: the site's name.
    pub resource_group: String,
    /// Whether the resource group is prepared (neither created nor removed).
    pub prepared_resource_group: bool,
    /// The virtual network (`hive_vpc_name`, default `vpc-<site>`).
    pub vnet_name: String,
    /// Its address space: the stage's `cidr`.
    pub cidr: String,
    /// The network security group (`sg_<site>`).
    pub nsg_name: String,
    /// Its inbound rules, by priority.
    pub rules: Vec<SecurityRule>,
    /// The subnets, in the inventory's order.
    pub subnets: Vec<SubnetPlan>,
    /// One VM per server, in stage order.
    pub vms: Vec<VmPlan>,
    /// The admin account's name.
    pub admin: String,
}

impl AzureSettings {
    /// Work out what to build for `stage`, refusing settings the real run
    /// would fail on: a missing or malformed location, VM size or image, a
    /// zone Azure does not have, a subnet outside the stage's network, an
    /// admin name Azure reserves.
    pub fn from_stage(stage: &StageSpec) -> Result<Self, AzureError> {
        let attrs: AzureAttributes = cloud_attributes(stage, ACCEPTED)?;
        let invalid = |key: &str, message: String| AzureError::from(stage.invalid(key, message));
        let location = cloud_region(stage, attrs.region.as_ref(), "location", "japaneast")?;
        if !location
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(invalid(
                "region",
                format!(
                    "{location} is not an Azure location name; use e.g. japaneast or westeurope"
                ),
            ));
        }
        let image = match &attrs.image_name {
            None => ImageRef::default_image(),
            Some(v) => image_ref(v).map_err(|m| invalid("image_name", m))?,
        };
        let admin = stage.admin.user.clone();
        if RESERVED_USERS.contains(&admin.to_lowercase().as_str()) {
            return Err(invalid(
                "hive_admin",
                format!(
                    "Azure refuses `{admin}` as an admin user name; use another, e.g. hiveadmin"
                ),
            ));
        }
        let subnets = subnet_plans(stage)?;
        let shared_repository = stage.variables.contains_key("hive_shared_repository");
        let no_zones = attrs.not_support_az.unwrap_or(false);
        let mut vms: Vec<VmPlan> = Vec::new();
        for server in &stage.servers {
            if shared_repository && server.role == ServerRole::Repository {
                continue;
            }
            let size = vm_size(stage, &attrs, server)?;
            let name = server
                .name
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string();
            if let Some(other) = vms.iter().find(|v| v.name == name) {
                return Err(invalid(
                    "custom_hostname",
                    format!(
                        "servers {} and {} would both be VM {name}",
                        other.server, server.name
                    ),
                ));
            }
            let subnet = server
                .subnet
                .clone()
                .or_else(|| subnets.first().map(|s| s.name.clone()))
                .filter(|s| subnets.iter().any(|p| &p.name == s))
                .ok_or_else(|| {
                    invalid(
                        "subnets",
                        format!("server {} is in no subnet of the stage", server.name),
                    )
                })?;
            let zone = if no_zones {
                None
            } else {
                let zone = server.zone.clone().unwrap_or_else(|| "1".into());
                if !["1", "2", "3"].contains(&zone.as_str()) {
                    return Err(invalid(
                        "subnets",
                        format!(
                            "server {}: availability zone {zone} is not an Azure zone (1, 2 or 3); set available_zone to one, or not_support_az: true",
                            server.name
                        ),
                    ));
                }
                Some(zone)
            };
            vms.push(VmPlan {
                server: server.name.clone(),
                name,
                role: server.role,
                subnet,
                zone,
                private_ip: server.private_ip,
                size,
                image: image.clone(),
                os_disk_size: server.disk_size,
                mirrored_disk_size: server.mirrored_disk_size,
            });
        }
        let vnet_name = stage
            .variables
            .get("hive_vpc_name")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("vpc-{}", stage.site));
        Ok(AzureSettings {
            stage: stage.stage.clone(),
            location,
            resource_group: stage.site.clone(),
            prepared_resource_group: attrs.prepared_resource_group.unwrap_or(false),
            vnet_name,
            cidr: stage.cidr.to_string(),
            nsg_name: format!("sg_{}", stage.site),
            rules: security_rules(stage)?,
            subnets,
            vms,
            admin,
        })
    }
}

/// The VM size of `server`: `repository_instance_type` for the repository
/// server when set, `instance_type` otherwise; an Azure size name.
fn vm_size(
    stage: &StageSpec,
    attrs: &AzureAttributes,
    server: &hive_provider::ServerSpec,
) -> Result<String, AzureError> {
    let invalid = |key: &str, message: String| AzureError::from(stage.invalid(key, message));
    let repository = server.role == ServerRole::Repository;
    let (key, size) = match (&attrs.repository_instance_type, repository) {
        (Some(t), true) => ("repository_instance_type", Some(t.clone())),
        _ => ("instance_type", attrs.instance_type.clone()),
    };
    let size = size.filter(|t| !t.is_empty()).ok_or_else(|| {
        invalid(
            key,
            format!(
                "server {} needs a VM size: set {key}, e.g. `{key}: Standard_D2s_v3`",
                server.name
            ),
        )
    })?;
    if !(size.starts_with("Standard_") || size.starts_with("Basic_")) {
        return Err(invalid(
            key,
            format!(
                "server {}: {size} is not an Azure VM size; use e.g. Standard_D2s_v3",
                server.name
            ),
        ));
    }
    Ok(size)
}

/// `image_name` as an [`ImageRef`].
fn image_ref(v: &serde_json::Value) -> Result<ImageRef, String> {
    let example = "use publisher:offer:sku:version (e.g. almalinux:almalinux-x86_64:10-gen2:latest), a mapping with publisher, offer, sku and version, an image resource id or an image name";
    match v {
        serde_json::Value::String(s) if s.starts_with('/') => Ok(ImageRef::Id(s.clone())),
        serde_json::Value::String(s) if s.contains(':') => {
            let parts: Vec<&str> = s.split(':').collect();
            match parts[..] {
                [p, o, k, v] if parts.iter().all(|x| !x.is_empty()) => Ok(ImageRef::Marketplace {
                    publisher: p.into(),
                    offer: o.into(),
                    sku: k.into(),
                    version: v.into(),
                }),
                _ => Err(format!("{s} is not an image: {example}")),
            }
        }
        serde_json::Value::String(s) if !s.is_empty() => Ok(ImageRef::Named(s.clone())),
        serde_json::Value::Object(m) => {
            let get = |k: &str| m.get(k).and_then(|x| x.as_str()).map(str::to_string);
            if let Some(k) = m
                .keys()
                .find(|k| !["publisher", "offer", "sku", "version"].contains(&k.as_str()))
            {
                return Err(format!("unknown key {k}: {example}"));
            }
            match (get("publisher"), get("offer"), get("sku")) {
                (Some(publisher), Some(offer), Some(sku)) => Ok(ImageRef::Marketplace {
                    publisher,
                    offer,
                    sku,
                    version: get("version").unwrap_or_else(|| "latest".into()),
                }),
                _ => Err(format!("{v} is not an image: {example}")),
            }
        }
        _ => Err(format!("{v} is not an image: {example}")),
    }
}

/// The stage's subnets, each inside the stage's network.
fn subnet_plans(stage: &StageSpec) -> Result<Vec<SubnetPlan>, AzureError> {
    let mut out: Vec<SubnetPlan> = Vec::new();
    for (index, subnet) in cloud_subnets(stage)?.iter().enumerate() {
        check_subnet(stage, index, false)?;
        out.push(SubnetPlan {
            name: subnet.name.clone(),
            cidr: subnet.cidr.to_string(),
        });
    }
    Ok(out)
}

/// The security group's inbound rules as hive-builder's role writes them:
/// everything from the virtual network (100), sshd, the published TCP
/// ports and the shared repository's (200), the published UDP ports
/// (201, when there are any), TCP and UDP denied (400, 401), the rest
/// (ICMP) allowed (402).
fn security_rules(stage: &StageSpec) -> Result<Vec<SecurityRule>, AzureError> {
    let rule = |name: &str, priority, protocol: &str, source: &str, ports: Vec<String>, access| {
        SecurityRule {
            name: name.into(),
            priority,
            protocol: protocol.into(),
            source: source.into(),
            ports,
            access: String::from(access),
        }
    };
    let all = || vec!["*".to_string()];
    let sorted = |ports: BTreeSet<u16>| ports.into_iter().map(|p| p.to_string()).collect();
    let mut tcp: BTreeSet<u16> = [stage.sshd_port].into_iter().collect();
    tcp.extend(stage.ports("hive_published_ports_tcp")?);
    tcp.extend(stage.ports("hive_safe_shared_repository_ports")?);
    let udp: BTreeSet<u16> = stage
        .ports("hive_published_ports_udp")?
        .into_iter()
        .collect();
    let mut rules = vec![
        rule("internal", 100, "*", "VirtualNetwork", all(), "Allow"),
        rule("published_ports_tcp", 200, "Tcp", "*", sorted(tcp), "Allow"),
    ];
    if !udp.is_empty() {
        rules.push(rule(
            "published_ports_udp",
            201,
            "Udp",
            "*",
            sorted(udp),
            "Allow",
        ));
    }
    rules.push(rule("deny_tcp", 400, "Tcp", "*", all(), "Deny"));
    rules.push(rule("deny_udp", 401, "Udp", "*", all(), "Deny"));
    rules.push(rule("allow_icmp", 402, "*", "*", all(), "Allow"));
    Ok(rules)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hive_provider::{AdminAccount, ServerSpec, SubnetSpec};

    /// The pdns example's production stage on azure.
    pub(crate) fn stage() -> StageSpec {
        let mut s = StageSpec::new(
            "pdns",
            "production",
            "azure",
            "192.168.0.0/24".parse().unwrap(),
            "/tmp/ctx",
        );
        s.admin = AdminAccount::new("hiveadmin");
        for (i, (name, cidr)) in [
            ("subnet-a", "192.168.0.0/26"),
            ("subnet-b", "192.168.0.64/26"),
            ("subnet-c", "192.168.0.128/26"),
        ]
        .into_iter()
        .enumerate()
        {
            s.subnets.push(SubnetSpec {
                name: name.into(),
                cidr: cidr.parse().unwrap(),
                zone: Some((i + 1).to_string()),
            });
            let ip = format!("192.168.0.{}", 64 * i + 5).parse().unwrap();
            let mut server = ServerSpec::new(format!("hive{i}.pdns"), ServerRole::Hive, ip);
            server.subnet = Some(name.into());
            server.zone = Some((i + 1).to_string());
            server.mirrored_disk_size = Some(20);
            server.disk_size = Some(30);
            s.servers.push(server);
        }
        let mut repo = ServerSpec::new(
            "hive3.pdns",
            ServerRole::Repository,
            "192.168.0.6".parse().unwrap(),
        );
        repo.subnet = Some("subnet-a".into());
        repo.zone = Some("1".into());
        s.servers.push(repo);
        s.attributes.insert("region".into(), "japaneast".into());
        s.attributes
            .insert("instance_type".into(), "Standard_D2s_v3".into());
        s.attributes
            .insert("repository_instance_type".into(), "Standard_D4s_v3".into());
        s
    }

    #[test]
    fn names_sizes_disks_and_rules_as_hive_builder() {
        let mut st = stage();
        st.variables.insert(
            "hive_published_ports_tcp".into(),
            serde_json::json!(["80", 53, "53"]),
        );
        st.variables
            .insert("hive_published_ports_udp".into(), serde_json::json!(["53"]));
        let s = AzureSettings::from_stage(&st).unwrap();
        assert_eq!(
            (
                s.resource_group.as_str(),
                s.vnet_name.as_str(),
                s.nsg_name.as_str()
            ),
            ("pdns", "vpc-pdns", "sg_pdns")
        );
        let vm = &s.vms[1];
        assert_eq!(
            (vm.name.as_str(), vm.public_ip_name(), vm.nic_name()),
            (
                "hive1",
                "gip-hive1".to_string(),
                "hive1-primary".to_string()
            )
        );
        assert_eq!(vm.mirrored_disk_name(), "mirrored_hive1");
        assert_eq!(vm.zone.as_deref(), Some("2"));
        assert_eq!(vm.image, ImageRef::default_image());
        assert_eq!(s.vms[3].size, "Standard_D4s_v3");
        assert_eq!(s.vms[3].mirrored_disk_size, None);
        assert_eq!(
            s.vms[0].describe(),
            "VM hive0 (Standard_D2s_v3, zone 1, image almalinux:almalinux-x86_64:10-gen2:latest, os disk osdisk-hive0 30 GiB, mirrored disk mirrored_hive0 20 GiB)"
        );
        let rules: Vec<String> = s.rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            rules,
            [
                "internal (allow * * from VirtualNetwork, priority 100)",
                "published_ports_tcp (allow tcp 22,53,80 from *, priority 200)",
                "published_ports_udp (allow udp 53 from *, priority 201)",
                "deny_tcp (deny tcp * from *, priority 400)",
                "deny_udp (deny udp * from *, priority 401)",
                "allow_icmp (allow * * from *, priority 402)",
            ]
        );
        // Without published UDP ports the original writes no UDP rule.
        st.variables.remove("hive_published_ports_udp");
        let s = AzureSettings::from_stage(&st).unwrap();
        assert!(s.rules.iter().all(|r| r.name != "published_ports_udp"));
    }

    #[test]
    fn images_zones_and_shared_repository() {
        let mut st = stage();
        st.attributes.insert(
            "image_name".into(),
            "Canonical:ubuntu-24_04-lts:server:latest".into(),
        );
        st.attributes.insert("not_support_az".into(), true.into());
        st.variables
            .insert("hive_shared_repository".into(), serde_json::json!({}));
        st.variables.insert("hive_vpc_name".into(), "main".into());
        let s = AzureSettings::from_stage(&st).unwrap();
        assert_eq!(
            s.vms[0].image.to_string(),
            "Canonical:ubuntu-24_04-lts:server:latest"
        );
        assert!(s.vms.iter().all(|v| v.zone.is_none()));
        assert_eq!(s.vms.len(), 3, "a shared repository is not built here");
        assert_eq!(s.vnet_name, "main");
        for (v, want) in [
            (
                serde_json::json!({"publisher": "p", "offer": "o", "sku": "s"}),
                "p:o:s:latest",
            ),
            (
                serde_json::json!("/subscriptions/x/images/y"),
                "/subscriptions/x/images/y",
            ),
            (serde_json::json!("golden"), "golden"),
        ] {
            assert_eq!(image_ref(&v).unwrap().to_string(), want);
        }
    }

    #[test]
    fn refuses_what_the_run_would_fail_on() {
        let err = |f: &dyn Fn(&mut StageSpec)| {
            let mut st = stage();
            f(&mut st);
            AzureSettings::from_stage(&st).unwrap_err().to_string()
        };
        let e = err(&|s| {
            s.attributes.remove("region");
        });
        assert!(
            e.contains("attribute `region`") && e.contains("needs a location"),
            "{e}"
        );
        let e = err(&|s| {
            s.attributes
                .insert("region".into(), "ap-northeast-1".into());
        });
        assert!(e.contains("ap-northeast-1 is not an Azure location"), "{e}");
        let e = err(&|s| {
            s.attributes
                .insert("instance_type".into(), "t3.medium".into());
        });
        assert!(
            e.contains("server hive0.pdns: t3.medium is not an Azure VM size"),
            "{e}"
        );
        let e = err(&|s| {
            s.attributes.remove("instance_type");
        });
        assert!(e.contains("hive0.pdns needs a VM size"), "{e}");
        let e = err(&|s| s.servers[1].zone = Some("japaneast-b".into()));
        assert!(e.contains("zone japaneast-b is not an Azure zone"), "{e}");
        let e = err(&|s| {
            s.attributes.insert("image_name".into(), "a:b:c".into());
        });
        assert!(e.contains("a:b:c is not an image"), "{e}");
        let e = err(&|s| s.admin = AdminAccount::new("admin"));
        assert!(e.contains("Azure refuses `admin`"), "{e}");
        let e = err(&|s| {
            s.attributes.insert("kms_key_id".into(), "k".into());
        });
        assert!(
            e.contains("kms_key_id") && e.contains("accepts: region"),
            "{e}"
        );
        let e = err(&|s| s.subnets[2].cidr = "10.0.0.0/26".parse().unwrap());
        assert!(e.contains("not inside the stage's cidr"), "{e}");
    }
}
