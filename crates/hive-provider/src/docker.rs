//! The `docker` provider: each server of the stage is a container on the
//! mother machine's Docker engine, booted like a small VM (systemd as PID 1,
//! sshd, a volume for `/var/lib/docker`) on a bridge network with the
//! stage's `cidr` and the servers' private addresses.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::process::Stdio;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::{
    Config, CreateContainerOptions, ListContainersOptions, NetworkingConfig,
    RemoveContainerOptions, StartContainerOptions, StopContainerOptions,
};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig};
use bollard::network::{CreateNetworkOptions, InspectNetworkOptions, ListNetworksOptions};
use bollard::volume::{CreateVolumeOptions, ListVolumesOptions, RemoveVolumeOptions};
use futures::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use crate::error::{ProviderError, Result};
use crate::provider::{Provider, ProviderReport, ServerChange};
use crate::stage::{Endpoint, ServerSpec, StageSpec};

/// The base image the provider runs when the stage names none.
pub const BASE_IMAGE: &str = "hive/debian-server:bookworm";

/// The script that builds [`BASE_IMAGE`] (debootstrap + `docker import`).
const IMAGE_SCRIPT: &str = include_str!("../assets/debian-server.sh");

const LABEL_STAGE: &str = "io.hive.stage";
const LABEL_SERVER: &str = "io.hive.server";
const LABEL_PROVIDER: &str = "io.hive.provider";

/// The `docker` provider's stage attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerAttributes {
    /// Image the servers run ([`BASE_IMAGE`] when absent). Must boot like
    /// the base image (its `CMD` starts systemd after the remounts).
    #[serde(default)]
    pub image: Option<String>,
    /// Prefix of container, network and volume names (`hive-`).
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Build the base image when it is missing (default true).
    #[serde(default)]
    pub build_image: Option<bool>,
    /// Explicit addresses, taken as computed by the inventory (accepted for
    /// compatibility; the servers' `private_ip` are used).
    #[serde(default)]
    pub ip_address_list: Option<Vec<Ipv4Addr>>,
}

impl DockerAttributes {
    const ACCEPTED: &'static [&'static str] =
        &["image", "name_prefix", "build_image", "ip_address_list"];

    fn prefix(&self) -> &str {
        self.name_prefix.as_deref().unwrap_or("hive-")
    }
    fn image(&self) -> &str {
        self.image.as_deref().unwrap_or(BASE_IMAGE)
    }
}

/// Servers as containers on the mother machine's Docker engine.
///
/// Resource names: network `<prefix><site>-<stage>`, container
/// `<prefix><server>`, volume `<prefix><server>-docker`; all labelled
/// `io.hive.stage=<network name>` so that `destroy` finds every one.
#[derive(Debug, Default)]
pub struct DockerProvider {
    client: OnceCell<Docker>,
}

impl DockerProvider {
    /// A provider that connects to the local engine (`DOCKER_HOST` or
    /// `/var/run/docker.sock`) on first use, negotiating the API version.
    pub fn new() -> Self {
        DockerProvider {
            client: OnceCell::new(),
        }
    }

    /// A provider using an existing client.
    pub fn with_client(docker: Docker) -> Self {
        DockerProvider {
            client: OnceCell::new_with(Some(docker)),
        }
    }

    /// The engine client.
    pub async fn client(&self) -> Result<&Docker> {
        self.client
            .get_or_try_init(|| async {
                let d = Docker::connect_with_local_defaults()
                    .map_err(|e| ProviderError::docker("connect to the local engine", e))?;
                d.negotiate_version()
                    .await
                    .map_err(|e| ProviderError::docker("negotiate the API version", e))
            })
            .await
    }

    fn attributes(stage: &StageSpec) -> Result<DockerAttributes> {
        stage.provider_attributes(DockerAttributes::ACCEPTED)
    }

    /// The Docker network name of a stage.
    pub fn network_name(stage: &StageSpec) -> Result<String> {
        let a = Self::attributes(stage)?;
        Ok(format!("{}{}-{}", a.prefix(), stage.site, stage.stage))
    }

    /// The container name of a server.
    pub fn container_name(stage: &StageSpec, server: &ServerSpec) -> Result<String> {
        let a = Self::attributes(stage)?;
        Ok(format!("{}{}", a.prefix(), server.name))
    }

    fn gateway(stage: &StageSpec) -> Result<Ipv4Addr> {
        stage
            .cidr
            .hosts()
            .find(|ip| !stage.servers.iter().any(|s| s.private_ip == *ip))
            .ok_or_else(|| ProviderError::InvalidStage {
                stage: stage.stage.clone(),
                key: "cidr".into(),
                message: format!(
                    "{} has no free address left for the bridge gateway; use a larger network",
                    stage.cidr
                ),
            })
    }

    async fn ensure_network(
        &self,
        stage: &StageSpec,
        report: &mut ProviderReport,
    ) -> Result<String> {
        let docker = self.client().await?;
        let name = Self::network_name(stage)?;
        let want = stage.cidr.to_string();
        match docker
            .inspect_network(&name, None::<InspectNetworkOptions<String>>)
            .await
        {
            Ok(n) => {
                let subnets: Vec<String> = n
                    .ipam
                    .and_then(|i| i.config)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|c| c.subnet)
                    .collect();
                if !subnets.contains(&want) {
                    return Err(ProviderError::DockerState(format!(
                        "network {name} exists with subnet {} but stage {} wants {want}; destroy the stage (hive build-infra -D) or change its cidr",
                        subnets.join(","),
                        stage.stage
                    )));
                }
                report
                    .resources
                    .push((format!("network {name}"), ServerChange::Unchanged));
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                let labels = HashMap::from([
                    (LABEL_STAGE.to_string(), name.clone()),
                    (LABEL_PROVIDER.to_string(), "docker".to_string()),
                ]);
                docker
                    .create_network(CreateNetworkOptions {
                        name: name.clone(),
                        driver: "bridge".into(),
                        ipam: Ipam {
                            driver: Some("default".into()),
                            config: Some(vec![IpamConfig {
                                subnet: Some(want.clone()),
                                gateway: Some(Self::gateway(stage)?.to_string()),
                                ..Default::default()
                            }]),
                            options: None,
                        },
                        labels,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| {
                        ProviderError::docker(format!("create network {name} ({want})"), e)
                    })?;
                report
                    .resources
                    .push((format!("network {name}"), ServerChange::Created));
            }
            Err(e) => return Err(ProviderError::docker(format!("inspect network {name}"), e)),
        }
        Ok(name)
    }

    async fn ensure_server(
        &self,
        stage: &StageSpec,
        server: &ServerSpec,
        network: &str,
        image: &str,
    ) -> Result<ServerChange> {
        let docker = self.client().await?;
        let name = Self::container_name(stage, server)?;
        match docker.inspect_container(&name, None).await {
            Ok(c) => {
                let ip = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .and_then(|mut n| n.remove(network))
                    .and_then(|e| e.ipam_config.and_then(|i| i.ipv4_address).or(e.ip_address))
                    .unwrap_or_default();
                if ip != server.private_ip.to_string() {
                    return Err(ProviderError::DockerState(format!(
                        "container {name} exists with address `{ip}` on {network}, but server {} should have {}; destroy the stage first",
                        server.name, server.private_ip
                    )));
                }
                if c.state.and_then(|s| s.running).unwrap_or(false) {
                    return Ok(ServerChange::Unchanged);
                }
                docker
                    .start_container(&name, None::<StartContainerOptions<String>>)
                    .await
                    .map_err(|e| ProviderError::docker(format!("start container {name}"), e))?;
                Ok(ServerChange::Started)
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                self.create_server(stage, server, network, image, &name)
                    .await?;
                Ok(ServerChange::Created)
            }
            Err(e) => Err(ProviderError::docker(
                format!("inspect container {name}"),
                e,
            )),
        }
    }

    async fn create_server(
        &self,
        stage: &StageSpec,
        server: &ServerSpec,
        network: &str,
        image: &str,
        name: &str,
    ) -> Result<()> {
        let docker = self.client().await?;
        let labels = HashMap::from([
            (LABEL_STAGE.to_string(), network.to_string()),
            (LABEL_SERVER.to_string(), server.name.clone()),
            (LABEL_PROVIDER.to_string(), "docker".to_string()),
        ]);
        let volume = format!("{name}-docker");
        docker
            .create_volume(CreateVolumeOptions {
                name: volume.clone(),
                driver: "local".to_string(),
                driver_opts: HashMap::new(),
                labels: labels.clone(),
            })
            .await
            .map_err(|e| ProviderError::docker(format!("create volume {volume}"), e))?;
        let (hostname, domainname) = match server.name.split_once('.') {
            Some((h, d)) => (h.to_string(), Some(d.to_string())),
            None => (server.name.clone(), None),
        };
        let host_config = HostConfig {
            // What runs here and on ordinary machines: --privileged fails
            // where the engine lacks CAP_SYS_RESOURCE.
            cap_add: Some(vec!["ALL".into()]),
            cap_drop: Some(vec!["SYS_RESOURCE".into()]),
            security_opt: Some(vec![
                "seccomp=unconfined".into(),
                "apparmor=unconfined".into(),
            ]),
            // `--security-opt systempaths=unconfined` is a client-side
            // option: no masked or read-only /proc and /sys paths.
            masked_paths: Some(Vec::new()),
            readonly_paths: Some(Vec::new()),
            device_cgroup_rules: Some(vec!["a *:* rwm".into()]),
            tmpfs: Some(HashMap::from([
                (
                    "/run".to_string(),
                    "rw,nosuid,nodev,exec,mode=755".to_string(),
                ),
                (
                    "/run/lock".to_string(),
                    "rw,nosuid,nodev,noexec".to_string(),
                ),
            ])),
            binds: Some(vec![format!("{volume}:/var/lib/docker")]),
            memory: server.memory_size.map(|m| (m * 1024 * 1024) as i64),
            nano_cpus: server.cpus.map(|c| c as i64 * 1_000_000_000),
            network_mode: Some(network.to_string()),
            extra_hosts: Some(extra_hosts(stage)),
            ..Default::default()
        };
        let config = Config {
            image: Some(image.to_string()),
            hostname: Some(hostname),
            domainname,
            labels: Some(labels),
            stop_signal: Some("SIGRTMIN+3".to_string()),
            env: Some(vec!["container=docker".to_string()]),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: HashMap::from([(
                    network.to_string(),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(server.private_ip.to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )]),
            }),
            ..Default::default()
        };
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name: name.to_string(),
                    platform: None,
                }),
                config,
            )
            .await
            .map_err(|e| ProviderError::docker(format!("create container {name}"), e))?;
        docker
            .start_container(name, None::<StartContainerOptions<String>>)
            .await
            .map_err(|e| ProviderError::docker(format!("start container {name}"), e))?;
        Ok(())
    }

    /// Run a shell script in a server's container as root (no SSH needed);
    /// returns exit code and output.
    pub async fn exec_in(&self, container: &str, script: &str) -> Result<(i64, String)> {
        let docker = self.client().await?;
        let exec = docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(vec!["sh", "-c", script]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ProviderError::docker(format!("exec in {container}"), e))?;
        let mut text = String::new();
        if let StartExecResults::Attached { mut output, .. } = docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| ProviderError::docker(format!("exec in {container}"), e))?
        {
            while let Some(chunk) = output.next().await {
                let chunk =
                    chunk.map_err(|e| ProviderError::docker(format!("exec in {container}"), e))?;
                text.push_str(&chunk.to_string());
            }
        }
        let code = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| ProviderError::docker(format!("exec in {container}"), e))?
            .exit_code
            .unwrap_or(-1);
        Ok((code, text))
    }

    async fn stage_containers(&self, stage: &StageSpec) -> Result<Vec<(String, String, bool)>> {
        let docker = self.client().await?;
        let network = Self::network_name(stage)?;
        let list = docker
            .list_containers(Some(ListContainersOptions::<String> {
                all: true,
                filters: HashMap::from([(
                    "label".to_string(),
                    vec![format!("{LABEL_STAGE}={network}")],
                )]),
                ..Default::default()
            }))
            .await
            .map_err(|e| ProviderError::docker("list containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let name = c
                    .names
                    .and_then(|n| n.first().cloned())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string();
                let server = c
                    .labels
                    .and_then(|mut l| l.remove(LABEL_SERVER))
                    .unwrap_or_else(|| name.clone());
                let running = c.state.as_deref() == Some("running");
                (name, server, running)
            })
            .collect())
    }
}

/// The stage's servers as `/etc/hosts` entries (`name:address`, and the
/// short name too) that the engine writes into every container's hosts file
/// each time it starts: the names setup-hosts adds to `/etc/hosts` are lost
/// when a container restarts (the engine rewrites the file), these are not.
fn extra_hosts(stage: &StageSpec) -> Vec<String> {
    let mut hosts = Vec::new();
    for s in &stage.servers {
        hosts.push(format!("{}:{}", s.name, s.private_ip));
        if let Some((short, _)) = s.name.split_once('.') {
            hosts.push(format!("{short}:{}", s.private_ip));
        }
    }
    hosts
}

/// Make sure `image` exists on the engine, building it with the embedded
/// debootstrap script when it is [`BASE_IMAGE`]-like and missing. Returns
/// whether it was built. Takes one to three minutes when it builds.
pub async fn ensure_base_image(docker: &Docker, image: &str) -> Result<bool> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(false),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => return Err(ProviderError::docker(format!("inspect image {image}"), e)),
    }
    tracing::info!(
        image,
        "building the docker provider's base image (debootstrap)"
    );
    let mut child = tokio::process::Command::new("bash")
        .args(["-s", "--", image])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ProviderError::Image {
            image: image.to_string(),
            message: format!("cannot run bash: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(IMAGE_SCRIPT.as_bytes())
            .await
            .map_err(|e| ProviderError::Image {
                image: image.to_string(),
                message: format!("cannot feed the build script: {e}"),
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| ProviderError::Image {
            image: image.to_string(),
            message: format!("build script: {e}"),
        })?;
    if !out.status.success() {
        return Err(ProviderError::Image {
            image: image.to_string(),
            message: format!(
                "the build script failed ({}): {}",
                out.status,
                crate::transport::tail(&String::from_utf8_lossy(&out.stderr), 600)
            ),
        });
    }
    Ok(true)
}

/// The script that creates the admin group and user, passwordless sudo and
/// the authorized key; prints `changed` when it changed something.
pub(crate) fn admin_script(admin: &crate::stage::AdminAccount, public_key: &str) -> String {
    use crate::transport::shell_quote as q;
    let user = q(&admin.user);
    let group = q(admin.group_name());
    let gid = admin.gid.map(|g| format!("-g {g} ")).unwrap_or_default();
    let uid = admin.uid.map(|u| format!("-u {u} ")).unwrap_or_default();
    let sudoers = format!("%{} ALL=(ALL) NOPASSWD: ALL", admin.group_name());
    let sudoers_file = format!(
        "/etc/sudoers.d/hive-{}",
        admin.group_name().replace('.', "_")
    );
    format!(
        r#"set -e
changed=
getent group {group} >/dev/null || {{ groupadd {gid}{group}; changed=1; }}
id -u {user} >/dev/null 2>&1 || {{ useradd -m -s /bin/bash {uid}-g {group} {user}; changed=1; }}
if [ "$(cat {sf} 2>/dev/null)" != {sl} ]; then
  mkdir -p /etc/sudoers.d
  printf '%s\n' {sl} >{sf}.tmp && chmod 0440 {sf}.tmp && mv {sf}.tmp {sf}; changed=1
fi
home=$(getent passwd {user} | cut -d: -f6)
mkdir -p "$home/.ssh"
touch "$home/.ssh/authorized_keys"
if ! grep -qxF {key} "$home/.ssh/authorized_keys"; then
  printf '%s\n' {key} >>"$home/.ssh/authorized_keys"; changed=1
fi
chmod 0700 "$home/.ssh"; chmod 0600 "$home/.ssh/authorized_keys"
chown -R {user}:{group} "$home/.ssh"
if [ -n "$changed" ]; then echo changed; else echo unchanged; fi
"#,
        sf = q(&sudoers_file),
        sl = q(&sudoers),
        key = q(public_key.trim()),
    )
}

#[async_trait]
impl Provider for DockerProvider {
    fn name(&self) -> &str {
        "docker"
    }

    fn validate(&self, stage: &StageSpec) -> Result<Vec<String>> {
        Self::attributes(stage)?;
        stage.check_common()?;
        stage.check_addresses_in_cidr()?;
        Self::gateway(stage)?;
        if stage.root_password.is_some() {
            return Err(ProviderError::InvalidStage {
                stage: stage.stage.clone(),
                key: "root_password".into(),
                message: "is for prepared servers; the docker provider creates the admin account itself, remove root_password from this stage".into(),
            });
        }
        let mut warnings = Vec::new();
        let mirrored: Vec<&str> = stage
            .servers
            .iter()
            .filter(|s| s.mirrored_disk_size.is_some())
            .map(|s| s.name.as_str())
            .collect();
        if !mirrored.is_empty() {
            warnings.push(format!(
                "stage {}: mirrored_disk_size is set but the docker provider cannot give servers a DRBD disk (containers cannot load the drbd kernel module); no mirrored disk is created on {} and DRBD-backed volumes will not work on this stage",
                stage.stage,
                mirrored.join(", ")
            ));
        }
        if stage.servers.iter().any(|s| s.disk_size.is_some()) {
            warnings.push(format!(
                "stage {}: disk_size is ignored by the docker provider (containers share the mother machine's disk)",
                stage.stage
            ));
        }
        Ok(warnings)
    }

    async fn build(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let mut report = ProviderReport {
            warnings: self.validate(stage)?,
            ..Default::default()
        };
        let attrs = Self::attributes(stage)?;
        let docker = self.client().await?;
        let image = attrs.image();
        if attrs.build_image.unwrap_or(true) {
            if ensure_base_image(docker, image).await? {
                report
                    .resources
                    .push((format!("image {image}"), ServerChange::Created));
            }
        } else if let Err(e) = docker.inspect_image(image).await {
            return Err(ProviderError::docker(
                format!(
                    "find image {image} (build_image is false: build it with scripts/images/debian-server.sh)"
                ),
                e,
            ));
        }
        let network = self.ensure_network(stage, &mut report).await?;
        let public_key = std::fs::read_to_string(stage.public_key_path())
            .map_err(|e| ProviderError::io("read the public key", stage.public_key_path(), e))?;
        let script = admin_script(&stage.admin, &public_key);
        // Each server: create or start it, then create the admin account
        // through the engine (no SSH needed); all servers at once.
        let futs = stage.servers.iter().map(|server| {
            let (network, script) = (&network, &script);
            async move {
                let change = self.ensure_server(stage, server, network, image).await?;
                let name = Self::container_name(stage, server)?;
                let (code, out) = self.exec_in(&name, script).await?;
                if code != 0 {
                    return Err(ProviderError::RemoteCommand {
                        host: server.name.clone(),
                        command: "create the admin account".into(),
                        status: code as i32,
                        stderr: crate::transport::tail(&out, 400),
                    });
                }
                Ok((server.name.clone(), change))
            }
        });
        for r in futures::future::join_all(futs).await {
            report.servers.push(r?);
        }
        Ok(report)
    }

    async fn halt(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let docker = self.client().await?;
        let mut report = ProviderReport::default();
        for (name, server, running) in self.stage_containers(stage).await? {
            if running {
                docker
                    .stop_container(&name, Some(StopContainerOptions { t: 20 }))
                    .await
                    .map_err(|e| ProviderError::docker(format!("stop container {name}"), e))?;
                report.servers.push((server, ServerChange::Stopped));
            } else {
                report.servers.push((server, ServerChange::Unchanged));
            }
        }
        Ok(report)
    }

    async fn destroy(&self, stage: &StageSpec) -> Result<ProviderReport> {
        let docker = self.client().await?;
        let network = Self::network_name(stage)?;
        let mut report = ProviderReport::default();
        for (name, server, _) in self.stage_containers(stage).await? {
            docker
                .remove_container(
                    &name,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
                .map_err(|e| ProviderError::docker(format!("remove container {name}"), e))?;
            report.servers.push((server, ServerChange::Destroyed));
        }
        let volumes = docker
            .list_volumes(Some(ListVolumesOptions::<String> {
                filters: HashMap::from([(
                    "label".to_string(),
                    vec![format!("{LABEL_STAGE}={network}")],
                )]),
            }))
            .await
            .map_err(|e| ProviderError::docker("list volumes", e))?;
        for v in volumes.volumes.unwrap_or_default() {
            docker
                .remove_volume(&v.name, Some(RemoveVolumeOptions { force: true }))
                .await
                .map_err(|e| ProviderError::docker(format!("remove volume {}", v.name), e))?;
            report
                .resources
                .push((format!("volume {}", v.name), ServerChange::Destroyed));
        }
        let networks = docker
            .list_networks(Some(ListNetworksOptions::<String> {
                filters: HashMap::from([(
                    "label".to_string(),
                    vec![format!("{LABEL_STAGE}={network}")],
                )]),
            }))
            .await
            .map_err(|e| ProviderError::docker("list networks", e))?;
        for n in networks {
            let id = n.id.or(n.name.clone()).unwrap_or_default();
            docker
                .remove_network(&id)
                .await
                .map_err(|e| ProviderError::docker(format!("remove network {network}"), e))?;
            report
                .resources
                .push((format!("network {network}"), ServerChange::Destroyed));
        }
        Ok(report)
    }

    async fn endpoints(&self, stage: &StageSpec) -> Result<Vec<Endpoint>> {
        Ok(stage.private_endpoints(22))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::ServerRole;

    fn stage() -> StageSpec {
        let mut s = StageSpec::new(
            "pdns",
            "private",
            "docker",
            "172.31.240.0/29".parse().unwrap(),
            "/tmp/x",
        );
        for (i, role) in [ServerRole::Hive, ServerRole::Repository]
            .into_iter()
            .enumerate()
        {
            s.servers.push(ServerSpec::new(
                format!("p-hive{i}.pdns"),
                role,
                Ipv4Addr::new(172, 31, 240, 1 + i as u8),
            ));
        }
        s
    }

    #[test]
    fn validation() {
        let p = DockerProvider::new();
        let mut s = stage();
        assert!(p.validate(&s).unwrap().is_empty());
        assert_eq!(
            DockerProvider::gateway(&s).unwrap(),
            Ipv4Addr::new(172, 31, 240, 3)
        );
        s.servers[0].mirrored_disk_size = Some(10);
        let w = p.validate(&s).unwrap();
        assert!(
            w[0].contains("mirrored_disk_size") && w[0].contains("drbd"),
            "{w:?}"
        );
        s.attributes
            .insert("instance_type".into(), "t3.medium".into());
        let e = p.validate(&s).unwrap_err().to_string();
        assert!(
            e.contains("`instance_type`") && e.contains("accepts: image, name_prefix"),
            "{e}"
        );
        s.attributes.clear();
        s.root_password = Some(crate::stage::Secret::new("x"));
        let e = p.validate(&s).unwrap_err().to_string();
        assert!(
            e.contains("attribute `root_password`: is for prepared servers"),
            "{e}"
        );
        s.root_password = None;
        s.servers[1].private_ip = Ipv4Addr::new(10, 0, 0, 1);
        let e = p.validate(&s).unwrap_err().to_string();
        assert!(e.contains("outside the stage network"), "{e}");
    }

    #[test]
    fn names() {
        let mut s = stage();
        assert_eq!(
            DockerProvider::network_name(&s).unwrap(),
            "hive-pdns-private"
        );
        s.attributes.insert("name_prefix".into(), "hprov-".into());
        assert_eq!(
            DockerProvider::container_name(&s, &s.servers[0]).unwrap(),
            "hprov-p-hive0.pdns"
        );
    }
}
