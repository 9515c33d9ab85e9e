//! What a server does in its stage.

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
