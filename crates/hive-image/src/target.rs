//! Where roles are applied: a small trait and the mother machine's target.

use std::path::Path;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// A command to run on a target.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// Program and arguments (not interpreted by a shell).
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Run as this user instead of the target's default (root).
    pub user: Option<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Bytes fed to the command's standard input.
    pub stdin: Option<Vec<u8>>,
}

impl ExecRequest {
    /// A request running `script` with `/bin/sh -c`.
    ///
    /// ```
    /// let r = hive_image::ExecRequest::shell("echo hi");
    /// assert_eq!(r.argv, ["/bin/sh", "-c", "echo hi"]);
    /// ```
    pub fn shell(script: impl Into<String>) -> Self {
        ExecRequest {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            ..Default::default()
        }
    }
    /// Sets standard input.
    pub fn with_stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }
}

pub use hive_model::ExecOutput;

/// Ownership and permissions of a file put on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileAttrs {
    /// Permission bits.
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
}

impl Default for FileAttrs {
    fn default() -> Self {
        FileAttrs {
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }
}

/// A machine or container roles are applied to.
///
/// Three operations are enough for every module: run a command, put a file
/// and get a file. Implement it for a new transport (an SSH session to a
/// server, for instance) and the whole role runner works on it.
#[async_trait]
pub trait Target: Send + Sync {
    /// A short name for messages (`container build_image_x`).
    fn name(&self) -> String;
    /// Runs a command and waits for it.
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput>;
    /// Writes a whole file, replacing it (the parent directory must exist).
    async fn put_file(&self, path: &str, data: &[u8], attrs: FileAttrs) -> Result<()>;
    /// Reads a whole file; `None` when it does not exist.
    async fn get_file(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// The connection plugin and host `ansible-playbook` uses to reach this
    /// target (for modules hive does not implement).
    fn ansible_connection(&self) -> (String, String) {
        ("local".into(), "localhost".into())
    }
    /// Inventory variables of that host (how the connection reaches it).
    fn ansible_vars(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

pub use hive_model::shell_quote;

/// The mother machine itself: commands run as local processes (used for
/// `delegate_to: localhost` and the mother machine's name).
#[derive(Debug, Clone, Default)]
pub struct LocalTarget;

#[async_trait]
impl Target for LocalTarget {
    fn name(&self) -> String {
        "mother machine".into()
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput> {
        use tokio::io::AsyncWriteExt;
        let Some((prog, args)) = req.argv.split_first() else {
            return Err(Error::Transport {
                target: self.name(),
                message: "empty command".into(),
            });
        };
        let mut argv: Vec<String> = Vec::new();
        if let Some(user) = &req.user {
            argv.extend(["sudo".into(), "-u".into(), user.clone(), "--".into()]);
        }
        argv.push(prog.clone());
        argv.extend(args.iter().cloned());
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.envs(req.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &req.cwd {
            cmd.current_dir(cwd);
        }
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| Error::Transport {
            target: self.name(),
            message: format!("cannot start {}: {e}", argv[0]),
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            if let Some(data) = &req.stdin {
                // a command that does not read its input is not an error
                let _ = stdin.write_all(data).await;
            }
            drop(stdin);
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| Error::Transport {
                target: self.name(),
                message: format!("waiting for {}: {e}", argv[0]),
            })?;
        Ok(ExecOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    async fn put_file(&self, path: &str, data: &[u8], attrs: FileAttrs) -> Result<()> {
        hive_model::fs::write_atomic(Path::new(path), data, attrs.mode).map_err(Error::io(path))
    }

    async fn get_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io {
                path: path.into(),
                source: e,
            }),
        }
    }
}
