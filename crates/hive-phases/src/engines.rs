//! Docker engines of a stage's servers, reached through SSH-forwarded
//! sockets.
//!
//! Each server's `/var/run/docker.sock` is forwarded to a socket in a
//! private temporary directory of the mother machine, removed when the
//! [`Engines`] is dropped, so an aborted run leaves no socket behind (the
//! original asks the user to delete it).

use std::path::Path;

use hive_provider::{RemoteCommand, SshPool, Transport, UnixSocketForward};
use hive_swarm::Hive;

use crate::Error;

/// Connected Docker engines of some servers of a stage.
#[derive(Debug)]
pub struct Engines {
    hives: Vec<Hive>,
    _forwards: Vec<UnixSocketForward>,
    _pool: SshPool,
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
        if !config.exists() {
            return Err(Error::Site {
                message: format!(
                    "{} does not exist: run `hive build-infra` first",
                    config.display()
                ),
            });
        }
        let pool = SshPool::from_ssh_config(&config).map_err(Error::provider)?;
        std::fs::create_dir_all(temp_dir)
            .map_err(|e| Error::io("create directory", temp_dir, e))?;
        let dir = tempfile::Builder::new()
            .prefix("hive-sockets.")
            .tempdir_in(temp_dir)
            .map_err(|e| Error::io("create a directory in", temp_dir, e))?;
        let connects = servers.iter().map(|name| {
            let pool = &pool;
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
                let forward = session
                    .forward_unix_socket("/var/run/docker.sock", &local)
                    .await
                    .map_err(Error::provider)?;
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
