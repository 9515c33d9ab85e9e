//! The error type of hive-swarm.

use std::time::Duration;

/// Why a service did not converge, with what its tasks said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFailure {
    /// Service name.
    pub service: String,
    /// Running tasks when the wait ended.
    pub running: u64,
    /// Desired tasks.
    pub desired: u64,
    /// The error messages of the service's task containers (and the last
    /// lines they logged), or why there is none.
    pub errors: Vec<String>,
}

impl std::fmt::Display for ServiceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "service {} has {}/{} tasks running",
            self.service, self.running, self.desired
        )?;
        if !self.errors.is_empty() {
            write!(f, ": {}", self.errors.join("; "))?;
        }
        Ok(())
    }
}

fn join_failures(failures: &[ServiceFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything that can go wrong in hive-swarm.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A service definition has an invalid value.
    #[error("service {service}: {key}: {message}")]
    InvalidDefinition {
        /// Service name.
        service: String,
        /// The offending key.
        key: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A network definition has an invalid value.
    #[error("network {network}: {key}: {message}")]
    InvalidNetwork {
        /// Network name.
        network: String,
        /// The offending key.
        key: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A network exists with settings other than its definition; Docker
    /// cannot change a network in place.
    #[error(
        "network {network} exists with other settings ({differences}); Docker cannot change a network in place: remove the services using it and the network, or restore its definition"
    )]
    NetworkDiffers {
        /// Network name.
        network: String,
        /// What differs.
        differences: String,
    },
    /// The tag mapping file cannot be read.
    #[error("tag mapping {path}: {message}")]
    TagMapping {
        /// Path of the file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No hive was given.
    #[error("no hive to talk to: give at least one (the first is the swarm manager)")]
    NoHive,
    /// A Docker API call failed.
    #[error("hive {hive}: {action}")]
    Docker {
        /// Hive whose engine failed.
        hive: String,
        /// What was being done.
        action: String,
        /// The engine's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// A new service conflicts with an existing one, typically after a
    /// rename.
    #[error("service {service}: {explanation}")]
    Conflict {
        /// The service being created.
        service: String,
        /// What conflicts and what to do.
        explanation: String,
    },
    /// Services did not converge in time.
    #[error("services did not converge within {}s:\n{}", timeout.as_secs(), join_failures(failures))]
    NotConverged {
        /// How long the wait lasted.
        timeout: Duration,
        /// The services that did not converge.
        failures: Vec<ServiceFailure>,
    },
    /// A service's rolling update failed and was paused or rolled back.
    #[error("service {service}: update {state}: {message}{}", if tasks.is_empty() { String::new() } else { format!("; tasks: {}", tasks.join("; ")) })]
    UpdateFailed {
        /// Service name.
        service: String,
        /// The update state (`paused`, `rollback_completed`, ...).
        state: String,
        /// The engine's message.
        message: String,
        /// Error messages of the service's task containers.
        tasks: Vec<String>,
    },
}

impl Error {
    pub(crate) fn docker(
        hive: &str,
        action: impl Into<String>,
        source: bollard::errors::Error,
    ) -> Self {
        Error::Docker {
            hive: hive.to_string(),
            action: action.into(),
            source,
        }
    }
}
