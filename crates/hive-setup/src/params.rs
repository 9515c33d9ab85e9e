//! The input of the setup-hosts phase: the stage's servers and the settings
//! the steps need, with the original's defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::error::{Result, SetupHostsError};

/// What a server is for, and one server of the stage: hive-model's, shared
/// with hive-swarm. setup-hosts prepares a server whose role is `Hive` or
/// `HiveAndRepository` as a hive, and the one whose role is `Repository` as
/// the repository server.
pub use hive_model::{Server, ServerRole};

/// A login user (`hive_users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiveUser {
    /// User id (1 to 2147483647).
    pub uid: u32,
    /// Primary group name (a key of `hive_user_groups`).
    pub group: String,
    /// Public key allowed to log in.
    pub id_rsa_pub: String,
}

/// A group of login users (`hive_user_groups`); members may sudo without
/// password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserGroup {
    /// Group id (1 to 2147483647).
    pub gid: u32,
}

/// An external registry every hive logs in to (`hive_ext_repositories`).
/// Its `Debug` and `Display` forms leave the password out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtRepository {
    /// Registry address, e.g. `registry.example.com:443`.
    pub repository: String,
    /// Login name.
    pub login_user: String,
    /// Password (never logged).
    pub password: String,
}

impl std::fmt::Debug for ExtRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtRepository")
            .field("repository", &self.repository)
            .field("login_user", &self.login_user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Display for ExtRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} as {}", self.repository, self.login_user)
    }
}

fn default_sshd_port() -> u16 {
    22
}
fn default_syslog_port() -> u16 {
    10514
}
fn default_registry_port() -> u16 {
    5000
}
fn default_registry_image() -> String {
    "hive/registry:2".to_string()
}
fn default_registry_user() -> String {
    "hive".to_string()
}
fn default_admin() -> String {
    "admin".to_string()
}

/// Everything the setup-hosts phase needs, mapped from the inventory by the
/// CLI. Field names follow the original's `hive_*` variables; defaults are
/// the original's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupHostsParams {
    /// The stage (`private`, `staging`, `production`).
    pub stage: String,
    /// The site's name (`hive_name`), used in certificate subjects.
    pub hive_name: String,
    /// The stage's context directory on the mother machine: the CA, the
    /// certificates and the registry password live there.
    pub context_dir: PathBuf,
    /// The stage's servers; the first hive is the swarm's first manager, the
    /// first repository server runs the registry and the log collector.
    pub servers: Vec<Server>,
    /// `hive_timezone`, e.g. `Asia/Tokyo`; left alone when unset.
    #[serde(default)]
    pub timezone: Option<String>,
    /// `hive_locale`, e.g. `ja_JP.UTF-8` (a leading `LANG=` is accepted);
    /// left alone when unset.
    #[serde(default)]
    pub locale: Option<String>,
    /// `hive_ntp_servers`; chrony is configured only when not empty.
    #[serde(default)]
    pub ntp_servers: Vec<String>,
    /// `hive_users`, by login name.
    #[serde(default)]
    pub users: BTreeMap<String, HiveUser>,
    /// `hive_user_groups`, by group name.
    #[serde(default)]
    pub user_groups: BTreeMap<String, UserGroup>,
    /// `hive_ssh_source_ips`: when not empty, sshd accepts connections only
    /// from these addresses or networks (and the stage's servers).
    #[serde(default)]
    pub ssh_source_ips: Vec<String>,
    /// `hive_sshd_port` (default 22).
    #[serde(default = "default_sshd_port")]
    pub sshd_port: u16,
    /// `internal_cidr`: Docker's internal networks are carved from it (see
    /// [`InternalNetworks`](super::InternalNetworks)); Docker's defaults when
    /// unset.
    #[serde(default)]
    pub internal_cidr: Option<Ipv4Net>,
    /// `hive_tls_logging`: services' logs travel over TCP+TLS instead of UDP.
    #[serde(default)]
    pub tls_logging: bool,
    /// `hive_syslog_port` (default 10514).
    #[serde(default = "default_syslog_port")]
    pub syslog_port: u16,
    /// `hive_registry_port` (default 5000).
    #[serde(default = "default_registry_port")]
    pub registry_port: u16,
    /// The registry's image (default `hive/registry:2`, built by
    /// `scripts/images/registry.sh`).
    #[serde(default = "default_registry_image")]
    pub registry_image: String,
    /// A `docker save` archive of [`registry_image`](Self::registry_image)
    /// on the mother machine, loaded on the repository server when the image
    /// is missing there; when unset the server pulls it.
    #[serde(default)]
    pub registry_image_archive: Option<PathBuf>,
    /// `hive_docker_login_user` (default `hive`).
    #[serde(default = "default_registry_user")]
    pub registry_user: String,
    /// `hive_ext_repositories`.
    #[serde(default)]
    pub ext_repositories: Vec<ExtRepository>,
    /// `hive_admin`: the login user added to the `docker` group (default
    /// `admin`).
    #[serde(default = "default_admin")]
    pub admin: String,
    /// Refuse root logins over SSH (the original always does; default true).
    #[serde(default = "default_true")]
    pub refuse_root_login: bool,
    /// `hive_registry_backup_cleanup_days_before`: days the registry's
    /// backups are kept (default 3, as the original).
    #[serde(default = "default_registry_backup_cleanup_days")]
    pub registry_backup_cleanup_days: u32,
}

fn default_registry_backup_cleanup_days() -> u32 {
    3
}

fn default_true() -> bool {
    true
}

impl SetupHostsParams {
    /// Parameters with the original's defaults for `servers`.
    pub fn new(
        stage: impl Into<String>,
        hive_name: impl Into<String>,
        context_dir: impl Into<PathBuf>,
        servers: Vec<Server>,
    ) -> Self {
        SetupHostsParams {
            stage: stage.into(),
            hive_name: hive_name.into(),
            context_dir: context_dir.into(),
            servers,
            timezone: None,
            locale: None,
            ntp_servers: Vec::new(),
            users: BTreeMap::new(),
            user_groups: BTreeMap::new(),
            ssh_source_ips: Vec::new(),
            sshd_port: default_sshd_port(),
            internal_cidr: None,
            tls_logging: false,
            syslog_port: default_syslog_port(),
            registry_port: default_registry_port(),
            registry_image: default_registry_image(),
            registry_image_archive: None,
            registry_user: default_registry_user(),
            ext_repositories: Vec::new(),
            admin: default_admin(),
            refuse_root_login: true,
            registry_backup_cleanup_days: default_registry_backup_cleanup_days(),
        }
    }

    /// The hives, in inventory order.
    pub fn hives(&self) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(|s| s.role.is_hive())
    }

    /// The first hive: where the swarm is initialised.
    pub fn first_hive(&self) -> Option<&Server> {
        self.hives().next()
    }

    /// The repository server.
    pub fn repository(&self) -> Option<&Server> {
        self.servers
            .iter()
            .find(|s| s.role == ServerRole::Repository)
    }

    /// The registry's address as clients name it, `<repository>:<port>`.
    pub fn registry_address(&self) -> Option<String> {
        self.repository()
            .map(|r| format!("{}:{}", r.name, self.registry_port))
    }

    /// Check what the steps rely on.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, reason: String| SetupHostsError::Params {
            key: key.to_string(),
            reason,
        };
        if self.servers.is_empty() {
            return Err(bad("servers", "the stage has no server".into()));
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.servers {
            if s.name.is_empty()
                || !s
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(bad(
                    "servers.name",
                    format!("{:?}: must be letters, digits, '-' and '.'", s.name),
                ));
            }
            if !names.insert(&s.name) {
                return Err(bad("servers.name", format!("{} appears twice", s.name)));
            }
        }
        for (name, user) in &self.users {
            if !self.user_groups.contains_key(&user.group) {
                return Err(bad(
                    "hive_users.group",
                    format!(
                        "user {name}: group {} is not in hive_user_groups",
                        user.group
                    ),
                ));
            }
            if user.uid == 0 || user.uid > 2_147_483_647 {
                return Err(bad(
                    "hive_users.uid",
                    format!("user {name}: must be 1 to 2147483647"),
                ));
            }
        }
        for (name, g) in &self.user_groups {
            if g.gid == 0 || g.gid > 2_147_483_647 {
                return Err(bad(
                    "hive_user_groups.gid",
                    format!("group {name}: must be 1 to 2147483647"),
                ));
            }
        }
        if let Some(tz) = &self.timezone {
            if tz.is_empty() || tz.contains("..") || tz.starts_with('/') {
                return Err(bad(
                    "hive_timezone",
                    format!("{tz:?}: must be a zone name such as Asia/Tokyo"),
                ));
            }
        }
        if let Some(cidr) = &self.internal_cidr {
            if cidr.prefix_len() > 24 {
                return Err(bad(
                    "internal_cidr",
                    format!("{cidr}: must be /24 or larger, it is split in eighths"),
                ));
            }
        }
        Ok(())
    }

    /// The locale name without a leading `LANG=`.
    pub fn locale_name(&self) -> Option<&str> {
        self.locale
            .as_deref()
            .map(|l| l.strip_prefix("LANG=").unwrap_or(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SetupHostsParams {
        SetupHostsParams::new(
            "private",
            "pdns",
            "/tmp/ctx",
            vec![Server {
                name: "p-hive0.pdns".into(),
                role: ServerRole::Hive,
                private_ip: "10.0.0.10".parse().unwrap(),
                groups: vec![],
            }],
        )
    }

    #[test]
    fn invalid_parameters_name_the_key_and_what_is_valid() {
        fn check(edit: impl FnOnce(&mut SetupHostsParams), expected: &[&str]) {
            let mut p = base();
            edit(&mut p);
            let e = p.validate().unwrap_err().to_string();
            for part in expected {
                assert!(e.contains(part), "{part:?} in {e:?}");
            }
        }
        check(|p| p.servers.clear(), &["servers", "no server"]);
        check(
            |p| p.servers[0].name = "bad name".into(),
            &["servers.name", "\"bad name\"", "letters, digits"],
        );
        check(
            |p| {
                let s = p.servers[0].clone();
                p.servers.push(s);
            },
            &["servers.name", "appears twice"],
        );
        check(
            |p| {
                p.users.insert(
                    "alice".into(),
                    HiveUser {
                        uid: 1000,
                        group: "ops".into(),
                        id_rsa_pub: "k".into(),
                    },
                );
            },
            &["hive_users.group", "alice", "ops", "hive_user_groups"],
        );
        check(
            |p| {
                p.user_groups.insert("ops".into(), UserGroup { gid: 0 });
            },
            &["hive_user_groups.gid", "1 to 2147483647"],
        );
        check(
            |p| p.timezone = Some("../etc/passwd".into()),
            &["hive_timezone", "Asia/Tokyo"],
        );
        check(
            |p| p.internal_cidr = Some("10.0.0.0/26".parse().unwrap()),
            &["internal_cidr", "/24 or larger"],
        );
        assert!(base().validate().is_ok());
    }

    #[test]
    fn defaults_match_the_original_and_unknown_keys_are_refused() {
        let p: SetupHostsParams = serde_json::from_value(serde_json::json!({
            "stage": "private", "hive_name": "pdns", "context_dir": "/tmp/c",
            "servers": [{"name": "p-hive0.pdns", "role": "hive", "private_ip": "10.0.0.10"}]
        }))
        .unwrap();
        assert_eq!(p.sshd_port, 22);
        assert_eq!(p.syslog_port, 10514);
        assert_eq!(p.registry_port, 5000);
        assert_eq!(p.registry_user, "hive");
        assert_eq!(p.admin, "admin");
        assert!(p.refuse_root_login && !p.tls_logging);
        let e = serde_json::from_value::<SetupHostsParams>(serde_json::json!({
            "stage": "private", "hive_name": "pdns", "context_dir": "/tmp/c", "servers": [],
            "sshd_prot": 2222
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("sshd_prot") && e.contains("sshd_port"), "{e}");
        let mut p = base();
        p.ext_repositories.push(ExtRepository {
            repository: "registry.example.com:443".into(),
            login_user: "deployer".into(),
            password: "pw-Never-Shown".into(),
        });
        for shown in [format!("{p:?}"), p.ext_repositories[0].to_string()] {
            assert!(shown.contains("registry.example.com:443"), "{shown}");
            assert!(!shown.contains("pw-Never-Shown"), "{shown}");
        }
        p.locale = Some("LANG=ja_JP.UTF-8".into());
        assert_eq!(p.locale_name(), Some("ja_JP.UTF-8"));
        assert_eq!(p.registry_address(), None);
    }
}
