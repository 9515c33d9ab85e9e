//! The SSH transport: sessions on `ssh2` that never block the async
//! runtime, host keys pinned in the stage's known_hosts, Unix socket
//! forwarding, and a pool with one session per server.

mod forward;
pub mod known_hosts;
mod pool;
mod session;

pub use forward::UnixSocketForward;
pub use known_hosts::{HostKeyCheck, HostKeyPolicy};
pub use pool::{PooledServer, SshPool};
pub use session::{SshAuth, SshOptions, SshSession, SshTarget};
