//! The phase's runner: steps in order, servers in parallel, a report per
//! server and step.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::error::{Result, SetupHostsError};
use super::item::{Item, converge};
use super::os::{OsFamily, detect_os};
use super::params::{Server, ServerRole, SetupHostsParams};
use super::pki::{CertPair, SitePki};
use super::registry::registry_credentials;
use super::report::{HostReport, SetupReport, StepOutcome};
use super::shell::Transport;
use super::steps::{self, Inputs, StepTag};

/// The setup-hosts phase, configured with a consuming builder.
///
/// ```no_run
/// # async fn demo(params: hive_setup::SetupHostsParams,
/// #   pool: std::sync::Arc<hive_provider::SshPool>) -> Result<(), hive_setup::SetupHostsError> {
/// use std::sync::Arc;
/// use hive_provider::{SshPool, Transport};
/// use hive_setup::{SetupHosts, StepTag};
/// let servers: Vec<Arc<dyn Transport>> = pool
///     .hosts()
///     .iter()
///     .map(|h| Arc::new(SshPool::server(&pool, h)) as Arc<dyn Transport>)
///     .collect();
/// let report = SetupHosts::new(params)
///     .transports(servers)
///     .tags([StepTag::Docker])   // -T docker
///     .limit(["p-hive1.pdns"])   // -l p-hive1.pdns
///     .check_mode(true)          // -C
///     .run()
///     .await?;
/// println!("{report}");
/// # Ok(()) }
/// ```
pub struct SetupHosts {
    pub(crate) params: SetupHostsParams,
    pub(crate) transports: HashMap<String, Arc<dyn Transport>>,
    pub(crate) tags: Vec<StepTag>,
    pub(crate) limit: Option<Vec<String>>,
    pub(crate) check: bool,
    pub(crate) addon: Option<Arc<dyn AddonRunner>>,
    pub(crate) engines: Option<Arc<dyn EngineConnector>>,
    pub(crate) progress: Option<SetupProgress>,
    pub(crate) drbd: Option<super::drbd::DrbdHostSetup>,
    pub(crate) sshd_follower: Option<SshdFollower>,
}

/// Follows a server's sshd to the port the base step gave it: called with
/// the server's name and `hive_sshd_port`; returns whether it changed
/// something (see [`SetupHosts::follow_sshd_port`]).
type SshdFollower =
    Arc<dyn Fn(String, u16) -> futures::future::BoxFuture<'static, Result<bool>> + Send + Sync>;

/// Progress of a setup-hosts run, reported as it goes (for a display).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupEvent {
    /// A step starts on these servers.
    StepStarted {
        /// The step.
        step: StepTag,
        /// The servers it runs on.
        hosts: Vec<String>,
    },
    /// A step waits on a server, e.g. for the package manager's locks held
    /// by a command of an interrupted run.
    Waiting {
        /// The step.
        step: StepTag,
        /// The server.
        host: String,
        /// What it waits for.
        message: String,
    },
    /// A step ended on a server.
    StepDone {
        /// The step.
        step: StepTag,
        /// The server.
        host: String,
        /// How many things differed (and were changed unless in check mode).
        changes: usize,
        /// Why it failed there, if it did.
        failed: Option<String>,
    },
}

/// Receives the [`SetupEvent`]s of a run.
pub type SetupProgress = Arc<dyn Fn(&SetupEvent) + Send + Sync>;

/// Applies the project's `roles/addon` to one server (the `addon` step);
/// implemented with the role runner of hive-image by the caller.
#[async_trait::async_trait]
pub trait AddonRunner: Send + Sync {
    /// Apply the addon role(s) to `host` (in check mode when `check`) and
    /// return the tasks that changed (or would change).
    async fn apply(&self, host: &str, check: bool) -> Result<Vec<String>>;
}

/// Reaches the Docker engine of a server (the `swarm` step talks to the
/// hives' engines with hive-swarm's cluster API); implemented by the caller,
/// e.g. with SSH-forwarded sockets.
#[async_trait::async_trait]
pub trait EngineConnector: Send + Sync {
    /// The engine of `host` (a server's name), connected, or `None` when
    /// the server has no Docker engine (yet: a check run on a fresh server,
    /// where the `docker` step would install it). Called once per server and
    /// run, possibly for several servers at once.
    async fn engine(&self, host: &str) -> Result<Option<hive_swarm::Engine>>;
}

pub(crate) struct HostRun {
    pub(crate) server: Server,
    pub(crate) os: Option<OsFamily>,
    pub(crate) report: HostReport,
    pub(crate) acting: bool,
}

/// The mother machine's secrets and certificates for a run.
struct Local {
    ca_pem: String,
    certs: HashMap<String, CertPair>,
    registry_password: Option<String>,
    htpasswd: Option<String>,
    registry_archive: Option<Vec<u8>>,
    changes: Vec<String>,
}

impl SetupHosts {
    /// The phase for `params`, all steps, all servers, applying changes.
    pub fn new(params: SetupHostsParams) -> Self {
        SetupHosts {
            params,
            transports: HashMap::new(),
            tags: StepTag::ALL.to_vec(),
            limit: None,
            check: false,
            addon: None,
            engines: None,
            progress: None,
            drbd: None,
            sshd_follower: None,
        }
    }

    /// The stage's DRBD settings for the `drbd` step (without them, or
    /// without DRBD volumes, the step notes that there is nothing to do).
    pub fn drbd(mut self, setup: super::drbd::DrbdHostSetup) -> Self {
        self.drbd = Some(setup);
        self
    }

    /// Report the run's progress to `progress` as it goes.
    pub fn progress(mut self, progress: SetupProgress) -> Self {
        self.progress = Some(progress);
        self
    }

    pub(crate) fn emit(&self, event: SetupEvent) {
        if let Some(p) = &self.progress {
            p(&event);
        }
    }

    /// Add how a server is reached (matched by [`Transport::host`] against
    /// the servers' names). The steps run their scripts through it with
    /// [`run_script`](crate::run_script).
    pub fn transport(mut self, server: Arc<dyn Transport>) -> Self {
        self.transports.insert(server.host().to_string(), server);
        self
    }

    /// Add how several servers are reached.
    pub fn transports(mut self, servers: impl IntoIterator<Item = Arc<dyn Transport>>) -> Self {
        for s in servers {
            self = self.transport(s);
        }
        self
    }

    /// Run only these steps (`-T`), still in the phase's order.
    pub fn tags(mut self, tags: impl IntoIterator<Item = StepTag>) -> Self {
        let want: Vec<StepTag> = tags.into_iter().collect();
        self.tags = StepTag::ALL
            .into_iter()
            .filter(|t| want.contains(t))
            .collect();
        self
    }

    /// Act only on these servers (`-l`); the others still appear in
    /// `/etc/hosts`, the firewall and certificates.
    pub fn limit<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.limit = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Only report what would change (`-C`).
    pub fn check_mode(mut self, check: bool) -> Self {
        self.check = check;
        self
    }

    /// The runner of the `addon` step (without one, the step notes that
    /// the project has no addon role).
    pub fn addon(mut self, runner: Arc<dyn AddonRunner>) -> Self {
        self.addon = Some(runner);
        self
    }

    /// How later steps keep reaching a server whose sshd the base step
    /// moved to `hive_sshd_port`: after the base step succeeded on a server
    /// (not in check mode), `follow(server, port)` runs before the next
    /// step; it updates whatever the connections use (the stage's
    /// ssh_config, known_hosts, the SSH pool) and returns whether it
    /// changed something (reported as a change of the base step). An error
    /// fails the server's base step.
    pub fn follow_sshd_port<F, Fut>(mut self, follow: F) -> Self
    where
        F: Fn(String, u16) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<bool>> + Send + 'static,
    {
        self.sshd_follower = Some(Arc::new(move |host, port| Box::pin(follow(host, port))));
        self
    }

    /// How the `swarm` step reaches the hives' Docker engines (without it,
    /// the step fails on every hive, saying so).
    pub fn engines(mut self, connector: Arc<dyn EngineConnector>) -> Self {
        self.engines = Some(connector);
        self
    }

    fn prepare_local(&self) -> Result<Local> {
        let p = &self.params;
        let mut changes = Vec::new();
        let ca_exists = p.context_dir.join("ca/cacert.pem").exists();
        // In check mode on a fresh stage, certificates are made in a
        // scratch directory so that nothing is written.
        let scratch;
        let pki_dir: &Path = if self.check && !ca_exists {
            scratch = std::env::temp_dir().join(format!("hive-setup-check-{}", std::process::id()));
            &scratch
        } else {
            &p.context_dir
        };
        let mut pki = SitePki::open_or_create(pki_dir, &p.hive_name)?;
        if self.check {
            pki = pki.read_only();
        }
        if pki.created() {
            changes.push(format!(
                "CA {}",
                p.context_dir.join("ca/cacert.pem").display()
            ));
        }
        let mut certs = HashMap::new();
        for s in &p.servers {
            let (pair, issued) = pki.server_cert(&s.name, &steps::cert_names(s))?;
            if issued && !pki.created() {
                changes.push(format!("certificate of {}", s.name));
            }
            certs.insert(s.name.clone(), pair);
        }
        let (_, issued) = pki.client_cert()?;
        if issued && !pki.created() {
            changes.push("client certificate of the mother machine".into());
        }
        let ca_pem = pki.ca_cert_pem().to_string();
        if pki_dir != p.context_dir.as_path() {
            let _ = std::fs::remove_dir_all(pki_dir);
        }
        let wants_registry = self.tags.contains(&StepTag::Registry);
        let (registry_password, htpasswd) = if p.repository().is_some() && wants_registry {
            let (pw, ht, created) =
                registry_credentials(&p.context_dir, &p.registry_user, !self.check)?;
            if created {
                changes.push("registry password and htpasswd".into());
            }
            (Some(pw), Some(ht))
        } else {
            (None, None)
        };
        let registry_archive = match (&p.registry_image_archive, wants_registry) {
            (Some(path), true) => {
                Some(std::fs::read(path).map_err(|e| SetupHostsError::io("read", path, e))?)
            }
            _ => None,
        };
        Ok(Local {
            ca_pem,
            certs,
            registry_password,
            htpasswd,
            registry_archive,
            changes,
        })
    }

    /// Run the phase. Fails only on what stops every server (bad
    /// parameters, the PKI); a server that fails is reported in
    /// [`SetupReport::failed`] while the others finish.
    pub async fn run(self) -> Result<SetupReport> {
        self.check_servers()?;
        let local = self.prepare_local()?;
        let mut hosts: Vec<HostRun> = self
            .params
            .servers
            .iter()
            .map(|s| HostRun {
                server: s.clone(),
                os: None,
                acting: self.acting(s),
                report: HostReport {
                    host: s.name.clone(),
                    os: None,
                    steps: Vec::new(),
                    failure: None,
                },
            })
            .collect();
        self.detect_os_families(&mut hosts).await;
        let mut step_times = Vec::new();
        for &tag in &self.tags {
            let start = Instant::now();
            let running = ready(&hosts);
            self.emit(SetupEvent::StepStarted {
                step: tag,
                hosts: running
                    .iter()
                    .map(|&i| hosts[i].server.name.clone())
                    .collect(),
            });
            match tag {
                StepTag::Swarm => self.run_swarm(&mut hosts).await,
                StepTag::Registry => self.run_registry(&mut hosts, &local).await,
                StepTag::Drbd => self.run_drbd(&mut hosts).await,
                StepTag::Addon => self.run_addon(&mut hosts).await,
                _ => self.run_items(tag, &mut hosts, &local).await,
            }
            step_times.push((tag, start.elapsed()));
            self.emit_step_done(tag, &hosts, &running);
        }
        Ok(SetupReport {
            check_mode: self.check,
            local_changes: local.changes,
            hosts: hosts
                .into_iter()
                .filter(|h| h.acting)
                .map(|h| h.report)
                .collect(),
            step_times,
        })
    }

    /// Checks the parameters, that `limit` names known servers and that
    /// every server acted on has a connection.
    fn check_servers(&self) -> Result<()> {
        let p = &self.params;
        p.validate()?;
        let known = || {
            p.servers
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(limit) = &self.limit {
            for n in limit {
                if !p.servers.iter().any(|s| &s.name == n || s.hostname() == n) {
                    return Err(SetupHostsError::UnknownLimit {
                        name: n.clone(),
                        known: known(),
                    });
                }
            }
        }
        for s in p.servers.iter().filter(|s| self.acting(s)) {
            if !self.transports.contains_key(&s.name) {
                return Err(SetupHostsError::Params {
                    key: "servers".into(),
                    reason: format!("no connection was given for server {}", s.name),
                });
            }
        }
        Ok(())
    }

    /// Whether the run acts on server `s` (all, or those `limit` names).
    fn acting(&self, s: &Server) -> bool {
        self.limit
            .as_ref()
            .is_none_or(|l| l.iter().any(|n| n == &s.name || n == s.hostname()))
    }

    /// Facts: the OS family of every server acted on (and of the first
    /// hive, which the swarm step may use even when limited out); a server
    /// acted on that cannot be reached fails its `connect`.
    async fn detect_os_families(&self, hosts: &mut [HostRun]) {
        let first_hive = self.params.first_hive().map(|s| s.name.clone());
        let detect = join_all(hosts.iter().map(|h| {
            let needed = h.acting || Some(&h.server.name) == first_hive.as_ref();
            let server = self.transports.get(&h.server.name).cloned();
            async move {
                match (needed, server) {
                    (true, Some(server)) => Some(detect_os(server.as_ref()).await),
                    _ => None,
                }
            }
        }))
        .await;
        for (h, r) in hosts.iter_mut().zip(detect) {
            match r {
                Some(Ok(os)) => {
                    h.os = Some(os);
                    h.report.os = Some(os);
                }
                Some(Err(e)) if h.acting => h.report.failure = Some(("connect".into(), e)),
                _ => {}
            }
        }
    }

    /// Reports the end of step `tag` on each server it was `running` on
    /// that it changed, or failed, or ran on.
    fn emit_step_done(&self, tag: StepTag, hosts: &[HostRun], running: &[usize]) {
        for &i in running {
            let r = &hosts[i].report;
            let failed = match &r.failure {
                Some((step, e)) if step == tag.name() => Some(e.to_string()),
                _ => None,
            };
            let changes = match r.steps.last() {
                Some(s) if s.step == tag => s.changed.len(),
                _ if failed.is_some() => 0,
                // The step had nothing to do on this server.
                _ => continue,
            };
            self.emit(SetupEvent::StepDone {
                step: tag,
                host: r.host.clone(),
                changes,
                failed,
            });
        }
    }

    /// The DRBD step on the servers ready for it.
    async fn run_drbd(&self, hosts: &mut [HostRun]) {
        let tag = StepTag::Drbd;
        let targets = ready(hosts);
        let servers: Vec<_> = targets
            .iter()
            .map(|&i| (hosts[i].server.clone(), hosts[i].os))
            .collect();
        let selected = self.tags.len() < StepTag::ALL.len();
        let results = super::drbd::run_step(
            self.drbd.as_ref(),
            &self.transports,
            &servers,
            self.check,
            selected,
        )
        .await;
        for (i, r) in targets.into_iter().zip(results) {
            match r {
                Ok(outcome) => hosts[i].report.steps.push(outcome),
                Err(e) => hosts[i].report.failure = Some((tag.to_string(), e)),
            }
        }
    }

    /// The addon step: the project's `roles/addon` on the servers ready
    /// for it (noted when the project has none).
    async fn run_addon(&self, hosts: &mut [HostRun]) {
        let tag = StepTag::Addon;
        let check = self.check;
        let runs = hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.acting && h.report.failure.is_none())
            .map(|(i, h)| {
                let addon = self.addon.clone();
                let name = h.server.name.clone();
                async move {
                    let started = Instant::now();
                    let result = match addon {
                        Some(a) => a.apply(&name, check).await.map(Some),
                        None => Ok(None),
                    };
                    (i, result, started.elapsed())
                }
            });
        for (i, result, elapsed) in join_all(runs).await {
            let h = &mut hosts[i];
            match result {
                Ok(changed) => h.report.steps.push(StepOutcome {
                    step: tag,
                    notes: if changed.is_none() {
                        vec!["the project has no roles/addon".into()]
                    } else {
                        Vec::new()
                    },
                    changed: changed.unwrap_or_default(),
                    elapsed,
                }),
                Err(e) => h.report.failure = Some((tag.to_string(), e)),
            }
        }
    }

    /// A step of items converged on the servers ready for it; after the
    /// base step, connections follow sshd to its port.
    async fn run_items(&self, tag: StepTag, hosts: &mut [HostRun], local: &Local) {
        let targets = ready(hosts);
        let results = join_all(targets.iter().map(|&i| {
            let h = &hosts[i];
            let inputs = self.inputs(local, &h.server);
            self.item_step(tag, h, inputs)
        }))
        .await;
        for (i, r) in targets.into_iter().zip(results) {
            record(&mut hosts[i], tag, r);
        }
        if let (StepTag::Base, false, Some(follow)) = (tag, self.check, &self.sshd_follower) {
            self.follow_sshd(follow, hosts).await;
        }
    }

    /// Run `follow` for every server the base step succeeded on.
    async fn follow_sshd(&self, follow: &SshdFollower, hosts: &mut [HostRun]) {
        let port = self.params.sshd_port;
        let ok = ready(hosts);
        let results = join_all(ok.iter().map(|&i| {
            let start = Instant::now();
            let fut = follow(hosts[i].server.name.clone(), port);
            async move { (fut.await, start.elapsed()) }
        }))
        .await;
        for (i, (r, elapsed)) in ok.into_iter().zip(results) {
            let r = r.map(|changed| {
                if changed {
                    vec![format!("connections follow sshd to port {port}")]
                } else {
                    Vec::new()
                }
            });
            record(&mut hosts[i], StepTag::Base, (r, elapsed));
        }
    }

    fn inputs<'a>(&'a self, local: &'a Local, server: &Server) -> Inputs<'a> {
        Inputs {
            ca_pem: &local.ca_pem,
            server_cert: local.certs.get(&server.name),
            registry_password: local.registry_password.as_deref(),
            htpasswd: local.htpasswd.as_deref(),
            registry_archive: local.registry_archive.as_deref(),
        }
    }

    async fn item_step(
        &self,
        tag: StepTag,
        h: &HostRun,
        inputs: Inputs<'_>,
    ) -> (Result<Vec<String>>, Duration) {
        let start = Instant::now();
        let p = &self.params;
        let Some(os) = h.os else {
            return (Ok(Vec::new()), start.elapsed());
        };
        // The steps that install packages wait for a package manager still
        // running on the server (e.g. left by a killed run).
        if matches!(tag, StepTag::Base | StepTag::Docker) && !self.check {
            if let Some(server) = self.transports.get(&h.server.name) {
                let host = h.server.name.clone();
                let waited = super::locks::wait_for_package_locks(
                    server.as_ref(),
                    super::locks::LOCK_WAIT,
                    |message| {
                        self.emit(SetupEvent::Waiting {
                            step: tag,
                            host: host.clone(),
                            message: message.to_string(),
                        })
                    },
                )
                .await;
                if let Err(e) = waited {
                    return (Err(e), start.elapsed());
                }
            }
        }
        let items: Vec<Item> = match tag {
            StepTag::Base => steps::base_items(p, &h.server, os),
            StepTag::Pki => steps::pki_items(&inputs, os),
            StepTag::Docker => steps::docker_items(p, &inputs, os),
            StepTag::Firewall => steps::firewall_items(p),
            StepTag::Logs => steps::logs_items(p, &h.server, os),
            StepTag::Backup => super::backup::backup_items(p, &h.server, os),
            _ => Vec::new(),
        };
        let r = self.converge_on(&h.server.name, tag, &items).await;
        (r, start.elapsed())
    }

    async fn converge_on(&self, host: &str, tag: StepTag, items: &[Item]) -> Result<Vec<String>> {
        let server = self
            .transports
            .get(host)
            .ok_or_else(|| SetupHostsError::Params {
                key: "servers".into(),
                reason: format!("no connection was given for server {host}"),
            })?;
        converge(server.as_ref(), tag.name(), items, self.check).await
    }

    async fn run_registry(&self, hosts: &mut [HostRun], local: &Local) {
        let tag = StepTag::Registry;
        let p = &self.params;
        let repo = hosts
            .iter()
            .position(|h| h.server.role == ServerRole::Repository);
        let mut registry_ok = true;
        if let Some(i) = repo {
            if hosts[i].report.failure.is_some() || !hosts[i].acting {
                registry_ok = hosts[i].report.failure.is_none();
            } else {
                let start = Instant::now();
                let inputs = self.inputs(local, &hosts[i].server);
                let items = steps::registry_server_items(p, &inputs);
                let r = self.converge_on(&hosts[i].server.name, tag, &items).await;
                registry_ok = r.is_ok();
                record(&mut hosts[i], tag, (r, start.elapsed()));
            }
        }
        let targets = ready(hosts);
        let results = join_all(targets.iter().map(|&i| {
            let h = &hosts[i];
            let inputs = self.inputs(local, &h.server);
            async move {
                let start = Instant::now();
                if !registry_ok && !self.check {
                    return (
                        Err(SetupHostsError::Skipped {
                            host: h.server.name.clone(),
                            step: "registry on the repository server".into(),
                        }),
                        start.elapsed(),
                    );
                }
                let items = steps::registry_login_items(p, &inputs);
                (
                    self.converge_on(&h.server.name, tag, &items).await,
                    start.elapsed(),
                )
            }
        }))
        .await;
        for (i, r) in targets.into_iter().zip(results) {
            record(&mut hosts[i], tag, r);
        }
    }
}

/// The servers acted on that have not failed (their indices in `hosts`).
fn ready(hosts: &[HostRun]) -> Vec<usize> {
    (0..hosts.len())
        .filter(|&i| hosts[i].acting && hosts[i].report.failure.is_none())
        .collect()
}

pub(crate) fn record(h: &mut HostRun, tag: StepTag, (r, elapsed): (Result<Vec<String>>, Duration)) {
    match r {
        // A step that ran in two passes on a server (the registry on the
        // repository server) is reported once.
        Ok(changed) => match h.report.steps.last_mut() {
            Some(last) if last.step == tag => {
                last.changed.extend(changed);
                last.elapsed += elapsed;
            }
            _ => h.report.steps.push(StepOutcome {
                step: tag,
                changed,
                notes: Vec::new(),
                elapsed,
            }),
        },
        Err(e) => h.report.failure = Some((tag.name().to_string(), e)),
    }
}
