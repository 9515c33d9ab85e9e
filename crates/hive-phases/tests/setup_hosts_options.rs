//! End to end: the setup-hosts options that change what the base, registry
//! and logs steps do, on a 2-server stage (a hive and a repository server)
//! built by the `docker` provider of `hive-provider` and reached over SSH as
//! the stage's admin user, as in production.
//!
//! Checked on the servers: services' logs over TCP+TLS (`tls_logging`) land
//! per tag on the repository server and nothing listens on UDP; every
//! server is logged in to an external registry that requires a login
//! (`hive_ext_repositories`), can push and pull there, and the password
//! never shows in the report nor in an error; sshd answers only the
//! addresses of `hive_ssh_source_ips` and moves to `hive_sshd_port`; chrony,
//! the time zone, the locale, users and groups and the refused root login
//! are as asked; a second run changes nothing.

mod common;

use common::{docker, docker_ok};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hive_phases::setup::connected_phase;
use hive_phases::setup_hosts::{
    ExtRepository, HiveUser, Server, ServerRole, SetupHostsParams, SetupReport, SitePki, StepTag,
    UserGroup,
};
use hive_provider::{
    BuildInfraOptions, DockerProvider, Provider, ServerSpec, StageSpec, build_infra,
};

const PREFIX: &str = "hsetopt-test-";
const STAGE_LABEL: &str = "io.hive.stage=hsetopt-test-hsetopt-private";
const NETWORK: &str = "hsetopt-test-hsetopt-private";
const SUBNET: &str = "172.31.252.0/24";
/// The mother machine's address on the stage network (the bridge gateway).
const MOTHER_IP: &str = "172.31.252.1";
const HIVE_IP: &str = "172.31.252.10";
/// The external registry, a container of its own on the stage network.
const EXT_IP: &str = "172.31.252.30";
const EXT_REGISTRY: &str = "172.31.252.30:5443";
const EXT_USER: &str = "hsetoptext";
const EXT_PASSWORD: &str = "hsetopt-Ext-Secret-4711";
/// A machine of the network that is neither a server nor in
/// `hive_ssh_source_ips`.
const OUTSIDER_IP: &str = "172.31.252.40";
const NTP_SERVERS: [&str; 2] = ["192.0.2.123", "198.51.100.7"];

/// `sh -c script` in the container of server `name`; (success, stdout + stderr).
fn on(name: &str, script: &str) -> (bool, String) {
    common::exec(&format!("{PREFIX}{name}"), script)
}

fn on_ok(name: &str, script: &str) -> String {
    let (ok, out) = on(name, script);
    assert!(ok, "{name}: {script}: {out}");
    out
}

/// `ssh -F <stage ssh_config> <extra> host command` from the mother machine;
/// (success, stdout + stderr).
fn ssh(config: &Path, extra: &[&str], host: &str, command: &str) -> (bool, String) {
    let out = Command::new("ssh")
        .arg("-F")
        .arg(config)
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
        .args(extra)
        .args([host, command])
        .output()
        .expect("ssh");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Removes whatever the test created, even when it fails half-way: the
/// servers, the external registry and the outsider all carry the stage label.
struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        common::remove_labelled(STAGE_LABEL, "HSETOPT_KEEP");
    }
}

struct Stage {
    spec: StageSpec,
}

impl Stage {
    async fn create(ctx: &Path) -> Stage {
        let mut spec = StageSpec::new("hsetopt", "private", "docker", SUBNET.parse().unwrap(), ctx);
        spec.servers.push(ServerSpec::new(
            "p-hive0.hsetopt",
            hive_provider::ServerRole::Hive,
            HIVE_IP.parse().unwrap(),
        ));
        spec.servers.push(ServerSpec::new(
            "p-repository.hsetopt",
            hive_provider::ServerRole::Repository,
            "172.31.252.11".parse().unwrap(),
        ));
        spec.attributes.insert("name_prefix".into(), PREFIX.into());
        let provider = DockerProvider::new();
        provider.destroy(&spec).await.unwrap();
        build_infra(&provider, &spec, &BuildInfraOptions::default())
            .await
            .unwrap();
        Stage { spec }
    }

    fn name(&self, i: usize) -> &str {
        &self.spec.servers[i].name
    }

    fn ssh_config(&self) -> PathBuf {
        self.spec.context_dir.join("ssh_config")
    }

    /// A run wired as production wires it: one pool from the stage's
    /// ssh_config for the shells and the engines, following sshd when the
    /// base step moves it.
    async fn run(&self, p: &SetupHostsParams, tags: Option<&[StepTag]>) -> SetupReport {
        let (mut run, _) =
            connected_phase(p.clone(), &self.spec.context_dir, &std::env::temp_dir()).unwrap();
        if let Some(t) = tags {
            run = run.tags(t.iter().copied());
        }
        run.run().await.unwrap()
    }
}

fn params(stage: &Stage, archive: &Path, alice_pub: &str) -> SetupHostsParams {
    let servers = stage
        .spec
        .servers
        .iter()
        .map(|s| {
            let role = match s.role {
                hive_provider::ServerRole::Repository => ServerRole::Repository,
                _ => ServerRole::Hive,
            };
            Server {
                name: s.name.clone(),
                role,
                private_ip: s.private_ip,
                groups: match role {
                    ServerRole::Hive | ServerRole::HiveAndRepository => {
                        vec!["hives".into(), "first_hive".into()]
                    }
                    ServerRole::Repository => vec!["repository".into()],
                },
            }
        })
        .collect();
    let mut p = SetupHostsParams::new("private", "hsetopt", &stage.spec.context_dir, servers);
    p.internal_cidr = Some("10.232.0.0/16".parse().unwrap());
    p.registry_image_archive = Some(archive.to_path_buf());
    p.tls_logging = true;
    p.timezone = Some("Asia/Kolkata".into());
    p.locale = Some("ja_JP.UTF-8".into());
    p.ntp_servers = NTP_SERVERS.iter().map(|s| s.to_string()).collect();
    p.ssh_source_ips = vec![format!("{MOTHER_IP}/32")];
    p.user_groups
        .insert("hsetoptops".into(), UserGroup { gid: 2601 });
    p.users.insert(
        "hsetoptalice".into(),
        HiveUser {
            uid: 2602,
            group: "hsetoptops".into(),
            id_rsa_pub: alice_pub.into(),
        },
    );
    p.ext_repositories = vec![ExtRepository {
        repository: EXT_REGISTRY.into(),
        login_user: EXT_USER.into(),
        password: EXT_PASSWORD.into(),
    }];
    p
}

fn times(report: &SetupReport) -> String {
    report
        .step_times
        .iter()
        .map(|(t, d)| format!("{t}={:.1}s", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The password in any form a report or an error could carry it.
fn assert_no_secret(text: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{EXT_USER}:{password}"));
    assert!(!text.contains(password), "password in: {text}");
    assert!(!text.contains(&auth), "encoded password in: {text}");
}

/// The external registry: `hive/registry:2` with htpasswd (bcrypt) and a
/// certificate of the site CA, on its own address of the stage network.
fn start_ext_registry(work: &Path, context: &Path) {
    let pki = SitePki::open_or_create(context, "hsetopt").unwrap();
    let (pair, _) = pki
        .server_cert("hsetopt-extreg", &[EXT_IP.to_string()])
        .unwrap();
    let dir = work.join("extreg");
    std::fs::create_dir_all(dir.join("auth")).unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    let hash = bcrypt::hash(EXT_PASSWORD, 6).unwrap();
    std::fs::write(dir.join("auth/htpasswd"), format!("{EXT_USER}:{hash}\n")).unwrap();
    std::fs::write(dir.join("certs/cert.pem"), &pair.cert_pem).unwrap();
    std::fs::write(dir.join("certs/key.pem"), &pair.key_pem).unwrap();
    let auth = format!("{}:/auth:ro", dir.join("auth").display());
    let certs = format!("{}:/certs:ro", dir.join("certs").display());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &format!("{PREFIX}extreg"),
        "--label",
        STAGE_LABEL,
        "--network",
        NETWORK,
        "--ip",
        EXT_IP,
        "-v",
        &auth,
        "-v",
        &certs,
        "-e",
        "REGISTRY_HTTP_ADDR=:5443",
        "-e",
        "REGISTRY_AUTH=htpasswd",
        "-e",
        "REGISTRY_AUTH_HTPASSWD_REALM=hsetopt",
        "-e",
        "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
        "-e",
        "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/cert.pem",
        "-e",
        "REGISTRY_HTTP_TLS_KEY=/certs/key.pem",
        "hive/registry:2",
    ]);
}

/// Wait until `path` on `server` contains `needle`; its content.
fn wait_for_line(server: &str, path: &str, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let (_, log) = on(server, &format!("cat {path} 2>/dev/null"));
        if log.contains(needle) {
            return log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "no {needle:?} in {path}: {log}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Whether sshd at `ip:port` greets a client on `from` (a busybox container
/// name) within a few seconds.
fn ssh_banner_from(container: &str, ip: &str, port: u16) -> String {
    let out = docker(&[
        "exec",
        container,
        "sh",
        "-c",
        &format!("timeout 5 nc {ip} {port} </dev/null 2>&1 | head -c 8"),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn banner_from_mother(ip: &str, port: u16) -> String {
    let out = Command::new("timeout")
        .args([
            "5",
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{ip}/{port} && head -c 8 <&3"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn options_of_setup_hosts_on_real_servers() {
    let test_start = Instant::now();
    let _cleanup = Cleanup;
    docker_ok(&["image", "inspect", "hive/registry:2"]);
    docker_ok(&["image", "inspect", "hive-test/busybox:1"]);
    let work = tempfile::Builder::new().prefix(PREFIX).tempdir().unwrap();
    let context = work.path().join("site/.hive/private");
    let archive = work.path().join("registry.tar");
    docker_ok(&["save", "-o", archive.to_str().unwrap(), "hive/registry:2"]);
    let alice_key = work.path().join("alice");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@hsetopt", "-f"])
        .arg(&alice_key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let alice_pub = std::fs::read_to_string(alice_key.with_extension("pub")).unwrap();

    let stage = Stage::create(&context).await;
    let hive0 = stage.name(0).to_string();
    let repo = stage.name(1).to_string();
    let config = stage.ssh_config();
    // chronyd in a server container could move the machine's clock: no NTP
    // traffic leaves the servers during the test.
    for s in [&hive0, &repo] {
        on_ok(s, "iptables -w -I OUTPUT -p udp --dport 123 -j DROP");
    }
    start_ext_registry(work.path(), &context);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &format!("{PREFIX}outsider"),
        "--label",
        STAGE_LABEL,
        "--network",
        NETWORK,
        "--ip",
        OUTSIDER_IP,
        "hive-test/busybox:1",
        "sleep",
        "3600",
    ]);
    let outsider = format!("{PREFIX}outsider");
    // Before the run, sshd answers everyone.
    assert!(
        ssh_banner_from(&outsider, HIVE_IP, 22).starts_with("SSH-2.0"),
        "outsider cannot reach sshd before the run"
    );

    let p = params(&stage, &archive, alice_pub.trim());

    // The first run.
    let start = Instant::now();
    let report = stage.run(&p, None).await;
    let first = report.to_string();
    println!(
        "first run ({:.1}s; {}):\n{first}",
        start.elapsed().as_secs_f64(),
        times(&report)
    );
    assert!(report.success(), "{report}");
    assert_no_secret(&first, EXT_PASSWORD);
    assert!(
        first.contains(&format!("docker login {EXT_REGISTRY} as {EXT_USER}")),
        "{first}"
    );

    // 1. tls_logging: the syslog driver over TCP+TLS with the certificates
    // hive puts in the admin's ~/.docker (as deploy-services configures
    // services) lands in /var/log/services/<tag>.log; nothing listens on UDP.
    let busybox = work.path().join("busybox.tar");
    docker_ok(&[
        "save",
        "-o",
        busybox.to_str().unwrap(),
        "hive-test/busybox:1",
    ]);
    let load = Command::new("docker")
        .args([
            "exec",
            "-i",
            &format!("{PREFIX}{hive0}"),
            "docker",
            "load",
            "-q",
        ])
        .stdin(std::fs::File::open(&busybox).unwrap())
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let listening = on_ok(&repo, "ss -Hlnt; echo UDP; ss -Hlnu");
    let (tcp, udp) = listening.split_once("UDP").unwrap();
    assert!(tcp.contains(":10514 "), "rsyslog on tcp 10514: {listening}");
    assert!(
        !udp.contains(":10514 "),
        "rsyslog on udp 10514: {listening}"
    );
    let tls = "--log-opt syslog-tls-ca-cert=/home/admin/.docker/ca.pem --log-opt syslog-tls-cert=/home/admin/.docker/cert.pem --log-opt syslog-tls-key=/home/admin/.docker/key.pem";
    on_ok(
        &hive0,
        &format!(
            "docker run --rm --log-driver syslog --log-opt syslog-address=tcp+tls://{repo}:10514 {tls} --log-opt syslog-facility=local0 --log-opt tag=hsetopt-tls hive-test/busybox:1 echo hello-over-tls"
        ),
    );
    let log = wait_for_line(&repo, "/var/log/services/hsetopt-tls.log", "hello-over-tls");
    assert!(log.contains("hsetopt-tls"), "{log}");
    // Plain TCP to the TLS listener and UDP do not get a line written.
    let _ = on(
        &hive0,
        &format!(
            "docker run --rm --log-driver syslog --log-opt syslog-address=udp://{repo}:10514 --log-opt tag=hsetopt-udp hive-test/busybox:1 echo hello-over-udp; \
             docker run --rm --log-driver syslog --log-opt syslog-address=tcp://{repo}:10514 --log-opt tag=hsetopt-plain hive-test/busybox:1 echo hello-over-plain-tcp"
        ),
    );
    // A second TLS line written after them proves rsyslog had time to see them.
    on_ok(
        &hive0,
        &format!(
            "docker run --rm --log-driver syslog --log-opt syslog-address=tcp+tls://{repo}:10514 {tls} --log-opt syslog-facility=local0 --log-opt tag=hsetopt-tls hive-test/busybox:1 echo second-over-tls"
        ),
    );
    wait_for_line(
        &repo,
        "/var/log/services/hsetopt-tls.log",
        "second-over-tls",
    );
    let (_, files) = on(
        &repo,
        "ls /var/log/services/; grep -rl 'hello-over-udp\\|hello-over-plain' /var/log/ 2>/dev/null",
    );
    assert!(
        !files.contains("hsetopt-udp") && !files.contains("hsetopt-plain"),
        "{files}"
    );
    // The hive's own syslog is forwarded over TLS too; not being a
    // service's (facility local0), it is kept apart from the services' files.
    on_ok(&hive0, "logger -t hsetopt-host hello-from-the-host");
    wait_for_line(
        &repo,
        "/var/log/service-other-facility.log",
        "hello-from-the-host",
    );
    let (_, files) = on(&repo, "ls /var/log/services/");
    assert!(!files.contains("hsetopt-host"), "{files}");

    // 2. hive_ext_repositories: every server is logged in, pushes and pulls;
    // anonymous access is refused.
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{EXT_USER}:{EXT_PASSWORD}"))
    };
    for s in [&hive0, &repo] {
        let (ok, out) = on(
            s,
            &format!(
                "grep -qF '\"{EXT_REGISTRY}\"' /root/.docker/config.json && grep -qF '{auth}' /root/.docker/config.json && stat -c %a /root/.docker/config.json"
            ),
        );
        assert!(
            ok && out.trim() == "600",
            "{s}: no auth for {EXT_REGISTRY} in a 0600 config.json: {}",
            out.trim()
        );
    }
    on_ok(
        &hive0,
        &format!(
            "docker tag hive-test/busybox:1 {EXT_REGISTRY}/hsetopt/bb:1 && docker push -q {EXT_REGISTRY}/hsetopt/bb:1 && docker rmi {EXT_REGISTRY}/hsetopt/bb:1"
        ),
    );
    on_ok(
        &repo,
        &format!("docker pull -q {EXT_REGISTRY}/hsetopt/bb:1"),
    );
    let (ok, out) = on(
        &repo,
        &format!(
            "mkdir -p /tmp/anon && DOCKER_CONFIG=/tmp/anon docker pull -q {EXT_REGISTRY}/hsetopt/bb:1"
        ),
    );
    assert!(
        !ok && out.contains("no basic auth credentials"),
        "anonymous pull: {out}"
    );

    // Nor is it in any log of the servers (sudo logs command lines; the
    // hive's logs are forwarded to the repository server).
    for s in [&hive0, &repo] {
        let (found, out) = on(
            s,
            &format!("grep -rlaF -e '{EXT_PASSWORD}' -e '{auth}' /var/log /run/log 2>/dev/null"),
        );
        assert!(
            !found,
            "{s}: the external registry's password logged in {out}"
        );
    }

    // 3. hive_ssh_source_ips: sshd greets the mother machine (listed) and
    // the stage's servers, not another machine of the network.
    assert!(
        ssh_banner_from(&outsider, HIVE_IP, 22).is_empty(),
        "outsider reaches sshd"
    );
    assert!(
        banner_from_mother(HIVE_IP, 22).starts_with("SSH-2.0"),
        "mother machine refused"
    );
    let (ok, out) = on(
        &repo,
        &format!("timeout 5 bash -c 'exec 3<>/dev/tcp/{HIVE_IP}/22 && head -c 8 <&3'"),
    );
    assert!(
        ok && out.starts_with("SSH-2.0"),
        "repository server to the hive: {out}"
    );
    // The outsider reaches the network otherwise (the external registry).
    let out = docker(&[
        "exec",
        &outsider,
        "sh",
        "-c",
        &format!("echo | timeout 5 nc {EXT_IP} 5443 && echo connected"),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("connected"),
        "outsider cannot reach anything"
    );

    // 4. NTP, time zone, locale, users and groups, root refused.
    for s in [&hive0, &repo] {
        let conf = on_ok(s, "cat /etc/chrony/conf.d/hive.conf");
        for ntp in NTP_SERVERS {
            assert!(
                conf.contains(&format!("server {ntp} iburst")),
                "{s}: {conf}"
            );
        }
        on_ok(s, "systemctl is-active chrony");
        let sources = on_ok(s, "chronyc -n sources");
        let mut listed: Vec<&str> = sources
            .lines()
            .filter(|l| l.starts_with('^'))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        listed.sort();
        assert_eq!(listed, NTP_SERVERS, "{s}: {sources}");
        let tz = on_ok(s, "readlink /etc/localtime; cat /etc/timezone; date +%z");
        assert_eq!(
            tz.lines().collect::<Vec<_>>(),
            ["/usr/share/zoneinfo/Asia/Kolkata", "Asia/Kolkata", "+0530"],
            "{s}"
        );
        let loc = on_ok(s, "cat /etc/default/locale; locale -a");
        assert!(
            loc.lines().any(|l| l == "LANG=ja_JP.UTF-8") && loc.lines().any(|l| l == "ja_JP.utf8"),
            "{s}: {loc}"
        );
        let id = on_ok(
            s,
            "id hsetoptalice; stat -c '%U %a' /home/hsetoptalice/.ssh; cat /etc/sudoers.d/hsetoptops",
        );
        assert!(
            id.contains("uid=2602(hsetoptalice) gid=2601(hsetoptops)")
                && id.contains("hsetoptalice 700")
                && id.contains("%hsetoptops ALL=(ALL) NOPASSWD: ALL"),
            "{s}: {id}"
        );
        let sshd = on_ok(
            s,
            "sshd -T | grep -E '^(permitrootlogin|passwordauthentication) '",
        );
        assert!(sshd.contains("permitrootlogin no"), "{s}: {sshd}");
    }
    // Alice logs in with her key, gets her locale and may sudo.
    let alice = ["-o", "User=hsetoptalice", "-i", alice_key.to_str().unwrap()];
    let (ok, out) = ssh(
        &config,
        &alice,
        &hive0,
        "id -un; echo LANG=$LANG; sudo -n id -u",
    );
    assert!(ok, "alice: {out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["hsetoptalice", "LANG=ja_JP.UTF-8", "0"],
        "{out}"
    );
    // Root is refused even with a key it would accept.
    on_ok(
        &hive0,
        "install -d -m 700 /root/.ssh && cp /home/admin/.ssh/authorized_keys /root/.ssh/authorized_keys",
    );
    let (ok, out) = ssh(&config, &[], &hive0, "true");
    assert!(ok, "admin with the same key: {out}");
    let (ok, out) = ssh(&config, &["-o", "User=root"], &hive0, "true");
    assert!(
        !ok && out.contains("Permission denied"),
        "root login: {out}"
    );

    // 5. A second run changes nothing.
    let start = Instant::now();
    let report = stage.run(&p, None).await;
    println!(
        "second run ({:.1}s; {}):\n{report}",
        start.elapsed().as_secs_f64(),
        times(&report)
    );
    assert!(report.success(), "{report}");
    assert_eq!(report.change_count(), 0, "{report}");
    assert_no_secret(&report.to_string(), EXT_PASSWORD);

    // A wrong password for the external registry: the login fails on every
    // server, naming the registry, never the password.
    let wrong = "hsetopt-Wrong-Pw-0815";
    let mut bad = p.clone();
    bad.ext_repositories[0].password = wrong.into();
    let report = stage.run(&bad, Some(&[StepTag::Registry])).await;
    let text = report.to_string();
    println!("with a wrong external password:\n{text}");
    assert_eq!(report.failed().count(), 2, "{text}");
    for h in report.failed() {
        let (_, e) = h.failure.as_ref().unwrap();
        let mut msg = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            msg.push_str(&format!(": {c}"));
            cause = c.source();
        }
        assert!(msg.contains(EXT_REGISTRY), "{msg}");
        assert_no_secret(&msg, wrong);
        assert_no_secret(&format!("{e:?}"), wrong);
    }
    assert_no_secret(&text, wrong);
    assert_no_secret(&text, EXT_PASSWORD);
    let wrong_auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{EXT_USER}:{wrong}"))
    };
    for s in [&hive0, &repo] {
        let (found, out) = on(
            s,
            &format!("grep -rlaF -e '{wrong}' -e '{wrong_auth}' /var/log /run/log 2>/dev/null"),
        );
        assert!(!found, "{s}: the wrong password logged in {out}");
    }

    // hive_sshd_port: sshd moves to 2222 over the running session; hive
    // follows it: the stage's ssh_config says so for new connections and
    // the servers' keys are pinned as `[IP]:2222`.
    let mut moved = p.clone();
    moved.sshd_port = 2222;
    let report = stage
        .run(&moved, Some(&[StepTag::Base, StepTag::Firewall]))
        .await;
    println!("sshd to port 2222:\n{report}");
    assert!(report.success(), "{report}");
    assert!(banner_from_mother(HIVE_IP, 2222).starts_with("SSH-2.0"));
    assert!(
        banner_from_mother(HIVE_IP, 22).is_empty(),
        "port 22 still open"
    );
    assert!(
        ssh_banner_from(&outsider, HIVE_IP, 2222).is_empty(),
        "outsider reaches sshd on 2222"
    );
    let cfg = std::fs::read_to_string(&config).unwrap();
    assert!(
        cfg.contains("  Port 2222\n") && !cfg.contains("  Port 22\n"),
        "{cfg}"
    );
    let pins = std::fs::read_to_string(context.join("known_hosts")).unwrap();
    for ip in [HIVE_IP, "172.31.252.11"] {
        let key_of = |pattern: &str| {
            pins.lines()
                .filter_map(|l| l.split_once(' '))
                .find(|(h, _)| *h == pattern)
                .map(|(_, k)| k.to_string())
        };
        assert!(key_of(ip).is_some(), "{pins}");
        assert_eq!(key_of(&format!("[{ip}]:2222")), key_of(ip), "{pins}");
    }
    let (ok, out) = ssh(&config, &[], &hive0, "true");
    assert!(ok, "ssh on 2222 with the stage's ssh_config: {out}");
    let start = Instant::now();
    let report = stage.run(&moved, None).await;
    println!(
        "run on port 2222 ({:.1}s):\n{report}",
        start.elapsed().as_secs_f64()
    );
    assert!(report.success(), "{report}");
    assert_eq!(report.change_count(), 0, "{report}");
    println!("test took {:.1}s", test_start.elapsed().as_secs_f64());
    drop(stage);
}
