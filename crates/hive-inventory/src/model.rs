//! The typed, validated model of a hive site.
//!
//! Everything here is derived from the inventory files and checked: other
//! crates (provider, swarm, drbd, image) map these types into their own inputs.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde_yaml::Value;

/// A stage: one independent copy of the site.
///
/// ```
/// use hive_inventory::StageName;
/// assert_eq!(StageName::Staging.prefix(), "s-");
/// assert_eq!("production".parse::<StageName>(), Ok(StageName::Production));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageName {
    /// Developer's own stage (host names prefixed `p-`).
    Private,
    /// Test stage (host names prefixed `s-`).
    Staging,
    /// Production stage (no prefix).
    Production,
}

impl StageName {
    /// All stages, in the original's order.
    pub const ALL: [StageName; 3] = [
        StageName::Private,
        StageName::Staging,
        StageName::Production,
    ];
    /// The names accepted in inventory files.
    pub const NAMES: [&'static str; 3] = ["private", "staging", "production"];

    /// The name as written in inventories.
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Private => "private",
            StageName::Staging => "staging",
            StageName::Production => "production",
        }
    }

    /// The host name prefix of the stage.
    pub fn prefix(self) -> &'static str {
        match self {
            StageName::Private => "p-",
            StageName::Staging => "s-",
            StageName::Production => "",
        }
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StageName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "private" => Ok(StageName::Private),
            "staging" => Ok(StageName::Staging),
            "production" => Ok(StageName::Production),
            _ => Err(format!(
                "unknown stage {s} (valid: private, staging, production)"
            )),
        }
    }
}

/// A subnet of a stage: hosts are spread over subnets round robin.
#[derive(Debug, Clone, PartialEq)]
pub struct Subnet {
    /// Subnet name (`<site>-default` when the stage declares no subnets).
    pub name: String,
    /// The subnet's network.
    pub cidr: ipnet::IpNet,
    /// Netmask in dotted form.
    pub netmask: IpAddr,
    /// Availability zone, if given.
    pub available_zone: Option<Value>,
}

/// The shared repository settings of a stage (repository on the mother machine).
#[derive(Debug, Clone, PartialEq)]
pub struct SharedRepository {
    /// Context directory of the shared repository server.
    pub context_dir: Option<String>,
    /// SSH port of the shared repository server.
    pub ssh_port: Option<Value>,
    /// DNS server used by the shared repository server.
    pub dns_address: Option<String>,
}

/// One stage of `hive.yml`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The stage.
    pub name: StageName,
    /// Infrastructure provider, by the name the provider crate gives it
    /// (`vagrant`, `docker`, `prepared`, ...).
    pub provider: String,
    /// Whether the repository server is a separate host (default true).
    pub separate_repository: bool,
    /// Shared repository settings, if any.
    pub shared_repository: Option<SharedRepository>,
    /// The network of the stage.
    pub cidr: ipnet::IpNet,
    /// Number of servers (hives plus repository).
    pub number_of_hosts: usize,
    /// Host name stem (default `hive`).
    pub custom_hostname: String,
    /// Subnets, in order.
    pub subnets: Vec<Subnet>,
    /// Fixed IP addresses of the servers, if given.
    pub ip_address_list: Option<Vec<IpAddr>>,
    /// Index of the first hive (the swarm master), from `hive set first_hive N`.
    pub first_hive: usize,
    /// Every attribute as written, for provider-specific settings
    /// (`region`, `instance_type`, `memory_size`, `kickstart_config`, ...).
    pub attributes: IndexMap<String, Value>,
    /// The file the stage was defined in.
    pub file: PathBuf,
}

impl Stage {
    /// An attribute as written in `hive.yml`.
    ///
    /// ```
    /// # fn f(stage: &hive_inventory::Stage) {
    /// let region = stage.attribute("region").and_then(|v| v.as_str());
    /// # }
    /// ```
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    /// The attributes that are the provider's own settings (`region`,
    /// `bridge`, ...), for the provider to check; the others, which every
    /// provider shares (`cidr`, `memory_size`, ...), hive reads itself.
    pub fn provider_settings(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.attributes
            .iter()
            .filter(|(k, _)| crate::load::is_provider_setting(k))
    }
}

pub use hive_model::ServerRole;

/// A server (hive or repository) of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Inventory host name, e.g. `p-hive0.pdns`.
    pub name: String,
    /// The stage.
    pub stage: StageName,
    /// Position in the stage (0-based).
    pub index: usize,
    /// Role.
    pub role: ServerRole,
    /// Private IP address.
    pub private_ip: IpAddr,
    /// Netmask of its subnet.
    pub netmask: IpAddr,
    /// Name of its subnet.
    pub subnet: String,
    /// Availability zone, when the stage has a region.
    pub available_zone: Option<Value>,
}

/// How a service's image is obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceImage {
    /// A tag to pull (may be a template such as `{{ hive_registry }}/image_x`).
    Tag(String),
    /// An image built from a base image by roles; its inventory host is `image_<service>`.
    Build(ImageBuild),
}

/// A build recipe for a service image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBuild {
    /// Inventory host name of the image (`image_<service>`).
    pub host: String,
    /// Base image.
    pub from: String,
    /// Roles applied to build the image.
    pub roles: Vec<String>,
    /// Stages where the image is pulled from `pull_from` instead of built.
    pub pull_on: Vec<StageName>,
    /// Repository to pull from on `pull_on` stages.
    pub pull_from: Option<String>,
    /// Every image parameter as written (`env`, `user`, `command`, ...).
    pub params: IndexMap<String, Value>,
}

/// Protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A published port of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// Port inside the container.
    pub target_port: u16,
    /// Port published on the hives (allocated from 61001 when not given).
    pub published_port: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// Publish mode (`ingress` or `host`), if given.
    pub mode: Option<String>,
}

/// A mount of a service (an element of `volumes`).
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Volume name, host path (bind) or empty (tmpfs).
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Mount type (`volume`, `bind`, `tmpfs`), if given.
    pub kind: Option<String>,
    /// Read-only flag.
    pub readonly: bool,
}

/// A service definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Service name (also its inventory host name).
    pub name: String,
    /// Stages where the service exists.
    pub available_on: Vec<StageName>,
    /// Image, if given.
    pub image: Option<ServiceImage>,
    /// Mounts, including the implicit tmpfs mounts of standalone services.
    pub mounts: Vec<Mount>,
    /// Published ports, with allocated port numbers.
    pub ports: Vec<Port>,
    /// Whether the container runs systemd as a standalone service.
    pub standalone: bool,
    /// Every copied parameter as it appears in the inventory without the
    /// `hive_` prefix (`environment`, `command`, `replicas`, `networks`, ...).
    pub params: IndexMap<String, Value>,
    /// The file the service was defined in.
    pub file: PathBuf,
}

/// How a named volume is provided.
#[derive(Debug, Clone, PartialEq)]
pub enum VolumeKind {
    /// A DRBD-replicated volume.
    Drbd {
        /// DRBD device minor (1..=255), kept in `.hive/persistents.yml`.
        device_id: u8,
        /// Filesystem (`xfs`, `ext4`).
        fstype: Option<String>,
        /// Size with unit, e.g. `500M`.
        size: Option<Value>,
        /// Servers holding the volume without a disk.
        diskless: Vec<String>,
        /// The `drbd` object as written (plus `device_id`).
        params: Value,
    },
    /// An NFS volume.
    Nfs {
        /// The `nfs` object as written.
        params: Value,
    },
    /// A volume created with a Docker volume driver.
    Driver {
        /// Driver name.
        driver: Value,
        /// Driver options, if any.
        driver_opts: Option<Value>,
    },
}

/// A named volume prepared before services are deployed (inventory host `volume_<name>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Volume name (the mount's `source`).
    pub name: String,
    /// How it is provided.
    pub kind: VolumeKind,
    /// Stages where the volume exists.
    pub available_on: Vec<StageName>,
    /// The service that declared it.
    pub service: String,
}

/// An overlay network definition (inventory host of the same name).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Network name.
    pub name: String,
    /// Stages where the network exists.
    pub available_on: Vec<StageName>,
    /// Parameters as written (`driver`, `ipam`, `driver_opts`).
    pub params: IndexMap<String, Value>,
}
