//! The error type of this crate.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building, halting, destroying or
/// reaching the servers of a stage.
///
/// Messages are lowercase, name the stage, server, file or key concerned and
/// say what would be valid. Secrets (root passwords, private keys) never
/// appear in them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// A stage attribute has a value the provider cannot use.
    #[error("stage {stage}: attribute `{key}`: {message}")]
    InvalidStage {
        /// Stage name.
        stage: String,
        /// The attribute concerned.
        key: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// The provider is known but not implemented yet.
    #[error(
        "stage {stage}: provider `{provider}` is not yet supported by hive; supported providers: {supported}"
    )]
    NotYetSupported {
        /// Stage name.
        stage: String,
        /// Provider name.
        provider: String,
        /// The providers that can build a stage, comma-separated.
        supported: String,
    },
    /// The provider name is not known at all.
    #[error(
        "stage {stage}: unknown provider `{provider}`; valid providers: docker, kickstart, prepared, vagrant (aws, gcp, azure, openstack are not yet supported)"
    )]
    UnknownProvider {
        /// Stage name.
        stage: String,
        /// Provider name.
        provider: String,
    },
    /// A call to the Docker engine failed.
    #[error("docker engine: {action}")]
    Docker {
        /// What hive asked the engine to do.
        action: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// A Docker-provider server is not in the state hive expects.
    #[error("docker provider: {0}")]
    DockerState(String),
    /// The base image of the docker provider could not be built.
    #[error("base image {image}: {message}")]
    Image {
        /// Image reference.
        image: String,
        /// What failed.
        message: String,
    },
    /// Reading or writing a local file failed.
    #[error("{action} {path}")]
    Io {
        /// What hive tried to do.
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A local program (vagrant, ssh-keygen, bash) failed.
    #[error("{program} {args}: {message}")]
    Program {
        /// The program.
        program: String,
        /// Its arguments, for the message.
        args: String,
        /// Exit status and the end of its error output.
        message: String,
    },
    /// A file hive reads (ssh_config, vagrant ssh-config output) is malformed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file (or program output) concerned.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// TCP connection to a server failed.
    #[error("ssh {host} ({address}): cannot connect")]
    Connect {
        /// Server name.
        host: String,
        /// Address and port.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An SSH protocol operation failed.
    #[error("ssh {host}: {action}")]
    Ssh {
        /// Server name.
        host: String,
        /// What hive was doing.
        action: String,
        /// libssh2's error.
        #[source]
        source: ssh2::Error,
    },
    /// Reading or writing an SSH channel failed.
    #[error("ssh {host}: {action}")]
    SshIo {
        /// Server name.
        host: String,
        /// What hive was doing.
        action: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the credentials.
    #[error("ssh {host}: authentication as {user} with {method} was refused")]
    Auth {
        /// Server name.
        host: String,
        /// Login user.
        user: String,
        /// `key FILE` or `password`.
        method: String,
    },
    /// The server presented a host key that differs from the pinned one.
    #[error("{0}")]
    HostKeyChanged(Box<HostKeyMismatch>),
    /// Strict checking is on and the server's key was never pinned.
    #[error(
        "ssh {host} ({address}): host key {presented} is not in {known_hosts}; run `hive build-infra` to pin the keys of the stage's servers"
    )]
    HostKeyUnknown {
        /// Server name.
        host: String,
        /// Address and port.
        address: String,
        /// The stage's known_hosts file.
        known_hosts: PathBuf,
        /// Type and fingerprint of the presented key.
        presented: String,
    },
    /// An operation did not finish in time.
    #[error("ssh {host}: {what} did not finish within {after:?}")]
    Timeout {
        /// Server name.
        host: String,
        /// The operation.
        what: String,
        /// The time limit.
        after: Duration,
    },
    /// A remote command hive runs itself (bootstrap, upload) failed.
    #[error("{host}: `{command}` exited with {status}: {stderr}")]
    RemoteCommand {
        /// Server name.
        host: String,
        /// A short name of the command (never its secret input).
        command: String,
        /// Exit status (-1 when killed by a signal).
        status: i32,
        /// The end of its error output.
        stderr: String,
    },
    /// The session's worker thread is gone (connection lost).
    #[error("ssh {host}: the session is closed{reason}")]
    SessionClosed {
        /// Server name.
        host: String,
        /// Why, when known (starts with ": ").
        reason: String,
    },
    /// A provider of another crate (a cloud's API) failed; its error names
    /// the server or resource and carries the cloud's own message.
    #[error("{provider}: {error}")]
    Cloud {
        /// Provider name.
        provider: String,
        /// The provider's error (its message is this error's).
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Servers did not answer on SSH in time after build-infra created or
    /// started them; the stage's ssh_config lists them all the same.
    #[error(
        "build-infra: {servers} did not answer on SSH within {after:?}; the provider's resources are built and {ssh_config} lists the servers; run build-infra again once they answer (or with --skip-ssh-wait to only build the resources)"
    )]
    Unreachable {
        /// The servers, comma-separated.
        servers: String,
        /// How long build-infra waited for each.
        after: Duration,
        /// The ssh_config written.
        ssh_config: PathBuf,
        /// The first server's error.
        #[source]
        source: Box<ProviderError>,
    },
    /// A host name is not in the stage's ssh_config.
    #[error("host {host} is not in {path}; hosts there: {known}")]
    UnknownHost {
        /// The name asked for.
        host: String,
        /// The ssh_config file.
        path: PathBuf,
        /// The hosts it has.
        known: String,
    },
}

/// Details of [`ProviderError::HostKeyChanged`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyMismatch {
    /// Server name.
    pub host: String,
    /// The known_hosts pattern (`IP` or `[IP]:PORT`).
    pub pattern: String,
    /// The stage's known_hosts file.
    pub known_hosts: PathBuf,
    /// Type and fingerprint of the pinned key.
    pub pinned: String,
    /// Type and fingerprint of the presented key.
    pub presented: String,
}

impl std::fmt::Display for HostKeyMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ssh {host} ({pattern}): the host key changed: {kh} pins {pinned}, the server now presents {presented}. \
             If the server was rebuilt on purpose, forget the old key with `ssh-keygen -f {kh} -R '{pattern}'` \
             and run `hive build-infra` again; otherwise do not connect: someone may be intercepting the connection",
            host = self.host,
            pattern = self.pattern,
            kh = self.known_hosts.display(),
            pinned = self.pinned,
            presented = self.presented,
        )
    }
}

impl ProviderError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ProviderError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn docker(action: impl Into<String>, source: bollard::errors::Error) -> Self {
        ProviderError::Docker {
            action: action.into(),
            source,
        }
    }

    /// A stage attribute `key` of `stage` the provider cannot use: what is
    /// wrong and what would be valid.
    pub fn invalid_stage(
        stage: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ProviderError::InvalidStage {
            stage: stage.into(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// The error of the provider of another crate named `provider` (a
    /// cloud's API), its message the error's own.
    pub fn cloud(provider: &str, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        ProviderError::Cloud {
            provider: provider.into(),
            error: Box::new(error),
        }
    }

    /// Whether retrying the same operation later may succeed (connection
    /// refused, timeouts, a server still booting); host key and
    /// configuration errors are never transient.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Connect { .. }
                | ProviderError::Ssh { .. }
                | ProviderError::SshIo { .. }
                | ProviderError::Timeout { .. }
                | ProviderError::SessionClosed { .. }
                | ProviderError::Auth { .. }
        )
    }
}

/// Result type of this crate.
pub type Result<T, E = ProviderError> = std::result::Result<T, E>;
