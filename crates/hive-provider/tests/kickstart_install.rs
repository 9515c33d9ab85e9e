//! build-infra on a kickstart stage whose servers are installed one by one:
//! a server that answers (here a `docker` provider server standing in for
//! one installed from the media, with the stage's key) has its host key
//! pinned; one that does not is listed as not installed, in ssh_config all
//! the same, without waiting; a second run changes nothing.

use std::process::Command;

use hive_provider::{
    BuildInfraOptions, DockerProvider, KickstartProvider, Provider, ServerRole, ServerSpec,
    SshConfig, StageSpec, build_infra,
};

const PREFIX: &str = "hkick-prov-";
const STAGE_LABEL: &str = "io.hive.stage=hkick-prov-hkick-private";
const CIDR: &str = "172.31.253.0/24";
const INSTALLED: &str = "172.31.253.10";
const NOT_YET: &str = "172.31.253.11";

/// Removes the server container and its network, even when the test fails.
struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        for (list, rm) in [
            (vec!["ps", "-aq"], vec!["rm", "-f", "-v"]),
            (vec!["volume", "ls", "-q"], vec!["volume", "rm", "-f"]),
            (vec!["network", "ls", "-q"], vec!["network", "rm"]),
        ] {
            let filter = format!("label={STAGE_LABEL}");
            let mut args = list.clone();
            args.extend(["--filter", filter.as_str()]);
            let out = Command::new("docker").args(&args).output().expect("docker");
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let mut cmd = rm.clone();
                cmd.push(id);
                let _ = Command::new("docker").args(&cmd).output();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_are_reached_as_they_are_installed() {
    let _cleanup = Cleanup;
    let work = tempfile::Builder::new().prefix(PREFIX).tempdir().unwrap();

    // The installed server: a docker-provider server with the admin account
    // and the stage key, as the kickstart file's %post leaves it.
    let mut installed = StageSpec::new(
        "hkick",
        "private",
        "docker",
        CIDR.parse().unwrap(),
        work.path().join("docker"),
    );
    installed.servers.push(ServerSpec::new(
        "hive0.hkick",
        ServerRole::Hive,
        INSTALLED.parse().unwrap(),
    ));
    installed
        .attributes
        .insert("name_prefix".into(), PREFIX.into());
    let docker = DockerProvider::new();
    docker.destroy(&installed).await.unwrap();
    build_infra(&docker, &installed, &BuildInfraOptions::default())
        .await
        .unwrap();

    let mut stage = StageSpec::new(
        "hkick",
        "production",
        "kickstart",
        CIDR.parse().unwrap(),
        work.path().join("kickstart"),
    );
    stage.private_key = Some(installed.private_key_path());
    stage.servers.push(ServerSpec::new(
        "hive0.hkick",
        ServerRole::Hive,
        INSTALLED.parse().unwrap(),
    ));
    stage.servers.push(ServerSpec::new(
        "hive1.hkick",
        ServerRole::Repository,
        NOT_YET.parse().unwrap(),
    ));
    stage.attributes.insert(
        "kickstart_config".into(),
        serde_json::json!({"networks": [{"interface": "eth0"}]}),
    );
    let kickstart = KickstartProvider;

    let start = std::time::Instant::now();
    let first = build_infra(&kickstart, &stage, &BuildInfraOptions::default())
        .await
        .unwrap();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(30),
        "build-infra waited {:?} for a server that is not installed",
        start.elapsed()
    );
    assert_eq!(first.servers.len(), 1, "{first:?}");
    assert_eq!(first.servers[0].endpoint.name, "hive0.hkick");
    assert!(first.servers[0].host_key_pinned, "{first:?}");
    assert_eq!(first.not_installed.len(), 1, "{first:?}");
    assert_eq!(first.not_installed[0].name, "hive1.hkick");
    assert!(first.changed());
    let hosts = SshConfig::load(&stage.ssh_config_path()).unwrap().hosts;
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["hive0.hkick", "hive1.hkick"]);
    for s in ["hive0", "hive1"] {
        assert!(
            KickstartProvider::media_dir(&stage)
                .join(format!("{s}.ks"))
                .exists()
        );
    }

    let second = build_infra(&kickstart, &stage, &BuildInfraOptions::default())
        .await
        .unwrap();
    assert!(!second.changed(), "{second:?}");
    assert!(!second.servers[0].host_key_pinned);
    assert_eq!(second.not_installed.len(), 1);

    docker.destroy(&installed).await.unwrap();
}
