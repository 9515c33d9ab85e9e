//! The setup-hosts phase on a loaded project: its servers reached through
//! the stage's SSH sessions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use hive_provider::SshPool;

use crate::Error;
use crate::setup_hosts::{
    AddonRunner, SetupHosts, SetupHostsError, SetupHostsParams, SetupProgress, SetupReport,
    StepTag, Transport,
};
use crate::site::StageSite;

/// The `addon` step: the project's `roles/addon`, then `roles/addon2`
/// when present, applied to a server with hive-image's role runner.
struct RoleAddon {
    pool: Arc<SshPool>,
    roles_dir: PathBuf,
    vars: std::collections::HashMap<String, hive_image::Vars>,
}

#[async_trait]
impl AddonRunner for RoleAddon {
    async fn apply(&self, host: &str, check: bool) -> crate::setup_hosts::Result<Vec<String>> {
        let unreachable = |reason: String| SetupHostsError::Unreachable {
            host: host.to_string(),
            reason,
        };
        let session = self
            .pool
            .session(host)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let target = crate::server_target::ServerTarget::new(session);
        let mut roles = vec!["addon".to_string()];
        if self.roles_dir.join("addon2").is_dir() {
            roles.push("addon2".to_string());
        }
        let runner = hive_image::Runner::new(hive_image::RoleLoader::new([self.roles_dir.clone()]))
            .check_mode(check)
            .vars(self.vars.get(host).cloned().unwrap_or_default());
        let report = runner
            .apply(&target, &roles)
            .await
            .map_err(|e| SetupHostsError::Remote {
                host: host.to_string(),
                what: "roles/addon".into(),
                status: 1,
                stderr: e.to_string(),
            })?;
        Ok(report
            .changed()
            .iter()
            .map(|e| format!("{}: {}", e.role, e.task))
            .collect())
    }
}

pub use crate::engines::{ForwardedEngines, stage_pool};

/// `phase` with its connections following sshd when the base step moves
/// it to `hive_sshd_port`: on each such server, `pool` connects to the new
/// port (accepting only the host key pinned for the old one, and pinning
/// it as `[IP]:PORT`), sets the server's `Port` in the ssh_config the pool
/// was read from (atomically) and uses the new session from then on; the
/// OpenSSH-forwarded Docker sockets read the same ssh_config and
/// known_hosts. Nothing changes on a server whose ssh_config already has
/// the port.
///
/// ```no_run
/// # async fn f(params: hive_phases::setup_hosts::SetupHostsParams) -> Result<(), hive_phases::Error> {
/// use hive_phases::setup::{follow_sshd_port, stage_pool};
/// let pool = stage_pool(".hive/private".as_ref())?;
/// let phase = follow_sshd_port(hive_phases::setup_hosts::SetupHosts::new(params), pool);
/// # Ok(()) }
/// ```
pub fn follow_sshd_port(phase: SetupHosts, pool: Arc<SshPool>) -> SetupHosts {
    phase.follow_sshd_port(move |host: String, port: u16| {
        let pool = pool.clone();
        async move {
            pool.move_port(&host, port)
                .await
                .map_err(|e| SetupHostsError::Unreachable {
                    host,
                    reason: format!("sshd moved to port {port}, but: {e}"),
                })
        }
    })
}

/// setup-hosts for `params`, wired to the stage's servers as `hive
/// setup-hosts` wires it: one SSH pool from `<context_dir>/ssh_config` for
/// the servers' shells and their forwarded Docker engines (sockets under
/// `temp_dir`), following sshd when the base step moves it. Returns the
/// phase and the pool (for the caller's own hooks).
pub fn connected_phase(
    params: SetupHostsParams,
    context_dir: &Path,
    temp_dir: &Path,
) -> Result<(SetupHosts, Arc<SshPool>), Error> {
    let pool = stage_pool(context_dir)?;
    let engines = ForwardedEngines::with_pool(context_dir, temp_dir, pool.clone())?;
    let servers: Vec<Arc<dyn Transport>> = params
        .servers
        .iter()
        .map(|s| Arc::new(SshPool::server(&pool, &s.name)) as Arc<dyn Transport>)
        .collect();
    let phase = follow_sshd_port(SetupHosts::new(params), pool.clone())
        .transports(servers)
        .engines(Arc::new(engines));
    Ok((phase, pool))
}

/// Options of [`setup_hosts`].
#[derive(Debug, Clone, Default)]
pub struct SetupOptions {
    /// `-T`: only these steps (all when empty).
    pub tags: Vec<StepTag>,
    /// `-l`: only these servers (all when empty).
    pub limit: Vec<String>,
    /// `-C`: report what would change, change nothing.
    pub check: bool,
    /// Directory for temporary files (the registry image archive, the
    /// forwarded sockets of the hives' Docker engines).
    pub temp_dir: PathBuf,
}

/// Save `image` from the mother machine's Docker engine to `path` (a
/// `docker save` archive), when the engine has it; returns whether it did.
async fn save_local_image(image: &str, path: &Path) -> Result<bool, Error> {
    let Ok(docker) = bollard::Docker::connect_with_local_defaults() else {
        return Ok(false);
    };
    let Ok(docker) = docker.negotiate_version().await else {
        return Ok(false);
    };
    if docker.inspect_image(image).await.is_err() {
        return Ok(false);
    }
    let mut out = Vec::new();
    let mut stream = docker.export_image(image);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::Site {
            message: format!("cannot save image {image} from the local Docker engine: {e}"),
        })?;
        out.extend_from_slice(&chunk);
    }
    hive_provider::write_file_atomic(path, &out, 0o644).map_err(|e| Error::io("write", path, e))?;
    Ok(true)
}

/// setup-hosts on the stage of `site`.
///
/// When the mother machine's Docker engine has the registry image (sites
/// without access to Docker Hub build it locally), it is carried to the
/// repository server; otherwise the repository server pulls it.
pub async fn setup_hosts(
    site: &StageSite<'_>,
    options: &SetupOptions,
) -> Result<SetupReport, Error> {
    setup_hosts_with_progress(site, options, None).await
}

/// [`setup_hosts`], reporting each step's start and end per server to
/// `progress`.
pub async fn setup_hosts_with_progress(
    site: &StageSite<'_>,
    options: &SetupOptions,
    progress: Option<SetupProgress>,
) -> Result<SetupReport, Error> {
    let mut params = site.setup_hosts_params()?;
    if params.registry_image_archive.is_none() && !options.check {
        let archive = options.temp_dir.join(format!(
            "hive-registry-image-{}.tar",
            params.registry_image.replace(['/', ':'], "_")
        ));
        if save_local_image(&params.registry_image, &archive).await? {
            params.registry_image_archive = Some(archive);
        }
    }
    let (phase, pool) = connected_phase(params, &site.context_dir(), &options.temp_dir)?;
    let mut phase = phase.check_mode(options.check);
    if !options.tags.is_empty() {
        phase = phase.tags(options.tags.iter().copied());
    }
    if !options.limit.is_empty() {
        phase = phase.limit(options.limit.iter().cloned());
    }
    if let Some(p) = progress {
        phase = phase.progress(p);
    }
    if options.tags.is_empty() || options.tags.contains(&StepTag::Drbd) {
        if let Some(drbd) = crate::volumes::drbd_host_setup(site)? {
            phase = phase.drbd(drbd);
        }
    }
    let roles_dir = site.project().root_dir().join("roles");
    if roles_dir.join("addon").is_dir() {
        let mut vars = std::collections::HashMap::new();
        for s in site.project().servers_of(site.stage().name) {
            vars.insert(s.name.clone(), site.runner_vars(&s.name)?);
        }
        phase = phase.addon(Arc::new(RoleAddon {
            pool: pool.clone(),
            roles_dir,
            vars,
        }));
    }
    phase
        .run()
        .await
        .map_err(|e| Error::SetupHosts(Box::new(e)))
}

/// `hive registry gc`: run the registry's garbage collector on the
/// repository server of the stage and return its output.
pub async fn registry_gc(site: &StageSite<'_>) -> Result<String, Error> {
    let repository = site.repository_server()?;
    let pool = stage_pool(&site.context_dir())?;
    let server = SshPool::server(&pool, repository);
    crate::setup_hosts::registry_garbage_collect(&server)
        .await
        .map_err(|e| Error::SetupHosts(Box::new(e)))
}
