//! Benchmark of the `docker` provider and the SSH transport, with
//! side-by-side baselines (run by `scripts/bench/provider.sh`, in release):
//!
//! 1. bring-up: `build_infra` of a 4-server docker stage (3 hives +
//!    repository) with the base image cached, until every server answers
//!    on SSH with the admin key and ssh_config is written; baseline: the
//!    same 4 containers started with `docker run` from a shell and polled
//!    with `ssh-keyscan` until sshd answers on all.
//! 2. one command (`true`) on all four servers over warm sessions
//!    ([`SshPool::exec_all`]); baselines: 4 parallel OpenSSH clients over
//!    warm ControlMaster connections, and 4 parallel fresh `ssh` runs.
//!
//! Uses the names `hprov-bench-*` and the networks 172.31.241.0/24 and 172.31.242.0/24, and
//! removes everything it created.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hive_provider::{
    BuildInfraOptions, DockerProvider, Provider, RemoteCommand, ServerRole, ServerSpec, SshPool,
    StageSpec, build_infra, destroy_infra,
};

const PREFIX: &str = "hprov-bench-";

fn stage(ctx: &Path) -> StageSpec {
    let mut s = StageSpec::new(
        "hbench",
        "private",
        "docker",
        "172.31.241.0/24".parse().expect("cidr"),
        ctx,
    );
    for i in 0..4 {
        let role = if i == 3 {
            ServerRole::Repository
        } else {
            ServerRole::Hive
        };
        s.servers.push(ServerSpec::new(
            format!("p-hive{i}.hbench"),
            role,
            format!("172.31.241.{}", 10 + i).parse().expect("ip"),
        ));
    }
    s.attributes.insert("name_prefix".into(), PREFIX.into());
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn sh(script: &str) -> bool {
    Command::new("sh")
        .args(["-c", script])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The baseline bring-up: plain docker CLI, then wait for sshd on all four.
fn cli_bring_up() -> Duration {
    let net = "hprov-bench-cli";
    let cleanup = format!(
        "docker rm -f {p}cli0 {p}cli1 {p}cli2 {p}cli3 >/dev/null 2>&1; docker volume rm {p}cli0 {p}cli1 {p}cli2 {p}cli3 >/dev/null 2>&1; docker network rm {net} >/dev/null 2>&1; true",
        p = PREFIX
    );
    sh(&cleanup);
    let start = Instant::now();
    let mut script = format!(
        "set -e; docker network create --subnet 172.31.242.0/24 --gateway 172.31.242.1 {net} >/dev/null\n"
    );
    for i in 0..4 {
        script.push_str(&format!(
            "docker run -d --name {PREFIX}cli{i} --hostname p-hive{i} --network {net} --ip 172.31.242.{} --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm' --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 -v {PREFIX}cli{i}:/var/lib/docker hive/debian-server:bookworm >/dev/null\n",
            20 + i
        ));
    }
    script.push_str("for ip in 172.31.242.20 172.31.242.21 172.31.242.22 172.31.242.23; do until ssh-keyscan -T 1 $ip 2>/dev/null | grep -q ssh-; do sleep 0.1; done; done\n");
    assert!(sh(&script), "baseline bring-up failed");
    let took = start.elapsed();
    sh(&cleanup);
    took
}

#[tokio::main]
async fn main() -> hive_provider::Result<()> {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let tmp = tempfile::Builder::new()
        .prefix("hprov-bench-")
        .tempdir()
        .map_err(|e| hive_provider::ProviderError::Io {
            action: "create",
            path: "/tmp".into(),
            source: e,
        })?;
    let ctx = tmp.path().join(".hive/private");
    let s = stage(&ctx);
    let provider = DockerProvider::new();
    destroy_infra(&provider, &s).await?;
    // The base image and the key pair exist before the timed runs.
    hive_provider::ensure_base_image(provider.client().await?, hive_provider::BASE_IMAGE).await?;
    hive_provider::ensure_key_pair(&s.private_key_path(), "hive@bench").await?;

    let mut hive_up = Vec::new();
    let mut cli_up = Vec::new();
    for run in 0..runs {
        let start = Instant::now();
        let report = build_infra(&provider, &s, &BuildInfraOptions::default()).await?;
        let took = start.elapsed();
        assert!(report.servers.len() == 4);
        hive_up.push(took);
        if run + 1 < runs {
            destroy_infra(&provider, &s).await?;
        }
        let base = cli_bring_up();
        cli_up.push(base);
        eprintln!(
            "run {run}: hive build-infra {} s, docker run + ssh-keyscan {} s",
            secs(took),
            secs(base)
        );
    }

    // Warm sessions: one command on all four.
    let cfg = ctx.join("ssh_config");
    let pool = SshPool::from_ssh_config(&cfg)?;
    let cmd = RemoteCommand::new("true");
    for (h, r) in pool.exec_all(&cmd).await {
        assert!(r.map(|o| o.success()).unwrap_or(false), "{h}");
    }
    let iterations = 30;
    let mut warm = Vec::new();
    for _ in 0..iterations {
        let start = Instant::now();
        for (h, r) in pool.exec_all(&cmd).await {
            assert!(r.map(|o| o.success()).unwrap_or(false), "{h}");
        }
        warm.push(start.elapsed());
    }
    let hosts: Vec<String> = pool.hosts().to_vec();
    let cfg_s = cfg.display().to_string();
    let control = tmp.path().join("cm-%C");
    let control_s = control.display().to_string();
    let openssh = |extra: &[&str]| -> Duration {
        let start = Instant::now();
        let children: Vec<_> = hosts
            .iter()
            .map(|h| {
                Command::new("ssh")
                    .args(["-F", &cfg_s, "-o", "BatchMode=yes"])
                    .args(extra)
                    .args([h.as_str(), "true"])
                    .spawn()
                    .expect("ssh")
            })
            .collect();
        for mut c in children {
            assert!(c.wait().expect("ssh").success());
        }
        start.elapsed()
    };
    let cm = [
        "-o",
        "ControlMaster=auto",
        "-o",
        &format!("ControlPath={control_s}"),
        "-o",
        "ControlPersist=120",
    ];
    openssh(&cm);
    let cm_warm: Vec<Duration> = (0..iterations).map(|_| openssh(&cm)).collect();
    let fresh: Vec<Duration> = (0..10).map(|_| openssh(&[])).collect();
    for h in &hosts {
        let _ = Command::new("ssh")
            .args([
                "-F",
                &cfg_s,
                "-o",
                &format!("ControlPath={control_s}"),
                "-O",
                "exit",
                h,
            ])
            .output();
    }
    drop(pool);
    destroy_infra(&provider, &s).await?;
    let leftovers = provider.halt(&s).await?;
    assert!(leftovers.servers.is_empty());

    let (h, c) = (median(hive_up), median(cli_up));
    let (w, m, f) = (median(warm), median(cm_warm), median(fresh));
    println!("bring-up of 4 docker servers (base image cached), median of {runs}:");
    println!(
        "  hive build_infra (admin account, host keys pinned, ssh_config): {} s",
        secs(h)
    );
    println!(
        "  baseline docker run x4 + wait for sshd:                        {} s  (ratio hive/baseline {:.2})",
        secs(c),
        h.as_secs_f64() / c.as_secs_f64()
    );
    println!("one command on all 4 servers, median of {iterations}:");
    println!(
        "  hive SshPool::exec_all over warm sessions:   {:.2} ms",
        w.as_secs_f64() * 1e3
    );
    println!(
        "  OpenSSH x4 in parallel, warm ControlMaster:   {:.2} ms  (ratio {:.2})",
        m.as_secs_f64() * 1e3,
        w.as_secs_f64() / m.as_secs_f64()
    );
    println!(
        "  OpenSSH x4 in parallel, fresh connections:    {:.2} ms  (ratio {:.2})",
        f.as_secs_f64() * 1e3,
        w.as_secs_f64() / f.as_secs_f64()
    );
    Ok(())
}
