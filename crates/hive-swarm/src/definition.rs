//! Typed input: a rendered service definition and the stage it is deployed to.
//!
//! These types mirror the service attributes of a hive inventory *after*
//! template rendering (every `{{ ... }}` already replaced). They deserialize
//! from YAML or JSON with unknown keys rejected, so a typo is an error rather
//! than a silently ignored setting.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// A scalar value of an environment variable, sysctl or option map.
///
/// YAML turns `PORT: 80` into a number; hive passes it on as the string `80`.
/// Booleans become `true` / `false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// A string, used as is.
    String(String),
    /// An integer.
    Integer(i64),
    /// A floating point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Scalar {
    /// The value as the string Docker receives.
    pub fn to_docker_string(&self) -> String {
        match self {
            Scalar::String(s) => s.clone(),
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// One string or a list of strings (`dns: 8.8.8.8` or `dns: [a, b]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A command line: a list of words, or one string split like a shell does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    /// `command: ["sh", "-c", "echo hi"]`
    Words(Vec<String>),
    /// `command: "sh -c 'echo hi'"` (split with shell quoting rules).
    Line(String),
}

/// The rendered definition of one service, as written in a `hive_services`
/// inventory file (after template rendering).
///
/// Only `image` is needed to deploy; every other attribute is optional and
/// has the meaning documented for hive-builder's service definitions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDefinition {
    /// Where the image comes from: a reference, or a build description
    /// (then the image is `<registry>/image_<service>:latest`, or `pull_from`
    /// on a `pull_on` stage).
    pub image: Option<ImageSource>,
    /// Arguments given to the entrypoint (swarm's `Args`, Docker's command).
    pub command: Option<CommandLine>,
    /// The entrypoint (swarm's `Command`, Docker's entrypoint).
    pub entrypoint: Option<CommandLine>,
    /// Environment variables; the stage's proxy variables come first and are
    /// overridden by these.
    #[serde(default)]
    pub environment: IndexMap<String, Scalar>,
    /// Extra `/etc/hosts` entries (host name to IP address), added after
    /// every server of the stage.
    #[serde(default)]
    pub hosts: IndexMap<String, String>,
    /// DNS servers used inside the service.
    pub dns: Option<OneOrMany>,
    /// `vip` (default) or `dnsrr`; upper case is accepted.
    pub endpoint_mode: Option<String>,
    /// Service labels; non-string values are stored as JSON text.
    #[serde(default)]
    pub labels: IndexMap<String, serde_json::Value>,
    /// Log driver and options; default: syslog to the repository server.
    pub logging: Option<Logging>,
    /// `replicated` (default) or `global`.
    pub mode: Option<ServiceMode>,
    /// Number of replicas (replicated mode). `1`, `-1` and no value keep the
    /// replica count of an existing service; a new service gets 1.
    pub replicas: Option<i64>,
    /// Placement constraints and preferences.
    pub placement: Option<Placement>,
    /// Published ports, short (`"8080:80/udp"`) or long syntax.
    #[serde(default)]
    pub ports: Vec<PortDefinition>,
    /// Restart policy.
    pub restart_config: Option<RestartConfig>,
    /// Time between the stop signal and the kill, like `30s` or `1m30s`.
    pub stop_grace_period: Option<DurationValue>,
    /// Signal that stops the service's containers, like `SIGINT` or `2`
    /// (default: the image's, else SIGTERM).
    pub stop_signal: Option<Scalar>,
    /// Whether this is a standalone (init-system) service; sets the
    /// `HIVE_STANDALONE` label, and adds the standalone mounts and
    /// capabilities when they are missing.
    #[serde(default)]
    pub standalone: bool,
    /// User of the service's process.
    pub user: Option<String>,
    /// Working directory of the service's process.
    pub working_dir: Option<String>,
    /// Mounts: volumes, bind mounts and tmpfs.
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
    /// Capabilities to add.
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// Namespaced kernel parameters.
    #[serde(default)]
    pub sysctls: IndexMap<String, Scalar>,
    /// CPU limit in CPUs, like `1.5`.
    pub cpu_limit: Option<f64>,
    /// Memory limit, like `512M` or a number of bytes.
    pub mem_limit: Option<MemoryValue>,
    /// Health check.
    pub healthcheck: Option<Healthcheck>,
    /// Networks to attach; default: every network of the stage.
    pub networks: Option<Vec<NetworkAttachment>>,
    /// Stages on which the service exists (used by the inventory, not here).
    pub available_on: Option<Vec<String>>,
    /// Backup definitions (used by the backup tools, not here).
    #[serde(default)]
    pub backup_scripts: Vec<BackupScript>,
    /// Log patterns reported as errors (used by log monitoring, not here).
    #[serde(default)]
    pub monitor_error: Vec<String>,
    /// Log patterns ignored by log monitoring (not used here).
    #[serde(default)]
    pub ignore_error: Vec<String>,
    /// Roles applied inside a running task by initialize-services.
    #[serde(default)]
    pub initialize_roles: Vec<String>,
}

/// The `image` attribute: a reference, or how to build the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ImageSource {
    /// An image reference such as `mariadb:10.5` or
    /// `hive0.pdns:5000/image_other:latest`.
    Reference(String),
    /// A build description: the image is built by build-images.
    Build(Box<BuildImage>),
}

/// How build-images builds a service's image. Only `pull_on` and
/// `pull_from` matter for deploying; the rest is accepted for completeness.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildImage {
    /// Base image.
    pub from: String,
    /// Roles applied during the build.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Environment of the built image.
    #[serde(default)]
    pub env: IndexMap<String, Scalar>,
    /// Stop signal of the built image.
    pub stop_signal: Option<Scalar>,
    /// User of the built image.
    pub user: Option<String>,
    /// Working directory of the built image.
    pub working_dir: Option<String>,
    /// Whether the image is standalone.
    pub standalone: Option<bool>,
    /// Entrypoint of the built image.
    pub entrypoint: Option<CommandLine>,
    /// Command of the built image.
    pub command: Option<CommandLine>,
    /// Whether the build container is privileged.
    pub privileged: Option<bool>,
    /// Ports exposed by the built image.
    pub expose: Option<Vec<Scalar>>,
    /// Stages that pull `pull_from` instead of building.
    #[serde(default)]
    pub pull_on: Vec<String>,
    /// The image used on `pull_on` stages.
    pub pull_from: Option<String>,
}

/// `logging`: a log driver and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    /// Driver name, like `syslog` or `journald`.
    pub driver: String,
    /// Driver options.
    #[serde(default)]
    pub options: IndexMap<String, Scalar>,
}

/// Service scheduling mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceMode {
    /// A number of replicas.
    Replicated,
    /// One task on every node.
    Global,
}

/// `placement`: constraints, preferences and a per-node maximum.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Constraints such as `node.hostname!=hive2` (one or a list).
    pub constraints: Option<OneOrMany>,
    /// Preferences, like `[{spread: node.labels.zone}]`.
    #[serde(default)]
    pub preferences: Vec<PlacementPreference>,
    /// Maximum replicas per node.
    pub replicas_max_per_node: Option<i64>,
}

/// One placement preference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementPreference {
    /// Spread tasks evenly over the values of this node label.
    pub spread: String,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// How a port is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortMode {
    /// The routing mesh (default).
    Ingress,
    /// Directly on the node that runs the task.
    Host,
}

/// One published port, in the short or the long syntax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortDefinition {
    /// `"8080:80"`, `"8080:80/udp"` or `"80"`.
    Short(String),
    /// `{published_port: 8080, target_port: 80, protocol: tcp, mode: host}`.
    Long(LongPort),
}

/// The long syntax of a published port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongPort {
    /// Port on the nodes; the inventory assigns one from 61001 when omitted,
    /// the engine assigns one when it is still missing here.
    pub published_port: Option<u16>,
    /// Port inside the container.
    pub target_port: u16,
    /// Protocol, default tcp.
    pub protocol: Option<Protocol>,
    /// Publish mode, default ingress.
    pub mode: Option<PortMode>,
}

/// `restart_config`: the restart policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    /// `none`, `on-failure` or `any`.
    pub condition: Option<String>,
    /// Delay between restarts, like `5s`.
    pub delay: Option<DurationValue>,
    /// Maximum restart attempts.
    pub max_attempts: Option<i64>,
    /// Window used to evaluate the policy, like `120s`.
    pub window: Option<DurationValue>,
}

/// A duration: a string with units (`1h2m3s`, `500ms`, `10us`) or a number
/// of seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DurationValue {
    /// Seconds.
    Seconds(u64),
    /// Go-style duration text.
    Text(String),
}

/// A memory size: bytes, or a string with a unit (`512M`, `1g`, `100k`;
/// units are powers of 1024).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MemoryValue {
    /// Bytes.
    Bytes(u64),
    /// A size with a unit.
    Text(String),
}

/// `healthcheck`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// The test: a shell line (run with `CMD-SHELL`), or a list starting
    /// with `CMD`, `CMD-SHELL` or `NONE`.
    pub test: Option<CommandLineOrShell>,
    /// Time between checks.
    pub interval: Option<DurationValue>,
    /// Time a check may take.
    pub timeout: Option<DurationValue>,
    /// Consecutive failures before unhealthy.
    pub retries: Option<i64>,
    /// Grace period after start.
    pub start_period: Option<DurationValue>,
}

/// A health check test: a list (`["CMD", "true"]`) or a shell line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandLineOrShell {
    /// Passed as is.
    Words(Vec<String>),
    /// Run with `CMD-SHELL`.
    Shell(String),
}

/// One network of a service: a name, or a name with aliases and options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NetworkAttachment {
    /// A network name.
    Name(String),
    /// A network with aliases and driver options.
    Detailed(DetailedNetworkAttachment),
}

impl NetworkAttachment {
    /// The network's name.
    pub fn name(&self) -> &str {
        match self {
            NetworkAttachment::Name(n) => n,
            NetworkAttachment::Detailed(d) => &d.name,
        }
    }
}

/// A network attachment with aliases and driver options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedNetworkAttachment {
    /// Network name.
    pub name: String,
    /// Extra DNS names of the service on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Driver options of the attachment.
    #[serde(default)]
    pub options: IndexMap<String, Scalar>,
}

/// Kind of mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A host directory (default, as in hive-builder).
    Bind,
    /// A named Docker volume.
    Volume,
    /// A memory file system.
    Tmpfs,
}

/// One entry of `volumes`: a mount, optionally with how to create its volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeMount {
    /// Volume name or host path (empty for tmpfs).
    #[serde(default)]
    pub source: String,
    /// Mount point in the container.
    pub target: String,
    /// Kind of mount, default bind.
    #[serde(rename = "type")]
    pub kind: Option<MountType>,
    /// Mount read-only.
    #[serde(default)]
    pub readonly: bool,
    /// Volume driver; build-volumes creates the volume on every hive.
    pub driver: Option<String>,
    /// Options of the volume driver.
    #[serde(default)]
    pub driver_opts: IndexMap<String, Scalar>,
    /// DRBD replication (created by the DRBD part of build-volumes).
    pub drbd: Option<serde_json::Value>,
    /// NFS volume (created by the provider's NFS support).
    pub nfs: Option<serde_json::Value>,
}

/// One backup definition (accepted, used by the backup tools).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupScript {
    /// Name of the backup.
    pub name: String,
    /// Directory to archive.
    pub directory: Option<String>,
    /// Command producing the backup file.
    pub backup_command: Option<String>,
    /// Backup file written by `backup_command`.
    pub backup_file: Option<String>,
    /// Command restoring the backup.
    pub restore_command: Option<String>,
    /// File read by `restore_command`.
    pub restore_file: Option<String>,
    /// Extension of the stored file.
    pub ext: Option<String>,
    /// Days of backups kept.
    pub cleanup_days_before: Option<u32>,
    /// Commands run before the nightly backup.
    #[serde(default)]
    pub batch_scripts: Vec<String>,
}

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

/// One server of the stage (every server, including the repository server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Host name, like `hive0.pdns`; added to every service's `/etc/hosts`.
    pub name: String,
    /// Private IP address.
    pub private_ip: String,
}

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
