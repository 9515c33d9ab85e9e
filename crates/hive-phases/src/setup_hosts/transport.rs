//! [`HostShell`] over the SSH transport of `hive-provider`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hive_provider::{RemoteCommand, Transport};

use super::error::{Result, SetupHostsError};
use super::shell::{HostShell, ShellOutput};

/// Runs the phase's scripts through a [`Transport`] (an SSH session of
/// `hive-provider`), as root with `sudo -n`, each command bounded by a
/// timeout so that a hung server fails instead of hanging the run.
///
/// ```no_run
/// # async fn demo(pool: hive_provider::SshPool) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use hive_phases::setup_hosts::{HostShell, TransportShell};
/// let session = pool.session("p-hive0.pdns").await?;
/// let shell: Arc<dyn HostShell> = Arc::new(TransportShell::new(session));
/// # Ok(()) }
/// ```
pub struct TransportShell {
    transport: Arc<dyn Transport>,
    timeout: Duration,
}

impl TransportShell {
    /// Default limit for one command (package installs included).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

    /// A shell over `transport`.
    pub fn new<T: Transport + 'static>(transport: Arc<T>) -> Self {
        TransportShell {
            transport,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// A shell over a transport already behind `dyn`.
    pub fn from_dyn(transport: Arc<dyn Transport>) -> Self {
        TransportShell {
            transport,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Limit each command to `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command sent for `script`.
    pub(crate) fn command(&self, script: &str, stdin: Option<&[u8]>) -> RemoteCommand {
        let mut cmd = RemoteCommand::new(script).sudo().timeout(self.timeout);
        if let Some(data) = stdin {
            cmd = cmd.stdin(data.to_vec());
        }
        cmd
    }
}

#[async_trait]
impl HostShell for TransportShell {
    fn host(&self) -> &str {
        self.transport.host()
    }

    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<ShellOutput> {
        let out = self
            .transport
            .exec(&self.command(script, stdin))
            .await
            .map_err(|source| SetupHostsError::Transport {
                host: self.transport.host().to_string(),
                source: Box::new(source),
            })?;
        Ok(ShellOutput {
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}
