//! The build-infra phase as library functions, and the command line behind
//! `hive ssh`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::docker::admin_script;
use crate::error::{ProviderError, Result};
use crate::provider::{Provider, ProviderReport, ServerChange};
use crate::ssh::known_hosts;
use crate::ssh::{SshAuth, SshOptions, SshSession, SshTarget};
use crate::ssh_config::{SshConfig, SshHost};
use crate::stage::{AdminAccount, Endpoint, StageSpec, close_secret_dir, write_atomic};
use crate::transport::{RemoteCommand, Transport};

/// Options of [`build_infra`].
#[derive(Debug, Clone)]
pub struct BuildInfraOptions {
    /// How long to wait for each server to answer on SSH (120 s).
    pub ssh_wait: Duration,
    /// Connect timeout of each attempt (10 s).
    pub connect_timeout: Duration,
    /// `-l`: only these servers (by name) are built and reached; the
    /// others keep their entries in ssh_config. Empty: every server.
    pub limit: Vec<String>,
    /// Wait for each server to answer on SSH (pin its host key, create the
    /// admin account). When false (`--skip-ssh-wait`), build-infra builds
    /// the provider's resources and writes ssh_config from the provider's
    /// endpoints without connecting; a later build-infra reaches them.
    pub wait_for_ssh: bool,
}

impl Default for BuildInfraOptions {
    fn default() -> Self {
        BuildInfraOptions {
            ssh_wait: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            limit: Vec::new(),
            wait_for_ssh: true,
        }
    }
}

/// How one server ended up after build-infra.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccess {
    /// Where and how it is reached: the port is the one sshd answered on
    /// (the stage's `sshd_port` once setup-hosts moved sshd there).
    pub endpoint: Endpoint,
    /// Its host key was pinned in this run (first contact).
    pub host_key_pinned: bool,
    /// A pin was dropped because the provider created the server anew.
    pub old_pin_forgotten: bool,
    /// With `root_password`: whether the admin bootstrap changed something.
    pub admin_bootstrap_changed: Option<bool>,
}

/// What [`build_infra`] did.
#[derive(Debug, Clone)]
pub struct BuildInfraReport {
    /// The provider's own report.
    pub provider: ProviderReport,
    /// The stage key pair was generated in this run.
    pub key_generated: bool,
    /// Per server reached, in stage order.
    pub servers: Vec<ServerAccess>,
    /// The servers that do not answer yet, for a provider whose servers are
    /// installed later ([`Provider::installs_servers_later`]): they are in
    /// ssh_config, and a build-infra after their installation pins their
    /// host keys.
    pub not_installed: Vec<Endpoint>,
    /// The ssh_config written.
    pub ssh_config: PathBuf,
    /// The known_hosts holding the pins.
    pub known_hosts: PathBuf,
}

impl BuildInfraReport {
    /// Whether anything changed (servers, pins, accounts, key).
    pub fn changed(&self) -> bool {
        self.key_generated
            || self.provider.changed()
            || self.servers.iter().any(|s| {
                s.host_key_pinned || s.old_pin_forgotten || s.admin_bootstrap_changed == Some(true)
            })
    }
}

/// Generate the stage's ed25519 key pair at `private_key` (and `.pub`) with
/// `ssh-keygen` when missing; the private key gets mode 0600. Returns
/// whether it was generated.
pub async fn ensure_key_pair(private_key: &Path, comment: &str) -> Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let mut public = private_key.as_os_str().to_owned();
    public.push(".pub");
    let public = PathBuf::from(public);
    let dir = private_key.parent().unwrap_or(Path::new("."));
    if private_key.exists() {
        std::fs::set_permissions(private_key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| ProviderError::io("set mode 0600 on", private_key, e))?;
        close_secret_dir(dir).map_err(|e| ProviderError::io("close to others", dir, e))?;
        if !public.exists() {
            let out = keygen(&["-y", "-f", &private_key.display().to_string()]).await?;
            write_atomic(&public, &out, 0o644)?;
        }
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(|e| ProviderError::io("create directory", dir, e))?;
    close_secret_dir(dir).map_err(|e| ProviderError::io("close to others", dir, e))?;
    let tmp = tempfile::tempdir_in(dir)
        .map_err(|e| ProviderError::io("create a temporary directory in", dir, e))?;
    let key = tmp.path().join("key");
    keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        comment,
        "-f",
        &key.display().to_string(),
    ])
    .await?;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ProviderError::io("set mode 0600 on", &key, e))?;
    std::fs::rename(tmp.path().join("key.pub"), &public)
        .map_err(|e| ProviderError::io("write", &public, e))?;
    std::fs::rename(&key, private_key).map_err(|e| ProviderError::io("write", private_key, e))?;
    Ok(true)
}

async fn keygen(args: &[&str]) -> Result<Vec<u8>> {
    let out = tokio::process::Command::new("ssh-keygen")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| ProviderError::Program {
            program: "ssh-keygen".into(),
            args: String::new(),
            message: format!("cannot run it (install openssh-client): {e}"),
        })?;
    if !out.status.success() {
        return Err(ProviderError::Program {
            program: "ssh-keygen".into(),
            args: String::new(),
            message: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(out.stdout)
}

/// Create the admin group and user, passwordless sudo for the group and the
/// authorized key, over `transport` (logged in as root, or with `sudo`).
/// Idempotent; returns whether something changed.
pub async fn bootstrap_admin(
    transport: &dyn Transport,
    admin: &AdminAccount,
    public_key: &str,
    sudo: bool,
) -> Result<bool> {
    let mut cmd = RemoteCommand::new(admin_script(admin, public_key));
    cmd.sudo = sudo;
    let out = transport
        .exec_checked(&cmd, &format!("create the admin account {}", admin.user))
        .await?;
    Ok(out.stdout_text().trim_end().ends_with("changed")
        && !out.stdout_text().contains("unchanged"))
}

/// Connect to the first of `targets` (the same server on different ports)
/// that answers, retrying transient failures until `wait` has passed.
async fn connect_waiting(
    targets: &[SshTarget],
    options: &SshOptions,
    wait: Duration,
) -> Result<SshSession> {
    let deadline = Instant::now() + wait;
    let mut o = options.clone();
    o.retries = 0;
    loop {
        let mut last = None;
        for target in targets {
            match SshSession::connect(target.clone(), o.clone()).await {
                Ok(s) => return Ok(s),
                Err(e) if e.is_transient() && !matches!(e, ProviderError::Auth { .. }) => {
                    tracing::debug!(host = %target.host, port = target.port, error = %e, "waiting for ssh");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        match last {
            Some(e) if Instant::now() >= deadline => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// The ports to try on a server, in order: the wanted sshd port first
/// when the provider reaches the server on 22 (sshd may have been moved
/// there by setup-hosts), then the provider's port.
fn ports_to_try(stage: &StageSpec, endpoint: &Endpoint) -> Vec<u16> {
    if endpoint.port == 22 && stage.sshd_port != 22 {
        vec![stage.sshd_port, 22]
    } else {
        vec![endpoint.port]
    }
}

async fn reach_server(
    stage: &StageSpec,
    endpoint: &Endpoint,
    change: Option<ServerChange>,
    options: &BuildInfraOptions,
    public_key: &str,
) -> Result<ServerAccess> {
    let kh = stage.known_hosts_path();
    let ports = ports_to_try(stage, endpoint);
    let mut old_pin_forgotten = false;
    if change == Some(ServerChange::Created) {
        for &port in &ports {
            old_pin_forgotten |=
                known_hosts::forget(&kh, &known_hosts::host_pattern(&endpoint.address, port))?;
        }
    }
    let mut ssh = SshOptions::new(&kh).pin_on_first_contact();
    ssh.connect_timeout = options.connect_timeout;
    // A key met on the wanted port must be the one pinned for the
    // provider's port, when that one is pinned.
    ssh.earlier_port = Some(endpoint.port);
    let targets = |user: &str, auth: SshAuth, ports: &[u16]| -> Vec<SshTarget> {
        ports
            .iter()
            .map(|&port| SshTarget {
                host: endpoint.name.clone(),
                address: endpoint.address.clone(),
                port,
                user: user.to_string(),
                auth: auth.clone(),
            })
            .collect()
    };
    let mut ports = ports;
    let mut pinned = false;
    let mut admin_bootstrap_changed = None;
    if let Some(password) = &stage.root_password {
        let root = targets("root", SshAuth::Password(password.clone()), &ports);
        let session = connect_waiting(&root, &ssh, options.ssh_wait).await?;
        pinned |= session.pinned_host_key();
        ports = vec![session.target().port];
        admin_bootstrap_changed =
            Some(bootstrap_admin(&session, &stage.admin, public_key, false).await?);
    }
    let admin = targets(&endpoint.user, SshAuth::Key(endpoint.key.clone()), &ports);
    let session = connect_waiting(&admin, &ssh, options.ssh_wait).await?;
    pinned |= session.pinned_host_key();
    session
        .exec_checked(
            &RemoteCommand::new("true").sudo(),
            "sudo true (check passwordless sudo)",
        )
        .await?;
    let mut endpoint = endpoint.clone();
    endpoint.port = session.target().port;
    Ok(ServerAccess {
        endpoint,
        host_key_pinned: pinned,
        old_pin_forgotten,
        admin_bootstrap_changed,
    })
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The build-infra phase: build the stage with its provider, wait until
/// every server answers on SSH (pinning host keys in
/// `<context>/known_hosts` on first contact), create the admin account with
/// `root_password` where set, and write `<context>/ssh_config` so that
/// `ssh -F <context>/ssh_config HOST` works. Generates the stage key pair
/// first when missing. Idempotent.
pub async fn build_infra(
    provider: &dyn Provider,
    stage: &StageSpec,
    options: &BuildInfraOptions,
) -> Result<BuildInfraReport> {
    provider.validate(stage)?;
    let full = stage;
    let limited;
    let stage = if options.limit.is_empty() {
        stage
    } else {
        limited = limited_stage(provider, stage, &options.limit)?;
        &limited
    };
    let key_generated = ensure_key_pair(
        &stage.private_key_path(),
        &format!("hive@{}.{}", stage.stage, stage.site),
    )
    .await?;
    let public_key = std::fs::read_to_string(stage.public_key_path())
        .map_err(|e| ProviderError::io("read the public key", stage.public_key_path(), e))?;
    let report = provider.build(stage).await?;
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    let endpoints = provider.endpoints(stage).await?;
    let later = provider.installs_servers_later();
    let (servers, not_installed, unreachable) = if !options.wait_for_ssh {
        (
            unreached(stage, &endpoints, &report)?,
            Vec::new(),
            Vec::new(),
        )
    } else if later {
        let (servers, not_installed) =
            reach_installed(stage, &endpoints, &report, options, &public_key).await?;
        (servers, not_installed, Vec::new())
    } else {
        let (servers, unreachable) =
            reach_servers(stage, &endpoints, &report, options, &public_key).await?;
        (servers, Vec::new(), unreachable)
    };
    let ssh_config = write_ssh_config(full, stage, &servers, &not_installed, options)?;
    let mut unreachable = unreachable.into_iter();
    if let Some((name, first)) = unreachable.next() {
        let mut names = vec![name];
        names.extend(unreachable.map(|(n, _)| n));
        return Err(ProviderError::Unreachable {
            servers: names.join(", "),
            after: options.ssh_wait,
            ssh_config,
            source: Box::new(first),
        });
    }
    let kh = absolute(&stage.known_hosts_path());
    Ok(BuildInfraReport {
        provider: report,
        key_generated,
        servers,
        not_installed,
        ssh_config,
        known_hosts: kh,
    })
}

/// Servers installed from what the provider wrote (kickstart media): one
/// attempt each; those that do not answer yet are returned apart, as not
/// installed.
async fn reach_installed(
    stage: &StageSpec,
    endpoints: &[Endpoint],
    report: &ProviderReport,
    options: &BuildInfraOptions,
    public_key: &str,
) -> Result<(Vec<ServerAccess>, Vec<Endpoint>)> {
    let reach_options = BuildInfraOptions {
        ssh_wait: Duration::ZERO,
        connect_timeout: options.connect_timeout.min(Duration::from_secs(3)),
        ..options.clone()
    };
    let futs = endpoints.iter().map(|e| async {
        let reached = reach_server(
            stage,
            e,
            report.change_of(&e.name),
            &reach_options,
            public_key,
        )
        .await;
        match reached {
            Err(ProviderError::Connect { .. } | ProviderError::Timeout { .. }) => Ok(None),
            r => r.map(Some),
        }
    });
    let reached = futures::future::join_all(futs)
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let not_installed: Vec<Endpoint> = endpoints
        .iter()
        .zip(&reached)
        .filter(|(_, r)| r.is_none())
        .map(|(e, _)| e.clone())
        .collect();
    Ok((reached.into_iter().flatten().collect(), not_installed))
}

/// Reach every server over SSH at once. A server that does not answer in
/// time is listed with its error (the others go on); any other error ends
/// the phase.
async fn reach_servers(
    stage: &StageSpec,
    endpoints: &[Endpoint],
    report: &ProviderReport,
    options: &BuildInfraOptions,
    public_key: &str,
) -> Result<(Vec<ServerAccess>, Vec<(String, ProviderError)>)> {
    let futs = endpoints
        .iter()
        .map(|e| reach_server(stage, e, report.change_of(&e.name), options, public_key));
    let results = futures::future::join_all(futs).await;
    let mut servers = Vec::new();
    let mut unreachable = Vec::new();
    for (endpoint, result) in endpoints.iter().zip(results) {
        match result {
            Ok(access) => servers.push(access),
            Err(e) if e.is_transient() && !matches!(e, ProviderError::Auth { .. }) => {
                tracing::warn!(server = %endpoint.name, error = %e, "no answer on ssh");
                unreachable.push((endpoint.name.clone(), e));
                servers.push(not_reached(endpoint.clone(), false));
            }
            Err(e) => return Err(e),
        }
    }
    Ok((servers, unreachable))
}

/// The servers as the provider gives them, without connecting
/// (`--skip-ssh-wait`); the pins of servers created anew are forgotten.
fn unreached(
    stage: &StageSpec,
    endpoints: &[Endpoint],
    report: &ProviderReport,
) -> Result<Vec<ServerAccess>> {
    let kh = stage.known_hosts_path();
    let mut servers = Vec::new();
    for e in endpoints {
        let mut forgotten = false;
        if report.change_of(&e.name) == Some(ServerChange::Created) {
            for port in ports_to_try(stage, e) {
                forgotten |=
                    known_hosts::forget(&kh, &known_hosts::host_pattern(&e.address, port))?;
            }
        }
        servers.push(not_reached(e.clone(), forgotten));
    }
    Ok(servers)
}

fn not_reached(endpoint: Endpoint, old_pin_forgotten: bool) -> ServerAccess {
    ServerAccess {
        endpoint,
        host_key_pinned: false,
        old_pin_forgotten,
        admin_bootstrap_changed: None,
    }
}

/// Write `<context>/ssh_config` for `servers` and the servers not
/// installed yet (and, with `-l`, keep the entries of the others), in the
/// stage's order with the repository server last, as `hive ssh` and
/// hive-builder expect.
fn write_ssh_config(
    full: &StageSpec,
    stage: &StageSpec,
    servers: &[ServerAccess],
    not_installed: &[Endpoint],
    options: &BuildInfraOptions,
) -> Result<PathBuf> {
    let kh = absolute(&stage.known_hosts_path());
    if !kh.exists() {
        write_atomic(&kh, b"", 0o644)?;
    }
    let mut hosts: Vec<SshHost> = servers
        .iter()
        .map(|s| &s.endpoint)
        .chain(not_installed)
        .map(|e| SshHost {
            name: e.name.clone(),
            host_name: e.address.clone(),
            port: e.port,
            user: e.user.clone(),
            identity_file: Some(absolute(&e.key)),
            known_hosts: Some(kh.clone()),
            role: Some(e.role),
            line: 0,
        })
        .collect();
    let ssh_config = stage.ssh_config_path();
    if !options.limit.is_empty() && ssh_config.exists() {
        // The servers left out keep their entries.
        for h in SshConfig::load(&ssh_config)?.hosts {
            if !hosts.iter().any(|x| x.name == h.name) {
                hosts.push(h);
            }
        }
    }
    hosts.sort_by_key(|h| {
        (
            h.role.is_some_and(crate::stage::ServerRole::is_repository),
            full.servers.iter().position(|s| s.name == h.name),
        )
    });
    write_atomic(
        &ssh_config,
        SshConfig { hosts }.render(&stage.stage).as_bytes(),
        0o644,
    )?;
    Ok(ssh_config)
}

/// The stage with only the servers of `limit` (`build-infra -l`).
fn limited_stage(
    provider: &dyn Provider,
    stage: &StageSpec,
    limit: &[String],
) -> Result<StageSpec> {
    let whole = match provider.name() {
        "vagrant" => Some("its Vagrantfile holds every server"),
        "kickstart" => {
            Some("each server's kickstart file takes its addresses by its place in the stage")
        }
        _ => None,
    };
    if let Some(why) = whole {
        return Err(ProviderError::InvalidStage {
            stage: stage.stage.clone(),
            key: "provider".into(),
            message: format!(
                "build-infra -l is not supported with the {} provider ({why}); run build-infra without -l",
                provider.name()
            ),
        });
    }
    let known = || {
        stage
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for name in limit {
        if !stage.servers.iter().any(|s| &s.name == name) {
            return Err(ProviderError::InvalidStage {
                stage: stage.stage.clone(),
                key: "-l".into(),
                message: format!("no server named {name}; servers: {}", known()),
            });
        }
    }
    let mut sub = stage.clone();
    sub.servers.retain(|s| limit.contains(&s.name));
    Ok(sub)
}

/// `hive build-infra -H`: stop the stage's servers.
pub async fn halt_infra(provider: &dyn Provider, stage: &StageSpec) -> Result<ProviderReport> {
    provider.halt(stage).await
}

/// `hive build-infra -D`: destroy the stage's servers, then remove the
/// stage's ssh_config and known_hosts (their keys are gone). The key pair
/// is kept. Ask the user before calling this.
pub async fn destroy_infra(provider: &dyn Provider, stage: &StageSpec) -> Result<ProviderReport> {
    let mut report = provider.destroy(stage).await?;
    for path in [stage.ssh_config_path(), stage.known_hosts_path()] {
        match std::fs::remove_file(&path) {
            Ok(()) => report
                .resources
                .push((path.display().to_string(), ServerChange::Destroyed)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ProviderError::io("remove", path, e)),
        }
    }
    Ok(report)
}

/// Options of `hive ssh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCommandOptions {
    /// `-t HOST`; the repository server when `None`.
    pub host: Option<String>,
    /// `-L SPEC`, passed to ssh as is.
    pub forward: Option<String>,
    /// `-z`: forward the Zabbix web console to `localhost:<zabbix_port>`.
    pub zabbix: bool,
    /// `-Z PORT` (10052).
    pub zabbix_port: u16,
    /// The ssh program (`ssh`).
    pub program: String,
}

impl Default for SshCommandOptions {
    fn default() -> Self {
        SshCommandOptions {
            host: None,
            forward: None,
            zabbix: false,
            zabbix_port: 10052,
            program: "ssh".into(),
        }
    }
}

/// The command line of `hive ssh` for the stage whose context directory is
/// `context_dir`: `ssh -F <context>/ssh_config [-L ...] HOST`.
///
/// ```no_run
/// let argv = hive_provider::ssh_command(".hive/private".as_ref(), &Default::default()).unwrap();
/// std::process::Command::new(&argv[0]).args(&argv[1..]).status().unwrap();
/// ```
pub fn ssh_command(context_dir: &Path, options: &SshCommandOptions) -> Result<Vec<String>> {
    let path = context_dir.join("ssh_config");
    let config = SshConfig::load(&path)?;
    let known = || {
        config
            .hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let host = match &options.host {
        Some(h) => config.host(h).ok_or_else(|| ProviderError::UnknownHost {
            host: h.clone(),
            path: path.clone(),
            known: known(),
        })?,
        None => config.repository().ok_or_else(|| ProviderError::Parse {
            path: path.display().to_string(),
            line: 1,
            message: "no Host entry; run `hive build-infra` again".into(),
        })?,
    };
    let mut argv = vec![
        options.program.clone(),
        "-F".into(),
        path.display().to_string(),
    ];
    if options.zabbix {
        argv.push("-L".into());
        argv.push(format!(
            "localhost:{}:{}:10052",
            options.zabbix_port, host.name
        ));
    }
    if let Some(spec) = &options.forward {
        argv.push("-L".into());
        argv.push(spec.clone());
    }
    argv.push(host.name.clone());
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_command_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ssh_config"),
            "# hive-role: hive\nHost p-hive0.pdns\n  HostName 10.0.0.1\n# hive-role: repository\nHost p-hive1.pdns\n  HostName 10.0.0.2\n# hive-role: hive\nHost p-hive2.pdns\n  HostName 10.0.0.3\n",
        )
        .unwrap();
        let cfg = dir.path().join("ssh_config").display().to_string();
        let check = |o: SshCommandOptions, expected: &[&str]| {
            let mut want: Vec<String> = vec!["ssh".into(), "-F".into(), cfg.clone()];
            want.extend(expected.iter().map(|s| s.to_string()));
            assert_eq!(ssh_command(dir.path(), &o).unwrap(), want);
        };
        check(Default::default(), &["p-hive1.pdns"]);
        check(
            SshCommandOptions {
                host: Some("p-hive0.pdns".into()),
                forward: Some("8080:localhost:80".into()),
                zabbix: true,
                ..Default::default()
            },
            &[
                "-L",
                "localhost:10052:p-hive0.pdns:10052",
                "-L",
                "8080:localhost:80",
                "p-hive0.pdns",
            ],
        );
        let err = ssh_command(
            dir.path(),
            &SshCommandOptions {
                host: Some("nope".into()),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("host nope is not in") && err.contains("p-hive0.pdns, p-hive1.pdns"),
            "{err}"
        );
        let err = ssh_command(Path::new("/nonexistent"), &Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("run `hive build-infra` first"), "{err}");
    }

    #[tokio::test]
    async fn key_pair_generated_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("ctx/id_ed25519");
        assert!(ensure_key_pair(&key, "hive@test").await.unwrap());
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pubkey = std::fs::read_to_string(dir.path().join("ctx/id_ed25519.pub")).unwrap();
        assert!(pubkey.starts_with("ssh-ed25519 ") && pubkey.contains("hive@test"));
        assert!(!ensure_key_pair(&key, "hive@test").await.unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ctx/id_ed25519.pub")).unwrap(),
            pubkey
        );
        // Its directory is closed to others, also when it was opened since
        // (a context directory of an older hive).
        let ctx = dir.path().join("ctx");
        let dir_mode = || std::fs::metadata(&ctx).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode(), 0o700);
        std::fs::set_permissions(&ctx, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(!ensure_key_pair(&key, "hive@test").await.unwrap());
        assert_eq!(dir_mode(), 0o700);
    }

    #[test]
    fn secret_files_close_their_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let certs = dir.path().join("tls/certs");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::set_permissions(&certs, std::fs::Permissions::from_mode(0o755)).unwrap();
        write_atomic(&certs.join("ca.pem"), b"cert", 0o644).unwrap();
        assert_eq!(mode(&certs), 0o755);
        let secret = dir.path().join("tls/private/ca_key.pem");
        write_atomic(&secret, b"key", 0o600).unwrap();
        assert_eq!(mode(&secret), 0o600);
        assert_eq!(mode(secret.parent().unwrap()), 0o700);
    }
}
