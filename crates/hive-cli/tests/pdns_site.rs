//! The build guide's example end to end: `hive all` builds examples/pdns
//! (PowerDNS on MariaDB, a proxy configured from service labels, custom
//! Ansible modules in lib/) from nothing on this machine's Docker engine,
//! then the site answers DNS as the guide says: an A record per hive on
//! every hive, a LUA record that follows the proxies' port 80, the API on a
//! high port open to the stage only, records kept across a restart of the
//! database, the server's log on the repository server; a second run
//! changes nothing.
//!
//! It needs what `scripts/setup-machine.sh` installs (a Docker engine, the
//! local images, `ansible-core` for the lib/ modules, `dig`) and the Debian
//! mirrors (the images are built by apt).

mod common;

use common::{hive, text};

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const SITE: &str = "pdnse2e";
const NET: &str = "192.168.204";
const API_PORT: &str = "61081";

/// A copy of examples/pdns under its own name and network.
fn project() -> (tempfile::TempDir, PathBuf) {
    common::project_copy(
        "examples/pdns",
        &[
            ("name: pdns\n", &format!("name: {SITE}\n")),
            ("192.168.203.0/24", &format!("{NET}.0/24")),
            ("10.203.0.0/16", "10.204.0.0/16"),
        ],
    )
}

fn server(n: usize) -> String {
    format!("hive-p-hive{n}.{SITE}")
}

/// Runs `args` on the mother machine; its standard output.
fn run(args: &[&str]) -> (bool, String) {
    let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).trim().to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// A server's address on the stage network.
fn address(n: usize) -> String {
    let (ok, out) = run(&[
        "docker",
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &server(n),
    ]);
    assert!(ok, "{out}");
    out
}

/// `dig @server -p 53 name A +short`: the addresses answered, sorted.
fn dig(server: &str, name: &str) -> Vec<String> {
    let (_, out) = run(&[
        "dig",
        &format!("@{server}"),
        "-p",
        "53",
        name,
        "A",
        "+short",
        "+time=2",
        "+tries=1",
    ]);
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| l.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Prints where a run's time went (its phases' closing lines).
fn phase_times(o: &std::process::Output) {
    for line in String::from_utf8_lossy(&o.stderr).lines() {
        if !line.starts_with(' ') && line.ends_with("s)") {
            eprintln!("  {line}");
        }
    }
}

/// Polls `f` until it holds or `limit` passes; how long it took.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}

/// `docker` on a server (its own engine).
fn docker_on(n: usize, args: &[&str]) -> (bool, String) {
    let mut a = vec!["docker", "exec"];
    let s = server(n);
    a.push(&s);
    a.push("docker");
    a.extend_from_slice(args);
    run(&a)
}

/// What the proxy of hive `n` has: the answer, its containers, its
/// configuration and the configure service's last lines (for a failure).
fn proxy_state(n: usize, url: &str, host: &str) -> String {
    let (_, answer) = run(&["curl", "-s", "-S", "-i", "-m", "3", "-H", host, url]);
    let (_, containers) = docker_on(n, &["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    let (_, proxy) = docker_on(
        n,
        &[
            "ps",
            "-q",
            "-f",
            "label=com.docker.swarm.service.name=proxy",
        ],
    );
    let (_, conf) = docker_on(
        n,
        &[
            "exec",
            proxy.trim(),
            "cat",
            "/etc/nginx/conf.d/default.conf",
        ],
    );
    let (_, log) = run(&[
        "docker",
        "exec",
        &server(3),
        "tail",
        "-n",
        "40",
        "/var/log/services/configure.log",
    ]);
    format!(
        "answer:\n{answer}\ncontainers:\n{containers}\nconfig:\n{conf}\nconfigure's log:\n{log}"
    )
}

/// The zone as the API gives it, asked from the repository server (inside
/// the stage).
fn zone_from_inside(hive0: &str, key: &str, zone: &str) -> (bool, String) {
    run(&[
        "docker",
        "exec",
        &server(3),
        "curl",
        "-s",
        "-f",
        "-m",
        "5",
        "-H",
        &format!("X-API-Key: {key}"),
        &format!("http://{hive0}:{API_PORT}/api/v1/servers/localhost/zones/{zone}."),
    ])
}

#[test]
fn pdns_site_from_nothing() {
    let (_tmp, root) = project();
    let _cleanup = common::DestroyOnDrop(root.clone());
    let zone = format!("{SITE}.example.com");

    // A fresh copy: valid, and its plan runs without a problem.
    let check = hive(&root, &["check"]);
    assert!(check.status.success(), "{}", text(&check));
    let plan = hive(&root, &["all", "-C"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout);
    assert!(out.contains("would create 4 servers"), "{out}");

    // The whole site from nothing.
    let start = Instant::now();
    let first = hive(&root, &["all"]);
    let built = start.elapsed();
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("all: done"),
        "{}",
        text(&first)
    );
    eprintln!("pdns site: hive all from nothing took {built:.1?}");
    phase_times(&first);

    // A second run changes nothing.
    let start = Instant::now();
    let again = hive(&root, &["all", "-S", "build-infra"]);
    let rerun = start.elapsed();
    assert!(again.status.success(), "{}", text(&again));
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(out.contains("all: no change"), "{}", text(&again));
    eprintln!("pdns site: the second hive all took {rerun:.1?}");
    phase_times(&again);

    // Each hive's A record, answered on every hive.
    let hives: Vec<String> = (0..3).map(address).collect();
    for at in &hives {
        for (n, ip) in hives.iter().enumerate() {
            let name = format!("p-hive{n}.{SITE}.example.com");
            assert_eq!(
                dig(at, &name),
                std::slice::from_ref(ip),
                "{name} asked at {at}"
            );
        }
    }

    // The API: open inside the stage, closed from outside (the mother
    // machine is not a server of the stage).
    let key = std::fs::read_to_string(root.join(".hive/private/registry_password")).unwrap();
    let (ok, answer) = zone_from_inside(&hives[0], key.trim(), &zone);
    assert!(ok, "API from inside the stage: {answer}");
    assert!(answer.contains(&format!("www.{zone}.")), "{answer}");
    let (outside, answer) = run(&[
        "curl",
        "-s",
        "-m",
        "3",
        &format!("http://{}:{API_PORT}/api/v1/servers", hives[0]),
    ]);
    assert!(!outside, "the API answered outside the stage: {answer}");

    // The web service through the proxy of every hive, by its name.
    for ip in &hives {
        let url = format!("http://{ip}/");
        let host = format!("Host: www.{zone}");
        let page = within(Duration::from_secs(30), || {
            run(&["curl", "-s", "-f", "-m", "3", "-H", &host, &url])
                .1
                .contains(&format!("www of {SITE}"))
        });
        if page.is_none() {
            let n = hives.iter().position(|h| h == ip).unwrap();
            panic!(
                "no page from the proxy of {ip}\n{}",
                proxy_state(n, &url, &host)
            );
        }
    }

    // The zone and records live in the database's volume: they survive a
    // new pdnsdb task.
    let (ok, out) = docker_on(0, &["service", "update", "--force", "--quiet", "pdnsdb"]);
    assert!(ok, "{out}");
    let kept = within(Duration::from_secs(60), || {
        zone_from_inside(&hives[0], key.trim(), &zone)
            .1
            .contains(&format!("p-hive2.{zone}."))
    });
    assert!(kept.is_some(), "the zone is gone after a new pdnsdb task");

    // The server's lines on the repository server.
    let (_, log) = run(&[
        "docker",
        "exec",
        &server(3),
        "cat",
        "/var/log/services/powerdns.log",
    ]);
    assert!(log.contains("PowerDNS Authoritative Server"), "{log}");

    // The LUA record answers with the hives whose port 80 is up: without
    // the proxy on p-hive1, its address leaves the answer within the
    // record's TTL (20 s).
    let www = format!("www.{zone}");
    let all = within(Duration::from_secs(30), || dig(&hives[0], &www) == hives);
    assert!(all.is_some(), "{www}: {:?}", dig(&hives[0], &www));
    let (ok, out) = docker_on(
        0,
        &[
            "service",
            "update",
            "--quiet",
            "--constraint-add",
            "node.hostname!=p-hive1",
            "proxy",
        ],
    );
    assert!(ok, "{out}");
    let rest = vec![hives[0].clone(), hives[2].clone()];
    let left = within(Duration::from_secs(25), || {
        hives.iter().all(|at| dig(at, &www) == rest)
    });
    assert!(
        left.is_some(),
        "{www} still answers {:?}",
        dig(&hives[0], &www)
    );
    eprintln!("pdns site: p-hive1 left the LUA answer in {left:.1?}");
}
