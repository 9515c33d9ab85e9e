//! Backups of a stage's services, as the original's `backup-tools` and
//! `service-backup` take them, driven from the mother machine.
//!
//! setup-hosts installs the backup command on the repository server with a
//! daily run at 01:00 (hive-setup's `backup` step); deploy-services writes
//! there the definitions of every service with `backup_scripts`
//! ([`install_definitions`]). [`backup`] runs the command over SSH and
//! keeps a copy of every new backup on the mother machine under
//! `<context_dir>/backups/` (files 0600), so that the backups outlive the
//! servers (`hive build-infra -D` removes them with their disks);
//! [`restore`] sends the mother's copy back when the repository server
//! lacks it, and never deletes the backup it restores from. [`list`]
//! shows both places.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hive_provider::{RemoteCommand, RemoteFile, SshSession, Transport, shell_quote};
use serde::Serialize;

use crate::Error;
use crate::plan::Change;
use crate::setup_hosts::{
    BACKUP_COMMAND, BACKUP_DEFINITIONS_DIR, BackupScript, REGISTRY_BACKUP, admin_home,
    backup_definition, backup_ext,
};
use crate::site::StageSite;

/// The directory of the mother's copies, under the stage's context
/// directory.
pub const MOTHER_BACKUPS: &str = "backups";

/// One backup a service defines (or the registry's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupName {
    /// The service (`hive-registry` for the site registry).
    pub service: String,
    /// The backup's `name`.
    pub name: String,
    /// Its file extension.
    pub ext: String,
}

impl BackupName {
    /// The stamp of `file` if it is a backup of this name
    /// (`backup-<name>-<stamp>.<ext>`, `latest` for the link).
    pub fn stamp_of<'a>(&self, file: &'a str) -> Option<&'a str> {
        let rest = file.strip_prefix(&format!("backup-{}-", self.name))?;
        let stamp = rest.strip_suffix(&format!(".{}", self.ext))?;
        (stamp == "latest" || (stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit())))
            .then_some(stamp)
    }

    /// The file of `stamp`.
    pub fn file(&self, stamp: &str) -> String {
        format!("backup-{}-{stamp}.{}", self.name, self.ext)
    }
}

/// The stage's backup definitions per service, from the inventory, the
/// registry's first.
pub fn definitions(site: &StageSite<'_>) -> Result<BTreeMap<String, Vec<BackupScript>>, Error> {
    let mut out = BTreeMap::new();
    for (service, def) in site.service_definitions()? {
        if def.backup_scripts.is_empty() {
            continue;
        }
        let defs = def.backup_scripts.clone();
        out.insert(service, defs);
    }
    Ok(out)
}

/// Every backup name of the stage: the registry's, then the services' in
/// name order.
pub fn backup_names(site: &StageSite<'_>) -> Result<Vec<BackupName>, Error> {
    let mut names = vec![BackupName {
        service: REGISTRY_BACKUP.into(),
        name: REGISTRY_BACKUP.into(),
        ext: "tar.gz".into(),
    }];
    for (service, defs) in definitions(site)? {
        for d in defs {
            if d.directory.is_some() || d.backup_command.is_some() {
                names.push(BackupName {
                    service: service.clone(),
                    name: d.name.clone(),
                    ext: backup_ext(&d).to_string(),
                });
            }
        }
    }
    Ok(names)
}

/// The repository server, its SSH session and the backup directory there.
struct Repository {
    host: String,
    session: Arc<SshSession>,
    dir: String,
}

impl Repository {
    async fn connect(site: &StageSite<'_>) -> Result<Repository, Error> {
        let host = site.repository_server()?;
        let admin = site.setup_hosts_params()?.admin;
        let pool = crate::engines::stage_pool(&site.context_dir())?;
        let session = pool.session(&host).await.map_err(Error::provider)?;
        Ok(Repository {
            host,
            session,
            dir: format!("{}/backup", admin_home(&admin)),
        })
    }

    async fn run(&self, script: &str) -> Result<hive_provider::ExecOutput, Error> {
        self.session
            .exec(&RemoteCommand::new(script).sudo())
            .await
            .map_err(Error::provider)
    }

    /// The backup files there, as `(file, size)`.
    async fn files(&self) -> Result<BTreeMap<String, u64>, Error> {
        let out = self
            .run(&format!(
                "cd {} 2>/dev/null || exit 0; find . -maxdepth 1 -name 'backup-*' \\( -type f -o -type l \\) -printf '%f\\t%s\\t%y\\n'",
                shell_quote(&self.dir)
            ))
            .await?;
        let mut files = BTreeMap::new();
        for line in out.stdout_text().lines() {
            let mut f = line.split('\t');
            if let (Some(name), Some(size)) = (f.next(), f.next()) {
                files.insert(name.to_string(), size.parse().unwrap_or(0));
            }
        }
        Ok(files)
    }
}

/// deploy-services' part: the definitions of the services with
/// `backup_scripts` in `/var/lib/hive-backup.d` on the repository server,
/// the others' removed (with `-l`, only the named services are touched;
/// with `-D`, their definitions are removed).
pub async fn install_definitions(
    site: &StageSite<'_>,
    limit: &[String],
    destroy: bool,
    check: bool,
) -> Result<Vec<Change>, Error> {
    if site.repository_server().is_err() {
        return Ok(Vec::new());
    }
    let wanted: BTreeMap<String, String> = if destroy {
        BTreeMap::new()
    } else {
        definitions(site)?
            .into_iter()
            .map(|(s, d)| {
                let text = backup_definition(&s, &d);
                (s, text)
            })
            .collect()
    };
    let touched = |s: &str| limit.is_empty() || limit.iter().any(|l| l == s);
    let repo = Repository::connect(site).await?;
    // The directory is setup-hosts' (backup step); made here too for a
    // site set up before it existed.
    let make = if check || wanted.is_empty() {
        String::new()
    } else {
        format!("[ -d {BACKUP_DEFINITIONS_DIR} ] || install -d -m 755 {BACKUP_DEFINITIONS_DIR}; ")
    };
    let out = repo
        .run(&format!(
            "{make}cd {BACKUP_DEFINITIONS_DIR} 2>/dev/null || exit 0; for f in *; do [ -f \"$f\" ] && printf '%s\\t%s\\n' \"$f\" \"$(sha256sum <\"$f\" | cut -c1-64)\"; done; true"
        ))
        .await?;
    let present: BTreeMap<String, String> = out
        .stdout_text()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(f, h)| (f.to_string(), h.to_string()))
        .collect();
    let mut changes = Vec::new();
    for (service, text) in &wanted {
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
        let action = match present.get(service) {
            Some(h) if *h == hash => continue,
            Some(_) => "update",
            None => "create",
        };
        if !touched(service) {
            continue;
        }
        if !check {
            let mut file = RemoteFile::new(format!("{BACKUP_DEFINITIONS_DIR}/{service}"), 0o644);
            file.sudo = true;
            repo.session
                .put(&file, text.as_bytes())
                .await
                .map_err(Error::provider)?;
        }
        changes.push(Change::new("backup", service.clone(), action).on(repo.host.clone()));
    }
    for service in present.keys() {
        if wanted.contains_key(service) || !touched(service) {
            continue;
        }
        if !check {
            repo.run(&format!(
                "rm -f {}",
                shell_quote(&format!("{BACKUP_DEFINITIONS_DIR}/{service}"))
            ))
            .await?;
        }
        changes.push(Change::new("backup", service.clone(), "remove").on(repo.host.clone()));
    }
    Ok(changes)
}

/// What happened to one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupOutcome {
    /// The service.
    pub service: String,
    /// The backup's name.
    pub name: String,
    /// `ok`, `failed`, or `planned` (`-C`).
    pub status: String,
    /// The file on the repository server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The mother's copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mother_copy: Option<PathBuf>,
    /// Why it failed (the command's own output), or what was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The result of `hive backup` or `hive restore`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// `backup` or `restore`.
    pub action: String,
    /// Whether nothing was done (`-C`).
    pub check_mode: bool,
    /// The repository server.
    pub repository: String,
    /// The backup directory there.
    pub directory: String,
    /// One entry per backup.
    pub results: Vec<BackupOutcome>,
}

impl BackupReport {
    /// The error of the failed backups, naming each service with the
    /// command's own output, or `None` when none failed.
    pub fn error(&self) -> Option<Error> {
        let failed: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.status == "failed")
            .map(|r| {
                format!(
                    "service {}: {} {} failed on {}: {}",
                    r.service,
                    self.action,
                    r.name,
                    self.repository,
                    r.detail.as_deref().unwrap_or("")
                )
            })
            .collect();
        (!failed.is_empty()).then(|| Error::Backup {
            message: failed.join("\n"),
        })
    }
}

/// Which services `-l` names (all with backups when empty), checked.
fn targets(names: &[BackupName], services: &[String]) -> Result<Vec<String>, Error> {
    let mut known: Vec<String> = names.iter().map(|n| n.service.clone()).collect();
    known.dedup();
    for s in services {
        if !known.contains(s) {
            return Err(Error::Site {
                message: format!(
                    "-l {s}: no service with backup_scripts is named so (services with backups: {})",
                    known.join(", ")
                ),
            });
        }
    }
    Ok(if services.is_empty() {
        known
    } else {
        services.to_vec()
    })
}

fn mother_dir(site: &StageSite<'_>) -> PathBuf {
    site.context_dir().join(MOTHER_BACKUPS)
}

/// Parses the backup command's result lines.
fn outcomes(stdout: &str) -> Vec<(String, BackupOutcome)> {
    use base64::Engine as _;
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let [status, action, service, name, file, detail] = f.as_slice() else {
                return None;
            };
            let detail = base64::engine::general_purpose::STANDARD
                .decode(detail)
                .map(|d| String::from_utf8_lossy(&d).trim().to_string())
                .unwrap_or_default();
            Some((
                action.to_string(),
                BackupOutcome {
                    service: service.to_string(),
                    name: name.to_string(),
                    status: status.to_string(),
                    file: Some(file.to_string()).filter(|f| !f.is_empty()),
                    mother_copy: None,
                    detail: Some(detail).filter(|d| !d.is_empty()),
                },
            ))
        })
        .collect()
}

/// Runs the backup command with `args`; its result lines, or its error.
async fn run_command(repo: &Repository, args: &str) -> Result<Vec<BackupOutcome>, Error> {
    let out = repo.run(&format!("{BACKUP_COMMAND} {args}")).await?;
    let results: Vec<BackupOutcome> = outcomes(&out.stdout_text())
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    if out.status != 0 && results.iter().all(|r| r.status != "failed") {
        let hint = if out.status == 127 {
            " (the backup command is not installed there: run `hive setup-hosts -T backup`)"
        } else {
            ""
        };
        return Err(Error::Backup {
            message: format!(
                "{}: {BACKUP_COMMAND} {args} failed with status {}{hint}: {}",
                repo.host,
                out.status,
                out.stderr_text().trim()
            ),
        });
    }
    Ok(results)
}

/// `hive backup`: backs up `services` (every service with backups when
/// empty, and the registry) on the repository server now, and copies the
/// new files to the mother machine. With `check`, says what it would do.
pub async fn backup(
    site: &StageSite<'_>,
    services: &[String],
    check: bool,
) -> Result<BackupReport, Error> {
    let names = backup_names(site)?;
    let targets = targets(&names, services)?;
    let repo = Repository::connect(site).await?;
    let mut report = BackupReport {
        action: "backup".into(),
        check_mode: check,
        repository: repo.host.clone(),
        directory: repo.dir.clone(),
        results: Vec::new(),
    };
    if check {
        report.results = names
            .iter()
            .filter(|n| targets.contains(&n.service))
            .map(|n| BackupOutcome {
                service: n.service.clone(),
                name: n.name.clone(),
                status: "planned".into(),
                file: Some(n.file("<stamp>")),
                mother_copy: None,
                detail: None,
            })
            .collect();
        return Ok(report);
    }
    report.results = run_command(&repo, &format!("-l {}", shell_quote(&targets.join(",")))).await?;
    let local = mother_dir(site);
    for r in report.results.iter_mut().filter(|r| r.status == "ok") {
        let Some(file) = &r.file else { continue };
        let data = repo
            .session
            .get(&format!("{}/{file}", repo.dir), true)
            .await
            .map_err(Error::provider)?;
        let path = local.join(file);
        hive_provider::write_file_atomic(&path, &data, 0o600)
            .map_err(|e| Error::io("write", &path, e))?;
        r.mother_copy = Some(path);
    }
    Ok(report)
}

/// The stamps of `name`'s backups in `files` (file names), oldest first.
fn stamps<'a>(name: &BackupName, files: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = files
        .filter_map(|f| name.stamp_of(f))
        .filter(|s| *s != "latest")
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

fn mother_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `hive restore`: restores `services` (every service with backups when
/// empty, and the registry) from the latest backups, or from the backups
/// of `from` (a stamp `YYYYmmddHHMMSS`). A backup the repository server
/// lacks (a rebuilt site) is sent there from the mother's copy first. The
/// backup command refuses to start while a service has no running
/// container. With `check`, says what it would do.
pub async fn restore(
    site: &StageSite<'_>,
    services: &[String],
    from: Option<&str>,
    check: bool,
) -> Result<BackupReport, Error> {
    let names = backup_names(site)?;
    let targets = targets(&names, services)?;
    let repo = Repository::connect(site).await?;
    let remote = repo.files().await?;
    let local_dir = mother_dir(site);
    let local = mother_files(&local_dir);
    let mut report = BackupReport {
        action: "restore".into(),
        check_mode: check,
        repository: repo.host.clone(),
        directory: repo.dir.clone(),
        results: Vec::new(),
    };
    let mut uploads = Vec::new();
    let mut links = Vec::new();
    for n in names.iter().filter(|n| targets.contains(&n.service)) {
        let has_latest = remote.contains_key(&n.file("latest"));
        let stamp = match from {
            Some(s) => Some(s.to_string()),
            None if has_latest => None,
            None => stamps(n, remote.keys().chain(local.iter())).pop(),
        };
        let file = match &stamp {
            Some(s) => n.file(s),
            None => n.file("latest"),
        };
        let on_remote = remote.contains_key(&file);
        if !on_remote && !local.contains(&file) {
            return Err(Error::Backup {
                message: format!(
                    "service {}: no backup {file} on {} ({}) nor in {}; nothing was restored",
                    n.service,
                    repo.host,
                    repo.dir,
                    local_dir.display()
                ),
            });
        }
        let detail = if on_remote {
            None
        } else {
            uploads.push(file.clone());
            Some(format!("sent from {}", local_dir.join(&file).display()))
        };
        // The newest backup becomes the latest where no link says so.
        if stamp.is_some() && from.is_none() {
            links.push((n.file("latest"), file.clone()));
        }
        report.results.push(BackupOutcome {
            service: n.service.clone(),
            name: n.name.clone(),
            status: "planned".into(),
            file: Some(file),
            mother_copy: None,
            detail,
        });
    }
    if check {
        return Ok(report);
    }
    let admin = site.setup_hosts_params()?.admin;
    if !uploads.is_empty() {
        repo.run(&format!(
            "install -d -m 700 -o {0} -g \"$(id -gn {0})\" {1}",
            shell_quote(&admin),
            shell_quote(&repo.dir)
        ))
        .await?;
    }
    for file in &uploads {
        let path = local_dir.join(file);
        let data = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let mut remote_file = RemoteFile::new(format!("{}/{file}", repo.dir), 0o600);
        remote_file.sudo = true;
        remote_file.owner = Some(admin.clone());
        repo.session
            .put(&remote_file, &data)
            .await
            .map_err(Error::provider)?;
    }
    for (link, file) in &links {
        repo.run(&format!(
            "ln -sfn {} {}",
            shell_quote(file),
            shell_quote(&format!("{}/{link}", repo.dir))
        ))
        .await?;
    }
    let stamp = from.unwrap_or("latest");
    let done = run_command(
        &repo,
        &format!(
            "-r -t {} -l {}",
            shell_quote(stamp),
            shell_quote(&targets.join(","))
        ),
    )
    .await?;
    for r in &mut report.results {
        match done
            .iter()
            .find(|d| d.service == r.service && d.name == r.name)
        {
            Some(d) => {
                r.status = d.status.clone();
                r.file = d.file.clone().or(r.file.take());
                if d.detail.is_some() {
                    r.detail = d.detail.clone();
                }
            }
            None => r.status = "failed".into(),
        }
    }
    Ok(report)
}

/// One backup file, on the repository server, the mother machine or both.
#[derive(Debug, Clone, Serialize)]
pub struct BackupFile {
    /// The service.
    pub service: String,
    /// The backup's name.
    pub name: String,
    /// When it was taken (`YYYYmmddHHMMSS`).
    pub stamp: String,
    /// The file name.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether the repository server has it.
    pub on_repository: bool,
    /// Whether the mother machine has a copy.
    pub on_mother: bool,
}

/// `hive backup --list`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupListing {
    /// The repository server.
    pub repository: String,
    /// The backup directory there.
    pub directory: String,
    /// Why the repository server could not be read (its files are then
    /// missing from the list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_error: Option<String>,
    /// The mother's copies.
    pub mother_directory: PathBuf,
    /// What the stage backs up.
    pub names: Vec<BackupName>,
    /// The backups, per name, oldest first.
    pub backups: Vec<BackupFile>,
}

/// `hive backup --list`: the backups on the repository server and on the
/// mother machine.
pub async fn list(site: &StageSite<'_>) -> Result<BackupListing, Error> {
    let names = backup_names(site)?;
    let host = site.repository_server()?;
    let (remote, directory, repository_error) = match Repository::connect(site).await {
        Ok(repo) => match repo.files().await {
            Ok(f) => (f, repo.dir, None),
            Err(e) => (BTreeMap::new(), repo.dir, Some(e.to_string())),
        },
        Err(e) => (BTreeMap::new(), String::new(), Some(e.to_string())),
    };
    let mother_directory = mother_dir(site);
    let local = mother_files(&mother_directory);
    let mut backups = Vec::new();
    for n in &names {
        for stamp in stamps(n, remote.keys().chain(local.iter())) {
            let file = n.file(&stamp);
            let size = remote.get(&file).copied().unwrap_or_else(|| {
                std::fs::metadata(mother_directory.join(&file))
                    .map(|m| m.len())
                    .unwrap_or(0)
            });
            backups.push(BackupFile {
                service: n.service.clone(),
                name: n.name.clone(),
                stamp,
                on_repository: remote.contains_key(&file),
                on_mother: local.contains(&file),
                file,
                size,
            });
        }
    }
    Ok(BackupListing {
        repository: host,
        directory,
        repository_error,
        mother_directory,
        names,
        backups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_read_from_file_names() {
        let n = BackupName {
            service: "db".into(),
            name: "my-db".into(),
            ext: "sql.gz".into(),
        };
        assert_eq!(
            n.stamp_of("backup-my-db-20261207010000.sql.gz"),
            Some("20261207010000")
        );
        assert_eq!(n.stamp_of("backup-my-db-latest.sql.gz"), Some("latest"));
        assert_eq!(n.stamp_of("backup-my-db-x-20261207010000.sql.gz"), None);
        assert_eq!(n.stamp_of("backup-my-db-20261207010000.tar.gz"), None);
        let files = [
            "backup-my-db-20261207010000.sql.gz".to_string(),
            "backup-my-db-20261206010000.sql.gz".to_string(),
            "backup-my-db-latest.sql.gz".to_string(),
        ];
        assert_eq!(
            stamps(&n, files.iter()),
            vec!["20261206010000", "20261207010000"]
        );
    }

    #[test]
    fn result_lines_are_parsed() {
        use base64::Engine as _;
        let detail =
            base64::engine::general_purpose::STANDARD.encode("backup_command `x` failed: boom\n");
        let out = format!(
            "ok\tbackup\tdb\tdb\tbackup-db-20261207010000.tar.gz\t\nfailed\tbackup\tweb\tweb\t\t{detail}\nnoise\n"
        );
        let r = outcomes(&out);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].1.file.as_deref(),
            Some("backup-db-20261207010000.tar.gz")
        );
        assert_eq!(r[1].1.status, "failed");
        assert_eq!(
            r[1].1.detail.as_deref(),
            Some("backup_command `x` failed: boom")
        );
        let report = BackupReport {
            action: "backup".into(),
            check_mode: false,
            repository: "repo".into(),
            directory: "/home/admin/backup".into(),
            results: r.into_iter().map(|(_, o)| o).collect(),
        };
        let e = report.error().unwrap().to_string();
        assert!(
            e.contains("service web: backup web failed on repo: backup_command `x` failed: boom"),
            "{e}"
        );
    }
}
