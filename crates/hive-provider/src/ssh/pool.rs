//! One session per server, opened on first use and reused.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::Mutex;

use super::session::{SshAuth, SshOptions, SshSession, SshTarget};
use crate::error::{ProviderError, Result};
use crate::ssh_config::SshConfig;
use crate::transport::{ExecOutput, OutputChunk, RemoteCommand, RemoteFile, Transport};

type Slot = Arc<Mutex<Option<Arc<SshSession>>>>;

/// The SSH sessions of a stage: one per server, opened on first use,
/// reopened when lost, used in parallel.
///
/// ```no_run
/// # async fn f() -> hive_provider::Result<()> {
/// use hive_provider::{RemoteCommand, SshPool};
/// let pool = SshPool::from_ssh_config(".hive/private/ssh_config".as_ref())?;
/// for (host, out) in pool.exec_all(&RemoteCommand::new("uptime")).await {
///     println!("{host}: {}", out?.stdout_text());
/// }
/// # Ok(()) }
/// ```
pub struct SshPool {
    options: SshOptions,
    targets: std::sync::Mutex<BTreeMap<String, SshTarget>>,
    order: Vec<String>,
    ssh_config: Option<PathBuf>,
    slots: std::sync::Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for SshPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshPool")
            .field("hosts", &self.order)
            .finish()
    }
}

impl SshPool {
    /// An empty pool.
    pub fn new(options: SshOptions) -> Self {
        SshPool {
            options,
            targets: std::sync::Mutex::new(BTreeMap::new()),
            order: Vec::new(),
            ssh_config: None,
            slots: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Add (or replace) a server.
    pub fn add(&mut self, target: SshTarget) {
        let targets = self.targets.get_mut().unwrap_or_else(|p| p.into_inner());
        if !targets.contains_key(&target.host) {
            self.order.push(target.host.clone());
        }
        targets.insert(target.host.clone(), target);
    }

    /// The servers of the ssh_config that build-infra wrote, with strict
    /// host key checking against the known_hosts it names.
    pub fn from_ssh_config(path: &Path) -> Result<Self> {
        let config = SshConfig::load(path)?;
        let known_hosts = config
            .hosts
            .first()
            .and_then(|h| h.known_hosts.clone())
            .unwrap_or_else(|| path.with_file_name("known_hosts"));
        let mut pool = SshPool::new(SshOptions::new(known_hosts));
        pool.ssh_config = Some(path.to_path_buf());
        for h in config.hosts {
            let key = h
                .identity_file
                .clone()
                .ok_or_else(|| ProviderError::Parse {
                    path: path.display().to_string(),
                    line: h.line,
                    message: format!("host {} has no IdentityFile", h.name),
                })?;
            pool.add(SshTarget {
                host: h.name.clone(),
                address: h.host_name.clone(),
                port: h.port,
                user: h.user.clone(),
                auth: SshAuth::Key(key),
            });
        }
        Ok(pool)
    }

    /// The servers, in the order they were added.
    pub fn hosts(&self) -> &[String] {
        &self.order
    }

    /// The options sessions are opened with.
    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    /// The session to `host`, opening it when needed.
    pub async fn session(&self, host: &str) -> Result<Arc<SshSession>> {
        let target = self.target(host)?;
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(host.to_string()).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(s) = guard.as_ref() {
            if !s.is_closed() {
                return Ok(s.clone());
            }
        }
        let s = Arc::new(SshSession::connect(target, self.options.clone()).await?);
        *guard = Some(s.clone());
        Ok(s)
    }

    /// Where and as whom the pool logs in to `host`.
    pub fn target(&self, host: &str) -> Result<SshTarget> {
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned()
            .ok_or_else(|| ProviderError::UnknownHost {
                host: host.to_string(),
                path: self
                    .ssh_config
                    .clone()
                    .unwrap_or_else(|| self.options.known_hosts.clone()),
                known: self.order.join(", "),
            })
    }

    /// Follow `host`'s sshd to `port` (setup-hosts moved it there with
    /// `hive_sshd_port`): connect to the new port, accepting only the host
    /// key pinned for the old one (and pinning it for the new port, as
    /// `[IP]:PORT` like OpenSSH), then set `Port` in the ssh_config the
    /// pool was read from and use the new session from now on. Sessions
    /// already handed out keep working until dropped. Returns whether
    /// anything changed; nothing changes when the new port cannot be
    /// reached.
    pub async fn move_port(&self, host: &str, port: u16) -> Result<bool> {
        let old = self.target(host)?;
        if old.port == port {
            return Ok(false);
        }
        let mut target = old.clone();
        target.port = port;
        let mut options = self.options.clone();
        options.host_key_policy = super::known_hosts::HostKeyPolicy::Strict;
        options.earlier_port = Some(old.port);
        let session = Arc::new(SshSession::connect(target.clone(), options).await?);
        if let Some(config) = &self.ssh_config {
            SshConfig::set_port_in_file(config, host, port)?;
        }
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), target);
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(host.to_string()).or_default().clone()
        };
        *slot.lock().await = Some(session);
        tracing::info!(host, from = old.port, to = port, "sshd moved: following it");
        Ok(true)
    }

    /// Run `command` on every server at once.
    pub async fn exec_all(&self, command: &RemoteCommand) -> Vec<(String, Result<ExecOutput>)> {
        let futs = self.order.iter().map(|h| async move {
            let r = match self.session(h).await {
                Ok(s) => s.exec(command).await,
                Err(e) => Err(e),
            };
            (h.clone(), r)
        });
        join_all(futs).await
    }

    /// Close every session.
    pub fn close_all(&self) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// `host` as a [`Transport`] whose session is opened on first use and
    /// reopened when lost, so that a server that cannot be reached fails
    /// alone, when it is first needed (and with the error of connecting).
    ///
    /// ```no_run
    /// # async fn f() -> hive_provider::Result<()> {
    /// use std::sync::Arc;
    /// use hive_provider::{RemoteCommand, SshPool, Transport};
    /// let pool = Arc::new(SshPool::from_ssh_config(".hive/private/ssh_config".as_ref())?);
    /// let server = SshPool::server(&pool, "p-hive0.pdns");
    /// let out = server.exec(&RemoteCommand::new("uptime")).await?;
    /// # Ok(()) }
    /// ```
    pub fn server(pool: &Arc<SshPool>, host: impl Into<String>) -> PooledServer {
        PooledServer {
            pool: pool.clone(),
            host: host.into(),
        }
    }
}

/// One server of an [`SshPool`], reached through the pool's session for it
/// (see [`SshPool::server`]).
#[derive(Debug, Clone)]
pub struct PooledServer {
    pool: Arc<SshPool>,
    host: String,
}

#[async_trait::async_trait]
impl Transport for PooledServer {
    fn host(&self) -> &str {
        &self.host
    }

    async fn exec_streamed(
        &self,
        command: &RemoteCommand,
        output: Option<tokio::sync::mpsc::UnboundedSender<OutputChunk>>,
    ) -> Result<i32> {
        let session = self.pool.session(&self.host).await?;
        session.exec_streamed(command, output).await
    }

    async fn put(&self, file: &RemoteFile, data: &[u8]) -> Result<()> {
        self.pool.session(&self.host).await?.put(file, data).await
    }

    async fn get(&self, path: &str, sudo: bool) -> Result<Vec<u8>> {
        self.pool.session(&self.host).await?.get(path, sudo).await
    }
}
