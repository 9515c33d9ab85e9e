//! Plain descriptions of a stage and its servers: what a provider is given.
//!
//! These types are independent of the inventory crate on purpose: the CLI
//! maps the inventory's model into them, and a custom provider only needs
//! this crate.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ProviderError, Result};

/// What a server is for: hive-model's, shared with the inventory and
/// setup-hosts. A provider builds a `HiveAndRepository` server as the
/// repository server.
pub use hive_model::ServerRole;

/// One server of a stage, with its computed private address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Inventory name, e.g. `p-hive0.pdns`; also its ssh_config `Host`.
    pub name: String,
    /// Hive or repository server.
    pub role: ServerRole,
    /// Private address in the stage's `cidr`.
    pub private_ip: Ipv4Addr,
    /// Memory in MiB (`memory_size` / `repository_memory_size`).
    #[serde(default)]
    pub memory_size: Option<u64>,
    /// Virtual CPUs (`cpus`).
    #[serde(default)]
    pub cpus: Option<u32>,
    /// Boot disk in GiB (`disk_size` / `repository_disk_size`).
    #[serde(default)]
    pub disk_size: Option<u64>,
    /// Size of the DRBD-mirrored disk in GiB (`mirrored_disk_size`), when
    /// this server has one.
    #[serde(default)]
    pub mirrored_disk_size: Option<u64>,
    /// The name of the subnet it is placed in (one of
    /// [`StageSpec::subnets`]), for providers that create subnets.
    #[serde(default)]
    pub subnet: Option<String>,
    /// Its availability zone, when the stage has a region.
    #[serde(default)]
    pub zone: Option<String>,
}

impl ServerSpec {
    /// A server with only the required fields set.
    pub fn new(name: impl Into<String>, role: ServerRole, private_ip: Ipv4Addr) -> Self {
        ServerSpec {
            name: name.into(),
            role,
            private_ip,
            memory_size: None,
            cpus: None,
            disk_size: None,
            mirrored_disk_size: None,
            subnet: None,
            zone: None,
        }
    }
}

/// One subnet of a stage (`subnets` in the inventory): the servers are
/// spread over the subnets in turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetSpec {
    /// Its name (`name`, or the one the inventory gives it).
    pub name: String,
    /// Its network (`cidr`), inside the stage's.
    pub cidr: Ipv4Net,
    /// Its availability zone (`available_zone`), when given.
    #[serde(default)]
    pub zone: Option<String>,
}

/// The administrator account hive logs in with (`hive_admin`, default
/// `admin`; the vagrant provider uses `vagrant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminAccount {
    /// User name.
    pub user: String,
    /// Group given passwordless sudo; defaults to the user name.
    #[serde(default)]
    pub group: Option<String>,
    /// Fixed uid, when the site needs one.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Fixed gid, when the site needs one.
    #[serde(default)]
    pub gid: Option<u32>,
}

impl AdminAccount {
    /// The account `user` with a group of the same name.
    pub fn new(user: impl Into<String>) -> Self {
        AdminAccount {
            user: user.into(),
            group: None,
            uid: None,
            gid: None,
        }
    }

    /// The sudo group (the user name when not set).
    pub fn group_name(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.user)
    }
}

impl Default for AdminAccount {
    fn default() -> Self {
        AdminAccount::new("admin")
    }
}

/// A secret string (a root password): never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; use only where it is sent to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything a provider needs to know about one stage.
///
/// ```
/// use hive_provider::{StageSpec, ServerSpec, ServerRole};
/// let mut stage = StageSpec::new("pdns", "private", "docker", "172.31.240.0/24".parse().unwrap(), ".hive/private");
/// stage.servers.push(ServerSpec::new("p-hive0.pdns", ServerRole::Hive, "172.31.240.10".parse().unwrap()));
/// stage.servers.push(ServerSpec::new("p-hive1.pdns", ServerRole::Repository, "172.31.240.11".parse().unwrap()));
/// assert_eq!(stage.repository_server().unwrap().name, "p-hive1.pdns");
/// assert!(stage.private_key_path().ends_with("id_ed25519"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// The hive (site) name, e.g. `pdns`.
    pub site: String,
    /// The stage name: `private`, `staging` or `production`.
    pub stage: String,
    /// The provider named by the stage.
    pub provider: String,
    /// The stage's network (`cidr`).
    pub cidr: Ipv4Net,
    /// Its servers, hives first and the repository server last.
    pub servers: Vec<ServerSpec>,
    /// The admin account.
    #[serde(default)]
    pub admin: AdminAccount,
    /// `root_password`: log in once as root with it to create the admin
    /// account (prepared servers).
    #[serde(default)]
    pub root_password: Option<Secret>,
    /// The stage's context directory, `.hive/<stage>`: ssh_config,
    /// known_hosts, the key pair and provider files live there.
    pub context_dir: PathBuf,
    /// The admin's private key; `<context_dir>/id_ed25519` when not set.
    #[serde(default)]
    pub private_key: Option<PathBuf>,
    /// Provider-specific attributes of the stage (`ip_address_list`,
    /// `bridge`, `image`, ...). Each provider reads the keys it knows and
    /// refuses the others.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// The port sshd is wanted on (`hive_sshd_port`, default 22).
    /// setup-hosts moves sshd there; build-infra tries it first and falls
    /// back to 22 (a fresh server), for servers the provider reaches on
    /// port 22.
    #[serde(default = "default_sshd_port")]
    pub sshd_port: u16,
    /// The stage's subnets, in the inventory's order.
    #[serde(default)]
    pub subnets: Vec<SubnetSpec>,
    /// The inventory variables the provider asked for with
    /// [`Provider::variables`](crate::Provider::variables), as rendered for
    /// the stage; a variable that is not defined is absent.
    #[serde(default)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// `hive_timezone`: the servers' time zone, for a provider that installs
    /// their operating system (kickstart); `None` when the project sets none.
    #[serde(default)]
    pub timezone: Option<String>,
}

fn default_sshd_port() -> u16 {
    22
}

impl StageSpec {
    /// A stage without servers or attributes, admin `admin`.
    pub fn new(
        site: impl Into<String>,
        stage: impl Into<String>,
        provider: impl Into<String>,
        cidr: Ipv4Net,
        context_dir: impl Into<PathBuf>,
    ) -> Self {
        StageSpec {
            site: site.into(),
            stage: stage.into(),
            provider: provider.into(),
            cidr,
            servers: Vec::new(),
            admin: AdminAccount::default(),
            root_password: None,
            context_dir: context_dir.into(),
            private_key: None,
            attributes: BTreeMap::new(),
            sshd_port: default_sshd_port(),
            subnets: Vec::new(),
            variables: BTreeMap::new(),
            timezone: None,
        }
    }

    /// The ports of the list variable `name` (each a number or a string,
    /// as the inventory renders them), in order; none when it is unset.
    /// The error says what is wrong with the value, for the provider's own
    /// error naming the stage and `name`.
    pub fn port_list(&self, name: &str) -> std::result::Result<Vec<u16>, String> {
        let Some(v) = self.variables.get(name) else {
            return Ok(Vec::new());
        };
        let items = v
            .as_array()
            .ok_or_else(|| format!("must be a list of ports, got {v}"))?;
        items
            .iter()
            .map(|p| {
                let port = match p {
                    serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                    serde_json::Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                };
                port.ok_or_else(|| format!("{p} is not a port number"))
            })
            .collect()
    }

    /// The admin's private key file.
    pub fn private_key_path(&self) -> PathBuf {
        self.private_key
            .clone()
            .unwrap_or_else(|| self.context_dir.join("id_ed25519"))
    }

    /// The admin's public key file (private key path + `.pub`).
    pub fn public_key_path(&self) -> PathBuf {
        let mut p = self.private_key_path().into_os_string();
        p.push(".pub");
        PathBuf::from(p)
    }

    /// `<context_dir>/ssh_config`.
    pub fn ssh_config_path(&self) -> PathBuf {
        self.context_dir.join("ssh_config")
    }

    /// `<context_dir>/known_hosts`.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.context_dir.join("known_hosts")
    }

    /// Each server reached at its private address on `port`, as the admin
    /// with the stage key (the endpoints of providers whose servers sit on
    /// the stage's network).
    pub fn private_endpoints(&self, port: u16) -> Vec<Endpoint> {
        self.servers
            .iter()
            .map(|s| Endpoint {
                name: s.name.clone(),
                role: s.role,
                address: s.private_ip.to_string(),
                port,
                user: self.admin.user.clone(),
                key: self.private_key_path(),
            })
            .collect()
    }

    /// The repository server (the last server with that role).
    pub fn repository_server(&self) -> Option<&ServerSpec> {
        self.servers.iter().rev().find(|s| s.role.is_repository())
    }

    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<&ServerSpec> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// Read the provider-specific attributes into `T` (a
    /// `deny_unknown_fields` struct), with a message naming the stage, the
    /// key and the accepted keys.
    pub fn provider_attributes<T: DeserializeOwned>(&self, accepted: &[&str]) -> Result<T> {
        let map: serde_json::Map<String, serde_json::Value> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
            let msg = e.to_string();
            let key = msg
                .split('`')
                .nth(1)
                .map(str::to_string)
                .unwrap_or_else(|| "attributes".to_string());
            ProviderError::InvalidStage {
                stage: self.stage.clone(),
                key,
                message: format!(
                    "{msg}; provider {} accepts: {}",
                    self.provider,
                    if accepted.is_empty() {
                        "no provider-specific attributes".to_string()
                    } else {
                        accepted.join(", ")
                    }
                ),
            }
        })
    }

    /// The error of a stage attribute `key` a provider cannot use.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ProviderError {
        ProviderError::invalid_stage(&self.stage, key, message)
    }

    /// The ports of list variable `name` (see [`StageSpec::port_list`]),
    /// refused as an invalid attribute `name`.
    pub fn ports(&self, name: &str) -> Result<Vec<u16>> {
        self.port_list(name)
            .map_err(|message| self.invalid(name, message))
    }

    /// The inventory variable `name` when it is a non-empty string.
    pub fn text_variable(&self, name: &str) -> Option<String> {
        self.variables
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Check what every provider needs: unique server names, addresses
    /// unique and inside `cidr`, at least one server.
    pub fn check_common(&self) -> Result<()> {
        let invalid = |key: &str, message: String| self.invalid(key, message);
        if self.servers.is_empty() {
            return Err(invalid("servers", "the stage has no server".into()));
        }
        if self.sshd_port == 0 {
            return Err(invalid(
                "hive_sshd_port",
                "must be a port number 1-65535, got 0".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        let mut ips = std::collections::HashSet::new();
        for s in &self.servers {
            if !names.insert(&s.name) {
                return Err(invalid(
                    "servers",
                    format!("server name {} appears twice", s.name),
                ));
            }
            if !ips.insert(s.private_ip) {
                return Err(invalid(
                    "ip_address_list",
                    format!("address {} is given to two servers", s.private_ip),
                ));
            }
        }
        Ok(())
    }

    /// Servers whose address is outside `cidr` (some providers require
    /// every address inside it).
    pub fn check_addresses_in_cidr(&self) -> Result<()> {
        for s in &self.servers {
            if !self.cidr.contains(&s.private_ip) {
                return Err(ProviderError::InvalidStage {
                    stage: self.stage.clone(),
                    key: "cidr".into(),
                    message: format!(
                        "server {} has address {} outside the stage network {}",
                        s.name, s.private_ip, self.cidr
                    ),
                });
            }
        }
        Ok(())
    }
}

/// How hive reaches one server over SSH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Server name (the ssh_config `Host`).
    pub name: String,
    /// Its role.
    pub role: ServerRole,
    /// Address to connect to.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private key file.
    pub key: PathBuf,
}

impl Endpoint {
    /// `address:port` for messages.
    pub fn socket_text(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }
}

pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    write_file_atomic(path, data, mode).map_err(|e| ProviderError::io("write", path, e))
}

/// Writes a file of the stage's context directory atomically with
/// permission `mode` ([`hive_model::fs::write_atomic`]), creating the
/// directory when missing; a secret (a `mode` without group or other bits)
/// also closes its directory to others ([`close_secret_dir`]).
pub fn write_file_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    if mode & 0o077 == 0 {
        close_secret_dir(dir)?;
    }
    hive_model::fs::write_atomic(path, data, mode)
}

/// Takes the group and other permissions off `dir`, a directory holding a
/// secret file (the stage's context directory, its `tls/private`...), so
/// that only its owner lists or enters it.
pub fn close_secret_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & !0o077))?;
    }
    Ok(())
}

/// The stage's password in `<context_dir>/registry_password` (15 letters
/// and digits, as the original's `lookup('password', ... length=15
/// chars=ascii_letters,digits)`): the site registry's password, and the
/// root and admin password of servers installed by kickstart. Created
/// (mode 0600) when missing or empty and `create` is true; returns the
/// password and whether it is new (when `create` is false, a new one is
/// generated but not written, as check mode needs).
pub fn stage_password(context_dir: &Path, create: bool) -> std::io::Result<(String, bool)> {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let path = context_dir.join("registry_password");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim_end_matches('\n').is_empty() => {
            return Ok((s.trim_end_matches('\n').to_string(), false));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut rng = rand::thread_rng();
    let password: String = (0..15)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    if create {
        write_file_atomic(&path, format!("{password}\n").as_bytes(), 0o600)?;
    }
    Ok((password, true))
}
