//! A running container as a target, through the Docker API.
//!
//! Commands go through one long-lived `sh` attached with an exec (one
//! request/answer exchange per command instead of three HTTP requests);
//! commands run as another user use their own exec. Files go through the
//! engine's archive endpoints.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use bollard::Docker;
use bollard::container::{DownloadFromContainerOptions, LogOutput, UploadToContainerOptions};
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::target::{ExecOutput, ExecRequest, FileAttrs, Target, shell_quote};

type Output = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
>;
type Input = std::pin::Pin<Box<dyn AsyncWrite + Send>>;

struct Session {
    input: Input,
    output: Output,
    buf: Vec<u8>,
    err: Vec<u8>,
    seq: u64,
}

/// A running container reached through a Docker engine.
pub struct ContainerTarget {
    docker: Docker,
    container: String,
    session: Arc<Mutex<Option<Session>>>,
    persistent: bool,
    docker_host: Option<String>,
}

impl std::fmt::Debug for ContainerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerTarget")
            .field("container", &self.container)
            .finish()
    }
}

impl ContainerTarget {
    /// A target for the running container `container` on `docker`.
    pub fn new(docker: Docker, container: impl Into<String>) -> Self {
        ContainerTarget {
            docker,
            container: container.into(),
            session: Arc::new(Mutex::new(None)),
            persistent: true,
            docker_host: None,
        }
    }

    /// The `DOCKER_HOST` of `docker` (a `unix://` socket) for the Docker
    /// command line, so that `ansible-playbook` reaches the container too
    /// (modules hive does not implement); without it, the mother machine's
    /// own engine.
    pub fn docker_host(mut self, host: impl Into<String>) -> Self {
        self.docker_host = Some(host.into());
        self
    }

    /// Runs every command in its own exec instead of the shared shell
    /// (for images without `sh` or `base64`).
    pub fn without_shared_shell(mut self) -> Self {
        self.persistent = false;
        self
    }

    /// The container's name or id.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// Ends the shared shell. Call before stopping or committing the
    /// container.
    pub async fn close(&self) {
        let mut guard = self.session.lock().await;
        if let Some(mut s) = guard.take() {
            let _ = s.input.write_all(b"exit 0\n").await;
            let _ = s.input.shutdown().await;
            // wait for the shell to end so that its EXIT trap ran
            while let Some(Ok(_)) = s.output.next().await {}
        }
    }

    fn transport(&self, message: impl Into<String>) -> Error {
        Error::Transport {
            target: self.name(),
            message: message.into(),
        }
    }

    /// Creates and starts an exec of `options` in the container, attached:
    /// its id, its output and its standard input.
    async fn attach(&self, options: CreateExecOptions<String>) -> Result<(String, Output, Input)> {
        let what = || format!("exec in {}", self.container);
        let exec = self
            .docker
            .create_exec(&self.container, options)
            .await
            .map_err(Error::docker(what()))?;
        let started = self
            .docker
            .start_exec(&exec.id, None::<StartExecOptions>)
            .await
            .map_err(Error::docker(what()))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(self.transport("exec did not attach"));
        };
        Ok((exec.id, output, input))
    }

    async fn start_session(&self) -> Result<Session> {
        let (_, output, input) = self
            .attach(CreateExecOptions::<String> {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(vec!["/bin/sh".into()]),
                ..Default::default()
            })
            .await?;
        Ok(Session {
            input,
            output,
            buf: Vec::new(),
            err: Vec::new(),
            seq: 0,
        })
    }

    async fn exec_in_session(&self, s: &mut Session, req: &ExecRequest) -> Result<ExecOutput> {
        s.seq += 1;
        let marker = format!("__HIVE_{}_{}__", s.seq, rand_suffix());
        // the command runs in a subshell of the session's shell; a script for
        // `sh -c` runs there directly (one process less)
        let mut inner = String::new();
        if let Some(cwd) = &req.cwd {
            inner.push_str(&format!("cd {} || exit 1\n", shell_quote(cwd)));
        }
        for (k, v) in &req.env {
            inner.push_str(&format!("export {}={}\n", k, shell_quote(v)));
        }
        match req.argv.as_slice() {
            [sh, c, script] if (sh == "/bin/sh" || sh == "sh") && c == "-c" => {
                inner.push_str(script);
                inner.push('\n');
            }
            argv => {
                inner.push_str("exec");
                for a in argv {
                    inner.push(' ');
                    inner.push_str(&shell_quote(a));
                }
                inner.push('\n');
            }
        }
        let mut script = String::new();
        match &req.stdin {
            Some(data) if !data.is_empty() => {
                let enc = base64::engine::general_purpose::STANDARD.encode(data);
                // the here-document ends before the pipe, then the command
                script.push_str(&format!("{{ base64 -d <<'{marker}'\n"));
                for chunk in enc.as_bytes().chunks(76) {
                    script.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                    script.push('\n');
                }
                script.push_str(&format!("{marker}\n}} | (\n{inner})\n"));
            }
            _ => script.push_str(&format!("(\n{inner}) </dev/null\n")),
        }
        script.push_str(&format!(
            "printf '\\n{marker} %s\\n' \"$?\"; printf '\\n{marker}\\n' >&2\n"
        ));
        s.input
            .write_all(script.as_bytes())
            .await
            .map_err(|e| self.transport(format!("writing to shell: {e}")))?;
        s.input
            .flush()
            .await
            .map_err(|e| self.transport(format!("writing to shell: {e}")))?;
        let out_head = format!("\n{marker} ");
        let err_head = format!("\n{marker}\n");
        let mut done: Option<(Vec<u8>, i32)> = None;
        loop {
            if done.is_none() {
                if let Some(pos) = find(&s.buf, out_head.as_bytes()) {
                    let rest = &s.buf[pos + out_head.len()..];
                    if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                        let rc = String::from_utf8_lossy(&rest[..nl])
                            .trim()
                            .parse()
                            .unwrap_or(-1);
                        let stdout = s.buf[..pos].to_vec();
                        s.buf.drain(..pos + out_head.len() + nl + 1);
                        done = Some((stdout, rc));
                    }
                }
            }
            if let Some((stdout, rc)) = &done {
                if let Some(pos) = find(&s.err, err_head.as_bytes()) {
                    let stderr = s.err[..pos].to_vec();
                    s.err.drain(..pos + err_head.len());
                    return Ok(ExecOutput {
                        status: *rc,
                        stdout: stdout.clone(),
                        stderr,
                    });
                }
            }
            match s.output.next().await {
                Some(Ok(LogOutput::StdOut { message }))
                | Some(Ok(LogOutput::Console { message })) => s.buf.extend_from_slice(&message),
                Some(Ok(LogOutput::StdErr { message })) => s.err.extend_from_slice(&message),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(self.transport(format!("reading from shell: {e}"))),
                None => return Err(self.transport("the shell in the container ended")),
            }
        }
    }

    async fn exec_once(&self, req: &ExecRequest) -> Result<ExecOutput> {
        let (exec_id, mut output, mut input) = self
            .attach(CreateExecOptions::<String> {
                attach_stdin: Some(req.stdin.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(req.argv.clone()),
                env: Some(req.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                user: req.user.clone(),
                working_dir: req.cwd.clone(),
                ..Default::default()
            })
            .await?;
        if let Some(data) = &req.stdin {
            let _ = input.write_all(data).await;
            let _ = input.shutdown().await;
        }
        drop(input);
        let mut out = ExecOutput::default();
        while let Some(item) = output.next().await {
            match item.map_err(Error::docker("reading exec output"))? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    out.stdout.extend_from_slice(&message)
                }
                LogOutput::StdErr { message } => out.stderr.extend_from_slice(&message),
                LogOutput::StdIn { .. } => {}
            }
        }
        let info = self
            .docker
            .inspect_exec(&exec_id)
            .await
            .map_err(Error::docker("inspecting exec"))?;
        out.status = info
            .exit_code
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or(-1);
        Ok(out)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rand_suffix() -> String {
    use rand::Rng;
    format!("{:08x}", rand::thread_rng().r#gen::<u32>())
}

#[async_trait]
impl Target for ContainerTarget {
    fn name(&self) -> String {
        format!("container {}", self.container)
    }

    fn ansible_connection(&self) -> (String, String) {
        (crate::ansible::CONNECTION.into(), self.container.clone())
    }

    fn ansible_vars(&self) -> Vec<(String, String)> {
        self.docker_host
            .iter()
            .map(|h| ("hive_docker_host".to_string(), h.clone()))
            .collect()
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput> {
        if !self.persistent || req.user.as_deref().is_some_and(|u| u != "root") {
            return self.exec_once(req).await;
        }
        let mut guard = self.session.lock().await;
        if guard.is_none() {
            *guard = Some(self.start_session().await?);
        }
        let Some(s) = guard.as_mut() else {
            return Err(self.transport("no shell session"));
        };
        match self.exec_in_session(s, req).await {
            Ok(o) => Ok(o),
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }

    async fn put_file(&self, path: &str, data: &[u8], attrs: FileAttrs) -> Result<()> {
        let p = std::path::Path::new(path);
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            return Err(self.transport(format!("invalid path {path}")));
        };
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(attrs.mode);
        header.set_uid(attrs.uid.into());
        header.set_gid(attrs.gid.into());
        header.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_data(&mut header, name, data)
            .map_err(|e| self.transport(format!("packing {path}: {e}")))?;
        let archive = builder
            .into_inner()
            .map_err(|e| self.transport(format!("packing {path}: {e}")))?;
        self.docker
            .upload_to_container(
                &self.container,
                Some(UploadToContainerOptions {
                    path: dir.to_string_lossy().into_owned(),
                    ..Default::default()
                }),
                archive.into(),
            )
            .await
            .map_err(Error::docker(format!(
                "uploading {path} to {}",
                self.container
            )))
    }

    async fn get_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let mut stream = self.docker.download_from_container(
            &self.container,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => archive.extend_from_slice(&b),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {
                    return Ok(None);
                }
                Err(e) => return Err(Error::docker(format!("downloading {path}"))(e)),
            }
        }
        let mut ar = tar::Archive::new(&archive[..]);
        let entries = ar
            .entries()
            .map_err(|e| self.transport(format!("unpacking {path}: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.transport(format!("unpacking {path}: {e}")))?;
            if entry.header().entry_type().is_file() {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut data)
                    .map_err(|e| self.transport(format!("unpacking {path}: {e}")))?;
                return Ok(Some(data));
            }
        }
        Ok(None)
    }
}
