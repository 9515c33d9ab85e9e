//! The command transport other crates use to act on servers: a small trait
//! with three required methods, implemented over SSH by
//! [`SshSession`](crate::ssh::SshSession) and easy to implement in tests.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::error::{ProviderError, Result};

/// A shell command to run on a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteCommand {
    /// Shell text, run by `sh -c` on the server.
    pub script: String,
    /// Run as root with `sudo -n` (no-op when logged in as root).
    pub sudo: bool,
    /// Bytes sent to the command's standard input (then end of file).
    pub stdin: Option<Vec<u8>>,
    /// Give up (and report a timeout) after this long.
    pub timeout: Option<std::time::Duration>,
}

impl RemoteCommand {
    /// A command run as the login user.
    pub fn new(script: impl Into<String>) -> Self {
        RemoteCommand {
            script: script.into(),
            ..Default::default()
        }
    }
    /// Run it as root through `sudo`.
    pub fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }
    /// Feed `data` to its standard input.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }
    /// Limit its run time.
    pub fn timeout(mut self, t: std::time::Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// What is sent to the server: the command line and its standard input.
    ///
    /// Without standard input of its own, the script itself travels on
    /// standard input (`sh -s`, wrapped in a `{ ...; } </dev/null` group so
    /// that the shell reads all of it before running any of it), not on
    /// the command line: it may hold secrets (keys, passwords), and command
    /// lines are visible to every user of the server in the process list.
    ///
    /// ```
    /// use hive_provider::RemoteCommand;
    /// let (line, stdin) = RemoteCommand::new("echo secret").sudo().wire();
    /// assert_eq!(line, "sudo -n -- sh -s");
    /// assert!(String::from_utf8(stdin).unwrap().contains("echo secret"));
    /// ```
    pub fn wire(&self) -> (String, Vec<u8>) {
        match &self.stdin {
            Some(data) => (self.command_line(), data.clone()),
            None => {
                let line = if self.sudo {
                    "sudo -n -- sh -s".to_string()
                } else {
                    "sh -s".to_string()
                };
                let body = format!("{{\n{}\n}} </dev/null\n", self.script);
                (line, body.into_bytes())
            }
        }
    }

    /// The command line that runs the script given as an argument.
    pub fn command_line(&self) -> String {
        if self.sudo {
            format!("sudo -n -- sh -c {}", shell_quote(&self.script))
        } else {
            format!("sh -c {}", shell_quote(&self.script))
        }
    }
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A piece of a command's output, as it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// The stream.
    pub stream: OutputStream,
    /// The bytes.
    pub data: Vec<u8>,
}

pub use hive_model::ExecOutput;

/// A file to write on a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Absolute path on the server.
    pub path: String,
    /// Permission bits, e.g. `0o640`.
    pub mode: u32,
    /// Owner; unchanged (the writing user) when `None`.
    pub owner: Option<String>,
    /// Group; the owner's group when `None` and `owner` is set.
    pub group: Option<String>,
    /// Write as root through `sudo`.
    pub sudo: bool,
}

impl RemoteFile {
    /// A file with `mode`, written as the login user.
    pub fn new(path: impl Into<String>, mode: u32) -> Self {
        RemoteFile {
            path: path.into(),
            mode,
            owner: None,
            group: None,
            sudo: false,
        }
    }
    /// Set owner and group (implies sudo).
    pub fn owned_by(mut self, owner: impl Into<String>, group: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self.group = Some(group.into());
        self.sudo = true;
        self
    }
    /// Write as root.
    pub fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }

    /// The script that writes standard input to the file atomically.
    pub fn write_script(&self) -> String {
        let p = shell_quote(&self.path);
        let mut s = format!(
            "set -e; t=$(mktemp \"$(dirname {p})/.hive-put.XXXXXX\"); trap 'rm -f \"$t\"' EXIT; cat >\"$t\"; chmod {:o} \"$t\"; ",
            self.mode
        );
        if let Some(owner) = &self.owner {
            let group = self.group.clone().unwrap_or_default();
            let spec = if group.is_empty() {
                shell_quote(owner)
            } else {
                shell_quote(&format!("{owner}:{group}"))
            };
            s.push_str(&format!("chown {spec} \"$t\"; "));
        }
        s.push_str(&format!("mv -f \"$t\" {p}; trap - EXIT"));
        s
    }
}

/// What [`Transport::stat`] reports about a remote file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFileInfo {
    /// Permission bits, e.g. `0o640`.
    pub mode: u32,
    /// Owner name.
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Size in bytes.
    pub size: u64,
}

pub use hive_model::shell_quote;

/// Run commands and move files on one server.
///
/// Three required methods; `exec` and the checked variants are provided.
#[async_trait]
pub trait Transport: Send + Sync {
    /// The server's name, for messages.
    fn host(&self) -> &str;

    /// Run `command`, sending its output to `output` as it arrives (when
    /// given), and return its exit status.
    async fn exec_streamed(
        &self,
        command: &RemoteCommand,
        output: Option<mpsc::UnboundedSender<OutputChunk>>,
    ) -> Result<i32>;

    /// Write `data` to `file` atomically, with its mode and owner.
    async fn put(&self, file: &RemoteFile, data: &[u8]) -> Result<()>;

    /// Read the file at `path` (as root when `sudo`).
    async fn get(&self, path: &str, sudo: bool) -> Result<Vec<u8>>;

    /// Run `command` and collect its output.
    async fn exec(&self, command: &RemoteCommand) -> Result<ExecOutput> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let status = self.exec_streamed(command, Some(tx)).await?;
        let mut out = ExecOutput {
            status,
            ..Default::default()
        };
        while let Some(chunk) = rx.recv().await {
            match chunk.stream {
                OutputStream::Stdout => out.stdout.extend_from_slice(&chunk.data),
                OutputStream::Stderr => out.stderr.extend_from_slice(&chunk.data),
            }
        }
        Ok(out)
    }

    /// Mode, owner, group and size of the file at `path` (with `stat`).
    async fn stat(&self, path: &str, sudo: bool) -> Result<RemoteFileInfo> {
        let mut cmd = RemoteCommand::new(format!("stat -c '%a %U %G %s' -- {}", shell_quote(path)));
        cmd.sudo = sudo;
        let out = self.exec_checked(&cmd, &format!("stat {path}")).await?;
        let text = out.stdout_text();
        let f: Vec<&str> = text.split_whitespace().collect();
        let bad = || ProviderError::RemoteCommand {
            host: self.host().to_string(),
            command: format!("stat {path}"),
            status: 0,
            stderr: format!("unexpected output `{}`", text.trim()),
        };
        if f.len() != 4 {
            return Err(bad());
        }
        Ok(RemoteFileInfo {
            mode: u32::from_str_radix(f[0], 8).map_err(|_| bad())?,
            owner: f[1].to_string(),
            group: f[2].to_string(),
            size: f[3].parse().map_err(|_| bad())?,
        })
    }

    /// Run `command` and fail with [`ProviderError::RemoteCommand`] unless it
    /// exits with 0; `what` names it in the error.
    async fn exec_checked(&self, command: &RemoteCommand, what: &str) -> Result<ExecOutput> {
        let out = self.exec(command).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(ProviderError::RemoteCommand {
                host: self.host().to_string(),
                command: what.to_string(),
                status: out.status,
                stderr: tail(&out.stderr_text(), 400),
            })
        }
    }
}

pub(crate) use hive_model::output::tail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        fn check(cmd: RemoteCommand, expected: &str) {
            assert_eq!(cmd.command_line(), expected);
        }
        check(RemoteCommand::new("echo hi"), "sh -c 'echo hi'");
        check(
            RemoteCommand::new("id -u").sudo(),
            "sudo -n -- sh -c 'id -u'",
        );
        check(
            RemoteCommand::new("echo 'x'"),
            r#"sh -c 'echo '"'"'x'"'"''"#,
        );
    }

    #[test]
    fn write_script_sets_mode_and_owner() {
        let s = RemoteFile::new("/etc/hive x", 0o640)
            .owned_by("root", "adm")
            .write_script();
        assert!(s.contains("chmod 640"), "{s}");
        assert!(s.contains("chown root:adm"), "{s}");
        assert!(s.contains("mv -f \"$t\" '/etc/hive x'"), "{s}");
    }
}

#[cfg(test)]
mod fake_transport_tests {
    use super::*;

    /// A transport a test of another crate would write: replays recorded
    /// output and remembers what it was asked.
    struct Recorded {
        calls: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Transport for Recorded {
        fn host(&self) -> &str {
            "p-hive0.pdns"
        }
        async fn exec_streamed(
            &self,
            command: &RemoteCommand,
            output: Option<mpsc::UnboundedSender<OutputChunk>>,
        ) -> Result<i32> {
            self.calls.lock().unwrap().push(command.command_line());
            if let Some(tx) = output {
                for (stream, data) in [
                    (OutputStream::Stdout, "a"),
                    (OutputStream::Stderr, "warn"),
                    (OutputStream::Stdout, "b"),
                ] {
                    let _ = tx.send(OutputChunk {
                        stream,
                        data: data.into(),
                    });
                }
            }
            Ok(if command.script.contains("fail") {
                2
            } else {
                0
            })
        }
        async fn put(&self, file: &RemoteFile, data: &[u8]) -> Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("put {} {}", file.path, data.len()));
            Ok(())
        }
        async fn get(&self, path: &str, _sudo: bool) -> Result<Vec<u8>> {
            Ok(path.as_bytes().to_vec())
        }
    }

    #[tokio::test]
    async fn provided_methods_collect_and_check() {
        let t = Recorded {
            calls: Default::default(),
        };
        let out = t.exec(&RemoteCommand::new("x")).await.unwrap();
        assert_eq!(out.stdout, b"ab");
        assert_eq!(out.stderr, b"warn");
        let err = t
            .exec_checked(&RemoteCommand::new("fail").sudo(), "the step")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "p-hive0.pdns: `the step` exited with 2: warn"
        );
        t.put(&RemoteFile::new("/etc/x", 0o644), b"123")
            .await
            .unwrap();
        assert_eq!(
            *t.calls.lock().unwrap(),
            ["sh -c x", "sudo -n -- sh -c fail", "put /etc/x 3"]
        );
    }
}
