use std::path::PathBuf;

use crate::lock::LockHolder;

/// Errors of phase scheduling, locking and journaling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A phase name that is not one of the seven phases.
    #[error(
        "unknown phase {name:?}: must be one of build-infra, setup-hosts, build-images, build-volumes, build-networks, deploy-services, initialize-services"
    )]
    UnknownPhase {
        /// The name given.
        name: String,
    },
    /// Another run holds the stage's lock.
    #[error("stage {stage} is locked by {holder} (lock file {path}); wait for that run to finish")]
    Locked {
        /// The stage.
        stage: String,
        /// Who holds it.
        holder: Box<LockHolder>,
        /// The lock file.
        path: PathBuf,
    },
    /// The stage's lock file names a run on another host (a shared project
    /// directory): only `--force-unlock` takes it over.
    #[error(
        "stage {stage} was locked by {holder}, a run on another host that this host cannot check; when it is over, re-run with --force-unlock to take the lock over (lock file {path})"
    )]
    StaleLock {
        /// The stage.
        stage: String,
        /// Who held it.
        holder: Box<LockHolder>,
        /// The lock file.
        path: PathBuf,
    },
    /// A lock file that cannot be read as a lock.
    #[error("lock file {path} is not a hive lock: {reason}; remove it if no hive run is going on")]
    BadLock {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A journal line that cannot be parsed.
    #[error("{path}:{line}: not a journal entry")]
    BadJournal {
        /// The journal file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The project does not describe a usable site for the phase.
    #[error("{message}")]
    Site {
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A variable of the project could not be rendered.
    #[error("cannot render a variable of host {host}")]
    Template {
        /// The host whose variables were rendered.
        host: String,
        /// The template error.
        #[source]
        source: Box<hive_inventory::template::TemplateError>,
    },
    /// A provider or SSH operation failed.
    #[error(transparent)]
    Provider(Box<hive_provider::ProviderError>),
    /// A swarm operation failed.
    #[error(transparent)]
    Swarm(Box<hive_swarm::Error>),
    /// The setup-hosts phase failed.
    #[error(transparent)]
    SetupHosts(Box<crate::setup_hosts::SetupHostsError>),
    /// An image build or role run failed.
    #[error(transparent)]
    Image(Box<hive_image::Error>),
    /// A DRBD volume or stage is invalid.
    #[error(transparent)]
    Drbd(Box<hive_drbd::DrbdError>),
    /// A backup or a restore failed (each service named with the
    /// command's own output).
    #[error("{message}")]
    Backup {
        /// What failed.
        message: String,
    },
    /// A file system operation failed.
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
}

impl Error {
    pub(crate) fn provider(e: hive_provider::ProviderError) -> Self {
        Error::Provider(Box::new(e))
    }

    pub(crate) fn swarm(e: hive_swarm::Error) -> Self {
        Error::Swarm(Box::new(e))
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}
