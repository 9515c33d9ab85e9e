//! End to end: the setup-hosts phase on a 4-server stage (3 hives and a
//! repository server), each server a container of `hive/debian-server`
//! booting systemd, reached through a test-only shell over `docker exec`.
//!
//! Checks what the "done when" lists: the Docker API on 2376 only
//! with a client certificate, a 3-manager swarm labelled with the servers'
//! groups, authenticated pushes to the registry (anonymous refused), service
//! logs collected per tag on the repository server, ports ≥ 10000 reachable
//! from the stage's servers only; then `-C` on the fresh stage changes
//! nothing, a second run changes nothing, `-T` and `-l` narrow the run, and a
//! server that is down fails alone.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hive_phases::setup_hosts::{
    HiveUser, HostShell, Result as SetupResult, Server, ServerRole, SetupHosts, SetupHostsError,
    SetupHostsParams, SetupReport, ShellOutput, StepTag, UserGroup,
};
use tokio::io::AsyncWriteExt as _;

const PREFIX: &str = "hsetup-test-";
const NET: &str = "hsetup-test-net";
const SUBNET: &str = "172.31.250.0/24";
const IMAGE: &str = "hive/debian-server:bookworm";

/// Runs scripts in a server container with `docker exec` (test only; the
/// product goes over SSH).
struct DockerExecShell {
    name: String,
}

#[async_trait]
impl HostShell for DockerExecShell {
    fn host(&self) -> &str {
        &self.name
    }
    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> SetupResult<ShellOutput> {
        let unreachable = |reason: String| SetupHostsError::Unreachable {
            host: self.name.clone(),
            reason,
        };
        let mut child = tokio::process::Command::new("docker")
            .args(["exec", "-i", &self.name, "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| unreachable(e.to_string()))?;
        let mut input = child.stdin.take().expect("stdin");
        let data = stdin.map(<[u8]>::to_vec).unwrap_or_default();
        let writer = tokio::spawn(async move {
            let _ = input.write_all(&data).await;
            drop(input);
        });
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = writer.await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.starts_with("Error response from daemon") {
            return Err(unreachable(stderr.trim().to_string()));
        }
        Ok(ShellOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().expect("docker")
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sh -c script` in server `name`; (success, stdout + stderr).
fn on(name: &str, script: &str) -> (bool, String) {
    let out = docker(&["exec", name, "sh", "-c", script]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

struct Stage {
    servers: Vec<(String, String, ServerRole)>,
}

impl Stage {
    fn create() -> Stage {
        let servers: Vec<(String, String, ServerRole)> = vec![
            (
                format!("{PREFIX}hive0"),
                "172.31.250.10".into(),
                ServerRole::Hive,
            ),
            (
                format!("{PREFIX}hive1"),
                "172.31.250.11".into(),
                ServerRole::Hive,
            ),
            (
                format!("{PREFIX}hive2"),
                "172.31.250.12".into(),
                ServerRole::Hive,
            ),
            (
                format!("{PREFIX}repository"),
                "172.31.250.20".into(),
                ServerRole::Repository,
            ),
        ];
        let stage = Stage { servers };
        stage.destroy();
        docker_ok(&[
            "network",
            "create",
            "--subnet",
            SUBNET,
            "--gateway",
            "172.31.250.1",
            NET,
        ]);
        for (name, ip, _) in &stage.servers {
            let vol = format!("{name}-docker:/var/lib/docker");
            docker_ok(&[
                "run",
                "-d",
                "--name",
                name,
                "--hostname",
                name,
                "--network",
                NET,
                "--ip",
                ip,
                "--cap-add",
                "ALL",
                "--cap-drop",
                "SYS_RESOURCE",
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
                "--security-opt",
                "systempaths=unconfined",
                "--device-cgroup-rule",
                "a *:* rwm",
                "--tmpfs",
                "/run",
                "--tmpfs",
                "/run/lock",
                "--stop-signal",
                "SIGRTMIN+3",
                "-v",
                &vol,
                "--label",
                "io.hive.test=hive-phases-setup-hosts",
                IMAGE,
            ]);
        }
        for (name, _, _) in &stage.servers {
            wait_booted(name);
        }
        stage
    }

    fn destroy(&self) {
        for (name, _, _) in &self.servers {
            let _ = docker(&["rm", "-f", "-v", name]);
            let _ = docker(&["volume", "rm", &format!("{name}-docker")]);
        }
        let _ = docker(&["network", "rm", NET]);
    }

    fn name(&self, i: usize) -> &str {
        &self.servers[i].0
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if std::env::var_os("HSETUP_KEEP").is_none() {
            self.destroy();
        }
    }
}

fn wait_booted(name: &str) {
    let start = Instant::now();
    loop {
        let (_, s) = on(name, "systemctl is-system-running 2>/dev/null || true");
        if s.trim() == "running" || s.trim() == "degraded" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{name} did not boot: {s}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn params(stage: &Stage, context: &std::path::Path, archive: &std::path::Path) -> SetupHostsParams {
    let servers = stage
        .servers
        .iter()
        .enumerate()
        .map(|(i, (name, ip, role))| Server {
            name: name.clone(),
            role: *role,
            private_ip: ip.parse().unwrap(),
            groups: match role {
                ServerRole::Hive => {
                    let mut g = vec!["hives".to_string(), "servers".into(), format!("zone{i}")];
                    if i == 0 {
                        g.push("first_hive".into());
                    }
                    g
                }
                ServerRole::Repository => vec!["repository".into(), "servers".into()],
            },
        })
        .collect();
    let mut p = SetupHostsParams::new("private", "hsetup", context, servers);
    p.internal_cidr = Some("10.231.0.0/16".parse().unwrap());
    p.timezone = Some("Asia/Tokyo".into());
    p.locale = Some("LANG=en_US.UTF-8".into());
    p.registry_image_archive = Some(archive.to_path_buf());
    p.user_groups
        .insert("hsetupops".into(), UserGroup { gid: 2501 });
    p.users.insert(
        "hsetupalice".into(),
        HiveUser {
            uid: 2502,
            group: "hsetupops".into(),
            id_rsa_pub: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsetupTestKeyOnlyForTests alice"
                .into(),
        },
    );
    p
}

fn shells(stage: &Stage) -> Vec<Arc<dyn HostShell>> {
    stage
        .servers
        .iter()
        .map(|(n, _, _)| Arc::new(DockerExecShell { name: n.clone() }) as Arc<dyn HostShell>)
        .collect()
}

fn times(report: &SetupReport) -> String {
    report
        .step_times
        .iter()
        .map(|(t, d)| format!("{t}={:.1}s", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn curl_from_mother(url: &str) -> String {
    let o = Command::new("curl")
        .args([
            "-s",
            "-m",
            "3",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_server_stage_from_scratch() {
    docker_ok(&["image", "inspect", IMAGE]);
    docker_ok(&["image", "inspect", "hive/registry:2"]);
    let work = tempfile::tempdir().unwrap();
    let context = work.path().join("context");
    let archive = work.path().join("registry.tar");
    docker_ok(&["save", "-o", archive.to_str().unwrap(), "hive/registry:2"]);
    let stage = Stage::create();
    let p = params(&stage, &context, &archive);
    let hive0 = stage.name(0).to_string();
    let repo = stage.name(3).to_string();

    // -C on the fresh stage: lists what would change, changes nothing.
    let report = SetupHosts::new(p.clone())
        .shells(shells(&stage))
        .check_mode(true)
        .run()
        .await
        .unwrap();
    println!("check mode:\n{report}");
    assert!(report.success(), "{report}");
    assert!(report.change_count() > 20, "{report}");
    assert!(
        !context.join("ca/cacert.pem").exists(),
        "check mode wrote the CA"
    );
    let (exists, _) = on(&hive0, "test -e /etc/ssh/sshd_config.d/00-hive.conf");
    assert!(!exists, "check mode wrote sshd config");
    let (docker_there, _) = on(&hive0, "command -v dockerd");
    assert!(!docker_there, "check mode installed docker");

    // The first run.
    let start = Instant::now();
    let report = SetupHosts::new(p.clone())
        .shells(shells(&stage))
        .run()
        .await
        .unwrap();
    println!(
        "first run ({:.1}s; {}):\n{report}",
        start.elapsed().as_secs_f64(),
        times(&report)
    );
    assert!(report.success(), "{report}");
    assert_eq!(report.hosts.len(), 4);
    let first_total = start.elapsed();
    let first_times = report.step_times.clone();

    // Base: hardened sshd, hosts, time zone, users.
    let (ok, out) = on(
        &hive0,
        "sshd -T | grep -E '^(passwordauthentication|kbdinteractiveauthentication|usedns|permitrootlogin) '",
    );
    assert!(ok, "{out}");
    for l in [
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "usedns no",
        "permitrootlogin no",
    ] {
        assert!(out.lines().any(|x| x == l), "{l} in {out}");
    }
    let (_, hosts) = on(&hive0, "cat /etc/hosts");
    assert!(hosts.contains(&format!("172.31.250.20 {repo}")), "{hosts}");
    let (_, tz) = on(&hive0, "date +%Z");
    assert_eq!(tz.trim(), "JST");
    let (ok, out) = on(
        &hive0,
        "id hsetupalice && stat -c %a /etc/sudoers.d/hsetupops && grep -c alice /home/hsetupalice/.ssh/authorized_keys",
    );
    assert!(
        ok && out.contains("gid=2501(hsetupops)") && out.contains("440"),
        "{out}"
    );

    // Private keys and the registry password kept 0600 in the context directory.
    for f in ["ca/cakey.pem", "docker-client/key.pem", "registry_password"] {
        use std::os::unix::fs::PermissionsExt as _;
        let m = std::fs::metadata(context.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m, 0o600, "{f}");
    }

    // Docker API on 2376 only with a client certificate (asked from another
    // server of the stage; the mother machine is firewalled off 2376).
    let cert = "--cacert /etc/hive/tls/ca.pem --cert /etc/hive/tls/server_cert.pem --key /etc/hive/tls/server_key.pem";
    for i in 0..3 {
        let target = stage.name(i);
        let (ok, out) = on(
            &repo,
            &format!("curl -sf {cert} https://{target}:2376/version"),
        );
        assert!(ok && out.contains("ApiVersion"), "{target}: {out}");
        let (ok, out) = on(
            &repo,
            &format!("curl -sf --cacert /etc/hive/tls/ca.pem https://{target}:2376/version"),
        );
        assert!(!ok, "{target} answered without a client certificate: {out}");
    }

    // Swarm: 3 managers, labelled with their groups.
    let (_, nodes) = on(
        &hive0,
        "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'",
    );
    assert_eq!(nodes.lines().count(), 3, "{nodes}");
    assert!(
        nodes
            .lines()
            .all(|l| l.ends_with("Leader") || l.ends_with("Reachable")),
        "{nodes}"
    );
    for i in 0..3 {
        let (_, labels) = on(
            &hive0,
            &format!(
                "docker node inspect -f '{{{{json .Spec.Labels}}}}' {}",
                stage.name(i)
            ),
        );
        assert!(
            labels.contains("\"hives\":\"true\"")
                && labels.contains(&format!("\"zone{i}\":\"true\"")),
            "{labels}"
        );
    }
    let (_, nets) = on(
        &hive0,
        "docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' docker_gwbridge ingress",
    );
    assert_eq!(
        nets.split_whitespace().collect::<Vec<_>>(),
        ["10.231.128.0/19", "10.231.64.0/18"],
        "{nets}"
    );

    // Registry: authenticated push over TLS from every hive; anonymous refused.
    let registry = format!("{repo}:5000");
    let busybox = work.path().join("busybox.tar");
    docker_ok(&[
        "save",
        "-o",
        busybox.to_str().unwrap(),
        "hive-test/busybox:1",
    ]);
    for i in 0..3 {
        let h = stage.name(i);
        let load = Command::new("docker")
            .args(["exec", "-i", h, "docker", "load", "-q"])
            .stdin(std::fs::File::open(&busybox).unwrap())
            .output()
            .unwrap();
        assert!(
            load.status.success(),
            "{}",
            String::from_utf8_lossy(&load.stderr)
        );
        let (ok, out) = on(
            h,
            &format!(
                "docker tag hive-test/busybox:1 {registry}/hsetup-test/h{i}:1 && docker push -q {registry}/hsetup-test/h{i}:1"
            ),
        );
        assert!(ok, "push from {h}: {out}");
    }
    let (ok, out) = on(
        &hive0,
        &format!(
            "mkdir -p /tmp/anon && DOCKER_CONFIG=/tmp/anon docker push -q {registry}/hsetup-test/h0:1"
        ),
    );
    assert!(
        !ok && out.contains("no basic auth credentials"),
        "anonymous push: {out}"
    );
    // The seed's clean-up instruction works.
    let (ok, out) = on(
        &repo,
        "docker exec registry registry garbage-collect -m /etc/docker/registry/config.yml",
    );
    assert!(ok, "garbage-collect: {out}");

    // Logs: a container logging with the syslog driver to the repository
    // server lands in /var/log/services/<tag>.log.
    let (ok, out) = on(
        &hive0,
        &format!(
            "docker run --rm --log-driver syslog --log-opt syslog-address=udp://{repo}:10514 --log-opt tag=hsetup-svc hive-test/busybox:1 echo hello-from-hsetup"
        ),
    );
    assert!(ok, "{out}");
    let start = Instant::now();
    loop {
        let (_, log) = on(&repo, "cat /var/log/services/hsetup-svc.log 2>/dev/null");
        if log.contains("hello-from-hsetup") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no log line: {log}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Firewall: a port ≥ 10000 answers from another server, not from the
    // mother machine; one below 10000 answers from both.
    let (ok, out) = on(
        &hive0,
        "docker run -d --name hsetup-web-high -p 18080:8080 hive-test/busybox:1 httpd -f -p 8080 -h /tmp && docker run -d --name hsetup-web-low -p 8081:8080 hive-test/busybox:1 httpd -f -p 8080 -h /tmp",
    );
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        curl_from_mother("http://172.31.250.10:8081/"),
        "404",
        "low port from the mother machine"
    );
    assert_eq!(
        curl_from_mother("http://172.31.250.10:18080/"),
        "000",
        "high port reachable from the mother machine"
    );
    for port in [18080, 8081] {
        let (_, code) = on(
            &repo,
            &format!("curl -s -m 3 -o /dev/null -w '%{{http_code}}' http://{hive0}:{port}/"),
        );
        assert_eq!(code, "404", "port {port} from another server");
    }

    // A second run changes nothing.
    let start = Instant::now();
    let report = SetupHosts::new(p.clone())
        .shells(shells(&stage))
        .run()
        .await
        .unwrap();
    println!(
        "second run ({:.1}s; {}):\n{report}",
        start.elapsed().as_secs_f64(),
        times(&report)
    );
    assert!(report.success(), "{report}");
    assert_eq!(report.change_count(), 0, "{report}");
    assert!(report.to_string().ends_with("(no change)"), "{report}");

    // Benchmark mode (scripts/bench/setup-hosts.sh): more no-change re-runs,
    // timings printed as `BENCH` lines.
    if let Some(n) = std::env::var("HSETUP_BENCH_RERUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        for (t, d) in &first_times {
            println!("BENCH first {t} {:.3}", d.as_secs_f64());
        }
        println!("BENCH first total {:.3}", first_total.as_secs_f64());
        for _ in 0..n {
            let start = Instant::now();
            let report = SetupHosts::new(p.clone())
                .shells(shells(&stage))
                .run()
                .await
                .unwrap();
            let took = start.elapsed();
            assert_eq!(report.change_count(), 0, "{report}");
            println!("BENCH rerun total {:.3}", took.as_secs_f64());
            for (t, d) in &report.step_times {
                println!("BENCH rerun {t} {:.3}", d.as_secs_f64());
            }
        }
    }

    // -T docker runs only the docker step; -l limits the servers.
    let report = SetupHosts::new(p.clone())
        .shells(shells(&stage))
        .tags([StepTag::Docker])
        .limit([stage.name(1)])
        .run()
        .await
        .unwrap();
    assert_eq!(report.hosts.len(), 1);
    assert_eq!(report.hosts[0].host, stage.name(1));
    let steps: Vec<StepTag> = report.hosts[0].steps.iter().map(|s| s.step).collect();
    assert_eq!(steps, [StepTag::Docker]);
    assert!(matches!(
        SetupHosts::new(p.clone())
            .shells(shells(&stage))
            .limit(["nope"])
            .run()
            .await,
        Err(SetupHostsError::UnknownLimit { .. })
    ));

    // A drifted file is put back, and only it.
    on(stage.name(1), "echo '# drift' >>/etc/docker/daemon.json");
    let report = SetupHosts::new(p.clone())
        .shells(shells(&stage))
        .tags([StepTag::Docker])
        .run()
        .await
        .unwrap();
    assert_eq!(report.change_count(), 1, "{report}");
    assert!(
        report
            .to_string()
            .contains("changed: file /etc/docker/daemon.json"),
        "{report}"
    );

    // A server that is down fails alone with a clear error; a re-run after
    // it is back completes.
    docker_ok(&["stop", "-t", "5", stage.name(2)]);
    let report = SetupHosts::new(p.clone())
        .shells(shells(&stage))
        .run()
        .await
        .unwrap();
    println!("with {} down:\n{report}", stage.name(2));
    let failed: Vec<&str> = report.failed().map(|h| h.host.as_str()).collect();
    assert_eq!(failed, [stage.name(2)]);
    let msg = report
        .failed()
        .next()
        .unwrap()
        .failure
        .as_ref()
        .unwrap()
        .1
        .to_string();
    assert!(
        msg.contains("unreachable") && msg.contains(stage.name(2)),
        "{msg}"
    );
    assert_eq!(
        report.hosts.iter().filter(|h| h.failure.is_none()).count(),
        3,
        "{report}"
    );
    docker_ok(&["start", stage.name(2)]);
    wait_booted(stage.name(2));
    let report = SetupHosts::new(p.clone())
        .shells(shells(&stage))
        .run()
        .await
        .unwrap();
    println!("after it came back:\n{report}");
    assert!(report.success(), "{report}");
    drop(stage);
}
