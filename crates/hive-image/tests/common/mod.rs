//! Helpers shared by the integration tests.
#![allow(dead_code, missing_docs)]
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
