//! How the phase reaches a server: root scripts through its [`Transport`].
//!
//! The phase needs nothing more than [`run_script`]: files are written by
//! scripts that read their content from standard input. Any transport of
//! `hive-provider` serves (an SSH session, a pool's server); tests use
//! `docker exec`.

use std::time::Duration;

use hive_provider::RemoteCommand;

use super::error::{Result, SetupHostsError};

pub use hive_provider::{ExecOutput, Transport};

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

/// How long one script may run (package installs included) before the
/// server counts as hung and fails.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// `script` run with `sh` as root (`sudo -n`), fed `stdin` when given.
pub(crate) fn root_command(script: impl Into<String>, stdin: Option<&[u8]>) -> RemoteCommand {
    let cmd = RemoteCommand::new(script).sudo();
    match stdin {
        Some(data) => cmd.stdin(data.to_vec()),
        None => cmd,
    }
}

/// The command sent for `script`: `sh` as root (`sudo -n`), under the
/// server's setup lock, bounded by [`SCRIPT_TIMEOUT`].
fn script_command(script: &str, stdin: Option<&[u8]>) -> RemoteCommand {
    root_command(format!("{SETUP_LOCK}{script}"), stdin).timeout(SCRIPT_TIMEOUT)
}

/// Run `script` with `sh` as root on `server`, feeding `stdin` when given,
/// as every step of the phase does: under the server's setup lock and
/// bounded by [`SCRIPT_TIMEOUT`].
///
/// Fails with [`SetupHostsError::Transport`] ("unreachable") when the
/// server cannot be reached or the connection breaks; a script that exits
/// non-zero is not an error here.
///
/// ```no_run
/// # async fn demo(pool: std::sync::Arc<hive_provider::SshPool>) -> hive_setup::Result<()> {
/// let server = hive_provider::SshPool::server(&pool, "p-hive0.pdns");
/// let out = hive_setup::run_script(&server, "id -u", None).await?;
/// assert_eq!(out.stdout_text().trim(), "0");
/// # Ok(()) }
/// ```
pub async fn run_script(
    server: &dyn Transport,
    script: &str,
    stdin: Option<&[u8]>,
) -> Result<ExecOutput> {
    server
        .exec(&script_command(script, stdin))
        .await
        .map_err(|source| SetupHostsError::Transport {
            host: server.host().to_string(),
            source: Box::new(source),
        })
}

/// Run `script` and fail unless it exits with 0; `what` names it in errors.
pub(crate) async fn run_checked(
    server: &dyn Transport,
    script: &str,
    stdin: Option<&[u8]>,
    what: &str,
) -> Result<ExecOutput> {
    let out = run_script(server, script, stdin).await?;
    if out.status == 0 {
        Ok(out)
    } else {
        Err(SetupHostsError::Remote {
            host: server.host().to_string(),
            what: what.to_string(),
            status: out.status,
            stderr: out.stderr_tail(600),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
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
        async fn put(&self, file: &RemoteFile, _: &[u8]) -> hive_provider::Result<()> {
            panic!(
                "the phase writes files with scripts, not put ({})",
                file.path
            )
        }
        async fn get(&self, path: &str, _: bool) -> hive_provider::Result<Vec<u8>> {
            panic!("the phase reads files with scripts, not get ({path})")
        }
    }

    #[tokio::test]
    async fn runs_as_root_under_the_lock_with_timeout_and_stdin() {
        let rec = Recorder {
            seen: Mutex::new(Vec::new()),
            down: false,
        };
        let out = run_script(&rec, "cat", Some(b"secret")).await.unwrap();
        assert_eq!((out.status, out.stdout.as_slice()), (7, &b"secret"[..]));
        let seen = rec.seen.lock().unwrap();
        assert!(seen[0].sudo);
        assert_eq!(seen[0].timeout, Some(SCRIPT_TIMEOUT));
        let line = seen[0].command_line();
        assert!(line.starts_with("sudo -n -- sh -c "), "{line}");
        assert!(line.contains("flock -w 600 9"), "{line}");
        assert!(line.ends_with("\ncat'"), "{line}");
    }

    #[tokio::test]
    async fn a_failing_script_is_an_error_only_when_checked() {
        let rec = Recorder {
            seen: Mutex::new(Vec::new()),
            down: false,
        };
        let e = run_checked(&rec, "false", None, "probe").await.unwrap_err();
        assert_eq!(e.to_string(), "p-hive0.pdns: probe failed with status 7: ");
    }

    #[tokio::test]
    async fn a_broken_connection_is_unreachable_without_the_script() {
        let rec = Recorder {
            seen: Mutex::new(Vec::new()),
            down: true,
        };
        let e = run_script(&rec, "echo s3cret", None).await.unwrap_err();
        assert_eq!(e.to_string(), "p-hive0.pdns: unreachable");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert!(cause.contains("session is closed"), "{cause}");
        assert!(!format!("{e:?}").contains("s3cret"));
    }
}
