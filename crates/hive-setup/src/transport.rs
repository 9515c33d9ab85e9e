//! [`HostShell`] over the SSH transport of `hive-provider`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hive_provider::{RemoteCommand, Transport};

use super::error::{Result, SetupHostsError};
use super::shell::{ExecOutput, HostShell};

/// What every script starts with: it takes the server's setup lock, held
/// until the script ends, waiting up to 600 s for the scripts of another
/// run. A run killed mid-step leaves its script running on the server (an
/// SSH command goes on without its client); the next run's scripts wait
/// for it to end instead of working beside it (its package install
/// finishing, then a restart of the Docker engine it was about to do).
const SETUP_LOCK: &str = "if command -v flock >/dev/null 2>&1; then
  { exec 9>>/run/lock/hive-setup.lock; } 2>/dev/null || exec 9>>/tmp/hive-setup.lock
  if ! flock -n 9; then
    echo 'hive: waiting for the command of another run (an interrupted one?) on this server' >&2
    flock -w 600 9 || { echo 'hive: another command held the setup lock (/run/lock/hive-setup.lock) for 600 s; see what runs there with: fuser -v /run/lock/hive-setup.lock' >&2; exit 75; }
  fi
fi
";

/// Runs the phase's scripts through a [`Transport`] (an SSH session of
/// `hive-provider`), as root with `sudo -n`, each command bounded by a
/// timeout so that a hung server fails instead of hanging the run.
///
/// ```no_run
/// # async fn demo(pool: hive_provider::SshPool) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use hive_setup::{HostShell, TransportShell};
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

    /// The command sent for `script`: run under the server's setup lock
    /// ([`SETUP_LOCK`]).
    pub(crate) fn command(&self, script: &str, stdin: Option<&[u8]>) -> RemoteCommand {
        let mut cmd = RemoteCommand::new(format!("{SETUP_LOCK}{script}"))
            .sudo()
            .timeout(self.timeout);
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

    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<ExecOutput> {
        self.transport
            .exec(&self.command(script, stdin))
            .await
            .map_err(|source| SetupHostsError::Transport {
                host: self.transport.host().to_string(),
                source: Box::new(source),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hive_provider::{OutputChunk, OutputStream, ProviderError, RemoteFile};
    use std::sync::Mutex;
    use tokio::sync::mpsc;

    /// Records the commands it is given; answers like a server that echoes
    /// its standard input, or like a dropped connection.
    struct Recorder {
        seen: Mutex<Vec<RemoteCommand>>,
        down: bool,
    }

    #[async_trait]
    impl Transport for Recorder {
        fn host(&self) -> &str {
            "p-hive0.pdns"
        }
        async fn exec_streamed(
            &self,
            command: &RemoteCommand,
            output: Option<mpsc::UnboundedSender<OutputChunk>>,
        ) -> hive_provider::Result<i32> {
            self.seen.lock().unwrap().push(command.clone());
            if self.down {
                return Err(ProviderError::SessionClosed {
                    host: "p-hive0.pdns".into(),
                    reason: ": connection reset".into(),
                });
            }
            if let (Some(tx), Some(data)) = (output, &command.stdin) {
                let _ = tx.send(OutputChunk {
                    stream: OutputStream::Stdout,
                    data: data.clone(),
                });
            }
            Ok(7)
        }
        async fn put(&self, _: &RemoteFile, _: &[u8]) -> hive_provider::Result<()> {
            Ok(())
        }
        async fn get(&self, _: &str, _: bool) -> hive_provider::Result<Vec<u8>> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn runs_as_root_with_timeout_and_stdin() {
        let rec = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            down: false,
        });
        let shell = TransportShell::new(rec.clone()).with_timeout(Duration::from_secs(9));
        let out = shell.run("cat", Some(b"secret")).await.unwrap();
        assert_eq!((out.status, out.stdout.as_slice()), (7, &b"secret"[..]));
        let seen = rec.seen.lock().unwrap();
        assert!(seen[0].sudo);
        assert_eq!(seen[0].timeout, Some(Duration::from_secs(9)));
        let line = seen[0].command_line();
        assert!(line.starts_with("sudo -n -- sh -c "), "{line}");
        assert!(line.contains("flock -w 600 9"), "{line}");
        assert!(line.ends_with("\ncat'"), "{line}");
    }

    #[tokio::test]
    async fn a_broken_connection_is_unreachable_without_the_script() {
        let shell = TransportShell::new(Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            down: true,
        }));
        let e = shell.run("echo s3cret", None).await.unwrap_err();
        assert_eq!(e.to_string(), "p-hive0.pdns: unreachable");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert!(cause.contains("session is closed"), "{cause}");
        assert!(!format!("{e:?}").contains("s3cret"));
    }
}
