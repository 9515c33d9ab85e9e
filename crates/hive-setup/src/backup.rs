//! The backup step: the original's `backup-tools` on the repository server
//! (the backup command, its configuration and a daily run at 01:00), and
//! the format of the per-service definitions deploy-services writes next
//! to it (the original's `service-backup`).

use super::item::Item;
use super::os::OsFamily;
use super::params::{Server, ServerRole, SetupHostsParams};
use hive_model::shell_quote;

/// The backup command on the repository server (`hive-backup -h` says how
/// it is used); `hive backup` and `hive restore` run it over SSH.
pub const BACKUP_COMMAND: &str = "/usr/local/sbin/hive-backup";

/// Where deploy-services writes the backup definitions of the services,
/// one file per service (see [`backup_definition`]).
pub const BACKUP_DEFINITIONS_DIR: &str = "/var/lib/hive-backup.d";

/// The name of the site registry's backup.
pub const REGISTRY_BACKUP: &str = "hive-registry";

const SCRIPT: &str = include_str!("../assets/hive-backup.sh");
const CONFIG: &str = "/etc/hive/backup.conf";
const UNIT: &str = "/etc/systemd/system/hive-backup.service";
const TIMER: &str = "/etc/systemd/system/hive-backup.timer";
const CRON: &str = "/etc/cron.d/hive-backup";
/// Reloads systemd's units where systemd runs.
const RELOAD: &str = "[ ! -d /run/systemd/system ] || systemctl daemon-reload";

/// One backup of a service: a `backup_scripts` entry, as hive-swarm's
/// service definition holds it.
pub use hive_swarm::definition::BackupScript;

/// The extension of a backup's files (`ext`, default `tar.gz`).
pub fn backup_ext(b: &BackupScript) -> &str {
    b.ext.as_deref().unwrap_or("tar.gz")
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn field(v: Option<&str>) -> String {
    v.map(b64).unwrap_or_else(|| "-".into())
}

/// The definition file of `service` for the backup command: one line per
/// backup, every field base64-encoded (so that commands keep their quotes
/// and newlines), `-` for an absent one.
pub fn backup_definition(service: &str, definitions: &[BackupScript]) -> String {
    let mut s = format!("# Backups of service {service}, written by hive deploy-services.\n");
    for d in definitions {
        let batch = d.batch_scripts.join("\n");
        let fields = [
            field(Some(&d.name)),
            field(Some(backup_ext(d))),
            field(d.cleanup_days_before.map(|n| n.to_string()).as_deref()),
            field(d.directory.as_deref()),
            field(d.backup_command.as_deref()),
            field(d.backup_file.as_deref()),
            field(d.restore_command.as_deref()),
            field(d.restore_file.as_deref()),
            field(Some(batch.as_str()).filter(|b| !b.is_empty())),
        ];
        s.push_str(&fields.join(" "));
        s.push('\n');
    }
    s
}

/// The home of the admin user on the servers (the original's
/// `hive_home_dir`); the backups are in its `backup/`.
pub fn admin_home(admin: &str) -> String {
    if admin == "root" {
        "/root".into()
    } else {
        format!("/home/{admin}")
    }
}

fn config(p: &SetupHostsParams) -> String {
    let hives: Vec<&str> = p.hives().map(|s| s.name.as_str()).collect();
    format!(
        "# Managed by hive setup-hosts (backup step).\nHIVE_BACKUP_USER={}\nHIVE_BACKUP_HOME={}\nHIVE_BACKUP_HIVES={}\nHIVE_REGISTRY_CLEANUP_DAYS={}\n",
        shell_quote(&p.admin),
        shell_quote(&admin_home(&p.admin)),
        shell_quote(&hives.join(" ")),
        p.registry_backup_cleanup_days,
    )
}

fn unit() -> String {
    format!(
        "# Managed by hive setup-hosts (backup step).\n[Unit]\nDescription=Backup of the site's services (hive)\nAfter=docker.service\n\n[Service]\nType=oneshot\nExecStart={BACKUP_COMMAND}\n"
    )
}

const TIMER_UNIT: &str = "# Managed by hive setup-hosts (backup step).\n[Unit]\nDescription=Daily backup of the site's services (hive)\n\n[Timer]\nOnCalendar=*-*-* 01:00:00\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n";

/// The backup step's items on a server: on the repository server, the
/// backup command, its configuration, the definitions directory, and the
/// daily run at 01:00 (a systemd timer when systemd runs the server, a
/// cron entry otherwise). Nothing on the other servers.
pub(crate) fn backup_items(p: &SetupHostsParams, server: &Server, os: OsFamily) -> Vec<Item> {
    if server.role != ServerRole::Repository {
        return Vec::new();
    }
    let cron = format!(
        "# Managed by hive setup-hosts (backup step).\n0 1 * * * root {BACKUP_COMMAND} >>/var/log/hive-backup.log 2>&1\n"
    );
    let cron_b64 = b64(&cron);
    let cron_package = match os {
        OsFamily::Debian => "cron",
        OsFamily::RedHat { .. } => "cronie",
    };
    let install_cron = os.install_packages(&[cron_package]);
    vec![
        Item::file(BACKUP_COMMAND, SCRIPT, 0o755),
        Item::file(CONFIG, config(p), 0o644),
        Item::state(
            format!("directory {BACKUP_DEFINITIONS_DIR}"),
            format!("[ \"$(stat -c %a {BACKUP_DEFINITIONS_DIR} 2>/dev/null)\" = 755 ]"),
            format!("install -d -m 755 {BACKUP_DEFINITIONS_DIR}"),
        ),
        Item::file(UNIT, unit(), 0o644).notify(RELOAD),
        Item::file(TIMER, TIMER_UNIT, 0o644).notify(RELOAD),
        Item::state(
            "daily backup at 01:00",
            format!(
                "if [ -d /run/systemd/system ]; then systemctl is-enabled -q hive-backup.timer && systemctl is-active -q hive-backup.timer; \
else [ \"$(cat {CRON} 2>/dev/null | base64 -w0)\" = {cron_b64} ] && {{ command -v cron || command -v crond; }} >/dev/null; fi"
            ),
            format!(
                "if [ -d /run/systemd/system ]; then systemctl daemon-reload; systemctl enable -q --now hive-backup.timer; \
else {{ command -v cron || command -v crond; }} >/dev/null || {{ {install_cron}; }}; echo {cron_b64} | base64 -d >{CRON}; chmod 644 {CRON}; fi"
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_keep_commands_intact() {
        let d = BackupScript {
            name: "db".into(),
            backup_command: Some("mysqldump -p'x' db | gzip".into()),
            batch_scripts: vec!["a".into(), "b c".into()],
            ..Default::default()
        };
        let text = backup_definition("pdnsdb", &[d]);
        let line = text.lines().nth(1).unwrap();
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 9, "{line}");
        assert_eq!(fields[1], b64("tar.gz"));
        assert_eq!(fields[3], "-");
        assert_eq!(fields[4], b64("mysqldump -p'x' db | gzip"));
        assert_eq!(fields[8], b64("a\nb c"));
    }

    #[test]
    fn only_the_repository_server_gets_the_tools() {
        let server = |name: &str, role| Server {
            name: name.into(),
            role,
            private_ip: "10.0.0.1".parse().unwrap(),
            groups: Vec::new(),
        };
        let servers = vec![
            server("h1", ServerRole::Hive),
            server("r", ServerRole::Repository),
        ];
        let p = SetupHostsParams::new("s", "site", "/tmp", servers.clone());
        assert!(backup_items(&p, &servers[0], OsFamily::Debian).is_empty());
        let items = backup_items(&p, &servers[1], OsFamily::Debian);
        let names: Vec<String> = items.iter().map(Item::describe).collect();
        assert!(
            names.contains(&format!("file {BACKUP_COMMAND}")),
            "{names:?}"
        );
        assert!(
            config(&p).contains("HIVE_BACKUP_HIVES=h1\n"),
            "{}",
            config(&p)
        );
        assert!(TIMER_UNIT.contains("OnCalendar=*-*-* 01:00:00"));
    }
}
