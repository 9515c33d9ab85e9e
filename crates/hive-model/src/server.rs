//! What a server does in its stage, and a stage's server.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// What a server does in its stage: the inventory gives every server one,
/// providers create servers by it and setup-hosts prepares them by it.
///
/// It is written in snake case (`hive`, `repository`,
/// `hive_and_repository`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerRole {
    /// A container host of the swarm (a "hive"), holding services and
    /// volumes.
    Hive,
    /// The repository server (registry, image builds, logs, backups).
    Repository,
    /// A hive that is also the repository server (`separate_repository:
    /// false`). A provider builds it as the repository server; setup-hosts
    /// prepares it as a hive.
    HiveAndRepository,
}

impl ServerRole {
    /// Whether the server is a swarm node.
    ///
    /// ```
    /// use hive_model::ServerRole;
    /// assert!(ServerRole::HiveAndRepository.is_hive() && !ServerRole::Repository.is_hive());
    /// ```
    pub fn is_hive(self) -> bool {
        matches!(self, ServerRole::Hive | ServerRole::HiveAndRepository)
    }

    /// Whether the server is the repository server.
    pub fn is_repository(self) -> bool {
        matches!(self, ServerRole::Repository | ServerRole::HiveAndRepository)
    }
}

/// One server of a stage as the phases after build-infra see it: the phases
/// that prepare servers (setup-hosts) and deploy to them (hive-swarm's
/// `/etc/hosts` entries) take this one type.
///
/// Written as a map: `name`, `role`, `private_ip` and the optional
/// `groups`; any other key is refused.
///
/// ```
/// use hive_model::{Server, ServerRole};
/// let s: Server = serde_json::from_str(
///     r#"{"name": "p-hive0.pdns", "role": "hive", "private_ip": "192.168.0.10"}"#,
/// ).unwrap();
/// assert_eq!((s.hostname(), s.role, s.groups.len()), ("p-hive0", ServerRole::Hive, 0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Inventory name, e.g. `p-hive0.pdns`; the host name is its first label.
    pub name: String,
    /// What the server does in the stage.
    pub role: ServerRole,
    /// Address on the stage's network.
    pub private_ip: Ipv4Addr,
    /// Inventory groups the server belongs to; setup-hosts makes each one a
    /// swarm node label `<group>=true` on hives.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Server {
    /// The host name: the name's first label.
    pub fn hostname(&self) -> &str {
        self.name.split('.').next().unwrap_or(&self.name)
    }
}
