//! Images of a stage: seeding the site registry from the mother machine,
//! build-images on the repository server, and initialize-services inside
//! running service containers — all with hive-image's role runner.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use hive_image::{
    BuildEvent, BuildOptions, BuiltImage, ContainerTarget, Credentials, ImageDefinition, Registry,
    RoleLoader, RunReport, Runner,
};

use crate::site::StageSite;
use crate::{Engines, Error};

fn image_error(e: hive_image::Error) -> Error {
    Error::Image(Box::new(e))
}

/// The site registry with the login setup-hosts created.
pub fn site_registry(site: &StageSite<'_>) -> Result<Registry, Error> {
    let ctx = site.swarm_stage()?;
    Ok(Registry {
        address: ctx.registry.clone(),
        credentials: ctx.registry_login.map(|l| Credentials {
            username: l.username,
            password: l.password,
        }),
    })
}

/// The mother machine's Docker engine.
async fn mother_engine() -> Result<bollard::Docker, Error> {
    let unreachable = |e: bollard::errors::Error| Error::Site {
        message: format!("cannot reach the mother machine's Docker engine: {e}"),
    };
    bollard::Docker::connect_with_local_defaults()
        .map_err(unreachable)?
        .negotiate_version()
        .await
        .map_err(unreachable)
}

/// Load `local` from the mother machine's engine into `docker` (the
/// repository server's engine) unless it already has the same image.
/// Returns whether it loaded.
async fn carry_image(
    mother: &bollard::Docker,
    docker: &bollard::Docker,
    local: &str,
    server: &str,
) -> Result<bool, Error> {
    let here = mother.inspect_image(local).await.map_err(|e| Error::Site {
        message: format!("image {local} is not in the mother machine's Docker engine: {e}"),
    })?;
    if let Ok(there) = docker.inspect_image(local).await {
        if there.id.is_some() && there.id == here.id {
            return Ok(false);
        }
    }
    let mut archive = Vec::new();
    let mut stream = mother.export_image(local);
    while let Some(chunk) = stream.next().await {
        archive.extend_from_slice(&chunk.map_err(|e| Error::Site {
            message: format!("cannot save image {local}: {e}"),
        })?);
    }
    let mut load = docker.import_image(
        bollard::image::ImportImageOptions { quiet: true },
        archive.into(),
        None,
    );
    while let Some(r) = load.next().await {
        r.map_err(|e| Error::Site {
            message: format!("cannot load image {local} on {server}: {e}"),
        })?;
    }
    Ok(true)
}

/// Copy `local`, an image of the mother machine's Docker engine, into the
/// site registry as `<registry>/<name>` (default: `local` without its
/// registry part), by loading it into the repository server's engine and
/// pushing from there (the repository server resolves and trusts the
/// registry). Returns the pushed reference.
pub async fn push_local_image(
    site: &StageSite<'_>,
    local: &str,
    name: Option<&str>,
    temp_dir: &std::path::Path,
) -> Result<String, Error> {
    let mother = mother_engine().await?;
    let repo = site.repository_server()?;
    let engines =
        Engines::connect(&site.context_dir(), std::slice::from_ref(&repo), temp_dir).await?;
    let docker = engines.hives()[0].docker.clone();
    carry_image(&mother, &docker, local, &repo).await?;
    let registry = site_registry(site)?;
    hive_image::push_local_image(&docker, local, name, &registry)
        .await
        .map_err(image_error)
}

/// The images to seed into the site registry before building
/// (`hive_seed_images`: local images of the mother machine, for sites
/// that cannot reach Docker Hub).
pub fn seed_images(site: &StageSite<'_>) -> Result<Vec<String>, Error> {
    let Ok(first) = site.first_server() else {
        return Ok(Vec::new());
    };
    Ok(string_list(site.var(&first, "hive_seed_images")?.as_ref()))
}

/// Receives build events with the name of the service being built.
pub type BuildProgress = Arc<dyn Fn(&str, BuildEvent) + Send + Sync>;

/// Options of [`build_images`] and [`initialize_services`].
#[derive(Debug, Clone, Default)]
pub struct ImageOptions {
    /// `-l`: only these services.
    pub limit: Vec<String>,
    /// `--rebuild`: start from a fresh build container.
    pub rebuild: bool,
    /// `-C`: report what the roles would change, change nothing.
    pub check: bool,
    /// Where forwarded sockets are made.
    pub temp_dir: PathBuf,
}

fn string_list(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The images the stage builds, from the `image_<service>` inventory hosts.
pub fn image_definitions(site: &StageSite<'_>) -> Result<Vec<ImageDefinition>, Error> {
    let services = site.service_definitions()?;
    let mut out = Vec::new();
    for (name, def) in &services {
        let Some(hive_swarm::ImageSource::Build(build)) = &def.image else {
            continue;
        };
        let json = serde_json::to_value(build.as_ref()).map_err(|e| Error::Site {
            message: format!("image of service {name}: {e}"),
        })?;
        let get = |k: &str| json.get(k).filter(|v| !v.is_null());
        out.push(ImageDefinition {
            service: name.clone(),
            from: build.from.clone(),
            roles: build.roles.clone(),
            standalone: build.standalone.unwrap_or(def.standalone),
            privileged: build.privileged.unwrap_or(false),
            env: build
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.to_docker_string()))
                .collect(),
            entrypoint: get("entrypoint").map(|v| string_list(Some(v))),
            command: get("command").map(|v| string_list(Some(v))),
            working_dir: build.working_dir.clone(),
            expose: get("expose")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().map(scalar).collect())
                .unwrap_or_default(),
            user: build.user.clone(),
            stop_signal: build.stop_signal.as_ref().map(|s| s.to_docker_string()),
            pull_on: build.pull_on.clone(),
        });
    }
    Ok(out)
}

/// The role runner with a host's `vars`: the project's `roles/`, and its
/// `lib/` of custom modules, which run through `ansible-playbook`.
fn runner_for(site: &StageSite<'_>, vars: hive_image::Vars, check: bool) -> Result<Runner, Error> {
    let root = site.project().root_dir();
    let mut runner = Runner::new(RoleLoader::new([root.join("roles")]))
        .check_mode(check)
        .vars(vars);
    let lib = root.join("lib");
    if lib.is_dir() {
        runner = runner.library(lib);
    }
    Ok(runner)
}

/// build-images: build, commit and push every image of the stage (or the
/// `-l` services) on the repository server's engine. `progress` receives
/// each build's events with the service name.
pub async fn build_images(
    site: &StageSite<'_>,
    options: &ImageOptions,
    progress: BuildProgress,
) -> Result<Vec<(String, Option<BuiltImage>)>, Error> {
    let mut images = image_definitions(site)?;
    for name in &options.limit {
        if !images.iter().any(|i| &i.service == name) {
            return Err(Error::Site {
                message: format!(
                    "-l {name}: no service of stage {} has an image to build; images: {}",
                    site.stage().name,
                    images
                        .iter()
                        .map(|i| i.service.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    if !options.limit.is_empty() {
        images.retain(|i| options.limit.contains(&i.service));
    }
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let repo = site.repository_server()?;
    let engines = Engines::connect(&site.context_dir(), &[repo], &options.temp_dir).await?;
    let docker = engines.hives()[0].docker.clone();
    let registry = site_registry(site)?;
    let mut tag_mapping: HashMap<String, String> =
        site.swarm_stage()?.tag_mapping.0.into_iter().collect();
    let seeds = seed_images(site)?;
    if !seeds.is_empty() && !options.check {
        let mother = mother_engine().await?;
        let repo = site.repository_server()?;
        for local in &seeds {
            let loaded = carry_image(&mother, &docker, local, &repo).await?;
            let pushed = hive_image::push_local_image(&docker, local, None, &registry)
                .await
                .map_err(image_error)?;
            progress(
                "",
                BuildEvent::Pushed(format!(
                    "{pushed} (seeded from the mother machine{})",
                    if loaded { "" } else { ", unchanged" }
                )),
            );
            tag_mapping.entry(local.clone()).or_insert(pushed);
        }
    }
    if options.check {
        // What the seeding of a run would map the local images to.
        for local in &seeds {
            tag_mapping
                .entry(local.clone())
                .or_insert_with(|| hive_image::site_image_name(local, None, &registry));
        }
    }
    let mut runs = Vec::new();
    for image in &images {
        let opts = BuildOptions {
            stage: site.stage().name.as_str().to_string(),
            rebuild: options.rebuild,
            tag_mapping: tag_mapping.clone(),
            proxy_env: Vec::new(),
            runner: runner_for(
                site,
                site.runner_vars(&format!("image_{}", image.service))?,
                options.check,
            )?,
        };
        let service = image.service.clone();
        let p = progress.clone();
        let (docker, registry) = (&docker, &registry);
        runs.push(async move {
            let built = hive_image::build_image(
                docker,
                image,
                registry,
                &opts,
                Arc::new(move |e| p(&service, e)),
            )
            .await
            .map_err(image_error)?;
            Ok::<_, Error>((image.service.clone(), built))
        });
    }
    // Builds wait on package mirrors more than on the engine: a few at once.
    futures::stream::iter(runs)
        .buffered(CONCURRENT_BUILDS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// How many images build-images builds at once.
const CONCURRENT_BUILDS: usize = 3;

/// How long initialize-services waits for a service's task to run (one
/// restarted with its engine runs again within seconds).
const TASK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// initialize-services: apply each service's `initialize_roles` inside one
/// of its running task containers.
pub async fn initialize_services(
    site: &StageSite<'_>,
    options: &ImageOptions,
) -> Result<Vec<(String, RunReport)>, Error> {
    let services = site.service_definitions()?;
    let mut selected: Vec<(&String, &hive_swarm::ServiceDefinition)> = services
        .iter()
        .filter(|(_, d)| !d.initialize_roles.is_empty())
        .collect();
    if !options.limit.is_empty() {
        selected.retain(|(n, _)| options.limit.contains(n));
    }
    if selected.is_empty() {
        return Ok(Vec::new());
    }
    let hives: Vec<String> = site
        .project()
        .servers_of(site.stage().name)
        .filter(|s| s.role.is_hive())
        .map(|s| s.name.clone())
        .collect();
    let engines = Engines::connect(&site.context_dir(), &hives, &options.temp_dir).await?;
    let mut out = Vec::new();
    for (name, def) in selected {
        let wait = if options.check {
            std::time::Duration::ZERO
        } else {
            TASK_WAIT
        };
        let task = hive_swarm::wait_running_task(engines.hives(), name, wait)
            .await
            .map_err(|e| Error::Swarm(Box::new(e)))?
            .ok_or_else(|| Error::Site {
                message: format!(
                    "service {name} has no running task to initialize (waited {} s); run `hive deploy-services` and check `docker service ps {name}`",
                    wait.as_secs()
                ),
            })?;
        let hive = engines
            .hives()
            .iter()
            .find(|h| h.name == task.hive)
            .ok_or_else(|| Error::Site {
                message: format!("service {name} runs on {}, which is not a hive", task.hive),
            })?;
        let target = ContainerTarget::new(hive.docker.clone(), task.container_id.clone())
            .docker_host(engines.docker_host(&hive.name));
        // `delegate_to: <hive>` runs on that hive, over SSH.
        let mut runner = runner_for(site, site.runner_vars_with_hostvars(name)?, options.check)?;
        for h in engines.hives() {
            let session = engines
                .pool()
                .session(&h.name)
                .await
                .map_err(Error::provider)?;
            runner = runner.delegate(
                h.name.clone(),
                Arc::new(crate::server_target::ServerTarget::new(session)),
            );
        }
        let report = runner
            .apply(&target, &def.initialize_roles)
            .await
            .map_err(image_error)?;
        target.close().await;
        out.push((name.clone(), report));
    }
    Ok(out)
}
