//! Forwarding a server's Unix socket to a local Unix socket
//! (`ssh -L LOCAL:/var/run/docker.sock`), on a session of its own.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use ssh2::Channel;

use super::known_hosts::HostKeyPolicy;
use super::session::{Conn, SshOptions, SshSession, SshTarget};
use crate::error::{ProviderError, Result};

const BUF_LIMIT: usize = 256 * 1024;

/// A running forward of a remote Unix socket to a local one; stops and
/// removes the local socket when dropped.
#[derive(Debug)]
pub struct UnixSocketForward {
    local: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UnixSocketForward {
    pub(crate) async fn start(
        target: SshTarget,
        options: SshOptions,
        remote: String,
        local: PathBuf,
    ) -> Result<UnixSocketForward> {
        match std::fs::symlink_metadata(&local) {
            Ok(_) => {
                return Err(ProviderError::io(
                    "create the forwarded socket",
                    local,
                    std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ProviderError::io("inspect", local, e)),
        }
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let path = local.clone();
        let host = target.host.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ssh forward {}", target.host))
            .spawn(move || {
                let conn = match Conn::open_with_retries(&target, &options) {
                    Ok((c, _)) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let listener = match UnixListener::bind(&path)
                    .and_then(|l| l.set_nonblocking(true).map(|_| l))
                {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(ProviderError::io("listen on", path.clone(), e)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                pump_loop(&conn, &listener, &remote, &st, options.keepalive);
            })
            .map_err(|e| ProviderError::SshIo {
                host: host.clone(),
                action: "start the forwarding thread".into(),
                source: e,
            })?;
        let ready = ready_rx.await.map_err(|_| ProviderError::SessionClosed {
            host: host.clone(),
            reason: ": the forwarding thread ended".into(),
        })?;
        let fwd = UnixSocketForward {
            local,
            stop,
            thread: Some(thread),
        };
        ready.map(|_| fwd)
    }

    /// The local socket's path.
    pub fn local_path(&self) -> &Path {
        &self.local
    }
}

impl Drop for UnixSocketForward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.local);
    }
}

struct Forwarded {
    unix: UnixStream,
    ch: Channel,
    to_remote: Vec<u8>,
    to_local: Vec<u8>,
    local_eof: bool,
    eof_sent: bool,
    remote_eof: bool,
    shut: bool,
    failed: bool,
}

impl Forwarded {
    fn finished(&self) -> bool {
        self.failed || (self.remote_eof && self.to_local.is_empty() && self.local_eof)
    }

    /// Move what can be moved without blocking; returns whether anything moved.
    fn pump(&mut self, buf: &mut [u8]) -> bool {
        let mut progress = false;
        let would_block = |e: &std::io::Error| e.kind() == std::io::ErrorKind::WouldBlock;
        if !self.local_eof && self.to_remote.len() < BUF_LIMIT {
            match self.unix.read(buf) {
                Ok(0) => {
                    self.local_eof = true;
                    progress = true;
                }
                Ok(n) => {
                    self.to_remote.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => self.failed = true,
            }
        }
        if !self.to_remote.is_empty() {
            match self.ch.write(&self.to_remote) {
                Ok(n) => {
                    self.to_remote.drain(..n);
                    progress |= n > 0;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => self.failed = true,
            }
        }
        if self.local_eof
            && self.to_remote.is_empty()
            && !self.eof_sent
            && self.ch.send_eof().is_ok()
        {
            self.eof_sent = true;
            progress = true;
        }
        if !self.remote_eof && self.to_local.len() < BUF_LIMIT {
            match self.ch.read(buf) {
                Ok(0) => {
                    if self.ch.eof() {
                        self.remote_eof = true;
                        progress = true;
                    }
                }
                Ok(n) => {
                    self.to_local.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => self.failed = true,
            }
        }
        if !self.to_local.is_empty() {
            match self.unix.write(&self.to_local) {
                Ok(n) => {
                    self.to_local.drain(..n);
                    progress |= n > 0;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => self.failed = true,
            }
        }
        if self.remote_eof && self.to_local.is_empty() && !self.shut {
            let _ = self.unix.shutdown(std::net::Shutdown::Write);
            self.shut = true;
        }
        progress
    }
}

fn pump_loop(
    conn: &Conn,
    listener: &UnixListener,
    remote: &str,
    stop: &AtomicBool,
    keepalive: Duration,
) {
    let mut conns: Vec<Forwarded> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut last_keepalive = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let mut progress = false;
        loop {
            match listener.accept() {
                Ok((unix, _)) => {
                    progress = true;
                    if unix.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let limit = Duration::from_secs(10);
                    match conn.nb(
                        Some(Instant::now() + limit),
                        limit,
                        "open the forwarded socket",
                        |s| s.channel_direct_streamlocal(remote, None),
                    ) {
                        Ok(ch) => conns.push(Forwarded {
                            unix,
                            ch,
                            to_remote: Vec::new(),
                            to_local: Vec::new(),
                            local_eof: false,
                            eof_sent: false,
                            remote_eof: false,
                            shut: false,
                            failed: false,
                        }),
                        Err(e) => {
                            tracing::warn!(error = %e, remote, "cannot open forwarded socket")
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!(error = %e, "accept on forwarded socket failed");
                    break;
                }
            }
        }
        for c in conns.iter_mut() {
            progress |= c.pump(&mut buf);
        }
        conns.retain_mut(|c| {
            if c.finished() {
                let _ = c.ch.close();
                false
            } else {
                true
            }
        });
        if last_keepalive.elapsed() >= keepalive {
            let _ = conn.sess.keepalive_send();
            last_keepalive = Instant::now();
        }
        if !progress {
            let mut fds = Vec::with_capacity(conns.len() + 2);
            fds.push(PollFd::new(conn.tcp.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            for c in &conns {
                let mut f = PollFlags::empty();
                if !c.local_eof && c.to_remote.len() < BUF_LIMIT {
                    f |= PollFlags::POLLIN;
                }
                if !c.to_local.is_empty() {
                    f |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.unix.as_fd(), f));
            }
            let _ = poll(&mut fds, PollTimeout::from(50u16));
        }
    }
}

impl SshSession {
    /// Forward the server's Unix socket `remote` (e.g.
    /// `/var/run/docker.sock`) to a new Unix socket at `local`, over a
    /// connection of its own, until the returned handle is dropped. Any
    /// Docker API client can then use `unix://<local>`.
    pub async fn forward_unix_socket(
        &self,
        remote: &str,
        local: impl Into<PathBuf>,
    ) -> Result<UnixSocketForward> {
        let mut options = self.options.clone();
        options.host_key_policy = HostKeyPolicy::Strict;
        UnixSocketForward::start(
            self.target().clone(),
            options,
            remote.to_string(),
            local.into(),
        )
        .await
    }
}
