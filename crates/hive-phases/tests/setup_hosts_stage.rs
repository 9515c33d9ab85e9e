//! End to end: the setup-hosts phase on a 4-server stage (3 hives and a
//! repository server) built by the `docker` provider of `hive-provider`
//! (each server a container booting systemd and sshd), reached over SSH as
//! the stage's admin user through [`hive_setup::run_script`].
//!
//! Checks what the "done when" lists: the Docker API on 2376 only
//! with a client certificate, a 3-manager swarm labelled with the servers'
//! groups, authenticated pushes to the registry (anonymous refused), service
//! logs collected per tag on the repository server, ports ≥ 10000 reachable
//! from the stage's servers only; then `-C` on the fresh stage changes
//! nothing, a second run changes nothing, `-T` and `-l` narrow the run, and a
//! server that is down fails alone.

mod common;

use common::docker_ok;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hive_phases::setup::ForwardedEngines;
use hive_phases::setup_hosts::{
    EngineConnector, HiveUser, Server, ServerRole, SetupHosts, SetupHostsError, SetupHostsParams,
    SetupReport, StepTag, Transport, UserGroup,
};
use hive_provider::{
    BuildInfraOptions, DockerProvider, Provider, ServerSpec, SshPool, StageSpec, build_infra,
};

const PREFIX: &str = "hsetup-test-";
const STAGE_LABEL: &str = "io.hive.stage=hsetup-test-hsetup-private";
const SUBNET: &str = "172.31.250.0/24";

/// `sh -c script` in the container of server `name`; (success, stdout + stderr).
fn on(name: &str, script: &str) -> (bool, String) {
    common::exec(&format!("{PREFIX}{name}"), script)
}

/// Removes whatever the test created, even when it fails half-way.
struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        common::remove_labelled(STAGE_LABEL, "HSETUP_KEEP");
    }
}

struct Stage {
    spec: StageSpec,
}

impl Stage {
    async fn create(ctx: &Path) -> Stage {
        let mut spec = StageSpec::new("hsetup", "private", "docker", SUBNET.parse().unwrap(), ctx);
        for (i, (name, role)) in [
            ("p-hive0.hsetup", hive_provider::ServerRole::Hive),
            ("p-hive1.hsetup", hive_provider::ServerRole::Hive),
            ("p-hive2.hsetup", hive_provider::ServerRole::Hive),
            ("p-repository.hsetup", hive_provider::ServerRole::Repository),
        ]
        .into_iter()
        .enumerate()
        {
            let ip = format!("172.31.250.{}", 10 + i).parse().unwrap();
            spec.servers.push(ServerSpec::new(name, role, ip));
        }
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

    fn hostname(&self, i: usize) -> &str {
        self.name(i).split('.').next().unwrap()
    }

    /// The servers' Docker engines, as setup-hosts reaches them in
    /// production: sockets forwarded by OpenSSH with the stage's ssh_config,
    /// connected on first use, closed when the run is over.
    fn engines(&self) -> Arc<dyn EngineConnector> {
        Arc::new(ForwardedEngines::new(&self.spec.context_dir, &std::env::temp_dir()).unwrap())
    }

    /// setup-hosts on the stage with `p`, its servers and engines.
    fn phase(&self, p: &SetupHostsParams) -> SetupHosts {
        SetupHosts::new(p.clone())
            .transports(self.transports())
            .engines(self.engines())
    }

    /// Fresh SSH sessions to every server.
    fn transports(&self) -> Vec<Arc<dyn Transport>> {
        let pool =
            Arc::new(SshPool::from_ssh_config(&self.spec.context_dir.join("ssh_config")).unwrap());
        self.spec
            .servers
            .iter()
            .map(|s| Arc::new(SshPool::server(&pool, &s.name)) as Arc<dyn Transport>)
            .collect()
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

fn params(stage: &Stage, archive: &Path) -> SetupHostsParams {
    let servers = stage
        .spec
        .servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
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
                        let mut g = vec!["hives".to_string(), "servers".into(), format!("zone{i}")];
                        if i == 0 {
                            g.push("first_hive".into());
                        }
                        g
                    }
                    ServerRole::Repository => vec!["repository".into(), "servers".into()],
                },
            }
        })
        .collect();
    let mut p = SetupHostsParams::new("private", "hsetup", &stage.spec.context_dir, servers);
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

/// What the swarm step changed on server `i` (empty when it did not run
/// there or changed nothing).
fn swarm_changes(report: &SetupReport, i: usize) -> Vec<String> {
    report.hosts[i]
        .steps
        .iter()
        .filter(|s| s.step == StepTag::Swarm)
        .flat_map(|s| s.changed.clone())
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
    let _cleanup = Cleanup;
    docker_ok(&["image", "inspect", "hive/registry:2"]);
    let work = tempfile::Builder::new().prefix(PREFIX).tempdir().unwrap();
    let context = work.path().join("site/.hive/private");
    let archive = work.path().join("registry.tar");
    docker_ok(&["save", "-o", archive.to_str().unwrap(), "hive/registry:2"]);
    let stage = Stage::create(&context).await;
    let p = params(&stage, &archive);
    let hive0 = stage.name(0).to_string();
    let repo = stage.name(3).to_string();

    // -C on the fresh stage: lists what would change, changes nothing.
    let report = stage.phase(&p).check_mode(true).run().await.unwrap();
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
    // The swarm step, without engines yet, lists what it would do.
    assert_eq!(
        swarm_changes(&report, 0),
        [
            "network docker_gwbridge 10.231.128.0/19",
            "swarm initialised",
            "network ingress 10.231.64.0/18",
            "node p-hive0 label hives=true",
            "node p-hive0 label servers=true",
            "node p-hive0 label zone0=true",
            "node p-hive0 label first_hive=true",
        ],
        "{report}"
    );
    assert_eq!(
        swarm_changes(&report, 1)[..2],
        [
            "network docker_gwbridge 10.231.128.0/19",
            "swarm joined as manager"
        ],
        "{report}"
    );

    // The first run.
    let start = Instant::now();
    let report = stage.phase(&p).run().await.unwrap();
    println!(
        "first run ({:.1}s; {}):\n{report}",
        start.elapsed().as_secs_f64(),
        times(&report)
    );
    assert!(report.success(), "{report}");
    assert_eq!(report.hosts.len(), 4);
    assert_eq!(
        swarm_changes(&report, 0)[..3],
        [
            "network docker_gwbridge 10.231.128.0/19",
            "swarm initialised",
            "network ingress 10.231.64.0/18"
        ],
        "{report}"
    );
    for i in 1..3 {
        let changes = swarm_changes(&report, i);
        assert!(
            changes.contains(&"swarm joined as manager".to_string())
                && changes.contains(&format!("node p-hive{i} label zone{i}=true")),
            "{report}"
        );
    }
    assert!(swarm_changes(&report, 3).is_empty(), "{report}");
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
    assert!(hosts.contains(&format!("172.31.250.13 {repo}")), "{hosts}");
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
                stage.hostname(i)
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
            .args([
                "exec",
                "-i",
                &format!("{PREFIX}{h}"),
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
    // The seed's clean-up instruction works, and so does the same from the
    // mother machine (`hive registry gc`).
    let servers = stage.transports();
    let gc = hive_phases::setup_hosts::registry_garbage_collect(servers[3].as_ref())
        .await
        .unwrap();
    assert!(gc.contains("hsetup-test/h0"), "garbage-collect: {gc}");

    // Logs: a container logging with the syslog driver to the repository
    // server with the services' facility (local0, as deploy-services sets
    // it) lands in /var/log/services/<tag>.log; another facility goes to
    // /var/log/service-other-facility.log, not among the services' files.
    for (facility, tag, line, file) in [
        (
            "local0",
            "hsetup-svc",
            "hello-from-hsetup",
            "/var/log/services/hsetup-svc.log",
        ),
        (
            "daemon",
            "hsetup-other",
            "hello-from-elsewhere",
            "/var/log/service-other-facility.log",
        ),
    ] {
        let (ok, out) = on(
            &hive0,
            &format!(
                "docker run --rm --log-driver syslog --log-opt syslog-address=udp://{repo}:10514 --log-opt syslog-facility={facility} --log-opt tag={tag} hive-test/busybox:1 echo {line}"
            ),
        );
        assert!(ok, "{out}");
        let start = Instant::now();
        loop {
            let (_, log) = on(&repo, &format!("cat {file} 2>/dev/null"));
            if log.contains(line) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no log line in {file}: {log}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let (_, files) = on(&repo, "ls /var/log/services/");
    assert!(!files.contains("hsetup-other"), "{files}");

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
    let report = stage.phase(&p).run().await.unwrap();
    println!(
        "second run ({:.1}s; {}):\n{report}",
        start.elapsed().as_secs_f64(),
        times(&report)
    );
    assert!(report.success(), "{report}");
    assert_eq!(report.change_count(), 0, "{report}");
    assert!(report.to_string().ends_with("(no change)"), "{report}");

    // Swarm labels: a missing one is put back (and reported on its hive),
    // a label of the operator's is kept; -C only says so.
    let h1 = stage.hostname(1).to_string();
    let (ok, out) = on(
        &hive0,
        &format!("docker node update --label-rm zone1 --label-add hsetup-own=yes {h1}"),
    );
    assert!(ok, "{out}");
    let swarm_only = |check: bool| {
        stage
            .phase(&p)
            .tags([StepTag::Swarm])
            .check_mode(check)
            .run()
    };
    let report = swarm_only(true).await.unwrap();
    assert_eq!(
        swarm_changes(&report, 1),
        ["node p-hive1 label zone1=true"],
        "{report}"
    );
    assert_eq!(report.change_count(), 1, "{report}");
    let start = Instant::now();
    let report = swarm_only(false).await.unwrap();
    println!(
        "swarm step putting a label back ({:.1}s):\n{report}",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(report.change_count(), 1, "{report}");
    let (_, labels) = on(
        &hive0,
        &format!("docker node inspect -f '{{{{json .Spec.Labels}}}}' {h1}"),
    );
    assert!(
        labels.contains("\"zone1\":\"true\"") && labels.contains("\"hsetup-own\":\"yes\""),
        "{labels}"
    );
    let start = Instant::now();
    let report = swarm_only(false).await.unwrap();
    println!(
        "swarm step, nothing to do ({:.1}s)",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(report.change_count(), 0, "{report}");

    // Another internal_cidr once the swarm exists: every hive fails with an
    // error naming the subnets and what to do; nothing is changed.
    let mut moved = p.clone();
    moved.internal_cidr = Some("10.232.0.0/16".parse().unwrap());
    let report = stage
        .phase(&moved)
        .tags([StepTag::Swarm])
        .run()
        .await
        .unwrap();
    println!("with another internal_cidr:\n{report}");
    let failed: Vec<&str> = report.failed().map(|h| h.host.as_str()).collect();
    assert_eq!(
        failed,
        [stage.name(0), stage.name(1), stage.name(2)],
        "{report}"
    );
    let msg = report.hosts[1].failure.as_ref().unwrap().1.to_string();
    for part in [
        "internal_cidr",
        "network docker_gwbridge has subnet 10.231.128.0/19",
        "internal_cidr 10.232.0.0/16 asks for 10.232.128.0/19",
        "the hive is in a swarm",
        "docker swarm leave",
    ] {
        assert!(msg.contains(part), "{part:?} in {msg}");
    }
    let (_, nets) = on(
        stage.name(1),
        "docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' docker_gwbridge",
    );
    assert_eq!(nets.trim(), "10.231.128.0/19");

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
            let report = stage.phase(&p).run().await.unwrap();
            let took = start.elapsed();
            assert_eq!(report.change_count(), 0, "{report}");
            println!("BENCH rerun total {:.3}", took.as_secs_f64());
            for (t, d) in &report.step_times {
                println!("BENCH rerun {t} {:.3}", d.as_secs_f64());
            }
        }
    }

    // -T docker runs only the docker step; -l limits the servers.
    let report = stage
        .phase(&p)
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
        stage.phase(&p).limit(["nope"]).run().await,
        Err(SetupHostsError::UnknownLimit { .. })
    ));

    // A drifted file is put back, and only it.
    on(stage.name(1), "echo '# drift' >>/etc/docker/daemon.json");
    let report = stage.phase(&p).tags([StepTag::Docker]).run().await.unwrap();
    assert_eq!(report.change_count(), 1, "{report}");
    assert!(
        report
            .to_string()
            .contains("changed: file /etc/docker/daemon.json"),
        "{report}"
    );

    // A server that goes away mid-run fails alone with a clear error while
    // the others finish.
    let victim = format!("{PREFIX}{}", stage.name(2));
    let (report, killed) = tokio::join!(stage.phase(&p).run(), async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        tokio::process::Command::new("docker")
            .args(["kill", &victim])
            .output()
            .await
    });
    assert!(killed.unwrap().status.success());
    let report = report.unwrap();
    println!("with {} killed mid-run:\n{report}", stage.name(2));
    let failed: Vec<&str> = report.failed().map(|h| h.host.as_str()).collect();
    assert_eq!(failed, [stage.name(2)], "{report}");
    let msg = report
        .failed()
        .next()
        .unwrap()
        .failure
        .as_ref()
        .unwrap()
        .1
        .to_string();
    assert!(msg.contains(stage.name(2)), "{msg}");
    assert_eq!(
        report.hosts.iter().filter(|h| h.failure.is_none()).count(),
        3,
        "{report}"
    );

    // A server that is down fails alone with a clear error; a re-run after
    // it is back completes.
    docker_ok(&["stop", "-t", "5", &victim]);
    let report = stage.phase(&p).run().await.unwrap();
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
    docker_ok(&["start", &format!("{PREFIX}{}", stage.name(2))]);
    wait_booted(stage.name(2));
    let report = stage.phase(&p).run().await.unwrap();
    println!("after it came back:\n{report}");
    assert!(report.success(), "{report}");
    drop(stage);
}
