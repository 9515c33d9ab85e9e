//! The phase's runner: steps in order, servers in parallel, a report per
//! server and step.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::error::{Result, SetupHostsError};
use super::item::{Item, converge};
use super::os::{DETECT_SCRIPT, OsFamily};
use super::params::{Server, ServerRole, SetupHostsParams};
use super::pki::{CertPair, SitePki, write_atomic};
use super::shell::{HostShell, run_checked};
use super::steps::{self, Inputs, StepTag};
use super::swarm;

/// What one step did (or, in check mode, would do) on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// The step.
    pub step: StepTag,
    /// What differed from its desired state (and was changed unless in
    /// check mode); empty when the server was already as wanted.
    pub changed: Vec<String>,
    /// Remarks that are not changes (e.g. a step waiting for a component).
    pub notes: Vec<String>,
    /// Time spent on this server.
    pub elapsed: Duration,
}

/// What the phase did on one server.
#[derive(Debug)]
pub struct HostReport {
    /// The server's name.
    pub host: String,
    /// Its operating system family, once detected.
    pub os: Option<OsFamily>,
    /// The steps that ran, in order.
    pub steps: Vec<StepOutcome>,
    /// The step that failed on it and why; later steps did not run there.
    pub failure: Option<(String, SetupHostsError)>,
}

impl HostReport {
    /// How many things differed on this server.
    pub fn change_count(&self) -> usize {
        self.steps.iter().map(|s| s.changed.len()).sum()
    }
}

/// What the phase did on the whole stage.
#[derive(Debug)]
pub struct SetupReport {
    /// Whether this was a check (`-C`): nothing was changed.
    pub check_mode: bool,
    /// Changes on the mother machine (CA, certificates, registry password).
    pub local_changes: Vec<String>,
    /// One report per server acted on, in inventory order.
    pub hosts: Vec<HostReport>,
    /// Wall-clock time of each step across all servers.
    pub step_times: Vec<(StepTag, Duration)>,
}

impl SetupReport {
    /// Total count of things that differed (local and on servers).
    pub fn change_count(&self) -> usize {
        self.local_changes.len()
            + self
                .hosts
                .iter()
                .map(HostReport::change_count)
                .sum::<usize>()
    }
    /// The servers that failed.
    pub fn failed(&self) -> impl Iterator<Item = &HostReport> {
        self.hosts.iter().filter(|h| h.failure.is_some())
    }
    /// Whether every server completed every step.
    pub fn success(&self) -> bool {
        self.failed().next().is_none()
    }
}

impl fmt::Display for SetupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.check_mode {
            "would change"
        } else {
            "changed"
        };
        for c in &self.local_changes {
            writeln!(f, "mother: {verb}: {c}")?;
        }
        for h in &self.hosts {
            for s in &h.steps {
                if s.changed.is_empty() {
                    write!(f, "{} {}: no change", h.host, s.step)?;
                } else {
                    write!(f, "{} {}: {verb}: {}", h.host, s.step, s.changed.join(", "))?;
                }
                for n in &s.notes {
                    write!(f, " ({n})")?;
                }
                writeln!(f)?;
            }
            if let Some((step, e)) = &h.failure {
                write!(f, "{} {step}: FAILED: {e}", h.host)?;
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    write!(f, ": {c}")?;
                    cause = c.source();
                }
                writeln!(f)?;
            }
        }
        let failed = self.failed().count();
        write!(
            f,
            "{} {} on {} servers",
            self.change_count(),
            if self.check_mode {
                "pending changes"
            } else {
                "changes"
            },
            self.hosts.len()
        )?;
        if self.change_count() == 0 {
            write!(f, " (no change)")?;
        }
        if failed > 0 {
            write!(f, "; {failed} failed")?;
        }
        Ok(())
    }
}

/// The setup-hosts phase, configured with a consuming builder.
///
/// ```no_run
/// # async fn demo(params: hive_setup::SetupHostsParams,
/// #   shells: Vec<std::sync::Arc<dyn hive_setup::HostShell>>) -> Result<(), hive_setup::SetupHostsError> {
/// use hive_setup::{SetupHosts, StepTag};
/// let report = SetupHosts::new(params)
///     .shells(shells)
///     .tags([StepTag::Docker])   // -T docker
///     .limit(["p-hive1.pdns"])   // -l p-hive1.pdns
///     .check_mode(true)          // -C
///     .run()
///     .await?;
/// println!("{report}");
/// # Ok(()) }
/// ```
pub struct SetupHosts {
    params: SetupHostsParams,
    shells: HashMap<String, Arc<dyn HostShell>>,
    tags: Vec<StepTag>,
    limit: Option<Vec<String>>,
    check: bool,
    addon: Option<Arc<dyn AddonRunner>>,
    engines: Option<Arc<dyn EngineConnector>>,
    progress: Option<SetupProgress>,
    drbd: Option<super::drbd::DrbdHostSetup>,
    sshd_follower: Option<SshdFollower>,
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

struct HostRun {
    server: Server,
    os: Option<OsFamily>,
    report: HostReport,
    acting: bool,
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

fn random_password(len: usize) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

fn read_secret(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim_end_matches('\n').to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SetupHostsError::io("read", path, e)),
    }
}

/// The registry password in `<context>/registry_password` (15 characters,
/// as the original's `lookup('password', ... length=15)`), created when
/// missing, and the htpasswd line for `user` in `<context>/registry_htpasswd`,
/// reused while it matches. Both files mode 0600. Returns whether anything
/// was created.
pub fn registry_credentials(
    context_dir: &Path,
    user: &str,
    write: bool,
) -> Result<(String, String, bool)> {
    let pw_path = context_dir.join("registry_password");
    let ht_path = context_dir.join("registry_htpasswd");
    let mut created = false;
    let password = match read_secret(&pw_path)? {
        Some(p) if !p.is_empty() => p,
        _ => {
            let p = random_password(15);
            if write {
                write_atomic(&pw_path, format!("{p}\n").as_bytes(), 0o600)?;
            }
            created = true;
            p
        }
    };
    let reuse = read_secret(&ht_path)?.filter(|line| {
        line.split_once(':')
            .is_some_and(|(u, h)| u == user && bcrypt::verify(&password, h).unwrap_or(false))
    });
    let htpasswd = match reuse {
        Some(line) => format!("{line}\n"),
        None => {
            let hash = bcrypt::hash(&password, 10).map_err(SetupHostsError::Bcrypt)?;
            let line = format!("{user}:{hash}\n");
            if write {
                write_atomic(&ht_path, line.as_bytes(), 0o600)?;
            }
            created = true;
            line
        }
    };
    Ok((password, htpasswd, created))
}

/// The registry's garbage collection command, as the seed's clean-up
/// instruction runs it on the repository server.
pub const REGISTRY_GC_COMMAND: &str =
    "docker exec registry registry garbage-collect -m /etc/docker/registry/config.yml";

/// Run the registry's garbage collector on the repository server (what
/// `hive registry gc` does from the mother machine) and return its output.
pub async fn registry_garbage_collect(repository: &dyn HostShell) -> Result<String> {
    let out = run_checked(
        repository,
        REGISTRY_GC_COMMAND,
        None,
        "registry garbage-collect",
    )
    .await?;
    Ok(out.stdout_text())
}

impl SetupHosts {
    /// The phase for `params`, all steps, all servers, applying changes.
    pub fn new(params: SetupHostsParams) -> Self {
        SetupHosts {
            params,
            shells: HashMap::new(),
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

    fn emit(&self, event: SetupEvent) {
        if let Some(p) = &self.progress {
            p(&event);
        }
    }

    /// Add the shell of a server (matched by [`HostShell::host`] against the
    /// servers' names).
    pub fn shell(mut self, shell: Arc<dyn HostShell>) -> Self {
        self.shells.insert(shell.host().to_string(), shell);
        self
    }

    /// Add the shells of several servers.
    pub fn shells(mut self, shells: impl IntoIterator<Item = Arc<dyn HostShell>>) -> Self {
        for s in shells {
            self = self.shell(s);
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
        let acting = |s: &Server| {
            self.limit
                .as_ref()
                .is_none_or(|l| l.iter().any(|n| n == &s.name || n == s.hostname()))
        };
        for s in p.servers.iter().filter(|s| acting(s)) {
            if !self.shells.contains_key(&s.name) {
                return Err(SetupHostsError::Params {
                    key: "servers".into(),
                    reason: format!("no connection was given for server {}", s.name),
                });
            }
        }
        let local = self.prepare_local()?;
        let mut hosts: Vec<HostRun> = p
            .servers
            .iter()
            .map(|s| HostRun {
                server: s.clone(),
                os: None,
                acting: acting(s),
                report: HostReport {
                    host: s.name.clone(),
                    os: None,
                    steps: Vec::new(),
                    failure: None,
                },
            })
            .collect();

        // Facts: the OS family of every server acted on (and of the first
        // hive, which the swarm step may use even when limited out).
        let first_hive = p.first_hive().map(|s| s.name.clone());
        let detect = join_all(hosts.iter().map(|h| {
            let needed = h.acting || Some(&h.server.name) == first_hive.as_ref();
            let shell = self.shells.get(&h.server.name).cloned();
            async move {
                match (needed, shell) {
                    (true, Some(shell)) => Some(detect_os(shell.as_ref()).await),
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

        let mut step_times = Vec::new();
        for &tag in &self.tags {
            let start = Instant::now();
            let running: Vec<usize> = (0..hosts.len())
                .filter(|&i| hosts[i].acting && hosts[i].report.failure.is_none())
                .collect();
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
                StepTag::Drbd => {
                    let targets: Vec<usize> = (0..hosts.len())
                        .filter(|&i| hosts[i].acting && hosts[i].report.failure.is_none())
                        .collect();
                    let servers: Vec<_> = targets
                        .iter()
                        .map(|&i| (hosts[i].server.clone(), hosts[i].os))
                        .collect();
                    let selected = self.tags.len() < StepTag::ALL.len();
                    let results = super::drbd::run_step(
                        self.drbd.as_ref(),
                        &self.shells,
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
                StepTag::Addon => {
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
                _ => {
                    let targets: Vec<usize> = (0..hosts.len())
                        .filter(|&i| hosts[i].acting && hosts[i].report.failure.is_none())
                        .collect();
                    let results = join_all(targets.iter().map(|&i| {
                        let h = &hosts[i];
                        let inputs = self.inputs(&local, &h.server);
                        self.item_step(tag, h, inputs)
                    }))
                    .await;
                    for (i, r) in targets.into_iter().zip(results) {
                        record(&mut hosts[i], tag, r);
                    }
                    if let (StepTag::Base, false, Some(follow)) =
                        (tag, self.check, &self.sshd_follower)
                    {
                        self.follow_sshd(follow, &mut hosts).await;
                    }
                }
            }
            step_times.push((tag, start.elapsed()));
            for &i in &running {
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

    /// Run `follow` for every server the base step succeeded on.
    async fn follow_sshd(&self, follow: &SshdFollower, hosts: &mut [HostRun]) {
        let port = self.params.sshd_port;
        let ok: Vec<usize> = (0..hosts.len())
            .filter(|&i| hosts[i].acting && hosts[i].report.failure.is_none())
            .collect();
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
        let items: Vec<Item> = match tag {
            StepTag::Base => steps::base_items(p, &h.server, os),
            StepTag::Pki => steps::pki_items(&inputs, os),
            StepTag::Docker => steps::docker_items(p, &inputs, os),
            StepTag::Firewall => steps::firewall_items(p),
            StepTag::Logs => steps::logs_items(p, &h.server, os),
            _ => Vec::new(),
        };
        let r = self.converge_on(&h.server.name, tag, &items).await;
        (r, start.elapsed())
    }

    async fn converge_on(&self, host: &str, tag: StepTag, items: &[Item]) -> Result<Vec<String>> {
        let shell = self
            .shells
            .get(host)
            .ok_or_else(|| SetupHostsError::Params {
                key: "servers".into(),
                reason: format!("no connection was given for server {host}"),
            })?;
        converge(shell.as_ref(), tag.name(), items, self.check).await
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
        let targets: Vec<usize> = (0..hosts.len())
            .filter(|&i| hosts[i].acting && hosts[i].report.failure.is_none())
            .collect();
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

    async fn run_swarm(&self, hosts: &mut [HostRun]) {
        let tag = StepTag::Swarm;
        let p = &self.params;
        let check = self.check;
        let Some(first) = p.first_hive().cloned() else {
            return;
        };
        let live = |h: &HostRun| {
            h.acting && h.report.failure.is_none() && h.server.role == ServerRole::Hive
        };
        let fi = hosts.iter().position(|h| h.server.name == first.name);
        let mut outcomes: HashMap<usize, (Result<Vec<String>>, Duration)> = HashMap::new();
        let mut first_error: Option<String> = None;

        // 1. The engines of the hives acted on (and of the first hive, which
        // the others need even when it is limited out), and docker_gwbridge
        // on each hive acted on, before it joins.
        let mut wanted: Vec<usize> = (0..hosts.len()).filter(|&i| live(&hosts[i])).collect();
        if let Some(i) = fi {
            if !wanted.contains(&i) && hosts[i].report.failure.is_none() && hosts[i].os.is_some() {
                wanted.push(i);
            }
        }
        let gw = swarm::gwbridge(p);
        let results = join_all(wanted.iter().map(|&i| {
            let name = hosts[i].server.name.clone();
            let acting = hosts[i].acting;
            async move {
                let start = Instant::now();
                let r = async {
                    let connector =
                        self.engines
                            .as_ref()
                            .ok_or_else(|| SetupHostsError::Params {
                                key: "engines".into(),
                                reason: format!(
                                    "the swarm step was given no way to reach the Docker engine of {name}"
                                ),
                            })?;
                    let engine = connector.engine(&name).await?;
                    let mut changed = Vec::new();
                    if let (Some((subnet, cidr)), true) = (gw, acting) {
                        let differs = match &engine {
                            Some(engine) => engine
                                .ensure_gwbridge(subnet, cidr, check)
                                .await
                                .map_err(|e| swarm::error(&name, e))?,
                            None => true,
                        };
                        if differs {
                            changed.push(format!("network {} {subnet}", hive_swarm::GWBRIDGE));
                        }
                    }
                    if engine.is_none() && !check {
                        return Err(SetupHostsError::Unreachable {
                            host: name.clone(),
                            reason: "it has no Docker engine (/var/run/docker.sock is missing): the docker step must run first".into(),
                        });
                    }
                    Ok::<_, SetupHostsError>((engine, changed))
                }
                .await;
                (r, start.elapsed())
            }
        }))
        .await;
        // `None`: no engine yet, in check mode only.
        let mut engines: HashMap<usize, Option<hive_swarm::Engine>> = HashMap::new();
        for (i, (r, d)) in wanted.into_iter().zip(results) {
            match r {
                Ok((engine, changed)) => {
                    engines.insert(i, engine);
                    if hosts[i].acting {
                        outcomes.insert(i, (Ok(changed), d));
                    }
                }
                Err(e) => {
                    if Some(i) == fi {
                        first_error = Some(e.to_string());
                    }
                    if hosts[i].acting {
                        outcomes.insert(i, (Err(e), d));
                    }
                }
            }
        }

        // 2. On the first hive: init, the ingress network, the join token.
        let mut token: Option<String> = None;
        // Whether the first hive is a manager already (not so in check mode
        // before the first run).
        let mut manager_ready = false;
        let first_engine = fi.and_then(|i| engines.get(&i).map(|e| (i, e.as_ref())));
        match first_engine {
            Some((i, None)) if first_error.is_none() => {
                let mut changed = vec!["swarm initialised".to_string()];
                if let Some((subnet, _)) = swarm::ingress(p) {
                    changed.push(format!("network {} {subnet}", hive_swarm::INGRESS));
                }
                if hosts[i].acting {
                    let entry = outcomes
                        .entry(i)
                        .or_insert((Ok(Vec::new()), Duration::ZERO));
                    merge(entry, Ok(changed), Duration::ZERO);
                }
            }
            Some((i, Some(engine))) if first_error.is_none() => {
                let start = Instant::now();
                let r = async {
                    let mut changed = Vec::new();
                    let initialised = engine.init_swarm(&swarm::init(p, &first), check).await?;
                    if initialised {
                        changed.push("swarm initialised".to_string());
                    }
                    if let Some((subnet, gateway)) = swarm::ingress(p) {
                        if engine
                            .ensure_ingress(subnet, gateway, INGRESS_TIMEOUT, check)
                            .await?
                        {
                            changed.push(format!("network {} {subnet}", hive_swarm::INGRESS));
                        }
                    }
                    let token = if check && initialised {
                        None
                    } else {
                        Some(engine.manager_join_token().await?)
                    };
                    Ok::<_, hive_swarm::Error>((changed, token))
                }
                .await
                .map_err(|e| swarm::error(&first.name, e));
                let r = match r {
                    Ok((changed, t)) => {
                        manager_ready = t.is_some();
                        token = t;
                        Ok(changed)
                    }
                    Err(e) => {
                        first_error = Some(e.to_string());
                        Err(e)
                    }
                };
                if hosts[i].acting {
                    let entry = outcomes
                        .entry(i)
                        .or_insert((Ok(Vec::new()), Duration::ZERO));
                    merge(entry, r, start.elapsed());
                }
            }
            _ => {
                first_error
                    .get_or_insert_with(|| format!("first hive {} is not available", first.name));
            }
        }
        let ok = |outcomes: &HashMap<usize, (Result<Vec<String>>, Duration)>, i: &usize| {
            outcomes.get(i).is_none_or(|(r, _)| r.is_ok())
        };

        // 3. The other hives join as managers.
        let joiners: Vec<usize> = (0..hosts.len())
            .filter(|&i| live(&hosts[i]) && Some(i) != fi && ok(&outcomes, &i))
            .filter(|i| engines.contains_key(i))
            .collect();
        let results = join_all(joiners.iter().map(|&i| {
            let server = &hosts[i].server;
            let engine = engines[&i].as_ref();
            let token = token.as_deref();
            let first_error = first_error.as_deref();
            let first = &first;
            async move {
                let start = Instant::now();
                let r = match (first_error, engine) {
                    (Some(e), _) => Err(SetupHostsError::Skipped {
                        host: server.name.clone(),
                        step: format!("swarm on the first hive ({e})"),
                    }),
                    (None, None) => Ok(vec!["swarm joined as manager".to_string()]),
                    (None, Some(engine)) => engine
                        .join_as_manager(
                            &swarm::join(server, first),
                            token.unwrap_or_default(),
                            check,
                        )
                        .await
                        .map(|joined| {
                            if joined {
                                vec!["swarm joined as manager".to_string()]
                            } else {
                                Vec::new()
                            }
                        })
                        .map_err(|e| swarm::error(&server.name, e)),
                };
                (r, start.elapsed())
            }
        }))
        .await;
        for (i, (r, d)) in joiners.into_iter().zip(results) {
            let entry = outcomes
                .entry(i)
                .or_insert((Ok(Vec::new()), Duration::ZERO));
            merge(entry, r, d);
        }

        // 4. Labels from the groups of every hive acted on, set through the
        // first hive and reported on the hive they concern.
        let manager = first_engine.and_then(|(_, e)| e).filter(|_| manager_ready);
        if first_error.is_none() {
            let labelled: Vec<usize> = (0..hosts.len())
                .filter(|&i| live(&hosts[i]) && ok(&outcomes, &i))
                .collect();
            let results = join_all(labelled.iter().map(|&i| {
                let server = &hosts[i].server;
                async move {
                    let start = Instant::now();
                    let labels = swarm::labels(server);
                    let r = if let Some(manager) = manager {
                        manager
                            .ensure_node_labels(server.hostname(), &labels, check)
                            .await
                            .map_err(|e| swarm::error(&server.name, e))
                    } else {
                        // Check mode before the swarm exists: all of them.
                        Ok(labels.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    };
                    let r = r.map(|added| {
                        added
                            .iter()
                            .map(|l| swarm::label_change(server, l))
                            .collect()
                    });
                    (r, start.elapsed())
                }
            }))
            .await;
            for (i, (r, d)) in labelled.into_iter().zip(results) {
                let entry = outcomes
                    .entry(i)
                    .or_insert((Ok(Vec::new()), Duration::ZERO));
                merge(entry, r, d);
            }
        }
        let mut keys: Vec<usize> = outcomes.keys().copied().collect();
        keys.sort_unstable();
        for i in keys {
            if let Some(r) = outcomes.remove(&i) {
                if hosts[i].acting {
                    record(&mut hosts[i], tag, r);
                }
            }
        }
    }
}

/// How long the swarm step retries creating the ingress network while the
/// old one is being removed.
const INGRESS_TIMEOUT: Duration = Duration::from_secs(30);

fn merge(entry: &mut (Result<Vec<String>>, Duration), r: Result<Vec<String>>, d: Duration) {
    entry.1 += d;
    match (&mut entry.0, r) {
        (Ok(v), Ok(more)) => v.extend(more),
        (Ok(_), Err(e)) => entry.0 = Err(e),
        (Err(_), _) => {}
    }
}

fn record(h: &mut HostRun, tag: StepTag, (r, elapsed): (Result<Vec<String>>, Duration)) {
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

async fn detect_os(shell: &dyn HostShell) -> Result<OsFamily> {
    let out = run_checked(shell, DETECT_SCRIPT, None, "operating system detection").await?;
    let text = out.stdout_text();
    OsFamily::parse(&text).ok_or_else(|| SetupHostsError::Unexpected {
        host: shell.host().to_string(),
        what: "operating system detection".into(),
        detail: format!(
            "unsupported system ({}); hive supports Debian, Ubuntu and the RHEL family",
            text.lines().next().unwrap_or("").trim()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_says_no_change_or_what_changed_and_why_a_server_failed() {
        let report = SetupReport {
            check_mode: false,
            local_changes: Vec::new(),
            hosts: vec![
                HostReport {
                    host: "p-hive0".into(),
                    os: Some(OsFamily::Debian),
                    steps: vec![StepOutcome {
                        step: StepTag::Base,
                        changed: Vec::new(),
                        notes: Vec::new(),
                        elapsed: Duration::ZERO,
                    }],
                    failure: None,
                },
                HostReport {
                    host: "p-hive1".into(),
                    os: Some(OsFamily::Debian),
                    steps: vec![StepOutcome {
                        step: StepTag::Base,
                        changed: vec!["file /etc/hosts".into()],
                        notes: Vec::new(),
                        elapsed: Duration::ZERO,
                    }],
                    failure: Some((
                        "docker".into(),
                        SetupHostsError::Transport {
                            host: "p-hive1".into(),
                            source: Box::new(hive_provider::ProviderError::SessionClosed {
                                host: "p-hive1".into(),
                                reason: ": connection reset".into(),
                            }),
                        },
                    )),
                },
            ],
            step_times: Vec::new(),
        };
        let text = report.to_string();
        assert!(text.contains("p-hive0 base: no change\n"), "{text}");
        assert!(
            text.contains("p-hive1 base: changed: file /etc/hosts\n"),
            "{text}"
        );
        assert!(
            text.contains("p-hive1 docker: FAILED: p-hive1: unreachable: ssh p-hive1: the session is closed: connection reset"),
            "{text}"
        );
        assert!(text.ends_with("1 changes on 2 servers; 1 failed"), "{text}");
        assert_eq!(report.change_count(), 1);
        assert!(!report.success());
    }

    #[test]
    fn registry_credentials_are_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (pw, ht, created) = registry_credentials(dir.path(), "hive", true).unwrap();
        assert!(created);
        assert_eq!(pw.len(), 15);
        assert!(ht.starts_with("hive:$2"));
        let mode = |f: &str| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("registry_password"), 0o600);
        assert_eq!(mode("registry_htpasswd"), 0o600);
        let (pw2, ht2, created) = registry_credentials(dir.path(), "hive", true).unwrap();
        assert_eq!(
            (pw2.as_str(), ht2.as_str(), created),
            (pw.as_str(), ht.as_str(), false)
        );
        // A different user name: new htpasswd, same password.
        let (pw3, ht3, created) = registry_credentials(dir.path(), "other", true).unwrap();
        assert!(created && pw3 == pw && ht3.starts_with("other:"));
        // Check mode writes nothing.
        let fresh = tempfile::tempdir().unwrap();
        let (_, _, created) = registry_credentials(fresh.path(), "hive", false).unwrap();
        assert!(created);
        assert!(!fresh.path().join("registry_password").exists());
    }
}
