//! Typed input: a rendered service definition and the stage it is deployed to.
//!
//! These types mirror the service attributes of a hive inventory *after*
//! template rendering (every `{{ ... }}` already replaced). They deserialize
//! from YAML or JSON with unknown keys rejected, so a typo is an error rather
//! than a silently ignored setting.
//!
//! The service definition itself and the types of its values are
//! hive-model's (re-exported here): one list there declares each service
//! attribute's typed field and its row of the inventory's parameter table.
//! This module adds the stage: its servers, networks, registry and logging.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use hive_model::service::{BuildImage, ImageSource, ServiceDefinition};
pub use hive_model::values::*;

/// A network of the stage, created by build-networks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDefinition {
    /// Driver; only `overlay` is possible (hive-builder always creates
    /// overlay networks).
    pub driver: Option<String>,
    /// Options of the overlay driver (e.g. `encrypted: "true"`).
    #[serde(default)]
    pub driver_opts: IndexMap<String, Scalar>,
    /// IP address management.
    pub ipam: Option<Ipam>,
    /// Whether standalone containers may attach (default true).
    pub attachable: Option<bool>,
}

/// IP address management of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    /// IPAM driver, default `default`.
    pub driver: Option<String>,
    /// Address pools.
    #[serde(default)]
    pub config: Vec<IpamPool>,
    /// Driver options.
    #[serde(default)]
    pub options: IndexMap<String, Scalar>,
}

/// One IPAM address pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    /// Subnet in CIDR notation.
    pub subnet: Option<String>,
    /// Gateway address.
    pub gateway: Option<String>,
    /// Range of addresses given to containers.
    pub iprange: Option<String>,
    /// Reserved auxiliary addresses.
    #[serde(default)]
    pub aux_addresses: IndexMap<String, String>,
}

/// A volume to create on every hive (build-volumes, non-DRBD part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeDefinition {
    /// Volume name (the `source` of the service's mount).
    pub name: String,
    /// Volume driver.
    pub driver: String,
    /// Options of the driver.
    #[serde(default)]
    pub driver_opts: IndexMap<String, Scalar>,
}

impl VolumeDefinition {
    /// The volumes that build-volumes creates for these services: every
    /// mount with a `driver`, without `drbd` or `nfs`, once per name.
    pub fn from_services<'a>(
        services: impl IntoIterator<Item = (&'a String, &'a ServiceDefinition)>,
    ) -> Vec<VolumeDefinition> {
        let mut seen = BTreeMap::new();
        for (_, service) in services {
            for mount in &service.volumes {
                if let (Some(driver), None, None) = (&mount.driver, &mount.drbd, &mount.nfs) {
                    seen.entry(mount.source.clone())
                        .or_insert_with(|| VolumeDefinition {
                            name: mount.source.clone(),
                            driver: driver.clone(),
                            driver_opts: mount.driver_opts.clone(),
                        });
                }
            }
        }
        seen.into_values().collect()
    }
}

/// One server of the stage (every server, including the repository server):
/// its name and private address go into every service's `/etc/hosts`.
pub use hive_model::Server;

/// Login to an image registry.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryLogin {
    /// Registry address (`host:port`); `None` means Docker Hub.
    pub registry: Option<String>,
    /// User name.
    pub username: String,
    /// Password (never printed, not even by `Debug`).
    pub password: String,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Where services send their logs by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogDestination {
    /// Address of the repository server (or `shared-repository`).
    pub repository_server: String,
    /// Syslog port of the repository server (hive-builder: 10514).
    #[serde(default = "default_syslog_port")]
    pub syslog_port: u16,
    /// Send logs over TCP with TLS (else UDP).
    #[serde(default)]
    pub tls_logging: bool,
    /// Directory on the hives holding `ca.pem`, `cert.pem` and `key.pem`
    /// for TLS logging (hive-builder: `<home>/.docker`).
    #[serde(default)]
    pub tls_cert_dir: String,
}

fn default_syslog_port() -> u16 {
    10514
}

/// Everything about the stage that a deployment needs beyond the services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageContext {
    /// Stage name (`private`, `staging`, `production`).
    pub stage: String,
    /// Every server of the stage in inventory order, with private IPs.
    #[serde(default)]
    pub servers: Vec<Server>,
    /// Default logging destination: a hive site's repository server. `None`
    /// (a swarm without hive's log collector): services without their own
    /// `logging` use the engine's default log driver.
    #[serde(default)]
    pub logging: Option<LogDestination>,
    /// Private registry address (`host:port`) where built images are; empty
    /// when there is none (then only services with an image reference can
    /// be deployed).
    #[serde(default)]
    pub registry: String,
    /// Login to the private registry.
    pub registry_login: Option<RegistryLogin>,
    /// Logins to external registries.
    #[serde(default)]
    pub external_registries: Vec<RegistryLogin>,
    /// Proxy variables of the hives (`HTTP_PROXY`, `no_proxy`, `PIP_CERT`,
    /// ...), put first in every service's environment.
    #[serde(default)]
    pub proxy_environment: IndexMap<String, String>,
    /// The stage's networks, in inventory order. The default network
    /// (`hive_default_network`) is always created, whether or not it is
    /// listed.
    #[serde(default)]
    pub networks: IndexMap<String, NetworkDefinition>,
    /// The stage's `internal_cidr`: `hive_default_network` gets its first
    /// quarter when it has no IPAM configuration.
    pub internal_cidr: Option<Ipv4Net>,
    /// The contents of `.hive/<stage>/tag-mapping.json`.
    #[serde(default)]
    pub tag_mapping: TagMapping,
    /// Name of the network every stage has: [`DEFAULT_NETWORK`] (change it
    /// only to run stages side by side on one engine, e.g. in tests).
    #[serde(default = "default_network_name")]
    pub default_network: String,
}

fn default_network_name() -> String {
    DEFAULT_NETWORK.to_string()
}

/// The name of the network that every stage has.
pub const DEFAULT_NETWORK: &str = "hive_default_network";

impl StageContext {
    /// A stage with the given name, registry and repository server, and
    /// everything else empty or default.
    pub fn new(stage: &str, registry: &str, repository_server: &str) -> Self {
        StageContext {
            stage: stage.to_string(),
            servers: Vec::new(),
            logging: Some(LogDestination {
                repository_server: repository_server.to_string(),
                syslog_port: default_syslog_port(),
                tls_logging: false,
                tls_cert_dir: String::new(),
            }),
            registry: registry.to_string(),
            registry_login: None,
            external_registries: Vec::new(),
            proxy_environment: IndexMap::new(),
            networks: IndexMap::new(),
            internal_cidr: None,
            tag_mapping: TagMapping::default(),
            default_network: default_network_name(),
        }
    }

    /// A stage of any swarm, without a hive site around it: no private
    /// registry, no log collector (the engine's default log driver).
    ///
    /// ```
    /// let stage = hive_swarm::StageContext::standalone("demo");
    /// assert!(stage.logging.is_none() && stage.registry.is_empty());
    /// ```
    pub fn standalone(stage: &str) -> Self {
        StageContext {
            logging: None,
            ..StageContext::new(stage, "", "")
        }
    }

    /// The stage's network names: the listed ones, then the default network
    /// (`hive_default_network`) when it is not listed.
    pub fn network_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.networks.keys().cloned().collect();
        if !self.networks.contains_key(&self.default_network) {
            names.push(self.default_network.clone());
        }
        names
    }
}

/// The tag mapping of a stage: image reference to the reference to use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TagMapping(pub IndexMap<String, String>);

impl TagMapping {
    /// Read `.hive/<stage>/tag-mapping.json`; a missing file is an empty
    /// mapping.
    pub fn load(path: &std::path::Path) -> Result<TagMapping, crate::Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| crate::Error::TagMapping {
                path: path.display().to_string(),
                message: format!(
                    "line {}, column {}: {e}; expected a JSON object of image reference to image reference",
                    e.line(),
                    e.column()
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TagMapping::default()),
            Err(e) => Err(crate::Error::TagMapping {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// The mapped reference, or the reference itself.
    pub fn map<'a>(&'a self, reference: &'a str) -> &'a str {
        self.0
            .get(reference)
            .map(String::as_str)
            .unwrap_or(reference)
    }
}
