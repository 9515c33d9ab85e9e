//! A service's definition and the table of its parameters, declared
//! together: one entry of `service_parameters!` is both the typed field of
//! [`ServiceDefinition`] and the row of [`SERVICE_PARAMETERS`] that the
//! inventory checks it with, so the two cannot disagree on a key.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::values::*;

/// How a service parameter's value is checked when the inventory is read
/// (a template is always accepted: it is checked after rendering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Not checked here: free-form, or checked by the section that reads it.
    Any,
    /// A string or an integer, such as a signal name or number.
    Scalar,
    /// `true` or `false` (YAML 1.1 spellings such as `yes` included).
    Bool,
    /// An integer of 0 or more.
    NonNegativeInt,
    /// One of the given strings.
    OneOf(&'static [&'static str]),
    /// A mapping.
    Mapping,
    /// A mapping, or a list of `NAME=value` strings.
    MappingOrStrList,
    /// A list of strings.
    StrList,
    /// A string, or a list of strings.
    Command,
    /// A list of backup script objects.
    BackupScripts,
}

/// One parameter a service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceParam {
    /// The key in the services file, and the field of [`ServiceDefinition`].
    pub name: &'static str,
    /// How its value is checked.
    pub kind: ParamType,
    /// Copied into the inventory as `hive_<name>`, as written. The others
    /// (`volumes`, `image`, `ports`, `available_on`) are read by their own
    /// section, which sets the variables derived from them.
    pub copied: bool,
    /// Whether it reaches the swarm service spec; the others are read by
    /// other tools (backups, log monitoring, initialize-services) or by the
    /// inventory itself.
    pub deployed: bool,
    /// A value that differs from the default, as YAML (used by the test
    /// that every deployed parameter reaches the spec, and as
    /// documentation).
    pub example: &'static str,
}

/// Declares [`ServiceDefinition`] and [`SERVICE_PARAMETERS`] from one list:
/// each entry is a field (its documentation, serde attributes, name and
/// type) followed by its row: `(ParamType, copied, deployed, example)`.
macro_rules! service_parameters {
    (
        $(
            $(#[$attr:meta])*
            $name:ident: $ty:ty =
                ($kind:expr, copied: $copied:literal, deployed: $deployed:literal, $example:literal),
        )*
    ) => {
        /// The rendered definition of one service, as written in a
        /// `hive_services` inventory file (after template rendering).
        ///
        /// Only `image` is needed to deploy; every other attribute is
        /// optional and has the meaning documented for hive-builder's service
        /// definitions. Unknown keys are refused, so a typo is an error
        /// rather than a silently ignored setting.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ServiceDefinition {
            $(
                $(#[$attr])*
                pub $name: $ty,
            )*
        }

        /// Every parameter a service accepts, in the original's order
        /// (`stop_signal` and a few others are hive's own): one row per field
        /// of [`ServiceDefinition`], under the same name. This table drives
        /// the inventory's checks, the variables copied into the inventory
        /// and the parameters handed to hive-swarm.
        pub const SERVICE_PARAMETERS: &[ServiceParam] = &[
            $(
                ServiceParam {
                    name: stringify!($name),
                    kind: $kind,
                    copied: $copied,
                    deployed: $deployed,
                    example: $example,
                },
            )*
        ];
    };
}

use ParamType::{
    Any, BackupScripts, Bool, Command, Mapping, MappingOrStrList, NonNegativeInt, OneOf, StrList,
};

service_parameters! {
    /// Backup definitions (used by the backup tools, not here).
    #[serde(default)]
    backup_scripts: Vec<BackupScript> = (
        BackupScripts, copied: true, deployed: false,
        "[{name: db, backup_command: dump, restore_command: restore, backup_file: /d.sql, restore_file: /d.sql}]"
    ),
    /// Arguments given to the entrypoint (swarm's `Args`, Docker's command).
    command: Option<CommandLine> = (Command, copied: true, deployed: true, "[sleep, '60']"),
    /// DNS servers used inside the service.
    dns: Option<OneOrMany> = (Any, copied: true, deployed: true, "192.168.1.2"),
    /// `vip` (default) or `dnsrr`; upper case is accepted.
    endpoint_mode: Option<String> = (
        OneOf(&["vip", "dnsrr"]), copied: true, deployed: true, "dnsrr"
    ),
    /// The entrypoint (swarm's `Command`, Docker's entrypoint).
    entrypoint: Option<CommandLine> = (Command, copied: true, deployed: true, "[/entry.sh]"),
    /// Environment variables; the stage's proxy variables come first and are
    /// overridden by these.
    #[serde(default)]
    environment: IndexMap<String, Scalar> = (
        MappingOrStrList, copied: true, deployed: true, "{A: '1'}"
    ),
    /// Health check.
    healthcheck: Option<Healthcheck> = (
        Mapping, copied: true, deployed: true, "{test: [CMD, 'true'], interval: 30s}"
    ),
    /// Extra `/etc/hosts` entries (host name to IP address), added after
    /// every server of the stage.
    #[serde(default)]
    hosts: IndexMap<String, String> = (
        Mapping, copied: true, deployed: true, "{test.example.com: 192.168.1.3}"
    ),
    /// Log patterns ignored by log monitoring (not used here).
    #[serde(default)]
    ignore_error: Vec<String> = (StrList, copied: true, deployed: false, "[favicon]"),
    /// Roles applied inside a running task by initialize-services.
    #[serde(default)]
    initialize_roles: Vec<String> = (StrList, copied: true, deployed: false, "[init]"),
    /// Service labels; non-string values are stored as JSON text.
    #[serde(default)]
    labels: IndexMap<String, serde_json::Value> = (
        Mapping, copied: true, deployed: true, "{published_fqdn: web.example.com}"
    ),
    /// Log driver and options; default: syslog to the repository server.
    logging: Option<Logging> = (
        Mapping, copied: true, deployed: true, "{driver: journald, options: {tag: web}}"
    ),
    /// Log patterns reported as errors (used by log monitoring, not here).
    #[serde(default)]
    monitor_error: Vec<String> = (StrList, copied: true, deployed: false, "['Error:']"),
    /// `replicated` (default) or `global`.
    mode: Option<ServiceMode> = (
        OneOf(&["replicated", "global"]), copied: true, deployed: true, "global"
    ),
    /// Networks to attach; default: every network of the stage.
    networks: Option<Vec<NetworkAttachment>> = (StrList, copied: true, deployed: true, "[]"),
    /// Placement constraints and preferences.
    placement: Option<Placement> = (
        Mapping, copied: true, deployed: true, "{constraints: ['node.hostname!=hive2']}"
    ),
    /// Number of replicas (replicated mode). `1`, `-1` and no value keep the
    /// replica count of an existing service; a new service gets 1.
    replicas: Option<i64> = (NonNegativeInt, copied: true, deployed: true, "3"),
    /// Restart policy.
    restart_config: Option<RestartConfig> = (
        Mapping, copied: true, deployed: true, "{condition: on-failure, delay: 5s}"
    ),
    /// Time between the stop signal and the kill, like `30s` or `1m30s`.
    stop_grace_period: Option<DurationValue> = (Any, copied: true, deployed: true, "30s"),
    /// Signal that stops the service's containers, like `SIGINT` or `2`
    /// (default: the image's, else SIGTERM).
    stop_signal: Option<Scalar> = (ParamType::Scalar, copied: true, deployed: true, "SIGINT"),
    /// Whether this is a standalone (init-system) service; sets the
    /// `HIVE_STANDALONE` label, and adds the standalone mounts and
    /// capabilities when they are missing.
    #[serde(default)]
    standalone: bool = (Any, copied: true, deployed: true, "true"),
    /// Whether the containers' root filesystem is mounted read-only (the
    /// process writes only to its volumes and tmpfs mounts).
    #[serde(default)]
    read_only: bool = (Bool, copied: true, deployed: true, "true"),
    /// User of the service's process.
    user: Option<String> = (Any, copied: true, deployed: true, "admin"),
    /// Working directory of the service's process.
    working_dir: Option<String> = (Any, copied: true, deployed: true, "/opt"),
    /// Capabilities to add.
    #[serde(default)]
    cap_add: Vec<String> = (StrList, copied: true, deployed: true, "[SYS_TIME]"),
    /// Capabilities to drop.
    #[serde(default)]
    cap_drop: Vec<String> = (StrList, copied: true, deployed: true, "[NET_RAW]"),
    /// Namespaced kernel parameters.
    #[serde(default)]
    sysctls: IndexMap<String, Scalar> = (
        Mapping, copied: true, deployed: true, "{net.core.somaxconn: '1024'}"
    ),
    /// CPU limit in CPUs, like `1.5`.
    cpu_limit: Option<f64> = (Any, copied: true, deployed: true, "1.5"),
    /// Memory limit, like `512M` or a number of bytes.
    mem_limit: Option<MemoryValue> = (Any, copied: true, deployed: true, "512M"),
    /// Mounts: volumes, bind mounts and tmpfs.
    #[serde(default)]
    volumes: Vec<VolumeMount> = (
        Any, copied: false, deployed: true, "[{source: /srv, target: /srv, type: bind}]"
    ),
    /// Where the image comes from: a reference, or a build description
    /// (then the image is `<registry>/image_<service>:latest`, or `pull_from`
    /// on a `pull_on` stage).
    image: Option<ImageSource> = (Any, copied: false, deployed: true, "alpine:3.19"),
    /// Published ports, short (`"8080:80/udp"`) or long syntax.
    #[serde(default)]
    ports: Vec<PortDefinition> = (Any, copied: false, deployed: true, "['8080:80']"),
    /// Stages on which the service exists (used by the inventory, not here).
    available_on: Option<Vec<String>> = (Any, copied: false, deployed: false, "[private]"),
}

/// The parameter named `name`, if a service accepts it.
pub fn service_param(name: &str) -> Option<&'static ServiceParam> {
    SERVICE_PARAMETERS.iter().find(|p| p.name == name)
}

/// Declares [`BuildImage`] and [`IMAGE_PARAMS`] from one list of fields.
macro_rules! image_parameters {
    ($($(#[$attr:meta])* $name:ident: $ty:ty,)*) => {
        /// How build-images builds a service's image. Only `pull_on` and
        /// `pull_from` matter for deploying; the rest is accepted for
        /// completeness.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct BuildImage {
            $($(#[$attr])* pub $name: $ty,)*
        }

        /// Parameters of a service's `image` build object (the fields of
        /// [`BuildImage`]), copied into the image host (`image_<service>`)
        /// as `hive_<param>`.
        pub const IMAGE_PARAMS: &[&str] = &[$(stringify!($name)),*];
    };
}

image_parameters! {
    /// Base image.
    from: String,
    /// Roles applied during the build.
    #[serde(default)]
    roles: Vec<String>,
    /// Environment of the built image.
    #[serde(default)]
    env: IndexMap<String, Scalar>,
    /// Stop signal of the built image.
    stop_signal: Option<Scalar>,
    /// User of the built image.
    user: Option<String>,
    /// Working directory of the built image.
    working_dir: Option<String>,
    /// Whether the image is standalone.
    standalone: Option<bool>,
    /// Entrypoint of the built image.
    entrypoint: Option<CommandLine>,
    /// Command of the built image.
    command: Option<CommandLine>,
    /// Whether the build container is privileged.
    privileged: Option<bool>,
    /// Ports exposed by the built image.
    expose: Option<Vec<Scalar>>,
    /// Stages that pull `pull_from` instead of building.
    #[serde(default)]
    pull_on: Vec<String>,
    /// The image used on `pull_on` stages.
    pull_from: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row's example is a value its typed field accepts, so the
    /// example documents the field's real shape.
    #[test]
    fn every_example_is_accepted_by_its_field() {
        for p in SERVICE_PARAMETERS {
            let yaml = format!("{}: {}", p.name, p.example);
            let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
            let parsed = serde_json::to_value(value)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    serde_json::from_value::<ServiceDefinition>(v).map_err(|e| e.to_string())
                });
            assert!(parsed.is_ok(), "{}: {:?}", p.name, parsed.err());
            assert_ne!(
                parsed.unwrap(),
                ServiceDefinition::default(),
                "{}: the example is the default",
                p.name
            );
        }
    }

    #[test]
    fn the_definition_refuses_a_key_outside_the_table() {
        let err =
            serde_json::from_value::<ServiceDefinition>(serde_json::json!({"stop_sginal": 2}))
                .unwrap_err()
                .to_string();
        assert!(err.contains("stop_sginal"), "{err}");
        assert!(service_param("stop_sginal").is_none());
        assert_eq!(IMAGE_PARAMS.first(), Some(&"from"));
    }
}
