//! A 4-server stage (3 hives + repository) on the real Docker engine with
//! the `docker` provider, reached over real sshd; then the same servers as
//! a `prepared` stage with root-password bootstrap; a changed host key;
//! destroy leaving nothing.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hive_provider::{
    AdminAccount, BuildInfraOptions, DockerProvider, PreparedProvider, Provider, ProviderError,
    RemoteCommand, RemoteFile, Secret, ServerChange, ServerRole, ServerSpec, SshAuth, SshOptions,
    SshPool, SshSession, SshTarget, StageSpec, Transport, build_infra, destroy_infra, halt_infra,
};

const PREFIX: &str = "hprov-test-";
const STAGE_LABEL: &str = "io.hive.stage=hprov-test-hprov-private";

fn ip(i: usize) -> String {
    format!("172.31.240.{}", 10 + i)
}

fn stage(ctx: &Path, provider: &str) -> StageSpec {
    let mut s = StageSpec::new(
        "hprov",
        "private",
        provider,
        "172.31.240.0/24".parse().unwrap(),
        ctx,
    );
    for i in 0..4 {
        let role = if i == 3 {
            ServerRole::Repository
        } else {
            ServerRole::Hive
        };
        s.servers.push(ServerSpec::new(
            format!("p-hive{i}.hprov"),
            role,
            ip(i).parse().unwrap(),
        ));
    }
    if provider == "docker" {
        s.attributes.insert("name_prefix".into(), PREFIX.into());
    }
    s
}

fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker_exec(container: &str, script: &str) {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
            let ids = docker_cli(&args);
            for id in ids.lines().filter(|l| !l.is_empty()) {
                let rm: Vec<&str> = match kind {
                    "container" => vec!["rm", "-f", "-v", id],
                    "volume" => vec!["volume", "rm", "-f", id],
                    _ => vec!["network", "rm", id],
                };
                let _ = Command::new("docker").args(&rm).output();
            }
        }
    }
}

/// The checks both stages must pass: commands on all servers in parallel,
/// sessions reused, streamed output and exit status, sudo, upload and
/// download with mode and owner, timeouts, the system ssh client.
async fn check_servers(pool: &SshPool, user: &str, ssh_config: &Path) {
    let cmd = RemoteCommand::new(
        "hostname; ip -4 -o addr show | awk '{print $4}' | grep '^172\\.31\\.240\\.' | cut -d/ -f1; id -un; sudo -n id -u",
    );
    let results = pool.exec_all(&cmd).await;
    assert_eq!(results.len(), 4);
    for (i, (host, out)) in results.into_iter().enumerate() {
        let out = out.unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(out.success(), "{host}: {}", out.stderr_text());
        let lines: Vec<String> = out.stdout_text().lines().map(str::to_string).collect();
        assert_eq!(
            lines,
            vec![
                format!("p-hive{i}"),
                ip(i),
                user.to_string(),
                "0".to_string()
            ],
            "{host}"
        );
    }
    // One session per host, reused.
    let a = pool.session("p-hive1.hprov").await.unwrap();
    let b = pool.session("p-hive1.hprov").await.unwrap();
    assert!(Arc::ptr_eq(&a, &b));

    // Streamed output, both streams, exit status.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let status = a
        .exec_streamed(
            &RemoteCommand::new("echo out; echo err >&2; sleep 0.2; echo late; exit 3"),
            Some(tx),
        )
        .await
        .unwrap();
    assert_eq!(status, 3);
    let mut chunks = Vec::new();
    while let Some(c) = rx.recv().await {
        chunks.push(c);
    }
    let stdout: Vec<u8> = chunks
        .iter()
        .filter(|c| c.stream == hive_provider::OutputStream::Stdout)
        .flat_map(|c| c.data.clone())
        .collect();
    let stderr: Vec<u8> = chunks
        .iter()
        .filter(|c| c.stream == hive_provider::OutputStream::Stderr)
        .flat_map(|c| c.data.clone())
        .collect();
    assert_eq!(stdout, b"out\nlate\n");
    assert_eq!(stderr, b"err\n");
    assert!(
        chunks.len() >= 3,
        "output arrives as it is produced: {chunks:?}"
    );

    // Upload with mode and owner, read back.
    let data = b"listen 8080\n# hprov test\n".to_vec();
    a.put(
        &RemoteFile::new("/etc/hprov-test.conf", 0o640).owned_by("root", "adm"),
        &data,
    )
    .await
    .unwrap();
    assert_eq!(a.get("/etc/hprov-test.conf", true).await.unwrap(), data);
    let info = a.stat("/etc/hprov-test.conf", false).await.unwrap();
    assert_eq!(
        (
            info.mode,
            info.owner.as_str(),
            info.group.as_str(),
            info.size
        ),
        (0o640, "root", "adm", data.len() as u64)
    );
    let denied = a.get("/etc/hprov-test.conf", false).await.unwrap_err();
    assert!(denied.to_string().contains("Permission denied"), "{denied}");
    // A large file through stdin (flow control), as the login user.
    let big: Vec<u8> = (0..(3 << 20))
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    a.put(&RemoteFile::new("/tmp/hprov-big", 0o600), &big)
        .await
        .unwrap();
    assert_eq!(a.get("/tmp/hprov-big", false).await.unwrap(), big);
    let info = a.stat("/tmp/hprov-big", false).await.unwrap();
    assert_eq!(
        (info.mode, info.owner.as_str(), info.size),
        (0o600, user, 3 << 20)
    );

    // Timeouts, and the session still works afterwards.
    let err = a
        .exec(&RemoteCommand::new("sleep 5").timeout(Duration::from_millis(700)))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Timeout { .. }), "{err}");
    let ok = a.exec(&RemoteCommand::new("echo still")).await.unwrap();
    assert_eq!(ok.stdout_text(), "still\n");

    // Plain OpenSSH with the written ssh_config and known_hosts.
    let out = Command::new("ssh")
        .args([
            "-F",
            ssh_config.to_str().unwrap(),
            "-o",
            "BatchMode=yes",
            "p-hive2.hprov",
            "hostname",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh -F: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "p-hive2");
}

/// The repository server's Docker engine through a forwarded Unix socket.
async fn check_docker_socket(pool: &SshPool, dir: &Path, name: &str) {
    let repo = pool.session("p-hive3.hprov").await.unwrap();
    // As setup-hosts does: the admin may use the engine (effective on the
    // forward's own, new connection).
    repo.exec_checked(
        &RemoteCommand::new("usermod -aG docker \"$SUDO_USER\"").sudo(),
        "usermod",
    )
    .await
    .unwrap();
    let local = dir.join(format!("{name}.sock"));
    let fwd = repo
        .forward_unix_socket("/var/run/docker.sock", &local)
        .await
        .unwrap();
    let docker = bollard::Docker::connect_with_unix(
        local.to_str().unwrap(),
        60,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap()
    .negotiate_version()
    .await
    .unwrap();
    let info = docker.info().await.unwrap();
    assert_eq!(
        info.name.as_deref(),
        Some("p-hive3"),
        "the engine answering is the repository server's"
    );
    let version = docker.version().await.unwrap();
    assert!(version.api_version.is_some());
    // Several requests, in parallel, over the same forward.
    let (a, b, c) = tokio::join!(
        docker.ping(),
        docker.list_images::<String>(None),
        docker.version()
    );
    assert_eq!(a.unwrap(), "OK");
    b.unwrap();
    c.unwrap();
    drop(docker);
    drop(fwd);
    assert!(
        !local.exists(),
        "the local socket is removed with the forward"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_stage_then_prepared_stage() {
    let _cleanup = Cleanup;
    let tmp = tempfile::Builder::new()
        .prefix("hprov-test-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let ctx = dir.join("site/.hive/private");
    let docker_stage = stage(&ctx, "docker");
    let provider = DockerProvider::new();
    provider.destroy(&docker_stage).await.unwrap();
    let opts = BuildInfraOptions::default();

    // Build: servers created, keys generated, host keys pinned.
    let report = build_infra(&provider, &docker_stage, &opts).await.unwrap();
    assert!(report.key_generated);
    for (name, change) in &report.provider.servers {
        assert_eq!(*change, ServerChange::Created, "{name}");
    }
    assert!(report.servers.iter().all(|s| s.host_key_pinned));
    let kh = std::fs::read_to_string(ctx.join("known_hosts")).unwrap();
    assert_eq!(kh.lines().count(), 4, "{kh}");
    let ssh_config = ctx.join("ssh_config");
    let cfg = std::fs::read_to_string(&ssh_config).unwrap();
    assert!(cfg.trim_end().contains("Host p-hive3.hprov"), "{cfg}");
    assert!(
        cfg.rfind("Host p-hive3.hprov") > cfg.rfind("Host p-hive2.hprov"),
        "repository server last"
    );

    // A second run changes nothing and says so.
    let again = build_infra(&provider, &docker_stage, &opts).await.unwrap();
    assert!(!again.changed(), "{again:?}");

    // The stage's names resolve in every server, also after its container
    // restarted (the engine rewrites /etc/hosts at each start).
    let hive0 = format!("{PREFIX}p-hive0.hprov");
    docker_cli(&["restart", "-t", "1", &hive0]);
    docker_exec(
        &hive0,
        &format!(
            "getent hosts p-hive3.hprov | grep -q '^{} ' && getent hosts p-hive2 | grep -q '^{} '",
            ip(3),
            ip(2)
        ),
    );

    // -l: a server removed behind hive's back is built again alone; the
    // others keep their entries in ssh_config (checked below, where every
    // server is reached through it).
    docker_cli(&["rm", "-f", "-v", &format!("{PREFIX}p-hive1.hprov")]);
    let limited = BuildInfraOptions {
        limit: vec!["p-hive1.hprov".into()],
        ..BuildInfraOptions::default()
    };
    let rebuilt = build_infra(&provider, &docker_stage, &limited)
        .await
        .unwrap();
    assert_eq!(
        rebuilt.provider.servers,
        vec![("p-hive1.hprov".to_string(), ServerChange::Created)]
    );
    assert_eq!(rebuilt.servers.len(), 1);
    let cfg = std::fs::read_to_string(&ssh_config).unwrap();
    for i in 0..4 {
        assert!(cfg.contains(&format!("Host p-hive{i}.hprov\n")), "{cfg}");
    }
    assert!(
        cfg.rfind("Host p-hive3.hprov") > cfg.rfind("Host p-hive2.hprov"),
        "repository server last"
    );
    let unknown = BuildInfraOptions {
        limit: vec!["p-nosuch.hprov".into()],
        ..BuildInfraOptions::default()
    };
    let err = build_infra(&provider, &docker_stage, &unknown)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no server named p-nosuch.hprov; servers: p-hive0.hprov"),
        "{err}"
    );

    let pool = SshPool::from_ssh_config(&ssh_config).unwrap();
    check_servers(&pool, "admin", &ssh_config).await;

    // An RSA key works too.
    let rsa = dir.join("id_rsa");
    assert!(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "rsa",
                "-b",
                "3072",
                "-N",
                "",
                "-f",
                rsa.to_str().unwrap()
            ])
            .status()
            .unwrap()
            .success()
    );
    let rsa_pub = std::fs::read_to_string(dir.join("id_rsa.pub")).unwrap();
    let s0 = pool.session("p-hive0.hprov").await.unwrap();
    s0.exec_checked(
        &RemoteCommand::new("cat >> ~/.ssh/authorized_keys").stdin(rsa_pub.into_bytes()),
        "add key",
    )
    .await
    .unwrap();
    let rsa_session = SshSession::connect(
        SshTarget {
            host: "p-hive0.hprov".into(),
            address: ip(0),
            port: 22,
            user: "admin".into(),
            auth: SshAuth::Key(rsa.clone()),
        },
        SshOptions::new(ctx.join("known_hosts")),
    )
    .await
    .unwrap();
    assert_eq!(
        rsa_session
            .exec(&RemoteCommand::new("id -un"))
            .await
            .unwrap()
            .stdout_text(),
        "admin\n"
    );
    drop(rsa_session);

    // The repository server's own Docker engine (installed the way
    // setup-hosts would, from Debian's mirror), reached through the
    // forwarded /var/run/docker.sock.
    let repo = pool.session("p-hive3.hprov").await.unwrap();
    let install = repo
        .exec(&RemoteCommand::new(
            "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io >/dev/null && systemctl is-active docker && for i in $(seq 60); do [ -S /var/run/docker.sock ] && exit 0; sleep 1; done; exit 1",
        ).sudo())
        .await
        .unwrap();
    assert!(
        install.success(),
        "installing docker.io on the repository server: {}",
        install.stderr_text()
    );
    check_docker_socket(&pool, dir, "docker-stage").await;

    // Halt: the servers stop; building again starts them with the same host keys.
    drop((s0, repo));
    let halted = halt_infra(&provider, &docker_stage).await.unwrap();
    assert_eq!(halted.servers.len(), 4);
    assert!(
        halted
            .servers
            .iter()
            .all(|(_, c)| *c == ServerChange::Stopped),
        "{halted:?}"
    );
    let running = docker_cli(&["ps", "-q", "--filter", &format!("label={STAGE_LABEL}")]);
    assert!(running.is_empty(), "no server runs after halt");
    let lost = pool.exec_all(&RemoteCommand::new("true")).await;
    assert!(
        lost.iter().all(|(_, r)| r.is_err()),
        "halted servers do not answer"
    );
    let restarted = build_infra(&provider, &docker_stage, &opts).await.unwrap();
    assert!(
        restarted
            .provider
            .servers
            .iter()
            .all(|(_, c)| *c == ServerChange::Started)
    );
    assert!(
        restarted.servers.iter().all(|s| !s.host_key_pinned),
        "same keys, verified"
    );
    let pool = SshPool::from_ssh_config(&ssh_config).unwrap();
    for (host, r) in pool.exec_all(&RemoteCommand::new("cat /etc/hprov-test.conf >/dev/null 2>&1 || sudo -n test -f /etc/hprov-test.conf; systemctl is-system-running --wait")).await {
        let out = r.unwrap();
        assert!(out.stdout_text().contains("running") || out.stdout_text().contains("degraded"), "{host}: {}", out.stdout_text());
    }

    // The same servers as a prepared stage: root logs in with a password
    // once, hive creates another admin account with its own key.
    for i in 0..4 {
        docker_exec(
            &format!("{PREFIX}p-hive{i}.hprov"),
            "echo 'root:Hprov-Test-Pw1' | chpasswd && printf 'PermitRootLogin yes\\nPasswordAuthentication yes\\n' >/etc/ssh/sshd_config.d/hprov-test.conf && systemctl reload ssh",
        );
    }
    let pctx = dir.join("prepared/.hive/private");
    let mut prepared = stage(&pctx, "prepared");
    prepared.admin = AdminAccount {
        user: "hadmin".into(),
        group: Some("hivers".into()),
        uid: Some(2345),
        gid: None,
    };
    prepared.root_password = Some(Secret::new("Hprov-Test-Pw1"));
    let first = build_infra(&PreparedProvider, &prepared, &opts)
        .await
        .unwrap();
    assert!(
        first
            .servers
            .iter()
            .all(|s| s.admin_bootstrap_changed == Some(true) && s.host_key_pinned),
        "{:?}",
        first.servers
    );
    let second = build_infra(&PreparedProvider, &prepared, &opts)
        .await
        .unwrap();
    assert!(
        second
            .servers
            .iter()
            .all(|s| s.admin_bootstrap_changed == Some(false))
    );
    assert!(!second.changed());
    let pconfig = pctx.join("ssh_config");
    let ppool = SshPool::from_ssh_config(&pconfig).unwrap();
    check_servers(&ppool, "hadmin", &pconfig).await;
    let ids = ppool
        .session("p-hive0.hprov")
        .await
        .unwrap()
        .exec(&RemoteCommand::new("id -u; id -gn"))
        .await
        .unwrap();
    assert_eq!(ids.stdout_text(), "2345\nhivers\n");
    check_docker_socket(&ppool, dir, "prepared-stage").await;
    // A wrong root password is refused as such.
    let mut wrong = prepared.clone();
    wrong.root_password = Some(Secret::new("not-the-password"));
    let err = build_infra(&PreparedProvider, &wrong, &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Auth { .. }), "{err}");
    assert!(
        !err.to_string().contains("not-the-password"),
        "no secret in messages"
    );

    // A server whose host key changed is refused, with what to do.
    docker_exec(
        &format!("{PREFIX}p-hive1.hprov"),
        "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh",
    );
    let err = SshSession::connect(
        SshTarget {
            host: "p-hive1.hprov".into(),
            address: ip(1),
            port: 22,
            user: "admin".into(),
            auth: SshAuth::Key(ctx.join("id_ed25519")),
        },
        SshOptions::new(ctx.join("known_hosts")),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ProviderError::HostKeyChanged(..)), "{msg}");
    assert!(
        msg.contains("host key changed")
            && msg.contains("ssh-keygen -f")
            && msg.contains("-R '172.31.240.11'"),
        "{msg}"
    );
    // build-infra refuses it too (the provider did not re-create the server).
    let err = build_infra(&provider, &docker_stage, &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::HostKeyChanged(..)), "{err}");

    // A server removed behind hive's back is re-created by build-infra, which
    // replaces its pin (new host keys) instead of refusing it.
    assert!(
        Command::new("docker")
            .args(["rm", "-f", &format!("{PREFIX}p-hive1.hprov")])
            .output()
            .unwrap()
            .status
            .success()
    );
    let rebuilt = build_infra(&provider, &docker_stage, &opts).await.unwrap();
    assert_eq!(
        rebuilt.provider.change_of("p-hive1.hprov"),
        Some(ServerChange::Created)
    );
    let s1 = &rebuilt.servers[1];
    assert!(s1.old_pin_forgotten && s1.host_key_pinned, "{s1:?}");
    assert!(
        rebuilt
            .servers
            .iter()
            .filter(|s| s.endpoint.name != "p-hive1.hprov")
            .all(|s| !s.host_key_pinned)
    );
    let fresh = SshPool::from_ssh_config(&ssh_config).unwrap();
    let out = fresh
        .session("p-hive1.hprov")
        .await
        .unwrap()
        .exec(&RemoteCommand::new("hostname"))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "p-hive1\n");
    drop(fresh);

    // Destroy leaves nothing behind.
    drop((pool, ppool));
    let destroyed = destroy_infra(&provider, &docker_stage).await.unwrap();
    assert_eq!(
        destroyed
            .servers
            .iter()
            .filter(|(_, c)| *c == ServerChange::Destroyed)
            .count(),
        4
    );
    for args in [
        vec!["ps", "-aq"],
        vec!["volume", "ls", "-q"],
        vec!["network", "ls", "-q"],
    ] {
        let mut a = args.clone();
        let f = format!("label={STAGE_LABEL}");
        a.extend(["--filter", f.as_str()]);
        assert_eq!(docker_cli(&a), "", "docker {args:?} after destroy");
    }
    assert_eq!(
        docker_cli(&["ps", "-aq", "--filter", "name=hprov-test-"]),
        ""
    );
    assert!(!ssh_config.exists() && !ctx.join("known_hosts").exists());
    assert!(ctx.join("id_ed25519").exists(), "the key pair is kept");
    let again = destroy_infra(&provider, &docker_stage).await.unwrap();
    assert!(!again.changed(), "a second destroy has nothing to do");
}
