//! Docker engines of a stage's servers, reached through SSH-forwarded
//! sockets.
//!
//! Each server's `/var/run/docker.sock` is forwarded by OpenSSH (with the
//! stage's ssh_config and its pinned host keys) to a socket in a private
//! temporary directory of the mother machine, removed when the [`Engines`]
//! is dropped, so an aborted run leaves no socket behind (the original asks
//! the user to delete it). OpenSSH is used rather than the in-process
//! forward of hive-provider because the latter stalls on the long-lived,
//! hijacked streams of `docker exec` sessions (seen with the role runner).

use std::path::Path;
use std::sync::Arc;

use hive_provider::{RemoteCommand, SshPool, Transport};
use hive_swarm::Hive;

use crate::Error;

/// The stage's SSH pool from `<context_dir>/ssh_config` (written by
/// build-infra), with strict host key checking.
pub fn stage_pool(context_dir: &Path) -> Result<Arc<SshPool>, Error> {
    let config = context_dir.join("ssh_config");
    if !config.exists() {
        return Err(Error::Site {
            message: format!(
                "{} does not exist: run `hive build-infra` first",
                config.display()
            ),
        });
    }
    Ok(Arc::new(
        SshPool::from_ssh_config(&config).map_err(Error::provider)?,
    ))
}

/// An OpenSSH process forwarding a server's Docker socket to a local one;
/// stopped when dropped.
#[derive(Debug)]
struct SocketForward {
    child: std::process::Child,
}

impl Drop for SocketForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SocketForward {
    /// `ssh -F <config> -N -L <local>:/var/run/docker.sock <host>`, as the
    /// original does; waits until the local socket exists.
    async fn start(config: &Path, host: &str, local: &Path) -> Result<SocketForward, Error> {
        let mut child = std::process::Command::new("ssh")
            .arg("-F")
            .arg(config)
            .args([
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "BatchMode=yes",
                "-L",
            ])
            .arg(format!("{}:/var/run/docker.sock", local.display()))
            .arg(host)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Error::io("run ssh for", local, e))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if local.exists() {
                return Ok(SocketForward { child });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Err(Error::Site {
                    message: format!(
                        "cannot forward the Docker socket of {host} ({status}): {}",
                        err.trim()
                    ),
                });
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                return Err(Error::Site {
                    message: format!("forwarding the Docker socket of {host} timed out after 30s"),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Connected Docker engines of some servers of a stage.
#[derive(Debug)]
pub struct Engines {
    hives: Vec<Hive>,
    _forwards: Vec<SocketForward>,
    _pool: Arc<SshPool>,
    _dir: tempfile::TempDir,
}

impl Engines {
    /// Connect to the engines of `servers` (names of ssh_config hosts),
    /// using `<context_dir>/ssh_config` written by build-infra; sockets are
    /// made under `temp_dir`.
    pub async fn connect(
        context_dir: &Path,
        servers: &[String],
        temp_dir: &Path,
    ) -> Result<Engines, Error> {
        let config = context_dir.join("ssh_config");
        let pool = stage_pool(context_dir)?;
        std::fs::create_dir_all(temp_dir)
            .map_err(|e| Error::io("create directory", temp_dir, e))?;
        let dir = tempfile::Builder::new()
            .prefix("hive-sockets.")
            .tempdir_in(temp_dir)
            .map_err(|e| Error::io("create a directory in", temp_dir, e))?;
        let connects = servers.iter().map(|name| {
            let pool = &*pool;
            let config = &config;
            let local = dir.path().join(format!("docker.sock@{name}"));
            async move {
                let session = pool.session(name).await.map_err(Error::provider)?;
                let probe = session
                    .exec(&RemoteCommand::new("test -S /var/run/docker.sock"))
                    .await
                    .map_err(Error::provider)?;
                if !probe.success() {
                    return Err(Error::Site {
                        message: format!(
                            "{name} has no Docker engine (/var/run/docker.sock is missing): run `hive setup-hosts` first"
                        ),
                    });
                }
                let forward = SocketForward::start(config, name, &local).await?;
                let docker = bollard::Docker::connect_with_unix(
                    &local.to_string_lossy(),
                    300,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|e| Error::Site {
                    message: format!("cannot use the Docker socket of {name}: {e}"),
                })?;
                Ok::<_, Error>((Hive::new(name.clone(), docker), forward))
            }
        });
        let mut hives = Vec::new();
        let mut forwards = Vec::new();
        for r in futures::future::join_all(connects).await {
            let (hive, fwd) = r?;
            hives.push(hive);
            forwards.push(fwd);
        }
        Ok(Engines {
            hives,
            _forwards: forwards,
            _pool: pool,
            _dir: dir,
        })
    }

    /// The connected engines, in the order asked for.
    pub fn hives(&self) -> &[Hive] {
        &self.hives
    }
}
