//! A server of the stage as a target of hive-image's role runner, over the
//! SSH transport of hive-provider (the `addon` step of setup-hosts).

use std::sync::Arc;

use async_trait::async_trait;
use hive_image::{ExecOutput, ExecRequest, FileAttrs, Target, shell_quote};
use hive_provider::{RemoteCommand, RemoteFile, Transport};

/// A server reached through a [`Transport`]; commands run as root (or as
/// the task's `become_user`).
pub struct ServerTarget {
    transport: Arc<dyn Transport>,
}

impl ServerTarget {
    /// The server behind `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        ServerTarget { transport }
    }

    fn error(&self, e: impl std::fmt::Display) -> hive_image::Error {
        hive_image::Error::Transport {
            target: self.transport.host().to_string(),
            message: e.to_string(),
        }
    }
}

/// The shell text running `req` (working directory, environment, argv).
fn script(req: &ExecRequest) -> String {
    let mut s = String::new();
    if let Some(cwd) = &req.cwd {
        s.push_str(&format!("cd {} && ", shell_quote(cwd)));
    }
    s.push_str("exec env");
    for (k, v) in &req.env {
        s.push(' ');
        s.push_str(&shell_quote(&format!("{k}={v}")));
    }
    for a in &req.argv {
        s.push(' ');
        s.push_str(&shell_quote(a));
    }
    match req.user.as_deref() {
        Some(user) if user != "root" => format!(
            "exec sudo -n -H -u {} -- sh -c {}",
            shell_quote(user),
            shell_quote(&s)
        ),
        _ => s,
    }
}

#[async_trait]
impl Target for ServerTarget {
    fn name(&self) -> String {
        self.transport.host().to_string()
    }

    async fn exec(&self, req: &ExecRequest) -> hive_image::Result<ExecOutput> {
        // Without input of its own, the script travels on standard input
        // (out of the process list) and runs with /dev/null as input.
        let mut cmd = RemoteCommand::new(script(req)).sudo();
        if let Some(data) = &req.stdin {
            cmd = cmd.stdin(data.clone());
        }
        self.transport.exec(&cmd).await.map_err(|e| self.error(e))
    }

    async fn put_file(&self, path: &str, data: &[u8], attrs: FileAttrs) -> hive_image::Result<()> {
        let file = RemoteFile::new(path, attrs.mode)
            .owned_by(attrs.uid.to_string(), attrs.gid.to_string());
        self.transport
            .put(&file, data)
            .await
            .map_err(|e| self.error(e))
    }

    async fn get_file(&self, path: &str) -> hive_image::Result<Option<Vec<u8>>> {
        let probe = RemoteCommand::new(format!("test -f {}", shell_quote(path))).sudo();
        let out = self
            .transport
            .exec(&probe)
            .await
            .map_err(|e| self.error(e))?;
        if !out.success() {
            return Ok(None);
        }
        self.transport
            .get(path, true)
            .await
            .map(Some)
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_keep_words_cwd_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("my app");
        std::fs::create_dir(&cwd).unwrap();
        let req = ExecRequest {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                "printf '%s|%s|%s' \"$PWD\" \"$GREETING\" \"$1\"".into(),
                "sh".into(),
                "it's a b".into(),
            ],
            env: vec![("GREETING".into(), "hello world".into())],
            user: None,
            cwd: Some(cwd.to_string_lossy().into_owned()),
            stdin: None,
        };
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script(&req))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{}|hello world|it's a b", cwd.display())
        );
        let as_app = ExecRequest {
            user: Some("app".into()),
            ..ExecRequest::shell("id -u")
        };
        assert!(
            script(&as_app).starts_with("exec sudo -n -H -u app -- sh -c "),
            "{}",
            script(&as_app)
        );
    }
}
