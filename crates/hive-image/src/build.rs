//! build-images: build a service's image on the repository server's engine
//! by applying roles to a build container, then commit, tag and push it.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::{
    Config, CreateContainerOptions, KillContainerOptions, RemoveContainerOptions,
    StartContainerOptions, WaitContainerOptions,
};
use bollard::image::{
    CommitContainerOptions, CreateImageOptions, PushImageOptions, TagImageOptions,
};
use futures::StreamExt;

use crate::container::ContainerTarget;
use crate::error::{Error, Result};
use crate::runner::{RunReport, Runner, TaskEvent};

/// How one service's image is built (the `image:` of a service).
#[derive(Debug, Clone, Default)]
pub struct ImageDefinition {
    /// The service name (the image is `image_<service>`).
    pub service: String,
    /// Base image.
    pub from: String,
    /// Roles applied in order.
    pub roles: Vec<String>,
    /// Standalone (the base image's own init runs, privileged).
    pub standalone: bool,
    /// Privileged build container.
    pub privileged: bool,
    /// Environment variables of the build container and image.
    pub env: Vec<(String, String)>,
    /// Image entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Image command.
    pub command: Option<Vec<String>>,
    /// Image working directory.
    pub working_dir: Option<String>,
    /// Exposed ports (`80`, `53/udp`).
    pub expose: Vec<String>,
    /// Image user.
    pub user: Option<String>,
    /// Image stop signal.
    pub stop_signal: Option<String>,
    /// Stages on which the image is pulled instead of built.
    pub pull_on: Vec<String>,
}

/// Login to a registry.
#[derive(Clone, Default)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password (never logged).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// The site registry images are pushed to.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// `host:port`.
    pub address: String,
    /// Login, if the registry wants one.
    pub credentials: Option<Credentials>,
}

/// Options of a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The stage being built (for `pull_on`).
    pub stage: String,
    /// Start from a fresh build container.
    pub rebuild: bool,
    /// `tag-mapping.json`: image reference → replacement.
    pub tag_mapping: HashMap<String, String>,
    /// Proxy variables given to the build container (empty ones dropped).
    pub proxy_env: Vec<(String, String)>,
    /// The role runner (roles, variables, check mode, fallback).
    pub runner: Runner,
}

/// What a build reports as it goes.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    /// The base image is being pulled.
    Pulling(String),
    /// The build container runs.
    ContainerReady(String),
    /// A task execution ended.
    Task(TaskEvent),
    /// The image was committed.
    Committed(String),
    /// A tag was pushed.
    Pushed(String),
    /// The build was skipped (pull_on stage).
    Skipped(String),
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// `<registry>/image_<service>:latest`.
    pub latest: String,
    /// `<registry>/image_<service>:<timestamp>`.
    pub timestamped: String,
    /// What the roles did.
    pub report: RunReport,
    /// Whether a new image was committed and pushed (in check mode: would
    /// be); false when the last image was kept.
    pub new_image: bool,
}

/// Label of a built image holding a digest of its settings (base image,
/// entrypoint, command, environment, ...).
pub const SETTINGS_LABEL: &str = "io.hive.settings";

/// The command of a microservice-type build container: sleeps, ends on INT.
pub const SLEEP_COMMAND: &str = "trap 'kill %1' INT; sleep 2400 & wait";

/// Applies `tag-mapping.json` to an image reference.
///
/// ```
/// let m = [("mariadb:10.5".to_string(), "mariadb:10.5.12".to_string())].into();
/// assert_eq!(hive_image::map_tag(&m, "mariadb:10.5"), "mariadb:10.5.12");
/// assert_eq!(hive_image::map_tag(&m, "alpine:3"), "alpine:3");
/// ```
pub fn map_tag(mapping: &HashMap<String, String>, image: &str) -> String {
    mapping
        .get(image)
        .cloned()
        .unwrap_or_else(|| image.to_string())
}

fn split_ref(image: &str) -> (String, String) {
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(c) if !image.contains('@') => (
            image[..slash + c].to_string(),
            image[slash + c + 1..].to_string(),
        ),
        _ => (
            image.to_string(),
            if image.contains('@') {
                String::new()
            } else {
                "latest".into()
            },
        ),
    }
}

async fn ensure_image(
    docker: &Docker,
    image: &str,
    progress: &(dyn Fn(BuildEvent) + Send + Sync),
    creds: Option<DockerCredentials>,
) -> Result<()> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    progress(BuildEvent::Pulling(image.to_string()));
    let mut s = docker.create_image(
        Some(CreateImageOptions {
            from_image: image,
            ..Default::default()
        }),
        None,
        creds,
    );
    while let Some(r) = s.next().await {
        r.map_err(Error::docker(format!("pulling {image}")))?;
    }
    Ok(())
}

fn creds(r: &Registry) -> Option<DockerCredentials> {
    r.credentials.as_ref().map(|c| DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.clone()),
        serveraddress: Some(r.address.clone()),
        ..Default::default()
    })
}

async fn push(docker: &Docker, repo: &str, tag: &str, registry: &Registry) -> Result<()> {
    let mut s = docker.push_image(repo, Some(PushImageOptions { tag }), creds(registry));
    while let Some(r) = s.next().await {
        let info = r.map_err(Error::docker(format!("pushing {repo}:{tag}")))?;
        if let Some(e) = info.error {
            return Err(Error::Build {
                image: repo.to_string(),
                message: format!("push of {tag} failed: {e}{}", crate::error::stream_hint(&e)),
            });
        }
    }
    Ok(())
}

/// Builds, commits and pushes the image of one service on `docker` (the
/// repository server's engine). `progress` receives each step and each
/// task execution as it happens. Returns `None` when the stage pulls the
/// image instead (`pull_on`).
pub async fn build_image(
    docker: &Docker,
    def: &ImageDefinition,
    registry: &Registry,
    opts: &BuildOptions,
    progress: Arc<dyn Fn(BuildEvent) + Send + Sync>,
) -> Result<Option<BuiltImage>> {
    let repo = format!("{}/image_{}", registry.address, def.service);
    if def.pull_on.contains(&opts.stage) {
        progress(BuildEvent::Skipped(format!(
            "{}: stage {} pulls this image",
            def.service, opts.stage
        )));
        return Ok(None);
    }
    let from = map_tag(&opts.tag_mapping, &def.from);
    ensure_image(docker, &from, progress.as_ref(), None).await?;
    let name = format!("build_image_{}", def.service);
    start_build_container(docker, def, opts, &from, &name).await?;
    progress(BuildEvent::ContainerReady(name.clone()));
    let target = ContainerTarget::new(docker.clone(), name.clone());
    let forward = progress.clone();
    let runner = opts.runner.clone().on_event(Arc::new(move |e: &TaskEvent| {
        forward(BuildEvent::Task(e.clone()))
    }));
    let report = runner.apply(&target, &def.roles).await;
    target.close().await;
    let report = report?;
    stop_build_container(docker, def, &name).await;
    let orig = docker
        .inspect_image(&from)
        .await
        .map_err(Error::docker(format!("inspecting {from}")))?
        .config
        .unwrap_or_default();
    let mut changes = commit_changes(def, &orig);
    // The settings of the image, as a label: a re-run whose roles changed
    // nothing and whose settings are those of the last image keeps that
    // image (no new commit, same digest), so deploy-services sees no change.
    let settings = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(from.as_bytes());
        h.update(changes.join("\n").as_bytes());
        hex::encode(&h.finalize()[..12])
    };
    changes.push(format!("LABEL {SETTINGS_LABEL}={settings}"));
    let latest = format!("{repo}:latest");
    let keep = !opts.rebuild
        && report.changed().is_empty()
        && docker
            .inspect_image(&latest)
            .await
            .ok()
            .and_then(|i| i.config)
            .and_then(|c| c.labels)
            .and_then(|l| l.get(SETTINGS_LABEL).cloned())
            .is_some_and(|v| v == settings);
    let check = opts.runner.is_check_mode();
    if keep || check {
        let why = match (keep, check) {
            (true, true) => {
                format!("check mode: no task would change and the settings are those of {latest}")
            }
            (true, false) => {
                // Push again (cheap when the registry has it, and it may not
                // if the last run stopped after the commit).
                push(docker, &repo, "latest", registry).await?;
                format!("no task changed and the settings are those of {latest}: kept it")
            }
            _ => format!("check mode: would commit and push a new {latest}"),
        };
        progress(BuildEvent::Skipped(why));
        return Ok(Some(BuiltImage {
            latest: latest.clone(),
            timestamped: latest,
            report,
            new_image: !keep,
        }));
    }
    let stamp = commit_and_push(
        docker,
        def,
        &name,
        &repo,
        &changes.join("\n"),
        registry,
        progress.as_ref(),
    )
    .await?;
    Ok(Some(BuiltImage {
        latest,
        timestamped: format!("{repo}:{stamp}"),
        report,
        new_image: true,
    }))
}

/// Creates the build container `name` from `from` (again with
/// `opts.rebuild`) unless it exists, and starts it unless it runs.
async fn start_build_container(
    docker: &Docker,
    def: &ImageDefinition,
    opts: &BuildOptions,
    from: &str,
    name: &str,
) -> Result<()> {
    let existing = docker.inspect_container(name, None).await.ok();
    if existing.is_some() && opts.rebuild {
        docker
            .remove_container(
                name,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(Error::docker(format!("removing {name}")))?;
    }
    if existing.is_none() || opts.rebuild {
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name,
                    platform: None,
                }),
                build_container_config(def, opts, from),
            )
            .await
            .map_err(Error::docker(format!("creating {name}")))?;
    }
    let running = docker
        .inspect_container(name, None)
        .await
        .ok()
        .and_then(|c| c.state.and_then(|s| s.running))
        .unwrap_or(false);
    if !running {
        docker
            .start_container(name, None::<StartContainerOptions<String>>)
            .await
            .map_err(Error::docker(format!("starting {name}")))?;
    }
    Ok(())
}

/// The build container's configuration: the image's environment (and the
/// stage's proxy variables), ports, user, working directory and stop
/// signal; a sleeping shell as its process unless the image is standalone.
fn build_container_config(
    def: &ImageDefinition,
    opts: &BuildOptions,
    from: &str,
) -> Config<String> {
    let mut env: Vec<String> = def.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend(
        opts.proxy_env
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}")),
    );
    let mut exposed = HashMap::new();
    for p in &def.expose {
        let key = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        exposed.insert(key, HashMap::new());
    }
    Config {
        image: Some(from.to_string()),
        hostname: Some(def.service.clone()),
        env: Some(env),
        exposed_ports: if exposed.is_empty() {
            None
        } else {
            Some(exposed)
        },
        entrypoint: if def.standalone { None } else { Some(vec![]) },
        cmd: if def.standalone {
            None
        } else {
            Some(vec!["/bin/sh".into(), "-c".into(), SLEEP_COMMAND.into()])
        },
        working_dir: def.working_dir.clone(),
        stop_signal: def.stop_signal.clone(),
        user: def.user.clone(),
        host_config: Some(bollard::models::HostConfig {
            privileged: Some(def.privileged || def.standalone),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Stops the build container: the sleeping root process ends on INT; the
/// init of a standalone image gets the engine's normal stop.
async fn stop_build_container(docker: &Docker, def: &ImageDefinition, name: &str) {
    if def.standalone {
        let _ = docker.stop_container(name, None).await;
    } else {
        let _ = docker
            .kill_container(name, Some(KillContainerOptions { signal: "SIGINT" }))
            .await;
        let mut w = docker.wait_container(name, None::<WaitContainerOptions<String>>);
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while w.next().await.is_some() {}
        })
        .await;
        if waited.is_err() {
            let _ = docker.stop_container(name, None).await;
        }
    }
}

/// The Dockerfile instructions the commit applies: entrypoint and command
/// (the base image's unless the definition sets them; a standalone image
/// keeps its own), working directory, exposed ports, user, environment.
fn commit_changes(def: &ImageDefinition, orig: &bollard::models::ImageConfig) -> Vec<String> {
    let mut changes: Vec<String> = vec![];
    if !def.standalone {
        let ep = def
            .entrypoint
            .clone()
            .or(orig.entrypoint.clone())
            .unwrap_or_else(|| {
                vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "exec \"$@\"".into(),
                    "--".into(),
                ]
            });
        changes.push(format!(
            "ENTRYPOINT {}",
            serde_json::to_string(&ep).unwrap_or_default()
        ));
        let cmd = def.command.clone().or(orig.cmd.clone()).unwrap_or_default();
        changes.push(format!(
            "CMD {}",
            serde_json::to_string(&cmd).unwrap_or_default()
        ));
    } else {
        if let Some(ep) = &def.entrypoint {
            changes.push(format!(
                "ENTRYPOINT {}",
                serde_json::to_string(ep).unwrap_or_default()
            ));
        }
        if let Some(c) = &def.command {
            changes.push(format!(
                "CMD {}",
                serde_json::to_string(c).unwrap_or_default()
            ));
        }
    }
    if let Some(wd) = &def.working_dir {
        changes.push(format!("WORKDIR {}", if wd.is_empty() { "/" } else { wd }));
    }
    for p in &def.expose {
        changes.push(format!("EXPOSE {p}"));
    }
    if let Some(u) = &def.user {
        changes.push(format!("USER {u}"));
    }
    // the stop signal is part of the build container's configuration,
    // which the commit keeps (the engine refuses it as a change)
    for (k, v) in &def.env {
        changes.push(format!("ENV {k}={v}"));
    }
    changes
}

/// Commits the build container `name` as `<repo>:latest` with `changes`,
/// tags it with the time and pushes both tags. Returns the time tag.
async fn commit_and_push(
    docker: &Docker,
    def: &ImageDefinition,
    name: &str,
    repo: &str,
    changes: &str,
    registry: &Registry,
    progress: &(dyn Fn(BuildEvent) + Send + Sync),
) -> Result<String> {
    let latest = format!("{repo}:latest");
    docker
        .commit_container(
            CommitContainerOptions {
                container: name,
                repo,
                tag: "latest",
                comment: "built by hive",
                author: "hive",
                pause: false,
                changes: Some(changes),
            },
            Config::<String>::default(),
        )
        .await
        .map_err(Error::docker(format!("committing {name}")))?;
    progress(BuildEvent::Committed(latest.clone()));
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .map_err(|e| Error::Build {
            image: def.service.clone(),
            message: format!("formatting the time: {e}"),
        })?;
    docker
        .tag_image(
            &latest,
            Some(TagImageOptions {
                repo,
                tag: stamp.as_str(),
            }),
        )
        .await
        .map_err(Error::docker(format!("tagging {repo}:{stamp}")))?;
    for tag in ["latest", stamp.as_str()] {
        push(docker, repo, tag, registry).await?;
        progress(BuildEvent::Pushed(format!("{repo}:{tag}")));
    }
    Ok(stamp)
}

/// Copies `local` (an image of the mother machine's engine `docker`) into
/// the site registry as `<registry>/<name>` (`name` defaults to `local`'s
/// repository and tag without its registry part). Returns the pushed
/// reference.
pub async fn push_local_image(
    docker: &Docker,
    local: &str,
    name: Option<&str>,
    registry: &Registry,
) -> Result<String> {
    docker
        .inspect_image(local)
        .await
        .map_err(Error::docker(format!(
            "image {local} on the mother machine"
        )))?;
    let pushed = site_image_name(local, name, registry);
    let (repo, ntag) = split_ref(&pushed);
    docker
        .tag_image(
            local,
            Some(TagImageOptions {
                repo: repo.as_str(),
                tag: ntag.as_str(),
            }),
        )
        .await
        .map_err(Error::docker(format!("tagging {local} as {repo}:{ntag}")))?;
    push(docker, &repo, &ntag, registry).await?;
    Ok(pushed)
}

/// The name [`push_local_image`] gives the local image `local` in the site
/// registry: `name` (default: `local` without its registry host) under the
/// registry's address.
///
/// ```
/// use hive_image::{Registry, site_image_name};
///
/// let registry = Registry {
///     address: "p-hive3.example:5000".into(),
///     credentials: None,
/// };
/// assert_eq!(
///     site_image_name("hive-test/debian:bookworm", None, &registry),
///     "p-hive3.example:5000/hive-test/debian:bookworm"
/// );
/// assert_eq!(
///     site_image_name("localhost:5000/app", Some("tools/app:2"), &registry),
///     "p-hive3.example:5000/tools/app:2"
/// );
/// ```
pub fn site_image_name(local: &str, name: Option<&str>, registry: &Registry) -> String {
    let (lrepo, ltag) = split_ref(local);
    let default_name = {
        let first = lrepo.split('/').next().unwrap_or("");
        let base = if lrepo.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost")
        {
            lrepo[first.len() + 1..].to_string()
        } else {
            lrepo.clone()
        };
        format!("{base}:{ltag}")
    };
    let name = name.map(|n| n.to_string()).unwrap_or(default_name);
    let (nrepo, ntag) = split_ref(&name);
    format!("{}/{}:{ntag}", registry.address, nrepo)
}

/// Connects to the Docker engine at `unix_socket` and negotiates the API
/// version (the engines hive meets speak 1.41).
pub async fn connect(unix_socket: &str) -> Result<Docker> {
    let d = Docker::connect_with_unix(unix_socket, 120, bollard::API_DEFAULT_VERSION)
        .map_err(Error::docker(format!("connecting to {unix_socket}")))?;
    d.negotiate_version()
        .await
        .map_err(Error::docker("negotiating the API version"))
}
