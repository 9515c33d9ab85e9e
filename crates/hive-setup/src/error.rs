//! Errors of the setup-hosts phase.

use std::path::PathBuf;

/// Errors of the setup-hosts phase.
///
/// Messages never contain secrets (passwords, private keys) nor the scripts
/// that carry them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupHostsError {
    /// The server could not be reached or the connection broke.
    #[error("{host}: unreachable: {reason}")]
    Unreachable {
        /// The server.
        host: String,
        /// What the transport said.
        reason: String,
    },
    /// The connection to the server failed, broke or timed out.
    #[error("{host}: unreachable")]
    Transport {
        /// The server.
        host: String,
        /// What the transport said.
        #[source]
        source: Box<hive_provider::ProviderError>,
    },
    /// A command on a server failed.
    #[error("{host}: {what} failed with status {status}: {stderr}")]
    Remote {
        /// The server.
        host: String,
        /// What was being done (never the script itself).
        what: String,
        /// Exit status.
        status: i32,
        /// The end of its standard error.
        stderr: String,
    },
    /// A server's output could not be understood.
    #[error("{host}: unexpected output of {what}: {detail}")]
    Unexpected {
        /// The server.
        host: String,
        /// What was being done.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// The parameters of the phase are invalid.
    #[error("invalid setup-hosts parameter {key}: {reason}")]
    Params {
        /// The parameter.
        key: String,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// A `-l` limit names no server of the stage.
    #[error("--limit {name}: no server of the stage is named so (servers: {known})")]
    UnknownLimit {
        /// The name given.
        name: String,
        /// The stage's servers.
        known: String,
    },
    /// A `-T` tag that is not a step.
    #[error(
        "unknown step {name:?}: must be one of base, pki, docker, swarm, registry, firewall, drbd, logs, backup, addon"
    )]
    UnknownStep {
        /// The name given.
        name: String,
    },
    /// A certificate or key could not be generated or read.
    #[error("site PKI: {what}")]
    Pki {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// A password hash could not be made.
    #[error("registry password hash")]
    Bcrypt(#[source] bcrypt::BcryptError),
    /// A file of the context directory could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The package manager's locks stayed held by other processes (a
    /// command of an interrupted run, an unattended upgrade) for longer
    /// than the step waits.
    #[error(
        "{host}: {holders} still held after waiting {waited_secs} s; wait for it to finish or stop it on the server (kill PID), then re-run"
    )]
    PackageLocks {
        /// The server.
        host: String,
        /// The locks and their holders, as `LOCK by process PID (NAME)`.
        holders: String,
        /// How long the step waited.
        waited_secs: u64,
    },
    /// A step was skipped because an earlier step failed on that server.
    #[error("{host}: skipped because step {step} failed")]
    Skipped {
        /// The server.
        host: String,
        /// The step that failed first.
        step: String,
    },
}

impl SetupHostsError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        SetupHostsError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Results of the setup-hosts phase.
pub type Result<T, E = SetupHostsError> = std::result::Result<T, E>;
