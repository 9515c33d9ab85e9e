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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

/// Whether `name` has a Docker engine.
async fn has_engine(pool: &SshPool, name: &str) -> Result<bool, Error> {
    let session = pool.session(name).await.map_err(Error::provider)?;
    let probe = session
        .exec(&RemoteCommand::new("test -S /var/run/docker.sock"))
        .await
        .map_err(Error::provider)?;
    Ok(probe.success())
}

/// Check that `name` has a Docker engine, then forward its socket to
/// `local`.
async fn forward_socket(
    pool: &SshPool,
    config: &Path,
    name: &str,
    local: &Path,
) -> Result<SocketForward, Error> {
    if !has_engine(pool, name).await? {
        return Err(Error::Site {
            message: format!(
                "{name} has no Docker engine (/var/run/docker.sock is missing): run `hive setup-hosts` first"
            ),
        });
    }
    SocketForward::start(config, name, local).await
}

/// The Docker engines of a stage's servers for the setup-hosts `swarm`
/// step: each server's socket is forwarded on first use and kept until this
/// is dropped.
///
/// ```no_run
/// # async fn demo(params: hive_phases::setup_hosts::SetupHostsParams) -> Result<(), hive_phases::Error> {
/// use std::sync::Arc;
/// let context = std::path::Path::new("site/.hive/private");
/// let engines = hive_phases::setup::ForwardedEngines::new(context, &std::env::temp_dir())?;
/// let phase = hive_phases::setup_hosts::SetupHosts::new(params).engines(Arc::new(engines));
/// # Ok(()) }
/// ```
pub struct ForwardedEngines {
    config: PathBuf,
    pool: Arc<SshPool>,
    open: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Forwarded>>>>>,
    dir: tempfile::TempDir,
}

struct Forwarded {
    engine: hive_swarm::Engine,
    _forward: SocketForward,
}

impl std::fmt::Debug for ForwardedEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedEngines")
            .field("config", &self.config)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl ForwardedEngines {
    /// Engines of the servers of `<context_dir>/ssh_config` (written by
    /// build-infra), with their sockets under `temp_dir`.
    pub fn new(context_dir: &Path, temp_dir: &Path) -> Result<Self, Error> {
        ForwardedEngines::with_pool(context_dir, temp_dir, stage_pool(context_dir)?)
    }

    /// [`ForwardedEngines::new`] probing the servers through `pool`: the
    /// pool setup-hosts uses, so that a server whose sshd the base step
    /// moved (`hive_sshd_port`) is reached on its new port.
    pub fn with_pool(
        context_dir: &Path,
        temp_dir: &Path,
        pool: Arc<SshPool>,
    ) -> Result<Self, Error> {
        let default_temp = std::env::temp_dir();
        let temp_dir = if temp_dir.as_os_str().is_empty() {
            default_temp.as_path()
        } else {
            temp_dir
        };
        let dir = sockets_dir(temp_dir)?;
        Ok(ForwardedEngines {
            config: context_dir.join("ssh_config"),
            pool,
            open: Mutex::new(HashMap::new()),
            dir,
        })
    }

    /// The forwarded engine of `host`, `None` when it has none.
    async fn connect(
        &self,
        host: &str,
    ) -> Result<Option<Forwarded>, crate::setup_hosts::SetupHostsError> {
        let unreachable = |reason: String| crate::setup_hosts::SetupHostsError::Unreachable {
            host: host.to_string(),
            reason,
        };
        if !has_engine(&self.pool, host)
            .await
            .map_err(|e| unreachable(e.to_string()))?
        {
            return Ok(None);
        }
        let local = self.dir.path().join(format!("docker.sock@{host}"));
        let _ = std::fs::remove_file(&local);
        let forward = SocketForward::start(&self.config, host, &local)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let engine = hive_swarm::Engine::connect_unix(host, &local)
            .await
            .map_err(|e| unreachable(format!("its Docker engine: {e}")))?;
        Ok(Some(Forwarded {
            engine,
            _forward: forward,
        }))
    }
}

#[async_trait::async_trait]
impl crate::setup_hosts::EngineConnector for ForwardedEngines {
    async fn engine(&self, host: &str) -> crate::setup_hosts::Result<Option<hive_swarm::Engine>> {
        let slot = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(host.to_string())
            .or_default()
            .clone();
        // One connection per server, even when asked for twice at once.
        let mut slot = slot.lock().await;
        if slot.is_none() {
            *slot = self.connect(host).await?;
        }
        Ok(slot.as_ref().map(|f| f.engine.clone()))
    }
}

/// Connected Docker engines of some servers of a stage.
#[derive(Debug)]
pub struct Engines {
    hives: Vec<Hive>,
    _forwards: Vec<SocketForward>,
    pool: Arc<SshPool>,
    dir: tempfile::TempDir,
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
        let dir = sockets_dir(temp_dir)?;
        let connects = servers.iter().map(|name| {
            let pool = &*pool;
            let config = &config;
            let local = dir.path().join(format!("docker.sock@{name}"));
            async move {
                let forward = forward_socket(pool, config, name, &local).await?;
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
            pool,
            dir,
        })
    }

    /// The connected engines, in the order asked for.
    pub fn hives(&self) -> &[Hive] {
        &self.hives
    }

    /// The local socket forwarded to the Docker engine of `server` (one of
    /// those connected), as a `DOCKER_HOST` value.
    pub fn docker_host(&self, server: &str) -> String {
        format!(
            "unix://{}",
            self.dir
                .path()
                .join(format!("docker.sock@{server}"))
                .display()
        )
    }

    /// The SSH pool the engines were reached through.
    pub fn pool(&self) -> &Arc<SshPool> {
        &self.pool
    }
}

/// A new directory for forwarded engines' sockets under `temp_dir`
/// (created when missing), removed when dropped.
fn sockets_dir(temp_dir: &Path) -> Result<tempfile::TempDir, Error> {
    std::fs::create_dir_all(temp_dir).map_err(|e| Error::io("create directory", temp_dir, e))?;
    tempfile::Builder::new()
        .prefix("hive-sockets.")
        .tempdir_in(temp_dir)
        .map_err(|e| Error::io("create a directory in", temp_dir, e))
}
