//! The main job end to end: `hive all` builds the quickstart project from
//! nothing on this machine's Docker engine (four servers as containers,
//! setup-hosts, a role-built image, a volume, a host-mode port, initial
//! data, logs on the repository server); a second run changes nothing; a
//! run while another holds the lock is refused; `-C` on a fresh stage plans
//! and creates nothing; an interrupted run resumes.
//!
//! It needs what `scripts/setup-machine.sh` installs (a Docker engine, the
//! `hive/debian-server`, `hive/registry` and `hive-test/debian` images) and
//! the Debian mirrors (setup-hosts installs packages on the servers).

mod common;

use common::{hive, text};

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const SITE: &str = "e2e.example";
const NET: &str = "192.168.202";

/// A copy of examples/quickstart under its own name and network, so that it
/// never meets a quickstart site built by the main job.
fn project() -> (tempfile::TempDir, PathBuf) {
    common::project_copy(
        "examples/quickstart",
        &[
            ("quickstart.example", SITE),
            ("192.168.201.0/24", &format!("{NET}.0/24")),
            ("10.201.0.0/16", "10.202.0.0/16"),
        ],
    )
}

fn containers() -> String {
    let o = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(SITE))
        .collect::<Vec<_>>()
        .join(",")
}

fn get(url: &str) -> Option<String> {
    let o = Command::new("curl")
        .args(["-s", "-f", "-m", "3", url])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn quickstart_site_from_nothing() {
    let (_tmp, root) = project();
    let _cleanup = common::DestroyOnDrop(root.clone());

    // The plan of a fresh stage, and nothing created.
    let plan = hive(&root, &["all", "-C"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout);
    assert!(out.contains("would create 4 servers"), "{out}");
    assert!(out.contains("would create service web"), "{out}");
    assert!(out.contains("would create image image_web"), "{out}");
    assert_eq!(containers(), "", "check mode created containers");
    assert!(!root.join(".hive/private/ssh_config").exists());

    // The same plan for programs: one JSON document on stdout, per phase,
    // host and resource.
    let plan = hive(&root, &["all", "-C", "--output", "json"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let doc: serde_json::Value =
        serde_json::from_slice(&plan.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&plan)));
    assert_eq!(doc["check_mode"], true);
    assert_eq!(doc["result"], "ok");
    let phases = doc["phases"].as_array().unwrap();
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert_eq!(names[0], "build-infra");
    assert_eq!(names[1], "setup-hosts");
    assert_eq!(names[6], "initialize-services");
    let changes = |phase: &str| -> Vec<serde_json::Value> {
        phases.iter().find(|p| p["phase"] == phase).unwrap()["changes"]
            .as_array()
            .unwrap()
            .clone()
    };
    let servers = changes("build-infra");
    assert_eq!(servers.len(), 4, "{servers:?}");
    assert!(
        servers
            .iter()
            .all(|c| c["kind"] == "server" && c["action"] == "create")
    );
    assert!(
        servers
            .iter()
            .any(|c| c["host"] == format!("p-hive3.{SITE}").as_str()),
        "{servers:?}"
    );
    assert!(
        changes("deploy-services")
            .iter()
            .any(|c| c["kind"] == "service" && c["resource"] == "web"),
        "{doc:#}"
    );
    // Per server and step: base, pki, docker, registry, firewall and addon
    // everywhere, swarm on the 3 hives, logs and backup on the repository
    // server.
    let setup = changes("setup-hosts");
    assert_eq!(setup.len(), 4 * 6 + 3 + 2, "{doc:#}");
    assert!(
        setup
            .iter()
            .any(|c| c["kind"] == "logs" && c["host"] == format!("p-hive3.{SITE}").as_str()),
        "{doc:#}"
    );
    assert_eq!(
        changes("build-images")[0]["resource"],
        "image_web",
        "{doc:#}"
    );
    assert_eq!(
        changes("initialize-services")[0]["resource"],
        "web",
        "{doc:#}"
    );
    let total: usize = names.iter().map(|n| changes(n).len()).sum();
    assert_eq!(doc["changes"], total, "{doc:#}");
    assert_eq!(containers(), "", "check mode created containers");

    // The whole site.
    let first = hive(&root, &["all"]);
    assert!(first.status.success(), "{}", text(&first));
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.contains("all: done"), "{out}");

    // setup-hosts applied the project's roles/addon to every server.
    for n in 0..4 {
        let o = Command::new("docker")
            .args([
                "exec",
                &format!("hive-p-hive{n}.{SITE}"),
                "cat",
                "/etc/motd",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("{SITE}: a server of the hive quickstart site\n")
        );
        // ... and its `mount` task: mounted now, and in fstab for the boot.
        let server = format!("hive-p-hive{n}.{SITE}");
        let o = Command::new("docker")
            .args([
                "exec",
                &server,
                "findmnt",
                "-n",
                "-o",
                "FSTYPE,OPTIONS",
                "/srv/scratch",
            ])
            .output()
            .unwrap();
        let mount = String::from_utf8_lossy(&o.stdout);
        assert!(
            mount.starts_with("tmpfs") && mount.contains("size=16384k"),
            "{server}: {mount}"
        );
        let o = Command::new("docker")
            .args(["exec", &server, "cat", "/etc/fstab"])
            .output()
            .unwrap();
        let fstab = String::from_utf8_lossy(&o.stdout);
        assert!(
            fstab
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == [
                        "tmpfs",
                        "/srv/scratch",
                        "tmpfs",
                        "size=16m,mode=1777",
                        "0",
                        "0"
                    ]),
            "{server}: {fstab}"
        );
    }

    // The web service answers on its host-mode port on the hive running
    // it, with the page its role built and the data its init role loaded.
    let hives: Vec<String> = (4..=6).map(|i| format!("{NET}.{i}")).collect();
    let page = hives
        .iter()
        .find_map(|ip| get(&format!("http://{ip}:8080/")))
        .expect("no hive answers on port 8080");
    assert!(page.contains(&format!("hello from {SITE}")), "{page}");
    let data = hives
        .iter()
        .find_map(|ip| get(&format!("http://{ip}:8080/data/initial.txt")))
        .expect("no initial data");
    assert_eq!(data.trim(), format!("initial data of {SITE}"));

    // Its access log is on the repository server.
    let repository = format!("hive-p-hive3.{SITE}");
    let mut logged = String::new();
    for _ in 0..20 {
        let o = Command::new("docker")
            .args(["exec", &repository, "cat", "/var/log/services/web.log"])
            .output()
            .unwrap();
        logged = String::from_utf8_lossy(&o.stdout).into_owned();
        if logged.contains("response:200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(logged.contains("response:200"), "web.log: {logged}");

    // Each phase command alone on the built site: plans and runs change
    // nothing; the read-only commands see the servers.
    let quiet = |args: &[&str]| {
        let o = hive(&root, args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        let all = text(&o);
        assert!(!all.contains("panicked"), "{args:?}: {all}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    for args in [
        &["--detailed-exitcode", "build-infra", "-C"][..],
        &["--detailed-exitcode", "setup-hosts", "-C"],
        &["--detailed-exitcode", "build-images", "-C"],
        &["--detailed-exitcode", "build-volumes", "-C"],
        &["--detailed-exitcode", "build-networks", "-C"],
        &["--detailed-exitcode", "deploy-services", "-C"],
        &["--detailed-exitcode", "initialize-services", "-C"],
        &["--detailed-exitcode", "all", "-C"],
    ] {
        quiet(args);
    }
    assert!(quiet(&["setup-hosts", "-T", "registry"]).contains("no change"));
    quiet(&["build-images", "-l", "web"]);
    quiet(&["build-volumes"]);
    quiet(&["build-networks"]);
    quiet(&["deploy-services", "-l", "web"]);
    quiet(&["initialize-services"]);
    quiet(&["image", "push", "hive-test/busybox:1"]);
    quiet(&["registry", "gc"]);
    assert!(quiet(&["volumes", "status"]).contains("no DRBD volumes"));
    assert!(quiet(&["ssh", "--", "hostname"]).starts_with("p-hive3"));
    assert!(quiet(&["check"]).contains("valid"));
    assert!(quiet(&["history"]).contains("deploy-services"));

    // `hive status`: healthy (once the last deploy's task runs), with the
    // service's endpoint; as JSON too.
    let healthy = || {
        let mut last = None;
        for _ in 0..30 {
            let o = hive(&root, &["status"]);
            if o.status.success() {
                return String::from_utf8_lossy(&o.stdout).into_owned();
            }
            last = Some(o);
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!("the site stays unhealthy: {}", text(&last.unwrap()));
    };
    let status = healthy();
    assert!(
        status.starts_with(&format!("site {SITE}, stage private: healthy")),
        "{status}"
    );
    let o = hive(&root, &["-o", "json", "status"]);
    assert!(o.status.success(), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["healthy"], true, "{doc:#}");
    assert_eq!(doc["servers"].as_array().unwrap().len(), 4, "{doc:#}");
    let web = &doc["services"][0];
    assert_eq!(
        (web["running"].as_u64(), web["desired"].as_u64()),
        (Some(1), Some(1))
    );
    let endpoint = web["endpoints"][0]
        .as_str()
        .unwrap()
        .replace("tcp://", "http://");
    assert!(get(&format!("{endpoint}/")).is_some(), "{endpoint}");
    assert!(
        doc["registry"]["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "image_web"),
        "{doc:#}"
    );
    // `hive logs`: the access log collected on the repository server.
    let logs = quiet(&["logs", "web", "-n", "5"]);
    assert!(logs.contains("response:200"), "{logs}");
    assert!(quiet(&["logs", "web", "--since", "1h"]).contains("response:200"));

    // A second run changes nothing.
    let again = hive(&root, &["all", "-S", "build-infra"]);
    assert!(again.status.success(), "{}", text(&again));
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(out.contains("all: no change"), "{out}");

    // And the plan of the built site is empty.
    let plan = hive(&root, &["all", "-C", "-S", "build-infra", "-o", "json"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(doc["changes"], 0, "{doc:#}");

    // A run while another holds the lock is refused, naming the holder.
    let mut holder = Command::new("sleep").arg("60").spawn().unwrap();
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap();
    let lock = serde_json::json!({
        "user": "someone", "host": host.trim(), "pid": holder.id(),
        "command": "hive all", "since": "2026-11-27T00:00:00Z"
    });
    let lock_path = root.join(".hive/private/lock");
    std::fs::write(&lock_path, lock.to_string()).unwrap();
    let refused = hive(&root, &["all"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    std::fs::remove_file(&lock_path).unwrap();
    assert!(!refused.status.success(), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("is locked by someone@"), "{err}");

    // An interrupted run records where it stopped; the next run resumes
    // and completes.
    let mut run = Command::new(env!("CARGO_BIN_EXE_hive"))
        .arg("-r")
        .arg(&root)
        .args(["all", "-S", "setup-hosts"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(run.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = run.wait().unwrap();
    let history = hive(&root, &["history", "-o", "json"]);
    let journal: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let last = journal.as_array().unwrap().last().unwrap().clone();
    if !status.success() {
        assert_eq!(last["result"], "interrupted", "{journal:#}");
    }
    let resumed = hive(&root, &["all"]);
    assert!(resumed.status.success(), "{}", text(&resumed));

    // A stopped service and a stopped hive make the site unhealthy.
    let scale_web = |replicas: u32| {
        let web = format!("web={replicas}");
        let hive0 = format!("p-hive0.{SITE}");
        let args = [
            "ssh", "-t", &hive0, "--", "sudo", "docker", "service", "scale", "-d", &web,
        ];
        let scaled = hive(&root, &args);
        assert!(scaled.status.success(), "{}", text(&scaled));
    };
    scale_web(0);
    let o = hive(&root, &["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("service web: 0 of 1 task(s) running"),
        "{}",
        text(&o)
    );
    // Scaled back (deploy-services keeps a count scaled by hand when the
    // inventory gives none, as the original does), it is healthy again.
    scale_web(1);
    assert!(healthy().contains(": healthy"));
    let stopped = Command::new("docker")
        .args(["stop", &format!("hive-p-hive2.{SITE}")])
        .output()
        .unwrap();
    assert!(stopped.status.success());
    let o = hive(&root, &["-o", "json", "status"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["healthy"], false);
    assert!(
        doc["problems"].as_array().unwrap().iter().any(|p| p
            .as_str()
            .unwrap()
            .starts_with(&format!("server p-hive2.{SITE}: not reachable"))),
        "{doc:#}"
    );

    // Destroying the servers sends the stage back to its first phase: the
    // next plan builds it again.
    let destroyed = hive(&root, &["build-infra", "-D", "--yes"]);
    assert!(destroyed.status.success(), "{}", text(&destroyed));
    assert_eq!(containers(), "", "servers left after build-infra -D");
    let plan = hive(&root, &["all", "-C"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout);
    assert!(out.contains("would create 4 servers"), "{out}");
}
