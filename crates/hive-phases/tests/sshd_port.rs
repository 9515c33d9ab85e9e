//! End to end: `hive_sshd_port` on a 2-server stage (a hive and a
//! repository server) built by the `docker` provider and reached over real
//! sshd as the stage's admin user.
//!
//! build-infra on fresh servers tries the wanted port, falls back to 22 and
//! writes that; a full setup-hosts run moves sshd to 2222 in its base step
//! and the production follower (`hive_phases::setup::follow_sshd_port`)
//! rewrites the stage's ssh_config and pins the same host keys as
//! `[IP]:2222` before the next step connects, so the run goes on (the swarm
//! step's OpenSSH-forwarded engine sockets included). Then port 22 is
//! closed, a second full run and a re-run of build-infra change nothing,
//! and plain `ssh -F ssh_config` reaches the servers.

mod common;

use common::docker;

use std::path::Path;
use std::process::Command;

use hive_phases::setup::connected_phase;
use hive_phases::setup_hosts::{Server, ServerRole, SetupHostsParams, SetupReport, StepTag};
use hive_provider::{
    BuildInfraOptions, DockerProvider, Provider, ServerSpec, SshConfig, StageSpec, build_infra,
};

const PREFIX: &str = "hsshport-test-";
const STAGE_LABEL: &str = "io.hive.stage=hsshport-test-hsshport-private";
const SUBNET: &str = "172.31.253.0/24";
const IPS: [&str; 2] = ["172.31.253.10", "172.31.253.11"];
const PORT: u16 = 2222;

/// Removes whatever the test created, even when it fails half-way.
struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        common::remove_labelled(STAGE_LABEL, "HSSHPORT_KEEP");
    }
}

fn spec(ctx: &Path) -> StageSpec {
    let mut spec = StageSpec::new(
        "hsshport",
        "private",
        "docker",
        SUBNET.parse().unwrap(),
        ctx,
    );
    spec.servers.push(ServerSpec::new(
        "p-hive0.hsshport",
        hive_provider::ServerRole::Hive,
        IPS[0].parse().unwrap(),
    ));
    spec.servers.push(ServerSpec::new(
        "p-repository.hsshport",
        hive_provider::ServerRole::Repository,
        IPS[1].parse().unwrap(),
    ));
    spec.attributes.insert("name_prefix".into(), PREFIX.into());
    spec.sshd_port = PORT;
    spec
}

fn params(spec: &StageSpec, archive: &Path) -> SetupHostsParams {
    let servers = spec
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
    let mut p = SetupHostsParams::new("private", "hsshport", &spec.context_dir, servers);
    p.internal_cidr = Some("10.233.0.0/16".parse().unwrap());
    p.registry_image_archive = Some(archive.to_path_buf());
    p.sshd_port = PORT;
    p
}

/// A full setup-hosts run as production wires it: the stage's pool from
/// ssh_config, its shells, OpenSSH-forwarded engines, the sshd follower.
async fn run(spec: &StageSpec, p: &SetupHostsParams) -> SetupReport {
    let (phase, _) = connected_phase(p.clone(), &spec.context_dir, &std::env::temp_dir()).unwrap();
    phase.run().await.unwrap()
}

/// The first bytes sshd at `ip:port` sends to the mother machine (empty
/// when nothing answers).
fn banner(ip: &str, port: u16) -> String {
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

fn pins(known_hosts: &Path, pattern: &str) -> Vec<String> {
    std::fs::read_to_string(known_hosts)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(h, _)| *h == pattern)
        .map(|(_, key)| key.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sshd_moves_to_hive_sshd_port_and_hive_follows() {
    let _cleanup = Cleanup;
    let work = tempfile::Builder::new().prefix(PREFIX).tempdir().unwrap();
    let context = work.path().join("site/.hive/private");
    let archive = work.path().join("registry.tar");
    let saved = docker(&["save", "-o", archive.to_str().unwrap(), "hive/registry:2"]);
    assert!(saved.status.success(), "{saved:?}");
    let spec = spec(&context);
    let provider = DockerProvider::new();
    provider.destroy(&spec).await.unwrap();
    let config = spec.ssh_config_path();
    let known = spec.known_hosts_path();

    // Fresh servers listen on 22 only: build-infra tries 2222, falls back.
    let report = build_infra(&provider, &spec, &BuildInfraOptions::default())
        .await
        .unwrap();
    assert!(report.changed());
    for s in &report.servers {
        assert_eq!(s.endpoint.port, 22, "{s:?}");
        assert!(s.host_key_pinned, "{s:?}");
    }
    let cfg = SshConfig::load(&config).unwrap();
    assert!(cfg.hosts.iter().all(|h| h.port == 22), "{cfg:?}");
    for ip in IPS {
        assert_eq!(pins(&known, ip).len(), 1);
        assert!(pins(&known, &format!("[{ip}]:{PORT}")).is_empty());
    }

    // A full run moves sshd in its base step and carries on over the new
    // port: every later step (the swarm step's forwarded engines too)
    // succeeds.
    let p = params(&spec, &archive);
    let report = run(&spec, &p).await;
    println!("first run:\n{report}");
    assert!(report.success(), "{report}");
    for h in &report.hosts {
        let base = h.steps.iter().find(|s| s.step == StepTag::Base).unwrap();
        assert!(
            base.changed
                .iter()
                .any(|c| c == &format!("connections follow sshd to port {PORT}")),
            "{report}"
        );
    }
    // The hive's swarm step reached its engine through OpenSSH on 2222.
    let hive = &report.hosts[0];
    let swarm = hive.steps.iter().find(|s| s.step == StepTag::Swarm);
    assert!(
        swarm.is_some_and(|s| s.changed.iter().any(|c| c == "swarm initialised")),
        "{report}"
    );
    let cfg = SshConfig::load(&config).unwrap();
    assert!(cfg.hosts.iter().all(|h| h.port == PORT), "{cfg:?}");
    for ip in IPS {
        // The same key, pinned for the new port as OpenSSH looks it up.
        let old = pins(&known, ip);
        assert_eq!(old.len(), 1);
        assert_eq!(pins(&known, &format!("[{ip}]:{PORT}")), old);
        assert!(banner(ip, PORT).starts_with("SSH-2.0"));
        assert!(banner(ip, 22).is_empty(), "{ip}: port 22 still open");
    }
    let ssh = Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args(["-o", "BatchMode=yes", "p-hive0.hsshport", "hostname"])
        .output()
        .unwrap();
    assert!(
        ssh.status.success(),
        "{}",
        String::from_utf8_lossy(&ssh.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ssh.stdout).trim(), "p-hive0");

    // A second full run, from the rewritten ssh_config, changes nothing.
    let config_before = std::fs::read(&config).unwrap();
    let known_before = std::fs::read(&known).unwrap();
    let report = run(&spec, &p).await;
    println!("second run:\n{report}");
    assert!(report.success(), "{report}");
    assert_eq!(report.change_count(), 0, "{report}");
    assert_eq!(std::fs::read(&config).unwrap(), config_before);

    // build-infra again: it reaches sshd on 2222 with the pinned keys and
    // changes nothing.
    let report = build_infra(&provider, &spec, &BuildInfraOptions::default())
        .await
        .unwrap();
    assert!(!report.changed(), "{report:?}");
    for s in &report.servers {
        assert_eq!(s.endpoint.port, PORT, "{s:?}");
    }
    assert_eq!(std::fs::read(&config).unwrap(), config_before);
    assert_eq!(std::fs::read(&known).unwrap(), known_before);

    // Then to a port that the firewall of the earlier runs closes to
    // everything but the stage's servers (10000 and above): the base step
    // opens it before sshd moves, so hive does not lock itself out, and the
    // firewall step then keeps it open.
    let mut high = p.clone();
    high.sshd_port = 10022;
    let report = run(&spec, &high).await;
    println!("move to 10022:\n{report}");
    assert!(report.success(), "{report}");
    for ip in IPS {
        assert!(banner(ip, 10022).starts_with("SSH-2.0"), "{ip}");
        assert!(banner(ip, PORT).is_empty(), "{ip}: port {PORT} still open");
    }
    let report = run(&spec, &high).await;
    assert!(report.success(), "{report}");
    assert_eq!(report.change_count(), 0, "{report}");

    provider.destroy(&spec).await.unwrap();
}

/// `hive_sshd_port` of the inventory reaches build-infra's stage and
/// setup-hosts' parameters (22 when unset); a bad value is refused.
#[test]
fn hive_sshd_port_maps_to_the_provider_stage() {
    use hive_inventory::{ProjectLoader, StageName};
    use hive_phases::site::StageSite;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/inventory/pdns");
    let check = |extra: &str, expected: Result<u16, &str>| {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("cp")
            .arg("-r")
            .arg(&src)
            .arg(dir.path().join("pdns"))
            .status()
            .unwrap();
        assert!(status.success());
        let root = dir.path().join("pdns");
        let vars = root.join("inventory/group_vars/servers.yml");
        let mut text = std::fs::read_to_string(&vars).unwrap();
        text.push_str(extra);
        std::fs::write(&vars, text).unwrap();
        let project = ProjectLoader::new(&root)
            .stage(StageName::Private)
            .load()
            .unwrap();
        let site = StageSite::new(&project).unwrap();
        match expected {
            Ok(port) => {
                assert_eq!(site.provider_stage().unwrap().sshd_port, port, "{extra}");
                assert_eq!(
                    site.setup_hosts_params().unwrap().sshd_port,
                    port,
                    "{extra}"
                );
            }
            Err(message) => {
                let err = site.provider_stage().unwrap_err().to_string();
                assert!(err.contains(message), "{extra}: {err}");
            }
        }
    };
    check("", Ok(22));
    check("hive_sshd_port: 2222\n", Ok(2222));
    check("hive_sshd_port: \"10022\"\n", Ok(10022));
    check(
        "hive_sshd_port: 70000\n",
        Err("hive_sshd_port must be a port number 1-65535"),
    );
}
