//! The types of a service definition's values: scalars, command lines,
//! ports, mounts, health checks and the other structured attributes.

use indexmap::IndexMap;
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
