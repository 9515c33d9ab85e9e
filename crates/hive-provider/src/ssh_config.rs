//! The stage's `ssh_config`: written by build-infra so that plain
//! `ssh -F .hive/<stage>/ssh_config HOST` works, read back by `hive ssh`,
//! the SSH pool, and for vagrant's `vagrant ssh-config` output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{ProviderError, Result};
use crate::stage::{ServerRole, write_atomic};

/// One `Host` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHost {
    /// The `Host` name.
    pub name: String,
    /// `HostName`.
    pub host_name: String,
    /// `Port` (22 when absent).
    pub port: u16,
    /// `User`.
    pub user: String,
    /// `IdentityFile`.
    pub identity_file: Option<PathBuf>,
    /// `UserKnownHostsFile`.
    pub known_hosts: Option<PathBuf>,
    /// The role hive recorded in a `# hive-role:` comment.
    pub role: Option<ServerRole>,
    /// Line of the `Host` keyword (1-based).
    pub line: usize,
}

/// A parsed ssh_config (only what hive writes and vagrant prints).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfig {
    /// Its `Host` blocks in order.
    pub hosts: Vec<SshHost>,
}

impl SshConfig {
    /// Read and parse a file.
    pub fn load(path: &Path) -> Result<SshConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ProviderError::io("read (run `hive build-infra` first)", path, e)
            } else {
                ProviderError::io("read", path, e)
            }
        })?;
        SshConfig::parse(&text, &path.display().to_string())
    }

    /// Parse text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<SshConfig> {
        let mut hosts: Vec<SshHost> = Vec::new();
        let mut pending_role = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if let Some(role) = line.strip_prefix("# hive-role:") {
                pending_role = match role.trim() {
                    "hive" => Some(ServerRole::Hive),
                    "repository" => Some(ServerRole::Repository),
                    _ => None,
                };
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
                Some((k, v)) => (
                    k,
                    v.trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                        .trim(),
                ),
                None => (line, ""),
            };
            let value = value.trim_matches('"');
            let err = |message: String| ProviderError::Parse {
                path: origin.to_string(),
                line: i + 1,
                message,
            };
            if key.eq_ignore_ascii_case("host") {
                if value.is_empty() || value.contains(char::is_whitespace) {
                    return Err(err(format!("`Host` needs exactly one name, got `{value}`")));
                }
                hosts.push(SshHost {
                    name: value.to_string(),
                    host_name: value.to_string(),
                    port: 22,
                    user: String::new(),
                    identity_file: None,
                    known_hosts: None,
                    role: pending_role.take(),
                    line: i + 1,
                });
                continue;
            }
            let Some(h) = hosts.last_mut() else {
                continue;
            };
            match key.to_ascii_lowercase().as_str() {
                "hostname" => h.host_name = value.to_string(),
                "port" => {
                    h.port = value.parse().map_err(|_| {
                        err(format!("`Port` must be a number 1-65535, got `{value}`"))
                    })?
                }
                "user" => h.user = value.to_string(),
                "identityfile" => h.identity_file = Some(PathBuf::from(value)),
                "userknownhostsfile" => h.known_hosts = Some(PathBuf::from(value)),
                _ => {}
            }
        }
        Ok(SshConfig { hosts })
    }

    /// Set the `Port` of host `name` in the ssh_config file at `path`
    /// (after sshd moved to `hive_sshd_port`), leaving every other line as
    /// it is; written atomically. Returns whether the file changed.
    ///
    /// ```
    /// # fn main() -> hive_provider::Result<()> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("ssh_config");
    /// std::fs::write(&path, "Host h0\n  HostName 10.0.0.1\n  Port 22\n").unwrap();
    /// assert!(hive_provider::SshConfig::set_port_in_file(&path, "h0", 2222)?);
    /// assert!(!hive_provider::SshConfig::set_port_in_file(&path, "h0", 2222)?);
    /// assert_eq!(hive_provider::SshConfig::load(&path)?.host("h0").unwrap().port, 2222);
    /// # Ok(()) }
    /// ```
    pub fn set_port_in_file(path: &Path, name: &str, port: u16) -> Result<bool> {
        let text = std::fs::read_to_string(path).map_err(|e| ProviderError::io("read", path, e))?;
        let Some(updated) = with_port(&text, name, port) else {
            let known = SshConfig::parse(&text, &path.display().to_string())
                .map(|c| {
                    c.hosts
                        .iter()
                        .map(|h| h.name.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            return Err(ProviderError::UnknownHost {
                host: name.to_string(),
                path: path.to_path_buf(),
                known,
            });
        };
        if updated == text {
            return Ok(false);
        }
        write_atomic(path, updated.as_bytes(), 0o644)?;
        Ok(true)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&SshHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The repository server: the host marked as such, else the last one.
    pub fn repository(&self) -> Option<&SshHost> {
        self.hosts
            .iter()
            .rev()
            .find(|h| h.role.is_some_and(ServerRole::is_repository))
            .or_else(|| self.hosts.last())
    }

    /// Render the file build-infra writes: strict host key checking against
    /// the stage's known_hosts, key authentication only.
    pub fn render(&self, stage: &str) -> String {
        let mut s = format!(
            "# Written by `hive build-infra` for stage {stage}; rewritten on every run.\n\
             # Use: ssh -F <this file> HOST\n"
        );
        for h in &self.hosts {
            s.push('\n');
            if let Some(role) = h.role {
                let r = match role {
                    ServerRole::Hive => "hive",
                    ServerRole::Repository | ServerRole::HiveAndRepository => "repository",
                };
                let _ = writeln!(s, "# hive-role: {r}");
            }
            let _ = writeln!(s, "Host {}", h.name);
            let _ = writeln!(s, "  HostName {}", h.host_name);
            let _ = writeln!(s, "  Port {}", h.port);
            let _ = writeln!(s, "  User {}", h.user);
            if let Some(k) = &h.identity_file {
                let _ = writeln!(s, "  IdentityFile \"{}\"", k.display());
                let _ = writeln!(s, "  IdentitiesOnly yes");
            }
            if let Some(k) = &h.known_hosts {
                let _ = writeln!(s, "  UserKnownHostsFile \"{}\"", k.display());
            }
            s.push_str("  StrictHostKeyChecking yes\n  PasswordAuthentication no\n  ServerAliveInterval 30\n  LogLevel ERROR\n");
        }
        s
    }
}

/// The keyword and value of an ssh_config line.
fn keyword(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.split_once(|c: char| c.is_whitespace() || c == '=') {
        Some((k, v)) => (
            k,
            v.trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                .trim()
                .trim_matches('"'),
        ),
        None => (line, ""),
    }
}

/// `text` with `Port port` in the block of `Host name` (replacing its
/// `Port` line, or added after `HostName`); `None` when there is no such
/// block.
fn with_port(text: &str, name: &str, port: u16) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| {
        let (k, v) = keyword(l);
        k.eq_ignore_ascii_case("host") && v == name
    })?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| {
            let (k, _) = keyword(l);
            k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("match")
        })
        .map_or(lines.len(), |i| start + 1 + i);
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let find =
        |key: &str| (start + 1..end).find(|&i| keyword(lines[i]).0.eq_ignore_ascii_case(key));
    if let Some(i) = find("port") {
        if keyword(lines[i]).1 == port.to_string() {
            return Some(text.to_string());
        }
        let indent: String = lines[i].chars().take_while(|c| c.is_whitespace()).collect();
        out[i] = format!("{indent}Port {port}");
    } else {
        let after = find("hostname").unwrap_or(start);
        out.insert(after + 1, format!("  Port {port}"));
    }
    let mut s = out.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        s.push('\n');
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_set_in_the_right_block_only() {
        let check = |text: &str, name: &str, port: u16, expected: Option<&str>| {
            assert_eq!(with_port(text, name, port).as_deref(), expected, "{text}");
        };
        let two = "# c\nHost a\n  HostName 10.0.0.1\n  Port 22\n  User x\n\nHost b\n  HostName 10.0.0.2\n  Port 22\n";
        check(
            two,
            "b",
            2222,
            Some(
                "# c\nHost a\n  HostName 10.0.0.1\n  Port 22\n  User x\n\nHost b\n  HostName 10.0.0.2\n  Port 2222\n",
            ),
        );
        check(
            two,
            "a",
            2222,
            Some(
                "# c\nHost a\n  HostName 10.0.0.1\n  Port 2222\n  User x\n\nHost b\n  HostName 10.0.0.2\n  Port 22\n",
            ),
        );
        check(two, "a", 22, Some(two));
        check(two, "c", 22, None);
        check(
            "Host a\n  HostName 10.0.0.1\n  User x\nHost b\n  Port 22",
            "a",
            2200,
            Some("Host a\n  HostName 10.0.0.1\n  Port 2200\n  User x\nHost b\n  Port 22"),
        );
        check(
            "Host a\n\tPort=22\n",
            "a",
            2200,
            Some("Host a\n\tPort 2200\n"),
        );
    }

    #[test]
    fn set_port_in_file_names_known_hosts_for_unknown_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ssh_config");
        std::fs::write(&path, "Host a\n  HostName 10.0.0.1\n").unwrap();
        let err = SshConfig::set_port_in_file(&path, "z", 2222)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("host z is not in") && err.contains(": a"),
            "{err}"
        );
        assert!(SshConfig::set_port_in_file(&path, "a", 2222).unwrap());
        assert_eq!(SshConfig::load(&path).unwrap().hosts[0].port, 2222);
    }

    #[test]
    fn render_then_parse_round_trips() {
        let cfg = SshConfig {
            hosts: vec![
                SshHost {
                    name: "p-hive0.pdns".into(),
                    host_name: "172.31.240.10".into(),
                    port: 22,
                    user: "admin".into(),
                    identity_file: Some("/x/.hive/private/id_ed25519".into()),
                    known_hosts: Some("/x/.hive/private/known_hosts".into()),
                    role: Some(ServerRole::Hive),
                    line: 5,
                },
                SshHost {
                    name: "p-hive1.pdns".into(),
                    host_name: "172.31.240.11".into(),
                    port: 2222,
                    user: "admin".into(),
                    identity_file: Some("/x/.hive/private/id_ed25519".into()),
                    known_hosts: Some("/x/.hive/private/known_hosts".into()),
                    role: Some(ServerRole::Repository),
                    line: 18,
                },
            ],
        };
        let text = cfg.render("private");
        let back = SshConfig::parse(&text, "ssh_config").unwrap();
        assert_eq!(back, cfg, "{text}");
        assert_eq!(back.repository().unwrap().name, "p-hive1.pdns");
    }

    #[test]
    fn parses_vagrant_ssh_config_output() {
        // As printed by `vagrant ssh-config` with the libvirt provider.
        let text = "Host p-hive0.pdns\n  HostName 192.168.121.43\n  User vagrant\n  Port 22\n  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  PasswordAuthentication no\n  IdentityFile /home/u/pdns/.hive/private/.vagrant/machines/p-hive0.pdns/libvirt/private_key\n  IdentitiesOnly yes\n  LogLevel FATAL\n\n";
        let cfg = SshConfig::parse(text, "vagrant ssh-config").unwrap();
        assert_eq!(cfg.hosts.len(), 1);
        assert_eq!(cfg.hosts[0].host_name, "192.168.121.43");
        assert_eq!(cfg.hosts[0].user, "vagrant");
        assert!(
            cfg.hosts[0]
                .identity_file
                .as_ref()
                .unwrap()
                .ends_with("private_key")
        );
    }

    #[test]
    fn bad_port_names_file_and_line() {
        let err = SshConfig::parse("Host a\n  Port x\n", "cfg").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cfg:2: `Port` must be a number 1-65535, got `x`"
        );
    }
}
