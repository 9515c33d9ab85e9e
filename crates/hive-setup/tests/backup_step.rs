//! The backup step through the step runner on a real Debian container
//! that does not run systemd (the docker-provider servers do; their timer
//! is checked by hive-cli's backup_site test): the daily run becomes a
//! cron entry and cron is installed, while a killed run's `apt-get` still
//! holds apt's lists lock and its dpkg was left half-way (the install
//! waits for the lock and completes dpkg's work instead of failing);
//! a second run changes nothing; the backup command lists the services
//! deploy-services would define and names what is valid when asked for an
//! unknown one.
//!
//! It needs the `hive-test/debian:bookworm` image (scripts/setup-machine.sh)
//! and the Debian mirrors.

use std::process::{Command, Stdio};
use std::sync::Arc;

use async_trait::async_trait;
use hive_provider::{
    OutputChunk, OutputStream, ProviderError, RemoteCommand, RemoteFile, Transport, UnboundedSender,
};
use hive_setup::{
    BACKUP_COMMAND, BACKUP_DEFINITIONS_DIR, BackupScript, Server, ServerRole, SetupHosts,
    SetupHostsParams, StepTag, backup_definition, run_script,
};

const CONTAINER: &str = "hsetup-backup-step";

/// A server reached with `docker exec` as root.
struct DockerExec;

#[async_trait]
impl Transport for DockerExec {
    fn host(&self) -> &str {
        "repo.backup-step"
    }

    async fn exec_streamed(
        &self,
        command: &RemoteCommand,
        output: Option<UnboundedSender<OutputChunk>>,
    ) -> hive_provider::Result<i32> {
        use tokio::io::AsyncWriteExt;
        // `docker exec` runs as root already: no sudo.
        let lost = |e: std::io::Error| ProviderError::SessionClosed {
            host: "repo.backup-step".into(),
            reason: format!(": docker exec: {e}"),
        };
        let mut child = tokio::process::Command::new("docker")
            .args(["exec", "-i", CONTAINER, "sh", "-c", &command.script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(lost)?;
        let mut input = child.stdin.take().expect("stdin");
        if let Some(data) = &command.stdin {
            input.write_all(data).await.map_err(lost)?;
        }
        drop(input);
        let out = child.wait_with_output().await.map_err(lost)?;
        if let Some(tx) = output {
            for (stream, data) in [
                (OutputStream::Stdout, out.stdout),
                (OutputStream::Stderr, out.stderr),
            ] {
                let _ = tx.send(OutputChunk { stream, data });
            }
        }
        Ok(out.status.code().unwrap_or(-1))
    }

    async fn put(&self, file: &RemoteFile, data: &[u8]) -> hive_provider::Result<()> {
        let cmd = RemoteCommand::new(file.write_script()).stdin(data.to_vec());
        self.exec_checked(&cmd, &format!("write {}", file.path))
            .await
            .map(|_| ())
    }

    async fn get(&self, path: &str, _sudo: bool) -> hive_provider::Result<Vec<u8>> {
        let cmd = RemoteCommand::new(format!("cat -- {}", hive_provider::shell_quote(path)));
        Ok(self
            .exec_checked(&cmd, &format!("read {path}"))
            .await?
            .stdout)
    }
}

fn docker(args: &[&str]) -> (bool, String) {
    let o = Command::new("docker").args(args).output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn on(script: &str) -> (bool, String) {
    docker(&["exec", CONTAINER, "sh", "-c", script])
}

struct Remove;
impl Drop for Remove {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", CONTAINER]);
    }
}

#[tokio::test]
async fn backup_step_without_systemd() {
    let _ = docker(&["rm", "-f", CONTAINER]);
    let (ok, out) = docker(&[
        "run",
        "-d",
        "--name",
        CONTAINER,
        "hive-test/debian:bookworm",
        "sleep",
        "900",
    ]);
    assert!(ok, "{out}");
    let _remove = Remove;
    // The admin user, and a dpkg a killed run left half-way.
    let (ok, out) = on("useradd -m admin && touch /var/lib/dpkg/updates/0001");
    assert!(ok, "{out}");
    // A killed run's apt-get, holding the lists lock for a while.
    let (ok, out) = docker(&[
        "exec",
        "-d",
        CONTAINER,
        "apt-get",
        "-o",
        "APT::Update::Pre-Invoke::=sleep 10",
        "update",
    ]);
    assert!(ok, "{out}");
    std::thread::sleep(std::time::Duration::from_secs(1));

    let context = tempfile::tempdir().unwrap();
    let servers = vec![
        Server {
            name: "hive0.backup-step".into(),
            role: ServerRole::Hive,
            private_ip: "10.9.0.1".parse().unwrap(),
            groups: Vec::new(),
        },
        Server {
            name: "repo.backup-step".into(),
            role: ServerRole::Repository,
            private_ip: "10.9.0.2".parse().unwrap(),
            groups: Vec::new(),
        },
    ];
    let params = SetupHostsParams::new("private", "backup-step", context.path(), servers);
    let run = |check: bool| {
        SetupHosts::new(params.clone())
            .transport(Arc::new(DockerExec))
            .tags([StepTag::Backup])
            .limit(["repo.backup-step"])
            .check_mode(check)
            .run()
    };
    let first = run(false).await.unwrap();
    assert!(first.success(), "{first}");
    assert!(first.change_count() >= 4, "{first}");
    let (_, log) = on("cat /tmp/hive-apt.log");
    assert!(
        log.contains("Could not get lock /var/lib/apt/lists/lock"),
        "the lock was not met: {log}"
    );
    assert!(log.contains("dpkg was interrupted"), "{log}");
    let (ok, cron) = on("cat /etc/cron.d/hive-backup; command -v cron");
    assert!(ok, "{cron}");
    assert!(
        cron.contains(&format!("0 1 * * * root {BACKUP_COMMAND}")),
        "{cron}"
    );
    let (_, conf) = on("cat /etc/hive/backup.conf");
    assert!(
        conf.contains("HIVE_BACKUP_HIVES=hive0.backup-step\n"),
        "{conf}"
    );

    // Nothing to do the second time, in check mode or not.
    for check in [true, false] {
        let again = run(check).await.unwrap();
        assert_eq!(again.change_count(), 0, "{again}");
    }

    // The backup command lists what the definitions say.
    let db = BackupScript {
        name: "db".into(),
        backup_command: Some("gzip -c /var/lib/db/rows.db".into()),
        restore_command: Some("gunzip -c >/var/lib/db/rows.db".into()),
        ext: Some("db.gz".into()),
        ..Default::default()
    };
    let text = backup_definition("pdnsdb", &[db]);
    let out = run_script(
        &DockerExec,
        &format!("cat >{BACKUP_DEFINITIONS_DIR}/pdnsdb && {BACKUP_COMMAND} -L"),
        Some(text.as_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(out.status, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "service\thive-registry\thive-registry\ttar.gz\nservice\tpdnsdb\tdb\tdb.gz\n"
    );
    let (ok, out) = on(&format!("{BACKUP_COMMAND} -l nosuch"));
    assert!(!ok);
    assert!(
        out.contains(
            "no backup_scripts for service nosuch (services with backups: hive-registry pdnsdb )"
        ),
        "{out}"
    );
}
