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
    /// A hive's engine answered an API call with an error.
    #[error("hive {hive}: {action}: the engine answered {status}: {message}")]
    EngineApi {
        /// Hive whose engine refused.
        hive: String,
        /// What was being done.
        action: String,
        /// HTTP status of the answer.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// A hive's engine could not be reached or its answer read.
    #[error("hive {hive}: {action}: cannot talk to the engine")]
    EngineConnection {
        /// Hive whose engine is unreachable.
        hive: String,
        /// What was being done.
        action: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A network of Docker's own (`docker_gwbridge`, `ingress`) has another
    /// subnet than `internal_cidr` asks for, and cannot be recreated.
    #[error(
        "hive {hive}: network {network} has subnet {have}, but internal_cidr {internal_cidr} asks for {want}; it cannot be recreated because {reason}. Either set internal_cidr back to the value the swarm was built with, or take the hive out of the swarm (`docker swarm leave --force` on it, after moving its services away), remove {network} and run setup-hosts again"
    )]
    SubnetMismatch {
        /// Hive whose network differs.
        hive: String,
        /// The network.
        network: &'static str,
        /// Its current subnet(s).
        have: String,
        /// The subnet wanted.
        want: ipnet::Ipv4Net,
        /// The internal_cidr the wanted subnet comes from.
        internal_cidr: ipnet::Ipv4Net,
        /// Why it cannot be recreated (the node is in a swarm, containers
        /// are attached).
        reason: String,
    },
    /// The ingress network could not be recreated in time.
    #[error(
        "hive {hive}: the ingress network could not be recreated with subnet {subnet} within {}s: {last}",
        waited.as_secs()
    )]
    IngressNotRecreated {
        /// The swarm manager.
        hive: String,
        /// The subnet wanted.
        subnet: String,
        /// How long it was retried.
        waited: Duration,
        /// The engine's last answer.
        last: String,
    },
    /// A hive is already in a swarm other than the one it should join.
    #[error(
        "hive {hive} is in another swarm (managers {managers}), not in that of {wanted}: leave it with `docker swarm leave --force` on the hive, then run setup-hosts again"
    )]
    OtherSwarm {
        /// The hive.
        hive: String,
        /// The managers of the swarm it is in.
        managers: String,
        /// The manager it should have joined.
        wanted: String,
    },
    /// A hive is in a swarm state the operation cannot work from.
    #[error("hive {hive}: cannot {action}: its swarm state is {state:?}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    SwarmState {
        /// The hive.
        hive: String,
        /// What was to be done.
        action: String,
        /// Its local node state (`inactive`, `pending`, `error`, `locked`).
        state: String,
        /// The engine's error message for that state, if any.
        detail: String,
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

/// Errors of the cluster operations ([`crate::Engine`]): setting up the
/// swarm itself.
impl Error {
    /// The HTTP status the engine answered with, when the error is an
    /// engine's refusal (not a broken connection).
    pub fn engine_status(&self) -> Option<u16> {
        match self {
            Error::EngineApi { status, .. } => Some(*status),
            Error::Docker {
                source: bollard::errors::Error::DockerResponseServerError { status_code, .. },
                ..
            } => Some(*status_code),
            _ => None,
        }
    }

    /// Whether the engine could not be reached at all (rather than refusing
    /// or failing a request).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::EngineConnection { .. } => true,
            Error::Docker { source, .. } => !matches!(
                source,
                bollard::errors::Error::DockerResponseServerError { .. }
                    | bollard::errors::Error::JsonDataError { .. }
                    | bollard::errors::Error::JsonSerdeError { .. }
            ),
            _ => false,
        }
    }

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
