//! One SSH session per server, run on a dedicated thread so that libssh2's
//! blocking calls never stall the async runtime.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use ssh2::{BlockDirections, ErrorCode, MethodType, Session};
use tokio::sync::{mpsc, oneshot};

use super::known_hosts::{self, HostKeyCheck, HostKeyPolicy};
use crate::error::{ProviderError, Result};
use crate::stage::Secret;
use crate::transport::{OutputChunk, OutputStream, RemoteCommand, RemoteFile, Transport, tail};

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshAuth {
    /// A private key file (ed25519 or RSA, OpenSSH or PEM format).
    Key(PathBuf),
    /// A password (bootstrap as root on prepared servers).
    Password(Secret),
}

impl SshAuth {
    fn describe(&self) -> String {
        match self {
            SshAuth::Key(p) => format!("key {}", p.display()),
            SshAuth::Password(_) => "password".into(),
        }
    }
}

/// Where and as whom to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Server name, for messages (the ssh_config `Host`).
    pub host: String,
    /// Address to connect to.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Credentials.
    pub auth: SshAuth,
}

/// Connection behaviour shared by the sessions of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// The stage's known_hosts file.
    pub known_hosts: PathBuf,
    /// Pin unknown host keys or refuse them.
    pub host_key_policy: HostKeyPolicy,
    /// Limit for TCP connect plus handshake and authentication.
    pub connect_timeout: Duration,
    /// Further connection attempts after a transient failure.
    pub retries: u32,
    /// Pause between attempts (doubled each time, at most 5 s).
    pub retry_delay: Duration,
    /// Keepalive interval on idle sessions.
    pub keepalive: Duration,
    /// Default limit for each command (none when `None`).
    pub command_timeout: Option<Duration>,
    /// The port sshd listened on before it was moved (`hive_sshd_port`):
    /// a key not yet pinned for the target's port is accepted (and pinned)
    /// only when it is the key pinned for this earlier port.
    pub earlier_port: Option<u16>,
}

impl SshOptions {
    /// Strict checking against `known_hosts`, 10 s connect timeout, 3
    /// retries, 30 s keepalive, no command timeout.
    pub fn new(known_hosts: impl Into<PathBuf>) -> Self {
        SshOptions {
            known_hosts: known_hosts.into(),
            host_key_policy: HostKeyPolicy::Strict,
            connect_timeout: Duration::from_secs(10),
            retries: 3,
            retry_delay: Duration::from_millis(500),
            keepalive: Duration::from_secs(30),
            command_timeout: None,
            earlier_port: None,
        }
    }

    /// Pin unknown keys (build-infra's first contact).
    pub fn pin_on_first_contact(mut self) -> Self {
        self.host_key_policy = HostKeyPolicy::PinOnFirstContact;
        self
    }
}

/// A connected, authenticated libssh2 session in non-blocking mode, with the
/// socket it polls.
pub(crate) struct Conn {
    pub(crate) sess: Session,
    pub(crate) tcp: TcpStream,
    pub(crate) host: String,
}

/// Let the kernel notice a server that vanished (halted, crashed, network
/// gone) even while a command waits for output: probes after `idle`, then
/// 3 more 10 s apart, then the socket fails.
fn set_tcp_keepalive(tcp: &TcpStream, idle: Duration) {
    use nix::sys::socket::{setsockopt, sockopt};
    let idle = idle.as_secs().clamp(1, 3600) as u32;
    let _ = setsockopt(tcp, sockopt::KeepAlive, &true);
    let _ = setsockopt(tcp, sockopt::TcpKeepIdle, &idle);
    let _ = setsockopt(tcp, sockopt::TcpKeepInterval, &10);
    let _ = setsockopt(tcp, sockopt::TcpKeepCount, &3);
}

fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(-37)
}

impl Conn {
    /// Wait until the socket is ready in the direction libssh2 needs.
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
        what: &str,
        limit: Duration,
    ) -> Result<()> {
        let flags = match self.sess.block_directions() {
            BlockDirections::Inbound | BlockDirections::None => PollFlags::POLLIN,
            BlockDirections::Outbound => PollFlags::POLLOUT,
            BlockDirections::Both => PollFlags::POLLIN | PollFlags::POLLOUT,
        };
        let mut ms: u64 = 200;
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                return Err(ProviderError::Timeout {
                    host: self.host.clone(),
                    what: what.to_string(),
                    after: limit,
                });
            }
            ms = ms.min((d - now).as_millis() as u64 + 1);
        }
        let mut fds = [PollFd::new(self.tcp.as_fd(), flags)];
        let _ = poll(&mut fds, PollTimeout::from(ms as u16));
        Ok(())
    }

    /// Retry a libssh2 call until it does not say "would block".
    pub(crate) fn nb<T>(
        &self,
        deadline: Option<Instant>,
        limit: Duration,
        what: &str,
        mut f: impl FnMut(&Session) -> std::result::Result<T, ssh2::Error>,
    ) -> Result<T> {
        loop {
            match f(&self.sess) {
                Ok(v) => return Ok(v),
                Err(e) if is_eagain(&e) => self.wait(deadline, what, limit)?,
                Err(e) => {
                    return Err(ProviderError::Ssh {
                        host: self.host.clone(),
                        action: what.to_string(),
                        source: e,
                    });
                }
            }
        }
    }

    fn io_err(&self, action: &str, e: std::io::Error) -> ProviderError {
        ProviderError::SshIo {
            host: self.host.clone(),
            action: action.to_string(),
            source: e,
        }
    }

    /// Connect, check the host key, authenticate.
    pub(crate) fn open(t: &SshTarget, o: &SshOptions) -> Result<(Conn, HostKeyCheck)> {
        let text = format!("{}:{}", t.address, t.port);
        let connect_err = |e: std::io::Error| ProviderError::Connect {
            host: t.host.clone(),
            address: text.clone(),
            source: e,
        };
        let addr = (t.address.as_str(), t.port)
            .to_socket_addrs()
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| connect_err(std::io::Error::other("no address")))?;
        let started = Instant::now();
        let deadline = Some(started + o.connect_timeout);
        let tcp = TcpStream::connect_timeout(&addr, o.connect_timeout).map_err(connect_err)?;
        let _ = tcp.set_nodelay(true);
        set_tcp_keepalive(&tcp, o.keepalive);
        let poll_tcp = tcp.try_clone().map_err(connect_err)?;
        let mut sess = Session::new().map_err(|e| ProviderError::Ssh {
            host: t.host.clone(),
            action: "create a session".into(),
            source: e,
        })?;
        sess.set_tcp_stream(tcp);
        let pattern = known_hosts::host_pattern(&t.address, t.port);
        let earlier = o
            .earlier_port
            .map(|p| known_hosts::host_pattern(&t.address, p));
        let mut pinned = known_hosts::lookup(&o.known_hosts, &pattern)?;
        if let (true, Some(e)) = (pinned.is_empty(), &earlier) {
            pinned = known_hosts::lookup(&o.known_hosts, e)?;
        }
        let supported = sess.supported_algs(MethodType::HostKey).unwrap_or_default();
        let prefs: Vec<String> = known_hosts::preferred_algorithms(&pinned)
            .split(',')
            .filter(|a| supported.is_empty() || supported.contains(a))
            .map(String::from)
            .collect();
        if !prefs.is_empty() {
            let _ = sess.method_pref(MethodType::HostKey, &prefs.join(","));
        }
        sess.set_blocking(false);
        let mut conn = Conn {
            sess,
            tcp: poll_tcp,
            host: t.host.clone(),
        };
        let limit = o.connect_timeout;
        // handshake needs &mut Session
        loop {
            match conn.sess.handshake() {
                Ok(()) => break,
                Err(e) if is_eagain(&e) => conn.wait(deadline, "ssh handshake", limit)?,
                Err(e) => {
                    return Err(ProviderError::Ssh {
                        host: t.host.clone(),
                        action: format!("handshake with {text}"),
                        source: e,
                    });
                }
            }
        }
        let (key, _) = conn.sess.host_key().ok_or_else(|| ProviderError::Ssh {
            host: t.host.clone(),
            action: "read the host key".into(),
            source: ssh2::Error::unknown(),
        })?;
        let key = key.to_vec();
        let check = known_hosts::check_moved(
            &o.known_hosts,
            &t.host,
            &pattern,
            earlier.as_deref(),
            &key,
            o.host_key_policy,
        )?;
        let auth_result = match &t.auth {
            SshAuth::Key(path) => {
                if !path.exists() {
                    return Err(ProviderError::io(
                        "read the private key",
                        path.clone(),
                        std::io::Error::from(std::io::ErrorKind::NotFound),
                    ));
                }
                conn.nb(deadline, limit, "authenticate", |s| {
                    s.userauth_pubkey_file(&t.user, None, path, None)
                })
            }
            SshAuth::Password(p) => conn.nb(deadline, limit, "authenticate", |s| {
                s.userauth_password(&t.user, p.expose())
            }),
        };
        if let Err(e) = auth_result {
            if matches!(e, ProviderError::Timeout { .. }) {
                return Err(e);
            }
            return Err(ProviderError::Auth {
                host: t.host.clone(),
                user: t.user.clone(),
                method: t.auth.describe(),
            });
        }
        if !conn.sess.authenticated() {
            return Err(ProviderError::Auth {
                host: t.host.clone(),
                user: t.user.clone(),
                method: t.auth.describe(),
            });
        }
        conn.sess
            .set_keepalive(true, o.keepalive.as_secs().clamp(1, u32::MAX as u64) as u32);
        Ok((conn, check))
    }

    /// [`Conn::open`] with bounded retries on transient failures.
    pub(crate) fn open_with_retries(t: &SshTarget, o: &SshOptions) -> Result<(Conn, HostKeyCheck)> {
        let mut delay = o.retry_delay;
        let mut attempt = 0;
        loop {
            match Conn::open(t, o) {
                Ok(c) => return Ok(c),
                Err(e)
                    if attempt < o.retries
                        && e.is_transient()
                        && !matches!(e, ProviderError::Auth { .. }) =>
                {
                    tracing::debug!(host = %t.host, error = %e, attempt, "ssh connect failed, retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Run a command, streaming its output.
    pub(crate) fn exec(
        &self,
        cmd: &RemoteCommand,
        out: Option<&mpsc::UnboundedSender<OutputChunk>>,
        default_timeout: Option<Duration>,
    ) -> Result<i32> {
        let limit = cmd.timeout.or(default_timeout).unwrap_or(Duration::MAX);
        let deadline = cmd.timeout.or(default_timeout).map(|t| Instant::now() + t);
        let short: String = cmd.script.chars().take(60).collect();
        let what = format!("command `{short}`");
        let mut ch = self.nb(deadline, limit, "open a channel", |s| s.channel_session())?;
        let (line, stdin) = cmd.wire();
        self.nb(deadline, limit, "start a command", |_| ch.exec(&line))?;
        let stdin = stdin.as_slice();
        let mut written = 0;
        let mut eof_sent = false;
        let mut buf = vec![0u8; 32 * 1024];
        let (mut out_done, mut err_done) = (false, false);
        let send = |stream: OutputStream, data: &[u8]| {
            if let Some(tx) = out {
                let _ = tx.send(OutputChunk {
                    stream,
                    data: data.to_vec(),
                });
            }
        };
        loop {
            let mut progress = false;
            if !eof_sent {
                if written < stdin.len() {
                    match ch.write(&stdin[written..]) {
                        Ok(n) => {
                            written += n;
                            progress = true;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(self.io_err("send standard input", e)),
                    }
                }
                if written >= stdin.len() {
                    match ch.send_eof() {
                        Ok(()) => {
                            eof_sent = true;
                            progress = true;
                        }
                        Err(e) if is_eagain(&e) => {}
                        Err(e) => {
                            return Err(ProviderError::Ssh {
                                host: self.host.clone(),
                                action: "close standard input".into(),
                                source: e,
                            });
                        }
                    }
                }
            }
            if !out_done {
                match ch.read(&mut buf) {
                    Ok(0) => out_done = ch.eof(),
                    Ok(n) => {
                        send(OutputStream::Stdout, &buf[..n]);
                        progress = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(self.io_err("read output", e)),
                }
            }
            if !err_done {
                match ch.stderr().read(&mut buf) {
                    Ok(0) => err_done = ch.eof(),
                    Ok(n) => {
                        send(OutputStream::Stderr, &buf[..n]);
                        progress = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(self.io_err("read error output", e)),
                }
            }
            if out_done && err_done {
                break;
            }
            if !progress {
                self.wait(deadline, &what, limit)?;
            }
        }
        self.nb(deadline, limit, "close the channel", |_| ch.wait_close())?;
        let signalled = ch
            .exit_signal()
            .map(|s| s.exit_signal.is_some())
            .unwrap_or(false);
        if signalled {
            return Ok(-1);
        }
        self.nb(deadline, limit, "read the exit status", |_| {
            ch.exit_status()
        })
    }

    fn keepalive(&self) -> Result<()> {
        let limit = Duration::from_secs(10);
        self.nb(Some(Instant::now() + limit), limit, "keepalive", |s| {
            s.keepalive_send()
        })
        .map(|_| ())
    }
}

enum Job {
    Exec {
        cmd: RemoteCommand,
        out: Option<mpsc::UnboundedSender<OutputChunk>>,
        done: oneshot::Sender<Result<i32>>,
    },
}

/// An authenticated SSH session to one server, reused for many commands.
///
/// The session lives on its own thread; calls from async code only exchange
/// messages with it. It sends keepalives while idle and closes when the last
/// handle is dropped. It implements [`Transport`].
pub struct SshSession {
    target: SshTarget,
    pub(super) options: SshOptions,
    jobs: std::sync::Mutex<std_mpsc::Sender<Job>>,
    closed: Arc<AtomicBool>,
    host_key: HostKeyCheck,
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession")
            .field("host", &self.target.host)
            .field("address", &self.target.address)
            .field("user", &self.target.user)
            .finish()
    }
}

impl SshSession {
    /// Connect (with bounded retries), verify or pin the host key and
    /// authenticate.
    pub async fn connect(target: SshTarget, options: SshOptions) -> Result<SshSession> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (jobs_tx, jobs_rx) = std_mpsc::channel::<Job>();
        let closed = Arc::new(AtomicBool::new(false));
        let (t, o, c) = (target.clone(), options.clone(), closed.clone());
        let host = target.host.clone();
        std::thread::Builder::new()
            .name(format!("ssh {}", target.host))
            .spawn(move || match Conn::open_with_retries(&t, &o) {
                Ok((conn, check)) => {
                    let _ = ready_tx.send(Ok(check));
                    worker(conn, jobs_rx, &o, &c);
                }
                Err(e) => {
                    c.store(true, Ordering::SeqCst);
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| ProviderError::SshIo {
                host: host.clone(),
                action: "start the session thread".into(),
                source: e,
            })?;
        let host_key = ready_rx.await.map_err(|_| ProviderError::SessionClosed {
            host: host.clone(),
            reason: String::new(),
        })??;
        Ok(SshSession {
            target,
            options,
            jobs: std::sync::Mutex::new(jobs_tx),
            closed,
            host_key,
        })
    }

    /// Whether the connection was lost (a new session is needed).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Whether the host key was pinned by this connection (first contact)
    /// rather than verified.
    pub fn pinned_host_key(&self) -> bool {
        self.host_key == HostKeyCheck::Pinned
    }

    /// The target this session logged in to.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }
}

fn worker(conn: Conn, jobs: std_mpsc::Receiver<Job>, o: &SshOptions, closed: &AtomicBool) {
    let mut last = Instant::now();
    loop {
        match jobs.recv_timeout(o.keepalive) {
            Ok(Job::Exec { cmd, out, done }) => {
                let r = conn.exec(&cmd, out.as_ref(), o.command_timeout);
                drop(out);
                let broken = matches!(
                    r,
                    Err(ProviderError::Ssh { .. } | ProviderError::SshIo { .. })
                );
                let _ = done.send(r);
                last = Instant::now();
                if broken {
                    closed.store(true, Ordering::SeqCst);
                    return;
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                if last.elapsed() >= o.keepalive && conn.keepalive().is_err() {
                    closed.store(true, Ordering::SeqCst);
                    return;
                }
                last = Instant::now();
            }
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                conn.sess.set_blocking(true);
                conn.sess.set_timeout(2000);
                let _ = conn.sess.disconnect(None, "bye", None);
                return;
            }
        }
    }
}

#[async_trait]
impl Transport for SshSession {
    fn host(&self) -> &str {
        &self.target.host
    }

    async fn exec_streamed(
        &self,
        command: &RemoteCommand,
        output: Option<mpsc::UnboundedSender<OutputChunk>>,
    ) -> Result<i32> {
        let closed = || ProviderError::SessionClosed {
            host: self.target.host.clone(),
            reason: ": the connection was lost; open a new session".into(),
        };
        if self.is_closed() {
            return Err(closed());
        }
        let (done, rx) = oneshot::channel();
        self.jobs
            .lock()
            .map_err(|_| closed())?
            .send(Job::Exec {
                cmd: command.clone(),
                out: output,
                done,
            })
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    async fn put(&self, file: &RemoteFile, data: &[u8]) -> Result<()> {
        let mut cmd = RemoteCommand::new(file.write_script()).stdin(data.to_vec());
        cmd.sudo = file.sudo;
        self.exec_checked(&cmd, &format!("write {}", file.path))
            .await
            .map(|_| ())
    }

    async fn get(&self, path: &str, sudo: bool) -> Result<Vec<u8>> {
        let mut cmd = RemoteCommand::new(format!("cat -- {}", crate::shell_quote(path)));
        cmd.sudo = sudo;
        let out = self.exec(&cmd).await?;
        if !out.success() {
            return Err(ProviderError::RemoteCommand {
                host: self.target.host.clone(),
                command: format!("read {path}"),
                status: out.status,
                stderr: tail(&out.stderr_text(), 400),
            });
        }
        Ok(out.stdout)
    }
}
