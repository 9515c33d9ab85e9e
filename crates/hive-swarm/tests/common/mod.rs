//! Helpers for the tests against the real Docker engine in swarm mode.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hive_swarm::{Hive, ServiceDefinition, StageContext};

/// Make the engine a single-node swarm manager if it is not one yet.
/// Idempotent and safe for test binaries running in parallel (file lock).
pub fn ensure_swarm() {
    let status = Command::new("flock")
        .args([
            "/tmp/hswarm-test-swarm-init.lock",
            "sh",
            "-c",
            "[ \"$(docker info --format '{{.Swarm.LocalNodeState}}')\" = active ] || docker swarm init --advertise-addr 127.0.0.1 >/dev/null",
        ])
        .status()
        .expect("run flock");
    assert!(
        status.success(),
        "could not make the engine a swarm manager"
    );
}

/// The local engine as a hive.
pub fn hive() -> Hive {
    ensure_swarm();
    Hive::new(
        "hswarm-test-node",
        bollard::Docker::connect_with_local_defaults().expect("docker socket"),
    )
}

/// Run a docker CLI command, returning stdout; panics on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run a docker CLI command ignoring its outcome (cleanup).
pub fn docker_quiet(args: &[&str]) {
    let _ = Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Removes services, networks, volumes and images by name when dropped.
pub struct Cleanup {
    pub services: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for s in &self.services {
            docker_quiet(&["service", "rm", s]);
        }
        // Task containers leave the networks and volumes asynchronously.
        let deadline = Instant::now() + Duration::from_secs(30);
        for svc in &self.services {
            while Instant::now() < deadline {
                let out = Command::new("docker")
                    .args([
                        "ps",
                        "-aq",
                        "--filter",
                        &format!("label=com.docker.swarm.service.name={svc}"),
                    ])
                    .output();
                match out {
                    Ok(o) if !o.stdout.is_empty() => std::thread::sleep(Duration::from_millis(300)),
                    _ => break,
                }
            }
        }
        for n in &self.networks {
            for _ in 0..10 {
                let ok = Command::new("docker")
                    .args(["network", "rm", n])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(true);
                let gone = !Command::new("docker")
                    .args(["network", "inspect", n])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if ok || gone {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        for v in &self.volumes {
            docker_quiet(&["volume", "rm", v]);
        }
        for i in &self.images {
            docker_quiet(&["image", "rm", i]);
        }
    }
}

/// A Docker registry (Debian's docker-registry) on a free localhost port,
/// stopped when dropped.
pub struct Registry {
    child: Child,
    built: std::sync::Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
    pub address: String,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let start = Instant::now();
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Registry {
            child,
            built: std::sync::Mutex::new(Vec::new()),
            _dir: dir,
            address,
        }
    }

    /// Push a new image under `repo:tag` in this registry, different from any
    /// before (a label with `revision`), and return its reference.
    pub fn push_revision(&self, repo: &str, tag: &str, revision: &str) -> String {
        let reference = format!("{}/{repo}:{tag}", self.address);
        let mut child = Command::new("docker")
            .args(["build", "-q", "-t", &reference, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("docker build");
        {
            use std::io::Write;
            let stdin = child.stdin.as_mut().expect("stdin");
            writeln!(
                stdin,
                "FROM hive-test/busybox:1\nLABEL hswarm-test-revision={revision}"
            )
            .expect("write");
        }
        assert!(child.wait().expect("wait").success(), "docker build failed");
        docker(&["push", "-q", &reference]);
        let id = docker(&["image", "inspect", "--format", "{{.Id}}", &reference]);
        self.built.lock().unwrap().push(id);
        reference
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for id in self.built.lock().unwrap().iter() {
            docker_quiet(&["image", "rm", "-f", id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stage for tests: one server, the given registry, default network renamed.
pub fn stage(registry: &str, default_network: &str) -> StageContext {
    let mut stage = StageContext::new("private", registry, "127.0.0.1");
    stage.default_network = default_network.to_string();
    stage.servers.push(hive_swarm::Server {
        name: "hswarm-test-server0".into(),
        role: hive_model::ServerRole::Hive,
        private_ip: std::net::Ipv4Addr::new(192, 0, 2, 10),
        groups: Vec::new(),
    });
    stage
}

/// Parse a service definition from YAML.
pub fn service(yaml: &str) -> ServiceDefinition {
    serde_yaml::from_str(yaml).expect("service definition")
}
