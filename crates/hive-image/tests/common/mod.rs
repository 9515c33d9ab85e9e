//! Helpers shared by the integration tests.
#![allow(dead_code, missing_docs)]
use std::process::{Child, Command};

use bollard::Docker;
use bollard::container::{Config, CreateContainerOptions, RemoveContainerOptions};

pub const DEBIAN: &str = "hive-test/debian:bookworm";

pub async fn docker() -> Docker {
    hive_image::connect("/var/run/docker.sock").await.unwrap()
}

/// Starts a sleeping container from `image`, named with the test prefix.
pub async fn container(d: &Docker, name: &str, image: &str) -> String {
    let name = format!("himage-test-{name}-{}", std::process::id());
    let _ = d
        .remove_container(
            &name,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    d.create_container(
        Some(CreateContainerOptions {
            name: name.as_str(),
            platform: None,
        }),
        Config {
            image: Some(image.to_string()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    d.start_container::<String>(&name, None).await.unwrap();
    name
}

pub async fn remove(d: &Docker, name: &str) {
    let _ = d
        .remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
}

pub fn roles_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/roles")
}

pub struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A registry with htpasswd auth on a free local port.
pub fn registry(dir: &std::path::Path, auth: bool) -> (Killer, u16) {
    let port = free_port();
    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", "hive", "s3cret"])
        .output()
        .unwrap();
    std::fs::write(dir.join("htpasswd"), &htpasswd.stdout).unwrap();
    let config = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
        d = dir.display(),
        auth = if auth {
            format!(
                "auth:\n  htpasswd:\n    realm: hive\n    path: {}/htpasswd\n",
                dir.display()
            )
        } else {
            String::new()
        }
    );
    std::fs::write(dir.join("config.yml"), config).unwrap();
    let child = Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (Killer(child), port)
}
