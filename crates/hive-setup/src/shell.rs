//! How the phase reaches a server: one small trait.

use async_trait::async_trait;

use super::error::{Result, SetupHostsError};

pub use hive_provider::ExecOutput;

/// Runs shell scripts as root on one server.
///
/// The phase needs nothing more: files are written by scripts that read
/// their content from standard input. It is implemented over the SSH
/// transport of `hive-provider` and, in tests, over `docker exec`.
#[async_trait]
pub trait HostShell: Send + Sync {
    /// The server's name, for messages.
    fn host(&self) -> &str;

    /// Run `script` with `sh` as root, feeding `stdin` when given.
    ///
    /// Fails with [`SetupHostsError::Unreachable`] when the server cannot be
    /// reached; a script that exits non-zero is not an error here.
    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<ExecOutput>;
}

/// Run `script` and fail unless it exits with 0; `what` names it in errors.
pub(crate) async fn run_checked(
    shell: &dyn HostShell,
    script: &str,
    stdin: Option<&[u8]>,
    what: &str,
) -> Result<ExecOutput> {
    let out = shell.run(script, stdin).await?;
    if out.status == 0 {
        Ok(out)
    } else {
        Err(SetupHostsError::Remote {
            host: shell.host().to_string(),
            what: what.to_string(),
            status: out.status,
            stderr: out.stderr_tail(600),
        })
    }
}

/// Quote `s` for a POSIX shell.
pub(crate) fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r#"'\''"#))
}
