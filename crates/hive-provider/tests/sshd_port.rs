//! `sshd_port` (`hive_sshd_port`) on a one-server `docker` stage over real
//! sshd: build-infra falls back to 22 on a fresh server; the pool refuses
//! to follow sshd to a port it does not listen on and changes nothing; once
//! sshd listens there, the pool follows it (ssh_config and the `[IP]:PORT`
//! pin); build-infra then reaches it there without a change, re-pins a
//! dropped `[IP]:PORT` pin only with the key pinned for port 22, and
//! refuses another key.

use std::path::Path;
use std::process::Command;

use hive_provider::{
    BuildInfraOptions, DockerProvider, Provider, ProviderError, RemoteCommand, ServerRole,
    ServerSpec, SshConfig, SshPool, StageSpec, Transport, build_infra,
};

const PREFIX: &str = "hsshport-prov-";
const STAGE_LABEL: &str = "io.hive.stage=hsshport-prov-hsshportp-private";
const IP: &str = "172.31.254.10";
const HOST: &str = "p-hive0.hsshportp";
const PORT: u16 = 2222;

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().expect("docker")
}

/// Removes whatever the test created, even when it fails half-way.
struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        for (kind, list) in [
            ("container", vec!["ps", "-aq"]),
            ("volume", vec!["volume", "ls", "-q"]),
            ("network", vec!["network", "ls", "-q"]),
        ] {
            let filter = format!("label={STAGE_LABEL}");
            let mut args = list.clone();
            args.extend(["--filter", filter.as_str()]);
            let ids = String::from_utf8_lossy(&docker(&args).stdout).into_owned();
            for id in ids.lines().filter(|l| !l.is_empty()) {
                let rm: Vec<&str> = match kind {
                    "container" => vec!["rm", "-f", "-v", id],
                    "volume" => vec!["volume", "rm", "-f", id],
                    _ => vec!["network", "rm", id],
                };
                let _ = docker(&rm);
            }
        }
    }
}

fn pins(known_hosts: &Path, pattern: &str) -> Vec<String> {
    std::fs::read_to_string(known_hosts)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(h, _)| *h == pattern)
        .map(|(_, key)| key.to_string())
        .collect()
}

/// known_hosts without the lines of `pattern`, plus `extra`.
fn rewrite_pins(known_hosts: &Path, pattern: &str, extra: &str) {
    let kept: String = std::fs::read_to_string(known_hosts)
        .unwrap()
        .lines()
        .filter(|l| l.split_once(' ').is_none_or(|(h, _)| h != pattern))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(known_hosts, format!("{kept}{extra}")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_infra_and_pool_follow_sshd_port() {
    let _cleanup = Cleanup;
    let work = tempfile::Builder::new().prefix(PREFIX).tempdir().unwrap();
    let mut spec = StageSpec::new(
        "hsshportp",
        "private",
        "docker",
        "172.31.254.0/24".parse().unwrap(),
        work.path().join(".hive/private"),
    );
    spec.servers.push(ServerSpec::new(
        HOST,
        ServerRole::Repository,
        IP.parse().unwrap(),
    ));
    spec.attributes.insert("name_prefix".into(), PREFIX.into());
    spec.sshd_port = PORT;
    let provider = DockerProvider::new();
    provider.destroy(&spec).await.unwrap();
    let config = spec.ssh_config_path();
    let known = spec.known_hosts_path();
    let moved = format!("[{IP}]:{PORT}");

    // A fresh server answers on 22 only.
    let report = build_infra(&provider, &spec, &BuildInfraOptions::default())
        .await
        .unwrap();
    assert_eq!(report.servers[0].endpoint.port, 22);
    assert_eq!(SshConfig::load(&config).unwrap().hosts[0].port, 22);
    let key = pins(&known, IP);
    assert_eq!(key.len(), 1);
    assert!(pins(&known, &moved).is_empty());

    // Following sshd to a port it does not listen on fails and changes
    // nothing.
    let pool = SshPool::from_ssh_config(&config).unwrap();
    let config_before = std::fs::read(&config).unwrap();
    let known_before = std::fs::read(&known).unwrap();
    let err = pool.move_port(HOST, PORT).await.unwrap_err();
    assert!(err.to_string().contains(&format!("{IP}:{PORT}")), "{err}");
    assert_eq!(std::fs::read(&config).unwrap(), config_before);
    assert_eq!(std::fs::read(&known).unwrap(), known_before);
    assert_eq!(pool.target(HOST).unwrap().port, 22);

    // sshd moves (as setup-hosts' base step does it, over the session).
    let session = pool.session(HOST).await.unwrap();
    let out = session
        .exec_checked(
            &RemoteCommand::new(format!(
                "grep -q '^Include /etc/ssh/sshd_config.d/' /etc/ssh/sshd_config || \
                 sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config; \
                 mkdir -p /etc/ssh/sshd_config.d && \
                 printf 'Port {PORT}\\n' >/etc/ssh/sshd_config.d/00-hive.conf && sshd -t && \
                 {{ systemctl reload ssh 2>/dev/null || kill -HUP \"$(cat /run/sshd.pid)\"; }}"
            ))
            .sudo(),
            "move sshd",
        )
        .await
        .unwrap();
    assert!(out.success());
    drop(session);
    let mut moved_ok = false;
    for _ in 0..50 {
        match pool.move_port(HOST, PORT).await {
            Ok(changed) => {
                assert!(changed);
                moved_ok = true;
                break;
            }
            Err(ProviderError::Connect { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(moved_ok, "sshd never answered on {PORT}");
    assert_eq!(SshConfig::load(&config).unwrap().hosts[0].port, PORT);
    assert_eq!(pins(&known, &moved), key);
    assert_eq!(pool.target(HOST).unwrap().port, PORT);
    let out = pool
        .session(HOST)
        .await
        .unwrap()
        .exec(&RemoteCommand::new("echo $SSH_CONNECTION"))
        .await
        .unwrap();
    assert!(
        out.stdout_text().trim_end().ends_with(&format!(" {PORT}")),
        "{}",
        out.stdout_text()
    );
    assert!(!pool.move_port(HOST, PORT).await.unwrap());

    // build-infra reaches it on the new port: nothing changes.
    let config_before = std::fs::read(&config).unwrap();
    let known_before = std::fs::read(&known).unwrap();
    let report = build_infra(&provider, &spec, &BuildInfraOptions::default())
        .await
        .unwrap();
    assert!(!report.changed(), "{report:?}");
    assert_eq!(report.servers[0].endpoint.port, PORT);
    assert_eq!(std::fs::read(&config).unwrap(), config_before);
    assert_eq!(std::fs::read(&known).unwrap(), known_before);

    // The `[IP]:PORT` pin lost: build-infra pins it again, with the key
    // pinned for port 22 only.
    rewrite_pins(&known, &moved, "");
    let report = build_infra(&provider, &spec, &BuildInfraOptions::default())
        .await
        .unwrap();
    assert!(report.servers[0].host_key_pinned, "{report:?}");
    assert_eq!(pins(&known, &moved), key);

    // Another key pinned for port 22 and none for the new port: the key on
    // the new port is refused, nothing is pinned.
    rewrite_pins(&known, &moved, "");
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6yX8G1xOf2bqkqgQeWm0x3Qz0i3Yb1Vw6lD0cJr3cK";
    rewrite_pins(&known, IP, &format!("{IP} {other}\n"));
    let err = build_infra(&provider, &spec, &BuildInfraOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::HostKeyChanged(m) if m.pattern == IP),
        "{err}"
    );
    assert!(pins(&known, &moved).is_empty());

    provider.destroy(&spec).await.unwrap();
}
